//  chainbus-miner: proof-of-work search (see cbus_miner.h). Run as many as
//  you like: each picks its own miner id. --selftest [-v] runs the miner
//  in-process between a stand-in mempool and a stand-in chainstore.
#include "cbus_miner.h"

static const cbus_selftest_t s_tests [] = {
    { "cbus_miner", cbus_miner_test },
};

int
main (int argc, char *argv [])
{
    if (argc >= 2 && streq (argv [1], "--selftest"))
        return cbus_service_selftest (argc - 2, argv + 2, s_tests,
                                      sizeof (s_tests) / sizeof (s_tests [0]));
    return cbus_service_main (argc, argv, "miner", cbus_miner_actor);
}
