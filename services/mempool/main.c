//  chainbus-mempool: takes transactions in and asks for blocks (see cbus_mempool.h).
#include "cbus_mempool.h"
#include "cbus_pool.h"

int
main (int argc, char *argv [])
{
    if (argc >= 2 && streq (argv [1], "--selftest")) {
        zsys_init ();
        cbus_pool_test (argc > 2 && streq (argv [2], "-v"));
        return 0;
    }
    return cbus_service_main (argc, argv, "mempool", cbus_mempool_actor);
}
