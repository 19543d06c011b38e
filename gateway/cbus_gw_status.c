/*  =========================================================================
    cbus_gw_status - the gateway's status routes and the dashboard

    GET /status asks the chainstore, the mempool and peersync at once and
    says what it knows, each service being given CBUS_GW_STATUS_TIMEOUT_MS
    (not the request timeout): a service that is frozen or overloaded is
    reported down, and the answer comes within about half a second
    whatever the services do. GET /node/info is peersync's identity of
    this node. Paths that are no API route are the dashboard's files.
    docs/api.md has the answers.
    =========================================================================
*/
#include "cbus_gw.h"
#include <stdarg.h>

//  What GET /status has gathered so far.
typedef struct {
    int left;                       //  Replies still expected
    bool up [CBUS_GW_SERVICES];     //  The service answered at all
    bool ok [CBUS_GW_SERVICES];     //  ... and answered OK
    char network [64];              //  From TIP, or the configuration
    uint64_t height;                //  TIP
    uint8_t tip [CBUS_HASH_BYTES];
    uint8_t work [CBUS_HASH_BYTES];
    uint64_t pool_size;             //  MEMPOOL.INFO
    uint64_t pool_bytes;
    uint64_t peers;                 //  PEER.LIST: peers, a redundant link not counted
    uint64_t linked;                //  ... of them linked
    char sync [512];                //  ... its "sync" object as JSON
    //  Why a service's store takes no writes (a full disk), "" if it does
    char storage [CBUS_GW_SERVICES][CBUS_REASON_MAX];
    //  ... and its code: "no_space" (a full disk), "storage" (another fault)
    const char *storage_code [CBUS_GW_SERVICES];
    char damaged [CBUS_REASON_MAX]; //  TIP: why the chain store is damaged, "" if not
} s_status_t;

//  --------------------------------------------------------------------------
//  GET /status

//  One service's entry under "services"; storage (NULL or "" if none):
//  why its store takes no writes, and code the kind of fault.
static void
s_write_service (cbus_buf_t *out, const char *name, bool up, uint64_t last_seen,
                 const char *storage, const char *code)
{
    cbus_buf_printf (out, "\"%s\": {\"up\": %s, \"last_seen_ms\": ", name, up ? "true" : "false");
    if (last_seen)
        cbus_buf_printf (out, "%" PRIu64, last_seen);
    else
        cbus_buf_puts (out, "null");
    if (storage && *storage) {
        cbus_buf_puts (out, ", \"storage\": ");
        cbus_json_write_string (out, storage, strlen (storage));
        cbus_buf_printf (out, ", \"storage_code\": \"%s\"", code ? code : "storage");
    }
    cbus_buf_puts (out, "}");
}

//  A service's storage fields into info (cut to fit, UTF-8 checked; a
//  service that gives no code is taken to mean a full disk, any code but
//  no_space a storage fault).
static void
s_keep_storage (s_status_t *info, int service, bool has, cbus_str_t storage, bool has_code,
                cbus_str_t code)
{
    char *into = info->storage [service];
    info->storage_code [service] = cbus_code_name (
        !has_code || cbus_code_from_name (code.data, code.size) == CBUS_CODE_NO_SPACE
        ? CBUS_CODE_NO_SPACE : CBUS_CODE_STORAGE);
    size_t size = storage.size < CBUS_REASON_MAX - 1 ? storage.size : CBUS_REASON_MAX - 1;
    if (!has)
        *into = 0;
    else
    if (cbus_utf8_valid (storage.data, size)) {
        memcpy (into, storage.data, size);
        into [size] = 0;
    }
    else
        snprintf (into, CBUS_REASON_MAX, "its store takes no writes");
}

