/*  =========================================================================
    cbus_store - a LevelDB database, wrapped once

    Turns LevelDB's char **errptr into -1 plus a log line. Keys use a
    one-byte prefix per record kind (the chain's are in cbus_layout.h).
    Writes go through batches; a synced batch is durable when the call
    returns. LevelDB's C API names a failure only in English text; this
    class is the one place that reads that text, and turns it into a
    cbus_store_fault_t for callers to decide by.

    A full disk is a pause, not a failure. Before each write the store
    compares the batch with the free space of its folder (statvfs) and
    refuses at once, without trying, a write that would leave less than
    CBUS_STORE_RESERVE_BYTES. After a write that failed all the same, the
    store never writes to that database again: LevelDB would append after
    a torn log record (which a later open with paranoid checks refuses)
    and keeps a background error that fails every later write. In both
    cases the store is paused: every write is refused at once (fault
    no_space when the disk is full) until cbus_store_probe finds room
    again, for the write it refused and, after a failed write, for the
    log a reopen replays; then it reopens the database if a write failed,
    which recovers the torn tail (LevelDB drops an incomplete last
    record) and clears the background error.

    Opening recovers what a stop left: with paranoid checks first; if
    LevelDB finds a log record it cannot read, once more without them
    (LevelDB then drops the records it cannot read, logged here as an
    error), then again with them so that compactions verify checksums.
    Reads always verify checksums. cbus_store_open_audit never drops
    anything: an audit sees the damage.
    =========================================================================
*/
#ifndef CBUS_STORE_H_INCLUDED
#define CBUS_STORE_H_INCLUDED

typedef struct _cbus_store_t cbus_store_t;
typedef struct _cbus_store_batch_t cbus_store_batch_t;
typedef struct _cbus_store_iter_t cbus_store_iter_t;

//  What kind of failure a store call met.
typedef enum {
    CBUS_STORE_OK,                      //  None
    CBUS_STORE_LOCKED,                  //  Another process holds the store
    CBUS_STORE_CORRUPT,                 //  Bytes on disk do not read back
                                        //  (checksum, malformed record)
    CBUS_STORE_IO,                      //  The file system failed (disk
                                        //  full, permissions, missing file)
    CBUS_STORE_OTHER,                   //  Anything else LevelDB reports
    CBUS_STORE_NO_SPACE                 //  The disk is full (ENOSPC, EDQUOT):
                                        //  writes paused until space returns
} cbus_store_fault_t;

//  Free space a write must leave on the store's file system unless set
//  otherwise (the services set node/disk_reserve_mb): room for LevelDB's
//  own files (a table, the manifest) beside the log.
#define CBUS_STORE_RESERVE_BYTES (4 * 1024 * 1024)

//  Open (creating if missing) the database at path. NULL on failure,
//  with the reason logged and copied into reason.
cbus_store_t *
    cbus_store_new (const char *path, size_t cache_mb, char *reason);
//  The same; on failure *fault (when not NULL) says what kind it was,
//  CBUS_STORE_OK on success.
cbus_store_t *
    cbus_store_open (const char *path, size_t cache_mb, cbus_store_fault_t *fault,
                     char *reason);
//  The same, for an audit: paranoid checks and no recovery; a log
//  record LevelDB cannot read makes the open fail (fault corrupt).
cbus_store_t *
    cbus_store_open_audit (const char *path, size_t cache_mb, cbus_store_fault_t *fault,
                           char *reason);
void
    cbus_store_destroy (cbus_store_t **self_p);

//  Look a key up. Returns 0 and a value the caller frees with
//  cbus_store_free (NULL when the key is absent), or -1 on a read error.
int
    cbus_store_get (cbus_store_t *self, const void *key, size_t key_size,
                    char **value_p, size_t *value_size_p)
    __attribute__ ((warn_unused_result));
void
    cbus_store_free (void *value);
//  LevelDB's text for the last call on this store that failed ("" if
//  none has), to name the cause of a -1 ("Corruption: block checksum
//  mismatch ..."). Borrowed until the next failure.
const char *
    cbus_store_error (cbus_store_t *self);
//  The kind of that failure (CBUS_STORE_OK if none has failed).
cbus_store_fault_t
    cbus_store_fault (cbus_store_t *self);
