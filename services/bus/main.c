//  chainbus-bus: the node's event bus (see cbus_bus.h).
//  --selftest [-v] runs the bus in-process between a publisher and a
//  subscriber.
#include "cbus_bus.h"

int
main (int argc, char *argv [])
{
    if (argc >= 2 && streq (argv [1], "--selftest")) {
        zsys_init ();
        cbus_bus_test (argc > 2 && streq (argv [2], "-v"));
        return 0;
    }
    return cbus_service_main (argc, argv, "bus", cbus_bus_actor);
}
