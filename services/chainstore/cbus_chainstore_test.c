/*  =========================================================================
    cbus_chainstore_test - the chainstore service tested in-process

    Malamute's mlm_server_test shape: the actor runs in this process on
    ipc endpoints in a temporary folder, with a real LevelDB there, and
    the test is its client over a real DEALER (cbus_client). Events are
    read on a SUB bound where the bus's XSUB would be (bus-in), so the
    test sees exactly what the chainstore publishes. Also the class's
    usage example.
    =========================================================================
*/
#include "cbus_chainstore.h"

typedef struct {
    char dir [64];              //  Temporary data directory
    cbus_config_t *config;      //  Its configuration
    zactor_t *store;            //  The service
    zsock_t *sub;               //  Bound at bus-in: chain events, heartbeats
    cbus_client_t *client;      //  Connected to the chainstore endpoint
    cbus_buf_t body;            //  Request body being packed
    uint64_t now;               //  Base of block times
    int serial;                 //  Makes every transaction new
} s_test_t;

//  The next event on topics other than node.heartbeat, or NULL when none
//  comes within timeout_ms.
static cbus_event_t *
s_test_event (s_test_t *test, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (test->sub, NULL);
    assert (poller);
    int64_t deadline = cbus_mono_ms () + timeout_ms;
    cbus_event_t *event = NULL;
    while (!event && cbus_mono_ms () < deadline) {
        if (zpoller_wait (poller, (int) (deadline - cbus_mono_ms ())) != test->sub)
            continue;
        event = cbus_event_recv (test->sub);
        if (event && streq (event->topic, CBUS_TOPIC_HEARTBEAT))
            cbus_event_destroy (&event);
    }
    zpoller_destroy (&poller);
    return event;
}

//  Wait for the chainstore's first heartbeat: its PUB has our
//  subscriptions then, so no chain event can be lost to a slow joiner.
static void
s_test_wait_heartbeat (s_test_t *test)
{
    zpoller_t *poller = zpoller_new (test->sub, NULL);
    assert (poller);
    int64_t deadline = cbus_mono_ms () + 5000;
    bool seen = false;
    while (!seen && cbus_mono_ms () < deadline) {
        if (zpoller_wait (poller, 100) != test->sub)
            continue;
        cbus_event_t *event = cbus_event_recv (test->sub);
        //  "src" is the envelope every event starts with, not a field of
        //  the heartbeat's definition.
        const char *source;
        size_t size;
        char reason [CBUS_REASON_MAX];
        cbus_heartbeat_t beat;
        seen = event && streq (event->topic, CBUS_TOPIC_HEARTBEAT)
            && cbus_heartbeat_decode (cbus_event_map (event), &beat, reason) == 0
            && beat.pid == (uint64_t) getpid ()
            && cbus_msg_get_str (cbus_event_map (event), "src", &source, &size) == 0
            && size == strlen ("chainstore") && memcmp (source, "chainstore", size) == 0;
        cbus_event_destroy (&event);
    }
    zpoller_destroy (&poller);
    assert (seen);
}

static void
s_test_start (s_test_t *test)
{
    //  Drop what a stopped instance left queued (heartbeats: a start that
    //  waited seconds for a lock leaves several), or the wait below takes
    //  a stale heartbeat for the new instance's first.
    zpoller_t *poller = zpoller_new (test->sub, NULL);
    assert (poller);
    while (zpoller_wait (poller, 50) == test->sub) {
        cbus_event_t *stale = cbus_event_recv (test->sub);
        cbus_event_destroy (&stale);
    }
    zpoller_destroy (&poller);
    test->store = zactor_new (cbus_chainstore_actor, test->config);
    assert (test->store);
    s_test_wait_heartbeat (test);
    char *endpoint = cbus_config_endpoint (test->config, "chainstore");
    test->client = cbus_client_new (endpoint);
    assert (test->client);
    zstr_free (&endpoint);
}

static void
s_test_stop (s_test_t *test)
{
    cbus_client_destroy (&test->client);
    zactor_destroy (&test->store);
}

//  Send test->body (NULL body when empty) and wait for the reply.
static cbus_reply_t *
s_test_call (s_test_t *test, const char *command)
{
    cbus_reply_t *reply = cbus_client_request (test->client, command,
                                               test->body.size ? test->body.data : NULL,
                                               test->body.size, 5000);
    cbus_buf_reset (&test->body);
    assert (reply);
    return reply;
}

//  A call that must be answered OK.
static cbus_reply_t *
s_test_call_ok (s_test_t *test, const char *command)
{
    cbus_reply_t *reply = s_test_call (test, command);
    if (!cbus_reply_ok (reply))
        printf ("%s: %s %s \"%s\"\n", command, reply->status, cbus_code_name (reply->code),
                reply->reason);
    assert (cbus_reply_ok (reply));
    return reply;
}

//  A call that must be refused with this status and code.
static void
s_test_refused (s_test_t *test, const char *command, const char *status, cbus_code_t code)
{
    cbus_reply_t *reply = s_test_call (test, command);
    if (!streq (reply->status, status) || reply->code != code)
        printf ("%s: %s %s \"%s\"\n", command, reply->status, cbus_code_name (reply->code),
                reply->reason);
    assert (streq (reply->status, status) && reply->code == code && *reply->reason);
    cbus_reply_destroy (&reply);
}

//  Decode an OK reply's body through its definition; must not fail.
#define S_TEST_DECODE(name, reply, msg) do { \
    char reason_ [CBUS_REASON_MAX]; \
    if (cbus_##name##_decode (cbus_reply_map (reply), (msg), reason_)) \
        printf ("%s\n", reason_); \
    assert (cbus_reply_map (reply) && cbus_##name##_decode (cbus_reply_map (reply), (msg), \
                                                            reason_) == 0); \
} while (0)

//  Item index of a list of hashes held as pointers (source).
static const void *
s_test_hash_item (const void *source, uint32_t index, size_t *size)
{
    *size = CBUS_HASH_BYTES;
    return ((const uint8_t *const *) source) [index];
}

