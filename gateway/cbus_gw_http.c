/*  =========================================================================
    cbus_gw_http - the gateway's HTTP core: requests, routing, answers

    How a request flows. libmicrohttpd (MHD) calls cbus_gw_access several
    times per request. The first call only routes it (MHD 0.9.75 closes
    the connection when a response is queued on the first call, see
    MEASURED.md), except to refuse a body up front (413, or 404/405 on a
    request carrying a body), where closing is what we want. Body calls
    collect the body. The last call starts the route, which either answers
    at once or sends bus requests (cbus_gw_call) and suspends the
    connection. Each reply runs the handler its call was sent with, which
    answers or asks further; when no call is left in flight the connection
    is resumed, and MHD calls cbus_gw_access again, which queues the
    answer.

    Every handler runs exactly once per call, and an HTTP request whose
    client went away (cbus_gw_completed) cancels its calls first, so that
    a late reply never touches a freed connection.

    Every error answer is {"message": <sentence>, "code": <cbus_code name>}.
    =========================================================================
*/
#include "cbus_gw.h"
#include <arpa/inet.h>

//  Block size hint for MHD when pulling a stream.
#define S_STREAM_BLOCK      (32 * 1024)
//  Bytes of an over-long body read and dropped before the connection
//  is cut (so that a 413 can still reach a client that sent no
//  Content-Length, but nobody can stream to us forever).
#define S_DISCARD_MAX       (16 * 1024 * 1024)

//  Every resource's table of routes.
static const cbus_gw_route_t *s_tables [] = {
    cbus_gw_tx_routes, cbus_gw_chain_routes, cbus_gw_nodes_routes, cbus_gw_status_routes,
    cbus_gw_metrics_routes, cbus_gw_events_routes
};
#define S_TABLES (sizeof (s_tables) / sizeof (s_tables [0]))

//  --------------------------------------------------------------------------
//  Small helpers

//  Cut text back so that it is valid UTF-8 (a truncated sentence may end
//  in the middle of a character); replace it if it is not UTF-8 at all.
static void
s_utf8_fix (char *text)
{
    size_t size = strlen (text);
    for (int cut = 0; cut < 4 && size > 0; cut++) {
        if (cbus_utf8_valid (text, size)) {
            text [size] = 0;
            return;
        }
        size--;
    }
    if (!cbus_utf8_valid (text, size))
        strcpy (text, "(reason not readable)");
    else
        text [size] = 0;
}

void
cbus_gw_log_safe (const char *text, char *out, size_t size)
{
    size_t index = 0;
    for (; text && text [index] && index + 1 < size; index++) {
        char c = text [index];
        out [index] = (c < 0x20 || c > 0x7e || c == '"') ? '?' : c;
    }
    out [index] = 0;
}

void
cbus_gw_write_hex (cbus_buf_t *out, const uint8_t *hash)
{
    char hex [CBUS_HASH_HEX];
    cbus_buf_printf (out, "\"%s\"", cbus_hash_hex (hash, hex));
}

int
cbus_gw_write_str (cbus_buf_t *out, cbus_str_t value)
{
    if (!cbus_utf8_valid (value.data, value.size))
        return -1;
    cbus_json_write_string (out, value.data, value.size);
    return 0;
}

//  --------------------------------------------------------------------------
//  Answers

static void
s_answer_text (cbus_gw_request_t *request, unsigned int status, cbus_code_t code,
               const char *message)
{
    if (message != request->message)
        snprintf (request->message, sizeof (request->message), "%s", message);
    s_utf8_fix (request->message);
    request->status = status;
    cbus_buf_reset (&request->out);
    cbus_json_write_message (&request->out, request->message);
    cbus_buf_printf (&request->out, ", \"code\": \"%s\"}", cbus_code_name (code));
}

void
cbus_gw_answer_error (cbus_gw_request_t *request, unsigned int status,
                      cbus_code_t code, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (request->message, sizeof (request->message), format, args);
    va_end (args);
    s_answer_text (request, status, code, request->message);
}

