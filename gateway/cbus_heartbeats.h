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
    =========================================================================
*/
#ifndef CBUS_HEARTBEATS_H_INCLUDED
#define CBUS_HEARTBEATS_H_INCLUDED

#include "cbus.h"

//  Most publishers tracked at once.
#define CBUS_HEARTBEATS_MAX 1024

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
//  Forget sources not heard for max_age_ms.
void
    cbus_heartbeats_prune (cbus_heartbeats_t *self, int64_t now_mono, int64_t max_age_ms);
size_t
    cbus_heartbeats_size (cbus_heartbeats_t *self);

void
    cbus_heartbeats_test (bool verbose);

#endif
