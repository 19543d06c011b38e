/*  =========================================================================
    cbus_store_copy - a point-in-time copy of a store, made on a thread
    =========================================================================
*/
#include "cbus.h"
#include <leveldb/c.h>
#include <sodium.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <arpa/inet.h>

//  Bytes of records in one batch of the copy.
#define S_BATCH_BYTES   (1024 * 1024)
//  Entries copied between two looks at the pipe for $TERM.
#define S_LOOK_EVERY    1024
//  Block cache of the new database while it is written.
#define S_CACHE_MB      8

struct _cbus_store_copy_t {
    zactor_t *actor;                    //  Runs the copy
    cbus_store_t *store;                //  Held while the copy runs
    cbus_store_iter_t *iter;            //  The snapshot (the actor's until it ends)
    char *path;                         //  The new database
    cbus_store_copy_sum_t sum;          //  What it copied: the thread writes
                                        //  it before it sends its result
    bool actor_started;                 //  The thread ran (owns the path)
    bool ended;                         //  Its result was read
    zloop_t *loop;                      //  Watching it, or NULL
    cbus_store_copy_fn *fn;             //  What runs when it ends
    void *arg;                          //  ... and its argument
    cbus_store_fault_t fault;           //  Of a failed read of the store:
                                        //  the thread writes it before its result
};

//  Remove a copy that failed or was stopped: LevelDB's files, then the
//  folder.
static void
s_remove (const char *path)
{
    leveldb_options_t *options = leveldb_options_create ();
    char *error = NULL;
    leveldb_destroy_db (options, path, &error);
    if (error) {
        zsys_warning ("store copy path=%s could not be removed: %s", path, error);
        leveldb_free (error);
    }
    leveldb_options_destroy (options);
    rmdir (path);
}

//  Copy the snapshot; 0, or -1 with the code and reason. *stopped when
//  $TERM came meanwhile.
//  Add one record to a sum.
static void
s_sum_add (crypto_hash_sha256_state *state, cbus_store_copy_sum_t *sum, const char *key,
           size_t key_size, const char *value, size_t value_size)
{
    uint8_t size [4];
    size [0] = (uint8_t) (key_size >> 24); size [1] = (uint8_t) (key_size >> 16);
    size [2] = (uint8_t) (key_size >> 8);  size [3] = (uint8_t) key_size;
    crypto_hash_sha256_update (state, size, 4);
    crypto_hash_sha256_update (state, (const uint8_t *) key, key_size);
    size [0] = (uint8_t) (value_size >> 24); size [1] = (uint8_t) (value_size >> 16);
    size [2] = (uint8_t) (value_size >> 8);  size [3] = (uint8_t) value_size;
    crypto_hash_sha256_update (state, size, 4);
    crypto_hash_sha256_update (state, (const uint8_t *) value, value_size);
    sum->entries++;
    sum->bytes += key_size + value_size;
}