void
cbus_gw_failure_of (const cbus_call_t *call, const cbus_reply_t *reply,
                    cbus_gw_failure_t *failure)
{
    //  The first row that fits: a status word, and a code or any
    //  (CBUS_CODE_COUNT). A full disk is 507, other failures 500.
    static const struct {
        const char *word;
        cbus_code_t code;
        unsigned int status;
    } s_statuses [] = {
        { CBUS_STATUS_INVALID, CBUS_CODE_COUNT, MHD_HTTP_BAD_REQUEST },
        { CBUS_STATUS_NOTFOUND, CBUS_CODE_COUNT, MHD_HTTP_NOT_FOUND },
        { CBUS_STATUS_FULL, CBUS_CODE_COUNT, MHD_HTTP_SERVICE_UNAVAILABLE },
        { CBUS_STATUS_UNAVAILABLE, CBUS_CODE_COUNT, MHD_HTTP_SERVICE_UNAVAILABLE },
        { CBUS_STATUS_ERROR, CBUS_CODE_NO_SPACE, MHD_HTTP_INSUFFICIENT_STORAGE },
        { CBUS_STATUS_ERROR, CBUS_CODE_COUNT, MHD_HTTP_INTERNAL_SERVER_ERROR },
    };
    failure->status = 0;
    //  A local reply has no body; a service's must decode.
    if (cbus_reply_is_local (reply) || reply->decoded)
        for (size_t index = 0; index < sizeof (s_statuses) / sizeof (s_statuses [0]); index++)
            if (!failure->status && streq (reply->status, s_statuses [index].word)
            &&  (s_statuses [index].code == CBUS_CODE_COUNT
              || s_statuses [index].code == reply->code))
                failure->status = s_statuses [index].status;
    if (failure->status) {
        failure->code = reply->code;
        if (*reply->reason)
            snprintf (failure->message, sizeof (failure->message), "%s", reply->reason);
        else {
            char word [sizeof (reply->status)];
            cbus_gw_log_safe (reply->status, word, sizeof (word));
            snprintf (failure->message, sizeof (failure->message), "chainbus-%s answered %s",
                      cbus_gw_service_name (call->service), word);
        }
    }
    else {
        failure->status = MHD_HTTP_BAD_GATEWAY;
        failure->code = CBUS_CODE_INTERNAL;
        snprintf (failure->message, sizeof (failure->message),
                  "chainbus-%s sent a reply that does not decode",
                  cbus_gw_service_name (call->service));
    }
}

void
cbus_gw_answer_kept (cbus_gw_request_t *request, const cbus_gw_failure_t *failure)
{
    s_answer_text (request, failure->status, failure->code, failure->message);
}

void
cbus_gw_answer_failure (cbus_gw_request_t *request, const cbus_call_t *call,
                        const cbus_reply_t *reply)
{
    cbus_gw_failure_t failure;
    cbus_gw_failure_of (call, reply, &failure);
    cbus_gw_answer_kept (request, &failure);
}

void
cbus_gw_answer_bad_reply (cbus_gw_request_t *request, const cbus_call_t *call,
                          const char *what, const char *reason)
{
    if (reason) {
        char text [CBUS_REASON_MAX];
        cbus_gw_log_safe (reason, text, sizeof (text));
        zsys_warning ("chainbus-%s sent %s: %s", cbus_gw_service_name (call->service), what, text);
    }
    cbus_gw_answer_error (request, MHD_HTTP_BAD_GATEWAY, CBUS_CODE_INTERNAL,
                          "chainbus-%s sent %s", cbus_gw_service_name (call->service), what);
}

int
cbus_gw_reply_decode (cbus_gw_request_t *request, const cbus_call_t *call,
                      const cbus_reply_t *reply, const cbus_msgdef_t *def, void *msg,
                      const char *what)
{
    char reason [CBUS_REASON_MAX];
    if (!cbus_reply_ok (reply)) {
        cbus_gw_answer_failure (request, call, reply);
        return -1;
    }
    if (cbus_msgdef_decode (def, cbus_reply_map (reply), msg, reason)) {
        cbus_gw_answer_bad_reply (request, call, what, reason);
        return -1;
    }
    return 0;
}

