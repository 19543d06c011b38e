/*  =========================================================================
    cbus_heartbeats - which processes of the node are alive
    =========================================================================
*/
#include "cbus_heartbeats.h"

#define S_NAME_MAX 64

typedef struct {
    int64_t mono_ms;            //  Monotonic time last heard
    uint64_t wall_ms;           //  Wall-clock time last heard
    bool has_rate;              //  It reported a hash rate
    uint64_t hash_rate;         //  ... the last one
    uint64_t resident_bytes;    //  Its resident memory, 0 if not said
    uint8_t *snapshot;          //  Its last metrics snapshot, or NULL
    size_t snapshot_size;       //  ... its bytes
} s_seen_t;

//  One block of the active chain, for the network's hash rate.
typedef struct {
    uint64_t height;
    uint64_t time_ms;           //  Its timestamp
    uint8_t work [CBUS_U256_BYTES];     //  Chain work up to it
} s_block_t;

#define S_RING (CBUS_HEARTBEATS_RATE_BLOCKS + 1)

struct _cbus_heartbeats_t {
    zhashx_t *sources;          //  src -> s_seen_t *, owns both
    int64_t latest_mono;        //  Latest heartbeat from anyone
    uint64_t latest_wall;       //  Same, wall clock; 0 if never
    bool full_logged;           //  Said once that the table is full
    size_t snapshots;           //  Sources holding a metrics snapshot
    bool snapshots_logged;      //  Said once that no more may
    s_block_t blocks [S_RING];  //  The last blocks, a ring
    size_t block_first;         //  Index of the oldest
    size_t block_count;         //  How many are kept
};

static void
s_seen_free (void **item_p)
{
    s_seen_t *seen = (s_seen_t *) *item_p;
    if (seen)
        free (seen->snapshot);
    free (seen);
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

//  src as a NUL-terminated name: printable ASCII without quotes or
//  backslashes, 1 to S_NAME_MAX bytes. -1 if it is not one.
static int
s_name (const char *src, size_t size, char name [S_NAME_MAX + 1])
{
    if (size == 0 || size > S_NAME_MAX)
        return -1;
    for (size_t index = 0; index < size; index++) {
        if (src [index] < 0x21 || src [index] > 0x7e || src [index] == '"'
        ||  src [index] == '\\')
            return -1;
        name [index] = src [index];
    }
    name [size] = 0;
    return 0;
}

int
cbus_heartbeats_record (cbus_heartbeats_t *self, const char *src, size_t size,
                        int64_t now_mono, uint64_t now_wall)
{
    char name [S_NAME_MAX + 1];
    if (s_name (src, size, name))
        return -1;
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

int
cbus_heartbeats_set_rate (cbus_heartbeats_t *self, const char *src, size_t size,
                          uint64_t hash_rate)
{
    char name [S_NAME_MAX + 1];
    s_seen_t *seen = s_name (src, size, name) ? NULL
                   : (s_seen_t *) zhashx_lookup (self->sources, name);
    if (!seen)
        return -1;
    seen->has_rate = true;
    seen->hash_rate = hash_rate;
    return 0;
}

void
cbus_heartbeats_write_rates (cbus_heartbeats_t *self, const char *prefix, int64_t now_mono,
                             cbus_buf_t *out, uint64_t *sum)
{
    zlistx_t *names = zlistx_new ();
    zlistx_set_comparator (names, s_name_compare);
    size_t prefix_size = strlen (prefix);
    for (s_seen_t *seen = (s_seen_t *) zhashx_first (self->sources); seen;
         seen = (s_seen_t *) zhashx_next (self->sources)) {
        const char *name = (const char *) zhashx_cursor (self->sources);
        if (seen->has_rate && strncmp (name, prefix, prefix_size) == 0
        &&  now_mono - seen->mono_ms <= CBUS_HEARTBEAT_DEAD_MS)
            zlistx_add_end (names, (void *) name);
    }
    zlistx_sort (names);
    uint64_t total = 0;
    cbus_buf_puts (out, "{");
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names)) {
        s_seen_t *seen = (s_seen_t *) zhashx_lookup (self->sources, name);
        if (name != zlistx_head (names))
            cbus_buf_puts (out, ", ");
        cbus_json_write_string (out, name, strlen (name));
        cbus_buf_printf (out, ": %" PRIu64, seen->hash_rate);
        total += seen->hash_rate;
    }
    cbus_buf_puts (out, "}");
    zlistx_destroy (&names);
    if (sum)
        *sum = total;
}

