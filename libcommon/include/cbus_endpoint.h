/*  =========================================================================
    cbus_endpoint - service sockets on ipc or on CurveZMQ-secured tcp

    Every service socket has a name (bus-in, bus-out, chainstore, mempool,
    peersync) and an endpoint from the config's endpoints section
    (cbus_config_endpoint): ipc://<data_dir>/run/<name>.ipc by default,
    guarded by the data folder's permissions, or tcp://HOST:PORT, which is
    always CurveZMQ: encrypted, and authenticated by a ZAP handler that
    admits only the public keys in the node's allowlist file (one Z85 key
    a line) and the node's own service key. A refused key is logged with
    its address.

    Keys are zcert secret files (ZPL, mode 0600). The node's service
    keypair (endpoints/service_cert, default <data_dir>/service.cert) is
    made on first start; the processes that bind a tcp endpoint present
    it. A process that connects presents endpoints/client_cert (a remote
    service's own keypair, made on its first start) and expects the
    server key endpoints/server_key; with no client_cert it is a local
    process and presents the service keypair itself.

    The keys are per process, like the ZeroMQ context and its one ZAP
    handler (inproc://zeromq.zap.01): cbus_endpoint_new installs them and
    every cbus_endpoint_bind/connect in the process uses them. A process
    whose config has no tcp endpoint installs nothing. Another ZAP handler
    in the process (peersync's, for its peer port) must pass requests
    whose domain cbus_endpoint_zap_owns to cbus_endpoint_zap_answer and
    say so with cbus_endpoint_zap_delegate; without that, a tcp bind is
    refused rather than run unauthenticated.
    =========================================================================
*/
#ifndef CBUS_ENDPOINT_H_INCLUDED
#define CBUS_ENDPOINT_H_INCLUDED

typedef struct _cbus_endpoint_t cbus_endpoint_t;

//  Check the config's endpoints and, if any is tcp, load (or make) the
//  keys this process needs and install them. role names what the process
//  binds ("bus": bus-in and bus-out; "chainstore", "mempool", "peersync":
//  their own; "node": all of them; anything else: none): for those that
//  are tcp the service keypair and the allowlist are loaded now, so a bad
//  file stops the start. NULL with a one-line reason.
cbus_endpoint_t *
    cbus_endpoint_new (cbus_config_t *config, const char *role, char *reason);
//  Release this hold; the last one uninstalls the keys and stops the ZAP
//  handler.
void
    cbus_endpoint_destroy (cbus_endpoint_t **self_p);

//  Bind or connect sock to endpoint; a tcp endpoint gets the CURVE keys
//  and heartbeats first (a link that died silently is dropped within
//  seconds and redialled). -1 (logged with the reason) if it cannot.
int
    cbus_endpoint_bind (zsock_t *sock, const char *endpoint);
int
    cbus_endpoint_connect (zsock_t *sock, const char *endpoint);
//  A SUB socket subscribed to prefix and connected to endpoint, or NULL.
zsock_t *
    cbus_endpoint_new_sub (const char *endpoint, const char *prefix);

//  Check an endpoint string: ipc://PATH or tcp://HOST:PORT (HOST an
//  address or name, not *). -1 with a reason.
int
    cbus_endpoint_check (const char *endpoint, char *reason);

//  The node's service keypair file (caller frees).
char *
    cbus_endpoint_service_cert_path (cbus_config_t *config);

//  ZAP for another handler of the process: true if the request (as
//  received, first frame the version) is for one of our sockets; answer
//  it (consumes the request).
bool
    cbus_endpoint_zap_owns (zmsg_t *request);
void
    cbus_endpoint_zap_answer (zsock_t *zap, zmsg_t **request_p);
//  Send a ZAP reply (RFC 27) to the request with this id (NULL: an empty
//  one) on zap: status "200" admits, with user as its user id; any other
//  status refuses, text saying why.
void
    cbus_endpoint_zap_reply (zsock_t *zap, zframe_t *id, const char *status, const char *text,
                             const char *user);
//  Another handler of this process holds inproc://zeromq.zap.01 and
//  passes our requests on (true), or no longer does (false).
void
    cbus_endpoint_zap_delegate (bool delegated);

void
    cbus_endpoint_test (bool verbose);

#endif
