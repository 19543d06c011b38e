/*  =========================================================================
    cbus_audit_walk - verify's walk of the active chain, genesis first

    Each block the height index names is read ('B'), decoded (or salvaged
    transaction by transaction when it does not decode whole), held to
    the block rules (cbus_block_check) and the context rules against the
    block walked before it (cbus_chain_check_context), and compared with
    its index entry ('I'), its transactions' entries ('T') and their
    history entries ('U', 'K').
    =========================================================================
*/
#include "cbus_audit.h"

//  Where the transaction index places a txid.
typedef enum {
    S_WHERE_HERE,                       //  This block, this position
    S_WHERE_ABSENT,                     //  No entry
    S_WHERE_ELSEWHERE,                  //  Another block or position
    S_WHERE_UNREADABLE                  //  Read error or malformed
} s_where_t;

//  A block as the walk sees it: decoded whole, or salvaged from bytes
//  that cbus_block_new_from_bytes refuses, with what the transaction
//  index says of each of its transactions.
typedef struct {
    uint64_t height;                    //  Where the height index has it
    const uint8_t *hash;                //  The hash it has there (borrowed)
    char *bytes;                        //  Its bytes ('B'), NULL if unread
    size_t size;                        //  Their size
    cbus_block_t *block;                //  Header and the txs that decode
    uint32_t *positions;                //  Position of each in the bytes;
                                        //  NULL when decoded whole
    s_where_t *wheres;                  //  'T' of each decoded tx
    bool *skip;                         //  Already reported as damaged
    uint8_t (*elsewhere) [CBUS_HASH_BYTES];  //  For ELSEWHERE: the block
    uint32_t *elsewhere_at;             //  And the position
} s_view_t;

static uint32_t
s_position (s_view_t *view, size_t index)
{
    return view->positions? view->positions [index]: (uint32_t) index;
}

static void
s_view_free (s_view_t *view)
{
    cbus_store_free (view->bytes);
    cbus_block_destroy (&view->block);
    free (view->positions);
    free (view->wheres);
    free (view->skip);
    free (view->elsewhere);
    free (view->elsewhere_at);
    memset (view, 0, sizeof (*view));
}

//  --------------------------------------------------------------------------
//  Decoding a block

//  The txid bytes would have as a transaction: the double SHA-256 of
//  their first seven pairs packed again as a map. -1 if they are not a
//  map of seven or eight pairs.
static int
s_txid_of (const void *data, size_t size, uint8_t txid [CBUS_HASH_BYTES])
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    int rc = -1;
    if (cbus_unpack_next (&unpacked, (const char *) data, size, &offset) == MSGPACK_UNPACK_SUCCESS
    &&  unpacked.data.type == MSGPACK_OBJECT_MAP
    &&  (unpacked.data.via.map.size == 7 || unpacked.data.via.map.size == 8)) {
        cbus_buf_t canonical = {0};
        msgpack_packer pk;
        cbus_packer_init (&pk, &canonical);
        msgpack_pack_map (&pk, 7);
        for (uint32_t index = 0; index < 7; index++) {
            msgpack_pack_object (&pk, unpacked.data.via.map.ptr [index].key);
            msgpack_pack_object (&pk, unpacked.data.via.map.ptr [index].val);
        }
        cbus_hash_sha256d (canonical.data, canonical.size, txid);
        cbus_buf_free (&canonical);
        rc = 0;
    }
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