int
cbus_heartbeats_set_beat (cbus_heartbeats_t *self, const char *src, size_t size,
                          uint64_t resident_bytes, const uint8_t *snapshot,
                          size_t snapshot_size)
{
    char name [S_NAME_MAX + 1];
    s_seen_t *seen = s_name (src, size, name) ? NULL
                   : (s_seen_t *) zhashx_lookup (self->sources, name);
    if (!seen)
        return -1;
    seen->resident_bytes = resident_bytes;
    if (!snapshot || snapshot_size > CBUS_METRICS_SNAPSHOT_MAX) {
        if (seen->snapshot)
            self->snapshots--;
        free (seen->snapshot);
        seen->snapshot = NULL;
        seen->snapshot_size = 0;
        return snapshot ? -1 : 0;
    }
    if (!seen->snapshot && self->snapshots >= CBUS_HEARTBEATS_METRICS_MAX) {
        if (!self->snapshots_logged)
            zsys_warning ("heartbeats: %d sources keep metrics, ignoring those of src=%s",
                          CBUS_HEARTBEATS_METRICS_MAX, name);
        self->snapshots_logged = true;
        return -1;
    }
    //  A copy: decoding waits for a scrape (most heartbeats are never
    //  scraped), and the copy is reused while the size fits.
    if (seen->snapshot_size != snapshot_size || !seen->snapshot) {
        uint8_t *copy = (uint8_t *) realloc (seen->snapshot, snapshot_size ? snapshot_size : 1);
        if (!copy)
            return -1;
        if (!seen->snapshot)
            self->snapshots++;
        seen->snapshot = copy;
    }
    memcpy (seen->snapshot, snapshot, snapshot_size);
    seen->snapshot_size = snapshot_size;
    return 0;
}

void
cbus_heartbeats_each (cbus_heartbeats_t *self, int64_t now_mono,
                      cbus_heartbeats_each_fn *fn, void *arg)
{
    zlistx_t *names = zlistx_new ();
    if (!names)
        return;
    zlistx_set_comparator (names, s_name_compare);
    for (s_seen_t *seen = (s_seen_t *) zhashx_first (self->sources); seen;
         seen = (s_seen_t *) zhashx_next (self->sources))
        zlistx_add_end (names, (void *) zhashx_cursor (self->sources));
    zlistx_sort (names);
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names)) {
        s_seen_t *seen = (s_seen_t *) zhashx_lookup (self->sources, name);
        cbus_heartbeats_info_t info = {
            .name = name, .alive = now_mono - seen->mono_ms <= CBUS_HEARTBEAT_DEAD_MS,
            .resident_bytes = seen->resident_bytes, .has_rate = seen->has_rate,
            .hash_rate = seen->hash_rate, .snapshot = seen->snapshot,
            .snapshot_size = seen->snapshot_size
        };
        fn (&info, arg);
    }
    zlistx_destroy (&names);
}

static s_block_t *
s_block_at (cbus_heartbeats_t *self, size_t index)
{
    return &self->blocks [(self->block_first + index) % S_RING];
}

void
cbus_heartbeats_block (cbus_heartbeats_t *self, bool connected, uint64_t height,
                       uint64_t time_ms, const uint8_t work [CBUS_U256_BYTES])
{
    //  Whatever is at this height or above left the active chain.
    while (self->block_count && s_block_at (self, self->block_count - 1)->height >= height)
        self->block_count--;
    if (!connected)
        return;
    if (self->block_count && s_block_at (self, self->block_count - 1)->height + 1 != height)
        self->block_count = 0;      //  A gap: events were missed
    if (self->block_count == S_RING) {
        self->block_first = (self->block_first + 1) % S_RING;
        self->block_count--;
    }
    s_block_t *block = s_block_at (self, self->block_count++);
    block->height = height;
    block->time_ms = time_ms;
    memcpy (block->work, work, CBUS_U256_BYTES);
}

