/*  =========================================================================
    cbus_audit - the state and the reports of one `chainbus verify`

    Private to verify, in three parts: this class (what the audit holds,
    its problem lines and what it remembers of damage), the walk of the
    active chain (cbus_audit_walk.c) and the scans of the indexes for
    entries the walk did not expect (cbus_audit_scan.c). cbus_verify.c
    opens the store and runs them. Every record is read raw from the
    store, through cbus_layout's decoders, and held to the rules of
    cbus_block_check and cbus_chain_check_context: never through
    cbus_chain, the code being audited.

    The walk follows the height index ('H') in key order, which is height
    order, from genesis to the tip: each block is read, decoded with every
    transaction's signature checked, held to the chainstore's rules and
    compared with its index entries. Then the transaction and history
    indexes are scanned. What the walk confirmed is kept in one small
    record per transaction (cbus_audit_tx_t): the only memory that grows
    with the chain.
    =========================================================================
*/
#ifndef CBUS_AUDIT_H_INCLUDED
#define CBUS_AUDIT_H_INCLUDED

#include "cbus.h"

//  Problem lines printed; the rest are counted.
#define CBUS_AUDIT_SHOW_MAX     100
//  Damaged transactions remembered (to explain the index entries that
//  still name what they held); beyond it those entries show as strays.
#define CBUS_AUDIT_DAMAGE_MAX   1000
//  Bytes of a user name or key field shown in a line.
#define CBUS_AUDIT_NAME_SHOWN   64
//  Room for a shown name: quotes, escapes, "..." and the terminator.
#define CBUS_AUDIT_SHOWN_BYTES  (4 * CBUS_AUDIT_NAME_SHOWN + 8)
//  A damage record's position when the whole block is at fault.
#define CBUS_AUDIT_WHOLE_BLOCK  UINT32_MAX

//  What the walk confirmed about one transaction of the active chain.
typedef struct {
    uint8_t txid [CBUS_HASH_BYTES];     //  Key in the table
    uint64_t height;                    //  Height of its block
    uint32_t position;                  //  Its position there
    uint64_t users;                     //  Fingerprints of the 'U' names found
                                        //  at the walk, less those scanned
    uint64_t keys;                      //  The same for 'K'
} cbus_audit_tx_t;

//  A transaction, a block or a run of heights the walk could not
//  confirm, already reported. Index entries that place another txid
//  there are not strays: they name what was there (for a transaction,
//  the txid that was confirmed).
typedef struct {
    uint64_t height;                    //  Block height
    uint64_t last;                      //  Last height covered (a gap)
    bool hashed;                        //  block is known
    uint8_t block [CBUS_HASH_BYTES];    //  Block hash
    uint32_t position;                  //  Or CBUS_AUDIT_WHOLE_BLOCK
    bool named;                         //  original is known
    uint8_t original [CBUS_HASH_BYTES]; //  The txid the indexes give
} cbus_audit_damage_t;

//  One audit. Its parts read and write these fields directly.
typedef struct {
    cbus_store_t *store;                //  The chain store, opened directly
    const char *network;                //  Network id (borrowed)
    cbus_pow_rule_t rule;               //  The network's target rule
    uint64_t max_future_ms;             //  Clock skew the chainstore allows
    zhashx_t *txs;                      //  txid -> cbus_audit_tx_t, confirmed so far
    zlistx_t *damage;                   //  cbus_audit_damage_t, in walk order
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
    cbus_header_t prev_header;          //  Its header (the rule's parent)
    bool have_anchor;                   //  Block 1 was walked
    cbus_header_t anchor;               //  Its header (the rule's anchor)
    uint64_t times [CBUS_CHAIN_MEDIAN_SPAN];    //  Times of the last blocks (a ring)
    size_t time_count;                  //  Entries used in times
    size_t time_next;                   //  Next slot to write
} cbus_audit_t;

//  An audit of the store (borrowed; the caller closes it) for a network.
cbus_audit_t *
    cbus_audit_new (cbus_store_t *store, const char *network, const cbus_pow_rule_t *rule,
                    uint64_t max_future_ms);
void
    cbus_audit_destroy (cbus_audit_t **self_p);

//  Each read of a record: 1 found (value to free with cbus_store_free),
//  0 absent, -1 unreadable (cbus_store_error says why).
int
    cbus_audit_get (cbus_audit_t *self, cbus_layout_key_t key, char **value_p, size_t *size_p);

//  A problem of the store as a whole or of an index entry: one line.
void
    cbus_audit_say (cbus_audit_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  A problem of a block ("block 12 (hash): ...") or of one of its
//  transactions ("block 12 (hash): transaction 3 (txid ...): ..."). hash
//  and txid may be NULL when unknown; position < 0 for the block itself.
void
    cbus_audit_report (cbus_audit_t *self, uint64_t height, const uint8_t *hash,
                       int64_t position, const uint8_t *txid, const char *format, ...)
    __attribute__ ((format (printf, 6, 7)));

//  Remember a damaged transaction or block (up to CBUS_AUDIT_DAMAGE_MAX).
void
    cbus_audit_damage (cbus_audit_t *self, uint64_t height, const uint8_t hash [CBUS_HASH_BYTES],
                       uint32_t position);
//  Remember heights the walk has no block for (a gap in the height
//  index, or heights above the tip).
void
    cbus_audit_damage_heights (cbus_audit_t *self, uint64_t height, uint64_t last);
//  The damage record an index entry falls on, by height or by block
//  hash (one of them given), or NULL. O(damaged), which is small.
cbus_audit_damage_t *
    cbus_audit_damage_at (cbus_audit_t *self, const uint64_t *height, const uint8_t *hash,
                          uint32_t position);
//  An index entry that names txid at a damaged place: it tells what was
//  confirmed there.
void
    cbus_audit_damage_name (cbus_audit_damage_t *damage, const uint8_t txid [CBUS_HASH_BYTES]);

//  A 64-bit fingerprint of a history name. Sums of fingerprints compare
//  the names a transaction implies with those the index holds for it
//  without keeping either list.
uint64_t
    cbus_audit_fingerprint (const char *name, size_t size);
//  A name from the store as a line may show it: quoted, control bytes
//  and (in text that is not UTF-8) bytes above 0x7f escaped, cut at
//  CBUS_AUDIT_NAME_SHOWN bytes. Returns out.
char *
    cbus_audit_shown (const char *data, size_t size, char out [CBUS_AUDIT_SHOWN_BYTES]);
//  A library reason as part of a line: "Block hash does not meet ..."
//  reads "hash does not meet ...". Returns out.
char *
    cbus_audit_tidy (const char *reason, char out [CBUS_REASON_MAX]);

//  The tip record, then the active chain by the height index, genesis
//  first (cbus_audit_walk.c).
void
    cbus_audit_walk (cbus_audit_t *self);

//  True if the store holds any key with this prefix (cbus_audit_scan.c).
bool
    cbus_audit_any (cbus_audit_t *self, char prefix);
//  After the walk: the transaction and history indexes scanned for
//  entries the walk did not expect, then what the indexes say the
//  damaged transactions were (cbus_audit_scan.c).
void
    cbus_audit_scan (cbus_audit_t *self);

#endif
