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

static void
s_on_hello (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map, bool inbound)
{
    peersync_hello_t hello;
    if (peersync_hello_parse (&hello, map)) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "malformed HELLO");
        return;
    }
    if (hello.version != CBUS_P2P_VERSION) {
        char reason [80];
        snprintf (reason, sizeof (reason), "this node speaks peer protocol version %d only",
                  CBUS_P2P_VERSION);
        peersync_send_reject (self, peer, CBUS_CODE_PROTOCOL, reason);
        peersync_set_state (self, peer, P_REFUSED, "it speaks another protocol version");
        return;
    }
    if (hello.network_size != strlen (self->chain.network)
    ||  memcmp (hello.network, self->chain.network, hello.network_size)
    ||  memcmp (hello.genesis, self->chain.genesis, CBUS_HASH_BYTES)) {
        char reason [160];
        snprintf (reason, sizeof (reason), "another network or genesis: this node runs '%s'",
                  self->chain.network);
        peersync_send_reject (self, peer, CBUS_CODE_WRONG_NETWORK, reason);
        peersync_set_state (self, peer, P_REFUSED, "it runs another network or genesis");
        return;
    }
    if (memcmp (hello.node_id, cbus_identity_node_id (self->links.identity), 16) == 0) {
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
    }
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
    char reason [160];
    snprintf (reason, sizeof (reason), "it refused us (%s): %.*s", cbus_code_name (reject.code),
              (int) (reject.reason_size > 120 ? 120 : reject.reason_size), reject.reason);
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

//  Transactions from a peer go to our mempool, which checks them; its
//  answers are drained (cbus_peersync.c). The DEALER never blocks: when
//  the mempool is too far behind, what does not fit is dropped.
static void
s_on_tx (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map)
{
    const msgpack_object *txs = peersync_tx_parse (map);
    if (!txs) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "malformed TX");
        return;
    }
    cbus_buf_t body = {0};
    for (uint32_t index = 0; index < txs->via.array.size; index++) {
        const msgpack_object *item = &txs->via.array.ptr [index];
        if (item->type != MSGPACK_OBJECT_BIN) {
            peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "TX holding something else");
            break;
        }
        cbus_tx_submit_t submit = {
            .tx = { (const uint8_t *) item->via.bin.ptr, item->via.bin.size }
        };
        cbus_tx_submit_encode (&submit, &body);
        cbus_request_send (self->local.mempool, CBUS_CMD_TX_SUBMIT, self->local.next_request++,
                           body.data, body.size);
    }
    cbus_buf_free (&body);
}

//  Our chainstore's answer to a block a peer gossiped.
static void
s_on_block_stored (const cbus_call_t *call, cbus_reply_t *reply)
{
    peersync_t *self = (peersync_t *) call->owner;
    self->relay.submitting--;
    peersync_peer_t *peer = peersync_peer_by_serial (self, (uint64_t) (uintptr_t) call->arg);
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
//  limit go to our chainstore (HEADERS, BLOCKS.GET), whose answer is what
//  the peer wants and goes back to it as HEADERS or BLOCKS. A chainstore
//  that does not answer in time leaves the peer unanswered; the peer's own
//  deadline covers that.

//  The peer a served call was for, when the chainstore answered OK and
//  the peer is still there; NULL otherwise, after scoring the peer down
//  if the chainstore refused what it sent.
static peersync_peer_t *
s_served (const cbus_call_t *call, cbus_reply_t *reply)
{
    peersync_t *self = (peersync_t *) call->owner;
    peersync_peer_t *peer = peersync_peer_by_serial (self, (uint64_t) (uintptr_t) call->arg);
    if (!peer)
        return NULL;
    peer->serving--;
    if (cbus_reply_ok (reply))
        return peer;
    //  The chainstore refused what the peer sent (it checks the limits);
    //  our chainstore failing or not answering is not the peer's fault.
    if (!peersync_refusal_is_local (reply->code))
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, reply->reason);
    return NULL;
}

static void
s_on_headers_served (const cbus_call_t *call, cbus_reply_t *reply)
{
    peersync_t *self = (peersync_t *) call->owner;
    peersync_peer_t *peer = s_served (call, reply);
    cbus_headers_reply_t headers;
    char reason [CBUS_REASON_MAX];
    if (!peer)
        return;
    if (cbus_headers_reply_decode (cbus_reply_map (reply), &headers, reason)) {
        zsys_warning ("the chainstore's %s", reason);
        return;
    }
    peersync_headers_pack (headers.start, &headers.headers, &self->message);
    peersync_send (self, peer, CBUS_P2P_HEADERS, &self->message);
}

static void
s_on_blocks_served (const cbus_call_t *call, cbus_reply_t *reply)
{
    peersync_t *self = (peersync_t *) call->owner;
    peersync_peer_t *peer = s_served (call, reply);
    cbus_blocks_get_reply_t blocks;
    char reason [CBUS_REASON_MAX];
    if (!peer)
        return;
    if (cbus_blocks_get_reply_decode (cbus_reply_map (reply), &blocks, reason)) {
        zsys_warning ("the chainstore's %s", reason);
        return;
    }
    peersync_blocks_pack (&blocks.blocks, &self->message);
    peersync_send (self, peer, CBUS_P2P_BLOCKS, &self->message);
}

static void
s_serve (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map, bool headers)
{
    uint64_t limit = headers ? PEERSYNC_HEADERS_BATCH : PEERSYNC_BLOCKS_BYTES;
    const msgpack_object *list;
    if (headers ? peersync_getheaders_parse (map, &list, &limit)
                : peersync_getblocks_parse (map, &list, &limit)) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST,
                         headers ? "a malformed GETHEADERS" : "a malformed GETBLOCKS");
        return;
    }
    if (peer->serving >= PEERSYNC_SERVE_WINDOW) {
        CBUS_DEBUG ("peer=%s asks faster than our chainstore answers", peersync_peer_name (peer));
        return;
    }
    cbus_list_t hashes = peersync_hash_list (list);
    if (headers) {
        cbus_headers_t request = { .locator = hashes, .max = limit, .has_max = true };
        cbus_headers_encode (&request, &self->message);
    }
    else {
        cbus_blocks_get_t request = { .hashes = hashes, .max_bytes = limit, .has_max_bytes = true };
        cbus_blocks_get_encode (&request, &self->message);
    }
    peer->serving++;
    cbus_caller_send (self->local.chainstore, headers ? CBUS_CMD_HEADERS : CBUS_CMD_BLOCKS_GET,
                      self->message.data, self->message.size, PEERSYNC_STORE_TIMEOUT_MS,
                      headers ? s_on_headers_served : s_on_blocks_served, self,
                      (void *) (uintptr_t) peer->serial);
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
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "an unknown command");
}

void
peersync_on_peer_message (peersync_t *self, peersync_peer_t *peer, zframe_t *command_frame,
                          zframe_t *body, bool inbound)
{
    char command [16] = "";
    size_t size = zframe_size (command_frame);
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