//  A block at height on parent with count new transactions naming user,
//  its proof found (or, with bad_pow, a nonce whose hash misses it).
static cbus_block_t *
s_test_block (s_test_t *test, const uint8_t *parent, uint64_t height, int count,
              const char *user, uint32_t miner, bool bad_pow)
{
    cbus_header_t header = {
        .version = CBUS_BLOCK_VERSION, .height = height,
        .time_ms = test->now + (uint64_t) test->serial++, .bits = 0x2000ffff, .miner = miner
    };
    memcpy (header.prev_hash, parent, CBUS_HASH_BYTES);
    cbus_block_t *block = cbus_block_new (&header);
    assert (block);
    char reason [CBUS_REASON_MAX];
    for (int index = 0; index < count; index++) {
        char *text = zsys_sprintf ("{\"users\": \"%s\", \"data\": %d, \"dh_parameters\": \"\","
            " \"server_public_key\": \"\", \"receiver_public_key\": \"\", \"sender_public_key\": \"\"}",
            user, test->serial++);
        json_t *object = cbus_json_parse (text, strlen (text), reason);
        cbus_tx_t *tx = cbus_tx_new_from_json (object, 1000 + (uint64_t) test->serial, reason);
        assert (tx);
        cbus_block_add_tx (block, &tx);
        json_decref (object);
        zstr_free (&text);
    }
    cbus_header_t *head = cbus_block_header (block);
    cbus_block_merkle (block, head->merkle_root);
    if (bad_pow) {
        uint8_t hash [CBUS_HASH_BYTES];
        for (head->nonce = 0; ; head->nonce++) {
            cbus_block_hash (block, hash);
            if (!cbus_pow_check (hash, head->bits))
                break;
        }
    }
    else
        while (!cbus_header_search (head, 1000))
            ;
    return block;
}

//  --------------------------------------------------------------------------
//  Wire bytes: each body as the chainstore's hand-written packers wrote
//  it before the one definition per message, packed here from the values
//  the definition decoded; the body received must be those bytes exactly.

static void
s_test_same_bytes (zframe_t *body, cbus_buf_t *hand)
{
    assert (body && zframe_size (body) == hand->size);
    assert (memcmp (zframe_data (body), hand->data, hand->size) == 0);
    cbus_buf_free (hand);
}

static void
s_test_pack_bin (msgpack_packer *pk, const void *data, size_t size)
{
    msgpack_pack_bin (pk, size);
    msgpack_pack_bin_body (pk, data, size);
}

static void
s_test_old_hashes (msgpack_packer *pk, const char *key, const cbus_list_t *list)
{
    cbus_pack_str (pk, key);
    msgpack_pack_array (pk, list->count);
    for (uint32_t index = 0; index < list->count; index++)
        s_test_pack_bin (pk, cbus_list_hash (list, index), CBUS_HASH_BYTES);
}

static void
s_test_old_bins (msgpack_packer *pk, const char *key, const cbus_list_t *list)
{
    cbus_pack_str (pk, key);
    msgpack_pack_array (pk, list->count);
    for (uint32_t index = 0; index < list->count; index++) {
        cbus_bytes_t item = cbus_list_bytes (list, index);
        s_test_pack_bin (pk, item.data, item.size);
    }
}

static void
s_test_old_block_event (cbus_event_t *event, const cbus_block_connected_t *msg)
{
    uint64_t boot, topic_seq;
    assert (cbus_msg_get_u64 (cbus_event_map (event), "boot", &boot) == 0);
    assert (cbus_msg_get_u64 (cbus_event_map (event), "topic_seq", &topic_seq) == 0);
    cbus_buf_t hand = {0};
    //  The old fields, then next_bits (issue 10) at the end; the envelope
    //  has topic_seq after boot (issue 11).
    msgpack_packer pk = cbus_packer_begin (&hand, msg->has_next_bits ? 11 : 10);
    cbus_pack_kv_str (&pk, "src", "chainstore");
    cbus_pack_kv_u64 (&pk, "boot", boot);
    cbus_pack_kv_u64 (&pk, "topic_seq", topic_seq);
    cbus_pack_kv_bin (&pk, "hash", msg->hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "height", msg->height);
    cbus_pack_kv_bin (&pk, "prev_hash", msg->prev_hash, CBUS_HASH_BYTES);
    cbus_pack_kv_bin (&pk, "merkle_root", msg->merkle_root, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "time_ms", msg->time_ms);
    cbus_pack_kv_bin (&pk, "work", msg->work, CBUS_U256_BYTES);
    s_test_old_hashes (&pk, "txids", &msg->txids);
    if (msg->has_next_bits)
        cbus_pack_kv_u64 (&pk, "next_bits", msg->next_bits);
    s_test_same_bytes (event->body, &hand);
}

static void
s_test_old_tip_reply (cbus_reply_t *reply, const cbus_tip_reply_t *msg)
{
    cbus_buf_t hand = {0};
    //  The old fields, then next_bits and block_interval (issue 10).
    msgpack_packer pk = cbus_packer_begin (&hand, 9);
    cbus_pack_kv_u64 (&pk, "height", msg->height);
    cbus_pack_kv_bin (&pk, "hash", msg->hash, CBUS_HASH_BYTES);
    cbus_pack_kv_bin (&pk, "work", msg->work, CBUS_U256_BYTES);
    cbus_pack_kv_u64 (&pk, "time_ms", msg->time_ms);
    cbus_pack_kv_str (&pk, "network", "test");
    cbus_pack_kv_bin (&pk, "genesis", msg->genesis, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "bits", msg->bits);
    assert (msg->has_next_bits && msg->has_block_interval);
    cbus_pack_kv_u64 (&pk, "next_bits", msg->next_bits);
    cbus_pack_kv_u64 (&pk, "block_interval", msg->block_interval);
    s_test_same_bytes (reply->body, &hand);
}