bool
cbus_gw_reply_is (const cbus_reply_t *reply, const char *status)
{
    return reply->decoded && streq (reply->status, status);
}

//  --------------------------------------------------------------------------
//  Requests

static cbus_gw_request_t *
s_request_new (cbus_gateway_t *self, struct MHD_Connection *connection,
               const char *url, const char *method)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) zmalloc (sizeof (cbus_gw_request_t));
    request->path = strndup (url ? url : "", CBUS_GW_PATH_MAX + 1);
    if (!request->path) {
        free (request);
        return NULL;
    }
    request->gateway = self;
    request->connection = connection;
    snprintf (request->method, sizeof (request->method), "%s", method ? method : "");
    request->file_fd = -1;
    request->started_us = zclock_usecs ();
    return request;
}

//  Free a request; cancels its calls so that their replies find nothing.
static void
s_request_destroy (cbus_gw_request_t **self_p)
{
    cbus_gw_request_t *self = *self_p;
    if (self) {
        for (int index = 0; index < self->outstanding; index++)
            cbus_calls_cancel (self->gateway->calls, self->calls [index]);
        if (self->file_fd >= 0)
            close (self->file_fd);
        cbus_gw_stream_destroy (&self->stream);
        if (self->state && self->state_free)
            self->state_free (self->state);
        cbus_buf_free (&self->body);
        cbus_buf_free (&self->out);
        free (self->path);
        free (self);
        *self_p = NULL;
    }
}

void
cbus_gw_request_forget (cbus_gw_request_t *request, uint64_t id)
{
    for (int index = 0; index < request->outstanding; index++)
        if (request->calls [index] == id) {
            request->calls [index] = request->calls [--request->outstanding];
            return;
        }
}

//  The guard's record of a request's connection, or NULL.
static cbus_gw_conn_t *
s_conn_of (struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? (cbus_gw_conn_t *) info->socket_context : NULL;
}

void
cbus_gw_request_sent (cbus_gw_request_t *request, uint64_t pos)
{
    cbus_gw_guard_sent (request->gateway->guard, s_conn_of (request->connection), pos,
                        cbus_mono_ms ());
}

void
cbus_gw_request_settle (cbus_gw_request_t *request)
{
    if (request->suspended && request->outstanding == 0) {
        request->suspended = false;
        MHD_resume_connection (request->connection);
    }
}

void
cbus_gw_request_suspend (cbus_gw_request_t *request)
{
    request->suspended = true;
    //  A stream waiting for its next page: the client is not slow.
    cbus_gw_guard_pause (request->gateway->guard, s_conn_of (request->connection),
                         cbus_mono_ms ());
    MHD_suspend_connection (request->connection);
}

//  --------------------------------------------------------------------------
//  Routing

//  Whether a request may use an admin route: always when no admin token
//  is set; otherwise with "Authorization: Bearer <token>". The hashes of
//  the two tokens are compared in constant time, so neither the token nor
//  its length shows in the answer's timing.
static bool
s_admin_allowed (cbus_gateway_t *self, struct MHD_Connection *connection)
{
    if (!self->admin_token_set)
        return true;
    const char *header = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_AUTHORIZATION);
    if (!header || strncasecmp (header, "Bearer ", 7) != 0)
        return false;
    const char *token = header + 7;
    while (*token == ' ')
        token++;
    uint8_t hash [crypto_generichash_BYTES];
    crypto_generichash (hash, sizeof (hash), (const uint8_t *) token, strlen (token), NULL, 0);
    return sodium_memcmp (hash, self->admin_token_hash, sizeof (hash)) == 0;
}