//  The kind of failure LevelDB's text names: the one place that reads
//  its wording ("IO error: lock ...", "Corruption: ..."). NULL or ""
//  gives CBUS_STORE_OK.
cbus_store_fault_t
    cbus_store_fault_of (const char *error);
//  A word for a fault, for log lines ("locked", "corrupt", ...).
const char *
    cbus_store_fault_name (cbus_store_fault_t fault);

cbus_store_batch_t *
    cbus_store_batch_new (void);
void
    cbus_store_batch_destroy (cbus_store_batch_t **self_p);
void
    cbus_store_batch_put (cbus_store_batch_t *self, const void *key, size_t key_size,
                          const void *value, size_t value_size);
void
    cbus_store_batch_delete (cbus_store_batch_t *self, const void *key, size_t key_size);
void
    cbus_store_batch_clear (cbus_store_batch_t *self);
//  Apply atomically; with sync the call returns once it is on disk.
//  Refused at once (-1, nothing tried) while the store is paused or when
//  the batch would leave less than CBUS_STORE_RESERVE_BYTES free; a
//  failed write pauses the store. Writes from several threads are run
//  one at a time.
int
    cbus_store_write (cbus_store_t *self, cbus_store_batch_t *batch, bool sync)
    __attribute__ ((warn_unused_result));
//  Bytes the batch's records take (keys and values).
size_t
    cbus_store_batch_bytes (cbus_store_batch_t *self);

//  True while writes are taken; false while paused, with the kind of
//  fault that paused it in *fault (no_space for a full disk) and why in
//  reason (CBUS_REASON_MAX: "disk full: /data/chain (1.2 MiB free, 20.0
//  MiB needed)"); either may be NULL. Any thread.
bool
    cbus_store_writable (cbus_store_t *self, cbus_store_fault_t *fault, char *reason);
//  See whether a paused store can take writes again, and pause one whose
//  disk has less than CBUS_STORE_RESERVE_BYTES free. Resumes when the
//  file system has room for the write that was refused plus the reserve
//  (plus the log a reopen replays, after a failed write), reopening the
//  database after a failed write. Call it from the owner, every second
//  or so, with no other call on the store running (a reopen replaces
//  the database). 0 when writable, -1 while paused.
int
    cbus_store_probe (cbus_store_t *self);
//  Writes refused without being tried since the store was opened.
uint64_t
    cbus_store_refused (cbus_store_t *self);
//  Set the free space a write must leave (CBUS_STORE_RESERVE_BYTES
//  unless set).
void
    cbus_store_set_reserve (cbus_store_t *self, uint64_t bytes);

//  Iterate in key order. The iterator sees a consistent snapshot.
cbus_store_iter_t *
    cbus_store_iter_new (cbus_store_t *self);
void
    cbus_store_iter_destroy (cbus_store_iter_t **self_p);
void
    cbus_store_iter_seek (cbus_store_iter_t *self, const void *key, size_t key_size);
void
    cbus_store_iter_seek_last (cbus_store_iter_t *self);
bool
    cbus_store_iter_valid (cbus_store_iter_t *self);
void
    cbus_store_iter_next (cbus_store_iter_t *self);
void
    cbus_store_iter_prev (cbus_store_iter_t *self);
const char *
    cbus_store_iter_key (cbus_store_iter_t *self, size_t *size_p);
const char *
    cbus_store_iter_value (cbus_store_iter_t *self, size_t *size_p);
//  An iterator also stops being valid when a read fails (a corrupt
//  table): 0 if it met no error, -1 with LevelDB's text in reason.
int
    cbus_store_iter_status (cbus_store_iter_t *self, char *reason)
    __attribute__ ((warn_unused_result));

//  The free space a write must leave (cbus_store_set_reserve).
uint64_t
    cbus_store_reserve (cbus_store_t *self);
//  A snapshot read on another thread (cbus_store_copy) holds the store:
//  while held, the reopen that a failed write calls for waits (a probe
//  keeps the store paused), since it would close the database under the
//  iterator. Every hold is released once; any thread.
void
    cbus_store_hold (cbus_store_t *self);
void
    cbus_store_release (cbus_store_t *self);

void
    cbus_store_test (bool verbose);

#endif
