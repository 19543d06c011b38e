/*  =========================================================================
    cbus_verify - `chainbus verify`: audit a stopped node's chain store

    Re-checks the active chain from genesis with the chainstore's own rules
    (links, proof of work, merkle roots, signatures, times, work, no
    transaction twice) and checks every index the chainstore keeps against
    the blocks: the height index ('H'), the block index ('I'), the
    transaction index ('T'), the user and key history ('U', 'K') and the
    tip ('S'), both ways: what the blocks imply must be there, and nothing
    else may be. The store is opened directly, so the node must be stopped
    (its chainstore holds LevelDB's lock). Every problem is reported, one
    line each, naming the block by height and hash and the transaction by
    position and txid when a transaction is at fault. Memory holds one
    block and one small record per confirmed transaction.
    =========================================================================
*/
#ifndef CBUS_VERIFY_H_INCLUDED
#define CBUS_VERIFY_H_INCLUDED

#include "cbus.h"

//  Exit codes: the chain is sound, problems were found, or it could not
//  be audited (usage, no store, a running node, another network).
#define CBUS_VERIFY_SOUND     0
#define CBUS_VERIFY_PROBLEMS  1
#define CBUS_VERIFY_REFUSED   2

//  Audit the chain store of the data folder the configuration names.
//  Problems and the summary go to stdout, a refusal to stderr (one
//  line). Returns the exit code.
int
    cbus_verify_run (cbus_config_t *config);

//  `chainbus verify [flags]` whole: argv [0] is "verify"; the flags are
//  the configuration's (--data-dir, --network, --pow-bits, --config).
//  Returns the exit code.
int
    cbus_verify_main (int argc, char **argv);

#endif
