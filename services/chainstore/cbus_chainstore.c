/*  =========================================================================
    cbus_chainstore - the chain's keeper: the only writer of its LevelDB
    =========================================================================
*/
#include "cbus_chainstore.h"

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zsock_t *router;            //  Queries and submissions
    cbus_pub_t *pub;            //  Events into the bus
    cbus_chain_t *chain;        //  The block tree on disk
    char *network;              //  Network id, for TIP
    cbus_buf_t reply;           //  Reused reply buffer
    cbus_buf_t event;           //  Reused event buffer
} s_chainstore_t;

//  Start a reply map of count entries in self->reply.
static void
s_send (s_chainstore_t *self, cbus_request_t *request)
{
    cbus_reply_send (self->router, request, CBUS_STATUS_OK, self->reply.data, self->reply.size);
}

//  Publish chain.block.connected or .disconnected for one block; work is
//  the chain work up to and with the block.
static void
s_publish_block (s_chainstore_t *self, const char *topic, cbus_block_t *block)
{
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_block_hash (block, hash);
    cbus_chain_entry_t entry = {0};
    cbus_chain_entry (self->chain, hash, &entry);
    cbus_header_t *header = cbus_block_header (block);
    msgpack_packer pk;
    cbus_pub_begin (self->pub, &pk, &self->event, 7);
    cbus_pack_kv_bin (&pk, "hash", hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "height", header->height);
    cbus_pack_kv_bin (&pk, "prev_hash", header->prev_hash, CBUS_HASH_BYTES);
    cbus_pack_kv_bin (&pk, "merkle_root", header->merkle_root, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "time_ms", header->time_ms);
    cbus_pack_kv_bin (&pk, "work", entry.work, CBUS_U256_BYTES);
    cbus_pack_str (&pk, "txids");
    size_t count = cbus_block_tx_count (block);
    msgpack_pack_array (&pk, (uint32_t) count);
    for (size_t index = 0; index < count; index++) {
        msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
        msgpack_pack_bin_body (&pk, cbus_tx_id (cbus_block_tx (block, index)), CBUS_HASH_BYTES);
    }
    cbus_pub_send (self->pub, topic, &self->event);
}

static void
s_handle_tip (s_chainstore_t *self, cbus_request_t *request)
{
    cbus_chain_entry_t entry;
    const uint8_t *tip = cbus_chain_tip (self->chain, &entry);
    msgpack_packer pk = cbus_packer_begin (&self->reply, 7);
    cbus_pack_kv_u64 (&pk, "height", entry.height);
    cbus_pack_kv_bin (&pk, "hash", tip, CBUS_HASH_BYTES);
    cbus_pack_kv_bin (&pk, "work", entry.work, CBUS_U256_BYTES);
    cbus_pack_kv_u64 (&pk, "time_ms", entry.header.time_ms);
    cbus_pack_kv_str (&pk, "network", self->network);
    cbus_pack_kv_bin (&pk, "genesis", cbus_chain_genesis (self->chain), CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "bits", cbus_chain_bits (self->chain));
    s_send (self, request);
}

static void
s_handle_block_get (s_chainstore_t *self, cbus_request_t *request)
{
    const msgpack_object *map = cbus_request_map (request);
    uint8_t hash [CBUS_HASH_BYTES];
    uint64_t height;
    if (cbus_msg_get_u64 (map, "height", &height) == 0) {
        if (cbus_chain_hash_at (self->chain, height, hash)) {
            cbus_reply_error (self->router, request, CBUS_STATUS_NOTFOUND,
                              "No block at height %" PRIu64, height);
            return;
        }
    }
    else
    if (cbus_msg_get_hash (map, "hash", hash)) {
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID,
                          "BLOCK.GET needs a height (int) or a hash (32-byte bin)");
        return;
    }
    char *bytes = NULL;
    size_t size;
    cbus_chain_entry_t entry, tip;
    if (cbus_chain_entry (self->chain, hash, &entry)
    ||  cbus_chain_block_by_hash (self->chain, hash, &bytes, &size) || !bytes) {
        cbus_reply_error (self->router, request, CBUS_STATUS_NOTFOUND, "Block not found");
        return;
    }
    cbus_chain_tip (self->chain, &tip);
    bool active = cbus_chain_is_active (self->chain, hash);
    msgpack_packer pk = cbus_packer_begin (&self->reply, 4);
    cbus_pack_kv_bin (&pk, "block", bytes, size);
    cbus_pack_kv_u64 (&pk, "height", entry.height);
    cbus_pack_kv_bin (&pk, "hash", hash, CBUS_HASH_BYTES);
    //  A block off the active chain has no confirmations.
    cbus_pack_kv_u64 (&pk, "confirmations", active ? tip.height - entry.height + 1 : 0);
    s_send (self, request);
    cbus_store_free (bytes);
}

