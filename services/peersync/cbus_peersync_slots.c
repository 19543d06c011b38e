/*  =========================================================================
    cbus_peersync_slots - who may hold one of our inbound slots

    An inbound peer takes a slot with its first message on a link we do
    not know. Slots are few (peersync/max_inbound) and cost nothing to ask
    for (a CurveZMQ key is free), so:

      - a banned peer holds no slot: its ban is remembered apart, in a
        bounded table by key (cbus_bans), its entry goes at once, and its
        handshakes are refused by our ZAP handler until the ban ends;
      - a link that closes gives its slot back at once (the ROUTER's
        socket monitor), and one silent for PEERSYNC_SILENT_MS too;
      - one address holds at most peersync/max_inbound_per_address slots
        (loopback addresses are exempt unless peersync/limit_loopback);
      - when every slot is taken, a newcomer's HELLO may evict the least
        useful inbound peer (cbus_evict, Bitcoin Core's rules).

    Refusals are counted and logged together every 10 s, not one line per
    attempt.
    =========================================================================
*/
#include "cbus_peersync_private.h"
#include <sodium.h>

//  How often refusals are logged, ended bans swept, inbound RTT measured.
#define S_REPORT_MS     10000
#define S_PURGE_MS      10000
#define S_PING_MS       10000

//  --------------------------------------------------------------------------
//  ZAP: every CurveZMQ handshake on the peer ROUTER is authenticated here
//  (ZeroMQ RFC 27). Banned keys are refused; the others get their key, in
//  Z85, as the User-Id of every message they send.

static int
s_on_zap (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    peersync_t *self = (peersync_t *) arg;
    zmsg_t *request = zmsg_recv (reader);
    if (!request)
        return 0;
    //  Our tcp service socket's handshakes: the allowlist decides.
    if (cbus_endpoint_zap_owns (request)) {
        cbus_endpoint_zap_answer (reader, &request);
        return 0;
    }
    //  version, request id, domain, address, identity, mechanism, credentials
    zframe_t *version = zmsg_first (request);
    zframe_t *id = zmsg_next (request);
    zmsg_next (request);
    zmsg_next (request);
    zmsg_next (request);
    zframe_t *mechanism = zmsg_next (request);
    zframe_t *credential = zmsg_next (request);
    char key [41] = "";
    const char *status = "200", *text = "OK";
    if (mechanism && zframe_streq (mechanism, "CURVE")
    &&  credential && zframe_size (credential) == 32) {
        zmq_z85_encode (key, zframe_data (credential), 32);
        if (cbus_bans_find (self->slots.bans, key, cbus_mono_ms ())) {
            status = "400", text = "banned";
            self->slots.refused_banned++;
        }
    }
    (void) version;
    cbus_endpoint_zap_reply (reader, id, status, text, key);
    zmsg_destroy (&request);
    return 0;
}

//  --------------------------------------------------------------------------
//  Finding and releasing

static peersync_peer_t *
s_find_inbound (peersync_t *self, zframe_t *routing_id)
{
    PEERSYNC_EACH (self, peer)
        if (peer->routing_id && zframe_eq (peer->routing_id, routing_id))
            return peer;
    return NULL;
}

size_t
peersync_slots_taken (peersync_t *self)
{
    size_t taken = 0;
    PEERSYNC_EACH (self, peer)
        taken += peer->routing_id && peer->state != P_BANNED;
    return taken;
}

//  Forget an inbound peer now: unlinked first (events, sync), then gone.
static void
s_release (peersync_t *self, peersync_peer_t **peer_p, const char *why)
{
    peersync_peer_t *peer = *peer_p;
    if (peer->state == P_LINKED)
        peersync_set_state (self, peer, P_CONNECTING, why);
    peersync_peer_remove (self, peer_p);
}

//  --------------------------------------------------------------------------
//  Quiet connections: a CurveZMQ handshake costs an attacker nothing
//  after it, and ZeroMQ's heartbeats keep a connection that never says a
//  word alive for good, each holding a descriptor. A new connection that
//  has no inbound peer on it PEERSYNC_SPEAK_MS after it was accepted is
//  shut (an honest peer sends HELLO, or STATUS after our restart, at once;
//  a handshake not done by then is dropped by ZeroMQ's handshake_ivl).
//  When the watch list is full, its oldest connection is shut to make room.

static void
s_quiet_forget (peersync_t *self, int fd)
{
    peersync_slots_t *slots = &self->slots;
    for (size_t index = 0; index < slots->quiet_count; index++)
        if (slots->quiet [index].fd == fd) {
            slots->quiet [index] = slots->quiet [--slots->quiet_count];
            return;
        }
}

