/*  =========================================================================
    cbus_mempool_mine - MINE: block templates for the miners

    A MINE request waits until the block built for it connects. A template
    takes the oldest pending transactions (up to block_max_txs and the
    block size limit) on top of the tip, drops those the chain already
    holds (one TX.KNOWN, a call of the chain side: chain events wait
    meanwhile, so the tip cannot move under it) and goes out as
    miner.work, again every tick while somebody waits. A waiter whose
    time is up is answered UNAVAILABLE (code unavailable): no block came,
    whether for want of a miner or of a chainstore. While the chain store
    takes no writes (its TIP, asked every tick, or chain.storage says
    so), MINE is refused at once (ERROR with the chain store's code and
    reason: no_space for a full disk, storage for a failed write or a
    damaged store), and so are the waiters when that is learnt.

    Continuous mode (miner/mode = continuous): a template is out whether
    or not anybody waits, blocks without transactions too (retargeting
    needs a steady block rate; docs/architecture.md "Mining modes"). It
    is built again when the tip moves (a block connected, ours or not)
    and when transactions that are not in it have waited
    miner/refresh_ms (a one-shot timer; never when the template was full
    already, as newer transactions would not get in). A MINE then waits
    for the next block connected, whoever mined it. While the chain store
    takes no blocks no template is built; the tick builds one once it
    does again. Costs: one template per block plus at most one per
    refresh_ms, one log line each; nothing accumulates.
    =========================================================================
*/
#include "cbus_mempool_private.h"

//  Whether a template should be out: somebody waits, or continuous
//  mode, and the chain store takes blocks.
static bool
s_work_wanted (cbus_mempool_t *self)
{
    return !self->chain_full && (self->continuous || zlistx_size (self->waiters) > 0);
}

//  Continuous mode: the job out lacks transactions that have waited long
//  enough, and it had room for them.
static bool
s_refresh_due (cbus_mempool_t *self, int64_t now)
{
    return self->continuous && self->job_active && !self->job_full && self->fresh_since
        && now - self->fresh_since >= self->refresh_ms;
}

static void s_refresh_arm (cbus_mempool_t *self);

static int
s_on_refresh (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    cbus_mempool_t *self = (cbus_mempool_t *) arg;
    self->refresh_timer = -1;
    if (s_refresh_due (self, cbus_mono_ms ())) {
        self->template_wanted = true;
        cbus_mempool_chain_next (self);
    }
    else
        s_refresh_arm (self);       //  A template on its way: re-armed once out
    return 0;
}

//  Arm the refresh timer for the oldest transaction not in the job out
//  (none while no job is out: the template on its way re-arms it).
static void
s_refresh_arm (cbus_mempool_t *self)
{
    if (!self->continuous || !self->fresh_since || !self->job_active || self->job_full
    ||  self->refresh_timer != -1 || !self->loop)
        return;
    int64_t delay = self->fresh_since + self->refresh_ms - cbus_mono_ms ();
    self->refresh_timer = zloop_timer (self->loop, (size_t) (delay > 1 ? delay : 1), 1,
                                       s_on_refresh, self);
    if (self->refresh_timer == -1)
        zsys_error ("no template refresh: no timer");
}

void
cbus_mempool_mine_added (cbus_mempool_t *self)
{
    if (!self->continuous)
        return;
    if (!self->fresh_since)
        self->fresh_since = cbus_mono_ms ();
    s_refresh_arm (self);
}

static void
s_waiter_destroy (cbus_mempool_waiter_t **waiter_p)
{
    if (*waiter_p) {
        cbus_request_destroy (&(*waiter_p)->request);
        free (*waiter_p);
        *waiter_p = NULL;
    }
}

//  Refuse a MINE while the chain store takes no blocks (takes it), with
//  the code the chain store gave.
static void
s_refuse_no_space (cbus_mempool_t *self, cbus_request_t *request)
{
    cbus_reply_refuse (self->router, request, CBUS_STATUS_ERROR, self->chain_code,
                       "No block can be stored now: chainbus-chainstore: %s",
                       self->chain_storage);
    cbus_request_destroy (&request);
}

