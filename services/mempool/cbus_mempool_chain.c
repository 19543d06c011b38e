/*  =========================================================================
    cbus_mempool_chain - the chain as the mempool follows it

    chain.block.connected removes the block's transactions from the pool;
    chain.block.disconnected takes them back (BLOCK.GET gives them), so
    that a reorganisation loses nothing. Every tick, after a gap in the
    events and at start, a resync asks the chainstore for its tip; when the
    tip moved in a way we did not see (events lost while the bus or this
    service restarted), each old tip of ours the active chain left is
    walked back (HEADERS says whether it left, then BLOCK.GET one block at
    a time) and its blocks' transactions taken back, as their
    disconnected events would have; then the pool is reconciled (TX.KNOWN
    in slices): what the chain holds leaves it.

    Each of those steps is one call through the caller whose handler
    starts the next: one call of the chain side at a time, and while one is
    out the chain events wait in their socket (it is not read), so events
    and what the calls bring are handled in the order they happened, as
    when the calls were synchronous, while the loop goes on answering
    everything else. A call that fails ends its step: the next tick (or
    gap) starts again, and old tips not yet checked stay queued.
    =========================================================================
*/
#include "cbus_mempool_private.h"

//  Most old tips queued for a check; past it the oldest is forgotten.
#define S_OLD_TIPS_MAX 64

void
cbus_mempool_chainstore_heard (cbus_mempool_t *self, cbus_reply_t *reply, const char *command)
{
    //  A reply made locally (no body) means the chainstore did not answer.
    bool silent = cbus_reply_is_local (reply);
    if (silent && !self->chainstore_down)
        zsys_warning ("chainstore does not answer command=%s: %s", command, reply->reason);
    else
    if (!silent && self->chainstore_down)
        zsys_info ("chainstore answers again");
    self->chainstore_down = silent;
}

void
cbus_mempool_chain_call (cbus_mempool_t *self, const char *command, cbus_buf_t *body,
                         cbus_call_fn *handler)
{
    self->chain_busy = true;
    if (!self->events_paused) {
        zloop_reader_end (self->loop, self->sub);
        self->events_paused = true;
    }
    cbus_caller_send (self->chainstore, command, body ? body->data : NULL, body ? body->size : 0,
                      CBUS_MEMPOOL_CHAINSTORE_MS, handler, self, NULL);
}

void
cbus_mempool_chain_idle (cbus_mempool_t *self)
{
    self->chain_busy = false;
    cbus_mempool_chain_next (self);
}

static void s_resync_start (cbus_mempool_t *self);

//  What the chain side does next once idle: a resync if one is wanted,
//  else read events again, and build a template if one is wanted (events
//  that wait meanwhile may make it stale: then it is built again).
void
cbus_mempool_chain_next (cbus_mempool_t *self)
{
    if (self->chain_busy || self->stopping)
        return;
    if (self->resync_wanted) {
        s_resync_start (self);
        return;
    }
    if (self->events_paused) {
        zloop_reader (self->loop, self->sub, cbus_mempool_on_chain_event, self);
        self->events_paused = false;
    }
    if (self->template_wanted)
        cbus_mempool_template_start (self);
}

void
cbus_mempool_resync (cbus_mempool_t *self)
{
    if (!self->chain_busy)
        self->resync_wanted = true;
    cbus_mempool_chain_next (self);
}

//  Remember an old tip of ours to check against the chain.
static void
s_old_tip_add (cbus_mempool_t *self, const uint8_t hash [CBUS_HASH_BYTES], uint64_t height)
{
    cbus_mempool_old_tip_t *old;
    for (old = (cbus_mempool_old_tip_t *) zlistx_first (self->old_tips); old;
         old = (cbus_mempool_old_tip_t *) zlistx_next (self->old_tips))
        if (memcmp (old->hash, hash, CBUS_HASH_BYTES) == 0)
            return;
    if (zlistx_size (self->old_tips) >= S_OLD_TIPS_MAX) {
        zsys_warning ("too many old tips to check: the oldest is forgotten");
        free (zlistx_detach (self->old_tips, NULL));
    }
    old = (cbus_mempool_old_tip_t *) malloc (sizeof (cbus_mempool_old_tip_t));
    if (!old || !zlistx_add_end (self->old_tips, old)) {
        zsys_error ("out of memory: old tip not checked");
        free (old);
        return;
    }
    memcpy (old->hash, hash, CBUS_HASH_BYTES);
    old->height = height;
}

