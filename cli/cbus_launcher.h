/*  =========================================================================
    cbus_launcher - `chainbus node`: a whole node as child processes

    Starts the bus, chainstore, mempool, peersync, the miners and the
    gateway from the directory the chainbus binary lives in, passing each
    the launcher's own flags. A child that dies is restarted after a
    backoff that doubles while it keeps dying young (logged each time).
    A child that exits 2 (a permanent start error) three times in a row,
    young, stops the node: every child is stopped and the launcher exits
    2 with the child's name and first error lines on its standard error.
    The children's output passes through the launcher (a pipe each), line
    by line, onto its standard output. SIGTERM or SIGINT stops every child
    (SIGTERM, then SIGKILL after a grace period) and the launcher exits 0.
    A lock file in the run folder keeps two nodes off one data directory.
    =========================================================================
*/
#ifndef CBUS_LAUNCHER_H_INCLUDED
#define CBUS_LAUNCHER_H_INCLUDED

#include "cbus.h"

//  Run the node in the foreground; returns the process exit code.
int
    cbus_launcher_run (cbus_config_t *config);

#endif
