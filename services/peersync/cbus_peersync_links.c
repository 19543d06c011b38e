/*  =========================================================================
    cbus_peersync_links - links to peers: connect, HELLO and REJECT,
    states, liveness, redundancy, scores

    A peer is registered (outbound: we dial it, after learning its key in
    cbus_peersync_info.c) or inbound (it dialled our ROUTER). Either way it
    is linked once HELLOs are exchanged, stays linked while it talks (STATUS
    every 2 s), and is cut off for a while if it misbehaves. Nothing here
    waits: sends are non-blocking and dropped when a link is full.
    =========================================================================
*/
#include "cbus_peersync_private.h"

const char *peersync_state_names [] = { "fetching", "connecting", "linked", "refused", "banned" };

//  The links to one node. Two nodes that registered each other have two,
//  one opened by each; gossip goes over one only, the one opened by the
//  node with the smaller id, so both ends agree which without a word.
typedef struct {
    int outbound;               //  Linked links we opened to it
    int inbound;                //  Linked links it opened to us
} s_links_t;

const char *
peersync_peer_name (peersync_peer_t *peer)
{
    return peer->address ? peer->address : (*peer->endpoint ? peer->endpoint : peer->node_id);
}

//  --------------------------------------------------------------------------
//  Peers: creating, finding, destroying

peersync_peer_t *
peersync_peer_add (peersync_t *self, const char *address)
{
    peersync_peer_t *peer = (peersync_peer_t *) zmalloc (sizeof (peersync_peer_t));
    if (!peer)
        return NULL;
    peer->serial = ++self->links.next_serial;
    peer->state = P_FETCHING;
    peer->fd = -1;
    peer->min_rtt = -1;
    peer->address = address ? strdup (address) : NULL;
    peer->handle = zlistx_add_end (self->links.peers, peer);
    if ((address && !peer->address) || !peer->handle) {
        zsys_error ("out of memory adding a peer");
        if (peer->handle)
            zlistx_detach (self->links.peers, peer->handle);
        free (peer->address);
        free (peer);
        return NULL;
    }
    return peer;
}

void
peersync_peer_remove (peersync_t *self, peersync_peer_t **peer_p)
{
    peersync_peer_t *peer = *peer_p;
    if (!peer)
        return;
    peersync_unlink (self, peer);
    peersync_pending_clear (peer);
    if (peer->handle)
        zlistx_detach (self->links.peers, peer->handle);
    zframe_destroy (&peer->routing_id);
    free (peer->address);
    free (peer);
    *peer_p = NULL;
}

peersync_peer_t *
peersync_peer_by_serial (peersync_t *self, uint64_t serial)
{
    PEERSYNC_EACH (self, peer)
        if (peer->serial == serial)
            return peer;
    return NULL;
}

static peersync_peer_t *
s_find_socket (peersync_t *self, zsock_t *socket)
{
    PEERSYNC_EACH (self, peer)
        if (peer->dealer == socket || peer->monitor == socket)
            return peer;
    return NULL;
}

//  --------------------------------------------------------------------------
//  Sending

void
peersync_send (peersync_t *self, peersync_peer_t *peer, const char *command,
               const cbus_buf_t *body)
{
    zsock_t *socket = peer->dealer ? peer->dealer : self->links.p2p;
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
    if (zmq_send (handle, body->data, body->size, ZMQ_DONTWAIT) >= 0)
        peer->bytes_out += strlen (command) + body->size;
}

