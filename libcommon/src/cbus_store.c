/*  =========================================================================
    cbus_store - a LevelDB database, wrapped once
    =========================================================================
*/
#include "cbus.h"
#include <leveldb/c.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

struct _cbus_store_t {
    leveldb_t *db;                      //  The open database; NULL after a
                                        //  reopen that failed
    leveldb_options_t *options;         //  Kept for the database's life
    leveldb_cache_t *cache;             //  Block cache
    leveldb_filterpolicy_t *filter;     //  Bloom filter: cheap misses
    leveldb_readoptions_t *read;        //  Checksummed reads
    leveldb_writeoptions_t *sync;       //  fsync before returning
    leveldb_writeoptions_t *nosync;     //  OS buffers only
    char *path;                         //  For log lines
    char error [CBUS_REASON_MAX];       //  LevelDB's text of the last failure
    cbus_store_fault_t fault;           //  And its kind
    //  Pausing (see the header); the lock also runs writes one at a time
    pthread_mutex_t lock;               //  Guards what follows, and writes
    uint64_t reserve;                   //  Free bytes a write must leave
    bool paused;                        //  Writes refused at once
    bool reopen;                        //  A write failed: reopen to resume
    uint64_t wanted;                    //  Bytes of the largest write refused
    cbus_store_fault_t pause_fault;     //  What refused writes report
    char pause_reason [CBUS_REASON_MAX];    //  Why, for users and /status
    int64_t paused_since;               //  Monotonic ms
    uint64_t refused;                   //  Writes refused without a try
    uint64_t refused_paused;            //  ... during this pause
    unsigned held;                      //  Copies reading a snapshot on
                                        //  another thread (cbus_store_hold)
};

struct _cbus_store_batch_t {
    leveldb_writebatch_t *batch;
    size_t bytes;                       //  Keys and values put or deleted
};

struct _cbus_store_iter_t {
    leveldb_iterator_t *iter;           //  NULL when the store was closed
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
    //  strerror as the why, newer "already held by process"), and any
    //  other failed call "<file>: <strerror (errno)>".
    if (!error || !*error)
        return CBUS_STORE_OK;
    if (strncmp (error, "Corruption: ", 12) == 0)
        return CBUS_STORE_CORRUPT;
    if (strncmp (error, "IO error: ", 10) == 0) {
        if (strncmp (error + 10, "lock ", 5) == 0)
            return CBUS_STORE_LOCKED;
        if (strstr (error, strerror (ENOSPC)) || strstr (error, strerror (EDQUOT)))
            return CBUS_STORE_NO_SPACE;
        return CBUS_STORE_IO;
    }
    return CBUS_STORE_OTHER;
}

const char *
cbus_store_fault_name (cbus_store_fault_t fault)
{
    switch (fault) {
        case CBUS_STORE_OK:       return "ok";
        case CBUS_STORE_LOCKED:   return "locked";
        case CBUS_STORE_CORRUPT:  return "corrupt";
        case CBUS_STORE_IO:       return "io";
        case CBUS_STORE_NO_SPACE: return "no_space";
        default:                  return "other";
    }
}

//  Free bytes of the file system at path, as an unprivileged process may
//  use them: f_bfree would count blocks nobody can have (ext4 keeps some
//  for its own metadata), and a node run as root then only pauses
//  earlier. -1 if statvfs fails.
static int
s_free_bytes (const char *path, uint64_t *free_p)
{
    struct statvfs fs;
    if (statvfs (path, &fs))
        return -1;
    *free_p = (uint64_t) fs.f_bavail * fs.f_frsize;
    return 0;
}

//  Bytes of the database's logs: what a reopen replays into a table.
static uint64_t
s_log_bytes (const char *path)
{
    uint64_t total = 0;
    DIR *dir = opendir (path);
    struct dirent *entry;
    while (dir && (entry = readdir (dir))) {
        size_t length = strlen (entry->d_name);
        struct stat info;
        char *name = length > 4 && streq (entry->d_name + length - 4, ".log")
                   ? zsys_sprintf ("%s/%s", path, entry->d_name) : NULL;
        if (name && stat (name, &info) == 0)
            total += (uint64_t) info.st_size;
        zstr_free (&name);
    }
    if (dir)
        closedir (dir);
    return total;
}

