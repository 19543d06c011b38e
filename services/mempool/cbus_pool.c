/*  =========================================================================
    cbus_pool - the pending transactions
    =========================================================================
*/
#include "cbus_pool.h"

typedef struct {
    uint8_t txid [CBUS_HASH_BYTES];     //  Key in the index
    uint8_t *bytes;                     //  Full transaction bytes
    size_t size;                        //  Bytes in bytes
    uint64_t sequence;                  //  Arrival order, survives restarts
    uint64_t received_ms;               //  When this node first took it
    void *handle;                       //  Position in the arrival list
} s_entry_t;

struct _cbus_pool_write_t {
    cbus_store_t *store;                //  Where to write (LevelDB is thread-safe)
    cbus_store_batch_t *batch;          //  The records
    zlistx_t *entries;                  //  s_entry_t written by it
    uint64_t next_sequence;             //  The pool's after this write
};

struct _cbus_pool_t {
    cbus_store_t *store;                //  The pool's LevelDB
    zhashx_t *index;                    //  txid -> s_entry_t
    zlistx_t *order;                    //  s_entry_t in arrival order
    zlistx_t *staged;                   //  s_entry_t awaiting commit
    zhashx_t *incoming;                 //  txid -> s_entry_t staged or being written
    cbus_store_batch_t *removals;       //  Unsynced deletes (and the tip) awaiting flush
    size_t bytes;                       //  Total bytes pending
    uint64_t next_sequence;             //  For the next arrival
    size_t walked;                      //  Entries the last list stepped over
};

static void
s_entry_destroy (s_entry_t **entry_p)
{
    if (*entry_p) {
        free ((*entry_p)->bytes);
        free (*entry_p);
        *entry_p = NULL;
    }
}

static int
s_compare_sequence (const void *left, const void *right)
{
    const s_entry_t *a = *(const s_entry_t **) left, *b = *(const s_entry_t **) right;
    return a->sequence < b->sequence ? -1 : a->sequence > b->sequence;
}

//  Make an entry pending; -1 (and nothing changed) if memory is short.
static int
s_insert (cbus_pool_t *self, s_entry_t *entry)
{
    if (zhashx_insert (self->index, entry->txid, entry))
        return -1;
    entry->handle = zlistx_add_end (self->order, entry);
    if (!entry->handle) {
        zhashx_delete (self->index, entry->txid);
        return -1;
    }
    self->bytes += entry->size;
    return 0;
}

//  Stored entries are verified in batches of this many on load.
#define S_LOAD_BATCH 4096

//  Verify the signatures of a batch of loaded entries (txs [i] decoded
//  from entries [i]); an entry that fails is dropped from the store and
//  set to NULL. Destroys the txs.
static int
s_load_verified (cbus_pool_t *self, s_entry_t **entries, cbus_tx_t **txs, size_t count,
                 size_t *dropped)
{
    bool *ok = (bool *) malloc (count * sizeof (bool));
    if (!ok)
        return -1;
    cbus_tx_verify_many (txs, count, ok);
    for (size_t index = 0; index < count; index++) {
        if (!ok [index]) {
            uint8_t key [1 + CBUS_HASH_BYTES] = { 'P' };
            memcpy (key + 1, entries [index]->txid, CBUS_HASH_BYTES);
            cbus_store_batch_delete (self->removals, (const char *) key, sizeof (key));
            s_entry_destroy (&entries [index]);
            (*dropped)++;
        }
        cbus_tx_destroy (&txs [index]);
    }
    free (ok);
    return 0;
}

