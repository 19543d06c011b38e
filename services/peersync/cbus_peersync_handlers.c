/*  =========================================================================
    cbus_peersync_handlers - what peers send us

    Every message is checked before use and costs its sender when it is
    malformed. What needs our chainstore (a BLOCK to store, a GETHEADERS or
    GETBLOCKS to answer) is sent to it through the caller and finished in
    the call's handler, which finds the peer again by serial: a peer that
    went away meanwhile is simply not answered. Whether a refusal is the
    peer's fault is decided by its code, never by its wording.
    =========================================================================
*/
#include "cbus_peersync_private.h"

bool
peersync_refusal_blames_peer (cbus_code_t code)
{
    switch (code) {
        case CBUS_CODE_MALFORMED:
        case CBUS_CODE_BAD_TX:
        case CBUS_CODE_BAD_SIGNATURE:
        case CBUS_CODE_DUPLICATE:       //  A transaction twice in the block
        case CBUS_CODE_CONFIRMED:       //  One the chain already holds
        case CBUS_CODE_BAD_POW:
        case CBUS_CODE_BAD_MERKLE_ROOT:
        case CBUS_CODE_BAD_HEIGHT:
        case CBUS_CODE_BAD_BITS:
        case CBUS_CODE_BAD_TIME:
        case CBUS_CODE_BAD_VERSION:
        case CBUS_CODE_TOO_LARGE:
        case CBUS_CODE_WRONG_NETWORK:
            return true;
        default:
            return false;
    }
}

bool
peersync_refusal_is_local (cbus_code_t code)
{
    return code == CBUS_CODE_UNAVAILABLE || code == CBUS_CODE_STORAGE
        || code == CBUS_CODE_INTERNAL || code == CBUS_CODE_FULL
        || code == CBUS_CODE_UNKNOWN_COMMAND;
}

//  --------------------------------------------------------------------------
//  HELLO, REJECT, STATUS

static void
s_take_tip (peersync_peer_t *peer, const peersync_tip_t *tip)
{
    peer->height = tip->height;
    memcpy (peer->work, tip->work, CBUS_U256_BYTES);
    memcpy (peer->tip, tip->tip, CBUS_HASH_BYTES);
    peer->answered = true;          //  A resolve now knows where it is
}

cbus_code_t
peersync_hello_check (peersync_t *self, const peersync_hello_t *hello)
{
    if (hello->version != CBUS_P2P_VERSION)
        return CBUS_CODE_PROTOCOL;
    if (hello->network_size != strlen (self->chain.network)
    ||  memcmp (hello->network, self->chain.network, hello->network_size)
    ||  memcmp (hello->genesis, self->chain.genesis, CBUS_HASH_BYTES))
        return CBUS_CODE_WRONG_NETWORK;
    if (memcmp (hello->node_id, cbus_identity_node_id (self->links.identity), 16) == 0)
        return CBUS_CODE_INVALID;
    return CBUS_CODE_OK;
}

