/*  =========================================================================
    cbus_gateway - the HTTP gateway: the node's JSON API and dashboard

    An actor that translates HTTP requests into bus requests to the
    chainstore, the mempool and peersync, and their replies back into the
    JSON answers of the original tutorial (dvf/blockchain), plus read
    routes (blocks, transactions, status). docs/api.md lists every route.

    One thread serves every connection: libmicrohttpd runs in external
    epoll mode, driven by the actor's zloop next to the bus sockets. A
    request waiting for a service suspends its connection; requests to
    services are pipelined on one DEALER per service and matched to their
    replies by a 64-bit id. A service that does not answer in time gets a
    503 naming it; the gateway never waits on anything but its zloop.
    GET /chain streams the chain page by page, so memory does not grow
    with the chain.

    The gateway holds no ledger state and no durable state.
    =========================================================================
*/
#ifndef CBUS_GATEWAY_H_INCLUDED
#define CBUS_GATEWAY_H_INCLUDED

#include "cbus.h"

//  The actor. args is the cbus_config_t * (borrowed: it must outlive the
//  actor). Signals the pipe once started; if the HTTP port cannot be
//  bound, then sends "FAILED" (cbus_service_fail) and returns. Ends on
//  "$TERM" or interrupt, answering requests still in flight with 503.
void
    cbus_gateway_actor (zsock_t *pipe, void *args);

#endif