static int
s_copy (cbus_store_copy_t *self, zsock_t *pipe, cbus_code_t *code, char *reason, bool *stopped)
{
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init (&state);
    cbus_store_copy_sum_t *sum = &self->sum;
    cbus_store_fault_t fault = CBUS_STORE_OK;
    cbus_store_t *copy = cbus_store_open (self->path, S_CACHE_MB, &fault, reason);
    cbus_store_batch_t *batch = cbus_store_batch_new ();
    int rc = -1;
    *code = CBUS_CODE_STORAGE;
    if (!copy || !batch)
        goto cleanup;
    cbus_store_set_reserve (copy, cbus_store_reserve (self->store));
    cbus_store_iter_seek (self->iter, "", 0);
    while (cbus_store_iter_valid (self->iter)) {
        size_t key_size, value_size;
        const char *key = cbus_store_iter_key (self->iter, &key_size);
        const char *value = cbus_store_iter_value (self->iter, &value_size);
        cbus_store_batch_put (batch, key, key_size, value, value_size);
        s_sum_add (&state, sum, key, key_size, value, value_size);
        if (cbus_store_batch_bytes (batch) >= S_BATCH_BYTES) {
            if (cbus_store_write (copy, batch, false))
                goto write_failed;
            cbus_store_batch_clear (batch);
        }
        if (sum->entries % S_LOOK_EVERY == 0 && (zsock_events (pipe) & ZMQ_POLLIN)) {
            char *command = zstr_recv (pipe);
            *stopped = command && streq (command, "$TERM");
            zstr_free (&command);
            if (*stopped) {
                cbus_fail (reason, "stopped");
                goto cleanup;
            }
        }
        cbus_store_iter_next (self->iter);
    }
    if (cbus_store_iter_status (self->iter, reason)) {
        //  A damaged table in the store: its kind, for the owner
        self->fault = cbus_store_fault_of (reason);
        goto cleanup;
    }
    //  The last batch, synced: the copy is durable when this returns.
    if (cbus_store_write (copy, batch, true))
        goto write_failed;
    crypto_hash_sha256_final (&state, sum->digest);
    rc = 0;
    goto cleanup;
write_failed:
    {
        cbus_store_fault_t why;
        bool writable = cbus_store_writable (copy, &why, reason);
        if (writable || why != CBUS_STORE_NO_SPACE)
            cbus_fail (reason, "writing %s failed: %s", self->path, cbus_store_error (copy));
        else
            *code = CBUS_CODE_NO_SPACE;
    }
cleanup:
    cbus_store_batch_destroy (&batch);
    cbus_store_destroy (&copy);
    //  The names of its files are durable once the folder is synced.
    int dir = rc == 0 ? open (self->path, O_RDONLY | O_DIRECTORY) : -1;
    if (rc == 0 && (dir < 0 || fsync (dir)))
        rc = cbus_fail (reason, "cannot sync %s: %s", self->path, strerror (errno));
    if (dir >= 0)
        close (dir);
    return rc;
}

//  The copy's thread: signal the pipe, copy, send "OK" (the sum in
//  self) or "FAILED code reason", then wait for $TERM.
static void
s_actor (zsock_t *pipe, void *args)
{
    cbus_store_copy_t *self = (cbus_store_copy_t *) args;
    zsock_signal (pipe, 0);
    cbus_thread_name ("store-copy");
    //  Linux gives each thread its own nice value: only the copy yields.
    if (setpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid), 10))
        zsys_debug ("store copy: setpriority failed: %s", strerror (errno));
    int64_t started = cbus_mono_ms ();
    cbus_code_t code = CBUS_CODE_OK;
    char reason [CBUS_REASON_MAX] = "";
    bool stopped = false;
    int rc = s_copy (self, pipe, &code, reason, &stopped);
    cbus_store_iter_destroy (&self->iter);
    cbus_store_release (self->store);
    if (rc) {
        s_remove (self->path);
        zsys_error ("store copy path=%s failed: %s", self->path, reason);
    }
    else
        zsys_info ("store copy path=%s entries=%" PRIu64 " bytes=%" PRIu64 " ms=%" PRId64,
                   self->path, self->sum.entries, self->sum.bytes, cbus_mono_ms () - started);
    if (stopped)
        return;
    zsock_send (pipe, "sis", rc ? "FAILED" : "OK", (int) code, reason);
    while (true) {
        char *command = zstr_recv (pipe);
        bool term = !command || streq (command, "$TERM");
        zstr_free (&command);
        if (term)
            break;
    }
}

