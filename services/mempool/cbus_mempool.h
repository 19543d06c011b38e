/*  =========================================================================
    cbus_mempool - takes transactions in, durably, and asks for blocks

    TX.SUBMIT requests that arrive together are checked, made durable by
    one fsync (group commit) and only then acknowledged. MINE turns the
    pending transactions into a block template, published as miner.work
    for any number of miners; the request is answered when the chainstore
    connects the block. Confirmed transactions leave the pool on
    chain.block.connected; at start, and whenever the tip moves without an
    event, the pool asks the chainstore which of its transactions are
    already confirmed.
    =========================================================================
*/
#ifndef CBUS_MEMPOOL_H_INCLUDED
#define CBUS_MEMPOOL_H_INCLUDED

#include "cbus.h"

//  The actor; args is the node's cbus_config_t *.
void
    cbus_mempool_actor (zsock_t *pipe, void *args);

#endif
