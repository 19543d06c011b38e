/*  =========================================================================
    cbus_config - one configuration for every chainbus program

    The table below is the single list of settings: config/chainbus.cfg
    documents the same keys, and cbus_config_print_zpl regenerates it.
    =========================================================================
*/
#include "cbus.h"
#include <stdarg.h>
#include <sys/stat.h>

//  S_OPT: a string that may be empty; S_ENDPOINT: empty or an endpoint.
typedef enum { S_STR, S_INT, S_BOOL, S_BITS, S_NAME, S_OPT, S_ENDPOINT } s_type_t;

typedef struct {
    const char *path;           //  "section/key" in the ZPL file
    const char *flag;           //  Command-line flag without the dashes
    const char *fallback;       //  Default value
    s_type_t type;              //  How the value is checked
    int64_t min, max;           //  Bounds for S_INT
    const char *help;           //  One line for --help and the ZPL comment
} s_key_t;

static const s_key_t s_keys [] = {
    { "node/data_dir", "data-dir", "./chainbus-data", S_STR, 0, 0,
      "Folder holding the node's databases, keys and sockets" },
    { "node/network", "network", "dev", S_NAME, 0, 0,
      "Network id; nodes of one network share one genesis block" },
    { "node/pow_bits", "pow-bits", "0x1f00ffff", S_BITS, 0, 0,
      "Proof-of-work target, compact form (0x1f00ffff: ~65,000 hashes a block)" },
    { "node/verbose", "verbose", "0", S_BOOL, 0, 0,
      "Log debug lines too" },
    { "node/disk_reserve_mb", "disk-reserve", "4", S_INT, 1, 1048576,
      "Free space each store keeps on its disk, in MiB: a write that would leave less is refused (507, code no_space) and the store pauses until there is room" },
    { "network/block_interval", "block-interval", "0", S_INT, 0, 86400,
      "Target seconds between blocks: each block's target follows from its parent's time by the retarget rule (0: the fixed pow_bits target). Part of the network's identity (its genesis), like the network id" },
    { "network/half_life", "half-life", "16", S_INT, 1, 100000,
      "Retarget half-life, in block intervals: the target halves (doubles) for each this many intervals the chain runs ahead of (behind) its schedule. Part of the network's identity when block_interval is not 0" },
    { "gateway/http_bind", "http-bind", "127.0.0.1", S_STR, 0, 0,
      "Address the HTTP API listens on (0.0.0.0 for every interface)" },
    { "gateway/http_port", "http-port", "5000", S_INT, 1, 65535,
      "TCP port of the HTTP API" },
    { "gateway/max_body", "max-body", "262144", S_INT, 1024, 16777216,
      "Largest request body accepted, in bytes (413 beyond)" },
    { "gateway/max_connections", "max-connections", "8192", S_INT, 16, 65536,
      "Most HTTP connections open at once (at most the open-file limit less 256); near it, connections waiting for a request are closed oldest first" },
    { "gateway/max_connections_per_address", "max-connections-per-address", "256", S_INT, 0, 65536,
      "Most HTTP connections open at once from one client address (0: no cap; raise it behind a reverse proxy)" },
    { "gateway/header_timeout_ms", "header-timeout", "5000", S_INT, 100, 600000,
      "A connection must send a whole request head within this of opening or of its previous answer, however slowly it trickles" },
    { "gateway/body_min_rate", "body-min-rate", "1024", S_INT, 0, 1073741824,
      "Slowest request body kept, in bytes a second on average after header_timeout_ms of grace (0: no minimum)" },
    { "gateway/send_buffer_bytes", "send-buffer", "65536", S_INT, 0, 16777216,
      "Kernel send buffer of each HTTP connection (the kernel doubles it; 0: the kernel's own, which lets unread answers pile up); it bounds a stream's bytes in flight" },
    { "gateway/request_timeout_ms", "request-timeout", "5000", S_INT, 10, 600000,
      "How long the gateway waits for a service before answering 503" },
    { "gateway/mine_timeout_ms", "mine-timeout", "60000", S_INT, 100, 3600000,
      "How long GET /mine waits for a block before answering 503" },
    { "gateway/restart_window_ms", "restart-window", "300000", S_INT, 1000, 86400000,
      "How long a service's restarts count against it: one that restarted 3 times within this is not ok in GET /status" },
    { "gateway/www_dir", "www-dir", "", S_STR, 0, 0,
      "Folder of the dashboard's files (empty: share/www beside the binaries)" },
    { "gateway/admin_token_file", "admin-token-file", "", S_STR, 0, 0,
      "File holding the admin token that GET /mine, POST /nodes/register and GET /nodes/resolve then ask for (empty: none asked)" },
    { "gateway/resolve_timeout_ms", "resolve-timeout", "60000", S_INT, 1000, 3600000,
      "How long GET /nodes/resolve waits for peers and the sync it starts" },
    { "gateway/event_streams_max", "event-streams-max", "256", S_INT, 0, 65536,
      "Most event streams (GET /events) open at once; beyond, 503 (0: none served)" },
    { "gateway/event_buffer_bytes", "event-buffer", "262144", S_INT, 4096, 67108864,
      "Bytes of events kept for one event stream whose subscriber does not read; a stream that would need more is closed" },
    { "gateway/event_keepalive_ms", "event-keepalive", "15000", S_INT, 100, 30000,
      "An event stream that sent nothing for this long gets a comment line (: keepalive); at most 30 s, below the gateway's 60 s idle timeout" },
    { "mempool/max_pending", "max-pending", "500000", S_INT, 1, 100000000,
      "Most pending transactions kept; beyond it submissions get 503" },
    { "mempool/block_max_txs", "block-max-txs", "10000", S_INT, 1, CBUS_BLOCK_MAX_TXS,
      "Most transactions put in one block template" },
    { "mempool/batch_max", "batch-max", "2048", S_INT, 1, 100000,
      "Most submissions taken in and not yet written; one fsync (group commit) covers at most this many" },
    { "mempool/commit_wait_ms", "commit-wait", "4", S_INT, 0, 1000,
      "Under load, how long a write may wait for more submissions so that one fsync covers more" },
    { "mempool/require_signatures", "require-signatures", "0", S_BOOL, 0, 0,
      "Refuse transactions without a valid signature by sender_public_key" },
    { "chainstore/cache_mb", "cache-mb", "64", S_INT, 1, 65536,
      "LevelDB block cache of the chain store, in MiB" },
    { "chainstore/max_future_ms", "max-future", "7200000", S_INT, 0, 86400000,
      "How far ahead of this node's clock a block's time may be" },
    { "miner/id", "miner-id", "0", S_INT, 0, 4294967295LL,
      "Miner id in mined headers, splits the nonce space (0: random; chainbus node gives its N miners this id to this + N - 1, from 1 when 0)" },
    { "miner/mode", "mining", "on-demand", S_NAME, 0, 0,
      "When blocks are mined: on-demand (a block per GET /mine) or continuous (the miners always work on the newest template, empty blocks too)" },
    { "miner/refresh_ms", "template-refresh", "1000", S_INT, 50, 600000,
      "In continuous mode, how long new transactions wait before the template being mined is rebuilt with them" },
    { "peersync/p2p_bind", "p2p-bind", "127.0.0.1", S_STR, 0, 0,
      "Address the peer protocol listens on (0.0.0.0 for every interface)" },
    { "peersync/p2p_port", "p2p-port", "0", S_INT, 0, 65535,
      "TCP port of the peer protocol (0: the HTTP port + 1000)" },
    { "peersync/p2p_advertise", "p2p-advertise", "", S_STR, 0, 0,
      "Host peers should connect to (empty: the bind address)" },
    { "peersync/peer_queue", "peer-queue", "16", S_INT, 2, 100000,
      "Messages queued toward one peer link that it has not read; past it the link is full" },
    { "peersync/peer_serve_bytes", "peer-serve-bytes", "1048576", S_INT, 65536, 16777216,
      "Most block bytes in one BLOCKS answer to a peer (at least one block is sent)" },
    { "peersync/peer_stall_ms", "peer-stall", "5000", S_INT, 1000, 600000,
      "A peer whose link stays full this long (or takes no bytes for twice this long) is disconnected" },
    { "peersync/peer_tx_rate", "peer-tx-rate", "5000", S_INT, 1, 1000000,
      "Transactions a second one peer may relay to our mempool; more are dropped" },
    { "peersync/peer_tx_inflight", "peer-tx-inflight", "1024", S_INT, 1, 100000,
      "Transactions of one peer at our mempool at once; more are dropped" },
    { "peersync/max_inbound", "max-inbound", "64", S_INT, 1, 4096,
      "Most peers linked to this node from outside; when all slots are taken a newcomer may evict the least useful one" },
    { "peersync/max_inbound_per_address", "max-inbound-per-address", "8", S_INT, 1, 4096,
      "Most inbound peers from one address (REJECT full beyond it)" },
    { "peersync/limit_loopback", "limit-loopback", "0", S_BOOL, 0, 0,
      "Apply max_inbound_per_address to loopback addresses (127/8, ::1) too" },
    { "peersync/ban_ms", "ban-time", "600000", S_INT, 1000, 86400000,
      "How long a misbehaving peer is ignored, in ms" },
    { "peersync/max_bans", "max-bans", "4096", S_INT, 16, 65536,
      "Most bans remembered; when full, the ban that would end soonest is forgotten" },
    { "peersync/pending_max", "pending-max", "20000", S_INT, 0, 10000000,
      "Most pending transaction ids taken from a peer's inventory each time it links, oldest first (0: no exchange)" },
    { "launcher/miners", "miners", "1", S_INT, 0, 64,
      "Miners started by 'chainbus node'" },
    { "launcher/restart_max_ms", "restart-max", "10000", S_INT, 100, 600000,
      "Longest wait before restarting a child that died (backoff doubles)" },
    { "endpoints/bus_in", "endpoint-bus-in", "", S_ENDPOINT, 0, 0,
      "Where the bus takes events in (empty: ipc://<data_dir>/run/bus-in.ipc); tcp://HOST:PORT is CurveZMQ with the allowlist" },
    { "endpoints/bus_out", "endpoint-bus-out", "", S_ENDPOINT, 0, 0,
      "Where the bus hands events out (empty: ipc://<data_dir>/run/bus-out.ipc)" },
    { "endpoints/chainstore", "endpoint-chainstore", "", S_ENDPOINT, 0, 0,
      "The chainstore's request socket (empty: ipc://<data_dir>/run/chainstore.ipc)" },
    { "endpoints/mempool", "endpoint-mempool", "", S_ENDPOINT, 0, 0,
      "The mempool's request socket (empty: ipc://<data_dir>/run/mempool.ipc)" },
    { "endpoints/peersync", "endpoint-peersync", "", S_ENDPOINT, 0, 0,
      "Peersync's request socket (empty: ipc://<data_dir>/run/peersync.ipc)" },
    { "endpoints/service_cert", "service-cert", "", S_OPT, 0, 0,
      "The node's service keypair, made on first start, mode 0600; what binds a tcp endpoint presents it (empty: <data_dir>/service.cert)" },
    { "endpoints/allowlist", "allowlist", "", S_OPT, 0, 0,
      "Public keys admitted on tcp endpoints, one Z85 key a line, # comments; read again when it changes (empty: <data_dir>/allowlist)" },
    { "endpoints/client_cert", "client-cert", "", S_OPT, 0, 0,
      "A service on another machine: its own keypair, made on first start (empty: this is the node's machine, use service_cert)" },
    { "endpoints/server_key", "endpoint-server-key", "", S_OPT, 0, 0,
      "With client_cert: the node's service public key, 40 Z85 characters (`chainbus service-key` on the node)" },
};
#define S_KEY_COUNT (sizeof (s_keys) / sizeof (s_keys [0]))
//  Largest config file read (the commented default is about 4 KB).
#define S_MAX_FILE_BYTES (1024 * 1024)

