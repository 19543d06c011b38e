/*  =========================================================================
    cbus_export - `chainbus export`: a node's chain as one JSON file

    Writes {"chain": [...], "length": n}, byte for byte what GET /chain
    answers, from a running node (its chainstore, page by page up to the
    tip pinned at the start) or from a stopped node's store (opened
    directly, refused if it belongs to another network). The file is
    written to a temporary name beside it, synced and renamed, so a failed
    export leaves no partial file; "-" writes to standard output. Memory
    holds one block at a time whatever the chain's length.
    =========================================================================
*/
#ifndef CBUS_EXPORT_H_INCLUDED
#define CBUS_EXPORT_H_INCLUDED

#include "cbus.h"

//  Export the chain of the node whose data folder the configuration
//  names into path ("-": stdout). Prints a one-line summary, or a
//  one-line reason, to stderr. Returns the process exit code.
int
    cbus_export_run (cbus_config_t *config, const char *path);

#endif
