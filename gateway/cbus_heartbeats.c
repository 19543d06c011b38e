/*  =========================================================================
    cbus_heartbeats - which processes of the node are alive
    =========================================================================
*/
#include "cbus_heartbeats.h"

#define S_NAME_MAX 64

typedef struct {
    int64_t mono_ms;            //  Monotonic time last heard
    uint64_t wall_ms;           //  Wall-clock time last heard
} s_seen_t;

struct _cbus_heartbeats_t {
    zhashx_t *sources;          //  src -> s_seen_t *, owns both
    int64_t latest_mono;        //  Latest heartbeat from anyone
    uint64_t latest_wall;       //  Same, wall clock; 0 if never
    bool full_logged;           //  Said once that the table is full
};

static void
s_seen_free (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

cbus_heartbeats_t *
cbus_heartbeats_new (void)
{
    cbus_heartbeats_t *self = (cbus_heartbeats_t *) zmalloc (sizeof (cbus_heartbeats_t));
    self->sources = zhashx_new ();
    zhashx_set_destructor (self->sources, s_seen_free);
    return self;
}

void
cbus_heartbeats_destroy (cbus_heartbeats_t **self_p)
{
    assert (self_p);
    cbus_heartbeats_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->sources);
        free (self);
        *self_p = NULL;
    }
}

int
cbus_heartbeats_record (cbus_heartbeats_t *self, const char *src, size_t size,
                        int64_t now_mono, uint64_t now_wall)
{
    if (size == 0 || size > S_NAME_MAX)
        return -1;
    char name [S_NAME_MAX + 1];
    for (size_t index = 0; index < size; index++) {
        if (src [index] < 0x21 || src [index] > 0x7e || src [index] == '"'
        ||  src [index] == '\\')
            return -1;
        name [index] = src [index];
    }
    name [size] = 0;
    s_seen_t *seen = (s_seen_t *) zhashx_lookup (self->sources, name);
    if (!seen) {
        if (zhashx_size (self->sources) >= CBUS_HEARTBEATS_MAX) {
            if (!self->full_logged)
                zsys_warning ("heartbeats: table full, ignoring new source src=%s", name);
            self->full_logged = true;
            return -1;
        }
        seen = (s_seen_t *) zmalloc (sizeof (s_seen_t));
        zhashx_insert (self->sources, name, seen);
    }
    seen->mono_ms = now_mono;
    seen->wall_ms = now_wall;
    self->latest_mono = now_mono;
    self->latest_wall = now_wall;
    return 0;
}

bool
cbus_heartbeats_alive (cbus_heartbeats_t *self, const char *src, int64_t now_mono)
{
    s_seen_t *seen = (s_seen_t *) zhashx_lookup (self->sources, src);
    return seen && now_mono - seen->mono_ms <= CBUS_HEARTBEAT_DEAD_MS;
}

uint64_t
cbus_heartbeats_last_seen (cbus_heartbeats_t *self, const char *src)
{
    s_seen_t *seen = (s_seen_t *) zhashx_lookup (self->sources, src);
    return seen ? seen->wall_ms : 0;
}

bool
cbus_heartbeats_any_alive (cbus_heartbeats_t *self, int64_t now_mono)
{
    return self->latest_wall && now_mono - self->latest_mono <= CBUS_HEARTBEAT_DEAD_MS;
}

uint64_t
cbus_heartbeats_latest (cbus_heartbeats_t *self)
{
    return self->latest_wall;
}

static int
s_name_compare (const void *left, const void *right)
{
    return strcmp ((const char *) left, (const char *) right);
}

