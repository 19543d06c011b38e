/*  =========================================================================
    cbus_gw_nodes - the gateway's peer routes

    POST /nodes/register adds peers, GET /nodes lists them, GET
    /nodes/resolve runs the consensus algorithm in peersync and then
    streams our chain (cbus_gw_chain.c). docs/api.md has the answers.

    The JSON of peersync's reports (peers, resolve outcomes, the sync that
    GET /status shows) is written here from the decoded messages, one
    small writer per message, so that a field peersync adds is shown once
    the gateway is told how (its definition and its writer), not by
    accident.
    =========================================================================
*/
#include "cbus_gw.h"

//  --------------------------------------------------------------------------
//  The JSON of what peersync reports: each message's fields in its order,
//  as GET /nodes, /nodes/resolve and /status show them (docs/api.md).
//  Each returns -1 (out undefined) when a string is not UTF-8.

static int
s_write_peer_entry (cbus_buf_t *out, const cbus_peer_entry_t *peer)
{
    int rc = 0;
    cbus_buf_puts (out, "{\"address\": ");
    rc |= cbus_gw_write_str (out, peer->address);
    cbus_buf_puts (out, ", \"state\": ");
    rc |= cbus_gw_write_str (out, peer->state);
    cbus_buf_printf (out, ", \"height\": %" PRIu64 ", \"work\": ", peer->height);
    rc |= cbus_gw_write_str (out, peer->work);
    cbus_buf_puts (out, ", \"node_id\": ");
    rc |= cbus_gw_write_str (out, peer->node_id);
    cbus_buf_puts (out, ", \"direction\": ");
    rc |= cbus_gw_write_str (out, peer->direction);
    cbus_buf_printf (out, ", \"redundant\": %s, \"score\": %" PRId64 ", \"reason\": ",
                     peer->redundant ? "true" : "false", peer->score);
    rc |= cbus_gw_write_str (out, peer->reason);
    cbus_buf_printf (out, ", \"last_seen_ms\": %" PRIu64 ", \"banned_for_ms\": %" PRId64 "}",
                     peer->last_seen_ms, peer->banned_for_ms);
    return rc;
}

static int
s_write_resolve_entry (cbus_buf_t *out, const cbus_resolve_entry_t *peer)
{
    int rc = 0;
    cbus_buf_puts (out, "{\"address\": ");
    rc |= cbus_gw_write_str (out, peer->address);
    cbus_buf_puts (out, ", \"status\": ");
    rc |= cbus_gw_write_str (out, peer->status);
    cbus_buf_printf (out, ", \"height\": %" PRIu64 ", \"work\": ", peer->height);
    rc |= cbus_gw_write_str (out, peer->work);
    cbus_buf_puts (out, ", \"node_id\": ");
    rc |= cbus_gw_write_str (out, peer->node_id);
    cbus_buf_puts (out, "}");
    return rc;
}

int
cbus_gw_write_sync (cbus_buf_t *out, const cbus_sync_state_t *sync)
{
    int rc = 0;
    cbus_buf_printf (out, "{\"syncing\": %s", sync->syncing ? "true" : "false");
    if (sync->has_peer) {
        cbus_buf_puts (out, ", \"peer\": ");
        rc |= cbus_gw_write_str (out, sync->peer);
    }
    if (sync->has_target_height)
        cbus_buf_printf (out, ", \"target_height\": %" PRIu64, sync->target_height);
    if (sync->has_blocks_left)
        cbus_buf_printf (out, ", \"blocks_left\": %" PRIu64, sync->blocks_left);
    if (sync->has_blocks_done)
        cbus_buf_printf (out, ", \"blocks_done\": %" PRIu64, sync->blocks_done);
    cbus_buf_puts (out, "}");
    return rc;
}

//  Write item index of a decoded list; -1 when it does not decode or a
//  string is not UTF-8.
typedef int (s_item_write_fn) (cbus_buf_t *out, const cbus_list_t *list, uint32_t index);

static int
s_write_address_item (cbus_buf_t *out, const cbus_list_t *list, uint32_t index)
{
    return cbus_gw_write_str (out, cbus_list_str (list, index));
}