//  Take back the transactions of the block in a BLOCK.GET reply (it left
//  the active chain), durably, before the blocks that joined are seen.
//  With only_inactive, a block the active chain still holds is left
//  alone. Returns 0 when taken back, 1 when left alone, -1 if the reply
//  holds no block; prev gets the block's parent.
static int
s_take_back (cbus_mempool_t *self, cbus_reply_t *reply, const uint8_t hash [CBUS_HASH_BYTES],
             bool only_inactive, uint8_t prev [CBUS_HASH_BYTES])
{
    cbus_block_get_reply_t msg;     //  Borrows the reply
    char reason [CBUS_REASON_MAX] = "", hex [CBUS_HASH_HEX];
    cbus_block_t *block = NULL;
    if (!cbus_reply_ok (reply))
        snprintf (reason, sizeof (reason), "%s", reply->reason);
    else
    if (cbus_block_get_reply_decode (cbus_reply_map (reply), &msg, reason) == 0)
        block = cbus_block_new_from_bytes (msg.block.data, msg.block.size, reason);
    bool *staged = block ? (bool *) calloc (cbus_block_tx_count (block) + 1, sizeof (bool)) : NULL;
    if (!staged) {
        zsys_error ("could not take back the transactions of block %s: %s",
                    cbus_hash_hex (hash, hex), block ? "out of memory" : reason);
        cbus_block_destroy (&block);
        return -1;
    }
    memcpy (prev, cbus_block_header (block)->prev_hash, CBUS_HASH_BYTES);
    if (only_inactive && msg.confirmations > 0) {
        free (staged);
        cbus_block_destroy (&block);
        return 1;
    }
    //  A synced write of its own on this thread (a reorganisation is rare
    //  and small); nothing else is ever staged between handlers.
    size_t count = cbus_block_tx_count (block), taken = 0;
    for (size_t index = 0; index < count; index++)
        staged [index] = cbus_pool_stage (self->pool, cbus_block_tx (block, index)) == 1;
    if (cbus_pool_commit (self->pool) == 0) {
        for (size_t index = 0; index < count; index++)
            if (staged [index]) {
                cbus_mempool_publish_added (self, cbus_block_tx (block, index));
                taken++;
            }
    }
    else
        zsys_error ("could not store the transactions of disconnected block %s",
                    cbus_hash_hex (hash, hex));
    zsys_info ("block disconnected hash=%s taken_back=%zu pending=%zu",
               cbus_hash_hex (hash, hex), taken, cbus_pool_size (self->pool));
    free (staged);
    cbus_block_destroy (&block);
    return 0;
}

//  ---------------------------------------------------------------------
//  Resync: TIP, then each old tip (HEADERS, then the walk back), then
//  the reconciliation.

static void s_walk_next (cbus_mempool_t *self);
static void s_reconcile_start (cbus_mempool_t *self);

//  Whether the chain store takes blocks (a full disk or a failed write
//  pauses it), from TIP or from chain.storage, and the code of why:
//  MINE is refused with it while it does not. A chain store that gives
//  no code (older than storage_code) is taken to mean a full disk; any
//  code but no_space is a storage fault.
static void
s_storage_seen (cbus_mempool_t *self, bool paused, cbus_str_t storage, bool has_code,
                cbus_str_t code_name)
{
    if (!paused) {
        if (self->chain_full)
            zsys_info ("chainstore takes blocks again");
        self->chain_full = false;
        return;
    }
    cbus_code_t code = !has_code
                    || cbus_code_from_name (code_name.data, code_name.size) == CBUS_CODE_NO_SPACE
                     ? CBUS_CODE_NO_SPACE : CBUS_CODE_STORAGE;
    //  The reason is kept up to date (its figures move); a change of
    //  state or of code is logged.
    snprintf (self->chain_storage, sizeof (self->chain_storage), "%.*s",
              (int) (storage.size < 200 ? storage.size : 200), storage.data ? storage.data : "");
    if (self->chain_full && code == self->chain_code)
        return;
    self->chain_full = true;
    self->chain_code = code;
    zsys_warning ("chainstore takes no blocks (%s): %s", cbus_code_name (code),
                  self->chain_storage);
    cbus_mempool_mine_no_space (self);
}

