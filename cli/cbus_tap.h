/*  =========================================================================
    cbus_tap - `chainbus tap`: every bus event as one JSON line

    Subscribes to the node's bus (optionally to a topic prefix) and
    prints each event as {"topic", "sequence", "body"} with binary fields
    in hex, one line each, flushed, until interrupted.
    =========================================================================
*/
#ifndef CBUS_TAP_H_INCLUDED
#define CBUS_TAP_H_INCLUDED

#include "cbus.h"

//  Run the tap; returns the process exit code.
int
    cbus_tap_run (cbus_config_t *config, const char *prefix);

#endif
