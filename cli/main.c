/*  =========================================================================
    chainbus - the node's command-line tool

    chainbus node [flags]            a whole node in the foreground
    chainbus net --nodes N [flags]   N whole nodes on one machine, peered
    chainbus export --json FILE      a node's chain as JSON (GET /chain)
    chainbus import --json FILE      such a file into an empty data folder
    chainbus backup --out DIR        a running node's consistent copy
    chainbus restore --from DIR      such a copy into a new data folder
    chainbus tap [flags] [PREFIX]    print bus events as JSON lines
    chainbus service-key [new|show FILE]  keys of tcp service endpoints
    chainbus key new|show FILE       a wallet's keypair
    chainbus tx sign|send|get|open   a wallet's transactions
    chainbus config                  print the default configuration (ZPL)
    chainbus version
    =========================================================================
*/
#include "cbus.h"
#include "cbus_launcher.h"
#include "cbus_tap.h"
#include "cbus_service_key.h"
#include "cbus_export.h"
#include "cbus_import.h"
#include "cbus_net.h"
#include "cbus_verify.h"
#include "cbus_backup.h"
#include "cbus_wallet.h"

static void
s_usage (FILE *stream)
{
    fprintf (stream,
        "usage: chainbus COMMAND [flags]\n\n"
        "commands:\n"
        "  node [flags]             run a whole node in the foreground (Ctrl-C stops it)\n"
        "  net --nodes N [--base-port P] [--data-dir D] [flags]\n"
        "                           run N nodes (1-16) on HTTP ports P.. (default 5000),\n"
        "                           folders D/node1.. (default ./chainbus-net), registered\n"
        "                           with each other; other flags go to every node\n"
        "  export --json FILE [flags]\n"
        "                           write the chain of the node at --data-dir as JSON\n"
        "                           (the GET /chain document; FILE - is stdout)\n"
        "  import --json FILE [flags]\n"
        "                           validate a chain exported as JSON into a data folder\n"
        "                           without one (give the node's --network, --pow-bits)\n"
        "  verify [flags]           re-check a stopped node's chain store from genesis\n"
        "  backup --out DIR [flags] copy the running node at --data-dir into DIR (new or\n"
        "                           empty): its stores at one point in time, peers, keys\n"
        "  restore --from DIR [flags]\n"
        "                           restore a backup into --data-dir (new or empty)\n"
        "  tap [flags] [PREFIX]     print bus events (topics starting with PREFIX) as JSON lines\n"
        "  service-key [flags]      print the node's service public key (made if none yet)\n"
        "  service-key new FILE     make a keypair for a service on another machine, print\n"
        "                           its public key (a line for the node's allowlist)\n"
        "  service-key show FILE    print the public key of a keypair file\n"
        "  config                   print the default configuration file\n"
        "  version                  print the version\n\n"
        "wallet commands (they take only the flags shown, and read no configuration):\n");
    cbus_wallet_print_usage (stream);
    fprintf (stream, "\nflags (every command that reads the configuration):\n");
    cbus_config_print_help (stream);
}

//  Take every "--name value" or "--name=value" out of argv, shifting the
//  rest down. Returns the last value given (borrowed from argv), NULL if
//  none; *bad is set when the flag was given without a value.
static const char *
s_take_flag (int *argc_p, char **argv, const char *name, bool *bad)
{
    const char *value = NULL;
    size_t length = strlen (name);
    int arg = 1;
    while (arg < *argc_p) {
        const char *word = argv [arg];
        int taken = 0;
        if (strncmp (word, "--", 2) == 0 && strncmp (word + 2, name, length) == 0) {
            const char *rest = word + 2 + length;
            if (*rest == '=') {
                value = rest + 1;
                taken = 1;
            }
            else
            if (*rest == 0) {
                if (arg + 1 < *argc_p) {
                    value = argv [arg + 1];
                    taken = 2;
                }
                else {
                    *bad = true;
                    taken = 1;
                }
            }
        }
        if (taken) {
            memmove (argv + arg, argv + arg + taken, (size_t) (*argc_p - arg - taken) * sizeof (char *));
            *argc_p -= taken;
        }
        else
            arg++;
    }
    return value;
}

//  A whole decimal number in [min, max], or -1.
static int
s_number (const char *text, int min, int max)
{
    char *end = NULL;
    errno = 0;
    long value = strtol (text, &end, 10);
    if (!*text || *end || errno || value < min || value > max)
        return -1;
    return (int) value;
}

//  The flags of export, import and net that are not the configuration's.
typedef struct {
    const char *json;           //  export, import: --json FILE
    const char *folder;         //  backup: --out DIR, restore: --from DIR
    int nodes;                  //  net: --nodes N
    int base_port;              //  net: --base-port P
} s_own_flags_t;

