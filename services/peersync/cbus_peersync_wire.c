/*  =========================================================================
    cbus_peersync_wire - the peer messages, each packed and parsed once

    One small function per message and direction (docs/p2p.md lists the
    fields), so that the day the message definitions move to libcommon
    each can be swapped for its generated pair. Field order on the wire is
    the order packed here.
    =========================================================================
*/
#include "cbus_peersync_private.h"

static void
s_pack_tip (msgpack_packer *pk, const peersync_tip_t *tip)
{
    cbus_pack_kv_u64 (pk, "height", tip->height);
    cbus_pack_kv_bin (pk, "work", tip->work, CBUS_U256_BYTES);
    cbus_pack_kv_bin (pk, "tip", tip->tip, CBUS_HASH_BYTES);
}

static int
s_parse_tip (peersync_tip_t *tip, const msgpack_object *map)
{
    return cbus_msg_get_u64 (map, "height", &tip->height)
        || cbus_msg_get_hash (map, "work", tip->work)
        || cbus_msg_get_hash (map, "tip", tip->tip) ? -1 : 0;
}

//  A string field of exactly size bytes, or any size below max when
//  size is 0, all of it printable ASCII without spaces (ids, keys and
//  endpoints: they reach logs and GET /nodes).
static int
s_get_sized (const msgpack_object *map, const char *key, size_t size, size_t max,
             const char **text, size_t *text_size)
{
    size_t got;
    if (cbus_msg_get_str (map, key, text, &got)
    ||  (size && got != size) || (!size && got >= max))
        return -1;
    for (size_t index = 0; index < got; index++)
        if ((*text) [index] <= ' ' || (*text) [index] > '~')
            return -1;
    if (text_size)
        *text_size = got;
    return 0;
}

void
peersync_hello_pack (const peersync_hello_t *hello, cbus_buf_t *body)
{
    msgpack_packer pk = cbus_packer_begin (body, 10);
    cbus_pack_kv_bool (&pk, "reply", hello->reply);
    cbus_pack_kv_u64 (&pk, "version", hello->version);
    cbus_pack_str (&pk, "network");
    msgpack_pack_str (&pk, hello->network_size);
    msgpack_pack_str_body (&pk, hello->network, hello->network_size);
    cbus_pack_kv_bin (&pk, "genesis", hello->genesis, CBUS_HASH_BYTES);
    cbus_pack_str (&pk, "node_id");
    msgpack_pack_str (&pk, 16);
    msgpack_pack_str_body (&pk, hello->node_id, 16);
    cbus_pack_str (&pk, "public_key");
    msgpack_pack_str (&pk, 40);
    msgpack_pack_str_body (&pk, hello->public_key, 40);
    cbus_pack_str (&pk, "endpoint");
    msgpack_pack_str (&pk, hello->endpoint_size);
    msgpack_pack_str_body (&pk, hello->endpoint, hello->endpoint_size);
    s_pack_tip (&pk, &hello->tip);
}

//  version is optional (absent: CBUS_P2P_VERSION), reply too (false).
int
peersync_hello_parse (peersync_hello_t *hello, const msgpack_object *map)
{
    memset (hello, 0, sizeof (*hello));
    hello->version = CBUS_P2P_VERSION;
    if (cbus_msg_get (map, "version") && cbus_msg_get_u64 (map, "version", &hello->version))
        return -1;
    cbus_msg_get_bool (map, "reply", &hello->reply);
    //  A network id of any length parses: a long one is simply not ours.
    return cbus_msg_get_str (map, "network", &hello->network, &hello->network_size)
        || cbus_msg_get_hash (map, "genesis", hello->genesis)
        || s_get_sized (map, "node_id", 16, 0, &hello->node_id, NULL)
        || s_get_sized (map, "public_key", 40, 0, &hello->public_key, NULL)
        || s_get_sized (map, "endpoint", 0, CBUS_PEER_ADDRESS_MAX,
                        &hello->endpoint, &hello->endpoint_size)
        || s_parse_tip (&hello->tip, map) ? -1 : 0;
}

void
peersync_status_pack (const peersync_status_t *status, cbus_buf_t *body)
{
    msgpack_packer pk = cbus_packer_begin (body, 4);
    s_pack_tip (&pk, &status->tip);
    cbus_pack_kv_bool (&pk, "reply", status->reply);
}

