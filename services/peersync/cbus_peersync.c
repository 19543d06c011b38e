/*  =========================================================================
    cbus_peersync - the node's side of the peer-to-peer network

    The service shell: the actor, its loop and sockets, the bus events it
    follows (our tip, our new transactions), the local requests (PEER.ADD,
    PEER.LIST, RESOLVE, NODE.INFO) and the tick that drives the rest. The
    concerns themselves live in cbus_peersync_*.c (see
    cbus_peersync_private.h). The loop never waits for another service.
    =========================================================================
*/
#include "cbus_peersync_private.h"

//  Most NODE.INFO requests kept waiting for our first TIP.
#define S_MAX_WAITING 64

//  --------------------------------------------------------------------------
//  Our chain: TIP once, then the chainstore's events

static void s_handle_info (peersync_t *self, cbus_request_t *request);

static int
s_take_tip (peersync_t *self, const msgpack_object *map, char *reason)
{
    cbus_tip_reply_t tip;
    peersync_chain_t *chain = &self->chain;
    if (cbus_tip_reply_decode (map, &tip, reason))
        return -1;
    if (tip.network.size >= sizeof (chain->network))
        return cbus_fail (reason, "TIP reply: network is longer than %zu bytes",
                          sizeof (chain->network) - 1);
    snprintf (chain->network, sizeof (chain->network), "%.*s", (int) tip.network.size,
              tip.network.data);
    memcpy (chain->genesis, tip.genesis, CBUS_HASH_BYTES);
    chain->has_block_interval = tip.has_block_interval;
    chain->block_interval = tip.block_interval;
    memcpy (chain->tip, tip.hash, CBUS_HASH_BYTES);
    memcpy (chain->work, tip.work, CBUS_U256_BYTES);
    chain->height = tip.height;
    chain->known = true;
    return 0;
}

//  The TIP answer: our chain is known, and NODE.INFO can be answered.
static void
s_on_tip (const cbus_call_t *call, cbus_reply_t *reply)
{
    peersync_t *self = (peersync_t *) call->owner;
    self->chain.asking = false;
    char reason [CBUS_REASON_MAX];
    if (!self->chain.known && cbus_reply_ok (reply)) {
        if (s_take_tip (self, cbus_reply_map (reply), reason))
            zsys_warning ("the chainstore's %s", reason);
        else
        //  Only now can we tell a peer of our network from another: its
        //  HELLO waited in the socket until then.
        if (zloop_reader (self->loop, self->links.p2p, peersync_on_p2p, self))
            zsys_error ("cannot read the peer socket");
    }
    cbus_request_t *request;
    while ((request = (cbus_request_t *) zlistx_detach (self->chain.waiting, NULL))) {
        if (self->chain.known)
            s_handle_info (self, request);
        else
            cbus_reply_refuse (self->local.router, request, CBUS_STATUS_UNAVAILABLE,
                               CBUS_CODE_UNAVAILABLE, "%s", *reply->reason
                               ? reply->reason : "the chainstore's tip is not known yet");
        cbus_request_destroy (&request);
    }
}

static void
s_ask_tip (peersync_t *self)
{
    if (self->chain.asking)
        return;
    self->chain.asking = true;
    cbus_caller_send (self->local.chainstore, CBUS_CMD_TIP, NULL, 0, PEERSYNC_TIP_TIMEOUT_MS,
                      s_on_tip, self, NULL);
}

//  A block connected: our tip moved (a reorganisation disconnects blocks
//  first, then connects the new branch's, so the connected ones are all
//  we follow). Returns true if the event decoded.
static bool
s_on_block_connected (peersync_t *self, cbus_event_t *event,
                      uint8_t newest [CBUS_HASH_BYTES], bool *newest_quiet)
{
    cbus_block_connected_t block;
    char reason [CBUS_REASON_MAX];
    if (cbus_block_connected_decode (cbus_event_map (event), &block, reason)) {
        zsys_warning ("the chainstore's %s", reason);
        return false;
    }
    self->chain.height = block.height;
    memcpy (self->chain.tip, block.hash, CBUS_HASH_BYTES);
    memcpy (self->chain.work, block.work, CBUS_U256_BYTES);
    memcpy (newest, block.hash, CBUS_HASH_BYTES);
    //  Every block that came by sync is forgotten as it connects.
    *newest_quiet = peersync_quiet_take (self, block.hash);
    return true;
}

//  A transaction our mempool accepted: to be gossiped.
static void
s_on_tx_added (peersync_t *self, cbus_event_t *event)
{
    cbus_tx_added_t added;
    char reason [CBUS_REASON_MAX];
    if (cbus_tx_added_decode (cbus_event_map (event), &added, reason))
        zsys_warning ("the mempool's %s", reason);
    else
        peersync_relay_tx (self, added.tx.data, added.tx.size);
}