//  The transactions of bytes whose header decoded, one by one: each that
//  does not decode is reported with the txid its bytes hash to. True if
//  one was at fault.
static bool
s_salvage_txs (cbus_audit_t *self, s_view_t *view, const msgpack_object *txs)
{
    char tidy [CBUS_REASON_MAX];
    view->positions = (uint32_t *) calloc (txs->via.array.size + 1, sizeof (uint32_t));
    assert (view->positions);
    bool named = false;
    for (uint32_t index = 0; index < txs->via.array.size; index++) {
        const msgpack_object *item = &txs->via.array.ptr [index];
        if (item->type != MSGPACK_OBJECT_BIN) {
            cbus_audit_report (self, view->height, view->hash, index, NULL, "is not bytes");
            cbus_audit_damage (self, view->height, view->hash, index);
            named = true;
            continue;
        }
        char inner [CBUS_REASON_MAX];
        cbus_tx_t *tx = cbus_tx_new_from_bytes (item->via.bin.ptr, item->via.bin.size, inner);
        if (!tx) {
            uint8_t txid [CBUS_HASH_BYTES];
            bool known = s_txid_of (item->via.bin.ptr, item->via.bin.size, txid) == 0;
            cbus_audit_report (self, view->height, view->hash, index, known? txid: NULL, "%s",
                               cbus_audit_tidy (inner, tidy));
            cbus_audit_damage (self, view->height, view->hash, index);
            named = true;
            continue;
        }
        view->positions [cbus_block_tx_count (view->block)] = index;
        cbus_block_add_tx (view->block, &tx);
    }
    return named;
}

//  Bytes cbus_block_new_from_bytes refused (why): report where the fault
//  is, by transaction when one is at fault, and recover the header and
//  the transactions that do decode into view. Without even a header,
//  view holds no block.
static void
s_salvage (cbus_audit_t *self, s_view_t *view, const char *why)
{
    char tidy [CBUS_REASON_MAX];
    cbus_header_t header;
    if (cbus_block_header_from_bytes (view->bytes, view->size, &header)) {
        cbus_audit_report (self, view->height, view->hash, -1, NULL, "does not decode: %s",
                           cbus_audit_tidy (why, tidy));
        cbus_audit_damage (self, view->height, view->hash, CBUS_AUDIT_WHOLE_BLOCK);
        return;
    }
    view->block = cbus_block_new (&header);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    const msgpack_object *txs = NULL;
    if (cbus_unpack_next (&unpacked, view->bytes, view->size, &offset) == MSGPACK_UNPACK_SUCCESS)
        txs = cbus_msg_get (&unpacked.data, "txs");
    //  Unless a transaction is at fault, it is the block's own shape (no
    //  list, a third key, bytes after the map, too many transactions).
    if (!txs || txs->type != MSGPACK_OBJECT_ARRAY || !s_salvage_txs (self, view, txs)) {
        cbus_audit_report (self, view->height, view->hash, -1, NULL, "does not decode: %s",
                           cbus_audit_tidy (why, tidy));
        cbus_audit_damage (self, view->height, view->hash, CBUS_AUDIT_WHOLE_BLOCK);
    }
    msgpack_unpacked_destroy (&unpacked);
}

//  Read and decode the block into view: its bytes, whole or salvaged.
//  Another block's bytes under this hash hold nothing of this block's:
//  that is said once and view keeps no block.
static void
s_view_read (cbus_audit_t *self, s_view_t *view)
{
    int found = cbus_audit_get (self, cbus_layout_hash_key (CBUS_LAYOUT_BLOCK, view->hash),
                                &view->bytes, &view->size);
    char reason [CBUS_REASON_MAX];
    if (found < 0) {
        cbus_audit_report (self, view->height, view->hash, -1, NULL, "unreadable: %s",
                           cbus_store_error (self->store));
        cbus_audit_damage (self, view->height, view->hash, CBUS_AUDIT_WHOLE_BLOCK);
    }
    else
    if (found == 0) {
        cbus_audit_report (self, view->height, view->hash, -1, NULL, "its bytes ('B') are missing");
        cbus_audit_damage (self, view->height, view->hash, CBUS_AUDIT_WHOLE_BLOCK);
    }
    else
    if ((view->block = cbus_block_new_from_bytes (view->bytes, view->size, reason)) == NULL)
        s_salvage (self, view, reason);
    uint8_t computed [CBUS_HASH_BYTES];
    char hex [CBUS_HASH_HEX];
    if (view->block) {
        cbus_block_hash (view->block, computed);
        if (memcmp (computed, view->hash, CBUS_HASH_BYTES) != 0) {
            cbus_audit_report (self, view->height, view->hash, -1, NULL, "the bytes stored under "
                               "this hash ('B') are another block's (their header hashes to %s)",
                               cbus_hash_hex (computed, hex));
            cbus_audit_damage (self, view->height, view->hash, CBUS_AUDIT_WHOLE_BLOCK);
            cbus_block_destroy (&view->block);
            free (view->positions);
            view->positions = NULL;
        }
    }
}

