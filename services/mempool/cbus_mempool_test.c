/*  =========================================================================
    cbus_mempool_test - the mempool's self-test

    The actor runs in this process, on ipc endpoints in a temporary
    folder, against a stand-in chainstore (a ROUTER actor below that
    answers TIP, TX.KNOWN, HEADERS and BLOCK.GET from a few facts the test
    gives it, or stays silent). The real chainstore is another service and
    is not linked in. The test binds the bus's two ends itself, to watch
    the mempool's events and to send it chain events.

    Every body goes through its definition (cbus_msgs.h) both ways, and
    every kind of body the mempool sends (requests to the chainstore,
    replies, events) is checked byte for byte against the mempool's
    hand-written packing of before (cbus_mempool_test_wire.c). Only
    bodies malformed on purpose, and the events' envelope, are packed by
    hand.
    =========================================================================
*/
#include "cbus_mempool_private.h"

//  ---------------------------------------------------------------------
//  The stand-in chainstore

typedef struct {
    uint8_t hash [CBUS_HASH_BYTES];     //  Key
    cbus_buf_t bytes;                   //  Block bytes ("" for none)
    uint64_t height;
    uint64_t confirmations;             //  0: off the active chain
} s_block_t;

typedef struct {
    zsock_t *router;
    bool silent;                        //  Read requests, answer none
    char storage [128];                 //  TIP's storage ("": writable)
    char *storage_code;                 //  ... and its code (NULL: none)
    uint8_t tip [CBUS_HASH_BYTES];
    uint64_t tip_height;
    zhashx_t *confirmed;                //  txid -> s_block_t (unused fields)
    zhashx_t *blocks;                   //  hash -> s_block_t
    uint64_t known_asked;               //  TX.KNOWN requests answered
    bool known [CBUS_MEMPOOL_KNOWN_BATCH];  //  The last TX.KNOWN reply's list
    cbus_buf_t reply;
} s_stand_in_t;

static void
s_block_free (void **item_p)
{
    s_block_t *block = (s_block_t *) *item_p;
    if (block) {
        cbus_buf_free (&block->bytes);
        free (block);
        *item_p = NULL;
    }
}

static s_block_t *
s_block_new (const uint8_t hash [CBUS_HASH_BYTES])
{
    s_block_t *block = (s_block_t *) zmalloc (sizeof (s_block_t));
    memcpy (block->hash, hash, CBUS_HASH_BYTES);
    return block;
}

//  Answer a request as the chainstore would, through the definitions;
//  each request's bytes are first checked against the mempool's packing
//  of before. A request that does not fit its definition is a failure.
static void
s_stand_in_answer (s_stand_in_t *self, cbus_request_t *request)
{
    const msgpack_object *map = cbus_request_map (request);
    const char *command = request->command;
    char reason [CBUS_REASON_MAX];
    if (streq (command, CBUS_CMD_TIP)) {
        cbus_mempool_test_old_tip (request);
        uint8_t zero [CBUS_HASH_BYTES] = {0};
        cbus_tip_reply_t reply = {
            .height = self->tip_height, .hash = self->tip, .work = zero,
            .time_ms = 1000 + self->tip_height, .network = cbus_str ("test"),
            .genesis = zero, .bits = 0x2000ffff, .has_storage = *self->storage != 0,
            .storage = cbus_str (self->storage), .has_storage_code = self->storage_code != NULL,
            .storage_code = cbus_str (self->storage_code ? self->storage_code : "")
        };
        cbus_reply_send_msg (self->router, request, &cbus_tip_reply_def, &reply, &self->reply);
    }
    else
    if (streq (command, CBUS_CMD_TX_KNOWN)) {
        cbus_tx_known_t msg;
        assert (cbus_tx_known_decode (map, &msg, reason) == 0);
        cbus_mempool_test_old_tx_known (request, &msg);
        assert (msg.txids.count <= CBUS_MEMPOOL_KNOWN_BATCH);
        for (uint32_t index = 0; index < msg.txids.count; index++)
            self->known [index] = zhashx_lookup (self->confirmed,
                                                 cbus_list_hash (&msg.txids, index)) != NULL;
        cbus_tx_known_reply_t reply = {
            .known = { .count = msg.txids.count, .items = self->known }
        };
        cbus_reply_send_msg (self->router, request, &cbus_tx_known_reply_def, &reply,
                             &self->reply);
        self->known_asked++;
    }
    else
    if (streq (command, CBUS_CMD_HEADERS)) {
        //  Where the chains part: right after a block on the active chain,
        //  at height 1 (the genesis) for any other.
        cbus_headers_t msg;
        assert (cbus_headers_decode (map, &msg, reason) == 0);
        cbus_mempool_test_old_headers (request, &msg);
        s_block_t *block = (s_block_t *) zhashx_lookup (self->blocks,
                                                        cbus_list_hash (&msg.locator, 0));
        cbus_headers_reply_t reply = {
            .start = block && block->confirmations ? block->height + 1 : 1
        };
        cbus_reply_send_msg (self->router, request, &cbus_headers_reply_def, &reply,
                             &self->reply);
    }
    else
    if (streq (command, CBUS_CMD_BLOCK_GET)) {
        cbus_block_get_t msg;
        assert (cbus_block_get_decode (map, &msg, reason) == 0);
        cbus_mempool_test_old_block_get (request, &msg);
        s_block_t *block = (s_block_t *) zhashx_lookup (self->blocks, msg.hash);
        if (!block) {
            cbus_reply_refuse (self->router, request, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND,
                               "Block not found");
            return;
        }
        cbus_block_get_reply_t reply = {
            .block = { (const uint8_t *) block->bytes.data, block->bytes.size },
            .height = block->height, .hash = block->hash, .confirmations = block->confirmations
        };
        cbus_reply_send_msg (self->router, request, &cbus_block_get_reply_def, &reply,
                             &self->reply);
    }
    else
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_UNKNOWN_COMMAND,
                           "Unknown command %s", command);
}

