/*  =========================================================================
    cbus_chainstore_msgs - the bodies of the chainstore's messages
    =========================================================================
*/
#include "cbus_chainstore_msgs.h"

//  An array of at most max 32-byte hashes at key; the list is borrowed.
static int
s_hashes_parse (const msgpack_object *map, const char *key, size_t max,
                const msgpack_object **list_p)
{
    const msgpack_object *list = cbus_msg_get (map, key);
    if (!list || list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size > max)
        return -1;
    for (uint32_t index = 0; index < list->via.array.size; index++) {
        const msgpack_object *item = &list->via.array.ptr [index];
        if (item->type != MSGPACK_OBJECT_BIN || item->via.bin.size != CBUS_HASH_BYTES)
            return -1;
    }
    *list_p = list;
    return 0;
}

//  Hash index of a list s_hashes_parse accepted.
const uint8_t *
cbus_chainstore_hash_at (const msgpack_object *list, size_t index)
{
    return (const uint8_t *) list->via.array.ptr [index].via.bin.ptr;
}

//  Pack key: [bin] from a list of frames.
static void
s_pack_frames (msgpack_packer *pk, const char *key, zlist_t *frames)
{
    cbus_pack_str (pk, key);
    msgpack_pack_array (pk, (uint32_t) zlist_size (frames));
    for (zframe_t *frame = (zframe_t *) zlist_first (frames); frame;
         frame = (zframe_t *) zlist_next (frames)) {
        msgpack_pack_bin (pk, zframe_size (frame));
        msgpack_pack_bin_body (pk, zframe_data (frame), zframe_size (frame));
    }
}

//  Pack key: [bool].
static void
s_pack_bools (msgpack_packer *pk, const char *key, const bool *values, size_t count)
{
    cbus_pack_str (pk, key);
    msgpack_pack_array (pk, (uint32_t) count);
    for (size_t index = 0; index < count; index++)
        if (values [index])
            msgpack_pack_true (pk);
        else
            msgpack_pack_false (pk);
}

//  chain.block.connected and chain.block.disconnected
void
cbus_chainstore_block_event_pack (cbus_pub_t *pub, cbus_buf_t *buf, cbus_block_t *block,
                                  const uint8_t hash [CBUS_HASH_BYTES],
                                  const uint8_t work [CBUS_U256_BYTES])
{
    cbus_header_t *header = cbus_block_header (block);
    msgpack_packer pk;
    cbus_pub_begin (pub, &pk, buf, 7);
    cbus_pack_kv_bin (&pk, "hash", hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "height", header->height);
    cbus_pack_kv_bin (&pk, "prev_hash", header->prev_hash, CBUS_HASH_BYTES);
    cbus_pack_kv_bin (&pk, "merkle_root", header->merkle_root, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "time_ms", header->time_ms);
    cbus_pack_kv_bin (&pk, "work", work, CBUS_U256_BYTES);
    cbus_pack_str (&pk, "txids");
    size_t count = cbus_block_tx_count (block);
    msgpack_pack_array (&pk, (uint32_t) count);
    for (size_t index = 0; index < count; index++) {
        msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
        msgpack_pack_bin_body (&pk, cbus_tx_id (cbus_block_tx (block, index)), CBUS_HASH_BYTES);
    }
}

//  TIP reply
void
cbus_chainstore_tip_reply_pack (cbus_buf_t *buf, const cbus_chainstore_tip_reply_t *msg)
{
    msgpack_packer pk = cbus_packer_begin (buf, 7);
    cbus_pack_kv_u64 (&pk, "height", msg->entry->height);
    cbus_pack_kv_bin (&pk, "hash", msg->hash, CBUS_HASH_BYTES);
    cbus_pack_kv_bin (&pk, "work", msg->entry->work, CBUS_U256_BYTES);
    cbus_pack_kv_u64 (&pk, "time_ms", msg->entry->header.time_ms);
    cbus_pack_kv_str (&pk, "network", msg->network);
    cbus_pack_kv_bin (&pk, "genesis", msg->genesis, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "bits", msg->bits);
}

//  BLOCK.GET request
int
cbus_chainstore_block_get_parse (const msgpack_object *map, cbus_chainstore_block_get_t *msg)
{
    msg->by_height = cbus_msg_get_u64 (map, "height", &msg->height) == 0;
    return msg->by_height || cbus_msg_get_hash (map, "hash", msg->hash) == 0 ? 0 : -1;
}

//  BLOCK.GET reply
void
cbus_chainstore_block_reply_pack (cbus_buf_t *buf, const cbus_chainstore_block_reply_t *msg)
{
    msgpack_packer pk = cbus_packer_begin (buf, 4);
    cbus_pack_kv_bin (&pk, "block", msg->block, msg->size);
    cbus_pack_kv_u64 (&pk, "height", msg->height);
    cbus_pack_kv_bin (&pk, "hash", msg->hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "confirmations", msg->confirmations);
}

