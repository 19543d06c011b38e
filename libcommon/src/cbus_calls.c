/*  =========================================================================
    cbus_calls - a table of bus requests in flight

    Ids are the hash keys themselves, stored in the key pointer (so the
    table allocates nothing per key); this needs 64-bit pointers.
    =========================================================================
*/
#include "cbus.h"
#include <sodium.h>

_Static_assert (sizeof (void *) >= sizeof (uint64_t), "ids are stored in pointers");

//  Distinct timeouts that get their own FIFO list; a further timeout
//  shares the last list, kept sorted on insertion (O(n), never expected).
#define S_CLASSES 8

typedef struct {
    cbus_call_t call;           //  What the owner gets back
    int class_index;            //  Which deadline list holds it
    void *handle;               //  Its place in that list
} s_entry_t;

typedef struct {
    int64_t timeout_ms;         //  Timeout shared by the list's calls
    zlistx_t *list;             //  s_entry_t *, earliest deadline first
} s_class_t;

struct _cbus_calls_t {
    zhashx_t *entries;          //  id -> s_entry_t *, owns the entries
    s_class_t classes [S_CLASSES];  //  Deadline lists by timeout
    int class_count;            //  Lists in use
    uint64_t next_id;           //  Id of the next call
};

static size_t
s_id_hash (const void *key)
{
    uint64_t id = (uint64_t) (uintptr_t) key;
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t) id;
}

static int
s_id_compare (const void *left, const void *right)
{
    uintptr_t a = (uintptr_t) left, b = (uintptr_t) right;
    return (a > b) - (a < b);
}