//  The route for a path: exact paths first, then prefixes.
//  What a prefix route takes after its prefix names one item (an id, a
//  peer address): no '/' in it, but for a leading "scheme://" (an
//  address), so that /nodes/register/x is no route's (404, not 405).
static bool
s_one_item (const char *rest)
{
    const char *scheme = strstr (rest, "://");
    if (scheme && strspn (rest, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
                  == (size_t) (scheme - rest))
        rest = scheme + 3;
    return strchr (rest, '/') == NULL;
}

static const cbus_gw_route_t *
s_route_find (const char *path)
{
    for (size_t table = 0; table < S_TABLES; table++)
        for (const cbus_gw_route_t *route = s_tables [table]; route->path; route++)
            if (streq (path, route->path))
                return route;
    for (size_t table = 0; table < S_TABLES; table++)
        for (const cbus_gw_route_t *route = s_tables [table]; route->path; route++) {
            size_t size = strlen (route->path);
            if (route->path [size - 1] == '/' && strncmp (path, route->path, size) == 0
            &&  s_one_item (path + size))
                return route;
        }
    return NULL;
}

//  A query parameter given twice is refused rather than taken once:
//  which one a proxy or a cache in front reads is anybody's guess.
typedef struct {
    const char *keys [32];          //  Parameters seen so far
    size_t count;
    const char *doubled;            //  The first one given twice
} s_query_scan_t;

static enum MHD_Result
s_query_scan (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    s_query_scan_t *scan = (s_query_scan_t *) cls;
    (void) kind;
    (void) value;
    for (size_t index = 0; index < scan->count; index++)
        if (streq (scan->keys [index], key)) {
            scan->doubled = key;
            return MHD_NO;
        }
    if (scan->count == sizeof (scan->keys) / sizeof (scan->keys [0]))
        return MHD_NO;
    scan->keys [scan->count++] = key;
    return MHD_YES;
}

//  0, or -1 with a 400 answered when the query has a parameter twice or
//  more parameters than any route takes.
static int
s_query_check (cbus_gw_request_t *request)
{
    s_query_scan_t scan = { .count = 0 };
    MHD_get_connection_values (request->connection, MHD_GET_ARGUMENT_KIND, s_query_scan, &scan);
    if (scan.doubled) {
        char name [64];
        cbus_gw_log_safe (scan.doubled, name, sizeof (name));
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                              "Query parameter %s is given more than once", name);
        return -1;
    }
    if (scan.count == sizeof (scan.keys) / sizeof (scan.keys [0])) {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                              "Too many query parameters: at most %zu",
                              sizeof (scan.keys) / sizeof (scan.keys [0]) - 1);
        return -1;
    }
    return 0;
}

static enum MHD_Result
s_frame_header (void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                const char *value, size_t value_size)
{
    (void) kind;
    cbus_gw_frame_t *frame = (cbus_gw_frame_t *) cls;
    return cbus_gw_frame_header (frame, key, key_size, value, value_size) ? MHD_NO : MHD_YES;
}