void
peersync_links_metrics (peersync_t *self)
{
    cbus_metrics_t *metrics = self->metrics;
    size_t states [P_BANNED + 1] = {0};
    //  Only the peers known now: one gone leaves no series, and one made
    //  again (an inbound link) starts from 0, a counter reset.
    cbus_metrics_forget (metrics, CBUS_METRIC_PEER_RECEIVED_BYTES, NULL, NULL);
    cbus_metrics_forget (metrics, CBUS_METRIC_PEER_SENT_BYTES, NULL, NULL);
    PEERSYNC_EACH (self, peer) {
        states [peer->state]++;
        const char *name = peersync_peer_name (peer);
        if (*name && (peer->bytes_in || peer->bytes_out)) {
            cbus_metrics_add (metrics, CBUS_METRIC_PEER_RECEIVED_BYTES, name, NULL, peer->bytes_in);
            cbus_metrics_add (metrics, CBUS_METRIC_PEER_SENT_BYTES, name, NULL, peer->bytes_out);
        }
    }
    for (int state = 0; state <= P_BANNED; state++)
        cbus_metrics_set (metrics, CBUS_METRIC_PEERS, peersync_state_names [state], NULL,
                          (double) states [state]);
    //  As PEER.LIST says it (and /status): 0 when not syncing.
    uint64_t left = 0;
    if (self->sync.peer) {
        uint64_t target = self->sync.peer->height > self->sync.target
                        ? self->sync.peer->height : self->sync.target;
        left = target > self->chain.height ? target - self->chain.height : 0;
    }
    cbus_metrics_set (metrics, CBUS_METRIC_SYNC_BLOCKS_LEFT, NULL, NULL, (double) left);
}

static void
s_our_tip (peersync_t *self, peersync_tip_t *tip)
{
    tip->height = self->chain.height;
    memcpy (tip->work, self->chain.work, CBUS_U256_BYTES);
    memcpy (tip->tip, self->chain.tip, CBUS_HASH_BYTES);
}

//  HELLO; want_reply asks the peer to answer with its own (the dialler
//  asks, and so does a node that gets traffic on a link it does not know,
//  which happens when it restarted while its peer still counted it linked).
void
peersync_send_hello (peersync_t *self, peersync_peer_t *peer, bool want_reply)
{
    peersync_hello_t hello = {
        .reply = want_reply,
        .version = CBUS_P2P_VERSION,
        .network = self->chain.network,
        .network_size = strlen (self->chain.network),
        .node_id = cbus_identity_node_id (self->links.identity),
        .public_key = cbus_identity_public (self->links.identity),
        .endpoint = self->links.endpoint,
        .endpoint_size = strlen (self->links.endpoint)
    };
    memcpy (hello.genesis, self->chain.genesis, CBUS_HASH_BYTES);
    s_our_tip (self, &hello.tip);
    peersync_hello_pack (&hello, &self->message);
    peersync_send (self, peer, CBUS_P2P_HELLO, &self->message);
    peer->next_hello = cbus_mono_ms () + PEERSYNC_HELLO_MS;
}

//  STATUS carries the tip we last heard of, whether or not our chainstore
//  answers right now: a peer must not take a busy store for a dead link.
void
peersync_send_status (peersync_t *self, peersync_peer_t *peer, bool want_reply)
{
    peersync_status_t status = { .reply = want_reply };
    s_our_tip (self, &status.tip);
    peersync_status_pack (&status, &self->message);
    peersync_send (self, peer, CBUS_P2P_STATUS, &self->message);
    peer->next_status = cbus_mono_ms () + PEERSYNC_STATUS_MS;
}

void
peersync_send_reject (peersync_t *self, peersync_peer_t *peer, cbus_code_t code,
                      const char *reason)
{
    peersync_reject_pack (code, reason, &self->message);
    peersync_send (self, peer, CBUS_P2P_REJECT, &self->message);
}

//  Its own buffer: a state change may come while self->message is being
//  sent to every peer.
void
peersync_publish_peer (peersync_t *self, peersync_peer_t *peer, bool connected)
{
    cbus_buf_t body = {0};
    cbus_peer_connected_t event = {
        .address = cbus_str (peersync_peer_name (peer)),
        .node_id = cbus_str (peer->node_id),
        .state = cbus_str (peersync_state_names [peer->state])
    };
    if (connected)
        cbus_pub_send_msg (self->local.pub, &cbus_peer_connected_def, &event, &body);
    else {
        cbus_peer_disconnected_t gone = {
            .address = event.address, .node_id = event.node_id, .state = event.state
        };
        cbus_pub_send_msg (self->local.pub, &cbus_peer_disconnected_def, &gone, &body);
    }
    cbus_buf_free (&body);
}