static double
s_mib (uint64_t bytes)
{
    return (double) bytes / (1024.0 * 1024.0);
}

//  Pause writes (lock held). wanted: bytes of the write refused;
//  reopen: a write failed, so the database is reopened before any other.
static void
s_pause (cbus_store_t *self, cbus_store_fault_t fault, uint64_t wanted, bool reopen,
         const char *reason)
{
    bool was = self->paused;
    self->paused = true;
    self->reopen = self->reopen || reopen;
    if (wanted > self->wanted)
        self->wanted = wanted;
    self->pause_fault = fault;
    snprintf (self->pause_reason, sizeof (self->pause_reason), "%s", reason);
    if (!was) {
        self->paused_since = cbus_mono_ms ();
        self->refused_paused = 0;
        zsys_error ("store paused path=%s fault=%s reopen=%s reason=\"%s\": writes are refused "
                    "until it is probed writable", self->path, cbus_store_fault_name (fault),
                    self->reopen ? "yes" : "no", reason);
    }
}

//  Pause for want of space (lock held), free bytes known. The need
//  named is what a probe waits for: the largest write refused, the
//  reserve and, when a reopen is due, the logs it replays.
static void
s_pause_full (cbus_store_t *self, uint64_t wanted, uint64_t free, bool reopen)
{
    char reason [CBUS_REASON_MAX];
    uint64_t need = (wanted > self->wanted ? wanted : self->wanted) + self->reserve
                  + (reopen || self->reopen ? s_log_bytes (self->path) : 0);
    snprintf (reason, sizeof (reason), "disk full: %s (%.1f MiB free, %.1f MiB needed)",
              self->path, s_mib (free), s_mib (need));
    s_pause (self, CBUS_STORE_NO_SPACE, wanted, reopen, reason);
}

//  Open the database at self->path: strictly; unless audit, once more
//  without paranoid checks when LevelDB cannot read something (it then
//  drops the log records it cannot read), and strictly again after that.
static leveldb_t *
s_open_db (cbus_store_t *self, bool audit, char **error)
{
    leveldb_options_set_paranoid_checks (self->options, 1);
    leveldb_t *db = leveldb_open (self->options, self->path, error);
    //  A damaged CURRENT or manifest is no log record: nothing to drop.
    if (db || audit || cbus_store_fault_of (*error) != CBUS_STORE_CORRUPT
    ||  strstr (*error, "CURRENT") || strstr (*error, "MANIFEST"))
        return db;
    zsys_error ("leveldb open path=%s found what it cannot read (%s): opening without paranoid "
                "checks, which drops the log records it cannot read (a write that never "
                "completed, or damage: see %s/LOG)", self->path, *error, self->path);
    leveldb_free (*error);
    *error = NULL;
    leveldb_options_set_paranoid_checks (self->options, 0);
    db = leveldb_open (self->options, self->path, error);
    leveldb_options_set_paranoid_checks (self->options, 1);
    if (db) {
        //  The log is in a table now: open strictly again, so that
        //  compactions verify what they read.
        leveldb_close (db);
        db = leveldb_open (self->options, self->path, error);
        if (db)
            zsys_warning ("leveldb open path=%s recovered", self->path);
    }
    return db;
}

static cbus_store_t *
s_open (const char *path, size_t cache_mb, bool audit, cbus_store_fault_t *fault, char *reason)
{
    cbus_store_t *self = (cbus_store_t *) zmalloc (sizeof (cbus_store_t));
    if (!self || !(self->path = strdup (path))) {
        free (self);
        snprintf (reason, CBUS_REASON_MAX, "cannot open database %s: out of memory", path);
        if (fault)
            *fault = CBUS_STORE_OTHER;
        return NULL;
    }
    pthread_mutex_init (&self->lock, NULL);
    self->reserve = CBUS_STORE_RESERVE_BYTES;
    self->options = leveldb_options_create ();
    self->cache = leveldb_cache_create_lru (cache_mb * 1024 * 1024);
    self->filter = leveldb_filterpolicy_create_bloom (10);
    leveldb_options_set_create_if_missing (self->options, 1);
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
    self->db = s_open_db (self, audit, &error);
    if (fault)
        *fault = cbus_store_fault_of (error);
    if (error) {
        snprintf (reason, CBUS_REASON_MAX, "cannot open database %s: %s", path, error);
        s_check (self, &error, "open");
        cbus_store_destroy (&self);
    }
    return self;
}

