//  chainbus-mempool: takes transactions in and asks for blocks (see cbus_mempool.h).
#include "cbus_mempool.h"
#include "cbus_pool.h"

int
main (int argc, char *argv [])
{
    //  --selftest [NAME] [-v]: the mempool's classes test themselves.
    if (argc >= 2 && streq (argv [1], "--selftest")) {
        const char *only = argc > 2 && argv [2][0] != '-' ? argv [2] : NULL;
        bool verbose = streq (argv [argc - 1], "-v");
        zsys_init ();
        if (!only || streq (only, "cbus_pool"))
            cbus_pool_test (verbose);
        if (!only || streq (only, "cbus_mempool"))
            cbus_mempool_test (verbose);
        return 0;
    }
    return cbus_service_main (argc, argv, "mempool", cbus_mempool_actor);
}
