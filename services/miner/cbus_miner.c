/*  =========================================================================
    cbus_miner - searches proof of work for the mempool's block templates
    =========================================================================
*/
#include "cbus_miner.h"
#include <sodium.h>

//  What one search slice aims to take, and the bounds of its size.
#define S_SLICE_MS    10
#define S_SLICE_FIRST 20000
#define S_SLICE_MIN   1000
#define S_SLICE_MAX   (1 << 22)
//  How long the chainstore has to answer a submission.
#define S_SUBMIT_TIMEOUT_MS 10000
//  How often the hash rate is logged while there are hashes to count.
#define S_RATE_EVERY_MS 10000
//  How often a chainstore that takes no blocks (a full disk) is asked
//  whether it takes them again, and how long it has to answer.
#define S_STORE_POLL_MS 1000

struct _cbus_miner_t {
    zloop_t *loop;              //  Sockets, heartbeat and the search
    zsock_t *sub;               //  miner.work and chain.block.connected
    cbus_caller_t *store;       //  Submissions to the chainstore
    cbus_pub_t *pub;            //  Heartbeats
    uint32_t id;                //  Miner id in every header we hash
    char source [32];           //  "miner.<id>", our name on the bus
    int64_t twin_logged;        //  When another miner with our id was last logged
    int search;                 //  Search timer, -1 while idle
    uint64_t slice;             //  Nonces a slice tries, tuned to S_SLICE_MS
    //  Current work
    bool working;               //  The job is being searched
    bool solved;                //  The job was solved: resends are ignored
    uint64_t job;               //  Its number
    uint8_t published [CBUS_HEADER_BYTES];  //  Its header as published
    cbus_header_t header;       //  That header with our id, nonce advancing
    uint64_t work_time_ms;      //  Its template's time (the node's clock)
    int64_t work_taken;         //  When we took it, monotonic ms
    cbus_buf_t txs;             //  Its transactions, a msgpack array
    cbus_buf_t block;           //  Block bytes being submitted
    cbus_buf_t body;            //  Submission being packed
    //  A chainstore that takes no blocks (no_space): the block solved
    //  meanwhile is held, and submitted once TIP says it takes them again
    bool store_full;            //  Its last answer was no_space
    bool held;                  //  The solved job's block waits for it
    int poll;                   //  TIP timer while store_full, or -1
    //  Counters
    uint64_t hashes;            //  Hashes since the last rate line
    int64_t since;              //  When counting started
    uint64_t beat_hashes;       //  Hashes since the last heartbeat
    int64_t beat_since;         //  When that heartbeat went
    uint64_t hash_rate;         //  Hashes a second over the last heartbeat interval
    cbus_buf_t beat;            //  Heartbeat being packed
};

//  --------------------------------------------------------------------------
//  Block bytes (cbus_block.h: {"header": bin100, "txs": [bin]}, not a
//  bus message) from our header and the template's transactions, kept
//  as a msgpack array of their bytes: never decoded as transactions.

static void
s_block_bytes (cbus_buf_t *block, const cbus_header_t *header, const cbus_buf_t *txs)
{
    msgpack_packer pk = cbus_packer_begin (block, 2);
    uint8_t bytes [CBUS_HEADER_BYTES];
    cbus_header_encode (header, bytes);
    cbus_pack_kv_bin (&pk, "header", bytes, sizeof (bytes));
    cbus_pack_str (&pk, "txs");
    cbus_buf_append (block, txs->data, txs->size);
}

//  The template's transactions (a decoded BIN list) as that array.
static void
s_txs_keep (cbus_buf_t *txs, const cbus_list_t *list)
{
    cbus_buf_reset (txs);
    msgpack_packer pk;
    cbus_packer_init (&pk, txs);
    msgpack_pack_array (&pk, list->count);
    for (uint32_t index = 0; index < list->count; index++) {
        cbus_bytes_t tx = cbus_list_bytes (list, index);
        msgpack_pack_bin (&pk, tx.size);
        msgpack_pack_bin_body (&pk, tx.data, tx.size);
    }
}

//  --------------------------------------------------------------------------
//  Work and search

static int s_on_search (zloop_t *loop, int timer_id, void *arg);

//  Search from the next turn of the loop on.
static void
s_search_start (cbus_miner_t *self)
{
    self->working = true;
    if (self->search == -1)
        self->search = zloop_timer (self->loop, 0, 0, s_on_search, self);
    if (self->search == -1) {
        zsys_error ("cannot start searching: no timer");
        self->working = false;
    }
}

