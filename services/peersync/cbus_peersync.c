/*  =========================================================================
    cbus_peersync - the node's side of the peer-to-peer network
    =========================================================================
*/
#include "cbus_peersync.h"
#include "cbus_peers.h"
#include "cbus_identity.h"
#include "cbus_fetch.h"

//  Most addresses taken in one PEER.ADD.
#define S_MAX_ADD           256
//  Most peers linked to us from outside.
#define S_MAX_INBOUND       64
//  Timer granularity; STATUS and HELLO intervals.
#define S_TICK_MS           100
#define S_STATUS_MS         2000
#define S_HELLO_MS          2000
//  A peer silent this long is no longer linked (it sends STATUS every 2 s).
#define S_SILENT_MS         7000
//  How often an unreachable peer's info is asked for again, and a peer
//  that refused us (or we it) is tried again.
#define S_RETRY_MS          3000
#define S_REFUSED_RETRY_MS  60000
//  How long a sync request may take before the peer is scored down.
#define S_SYNC_TIMEOUT_MS   15000
//  Scores: start at 0, cut off at S_BAN_SCORE for S_BAN_MS.
#define S_BAN_SCORE         (-100)
#define S_BAN_MS            (10 * 60 * 1000)
#define S_MALFORMED_COST    10
#define S_INVALID_BLOCK_COST 50
#define S_TIMEOUT_COST      10
//  Sync batch sizes.
#define S_HEADERS_BATCH     2000
#define S_BLOCKS_BATCH      100
#define S_BLOCKS_BYTES      (4 * 1024 * 1024)
//  Transactions gossiped in one TX message.
#define S_TX_BATCH          256
//  How long the chainstore is given to answer.
#define S_STORE_TIMEOUT_MS  10000
//  Of a resolve's time, what is spent asking peers before choosing.
#define S_RESOLVE_ASK_MS    2000
//  The plaintext directory listens this far above the peer port (not
//  next to it: nodes on consecutive ports would clash).
#define S_DIRECTORY_OFFSET  1000

typedef enum {
    P_FETCHING,                 //  Learning the peer's endpoint and key
    P_CONNECTING,               //  Link up, HELLO not answered yet
    P_LINKED,                   //  HELLO exchanged: the peer is in the network
    P_REFUSED,                  //  Another network, or ourselves
    P_BANNED                    //  Misbehaved; cut off until banned_until
} s_state_t;

static const char *s_state_names [] = { "fetching", "connecting", "linked", "refused", "banned" };

typedef struct {
    char *address;              //  As registered, or NULL for an inbound peer
    char endpoint [CBUS_PEER_ADDRESS_MAX];  //  Its tcp:// peer endpoint
    char public_key [41];       //  Its CurveZMQ key (Z85)
    zsock_t *dealer;            //  Our link to it (outbound peers)
    zsock_t *monitor;           //  The link's connect/disconnect events
    zsock_t *directory;         //  Plaintext INFO query in flight (tcp:// peers)
    zframe_t *routing_id;       //  Its link to us (inbound peers)
    char node_id [17];          //  From its HELLO
    char linked_id [17];        //  The node id it was linked as, or ""
    s_state_t state;            //  See s_state_t
    char reason [160];          //  Why it is not linked, for PEER.LIST
    uint64_t height;            //  Its tip, from HELLO and STATUS
    uint8_t work [CBUS_U256_BYTES];
    uint8_t tip [CBUS_HASH_BYTES];
    int score;                  //  Misbehaviour so far (0 is clean)
    int64_t banned_until;       //  Monotonic ms
    int64_t last_heard;         //  Monotonic ms of its last message
    int64_t last_seen_wall;     //  Wall-clock ms of the same, for users
    int64_t next_try;           //  When to ask for its info again
    int64_t next_hello;         //  When to send HELLO again
    int64_t next_status;        //  When to send STATUS again
    bool fetching;              //  An info request is in flight
    bool asked;                 //  Asked for STATUS by a resolve
    bool answered;              //  ... and answered
    void *handle;               //  Its place in the peer list
} s_peer_t;

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    cbus_config_t *config;      //  Settings
    zsock_t *router;            //  Local requests (PEER.ADD ...)
    zsock_t *p2p;               //  Peer protocol, CurveZMQ server
    zsock_t *directory;         //  Plaintext INFO, next port
    zsock_t *sub;               //  mempool.tx.added, chain.block.*
    zsock_t *mempool;           //  Submissions from peers (answers drained)
    cbus_client_t *chainstore;  //  Questions to the chainstore
    cbus_pub_t *pub;            //  Events and heartbeats
    zactor_t *fetch;            //  HTTP GETs of /node/info
    zloop_t *loop;              //  Our reactor
    cbus_identity_t *identity;  //  Our keypair and node id
    cbus_peers_t *registered;   //  The saved peer list
    zlistx_t *peers;            //  s_peer_t, registered first then inbound
    char endpoint [CBUS_PEER_ADDRESS_MAX];  //  Our advertised endpoint
    //  Our chain
    bool chain_known;           //  TIP answered once
    char network [64];          //  Network id
    uint8_t genesis [CBUS_HASH_BYTES];
    uint64_t height;            //  Our tip
    uint8_t work [CBUS_U256_BYTES];
    uint8_t tip [CBUS_HASH_BYTES];
    //  Sync: one peer at a time
    s_peer_t *sync_peer;        //  Who we sync from, or NULL
    bool sync_headers;          //  Waiting for HEADERS (else BLOCKS)
    uint8_t (*queue) [CBUS_HASH_BYTES];     //  Blocks to fetch
    size_t queue_size;          //  Entries in queue
    size_t queue_next;          //  Next to ask for
    size_t queue_asked;         //  Asked in the outstanding GETBLOCKS
    bool more_headers;          //  The last HEADERS was full
    int64_t sync_deadline;      //  Monotonic ms
    uint64_t sync_target;       //  Peer's height when the sync started
    uint64_t synced_blocks;     //  Blocks connected by this sync
    int64_t sync_logged;        //  Last progress line
    zhashx_t *quiet;            //  Block hashes not to relay (came by sync)
    zhashx_t *links;            //  node id -> s_links_t, linked nodes only
    //  Gossip out
    cbus_buf_t relay;           //  TX body being gathered
    size_t relay_count;         //  Transactions in it
    size_t linked;              //  Peers linked: mempool.tx.added is
                                //  subscribed to while there are any
    //  Resolve
    cbus_request_t *resolve;    //  The RESOLVE waiting for an answer
    int64_t resolve_ask_until;  //  End of the asking phase
    int64_t resolve_until;      //  Deadline of the whole resolve
    uint8_t resolve_start_tip [CBUS_HASH_BYTES];
    bool resolve_syncing;       //  Asking phase over, waiting for the sync
    int64_t resolve_timeout_ms; //  gateway/resolve_timeout_ms, less a margin
    int64_t next_beat;          //  Next heartbeat
    uint64_t next_request;      //  Ids for mempool submissions
    cbus_buf_t reply;           //  Reused reply and message buffer
} s_peersync_t;

static void s_sync_start (s_peersync_t *self, s_peer_t *peer);
static void s_sync_stop (s_peersync_t *self, const char *why);

//  --------------------------------------------------------------------------
//  Helpers

static void
s_local_reply (s_peersync_t *self, cbus_request_t *request)
{
    cbus_reply_send (self->router, request, CBUS_STATUS_OK, self->reply.data, self->reply.size);
}

static const char *
s_peer_name (s_peer_t *peer)
{
    return peer->address ? peer->address : (*peer->endpoint ? peer->endpoint : peer->node_id);
}

