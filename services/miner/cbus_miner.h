/*  =========================================================================
    cbus_miner - searches proof of work for the mempool's block templates

    Any number of miners may run: each puts its own miner id in the
    header, so two miners never hash the same header and the nonce space
    splits without coordination. A solved block goes straight to the
    chainstore, which validates it; work is dropped as stale as soon as a
    block on the same parent is connected, and a resent job the miner
    already solved is not searched again.

    The search is CPU-bound, yet the miner sits in a zloop like every
    service: while it has work, a timer that is always due runs one
    search slice per turn of the loop, sized to take about ten
    milliseconds, so the loop looks at its sockets between slices and
    never waits on anything longer than one slice. Idle, the loop blocks.
    Submissions go through a cbus_caller: their replies (or a local
    UNAVAILABLE at their deadline) come back through the same loop.

    Before each slice the header's time is moved on to the clock (never
    back), so that a block found after a long search says when it was
    found: retargeting reads block times, and the template's time is
    when the mempool built it. Every heartbeat carries the miner's hash
    rate over the last heartbeat interval (GET /status lists it), and a
    log line gives it every ten seconds while it hashes. The miner works
    the same in both mining modes (miner/mode): the mempool decides when
    there is work.
    =========================================================================
*/
#ifndef CBUS_MINER_H_INCLUDED
#define CBUS_MINER_H_INCLUDED

#include "cbus.h"

typedef struct _cbus_miner_t cbus_miner_t;

//  Subscribe to bus-out, connect to the chainstore and to bus-in, as
//  the node's configuration (borrowed, read only here) says; the miner
//  id is miner/id, or a random one when that is 0. NULL, with a log line
//  saying why, if a socket cannot be made or connected.
cbus_miner_t *
    cbus_miner_new (cbus_config_t *config);
//  Close the sockets, dropping a submission in flight; safe twice,
//  nulls the pointer.
void
    cbus_miner_destroy (cbus_miner_t **self_p);

//  The actor; args is the node's cbus_config_t * (borrowed). Signals the
//  pipe once set up; if set-up failed, then sends "FAILED"
//  (cbus_service_fail) and returns. Ends on $TERM.
void
    cbus_miner_actor (zsock_t *pipe, void *args);

void
    cbus_miner_test (bool verbose);

#endif
