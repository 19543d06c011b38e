/*  =========================================================================
    cbus_evict - which inbound peer gives up its slot to a newcomer
    =========================================================================
*/
#include "cbus_evict.h"
#include <arpa/inet.h>

//  Kinds of group, in the top byte, so that groups of two kinds never meet.
#define S_KIND_IPV4     (1ULL << 56)
#define S_KIND_LOCAL4   (2ULL << 56)
#define S_KIND_IPV6     (3ULL << 56)
#define S_KIND_LOCAL6   (4ULL << 56)
#define S_KIND_TEXT     (5ULL << 56)

static uint64_t
s_mix (uint64_t value)
{
    //  splitmix64's finaliser: every input bit moves every output bit.
    value ^= value >> 30;
    value *= 0xbf58476d1ce4e5b9ULL;
    value ^= value >> 27;
    value *= 0x94d049bb133111ebULL;
    value ^= value >> 31;
    return value;
}

static uint64_t
s_group_ipv4 (const uint8_t *ip)
{
    uint32_t whole = (uint32_t) ip [0] << 24 | (uint32_t) ip [1] << 16
                   | (uint32_t) ip [2] << 8 | ip [3];
    if (ip [0] == 127 || ip [0] == 10 || (ip [0] == 172 && (ip [1] & 0xf0) == 16)
    ||  (ip [0] == 192 && ip [1] == 168))
        return S_KIND_LOCAL4 | whole;
    return S_KIND_IPV4 | (whole >> 16);
}

uint64_t
cbus_evict_group (const char *address)
{
    uint8_t ip [16];
    if (inet_pton (AF_INET, address, ip) == 1)
        return s_group_ipv4 (ip);
    if (inet_pton (AF_INET6, address, ip) == 1) {
        static const uint8_t mapped [12] = { 0,0,0,0, 0,0,0,0, 0,0,0xff,0xff };
        if (memcmp (ip, mapped, 12) == 0)
            return s_group_ipv4 (ip + 12);
        uint64_t high = 0, low = 0;
        for (int index = 0; index < 8; index++) {
            high = high << 8 | ip [index];
            low = low << 8 | ip [8 + index];
        }
        if ((high == 0 && low == 1) || (ip [0] & 0xfe) == 0xfc)
            return S_KIND_LOCAL6 | ((s_mix (high) ^ low) & 0xffffffffffffffULL);
        return S_KIND_IPV6 | (high >> 32);
    }
    uint64_t hash = 14695981039346656037ULL;    //  FNV-1a of the text
    for (const char *cursor = address; *cursor; cursor++)
        hash = (hash ^ (uint8_t) *cursor) * 1099511628211ULL;
    return S_KIND_TEXT | (hash & 0xffffffffffffffULL);
}