int
cbus_heartbeats_network_rate (cbus_heartbeats_t *self, double *rate, uint64_t *blocks,
                              uint64_t *span_ms)
{
    if (self->block_count < 2)
        return -1;
    s_block_t *first = s_block_at (self, 0), *last = s_block_at (self, self->block_count - 1);
    if (last->time_ms <= first->time_ms || cbus_u256_cmp (last->work, first->work) < 0)
        return -1;
    //  The work the blocks after the first add, exactly (256-bit
    //  subtraction, big-endian), then as a double.
    double work = 0;
    int borrow = 0;
    uint8_t added [CBUS_U256_BYTES];
    for (int index = CBUS_U256_BYTES - 1; index >= 0; index--) {
        int byte = last->work [index] - first->work [index] - borrow;
        borrow = byte < 0;
        added [index] = (uint8_t) (byte + (borrow ? 256 : 0));
    }
    for (int index = 0; index < CBUS_U256_BYTES; index++)
        work = work * 256.0 + added [index];
    *span_ms = last->time_ms - first->time_ms;
    *blocks = self->block_count - 1;
    *rate = work * 1000.0 / (double) *span_ms;
    return 0;
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
         name = (const char *) zlistx_next (stale)) {
        s_seen_t *seen = (s_seen_t *) zhashx_lookup (self->sources, name);
        if (seen && seen->snapshot)
            self->snapshots--;
        zhashx_delete (self->sources, name);
    }
    if (zlistx_size (stale))
        self->full_logged = false;
    zlistx_destroy (&stale);
}

size_t
cbus_heartbeats_size (cbus_heartbeats_t *self)
{
    return zhashx_size (self->sources);
}

typedef struct {
    int count;
    char names [4][16];
    bool alive [4];
    uint64_t resident [4];
    size_t sizes [4];
} s_test_each_t;