static void
s_test_old_block_get_reply (cbus_reply_t *reply, const cbus_block_get_reply_t *msg)
{
    cbus_buf_t hand = {0};
    //  The old fields, then in_active_chain (issue 12).
    msgpack_packer pk = cbus_packer_begin (&hand, 5);
    cbus_pack_kv_bin (&pk, "block", msg->block.data, msg->block.size);
    cbus_pack_kv_u64 (&pk, "height", msg->height);
    cbus_pack_kv_bin (&pk, "hash", msg->hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "confirmations", msg->confirmations);
    cbus_pack_str (&pk, "in_active_chain");
    if (msg->in_active_chain)
        msgpack_pack_true (&pk);
    else
        msgpack_pack_false (&pk);
    s_test_same_bytes (reply->body, &hand);
}

static void
s_test_old_submit_reply (cbus_reply_t *reply, const cbus_block_submit_reply_t *msg,
                         const char *status)
{
    cbus_buf_t hand = {0};
    msgpack_packer pk = cbus_packer_begin (&hand, 3);
    cbus_pack_kv_bin (&pk, "hash", msg->hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "height", msg->height);
    cbus_pack_kv_str (&pk, "status", status);
    s_test_same_bytes (reply->body, &hand);
}

static void
s_test_old_headers_reply (cbus_reply_t *reply, const cbus_headers_reply_t *msg)
{
    cbus_buf_t hand = {0};
    msgpack_packer pk = cbus_packer_begin (&hand, 2);
    cbus_pack_kv_u64 (&pk, "start", msg->start);
    s_test_old_bins (&pk, "headers", &msg->headers);
    s_test_same_bytes (reply->body, &hand);
}

static void
s_test_old_page_reply (cbus_reply_t *reply, const cbus_chain_page_reply_t *msg)
{
    cbus_buf_t hand = {0};
    msgpack_packer pk = cbus_packer_begin (&hand, 2);
    s_test_old_bins (&pk, "blocks", &msg->blocks);
    cbus_pack_kv_u64 (&pk, "next", msg->next);
    s_test_same_bytes (reply->body, &hand);
}

static void
s_test_old_tx_reply (cbus_reply_t *reply, const cbus_chain_tx_reply_t *msg)
{
    cbus_buf_t hand = {0};
    msgpack_packer pk = cbus_packer_begin (&hand, 5);
    cbus_pack_kv_bin (&pk, "tx", msg->tx.data, msg->tx.size);
    cbus_pack_kv_bin (&pk, "block_hash", msg->block_hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "height", msg->height);
    cbus_pack_kv_u64 (&pk, "index", msg->index);
    cbus_pack_kv_u64 (&pk, "confirmations", msg->confirmations);
    s_test_same_bytes (reply->body, &hand);
}

static void
s_test_old_bools_reply (cbus_reply_t *reply, const char *key, const cbus_list_t *list)
{
    cbus_buf_t hand = {0};
    msgpack_packer pk = cbus_packer_begin (&hand, 1);
    cbus_pack_str (&pk, key);
    msgpack_pack_array (&pk, list->count);
    for (uint32_t index = 0; index < list->count; index++)
        if (cbus_list_bool (list, index))
            msgpack_pack_true (&pk);
        else
            msgpack_pack_false (&pk);
    s_test_same_bytes (reply->body, &hand);
}

static void
s_test_old_history_reply (cbus_reply_t *reply, const cbus_history_reply_t *msg)
{
    cbus_buf_t hand = {0};
    msgpack_packer pk = cbus_packer_begin (&hand, 2);
    cbus_pack_str (&pk, "items");
    msgpack_pack_array (&pk, msg->items.count);
    char reason [CBUS_REASON_MAX];
    for (uint32_t index = 0; index < msg->items.count; index++) {
        cbus_history_item_t item;
        assert (cbus_list_decode_map (&msg->items, index, &cbus_history_item_def, &item,
                                      reason) == 0);
        msgpack_pack_map (&pk, 6);
        cbus_pack_kv_bin (&pk, "txid", item.txid, CBUS_HASH_BYTES);
        cbus_pack_kv_u64 (&pk, "height", item.height);
        cbus_pack_kv_u64 (&pk, "index", item.index);
        cbus_pack_kv_bin (&pk, "block_hash", item.block_hash, CBUS_HASH_BYTES);
        cbus_pack_kv_u64 (&pk, "confirmations", item.confirmations);
        cbus_pack_kv_bin (&pk, "tx", item.tx.data, item.tx.size);
    }
    cbus_pack_str (&pk, "next");
    if (msg->has_next) {
        msgpack_pack_map (&pk, 2);
        cbus_pack_kv_u64 (&pk, "before_height", msg->next.before_height);
        cbus_pack_kv_u64 (&pk, "before_index", msg->next.before_index);
    }
    else
        msgpack_pack_nil (&pk);
    s_test_same_bytes (reply->body, &hand);
}

//  --------------------------------------------------------------------------
//  Calls and checks

//  Submit block bytes; returns the reply.
static cbus_reply_t *
s_test_submit_bytes (s_test_t *test, const void *data, size_t size)
{
    cbus_block_submit_t msg = { .block = { (const uint8_t *) data, size } };
    cbus_block_submit_encode (&msg, &test->body);
    return s_test_call (test, CBUS_CMD_BLOCK_SUBMIT);
}

//  Submit a block that must be accepted with this status ("connected",
//  "side", "duplicate"); its hash into hash.
static void
s_test_submit (s_test_t *test, cbus_block_t *block, const char *status,
               uint8_t hash [CBUS_HASH_BYTES])
{
    cbus_buf_t bytes = {0};
    cbus_block_encode (block, &bytes);
    cbus_reply_t *reply = s_test_submit_bytes (test, bytes.data, bytes.size);
    cbus_buf_free (&bytes);
    if (!cbus_reply_ok (reply))
        printf ("BLOCK.SUBMIT: %s \"%s\"\n", reply->status, reply->reason);
    assert (cbus_reply_ok (reply));
    cbus_block_submit_reply_t msg;
    S_TEST_DECODE (block_submit_reply, reply, &msg);
    assert (cbus_str_eq (msg.status, status));
    assert (msg.height == cbus_block_header (block)->height);
    memcpy (hash, msg.hash, CBUS_HASH_BYTES);
    uint8_t expected [CBUS_HASH_BYTES];
    cbus_block_hash (block, expected);
    assert (memcmp (hash, expected, CBUS_HASH_BYTES) == 0);
    s_test_old_submit_reply (reply, &msg, status);
    cbus_reply_destroy (&reply);
}