static void
s_on_tip (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_mempool_t *self = (cbus_mempool_t *) call->owner;
    cbus_mempool_chainstore_heard (self, reply, CBUS_CMD_TIP);
    cbus_tip_reply_t tip;           //  Borrows the reply
    char reason [CBUS_REASON_MAX];
    const char *refused = NULL;
    if (!cbus_reply_ok (reply))
        refused = reply->reason;
    else
    if (cbus_tip_reply_decode (cbus_reply_map (reply), &tip, reason))
        refused = reason;
    else
    if (tip.bits > UINT32_MAX || (tip.has_next_bits && tip.next_bits > UINT32_MAX))
        refused = "TIP reply: bits out of range";
    if (refused) {
        if (!self->chainstore_down)
            zsys_warning ("chainstore gave no tip: %s", refused);
        cbus_mempool_chain_idle (self);
        return;
    }
    s_storage_seen (self, tip.has_storage, tip.storage, tip.has_storage_code, tip.storage_code);
    bool moved = memcmp (tip.hash, self->tip_hash, CBUS_HASH_BYTES) != 0;
    bool changed = !self->tip_known || moved;
    //  Our tip (the one stored before a restart, too) may have left the
    //  active chain unseen: checked below.
    if ((self->tip_known || self->tip_stored) && moved)
        s_old_tip_add (self, self->tip_hash, self->tip_height);
    self->tip_stored = false;
    self->tip_known = true;
    self->tip_height = tip.height;
    self->tip_time_ms = tip.time_ms;
    //  The bits a block on this tip must carry (a chainstore older than
    //  retargeting gives only the network's fixed bits).
    self->bits = (uint32_t) (tip.has_next_bits && tip.next_bits ? tip.next_bits : tip.bits);
    memcpy (self->tip_hash, tip.hash, CBUS_HASH_BYTES);
    cbus_pool_set_tip (self->pool, tip.hash, tip.height);
    if (changed && cbus_pool_size (self->pool) == 0 && cbus_pool_flush (self->pool))
        zsys_error ("could not write the mempool's tip");
    self->resync_reconcile = changed;
    s_walk_next (self);
}

static void
s_resync_start (cbus_mempool_t *self)
{
    self->resync_wanted = false;
    cbus_tip_t ask = {0};
    cbus_tip_encode (&ask, &self->ask);
    cbus_mempool_chain_call (self, CBUS_CMD_TIP, &self->ask, s_on_tip);
}

static void
s_walk_step (cbus_mempool_t *self);

static void
s_on_walk_block (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_mempool_t *self = (cbus_mempool_t *) call->owner;
    cbus_mempool_chainstore_heard (self, reply, CBUS_CMD_BLOCK_GET);
    uint8_t prev [CBUS_HASH_BYTES];
    int rc = s_take_back (self, reply, self->walk_hash, true, prev);
    if (rc == 0) {
        self->resync_reconcile = true;
        memcpy (self->walk_hash, prev, CBUS_HASH_BYTES);
        if (++self->walk_steps < CBUS_MEMPOOL_WALK_BACK_MAX) {
            s_walk_step (self);
            return;
        }
    }
    if (rc == -1 && self->chainstore_down) {
        //  Walked again from the start next time: what was taken back
        //  already is pending, and stays so.
        s_old_tip_add (self, self->walk_from.hash, self->walk_from.height);
        cbus_mempool_chain_idle (self);
        return;
    }
    s_walk_next (self);             //  On the active chain, unknown, or far enough
}

static void
s_walk_step (cbus_mempool_t *self)
{
    cbus_block_get_t ask = { .hash = self->walk_hash, .has_hash = true };
    cbus_block_get_encode (&ask, &self->ask);
    cbus_mempool_chain_call (self, CBUS_CMD_BLOCK_GET, &self->ask, s_on_walk_block);
}

