/*  =========================================================================
    cbus_gw_nodes - the gateway's peer routes

    POST /nodes/register adds peers, GET /nodes lists them, GET
    /nodes/resolve runs the consensus algorithm in peersync and then
    streams our chain (cbus_gw_chain.c). docs/api.md has the answers.
    =========================================================================
*/
#include "cbus_gw.h"

//  Answer 'status' with {"message"?, key: <reply's peers>}.
static void
s_answer_peers (const cbus_call_t *call, cbus_reply_t *reply, unsigned int status,
                const char *message, const char *key)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    if (!cbus_reply_ok (reply)) {
        cbus_gw_answer_failure (request, call, reply);
        return;
    }
    const msgpack_object *peers = cbus_msg_get (cbus_reply_map (reply), "peers");
    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    if (message) {
        cbus_json_write_message (out, message);
        cbus_buf_printf (out, ", \"%s\": ", key);
    }
    else
        cbus_buf_printf (out, "{\"%s\": ", key);
    if (!peers || peers->type != MSGPACK_OBJECT_ARRAY || cbus_json_write (out, peers)) {
        cbus_gw_answer_bad_reply (request, call, "a peer list that does not decode");
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
    s_answer_peers (call, reply, MHD_HTTP_CREATED, "New nodes have been added", "total_nodes");
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
    cbus_buf_t body = {0};
    msgpack_packer pk = cbus_packer_begin (&body, 1);
    cbus_pack_str (&pk, "addresses");
    msgpack_pack_array (&pk, json_array_size (nodes));
    json_array_foreach (nodes, index, node) {
        msgpack_pack_str (&pk, json_string_length (node));
        msgpack_pack_str_body (&pk, json_string_value (node), json_string_length (node));
    }
    json_decref (value);
    cbus_gw_call (request, CBUS_GW_PEERSYNC, CBUS_CMD_PEER_ADD, body.data, body.size,
                  request->gateway->request_timeout_ms, s_on_peer_add, NULL);
    cbus_buf_free (&body);
}

//  --------------------------------------------------------------------------
//  GET /nodes

static void
s_on_peer_list (const cbus_call_t *call, cbus_reply_t *reply)
{
    s_answer_peers (call, reply, MHD_HTTP_OK, NULL, "nodes");
}

static void
s_nodes_start (cbus_gw_request_t *request)
{
    cbus_gw_call (request, CBUS_GW_PEERSYNC, CBUS_CMD_PEER_LIST, NULL, 0,
                  request->gateway->request_timeout_ms, s_on_peer_list, NULL);
}

//  --------------------------------------------------------------------------
//  GET /nodes/resolve: peersync resolves, then we stream our chain.

static void
s_on_resolve (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    if (!cbus_reply_ok (reply)) {
        cbus_gw_answer_failure (request, call, reply);
        return;
    }
    bool replaced = false;
    cbus_msg_get_bool (cbus_reply_map (reply), "replaced", &replaced);
    const msgpack_object *peers = cbus_msg_get (cbus_reply_map (reply), "peers");
    cbus_buf_t *text = cbus_gw_stream_new (request);
    cbus_json_write_message (text, replaced ? "Our chain was replaced" : "Our chain is authoritative");
    cbus_buf_puts (text, ", \"peers\": ");
    if (!peers)
        cbus_buf_puts (text, "[]");
    else
    if (peers->type != MSGPACK_OBJECT_ARRAY || cbus_json_write (text, peers)) {
        cbus_gw_stream_destroy (&request->stream);
        cbus_gw_answer_bad_reply (request, call, "a peer list that does not decode");
        return;
    }
    cbus_buf_puts (text, replaced ? ", \"new_chain\": [" : ", \"chain\": [");
    cbus_gw_stream_start (request);
}

static void
s_resolve_start (cbus_gw_request_t *request)
{
    cbus_gw_call (request, CBUS_GW_PEERSYNC, CBUS_CMD_RESOLVE, NULL, 0,
                  request->gateway->resolve_timeout_ms, s_on_resolve, NULL);
}

const cbus_gw_route_t cbus_gw_nodes_routes [] = {
    { "/nodes/register", "POST", true,  true,  s_peer_add_start },
    { "/nodes/resolve",  "GET",  false, true,  s_resolve_start },
    { "/nodes",          "GET",  false, false, s_nodes_start },
    { NULL }
};
