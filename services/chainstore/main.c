//  chainbus-chainstore: the chain's keeper (see cbus_chainstore.h).
#include "cbus_chainstore.h"

int
main (int argc, char *argv [])
{
    return cbus_service_main (argc, argv, "chainstore", cbus_chainstore_actor);
}