//  HEADERS with the old tip as the only locator hash says where the
//  chains part: right after it when it is still on the active chain.
static void
s_on_old_tip_headers (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_mempool_t *self = (cbus_mempool_t *) call->owner;
    cbus_mempool_chainstore_heard (self, reply, CBUS_CMD_HEADERS);
    cbus_headers_reply_t msg;       //  Borrows the reply
    char reason [CBUS_REASON_MAX];
    if (!cbus_reply_ok (reply)
    ||  cbus_headers_reply_decode (cbus_reply_map (reply), &msg, reason)) {
        if (self->chainstore_down) {
            //  Not checked this time: queued again for the next resync.
            s_old_tip_add (self, self->walk_from.hash, self->walk_from.height);
            cbus_mempool_chain_idle (self);
        }
        else {
            zsys_warning ("could not check an old tip: %s",
                          cbus_reply_ok (reply) ? reason : reply->reason);
            s_walk_next (self);
        }
        return;
    }
    if (msg.start == self->walk_from.height + 1) {
        s_walk_next (self);         //  Still active: nothing left the chain
        return;
    }
    //  Our tip left the active chain, and we did not see how (this
    //  service or the bus restarted meanwhile): the blocks from it back to
    //  the active chain left it unseen.
    memcpy (self->walk_hash, self->walk_from.hash, CBUS_HASH_BYTES);
    self->walk_steps = 0;
    s_walk_step (self);
}

//  Check the next old tip, or reconcile when none is left.
static void
s_walk_next (cbus_mempool_t *self)
{
    cbus_mempool_old_tip_t *old = (cbus_mempool_old_tip_t *) zlistx_detach (self->old_tips, NULL);
    if (old) {
        self->walk_from = *old;
        free (old);
        //  One locator hash and no header wanted: the reply's start
        //  says where the chains part.
        const uint8_t *locator [] = { self->walk_from.hash };
        cbus_headers_t ask = {
            .locator = { .count = 1, .item = cbus_mempool_hash_item, .source = locator },
            .max = 0, .has_max = true
        };
        cbus_headers_encode (&ask, &self->ask);
        cbus_mempool_chain_call (self, CBUS_CMD_HEADERS, &self->ask, s_on_old_tip_headers);
        return;
    }
    if (self->resync_reconcile && cbus_pool_size (self->pool) > 0)
        s_reconcile_start (self);
    else
        cbus_mempool_chain_idle (self);
}

static void
s_reconcile_free (cbus_mempool_t *self)
{
    free (self->reconcile);
    self->reconcile = NULL;
    self->reconcile_count = self->reconcile_done = self->reconcile_removed = 0;
}

static void
s_reconcile_end (cbus_mempool_t *self)
{
    if (cbus_pool_flush (self->pool))
        zsys_error ("could not write mempool removals");
    if (self->reconcile_removed)
        zsys_info ("reconciled with the chain removed=%zu pending=%zu", self->reconcile_removed,
                   cbus_pool_size (self->pool));
    s_reconcile_free (self);
    cbus_mempool_chain_idle (self);
}

static void s_reconcile_step (cbus_mempool_t *self);

static void
s_on_reconcile_known (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_mempool_t *self = (cbus_mempool_t *) call->owner;
    cbus_mempool_chainstore_heard (self, reply, CBUS_CMD_TX_KNOWN);
    size_t left = self->reconcile_count - self->reconcile_done;
    size_t slice = left < CBUS_MEMPOOL_KNOWN_BATCH ? left : CBUS_MEMPOOL_KNOWN_BATCH;
    cbus_tx_known_reply_t msg;      //  Borrows the reply
    char reason [CBUS_REASON_MAX];
    if (cbus_mempool_known_decode (reply, slice, &msg, reason)) {
        zsys_warning ("reconciliation stopped: %s", reason);
        s_reconcile_end (self);
        return;
    }
    uint8_t (*txids) [CBUS_HASH_BYTES] = self->reconcile + self->reconcile_done;
    for (uint32_t index = 0; index < slice; index++)
        if (cbus_list_bool (&msg.known, index) && cbus_pool_remove (self->pool, txids [index])) {
            cbus_mempool_publish_removed (self, txids [index]);
            self->reconcile_removed++;
        }
    self->reconcile_done += slice;
    if (self->reconcile_done < self->reconcile_count)
        s_reconcile_step (self);
    else
        s_reconcile_end (self);
}

