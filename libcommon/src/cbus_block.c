/*  =========================================================================
    cbus_block - a block: a fixed 100-byte header and its transactions
    =========================================================================
*/
#include "cbus.h"
#include <stdarg.h>
#include <math.h>

struct _cbus_block_t {
    cbus_header_t header;           //  Header fields
    cbus_tx_t **txs;                //  Transactions, owned
    size_t tx_count;                //  Entries used in txs
    size_t tx_alloc;                //  Entries allocated in txs
};

static void
s_put_u32 (uint8_t *out, uint32_t value)
{
    for (int index = 0; index < 4; index++)
        out [index] = (uint8_t) (value >> (8 * index));
}

static void
s_put_u64 (uint8_t *out, uint64_t value)
{
    for (int index = 0; index < 8; index++)
        out [index] = (uint8_t) (value >> (8 * index));
}

static uint32_t
s_get_u32 (const uint8_t *in)
{
    uint32_t value = 0;
    for (int index = 3; index >= 0; index--)
        value = (value << 8) | in [index];
    return value;
}

static uint64_t
s_get_u64 (const uint8_t *in)
{
    uint64_t value = 0;
    for (int index = 7; index >= 0; index--)
        value = (value << 8) | in [index];
    return value;
}

void
cbus_header_encode (const cbus_header_t *self, uint8_t out [CBUS_HEADER_BYTES])
{
    s_put_u32 (out, self->version);
    s_put_u64 (out + 4, self->height);
    memcpy (out + 12, self->prev_hash, CBUS_HASH_BYTES);
    memcpy (out + 44, self->merkle_root, CBUS_HASH_BYTES);
    s_put_u64 (out + 76, self->time_ms);
    s_put_u32 (out + 84, self->bits);
    s_put_u32 (out + 88, self->miner);
    s_put_u64 (out + 92, self->nonce);
}

int
cbus_header_decode (cbus_header_t *self, const uint8_t *data, size_t size)
{
    if (size != CBUS_HEADER_BYTES)
        return -1;
    self->version = s_get_u32 (data);
    self->height = s_get_u64 (data + 4);
    memcpy (self->prev_hash, data + 12, CBUS_HASH_BYTES);
    memcpy (self->merkle_root, data + 44, CBUS_HASH_BYTES);
    self->time_ms = s_get_u64 (data + 76);
    self->bits = s_get_u32 (data + 84);
    self->miner = s_get_u32 (data + 88);
    self->nonce = s_get_u64 (data + 92);
    return 0;
}

void
cbus_header_hash (const cbus_header_t *self, uint8_t out [CBUS_HASH_BYTES])
{
    uint8_t bytes [CBUS_HEADER_BYTES];
    cbus_header_encode (self, bytes);
    cbus_hash_sha256d (bytes, sizeof (bytes), out);
}

//  The scan hashes exactly this layout: the nonce in the last 8 bytes,
//  the 36 bytes after the first 64 in one SHA-256 block with the padding.
_Static_assert (CBUS_HEADER_BYTES == CBUS_SHA256D_SCAN_BYTES, "header is what the scan hashes");

bool
cbus_header_search (cbus_header_t *self, uint64_t tries)
{
    uint8_t target [CBUS_U256_BYTES];
    if (cbus_pow_target (self->bits, target))
        return false;
    uint8_t bytes [CBUS_HEADER_BYTES];
    cbus_header_encode (self, bytes);
    cbus_sha256d_scan_t scan;
    cbus_sha256d_scan_init (&scan, bytes, target, cbus_sha256_best ());
    return cbus_sha256d_scan (&scan, &self->nonce, tries);
}

cbus_block_t *
cbus_block_new (const cbus_header_t *header)
{
    cbus_block_t *self = (cbus_block_t *) zmalloc (sizeof (cbus_block_t));
    self->header = *header;
    return self;
}

void
cbus_block_destroy (cbus_block_t **self_p)
{
    assert (self_p);
    cbus_block_t *self = *self_p;
    if (self) {
        for (size_t index = 0; index < self->tx_count; index++)
            cbus_tx_destroy (&self->txs [index]);
        free (self->txs);
        free (self);
        *self_p = NULL;
    }
}

cbus_block_t *
cbus_block_new_from_bytes (const void *data, size_t size, char *reason)
{
    if (size == 0 || size > CBUS_BLOCK_MAX_BYTES) {
        cbus_fail (reason, "Block of %zu bytes is empty or too large", size);
        return NULL;
    }
    cbus_block_t *self = NULL;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    if (cbus_unpack_next (&unpacked, (const char *) data, size, &offset) != MSGPACK_UNPACK_SUCCESS
    ||  offset != size || unpacked.data.type != MSGPACK_OBJECT_MAP) {
        cbus_fail (reason, "Block is not one msgpack map");
        goto done;
    }
    const uint8_t *header_bytes;
    size_t header_size;
    cbus_header_t header;
    if (cbus_msg_get_bin (&unpacked.data, "header", &header_bytes, &header_size)
    ||  cbus_header_decode (&header, header_bytes, header_size)) {
        cbus_fail (reason, "Block header is missing or malformed");
        goto done;
    }
    const msgpack_object *txs = cbus_msg_get (&unpacked.data, "txs");
    if (!txs || txs->type != MSGPACK_OBJECT_ARRAY || unpacked.data.via.map.size != 2) {
        cbus_fail (reason, "Block must be a map of header and txs");
        goto done;
    }
    if (txs->via.array.size > CBUS_BLOCK_MAX_TXS) {
        cbus_fail (reason, "Block holds %u transactions, at most %d", txs->via.array.size,
                CBUS_BLOCK_MAX_TXS);
        goto done;
    }
    self = cbus_block_new (&header);
    for (uint32_t index = 0; index < txs->via.array.size; index++) {
        const msgpack_object *item = &txs->via.array.ptr [index];
        if (item->type != MSGPACK_OBJECT_BIN) {
            cbus_fail (reason, "Block transaction %u is not bytes", index);
            cbus_block_destroy (&self);
            goto done;
        }
        char inner [CBUS_REASON_MAX];
        cbus_tx_t *tx = cbus_tx_decode (item->via.bin.ptr, item->via.bin.size, inner);
        if (!tx) {
            cbus_fail (reason, "Block transaction %u: %s", index, inner);
            cbus_block_destroy (&self);
            goto done;
        }
        cbus_block_add_tx (self, &tx);
    }
    //  Signatures last, on every CPU when there are many; the lowest
    //  failing index is named, as a check in order would name it.
    size_t bad = cbus_tx_verify_many (self->txs, self->tx_count, NULL);
    if (bad < self->tx_count) {
        char inner [CBUS_REASON_MAX];
        int rc = cbus_tx_verify (self->txs [bad], inner);
        assert (rc == -1);
        cbus_fail (reason, "Block transaction %zu: %s", bad, inner);
        cbus_block_destroy (&self);
    }
done:
    msgpack_unpacked_destroy (&unpacked);
    return self;
}

