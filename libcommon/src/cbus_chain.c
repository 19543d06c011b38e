/*  =========================================================================
    cbus_chain - the block tree on disk and the rules that admit a block
    =========================================================================
*/
#include "cbus.h"
#include <stdarg.h>

//  The keys and records are cbus_layout's.

struct _cbus_chain_t {
    cbus_store_t *store;                    //  The chain's LevelDB
    zlistx_t *left;                         //  Blocks the last change disconnected
    zlistx_t *joined;                       //  Blocks the last change connected
    char *network;                          //  Network id
    uint32_t bits;                          //  The network's target
    uint64_t max_future_ms;                 //  Clock skew allowed
    uint8_t genesis [CBUS_HASH_BYTES];      //  Hash of block 0
    uint8_t tip [CBUS_HASH_BYTES];          //  Hash of the active tip
    cbus_chain_entry_t tip_entry;           //  And its index entry
};

//  Put a record under a key in the batch.
static void
s_put (cbus_store_batch_t *batch, cbus_layout_key_t key, const void *value, size_t size)
{
    cbus_store_batch_put (batch, key.bytes, key.size, value, size);
}

static void
s_delete (cbus_store_batch_t *batch, cbus_layout_key_t key)
{
    cbus_store_batch_delete (batch, key.bytes, key.size);
}

int
cbus_chain_entry (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES],
                  cbus_chain_entry_t *entry)
{
    cbus_layout_key_t key = cbus_layout_hash_key (CBUS_LAYOUT_ENTRY, hash);
    char *value;
    size_t size;
    if (cbus_store_get (self->store, key.bytes, key.size, &value, &size) || !value)
        return -1;
    int rc = cbus_layout_entry_decode (value, size, entry);
    if (rc)
        zsys_error ("corrupt index record size=%zu", size);
    cbus_store_free (value);
    return rc;
}

int
cbus_chain_hash_at (cbus_chain_t *self, uint64_t height, uint8_t hash [CBUS_HASH_BYTES])
{
    if (height > self->tip_entry.height)
        return -1;
    cbus_layout_key_t key = cbus_layout_height_key (height);
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
    cbus_layout_key_t key = cbus_layout_hash_key (CBUS_LAYOUT_BLOCK, hash);
    return cbus_store_get (self->store, key.bytes, key.size, bytes_p, size_p);
}

int
cbus_chain_tx_where (cbus_chain_t *self, const uint8_t txid [CBUS_HASH_BYTES],
                     uint8_t block_hash [CBUS_HASH_BYTES], uint32_t *position)
{
    cbus_layout_key_t key = cbus_layout_hash_key (CBUS_LAYOUT_TX, txid);
    char *value;
    size_t size;
    if (cbus_store_get (self->store, key.bytes, key.size, &value, &size) || !value)
        return -1;
    int rc = cbus_layout_where_decode (value, size, block_hash, position);
    cbus_store_free (value);
    return rc;
}

//  Median of the times of the block and its ancestors (up to 11): a new
//  block must be later than this, so no miner can drag time backwards.
static uint64_t
s_median_time_past (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES])
{
    uint64_t times [CBUS_CHAIN_MEDIAN_SPAN];
    int count = 0;
    uint8_t cursor [CBUS_HASH_BYTES];
    memcpy (cursor, hash, CBUS_HASH_BYTES);
    cbus_chain_entry_t entry;
    while (count < CBUS_CHAIN_MEDIAN_SPAN && cbus_chain_entry (self, cursor, &entry) == 0) {
        times [count++] = entry.header.time_ms;
        if (entry.height == 0)
            break;
        memcpy (cursor, entry.header.prev_hash, CBUS_HASH_BYTES);
    }
    return cbus_median_u64 (times, (size_t) count);
}

//  A new store: genesis, its index entries, the tip, the meta record.
static int
s_create (cbus_chain_t *self, cbus_block_t *genesis, const char *meta, char *reason)
{
    cbus_chain_entry_t entry = { .height = 0, .header = *cbus_block_header (genesis) };
    if (cbus_pow_work (self->bits, entry.work))
        return cbus_fail (reason, "invalid proof-of-work bits %08x", self->bits);
    cbus_store_batch_t *batch = cbus_store_batch_new ();
    cbus_buf_t bytes = {0};
    cbus_block_encode (genesis, &bytes);
    s_put (batch, cbus_layout_hash_key (CBUS_LAYOUT_BLOCK, self->genesis), bytes.data, bytes.size);
    cbus_buf_free (&bytes);
    uint8_t record [CBUS_LAYOUT_ENTRY_BYTES];
    cbus_layout_entry_encode (&entry, record);
    s_put (batch, cbus_layout_hash_key (CBUS_LAYOUT_ENTRY, self->genesis), record, sizeof (record));
    s_put (batch, cbus_layout_height_key (0), self->genesis, CBUS_HASH_BYTES);
    s_put (batch, cbus_layout_single_key (CBUS_LAYOUT_TIP), self->genesis, CBUS_HASH_BYTES);
    s_put (batch, cbus_layout_single_key (CBUS_LAYOUT_META), meta, strlen (meta));
    int rc = cbus_store_write (self->store, batch, true);
    cbus_store_batch_destroy (&batch);
    if (rc)
        return cbus_fail (reason, "cannot write the genesis block");
    char hex [CBUS_HASH_HEX];
    zsys_info ("created chain network=%s genesis=%s", self->network,
               cbus_hash_hex (self->genesis, hex));
    return 0;
}