//  Pipe commands, each answered with a signal (COUNT with a number):
//  SILENT, TALK, TIP hash height, CONFIRM txid, BLOCK hash bytes height
//  confirmations, STORAGE why [code], COUNT (TX.KNOWN requests answered
//  so far).
static bool
s_stand_in_command (s_stand_in_t *self, zsock_t *pipe)
{
    zmsg_t *msg = zmsg_recv (pipe);
    char *command = msg ? zmsg_popstr (msg) : NULL;
    bool more = command && !streq (command, "$TERM");
    if (!more)
        ;
    else
    if (streq (command, "COUNT"))
        zstr_sendf (pipe, "%" PRIu64, self->known_asked);
    else {
        zframe_t *first = zmsg_pop (msg);
        if (streq (command, "SILENT") || streq (command, "TALK"))
            self->silent = streq (command, "SILENT");
        else
        if (streq (command, "TIP")) {
            memcpy (self->tip, zframe_data (first), CBUS_HASH_BYTES);
            char *height = zmsg_popstr (msg);
            self->tip_height = strtoull (height, NULL, 10);
            zstr_free (&height);
        }
        else
        if (streq (command, "STORAGE")) {
            snprintf (self->storage, sizeof (self->storage), "%.*s", (int) zframe_size (first),
                      (const char *) zframe_data (first));
            zstr_free (&self->storage_code);
            self->storage_code = zmsg_popstr (msg);
        }
        else
        if (streq (command, "CONFIRM")) {
            if (!zhashx_lookup (self->confirmed, zframe_data (first))) {
                s_block_t *item = s_block_new (zframe_data (first));
                zhashx_insert (self->confirmed, item->hash, item);
            }
        }
        else
        if (streq (command, "BLOCK")) {
            //  Changed in place when known: the table borrows its keys.
            s_block_t *block = (s_block_t *) zhashx_lookup (self->blocks, zframe_data (first));
            if (!block) {
                block = s_block_new (zframe_data (first));
                zhashx_insert (self->blocks, block->hash, block);
            }
            zframe_t *bytes = zmsg_pop (msg);
            cbus_buf_reset (&block->bytes);
            cbus_buf_append (&block->bytes, zframe_data (bytes), zframe_size (bytes));
            zframe_destroy (&bytes);
            char *height = zmsg_popstr (msg), *confirmations = zmsg_popstr (msg);
            block->height = strtoull (height, NULL, 10);
            block->confirmations = strtoull (confirmations, NULL, 10);
            zstr_free (&height);
            zstr_free (&confirmations);
        }
        zframe_destroy (&first);
        zsock_signal (pipe, 0);
    }
    zstr_free (&command);
    zmsg_destroy (&msg);
    return more;
}

static void
s_stand_in_actor (zsock_t *pipe, void *args)
{
    s_stand_in_t self = { .router = zsock_new_router ((const char *) args) };
    assert (self.router);
    self.confirmed = cbus_hash_table_new ();
    zhashx_set_destructor (self.confirmed, s_block_free);
    self.blocks = cbus_hash_table_new ();
    zhashx_set_destructor (self.blocks, s_block_free);
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, self.router, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            if (!s_stand_in_command (&self, pipe))
                break;
        }
        else
        if (which == self.router) {
            cbus_request_t *request = cbus_request_recv (self.router);
            if (request && !self.silent)
                s_stand_in_answer (&self, request);
            cbus_request_destroy (&request);
        }
        else
            break;
    }
    zpoller_destroy (&poller);
    zhashx_destroy (&self.confirmed);
    zhashx_destroy (&self.blocks);
    cbus_buf_free (&self.reply);
    zstr_free (&self.storage_code);
    zsock_destroy (&self.router);
}

//  ---------------------------------------------------------------------
//  Helpers

//  A transaction with data n; signed by key when key is set, with a
//  spoiled signature when forged.
static cbus_tx_t *
s_test_tx (int n, cbus_key_t *key, bool forged)
{
    char reason [CBUS_REASON_MAX];
    char *text = zsys_sprintf ("{\"users\": \"mp\", \"data\": %d, \"dh_parameters\": \"\","
        " \"server_public_key\": \"\", \"receiver_public_key\": \"\", \"sender_public_key\": \"%s\","
        " \"timestamp\": 5000}", n, key ? cbus_key_public_hex (key) : "");
    json_t *object = cbus_json_parse (text, strlen (text), reason);
    cbus_tx_t *tx = cbus_tx_new_from_json (object, 0, reason);
    assert (tx);
    if (key) {
        size_t size;
        const uint8_t *bytes = cbus_tx_signed_bytes (tx, &size);
        uint8_t signature [CBUS_SIG_BYTES];
        cbus_key_sign (key, bytes, size, signature);
        signature [3] ^= forged;
        char hex [2 * CBUS_SIG_BYTES + 1];
        cbus_hex_encode (signature, CBUS_SIG_BYTES, hex);
        json_object_set_new (object, "signature", json_string (hex));
        cbus_tx_destroy (&tx);
        tx = cbus_tx_new_from_json (object, 0, reason);
        assert (tx && cbus_tx_is_signed (tx));
    }
    json_decref (object);
    zstr_free (&text);
    return tx;
}

//  The TX.SUBMIT body of a transaction.
static void
s_submit_body (cbus_buf_t *buf, cbus_tx_t *tx)
{
    cbus_tx_submit_t msg;
    msg.tx.data = cbus_tx_bytes (tx, &msg.tx.size);
    cbus_tx_submit_encode (&msg, buf);
}

//  The TX.GET body for a txid.
static void
s_tx_get_body (cbus_buf_t *buf, const uint8_t txid [CBUS_HASH_BYTES])
{
    cbus_pool_tx_get_t msg = { .txid = txid };
    cbus_pool_tx_get_encode (&msg, buf);
}