int
peersync_status_parse (peersync_status_t *status, const msgpack_object *map)
{
    memset (status, 0, sizeof (*status));
    cbus_msg_get_bool (map, "reply", &status->reply);
    return s_parse_tip (&status->tip, map);
}

//  REJECT {"reason", "code"}: the code is new in this version; a peer
//  that sends none gets CBUS_CODE_INTERNAL, an unknown one too.
void
peersync_reject_pack (cbus_code_t code, const char *reason, cbus_buf_t *body)
{
    msgpack_packer pk = cbus_packer_begin (body, 2);
    cbus_pack_kv_str (&pk, "reason", reason);
    cbus_pack_kv_str (&pk, "code", cbus_code_name (code));
}

int
peersync_reject_parse (peersync_reject_t *reject, const msgpack_object *map)
{
    memset (reject, 0, sizeof (*reject));
    reject->reason = "";
    reject->code = CBUS_CODE_INTERNAL;
    const char *name;
    size_t size;
    if (cbus_msg_get_str (map, "code", &name, &size) == 0)
        reject->code = cbus_code_from_name (name, size);
    cbus_msg_get_str (map, "reason", &reject->reason, &reject->reason_size);
    return 0;
}

void
peersync_info_pack (const peersync_info_t *info, cbus_buf_t *body)
{
    msgpack_packer pk = cbus_packer_begin (body, 5);
    cbus_pack_str (&pk, "network");
    msgpack_pack_str (&pk, info->network_size);
    msgpack_pack_str_body (&pk, info->network, info->network_size);
    cbus_pack_kv_bin (&pk, "genesis", info->genesis, CBUS_HASH_BYTES);
    cbus_pack_str (&pk, "node_id");
    msgpack_pack_str (&pk, info->node_id_size);
    msgpack_pack_str_body (&pk, info->node_id, info->node_id_size);
    cbus_pack_str (&pk, "public_key");
    msgpack_pack_str (&pk, info->public_key_size);
    msgpack_pack_str_body (&pk, info->public_key, info->public_key_size);
    cbus_pack_str (&pk, "endpoint");
    msgpack_pack_str (&pk, info->endpoint_size);
    msgpack_pack_str_body (&pk, info->endpoint, info->endpoint_size);
}

//  node_id is not needed to link and may be absent.
int
peersync_info_parse (peersync_info_t *info, const msgpack_object *map)
{
    memset (info, 0, sizeof (*info));
    info->node_id = "";
    cbus_msg_get_str (map, "node_id", &info->node_id, &info->node_id_size);
    return s_get_sized (map, "network", 0, PEERSYNC_NETWORK_MAX, &info->network, &info->network_size)
        || s_get_sized (map, "public_key", 40, 0, &info->public_key, &info->public_key_size)
        || s_get_sized (map, "endpoint", 0, CBUS_PEER_ADDRESS_MAX, &info->endpoint, &info->endpoint_size)
        || cbus_msg_get_hash (map, "genesis", info->genesis) ? -1 : 0;
}

void
peersync_block_pack (const void *data, size_t size, cbus_buf_t *body)
{
    msgpack_packer pk = cbus_packer_begin (body, 1);
    cbus_pack_kv_bin (&pk, "block", data, size);
}

int
peersync_block_parse (const msgpack_object *map, const uint8_t **data, size_t *size)
{
    return cbus_msg_get_bin (map, "block", data, size);
}

void
peersync_getheaders_pack (const uint8_t *first, const cbus_list_t *locator, uint64_t max,
                          cbus_buf_t *body)
{
    msgpack_packer pk = cbus_packer_begin (body, 2);
    cbus_pack_str (&pk, "locator");
    uint32_t room = first ? CBUS_LOCATOR_MAX - 1 : CBUS_LOCATOR_MAX;
    uint32_t count = locator->count < room ? locator->count : room;
    msgpack_pack_array (&pk, count + (first ? 1 : 0));
    if (first) {
        msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
        msgpack_pack_bin_body (&pk, first, CBUS_HASH_BYTES);
    }
    for (uint32_t index = 0; index < count; index++) {
        msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
        msgpack_pack_bin_body (&pk, cbus_list_hash (locator, index), CBUS_HASH_BYTES);
    }
    cbus_pack_kv_u64 (&pk, "max", max);
}

