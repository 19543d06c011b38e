/*  =========================================================================
    cbus_verify - `chainbus verify`: audit a stopped node's chain store

    The walk follows the height index ('H') in key order, which is height
    order, from genesis to the tip: each block is read, decoded with every
    transaction's signature checked, held to the chainstore's rules and
    compared with its index entries. Then the transaction and history
    indexes are scanned for entries the walk did not expect. What the walk
    confirmed is kept in one small record per transaction (s_tx_t): the
    only memory that grows with the chain.
    =========================================================================
*/
#include "cbus_verify.h"
#include <stdarg.h>
#include <fcntl.h>
#include <sys/stat.h>

//  Index record: height u64 BE, cumulative work [32], header [124].
#define S_ENTRY_BYTES   (8 + CBUS_U256_BYTES + CBUS_HEADER_BYTES)
//  Transaction index record: block hash [32], position u32 BE.
#define S_WHERE_BYTES   (CBUS_HASH_BYTES + 4)
//  What follows the name in a history key: 0x00, height u64 BE,
//  position u32 BE.
#define S_HISTORY_TAIL  13
//  Blocks whose times give the median time past (as cbus_chain).
#define S_MEDIAN_SPAN   11
//  Problem lines printed; the rest are counted.
#define S_SHOW_MAX      100
//  Damaged transactions remembered (to explain the index entries that
//  still name what they held); beyond it those entries show as strays.
#define S_DAMAGE_MAX    1000
//  Bytes of a user name or key field shown in a line.
#define S_NAME_SHOWN    64
//  A damage record's position when the whole block is at fault.
#define S_WHOLE_BLOCK   UINT32_MAX
//  LevelDB block cache for the audit: reads are mostly sequential.
#define S_CACHE_MB      8

//  What the walk confirmed about one transaction of the active chain.
typedef struct {
    uint8_t txid [CBUS_HASH_BYTES];     //  Key in the table
    uint64_t height;                    //  Height of its block
    uint32_t position;                  //  Its position there
    uint64_t users;                     //  Fingerprints of the 'U' names found
                                        //  at the walk, less those scanned
    uint64_t keys;                      //  The same for 'K'
} s_tx_t;

//  A transaction, a block or a run of heights the walk could not
//  confirm, already reported. Index entries that place another txid
//  there are not strays: they name what was there (for a transaction,
//  the txid that was confirmed).
typedef struct {
    uint64_t height;                    //  Block height
    uint64_t last;                      //  Last height covered (a gap)
    bool hashed;                        //  block is known
    uint8_t block [CBUS_HASH_BYTES];    //  Block hash
    uint32_t position;                  //  Or S_WHOLE_BLOCK
    bool named;                         //  original is known
    uint8_t original [CBUS_HASH_BYTES]; //  The txid the indexes give
} s_damage_t;

//  Where the transaction index places a txid.
typedef enum {
    S_WHERE_HERE,                       //  This block, this position
    S_WHERE_ABSENT,                     //  No entry
    S_WHERE_ELSEWHERE,                  //  Another block or position
    S_WHERE_UNREADABLE                  //  Read error or malformed
} s_where_t;

//  One audit.
typedef struct {
    cbus_store_t *store;                //  The chain store, opened directly
    const char *network;                //  Network id (borrowed)
    uint32_t bits;                      //  The network's target
    zhashx_t *txs;                      //  txid -> s_tx_t, confirmed so far
    zlistx_t *damage;                   //  s_damage_t, in walk order
    bool tip_known;                     //  'S' names an indexed block
    uint64_t tip_height;                //  Its height
    uint8_t tip [CBUS_HASH_BYTES];      //  Its hash (the last walked if unknown)
    bool have_users;                    //  The store holds any 'U' key
    bool have_keys;                     //  The store holds any 'K' key
    uint64_t blocks;                    //  Blocks walked
    uint64_t tx_count;                  //  Transactions decoded
    uint64_t signed_count;              //  Of which signed
    uint64_t users_expected;            //  'U' entries the blocks imply
    uint64_t keys_expected;             //  'K' entries the blocks imply
    uint64_t users_found;               //  'U' entries scanned
    uint64_t keys_found;                //  'K' entries scanned
    uint64_t problems;                  //  Problems found
    bool interrupted;                   //  Ctrl-C: stop
    bool have_prev;                     //  The walk knows the previous block
    uint8_t prev [CBUS_HASH_BYTES];     //  Its hash
    uint8_t work [CBUS_U256_BYTES];     //  Cumulative work through it
    uint64_t times [S_MEDIAN_SPAN];     //  Times of the last blocks (a ring)
    size_t time_count;                  //  Entries used in times
    size_t time_next;                   //  Next slot to write
} s_audit_t;

//  Each read of a record: 1 found (value to free with cbus_store_free),
//  0 absent, -1 unreadable (cbus_store_error says why).
static int
s_get (s_audit_t *self, const void *key, size_t key_size, char **value_p, size_t *size_p)
{
    if (cbus_store_get (self->store, key, key_size, value_p, size_p))
        return -1;
    return *value_p? 1: 0;
}

static void
s_put_be32 (uint8_t *out, uint32_t value)
{
    out [0] = (uint8_t) (value >> 24);
    out [1] = (uint8_t) (value >> 16);
    out [2] = (uint8_t) (value >> 8);
    out [3] = (uint8_t) value;
}

static uint32_t
s_get_be32 (const uint8_t *in)
{
    return (uint32_t) in [0] << 24 | (uint32_t) in [1] << 16 | (uint32_t) in [2] << 8 | in [3];
}

//  A key of one prefix byte and a 32-byte hash.
static void
s_hash_key (uint8_t key [1 + CBUS_HASH_BYTES], char prefix, const uint8_t hash [CBUS_HASH_BYTES])
{
    key [0] = (uint8_t) prefix;
    memcpy (key + 1, hash, CBUS_HASH_BYTES);
}

//  A history key: prefix, name, 0x00, height u64 BE, position u32 BE.
static void
s_history_key (cbus_buf_t *key, char prefix, const char *name, size_t size,
               uint64_t height, uint32_t position)
{
    uint8_t tail [S_HISTORY_TAIL] = {0};
    cbus_put_be64 (tail + 1, height);
    s_put_be32 (tail + 9, position);
    cbus_buf_reset (key);
    cbus_buf_append (key, &prefix, 1);
    cbus_buf_append (key, name, size);
    cbus_buf_append (key, tail, sizeof (tail));
}

//  A 64-bit fingerprint of a history name. Sums of fingerprints compare
//  the names a transaction implies with those the index holds for it
//  without keeping either list.
static uint64_t
s_fingerprint (const char *name, size_t size)
{
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_hash_sha256 (name, size, hash);
    uint64_t value;
    memcpy (&value, hash, sizeof (value));
    return value;
}