//  Whether an inbound peer lives on the connection fd (it has spoken).
static bool
s_fd_spoke (peersync_t *self, int fd)
{
    PEERSYNC_EACH (self, peer)
        if (peer->routing_id && peer->fd == fd)
            return true;
    return false;
}

//  Shut watched connection index if it is still the one watched.
static void
s_quiet_close (peersync_t *self, size_t index)
{
    peersync_slots_t *slots = &self->slots;
    peersync_hangup_t *watched = &slots->quiet [index];
    struct sockaddr_storage far;
    socklen_t size = sizeof (far);
    if (!s_fd_spoke (self, watched->fd)
    &&  getpeername (watched->fd, (struct sockaddr *) &far, &size) == 0
    &&  size == watched->sockaddr_size && memcmp (&far, &watched->sockaddr, size) == 0
    &&  shutdown (watched->fd, SHUT_RDWR) == 0)
        slots->quiet_closed++;
    slots->quiet [index] = slots->quiet [--slots->quiet_count];
}

static void
s_quiet_watch (peersync_t *self, int fd)
{
    peersync_slots_t *slots = &self->slots;
    if (fd < 0)
        return;
    s_quiet_forget (self, fd);
    if (slots->quiet_count == PEERSYNC_QUIET) {
        size_t oldest = 0;
        for (size_t index = 1; index < slots->quiet_count; index++)
            if (slots->quiet [index].due < slots->quiet [oldest].due)
                oldest = index;
        s_quiet_close (self, oldest);
    }
    peersync_hangup_t *watched = &slots->quiet [slots->quiet_count];
    watched->fd = fd;
    watched->sockaddr_size = sizeof (watched->sockaddr);
    if (getpeername (fd, (struct sockaddr *) &watched->sockaddr, &watched->sockaddr_size))
        return;                     //  Gone already
    watched->due = cbus_mono_ms () + PEERSYNC_SPEAK_MS;
    slots->quiet_count++;
}

static void
s_quiet_tick (peersync_t *self, int64_t now)
{
    peersync_slots_t *slots = &self->slots;
    for (size_t index = 0; index < slots->quiet_count; )
        if (now >= slots->quiet [index].due) {
            if (s_fd_spoke (self, slots->quiet [index].fd))
                slots->quiet [index] = slots->quiet [--slots->quiet_count];
            else
                s_quiet_close (self, index);
        }
        else
            index++;
}

//  The ROUTER's monitor: a closed connection releases the slots taken
//  over it (matched by descriptor: a descriptor reused meanwhile costs
//  its new peer one HELLO round, as after a restart).
static int
s_on_monitor (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    peersync_t *self = (peersync_t *) arg;
    zmsg_t *msg = zmsg_recv (reader);
    zframe_t *event = msg ? zmsg_first (msg) : NULL;
    if (event && zframe_size (event) >= 6) {
        const uint8_t *data = zframe_data (event);
        uint16_t code = (uint16_t) (data [0] | data [1] << 8);
        int fd = (int) ((uint32_t) data [2] | (uint32_t) data [3] << 8
                      | (uint32_t) data [4] << 16 | (uint32_t) data [5] << 24);
        peersync_peer_t *found = NULL;
        if (code == ZMQ_EVENT_ACCEPTED)
            s_quiet_watch (self, fd);
        if (code == ZMQ_EVENT_DISCONNECTED)
            s_quiet_forget (self, fd);
        if (code == ZMQ_EVENT_DISCONNECTED)
            do {
                found = NULL;
                PEERSYNC_EACH (self, peer)
                    if (peer->routing_id && peer->fd == fd && fd >= 0) {
                        found = peer;
                        break;
                    }
                if (found) {
                    s_release (self, &found, "its link closed");
                    self->slots.released++;
                }
            } while (found);
    }
    zmsg_destroy (&msg);
    return 0;
}

//  --------------------------------------------------------------------------
//  Bans

void
peersync_slots_ban_span (peersync_t *self, char *text, size_t size)
{
    int64_t ban_ms = self->slots.ban_ms;
    if (ban_ms % 60000 == 0)
        snprintf (text, size, "%" PRId64 " minute%s", ban_ms / 60000, ban_ms == 60000 ? "" : "s");
    else
        snprintf (text, size, "%" PRId64 " s", (ban_ms + 999) / 1000);
}