//  Send self->reply as [command][body] to a peer; dropped (not queued)
//  when the link is not up or is full, so one slow peer holds nobody up.
static void
s_send (s_peersync_t *self, s_peer_t *peer, const char *command)
{
    zsock_t *socket = peer->dealer ? peer->dealer : self->p2p;
    void *handle = zsock_resolve (socket);
    if (!peer->dealer) {
        if (!peer->routing_id)
            return;
        if (zmq_send (handle, zframe_data (peer->routing_id), zframe_size (peer->routing_id),
                      ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
            return;
    }
    if (zmq_send (handle, command, strlen (command), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return;
    zmq_send (handle, self->reply.data, self->reply.size, ZMQ_DONTWAIT);
}

//  Ask the chainstore; OK replies decoded into unpacked (caller destroys
//  it and the frame). -1 otherwise, with the reason when it gave one.
static int
s_ask_store (s_peersync_t *self, const char *command, cbus_buf_t *body,
             zframe_t **frame_p, msgpack_unpacked *unpacked, char *reason)
{
    char *status = NULL;
    snprintf (reason, CBUS_REASON_MAX, "chainbus-chainstore did not answer");
    if (cbus_client_call (self->chainstore, command, body ? body->data : NULL,
                          body ? body->size : 0, S_STORE_TIMEOUT_MS, &status, frame_p))
        return -1;
    msgpack_unpacked_init (unpacked);
    size_t offset = 0;
    int rc = msgpack_unpack_next (unpacked, (const char *) zframe_data (*frame_p),
                                  zframe_size (*frame_p), &offset) == MSGPACK_UNPACK_SUCCESS
          && unpacked->data.type == MSGPACK_OBJECT_MAP ? 0 : -1;
    if (rc == 0 && !streq (status, CBUS_STATUS_OK)) {
        const char *text;
        size_t size;
        if (cbus_msg_get_str (&unpacked->data, "reason", &text, &size) == 0)
            snprintf (reason, CBUS_REASON_MAX, "%.*s", (int) size, text);
        rc = -1;
    }
    zstr_free (&status);
    if (rc) {
        msgpack_unpacked_destroy (unpacked);
        zframe_destroy (frame_p);
    }
    return rc;
}

//  Learn our chain's network, genesis and tip from the chainstore.
static void
s_refresh_chain (s_peersync_t *self)
{
    zframe_t *frame;
    msgpack_unpacked unpacked;
    char reason [CBUS_REASON_MAX];
    if (s_ask_store (self, CBUS_CMD_TIP, NULL, &frame, &unpacked, reason))
        return;
    const char *network;
    size_t size;
    if (cbus_msg_get_str (&unpacked.data, "network", &network, &size) == 0
    &&  size < sizeof (self->network)
    &&  cbus_msg_get_hash (&unpacked.data, "genesis", self->genesis) == 0
    &&  cbus_msg_get_u64 (&unpacked.data, "height", &self->height) == 0
    &&  cbus_msg_get_hash (&unpacked.data, "hash", self->tip) == 0
    &&  cbus_msg_get_hash (&unpacked.data, "work", self->work) == 0) {
        snprintf (self->network, sizeof (self->network), "%.*s", (int) size, network);
        self->chain_known = true;
    }
    msgpack_unpacked_destroy (&unpacked);
    zframe_destroy (&frame);
}

static void
s_pack_tip (s_peersync_t *self, msgpack_packer *pk)
{
    cbus_pack_kv_u64 (pk, "height", self->height);
    cbus_pack_kv_bin (pk, "work", self->work, CBUS_U256_BYTES);
    cbus_pack_kv_bin (pk, "tip", self->tip, CBUS_HASH_BYTES);
}

//  HELLO; want_reply asks the peer to answer with its own (the dialler
//  asks, and so does a node that gets traffic on a link it does not know,
//  which happens when it restarted while its peer still counted it linked).
static void
s_send_hello (s_peersync_t *self, s_peer_t *peer, bool want_reply)
{
    msgpack_packer pk = cbus_packer_begin (&self->reply, 10);
    cbus_pack_kv_bool (&pk, "reply", want_reply);
    cbus_pack_kv_u64 (&pk, "version", CBUS_P2P_VERSION);
    cbus_pack_kv_str (&pk, "network", self->network);
    cbus_pack_kv_bin (&pk, "genesis", self->genesis, CBUS_HASH_BYTES);
    cbus_pack_kv_str (&pk, "node_id", cbus_identity_node_id (self->identity));
    cbus_pack_kv_str (&pk, "public_key", cbus_identity_public (self->identity));
    cbus_pack_kv_str (&pk, "endpoint", self->endpoint);
    s_pack_tip (self, &pk);
    s_send (self, peer, CBUS_P2P_HELLO);
    peer->next_hello = cbus_mono_ms () + S_HELLO_MS;
}

static void
s_send_status (s_peersync_t *self, s_peer_t *peer, bool want_reply)
{
    msgpack_packer pk = cbus_packer_begin (&self->reply, 4);
    s_pack_tip (self, &pk);
    cbus_pack_kv_bool (&pk, "reply", want_reply);
    s_send (self, peer, CBUS_P2P_STATUS);
    peer->next_status = cbus_mono_ms () + S_STATUS_MS;
}

static void
s_send_reject (s_peersync_t *self, s_peer_t *peer, const char *reason)
{
    msgpack_packer pk = cbus_packer_begin (&self->reply, 1);
    cbus_pack_kv_str (&pk, "reason", reason);
    s_send (self, peer, CBUS_P2P_REJECT);
}

static void
s_publish_peer (s_peersync_t *self, const char *topic, s_peer_t *peer)
{
    cbus_buf_t event = {0};
    msgpack_packer pk;
    cbus_pub_begin (self->pub, &pk, &event, 3);
    cbus_pack_kv_str (&pk, "address", s_peer_name (peer));
    cbus_pack_kv_str (&pk, "node_id", peer->node_id);
    cbus_pack_kv_str (&pk, "state", s_state_names [peer->state]);
    cbus_pub_send (self->pub, topic, &event);
    cbus_buf_free (&event);
}

//  Close an outbound peer's link (it is opened again from its info).
static void
s_unlink (s_peersync_t *self, s_peer_t *peer)
{
    if (peer->monitor) {
        zloop_reader_end (self->loop, peer->monitor);
        zmq_socket_monitor (zsock_resolve (peer->dealer), NULL, 0);
        zsock_destroy (&peer->monitor);
    }
    if (peer->dealer) {
        zloop_reader_end (self->loop, peer->dealer);
        zsock_destroy (&peer->dealer);
    }
    if (peer->directory) {
        zloop_reader_end (self->loop, peer->directory);
        zsock_destroy (&peer->directory);
    }
    if (self->sync_peer == peer)
        s_sync_stop (self, "link closed");
}

//  The links to one node. Two nodes that registered each other have two,
//  one opened by each; gossip goes over one only, the one opened by the
//  node with the smaller id, so both ends agree which without a word.
typedef struct {
    int outbound;               //  Linked links we opened to it
    int inbound;                //  Linked links it opened to us
} s_links_t;

static void
s_links_free (s_links_t **links_p)
{
    free (*links_p);
    *links_p = NULL;
}

static void
s_links_count (s_peersync_t *self, s_peer_t *peer, int delta)
{
    if (!*peer->linked_id)
        return;
    s_links_t *links = (s_links_t *) zhashx_lookup (self->links, peer->linked_id);
    if (!links) {
        links = (s_links_t *) zmalloc (sizeof (s_links_t));
        zhashx_insert (self->links, peer->linked_id, links);
    }
    if (peer->address)
        links->outbound += delta;
    else
        links->inbound += delta;
    if (links->outbound <= 0 && links->inbound <= 0)
        zhashx_delete (self->links, peer->linked_id);
}

//  A linked peer whose node is also linked the other way, and that way
//  wins: the link stays up (HELLO, STATUS, liveness) but carries no
//  gossip, and counts once in PEER.LIST's figures.
static bool
s_peer_redundant (s_peersync_t *self, s_peer_t *peer)
{
    if (peer->state != P_LINKED || !*peer->linked_id)
        return false;
    s_links_t *links = (s_links_t *) zhashx_lookup (self->links, peer->linked_id);
    if (!links)
        return false;
    bool ours_wins = strcmp (cbus_identity_node_id (self->identity), peer->linked_id) < 0;
    return ours_wins ? !peer->address && links->outbound > 0
                     : peer->address && links->inbound > 0;
}

static void
s_set_state (s_peersync_t *self, s_peer_t *peer, s_state_t state, const char *reason)
{
    bool was_linked = peer->state == P_LINKED;
    peer->state = state;
    if (state == P_REFUSED)
        peer->next_try = cbus_mono_ms () + S_REFUSED_RETRY_MS;
    snprintf (peer->reason, sizeof (peer->reason), "%s", reason ? reason : "");
    //  New transactions are only worth hearing while a peer is linked;
    //  with none, the mempool's PUB (which filters) does not send them.
    if (!was_linked && state == P_LINKED && self->linked++ == 0)
        zsock_set_subscribe (self->sub, CBUS_TOPIC_TX_ADDED);
    if (was_linked && state != P_LINKED && --self->linked == 0)
        zsock_set_unsubscribe (self->sub, CBUS_TOPIC_TX_ADDED);
    if (!was_linked && state == P_LINKED) {
        memcpy (peer->linked_id, peer->node_id, sizeof (peer->linked_id));
        s_links_count (self, peer, 1);
    }
    if (was_linked && state != P_LINKED) {
        s_links_count (self, peer, -1);
        *peer->linked_id = 0;
        zsys_info ("peer unlinked peer=%s state=%s reason=\"%s\"", s_peer_name (peer),
                   s_state_names [state], peer->reason);
        s_publish_peer (self, CBUS_TOPIC_PEER_DISCONNECTED, peer);
        if (self->sync_peer == peer)
            s_sync_stop (self, "peer unlinked");
    }
}

//  Score a peer down; at the ban score it is cut off for a while.
static void
s_punish (s_peersync_t *self, s_peer_t *peer, int cost, const char *why)
{
    peer->score -= cost;
    zsys_warning ("peer misbehaved peer=%s cost=%d score=%d why=\"%s\"", s_peer_name (peer),
                  cost, peer->score, why);
    if (peer->score <= S_BAN_SCORE && peer->state != P_BANNED) {
        char reason [160];
        snprintf (reason, sizeof (reason), "banned for 10 minutes: %s", why);
        s_send_reject (self, peer, reason);
        s_set_state (self, peer, P_BANNED, reason);
        peer->banned_until = cbus_mono_ms () + S_BAN_MS;
        s_unlink (self, peer);
    }
}

//  --------------------------------------------------------------------------
//  Peers: creating, finding, learning their keys

static s_peer_t *
s_peer_new (const char *address)
{
    s_peer_t *peer = (s_peer_t *) zmalloc (sizeof (s_peer_t));
    peer->address = address ? strdup (address) : NULL;
    peer->state = P_FETCHING;
    return peer;
}

static void
s_peer_destroy (s_peersync_t *self, s_peer_t **peer_p)
{
    s_peer_t *peer = *peer_p;
    if (!peer)
        return;
    s_unlink (self, peer);
    zframe_destroy (&peer->routing_id);
    free (peer->address);
    free (peer);
    *peer_p = NULL;
}

static s_peer_t *
s_find_inbound (s_peersync_t *self, zframe_t *routing_id)
{
    for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer;
         peer = (s_peer_t *) zlistx_next (self->peers))
        if (peer->routing_id && zframe_eq (peer->routing_id, routing_id))
            return peer;
    return NULL;
}

static s_peer_t *
s_find_dealer (s_peersync_t *self, zsock_t *socket, bool directory)
{
    for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer;
         peer = (s_peer_t *) zlistx_next (self->peers))
        if ((directory ? peer->directory : peer->dealer) == socket)
            return peer;
    return NULL;
}

static int s_on_link (zloop_t *loop, zsock_t *reader, void *arg);
static int s_on_monitor (zloop_t *loop, zsock_t *reader, void *arg);
static int s_on_directory_answer (zloop_t *loop, zsock_t *reader, void *arg);

//  We know the peer's endpoint and key: open the CurveZMQ link.
static void
s_link (s_peersync_t *self, s_peer_t *peer)
{
    s_unlink (self, peer);
    peer->dealer = zsock_new (ZMQ_DEALER);
    cbus_identity_apply_client (self->identity, peer->dealer, peer->public_key);
    zsock_set_maxmsgsize (peer->dealer, CBUS_MSG_MAX_BYTES);
    zsock_set_linger (peer->dealer, 0);
    zsock_set_immediate (peer->dealer, 1);
    zsock_set_sndhwm (peer->dealer, 1000);
    zsock_set_heartbeat_ivl (peer->dealer, 1000);
    zsock_set_heartbeat_timeout (peer->dealer, 5000);
    zsock_set_heartbeat_ttl (peer->dealer, 5000);
    if (zsock_connect (peer->dealer, "%s", peer->endpoint)) {
        s_set_state (self, peer, P_FETCHING, "cannot connect to its endpoint");
        zsock_destroy (&peer->dealer);
        peer->next_try = cbus_mono_ms () + S_RETRY_MS;
        return;
    }
    zloop_reader (self->loop, peer->dealer, s_on_link, self);
    //  Watch the connection itself: a peer that restarts quickly would
    //  otherwise still count as linked while it knows nothing of us.
    static unsigned s_monitors = 0;
    char monitor [64];
    snprintf (monitor, sizeof (monitor), "inproc://peersync-monitor-%u", s_monitors++);
    if (zmq_socket_monitor (zsock_resolve (peer->dealer), monitor,
                            ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED) == 0) {
        peer->monitor = zsock_new_pair (monitor);
        if (peer->monitor)
            zloop_reader (self->loop, peer->monitor, s_on_monitor, self);
    }
    s_set_state (self, peer, P_CONNECTING, "waiting for its HELLO");
    peer->next_hello = 0;               //  As soon as the link is up
    peer->last_heard = cbus_mono_ms ();
}

//  The info a peer gave about itself (from /node/info or INFO): check it
//  and link. Returns -1 with the peer refused or left to retry.
static int
s_take_info (s_peersync_t *self, s_peer_t *peer, const char *network, const uint8_t *genesis,
             const char *public_key, const char *endpoint)
{
    char reason [CBUS_REASON_MAX];
    uint8_t raw [32];
    if (!network || !genesis || !public_key || strlen (public_key) != 40
    ||  !zmq_z85_decode (raw, public_key) || !endpoint) {
        s_set_state (self, peer, P_FETCHING, "its info is incomplete or malformed");
        return -1;
    }
    if (!streq (network, self->network) || memcmp (genesis, self->genesis, CBUS_HASH_BYTES) != 0) {
        snprintf (reason, sizeof (reason), "another network (it runs '%.40s' with another genesis; we run '%s')",
                  network, self->network);
        if (streq (network, self->network))
            snprintf (reason, sizeof (reason), "same network id '%s' but another genesis block", network);
        s_set_state (self, peer, P_REFUSED, reason);
        zsys_warning ("peer refused peer=%s reason=\"%s\"", s_peer_name (peer), reason);
        return -1;
    }
    if (streq (public_key, cbus_identity_public (self->identity))) {
        s_set_state (self, peer, P_REFUSED, "that address is this node itself");
        return -1;
    }
    char normal [CBUS_PEER_ADDRESS_MAX];
    if (cbus_peers_normalize (endpoint, strlen (endpoint), normal, reason) || strncmp (normal, "tcp://", 6)) {
        s_set_state (self, peer, P_FETCHING, "its peer endpoint is not tcp://host:port");
        return -1;
    }
    snprintf (peer->endpoint, sizeof (peer->endpoint), "%s", normal);
    snprintf (peer->public_key, sizeof (peer->public_key), "%s", public_key);
    s_link (self, peer);
    return 0;
}

//  Ask a peer who it is: its gateway's /node/info (http://) or its
//  plaintext directory on the port after its peer port (tcp://).
static void
s_ask_info (s_peersync_t *self, s_peer_t *peer)
{
    if (!peer->address || peer->fetching || peer->directory)
        return;
    peer->next_try = cbus_mono_ms () + S_RETRY_MS;
    if (strncmp (peer->address, "http://", 7) == 0) {
        char *url = zsys_sprintf ("%s/node/info", peer->address);
        zsock_send (self->fetch, "ss", "GET", url);
        zstr_free (&url);
        peer->fetching = true;
        return;
    }
    //  tcp://host:port: the directory is on port + S_DIRECTORY_OFFSET.
    const char *colon = strrchr (peer->address, ':');
    int port = atoi (colon + 1);
    if (port + S_DIRECTORY_OFFSET > 65535) {
        s_set_state (self, peer, P_REFUSED, "its directory port would be past 65535");
        return;
    }
    peer->directory = zsock_new (ZMQ_DEALER);
    zsock_set_linger (peer->directory, 0);
    zsock_set_maxmsgsize (peer->directory, 64 * 1024);
    zsock_connect (peer->directory, "%.*s:%d", (int) (colon - peer->address), peer->address,
                   port + S_DIRECTORY_OFFSET);
    zloop_reader (self->loop, peer->directory, s_on_directory_answer, self);
    zsock_send (peer->directory, "ss", CBUS_P2P_INFO, "");
}

//  A /node/info answer from the fetcher.
static int
s_on_fetched (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    s_peersync_t *self = (s_peersync_t *) arg;
    char *command = NULL, *url = NULL, *code = NULL;
    zchunk_t *body = NULL;
    if (zsock_recv (self->fetch, "sssc", &command, &url, &code, &body) == -1)
        return 0;
    s_peer_t *peer = NULL;
    for (peer = (s_peer_t *) zlistx_first (self->peers); peer; peer = (s_peer_t *) zlistx_next (self->peers))
        if (peer->address && peer->fetching && url
        &&  strncmp (url, peer->address, strlen (peer->address)) == 0
        &&  streq (url + strlen (peer->address), "/node/info"))
            break;
    if (peer) {
        peer->fetching = false;
        json_error_t error;
        json_t *info = NULL;
        if (code && streq (code, "200") && body)
            info = json_loadb ((const char *) zchunk_data (body), zchunk_size (body), 0, &error);
        if (!info) {
            //  The fetcher's error text is not NUL-terminated: copy it by
            //  size, printable ASCII only (it goes out in JSON).
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
            s_set_state (self, peer, P_FETCHING, reason);
        }
        else {
            uint8_t genesis [CBUS_HASH_BYTES];
            const char *genesis_hex = json_string_value (json_object_get (info, "genesis"));
            bool genesis_ok = genesis_hex && cbus_hex_decode (genesis_hex, genesis, CBUS_HASH_BYTES) == 0;
            s_take_info (self, peer, json_string_value (json_object_get (info, "network")),
                         genesis_ok ? genesis : NULL,
                         json_string_value (json_object_get (info, "public_key")),
                         json_string_value (json_object_get (info, "p2p_endpoint")));
            json_decref (info);
        }
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
    s_peersync_t *self = (s_peersync_t *) arg;
    s_peer_t *peer = s_find_dealer (self, reader, true);
    zmsg_t *msg = zmsg_recv (reader);
    if (!peer) {
        zmsg_destroy (&msg);
        return 0;
    }
    zframe_t *body = msg && zmsg_size (msg) == 2 ? zmsg_last (msg) : NULL;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    if (body && msgpack_unpack_next (&unpacked, (const char *) zframe_data (body), zframe_size (body),
                                     &offset) == MSGPACK_UNPACK_SUCCESS) {
        const char *network, *key, *endpoint;
        size_t network_size, key_size, endpoint_size;
        uint8_t genesis [CBUS_HASH_BYTES];
        if (cbus_msg_get_str (&unpacked.data, "network", &network, &network_size) == 0
        &&  cbus_msg_get_str (&unpacked.data, "public_key", &key, &key_size) == 0
        &&  cbus_msg_get_str (&unpacked.data, "endpoint", &endpoint, &endpoint_size) == 0
        &&  cbus_msg_get_hash (&unpacked.data, "genesis", genesis) == 0
        &&  network_size < 64 && key_size == 40 && endpoint_size < CBUS_PEER_ADDRESS_MAX) {
            char network_text [64], key_text [41], endpoint_text [CBUS_PEER_ADDRESS_MAX];
            snprintf (network_text, sizeof (network_text), "%.*s", (int) network_size, network);
            snprintf (key_text, sizeof (key_text), "%.*s", (int) key_size, key);
            snprintf (endpoint_text, sizeof (endpoint_text), "%.*s", (int) endpoint_size, endpoint);
            zloop_reader_end (self->loop, peer->directory);
            zsock_destroy (&peer->directory);
            //  The endpoint we were given is the one we dialled.
            s_take_info (self, peer, network_text, genesis, key_text, peer->address);
        }
        else
            s_set_state (self, peer, P_FETCHING, "its directory answer is malformed");
    }
    msgpack_unpacked_destroy (&unpacked);
    zmsg_destroy (&msg);
    if (peer->directory) {
        zloop_reader_end (self->loop, peer->directory);
        zsock_destroy (&peer->directory);
    }
    return 0;
}

//  Our plaintext directory: INFO only.
static int
s_on_directory (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    s_peersync_t *self = (s_peersync_t *) arg;
    zmsg_t *msg = zmsg_recv (self->directory);
    if (msg && zmsg_size (msg) >= 2 && self->chain_known) {
        zframe_t *routing_id = zmsg_pop (msg);
        char *command = zmsg_popstr (msg);
        if (command && streq (command, CBUS_P2P_INFO)) {
            msgpack_packer pk = cbus_packer_begin (&self->reply, 5);
            cbus_pack_kv_str (&pk, "network", self->network);
            cbus_pack_kv_bin (&pk, "genesis", self->genesis, CBUS_HASH_BYTES);
            cbus_pack_kv_str (&pk, "node_id", cbus_identity_node_id (self->identity));
            cbus_pack_kv_str (&pk, "public_key", cbus_identity_public (self->identity));
            cbus_pack_kv_str (&pk, "endpoint", self->endpoint);
            zmsg_t *answer = zmsg_new ();
            zmsg_append (answer, &routing_id);
            zmsg_addstr (answer, CBUS_P2P_INFO);
            zmsg_addmem (answer, self->reply.data, self->reply.size);
            zmsg_send (&answer, self->directory);
        }
        zstr_free (&command);
        zframe_destroy (&routing_id);
    }
    zmsg_destroy (&msg);
    return 0;
}

//  --------------------------------------------------------------------------
//  Sync

static void
s_ask_blocks (s_peersync_t *self)
{
    size_t count = self->queue_size - self->queue_next;
    if (count > S_BLOCKS_BATCH)
        count = S_BLOCKS_BATCH;
    msgpack_packer pk = cbus_packer_begin (&self->reply, 2);
    cbus_pack_str (&pk, "hashes");
    msgpack_pack_array (&pk, (uint32_t) count);
    for (size_t index = 0; index < count; index++) {
        msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
        msgpack_pack_bin_body (&pk, self->queue [self->queue_next + index], CBUS_HASH_BYTES);
    }
    cbus_pack_kv_u64 (&pk, "max_bytes", S_BLOCKS_BYTES);
    s_send (self, self->sync_peer, CBUS_P2P_GETBLOCKS);
    self->queue_asked = count;
    self->sync_headers = false;
    self->sync_deadline = cbus_mono_ms () + S_SYNC_TIMEOUT_MS;
}

static void
s_ask_headers (s_peersync_t *self)
{
    zframe_t *frame;
    msgpack_unpacked unpacked;
    char reason [CBUS_REASON_MAX];
    if (s_ask_store (self, CBUS_CMD_LOCATOR, NULL, &frame, &unpacked, reason)) {
        s_sync_stop (self, reason);
        return;
    }
    const msgpack_object *hashes = cbus_msg_get (&unpacked.data, "hashes");
    msgpack_packer pk = cbus_packer_begin (&self->reply, 2);
    cbus_pack_str (&pk, "locator");
    msgpack_pack_object (&pk, hashes ? *hashes : (msgpack_object) { .type = MSGPACK_OBJECT_NIL });
    cbus_pack_kv_u64 (&pk, "max", S_HEADERS_BATCH);
    s_send (self, self->sync_peer, CBUS_P2P_GETHEADERS);
    msgpack_unpacked_destroy (&unpacked);
    zframe_destroy (&frame);
    self->sync_headers = true;
    self->sync_deadline = cbus_mono_ms () + S_SYNC_TIMEOUT_MS;
}

static void
s_sync_start (s_peersync_t *self, s_peer_t *peer)
{
    if (self->sync_peer || peer->state != P_LINKED)
        return;
    self->sync_peer = peer;
    self->sync_target = peer->height;
    self->synced_blocks = 0;
    self->queue_size = self->queue_next = 0;
    zsys_info ("sync started peer=%s our_height=%" PRIu64 " peer_height=%" PRIu64,
               s_peer_name (peer), self->height, peer->height);
    s_ask_headers (self);
}

static void
s_sync_stop (s_peersync_t *self, const char *why)
{
    if (!self->sync_peer)
        return;
    zsys_info ("sync stopped peer=%s height=%" PRIu64 " blocks=%" PRIu64 " why=\"%s\"",
               s_peer_name (self->sync_peer), self->height, self->synced_blocks, why);
    self->sync_peer = NULL;
    self->queue_size = self->queue_next = 0;
}

//  The linked peer with the most work, if it has more than we do.
static s_peer_t *
s_best_peer (s_peersync_t *self)
{
    s_peer_t *best = NULL;
    for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer;
         peer = (s_peer_t *) zlistx_next (self->peers))
        if (peer->state == P_LINKED && cbus_u256_cmp (peer->work, self->work) > 0
        &&  (!best || cbus_u256_cmp (peer->work, best->work) > 0))
            best = peer;
    return best;
}

static void
s_sync_if_behind (s_peersync_t *self)
{
    if (self->sync_peer)
        return;
    s_peer_t *best = s_best_peer (self);
    if (best)
        s_sync_start (self, best);
}

static void
s_on_headers (s_peersync_t *self, s_peer_t *peer, const msgpack_object *map)
{
    if (peer != self->sync_peer || !self->sync_headers)
        return;                     //  Unasked: ignore (late answer)
    const msgpack_object *headers = cbus_msg_get (map, "headers");
    if (!headers || headers->type != MSGPACK_OBJECT_ARRAY || headers->via.array.size > S_HEADERS_BATCH) {
        s_punish (self, peer, S_MALFORMED_COST, "malformed HEADERS");
        s_sync_stop (self, "malformed HEADERS");
        return;
    }
    uint32_t count = headers->via.array.size;
    if (count == 0) {
        s_sync_stop (self, "the peer has nothing after our locator");
        return;
    }
    //  Hash each header; they must chain one to the next.
    self->queue = realloc (self->queue, count * CBUS_HASH_BYTES);
    uint8_t previous [CBUS_HASH_BYTES];
    for (uint32_t index = 0; index < count; index++) {
        const msgpack_object *item = &headers->via.array.ptr [index];
        cbus_header_t header;
        if (item->type != MSGPACK_OBJECT_BIN
        ||  cbus_header_decode (&header, (const uint8_t *) item->via.bin.ptr, item->via.bin.size)
        ||  (index > 0 && memcmp (header.prev_hash, previous, CBUS_HASH_BYTES) != 0)) {
            s_punish (self, peer, S_MALFORMED_COST, "HEADERS that do not chain");
            s_sync_stop (self, "bad HEADERS");
            return;
        }
        cbus_header_hash (&header, self->queue [index]);
        memcpy (previous, self->queue [index], CBUS_HASH_BYTES);
    }
    self->more_headers = count == S_HEADERS_BATCH;
    //  Keep those we do not have.
    cbus_buf_t body = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &body);
    msgpack_pack_map (&pk, 1);
    cbus_pack_str (&pk, "hashes");
    msgpack_pack_array (&pk, count);
    for (uint32_t index = 0; index < count; index++) {
        msgpack_pack_bin (&pk, CBUS_HASH_BYTES);
        msgpack_pack_bin_body (&pk, self->queue [index], CBUS_HASH_BYTES);
    }
    zframe_t *frame;
    msgpack_unpacked unpacked;
    char reason [CBUS_REASON_MAX];
    int rc = s_ask_store (self, CBUS_CMD_BLOCKS_HAVE, &body, &frame, &unpacked, reason);
    cbus_buf_free (&body);
    if (rc) {
        s_sync_stop (self, reason);
        return;
    }
    const msgpack_object *have = cbus_msg_get (&unpacked.data, "have");
    size_t kept = 0;
    for (uint32_t index = 0; index < count; index++) {
        bool known = have && have->type == MSGPACK_OBJECT_ARRAY && index < have->via.array.size
                  && have->via.array.ptr [index].type == MSGPACK_OBJECT_BOOLEAN
                  && have->via.array.ptr [index].via.boolean;
        if (!known)
            memmove (self->queue [kept++], self->queue [index], CBUS_HASH_BYTES);
    }
    msgpack_unpacked_destroy (&unpacked);
    zframe_destroy (&frame);
    self->queue_size = kept;
    self->queue_next = 0;
    if (kept)
        s_ask_blocks (self);
    else
    if (self->more_headers)
        s_ask_headers (self);
    else
        s_sync_stop (self, "caught up");
}

//  Hand one block to the chainstore. Returns 0 when stored (connected,
//  side or duplicate), 1 when its parent is unknown, -1 when invalid.
static int
s_submit_block (s_peersync_t *self, const void *data, size_t size, char *reason)
{
    cbus_buf_t body = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &body);
    msgpack_pack_map (&pk, 1);
    cbus_pack_kv_bin (&pk, "block", data, size);
    char *status = NULL;
    zframe_t *frame = NULL;
    int rc = cbus_client_call (self->chainstore, CBUS_CMD_BLOCK_SUBMIT, body.data, body.size,
                               S_STORE_TIMEOUT_MS, &status, &frame);
    cbus_buf_free (&body);
    if (rc) {
        snprintf (reason, CBUS_REASON_MAX, "chainbus-chainstore did not answer");
        return 2;
    }
    rc = 0;
    if (!streq (status, CBUS_STATUS_OK)) {
        msgpack_unpacked unpacked;
        msgpack_unpacked_init (&unpacked);
        size_t offset = 0;
        const char *text = "refused";
        size_t text_size = 7;
        if (msgpack_unpack_next (&unpacked, (const char *) zframe_data (frame), zframe_size (frame),
                                 &offset) == MSGPACK_UNPACK_SUCCESS)
            cbus_msg_get_str (&unpacked.data, "reason", &text, &text_size);
        snprintf (reason, CBUS_REASON_MAX, "%.*s", (int) text_size, text);
        msgpack_unpacked_destroy (&unpacked);
        rc = strstr (reason, "not a known block") ? 1
           : streq (status, CBUS_STATUS_INVALID) ? -1 : 2;
    }
    zstr_free (&status);
    zframe_destroy (&frame);
    return rc;
}

