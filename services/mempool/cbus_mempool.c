/*  =========================================================================
    cbus_mempool - takes transactions in, durably, and asks for blocks
    =========================================================================
*/
#include "cbus_mempool.h"
#include "cbus_pool.h"

//  How long the mempool waits for the chainstore before giving up.
#define S_CHAINSTORE_TIMEOUT_MS 2000
//  How often the tip is checked against the chainstore, and work resent.
#define S_TICK_MS 1000
//  Most txids asked about in one TX.KNOWN.
#define S_KNOWN_BATCH 10000
//  Most blocks walked back from an old tip to find what left the chain.
#define S_WALK_BACK_MAX 1000
//  Most submissions handed to the verifier thread at once: small enough
//  that verifying, checking, writing and answering overlap.
#define S_CHUNK_MAX 64
//  Most chunks in the verifier's queue: far below the pipe's high-water
//  mark (1,000 messages), so that neither side ever blocks on a send.
#define S_CHUNKS_MAX 32
//  Under load a write waits (up to commit_wait_ms) for this many.
#define S_WRITE_TARGET 64

typedef struct {
    cbus_request_t *request;    //  The MINE request, answered on connect
    int64_t deadline;           //  Monotonic ms after which nobody waits
} s_waiter_t;

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zloop_t *loop;              //  Our reactor
    zsock_t *router;            //  Submissions, MINE, queries
    zsock_t *sub;               //  chain.block.* from the bus
    cbus_client_t *chainstore;  //  Synchronous questions to the chainstore
    cbus_pub_t *pub;            //  Events and work into the bus
    cbus_pool_t *pool;          //  The pending transactions
    cbus_config_t *config;      //  Settings
    //  What we know of the chain
    bool tip_known;             //  A TIP answer or event has arrived
    bool tip_stored;            //  tip_hash is the one stored before a restart
    uint64_t tip_height;        //  Height of the active tip
    uint8_t tip_hash [CBUS_HASH_BYTES];
    uint64_t tip_time_ms;       //  Its time
    uint32_t bits;              //  The network's target
    //  Mining
    zlistx_t *waiters;          //  s_waiter_t, oldest first
    bool job_active;            //  A template is out as miner.work
    uint64_t job;               //  Its number
    uint8_t job_prev [CBUS_HASH_BYTES];     //  Its parent
    uint8_t job_root [CBUS_HASH_BYTES];     //  Its merkle root
    int job_stale_ticks;        //  Ticks the tip has not been its parent
    cbus_buf_t work;            //  Its encoded miner.work body
    //  Settings
    size_t max_pending;
    size_t block_max_txs;
    size_t batch_max;
    bool require_signatures;    //  Node policy: unsigned refused
    int64_t commit_wait_ms;     //  Most a write waits for company
    int64_t mine_timeout_ms;
    //  Signatures are verified on their own thread, in arrival order,
    //  while this one checks, stages and answers what came before.
    zactor_t *verifier;         //  Runs s_verifier_actor
    size_t verifying;           //  Submissions in the verifier
    size_t chunks;              //  ... in this many chunks
    bool intake_paused;         //  batch_max reached: router not read
    bool stopping;              //  Only writes in flight still end
    //  Group commit, double-buffered: one write at a time runs on the
    //  writer thread while the next batch is checked and staged here.
    zactor_t *writer;           //  Runs cbus_pool_write_run off this thread
    cbus_pool_write_t *writing; //  The write in flight, or NULL
    zlistx_t *writing_submits;  //  s_submit_t answered when it ends
    zlistx_t *verified;         //  s_submit_t verified, for the next write
    int64_t verified_since;     //  Monotonic ms the oldest of them came back
    int commit_timer;           //  Timer that starts a waiting write, or -1
    zlistx_t *waiting;          //  s_submit_t checked, for the next write
    cbus_buf_t reply;           //  Reused reply buffer
    cbus_buf_t event;           //  Reused event buffer
} s_mempool_t;

//  A submission waiting for the group commit.
typedef struct {
    cbus_request_t *request;    //  Answered after the commit
    cbus_tx_t *tx;              //  Checked transaction
    char *refusal;              //  Why the verifier refused it, or NULL
    bool staged;                //  New: written by the next write
    bool confirmed;             //  Already in the chain
} s_submit_t;

//  Submissions on their way through the verifier, in arrival order.
typedef struct {
    size_t count;
    s_submit_t *submits [S_CHUNK_MAX];
} s_chunk_t;

static void
s_send (s_mempool_t *self, cbus_request_t *request)
{
    cbus_reply_send (self->router, request, CBUS_STATUS_OK, self->reply.data, self->reply.size);
}

//  Ask the chainstore a question; returns the decoded reply map in
//  unpacked (caller destroys) or -1 when it does not answer OK.
static int
s_ask_chainstore (s_mempool_t *self, const char *command, cbus_buf_t *body,
                  zframe_t **frame_p, msgpack_unpacked *unpacked)
{
    char *status = NULL;
    if (cbus_client_call (self->chainstore, command, body ? body->data : NULL,
                          body ? body->size : 0, S_CHAINSTORE_TIMEOUT_MS, &status, frame_p)) {
        zsys_warning ("chainstore did not answer command=%s", command);
        return -1;
    }
    bool ok = streq (status, CBUS_STATUS_OK);
    zstr_free (&status);
    msgpack_unpacked_init (unpacked);
    size_t offset = 0;
    if (!ok || msgpack_unpack_next (unpacked, (const char *) zframe_data (*frame_p),
                                    zframe_size (*frame_p), &offset) != MSGPACK_UNPACK_SUCCESS
    ||  unpacked->data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy (unpacked);
        zframe_destroy (frame_p);
        return -1;
    }
    return 0;
}