//  --------------------------------------------------------------------------
//  The transaction and history indexes of a block

//  Where the transaction index places txid; fills where/at for ELSEWHERE.
static s_where_t
s_where (cbus_audit_t *self, const uint8_t txid [CBUS_HASH_BYTES], const uint8_t hash [CBUS_HASH_BYTES],
         uint32_t position, uint8_t where [CBUS_HASH_BYTES], uint32_t *at)
{
    char *value;
    size_t size;
    int found = cbus_audit_get (self, cbus_layout_hash_key (CBUS_LAYOUT_TX, txid), &value, &size);
    if (found <= 0)
        return found == 0? S_WHERE_ABSENT: S_WHERE_UNREADABLE;
    s_where_t result = S_WHERE_UNREADABLE;
    if (cbus_layout_where_decode (value, size, where, at) == 0)
        result = memcmp (where, hash, CBUS_HASH_BYTES) == 0 && *at == position
               ? S_WHERE_HERE: S_WHERE_ELSEWHERE;
    cbus_store_free (value);
    return result;
}

//  The transaction index first, for every decoded transaction: a merkle
//  root that does not match uses it to tell which transaction changed.
static void
s_view_wheres (cbus_audit_t *self, s_view_t *view)
{
    size_t count = view->block? cbus_block_tx_count (view->block): 0;
    view->wheres = (s_where_t *) calloc (count + 1, sizeof (s_where_t));
    view->skip = (bool *) calloc (count + 1, sizeof (bool));
    view->elsewhere = calloc (count + 1, CBUS_HASH_BYTES);
    view->elsewhere_at = (uint32_t *) calloc (count + 1, sizeof (uint32_t));
    assert (view->wheres && view->skip && view->elsewhere && view->elsewhere_at);
    for (size_t index = 0; index < count; index++)
        view->wheres [index] = s_where (self, cbus_tx_id (cbus_block_tx (view->block, index)),
                                        view->hash, s_position (view, index),
                                        view->elsewhere [index], &view->elsewhere_at [index]);
}

//  The history entries of one transaction for one prefix: each distinct
//  non-empty name must have its entry, naming this txid. The names found
//  right add their fingerprints to *sum; the scan later takes away those
//  of every entry naming the transaction, and what is left is a stray.
static void
s_check_history (cbus_audit_t *self, char prefix, const char *names [], size_t count,
                 uint64_t height, const uint8_t hash [CBUS_HASH_BYTES], uint32_t position,
                 const uint8_t txid [CBUS_HASH_BYTES], uint64_t *sum)
{
    const char *what = prefix == CBUS_LAYOUT_USER? "user": "key";
    bool present = prefix == CBUS_LAYOUT_USER? self->have_users: self->have_keys;
    cbus_buf_t key = {0};
    for (size_t index = 0; index < count; index++) {
        //  An empty key field names nobody (as cbus_chain writes them).
        if (!*names [index])
            continue;
        bool repeat = false;
        for (size_t other = 0; other < index && !repeat; other++)
            repeat = streq (names [other], names [index]);
        if (repeat)
            continue;
        if (prefix == CBUS_LAYOUT_USER)
            self->users_expected++;
        else
            self->keys_expected++;
        //  An index missing whole is one problem, reported at the end.
        if (!present)
            continue;
        size_t size = strlen (names [index]);
        cbus_layout_history_key (&key, prefix, names [index], size, height, position);
        char *value = NULL;
        size_t value_size;
        char shown [CBUS_AUDIT_SHOWN_BYTES];
        char hex [CBUS_HASH_HEX];
        int found = cbus_store_get (self->store, key.data, key.size, &value, &value_size)? -1
                  : value? 1: 0;
        cbus_audit_shown (names [index], size, shown);
        if (found < 0)
            cbus_audit_report (self, height, hash, position, txid, "its '%c' entry for %s %s "
                               "cannot be read: %s", prefix, what, shown,
                               cbus_store_error (self->store));
        else
        if (found == 0)
            cbus_audit_report (self, height, hash, position, txid, "no '%c' (history) entry for "
                               "%s %s", prefix, what, shown);
        else
        if (value_size != CBUS_HASH_BYTES)
            cbus_audit_report (self, height, hash, position, txid, "its '%c' entry for %s %s is "
                               "malformed", prefix, what, shown);
        else
        if (memcmp (value, txid, CBUS_HASH_BYTES) != 0)
            cbus_audit_report (self, height, hash, position, txid, "its '%c' entry for %s %s "
                               "names txid %s", prefix, what, shown,
                               cbus_hash_hex ((const uint8_t *) value, hex));
        else
            *sum += cbus_audit_fingerprint (names [index], size);
        cbus_store_free (value);
    }
    cbus_buf_free (&key);
}

