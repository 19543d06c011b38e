/*  =========================================================================
    cbus_bench_metrics - what one metrics change, one heartbeat snapshot
    and one scrape's rendering cost, beside a floor measured in the same
    run

    Usage: cbus_bench_metrics
    Prints one figure a line, key=value (nanoseconds, bytes):
        floor_mutex_ns       an uncontended mutex lock, increment, unlock:
                             what a change cannot cost less than
        inc_ns               cbus_metrics_inc, a counter without labels
        add_label_ns         cbus_metrics_add by refusal code, 8 codes held
        add_two_labels_ns    cbus_metrics_add by route and status, 40 held
        observe_ns           cbus_metrics_observe of a 15-bucket histogram
        set_ns               cbus_metrics_set of a gauge
        snapshot_bytes       a mempool-like registry's heartbeat snapshot
        encode_ns            cbus_metrics_encode of it (once a second)
        decode_render_ns     cbus_metrics_decode + cbus_metrics_render of
                             it (each scrape, per source)
        page_bytes           its rendered text
    Each is the median of 7 bursts.
    =========================================================================
*/
#include "cbus.h"
#include <pthread.h>

#define S_BURSTS 7

static int
s_compare_double (const void *left, const void *right)
{
    double a = *(const double *) left, b = *(const double *) right;
    return a < b ? -1 : a > b;
}

typedef void (s_op_fn) (cbus_metrics_t *metrics, uint64_t index);

static pthread_mutex_t s_mutex = PTHREAD_MUTEX_INITIALIZER;
static volatile uint64_t s_counter;
static const char *s_codes [8] = {
    "bad_signature", "duplicate", "invalid", "too_large", "full", "no_space",
    "unavailable", "internal"
};
static const char *s_routes [8] = {
    "/transactions/new", "/mine", "/chain", "/status", "/blocks/", "/nodes", "/metrics", "other"
};
static const char *s_statuses [5] = { "200", "201", "400", "404", "503" };

static void
s_floor (cbus_metrics_t *metrics, uint64_t index)
{
    (void) metrics; (void) index;
    pthread_mutex_lock (&s_mutex);
    s_counter++;
    pthread_mutex_unlock (&s_mutex);
}

static void
s_inc (cbus_metrics_t *metrics, uint64_t index)
{
    (void) index;
    cbus_metrics_inc (metrics, CBUS_METRIC_MEMPOOL_TXS_ACCEPTED);
}

static void
s_add_label (cbus_metrics_t *metrics, uint64_t index)
{
    cbus_metrics_add (metrics, CBUS_METRIC_MEMPOOL_TXS_REFUSED, s_codes [index % 8], NULL, 1);
}

static void
s_add_two (cbus_metrics_t *metrics, uint64_t index)
{
    cbus_metrics_add (metrics, CBUS_METRIC_HTTP_REQUESTS, s_routes [index % 8],
                      s_statuses [index % 5], 1);
}

static void
s_observe (cbus_metrics_t *metrics, uint64_t index)
{
    cbus_metrics_observe (metrics, CBUS_METRIC_HTTP_DURATION, s_routes [0], NULL,
                          (double) (index % 1000) * 1e-5);
}

static void
s_set (cbus_metrics_t *metrics, uint64_t index)
{
    cbus_metrics_set (metrics, CBUS_METRIC_MEMPOOL_TXS, NULL, NULL, (double) index);
}

//  Median ns per call of op over S_BURSTS bursts of rounds calls.
static double
s_time (s_op_fn *op, cbus_metrics_t *metrics, uint64_t rounds)
{
    double bursts [S_BURSTS];
    for (int burst = 0; burst < S_BURSTS; burst++) {
        int64_t start = zclock_usecs ();
        for (uint64_t index = 0; index < rounds; index++)
            op (metrics, index);
        bursts [burst] = (double) (zclock_usecs () - start) * 1000.0 / (double) rounds;
    }
    qsort (bursts, S_BURSTS, sizeof (double), s_compare_double);
    return bursts [S_BURSTS / 2];
}

//  A registry like the mempool's after a while: every row it keeps.
static cbus_metrics_t *
s_mempool_like (void)
{
    cbus_metrics_t *metrics = cbus_metrics_new ();
    assert (metrics);
    cbus_metrics_add (metrics, CBUS_METRIC_MEMPOOL_TXS_ACCEPTED, NULL, NULL, 123456);
    for (int code = 0; code < 8; code++)
        cbus_metrics_add (metrics, CBUS_METRIC_MEMPOOL_TXS_REFUSED, s_codes [code], NULL, 7);
    cbus_metrics_set (metrics, CBUS_METRIC_MEMPOOL_TXS, NULL, NULL, 5000);
    cbus_metrics_set (metrics, CBUS_METRIC_MEMPOOL_BYTES, NULL, NULL, 1.5e6);
    for (int index = 0; index < 1000; index++) {
        cbus_metrics_observe (metrics, CBUS_METRIC_MEMPOOL_COMMIT_BATCH, NULL, NULL, index % 300);
        cbus_metrics_observe (metrics, CBUS_METRIC_MEMPOOL_COMMIT_WRITE, NULL, NULL, index * 1e-5);
    }
    return metrics;
}

int
main (void)
{
    cbus_metrics_t *metrics = cbus_metrics_new ();
    assert (metrics);
    const uint64_t rounds = 2000000;
    printf ("floor_mutex_ns=%.1f\n", s_time (s_floor, metrics, rounds));
    printf ("inc_ns=%.1f\n", s_time (s_inc, metrics, rounds));
    printf ("add_label_ns=%.1f\n", s_time (s_add_label, metrics, rounds));
    printf ("add_two_labels_ns=%.1f\n", s_time (s_add_two, metrics, rounds));
    printf ("observe_ns=%.1f\n", s_time (s_observe, metrics, rounds));
    printf ("set_ns=%.1f\n", s_time (s_set, metrics, rounds));
    cbus_metrics_destroy (&metrics);

    metrics = s_mempool_like ();
    cbus_buf_t snapshot = {0}, page = {0};
    double encode [S_BURSTS], render [S_BURSTS];
    const int passes = 2000;
    char reason [CBUS_REASON_MAX];
    for (int burst = 0; burst < S_BURSTS; burst++) {
        int64_t start = zclock_usecs ();
        for (int pass = 0; pass < passes; pass++)
            assert (cbus_metrics_encode (metrics, &snapshot) == 0);
        encode [burst] = (double) (zclock_usecs () - start) * 1000.0 / passes;
        start = zclock_usecs ();
        for (int pass = 0; pass < passes; pass++) {
            cbus_metrics_t *copy = cbus_metrics_decode ((const uint8_t *) snapshot.data,
                                                        snapshot.size, reason);
            assert (copy);
            cbus_buf_reset (&page);
            cbus_metrics_source_t source = { "mempool", copy };
            cbus_metrics_render (&source, 1, &page);
            cbus_metrics_destroy (&copy);
        }
        render [burst] = (double) (zclock_usecs () - start) * 1000.0 / passes;
    }
    qsort (encode, S_BURSTS, sizeof (double), s_compare_double);
    qsort (render, S_BURSTS, sizeof (double), s_compare_double);
    printf ("snapshot_bytes=%zu\n", snapshot.size);
    printf ("encode_ns=%.0f\n", encode [S_BURSTS / 2]);
    printf ("decode_render_ns=%.0f\n", render [S_BURSTS / 2]);
    printf ("page_bytes=%zu\n", page.size);
    cbus_buf_free (&snapshot);
    cbus_buf_free (&page);
    cbus_metrics_destroy (&metrics);
    return 0;
}