void
peersync_slots_ban (peersync_t *self, peersync_peer_t *peer)
{
    cbus_ban_t ban = { .score = peer->score, .until = peer->banned_until,
                       .height = peer->height, .last_seen_wall = peer->last_seen_wall };
    if (*peer->public_key)
        snprintf (ban.key, sizeof (ban.key), "%s", peer->public_key);
    else
        //  No key (no ZAP handler): shown, never matched by a handshake.
        snprintf (ban.key, sizeof (ban.key), "~%" PRIu64, peer->serial);
    snprintf (ban.name, sizeof (ban.name), "%s", peersync_peer_name (peer));
    snprintf (ban.node_id, sizeof (ban.node_id), "%s", peer->node_id);
    snprintf (ban.remote, sizeof (ban.remote), "%s", peer->remote);
    snprintf (ban.reason, sizeof (ban.reason), "%s", peer->reason);
    if (cbus_bans_add (self->slots.bans, &ban))
        zsys_error ("out of memory remembering a ban");
}

//  Close the connection on fd, whose far end is sockaddr, in delay_ms.
//  When too many wait, the connection is left open (counted: the
//  kernel's timeout or the peer's leaving ends it).
static void
s_hangup (peersync_t *self, int fd, const struct sockaddr_storage *sockaddr, socklen_t size,
          int64_t delay_ms)
{
    peersync_slots_t *slots = &self->slots;
    if (fd < 0 || !size)
        return;
    for (size_t index = 0; index < slots->hangup_count; index++)
        if (slots->hangups [index].fd == fd)
            return;                 //  Already waiting
    if (slots->hangup_count == PEERSYNC_HANGUPS) {
        slots->hangups_dropped++;
        return;
    }
    peersync_hangup_t *hangup = &slots->hangups [slots->hangup_count++];
    hangup->fd = fd;
    hangup->sockaddr = *sockaddr;
    hangup->sockaddr_size = size;
    hangup->due = cbus_mono_ms () + delay_ms;
}

//  The same for a connection that just delivered a message: its far end
//  is read now, while the descriptor is surely its own.
static void
s_hangup_fd (peersync_t *self, int fd, int64_t delay_ms)
{
    struct sockaddr_storage sockaddr;
    socklen_t size = sizeof (sockaddr);
    if (fd >= 0 && getpeername (fd, (struct sockaddr *) &sockaddr, &size) == 0)
        s_hangup (self, fd, &sockaddr, size, delay_ms);
}

void
peersync_slots_hangup (peersync_t *self, peersync_peer_t *peer, int64_t delay_ms)
{
    if (peer->dealer || peer->fd < 0 || !peer->sockaddr_size)
        return;
    s_hangup (self, peer->fd, &peer->sockaddr, peer->sockaddr_size, delay_ms);
    peer->fd = -1;                  //  Once
}

//  Close the connections due; O(waiting).
static void
s_hangup_tick (peersync_t *self, int64_t now)
{
    peersync_slots_t *slots = &self->slots;
    size_t kept = 0;
    for (size_t index = 0; index < slots->hangup_count; index++) {
        peersync_hangup_t *hangup = &slots->hangups [index];
        if (now < hangup->due) {
            slots->hangups [kept++] = *hangup;
            continue;
        }
        struct sockaddr_storage far;
        socklen_t size = sizeof (far);
        if (getpeername (hangup->fd, (struct sockaddr *) &far, &size) == 0
        &&  size == hangup->sockaddr_size && memcmp (&far, &hangup->sockaddr, size) == 0
        &&  shutdown (hangup->fd, SHUT_RDWR) == 0)
            slots->hung_up++;
    }
    slots->hangup_count = kept;
}

//  --------------------------------------------------------------------------
//  Taking a slot

//  Evict the least useful inbound peer for a newcomer of group; true if
//  a slot is free now.
static bool
s_evict (peersync_t *self, uint64_t group)
{
    size_t count = peersync_slots_taken (self), taken = 0;
    cbus_evict_candidate_t *set = (cbus_evict_candidate_t *) calloc (count ? count : 1,
                                                                      sizeof (*set));
    if (!set)
        return false;
    PEERSYNC_EACH (self, peer)
        if (peer->routing_id && peer->state != P_BANNED && taken < count)
            set [taken++] = (cbus_evict_candidate_t) {
                .id = peer->serial, .group = peer->group, .connected_ms = peer->connected_at,
                .min_rtt_ms = peer->min_rtt, .last_block_ms = peer->last_block,
                .last_tx_ms = peer->last_tx };
    int chosen = cbus_evict_select (set, taken, group, self->slots.evict_key);
    peersync_peer_t *victim = chosen < 0 ? NULL : peersync_peer_by_serial (self, set [chosen].id);
    free (set);
    if (!victim)
        return false;
    CBUS_DEBUG ("peer evicted peer=%s remote=%s", peersync_peer_name (victim), victim->remote);
    peersync_send_reject (self, victim, CBUS_CODE_FULL,
                          "evicted: this node needed the slot for a peer of another address group");
    peersync_slots_hangup (self, victim, PEERSYNC_HANGUP_MS);
    s_release (self, &victim, "evicted for a newcomer");
    self->slots.evicted++;
    return true;
}

