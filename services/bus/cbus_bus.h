/*  =========================================================================
    cbus_bus - the node's event bus: an XSUB/XPUB forwarder

    Publishers connect PUB sockets to bus-in (XSUB); subscribers and taps
    connect SUB sockets to bus-out (XPUB); subscriptions flow upstream so
    that publishers filter at the source. The bus keeps nothing: a
    restart loses only what was in flight, which subscribers see as a gap
    in the publishers' sequence numbers.
    =========================================================================
*/
#ifndef CBUS_BUS_H_INCLUDED
#define CBUS_BUS_H_INCLUDED

#include "cbus.h"

//  The actor; args is the node's cbus_config_t *.
void
    cbus_bus_actor (zsock_t *pipe, void *args);

#endif
