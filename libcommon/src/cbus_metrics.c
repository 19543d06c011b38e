/*  =========================================================================
    cbus_metrics - the node's metrics: one table, a registry per process,
    a snapshot carried in every node.heartbeat, the Prometheus text format

    (see cbus_metrics.h)
    =========================================================================
*/
#include "cbus.h"
#include <pthread.h>

//  --------------------------------------------------------------------------
//  The table

typedef struct {
    const char *name;                   //  Prometheus name
    cbus_metric_type_t type;            //  Counter, gauge, histogram
    cbus_metric_origin_t origin;        //  Who makes it
    const char *labels [2];             //  Label names, NULL past the last
    int label_count;                    //  0..2
    uint32_t series_max;                //  Most label sets
    const double *buckets;              //  Upper bounds, ascending
    int bucket_count;                   //  Without +Inf
    const char *help;                   //  HELP text
} s_row_t;

#define S_BUCKETS(id, name, type, origin, label1, label2, series_max, buckets, help) \
    static const double s_buckets_##id [] = { -1, buckets };
CBUS_METRICS (S_BUCKETS)
#undef S_BUCKETS

#define S_ROW(id, name, type, origin, label1, label2, series_max, buckets, help) \
    { name, CBUS_METRIC_TYPE_##type, CBUS_METRIC_ORIGIN_##origin, { label1, label2 }, \
      (label1 != NULL) + (label2 != NULL), series_max, s_buckets_##id + 1, \
      (int) (sizeof (s_buckets_##id) / sizeof (double)) - 1, help },
static const s_row_t s_rows [CBUS_METRIC_COUNT_] = {
    CBUS_METRICS (S_ROW)
};
#undef S_ROW

const char *
cbus_metric_name (cbus_metric_t id)
{
    return (unsigned) id < CBUS_METRIC_COUNT_ ? s_rows [id].name : NULL;
}

cbus_metric_type_t
cbus_metric_type (cbus_metric_t id)
{
    assert ((unsigned) id < CBUS_METRIC_COUNT_);
    return s_rows [id].type;
}

cbus_metric_origin_t
cbus_metric_origin (cbus_metric_t id)
{
    assert ((unsigned) id < CBUS_METRIC_COUNT_);
    return s_rows [id].origin;
}

int
cbus_metric_labels (cbus_metric_t id)
{
    assert ((unsigned) id < CBUS_METRIC_COUNT_);
    return s_rows [id].label_count;
}

const char *
cbus_metric_label (cbus_metric_t id, int index)
{
    assert ((unsigned) id < CBUS_METRIC_COUNT_ && index >= 0 && index < s_rows [id].label_count);
    return s_rows [id].labels [index];
}

int
cbus_metric_find (const char *name, size_t size)
{
    for (int id = 0; id < CBUS_METRIC_COUNT_; id++)
        if (strlen (s_rows [id].name) == size && memcmp (s_rows [id].name, name, size) == 0)
            return id;
    return -1;
}

static const char *
s_type_name (cbus_metric_type_t type)
{
    return type == CBUS_METRIC_TYPE_COUNTER ? "counter"
         : type == CBUS_METRIC_TYPE_GAUGE ? "gauge" : "histogram";
}

void
cbus_metrics_print (FILE *file)
{
    for (int id = 0; id < CBUS_METRIC_COUNT_; id++) {
        const s_row_t *row = &s_rows [id];
        fprintf (file, "%s %s", row->name, s_type_name (row->type));
        fprintf (file, " %s", row->label_count ? row->labels [0] : "-");
        if (row->label_count == 2)
            fprintf (file, ",%s", row->labels [1]);
        fprintf (file, " %s\n", row->help);
    }
}

//  --------------------------------------------------------------------------
//  The registry

typedef struct {
    char labels [2][CBUS_METRICS_LABEL_MAX + 1];    //  Values, "" past the row's
    double value;                       //  Counter (exact to 2^53), gauge, histogram sum
    uint64_t count;                     //  Histogram: observations
    uint64_t *buckets;                  //  Histogram: per bucket (not cumulative)
} s_series_t;

typedef struct {
    s_series_t *series;                 //  Label sets, in creation order
    uint32_t size;                      //  In use
    uint32_t capacity;                  //  Allocated
} s_family_t;

//  Last sequence seen per (src, boot, topic), for cbus_metrics_event.
typedef struct {
    char key [128];                     //  "src topic"
    uint64_t boot;                      //  Publisher's boot
    uint64_t next;                      //  Sequence expected next
    int64_t used;                       //  Last use, for eviction (mono ms)
} s_stream_t;

#define S_STREAMS_MAX 64

struct _cbus_metrics_t {
    pthread_mutex_t mutex;              //  A writer thread may observe
    s_family_t families [CBUS_METRIC_COUNT_];  //  One a row
    s_stream_t streams [S_STREAMS_MAX]; //  Event sequences followed
    uint32_t stream_count;              //  In use
};

cbus_metrics_t *
cbus_metrics_new (void)
{
    cbus_metrics_t *self = (cbus_metrics_t *) calloc (1, sizeof (cbus_metrics_t));
    if (!self)
        return NULL;
    pthread_mutex_init (&self->mutex, NULL);
    return self;
}

void
cbus_metrics_destroy (cbus_metrics_t **self_p)
{
    assert (self_p);
    cbus_metrics_t *self = *self_p;
    if (self) {
        for (int id = 0; id < CBUS_METRIC_COUNT_; id++) {
            s_family_t *family = &self->families [id];
            for (uint32_t index = 0; index < family->size; index++)
                free (family->series [index].buckets);
            free (family->series);
        }
        pthread_mutex_destroy (&self->mutex);
        free (self);
        *self_p = NULL;
    }
}

void
cbus_metrics_add (cbus_metrics_t *self, cbus_metric_t id,
                  const char *label1, const char *label2, uint64_t delta)
{
    (void) self; (void) id; (void) label1; (void) label2; (void) delta;
}

void
cbus_metrics_inc (cbus_metrics_t *self, cbus_metric_t id)
{
    cbus_metrics_add (self, id, NULL, NULL, 1);
}

void
cbus_metrics_set (cbus_metrics_t *self, cbus_metric_t id,
                  const char *label1, const char *label2, double value)
{
    (void) self; (void) id; (void) label1; (void) label2; (void) value;
}

void
cbus_metrics_observe (cbus_metrics_t *self, cbus_metric_t id,
                      const char *label1, const char *label2, double value)
{
    (void) self; (void) id; (void) label1; (void) label2; (void) value;
}

void
cbus_metrics_touch (cbus_metrics_t *self, cbus_metric_t id,
                    const char *label1, const char *label2)
{
    (void) self; (void) id; (void) label1; (void) label2;
}

void
cbus_metrics_forget (cbus_metrics_t *self, cbus_metric_t id,
                     const char *label1, const char *label2)
{
    (void) self; (void) id; (void) label1; (void) label2;
}

double
cbus_metrics_value (cbus_metrics_t *self, cbus_metric_t id,
                    const char *label1, const char *label2)
{
    (void) self; (void) id; (void) label1; (void) label2;
    return 0;
}

uint64_t
cbus_metrics_event (cbus_metrics_t *self, cbus_event_t *event)
{
    (void) self; (void) event;
    return 0;
}

int
cbus_metrics_encode (cbus_metrics_t *self, cbus_buf_t *buf)
{
    (void) self;
    cbus_buf_reset (buf);
    return 0;
}

cbus_metrics_t *
cbus_metrics_decode (const uint8_t *data, size_t size, char *reason)
{
    (void) data; (void) size;
    snprintf (reason, CBUS_REASON_MAX, "not implemented");
    return NULL;
}

void
cbus_metrics_render (const cbus_metrics_source_t *sources, size_t count, cbus_buf_t *out)
{
    (void) sources; (void) count; (void) out;
}

uint64_t
cbus_metrics_resident_bytes (void)
{
    return 0;
}

void
cbus_metrics_test (bool verbose)
{
    (void) verbose;
    printf (" * cbus_metrics: ");
    printf ("OK\n");
}