static int
s_write_peer_item (cbus_buf_t *out, const cbus_list_t *list, uint32_t index)
{
    cbus_peer_entry_t peer;
    char reason [CBUS_REASON_MAX];
    if (cbus_list_decode_map (list, index, &cbus_peer_entry_def, &peer, reason))
        return -1;
    return s_write_peer_entry (out, &peer);
}

static int
s_write_resolve_item (cbus_buf_t *out, const cbus_list_t *list, uint32_t index)
{
    cbus_resolve_entry_t peer;
    char reason [CBUS_REASON_MAX];
    if (cbus_list_decode_map (list, index, &cbus_resolve_entry_def, &peer, reason))
        return -1;
    return s_write_resolve_entry (out, &peer);
}

//  A JSON array of a decoded list, each item by write.
static int
s_write_list (cbus_buf_t *out, const cbus_list_t *list, s_item_write_fn *write)
{
    cbus_buf_puts (out, "[");
    for (uint32_t index = 0; index < list->count; index++) {
        if (index)
            cbus_buf_puts (out, ", ");
        if (write (out, list, index))
            return -1;
    }
    cbus_buf_puts (out, "]");
    return 0;
}

//  Answer 'status' with {"message"?, key: peers}: peers is the reply's
//  list, decoded by the caller (NULL when it did not decode).
static void
s_answer_peers (const cbus_call_t *call, const cbus_list_t *peers,
                s_item_write_fn *write, unsigned int status,
                const char *message, const char *key, const char *reason)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    if (message) {
        cbus_json_write_message (out, message);
        cbus_buf_printf (out, ", \"%s\": ", key);
    }
    else
        cbus_buf_printf (out, "{\"%s\": ", key);
    if (!peers || s_write_list (out, peers, write)) {
        cbus_gw_answer_bad_reply (request, call, "a peer list that does not decode", reason);
        return;
    }
    cbus_buf_puts (out, "}");
    request->status = status;
}

//  --------------------------------------------------------------------------
//  POST /nodes/register

static void
s_on_peer_add (const cbus_call_t *call, cbus_reply_t *reply)
{
    if (!cbus_reply_ok (reply)) {
        cbus_gw_answer_failure ((cbus_gw_request_t *) call->owner, call, reply);
        return;
    }
    cbus_peer_add_reply_t added;
    char reason [CBUS_REASON_MAX];
    bool decoded = cbus_peer_add_reply_decode (cbus_reply_map (reply), &added, reason) == 0;
    s_answer_peers (call, decoded ? &added.peers : NULL, s_write_address_item, MHD_HTTP_CREATED,
                    "New nodes have been added", "total_nodes", decoded ? NULL : reason);
}

//  The addresses of PEER.ADD, from the request's JSON array of strings.
static const void *
s_address (const void *source, uint32_t index, size_t *size)
{
    const json_t *node = json_array_get ((const json_t *) source, index);
    *size = json_string_length (node);
    return json_string_value (node);
}

static void
s_peer_add_start (cbus_gw_request_t *request)
{
    char reason [CBUS_REASON_MAX];
    json_t *value = cbus_json_parse (request->body.data, request->body.size, reason);
    cbus_buf_free (&request->body);
    if (!value) {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_BAD_JSON, "%s", reason);
        return;
    }
    json_t *nodes = json_object_get (value, "nodes");
    bool valid = json_is_array (nodes) && json_array_size (nodes) > 0;
    size_t index;
    json_t *node;
    json_array_foreach (nodes, index, node)
        valid = valid && json_is_string (node);
    if (!valid) {
        json_decref (value);
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_BAD_JSON,
                              "Error: Please supply a valid list of nodes");
        return;
    }
    cbus_peer_add_t add = {
        .addresses = { .count = (uint32_t) json_array_size (nodes), .item = s_address, .source = nodes }
    };
    cbus_peer_add_encode (&add, cbus_gw_body (request));
    json_decref (value);
    cbus_gw_call (request, CBUS_GW_PEERSYNC, CBUS_CMD_PEER_ADD, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_peer_add, NULL);
}

//  --------------------------------------------------------------------------
//  DELETE /nodes/<address>: the address as registered (any of its forms;
//  one holding "://" percent-encoded or not), removed from the peer list
//  with its link.

