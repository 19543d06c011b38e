/*  =========================================================================
    cbus_wallet - `chainbus key` and `chainbus tx`: a wallet on the command
    line

    key new FILE        make a keypair, write it to FILE (0600, never
                        replaced), print its public key
    key show FILE       print the public key of a key file
    tx sign ...         build and sign a transaction, print it as JSON
    tx send ...         the same, then POST it to a node, print its txid
    tx get TXID         print a node's answer for a transaction
    tx open TXID        print a sealed transaction's data, opened

    The wallet's flags are its own, not configuration keys: they are
    parsed here, and these commands read no configuration. Every failure
    is one line on stderr and a non-zero exit: 2 for a command line that
    is wrong, 1 for everything else (a bad key file, a node that cannot be
    reached or refuses, data that cannot be read). docs/transactions.md
    has the formats and a walkthrough.
    =========================================================================
*/
#ifndef CBUS_WALLET_H_INCLUDED
#define CBUS_WALLET_H_INCLUDED

#include "cbus.h"

//  Run `chainbus key ...` or `chainbus tx ...`: argv [0] is "key" or
//  "tx". Returns the process exit code.
int
    cbus_wallet_run (int argc, char **argv);

//  The wallet's part of `chainbus --help`.
void
    cbus_wallet_print_usage (FILE *stream);

#endif
