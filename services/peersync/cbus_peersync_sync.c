/*  =========================================================================
    cbus_peersync_sync - catching up with the peer that has most work

    One sync at a time:

        LOCATOR (our store) -> GETHEADERS -> HEADERS (peer)
        -> BLOCKS.HAVE (our store) -> GETBLOCKS -> BLOCKS (peer)
        -> BLOCK.SUBMIT of each, in order (our store, cbus_submitq)
        -> the next GETBLOCKS, or LOCATOR again, or the end.

    Nothing waits: each step is a message sent, and the next runs from the
    answer's handler. The next batch is asked for while the last one is
    still being stored, with at most one batch waiting and
    PEERSYNC_SUBMIT_WINDOW blocks at the chainstore at once. The peer has
    PEERSYNC_SYNC_TIMEOUT_MS to answer each request and pays if late; our
    chainstore has its own deadlines, and when it fails or does not answer
    the sync ends without blaming anyone and starts again a little later.
    Every handler checks the epoch it was sent in: a sync that ended (or
    ended and started again) ignores what an older one asked.
    =========================================================================
*/
#include "cbus_peersync_private.h"

static void s_on_submitted (void *owner, const uint8_t hash [CBUS_HASH_BYTES], cbus_reply_t *reply);
static void s_advance (peersync_t *self);

int
peersync_sync_init (peersync_t *self)
{
    self->sync.submitq = cbus_submitq_new (self->local.chainstore, PEERSYNC_SUBMIT_WINDOW,
                                           PEERSYNC_SUBMIT_TIMEOUT_MS, s_on_submitted, self);
    return self->sync.submitq ? 0 : -1;
}

void
peersync_sync_destroy (peersync_t *self)
{
    cbus_submitq_destroy (&self->sync.submitq);
    free (self->sync.queue);
    self->sync.queue = NULL;
}

static void *
s_epoch_arg (peersync_t *self)
{
    return (void *) (uintptr_t) self->sync.epoch;
}

//  True if a handler's call belongs to the sync running now.
static bool
s_current (peersync_t *self, const cbus_call_t *call)
{
    return self->sync.peer && (uint64_t) (uintptr_t) call->arg == self->sync.epoch;
}

static void
s_wait_for_peer (peersync_t *self, peersync_wait_t what)
{
    self->sync.waiting = what;
    self->sync.deadline = cbus_mono_ms () + PEERSYNC_SYNC_TIMEOUT_MS;
}

//  Our chainstore failed a step (refused, did not answer, or answered
//  what does not decode): end, blame nobody, try again soon.
static void
s_store_failed (peersync_t *self, const char *reason, cbus_code_t code)
{
    char why [CBUS_REASON_MAX + 32];
    snprintf (why, sizeof (why), "our chainstore: %s (%s)", reason, cbus_code_name (code));
    peersync_sync_stop (self, why);
    self->sync.retry_at = cbus_mono_ms () + PEERSYNC_SYNC_RETRY_MS;
}

//  --------------------------------------------------------------------------
//  Headers

static void
s_on_locator (const cbus_call_t *call, cbus_reply_t *reply)
{
    peersync_t *self = (peersync_t *) call->owner;
    if (!s_current (self, call))
        return;
    self->sync.asking_store = false;
    cbus_locator_reply_t locator;
    char reason [CBUS_REASON_MAX];
    if (!cbus_reply_ok (reply)) {
        s_store_failed (self, reply->reason, reply->code);
        return;
    }
    if (cbus_locator_reply_decode (cbus_reply_map (reply), &locator, reason)) {
        s_store_failed (self, reason, CBUS_CODE_MALFORMED);
        return;
    }
    //  After a full HEADERS, the next start after its last header, which
    //  our locator misses when those blocks went to a side branch.
    peersync_getheaders_pack (self->sync.more_headers ? self->sync.last_header : NULL,
                              &locator.hashes, PEERSYNC_HEADERS_BATCH, &self->message);
    peersync_send (self, self->sync.peer, CBUS_P2P_GETHEADERS, &self->message);
    s_wait_for_peer (self, SYNC_HEADERS);
}

