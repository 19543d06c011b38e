/*  =========================================================================
    cbus_chain - the block tree on disk and the rules that admit a block

    The storage and validation of the chain, with no sockets: the
    chainstore service runs it, and offline tools (import, audit) use it
    on a stopped node's folder. Every block ever accepted is stored
    with its index entry (height, cumulative work, header) and its
    summary record (header, transaction count, size); the active
    chain is the stored branch with the most work. A block that gives
    another branch more work than the active one triggers a
    reorganisation: the old branch's blocks are disconnected down to the
    fork, the new branch's connected up to the new tip, all in the same
    synced batch as the block itself. After a crash the store is before or
    after a submission, never between.
    =========================================================================
*/
#ifndef CBUS_CHAIN_H_INCLUDED
#define CBUS_CHAIN_H_INCLUDED

typedef struct _cbus_chain_t cbus_chain_t;

//  What the index says about one stored block.
typedef struct {
    uint64_t height;                    //  Distance from genesis
    uint8_t work [CBUS_U256_BYTES];     //  Chain work up to and with it
    cbus_header_t header;               //  Its header
} cbus_chain_entry_t;

//  Outcome of cbus_chain_submit.
typedef enum {
    CBUS_CHAIN_CONNECTED,               //  Active now (see left/joined)
    CBUS_CHAIN_DUPLICATE,               //  Already stored
    CBUS_CHAIN_SIDE,                    //  Stored on a branch with less work
    CBUS_CHAIN_INVALID,                 //  Refused; see reason
    CBUS_CHAIN_FAILED                   //  Storage failed; see reason
} cbus_chain_result_t;

//  Most hashes in a block locator.
#define CBUS_LOCATOR_MAX 64
//  Blocks whose times give the median time past (Bitcoin's 11).
#define CBUS_CHAIN_MEDIAN_SPAN 11
//  Side-branch anchors remembered in one generation (two are kept, about
//  150 bytes each: under 2.5 MB).
#define CBUS_CHAIN_ANCHOR_GENERATION 8192

//  Open (creating with the network's genesis) the chain at path, under
//  the network's target rule (its bits and block interval). Refuses a
//  store made for another network, target or block interval. NULL with a
//  reason.
cbus_chain_t *
    cbus_chain_new (const char *path, const char *network, const cbus_pow_rule_t *rule,
                    size_t cache_mb, uint64_t max_future_ms, char *reason);
//  The same; on failure *fault (when not NULL) says why the store did not
//  open (CBUS_STORE_LOCKED: a running node holds it), or CBUS_STORE_OK
//  when the store opened and the chain in it was refused (another
//  network, no tip).
cbus_chain_t *
    cbus_chain_open (const char *path, const char *network, const cbus_pow_rule_t *rule,
                     size_t cache_mb, uint64_t max_future_ms, cbus_store_fault_t *fault,
                     char *reason);
void
    cbus_chain_destroy (cbus_chain_t **self_p);

//  The active tip (borrowed hash) and its entry.
const uint8_t *
    cbus_chain_tip (cbus_chain_t *self, cbus_chain_entry_t *entry);
const uint8_t *
    cbus_chain_genesis (cbus_chain_t *self);
//  The network's starting (with interval 0, fixed) bits, and its rule.
uint32_t
    cbus_chain_bits (cbus_chain_t *self);
const cbus_pow_rule_t *
    cbus_chain_rule (cbus_chain_t *self);
//  The bits a block on the active tip must carry (cbus_pow_next_bits with
//  the tip and its branch's anchor); 0 if the anchor cannot be read.
uint32_t
    cbus_chain_next_bits (cbus_chain_t *self);
//  The bits a block on this stored block must carry; 0 if it (or its
//  branch's anchor) is not stored.
uint32_t
    cbus_chain_bits_on (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES]);
//  How many index entries and height records the chain has read since it
//  opened (the cost of the rules, for self-tests and bench/).
uint64_t
    cbus_chain_index_reads (cbus_chain_t *self);
//  Side-branch anchors remembered in memory: entries in one generation
//  (two are kept; default CBUS_CHAIN_ANCHOR_GENERATION). For self-tests.
void
    cbus_chain_set_anchor_generation (cbus_chain_t *self, size_t entries);

