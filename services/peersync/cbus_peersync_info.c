/*  =========================================================================
    cbus_peersync_info - learning a registered peer's endpoint and key

    A peer given as http://host:port is asked through its gateway (GET
    /node/info, on the fetcher's thread); one given as tcp://host:port
    through its plaintext directory, PEERSYNC_DIRECTORY_OFFSET above its
    peer port, which answers INFO and nothing else. Our own directory is
    served here too. Neither way waits: answers come back to the loop.
    =========================================================================
*/
#include "cbus_peersync_private.h"

static int s_on_directory_answer (zloop_t *loop, zsock_t *reader, void *arg);

static void
s_close_directory (peersync_t *self, peersync_peer_t *peer)
{
    if (peer->directory) {
        zloop_reader_end (self->loop, peer->directory);
        zsock_destroy (&peer->directory);
    }
}

//  Whether a peer's network and genesis are ours; if not, the reason.
static bool
s_same_network (peersync_t *self, const char *network, const uint8_t *genesis, char *reason)
{
    if (streq (network, self->chain.network) && memcmp (genesis, self->chain.genesis, CBUS_HASH_BYTES) == 0)
        return true;
    if (streq (network, self->chain.network))
        snprintf (reason, CBUS_REASON_MAX, "same network id '%s' but another genesis block", network);
    else
        snprintf (reason, CBUS_REASON_MAX, "another network (it runs '%.40s' with another genesis; we run '%s')",
                  network, self->chain.network);
    return false;
}

//  The info a peer gave about itself (from /node/info or INFO): check it
//  and link. Returns -1 with the peer refused or left to retry.
static int
s_take_info (peersync_t *self, peersync_peer_t *peer, const char *network, const uint8_t *genesis,
             const char *public_key, const char *endpoint)
{
    char reason [CBUS_REASON_MAX];
    uint8_t raw [32];
    if (!network || !genesis || !public_key || strlen (public_key) != 40
    ||  !zmq_z85_decode (raw, public_key) || !endpoint) {
        peersync_set_state (self, peer, P_FETCHING, "its info is incomplete or malformed");
        return -1;
    }
    if (!s_same_network (self, network, genesis, reason)) {
        peersync_set_state (self, peer, P_REFUSED, reason);
        zsys_warning ("peer refused peer=%s reason=\"%s\"", peersync_peer_name (peer), reason);
        return -1;
    }
    if (streq (public_key, cbus_identity_public (self->links.identity))) {
        peersync_set_state (self, peer, P_REFUSED, "that address is this node itself");
        return -1;
    }
    char normal [CBUS_PEER_ADDRESS_MAX];
    if (cbus_peers_normalize (endpoint, strlen (endpoint), normal, reason) || strncmp (normal, "tcp://", 6)) {
        peersync_set_state (self, peer, P_FETCHING, "its peer endpoint is not tcp://host:port");
        return -1;
    }
    snprintf (peer->endpoint, sizeof (peer->endpoint), "%s", normal);
    snprintf (peer->public_key, sizeof (peer->public_key), "%s", public_key);
    peersync_link (self, peer);
    return 0;
}

void
peersync_ask_info (peersync_t *self, peersync_peer_t *peer)
{
    if (!peer->address || peer->fetching || peer->directory)
        return;
    peer->next_try = cbus_mono_ms () + PEERSYNC_RETRY_MS;
    if (strncmp (peer->address, "http://", 7) == 0) {
        char *url = zsys_sprintf ("%s/node/info", peer->address);
        if (url && zsock_send (self->links.fetch, "ss", "GET", url) == 0)
            peer->fetching = true;
        zstr_free (&url);
        return;
    }
    //  tcp://host:port: the directory is on port + PEERSYNC_DIRECTORY_OFFSET.
    const char *colon = strrchr (peer->address, ':');
    int port = colon ? atoi (colon + 1) : 0;
    if (port + PEERSYNC_DIRECTORY_OFFSET > 65535) {
        peersync_set_state (self, peer, P_REFUSED, "its directory port would be past 65535");
        return;
    }
    peer->directory = zsock_new (ZMQ_DEALER);
    if (!peer->directory)
        return;
    zsock_set_linger (peer->directory, 0);
    zsock_set_sndtimeo (peer->directory, 0);
    zsock_set_maxmsgsize (peer->directory, 64 * 1024);
    if (zsock_connect (peer->directory, "%.*s:%d", (int) (colon - peer->address), peer->address,
                       port + PEERSYNC_DIRECTORY_OFFSET)) {
        zsock_destroy (&peer->directory);
        peersync_set_state (self, peer, P_FETCHING, "its directory address does not connect");
        return;
    }
    zloop_reader (self->loop, peer->directory, s_on_directory_answer, self);
    zsock_send (peer->directory, "ss", CBUS_P2P_INFO, "");
}