cbus_chain_t *
cbus_chain_new (const char *path, const char *network, uint32_t bits,
                size_t cache_mb, uint64_t max_future_ms, char *reason)
{
    return cbus_chain_open (path, network, bits, cache_mb, max_future_ms, NULL, reason);
}

cbus_chain_t *
cbus_chain_open (const char *path, const char *network, uint32_t bits, size_t cache_mb,
                 uint64_t max_future_ms, cbus_store_fault_t *fault, char *reason)
{
    cbus_chain_t *self = (cbus_chain_t *) zmalloc (sizeof (cbus_chain_t));
    self->left = zlistx_new ();
    self->joined = zlistx_new ();
    zlistx_set_destructor (self->left, (zlistx_destructor_fn *) cbus_block_destroy);
    zlistx_set_destructor (self->joined, (zlistx_destructor_fn *) cbus_block_destroy);
    self->network = strdup (network);
    self->bits = bits;
    self->max_future_ms = max_future_ms;
    cbus_block_t *genesis = cbus_block_new_genesis (network, bits);
    cbus_block_hash (genesis, self->genesis);
    char *meta = cbus_layout_meta (network, bits, self->genesis);
    char *value = NULL;
    size_t size;
    cbus_layout_key_t meta_key = cbus_layout_single_key (CBUS_LAYOUT_META);
    cbus_layout_key_t tip_key = cbus_layout_single_key (CBUS_LAYOUT_TIP);

    self->store = cbus_store_open (path, cache_mb, fault, reason);
    if (!self->store)
        goto failed;
    if (cbus_store_get (self->store, meta_key.bytes, meta_key.size, &value, &size)) {
        cbus_fail (reason, "cannot read the chain store's meta record");
        goto failed;
    }
    if (value) {
        if (size != strlen (meta) || memcmp (value, meta, size) != 0) {
            cbus_fail (reason, "the chain store at %s was made for another network "
                    "(it holds '%.*s', this node runs '%s')", path, (int) size, value, meta);
            goto failed;
        }
    }
    else
    if (s_create (self, genesis, meta, reason))
        goto failed;
    cbus_store_free (value);
    value = NULL;
    if (cbus_store_get (self->store, tip_key.bytes, tip_key.size, &value, &size) || !value
    ||  size != CBUS_HASH_BYTES) {
        cbus_fail (reason, "the chain store has no valid tip record");
        goto failed;
    }
    memcpy (self->tip, value, CBUS_HASH_BYTES);
    if (cbus_chain_entry (self, self->tip, &self->tip_entry)) {
        cbus_fail (reason, "the chain store's tip has no index entry");
        goto failed;
    }
    cbus_store_free (value);
    cbus_block_destroy (&genesis);
    zstr_free (&meta);
    return self;
failed:
    cbus_store_free (value);
    cbus_block_destroy (&genesis);
    zstr_free (&meta);
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
        zlistx_destroy (&self->left);
        zlistx_destroy (&self->joined);
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

size_t
cbus_chain_left_count (cbus_chain_t *self)
{
    return zlistx_size (self->left);
}

//  The block at index in a list, or NULL. O(index).
static cbus_block_t *
s_nth (zlistx_t *list, size_t index)
{
    cbus_block_t *block = (cbus_block_t *) zlistx_first (list);
    while (block && index--)
        block = (cbus_block_t *) zlistx_next (list);
    return block;
}

cbus_block_t *
cbus_chain_left (cbus_chain_t *self, size_t index)
{
    return s_nth (self->left, index);
}

size_t
cbus_chain_joined_count (cbus_chain_t *self)
{
    return zlistx_size (self->joined);
}

cbus_block_t *
cbus_chain_joined (cbus_chain_t *self, size_t index)
{
    return s_nth (self->joined, index);
}

//  Add (or remove) the history entries of a transaction at a position.
static void
s_history_update (cbus_store_batch_t *batch, cbus_tx_t *tx, uint64_t height, uint32_t index,
                  bool add)
{
    cbus_buf_t key = {0};
    const char *names [CBUS_TX_MAX_USERS + 2];
    char kinds [CBUS_TX_MAX_USERS + 2];
    size_t count = 0;
    for (size_t user = 0; user < cbus_tx_user_count (tx); user++) {
        kinds [count] = CBUS_HISTORY_USER;
        names [count++] = cbus_tx_user (tx, user);
    }
    kinds [count] = CBUS_HISTORY_KEY;
    names [count++] = cbus_tx_sender_key (tx);
    if (!streq (cbus_tx_receiver_key (tx), cbus_tx_sender_key (tx))) {
        kinds [count] = CBUS_HISTORY_KEY;
        names [count++] = cbus_tx_receiver_key (tx);
    }
    for (size_t entry = 0; entry < count; entry++) {
        if (!*names [entry])
            continue;                   //  An empty key field names nobody
        cbus_layout_history_key (&key, kinds [entry], names [entry], strlen (names [entry]),
                                 height, index);
        if (add)
            cbus_store_batch_put (batch, key.data, key.size, cbus_tx_id (tx), CBUS_HASH_BYTES);
        else
            cbus_store_batch_delete (batch, key.data, key.size);
    }
    cbus_buf_free (&key);
}

size_t
cbus_chain_history (cbus_chain_t *self, char kind, const char *name,
                    uint64_t before_height, uint32_t before_index,
                    cbus_chain_history_t *items, size_t max)
{
    cbus_buf_t seek = {0};
    size_t name_size = strlen (name);
    if (before_height == UINT64_MAX) {
        //  Just past every entry of this name: its prefix with the NUL
        //  raised to 0x01.
        cbus_layout_history_prefix (&seek, kind, name, name_size);
        seek.data [seek.size - 1] = 1;
    }
    else
        cbus_layout_history_key (&seek, kind, name, name_size, before_height, before_index);
    cbus_store_iter_t *iter = cbus_store_iter_new (self->store);
    cbus_store_iter_seek (iter, seek.data, seek.size);
    if (cbus_store_iter_valid (iter))
        cbus_store_iter_prev (iter);    //  The last key before the seek
    else
        cbus_store_iter_seek_last (iter);
    size_t count = 0;
    while (count < max && cbus_store_iter_valid (iter)) {
        size_t key_size, value_size;
        const char *key = cbus_store_iter_key (iter, &key_size);
        const char *value = cbus_store_iter_value (iter, &value_size);
        const char *found;
        size_t found_size;
        if (key_size < 1 || key [0] != kind
        ||  cbus_layout_history_decode (key, key_size, &found, &found_size,
                                        &items [count].height, &items [count].index)
        ||  found_size != name_size || memcmp (found, name, name_size) != 0
        ||  value_size != CBUS_HASH_BYTES)
            break;
        memcpy (items [count].txid, value, CBUS_HASH_BYTES);
        count++;
        cbus_store_iter_prev (iter);
    }
    cbus_store_iter_destroy (&iter);
    cbus_buf_free (&seek);
    return count;
}

static cbus_block_t *
s_load_block (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES], char *reason)
{
    char *bytes = NULL;
    size_t size;
    if (cbus_chain_block_by_hash (self, hash, &bytes, &size) || !bytes) {
        snprintf (reason, CBUS_REASON_MAX, "A stored block is missing");
        return NULL;
    }
    cbus_block_t *block = cbus_block_new_from_bytes (bytes, size, reason);
    cbus_store_free (bytes);
    return block;
}

