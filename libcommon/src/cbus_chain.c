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
    cbus_pow_rule_t rule;                   //  The network's target rule
    uint64_t max_future_ms;                 //  Clock skew allowed
    uint8_t genesis [CBUS_HASH_BYTES];      //  Hash of block 0
    uint8_t tip [CBUS_HASH_BYTES];          //  Hash of the active tip
    cbus_chain_entry_t tip_entry;           //  And its index entry
    uint64_t index_reads;                   //  Index ('I', 'H') reads so far
    cbus_header_t active_anchor;            //  Block 1 of the active chain,
    bool active_anchor_known;               //  once read
    zhashx_t *anchors;                      //  Side block -> its anchor: this
    zhashx_t *anchors_old;                  //  generation and the one before
    size_t anchor_generation;               //  Entries in one generation
};

//  One remembered anchor (the key is its hash field).
typedef struct {
    uint8_t hash [CBUS_HASH_BYTES];         //  A block off the active chain
    cbus_header_t anchor;                   //  Block 1 of its branch
} s_anchor_item_t;

//  Put a record under a key in the batch.
static void
s_put (cbus_store_batch_t *batch, cbus_layout_key_t key, const void *value, size_t size)
{
    cbus_store_batch_put (batch, key.bytes, key.size, value, size);
}

//  Put the summary record of a block (its bytes as stored: size).
static void
s_put_summary (cbus_store_batch_t *batch, const uint8_t hash [CBUS_HASH_BYTES],
               cbus_block_t *block, size_t size)
{
    uint8_t record [CBUS_LAYOUT_SUMMARY_BYTES];
    cbus_layout_summary_encode (cbus_block_header (block), (uint32_t) cbus_block_tx_count (block),
                                size, record);
    s_put (batch, cbus_layout_hash_key (CBUS_LAYOUT_SUMMARY, hash), record, sizeof (record));
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
    self->index_reads++;
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
    self->index_reads++;
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
    if (memcmp (hash, self->tip, CBUS_HASH_BYTES) == 0)
        return true;                    //  The tip is, without a read
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

static void
s_anchor_item_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

static zhashx_t *
s_anchor_table_new (void)
{
    zhashx_t *table = cbus_hash_table_new ();
    zhashx_set_destructor (table, s_anchor_item_destroy);
    return table;
}

//  A new store: genesis, its index entries, the tip, the meta record.
static int
s_create (cbus_chain_t *self, cbus_block_t *genesis, const char *meta, char *reason)
{
    cbus_chain_entry_t entry = { .height = 0, .header = *cbus_block_header (genesis) };
    if (cbus_pow_work (self->rule.bits, entry.work))
        return cbus_fail (reason, "invalid proof-of-work bits %08x", self->rule.bits);
    cbus_store_batch_t *batch = cbus_store_batch_new ();
    cbus_buf_t bytes = {0};
    cbus_block_encode (genesis, &bytes);
    s_put (batch, cbus_layout_hash_key (CBUS_LAYOUT_BLOCK, self->genesis), bytes.data, bytes.size);
    s_put_summary (batch, self->genesis, genesis, bytes.size);
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
cbus_chain_new (const char *path, const char *network, const cbus_pow_rule_t *rule,
                size_t cache_mb, uint64_t max_future_ms, char *reason)
{
    return cbus_chain_open (path, network, rule, cache_mb, max_future_ms, NULL, reason);
}

cbus_chain_t *
cbus_chain_open (const char *path, const char *network, const cbus_pow_rule_t *rule,
                 size_t cache_mb, uint64_t max_future_ms, cbus_store_fault_t *fault,
                 char *reason)
{
    cbus_chain_t *self = (cbus_chain_t *) zmalloc (sizeof (cbus_chain_t));
    self->left = zlistx_new ();
    self->joined = zlistx_new ();
    zlistx_set_destructor (self->left, (zlistx_destructor_fn *) cbus_block_destroy);
    zlistx_set_destructor (self->joined, (zlistx_destructor_fn *) cbus_block_destroy);
    self->network = strdup (network);
    self->rule = *rule;
    self->max_future_ms = max_future_ms;
    self->anchor_generation = CBUS_CHAIN_ANCHOR_GENERATION;
    self->anchors = s_anchor_table_new ();
    self->anchors_old = s_anchor_table_new ();
    cbus_block_t *genesis = cbus_block_new_genesis_rule (network, rule);
    cbus_block_hash (genesis, self->genesis);
    char *meta = cbus_layout_meta (network, rule, self->genesis);
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
            //  Another network id, target, block interval or half-life:
            //  another network (its genesis differs too).
            cbus_fail (reason, "the chain store at %s was made for another network "
                    "(network id, pow bits, block interval or half-life): it holds '%.*s', "
                    "this node runs '%s'", path, (int) (size > 200 ? 200 : size), value, meta);
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
        zhashx_destroy (&self->anchors);
        zhashx_destroy (&self->anchors_old);
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
    return self->rule.bits;
}

const cbus_pow_rule_t *
cbus_chain_rule (cbus_chain_t *self)
{
    return &self->rule;
}

//  The anchors of side branches, in memory. A block's anchor is the
//  block 1 it descends from, so its parent's (block 1's own for a block
//  at 2): it never changes, whichever branch is active, and a remembered
//  one is never stale. Remembered for each block stored off the active
//  chain (the parent of the next block on that branch); found for the
//  active chain without it. Two generations bound the memory: when this
//  one is full the one before is dropped, and a block found in the one
//  before moves to this one, so the tip of a branch still being extended
//  stays. A block not remembered (dropped, or stored before the node
//  started) costs one walk, down to a remembered or active ancestor.
static void
s_anchor_remember (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES],
                   const cbus_header_t *anchor)
{
    if (zhashx_lookup (self->anchors, hash))
        return;
    if (zhashx_size (self->anchors) >= self->anchor_generation) {
        zhashx_t *table = s_anchor_table_new ();
        if (!table)
            return;
        zhashx_destroy (&self->anchors_old);
        self->anchors_old = self->anchors;
        self->anchors = table;
    }
    //  Without memory the walk answers: the table is only a short cut.
    s_anchor_item_t *item = (s_anchor_item_t *) malloc (sizeof (s_anchor_item_t));
    if (!item)
        return;
    memcpy (item->hash, hash, CBUS_HASH_BYTES);
    item->anchor = *anchor;
    if (zhashx_insert (self->anchors, item->hash, item))
        free (item);
}

static bool
s_anchor_recall (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES],
                 cbus_header_t *anchor)
{
    s_anchor_item_t *item = (s_anchor_item_t *) zhashx_lookup (self->anchors, hash);
    if (item) {
        *anchor = item->anchor;
        return true;
    }
    item = (s_anchor_item_t *) zhashx_lookup (self->anchors_old, hash);
    if (!item)
        return false;
    *anchor = item->anchor;             //  Copied first: remember may drop it
    s_anchor_remember (self, hash, anchor);
    return true;
}