//  Why a /node/info GET failed, for PEER.LIST. The fetcher's error text is
//  not NUL-terminated: copy it by size, printable ASCII only (it goes out
//  in JSON).
static void
s_fetch_failed (peersync_t *self, peersync_peer_t *peer, const char *code, zchunk_t *body)
{
    char error [121] = "its /node/info did not answer with JSON";
    if (code && streq (code, "0") && body) {
        size_t size = zchunk_size (body) < 120 ? zchunk_size (body) : 120;
        for (size_t index = 0; index < size; index++) {
            char c = (char) zchunk_data (body) [index];
            error [index] = c >= 0x20 && c < 0x7f ? c : '?';
        }
        error [size] = 0;
    }
    char reason [160];
    snprintf (reason, sizeof (reason), "unreachable: %s", error);
    peersync_set_state (self, peer, P_FETCHING, reason);
}

static void
s_fetched (peersync_t *self, peersync_peer_t *peer, const char *code, zchunk_t *body)
{
    peer->fetching = false;
    json_error_t error;
    json_t *info = NULL;
    if (code && streq (code, "200") && body)
        info = json_loadb ((const char *) zchunk_data (body), zchunk_size (body), 0, &error);
    if (!info) {
        s_fetch_failed (self, peer, code, body);
        return;
    }
    uint8_t genesis [CBUS_HASH_BYTES];
    const char *genesis_hex = json_string_value (json_object_get (info, "genesis"));
    bool genesis_ok = genesis_hex && cbus_hex_decode (genesis_hex, genesis, CBUS_HASH_BYTES) == 0;
    s_take_info (self, peer, json_string_value (json_object_get (info, "network")),
                 genesis_ok ? genesis : NULL,
                 json_string_value (json_object_get (info, "public_key")),
                 json_string_value (json_object_get (info, "p2p_endpoint")));
    json_decref (info);
}

int
peersync_on_fetched (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    peersync_t *self = (peersync_t *) arg;
    char *command = NULL, *url = NULL, *code = NULL;
    zchunk_t *body = NULL;
    if (zsock_recv (self->links.fetch, "sssc", &command, &url, &code, &body) == -1)
        return 0;
    PEERSYNC_EACH (self, peer)
        if (peer->address && peer->fetching && url
        &&  strncmp (url, peer->address, strlen (peer->address)) == 0
        &&  streq (url + strlen (peer->address), "/node/info")) {
            s_fetched (self, peer, code, body);
            break;
        }
    zstr_free (&command);
    zstr_free (&url);
    zstr_free (&code);
    zchunk_destroy (&body);
    return 0;
}

//  An INFO answer from a tcp:// peer's directory.
static int
s_on_directory_answer (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    peersync_t *self = (peersync_t *) arg;
    zmsg_t *msg = zmsg_recv (reader);
    peersync_peer_t *peer = NULL;
    PEERSYNC_EACH (self, candidate)
        if (candidate->directory == reader)
            peer = candidate;
    if (!peer) {
        zmsg_destroy (&msg);
        return 0;
    }
    s_close_directory (self, peer);
    zframe_t *body = msg && zmsg_size (msg) == 2 ? zmsg_last (msg) : NULL;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    peersync_info_t info;
    if (body && cbus_unpack_next (&unpacked, (const char *) zframe_data (body), zframe_size (body),
                                  &offset) == MSGPACK_UNPACK_SUCCESS) {
        if (peersync_info_parse (&info, &unpacked.data) == 0) {
            char network [PEERSYNC_NETWORK_MAX], key [41];
            snprintf (network, sizeof (network), "%.*s", (int) info.network_size, info.network);
            snprintf (key, sizeof (key), "%.*s", (int) info.public_key_size, info.public_key);
            //  The endpoint we were given is the one we dialled.
            s_take_info (self, peer, network, info.genesis, key, peer->address);
        }
        else
            peersync_set_state (self, peer, P_FETCHING, "its directory answer is malformed");
    }
    msgpack_unpacked_destroy (&unpacked);
    zmsg_destroy (&msg);
    return 0;
}

//  Our plaintext directory: INFO only, once we know our chain.
int
peersync_on_directory (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    peersync_t *self = (peersync_t *) arg;
    zmsg_t *msg = zmsg_recv (self->links.directory);
    if (msg && zmsg_size (msg) >= 2 && self->chain.known) {
        zframe_t *routing_id = zmsg_pop (msg);
        char *command = zmsg_popstr (msg);
        if (command && streq (command, CBUS_P2P_INFO)) {
            peersync_info_t info = {
                .network = self->chain.network, .network_size = strlen (self->chain.network),
                .node_id = cbus_identity_node_id (self->links.identity), .node_id_size = 16,
                .public_key = cbus_identity_public (self->links.identity), .public_key_size = 40,
                .endpoint = self->links.endpoint, .endpoint_size = strlen (self->links.endpoint)
            };
            memcpy (info.genesis, self->chain.genesis, CBUS_HASH_BYTES);
            peersync_info_pack (&info, &self->message);
            zmsg_t *answer = zmsg_new ();
            zmsg_append (answer, &routing_id);
            zmsg_addstr (answer, CBUS_P2P_INFO);
            zmsg_addmem (answer, self->message.data, self->message.size);
            zmsg_send (&answer, self->links.directory);
            zmsg_destroy (&answer);
        }
        zstr_free (&command);
        zframe_destroy (&routing_id);
    }
    zmsg_destroy (&msg);
    return 0;
}