static int
s_on_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    peersync_t *self = (peersync_t *) arg;
    bool tip_moved = false, newest_quiet = false;
    uint8_t newest [CBUS_HASH_BYTES];
    int count = 0;
    //  Drain what is there: a reorganisation or a sync comes as a burst,
    //  and only its last block is worth announcing.
    do {
        cbus_event_t *event = cbus_event_recv (self->local.sub);
        if (event)
            cbus_metrics_event (self->metrics, event);
        if (event && streq (event->topic, CBUS_TOPIC_TX_ADDED))
            s_on_tx_added (self, event);
        else
        if (event && streq (event->topic, CBUS_TOPIC_BLOCK_CONNECTED)
        &&  s_on_block_connected (self, event, newest, &newest_quiet))
            tip_moved = true;
        cbus_event_destroy (&event);
    } while (++count < 10000 && (zsock_events (self->local.sub) & ZMQ_POLLIN));
    //  What arrived together leaves together: under load a drain holds
    //  many transactions, and when quiet one goes out at once.
    peersync_relay_flush (self);
    if (tip_moved) {
        if (!newest_quiet)
            peersync_relay_block (self, newest);
        //  Our tip moved: tell peers now rather than at the next STATUS.
        PEERSYNC_EACH (self, peer)
            if (peer->state == P_LINKED)
                peer->next_status = 0;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Local requests. Each reply is its definition in cbus_msgs.h, filled
//  from our state; strings borrow from the peers and rows they name.

static void
s_refuse_oom (peersync_t *self, cbus_request_t *request)
{
    cbus_reply_refuse (self->local.router, request, CBUS_STATUS_ERROR, CBUS_CODE_INTERNAL,
                       "Out of memory");
}

//  One peer as PEER.LIST and RESOLVE show it, with the text they borrow.
typedef struct {
    cbus_peer_entry_t entry;        //  In PEER.LIST
    cbus_resolve_entry_t resolved;  //  In RESOLVE
    char work [2 * CBUS_U256_BYTES + 1];    //  Its work in hex
    char status [200];              //  RESOLVE's word on it
} s_peer_row_t;

static const void *
s_entry_item (const void *source, uint32_t index, size_t *size)
{
    (void) size;
    return &((const s_peer_row_t *) source) [index].entry;
}

static const void *
s_resolved_item (const void *source, uint32_t index, size_t *size)
{
    (void) size;
    return &((const s_peer_row_t *) source) [index].resolved;
}

static void
s_peer_row (peersync_t *self, peersync_peer_t *peer, int64_t now, s_peer_row_t *row)
{
    const char *state = peersync_state_names [peer->state];
    const char *colon = *peer->reason ? ": " : "";
    cbus_hex_encode (peer->work, CBUS_U256_BYTES, row->work);
    if (peer->asked && !peer->answered)
        snprintf (row->status, sizeof (row->status), "no answer in time (%s%s%s)", state, colon,
                  peer->reason);
    else
    if (peer->state == P_LINKED)
        snprintf (row->status, sizeof (row->status), "linked");
    else
        snprintf (row->status, sizeof (row->status), "%s%s%s", state, colon, peer->reason);
    cbus_str_t address = cbus_str (peersync_peer_name (peer));
    cbus_str_t node_id = cbus_str (peer->node_id);
    row->entry = (cbus_peer_entry_t) {
        .address = address, .state = cbus_str (state), .height = peer->height,
        .work = cbus_str (row->work), .node_id = node_id,
        .direction = cbus_str (peer->address ? "out" : "in"),
        .redundant = peersync_peer_redundant (self, peer), .score = peer->score,
        .reason = cbus_str (peer->reason), .last_seen_ms = (uint64_t) peer->last_seen_wall,
        .banned_for_ms = peer->state == P_BANNED ? peer->banned_until - now : 0
    };
    row->resolved = (cbus_resolve_entry_t) {
        .address = address, .status = cbus_str (row->status), .height = peer->height,
        .work = cbus_str (row->work), .node_id = node_id
    };
}

//  A ban kept apart from the peer list (an inbound peer's): a row of its
//  own, as the peer was last seen.
static void
s_ban_row (const cbus_ban_t *ban, int64_t now, s_peer_row_t *row)
{
    memset (row->work, '0', 2 * CBUS_U256_BYTES);
    row->work [2 * CBUS_U256_BYTES] = 0;
    snprintf (row->status, sizeof (row->status), "banned: %s", ban->reason);
    cbus_str_t address = cbus_str (ban->name);
    cbus_str_t node_id = cbus_str (ban->node_id);
    row->entry = (cbus_peer_entry_t) {
        .address = address, .state = cbus_str ("banned"), .height = ban->height,
        .work = cbus_str (row->work), .node_id = node_id, .direction = cbus_str ("in"),
        .redundant = false, .score = ban->score, .reason = cbus_str (ban->reason),
        .last_seen_ms = (uint64_t) ban->last_seen_wall, .banned_for_ms = ban->until - now
    };
    row->resolved = (cbus_resolve_entry_t) {
        .address = address, .status = cbus_str (row->status), .height = ban->height,
        .work = cbus_str (row->work), .node_id = node_id
    };
}

//  Bans listed at most: an attacker's thousands of throw-away keys must
//  not make every PEER.LIST (and GET /status, which counts it) large.
#define S_BAN_ROWS 32

//  The S_BAN_ROWS bans that end last (the latest), into latest, newest
//  first; how many. O(n) in bans, times S_BAN_ROWS at worst.
static size_t
s_latest_bans (cbus_bans_t *bans, const cbus_ban_t **latest)
{
    size_t taken = 0;
    for (const cbus_ban_t *ban = cbus_bans_first (bans); ban; ban = cbus_bans_next (bans)) {
        if (taken == S_BAN_ROWS && ban->until <= latest [taken - 1]->until)
            continue;
        size_t at = taken < S_BAN_ROWS ? taken++ : taken - 1;
        while (at > 0 && latest [at - 1]->until < ban->until) {
            latest [at] = latest [at - 1];
            at--;
        }
        latest [at] = ban;
    }
    return taken;
}

//  Every peer's row, in list order, then the latest bans of inbound
//  peers; NULL if out of memory. Caller frees.
static s_peer_row_t *
s_peer_rows (peersync_t *self, uint32_t *count)
{
    int64_t now = cbus_mono_ms ();
    cbus_bans_purge (self->slots.bans, now);
    const cbus_ban_t *latest [S_BAN_ROWS];
    size_t bans = s_latest_bans (self->slots.bans, latest);
    *count = (uint32_t) (zlistx_size (self->links.peers) + bans);
    s_peer_row_t *rows = (s_peer_row_t *) calloc (*count ? *count : 1, sizeof (s_peer_row_t));
    if (!rows)
        return NULL;
    uint32_t index = 0;
    PEERSYNC_EACH (self, peer)
        //  A banned inbound peer not released yet is shown by its ban.
        if (peer->address || peer->state != P_BANNED)
            s_peer_row (self, peer, now, &rows [index++]);
    for (size_t ban = 0; ban < bans; ban++)
        s_ban_row (latest [ban], now, &rows [index++]);
    *count = index;
    return rows;
}

static void
s_answer_resolve (peersync_t *self)
{
    peersync_resolve_t *resolve = &self->resolve;
    bool replaced = memcmp (resolve->start_tip, self->chain.tip, CBUS_HASH_BYTES) != 0;
    uint32_t count;
    s_peer_row_t *rows = s_peer_rows (self, &count);
    if (rows) {
        cbus_resolve_reply_t reply = {
            .replaced = replaced, .height = self->chain.height,
            .peers = { .count = count, .item = s_resolved_item, .source = rows }
        };
        cbus_reply_send_msg (self->local.router, resolve->request, &cbus_resolve_reply_def,
                             &reply, &self->message);
        free (rows);
    }
    else
        s_refuse_oom (self, resolve->request);
    zsys_info ("resolve answered replaced=%s height=%" PRIu64, replaced ? "yes" : "no",
               self->chain.height);
    cbus_request_destroy (&resolve->request);
    PEERSYNC_EACH (self, peer)
        peer->asked = peer->answered = false;
}

//  Whether a normalised address is this node's own: its peer endpoint
//  (tcp://, as advertised or bound) or its gateway (http://), at our port
//  on our bind address; a loopback name (localhost, 127.0.0.1, [::1]) is
//  ours too when we bind loopback or every address. Another name of this
//  host is found once it answers, by our node id in its HELLO.
static bool
s_is_self (peersync_t *self, const char *address)
{
    bool tcp = strncmp (address, "tcp://", 6) == 0;
    const char *rest = address + (tcp ? 6 : 7);
    const char *colon = strrchr (rest, ':');
    const char *ours = strrchr (self->links.endpoint, ':');
    if (!colon || !ours)
        return false;
    long port = atol (colon + 1);
    long our_port = tcp ? atol (ours + 1) : cbus_config_int (self->config, "gateway/http_port");
    if (port != our_port)
        return false;
    char host [256];
    snprintf (host, sizeof (host), "%.*s", (int) (colon - rest), rest);
    const char *bind = cbus_config_str (self->config, tcp ? "peersync/p2p_bind"
                                                          : "gateway/http_bind");
    const char *advertise = cbus_config_str (self->config, "peersync/p2p_advertise");
    if (streq (host, bind) || (tcp && *advertise && streq (host, advertise)))
        return true;
    bool every = streq (bind, "0.0.0.0") || streq (bind, "::") || streq (bind, "*");
    bool loopback = streq (bind, "127.0.0.1") || streq (bind, "localhost") || streq (bind, "::1");
    bool named = streq (host, "127.0.0.1") || streq (host, "localhost") || streq (host, "[::1]");
    return named && (every || loopback);
}

//  PEER.ADD's addresses, all normalised, or NULL after a refusal.
static zlist_t *
s_addresses (peersync_t *self, cbus_request_t *request)
{
    cbus_peer_add_t add;
    char reason [CBUS_REASON_MAX];
    if (cbus_peer_add_decode (cbus_request_map (request), &add, reason)) {
        //  The decoder's reason names the field or the item at fault.
        cbus_reply_refuse (self->local.router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "%s", reason);
        return NULL;
    }
    if (add.addresses.count == 0 || add.addresses.count > PEERSYNC_MAX_ADD) {
        cbus_reply_refuse (self->local.router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "Error: Please supply a valid list of nodes (1 to %d)", PEERSYNC_MAX_ADD);
        return NULL;
    }
    zlist_t *addresses = zlist_new ();
    if (!addresses) {
        s_refuse_oom (self, request);
        return NULL;
    }
    zlist_autofree (addresses);
    for (uint32_t index = 0; index < add.addresses.count; index++) {
        cbus_str_t text = cbus_list_str (&add.addresses, index);
        char address [CBUS_PEER_ADDRESS_MAX];
        //  The normaliser reads a sized string: a NUL inside is refused
        //  as a bad character like any other.
        if (cbus_peers_normalize (text.data, text.size, address, reason)) {
            cbus_reply_refuse (self->local.router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                               "%s", reason);
            zlist_destroy (&addresses);
            return NULL;
        }
        if (s_is_self (self, address)) {
            cbus_reply_refuse (self->local.router, request, CBUS_STATUS_INVALID, CBUS_CODE_SELF,
                               "Cannot register %s: that is this node's own address", address);
            zlist_destroy (&addresses);
            return NULL;
        }
        if (zlist_append (addresses, address)) {
            s_refuse_oom (self, request);
            zlist_destroy (&addresses);
            return NULL;
        }
    }
    return addresses;
}

//  The whole registered list as a list field (strings borrowed from it);
//  the array is the caller's to free, NULL if out of memory.
static cbus_str_t *
s_registered (peersync_t *self, cbus_list_t *list)
{
    size_t count = cbus_peers_size (self->links.registered);
    cbus_str_t *peers = (cbus_str_t *) calloc (count ? count : 1, sizeof (cbus_str_t));
    if (!peers)
        return NULL;
    uint32_t index = 0;
    for (const char *address = cbus_peers_first (self->links.registered); address && index < count;
         address = cbus_peers_next (self->links.registered))
        peers [index++] = cbus_str (address);
    *list = (cbus_list_t) { .count = index, .items = peers };
    return peers;
}

//  PEER.ADD's answer: the whole registered list.
static void
s_answer_add (peersync_t *self, cbus_request_t *request)
{
    cbus_peer_add_reply_t reply = {0};
    cbus_str_t *peers = s_registered (self, &reply.peers);
    if (!peers) {
        s_refuse_oom (self, request);
        return;
    }
    cbus_reply_send_msg (self->local.router, request, &cbus_peer_add_reply_def, &reply,
                         &self->message);
    free (peers);
}

static void
s_handle_add (peersync_t *self, cbus_request_t *request)
{
    //  All or nothing: normalise every address before adding any.
    zlist_t *addresses = s_addresses (self, request);
    if (!addresses)
        return;
    int added = cbus_peers_add (self->links.registered, addresses);
    if (added < 0) {
        cbus_reply_refuse (self->local.router, request, CBUS_STATUS_ERROR, CBUS_CODE_STORAGE,
                           "Could not save the peer list");
        zlist_destroy (&addresses);
        return;
    }
    //  Start linking to the new ones at once.
    for (const char *address = (const char *) zlist_first (addresses); address;
         address = (const char *) zlist_next (addresses)) {
        bool known = false;
        PEERSYNC_EACH (self, peer)
            known = known || (peer->address && streq (peer->address, address));
        peersync_peer_t *peer = known ? NULL : peersync_peer_add (self, address);
        if (peer && self->chain.known)
            peersync_ask_info (self, peer);
    }
    zlist_destroy (&addresses);
    if (added)
        zsys_info ("peers added count=%d total=%zu", added, cbus_peers_size (self->links.registered));
    s_answer_add (self, request);
}

//  PEER.REMOVE: its line in the list (saved first), then its link.
static void
s_handle_remove (peersync_t *self, cbus_request_t *request)
{
    cbus_peer_remove_t msg;
    char reason [CBUS_REASON_MAX], address [CBUS_PEER_ADDRESS_MAX];
    if (cbus_peer_remove_decode (cbus_request_map (request), &msg, reason)
    ||  cbus_peers_normalize (msg.address.data, msg.address.size, address, reason)) {
        cbus_reply_refuse (self->local.router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "%s", reason);
        return;
    }
    int removed = cbus_peers_remove (self->links.registered, address);
    if (removed <= 0) {
        if (removed == 0)
            cbus_reply_refuse (self->local.router, request, CBUS_STATUS_NOTFOUND,
                               CBUS_CODE_NOT_FOUND, "No registered node %s", address);
        else
            cbus_reply_refuse (self->local.router, request, CBUS_STATUS_ERROR, CBUS_CODE_STORAGE,
                               "Could not save the peer list");
        return;
    }
    peersync_peer_t *found = NULL;
    PEERSYNC_EACH (self, peer)
        if (peer->address && streq (peer->address, address))
            found = peer;
    if (found && found->state == P_LINKED)
        peersync_set_state (self, found, P_CONNECTING, "removed");
    peersync_peer_remove (self, &found);    //  Its link closes with it
    zsys_info ("peer removed peer=%s total=%zu", address, cbus_peers_size (self->links.registered));
    cbus_peer_remove_reply_t reply = { .removed = cbus_str (address) };
    cbus_str_t *peers = s_registered (self, &reply.peers);
    if (!peers) {
        s_refuse_oom (self, request);
        return;
    }
    cbus_reply_send_msg (self->local.router, request, &cbus_peer_remove_reply_def, &reply,
                         &self->message);
    free (peers);
}

static void
s_handle_list (peersync_t *self, cbus_request_t *request)
{
    uint32_t count;
    s_peer_row_t *rows = s_peer_rows (self, &count);
    if (!rows) {
        s_refuse_oom (self, request);
        return;
    }
    peersync_sync_t *sync = &self->sync;
    cbus_peer_list_reply_t reply = {
        .peers = { .count = count, .item = s_entry_item, .source = rows },
        .sync = { .syncing = sync->peer != NULL }
    };
    if (sync->peer) {
        //  The sync details only while syncing.
        uint64_t target = sync->peer->height > sync->target ? sync->peer->height : sync->target;
        cbus_sync_state_t *state = &reply.sync;
        state->peer = cbus_str (peersync_peer_name (sync->peer));
        state->target_height = target;
        state->blocks_left = target > self->chain.height ? target - self->chain.height : 0;
        state->blocks_done = sync->blocks;
        state->has_peer = state->has_target_height = true;
        state->has_blocks_left = state->has_blocks_done = true;
    }
    cbus_reply_send_msg (self->local.router, request, &cbus_peer_list_reply_def, &reply,
                         &self->message);
    free (rows);
}

//  RESOLVE is kept (taken from the caller) until answered; NULL if it is
//  refused at once.
static void
s_handle_resolve (peersync_t *self, cbus_request_t **request_p)
{
    peersync_resolve_t *resolve = &self->resolve;
    if (!self->chain.known) {
        //  Its deadline runs from the tick, which waits for our tip.
        cbus_reply_refuse (self->local.router, *request_p, CBUS_STATUS_UNAVAILABLE,
                           CBUS_CODE_UNAVAILABLE, "chainbus-chainstore has not told its tip yet");
        return;
    }
    if (resolve->request) {
        cbus_reply_refuse (self->local.router, *request_p, CBUS_STATUS_FULL, CBUS_CODE_FULL,
                           "A resolve is already running");
        return;
    }
    resolve->request = *request_p;
    *request_p = NULL;
    memcpy (resolve->start_tip, self->chain.tip, CBUS_HASH_BYTES);
    int64_t now = cbus_mono_ms ();
    resolve->ask_until = now + PEERSYNC_RESOLVE_ASK_MS;
    resolve->until = now + resolve->timeout_ms;
    resolve->syncing = false;
    size_t asked = 0;
    PEERSYNC_EACH (self, peer) {
        //  Linked peers are asked now; peers still linking are waited for
        //  (their HELLO carries their tip), within the asking time.
        peer->asked = peer->state == P_LINKED || peer->state == P_CONNECTING
                   || peer->state == P_FETCHING;
        peer->answered = false;
        if (peer->state == P_LINKED)
            peersync_send_status (self, peer, true);
        else
        if (peer->state == P_FETCHING)
            peer->next_try = 0;
        asked += peer->asked;
    }
    if (asked == 0)
        s_answer_resolve (self);    //  Nobody to ask: ours stands
}

static void
s_handle_info (peersync_t *self, cbus_request_t *request)
{
    cbus_node_info_reply_t reply = {
        .node_id = cbus_str (cbus_identity_node_id (self->links.identity)),
        .public_key = cbus_str (cbus_identity_public (self->links.identity)),
        .p2p_endpoint = cbus_str (self->links.endpoint),
        .network = cbus_str (self->chain.network),
        .genesis = self->chain.genesis,
        .block_interval = self->chain.block_interval,
        .has_block_interval = self->chain.has_block_interval
    };
    cbus_reply_send_msg (self->local.router, request, &cbus_node_info_reply_def, &reply,
                         &self->message);
}

//  NODE.INFO needs our network and genesis: until the chainstore told us,
//  the request waits for its TIP (bounded by the TIP's deadline).
static void
s_handle_node_info (peersync_t *self, cbus_request_t **request_p)
{
    if (self->chain.known)
        s_handle_info (self, *request_p);
    else
    if (zlistx_size (self->chain.waiting) >= S_MAX_WAITING)
        cbus_reply_refuse (self->local.router, *request_p, CBUS_STATUS_UNAVAILABLE,
                           CBUS_CODE_UNAVAILABLE, "the chainstore's tip is not known yet");
    else
    if (zlistx_add_end (self->chain.waiting, *request_p)) {
        *request_p = NULL;
        s_ask_tip (self);
    }
}

static int
s_on_request (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    peersync_t *self = (peersync_t *) arg;
    cbus_request_t *request = cbus_request_recv (self->local.router);
    if (!request)
        return 0;
    const char *command = request->command;
    if (!request->decoded)
        cbus_reply_refuse (self->local.router, request, CBUS_STATUS_INVALID, CBUS_CODE_MALFORMED,
                           "The body is not a msgpack map");
    else
    if (streq (command, CBUS_CMD_PEER_ADD))
        s_handle_add (self, request);
    else
    if (streq (command, CBUS_CMD_PEER_LIST))
        s_handle_list (self, request);
    else
    if (streq (command, CBUS_CMD_PEER_REMOVE))
        s_handle_remove (self, request);
    else
    if (streq (command, CBUS_CMD_NODE_INFO))
        s_handle_node_info (self, &request);
    else
    if (streq (command, CBUS_CMD_RESOLVE))
        s_handle_resolve (self, &request);
    else
    if (streq (command, CBUS_CMD_PING))
        cbus_service_pong (self->local.router, request, "peersync");
    else
        cbus_reply_refuse (self->local.router, request, CBUS_STATUS_INVALID,
                           CBUS_CODE_UNKNOWN_COMMAND, "Unknown command %s", command);
    cbus_request_destroy (&request);
    return 0;
}

//  --------------------------------------------------------------------------
//  Time

//  Resolve: ask, then sync from the best, then answer; all bounded.
static void
s_resolve_tick (peersync_t *self, int64_t now)
{
    peersync_resolve_t *resolve = &self->resolve;
    if (!resolve->request)
        return;
    bool all_answered = true;
    PEERSYNC_EACH (self, peer)
        if (peer->asked && !peer->answered)
            all_answered = false;
    if (!resolve->syncing && (all_answered || now >= resolve->ask_until)) {
        resolve->syncing = true;
        peersync_sync_if_behind (self);
    }
    if (resolve->syncing && (!self->sync.peer || now >= resolve->until))
        s_answer_resolve (self);
}

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    peersync_t *self = (peersync_t *) arg;
    int64_t now = cbus_mono_ms ();
    if (now >= self->next_beat) {
        peersync_links_metrics (self);
        cbus_pub_heartbeat (self->local.pub);
        self->next_beat = now + CBUS_HEARTBEAT_MS;
        if (!self->chain.known)
            s_ask_tip (self);
    }
    peersync_relay_tick (self, now);
    if (!self->chain.known)
        return 0;                   //  Nothing to say to peers yet
    peersync_links_tick (self, now);
    peersync_sync_tick (self, now);
    peersync_budget_tick (self, now);
    peersync_pending_tick (self, now);
    s_resolve_tick (self, now);
    return 0;
}