//  Which of these txids are confirmed: fills known [count]. -1 if the
//  chainstore does not answer.
static int
s_known (s_mempool_t *self, const uint8_t **txids, size_t count, bool *known)
{
    cbus_buf_t body = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &body);
    msgpack_pack_map (&pk, 1);
    cbus_pack_str (&pk, "txids");
    msgpack_pack_array (&pk, (uint32_t) count);
    for (size_t index = 0; index < count; index++) {
        msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
        msgpack_pack_bin_body (&pk, txids [index], CBUS_HASH_BYTES);
    }
    zframe_t *frame = NULL;
    msgpack_unpacked unpacked;
    int rc = s_ask_chainstore (self, CBUS_CMD_TX_KNOWN, &body, &frame, &unpacked);
    cbus_buf_free (&body);
    if (rc)
        return -1;
    const msgpack_object *list = cbus_msg_get (&unpacked.data, "known");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size != count)
        rc = -1;
    else
        for (size_t index = 0; index < count; index++)
            known [index] = list->via.array.ptr [index].type == MSGPACK_OBJECT_BOOLEAN
                         && list->via.array.ptr [index].via.boolean;
    msgpack_unpacked_destroy (&unpacked);
    zframe_destroy (&frame);
    return rc;
}

static void
s_publish_removed (s_mempool_t *self, const uint8_t txid [CBUS_HASH_BYTES], const char *reason)
{
    msgpack_packer pk;
    cbus_pub_begin (self->pub, &pk, &self->event, 2);
    cbus_pack_kv_bin (&pk, "txid", txid, CBUS_HASH_BYTES);
    cbus_pack_kv_str (&pk, "reason", reason);
    cbus_pub_send (self->pub, CBUS_TOPIC_TX_REMOVED, &self->event);
}

static void
    s_take_back_from (s_mempool_t *self, const uint8_t old_tip [CBUS_HASH_BYTES]);

//  Whether the block at this height with this hash is still on the active
//  chain: HEADERS with it as the only locator hash, and none wanted, says
//  where the chains part. -1 if the chainstore does not answer.
static int
s_still_active (s_mempool_t *self, const uint8_t hash [CBUS_HASH_BYTES], uint64_t height)
{
    cbus_buf_t body = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &body);
    msgpack_pack_map (&pk, 2);
    cbus_pack_str (&pk, "locator");
    msgpack_pack_array (&pk, 1);
    msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
    msgpack_pack_bin_body (&pk, hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "max", 0);
    zframe_t *frame = NULL;
    msgpack_unpacked unpacked;
    int rc = s_ask_chainstore (self, CBUS_CMD_HEADERS, &body, &frame, &unpacked);
    cbus_buf_free (&body);
    if (rc)
        return -1;
    uint64_t start;
    rc = cbus_msg_get_u64 (&unpacked.data, "start", &start) ? -1 : start == height + 1;
    msgpack_unpacked_destroy (&unpacked);
    zframe_destroy (&frame);
    return rc;
}

//  Ask the chainstore for its tip. When it moved from ours in a way we
//  did not see (events lost while the bus or this service restarted),
//  take back what left the active chain; on any change, drop every
//  pending transaction the chain has confirmed.
static void
s_sync_tip (s_mempool_t *self)
{
    zframe_t *frame = NULL;
    msgpack_unpacked unpacked;
    if (s_ask_chainstore (self, CBUS_CMD_TIP, NULL, &frame, &unpacked))
        return;
    uint64_t height, time_ms, bits;
    uint8_t hash [CBUS_HASH_BYTES];
    if (cbus_msg_get_u64 (&unpacked.data, "height", &height) == 0
    &&  cbus_msg_get_hash (&unpacked.data, "hash", hash) == 0
    &&  cbus_msg_get_u64 (&unpacked.data, "time_ms", &time_ms) == 0
    &&  cbus_msg_get_u64 (&unpacked.data, "bits", &bits) == 0) {
        bool changed = !self->tip_known || memcmp (hash, self->tip_hash, CBUS_HASH_BYTES) != 0;
        if ((self->tip_known || self->tip_stored) && memcmp (hash, self->tip_hash, CBUS_HASH_BYTES) != 0
        &&  s_still_active (self, self->tip_hash, self->tip_height) == 0)
            s_take_back_from (self, self->tip_hash);
        self->tip_stored = false;
        cbus_pool_set_tip (self->pool, hash, height);
        self->tip_known = true;
        self->tip_height = height;
        self->tip_time_ms = time_ms;
        self->bits = (uint32_t) bits;
        memcpy (self->tip_hash, hash, CBUS_HASH_BYTES);
        if (changed && cbus_pool_size (self->pool) == 0 && cbus_pool_flush (self->pool))
            zsys_error ("could not write the mempool's tip");
        if (changed && cbus_pool_size (self->pool) > 0) {
            //  Reconcile in slices of S_KNOWN_BATCH.
            size_t total = cbus_pool_size (self->pool), removed = 0;
            const uint8_t **txids = (const uint8_t **) malloc (total * sizeof (uint8_t *));
            uint8_t (*copies) [CBUS_HASH_BYTES] = malloc (total * CBUS_HASH_BYTES);
            bool *known = (bool *) calloc (total, sizeof (bool));
            size_t count = 0;
            for (const uint8_t *txid = cbus_pool_first (self->pool); txid; txid = cbus_pool_next (self->pool)) {
                memcpy (copies [count], txid, CBUS_HASH_BYTES);
                txids [count] = copies [count];
                count++;
            }
            for (size_t start = 0; start < count; start += S_KNOWN_BATCH) {
                size_t slice = count - start < S_KNOWN_BATCH ? count - start : S_KNOWN_BATCH;
                if (s_known (self, txids + start, slice, known + start))
                    break;
            }
            for (size_t index = 0; index < count; index++)
                if (known [index] && cbus_pool_remove (self->pool, copies [index])) {
                    s_publish_removed (self, copies [index], "mined");
                    removed++;
                }
            if (cbus_pool_flush (self->pool))
                zsys_error ("could not write mempool removals");
            if (removed)
                zsys_info ("reconciled with the chain removed=%zu pending=%zu", removed,
                           cbus_pool_size (self->pool));
            free (txids);
            free (copies);
            free (known);
        }
    }
    msgpack_unpacked_destroy (&unpacked);
    zframe_destroy (&frame);
}

