/*  =========================================================================
    cbus_chain - the block tree on disk and the rules that admit a block
    =========================================================================
*/
#include "cbus_chain.h"
#include <stdarg.h>

//  Index record: height u64 BE, work [32], time u64 BE, parent [32].
#define S_ENTRY_BYTES (8 + CBUS_U256_BYTES + 8 + CBUS_HASH_BYTES)
//  Tx index record: block hash [32], position u32 BE.
#define S_WHERE_BYTES (CBUS_HASH_BYTES + 4)
//  Blocks whose times give the median time past (Bitcoin's 11).
#define S_MEDIAN_SPAN 11

struct _cbus_chain_t {
    cbus_store_t *store;                    //  The chain's LevelDB
    char *network;                          //  Network id
    uint32_t bits;                          //  The network's target
    uint64_t max_future_ms;                 //  Clock skew allowed
    uint8_t genesis [CBUS_HASH_BYTES];      //  Hash of block 0
    uint8_t tip [CBUS_HASH_BYTES];          //  Hash of the active tip
    cbus_chain_entry_t tip_entry;           //  And its index entry
};

static int
s_fail (char *reason, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (reason, CBUS_REASON_MAX, format, args);
    va_end (args);
    return -1;
}

static void
s_put_be64 (uint8_t *out, uint64_t value)
{
    for (int index = 0; index < 8; index++)
        out [index] = (uint8_t) (value >> (56 - 8 * index));
}

static uint64_t
s_get_be64 (const uint8_t *in)
{
    uint64_t value = 0;
    for (int index = 0; index < 8; index++)
        value = (value << 8) | in [index];
    return value;
}

//  A key: one prefix byte and up to 32 bytes.
typedef struct {
    uint8_t bytes [1 + CBUS_HASH_BYTES];
    size_t size;
} s_key_t;

static s_key_t
s_key (char prefix, const uint8_t *data, size_t size)
{
    s_key_t key;
    key.bytes [0] = (uint8_t) prefix;
    memcpy (key.bytes + 1, data, size);
    key.size = 1 + size;
    return key;
}

static s_key_t
s_height_key (uint64_t height)
{
    uint8_t be [8];
    s_put_be64 (be, height);
    return s_key ('H', be, 8);
}

static void
s_encode_entry (const cbus_chain_entry_t *entry, uint8_t out [S_ENTRY_BYTES])
{
    s_put_be64 (out, entry->height);
    memcpy (out + 8, entry->work, CBUS_U256_BYTES);
    s_put_be64 (out + 40, entry->time_ms);
    memcpy (out + 48, entry->prev_hash, CBUS_HASH_BYTES);
}

int
cbus_chain_entry (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES],
                  cbus_chain_entry_t *entry)
{
    s_key_t key = s_key ('I', hash, CBUS_HASH_BYTES);
    char *value;
    size_t size;
    if (cbus_store_get (self->store, key.bytes, key.size, &value, &size) || !value)
        return -1;
    int rc = -1;
    if (size == S_ENTRY_BYTES) {
        const uint8_t *bytes = (const uint8_t *) value;
        entry->height = s_get_be64 (bytes);
        memcpy (entry->work, bytes + 8, CBUS_U256_BYTES);
        entry->time_ms = s_get_be64 (bytes + 40);
        memcpy (entry->prev_hash, bytes + 48, CBUS_HASH_BYTES);
        rc = 0;
    }
    else
        zsys_error ("corrupt index record size=%zu", size);
    cbus_store_free (value);
    return rc;
}

int
cbus_chain_hash_at (cbus_chain_t *self, uint64_t height, uint8_t hash [CBUS_HASH_BYTES])
{
    if (height > self->tip_entry.height)
        return -1;
    s_key_t key = s_height_key (height);
    char *value;
    size_t size;
    if (cbus_store_get (self->store, key.bytes, key.size, &value, &size) || !value)
        return -1;
    int rc = size == CBUS_HASH_BYTES ? 0 : -1;
    if (rc == 0)
        memcpy (hash, value, CBUS_HASH_BYTES);
    cbus_store_free (value);
    return rc;
}