static void
s_ask_headers (peersync_t *self)
{
    self->sync.asking_store = true;
    cbus_caller_send (self->local.chainstore, CBUS_CMD_LOCATOR, NULL, 0,
                      PEERSYNC_STORE_TIMEOUT_MS, s_on_locator, self, s_epoch_arg (self));
}

//  Which of the queued blocks our chainstore has: those are dropped.
static void
s_on_have (const cbus_call_t *call, cbus_reply_t *reply)
{
    peersync_t *self = (peersync_t *) call->owner;
    if (!s_current (self, call))
        return;
    peersync_sync_t *sync = &self->sync;
    sync->asking_store = false;
    cbus_blocks_have_reply_t have;
    char reason [CBUS_REASON_MAX];
    if (!cbus_reply_ok (reply)) {
        s_store_failed (self, reply->reason, reply->code);
        return;
    }
    if (cbus_blocks_have_reply_decode (cbus_reply_map (reply), &have, reason)) {
        s_store_failed (self, reason, CBUS_CODE_MALFORMED);
        return;
    }
    size_t kept = 0;
    for (size_t index = 0; index < sync->queue_size; index++) {
        //  One answer per hash asked; one missing is a block to fetch.
        bool known = index < have.have.count && cbus_list_bool (&have.have, (uint32_t) index);
        if (!known)
            memmove (sync->queue [kept++], sync->queue [index], CBUS_HASH_BYTES);
    }
    sync->queue_size = kept;
    sync->queue_next = 0;
    if (kept)
        s_advance (self);
    else
    if (sync->more_headers)
        s_ask_headers (self);
    else
        peersync_sync_stop (self, "caught up");
}

//  Hash each header into the queue; they must chain one to the next.
static int
s_queue_headers (peersync_t *self, const msgpack_object *headers)
{
    uint32_t count = headers->via.array.size;
    void *queue = realloc (self->sync.queue, count * CBUS_HASH_BYTES);
    if (!queue)
        return -1;
    self->sync.queue = (uint8_t (*) [CBUS_HASH_BYTES]) queue;
    for (uint32_t index = 0; index < count; index++) {
        const msgpack_object *item = &headers->via.array.ptr [index];
        cbus_header_t header;
        if (item->type != MSGPACK_OBJECT_BIN
        ||  cbus_header_decode (&header, (const uint8_t *) item->via.bin.ptr, item->via.bin.size)
        ||  (index > 0 && memcmp (header.prev_hash, self->sync.queue [index - 1], CBUS_HASH_BYTES)))
            return -1;
        cbus_header_hash (&header, self->sync.queue [index]);
    }
    self->sync.queue_size = count;
    self->sync.queue_next = 0;
    memcpy (self->sync.last_header, self->sync.queue [count - 1], CBUS_HASH_BYTES);
    return 0;
}

void
peersync_on_headers (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map)
{
    peersync_sync_t *sync = &self->sync;
    if (peer != sync->peer || sync->waiting != SYNC_HEADERS)
        return;                     //  Unasked: ignore (late answer)
    sync->waiting = SYNC_IDLE;
    const msgpack_object *headers = peersync_headers_parse (map);
    if (!headers) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "malformed HEADERS");
        peersync_sync_stop (self, "malformed HEADERS");
        return;
    }
    if (headers->via.array.size == 0) {
        peersync_sync_stop (self, "the peer has nothing after our locator");
        return;
    }
    if (s_queue_headers (self, headers)) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "HEADERS that do not chain");
        peersync_sync_stop (self, "bad HEADERS");
        return;
    }
    sync->more_headers = headers->via.array.size == PEERSYNC_HEADERS_BATCH;
    //  Keep those we do not have.
    cbus_blocks_have_t have = { .hashes = { .count = (uint32_t) sync->queue_size,
                                            .items = sync->queue } };
    cbus_blocks_have_encode (&have, &self->message);
    sync->asking_store = true;
    cbus_caller_send (self->local.chainstore, CBUS_CMD_BLOCKS_HAVE, self->message.data,
                      self->message.size, PEERSYNC_STORE_TIMEOUT_MS, s_on_have, self,
                      s_epoch_arg (self));
}