//  A list of bins: a decoded list's items, as they came.
static void
s_pack_bins (msgpack_packer *pk, const char *key, const cbus_list_t *list)
{
    cbus_pack_str (pk, key);
    msgpack_pack_array (pk, list->count);
    for (uint32_t index = 0; index < list->count; index++) {
        cbus_bytes_t item = cbus_list_bytes (list, index);
        msgpack_pack_bin (pk, item.size);
        msgpack_pack_bin_body (pk, item.data, item.size);
    }
}

void
peersync_headers_pack (uint64_t start, const cbus_list_t *headers, cbus_buf_t *body)
{
    msgpack_packer pk = cbus_packer_begin (body, 2);
    cbus_pack_kv_u64 (&pk, "start", start);
    s_pack_bins (&pk, "headers", headers);
}

void
peersync_blocks_pack (const cbus_list_t *blocks, cbus_buf_t *body)
{
    msgpack_packer pk = cbus_packer_begin (body, 1);
    s_pack_bins (&pk, "blocks", blocks);
}

void
peersync_getblocks_pack (const uint8_t (*hashes) [CBUS_HASH_BYTES], size_t count,
                         uint64_t max_bytes, cbus_buf_t *body)
{
    msgpack_packer pk = cbus_packer_begin (body, 2);
    cbus_pack_str (&pk, "hashes");
    msgpack_pack_array (&pk, (uint32_t) count);
    for (size_t index = 0; index < count; index++) {
        msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
        msgpack_pack_bin_body (&pk, hashes [index], CBUS_HASH_BYTES);
    }
    cbus_pack_kv_u64 (&pk, "max_bytes", max_bytes);
}

//  An array field of at most max items.
static const msgpack_object *
s_array_get (const msgpack_object *map, const char *key, uint32_t max)
{
    const msgpack_object *array = cbus_msg_get (map, key);
    return array && array->type == MSGPACK_OBJECT_ARRAY && array->via.array.size <= max
         ? array : NULL;
}

//  GETHEADERS and GETBLOCKS: a list of at most max_items 32-byte hashes,
//  and the limit lowered to what the peer asked for.
static int
s_parse_list_request (const msgpack_object *map, const char *list_key, uint32_t max_items,
                      const char *limit_key, const msgpack_object **list, uint64_t *limit)
{
    *list = s_array_get (map, list_key, max_items);
    if (!*list)
        return -1;
    for (uint32_t index = 0; index < (*list)->via.array.size; index++) {
        const msgpack_object *item = &(*list)->via.array.ptr [index];
        if (item->type != MSGPACK_OBJECT_BIN || item->via.bin.size != CBUS_HASH_BYTES)
            return -1;
    }
    uint64_t asked;
    if (cbus_msg_get_u64 (map, limit_key, &asked) == 0 && asked < *limit)
        *limit = asked;
    return 0;
}

int
peersync_getheaders_parse (const msgpack_object *map, const msgpack_object **locator,
                           uint64_t *max)
{
    return s_parse_list_request (map, "locator", CBUS_LOCATOR_MAX, "max", locator, max);
}

int
peersync_getblocks_parse (const msgpack_object *map, const msgpack_object **hashes,
                          uint64_t *max_bytes)
{
    return s_parse_list_request (map, "hashes", PEERSYNC_BLOCKS_BATCH, "max_bytes", hashes,
                                 max_bytes);
}

static const void *
s_hash_item (const void *source, uint32_t index, size_t *size)
{
    *size = CBUS_HASH_BYTES;
    return ((const msgpack_object *) source)->via.array.ptr [index].via.bin.ptr;
}

cbus_list_t
peersync_hash_list (const msgpack_object *hashes)
{
    cbus_list_t list = { .count = hashes->via.array.size, .item = s_hash_item, .source = hashes };
    return list;
}

void
peersync_tx_add (cbus_buf_t *txs, const uint8_t *data, size_t size)
{
    msgpack_packer pk;
    cbus_packer_init (&pk, txs);
    msgpack_pack_bin (&pk, size);
    msgpack_pack_bin_body (&pk, data, size);
}