static void
s_handle_chain_page (s_chainstore_t *self, cbus_request_t *request)
{
    const msgpack_object *map = cbus_request_map (request);
    uint64_t from, to, max_bytes;
    if (cbus_msg_get_u64 (map, "from", &from) || cbus_msg_get_u64 (map, "to", &to)
    ||  cbus_msg_get_u64 (map, "max_bytes", &max_bytes) || to < from) {
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID,
                          "CHAIN.PAGE needs from <= to and max_bytes");
        return;
    }
    cbus_chain_entry_t tip;
    cbus_chain_tip (self->chain, &tip);
    if (from > tip.height) {
        cbus_reply_error (self->router, request, CBUS_STATUS_NOTFOUND,
                          "No block at height %" PRIu64, from);
        return;
    }
    if (to > tip.height)
        to = tip.height;
    //  Collect blocks until the byte budget is spent (at least one).
    zlist_t *blocks = zlist_new ();
    size_t total = 0;
    uint64_t height = from;
    int rc = 0;
    while (height <= to && (total == 0 || total < max_bytes)) {
        uint8_t hash [CBUS_HASH_BYTES];
        char *bytes = NULL;
        size_t size;
        if (cbus_chain_hash_at (self->chain, height, hash)
        ||  cbus_chain_block_by_hash (self->chain, hash, &bytes, &size) || !bytes) {
            rc = -1;
            break;
        }
        zlist_append (blocks, zframe_new (bytes, size));
        cbus_store_free (bytes);
        total += size;
        height++;
    }
    if (rc == 0) {
        msgpack_packer pk = cbus_packer_begin (&self->reply, 2);
        cbus_pack_str (&pk, "blocks");
        msgpack_pack_array (&pk, (uint32_t) zlist_size (blocks));
        for (zframe_t *frame = (zframe_t *) zlist_first (blocks); frame;
             frame = (zframe_t *) zlist_next (blocks)) {
            msgpack_pack_bin (&pk, zframe_size (frame));
            msgpack_pack_bin_body (&pk, zframe_data (frame), zframe_size (frame));
        }
        cbus_pack_kv_u64 (&pk, "next", height);
        s_send (self, request);
    }
    else
        cbus_reply_error (self->router, request, CBUS_STATUS_ERROR,
                          "The chain store could not read block %" PRIu64, height);
    zframe_t *frame;
    while ((frame = (zframe_t *) zlist_pop (blocks)))
        zframe_destroy (&frame);
    zlist_destroy (&blocks);
}