cbus_store_copy_t *
cbus_store_copy_new (cbus_store_t *store, const char *path, cbus_code_t *code, char *reason)
{
    *code = CBUS_CODE_INVALID;
    if (mkdir (path, 0700)) {
        if (errno == EEXIST)
            cbus_fail (reason, "%s exists already: give a path that does not", path);
        else
            cbus_fail (reason, "cannot make %s: %s", path, strerror (errno));
        return NULL;
    }
    cbus_store_copy_t *self = (cbus_store_copy_t *) zmalloc (sizeof (cbus_store_copy_t));
    if (self) {
        self->store = store;
        self->path = strdup (path);
        self->iter = cbus_store_iter_new (store);
    }
    if (!self || !self->path || !self->iter) {
        *code = CBUS_CODE_INTERNAL;
        cbus_fail (reason, "out of memory");
        cbus_store_copy_destroy (&self);
        rmdir (path);
        return NULL;
    }
    cbus_store_hold (store);
    self->actor = zactor_new (s_actor, self);
    self->actor_started = self->actor != NULL;
    if (!self->actor) {
        cbus_store_release (store);
        *code = CBUS_CODE_INTERNAL;
        cbus_fail (reason, "cannot start a thread");
        cbus_store_copy_destroy (&self);
        rmdir (path);
        return NULL;
    }
    return self;
}

void
cbus_store_copy_destroy (cbus_store_copy_t **self_p)
{
    assert (self_p);
    cbus_store_copy_t *self = *self_p;
    if (self) {
        if (self->loop)
            zloop_reader_end (self->loop, zactor_sock (self->actor));
        zactor_destroy (&self->actor);
        //  A copy whose result nobody read was abandoned: remove it
        //  (the thread removed one it stopped or that failed).
        if (self->actor_started && !self->ended)
            s_remove (self->path);
        cbus_store_iter_destroy (&self->iter);
        free (self->path);
        free (self);
        *self_p = NULL;
    }
}

zsock_t *
cbus_store_copy_sock (cbus_store_copy_t *self)
{
    return zactor_sock (self->actor);
}

static int
s_on_ended (zloop_t *loop, zsock_t *reader, void *arg)
{
    cbus_store_copy_t *self = (cbus_store_copy_t *) arg;
    zloop_reader_end (loop, reader);
    self->loop = NULL;
    self->fn (self, self->arg);
    return 0;
}

int
cbus_store_copy_watch (cbus_store_copy_t *self, zloop_t *loop, cbus_store_copy_fn *fn,
                       void *arg)
{
    self->fn = fn;
    self->arg = arg;
    if (zloop_reader (loop, zactor_sock (self->actor), s_on_ended, self))
        return -1;
    self->loop = loop;
    return 0;
}

int
cbus_store_copy_result (cbus_store_copy_t *self, cbus_store_copy_sum_t *sum,
                        cbus_code_t *code, char *reason)
{
    assert (!self->ended);
    self->ended = true;
    char *status = NULL, *text = NULL;
    int value = CBUS_CODE_INTERNAL;
    if (zsock_recv (self->actor, "sis", &status, &value, &text)
    ||  !status || !text) {
        *code = CBUS_CODE_INTERNAL;
        cbus_fail (reason, "the copy's thread ended without a result");
        zstr_free (&status);
        zstr_free (&text);
        return -1;
    }
    int rc = streq (status, "OK") ? 0 : -1;
    *code = rc ? (cbus_code_t) value : CBUS_CODE_OK;
    if (rc == 0)
        *sum = self->sum;
    if (rc)
        cbus_fail (reason, "%s", text);
    zstr_free (&status);
    zstr_free (&text);
    return rc;
}

const char *
cbus_store_copy_path (cbus_store_copy_t *self)
{
    return self->path;
}

cbus_store_fault_t
cbus_store_copy_fault (cbus_store_copy_t *self)
{
    return self->ended ? self->fault : CBUS_STORE_OK;
}

bool
cbus_store_copy_matches (cbus_store_copy_t *self, const char *path, size_t size)
{
    return strlen (self->path) == size && memcmp (self->path, path, size) == 0;
}

bool
cbus_store_copy_address_local (const char *address)
{
    struct in_addr ipv4;
    struct in6_addr ipv6;
    if (!address || !*address)
        return true;
    if (inet_pton (AF_INET, address, &ipv4) == 1)
        return (ntohl (ipv4.s_addr) >> 24) == 127;
    if (inet_pton (AF_INET6, address, &ipv6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK (&ipv6))
            return true;
        return IN6_IS_ADDR_V4MAPPED (&ipv6) && ipv6.s6_addr [12] == 127;
    }
    return true;                        //  An ipc path, not an IP address
}