void
peersync_tx_pack (const cbus_buf_t *txs, size_t count, cbus_buf_t *body)
{
    msgpack_packer pk = cbus_packer_begin (body, 1);
    cbus_pack_str (&pk, "txs");
    msgpack_pack_array (&pk, (uint32_t) count);
    cbus_buf_append (body, txs->data, txs->size);
}

const msgpack_object *
peersync_tx_parse (const msgpack_object *map)
{
    return s_array_get (map, "txs", PEERSYNC_TX_MAX);
}

const msgpack_object *
peersync_headers_parse (const msgpack_object *map)
{
    return s_array_get (map, "headers", PEERSYNC_HEADERS_BATCH);
}

const msgpack_object *
peersync_blocks_parse (const msgpack_object *map, uint32_t max)
{
    return s_array_get (map, "blocks", max);
}

//  --------------------------------------------------------------------------
//  Pending transactions when nodes link: MEMPOOL, INV, GETTXS, TXS

void
peersync_mempool_pack (uint64_t after, cbus_buf_t *body)
{
    msgpack_packer pk = cbus_packer_begin (body, 1);
    cbus_pack_kv_u64 (&pk, "after", after);
}

int
peersync_mempool_parse (const msgpack_object *map, uint64_t *after)
{
    return cbus_msg_get_u64 (map, "after", after);
}

void
peersync_inv_pack (const cbus_list_t *txids, uint64_t next, bool more, cbus_buf_t *body)
{
    msgpack_packer pk = cbus_packer_begin (body, 3);
    s_pack_bins (&pk, "txids", txids);
    cbus_pack_kv_u64 (&pk, "next", next);
    cbus_pack_kv_bool (&pk, "more", more);
}

//  A list of at most max 32-byte bins under key, or NULL.
static const msgpack_object *
s_hashes_get (const msgpack_object *map, const char *key, uint32_t max)
{
    const msgpack_object *list = s_array_get (map, key, max);
    for (uint32_t index = 0; list && index < list->via.array.size; index++) {
        const msgpack_object *item = &list->via.array.ptr [index];
        if (item->type != MSGPACK_OBJECT_BIN || item->via.bin.size != CBUS_HASH_BYTES)
            return NULL;
    }
    return list;
}

int
peersync_inv_parse (const msgpack_object *map, const msgpack_object **txids, uint64_t *next,
                    bool *more)
{
    *txids = s_hashes_get (map, "txids", PEERSYNC_INV_MAX);
    return !*txids || cbus_msg_get_u64 (map, "next", next)
        || cbus_msg_get_bool (map, "more", more) ? -1 : 0;
}

void
peersync_gettxs_pack (const uint8_t (*txids) [CBUS_HASH_BYTES], size_t count, cbus_buf_t *body)
{
    msgpack_packer pk = cbus_packer_begin (body, 1);
    cbus_pack_str (&pk, "txids");
    msgpack_pack_array (&pk, (uint32_t) count);
    for (size_t index = 0; index < count; index++) {
        msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
        msgpack_pack_bin_body (&pk, txids [index], CBUS_HASH_BYTES);
    }
}

const msgpack_object *
peersync_gettxs_parse (const msgpack_object *map)
{
    return s_hashes_get (map, "txids", PEERSYNC_GETTXS_MAX);
}

void
peersync_txs_pack (const cbus_list_t *txs, cbus_buf_t *body)
{
    msgpack_packer pk = cbus_packer_begin (body, 1);
    s_pack_bins (&pk, "txs", txs);
}

//  --------------------------------------------------------------------------
//  Self test: each message comes back as it went, and refusals blame by
//  their code alone.

static msgpack_object *
s_test_decode (msgpack_unpacked *unpacked, const cbus_buf_t *body)
{
    msgpack_unpacked_destroy (unpacked);
    msgpack_unpacked_init (unpacked);
    size_t offset = 0;
    assert (msgpack_unpack_next (unpacked, body->data, body->size, &offset) == MSGPACK_UNPACK_SUCCESS);
    assert (offset == body->size && unpacked->data.type == MSGPACK_OBJECT_MAP);
    return &unpacked->data;
}