cbus_store_t *
cbus_store_new (const char *path, size_t cache_mb, char *reason)
{
    return cbus_store_open (path, cache_mb, NULL, reason);
}

cbus_store_t *
cbus_store_open (const char *path, size_t cache_mb, cbus_store_fault_t *fault, char *reason)
{
    return s_open (path, cache_mb, false, fault, reason);
}

cbus_store_t *
cbus_store_open_audit (const char *path, size_t cache_mb, cbus_store_fault_t *fault,
                       char *reason)
{
    return s_open (path, cache_mb, true, fault, reason);
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
        pthread_mutex_destroy (&self->lock);
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
    if (!self->db) {
        *value_p = NULL;
        snprintf (self->error, sizeof (self->error),
                  "IO error: %s is closed: its reopen after a failed write failed", self->path);
        self->fault = CBUS_STORE_IO;
        return -1;
    }
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
    self->bytes += key_size + value_size;
}

void
cbus_store_batch_delete (cbus_store_batch_t *self, const void *key, size_t key_size)
{
    leveldb_writebatch_delete (self->batch, (const char *) key, key_size);
    self->bytes += key_size;
}

void
cbus_store_batch_clear (cbus_store_batch_t *self)
{
    leveldb_writebatch_clear (self->batch);
    self->bytes = 0;
}

size_t
cbus_store_batch_bytes (cbus_store_batch_t *self)
{
    return self->bytes;
}

//  A write refused without a try (lock held): the pause's reason is the
//  failure's.
static int
s_refuse (cbus_store_t *self)
{
    self->refused++;
    self->refused_paused++;
    self->fault = self->pause_fault;
    snprintf (self->error, sizeof (self->error), "%s", self->pause_reason);
    return -1;
}

static int
s_write (cbus_store_t *self, cbus_store_batch_t *batch, bool sync)
{
    if (self->paused || !self->db)
        return s_refuse (self);
    //  Refused before it could tear the log: it would not fit.
    uint64_t free;
    if (s_free_bytes (self->path, &free) == 0 && free < batch->bytes + self->reserve) {
        s_pause_full (self, batch->bytes, free, false);
        return s_refuse (self);
    }
    char *error = NULL;
    leveldb_write (self->db, sync ? self->sync : self->nosync, batch->batch, &error);
    if (s_check (self, &error, "write") == 0)
        return 0;
    //  Never written to again: reopened once there is room. A failure
    //  on a disk now too full for the write counts as a full disk.
    bool known = s_free_bytes (self->path, &free) == 0;
    if (self->fault == CBUS_STORE_NO_SPACE || (known && free < batch->bytes + self->reserve)) {
        self->fault = CBUS_STORE_NO_SPACE;
        s_pause_full (self, batch->bytes, known ? free : 0, true);
    }
    else {
        char reason [CBUS_REASON_MAX];
        snprintf (reason, sizeof (reason), "a write to %s failed: %.160s", self->path,
                  self->error);
        s_pause (self, self->fault, batch->bytes, true, reason);
    }
    self->pause_fault = self->fault;
    return -1;
}

int
cbus_store_write (cbus_store_t *self, cbus_store_batch_t *batch, bool sync)
{
    pthread_mutex_lock (&self->lock);
    int rc = s_write (self, batch, sync);
    pthread_mutex_unlock (&self->lock);
    return rc;
}

