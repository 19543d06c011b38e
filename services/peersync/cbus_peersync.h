/*  =========================================================================
    cbus_peersync - the node's side of the peer-to-peer network

    Keeps the peer list and links this node to its peers over TCP with
    CurveZMQ: each node has its own keypair (cbus_identity) and serves the
    peer protocol on a ROUTER (peersync/p2p_port, by default the HTTP port
    + 1000); a plaintext directory 1000 ports above it answers only INFO
    (network, genesis, public key), so that a peer given as tcp://host:port
    can learn the key to link with. A peer given as http://host:port is
    asked through its gateway (GET /node/info) instead.

    Over each link: HELLO (network and genesis must match), STATUS every
    two seconds, gossip of newly accepted transactions (TX) and blocks
    (BLOCK), and sync: GETHEADERS with a block locator, then GETBLOCKS in
    batches, each block handed to the local chainstore, which decides. A
    peer that sends malformed messages or invalid blocks loses score and
    is cut off for a while at -100. RESOLVE asks every peer, syncs from the
    one with most work and says what each peer answered, within a bounded
    time. The loop never waits for the chainstore (every call goes through
    cbus_caller with a deadline), so links stay alive while it is slow or
    stopped. The protocol is in docs/p2p.md; the files of the service are
    listed in cbus_peersync_private.h.
    =========================================================================
*/
#ifndef CBUS_PEERSYNC_H_INCLUDED
#define CBUS_PEERSYNC_H_INCLUDED

#include "cbus.h"

//  The actor; args is the node's cbus_config_t *.
void
    cbus_peersync_actor (zsock_t *pipe, void *args);

void
    cbus_peersync_test (bool verbose);

#endif
