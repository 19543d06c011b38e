/*  =========================================================================
    cbus_store - a LevelDB database, wrapped once
    =========================================================================
*/
#include "cbus.h"
#include <leveldb/c.h>

struct _cbus_store_t {
    leveldb_t *db;                      //  The open database
    leveldb_options_t *options;         //  Kept for the database's life
    leveldb_cache_t *cache;             //  Block cache
    leveldb_filterpolicy_t *filter;     //  Bloom filter: cheap misses
    leveldb_readoptions_t *read;        //  Checksummed reads
    leveldb_writeoptions_t *sync;       //  fsync before returning
    leveldb_writeoptions_t *nosync;     //  OS buffers only
    char *path;                         //  For log lines
    char error [CBUS_REASON_MAX];       //  LevelDB's text of the last failure
    cbus_store_fault_t fault;           //  And its kind
};

struct _cbus_store_batch_t {
    leveldb_writebatch_t *batch;
};

struct _cbus_store_iter_t {
    leveldb_iterator_t *iter;
    leveldb_readoptions_t *read;        //  Holds the snapshot
    const leveldb_snapshot_t *snapshot;
    leveldb_t *db;
};

//  Turn LevelDB's error string into a log line; returns -1 if there was one.
static int
s_check (cbus_store_t *self, char **error, const char *what)
{
    if (!*error)
        return 0;
    self->fault = cbus_store_fault_of (*error);
    zsys_error ("leveldb %s failed path=%s fault=%s error=%s", what, self->path,
                cbus_store_fault_name (self->fault), *error);
    snprintf (self->error, sizeof (self->error), "%s", *error);
    leveldb_free (*error);
    *error = NULL;
    return -1;
}

cbus_store_fault_t
cbus_store_fault_of (const char *error)
{
    //  leveldb/status.cc writes "<kind>: <message>"; util/env_posix.cc
    //  names a held lock "lock <path>/LOCK: <why>" (older releases give
    //  strerror as the why, newer "already held by process").
    if (!error || !*error)
        return CBUS_STORE_OK;
    if (strncmp (error, "Corruption: ", 12) == 0)
        return CBUS_STORE_CORRUPT;
    if (strncmp (error, "IO error: ", 10) == 0)
        return strncmp (error + 10, "lock ", 5) == 0 ? CBUS_STORE_LOCKED: CBUS_STORE_IO;
    return CBUS_STORE_OTHER;
}

const char *
cbus_store_fault_name (cbus_store_fault_t fault)
{
    switch (fault) {
        case CBUS_STORE_OK:      return "ok";
        case CBUS_STORE_LOCKED:  return "locked";
        case CBUS_STORE_CORRUPT: return "corrupt";
        case CBUS_STORE_IO:      return "io";
        default:                 return "other";
    }
}

cbus_store_t *
cbus_store_new (const char *path, size_t cache_mb, char *reason)
{
    return cbus_store_open (path, cache_mb, NULL, reason);
}

cbus_store_t *
cbus_store_open (const char *path, size_t cache_mb, cbus_store_fault_t *fault, char *reason)
{
    cbus_store_t *self = (cbus_store_t *) zmalloc (sizeof (cbus_store_t));
    self->path = strdup (path);
    self->options = leveldb_options_create ();
    self->cache = leveldb_cache_create_lru (cache_mb * 1024 * 1024);
    self->filter = leveldb_filterpolicy_create_bloom (10);
    leveldb_options_set_create_if_missing (self->options, 1);
    leveldb_options_set_paranoid_checks (self->options, 1);
    leveldb_options_set_cache (self->options, self->cache);
    leveldb_options_set_filter_policy (self->options, self->filter);
    leveldb_options_set_write_buffer_size (self->options, 16 * 1024 * 1024);
    leveldb_options_set_max_file_size (self->options, 32 * 1024 * 1024);
    self->read = leveldb_readoptions_create ();
    leveldb_readoptions_set_verify_checksums (self->read, 1);
    self->sync = leveldb_writeoptions_create ();
    leveldb_writeoptions_set_sync (self->sync, 1);
    self->nosync = leveldb_writeoptions_create ();
    char *error = NULL;
    self->db = leveldb_open (self->options, path, &error);
    if (fault)
        *fault = cbus_store_fault_of (error);
    if (error) {
        snprintf (reason, CBUS_REASON_MAX, "cannot open database %s: %s", path, error);
        s_check (self, &error, "open");
        cbus_store_destroy (&self);
    }
    return self;
}