//  Send count submissions at once on one DEALER (ids 1..count), then
//  gather every reply into replies [id - 1]. Asserts that all came.
static void
s_submit_many (zsock_t *dealer, cbus_tx_t **txs, size_t count, cbus_reply_t **replies)
{
    cbus_buf_t body = {0};
    for (size_t index = 0; index < count; index++) {
        s_submit_body (&body, txs [index]);
        assert (cbus_request_send (dealer, CBUS_CMD_TX_SUBMIT, index + 1, body.data, body.size) == 0);
        replies [index] = NULL;
    }
    cbus_buf_free (&body);
    zpoller_t *poller = zpoller_new (dealer, NULL);
    for (size_t got = 0; got < count; ) {
        assert (zpoller_wait (poller, 10000) == dealer);
        cbus_reply_t *reply = cbus_reply_recv (dealer);
        assert (reply && reply->request_id >= 1 && reply->request_id <= count);
        assert (!replies [reply->request_id - 1]);
        replies [reply->request_id - 1] = reply;
        got++;
    }
    zpoller_destroy (&poller);
}

//  An OK TX.SUBMIT reply, decoded (borrowing from it), its bytes those
//  of before.
static cbus_tx_submit_reply_t
s_submitted (cbus_reply_t *reply)
{
    cbus_tx_submit_reply_t msg;
    char reason [CBUS_REASON_MAX];
    assert (cbus_reply_ok (reply));
    assert (cbus_tx_submit_reply_decode (cbus_reply_map (reply), &msg, reason) == 0);
    cbus_mempool_test_old_tx_submit_reply (reply, &msg);
    return msg;
}

//  An OK TX.GET reply, decoded, its bytes those of before.
static cbus_pool_tx_reply_t
s_got (cbus_reply_t *reply)
{
    cbus_pool_tx_reply_t msg;
    char reason [CBUS_REASON_MAX];
    assert (cbus_reply_ok (reply));
    assert (cbus_pool_tx_reply_decode (cbus_reply_map (reply), &msg, reason) == 0);
    cbus_mempool_test_old_tx_get_reply (reply, &msg);
    return msg;
}

static cbus_reply_t *
s_ask (cbus_client_t *client, const char *command, cbus_buf_t *body)
{
    return cbus_client_request (client, command, body ? body->data : NULL,
                                body ? body->size : 0, 10000);
}

static uint64_t
s_pending (cbus_client_t *client, uint64_t *next_height)
{
    cbus_reply_t *reply = s_ask (client, CBUS_CMD_MEMPOOL_INFO, NULL);
    if (!cbus_reply_ok (reply))
        fprintf (stderr, "MEMPOOL.INFO: %s %s\n", reply->status, reply->reason);
    assert (cbus_reply_ok (reply));
    cbus_mempool_info_reply_t msg;
    char reason [CBUS_REASON_MAX];
    assert (cbus_mempool_info_reply_decode (cbus_reply_map (reply), &msg, reason) == 0);
    cbus_mempool_test_old_info_reply (reply, &msg);
    if (next_height)
        *next_height = msg.next_height;
    cbus_reply_destroy (&reply);
    return msg.size;
}

//  Wait until the mempool knows the stand-in's tip (next_height).
static void
s_wait_tip (cbus_client_t *client, uint64_t next_height)
{
    int64_t deadline = cbus_mono_ms () + 10000;
    uint64_t next = 0;
    while (s_pending (client, &next), next != next_height) {
        assert (cbus_mono_ms () < deadline);
        zclock_sleep (20);
    }
}

static void
s_stats (zactor_t *mempool, uint64_t *writes, uint64_t *checks, uint64_t *pauses)
{
    uint64_t pending;
    zstr_send (mempool, "STATS");
    assert (zsock_recv (mempool, "8888", writes, checks, pauses, &pending) == 0);
}

static void
s_stand_in_send (zactor_t *stand_in, const char *command, const void *data, size_t size,
                 const char *more, const char *last)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, command);
    if (data)
        zmsg_addmem (msg, data, size);
    if (more)
        zmsg_addstr (msg, more);
    if (last)
        zmsg_addstr (msg, last);
    zmsg_send (&msg, stand_in);
    zsock_wait (stand_in);
}

//  Tell the stand-in about a block: its hash, bytes, height and
//  confirmations (0: off the active chain).
static void
s_stand_in_block (zactor_t *stand_in, const uint8_t hash [CBUS_HASH_BYTES], cbus_buf_t *bytes,
                  const char *height, const char *confirmations)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "BLOCK");
    zmsg_addmem (msg, hash, CBUS_HASH_BYTES);
    zmsg_addmem (msg, bytes->data, bytes->size);
    zmsg_addstr (msg, height);
    zmsg_addstr (msg, confirmations);
    zmsg_send (&msg, stand_in);
    zsock_wait (stand_in);
}

//  A block at height with these transactions (taken) on prev; its bytes
//  into bytes and its hash into hash.
static void
s_test_block (uint64_t height, const uint8_t prev [CBUS_HASH_BYTES], cbus_tx_t **txs,
              size_t count, cbus_buf_t *bytes, uint8_t hash [CBUS_HASH_BYTES])
{
    cbus_header_t header = { .version = CBUS_BLOCK_VERSION, .height = height,
                             .time_ms = 1000 + height, .bits = 0x2000ffff };
    memcpy (header.prev_hash, prev, CBUS_HASH_BYTES);
    cbus_block_t *block = cbus_block_new (&header);
    for (size_t index = 0; index < count; index++)
        cbus_block_add_tx (block, &txs [index]);
    cbus_block_merkle (block, cbus_block_header (block)->merkle_root);
    cbus_block_hash (block, hash);
    cbus_buf_reset (bytes);
    cbus_block_encode (block, bytes);
    cbus_block_destroy (&block);
}

