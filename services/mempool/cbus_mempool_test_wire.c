/*  =========================================================================
    cbus_mempool_test_wire - the wire bytes of before, for the self-test

    Each function packs a body as the mempool's hand-written packers did
    before the one definition per message (cbus_msgs.h), from the values
    the definition decoded, and asserts that the body received is those
    bytes exactly. The stand-in chainstore checks the requests the
    mempool sends it; the test checks its replies and events.
    =========================================================================
*/
#include "cbus_mempool_private.h"

static void
s_same_bytes (zframe_t *body, cbus_buf_t *hand)
{
    assert (body && zframe_size (body) == hand->size);
    assert (memcmp (zframe_data (body), hand->data, hand->size) == 0);
    cbus_buf_free (hand);
}

static void
s_pack_bin (msgpack_packer *pk, const void *data, size_t size)
{
    msgpack_pack_bin (pk, size);
    msgpack_pack_bin_body (pk, data, size);
}

//  The envelope every event starts with: "src", then the publisher's
//  "boot" (read back: it is the process's start time), then its
//  "topic_seq" (issue 11; read back too).
static msgpack_packer
s_event_begin (cbus_event_t *event, cbus_buf_t *hand, uint32_t fields)
{
    uint64_t boot, topic_seq;
    assert (cbus_msg_get_u64 (cbus_event_map (event), "boot", &boot) == 0);
    assert (cbus_msg_get_u64 (cbus_event_map (event), "topic_seq", &topic_seq) == 0);
    msgpack_packer pk = cbus_packer_begin (hand, fields + 3);
    cbus_pack_kv_str (&pk, "src", "mempool");
    cbus_pack_kv_u64 (&pk, "boot", boot);
    cbus_pack_kv_u64 (&pk, "topic_seq", topic_seq);
    return pk;
}

//  --------------------------------------------------------------------------
//  Requests to the chainstore

void
cbus_mempool_test_old_tip (cbus_request_t *request)
{
    //  No body was sent: cbus_request_send sends an empty map.
    cbus_buf_t hand = {0};
    cbus_packer_begin (&hand, 0);
    s_same_bytes (request->body, &hand);
}

void
cbus_mempool_test_old_tx_known (cbus_request_t *request, const cbus_tx_known_t *msg)
{
    cbus_buf_t hand = {0};
    msgpack_packer pk = cbus_packer_begin (&hand, 1);
    cbus_pack_str (&pk, "txids");
    msgpack_pack_array (&pk, msg->txids.count);
    for (uint32_t index = 0; index < msg->txids.count; index++)
        s_pack_bin (&pk, cbus_list_hash (&msg->txids, index), CBUS_HASH_BYTES);
    s_same_bytes (request->body, &hand);
}

void
cbus_mempool_test_old_headers (cbus_request_t *request, const cbus_headers_t *msg)
{
    assert (msg->locator.count == 1 && msg->has_max && msg->max == 0);
    cbus_buf_t hand = {0};
    msgpack_packer pk = cbus_packer_begin (&hand, 2);
    cbus_pack_str (&pk, "locator");
    msgpack_pack_array (&pk, 1);
    s_pack_bin (&pk, cbus_list_hash (&msg->locator, 0), CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "max", 0);
    s_same_bytes (request->body, &hand);
}

void
cbus_mempool_test_old_block_get (cbus_request_t *request, const cbus_block_get_t *msg)
{
    assert (msg->has_hash && !msg->has_height);
    cbus_buf_t hand = {0};
    msgpack_packer pk = cbus_packer_begin (&hand, 1);
    cbus_pack_kv_bin (&pk, "hash", msg->hash, CBUS_HASH_BYTES);
    s_same_bytes (request->body, &hand);
}

//  --------------------------------------------------------------------------
//  Replies

void
cbus_mempool_test_old_tx_submit_reply (cbus_reply_t *reply, const cbus_tx_submit_reply_t *msg)
{
    cbus_buf_t hand = {0};
    msgpack_packer pk = cbus_packer_begin (&hand, 4);
    cbus_pack_kv_bin (&pk, "txid", msg->txid, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "height", msg->height);
    cbus_pack_kv_bool (&pk, "duplicate", msg->duplicate);
    cbus_pack_kv_bool (&pk, "confirmed", msg->confirmed);
    s_same_bytes (reply->body, &hand);
}