//  Readers of the JSON a block is written as. Each returns 0, or -1 when
//  the key is missing or its value has another type or range.
static int
s_json_uint (const json_t *object, const char *key, uint64_t max, uint64_t *value)
{
    json_t *item = json_object_get (object, key);
    if (!json_is_integer (item) || json_integer_value (item) < 0
    ||  (uint64_t) json_integer_value (item) > max)
        return -1;
    *value = (uint64_t) json_integer_value (item);
    return 0;
}

static int
s_json_hash (const json_t *object, const char *key, uint8_t hash [CBUS_HASH_BYTES])
{
    const char *text = json_string_value (json_object_get (object, key));
    return text? cbus_hex_decode (text, hash, CBUS_HASH_BYTES): -1;
}

//  Latest time read from JSON, in ms (about the year 33,700). Below it a
//  double of seconds is exact to well under a millisecond, so rounding
//  value * 1000 gives back the header's time.
#define S_JSON_MAX_TIME_MS 1000000000000000ULL

//  Seconds since 1970 as a real with three decimals (as written) or as an
//  integer, into milliseconds.
static int
s_json_time_ms (const json_t *value, uint64_t *time_ms)
{
    if (json_is_integer (value)) {
        json_int_t seconds = json_integer_value (value);
        if (seconds < 0 || (uint64_t) seconds > S_JSON_MAX_TIME_MS / 1000)
            return -1;
        *time_ms = (uint64_t) seconds * 1000;
        return 0;
    }
    if (!json_is_real (value))
        return -1;
    double ms = json_real_value (value) * 1000.0;
    if (!isfinite (ms) || ms < 0 || ms > (double) S_JSON_MAX_TIME_MS)
        return -1;
    *time_ms = (uint64_t) llround (ms);
    return 0;
}

//  One transaction of a block's JSON: the object as cbus_tx_write_json
//  writes it, whose txid, when given, must be what its fields hash to.
static cbus_tx_t *
s_tx_from_json (json_t *item, size_t index, const char *label, char *reason)
{
    if (!json_is_object (item)) {
        cbus_fail (reason, "%s: transaction %zu is not a JSON object", label, index);
        return NULL;
    }
    //  Without its own timestamp a transaction would be stamped now: a
    //  different transaction.
    if (!json_object_get (item, "timestamp")) {
        cbus_fail (reason, "%s: transaction %zu has no timestamp", label, index);
        return NULL;
    }
    json_t *given = json_object_get (item, "txid");
    uint8_t txid [CBUS_HASH_BYTES];
    if (given && (!json_is_string (given)
              ||  cbus_hex_decode (json_string_value (given), txid, CBUS_HASH_BYTES))) {
        cbus_fail (reason, "%s: transaction %zu: txid must be %d hex digits", label, index,
                2 * CBUS_HASH_BYTES);
        return NULL;
    }
    //  A shallow copy: the fields are shared, only txid is left out.
    json_t *fields = json_copy (item);
    json_object_del (fields, "txid");
    char inner [CBUS_REASON_MAX];
    cbus_tx_t *tx = cbus_tx_new_from_json (fields, 0, inner);
    json_decref (fields);
    if (!tx)
        cbus_fail (reason, "%s: transaction %zu: %s", label, index, inner);
    else
    if (given && memcmp (txid, cbus_tx_id (tx), CBUS_HASH_BYTES) != 0) {
        cbus_fail (reason, "%s: transaction %zu: txid does not match its contents", label, index);
        cbus_tx_destroy (&tx);
    }
    return tx;
}