bool
cbus_chain_is_active (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES])
{
    cbus_chain_entry_t entry;
    uint8_t active [CBUS_HASH_BYTES];
    return cbus_chain_entry (self, hash, &entry) == 0
        && cbus_chain_hash_at (self, entry.height, active) == 0
        && memcmp (active, hash, CBUS_HASH_BYTES) == 0;
}

int
cbus_chain_block_by_hash (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES],
                          char **bytes_p, size_t *size_p)
{
    s_key_t key = s_key ('B', hash, CBUS_HASH_BYTES);
    return cbus_store_get (self->store, key.bytes, key.size, bytes_p, size_p);
}

int
cbus_chain_tx_where (cbus_chain_t *self, const uint8_t txid [CBUS_HASH_BYTES],
                     uint8_t block_hash [CBUS_HASH_BYTES], uint32_t *position)
{
    s_key_t key = s_key ('T', txid, CBUS_HASH_BYTES);
    char *value;
    size_t size;
    if (cbus_store_get (self->store, key.bytes, key.size, &value, &size) || !value)
        return -1;
    int rc = -1;
    if (size == S_WHERE_BYTES) {
        memcpy (block_hash, value, CBUS_HASH_BYTES);
        const uint8_t *bytes = (const uint8_t *) value + CBUS_HASH_BYTES;
        *position = (uint32_t) bytes [0] << 24 | (uint32_t) bytes [1] << 16
                  | (uint32_t) bytes [2] << 8 | bytes [3];
        rc = 0;
    }
    cbus_store_free (value);
    return rc;
}

//  Median of the times of the block and its ancestors (up to 11): a new
//  block must be later than this, so no miner can drag time backwards.
static uint64_t
s_median_time_past (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES])
{
    uint64_t times [S_MEDIAN_SPAN];
    int count = 0;
    uint8_t cursor [CBUS_HASH_BYTES];
    memcpy (cursor, hash, CBUS_HASH_BYTES);
    cbus_chain_entry_t entry;
    while (count < S_MEDIAN_SPAN && cbus_chain_entry (self, cursor, &entry) == 0) {
        times [count++] = entry.time_ms;
        if (entry.height == 0)
            break;
        memcpy (cursor, entry.prev_hash, CBUS_HASH_BYTES);
    }
    //  Insertion sort: at most 11 values.
    for (int index = 1; index < count; index++)
        for (int other = index; other > 0 && times [other - 1] > times [other]; other--) {
            uint64_t swap = times [other];
            times [other] = times [other - 1];
            times [other - 1] = swap;
        }
    return count ? times [count / 2] : 0;
}