static void
s_reconcile_step (cbus_mempool_t *self)
{
    size_t left = self->reconcile_count - self->reconcile_done;
    size_t slice = left < CBUS_MEMPOOL_KNOWN_BATCH ? left : CBUS_MEMPOOL_KNOWN_BATCH;
    //  The copy's rows are the list: nothing more is built.
    cbus_tx_known_t ask = {
        .txids = { .count = (uint32_t) slice, .items = self->reconcile + self->reconcile_done }
    };
    cbus_tx_known_encode (&ask, &self->ask);
    cbus_mempool_chain_call (self, CBUS_CMD_TX_KNOWN, &self->ask, s_on_reconcile_known);
}

//  Ask which pending transactions the chain holds, in slices of
//  CBUS_MEMPOOL_KNOWN_BATCH, about a copy of their txids (the pool may
//  grow meanwhile; nothing else removes from it while the chain side is
//  busy).
static void
s_reconcile_start (cbus_mempool_t *self)
{
    size_t total = cbus_pool_size (self->pool);
    self->reconcile = malloc (total * CBUS_HASH_BYTES);
    if (!self->reconcile) {
        zsys_error ("could not reconcile with the chain: out of memory");
        cbus_mempool_chain_idle (self);
        return;
    }
    size_t count = 0;
    for (const uint8_t *txid = cbus_pool_first (self->pool); txid && count < total;
         txid = cbus_pool_next (self->pool))
        memcpy (self->reconcile [count++], txid, CBUS_HASH_BYTES);
    self->reconcile_count = count;
    self->reconcile_done = self->reconcile_removed = 0;
    s_reconcile_step (self);
}

//  ---------------------------------------------------------------------
//  Events

static void
s_on_disconnected_block (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_mempool_t *self = (cbus_mempool_t *) call->owner;
    cbus_mempool_chainstore_heard (self, reply, CBUS_CMD_BLOCK_GET);
    cbus_mempool_disconnect_t *event = &self->disconnect;
    uint8_t parent [CBUS_HASH_BYTES];
    if (s_take_back (self, reply, event->hash, false, parent) == -1) {
        //  The block could not be fetched: remembered as an old tip, so
        //  that the next resync walks back from it and takes its
        //  transactions back (nothing acknowledged is lost).
        s_old_tip_add (self, event->hash, event->height);
        self->resync_wanted = true;
    }
    //  The tip is the block's parent until the new branch arrives.
    self->tip_height = event->height - 1;
    memcpy (self->tip_hash, event->prev, CBUS_HASH_BYTES);
    cbus_pool_set_tip (self->pool, event->prev, event->height - 1);
    if (cbus_pool_flush (self->pool))
        zsys_error ("could not write the mempool's tip");
    if (self->job_active && memcmp (self->job_prev, event->hash, CBUS_HASH_BYTES) == 0)
        self->job_active = false;
    cbus_mempool_chain_idle (self);
}

static void
s_handle_connected (cbus_mempool_t *self, const cbus_block_connected_t *event)
{
    bool follows = self->tip_known
                && memcmp (event->prev_hash, self->tip_hash, CBUS_HASH_BYTES) == 0;
    if (!follows) {
        //  A gap: if our tip left the active chain meanwhile, what left
        //  with it is taken back by the resync this starts, which then
        //  reconciles (so a transaction both there and here ends removed).
        if ((self->tip_known || self->tip_stored)
        &&  memcmp (event->hash, self->tip_hash, CBUS_HASH_BYTES) != 0)
            s_old_tip_add (self, self->tip_hash, self->tip_height);
        self->resync_wanted = true;
    }
    self->tip_stored = false;
    size_t removed = 0;
    for (uint32_t index = 0; index < event->txids.count; index++) {
        const uint8_t *txid = cbus_list_hash (&event->txids, index);
        if (cbus_pool_remove (self->pool, txid)) {
            cbus_mempool_publish_removed (self, txid);
            removed++;
        }
    }
    self->tip_known = true;
    self->tip_height = event->height;
    self->tip_time_ms = event->time_ms;
    //  Before any template on the new tip: the bits it must carry.
    if (event->has_next_bits && event->next_bits && event->next_bits <= UINT32_MAX)
        self->bits = (uint32_t) event->next_bits;
    memcpy (self->tip_hash, event->hash, CBUS_HASH_BYTES);
    cbus_pool_set_tip (self->pool, event->hash, event->height);
    if (cbus_pool_flush (self->pool))
        zsys_error ("could not write mempool removals");
    CBUS_DEBUG ("block seen height=%" PRIu64 " removed=%zu pending=%zu", event->height, removed,
                cbus_pool_size (self->pool));
    cbus_mempool_mine_connected (self, event);
}

