//  chainbus-peersync: the node's peer list and links (see cbus_peersync.h).
#include "cbus_peersync.h"
#include "cbus_peers.h"

int
main (int argc, char *argv [])
{
    if (argc >= 2 && streq (argv [1], "--selftest")) {
        zsys_init ();
        cbus_peers_test (argc > 2 && streq (argv [2], "-v"));
        return 0;
    }
    return cbus_service_main (argc, argv, "peersync", cbus_peersync_actor);
}