//  Publish a chain.block.connected or .disconnected event as the
//  chainstore would (the envelope, then the definition's fields).
static void
s_publish_block (zsock_t *bus_out, const char *topic, const cbus_header_t *header,
                 const uint8_t hash [CBUS_HASH_BYTES], cbus_tx_t **txs, size_t count)
{
    uint8_t work [CBUS_HASH_BYTES] = {0};
    cbus_block_connected_t connected = {
        .hash = hash, .height = header->height, .prev_hash = header->prev_hash,
        .merkle_root = header->merkle_root, .time_ms = header->time_ms, .work = work,
        .txids = { .count = (uint32_t) count, .item = cbus_mempool_tx_id_item, .source = txs }
    };
    //  One table row gives both events their fields: the same struct.
    cbus_block_disconnected_t disconnected;
    _Static_assert (sizeof (disconnected) == sizeof (connected), "one row, one layout");
    memcpy (&disconnected, &connected, sizeof (connected));
    bool is_connected = streq (topic, CBUS_TOPIC_BLOCK_CONNECTED);
    const cbus_msgdef_t *def = is_connected ? &cbus_block_connected_def
                                            : &cbus_block_disconnected_def;
    const void *msg = is_connected ? (const void *) &connected : (const void *) &disconnected;
    cbus_buf_t body = {0};
    msgpack_packer pk = cbus_packer_begin (&body, 2 + cbus_msgdef_count (def, msg));
    cbus_pack_kv_str (&pk, "src", "chainstore");
    cbus_pack_kv_u64 (&pk, "boot", 1);
    cbus_msgdef_pack (def, msg, &pk);
    uint8_t sequence [8] = { 1 };
    zmsg_t *frames = zmsg_new ();
    zmsg_addstr (frames, cbus_msgdef_wire (def));
    zmsg_addmem (frames, body.data, body.size);
    zmsg_addmem (frames, sequence, sizeof (sequence));
    zmsg_send (&frames, bus_out);
    cbus_buf_free (&body);
}

//  ---------------------------------------------------------------------
//  The test, in parts sharing one mempool, one stand-in and one folder

typedef struct {
    bool verbose;               //  Print figures
    char dir [64];              //  Temporary data folder
    cbus_config_t *config;
    zactor_t *stand_in;
    zactor_t *mempool;
    cbus_client_t *client;      //  One request at a time
    zsock_t *dealer;            //  Many in flight
    zsock_t *bus_in;            //  Where the mempool publishes (we bind it)
    zsock_t *bus_out;           //  Where it subscribes (we bind it)
    uint8_t parent [CBUS_HASH_BYTES];   //  Block at height 4 (active)
    uint8_t tip [CBUS_HASH_BYTES];      //  Block at height 5, our first tip
    cbus_tx_t *in_tip;          //  A transaction of the tip block
    cbus_buf_t tip_bytes;       //  The tip block
    uint8_t mined [CBUS_HASH_BYTES];    //  The block mined by s_test_mine
    cbus_buf_t mined_bytes;     //  ... its bytes
    size_t mined_count;         //  ... its transactions
} s_test_t;

//  Start the mempool and wait until it answers PING. After a restart in
//  this process a first request can be lost: libzmq closes the stopped
//  mempool's listener asynchronously, and a connection made meanwhile
//  reaches it. So PING is asked again until answered, and the DEALER
//  for requests in flight connects only then.
static void
s_test_start_mempool (s_test_t *test)
{
    test->mempool = zactor_new (cbus_mempool_actor, test->config);
    assert (test->mempool);
    char *endpoint = cbus_config_endpoint (test->config, "mempool");
    test->client = cbus_client_new (endpoint);
    assert (test->client);
    int64_t deadline = cbus_mono_ms () + 10000;
    while (true) {
        cbus_reply_t *reply = cbus_client_request (test->client, CBUS_CMD_PING, NULL, 0, 250);
        bool up = cbus_reply_ok (reply);
        cbus_reply_destroy (&reply);
        if (up)
            break;
        assert (cbus_mono_ms () < deadline);
    }
    test->dealer = zsock_new_dealer (endpoint);
    assert (test->dealer);
    zstr_free (&endpoint);
}

//  Stop the mempool, and wait until libzmq's I/O thread has closed its
//  listener, which removes the ipc file: a restart binding the same path
//  before that would see its file removed under it.
static void
s_test_stop_mempool (s_test_t *test)
{
    cbus_client_destroy (&test->client);
    zsock_destroy (&test->dealer);
    zactor_destroy (&test->mempool);
}

//  The next event on topic from the bus (others are skipped), or NULL
//  after 5 s.
static cbus_event_t *
s_next_event (s_test_t *test, const char *topic)
{
    zpoller_t *poller = zpoller_new (test->bus_in, NULL);
    int64_t deadline = cbus_mono_ms () + 5000;
    cbus_event_t *event = NULL;
    while (!event && cbus_mono_ms () < deadline
       &&  zpoller_wait (poller, (int) (deadline - cbus_mono_ms ())) == test->bus_in) {
        event = cbus_event_recv (test->bus_in);
        if (event && !streq (event->topic, topic))
            cbus_event_destroy (&event);
    }
    zpoller_destroy (&poller);
    return event;
}