//  --------------------------------------------------------------------------
//  Start and stop

static void
s_free_item (void **item)
{
    free (*item);
    *item = NULL;
}

//  The peer protocol: a CurveZMQ ROUTER, and the plaintext directory.
static int
s_bind_p2p (peersync_t *self)
{
    cbus_config_t *config = self->config;
    const char *bind = cbus_config_str (config, "peersync/p2p_bind");
    int port = (int) cbus_config_int (config, "peersync/p2p_port");
    if (port == 0)
        port = (int) cbus_config_int (config, "gateway/http_port") + 1000;
    if (port + PEERSYNC_DIRECTORY_OFFSET > 65535) {
        cbus_service_fail (self->pipe, "peer port %d leaves no room for the directory port (+%d)",
                           port, PEERSYNC_DIRECTORY_OFFSET);
        return -1;
    }
    peersync_links_t *links = &self->links;
    links->p2p = zsock_new (ZMQ_ROUTER);
    links->directory = zsock_new (ZMQ_ROUTER);
    if (!links->p2p || !links->directory) {
        cbus_service_fault (true, "%s", zmq_strerror (zmq_errno ()));
        cbus_service_fail (self->pipe, "cannot make the peer sockets");
        return -1;
    }
    cbus_identity_apply_server (links->identity, links->p2p);
    //  The ZAP handler and the monitor before any handshake.
    if (peersync_slots_init (self)) {
        cbus_service_fault (true, "out of memory");
        cbus_service_fail (self->pipe, "out of memory setting up the inbound slots");
        return -1;
    }
    zsock_set_maxmsgsize (links->p2p, CBUS_MSG_MAX_BYTES);
    peersync_budget_socket (self, links->p2p);     //  Queue per peer, full links

    //  A connection that does not finish its CurveZMQ handshake soon is
    //  dropped (ZeroMQ's default is 30 s: a descriptor each meanwhile).
    zsock_set_handshake_ivl (links->p2p, 5000);
    zsock_set_heartbeat_ivl (links->p2p, 1000);
    zsock_set_heartbeat_timeout (links->p2p, 5000);
    zsock_set_heartbeat_ttl (links->p2p, 5000);
    zsock_set_maxmsgsize (links->directory, 1024);
    if (zsock_bind (links->p2p, "tcp://%s:%d", bind, port) < 0
    ||  zsock_bind (links->directory, "tcp://%s:%d", bind, port + PEERSYNC_DIRECTORY_OFFSET) < 0) {
        //  EADDRINUSE is permanent; EADDRNOTAVAIL (the address is not up
        //  yet, at boot) is transient: see cbus_service_transient_errno.
        int error = zmq_errno ();
        cbus_service_fault (cbus_service_transient_errno (error), "%s", zmq_strerror (error));
        cbus_service_fail (self->pipe, "cannot bind the peer ports %s:%d and %d", bind, port,
                           port + PEERSYNC_DIRECTORY_OFFSET);
        return -1;
    }
    const char *advertise = cbus_config_str (config, "peersync/p2p_advertise");
    snprintf (links->endpoint, sizeof (links->endpoint), "tcp://%s:%d",
              *advertise ? advertise : bind, port);
    return 0;
}