void
cbus_mempool_mine_no_space (cbus_mempool_t *self)
{
    cbus_mempool_waiter_t *waiter;
    while ((waiter = (cbus_mempool_waiter_t *) zlistx_detach (self->waiters, NULL))) {
        s_refuse_no_space (self, waiter->request);
        waiter->request = NULL;
        s_waiter_destroy (&waiter);
    }
    self->job_active = false;
}

void
cbus_mempool_mine_request (cbus_mempool_t *self, cbus_request_t *request)
{
    if (self->chain_full) {
        s_refuse_no_space (self, request);
        return;
    }
    cbus_mempool_waiter_t *waiter =
        (cbus_mempool_waiter_t *) calloc (1, sizeof (cbus_mempool_waiter_t));
    if (!waiter || !zlistx_add_end (self->waiters, waiter)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_ERROR, CBUS_CODE_INTERNAL,
                           "The mempool is out of memory");
        cbus_request_destroy (&request);
        free (waiter);
        return;
    }
    waiter->request = request;
    waiter->deadline = cbus_mono_ms () + self->mine_timeout_ms;
    if (!self->job_active) {
        self->template_wanted = true;
        if (!self->tip_known)
            self->resync_wanted = true;
        cbus_mempool_chain_next (self);
    }
}

static void
s_answer_waiters (cbus_mempool_t *self, const uint8_t hash [CBUS_HASH_BYTES], uint64_t height)
{
    cbus_mine_reply_t reply = { .hash = hash, .height = height };
    cbus_mempool_waiter_t *waiter;
    while ((waiter = (cbus_mempool_waiter_t *) zlistx_detach (self->waiters, NULL))) {
        cbus_reply_send_msg (self->router, waiter->request, &cbus_mine_reply_def, &reply,
                             &self->reply);
        s_waiter_destroy (&waiter);
    }
}

//  A block connected: the job built on its parent is over; if it is our
//  template's block, the waiters have their answer (in continuous mode,
//  whatever block it is: a MINE waits for the next block). A job whose
//  parent is no longer the tip is over too (another branch won).
void
cbus_mempool_mine_connected (cbus_mempool_t *self, const cbus_block_connected_t *event)
{
    bool ours = memcmp (event->merkle_root, self->job_root, CBUS_HASH_BYTES) == 0;
    if (self->job_active && memcmp (event->prev_hash, self->job_prev, CBUS_HASH_BYTES) == 0) {
        self->job_active = false;
        if (ours && !self->continuous)
            s_answer_waiters (self, event->hash, event->height);
    }
    if (self->continuous)
        s_answer_waiters (self, event->hash, event->height);
    if (self->job_active && memcmp (self->job_prev, self->tip_hash, CBUS_HASH_BYTES) != 0)
        self->job_active = false;
    if (!self->job_active && s_work_wanted (self))
        self->template_wanted = true;
}

//  Every tick: answer waiters nobody waits for any more (the gateway gave
//  up), give up a job that stays off the tip, and resend the work (or
//  build it again) while somebody waits.
void
cbus_mempool_mine_tick (cbus_mempool_t *self)
{
    int64_t now = cbus_mono_ms ();
    cbus_mempool_waiter_t *waiter = (cbus_mempool_waiter_t *) zlistx_first (self->waiters);
    while (waiter && waiter->deadline < now) {
        zlistx_detach_cur (self->waiters);
        cbus_reply_refuse (self->router, waiter->request, CBUS_STATUS_UNAVAILABLE,
                           CBUS_CODE_UNAVAILABLE, "No block was connected in time: %s",
                           self->chainstore_down ? "the chainstore does not answer"
                                                 : "no miner found one");
        s_waiter_destroy (&waiter);
        waiter = (cbus_mempool_waiter_t *) zlistx_first (self->waiters);
    }
    if (zlistx_size (self->waiters) == 0 && !self->continuous)
        self->job_active = false;
    //  The tip's event may merely be on its way: only a job that stays
    //  off the tip for two ticks is given up as stale.
    if (self->job_active && memcmp (self->job_prev, self->tip_hash, CBUS_HASH_BYTES) != 0) {
        if (++self->job_stale_ticks >= 2)
            self->job_active = false;
    }
    else
        self->job_stale_ticks = 0;
    //  Work still wanted: resend it for miners that started late (and
    //  for a miner whose block the chainstore could not judge).
    if (s_work_wanted (self)) {
        if (self->job_active)
            cbus_pub_send (self->pub, CBUS_TOPIC_MINER_WORK, &self->work);
        else
            self->template_wanted = true;
    }
}