//  Build a block template from the pending transactions, oldest first,
//  and publish it as miner.work. Transactions the chain already holds
//  are dropped on the way.
static void
s_publish_work (s_mempool_t *self)
{
    if (!self->tip_known)
        s_sync_tip (self);
    if (!self->tip_known) {
        zsys_warning ("no template: the chainstore's tip is unknown");
        return;
    }
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
    cbus_block_t *block = cbus_block_new (&header);
    size_t budget = CBUS_BLOCK_MAX_BYTES - 4096;
    size_t used = 0;
    char reason [CBUS_REASON_MAX];
    for (const uint8_t *txid = cbus_pool_first (self->pool); txid; txid = cbus_pool_next (self->pool)) {
        if (cbus_block_tx_count (block) >= self->block_max_txs)
            break;
        size_t size;
        const uint8_t *bytes = cbus_pool_get (self->pool, txid, &size, NULL);
        if (used + size + 8 > budget)
            break;
        //  Pending bytes were verified when they came in (or when the
        //  pool was loaded): decode without verifying them again. The
        //  chainstore verifies every signature of the block it is given.
        cbus_tx_t *tx = cbus_tx_decode (bytes, size, reason);
        if (tx) {
            cbus_block_add_tx (block, &tx);
            used += size + 8;
        }
    }
    //  Drop what the chain already holds (a replay, or a missed event).
    size_t count = cbus_block_tx_count (block);
    if (count > 0) {
        const uint8_t **txids = (const uint8_t **) malloc (count * sizeof (uint8_t *));
        bool *known = (bool *) calloc (count, sizeof (bool));
        for (size_t index = 0; index < count; index++)
            txids [index] = cbus_tx_id (cbus_block_tx (block, index));
        bool any = false;
        if (s_known (self, txids, count, known) == 0)
            for (size_t index = 0; index < count; index++)
                any |= known [index];
        free (txids);
        if (any) {
            cbus_block_t *kept = cbus_block_new (&header);
            for (size_t index = 0; index < count; index++) {
                cbus_tx_t *tx = cbus_block_tx (block, index);
                if (known [index]) {
                    if (cbus_pool_remove (self->pool, cbus_tx_id (tx)))
                        s_publish_removed (self, cbus_tx_id (tx), "mined");
                }
                else {
                    size_t size;
                    const uint8_t *bytes = cbus_tx_bytes (tx, &size);
                    cbus_tx_t *copy = cbus_tx_decode (bytes, size, reason);
                    cbus_block_add_tx (kept, &copy);
                }
            }
            if (cbus_pool_flush (self->pool))
                zsys_error ("could not write mempool removals");
            cbus_block_destroy (&block);
            block = kept;
        }
        free (known);
    }
    cbus_header_t *final = cbus_block_header (block);
    cbus_block_merkle (block, final->merkle_root);
    uint8_t header_bytes [CBUS_HEADER_BYTES];
    cbus_header_encode (final, header_bytes);

    self->job++;
    self->job_active = true;
    self->job_stale_ticks = 0;
    memcpy (self->job_prev, final->prev_hash, CBUS_HASH_BYTES);
    memcpy (self->job_root, final->merkle_root, CBUS_HASH_BYTES);
    msgpack_packer pk;
    cbus_pub_begin (self->pub, &pk, &self->work, 3);
    cbus_pack_kv_u64 (&pk, "job", self->job);
    cbus_pack_kv_bin (&pk, "header", header_bytes, sizeof (header_bytes));
    cbus_pack_str (&pk, "txs");
    msgpack_pack_array (&pk, (uint32_t) cbus_block_tx_count (block));
    for (size_t index = 0; index < cbus_block_tx_count (block); index++) {
        size_t size;
        const uint8_t *bytes = cbus_tx_bytes (cbus_block_tx (block, index), &size);
        msgpack_pack_bin (&pk, size);
        msgpack_pack_bin_body (&pk, bytes, size);
    }
    cbus_pub_send (self->pub, CBUS_TOPIC_MINER_WORK, &self->work);
    zsys_info ("work published job=%" PRIu64 " height=%" PRIu64 " txs=%zu", self->job,
               final->height, cbus_block_tx_count (block));
    cbus_block_destroy (&block);
}

static void
s_publish_added (s_mempool_t *self, cbus_tx_t *tx)
{
    msgpack_packer pk;
    cbus_pub_begin (self->pub, &pk, &self->event, 4);
    cbus_pack_kv_bin (&pk, "txid", cbus_tx_id (tx), CBUS_HASH_BYTES);
    size_t size;
    const uint8_t *bytes = cbus_tx_bytes (tx, &size);
    cbus_pack_kv_u64 (&pk, "size", size);
    //  The bytes ride along so that peersync can relay without asking.
    cbus_pack_kv_bin (&pk, "tx", bytes, size);
    cbus_pack_str (&pk, "users");
    msgpack_pack_array (&pk, (uint32_t) cbus_tx_user_count (tx));
    for (size_t index = 0; index < cbus_tx_user_count (tx); index++)
        cbus_pack_str (&pk, cbus_tx_user (tx, index));
    cbus_pub_send (self->pub, CBUS_TOPIC_TX_ADDED, &self->event);
}