//  The services of this node: bus, chainstore, mempool.
static int
s_connect_local (peersync_t *self)
{
    peersync_local_t *local = &self->local;
    char *bus_in = cbus_config_endpoint (self->config, "bus-in");
    char *bus_out = cbus_config_endpoint (self->config, "bus-out");
    char *store = cbus_config_endpoint (self->config, "chainstore");
    char *pool = cbus_config_endpoint (self->config, "mempool");
    //  Disconnected blocks are followed by the connected ones that make
    //  our tip: those are all we need (mempool.tx.added is subscribed
    //  to while peers are linked).
    local->sub = cbus_endpoint_new_sub (bus_out, CBUS_TOPIC_BLOCK_CONNECTED);
    local->chainstore = cbus_caller_new (self->loop, store, "chainstore");
    local->pub = cbus_pub_new (bus_in, "peersync");
    self->metrics = cbus_metrics_new ();
    //  Transactions from peers go to the mempool as calls (peer budgets).
    int rc = local->sub && local->chainstore && local->pub && self->metrics
          && peersync_budget_init (self, pool) == 0 ? 0 : -1;
    if (rc == 0) {
        zsock_set_rcvhwm (local->sub, 200000);
        cbus_pub_set_metrics (local->pub, self->metrics);
    }
    if (rc)
        cbus_service_fail (self->pipe, "cannot reach the bus, chainstore or mempool endpoints");
    zstr_free (&bus_in);
    zstr_free (&bus_out);
    zstr_free (&store);
    zstr_free (&pool);
    return rc;
}