//  The pending messages come back as they went; INV and TXS are packed
//  from the mempool's decoded replies, with the bytes they held.
static void
s_test_pending (msgpack_unpacked *unpacked, cbus_buf_t *body)
{
    peersync_mempool_pack (77, body);
    uint64_t after = 0, next = 0;
    assert (peersync_mempool_parse (s_test_decode (unpacked, body), &after) == 0 && after == 77);
    uint8_t txids [3][CBUS_HASH_BYTES] = { { 1 }, { 2 }, { 3 } };
    cbus_buf_t reply_body = {0};
    msgpack_unpacked reply_unpacked;
    msgpack_unpacked_init (&reply_unpacked);
    cbus_tx_pending_reply_t pending = {
        .txids = { .count = 3, .items = txids }, .next = 9, .more = true
    }, decoded;
    char reason [CBUS_REASON_MAX];
    cbus_tx_pending_reply_encode (&pending, &reply_body);
    assert (cbus_tx_pending_reply_decode (s_test_decode (&reply_unpacked, &reply_body), &decoded,
                                          reason) == 0);
    peersync_inv_pack (&decoded.txids, decoded.next, decoded.more, body);
    const msgpack_object *got;
    bool more = false;
    assert (peersync_inv_parse (s_test_decode (unpacked, body), &got, &next, &more) == 0);
    assert (got->via.array.size == 3 && next == 9 && more);
    assert (got->via.array.ptr [2].via.bin.ptr [0] == 3);
    peersync_gettxs_pack ((const uint8_t (*) [CBUS_HASH_BYTES]) txids, 2, body);
    got = peersync_gettxs_parse (s_test_decode (unpacked, body));
    assert (got && got->via.array.size == 2);
    //  A txid of another size is malformed; so is an INV without "more".
    msgpack_packer pk = cbus_packer_begin (body, 1);
    cbus_pack_str (&pk, "txids");
    msgpack_pack_array (&pk, 1);
    msgpack_pack_bin (&pk, 3);
    msgpack_pack_bin_body (&pk, "abc", 3);
    assert (peersync_gettxs_parse (s_test_decode (unpacked, body)) == NULL);
    pk = cbus_packer_begin (body, 2);
    s_pack_bins (&pk, "txids", &decoded.txids);
    cbus_pack_kv_u64 (&pk, "next", 1);
    assert (peersync_inv_parse (s_test_decode (unpacked, body), &got, &next, &more) == -1);
    //  TXS reads as TX does.
    cbus_bytes_t txs [1] = { { (const uint8_t *) "tx", 2 } };
    cbus_txs_get_reply_t fetched = { .txs = { .count = 1, .items = txs } }, fetched_back;
    cbus_txs_get_reply_encode (&fetched, &reply_body);
    assert (cbus_txs_get_reply_decode (s_test_decode (&reply_unpacked, &reply_body),
                                       &fetched_back, reason) == 0);
    peersync_txs_pack (&fetched_back.txs, body);
    got = peersync_tx_parse (s_test_decode (unpacked, body));
    assert (got && got->via.array.size == 1 && got->via.array.ptr [0].via.bin.size == 2);
    msgpack_unpacked_destroy (&reply_unpacked);
    cbus_buf_free (&reply_body);
}

static void
s_test_refusals (void)
{
    //  Consensus refusals blame the peer; our own failures never do.
    cbus_code_t blamed [] = { CBUS_CODE_BAD_POW, CBUS_CODE_BAD_MERKLE_ROOT, CBUS_CODE_BAD_BITS,
                              CBUS_CODE_BAD_HEIGHT, CBUS_CODE_BAD_TIME, CBUS_CODE_MALFORMED,
                              CBUS_CODE_CONFIRMED, CBUS_CODE_DUPLICATE, CBUS_CODE_TOO_LARGE };
    for (size_t index = 0; index < sizeof (blamed) / sizeof (blamed [0]); index++) {
        assert (peersync_refusal_blames_peer (blamed [index]));
        assert (!peersync_refusal_is_local (blamed [index]));
    }
    cbus_code_t local [] = { CBUS_CODE_UNAVAILABLE, CBUS_CODE_STORAGE, CBUS_CODE_INTERNAL };
    for (size_t index = 0; index < sizeof (local) / sizeof (local [0]); index++) {
        assert (!peersync_refusal_blames_peer (local [index]));
        assert (peersync_refusal_is_local (local [index]));
    }
    assert (!peersync_refusal_blames_peer (CBUS_CODE_ORPHAN));
    assert (!peersync_refusal_blames_peer (CBUS_CODE_OK));
    assert (!peersync_refusal_is_local (CBUS_CODE_INVALID));
}