struct _cbus_config_t {
    char *values [S_KEY_COUNT];     //  Resolved value of each key
    char *data_dir;                 //  node/data_dir made absolute
    zlist_t *explicit_args;         //  Flags as given, for children
    zlist_t *args;                  //  Positional arguments
};

static int
s_index_of_path (const char *path)
{
    for (size_t index = 0; index < S_KEY_COUNT; index++)
        if (streq (s_keys [index].path, path))
            return (int) index;
    return -1;
}

static int
s_index_of_flag (const char *flag)
{
    for (size_t index = 0; index < S_KEY_COUNT; index++)
        if (streq (s_keys [index].flag, flag))
            return (int) index;
    return -1;
}

//  Check a value against its key's type; -1 with a reason.
static int
s_check_value (const s_key_t *key, const char *value, char *reason)
{
    char *end = NULL;
    switch (key->type) {
        case S_STR:
            if (strlen (value) > 1024)
                return cbus_fail (reason, "%s: value too long", key->path);
            if (!*value && !streq (key->path, "gateway/www_dir")
            &&  !streq (key->path, "peersync/p2p_advertise"))
                return cbus_fail (reason, "%s: value must not be empty", key->path);
            return 0;
        case S_OPT:
            if (strlen (value) > 1024)
                return cbus_fail (reason, "%s: value too long", key->path);
            return 0;
        case S_ENDPOINT: {
            char inner [CBUS_REASON_MAX];
            if (*value && cbus_endpoint_check (value, inner))
                return cbus_fail (reason, "%s: %s", key->path, inner);
            return 0;
        }
        case S_NAME:
            if (!*value || strlen (value) > 32 || strspn (value,
                "abcdefghijklmnopqrstuvwxyz0123456789-_") != strlen (value))
                return cbus_fail (reason, "%s: '%s' is not a name (1-32 of a-z 0-9 - _)",
                               key->path, value);
            if (streq (key->path, "miner/mode") && !streq (value, "on-demand")
            &&  !streq (value, "continuous"))
                return cbus_fail (reason, "%s: '%s' is not a mining mode (on-demand or continuous)",
                               key->path, value);
            return 0;
        case S_INT: {
            errno = 0;
            long long number = strtoll (value, &end, 10);
            if (!*value || *end || errno)
                return cbus_fail (reason, "%s: '%s' is not an integer", key->path, value);
            if (number < key->min || number > key->max)
                return cbus_fail (reason, "%s: %lld is out of range %lld..%lld", key->path,
                               number, (long long) key->min, (long long) key->max);
            return 0;
        }
        case S_BOOL:
            if (streq (value, "0") || streq (value, "1") || streq (value, "true")
            ||  streq (value, "false") || streq (value, "yes") || streq (value, "no"))
                return 0;
            return cbus_fail (reason, "%s: '%s' is not a boolean (0/1)", key->path, value);
        case S_BITS: {
            errno = 0;
            unsigned long long bits = strtoull (value, &end, 16);
            uint8_t target [CBUS_U256_BYTES];
            if (!*value || *end || errno || bits > 0xffffffffULL
            ||  cbus_pow_target ((uint32_t) bits, target))
                return cbus_fail (reason, "%s: '%s' is not a valid compact target", key->path, value);
            return 0;
        }
    }
    return -1;
}