static void
s_entry_free (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  Sort order of the shared last list.
static int
s_deadline_compare (const void *left, const void *right)
{
    int64_t a = ((const s_entry_t *) left)->call.deadline;
    int64_t b = ((const s_entry_t *) right)->call.deadline;
    return (a > b) - (a < b);
}

cbus_calls_t *
cbus_calls_new (void)
{
    cbus_calls_t *self = (cbus_calls_t *) zmalloc (sizeof (cbus_calls_t));
    self->entries = zhashx_new ();
    zhashx_set_key_hasher (self->entries, s_id_hash);
    zhashx_set_key_comparator (self->entries, s_id_compare);
    zhashx_set_key_duplicator (self->entries, NULL);
    zhashx_set_key_destructor (self->entries, NULL);
    zhashx_set_destructor (self->entries, s_entry_free);
    for (int index = 0; index < S_CLASSES; index++) {
        self->classes [index].list = zlistx_new ();
        zlistx_set_comparator (self->classes [index].list, s_deadline_compare);
    }
    //  A random start keeps ids from two runs of a client apart, so that a
    //  service still answering the previous run cannot be mistaken.
    randombytes_buf (&self->next_id, sizeof (self->next_id));
    return self;
}

void
cbus_calls_destroy (cbus_calls_t **self_p)
{
    assert (self_p);
    cbus_calls_t *self = *self_p;
    if (self) {
        for (int index = 0; index < S_CLASSES; index++)
            zlistx_destroy (&self->classes [index].list);
        zhashx_destroy (&self->entries);
        free (self);
        *self_p = NULL;
    }
}

static int
s_class_for (cbus_calls_t *self, int64_t timeout_ms)
{
    for (int index = 0; index < self->class_count; index++)
        if (self->classes [index].timeout_ms == timeout_ms)
            return index;
    if (self->class_count < S_CLASSES) {
        self->classes [self->class_count].timeout_ms = timeout_ms;
        return self->class_count++;
    }
    return S_CLASSES - 1;
}

uint64_t
cbus_calls_add (cbus_calls_t *self, void *owner, int service,
                cbus_call_fn *handler, void *arg, int64_t timeout_ms, int64_t now_ms)
{
    s_entry_t *entry = (s_entry_t *) zmalloc (sizeof (s_entry_t));
    do
        entry->call.id = self->next_id++;
    while (entry->call.id == 0 || zhashx_lookup (self->entries, (void *) (uintptr_t) entry->call.id));
    entry->call.owner = owner;
    entry->call.service = service;
    entry->call.handler = handler;
    entry->call.arg = arg;
    entry->call.sent = now_ms;
    entry->call.deadline = now_ms + timeout_ms;
    entry->class_index = s_class_for (self, timeout_ms);
    s_class_t *class = &self->classes [entry->class_index];
    if (entry->class_index < S_CLASSES - 1)
        entry->handle = zlistx_add_end (class->list, entry);
    else
        entry->handle = zlistx_insert (class->list, entry, false);
    int rc = zhashx_insert (self->entries, (void *) (uintptr_t) entry->call.id, entry);
    assert (rc == 0);
    return entry->call.id;
}

//  Unlink an entry from its list and the table (which frees it), after
//  copying the call out if asked.
static void
s_remove (cbus_calls_t *self, s_entry_t *entry, cbus_call_t *call)
{
    if (call)
        *call = entry->call;
    zlistx_delete (self->classes [entry->class_index].list, entry->handle);
    zhashx_delete (self->entries, (void *) (uintptr_t) entry->call.id);
}

int
cbus_calls_take (cbus_calls_t *self, uint64_t id, cbus_call_t *call)
{
    if (id == 0)
        return -1;
    s_entry_t *entry = (s_entry_t *) zhashx_lookup (self->entries, (void *) (uintptr_t) id);
    if (!entry)
        return -1;
    s_remove (self, entry, call);
    return 0;
}

int
cbus_calls_expired (cbus_calls_t *self, int64_t now_ms, cbus_call_t *call)
{
    s_entry_t *earliest = NULL;
    for (int index = 0; index < self->class_count; index++) {
        s_entry_t *head = (s_entry_t *) zlistx_head (self->classes [index].list);
        if (head && head->call.deadline <= now_ms
        &&  (!earliest || head->call.deadline < earliest->call.deadline))
            earliest = head;
    }
    if (!earliest)
        return -1;
    s_remove (self, earliest, call);
    return 0;
}

int
cbus_calls_take_lost (cbus_calls_t *self, int service, int64_t sent_before, cbus_call_t *call)
{
    for (int index = 0; index < self->class_count; index++) {
        zlistx_t *list = self->classes [index].list;
        for (s_entry_t *entry = (s_entry_t *) zlistx_first (list); entry;
             entry = (s_entry_t *) zlistx_next (list))
            if (entry->call.service == service && entry->call.sent < sent_before) {
                s_remove (self, entry, call);
                return 0;
            }
    }
    return -1;
}

void
cbus_calls_cancel (cbus_calls_t *self, uint64_t id)
{
    cbus_calls_take (self, id, NULL);
}

size_t
cbus_calls_size (cbus_calls_t *self)
{
    return zhashx_size (self->entries);
}

static void
s_test_handler (const cbus_call_t *call, cbus_reply_t *reply)
{
    (void) call;
    (void) reply;
}

void
cbus_calls_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_calls: ");
    cbus_calls_t *calls = cbus_calls_new ();
    int owner_a, owner_b, arg;
    uint64_t first = cbus_calls_add (calls, &owner_a, 1, s_test_handler, &arg, 100, 1000);
    uint64_t second = cbus_calls_add (calls, &owner_b, 2, NULL, NULL, 50, 1000);
    uint64_t third = cbus_calls_add (calls, &owner_b, 0, NULL, NULL, 100, 1010);
    assert (first != second && second != third && first && second && third);
    assert (cbus_calls_size (calls) == 3);

    cbus_call_t call;
    assert (cbus_calls_take (calls, first, &call) == 0);
    assert (call.owner == &owner_a && call.service == 1);
    assert (call.handler == s_test_handler && call.arg == &arg);
    assert (call.sent == 1000 && call.deadline == 1100);
    assert (cbus_calls_take (calls, first, &call) == -1);      //  Late reply

    //  Expiry takes the earliest deadline across timeout classes.
    assert (cbus_calls_expired (calls, 1049, &call) == -1);
    assert (cbus_calls_expired (calls, 1200, &call) == 0 && call.id == second);
    assert (cbus_calls_expired (calls, 1200, &call) == 0 && call.id == third);
    assert (cbus_calls_expired (calls, 1200, &call) == -1);
    assert (cbus_calls_size (calls) == 0);

    //  More timeout classes than lists still expire in order.
    for (int index = 0; index < 20; index++)
        cbus_calls_add (calls, NULL, 0, NULL, NULL, 1000 - index * 10, 0);
    int64_t last = 0;
    for (int index = 0; index < 20; index++) {
        assert (cbus_calls_expired (calls, INT64_MAX, &call) == 0);
        assert (call.deadline >= last);
        last = call.deadline;
    }
    assert (cbus_calls_size (calls) == 0);
    //  Calls a restarted service lost: its own, sent before the restart.
    uint64_t lost = cbus_calls_add (calls, &owner_a, 1, NULL, NULL, 60000, 500);
    uint64_t later = cbus_calls_add (calls, &owner_a, 1, NULL, NULL, 60000, 900);
    uint64_t other = cbus_calls_add (calls, &owner_b, 2, NULL, NULL, 100, 500);
    assert (cbus_calls_take_lost (calls, 1, 800, &call) == 0 && call.id == lost);
    assert (cbus_calls_take_lost (calls, 1, 800, &call) == -1);
    assert (cbus_calls_take (calls, later, NULL) == 0 && cbus_calls_take (calls, other, NULL) == 0);
    uint64_t id = cbus_calls_add (calls, NULL, 0, NULL, NULL, 10, 0);
    cbus_calls_cancel (calls, id);
    cbus_calls_cancel (calls, id);
    assert (cbus_calls_size (calls) == 0);
    cbus_calls_add (calls, NULL, 0, NULL, NULL, 10, 0);
    cbus_calls_destroy (&calls);
    cbus_calls_destroy (&calls);
    if (verbose)
        printf ("OK\n");
}
