/*  =========================================================================
    seeds - writes the seed corpus of every harness (fuzz/corpus/<name>/)

    Real, valid inputs made by the node's own encoders, so that each
    harness starts past its decoder's first checks: transactions (plain,
    signed, sealed), blocks of a small mined chain of network dev, every
    bus message with its fields filled, peer messages, a config file, key
    files, node.key, an export file of that chain, metrics snapshots. Run by hand after a
    format changes (`build-fuzz/fuzz/fuzz_seeds fuzz/corpus`), then commit
    what changed; scripts/fuzz.sh grows the corpus from there.
    =========================================================================
*/
#include "fuzz.h"
#include "cbus_peersync_private.h"
#include "cbus_identity.h"
#include <sys/stat.h>

static const char *s_root;

static void
s_write (const char *harness, const char *name, const void *data, size_t size)
{
    char path [512];
    snprintf (path, sizeof (path), "%s/%s", s_root, harness);
    mkdir (path, 0755);
    snprintf (path, sizeof (path), "%s/%s/seed-%s", s_root, harness, name);
    FILE *file = fopen (path, "wb");
    FUZZ_CHECK (file && fwrite (data, 1, size, file) == size && fclose (file) == 0);
}

//  A harness input that starts with a selector byte.
static void
s_write_selected (const char *harness, const char *name, uint8_t selector, const cbus_buf_t *body)
{
    uint8_t *input = (uint8_t *) malloc (body->size + 1);
    FUZZ_CHECK (input);
    input [0] = selector;
    memcpy (input + 1, body->data, body->size);
    s_write (harness, name, input, body->size + 1);
    free (input);
}

static cbus_key_t *
s_key (uint8_t fill)
{
    uint8_t seed [CBUS_KEY_SEED_BYTES];
    memset (seed, fill, sizeof (seed));
    return cbus_key_new_from_seed (seed);
}

static cbus_tx_t *
s_tx_from_text (const char *text)
{
    char reason [CBUS_REASON_MAX];
    json_t *object = cbus_json_parse (text, strlen (text), reason);
    FUZZ_CHECK (object);
    cbus_tx_t *tx = cbus_tx_new_from_json (object, 1700000000000000ULL, reason);
    if (!tx)
        fprintf (stderr, "seeds: %s\n", reason);
    FUZZ_CHECK (tx);
    json_decref (object);
    return tx;
}

//  A transaction signed by key (0x11 fill), as a wallet sends it.
static char *
s_signed_text (cbus_key_t *key, int number)
{
    char *text = zsys_sprintf (
        "{\"users\": [\"alice\", \"bob\"], \"data\": {\"n\": %d, \"note\": \"caf\\u00e9\", "
        "\"values\": [1, -2, 0.1, 1e300, true, null]}, \"dh_parameters\": \"\", "
        "\"server_public_key\": \"server\", \"receiver_public_key\": \"receiver\", "
        "\"sender_public_key\": \"%s\", \"timestamp\": %d}", number, cbus_key_public_hex (key),
        1000 + number);
    cbus_tx_t *tx = s_tx_from_text (text);
    size_t size;
    const uint8_t *bytes = cbus_tx_signed_bytes (tx, &size);
    uint8_t signature [CBUS_SIG_BYTES];
    cbus_key_sign (key, bytes, size, signature);
    char hex [2 * CBUS_SIG_BYTES + 1];
    cbus_hex_encode (signature, CBUS_SIG_BYTES, hex);
    char *signed_text = zsys_sprintf ("%.*s, \"signature\": \"%s\"}", (int) strlen (text) - 1,
                                      text, hex);
    zstr_free (&text);
    cbus_tx_destroy (&tx);
    return signed_text;
}