//  A name from the store as a line may show it: quoted, control bytes
//  and (in text that is not UTF-8) bytes above 0x7f escaped, cut at
//  S_NAME_SHOWN bytes. Returns out.
static char *
s_shown (const char *data, size_t size, char out [4 * S_NAME_SHOWN + 8])
{
    bool utf8 = cbus_utf8_valid (data, size);
    size_t shown = size;
    if (shown > S_NAME_SHOWN) {
        shown = S_NAME_SHOWN;
        //  Not inside a UTF-8 sequence.
        while (utf8 && shown > 0 && ((uint8_t) data [shown] & 0xc0) == 0x80)
            shown--;
    }
    char *cursor = out;
    *cursor++ = '\'';
    for (size_t index = 0; index < shown; index++) {
        uint8_t byte = (uint8_t) data [index];
        if (byte < 0x20 || byte == 0x7f || byte == '\'' || byte == '\\' || (byte > 0x7f && !utf8))
            cursor += sprintf (cursor, "\\x%02x", byte);
        else
            *cursor++ = (char) byte;
    }
    *cursor++ = '\'';
    if (shown < size)
        cursor += sprintf (cursor, "...");
    *cursor = 0;
    return out;
}

//  A library reason as part of a line: "Block hash does not meet ..."
//  reads "hash does not meet ...". Returns out.
static char *
s_tidy (const char *reason, char out [CBUS_REASON_MAX])
{
    if (strncmp (reason, "Block ", 6) == 0)
        reason += 6;
    snprintf (out, CBUS_REASON_MAX, "%s", reason);
    if (out [0] >= 'A' && out [0] <= 'Z' && !(out [1] >= 'A' && out [1] <= 'Z'))
        out [0] = (char) (out [0] - 'A' + 'a');
    return out;
}

//  --------------------------------------------------------------------------
//  Reports: one line per problem on stdout, the first S_SHOW_MAX shown

