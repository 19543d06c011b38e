/*  =========================================================================
    cbus_chainstore_backup - STORE.BACKUP: a point-in-time copy of the chain

    `chainbus backup` asks the chainstore for a copy of its store at a
    path of the caller's (absolute, not there yet). The snapshot is taken
    when the request is handled, on the loop, so the copy holds every
    block connected before and none after; the copy is written by
    cbus_store_copy's thread and answered from the loop once it is
    durable, with the tip it holds. One copy at a time: another request
    meanwhile is refused FULL (full). The loop never waits for the copy.
    STORE.BACKUP.CANCEL stops a copy and removes what it wrote (chainbus
    backup sends it when it gives up). With after_tip (the pool copy's
    tip) the copy is refused stale unless that block is on the active
    chain. Both are taken only from this machine (cbus_store_copy_local).
    A copy that finds a table LevelDB reports corrupt marks the store
    damaged, as a read does.
    =========================================================================
*/
#ifndef CBUS_CHAINSTORE_BACKUP_H_INCLUDED
#define CBUS_CHAINSTORE_BACKUP_H_INCLUDED

#include "cbus.h"

typedef struct _cbus_chainstore_backup_t cbus_chainstore_backup_t;

//  Serve STORE.BACKUP for chain on router, from loop (all borrowed;
//  destroy this before the loop). NULL if out of memory.
cbus_chainstore_backup_t *
    cbus_chainstore_backup_new (zloop_t *loop, zsock_t *router, cbus_chain_t *chain,
                                char *damaged, size_t damaged_size);
//  Stop a copy in progress (its requester gets no answer; what it wrote
//  is removed) and free; nulls the pointer.
void
    cbus_chainstore_backup_destroy (cbus_chainstore_backup_t **self_p);
//  Handle one STORE.BACKUP request (borrowed; answered now if refused,
//  else once the copy ended).
void
    cbus_chainstore_backup_handle (cbus_chainstore_backup_t *self, cbus_request_t *request);
//  STORE.BACKUP.CANCEL: stop the copy being written at the path given and
//  remove what it wrote, then answer {cancelled}.
void
    cbus_chainstore_backup_cancel (cbus_chainstore_backup_t *self, cbus_request_t *request);

#endif