static void
s_on_hello (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map, bool inbound)
{
    peersync_hello_t hello;
    if (peersync_hello_parse (&hello, map)) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "malformed HELLO");
        return;
    }
    cbus_code_t refusal = peersync_hello_check (self, &hello);
    if (refusal == CBUS_CODE_PROTOCOL) {
        char reason [80];
        snprintf (reason, sizeof (reason), "this node speaks peer protocol version %d only",
                  CBUS_P2P_VERSION);
        peersync_send_reject (self, peer, CBUS_CODE_PROTOCOL, reason);
        peersync_set_state (self, peer, P_REFUSED, "it speaks another protocol version");
        return;
    }
    if (refusal == CBUS_CODE_WRONG_NETWORK) {
        char reason [160];
        snprintf (reason, sizeof (reason), "another network or genesis: this node runs '%s'",
                  self->chain.network);
        peersync_send_reject (self, peer, CBUS_CODE_WRONG_NETWORK, reason);
        peersync_set_state (self, peer, P_REFUSED, "it runs another network or genesis");
        return;
    }
    if (refusal == CBUS_CODE_INVALID) {
        peersync_send_reject (self, peer, CBUS_CODE_INVALID, "that is this node itself");
        peersync_set_state (self, peer, P_REFUSED, "that address is this node itself");
        return;
    }
    snprintf (peer->node_id, sizeof (peer->node_id), "%.16s", hello.node_id);
    //  Another node may now answer at that address: count it instead.
    peersync_relabel (self, peer);
    if (inbound)
        snprintf (peer->endpoint, sizeof (peer->endpoint), "%.*s",
                  (int) hello.endpoint_size, hello.endpoint);
    s_take_tip (peer, &hello.tip);
    if (peer->state != P_LINKED) {
        peersync_set_state (self, peer, P_LINKED, NULL);
        zsys_info ("peer linked peer=%s node_id=%s height=%" PRIu64 " direction=%s",
                   peersync_peer_name (peer), peer->node_id, peer->height, inbound ? "in" : "out");
        peersync_publish_peer (self, peer, true);
        if (hello.reply)
            peersync_send_hello (self, peer, false);   //  Answer with ours first
        peersync_pending_start (self, peer);        //  Its pending transactions
    }
    else
    if (hello.reply)
        peersync_send_hello (self, peer, false);   //  Answer with ours
    peersync_sync_if_behind (self);
}

//  A peer that refused us: a full one is asked again sooner.
static void
s_on_reject (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map)
{
    peersync_reject_t reject;
    peersync_reject_parse (&reject, map);
    //  The peer's words, made printable: they reach logs and GET /nodes.
    char words [121], reason [160];
    cbus_printable (words, sizeof (words), reject.reason, reject.reason_size);
    snprintf (reason, sizeof (reason), "it refused us (%s): %s", cbus_code_name (reject.code),
              words);
    peersync_set_state (self, peer, P_REFUSED, reason);
    if (reject.code == CBUS_CODE_FULL)
        peer->next_try = cbus_mono_ms () + PEERSYNC_FULL_RETRY_MS;
}

static void
s_on_status (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map)
{
    peersync_status_t status;
    if (peersync_status_parse (&status, map)) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "malformed STATUS");
        return;
    }
    s_take_tip (peer, &status.tip);
    if (status.reply)
        peersync_send_status (self, peer, false);
    peersync_sync_if_behind (self);
}

//  --------------------------------------------------------------------------
//  TX and BLOCK

bool
peersync_tx_refusal_blames_peer (cbus_code_t code, bool is_signed)
{
    return code == CBUS_CODE_BAD_TX || (code == CBUS_CODE_BAD_SIGNATURE && is_signed);
}

//  Our mempool's verdict on a transaction a peer relayed. One that breaks
//  the rules whatever the chain (it does not decode, its fields are
//  wrong, or its signature does not verify) costs the relayer; one our
//  mempool merely has, or that is confirmed, or that does not fit, or
//  that is unsigned where this node wants signatures (policy) does not.
static void
s_on_tx_verdict (const cbus_call_t *call, cbus_reply_t *reply)
{
    peersync_t *self = (peersync_t *) call->owner;
    uint64_t arg = (uint64_t) (uintptr_t) call->arg;
    peersync_peer_t *peer = peersync_peer_by_serial (self, arg >> 1);
    if (!peer)
        return;
    peersync_peer_budget_t *budget = &peer->budget;
    if (budget->tx_inflight > 0)
        budget->tx_inflight--;
    if (cbus_reply_ok (reply)) {
        //  Only what was new to us earns a wider window: duplicates are
        //  free to send, and would open it for forgeries.
        cbus_tx_submit_reply_t accepted;
        char reason [CBUS_REASON_MAX];
        if (cbus_tx_submit_reply_decode (cbus_reply_map (reply), &accepted, reason) == 0
        &&  !accepted.duplicate && !accepted.confirmed) {
            peer->last_tx = cbus_mono_ms ();        //  An eviction merit
            if (budget->tx_window < self->budget.tx_inflight)
                budget->tx_window++;
        }
        peersync_pending_pump (self, peer);         //  Room for more of its pending
        return;
    }
    if (peer->state == P_BANNED)
        return;
    if (peersync_tx_refusal_blames_peer (reply->code, arg & 1))
        peersync_punish (self, peer, PEERSYNC_BAD_TX_COST,
                         reply->code == CBUS_CODE_BAD_TX
                         ? "it relayed a transaction that breaks the transaction rules"
                         : "it relayed a transaction whose signature does not verify");
    else
        CBUS_DEBUG ("a peer's transaction was refused code=%s reason=\"%s\"",
                    cbus_code_name (reply->code), reply->reason);
}