//  A transaction whose data is sealed for the key of 0x42 (fuzz_seal's).
static char *
s_sealed_text (const char *plaintext)
{
    cbus_key_t *receiver = s_key (0x42);
    char reason [CBUS_REASON_MAX];
    cbus_seal_t *seal = cbus_seal_new (cbus_key_public (receiver), plaintext, strlen (plaintext),
                                       reason);
    FUZZ_CHECK (seal);
    json_t *data = cbus_seal_data (seal);
    char *data_text = json_dumps (data, JSON_COMPACT);
    char *text = zsys_sprintf (
        "{\"users\": \"carol\", \"data\": %s, \"dh_parameters\": \"%s\", "
        "\"server_public_key\": \"\", \"receiver_public_key\": \"%s\", "
        "\"sender_public_key\": \"\"}", data_text, cbus_seal_dh_parameters (seal),
        cbus_key_public_hex (receiver));
    free (data_text);
    json_decref (data);
    cbus_seal_destroy (&seal);
    cbus_key_destroy (&receiver);
    return text;
}

static void
s_transactions (void)
{
    const char *plain [] = {
        "{\"users\": \"user1\", \"data\": [], \"dh_parameters\": \"param\", "
        "\"server_public_key\": \"server_key\", \"receiver_public_key\": \"receiver_key\", "
        "\"sender_public_key\": \"sender_key\"}",
        "{\"users\": [\"a\", \"b\"], \"data\": {\"x\": [1, 2.5, null], \"y\": {\"z\": \"\\n\\t\"}}, "
        "\"dh_parameters\": \"\", \"server_public_key\": \"s\", \"receiver_public_key\": \"r\", "
        "\"sender_public_key\": \"k\", \"timestamp\": 42}",
    };
    cbus_key_t *key = s_key (0x11);
    char *texts [4] = { strdup (plain [0]), strdup (plain [1]), s_signed_text (key, 1),
                        s_sealed_text ("{\"secret\": \"meet at noon\"}") };
    const char *names [4] = { "plain", "nested", "signed", "sealed" };
    for (int index = 0; index < 4; index++) {
        s_write ("tx_json", names [index], texts [index], strlen (texts [index]));
        cbus_tx_t *tx = s_tx_from_text (texts [index]);
        size_t size;
        const uint8_t *bytes = cbus_tx_bytes (tx, &size);
        s_write ("tx", names [index], bytes, size);
        cbus_tx_destroy (&tx);
    }
    s_write ("seal", "sealed-tx", texts [3], strlen (texts [3]));
    char *other = s_sealed_text ("");
    s_write ("seal", "sealed-empty", other, strlen (other));
    zstr_free (&other);
    for (int index = 0; index < 4; index++)
        zstr_free (&texts [index]);
    cbus_key_destroy (&key);
}

//  A chain of network dev at the default bits: genesis and count blocks
//  of a few signed transactions each, mined. Returns the blocks.
#define S_CHAIN_BLOCKS 3
static void
s_chain (cbus_block_t *blocks [S_CHAIN_BLOCKS + 1])
{
    uint32_t bits = 0x1f00ffff;
    blocks [0] = cbus_block_new_genesis ("dev", bits);
    cbus_key_t *key = s_key (0x11);
    for (int height = 1; height <= S_CHAIN_BLOCKS; height++) {
        cbus_header_t header = { .version = CBUS_BLOCK_VERSION, .height = (uint64_t) height,
                                 .time_ms = 1700000000000ULL + (uint64_t) height * 60000,
                                 .bits = bits, .miner = 7 };
        cbus_block_hash (blocks [height - 1], header.prev_hash);
        cbus_block_t *block = cbus_block_new (&header);
        for (int index = 0; index < height - 1; index++) {
            char *text = s_signed_text (key, height * 10 + index);
            cbus_tx_t *tx = s_tx_from_text (text);
            cbus_block_add_tx (block, &tx);
            zstr_free (&text);
        }
        cbus_header_t *mined = cbus_block_header (block);
        cbus_block_merkle (block, mined->merkle_root);
        while (!cbus_header_search (mined, 1000000))
            ;
        blocks [height] = block;
    }
    cbus_key_destroy (&key);
}