//  The transactions of a walked block: each new to the chain, in the
//  transaction index here, and in the history. Those marked in skip were
//  already reported as damaged.
static void
s_check_txs (cbus_audit_t *self, s_view_t *view)
{
    char hex [CBUS_HASH_HEX];
    uint64_t height = view->height;
    const uint8_t *hash = view->hash;
    for (size_t index = 0; index < cbus_block_tx_count (view->block); index++) {
        cbus_tx_t *tx = cbus_block_tx (view->block, index);
        const uint8_t *txid = cbus_tx_id (tx);
        uint32_t position = s_position (view, index);
        self->tx_count++;
        if (cbus_tx_is_signed (tx))
            self->signed_count++;
        cbus_audit_tx_t *known = (cbus_audit_tx_t *) zhashx_lookup (self->txs, txid);
        if (known) {
            cbus_audit_report (self, height, hash, position, txid, "already confirmed in block %"
                               PRIu64 " at position %" PRIu32, known->height, known->position);
            continue;
        }
        cbus_audit_tx_t *record = (cbus_audit_tx_t *) zmalloc (sizeof (cbus_audit_tx_t));
        memcpy (record->txid, txid, CBUS_HASH_BYTES);
        record->height = height;
        record->position = position;
        zhashx_insert (self->txs, record->txid, record);
        if (view->skip [index])
            continue;
        if (view->wheres [index] == S_WHERE_ABSENT)
            cbus_audit_report (self, height, hash, position, txid, "not in the transaction index ('T')");
        else
        if (view->wheres [index] == S_WHERE_UNREADABLE)
            cbus_audit_report (self, height, hash, position, txid, "its 'T' entry cannot be read "
                               "or is malformed");
        else
        if (view->wheres [index] == S_WHERE_ELSEWHERE)
            cbus_audit_report (self, height, hash, position, txid, "its 'T' entry places it in "
                               "block %s at position %" PRIu32,
                               cbus_hash_hex (view->elsewhere [index], hex),
                               view->elsewhere_at [index]);
        const char *users [CBUS_TX_MAX_USERS];
        size_t count = cbus_tx_user_count (tx);
        if (count > CBUS_TX_MAX_USERS)
            count = CBUS_TX_MAX_USERS;  //  Decoding refuses more: not reached
        for (size_t user = 0; user < count; user++)
            users [user] = cbus_tx_user (tx, user);
        s_check_history (self, CBUS_LAYOUT_USER, users, count, height, hash, position, txid,
                         &record->users);
        const char *keys [2] = { cbus_tx_sender_key (tx), cbus_tx_receiver_key (tx) };
        s_check_history (self, CBUS_LAYOUT_KEY, keys, 2, height, hash, position, txid,
                         &record->keys);
    }
}