//  Block 1 of the active chain, read once until a reorganisation below
//  block 2 replaces it.
static int
s_active_anchor (cbus_chain_t *self, cbus_header_t *anchor)
{
    if (!self->active_anchor_known) {
        uint8_t hash [CBUS_HASH_BYTES];
        cbus_chain_entry_t entry;
        if (cbus_chain_hash_at (self, CBUS_RETARGET_ANCHOR_HEIGHT, hash)
        ||  cbus_chain_entry (self, hash, &entry))
            return -1;
        self->active_anchor = entry.header;
        self->active_anchor_known = true;
    }
    *anchor = self->active_anchor;
    return 0;
}

//  Whether the stored block hash with this entry is on the active chain.
static bool
s_entry_active (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES],
                const cbus_chain_entry_t *entry)
{
    uint8_t active [CBUS_HASH_BYTES];
    return memcmp (hash, self->tip, CBUS_HASH_BYTES) == 0
        || (cbus_chain_hash_at (self, entry->height, active) == 0
            && memcmp (active, hash, CBUS_HASH_BYTES) == 0);
}

//  The anchor (block 1) of the branch ending in parent: its height-1
//  ancestor. On the active chain (the tip: no read; else one), the
//  active block 1; off it, the one remembered (no read), else walked
//  back to the first ancestor that is remembered, active or block 1 (two
//  reads a block, once for each branch), and remembered.
static int
s_anchor (cbus_chain_t *self, const uint8_t parent_hash [CBUS_HASH_BYTES],
          const cbus_chain_entry_t *parent, cbus_header_t *anchor)
{
    if (!cbus_pow_needs_anchor (&self->rule, &parent->header))
        return 0;
    if (s_anchor_recall (self, parent_hash, anchor))
        return 0;
    if (s_entry_active (self, parent_hash, parent))
        return s_active_anchor (self, anchor);
    cbus_chain_entry_t entry = *parent;
    uint8_t cursor [CBUS_HASH_BYTES];
    memcpy (cursor, parent_hash, CBUS_HASH_BYTES);
    while (true) {
        memcpy (cursor, entry.header.prev_hash, CBUS_HASH_BYTES);
        if (cbus_chain_entry (self, cursor, &entry))
            return -1;
        if (entry.height <= CBUS_RETARGET_ANCHOR_HEIGHT) {
            *anchor = entry.header;
            break;
        }
        if (s_anchor_recall (self, cursor, anchor))
            break;
        if (s_entry_active (self, cursor, &entry)) {
            if (s_active_anchor (self, anchor))
                return -1;
            break;
        }
    }
    s_anchor_remember (self, parent_hash, anchor);
    return 0;
}