//  Answer a submission whose write (if any) has ended; stored says
//  whether that write succeeded.
static void
s_answer_submit (s_mempool_t *self, s_submit_t *submit, bool stored)
{
    bool durable = submit->confirmed
                || (stored && submit->staged)
                || (!submit->staged && cbus_pool_get (self->pool, cbus_tx_id (submit->tx),
                                                      &(size_t) {0}, NULL));
    if (!durable)
        cbus_reply_error (self->router, submit->request, CBUS_STATUS_ERROR,
                          "The mempool could not store the transaction");
    else {
        msgpack_packer pk = cbus_packer_begin (&self->reply, 4);
        cbus_pack_kv_bin (&pk, "txid", cbus_tx_id (submit->tx), CBUS_HASH_BYTES);
        cbus_pack_kv_u64 (&pk, "height", self->tip_height + 1);
        cbus_pack_kv_bool (&pk, "duplicate", !submit->staged);
        cbus_pack_kv_bool (&pk, "confirmed", submit->confirmed);
        s_send (self, submit->request);
    }
}

static void
s_submit_destroy (s_submit_t **submit_p)
{
    if (*submit_p) {
        cbus_request_destroy (&(*submit_p)->request);
        cbus_tx_destroy (&(*submit_p)->tx);
        free ((*submit_p)->refusal);
        free (*submit_p);
        *submit_p = NULL;
    }
}

//  Check the verified submissions against the pool and the chain, with
//  one question to the chainstore for all of them, and stage the new ones
//  for the write about to start. Refusals are answered now, the rest
//  when that write has ended. A submission already pending, being
//  written, or confirmed is answered as a duplicate, never stored twice.
static void
s_check_verified (s_mempool_t *self)
{
    size_t count = zlistx_size (self->verified);
    if (count == 0 || self->stopping)
        return;
    s_submit_t **batch = (s_submit_t **) malloc (count * sizeof (s_submit_t *));
    const uint8_t **txids = (const uint8_t **) malloc (count * sizeof (uint8_t *));
    size_t *answer = (size_t *) malloc (count * sizeof (size_t));
    bool *known = (bool *) calloc (count, sizeof (bool));
    size_t asked = 0;
    for (size_t index = 0; index < count; index++) {
        batch [index] = (s_submit_t *) zlistx_detach (self->verified, NULL);
        answer [index] = asked;
        if (!cbus_pool_has (self->pool, cbus_tx_id (batch [index]->tx)))
            txids [asked++] = cbus_tx_id (batch [index]->tx);
    }
    bool chain_answered = asked == 0 || s_known (self, txids, asked, known) == 0;
    size_t room = cbus_pool_size (self->pool) < self->max_pending
                ? self->max_pending - cbus_pool_size (self->pool) : 0;
    for (size_t index = 0; index < count; index++) {
        s_submit_t *submit = batch [index];
        //  The pool only grows in this loop: what it lacks now, it
        //  lacked above, so that submission's answer is known [answer].
        bool known_here = cbus_pool_has (self->pool, cbus_tx_id (submit->tx));
        if (!known_here && !chain_answered) {
            cbus_reply_error (self->router, submit->request, CBUS_STATUS_UNAVAILABLE,
                              "chainbus-chainstore did not answer");
            s_submit_destroy (&submit);
            continue;
        }
        if (!known_here) {
            submit->confirmed = known [answer [index]];
            if (!submit->confirmed && room == 0) {
                cbus_reply_error (self->router, submit->request, CBUS_STATUS_FULL,
                                  "The mempool is full (%zu pending): try again later",
                                  cbus_pool_size (self->pool));
                s_submit_destroy (&submit);
                continue;
            }
            if (!submit->confirmed) {
                submit->staged = cbus_pool_stage (self->pool, submit->tx);
                room -= submit->staged;
            }
        }
        zlistx_add_end (self->waiting, submit);
    }
    free (batch);
    free (txids);
    free (answer);
    free (known);
}

static int
    s_on_commit_timer (zloop_t *loop, int timer_id, void *arg);

//  Whether the next write should wait for more: only under load (more
//  submissions are being verified behind these), only while fewer than
//  S_WRITE_TARGET wait, and no longer than commit_wait_ms. One fsync
//  then covers more submissions; a lone submission never waits.
static bool
s_write_should_wait (s_mempool_t *self)
{
    size_t count = zlistx_size (self->verified);
    if (count == 0 || self->verifying == 0 || count >= S_WRITE_TARGET || self->stopping)
        return false;
    int64_t left = self->verified_since + self->commit_wait_ms - cbus_mono_ms ();
    if (left <= 0)
        return false;
    if (self->commit_timer == -1)
        self->commit_timer = zloop_timer (self->loop, (size_t) left, 1, s_on_commit_timer, self);
    return true;
}

//  Start the next write if none runs: what was verified meanwhile is
//  checked and staged, everything staged goes to the writer thread, and
//  the submissions waiting on it go with it. With nothing staged, those
//  waiting (duplicates of durable transactions) are answered at once.
static void
s_write_next (s_mempool_t *self)
{
    if (self->writing || s_write_should_wait (self))
        return;                     //  Its end, or the timer, calls us again
    s_check_verified (self);
    self->writing = cbus_pool_write_begin (self->pool);
    if (!self->writing) {
        s_submit_t *submit;
        while ((submit = (s_submit_t *) zlistx_detach (self->waiting, NULL))) {
            s_answer_submit (self, submit, true);
            s_submit_destroy (&submit);
        }
        return;
    }
    zlistx_t *swap = self->writing_submits;
    self->writing_submits = self->waiting;
    self->waiting = swap;
    zsock_send (self->writer, "sp", "WRITE", self->writing);
}

//  The writer thread finished a write: make it pending, answer the
//  submissions that waited on it, announce what became pending (it is
//  durable now), then start the next write.
static void
s_write_ended (s_mempool_t *self, int rc)
{
    cbus_pool_write_end (self->pool, &self->writing, rc);
    if (rc)
        zsys_error ("mempool write failed: %zu submissions answered with an error",
                    zlistx_size (self->writing_submits));
    s_submit_t *submit;
    while ((submit = (s_submit_t *) zlistx_detach (self->writing_submits, NULL))) {
        s_answer_submit (self, submit, rc == 0);
        if (rc == 0 && submit->staged)
            s_publish_added (self, submit->tx);
        s_submit_destroy (&submit);
    }
    s_write_next (self);
}