void
cbus_heartbeats_write_alive (cbus_heartbeats_t *self, const char *prefix,
                             int64_t now_mono, cbus_buf_t *out)
{
    zlistx_t *names = zlistx_new ();
    zlistx_set_comparator (names, s_name_compare);
    size_t prefix_size = strlen (prefix);
    for (s_seen_t *seen = (s_seen_t *) zhashx_first (self->sources); seen;
         seen = (s_seen_t *) zhashx_next (self->sources)) {
        const char *name = (const char *) zhashx_cursor (self->sources);
        if (strncmp (name, prefix, prefix_size) == 0
        &&  now_mono - seen->mono_ms <= CBUS_HEARTBEAT_DEAD_MS)
            zlistx_add_end (names, (void *) name);
    }
    zlistx_sort (names);
    cbus_buf_puts (out, "[");
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names)) {
        if (name != zlistx_head (names))
            cbus_buf_puts (out, ", ");
        //  Names are printable ASCII without quotes or backslashes.
        cbus_json_write_string (out, name, strlen (name));
    }
    cbus_buf_puts (out, "]");
    zlistx_destroy (&names);
}

void
cbus_heartbeats_prune (cbus_heartbeats_t *self, int64_t now_mono, int64_t max_age_ms)
{
    zlistx_t *stale = zlistx_new ();
    for (s_seen_t *seen = (s_seen_t *) zhashx_first (self->sources); seen;
         seen = (s_seen_t *) zhashx_next (self->sources))
        if (now_mono - seen->mono_ms > max_age_ms)
            zlistx_add_end (stale, (void *) zhashx_cursor (self->sources));
    for (const char *name = (const char *) zlistx_first (stale); name;
         name = (const char *) zlistx_next (stale))
        zhashx_delete (self->sources, name);
    if (zlistx_size (stale))
        self->full_logged = false;
    zlistx_destroy (&stale);
}

size_t
cbus_heartbeats_size (cbus_heartbeats_t *self)
{
    return zhashx_size (self->sources);
}

void
cbus_heartbeats_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_heartbeats: ");
    cbus_heartbeats_t *heartbeats = cbus_heartbeats_new ();
    assert (!cbus_heartbeats_any_alive (heartbeats, 0));
    assert (cbus_heartbeats_record (heartbeats, "mempool", 7, 1000, 5000) == 0);
    assert (cbus_heartbeats_record (heartbeats, "miner.2", 7, 1000, 5000) == 0);
    assert (cbus_heartbeats_record (heartbeats, "miner.1xx", 7, 2000, 6000) == 0);
    assert (cbus_heartbeats_record (heartbeats, "bad\nname", 8, 2000, 6000) == -1);
    assert (cbus_heartbeats_record (heartbeats, "", 0, 2000, 6000) == -1);
    assert (cbus_heartbeats_alive (heartbeats, "mempool", 1000 + CBUS_HEARTBEAT_DEAD_MS));
    assert (!cbus_heartbeats_alive (heartbeats, "mempool", 1001 + CBUS_HEARTBEAT_DEAD_MS));
    assert (!cbus_heartbeats_alive (heartbeats, "chainstore", 1000));
    assert (cbus_heartbeats_last_seen (heartbeats, "mempool") == 5000);
    assert (cbus_heartbeats_last_seen (heartbeats, "peersync") == 0);
    assert (cbus_heartbeats_latest (heartbeats) == 6000);
    assert (cbus_heartbeats_any_alive (heartbeats, 2000));

    cbus_buf_t buf = {0};
    cbus_heartbeats_write_alive (heartbeats, "miner", 2000, &buf);
    assert (streq (buf.data, "[\"miner.1\", \"miner.2\"]"));
    cbus_buf_reset (&buf);
    cbus_heartbeats_write_alive (heartbeats, "miner", 1001 + CBUS_HEARTBEAT_DEAD_MS, &buf);
    assert (streq (buf.data, "[\"miner.1\"]"));
    cbus_buf_reset (&buf);
    cbus_heartbeats_write_alive (heartbeats, "nobody", 2000, &buf);
    assert (streq (buf.data, "[]"));
    cbus_buf_free (&buf);

    cbus_heartbeats_prune (heartbeats, 1500 + 60000, 60000);
    assert (cbus_heartbeats_size (heartbeats) == 1);
    cbus_heartbeats_destroy (&heartbeats);
    cbus_heartbeats_destroy (&heartbeats);
    if (verbose)
        printf ("OK\n");
}