//  CHAIN.PAGE request
int
cbus_chainstore_chain_page_parse (const msgpack_object *map, cbus_chainstore_chain_page_t *msg)
{
    if (cbus_msg_get_u64 (map, "from", &msg->from) || cbus_msg_get_u64 (map, "to", &msg->to)
    ||  cbus_msg_get_u64 (map, "max_bytes", &msg->max_bytes) || msg->to < msg->from)
        return -1;
    return 0;
}

//  CHAIN.PAGE reply: the blocks (frames) and the height to ask next.
void
cbus_chainstore_chain_page_reply_pack (cbus_buf_t *buf, zlist_t *blocks, uint64_t next)
{
    msgpack_packer pk = cbus_packer_begin (buf, 2);
    s_pack_frames (&pk, "blocks", blocks);
    cbus_pack_kv_u64 (&pk, "next", next);
}

//  TX.GET request
int
cbus_chainstore_tx_get_parse (const msgpack_object *map, uint8_t txid [CBUS_HASH_BYTES])
{
    return cbus_msg_get_hash (map, "txid", txid);
}

//  TX.GET reply
void
cbus_chainstore_tx_reply_pack (cbus_buf_t *buf, const cbus_chainstore_tx_reply_t *msg)
{
    msgpack_packer pk = cbus_packer_begin (buf, 5);
    cbus_pack_kv_bin (&pk, "tx", msg->tx, msg->size);
    cbus_pack_kv_bin (&pk, "block_hash", msg->block_hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "height", msg->height);
    cbus_pack_kv_u64 (&pk, "index", msg->index);
    cbus_pack_kv_u64 (&pk, "confirmations", msg->confirmations);
}

//  TX.KNOWN request: the txids array (borrowed). An item that is not a
//  32-byte bin is answered false, not refused.
int
cbus_chainstore_tx_known_parse (const msgpack_object *map, const msgpack_object **txids_p)
{
    const msgpack_object *txids = cbus_msg_get (map, "txids");
    if (!txids || txids->type != MSGPACK_OBJECT_ARRAY)
        return -1;
    *txids_p = txids;
    return 0;
}

//  TX.KNOWN reply
void
cbus_chainstore_tx_known_reply_pack (cbus_buf_t *buf, const bool *known, size_t count)
{
    msgpack_packer pk = cbus_packer_begin (buf, 1);
    s_pack_bools (&pk, "known", known, count);
}

//  BLOCK.SUBMIT request: the block bytes (borrowed).
int
cbus_chainstore_block_submit_parse (const msgpack_object *map, const uint8_t **data_p, size_t *size_p)
{
    return cbus_msg_get_bin (map, "block", data_p, size_p);
}

//  BLOCK.SUBMIT reply; status is "connected", "duplicate" or "side".
void
cbus_chainstore_block_submit_reply_pack (cbus_buf_t *buf, const uint8_t hash [CBUS_HASH_BYTES],
                                         uint64_t height, const char *status)
{
    msgpack_packer pk = cbus_packer_begin (buf, 3);
    cbus_pack_kv_bin (&pk, "hash", hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "height", height);
    cbus_pack_kv_str (&pk, "status", status);
}

//  LOCATOR reply
void
cbus_chainstore_locator_reply_pack (cbus_buf_t *buf, uint8_t hashes [][CBUS_HASH_BYTES], size_t count)
{
    msgpack_packer pk = cbus_packer_begin (buf, 1);
    cbus_pack_str (&pk, "hashes");
    msgpack_pack_array (&pk, (uint32_t) count);
    for (size_t index = 0; index < count; index++) {
        msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
        msgpack_pack_bin_body (&pk, hashes [index], CBUS_HASH_BYTES);
    }
}

//  HEADERS request
int
cbus_chainstore_headers_parse (const msgpack_object *map, cbus_chainstore_headers_t *msg)
{
    const msgpack_object *list;
    msg->max = CBUS_CHAINSTORE_HEADERS_MAX;
    if (s_hashes_parse (map, "locator", CBUS_LOCATOR_MAX, &list)
    ||  (cbus_msg_get (map, "max") && cbus_msg_get_u64 (map, "max", &msg->max)))
        return -1;
    msg->count = list->via.array.size;
    for (size_t index = 0; index < msg->count; index++)
        memcpy (msg->locator [index], cbus_chainstore_hash_at (list, index), CBUS_HASH_BYTES);
    return 0;
}

//  HEADERS reply
void
cbus_chainstore_headers_reply_pack (cbus_buf_t *buf, uint64_t start, const cbus_header_t *headers,
                                    size_t count)
{
    msgpack_packer pk = cbus_packer_begin (buf, 2);
    cbus_pack_kv_u64 (&pk, "start", start);
    cbus_pack_str (&pk, "headers");
    msgpack_pack_array (&pk, (uint32_t) count);
    for (size_t index = 0; index < count; index++) {
        uint8_t bytes [CBUS_HEADER_BYTES];
        cbus_header_encode (&headers [index], bytes);
        msgpack_pack_bin (&pk, CBUS_HEADER_BYTES);
        msgpack_pack_bin_body (&pk, bytes, CBUS_HEADER_BYTES);
    }
}

