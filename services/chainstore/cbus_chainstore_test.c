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
        const char *source;
        size_t size;
        seen = event && streq (event->topic, CBUS_TOPIC_HEARTBEAT)
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

//  Submit block bytes; returns the reply.
static cbus_reply_t *
s_test_submit_bytes (s_test_t *test, const void *data, size_t size)
{
    msgpack_packer pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_bin (&pk, "block", data, size);
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
    const char *text;
    size_t size;
    uint64_t height;
    assert (cbus_msg_get_str (cbus_reply_map (reply), "status", &text, &size) == 0);
    assert (size == strlen (status) && memcmp (text, status, size) == 0);
    assert (cbus_msg_get_hash (cbus_reply_map (reply), "hash", hash) == 0);
    assert (cbus_msg_get_u64 (cbus_reply_map (reply), "height", &height) == 0);
    assert (height == cbus_block_header (block)->height);
    uint8_t expected [CBUS_HASH_BYTES];
    cbus_block_hash (block, expected);
    assert (memcmp (hash, expected, CBUS_HASH_BYTES) == 0);
    cbus_reply_destroy (&reply);
}

//  The next event must be topic for this block.
static void
s_test_expect_event (s_test_t *test, const char *topic, cbus_block_t *block)
{
    cbus_event_t *event = s_test_event (test, 3000);
    assert (event && event->decoded && streq (event->topic, topic));
    const msgpack_object *map = cbus_event_map (event);
    uint8_t hash [CBUS_HASH_BYTES], expected [CBUS_HASH_BYTES], prev [CBUS_HASH_BYTES];
    uint64_t height;
    cbus_block_hash (block, expected);
    assert (cbus_msg_get_hash (map, "hash", hash) == 0);
    assert (memcmp (hash, expected, CBUS_HASH_BYTES) == 0);
    assert (cbus_msg_get_u64 (map, "height", &height) == 0);
    assert (height == cbus_block_header (block)->height);
    assert (cbus_msg_get_hash (map, "prev_hash", prev) == 0);
    assert (memcmp (prev, cbus_block_header (block)->prev_hash, CBUS_HASH_BYTES) == 0);
    const msgpack_object *txids = cbus_msg_get (map, "txids");
    assert (txids && txids->type == MSGPACK_OBJECT_ARRAY);
    assert (txids->via.array.size == cbus_block_tx_count (block));
    for (uint32_t index = 0; index < txids->via.array.size; index++)
        assert (txids->via.array.ptr [index].via.bin.size == CBUS_HASH_BYTES
            &&  memcmp (txids->via.array.ptr [index].via.bin.ptr,
                        cbus_tx_id (cbus_block_tx (block, index)), CBUS_HASH_BYTES) == 0);
    const uint8_t *work;
    size_t size;
    assert (cbus_msg_get_bin (map, "work", &work, &size) == 0 && size == CBUS_U256_BYTES);
    cbus_event_destroy (&event);
}

//  TIP must name this height and hash.
static void
s_test_tip (s_test_t *test, uint64_t height, const uint8_t *hash)
{
    cbus_reply_t *reply = s_test_call (test, CBUS_CMD_TIP);
    assert (cbus_reply_ok (reply));
    const msgpack_object *map = cbus_reply_map (reply);
    uint64_t value, bits;
    uint8_t tip [CBUS_HASH_BYTES];
    const char *network;
    size_t size;
    assert (cbus_msg_get_u64 (map, "height", &value) == 0 && value == height);
    assert (cbus_msg_get_hash (map, "hash", tip) == 0);
    assert (!hash || memcmp (tip, hash, CBUS_HASH_BYTES) == 0);
    assert (cbus_msg_get_u64 (map, "bits", &bits) == 0 && bits == 0x2000ffff);
    assert (cbus_msg_get_str (map, "network", &network, &size) == 0);
    assert (size == 4 && memcmp (network, "test", 4) == 0);
    cbus_reply_destroy (&reply);
}

//  BLOCK.GET by hash: the block must be there with these confirmations.
static void
s_test_block_get (s_test_t *test, const uint8_t *hash, uint64_t height, uint64_t confirmations)
{
    msgpack_packer pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_bin (&pk, "hash", hash, CBUS_HASH_BYTES);
    cbus_reply_t *reply = s_test_call (test, CBUS_CMD_BLOCK_GET);
    assert (cbus_reply_ok (reply));
    uint64_t value;
    const uint8_t *bytes;
    size_t size;
    cbus_header_t header;
    assert (cbus_msg_get_u64 (cbus_reply_map (reply), "height", &value) == 0 && value == height);
    assert (cbus_msg_get_u64 (cbus_reply_map (reply), "confirmations", &value) == 0);
    assert (value == confirmations);
    assert (cbus_msg_get_bin (cbus_reply_map (reply), "block", &bytes, &size) == 0);
    assert (cbus_block_header_from_bytes (bytes, size, &header) == 0 && header.height == height);
    cbus_reply_destroy (&reply);
}