//  Its budget of transactions a second, topped up: at most a second's
//  worth (and at least one full TX message) may be spent at once.
static void
s_tx_refill (peersync_t *self, peersync_peer_budget_t *budget, int64_t now)
{
    double rate = self->budget.tx_rate;
    double burst = rate > PEERSYNC_TX_MAX ? rate : PEERSYNC_TX_MAX;
    budget->tx_tokens += (double) (now - budget->tx_refilled) * rate / 1000.0;
    if (budget->tx_tokens > burst || budget->tx_refilled == 0)
        budget->tx_tokens = burst;
    budget->tx_refilled = now;
    if (budget->tx_window == 0)
        budget->tx_window = PEERSYNC_TX_WINDOW_START < self->budget.tx_inflight
                          ? PEERSYNC_TX_WINDOW_START : self->budget.tx_inflight;
}

size_t
peersync_tx_room (peersync_t *self, peersync_peer_t *peer)
{
    peersync_peer_budget_t *budget = &peer->budget;
    s_tx_refill (self, budget, cbus_mono_ms ());
    size_t window = budget->tx_inflight < budget->tx_window
                  ? budget->tx_window - budget->tx_inflight : 0;
    size_t tokens = budget->tx_tokens >= 1 ? (size_t) budget->tx_tokens : 0;
    return window < tokens ? window : tokens;
}

//  Transactions from a peer go to our mempool, which checks them; each
//  verdict comes back to this peer (s_on_tx_verdict). Within its budget
//  only: those beyond its rate, or beyond its window of calls in flight,
//  are dropped (a block brings them back). One that does not even decode
//  costs it here, without the mempool's time.
size_t
peersync_txs_take (peersync_t *self, peersync_peer_t *peer, const msgpack_object *txs)
{
    peersync_peer_budget_t *budget = &peer->budget;
    s_tx_refill (self, budget, cbus_mono_ms ());
    cbus_buf_t body = {0};
    uint64_t dropped = 0;
    size_t sent = 0;
    char reason [CBUS_REASON_MAX];
    for (uint32_t index = 0; index < txs->via.array.size && peer->state == P_LINKED; index++) {
        const msgpack_object *item = &txs->via.array.ptr [index];
        if (item->type != MSGPACK_OBJECT_BIN) {
            peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "TX holding something else");
            break;
        }
        if (budget->tx_tokens < 1 || budget->tx_inflight >= budget->tx_window) {
            dropped++;
            continue;
        }
        cbus_tx_t *tx = cbus_tx_decode (item->via.bin.ptr, item->via.bin.size, reason);
        if (!tx) {
            peersync_punish (self, peer, PEERSYNC_BAD_TX_COST,
                             "it relayed a transaction that does not decode");
            continue;
        }
        uint64_t is_signed = cbus_tx_is_signed (tx) ? 1 : 0;
        cbus_tx_destroy (&tx);
        budget->tx_tokens -= 1;
        budget->tx_inflight++;
        sent++;
        cbus_tx_submit_t submit = {
            .tx = { (const uint8_t *) item->via.bin.ptr, item->via.bin.size }
        };
        cbus_tx_submit_encode (&submit, &body);
        cbus_caller_send (self->budget.mempool, CBUS_CMD_TX_SUBMIT, body.data, body.size,
                          PEERSYNC_TX_TIMEOUT_MS, s_on_tx_verdict, self,
                          (void *) (uintptr_t) (peer->serial << 1 | is_signed));
    }
    cbus_buf_free (&body);
    if (dropped) {
        budget->tx_dropped += dropped;
        CBUS_DEBUG ("peer=%s over its transaction budget: %" PRIu64 " dropped (%" PRIu64
                    " in all)", peersync_peer_name (peer), dropped, budget->tx_dropped);
    }
    return sent;
}