static void
s_test_each (const cbus_heartbeats_info_t *info, void *arg)
{
    s_test_each_t *seen = (s_test_each_t *) arg;
    assert (seen->count < 4);
    snprintf (seen->names [seen->count], 16, "%s", info->name);
    seen->alive [seen->count] = info->alive;
    seen->resident [seen->count] = info->resident_bytes;
    seen->sizes [seen->count] = info->snapshot_size;
    seen->count++;
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
    cbus_buf_reset (&buf);

    //  Hash rates: only sources that reported one, alive, summed.
    assert (cbus_heartbeats_set_rate (heartbeats, "miner.2", 7, 5000000) == 0);
    assert (cbus_heartbeats_set_rate (heartbeats, "miner.1xx", 7, 3000000) == 0);
    assert (cbus_heartbeats_set_rate (heartbeats, "miner.9", 7, 1) == -1);
    uint64_t sum = 0;
    cbus_heartbeats_write_rates (heartbeats, "miner", 2000, &buf, &sum);
    assert (streq (buf.data, "{\"miner.1\": 3000000, \"miner.2\": 5000000}") && sum == 8000000);
    cbus_buf_reset (&buf);
    cbus_heartbeats_write_rates (heartbeats, "miner", 1001 + CBUS_HEARTBEAT_DEAD_MS, &buf, &sum);
    assert (streq (buf.data, "{\"miner.1\": 3000000}") && sum == 3000000);
    cbus_buf_free (&buf);

    //  The network's hash rate: blocks of work 2^20 each (as 0x1e0fffff
    //  gives, about), one every 500 ms, so 2^21 hashes a second; the
    //  window keeps the last CBUS_HEARTBEATS_RATE_BLOCKS.
    double rate;
    uint64_t blocks, span;
    uint8_t work [CBUS_U256_BYTES] = {0}, step [CBUS_U256_BYTES] = {0};
    step [CBUS_U256_BYTES - 3] = 0x10;          //  2^20
    assert (cbus_heartbeats_network_rate (heartbeats, &rate, &blocks, &span) == -1);
    for (uint64_t height = 1; height <= 100; height++) {
        cbus_u256_add (work, step, work);
        cbus_heartbeats_block (heartbeats, true, height, 1000000 + 500 * height, work);
        if (height == 1)
            assert (cbus_heartbeats_network_rate (heartbeats, &rate, &blocks, &span) == -1);
    }
    assert (cbus_heartbeats_network_rate (heartbeats, &rate, &blocks, &span) == 0);
    assert (blocks == CBUS_HEARTBEATS_RATE_BLOCKS && span == 500 * blocks);
    assert (rate == 2097152.0);
    //  Faster blocks at the same work: a higher rate.
    for (uint64_t height = 101; height <= 200; height++) {
        cbus_u256_add (work, step, work);
        cbus_heartbeats_block (heartbeats, true, height, 1050000 + 250 * height, work);
    }
    assert (cbus_heartbeats_network_rate (heartbeats, &rate, &blocks, &span) == 0);
    assert (rate == 4194304.0);
    //  A block that left takes those above with it; a gap starts again.
    cbus_heartbeats_block (heartbeats, false, 150, 0, work);
    assert (cbus_heartbeats_network_rate (heartbeats, &rate, &blocks, &span) == 0);
    assert (blocks == 9 && span == 250 * 9);
    cbus_heartbeats_block (heartbeats, true, 170, 2000000, work);
    assert (cbus_heartbeats_network_rate (heartbeats, &rate, &blocks, &span) == -1);

    //  What a heartbeat carries for the metrics: kept per source, a copy
    //  of the snapshot, in name order; too many or too big are refused.
    const uint8_t snapshot [3] = { 0x91, 0x90, 0x00 };
    assert (cbus_heartbeats_set_beat (heartbeats, "mempool", 7, 4096, snapshot, 3) == 0);
    assert (cbus_heartbeats_set_beat (heartbeats, "miner.2", 7, 8192, NULL, 0) == 0);
    assert (cbus_heartbeats_set_beat (heartbeats, "nobody", 6, 1, snapshot, 3) == -1);
    assert (cbus_heartbeats_set_beat (heartbeats, "mempool", 7, 1, snapshot,
                                      CBUS_METRICS_SNAPSHOT_MAX + 1) == -1);
    assert (cbus_heartbeats_set_beat (heartbeats, "mempool", 7, 4096, snapshot, 3) == 0);
    s_test_each_t seen = { .count = 0 };
    cbus_heartbeats_each (heartbeats, 2000, s_test_each, &seen);
    assert (seen.count == 3);
    assert (streq (seen.names [0], "mempool") && seen.resident [0] == 4096 && seen.sizes [0] == 3);
    assert (streq (seen.names [1], "miner.1") && seen.alive [1] && seen.sizes [1] == 0);
    assert (streq (seen.names [2], "miner.2") && seen.resident [2] == 8192 && seen.alive [2]);
    char name [16];
    for (int index = 0; index < CBUS_HEARTBEATS_METRICS_MAX + 1; index++) {
        snprintf (name, sizeof (name), "remote.%d", index);
        assert (cbus_heartbeats_record (heartbeats, name, strlen (name), 1000, 5000) == 0);
        assert (cbus_heartbeats_set_beat (heartbeats, name, strlen (name), 1, snapshot, 3)
                == (index < CBUS_HEARTBEATS_METRICS_MAX - 1 ? 0 : -1));
    }
    //  Room comes back when sources go.
    cbus_heartbeats_prune (heartbeats, 1500 + 60000, 60000);
    assert (cbus_heartbeats_size (heartbeats) == 1);
    assert (cbus_heartbeats_record (heartbeats, "remote.x", 8, 70000, 5000) == 0);
    assert (cbus_heartbeats_set_beat (heartbeats, "remote.x", 8, 1, snapshot, 3) == 0);
    cbus_heartbeats_prune (heartbeats, 1500 + 60000, 60000);
    assert (cbus_heartbeats_size (heartbeats) == 2);
    cbus_heartbeats_destroy (&heartbeats);
    cbus_heartbeats_destroy (&heartbeats);
    if (verbose)
        printf ("OK\n");
}