//  Take a command's own flags out of args (count entries; room for two
//  more), before the configuration reads the rest. -1 with a line on
//  stderr if they are wrong.
static int
s_take_own_flags (const char *command, int *count, char **args, s_own_flags_t *own)
{
    bool bad = false;
    if (streq (command, "export") || streq (command, "import")) {
        own->json = s_take_flag (count, args, "json", &bad);
        if (!own->json) {
            fprintf (stderr, "chainbus %s: --json FILE is required\n", command);
            return -1;
        }
    }
    else
    if (streq (command, "backup") || streq (command, "restore")) {
        const char *flag = streq (command, "backup") ? "out" : "from";
        own->folder = s_take_flag (count, args, flag, &bad);
        if (!own->folder && !bad) {
            fprintf (stderr, "chainbus %s: --%s DIR is required\n", command, flag);
            return -1;
        }
    }
    else
    if (streq (command, "net")) {
        const char *text = s_take_flag (count, args, "nodes", &bad);
        own->nodes = text? s_number (text, 1, CBUS_NET_MAX_NODES): -1;
        if (own->nodes < 0 && !bad) {
            fprintf (stderr, "chainbus net: --nodes N is required, N from 1 to %d\n",
                     CBUS_NET_MAX_NODES);
            return -1;
        }
        text = s_take_flag (count, args, "base-port", &bad);
        if (text && (own->base_port = s_number (text, 1, 65535)) < 0) {
            fprintf (stderr, "chainbus net: --base-port must be a port number\n");
            return -1;
        }
        //  The network's folder; each node's is inside it.
        bool given = false;
        for (int arg = 1; arg < *count; arg++)
            if (strncmp (args [arg], "--data-dir", 10) == 0)
                given = true;
        if (!given) {
            args [(*count)++] = "--data-dir";
            args [(*count)++] = "./chainbus-net";
        }
    }
    if (bad) {
        fprintf (stderr, "chainbus %s: a flag needs a value\n", command);
        return -1;
    }
    return 0;
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
    if (streq (command, "verify"))
        return cbus_verify_main (argc - 1, argv + 1);
    if (!streq (command, "node") && !streq (command, "tap") && !streq (command, "net")
    &&  !streq (command, "export") && !streq (command, "import")
    &&  !streq (command, "key") && !streq (command, "tx")
    &&  !streq (command, "service-key")
    &&  !streq (command, "backup") && !streq (command, "restore")) {
        fprintf (stderr, "chainbus: unknown command '%s' (see chainbus --help)\n", command);
        return 2;
    }
    for (int arg = 2; arg < argc; arg++)
        if (streq (argv [arg], "--help") || streq (argv [arg], "-h")) {
            s_usage (stdout);
            return 0;
        }
    //  The wallet's flags are its own, not configuration keys.
    if (streq (command, "key") || streq (command, "tx"))
        return cbus_wallet_run (argc - 1, argv + 1);
    //  The command's own flags come out before the configuration reads
    //  the rest. args [0] is the command: the configuration skips it.
    int count = argc - 1;
    char **args = (char **) calloc ((size_t) argc + 2, sizeof (char *));
    assert (args);
    memcpy (args, argv + 1, (size_t) count * sizeof (char *));
    s_own_flags_t own = { .base_port = 5000 };
    if (s_take_own_flags (command, &count, args, &own)) {
        free (args);
        return 2;
    }
    const char *json = own.json, *folder = own.folder;
    int nodes = own.nodes, base_port = own.base_port;
    char reason [CBUS_REASON_MAX];
    cbus_config_t *config = cbus_config_new_with_args (count, args, reason);
    free (args);
    if (!config) {
        fprintf (stderr, "chainbus %s: %s\n", command, reason);
        return 2;
    }
    int rc;
    bool tap = streq (command, "tap");
    if (streq (command, "service-key"))
        rc = cbus_service_key_run (config);
    else
    if (cbus_config_arg_count (config) > (tap? 1: 0)) {
        if (tap)
            fprintf (stderr, "chainbus tap: one topic prefix at most\n");
        else
            fprintf (stderr, "chainbus %s: unexpected argument '%s'\n", command,
                     cbus_config_arg (config, 0));
        rc = 2;
    }
    else
    if (streq (command, "node") || streq (command, "net")) {
        //  The launcher takes its signals itself.
        zsys_handler_set (NULL);
        zsys_init ();
        zsys_set_logident (streq (command, "node")? "chainbus-node": "chainbus-net");
        rc = streq (command, "node")? cbus_launcher_run (config)
                                    : cbus_net_run (config, nodes, base_port);
    }
    else
    if (tap) {
        zsys_init ();
        const char *prefix = cbus_config_arg_count (config) ? cbus_config_arg (config, 0) : "";
        rc = cbus_tap_run (config, prefix);
    }
    else
    if (streq (command, "backup") || streq (command, "restore")) {
        //  One line of outcome on stderr; the bus's own lines stay quiet.
        zsys_init ();
        zsys_set_logstream (NULL);
        rc = streq (command, "backup") ? cbus_backup_run (config, folder)
                                       : cbus_restore_run (config, folder);
    }
    else {
        //  Standard output may be the export itself: logs go to stderr.
        zsys_init ();
        zsys_set_logstream (stderr);
        zsys_set_logident (streq (command, "export")? "chainbus-export": "chainbus-import");
        rc = streq (command, "export")? cbus_export_run (config, json)
                                      : cbus_import_run (config, json);
    }
    cbus_config_destroy (&config);
    return rc;
}