static void
s_blocks (cbus_block_t *blocks [S_CHAIN_BLOCKS + 1])
{
    cbus_buf_t bytes = {0}, json = {0};
    for (int height = 0; height <= S_CHAIN_BLOCKS; height++) {
        char name [32];
        snprintf (name, sizeof (name), "height-%d", height);
        cbus_buf_reset (&bytes);
        cbus_block_encode (blocks [height], &bytes);
        s_write ("block", name, bytes.data, bytes.size);
    }
    //  The export file: GET /chain's shape.
    cbus_buf_puts (&json, "{\"chain\": [");
    for (int height = 0; height <= S_CHAIN_BLOCKS; height++) {
        if (height)
            cbus_buf_puts (&json, ", ");
        cbus_block_write_json (blocks [height], &json);
    }
    cbus_buf_printf (&json, "], \"length\": %d}", S_CHAIN_BLOCKS + 1);
    s_write ("import", "chain", json.data, json.size);
    cbus_buf_reset (&json);
    cbus_buf_puts (&json, "{\"chain\": [");
    cbus_block_write_json (blocks [0], &json);
    cbus_buf_puts (&json, "], \"length\": 1}");
    s_write ("import", "genesis-only", json.data, json.size);
    cbus_buf_free (&json);
    cbus_buf_free (&bytes);
}

//  --------------------------------------------------------------------------
//  Every bus message, its fields filled from the table

static uint8_t s_hash [CBUS_HASH_BYTES];
static uint8_t s_header [CBUS_HEADER_BYTES];
static cbus_bytes_t s_tx_bytes;         //  A real transaction's bytes
static char s_pool [64][2048];          //  MAPS items (no frees to track)
static size_t s_pool_used;

static void *
s_alloc (size_t size)
{
    FUZZ_CHECK (size <= sizeof (s_pool [0]) && s_pool_used < 64);
    memset (s_pool [s_pool_used], 0, size);
    return s_pool [s_pool_used++];
}

static const void *
s_item_HASH (const void *source, uint32_t index, size_t *size)
{
    (void) source; (void) index;
    *size = CBUS_HASH_BYTES;
    return s_hash;
}

static const void *
s_item_HEADER (const void *source, uint32_t index, size_t *size)
{
    (void) source; (void) index;
    *size = CBUS_HEADER_BYTES;
    return s_header;
}

static const void *
s_item_BIN (const void *source, uint32_t index, size_t *size)
{
    (void) source; (void) index;
    *size = s_tx_bytes.size;
    return s_tx_bytes.data;
}

static const void *
s_item_STR (const void *source, uint32_t index, size_t *size)
{
    (void) source;
    *size = index ? 21 : 5;
    return index ? "tcp://127.0.0.1:9001" : "alice";
}

static const void *
s_item_BOOL (const void *source, uint32_t index, size_t *size)
{
    static const bool values [2] = { true, false };
    (void) source;
    *size = sizeof (bool);
    return &values [index % 2];
}

static const void *
s_item_U64 (const void *source, uint32_t index, size_t *size)
{
    static const uint64_t values [2] = { 1764633600000ULL, 7 };
    (void) source;
    *size = sizeof (uint64_t);
    return &values [index % 2];
}

#define F_U64(member, element)    member = 7;
#define F_I64(member, element)    member = -3;
#define F_BOOL(member, element)   member = true;
#define F_STR(member, element)    member = cbus_str ("dev");
#define F_BIN(member, element)    member = s_tx_bytes;
#define F_HASH(member, element)   member = s_hash;
#define F_HEADER(member, element) member = s_header;
#define F_LIST(member, element)   member = (cbus_list_t) { .count = 2, .item = s_item_##element };
#define F_MAPS(member, element) { \
        cbus_##element##_t *item = (cbus_##element##_t *) s_alloc (2 * sizeof (cbus_##element##_t)); \
        s_fill_##element (item); \
        s_fill_##element (item + 1); \
        member = (cbus_list_t) { .count = 2, .items = item }; \
    }
#define F_MAP(member, element)    s_fill_##element (&(member));
#define F_HAS_REQ(self, name)
#define F_HAS_OPT(self, name)     (self)->has_##name = true;
#define F_HAS_NIL(self, name)     (self)->has_##name = true;
#define F_FIELD(name, kind, presence, element) \
    F_##kind (self->name, element) F_HAS_##presence (self, name)

