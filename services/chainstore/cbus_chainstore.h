/*  =========================================================================
    cbus_chainstore - the chain's keeper: the only writer of its LevelDB

    Validates every block before storing it, connects it to the active
    chain in one synced WriteBatch (block, index record, height index, tx
    index, tip), and only then publishes chain.block.connected. Answers
    queries for the tip, blocks, pages of the chain and transactions.

    LevelDB keys (one-byte prefix, Bitcoin Core's habit):
        'M'                 meta: network id and genesis hash
        'B' + hash          block bytes
        'I' + hash          index record: height, chain work, time, parent
        'H' + height (BE)   hash of the active block at that height
        'T' + txid          block hash + position of a confirmed tx
        'S'                 tip: hash of the active chain's last block
    =========================================================================
*/
#ifndef CBUS_CHAINSTORE_H_INCLUDED
#define CBUS_CHAINSTORE_H_INCLUDED

#include "cbus.h"

//  The actor; args is the node's cbus_config_t *.
void
    cbus_chainstore_actor (zsock_t *pipe, void *args);

#endif