//  Every one of the count transactions (all new) was announced once, as
//  mempool.tx.added with its bytes and users, in the bytes of before.
static void
s_test_added (s_test_t *test, cbus_tx_t **txs, size_t count)
{
    bool seen [64] = { false };
    assert (count <= 64);
    char reason [CBUS_REASON_MAX];
    for (size_t got = 0; got < count; got++) {
        cbus_event_t *event = s_next_event (test, CBUS_TOPIC_TX_ADDED);
        assert (event);
        cbus_tx_added_t msg;
        assert (cbus_tx_added_decode (cbus_event_map (event), &msg, reason) == 0);
        //  Durable, so in the pool: its arrival time rides along.
        assert (msg.has_received_ms && msg.received_ms > 0);
        cbus_mempool_test_old_tx_added (event, &msg);
        size_t index = 0;
        while (index < count && memcmp (cbus_tx_id (txs [index]), msg.txid, CBUS_HASH_BYTES))
            index++;
        assert (index < count && !seen [index]);
        seen [index] = true;
        size_t size;
        const uint8_t *bytes = cbus_tx_bytes (txs [index], &size);
        assert (msg.size == size && msg.tx.size == size && memcmp (msg.tx.data, bytes, size) == 0);
        assert (msg.users.count == cbus_tx_user_count (txs [index]) && msg.users.count > 0);
        for (uint32_t user = 0; user < msg.users.count; user++)
            assert (cbus_str_eq (cbus_list_str (&msg.users, user),
                                 cbus_tx_user (txs [index], user)));
        cbus_event_destroy (&event);
    }
}

//  Several submissions in flight: all acknowledged once durable, each
//  stored once, the one sent twice answered as a duplicate once, in few
//  writes, with one TX.KNOWN per write at most.
static void
s_test_group_commit (s_test_t *test)
{
    enum { COUNT = 21 };
    cbus_tx_t *txs [COUNT];
    for (int index = 0; index < COUNT - 1; index++)
        txs [index] = s_test_tx (index, NULL, false);
    txs [COUNT - 1] = txs [0];
    //  Our bound SUB takes the mempool's connection (and sends it the
    //  subscription) only when this thread uses the socket: until then
    //  the mempool's events are dropped. A heartbeat says it is in place.
    cbus_event_t *beat = s_next_event (test, CBUS_TOPIC_HEARTBEAT);
    assert (beat);
    cbus_event_destroy (&beat);
    cbus_reply_t *replies [COUNT];
    s_submit_many (test->dealer, txs, COUNT, replies);
    int duplicates = 0;
    for (int index = 0; index < COUNT; index++) {
        assert (streq (replies [index]->status, CBUS_STATUS_OK));
        cbus_tx_submit_reply_t msg = s_submitted (replies [index]);
        assert (!msg.confirmed && msg.height == 6);
        assert (memcmp (msg.txid, cbus_tx_id (txs [index]), CBUS_HASH_BYTES) == 0);
        assert (!msg.duplicate || index == 0 || index == COUNT - 1);
        duplicates += msg.duplicate;
        cbus_reply_destroy (&replies [index]);
    }
    assert (duplicates == 1);
    s_test_added (test, txs, COUNT - 1);
    assert (s_pending (test->client, NULL) == COUNT - 1);
    uint64_t writes, checks, pauses;
    s_stats (test->mempool, &writes, &checks, &pauses);
    if (test->verbose)
        printf ("group commit: %d submissions, writes=%" PRIu64 " checks=%" PRIu64 "\n",
                COUNT, writes, checks);
    assert (writes >= 1 && writes < COUNT - 1);
    assert (checks <= writes + 1);
    //  TX.GET gives a pending transaction back.
    cbus_buf_t body = {0};
    s_tx_get_body (&body, cbus_tx_id (txs [5]));
    cbus_reply_t *reply = s_ask (test->client, CBUS_CMD_TX_GET, &body);
    cbus_pool_tx_reply_t got = s_got (reply);
    size_t size;
    const uint8_t *bytes = cbus_tx_bytes (txs [5], &size);
    assert (got.tx.size == size && memcmp (got.tx.data, bytes, size) == 0);
    assert (got.received_ms > 0);
    cbus_reply_destroy (&reply);
    cbus_buf_free (&body);
    for (int index = 0; index < COUNT - 1; index++)
        cbus_tx_destroy (&txs [index]);
}

//  With batch_max 2 the intake keeps pausing; everything is answered
//  and stored once all the same.
static void
s_test_back_pressure (s_test_t *test)
{
    enum { COUNT = 30 };
    cbus_tx_t *txs [COUNT];
    for (int index = 0; index < COUNT; index++)
        txs [index] = s_test_tx (100 + index, NULL, false);
    cbus_reply_t *replies [COUNT];
    s_submit_many (test->dealer, txs, COUNT, replies);
    for (int index = 0; index < COUNT; index++) {
        assert (streq (replies [index]->status, CBUS_STATUS_OK));
        assert (!s_submitted (replies [index]).duplicate);
        cbus_reply_destroy (&replies [index]);
        cbus_tx_destroy (&txs [index]);
    }
    assert (s_pending (test->client, NULL) == 20 + COUNT);
    uint64_t writes, checks, pauses;
    s_stats (test->mempool, &writes, &checks, &pauses);
    if (test->verbose)
        printf ("back-pressure: %d submissions, writes=%" PRIu64 " checks=%" PRIu64
                " pauses=%" PRIu64 "\n", COUNT, writes, checks, pauses);
    assert (pauses > 0);
    assert (writes >= COUNT / 2 && checks <= writes + 1);
}

