/*  =========================================================================
    cbus_pool - the pending transactions: durable in their own LevelDB,
    indexed by txid in memory, kept in arrival order for block templates

    Each insert batch is one synced LevelDB write (group commit): callers
    gather concurrent submissions and acknowledge them after
    cbus_pool_commit returns. Removals (mined transactions) are written
    unsynced: losing one in a crash only means it is found again at start
    and dropped then, once the chain says it is confirmed.

    LevelDB keys: 'P' + txid -> sequence u64 BE, received ms u64 BE, bytes;
    'T' -> the hash (32 bytes) and height (u64 BE) of the chain tip the pool
    was last brought up to date with (written unsynced, like removals).
    =========================================================================
*/
#ifndef CBUS_POOL_H_INCLUDED
#define CBUS_POOL_H_INCLUDED

#include "cbus.h"

typedef struct _cbus_pool_t cbus_pool_t;

//  Open the pool's store at path and load what it holds, in arrival
//  order. Entries that no longer decode are dropped and logged. NULL with
//  a reason.
cbus_pool_t *
    cbus_pool_new (const char *path, char *reason);
//  The same; on failure *fault (when not NULL) says what kind of store
//  fault it was (CBUS_STORE_OK when it was no store's: out of memory).
cbus_pool_t *
    cbus_pool_open (const char *path, cbus_store_fault_t *fault, char *reason);
void
    cbus_pool_destroy (cbus_pool_t **self_p);

//  Number of pending transactions and their total bytes.
size_t
    cbus_pool_size (cbus_pool_t *self);
size_t
    cbus_pool_bytes (cbus_pool_t *self);
//  True if pending, staged or being written.
bool
    cbus_pool_has (cbus_pool_t *self, const uint8_t txid [CBUS_HASH_BYTES]);
//  Bytes of a pending transaction (borrowed) or NULL.
const uint8_t *
    cbus_pool_get (cbus_pool_t *self, const uint8_t txid [CBUS_HASH_BYTES],
                   size_t *size_p, uint64_t *received_ms_p);

//  Stage a checked transaction for the next commit; the pool copies what
//  it needs. Returns 1 when staged, 0 (and stages nothing) if the txid is
//  already pending, staged or being written, -1 if memory is short.
int
    cbus_pool_stage (cbus_pool_t *self, cbus_tx_t *tx);
//  Write everything staged in one synced batch and make it pending.
//  Returns 0, or -1 (nothing staged is kept) on a storage error.
int
    cbus_pool_commit (cbus_pool_t *self)
    __attribute__ ((warn_unused_result));

//  The same commit in three steps, so that the fsync can run on another
//  thread while the owner checks the next submissions (the fsync is most
//  of a small batch's time). begin takes everything staged (NULL if
//  nothing is); run writes it, synced, from any thread; end, back on the
//  owner's thread, makes it pending (rc 0) or drops it. Transactions
//  being written count as known to cbus_pool_has and cbus_pool_stage.
//  When memory is short begin drops what is staged, as a failed write
//  would, and returns NULL too: whoever staged something tells.
typedef struct _cbus_pool_write_t cbus_pool_write_t;

cbus_pool_write_t *
    cbus_pool_write_begin (cbus_pool_t *self);
int
    cbus_pool_write_run (cbus_pool_write_t *write)
    __attribute__ ((warn_unused_result));
void
    cbus_pool_write_end (cbus_pool_t *self, cbus_pool_write_t **write_p, int rc);

//  Remove a transaction (mined or confirmed). Returns true if it was
//  pending. Removals are flushed by cbus_pool_flush.
bool
    cbus_pool_remove (cbus_pool_t *self, const uint8_t txid [CBUS_HASH_BYTES]);
int
    cbus_pool_flush (cbus_pool_t *self);

//  The tip of the chain the pool reflects: set it (written with the next
//  flush), and read it back after a restart. Returns 0, or -1 if none
//  was stored.
void
    cbus_pool_set_tip (cbus_pool_t *self, const uint8_t hash [CBUS_HASH_BYTES], uint64_t height);
int
    cbus_pool_tip (cbus_pool_t *self, uint8_t hash [CBUS_HASH_BYTES], uint64_t *height);

//  True while the pool's store takes writes; else false, with why in
//  reason (CBUS_REASON_MAX) and *full true when the disk is full.
bool
    cbus_pool_writable (cbus_pool_t *self, bool *full, char *reason);
//  Free space the store keeps (cbus_store_set_reserve).
void
    cbus_pool_set_reserve (cbus_pool_t *self, uint64_t bytes);
//  Probe a paused store (cbus_store_probe): only while no write runs.
//  0 when writable, -1 while paused.
int
    cbus_pool_probe (cbus_pool_t *self);
//  The pool's store (borrowed), for STORE.BACKUP's snapshot.
cbus_store_t *
    cbus_pool_store (cbus_pool_t *self);

//  Walk pending transactions in arrival order: first/next return the
//  txid (borrowed) or NULL at the end. Do not remove while walking.
const uint8_t *
    cbus_pool_first (cbus_pool_t *self);
const uint8_t *
    cbus_pool_next (cbus_pool_t *self);

//  Page through pending transactions in arrival order: up to max txids
//  (borrowed, valid until the pool changes) of those that arrived after
//  the cursor, into txids. A cursor is one past an arrival sequence (0:
//  before the oldest); it survives restarts. *next is the cursor of the last one
//  listed (after, when none is), *more whether others follow it. O(n) in
//  pending transactions to find the place, then O(max).
size_t
    cbus_pool_list (cbus_pool_t *self, uint64_t after, size_t max, const uint8_t **txids,
                    uint64_t *next, bool *more);

void
    cbus_pool_test (bool verbose);

#endif