//  The next event must be topic for this block.
static void
s_test_expect_event (s_test_t *test, const char *topic, cbus_block_t *block)
{
    cbus_event_t *event = s_test_event (test, 3000);
    assert (event && event->decoded && streq (event->topic, topic));
    //  Both events have one field list, so one struct layout.
    cbus_block_connected_t msg;
    char reason [CBUS_REASON_MAX];
    if (streq (topic, CBUS_TOPIC_BLOCK_CONNECTED))
        assert (cbus_block_connected_decode (cbus_event_map (event), &msg, reason) == 0);
    else {
        cbus_block_disconnected_t left;
        _Static_assert (sizeof (left) == sizeof (msg), "one field list");
        assert (cbus_block_disconnected_decode (cbus_event_map (event), &left, reason) == 0);
        memcpy (&msg, &left, sizeof (msg));
    }
    uint8_t expected [CBUS_HASH_BYTES];
    cbus_block_hash (block, expected);
    assert (memcmp (msg.hash, expected, CBUS_HASH_BYTES) == 0);
    assert (msg.height == cbus_block_header (block)->height);
    assert (memcmp (msg.prev_hash, cbus_block_header (block)->prev_hash, CBUS_HASH_BYTES) == 0);
    assert (msg.txids.count == cbus_block_tx_count (block));
    for (uint32_t index = 0; index < msg.txids.count; index++)
        assert (memcmp (cbus_list_hash (&msg.txids, index),
                        cbus_tx_id (cbus_block_tx (block, index)), CBUS_HASH_BYTES) == 0);
    s_test_old_block_event (event, &msg);
    cbus_event_destroy (&event);
}

//  TIP must name this height and hash.
static void
s_test_tip (s_test_t *test, uint64_t height, const uint8_t *hash)
{
    cbus_reply_t *reply = s_test_call_ok (test, CBUS_CMD_TIP);
    cbus_tip_reply_t msg;
    S_TEST_DECODE (tip_reply, reply, &msg);
    assert (msg.height == height);
    assert (!hash || memcmp (msg.hash, hash, CBUS_HASH_BYTES) == 0);
    assert (msg.bits == 0x2000ffff && cbus_str_eq (msg.network, "test"));
    s_test_old_tip_reply (reply, &msg);
    cbus_reply_destroy (&reply);
}

//  BLOCK.GET by hash: the block must be there with these confirmations.
static void
s_test_block_get (s_test_t *test, const uint8_t *hash, uint64_t height, uint64_t confirmations)
{
    cbus_block_get_t get = { .hash = hash, .has_hash = true };
    cbus_block_get_encode (&get, &test->body);
    cbus_reply_t *reply = s_test_call_ok (test, CBUS_CMD_BLOCK_GET);
    cbus_block_get_reply_t msg;
    S_TEST_DECODE (block_get_reply, reply, &msg);
    cbus_header_t header;
    assert (msg.height == height && msg.confirmations == confirmations);
    assert (cbus_block_header_from_bytes (msg.block.data, msg.block.size, &header) == 0);
    assert (header.height == height);
    s_test_old_block_get_reply (reply, &msg);
    cbus_reply_destroy (&reply);
}

//  A list of count items (printed when not).
static void
s_test_count (const char *what, const cbus_list_t *list, uint32_t count)
{
    if (list->count != count)
        printf ("%s: %u items, not %u\n", what, list->count, count);
    assert (list->count == count);
}

//  The chain in the test: genesis, b1 (2 txs), b2 (1 tx) on the active
//  chain; then a side branch s2-s3 from b1 that takes over.
typedef struct {
    uint8_t genesis [CBUS_HASH_BYTES];
    uint8_t b1 [CBUS_HASH_BYTES], b2 [CBUS_HASH_BYTES];
    uint8_t s2 [CBUS_HASH_BYTES], s3 [CBUS_HASH_BYTES];
    cbus_block_t *block1;
    cbus_block_t *block2;
} s_test_chain_t;

//  BLOCK.GET by height: the hash of the active block there.
static void
s_test_hash_at (s_test_t *test, uint64_t height, uint8_t hash [CBUS_HASH_BYTES])
{
    cbus_block_get_t get = { .height = height, .has_height = true };
    cbus_block_get_encode (&get, &test->body);
    cbus_reply_t *reply = s_test_call_ok (test, CBUS_CMD_BLOCK_GET);
    cbus_block_get_reply_t msg;
    S_TEST_DECODE (block_get_reply, reply, &msg);
    assert (msg.height == height);
    memcpy (hash, msg.hash, CBUS_HASH_BYTES);
    cbus_reply_destroy (&reply);
}

static void
s_test_submit_and_events (s_test_t *test, s_test_chain_t *chain)
{
    cbus_reply_t *reply = s_test_call_ok (test, CBUS_CMD_PING);
    cbus_pong_t pong;
    S_TEST_DECODE (pong, reply, &pong);
    assert (cbus_str_eq (pong.role, "chainstore") && pong.pid == (uint64_t) getpid ());
    cbus_reply_destroy (&reply);
    s_test_tip (test, 0, NULL);
    s_test_hash_at (test, 0, chain->genesis);

    chain->block1 = s_test_block (test, chain->genesis, 1, 2, "alice", 1, false);
    s_test_submit (test, chain->block1, "connected", chain->b1);
    s_test_expect_event (test, CBUS_TOPIC_BLOCK_CONNECTED, chain->block1);
    chain->block2 = s_test_block (test, chain->b1, 2, 1, "alice", 1, false);
    s_test_submit (test, chain->block2, "connected", chain->b2);
    s_test_expect_event (test, CBUS_TOPIC_BLOCK_CONNECTED, chain->block2);
    s_test_tip (test, 2, chain->b2);
    //  The same block again: harmless, no event.
    uint8_t again [CBUS_HASH_BYTES];
    s_test_submit (test, chain->block2, "duplicate", again);
    assert (s_test_event (test, 100) == NULL);
}