//  Refusals, each with its code.
static void
s_test_refusals (s_test_t *test, cbus_key_t *key)
{
    cbus_buf_t body = {0};
    struct { const char *command; int kind; const char *status; cbus_code_t code; } cases [] = {
        { "NO.SUCH", 0, CBUS_STATUS_INVALID, CBUS_CODE_UNKNOWN_COMMAND },
        { CBUS_CMD_TX_SUBMIT, 1, CBUS_STATUS_INVALID, CBUS_CODE_MALFORMED },
        { CBUS_CMD_TX_SUBMIT, 0, CBUS_STATUS_INVALID, CBUS_CODE_INVALID },
        { CBUS_CMD_TX_SUBMIT, 2, CBUS_STATUS_INVALID, CBUS_CODE_BAD_TX },
        { CBUS_CMD_TX_SUBMIT, 3, CBUS_STATUS_INVALID, CBUS_CODE_BAD_SIGNATURE },
        { CBUS_CMD_TX_GET, 4, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND },
        { CBUS_CMD_TX_GET, 0, CBUS_STATUS_INVALID, CBUS_CODE_INVALID },
    };
    for (size_t index = 0; index < sizeof (cases) / sizeof (cases [0]); index++) {
        cbus_packer_begin (&body, 0);   //  {}: malformed on purpose
        if (cases [index].kind == 1) {
            cbus_buf_reset (&body);
            cbus_buf_append (&body, "\x91\x01", 2);         //  [1], not a map
        }
        else
        if (cases [index].kind == 2) {
            cbus_tx_submit_t junk = { .tx = { (const uint8_t *) "\x81\xa1x\x01", 4 } };
            cbus_tx_submit_encode (&junk, &body);
        }
        else
        if (cases [index].kind == 3) {
            cbus_tx_t *forged = s_test_tx (7, key, true);
            s_submit_body (&body, forged);
            cbus_tx_destroy (&forged);
        }
        else
        if (cases [index].kind == 4)
            s_tx_get_body (&body, test->tip);
        cbus_reply_t *reply = s_ask (test->client, cases [index].command, &body);
        assert (streq (reply->status, cases [index].status));
        assert (reply->code == cases [index].code);
        assert (*reply->reason);
        cbus_reply_destroy (&reply);
    }
    //  A sound signature goes in; a confirmed transaction is a duplicate
    //  and is not stored.
    cbus_tx_t *signed_tx = s_test_tx (7, key, false);
    s_submit_body (&body, signed_tx);
    cbus_reply_t *reply = s_ask (test->client, CBUS_CMD_TX_SUBMIT, &body);
    assert (!s_submitted (reply).duplicate);
    cbus_reply_destroy (&reply);
    cbus_tx_destroy (&signed_tx);
    uint64_t before = s_pending (test->client, NULL);
    cbus_tx_t *confirmed = s_test_tx (999, NULL, false);
    s_stand_in_send (test->stand_in, "CONFIRM", cbus_tx_id (confirmed), CBUS_HASH_BYTES, NULL, NULL);
    s_submit_body (&body, confirmed);
    reply = s_ask (test->client, CBUS_CMD_TX_SUBMIT, &body);
    assert (s_submitted (reply).duplicate && s_submitted (reply).confirmed);
    cbus_reply_destroy (&reply);
    cbus_tx_destroy (&confirmed);
    assert (s_pending (test->client, NULL) == before);
    cbus_buf_free (&body);
}

//  MINE: the template goes out as miner.work; the block connecting with
//  its merkle root answers the request and empties the pool of what it
//  holds. With no block, MINE is answered UNAVAILABLE (unavailable).
static void
s_test_mine (s_test_t *test)
{
    uint64_t before = s_pending (test->client, NULL);
    int64_t start = cbus_mono_ms ();
    cbus_reply_t *reply = s_ask (test->client, CBUS_CMD_MINE, NULL);
    assert (streq (reply->status, CBUS_STATUS_UNAVAILABLE) && reply->code == CBUS_CODE_UNAVAILABLE);
    assert (cbus_mono_ms () - start < 5000);
    cbus_reply_destroy (&reply);

    //  Work published for a request in flight: solve it (by decree).
    //  Events of before (the first request's work) are dropped first.
    zclock_sleep (50);
    while (zsock_events (test->bus_in) & ZMQ_POLLIN) {
        cbus_event_t *event = cbus_event_recv (test->bus_in);
        cbus_event_destroy (&event);
    }
    assert (cbus_request_send (test->dealer, CBUS_CMD_MINE, 77, NULL, 0) == 0);
    cbus_event_t *event = s_next_event (test, CBUS_TOPIC_MINER_WORK);
    assert (event);
    cbus_miner_work_t work;
    char reason [CBUS_REASON_MAX];
    assert (cbus_miner_work_decode (cbus_event_map (event), &work, reason) == 0);
    cbus_mempool_test_old_work (event, &work);
    cbus_header_t header;
    assert (cbus_header_decode (&header, work.header, CBUS_HEADER_BYTES) == 0);
    assert (work.job > 0 && work.txs.count == before && before <= 64);
    cbus_tx_t *txs [64];
    size_t count;
    for (count = 0; count < before; count++) {
        cbus_bytes_t bytes = cbus_list_bytes (&work.txs, (uint32_t) count);
        txs [count] = cbus_tx_decode (bytes.data, bytes.size, reason);
        assert (txs [count]);
    }
    cbus_event_destroy (&event);
    assert (header.height == 6 && memcmp (header.prev_hash, test->tip, CBUS_HASH_BYTES) == 0);
    uint8_t removed [64][CBUS_HASH_BYTES];
    for (size_t index = 0; index < count; index++)
        memcpy (removed [index], cbus_tx_id (txs [index]), CBUS_HASH_BYTES);
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_header_hash (&header, hash);
    s_publish_block (test->bus_out, CBUS_TOPIC_BLOCK_CONNECTED, &header, hash, txs, count);
    zpoller_t *poller = zpoller_new (test->dealer, NULL);
    assert (zpoller_wait (poller, 5000) == test->dealer);
    zpoller_destroy (&poller);
    reply = cbus_reply_recv (test->dealer);
    assert (reply && reply->request_id == 77 && cbus_reply_ok (reply));
    cbus_mine_reply_t mined;
    assert (cbus_mine_reply_decode (cbus_reply_map (reply), &mined, reason) == 0);
    cbus_mempool_test_old_mine_reply (reply, &mined);
    assert (memcmp (mined.hash, hash, CBUS_HASH_BYTES) == 0 && mined.height == 6);
    cbus_reply_destroy (&reply);
    //  Each of the block's transactions left the pool: mempool.tx.removed.
    for (size_t got = 0; got < count; got++) {
        event = s_next_event (test, CBUS_TOPIC_TX_REMOVED);
        assert (event);
        cbus_tx_removed_t msg;
        assert (cbus_tx_removed_decode (cbus_event_map (event), &msg, reason) == 0);
        cbus_mempool_test_old_tx_removed (event, &msg);
        assert (memcmp (msg.txid, removed [got], CBUS_HASH_BYTES) == 0);
        cbus_event_destroy (&event);
    }
    uint64_t next_height;
    assert (s_pending (test->client, &next_height) == 0 && next_height == 7);
    //  The stand-in moves on too (the events told the mempool first).
    cbus_block_t *block = cbus_block_new (&header);
    for (size_t index = 0; index < count; index++)
        cbus_block_add_tx (block, &txs [index]);
    cbus_block_encode (block, &test->mined_bytes);
    cbus_block_hash (block, test->mined);
    assert (memcmp (test->mined, hash, CBUS_HASH_BYTES) == 0);
    cbus_block_destroy (&block);
    test->mined_count = count;
    s_stand_in_block (test->stand_in, hash, &test->mined_bytes, "6", "1");
    s_stand_in_send (test->stand_in, "TIP", hash, CBUS_HASH_BYTES, "6", NULL);
}