//  Submissions taken in and not yet being written: in the verifier or
//  verified and waiting for the next write.
static size_t
s_intake (s_mempool_t *self)
{
    return self->verifying + zlistx_size (self->verified) + zlistx_size (self->waiting);
}

static int
    s_on_request (zloop_t *loop, zsock_t *reader, void *arg);

//  At batch_max submissions taken in, or S_CHUNKS_MAX chunks in the
//  verifier, stop reading requests: the rest wait in the socket's queue
//  (and the senders') until a write or the verifier takes some; then
//  read again.
static void
s_intake_check (s_mempool_t *self)
{
    bool full = s_intake (self) >= self->batch_max || self->chunks >= S_CHUNKS_MAX;
    if (full && !self->intake_paused)
        zloop_reader_end (self->loop, self->router);
    else
    if (!full && self->intake_paused)
        zloop_reader (self->loop, self->router, s_on_request, self);
    self->intake_paused = full;
}

static int
s_on_written (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_mempool_t *self = (s_mempool_t *) arg;
    void *write = NULL;
    int rc = -1;
    if (zsock_recv (reader, "pi", &write, &rc) == 0 && write == self->writing) {
        s_write_ended (self, rc);
        s_intake_check (self);
    }
    return 0;
}

static int
s_on_commit_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    s_mempool_t *self = (s_mempool_t *) arg;
    self->commit_timer = -1;
    s_write_next (self);
    s_intake_check (self);
    return 0;
}

//  The writer: runs each write it is given and says how it went.
static void
s_writer_actor (zsock_t *pipe, void *args)
{
    (void) args;
    cbus_thread_name ("mempool-write");
    zsock_signal (pipe, 0);
    while (true) {
        char *command = NULL;
        void *write = NULL;
        if (zsock_recv (pipe, "sp", &command, &write) == -1)
            break;
        bool stop = !command || !streq (command, "WRITE");
        zstr_free (&command);
        if (stop)
            break;
        zsock_send (pipe, "pi", write, cbus_pool_write_run ((cbus_pool_write_t *) write));
    }
}

static void
s_handle_tx_get (s_mempool_t *self, cbus_request_t *request)
{
    uint8_t txid [CBUS_HASH_BYTES];
    if (cbus_msg_get_hash (cbus_request_map (request), "txid", txid)) {
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "TX.GET needs a txid");
        return;
    }
    size_t size;
    uint64_t received_ms;
    const uint8_t *bytes = cbus_pool_get (self->pool, txid, &size, &received_ms);
    if (!bytes) {
        cbus_reply_error (self->router, request, CBUS_STATUS_NOTFOUND, "Transaction not pending");
        return;
    }
    msgpack_packer pk = cbus_packer_begin (&self->reply, 2);
    cbus_pack_kv_bin (&pk, "tx", bytes, size);
    cbus_pack_kv_u64 (&pk, "received_ms", received_ms);
    s_send (self, request);
}

//  Handle one request; TX.SUBMIT is decoded and added to the chunk for
//  the verifier.
static void
s_handle (s_mempool_t *self, cbus_request_t *request, s_chunk_t *chunk)
{
    const char *command = request->command;
    if (!request->decoded)
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "The body is not a msgpack map");
    else
    if (streq (command, CBUS_CMD_TX_SUBMIT)) {
        const uint8_t *data;
        size_t size;
        char reason [CBUS_REASON_MAX];
        cbus_tx_t *tx = NULL;
        if (cbus_msg_get_bin (cbus_request_map (request), "tx", &data, &size))
            cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "TX.SUBMIT needs tx bytes");
        else
        if (!(tx = cbus_tx_decode (data, size, reason)))
            cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "%s", reason);
        else
        if (self->require_signatures && !cbus_tx_is_signed (tx)) {
            cbus_reply_error (self->router, request, CBUS_STATUS_INVALID,
                              "This node accepts signed transactions only: add a signature "
                              "by sender_public_key (see docs/transactions.md)");
            cbus_tx_destroy (&tx);
        }
        else {
            //  Every submission, duplicates too, is answered after the
            //  commit of its batch, in arrival order.
            s_submit_t *submit = (s_submit_t *) zmalloc (sizeof (s_submit_t));
            submit->request = request;
            submit->tx = tx;
            chunk->submits [chunk->count++] = submit;
            return;                 //  The chunk owns the request now
        }
    }
    else
    if (streq (command, CBUS_CMD_MINE)) {
        s_waiter_t *waiter = (s_waiter_t *) zmalloc (sizeof (s_waiter_t));
        waiter->request = request;
        waiter->deadline = cbus_mono_ms () + self->mine_timeout_ms;
        zlistx_add_end (self->waiters, waiter);
        if (!self->job_active)
            s_publish_work (self);
        return;                     //  The waiter owns the request now
    }
    else
    if (streq (command, CBUS_CMD_TX_GET))
        s_handle_tx_get (self, request);
    else
    if (streq (command, CBUS_CMD_MEMPOOL_INFO)) {
        msgpack_packer pk = cbus_packer_begin (&self->reply, 3);
        cbus_pack_kv_u64 (&pk, "size", cbus_pool_size (self->pool));
        cbus_pack_kv_u64 (&pk, "bytes", cbus_pool_bytes (self->pool));
        cbus_pack_kv_u64 (&pk, "next_height", self->tip_height + 1);
        s_send (self, request);
    }
    else
    if (streq (command, CBUS_CMD_PING))
        cbus_service_pong (self->router, request, "mempool");
    else
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "Unknown command %s", command);
    cbus_request_destroy (&request);
}