//  The values of the answer, each null when its service did not tell.
static void
s_write_values (cbus_buf_t *out, s_status_t *info)
{
    if (info->ok [CBUS_GW_CHAINSTORE]) {
        cbus_buf_printf (out, ", \"height\": %" PRIu64 ", \"tip\": ", info->height);
        cbus_gw_write_hex (out, info->tip);
        cbus_buf_puts (out, ", \"work\": ");
        cbus_gw_write_hex (out, info->work);
    }
    else
        cbus_buf_puts (out, ", \"height\": null, \"tip\": null, \"work\": null");
    if (info->ok [CBUS_GW_MEMPOOL])
        cbus_buf_printf (out, ", \"mempool\": {\"size\": %" PRIu64 ", \"bytes\": %" PRIu64 "}",
                         info->pool_size, info->pool_bytes);
    else
        cbus_buf_puts (out, ", \"mempool\": null");
    if (info->ok [CBUS_GW_PEERSYNC])
        cbus_buf_printf (out, ", \"peers\": %" PRIu64 ", \"peers_linked\": %" PRIu64 ", \"sync\": %s",
                         info->peers, info->linked, *info->sync ? info->sync : "null");
    else
        cbus_buf_puts (out, ", \"peers\": null, \"peers_linked\": null, \"sync\": null");
}

//  "mining": the mode, each miner's hash rate from its heartbeat, their
//  sum, and the network's estimated from the last blocks (null until the
//  gateway has seen two since it started).
static void
s_write_mining (cbus_buf_t *out, cbus_gateway_t *self, int64_t now)
{
    cbus_buf_puts (out, ", \"mining\": {\"mode\": ");
    const char *mode = cbus_config_str (self->config, "miner/mode");
    cbus_json_write_string (out, mode, strlen (mode));
    cbus_buf_puts (out, ", \"miners\": ");
    uint64_t sum = 0;
    cbus_heartbeats_write_rates (self->heartbeats, "miner", now, out, &sum);
    cbus_buf_printf (out, ", \"hash_rate\": %" PRIu64, sum);
    double rate;
    uint64_t blocks, span_ms;
    if (cbus_heartbeats_network_rate (self->heartbeats, &rate, &blocks, &span_ms) == 0)
        cbus_buf_printf (out, ", \"network_hash_rate\": %.0f, \"network_blocks\": %" PRIu64
                         ", \"network_span_ms\": %" PRIu64 "}", rate, blocks, span_ms);
    else
        cbus_buf_puts (out, ", \"network_hash_rate\": null, \"network_blocks\": 0"
                            ", \"network_span_ms\": null}");
}

void
cbus_gw_status_block_event (cbus_gateway_t *self, cbus_event_t *event)
{
    bool connected = streq (event->topic, CBUS_TOPIC_BLOCK_CONNECTED);
    if (!connected && !streq (event->topic, CBUS_TOPIC_BLOCK_DISCONNECTED))
        return;
    //  One table row gives both events their fields: the same layout.
    cbus_block_connected_t block;
    cbus_block_disconnected_t left;
    _Static_assert (sizeof (left) == sizeof (block), "one row, one layout");
    char reason [CBUS_REASON_MAX];
    int rc = connected ? cbus_block_connected_decode (cbus_event_map (event), &block, reason)
                       : cbus_block_disconnected_decode (cbus_event_map (event), &left, reason);
    if (!connected)
        memcpy (&block, &left, sizeof (block));
    if (rc) {
        if (self->verbose)
            zsys_debug ("%s ignored: %s", event->topic, reason);
        return;
    }
    cbus_heartbeats_block (self->heartbeats, connected, block.height, block.time_ms, block.work);
}

//  One reason why the node is not ok, into the "reasons" list: the
//  process it is about, a code a script decides by, and a message.
static void
s_reason (cbus_buf_t *reasons, const char *service, const char *code, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static void
s_reason (cbus_buf_t *reasons, const char *service, const char *code, const char *format, ...)
{
    char message [CBUS_REASON_MAX + 128];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof (message), format, args);
    va_end (args);
    cbus_buf_printf (reasons, "%s{\"service\": \"%s\", \"code\": \"%s\", \"message\": ",
                     reasons->size ? ", " : "", service, code);
    cbus_json_write_string (reasons, message, strlen (message));
    cbus_buf_puts (reasons, "}");
}

