//  chainbus-miner: proof-of-work search (see cbus_miner.h). Run as many as
//  you like: each picks its own miner id. --selftest [-v] runs the miner
//  in-process between a stand-in mempool and a stand-in chainstore.
#include "cbus_miner.h"
#include <sodium.h>

int
main (int argc, char *argv [])
{
    if (argc >= 2 && streq (argv [1], "--selftest")) {
        if (sodium_init () < 0)
            return 1;
        zsys_init ();
        cbus_miner_test (argc > 2 && streq (argv [2], "-v"));
        return 0;
    }
    return cbus_service_main (argc, argv, "miner", cbus_miner_actor);
}