//  One stored entry as loaded: NULL if it does not decode as what its key
//  says (*tx_p NULL then), or if memory is short (*tx_p set: the caller
//  tells the two apart).
static s_entry_t *
s_load_entry (const char *key, size_t key_size, const uint8_t *value, size_t value_size,
              cbus_tx_t **tx_p)
{
    char reason [CBUS_REASON_MAX];
    cbus_tx_t *tx = value_size > 16 ? cbus_tx_decode (value + 16, value_size - 16, reason) : NULL;
    if (!tx || key_size != 1 + CBUS_HASH_BYTES
    ||  memcmp (cbus_tx_id (tx), key + 1, CBUS_HASH_BYTES) != 0) {
        cbus_tx_destroy (&tx);
        *tx_p = NULL;
        return NULL;
    }
    *tx_p = tx;
    s_entry_t *entry = (s_entry_t *) calloc (1, sizeof (s_entry_t));
    if (entry)
        entry->bytes = (uint8_t *) malloc (value_size - 16);
    if (!entry || !entry->bytes) {
        free (entry);
        return NULL;
    }
    memcpy (entry->txid, key + 1, CBUS_HASH_BYTES);
    entry->sequence = cbus_get_be64 (value);
    entry->received_ms = cbus_get_be64 (value + 8);
    entry->size = value_size - 16;
    memcpy (entry->bytes, value + 16, entry->size);
    return entry;
}

//  Read every stored entry into loaded (grown as needed), verifying
//  signatures a batch at a time, on every CPU. Entries that fail are
//  dropped from the store and left NULL. Returns 0, or -1 if memory is
//  short.
static int
s_load_all (cbus_pool_t *self, s_entry_t ***loaded_p, size_t *count_p, size_t *dropped)
{
    size_t count = 0, alloc = 1024, unverified = 0;
    s_entry_t **loaded = (s_entry_t **) malloc (alloc * sizeof (s_entry_t *));
    cbus_tx_t **batch = (cbus_tx_t **) malloc (S_LOAD_BATCH * sizeof (cbus_tx_t *));
    cbus_store_iter_t *iter = loaded && batch ? cbus_store_iter_new (self->store) : NULL;
    int rc = iter ? 0 : -1;
    if (iter)
        cbus_store_iter_seek (iter, "P", 1);
    while (rc == 0) {
        size_t key_size = 0, value_size;
        const char *key = cbus_store_iter_valid (iter)
                        ? cbus_store_iter_key (iter, &key_size) : NULL;
        bool more = key && key_size >= 1 && key [0] == 'P';
        if (unverified == S_LOAD_BATCH || (!more && unverified)) {
            rc = s_load_verified (self, loaded + count - unverified, batch, unverified, dropped);
            if (rc)
                break;              //  The batch's txs are destroyed below
            unverified = 0;
        }
        if (!more)
            break;
        const uint8_t *value = (const uint8_t *) cbus_store_iter_value (iter, &value_size);
        cbus_tx_t *tx = NULL;
        s_entry_t *entry = s_load_entry (key, key_size, value, value_size, &tx);
        if (!entry && !tx) {
            cbus_store_batch_delete (self->removals, key, key_size);
            (*dropped)++;
            cbus_store_iter_next (iter);
            continue;
        }
        if (entry && count == alloc) {
            s_entry_t **grown = (s_entry_t **) realloc (loaded, 2 * alloc * sizeof (s_entry_t *));
            if (grown) {
                loaded = grown;
                alloc *= 2;
            }
            else
                s_entry_destroy (&entry);
        }
        if (!entry) {               //  Out of memory
            cbus_tx_destroy (&tx);
            rc = -1;
            break;
        }
        loaded [count++] = entry;
        batch [unverified++] = tx;
        cbus_store_iter_next (iter);
    }
    for (size_t index = 0; index < unverified; index++)
        cbus_tx_destroy (&batch [index]);
    cbus_store_iter_destroy (&iter);
    free (batch);
    *loaded_p = loaded;
    *count_p = count;
    return rc;
}

cbus_pool_t *
cbus_pool_new (const char *path, char *reason)
{
    return cbus_pool_open (path, NULL, reason);
}