static void
s_on_tx (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map)
{
    const msgpack_object *txs = peersync_tx_parse (map);
    if (!txs) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "malformed TX");
        return;
    }
    peersync_txs_take (self, peer, txs);
}

//  Our chainstore's answer to a block a peer gossiped.
static void
s_on_block_stored (const cbus_call_t *call, cbus_reply_t *reply)
{
    peersync_t *self = (peersync_t *) call->owner;
    self->relay.submitting--;
    peersync_peer_t *peer = peersync_peer_by_serial (self, (uint64_t) (uintptr_t) call->arg);
    if (peer && cbus_reply_ok (reply))
        peer->last_block = cbus_mono_ms ();     //  A merit (cbus_evict)
    if (cbus_reply_ok (reply) || !peer)
        return;                     //  Stored: its event relays it
    if (reply->code == CBUS_CODE_ORPHAN) {
        //  We miss its parent: we are behind this peer.
        if (!self->sync.peer && peer->state == P_LINKED)
            peersync_sync_start (self, peer);
    }
    else
    if (peersync_refusal_blames_peer (reply->code))
        peersync_punish (self, peer, PEERSYNC_INVALID_BLOCK_COST, reply->reason);
    else
        CBUS_DEBUG ("a gossiped block was not stored code=%s reason=\"%s\"",
                    cbus_code_name (reply->code), reply->reason);
}

static void
s_on_block (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map)
{
    const uint8_t *data;
    size_t size;
    if (peersync_block_parse (map, &data, &size)) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "malformed BLOCK");
        return;
    }
    if (self->relay.submitting >= PEERSYNC_GOSSIP_WINDOW) {
        //  Our chainstore is slow: what is dropped comes again by sync.
        CBUS_DEBUG ("a gossiped block dropped: %d at the chainstore", PEERSYNC_GOSSIP_WINDOW);
        return;
    }
    cbus_block_submit_t submit = { .block = { data, size } };
    cbus_block_submit_encode (&submit, &self->message);
    self->relay.submitting++;
    cbus_caller_send (self->local.chainstore, CBUS_CMD_BLOCK_SUBMIT, self->message.data,
                      self->message.size, PEERSYNC_SUBMIT_TIMEOUT_MS, s_on_block_stored, self,
                      (void *) (uintptr_t) peer->serial);
}

//  --------------------------------------------------------------------------
//  GETHEADERS and GETBLOCKS: the peer's list (locator or hashes) and a
//  limit are kept as an ask (hashes, not bytes) and go to our chainstore
//  one at a time (HEADERS, BLOCKS.GET), whose answer goes back to the peer
//  as HEADERS or BLOCKS. A reply the peer's link does not take (it holds
//  peersync/peer_queue messages the peer has not read) is dropped and its
//  ask kept: it is asked for again once the link takes a message, and a
//  link full for peersync/peer_stall_ms is closed. A chainstore that does
//  not answer in time leaves the peer unanswered; the peer's own deadline
//  covers that.

//  How a send to a peer went.
typedef enum { S_SENT, S_FULL, S_GONE } s_sent_t;