//  Make the branch ending in the new block active, in the batch: walk it
//  back to the fork with the active chain, disconnect the active blocks
//  above the fork, connect the branch's blocks from the fork up. Fills
//  self->left and self->joined. The new block is taken (block_p). -1 with
//  a reason if the branch holds a transaction twice or one the remaining
//  chain already has; nothing is written then.
static int
s_activate (cbus_chain_t *self, cbus_store_batch_t *batch, const uint8_t new_hash [CBUS_HASH_BYTES],
            const cbus_chain_entry_t *new_entry, cbus_block_t **block_p,
            cbus_code_t *code, char *reason)
{
    *code = CBUS_CODE_STORAGE;          //  Unless a transaction is the reason
    zlistx_purge (self->left);
    zlistx_purge (self->joined);
    //  The branch, from the new block down to the first active ancestor.
    //  Reversed into self->joined, lowest first.
    zlistx_add_start (self->joined, *block_p);
    *block_p = NULL;
    uint8_t cursor [CBUS_HASH_BYTES];
    memcpy (cursor, new_entry->header.prev_hash, CBUS_HASH_BYTES);
    cbus_chain_entry_t entry;
    while (!cbus_chain_is_active (self, cursor)) {
        cbus_block_t *block = s_load_block (self, cursor, reason);
        if (!block || cbus_chain_entry (self, cursor, &entry))
            goto failed;
        zlistx_add_start (self->joined, block);
        memcpy (cursor, entry.header.prev_hash, CBUS_HASH_BYTES);
    }
    if (cbus_chain_entry (self, cursor, &entry))
        goto failed;
    uint64_t fork_height = entry.height;

    //  Disconnect: the active blocks above the fork, tip first.
    zhashx_t *removed = cbus_hash_table_new ();
    zhashx_t *added = cbus_hash_table_new ();
    int rc = 0;
    for (uint64_t height = self->tip_entry.height; height > fork_height && rc == 0; height--) {
        uint8_t hash [CBUS_HASH_BYTES];
        cbus_block_t *block = NULL;
        if (cbus_chain_hash_at (self, height, hash) || !(block = s_load_block (self, hash, reason))) {
            rc = -1;
            break;
        }
        zlistx_add_end (self->left, block);
        for (size_t index = 0; index < cbus_block_tx_count (block); index++) {
            const uint8_t *txid = cbus_tx_id (cbus_block_tx (block, index));
            s_history_update (batch, cbus_block_tx (block, index), height, (uint32_t) index, false);
            s_delete (batch, cbus_layout_hash_key (CBUS_LAYOUT_TX, txid));
            zhashx_insert (removed, txid, (void *) 1);
        }
        s_delete (batch, cbus_layout_height_key (height));
    }
    //  Connect: the branch from the fork up, each transaction new to the
    //  chain that remains.
    uint64_t height = fork_height;
    for (cbus_block_t *block = (cbus_block_t *) zlistx_first (self->joined); block && rc == 0;
         block = (cbus_block_t *) zlistx_next (self->joined)) {
        height++;
        uint8_t hash [CBUS_HASH_BYTES];
        cbus_block_hash (block, hash);
        for (size_t index = 0; index < cbus_block_tx_count (block) && rc == 0; index++) {
            const uint8_t *txid = cbus_tx_id (cbus_block_tx (block, index));
            uint8_t where [CBUS_HASH_BYTES];
            uint32_t position;
            if (zhashx_lookup (added, txid)
            ||  (cbus_chain_tx_where (self, txid, where, &position) == 0
                 && !zhashx_lookup (removed, txid))) {
                char hex [CBUS_HASH_HEX];
                *code = CBUS_CODE_CONFIRMED;
                rc = cbus_fail (reason, "Transaction %s is already in the chain", cbus_hash_hex (txid, hex));
                break;
            }
            zhashx_insert (added, txid, (void *) 1);
            s_history_update (batch, cbus_block_tx (block, index), height, (uint32_t) index, true);
            uint8_t value [CBUS_LAYOUT_WHERE_BYTES];
            cbus_layout_where_encode (hash, (uint32_t) index, value);
            s_put (batch, cbus_layout_hash_key (CBUS_LAYOUT_TX, txid), value, sizeof (value));
        }
        s_put (batch, cbus_layout_height_key (height), hash, CBUS_HASH_BYTES);
    }
    s_put (batch, cbus_layout_single_key (CBUS_LAYOUT_TIP), new_hash, CBUS_HASH_BYTES);
    zhashx_destroy (&removed);
    zhashx_destroy (&added);
    if (rc == 0)
        return 0;
failed:
    zlistx_purge (self->left);
    zlistx_purge (self->joined);
    return -1;
}