//  LOCATOR, and HEADERS from a peer that has genesis only: b1 and b2's
//  headers.
static void
s_test_locator_and_headers (s_test_t *test, s_test_chain_t *chain)
{
    cbus_reply_t *reply = s_test_call_ok (test, CBUS_CMD_LOCATOR);
    cbus_locator_reply_t locator;
    S_TEST_DECODE (locator_reply, reply, &locator);
    s_test_count ("hashes", &locator.hashes, 3);
    assert (memcmp (cbus_list_hash (&locator.hashes, 0), chain->b2, CBUS_HASH_BYTES) == 0);
    assert (memcmp (cbus_list_hash (&locator.hashes, 2), chain->genesis, CBUS_HASH_BYTES) == 0);
    cbus_reply_destroy (&reply);

    cbus_headers_t headers = { .locator = { .count = 1, .items = chain->genesis } };
    cbus_headers_encode (&headers, &test->body);
    reply = s_test_call_ok (test, CBUS_CMD_HEADERS);
    cbus_headers_reply_t msg;
    S_TEST_DECODE (headers_reply, reply, &msg);
    assert (msg.start == 1);
    s_test_count ("headers", &msg.headers, 2);
    cbus_header_t header;
    cbus_bytes_t first = cbus_list_bytes (&msg.headers, 0);
    assert (cbus_header_decode (&header, first.data, first.size) == 0);
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_header_hash (&header, hash);
    assert (memcmp (hash, chain->b1, CBUS_HASH_BYTES) == 0);
    s_test_old_headers_reply (reply, &msg);
    cbus_reply_destroy (&reply);
    //  At most one header asked: one given.
    headers.max = 1;
    headers.has_max = true;
    cbus_headers_encode (&headers, &test->body);
    reply = s_test_call_ok (test, CBUS_CMD_HEADERS);
    S_TEST_DECODE (headers_reply, reply, &msg);
    s_test_count ("headers", &msg.headers, 1);
    cbus_reply_destroy (&reply);
    //  Malformed on purpose: packed by hand.
    msgpack_packer pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_str (&pk, "locator", "genesis");
    s_test_refused (test, CBUS_CMD_HEADERS, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);
}

static void
s_test_block_queries (s_test_t *test, s_test_chain_t *chain)
{
    s_test_block_get (test, chain->b1, 1, 2);
    s_test_block_get (test, chain->b2, 2, 1);
    cbus_block_get_t get = { .height = 9, .has_height = true };
    cbus_block_get_encode (&get, &test->body);
    s_test_refused (test, CBUS_CMD_BLOCK_GET, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND);
    uint8_t nowhere [CBUS_HASH_BYTES];
    memset (nowhere, 7, sizeof (nowhere));
    get = (cbus_block_get_t) { .hash = nowhere, .has_hash = true };
    cbus_block_get_encode (&get, &test->body);
    s_test_refused (test, CBUS_CMD_BLOCK_GET, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND);
    get = (cbus_block_get_t) {0};
    cbus_block_get_encode (&get, &test->body);
    s_test_refused (test, CBUS_CMD_BLOCK_GET, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);
    msgpack_packer pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_str (&pk, "hash", "b1");
    s_test_refused (test, CBUS_CMD_BLOCK_GET, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);
    s_test_locator_and_headers (test, chain);

    //  BLOCKS.HAVE, any branch; BLOCKS.GET stops at the first missing.
    const uint8_t *asked [] = { chain->b2, nowhere, chain->b1 };
    cbus_blocks_have_t have = { .hashes = { .count = 3, .item = s_test_hash_item, .source = asked } };
    cbus_blocks_have_encode (&have, &test->body);
    cbus_reply_t *reply = s_test_call_ok (test, CBUS_CMD_BLOCKS_HAVE);
    cbus_blocks_have_reply_t had;
    S_TEST_DECODE (blocks_have_reply, reply, &had);
    s_test_count ("have", &had.have, 3);
    assert (cbus_list_bool (&had.have, 0) && !cbus_list_bool (&had.have, 1));
    assert (cbus_list_bool (&had.have, 2));
    s_test_old_bools_reply (reply, "have", &had.have);
    cbus_reply_destroy (&reply);
    const uint8_t *wanted [] = { chain->b2, chain->b1, nowhere, chain->b1 };
    cbus_blocks_get_t get_blocks = {
        .hashes = { .count = 4, .item = s_test_hash_item, .source = wanted }
    };
    cbus_blocks_get_encode (&get_blocks, &test->body);
    reply = s_test_call_ok (test, CBUS_CMD_BLOCKS_GET);
    cbus_blocks_get_reply_t blocks;
    S_TEST_DECODE (blocks_get_reply, reply, &blocks);
    s_test_count ("blocks", &blocks.blocks, 2);
    cbus_bytes_t second = cbus_list_bytes (&blocks.blocks, 1);
    cbus_header_t header;
    assert (cbus_block_header_from_bytes (second.data, second.size, &header) == 0);
    assert (header.height == 1);
    cbus_reply_destroy (&reply);
    //  A byte budget of one byte: still one block.
    get_blocks.max_bytes = 1;
    get_blocks.has_max_bytes = true;
    cbus_blocks_get_encode (&get_blocks, &test->body);
    reply = s_test_call_ok (test, CBUS_CMD_BLOCKS_GET);
    S_TEST_DECODE (blocks_get_reply, reply, &blocks);
    s_test_count ("blocks", &blocks.blocks, 1);
    cbus_reply_destroy (&reply);
    pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_u64 (&pk, "hashes", 1);
    s_test_refused (test, CBUS_CMD_BLOCKS_GET, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);
}

