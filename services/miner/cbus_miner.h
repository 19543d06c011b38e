/*  =========================================================================
    cbus_miner - searches proof of work for the mempool's block templates

    Any number of miners may run: each puts its own miner id in the
    header, so two miners never hash the same header and the nonce space
    splits without coordination. A solved block goes straight to the
    chainstore, which validates it; work is dropped as stale as soon as a
    block on the same parent is connected.

    The search is CPU-bound, so this actor does not sit in a zloop: it
    hashes in slices of about ten milliseconds and looks at its sockets
    between slices (without waiting); when idle it blocks in a poller.
    =========================================================================
*/
#ifndef CBUS_MINER_H_INCLUDED
#define CBUS_MINER_H_INCLUDED

#include "cbus.h"

//  The actor; args is the node's cbus_config_t *.
void
    cbus_miner_actor (zsock_t *pipe, void *args);

#endif