//  Every reason the node is not ok, in the order of docs/api.md.
static void
s_reasons (cbus_gateway_t *self, s_status_t *info, int64_t now, cbus_buf_t *reasons)
{
    const char *unavailable = cbus_code_name (CBUS_CODE_UNAVAILABLE);
    if (!cbus_heartbeats_any_alive (self->heartbeats, now))
        s_reason (reasons, "bus", unavailable,
                  "no heartbeat went through the bus in the last %d ms", CBUS_HEARTBEAT_DEAD_MS);
    for (int service = 0; service < CBUS_GW_SERVICES; service++) {
        const char *name = cbus_gw_service_name (service);
        if (!info->up [service])
            s_reason (reasons, name, unavailable, "chainbus-%s did not answer within %d ms",
                      name, CBUS_GW_STATUS_TIMEOUT_MS);
        else
        if (!info->ok [service])
            s_reason (reasons, name, cbus_code_name (CBUS_CODE_INTERNAL),
                      "chainbus-%s answered with something that does not decode", name);
        if (*info->storage [service])
            s_reason (reasons, name, info->storage_code [service],
                      "chainbus-%s takes no writes: %s", name, info->storage [service]);
    }
    if (*info->damaged)
        s_reason (reasons, "chainstore", cbus_code_name (CBUS_CODE_DAMAGED),
                  "the chain store is damaged, a read failed: %s", info->damaged);
    for (int tracked = 0; tracked < CBUS_GW_TRACKED; tracked++) {
        int recent = cbus_gw_restarts_recent (self, tracked, now);
        if (recent >= CBUS_GW_RESTARTS_UNHEALTHY)
            s_reason (reasons, cbus_gw_tracked_name (tracked),
                      cbus_code_name (CBUS_CODE_RESTARTING),
                      "chainbus-%s restarted %d times in the last %" PRId64 " s (%" PRIu64
                      " since the gateway started)", cbus_gw_tracked_name (tracked), recent,
                      self->restart_window_ms / 1000, self->restarts [tracked]);
    }
}

static void
s_status_finish (cbus_gw_request_t *request)
{
    cbus_gateway_t *self = request->gateway;
    s_status_t *info = (s_status_t *) request->state;
    int64_t now = cbus_mono_ms ();
    bool bus_up = cbus_heartbeats_any_alive (self->heartbeats, now);
    cbus_buf_t reasons = {0};
    s_reasons (self, info, now, &reasons);
    bool all_ok = reasons.size == 0;

    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    cbus_buf_printf (out, "{\"ok\": %s, \"reasons\": [", all_ok ? "true" : "false");
    if (reasons.size)
        cbus_buf_append (out, reasons.data, reasons.size);
    cbus_buf_free (&reasons);
    cbus_buf_puts (out, "], \"network\": ");
    if (!*info->network)
        snprintf (info->network, sizeof (info->network), "%s",
                  cbus_config_str (self->config, "node/network"));
    cbus_json_write_string (out, info->network, strlen (info->network));
    s_write_values (out, info);
    s_write_mining (out, self, now);

    cbus_buf_puts (out, ", \"services\": {");
    s_write_service (out, "bus", bus_up, cbus_heartbeats_latest (self->heartbeats), NULL, NULL);
    for (int service = 0; service < CBUS_GW_SERVICES; service++) {
        cbus_buf_puts (out, ", ");
        const char *name = cbus_gw_service_name (service);
        s_write_service (out, name, info->up [service],
                         cbus_heartbeats_last_seen (self->heartbeats, name),
                         info->storage [service], info->storage_code [service]);
    }
    cbus_buf_puts (out, ", ");
    s_write_service (out, "gateway", true, cbus_heartbeats_last_seen (self->heartbeats, "gateway"),
                     NULL, NULL);
    cbus_buf_puts (out, ", \"miners\": ");
    cbus_heartbeats_write_alive (self->heartbeats, "miner", now, out);
    cbus_buf_puts (out, "}}");
    request->status = MHD_HTTP_OK;
}

//  A service's reply (or none) is in: note whether it answered at all.
//  Returns the reply's map when the service answered OK, else NULL.
static const msgpack_object *
s_status_reply (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    s_status_t *info = (s_status_t *) request->state;
    //  A local reply means that the service did not answer.
    info->up [call->service] = !cbus_reply_is_local (reply);
    return cbus_reply_ok (reply) ? cbus_reply_map (reply) : NULL;
}