//  CHAIN.PAGE from..to with max_bytes must give count blocks and next.
static void
s_test_page (s_test_t *test, uint64_t from, uint64_t to, uint64_t max_bytes,
             uint32_t count, uint64_t next)
{
    cbus_chain_page_t page = { .from = from, .to = to, .max_bytes = max_bytes };
    cbus_chain_page_encode (&page, &test->body);
    cbus_reply_t *reply = s_test_call_ok (test, CBUS_CMD_CHAIN_PAGE);
    cbus_chain_page_reply_t msg;
    S_TEST_DECODE (chain_page_reply, reply, &msg);
    s_test_count ("blocks", &msg.blocks, count);
    assert (msg.next == next);
    s_test_old_page_reply (reply, &msg);
    cbus_reply_destroy (&reply);
}

static void
s_test_page_and_tx_queries (s_test_t *test, s_test_chain_t *chain)
{
    s_test_page (test, 0, 9, 1 << 20, 3, 3);
    s_test_page (test, 1, 2, 1, 1, 2);          //  At least one block
    cbus_chain_page_t page = { .from = 5, .to = 9, .max_bytes = 1000 };
    cbus_chain_page_encode (&page, &test->body);
    s_test_refused (test, CBUS_CMD_CHAIN_PAGE, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND);
    page = (cbus_chain_page_t) { .from = 2, .to = 1, .max_bytes = 1000 };
    cbus_chain_page_encode (&page, &test->body);
    s_test_refused (test, CBUS_CMD_CHAIN_PAGE, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);

    //  TX.GET: block 1's second transaction.
    cbus_tx_t *tx = cbus_block_tx (chain->block1, 1);
    cbus_chain_tx_get_t get = { .txid = cbus_tx_id (tx) };
    cbus_chain_tx_get_encode (&get, &test->body);
    cbus_reply_t *reply = s_test_call_ok (test, CBUS_CMD_TX_GET);
    cbus_chain_tx_reply_t msg;
    S_TEST_DECODE (chain_tx_reply, reply, &msg);
    assert (msg.height == 1 && msg.index == 1 && msg.confirmations == 2);
    assert (memcmp (msg.block_hash, chain->b1, CBUS_HASH_BYTES) == 0);
    size_t expected_size;
    const uint8_t *expected = cbus_tx_bytes (tx, &expected_size);
    assert (msg.tx.size == expected_size && memcmp (msg.tx.data, expected, expected_size) == 0);
    s_test_old_tx_reply (reply, &msg);
    cbus_reply_destroy (&reply);
    get.txid = chain->b1;
    cbus_chain_tx_get_encode (&get, &test->body);
    s_test_refused (test, CBUS_CMD_TX_GET, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND);
    s_test_refused (test, CBUS_CMD_TX_GET, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);

    //  TX.KNOWN: which are in the active chain.
    const uint8_t *txids [] = { cbus_tx_id (cbus_block_tx (chain->block2, 0)), chain->b2 };
    cbus_tx_known_t known = { .txids = { .count = 2, .item = s_test_hash_item, .source = txids } };
    cbus_tx_known_encode (&known, &test->body);
    reply = s_test_call_ok (test, CBUS_CMD_TX_KNOWN);
    cbus_tx_known_reply_t answer;
    S_TEST_DECODE (tx_known_reply, reply, &answer);
    s_test_count ("known", &answer.known, 2);
    assert (cbus_list_bool (&answer.known, 0) && !cbus_list_bool (&answer.known, 1));
    s_test_old_bools_reply (reply, "known", &answer.known);
    cbus_reply_destroy (&reply);
    //  An item that is not a txid is refused, as its definition says
    //  (packed by hand: the definition cannot write it).
    msgpack_packer pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_str (&pk, "txids");
    msgpack_pack_array (&pk, 2);
    s_test_pack_bin (&pk, chain->b2, CBUS_HASH_BYTES);
    cbus_pack_str (&pk, "junk");
    s_test_refused (test, CBUS_CMD_TX_KNOWN, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);
    s_test_refused (test, CBUS_CMD_TX_KNOWN, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);
}

//  HISTORY of user for limit items must give count, with a next cursor
//  when more; the reply into msg (borrowing from it, which the caller
//  destroys).
static cbus_reply_t *
s_test_history (s_test_t *test, const char *user, uint64_t limit, uint32_t count, bool more,
                cbus_history_reply_t *msg)
{
    cbus_history_t history = { .user = cbus_str (user), .has_user = true, .limit = limit };
    cbus_history_encode (&history, &test->body);
    cbus_reply_t *reply = s_test_call_ok (test, CBUS_CMD_HISTORY);
    S_TEST_DECODE (history_reply, reply, msg);
    s_test_count ("items", &msg->items, count);
    assert (msg->has_next == more);
    s_test_old_history_reply (reply, msg);
    return reply;
}

//  Item index of a HISTORY reply.
static cbus_history_item_t
s_test_history_item (const cbus_history_reply_t *msg, uint32_t index)
{
    cbus_history_item_t item;
    char reason [CBUS_REASON_MAX];
    assert (cbus_list_decode_map (&msg->items, index, &cbus_history_item_def, &item, reason) == 0);
    return item;
}

