/*  =========================================================================
    cbus_metrics - the node's metrics: one table, a registry per process,
    a snapshot carried in every node.heartbeat, the Prometheus text format

    (see cbus_metrics.h)
    =========================================================================
*/
#include "cbus.h"
#include <pthread.h>
#include <math.h>

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
cbus_metric_buckets (cbus_metric_t id, const double **bounds)
{
    assert ((unsigned) id < CBUS_METRIC_COUNT_);
    *bounds = s_rows [id].buckets;
    return s_rows [id].bucket_count;
}

uint32_t
cbus_metric_series_max (cbus_metric_t id)
{
    assert ((unsigned) id < CBUS_METRIC_COUNT_);
    return s_rows [id].series_max;
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
    uint32_t hash;                      //  Of the labels: most lookups compare it only
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
    char key [CBUS_METRICS_LABEL_MAX + 64 + 2];    //  "src topic"
    uint64_t boot;                      //  Publisher's boot
    uint64_t next;                      //  Topic sequence expected next
    uint64_t used;                      //  Last use (stream_clock), for eviction
} s_stream_t;


struct _cbus_metrics_t {
    pthread_mutex_t mutex;              //  A writer thread may observe
    s_family_t families [CBUS_METRIC_COUNT_];  //  One a row
    s_stream_t streams [CBUS_METRICS_STREAMS_MAX]; //  Event sequences followed
    uint32_t stream_count;              //  In use
    uint64_t stream_clock;              //  Counts cbus_metrics_event calls
    uint64_t dropped;                   //  Changes dropped (series_max reached)
};

//  An empty registry (a snapshot decodes into one).
static cbus_metrics_t *
s_metrics_new (void)
{
    cbus_metrics_t *self = (cbus_metrics_t *) calloc (1, sizeof (cbus_metrics_t));
    if (!self)
        return NULL;
    pthread_mutex_init (&self->mutex, NULL);
    return self;
}