//  The hash of a block given as bytes, from its header alone.
static int
s_block_hash (const void *data, size_t size, uint8_t hash [CBUS_HASH_BYTES])
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    const uint8_t *bytes;
    size_t header_size;
    cbus_header_t header;
    int rc = -1;
    if (msgpack_unpack_next (&unpacked, (const char *) data, size, &offset) == MSGPACK_UNPACK_SUCCESS
    &&  cbus_msg_get_bin (&unpacked.data, "header", &bytes, &header_size) == 0
    &&  cbus_header_decode (&header, bytes, header_size) == 0) {
        cbus_header_hash (&header, hash);
        rc = 0;
    }
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

static void
s_on_blocks (s_peersync_t *self, s_peer_t *peer, const msgpack_object *map)
{
    if (peer != self->sync_peer || self->sync_headers)
        return;
    const msgpack_object *blocks = cbus_msg_get (map, "blocks");
    if (!blocks || blocks->type != MSGPACK_OBJECT_ARRAY || blocks->via.array.size > self->queue_asked) {
        s_punish (self, peer, S_MALFORMED_COST, "malformed BLOCKS");
        s_sync_stop (self, "malformed BLOCKS");
        return;
    }
    if (blocks->via.array.size == 0) {
        s_sync_stop (self, "the peer did not send the blocks it announced");
        return;
    }
    for (uint32_t index = 0; index < blocks->via.array.size; index++) {
        const msgpack_object *item = &blocks->via.array.ptr [index];
        char reason [CBUS_REASON_MAX];
        if (item->type != MSGPACK_OBJECT_BIN) {
            s_punish (self, peer, S_MALFORMED_COST, "BLOCKS holding something else");
            s_sync_stop (self, "malformed BLOCKS");
            return;
        }
        //  It must be the block asked for, in the order asked.
        uint8_t hash [CBUS_HASH_BYTES];
        if (s_block_hash (item->via.bin.ptr, item->via.bin.size, hash)
        ||  memcmp (hash, self->queue [self->queue_next], CBUS_HASH_BYTES) != 0) {
            s_punish (self, peer, S_MALFORMED_COST, "BLOCKS that were not asked for");
            s_sync_stop (self, "unasked BLOCKS");
            return;
        }
        int rc = s_submit_block (self, item->via.bin.ptr, item->via.bin.size, reason);
        if (rc == 0) {
            //  Blocks that arrive by sync are not relayed: peers sync too.
            uint8_t *copy = malloc (CBUS_HASH_BYTES);
            memcpy (copy, hash, CBUS_HASH_BYTES);
            if (zhashx_insert (self->quiet, copy, copy))
                free (copy);
            self->synced_blocks++;
            self->queue_next++;
        }
        else {
            if (rc < 0)
                s_punish (self, peer, S_INVALID_BLOCK_COST, reason);
            s_sync_stop (self, reason);
            return;
        }
    }
    int64_t now = cbus_mono_ms ();
    if (now - self->sync_logged >= 1000) {
        zsys_info ("sync progress peer=%s height=%" PRIu64 " target=%" PRIu64 " blocks=%" PRIu64,
                   s_peer_name (peer), self->height, self->sync_target, self->synced_blocks);
        self->sync_logged = now;
    }
    if (self->queue_next < self->queue_size)
        s_ask_blocks (self);
    else
    if (self->more_headers || cbus_u256_cmp (peer->work, self->work) > 0)
        s_ask_headers (self);
    else
        s_sync_stop (self, "caught up");
}