//  Refuse a newcomer; only a HELLO is answered (anything else from a
//  link we do not know is not worth a message). Its connection is shut
//  once the REJECT had time to leave: a refused connection left open
//  would hold a descriptor, and enough of them would leave none.
static void
s_refuse (peersync_t *self, zframe_t *routing_id, bool hello, const char *reason, int fd)
{
    if (hello) {
        peersync_peer_t stranger = { .routing_id = routing_id };
        peersync_send_reject (self, &stranger, CBUS_CODE_FULL, reason);
    }
    s_hangup_fd (self, fd, PEERSYNC_HANGUP_MS);
}

//  Whether a HELLO would link (peersync_hello_check). A newcomer evicts a
//  peer only with one (else any HELLO could empty a group of its peers).
static bool
s_hello_acceptable (peersync_t *self, zframe_t *body)
{
    bool acceptable = false;
    peersync_hello_t hello;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    if (body && cbus_unpack_next (&unpacked, (const char *) zframe_data (body),
                                     zframe_size (body), &offset) == MSGPACK_UNPACK_SUCCESS
    &&  peersync_hello_parse (&hello, &unpacked.data) == 0)
        acceptable = peersync_hello_check (self, &hello) == CBUS_CODE_OK;
    msgpack_unpacked_destroy (&unpacked);
    return acceptable;
}

//  A link we do not know opens an inbound peer, within the limits. If its
//  first message is not HELLO, we probably restarted while it counted us
//  linked: ask it to introduce itself again, and drop the message (NULL).
static peersync_peer_t *
s_inbound_new (peersync_t *self, zframe_t *routing_id, zframe_t *first, zframe_t *body,
               const char *remote, const char *key, int fd)
{
    peersync_slots_t *slots = &self->slots;
    bool hello = zframe_streq (first, CBUS_P2P_HELLO);
    size_t taken = 0, from_address = 0;
    PEERSYNC_EACH (self, other)
        if (other->routing_id && other->state != P_BANNED) {
            taken++;
            from_address += streq (other->remote, remote);
        }
    char reason [120];
    if (*remote && from_address >= slots->max_per_address
    &&  (slots->limit_loopback || !cbus_evict_is_loopback (remote))) {
        slots->refused_address++;
        snprintf (reason, sizeof (reason), "this node has its %zu inbound peers from your address",
                  slots->max_per_address);
        s_refuse (self, routing_id, hello, reason, fd);
        return NULL;
    }
    uint64_t group = cbus_evict_group (remote);
    if (taken >= slots->max_inbound
    &&  !(hello && s_hello_acceptable (self, body) && s_evict (self, group))) {
        slots->refused_full++;
        snprintf (reason, sizeof (reason), "this node has its %zu inbound peers",
                  slots->max_inbound);
        s_refuse (self, routing_id, hello, reason, fd);
        return NULL;
    }
    peersync_peer_t *peer = peersync_peer_add (self, NULL);
    if (!peer)
        return NULL;
    peer->routing_id = zframe_dup (routing_id);
    if (!peer->routing_id) {
        peersync_peer_remove (self, &peer);
        return NULL;
    }
    snprintf (peer->remote, sizeof (peer->remote), "%s", remote);
    snprintf (peer->public_key, sizeof (peer->public_key), "%s", key);
    peer->group = group;
    peer->fd = fd;
    peer->sockaddr_size = sizeof (peer->sockaddr);
    if (fd < 0 || getpeername (fd, (struct sockaddr *) &peer->sockaddr, &peer->sockaddr_size))
        peer->sockaddr_size = 0;
    peer->state = P_CONNECTING;
    peer->connected_at = peer->last_heard = cbus_mono_ms ();
    peer->next_ping = peer->connected_at + PEERSYNC_STATUS_MS;
    if (!hello) {
        if (self->chain.known)
            peersync_send_hello (self, peer, true);
        return NULL;
    }
    return peer;
}