static void
s_template_free (cbus_mempool_t *self)
{
    for (size_t index = 0; index < self->template_count; index++)
        cbus_tx_destroy (&self->template_txs [index]);
    free (self->template_txs);
    self->template_txs = NULL;
    self->template_count = 0;
}

//  Publish the template as miner.work: the candidates not found
//  confirmed (item index of known, a TX.KNOWN reply's list, or NULL when
//  the chain did not say) go in, those found confirmed leave the pool.
static void
s_template_publish (cbus_mempool_t *self, const cbus_list_t *known)
{
    cbus_block_t *block = cbus_block_new (&self->template_header);
    size_t removed = 0;
    for (size_t index = 0; block && index < self->template_count; index++) {
        cbus_tx_t *tx = self->template_txs [index];
        if (known && cbus_list_bool (known, (uint32_t) index)) {
            if (cbus_pool_remove (self->pool, cbus_tx_id (tx))) {
                cbus_mempool_publish_removed (self, cbus_tx_id (tx));
                removed++;
            }
        }
        else {
            cbus_block_add_tx (block, &tx);
            self->template_txs [index] = NULL;
        }
    }
    s_template_free (self);
    if (removed && cbus_pool_flush (self->pool))
        zsys_error ("could not write mempool removals");
    if (!block) {
        zsys_error ("no template: out of memory");
        return;
    }
    cbus_header_t *header = cbus_block_header (block);
    cbus_block_merkle (block, header->merkle_root);
    //  A rebuild on the same parent (new transactions) is a debug line:
    //  with a short miner/refresh_ms there can be many a second.
    bool same_parent = self->job && memcmp (self->job_prev, header->prev_hash,
                                            CBUS_HASH_BYTES) == 0;
    self->job++;
    self->job_active = true;
    self->job_full = self->template_full;
    self->job_stale_ticks = 0;
    memcpy (self->job_prev, header->prev_hash, CBUS_HASH_BYTES);
    memcpy (self->job_root, header->merkle_root, CBUS_HASH_BYTES);
    cbus_mempool_publish_work (self, header, block);
    if (same_parent)
        CBUS_DEBUG ("work published job=%" PRIu64 " height=%" PRIu64 " txs=%zu (refresh)",
                    self->job, header->height, cbus_block_tx_count (block));
    else
        zsys_info ("work published job=%" PRIu64 " height=%" PRIu64 " txs=%zu", self->job,
                   header->height, cbus_block_tx_count (block));
    cbus_block_destroy (&block);
    s_refresh_arm (self);           //  Transactions that came while it was built
}

static void
s_on_template_known (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_mempool_t *self = (cbus_mempool_t *) call->owner;
    cbus_mempool_chainstore_heard (self, reply, CBUS_CMD_TX_KNOWN);
    if (!s_work_wanted (self)) {
        //  The chain store stopped taking blocks meanwhile (or nobody
        //  waits any more): no work goes out.
        s_template_free (self);
        cbus_mempool_chain_idle (self);
        return;
    }
    cbus_tx_known_reply_t msg;      //  Borrows the reply
    char reason [CBUS_REASON_MAX];
    bool answered = cbus_mempool_known_decode (reply, self->template_count, &msg, reason) == 0;
    if (!answered)
        //  The chainstore checks every transaction of a block it is
        //  given: a replay in this one gets the block refused, not in.
        zsys_warning ("template not checked against the chain: %s", reason);
    s_template_publish (self, answered ? &msg.known : NULL);
    cbus_mempool_chain_idle (self);
}