//  --------------------------------------------------------------------------
//  The header, the body and the index entry of a block

//  Median of the times of the last blocks walked (up to 11); 0 for none.
static uint64_t
s_median_time (cbus_audit_t *self)
{
    uint64_t times [CBUS_CHAIN_MEDIAN_SPAN];
    memcpy (times, self->times, sizeof (times));
    return cbus_median_u64 (times, self->time_count);
}

//  The index entry ('I') of a walked block: height, header, work.
//  header is NULL when the bytes gave none; work holds the expected
//  cumulative work (NULL if the walk cannot know it). Returns true with
//  stored filled when the entry decodes.
static bool
s_check_entry (cbus_audit_t *self, uint64_t height, const uint8_t hash [CBUS_HASH_BYTES],
               const cbus_header_t *header, const uint8_t *work, cbus_chain_entry_t *stored)
{
    char *value;
    size_t size;
    int found = cbus_audit_get (self, cbus_layout_hash_key (CBUS_LAYOUT_ENTRY, hash), &value, &size);
    if (found < 0) {
        cbus_audit_report (self, height, hash, -1, NULL, "its index entry ('I') cannot be read: %s",
                           cbus_store_error (self->store));
        return false;
    }
    if (found == 0) {
        cbus_audit_report (self, height, hash, -1, NULL, "no index entry ('I')");
        return false;
    }
    bool usable = cbus_layout_entry_decode (value, size, stored) == 0;
    cbus_store_free (value);
    if (!usable) {
        cbus_audit_report (self, height, hash, -1, NULL, "its index entry ('I') is malformed");
        return false;
    }
    if (stored->height != height)
        cbus_audit_report (self, height, hash, -1, NULL, "its index entry ('I') gives height %"
                           PRIu64, stored->height);
    if (header) {
        uint8_t encoded [CBUS_HEADER_BYTES], held [CBUS_HEADER_BYTES];
        cbus_header_encode (header, encoded);
        cbus_header_encode (&stored->header, held);
        if (memcmp (encoded, held, CBUS_HEADER_BYTES) != 0)
            cbus_audit_report (self, height, hash, -1, NULL, "its index entry ('I') holds another "
                               "header");
    }
    if (work && memcmp (work, stored->work, CBUS_U256_BYTES) != 0)
        cbus_audit_report (self, height, hash, -1, NULL, "its index entry ('I') gives the wrong "
                           "cumulative work");
    return true;
}

//  The header checks that need the chain: its hash; its height (genesis,
//  or after a gap, against the height index), its link to the block
//  walked before it; then the chainstore's context rules against that
//  block, the first it breaks reported. Returns true with expected (the
//  index entry the rules give: height, cumulative work) when the walk
//  could compute it.
static bool
s_check_header (cbus_audit_t *self, uint64_t height, const uint8_t hash [CBUS_HASH_BYTES],
                const cbus_header_t *header, cbus_chain_entry_t *expected)
{
    char hex [CBUS_HASH_HEX];
    uint8_t computed [CBUS_HASH_BYTES];
    cbus_header_hash (header, computed);
    if (memcmp (computed, hash, CBUS_HASH_BYTES) != 0)
        cbus_audit_report (self, height, hash, -1, NULL, "its header hashes to %s",
                           cbus_hash_hex (computed, hex));
    if ((height == 0 || !self->have_prev) && header->height != height)
        cbus_audit_report (self, height, hash, -1, NULL, "its header gives height %" PRIu64,
                           header->height);
    if (height == 0) {
        //  Genesis: compared whole by the caller; its work is its own.
        expected->height = 0;
        expected->header = *header;
        return cbus_pow_work (header->bits, expected->work) == 0;
    }
    if (self->have_prev && memcmp (header->prev_hash, self->prev, CBUS_HASH_BYTES) != 0)
        cbus_audit_report (self, height, hash, -1, NULL, "its previous hash %s is not block %"
                           PRIu64 "'s hash", cbus_hash_hex (header->prev_hash, hex), height - 1);
    cbus_chain_entry_t parent = { .height = height - 1, .header = self->prev_header };
    memcpy (parent.work, self->work, CBUS_U256_BYTES);
    char reason [CBUS_REASON_MAX], tidy [CBUS_REASON_MAX];
    cbus_code_t code;
    //  The rule's anchor is block 1 of the active chain, walked before.
    if (self->have_prev && cbus_pow_needs_anchor (&self->rule, &parent.header)
    &&  !self->have_anchor) {
        cbus_audit_report (self, height, hash, -1, NULL, "its target bits cannot be checked: "
                           "block 1 could not be read");
        return false;
    }
    if (cbus_chain_check_context (header, self->have_prev? &parent: NULL, &self->anchor,
                                  s_median_time (self), &self->rule, cbus_time_ms (),
                                  self->max_future_ms, expected, &code, reason) == 0)
        return true;
    //  Without the block before (a gap, reported) the rules stop there.
    if (code != CBUS_CODE_ORPHAN)
        cbus_audit_report (self, height, hash, -1, NULL, "%s", cbus_audit_tidy (reason, tidy));
    return false;
}