//  The chainstore silent: the loop still answers at once, and a
//  submission is refused UNAVAILABLE (unavailable) within its time;
//  once it talks again, the same submission goes in.
static void
s_test_silent_chainstore (s_test_t *test)
{
    uint64_t before = s_pending (test->client, NULL);
    s_stand_in_send (test->stand_in, "SILENT", NULL, 0, NULL, NULL);
    cbus_tx_t *tx = s_test_tx (4242, NULL, false);
    cbus_buf_t body = {0};
    s_submit_body (&body, tx);
    int64_t start = cbus_mono_ms ();
    assert (cbus_request_send (test->dealer, CBUS_CMD_TX_SUBMIT, 1, body.data, body.size) == 0);
    zclock_sleep (100);             //  Its TX.KNOWN is out by now
    for (int round = 0; round < 3; round++) {
        int64_t asked = cbus_mono_ms ();
        cbus_reply_t *reply = s_ask (test->client, round == 1 ? CBUS_CMD_MEMPOOL_INFO
                                                              : CBUS_CMD_PING, NULL);
        assert (cbus_reply_ok (reply));
        assert (cbus_mono_ms () - asked < 500);
        cbus_reply_destroy (&reply);
    }
    zpoller_t *poller = zpoller_new (test->dealer, NULL);
    assert (zpoller_wait (poller, 5000) == test->dealer);
    zpoller_destroy (&poller);
    cbus_reply_t *reply = cbus_reply_recv (test->dealer);
    int64_t took = cbus_mono_ms () - start;
    assert (reply && streq (reply->status, CBUS_STATUS_UNAVAILABLE));
    assert (reply->code == CBUS_CODE_UNAVAILABLE && strstr (reply->reason, "chainstore"));
    assert (took >= CBUS_MEMPOOL_KNOWN_MIN_MS && took < CBUS_MEMPOOL_CHAINSTORE_MS + 1000);
    cbus_reply_destroy (&reply);
    assert (s_pending (test->client, NULL) == before);

    s_stand_in_send (test->stand_in, "TALK", NULL, 0, NULL, NULL);
    reply = s_ask (test->client, CBUS_CMD_TX_SUBMIT, &body);
    assert (!s_submitted (reply).duplicate);
    cbus_reply_destroy (&reply);
    assert (s_pending (test->client, NULL) == before + 1);
    cbus_buf_free (&body);
    cbus_tx_destroy (&tx);
}

//  While the mempool was down the chain left our tip (the block mined
//  above, at height 6) and its parent for another branch: at start the
//  mempool walks back to the active chain (BLOCK.GET, one at a time) and
//  takes back the transactions of both blocks.
static void
s_test_walk_back (s_test_t *test)
{
    uint64_t before = s_pending (test->client, NULL);
    assert (before == 0);
    s_test_stop_mempool (test);
    uint8_t other [CBUS_HASH_BYTES];
    memset (other, 0x66, sizeof (other));
    s_stand_in_block (test->stand_in, test->mined, &test->mined_bytes, "6", "0");
    s_stand_in_block (test->stand_in, test->tip, &test->tip_bytes, "5", "0");
    s_stand_in_send (test->stand_in, "TIP", other, CBUS_HASH_BYTES, "6", NULL);
    s_test_start_mempool (test);
    int64_t deadline = cbus_mono_ms () + 10000;
    while (s_pending (test->client, NULL) < test->mined_count + 1) {
        assert (cbus_mono_ms () < deadline);
        zclock_sleep (20);
    }
    assert (s_pending (test->client, NULL) == test->mined_count + 1);
    cbus_buf_t body = {0};
    s_tx_get_body (&body, cbus_tx_id (test->in_tip));
    cbus_reply_t *reply = s_ask (test->client, CBUS_CMD_TX_GET, &body);
    s_got (reply);
    cbus_reply_destroy (&reply);
    cbus_buf_free (&body);
}