static int
s_set (cbus_config_t *self, int index, const char *value, char *reason)
{
    if (s_check_value (&s_keys [index], value, reason))
        return -1;
    free (self->values [index]);
    self->values [index] = strdup (value);
    return 0;
}

//  Read the ZPL file: every leaf must be a declared section/key.
static int
s_load_file (cbus_config_t *self, const char *file, char *reason)
{
    struct stat st;
    if (stat (file, &st) || !S_ISREG (st.st_mode))
        return cbus_fail (reason, "config file %s: cannot read it", file);
    if (st.st_size > S_MAX_FILE_BYTES)
        return cbus_fail (reason, "config file %s: larger than %d bytes", file, S_MAX_FILE_BYTES);
    //  Read, then parsed: zconfig_load leaks its file when the text does
    //  not parse (CZMQ 4.2; found by fuzz/).
    zchunk_t *chunk = zchunk_slurp (file, S_MAX_FILE_BYTES);
    zconfig_t *root = chunk ? zconfig_chunk_load (chunk) : NULL;
    zchunk_destroy (&chunk);
    if (!root)
        return cbus_fail (reason, "config file %s: not valid ZPL", file);
    int rc = 0;
    for (zconfig_t *section = zconfig_child (root); section && rc == 0;
         section = zconfig_next (section)) {
        if (zconfig_value (section) && *zconfig_value (section))
            rc = cbus_fail (reason, "config file %s: '%s' is a section, not a key",
                         file, zconfig_name (section));
        for (zconfig_t *item = zconfig_child (section); item && rc == 0;
             item = zconfig_next (item)) {
            char path [128];
            snprintf (path, sizeof (path), "%s/%s", zconfig_name (section), zconfig_name (item));
            int index = s_index_of_path (path);
            if (index < 0)
                rc = cbus_fail (reason, "config file %s: unknown key %s", file, path);
            else
            if (zconfig_child (item))
                rc = cbus_fail (reason, "config file %s: %s has children", file, path);
            else {
                char inner [CBUS_REASON_MAX];
                if (s_set (self, index, zconfig_value (item) ? zconfig_value (item) : "", inner))
                    rc = cbus_fail (reason, "config file %s: %s", file, inner);
            }
        }
    }
    zconfig_destroy (&root);
    return rc;
}