static void
s_search_stop (cbus_miner_t *self)
{
    self->working = false;
    if (self->search != -1)
        zloop_timer_end (self->loop, self->search);
    self->search = -1;
}

static void s_submit (cbus_miner_t *self);

//  The chainstore takes blocks again: the held block goes.
static void
s_store_writable (cbus_miner_t *self)
{
    if (!self->store_full)
        return;
    self->store_full = false;
    if (self->poll != -1)
        zloop_timer_end (self->loop, self->poll);
    self->poll = -1;
    zsys_info ("chainstore takes blocks again%s", self->held ? ": the held block goes" : "");
    if (self->held && self->solved)
        s_submit (self);
    self->held = false;
}

//  The chainstore's answer to TIP while it took no blocks: once it has
//  no storage field it takes them again.
static void
s_on_store_tip (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_miner_t *self = (cbus_miner_t *) call->owner;
    cbus_tip_reply_t tip;
    char reason [CBUS_REASON_MAX];
    if (cbus_reply_ok (reply) && cbus_tip_reply_decode (cbus_reply_map (reply), &tip, reason) == 0
    &&  !tip.has_storage)
        s_store_writable (self);
}

static int
s_on_poll (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    cbus_miner_t *self = (cbus_miner_t *) arg;
    cbus_tip_t ask = {0};
    cbus_tip_encode (&ask, &self->body);
    cbus_caller_send (self->store, CBUS_CMD_TIP, self->body.data, self->body.size,
                      S_STORE_POLL_MS, s_on_store_tip, self, NULL);
    return 0;
}

//  The chainstore refused a block for want of space: hold the job's
//  block (it is not searched or sent again) and ask every second whether
//  the chainstore takes blocks again.
static void
s_store_full (cbus_miner_t *self, uint64_t job)
{
    if (self->solved && self->job == job)
        self->held = true;
    if (!self->store_full)
        zsys_warning ("chainstore takes no blocks (disk full): the block of job %" PRIu64
                      " is held until it does", job);
    self->store_full = true;
    if (self->poll == -1)
        self->poll = zloop_timer (self->loop, S_STORE_POLL_MS, 0, s_on_poll, self);
}

//  The chainstore's answer to a submission, or a local UNAVAILABLE.
static void
s_on_submitted (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_miner_t *self = (cbus_miner_t *) call->owner;
    cbus_block_submit_reply_t msg;
    char hex [CBUS_HASH_HEX], reason [CBUS_REASON_MAX];
    if (!cbus_reply_ok (reply) && reply->code == CBUS_CODE_NO_SPACE) {
        zsys_warning ("block refused status=%s code=%s reason=\"%s\"", reply->status,
                      cbus_code_name (reply->code), reply->reason);
        s_store_full (self, (uint64_t) (uintptr_t) call->arg);
    }
    else
    if (!cbus_reply_ok (reply)) {
        zsys_warning ("block refused status=%s code=%s reason=\"%s\"", reply->status,
                      cbus_code_name (reply->code), reply->reason);
        //  Not judged (the chainstore did not answer, restarted, or
        //  failed): the job counts as unsolved again, so that its next
        //  resend is searched and the block submitted again. A block the
        //  rules refused is not: it would be refused again.
        bool judged = reply->code != CBUS_CODE_UNAVAILABLE && reply->code != CBUS_CODE_STORAGE
                   && reply->code != CBUS_CODE_INTERNAL;
        if (!judged && self->solved && self->job == (uint64_t) (uintptr_t) call->arg)
            self->solved = false;
    }
    else
    if (cbus_block_submit_reply_decode (cbus_reply_map (reply), &msg, reason))
        zsys_warning ("the chainstore's answer to a submission is malformed: %s", reason);
    else
        zsys_info ("block submitted status=%.*s height=%" PRIu64 " hash=%s",
                   (int) msg.status.size, msg.status.data, msg.height,
                   cbus_hash_hex (msg.hash, hex));
}

//  Submit the solved block: the template's transactions with our header.
static void
s_submit (cbus_miner_t *self)
{
    s_block_bytes (&self->block, &self->header, &self->txs);
    cbus_block_submit_t msg = {
        .block = { (const uint8_t *) self->block.data, self->block.size }
    };
    cbus_block_submit_encode (&msg, &self->body);
    cbus_caller_send (self->store, CBUS_CMD_BLOCK_SUBMIT, self->body.data, self->body.size,
                      S_SUBMIT_TIMEOUT_MS, s_on_submitted, self, (void *) (uintptr_t) self->job);
    uint8_t hash [CBUS_HASH_BYTES];
    char hex [CBUS_HASH_HEX];
    cbus_header_hash (&self->header, hash);
    zsys_info ("block found job=%" PRIu64 " height=%" PRIu64 " nonce=%" PRIu64 " hash=%s",
               self->job, self->header.height, self->header.nonce, cbus_hash_hex (hash, hex));
}

