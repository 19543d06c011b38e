/*  =========================================================================
    cbus_service_key - `chainbus service-key`: the keys of tcp endpoints

    chainbus service-key [flags]           print the node's service public
                                           key (made if there is none yet):
                                           a remote service's server_key
    chainbus service-key new FILE          make a keypair for a service on
                                           another machine (mode 0600, never
                                           replaced) and print its public
                                           key: a line of the node's allowlist
    chainbus service-key show FILE         print the public key of FILE
    =========================================================================
*/
#ifndef CBUS_SERVICE_KEY_H_INCLUDED
#define CBUS_SERVICE_KEY_H_INCLUDED

#include "cbus.h"

//  Run the command on the configuration's positional arguments; returns
//  the exit code (2 for bad arguments or a bad key file).
int
    cbus_service_key_run (cbus_config_t *config);

#endif
