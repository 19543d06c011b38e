/*  =========================================================================
    cbus_net - `chainbus net`: a local network of whole nodes

    Starts N nodes (`chainbus node`, each a launcher and its services) on
    consecutive HTTP ports from a base port, each with its own data folder
    <data_dir>/node<i> and its output in <data_dir>/node<i>.log, all with
    the flags given to `chainbus net`. Once every node answers GET /status,
    registers each with all the others (POST /nodes/register), prints one
    line per node and "network ready", and stays in the foreground. A node
    that exits once the network runs is restarted, as the node's launcher
    restarts a service: after a backoff from 1 s that doubles while it
    keeps dying young, up to launcher/restart_max_ms; its peers are in its
    data folder. A node that exits 2 (its launcher stopped on a permanent
    start error) three times in a row is left stopped, said with its last
    log line; the others keep running. SIGINT or SIGTERM
    stops every node (SIGTERM, then SIGKILL after 15 s) and exits 0. A node
    that does not come up, or exits while the network starts, stops them
    all with a one-line reason and a non-zero exit.
    =========================================================================
*/
#ifndef CBUS_NET_H_INCLUDED
#define CBUS_NET_H_INCLUDED

#include "cbus.h"

#define CBUS_NET_MAX_NODES 16

//  Run nodes nodes from base_port. The configuration's data folder is
//  the network's; its other explicit flags go to every node (--http-port
//  and --p2p-port are refused: each node takes its own). Returns the
//  process exit code.
int
    cbus_net_run (cbus_config_t *config, int nodes, int base_port);

#endif
