/*  =========================================================================
    cbus_metrics - the node's metrics: one table, a registry per process,
    a snapshot carried in every node.heartbeat, the Prometheus text format

    Every metric the node exports is one row of CBUS_METRICS below: its
    id, its Prometheus name (chainbus_ prefix, base units, _total for
    counters), its type, who produces it, its label names (0..2), the most
    label sets it may hold, its histogram buckets and its help text. The
    table is the only place a metric is named; docs/operations.md
    "## Metrics" lists the same rows (tests/functional/test_metrics.py
    checks it against `cbus_selftest --metrics`).

    A service keeps one registry (cbus_metrics_new) and changes it by id
    and label values: cbus_metrics_add (counters), _set (gauges),
    _observe (histograms). These take a mutex (a writer thread may
    observe) and never allocate once a label set exists, so they are
    cheap on hot paths: a lookup is a scan of that metric's label sets
    (at most its series_max, usually one). A label set beyond series_max
    is not created: the change is dropped and counted in
    chainbus_metrics_series_dropped_total, so that label values taken
    from outside (a peer's address) cannot grow a registry without limit.

    Transport: cbus_pub_set_metrics (cbus_msg.h) hands the registry to
    the service's publisher, and every node.heartbeat then carries its
    snapshot (field "metrics", cbus_metrics_encode) and the process's
    resident memory (field "resident_bytes"). No request is made at
    scrape time: a hung service cannot delay a scrape, and a dead one
    shows chainbus_service_up 0 once its heartbeats stop. The gateway
    decodes each source's last snapshot (cbus_metrics_decode: checked
    against this table; unknown names, wrong label counts, bad sizes
    are dropped) and renders all of them (cbus_metrics_render), adding
    the label service="<source>" to every series of origin SELF.

    Origins: SELF metrics are kept by the service that knows them and
    travel in its heartbeat. GATEWAY metrics are made by the gateway from
    what it already hears (heartbeats, boots); their first label is
    "service" and a heartbeat snapshot carrying one is dropped.

    Bus events lost: cbus_metrics_event (registry, event) notes an
    event's sequence per (src, boot, topic) and adds the events missed
    before it to chainbus_bus_events_lost_total. Call it for every event
    a service receives; the series' service label names the subscriber.
    =========================================================================
*/
#ifndef CBUS_METRICS_H_INCLUDED
#define CBUS_METRICS_H_INCLUDED

//  --------------------------------------------------------------------------
//  Histogram buckets (upper bounds, base units). A row names one of these.
#define CBUS_BUCKETS_NONE
//  Seconds between blocks: the target interval is ~1 s on test nets,
//  minutes on a real one.
#define CBUS_BUCKETS_BLOCK_INTERVAL \
    0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800
//  Blocks disconnected by one reorganisation.
#define CBUS_BUCKETS_REORG_DEPTH \
    1, 2, 3, 4, 6, 10, 20, 50, 100, 1000
//  Transactions written by one group commit.
#define CBUS_BUCKETS_BATCH \
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000
//  One synced LevelDB write (its log append and fdatasync, and any wait
//  inside LevelDB): 100 us on a fast SSD, tens of ms on a slow disk.
#define CBUS_BUCKETS_SYNCED_WRITE \
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5
//  One HTTP request, first byte in to answer queued.
#define CBUS_BUCKETS_HTTP \
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10

//  Most buckets a histogram row may name (+Inf is implicit).
#define CBUS_METRICS_BUCKETS_MAX 16
//  (publisher, topic) pairs a registry follows for cbus_metrics_event; the
//  least recently heard is forgotten beyond.
#define CBUS_METRICS_STREAMS_MAX 64
//  Longest label value kept (bytes; longer ones are cut).
#define CBUS_METRICS_LABEL_MAX 64