//  Strict framing (cbus_gw_frame.h): -1 once a refusal is decided.
//  method and version are MHD's own pointers, into its read buffer.
static int
s_request_frame (cbus_gw_request_t *request, const char *method, const char *version)
{
    cbus_gw_frame_t frame;
    cbus_gw_frame_init (&frame);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (request->connection, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (info && method && version)
        cbus_gw_frame_layout (&frame, version, method, info->header_size);
    MHD_get_connection_values_n (request->connection, MHD_HEADER_KIND, s_frame_header, &frame);
    if (cbus_gw_frame_end (&frame) == 0)
        return 0;
    cbus_gw_answer_error (request, frame.status, CBUS_CODE_BAD_FRAMING, "%s", frame.reason);
    request->quiet = true;
    cbus_gw_guard_count (request->gateway->guard, CBUS_GW_REFUSED_FRAMING);
    return -1;
}

//  First call of a request: decide its route, or its answer if it has
//  none (404, 405, 413, a static file).
static void
s_request_route (cbus_gw_request_t *request, const char *method, const char *version)
{
    cbus_gateway_t *self = request->gateway;
    struct MHD_Connection *connection = request->connection;
    const char *length = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *encoding = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_TRANSFER_ENCODING);
    uint64_t declared = length ? strtoull (length, NULL, 10) : 0;
    request->has_body = declared > 0 || encoding;
    cbus_gw_guard_head (self->guard, s_conn_of (connection), request->has_body,
                        cbus_mono_ms ());
    if (s_request_frame (request, method, version))
        return;
    if (strlen (request->path) > CBUS_GW_PATH_MAX) {
        cbus_gw_answer_error (request, MHD_HTTP_NOT_FOUND, CBUS_CODE_NOT_FOUND, "Not found");
        return;
    }
    if (s_query_check (request))
        return;
    const cbus_gw_route_t *route = s_route_find (request->path);
    if (!route)
        cbus_gw_www_answer (request);
    else
    if (!streq (request->method, route->method)) {
        request->allow = route->method;
        cbus_gw_answer_error (request, MHD_HTTP_METHOD_NOT_ALLOWED, CBUS_CODE_METHOD,
                              "Method not allowed");
    }
    else
    if (route->admin && !s_admin_allowed (self, connection)) {
        request->authenticate = true;
        cbus_gw_answer_error (request, MHD_HTTP_UNAUTHORIZED, CBUS_CODE_UNAUTHORIZED,
                              "%s needs this node's admin token: Authorization: Bearer <token> "
                              "(the token is in the file gateway/admin_token_file names)",
                              route->path);
    }
    else
    if (declared > self->max_body)
        cbus_gw_answer_error (request, MHD_HTTP_CONTENT_TOO_LARGE, CBUS_CODE_TOO_LARGE,
                              "Body too large: at most %" PRIu64 " bytes", self->max_body);
    else
        request->route = route;
}

//  A piece of body arrived. Returns MHD_NO to cut the connection.
static enum MHD_Result
s_request_take_body (cbus_gw_request_t *request, const char *data, size_t size)
{
    cbus_gateway_t *self = request->gateway;
    request->body_seen += size;
    cbus_gw_guard_body (self->guard, s_conn_of (request->connection), size);
    if (request->body_seen > self->max_body) {
        if (!request->status)
            cbus_gw_answer_error (request, MHD_HTTP_CONTENT_TOO_LARGE, CBUS_CODE_TOO_LARGE,
                                  "Body too large: at most %" PRIu64 " bytes", self->max_body);
        cbus_buf_free (&request->body);
        return request->body_seen > self->max_body + S_DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (request->route && request->route->takes_body && !request->status)
        cbus_buf_append (&request->body, data, size);
    return MHD_YES;
}

//  The response for a decided answer: a stream, a file or a JSON body;
//  *size_p its size, or CBUS_GW_STREAMED.
static struct MHD_Response *
s_request_response (cbus_gw_request_t *request, const char **type_p, uint64_t *size_p)
{
    struct MHD_Response *response = NULL;
    *type_p = "application/json";
    *size_p = CBUS_GW_STREAMED;
    if (request->stream && request->status == MHD_HTTP_OK)
        response = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, S_STREAM_BLOCK,
                                                      cbus_gw_stream_read, request, NULL);
    else
    if (request->reader && request->status == MHD_HTTP_OK) {
        response = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, S_STREAM_BLOCK,
                                                      request->reader, request, NULL);
        if (request->out_type)
            *type_p = request->out_type;
    }
    else
    if (request->file_fd >= 0 && request->status == MHD_HTTP_OK) {
        *size_p = request->file_size;
        response = MHD_create_response_from_fd64 (request->file_size, request->file_fd);
        if (response)
            request->file_fd = -1;      //  The response closes it
        *type_p = request->file_type;
    }
    else {
        if (request->out_type && request->status == MHD_HTTP_OK)
            *type_p = request->out_type;
        size_t size;
        char *data = cbus_buf_detach (&request->out, &size);
        *size_p = size;
        response = MHD_create_response_from_buffer (size, data, MHD_RESPMEM_MUST_FREE);
        if (!response)
            free (data);
    }
    return response;
}