static int
s_start (peersync_t *self)
{
    char reason [CBUS_REASON_MAX];
    char *path = cbus_config_path (self->config, "peers");
    char *key_path = cbus_config_path (self->config, "node.key");
    char *endpoint = cbus_config_endpoint (self->config, "peersync");
    self->links.peers = zlistx_new ();
    self->links.nodes = zhashx_new ();
    self->relay.quiet = cbus_hash_table_new ();
    self->chain.waiting = zlistx_new ();
    self->loop = zloop_new ();
    self->resolve.timeout_ms = cbus_config_int (self->config, "gateway/resolve_timeout_ms") - 1000;
    self->links.identity = cbus_identity_new (key_path, reason);
    self->links.registered = path ? cbus_peers_new (path) : NULL;
    int rc = -1;
    if (!self->links.peers || !self->links.nodes || !self->relay.quiet || !self->chain.waiting
    ||  !self->loop || !self->links.registered) {
        cbus_service_fault (true, "out of memory");
        cbus_service_fail (self->pipe, "out of memory starting up");
    }
    else
    if (!self->links.identity)
        cbus_service_fail (self->pipe, "%s", reason);
    else
    if (s_bind_p2p (self))
        ;                           //  Failed, said so
    else
    //  After the peer port: its ZAP handler answers for a tcp one too.
    if (!(self->local.router = cbus_service_router (endpoint, 1024 * 1024, reason)))
        cbus_service_fail (self->pipe, "%s", reason);
    else
    if (s_connect_local (self) == 0) {
        self->links.fetch = zactor_new (cbus_fetch_actor, NULL);
        if (!self->links.fetch || peersync_sync_init (self)) {
            cbus_service_fault (true, "out of memory");
            cbus_service_fail (self->pipe, "cannot start the fetcher or the sync");
        }
        else
            rc = 0;
    }
    if (self->links.nodes)
        zhashx_set_destructor (self->links.nodes, s_free_item);
    if (self->relay.quiet)
        zhashx_set_destructor (self->relay.quiet, s_free_item);
    if (self->chain.waiting)
        zlistx_set_destructor (self->chain.waiting, (zlistx_destructor_fn *) cbus_request_destroy);
    zstr_free (&path);
    zstr_free (&key_path);
    zstr_free (&endpoint);
    return rc;
}

