//  chainbus-peersync: the node's peer list and links (see cbus_peersync.h).
#include "cbus_peersync.h"
#include "cbus_peers.h"
#include "cbus_identity.h"
#include "cbus_fetch.h"
#include "cbus_submitq.h"
#include "cbus_evict.h"
#include "cbus_bans.h"
#include <curl/curl.h>
#include <sys/resource.h>

int
main (int argc, char *argv [])
{
    //  libcurl's global state (and OpenSSL's under it) is set up once,
    //  before any thread, and torn down at exit.
    curl_global_init (CURL_GLOBAL_DEFAULT);
    int rc = 0;
    if (argc >= 2 && streq (argv [1], "--selftest")) {
        bool verbose = streq (argv [argc - 1], "-v");
        //  --selftest NAME runs one class; --selftest alone, all of them.
        const char *only = argc >= 3 && !streq (argv [2], "-v") ? argv [2] : NULL;
        zsys_init ();
        if (only && streq (only, "cbus_evict"))
            cbus_evict_test (verbose);
        else
        if (only && streq (only, "cbus_bans"))
            cbus_bans_test (verbose);
        else {
            cbus_peers_test (verbose);
            cbus_identity_test (verbose);
            cbus_fetch_test (verbose);
            cbus_submitq_test (verbose);
            cbus_peersync_test (verbose);
            cbus_evict_test (verbose);
            cbus_bans_test (verbose);
        }
    }
    else {
        //  Every peer connection is a descriptor: take what the hard limit
        //  allows (systemd's default soft limit is 1024; the unit raises it).
        struct rlimit limit;
        if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
            limit.rlim_cur = limit.rlim_max;
            setrlimit (RLIMIT_NOFILE, &limit);
        }
        rc = cbus_service_main (argc, argv, "peersync", cbus_peersync_actor);
    }
    curl_global_cleanup ();
    return rc;
}