//  BLOCKS.HAVE request: the hashes (borrowed).
int
cbus_chainstore_blocks_have_parse (const msgpack_object *map, const msgpack_object **hashes_p)
{
    return s_hashes_parse (map, "hashes", CBUS_CHAINSTORE_HEADERS_MAX, hashes_p);
}

//  BLOCKS.HAVE reply
void
cbus_chainstore_blocks_have_reply_pack (cbus_buf_t *buf, const bool *have, size_t count)
{
    msgpack_packer pk = cbus_packer_begin (buf, 1);
    s_pack_bools (&pk, "have", have, count);
}

//  BLOCKS.GET request
int
cbus_chainstore_blocks_get_parse (const msgpack_object *map, cbus_chainstore_blocks_get_t *msg)
{
    msg->max_bytes = CBUS_CHAINSTORE_BLOCKS_GET_BYTES;
    if (cbus_msg_get (map, "max_bytes") && cbus_msg_get_u64 (map, "max_bytes", &msg->max_bytes))
        return -1;
    return s_hashes_parse (map, "hashes", CBUS_CHAINSTORE_BLOCKS_MAX, &msg->hashes);
}

//  BLOCKS.GET reply
void
cbus_chainstore_blocks_get_reply_pack (cbus_buf_t *buf, zlist_t *blocks)
{
    msgpack_packer pk = cbus_packer_begin (buf, 1);
    s_pack_frames (&pk, "blocks", blocks);
}

//  HISTORY request: 0, or -1 with the refusal's reason.
int
cbus_chainstore_history_parse (const msgpack_object *map, cbus_chainstore_history_t *msg, char *reason)
{
    msg->kind = CBUS_HISTORY_USER;
    if (cbus_msg_get_str (map, "user", &msg->name, &msg->name_size)) {
        msg->kind = CBUS_HISTORY_KEY;
        if (cbus_msg_get_str (map, "key", &msg->name, &msg->name_size))
            return cbus_fail (reason, "HISTORY needs a user or a key");
    }
    msg->limit = 20;
    msg->before_height = UINT64_MAX;
    msg->before_index = 0;
    cbus_msg_get_u64 (map, "limit", &msg->limit);
    if (cbus_msg_get (map, "before_height")
    &&  (cbus_msg_get_u64 (map, "before_height", &msg->before_height)
         || cbus_msg_get_u64 (map, "before_index", &msg->before_index)
         || msg->before_index > UINT32_MAX))
        return cbus_fail (reason, "HISTORY's cursor is before_height and before_index");
    if (msg->limit == 0 || msg->limit > CBUS_CHAINSTORE_HISTORY_MAX)
        msg->limit = msg->limit ? CBUS_CHAINSTORE_HISTORY_MAX : 1;
    if (msg->name_size == 0 || msg->name_size > CBUS_TX_MAX_FIELD_BYTES
    ||  !cbus_utf8_valid (msg->name, msg->name_size))
        return cbus_fail (reason, "A user or key is 1 to %d bytes of UTF-8", CBUS_TX_MAX_FIELD_BYTES);
    return 0;
}

//  HISTORY reply; with more, next is the cursor after the last item.
void
cbus_chainstore_history_reply_pack (cbus_buf_t *buf, const cbus_chainstore_history_item_t *items,
                                    size_t count, bool more)
{
    msgpack_packer pk = cbus_packer_begin (buf, 2);
    cbus_pack_str (&pk, "items");
    msgpack_pack_array (&pk, (uint32_t) count);
    for (size_t index = 0; index < count; index++) {
        const cbus_chainstore_history_item_t *item = &items [index];
        msgpack_pack_map (&pk, 6);
        cbus_pack_kv_bin (&pk, "txid", item->where.txid, CBUS_HASH_BYTES);
        cbus_pack_kv_u64 (&pk, "height", item->where.height);
        cbus_pack_kv_u64 (&pk, "index", item->where.index);
        cbus_pack_kv_bin (&pk, "block_hash", item->block_hash, CBUS_HASH_BYTES);
        cbus_pack_kv_u64 (&pk, "confirmations", item->confirmations);
        cbus_pack_kv_bin (&pk, "tx", item->tx, item->size);
    }
    cbus_pack_str (&pk, "next");
    if (more) {
        msgpack_pack_map (&pk, 2);
        cbus_pack_kv_u64 (&pk, "before_height", items [count - 1].where.height);
        cbus_pack_kv_u64 (&pk, "before_index", items [count - 1].where.index);
    }
    else
        msgpack_pack_nil (&pk);
}
