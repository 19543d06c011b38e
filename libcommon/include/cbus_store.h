/*  =========================================================================
    cbus_store - a LevelDB database, wrapped once

    Turns LevelDB's char **errptr into -1 plus a log line. Keys use a
    one-byte prefix per record kind (the chain's are in cbus_layout.h).
    Writes go through batches; a synced batch is durable when the call
    returns. LevelDB's C API names a failure only in English text; this
    class is the one place that reads that text, and turns it into a
    cbus_store_fault_t for callers to decide by.
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
    CBUS_STORE_OTHER                    //  Anything else LevelDB reports
} cbus_store_fault_t;

//  Open (creating if missing) the database at path. NULL on failure,
//  with the reason logged and copied into reason.
cbus_store_t *
    cbus_store_new (const char *path, size_t cache_mb, char *reason);
//  The same; on failure *fault (when not NULL) says what kind it was,
//  CBUS_STORE_OK on success.
cbus_store_t *
    cbus_store_open (const char *path, size_t cache_mb, cbus_store_fault_t *fault,
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
int
    cbus_store_write (cbus_store_t *self, cbus_store_batch_t *batch, bool sync)
    __attribute__ ((warn_unused_result));

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

void
    cbus_store_test (bool verbose);

#endif