static void
s_say (s_audit_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
static void
s_report (s_audit_t *self, uint64_t height, const uint8_t *hash, int64_t position,
          const uint8_t *txid, const char *format, ...)
    __attribute__ ((format (printf, 6, 7)));

//  A problem of the store as a whole or of an index entry.
static void
s_say (s_audit_t *self, const char *format, ...)
{
    if (++self->problems > S_SHOW_MAX)
        return;
    va_list args;
    va_start (args, format);
    vprintf (format, args);
    va_end (args);
    putchar ('\n');
}

//  A problem of a block ("block 12 (hash): ...") or of one of its
//  transactions ("block 12 (hash): transaction 3 (txid ...): ..."). hash
//  and txid may be NULL when unknown; position < 0 for the block itself.
static void
s_report (s_audit_t *self, uint64_t height, const uint8_t *hash, int64_t position,
          const uint8_t *txid, const char *format, ...)
{
    if (++self->problems > S_SHOW_MAX)
        return;
    char hex [CBUS_HASH_HEX];
    printf ("block %" PRIu64, height);
    if (hash)
        printf (" (%s)", cbus_hash_hex (hash, hex));
    if (position >= 0) {
        printf (": transaction %" PRId64, position);
        if (txid)
            printf (" (txid %s)", cbus_hash_hex (txid, hex));
    }
    printf (": ");
    va_list args;
    va_start (args, format);
    vprintf (format, args);
    va_end (args);
    putchar ('\n');
}

//  Remember a damaged transaction or block (up to S_DAMAGE_MAX).
static void
s_damage (s_audit_t *self, uint64_t height, const uint8_t hash [CBUS_HASH_BYTES], uint32_t position)
{
    if (zlistx_size (self->damage) >= S_DAMAGE_MAX)
        return;
    s_damage_t *damage = (s_damage_t *) zmalloc (sizeof (s_damage_t));
    damage->height = damage->last = height;
    damage->hashed = true;
    memcpy (damage->block, hash, CBUS_HASH_BYTES);
    damage->position = position;
    zlistx_add_end (self->damage, damage);
}

//  Remember heights the walk has no block for (a gap in the height
//  index, or heights above the tip).
static void
s_damage_heights (s_audit_t *self, uint64_t height, uint64_t last)
{
    if (zlistx_size (self->damage) >= S_DAMAGE_MAX)
        return;
    s_damage_t *damage = (s_damage_t *) zmalloc (sizeof (s_damage_t));
    damage->height = height;
    damage->last = last;
    damage->position = S_WHOLE_BLOCK;
    zlistx_add_end (self->damage, damage);
}

//  The damage record an index entry falls on, by height or by block
//  hash (one of them given), or NULL. O(damaged), which is small.
static s_damage_t *
s_damage_at (s_audit_t *self, const uint64_t *height, const uint8_t *hash, uint32_t position)
{
    for (s_damage_t *damage = (s_damage_t *) zlistx_first (self->damage); damage;
         damage = (s_damage_t *) zlistx_next (self->damage)) {
        bool place = height? damage->height <= *height && *height <= damage->last
                           : damage->hashed && memcmp (damage->block, hash, CBUS_HASH_BYTES) == 0;
        if (place && (damage->position == position || damage->position == S_WHOLE_BLOCK))
            return damage;
    }
    return NULL;
}

//  An index entry that names txid at a damaged place: it tells what was
//  confirmed there.
static void
s_damage_name (s_damage_t *damage, const uint8_t txid [CBUS_HASH_BYTES])
{
    if (!damage->named && damage->position != S_WHOLE_BLOCK) {
        memcpy (damage->original, txid, CBUS_HASH_BYTES);
        damage->named = true;
    }
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
    if (msgpack_unpack_next (&unpacked, (const char *) data, size, &offset) == MSGPACK_UNPACK_SUCCESS
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

//  A block as the walk sees it: decoded whole, or salvaged from bytes
//  that cbus_block_new_from_bytes refuses.
typedef struct {
    cbus_block_t *block;                //  Header and the txs that decode
    uint32_t *positions;                //  Position of each in the bytes;
                                        //  NULL when decoded whole
} s_view_t;

static uint32_t
s_position (s_view_t *view, size_t index)
{
    return view->positions? view->positions [index]: (uint32_t) index;
}

//  Bytes cbus_block_new_from_bytes refused (why): report where the fault
//  is, by transaction when one is at fault (each that does not decode,
//  with the txid its bytes hash to), and recover the header and the
//  transactions that do decode. Returns 0 with view filled, or -1 if not
//  even the header decodes (reported).
static int
s_salvage (s_audit_t *self, uint64_t height, const uint8_t hash [CBUS_HASH_BYTES],
           const char *bytes, size_t size, const char *why, s_view_t *view)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    const uint8_t *header_bytes;
    size_t header_size;
    cbus_header_t header;
    char tidy [CBUS_REASON_MAX];
    int rc = -1;
    if (msgpack_unpack_next (&unpacked, bytes, size, &offset) != MSGPACK_UNPACK_SUCCESS
    ||  unpacked.data.type != MSGPACK_OBJECT_MAP
    ||  cbus_msg_get_bin (&unpacked.data, "header", &header_bytes, &header_size)
    ||  cbus_header_decode (&header, header_bytes, header_size)) {
        s_report (self, height, hash, -1, NULL, "does not decode: %s", s_tidy (why, tidy));
        s_damage (self, height, hash, S_WHOLE_BLOCK);
        goto cleanup;
    }
    view->block = cbus_block_new (&header);
    const msgpack_object *txs = cbus_msg_get (&unpacked.data, "txs");
    if (!txs || txs->type != MSGPACK_OBJECT_ARRAY) {
        s_report (self, height, hash, -1, NULL, "does not decode: %s", s_tidy (why, tidy));
        s_damage (self, height, hash, S_WHOLE_BLOCK);
        rc = 0;
        goto cleanup;
    }
    view->positions = (uint32_t *) calloc (txs->via.array.size + 1, sizeof (uint32_t));
    assert (view->positions);
    bool named = false;
    for (uint32_t index = 0; index < txs->via.array.size; index++) {
        const msgpack_object *item = &txs->via.array.ptr [index];
        if (item->type != MSGPACK_OBJECT_BIN) {
            s_report (self, height, hash, index, NULL, "is not bytes");
            s_damage (self, height, hash, index);
            named = true;
            continue;
        }
        char inner [CBUS_REASON_MAX];
        cbus_tx_t *tx = cbus_tx_new_from_bytes (item->via.bin.ptr, item->via.bin.size, inner);
        if (!tx) {
            uint8_t txid [CBUS_HASH_BYTES];
            bool known = s_txid_of (item->via.bin.ptr, item->via.bin.size, txid) == 0;
            s_report (self, height, hash, index, known? txid: NULL, "%s", s_tidy (inner, tidy));
            s_damage (self, height, hash, index);
            named = true;
            continue;
        }
        view->positions [cbus_block_tx_count (view->block)] = index;
        cbus_block_add_tx (view->block, &tx);
    }
    //  The fault is in the block's own shape (a third key, bytes after
    //  the map, too many transactions).
    if (!named) {
        s_report (self, height, hash, -1, NULL, "does not decode: %s", s_tidy (why, tidy));
        s_damage (self, height, hash, S_WHOLE_BLOCK);
    }
    rc = 0;
cleanup:
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

//  --------------------------------------------------------------------------
//  The walk

//  Where the transaction index places txid; fills where/at for ELSEWHERE.
static s_where_t
s_where (s_audit_t *self, const uint8_t txid [CBUS_HASH_BYTES], const uint8_t hash [CBUS_HASH_BYTES],
         uint32_t position, uint8_t where [CBUS_HASH_BYTES], uint32_t *at)
{
    uint8_t key [1 + CBUS_HASH_BYTES];
    s_hash_key (key, 'T', txid);
    char *value;
    size_t size;
    int found = s_get (self, key, sizeof (key), &value, &size);
    if (found <= 0)
        return found == 0? S_WHERE_ABSENT: S_WHERE_UNREADABLE;
    s_where_t result = S_WHERE_UNREADABLE;
    if (size == S_WHERE_BYTES) {
        memcpy (where, value, CBUS_HASH_BYTES);
        *at = s_get_be32 ((const uint8_t *) value + CBUS_HASH_BYTES);
        result = memcmp (where, hash, CBUS_HASH_BYTES) == 0 && *at == position
               ? S_WHERE_HERE: S_WHERE_ELSEWHERE;
    }
    cbus_store_free (value);
    return result;
}

//  The history entries of one transaction for one prefix: each distinct
//  non-empty name must have its entry, naming this txid. The names found right add
//  their fingerprints to *sum; the scan later takes away those of every
//  entry naming the transaction, and what is left is a stray.
static void
s_check_history (s_audit_t *self, char prefix, const char *names [], size_t count,
                 uint64_t height, const uint8_t hash [CBUS_HASH_BYTES], uint32_t position,
                 const uint8_t txid [CBUS_HASH_BYTES], uint64_t *sum)
{
    const char *what = prefix == 'U'? "user": "key";
    bool present = prefix == 'U'? self->have_users: self->have_keys;
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
        if (prefix == 'U')
            self->users_expected++;
        else
            self->keys_expected++;
        //  An index missing whole is one problem, reported at the end.
        if (!present)
            continue;
        size_t size = strlen (names [index]);
        s_history_key (&key, prefix, names [index], size, height, position);
        char *value = NULL;
        size_t value_size;
        char shown [4 * S_NAME_SHOWN + 8];
        char hex [CBUS_HASH_HEX];
        int found = s_get (self, key.data, key.size, &value, &value_size);
        if (found < 0)
            s_report (self, height, hash, position, txid, "its '%c' entry for %s %s cannot be read: %s",
                      prefix, what, s_shown (names [index], size, shown), cbus_store_error (self->store));
        else
        if (found == 0)
            s_report (self, height, hash, position, txid, "no '%c' (history) entry for %s %s",
                      prefix, what, s_shown (names [index], size, shown));
        else
        if (value_size != CBUS_HASH_BYTES)
            s_report (self, height, hash, position, txid, "its '%c' entry for %s %s is malformed",
                      prefix, what, s_shown (names [index], size, shown));
        else
        if (memcmp (value, txid, CBUS_HASH_BYTES) != 0)
            s_report (self, height, hash, position, txid, "its '%c' entry for %s %s names txid %s",
                      prefix, what, s_shown (names [index], size, shown),
                      cbus_hash_hex ((const uint8_t *) value, hex));
        else
            *sum += s_fingerprint (names [index], size);
        cbus_store_free (value);
    }
    cbus_buf_free (&key);
}

//  The transactions of a walked block: each new to the chain, in the
//  transaction index here, and in the history. skip marks those already
//  reported as damaged.
static void
s_check_txs (s_audit_t *self, uint64_t height, const uint8_t hash [CBUS_HASH_BYTES],
             s_view_t *view, const s_where_t *wheres, const bool *skip,
             uint8_t (*elsewhere) [CBUS_HASH_BYTES], const uint32_t *elsewhere_at)
{
    char hex [CBUS_HASH_HEX];
    for (size_t index = 0; index < cbus_block_tx_count (view->block); index++) {
        cbus_tx_t *tx = cbus_block_tx (view->block, index);
        const uint8_t *txid = cbus_tx_id (tx);
        uint32_t position = s_position (view, index);
        self->tx_count++;
        if (cbus_tx_is_signed (tx))
            self->signed_count++;
        s_tx_t *known = (s_tx_t *) zhashx_lookup (self->txs, txid);
        if (known) {
            s_report (self, height, hash, position, txid, "already confirmed in block %" PRIu64
                      " at position %" PRIu32, known->height, known->position);
            continue;
        }
        s_tx_t *record = (s_tx_t *) zmalloc (sizeof (s_tx_t));
        memcpy (record->txid, txid, CBUS_HASH_BYTES);
        record->height = height;
        record->position = position;
        zhashx_insert (self->txs, record->txid, record);
        if (skip [index])
            continue;
        if (wheres [index] == S_WHERE_ABSENT)
            s_report (self, height, hash, position, txid, "not in the transaction index ('T')");
        else
        if (wheres [index] == S_WHERE_UNREADABLE)
            s_report (self, height, hash, position, txid, "its 'T' entry cannot be read or is malformed");
        else
        if (wheres [index] == S_WHERE_ELSEWHERE)
            s_report (self, height, hash, position, txid, "its 'T' entry places it in block %s "
                      "at position %" PRIu32, cbus_hash_hex (elsewhere [index], hex),
                      elsewhere_at [index]);
        const char *users [CBUS_TX_MAX_USERS];
        size_t count = cbus_tx_user_count (tx);
        if (count > CBUS_TX_MAX_USERS)
            count = CBUS_TX_MAX_USERS;  //  Decoding refuses more: not reached
        for (size_t user = 0; user < count; user++)
            users [user] = cbus_tx_user (tx, user);
        s_check_history (self, 'U', users, count, height, hash, position, txid, &record->users);
        const char *keys [2] = { cbus_tx_sender_key (tx), cbus_tx_receiver_key (tx) };
        s_check_history (self, 'K', keys, 2, height, hash, position, txid, &record->keys);
    }
}

//  Median of the times of the last blocks walked (up to 11).
static uint64_t
s_median_time (s_audit_t *self)
{
    uint64_t times [S_MEDIAN_SPAN];
    memcpy (times, self->times, sizeof (times));
    return cbus_median_u64 (times, self->time_count);
}

//  The index entry ('I') of a walked block: height, header, work.
//  header is NULL when the bytes gave none; work holds the expected
//  cumulative work (NULL if the walk cannot know it). Fills stored with
//  the entry's header and stored_work with its work, when it has them.
static bool
s_check_entry (s_audit_t *self, uint64_t height, const uint8_t hash [CBUS_HASH_BYTES],
               const cbus_header_t *header, const uint8_t *work,
               cbus_header_t *stored, uint8_t stored_work [CBUS_U256_BYTES])
{
    uint8_t key [1 + CBUS_HASH_BYTES];
    s_hash_key (key, 'I', hash);
    char *value;
    size_t size;
    int found = s_get (self, key, sizeof (key), &value, &size);
    if (found < 0) {
        s_report (self, height, hash, -1, NULL, "its index entry ('I') cannot be read: %s",
                  cbus_store_error (self->store));
        return false;
    }
    if (found == 0) {
        s_report (self, height, hash, -1, NULL, "no index entry ('I')");
        return false;
    }
    const uint8_t *bytes = (const uint8_t *) value;
    bool usable = false;
    if (size != S_ENTRY_BYTES
    ||  cbus_header_decode (stored, bytes + 8 + CBUS_U256_BYTES, CBUS_HEADER_BYTES))
        s_report (self, height, hash, -1, NULL, "its index entry ('I') is malformed");
    else {
        usable = true;
        memcpy (stored_work, bytes + 8, CBUS_U256_BYTES);
        uint8_t encoded [CBUS_HEADER_BYTES];
        if (cbus_get_be64 (bytes) != height)
            s_report (self, height, hash, -1, NULL, "its index entry ('I') gives height %" PRIu64,
                      cbus_get_be64 (bytes));
        if (header) {
            cbus_header_encode (header, encoded);
            if (memcmp (encoded, bytes + 8 + CBUS_U256_BYTES, CBUS_HEADER_BYTES) != 0)
                s_report (self, height, hash, -1, NULL, "its index entry ('I') holds another header");
        }
        if (work && memcmp (work, bytes + 8, CBUS_U256_BYTES) != 0)
            s_report (self, height, hash, -1, NULL, "its index entry ('I') gives the wrong "
                      "cumulative work");
    }
    cbus_store_free (value);
    return usable;
}

//  The header checks that need the chain: height, genesis, parent,
//  target, time.
static void
s_check_header (s_audit_t *self, uint64_t height, const uint8_t hash [CBUS_HASH_BYTES],
                const cbus_header_t *header)
{
    char hex [CBUS_HASH_HEX];
    uint8_t computed [CBUS_HASH_BYTES];
    cbus_header_hash (header, computed);
    if (memcmp (computed, hash, CBUS_HASH_BYTES) != 0)
        s_report (self, height, hash, -1, NULL, "its header hashes to %s", cbus_hash_hex (computed, hex));
    if (header->height != height)
        s_report (self, height, hash, -1, NULL, "its header gives height %" PRIu64, header->height);
    if (height == 0)
        return;                         //  Genesis: compared whole by the caller
    if (self->have_prev && memcmp (header->prev_hash, self->prev, CBUS_HASH_BYTES) != 0)
        s_report (self, height, hash, -1, NULL, "its previous hash %s is not block %" PRIu64
                  "'s hash", cbus_hash_hex (header->prev_hash, hex), height - 1);
    if (header->bits != self->bits)
        s_report (self, height, hash, -1, NULL, "target bits %08x are not the network's %08x",
                  header->bits, self->bits);
    uint64_t median = s_median_time (self);
    if (self->time_count && header->time_ms <= median)
        s_report (self, height, hash, -1, NULL, "time %" PRIu64 " is not after the median of the "
                  "last blocks (%" PRIu64 ")", header->time_ms, median);
}

//  A block whose bytes decoded whole: the checks that need no chain,
//  merkle root first. When the root does not match, the transactions
//  whose txid no index knows are the ones changed since they were
//  confirmed: they are named and marked in skip.
static void
s_check_body (s_audit_t *self, uint64_t height, const uint8_t hash [CBUS_HASH_BYTES],
              s_view_t *view, const s_where_t *wheres, bool *skip)
{
    cbus_block_t *block = view->block;
    cbus_header_t *header = cbus_block_header (block);
    char tidy [CBUS_REASON_MAX];
    uint8_t root [CBUS_HASH_BYTES];
    cbus_block_merkle (block, root);
    if (memcmp (root, header->merkle_root, CBUS_HASH_BYTES) == 0) {
        char reason [CBUS_REASON_MAX];
        if (cbus_block_check (block, NULL, reason))
            s_report (self, height, hash, -1, NULL, "%s", s_tidy (reason, tidy));
        return;
    }
    size_t suspects = 0;
    for (size_t index = 0; index < cbus_block_tx_count (block); index++)
        if (wheres [index] == S_WHERE_ABSENT) {
            uint32_t position = s_position (view, index);
            s_report (self, height, hash, position, cbus_tx_id (cbus_block_tx (block, index)),
                      "merkle root does not match: this is not the transaction confirmed here "
                      "(no index knows its txid)");
            s_damage (self, height, hash, position);
            skip [index] = true;
            suspects++;
        }
    if (!suspects)
        s_report (self, height, hash, -1, NULL, "merkle root does not match its transactions");
    if (header->version != CBUS_BLOCK_VERSION)
        s_report (self, height, hash, -1, NULL, "version %u is not %d", header->version,
                  CBUS_BLOCK_VERSION);
    if (!cbus_pow_check (hash, header->bits))
        s_report (self, height, hash, -1, NULL, "hash does not meet its proof-of-work target");
}

//  One block of the active chain, at height, stored under hash.
static void
s_walk_block (s_audit_t *self, uint64_t height, const uint8_t hash [CBUS_HASH_BYTES])
{
    s_view_t view = { NULL, NULL };
    s_where_t *wheres = NULL;
    bool *skip = NULL;
    uint8_t (*elsewhere) [CBUS_HASH_BYTES] = NULL;
    uint32_t *elsewhere_at = NULL;
    cbus_block_t *genesis = NULL;
    cbus_buf_t encoded = {0};
    char *bytes = NULL;
    size_t size = 0;
    uint8_t key [1 + CBUS_HASH_BYTES];
    s_hash_key (key, 'B', hash);
    int found = s_get (self, key, sizeof (key), &bytes, &size);
    char reason [CBUS_REASON_MAX];
    if (found < 0) {
        s_report (self, height, hash, -1, NULL, "unreadable: %s", cbus_store_error (self->store));
        s_damage (self, height, hash, S_WHOLE_BLOCK);
    }
    else
    if (found == 0) {
        s_report (self, height, hash, -1, NULL, "its bytes ('B') are missing");
        s_damage (self, height, hash, S_WHOLE_BLOCK);
    }
    else
    if ((view.block = cbus_block_new_from_bytes (bytes, size, reason)) == NULL)
        s_salvage (self, height, hash, bytes, size, reason, &view);
    //  Another block's bytes under this hash: none of what they hold is
    //  this block's, so say that once and go on with the index entry.
    uint8_t computed [CBUS_HASH_BYTES];
    char hex [CBUS_HASH_HEX];
    if (view.block) {
        cbus_block_hash (view.block, computed);
        if (memcmp (computed, hash, CBUS_HASH_BYTES) != 0) {
            s_report (self, height, hash, -1, NULL, "the bytes stored under this hash ('B') are "
                      "another block's (their header hashes to %s)", cbus_hash_hex (computed, hex));
            s_damage (self, height, hash, S_WHOLE_BLOCK);
            cbus_block_destroy (&view.block);
            free (view.positions);
            view.positions = NULL;
        }
    }
    bool whole = view.block && !view.positions;
    cbus_header_t *header = view.block? cbus_block_header (view.block): NULL;

    //  Genesis is fixed by the network: the same bytes.
    if (height == 0 && view.block) {
        genesis = cbus_block_new_genesis (self->network, self->bits);
        cbus_block_encode (genesis, &encoded);
        if (encoded.size != size || memcmp (encoded.data, bytes, size) != 0)
            s_report (self, height, hash, -1, NULL, "is not the genesis of network %s (bits %08x)",
                      self->network, self->bits);
    }
    //  The transaction index first: a merkle root that does not match
    //  uses it to tell which transaction changed.
    size_t count = view.block? cbus_block_tx_count (view.block): 0;
    wheres = (s_where_t *) calloc (count + 1, sizeof (s_where_t));
    skip = (bool *) calloc (count + 1, sizeof (bool));
    elsewhere = calloc (count + 1, CBUS_HASH_BYTES);
    elsewhere_at = (uint32_t *) calloc (count + 1, sizeof (uint32_t));
    assert (wheres && skip && elsewhere && elsewhere_at);
    for (size_t index = 0; index < count; index++)
        wheres [index] = s_where (self, cbus_tx_id (cbus_block_tx (view.block, index)), hash,
                                  s_position (&view, index), elsewhere [index], &elsewhere_at [index]);
    if (header) {
        s_check_header (self, height, hash, header);
        if (whole && height > 0)
            s_check_body (self, height, hash, &view, wheres, skip);
        else
        if (height > 0 && !cbus_pow_check (hash, header->bits))
            s_report (self, height, hash, -1, NULL, "hash does not meet its proof-of-work target");
    }
    //  Cumulative work: the parent's plus this block's.
    uint8_t work [CBUS_U256_BYTES];
    bool work_known = false;
    if (header && cbus_pow_work (header->bits, work) == 0) {
        if (height == 0)
            work_known = true;
        else
        if (self->have_prev) {
            cbus_u256_add (self->work, work, work);
            work_known = true;
        }
    }
    cbus_header_t stored;
    uint8_t stored_work [CBUS_U256_BYTES];
    bool entry = s_check_entry (self, height, hash, header, work_known? work: NULL,
                                &stored, stored_work);
    //  Without the bytes' header, the index entry's links the walk on.
    if (!header && entry) {
        header = &stored;
        s_check_header (self, height, hash, header);
    }
    if (view.block)
        s_check_txs (self, height, hash, &view, wheres, skip, elsewhere, elsewhere_at);
    if (self->tip_known && height == self->tip_height
    &&  memcmp (hash, self->tip, CBUS_HASH_BYTES) != 0) {
        s_report (self, height, hash, -1, NULL, "the tip record ('S') names %s, not this block",
                  cbus_hash_hex (self->tip, hex));
    }

    //  What the next block builds on.
    self->blocks++;
    memcpy (self->prev, hash, CBUS_HASH_BYTES);
    self->have_prev = true;
    if (work_known)
        memcpy (self->work, work, CBUS_U256_BYTES);
    else
    if (entry)
        memcpy (self->work, stored_work, CBUS_U256_BYTES);
    else
        self->have_prev = false;
    if (header) {
        self->times [self->time_next] = header->time_ms;
        self->time_next = (self->time_next + 1) % S_MEDIAN_SPAN;
        if (self->time_count < S_MEDIAN_SPAN)
            self->time_count++;
    }
    else
        self->time_count = self->time_next = 0;

    cbus_block_destroy (&genesis);
    cbus_buf_free (&encoded);
    cbus_block_destroy (&view.block);
    free (view.positions);
    free (wheres);
    free (skip);
    free (elsewhere);
    free (elsewhere_at);
    cbus_store_free (bytes);
}

//  A gap in the height index: the walk goes on without a parent.
static void
s_gap (s_audit_t *self)
{
    self->have_prev = false;
    self->time_count = self->time_next = 0;
}

//  The active chain by the height index, genesis first. Heights are
//  big-endian in the keys, so key order is height order.
static void
s_walk (s_audit_t *self)
{
    cbus_store_iter_t *iter = cbus_store_iter_new (self->store);
    uint64_t next = 0;
    bool above = false;
    char hex [CBUS_HASH_HEX];
    for (cbus_store_iter_seek (iter, "H", 1); cbus_store_iter_valid (iter); cbus_store_iter_next (iter)) {
        size_t key_size, size;
        const uint8_t *key = (const uint8_t *) cbus_store_iter_key (iter, &key_size);
        const uint8_t *value = (const uint8_t *) cbus_store_iter_value (iter, &size);
        if (key_size < 1 || key [0] != 'H')
            break;
        if (zsys_interrupted) {
            self->interrupted = true;
            break;
        }
        if (key_size != 9) {
            s_say (self, "height index ('H'): a key of %zu bytes, not 9", key_size);
            continue;
        }
        uint64_t height = cbus_get_be64 (key + 1);
        if (self->tip_known && height > self->tip_height) {
            //  One line says it: all that follow are too, and what the
            //  indexes hold for those heights is not more problems.
            if (!above) {
                s_say (self, "height index ('H'): an entry for height %" PRIu64 ", above the tip "
                       "(height %" PRIu64 ")", height, self->tip_height);
                s_damage_heights (self, height, UINT64_MAX);
            }
            above = true;
            continue;
        }
        if (height > next) {
            if (height == next + 1)
                s_report (self, next, NULL, -1, NULL, "no height index entry ('H'): the active "
                          "chain has a gap");
            else
                s_say (self, "blocks %" PRIu64 " to %" PRIu64 ": no height index entries ('H'): "
                       "the active chain has a gap", next, height - 1);
            s_damage_heights (self, next, height - 1);
            s_gap (self);
        }
        next = height + 1;
        if (size != CBUS_HASH_BYTES) {
            s_report (self, height, NULL, -1, NULL, "its height index entry ('H') is malformed");
            s_damage_heights (self, height, height);
            s_gap (self);
            continue;
        }
        uint8_t hash [CBUS_HASH_BYTES];
        memcpy (hash, value, CBUS_HASH_BYTES);
        s_walk_block (self, height, hash);
        if (!self->tip_known)
            memcpy (self->tip, hash, CBUS_HASH_BYTES);
    }
    char reason [CBUS_REASON_MAX];
    if (cbus_store_iter_status (iter, reason))
        s_say (self, "height index ('H'): unreadable after block %" PRIu64 ": %s", next, reason);
    else
    if (!self->interrupted && self->tip_known && next <= self->tip_height) {
        s_say (self, "height index ('H'): it ends at height %" PRId64 ", below the tip %s "
               "(height %" PRIu64 ")", (int64_t) next - 1, cbus_hash_hex (self->tip, hex),
               self->tip_height);
        s_damage_heights (self, next, self->tip_height);
    }
    if (!self->tip_known && next > 0)
        self->tip_height = next - 1;
    cbus_store_iter_destroy (&iter);
}

//  --------------------------------------------------------------------------
//  Scans for entries the walk did not expect

typedef void (s_visit_fn) (s_audit_t *self, const uint8_t *key, size_t key_size,
                           const uint8_t *value, size_t size);

//  Every key with this prefix, in order. what names the index in lines.
static void
s_scan (s_audit_t *self, char prefix, const char *what, s_visit_fn *visit)
{
    cbus_store_iter_t *iter = cbus_store_iter_new (self->store);
    for (cbus_store_iter_seek (iter, &prefix, 1); cbus_store_iter_valid (iter); cbus_store_iter_next (iter)) {
        size_t key_size, size;
        const uint8_t *key = (const uint8_t *) cbus_store_iter_key (iter, &key_size);
        const uint8_t *value = (const uint8_t *) cbus_store_iter_value (iter, &size);
        if (key_size < 1 || key [0] != (uint8_t) prefix)
            break;
        if (zsys_interrupted) {
            self->interrupted = true;
            break;
        }
        visit (self, key, key_size, value, size);
    }
    char reason [CBUS_REASON_MAX];
    if (cbus_store_iter_status (iter, reason))
        s_say (self, "%s: unreadable: %s", what, reason);
    cbus_store_iter_destroy (&iter);
}

//  True if the store holds any key with this prefix.
static bool
s_any (s_audit_t *self, char prefix)
{
    cbus_store_iter_t *iter = cbus_store_iter_new (self->store);
    cbus_store_iter_seek (iter, &prefix, 1);
    size_t size;
    bool any = cbus_store_iter_valid (iter)
            && *cbus_store_iter_key (iter, &size) == prefix;
    cbus_store_iter_destroy (&iter);
    return any;
}

//  A 'T' entry: its txid must be one the walk confirmed (whose entry the
//  walk checked), or name a damaged transaction's place.
static void
s_visit_tx (s_audit_t *self, const uint8_t *key, size_t key_size, const uint8_t *value, size_t size)
{
    char hex [CBUS_HASH_HEX], other [CBUS_HASH_HEX];
    if (key_size != 1 + CBUS_HASH_BYTES || size != S_WHERE_BYTES) {
        s_say (self, "transaction index ('T'): a malformed entry (key %zu bytes, value %zu)",
               key_size, size);
        return;
    }
    const uint8_t *txid = key + 1;
    if (zhashx_lookup (self->txs, txid))
        return;
    uint32_t position = s_get_be32 (value + CBUS_HASH_BYTES);
    s_damage_t *damage = s_damage_at (self, NULL, value, position);
    if (!damage) {
        //  Heights the walk has no block for are known by height only.
        uint8_t entry_key [1 + CBUS_HASH_BYTES];
        s_hash_key (entry_key, 'I', value);
        char *entry = NULL;
        size_t entry_size;
        if (s_get (self, entry_key, sizeof (entry_key), &entry, &entry_size) == 1
        &&  entry_size == S_ENTRY_BYTES) {
            uint64_t height = cbus_get_be64 ((const uint8_t *) entry);
            damage = s_damage_at (self, &height, NULL, position);
        }
        cbus_store_free (entry);
    }
    if (damage) {
        s_damage_name (damage, txid);
        return;
    }
    s_say (self, "transaction index ('T'): txid %s is not in the active chain, but its entry "
           "places it in block %s at position %" PRIu32, cbus_hash_hex (txid, hex),
           cbus_hash_hex (value, other), position);
}

//  A 'U' or 'K' entry: it must name a transaction the walk confirmed, at
//  its height and position, and (by the fingerprint sums) a name that
//  transaction implies.
static void
s_visit_history (s_audit_t *self, const uint8_t *key, size_t key_size, const uint8_t *value, size_t size)
{
    char prefix = (char) key [0];
    const char *what = prefix == 'U'? "user history ('U')": "key history ('K')";
    char hex [CBUS_HASH_HEX];
    char shown [4 * S_NAME_SHOWN + 8];
    if (prefix == 'U')
        self->users_found++;
    else
        self->keys_found++;
    if (key_size < 1 + S_HISTORY_TAIL || key [key_size - S_HISTORY_TAIL] != 0
    ||  size != CBUS_HASH_BYTES) {
        s_say (self, "%s: a malformed entry (key %zu bytes, value %zu)", what, key_size, size);
        return;
    }
    const char *name = (const char *) key + 1;
    size_t name_size = key_size - 1 - S_HISTORY_TAIL;
    uint64_t height = cbus_get_be64 (key + key_size - 12);
    uint32_t position = s_get_be32 (key + key_size - 4);
    s_tx_t *tx = (s_tx_t *) zhashx_lookup (self->txs, value);
    if (tx && tx->height == height && tx->position == position) {
        uint64_t fingerprint = s_fingerprint (name, name_size);
        if (prefix == 'U')
            tx->users -= fingerprint;
        else
            tx->keys -= fingerprint;
        return;
    }
    if (tx) {
        s_say (self, "%s: the entry for %s at block %" PRIu64 " position %" PRIu32 " names txid %s, "
               "which is in block %" PRIu64 " at position %" PRIu32, what,
               s_shown (name, name_size, shown), height, position, cbus_hash_hex (value, hex),
               tx->height, tx->position);
        return;
    }
    s_damage_t *damage = s_damage_at (self, &height, NULL, position);
    if (damage) {
        s_damage_name (damage, value);
        return;
    }
    s_say (self, "%s: the entry for %s at block %" PRIu64 " position %" PRIu32 " names txid %s, "
           "which is not in the active chain", what, s_shown (name, name_size, shown), height,
           position, cbus_hash_hex (value, hex));
}

//  After the history scans: a transaction whose fingerprints do not
//  cancel has an entry for a name it does not imply.
static void
s_check_sums (s_audit_t *self)
{
    for (s_tx_t *tx = (s_tx_t *) zhashx_first (self->txs); tx; tx = (s_tx_t *) zhashx_next (self->txs)) {
        if (tx->users == 0 && tx->keys == 0)
            continue;
        uint8_t key [9], hash [CBUS_HASH_BYTES];
        key [0] = 'H';
        cbus_put_be64 (key + 1, tx->height);
        char *value = NULL;
        size_t size = 0;
        bool known = s_get (self, key, sizeof (key), &value, &size) == 1 && size == CBUS_HASH_BYTES;
        if (known)
            memcpy (hash, value, CBUS_HASH_BYTES);
        cbus_store_free (value);
        if (tx->users)
            s_report (self, tx->height, known? hash: NULL, tx->position, tx->txid,
                      "a user history entry ('U') names it for a user it does not name");
        if (tx->keys)
            s_report (self, tx->height, known? hash: NULL, tx->position, tx->txid,
                      "a key history entry ('K') names it for a key it does not give");
    }
}

//  What the indexes say a damaged transaction was: a line that explains
//  a problem already counted, so not one more.
static void
s_report_damage (s_audit_t *self)
{
    char hex [CBUS_HASH_HEX], block [CBUS_HASH_HEX];
    for (s_damage_t *damage = (s_damage_t *) zlistx_first (self->damage); damage;
         damage = (s_damage_t *) zlistx_next (self->damage))
        if (damage->named && self->problems <= S_SHOW_MAX)
            printf ("block %" PRIu64 " (%s): transaction %" PRIu32 ": the indexes still name "
                    "txid %s here: the transaction confirmed here was changed\n", damage->height,
                    cbus_hash_hex (damage->block, block), damage->position,
                    cbus_hash_hex (damage->original, hex));
}

//  The tip record: a block the index knows, whose height bounds the walk.
static void
s_read_tip (s_audit_t *self)
{
    char *value = NULL;
    size_t size;
    int found = s_get (self, "S", 1, &value, &size);
    if (found < 0)
        s_say (self, "tip record ('S'): unreadable: %s", cbus_store_error (self->store));
    else
    if (found == 0 || size != CBUS_HASH_BYTES)
        s_say (self, "tip record ('S'): %s; the walk goes as far as the height index",
               found == 0? "missing": "malformed");
    else {
        memcpy (self->tip, value, CBUS_HASH_BYTES);
        cbus_store_free (value);
        value = NULL;
        uint8_t key [1 + CBUS_HASH_BYTES];
        s_hash_key (key, 'I', self->tip);
        char hex [CBUS_HASH_HEX];
        found = s_get (self, key, sizeof (key), &value, &size);
        if (found == 1 && size == S_ENTRY_BYTES) {
            self->tip_height = cbus_get_be64 ((const uint8_t *) value);
            self->tip_known = true;
        }
        else
            s_say (self, "tip record ('S'): it names %s, which has no index entry ('I'); the walk "
                   "goes as far as the height index", cbus_hash_hex (self->tip, hex));
    }
    cbus_store_free (value);
}

//  --------------------------------------------------------------------------

static void
s_tx_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

static void
s_damage_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  True if a process holds LevelDB's lock on the store (its fcntl lock
//  on LOCK), with its pid. Checked before opening: LevelDB's own error
//  text differs between versions.
static bool
s_locked (const char *path, pid_t *pid)
{
    char *lock = zsys_sprintf ("%s/LOCK", path);
    int fd = open (lock, O_RDWR);
    zstr_free (&lock);
    if (fd < 0)
        return false;
    struct flock request = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    bool locked = fcntl (fd, F_GETLK, &request) == 0 && request.l_type != F_UNLCK;
    *pid = request.l_pid;
    close (fd);
    return locked;
}

//  Open the store of a stopped node without creating one. Returns the
//  exit code to give up with, or -1 with the store open.
static int
s_open (s_audit_t *self, const char *path)
{
    struct stat st;
    pid_t pid = 0;
    char reason [CBUS_REASON_MAX];
    char *current = zsys_sprintf ("%s/CURRENT", path);
    bool store = stat (current, &st) == 0;
    zstr_free (&current);
    if (stat (path, &st) || !S_ISDIR (st.st_mode)) {
        fprintf (stderr, "chainbus verify: no chain store at %s (is --data-dir the node's "
                 "data folder?)\n", path);
        return CBUS_VERIFY_REFUSED;
    }
    if (!store) {
        fprintf (stderr, "chainbus verify: %s is not a chain store (no LevelDB CURRENT file)\n", path);
        return CBUS_VERIFY_REFUSED;
    }
    if (s_locked (path, &pid)) {
        fprintf (stderr, "chainbus verify: stop the node first (the store is locked: process %d "
                 "holds %s)\n", (int) pid, path);
        return CBUS_VERIFY_REFUSED;
    }
    self->store = cbus_store_new (path, S_CACHE_MB, reason);
    if (self->store)
        return -1;
    if (strstr (reason, "Corruption")) {
        printf ("chain NOT sound: the store does not open: %s\n", reason);
        return CBUS_VERIFY_PROBLEMS;
    }
    if (strstr (reason, "IO error: lock"))
        fprintf (stderr, "chainbus verify: stop the node first (the store is locked: %s)\n", reason);
    else
        fprintf (stderr, "chainbus verify: %s\n", reason);
    return CBUS_VERIFY_REFUSED;
}

//  The meta record must be the one this network's chainstore writes.
//  Returns the exit code to give up with, or -1.
static int
s_check_meta (s_audit_t *self, const char *path)
{
    uint8_t work [CBUS_U256_BYTES];
    if (cbus_pow_work (self->bits, work)) {
        fprintf (stderr, "chainbus verify: invalid proof-of-work bits %08x\n", self->bits);
        return CBUS_VERIFY_REFUSED;
    }
    cbus_block_t *genesis = cbus_block_new_genesis (self->network, self->bits);
    uint8_t hash [CBUS_HASH_BYTES];
    char hex [CBUS_HASH_HEX];
    cbus_block_hash (genesis, hash);
    cbus_block_destroy (&genesis);
    char *expected = zsys_sprintf ("network=%s bits=%08x genesis=%s", self->network, self->bits,
                                   cbus_hash_hex (hash, hex));
    char *value = NULL;
    size_t size;
    int found = s_get (self, "M", 1, &value, &size);
    int rc = -1;
    if (found < 0) {
        printf ("chain NOT sound: the meta record ('M') cannot be read: %s\n",
                cbus_store_error (self->store));
        rc = CBUS_VERIFY_PROBLEMS;
    }
    else
    if (found == 0) {
        fprintf (stderr, "chainbus verify: %s holds no meta record ('M'): not a chain store\n", path);
        rc = CBUS_VERIFY_REFUSED;
    }
    else
    if (size != strlen (expected) || memcmp (value, expected, size) != 0) {
        fprintf (stderr, "chainbus verify: the chain store at %s was made for another network "
                 "(it holds '%.*s', verify was given '%s'): give the node's --network and "
                 "--pow-bits, or its --config\n", path, (int) (size > 200? 200: size), value, expected);
        rc = CBUS_VERIFY_REFUSED;
    }
    cbus_store_free (value);
    zstr_free (&expected);
    return rc;
}

int
cbus_verify_run (cbus_config_t *config)
{
    s_audit_t audit = {0};
    s_audit_t *self = &audit;
    self->network = cbus_config_str (config, "node/network");
    self->bits = (uint32_t) cbus_config_int (config, "node/pow_bits");
    self->txs = cbus_hash_table_new ();
    zhashx_set_destructor (self->txs, s_tx_destroy);
    self->damage = zlistx_new ();
    zlistx_set_destructor (self->damage, s_damage_destroy);
    char *path = cbus_config_path (config, "chain");
    int rc = s_open (self, path);
    if (rc < 0)
        rc = s_check_meta (self, path);
    if (rc >= 0)
        goto cleanup;

    self->have_users = s_any (self, 'U');
    self->have_keys = s_any (self, 'K');
    s_read_tip (self);
    s_walk (self);
    if (!self->interrupted)
        s_scan (self, 'T', "transaction index ('T')", s_visit_tx);
    if (!self->interrupted)
        s_scan (self, 'U', "user history ('U')", s_visit_history);
    if (!self->interrupted)
        s_scan (self, 'K', "key history ('K')", s_visit_history);
    if (self->interrupted) {
        fprintf (stderr, "chainbus verify: interrupted\n");
        rc = CBUS_VERIFY_REFUSED;
        goto cleanup;
    }
    s_check_sums (self);
    s_report_damage (self);
    if (self->blocks == 0)
        s_say (self, "height index ('H'): empty: the store holds no active chain");
    if (!self->have_users && self->users_expected)
        s_say (self, "user history ('U'): missing whole: the blocks name %" PRIu64 " users "
               "(a store written before the history index existed?)", self->users_expected);
    if (!self->have_keys && self->keys_expected)
        s_say (self, "key history ('K'): missing whole: the blocks give %" PRIu64 " keys "
               "(a store written before the history index existed?)", self->keys_expected);

    char hex [CBUS_HASH_HEX];
    if (self->problems == 0) {
        printf ("chain sound: %" PRIu64 " blocks, %" PRIu64 " transactions, %" PRIu64 " signed, "
                "%" PRIu64 " user and %" PRIu64 " key history entries, tip %s (height %" PRIu64 ")\n",
                self->blocks, self->tx_count, self->signed_count, self->users_found,
                self->keys_found, cbus_hash_hex (self->tip, hex), self->tip_height);
        rc = CBUS_VERIFY_SOUND;
    }
    else {
        printf ("chain NOT sound: %" PRIu64 " problem%s (%" PRIu64 " blocks, %" PRIu64
                " transactions checked)", self->problems, self->problems == 1? "": "s",
                self->blocks, self->tx_count);
        if (self->problems > S_SHOW_MAX)
            printf ("; the first %d are shown", S_SHOW_MAX);
        printf ("\n");
        rc = CBUS_VERIFY_PROBLEMS;
    }
cleanup:
    fflush (stdout);
    cbus_store_destroy (&self->store);
    zhashx_destroy (&self->txs);
    zlistx_destroy (&self->damage);
    zstr_free (&path);
    return rc;
}

int
cbus_verify_main (int argc, char **argv)
{
    for (int arg = 1; arg < argc; arg++)
        if (streq (argv [arg], "--help") || streq (argv [arg], "-h")) {
            printf ("usage: chainbus verify --data-dir D [--network N --pow-bits B | --config F]\n\n"
                    "Re-check a stopped node's chain store from genesis: links, proof of work,\n"
                    "merkle roots, signatures, times, work and every index. Prints each problem\n"
                    "and a summary; exits 0 if the chain is sound, 1 if problems were found,\n"
                    "2 if it could not audit (no store, a running node, another network).\n\n"
                    "flags:\n");
            cbus_config_print_help (stdout);
            return CBUS_VERIFY_SOUND;
        }
    char reason [CBUS_REASON_MAX];
    cbus_config_t *config = cbus_config_new_with_args (argc, argv, reason);
    if (!config) {
        fprintf (stderr, "chainbus verify: %s\n", reason);
        return CBUS_VERIFY_REFUSED;
    }
    int rc;
    if (cbus_config_arg_count (config)) {
        fprintf (stderr, "chainbus verify: unexpected argument '%s'\n", cbus_config_arg (config, 0));
        rc = CBUS_VERIFY_REFUSED;
    }
    else {
        //  Every problem is reported here; the store's own log lines
        //  would only repeat them.
        zsys_init ();
        zsys_set_logstream (NULL);
        rc = cbus_verify_run (config);
    }
    cbus_config_destroy (&config);
    return rc;
}