//  The rules that hold a block's header to its parent and its chain,
//  written once: cbus_chain_submit (the chainstore, `chainbus import`)
//  and `chainbus verify` all apply them here. In order: the target bits
//  are the ones the rule gives (cbus_pow_next_bits of the parent's header
//  and anchor, block 1 of the parent's branch; with interval 0 the fixed
//  bits, checked even without a parent; bad_bits), the parent is known
//  (parent NULL: orphan), the height is the parent's plus one
//  (bad_height), the time is after median_time_past, the median time of
//  the parent and its ancestors (0 when unknown; bad_time), and at most
//  max_future_ms past now_ms (bad_time). Returns 0 with entry_out (when
//  not NULL) set to the block's index entry: its height, header and
//  cumulative work (the parent's plus its own); or -1 with code (when
//  not NULL) and reason.
int
    cbus_chain_check_context (const cbus_header_t *header, const cbus_chain_entry_t *parent,
                              const cbus_header_t *anchor, uint64_t median_time_past,
                              const cbus_pow_rule_t *rule, uint64_t now_ms,
                              uint64_t max_future_ms, cbus_chain_entry_t *entry_out,
                              cbus_code_t *code, char *reason)
    __attribute__ ((warn_unused_result));

//  Validate and store a block given as bytes; hash receives its hash
//  whenever it could be computed. On CONNECTED, the blocks that left the
//  active chain and those that joined it are listed by
//  cbus_chain_left/joined (one joined block and none left when the block
//  simply extends the tip). On INVALID and FAILED, code (when not NULL)
//  says why: malformed, orphan, bad_pow, bad_merkle_root, bad_height,
//  bad_bits, bad_time, bad_version, too_large, duplicate (a transaction
//  twice), confirmed (one the chain already holds), storage.
cbus_chain_result_t
    cbus_chain_submit (cbus_chain_t *self, const void *data, size_t size,
                       uint8_t hash [CBUS_HASH_BYTES], cbus_code_t *code, char *reason);
//  Blocks the last CONNECTED submission disconnected, old tip first, and
//  connected, lowest first. Borrowed until the next submission.
size_t
    cbus_chain_left_count (cbus_chain_t *self);
cbus_block_t *
    cbus_chain_left (cbus_chain_t *self, size_t index);
size_t
    cbus_chain_joined_count (cbus_chain_t *self);
cbus_block_t *
    cbus_chain_joined (cbus_chain_t *self, size_t index);

//  The chain's store (borrowed): whether it takes writes, and its probe
//  (cbus_store.h).
cbus_store_t *
    cbus_chain_store (cbus_chain_t *self);

//  Block bytes by hash; 0 and bytes (caller frees with cbus_store_free)
//  or NULL if absent; -1 on a storage error.
int
    cbus_chain_block_by_hash (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES],
                              char **bytes_p, size_t *size_p);
//  Hash of the active block at height into hash; 0 found, -1 not.
int
    cbus_chain_hash_at (cbus_chain_t *self, uint64_t height, uint8_t hash [CBUS_HASH_BYTES]);
//  Index entry of a stored block; 0 found, -1 not.
int
    cbus_chain_entry (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES],
                      cbus_chain_entry_t *entry);
//  True if the block is on the active chain.
bool
    cbus_chain_is_active (cbus_chain_t *self, const uint8_t hash [CBUS_HASH_BYTES]);
//  Where a confirmed transaction is: 0 and block hash + position, -1 if
//  it is not in the active chain.
int
    cbus_chain_tx_where (cbus_chain_t *self, const uint8_t txid [CBUS_HASH_BYTES],
                         uint8_t block_hash [CBUS_HASH_BYTES], uint32_t *position);

//  History: every confirmed transaction is indexed under each user it
//  names ('U') and under its sender and receiver key fields ('K'), by
//  height and position, so that a page of one user's or key's history
//  costs the same whatever the chain's length (a LevelDB range scan).
typedef struct {
    uint8_t txid [CBUS_HASH_BYTES];     //  The transaction
    uint64_t height;                    //  Its block's height
    uint32_t index;                     //  Its position in the block
} cbus_chain_history_t;

#define CBUS_HISTORY_USER CBUS_LAYOUT_USER
#define CBUS_HISTORY_KEY  CBUS_LAYOUT_KEY

//  Up to max entries of name's history (kind CBUS_HISTORY_USER or _KEY),
//  newest first, strictly before (before_height, before_index); pass
//  UINT64_MAX as before_height to start at the newest. Returns the count.
size_t
    cbus_chain_history (cbus_chain_t *self, char kind, const char *name,
                        uint64_t before_height, uint32_t before_index,
                        cbus_chain_history_t *items, size_t max);

//  A block locator of the active chain: the tip, the nine blocks below
//  it, then steps doubling back to genesis (always last). Returns the
//  number of hashes written (at most CBUS_LOCATOR_MAX).
size_t
    cbus_chain_locator (cbus_chain_t *self, uint8_t hashes [][CBUS_HASH_BYTES]);
//  The fork point for a peer's locator: the highest of its hashes on our
//  active chain (genesis if none). Returns its height.
uint64_t
    cbus_chain_fork_point (cbus_chain_t *self, const uint8_t hashes [][CBUS_HASH_BYTES],
                           size_t count);

void
    cbus_chain_test (bool verbose);

#endif