int
cbus_chain_check_context (const cbus_header_t *header, const cbus_chain_entry_t *parent,
                          uint64_t median_time_past, uint32_t bits, uint64_t now_ms,
                          uint64_t max_future_ms, cbus_chain_entry_t *entry_out,
                          cbus_code_t *code, char *reason)
{
    cbus_code_t ignored;
    if (!code)
        code = &ignored;
    *code = CBUS_CODE_OK;
    uint8_t work [CBUS_U256_BYTES];
    if (header->bits != bits && (*code = CBUS_CODE_BAD_BITS))
        return cbus_fail (reason, "Block target bits %08x are not the network's %08x",
                          header->bits, bits);
    if (!parent && (*code = CBUS_CODE_ORPHAN))
        return cbus_fail (reason, "Block's previous hash is not a known block");
    if (header->height != parent->height + 1 && (*code = CBUS_CODE_BAD_HEIGHT))
        return cbus_fail (reason, "Block height %" PRIu64 " does not follow its parent's %" PRIu64,
                          header->height, parent->height);
    if (header->time_ms <= median_time_past && (*code = CBUS_CODE_BAD_TIME))
        return cbus_fail (reason, "Block time %" PRIu64 " is not after the median of the last "
                          "blocks (%" PRIu64 ")", header->time_ms, median_time_past);
    if (header->time_ms > now_ms && header->time_ms - now_ms > max_future_ms
    &&  (*code = CBUS_CODE_BAD_TIME))
        return cbus_fail (reason, "Block time is too far in the future");
    if (cbus_pow_work (header->bits, work) && (*code = CBUS_CODE_BAD_BITS))
        return cbus_fail (reason, "Block target bits are invalid");
    if (entry_out) {
        entry_out->height = header->height;
        entry_out->header = *header;
        cbus_u256_add (parent->work, work, entry_out->work);
    }
    return 0;
}