static int
s_on_request (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    s_mempool_t *self = (s_mempool_t *) arg;
    //  Take what has arrived, up to a chunk of submissions; the chunk
    //  goes to the verifier, and what arrives meanwhile makes the next.
    s_chunk_t *chunk = (s_chunk_t *) zmalloc (sizeof (s_chunk_t));
    do {
        cbus_request_t *request = cbus_request_recv (self->router);
        if (request)
            s_handle (self, request, chunk);
    } while (chunk->count < S_CHUNK_MAX && s_intake (self) + chunk->count < self->batch_max
          && (zsock_events (self->router) & ZMQ_POLLIN));
    if (chunk->count) {
        self->verifying += chunk->count;
        self->chunks++;
        zsock_send (zactor_sock (self->verifier), "sp", "VERIFY", chunk);
    }
    else
        free (chunk);
    s_intake_check (self);
    return 0;
}

//  The verifier: checks the signatures of each chunk it is given and
//  hands the chunk back; a submission that fails gets its refusal.
static void
s_verifier_actor (zsock_t *pipe, void *args)
{
    (void) args;
    cbus_thread_name ("mempool-verify");
    zsock_signal (pipe, 0);
    while (true) {
        char *command = NULL;
        void *pointer = NULL;
        if (zsock_recv (pipe, "sp", &command, &pointer) == -1)
            break;
        bool stop = !command || !streq (command, "VERIFY");
        zstr_free (&command);
        if (stop)
            break;
        s_chunk_t *chunk = (s_chunk_t *) pointer;
        char reason [CBUS_REASON_MAX];
        for (size_t index = 0; index < chunk->count; index++)
            if (cbus_tx_verify (chunk->submits [index]->tx, reason))
                chunk->submits [index]->refusal = strdup (reason);
        zsock_send (pipe, "p", chunk);
    }
}

//  A chunk is back from the verifier: refuse what failed; the rest wait
//  for the next write, which starts now if none runs.
static int
s_on_verified (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_mempool_t *self = (s_mempool_t *) arg;
    void *pointer = NULL;
    if (zsock_recv (reader, "p", &pointer) || !pointer)
        return 0;
    s_chunk_t *chunk = (s_chunk_t *) pointer;
    self->verifying -= chunk->count;
    self->chunks--;
    if (zlistx_size (self->verified) == 0)
        self->verified_since = cbus_mono_ms ();
    for (size_t index = 0; index < chunk->count; index++) {
        s_submit_t *submit = chunk->submits [index];
        if (submit->refusal) {
            cbus_reply_error (self->router, submit->request, CBUS_STATUS_INVALID, "%s",
                              submit->refusal);
            s_submit_destroy (&submit);
        }
        else
            zlistx_add_end (self->verified, submit);
    }
    free (chunk);
    s_write_next (self);
    s_intake_check (self);
    return 0;
}

static void
s_answer_waiters (s_mempool_t *self, const uint8_t hash [CBUS_HASH_BYTES], uint64_t height)
{
    s_waiter_t *waiter;
    while ((waiter = (s_waiter_t *) zlistx_detach (self->waiters, NULL))) {
        msgpack_packer pk = cbus_packer_begin (&self->reply, 2);
        cbus_pack_kv_bin (&pk, "hash", hash, CBUS_HASH_BYTES);
        cbus_pack_kv_u64 (&pk, "height", height);
        s_send (self, waiter->request);
        cbus_request_destroy (&waiter->request);
        free (waiter);
    }
}

