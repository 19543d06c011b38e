/*  =========================================================================
    cbus_metrics_test - cbus_metrics' self-test (kept apart: the class and
    its test would not fit in one file)
    =========================================================================
*/
#include "cbus.h"
#include <math.h>

//  An event as a subscriber gets it, from src/boot with topic_seq.
static cbus_event_t *
s_test_event (const char *topic, const char *src, uint64_t boot, uint64_t topic_seq)
{
    cbus_buf_t buf = {0};
    cbus_event_source_t source = {
        .src = cbus_str (src), .boot = boot, .topic_seq = topic_seq, .has_topic_seq = true
    };
    cbus_event_source_encode (&source, &buf);
    cbus_event_t *event = (cbus_event_t *) zmalloc (sizeof (cbus_event_t));
    snprintf (event->topic, sizeof (event->topic), "%s", topic);
    event->body = zframe_new (buf.data, buf.size);
    msgpack_unpacked_init (&event->unpacked);
    size_t offset = 0;
    //  Decoding borrows: strings point into the frame.
    event->decoded = cbus_unpack_next (&event->unpacked, (const char *) zframe_data (event->body),
                                       zframe_size (event->body), &offset)
                     == MSGPACK_UNPACK_SUCCESS;
    cbus_buf_free (&buf);
    return event;
}

static uint64_t
s_test_note (cbus_metrics_t *self, const char *topic, const char *src, uint64_t boot,
             uint64_t topic_seq)
{
    cbus_event_t *event = s_test_event (topic, src, boot, topic_seq);
    uint64_t lost = cbus_metrics_event (self, event);
    cbus_event_destroy (&event);
    return lost;
}

//  The rendering of one registry as service "svc".
static char *
s_test_render (cbus_metrics_t *self)
{
    cbus_buf_t out = {0};
    cbus_metrics_source_t source = { "svc", self };
    cbus_metrics_render (&source, 1, &out);
    char *text = strdup (out.data ? out.data : "");
    cbus_buf_free (&out);
    return text;
}