void
cbus_store_destroy (cbus_store_t **self_p)
{
    assert (self_p);
    cbus_store_t *self = *self_p;
    if (self) {
        if (self->db)
            leveldb_close (self->db);
        leveldb_options_destroy (self->options);
        leveldb_cache_destroy (self->cache);
        leveldb_filterpolicy_destroy (self->filter);
        leveldb_readoptions_destroy (self->read);
        leveldb_writeoptions_destroy (self->sync);
        leveldb_writeoptions_destroy (self->nosync);
        free (self->path);
        free (self);
        *self_p = NULL;
    }
}

int
cbus_store_get (cbus_store_t *self, const void *key, size_t key_size,
                char **value_p, size_t *value_size_p)
{
    char *error = NULL;
    size_t size = 0;
    *value_p = leveldb_get (self->db, self->read, (const char *) key, key_size, &size, &error);
    if (value_size_p)
        *value_size_p = size;
    return s_check (self, &error, "get");
}

const char *
cbus_store_error (cbus_store_t *self)
{
    return self->error;
}

cbus_store_fault_t
cbus_store_fault (cbus_store_t *self)
{
    return self->fault;
}

void
cbus_store_free (void *value)
{
    if (value)
        leveldb_free (value);
}

cbus_store_batch_t *
cbus_store_batch_new (void)
{
    cbus_store_batch_t *self = (cbus_store_batch_t *) zmalloc (sizeof (cbus_store_batch_t));
    self->batch = leveldb_writebatch_create ();
    return self;
}

void
cbus_store_batch_destroy (cbus_store_batch_t **self_p)
{
    assert (self_p);
    cbus_store_batch_t *self = *self_p;
    if (self) {
        leveldb_writebatch_destroy (self->batch);
        free (self);
        *self_p = NULL;
    }
}

void
cbus_store_batch_put (cbus_store_batch_t *self, const void *key, size_t key_size,
                      const void *value, size_t value_size)
{
    leveldb_writebatch_put (self->batch, (const char *) key, key_size,
                            (const char *) value, value_size);
}

void
cbus_store_batch_delete (cbus_store_batch_t *self, const void *key, size_t key_size)
{
    leveldb_writebatch_delete (self->batch, (const char *) key, key_size);
}

void
cbus_store_batch_clear (cbus_store_batch_t *self)
{
    leveldb_writebatch_clear (self->batch);
}

int
cbus_store_write (cbus_store_t *self, cbus_store_batch_t *batch, bool sync)
{
    char *error = NULL;
    leveldb_write (self->db, sync ? self->sync : self->nosync, batch->batch, &error);
    return s_check (self, &error, "write");
}

cbus_store_iter_t *
cbus_store_iter_new (cbus_store_t *self)
{
    cbus_store_iter_t *iter = (cbus_store_iter_t *) zmalloc (sizeof (cbus_store_iter_t));
    iter->db = self->db;
    iter->read = leveldb_readoptions_create ();
    leveldb_readoptions_set_verify_checksums (iter->read, 1);
    leveldb_readoptions_set_fill_cache (iter->read, 0);
    iter->snapshot = leveldb_create_snapshot (self->db);
    leveldb_readoptions_set_snapshot (iter->read, iter->snapshot);
    iter->iter = leveldb_create_iterator (self->db, iter->read);
    return iter;
}

void
cbus_store_iter_destroy (cbus_store_iter_t **self_p)
{
    assert (self_p);
    cbus_store_iter_t *self = *self_p;
    if (self) {
        leveldb_iter_destroy (self->iter);
        leveldb_release_snapshot (self->db, self->snapshot);
        leveldb_readoptions_destroy (self->read);
        free (self);
        *self_p = NULL;
    }
}

void
cbus_store_iter_seek (cbus_store_iter_t *self, const void *key, size_t key_size)
{
    leveldb_iter_seek (self->iter, (const char *) key, key_size);
}

void
cbus_store_iter_seek_last (cbus_store_iter_t *self)
{
    leveldb_iter_seek_to_last (self->iter);
}

bool
cbus_store_iter_valid (cbus_store_iter_t *self)
{
    return leveldb_iter_valid (self->iter) != 0;
}

void
cbus_store_iter_next (cbus_store_iter_t *self)
{
    leveldb_iter_next (self->iter);
}

void
cbus_store_iter_prev (cbus_store_iter_t *self)
{
    leveldb_iter_prev (self->iter);
}

const char *
cbus_store_iter_key (cbus_store_iter_t *self, size_t *size_p)
{
    return leveldb_iter_key (self->iter, size_p);
}