void
cbus_mempool_test_old_tx_get_reply (cbus_reply_t *reply, const cbus_pool_tx_reply_t *msg)
{
    cbus_buf_t hand = {0};
    msgpack_packer pk = cbus_packer_begin (&hand, 2);
    cbus_pack_kv_bin (&pk, "tx", msg->tx.data, msg->tx.size);
    cbus_pack_kv_u64 (&pk, "received_ms", msg->received_ms);
    s_same_bytes (reply->body, &hand);
}

void
cbus_mempool_test_old_info_reply (cbus_reply_t *reply, const cbus_mempool_info_reply_t *msg)
{
    cbus_buf_t hand = {0};
    msgpack_packer pk = cbus_packer_begin (&hand, 3);
    cbus_pack_kv_u64 (&pk, "size", msg->size);
    cbus_pack_kv_u64 (&pk, "bytes", msg->bytes);
    cbus_pack_kv_u64 (&pk, "next_height", msg->next_height);
    s_same_bytes (reply->body, &hand);
}

void
cbus_mempool_test_old_mine_reply (cbus_reply_t *reply, const cbus_mine_reply_t *msg)
{
    cbus_buf_t hand = {0};
    msgpack_packer pk = cbus_packer_begin (&hand, 2);
    cbus_pack_kv_bin (&pk, "hash", msg->hash, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "height", msg->height);
    s_same_bytes (reply->body, &hand);
}

//  --------------------------------------------------------------------------
//  Events

void
cbus_mempool_test_old_tx_added (cbus_event_t *event, const cbus_tx_added_t *msg)
{
    cbus_buf_t hand = {0};
    //  received_ms came after the hand-written packers (issue 12).
    msgpack_packer pk = s_event_begin (event, &hand, msg->has_received_ms ? 5 : 4);
    cbus_pack_kv_bin (&pk, "txid", msg->txid, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "size", msg->tx.size);
    cbus_pack_kv_bin (&pk, "tx", msg->tx.data, msg->tx.size);
    cbus_pack_str (&pk, "users");
    msgpack_pack_array (&pk, msg->users.count);
    for (uint32_t index = 0; index < msg->users.count; index++) {
        cbus_str_t user = cbus_list_str (&msg->users, index);
        msgpack_pack_str (&pk, user.size);
        msgpack_pack_str_body (&pk, user.data, user.size);
    }
    if (msg->has_received_ms)
        cbus_pack_kv_u64 (&pk, "received_ms", msg->received_ms);
    s_same_bytes (event->body, &hand);
}

void
cbus_mempool_test_old_tx_removed (cbus_event_t *event, const cbus_tx_removed_t *msg)
{
    assert (cbus_str_eq (msg->reason, "mined"));
    cbus_buf_t hand = {0};
    msgpack_packer pk = s_event_begin (event, &hand, 2);
    cbus_pack_kv_bin (&pk, "txid", msg->txid, CBUS_HASH_BYTES);
    cbus_pack_kv_str (&pk, "reason", "mined");
    s_same_bytes (event->body, &hand);
}

void
cbus_mempool_test_old_work (cbus_event_t *event, const cbus_miner_work_t *msg)
{
    cbus_buf_t hand = {0};
    msgpack_packer pk = s_event_begin (event, &hand, 3);
    cbus_pack_kv_u64 (&pk, "job", msg->job);
    cbus_pack_kv_bin (&pk, "header", msg->header, CBUS_HEADER_BYTES);
    cbus_pack_str (&pk, "txs");
    msgpack_pack_array (&pk, msg->txs.count);
    for (uint32_t index = 0; index < msg->txs.count; index++) {
        cbus_bytes_t tx = cbus_list_bytes (&msg->txs, index);
        s_pack_bin (&pk, tx.data, tx.size);
    }
    s_same_bytes (event->body, &hand);
}