cbus_pool_t *
cbus_pool_open (const char *path, cbus_store_fault_t *fault, char *reason)
{
    if (fault)
        *fault = CBUS_STORE_OK;
    cbus_pool_t *self = (cbus_pool_t *) calloc (1, sizeof (cbus_pool_t));
    if (!self) {
        cbus_fail (reason, "out of memory");
        return NULL;
    }
    self->store = cbus_store_open (path, 16, fault, reason);
    if (!self->store) {
        free (self);
        return NULL;
    }
    self->index = cbus_hash_table_new ();
    self->order = zlistx_new ();
    self->staged = zlistx_new ();
    self->incoming = cbus_hash_table_new ();
    self->removals = cbus_store_batch_new ();
    s_entry_t **loaded = NULL;
    size_t count = 0, dropped = 0;
    int rc = self->index && self->order && self->staged && self->incoming && self->removals
           ? s_load_all (self, &loaded, &count, &dropped) : -1;
    //  Entries whose signature failed were set to NULL: close the gaps,
    //  then put them back in arrival order.
    size_t kept = 0;
    for (size_t index = 0; index < count; index++)
        if (loaded [index]) {
            loaded [kept++] = loaded [index];
            if (loaded [index]->sequence >= self->next_sequence)
                self->next_sequence = loaded [index]->sequence + 1;
        }
    count = kept;
    qsort (loaded, count, sizeof (s_entry_t *), s_compare_sequence);
    for (size_t index = 0; index < count; index++)
        if (rc || s_insert (self, loaded [index])) {
            s_entry_destroy (&loaded [index]);
            rc = -1;
        }
    free (loaded);
    if (rc) {
        cbus_fail (reason, "out of memory loading the mempool");
        cbus_pool_destroy (&self);
        return NULL;
    }
    if (dropped) {
        zsys_warning ("dropped %zu damaged mempool entries", dropped);
        if (cbus_pool_flush (self))
            zsys_error ("could not delete the damaged entries");
    }
    zsys_info ("mempool loaded pending=%zu bytes=%zu", count, self->bytes);
    return self;
}

void
cbus_pool_destroy (cbus_pool_t **self_p)
{
    assert (self_p);
    cbus_pool_t *self = *self_p;
    if (self) {
        if (self->removals && cbus_pool_flush (self))
            zsys_error ("could not flush mempool removals");
        s_entry_t *entry;
        while (self->order && (entry = (s_entry_t *) zlistx_detach (self->order, NULL)))
            s_entry_destroy (&entry);
        while (self->staged && (entry = (s_entry_t *) zlistx_detach (self->staged, NULL)))
            s_entry_destroy (&entry);
        zlistx_destroy (&self->order);
        zlistx_destroy (&self->staged);
        zhashx_destroy (&self->incoming);
        zhashx_destroy (&self->index);
        cbus_store_batch_destroy (&self->removals);
        cbus_store_destroy (&self->store);
        free (self);
        *self_p = NULL;
    }
}

size_t
cbus_pool_size (cbus_pool_t *self)
{
    return zhashx_size (self->index);
}

size_t
cbus_pool_bytes (cbus_pool_t *self)
{
    return self->bytes;
}

bool
cbus_pool_has (cbus_pool_t *self, const uint8_t txid [CBUS_HASH_BYTES])
{
    return zhashx_lookup (self->index, txid) || zhashx_lookup (self->incoming, txid);
}

const uint8_t *
cbus_pool_get (cbus_pool_t *self, const uint8_t txid [CBUS_HASH_BYTES],
               size_t *size_p, uint64_t *received_ms_p)
{
    s_entry_t *entry = (s_entry_t *) zhashx_lookup (self->index, txid);
    if (!entry)
        return NULL;
    *size_p = entry->size;
    if (received_ms_p)
        *received_ms_p = entry->received_ms;
    return entry->bytes;
}