static void
s_handle_tx_get (s_chainstore_t *self, cbus_request_t *request)
{
    uint8_t txid [CBUS_HASH_BYTES], block_hash [CBUS_HASH_BYTES];
    uint32_t position;
    if (cbus_msg_get_hash (cbus_request_map (request), "txid", txid)) {
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "TX.GET needs a txid");
        return;
    }
    if (cbus_chain_tx_where (self->chain, txid, block_hash, &position)) {
        cbus_reply_error (self->router, request, CBUS_STATUS_NOTFOUND, "Transaction not in the chain");
        return;
    }
    char *bytes = NULL;
    size_t size;
    cbus_chain_entry_t entry, tip;
    cbus_block_t *block = NULL;
    char reason [CBUS_REASON_MAX];
    if (cbus_chain_entry (self->chain, block_hash, &entry) == 0
    &&  cbus_chain_block_by_hash (self->chain, block_hash, &bytes, &size) == 0 && bytes)
        block = cbus_block_new_from_bytes (bytes, size, reason);
    cbus_store_free (bytes);
    cbus_tx_t *tx = block ? cbus_block_tx (block, position) : NULL;
    if (!tx) {
        zsys_error ("tx index points at a missing block or position");
        cbus_reply_error (self->router, request, CBUS_STATUS_ERROR, "The chain store's index is damaged");
        cbus_block_destroy (&block);
        return;
    }
    cbus_chain_tip (self->chain, &tip);
    msgpack_packer pk = cbus_packer_begin (&self->reply, 5);
    const uint8_t *tx_bytes = cbus_tx_bytes (tx, &size);
    cbus_pack_kv_bin (&pk, "tx", tx_bytes, size);
    cbus_pack_kv_bin (&pk, "block_hash", block_hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "height", entry.height);
    cbus_pack_kv_u64 (&pk, "index", position);
    cbus_pack_kv_u64 (&pk, "confirmations", tip.height - entry.height + 1);
    s_send (self, request);
    cbus_block_destroy (&block);
}

static void
s_handle_tx_known (s_chainstore_t *self, cbus_request_t *request)
{
    const msgpack_object *txids = cbus_msg_get (cbus_request_map (request), "txids");
    if (!txids || txids->type != MSGPACK_OBJECT_ARRAY) {
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "TX.KNOWN needs txids");
        return;
    }
    msgpack_packer pk = cbus_packer_begin (&self->reply, 1);
    cbus_pack_str (&pk, "known");
    msgpack_pack_array (&pk, txids->via.array.size);
    for (uint32_t index = 0; index < txids->via.array.size; index++) {
        const msgpack_object *item = &txids->via.array.ptr [index];
        uint8_t where [CBUS_HASH_BYTES];
        uint32_t position;
        bool known = item->type == MSGPACK_OBJECT_BIN && item->via.bin.size == CBUS_HASH_BYTES
                  && cbus_chain_tx_where (self->chain, (const uint8_t *) item->via.bin.ptr,
                                          where, &position) == 0;
        if (known)
            msgpack_pack_true (&pk);
        else
            msgpack_pack_false (&pk);
    }
    s_send (self, request);
}

static void
s_handle_block_submit (s_chainstore_t *self, cbus_request_t *request)
{
    const uint8_t *data;
    size_t size;
    if (cbus_msg_get_bin (cbus_request_map (request), "block", &data, &size)) {
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "BLOCK.SUBMIT needs a block");
        return;
    }
    char reason [CBUS_REASON_MAX] = "";
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_code_t code;
    cbus_chain_result_t result = cbus_chain_submit (self->chain, data, size, hash, &code, reason);
    char hex [CBUS_HASH_HEX];
    cbus_hash_hex (hash, hex);
    if (result == CBUS_CHAIN_INVALID) {
        zsys_info ("block refused hash=%s code=%s reason=\"%s\"", hex, cbus_code_name (code), reason);
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, code, "%s", reason);
        return;
    }
    if (result == CBUS_CHAIN_FAILED) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_ERROR, code, "%s", reason);
        return;
    }
    cbus_chain_entry_t entry = {0};
    cbus_chain_entry (self->chain, hash, &entry);
    if (result == CBUS_CHAIN_CONNECTED) {
        //  Durable now: the batch was synced before submit returned.
        //  Blocks that left first (old tip down), then those that joined.
        for (size_t index = 0; index < cbus_chain_left_count (self->chain); index++)
            s_publish_block (self, CBUS_TOPIC_BLOCK_DISCONNECTED, cbus_chain_left (self->chain, index));
        for (size_t index = 0; index < cbus_chain_joined_count (self->chain); index++)
            s_publish_block (self, CBUS_TOPIC_BLOCK_CONNECTED, cbus_chain_joined (self->chain, index));
        zsys_info ("block connected height=%" PRIu64 " hash=%s txs=%zu", entry.height, hex,
                   cbus_block_tx_count (cbus_chain_joined (self->chain,
                                        cbus_chain_joined_count (self->chain) - 1)));
    }
    else
    if (result == CBUS_CHAIN_SIDE)
        zsys_info ("block stored on a side branch height=%" PRIu64 " hash=%s", entry.height, hex);
    msgpack_packer pk = cbus_packer_begin (&self->reply, 3);
    cbus_pack_kv_bin (&pk, "hash", hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "height", entry.height);
    cbus_pack_kv_str (&pk, "status", result == CBUS_CHAIN_CONNECTED ? "connected"
                                   : result == CBUS_CHAIN_DUPLICATE ? "duplicate" : "side");
    s_send (self, request);
}