//  A block left the active chain (a reorganisation): take its
//  transactions back, durably, before the blocks that joined are seen
//  (they follow on the bus and remove what the new branch holds). With
//  only_inactive, a block the active chain still holds is left alone.
//  Returns 0 when taken back, 1 when left alone, -1 if the chainstore
//  does not give the block; prev gets the block's parent.
static int
s_take_back (s_mempool_t *self, const uint8_t hash [CBUS_HASH_BYTES], bool only_inactive,
             uint8_t prev [CBUS_HASH_BYTES])
{
    cbus_buf_t body = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &body);
    msgpack_pack_map (&pk, 1);
    cbus_pack_kv_bin (&pk, "hash", hash, CBUS_HASH_BYTES);
    zframe_t *frame = NULL;
    msgpack_unpacked unpacked;
    const uint8_t *bytes;
    size_t size;
    uint64_t confirmations = 0;
    char reason [CBUS_REASON_MAX];
    cbus_block_t *block = NULL;
    if (s_ask_chainstore (self, CBUS_CMD_BLOCK_GET, &body, &frame, &unpacked) == 0) {
        if (cbus_msg_get_bin (&unpacked.data, "block", &bytes, &size) == 0
        &&  cbus_msg_get_u64 (&unpacked.data, "confirmations", &confirmations) == 0)
            block = cbus_block_new_from_bytes (bytes, size, reason);
        msgpack_unpacked_destroy (&unpacked);
        zframe_destroy (&frame);
    }
    cbus_buf_free (&body);
    char hex [CBUS_HASH_HEX];
    if (!block) {
        zsys_error ("could not take back the transactions of disconnected block %s",
                    cbus_hash_hex (hash, hex));
        return -1;
    }
    memcpy (prev, cbus_block_header (block)->prev_hash, CBUS_HASH_BYTES);
    if (only_inactive && confirmations > 0) {
        cbus_block_destroy (&block);
        return 1;
    }
    size_t count = cbus_block_tx_count (block), taken = 0;
    bool *staged = (bool *) calloc (count + 1, sizeof (bool));
    for (size_t index = 0; index < count; index++)
        staged [index] = cbus_pool_stage (self->pool, cbus_block_tx (block, index));
    if (cbus_pool_commit (self->pool) == 0) {
        for (size_t index = 0; index < count; index++)
            if (staged [index]) {
                s_publish_added (self, cbus_block_tx (block, index));
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

//  Our tip is no longer the chain's, and we did not see how (this
//  service or the bus restarted meanwhile): the blocks from our tip back
//  to the active chain left it unseen. Take their transactions back, as
//  their chain.block.disconnected events would have; what the active
//  chain holds is removed afterwards by the reconciliation.
static void
s_take_back_from (s_mempool_t *self, const uint8_t old_tip [CBUS_HASH_BYTES])
{
    uint8_t hash [CBUS_HASH_BYTES], prev [CBUS_HASH_BYTES];
    memcpy (hash, old_tip, CBUS_HASH_BYTES);
    for (int count = 0; count < S_WALK_BACK_MAX; count++) {
        if (s_take_back (self, hash, true, prev))
            break;                  //  On the active chain, or unknown
        memcpy (hash, prev, CBUS_HASH_BYTES);
    }
}

static void
s_handle_chain_event (s_mempool_t *self, cbus_event_t *event)
{
    const msgpack_object *map = cbus_event_map (event);
    uint8_t hash [CBUS_HASH_BYTES], prev [CBUS_HASH_BYTES], root [CBUS_HASH_BYTES];
    uint64_t height, time_ms;
    const msgpack_object *txids = cbus_msg_get (map, "txids");
    if (cbus_msg_get_hash (map, "hash", hash) || cbus_msg_get_hash (map, "prev_hash", prev)
    ||  cbus_msg_get_hash (map, "merkle_root", root) || cbus_msg_get_u64 (map, "height", &height)
    ||  cbus_msg_get_u64 (map, "time_ms", &time_ms) || height == 0
    ||  !txids || txids->type != MSGPACK_OBJECT_ARRAY)
        return;
    if (streq (event->topic, CBUS_TOPIC_BLOCK_DISCONNECTED)) {
        uint8_t parent [CBUS_HASH_BYTES];
        s_take_back (self, hash, false, parent);
        //  The tip is the block's parent until the new branch arrives.
        self->tip_height = height - 1;
        memcpy (self->tip_hash, prev, CBUS_HASH_BYTES);
        cbus_pool_set_tip (self->pool, prev, height - 1);
        if (cbus_pool_flush (self->pool))
            zsys_error ("could not write the mempool's tip");
        if (self->job_active && memcmp (self->job_prev, hash, CBUS_HASH_BYTES) == 0)
            self->job_active = false;
        return;
    }
    if (!streq (event->topic, CBUS_TOPIC_BLOCK_CONNECTED))
        return;
    bool follows = self->tip_known && memcmp (prev, self->tip_hash, CBUS_HASH_BYTES) == 0;
    //  A gap: if our tip left the active chain meanwhile, take back what
    //  left with it before this block removes what it holds.
    if (!follows && (self->tip_known || self->tip_stored)
    &&  memcmp (hash, self->tip_hash, CBUS_HASH_BYTES) != 0
    &&  s_still_active (self, self->tip_hash, self->tip_height) == 0)
        s_take_back_from (self, self->tip_hash);
    self->tip_stored = false;
    size_t removed = 0;
    for (uint32_t index = 0; index < txids->via.array.size; index++) {
        const msgpack_object *item = &txids->via.array.ptr [index];
        if (item->type == MSGPACK_OBJECT_BIN && item->via.bin.size == CBUS_HASH_BYTES
        &&  cbus_pool_remove (self->pool, (const uint8_t *) item->via.bin.ptr)) {
            s_publish_removed (self, (const uint8_t *) item->via.bin.ptr, "mined");
            removed++;
        }
    }
    self->tip_known = true;
    self->tip_height = height;
    self->tip_time_ms = time_ms;
    memcpy (self->tip_hash, hash, CBUS_HASH_BYTES);
    cbus_pool_set_tip (self->pool, hash, height);
    if (cbus_pool_flush (self->pool))
        zsys_error ("could not write mempool removals");
    CBUS_DEBUG ("block seen height=%" PRIu64 " removed=%zu pending=%zu", height, removed,
                cbus_pool_size (self->pool));
    if (!follows)
        //  We missed something (a gap or a restart): ask the chain.
        s_sync_tip (self);
    if (self->job_active && memcmp (prev, self->job_prev, CBUS_HASH_BYTES) == 0) {
        self->job_active = false;
        if (memcmp (root, self->job_root, CBUS_HASH_BYTES) == 0)
            s_answer_waiters (self, hash, height);
    }
}

static int
s_on_chain_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    s_mempool_t *self = (s_mempool_t *) arg;
    //  Take every event waiting (a reorganisation comes as a burst), then
    //  build one template if somebody still waits for a block.
    int count = 0;
    do {
        cbus_event_t *event = cbus_event_recv (self->sub);
        if (event && event->decoded)
            s_handle_chain_event (self, event);
        cbus_event_destroy (&event);
    } while (++count < 10000 && (zsock_events (self->sub) & ZMQ_POLLIN));
    if (!self->job_active && zlistx_size (self->waiters))
        //  Somebody else's block took the height: mine on top of the tip.
        s_publish_work (self);
    return 0;
}

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    s_mempool_t *self = (s_mempool_t *) arg;
    cbus_pub_heartbeat (self->pub);
    //  Forget waiters nobody waits for any more (the gateway gave up).
    int64_t now = cbus_mono_ms ();
    s_waiter_t *waiter = (s_waiter_t *) zlistx_first (self->waiters);
    while (waiter && waiter->deadline < now) {
        zlistx_detach_cur (self->waiters);
        cbus_reply_error (self->router, waiter->request, CBUS_STATUS_UNAVAILABLE,
                          "No miner found a block in time");
        cbus_request_destroy (&waiter->request);
        free (waiter);
        waiter = (s_waiter_t *) zlistx_first (self->waiters);
    }
    if (zlistx_size (self->waiters) == 0)
        self->job_active = false;
    //  Catch a tip that moved without us hearing (missed event). The
    //  event may merely be on its way: only a job that stays off the tip
    //  for two ticks is given up as stale.
    s_sync_tip (self);
    if (self->job_active && memcmp (self->job_prev, self->tip_hash, CBUS_HASH_BYTES) != 0) {
        if (++self->job_stale_ticks >= 2)
            self->job_active = false;
    }
    else
        self->job_stale_ticks = 0;
    //  Work still wanted: resend it for miners that started late.
    if (zlistx_size (self->waiters)) {
        if (self->job_active)
            cbus_pub_send (self->pub, CBUS_TOPIC_MINER_WORK, &self->work);
        else
            s_publish_work (self);
    }
    return 0;
}