//  --------------------------------------------------------------------------
//  Peer messages

static void
s_on_hello (s_peersync_t *self, s_peer_t *peer, const msgpack_object *map, bool inbound)
{
    const char *network, *node_id, *key, *endpoint;
    size_t network_size, node_size, key_size, endpoint_size;
    uint8_t genesis [CBUS_HASH_BYTES];
    uint64_t height;
    if (cbus_msg_get_str (map, "network", &network, &network_size)
    ||  cbus_msg_get_hash (map, "genesis", genesis)
    ||  cbus_msg_get_str (map, "node_id", &node_id, &node_size) || node_size != 16
    ||  cbus_msg_get_str (map, "public_key", &key, &key_size) || key_size != 40
    ||  cbus_msg_get_str (map, "endpoint", &endpoint, &endpoint_size)
    ||  endpoint_size >= CBUS_PEER_ADDRESS_MAX
    ||  cbus_msg_get_u64 (map, "height", &height)
    ||  cbus_msg_get_hash (map, "work", peer->work) || cbus_msg_get_hash (map, "tip", peer->tip)) {
        s_punish (self, peer, S_MALFORMED_COST, "malformed HELLO");
        return;
    }
    if (network_size != strlen (self->network) || memcmp (network, self->network, network_size)
    ||  memcmp (genesis, self->genesis, CBUS_HASH_BYTES)) {
        char reason [160];
        snprintf (reason, sizeof (reason), "another network or genesis: this node runs '%s'", self->network);
        s_send_reject (self, peer, reason);
        s_set_state (self, peer, P_REFUSED, "it runs another network or genesis");
        return;
    }
    if (memcmp (node_id, cbus_identity_node_id (self->identity), 16) == 0) {
        s_send_reject (self, peer, "that is this node itself");
        s_set_state (self, peer, P_REFUSED, "that address is this node itself");
        return;
    }
    snprintf (peer->node_id, sizeof (peer->node_id), "%.16s", node_id);
    if (peer->state == P_LINKED && !streq (peer->linked_id, peer->node_id)) {
        //  Another node now answers at that address: count it instead.
        s_links_count (self, peer, -1);
        memcpy (peer->linked_id, peer->node_id, sizeof (peer->linked_id));
        s_links_count (self, peer, 1);
    }
    peer->answered = true;          //  Its HELLO says where its tip is
    if (inbound)
        snprintf (peer->endpoint, sizeof (peer->endpoint), "%.*s", (int) endpoint_size, endpoint);
    peer->height = height;
    if (peer->state != P_LINKED) {
        s_set_state (self, peer, P_LINKED, NULL);
        zsys_info ("peer linked peer=%s node_id=%s height=%" PRIu64 " direction=%s",
                   s_peer_name (peer), peer->node_id, height, inbound ? "in" : "out");
        s_publish_peer (self, CBUS_TOPIC_PEER_CONNECTED, peer);
    }
    bool want_reply = false;
    cbus_msg_get_bool (map, "reply", &want_reply);
    if (want_reply)
        s_send_hello (self, peer, false);   //  Answer with ours
    s_sync_if_behind (self);
}