//  Read an array of 32-byte hashes from a request (at most max); returns
//  the count, or -1 if the field is missing or malformed.
static int
s_get_hashes (const msgpack_object *map, const char *key, uint8_t (*hashes) [CBUS_HASH_BYTES],
              size_t max)
{
    const msgpack_object *list = cbus_msg_get (map, key);
    if (!list || list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size > max)
        return -1;
    for (uint32_t index = 0; index < list->via.array.size; index++) {
        const msgpack_object *item = &list->via.array.ptr [index];
        if (item->type != MSGPACK_OBJECT_BIN || item->via.bin.size != CBUS_HASH_BYTES)
            return -1;
        memcpy (hashes [index], item->via.bin.ptr, CBUS_HASH_BYTES);
    }
    return (int) list->via.array.size;
}

static void
s_handle_locator (s_chainstore_t *self, cbus_request_t *request)
{
    uint8_t hashes [CBUS_LOCATOR_MAX][CBUS_HASH_BYTES];
    size_t count = cbus_chain_locator (self->chain, hashes);
    msgpack_packer pk = cbus_packer_begin (&self->reply, 1);
    cbus_pack_str (&pk, "hashes");
    msgpack_pack_array (&pk, (uint32_t) count);
    for (size_t index = 0; index < count; index++) {
        msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
        msgpack_pack_bin_body (&pk, hashes [index], CBUS_HASH_BYTES);
    }
    s_send (self, request);
}

//  Most headers in one HEADERS answer, and most blocks asked at once.
#define S_HEADERS_MAX 2000
#define S_BLOCKS_MAX  500

static void
s_handle_headers (s_chainstore_t *self, cbus_request_t *request)
{
    uint8_t hashes [CBUS_LOCATOR_MAX][CBUS_HASH_BYTES];
    const msgpack_object *map = cbus_request_map (request);
    int count = s_get_hashes (map, "locator", hashes, CBUS_LOCATOR_MAX);
    uint64_t max = S_HEADERS_MAX;
    if (count < 0 || (cbus_msg_get (map, "max") && cbus_msg_get_u64 (map, "max", &max))) {
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID,
                          "HEADERS needs a locator of at most %d hashes", CBUS_LOCATOR_MAX);
        return;
    }
    if (max > S_HEADERS_MAX)
        max = S_HEADERS_MAX;
    uint64_t start = cbus_chain_fork_point (self->chain, (const uint8_t (*) [CBUS_HASH_BYTES]) hashes,
                                            (size_t) count) + 1;
    cbus_chain_entry_t tip;
    cbus_chain_tip (self->chain, &tip);
    uint64_t end = start + max - 1 < tip.height ? start + max - 1 : tip.height;
    msgpack_packer pk = cbus_packer_begin (&self->reply, 2);
    cbus_pack_kv_u64 (&pk, "start", start);
    cbus_pack_str (&pk, "headers");
    msgpack_pack_array (&pk, (uint32_t) (end >= start ? end - start + 1 : 0));
    for (uint64_t height = start; height <= end; height++) {
        uint8_t hash [CBUS_HASH_BYTES], bytes [CBUS_HEADER_BYTES];
        cbus_chain_entry_t entry = {0};
        if (cbus_chain_hash_at (self->chain, height, hash) || cbus_chain_entry (self->chain, hash, &entry))
            zsys_error ("active chain index broken at height=%" PRIu64, height);
        cbus_header_encode (&entry.header, bytes);
        msgpack_pack_bin (&pk, CBUS_HEADER_BYTES);
        msgpack_pack_bin_body (&pk, bytes, CBUS_HEADER_BYTES);
    }
    s_send (self, request);
}