//  --------------------------------------------------------------------------
//  States, redundancy, scores

static void
s_links_count (peersync_t *self, peersync_peer_t *peer, int delta)
{
    if (!*peer->linked_id)
        return;
    s_links_t *links = (s_links_t *) zhashx_lookup (self->links.nodes, peer->linked_id);
    if (!links) {
        links = (s_links_t *) zmalloc (sizeof (s_links_t));
        if (!links || zhashx_insert (self->links.nodes, peer->linked_id, links)) {
            free (links);
            return;
        }
    }
    if (peer->address)
        links->outbound += delta;
    else
        links->inbound += delta;
    if (links->outbound <= 0 && links->inbound <= 0)
        zhashx_delete (self->links.nodes, peer->linked_id);
}

void
peersync_relabel (peersync_t *self, peersync_peer_t *peer)
{
    if (peer->state == P_LINKED && !streq (peer->linked_id, peer->node_id)) {
        s_links_count (self, peer, -1);
        memcpy (peer->linked_id, peer->node_id, sizeof (peer->linked_id));
        s_links_count (self, peer, 1);
    }
}

//  The link stays up (HELLO, STATUS, liveness) but carries no gossip, and
//  counts once in PEER.LIST's figures.
bool
peersync_peer_redundant (peersync_t *self, peersync_peer_t *peer)
{
    if (peer->state != P_LINKED || !*peer->linked_id)
        return false;
    s_links_t *links = (s_links_t *) zhashx_lookup (self->links.nodes, peer->linked_id);
    if (!links)
        return false;
    bool ours_wins = strcmp (cbus_identity_node_id (self->links.identity), peer->linked_id) < 0;
    return ours_wins ? !peer->address && links->outbound > 0
                     : peer->address && links->inbound > 0;
}

void
peersync_set_state (peersync_t *self, peersync_peer_t *peer, peersync_state_t state,
                    const char *reason)
{
    bool was_linked = peer->state == P_LINKED;
    peer->state = state;
    if (state == P_REFUSED)
        peer->next_try = cbus_mono_ms () + PEERSYNC_REFUSED_RETRY_MS;
    snprintf (peer->reason, sizeof (peer->reason), "%s", reason ? reason : "");
    //  New transactions are only worth hearing while a peer is linked;
    //  with none, the mempool's PUB (which filters) does not send them.
    //  What was published while we did not listen is no loss: the
    //  sequence is followed afresh.
    if (!was_linked && state == P_LINKED && self->links.linked++ == 0) {
        zsock_set_subscribe (self->local.sub, CBUS_TOPIC_TX_ADDED);
        cbus_metrics_event_forget (self->metrics, CBUS_TOPIC_TX_ADDED);
    }
    if (was_linked && state != P_LINKED && --self->links.linked == 0)
        zsock_set_unsubscribe (self->local.sub, CBUS_TOPIC_TX_ADDED);
    if (!was_linked && state == P_LINKED) {
        memcpy (peer->linked_id, peer->node_id, sizeof (peer->linked_id));
        s_links_count (self, peer, 1);
    }
    if (was_linked && state != P_LINKED) {
        s_links_count (self, peer, -1);
        *peer->linked_id = 0;
        zsys_info ("peer unlinked peer=%s state=%s reason=\"%s\"", peersync_peer_name (peer),
                   peersync_state_names [state], peer->reason);
        peersync_publish_peer (self, peer, false);
        if (self->sync.peer == peer)
            peersync_sync_stop (self, "peer unlinked");
    }
}

