/*  =========================================================================
    cbus_identity - this node's long-term CurveZMQ keypair and node id

    Created on first start in <data_dir>/node.key (mode 0600, written
    atomically), read back on every start. The node id is the first eight
    bytes of the SHA-256 of the public key, in hex: short enough for logs,
    and bound to the key that authenticates the node's links.
    =========================================================================
*/
#ifndef CBUS_IDENTITY_H_INCLUDED
#define CBUS_IDENTITY_H_INCLUDED

#include "cbus.h"

typedef struct _cbus_identity_t cbus_identity_t;

//  Load the keypair at path, creating it if the file does not exist.
//  NULL with a reason if the file exists but is not a valid key.
cbus_identity_t *
    cbus_identity_new (const char *path, char *reason);
void
    cbus_identity_destroy (cbus_identity_t **self_p);
//  Public key as 40 Z85 characters (borrowed).
const char *
    cbus_identity_public (cbus_identity_t *self);
//  Node id: 16 hex digits (borrowed).
const char *
    cbus_identity_node_id (cbus_identity_t *self);
//  Make a socket a CurveZMQ server, or a client of server_key (Z85), with
//  this keypair.
void
    cbus_identity_apply_server (cbus_identity_t *self, zsock_t *socket);
void
    cbus_identity_apply_client (cbus_identity_t *self, zsock_t *socket, const char *server_key);

void
    cbus_identity_test (bool verbose);

#endif