static void
s_handle_blocks_have (s_chainstore_t *self, cbus_request_t *request)
{
    uint8_t (*hashes) [CBUS_HASH_BYTES] = malloc (S_HEADERS_MAX * CBUS_HASH_BYTES);
    int count = s_get_hashes (cbus_request_map (request), "hashes", hashes, S_HEADERS_MAX);
    if (count < 0)
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID,
                          "BLOCKS.HAVE needs at most %d hashes", S_HEADERS_MAX);
    else {
        msgpack_packer pk = cbus_packer_begin (&self->reply, 1);
        cbus_pack_str (&pk, "have");
        msgpack_pack_array (&pk, (uint32_t) count);
        for (int index = 0; index < count; index++) {
            cbus_chain_entry_t entry;
            if (cbus_chain_entry (self->chain, hashes [index], &entry) == 0)
                msgpack_pack_true (&pk);
            else
                msgpack_pack_false (&pk);
        }
        s_send (self, request);
    }
    free (hashes);
}

static void
s_handle_blocks_get (s_chainstore_t *self, cbus_request_t *request)
{
    uint8_t (*hashes) [CBUS_HASH_BYTES] = malloc (S_BLOCKS_MAX * CBUS_HASH_BYTES);
    const msgpack_object *map = cbus_request_map (request);
    int count = s_get_hashes (map, "hashes", hashes, S_BLOCKS_MAX);
    uint64_t max_bytes = 8 * 1024 * 1024;
    if (cbus_msg_get (map, "max_bytes"))
        cbus_msg_get_u64 (map, "max_bytes", &max_bytes);
    if (count < 0) {
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID,
                          "BLOCKS.GET needs at most %d hashes", S_BLOCKS_MAX);
        free (hashes);
        return;
    }
    //  Blocks we have, in the order asked, until the byte budget is spent.
    zlist_t *blocks = zlist_new ();
    size_t total = 0;
    for (int index = 0; index < count && (total == 0 || total < max_bytes); index++) {
        char *bytes = NULL;
        size_t size;
        if (cbus_chain_block_by_hash (self->chain, hashes [index], &bytes, &size) || !bytes)
            break;
        zlist_append (blocks, zframe_new (bytes, size));
        cbus_store_free (bytes);
        total += size;
    }
    msgpack_packer pk = cbus_packer_begin (&self->reply, 1);
    cbus_pack_str (&pk, "blocks");
    msgpack_pack_array (&pk, (uint32_t) zlist_size (blocks));
    zframe_t *frame;
    while ((frame = (zframe_t *) zlist_pop (blocks))) {
        msgpack_pack_bin (&pk, zframe_size (frame));
        msgpack_pack_bin_body (&pk, zframe_data (frame), zframe_size (frame));
        zframe_destroy (&frame);
    }
    zlist_destroy (&blocks);
    s_send (self, request);
    free (hashes);
}

//  Most entries in one HISTORY page.
#define S_HISTORY_MAX 100

//  The bytes of the transaction at a position of an active block
//  (caller frees), read without checking the block again: it was checked
//  when stored.
static uint8_t *
s_tx_at (s_chainstore_t *self, uint64_t height, uint32_t index, uint8_t block_hash [CBUS_HASH_BYTES],
         size_t *size_p)
{
    char *bytes = NULL;
    size_t size;
    uint8_t *tx = NULL;
    if (cbus_chain_hash_at (self->chain, height, block_hash)
    ||  cbus_chain_block_by_hash (self->chain, block_hash, &bytes, &size) || !bytes)
        return NULL;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    if (msgpack_unpack_next (&unpacked, bytes, size, &offset) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *txs = cbus_msg_get (&unpacked.data, "txs");
        if (txs && txs->type == MSGPACK_OBJECT_ARRAY && index < txs->via.array.size
        &&  txs->via.array.ptr [index].type == MSGPACK_OBJECT_BIN) {
            *size_p = txs->via.array.ptr [index].via.bin.size;
            tx = (uint8_t *) malloc (*size_p);
            memcpy (tx, txs->via.array.ptr [index].via.bin.ptr, *size_p);
        }
    }
    msgpack_unpacked_destroy (&unpacked);
    cbus_store_free (bytes);
    return tx;
}

