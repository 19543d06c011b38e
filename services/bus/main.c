//  chainbus-bus: the node's event bus (see cbus_bus.h).
//  --selftest [-v] runs the bus in-process between a publisher and a
//  subscriber.
#include "cbus_bus.h"

static const cbus_selftest_t s_tests [] = {
    { "cbus_bus", cbus_bus_test },
};

int
main (int argc, char *argv [])
{
    if (argc >= 2 && streq (argv [1], "--selftest"))
        return cbus_service_selftest (argc - 2, argv + 2, s_tests,
                                      sizeof (s_tests) / sizeof (s_tests [0]));
    return cbus_service_main (argc, argv, "bus", cbus_bus_actor);
}