//  One chain event: a connected block is handled now; a disconnected
//  one once its block (and so its transactions) is back from BLOCK.GET.
//  A body that does not fit its definition is dropped, logged.
static void
s_chain_event (cbus_mempool_t *self, cbus_event_t *event)
{
    char reason [CBUS_REASON_MAX];
    if (streq (event->topic, CBUS_TOPIC_BLOCK_CONNECTED)) {
        cbus_block_connected_t block;   //  Borrows the event
        if (cbus_block_connected_decode (cbus_event_map (event), &block, reason) == 0) {
            if (block.height > 0) {
                s_handle_connected (self, &block);
                return;
            }
            cbus_fail (reason, "height 0 (the genesis is never an event)");
        }
    }
    else
    if (streq (event->topic, CBUS_TOPIC_BLOCK_DISCONNECTED)) {
        cbus_block_disconnected_t block;
        if (cbus_block_disconnected_decode (cbus_event_map (event), &block, reason) == 0) {
            if (block.height > 0) {
                //  A block on its parent carries its bits.
                if (block.has_next_bits && block.next_bits && block.next_bits <= UINT32_MAX)
                    self->bits = (uint32_t) block.next_bits;
                memcpy (self->disconnect.hash, block.hash, CBUS_HASH_BYTES);
                memcpy (self->disconnect.prev, block.prev_hash, CBUS_HASH_BYTES);
                self->disconnect.height = block.height;
                cbus_block_get_t ask = { .hash = self->disconnect.hash, .has_hash = true };
                cbus_block_get_encode (&ask, &self->ask);
                cbus_mempool_chain_call (self, CBUS_CMD_BLOCK_GET, &self->ask,
                                         s_on_disconnected_block);
                return;
            }
            cbus_fail (reason, "height 0 (the genesis is never an event)");
        }
    }
    else
    if (streq (event->topic, CBUS_TOPIC_CHAIN_STORAGE)) {
        cbus_chain_storage_t storage;
        if (cbus_chain_storage_decode (cbus_event_map (event), &storage, reason) == 0) {
            s_storage_seen (self, !storage.writable, storage.storage, storage.has_storage_code,
                            storage.storage_code);
            return;
        }
    }
    else
        return;                     //  Another chain.block.* topic
    zsys_warning ("dropped malformed %s: %s", event->topic, reason);
}

int
cbus_mempool_on_chain_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    cbus_mempool_t *self = (cbus_mempool_t *) arg;
    //  zloop runs timers before readers and calls, in the same round, a
    //  reader that a timer has just ended (the tick starting a resync):
    //  events wait while the chain side is busy, whoever calls.
    if (self->events_paused)
        return 0;
    //  Take every event waiting (a reorganisation comes as a burst) until
    //  one needs the chainstore, then build one template if somebody
    //  still waits for a block.
    int count = 0;
    do {
        cbus_event_t *event = cbus_event_recv (self->sub);
        if (event)
            cbus_metrics_event (self->metrics, event);
        if (event && event->decoded)
            s_chain_event (self, event);
        cbus_event_destroy (&event);
    } while (!self->chain_busy && !self->resync_wanted && ++count < 10000
          && (zsock_events (self->sub) & ZMQ_POLLIN));
    if (!self->job_active && zlistx_size (self->waiters))
        //  Somebody else's block took the height: mine on top of the tip.
        self->template_wanted = true;
    cbus_mempool_chain_next (self);
    return 0;
}

void
cbus_mempool_chain_stop (cbus_mempool_t *self)
{
    s_reconcile_free (self);
    cbus_mempool_old_tip_t *old;
    while (self->old_tips
       && (old = (cbus_mempool_old_tip_t *) zlistx_detach (self->old_tips, NULL)))
        free (old);
}
