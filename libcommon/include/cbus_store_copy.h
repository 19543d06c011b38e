/*  =========================================================================
    cbus_store_copy - a point-in-time copy of a store, made on a thread

    The hot backup's copy (`chainbus backup`, docs/operations.md "Backup
    and restore"). cbus_store_copy_new takes a LevelDB snapshot on the
    caller's thread, the store's owner (O(1): every write that returned
    before is in it, none that starts after), then a thread of its own
    iterates the snapshot and writes a new database at a path that must
    not exist yet, in unsynced batches of about 1 MiB and a synced last
    one. The owner's loop never waits and its writers never wait for the
    copy: a LevelDB snapshot is only a sequence number, and an iterator
    reads beside writes. The new database has the store's options and is
    compact (one version of each key, no deleted records).

    The copy's writes keep the store's free-space reserve on their own
    disk (cbus_store_write refuses what would go below it), so a backup
    onto the node's own disk cannot fill it. The thread (`store-copy` in
    ps -L) runs at a lower CPU priority (nice +10) than the writers. A copy that fails or is
    stopped removes what it wrote. While a copy runs its store is held
    (cbus_store_hold).
    =========================================================================
*/
#ifndef CBUS_STORE_COPY_H_INCLUDED
#define CBUS_STORE_COPY_H_INCLUDED

typedef struct _cbus_store_copy_t cbus_store_copy_t;

//  Snapshot store now and start copying it into a new database at path
//  (its parent must exist; path must not). store must outlive the copy.
//  NULL with a reason (CBUS_REASON_MAX) if it cannot start; *code then
//  says why: CBUS_CODE_INVALID (path exists, its parent does not, or
//  cannot be written), CBUS_CODE_INTERNAL (out of memory).
cbus_store_copy_t *
    cbus_store_copy_new (cbus_store_t *store, const char *path, cbus_code_t *code,
                         char *reason);
//  Stop a copy still running and free it; nulls the pointer, safe twice.
//  A copy whose result was not read is removed (stopped, or abandoned).
void
    cbus_store_copy_destroy (cbus_store_copy_t **self_p);
//  Readable once the copy has ended: a zloop reader on it then calls
//  cbus_store_copy_result.
zsock_t *
    cbus_store_copy_sock (cbus_store_copy_t *self);
//  What a copy holds: its records, their bytes (keys and values), and
//  the digest of its content: SHA-256 over every record in key order,
//  each as key size (4 bytes, big-endian), key, value size, value. The
//  digest names the content, not LevelDB's files, which any open of the
//  database rewrites (a new log and manifest), `chainbus verify` too.
typedef struct {
    uint64_t entries;                   //  Records
    uint64_t bytes;                     //  Bytes of their keys and values
    uint8_t digest [CBUS_HASH_BYTES];   //  SHA-256 of the content
} cbus_store_copy_sum_t;

//  Wait for the end of the copy (at once once the socket is readable).
//  0 with what the copy holds, or -1 with the code (CBUS_CODE_NO_SPACE,
//  CBUS_CODE_STORAGE) and reason; call once.
int
    cbus_store_copy_result (cbus_store_copy_t *self, cbus_store_copy_sum_t *sum,
                            cbus_code_t *code, char *reason)
    __attribute__ ((warn_unused_result));
//  The same sum of a whole store, read from a snapshot of it now (to
//  check a restored copy). 0, or -1 with a reason (a read failed).
int
    cbus_store_copy_sum (cbus_store_t *store, cbus_store_copy_sum_t *sum, char *reason)
    __attribute__ ((warn_unused_result));

//  What runs on the owner's loop once the copy has ended: it reads
//  cbus_store_copy_result and may destroy the copy.
typedef void (cbus_store_copy_fn) (cbus_store_copy_t *copy, void *arg);
//  Call fn (copy, arg) from loop once the copy has ended (a reader on
//  its socket, removed before fn runs). 0, or -1 if the reader cannot be
//  registered.
int
    cbus_store_copy_watch (cbus_store_copy_t *self, zloop_t *loop, cbus_store_copy_fn *fn,
                           void *arg);

void
    cbus_store_copy_test (bool verbose);

#endif