cbus_metrics_t *
cbus_metrics_new (void)
{
    cbus_metrics_t *self = s_metrics_new ();
    //  Every process counts the events it lost: 0 is scraped from the
    //  start (a rate() needs the series before the first loss).
    if (self)
        cbus_metrics_touch (self, CBUS_METRIC_BUS_EVENTS_LOST, NULL, NULL);
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

//  The label values of a change, made safe: cut, printable, "" past the
//  row's count. Asserts the caller passed as many as the row names.
static void
s_labels (cbus_metric_t id, const char *label1, const char *label2,
          char labels [2][CBUS_METRICS_LABEL_MAX + 1])
{
    const s_row_t *row = &s_rows [id];
    const char *given [2] = { label1, label2 };
    for (int index = 0; index < 2; index++) {
        assert ((given [index] != NULL) == (index < row->label_count));
        labels [index][0] = 0;
        if (given [index])
            cbus_printable (labels [index], CBUS_METRICS_LABEL_MAX + 1,
                            given [index], strnlen (given [index], CBUS_METRICS_LABEL_MAX));
    }
}

//  FNV-1a of both label values (a 0 byte between them).
static uint32_t
s_hash (char labels [2][CBUS_METRICS_LABEL_MAX + 1])
{
    uint32_t hash = 2166136261u;
    for (int index = 0; index < 2; index++)
        for (const char *at = labels [index]; ; at++) {
            hash = (hash ^ (uint8_t) *at) * 16777619u;
            if (!*at)
                break;
        }
    return hash;
}

//  The label set of labels in a family, or NULL.
static s_series_t *
s_series_find (s_family_t *family, char labels [2][CBUS_METRICS_LABEL_MAX + 1], uint32_t hash)
{
    for (uint32_t index = 0; index < family->size; index++) {
        s_series_t *series = &family->series [index];
        if (series->hash == hash
        &&  streq (series->labels [0], labels [0]) && streq (series->labels [1], labels [1]))
            return series;
    }
    return NULL;
}

//  The label set, created at zero if new and there is room; NULL (the
//  change dropped and counted) when the row has its series_max. Under
//  the mutex.
static s_series_t *
s_series_get (cbus_metrics_t *self, cbus_metric_t id,
              char labels [2][CBUS_METRICS_LABEL_MAX + 1])
{
    const s_row_t *row = &s_rows [id];
    s_family_t *family = &self->families [id];
    if (row->label_count == 0 && family->size == 1)
        return &family->series [0];     //  The one set of a row without labels
    uint32_t hash = s_hash (labels);
    s_series_t *series = s_series_find (family, labels, hash);
    if (series)
        return series;
    if (family->size >= row->series_max) {
        self->dropped++;
        return NULL;
    }
    if (family->size == family->capacity) {
        uint32_t capacity = family->capacity ? family->capacity * 2 : 1;
        if (capacity > row->series_max)
            capacity = row->series_max;
        s_series_t *grown = (s_series_t *) realloc (family->series, capacity * sizeof (s_series_t));
        if (!grown) {
            self->dropped++;
            return NULL;
        }
        family->series = grown;
        family->capacity = capacity;
    }
    series = &family->series [family->size];
    memset (series, 0, sizeof (s_series_t));
    if (row->type == CBUS_METRIC_TYPE_HISTOGRAM) {
        series->buckets = (uint64_t *) calloc ((size_t) row->bucket_count + 1, sizeof (uint64_t));
        if (!series->buckets) {
            self->dropped++;
            return NULL;
        }
    }
    memcpy (series->labels, labels, sizeof (series->labels));
    series->hash = hash;
    family->size++;
    return series;
}

//  Shared shape of every change: check, lock, find or create, unlock.
#define S_CHANGE(self, id, type_, label1, label2, body) \
    do { \
        if (!self) \
            return; \
        assert ((unsigned) id < CBUS_METRIC_COUNT_ && s_rows [id].type == type_); \
        assert (id != CBUS_METRIC_METRICS_SERIES_DROPPED);  /*  Kept apart  */ \
        char labels [2][CBUS_METRICS_LABEL_MAX + 1]; \
        if (s_rows [id].label_count || label1 || label2) \
            s_labels (id, label1, label2, labels); \
        else \
            labels [0][0] = labels [1][0] = 0; \
        pthread_mutex_lock (&self->mutex); \
        s_series_t *series = s_series_get (self, id, labels); \
        if (series) { body; } \
        pthread_mutex_unlock (&self->mutex); \
    } while (0)

void
cbus_metrics_add (cbus_metrics_t *self, cbus_metric_t id,
                  const char *label1, const char *label2, uint64_t delta)
{
    S_CHANGE (self, id, CBUS_METRIC_TYPE_COUNTER, label1, label2,
              series->value += (double) delta);
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
    S_CHANGE (self, id, CBUS_METRIC_TYPE_GAUGE, label1, label2,
              series->value = value);
}

//  Index of the first bucket whose bound holds value (bucket_count: +Inf).
static int
s_bucket (const s_row_t *row, double value)
{
    int index = 0;
    while (index < row->bucket_count && !(value <= row->buckets [index]))
        index++;
    return index;
}

void
cbus_metrics_observe (cbus_metrics_t *self, cbus_metric_t id,
                      const char *label1, const char *label2, double value)
{
    S_CHANGE (self, id, CBUS_METRIC_TYPE_HISTOGRAM, label1, label2,
              series->buckets [s_bucket (&s_rows [id], value)]++;
              series->count++;
              series->value += value);
}

void
cbus_metrics_touch (cbus_metrics_t *self, cbus_metric_t id,
                    const char *label1, const char *label2)
{
    S_CHANGE (self, id, s_rows [id].type, label1, label2, (void) series);
}

void
cbus_metrics_forget (cbus_metrics_t *self, cbus_metric_t id,
                     const char *label1, const char *label2)
{
    if (!self)
        return;
    assert ((unsigned) id < CBUS_METRIC_COUNT_);
    s_family_t *family = &self->families [id];
    bool all = !label1 && !label2 && s_rows [id].label_count > 0;
    char labels [2][CBUS_METRICS_LABEL_MAX + 1] = { "", "" };
    if (!all)
        s_labels (id, label1, label2, labels);
    pthread_mutex_lock (&self->mutex);
    uint32_t kept = 0;
    for (uint32_t index = 0; index < family->size; index++) {
        s_series_t *series = &family->series [index];
        if (all || (streq (series->labels [0], labels [0])
                &&  streq (series->labels [1], labels [1])))
            free (series->buckets);
        else
            family->series [kept++] = *series;
    }
    family->size = kept;
    pthread_mutex_unlock (&self->mutex);
}

double
cbus_metrics_value (cbus_metrics_t *self, cbus_metric_t id,
                    const char *label1, const char *label2)
{
    if (!self)
        return 0;
    assert ((unsigned) id < CBUS_METRIC_COUNT_);
    char labels [2][CBUS_METRICS_LABEL_MAX + 1];
    s_labels (id, label1, label2, labels);
    pthread_mutex_lock (&self->mutex);
    s_series_t *series = s_series_find (&self->families [id], labels, s_hash (labels));
    double value = !series ? 0
                 : s_rows [id].type == CBUS_METRIC_TYPE_HISTOGRAM ? (double) series->count
                 : series->value;
    pthread_mutex_unlock (&self->mutex);
    return value;
}

uint32_t
cbus_metrics_total (cbus_metrics_t *self, cbus_metric_t id, double *sum, uint64_t *count)
{
    *sum = 0;
    if (count)
        *count = 0;
    if (!self)
        return 0;
    assert ((unsigned) id < CBUS_METRIC_COUNT_);
    pthread_mutex_lock (&self->mutex);
    s_family_t *family = &self->families [id];
    uint32_t size = family->size;
    for (uint32_t index = 0; index < size; index++) {
        *sum += family->series [index].value;
        if (count)
            *count += family->series [index].count;
    }
    pthread_mutex_unlock (&self->mutex);
    return size;
}

//  --------------------------------------------------------------------------
//  Bus events lost

//  The stream of (src, topic), found or made (the least recently used one
//  replaced when all are taken). Under the mutex.
static s_stream_t *
s_stream_get (cbus_metrics_t *self, const char *key, bool *fresh)
{
    s_stream_t *oldest = NULL;
    self->stream_clock++;
    for (uint32_t index = 0; index < self->stream_count; index++) {
        s_stream_t *stream = &self->streams [index];
        if (streq (stream->key, key)) {
            stream->used = self->stream_clock;
            *fresh = false;
            return stream;
        }
        if (!oldest || stream->used < oldest->used)
            oldest = stream;
    }
    s_stream_t *stream = self->stream_count < CBUS_METRICS_STREAMS_MAX
                       ? &self->streams [self->stream_count++] : oldest;
    memset (stream, 0, sizeof (s_stream_t));
    snprintf (stream->key, sizeof (stream->key), "%s", key);
    stream->used = self->stream_clock;
    *fresh = true;
    return stream;
}

uint64_t
cbus_metrics_event (cbus_metrics_t *self, cbus_event_t *event)
{
    if (!self || !event || !event->decoded)
        return 0;
    cbus_event_source_t source;
    char reason [CBUS_REASON_MAX];
    if (cbus_event_source_decode (cbus_event_map (event), &source, reason)
    ||  !source.has_topic_seq)
        return 0;
    char key [sizeof (((s_stream_t *) 0)->key)];
    char src [CBUS_METRICS_LABEL_MAX + 1];
    cbus_printable (src, sizeof (src), source.src.data, source.src.size);
    snprintf (key, sizeof (key), "%s %s", src, event->topic);
    uint64_t lost = 0;
    pthread_mutex_lock (&self->mutex);
    bool fresh;
    s_stream_t *stream = s_stream_get (self, key, &fresh);
    if (fresh)
        ;                               //  Joined: what came before is not ours
    else
    if (stream->boot != source.boot)
        lost = source.topic_seq;        //  Restarted: its first events missed
    else
    if (source.topic_seq > stream->next)
        lost = source.topic_seq - stream->next;
    if (fresh || stream->boot != source.boot || source.topic_seq >= stream->next) {
        stream->boot = source.boot;     //  (an older one is a resend: no loss)
        stream->next = source.topic_seq + 1;
    }
    if (lost) {
        char none [2][CBUS_METRICS_LABEL_MAX + 1] = { "", "" };
        s_series_t *series = s_series_get (self, CBUS_METRIC_BUS_EVENTS_LOST, none);
        if (series)
            series->value += (double) lost;
    }
    pthread_mutex_unlock (&self->mutex);
    return lost;
}

void
cbus_metrics_event_forget (cbus_metrics_t *self, const char *prefix)
{
    if (!self)
        return;
    pthread_mutex_lock (&self->mutex);
    uint32_t kept = 0;
    for (uint32_t index = 0; index < self->stream_count; index++) {
        s_stream_t *stream = &self->streams [index];
        const char *topic = strchr (stream->key, ' ');
        if (!(topic && strncmp (topic + 1, prefix, strlen (prefix)) == 0))
            self->streams [kept++] = *stream;
    }
    self->stream_count = kept;
    pthread_mutex_unlock (&self->mutex);
}

//  --------------------------------------------------------------------------
//  Snapshots: [[name, [label values], value], ...], value a float for a
//  counter or a gauge, [sum, [per-bucket counts, +Inf last]] for a
//  histogram.

int
cbus_metrics_encode (cbus_metrics_t *self, cbus_buf_t *buf)
{
    cbus_buf_reset (buf);
    msgpack_packer pk;
    cbus_packer_init (&pk, buf);
    pthread_mutex_lock (&self->mutex);
    uint32_t count = self->dropped > 0;
    for (int id = 0; id < CBUS_METRIC_COUNT_; id++)
        if (id != CBUS_METRIC_METRICS_SERIES_DROPPED)
            count += self->families [id].size;
    msgpack_pack_array (&pk, count);
    for (int id = 0; id < CBUS_METRIC_COUNT_; id++) {
        const s_row_t *row = &s_rows [id];
        s_family_t *family = &self->families [id];
        if (id == CBUS_METRIC_METRICS_SERIES_DROPPED) {
            if (self->dropped) {
                msgpack_pack_array (&pk, 3);
                cbus_pack_str (&pk, row->name);
                msgpack_pack_array (&pk, 0);
                msgpack_pack_double (&pk, (double) self->dropped);
            }
            continue;
        }
        for (uint32_t index = 0; index < family->size; index++) {
            s_series_t *series = &family->series [index];
            msgpack_pack_array (&pk, 3);
            cbus_pack_str (&pk, row->name);
            msgpack_pack_array (&pk, (uint32_t) row->label_count);
            for (int label = 0; label < row->label_count; label++)
                cbus_pack_str (&pk, series->labels [label]);
            if (row->type != CBUS_METRIC_TYPE_HISTOGRAM)
                msgpack_pack_double (&pk, series->value);
            else {
                msgpack_pack_array (&pk, 2);
                msgpack_pack_double (&pk, series->value);
                msgpack_pack_array (&pk, (uint32_t) row->bucket_count + 1);
                for (int bucket = 0; bucket <= row->bucket_count; bucket++)
                    msgpack_pack_uint64 (&pk, series->buckets [bucket]);
            }
        }
    }
    pthread_mutex_unlock (&self->mutex);
    if (buf->size > CBUS_METRICS_SNAPSHOT_MAX) {
        cbus_buf_reset (buf);
        return -1;
    }
    return 0;
}

//  A number from a snapshot (float or int), or false.
static bool
s_number (const msgpack_object *object, double *value)
{
    if (object->type == MSGPACK_OBJECT_FLOAT64 || object->type == MSGPACK_OBJECT_FLOAT32)
        *value = object->via.f64;
    else
    if (object->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *value = (double) object->via.u64;
    else
    if (object->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *value = (double) object->via.i64;
    else
        return false;
    return true;
}

//  Label values of a snapshot entry into labels; false unless the row's
//  count of printable strings of at most CBUS_METRICS_LABEL_MAX bytes.
static bool
s_decode_labels (const s_row_t *row, const msgpack_object *list,
                 char labels [2][CBUS_METRICS_LABEL_MAX + 1])
{
    if (list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size != (uint32_t) row->label_count)
        return false;
    memset (labels, 0, 2 * (CBUS_METRICS_LABEL_MAX + 1));
    for (int index = 0; index < row->label_count; index++) {
        const msgpack_object *value = &list->via.array.ptr [index];
        if (value->type != MSGPACK_OBJECT_STR || value->via.str.size > CBUS_METRICS_LABEL_MAX)
            return false;
        for (uint32_t at = 0; at < value->via.str.size; at++)
            if (value->via.str.ptr [at] < 0x20 || value->via.str.ptr [at] > 0x7e)
                return false;
        memcpy (labels [index], value->via.str.ptr, value->via.str.size);
    }
    return true;
}

//  One snapshot entry into self; false (dropped) when it does not fit.
static bool
s_decode_entry (cbus_metrics_t *self, const msgpack_object *entry)
{
    if (entry->type != MSGPACK_OBJECT_ARRAY || entry->via.array.size != 3
    ||  entry->via.array.ptr [0].type != MSGPACK_OBJECT_STR)
        return false;
    const msgpack_object *fields = entry->via.array.ptr;
    int id = cbus_metric_find (fields [0].via.str.ptr, fields [0].via.str.size);
    if (id < 0 || s_rows [id].origin != CBUS_METRIC_ORIGIN_SELF)
        return false;
    const s_row_t *row = &s_rows [id];
    char labels [2][CBUS_METRICS_LABEL_MAX + 1];
    if (!s_decode_labels (row, &fields [1], labels))
        return false;
    //  A value must be finite, and not negative for a counter or a
    //  histogram's sum; a histogram's count (the sum of its bucket counts)
    //  must not wrap, or +Inf would fall below the lower buckets.
    double value = 0;
    uint64_t total = 0;
    const msgpack_object *counts = NULL;
    if (row->type != CBUS_METRIC_TYPE_HISTOGRAM) {
        if (!s_number (&fields [2], &value) || !isfinite (value)
        ||  (row->type == CBUS_METRIC_TYPE_COUNTER && value < 0))
            return false;
    }
    else {
        const msgpack_object *pair = &fields [2];
        if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2
        ||  !s_number (&pair->via.array.ptr [0], &value) || !isfinite (value) || value < 0)
            return false;
        counts = &pair->via.array.ptr [1];
        if (counts->type != MSGPACK_OBJECT_ARRAY
        ||  counts->via.array.size != (uint32_t) row->bucket_count + 1)
            return false;
        for (uint32_t index = 0; index < counts->via.array.size; index++) {
            const msgpack_object *count = &counts->via.array.ptr [index];
            if (count->type != MSGPACK_OBJECT_POSITIVE_INTEGER
            ||  count->via.u64 > UINT64_MAX - total)
                return false;
            total += count->via.u64;
        }
    }
    if (id == CBUS_METRIC_METRICS_SERIES_DROPPED) {
        self->dropped = value > 0 && value < 1e18 ? (uint64_t) value : 0;
        return true;
    }
    s_series_t *series = s_series_get (self, (cbus_metric_t) id, labels);
    if (!series)
        return false;
    series->value = value;
    if (counts) {
        for (uint32_t index = 0; index < counts->via.array.size; index++)
            series->buckets [index] = counts->via.array.ptr [index].via.u64;
        series->count = total;
    }
    return true;
}

cbus_metrics_t *
cbus_metrics_decode (const uint8_t *data, size_t size, char *reason)
{
    if (size > CBUS_METRICS_SNAPSHOT_MAX) {
        cbus_fail (reason, "metrics snapshot of %zu bytes (most %d)", size, CBUS_METRICS_SNAPSHOT_MAX);
        return NULL;
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    cbus_metrics_t *self = NULL;
    if (cbus_unpack_next (&unpacked, (const char *) data, size, &offset) != MSGPACK_UNPACK_SUCCESS
    ||  offset != size || unpacked.data.type != MSGPACK_OBJECT_ARRAY) {
        cbus_fail (reason, "metrics snapshot is not one msgpack array");
        goto cleanup;
    }
    self = s_metrics_new ();
    if (!self) {
        cbus_fail (reason, "out of memory");
        goto cleanup;
    }
    //  What does not fit is left out, one entry at a time: a newer sender
    //  may carry metrics this table does not know.
    for (uint32_t index = 0; index < unpacked.data.via.array.size; index++)
        s_decode_entry (self, &unpacked.data.via.array.ptr [index]);
cleanup:
    msgpack_unpacked_destroy (&unpacked);
    return self;
}

//  --------------------------------------------------------------------------
//  The Prometheus text format 0.0.4

//  A sample value as Prometheus reads it: integers exactly (most values
//  are counts), others the shortest of %.15g/%.17g that reads back the
//  same; NaN, +Inf, -Inf.
static void
s_write_value (cbus_buf_t *out, double value)
{
    if (value >= 0 && value < 9007199254740992.0 && value == (double) (uint64_t) value) {
        char digits [24];
        char *at = digits + sizeof (digits);
        uint64_t number = (uint64_t) value;
        do
            *--at = (char) ('0' + number % 10);
        while ((number /= 10));
        cbus_buf_append (out, at, (size_t) (digits + sizeof (digits) - at));
    }
    else
    if (isnan (value))
        cbus_buf_puts (out, "NaN");
    else
    if (isinf (value))
        cbus_buf_puts (out, value > 0 ? "+Inf" : "-Inf");
    else {
        char text [32];
        snprintf (text, sizeof (text), "%.15g", value);
        if (strtod (text, NULL) != value)
            snprintf (text, sizeof (text), "%.17g", value);
        cbus_buf_puts (out, text);
    }
}

//  A label value, escaped (backslash, double quote, newline).
static void
s_write_escaped (cbus_buf_t *out, const char *text)
{
    const char *run = text;
    for (; *text; text++)
        if (*text == '\\' || *text == '"' || *text == '\n') {
            cbus_buf_append (out, run, (size_t) (text - run));
            cbus_buf_puts (out, *text == '\\' ? "\\\\" : *text == '"' ? "\\\"" : "\\n");
            run = text + 1;
        }
    cbus_buf_append (out, run, (size_t) (text - run));
}

//  A series' labels as the text format writes them, without braces:
//  service="..",label=".." ("" when it has none).
static void
s_write_labels (cbus_buf_t *out, const s_row_t *row, const char *service,
                const s_series_t *series)
{
    const char *separator = "";
    if (service && row->origin == CBUS_METRIC_ORIGIN_SELF) {
        cbus_buf_puts (out, "service=\"");
        s_write_escaped (out, service);
        cbus_buf_puts (out, "\"");
        separator = ",";
    }
    for (int index = 0; index < row->label_count; index++) {
        cbus_buf_puts (out, separator);
        cbus_buf_puts (out, row->labels [index]);
        cbus_buf_puts (out, "=\"");
        s_write_escaped (out, series->labels [index]);
        cbus_buf_puts (out, "\"");
        separator = ",";
    }
}

//  name<suffix>{labels[,le="le"]} value\n
static void
s_write_sample (cbus_buf_t *out, const s_row_t *row, const char *suffix,
                const cbus_buf_t *labels, const char *le, double value)
{
    cbus_buf_puts (out, row->name);
    cbus_buf_puts (out, suffix);
    if (labels->size || le) {
        cbus_buf_puts (out, "{");
        cbus_buf_append (out, labels->data, labels->size);
        if (le) {
            cbus_buf_puts (out, labels->size ? ",le=\"" : "le=\"");
            cbus_buf_puts (out, le);
            cbus_buf_puts (out, "\"");
        }
        cbus_buf_puts (out, "}");
    }
    cbus_buf_puts (out, " ");
    s_write_value (out, value);
    cbus_buf_puts (out, "\n");
}

//  Bucket bounds as text, made once ("0.0001", "2.5").
static char s_le [CBUS_METRIC_COUNT_][CBUS_METRICS_BUCKETS_MAX][24];
static pthread_once_t s_le_once = PTHREAD_ONCE_INIT;

static void
s_le_init (void)
{
    for (int id = 0; id < CBUS_METRIC_COUNT_; id++)
        for (int bucket = 0; bucket < s_rows [id].bucket_count; bucket++)
            snprintf (s_le [id][bucket], sizeof (s_le [id][bucket]), "%.15g",
                      s_rows [id].buckets [bucket]);
}

static void
s_write_series (cbus_buf_t *out, cbus_buf_t *labels, int id, const char *service,
                const s_series_t *series)
{
    const s_row_t *row = &s_rows [id];
    cbus_buf_reset (labels);
    s_write_labels (labels, row, service, series);
    if (row->type != CBUS_METRIC_TYPE_HISTOGRAM) {
        s_write_sample (out, row, "", labels, NULL, series->value);
        return;
    }
    uint64_t cumulative = 0;
    for (int bucket = 0; bucket < row->bucket_count; bucket++) {
        cumulative += series->buckets [bucket];
        s_write_sample (out, row, "_bucket", labels, s_le [id][bucket], (double) cumulative);
    }
    s_write_sample (out, row, "_bucket", labels, "+Inf", (double) series->count);
    s_write_sample (out, row, "_sum", labels, NULL, series->value);
    s_write_sample (out, row, "_count", labels, NULL, (double) series->count);
}

void
cbus_metrics_render (const cbus_metrics_source_t *sources, size_t count, cbus_buf_t *out)
{
    pthread_once (&s_le_once, s_le_init);
    cbus_buf_t labels = {0};
    for (size_t source = 0; source < count; source++)
        pthread_mutex_lock (&sources [source].metrics->mutex);
    for (int id = 0; id < CBUS_METRIC_COUNT_; id++) {
        const s_row_t *row = &s_rows [id];
        bool header = false;
        for (size_t source = 0; source < count; source++) {
            cbus_metrics_t *metrics = sources [source].metrics;
            s_family_t *family = &metrics->families [id];
            bool dropped = id == CBUS_METRIC_METRICS_SERIES_DROPPED && metrics->dropped;
            if ((family->size || dropped) && !header) {
                cbus_buf_printf (out, "# HELP %s %s\n# TYPE %s %s\n",
                                 row->name, row->help, row->name, s_type_name (row->type));
                header = true;
            }
            for (uint32_t index = 0; index < family->size
                              && id != CBUS_METRIC_METRICS_SERIES_DROPPED; index++)
                s_write_series (out, &labels, id, sources [source].service,
                                &family->series [index]);
            if (dropped) {
                s_series_t series = { .value = (double) metrics->dropped };
                s_write_series (out, &labels, id, sources [source].service, &series);
            }
        }
    }
    for (size_t source = 0; source < count; source++)
        pthread_mutex_unlock (&sources [source].metrics->mutex);
    cbus_buf_free (&labels);
}

uint64_t
cbus_metrics_resident_bytes (void)
{
    FILE *file = fopen ("/proc/self/statm", "r");
    if (!file)
        return 0;
    unsigned long long size = 0, resident = 0;
    int fields = fscanf (file, "%llu %llu", &size, &resident);
    fclose (file);
    long page = sysconf (_SC_PAGESIZE);
    return fields == 2 && page > 0 ? (uint64_t) resident * (uint64_t) page : 0;
}
