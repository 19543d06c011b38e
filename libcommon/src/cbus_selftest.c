/*  =========================================================================
    cbus_selftest - runs the self-tests of libcommon's classes

    Usage: cbus_selftest [-v] [--test NAME]   (all classes when no NAME)
           cbus_selftest --messages          (every bus message and its fields)
    =========================================================================
*/
#include "cbus.h"
#include <sodium.h>

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_test_t;

static const s_test_t s_tests [] = {
    { "cbus_util",   cbus_util_test },
    { "cbus_code",   cbus_code_test },
    { "cbus_pack",   cbus_pack_test },
    { "cbus_hash",   cbus_hash_test },
    { "cbus_pow",    cbus_pow_test },
    { "cbus_json",   cbus_json_test },
    { "cbus_tx",     cbus_tx_test },
    { "cbus_key",    cbus_key_test },
    { "cbus_seal",   cbus_seal_test },
    { "cbus_block",  cbus_block_test },
    { "cbus_msg",    cbus_msg_test },
    { "cbus_msgs",   cbus_msgs_test },
    { "cbus_calls",  cbus_calls_test },
    { "cbus_caller", cbus_caller_test },
    { "cbus_config", cbus_config_test },
    { "cbus_store",  cbus_store_test },
    { "cbus_layout", cbus_layout_test },
    { "cbus_chain",  cbus_chain_test },
};

int
main (int argc, char *argv [])
{
    bool verbose = false;
    const char *only = NULL;
    for (int arg = 1; arg < argc; arg++) {
        if (streq (argv [arg], "-v"))
            verbose = true;
        else
        if (streq (argv [arg], "--test") && arg + 1 < argc)
            only = argv [++arg];
        else
        if (streq (argv [arg], "--messages")) {
            cbus_msgs_print (stdout);       //  For docs/bus.md's test
            return 0;
        }
        else
        if (streq (argv [arg], "--list")) {
            for (size_t index = 0; index < sizeof (s_tests) / sizeof (s_tests [0]); index++)
                puts (s_tests [index].name);
            return 0;
        }
        else {
            fprintf (stderr, "usage: cbus_selftest [-v] [--list] [--messages] [--test NAME]\n");
            return 2;
        }
    }
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    bool found = false;
    for (size_t index = 0; index < sizeof (s_tests) / sizeof (s_tests [0]); index++)
        if (!only || streq (only, s_tests [index].name)) {
            s_tests [index].test (verbose);
            found = true;
        }
    if (!found) {
        fprintf (stderr, "cbus_selftest: no test named %s\n", only);
        return 2;
    }
    return 0;
}