static void
s_stop (peersync_t *self)
{
    if (self->links.peers) {
        peersync_peer_t *peer;
        while ((peer = (peersync_peer_t *) zlistx_first (self->links.peers)))
            peersync_peer_remove (self, &peer);
        zlistx_destroy (&self->links.peers);
    }
    cbus_request_destroy (&self->resolve.request);
    //  Calls in flight end with the caller, their handlers unrun: the
    //  waiting requests are answered by nobody (we are stopping).
    peersync_sync_destroy (self);
    cbus_caller_destroy (&self->local.chainstore);
    peersync_budget_destroy (self);
    zlistx_destroy (&self->chain.waiting);
    zactor_destroy (&self->links.fetch);
    zloop_destroy (&self->loop);
    zsock_destroy (&self->local.router);
    peersync_slots_destroy (self);
    zsock_destroy (&self->links.p2p);
    zsock_destroy (&self->links.directory);
    zsock_destroy (&self->local.sub);
    cbus_pub_destroy (&self->local.pub);
    cbus_metrics_destroy (&self->metrics);
    cbus_identity_destroy (&self->links.identity);
    cbus_peers_destroy (&self->links.registered);
    zhashx_destroy (&self->relay.quiet);
    zhashx_destroy (&self->links.nodes);
    cbus_buf_free (&self->message);
    cbus_buf_free (&self->relay.txs);
}