//  Hand the answer to MHD; logs answers that are not 2xx.
static enum MHD_Result
s_request_queue (cbus_gw_request_t *request)
{
    if (request->status == 0)
        cbus_gw_answer_error (request, MHD_HTTP_INTERNAL_SERVER_ERROR, CBUS_CODE_INTERNAL,
                              "Internal error: no answer");
    const char *type;
    uint64_t size;
    struct MHD_Response *response = s_request_response (request, &type, &size);
    if (!response)
        return MHD_NO;
    //  From now on the answer must be read in time (a client that
    //  pipelines requests and never reads holds nothing).
    cbus_gw_guard_answer (request->gateway->guard, s_conn_of (request->connection), size,
                          cbus_mono_ms ());
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (request->allow)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, request->allow);
    if (request->authenticate)
        MHD_add_response_header (response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                 "Bearer realm=\"chainbus\"");
    if (request->no_store)
        MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response (request->connection, request->status, response);
    MHD_destroy_response (response);
    request->queued = true;
    cbus_gw_metrics_http (request);
    cbus_gateway_t *self = request->gateway;
    if (request->status >= 300 && !request->quiet
    &&  self->error_lines++ >= CBUS_GW_ERROR_LINES)
        self->errors_unlogged++;
    else
    if (request->status >= 300 && !request->quiet) {
        char path [128];
        cbus_gw_log_safe (request->path, path, sizeof (path));
        zsys_info ("http status=%u method=%s path=%s message=\"%s\"", request->status,
                   request->method, path, request->message);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  MHD callbacks

enum MHD_Result
cbus_gw_access (void *cls, struct MHD_Connection *connection, const char *url,
                const char *method, const char *version, const char *upload_data,
                size_t *upload_data_size, void **con_cls)
{
    cbus_gateway_t *self = (cbus_gateway_t *) cls;
    cbus_gw_request_t *request = (cbus_gw_request_t *) *con_cls;
    if (!request) {
        request = s_request_new (self, connection, url, method);
        if (!request)
            return MHD_NO;              //  Out of memory: drop the connection
        *con_cls = request;
        s_request_route (request, method, version);
        //  A refusal of a request with a body, or of its framing, goes
        //  at once: the client need not send the body, and the
        //  connection closes after it (nothing after it is read).
        if (request->status && request->status != MHD_HTTP_OK
        &&  (request->has_body || request->quiet))
            return s_request_queue (request);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        return s_request_take_body (request, upload_data, size);
    }
    if (request->queued)
        return MHD_YES;
    if (!request->started)
        cbus_gw_guard_working (self->guard, s_conn_of (connection));
    if (!request->status && !request->started) {
        request->started = true;
        request->route->start (request);
    }
    if (request->outstanding) {
        cbus_gw_request_suspend (request);
        return MHD_YES;
    }
    return s_request_queue (request);
}

void
cbus_gw_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
                   enum MHD_RequestTerminationCode code)
{
    cbus_gateway_t *self = (cbus_gateway_t *) cls;
    cbus_gw_request_t *request = (cbus_gw_request_t *) *con_cls;
    cbus_gw_guard_done (self->guard, s_conn_of (connection), cbus_mono_ms ());
    if (!request)
        return;
    if (code != MHD_REQUEST_TERMINATED_COMPLETED_OK && self->verbose) {
        char path [128];
        cbus_gw_log_safe (request->path, path, sizeof (path));
        zsys_debug ("http request ended early path=%s code=%d", path, (int) code);
    }
    s_request_destroy (&request);
    *con_cls = NULL;
}