void
peersync_punish (peersync_t *self, peersync_peer_t *peer, int cost, const char *why)
{
    peer->score -= cost;
    zsys_warning ("peer misbehaved peer=%s cost=%d score=%d why=\"%s\"", peersync_peer_name (peer),
                  cost, peer->score, why);
    if (peer->score <= PEERSYNC_BAN_SCORE && peer->state != P_BANNED) {
        char reason [160], span [32];
        peersync_slots_ban_span (self, span, sizeof (span));
        snprintf (reason, sizeof (reason), "banned for %s: %s", span, why);
        peersync_send_reject (self, peer, CBUS_CODE_BANNED, reason);
        peersync_set_state (self, peer, P_BANNED, reason);
        peer->banned_until = cbus_mono_ms () + self->slots.ban_ms;
        //  An inbound peer's ban is kept apart and holds no slot: its entry
        //  goes once its message is handled (or at the next tick).
        if (!peer->address) {
            peersync_slots_ban (self, peer);
            peersync_slots_hangup (self, peer, PEERSYNC_HANGUP_MS);
        }
        peersync_unlink (self, peer);
    }
}

//  --------------------------------------------------------------------------
//  Outbound links

static int s_on_link (zloop_t *loop, zsock_t *reader, void *arg);
static int s_on_monitor (zloop_t *loop, zsock_t *reader, void *arg);

void
peersync_unlink (peersync_t *self, peersync_peer_t *peer)
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
    if (self->sync.peer == peer)
        peersync_sync_stop (self, "link closed");
}

//  Watch the connection itself: a peer that restarts quickly would
//  otherwise still count as linked while it knows nothing of us.
static void
s_monitor (peersync_t *self, peersync_peer_t *peer)
{
    static unsigned s_monitors = 0;
    char monitor [64];
    snprintf (monitor, sizeof (monitor), "inproc://peersync-monitor-%u", s_monitors++);
    if (zmq_socket_monitor (zsock_resolve (peer->dealer), monitor,
                            ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED) == 0) {
        peer->monitor = zsock_new_pair (monitor);
        if (peer->monitor)
            zloop_reader (self->loop, peer->monitor, s_on_monitor, self);
    }
}

void
peersync_link (peersync_t *self, peersync_peer_t *peer)
{
    peersync_unlink (self, peer);
    peer->dealer = zsock_new (ZMQ_DEALER);
    if (!peer->dealer) {
        peersync_set_state (self, peer, P_FETCHING, "cannot make a socket");
        peer->next_try = cbus_mono_ms () + PEERSYNC_RETRY_MS;
        return;
    }
    cbus_identity_apply_client (self->links.identity, peer->dealer, peer->public_key);
    zsock_set_maxmsgsize (peer->dealer, CBUS_MSG_MAX_BYTES);
    zsock_set_linger (peer->dealer, 0);
    zsock_set_immediate (peer->dealer, 1);
    zsock_set_sndhwm (peer->dealer, 1000);
    peersync_budget_socket (self, peer->dealer);
    zsock_set_heartbeat_ivl (peer->dealer, 1000);
    zsock_set_heartbeat_timeout (peer->dealer, 5000);
    zsock_set_heartbeat_ttl (peer->dealer, 5000);
    if (zsock_connect (peer->dealer, "%s", peer->endpoint)) {
        peersync_set_state (self, peer, P_FETCHING, "cannot connect to its endpoint");
        zsock_destroy (&peer->dealer);
        peer->next_try = cbus_mono_ms () + PEERSYNC_RETRY_MS;
        return;
    }
    zloop_reader (self->loop, peer->dealer, s_on_link, self);
    s_monitor (self, peer);
    peersync_set_state (self, peer, P_CONNECTING, "waiting for its HELLO");
    peer->next_hello = 0;               //  As soon as the link is up
    peer->last_heard = cbus_mono_ms ();
}