int
cbus_pool_stage (cbus_pool_t *self, cbus_tx_t *tx)
{
    const uint8_t *txid = cbus_tx_id (tx);
    if (cbus_pool_has (self, txid))
        return 0;
    size_t size;
    const uint8_t *bytes = cbus_tx_bytes (tx, &size);
    s_entry_t *entry = (s_entry_t *) calloc (1, sizeof (s_entry_t));
    if (entry)
        entry->bytes = (uint8_t *) malloc (size);
    if (!entry || !entry->bytes) {
        free (entry);
        return -1;
    }
    memcpy (entry->txid, txid, CBUS_HASH_BYTES);
    memcpy (entry->bytes, bytes, size);
    entry->size = size;
    entry->received_ms = cbus_time_ms ();
    if (zhashx_insert (self->incoming, entry->txid, entry)) {
        s_entry_destroy (&entry);
        return -1;
    }
    if (!zlistx_add_end (self->staged, entry)) {
        zhashx_delete (self->incoming, entry->txid);
        s_entry_destroy (&entry);
        return -1;
    }
    return 1;
}

//  Drop everything staged, as a write that failed would.
static void
s_unstage (cbus_pool_t *self, zlistx_t *entries)
{
    s_entry_t *entry;
    while ((entry = (s_entry_t *) zlistx_detach (entries, NULL))) {
        zhashx_delete (self->incoming, entry->txid);
        s_entry_destroy (&entry);
    }
}

cbus_pool_write_t *
cbus_pool_write_begin (cbus_pool_t *self)
{
    if (zlistx_size (self->staged) == 0)
        return NULL;
    cbus_pool_write_t *write = (cbus_pool_write_t *) calloc (1, sizeof (cbus_pool_write_t));
    zlistx_t *staged = zlistx_new ();
    if (write)
        write->batch = cbus_store_batch_new ();
    if (!write || !write->batch || !staged) {
        zsys_error ("mempool: out of memory, %zu transactions not written",
                    zlistx_size (self->staged));
        s_unstage (self, self->staged);
        if (write)
            cbus_store_batch_destroy (&write->batch);
        free (write);
        zlistx_destroy (&staged);
        return NULL;
    }
    write->store = self->store;
    write->entries = self->staged;
    self->staged = staged;
    //  Sequence numbers are given now, in arrival order, so that a later
    //  write's never sort before an earlier one's.
    cbus_buf_t value = {0};
    uint64_t sequence = self->next_sequence;
    for (s_entry_t *entry = (s_entry_t *) zlistx_first (write->entries); entry;
         entry = (s_entry_t *) zlistx_next (write->entries)) {
        entry->sequence = sequence++;
        uint8_t head [16];
        cbus_put_be64 (head, entry->sequence);
        cbus_put_be64 (head + 8, entry->received_ms);
        cbus_buf_reset (&value);
        cbus_buf_append (&value, head, sizeof (head));
        cbus_buf_append (&value, entry->bytes, entry->size);
        uint8_t key [1 + CBUS_HASH_BYTES] = { 'P' };
        memcpy (key + 1, entry->txid, CBUS_HASH_BYTES);
        cbus_store_batch_put (write->batch, key, sizeof (key), value.data, value.size);
    }
    cbus_buf_free (&value);
    self->next_sequence = sequence;
    write->next_sequence = sequence;
    return write;
}

int
cbus_pool_write_run (cbus_pool_write_t *write)
{
    return cbus_store_write (write->store, write->batch, true);
}

void
cbus_pool_write_end (cbus_pool_t *self, cbus_pool_write_t **write_p, int rc)
{
    cbus_pool_write_t *write = *write_p;
    if (!write)
        return;
    s_entry_t *entry;
    size_t lost = 0;
    while ((entry = (s_entry_t *) zlistx_detach (write->entries, NULL))) {
        zhashx_delete (self->incoming, entry->txid);
        if (rc || s_insert (self, entry)) {
            lost += rc == 0;
            s_entry_destroy (&entry);
        }
    }
    if (lost)
        zsys_error ("mempool: out of memory, %zu stored transactions pending again "
                    "only after a restart", lost);
    zlistx_destroy (&write->entries);
    cbus_store_batch_destroy (&write->batch);
    free (write);
    *write_p = NULL;
}