static cbus_config_t *
s_config_new (int argc, char **argv, bool positional, char *reason)
{
    cbus_config_t *self = (cbus_config_t *) zmalloc (sizeof (cbus_config_t));
    self->explicit_args = zlist_new ();
    zlist_autofree (self->explicit_args);
    self->args = zlist_new ();
    zlist_autofree (self->args);
    for (size_t index = 0; index < S_KEY_COUNT; index++)
        self->values [index] = strdup (s_keys [index].fallback);

    //  First pass: the config file, so that flags override it.
    for (int arg = 1; arg < argc; arg++) {
        const char *file = NULL;
        if (streq (argv [arg], "--config")) {
            if (arg + 1 >= argc) {
                cbus_fail (reason, "--config needs a file");
                goto failed;
            }
            file = argv [++arg];
        }
        else
        if (strncmp (argv [arg], "--config=", 9) == 0)
            file = argv [arg] + 9;
        if (file) {
            if (s_load_file (self, file, reason))
                goto failed;
            char *absolute = realpath (file, NULL);
            zlist_append (self->explicit_args, "--config");
            zlist_append (self->explicit_args, absolute);
            free (absolute);
        }
    }
    //  Second pass: flags.
    for (int arg = 1; arg < argc; arg++) {
        const char *word = argv [arg];
        if (strncmp (word, "--", 2) != 0) {
            if (!positional) {
                cbus_fail (reason, "unexpected argument '%s'", word);
                goto failed;
            }
            zlist_append (self->args, (void *) word);
            continue;
        }
        char flag [64];
        const char *value = NULL;
        const char *equals = strchr (word, '=');
        size_t length = equals ? (size_t) (equals - word - 2) : strlen (word + 2);
        if (length >= sizeof (flag)) {
            cbus_fail (reason, "unknown flag %s", word);
            goto failed;
        }
        memcpy (flag, word + 2, length);
        flag [length] = 0;
        if (equals)
            value = equals + 1;
        else
        if (arg + 1 < argc)
            value = argv [++arg];
        if (streq (flag, "config"))
            continue;               //  Done in the first pass
        int index = s_index_of_flag (flag);
        if (index < 0) {
            cbus_fail (reason, "unknown flag --%s (see --help)", flag);
            goto failed;
        }
        if (!value) {
            cbus_fail (reason, "--%s needs a value", flag);
            goto failed;
        }
        if (s_set (self, index, value, reason))
            goto failed;
        char *dashed = zsys_sprintf ("--%s", flag);
        zlist_append (self->explicit_args, dashed);
        zstr_free (&dashed);
        zlist_append (self->explicit_args, (void *) value);
    }
    //  The data directory, absolute so that children and sockets agree.
    const char *dir = cbus_config_str (self, "node/data_dir");
    if (dir [0] == '/')
        self->data_dir = strdup (dir);
    else {
        char cwd [PATH_MAX];
        if (!getcwd (cwd, sizeof (cwd))) {
            cbus_fail (reason, "cannot read the current directory");
            goto failed;
        }
        self->data_dir = zsys_sprintf ("%s/%s", cwd, streq (dir, ".") ? "" : dir);
    }
    size_t length = strlen (self->data_dir);
    while (length > 1 && self->data_dir [length - 1] == '/')
        self->data_dir [--length] = 0;
    //  ipc:// paths must fit in a sockaddr_un (108 bytes).
    if (length + strlen ("/run/chainstore.ipc") >= 100) {
        cbus_fail (reason, "data directory path too long for local sockets (%zu chars, max 80): %s",
                length, self->data_dir);
        goto failed;
    }
    return self;
failed:
    cbus_config_destroy (&self);
    return NULL;
}