cbus_store_t *
cbus_chain_store (cbus_chain_t *self)
{
    return self->store;
}

cbus_chain_result_t
cbus_chain_submit (cbus_chain_t *self, const void *data, size_t size,
                   uint8_t hash [CBUS_HASH_BYTES], cbus_code_t *code, char *reason)
{
    cbus_code_t ignored;
    if (!code)
        code = &ignored;
    *code = CBUS_CODE_MALFORMED;
    cbus_chain_result_t result = CBUS_CHAIN_INVALID;
    cbus_store_batch_t *batch = NULL;
    cbus_buf_t bytes = {0};
    memset (hash, 0, CBUS_HASH_BYTES);
    zlistx_purge (self->left);
    zlistx_purge (self->joined);
    cbus_block_t *block = cbus_block_new_from_bytes (data, size, reason);
    if (!block)
        goto done;
    cbus_block_hash (block, hash);
    cbus_chain_entry_t entry;
    if (cbus_chain_entry (self, hash, &entry) == 0) {
        *code = CBUS_CODE_OK;
        result = CBUS_CHAIN_DUPLICATE;
        goto done;
    }
    if (cbus_block_check (block, code, reason))
        goto done;
    cbus_header_t *header = cbus_block_header (block);
    cbus_chain_entry_t parent, new_entry;
    bool known = cbus_chain_entry (self, header->prev_hash, &parent) == 0;
    uint64_t median = known? s_median_time_past (self, header->prev_hash): 0;
    if (cbus_chain_check_context (header, known? &parent: NULL, median, self->bits,
                                  cbus_time_ms (), self->max_future_ms, &new_entry, code, reason))
        goto done;

    //  The block and its index entry, whatever branch it is on.
    batch = cbus_store_batch_new ();
    cbus_block_encode (block, &bytes);
    s_put (batch, cbus_layout_hash_key (CBUS_LAYOUT_BLOCK, hash), bytes.data, bytes.size);
    uint8_t record [CBUS_LAYOUT_ENTRY_BYTES];
    cbus_layout_entry_encode (&new_entry, record);
    s_put (batch, cbus_layout_hash_key (CBUS_LAYOUT_ENTRY, hash), record, sizeof (record));
    //  Most work wins; on a tie the branch seen first stays.
    bool activate = cbus_u256_cmp (new_entry.work, self->tip_entry.work) > 0;
    if (activate && s_activate (self, batch, hash, &new_entry, &block, code, reason)) {
        if (*code == CBUS_CODE_STORAGE)
            result = CBUS_CHAIN_FAILED;
        goto done;
    }
    if (cbus_store_write (self->store, batch, true)) {
        *code = CBUS_CODE_STORAGE;
        cbus_fail (reason, "The chain store could not write the block");
        zlistx_purge (self->left);
        zlistx_purge (self->joined);
        result = CBUS_CHAIN_FAILED;
        goto done;
    }
    *code = CBUS_CODE_OK;
    if (activate) {
        memcpy (self->tip, hash, CBUS_HASH_BYTES);
        self->tip_entry = new_entry;
        result = CBUS_CHAIN_CONNECTED;
        if (zlistx_size (self->left))
            zsys_warning ("reorganised fork_height=%" PRIu64 " left=%zu joined=%zu height=%" PRIu64,
                          new_entry.height - zlistx_size (self->joined),
                          zlistx_size (self->left), zlistx_size (self->joined), new_entry.height);
    }
    else
        result = CBUS_CHAIN_SIDE;
done:
    cbus_buf_free (&bytes);
    cbus_store_batch_destroy (&batch);
    cbus_block_destroy (&block);
    return result;
}

size_t
cbus_chain_locator (cbus_chain_t *self, uint8_t hashes [][CBUS_HASH_BYTES])
{
    size_t count = 0;
    uint64_t height = self->tip_entry.height;
    uint64_t step = 1;
    while (count < CBUS_LOCATOR_MAX - 1) {
        if (cbus_chain_hash_at (self, height, hashes [count]) == 0)
            count++;
        if (height == 0)
            return count;
        if (count >= 10)
            step *= 2;
        height = height > step ? height - step : 0;
    }
    memcpy (hashes [count++], self->genesis, CBUS_HASH_BYTES);
    return count;
}