cbus_chain_t *
cbus_chain_new (const char *path, const char *network, uint32_t bits,
                size_t cache_mb, uint64_t max_future_ms, char *reason)
{
    cbus_chain_t *self = (cbus_chain_t *) zmalloc (sizeof (cbus_chain_t));
    self->network = strdup (network);
    self->bits = bits;
    self->max_future_ms = max_future_ms;
    cbus_block_t *genesis = cbus_block_new_genesis (network, bits);
    cbus_block_hash (genesis, self->genesis);
    cbus_buf_t meta = {0};
    cbus_store_batch_t *batch = NULL;
    char *value = NULL;
    size_t size;
    cbus_buf_printf (&meta, "network=%s bits=%08x genesis=", network, bits);
    char hex [CBUS_HASH_HEX];
    cbus_buf_puts (&meta, cbus_hash_hex (self->genesis, hex));

    self->store = cbus_store_new (path, cache_mb, reason);
    if (!self->store)
        goto failed;
    if (cbus_store_get (self->store, "M", 1, &value, &size)) {
        s_fail (reason, "cannot read the chain store's meta record");
        goto failed;
    }
    if (value) {
        if (size != meta.size || memcmp (value, meta.data, size) != 0) {
            s_fail (reason, "the chain store at %s was made for another network "
                    "(it holds '%.*s', this node runs '%s')", path, (int) size, value, meta.data);
            goto failed;
        }
    }
    else {
        //  A new store: genesis, its index entries, the tip, the meta record.
        cbus_chain_entry_t entry = { .height = 0, .time_ms = cbus_block_header (genesis)->time_ms };
        if (cbus_pow_work (bits, entry.work)) {
            s_fail (reason, "invalid proof-of-work bits %08x", bits);
            goto failed;
        }
        batch = cbus_store_batch_new ();
        cbus_buf_t bytes = {0};
        cbus_block_encode (genesis, &bytes);
        s_key_t key = s_key ('B', self->genesis, CBUS_HASH_BYTES);
        cbus_store_batch_put (batch, key.bytes, key.size, bytes.data, bytes.size);
        cbus_buf_free (&bytes);
        uint8_t record [S_ENTRY_BYTES];
        s_encode_entry (&entry, record);
        key = s_key ('I', self->genesis, CBUS_HASH_BYTES);
        cbus_store_batch_put (batch, key.bytes, key.size, record, sizeof (record));
        key = s_height_key (0);
        cbus_store_batch_put (batch, key.bytes, key.size, self->genesis, CBUS_HASH_BYTES);
        cbus_store_batch_put (batch, "S", 1, self->genesis, CBUS_HASH_BYTES);
        cbus_store_batch_put (batch, "M", 1, meta.data, meta.size);
        if (cbus_store_write (self->store, batch, true)) {
            s_fail (reason, "cannot write the genesis block");
            goto failed;
        }
        zsys_info ("created chain network=%s genesis=%s", network, hex);
    }
    cbus_store_free (value);
    value = NULL;
    if (cbus_store_get (self->store, "S", 1, &value, &size) || !value
    ||  size != CBUS_HASH_BYTES) {
        s_fail (reason, "the chain store has no valid tip record");
        goto failed;
    }
    memcpy (self->tip, value, CBUS_HASH_BYTES);
    if (cbus_chain_entry (self, self->tip, &self->tip_entry)) {
        s_fail (reason, "the chain store's tip has no index entry");
        goto failed;
    }
    cbus_store_free (value);
    cbus_store_batch_destroy (&batch);
    cbus_block_destroy (&genesis);
    cbus_buf_free (&meta);
    return self;
failed:
    cbus_store_free (value);
    cbus_store_batch_destroy (&batch);
    cbus_block_destroy (&genesis);
    cbus_buf_free (&meta);
    cbus_chain_destroy (&self);
    return NULL;
}

void
cbus_chain_destroy (cbus_chain_t **self_p)
{
    assert (self_p);
    cbus_chain_t *self = *self_p;
    if (self) {
        cbus_store_destroy (&self->store);
        free (self->network);
        free (self);
        *self_p = NULL;
    }
}

const uint8_t *
cbus_chain_tip (cbus_chain_t *self, cbus_chain_entry_t *entry)
{
    if (entry)
        *entry = self->tip_entry;
    return self->tip;
}

const uint8_t *
cbus_chain_genesis (cbus_chain_t *self)
{
    return self->genesis;
}

uint32_t
cbus_chain_bits (cbus_chain_t *self)
{
    return self->bits;
}

