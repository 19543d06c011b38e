//  chainbus-chainstore: the chain's keeper (see cbus_chainstore.h).
//  --selftest [-v] runs the service in-process against a client.
#include "cbus_chainstore.h"
#include <sodium.h>

int
main (int argc, char *argv [])
{
    if (argc >= 2 && streq (argv [1], "--selftest")) {
        if (sodium_init () < 0)
            return 1;
        zsys_init ();
        cbus_chainstore_test (argc > 2 && streq (argv [2], "-v"));
        return 0;
    }
    return cbus_service_main (argc, argv, "chainstore", cbus_chainstore_actor);
}