//  The candidates for a block on the tip, oldest first, decoded without
//  verifying them again: pending bytes were verified when they came in
//  (or when the pool was loaded), and the chainstore verifies every
//  signature of the block it is given. Returns how many, or -1.
static int
s_template_fill (cbus_mempool_t *self)
{
    size_t most = cbus_pool_size (self->pool);
    if (most > self->block_max_txs)
        most = self->block_max_txs;
    self->template_txs = (cbus_tx_t **) calloc (most + 1, sizeof (cbus_tx_t *));
    if (!self->template_txs)
        return -1;
    //  Every pending transaction is a candidate now: none waits for a
    //  refresh. A template at block_max_txs (or the size limit, below)
    //  has no room for newer ones: it is not rebuilt for them.
    self->fresh_since = 0;
    self->template_full = most == self->block_max_txs;
    size_t budget = CBUS_BLOCK_MAX_BYTES - 4096, used = 0;
    char reason [CBUS_REASON_MAX];
    for (const uint8_t *txid = cbus_pool_first (self->pool);
         txid && self->template_count < most; txid = cbus_pool_next (self->pool)) {
        size_t size;
        const uint8_t *bytes = cbus_pool_get (self->pool, txid, &size, NULL);
        if (used + size + 8 > budget) {
            self->template_full = true;
            break;
        }
        cbus_tx_t *tx = cbus_tx_decode (bytes, size, reason);
        if (tx) {
            self->template_txs [self->template_count++] = tx;
            used += size + 8;
        }
    }
    return (int) self->template_count;
}

//  Build a template if one is wanted, from the chain side once idle.
void
cbus_mempool_template_start (cbus_mempool_t *self)
{
    self->template_wanted = false;
    if (!s_work_wanted (self))
        return;
    bool refresh = s_refresh_due (self, cbus_mono_ms ());
    if (self->job_active && !refresh)
        return;
    if (refresh) {
        self->refreshes++;
        CBUS_DEBUG ("template refresh: transactions waited %" PRId64 " ms",
                    cbus_mono_ms () - self->fresh_since);
    }
    if (!self->tip_known) {
        //  Once until a template goes out: continuous mining asks every tick.
        if (!self->no_tip_logged)
            zsys_warning ("no template: the chainstore's tip is unknown");
        self->no_tip_logged = true;
        return;
    }
    self->no_tip_logged = false;
    cbus_header_t header = {
        .version = CBUS_BLOCK_VERSION,
        .height = self->tip_height + 1,
        .bits = self->bits,
    };
    memcpy (header.prev_hash, self->tip_hash, CBUS_HASH_BYTES);
    //  Later than the parent, so that the median-time rule holds even
    //  when blocks come faster than the clock ticks.
    header.time_ms = cbus_time_ms ();
    if (header.time_ms <= self->tip_time_ms)
        header.time_ms = self->tip_time_ms + 1;
    self->template_header = header;
    int count = s_template_fill (self);
    if (count < 0) {
        zsys_error ("no template: out of memory");
        s_template_free (self);
        return;
    }
    if (count == 0) {
        s_template_publish (self, NULL);
        return;
    }
    //  Drop what the chain already holds (a replay, or a missed event).
    cbus_tx_known_t ask = {
        .txids = { .count = (uint32_t) count, .item = cbus_mempool_tx_id_item,
                   .source = self->template_txs }
    };
    cbus_tx_known_encode (&ask, &self->ask);
    cbus_mempool_chain_call (self, CBUS_CMD_TX_KNOWN, &self->ask, s_on_template_known);
}

void
cbus_mempool_mine_stop (cbus_mempool_t *self)
{
    cbus_mempool_waiter_t *waiter;
    while (self->waiters
       && (waiter = (cbus_mempool_waiter_t *) zlistx_detach (self->waiters, NULL)))
        s_waiter_destroy (&waiter);
    s_template_free (self);
}