cbus_chain_result_t
cbus_chain_submit (cbus_chain_t *self, const void *data, size_t size,
                   uint8_t hash [CBUS_HASH_BYTES], cbus_block_t **block_p,
                   char *reason)
{
    cbus_chain_result_t result = CBUS_CHAIN_INVALID;
    cbus_store_batch_t *batch = NULL;
    cbus_buf_t bytes = {0};
    memset (hash, 0, CBUS_HASH_BYTES);
    cbus_block_t *block = cbus_block_new_from_bytes (data, size, reason);
    if (!block)
        goto done;
    cbus_block_hash (block, hash);
    cbus_chain_entry_t entry;
    if (cbus_chain_entry (self, hash, &entry) == 0) {
        result = CBUS_CHAIN_DUPLICATE;
        goto done;
    }
    if (cbus_block_check (block, reason))
        goto done;
    cbus_header_t *header = cbus_block_header (block);
    if (header->bits != self->bits) {
        s_fail (reason, "Block target bits %08x are not the network's %08x", header->bits, self->bits);
        goto done;
    }
    cbus_chain_entry_t parent;
    if (cbus_chain_entry (self, header->prev_hash, &parent)) {
        s_fail (reason, "Block's previous hash is not a known block");
        goto done;
    }
    if (header->height != parent.height + 1) {
        s_fail (reason, "Block height %" PRIu64 " does not follow its parent's %" PRIu64,
                header->height, parent.height);
        goto done;
    }
    uint64_t median = s_median_time_past (self, header->prev_hash);
    if (header->time_ms <= median) {
        s_fail (reason, "Block time %" PRIu64 " is not after the median of the last blocks (%" PRIu64 ")",
                header->time_ms, median);
        goto done;
    }
    if (header->time_ms > cbus_time_ms () + self->max_future_ms) {
        s_fail (reason, "Block time is too far in the future");
        goto done;
    }
    cbus_chain_entry_t new_entry = { .height = header->height, .time_ms = header->time_ms };
    memcpy (new_entry.prev_hash, header->prev_hash, CBUS_HASH_BYTES);
    uint8_t work [CBUS_U256_BYTES];
    if (cbus_pow_work (header->bits, work)) {
        s_fail (reason, "Block target bits are invalid");
        goto done;
    }
    cbus_u256_add (parent.work, work, new_entry.work);
    bool extends_tip = memcmp (header->prev_hash, self->tip, CBUS_HASH_BYTES) == 0;

    batch = cbus_store_batch_new ();
    cbus_block_encode (block, &bytes);
    s_key_t key = s_key ('B', hash, CBUS_HASH_BYTES);
    cbus_store_batch_put (batch, key.bytes, key.size, bytes.data, bytes.size);
    uint8_t record [S_ENTRY_BYTES];
    s_encode_entry (&new_entry, record);
    key = s_key ('I', hash, CBUS_HASH_BYTES);
    cbus_store_batch_put (batch, key.bytes, key.size, record, sizeof (record));
    if (extends_tip) {
        //  No transaction may already be in the chain.
        for (size_t index = 0; index < cbus_block_tx_count (block); index++) {
            const uint8_t *txid = cbus_tx_id (cbus_block_tx (block, index));
            uint8_t where [CBUS_HASH_BYTES];
            uint32_t position;
            if (cbus_chain_tx_where (self, txid, where, &position) == 0) {
                char hex [CBUS_HASH_HEX];
                s_fail (reason, "Transaction %s is already in the chain", cbus_hash_hex (txid, hex));
                goto done;
            }
            uint8_t value [S_WHERE_BYTES];
            memcpy (value, hash, CBUS_HASH_BYTES);
            value [32] = (uint8_t) (index >> 24);
            value [33] = (uint8_t) (index >> 16);
            value [34] = (uint8_t) (index >> 8);
            value [35] = (uint8_t) index;
            key = s_key ('T', txid, CBUS_HASH_BYTES);
            cbus_store_batch_put (batch, key.bytes, key.size, value, sizeof (value));
        }
        key = s_height_key (header->height);
        cbus_store_batch_put (batch, key.bytes, key.size, hash, CBUS_HASH_BYTES);
        cbus_store_batch_put (batch, "S", 1, hash, CBUS_HASH_BYTES);
    }
    else
    if (cbus_u256_cmp (new_entry.work, self->tip_entry.work) > 0)
        //  More work on another branch: switching to it is a
        //  reorganisation, which this version does not do yet. The block
        //  is kept so that a later version can.
        zsys_warning ("block on a branch with more work kept, not activated height=%" PRIu64,
                      header->height);
    if (cbus_store_write (self->store, batch, true)) {
        s_fail (reason, "The chain store could not write the block");
        result = CBUS_CHAIN_FAILED;
        goto done;
    }
    if (extends_tip) {
        memcpy (self->tip, hash, CBUS_HASH_BYTES);
        self->tip_entry = new_entry;
        result = CBUS_CHAIN_CONNECTED;
        if (block_p) {
            *block_p = block;
            block = NULL;
        }
    }
    else
        result = CBUS_CHAIN_SIDE;
done:
    cbus_buf_free (&bytes);
    cbus_store_batch_destroy (&batch);
    cbus_block_destroy (&block);
    return result;
}