bool
cbus_store_writable (cbus_store_t *self, cbus_store_fault_t *fault, char *reason)
{
    pthread_mutex_lock (&self->lock);
    bool writable = !self->paused;
    if (fault)
        *fault = writable ? CBUS_STORE_OK : self->pause_fault;
    if (!writable && reason)
        snprintf (reason, CBUS_REASON_MAX, "%s", self->pause_reason);
    pthread_mutex_unlock (&self->lock);
    return writable;
}

//  Reopen a paused store's database (lock held): 0, or -1 leaving it
//  closed with the reason.
static int
s_reopen (cbus_store_t *self)
{
    if (self->db)
        leveldb_close (self->db);
    char *error = NULL;
    self->db = s_open_db (self, false, &error);
    if (!self->db) {
        char reason [CBUS_REASON_MAX];
        snprintf (reason, sizeof (reason), "%s could not be reopened: %.160s", self->path, error);
        s_check (self, &error, "reopen");
        s_pause (self, self->fault, 0, true, reason);
        return -1;
    }
    self->reopen = false;
    return 0;
}

static int
s_probe (cbus_store_t *self)
{
    uint64_t free = 0;
    bool known = s_free_bytes (self->path, &free) == 0;
    if (!self->paused) {
        if (known && free < self->reserve)
            s_pause_full (self, 0, free, false);
        return self->paused ? -1 : 0;
    }
    uint64_t logs = self->reopen ? s_log_bytes (self->path) : 0;
    if (known && free < self->wanted + self->reserve + logs) {
        if (self->pause_fault == CBUS_STORE_NO_SPACE)
            s_pause_full (self, 0, free, false);    //  The reason's figures
        return -1;
    }
    //  A reopen closes the database under a copy's iterator: wait for it.
    if (self->reopen && self->held)
        return -1;
    if (self->reopen && s_reopen (self))
        return -1;
    zsys_info ("store writable again path=%s paused_ms=%" PRId64 " refused=%" PRIu64
               " free_mib=%.1f", self->path, cbus_mono_ms () - self->paused_since,
               self->refused_paused, s_mib (free));
    self->paused = false;
    self->wanted = 0;
    self->pause_fault = CBUS_STORE_OK;
    return 0;
}

int
cbus_store_probe (cbus_store_t *self)
{
    pthread_mutex_lock (&self->lock);
    int rc = s_probe (self);
    pthread_mutex_unlock (&self->lock);
    return rc;
}

uint64_t
cbus_store_refused (cbus_store_t *self)
{
    pthread_mutex_lock (&self->lock);
    uint64_t refused = self->refused;
    pthread_mutex_unlock (&self->lock);
    return refused;
}

void
cbus_store_set_reserve (cbus_store_t *self, uint64_t bytes)
{
    pthread_mutex_lock (&self->lock);
    self->reserve = bytes;
    pthread_mutex_unlock (&self->lock);
}

cbus_store_iter_t *
cbus_store_iter_new (cbus_store_t *self)
{
    cbus_store_iter_t *iter = (cbus_store_iter_t *) zmalloc (sizeof (cbus_store_iter_t));
    iter->db = self->db;
    iter->read = leveldb_readoptions_create ();
    leveldb_readoptions_set_verify_checksums (iter->read, 1);
    leveldb_readoptions_set_fill_cache (iter->read, 0);
    if (!self->db)
        return iter;                    //  Never valid; its status says why
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
        if (self->iter) {
            leveldb_iter_destroy (self->iter);
            leveldb_release_snapshot (self->db, self->snapshot);
        }
        leveldb_readoptions_destroy (self->read);
        free (self);
        *self_p = NULL;
    }
}

void
cbus_store_iter_seek (cbus_store_iter_t *self, const void *key, size_t key_size)
{
    if (self->iter)
        leveldb_iter_seek (self->iter, (const char *) key, key_size);
}

void
cbus_store_iter_seek_last (cbus_store_iter_t *self)
{
    if (self->iter)
        leveldb_iter_seek_to_last (self->iter);
}

bool
cbus_store_iter_valid (cbus_store_iter_t *self)
{
    return self->iter && leveldb_iter_valid (self->iter) != 0;
}