//  A message on one of our outbound links.
static int
s_on_link (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    peersync_t *self = (peersync_t *) arg;
    zmsg_t *msg = zmsg_recv (reader);
    peersync_peer_t *peer = s_find_socket (self, reader);
    if (msg && peer && peer->state != P_BANNED) {
        if (zmsg_size (msg) == 2)
            peersync_on_peer_message (self, peer, zmsg_first (msg), zmsg_last (msg), false);
        else
            peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "a message of the wrong shape");
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
    peersync_t *self = (peersync_t *) arg;
    zmsg_t *msg = zmsg_recv (reader);
    peersync_peer_t *peer = s_find_socket (self, reader);
    zframe_t *event = msg ? zmsg_first (msg) : NULL;
    if (peer && event && zframe_size (event) >= 2) {
        uint16_t code = (uint16_t) (zframe_data (event) [0] | zframe_data (event) [1] << 8);
        if (code == ZMQ_EVENT_DISCONNECTED && peer->state == P_LINKED) {
            peersync_set_state (self, peer, P_CONNECTING, "disconnected");
            peer->last_heard = cbus_mono_ms ();
        }
        else
        if (code == ZMQ_EVENT_HANDSHAKE_SUCCEEDED && self->chain.known && peer->state != P_BANNED)
            peersync_send_hello (self, peer, true);
    }
    zmsg_destroy (&msg);
    return 0;
}

//  --------------------------------------------------------------------------
//  Liveness

//  One outbound peer's turn: learn, link, greet, keep alive.
static void
s_outbound_tick (peersync_t *self, peersync_peer_t *peer, int64_t now)
{
    if (peer->state == P_REFUSED && now >= peer->next_try) {
        //  Networks get reconfigured, bans end: ask again, rarely.
        peersync_unlink (self, peer);
        peersync_set_state (self, peer, P_FETCHING, "trying again");
        peersync_ask_info (self, peer);
    }
    else
    if (peer->state == P_FETCHING && now >= peer->next_try)
        peersync_ask_info (self, peer);
    else
    if (peer->state == P_CONNECTING && now >= peer->next_hello) {
        if (now - peer->last_heard > 3 * PEERSYNC_SILENT_MS) {
            //  Long silence: maybe it moved or changed its key.
            peersync_unlink (self, peer);
            peersync_set_state (self, peer, P_FETCHING, "no answer to HELLO");
            peer->next_try = now;
        }
        else
            peersync_send_hello (self, peer, true);
    }
    else
    if (peer->state == P_LINKED && now - peer->last_heard > PEERSYNC_SILENT_MS) {
        peersync_set_state (self, peer, P_CONNECTING, "silent");
        peer->next_hello = 0;
    }
}

void
peersync_links_tick (peersync_t *self, int64_t now)
{
    //  Walk a snapshot: what we call may add or remove peers.
    size_t count = zlistx_size (self->links.peers), taken = 0;
    uint64_t *snapshot = (uint64_t *) malloc ((count + 1) * sizeof (uint64_t));
    if (!snapshot)
        return;
    PEERSYNC_EACH (self, peer)
        snapshot [taken++] = peer->serial;
    for (size_t index = 0; index < taken; index++) {
        peersync_peer_t *peer = peersync_peer_by_serial (self, snapshot [index]);
        if (!peer)
            continue;
        if (peer->state == P_BANNED) {
            if (now < peer->banned_until || !peer->address)
                continue;
            peer->score = 0;
            peersync_set_state (self, peer, peer->address ? P_FETCHING : P_CONNECTING, "ban over");
            peer->next_try = 0;
        }
        if (!peer->address) {
            //  Inbound and silent: forget it; it comes back with a HELLO.
            if (now - peer->last_heard > PEERSYNC_SILENT_MS) {
                peersync_set_state (self, peer, P_CONNECTING, "silent");
                peersync_slots_hangup (self, peer, 0);      //  Its descriptor too
                peersync_peer_remove (self, &peer);
                continue;
            }
        }
        else
            s_outbound_tick (self, peer, now);
        if (peer->state == P_LINKED && now >= peer->next_status)
            peersync_send_status (self, peer, false);
    }
    free (snapshot);
    peersync_slots_tick (self, now);
}