cbus_block_t *
cbus_block_new_from_json (const json_t *object, char *reason)
{
    if (!json_is_object (object)) {
        cbus_fail (reason, "block: must be a JSON object");
        return NULL;
    }
    cbus_header_t header = {0};
    if (s_json_uint (object, "index", INT64_MAX, &header.height)) {
        cbus_fail (reason, "block: index must be a non-negative integer");
        return NULL;
    }
    //  Every later reason names the block.
    char label [32];
    snprintf (label, sizeof (label), "block %" PRIu64, header.height);
    uint64_t value;
    const char *bits = json_string_value (json_object_get (object, "bits"));
    if (s_json_time_ms (json_object_get (object, "timestamp"), &header.time_ms)) {
        cbus_fail (reason, "%s: timestamp must be seconds since 1970 (like 1763709436.123)", label);
        return NULL;
    }
    if (s_json_uint (object, "proof", INT64_MAX, &header.nonce)) {
        cbus_fail (reason, "%s: proof must be a non-negative integer", label);
        return NULL;
    }
    if (s_json_hash (object, "previous_hash", header.prev_hash)) {
        cbus_fail (reason, "%s: previous_hash must be %d hex digits", label, 2 * CBUS_HASH_BYTES);
        return NULL;
    }
    if (s_json_hash (object, "merkle_root", header.merkle_root)) {
        cbus_fail (reason, "%s: merkle_root must be %d hex digits", label, 2 * CBUS_HASH_BYTES);
        return NULL;
    }
    if (!bits || strlen (bits) != 8 || strspn (bits, "0123456789abcdefABCDEF") != 8) {
        cbus_fail (reason, "%s: bits must be 8 hex digits", label);
        return NULL;
    }
    header.bits = (uint32_t) strtoul (bits, NULL, 16);
    if (s_json_uint (object, "miner", UINT32_MAX, &value)) {
        cbus_fail (reason, "%s: miner must be an integer from 0 to %u", label, UINT32_MAX);
        return NULL;
    }
    header.miner = (uint32_t) value;
    if (s_json_uint (object, "version", UINT32_MAX, &value)) {
        cbus_fail (reason, "%s: version must be an integer from 0 to %u", label, UINT32_MAX);
        return NULL;
    }
    header.version = (uint32_t) value;
    json_t *hash = json_object_get (object, "hash");
    if (hash) {
        uint8_t given [CBUS_HASH_BYTES], computed [CBUS_HASH_BYTES];
        if (s_json_hash (object, "hash", given)) {
            cbus_fail (reason, "%s: hash must be %d hex digits", label, 2 * CBUS_HASH_BYTES);
            return NULL;
        }
        cbus_header_hash (&header, computed);
        if (memcmp (given, computed, CBUS_HASH_BYTES) != 0) {
            cbus_fail (reason, "%s: hash does not match its header", label);
            return NULL;
        }
    }
    json_t *txs = json_object_get (object, "transactions");
    if (!json_is_array (txs)) {
        cbus_fail (reason, "%s: transactions must be a list", label);
        return NULL;
    }
    if (json_array_size (txs) > CBUS_BLOCK_MAX_TXS) {
        cbus_fail (reason, "%s: holds %zu transactions, at most %d", label,
                json_array_size (txs), CBUS_BLOCK_MAX_TXS);
        return NULL;
    }
    cbus_block_t *self = cbus_block_new (&header);
    size_t index;
    json_t *item;
    json_array_foreach (txs, index, item) {
        cbus_tx_t *tx = s_tx_from_json (item, index, label, reason);
        if (!tx) {
            cbus_block_destroy (&self);
            break;
        }
        cbus_block_add_tx (self, &tx);
    }
    return self;
}

cbus_block_t *
cbus_block_new_genesis (const char *network, uint32_t bits)
{
    cbus_pow_rule_t rule = { .bits = bits, .interval_s = 0 };
    return cbus_block_new_genesis_rule (network, &rule);
}

cbus_block_t *
cbus_block_new_genesis_rule (const char *network, const cbus_pow_rule_t *rule)
{
    cbus_header_t header = {
        .version = CBUS_BLOCK_VERSION,
        .height = 0,
        .time_ms = 1700000000000ULL,        //  2023-11-14, fixed for all
        .bits = rule->bits,
    };
    //  No transactions; the root field commits to the network id and its
    //  target rule, so that two networks never share a genesis. A fixed
    //  target's text is the one before retargeting existed (same genesis).
    char *text = rule->interval_s
        ? zsys_sprintf ("chainbus genesis network=%s bits=%08x block_interval=%u half_life=%d",
                        network, rule->bits, rule->interval_s, cbus_pow_half_life (rule))
        : zsys_sprintf ("chainbus genesis network=%s bits=%08x", network, rule->bits);
    cbus_hash_sha256d (text, strlen (text), header.merkle_root);
    zstr_free (&text);
    return cbus_block_new (&header);
}

cbus_header_t *
cbus_block_header (cbus_block_t *self)
{
    return &self->header;
}

void
cbus_block_hash (cbus_block_t *self, uint8_t out [CBUS_HASH_BYTES])
{
    cbus_header_hash (&self->header, out);
}

void
cbus_block_add_tx (cbus_block_t *self, cbus_tx_t **tx_p)
{
    if (self->tx_count == self->tx_alloc) {
        self->tx_alloc = self->tx_alloc ? 2 * self->tx_alloc : 16;
        self->txs = (cbus_tx_t **) realloc (self->txs, self->tx_alloc * sizeof (cbus_tx_t *));
        assert (self->txs);
    }
    self->txs [self->tx_count++] = *tx_p;
    *tx_p = NULL;
}

size_t
cbus_block_tx_count (cbus_block_t *self)
{
    return self->tx_count;
}

cbus_tx_t *
cbus_block_tx (cbus_block_t *self, size_t index)
{
    return index < self->tx_count ? self->txs [index] : NULL;
}