//  --------------------------------------------------------------------------
//  M (ID, "name", TYPE, ORIGIN, "label 1" or NULL, "label 2" or NULL,
//     series_max, BUCKETS, "help")
//  TYPE: COUNTER, GAUGE, HISTOGRAM. ORIGIN: SELF (the service that knows
//  it, in its heartbeat), GATEWAY (made by the gateway, label service).
#define CBUS_METRICS(M) \
    /*  chainstore  */ \
    M (CHAIN_HEIGHT, "chainbus_chain_height", GAUGE, SELF, NULL, NULL, 1, CBUS_BUCKETS_NONE, \
       "Height of the active chain's tip block") \
    M (CHAIN_TIP_TIMESTAMP, "chainbus_chain_tip_timestamp_seconds", GAUGE, SELF, NULL, NULL, 1, CBUS_BUCKETS_NONE, \
       "Timestamp of the tip block (Unix time, seconds)") \
    M (CHAIN_TIP_AGE, "chainbus_chain_tip_age_seconds", GAUGE, GATEWAY, "service", NULL, 4, CBUS_BUCKETS_NONE, \
       "Seconds from the tip block's timestamp to the scrape") \
    M (CHAIN_BLOCK_INTERVAL, "chainbus_chain_block_interval_seconds", HISTOGRAM, SELF, NULL, NULL, 1, CBUS_BUCKETS_BLOCK_INTERVAL, \
       "Timestamp difference between each newly connected tip block and its parent") \
    M (CHAIN_BLOCKS_CONNECTED, "chainbus_chain_blocks_connected_total", COUNTER, SELF, NULL, NULL, 1, CBUS_BUCKETS_NONE, \
       "Blocks connected to the active chain since the chainstore started") \
    M (CHAIN_BLOCKS_DISCONNECTED, "chainbus_chain_blocks_disconnected_total", COUNTER, SELF, NULL, NULL, 1, CBUS_BUCKETS_NONE, \
       "Blocks disconnected from the active chain by reorganisations") \
    M (CHAIN_REORG_DEPTH, "chainbus_chain_reorg_depth_blocks", HISTOGRAM, SELF, NULL, NULL, 1, CBUS_BUCKETS_REORG_DEPTH, \
       "Blocks disconnected by each reorganisation") \
    /*  mempool  */ \
    M (MEMPOOL_TXS_ACCEPTED, "chainbus_mempool_txs_accepted_total", COUNTER, SELF, NULL, NULL, 1, CBUS_BUCKETS_NONE, \
       "Transactions accepted into the mempool (acknowledged)") \
    M (MEMPOOL_TXS_REFUSED, "chainbus_mempool_txs_refused_total", COUNTER, SELF, "code", NULL, 64, CBUS_BUCKETS_NONE, \
       "Transactions refused, by refusal code") \
    M (MEMPOOL_TXS, "chainbus_mempool_txs", GAUGE, SELF, NULL, NULL, 1, CBUS_BUCKETS_NONE, \
       "Transactions in the mempool") \
    M (MEMPOOL_BYTES, "chainbus_mempool_bytes", GAUGE, SELF, NULL, NULL, 1, CBUS_BUCKETS_NONE, \
       "Bytes of the transactions in the mempool") \
    M (MEMPOOL_COMMIT_BATCH, "chainbus_mempool_commit_batch_txs", HISTOGRAM, SELF, NULL, NULL, 1, CBUS_BUCKETS_BATCH, \
       "Transactions written by each group commit") \
    M (MEMPOOL_COMMIT_WRITE, "chainbus_mempool_commit_write_seconds", HISTOGRAM, SELF, NULL, NULL, 1, CBUS_BUCKETS_SYNCED_WRITE, \
       "Duration of each group commit's synced LevelDB write that succeeded") \
    /*  peersync  */ \
    M (PEERS, "chainbus_peers", GAUGE, SELF, "state", NULL, 16, CBUS_BUCKETS_NONE, \
       "Peers known, by link state") \
    M (SYNC_BLOCKS_LEFT, "chainbus_sync_blocks_left", GAUGE, SELF, NULL, NULL, 1, CBUS_BUCKETS_NONE, \
       "Blocks left to fetch by the sync in progress (0 when not syncing)") \
    M (PEER_RECEIVED_BYTES, "chainbus_peer_received_bytes_total", COUNTER, SELF, "peer", NULL, 256, CBUS_BUCKETS_NONE, \
       "Bytes received from each peer") \
    M (PEER_SENT_BYTES, "chainbus_peer_sent_bytes_total", COUNTER, SELF, "peer", NULL, 256, CBUS_BUCKETS_NONE, \
       "Bytes sent to each peer") \
    /*  gateway (its own registry, service="gateway")  */ \
    M (HTTP_REQUESTS, "chainbus_http_requests_total", COUNTER, SELF, "route", "code", 256, CBUS_BUCKETS_NONE, \
       "HTTP requests answered, by route and status code") \
    M (HTTP_DURATION, "chainbus_http_request_duration_seconds", HISTOGRAM, SELF, "route", NULL, 64, CBUS_BUCKETS_HTTP, \
       "Time from a request's arrival to its answer being queued, by route") \
    M (EVENT_STREAMS, "chainbus_event_streams", GAUGE, SELF, NULL, NULL, 1, CBUS_BUCKETS_NONE, \
       "Event streams (GET /events) open") \
    M (EVENT_STREAMS_OVERFLOWED, "chainbus_event_streams_overflowed_total", COUNTER, SELF, NULL, NULL, 1, CBUS_BUCKETS_NONE, \
       "Event streams closed because their subscriber did not read and their buffer would overflow") \
    /*  every service  */ \
    M (BUS_EVENTS_LOST, "chainbus_bus_events_lost_total", COUNTER, SELF, NULL, NULL, 1, CBUS_BUCKETS_NONE, \
       "Bus events this subscriber missed (gaps in a publisher's topic sequence)") \
    M (METRICS_SERIES_DROPPED, "chainbus_metrics_series_dropped_total", COUNTER, SELF, NULL, NULL, 1, CBUS_BUCKETS_NONE, \
       "Metric changes dropped because a metric had its most label sets") \
    /*  made by the gateway from heartbeats  */ \
    M (SERVICE_UP, "chainbus_service_up", GAUGE, GATEWAY, "service", NULL, 1024, CBUS_BUCKETS_NONE, \
       "1 when the service's heartbeat was heard in the last 3.5 s, else 0") \
    M (SERVICE_RESTARTS, "chainbus_service_restarts_total", COUNTER, GATEWAY, "service", NULL, 1024, CBUS_BUCKETS_NONE, \
       "Restarts of the service seen by the gateway (a new boot in its heartbeat)") \
    M (SERVICE_RESIDENT, "chainbus_service_resident_memory_bytes", GAUGE, GATEWAY, "service", NULL, 1024, CBUS_BUCKETS_NONE, \
       "Resident memory of the service's process, from its last heartbeat") \
    M (MINER_HASH_RATE, "chainbus_miner_hashes_per_second", GAUGE, GATEWAY, "service", NULL, 1024, CBUS_BUCKETS_NONE, \
       "Hashes a second the miner tried over its last heartbeat interval")

