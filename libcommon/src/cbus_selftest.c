/*  =========================================================================
    cbus_selftest - runs the self-tests of libcommon's classes

    Usage: cbus_selftest [-v] [--test NAME]   (all classes when no NAME)
           cbus_selftest --messages          (every bus message and its fields)
           cbus_selftest --metrics           (every metric: name type labels help)
    =========================================================================
*/
#include "cbus.h"

static const cbus_selftest_t s_tests [] = {
    { "cbus_util",   cbus_util_test },
    { "cbus_code",   cbus_code_test },
    { "cbus_pack",   cbus_pack_test },
    { "cbus_hash",   cbus_hash_test },
    { "cbus_sha256", cbus_sha256_test },
    { "cbus_pow",    cbus_pow_test },
    { "cbus_json",   cbus_json_test },
    { "cbus_tx",     cbus_tx_test },
    { "cbus_key",    cbus_key_test },
    { "cbus_seal",   cbus_seal_test },
    { "cbus_block",  cbus_block_test },
    { "cbus_msg",    cbus_msg_test },
    { "cbus_msgs",   cbus_msgs_test },
    { "cbus_metrics", cbus_metrics_test },
    { "cbus_calls",  cbus_calls_test },
    { "cbus_caller", cbus_caller_test },
    { "cbus_config", cbus_config_test },
    { "cbus_keyfile", cbus_keyfile_test },
    { "cbus_endpoint", cbus_endpoint_test },
    { "cbus_store",  cbus_store_test },
    { "cbus_store_copy", cbus_store_copy_test },
    { "cbus_layout", cbus_layout_test },
    { "cbus_chain",  cbus_chain_test },
};

int
main (int argc, char *argv [])
{
    if (argc == 2 && streq (argv [1], "--messages")) {
        cbus_msgs_print (stdout);           //  For docs/bus.md's test
        return 0;
    }
    if (argc == 2 && streq (argv [1], "--metrics")) {
        cbus_metrics_print (stdout);        //  For docs/operations.md's test
        return 0;
    }
    //  --test NAME is the older spelling of a bare NAME.
    char *args [argc];
    int count = 0;
    for (int arg = 1; arg < argc; arg++)
        if (!streq (argv [arg], "--test"))
            args [count++] = argv [arg];
    return cbus_service_selftest (count, args, s_tests, sizeof (s_tests) / sizeof (s_tests [0]));
}