//  --------------------------------------------------------------------------
//  Blocks

static void
s_ask_blocks (peersync_t *self)
{
    peersync_sync_t *sync = &self->sync;
    size_t count = sync->queue_size - sync->queue_next;
    if (count > PEERSYNC_BLOCKS_BATCH)
        count = PEERSYNC_BLOCKS_BATCH;
    peersync_getblocks_pack ((const uint8_t (*) [CBUS_HASH_BYTES]) sync->queue + sync->queue_next,
                             count, PEERSYNC_BLOCKS_BYTES, &self->message);
    peersync_send (self, sync->peer, CBUS_P2P_GETBLOCKS, &self->message);
    sync->queue_asked = count;
    s_wait_for_peer (self, SYNC_BLOCKS);
}

//  The next step, once nothing is owed: ask for more blocks while at most
//  one batch waits for the chainstore; once every queued block is stored,
//  headers again or the end.
static void
s_advance (peersync_t *self)
{
    peersync_sync_t *sync = &self->sync;
    if (!sync->peer || sync->waiting != SYNC_IDLE || sync->asking_store)
        return;
    if (sync->queue_next < sync->queue_size) {
        if (cbus_submitq_queued (sync->submitq) <= PEERSYNC_BLOCKS_BATCH)
            s_ask_blocks (self);
        return;
    }
    if (cbus_submitq_queued (sync->submitq) || cbus_submitq_in_flight (sync->submitq))
        return;
    if (sync->more_headers || cbus_u256_cmp (sync->peer->work, self->chain.work) > 0)
        s_ask_headers (self);
    else
        peersync_sync_stop (self, "caught up");
}

static void
s_log_progress (peersync_t *self)
{
    int64_t now = cbus_mono_ms ();
    if (now - self->sync.logged >= 1000) {
        zsys_info ("sync progress peer=%s height=%" PRIu64 " target=%" PRIu64 " blocks=%" PRIu64,
                   peersync_peer_name (self->sync.peer), self->chain.height, self->sync.target,
                   self->sync.blocks);
        self->sync.logged = now;
    }
}

//  Our chainstore's answer to one synced block, in the order sent.
static void
s_on_submitted (void *owner, const uint8_t hash [CBUS_HASH_BYTES], cbus_reply_t *reply)
{
    (void) hash;
    peersync_t *self = (peersync_t *) owner;
    if (!self->sync.peer)
        return;
    if (cbus_reply_ok (reply)) {
        self->sync.blocks++;
        self->sync.peer->last_block = cbus_mono_ms ();     //  A merit (cbus_evict)
        s_log_progress (self);
        s_advance (self);
        return;
    }
    char why [CBUS_REASON_MAX + 32];
    snprintf (why, sizeof (why), "%s (%s)", reply->reason, cbus_code_name (reply->code));
    if (peersync_refusal_blames_peer (reply->code)) {
        peersync_peer_t *peer = self->sync.peer;
        peersync_sync_stop (self, why);
        peersync_punish (self, peer, PEERSYNC_INVALID_BLOCK_COST, reply->reason);
    }
    else
    if (reply->code == CBUS_CODE_ORPHAN)
        peersync_sync_stop (self, why);
    else
        s_store_failed (self, reply->reason, reply->code);
}

//  Each block must be the one asked for, in the order asked. Returns -1
//  (nothing queued) for one that is not.
static int
s_check_blocks (peersync_t *self, const msgpack_object *blocks)
{
    for (uint32_t index = 0; index < blocks->via.array.size; index++) {
        const msgpack_object *item = &blocks->via.array.ptr [index];
        cbus_header_t header;
        uint8_t hash [CBUS_HASH_BYTES];
        if (item->type != MSGPACK_OBJECT_BIN
        ||  cbus_block_header_from_bytes (item->via.bin.ptr, item->via.bin.size, &header))
            return -1;
        cbus_header_hash (&header, hash);
        if (memcmp (hash, self->sync.queue [self->sync.queue_next + index], CBUS_HASH_BYTES))
            return -1;
    }
    return 0;
}