//  Decode %HH in a URL path in place, as MHD does, except %00: a NUL
//  would cut our C string short and make "/chain%00" read as "/chain".
//  It stays as the three characters, which match no route or file.
size_t
cbus_gw_unescape (void *cls, struct MHD_Connection *connection, char *text)
{
    (void) cls;
    (void) connection;
    char *out = text;
    for (const char *in = text; *in; ) {
        int high, low;
        if (in [0] == '%' && (high = cbus_hex_digit (in [1])) >= 0
        &&  (low = cbus_hex_digit (in [2])) >= 0 && (high | low)) {
            *out++ = (char) (high << 4 | low);
            in += 3;
        }
        else
            *out++ = *in++;
    }
    *out = 0;
    return (size_t) (out - text);
}

void
cbus_gw_mhd_log (void *cls, const char *format, va_list args)
{
    cbus_gateway_t *self = (cbus_gateway_t *) cls;
    char line [512];
    vsnprintf (line, sizeof (line), format, args);
    size_t size = strlen (line);
    while (size > 0 && (line [size - 1] == '\n' || line [size - 1] == '\r'))
        line [--size] = 0;
    //  MHD speaks of each client it drops; only startup errors matter,
    //  and refusals at accept, which are counted (one line for many).
    //  The wording is that of the pinned libmicrohttpd, Debian's 0.9.75
    //  ("Server reached connection limit. Closing inbound connection."),
    //  logged when it closes a connection just accepted beyond the
    //  per-address cap (in epoll mode it stops accepting at the total
    //  cap, so that one is not seen here). Check it again when
    //  libmicrohttpd is upgraded, or `capped` stays 0
    //  (test_one_address_is_capped then fails).
    if (strstr (line, "reached connection limit"))
        cbus_gw_guard_count (self->guard, CBUS_GW_REFUSED_CAPPED);
    if (!self->daemon)
        zsys_error ("http: %s", line);
    else
    if (self->verbose)
        zsys_debug ("http: %s", line);
}

//  A client's address group as text, without the port ("" when it is
//  neither IPv4 nor IPv6): an IPv4 address, or an IPv6 /64 (one host or
//  site holds a whole /64, and would otherwise be a fresh address with
//  each of its 2^64 addresses). Connections of one group share it.
static void
s_address_text (const struct sockaddr *address, char *out, size_t size)
{
    if (address->sa_family == AF_INET)
        inet_ntop (AF_INET, &((const struct sockaddr_in *) address)->sin_addr, out,
                   (socklen_t) size);
    else
    if (address->sa_family == AF_INET6) {
        struct in6_addr prefix = ((const struct sockaddr_in6 *) address)->sin6_addr;
        memset (prefix.s6_addr + 8, 0, 8);
        inet_ntop (AF_INET6, &prefix, out, (socklen_t) size);
    }
}

//  A connection opened or closed: the guard keeps its deadlines.
void
cbus_gw_notify_connection (void *cls, struct MHD_Connection *connection,
                           void **socket_context, enum MHD_ConnectionNotificationCode code)
{
    cbus_gateway_t *self = (cbus_gateway_t *) cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        //  A bounded send buffer (gateway/send_buffer_bytes): otherwise the
        //  kernel takes megabytes of answers that a client never reads
        //  (its buffer grows to tcp_wmem's maximum), the answers look
        //  sent, and the guard cannot see that they are not read. It also
        //  bounds a stream's bytes in flight: 128 KiB per round trip with
        //  the default (2.6 MB/s at 50 ms).
        int sndbuf = self->send_buffer;
        if (info && sndbuf > 0)
            setsockopt (info->connect_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof (sndbuf));
        char address [INET6_ADDRSTRLEN] = "";
        const union MHD_ConnectionInfo *client =
            MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (client && client->client_addr)
            s_address_text (client->client_addr, address, sizeof (address));
        *socket_context = info ? cbus_gw_guard_open (self->guard, info->connect_fd, address,
                                                     cbus_mono_ms ()) : NULL;
    }
    else {
        cbus_gw_guard_close (self->guard, (cbus_gw_conn_t *) *socket_context);
        *socket_context = NULL;
    }
}