//  As peersync_send, telling a full link (EAGAIN: the ROUTER is
//  ZMQ_ROUTER_MANDATORY) from a gone one.
static s_sent_t
s_send (peersync_t *self, peersync_peer_t *peer, const char *command, const cbus_buf_t *body)
{
    void *handle = zsock_resolve (peer->dealer ? peer->dealer : self->links.p2p);
    if (!peer->dealer) {
        if (!peer->routing_id)
            return S_GONE;
        if (zmq_send (handle, zframe_data (peer->routing_id), zframe_size (peer->routing_id),
                      ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
            return zmq_errno () == EAGAIN ? S_FULL : S_GONE;
    }
    if (zmq_send (handle, command, strlen (command), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return zmq_errno () == EAGAIN ? S_FULL : S_GONE;
    //  Past the first frame a message is taken whole.
    if (zmq_send (handle, body->data, body->size, ZMQ_DONTWAIT) >= 0)
        peer->bytes_out += strlen (command) + body->size;
    return S_SENT;
}

static void
s_asks_clear (peersync_t *self, peersync_peer_t *peer)
{
    peersync_peer_budget_t *budget = &peer->budget;
    if (budget->at_store)
        cbus_caller_cancel (self->local.chainstore, budget->store_call);
    budget->at_store = false;
    budget->ask_count = 0;
    budget->full_since = 0;
}

static void s_on_served (const cbus_call_t *call, cbus_reply_t *reply);

//  The oldest ask to our chainstore, unless one is there already or the
//  link is full.
static void
s_serve_next (peersync_t *self, peersync_peer_t *peer)
{
    peersync_peer_budget_t *budget = &peer->budget;
    if (peer->state != P_LINKED) {
        s_asks_clear (self, peer);
        return;
    }
    if (budget->at_store || budget->ask_count == 0 || budget->full_since)
        return;
    peersync_ask_t *ask = &budget->asks [budget->ask_first];
    cbus_list_t hashes = { .count = (uint32_t) ask->count, .items = ask->hashes };
    if (ask->headers) {
        cbus_headers_t request = { .locator = hashes, .max = ask->limit, .has_max = true };
        cbus_headers_encode (&request, &self->message);
    }
    else {
        cbus_blocks_get_t request = {
            .hashes = hashes, .max_bytes = ask->limit, .has_max_bytes = true
        };
        cbus_blocks_get_encode (&request, &self->message);
    }
    budget->at_store = true;
    budget->store_call = cbus_caller_send (self->local.chainstore,
                                           ask->headers ? CBUS_CMD_HEADERS : CBUS_CMD_BLOCKS_GET,
                                           self->message.data, self->message.size,
                                           PEERSYNC_STORE_TIMEOUT_MS, s_on_served, self,
                                           (void *) (uintptr_t) peer->serial);
}

//  The chainstore's answer to an ask, packed for the peer in
//  self->message; false if there is nothing to send (refused, or our
//  chainstore's reply does not decode).
static bool
s_answer (peersync_t *self, peersync_peer_t *peer, bool headers, cbus_reply_t *reply)
{
    char reason [CBUS_REASON_MAX];
    if (!cbus_reply_ok (reply)) {
        //  The chainstore refused what the peer sent (it checks the
        //  limits); our chainstore failing or not answering is not the
        //  peer's fault.
        if (!peersync_refusal_is_local (reply->code))
            peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, reply->reason);
        return false;
    }
    if (headers) {
        cbus_headers_reply_t got;
        if (cbus_headers_reply_decode (cbus_reply_map (reply), &got, reason)) {
            zsys_warning ("the chainstore's %s", reason);
            return false;
        }
        peersync_headers_pack (got.start, &got.headers, &self->message);
    }
    else {
        cbus_blocks_get_reply_t got;
        if (cbus_blocks_get_reply_decode (cbus_reply_map (reply), &got, reason)) {
            zsys_warning ("the chainstore's %s", reason);
            return false;
        }
        peersync_blocks_pack (&got.blocks, &self->message);
    }
    return true;
}

static void
s_on_served (const cbus_call_t *call, cbus_reply_t *reply)
{
    peersync_t *self = (peersync_t *) call->owner;
    peersync_peer_t *peer = peersync_peer_by_serial (self, (uint64_t) (uintptr_t) call->arg);
    if (!peer || !peer->budget.at_store)
        return;
    peersync_peer_budget_t *budget = &peer->budget;
    budget->at_store = false;
    peersync_ask_t *ask = &budget->asks [budget->ask_first];
    if (s_answer (self, peer, ask->headers, reply)
    &&  s_send (self, peer, ask->headers ? CBUS_P2P_HEADERS : CBUS_P2P_BLOCKS,
                &self->message) == S_FULL) {
        //  Not taken: the bytes go, the ask stays.
        if (!budget->full_since) {
            budget->full_since = cbus_mono_ms ();
            zsys_info ("peer's link is full peer=%s queued=%d: its answers wait",
                       peersync_peer_name (peer), self->budget.queue);
        }
        return;
    }
    if (budget->ask_count > 0) {
        budget->ask_first = (budget->ask_first + 1) % PEERSYNC_SERVE_QUEUE;
        budget->ask_count--;
    }
    s_serve_next (self, peer);
}

static void
s_serve (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map, bool headers)
{
    uint64_t limit = headers ? PEERSYNC_HEADERS_BATCH : self->budget.serve_bytes;
    const msgpack_object *list;
    if (headers ? peersync_getheaders_parse (map, &list, &limit)
                : peersync_getblocks_parse (map, &list, &limit)) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST,
                         headers ? "a malformed GETHEADERS" : "a malformed GETBLOCKS");
        return;
    }
    peersync_peer_budget_t *budget = &peer->budget;
    if (budget->ask_count >= PEERSYNC_SERVE_QUEUE || list->via.array.size > PEERSYNC_BLOCKS_BATCH) {
        CBUS_DEBUG ("peer=%s asks faster than it reads or our chainstore answers",
                    peersync_peer_name (peer));
        return;
    }
    peersync_ask_t *ask =
        &budget->asks [(budget->ask_first + budget->ask_count) % PEERSYNC_SERVE_QUEUE];
    ask->headers = headers;
    ask->limit = limit;
    ask->count = list->via.array.size;
    for (size_t index = 0; index < ask->count; index++)
        memcpy (ask->hashes [index], list->via.array.ptr [index].via.bin.ptr, CBUS_HASH_BYTES);
    budget->ask_count++;
    s_serve_next (self, peer);
}

//  --------------------------------------------------------------------------
//  Peer budgets: limits, socket options, full links

int
peersync_budget_init (peersync_t *self, const char *mempool_endpoint)
{
    peersync_budget_t *budget = &self->budget;
    cbus_config_t *config = self->config;
    budget->queue = (int) cbus_config_int (config, "peersync/peer_queue");
    budget->serve_bytes = (uint64_t) cbus_config_int (config, "peersync/peer_serve_bytes");
    budget->stall_ms = cbus_config_int (config, "peersync/peer_stall_ms");
    budget->tx_rate = (double) cbus_config_int (config, "peersync/peer_tx_rate");
    budget->tx_inflight = (size_t) cbus_config_int (config, "peersync/peer_tx_inflight");
    budget->pending_max = (uint64_t) cbus_config_int (config, "peersync/pending_max");
    budget->mempool = cbus_caller_new (self->loop, mempool_endpoint, "mempool");
    return budget->mempool ? 0 : -1;
}

void
peersync_budget_destroy (peersync_t *self)
{
    cbus_caller_destroy (&self->budget.mempool);
}

//  At most peer_queue messages wait toward one peer (per link: the
//  ROUTER's limit is per connection); past it a send fails at once
//  (EAGAIN, the ROUTER reporting it too) rather than queue. The kernel
//  closes a connection whose peer takes nothing for twice peer_stall_ms
//  (TCP_USER_TIMEOUT, zero-window probes included): after we did, for a
//  link full that long, unless our own loop could not.
void
peersync_budget_socket (peersync_t *self, zsock_t *socket)
{
    int queue = (int) cbus_config_int (self->config, "peersync/peer_queue");
    int stall = 2 * (int) cbus_config_int (self->config, "peersync/peer_stall_ms");
    void *handle = zsock_resolve (socket);
    zsock_set_sndhwm (socket, queue);
    if (zmq_setsockopt (handle, ZMQ_TCP_MAXRT, &stall, sizeof (stall)))
        zsys_warning ("cannot set ZMQ_TCP_MAXRT: %s", zmq_strerror (zmq_errno ()));
    if (zsock_type (socket) == ZMQ_ROUTER)
        zsock_set_router_mandatory (socket, 1);
}

//  A link full for too long: the peer does not read. An outbound link is
//  closed and opened again later; an inbound peer is forgotten and its
//  connection, holding at most peer_queue messages, shut at once
//  (peersync_slots_hangup; the kernel's TCP_USER_TIMEOUT is the backstop).
static void
s_close_unread (peersync_t *self, peersync_peer_t *peer, int64_t now)
{
    zsys_warning ("peer not reading peer=%s full_for_ms=%" PRId64 ": disconnected",
                  peersync_peer_name (peer), now - peer->budget.full_since);
    s_asks_clear (self, peer);
    if (peer->address) {
        peersync_unlink (self, peer);
        peersync_set_state (self, peer, P_FETCHING, "it did not read what we sent");
        peer->next_try = now + PEERSYNC_RETRY_MS;
    }
    else {
        peersync_set_state (self, peer, P_CONNECTING, "it did not read what we sent");
        peersync_slots_hangup (self, peer, 0);
        peersync_peer_remove (self, &peer);
    }
}

//  Whether a full link takes a message now: a DEALER says so (POLLOUT);
//  the ROUTER is asked with a STATUS, which is taken or refused whole, or
//  finds the connection gone (the kernel closed it: TCP_USER_TIMEOUT).
static s_sent_t
s_drained (peersync_t *self, peersync_peer_t *peer)
{
    if (peer->dealer)
        return zsock_events (peer->dealer) & ZMQ_POLLOUT ? S_SENT : S_FULL;
    peersync_status_t status = { .tip = { .height = self->chain.height } };
    memcpy (status.tip.work, self->chain.work, CBUS_U256_BYTES);
    memcpy (status.tip.tip, self->chain.tip, CBUS_HASH_BYTES);
    peersync_status_pack (&status, &self->message);
    return s_send (self, peer, CBUS_P2P_STATUS, &self->message);
}

void
peersync_budget_tick (peersync_t *self, int64_t now)
{
    //  Walk a snapshot: a peer closed here leaves the list.
    uint64_t full [256];
    size_t count = 0;
    PEERSYNC_EACH (self, peer)
        if (peer->budget.full_since && count < sizeof (full) / sizeof (full [0]))
            full [count++] = peer->serial;
    for (size_t index = 0; index < count; index++) {
        peersync_peer_t *peer = peersync_peer_by_serial (self, full [index]);
        if (!peer)
            continue;
        s_sent_t drained = peer->state == P_LINKED ? s_drained (self, peer) : S_GONE;
        if (peer->state != P_LINKED) {
            //  Its link went down meanwhile (the kernel's timeout, most likely).
            zsys_warning ("peer not reading peer=%s full_for_ms=%" PRId64 ": disconnected",
                          peersync_peer_name (peer), now - peer->budget.full_since);
            s_asks_clear (self, peer);
        }
        else
        if (drained == S_SENT) {
            peer->budget.full_since = 0;
            s_serve_next (self, peer);
        }
        else
        if (drained == S_GONE || now - peer->budget.full_since >= self->budget.stall_ms)
            s_close_unread (self, peer, now);
    }
}

//  --------------------------------------------------------------------------
//  Dispatch

//  A linked peer's message, by command.
static void
s_on_linked_message (peersync_t *self, peersync_peer_t *peer, const char *command,
                     const msgpack_object *map)
{
    if (streq (command, CBUS_P2P_STATUS))
        s_on_status (self, peer, map);
    else
    if (streq (command, CBUS_P2P_TX))
        s_on_tx (self, peer, map);
    else
    if (streq (command, CBUS_P2P_BLOCK))
        s_on_block (self, peer, map);
    else
    if (streq (command, CBUS_P2P_GETHEADERS))
        s_serve (self, peer, map, true);
    else
    if (streq (command, CBUS_P2P_HEADERS))
        peersync_on_headers (self, peer, map);
    else
    if (streq (command, CBUS_P2P_GETBLOCKS))
        s_serve (self, peer, map, false);
    else
    if (streq (command, CBUS_P2P_BLOCKS))
        peersync_on_blocks (self, peer, map);
    else
    if (peersync_pending_message (self, peer, command, map))
        ;                           //  MEMPOOL, INV, GETTXS, TXS
    else
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "an unknown command");
}

