/*  =========================================================================
    cbus_bus - the node's event bus: an XSUB/XPUB forwarder

    Publishers connect PUB sockets to bus-in (XSUB); subscribers and taps
    connect SUB sockets to bus-out (XPUB); subscriptions flow upstream so
    that publishers filter at the source. The bus keeps nothing: a
    restart loses only what was in flight, which subscribers see as a gap
    in the publishers' sequence numbers.

    A class with an actor that runs it, so the bus runs in its own process
    (chainbus-bus) or in-process inside a test.
    =========================================================================
*/
#ifndef CBUS_BUS_H_INCLUDED
#define CBUS_BUS_H_INCLUDED

#include "cbus.h"

typedef struct _cbus_bus_t cbus_bus_t;

//  Bind bus-in and bus-out of the node's configuration (borrowed, read
//  only here). NULL, with a log line saying why, if either will not bind.
cbus_bus_t *
    cbus_bus_new (cbus_config_t *config);
//  Close the sockets; safe twice, nulls the pointer.
void
    cbus_bus_destroy (cbus_bus_t **self_p);

//  The actor; args is the node's cbus_config_t * (borrowed). Signals the
//  pipe once bound; if binding failed, then sends "FAILED"
//  (cbus_service_fail) and returns. Ends on $TERM.
void
    cbus_bus_actor (zsock_t *pipe, void *args);

void
    cbus_bus_test (bool verbose);

#endif
