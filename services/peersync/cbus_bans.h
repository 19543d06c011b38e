/*  =========================================================================
    cbus_bans - the peers this node ignores for a while, by key

    A ban is remembered here, apart from the peer list: a banned peer
    holds no slot, and whatever it sends is ignored until its ban ends
    (the handshake itself is refused: see the ZAP handler in
    cbus_peersync_slots.c). The table is bounded: when it is full, the ban
    that would end soonest makes room, so a flood of throw-away keys costs
    a fixed amount of memory. Keys are CurveZMQ public keys in Z85, as the
    handshake authenticated them.
    =========================================================================
*/
#ifndef CBUS_BANS_H_INCLUDED
#define CBUS_BANS_H_INCLUDED

#include "cbus.h"

typedef struct _cbus_bans_t cbus_bans_t;

//  One ban, as PEER.LIST shows it.
typedef struct {
    char key [41];              //  The peer's CurveZMQ key (Z85)
    char name [64];             //  How it was known (endpoint, node id or address)
    char node_id [17];          //  From its HELLO, or ""
    char remote [48];           //  Its address as the socket saw it
    char reason [160];          //  Why it was banned
    int score;                  //  Its score when banned
    uint64_t height;            //  Its tip's height then
    int64_t last_seen_wall;     //  Wall-clock ms of its last message
    int64_t until;              //  Monotonic ms the ban ends
} cbus_ban_t;

//  A table of at most max bans; NULL if out of memory.
cbus_bans_t *
    cbus_bans_new (size_t max);
void
    cbus_bans_destroy (cbus_bans_t **self_p);
//  Remember a ban (replacing one of the same key). Returns 0, or -1 if
//  out of memory.
int
    cbus_bans_add (cbus_bans_t *self, const cbus_ban_t *ban);
//  The ban of this key if it has not ended by now, else NULL (borrowed).
const cbus_ban_t *
    cbus_bans_find (cbus_bans_t *self, const char *key, int64_t now);
//  Forget the bans ended by now. O(n).
void
    cbus_bans_purge (cbus_bans_t *self, int64_t now);
size_t
    cbus_bans_size (cbus_bans_t *self);
//  Walk the bans (borrowed, in no order); nothing may be added meanwhile.
const cbus_ban_t *
    cbus_bans_first (cbus_bans_t *self);
const cbus_ban_t *
    cbus_bans_next (cbus_bans_t *self);

void
    cbus_bans_test (bool verbose);

#endif