void
peersync_on_blocks (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map)
{
    peersync_sync_t *sync = &self->sync;
    if (peer != sync->peer || sync->waiting != SYNC_BLOCKS)
        return;
    sync->waiting = SYNC_IDLE;
    const msgpack_object *blocks = peersync_blocks_parse (map, (uint32_t) sync->queue_asked);
    if (!blocks || s_check_blocks (self, blocks)) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "BLOCKS that were not asked for");
        peersync_sync_stop (self, "unasked BLOCKS");
        return;
    }
    if (blocks->via.array.size == 0) {
        peersync_sync_stop (self, "the peer did not send the blocks it announced");
        return;
    }
    for (uint32_t index = 0; index < blocks->via.array.size && sync->peer; index++) {
        const msgpack_object *item = &blocks->via.array.ptr [index];
        const uint8_t *hash = sync->queue [sync->queue_next];
        //  Blocks that arrive by sync are not relayed: peers sync too.
        //  Marked before they go: the chainstore's event may come first.
        peersync_quiet_add (self, hash);
        zframe_t *block = zframe_new (item->via.bin.ptr, item->via.bin.size);
        if (!block || cbus_submitq_push (sync->submitq, &block, hash)) {
            zframe_destroy (&block);
            peersync_sync_stop (self, "out of memory");
            return;
        }
        sync->queue_next++;
    }
    s_advance (self);
}

//  --------------------------------------------------------------------------
//  Start, stop, choose

void
peersync_sync_start (peersync_t *self, peersync_peer_t *peer)
{
    peersync_sync_t *sync = &self->sync;
    if (sync->peer || peer->state != P_LINKED)
        return;
    sync->peer = peer;
    sync->epoch++;
    sync->waiting = SYNC_IDLE;
    sync->asking_store = false;
    sync->target = peer->height;
    sync->blocks = 0;
    sync->queue_size = sync->queue_next = 0;
    sync->more_headers = false;
    zsys_info ("sync started peer=%s our_height=%" PRIu64 " peer_height=%" PRIu64,
               peersync_peer_name (peer), self->chain.height, peer->height);
    s_ask_headers (self);
}

void
peersync_sync_stop (peersync_t *self, const char *why)
{
    peersync_sync_t *sync = &self->sync;
    if (!sync->peer)
        return;
    zsys_info ("sync stopped peer=%s height=%" PRIu64 " blocks=%" PRIu64 " why=\"%s\"",
               peersync_peer_name (sync->peer), self->chain.height, sync->blocks, why);
    sync->peer = NULL;
    sync->epoch++;
    sync->waiting = SYNC_IDLE;
    sync->asking_store = false;
    sync->queue_size = sync->queue_next = 0;
    cbus_submitq_clear (sync->submitq);
}

//  The linked peer with the most work, if it has more than we do.
static peersync_peer_t *
s_best_peer (peersync_t *self)
{
    peersync_peer_t *best = NULL;
    PEERSYNC_EACH (self, peer)
        if (peer->state == P_LINKED && cbus_u256_cmp (peer->work, self->chain.work) > 0
        &&  (!best || cbus_u256_cmp (peer->work, best->work) > 0))
            best = peer;
    return best;
}

void
peersync_sync_if_behind (peersync_t *self)
{
    if (self->sync.peer || !self->chain.known || cbus_mono_ms () < self->sync.retry_at)
        return;
    peersync_peer_t *best = s_best_peer (self);
    if (best)
        peersync_sync_start (self, best);
}

void
peersync_sync_tick (peersync_t *self, int64_t now)
{
    //  A sync request not answered in time costs the peer and ends.
    if (self->sync.peer && self->sync.waiting != SYNC_IDLE && now > self->sync.deadline) {
        peersync_peer_t *peer = self->sync.peer;
        peersync_sync_stop (self, "timed out");
        peersync_punish (self, peer, PEERSYNC_TIMEOUT_COST, "a sync request not answered in time");
    }
    peersync_sync_if_behind (self);
}