//  How many index entries and height records the chain has read.
uint64_t
cbus_chain_index_reads (cbus_chain_t *self)
{
    return self->index_reads;
}

void
cbus_chain_set_anchor_generation (cbus_chain_t *self, size_t entries)
{
    self->anchor_generation = entries > 0 ? entries : 1;
}

//  The bits of a block on the stored block hash, whose entry this is.
static uint32_t
s_bits_on (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES],
           const cbus_chain_entry_t *entry)
{
    cbus_header_t anchor;
    if (s_anchor (self, hash, entry, &anchor))
        return 0;
    cbus_header_t parent = entry->header;
    parent.height = entry->height;
    return cbus_pow_next_bits (&self->rule, &parent, &anchor);
}

uint32_t
cbus_chain_bits_on (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES])
{
    cbus_chain_entry_t entry;
    return cbus_chain_entry (self, hash, &entry) ? 0 : s_bits_on (self, hash, &entry);
}

uint32_t
cbus_chain_next_bits (cbus_chain_t *self)
{
    return s_bits_on (self, self->tip, &self->tip_entry);
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
                          const cbus_header_t *anchor, uint64_t median_time_past,
                          const cbus_pow_rule_t *rule, uint64_t now_ms,
                          uint64_t max_future_ms, cbus_chain_entry_t *entry_out,
                          cbus_code_t *code, char *reason)
{
    cbus_code_t ignored;
    if (!code)
        code = &ignored;
    *code = CBUS_CODE_OK;
    uint8_t work [CBUS_U256_BYTES];
    //  A fixed target needs no parent; a retargeting one the parent's
    //  header (its height as the index knows it) and the anchor's.
    if (parent || rule->interval_s == 0) {
        cbus_header_t from = parent ? parent->header : *header;
        if (parent)
            from.height = parent->height;
        uint32_t bits = parent ? cbus_pow_next_bits (rule, &from, anchor) : rule->bits;
        if (bits == 0 && (*code = CBUS_CODE_INTERNAL))
            return cbus_fail (reason, "The anchor block of the branch is not known");
        if (header->bits != bits && (*code = CBUS_CODE_BAD_BITS))
            return cbus_fail (reason, "Block target bits %08x are not the %08x the network's "
                              "rule gives", header->bits, bits);
    }
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
    cbus_header_t anchor = {0};
    if (known && s_anchor (self, header->prev_hash, &parent, &anchor)) {
        *code = CBUS_CODE_STORAGE;
        cbus_fail (reason, "The anchor block of the branch could not be read");
        result = CBUS_CHAIN_FAILED;
        goto done;
    }
    if (cbus_chain_check_context (header, known? &parent: NULL, &anchor, median, &self->rule,
                                  cbus_time_ms (), self->max_future_ms, &new_entry, code, reason))
        goto done;

    //  The block and its index entry, whatever branch it is on.
    batch = cbus_store_batch_new ();
    cbus_block_encode (block, &bytes);
    s_put (batch, cbus_layout_hash_key (CBUS_LAYOUT_BLOCK, hash), bytes.data, bytes.size);
    s_put_summary (batch, hash, block, bytes.size);
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
        //  A fork at genesis gives the active chain another block 1.
        if (new_entry.height - zlistx_size (self->joined) < CBUS_RETARGET_ANCHOR_HEIGHT)
            self->active_anchor_known = false;
        if (zlistx_size (self->left))
            zsys_warning ("reorganised fork_height=%" PRIu64 " left=%zu joined=%zu height=%" PRIu64,
                          new_entry.height - zlistx_size (self->joined),
                          zlistx_size (self->left), zlistx_size (self->joined), new_entry.height);
    }
    else {
        result = CBUS_CHAIN_SIDE;
        //  The next block on this one needs its anchor: its parent's.
        if (self->rule.interval_s > 0 && new_entry.height > CBUS_RETARGET_ANCHOR_HEIGHT)
            s_anchor_remember (self, hash, parent.height == CBUS_RETARGET_ANCHOR_HEIGHT
                                           ? &parent.header : &anchor);
    }
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