void
peersync_on_peer_message (peersync_t *self, peersync_peer_t *peer, zframe_t *command_frame,
                          zframe_t *body, bool inbound)
{
    char command [16] = "";
    size_t size = zframe_size (command_frame);
    peer->bytes_in += size + (body ? zframe_size (body) : 0);
    if (size > 0 && size < sizeof (command))
        memcpy (command, zframe_data (command_frame), size);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    bool decoded = body && zframe_size (body) > 0
                && cbus_unpack_next (&unpacked, (const char *) zframe_data (body), zframe_size (body),
                                     &offset) == MSGPACK_UNPACK_SUCCESS
                && offset == zframe_size (body) && unpacked.data.type == MSGPACK_OBJECT_MAP;
    peer->last_heard = cbus_mono_ms ();
    peer->last_seen_wall = (int64_t) cbus_time_ms ();
    const msgpack_object *map = &unpacked.data;
    if (!decoded || !*command)
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "a message that does not decode");
    else
    if (streq (command, CBUS_P2P_HELLO))
        s_on_hello (self, peer, map, inbound);
    else
    if (streq (command, CBUS_P2P_REJECT))
        s_on_reject (self, peer, map);
    else
    if (peer->state != P_LINKED)
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "a message before HELLO");
    else
        s_on_linked_message (self, peer, command, map);
    msgpack_unpacked_destroy (&unpacked);
}