void
cbus_block_merkle (cbus_block_t *self, uint8_t out [CBUS_HASH_BYTES])
{
    if (self->tx_count == 0) {
        memset (out, 0, CBUS_HASH_BYTES);
        return;
    }
    size_t count = self->tx_count;
    //  zmalloc aborts when memory runs out, as cbus_buf_t does (cbus_util.h).
    uint8_t (*level) [CBUS_HASH_BYTES] = zmalloc (count * CBUS_HASH_BYTES);
    for (size_t index = 0; index < count; index++)
        memcpy (level [index], cbus_tx_leaf (self->txs [index]), CBUS_HASH_BYTES);
    while (count > 1) {
        size_t next = 0;
        for (size_t index = 0; index < count; index += 2) {
            const uint8_t *right = index + 1 < count ? level [index + 1] : level [index];
            cbus_hash_pair (level [index], right, level [next++]);
        }
        count = next;
    }
    memcpy (out, level [0], CBUS_HASH_BYTES);
    free (level);
}

size_t
cbus_block_size (cbus_block_t *self)
{
    //  Map header, two keys, a bin8 header, array header, bin headers.
    size_t size = 1 + 7 + 2 + CBUS_HEADER_BYTES + 4 + 5 + 5;
    for (size_t index = 0; index < self->tx_count; index++) {
        size_t tx_size;
        cbus_tx_bytes (self->txs [index], &tx_size);
        size += tx_size + 5;
    }
    return size;
}

int
cbus_block_check (cbus_block_t *self, cbus_code_t *code, char *reason)
{
    cbus_code_t ignored;
    if (!code)
        code = &ignored;
    *code = CBUS_CODE_OK;
    if (self->header.version != CBUS_BLOCK_VERSION && (*code = CBUS_CODE_BAD_VERSION))
        return cbus_fail (reason, "Block version %u is not %d", self->header.version, CBUS_BLOCK_VERSION);
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_block_hash (self, hash);
    if (!cbus_pow_check (hash, self->header.bits) && (*code = CBUS_CODE_BAD_POW))
        return cbus_fail (reason, "Block hash does not meet its proof-of-work target");
    uint8_t root [CBUS_HASH_BYTES];
    cbus_block_merkle (self, root);
    if (memcmp (root, self->header.merkle_root, CBUS_HASH_BYTES) != 0
    &&  (*code = CBUS_CODE_BAD_MERKLE_ROOT))
        return cbus_fail (reason, "Block merkle root does not match its transactions");
    if (self->tx_count > CBUS_BLOCK_MAX_TXS && (*code = CBUS_CODE_TOO_LARGE))
        return cbus_fail (reason, "Block holds too many transactions");
    if (cbus_block_size (self) > CBUS_BLOCK_MAX_BYTES && (*code = CBUS_CODE_TOO_LARGE))
        return cbus_fail (reason, "Block is larger than %d bytes", CBUS_BLOCK_MAX_BYTES);
    //  No transaction twice: sort the ids and compare neighbours.
    if (self->tx_count > 1) {
        uint8_t (*ids) [CBUS_HASH_BYTES] = malloc (self->tx_count * CBUS_HASH_BYTES);
        if (!ids && (*code = CBUS_CODE_INTERNAL))
            return cbus_fail (reason, "Out of memory while checking the block");
        for (size_t index = 0; index < self->tx_count; index++)
            memcpy (ids [index], cbus_tx_id (self->txs [index]), CBUS_HASH_BYTES);
        qsort (ids, self->tx_count, CBUS_HASH_BYTES,
               (int (*) (const void *, const void *)) cbus_u256_cmp);
        int rc = 0;
        for (size_t index = 1; index < self->tx_count && rc == 0; index++)
            if (memcmp (ids [index - 1], ids [index], CBUS_HASH_BYTES) == 0) {
                char hex [CBUS_HASH_HEX];
                *code = CBUS_CODE_DUPLICATE;
                rc = cbus_fail (reason, "Block holds transaction %s twice", cbus_hash_hex (ids [index], hex));
            }
        free (ids);
        return rc;
    }
    return 0;
}

void
cbus_block_encode (cbus_block_t *self, cbus_buf_t *out)
{
    msgpack_packer pk;
    cbus_packer_init (&pk, out);
    uint8_t header [CBUS_HEADER_BYTES];
    cbus_header_encode (&self->header, header);
    msgpack_pack_map (&pk, 2);
    cbus_pack_kv_bin (&pk, "header", header, sizeof (header));
    cbus_pack_str (&pk, "txs");
    msgpack_pack_array (&pk, (uint32_t) self->tx_count);
    for (size_t index = 0; index < self->tx_count; index++) {
        size_t size;
        const uint8_t *bytes = cbus_tx_bytes (self->txs [index], &size);
        msgpack_pack_bin (&pk, size);
        msgpack_pack_bin_body (&pk, bytes, size);
    }
}

//  The JSON object around a block's transactions: what comes before them
//  and what comes after.
static void
s_write_json_head (const cbus_header_t *header, cbus_buf_t *out)
{
    cbus_buf_printf (out, "{\"index\": %" PRIu64 ", \"timestamp\": %" PRIu64 ".%03u"
                     ", \"transactions\": [", header->height,
                     header->time_ms / 1000, (unsigned) (header->time_ms % 1000));
}

static void
s_write_json_tail (const cbus_header_t *header, cbus_buf_t *out)
{
    char hex [CBUS_HASH_HEX];
    cbus_buf_printf (out, "], \"proof\": %" PRIu64, header->nonce);
    cbus_buf_printf (out, ", \"previous_hash\": \"%s\"", cbus_hash_hex (header->prev_hash, hex));
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_header_hash (header, hash);
    cbus_buf_printf (out, ", \"hash\": \"%s\"", cbus_hash_hex (hash, hex));
    cbus_buf_printf (out, ", \"merkle_root\": \"%s\"", cbus_hash_hex (header->merkle_root, hex));
    uint8_t target [CBUS_U256_BYTES] = {0};
    if (cbus_pow_target (header->bits, target))
        memset (target, 0, sizeof (target));
    cbus_buf_printf (out, ", \"target\": \"%s\"", cbus_hash_hex (target, hex));
    cbus_buf_printf (out, ", \"bits\": \"%08x\", \"miner\": %u, \"version\": %u}",
                     header->bits, header->miner, header->version);
}