void
cbus_peersync_actor (zsock_t *pipe, void *args)
{
    peersync_t self = { .pipe = pipe, .config = (cbus_config_t *) args };
    zsock_signal (pipe, 0);
    if (s_start (&self) == 0) {
        //  Stop on $TERM from main only, not on a signal: see cbus_service.h.
        zloop_set_nonstop (self.loop, true);
        zloop_reader (self.loop, pipe, cbus_service_on_pipe, &self);
        zloop_reader (self.loop, self.local.router, s_on_request, &self);
        zloop_reader (self.loop, self.links.directory, peersync_on_directory, &self);
        zloop_reader (self.loop, self.local.sub, s_on_event, &self);
        zloop_reader (self.loop, zactor_sock (self.links.fetch), peersync_on_fetched, &self);
        zloop_timer (self.loop, PEERSYNC_TICK_MS, 0, s_on_tick, &self);
        //  The peer socket is read once our chain is known (s_on_tip).
        for (const char *address = cbus_peers_first (self.links.registered); address;
             address = cbus_peers_next (self.links.registered))
            peersync_peer_add (&self, address);
        s_ask_tip (&self);
        zsys_info ("peersync ready node_id=%s p2p=%s peers=%zu",
                   cbus_identity_node_id (self.links.identity), self.links.endpoint,
                   cbus_peers_size (self.links.registered));
        cbus_service_ready (self.loop);
        zloop_start (self.loop);
    }
    s_stop (&self);
}

//  --------------------------------------------------------------------------
//  Self test of the parts that stand alone; the service itself is tested
//  by tests/functional/test_p2p.py and test_stall.py, node against node.

void
cbus_peersync_test (bool verbose)
{
    peersync_wire_test (verbose);
    peersync_budget_test (verbose);
}
