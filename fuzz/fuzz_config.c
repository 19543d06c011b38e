/*  =========================================================================
    fuzz_config - a config file (ZPL, read with CZMQ's zconfig): written
    to a scratch file and given to cbus_config_new as --config, as every
    program is started; what it accepts is read back, key by key.
    =========================================================================
*/
#include "fuzz.h"

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc; (void) argv;
    fuzz_init ();
    return 0;
}

static const char *s_strings [] = {
    "node/data_dir", "node/network", "gateway/http_bind", "gateway/www_dir",
    "gateway/admin_token_file", "peersync/p2p_bind", "peersync/p2p_advertise"
};
static const char *s_ints [] = {
    "node/pow_bits", "gateway/http_port", "gateway/max_body", "gateway/max_connections",
    "mempool/max_pending", "chainstore/cache_mb", "miner/id", "peersync/p2p_port"
};

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file ("chainbus.cfg", data, size, 0600);
    char *argv [] = { (char *) "fuzz_config", (char *) "--config", (char *) path, NULL };
    char reason [CBUS_REASON_MAX];
    cbus_config_t *config = cbus_config_new (3, argv, reason);
    if (!config) {
        FUZZ_CHECK (memchr (reason, 0, sizeof (reason)));
        return 0;
    }
    for (size_t index = 0; index < sizeof (s_strings) / sizeof (s_strings [0]); index++) {
        const char *value = cbus_config_str (config, s_strings [index]);
        FUZZ_CHECK (value);
        fuzz_touch (value, strlen (value));
    }
    for (size_t index = 0; index < sizeof (s_ints) / sizeof (s_ints [0]); index++)
        (void) cbus_config_int (config, s_ints [index]);
    (void) cbus_config_bool (config, "node/verbose");
    const char *data_dir = cbus_config_data_dir (config);
    FUZZ_CHECK (data_dir && *data_dir == '/');
    char *endpoint = cbus_config_endpoint (config, "bus-in");
    FUZZ_CHECK (endpoint);
    zstr_free (&endpoint);
    zlist_t *args = cbus_config_child_args (config);
    FUZZ_CHECK (args);
    zlist_destroy (&args);
    cbus_config_destroy (&config);
    return 0;
}