//  GETHEADERS, GETBLOCKS and their answers, between the peer and the
//  chainstore's messages: what the peer is sent is what the chainstore
//  answered, byte for byte, as when its reply was forwarded unchanged.
static void
s_test_lists (void)
{
    cbus_buf_t body = {0}, reply = {0};
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    const msgpack_object *list;
    uint64_t limit = 4000;
    char reason [CBUS_REASON_MAX];

    //  A hash of another size is malformed, and so is a locator too long.
    msgpack_packer pk = cbus_packer_begin (&body, 1);
    cbus_pack_str (&pk, "hashes");
    msgpack_pack_array (&pk, 1);
    msgpack_pack_bin (&pk, 3);
    msgpack_pack_bin_body (&pk, "abc", 3);
    assert (peersync_getblocks_parse (s_test_decode (&unpacked, &body), &list, &limit) == -1);
    uint8_t rows [CBUS_LOCATOR_MAX + 1][CBUS_HASH_BYTES];
    for (size_t index = 0; index <= CBUS_LOCATOR_MAX; index++)
        memset (rows [index], (int) index, CBUS_HASH_BYTES);
    cbus_headers_t headers = { .locator = { .count = CBUS_LOCATOR_MAX + 1, .items = rows },
                               .max = 10, .has_max = true };
    cbus_headers_encode (&headers, &body);
    assert (peersync_getheaders_parse (s_test_decode (&unpacked, &body), &list, &limit) == -1);
    headers.locator.count = CBUS_LOCATOR_MAX;
    cbus_headers_encode (&headers, &body);
    assert (peersync_getheaders_parse (s_test_decode (&unpacked, &body), &list, &limit) == 0);
    assert (list->via.array.size == CBUS_LOCATOR_MAX && limit == 10);

    //  Our locator, with the last header's hash first: still at most 64.
    cbus_locator_reply_t locator = { .hashes = { .count = CBUS_LOCATOR_MAX, .items = rows } };
    cbus_locator_reply_encode (&locator, &reply);
    cbus_locator_reply_t got;
    msgpack_unpacked reply_unpacked;
    msgpack_unpacked_init (&reply_unpacked);
    assert (cbus_locator_reply_decode (s_test_decode (&reply_unpacked, &reply), &got, reason) == 0);
    peersync_getheaders_pack (rows [CBUS_LOCATOR_MAX], &got.hashes, 2000, &body);
    assert (peersync_getheaders_parse (s_test_decode (&unpacked, &body), &list, &limit) == 0);
    assert (list->via.array.size == CBUS_LOCATOR_MAX);
    assert (list->via.array.ptr [0].via.bin.ptr [0] == CBUS_LOCATOR_MAX);
    assert (list->via.array.ptr [1].via.bin.ptr [0] == 0);

    //  HEADERS and BLOCKS to the peer are the chainstore's replies.
    uint8_t header_rows [2][CBUS_HEADER_BYTES] = { { 1 }, { 2 } };
    cbus_headers_reply_t served = { .start = 5, .headers = { .count = 2, .items = header_rows } };
    cbus_headers_reply_encode (&served, &reply);
    cbus_headers_reply_t served_got;
    assert (cbus_headers_reply_decode (s_test_decode (&reply_unpacked, &reply), &served_got,
                                       reason) == 0);
    peersync_headers_pack (served_got.start, &served_got.headers, &body);
    assert (body.size == reply.size && memcmp (body.data, reply.data, body.size) == 0);
    cbus_bytes_t blocks [2] = { { (const uint8_t *) "one", 3 }, { (const uint8_t *) "two!", 4 } };
    cbus_blocks_get_reply_t fetched = { .blocks = { .count = 2, .items = blocks } };
    cbus_blocks_get_reply_encode (&fetched, &reply);
    cbus_blocks_get_reply_t fetched_got;
    assert (cbus_blocks_get_reply_decode (s_test_decode (&reply_unpacked, &reply), &fetched_got,
                                          reason) == 0);
    peersync_blocks_pack (&fetched_got.blocks, &body);
    assert (body.size == reply.size && memcmp (body.data, reply.data, body.size) == 0);

    msgpack_unpacked_destroy (&reply_unpacked);
    msgpack_unpacked_destroy (&unpacked);
    cbus_buf_free (&reply);
    cbus_buf_free (&body);
}