void
cbus_block_write_json (cbus_block_t *self, cbus_buf_t *out)
{
    s_write_json_head (&self->header, out);
    for (size_t index = 0; index < self->tx_count; index++) {
        if (index)
            cbus_buf_append (out, ", ", 2);
        cbus_tx_write_json (self->txs [index], out);
    }
    s_write_json_tail (&self->header, out);
}

int
cbus_block_header_from_bytes (const void *data, size_t size, cbus_header_t *header)
{
    static const uint8_t s_prefix [] = {
        0x82, 0xa6, 'h', 'e', 'a', 'd', 'e', 'r', 0xc4, CBUS_HEADER_BYTES
    };
    const uint8_t *bytes = (const uint8_t *) data;
    if (size >= sizeof (s_prefix) + CBUS_HEADER_BYTES
    &&  memcmp (bytes, s_prefix, sizeof (s_prefix)) == 0)
        return cbus_header_decode (header, bytes + sizeof (s_prefix), CBUS_HEADER_BYTES);

    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    const uint8_t *header_bytes;
    size_t header_size;
    int rc = -1;
    if (cbus_unpack_next (&unpacked, (const char *) data, size, &offset) == MSGPACK_UNPACK_SUCCESS
    &&  cbus_msg_get_bin (&unpacked.data, "header", &header_bytes, &header_size) == 0)
        rc = cbus_header_decode (header, header_bytes, header_size);
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

int
cbus_block_bytes_to_json (const void *data, size_t size, cbus_buf_t *out)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    size_t start = out->size;
    int rc = -1;
    const uint8_t *header_bytes;
    size_t header_size;
    cbus_header_t header;
    if (cbus_unpack_next (&unpacked, (const char *) data, size, &offset) != MSGPACK_UNPACK_SUCCESS
    ||  offset != size || unpacked.data.type != MSGPACK_OBJECT_MAP
    ||  cbus_msg_get_bin (&unpacked.data, "header", &header_bytes, &header_size)
    ||  cbus_header_decode (&header, header_bytes, header_size))
        goto done;
    const msgpack_object *txs = cbus_msg_get (&unpacked.data, "txs");
    if (!txs || txs->type != MSGPACK_OBJECT_ARRAY)
        goto done;
    s_write_json_head (&header, out);
    for (uint32_t index = 0; index < txs->via.array.size; index++) {
        const msgpack_object *item = &txs->via.array.ptr [index];
        if (index)
            cbus_buf_append (out, ", ", 2);
        if (item->type != MSGPACK_OBJECT_BIN
        ||  cbus_tx_bytes_to_json (item->via.bin.ptr, item->via.bin.size, out))
            goto done;
    }
    s_write_json_tail (&header, out);
    rc = 0;
done:
    if (rc)
        out->size = start;
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

//  Search nonces until the header meets its target; for tests.
static void
s_solve (cbus_block_t *self)
{
    self->header.nonce = 0;
    while (!cbus_header_search (&self->header, 1000))
        ;
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_block_hash (self, hash);
    assert (cbus_pow_check (hash, self->header.bits));
}

//  Test helper: the bytes of a block of count transactions signed by key,
//  with the signatures at the forged indexes spoiled (one bit).
static void
s_signed_block_bytes (cbus_key_t *key, size_t count, const size_t *forged, size_t forged_count,
                      cbus_buf_t *out)
{
    char reason [CBUS_REASON_MAX];
    cbus_header_t header = { .version = CBUS_BLOCK_VERSION, .height = 1, .bits = 0x2000ffff };
    cbus_block_t *block = cbus_block_new (&header);
    for (size_t index = 0; index < count; index++) {
        char *text = zsys_sprintf ("{\"users\": \"signer\", \"data\": %zu, \"dh_parameters\": \"\","
            " \"server_public_key\": \"\", \"receiver_public_key\": \"r\","
            " \"sender_public_key\": \"%s\"}", index, cbus_key_public_hex (key));
        json_t *object = cbus_json_parse (text, strlen (text), reason);
        cbus_tx_t *tx = cbus_tx_new_from_json (object, 1000 + (uint64_t) index, reason);
        assert (tx);
        size_t size;
        const uint8_t *bytes = cbus_tx_signed_bytes (tx, &size);
        uint8_t signature [CBUS_SIG_BYTES];
        cbus_key_sign (key, bytes, size, signature);
        for (size_t bad = 0; bad < forged_count; bad++)
            if (forged [bad] == index)
                signature [0] ^= 1;
        char hex [2 * CBUS_SIG_BYTES + 1];
        cbus_hex_encode (signature, CBUS_SIG_BYTES, hex);
        json_object_set_new (object, "signature", json_string (hex));
        json_object_set_new (object, "timestamp", json_integer (1000 + (json_int_t) index));
        cbus_tx_destroy (&tx);
        tx = cbus_tx_new_from_json (object, 0, reason);
        assert (tx && cbus_tx_is_signed (tx));
        cbus_block_add_tx (block, &tx);
        json_decref (object);
        zstr_free (&text);
    }
    cbus_buf_reset (out);
    cbus_block_encode (block, out);
    cbus_block_destroy (&block);
}

void
cbus_block_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_block: ");
    char reason [CBUS_REASON_MAX];
    cbus_code_t code;
    cbus_block_t *genesis = cbus_block_new_genesis ("dev", 0x2000ffff);
    cbus_block_t *other = cbus_block_new_genesis ("prod", 0x2000ffff);
    uint8_t genesis_hash [CBUS_HASH_BYTES], other_hash [CBUS_HASH_BYTES];
    cbus_block_hash (genesis, genesis_hash);
    cbus_block_hash (other, other_hash);
    assert (memcmp (genesis_hash, other_hash, CBUS_HASH_BYTES) != 0);
    cbus_block_destroy (&other);
    //  Another block interval, another genesis; interval 0 is the fixed one.
    cbus_pow_rule_t rule = { .bits = 0x2000ffff, .interval_s = 0 };
    other = cbus_block_new_genesis_rule ("dev", &rule);
    cbus_block_hash (other, other_hash);
    assert (memcmp (genesis_hash, other_hash, CBUS_HASH_BYTES) == 0);
    cbus_block_destroy (&other);
    rule.interval_s = 1;
    other = cbus_block_new_genesis_rule ("dev", &rule);
    cbus_block_hash (other, other_hash);
    assert (memcmp (genesis_hash, other_hash, CBUS_HASH_BYTES) != 0);
    cbus_block_destroy (&other);
    //  Another half-life too (the default spelled out is the default).
    uint8_t interval_hash [CBUS_HASH_BYTES];
    memcpy (interval_hash, other_hash, CBUS_HASH_BYTES);
    rule.half_life = 8;
    other = cbus_block_new_genesis_rule ("dev", &rule);
    cbus_block_hash (other, other_hash);
    assert (memcmp (interval_hash, other_hash, CBUS_HASH_BYTES) != 0);
    cbus_block_destroy (&other);
    rule.half_life = CBUS_RETARGET_HALF_LIFE_BLOCKS;
    other = cbus_block_new_genesis_rule ("dev", &rule);
    cbus_block_hash (other, other_hash);
    assert (memcmp (interval_hash, other_hash, CBUS_HASH_BYTES) == 0);
    cbus_block_destroy (&other);

    //  A block of three transactions on top of genesis.
    cbus_header_t header = {
        .version = CBUS_BLOCK_VERSION, .height = 1, .time_ms = 1700000001000ULL,
        .bits = 0x2000ffff, .miner = 7
    };
    memcpy (header.prev_hash, genesis_hash, CBUS_HASH_BYTES);
    cbus_block_t *block = cbus_block_new (&header);
    for (int index = 0; index < 3; index++) {
        char *text = zsys_sprintf ("{\"users\": \"u%d\", \"data\": %d, \"dh_parameters\": \"p\","
            " \"server_public_key\": \"s\", \"receiver_public_key\": \"r\","
            " \"sender_public_key\": \"k\"}", index, index);
        json_t *object = cbus_json_parse (text, strlen (text), reason);
        cbus_tx_t *tx = cbus_tx_new_from_json (object, 1000 + (uint64_t) index, reason);
        assert (tx);
        cbus_block_add_tx (block, &tx);
        assert (tx == NULL);
        json_decref (object);
        zstr_free (&text);
    }
    //  Before the root is set and the proof found, the check refuses.
    assert (cbus_block_check (block, NULL, reason) == -1);
    cbus_block_merkle (block, cbus_block_header (block)->merkle_root);
    s_solve (block);
    assert (cbus_block_check (block, NULL, reason) == 0);

    //  Encoding round trip keeps the hash and the transactions.
    cbus_buf_t buf = {0};
    cbus_block_encode (block, &buf);
    assert (buf.size <= cbus_block_size (block));
    cbus_block_t *copy = cbus_block_new_from_bytes (buf.data, buf.size, reason);
    assert (copy && cbus_block_tx_count (copy) == 3);
    uint8_t hash [CBUS_HASH_BYTES], copy_hash [CBUS_HASH_BYTES];
    cbus_block_hash (block, hash);
    cbus_block_hash (copy, copy_hash);
    assert (memcmp (hash, copy_hash, CBUS_HASH_BYTES) == 0);
    assert (cbus_block_check (copy, NULL, reason) == 0);

    //  A transaction swapped for another breaks the merkle root.
    cbus_tx_destroy (&copy->txs [2]);
    copy->txs [2] = cbus_tx_new_from_bytes (cbus_tx_bytes (block->txs [0], &(size_t) {0}),
                                            0, reason);
    assert (copy->txs [2] == NULL);
    size_t size;
    const uint8_t *bytes = cbus_tx_bytes (block->txs [0], &size);
    copy->txs [2] = cbus_tx_new_from_bytes (bytes, size, reason);
    assert (cbus_block_check (copy, &code, reason) == -1 && code == CBUS_CODE_BAD_MERKLE_ROOT);
    //  ... and with the root fixed, the duplicate is found.
    cbus_block_merkle (copy, cbus_block_header (copy)->merkle_root);
    s_solve (copy);
    assert (cbus_block_check (copy, &code, reason) == -1 && code == CBUS_CODE_DUPLICATE);
    cbus_block_destroy (&copy);

    //  JSON has the tutorial's keys.
    cbus_buf_t json = {0};
    cbus_block_write_json (block, &json);
    json_error_t error;
    json_t *parsed = json_loads (json.data, 0, &error);
    assert (parsed);
    assert (json_integer_value (json_object_get (parsed, "index")) == 1);
    assert (json_array_size (json_object_get (parsed, "transactions")) == 3);
    assert (json_is_integer (json_object_get (parsed, "proof")));
    assert (json_is_string (json_object_get (parsed, "previous_hash")));
    assert (json_is_real (json_object_get (parsed, "timestamp")));
    assert (json_is_string (json_object_get (parsed, "merkle_root")));
    json_decref (parsed);
    //  The fast path from stored bytes writes the same text.
    cbus_buf_t fast = {0};
    assert (cbus_block_bytes_to_json (buf.data, buf.size, &fast) == 0);
    assert (fast.size == json.size && memcmp (fast.data, json.data, json.size) == 0);
    assert (cbus_block_bytes_to_json ("\x80", 1, &fast) == -1);
    assert (fast.size == json.size);
    cbus_buf_free (&fast);
    //  The header read in place, and the long way from a map whose keys
    //  come in another order.
    cbus_header_t in_place;
    assert (cbus_block_header_from_bytes (buf.data, buf.size, &in_place) == 0);
    assert (in_place.height == 1 && in_place.nonce == cbus_block_header (block)->nonce);
    cbus_buf_t reordered = {0};
    msgpack_packer reorder_pk;
    cbus_packer_init (&reorder_pk, &reordered);
    msgpack_pack_map (&reorder_pk, 2);
    cbus_pack_str (&reorder_pk, "txs");
    msgpack_pack_array (&reorder_pk, 0);
    uint8_t header_bytes [CBUS_HEADER_BYTES];
    cbus_header_encode (cbus_block_header (block), header_bytes);
    cbus_pack_kv_bin (&reorder_pk, "header", header_bytes, CBUS_HEADER_BYTES);
    cbus_header_t long_way;
    assert (cbus_block_header_from_bytes (reordered.data, reordered.size, &long_way) == 0);
    assert (long_way.height == in_place.height && long_way.nonce == in_place.nonce
         && memcmp (long_way.merkle_root, in_place.merkle_root, CBUS_HASH_BYTES) == 0);
    assert (cbus_block_header_from_bytes (buf.data, 20, &long_way) == -1);
    assert (cbus_block_header_from_bytes ("\x80", 1, &long_way) == -1);
    cbus_buf_free (&reordered);

    //  JSON back to a block: the same header and transactions, so the
    //  same bytes.
    parsed = json_loads (json.data, JSON_REJECT_DUPLICATES, &error);
    assert (parsed);
    copy = cbus_block_new_from_json (parsed, reason);
    assert (copy && cbus_block_tx_count (copy) == 3);
    cbus_buf_t again = {0};
    cbus_block_encode (copy, &again);
    assert (again.size == buf.size && memcmp (again.data, buf.data, buf.size) == 0);
    assert (cbus_block_check (copy, NULL, reason) == 0);
    cbus_block_destroy (&copy);
    //  A changed proof no longer matches the given hash...
    uint64_t nonce = cbus_block_header (block)->nonce;
    json_object_set_new (parsed, "proof", json_integer ((json_int_t) nonce + 1));
    assert (cbus_block_new_from_json (parsed, reason) == NULL);
    assert (streq (reason, "block 1: hash does not match its header"));
    //  ... and without a hash it decodes, as another block.
    json_object_del (parsed, "hash");
    copy = cbus_block_new_from_json (parsed, reason);
    assert (copy && cbus_block_header (copy)->nonce == nonce + 1);
    cbus_block_hash (copy, copy_hash);
    assert (memcmp (copy_hash, hash, CBUS_HASH_BYTES) != 0);
    cbus_block_destroy (&copy);
    json_decref (parsed);
    //  Changed transaction data no longer matches its txid.
    parsed = json_loads (json.data, JSON_REJECT_DUPLICATES, &error);
    json_t *first = json_array_get (json_object_get (parsed, "transactions"), 0);
    json_object_set_new (first, "data", json_integer (99));
    assert (cbus_block_new_from_json (parsed, reason) == NULL);
    assert (streq (reason, "block 1: transaction 0: txid does not match its contents"));
    //  Without the txid it decodes, and the merkle root gives it away.
    json_object_del (first, "txid");
    copy = cbus_block_new_from_json (parsed, reason);
    assert (copy);
    assert (cbus_block_check (copy, &code, reason) == -1 && code == CBUS_CODE_BAD_MERKLE_ROOT);
    cbus_block_destroy (&copy);
    //  A transaction's own timestamp is required.
    json_object_del (first, "timestamp");
    assert (cbus_block_new_from_json (parsed, reason) == NULL && strstr (reason, "timestamp"));
    json_decref (parsed);

    //  Wrong shapes and types are refused with a reason, never a crash.
    const char *bad [] = {
        "[]", "{}", "{\"index\": -1}", "{\"index\": \"1\"}",
        "{\"index\": 1, \"timestamp\": \"now\"}",
        "{\"index\": 1, \"timestamp\": -1.5}",
        "{\"index\": 1, \"timestamp\": 1e300}",
        "{\"index\": 1, \"timestamp\": 1.5, \"proof\": 1.5}",
        "{\"index\": 1, \"timestamp\": 1.5, \"proof\": 1, \"previous_hash\": \"00\"}",
        NULL
    };
    for (int index = 0; bad [index]; index++) {
        parsed = json_loads (bad [index], JSON_DECODE_ANY, &error);
        assert (parsed);
        assert (cbus_block_new_from_json (parsed, reason) == NULL && *reason);
        json_decref (parsed);
    }
    assert (cbus_block_new_from_json (NULL, reason) == NULL);
    //  Each header field in turn: a good block's JSON with one bad value.
    const char *fields [] = {
        "previous_hash", "merkle_root", "bits", "miner", "version", "hash",
        "transactions", NULL
    };
    json_t *values [] = {
        json_string ("zz"), json_integer (1), json_string ("2000fffff"),
        json_integer (-1), json_integer (4294967296LL), json_string ("00"),
        json_string ("[]"), NULL
    };
    for (int index = 0; fields [index]; index++) {
        parsed = json_loads (json.data, 0, &error);
        json_object_set_new (parsed, fields [index], values [index]);
        assert (cbus_block_new_from_json (parsed, reason) == NULL);
        assert (strncmp (reason, "block 1: ", 9) == 0 && strstr (reason, fields [index]));
        json_decref (parsed);
    }
    parsed = json_loads (json.data, 0, &error);
    json_array_append_new (json_object_get (parsed, "transactions"), json_string ("tx"));
    assert (cbus_block_new_from_json (parsed, reason) == NULL);
    assert (streq (reason, "block 1: transaction 3 is not a JSON object"));
    json_decref (parsed);

    //  Genesis comes back as itself, and a timestamp given as integer
    //  seconds is read too.
    cbus_buf_reset (&again);
    cbus_block_write_json (genesis, &again);
    parsed = json_loads (again.data, 0, &error);
    assert (json_is_real (json_object_get (parsed, "timestamp")));
    json_object_set_new (parsed, "timestamp", json_integer (1700000000));
    copy = cbus_block_new_from_json (parsed, reason);
    assert (copy);
    cbus_block_hash (copy, copy_hash);
    assert (memcmp (copy_hash, genesis_hash, CBUS_HASH_BYTES) == 0);
    cbus_block_destroy (&copy);
    json_decref (parsed);

    //  Signed transactions, nested and non-ASCII data, a list of users
    //  and doubles keep their bytes through JSON.
    cbus_block_t *rich = cbus_block_new (&header);
    const char *rich_tx =
        "{\"users\": [\"al\u00efce\", \"\u0431\u043e\u0431\"], \"data\": {\"z\": [1, 2.5, -0.0, "
        "1e300, 0.1, -7, null, true, \"\u2603\\n\"], \"a\": {\"b\": {}}}, \"dh_parameters\": \"p\","
        " \"server_public_key\": \"s\", \"receiver_public_key\": \"r\","
        " \"sender_public_key\": \"k\", \"timestamp\": 1700000000123456, \"signature\": \""
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}";
    parsed = cbus_json_parse (rich_tx, strlen (rich_tx), reason);
    assert (parsed);
    cbus_tx_t *tx = cbus_tx_new_from_json (parsed, 0, reason);
    assert (tx && cbus_tx_is_signed (tx));
    cbus_block_add_tx (rich, &tx);
    json_decref (parsed);
    cbus_block_merkle (rich, cbus_block_header (rich)->merkle_root);
    cbus_buf_reset (&again);
    cbus_block_write_json (rich, &again);
    parsed = json_loads (again.data, JSON_REJECT_DUPLICATES, &error);
    assert (parsed);
    copy = cbus_block_new_from_json (parsed, reason);
    assert (copy && cbus_block_tx_count (copy) == 1);
    size_t rich_size, copy_size;
    const uint8_t *rich_bytes = cbus_tx_bytes (cbus_block_tx (rich, 0), &rich_size);
    const uint8_t *copy_bytes = cbus_tx_bytes (cbus_block_tx (copy, 0), &copy_size);
    assert (rich_size == copy_size && memcmp (rich_bytes, copy_bytes, rich_size) == 0);
    cbus_block_destroy (&copy);
    json_decref (parsed);
    cbus_block_destroy (&rich);
    cbus_buf_free (&again);

    //  Garbage is refused with a reason.
    assert (cbus_block_new_from_bytes ("\x81\xa1x\x01", 4, reason) == NULL);
    assert (cbus_block_new_from_bytes ("", 0, reason) == NULL);
    buf.data [20] ^= 1;     //  Inside the header: decodes, hash changes
    copy = cbus_block_new_from_bytes (buf.data, buf.size, reason);
    if (copy) {
        assert (cbus_block_check (copy, NULL, reason) == -1);
        cbus_block_destroy (&copy);
    }

    //  Signatures: verified on several threads when there are many, and
    //  the lowest failing index is named, as a check in order would.
    cbus_key_t *key = cbus_key_new ();
    size_t sizes [] = { 5, 200 };
    for (size_t round = 0; round < 2; round++) {
        size_t count = sizes [round];
        s_signed_block_bytes (key, count, NULL, 0, &buf);
        copy = cbus_block_new_from_bytes (buf.data, buf.size, reason);
        assert (copy && cbus_block_tx_count (copy) == count);
        cbus_block_destroy (&copy);
        size_t forged [] = { count - 2, 1, count - 1 };
        s_signed_block_bytes (key, count, forged, 3, &buf);
        assert (cbus_block_new_from_bytes (buf.data, buf.size, reason) == NULL);
        assert (strstr (reason, "Block transaction 1: Signature does not verify"));
        s_signed_block_bytes (key, count, forged, 1, &buf);
        assert (cbus_block_new_from_bytes (buf.data, buf.size, reason) == NULL);
        char expected [64];
        snprintf (expected, sizeof (expected), "Block transaction %zu: ", count - 2);
        assert (strstr (reason, expected));
    }
    cbus_key_destroy (&key);

    cbus_buf_free (&buf);
    cbus_buf_free (&json);
    cbus_block_destroy (&block);
    cbus_block_destroy (&genesis);
    if (verbose)
        printf ("OK\n");
}