int
cbus_pool_commit (cbus_pool_t *self)
{
    bool any = zlistx_size (self->staged) > 0;
    cbus_pool_write_t *write = cbus_pool_write_begin (self);
    if (!write)
        return any ? -1 : 0;
    int rc = cbus_pool_write_run (write);
    cbus_pool_write_end (self, &write, rc);
    return rc;
}

bool
cbus_pool_remove (cbus_pool_t *self, const uint8_t txid [CBUS_HASH_BYTES])
{
    s_entry_t *entry = (s_entry_t *) zhashx_lookup (self->index, txid);
    if (!entry)
        return false;
    zhashx_delete (self->index, txid);
    zlistx_detach (self->order, entry->handle);
    self->bytes -= entry->size;
    uint8_t key [1 + CBUS_HASH_BYTES] = { 'P' };
    memcpy (key + 1, txid, CBUS_HASH_BYTES);
    cbus_store_batch_delete (self->removals, key, sizeof (key));
    s_entry_destroy (&entry);
    return true;
}

int
cbus_pool_flush (cbus_pool_t *self)
{
    int rc = cbus_store_write (self->store, self->removals, false);
    cbus_store_batch_clear (self->removals);
    return rc;
}

bool
cbus_pool_writable (cbus_pool_t *self, bool *full, char *reason)
{
    cbus_store_fault_t fault;
    bool writable = cbus_store_writable (self->store, &fault, reason);
    if (full)
        *full = fault == CBUS_STORE_NO_SPACE;
    return writable;
}

void
cbus_pool_set_reserve (cbus_pool_t *self, uint64_t bytes)
{
    cbus_store_set_reserve (self->store, bytes);
}

int
cbus_pool_probe (cbus_pool_t *self)
{
    return cbus_store_probe (self->store);
}

cbus_store_t *
cbus_pool_store (cbus_pool_t *self)
{
    return self->store;
}

void
cbus_pool_set_tip (cbus_pool_t *self, const uint8_t hash [CBUS_HASH_BYTES], uint64_t height)
{
    uint8_t value [CBUS_HASH_BYTES + 8];
    memcpy (value, hash, CBUS_HASH_BYTES);
    cbus_put_be64 (value + CBUS_HASH_BYTES, height);
    cbus_store_batch_put (self->removals, "T", 1, value, sizeof (value));
}

int
cbus_pool_tip (cbus_pool_t *self, uint8_t hash [CBUS_HASH_BYTES], uint64_t *height)
{
    char *value = NULL;
    size_t size = 0;
    int rc = -1;
    if (cbus_store_get (self->store, "T", 1, &value, &size) == 0 && value
    &&  size == CBUS_HASH_BYTES + 8) {
        memcpy (hash, value, CBUS_HASH_BYTES);
        *height = cbus_get_be64 ((const uint8_t *) value + CBUS_HASH_BYTES);
        rc = 0;
    }
    cbus_store_free (value);
    return rc;
}

const uint8_t *
cbus_pool_first (cbus_pool_t *self)
{
    s_entry_t *entry = (s_entry_t *) zlistx_first (self->order);
    return entry ? entry->txid : NULL;
}

const uint8_t *
cbus_pool_next (cbus_pool_t *self)
{
    s_entry_t *entry = (s_entry_t *) zlistx_next (self->order);
    return entry ? entry->txid : NULL;
}