const char *
cbus_store_iter_value (cbus_store_iter_t *self, size_t *size_p)
{
    return leveldb_iter_value (self->iter, size_p);
}

int
cbus_store_iter_status (cbus_store_iter_t *self, char *reason)
{
    char *error = NULL;
    leveldb_iter_get_error (self->iter, &error);
    if (!error)
        return 0;
    snprintf (reason, CBUS_REASON_MAX, "%s", error);
    leveldb_free (error);
    return -1;
}

void
cbus_store_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_store: ");
    char path [] = "/tmp/cbus_store_test_XXXXXX";
    assert (mkdtemp (path));
    char reason [CBUS_REASON_MAX];
    cbus_store_t *store = cbus_store_new (path, 8, reason);
    assert (store);
    //  A second opener is refused while the first holds the lock.
    cbus_store_t *second = cbus_store_new (path, 8, reason);
    assert (second == NULL && strstr (reason, "cannot open"));
    cbus_store_fault_t fault = CBUS_STORE_OK;
    second = cbus_store_open (path, 8, &fault, reason);
    assert (second == NULL && fault == CBUS_STORE_LOCKED);
    assert (streq (cbus_store_fault_name (fault), "locked"));

    cbus_store_batch_t *batch = cbus_store_batch_new ();
    cbus_store_batch_put (batch, "a1", 2, "one", 3);
    cbus_store_batch_put (batch, "a2", 2, "two", 3);
    cbus_store_batch_put (batch, "b1", 2, "three", 5);
    assert (cbus_store_write (store, batch, true) == 0);
    cbus_store_batch_clear (batch);

    char *value;
    size_t size;
    assert (cbus_store_get (store, "a2", 2, &value, &size) == 0);
    assert (value && size == 3 && memcmp (value, "two", 3) == 0);
    cbus_store_free (value);
    assert (cbus_store_get (store, "zz", 2, &value, &size) == 0 && value == NULL);

    //  The iterator's snapshot does not see later writes.
    cbus_store_iter_t *iter = cbus_store_iter_new (store);
    cbus_store_batch_delete (batch, "a1", 2);
    assert (cbus_store_write (store, batch, false) == 0);
    int count = 0;
    for (cbus_store_iter_seek (iter, "a", 1); cbus_store_iter_valid (iter); cbus_store_iter_next (iter)) {
        const char *key = cbus_store_iter_key (iter, &size);
        if (key [0] != 'a')
            break;
        count++;
    }
    assert (count == 2);
    //  Running past the end is no error; nothing has failed yet.
    assert (cbus_store_iter_status (iter, reason) == 0);
    assert (streq (cbus_store_error (store), ""));
    assert (cbus_store_fault (store) == CBUS_STORE_OK);
    cbus_store_iter_destroy (&iter);
    assert (cbus_store_get (store, "a1", 2, &value, &size) == 0 && value == NULL);
    cbus_store_batch_destroy (&batch);
    cbus_store_destroy (&store);
    cbus_store_destroy (&store);

    //  Reopened, the data is still there.
    store = cbus_store_new (path, 8, reason);
    assert (store);
    assert (cbus_store_get (store, "b1", 2, &value, &size) == 0 && value && size == 5);
    cbus_store_free (value);
    cbus_store_destroy (&store);

    //  A damaged CURRENT file (no newline) reads as corrupt, and so does
    //  one naming a manifest that is not there.
    char *current = zsys_sprintf ("%s/CURRENT", path);
    FILE *file = fopen (current, "w");
    assert (file && fputs ("MANIFEST-000009", file) >= 0 && fclose (file) == 0);
    assert (cbus_store_open (path, 8, &fault, reason) == NULL && fault == CBUS_STORE_CORRUPT);
    file = fopen (current, "w");
    assert (file && fputs ("MANIFEST-999999\n", file) >= 0 && fclose (file) == 0);
    assert (cbus_store_open (path, 8, &fault, reason) == NULL && fault == CBUS_STORE_CORRUPT);
    zstr_free (&current);
    assert (cbus_store_fault_of (NULL) == CBUS_STORE_OK);
    assert (cbus_store_fault_of ("IO error: lock /x/LOCK: already held by process")
            == CBUS_STORE_LOCKED);
    assert (cbus_store_fault_of ("IO error: /x/000005.ldb: No space left on device")
            == CBUS_STORE_IO);
    assert (cbus_store_fault_of ("Invalid argument: /x: does not exist") == CBUS_STORE_OTHER);
    char *command = zsys_sprintf ("rm -rf %s", path);
    assert (system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("OK\n");
}