#define S_FILL(name, fields, kind, wire, service, when) \
    static void \
    s_fill_##name (cbus_##name##_t *self) \
    { \
        memset (self, 0, sizeof (*self)); \
        fields (F_FIELD) \
    } \
    static void \
    s_seed_##name (uint8_t selector) \
    { \
        cbus_##name##_t self; \
        s_fill_##name (&self); \
        cbus_buf_t body = {0}; \
        cbus_##name##_encode (&self, &body); \
        s_write_selected ("bus_msg", #name, selector, &body); \
        cbus_buf_free (&body); \
    }
CBUS_MSGS (S_FILL)

static void
s_bus_messages (void)
{
    uint8_t selector = 0;
#define S_SEED(name, fields, kind, wire, service, when) s_seed_##name (selector++);
    CBUS_MSGS (S_SEED)
#undef S_SEED
}

//  Frames for fuzz_bus_frames: 2-byte lengths, the last frame bare.
static void
s_frames (const char *name, uint8_t receiver, const char **frames, const size_t *sizes,
          size_t count)
{
    cbus_buf_t input = {0};
    cbus_buf_append (&input, &receiver, 1);
    for (size_t index = 0; index < count; index++) {
        if (index + 1 < count) {
            uint8_t length [2] = { (uint8_t) sizes [index], (uint8_t) (sizes [index] >> 8) };
            cbus_buf_append (&input, length, 2);
        }
        cbus_buf_append (&input, frames [index], sizes [index]);
    }
    s_write ("bus_frames", name, input.data, input.size);
    cbus_buf_free (&input);
}

static void
s_bus_frames (void)
{
    const char *id = "\x01\0\0\0\0\0\0\0";
    cbus_buf_t body = {0};
    cbus_tip_reply_t tip;
    s_fill_tip_reply (&tip);
    cbus_tip_reply_encode (&tip, &body);
    const char *ok [] = { "OK", id, body.data };
    size_t ok_sizes [] = { 2, 8, body.size };
    s_frames ("reply-ok", 0, ok, ok_sizes, 3);

    cbus_buf_t refusal_body = {0};
    cbus_refusal_t refusal = { .code = cbus_str ("malformed"),
                               .reason = cbus_str ("TX.SUBMIT request tx: is missing") };
    cbus_refusal_encode (&refusal, &refusal_body);
    const char *refused [] = { "INVALID", id, refusal_body.data };
    size_t refused_sizes [] = { 7, 8, refusal_body.size };
    s_frames ("reply-refusal", 0, refused, refused_sizes, 3);
    const char *old [] = { "FULL", id, "\x81\xa6reason\xa4" "full" };
    size_t old_sizes [] = { 4, 8, 13 };
    s_frames ("reply-reason-only", 0, old, old_sizes, 3);

    const char *request [] = { "\0\x6b\x8b\x45\x67", "TIP", id, "\x80" };
    size_t request_sizes [] = { 5, 3, 8, 1 };
    s_frames ("request-tip", 1, request, request_sizes, 4);
    cbus_buf_t event_body = {0};
    msgpack_packer pk = cbus_packer_begin (&event_body, 4);
    cbus_pack_kv_str (&pk, "src", "mempool");
    cbus_pack_kv_u64 (&pk, "boot", 12345);
    cbus_pack_kv_u64 (&pk, "pid", 99);
    cbus_pack_kv_u64 (&pk, "time_ms", 1700000000000ULL);
    const char *event [] = { CBUS_TOPIC_HEARTBEAT, event_body.data, "\x05\0\0\0\0\0\0\0" };
    size_t event_sizes [] = { strlen (CBUS_TOPIC_HEARTBEAT), event_body.size, 8 };
    s_frames ("event-heartbeat", 2, event, event_sizes, 3);
    cbus_buf_free (&event_body);
    cbus_buf_free (&refusal_body);
    cbus_buf_free (&body);
}

//  --------------------------------------------------------------------------
//  Peer messages, by fuzz_peer's selector

static void
s_peer (cbus_block_t *blocks [S_CHAIN_BLOCKS + 1])
{
    cbus_buf_t body = {0};
    peersync_hello_t hello = {
        .reply = true, .version = CBUS_P2P_VERSION, .network = "dev", .network_size = 3,
        .node_id = "0123456789abcdef", .public_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
        .endpoint = "tcp://127.0.0.1:6000", .endpoint_size = 20,
        .tip = { .height = 3, .work = { 0, 0, 1 }, .tip = { 9 } }
    };
    cbus_block_hash (blocks [0], hello.genesis);
    peersync_hello_pack (&hello, &body);
    s_write_selected ("peer", "hello", 0, &body);
    peersync_status_t status = { .tip = hello.tip, .reply = false };
    peersync_status_pack (&status, &body);
    s_write_selected ("peer", "status", 1, &body);
    peersync_reject_pack (CBUS_CODE_WRONG_NETWORK, "another network", &body);
    s_write_selected ("peer", "reject", 2, &body);
    peersync_info_t info = { .network = "dev", .network_size = 3, .node_id = hello.node_id,
                             .node_id_size = 16, .public_key = hello.public_key,
                             .public_key_size = 40, .endpoint = hello.endpoint,
                             .endpoint_size = 20 };
    memcpy (info.genesis, hello.genesis, CBUS_HASH_BYTES);
    peersync_info_pack (&info, &body);
    s_write_selected ("peer", "info", 3, &body);

    cbus_buf_t block = {0};
    cbus_block_encode (blocks [S_CHAIN_BLOCKS], &block);
    peersync_block_pack (block.data, block.size, &body);
    s_write_selected ("peer", "block", 4, &body);
    uint8_t hashes [S_CHAIN_BLOCKS + 1][CBUS_HASH_BYTES];
    for (int height = 0; height <= S_CHAIN_BLOCKS; height++)
        cbus_block_hash (blocks [height], hashes [height]);
    cbus_headers_t getheaders = { .locator = { .count = 2, .items = hashes },
                                  .max = 2000, .has_max = true };
    cbus_headers_encode (&getheaders, &body);
    s_write_selected ("peer", "getheaders", 5, &body);
    peersync_getblocks_pack ((const uint8_t (*) [CBUS_HASH_BYTES]) hashes + 1, S_CHAIN_BLOCKS,
                             1 << 20, &body);
    s_write_selected ("peer", "getblocks", 6, &body);

    cbus_buf_t txs = {0};
    cbus_block_t *last = blocks [S_CHAIN_BLOCKS];
    for (size_t index = 0; index < cbus_block_tx_count (last); index++) {
        size_t size;
        const uint8_t *bytes = cbus_tx_bytes (cbus_block_tx (last, index), &size);
        peersync_tx_add (&txs, bytes, size);
    }
    peersync_tx_pack (&txs, cbus_block_tx_count (last), &body);
    s_write_selected ("peer", "tx", 7, &body);

    uint8_t headers [S_CHAIN_BLOCKS][CBUS_HEADER_BYTES];
    for (int height = 1; height <= S_CHAIN_BLOCKS; height++)
        cbus_header_encode (cbus_block_header (blocks [height]), headers [height - 1]);
    cbus_headers_reply_t served = { .start = 1, .headers = { .count = S_CHAIN_BLOCKS,
                                                             .items = headers } };
    cbus_headers_reply_encode (&served, &body);
    s_write_selected ("peer", "headers", 8, &body);
    cbus_bytes_t items [1] = { { (const uint8_t *) block.data, block.size } };
    cbus_blocks_get_reply_t fetched = { .blocks = { .count = 1, .items = items } };
    cbus_blocks_get_reply_encode (&fetched, &body);
    s_write_selected ("peer", "blocks", 9, &body);
    cbus_buf_free (&txs);
    cbus_buf_free (&block);
    cbus_buf_free (&body);
}

//  --------------------------------------------------------------------------
//  Files: config, keys, node.key

static char *
s_slurp (const char *path, size_t *size)
{
    FILE *file = fopen (path, "rb");
    FUZZ_CHECK (file);
    char *text = (char *) calloc (1, 1 << 16);
    FUZZ_CHECK (text);
    *size = fread (text, 1, (1 << 16) - 1, file);
    fclose (file);
    return text;
}

static void
s_files (const char *scratch)
{
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    FUZZ_CHECK (stream);
    cbus_config_print_zpl (stream);
    fclose (stream);
    s_write ("config", "defaults", text, size);
    free (text);
    const char *small = "#   A node of a test network\nnode\n    network = \"test\"\n"
                        "    pow_bits = 0x2000ffff\ngateway\n    http_port = 5100\n"
                        "    max_body = 65536\npeersync\n    p2p_advertise = \"node1.example\"\n";
    s_write ("config", "small", small, strlen (small));

    char path [512], reason [CBUS_REASON_MAX];
    snprintf (path, sizeof (path), "%s/wallet.key", scratch);
    unlink (path);
    cbus_key_t *key = s_key (0x11);
    FUZZ_CHECK (cbus_key_save (key, path, reason) == 0);
    text = s_slurp (path, &size);
    s_write ("key", "wallet-key", text, size);
    free (text);
    cbus_key_destroy (&key);
    const char *token = "3f9c1e0b7a2d4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6\n";
    s_write ("key", "admin-token", token, strlen (token));
    snprintf (path, sizeof (path), "%s/node.key", scratch);
    unlink (path);
    cbus_identity_t *identity = cbus_identity_new (path, reason);
    FUZZ_CHECK (identity);
    cbus_identity_destroy (&identity);
    text = s_slurp (path, &size);
    s_write ("key", "node-key", text, size);
    free (text);
}

//  Metrics snapshots (fuzz_metrics): one of every kind of row.
static void
s_metrics (void)
{
    cbus_metrics_t *metrics = cbus_metrics_new ();
    FUZZ_CHECK (metrics);
    cbus_metrics_set (metrics, CBUS_METRIC_CHAIN_HEIGHT, NULL, NULL, 42);
    cbus_metrics_inc (metrics, CBUS_METRIC_CHAIN_BLOCKS_CONNECTED);
    cbus_metrics_add (metrics, CBUS_METRIC_MEMPOOL_TXS_REFUSED, "bad_signature", NULL, 3);
    cbus_metrics_add (metrics, CBUS_METRIC_HTTP_REQUESTS, "/mine", "200", 7);
    cbus_metrics_observe (metrics, CBUS_METRIC_MEMPOOL_COMMIT_WRITE, NULL, NULL, 0.0021);
    cbus_metrics_observe (metrics, CBUS_METRIC_HTTP_DURATION, "/chain", NULL, 0.5);
    cbus_metrics_set (metrics, CBUS_METRIC_PEERS, "linked", NULL, 2);
    cbus_buf_t snapshot = {0};
    FUZZ_CHECK (cbus_metrics_encode (metrics, &snapshot) == 0);
    s_write ("metrics", "snapshot", snapshot.data, snapshot.size);
    cbus_metrics_destroy (&metrics);
    metrics = cbus_metrics_new ();
    FUZZ_CHECK (metrics && cbus_metrics_encode (metrics, &snapshot) == 0);
    s_write ("metrics", "fresh", snapshot.data, snapshot.size);
    cbus_metrics_destroy (&metrics);
    cbus_buf_free (&snapshot);
}

int
main (int argc, char **argv)
{
    if (argc != 2) {
        fprintf (stderr, "usage: fuzz_seeds <corpus folder> (fuzz/corpus)\n");
        return 2;
    }
    s_root = argv [1];
    mkdir (s_root, 0755);
    fuzz_init ();
    FUZZ_CHECK (sodium_init () >= 0);
    cbus_block_t *blocks [S_CHAIN_BLOCKS + 1];
    s_chain (blocks);
    cbus_block_hash (blocks [1], s_hash);
    cbus_header_encode (cbus_block_header (blocks [2]), s_header);
    cbus_tx_t *tx = cbus_block_tx (blocks [2], 0);
    s_tx_bytes.data = cbus_tx_bytes (tx, &s_tx_bytes.size);

    s_transactions ();
    s_blocks (blocks);
    s_bus_messages ();
    s_bus_frames ();
    s_peer (blocks);
    s_files (fuzz_scratch (""));
    s_metrics ();
    for (int height = 0; height <= S_CHAIN_BLOCKS; height++)
        cbus_block_destroy (&blocks [height]);
    printf ("seeds written under %s\n", s_root);
    return 0;
}
