//  chainbus-bus: the node's event bus (see cbus_bus.h).
#include "cbus_bus.h"

int
main (int argc, char *argv [])
{
    return cbus_service_main (argc, argv, "bus", cbus_bus_actor);
}
