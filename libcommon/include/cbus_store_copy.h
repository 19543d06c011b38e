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

//  The path the copy writes.
const char *
    cbus_store_copy_path (cbus_store_copy_t *self);
//  Once the result was read: the store's fault when reading the store
//  failed (CBUS_STORE_CORRUPT for a table LevelDB cannot read back), so
//  the owner can mark its store damaged; CBUS_STORE_OK otherwise (also
//  when only the copy's own writes failed).
cbus_store_fault_t
    cbus_store_copy_fault (cbus_store_copy_t *self);

//  True if the copy writes at path (size bytes, not NUL-terminated).
bool
    cbus_store_copy_matches (cbus_store_copy_t *self, const char *path, size_t size);

//  True if a request for a copy (STORE.BACKUP, STORE.BACKUP.CANCEL) may
//  be taken: it came from this machine, over ipc (or inproc), or over tcp
//  from a loopback address. A copy is written where the request says, as
//  the service's user: a key allowlisted for the tcp bus (a remote miner)
//  must not make the node write files. Else false with a reason. Decided
//  by ZeroMQ's Peer-Address of the message (an IP address over tcp).
bool
    cbus_store_copy_local (cbus_request_t *request, char *reason);
//  The same by address: NULL, "" or a non-IP address (ipc) is local, an
//  IPv4 address in 127/8, ::1 or ::ffff:127.x.y.z too.
bool
    cbus_store_copy_address_local (const char *address);

void
    cbus_store_copy_test (bool verbose);

#endif