static void
s_test_history_queries (s_test_t *test, s_test_chain_t *chain)
{
    //  Newest first: block 2's transaction, then block 1's second.
    cbus_history_reply_t msg;
    cbus_reply_t *reply = s_test_history (test, "alice", 2, 2, true, &msg);
    cbus_history_item_t first = s_test_history_item (&msg, 0);
    assert (first.height == 2 && s_test_history_item (&msg, 1).index == 1);
    assert (msg.next.before_height == 1 && msg.next.before_index == 1);
    size_t expected_size;
    const uint8_t *expected = cbus_tx_bytes (cbus_block_tx (chain->block2, 0), &expected_size);
    assert (first.tx.size == expected_size && memcmp (first.tx.data, expected, expected_size) == 0);
    //  The cursor gives the rest: block 1's first transaction.
    cbus_history_t history = {
        .user = cbus_str ("alice"), .has_user = true, .limit = 10,
        .before_height = msg.next.before_height, .has_before_height = true,
        .before_index = msg.next.before_index, .has_before_index = true
    };
    cbus_history_encode (&history, &test->body);
    cbus_reply_destroy (&reply);
    reply = s_test_call_ok (test, CBUS_CMD_HISTORY);
    S_TEST_DECODE (history_reply, reply, &msg);
    s_test_count ("items", &msg.items, 1);
    assert (s_test_history_item (&msg, 0).index == 0);
    cbus_reply_destroy (&reply);
    reply = s_test_history (test, "nobody", 5, 0, false, &msg);
    cbus_reply_destroy (&reply);
    //  Neither a user nor a key; an empty user; half a cursor.
    history = (cbus_history_t) { .limit = 5 };
    cbus_history_encode (&history, &test->body);
    s_test_refused (test, CBUS_CMD_HISTORY, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);
    history = (cbus_history_t) { .user = cbus_str (""), .has_user = true, .limit = 5 };
    cbus_history_encode (&history, &test->body);
    s_test_refused (test, CBUS_CMD_HISTORY, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);
    history = (cbus_history_t) {
        .user = cbus_str ("alice"), .has_user = true, .limit = 5,
        .before_height = 2, .has_before_height = true
    };
    cbus_history_encode (&history, &test->body);
    s_test_refused (test, CBUS_CMD_HISTORY, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);
    //  Without a limit, which the definition requires.
    msgpack_packer pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_str (&pk, "user", "alice");
    s_test_refused (test, CBUS_CMD_HISTORY, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);
}

//  A longer side branch from b1 takes over: b2 leaves, s2 and s3 join.
static void
s_test_reorganisation (s_test_t *test, s_test_chain_t *chain)
{
    cbus_block_t *side2 = s_test_block (test, chain->b1, 2, 1, "bob", 2, false);
    s_test_submit (test, side2, "side", chain->s2);
    assert (s_test_event (test, 100) == NULL);
    s_test_tip (test, 2, chain->b2);
    s_test_block_get (test, chain->s2, 2, 0);
    cbus_block_t *side3 = s_test_block (test, chain->s2, 3, 2, "bob", 2, false);
    s_test_submit (test, side3, "connected", chain->s3);
    s_test_expect_event (test, CBUS_TOPIC_BLOCK_DISCONNECTED, chain->block2);
    s_test_expect_event (test, CBUS_TOPIC_BLOCK_CONNECTED, side2);
    s_test_expect_event (test, CBUS_TOPIC_BLOCK_CONNECTED, side3);
    s_test_tip (test, 3, chain->s3);
    s_test_block_get (test, chain->b2, 2, 0);       //  Kept, off the active chain
    s_test_block_get (test, chain->s2, 2, 2);
    uint8_t hash [CBUS_HASH_BYTES];
    s_test_hash_at (test, 2, hash);
    assert (memcmp (hash, chain->s2, CBUS_HASH_BYTES) == 0);
    //  b2's transaction left the chain with it; alice's history too.
    cbus_chain_tx_get_t get = { .txid = cbus_tx_id (cbus_block_tx (chain->block2, 0)) };
    cbus_chain_tx_get_encode (&get, &test->body);
    s_test_refused (test, CBUS_CMD_TX_GET, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND);
    cbus_history_reply_t msg;
    cbus_reply_t *reply = s_test_history (test, "alice", 10, 2, false, &msg);
    cbus_reply_destroy (&reply);
    reply = s_test_history (test, "bob", 10, 3, false, &msg);
    cbus_reply_destroy (&reply);
    cbus_block_destroy (&side2);
    cbus_block_destroy (&side3);
}

//  Refusals carry their codes; none changes the chain or publishes.
static void
s_test_refusals (s_test_t *test, s_test_chain_t *chain)
{
    uint8_t nowhere [CBUS_HASH_BYTES];
    memset (nowhere, 7, sizeof (nowhere));
    cbus_block_t *orphan = s_test_block (test, nowhere, 4, 1, "carol", 3, false);
    cbus_block_t *bad_pow = s_test_block (test, chain->s3, 4, 1, "carol", 3, true);
    struct {
        cbus_block_t *block;
        cbus_code_t code;
    } cases [] = { { orphan, CBUS_CODE_ORPHAN }, { bad_pow, CBUS_CODE_BAD_POW } };
    for (size_t index = 0; index < 2; index++) {
        cbus_buf_t bytes = {0};
        cbus_block_encode (cases [index].block, &bytes);
        cbus_reply_t *reply = s_test_submit_bytes (test, bytes.data, bytes.size);
        assert (streq (reply->status, CBUS_STATUS_INVALID) && reply->code == cases [index].code);
        assert (*reply->reason);
        cbus_reply_destroy (&reply);
        cbus_buf_free (&bytes);
    }
    cbus_reply_t *reply = s_test_submit_bytes (test, "junk", 4);
    assert (streq (reply->status, CBUS_STATUS_INVALID) && reply->code == CBUS_CODE_MALFORMED);
    cbus_reply_destroy (&reply);
    msgpack_packer pk = cbus_packer_begin (&test->body, 1);      //  Malformed on purpose
    cbus_pack_kv_str (&pk, "block", "not bytes");
    s_test_refused (test, CBUS_CMD_BLOCK_SUBMIT, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);
    s_test_refused (test, "BLOCK.EAT", CBUS_STATUS_INVALID, CBUS_CODE_UNKNOWN_COMMAND);
    //  A body that is not a msgpack map.
    reply = cbus_client_request (test->client, CBUS_CMD_TIP, "\xc1", 1, 5000);
    assert (streq (reply->status, CBUS_STATUS_INVALID) && reply->code == CBUS_CODE_MALFORMED);
    cbus_reply_destroy (&reply);
    assert (s_test_event (test, 100) == NULL);
    s_test_tip (test, 3, chain->s3);
    cbus_block_destroy (&orphan);
    cbus_block_destroy (&bad_pow);
}