//  One search slice; the slice grows or shrinks so that it takes about
//  S_SLICE_MS whatever the machine (or a sanitizer) makes of a hash.
static int
s_on_search (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    cbus_miner_t *self = (cbus_miner_t *) arg;
    if (!self->working)
        return 0;                   //  A timer ended but not yet removed
    //  The header's time moves on during a long search, so that a block
    //  says when it was found, not when its template was made:
    //  retargeting reads block times. It is the template's time (the
    //  node's clock) plus the time since we took the work, by our
    //  monotonic clock: a miner on another machine whose clock is off
    //  neither post-dates its blocks (easing the target) nor gets them
    //  refused as too far in the future. Only forward; the merkle root,
    //  and so the job, is the same.
    uint64_t now_ms = self->work_time_ms + (uint64_t) (cbus_mono_ms () - self->work_taken);
    if (now_ms > self->header.time_ms)
        self->header.time_ms = now_ms;
    int64_t start = cbus_mono_ms ();
    uint64_t first = self->header.nonce;
    bool found = cbus_header_search (&self->header, self->slice);
    int64_t took = cbus_mono_ms () - start;
    //  Nonces tried: up to the one found, or the whole slice.
    uint64_t tried = found ? self->header.nonce - first + 1 : self->slice;
    self->hashes += tried;
    self->beat_hashes += tried;
    //  Only a slice that ran to its end says how long a slice takes: one
    //  that found the proof early would grow it on every easy job, until
    //  a hard one kept the miner from its sockets for seconds.
    if (!found && took < S_SLICE_MS / 2 && self->slice < S_SLICE_MAX)
        self->slice *= 2;
    else
    if (took > S_SLICE_MS * 2 && self->slice > S_SLICE_MIN)
        self->slice /= 2;
    if (found) {
        self->solved = true;
        s_search_stop (self);
        if (self->store_full) {
            self->held = true;
            zsys_info ("block found job=%" PRIu64 ": held while the chainstore takes no blocks",
                       self->job);
        }
        else
            s_submit (self);
    }
    return 0;
}

static void
s_take_work (cbus_miner_t *self, cbus_event_t *event)
{
    cbus_miner_work_t msg;
    cbus_header_t header;
    char reason [CBUS_REASON_MAX];
    if (cbus_miner_work_decode (cbus_event_map (event), &msg, reason)
    ||  cbus_header_decode (&header, msg.header, CBUS_HEADER_BYTES)) {
        zsys_warning ("dropped malformed miner.work");
        return;
    }
    //  The same job again (a resend): keep our place in it, or leave it
    //  solved.
    if ((self->working || self->solved) && msg.job == self->job
    &&  memcmp (msg.header, self->published, CBUS_HEADER_BYTES) == 0)
        return;
    s_txs_keep (&self->txs, &msg.txs);
    self->held = false;             //  The held block's job is over
    self->job = msg.job;
    memcpy (self->published, msg.header, CBUS_HEADER_BYTES);
    self->header = header;
    self->header.miner = self->id;
    self->header.nonce = 0;
    self->work_time_ms = header.time_ms;
    self->work_taken = cbus_mono_ms ();
    self->solved = false;
    s_search_start (self);
    CBUS_DEBUG ("work taken job=%" PRIu64 " height=%" PRIu64, msg.job, header.height);
}

//  A heartbeat from a miner with our name but another boot: it has our
//  id, so it hashes the very headers we hash (a --miner-id given to
//  several miners, or one copied config). Said once a minute.
static void
s_check_twin (cbus_miner_t *self, cbus_event_t *event)
{
    cbus_event_source_t source;
    char reason [CBUS_REASON_MAX];
    if (cbus_event_source_decode (cbus_event_map (event), &source, reason)
    ||  !cbus_str_eq (source.src, self->source) || source.boot == cbus_pub_boot (self->pub))
        return;
    int64_t now = cbus_mono_ms ();
    if (self->twin_logged && now - self->twin_logged < 60000)
        return;
    self->twin_logged = now;
    zsys_error ("another miner has id=%u: both hash the same headers, so the work of one is "
                "wasted; give each miner its own miner/id (0: a random one)", self->id);
}

