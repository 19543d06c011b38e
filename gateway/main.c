/*  =========================================================================
    chainbus-gateway - the node's HTTP API and dashboard
    =========================================================================
*/
#include "cbus_gateway.h"
#include "cbus_heartbeats.h"
#include "cbus_www.h"
#include "cbus_gw_frame.h"
#include "cbus_gw_guard.h"
#include "cbus_gw_drain.h"

int
main (int argc, char *argv [])
{
    //  --selftest [NAME] [-v]: the gateway's own classes test themselves.
    if (argc >= 2 && streq (argv [1], "--selftest")) {
        const char *only = argc > 2 && argv [2][0] != '-' ? argv [2] : NULL;
        bool verbose = streq (argv [argc - 1], "-v");
        zsys_init ();
        if (!only || streq (only, "cbus_heartbeats"))
            cbus_heartbeats_test (verbose);
        if (!only || streq (only, "cbus_www"))
            cbus_www_test (verbose);
        if (!only || streq (only, "cbus_gw_frame"))
            cbus_gw_frame_test (verbose);
        if (!only || streq (only, "cbus_gw_guard"))
            cbus_gw_guard_test (verbose);
        if (!only || streq (only, "cbus_gw_drain"))
            cbus_gw_drain_test (verbose);
        return 0;
    }
    return cbus_service_main (argc, argv, "gateway", cbus_gateway_actor);
}