//  A reorganisation as events: a block leaves the chain and another at
//  its height, holding the same transaction, joins it. The first's
//  transactions come back (BLOCK.GET) before the second's event removes
//  them: chain events wait while that call is out, so the transaction
//  ends confirmed, not pending.
static void
s_test_reorg (s_test_t *test)
{
    uint64_t before = s_pending (test->client, NULL);
    uint8_t other [CBUS_HASH_BYTES];
    memset (other, 0x66, sizeof (other));
    cbus_tx_t *moved = s_test_tx (777, NULL, false);
    size_t size;
    const uint8_t *tx_bytes = cbus_tx_bytes (moved, &size);
    char reason [CBUS_REASON_MAX];
    cbus_tx_t *txs [] = { cbus_tx_new_from_bytes (tx_bytes, size, reason) };
    cbus_buf_t bytes = {0};
    uint8_t left [CBUS_HASH_BYTES], joined [CBUS_HASH_BYTES];
    s_test_block (7, other, txs, 1, &bytes, left);
    s_stand_in_block (test->stand_in, left, &bytes, "7", "0");
    cbus_header_t header = { .version = CBUS_BLOCK_VERSION, .height = 7, .time_ms = 1007 };
    memcpy (header.prev_hash, other, CBUS_HASH_BYTES);
    memset (joined, 0x77, sizeof (joined));
    s_stand_in_block (test->stand_in, joined, &bytes, "7", "1");
    s_stand_in_send (test->stand_in, "TIP", joined, CBUS_HASH_BYTES, "7", NULL);
    s_publish_block (test->bus_out, CBUS_TOPIC_BLOCK_DISCONNECTED, &header, left, &moved, 1);
    s_publish_block (test->bus_out, CBUS_TOPIC_BLOCK_CONNECTED, &header, joined, &moved, 1);
    s_wait_tip (test->client, 8);
    assert (s_pending (test->client, NULL) == before);
    cbus_buf_t body = {0};
    s_tx_get_body (&body, cbus_tx_id (moved));
    cbus_reply_t *reply = s_ask (test->client, CBUS_CMD_TX_GET, &body);
    assert (streq (reply->status, CBUS_STATUS_NOTFOUND) && reply->code == CBUS_CODE_NOT_FOUND);
    cbus_reply_destroy (&reply);
    cbus_buf_free (&body);
    cbus_buf_free (&bytes);
    cbus_tx_destroy (&moved);
}

void
cbus_mempool_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_mempool: ");
    s_test_t test = { .verbose = verbose };
    snprintf (test.dir, sizeof (test.dir), "/tmp/cbus_mempool_test_XXXXXX");
    assert (mkdtemp (test.dir));
    char reason [CBUS_REASON_MAX];
    char *argv [] = { "selftest", "--data-dir", test.dir, "--mine-timeout", "300",
                      "--verbose", verbose ? "1" : "0" };
    test.config = cbus_config_new (sizeof (argv) / sizeof (argv [0]), argv, reason);
    assert (test.config && cbus_config_make_dirs (test.config, reason) == 0);
    //  The chain: a parent at height 4, the tip at 5 holding one
    //  transaction.
    memset (test.parent, 0x44, sizeof (test.parent));
    test.in_tip = s_test_tx (555, NULL, false);
    size_t size;
    const uint8_t *tx_bytes = cbus_tx_bytes (test.in_tip, &size);
    cbus_tx_t *txs [] = { cbus_tx_new_from_bytes (tx_bytes, size, reason) };
    s_test_block (5, test.parent, txs, 1, &test.tip_bytes, test.tip);

    char *endpoint = cbus_config_endpoint (test.config, "chainstore");
    test.stand_in = zactor_new (s_stand_in_actor, endpoint);
    zstr_free (&endpoint);
    s_stand_in_send (test.stand_in, "TIP", test.tip, CBUS_HASH_BYTES, "5", NULL);
    //  The parent's bytes do not matter: the walk back stops at it.
    s_stand_in_block (test.stand_in, test.parent, &test.tip_bytes, "4", "2");
    endpoint = cbus_config_endpoint (test.config, "bus-in");
    test.bus_in = zsock_new (ZMQ_SUB);
    zsock_set_subscribe (test.bus_in, "");
    assert (zsock_bind (test.bus_in, "%s", endpoint) == 0);
    zstr_free (&endpoint);
    endpoint = cbus_config_endpoint (test.config, "bus-out");
    test.bus_out = zsock_new (ZMQ_PUB);
    assert (zsock_bind (test.bus_out, "%s", endpoint) == 0);
    zstr_free (&endpoint);

    s_test_start_mempool (&test);
    s_wait_tip (test.client, 6);
    s_test_group_commit (&test);

    //  A restart loses nothing acknowledged; with batch_max 2, back-pressure.
    s_test_stop_mempool (&test);
    assert (cbus_config_set (test.config, "mempool/batch_max", "2", reason) == 0);
    s_test_start_mempool (&test);
    assert (s_pending (test.client, NULL) == 20);
    s_wait_tip (test.client, 6);
    s_test_back_pressure (&test);

    cbus_key_t *key = cbus_key_new ();
    s_test_refusals (&test, key);
    cbus_key_destroy (&key);
    s_test_silent_chainstore (&test);
    s_test_mine (&test);
    s_test_walk_back (&test);
    s_test_reorg (&test);
    cbus_mempool_test_chain_paused (test.client, test.bus_out, test.stand_in);
    s_test_stop_mempool (&test);
    assert (cbus_config_set (test.config, "miner/mode", "continuous", reason) == 0);
    assert (cbus_config_set (test.config, "miner/refresh_ms", "300", reason) == 0);
    s_test_start_mempool (&test);
    cbus_mempool_test_continuous (test.config, test.client, test.bus_in, test.bus_out,
                                  test.stand_in);
    s_test_stop_mempool (&test);
    assert (cbus_config_set (test.config, "mempool/block_max_txs", "1", reason) == 0);
    s_test_start_mempool (&test);
    cbus_mempool_test_full_template (test.config, test.client, test.bus_in);

    s_test_stop_mempool (&test);
    zsock_destroy (&test.bus_in);
    zsock_destroy (&test.bus_out);
    zactor_destroy (&test.stand_in);
    cbus_tx_destroy (&test.in_tip);
    cbus_buf_free (&test.tip_bytes);
    cbus_buf_free (&test.mined_bytes);
    cbus_config_destroy (&test.config);
    char *command = zsys_sprintf ("rm -rf %s", test.dir);
    assert (system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("OK\n");
}
