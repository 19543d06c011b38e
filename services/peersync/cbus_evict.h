/*  =========================================================================
    cbus_evict - which inbound peer gives up its slot to a newcomer

    When every inbound slot is taken, a newcomer may still get in by
    evicting the least useful inbound peer, as Bitcoin Core does
    (net.cpp, SelectNodeToEvict): peers are first protected by distinct
    merits, each of which an attacker would have to earn separately:

      - 4 peers of distinct address groups, picked by a keyed hash of the
        group (a secret per process, so an attacker cannot aim for them);
      - the 8 with the lowest round trip measured;
      - the 4 that most recently relayed transactions to us;
      - the 4 that most recently gave us blocks we stored;
      - of those left, the half that has been connected longest.

    Of the rest, the peer evicted is the youngest of the address group
    that holds the most of them. One more rule of ours: a newcomer only
    evicts from a group that then still holds more peers than its own
    does; a group never rotates its own slots, and a full node of peers
    of one group turns a newcomer of that group away.

    Pure computation on a copy of the figures: no sockets, no state.
    =========================================================================
*/
#ifndef CBUS_EVICT_H_INCLUDED
#define CBUS_EVICT_H_INCLUDED

#include "cbus.h"

//  Protected by each merit (Bitcoin Core's figures).
#define CBUS_EVICT_PROTECT_GROUPS   4
#define CBUS_EVICT_PROTECT_RTT      8
#define CBUS_EVICT_PROTECT_TXS      4
#define CBUS_EVICT_PROTECT_BLOCKS   4

//  One inbound peer as eviction sees it.
typedef struct {
    uint64_t id;                //  The caller's handle (a peer serial)
    uint64_t group;             //  Its address group (cbus_evict_group)
    int64_t connected_ms;       //  When it took its slot (monotonic)
    int64_t min_rtt_ms;         //  Lowest round trip measured, -1 if none yet
    int64_t last_block_ms;      //  When it last gave us a block we stored, 0 never
    int64_t last_tx_ms;         //  When it last relayed transactions, 0 never
} cbus_evict_candidate_t;

//  The address group of a peer's address as the socket gives it (dotted
//  IPv4 or IPv6 text): a routable IPv4 address's /16, an IPv6 address's
//  /32 (the blocks one operator typically holds), and for loopback and
//  private addresses (127/8, 10/8, 172.16/12, 192.168/16, ::1, fc00::/7)
//  the whole address: there each address is a machine of the operator's
//  own network. Anything unparsed is a group of its own text.
uint64_t
    cbus_evict_group (const char *address);

//  Whether an address is loopback (127/8, ::1, ::ffff:127/104).
bool
    cbus_evict_is_loopback (const char *address);

//  The index of the candidate to evict to make room for a newcomer of
//  newcomer_group, or -1 when every candidate is protected or the
//  newcomer's group would not be the smaller for it. key keys the group
//  hash. O(n log n) in count; candidates are reordered.
int
    cbus_evict_select (cbus_evict_candidate_t *candidates, size_t count,
                       uint64_t newcomer_group, uint64_t key);

void
    cbus_evict_test (bool verbose);

#endif
