/*  =========================================================================
    cbus_peersync - the node's side of the network: keeps the peer list
    =========================================================================
*/
#include "cbus_peersync.h"
#include "cbus_peers.h"

//  Most addresses taken in one PEER.ADD.
#define S_MAX_ADD 256

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zsock_t *router;            //  Requests from the gateway and tools
    cbus_pub_t *pub;            //  Events and heartbeats
    cbus_peers_t *peers;        //  The peer list
    cbus_buf_t reply;           //  Reused reply buffer
} s_peersync_t;

static msgpack_packer
s_begin (s_peersync_t *self, uint32_t count)
{
    cbus_buf_reset (&self->reply);
    msgpack_packer pk;
    cbus_packer_init (&pk, &self->reply);
    msgpack_pack_map (&pk, count);
    return pk;
}

static void
s_pack_addresses (s_peersync_t *self, msgpack_packer *pk)
{
    msgpack_pack_array (pk, (uint32_t) cbus_peers_size (self->peers));
    for (const char *address = cbus_peers_first (self->peers); address;
         address = cbus_peers_next (self->peers))
        cbus_pack_str (pk, address);
}

static void
s_handle_add (s_peersync_t *self, cbus_request_t *request)
{
    const msgpack_object *list = cbus_msg_get (cbus_request_map (request), "addresses");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size == 0
    ||  list->via.array.size > S_MAX_ADD) {
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID,
                          "Error: Please supply a valid list of nodes (1 to %d)", S_MAX_ADD);
        return;
    }
    //  All or nothing: normalise every address before adding any.
    zlist_t *addresses = zlist_new ();
    zlist_autofree (addresses);
    for (uint32_t index = 0; index < list->via.array.size; index++) {
        const msgpack_object *item = &list->via.array.ptr [index];
        char address [CBUS_PEER_ADDRESS_MAX], reason [CBUS_REASON_MAX];
        if (item->type != MSGPACK_OBJECT_STR) {
            cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "Node addresses must be strings");
            zlist_destroy (&addresses);
            return;
        }
        //  The normaliser reads a sized string: a NUL inside is refused
        //  as a bad character like any other.
        if (cbus_peers_normalize (item->via.str.ptr, item->via.str.size, address, reason)) {
            cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "%s", reason);
            zlist_destroy (&addresses);
            return;
        }
        zlist_append (addresses, address);
    }
    int added = cbus_peers_add (self->peers, addresses);
    zlist_destroy (&addresses);
    if (added < 0) {
        cbus_reply_error (self->router, request, CBUS_STATUS_ERROR, "Could not save the peer list");
        return;
    }
    if (added)
        zsys_info ("peers added count=%d total=%zu", added, cbus_peers_size (self->peers));
    msgpack_packer pk = s_begin (self, 1);
    cbus_pack_str (&pk, "peers");
    s_pack_addresses (self, &pk);
    cbus_reply_send (self->router, request, CBUS_STATUS_OK, self->reply.data, self->reply.size);
}

//  Each peer as {"address", "state"}, for PEER.LIST and RESOLVE.
static void
s_pack_peer_states (s_peersync_t *self, msgpack_packer *pk, const char *key)
{
    msgpack_pack_array (pk, (uint32_t) cbus_peers_size (self->peers));
    for (const char *address = cbus_peers_first (self->peers); address;
         address = cbus_peers_next (self->peers)) {
        msgpack_pack_map (pk, 2);
        cbus_pack_kv_str (pk, "address", address);
        cbus_pack_kv_str (pk, key, "not linked");
    }
}

static int
s_on_request (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    s_peersync_t *self = (s_peersync_t *) arg;
    cbus_request_t *request = cbus_request_recv (self->router);
    if (!request)
        return 0;
    const char *command = request->command;
    if (!request->decoded)
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "The body is not a msgpack map");
    else
    if (streq (command, CBUS_CMD_PEER_ADD))
        s_handle_add (self, request);
    else
    if (streq (command, CBUS_CMD_PEER_LIST)) {
        msgpack_packer pk = s_begin (self, 1);
        cbus_pack_str (&pk, "peers");
        s_pack_peer_states (self, &pk, "state");
        cbus_reply_send (self->router, request, CBUS_STATUS_OK, self->reply.data, self->reply.size);
    }
    else
    if (streq (command, CBUS_CMD_RESOLVE)) {
        //  No links yet: nothing can replace our chain.
        msgpack_packer pk = s_begin (self, 2);
        cbus_pack_kv_bool (&pk, "replaced", false);
        cbus_pack_str (&pk, "peers");
        s_pack_peer_states (self, &pk, "status");
        cbus_reply_send (self->router, request, CBUS_STATUS_OK, self->reply.data, self->reply.size);
    }
    else
    if (streq (command, CBUS_CMD_PING)) {
        msgpack_packer pk = s_begin (self, 2);
        cbus_pack_kv_str (&pk, "role", "peersync");
        cbus_pack_kv_u64 (&pk, "pid", (uint64_t) getpid ());
        cbus_reply_send (self->router, request, CBUS_STATUS_OK, self->reply.data, self->reply.size);
    }
    else
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "Unknown command %s", command);
    cbus_request_destroy (&request);
    return 0;
}

static int
s_on_heartbeat (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    cbus_pub_heartbeat (((s_peersync_t *) arg)->pub);
    return 0;
}

static int
s_on_pipe (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) arg;
    char *command = zstr_recv (reader);
    int rc = (!command || streq (command, "$TERM")) ? -1 : 0;
    zstr_free (&command);
    return rc;
}

void
cbus_peersync_actor (zsock_t *pipe, void *args)
{
    cbus_config_t *config = (cbus_config_t *) args;
    s_peersync_t self = { .pipe = pipe };
    char *endpoint = cbus_config_endpoint (config, "peersync");
    char *bus = cbus_config_endpoint (config, "bus-in");
    char *path = cbus_config_path (config, "peers");
    zloop_t *loop = NULL;
    zsock_signal (pipe, 0);

    self.peers = cbus_peers_new (path);
    self.router = zsock_new (ZMQ_ROUTER);
    zsock_set_maxmsgsize (self.router, 1024 * 1024);
    if (zsock_bind (self.router, "%s", endpoint)) {
        cbus_service_fail (pipe, "cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        goto cleanup;
    }
    self.pub = cbus_pub_new (bus, "peersync");
    assert (self.pub);
    loop = zloop_new ();
    zloop_reader (loop, pipe, s_on_pipe, &self);
    zloop_reader (loop, self.router, s_on_request, &self);
    zloop_timer (loop, CBUS_HEARTBEAT_MS, 0, s_on_heartbeat, &self);
    zsys_info ("peersync ready peers=%zu endpoint=%s", cbus_peers_size (self.peers), endpoint);
    zloop_start (loop);
cleanup:
    zloop_destroy (&loop);
    zsock_destroy (&self.router);
    cbus_pub_destroy (&self.pub);
    cbus_peers_destroy (&self.peers);
    cbus_buf_free (&self.reply);
    zstr_free (&endpoint);
    zstr_free (&bus);
    zstr_free (&path);
}
