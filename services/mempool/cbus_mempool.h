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

    The service never waits for the chainstore inside its loop: every
    call has a deadline and its answer is handled when it comes. While the
    chainstore does not answer, PING, MEMPOOL.INFO and TX.GET are answered
    at once and TX.SUBMIT within about 2 s, refused (UNAVAILABLE, code
    unavailable) when its transaction's confirmed-status is unknown.
    =========================================================================
*/
#ifndef CBUS_MEMPOOL_H_INCLUDED
#define CBUS_MEMPOOL_H_INCLUDED

#include "cbus.h"

typedef struct _cbus_mempool_t cbus_mempool_t;

//  Open the pool's store (<data_dir>/mempool, loading and verifying what
//  it holds), bind the mempool's endpoint and connect to the chainstore
//  and the bus, as config says (borrowed: it must outlive the mempool).
//  NULL, with a log line saying why, if any of that fails.
cbus_mempool_t *
    cbus_mempool_new (cbus_config_t *config);
//  Stop: the write in flight ends and is answered; submissions not yet
//  written, and MINE requests, are dropped unanswered (their senders see
//  the mempool gone). Nulls the pointer; safe on NULL.
void
    cbus_mempool_destroy (cbus_mempool_t **self_p);
//  Run the service until "$TERM" on pipe. Pipe command "STATS" is
//  answered with four numbers (writes started, TX.KNOWN questions about
//  submissions, times the intake paused, transactions pending), for
//  tests.
void
    cbus_mempool_run (cbus_mempool_t *self, zsock_t *pipe);

//  The actor; args is the node's cbus_config_t * (borrowed). Signals the
//  pipe once started; sends "FAILED" (cbus_service.h) if the mempool
//  cannot start.
void
    cbus_mempool_actor (zsock_t *pipe, void *args);

//  Self test: the actor in-process on ipc endpoints in a temporary
//  folder, against a stand-in chainstore.
void
    cbus_mempool_test (bool verbose);

#endif