static void
s_handle_history (s_chainstore_t *self, cbus_request_t *request)
{
    const msgpack_object *map = cbus_request_map (request);
    const char *name;
    size_t name_size;
    char kind = CBUS_HISTORY_USER;
    if (cbus_msg_get_str (map, "user", &name, &name_size)) {
        kind = CBUS_HISTORY_KEY;
        if (cbus_msg_get_str (map, "key", &name, &name_size)) {
            cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "HISTORY needs a user or a key");
            return;
        }
    }
    uint64_t limit = 20, before_height = UINT64_MAX, before_index = 0;
    cbus_msg_get_u64 (map, "limit", &limit);
    if (cbus_msg_get (map, "before_height")
    &&  (cbus_msg_get_u64 (map, "before_height", &before_height)
         || cbus_msg_get_u64 (map, "before_index", &before_index) || before_index > UINT32_MAX)) {
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID,
                          "HISTORY's cursor is before_height and before_index");
        return;
    }
    if (limit == 0 || limit > S_HISTORY_MAX)
        limit = limit ? S_HISTORY_MAX : 1;
    if (name_size == 0 || name_size > CBUS_TX_MAX_FIELD_BYTES || !cbus_utf8_valid (name, name_size)) {
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID,
                          "A user or key is 1 to %d bytes of UTF-8", CBUS_TX_MAX_FIELD_BYTES);
        return;
    }
    char *text = cbus_strdup_size (name, name_size);
    cbus_chain_history_t items [S_HISTORY_MAX + 1];
    //  One more than asked: whether there is a next page.
    size_t count = cbus_chain_history (self->chain, kind, text, before_height, (uint32_t) before_index,
                                       items, (size_t) limit + 1);
    free (text);
    bool more = count > limit;
    if (more)
        count = (size_t) limit;
    cbus_chain_entry_t tip;
    cbus_chain_tip (self->chain, &tip);
    msgpack_packer pk = cbus_packer_begin (&self->reply, 2);
    cbus_pack_str (&pk, "items");
    msgpack_pack_array (&pk, (uint32_t) count);
    for (size_t index = 0; index < count; index++) {
        uint8_t block_hash [CBUS_HASH_BYTES] = {0};
        size_t size = 0;
        uint8_t *tx = s_tx_at (self, items [index].height, items [index].index, block_hash, &size);
        msgpack_pack_map (&pk, 6);
        cbus_pack_kv_bin (&pk, "txid", items [index].txid, CBUS_HASH_BYTES);
        cbus_pack_kv_u64 (&pk, "height", items [index].height);
        cbus_pack_kv_u64 (&pk, "index", items [index].index);
        cbus_pack_kv_bin (&pk, "block_hash", block_hash, CBUS_HASH_BYTES);
        cbus_pack_kv_u64 (&pk, "confirmations", tip.height - items [index].height + 1);
        cbus_pack_kv_bin (&pk, "tx", tx ? tx : (const uint8_t *) "", size);
        free (tx);
    }
    cbus_pack_str (&pk, "next");
    if (more) {
        msgpack_pack_map (&pk, 2);
        cbus_pack_kv_u64 (&pk, "before_height", items [count - 1].height);
        cbus_pack_kv_u64 (&pk, "before_index", items [count - 1].index);
    }
    else
        msgpack_pack_nil (&pk);
    s_send (self, request);
}