//  Transactions from a peer go to our mempool, which checks them; the
//  answers come back on self->mempool and cost the peer if invalid.
static void
s_on_tx (s_peersync_t *self, s_peer_t *peer, const msgpack_object *map)
{
    const msgpack_object *txs = cbus_msg_get (map, "txs");
    if (!txs || txs->type != MSGPACK_OBJECT_ARRAY || txs->via.array.size > 4 * S_TX_BATCH) {
        s_punish (self, peer, S_MALFORMED_COST, "malformed TX");
        return;
    }
    cbus_buf_t body = {0};
    for (uint32_t index = 0; index < txs->via.array.size; index++) {
        const msgpack_object *item = &txs->via.array.ptr [index];
        if (item->type != MSGPACK_OBJECT_BIN) {
            s_punish (self, peer, S_MALFORMED_COST, "TX holding something else");
            break;
        }
        cbus_buf_reset (&body);
        msgpack_packer pk;
        cbus_packer_init (&pk, &body);
        msgpack_pack_map (&pk, 1);
        cbus_pack_kv_bin (&pk, "tx", item->via.bin.ptr, item->via.bin.size);
        cbus_request_send (self->mempool, CBUS_CMD_TX_SUBMIT, self->next_request++, body.data, body.size);
    }
    cbus_buf_free (&body);
}

static void
s_on_block (s_peersync_t *self, s_peer_t *peer, const msgpack_object *map)
{
    const uint8_t *data;
    size_t size;
    if (cbus_msg_get_bin (map, "block", &data, &size)) {
        s_punish (self, peer, S_MALFORMED_COST, "malformed BLOCK");
        return;
    }
    char reason [CBUS_REASON_MAX];
    int rc = s_submit_block (self, data, size, reason);
    if (rc < 0)
        s_punish (self, peer, S_INVALID_BLOCK_COST, reason);
    else
    if (rc == 1) {
        //  We miss its parent: we are behind this peer.
        if (!self->sync_peer)
            s_sync_start (self, peer);
    }
}

//  GETHEADERS and GETBLOCKS: the peer's list (locator or hashes, at most
//  max_items) and a limit go to our chainstore, whose answer is exactly
//  what the peer wants and goes back to it as answer_command.
static void
s_serve_from_store (s_peersync_t *self, s_peer_t *peer, const msgpack_object *map,
                    const char *list_key, uint32_t max_items, const char *store_command,
                    const char *limit_key, uint64_t limit, const char *answer_command)
{
    const msgpack_object *list = cbus_msg_get (map, list_key);
    if (!list || list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size > max_items) {
        char why [64];
        snprintf (why, sizeof (why), "a malformed request for %s", answer_command);
        s_punish (self, peer, S_MALFORMED_COST, why);
        return;
    }
    uint64_t asked;
    if (cbus_msg_get_u64 (map, limit_key, &asked) == 0 && asked < limit)
        limit = asked;
    cbus_buf_t body = {0};
    msgpack_packer pk = cbus_packer_begin (&body, 2);
    cbus_pack_str (&pk, list_key);
    msgpack_pack_object (&pk, *list);
    cbus_pack_kv_u64 (&pk, limit_key, limit);
    zframe_t *frame;
    msgpack_unpacked unpacked;
    char reason [CBUS_REASON_MAX];
    int rc = s_ask_store (self, store_command, &body, &frame, &unpacked, reason);
    cbus_buf_free (&body);
    if (rc) {
        //  The chainstore refused what the peer sent (it checks the
        //  hashes); a chainstore that did not answer is not its fault.
        if (!strstr (reason, "did not answer"))
            s_punish (self, peer, S_MALFORMED_COST, reason);
        return;
    }
    cbus_buf_reset (&self->reply);
    cbus_buf_append (&self->reply, zframe_data (frame), zframe_size (frame));
    s_send (self, peer, answer_command);
    msgpack_unpacked_destroy (&unpacked);
    zframe_destroy (&frame);
}

