/*  =========================================================================
    cbus_peersync - the node's side of the network: keeps the peer list

    This version keeps the list (PEER.ADD, PEER.LIST) and answers RESOLVE
    for a node without links: its own chain is authoritative, and each
    listed peer is reported as not linked. Linking, gossip and sync with
    peers over CurveZMQ build on this actor.
    =========================================================================
*/
#ifndef CBUS_PEERSYNC_H_INCLUDED
#define CBUS_PEERSYNC_H_INCLUDED

#include "cbus.h"

//  The actor; args is the node's cbus_config_t *.
void
    cbus_peersync_actor (zsock_t *pipe, void *args);

#endif