//  What the slots learn from a message before it is handled: the round
//  trip of our last STATUS that asked for one. (Who relays is learnt
//  from the mempool's verdicts, in cbus_peersync_handlers.c: only a
//  transaction new to us is a merit, or a flood of copies would be.)
static void
s_note (peersync_peer_t *peer, zframe_t *command, int64_t now)
{
    if (peer->ping_sent && zframe_streq (command, CBUS_P2P_STATUS)) {
        int64_t rtt = now - peer->ping_sent;
        if (peer->min_rtt < 0 || rtt < peer->min_rtt)
            peer->min_rtt = rtt;
        peer->ping_sent = 0;
    }
}

//  Receive one frame by hand; NULL if none (or out of memory).
static zframe_t *
s_recv_frame (void *handle, zmq_msg_t *part, bool *more)
{
    zmq_msg_init (part);
    if (zmq_msg_recv (part, handle, ZMQ_DONTWAIT) < 0)
        return NULL;
    *more = zmq_msg_more (part);
    return zframe_new (zmq_msg_data (part), zmq_msg_size (part));
}

//  The peer ROUTER: [routing id][command][body]. The first two frames are
//  read by hand for what the socket knows of the link, carried by every
//  frame the peer sent (not by the routing id): the key its handshake
//  authenticated (User-Id), its address (Peer-Address), the descriptor.
//  The body, maybe large, is not copied.
int
peersync_on_p2p (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    peersync_t *self = (peersync_t *) arg;
    void *handle = zsock_resolve (self->links.p2p);
    zmq_msg_t part;
    bool more = false;
    char key [41] = "", remote [48] = "";
    int fd = -1;
    zframe_t *routing_id = s_recv_frame (handle, &part, &more);
    zmq_msg_close (&part);
    zframe_t *command = NULL;
    if (routing_id && more) {
        command = s_recv_frame (handle, &part, &more);
        const char *user = zmq_msg_gets (&part, "User-Id");
        const char *address = zmq_msg_gets (&part, "Peer-Address");
        snprintf (key, sizeof (key), "%s", user ? user : "");
        snprintf (remote, sizeof (remote), "%s", address ? address : "");
        fd = zmq_msg_get (&part, ZMQ_SRCFD);
        zmq_msg_close (&part);
    }
    zmsg_t *msg = more ? zmsg_recv (self->links.p2p) : zmsg_new ();
    if (msg && command)
        zmsg_prepend (msg, &command);
    zframe_destroy (&command);
    int64_t now = cbus_mono_ms ();
    if (!routing_id || !msg || zmsg_size (msg) < 1)
        goto cleanup;
    peersync_peer_t *peer = s_find_inbound (self, routing_id);
    if (!peer && *key && cbus_bans_find (self->slots.bans, key, now)) {
        s_hangup_fd (self, fd, 0);  //  Ignored while banned, and shut
        goto cleanup;
    }
    if (!peer)
        peer = s_inbound_new (self, routing_id, zmsg_first (msg),
                              zmsg_size (msg) == 2 ? zmsg_last (msg) : NULL, remote, key, fd);
    if (!peer || peer->state == P_BANNED)
        goto cleanup;
    uint64_t serial = peer->serial;
    if (zmsg_size (msg) == 2) {
        s_note (peer, zmsg_first (msg), now);
        peersync_on_peer_message (self, peer, zmsg_first (msg), zmsg_last (msg), true);
    }
    else
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "a message of the wrong shape");
    //  Banned by it: the slot goes now (its ban is in the table).
    peer = peersync_peer_by_serial (self, serial);
    if (peer && peer->state == P_BANNED)
        peersync_peer_remove (self, &peer);
cleanup:
    zframe_destroy (&routing_id);
    zmsg_destroy (&msg);
    return 0;
}

//  --------------------------------------------------------------------------
//  Setting up, the tick

