/*  =========================================================================
    chainbus - the node's command-line tool

    chainbus node [flags]            a whole node in the foreground
    chainbus tap [flags] [PREFIX]    print bus events as JSON lines
    chainbus config                  print the default configuration (ZPL)
    chainbus version
    =========================================================================
*/
#include "cbus.h"
#include "cbus_launcher.h"
#include "cbus_tap.h"

static void
s_usage (FILE *stream)
{
    fprintf (stream,
        "usage: chainbus COMMAND [flags]\n\n"
        "commands:\n"
        "  node [flags]             run a whole node in the foreground (Ctrl-C stops it)\n"
        "  tap [flags] [PREFIX]     print bus events (topics starting with PREFIX) as JSON lines\n"
        "  config                   print the default configuration file\n"
        "  version                  print the version\n\n"
        "flags (every command that reads the configuration):\n");
    cbus_config_print_help (stream);
}

int
main (int argc, char *argv [])
{
    if (argc < 2 || streq (argv [1], "--help") || streq (argv [1], "-h") || streq (argv [1], "help")) {
        s_usage (argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *command = argv [1];
    if (streq (command, "version")) {
        printf ("chainbus %s\n", CBUS_VERSION);
        return 0;
    }
    if (streq (command, "config")) {
        cbus_config_print_zpl (stdout);
        return 0;
    }
    if (!streq (command, "node") && !streq (command, "tap")) {
        fprintf (stderr, "chainbus: unknown command '%s' (see chainbus --help)\n", command);
        return 2;
    }
    for (int arg = 2; arg < argc; arg++)
        if (streq (argv [arg], "--help") || streq (argv [arg], "-h")) {
            s_usage (stdout);
            return 0;
        }
    char reason [CBUS_REASON_MAX];
    //  argv [1] is the command: the configuration reads what follows it.
    cbus_config_t *config = cbus_config_new_with_args (argc - 1, argv + 1, reason);
    if (!config) {
        fprintf (stderr, "chainbus %s: %s\n", command, reason);
        return 2;
    }
    int rc;
    if (streq (command, "node")) {
        if (cbus_config_arg_count (config) > 0) {
            fprintf (stderr, "chainbus node: unexpected argument '%s'\n", cbus_config_arg (config, 0));
            rc = 2;
        }
        else {
            //  The launcher takes its signals itself.
            zsys_handler_set (NULL);
            zsys_init ();
            zsys_set_logident ("chainbus-node");
            rc = cbus_launcher_run (config);
        }
    }
    else {
        if (cbus_config_arg_count (config) > 1) {
            fprintf (stderr, "chainbus tap: one topic prefix at most\n");
            rc = 2;
        }
        else {
            zsys_init ();
            const char *prefix = cbus_config_arg_count (config) ? cbus_config_arg (config, 0) : "";
            rc = cbus_tap_run (config, prefix);
        }
    }
    cbus_config_destroy (&config);
    return rc;
}