void
cbus_metrics_test (bool verbose)
{
    printf (" * cbus_metrics: ");

    //  The table follows Prometheus' naming: prefix, _total for counters
    //  only, no label named service on a SELF row (the gateway adds it),
    //  GATEWAY rows labelled by service, buckets ascending.
    for (int id = 0; id < CBUS_METRIC_COUNT_; id++) {
        const char *name = cbus_metric_name ((cbus_metric_t) id);
        cbus_metric_type_t type = cbus_metric_type ((cbus_metric_t) id);
        cbus_metric_origin_t origin = cbus_metric_origin ((cbus_metric_t) id);
        size_t length = strlen (name);
        assert (strncmp (name, "chainbus_", 9) == 0);
        bool total = length > 6 && streq (name + length - 6, "_total");
        assert (total == (type == CBUS_METRIC_TYPE_COUNTER));
        const double *bounds;
        int buckets = cbus_metric_buckets ((cbus_metric_t) id, &bounds);
        assert ((type == CBUS_METRIC_TYPE_HISTOGRAM) == (buckets > 0));
        assert (buckets <= CBUS_METRICS_BUCKETS_MAX);
        for (int bucket = 1; bucket < buckets; bucket++)
            assert (bounds [bucket - 1] < bounds [bucket]);
        int labels = cbus_metric_labels ((cbus_metric_t) id);
        for (int label = 0; label < labels; label++)
            assert (streq (cbus_metric_label ((cbus_metric_t) id, label), "service")
                    == (origin == CBUS_METRIC_ORIGIN_GATEWAY && label == 0));
        if (origin == CBUS_METRIC_ORIGIN_GATEWAY)
            assert (labels >= 1);
        assert (cbus_metric_find (name, length) == id);
        assert (cbus_metric_series_max ((cbus_metric_t) id) >= 1);
    }
    assert (cbus_metric_find ("chainbus_nothing", 16) == -1);

    //  Counters, gauges, histograms by id and labels.
    cbus_metrics_t *metrics = cbus_metrics_new ();
    assert (metrics);
    cbus_metrics_inc (metrics, CBUS_METRIC_CHAIN_BLOCKS_CONNECTED);
    cbus_metrics_add (metrics, CBUS_METRIC_CHAIN_BLOCKS_CONNECTED, NULL, NULL, 2);
    assert (cbus_metrics_value (metrics, CBUS_METRIC_CHAIN_BLOCKS_CONNECTED, NULL, NULL) == 3);
    cbus_metrics_add (metrics, CBUS_METRIC_MEMPOOL_TXS_REFUSED, "invalid_signature", NULL, 1);
    cbus_metrics_add (metrics, CBUS_METRIC_MEMPOOL_TXS_REFUSED, "duplicate", NULL, 4);
    cbus_metrics_add (metrics, CBUS_METRIC_MEMPOOL_TXS_REFUSED, "invalid_signature", NULL, 1);
    assert (cbus_metrics_value (metrics, CBUS_METRIC_MEMPOOL_TXS_REFUSED, "invalid_signature", NULL) == 2);
    assert (cbus_metrics_value (metrics, CBUS_METRIC_MEMPOOL_TXS_REFUSED, "duplicate", NULL) == 4);
    assert (cbus_metrics_value (metrics, CBUS_METRIC_MEMPOOL_TXS_REFUSED, "other", NULL) == 0);
    cbus_metrics_set (metrics, CBUS_METRIC_CHAIN_HEIGHT, NULL, NULL, 7);
    cbus_metrics_set (metrics, CBUS_METRIC_CHAIN_HEIGHT, NULL, NULL, 9);
    assert (cbus_metrics_value (metrics, CBUS_METRIC_CHAIN_HEIGHT, NULL, NULL) == 9);
    cbus_metrics_observe (metrics, CBUS_METRIC_HTTP_DURATION, "/chain", NULL, 0.0003);
    cbus_metrics_observe (metrics, CBUS_METRIC_HTTP_DURATION, "/chain", NULL, 0.002);
    cbus_metrics_observe (metrics, CBUS_METRIC_HTTP_DURATION, "/chain", NULL, 99);
    assert (cbus_metrics_value (metrics, CBUS_METRIC_HTTP_DURATION, "/chain", NULL) == 3);
    cbus_metrics_add (metrics, CBUS_METRIC_HTTP_REQUESTS, "/chain", "200", 5);
    cbus_metrics_touch (metrics, CBUS_METRIC_CHAIN_REORG_DEPTH, NULL, NULL);
    //  A NULL registry takes every change and holds nothing.
    cbus_metrics_inc (NULL, CBUS_METRIC_CHAIN_BLOCKS_CONNECTED);
    assert (cbus_metrics_value (NULL, CBUS_METRIC_CHAIN_BLOCKS_CONNECTED, NULL, NULL) == 0);

    //  The text format: HELP and TYPE once, service label first,
    //  cumulative buckets ending at +Inf, _sum and _count; rows nobody
    //  holds left out.
    char *text = s_test_render (metrics);
    if (verbose)
        printf ("\n%s", text);
    assert (strstr (text, "# HELP chainbus_chain_height Height of the active chain's tip block\n"
                          "# TYPE chainbus_chain_height gauge\n"
                          "chainbus_chain_height{service=\"svc\"} 9\n"));
    assert (strstr (text, "chainbus_chain_blocks_connected_total{service=\"svc\"} 3\n"));
    assert (strstr (text, "chainbus_mempool_txs_refused_total{service=\"svc\",code=\"invalid_signature\"} 2\n"
                          "chainbus_mempool_txs_refused_total{service=\"svc\",code=\"duplicate\"} 4\n"));
    assert (strstr (text, "chainbus_http_requests_total{service=\"svc\",route=\"/chain\",code=\"200\"} 5\n"));
    assert (strstr (text, "chainbus_http_request_duration_seconds_bucket{service=\"svc\",route=\"/chain\",le=\"0.0001\"} 0\n"
                          "chainbus_http_request_duration_seconds_bucket{service=\"svc\",route=\"/chain\",le=\"0.00025\"} 0\n"
                          "chainbus_http_request_duration_seconds_bucket{service=\"svc\",route=\"/chain\",le=\"0.0005\"} 1\n"));
    assert (strstr (text, "chainbus_http_request_duration_seconds_bucket{service=\"svc\",route=\"/chain\",le=\"10\"} 2\n"
                          "chainbus_http_request_duration_seconds_bucket{service=\"svc\",route=\"/chain\",le=\"+Inf\"} 3\n"
                          "chainbus_http_request_duration_seconds_sum{service=\"svc\",route=\"/chain\"} 99.0023\n"
                          "chainbus_http_request_duration_seconds_count{service=\"svc\",route=\"/chain\"} 3\n"));
    assert (strstr (text, "chainbus_chain_reorg_depth_blocks_count{service=\"svc\"} 0\n"));
    assert (!strstr (text, "chainbus_mempool_bytes"));
    char *help = strstr (text, "# TYPE chainbus_mempool_txs_refused_total");
    assert (help && !strstr (help + 1, "# TYPE chainbus_mempool_txs_refused_total"));
    free (text);

    //  A snapshot decodes to the same rendering.
    cbus_buf_t buf = {0};
    char reason [CBUS_REASON_MAX];
    assert (cbus_metrics_encode (metrics, &buf) == 0);
    cbus_metrics_t *copy = cbus_metrics_decode ((const uint8_t *) buf.data, buf.size, reason);
    assert (copy);
    char *original = s_test_render (metrics);
    char *decoded = s_test_render (copy);
    assert (streq (original, decoded));
    free (original);
    free (decoded);
    cbus_metrics_destroy (&copy);

    //  Decoding outside bytes keeps what fits the table only: an unknown
    //  name, a GATEWAY row, a wrong label count, a bad label value, a
    //  histogram of another bucket count are dropped one by one.
    cbus_buf_reset (&buf);
    msgpack_packer pk;
    cbus_packer_init (&pk, &buf);
    msgpack_pack_array (&pk, 7);
    const char *names [6] = {
        "chainbus_unknown", "chainbus_service_up", "chainbus_mempool_txs_refused_total",
        "chainbus_mempool_txs_refused_total", "chainbus_chain_reorg_depth_blocks",
        "chainbus_mempool_txs"
    };
    const int label_counts [6] = { 0, 1, 2, 1, 0, 0 };
    for (int entry = 0; entry < 6; entry++) {
        msgpack_pack_array (&pk, 3);
        cbus_pack_str (&pk, names [entry]);
        msgpack_pack_array (&pk, (uint32_t) label_counts [entry]);
        for (int label = 0; label < label_counts [entry]; label++)
            cbus_pack_str (&pk, entry == 3 ? "bad\nvalue" : "x");
        if (entry == 4) {
            msgpack_pack_array (&pk, 2);
            msgpack_pack_double (&pk, 1);
            msgpack_pack_array (&pk, 1);
            msgpack_pack_uint64 (&pk, 1);
        }
        else
            msgpack_pack_uint64 (&pk, 5);
    }
    msgpack_pack_nil (&pk);
    copy = cbus_metrics_decode ((const uint8_t *) buf.data, buf.size, reason);
    assert (copy);
    text = s_test_render (copy);
    assert (streq (text, "# HELP chainbus_mempool_txs Transactions in the mempool\n"
                         "# TYPE chainbus_mempool_txs gauge\n"
                         "chainbus_mempool_txs{service=\"svc\"} 5\n"));
    free (text);
    cbus_metrics_destroy (&copy);
    //  Values a sender cannot have meant are dropped too: a histogram whose
    //  bucket counts add up past 2^64 (its count would wrap and +Inf fall
    //  below the lower buckets), a negative histogram sum, a NaN, negative
    //  or infinite counter, a NaN or infinite gauge. A negative gauge and a
    //  count of exactly 2^64-1 are kept.
    cbus_buf_reset (&buf);
    cbus_packer_init (&pk, &buf);
    msgpack_pack_array (&pk, 10);
    const double reorg_bounds [] = { CBUS_BUCKETS_REORG_DEPTH };
    const double interval_bounds [] = { CBUS_BUCKETS_BLOCK_INTERVAL };
    const double batch_bounds [] = { CBUS_BUCKETS_BATCH };
    struct {
        const char *name;
        size_t buckets;             //  0: a counter or a gauge
        double value;               //  the value, or the histogram's sum
        uint64_t first, second;     //  the first two bucket counts
    } cases [10] = {
        { "chainbus_chain_reorg_depth_blocks", sizeof (reorg_bounds) / sizeof (double),
          3, UINT64_MAX, 1 },
        { "chainbus_chain_block_interval_seconds", sizeof (interval_bounds) / sizeof (double),
          -1, 1, 0 },
        { "chainbus_chain_block_interval_seconds", sizeof (interval_bounds) / sizeof (double),
          NAN, 1, 0 },
        { "chainbus_chain_blocks_connected_total", 0, NAN, 0, 0 },
        { "chainbus_chain_blocks_disconnected_total", 0, -1, 0, 0 },
        { "chainbus_mempool_txs_accepted_total", 0, INFINITY, 0, 0 },
        { "chainbus_mempool_bytes", 0, INFINITY, 0, 0 },
        { "chainbus_sync_blocks_left", 0, NAN, 0, 0 },
        { "chainbus_chain_tip_timestamp_seconds", 0, -3, 0, 0 },
        { "chainbus_mempool_commit_batch_txs", sizeof (batch_bounds) / sizeof (double),
          7, UINT64_MAX - 1, 1 },
    };
    for (int entry = 0; entry < 10; entry++) {
        msgpack_pack_array (&pk, 3);
        cbus_pack_str (&pk, cases [entry].name);
        msgpack_pack_array (&pk, 0);
        if (cases [entry].buckets == 0) {
            if (entry == 4)
                msgpack_pack_int64 (&pk, -1);
            else
                msgpack_pack_double (&pk, cases [entry].value);
            continue;
        }
        msgpack_pack_array (&pk, 2);
        msgpack_pack_double (&pk, cases [entry].value);
        msgpack_pack_array (&pk, (uint32_t) cases [entry].buckets + 1);
        msgpack_pack_uint64 (&pk, cases [entry].first);
        msgpack_pack_uint64 (&pk, cases [entry].second);
        for (size_t bucket = 2; bucket <= cases [entry].buckets; bucket++)
            msgpack_pack_uint64 (&pk, 0);
    }
    copy = cbus_metrics_decode ((const uint8_t *) buf.data, buf.size, reason);
    assert (copy);
    text = s_test_render (copy);
    for (int entry = 0; entry < 8; entry++)
        assert (!strstr (text, cases [entry].name));
    assert (strstr (text, "chainbus_chain_tip_timestamp_seconds{service=\"svc\"} -3\n"));
    assert (strstr (text, "chainbus_mempool_commit_batch_txs_bucket{service=\"svc\",le=\"+Inf\"} "
                          "1.8446744073709552e+19\n"));
    assert (cbus_metrics_value (copy, CBUS_METRIC_MEMPOOL_COMMIT_BATCH, NULL, NULL)
            == (double) UINT64_MAX);
    free (text);
    cbus_metrics_destroy (&copy);
    assert (cbus_metrics_decode ((const uint8_t *) "\x80", 1, reason) == NULL);
    assert (streq (reason, "metrics snapshot is not one msgpack array"));
    assert (cbus_metrics_decode ((const uint8_t *) "\x91", 1, reason) == NULL);
    assert (cbus_metrics_decode ((const uint8_t *) "", 0, reason) == NULL);

    //  Label sets are bounded: past series_max a change is dropped and
    //  counted, and forgetting one makes room.
    char peer [32];
    for (int index = 0; index < 300; index++) {
        snprintf (peer, sizeof (peer), "tcp://10.0.0.%d:9000", index);
        cbus_metrics_add (metrics, CBUS_METRIC_PEER_SENT_BYTES, peer, NULL, 10);
    }
    assert (cbus_metrics_value (metrics, CBUS_METRIC_PEER_SENT_BYTES, "tcp://10.0.0.255:9000", NULL) == 10);
    assert (cbus_metrics_value (metrics, CBUS_METRIC_PEER_SENT_BYTES, "tcp://10.0.0.256:9000", NULL) == 0);
    text = s_test_render (metrics);
    assert (strstr (text, "chainbus_metrics_series_dropped_total{service=\"svc\"} 44\n"));
    free (text);
    cbus_metrics_forget (metrics, CBUS_METRIC_PEER_SENT_BYTES, "tcp://10.0.0.3:9000", NULL);
    assert (cbus_metrics_value (metrics, CBUS_METRIC_PEER_SENT_BYTES, "tcp://10.0.0.3:9000", NULL) == 0);
    cbus_metrics_add (metrics, CBUS_METRIC_PEER_SENT_BYTES, "tcp://10.0.0.299:9000", NULL, 1);
    assert (cbus_metrics_value (metrics, CBUS_METRIC_PEER_SENT_BYTES, "tcp://10.0.0.299:9000", NULL) == 1);
    assert (cbus_metrics_value (metrics, CBUS_METRIC_PEER_SENT_BYTES, "tcp://10.0.0.4:9000", NULL) == 10);
    cbus_metrics_forget (metrics, CBUS_METRIC_PEER_SENT_BYTES, NULL, NULL);
    assert (cbus_metrics_value (metrics, CBUS_METRIC_PEER_SENT_BYTES, "tcp://10.0.0.4:9000", NULL) == 0);
    //  Label values are cut and made printable; the text escapes quotes.
    cbus_metrics_set (metrics, CBUS_METRIC_PEERS, "a\"b\\c\n", NULL, 1);
    text = s_test_render (metrics);
    assert (strstr (text, "chainbus_peers{service=\"svc\",state=\"a\\\"b\\\\c?\"} 1\n"));
    free (text);

    //  Bus events lost: per (src, topic), a jump counts, a resend or a
    //  first event does not, a restart counts what its new boot missed.
    assert (s_test_note (metrics, "chain.block.connected", "chainstore", 1, 10) == 0);
    assert (s_test_note (metrics, "chain.block.connected", "chainstore", 1, 11) == 0);
    assert (s_test_note (metrics, "chain.storage", "chainstore", 1, 0) == 0);
    assert (s_test_note (metrics, "chain.block.connected", "chainstore", 1, 15) == 3);
    assert (s_test_note (metrics, "chain.block.connected", "chainstore", 1, 15) == 0);
    assert (s_test_note (metrics, "chain.block.connected", "chainstore", 1, 16) == 0);
    assert (s_test_note (metrics, "chain.block.connected", "chainstore", 2, 1) == 1);
    assert (s_test_note (metrics, "chain.block.connected", "chainstore", 2, 2) == 0);
    assert (cbus_metrics_value (metrics, CBUS_METRIC_BUS_EVENTS_LOST, NULL, NULL) == 4);
    //  A topic followed afresh (subscribed again): no loss before its next.
    assert (s_test_note (metrics, "mempool.tx.added", "mempool", 1, 3) == 0);
    cbus_metrics_event_forget (metrics, "mempool.tx.");
    assert (s_test_note (metrics, "mempool.tx.added", "mempool", 1, 40) == 0);
    assert (s_test_note (metrics, "chain.block.connected", "chainstore", 2, 4) == 1);
    assert (s_test_note (metrics, "mempool.tx.added", "mempool", 1, 42) == 1);
    assert (cbus_metrics_value (metrics, CBUS_METRIC_BUS_EVENTS_LOST, NULL, NULL) == 6);
    //  The table of streams is bounded: the least recently used goes.
    for (int index = 0; index < 3 * CBUS_METRICS_STREAMS_MAX; index++) {
        snprintf (peer, sizeof (peer), "miner.%d", index);
        assert (s_test_note (metrics, "node.heartbeat", peer, 1, 100) == 0);
    }
    assert (s_test_note (metrics, "chain.block.connected", "chainstore", 2, 9) == 0);
    cbus_event_t *event = s_test_event ("x", "y", 1, 1);
    msgpack_unpacked_destroy (&event->unpacked);
    msgpack_unpacked_init (&event->unpacked);
    event->decoded = false;
    assert (cbus_metrics_event (metrics, event) == 0);
    cbus_event_destroy (&event);

    //  This process's resident memory.
    uint64_t resident = cbus_metrics_resident_bytes ();
    assert (resident > 1024 * 1024 && resident < (uint64_t) 1 << 40);

    cbus_buf_free (&buf);
    cbus_metrics_destroy (&metrics);
    cbus_metrics_destroy (&metrics);
    printf ("OK\n");
}