size_t
cbus_pool_list (cbus_pool_t *self, uint64_t after, size_t max, const uint8_t **txids,
                uint64_t *next, bool *more)
{
    size_t count = 0;
    *next = after;
    *more = false;
    //  Nothing after the newest: no walk (a reader at the end polls).
    //  Cursors are one past a sequence: sequences start at 0.
    self->walked = 0;
    s_entry_t *last = (s_entry_t *) zlistx_last (self->order);
    if (!last || last->sequence < after)
        return 0;
    s_entry_t *first = (s_entry_t *) zlistx_first (self->order);
    s_entry_t *entry = first;
    //  The list is in sequence order: the start is found from the end
    //  nearer to it (by sequence), so a reader near either end (a page
    //  from the newest: a peer's poll) costs O(max), not O(pending).
    if (after > first->sequence && after - first->sequence > last->sequence - after) {
        zlistx_last (self->order);
        s_entry_t *prev;
        while ((prev = (s_entry_t *) zlistx_prev (self->order)) && prev->sequence >= after)
            self->walked++;
        entry = (s_entry_t *) zlistx_next (self->order);    //  The first at or after
    }
    for (; entry; entry = (s_entry_t *) zlistx_next (self->order)) {
        self->walked++;
        if (entry->sequence < after)
            continue;
        if (count == max) {
            *more = true;
            break;
        }
        txids [count++] = entry->txid;
        *next = entry->sequence + 1;
    }
    return count;
}

//  Test helper: transaction n signed by key; forged spoils the signature.
static cbus_tx_t *
s_test_signed (cbus_key_t *key, int n, bool forged)
{
    char reason [CBUS_REASON_MAX];
    char *text = zsys_sprintf ("{\"users\": \"s\", \"data\": %d, \"dh_parameters\": \"\","
        " \"server_public_key\": \"\", \"receiver_public_key\": \"\", \"sender_public_key\": \"%s\","
        " \"timestamp\": 5000}", n, cbus_key_public_hex (key));
    json_t *object = cbus_json_parse (text, strlen (text), reason);
    cbus_tx_t *tx = cbus_tx_new_from_json (object, 0, reason);
    size_t size;
    const uint8_t *bytes = cbus_tx_signed_bytes (tx, &size);
    uint8_t signature [CBUS_SIG_BYTES];
    cbus_key_sign (key, bytes, size, signature);
    signature [10] ^= forged;
    char hex [2 * CBUS_SIG_BYTES + 1];
    cbus_hex_encode (signature, CBUS_SIG_BYTES, hex);
    json_object_set_new (object, "signature", json_string (hex));
    cbus_tx_destroy (&tx);
    tx = cbus_tx_new_from_json (object, 0, reason);
    assert (tx && cbus_tx_is_signed (tx));
    json_decref (object);
    zstr_free (&text);
    return tx;
}