//  --------------------------------------------------------------------------
//  Self test of the budget's rules that stand alone.

void
peersync_budget_test (bool verbose)
{
    if (verbose)
        printf (" * peersync budgets: ");
    //  Forged or broken costs; policy, duplicates, our own trouble do not.
    assert (peersync_tx_refusal_blames_peer (CBUS_CODE_BAD_SIGNATURE, true));
    assert (!peersync_tx_refusal_blames_peer (CBUS_CODE_BAD_SIGNATURE, false));
    assert (peersync_tx_refusal_blames_peer (CBUS_CODE_BAD_TX, false));
    cbus_code_t free_codes [] = { CBUS_CODE_DUPLICATE, CBUS_CODE_CONFIRMED, CBUS_CODE_FULL,
                                  CBUS_CODE_UNAVAILABLE, CBUS_CODE_STORAGE, CBUS_CODE_INTERNAL,
                                  CBUS_CODE_INVALID };
    for (size_t index = 0; index < sizeof (free_codes) / sizeof (free_codes [0]); index++)
        assert (!peersync_tx_refusal_blames_peer (free_codes [index], true));

    //  The rate: a full burst at first, then what the clock gives back.
    peersync_t self = { .budget = { .tx_rate = 5000, .tx_inflight = 1024 } };
    peersync_peer_budget_t budget = {0};
    s_tx_refill (&self, &budget, 1000);
    assert (budget.tx_tokens == 5000 && budget.tx_window == PEERSYNC_TX_WINDOW_START);
    budget.tx_tokens = 0;
    s_tx_refill (&self, &budget, 1100);             //  100 ms: 500 more
    assert (budget.tx_tokens > 499 && budget.tx_tokens < 501);
    s_tx_refill (&self, &budget, 60000);            //  Never more than a second's
    assert (budget.tx_tokens == 5000);
    self.budget.tx_rate = 10;                       //  ... or one full TX message
    s_tx_refill (&self, &budget, 70000);
    assert (budget.tx_tokens == PEERSYNC_TX_MAX);
    if (verbose)
        printf ("OK\n");
}