void
cbus_mempool_actor (zsock_t *pipe, void *args)
{
    cbus_config_t *config = (cbus_config_t *) args;
    s_mempool_t self = { .pipe = pipe, .config = config };
    char reason [CBUS_REASON_MAX];
    char *endpoint = cbus_config_endpoint (config, "mempool");
    char *store = cbus_config_endpoint (config, "chainstore");
    char *bus_in = cbus_config_endpoint (config, "bus-in");
    char *bus_out = cbus_config_endpoint (config, "bus-out");
    char *path = cbus_config_path (config, "mempool");
    zloop_t *loop = NULL;
    zsock_signal (pipe, 0);

    self.max_pending = (size_t) cbus_config_int (config, "mempool/max_pending");
    self.block_max_txs = (size_t) cbus_config_int (config, "mempool/block_max_txs");
    self.batch_max = (size_t) cbus_config_int (config, "mempool/batch_max");
    self.require_signatures = cbus_config_bool (config, "mempool/require_signatures");
    self.commit_wait_ms = cbus_config_int (config, "mempool/commit_wait_ms");
    self.commit_timer = -1;
    self.mine_timeout_ms = cbus_config_int (config, "gateway/mine_timeout_ms");
    self.waiters = zlistx_new ();
    self.verified = zlistx_new ();
    self.waiting = zlistx_new ();
    self.writing_submits = zlistx_new ();
    self.pool = cbus_pool_new (path, reason);
    if (!self.pool) {
        cbus_service_fail (pipe, "%s", reason);
        goto cleanup;
    }
    self.router = cbus_service_router (endpoint, CBUS_MSG_MAX_BYTES, reason);
    if (!self.router) {
        cbus_service_fail (pipe, "%s", reason);
        goto cleanup;
    }
    self.sub = zsock_new_sub (bus_out, "chain.block.");
    self.chainstore = cbus_client_new (store);
    self.pub = cbus_pub_new (bus_in, "mempool");
    assert (self.sub && self.chainstore && self.pub);
    zsock_set_rcvhwm (self.sub, 100000);
    //  The tip the pool reflected when this service last ran: if the
    //  chain has left it since, what left is taken back now.
    self.tip_stored = cbus_pool_tip (self.pool, self.tip_hash, &self.tip_height) == 0;
    s_sync_tip (&self);
    loop = zloop_new ();
    //  Stop on $TERM from main only, not on a signal: see cbus_service.h.
    zloop_set_nonstop (loop, true);
    zloop_reader (loop, pipe, cbus_service_on_pipe, &self);
    zloop_reader (loop, self.router, s_on_request, &self);
    zloop_reader (loop, self.sub, s_on_chain_event, &self);
    self.loop = loop;
    self.verifier = zactor_new (s_verifier_actor, NULL);
    zloop_reader (loop, zactor_sock (self.verifier), s_on_verified, &self);
    self.writer = zactor_new (s_writer_actor, NULL);
    zloop_reader (loop, zactor_sock (self.writer), s_on_written, &self);
    zloop_timer (loop, S_TICK_MS, 0, s_on_tick, &self);
    zsys_info ("mempool ready pending=%zu tip_height=%" PRIu64 " endpoint=%s",
               cbus_pool_size (self.pool), self.tip_height, endpoint);
    zloop_start (loop);
cleanup:
    zloop_destroy (&loop);
    self.stopping = true;
    //  Chunks still in the verifier come back and are dropped unanswered,
    //  as are the submissions verified but not yet written: nothing of
    //  them was stored, and their senders see the mempool gone.
    while (self.verifying) {
        void *pointer = NULL;
        if (zsock_recv (self.verifier, "p", &pointer) || !pointer)
            break;
        s_chunk_t *chunk = (s_chunk_t *) pointer;
        self.verifying -= chunk->count;
        self.chunks--;
        for (size_t index = 0; index < chunk->count; index++)
            s_submit_destroy (&chunk->submits [index]);
        free (chunk);
    }
    zactor_destroy (&self.verifier);
    //  The write still running ends first: what it holds is answered.
    while (self.writing) {
        void *write = NULL;
        int rc = -1;
        if (zsock_recv (self.writer, "pi", &write, &rc) == -1 || write != self.writing)
            break;
        s_write_ended (&self, rc);
    }
    zactor_destroy (&self.writer);
    s_submit_t *submit;
    while (self.verified && (submit = (s_submit_t *) zlistx_detach (self.verified, NULL)))
        s_submit_destroy (&submit);
    while (self.waiting && (submit = (s_submit_t *) zlistx_detach (self.waiting, NULL)))
        s_submit_destroy (&submit);
    zlistx_destroy (&self.verified);
    zlistx_destroy (&self.waiting);
    zlistx_destroy (&self.writing_submits);
    if (self.waiters) {
        s_waiter_t *waiter;
        while ((waiter = (s_waiter_t *) zlistx_detach (self.waiters, NULL))) {
            cbus_request_destroy (&waiter->request);
            free (waiter);
        }
        zlistx_destroy (&self.waiters);
    }
    zsock_destroy (&self.router);
    zsock_destroy (&self.sub);
    cbus_client_destroy (&self.chainstore);
    cbus_pub_destroy (&self.pub);
    cbus_pool_destroy (&self.pool);
    cbus_buf_free (&self.reply);
    cbus_buf_free (&self.event);
    cbus_buf_free (&self.work);
    zstr_free (&endpoint);
    zstr_free (&store);
    zstr_free (&bus_in);
    zstr_free (&bus_out);
    zstr_free (&path);
}