//  An array of count items in a reply, or NULL.
static const msgpack_object *
s_test_array (cbus_reply_t *reply, const char *key, uint32_t count)
{
    const msgpack_object *list = cbus_msg_get (cbus_reply_map (reply), key);
    assert (list && list->type == MSGPACK_OBJECT_ARRAY);
    if (list->via.array.size != count)
        printf ("%s: %u items, not %u\n", key, list->via.array.size, count);
    assert (list->via.array.size == count);
    return list;
}

//  Pack key: [hash, ...] into the request body.
static void
s_test_pack_hashes (msgpack_packer *pk, const char *key, const uint8_t *hashes [], size_t count)
{
    cbus_pack_str (pk, key);
    msgpack_pack_array (pk, (uint32_t) count);
    for (size_t index = 0; index < count; index++) {
        msgpack_pack_bin (pk, CBUS_HASH_BYTES);
        msgpack_pack_bin_body (pk, hashes [index], CBUS_HASH_BYTES);
    }
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

static void
s_test_submit_and_events (s_test_t *test, s_test_chain_t *chain)
{
    cbus_reply_t *reply = s_test_call (test, CBUS_CMD_PING);
    assert (cbus_reply_ok (reply));
    cbus_reply_destroy (&reply);
    s_test_tip (test, 0, NULL);
    msgpack_packer pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_u64 (&pk, "height", 0);
    reply = s_test_call (test, CBUS_CMD_BLOCK_GET);
    assert (cbus_reply_ok (reply));
    assert (cbus_msg_get_hash (cbus_reply_map (reply), "hash", chain->genesis) == 0);
    cbus_reply_destroy (&reply);

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

static void
s_test_block_queries (s_test_t *test, s_test_chain_t *chain)
{
    s_test_block_get (test, chain->b1, 1, 2);
    s_test_block_get (test, chain->b2, 2, 1);
    msgpack_packer pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_u64 (&pk, "height", 9);
    s_test_refused (test, CBUS_CMD_BLOCK_GET, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND);
    uint8_t nowhere [CBUS_HASH_BYTES];
    memset (nowhere, 7, sizeof (nowhere));
    pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_bin (&pk, "hash", nowhere, CBUS_HASH_BYTES);
    s_test_refused (test, CBUS_CMD_BLOCK_GET, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND);
    pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_str (&pk, "hash", "b1");
    s_test_refused (test, CBUS_CMD_BLOCK_GET, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);

    //  LOCATOR: tip first, genesis last.
    cbus_reply_t *reply = s_test_call (test, CBUS_CMD_LOCATOR);
    assert (cbus_reply_ok (reply));
    const msgpack_object *list = s_test_array (reply, "hashes", 3);
    assert (memcmp (list->via.array.ptr [0].via.bin.ptr, chain->b2, CBUS_HASH_BYTES) == 0);
    assert (memcmp (list->via.array.ptr [2].via.bin.ptr, chain->genesis, CBUS_HASH_BYTES) == 0);
    cbus_reply_destroy (&reply);

    //  HEADERS from a peer that has genesis only: b1 and b2's headers.
    const uint8_t *locator [] = { chain->genesis };
    pk = cbus_packer_begin (&test->body, 1);
    s_test_pack_hashes (&pk, "locator", locator, 1);
    reply = s_test_call (test, CBUS_CMD_HEADERS);
    assert (cbus_reply_ok (reply));
    uint64_t start;
    assert (cbus_msg_get_u64 (cbus_reply_map (reply), "start", &start) == 0 && start == 1);
    list = s_test_array (reply, "headers", 2);
    cbus_header_t header;
    assert (cbus_header_decode (&header, (const uint8_t *) list->via.array.ptr [0].via.bin.ptr,
                                list->via.array.ptr [0].via.bin.size) == 0);
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_header_hash (&header, hash);
    assert (memcmp (hash, chain->b1, CBUS_HASH_BYTES) == 0);
    cbus_reply_destroy (&reply);
    pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_str (&pk, "locator", "genesis");
    s_test_refused (test, CBUS_CMD_HEADERS, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);

    //  BLOCKS.HAVE, any branch; BLOCKS.GET stops at the first missing.
    const uint8_t *asked [] = { chain->b2, nowhere, chain->b1 };
    pk = cbus_packer_begin (&test->body, 1);
    s_test_pack_hashes (&pk, "hashes", asked, 3);
    reply = s_test_call (test, CBUS_CMD_BLOCKS_HAVE);
    assert (cbus_reply_ok (reply));
    list = s_test_array (reply, "have", 3);
    assert (list->via.array.ptr [0].via.boolean && !list->via.array.ptr [1].via.boolean);
    assert (list->via.array.ptr [2].via.boolean);
    cbus_reply_destroy (&reply);
    const uint8_t *wanted [] = { chain->b2, chain->b1, nowhere, chain->b1 };
    pk = cbus_packer_begin (&test->body, 1);
    s_test_pack_hashes (&pk, "hashes", wanted, 4);
    reply = s_test_call (test, CBUS_CMD_BLOCKS_GET);
    assert (cbus_reply_ok (reply));
    list = s_test_array (reply, "blocks", 2);
    assert (cbus_block_header_from_bytes (list->via.array.ptr [1].via.bin.ptr,
                                          list->via.array.ptr [1].via.bin.size, &header) == 0);
    assert (header.height == 1);
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
    msgpack_packer pk = cbus_packer_begin (&test->body, 3);
    cbus_pack_kv_u64 (&pk, "from", from);
    cbus_pack_kv_u64 (&pk, "to", to);
    cbus_pack_kv_u64 (&pk, "max_bytes", max_bytes);
    cbus_reply_t *reply = s_test_call (test, CBUS_CMD_CHAIN_PAGE);
    assert (cbus_reply_ok (reply));
    s_test_array (reply, "blocks", count);
    uint64_t value;
    assert (cbus_msg_get_u64 (cbus_reply_map (reply), "next", &value) == 0 && value == next);
    cbus_reply_destroy (&reply);
}

static void
s_test_page_and_tx_queries (s_test_t *test, s_test_chain_t *chain)
{
    s_test_page (test, 0, 9, 1 << 20, 3, 3);
    s_test_page (test, 1, 2, 1, 1, 2);          //  At least one block
    msgpack_packer pk = cbus_packer_begin (&test->body, 3);
    cbus_pack_kv_u64 (&pk, "from", 5);
    cbus_pack_kv_u64 (&pk, "to", 9);
    cbus_pack_kv_u64 (&pk, "max_bytes", 1000);
    s_test_refused (test, CBUS_CMD_CHAIN_PAGE, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND);
    pk = cbus_packer_begin (&test->body, 3);
    cbus_pack_kv_u64 (&pk, "from", 2);
    cbus_pack_kv_u64 (&pk, "to", 1);
    cbus_pack_kv_u64 (&pk, "max_bytes", 1000);
    s_test_refused (test, CBUS_CMD_CHAIN_PAGE, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);

    //  TX.GET: block 1's second transaction.
    cbus_tx_t *tx = cbus_block_tx (chain->block1, 1);
    pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_bin (&pk, "txid", cbus_tx_id (tx), CBUS_HASH_BYTES);
    cbus_reply_t *reply = s_test_call (test, CBUS_CMD_TX_GET);
    assert (cbus_reply_ok (reply));
    const msgpack_object *map = cbus_reply_map (reply);
    uint64_t value;
    const uint8_t *bytes;
    size_t size, expected_size;
    uint8_t hash [CBUS_HASH_BYTES];
    assert (cbus_msg_get_u64 (map, "height", &value) == 0 && value == 1);
    assert (cbus_msg_get_u64 (map, "index", &value) == 0 && value == 1);
    assert (cbus_msg_get_u64 (map, "confirmations", &value) == 0 && value == 2);
    assert (cbus_msg_get_hash (map, "block_hash", hash) == 0);
    assert (memcmp (hash, chain->b1, CBUS_HASH_BYTES) == 0);
    const uint8_t *expected = cbus_tx_bytes (tx, &expected_size);
    assert (cbus_msg_get_bin (map, "tx", &bytes, &size) == 0);
    assert (size == expected_size && memcmp (bytes, expected, size) == 0);
    cbus_reply_destroy (&reply);
    pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_bin (&pk, "txid", chain->b1, CBUS_HASH_BYTES);
    s_test_refused (test, CBUS_CMD_TX_GET, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND);
    s_test_refused (test, CBUS_CMD_TX_GET, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);

    //  TX.KNOWN: an item that is not a txid is simply not known.
    pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_str (&pk, "txids");
    msgpack_pack_array (&pk, 3);
    msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
    msgpack_pack_bin_body (&pk, cbus_tx_id (cbus_block_tx (chain->block2, 0)), CBUS_HASH_BYTES);
    msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
    msgpack_pack_bin_body (&pk, chain->b2, CBUS_HASH_BYTES);
    cbus_pack_str (&pk, "junk");
    reply = s_test_call (test, CBUS_CMD_TX_KNOWN);
    assert (cbus_reply_ok (reply));
    const msgpack_object *list = s_test_array (reply, "known", 3);
    assert (list->via.array.ptr [0].via.boolean && !list->via.array.ptr [1].via.boolean);
    assert (!list->via.array.ptr [2].via.boolean);
    cbus_reply_destroy (&reply);
    s_test_refused (test, CBUS_CMD_TX_KNOWN, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);
}

//  HISTORY of user for limit items must give count, with a next cursor
//  when more; returns the reply.
static cbus_reply_t *
s_test_history (s_test_t *test, const char *user, uint64_t limit, uint32_t count, bool more)
{
    msgpack_packer pk = cbus_packer_begin (&test->body, 2);
    cbus_pack_kv_str (&pk, "user", user);
    cbus_pack_kv_u64 (&pk, "limit", limit);
    cbus_reply_t *reply = s_test_call (test, CBUS_CMD_HISTORY);
    assert (cbus_reply_ok (reply));
    s_test_array (reply, "items", count);
    const msgpack_object *next = cbus_msg_get (cbus_reply_map (reply), "next");
    assert (next && (more ? next->type == MSGPACK_OBJECT_MAP : next->type == MSGPACK_OBJECT_NIL));
    return reply;
}

static void
s_test_history_queries (s_test_t *test, s_test_chain_t *chain)
{
    //  Newest first: block 2's transaction, then block 1's second.
    cbus_reply_t *reply = s_test_history (test, "alice", 2, 2, true);
    const msgpack_object *items = cbus_msg_get (cbus_reply_map (reply), "items");
    uint64_t height, index, before_height, before_index;
    assert (cbus_msg_get_u64 (&items->via.array.ptr [0], "height", &height) == 0 && height == 2);
    assert (cbus_msg_get_u64 (&items->via.array.ptr [1], "index", &index) == 0 && index == 1);
    const msgpack_object *next = cbus_msg_get (cbus_reply_map (reply), "next");
    assert (cbus_msg_get_u64 (next, "before_height", &before_height) == 0 && before_height == 1);
    assert (cbus_msg_get_u64 (next, "before_index", &before_index) == 0 && before_index == 1);
    const uint8_t *tx;
    size_t size, expected_size;
    const uint8_t *expected = cbus_tx_bytes (cbus_block_tx (chain->block2, 0), &expected_size);
    assert (cbus_msg_get_bin (&items->via.array.ptr [0], "tx", &tx, &size) == 0);
    assert (size == expected_size && memcmp (tx, expected, size) == 0);
    cbus_reply_destroy (&reply);
    //  The cursor gives the rest: block 1's first transaction.
    msgpack_packer pk = cbus_packer_begin (&test->body, 4);
    cbus_pack_kv_str (&pk, "user", "alice");
    cbus_pack_kv_u64 (&pk, "limit", 10);
    cbus_pack_kv_u64 (&pk, "before_height", before_height);
    cbus_pack_kv_u64 (&pk, "before_index", before_index);
    reply = s_test_call (test, CBUS_CMD_HISTORY);
    assert (cbus_reply_ok (reply));
    items = s_test_array (reply, "items", 1);
    assert (cbus_msg_get_u64 (&items->via.array.ptr [0], "index", &index) == 0 && index == 0);
    cbus_reply_destroy (&reply);
    reply = s_test_history (test, "nobody", 5, 0, false);
    cbus_reply_destroy (&reply);
    pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_u64 (&pk, "limit", 5);
    s_test_refused (test, CBUS_CMD_HISTORY, CBUS_STATUS_INVALID, CBUS_CODE_INVALID);
    pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_str (&pk, "user", "");
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
    msgpack_packer pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_u64 (&pk, "height", 2);
    cbus_reply_t *reply = s_test_call (test, CBUS_CMD_BLOCK_GET);
    uint8_t hash [CBUS_HASH_BYTES];
    assert (cbus_reply_ok (reply) && cbus_msg_get_hash (cbus_reply_map (reply), "hash", hash) == 0);
    assert (memcmp (hash, chain->s2, CBUS_HASH_BYTES) == 0);
    cbus_reply_destroy (&reply);
    //  b2's transaction left the chain with it; alice's history too.
    pk = cbus_packer_begin (&test->body, 1);
    cbus_pack_kv_bin (&pk, "txid", cbus_tx_id (cbus_block_tx (chain->block2, 0)), CBUS_HASH_BYTES);
    s_test_refused (test, CBUS_CMD_TX_GET, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND);
    reply = s_test_history (test, "alice", 10, 2, false);
    cbus_reply_destroy (&reply);
    reply = s_test_history (test, "bob", 10, 3, false);
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
    msgpack_packer pk = cbus_packer_begin (&test->body, 1);
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