//  One message from a peer, from either direction of link.
static void
s_on_peer_message (s_peersync_t *self, s_peer_t *peer, zframe_t *command_frame, zframe_t *body,
                   bool inbound)
{
    char command [16] = "";
    size_t size = zframe_size (command_frame);
    if (size > 0 && size < sizeof (command))
        memcpy (command, zframe_data (command_frame), size);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    bool decoded = body && zframe_size (body) > 0
                && msgpack_unpack_next (&unpacked, (const char *) zframe_data (body), zframe_size (body),
                                        &offset) == MSGPACK_UNPACK_SUCCESS
                && offset == zframe_size (body) && unpacked.data.type == MSGPACK_OBJECT_MAP;
    peer->last_heard = cbus_mono_ms ();
    peer->last_seen_wall = (int64_t) cbus_time_ms ();
    const msgpack_object *map = &unpacked.data;
    if (!decoded || !*command)
        s_punish (self, peer, S_MALFORMED_COST, "a message that does not decode");
    else
    if (streq (command, CBUS_P2P_HELLO))
        s_on_hello (self, peer, map, inbound);
    else
    if (streq (command, CBUS_P2P_REJECT)) {
        const char *text = "";
        size_t text_size = 0;
        cbus_msg_get_str (map, "reason", &text, &text_size);
        char reason [160];
        snprintf (reason, sizeof (reason), "it refused us: %.*s", (int) (text_size > 120 ? 120 : text_size), text);
        s_set_state (self, peer, P_REFUSED, reason);
    }
    else
    if (peer->state != P_LINKED)
        s_punish (self, peer, S_MALFORMED_COST, "a message before HELLO");
    else
    if (streq (command, CBUS_P2P_STATUS)) {
        uint64_t height;
        bool want_reply = false;
        if (cbus_msg_get_u64 (map, "height", &height) || cbus_msg_get_hash (map, "work", peer->work)
        ||  cbus_msg_get_hash (map, "tip", peer->tip))
            s_punish (self, peer, S_MALFORMED_COST, "malformed STATUS");
        else {
            peer->height = height;
            peer->answered = true;
            cbus_msg_get_bool (map, "reply", &want_reply);
            if (want_reply)
                s_send_status (self, peer, false);
            s_sync_if_behind (self);
        }
    }
    else
    if (streq (command, CBUS_P2P_TX))
        s_on_tx (self, peer, map);
    else
    if (streq (command, CBUS_P2P_BLOCK))
        s_on_block (self, peer, map);
    else
    if (streq (command, CBUS_P2P_GETHEADERS))
        s_serve_from_store (self, peer, map, "locator", CBUS_LOCATOR_MAX, CBUS_CMD_HEADERS,
                            "max", S_HEADERS_BATCH, CBUS_P2P_HEADERS);
    else
    if (streq (command, CBUS_P2P_HEADERS))
        s_on_headers (self, peer, map);
    else
    if (streq (command, CBUS_P2P_GETBLOCKS))
        s_serve_from_store (self, peer, map, "hashes", S_BLOCKS_BATCH, CBUS_CMD_BLOCKS_GET,
                            "max_bytes", S_BLOCKS_BYTES, CBUS_P2P_BLOCKS);
    else
    if (streq (command, CBUS_P2P_BLOCKS))
        s_on_blocks (self, peer, map);
    else
        s_punish (self, peer, S_MALFORMED_COST, "an unknown command");
    msgpack_unpacked_destroy (&unpacked);
}

//  A message on one of our outbound links.
static int
s_on_link (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_peersync_t *self = (s_peersync_t *) arg;
    zmsg_t *msg = zmsg_recv (reader);
    s_peer_t *peer = s_find_dealer (self, reader, false);
    if (msg && peer && peer->state != P_BANNED) {
        if (zmsg_size (msg) == 2)
            s_on_peer_message (self, peer, zmsg_first (msg), zmsg_last (msg), false);
        else
            s_punish (self, peer, S_MALFORMED_COST, "a message of the wrong shape");
    }
    zmsg_destroy (&msg);
    return 0;
}

//  A connection event on one of our outbound links: greet on every new
//  handshake (the peer may have restarted), stop counting it linked on a
//  disconnection.
static int
s_on_monitor (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_peersync_t *self = (s_peersync_t *) arg;
    zmsg_t *msg = zmsg_recv (reader);
    s_peer_t *peer = NULL;
    for (peer = (s_peer_t *) zlistx_first (self->peers); peer; peer = (s_peer_t *) zlistx_next (self->peers))
        if (peer->monitor == reader)
            break;
    zframe_t *event = msg ? zmsg_first (msg) : NULL;
    if (peer && event && zframe_size (event) >= 2) {
        uint16_t code = (uint16_t) (zframe_data (event) [0] | zframe_data (event) [1] << 8);
        if (code == ZMQ_EVENT_DISCONNECTED && peer->state == P_LINKED) {
            s_set_state (self, peer, P_CONNECTING, "disconnected");
            peer->last_heard = cbus_mono_ms ();
        }
        else
        if (code == ZMQ_EVENT_HANDSHAKE_SUCCEEDED && self->chain_known && peer->state != P_BANNED)
            s_send_hello (self, peer, true);
    }
    zmsg_destroy (&msg);
    return 0;
}

//  A message on our peer ROUTER, from a peer that linked to us.
static int
s_on_p2p (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    s_peersync_t *self = (s_peersync_t *) arg;
    zmsg_t *msg = zmsg_recv (self->p2p);
    if (!msg || zmsg_size (msg) < 1) {
        zmsg_destroy (&msg);
        return 0;
    }
    zframe_t *routing_id = zmsg_pop (msg);
    s_peer_t *peer = s_find_inbound (self, routing_id);
    if (!peer) {
        //  A link we do not know opens an inbound peer, up to a limit. If
        //  its first message is not HELLO, we probably restarted while it
        //  counted us linked: ask it to introduce itself again.
        zframe_t *first = zmsg_first (msg);
        size_t inbound = 0;
        for (s_peer_t *other = (s_peer_t *) zlistx_first (self->peers); other;
             other = (s_peer_t *) zlistx_next (self->peers))
            inbound += other->routing_id != NULL;
        if (first && inbound < S_MAX_INBOUND) {
            peer = s_peer_new (NULL);
            peer->routing_id = zframe_dup (routing_id);
            peer->state = P_CONNECTING;
            peer->last_heard = cbus_mono_ms ();
            peer->handle = zlistx_add_end (self->peers, peer);
            if (!zframe_streq (first, CBUS_P2P_HELLO)) {
                if (self->chain_known)
                    s_send_hello (self, peer, true);
                peer = NULL;        //  This message itself is dropped
            }
        }
    }
    if (peer && peer->state == P_BANNED) {
        if (cbus_mono_ms () < peer->banned_until)
            peer = NULL;            //  Ignored while banned
        else {
            peer->score = 0;
            s_set_state (self, peer, P_CONNECTING, NULL);
        }
    }
    if (peer) {
        if (zmsg_size (msg) == 2)
            s_on_peer_message (self, peer, zmsg_first (msg), zmsg_last (msg), true);
        else
            s_punish (self, peer, S_MALFORMED_COST, "a message of the wrong shape");
    }
    zframe_destroy (&routing_id);
    zmsg_destroy (&msg);
    return 0;
}

//  --------------------------------------------------------------------------
//  Our own events: relay what we newly accepted, track our tip

static void
s_flush_relay (s_peersync_t *self)
{
    if (self->relay_count == 0)
        return;
    //  Close the TX body: {"txs": [...]}, then send it to every peer.
    cbus_buf_t message = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &message);
    msgpack_pack_map (&pk, 1);
    cbus_pack_str (&pk, "txs");
    msgpack_pack_array (&pk, (uint32_t) self->relay_count);
    cbus_buf_append (&message, self->relay.data, self->relay.size);
    cbus_buf_t saved = self->reply;
    self->reply = message;
    for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer;
         peer = (s_peer_t *) zlistx_next (self->peers))
        if (peer->state == P_LINKED && !s_peer_redundant (self, peer))
            s_send (self, peer, CBUS_P2P_TX);
    self->reply = saved;
    cbus_buf_free (&message);
    cbus_buf_reset (&self->relay);
    self->relay_count = 0;
}

static void
s_relay_block (s_peersync_t *self, const uint8_t hash [CBUS_HASH_BYTES])
{
    cbus_buf_t body = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &body);
    msgpack_pack_map (&pk, 1);
    cbus_pack_kv_bin (&pk, "hash", hash, CBUS_HASH_BYTES);
    zframe_t *frame;
    msgpack_unpacked unpacked;
    char reason [CBUS_REASON_MAX];
    int rc = s_ask_store (self, CBUS_CMD_BLOCK_GET, &body, &frame, &unpacked, reason);
    cbus_buf_free (&body);
    if (rc)
        return;
    const uint8_t *data;
    size_t size;
    if (cbus_msg_get_bin (&unpacked.data, "block", &data, &size) == 0) {
        msgpack_packer out = cbus_packer_begin (&self->reply, 1);
        cbus_pack_kv_bin (&out, "block", data, size);
        for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer;
             peer = (s_peer_t *) zlistx_next (self->peers))
            //  A peer at or past this height has it, or a better branch.
            if (peer->state == P_LINKED && !s_peer_redundant (self, peer)
            &&  memcmp (peer->tip, hash, CBUS_HASH_BYTES) != 0)
                s_send (self, peer, CBUS_P2P_BLOCK);
    }
    msgpack_unpacked_destroy (&unpacked);
    zframe_destroy (&frame);
}

static int
s_on_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    s_peersync_t *self = (s_peersync_t *) arg;
    bool tip_moved = false;
    uint8_t newest [CBUS_HASH_BYTES];
    int count = 0;
    //  Drain what is there: a reorganisation or a sync comes as a burst,
    //  and only its last block is worth announcing.
    do {
        cbus_event_t *event = cbus_event_recv (self->sub);
        const msgpack_object *map = event ? cbus_event_map (event) : NULL;
        if (map && streq (event->topic, CBUS_TOPIC_TX_ADDED)) {
            const uint8_t *data;
            size_t size;
            if (cbus_msg_get_bin (map, "tx", &data, &size) == 0) {
                msgpack_packer pk;
                cbus_packer_init (&pk, &self->relay);
                msgpack_pack_bin (&pk, size);
                msgpack_pack_bin_body (&pk, data, size);
                if (++self->relay_count >= S_TX_BATCH)
                    s_flush_relay (self);
            }
        }
        else
        if (map && (streq (event->topic, CBUS_TOPIC_BLOCK_CONNECTED)
                 || streq (event->topic, CBUS_TOPIC_BLOCK_DISCONNECTED))) {
            uint8_t hash [CBUS_HASH_BYTES], prev [CBUS_HASH_BYTES];
            uint64_t height;
            uint8_t work [CBUS_U256_BYTES];
            if (cbus_msg_get_hash (map, "hash", hash) == 0 && cbus_msg_get_u64 (map, "height", &height) == 0
            &&  cbus_msg_get_hash (map, "work", work) == 0 && cbus_msg_get_hash (map, "prev_hash", prev) == 0) {
                if (streq (event->topic, CBUS_TOPIC_BLOCK_CONNECTED)) {
                    self->height = height;
                    memcpy (self->tip, hash, CBUS_HASH_BYTES);
                    memcpy (self->work, work, CBUS_U256_BYTES);
                    memcpy (newest, hash, CBUS_HASH_BYTES);
                    tip_moved = true;
                }
            }
        }
        cbus_event_destroy (&event);
    } while (++count < 10000 && (zsock_events (self->sub) & ZMQ_POLLIN));
    //  What arrived together leaves together: under load a drain holds
    //  many transactions, and when quiet one goes out at once.
    s_flush_relay (self);
    if (tip_moved) {
        uint8_t *quiet = (uint8_t *) zhashx_lookup (self->quiet, newest);
        if (quiet)
            zhashx_delete (self->quiet, newest);
        else
            s_relay_block (self, newest);
        //  Our tip moved: tell peers now rather than at the next STATUS.
        for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer;
             peer = (s_peer_t *) zlistx_next (self->peers))
            if (peer->state == P_LINKED)
                peer->next_status = 0;
    }
    return 0;
}