bool
cbus_store_copy_local (cbus_request_t *request, char *reason)
{
    const char *address = request->body ? zframe_meta (request->body, "Peer-Address") : NULL;
    if (cbus_store_copy_address_local (address))
        return true;
    snprintf (reason, CBUS_REASON_MAX, "%s is taken only from this machine (ipc, or tcp from "
              "loopback), not from %.64s", request->command, address);
    return false;
}

int
cbus_store_copy_sum (cbus_store_t *store, cbus_store_copy_sum_t *sum, char *reason)
{
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init (&state);
    memset (sum, 0, sizeof (*sum));
    cbus_store_iter_t *iter = cbus_store_iter_new (store);
    if (!iter)
        return cbus_fail (reason, "out of memory");
    for (cbus_store_iter_seek (iter, "", 0); cbus_store_iter_valid (iter);
         cbus_store_iter_next (iter)) {
        size_t key_size, value_size;
        const char *key = cbus_store_iter_key (iter, &key_size);
        const char *value = cbus_store_iter_value (iter, &value_size);
        s_sum_add (&state, sum, key, key_size, value, value_size);
    }
    int rc = cbus_store_iter_status (iter, reason);
    cbus_store_iter_destroy (&iter);
    crypto_hash_sha256_final (&state, sum->digest);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self-test

//  Entries of the store at path, opened again.
static uint64_t
s_test_count (const char *path, const char *absent)
{
    char reason [CBUS_REASON_MAX];
    cbus_store_t *store = cbus_store_new (path, 8, reason);
    assert (store);
    uint64_t count = 0;
    cbus_store_iter_t *iter = cbus_store_iter_new (store);
    for (cbus_store_iter_seek (iter, "", 0); cbus_store_iter_valid (iter);
         cbus_store_iter_next (iter)) {
        size_t size;
        const char *key = cbus_store_iter_key (iter, &size);
        assert (!absent || size != strlen (absent) || memcmp (key, absent, size) != 0);
        count++;
    }
    assert (cbus_store_iter_status (iter, reason) == 0);
    cbus_store_iter_destroy (&iter);
    cbus_store_destroy (&store);
    return count;
}

void
cbus_store_copy_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_store_copy: ");
    char folder [] = "/tmp/cbus_store_copy_test_XXXXXX";
    assert (mkdtemp (folder));
    char *path = zsys_sprintf ("%s/store", folder);
    char *copy_path = zsys_sprintf ("%s/copy", folder);
    char reason [CBUS_REASON_MAX];
    cbus_code_t code;
    cbus_store_t *store = cbus_store_new (path, 8, reason);
    assert (store);
    cbus_store_batch_t *batch = cbus_store_batch_new ();
    char key [32], value [200];
    memset (value, 'v', sizeof (value));
    //  Enough for several batches of the copy and a look at the pipe.
    for (int index = 0; index < 20000; index++) {
        snprintf (key, sizeof (key), "k%06d", index);
        cbus_store_batch_put (batch, key, strlen (key), value, sizeof (value));
    }
    cbus_store_batch_put (batch, "gone", 4, "x", 1);
    assert (cbus_store_write (store, batch, false) == 0);
    cbus_store_batch_clear (batch);

    //  The copy holds what was written before it started, nothing after.
    cbus_store_copy_t *copy = cbus_store_copy_new (store, copy_path, &code, reason);
    assert (copy);
    cbus_store_batch_put (batch, "later", 5, "x", 1);
    cbus_store_batch_delete (batch, "gone", 4);
    assert (cbus_store_write (store, batch, true) == 0);
    zpoller_t *poller = zpoller_new (cbus_store_copy_sock (copy), NULL);
    assert (zpoller_wait (poller, 30000) == cbus_store_copy_sock (copy));
    zpoller_destroy (&poller);
    cbus_store_copy_sum_t sum, check;
    assert (streq (cbus_store_copy_path (copy), copy_path));
    assert (cbus_store_copy_matches (copy, copy_path, strlen (copy_path)));
    assert (!cbus_store_copy_matches (copy, copy_path, strlen (copy_path) - 1));
    assert (cbus_store_copy_result (copy, &sum, &code, reason) == 0);
    assert (cbus_store_copy_fault (copy) == CBUS_STORE_OK);
    assert (sum.entries == 20001 && code == CBUS_CODE_OK);
    assert (sum.bytes == 20000 * (7 + sizeof (value)) + 5);
    cbus_store_copy_destroy (&copy);
    cbus_store_copy_destroy (&copy);
    assert (s_test_count (copy_path, "later") == 20001);
    //  The copy's sum is its content's, after it was opened again; the
    //  store's differs now.
    cbus_store_t *reopened = cbus_store_new (copy_path, 8, reason);
    assert (reopened && cbus_store_copy_sum (reopened, &check, reason) == 0);
    assert (check.entries == sum.entries && check.bytes == sum.bytes);
    assert (memcmp (check.digest, sum.digest, CBUS_HASH_BYTES) == 0);
    cbus_store_destroy (&reopened);
    assert (cbus_store_copy_sum (store, &check, reason) == 0 && check.entries == 20001);
    assert (memcmp (check.digest, sum.digest, CBUS_HASH_BYTES) != 0);

    //  A path that exists, or whose parent does not, is refused.
    assert (cbus_store_copy_new (store, copy_path, &code, reason) == NULL);
    assert (code == CBUS_CODE_INVALID && strstr (reason, "exists already"));
    char *orphan = zsys_sprintf ("%s/none/copy", folder);
    assert (cbus_store_copy_new (store, orphan, &code, reason) == NULL);
    assert (code == CBUS_CODE_INVALID && strstr (reason, "cannot make"));
    zstr_free (&orphan);

    //  A copy stopped at once leaves nothing behind.
    char *stopped = zsys_sprintf ("%s/stopped", folder);
    copy = cbus_store_copy_new (store, stopped, &code, reason);
    assert (copy);
    cbus_store_copy_destroy (&copy);
    struct stat info;
    assert (stat (stopped, &info) == -1 && errno == ENOENT);
    zstr_free (&stopped);

    //  A copy that would leave less than the reserve free fails with
    //  no_space and removes itself.
    char *full = zsys_sprintf ("%s/full", folder);
    cbus_store_set_reserve (store, (uint64_t) 1 << 60);
    copy = cbus_store_copy_new (store, full, &code, reason);
    assert (copy);
    assert (cbus_store_copy_result (copy, &sum, &code, reason) == -1);
    assert (code == CBUS_CODE_NO_SPACE && strstr (reason, "disk full"));
    cbus_store_copy_destroy (&copy);
    assert (stat (full, &info) == -1 && errno == ENOENT);
    zstr_free (&full);

    //  Who may ask for a copy: this machine only.
    assert (cbus_store_copy_address_local (NULL));
    assert (cbus_store_copy_address_local (""));
    assert (cbus_store_copy_address_local ("127.0.0.1"));
    assert (cbus_store_copy_address_local ("127.3.2.1"));
    assert (cbus_store_copy_address_local ("::1"));
    assert (cbus_store_copy_address_local ("::ffff:127.0.0.1"));
    assert (cbus_store_copy_address_local ("/var/lib/chainbus/run/mempool.ipc"));
    assert (!cbus_store_copy_address_local ("10.0.0.7"));
    assert (!cbus_store_copy_address_local ("192.168.1.2"));
    assert (!cbus_store_copy_address_local ("2001:db8::1"));
    assert (!cbus_store_copy_address_local ("::ffff:10.0.0.7"));

    cbus_store_batch_destroy (&batch);
    cbus_store_destroy (&store);
    char *command = zsys_sprintf ("rm -rf %s", folder);
    assert (system (command) == 0);
    zstr_free (&command);
    zstr_free (&path);
    zstr_free (&copy_path);
    if (verbose)
        printf ("OK\n");
}
