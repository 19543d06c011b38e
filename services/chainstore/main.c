//  chainbus-chainstore: the chain's keeper (see cbus_chainstore.h).
#include "cbus_chainstore.h"
#include "cbus_chain.h"

int
main (int argc, char *argv [])
{
    if (argc >= 2 && streq (argv [1], "--selftest")) {
        zsys_init ();
        cbus_chain_test (argc > 2 && streq (argv [2], "-v"));
        return 0;
    }
    return cbus_service_main (argc, argv, "chainstore", cbus_chainstore_actor);
}
