/*  =========================================================================
    cbus_audit_scan - verify's scans of the indexes for entries the walk
    did not expect

    After the walk, every transaction index entry ('T') must name a
    transaction the walk confirmed, and every history entry ('U', 'K') one
    at its height and position, for a name it implies; entries that name
    what a damaged place held explain that damage instead of counting as
    more problems.
    =========================================================================
*/
#include "cbus_audit.h"

typedef void (s_visit_fn) (cbus_audit_t *self, const uint8_t *key, size_t key_size,
                           const uint8_t *value, size_t size);

//  Every key with this prefix, in order. what names the index in lines.
static void
s_scan (cbus_audit_t *self, char prefix, const char *what, s_visit_fn *visit)
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
        cbus_audit_say (self, "%s: unreadable: %s", what, reason);
    cbus_store_iter_destroy (&iter);
}

bool
cbus_audit_any (cbus_audit_t *self, char prefix)
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
s_visit_tx (cbus_audit_t *self, const uint8_t *key, size_t key_size, const uint8_t *value, size_t size)
{
    char hex [CBUS_HASH_HEX], other [CBUS_HASH_HEX];
    uint8_t block [CBUS_HASH_BYTES];
    uint32_t position;
    if (key_size != 1 + CBUS_HASH_BYTES
    ||  cbus_layout_where_decode (value, size, block, &position)) {
        cbus_audit_say (self, "transaction index ('T'): a malformed entry (key %zu bytes, value %zu)",
                        key_size, size);
        return;
    }
    const uint8_t *txid = key + 1;
    if (zhashx_lookup (self->txs, txid))
        return;
    cbus_audit_damage_t *damage = cbus_audit_damage_at (self, NULL, block, position);
    if (!damage) {
        //  Heights the walk has no block for are known by height only.
        char *record = NULL;
        size_t record_size;
        cbus_chain_entry_t entry;
        if (cbus_audit_get (self, cbus_layout_hash_key (CBUS_LAYOUT_ENTRY, block), &record,
                            &record_size) == 1
        &&  cbus_layout_entry_decode (record, record_size, &entry) == 0)
            damage = cbus_audit_damage_at (self, &entry.height, NULL, position);
        cbus_store_free (record);
    }
    if (damage) {
        cbus_audit_damage_name (damage, txid);
        return;
    }
    cbus_audit_say (self, "transaction index ('T'): txid %s is not in the active chain, but its "
                    "entry places it in block %s at position %" PRIu32, cbus_hash_hex (txid, hex),
                    cbus_hash_hex (block, other), position);
}

//  A 'U' or 'K' entry: it must name a transaction the walk confirmed, at
//  its height and position, and (by the fingerprint sums) a name that
//  transaction implies.
static void
s_visit_history (cbus_audit_t *self, const uint8_t *key, size_t key_size, const uint8_t *value,
                 size_t size)
{
    char prefix = (char) key [0];
    const char *what = prefix == CBUS_LAYOUT_USER? "user history ('U')": "key history ('K')";
    char hex [CBUS_HASH_HEX];
    char shown [CBUS_AUDIT_SHOWN_BYTES];
    if (prefix == CBUS_LAYOUT_USER)
        self->users_found++;
    else
        self->keys_found++;
    const char *name;
    size_t name_size;
    uint64_t height;
    uint32_t position;
    if (cbus_layout_history_decode (key, key_size, &name, &name_size, &height, &position)
    ||  size != CBUS_HASH_BYTES) {
        cbus_audit_say (self, "%s: a malformed entry (key %zu bytes, value %zu)", what, key_size, size);
        return;
    }
    cbus_audit_tx_t *tx = (cbus_audit_tx_t *) zhashx_lookup (self->txs, value);
    if (tx && tx->height == height && tx->position == position) {
        uint64_t fingerprint = cbus_audit_fingerprint (name, name_size);
        if (prefix == CBUS_LAYOUT_USER)
            tx->users -= fingerprint;
        else
            tx->keys -= fingerprint;
        return;
    }
    if (tx) {
        cbus_audit_say (self, "%s: the entry for %s at block %" PRIu64 " position %" PRIu32 " names "
                        "txid %s, which is in block %" PRIu64 " at position %" PRIu32, what,
                        cbus_audit_shown (name, name_size, shown), height, position,
                        cbus_hash_hex (value, hex), tx->height, tx->position);
        return;
    }
    cbus_audit_damage_t *damage = cbus_audit_damage_at (self, &height, NULL, position);
    if (damage) {
        cbus_audit_damage_name (damage, value);
        return;
    }
    cbus_audit_say (self, "%s: the entry for %s at block %" PRIu64 " position %" PRIu32 " names "
                    "txid %s, which is not in the active chain", what,
                    cbus_audit_shown (name, name_size, shown), height, position,
                    cbus_hash_hex (value, hex));
}

//  After the history scans: a transaction whose fingerprints do not
//  cancel has an entry for a name it does not imply.
static void
s_check_sums (cbus_audit_t *self)
{
    for (cbus_audit_tx_t *tx = (cbus_audit_tx_t *) zhashx_first (self->txs); tx;
         tx = (cbus_audit_tx_t *) zhashx_next (self->txs)) {
        if (tx->users == 0 && tx->keys == 0)
            continue;
        uint8_t hash [CBUS_HASH_BYTES];
        char *value = NULL;
        size_t size = 0;
        bool known = cbus_audit_get (self, cbus_layout_height_key (tx->height), &value, &size) == 1
                  && size == CBUS_HASH_BYTES;
        if (known)
            memcpy (hash, value, CBUS_HASH_BYTES);
        cbus_store_free (value);
        if (tx->users)
            cbus_audit_report (self, tx->height, known? hash: NULL, tx->position, tx->txid,
                               "a user history entry ('U') names it for a user it does not name");
        if (tx->keys)
            cbus_audit_report (self, tx->height, known? hash: NULL, tx->position, tx->txid,
                               "a key history entry ('K') names it for a key it does not give");
    }
}

//  What the indexes say a damaged transaction was: a line that explains
//  a problem already counted, so not one more.
static void
s_report_damage (cbus_audit_t *self)
{
    char hex [CBUS_HASH_HEX], block [CBUS_HASH_HEX];
    for (cbus_audit_damage_t *damage = (cbus_audit_damage_t *) zlistx_first (self->damage);
         damage; damage = (cbus_audit_damage_t *) zlistx_next (self->damage))
        if (damage->named && self->problems <= CBUS_AUDIT_SHOW_MAX)
            printf ("block %" PRIu64 " (%s): transaction %" PRIu32 ": the indexes still name "
                    "txid %s here: the transaction confirmed here was changed\n", damage->height,
                    cbus_hash_hex (damage->block, block), damage->position,
                    cbus_hash_hex (damage->original, hex));
}

void
cbus_audit_scan (cbus_audit_t *self)
{
    if (!self->interrupted)
        s_scan (self, CBUS_LAYOUT_TX, "transaction index ('T')", s_visit_tx);
    if (!self->interrupted)
        s_scan (self, CBUS_LAYOUT_USER, "user history ('U')", s_visit_history);
    if (!self->interrupted)
        s_scan (self, CBUS_LAYOUT_KEY, "key history ('K')", s_visit_history);
    if (self->interrupted)
        return;
    s_check_sums (self);
    s_report_damage (self);
}