typedef enum {
#define CBUS_METRIC_ENUM(id, name, type, origin, label1, label2, series_max, buckets, help) \
    CBUS_METRIC_##id,
    CBUS_METRICS (CBUS_METRIC_ENUM)
#undef CBUS_METRIC_ENUM
    CBUS_METRIC_COUNT_               //  How many rows (not a metric)
} cbus_metric_t;

typedef enum {
    CBUS_METRIC_TYPE_COUNTER,
    CBUS_METRIC_TYPE_GAUGE,
    CBUS_METRIC_TYPE_HISTOGRAM
} cbus_metric_type_t;

typedef enum {
    CBUS_METRIC_ORIGIN_SELF,
    CBUS_METRIC_ORIGIN_GATEWAY
} cbus_metric_origin_t;

//  --------------------------------------------------------------------------
//  The table, read

//  A row's name ("chainbus_chain_height"), or NULL past the table.
const char *
    cbus_metric_name (cbus_metric_t id);
cbus_metric_type_t
    cbus_metric_type (cbus_metric_t id);
cbus_metric_origin_t
    cbus_metric_origin (cbus_metric_t id);
//  Label names: how many (0..2), and each (index < count).
int
    cbus_metric_labels (cbus_metric_t id);
const char *
    cbus_metric_label (cbus_metric_t id, int index);
//  Histogram buckets: how many (0 for other types), their bounds.
int
    cbus_metric_buckets (cbus_metric_t id, const double **bounds);
//  Most label sets a registry keeps of the row.
uint32_t
    cbus_metric_series_max (cbus_metric_t id);
//  The id of a name, or -1.
int
    cbus_metric_find (const char *name, size_t size);
//  Print the table (name, type, labels, help: one metric a line) for the
//  docs' test.
void
    cbus_metrics_print (FILE *file);

//  --------------------------------------------------------------------------
//  A registry: the metrics of one process (or, in the gateway, the last
//  snapshot of one source).
typedef struct _cbus_metrics_t cbus_metrics_t;

//  NULL only when out of memory.
cbus_metrics_t *
    cbus_metrics_new (void);
void
    cbus_metrics_destroy (cbus_metrics_t **self_p);