//  A block whose bytes decoded whole: the checks that need no chain,
//  merkle root first. When the root does not match, the transactions
//  whose txid no index knows are the ones changed since they were
//  confirmed: they are named and marked in skip.
static void
s_check_body (cbus_audit_t *self, s_view_t *view)
{
    cbus_block_t *block = view->block;
    cbus_header_t *header = cbus_block_header (block);
    uint64_t height = view->height;
    const uint8_t *hash = view->hash;
    char tidy [CBUS_REASON_MAX];
    uint8_t root [CBUS_HASH_BYTES];
    cbus_block_merkle (block, root);
    if (memcmp (root, header->merkle_root, CBUS_HASH_BYTES) == 0) {
        char reason [CBUS_REASON_MAX];
        if (cbus_block_check (block, NULL, reason))
            cbus_audit_report (self, height, hash, -1, NULL, "%s", cbus_audit_tidy (reason, tidy));
        return;
    }
    size_t suspects = 0;
    for (size_t index = 0; index < cbus_block_tx_count (block); index++)
        if (view->wheres [index] == S_WHERE_ABSENT) {
            uint32_t position = s_position (view, index);
            cbus_audit_report (self, height, hash, position, cbus_tx_id (cbus_block_tx (block, index)),
                               "merkle root does not match: this is not the transaction "
                               "confirmed here (no index knows its txid)");
            cbus_audit_damage (self, height, hash, position);
            view->skip [index] = true;
            suspects++;
        }
    if (!suspects)
        cbus_audit_report (self, height, hash, -1, NULL, "merkle root does not match its transactions");
    if (header->version != CBUS_BLOCK_VERSION)
        cbus_audit_report (self, height, hash, -1, NULL, "version %u is not %d", header->version,
                           CBUS_BLOCK_VERSION);
    if (!cbus_pow_check (hash, header->bits))
        cbus_audit_report (self, height, hash, -1, NULL, "hash does not meet its proof-of-work target");
}

//  Genesis is fixed by the network: the same bytes.
static void
s_check_genesis (cbus_audit_t *self, s_view_t *view)
{
    cbus_block_t *genesis = cbus_block_new_genesis_rule (self->network, &self->rule);
    cbus_buf_t encoded = {0};
    cbus_block_encode (genesis, &encoded);
    if (encoded.size != view->size || memcmp (encoded.data, view->bytes, view->size) != 0)
        cbus_audit_report (self, 0, view->hash, -1, NULL, "is not the genesis of network %s "
                           "(bits %08x, block interval %u)", self->network, self->rule.bits,
                           self->rule.interval_s);
    cbus_buf_free (&encoded);
    cbus_block_destroy (&genesis);
}

//  --------------------------------------------------------------------------
//  The walk