//  A service's part is noted (reason: why an OK reply was of no use):
//  answer after the last.
static void
s_status_settle (const cbus_call_t *call, const cbus_reply_t *reply, const char *reason)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    s_status_t *info = (s_status_t *) request->state;
    if (!info->ok [call->service] && request->gateway->verbose)
        zsys_debug ("status: service=%s not ok: %s", cbus_gw_service_name (call->service),
                    cbus_reply_ok (reply) ? reason : reply->reason);
    if (--info->left == 0)
        s_status_finish (request);
}

static void
s_on_status_tip (const cbus_call_t *call, cbus_reply_t *reply)
{
    s_status_t *info = (s_status_t *) ((cbus_gw_request_t *) call->owner)->state;
    const msgpack_object *map = s_status_reply (call, reply);
    cbus_tip_reply_t tip;
    char reason [CBUS_REASON_MAX] = "";
    if (map && cbus_tip_reply_decode (map, &tip, reason) == 0) {
        info->ok [call->service] = true;
        info->height = tip.height;
        memcpy (info->tip, tip.hash, CBUS_HASH_BYTES);
        memcpy (info->work, tip.work, CBUS_HASH_BYTES);
        s_keep_storage (info, call->service, tip.has_storage, tip.storage, tip.has_storage_code,
                        tip.storage_code);
        if (tip.has_damaged) {
            size_t size = tip.damaged.size < sizeof (info->damaged) - 1
                        ? tip.damaged.size : sizeof (info->damaged) - 1;
            if (cbus_utf8_valid (tip.damaged.data, size)) {
                memcpy (info->damaged, tip.damaged.data, size);
                info->damaged [size] = 0;
            }
            else
                snprintf (info->damaged, sizeof (info->damaged), "a read failed");
        }
        if (tip.network.size < sizeof (info->network)
        &&  cbus_utf8_valid (tip.network.data, tip.network.size)) {
            memcpy (info->network, tip.network.data, tip.network.size);
            info->network [tip.network.size] = 0;
        }
    }
    s_status_settle (call, reply, reason);
}

static void
s_on_status_pool (const cbus_call_t *call, cbus_reply_t *reply)
{
    s_status_t *info = (s_status_t *) ((cbus_gw_request_t *) call->owner)->state;
    const msgpack_object *map = s_status_reply (call, reply);
    cbus_mempool_info_reply_t pool;
    char reason [CBUS_REASON_MAX] = "";
    if (map && cbus_mempool_info_reply_decode (map, &pool, reason) == 0) {
        info->ok [call->service] = true;
        info->pool_size = pool.size;
        info->pool_bytes = pool.bytes;
        s_keep_storage (info, call->service, pool.has_storage, pool.storage,
                        pool.has_storage_code, pool.storage_code);
    }
    s_status_settle (call, reply, reason);
}

//  Count the peers (a redundant link, a node linked both ways, once) and
//  keep the sync as JSON. -1 with a reason when the list does not decode.
static int
s_status_peers (s_status_t *info, const cbus_peer_list_reply_t *listed, char *reason)
{
    for (uint32_t index = 0; index < listed->peers.count; index++) {
        cbus_peer_entry_t peer;
        if (cbus_list_decode_map (&listed->peers, index, &cbus_peer_entry_def, &peer, reason))
            return -1;
        if (peer.redundant)
            continue;
        info->peers++;
        if (cbus_str_eq (peer.state, "linked"))
            info->linked++;
    }
    cbus_buf_t text = {0};
    if (cbus_gw_write_sync (&text, &listed->sync) == 0 && text.size < sizeof (info->sync))
        memcpy (info->sync, text.data, text.size + 1);
    cbus_buf_free (&text);
    return 0;
}

static void
s_on_status_peers (const cbus_call_t *call, cbus_reply_t *reply)
{
    s_status_t *info = (s_status_t *) ((cbus_gw_request_t *) call->owner)->state;
    const msgpack_object *map = s_status_reply (call, reply);
    cbus_peer_list_reply_t listed;
    char reason [CBUS_REASON_MAX] = "";
    info->ok [call->service] = map && cbus_peer_list_reply_decode (map, &listed, reason) == 0
                            && s_status_peers (info, &listed, reason) == 0;
    s_status_settle (call, reply, reason);
}

