/*  =========================================================================
    cbus_mempool_wire - the bytes of every message the mempool sends or
    reads, one small function each (docs/bus.md lists them), so that a
    shared definition of each message can take its place one at a time.
    =========================================================================
*/
#include "cbus_mempool_private.h"

//  TX.KNOWN {"txids": [bin32]}
void
cbus_mempool_pack_tx_known (cbus_buf_t *buf, const uint8_t *const *txids, size_t count)
{
    msgpack_packer pk = cbus_packer_begin (buf, 1);
    cbus_pack_str (&pk, "txids");
    msgpack_pack_array (&pk, (uint32_t) count);
    for (size_t index = 0; index < count; index++) {
        msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
        msgpack_pack_bin_body (&pk, txids [index], CBUS_HASH_BYTES);
    }
}

//  OK {"known": [bool]}, one per txid asked.
int
cbus_mempool_parse_tx_known (cbus_reply_t *reply, size_t count, bool *known)
{
    const msgpack_object *map = cbus_reply_ok (reply) ? cbus_reply_map (reply) : NULL;
    const msgpack_object *list = map ? cbus_msg_get (map, "known") : NULL;
    if (!list || list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size != count)
        return -1;
    for (size_t index = 0; index < count; index++)
        known [index] = list->via.array.ptr [index].type == MSGPACK_OBJECT_BOOLEAN
                     && list->via.array.ptr [index].via.boolean;
    return 0;
}

//  OK {"height", "hash" bin32, "time_ms", "bits", ...}
int
cbus_mempool_parse_tip (cbus_reply_t *reply, cbus_mempool_tip_t *tip)
{
    const msgpack_object *map = cbus_reply_ok (reply) ? cbus_reply_map (reply) : NULL;
    uint64_t bits;
    if (!map
    ||  cbus_msg_get_u64 (map, "height", &tip->height)
    ||  cbus_msg_get_hash (map, "hash", tip->hash)
    ||  cbus_msg_get_u64 (map, "time_ms", &tip->time_ms)
    ||  cbus_msg_get_u64 (map, "bits", &bits) || bits > UINT32_MAX)
        return -1;
    tip->bits = (uint32_t) bits;
    return 0;
}

//  HEADERS {"locator": [hash], "max": 0}: with one locator hash and no
//  header wanted, the reply's start says where the chains part.
void
cbus_mempool_pack_headers (cbus_buf_t *buf, const uint8_t hash [CBUS_HASH_BYTES])
{
    msgpack_packer pk = cbus_packer_begin (buf, 2);
    cbus_pack_str (&pk, "locator");
    msgpack_pack_array (&pk, 1);
    msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
    msgpack_pack_bin_body (&pk, hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "max", 0);
}

//  OK {"start", "headers"}
int
cbus_mempool_parse_headers (cbus_reply_t *reply, uint64_t *start)
{
    const msgpack_object *map = cbus_reply_ok (reply) ? cbus_reply_map (reply) : NULL;
    return map && cbus_msg_get_u64 (map, "start", start) == 0 ? 0 : -1;
}

//  BLOCK.GET {"hash": bin32}
void
cbus_mempool_pack_block_get (cbus_buf_t *buf, const uint8_t hash [CBUS_HASH_BYTES])
{
    msgpack_packer pk = cbus_packer_begin (buf, 1);
    cbus_pack_kv_bin (&pk, "hash", hash, CBUS_HASH_BYTES);
}

//  OK {"block": bin, "confirmations", ...}; bytes borrow from the reply.
int
cbus_mempool_parse_block_get (cbus_reply_t *reply, const uint8_t **bytes, size_t *size,
                              uint64_t *confirmations)
{
    const msgpack_object *map = cbus_reply_ok (reply) ? cbus_reply_map (reply) : NULL;
    return map && cbus_msg_get_bin (map, "block", bytes, size) == 0
        && cbus_msg_get_u64 (map, "confirmations", confirmations) == 0 ? 0 : -1;
}

//  chain.block.connected / .disconnected {"hash", "prev_hash",
//  "merkle_root", "height", "time_ms", "txids": [bin32], ...}
int
cbus_mempool_parse_block_event (cbus_event_t *event, cbus_mempool_block_event_t *block)
{
    const msgpack_object *map = cbus_event_map (event);
    if (!map)
        return -1;
    if (streq (event->topic, CBUS_TOPIC_BLOCK_CONNECTED))
        block->connected = true;
    else
    if (streq (event->topic, CBUS_TOPIC_BLOCK_DISCONNECTED))
        block->connected = false;
    else
        return -1;
    block->txids = cbus_msg_get (map, "txids");
    if (cbus_msg_get_hash (map, "hash", block->hash)
    ||  cbus_msg_get_hash (map, "prev_hash", block->prev)
    ||  cbus_msg_get_hash (map, "merkle_root", block->root)
    ||  cbus_msg_get_u64 (map, "height", &block->height)
    ||  cbus_msg_get_u64 (map, "time_ms", &block->time_ms) || block->height == 0
    ||  !block->txids || block->txids->type != MSGPACK_OBJECT_ARRAY)
        return -1;
    return 0;
}