void
cbus_pool_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_pool: ");
    char path [] = "/tmp/cbus_pool_test_XXXXXX";
    assert (mkdtemp (path));
    char reason [CBUS_REASON_MAX];
    cbus_pool_t *pool = cbus_pool_new (path, reason);
    assert (pool && cbus_pool_size (pool) == 0);
    cbus_tx_t *txs [5];
    for (int index = 0; index < 5; index++) {
        char *text = zsys_sprintf ("{\"users\": \"u\", \"data\": %d, \"dh_parameters\": \"\","
            " \"server_public_key\": \"\", \"receiver_public_key\": \"\", \"sender_public_key\": \"\"}",
            index);
        json_t *object = cbus_json_parse (text, strlen (text), reason);
        txs [index] = cbus_tx_new_from_json (object, 1000, reason);
        assert (txs [index]);
        json_decref (object);
        zstr_free (&text);
    }
    //  Two commits, one with a transaction staged twice.
    assert (cbus_pool_stage (pool, txs [0]) == 1);
    assert (cbus_pool_stage (pool, txs [1]) == 1);
    assert (cbus_pool_stage (pool, txs [1]) == 0);
    size_t size;
    assert (cbus_pool_has (pool, cbus_tx_id (txs [0])));    //  Known once staged,
    assert (!cbus_pool_get (pool, cbus_tx_id (txs [0]), &size, NULL));  //  pending once written
    assert (cbus_pool_commit (pool) == 0);
    assert (cbus_pool_size (pool) == 2);
    for (int index = 2; index < 5; index++)
        assert (cbus_pool_stage (pool, txs [index]) == 1);
    assert (cbus_pool_stage (pool, txs [0]) == 0);              //  Already pending
    assert (cbus_pool_commit (pool) == 0);
    assert (cbus_pool_size (pool) == 5);
    assert (cbus_pool_get (pool, cbus_tx_id (txs [3]), &size, NULL) && size > 0);

    //  The three steps: staged and being-written transactions are known,
    //  pending only once the write ended well.
    cbus_tx_t *late = NULL;
    {
        char *text = zsys_sprintf ("{\"users\": \"u\", \"data\": \"late\", \"dh_parameters\": \"\","
            " \"server_public_key\": \"\", \"receiver_public_key\": \"\", \"sender_public_key\": \"\"}");
        json_t *object = cbus_json_parse (text, strlen (text), reason);
        late = cbus_tx_new_from_json (object, 2000, reason);
        json_decref (object);
        zstr_free (&text);
    }
    assert (cbus_pool_stage (pool, late) == 1);
    cbus_pool_write_t *write = cbus_pool_write_begin (pool);
    assert (write && cbus_pool_write_begin (pool) == NULL);
    assert (cbus_pool_has (pool, cbus_tx_id (late)) && cbus_pool_stage (pool, late) == 0);
    assert (!cbus_pool_get (pool, cbus_tx_id (late), &size, NULL));
    assert (cbus_pool_write_run (write) == 0);
    cbus_pool_write_end (pool, &write, 0);
    assert (write == NULL && cbus_pool_get (pool, cbus_tx_id (late), &size, NULL));
    assert (cbus_pool_remove (pool, cbus_tx_id (late)));
    //  A write that failed leaves nothing behind.
    assert (cbus_pool_stage (pool, late) == 1);
    write = cbus_pool_write_begin (pool);
    cbus_pool_write_end (pool, &write, -1);
    assert (!cbus_pool_has (pool, cbus_tx_id (late)));
    cbus_tx_destroy (&late);

    //  Remove one, reopen: four left, in arrival order.
    assert (cbus_pool_remove (pool, cbus_tx_id (txs [2])));
    assert (!cbus_pool_remove (pool, cbus_tx_id (txs [2])));
    cbus_pool_destroy (&pool);
    pool = cbus_pool_new (path, reason);
    assert (pool && cbus_pool_size (pool) == 4);
    int expected [] = { 0, 1, 3, 4 }, position = 0;
    for (const uint8_t *txid = cbus_pool_first (pool); txid; txid = cbus_pool_next (pool))
        assert (memcmp (txid, cbus_tx_id (txs [expected [position++]]), CBUS_HASH_BYTES) == 0);
    assert (position == 4);
    //  Paged by arrival: two, then the other two, then nothing; the
    //  cursor holds across a removal and a reopen.
    const uint8_t *page [4];
    uint64_t cursor = 0, next = 0;
    bool more = false;
    assert (cbus_pool_list (pool, 0, 2, page, &cursor, &more) == 2 && more);
    assert (memcmp (page [1], cbus_tx_id (txs [1]), CBUS_HASH_BYTES) == 0);
    assert (cbus_pool_list (pool, cursor, 2, page, &next, &more) == 2 && !more);
    assert (memcmp (page [0], cbus_tx_id (txs [3]), CBUS_HASH_BYTES) == 0);
    assert (cbus_pool_list (pool, next, 2, page, &next, &more) == 0 && !more);
    cbus_pool_destroy (&pool);
    pool = cbus_pool_new (path, reason);
    assert (pool && cbus_pool_list (pool, cursor, 4, page, &next, &more) == 2 && !more);
    assert (memcmp (page [1], cbus_tx_id (txs [4]), CBUS_HASH_BYTES) == 0);

    //  Signed entries are verified on load (many: on every CPU); one
    //  whose signature fails (changed on disk) is dropped, for good.
    cbus_key_t *key = cbus_key_new ();
    for (int index = 0; index < 100; index++) {
        cbus_tx_t *tx = s_test_signed (key, index, index == 57);
        assert (cbus_pool_stage (pool, tx) == 1);
        cbus_tx_destroy (&tx);
    }
    assert (cbus_pool_commit (pool) == 0 && cbus_pool_size (pool) == 104);
    for (int round = 0; round < 2; round++) {
        cbus_pool_destroy (&pool);
        pool = cbus_pool_new (path, reason);
        assert (pool && cbus_pool_size (pool) == 103);
    }
    //  A page near the end is found from the end: its cost is its length,
    //  not the pool's; the same txids as a walk from the start.
    {
        const uint8_t *all [128], *tail [128];
        uint64_t at = 0, end = 0;
        bool left = false;
        assert (cbus_pool_list (pool, 0, 128, all, &end, &left) == 103 && !left);
        assert (cbus_pool_list (pool, 0, 90, tail, &at, &left) == 90 && left);
        assert (cbus_pool_list (pool, at, 128, tail, &end, &left) == 13 && !left);
        assert (pool->walked <= 2 * 13 + 1);     //  Back to it, then the page
        for (int index = 0; index < 13; index++)
            assert (tail [index] == all [90 + index]);
        assert (cbus_pool_list (pool, end - 1, 128, tail, &at, &left) == 1 && pool->walked <= 2);
        assert (tail [0] == all [102] && at == end);
        assert (cbus_pool_list (pool, end, 128, tail, &at, &left) == 0 && pool->walked == 0);
        assert (cbus_pool_list (pool, 1, 2, tail, &at, &left) == 2 && pool->walked <= 4);
    }
    //  The tip it reflects survives a restart.
    uint8_t tip [CBUS_HASH_BYTES], back [CBUS_HASH_BYTES];
    uint64_t height = 0;
    assert (cbus_pool_tip (pool, back, &height) == -1);
    memset (tip, 0xab, sizeof (tip));
    cbus_pool_set_tip (pool, tip, 1234);
    assert (cbus_pool_flush (pool) == 0);
    cbus_pool_destroy (&pool);
    pool = cbus_pool_new (path, reason);
    assert (pool && cbus_pool_tip (pool, back, &height) == 0);
    assert (memcmp (tip, back, sizeof (tip)) == 0 && height == 1234);
    cbus_tx_t *forged = s_test_signed (key, 57, true);
    cbus_tx_t *sound = s_test_signed (key, 58, false);
    assert (!cbus_pool_has (pool, cbus_tx_id (forged)) && cbus_pool_has (pool, cbus_tx_id (sound)));
    cbus_tx_destroy (&forged);
    cbus_tx_destroy (&sound);
    //  A full disk (a reserve beyond the free space): the commit is
    //  refused, nothing staged becomes pending, the pool says why; with
    //  room again a probe resumes it and the same transaction goes in.
    bool full = false;
    assert (cbus_pool_writable (pool, &full, reason) && !full);
    cbus_pool_set_reserve (pool, (uint64_t) 1 << 60);
    cbus_tx_t *later = s_test_signed (key, 991, false);
    size_t before = cbus_pool_size (pool);
    assert (cbus_pool_stage (pool, later) == 1 && cbus_pool_commit (pool) == -1);
    assert (cbus_pool_size (pool) == before && !cbus_pool_has (pool, cbus_tx_id (later)));
    assert (!cbus_pool_writable (pool, &full, reason) && full && strstr (reason, "disk full"));
    assert (cbus_pool_probe (pool) == -1);
    cbus_pool_set_reserve (pool, 0);
    assert (cbus_pool_probe (pool) == 0 && cbus_pool_writable (pool, &full, reason));
    assert (cbus_pool_stage (pool, later) == 1 && cbus_pool_commit (pool) == 0);
    assert (cbus_pool_has (pool, cbus_tx_id (later)) && cbus_pool_size (pool) == before + 1);
    cbus_tx_destroy (&later);
    cbus_key_destroy (&key);
    cbus_pool_destroy (&pool);
    for (int index = 0; index < 5; index++)
        cbus_tx_destroy (&txs [index]);
    char *command = zsys_sprintf ("rm -rf %s", path);
    assert (system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("OK\n");
}