//  Answers of our mempool to transactions from peers: drained; a refusal
//  is logged at debug level (the peer may simply be behind).
static int
s_on_mempool (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    s_peersync_t *self = (s_peersync_t *) arg;
    int count = 0;
    do {
        zmsg_t *msg = zmsg_recv (self->mempool);
        if (msg && zmsg_first (msg) && !zframe_streq (zmsg_first (msg), CBUS_STATUS_OK))
            CBUS_DEBUG ("a peer's transaction was refused");
        zmsg_destroy (&msg);
    } while (++count < 10000 && (zsock_events (self->mempool) & ZMQ_POLLIN));
    return 0;
}

//  --------------------------------------------------------------------------
//  Local requests

static void
s_pack_peers (s_peersync_t *self, msgpack_packer *pk, bool for_resolve)
{
    msgpack_pack_array (pk, (uint32_t) zlistx_size (self->peers));
    int64_t now = cbus_mono_ms ();
    for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer;
         peer = (s_peer_t *) zlistx_next (self->peers)) {
        msgpack_pack_map (pk, for_resolve ? 5 : 11);
        cbus_pack_kv_str (pk, "address", s_peer_name (peer));
        char status [200];
        if (for_resolve && peer->asked && !peer->answered)
            snprintf (status, sizeof (status), "no answer in time (%s%s%s)", s_state_names [peer->state],
                      *peer->reason ? ": " : "", peer->reason);
        else
        if (peer->state == P_LINKED)
            snprintf (status, sizeof (status), "linked");
        else
            snprintf (status, sizeof (status), "%s%s%s", s_state_names [peer->state],
                      *peer->reason ? ": " : "", peer->reason);
        cbus_pack_kv_str (pk, for_resolve ? "status" : "state",
                          for_resolve ? status : s_state_names [peer->state]);
        cbus_pack_kv_u64 (pk, "height", peer->height);
        char hex [2 * CBUS_U256_BYTES + 1];
        cbus_hex_encode (peer->work, CBUS_U256_BYTES, hex);
        cbus_pack_kv_str (pk, "work", hex);
        cbus_pack_kv_str (pk, "node_id", peer->node_id);
        if (!for_resolve) {
            cbus_pack_kv_str (pk, "direction", peer->address ? "out" : "in");
            cbus_pack_kv_bool (pk, "redundant", s_peer_redundant (self, peer));
            cbus_pack_kv_i64 (pk, "score", peer->score);
            cbus_pack_kv_str (pk, "reason", peer->reason);
            cbus_pack_kv_u64 (pk, "last_seen_ms", (uint64_t) peer->last_seen_wall);
            cbus_pack_kv_i64 (pk, "banned_for_ms", peer->state == P_BANNED
                              ? peer->banned_until - now : 0);
        }
    }
}

static void
s_answer_resolve (s_peersync_t *self)
{
    bool replaced = memcmp (self->resolve_start_tip, self->tip, CBUS_HASH_BYTES) != 0;
    msgpack_packer pk = cbus_packer_begin (&self->reply, 3);
    cbus_pack_kv_bool (&pk, "replaced", replaced);
    cbus_pack_kv_u64 (&pk, "height", self->height);
    cbus_pack_str (&pk, "peers");
    s_pack_peers (self, &pk, true);
    s_local_reply (self, self->resolve);
    zsys_info ("resolve answered replaced=%s height=%" PRIu64, replaced ? "yes" : "no", self->height);
    cbus_request_destroy (&self->resolve);
    for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer;
         peer = (s_peer_t *) zlistx_next (self->peers))
        peer->asked = peer->answered = false;
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
    int added = cbus_peers_add (self->registered, addresses);
    if (added < 0) {
        cbus_reply_error (self->router, request, CBUS_STATUS_ERROR, "Could not save the peer list");
        zlist_destroy (&addresses);
        return;
    }
    //  Start linking to the new ones at once.
    for (const char *address = (const char *) zlist_first (addresses); address;
         address = (const char *) zlist_next (addresses)) {
        bool known = false;
        for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer && !known;
             peer = (s_peer_t *) zlistx_next (self->peers))
            known = peer->address && streq (peer->address, address);
        if (!known) {
            s_peer_t *peer = s_peer_new (address);
            peer->handle = zlistx_add_end (self->peers, peer);
            if (self->chain_known)
                s_ask_info (self, peer);
        }
    }
    zlist_destroy (&addresses);
    if (added)
        zsys_info ("peers added count=%d total=%zu", added, cbus_peers_size (self->registered));
    msgpack_packer pk = cbus_packer_begin (&self->reply, 1);
    cbus_pack_str (&pk, "peers");
    msgpack_pack_array (&pk, (uint32_t) cbus_peers_size (self->registered));
    for (const char *address = cbus_peers_first (self->registered); address;
         address = cbus_peers_next (self->registered))
        cbus_pack_str (&pk, address);
    s_local_reply (self, request);
}

static void
s_handle_list (s_peersync_t *self, cbus_request_t *request)
{
    msgpack_packer pk = cbus_packer_begin (&self->reply, 2);
    cbus_pack_str (&pk, "peers");
    s_pack_peers (self, &pk, false);
    cbus_pack_str (&pk, "sync");
    if (self->sync_peer) {
        msgpack_pack_map (&pk, 5);
        cbus_pack_kv_bool (&pk, "syncing", true);
        cbus_pack_kv_str (&pk, "peer", s_peer_name (self->sync_peer));
        uint64_t target = self->sync_peer->height > self->sync_target
                        ? self->sync_peer->height : self->sync_target;
        cbus_pack_kv_u64 (&pk, "target_height", target);
        cbus_pack_kv_u64 (&pk, "blocks_left", target > self->height ? target - self->height : 0);
        cbus_pack_kv_u64 (&pk, "blocks_done", self->synced_blocks);
    }
    else {
        msgpack_pack_map (&pk, 1);
        cbus_pack_kv_bool (&pk, "syncing", false);
    }
    s_local_reply (self, request);
}

static void
s_handle_resolve (s_peersync_t *self, cbus_request_t *request)
{
    if (self->resolve) {
        cbus_reply_error (self->router, request, CBUS_STATUS_FULL, "A resolve is already running");
        return;
    }
    self->resolve = request;
    memcpy (self->resolve_start_tip, self->tip, CBUS_HASH_BYTES);
    int64_t now = cbus_mono_ms ();
    self->resolve_ask_until = now + S_RESOLVE_ASK_MS;
    self->resolve_until = now + self->resolve_timeout_ms;
    self->resolve_syncing = false;
    size_t asked = 0;
    for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer;
         peer = (s_peer_t *) zlistx_next (self->peers)) {
        //  Linked peers are asked now; peers still linking are waited for
        //  (their HELLO carries their tip), within the asking time.
        peer->asked = peer->state == P_LINKED || peer->state == P_CONNECTING
                   || peer->state == P_FETCHING;
        peer->answered = false;
        if (peer->state == P_LINKED)
            s_send_status (self, peer, true);
        else
        if (peer->state == P_FETCHING)
            peer->next_try = 0;
        asked += peer->asked;
    }
    if (asked == 0)
        s_answer_resolve (self);    //  Nobody to ask: ours stands
}

static void
s_handle_info (s_peersync_t *self, cbus_request_t *request)
{
    msgpack_packer pk = cbus_packer_begin (&self->reply, 5);
    cbus_pack_kv_str (&pk, "node_id", cbus_identity_node_id (self->identity));
    cbus_pack_kv_str (&pk, "public_key", cbus_identity_public (self->identity));
    cbus_pack_kv_str (&pk, "p2p_endpoint", self->endpoint);
    cbus_pack_kv_str (&pk, "network", self->network);
    cbus_pack_kv_bin (&pk, "genesis", self->genesis, CBUS_HASH_BYTES);
    s_local_reply (self, request);
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
    if (streq (command, CBUS_CMD_PEER_LIST))
        s_handle_list (self, request);
    else
    if (streq (command, CBUS_CMD_NODE_INFO)) {
        if (!self->chain_known)
            s_refresh_chain (self);
        if (self->chain_known)
            s_handle_info (self, request);
        else
            cbus_reply_error (self->router, request, CBUS_STATUS_UNAVAILABLE,
                              "chainbus-chainstore did not answer");
    }
    else
    if (streq (command, CBUS_CMD_RESOLVE)) {
        s_handle_resolve (self, request);
        request = NULL;             //  Kept until answered
    }
    else
    if (streq (command, CBUS_CMD_PING))
        cbus_service_pong (self->router, request, "peersync");
    else
        cbus_reply_error (self->router, request, CBUS_STATUS_INVALID, "Unknown command %s", command);
    if (request && request != self->resolve)
        cbus_request_destroy (&request);
    return 0;
}

