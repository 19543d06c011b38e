/*  =========================================================================
    cbus_config - one configuration for every chainbus program

    Every key is declared once in a table (path, flag, default, type,
    bounds, help). Values come from the defaults, then the ZPL file given
    with --config, then command-line flags (--http-port 5001 or
    --http-port=5001). Every program accepts every flag, so the launcher
    can pass one command line to all of its children. Bad values, unknown
    keys and unknown flags are refused with a one-line reason.
    =========================================================================
*/
#ifndef CBUS_CONFIG_H_INCLUDED
#define CBUS_CONFIG_H_INCLUDED

typedef struct _cbus_config_t cbus_config_t;

//  Resolve the configuration from argv (argv[0] is skipped). Flags that
//  are not config keys (--help) are refused. NULL with a reason.
cbus_config_t *
    cbus_config_new (int argc, char **argv, char *reason);
//  Same, but leaves positional arguments (words not starting with --)
//  for the caller: they are returned in order by cbus_config_arg.
cbus_config_t *
    cbus_config_new_with_args (int argc, char **argv, char *reason);
void
    cbus_config_destroy (cbus_config_t **self_p);

//  Value of a key by path ("gateway/http_port"), borrowed. Asserts the
//  path is declared (a programming error otherwise).
const char *
    cbus_config_str (cbus_config_t *self, const char *path);
int64_t
    cbus_config_int (cbus_config_t *self, const char *path);
bool
    cbus_config_bool (cbus_config_t *self, const char *path);
//  Override a value (tests, launcher); -1 with reason if invalid.
int
    cbus_config_set (cbus_config_t *self, const char *path, const char *value,
                     char *reason);
//  Positional arguments left over (cbus_config_new_with_args).
size_t
    cbus_config_arg_count (cbus_config_t *self);
const char *
    cbus_config_arg (cbus_config_t *self, size_t index);

//  The network's target rule: node/pow_bits and network/block_interval.
cbus_pow_rule_t
    cbus_config_pow_rule (cbus_config_t *self);

//  The node's data directory as an absolute path (borrowed).
const char *
    cbus_config_data_dir (cbus_config_t *self);
//  Endpoint of a named service socket: endpoints/<name> (bus-in is
//  endpoints/bus_in), by default ipc://<data_dir>/run/<name>.ipc. Names:
//  bus-in, bus-out, chainstore, mempool, peersync. Caller frees.
char *
    cbus_config_endpoint (cbus_config_t *self, const char *name);
//  Path of a file or folder inside the data directory. Caller frees.
char *
    cbus_config_path (cbus_config_t *self, const char *name);
//  Create the data directory and its run/ folder (mode 0700).
int
    cbus_config_make_dirs (cbus_config_t *self, char *reason);

//  The command-line flags that reproduce this configuration's explicit
//  settings (--config and every flag given), for a child process.
//  Returns a list of strings (caller destroys).
zlist_t *
    cbus_config_child_args (cbus_config_t *self);

//  Print every key with its flag, default and help (for --help).
void
    cbus_config_print_help (FILE *stream);
//  Print a commented ZPL file with every key at its default.
void
    cbus_config_print_zpl (FILE *stream);

void
    cbus_config_test (bool verbose);

#endif