cbus_config_t *
cbus_config_new (int argc, char **argv, char *reason)
{
    return s_config_new (argc, argv, false, reason);
}

cbus_config_t *
cbus_config_new_with_args (int argc, char **argv, char *reason)
{
    return s_config_new (argc, argv, true, reason);
}

void
cbus_config_destroy (cbus_config_t **self_p)
{
    assert (self_p);
    cbus_config_t *self = *self_p;
    if (self) {
        for (size_t index = 0; index < S_KEY_COUNT; index++)
            free (self->values [index]);
        free (self->data_dir);
        zlist_destroy (&self->explicit_args);
        zlist_destroy (&self->args);
        free (self);
        *self_p = NULL;
    }
}

const char *
cbus_config_str (cbus_config_t *self, const char *path)
{
    int index = s_index_of_path (path);
    assert (index >= 0);            //  An undeclared key is a programming error
    return self->values [index];
}

int64_t
cbus_config_int (cbus_config_t *self, const char *path)
{
    const char *value = cbus_config_str (self, path);
    if (strncmp (value, "0x", 2) == 0)
        return (int64_t) strtoull (value, NULL, 16);
    return strtoll (value, NULL, 10);
}

bool
cbus_config_bool (cbus_config_t *self, const char *path)
{
    const char *value = cbus_config_str (self, path);
    return streq (value, "1") || streq (value, "true") || streq (value, "yes");
}

