//  chainbus-chainstore: the chain's keeper (see cbus_chainstore.h).
//  --selftest [-v] runs the service in-process against a client.
#include "cbus_chainstore.h"

static const cbus_selftest_t s_tests [] = {
    { "cbus_chainstore", cbus_chainstore_test },
};

int
main (int argc, char *argv [])
{
    if (argc >= 2 && streq (argv [1], "--selftest"))
        return cbus_service_selftest (argc - 2, argv + 2, s_tests,
                                      sizeof (s_tests) / sizeof (s_tests [0]));
    return cbus_service_main (argc, argv, "chainstore", cbus_chainstore_actor);
}
