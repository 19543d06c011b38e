//  chainbus-peersync: the node's peer list and links (see cbus_peersync.h).
#include "cbus_peersync.h"
#include "cbus_peers.h"
#include "cbus_identity.h"
#include "cbus_fetch.h"

int
main (int argc, char *argv [])
{
    if (argc >= 2 && streq (argv [1], "--selftest")) {
        bool verbose = streq (argv [argc - 1], "-v");
        zsys_init ();
        cbus_peers_test (verbose);
        cbus_identity_test (verbose);
        cbus_fetch_test (verbose);
        return 0;
    }
    return cbus_service_main (argc, argv, "peersync", cbus_peersync_actor);
}