static int
s_on_request (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    s_chainstore_t *self = (s_chainstore_t *) arg;
    cbus_request_t *request = cbus_request_recv (self->router);
    if (!request)
        return 0;
    const char *command = request->command;
    if (!request->decoded)
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "The body is not a msgpack map");
    else
    if (streq (command, CBUS_CMD_PING))
        cbus_service_pong (self->router, request, "chainstore");
    else
    if (streq (command, CBUS_CMD_TIP))
        s_handle_tip (self, request);
    else
    if (streq (command, CBUS_CMD_BLOCK_GET))
        s_handle_block_get (self, request);
    else
    if (streq (command, CBUS_CMD_CHAIN_PAGE))
        s_handle_chain_page (self, request);
    else
    if (streq (command, CBUS_CMD_TX_GET))
        s_handle_tx_get (self, request);
    else
    if (streq (command, CBUS_CMD_TX_KNOWN))
        s_handle_tx_known (self, request);
    else
    if (streq (command, CBUS_CMD_BLOCK_SUBMIT))
        s_handle_block_submit (self, request);
    else
    if (streq (command, CBUS_CMD_LOCATOR))
        s_handle_locator (self, request);
    else
    if (streq (command, CBUS_CMD_HEADERS))
        s_handle_headers (self, request);
    else
    if (streq (command, CBUS_CMD_BLOCKS_HAVE))
        s_handle_blocks_have (self, request);
    else
    if (streq (command, CBUS_CMD_BLOCKS_GET))
        s_handle_blocks_get (self, request);
    else
    if (streq (command, CBUS_CMD_HISTORY))
        s_handle_history (self, request);
    else
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "Unknown command %s", command);
    cbus_request_destroy (&request);
    return 0;
}

void
cbus_chainstore_actor (zsock_t *pipe, void *args)
{
    cbus_config_t *config = (cbus_config_t *) args;
    s_chainstore_t self = { .pipe = pipe };
    char reason [CBUS_REASON_MAX];
    char *endpoint = cbus_config_endpoint (config, "chainstore");
    char *bus = cbus_config_endpoint (config, "bus-in");
    char *path = cbus_config_path (config, "chain");
    zloop_t *loop = NULL;
    zsock_signal (pipe, 0);

    self.network = strdup (cbus_config_str (config, "node/network"));
    self.chain = cbus_chain_new (path, self.network,
                                 (uint32_t) cbus_config_int (config, "node/pow_bits"),
                                 (size_t) cbus_config_int (config, "chainstore/cache_mb"),
                                 (uint64_t) cbus_config_int (config, "chainstore/max_future_ms"),
                                 reason);
    if (!self.chain) {
        cbus_service_fail (pipe, "%s", reason);
        goto cleanup;
    }
    self.router = cbus_service_router (endpoint, CBUS_MSG_MAX_BYTES, reason);
    if (!self.router) {
        cbus_service_fail (pipe, "%s", reason);
        goto cleanup;
    }
    self.pub = cbus_pub_new (bus, "chainstore");
    assert (self.pub);
    loop = zloop_new ();
    //  Stop on $TERM from main only, not on a signal: see cbus_service.h.
    zloop_set_nonstop (loop, true);
    zloop_reader (loop, pipe, cbus_service_on_pipe, &self);
    zloop_reader (loop, self.router, s_on_request, &self);
    zloop_timer (loop, CBUS_HEARTBEAT_MS, 0, cbus_service_on_heartbeat, self.pub);
    cbus_chain_entry_t tip;
    char hex [CBUS_HASH_HEX];
    cbus_hash_hex (cbus_chain_tip (self.chain, &tip), hex);
    zsys_info ("chainstore ready height=%" PRIu64 " tip=%s endpoint=%s", tip.height, hex, endpoint);
    zloop_start (loop);
cleanup:
    zloop_destroy (&loop);
    zsock_destroy (&self.router);
    cbus_pub_destroy (&self.pub);
    cbus_chain_destroy (&self.chain);
    cbus_buf_free (&self.reply);
    cbus_buf_free (&self.event);
    free (self.network);
    zstr_free (&endpoint);
    zstr_free (&bus);
    zstr_free (&path);
}