//  What the next block builds on: this one's hash, cumulative work (the
//  rules' when known, else its entry's) and time.
static void
s_advance (cbus_audit_t *self, const uint8_t hash [CBUS_HASH_BYTES], const cbus_header_t *header,
           const uint8_t *work)
{
    self->blocks++;
    memcpy (self->prev, hash, CBUS_HASH_BYTES);
    self->have_prev = work != NULL;
    if (work)
        memcpy (self->work, work, CBUS_U256_BYTES);
    if (header) {
        self->prev_header = *header;
        if (header->height == CBUS_RETARGET_ANCHOR_HEIGHT) {
            self->anchor = self->prev_header;
            self->have_anchor = true;
        }
        self->times [self->time_next] = header->time_ms;
        self->time_next = (self->time_next + 1) % CBUS_CHAIN_MEDIAN_SPAN;
        if (self->time_count < CBUS_CHAIN_MEDIAN_SPAN)
            self->time_count++;
    }
    else
        self->time_count = self->time_next = 0;
}

//  One block of the active chain, at height, stored under hash.
static void
s_walk_block (cbus_audit_t *self, uint64_t height, const uint8_t hash [CBUS_HASH_BYTES])
{
    s_view_t view = { .height = height, .hash = hash };
    s_view_read (self, &view);
    bool whole = view.block && !view.positions;
    cbus_header_t *header = view.block? cbus_block_header (view.block): NULL;
    if (height == 0 && view.block)
        s_check_genesis (self, &view);
    s_view_wheres (self, &view);
    cbus_chain_entry_t expected;
    bool work_known = false;
    if (header) {
        work_known = s_check_header (self, height, hash, header, &expected);
        if (whole && height > 0)
            s_check_body (self, &view);
        else
        if (height > 0 && !cbus_pow_check (hash, header->bits))
            cbus_audit_report (self, height, hash, -1, NULL, "hash does not meet its "
                               "proof-of-work target");
    }
    cbus_chain_entry_t stored;
    bool entry = s_check_entry (self, height, hash, header, work_known? expected.work: NULL,
                                &stored);
    //  Without the bytes' header, the index entry's links the walk on.
    if (!header && entry) {
        header = &stored.header;
        s_check_header (self, height, hash, header, &expected);
    }
    if (view.block)
        s_check_txs (self, &view);
    char hex [CBUS_HASH_HEX];
    if (self->tip_known && height == self->tip_height
    &&  memcmp (hash, self->tip, CBUS_HASH_BYTES) != 0)
        cbus_audit_report (self, height, hash, -1, NULL, "the tip record ('S') names %s, not "
                           "this block", cbus_hash_hex (self->tip, hex));
    s_advance (self, hash, header, work_known? expected.work: entry? stored.work: NULL);
    s_view_free (&view);
}

//  A gap in the height index: the walk goes on without a parent.
static void
s_gap (cbus_audit_t *self)
{
    self->have_prev = false;
    self->time_count = self->time_next = 0;
}

//  The tip record: a block the index knows, whose height bounds the walk.
static void
s_read_tip (cbus_audit_t *self)
{
    char *value = NULL;
    size_t size;
    int found = cbus_audit_get (self, cbus_layout_single_key (CBUS_LAYOUT_TIP), &value, &size);
    if (found < 0)
        cbus_audit_say (self, "tip record ('S'): unreadable: %s", cbus_store_error (self->store));
    else
    if (found == 0 || size != CBUS_HASH_BYTES)
        cbus_audit_say (self, "tip record ('S'): %s; the walk goes as far as the height index",
                        found == 0? "missing": "malformed");
    else {
        memcpy (self->tip, value, CBUS_HASH_BYTES);
        cbus_store_free (value);
        value = NULL;
        char hex [CBUS_HASH_HEX];
        cbus_chain_entry_t entry;
        found = cbus_audit_get (self, cbus_layout_hash_key (CBUS_LAYOUT_ENTRY, self->tip),
                                &value, &size);
        if (found == 1 && cbus_layout_entry_decode (value, size, &entry) == 0) {
            self->tip_height = entry.height;
            self->tip_known = true;
        }
        else
            cbus_audit_say (self, "tip record ('S'): it names %s, which has no index entry ('I'); "
                            "the walk goes as far as the height index",
                            cbus_hash_hex (self->tip, hex));
    }
    cbus_store_free (value);
}

