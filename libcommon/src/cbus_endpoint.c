/*  =========================================================================
    cbus_endpoint - service sockets on ipc or on CurveZMQ-secured tcp

    Why our own ZAP handler and not CZMQ's zauth: a ZeroMQ context has
    one ZAP endpoint and peersync already answers on it for its peer
    port, so a second handler (zauth is one) cannot bind in that process;
    zauth reads a folder of certificate files, where operators keep one
    key a line; and it logs a refusal only in verbose mode, without the
    address. The handler here is one function, cbus_endpoint_zap_answer,
    run either by our small actor or by peersync's handler for the
    requests of our domains ("cbus.<socket name>").
    =========================================================================
*/
#include "cbus.h"
#include <pthread.h>
#include <sys/stat.h>
#include <sodium.h>

#define S_ZAP_ENDPOINT   "inproc://zeromq.zap.01"
#define S_DOMAIN_PREFIX  "cbus."
//  A refused key redials every 100 ms: one log line per key and address
//  per this long, with the count.
#define S_REFUSAL_LOG_MS 10000

static const char *s_names [] = { "bus-in", "bus-out", "chainstore", "mempool", "peersync" };
#define S_NAME_COUNT (sizeof (s_names) / sizeof (s_names [0]))

//  The keys installed in this process (one set, guarded by s_lock).
typedef struct {
    int refs;                   //  Holds on it (cbus_endpoint_t)
    char *data_dir;             //  Of the config that installed it
    char *service_path;         //  The node's service keypair file
    char *allowlist_path;       //  The allowlist file
    zcert_t *client;            //  Presented when connecting
    char server_key [41];       //  Expected of what we connect to (Z85)
    zcert_t *service;           //  Presented when binding (NULL until needed)
    zhashx_t *allowed;          //  Z85 key -> "" (NULL until a tcp bind)
    struct timespec allow_mtime;//  Of the allowlist as read
    off_t allow_size;
    zhashx_t *names;            //  Endpoint -> socket name
    zhashx_t *refusals;         //  "key address" -> s_refusal_t
    zactor_t *zap;              //  Our ZAP handler, if we run it
    zactor_t *watch;            //  Watches our tcp dials for refusals
    int monitors;               //  Monitor endpoints made so far
} s_keys_t;

typedef struct {
    int64_t logged;             //  When last logged
    size_t count;               //  Refusals since
} s_refusal_t;

struct _cbus_endpoint_t {
    bool installed;             //  Holds a reference on s_keys
};

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static s_keys_t *s_keys = NULL;
static bool s_delegated = false;

static bool
s_is_tcp (const char *endpoint)
{
    return strncmp (endpoint, "tcp://", 6) == 0;
}

//  --------------------------------------------------------------------------
//  Checking endpoints