int
peersync_slots_init (peersync_t *self)
{
    peersync_slots_t *slots = &self->slots;
    cbus_config_t *config = self->config;
    slots->max_inbound = (size_t) cbus_config_int (config, "peersync/max_inbound");
    slots->max_per_address = (size_t) cbus_config_int (config, "peersync/max_inbound_per_address");
    slots->limit_loopback = cbus_config_bool (config, "peersync/limit_loopback");
    slots->ban_ms = cbus_config_int (config, "peersync/ban_ms");
    slots->bans = cbus_bans_new ((size_t) cbus_config_int (config, "peersync/max_bans"));
    randombytes_buf (&slots->evict_key, sizeof (slots->evict_key));
    if (!slots->bans)
        return -1;
    //  One ZAP handler per process (libzmq's fixed endpoint): a second
    //  peersync in one process runs without key bans.
    slots->zap = zsock_new (ZMQ_REP);
    if (!slots->zap || zsock_bind (slots->zap, "inproc://zeromq.zap.01") < 0) {
        zsys_warning ("no ZAP handler (%s): bans are not kept across links",
                      zmq_strerror (zmq_errno ()));
        zsock_destroy (&slots->zap);
    }
    else {
        zloop_reader (self->loop, slots->zap, s_on_zap, self);
        cbus_endpoint_zap_delegate (true);
    }
    zsock_set_zap_domain (self->links.p2p, "peersync");
    char endpoint [64];
    snprintf (endpoint, sizeof (endpoint), "inproc://peersync-slots-%p", (void *) self);
    if (zmq_socket_monitor (zsock_resolve (self->links.p2p), endpoint,
                            ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_ACCEPTED) == 0) {
        //  A monitor nobody reads would block the socket: stop it if the
        //  reader cannot be had.
        slots->monitor = zsock_new_pair (endpoint);
        if (!slots->monitor || zloop_reader (self->loop, slots->monitor, s_on_monitor, self)) {
            zsock_destroy (&slots->monitor);
            zmq_socket_monitor (zsock_resolve (self->links.p2p), NULL, 0);
        }
    }
    if (!slots->monitor)
        zsys_warning ("no monitor on the peer socket: a closed link's slot waits for its silence");
    return 0;
}

void
peersync_slots_destroy (peersync_t *self)
{
    peersync_slots_t *slots = &self->slots;
    if (slots->monitor && self->links.p2p)
        zmq_socket_monitor (zsock_resolve (self->links.p2p), NULL, 0);
    zsock_destroy (&slots->monitor);
    if (slots->zap)
        cbus_endpoint_zap_delegate (false);
    zsock_destroy (&slots->zap);
    cbus_bans_destroy (&slots->bans);
}

//  Ask an inbound linked peer for a STATUS back now and then: its round
//  trip is one of the merits eviction protects.
static void
s_ping_tick (peersync_t *self, int64_t now)
{
    PEERSYNC_EACH (self, peer)
        if (peer->routing_id && peer->state == P_LINKED && now >= peer->next_ping) {
            peersync_send_status (self, peer, true);
            peer->ping_sent = now;
            peer->next_ping = now + S_PING_MS;
        }
}

void
peersync_slots_tick (peersync_t *self, int64_t now)
{
    peersync_slots_t *slots = &self->slots;
    //  Banned elsewhere (a late answer, a sync timeout): released here.
    peersync_peer_t *banned;
    do {
        banned = NULL;
        PEERSYNC_EACH (self, peer)
            if (peer->routing_id && peer->state == P_BANNED) {
                banned = peer;
                break;
            }
        if (banned)
            peersync_peer_remove (self, &banned);
    } while (banned);
    s_ping_tick (self, now);
    s_hangup_tick (self, now);
    s_quiet_tick (self, now);
    if (now >= slots->next_purge) {
        cbus_bans_purge (slots->bans, now);
        slots->next_purge = now + S_PURGE_MS;
    }
    if (now >= slots->next_report) {
        if (slots->refused_full || slots->refused_address || slots->refused_banned
        ||  slots->evicted || slots->released || slots->hung_up || slots->hangups_dropped
        ||  slots->quiet_closed)
            zsys_info ("inbound slots taken=%zu/%zu bans=%zu refused_full=%zu "
                       "refused_address=%zu refused_banned=%zu evicted=%zu released=%zu "
                       "hung_up=%zu hangups_dropped=%zu quiet_closed=%zu",
                       peersync_slots_taken (self), slots->max_inbound,
                       cbus_bans_size (slots->bans), slots->refused_full,
                       slots->refused_address, slots->refused_banned, slots->evicted,
                       slots->released, slots->hung_up, slots->hangups_dropped,
                       slots->quiet_closed);
        slots->refused_full = slots->refused_address = slots->refused_banned = 0;
        slots->evicted = slots->released = slots->hung_up = slots->hangups_dropped = 0;
        slots->quiet_closed = 0;
        slots->next_report = now + S_REPORT_MS;
    }
}