void
cbus_store_iter_next (cbus_store_iter_t *self)
{
    if (self->iter)
        leveldb_iter_next (self->iter);
}

void
cbus_store_iter_prev (cbus_store_iter_t *self)
{
    if (self->iter)
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
    if (!self->iter) {
        snprintf (reason, CBUS_REASON_MAX, "IO error: the store is closed: its reopen failed");
        return -1;
    }
    leveldb_iter_get_error (self->iter, &error);
    if (!error)
        return 0;
    snprintf (reason, CBUS_REASON_MAX, "%s", error);
    leveldb_free (error);
    return -1;
}

uint64_t
cbus_store_reserve (cbus_store_t *self)
{
    pthread_mutex_lock (&self->lock);
    uint64_t reserve = self->reserve;
    pthread_mutex_unlock (&self->lock);
    return reserve;
}

void
cbus_store_hold (cbus_store_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->held++;
    pthread_mutex_unlock (&self->lock);
}

void
cbus_store_release (cbus_store_t *self)
{
    pthread_mutex_lock (&self->lock);
    assert (self->held > 0);
    self->held--;
    pthread_mutex_unlock (&self->lock);
}

//  --------------------------------------------------------------------------
//  Self-test

static void
s_test_put (cbus_store_t *store, const char *key, size_t size, int rc)
{
    char *value = (char *) malloc (size);
    assert (value);
    memset (value, key [0], size);
    cbus_store_batch_t *batch = cbus_store_batch_new ();
    cbus_store_batch_put (batch, key, strlen (key), value, size);
    assert (cbus_store_batch_bytes (batch) == strlen (key) + size);
    assert (cbus_store_write (store, batch, true) == rc);
    cbus_store_batch_destroy (&batch);
    free (value);
}

//  Whether key is stored, with size bytes.
static bool
s_test_has (cbus_store_t *store, const char *key, size_t size)
{
    char *value = NULL;
    size_t got = 0;
    assert (cbus_store_get (store, key, strlen (key), &value, &got) == 0);
    bool has = value && got == size;
    cbus_store_free (value);
    return has;
}

//  The database's largest log file (caller frees), NULL if none.
static char *
s_test_log (const char *path, off_t *size_p)
{
    DIR *dir = opendir (path);
    assert (dir);
    char *found = NULL;
    *size_p = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        size_t length = strlen (entry->d_name);
        if (length < 5 || !streq (entry->d_name + length - 4, ".log"))
            continue;
        char *name = zsys_sprintf ("%s/%s", path, entry->d_name);
        struct stat info;
        if (name && stat (name, &info) == 0 && info.st_size > *size_p) {
            zstr_free (&found);
            found = name;
            *size_p = info.st_size;
        }
        else
            zstr_free (&name);
    }
    closedir (dir);
    return found;
}