int
cbus_endpoint_check (const char *endpoint, char *reason)
{
    const char *usage = "is not an endpoint (ipc://PATH or tcp://HOST:PORT)";
    if (strncmp (endpoint, "ipc://", 6) == 0) {
        size_t length = strlen (endpoint + 6);
        if (length == 0 || endpoint [6] != '/')
            return cbus_fail (reason, "'%s' %s: the path must be absolute", endpoint, usage);
        if (length >= 100)
            return cbus_fail (reason, "'%s': path too long for a local socket (max 99)", endpoint);
        return 0;
    }
    if (!s_is_tcp (endpoint))
        return cbus_fail (reason, "'%.64s' %s", endpoint, usage);
    const char *host = endpoint + 6;
    const char *colon = strrchr (host, ':');
    if (!colon || colon == host)
        return cbus_fail (reason, "'%.64s' %s", endpoint, usage);
    size_t host_length = (size_t) (colon - host);
    if (host [0] == '[') {
        if (host [host_length - 1] != ']' || host_length < 3
        ||  strspn (host + 1, "0123456789abcdefABCDEF:.") != host_length - 2)
            return cbus_fail (reason, "'%.64s': not an IPv6 address in brackets", endpoint);
    }
    else
    if (strspn (host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
        != host_length)
        return cbus_fail (reason, "'%.64s': the host must be an address or a name (not *): "
                          "the same endpoint is bound and connected to", endpoint);
    const char *port = colon + 1;
    char *end = NULL;
    errno = 0;
    long number = strtol (port, &end, 10);
    if (!*port || *end || errno || number < 1 || number > 65535 || *port == '0')
        return cbus_fail (reason, "'%.64s': the port must be 1..65535", endpoint);
    return 0;
}

char *
cbus_endpoint_service_cert_path (cbus_config_t *config)
{
    const char *path = cbus_config_str (config, "endpoints/service_cert");
    return *path ? strdup (path) : cbus_config_path (config, "service.cert");
}

//  --------------------------------------------------------------------------
//  The allowlist, read again if it changed on disk (edits take effect at
//  the next handshake). A list that no longer parses keeps the old one.
//  Called with s_lock held.
static int
s_allowlist_refresh (s_keys_t *keys, char *reason)
{
    struct stat st;
    if (stat (keys->allowlist_path, &st)) {
        if (!keys->allowed)
            return cbus_fail (reason, "allowlist %s: cannot read it: %s (one public key a line; "
                              "`chainbus service-key` prints the node's)", keys->allowlist_path,
                              strerror (errno));
        return 0;
    }
    if (keys->allowed && st.st_size == keys->allow_size
    &&  st.st_mtim.tv_sec == keys->allow_mtime.tv_sec
    &&  st.st_mtim.tv_nsec == keys->allow_mtime.tv_nsec)
        return 0;
    zhashx_t *fresh = cbus_keyfile_allowlist (keys->allowlist_path, reason);
    keys->allow_mtime = st.st_mtim;
    keys->allow_size = st.st_size;
    if (!fresh) {
        if (keys->allowed)
            zsys_error ("%s: the old list stays", reason);
        return keys->allowed ? 0 : -1;
    }
    if (keys->allowed)
        zsys_info ("allowlist %s read again keys=%zu", keys->allowlist_path, zhashx_size (fresh));
    zhashx_destroy (&keys->allowed);
    keys->allowed = fresh;
    return 0;
}

//  --------------------------------------------------------------------------
//  ZAP (ZeroMQ RFC 27)

bool
cbus_endpoint_zap_owns (zmsg_t *request)
{
    zframe_t *domain = zmsg_first (request);
    domain = domain ? zmsg_next (request) : NULL;
    domain = domain ? zmsg_next (request) : NULL;
    size_t prefix = strlen (S_DOMAIN_PREFIX);
    return domain && zframe_size (domain) > prefix
        && memcmp (zframe_data (domain), S_DOMAIN_PREFIX, prefix) == 0;
}

static void
s_refusal_free (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  Log a refusal, at most once per key and address per S_REFUSAL_LOG_MS.
static void
s_log_refusal (s_keys_t *keys, const char *key, const char *address, const char *domain,
               const char *why)
{
    char name [128];
    snprintf (name, sizeof (name), "%s %s", key, address);
    if (!keys->refusals && (keys->refusals = zhashx_new ()))
        zhashx_set_destructor (keys->refusals, s_refusal_free);
    if (keys->refusals && zhashx_size (keys->refusals) > 4096)
        zhashx_purge (keys->refusals);
    s_refusal_t *refusal = keys->refusals ? (s_refusal_t *) zhashx_lookup (keys->refusals, name)
                                          : NULL;
    if (!refusal && keys->refusals && (refusal = (s_refusal_t *) zmalloc (sizeof (*refusal)))) {
        zhashx_insert (keys->refusals, name, refusal);
        refusal->logged = -S_REFUSAL_LOG_MS;
    }
    int64_t now = cbus_mono_ms ();
    if (refusal) {
        refusal->count++;
        if (now - refusal->logged < S_REFUSAL_LOG_MS)
            return;
    }
    zsys_warning ("endpoint refused key=%s address=%s socket=%s reason=\"%s\" times=%zu",
                  key, address, domain + strlen (S_DOMAIN_PREFIX), why,
                  refusal ? refusal->count : 1);
    if (refusal) {
        refusal->logged = now;
        refusal->count = 0;
    }
}

void
cbus_endpoint_zap_answer (zsock_t *zap, zmsg_t **request_p)
{
    zmsg_t *request = *request_p;
    //  version, request id, domain, address, identity, mechanism, credentials
    zframe_t *frame = zmsg_first (request);
    zframe_t *id = zmsg_next (request);
    char *domain = id ? zframe_strdup (zmsg_next (request)) : NULL;
    char *address = domain ? zframe_strdup (zmsg_next (request)) : NULL;
    frame = address ? zmsg_next (request) : NULL;
    zframe_t *mechanism = frame ? zmsg_next (request) : NULL;
    zframe_t *credential = mechanism ? zmsg_next (request) : NULL;
    char key [41] = "";
    const char *status = "400", *text = "not CURVE";
    if (mechanism && zframe_streq (mechanism, "CURVE")
    &&  credential && zframe_size (credential) == 32) {
        zmq_z85_encode (key, zframe_data (credential), 32);
        text = "key not in the allowlist";
        pthread_mutex_lock (&s_lock);
        if (s_keys) {
            char reason [CBUS_REASON_MAX];
            if (s_allowlist_refresh (s_keys, reason))
                zsys_error ("%s", reason);
            if ((s_keys->service && streq (key, zcert_public_txt (s_keys->service)))
            ||  (s_keys->allowed && zhashx_lookup (s_keys->allowed, key)))
                status = "200", text = "OK";
            else
                s_log_refusal (s_keys, key, address ? address : "?", domain ? domain : "cbus.?",
                               text);
        }
        pthread_mutex_unlock (&s_lock);
    }
    cbus_endpoint_zap_reply (zap, id, status, text, streq (status, "200") ? key : "");
    zstr_free (&domain);
    zstr_free (&address);
    zmsg_destroy (request_p);
}

void
cbus_endpoint_zap_reply (zsock_t *zap, zframe_t *id, const char *status, const char *text,
                         const char *user)
{
    zmsg_t *reply = zmsg_new ();
    if (!reply)
        return;                     //  No answer: libzmq refuses the handshake
    zmsg_addstr (reply, "1.0");
    if (id)
        zmsg_addmem (reply, zframe_data (id), zframe_size (id));
    else
        zmsg_addstr (reply, "");
    zmsg_addstr (reply, status);
    zmsg_addstr (reply, text);
    zmsg_addstr (reply, user);
    zmsg_addmem (reply, NULL, 0);   //  No metadata
    zmsg_send (&reply, zap);
}

void
cbus_endpoint_zap_delegate (bool delegated)
{
    pthread_mutex_lock (&s_lock);
    s_delegated = delegated;
    pthread_mutex_unlock (&s_lock);
}

//  Our handler, when no other in the process answers. It says "OK" or
//  "FAILED" on its pipe after the signal.
static void
s_zap_actor (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_t *zap = zsock_new (ZMQ_REP);
    bool bound = zap && zsock_bind (zap, S_ZAP_ENDPOINT) == 0;
    zsock_signal (pipe, 0);
    zstr_send (pipe, bound ? "OK" : "FAILED");
    zpoller_t *poller = bound ? zpoller_new (pipe, zap, NULL) : NULL;
    if (poller)
        zpoller_set_nonstop (poller, true);
    while (poller) {
        void *which = zpoller_wait (poller, -1);
        if (which == zap) {
            zmsg_t *request = zmsg_recv (zap);
            if (request)
                cbus_endpoint_zap_answer (zap, &request);
        }
        else
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool stop = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (stop)
                break;
        }
        else
        if (zpoller_terminated (poller))
            break;
    }
    zpoller_destroy (&poller);
    zsock_destroy (&zap);
}

//  A handler for this process's tcp binds: ours, or a delegating one.
//  Called with s_lock held.
static int
s_zap_ensure (s_keys_t *keys, char *reason)
{
    if (keys->zap || s_delegated)
        return 0;
    keys->zap = zactor_new (s_zap_actor, NULL);
    char *answer = keys->zap ? zstr_recv (keys->zap) : NULL;
    int rc = answer && streq (answer, "OK") ? 0 : -1;
    zstr_free (&answer);
    if (rc) {
        zactor_destroy (&keys->zap);
        cbus_fail (reason, "another ZAP handler runs in this process and does not check the "
                   "allowlist: a tcp endpoint would be open to any key");
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Refusals seen by a client: libzmq tells a socket's monitor when the
//  server refused its handshake (ZAP 400), and a refused connection is
//  not dialled again; a service whose key is not listed says so, once.

static int
s_on_monitor (zloop_t *loop, zsock_t *reader, void *arg)
{
    zmsg_t *msg = zmsg_recv (reader);
    zframe_t *head = msg ? zmsg_first (msg) : NULL;
    zframe_t *address = head ? zmsg_next (msg) : NULL;
    if (head && zframe_size (head) == 6) {
        uint16_t event;
        memcpy (&event, zframe_data (head), 2);
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            zsys_error ("the node refused this service's key=%s at %.*s (not in its "
                        "allowlist?): list it there, then restart this service", (char *) arg,
                        address ? (int) zframe_size (address) : 1,
                        address ? (char *) zframe_data (address) : "?");
        if (event == ZMQ_EVENT_MONITOR_STOPPED)
            zloop_reader_end (loop, reader);
    }
    zmsg_destroy (&msg);
    return 0;
}

typedef struct {
    zloop_t *loop;              //  The watcher's loop
    zlist_t *readers;           //  Monitor readers, destroyed at the end
    char *key;                  //  Our public key, for the log line
} s_watch_t;

static int
s_on_watch_pipe (zloop_t *loop, zsock_t *pipe, void *arg)
{
    s_watch_t *watch = (s_watch_t *) arg;
    char *command = NULL, *monitor = NULL;
    if (zstr_recvx (pipe, &command, &monitor, NULL) < 1 || streq (command, "$TERM")) {
        zstr_free (&command);
        zstr_free (&monitor);
        return -1;
    }
    zsock_t *reader = monitor ? zsock_new (ZMQ_PAIR) : NULL;
    if (reader && (zsock_connect (reader, "%s", monitor)
               ||  zloop_reader (loop, reader, s_on_monitor, watch->key)
               ||  zlist_append (watch->readers, reader)))
        zsock_destroy (&reader);
    zsock_signal (pipe, 0);         //  Connected (or not): the dial may start
    zstr_free (&command);
    zstr_free (&monitor);
    return 0;
}

//  args: our public key (the actor frees it). Pipe: WATCH <monitor endpoint>.
static void
s_watch_actor (zsock_t *pipe, void *args)
{
    s_watch_t watch = { zloop_new (), zlist_new (), (char *) args };
    zsock_signal (pipe, 0);
    if (watch.loop && watch.readers && watch.key) {
        zloop_set_nonstop (watch.loop, true);
        if (zloop_reader (watch.loop, pipe, s_on_watch_pipe, &watch) == 0)
            zloop_start (watch.loop);
    }
    zloop_destroy (&watch.loop);
    zsock_t *reader;
    while (watch.readers && (reader = (zsock_t *) zlist_pop (watch.readers)))
        zsock_destroy (&reader);
    zlist_destroy (&watch.readers);
    free (watch.key);
}

static void
s_keys_destroy (s_keys_t **keys_p)
{
    s_keys_t *keys = *keys_p;
    if (keys) {
        zactor_destroy (&keys->watch);
        zactor_destroy (&keys->zap);
        zcert_destroy (&keys->client);
        zcert_destroy (&keys->service);
        zhashx_destroy (&keys->allowed);
        zhashx_destroy (&keys->names);
        zhashx_destroy (&keys->refusals);
        free (keys->data_dir);
        free (keys->service_path);
        free (keys->allowlist_path);
        free (keys);
        *keys_p = NULL;
    }
}

static zcert_t *
s_load_logged (const char *path, const char *what, char *reason)
{
    bool made = false;
    zcert_t *cert = cbus_keyfile_load (path, true, &made, reason);
    if (cert && made)
        zsys_notice ("made %s file=%s public_key=%s (%s)", what, path, zcert_public_txt (cert),
                     strstr (what, "node's") ? "services on other machines set it as their "
                     "endpoints/server_key" : "list it in the node's allowlist");
    return cert;
}

//  What a process binding a tcp endpoint needs: the service keypair, the
//  allowlist (and, at the bind, a ZAP handler: not before, so that
//  peersync's can take the endpoint first). Called with s_lock held.
static int
s_serve_keys (s_keys_t *keys, char *reason)
{
    if (!keys->service
    &&  !(keys->service = s_load_logged (keys->service_path, "the node's service keypair", reason)))
        return -1;
    return s_allowlist_refresh (keys, reason);
}

static s_keys_t *
s_keys_new (cbus_config_t *config, char *reason)
{
    s_keys_t *keys = (s_keys_t *) zmalloc (sizeof (s_keys_t));
    const char *allowlist = cbus_config_str (config, "endpoints/allowlist");
    const char *client_path = cbus_config_str (config, "endpoints/client_cert");
    const char *server_key = cbus_config_str (config, "endpoints/server_key");
    keys->refs = 1;
    keys->data_dir = strdup (cbus_config_data_dir (config));
    keys->service_path = cbus_endpoint_service_cert_path (config);
    keys->allowlist_path = *allowlist ? strdup (allowlist) : cbus_config_path (config, "allowlist");
    keys->names = zhashx_new ();
    if (!keys->data_dir || !keys->service_path || !keys->allowlist_path || !keys->names) {
        cbus_fail (reason, "out of memory");
        goto failed;
    }
    for (size_t index = 0; index < S_NAME_COUNT; index++) {
        char *endpoint = cbus_config_endpoint (config, s_names [index]);
        zhashx_insert (keys->names, endpoint, (void *) s_names [index]);
        zstr_free (&endpoint);
    }
    if (*server_key && !cbus_keyfile_key_valid (server_key)) {
        cbus_fail (reason, "endpoints/server_key: not a public key (40 Z85 characters)");
        goto failed;
    }
    if (*client_path) {
        //  A service on another machine: its own keypair, the node's key.
        if (!*server_key) {
            cbus_fail (reason, "endpoints/server_key is needed with endpoints/client_cert: the "
                       "node's public key (`chainbus service-key` on the node prints it)");
            goto failed;
        }
        if (!(keys->client = s_load_logged (client_path, "this service's keypair", reason)))
            goto failed;
        snprintf (keys->server_key, sizeof (keys->server_key), "%s", server_key);
    }
    else {
        if (!(keys->service = s_load_logged (keys->service_path, "the node's service keypair",
                                             reason))
        ||  !(keys->client = zcert_dup (keys->service)))
            goto failed;
        snprintf (keys->server_key, sizeof (keys->server_key), "%s",
                  *server_key ? server_key : zcert_public_txt (keys->service));
    }
    return keys;
failed:
    s_keys_destroy (&keys);
    return NULL;
}

//  Which names a role binds.
static bool
s_role_binds (const char *role, const char *name)
{
    if (streq (role, "node"))
        return true;
    if (streq (role, "bus"))
        return streq (name, "bus-in") || streq (name, "bus-out");
    return streq (role, name);
}

cbus_endpoint_t *
cbus_endpoint_new (cbus_config_t *config, const char *role, char *reason)
{
    bool any_tcp = false, serves = false;
    char *endpoints [S_NAME_COUNT];
    int rc = 0;
    for (size_t index = 0; index < S_NAME_COUNT; index++) {
        endpoints [index] = cbus_config_endpoint (config, s_names [index]);
        if (!endpoints [index] || cbus_endpoint_check (endpoints [index], reason))
            rc = -1;
        for (size_t other = 0; rc == 0 && other < index; other++)
            if (streq (endpoints [index], endpoints [other]))
                rc = cbus_fail (reason, "the %s and %s sockets have one endpoint %s",
                                s_names [other], s_names [index], endpoints [index]);
        if (rc == 0 && s_is_tcp (endpoints [index])) {
            any_tcp = true;
            serves |= s_role_binds (role, s_names [index]);
        }
    }
    for (size_t index = 0; index < S_NAME_COUNT; index++)
        zstr_free (&endpoints [index]);
    if (rc)
        return NULL;
    cbus_endpoint_t *self = (cbus_endpoint_t *) zmalloc (sizeof (cbus_endpoint_t));
    if (!self || !any_tcp)
        return self ? self : (cbus_fail (reason, "out of memory"), NULL);
    pthread_mutex_lock (&s_lock);
    if (s_keys && !streq (s_keys->data_dir, cbus_config_data_dir (config)))
        rc = cbus_fail (reason, "one set of endpoint keys per process (%s has them)",
                        s_keys->data_dir);
    else
    if (s_keys)
        s_keys->refs++;
    else
    if (!(s_keys = s_keys_new (config, reason)))
        rc = -1;
    if (rc == 0) {
        self->installed = true;
        if (serves && s_serve_keys (s_keys, reason))
            rc = -1;
    }
    pthread_mutex_unlock (&s_lock);
    if (rc)
        cbus_endpoint_destroy (&self);
    return self;
}

void
cbus_endpoint_destroy (cbus_endpoint_t **self_p)
{
    assert (self_p);
    cbus_endpoint_t *self = *self_p;
    if (self) {
        if (self->installed) {
            s_keys_t *last = NULL;
            pthread_mutex_lock (&s_lock);
            if (s_keys && --s_keys->refs == 0) {
                last = s_keys;
                s_keys = NULL;
            }
            pthread_mutex_unlock (&s_lock);
            //  Outside the lock: the ZAP actor may be waiting for it.
            s_keys_destroy (&last);
        }
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Binding and connecting

//  Heartbeats on every tcp link: a peer gone without a word (a cable, a
//  firewall, a link down) is noticed within seconds and redialled.
static void
s_tcp_options (zsock_t *sock)
{
    zsock_set_heartbeat_ivl (sock, 1000);
    zsock_set_heartbeat_timeout (sock, 3000);
    zsock_set_heartbeat_ttl (sock, 3000);
    zsock_set_handshake_ivl (sock, 5000);
    zsock_set_reconnect_ivl (sock, 200);
}

int
cbus_endpoint_bind (zsock_t *sock, const char *endpoint)
{
    char reason [CBUS_REASON_MAX] = "";
    if (!s_is_tcp (endpoint)) {
        if (zsock_bind (sock, "%s", endpoint) != -1)
            return 0;
        zsys_error ("cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        return -1;
    }
    int rc = -1;
    pthread_mutex_lock (&s_lock);
    if (!s_keys)
        cbus_fail (reason, "%s is tcp but this process has no endpoint keys", endpoint);
    else
    if (s_serve_keys (s_keys, reason) == 0 && s_zap_ensure (s_keys, reason) == 0) {
        const char *name = (const char *) zhashx_lookup (s_keys->names, endpoint);
        char domain [64];
        snprintf (domain, sizeof (domain), S_DOMAIN_PREFIX "%s", name ? name : "other");
        zcert_apply (s_keys->service, sock);
        zsock_set_curve_server (sock, 1);
        zsock_set_zap_domain (sock, domain);
        s_tcp_options (sock);
        //  zsock_bind returns the port of a tcp endpoint.
        if (zsock_bind (sock, "%s", endpoint) != -1)
            rc = 0;
        else
            cbus_fail (reason, "cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
    }
    pthread_mutex_unlock (&s_lock);
    if (rc)
        zsys_error ("%s", reason);
    else
        zsys_info ("listening on %s (CurveZMQ, keys of the allowlist only)", endpoint);
    return rc;
}

//  Have the watcher report a refusal of sock's handshakes (before sock
//  dials). Called with s_lock held; a watcher that cannot be had costs
//  only the log line.
static void
s_watch (s_keys_t *keys, zsock_t *sock)
{
    if (!keys->watch)
        keys->watch = zactor_new (s_watch_actor, strdup (zcert_public_txt (keys->client)));
    char monitor [64];
    snprintf (monitor, sizeof (monitor), "inproc://cbus-endpoint-monitor-%d", ++keys->monitors);
    //  The reader is connected before the dial starts: an event with no
    //  reader is dropped.
    if (keys->watch
    &&  zmq_socket_monitor (zsock_resolve (sock), monitor, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) == 0
    &&  zstr_sendx (keys->watch, "WATCH", monitor, NULL) == 0)
        zsock_wait (keys->watch);
}

int
cbus_endpoint_connect (zsock_t *sock, const char *endpoint)
{
    if (!s_is_tcp (endpoint))
        return zsock_connect (sock, "%s", endpoint) == 0 ? 0 : -1;
    char reason [CBUS_REASON_MAX] = "";
    int rc = -1;
    pthread_mutex_lock (&s_lock);
    if (!s_keys)
        cbus_fail (reason, "%s is tcp but this process has no endpoint keys", endpoint);
    else {
        zcert_apply (s_keys->client, sock);
        zsock_set_curve_serverkey (sock, s_keys->server_key);
        s_tcp_options (sock);
        //  A dial into a dead link gives up soon and tries again, rather
        //  than wait out the kernel's SYN retries (two minutes).
        zsock_set_connect_timeout (sock, 2000);
        s_watch (s_keys, sock);
        if (zsock_connect (sock, "%s", endpoint) == 0)
            rc = 0;
        else
            cbus_fail (reason, "cannot connect to %s: %s", endpoint, zmq_strerror (zmq_errno ()));
    }
    pthread_mutex_unlock (&s_lock);
    if (rc)
        zsys_error ("%s", reason);
    return rc;
}

zsock_t *
cbus_endpoint_new_sub (const char *endpoint, const char *prefix)
{
    zsock_t *sub = zsock_new (ZMQ_SUB);
    if (!sub)
        return NULL;
    zsock_set_subscribe (sub, prefix);
    if (cbus_endpoint_connect (sub, endpoint))
        zsock_destroy (&sub);
    return sub;
}

//  --------------------------------------------------------------------------
//  Self-test

static void
s_write (const char *path, const char *text, int mode)
{
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
    chmod (path, (mode_t) mode);
}

static cbus_config_t *
s_test_config (const char *dir, const char *extra)
{
    char reason [CBUS_REASON_MAX];
    char file [PATH_MAX];
    snprintf (file, sizeof (file), "%s/test.cfg", dir);
    char *text = zsys_sprintf ("node\n    data_dir = \"%s\"\n%s", dir, extra);
    s_write (file, text, 0600);
    zstr_free (&text);
    char *args [] = { "prog", "--config", file };
    return cbus_config_new (3, args, reason);
}

void
cbus_endpoint_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_endpoint: ");
    char reason [CBUS_REASON_MAX];
    //  Endpoint strings.
    assert (cbus_endpoint_check ("ipc:///tmp/x.ipc", reason) == 0);
    assert (cbus_endpoint_check ("tcp://10.77.1.1:7101", reason) == 0);
    assert (cbus_endpoint_check ("tcp://node.example:7101", reason) == 0);
    assert (cbus_endpoint_check ("tcp://[::1]:7101", reason) == 0);
    assert (cbus_endpoint_check ("tcp://*:7101", reason) && strstr (reason, "not *"));
    assert (cbus_endpoint_check ("tcp://h:0", reason) && strstr (reason, "port"));
    assert (cbus_endpoint_check ("tcp://h:99999", reason) && strstr (reason, "port"));
    assert (cbus_endpoint_check ("tcp://h", reason) && strstr (reason, "not an endpoint"));
    assert (cbus_endpoint_check ("udp://h:1", reason) && strstr (reason, "not an endpoint"));
    assert (cbus_endpoint_check ("ipc://rel", reason) && strstr (reason, "absolute"));

    char dir [] = "/tmp/cbus_endpoint_test_XXXXXX";
    assert (mkdtemp (dir));
    char path [PATH_MAX], allowlist [PATH_MAX], remote_path [PATH_MAX];
    snprintf (path, sizeof (path), "%s/service.cert", dir);
    snprintf (allowlist, sizeof (allowlist), "%s/allowlist", dir);
    snprintf (remote_path, sizeof (remote_path), "%s/remote.cert", dir);

    zcert_t *cert = cbus_keyfile_load (path, true, NULL, reason);
    zcert_t *other = zcert_new ();
    assert (cert && other);

    //  Ipc only: nothing installed, tcp refused.
    cbus_config_t *config = s_test_config (dir, "");
    assert (config);
    cbus_endpoint_t *hold = cbus_endpoint_new (config, "node", reason);
    assert (hold && !s_keys);
    cbus_endpoint_destroy (&hold);
    cbus_config_destroy (&config);

    //  A node with tcp bus endpoints and no allowlist: refused.
    int port = 20000 + (int) (randombytes_random () % 10000);
    char *section = zsys_sprintf ("endpoints\n    bus_in = \"tcp://127.0.0.1:%d\"\n"
                                  "    bus_out = \"tcp://127.0.0.1:%d\"\n", port, port + 1);
    config = s_test_config (dir, section);
    assert (config);
    assert (!cbus_endpoint_new (config, "bus", reason) && strstr (reason, "allowlist"));
    assert (!s_keys);
    s_write (allowlist, "# one key a line\nnot-a-key\n", 0644);
    assert (!cbus_endpoint_new (config, "bus", reason) && strstr (reason, "line 2"));
    //  The remote's key listed: admitted; another key refused.
    zcert_t *remote = zcert_new ();
    zcert_save_secret (remote, remote_path);
    chmod (remote_path, 0600);
    char *list = zsys_sprintf ("# miners\n\n%s  # the remote\n", zcert_public_txt (remote));
    s_write (allowlist, list, 0644);
    zstr_free (&list);
    hold = cbus_endpoint_new (config, "bus", reason);
    assert (hold && s_keys && s_keys->allowed && !s_keys->zap);
    char *endpoint = cbus_config_endpoint (config, "bus-out");
    zsock_t *server = zsock_new (ZMQ_PUB);
    assert (cbus_endpoint_bind (server, endpoint) == 0);
    //  The remote process (its keys as a remote's config would give).
    zsock_t *listed = zsock_new (ZMQ_SUB);
    zsock_t *unlisted = zsock_new (ZMQ_SUB);
    zsock_set_subscribe (listed, "");
    zsock_set_subscribe (unlisted, "");
    zcert_apply (remote, listed);
    zcert_apply (other, unlisted);
    zsock_set_curve_serverkey (listed, zcert_public_txt (cert));
    zsock_set_curve_serverkey (unlisted, zcert_public_txt (cert));
    zsock_set_rcvtimeo (listed, 100);
    zsock_set_rcvtimeo (unlisted, 100);
    assert (zsock_connect (listed, "%s", endpoint) == 0);
    assert (zsock_connect (unlisted, "%s", endpoint) == 0);
    //  A local process: cbus_endpoint_connect with the service keypair.
    zsock_t *local = cbus_endpoint_new_sub (endpoint, "");
    assert (local);
    zsock_set_rcvtimeo (local, 100);
    bool got_listed = false, got_local = false, got_unlisted = false;
    for (int attempt = 0; attempt < 50 && !(got_listed && got_local); attempt++) {
        zstr_send (server, "hello");
        char *text = zstr_recv (listed);
        got_listed |= text != NULL;
        zstr_free (&text);
        text = zstr_recv (local);
        got_local |= text != NULL;
        zstr_free (&text);
        text = zstr_recv (unlisted);
        got_unlisted |= text != NULL;
        zstr_free (&text);
    }
    assert (got_listed && got_local && !got_unlisted);
    pthread_mutex_lock (&s_lock);
    assert (s_keys->refusals && zhashx_size (s_keys->refusals) >= 1);
    pthread_mutex_unlock (&s_lock);
    //  An edited allowlist holds from the next handshake: no restart of
    //  the node. (libzmq 4.3 ends a refused connection for good: the
    //  refused client dials again only when it is restarted.)
    list = zsys_sprintf ("%s\n%s\n", zcert_public_txt (remote), zcert_public_txt (other));
    s_write (allowlist, list, 0644);
    zstr_free (&list);
    zsock_destroy (&unlisted);
    unlisted = zsock_new (ZMQ_SUB);
    zsock_set_subscribe (unlisted, "");
    zcert_apply (other, unlisted);
    zsock_set_curve_serverkey (unlisted, zcert_public_txt (cert));
    zsock_set_rcvtimeo (unlisted, 100);
    assert (zsock_connect (unlisted, "%s", endpoint) == 0);
    for (int attempt = 0; attempt < 50 && !got_unlisted; attempt++) {
        zstr_send (server, "hello");
        char *text = zstr_recv (unlisted);
        got_unlisted |= text != NULL;
        zstr_free (&text);
    }
    assert (got_unlisted);
    //  A list that no longer parses keeps the old one.
    s_write (allowlist, "garbage\n", 0644);
    pthread_mutex_lock (&s_lock);
    assert (s_allowlist_refresh (s_keys, reason) == 0);
    assert (zhashx_size (s_keys->allowed) == 2);
    pthread_mutex_unlock (&s_lock);
    zstr_free (&endpoint);
    zsock_destroy (&listed);
    zsock_destroy (&unlisted);
    zsock_destroy (&local);
    zsock_destroy (&server);

    //  A second hold of the same node shares the keys; another refused.
    cbus_endpoint_t *second = cbus_endpoint_new (config, "miner", reason);
    assert (second && s_keys->refs == 2);
    char elsewhere_dir [PATH_MAX];
    snprintf (elsewhere_dir, sizeof (elsewhere_dir), "%s/elsewhere", dir);
    assert (mkdir (elsewhere_dir, 0700) == 0);
    cbus_config_t *elsewhere = s_test_config (elsewhere_dir, section);
    assert (elsewhere);
    assert (!cbus_endpoint_new (elsewhere, "miner", reason) && strstr (reason, "per process"));
    cbus_config_destroy (&elsewhere);
    cbus_endpoint_destroy (&second);
    cbus_endpoint_destroy (&hold);
    assert (!s_keys);
    cbus_config_destroy (&config);
    zstr_free (&section);

    //  A remote's config: client_cert without server_key refused.
    section = zsys_sprintf ("endpoints\n    chainstore = \"tcp://127.0.0.1:%d\"\n"
                            "    client_cert = \"%s\"\n", port + 2, remote_path);
    config = s_test_config (dir, section);
    assert (config);
    assert (!cbus_endpoint_new (config, "miner", reason) && strstr (reason, "server_key"));
    cbus_config_destroy (&config);
    zstr_free (&section);

    //  A bad endpoint and a duplicate, refused by the config and by us.
    config = s_test_config (dir, "endpoints\n    mempool = \"tcp://*:1\"\n");
    assert (!config);
    config = s_test_config (dir, "endpoints\n    mempool = \"tcp://127.0.0.1:9\"\n"
                                 "    peersync = \"tcp://127.0.0.1:9\"\n");
    assert (config);
    assert (!cbus_endpoint_new (config, "node", reason) && strstr (reason, "one endpoint"));
    cbus_config_destroy (&config);

    zcert_destroy (&cert);
    zcert_destroy (&other);
    zcert_destroy (&remote);
    char *command = zsys_sprintf ("rm -rf %s", dir);
    assert (system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("OK\n");
}
