/*  =========================================================================
    cbus_peers - the node's list of peers, kept in a file in the data dir

    Peers are given as the seed's gateway URLs (http://host:port), bare
    host:port (read as http://), or direct sync endpoints (tcp://host:port).
    Each is normalised (lower-case host, no trailing slash) so that one
    peer is listed once however it was written. The list is rewritten
    atomically on every change and survives restarts.
    =========================================================================
*/
#ifndef CBUS_PEERS_H_INCLUDED
#define CBUS_PEERS_H_INCLUDED

#include "cbus.h"

typedef struct _cbus_peers_t cbus_peers_t;

//  Longest normalised address.
#define CBUS_PEER_ADDRESS_MAX 280

//  Normalise an address into out (CBUS_PEER_ADDRESS_MAX bytes). Returns
//  0, or -1 with a reason for anything that is not one of the three forms.
int
    cbus_peers_normalize (const char *text, size_t size, char *out, char *reason)
    __attribute__ ((warn_unused_result));

//  Load the list from path (missing file: empty list). Lines that do not
//  normalise are dropped and logged.
cbus_peers_t *
    cbus_peers_new (const char *path);
void
    cbus_peers_destroy (cbus_peers_t **self_p);
//  Add normalised addresses (all or none) and save. Returns the number
//  added (0 if all were known), or -1 if the file could not be written.
int
    cbus_peers_add (cbus_peers_t *self, zlist_t *addresses);
//  Remove a normalised address and save. Returns 1 if it was listed, 0
//  if not, -1 (and the list unchanged) if the file could not be written.
int
    cbus_peers_remove (cbus_peers_t *self, const char *address);
//  True if a normalised address is listed.
bool
    cbus_peers_has (cbus_peers_t *self, const char *address);
size_t
    cbus_peers_size (cbus_peers_t *self);
//  Walk the list (borrowed strings, in the order they were added).
const char *
    cbus_peers_first (cbus_peers_t *self);
const char *
    cbus_peers_next (cbus_peers_t *self);

void
    cbus_peers_test (bool verbose);

#endif