bool
cbus_evict_is_loopback (const char *address)
{
    uint8_t ip [16];
    if (inet_pton (AF_INET, address, ip) == 1)
        return ip [0] == 127;
    if (inet_pton (AF_INET6, address, ip) == 1) {
        static const uint8_t mapped [12] = { 0,0,0,0, 0,0,0,0, 0,0,0xff,0xff };
        static const uint8_t one [16] = { 0,0,0,0, 0,0,0,0, 0,0,0,0, 0,0,0,1 };
        return memcmp (ip, one, 16) == 0 || (memcmp (ip, mapped, 12) == 0 && ip [12] == 127);
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Selection. Each merit sorts what is left and protects its best: they
//  move out of the way to the end of the array, and the rest shrinks.

static uint64_t s_key;          //  For the keyed-group order (qsort has no context)

static int
s_by_keyed_group (const void *a, const void *b)
{
    const cbus_evict_candidate_t *x = (const cbus_evict_candidate_t *) a;
    const cbus_evict_candidate_t *y = (const cbus_evict_candidate_t *) b;
    uint64_t hx = s_mix (x->group ^ s_key), hy = s_mix (y->group ^ s_key);
    if (hx != hy)
        return hx > hy ? -1 : 1;
    return (x->connected_ms > y->connected_ms) - (x->connected_ms < y->connected_ms);
}

static int
s_by_rtt (const void *a, const void *b)
{
    //  Unknown (-1) last.
    uint64_t x = (uint64_t) ((const cbus_evict_candidate_t *) a)->min_rtt_ms;
    uint64_t y = (uint64_t) ((const cbus_evict_candidate_t *) b)->min_rtt_ms;
    return (x > y) - (x < y);
}

static int
s_by_recent_tx (const void *a, const void *b)
{
    int64_t x = ((const cbus_evict_candidate_t *) a)->last_tx_ms;
    int64_t y = ((const cbus_evict_candidate_t *) b)->last_tx_ms;
    return (x < y) - (x > y);
}

static int
s_by_recent_block (const void *a, const void *b)
{
    int64_t x = ((const cbus_evict_candidate_t *) a)->last_block_ms;
    int64_t y = ((const cbus_evict_candidate_t *) b)->last_block_ms;
    return (x < y) - (x > y);
}

static int
s_by_age (const void *a, const void *b)
{
    int64_t x = ((const cbus_evict_candidate_t *) a)->connected_ms;
    int64_t y = ((const cbus_evict_candidate_t *) b)->connected_ms;
    return (x > y) - (x < y);
}

static void
s_swap (cbus_evict_candidate_t *a, cbus_evict_candidate_t *b)
{
    cbus_evict_candidate_t keep = *a;
    *a = *b;
    *b = keep;
}

//  Protect up to most of the first *left after sorting by order, those
//  that have the merit at all (has_merit NULL: all do). Protected ones go
//  past the new *left; the order of the rest does not matter.
static void
s_protect (cbus_evict_candidate_t *set, size_t *left, size_t most,
           int (*order) (const void *, const void *),
           bool (*has_merit) (const cbus_evict_candidate_t *))
{
    qsort (set, *left, sizeof (set [0]), order);
    size_t taken = 0;
    while (taken < most && taken < *left && (!has_merit || has_merit (&set [taken])))
        taken++;
    //  Swap the front ones with open ones from the end; those of the front
    //  left once the end reaches them are in the tail already.
    for (size_t index = 0; index < taken && *left - 1 - index >= taken; index++)
        s_swap (&set [index], &set [*left - 1 - index]);
    *left -= taken;
}

static bool s_has_rtt (const cbus_evict_candidate_t *c) { return c->min_rtt_ms >= 0; }
static bool s_has_tx (const cbus_evict_candidate_t *c) { return c->last_tx_ms > 0; }
static bool s_has_block (const cbus_evict_candidate_t *c) { return c->last_block_ms > 0; }

//  One peer (the oldest) of each of the first most groups in keyed order.
static void
s_protect_groups (cbus_evict_candidate_t *set, size_t *left, size_t most)
{
    qsort (set, *left, sizeof (set [0]), s_by_keyed_group);
    size_t chosen [CBUS_EVICT_PROTECT_GROUPS], taken = 0;
    for (size_t index = 0; index < *left && taken < most && taken < CBUS_EVICT_PROTECT_GROUPS;
         index++)
        if (index == 0 || set [index].group != set [index - 1].group)
            chosen [taken++] = index;
    //  Highest position first: what comes from the end is never chosen.
    while (taken > 0) {
        s_swap (&set [chosen [--taken]], &set [*left - 1]);
        (*left)--;
    }
}

static size_t
s_group_count (const cbus_evict_candidate_t *set, size_t count, uint64_t group)
{
    size_t found = 0;
    for (size_t index = 0; index < count; index++)
        found += set [index].group == group;
    return found;
}

int
cbus_evict_select (cbus_evict_candidate_t *candidates, size_t count, uint64_t newcomer_group,
                   uint64_t key)
{
    size_t left = count;
    s_key = key;
    s_protect_groups (candidates, &left, CBUS_EVICT_PROTECT_GROUPS);
    s_protect (candidates, &left, CBUS_EVICT_PROTECT_RTT, s_by_rtt, s_has_rtt);
    s_protect (candidates, &left, CBUS_EVICT_PROTECT_TXS, s_by_recent_tx, s_has_tx);
    s_protect (candidates, &left, CBUS_EVICT_PROTECT_BLOCKS, s_by_recent_block, s_has_block);
    s_protect (candidates, &left, left / 2, s_by_age, NULL);
    if (left == 0)
        return -1;
    //  The group with most of those left, and of ties the one whose
    //  youngest is youngest; then that youngest.
    int chosen = -1;
    size_t chosen_count = 0;
    for (size_t index = 0; index < left; index++) {
        size_t in_group = s_group_count (candidates, left, candidates [index].group);
        if (chosen < 0 || in_group > chosen_count
        ||  (in_group == chosen_count
             && candidates [index].connected_ms > candidates [chosen].connected_ms)) {
            chosen = (int) index;
            chosen_count = in_group;
        }
    }
    //  Only a swap that leaves the newcomer's group the smaller.
    uint64_t group = candidates [chosen].group;
    if (s_group_count (candidates, count, group)
        <= s_group_count (candidates, count, newcomer_group) + 1)
        return -1;
    return chosen;
}

//  --------------------------------------------------------------------------
//  Self test

static uint64_t
s_select_id (cbus_evict_candidate_t *set, size_t count, uint64_t newcomer_group)
{
    int index = cbus_evict_select (set, count, newcomer_group, 42);
    return index < 0 ? UINT64_MAX : set [index].id;
}

void
cbus_evict_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_evict: ");
    //  Groups
    assert (cbus_evict_group ("1.2.3.4") == cbus_evict_group ("1.2.200.9"));
    assert (cbus_evict_group ("1.2.3.4") != cbus_evict_group ("1.3.3.4"));
    assert (cbus_evict_group ("::ffff:1.2.3.4") == cbus_evict_group ("1.2.7.7"));
    assert (cbus_evict_group ("127.0.0.2") != cbus_evict_group ("127.0.0.3"));
    assert (cbus_evict_group ("192.168.1.1") != cbus_evict_group ("192.168.1.2"));
    assert (cbus_evict_group ("2001:db8:1::1") == cbus_evict_group ("2001:db8:ffff::2"));
    assert (cbus_evict_group ("2001:db8::1") != cbus_evict_group ("2001:db9::1"));
    assert (cbus_evict_group ("::1") != cbus_evict_group ("fd00::1"));
    assert (cbus_evict_group ("not an address") == cbus_evict_group ("not an address"));
    assert (cbus_evict_group ("not an address") != cbus_evict_group ("1.2.3.4"));
    assert (cbus_evict_is_loopback ("127.0.0.9") && cbus_evict_is_loopback ("::1")
         && cbus_evict_is_loopback ("::ffff:127.0.0.1"));
    assert (!cbus_evict_is_loopback ("10.0.0.1") && !cbus_evict_is_loopback ("::2")
         && !cbus_evict_is_loopback ("x"));

    cbus_evict_candidate_t set [80];
    uint64_t group_a = cbus_evict_group ("127.0.0.2"), group_b = cbus_evict_group ("127.0.0.3");
    //  One group only: a newcomer of it gets nothing, another one a slot.
    for (size_t index = 0; index < 64; index++)
        set [index] = (cbus_evict_candidate_t) {
            .id = index, .group = group_a, .connected_ms = 1000 + (int64_t) index,
            .min_rtt_ms = -1 };
    assert (s_select_id (set, 64, group_a) == UINT64_MAX);
    assert (s_select_id (set, 64, group_b) != UINT64_MAX);

    //  Merits: the oldest (its group's keyed pick), the one that gave us a
    //  block, and the older half of the rest are kept; the youngest
    //  unprotected one goes.
    for (size_t index = 0; index < 20; index++)
        set [index] = (cbus_evict_candidate_t) {
            .id = index, .group = group_a, .connected_ms = 1000 + (int64_t) index,
            .min_rtt_ms = -1 };
    set [19].last_block_ms = 5000;
    assert (s_select_id (set, 20, group_b) == 18);
    //  The fastest and the latest relayers of transactions are kept too.
    for (size_t index = 0; index < 20; index++)
        set [index] = (cbus_evict_candidate_t) {
            .id = index, .group = group_a, .connected_ms = 1000 + (int64_t) index,
            .min_rtt_ms = index == 18 ? 1 : -1, .last_tx_ms = index == 19 ? 4000 : 0 };
    assert (s_select_id (set, 20, group_b) == 17);

    //  Eight groups of eight and one honest peer of its own group, older
    //  and younger than all: a newcomer of a ninth group evicts the
    //  youngest of a group of eight, never the lone peer.
    for (int young = 0; young < 2; young++) {
        size_t count = 0;
        for (int group = 0; group < 8; group++) {
            char address [32];
            snprintf (address, sizeof (address), "127.0.1.%d", group);
            for (int index = 0; index < 8; index++, count++)
                set [count] = (cbus_evict_candidate_t) {
                    .id = count, .group = cbus_evict_group (address),
                    .connected_ms = 2000 + (int64_t) count, .min_rtt_ms = 5 };
        }
        set [count] = (cbus_evict_candidate_t) {
            .id = 1000, .group = cbus_evict_group ("127.0.0.1"),
            .connected_ms = young ? 9000 : 10, .min_rtt_ms = -1 };
        count++;
        uint64_t evicted = s_select_id (set, count, cbus_evict_group ("127.0.0.99"));
        assert (evicted != UINT64_MAX && evicted != 1000);
        //  ... and a newcomer of a group of eight gets nothing.
        assert (s_select_id (set, count, cbus_evict_group ("127.0.1.3")) == UINT64_MAX);
    }
    //  Few enough to be all protected.
    set [0] = (cbus_evict_candidate_t) { .id = 7, .group = group_a, .min_rtt_ms = -1 };
    assert (s_select_id (set, 1, group_b) == UINT64_MAX);
    assert (s_select_id (set, 0, group_b) == UINT64_MAX);
    if (verbose)
        printf ("OK\n");
}