static int
s_on_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    cbus_miner_t *self = (cbus_miner_t *) arg;
    cbus_event_t *event = cbus_event_recv (self->sub);
    if (!event || !event->decoded) {
        cbus_event_destroy (&event);
        return 0;
    }
    cbus_block_connected_t connected;
    char reason [CBUS_REASON_MAX];
    cbus_chain_storage_t storage;
    if (streq (event->topic, CBUS_TOPIC_MINER_WORK))
        s_take_work (self, event);
    else
    if (streq (event->topic, CBUS_TOPIC_HEARTBEAT))
        s_check_twin (self, event);
    else
    if (streq (event->topic, CBUS_TOPIC_CHAIN_STORAGE)
    &&  cbus_chain_storage_decode (cbus_event_map (event), &storage, reason) == 0) {
        //  Told at once; TIP, asked every second meanwhile, for a missed event.
        //  A block found meanwhile is held; none sent before is.
        if (storage.writable)
            s_store_writable (self);
        else
            s_store_full (self, UINT64_MAX);
    }
    else
    if (streq (event->topic, CBUS_TOPIC_BLOCK_CONNECTED) && self->working
    &&  cbus_block_connected_decode (cbus_event_map (event), &connected, reason) == 0
    &&  memcmp (connected.prev_hash, self->header.prev_hash, CBUS_HASH_BYTES) == 0) {
        s_search_stop (self);       //  Stale: that height is taken
        CBUS_DEBUG ("work dropped as stale job=%" PRIu64, self->job);
    }
    cbus_event_destroy (&event);
    return 0;
}