uint64_t
cbus_chain_fork_point (cbus_chain_t *self, const uint8_t hashes [][CBUS_HASH_BYTES], size_t count)
{
    uint64_t best = 0;
    for (size_t index = 0; index < count; index++) {
        cbus_chain_entry_t entry;
        if (cbus_chain_is_active (self, hashes [index])
        &&  cbus_chain_entry (self, hashes [index], &entry) == 0 && entry.height > best)
            best = entry.height;
    }
    return best;
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
        cbus_chain_result_t result = cbus_chain_submit (chain, bytes.data, bytes.size, hash, NULL, reason);
        assert (result == CBUS_CHAIN_CONNECTED);
        assert (cbus_chain_left_count (chain) == 0 && cbus_chain_joined_count (chain) == 1);
        assert (cbus_block_tx_count (cbus_chain_joined (chain, 0)) == (size_t) height);
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
    cbus_code_t code;
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, &code, reason) == CBUS_CHAIN_INVALID);
    assert (code == CBUS_CODE_CONFIRMED && strstr (reason, "already in the chain"));
    cbus_block_destroy (&replay);
    cbus_block_destroy (&block);

    //  Refusals: unknown parent, time before the median, garbage.
    uint8_t nowhere [CBUS_HASH_BYTES];
    memset (nowhere, 7, sizeof (nowhere));
    s_make_block (chain, 1, now + 20, &bytes, (const char *) nowhere);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, &code, reason) == CBUS_CHAIN_INVALID);
    assert (code == CBUS_CODE_ORPHAN && strstr (reason, "not a known block"));
    s_make_block (chain, 1, now - 1000, &bytes, NULL);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, &code, reason) == CBUS_CHAIN_INVALID);
    assert (code == CBUS_CODE_BAD_TIME && strstr (reason, "median"));
    s_make_block (chain, 1, now + 100000000, &bytes, NULL);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, &code, reason) == CBUS_CHAIN_INVALID);
    assert (code == CBUS_CODE_BAD_TIME && strstr (reason, "future"));
    assert (cbus_chain_submit (chain, "junk", 4, hash, &code, reason) == CBUS_CHAIN_INVALID);
    assert (code == CBUS_CODE_MALFORMED);

    //  The context rules on their own: each refusal with its code, and
    //  the index entry of a header that passes.
    cbus_chain_entry_t parent = { .height = 5 }, child;
    parent.work [31] = 1;
    cbus_header_t context = { .height = 6, .time_ms = 1000, .bits = 0x2000ffff };
    assert (cbus_chain_check_context (&context, &parent, 999, 0x2000ffff, 1000, 0, &child,
                                      &code, reason) == 0);
    assert (code == CBUS_CODE_OK && child.height == 6 && child.header.time_ms == 1000);
    uint8_t one_work [CBUS_U256_BYTES];
    assert (cbus_pow_work (0x2000ffff, one_work) == 0);
    assert (child.work [31] == (uint8_t) (one_work [31] + 1));
    assert (cbus_chain_check_context (&context, &parent, 999, 0x2000fffe, 1000, 0, NULL,
                                      &code, reason) == -1 && code == CBUS_CODE_BAD_BITS);
    assert (cbus_chain_check_context (&context, NULL, 999, 0x2000ffff, 1000, 0, NULL,
                                      &code, reason) == -1 && code == CBUS_CODE_ORPHAN);
    context.height = 7;
    assert (cbus_chain_check_context (&context, &parent, 999, 0x2000ffff, 1000, 0, NULL,
                                      &code, reason) == -1 && code == CBUS_CODE_BAD_HEIGHT);
    context.height = 6;
    assert (cbus_chain_check_context (&context, &parent, 1000, 0x2000ffff, 1000, 0, NULL,
                                      &code, reason) == -1 && code == CBUS_CODE_BAD_TIME);
    assert (strstr (reason, "median"));
    assert (cbus_chain_check_context (&context, &parent, 999, 0x2000ffff, 998, 1, NULL,
                                      &code, reason) == -1 && code == CBUS_CODE_BAD_TIME);
    assert (strstr (reason, "future"));
    assert (cbus_chain_check_context (&context, &parent, 999, 0x2000ffff, 0, UINT64_MAX, NULL,
                                      NULL, reason) == 0);

    //  History: user "u" is in every transaction so far (1 + 2 + 3),
    //  newest first, paged with a cursor.
    cbus_chain_history_t page [4];
    assert (cbus_chain_history (chain, CBUS_HISTORY_USER, "u", UINT64_MAX, 0, page, 4) == 4);
    assert (page [0].height == 3 && page [0].index == 2);
    assert (page [3].height == 2 && page [3].index == 1);
    size_t rest = cbus_chain_history (chain, CBUS_HISTORY_USER, "u", page [3].height, page [3].index,
                                      page, 4);
    assert (rest == 2 && page [0].height == 2 && page [0].index == 0 && page [1].height == 1);
    assert (cbus_chain_history (chain, CBUS_HISTORY_USER, "nobody", UINT64_MAX, 0, page, 4) == 0);
    assert (cbus_chain_history (chain, CBUS_HISTORY_KEY, "", UINT64_MAX, 0, page, 4) == 0);

    //  Locator: tip first, genesis last; a peer's locator finds the fork.
    uint8_t locator [CBUS_LOCATOR_MAX][CBUS_HASH_BYTES];
    size_t located = cbus_chain_locator (chain, locator);
    assert (located == 4);
    assert (memcmp (locator [0], cbus_chain_tip (chain, NULL), CBUS_HASH_BYTES) == 0);
    assert (memcmp (locator [3], cbus_chain_genesis (chain), CBUS_HASH_BYTES) == 0);
    assert (cbus_chain_fork_point (chain, locator + 1, 3) == 2);
    memset (locator [0], 9, CBUS_HASH_BYTES);       //  Unknown to us
    assert (cbus_chain_fork_point (chain, locator, 1) == 0);

    //  Reorganisation: a branch from block 1 that reaches more work.
    //  Active: G-1-2-3. Branch: 1-b2-b3-b4, b2 repeating a transaction of
    //  block 2 (allowed: block 2 leaves), b3 one of block 1 (refused).
    uint8_t one [CBUS_HASH_BYTES], two [CBUS_HASH_BYTES], three [CBUS_HASH_BYTES];
    assert (cbus_chain_hash_at (chain, 1, one) == 0);
    assert (cbus_chain_hash_at (chain, 2, two) == 0);
    assert (cbus_chain_hash_at (chain, 3, three) == 0);
    char *two_bytes, *one_bytes;
    size_t two_size, one_size;
    assert (cbus_chain_block_by_hash (chain, two, &two_bytes, &two_size) == 0 && two_bytes);
    assert (cbus_chain_block_by_hash (chain, one, &one_bytes, &one_size) == 0 && one_bytes);
    cbus_block_t *block_two = cbus_block_new_from_bytes (two_bytes, two_size, reason);
    cbus_block_t *block_one = cbus_block_new_from_bytes (one_bytes, one_size, reason);
    cbus_store_free (two_bytes);
    cbus_store_free (one_bytes);
    //  b2: one fresh transaction and one of block 2.
    cbus_header_t branch = { .version = CBUS_BLOCK_VERSION, .height = 2, .time_ms = now + 30,
                             .bits = cbus_chain_bits (chain), .miner = 2 };
    memcpy (branch.prev_hash, one, CBUS_HASH_BYTES);
    cbus_block_t *b2 = cbus_block_new (&branch);
    cbus_tx_t *shared = cbus_tx_new_from_bytes (cbus_tx_bytes (cbus_block_tx (block_two, 0), &tx_size),
                                                tx_size, reason);
    cbus_block_add_tx (b2, &shared);
    cbus_block_merkle (b2, cbus_block_header (b2)->merkle_root);
    cbus_block_header (b2)->nonce = 0;
    while (!cbus_header_search (cbus_block_header (b2), 1000))
        ;
    cbus_buf_reset (&bytes);
    cbus_block_encode (b2, &bytes);
    uint8_t b2_hash [CBUS_HASH_BYTES];
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, b2_hash, NULL, reason) == CBUS_CHAIN_SIDE);
    cbus_chain_tip (chain, &tip);
    assert (tip.height == 3);
    //  b3 with a transaction of block 1, which stays: stored while its
    //  branch has no more work (a tie keeps the first-seen tip), refused
    //  once a block on it would make it active, and nothing changes.
    branch.height = 3;
    branch.time_ms = now + 31;
    memcpy (branch.prev_hash, b2_hash, CBUS_HASH_BYTES);
    cbus_block_t *bad = cbus_block_new (&branch);
    cbus_tx_t *old = cbus_tx_new_from_bytes (cbus_tx_bytes (cbus_block_tx (block_one, 0), &tx_size),
                                             tx_size, reason);
    cbus_block_add_tx (bad, &old);
    cbus_block_merkle (bad, cbus_block_header (bad)->merkle_root);
    while (!cbus_header_search (cbus_block_header (bad), 1000))
        ;
    cbus_buf_reset (&bytes);
    cbus_block_encode (bad, &bytes);
    uint8_t bad_hash [CBUS_HASH_BYTES];
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, bad_hash, NULL, reason) == CBUS_CHAIN_SIDE);
    cbus_block_destroy (&bad);
    cbus_header_t on_bad = branch;
    on_bad.height = 4;
    on_bad.time_ms = now + 32;
    memcpy (on_bad.prev_hash, bad_hash, CBUS_HASH_BYTES);
    bad = cbus_block_new (&on_bad);
    while (!cbus_header_search (cbus_block_header (bad), 1000))
        ;
    cbus_buf_reset (&bytes);
    cbus_block_encode (bad, &bytes);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, &code, reason) == CBUS_CHAIN_INVALID);
    assert (code == CBUS_CODE_CONFIRMED && strstr (reason, "already in the chain"));
    cbus_chain_tip (chain, &tip);
    assert (tip.height == 3 && memcmp (cbus_chain_tip (chain, NULL), three, CBUS_HASH_BYTES) == 0);
    cbus_block_destroy (&bad);
    //  An empty b3 beside it: a tie again, stored on the side.
    bad = cbus_block_new (&branch);
    cbus_block_header (bad)->miner = 3;
    while (!cbus_header_search (cbus_block_header (bad), 1000))
        ;
    cbus_buf_reset (&bytes);
    cbus_block_encode (bad, &bytes);
    uint8_t b3_hash [CBUS_HASH_BYTES];
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, b3_hash, NULL, reason) == CBUS_CHAIN_SIDE);
    cbus_block_destroy (&bad);
    //  b4 on b3: more work, the branch becomes active.
    branch.height = 4;
    branch.time_ms = now + 32;
    memcpy (branch.prev_hash, b3_hash, CBUS_HASH_BYTES);
    cbus_block_t *b4 = cbus_block_new (&branch);
    while (!cbus_header_search (cbus_block_header (b4), 1000))
        ;
    cbus_buf_reset (&bytes);
    cbus_block_encode (b4, &bytes);
    uint8_t b4_hash [CBUS_HASH_BYTES];
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, b4_hash, NULL, reason) == CBUS_CHAIN_CONNECTED);
    assert (cbus_chain_left_count (chain) == 2 && cbus_chain_joined_count (chain) == 3);
    uint8_t check [CBUS_HASH_BYTES];
    cbus_block_hash (cbus_chain_left (chain, 0), check);
    assert (memcmp (check, three, CBUS_HASH_BYTES) == 0);       //  Old tip first
    cbus_block_hash (cbus_chain_joined (chain, 0), check);
    assert (memcmp (check, b2_hash, CBUS_HASH_BYTES) == 0);     //  Lowest first
    cbus_chain_tip (chain, &tip);
    assert (tip.height == 4 && memcmp (cbus_chain_tip (chain, NULL), b4_hash, CBUS_HASH_BYTES) == 0);
    assert (!cbus_chain_is_active (chain, two) && cbus_chain_is_active (chain, b2_hash));
    //  The tx index follows: block 2's other tx left, the shared one moved.
    assert (cbus_chain_tx_where (chain, cbus_tx_id (cbus_block_tx (block_two, 1)), where, &position) == -1);
    assert (cbus_chain_tx_where (chain, cbus_tx_id (cbus_block_tx (block_two, 0)), where, &position) == 0);
    assert (memcmp (where, b2_hash, CBUS_HASH_BYTES) == 0);
    assert (cbus_chain_hash_at (chain, 2, check) == 0 && memcmp (check, b2_hash, CBUS_HASH_BYTES) == 0);
    //  History follows the reorganisation: 1 (block 1) + 1 (b2) now.
    assert (cbus_chain_history (chain, CBUS_HISTORY_USER, "u", UINT64_MAX, 0, page, 4) == 2);
    assert (page [0].height == 2 && memcmp (page [0].txid, cbus_tx_id (cbus_block_tx (block_two, 0)),
                                            CBUS_HASH_BYTES) == 0);
    assert (page [1].height == 1);
    cbus_block_destroy (&b2);
    cbus_block_destroy (&b4);
    cbus_block_destroy (&block_one);
    cbus_block_destroy (&block_two);

    //  Reopened: same tip. Another network on the same folder: refused.
    cbus_chain_destroy (&chain);
    chain = cbus_chain_new (path, "test", 0x2000ffff, 8, 3600000, reason);
    assert (chain);
    cbus_chain_tip (chain, &tip);
    assert (tip.height == 4);
    uint8_t at_two [CBUS_HASH_BYTES];
    assert (cbus_chain_hash_at (chain, 2, at_two) == 0);
    assert (memcmp (at_two, b2_hash, CBUS_HASH_BYTES) == 0);
    assert (cbus_chain_hash_at (chain, 5, at_two) == -1);
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
