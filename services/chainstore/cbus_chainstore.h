/*  =========================================================================
    cbus_chainstore - the chain's keeper: the only writer of its LevelDB

    Validates every block before storing it, connects it to the active
    chain in one synced WriteBatch (block, index record, height index, tx
    index, tip), and only then publishes chain.block.connected. Answers
    queries for the tip, blocks, pages of the chain and transactions.
    docs/bus.md lists every command with its fields and refusal codes;
    every body is decoded and encoded through its one definition in
    libcommon (cbus_msgs.h).

    The store (<data_dir>/chain, LevelDB) is cbus_chain's: its key
    layout and the block rules live in libcommon, shared with `chainbus
    verify` and `chainbus import`; this service only runs them.

    A class with an actor that runs it (Malamute's shape): the actor takes
    the node's configuration, so the same service runs in its own process
    (chainbus-chainstore) or in-process inside a test. Nothing a client
    sends, and nothing read from the disk, reaches an assert: a bad
    request gets a refusal with its code, a failed read a storage refusal.

    A full disk pauses the store (cbus_store.h): a block submitted
    meanwhile is refused at once (ERROR, code no_space) without being
    checked or written, TIP says why in its storage field, and the store
    is probed every CBUS_CHAINSTORE_PROBE_MS, so that it takes blocks
    again by itself once there is room. Each change is published as
    chain.storage, for the mempool and the miners to act on at once.
    =========================================================================
*/
#ifndef CBUS_CHAINSTORE_H_INCLUDED
#define CBUS_CHAINSTORE_H_INCLUDED

#include "cbus.h"

//  Most headers in one HEADERS answer (and hashes in BLOCKS.HAVE), most
//  blocks in one BLOCKS.GET, most entries in one HISTORY page.
#define CBUS_CHAINSTORE_HEADERS_MAX 2000
#define CBUS_CHAINSTORE_BLOCKS_MAX  500
#define CBUS_CHAINSTORE_HISTORY_MAX 100
//  BLOCKS.GET's byte budget when the request names none.
#define CBUS_CHAINSTORE_BLOCKS_GET_BYTES (8 * 1024 * 1024)
//  How often the store is probed (cbus_store_probe): a full disk pauses
//  it, and space that returns resumes it within this long.
#define CBUS_CHAINSTORE_PROBE_MS 1000

typedef struct _cbus_chainstore_t cbus_chainstore_t;

//  Open (creating) the chain in <data_dir>/chain, bind the chainstore
//  endpoint and connect to the bus's bus-in. config is borrowed, read
//  only here. NULL, with a log line saying why, if any of it fails.
cbus_chainstore_t *
    cbus_chainstore_new (cbus_config_t *config);
//  Close the chain and the sockets; safe twice, nulls the pointer.
void
    cbus_chainstore_destroy (cbus_chainstore_t **self_p);

//  The actor; args is the node's cbus_config_t * (borrowed: it must
//  outlive the actor). Signals the pipe once set up; if set-up failed,
//  then sends "FAILED" (cbus_service_fail) and returns. Ends on $TERM.
void
    cbus_chainstore_actor (zsock_t *pipe, void *args);

//  In-process test of the service (cbus_chainstore_test.c): the actor on
//  ipc endpoints in a temporary folder, a client over a real DEALER.
void
    cbus_chainstore_test (bool verbose);

#endif