//  TX.SUBMIT {"tx": bin}
int
cbus_mempool_parse_tx_submit (cbus_request_t *request, const uint8_t **bytes, size_t *size)
{
    return cbus_msg_get_bin (cbus_request_map (request), "tx", bytes, size);
}

//  TX.GET {"txid": bin32}
int
cbus_mempool_parse_tx_get (cbus_request_t *request, uint8_t txid [CBUS_HASH_BYTES])
{
    return cbus_msg_get_hash (cbus_request_map (request), "txid", txid);
}

//  TX.SUBMIT OK {"txid", "height", "duplicate", "confirmed"}
void
cbus_mempool_pack_tx_submit_ok (cbus_buf_t *buf, const uint8_t txid [CBUS_HASH_BYTES],
                                uint64_t height, bool duplicate, bool confirmed)
{
    msgpack_packer pk = cbus_packer_begin (buf, 4);
    cbus_pack_kv_bin (&pk, "txid", txid, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "height", height);
    cbus_pack_kv_bool (&pk, "duplicate", duplicate);
    cbus_pack_kv_bool (&pk, "confirmed", confirmed);
}

//  TX.GET OK {"tx", "received_ms"}
void
cbus_mempool_pack_tx_get_ok (cbus_buf_t *buf, const uint8_t *bytes, size_t size,
                             uint64_t received_ms)
{
    msgpack_packer pk = cbus_packer_begin (buf, 2);
    cbus_pack_kv_bin (&pk, "tx", bytes, size);
    cbus_pack_kv_u64 (&pk, "received_ms", received_ms);
}

//  MEMPOOL.INFO OK {"size", "bytes", "next_height"}
void
cbus_mempool_pack_info_ok (cbus_buf_t *buf, size_t size, size_t bytes, uint64_t next_height)
{
    msgpack_packer pk = cbus_packer_begin (buf, 3);
    cbus_pack_kv_u64 (&pk, "size", size);
    cbus_pack_kv_u64 (&pk, "bytes", bytes);
    cbus_pack_kv_u64 (&pk, "next_height", next_height);
}

//  MINE OK {"hash", "height"}
void
cbus_mempool_pack_mine_ok (cbus_buf_t *buf, const uint8_t hash [CBUS_HASH_BYTES],
                           uint64_t height)
{
    msgpack_packer pk = cbus_packer_begin (buf, 2);
    cbus_pack_kv_bin (&pk, "hash", hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "height", height);
}

//  mempool.tx.added {"txid", "size", "tx", "users": [str]}
void
cbus_mempool_pack_tx_added (cbus_pub_t *pub, cbus_buf_t *buf, cbus_tx_t *tx)
{
    msgpack_packer pk;
    cbus_pub_begin (pub, &pk, buf, 4);
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
}

//  mempool.tx.removed {"txid", "reason"}
void
cbus_mempool_pack_tx_removed (cbus_pub_t *pub, cbus_buf_t *buf,
                              const uint8_t txid [CBUS_HASH_BYTES], const char *reason)
{
    msgpack_packer pk;
    cbus_pub_begin (pub, &pk, buf, 2);
    cbus_pack_kv_bin (&pk, "txid", txid, CBUS_HASH_BYTES);
    cbus_pack_kv_str (&pk, "reason", reason);
}

//  miner.work {"job", "header" bin124, "txs": [bin]}
void
cbus_mempool_pack_work (cbus_pub_t *pub, cbus_buf_t *buf, uint64_t job,
                        const cbus_header_t *header, cbus_block_t *block)
{
    uint8_t header_bytes [CBUS_HEADER_BYTES];
    cbus_header_encode (header, header_bytes);
    msgpack_packer pk;
    cbus_pub_begin (pub, &pk, buf, 3);
    cbus_pack_kv_u64 (&pk, "job", job);
    cbus_pack_kv_bin (&pk, "header", header_bytes, sizeof (header_bytes));
    cbus_pack_str (&pk, "txs");
    msgpack_pack_array (&pk, (uint32_t) cbus_block_tx_count (block));
    for (size_t index = 0; index < cbus_block_tx_count (block); index++) {
        size_t size;
        const uint8_t *bytes = cbus_tx_bytes (cbus_block_tx (block, index), &size);
        msgpack_pack_bin (&pk, size);
        msgpack_pack_bin_body (&pk, bytes, size);
    }
}