int
cbus_config_set (cbus_config_t *self, const char *path, const char *value, char *reason)
{
    int index = s_index_of_path (path);
    if (index < 0)
        return cbus_fail (reason, "unknown key %s", path);
    return s_set (self, index, value, reason);
}

size_t
cbus_config_arg_count (cbus_config_t *self)
{
    return zlist_size (self->args);
}

const char *
cbus_config_arg (cbus_config_t *self, size_t index)
{
    const char *arg = (const char *) zlist_first (self->args);
    while (arg && index--)
        arg = (const char *) zlist_next (self->args);
    return arg;
}

//  The network's target rule from node/pow_bits and network/block_interval.
cbus_pow_rule_t
cbus_config_pow_rule (cbus_config_t *self)
{
    cbus_pow_rule_t rule = {
        .bits = (uint32_t) cbus_config_int (self, "node/pow_bits"),
        .interval_s = (uint32_t) cbus_config_int (self, "network/block_interval"),
        .half_life = (uint32_t) cbus_config_int (self, "network/half_life")
    };
    return rule;
}

const char *
cbus_config_data_dir (cbus_config_t *self)
{
    return self->data_dir;
}

char *
cbus_config_endpoint (cbus_config_t *self, const char *name)
{
    //  "bus-in" is the key endpoints/bus_in.
    char path [64];
    snprintf (path, sizeof (path), "endpoints/%s", name);
    for (char *dash = strchr (path, '-'); dash; dash = strchr (dash, '-'))
        *dash = '_';
    int index = s_index_of_path (path);
    if (index >= 0 && *self->values [index])
        return strdup (self->values [index]);
    return zsys_sprintf ("ipc://%s/run/%s.ipc", self->data_dir, name);
}