void
peersync_wire_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_peersync_wire: ");
    cbus_buf_t body = {0};
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);

    peersync_hello_t hello = {
        .reply = true, .version = CBUS_P2P_VERSION, .network = "dev", .network_size = 3,
        .node_id = "0123456789abcdef", .public_key = "0123456789012345678901234567890123456789",
        .endpoint = "tcp://127.0.0.1:9000", .endpoint_size = 20,
        .tip = { .height = 7, .work = { 1 }, .tip = { 2 } }, .genesis = { 3 }
    };
    peersync_hello_pack (&hello, &body);
    peersync_hello_t parsed;
    assert (peersync_hello_parse (&parsed, s_test_decode (&unpacked, &body)) == 0);
    assert (parsed.reply && parsed.version == CBUS_P2P_VERSION && parsed.network_size == 3);
    assert (memcmp (parsed.node_id, hello.node_id, 16) == 0 && parsed.endpoint_size == 20);
    assert (parsed.tip.height == 7 && parsed.tip.work [0] == 1 && parsed.tip.tip [0] == 2);
    assert (parsed.genesis [0] == 3);
    //  A node id of another length is malformed.
    msgpack_packer pk = cbus_packer_begin (&body, 1);
    cbus_pack_kv_str (&pk, "node_id", "short");
    assert (peersync_hello_parse (&parsed, s_test_decode (&unpacked, &body)) == -1);

    peersync_status_t status = { .tip = { .height = 9 }, .reply = true }, got_status;
    peersync_status_pack (&status, &body);
    assert (peersync_status_parse (&got_status, s_test_decode (&unpacked, &body)) == 0);
    assert (got_status.tip.height == 9 && got_status.reply);

    peersync_reject_pack (CBUS_CODE_WRONG_NETWORK, "another network", &body);
    peersync_reject_t reject;
    assert (peersync_reject_parse (&reject, s_test_decode (&unpacked, &body)) == 0);
    assert (reject.code == CBUS_CODE_WRONG_NETWORK && reject.reason_size == 15);
    //  An older peer's REJECT has a reason only.
    pk = cbus_packer_begin (&body, 1);
    cbus_pack_kv_str (&pk, "reason", "banned for 10 minutes");
    assert (peersync_reject_parse (&reject, s_test_decode (&unpacked, &body)) == 0);
    assert (reject.code == CBUS_CODE_INTERNAL && reject.reason_size == 21);

    peersync_info_t info = { .network = "dev", .network_size = 3, .node_id = "n", .node_id_size = 1,
                             .public_key = hello.public_key, .public_key_size = 40,
                             .endpoint = "tcp://h:1", .endpoint_size = 9 }, got_info;
    peersync_info_pack (&info, &body);
    assert (peersync_info_parse (&got_info, s_test_decode (&unpacked, &body)) == 0);
    assert (got_info.endpoint_size == 9 && got_info.public_key_size == 40);

    uint8_t hashes [2][CBUS_HASH_BYTES] = { { 1 }, { 2 } };
    peersync_getblocks_pack ((const uint8_t (*) [CBUS_HASH_BYTES]) hashes, 2, 1000, &body);
    const msgpack_object *list;
    uint64_t limit = 4000;
    assert (peersync_getblocks_parse (s_test_decode (&unpacked, &body), &list, &limit) == 0);
    assert (list->via.array.size == 2 && limit == 1000);
    //  Its hashes go to the chainstore's BLOCKS.GET as they came.
    cbus_buf_t request = {0};
    cbus_blocks_get_t get = { .hashes = peersync_hash_list (list), .max_bytes = limit,
                              .has_max_bytes = true };
    cbus_blocks_get_encode (&get, &request);
    assert (request.size == body.size && memcmp (request.data, body.data, body.size) == 0);
    cbus_buf_free (&request);
    s_test_lists ();
    s_test_pending (&unpacked, &body);

    s_test_refusals ();
    msgpack_unpacked_destroy (&unpacked);
    cbus_buf_free (&body);
    if (verbose)
        printf ("OK\n");
}
