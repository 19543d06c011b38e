/*  =========================================================================
    cbus_chainstore_read - the chainstore's explorer reads

    Read-only commands answered on the chainstore's loop, from its chain
    (docs/bus.md has their fields):

      HISTORY     a page of a user's or a key's confirmed transactions
      BLOCK.LIST  summaries of active blocks, newest first, from the tip
                  or below a height: header, transaction count, size in
                  bytes, confirmations; never the transactions
      BLOCK.TXS   one block's summary and a slice of its transactions
                  (start, limit; at most CBUS_CHAINSTORE_TXS_MAX and
                  about CBUS_CHAINSTORE_TXS_BYTES a reply)

    A summary (header, transaction count, size) comes from a small
    table keyed by the block hash (a block never changes), else from the
    block's summary record ('C', cbus_layout.h: written with the block),
    so that listing blocks never reads one, after a restart too. A block
    stored before those records (or with a bad one) is read once (the
    count from the msgpack array header, in place) and its record is
    written then, after the reply (not synced).
    A failed read is answered through the chainstore's storage refusal
    (which marks the store damaged on corruption).
    =========================================================================
*/
#ifndef CBUS_CHAINSTORE_READ_H_INCLUDED
#define CBUS_CHAINSTORE_READ_H_INCLUDED

#include "cbus.h"

//  Most summaries in one BLOCK.LIST, most transactions in one BLOCK.TXS,
//  and the bytes of transactions after which a BLOCK.TXS reply stops.
#define CBUS_CHAINSTORE_LIST_MAX    100
#define CBUS_CHAINSTORE_TXS_MAX     500
#define CBUS_CHAINSTORE_TXS_BYTES   (4 * 1024 * 1024)

typedef struct _cbus_chainstore_read_t cbus_chainstore_read_t;

//  The chainstore's refusal of a read the store failed (what: the thing
//  read, for the reason).
typedef void (cbus_chainstore_refuse_fn) (void *arg, cbus_request_t *request, const char *what);

//  Serve the reads for chain on router (both borrowed). NULL if out of
//  memory.
cbus_chainstore_read_t *
    cbus_chainstore_read_new (zsock_t *router, cbus_chain_t *chain,
                              cbus_chainstore_refuse_fn *refuse_storage, void *arg);
void
    cbus_chainstore_read_destroy (cbus_chainstore_read_t **self_p);
//  Answer request if it is one of the commands above and return true;
//  false (request untouched) for any other. The request stays the
//  caller's.
bool
    cbus_chainstore_read_handle (cbus_chainstore_read_t *self, cbus_request_t *request);

#endif