//  Set-up failures: a store another instance holds open, a data folder
//  that cannot be made. Each fails cleanly: NULL, or FAILED on the pipe.
static void
s_test_failures (s_test_t *test)
{
    zactor_t *second = zactor_new (cbus_chainstore_actor, test->config);
    assert (second);
    char *message = zstr_recv (second);
    assert (message && streq (message, "FAILED"));
    zstr_free (&message);
    zactor_destroy (&second);
    char reason [CBUS_REASON_MAX];
    char *args [] = { "chainbus-chainstore", "--data-dir", "/dev/null/chainstore" };
    cbus_config_t *config = cbus_config_new (3, args, reason);
    assert (config);
    cbus_chainstore_t *store = cbus_chainstore_new (config);
    assert (store == NULL);
    cbus_chainstore_destroy (&store);
    cbus_config_destroy (&config);
}

//  A disk with less free than the reserve (node/disk_reserve_mb above
//  what /tmp has): a block is refused no_space, the first write refused
//  and the probe pause the store, then every block is refused unchecked;
//  TIP says why, the tip stays, and the store takes blocks again once
//  the service runs with a reserve that fits.
static void
s_test_full_disk (s_test_t *test, s_test_chain_t *chain)
{
    char reason [CBUS_REASON_MAX];
    char *args [] = { "chainbus-chainstore", "--data-dir", test->dir, "--network", "test",
                      "--pow-bits", "0x2000ffff", "--cache-mb", "4", "--disk-reserve", "1048576" };
    cbus_config_t *normal = test->config;
    test->config = cbus_config_new (11, args, reason);
    assert (test->config);
    zsock_set_subscribe (test->sub, CBUS_TOPIC_CHAIN_STORAGE);
    s_test_start (test);
    cbus_block_t *block = s_test_block (test, chain->s3, 4, 1, "full", 9, false);
    cbus_buf_t bytes = {0};
    cbus_block_encode (block, &bytes);
    for (int attempt = 0; attempt < 2; attempt++) {
        cbus_reply_t *reply = s_test_submit_bytes (test, bytes.data, bytes.size);
        assert (streq (reply->status, CBUS_STATUS_ERROR) && reply->code == CBUS_CODE_NO_SPACE);
        assert (strstr (reply->reason, "disk full: ") && strstr (reply->reason, test->dir));
        cbus_reply_destroy (&reply);
    }
    cbus_reply_t *reply = s_test_call_ok (test, CBUS_CMD_TIP);
    cbus_tip_reply_t msg;
    S_TEST_DECODE (tip_reply, reply, &msg);
    assert (msg.height == 3 && msg.has_storage);
    assert (msg.storage.size > 11 && memcmp (msg.storage.data, "disk full: ", 11) == 0);
    assert (msg.has_storage_code && cbus_str_eq (msg.storage_code, "no_space"));
    cbus_reply_destroy (&reply);
    //  And chain.storage said so once, when the store paused.
    cbus_event_t *event = s_test_event (test, 2000);
    assert (event && streq (event->topic, CBUS_TOPIC_CHAIN_STORAGE));
    cbus_chain_storage_t storage;
    assert (cbus_chain_storage_decode (cbus_event_map (event), &storage, reason) == 0);
    assert (!storage.writable && storage.storage.size > 11
            && memcmp (storage.storage.data, "disk full: ", 11) == 0);
    assert (storage.has_storage_code && cbus_str_eq (storage.storage_code, "no_space"));
    cbus_event_destroy (&event);
    event = s_test_event (test, 1500);
    assert (event == NULL);
    s_test_stop (test);
    cbus_config_destroy (&test->config);
    test->config = normal;
    //  Room again: the same block goes in.
    s_test_start (test);
    uint8_t hash [CBUS_HASH_BYTES];
    s_test_submit (test, block, "connected", hash);
    reply = s_test_call_ok (test, CBUS_CMD_TIP);
    S_TEST_DECODE (tip_reply, reply, &msg);
    assert (!msg.has_storage && !msg.has_storage_code);
    cbus_reply_destroy (&reply);
    while ((event = s_test_event (test, 200)))
        cbus_event_destroy (&event);
    s_test_stop (test);
    zsock_set_unsubscribe (test->sub, CBUS_TOPIC_CHAIN_STORAGE);
    cbus_buf_free (&bytes);
    cbus_block_destroy (&block);
}

void
cbus_chainstore_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_chainstore: ");
    s_test_t test = { .now = cbus_time_ms () };
    snprintf (test.dir, sizeof (test.dir), "/tmp/cbus_chainstore_test_XXXXXX");
    assert (mkdtemp (test.dir));
    char reason [CBUS_REASON_MAX];
    char *args [] = { "chainbus-chainstore", "--data-dir", test.dir, "--network", "test",
                      "--pow-bits", "0x2000ffff", "--cache-mb", "4" };
    test.config = cbus_config_new (9, args, reason);
    assert (test.config && cbus_config_make_dirs (test.config, reason) == 0);
    char *bus = cbus_config_endpoint (test.config, "bus-in");
    test.sub = zsock_new_sub (NULL, NULL);
    assert (test.sub && bus);
    zsock_set_subscribe (test.sub, "chain.block.");
    zsock_set_subscribe (test.sub, CBUS_TOPIC_HEARTBEAT);
    assert (zsock_bind (test.sub, "%s", bus) == 0);
    zstr_free (&bus);

    s_test_chain_t chain = {0};
    s_test_start (&test);
    s_test_submit_and_events (&test, &chain);
    s_test_block_queries (&test, &chain);
    s_test_page_and_tx_queries (&test, &chain);
    s_test_history_queries (&test, &chain);
    s_test_reorganisation (&test, &chain);
    s_test_refusals (&test, &chain);
    s_test_failures (&test);
    //  Restarted on the same folder: the same tip.
    s_test_stop (&test);
    s_test_start (&test);
    s_test_tip (&test, 3, chain.s3);
    s_test_stop (&test);
    s_test_full_disk (&test, &chain);

    cbus_block_destroy (&chain.block1);
    cbus_block_destroy (&chain.block2);
    cbus_buf_free (&test.body);
    zsock_destroy (&test.sub);
    cbus_config_destroy (&test.config);
    char *command = zsys_sprintf ("rm -rf %s", test.dir);
    assert (command && system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("OK\n");
}