static int
s_on_heartbeat (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    cbus_miner_t *self = (cbus_miner_t *) arg;
    int64_t now = cbus_mono_ms ();
    //  The heartbeat carries the hash rate since the last one (GET /status
    //  lists it per miner).
    if (now > self->beat_since)
        self->hash_rate = self->beat_hashes * 1000 / (uint64_t) (now - self->beat_since);
    self->beat_hashes = 0;
    self->beat_since = now;
    cbus_heartbeat_t beat = { .hash_rate = self->hash_rate, .has_hash_rate = true };
    cbus_pub_heartbeat_fill (self->pub, &beat);
    cbus_pub_send_msg (self->pub, &cbus_heartbeat_def, &beat, &self->beat);
    if (self->hashes && now - self->since >= S_RATE_EVERY_MS) {
        zsys_info ("hash rate=%.0f/s", self->hashes * 1000.0 / (double) (now - self->since));
        self->hashes = 0;
        self->since = now;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  The class and its actor

cbus_miner_t *
cbus_miner_new (cbus_config_t *config)
{
    char reason [CBUS_REASON_MAX] = "out of memory";
    cbus_miner_t *self = (cbus_miner_t *) zmalloc (sizeof (cbus_miner_t));
    if (!self) {
        zsys_error ("miner: %s", reason);
        return NULL;
    }
    self->search = -1;
    self->poll = -1;
    self->slice = S_SLICE_FIRST;
    self->since = cbus_mono_ms ();
    self->beat_since = self->since;
    self->id = (uint32_t) cbus_config_int (config, "miner/id");
    while (self->id == 0)
        self->id = randombytes_random ();
    snprintf (self->source, sizeof (self->source), "miner.%u", self->id);
    char *bus_in = cbus_config_endpoint (config, "bus-in");
    char *bus_out = cbus_config_endpoint (config, "bus-out");
    char *store = cbus_config_endpoint (config, "chainstore");
    self->loop = zloop_new ();
    if (!bus_in || !bus_out || !store || !self->loop)
        goto failed;
    self->sub = zsock_new (ZMQ_SUB);
    if (!self->sub)
        goto failed;
    zsock_set_subscribe (self->sub, CBUS_TOPIC_MINER_WORK);
    zsock_set_subscribe (self->sub, CBUS_TOPIC_BLOCK_CONNECTED);
    zsock_set_subscribe (self->sub, CBUS_TOPIC_CHAIN_STORAGE);
    zsock_set_subscribe (self->sub, CBUS_TOPIC_HEARTBEAT);
    zsock_set_rcvhwm (self->sub, 100000);
    zsock_set_maxmsgsize (self->sub, CBUS_MSG_MAX_BYTES);
    if (cbus_endpoint_connect (self->sub, bus_out)) {
        cbus_fail (reason, "cannot subscribe to %s", bus_out);
        goto failed;
    }
    self->store = cbus_caller_new (self->loop, store, "chainstore");
    if (!self->store) {
        cbus_fail (reason, "cannot connect to the chainstore at %s", store);
        goto failed;
    }
    self->pub = cbus_pub_new (bus_in, self->source);
    if (!self->pub) {
        cbus_fail (reason, "cannot publish to %s", bus_in);
        goto failed;
    }
    //  Stop on $TERM from main only, not on a signal: see cbus_service.h.
    zloop_set_nonstop (self->loop, true);
    if (zloop_reader (self->loop, self->sub, s_on_event, self)
    ||  zloop_timer (self->loop, CBUS_HEARTBEAT_MS, 0, s_on_heartbeat, self) == -1) {
        cbus_fail (reason, "cannot register the sockets in the loop");
        goto failed;
    }
    zsys_info ("miner ready id=%u", self->id);
    zstr_free (&bus_in);
    zstr_free (&bus_out);
    zstr_free (&store);
    return self;
failed:
    cbus_service_fault (streq (reason, "out of memory"), "%s", reason);
    zstr_free (&bus_in);
    zstr_free (&bus_out);
    zstr_free (&store);
    cbus_miner_destroy (&self);
    return NULL;
}

void
cbus_miner_destroy (cbus_miner_t **self_p)
{
    assert (self_p);
    cbus_miner_t *self = *self_p;
    if (self) {
        //  The caller first: it takes its reader and timer off the loop.
        cbus_caller_destroy (&self->store);
        zloop_destroy (&self->loop);
        zsock_destroy (&self->sub);
        cbus_pub_destroy (&self->pub);
        cbus_buf_free (&self->txs);
        cbus_buf_free (&self->block);
        cbus_buf_free (&self->body);
        cbus_buf_free (&self->beat);
        free (self);
        *self_p = NULL;
    }
}

void
cbus_miner_actor (zsock_t *pipe, void *args)
{
    cbus_miner_t *self = cbus_miner_new ((cbus_config_t *) args);
    zsock_signal (pipe, 0);
    if (self && zloop_reader (self->loop, pipe, cbus_service_on_pipe, self) == 0) {
        cbus_service_ready (self->loop);
        zloop_start (self->loop);
    }
    else
        cbus_service_fail (pipe, "miner: not started");
    cbus_miner_destroy (&self);
}

//  --------------------------------------------------------------------------
//  Self test: the miner in-process between a stand-in mempool (a PUB
//  bound at bus-out) and a stand-in chainstore (a ROUTER bound at the
//  chainstore endpoint).

typedef struct {
    zsock_t *mempool;           //  Publishes miner.work at bus-out
    zsock_t *store;             //  Takes BLOCK.SUBMIT
    zsock_t *bus_in;            //  Hears the miner's heartbeats
    uint64_t sequence;          //  Of the next event
    cbus_buf_t event;           //  Event body being published
    cbus_tx_t *txs [2];         //  Transactions of every job
    uint64_t time_ms;           //  Time of the next job's header (0: now)
} s_test_t;

//  Publish test->event on topic: [topic][body][sequence].
static void
s_test_publish (s_test_t *test, const char *topic)
{
    uint8_t sequence [8];
    for (int index = 0; index < 8; index++)
        sequence [index] = (uint8_t) (test->sequence >> (8 * index));
    test->sequence++;
    void *handle = zsock_resolve (test->mempool);
    assert (zmq_send (handle, topic, strlen (topic), ZMQ_SNDMORE) >= 0);
    assert (zmq_send (handle, test->event.data, test->event.size, ZMQ_SNDMORE) >= 0);
    assert (zmq_send (handle, sequence, sizeof (sequence), 0) >= 0);
}

//  Make the miner.work body of a job on parent at height with bits.
static cbus_header_t
s_test_work (s_test_t *test, uint64_t job, uint8_t parent, uint64_t height, uint32_t bits)
{
    cbus_header_t header = {
        .version = CBUS_BLOCK_VERSION, .height = height, .bits = bits,
        .time_ms = test->time_ms ? test->time_ms : cbus_time_ms ()
    };
    memset (header.prev_hash, parent, CBUS_HASH_BYTES);
    cbus_block_t *block = cbus_block_new (&header);
    assert (block);
    for (size_t index = 0; index < 2; index++) {
        size_t size;
        const uint8_t *bytes = cbus_tx_bytes (test->txs [index], &size);
        char reason [CBUS_REASON_MAX];
        cbus_tx_t *copy = cbus_tx_new_from_bytes (bytes, size, reason);
        assert (copy);
        cbus_block_add_tx (block, &copy);
    }
    cbus_block_merkle (block, header.merkle_root);
    cbus_block_destroy (&block);
    //  The event as the mempool publishes it: the envelope ("src",
    //  "boot"), then the definition's fields.
    uint8_t bytes [CBUS_HEADER_BYTES];
    cbus_header_encode (&header, bytes);
    cbus_bytes_t txs [2];
    for (size_t index = 0; index < 2; index++)
        txs [index].data = cbus_tx_bytes (test->txs [index], &txs [index].size);
    cbus_miner_work_t work = {
        .job = job, .header = bytes, .txs = { .count = 2, .items = txs }
    };
    msgpack_packer pk = cbus_packer_begin (&test->event,
                                           2 + cbus_msgdef_count (&cbus_miner_work_def, &work));
    cbus_pack_kv_str (&pk, "src", "mempool");
    cbus_pack_kv_u64 (&pk, "boot", 1);
    cbus_msgdef_pack (&cbus_miner_work_def, &work, &pk);
    return header;
}

//  The next request to the stand-in chainstore within timeout_ms,
//  publishing the work again every 50 ms (the mempool resends too, and
//  the miner's subscription may still be on its way); NULL if none.
static cbus_request_t *
s_test_next_request (s_test_t *test, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (test->store, NULL);
    assert (poller);
    int64_t deadline = cbus_mono_ms () + timeout_ms;
    cbus_request_t *request = NULL;
    while (!request && cbus_mono_ms () < deadline) {
        s_test_publish (test, CBUS_TOPIC_MINER_WORK);
        if (zpoller_wait (poller, 50) == test->store)
            request = cbus_request_recv (test->store);
    }
    zpoller_destroy (&poller);
    return request;
}

//  The submission must be a valid block of the job: our id, its parent
//  and height, its transactions, a proof that meets its target. Returns
//  the block's time.
static uint64_t
s_test_check_submission (s_test_t *test, cbus_request_t *request, const cbus_header_t *job)
{
    assert (request && request->decoded && streq (request->command, CBUS_CMD_BLOCK_SUBMIT));
    cbus_block_submit_t msg;
    char reason [CBUS_REASON_MAX];
    assert (cbus_block_submit_decode (cbus_request_map (request), &msg, reason) == 0);
    cbus_block_t *block = cbus_block_new_from_bytes (msg.block.data, msg.block.size, reason);
    assert (block);
    //  The bytes are the block's one encoding, in the body the miner's
    //  hand-written packer wrote before the message's definition.
    cbus_buf_t bytes = {0}, hand = {0};
    cbus_block_encode (block, &bytes);
    assert (bytes.size == msg.block.size && memcmp (bytes.data, msg.block.data, bytes.size) == 0);
    msgpack_packer pk = cbus_packer_begin (&hand, 1);
    cbus_pack_kv_bin (&pk, "block", bytes.data, bytes.size);
    assert (zframe_size (request->body) == hand.size
        &&  memcmp (zframe_data (request->body), hand.data, hand.size) == 0);
    cbus_buf_free (&bytes);
    cbus_buf_free (&hand);
    cbus_header_t *header = cbus_block_header (block);
    assert (header->miner == 7 && header->height == job->height && header->bits == job->bits);
    assert (header->time_ms >= job->time_ms);
    assert (memcmp (header->prev_hash, job->prev_hash, CBUS_HASH_BYTES) == 0);
    assert (memcmp (header->merkle_root, job->merkle_root, CBUS_HASH_BYTES) == 0);
    assert (cbus_block_tx_count (block) == 2);
    assert (memcmp (cbus_tx_id (cbus_block_tx (block, 1)), cbus_tx_id (test->txs [1]),
                    CBUS_HASH_BYTES) == 0);
    cbus_code_t code;
    assert (cbus_block_check (block, &code, reason) == 0);
    uint64_t time_ms = header->time_ms;
    cbus_block_destroy (&block);
    return time_ms;
}

//  Answer a submission as the chainstore does: OK, or refused with code.
static void
s_test_answer (s_test_t *test, cbus_request_t *request, const cbus_header_t *job,
               cbus_code_t code)
{
    if (code != CBUS_CODE_OK) {
        cbus_reply_refuse (test->store, request, CBUS_STATUS_INVALID, code, "refused by the test");
        return;
    }
    cbus_buf_t body = {0};
    uint8_t hash [CBUS_HASH_BYTES] = {0};
    cbus_block_submit_reply_t reply = {
        .hash = hash, .height = job->height, .status = cbus_str ("connected")
    };
    cbus_reply_send_msg (test->store, request, &cbus_block_submit_reply_def, &reply, &body);
    cbus_buf_free (&body);
}

//  Answer TIP as the chainstore does; full: with a storage field.
static void
s_test_tip (s_test_t *test, cbus_request_t *request, bool full)
{
    assert (request && streq (request->command, CBUS_CMD_TIP));
    uint8_t hash [CBUS_HASH_BYTES] = {0};
    cbus_tip_reply_t reply = {
        .hash = hash, .work = hash, .network = cbus_str ("test"), .genesis = hash,
        .bits = 0x2000ffff, .has_storage = full, .storage = cbus_str ("disk full: /test")
    };
    cbus_buf_t body = {0};
    cbus_reply_send_msg (test->store, request, &cbus_tip_reply_def, &reply, &body);
    cbus_buf_free (&body);
}

static cbus_tx_t *
s_test_tx (int serial)
{
    char reason [CBUS_REASON_MAX];
    char *text = zsys_sprintf ("{\"users\": \"miner test\", \"data\": %d, \"dh_parameters\": \"\","
        " \"server_public_key\": \"\", \"receiver_public_key\": \"\", \"sender_public_key\": \"\"}",
        serial);
    json_t *object = cbus_json_parse (text, strlen (text), reason);
    cbus_tx_t *tx = cbus_tx_new_from_json (object, 1000, reason);
    assert (tx);
    json_decref (object);
    zstr_free (&text);
    return tx;
}

void
cbus_miner_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_miner: ");
    char dir [] = "/tmp/cbus_miner_test_XXXXXX";
    assert (mkdtemp (dir));
    char reason [CBUS_REASON_MAX];
    char *args [] = { "chainbus-miner", "--data-dir", dir, "--miner-id", "7" };
    cbus_config_t *config = cbus_config_new (5, args, reason);
    assert (config && cbus_config_make_dirs (config, reason) == 0);
    s_test_t test = { .txs = { s_test_tx (1), s_test_tx (2) } };
    char *endpoint = cbus_config_endpoint (config, "bus-in");
    test.bus_in = zsock_new (ZMQ_SUB);
    zsock_set_subscribe (test.bus_in, CBUS_TOPIC_HEARTBEAT);
    assert (test.bus_in && zsock_bind (test.bus_in, "%s", endpoint) == 0);
    zstr_free (&endpoint);
    endpoint = cbus_config_endpoint (config, "bus-out");
    test.mempool = zsock_new (ZMQ_PUB);
    assert (test.mempool && zsock_bind (test.mempool, "%s", endpoint) == 0);
    zstr_free (&endpoint);
    endpoint = cbus_config_endpoint (config, "chainstore");
    test.store = cbus_service_router (endpoint, CBUS_MSG_MAX_BYTES, reason);
    assert (test.store);
    zstr_free (&endpoint);
    zactor_t *miner = zactor_new (cbus_miner_actor, config);
    assert (miner);

    //  A job is solved and submitted once, however often it is resent.
    cbus_header_t job = s_test_work (&test, 1, 0x11, 5, 0x2000ffff);
    cbus_request_t *request = s_test_next_request (&test, 5000);
    s_test_check_submission (&test, request, &job);
    s_test_answer (&test, request, &job, CBUS_CODE_OK);
    cbus_request_destroy (&request);
    request = s_test_next_request (&test, 300);
    assert (request == NULL);
    //  A refusal is logged with its code; the next job is solved all the same.
    job = s_test_work (&test, 2, 0x22, 6, 0x2000ffff);
    request = s_test_next_request (&test, 5000);
    s_test_check_submission (&test, request, &job);
    s_test_answer (&test, request, &job, CBUS_CODE_BAD_POW);
    cbus_request_destroy (&request);
    //  A block the rules refused is not submitted again on a resend...
    request = s_test_next_request (&test, 300);
    assert (request == NULL);
    //  ...but one the chainstore could not judge (it did not answer, or
    //  restarted) is: the resent job is searched and submitted again.
    job = s_test_work (&test, 5, 0x55, 6, 0x2000ffff);
    request = s_test_next_request (&test, 5000);
    s_test_check_submission (&test, request, &job);
    s_test_answer (&test, request, &job, CBUS_CODE_UNAVAILABLE);
    cbus_request_destroy (&request);
    request = s_test_next_request (&test, 5000);
    s_test_check_submission (&test, request, &job);
    s_test_answer (&test, request, &job, CBUS_CODE_OK);
    cbus_request_destroy (&request);
    //  A block refused for want of space is held: neither searched nor
    //  sent again while TIP says the chainstore takes no blocks (asked
    //  every second); once TIP says it does, the same block goes again.
    job = s_test_work (&test, 6, 0x66, 9, 0x2000ffff);
    request = s_test_next_request (&test, 5000);
    s_test_check_submission (&test, request, &job);
    cbus_reply_refuse (test.store, request, CBUS_STATUS_ERROR, CBUS_CODE_NO_SPACE, "disk full");
    cbus_request_destroy (&request);
    int tips = 0;
    for (int64_t until = cbus_mono_ms () + 2500; cbus_mono_ms () < until; tips++) {
        request = s_test_next_request (&test, (int) (until - cbus_mono_ms ()));
        if (!request)
            break;
        s_test_tip (&test, request, true);
        cbus_request_destroy (&request);
    }
    assert (tips >= 1 && tips <= 4);
    request = s_test_next_request (&test, 3000);
    s_test_tip (&test, request, false);
    cbus_request_destroy (&request);
    request = s_test_next_request (&test, 3000);
    s_test_check_submission (&test, request, &job);
    s_test_answer (&test, request, &job, CBUS_CODE_OK);
    cbus_request_destroy (&request);
    //  A template whose time is a minute behind this clock: the miner
    //  moves the header's time on from the template's by its own
    //  monotonic clock, never to its wall clock (a remote miner's clock
    //  may be off; the template's is the node's).
    test.time_ms = cbus_time_ms () - 60000;
    uint64_t template_ms = test.time_ms;
    job = s_test_work (&test, 7, 0x77, 10, 0x2000ffff);
    test.time_ms = 0;
    request = s_test_next_request (&test, 5000);
    uint64_t found_ms = s_test_check_submission (&test, request, &job);
    assert (found_ms >= template_ms && found_ms < template_ms + 30000);
    s_test_answer (&test, request, &job, CBUS_CODE_OK);
    cbus_request_destroy (&request);
    job = s_test_work (&test, 3, 0x33, 7, 0x2000ffff);
    request = s_test_next_request (&test, 5000);
    s_test_check_submission (&test, request, &job);
    cbus_request_destroy (&request);        //  Unanswered: it expires

    //  Searching work it cannot solve in time, the miner still stops at
    //  once: it never spends more than a slice away from its sockets.
    job = s_test_work (&test, 4, 0x44, 8, 0x1d00ffff);
    request = s_test_next_request (&test, 300);
    assert (request == NULL);
    //  Meanwhile its heartbeat says how fast it hashes.
    uint64_t rate = 0;
    zpoller_t *poller = zpoller_new (test.bus_in, NULL);
    assert (poller);
    for (int64_t until = cbus_mono_ms () + 5000; rate == 0 && cbus_mono_ms () < until; ) {
        if (zpoller_wait (poller, 100) != test.bus_in)
            continue;
        cbus_event_t *event = cbus_event_recv (test.bus_in);
        cbus_heartbeat_t beat;
        if (event && event->decoded && streq (event->topic, CBUS_TOPIC_HEARTBEAT)
        &&  cbus_heartbeat_decode (cbus_event_map (event), &beat, reason) == 0) {
            assert (beat.has_hash_rate);
            rate = beat.hash_rate;
        }
        cbus_event_destroy (&event);
    }
    zpoller_destroy (&poller);
    if (verbose)
        printf ("(hash rate %" PRIu64 "/s) ", rate);
    assert (rate > 0);
    int64_t start = cbus_mono_ms ();
    zactor_destroy (&miner);
    int64_t took = cbus_mono_ms () - start;
    if (verbose)
        printf ("(stopped while searching in %" PRId64 " ms) ", took);
    assert (took < 1000);

    zsock_destroy (&test.mempool);
    zsock_destroy (&test.store);
    zsock_destroy (&test.bus_in);
    cbus_tx_destroy (&test.txs [0]);
    cbus_tx_destroy (&test.txs [1]);
    cbus_buf_free (&test.event);
    cbus_config_destroy (&config);
    char *command = zsys_sprintf ("rm -rf %s", dir);
    assert (command && system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("OK\n");
}