//  --------------------------------------------------------------------------
//  Self test

//  Mine a block of count fresh transactions on the tip; returns its bytes.
static void
s_make_block (cbus_chain_t *chain, int count, uint64_t time_ms, cbus_buf_t *out,
              const char *prev_override)
{
    cbus_chain_entry_t tip;
    const uint8_t *tip_hash = cbus_chain_tip (chain, &tip);
    cbus_header_t header = {
        .version = CBUS_BLOCK_VERSION, .height = tip.height + 1,
        .time_ms = time_ms, .bits = cbus_chain_bits (chain), .miner = 1
    };
    memcpy (header.prev_hash, prev_override ? (const uint8_t *) prev_override : tip_hash,
            CBUS_HASH_BYTES);
    cbus_block_t *block = cbus_block_new (&header);
    char reason [CBUS_REASON_MAX];
    static int serial = 0;
    for (int index = 0; index < count; index++) {
        char *text = zsys_sprintf ("{\"users\": \"u\", \"data\": %d, \"dh_parameters\": \"\","
            " \"server_public_key\": \"\", \"receiver_public_key\": \"\", \"sender_public_key\": \"\"}",
            serial++);
        json_t *object = cbus_json_parse (text, strlen (text), reason);
        cbus_tx_t *tx = cbus_tx_new_from_json (object, 1000, reason);
        assert (tx);
        cbus_block_add_tx (block, &tx);
        json_decref (object);
        zstr_free (&text);
    }
    cbus_block_merkle (block, cbus_block_header (block)->merkle_root);
    uint8_t hash [CBUS_HASH_BYTES];
    for (cbus_block_header (block)->nonce = 0; ; cbus_block_header (block)->nonce++) {
        cbus_block_hash (block, hash);
        if (cbus_pow_check (hash, header.bits))
            break;
    }
    cbus_buf_reset (out);
    cbus_block_encode (block, out);
    cbus_block_destroy (&block);
}

