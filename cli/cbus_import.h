/*  =========================================================================
    cbus_import - `chainbus import`: a chain from a JSON file into an empty
    data folder

    Reads a file in the GET /chain shape (as `chainbus export` writes it),
    checks that its first block is this network's genesis, then rebuilds
    every further block from its JSON and submits it to a new chain store
    in <data_dir>/chain.import with the chainstore's own rules (proof of
    work, merkle root, signatures, times, no transaction twice). Each block
    must extend the one before it. Any refusal names the block, removes the
    temporary store and exits non-zero; success renames it to
    <data_dir>/chain. Refuses a data folder that already holds a chain, or
    one a node is running on.
    =========================================================================
*/
#ifndef CBUS_IMPORT_H_INCLUDED
#define CBUS_IMPORT_H_INCLUDED

#include "cbus.h"

//  Import path ("-": stdin) into the configuration's data folder. Prints
//  a one-line summary, or a one-line reason, to stderr. Returns the
//  process exit code.
int
    cbus_import_run (cbus_config_t *config, const char *path);

#endif