//  --------------------------------------------------------------------------
//  Time

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    s_peersync_t *self = (s_peersync_t *) arg;
    int64_t now = cbus_mono_ms ();
    if (now >= self->next_beat) {
        cbus_pub_heartbeat (self->pub);
        self->next_beat = now + CBUS_HEARTBEAT_MS;
        if (!self->chain_known)
            s_refresh_chain (self);
    }
    s_flush_relay (self);
    if (!self->chain_known)
        return 0;                   //  Nothing to say to peers yet
    //  Walk a snapshot: what we call may add or remove peers.
    size_t count = zlistx_size (self->peers), taken = 0;
    s_peer_t **snapshot = (s_peer_t **) malloc ((count + 1) * sizeof (s_peer_t *));
    for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer;
         peer = (s_peer_t *) zlistx_next (self->peers))
        snapshot [taken++] = peer;
    for (size_t index = 0; index < taken; index++) {
        s_peer_t *peer = snapshot [index];
        if (peer->state == P_BANNED) {
            if (now < peer->banned_until)
                continue;
            peer->score = 0;
            s_set_state (self, peer, peer->address ? P_FETCHING : P_CONNECTING, "ban over");
            peer->next_try = 0;
        }
        if (!peer->address) {
            //  Inbound and silent: forget it; it comes back with a HELLO.
            if (now - peer->last_heard > S_SILENT_MS) {
                s_set_state (self, peer, P_CONNECTING, "silent");
                zlistx_detach (self->peers, peer->handle);
                s_peer_destroy (self, &peer);
                continue;
            }
        }
        else
        //  Outbound: learn, link, greet, keep alive.
        if (peer->state == P_REFUSED && now >= peer->next_try) {
            //  Networks get reconfigured, bans end: ask again, rarely.
            s_unlink (self, peer);
            s_set_state (self, peer, P_FETCHING, "trying again");
            s_ask_info (self, peer);
        }
        else
        if (peer->state == P_FETCHING && now >= peer->next_try)
            s_ask_info (self, peer);
        else
        if (peer->state == P_CONNECTING && now >= peer->next_hello) {
            if (now - peer->last_heard > 3 * S_SILENT_MS) {
                //  Long silence: maybe it moved or changed its key.
                s_unlink (self, peer);
                s_set_state (self, peer, P_FETCHING, "no answer to HELLO");
                peer->next_try = now;
            }
            else
                s_send_hello (self, peer, true);
        }
        else
        if (peer->state == P_LINKED && now - peer->last_heard > S_SILENT_MS) {
            s_set_state (self, peer, P_CONNECTING, "silent");
            peer->next_hello = 0;
        }
        if (peer->state == P_LINKED && now >= peer->next_status)
            s_send_status (self, peer, false);
    }
    free (snapshot);
    //  A sync request not answered in time costs the peer and ends.
    if (self->sync_peer && now > self->sync_deadline) {
        s_punish (self, self->sync_peer, S_TIMEOUT_COST, "a sync request not answered in time");
        s_sync_stop (self, "timed out");
    }
    s_sync_if_behind (self);
    //  Resolve: ask, then sync from the best, then answer; all bounded.
    if (self->resolve) {
        bool all_answered = true;
        for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer;
             peer = (s_peer_t *) zlistx_next (self->peers))
            if (peer->asked && !peer->answered)
                all_answered = false;
        if (!self->resolve_syncing && (all_answered || now >= self->resolve_ask_until)) {
            self->resolve_syncing = true;
            s_sync_if_behind (self);
        }
        if (self->resolve_syncing && (!self->sync_peer || now >= self->resolve_until))
            s_answer_resolve (self);
    }
    return 0;
}

static void
s_free_item (void **item)
{
    free (*item);
    *item = NULL;
}

void
cbus_peersync_actor (zsock_t *pipe, void *args)
{
    cbus_config_t *config = (cbus_config_t *) args;
    s_peersync_t self = { .pipe = pipe, .config = config };
    char reason [CBUS_REASON_MAX];
    char *endpoint = cbus_config_endpoint (config, "peersync");
    char *bus_in = cbus_config_endpoint (config, "bus-in");
    char *bus_out = cbus_config_endpoint (config, "bus-out");
    char *store = cbus_config_endpoint (config, "chainstore");
    char *pool = cbus_config_endpoint (config, "mempool");
    char *path = cbus_config_path (config, "peers");
    char *key_path = cbus_config_path (config, "node.key");
    zsock_signal (pipe, 0);

    self.peers = zlistx_new ();
    self.quiet = cbus_hash_table_new ();
    self.links = zhashx_new ();
    zhashx_set_destructor (self.links, (zhashx_destructor_fn *) s_links_free);
    zhashx_set_destructor (self.quiet, s_free_item);
    self.resolve_timeout_ms = cbus_config_int (config, "gateway/resolve_timeout_ms") - 1000;
    self.identity = cbus_identity_new (key_path, reason);
    self.registered = cbus_peers_new (path);
    if (!self.identity) {
        cbus_service_fail (pipe, "%s", reason);
        goto cleanup;
    }
    self.router = cbus_service_router (endpoint, 1024 * 1024, reason);
    if (!self.router) {
        cbus_service_fail (pipe, "%s", reason);
        goto cleanup;
    }
    //  The peer protocol: CurveZMQ ROUTER, and the plaintext directory.
    const char *bind = cbus_config_str (config, "peersync/p2p_bind");
    int port = (int) cbus_config_int (config, "peersync/p2p_port");
    if (port == 0)
        port = (int) cbus_config_int (config, "gateway/http_port") + 1000;
    if (port + S_DIRECTORY_OFFSET > 65535) {
        cbus_service_fail (pipe, "peer port %d leaves no room for the directory port (+%d)",
                           port, S_DIRECTORY_OFFSET);
        goto cleanup;
    }
    self.p2p = zsock_new (ZMQ_ROUTER);
    cbus_identity_apply_server (self.identity, self.p2p);
    zsock_set_maxmsgsize (self.p2p, CBUS_MSG_MAX_BYTES);
    zsock_set_sndhwm (self.p2p, 10000);
    zsock_set_heartbeat_ivl (self.p2p, 1000);
    zsock_set_heartbeat_timeout (self.p2p, 5000);
    zsock_set_heartbeat_ttl (self.p2p, 5000);
    self.directory = zsock_new (ZMQ_ROUTER);
    zsock_set_maxmsgsize (self.directory, 1024);
    if (zsock_bind (self.p2p, "tcp://%s:%d", bind, port) < 0
    ||  zsock_bind (self.directory, "tcp://%s:%d", bind, port + S_DIRECTORY_OFFSET) < 0) {
        cbus_service_fail (pipe, "cannot bind the peer ports %s:%d and %d: %s", bind, port,
                           port + S_DIRECTORY_OFFSET, zmq_strerror (zmq_errno ()));
        goto cleanup;
    }
    const char *advertise = cbus_config_str (config, "peersync/p2p_advertise");
    snprintf (self.endpoint, sizeof (self.endpoint), "tcp://%s:%d", *advertise ? advertise : bind, port);

    self.sub = zsock_new_sub (bus_out, "chain.block.");
    zsock_set_rcvhwm (self.sub, 200000);
    self.mempool = zsock_new (ZMQ_DEALER);
    zsock_set_linger (self.mempool, 0);
    zsock_set_sndhwm (self.mempool, 100000);
    zsock_connect (self.mempool, "%s", pool);
    self.chainstore = cbus_client_new (store);
    self.pub = cbus_pub_new (bus_in, "peersync");
    self.fetch = zactor_new (cbus_fetch_actor, NULL);
    assert (self.sub && self.chainstore && self.pub && self.fetch);
    s_refresh_chain (&self);

    self.loop = zloop_new ();
    //  Stop on $TERM from main only, not on a signal: see cbus_service.h.
    zloop_set_nonstop (self.loop, true);
    zloop_reader (self.loop, pipe, cbus_service_on_pipe, &self);
    zloop_reader (self.loop, self.router, s_on_request, &self);
    zloop_reader (self.loop, self.p2p, s_on_p2p, &self);
    zloop_reader (self.loop, self.directory, s_on_directory, &self);
    zloop_reader (self.loop, self.sub, s_on_event, &self);
    zloop_reader (self.loop, self.mempool, s_on_mempool, &self);
    zloop_reader (self.loop, zactor_sock (self.fetch), s_on_fetched, &self);
    zloop_timer (self.loop, S_TICK_MS, 0, s_on_tick, &self);
    for (const char *address = cbus_peers_first (self.registered); address;
         address = cbus_peers_next (self.registered)) {
        s_peer_t *peer = s_peer_new (address);
        peer->handle = zlistx_add_end (self.peers, peer);
    }
    zsys_info ("peersync ready node_id=%s p2p=%s peers=%zu", cbus_identity_node_id (self.identity),
               self.endpoint, cbus_peers_size (self.registered));
    zloop_start (self.loop);
cleanup:
    if (self.peers) {
        s_peer_t *peer;
        while ((peer = (s_peer_t *) zlistx_detach (self.peers, NULL)))
            s_peer_destroy (&self, &peer);
        zlistx_destroy (&self.peers);
    }
    if (self.resolve)
        cbus_request_destroy (&self.resolve);
    zloop_destroy (&self.loop);
    zactor_destroy (&self.fetch);
    zsock_destroy (&self.router);
    zsock_destroy (&self.p2p);
    zsock_destroy (&self.directory);
    zsock_destroy (&self.sub);
    zsock_destroy (&self.mempool);
    cbus_client_destroy (&self.chainstore);
    cbus_pub_destroy (&self.pub);
    cbus_identity_destroy (&self.identity);
    cbus_peers_destroy (&self.registered);
    zhashx_destroy (&self.quiet);
    zhashx_destroy (&self.links);
    free (self.queue);
    cbus_buf_free (&self.reply);
    cbus_buf_free (&self.relay);
    zstr_free (&endpoint);
    zstr_free (&bus_in);
    zstr_free (&bus_out);
    zstr_free (&store);
    zstr_free (&pool);
    zstr_free (&path);
    zstr_free (&key_path);
}
