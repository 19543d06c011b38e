//  chainbus-miner: proof-of-work search (see cbus_miner.h). Run as many as
//  you like: each picks its own miner id.
#include "cbus_miner.h"

int
main (int argc, char *argv [])
{
    return cbus_service_main (argc, argv, "miner", cbus_miner_actor);
}
