/*  =========================================================================
    cbus_heartbeats - which processes of the node are alive, from the
    node.heartbeat events they publish on the bus

    Keeps, per publisher (the event's "src": "chainstore", "miner.3"...),
    when it was last heard. A publisher is alive if heard within
    CBUS_HEARTBEAT_DEAD_MS. The bus itself publishes nothing: it is alive
    if any heartbeat went through it recently (the gateway hears its own).
    The table is bounded: sources silent for long are pruned, and beyond
    CBUS_HEARTBEATS_MAX sources new names are ignored, so that a noisy or
    hostile publisher cannot grow it without limit.

    For GET /metrics it keeps what each heartbeat carries besides: the
    process's resident memory and its metrics snapshot (bytes, decoded
    only when scraped), iterated in name order by cbus_heartbeats_each.

    It also keeps what the bus says of mining: the hash rate each miner
    puts in its heartbeat, and the last CBUS_HEARTBEATS_RATE_BLOCKS + 1
    blocks of the active chain from chain.block.connected and
    .disconnected (height, time, cumulative work), from which the
    network's hash rate is estimated: the chain work those blocks add
    (exact, 256-bit) over the span of their timestamps.
    =========================================================================
*/
#ifndef CBUS_HEARTBEATS_H_INCLUDED
#define CBUS_HEARTBEATS_H_INCLUDED

#include "cbus.h"

//  Most publishers tracked at once.
#define CBUS_HEARTBEATS_MAX 1024
//  Blocks the network's hash rate is estimated over. Block intervals are
//  random (exponential), so an estimate over N blocks is off by about
//  1/sqrt(N): 60 gives some 13 %, and at a one-second block interval
//  follows a change of miners within a minute. Bitcoin Core's
//  getnetworkhashps takes 120 blocks by default, at ten minutes each.
#define CBUS_HEARTBEATS_RATE_BLOCKS 60
//  Most sources whose metrics snapshot is kept (the node's services and
//  its miners; a snapshot is at most CBUS_METRICS_SNAPSHOT_MAX bytes).
#define CBUS_HEARTBEATS_METRICS_MAX 64

typedef struct _cbus_heartbeats_t cbus_heartbeats_t;

cbus_heartbeats_t *
    cbus_heartbeats_new (void);
void
    cbus_heartbeats_destroy (cbus_heartbeats_t **self_p);

//  Record a heartbeat from src (size bytes, need not be NUL-terminated),
//  heard at now_mono (monotonic ms) and now_wall (wall clock ms). Names
//  that are empty, longer than 64 bytes or not printable ASCII are
//  ignored. Returns 0, or -1 if ignored.
int
    cbus_heartbeats_record (cbus_heartbeats_t *self, const char *src, size_t size,
                            int64_t now_mono, uint64_t now_wall);
//  True if src was heard within CBUS_HEARTBEAT_DEAD_MS of now_mono.
bool
    cbus_heartbeats_alive (cbus_heartbeats_t *self, const char *src, int64_t now_mono);
//  Wall-clock ms when src was last heard, or 0 if never.
uint64_t
    cbus_heartbeats_last_seen (cbus_heartbeats_t *self, const char *src);
//  True if anyone was heard within CBUS_HEARTBEAT_DEAD_MS (the bus works).
bool
    cbus_heartbeats_any_alive (cbus_heartbeats_t *self, int64_t now_mono);
//  Wall-clock ms of the latest heartbeat from anyone, or 0 if never.
uint64_t
    cbus_heartbeats_latest (cbus_heartbeats_t *self);
//  Write a JSON array of the sources alive whose name starts with prefix,
//  sorted ("miner" gives ["miner.1", "miner.2"]).
void
    cbus_heartbeats_write_alive (cbus_heartbeats_t *self, const char *prefix,
                                 int64_t now_mono, cbus_buf_t *out);
//  The hash rate src reported in its heartbeat (a miner). Returns 0, or
//  -1 if src is not in the table (record it first) or not a valid name.
int
    cbus_heartbeats_set_rate (cbus_heartbeats_t *self, const char *src, size_t size,
                              uint64_t hash_rate);
//  Write a JSON object of the hash rates of the sources alive whose name
//  starts with prefix and that reported one, sorted by name
//  ({"miner.1": 6100000, "miner.2": 5900000}); their sum into sum (may
//  be NULL).
void
    cbus_heartbeats_write_rates (cbus_heartbeats_t *self, const char *prefix,
                                 int64_t now_mono, cbus_buf_t *out, uint64_t *sum);
//  A block connected to (connected) or left (!connected) the active
//  chain, with its height, timestamp and cumulative chain work. A
//  connected block that does not follow the last one kept starts the
//  window again; a block that left drops it and those above it.
void
    cbus_heartbeats_block (cbus_heartbeats_t *self, bool connected, uint64_t height,
                           uint64_t time_ms, const uint8_t work [CBUS_U256_BYTES]);
//  The network's hash rate (hashes a second) over the blocks kept: the
//  work of the last `blocks` blocks over the span_ms between the first
//  and the last timestamps. Returns 0, or -1 while fewer than two blocks
//  are kept or their span is not positive.
int
    cbus_heartbeats_network_rate (cbus_heartbeats_t *self, double *rate, uint64_t *blocks,
                                  uint64_t *span_ms);
//  What src's heartbeat carried besides liveness (record it first): its
//  resident memory (0: not said) and its metrics snapshot (NULL: none),
//  kept as bytes until the next heartbeat and decoded only when scraped
//  (cbus_metrics_decode). At most CBUS_HEARTBEATS_METRICS_MAX sources
//  keep one, and none beyond CBUS_METRICS_SNAPSHOT_MAX bytes. Returns
//  0, or -1 when src is unknown or the snapshot was not kept.
int
    cbus_heartbeats_set_beat (cbus_heartbeats_t *self, const char *src, size_t size,
                              uint64_t resident_bytes, const uint8_t *snapshot,
                              size_t snapshot_size);
//  One source as cbus_heartbeats_each shows it (all borrowed).
typedef struct {
    const char *name;               //  Its src
    bool alive;                     //  Heard within CBUS_HEARTBEAT_DEAD_MS
    uint64_t resident_bytes;        //  From its last heartbeat, 0 if not said
    bool has_rate;                  //  It reported a hash rate (a miner)
    uint64_t hash_rate;             //  ... the last one
    const uint8_t *snapshot;        //  Its last metrics snapshot, or NULL
    size_t snapshot_size;           //  ... its bytes
} cbus_heartbeats_info_t;
typedef void (cbus_heartbeats_each_fn) (const cbus_heartbeats_info_t *info, void *arg);
//  Call fn for every source in the table, in name order.
void
    cbus_heartbeats_each (cbus_heartbeats_t *self, int64_t now_mono,
                          cbus_heartbeats_each_fn *fn, void *arg);
//  Forget sources not heard for max_age_ms.
void
    cbus_heartbeats_prune (cbus_heartbeats_t *self, int64_t now_mono, int64_t max_age_ms);
size_t
    cbus_heartbeats_size (cbus_heartbeats_t *self);

void
    cbus_heartbeats_test (bool verbose);

#endif