char *
cbus_config_path (cbus_config_t *self, const char *name)
{
    return zsys_sprintf ("%s/%s", self->data_dir, name);
}

static int
s_mkdir (const char *path, char *reason)
{
    if (mkdir (path, 0700) && errno != EEXIST)
        return cbus_fail (reason, "cannot create %s: %s", path, strerror (errno));
    struct stat st;
    if (stat (path, &st) || !S_ISDIR (st.st_mode))
        return cbus_fail (reason, "%s is not a directory", path);
    return 0;
}

int
cbus_config_make_dirs (cbus_config_t *self, char *reason)
{
    //  Create each missing parent, like mkdir -p.
    char *path = strdup (self->data_dir);
    int rc = 0;
    for (char *slash = strchr (path + 1, '/'); slash && rc == 0; slash = strchr (slash + 1, '/')) {
        *slash = 0;
        if (mkdir (path, 0755) && errno != EEXIST)
            rc = cbus_fail (reason, "cannot create %s: %s", path, strerror (errno));
        *slash = '/';
    }
    free (path);
    if (rc == 0)
        rc = s_mkdir (self->data_dir, reason);
    if (rc == 0) {
        char *run = cbus_config_path (self, "run");
        rc = s_mkdir (run, reason);
        zstr_free (&run);
    }
    return rc;
}

zlist_t *
cbus_config_child_args (cbus_config_t *self)
{
    zlist_t *list = zlist_dup (self->explicit_args);
    zlist_autofree (list);
    return list;
}

void
cbus_config_print_help (FILE *stream)
{
    for (size_t index = 0; index < S_KEY_COUNT; index++)
        fprintf (stream, "  --%-18s %s (default: %s)\n", s_keys [index].flag,
                 s_keys [index].help,
                 *s_keys [index].fallback ? s_keys [index].fallback : "none");
    fprintf (stream, "  --%-18s %s\n", "config FILE", "Read settings from a ZPL file first");
}

void
cbus_config_print_zpl (FILE *stream)
{
    fprintf (stream, "#   chainbus configuration (ZPL). Every key can also be given as a\n"
                     "#   flag, which wins over this file: --<flag> VALUE.\n");
    const char *section = "";
    for (size_t index = 0; index < S_KEY_COUNT; index++) {
        const s_key_t *key = &s_keys [index];
        const char *slash = strchr (key->path, '/');
        size_t length = (size_t) (slash - key->path);
        if (strncmp (section, key->path, length) != 0 || section [length] != '/') {
            fprintf (stream, "\n%.*s\n", (int) length, key->path);
            section = key->path;
        }
        fprintf (stream, "    #   %s (flag --%s)\n", key->help, key->flag);
        fprintf (stream, "    %s = \"%s\"\n", slash + 1, key->fallback);
    }
}