//  Ask the three services at once, each for at most the status timeout.
static void
s_status_start (cbus_gw_request_t *request)
{
    cbus_gateway_t *self = request->gateway;
    int64_t timeout_ms = self->request_timeout_ms < CBUS_GW_STATUS_TIMEOUT_MS
                       ? self->request_timeout_ms : CBUS_GW_STATUS_TIMEOUT_MS;
    s_status_t *info = (s_status_t *) zmalloc (sizeof (s_status_t));
    info->left = 3;
    request->state = info;
    request->state_free = free;
    cbus_tip_t tip = {0};
    cbus_tip_encode (&tip, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_CHAINSTORE, CBUS_CMD_TIP, cbus_gw_body (request), timeout_ms,
                  s_on_status_tip, NULL);
    cbus_mempool_info_t pool = {0};
    cbus_mempool_info_encode (&pool, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_MEMPOOL, CBUS_CMD_MEMPOOL_INFO, cbus_gw_body (request),
                  timeout_ms, s_on_status_pool, NULL);
    cbus_peer_list_t list = {0};
    cbus_peer_list_encode (&list, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_PEERSYNC, CBUS_CMD_PEER_LIST, cbus_gw_body (request),
                  timeout_ms, s_on_status_peers, NULL);
}

//  --------------------------------------------------------------------------
//  GET /node/info: who this node is to its peers (network, genesis,
//  peer endpoint, public key); a peer registering us by URL asks it.

static void
s_on_node_info (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    cbus_node_info_reply_t node;
    if (cbus_gw_reply_decode (request, call, reply, &cbus_node_info_reply_def, &node,
                              "node info that does not decode"))
        return;
    //  The reply's fields in its order; the genesis hash as hex.
    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    cbus_buf_puts (out, "{\"node_id\": ");
    int rc = cbus_gw_write_str (out, node.node_id);
    cbus_buf_puts (out, ", \"public_key\": ");
    rc |= cbus_gw_write_str (out, node.public_key);
    cbus_buf_puts (out, ", \"p2p_endpoint\": ");
    rc |= cbus_gw_write_str (out, node.p2p_endpoint);
    cbus_buf_puts (out, ", \"network\": ");
    rc |= cbus_gw_write_str (out, node.network);
    cbus_buf_puts (out, ", \"genesis\": ");
    cbus_gw_write_hex (out, node.genesis);
    if (node.has_block_interval)        //  The target rule the genesis commits to
        cbus_buf_printf (out, ", \"block_interval\": %" PRIu64, node.block_interval);
    cbus_buf_puts (out, "}");
    if (rc) {
        cbus_gw_answer_bad_reply (request, call, "node info that does not decode", NULL);
        return;
    }
    request->status = MHD_HTTP_OK;
}

static void
s_node_info_start (cbus_gw_request_t *request)
{
    cbus_node_info_t info = {0};
    cbus_node_info_encode (&info, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_PEERSYNC, CBUS_CMD_NODE_INFO, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_node_info, NULL);
}

//  --------------------------------------------------------------------------
//  The dashboard's files

void
cbus_gw_www_answer (cbus_gw_request_t *request)
{
    cbus_gateway_t *self = request->gateway;
    if (streq (request->method, "GET") || streq (request->method, "HEAD")) {
        request->file_fd = cbus_www_open (self->www, request->path, &request->file_size,
                                          &request->file_type);
        if (request->file_fd >= 0)
            request->status = MHD_HTTP_OK;
        else
            cbus_gw_answer_error (request, MHD_HTTP_NOT_FOUND, CBUS_CODE_NOT_FOUND, "Not found");
    }
    else
    if (streq (request->path, "/")) {
        request->allow = "GET, HEAD";
        cbus_gw_answer_error (request, MHD_HTTP_METHOD_NOT_ALLOWED, CBUS_CODE_METHOD,
                              "Method not allowed");
    }
    else
        cbus_gw_answer_error (request, MHD_HTTP_NOT_FOUND, CBUS_CODE_NOT_FOUND, "Not found");
}

const cbus_gw_route_t cbus_gw_status_routes [] = {
    { "/status",    "GET", false, false, s_status_start },
    { "/node/info", "GET", false, false, s_node_info_start },
    { NULL }
};