//  Changes by id and label values. Pass exactly as many label values as
//  the row names (NULL for the others); values longer than
//  CBUS_METRICS_LABEL_MAX are cut. A NULL self does nothing (a class
//  tested without a registry). Using a row of another type is a
//  programming error (asserted).
//  Counter: add delta.
void
    cbus_metrics_add (cbus_metrics_t *self, cbus_metric_t id,
                      const char *label1, const char *label2, uint64_t delta);
//  Counter without labels: add 1.
void
    cbus_metrics_inc (cbus_metrics_t *self, cbus_metric_t id);
//  Gauge: set to value.
void
    cbus_metrics_set (cbus_metrics_t *self, cbus_metric_t id,
                      const char *label1, const char *label2, double value);
//  Histogram: count one observation of value (base units: seconds, bytes).
void
    cbus_metrics_observe (cbus_metrics_t *self, cbus_metric_t id,
                          const char *label1, const char *label2, double value);
//  Drop one label set (a peer gone), or with both labels NULL every label
//  set of the row (gauges recomputed from scratch: peers by state).
void
    cbus_metrics_forget (cbus_metrics_t *self, cbus_metric_t id,
                         const char *label1, const char *label2);
//  Create a label set at zero if it does not exist (a counter or a
//  histogram that should be scraped as 0 before its first event).
void
    cbus_metrics_touch (cbus_metrics_t *self, cbus_metric_t id,
                        const char *label1, const char *label2);
//  The current value of a counter or gauge label set, or of a
//  histogram's count; 0 when it does not exist. For tests and the gateway.
double
    cbus_metrics_value (cbus_metrics_t *self, cbus_metric_t id,
                        const char *label1, const char *label2);
//  A row summed over its label sets: the values (a histogram's sums)
//  into sum and, for a histogram, its observations into count (may be
//  NULL). Returns how many label sets the row holds (0: none, both 0).
//  The series of METRICS_SERIES_DROPPED are not in the families: 0.
uint32_t
    cbus_metrics_total (cbus_metrics_t *self, cbus_metric_t id, double *sum, uint64_t *count);

//  Note an event received by this process: counts the events lost before
//  it from its publisher on its topic (same src and boot, sequence
//  jump) into chainbus_bus_events_lost_total. Returns how many were
//  lost. A new boot, a first event, or a malformed one count none.
uint64_t
    cbus_metrics_event (cbus_metrics_t *self, cbus_event_t *event);
//  Follow afresh the topics starting with prefix: their next events count
//  no loss before them. For a subscription just made again (events
//  published while unsubscribed were not ours to get).
void
    cbus_metrics_event_forget (cbus_metrics_t *self, const char *prefix);

//  --------------------------------------------------------------------------
//  Snapshots and rendering

//  Write the registry's snapshot into buf (reset first): the bytes a
//  heartbeat's "metrics" field carries (docs/bus.md). Returns 0, or -1
//  if it would exceed CBUS_METRICS_SNAPSHOT_MAX (then buf is empty).
#define CBUS_METRICS_SNAPSHOT_MAX (256 * 1024)
int
    cbus_metrics_encode (cbus_metrics_t *self, cbus_buf_t *buf);
//  Decode a snapshot from outside into a new registry, keeping what
//  matches the table (SELF rows, right label count, right bucket count,
//  label values printable and at most CBUS_METRICS_LABEL_MAX bytes,
//  at most series_max label sets a row). Returns NULL with a reason only
//  when the bytes are not a snapshot at all.
cbus_metrics_t *
    cbus_metrics_decode (const uint8_t *data, size_t size, char *reason);

//  One source of a scrape: its registry and the service label value its
//  SELF series get (NULL: none).
typedef struct {
    const char *service;            //  "chainstore", "miner.3", "gateway"
    cbus_metrics_t *metrics;        //  Borrowed
} cbus_metrics_source_t;

//  Render sources in the Prometheus text format 0.0.4 into out (appended):
//  every row of the table in table order, HELP and TYPE once each, then
//  each source's label sets. Rows no source holds are left out.
void
    cbus_metrics_render (const cbus_metrics_source_t *sources, size_t count,
                         cbus_buf_t *out);

//  Resident memory of this process (bytes, from /proc/self/statm), or 0
//  where that cannot be read.
uint64_t
    cbus_metrics_resident_bytes (void);

void
    cbus_metrics_test (bool verbose);

#endif