//  A disk too full for a write (a reserve larger than the free space):
//  refused at once, the store paused and said so, until a probe finds
//  room; then writes go on, with nothing lost.
static void
s_test_pause (bool verbose)
{
    char path [] = "/tmp/cbus_store_pause_XXXXXX";
    assert (mkdtemp (path));
    char reason [CBUS_REASON_MAX];
    cbus_store_t *store = cbus_store_new (path, 8, reason);
    assert (store && cbus_store_writable (store, NULL, reason) && cbus_store_probe (store) == 0);
    s_test_put (store, "before", 10, 0);
    cbus_store_set_reserve (store, (uint64_t) 1 << 60);
    s_test_put (store, "full", 10, -1);
    assert (cbus_store_fault (store) == CBUS_STORE_NO_SPACE);
    assert (strstr (cbus_store_error (store), "disk full: ") && strstr (cbus_store_error (store), path));
    cbus_store_fault_t fault;
    assert (!cbus_store_writable (store, &fault, reason) && strncmp (reason, "disk full: ", 11) == 0);
    assert (fault == CBUS_STORE_NO_SPACE);
    s_test_put (store, "again", 10, -1);
    assert (cbus_store_refused (store) == 2);
    assert (cbus_store_probe (store) == -1);
    //  Reads go on meanwhile.
    assert (s_test_has (store, "before", 10) && !s_test_has (store, "full", 10));
    cbus_store_set_reserve (store, 0);
    assert (cbus_store_probe (store) == 0 && cbus_store_writable (store, &fault, reason));
    assert (fault == CBUS_STORE_OK);
    s_test_put (store, "after", 10, 0);
    assert (s_test_has (store, "before", 10) && s_test_has (store, "after", 10));
    //  A probe pauses a store whose disk has less than the reserve free.
    cbus_store_set_reserve (store, (uint64_t) 1 << 60);
    assert (cbus_store_probe (store) == -1 && !cbus_store_writable (store, NULL, NULL));
    cbus_store_set_reserve (store, 0);
    assert (cbus_store_probe (store) == 0);
    cbus_store_destroy (&store);
    char *command = zsys_sprintf ("rm -rf %s", path);
    assert (command && system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("pause ");
}

//  A stop during a write leaves a torn last record: the next open drops
//  it and keeps everything before. A record damaged in the middle of
//  the log (a store written the old way, or damage) fails a strict
//  (audit) open; an ordinary open drops it and keeps the rest.
static void
s_test_recovery (bool verbose)
{
    char path [] = "/tmp/cbus_store_torn_XXXXXX";
    assert (mkdtemp (path));
    char reason [CBUS_REASON_MAX];
    cbus_store_t *store = cbus_store_new (path, 8, reason);
    assert (store);
    s_test_put (store, "t1", 100, 0);
    s_test_put (store, "t2", 100000, 0);
    cbus_store_destroy (&store);
    off_t size;
    char *log = s_test_log (path, &size);
    assert (log && size > 100000);
    assert (truncate (log, size - 1000) == 0);
    zstr_free (&log);
    store = cbus_store_new (path, 8, reason);
    assert (store);
    assert (s_test_has (store, "t1", 100) && !s_test_has (store, "t2", 100000));
    s_test_put (store, "m1", 100, 0);
    s_test_put (store, "m2", 100000, 0);
    s_test_put (store, "m3", 100, 0);
    cbus_store_destroy (&store);
    log = s_test_log (path, &size);
    assert (log && size > 100000);
    FILE *file = fopen (log, "r+b");
    assert (file && fseek (file, 50000, SEEK_SET) == 0);
    int byte = fgetc (file);
    assert (byte != EOF && fseek (file, 50000, SEEK_SET) == 0);
    assert (fputc (byte ^ 0xff, file) != EOF && fclose (file) == 0);
    zstr_free (&log);
    cbus_store_fault_t fault = CBUS_STORE_OK;
    assert (cbus_store_open_audit (path, 8, &fault, reason) == NULL);
    assert (fault == CBUS_STORE_CORRUPT && strstr (reason, "Corruption"));
    store = cbus_store_open (path, 8, &fault, reason);
    assert (store && fault == CBUS_STORE_OK);
    assert (s_test_has (store, "t1", 100) && s_test_has (store, "m1", 100));
    assert (!s_test_has (store, "m2", 100000) && s_test_has (store, "m3", 100));
    cbus_store_destroy (&store);
    //  Recovered for good: a strict open now works.
    store = cbus_store_open_audit (path, 8, &fault, reason);
    assert (store && s_test_has (store, "m3", 100));
    cbus_store_destroy (&store);
    char *command = zsys_sprintf ("rm -rf %s", path);
    assert (command && system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("recovery ");
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
            == CBUS_STORE_NO_SPACE);
    assert (cbus_store_fault_of ("IO error: /x/000005.log: Input/output error") == CBUS_STORE_IO);
    assert (streq (cbus_store_fault_name (CBUS_STORE_NO_SPACE), "no_space"));
    assert (cbus_store_fault_of ("Invalid argument: /x: does not exist") == CBUS_STORE_OTHER);
    char *command = zsys_sprintf ("rm -rf %s", path);
    assert (system (command) == 0);
    zstr_free (&command);
    s_test_pause (verbose);
    s_test_recovery (verbose);
    if (verbose)
        printf ("OK\n");
}