void
cbus_chain_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_chain: ");
    char path [] = "/tmp/cbus_chain_test_XXXXXX";
    assert (mkdtemp (path));
    char reason [CBUS_REASON_MAX];
    cbus_chain_t *chain = cbus_chain_new (path, "test", 0x2000ffff, 8, 3600000, reason);
    assert (chain);
    cbus_chain_entry_t tip;
    cbus_chain_tip (chain, &tip);
    assert (tip.height == 0);
    assert (memcmp (cbus_chain_tip (chain, NULL), cbus_chain_genesis (chain), CBUS_HASH_BYTES) == 0);

    //  Three blocks connect in turn.
    cbus_buf_t bytes = {0};
    uint8_t hash [CBUS_HASH_BYTES];
    uint64_t now = cbus_time_ms ();
    for (int height = 1; height <= 3; height++) {
        s_make_block (chain, height, now + (uint64_t) height, &bytes, NULL);
        cbus_block_t *block = NULL;
        cbus_chain_result_t result = cbus_chain_submit (chain, bytes.data, bytes.size, hash, &block, reason);
        assert (result == CBUS_CHAIN_CONNECTED);
        assert (block && cbus_block_tx_count (block) == (size_t) height);
        cbus_block_destroy (&block);
    }
    cbus_chain_tip (chain, &tip);
    assert (tip.height == 3);
    //  Submitting it again is harmless.
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, NULL, reason) == CBUS_CHAIN_DUPLICATE);
    //  Its transactions are indexed.
    cbus_block_t *block = cbus_block_new_from_bytes (bytes.data, bytes.size, reason);
    uint8_t where [CBUS_HASH_BYTES];
    uint32_t position;
    assert (cbus_chain_tx_where (chain, cbus_tx_id (cbus_block_tx (block, 2)), where, &position) == 0);
    assert (position == 2 && memcmp (where, hash, CBUS_HASH_BYTES) == 0);
    assert (cbus_chain_is_active (chain, hash));

    //  A block repeating a confirmed transaction is refused.
    cbus_header_t header = *cbus_block_header (block);
    header.height = 4;
    memcpy (header.prev_hash, hash, CBUS_HASH_BYTES);
    header.time_ms = now + 10;
    cbus_block_t *replay = cbus_block_new (&header);
    size_t tx_size;
    const uint8_t *tx_bytes = cbus_tx_bytes (cbus_block_tx (block, 0), &tx_size);
    cbus_tx_t *again = cbus_tx_new_from_bytes (tx_bytes, tx_size, reason);
    cbus_block_add_tx (replay, &again);
    cbus_block_merkle (replay, cbus_block_header (replay)->merkle_root);
    uint8_t replay_hash [CBUS_HASH_BYTES];
    for (cbus_block_header (replay)->nonce = 0; ; cbus_block_header (replay)->nonce++) {
        cbus_block_hash (replay, replay_hash);
        if (cbus_pow_check (replay_hash, header.bits))
            break;
    }
    cbus_buf_reset (&bytes);
    cbus_block_encode (replay, &bytes);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, NULL, reason) == CBUS_CHAIN_INVALID);
    assert (strstr (reason, "already in the chain"));
    cbus_block_destroy (&replay);
    cbus_block_destroy (&block);

    //  Refusals: unknown parent, time before the median, garbage.
    uint8_t nowhere [CBUS_HASH_BYTES];
    memset (nowhere, 7, sizeof (nowhere));
    s_make_block (chain, 1, now + 20, &bytes, (const char *) nowhere);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, NULL, reason) == CBUS_CHAIN_INVALID);
    assert (strstr (reason, "not a known block"));
    s_make_block (chain, 1, now - 1000, &bytes, NULL);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, NULL, reason) == CBUS_CHAIN_INVALID);
    assert (strstr (reason, "median"));
    s_make_block (chain, 1, now + 100000000, &bytes, NULL);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, NULL, reason) == CBUS_CHAIN_INVALID);
    assert (strstr (reason, "future"));
    assert (cbus_chain_submit (chain, "junk", 4, hash, NULL, reason) == CBUS_CHAIN_INVALID);

    //  Reopened: same tip. Another network on the same folder: refused.
    cbus_chain_destroy (&chain);
    chain = cbus_chain_new (path, "test", 0x2000ffff, 8, 3600000, reason);
    assert (chain);
    cbus_chain_tip (chain, &tip);
    assert (tip.height == 3);
    uint8_t at_two [CBUS_HASH_BYTES];
    assert (cbus_chain_hash_at (chain, 2, at_two) == 0);
    assert (cbus_chain_hash_at (chain, 4, at_two) == -1);
    cbus_chain_destroy (&chain);
    assert (cbus_chain_new (path, "other", 0x2000ffff, 8, 3600000, reason) == NULL);
    assert (strstr (reason, "another network"));
    cbus_buf_free (&bytes);
    char *command = zsys_sprintf ("rm -rf %s", path);
    assert (system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("OK\n");
}