void
cbus_config_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_config: ");
    char reason [CBUS_REASON_MAX];
    char *defaults [] = { "prog" };
    cbus_config_t *config = cbus_config_new (1, defaults, reason);
    assert (config);
    assert (cbus_config_int (config, "gateway/http_port") == 5000);
    assert (streq (cbus_config_str (config, "node/network"), "dev"));
    assert (cbus_config_int (config, "node/pow_bits") == 0x1f00ffff);
    assert (cbus_config_data_dir (config) [0] == '/');
    cbus_config_destroy (&config);

    //  A file, then flags on top of it.
    char path [] = "/tmp/cbus_config_test_XXXXXX";
    assert (mkdtemp (path));
    char file [PATH_MAX];
    snprintf (file, sizeof (file), "%s/node.cfg", path);
    FILE *out = fopen (file, "w");
    fprintf (out, "#   comment\nnode\n    network = \"test-1\"\ngateway\n    http_port = 6000\n"
                  "    max_body = 4096\n");
    fclose (out);
    char *args [] = { "prog", "--config", file, "--http-port=7000", "--data-dir", "/tmp/x/" };
    config = cbus_config_new (6, args, reason);
    assert (config);
    assert (cbus_config_int (config, "gateway/http_port") == 7000);
    assert (cbus_config_int (config, "gateway/max_body") == 4096);
    assert (streq (cbus_config_str (config, "node/network"), "test-1"));
    assert (streq (cbus_config_data_dir (config), "/tmp/x"));
    char *endpoint = cbus_config_endpoint (config, "chainstore");
    assert (streq (endpoint, "ipc:///tmp/x/run/chainstore.ipc"));
    zstr_free (&endpoint);
    assert (cbus_config_set (config, "endpoints/bus_in", "tcp://10.77.1.1:7101", reason) == 0);
    endpoint = cbus_config_endpoint (config, "bus-in");
    assert (streq (endpoint, "tcp://10.77.1.1:7101"));
    zstr_free (&endpoint);
    assert (cbus_config_set (config, "endpoints/bus_in", "tcp://*:1", reason) == -1
         && strstr (reason, "endpoints/bus_in"));
    zlist_t *child = cbus_config_child_args (config);
    assert (zlist_size (child) == 6);
    assert (streq ((char *) zlist_first (child), "--config"));
    zlist_destroy (&child);
    cbus_config_destroy (&config);

    //  Refusals: unknown flag, bad value, missing value, unknown key in file.
    char *bad1 [] = { "prog", "--nope", "1" };
    assert (cbus_config_new (3, bad1, reason) == NULL && strstr (reason, "unknown flag"));
    char *bad2 [] = { "prog", "--http-port", "99999" };
    assert (cbus_config_new (3, bad2, reason) == NULL && strstr (reason, "out of range"));
    char *bad3 [] = { "prog", "--http-port" };
    assert (cbus_config_new (2, bad3, reason) == NULL && strstr (reason, "needs a value"));
    char *bad4 [] = { "prog", "--pow-bits", "0x1d80ffff" };
    assert (cbus_config_new (3, bad4, reason) == NULL && strstr (reason, "compact target"));
    char *bad5 [] = { "prog", "stray" };
    assert (cbus_config_new (2, bad5, reason) == NULL && strstr (reason, "unexpected"));
    config = cbus_config_new_with_args (2, bad5, reason);
    assert (config && cbus_config_arg_count (config) == 1);
    assert (streq (cbus_config_arg (config, 0), "stray"));
    cbus_config_destroy (&config);
    out = fopen (file, "w");
    fprintf (out, "node\n    colour = \"blue\"\n");
    fclose (out);
    char *bad6 [] = { "prog", "--config", file };
    assert (cbus_config_new (3, bad6, reason) == NULL && strstr (reason, "unknown key"));
    char *bad7 [] = { "prog", "--config", "/nonexistent/file" };
    assert (cbus_config_new (3, bad7, reason) == NULL && strstr (reason, "cannot read"));
    unlink (file);
    rmdir (path);
    if (verbose)
        printf ("OK\n");
}