static void
s_on_peer_remove (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    if (!cbus_reply_ok (reply)) {
        cbus_gw_answer_failure (request, call, reply);
        return;
    }
    cbus_peer_remove_reply_t removed;
    char reason [CBUS_REASON_MAX];
    bool decoded = cbus_peer_remove_reply_decode (cbus_reply_map (reply), &removed, reason) == 0;
    s_answer_peers (call, decoded ? &removed.peers : NULL, s_write_address_item, MHD_HTTP_OK,
                    "Node removed", "total_nodes", decoded ? NULL : reason);
    if (decoded && request->status == MHD_HTTP_OK) {
        //  {"message", "total_nodes": [...]} gets "removed" before its end.
        cbus_buf_t *out = &request->out;
        out->size--;
        cbus_buf_puts (out, ", \"removed\": ");
        if (cbus_gw_write_str (out, removed.removed)) {
            cbus_gw_answer_bad_reply (request, call, "a peer list that does not decode", NULL);
            return;
        }
        cbus_buf_puts (out, "}");
    }
}

static void
s_peer_remove_start (cbus_gw_request_t *request)
{
    const char *address = request->path + strlen ("/nodes/");
    cbus_peer_remove_t remove = { .address = cbus_str (address) };
    cbus_peer_remove_encode (&remove, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_PEERSYNC, CBUS_CMD_PEER_REMOVE, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_peer_remove, NULL);
}

//  --------------------------------------------------------------------------
//  GET /nodes

static void
s_on_peer_list (const cbus_call_t *call, cbus_reply_t *reply)
{
    if (!cbus_reply_ok (reply)) {
        cbus_gw_answer_failure ((cbus_gw_request_t *) call->owner, call, reply);
        return;
    }
    cbus_peer_list_reply_t listed;
    char reason [CBUS_REASON_MAX];
    bool decoded = cbus_peer_list_reply_decode (cbus_reply_map (reply), &listed, reason) == 0;
    s_answer_peers (call, decoded ? &listed.peers : NULL, s_write_peer_item, MHD_HTTP_OK,
                    NULL, "nodes", decoded ? NULL : reason);
}

static void
s_nodes_start (cbus_gw_request_t *request)
{
    cbus_peer_list_t list = {0};
    cbus_peer_list_encode (&list, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_PEERSYNC, CBUS_CMD_PEER_LIST, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_peer_list, NULL);
}

//  --------------------------------------------------------------------------
//  GET /nodes/resolve: peersync resolves, then we stream our chain.

static void
s_on_resolve (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    cbus_resolve_reply_t resolved;
    if (cbus_gw_reply_decode (request, call, reply, &cbus_resolve_reply_def, &resolved,
                              "a peer list that does not decode"))
        return;
    cbus_buf_t *text = cbus_gw_stream_new (request);
    cbus_json_write_message (text, resolved.replaced ? "Our chain was replaced"
                                                     : "Our chain is authoritative");
    cbus_buf_puts (text, ", \"peers\": ");
    if (s_write_list (text, &resolved.peers, s_write_resolve_item)) {
        cbus_gw_stream_destroy (&request->stream);
        cbus_gw_answer_bad_reply (request, call, "a peer list that does not decode", NULL);
        return;
    }
    cbus_buf_puts (text, resolved.replaced ? ", \"new_chain\": [" : ", \"chain\": [");
    cbus_gw_stream_start (request);
}

static void
s_resolve_start (cbus_gw_request_t *request)
{
    cbus_resolve_t resolve = {0};
    cbus_resolve_encode (&resolve, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_PEERSYNC, CBUS_CMD_RESOLVE, cbus_gw_body (request),
                  request->gateway->resolve_timeout_ms, s_on_resolve, NULL);
}

const cbus_gw_route_t cbus_gw_nodes_routes [] = {
    { "/nodes/register", "POST", true,  true,  s_peer_add_start },
    { "/nodes/resolve",  "GET",  false, true,  s_resolve_start },
    { "/nodes",          "GET",  false, false, s_nodes_start },
    { "/nodes/",         "DELETE", false, true, s_peer_remove_start },
    { NULL }
};