//  One entry of the height index, at height: the block it names, or a
//  malformed entry. next is the height the walk expected.
static void
s_walk_entry (cbus_audit_t *self, uint64_t height, uint64_t next, const uint8_t *value, size_t size)
{
    if (height > next) {
        if (height == next + 1)
            cbus_audit_report (self, next, NULL, -1, NULL, "no height index entry ('H'): the "
                               "active chain has a gap");
        else
            cbus_audit_say (self, "blocks %" PRIu64 " to %" PRIu64 ": no height index entries "
                            "('H'): the active chain has a gap", next, height - 1);
        cbus_audit_damage_heights (self, next, height - 1);
        s_gap (self);
    }
    if (size != CBUS_HASH_BYTES) {
        cbus_audit_report (self, height, NULL, -1, NULL, "its height index entry ('H') is malformed");
        cbus_audit_damage_heights (self, height, height);
        s_gap (self);
        return;
    }
    uint8_t hash [CBUS_HASH_BYTES];
    memcpy (hash, value, CBUS_HASH_BYTES);
    s_walk_block (self, height, hash);
    if (!self->tip_known)
        memcpy (self->tip, hash, CBUS_HASH_BYTES);
}

void
cbus_audit_walk (cbus_audit_t *self)
{
    s_read_tip (self);
    //  Heights are big-endian in the keys, so key order is height order.
    cbus_store_iter_t *iter = cbus_store_iter_new (self->store);
    uint64_t next = 0;
    bool above = false;
    char hex [CBUS_HASH_HEX];
    cbus_layout_key_t first = cbus_layout_single_key (CBUS_LAYOUT_HEIGHT);
    for (cbus_store_iter_seek (iter, first.bytes, first.size); cbus_store_iter_valid (iter);
         cbus_store_iter_next (iter)) {
        size_t key_size, size;
        const uint8_t *key = (const uint8_t *) cbus_store_iter_key (iter, &key_size);
        const uint8_t *value = (const uint8_t *) cbus_store_iter_value (iter, &size);
        if (key_size < 1 || key [0] != CBUS_LAYOUT_HEIGHT)
            break;
        if (zsys_interrupted) {
            self->interrupted = true;
            break;
        }
        uint64_t height;
        if (cbus_layout_height_decode (key, key_size, &height)) {
            cbus_audit_say (self, "height index ('H'): a key of %zu bytes, not %d", key_size,
                            CBUS_LAYOUT_HEIGHT_KEY_BYTES);
            continue;
        }
        if (self->tip_known && height > self->tip_height) {
            //  One line says it: all that follow are too, and what the
            //  indexes hold for those heights is not more problems.
            if (!above) {
                cbus_audit_say (self, "height index ('H'): an entry for height %" PRIu64 ", above "
                                "the tip (height %" PRIu64 ")", height, self->tip_height);
                cbus_audit_damage_heights (self, height, UINT64_MAX);
            }
            above = true;
            continue;
        }
        s_walk_entry (self, height, next, value, size);
        next = height + 1;
    }
    char reason [CBUS_REASON_MAX];
    if (cbus_store_iter_status (iter, reason))
        cbus_audit_say (self, "height index ('H'): unreadable after block %" PRIu64 ": %s", next,
                        reason);
    else
    if (!self->interrupted && self->tip_known && next <= self->tip_height) {
        cbus_audit_say (self, "height index ('H'): it ends at height %" PRId64 ", below the tip %s "
                        "(height %" PRIu64 ")", (int64_t) next - 1, cbus_hash_hex (self->tip, hex),
                        self->tip_height);
        cbus_audit_damage_heights (self, next, self->tip_height);
    }
    if (!self->tip_known && next > 0)
        self->tip_height = next - 1;
    cbus_store_iter_destroy (&iter);
}
