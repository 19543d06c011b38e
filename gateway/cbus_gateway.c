/*  =========================================================================
    cbus_gateway - the HTTP gateway: the node's JSON API and dashboard

    How a request flows. libmicrohttpd (MHD) calls s_access several times
    per request. The first call only routes it (MHD 0.9.75 closes the
    connection when a response is queued on the first call, see
    MEASURED.md), except to refuse a body up front (413, or 404/405 on a
    request carrying a body), where closing is what we want. Body calls
    collect the body. The last call starts the route, which either answers
    at once or sends bus requests (s_call) and suspends the connection.
    Each reply runs the route's handler for its tag (s_dispatch), which
    answers or asks further; when no call is left in flight the connection
    is resumed, and MHD calls s_access again, which queues the answer.

    A call that cannot be sent (the service's socket is not connected: we
    set ZMQ_IMMEDIATE, so a stopped service is known at once; or its
    queue is full) runs its handler at once as UNREACHABLE; a call not
    answered in time runs it as TIMEOUT (s_sweep). Either way every
    handler runs exactly once per call, and an HTTP request whose client
    went away (s_completed) cancels its calls first, so that a late reply
    never touches a freed connection.

    Streams (GET /chain, GET /nodes/resolve) answer 200 with a chunked
    body produced by s_stream_read: when its buffer is empty it asks the
    chainstore for the next page, suspends and returns 0; the page's
    reply fills the buffer and resumes. Memory per stream is one page.
    =========================================================================
*/
#include "cbus_gateway.h"
#include "cbus.h"
#include "cbus_heartbeats.h"
#include "cbus_www.h"
#include <microhttpd.h>
#include <netdb.h>
#include <sodium.h>

//  The services the gateway asks, one DEALER each.
enum { S_CHAINSTORE, S_MEMPOOL, S_PEERSYNC, S_SERVICES };
static const char *s_service_names [S_SERVICES] = { "chainstore", "mempool", "peersync" };

//  Most calls one HTTP request has in flight at once (GET /status: 3).
#define S_MAX_CALLS         4
//  Bytes of blocks asked for per page of a streamed chain.
#define S_PAGE_BYTES        (256 * 1024)
//  Block size hint for MHD when pulling a stream.
#define S_STREAM_BLOCK      (32 * 1024)
//  A stream buffer grown past this is freed between pages.
#define S_STREAM_KEEP       (1024 * 1024)
//  Seconds an idle keep-alive connection is kept open.
#define S_IDLE_TIMEOUT_S    60
//  Bytes of an over-long body read and dropped before the connection
//  is cut (so that a 413 can still reach a client that sent no
//  Content-Length, but nobody can stream to us forever).
#define S_DISCARD_MAX       (16 * 1024 * 1024)
//  Most replies or events handled per wake-up before serving HTTP again.
#define S_BATCH             1024
//  Longest URL path we keep; longer ones match no route.
#define S_PATH_MAX          1024
//  Sources silent this long are forgotten by the heartbeat table.
#define S_HEARTBEAT_FORGET_MS (10 * 60 * 1000)

//  What a reply is for: the tag of each call.
typedef enum {
    TAG_TX_SUBMIT,          //  POST /transactions/new: TX.SUBMIT
    TAG_TX_GET_POOL,        //  GET /transactions/<txid>: mempool TX.GET
    TAG_TX_GET_CHAIN,       //  then chainstore TX.GET
    TAG_MINE,               //  GET /mine: MINE
    TAG_MINE_BLOCK,         //  then BLOCK.GET of the new block
    TAG_BLOCK_GET,          //  GET /blocks/<id>
    TAG_RESOLVE,            //  GET /nodes/resolve: RESOLVE, then a stream
    TAG_STREAM_TIP,         //  Pin the tip before streaming the chain
    TAG_STREAM_PAGE,        //  One page of a streamed chain
    TAG_PEER_ADD,           //  POST /nodes/register
    TAG_PEER_LIST,          //  GET /nodes
    TAG_NODE_INFO,          //  GET /node/info
    TAG_HISTORY,            //  GET /transactions?user=|key=
    TAG_STATUS_TIP,         //  GET /status asks three services at once
    TAG_STATUS_POOL,
    TAG_STATUS_PEERS,
} s_tag_t;

//  How a call ended.
typedef enum {
    S_REPLY_OK,
    S_REPLY_INVALID,        //  The service's own status words...
    S_REPLY_NOTFOUND,
    S_REPLY_FULL,
    S_REPLY_UNAVAILABLE,
    S_REPLY_ERROR,
    S_REPLY_BAD,            //  A reply we cannot read (502)
    S_REPLY_TIMEOUT,        //  No reply in time (503)
    S_REPLY_UNREACHABLE,    //  Could not send: service not connected (503)
    S_REPLY_STOPPING,       //  The gateway is shutting down (503)
    S_REPLY_RESTARTED,      //  The service restarted before answering (503)
} s_outcome_t;

typedef struct {
    s_outcome_t outcome;            //  How the call ended
    int service;                    //  Who was asked
    const msgpack_object *map;      //  Reply body, a map, or NULL
    char reason [CBUS_REASON_MAX];  //  Readable sentence when not OK
} s_reply_t;

//  A chain being streamed as the body of a 200 answer.
typedef struct {
    cbus_buf_t text;                //  JSON not yet handed to MHD
    size_t offset;                  //  Bytes of text already handed
    uint64_t next;                  //  Height of the next block to send
    uint64_t to;                    //  Last height sent (the pinned tip)
    uint8_t last_hash [CBUS_HASH_BYTES];  //  Hash of block next - 1
    bool ended;                     //  Closing text is in the buffer
    bool failed;                    //  A page failed: end with an error
} s_stream_t;

//  What GET /status has gathered so far.
typedef struct {
    int left;                       //  Replies still expected
    bool up [S_SERVICES];           //  The service answered at all
    bool ok [S_SERVICES];           //  ... and answered OK
    char network [64];              //  From TIP, or the configuration
    uint64_t height;                //  TIP
    uint8_t tip [CBUS_HASH_BYTES];
    uint8_t work [CBUS_HASH_BYTES];
    uint64_t pool_size;             //  MEMPOOL.INFO
    uint64_t pool_bytes;
    uint64_t peers;                 //  PEER.LIST: peers, a redundant link not counted
    uint64_t linked;                //  ... of them linked
    char sync [512];                //  ... its "sync" object as JSON
} s_status_t;

typedef struct _s_request_t s_request_t;
typedef void (s_route_fn) (s_request_t *request);

typedef struct {
    const char *path;               //  Exact path, or a prefix if it ends in '/'
    const char *method;             //  The method served
    bool takes_body;                //  Collect the request body for it
    bool admin;                     //  Needs the admin token, if one is set
    s_route_fn *start;              //  Starts the work once the body is in
} s_route_t;

typedef struct _cbus_gateway_t cbus_gateway_t;

//  One HTTP request, from its first access-handler call to MHD's
//  completion notice (s_completed), which frees it.
struct _s_request_t {
    cbus_gateway_t *gateway;        //  Owner
    struct MHD_Connection *connection;  //  Borrowed from MHD
    char *path;                     //  URL path, query string excluded
    char method [16];               //  HTTP method (truncated)
    const s_route_t *route;         //  Matched route, NULL for others
    bool has_body;                  //  The request announced a body
    cbus_buf_t body;                //  Body collected for the route
    uint64_t body_seen;             //  Body bytes received so far
    bool started;                   //  The route's work has begun
    bool suspended;                 //  The connection is suspended
    bool queued;                    //  The answer went to MHD
    int outstanding;                //  Calls in flight
    uint64_t calls [S_MAX_CALLS];   //  Their ids
    //  The answer
    unsigned int status;            //  HTTP status; 0 until decided
    cbus_buf_t out;                 //  JSON body (when not a stream or file)
    char message [CBUS_REASON_MAX]; //  Error message, for the log line
    const char *allow;              //  Allow header of a 405
    bool authenticate;              //  WWW-Authenticate header of a 401
    int file_fd;                    //  Static file to send, or -1
    uint64_t file_size;             //  Its size
    const char *file_type;          //  Its Content-Type (borrowed)
    s_stream_t *stream;             //  Chain being streamed, or NULL
    //  Route scratch
    uint8_t key [CBUS_HASH_BYTES];  //  The txid submitted or looked up
    s_reply_t first_failure;        //  A mempool failure kept for later
    bool have_first_failure;        //  ... is set
    s_status_t *info;               //  GET /status, or NULL
};

struct _cbus_gateway_t {
    cbus_config_t *config;          //  Borrowed from the actor's caller
    zsock_t *pipe;                  //  Actor pipe
    zloop_t *loop;                  //  Drives everything below
    struct MHD_Daemon *daemon;      //  HTTP server, external epoll mode
    zmq_pollitem_t mhd_item;        //  MHD's epoll fd, polled by the loop
    int mhd_timer;                  //  One-shot timer for MHD, or -1
    int64_t mhd_timer_due;          //  When it fires (zclock_mono)
    zsock_t *dealers [S_SERVICES];  //  One DEALER per service
    zsock_t *sub;                   //  Heartbeats from the bus
    cbus_pub_t *pub;                //  Our own heartbeat
    cbus_calls_t *calls;            //  Bus requests in flight
    cbus_heartbeats_t *heartbeats;  //  Who is alive
    uint64_t boots [S_SERVICES];    //  Each service's boot id, 0 if unheard
    int64_t boot_heard [S_SERVICES];    //  When that boot was last heard
    cbus_www_t *www;                //  Dashboard files
    int64_t request_timeout_ms;     //  gateway/request_timeout_ms
    int64_t mine_timeout_ms;        //  gateway/mine_timeout_ms
    int64_t resolve_timeout_ms;     //  gateway/resolve_timeout_ms
    uint64_t max_body;              //  gateway/max_body
    bool admin_token_set;           //  gateway/admin_token_file was given
    uint8_t admin_token_hash [crypto_generichash_BYTES];    //  ... its token's hash
    bool verbose;                   //  node/verbose: log debug lines
    bool stopping;                  //  Shutting down: no new calls
    unsigned int heartbeat_ticks;   //  Heartbeats sent, for pruning
};

static void s_dispatch (s_request_t *request, int tag, s_reply_t *reply);
static void s_mhd_run (cbus_gateway_t *self);

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

//  Copy for a log line: printable ASCII only, bounded.
static void
s_log_safe (const char *text, char *out, size_t size)
{
    size_t index = 0;
    for (; text && text [index] && index + 1 < size; index++) {
        char c = text [index];
        out [index] = (c < 0x20 || c > 0x7e || c == '"') ? '?' : c;
    }
    out [index] = 0;
}

static void
s_write_hex (cbus_buf_t *out, const uint8_t *hash)
{
    char hex [CBUS_HASH_HEX];
    cbus_buf_printf (out, "\"%s\"", cbus_hash_hex (hash, hex));
}

//  --------------------------------------------------------------------------
//  Answers

//  Answer {"message": text} with this status.
static void
s_answer_message (s_request_t *request, unsigned int status, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_answer_message (s_request_t *request, unsigned int status, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (request->message, sizeof (request->message), format, args);
    va_end (args);
    s_utf8_fix (request->message);
    request->status = status;
    cbus_buf_reset (&request->out);
    cbus_json_write_message (&request->out, request->message);
    cbus_buf_puts (&request->out, "}");
}

//  Answer a call that did not end OK, with the status its outcome means.
static void
s_answer_failure (s_request_t *request, const s_reply_t *reply)
{
    static const unsigned int s_statuses [] = {
        [S_REPLY_OK] = MHD_HTTP_INTERNAL_SERVER_ERROR,
        [S_REPLY_INVALID] = MHD_HTTP_BAD_REQUEST,
        [S_REPLY_NOTFOUND] = MHD_HTTP_NOT_FOUND,
        [S_REPLY_FULL] = MHD_HTTP_SERVICE_UNAVAILABLE,
        [S_REPLY_UNAVAILABLE] = MHD_HTTP_SERVICE_UNAVAILABLE,
        [S_REPLY_ERROR] = MHD_HTTP_INTERNAL_SERVER_ERROR,
        [S_REPLY_BAD] = MHD_HTTP_BAD_GATEWAY,
        [S_REPLY_TIMEOUT] = MHD_HTTP_SERVICE_UNAVAILABLE,
        [S_REPLY_UNREACHABLE] = MHD_HTTP_SERVICE_UNAVAILABLE,
        [S_REPLY_STOPPING] = MHD_HTTP_SERVICE_UNAVAILABLE,
        [S_REPLY_RESTARTED] = MHD_HTTP_SERVICE_UNAVAILABLE,
    };
    s_answer_message (request, s_statuses [reply->outcome], "%s", reply->reason);
}

//  Answer 502: a service said OK with a body we cannot use.
static void
s_answer_bad_reply (s_request_t *request, const s_reply_t *reply, const char *what)
{
    s_answer_message (request, MHD_HTTP_BAD_GATEWAY, "chainbus-%s sent %s",
                      s_service_names [reply->service], what);
}

//  Fill reply->reason for an outcome the gateway decided itself.
static void
s_reply_reason (s_reply_t *reply)
{
    const char *name = s_service_names [reply->service];
    switch (reply->outcome) {
        case S_REPLY_TIMEOUT:
            snprintf (reply->reason, sizeof (reply->reason),
                      "chainbus-%s did not answer in time", name);
            break;
        case S_REPLY_UNREACHABLE:
            snprintf (reply->reason, sizeof (reply->reason),
                      "chainbus-%s is not reachable", name);
            break;
        case S_REPLY_STOPPING:
            snprintf (reply->reason, sizeof (reply->reason), "chainbus-gateway is stopping");
            break;
        case S_REPLY_RESTARTED:
            snprintf (reply->reason, sizeof (reply->reason),
                      "chainbus-%s restarted before answering; the request may not have "
                      "been carried out: try again", name);
            break;
        default:
            snprintf (reply->reason, sizeof (reply->reason),
                      "chainbus-%s sent a reply that does not decode", name);
            break;
    }
}

//  --------------------------------------------------------------------------
//  Requests

static s_request_t *
s_request_new (cbus_gateway_t *self, struct MHD_Connection *connection,
               const char *url, const char *method)
{
    s_request_t *request = (s_request_t *) zmalloc (sizeof (s_request_t));
    request->gateway = self;
    request->connection = connection;
    request->path = strndup (url? url: "", S_PATH_MAX + 1);
    snprintf (request->method, sizeof (request->method), "%s", method ? method : "");
    request->file_fd = -1;
    return request;
}

static void
s_stream_destroy (s_stream_t **self_p)
{
    s_stream_t *self = *self_p;
    if (self) {
        cbus_buf_free (&self->text);
        free (self);
        *self_p = NULL;
    }
}

//  Free a request; cancels its calls so that their replies find nothing.
static void
s_request_destroy (s_request_t **self_p)
{
    s_request_t *self = *self_p;
    if (self) {
        for (int index = 0; index < self->outstanding; index++)
            cbus_calls_cancel (self->gateway->calls, self->calls [index]);
        if (self->file_fd >= 0)
            close (self->file_fd);
        s_stream_destroy (&self->stream);
        cbus_buf_free (&self->body);
        cbus_buf_free (&self->out);
        free (self->info);
        free (self->path);
        free (self);
        *self_p = NULL;
    }
}

//  A call of this request ended: forget its id.
static void
s_request_forget (s_request_t *request, uint64_t id)
{
    for (int index = 0; index < request->outstanding; index++)
        if (request->calls [index] == id) {
            request->calls [index] = request->calls [--request->outstanding];
            return;
        }
}

//  After a reply: once nothing is in flight, let MHD carry on.
static void
s_request_settle (s_request_t *request)
{
    if (request->suspended && request->outstanding == 0) {
        request->suspended = false;
        MHD_resume_connection (request->connection);
    }
}

static void
s_request_suspend (s_request_t *request)
{
    request->suspended = true;
    MHD_suspend_connection (request->connection);
}

//  Send a request to a service on behalf of an HTTP request. If it
//  cannot be sent, the handler for tag runs at once (UNREACHABLE).
static void
s_call (s_request_t *request, int service, const char *command,
        const void *body, size_t size, int tag, int64_t timeout_ms)
{
    cbus_gateway_t *self = request->gateway;
    assert (request->outstanding < S_MAX_CALLS);
    s_reply_t reply = { .service = service, .outcome = S_REPLY_STOPPING };
    if (!self->stopping) {
        uint64_t id = cbus_calls_add (self->calls, request, service, NULL,
                                      (void *) (intptr_t) tag, timeout_ms, cbus_mono_ms ());
        if (cbus_request_send (self->dealers [service], command, id, body, size) == 0) {
            request->calls [request->outstanding++] = id;
            return;
        }
        cbus_calls_cancel (self->calls, id);
        reply.outcome = S_REPLY_UNREACHABLE;
        if (self->verbose)
            zsys_debug ("bus send failed service=%s command=%s errno=%s",
                        s_service_names [service], command, zmq_strerror (zmq_errno ()));
    }
    s_reply_reason (&reply);
    s_dispatch (request, tag, &reply);
}

//  A body of one key and one value, packed into buf.
static void
s_pack_kv_hash (cbus_buf_t *buf, const char *key, const uint8_t *hash)
{
    msgpack_packer pk;
    cbus_packer_init (&pk, buf);
    msgpack_pack_map (&pk, 1);
    cbus_pack_kv_bin (&pk, key, hash, CBUS_HASH_BYTES);
}

//  --------------------------------------------------------------------------
//  Streams

static s_stream_t *
s_stream_new (void)
{
    return (s_stream_t *) zmalloc (sizeof (s_stream_t));
}

static void
s_stream_fail (s_request_t *request, const char *reason)
{
    char path [128];
    s_log_safe (request->path, path, sizeof (path));
    zsys_warning ("http stream ended early path=%s height=%" PRIu64 " reason=\"%s\"",
                  path, request->stream->next, reason);
    request->stream->failed = true;
}

//  The header of stored block bytes. Our blocks are encoded canonically,
//  the map's first key being "header" with a 124-byte bin, so it is
//  found without unpacking the transactions; other encodings take the
//  long way. Returns 0, or -1 if there is no valid header.
static int
s_block_header (const uint8_t *data, size_t size, cbus_header_t *header)
{
    static const uint8_t s_prefix [] = {
        0x82, 0xa6, 'h', 'e', 'a', 'd', 'e', 'r', 0xc4, CBUS_HEADER_BYTES
    };
    if (size >= sizeof (s_prefix) + CBUS_HEADER_BYTES
    &&  memcmp (data, s_prefix, sizeof (s_prefix)) == 0)
        return cbus_header_decode (header, data + sizeof (s_prefix), CBUS_HEADER_BYTES);

    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    const uint8_t *bytes;
    size_t bytes_size;
    int rc = -1;
    if (msgpack_unpack_next (&unpacked, (const char *) data, size, &offset) == MSGPACK_UNPACK_SUCCESS
    &&  cbus_msg_get_bin (&unpacked.data, "header", &bytes, &bytes_size) == 0)
        rc = cbus_header_decode (header, bytes, bytes_size);
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

//  Pull callback of a streamed chain (MHD_ContentReaderCallback).
static ssize_t
s_stream_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    (void) pos;
    s_request_t *request = (s_request_t *) cls;
    s_stream_t *stream = request->stream;
    while (stream->offset == stream->text.size) {
        if (stream->failed)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (stream->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        stream->offset = 0;
        if (stream->text.alloc > S_STREAM_KEEP)
            cbus_buf_free (&stream->text);
        cbus_buf_reset (&stream->text);
        if (stream->next <= stream->to) {
            cbus_buf_t body = {0};
            msgpack_packer pk;
            cbus_packer_init (&pk, &body);
            msgpack_pack_map (&pk, 3);
            cbus_pack_kv_u64 (&pk, "from", stream->next);
            cbus_pack_kv_u64 (&pk, "to", stream->to);
            cbus_pack_kv_u64 (&pk, "max_bytes", S_PAGE_BYTES);
            s_call (request, S_CHAINSTORE, CBUS_CMD_CHAIN_PAGE, body.data, body.size,
                    TAG_STREAM_PAGE, request->gateway->request_timeout_ms);
            cbus_buf_free (&body);
            if (request->outstanding) {
                s_request_suspend (request);
                return 0;
            }
        }
        else {
            cbus_buf_printf (&stream->text, "], \"length\": %" PRIu64 "}", stream->to + 1);
            stream->ended = true;
        }
    }
    size_t size = stream->text.size - stream->offset;
    if (size > max)
        size = max;
    memcpy (buf, stream->text.data + stream->offset, size);
    stream->offset += size;
    return (ssize_t) size;
}

//  A page of blocks arrived: append them as JSON. Checks that the blocks
//  follow one another, so that a reorganisation during the stream ends
//  it with an error rather than sending something that is not a chain.
static void
s_on_stream_page (s_request_t *request, s_reply_t *reply)
{
    s_stream_t *stream = request->stream;
    if (reply->outcome != S_REPLY_OK) {
        s_stream_fail (request, reply->reason);
        return;
    }
    const msgpack_object *blocks = cbus_msg_get (reply->map, "blocks");
    if (!blocks || blocks->type != MSGPACK_OBJECT_ARRAY || blocks->via.array.size == 0) {
        s_stream_fail (request, "chainbus-chainstore sent a page without blocks");
        return;
    }
    for (uint32_t index = 0; index < blocks->via.array.size && stream->next <= stream->to; index++) {
        const msgpack_object *item = &blocks->via.array.ptr [index];
        cbus_header_t header;
        if (item->type != MSGPACK_OBJECT_BIN
        ||  s_block_header ((const uint8_t *) item->via.bin.ptr, item->via.bin.size, &header)) {
            s_stream_fail (request, "chainbus-chainstore sent a block that does not decode");
            return;
        }
        if (header.height != stream->next
        || (stream->next > 0 && memcmp (header.prev_hash, stream->last_hash, CBUS_HASH_BYTES))) {
            s_stream_fail (request, "the active chain changed while it was being sent");
            return;
        }
        if (stream->next > 0)
            cbus_buf_puts (&stream->text, ", ");
        if (cbus_block_bytes_to_json (item->via.bin.ptr, item->via.bin.size, &stream->text)) {
            s_stream_fail (request, "chainbus-chainstore sent a block that does not decode");
            return;
        }
        cbus_header_hash (&header, stream->last_hash);
        stream->next++;
    }
}

//  The tip is known: the answer is a 200 stream up to it.
static void
s_on_stream_tip (s_request_t *request, s_reply_t *reply)
{
    uint64_t height;
    if (reply->outcome != S_REPLY_OK)
        s_answer_failure (request, reply);
    else
    if (cbus_msg_get_u64 (reply->map, "height", &height))
        s_answer_bad_reply (request, reply, "a tip without a height");
    else {
        request->stream->next = 0;
        request->stream->to = height;
        request->status = MHD_HTTP_OK;
        return;
    }
    s_stream_destroy (&request->stream);
}

//  --------------------------------------------------------------------------
//  Routes

//  POST /transactions/new
static void
s_tx_submit_start (s_request_t *request)
{
    char reason [CBUS_REASON_MAX];
    json_t *value = cbus_json_parse (request->body.data, request->body.size, reason);
    cbus_buf_free (&request->body);
    if (!value) {
        s_answer_message (request, MHD_HTTP_BAD_REQUEST, "%s", reason);
        return;
    }
    cbus_tx_t *tx = cbus_tx_new_from_json (value, cbus_time_us (), reason);
    json_decref (value);
    if (!tx) {
        s_answer_message (request, MHD_HTTP_BAD_REQUEST, "%s", reason);
        return;
    }
    memcpy (request->key, cbus_tx_id (tx), CBUS_HASH_BYTES);
    size_t size;
    const uint8_t *bytes = cbus_tx_bytes (tx, &size);
    cbus_buf_t body = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &body);
    msgpack_pack_map (&pk, 1);
    cbus_pack_kv_bin (&pk, "tx", bytes, size);
    cbus_tx_destroy (&tx);
    s_call (request, S_MEMPOOL, CBUS_CMD_TX_SUBMIT, body.data, body.size,
            TAG_TX_SUBMIT, request->gateway->request_timeout_ms);
    cbus_buf_free (&body);
}

static void
s_on_tx_submit (s_request_t *request, s_reply_t *reply)
{
    if (reply->outcome != S_REPLY_OK) {
        s_answer_failure (request, reply);
        return;
    }
    uint64_t height;
    if (cbus_msg_get_u64 (reply->map, "height", &height)) {
        s_answer_bad_reply (request, reply, "a reply without a height");
        return;
    }
    bool duplicate = false, confirmed = false;
    cbus_msg_get_bool (reply->map, "duplicate", &duplicate);
    cbus_msg_get_bool (reply->map, "confirmed", &confirmed);
    cbus_msg_get_hash (reply->map, "txid", request->key);
    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    if (confirmed) {
        request->status = MHD_HTTP_OK;
        cbus_json_write_message (out, "Transaction is already in the chain");
    }
    else {
        request->status = duplicate ? MHD_HTTP_OK : MHD_HTTP_CREATED;
        char message [64];
        snprintf (message, sizeof (message), "Transaction will be added to Block %" PRIu64, height);
        cbus_json_write_message (out, message);
    }
    cbus_buf_puts (out, ", \"txid\": ");
    s_write_hex (out, request->key);
    if (duplicate || confirmed)
        cbus_buf_puts (out, ", \"duplicate\": true");
    if (confirmed)
        cbus_buf_puts (out, ", \"confirmed\": true");
    cbus_buf_puts (out, "}");
}

//  GET /transactions/<txid>: pending in the mempool, else in the chain.
static void
s_tx_get_start (s_request_t *request)
{
    const char *id = request->path + strlen ("/transactions/");
    if (cbus_hex_decode (id, request->key, CBUS_HASH_BYTES)) {
        s_answer_message (request, MHD_HTTP_BAD_REQUEST,
                          "Bad transaction id: expected 64 hex digits");
        return;
    }
    cbus_buf_t body = {0};
    s_pack_kv_hash (&body, "txid", request->key);
    s_call (request, S_MEMPOOL, CBUS_CMD_TX_GET, body.data, body.size,
            TAG_TX_GET_POOL, request->gateway->request_timeout_ms);
    cbus_buf_free (&body);
}

static void
s_on_tx_get_pool (s_request_t *request, s_reply_t *reply)
{
    if (reply->outcome == S_REPLY_OK) {
        const uint8_t *tx;
        size_t size;
        cbus_buf_t *out = &request->out;
        cbus_buf_reset (out);
        cbus_buf_puts (out, "{\"status\": \"pending\", \"transaction\": ");
        if (cbus_msg_get_bin (reply->map, "tx", &tx, &size)
        ||  cbus_tx_bytes_to_json (tx, size, out)) {
            s_answer_bad_reply (request, reply, "a transaction that does not decode");
            return;
        }
        cbus_buf_puts (out, "}");
        request->status = MHD_HTTP_OK;
        return;
    }
    //  Not pending (or the mempool cannot say): the chain may know it.
    if (reply->outcome != S_REPLY_NOTFOUND) {
        request->first_failure = *reply;
        request->first_failure.map = NULL;
        request->have_first_failure = true;
    }
    cbus_buf_t body = {0};
    s_pack_kv_hash (&body, "txid", request->key);
    s_call (request, S_CHAINSTORE, CBUS_CMD_TX_GET, body.data, body.size,
            TAG_TX_GET_CHAIN, request->gateway->request_timeout_ms);
    cbus_buf_free (&body);
}

static void
s_on_tx_get_chain (s_request_t *request, s_reply_t *reply)
{
    if (reply->outcome == S_REPLY_NOTFOUND) {
        if (request->have_first_failure)
            s_answer_failure (request, &request->first_failure);
        else
            s_answer_message (request, MHD_HTTP_NOT_FOUND, "Transaction not found");
        return;
    }
    if (reply->outcome != S_REPLY_OK) {
        s_answer_failure (request, reply);
        return;
    }
    const uint8_t *tx;
    size_t size;
    uint8_t block_hash [CBUS_HASH_BYTES];
    uint64_t height, confirmations;
    if (cbus_msg_get_bin (reply->map, "tx", &tx, &size)
    ||  cbus_msg_get_hash (reply->map, "block_hash", block_hash)
    ||  cbus_msg_get_u64 (reply->map, "height", &height)
    ||  cbus_msg_get_u64 (reply->map, "confirmations", &confirmations)) {
        s_answer_bad_reply (request, reply, "an incomplete transaction record");
        return;
    }
    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    cbus_buf_printf (out, "{\"status\": \"confirmed\", \"block_height\": %" PRIu64
                     ", \"block_hash\": ", height);
    s_write_hex (out, block_hash);
    cbus_buf_printf (out, ", \"confirmations\": %" PRIu64 ", \"transaction\": ", confirmations);
    if (cbus_tx_bytes_to_json (tx, size, out)) {
        s_answer_bad_reply (request, reply, "a transaction that does not decode");
        return;
    }
    cbus_buf_puts (out, "}");
    request->status = MHD_HTTP_OK;
}

//  GET /transactions?user=NAME or ?key=KEY [&limit=N] [&before=H:I]:
//  confirmed history, newest first, a page at a time from the
//  chainstore's index; "next" is the cursor of the following page.
static void
s_history_start (s_request_t *request)
{
    const char *user = MHD_lookup_connection_value (request->connection, MHD_GET_ARGUMENT_KIND, "user");
    const char *key = MHD_lookup_connection_value (request->connection, MHD_GET_ARGUMENT_KIND, "key");
    const char *limit_text = MHD_lookup_connection_value (request->connection, MHD_GET_ARGUMENT_KIND, "limit");
    const char *before = MHD_lookup_connection_value (request->connection, MHD_GET_ARGUMENT_KIND, "before");
    if ((user == NULL) == (key == NULL) || !*(user ? user : key)) {
        s_answer_message (request, MHD_HTTP_BAD_REQUEST,
                          "Give one of user=NAME or key=PUBLIC_KEY (GET /transactions/<txid> for one)");
        return;
    }
    const char *name = user ? user : key;
    if (strlen (name) > CBUS_TX_MAX_FIELD_BYTES || !cbus_utf8_valid (name, strlen (name))) {
        s_answer_message (request, MHD_HTTP_BAD_REQUEST, "The user or key is not valid UTF-8 of at most %d bytes",
                          CBUS_TX_MAX_FIELD_BYTES);
        return;
    }
    unsigned long long limit = 20, height = 0;
    unsigned long index = 0;
    char tail;
    if (limit_text && (sscanf (limit_text, "%llu%c", &limit, &tail) != 1 || limit < 1 || limit > 100)) {
        s_answer_message (request, MHD_HTTP_BAD_REQUEST, "limit must be 1 to 100");
        return;
    }
    if (before && (sscanf (before, "%llu:%lu%c", &height, &index, &tail) != 2 || index > UINT32_MAX)) {
        s_answer_message (request, MHD_HTTP_BAD_REQUEST,
                          "before must be the \"next\" cursor of the previous page (HEIGHT:INDEX)");
        return;
    }
    cbus_buf_t body = {0};
    msgpack_packer pk = cbus_packer_begin (&body, before ? 4 : 2);
    cbus_pack_kv_str (&pk, user ? "user" : "key", name);
    cbus_pack_kv_u64 (&pk, "limit", limit);
    if (before) {
        cbus_pack_kv_u64 (&pk, "before_height", height);
        cbus_pack_kv_u64 (&pk, "before_index", index);
    }
    s_call (request, S_CHAINSTORE, CBUS_CMD_HISTORY, body.data, body.size, TAG_HISTORY,
            request->gateway->request_timeout_ms);
    cbus_buf_free (&body);
}

static void
s_on_history (s_request_t *request, s_reply_t *reply)
{
    if (reply->outcome != S_REPLY_OK) {
        s_answer_failure (request, reply);
        return;
    }
    const msgpack_object *items = cbus_msg_get (reply->map, "items");
    const msgpack_object *next = cbus_msg_get (reply->map, "next");
    if (!items || items->type != MSGPACK_OBJECT_ARRAY || !next) {
        s_answer_bad_reply (request, reply, "a history page that does not decode");
        return;
    }
    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    cbus_buf_puts (out, "{\"transactions\": [");
    for (uint32_t index = 0; index < items->via.array.size; index++) {
        const msgpack_object *item = &items->via.array.ptr [index];
        const uint8_t *tx;
        size_t size;
        uint8_t block_hash [CBUS_HASH_BYTES];
        uint64_t height, position, confirmations;
        if (cbus_msg_get_bin (item, "tx", &tx, &size) || cbus_msg_get_hash (item, "block_hash", block_hash)
        ||  cbus_msg_get_u64 (item, "height", &height) || cbus_msg_get_u64 (item, "index", &position)
        ||  cbus_msg_get_u64 (item, "confirmations", &confirmations)) {
            s_answer_bad_reply (request, reply, "an incomplete history entry");
            return;
        }
        cbus_buf_printf (out, "%s{\"block_height\": %" PRIu64 ", \"block_index\": %" PRIu64
                         ", \"confirmations\": %" PRIu64 ", \"block_hash\": ",
                         index ? ", " : "", height, position, confirmations);
        s_write_hex (out, block_hash);
        cbus_buf_puts (out, ", \"transaction\": ");
        if (cbus_tx_bytes_to_json (tx, size, out)) {
            s_answer_bad_reply (request, reply, "a transaction that does not decode");
            return;
        }
        cbus_buf_puts (out, "}");
    }
    uint64_t next_height, next_index;
    if (next->type == MSGPACK_OBJECT_MAP && cbus_msg_get_u64 (next, "before_height", &next_height) == 0
    &&  cbus_msg_get_u64 (next, "before_index", &next_index) == 0)
        cbus_buf_printf (out, "], \"next\": \"%" PRIu64 ":%" PRIu64 "\"}", next_height, next_index);
    else
        cbus_buf_puts (out, "], \"next\": null}");
    request->status = MHD_HTTP_OK;
}

//  GET /mine: ask for a block, then fetch it to show it.
static void
s_mine_start (s_request_t *request)
{
    s_call (request, S_MEMPOOL, CBUS_CMD_MINE, NULL, 0, TAG_MINE,
            request->gateway->mine_timeout_ms);
}

static void
s_on_mine (s_request_t *request, s_reply_t *reply)
{
    uint8_t hash [CBUS_HASH_BYTES];
    if (reply->outcome != S_REPLY_OK)
        s_answer_failure (request, reply);
    else
    if (cbus_msg_get_hash (reply->map, "hash", hash))
        s_answer_bad_reply (request, reply, "a reply without a block hash");
    else {
        cbus_buf_t body = {0};
        s_pack_kv_hash (&body, "hash", hash);
        s_call (request, S_CHAINSTORE, CBUS_CMD_BLOCK_GET, body.data, body.size,
                TAG_MINE_BLOCK, request->gateway->request_timeout_ms);
        cbus_buf_free (&body);
    }
}

//  Write the block of a BLOCK.GET reply into out with extra members
//  first ("message") or last ("confirmations"). -1 if it does not decode.
static int
s_write_block (cbus_buf_t *out, const s_reply_t *reply, const char *message,
               bool confirmations)
{
    const uint8_t *block;
    size_t size;
    uint64_t count = 0;
    if (cbus_msg_get_bin (reply->map, "block", &block, &size)
    ||  (confirmations && cbus_msg_get_u64 (reply->map, "confirmations", &count)))
        return -1;
    cbus_buf_t json = {0};
    int rc = cbus_block_bytes_to_json (block, size, &json);
    //  The block's object is {"index": ...}: splice members in.
    if (rc == 0 && json.size >= 2 && json.data [0] == '{' && json.data [json.size - 1] == '}') {
        cbus_buf_reset (out);
        if (message) {
            cbus_json_write_message (out, message);
            cbus_buf_puts (out, ", ");
            cbus_buf_append (out, json.data + 1, json.size - 1);
        }
        else
            cbus_buf_append (out, json.data, json.size);
        if (confirmations) {
            out->size--;
            cbus_buf_printf (out, ", \"confirmations\": %" PRIu64 "}", count);
        }
    }
    else
        rc = -1;
    cbus_buf_free (&json);
    return rc;
}

static void
s_on_mine_block (s_request_t *request, s_reply_t *reply)
{
    if (reply->outcome != S_REPLY_OK)
        s_answer_failure (request, reply);
    else
    if (s_write_block (&request->out, reply, "New Block Forged", false))
        s_answer_bad_reply (request, reply, "a block that does not decode");
    else
        request->status = MHD_HTTP_OK;
}

//  GET /blocks/<height or hash>
static void
s_block_get_start (s_request_t *request)
{
    const char *id = request->path + strlen ("/blocks/");
    size_t length = strlen (id);
    cbus_buf_t body = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &body);
    msgpack_pack_map (&pk, 1);
    uint8_t hash [CBUS_HASH_BYTES];
    if (length == 2 * CBUS_HASH_BYTES && cbus_hex_decode (id, hash, CBUS_HASH_BYTES) == 0)
        cbus_pack_kv_bin (&pk, "hash", hash, CBUS_HASH_BYTES);
    else
    if (length > 0 && length <= 20 && strspn (id, "0123456789") == length) {
        errno = 0;
        unsigned long long height = strtoull (id, NULL, 10);
        if (errno == ERANGE) {
            s_answer_message (request, MHD_HTTP_BAD_REQUEST, "Bad block height: too large");
            goto cleanup;
        }
        cbus_pack_kv_u64 (&pk, "height", height);
    }
    else {
        s_answer_message (request, MHD_HTTP_BAD_REQUEST,
                          "Bad block id: expected a height or a 64-digit hex hash");
        goto cleanup;
    }
    s_call (request, S_CHAINSTORE, CBUS_CMD_BLOCK_GET, body.data, body.size,
            TAG_BLOCK_GET, request->gateway->request_timeout_ms);
cleanup:
    cbus_buf_free (&body);
}

static void
s_on_block_get (s_request_t *request, s_reply_t *reply)
{
    if (reply->outcome == S_REPLY_NOTFOUND)
        s_answer_message (request, MHD_HTTP_NOT_FOUND, "Block not found");
    else
    if (reply->outcome != S_REPLY_OK)
        s_answer_failure (request, reply);
    else
    if (s_write_block (&request->out, reply, NULL, true))
        s_answer_bad_reply (request, reply, "a block that does not decode");
    else
        request->status = MHD_HTTP_OK;
}

//  GET /chain: pin the tip, then stream.
static void
s_chain_start (s_request_t *request)
{
    request->stream = s_stream_new ();
    cbus_buf_puts (&request->stream->text, "{\"chain\": [");
    s_call (request, S_CHAINSTORE, CBUS_CMD_TIP, NULL, 0, TAG_STREAM_TIP,
            request->gateway->request_timeout_ms);
}

//  GET /nodes/resolve: peersync resolves, then we stream our chain.
static void
s_resolve_start (s_request_t *request)
{
    s_call (request, S_PEERSYNC, CBUS_CMD_RESOLVE, NULL, 0, TAG_RESOLVE,
            request->gateway->resolve_timeout_ms);
}

static void
s_on_resolve (s_request_t *request, s_reply_t *reply)
{
    if (reply->outcome != S_REPLY_OK) {
        s_answer_failure (request, reply);
        return;
    }
    bool replaced = false;
    cbus_msg_get_bool (reply->map, "replaced", &replaced);
    const msgpack_object *peers = cbus_msg_get (reply->map, "peers");
    request->stream = s_stream_new ();
    cbus_buf_t *text = &request->stream->text;
    cbus_json_write_message (text, replaced? "Our chain was replaced": "Our chain is authoritative");
    cbus_buf_puts (text, ", \"peers\": ");
    if (!peers)
        cbus_buf_puts (text, "[]");
    else
    if (peers->type != MSGPACK_OBJECT_ARRAY || cbus_json_write (text, peers)) {
        s_stream_destroy (&request->stream);
        s_answer_bad_reply (request, reply, "a peer list that does not decode");
        return;
    }
    cbus_buf_puts (text, replaced? ", \"new_chain\": [": ", \"chain\": [");
    s_call (request, S_CHAINSTORE, CBUS_CMD_TIP, NULL, 0, TAG_STREAM_TIP,
            request->gateway->request_timeout_ms);
}

//  POST /nodes/register
static void
s_peer_add_start (s_request_t *request)
{
    char reason [CBUS_REASON_MAX];
    json_t *value = cbus_json_parse (request->body.data, request->body.size, reason);
    cbus_buf_free (&request->body);
    if (!value) {
        s_answer_message (request, MHD_HTTP_BAD_REQUEST, "%s", reason);
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
        s_answer_message (request, MHD_HTTP_BAD_REQUEST,
                          "Error: Please supply a valid list of nodes");
        return;
    }
    cbus_buf_t body = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &body);
    msgpack_pack_map (&pk, 1);
    cbus_pack_str (&pk, "addresses");
    msgpack_pack_array (&pk, json_array_size (nodes));
    json_array_foreach (nodes, index, node) {
        msgpack_pack_str (&pk, json_string_length (node));
        msgpack_pack_str_body (&pk, json_string_value (node), json_string_length (node));
    }
    json_decref (value);
    s_call (request, S_PEERSYNC, CBUS_CMD_PEER_ADD, body.data, body.size,
            TAG_PEER_ADD, request->gateway->request_timeout_ms);
    cbus_buf_free (&body);
}

//  Answer 'status' with {"message"?, key: <reply's peers>}.
static void
s_answer_peers (s_request_t *request, s_reply_t *reply, unsigned int status,
                const char *message, const char *key)
{
    if (reply->outcome != S_REPLY_OK) {
        s_answer_failure (request, reply);
        return;
    }
    const msgpack_object *peers = cbus_msg_get (reply->map, "peers");
    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    if (message) {
        cbus_json_write_message (out, message);
        cbus_buf_printf (out, ", \"%s\": ", key);
    }
    else
        cbus_buf_printf (out, "{\"%s\": ", key);
    if (!peers || peers->type != MSGPACK_OBJECT_ARRAY || cbus_json_write (out, peers)) {
        s_answer_bad_reply (request, reply, "a peer list that does not decode");
        return;
    }
    cbus_buf_puts (out, "}");
    request->status = status;
}

static void
s_on_peer_add (s_request_t *request, s_reply_t *reply)
{
    s_answer_peers (request, reply, MHD_HTTP_CREATED, "New nodes have been added", "total_nodes");
}

//  GET /nodes
static void
s_nodes_start (s_request_t *request)
{
    s_call (request, S_PEERSYNC, CBUS_CMD_PEER_LIST, NULL, 0, TAG_PEER_LIST,
            request->gateway->request_timeout_ms);
}

static void
s_on_peer_list (s_request_t *request, s_reply_t *reply)
{
    s_answer_peers (request, reply, MHD_HTTP_OK, NULL, "nodes");
}

//  GET /node/info: who this node is to its peers (network, genesis,
//  peer endpoint, public key); a peer registering us by URL asks it.
static void
s_node_info_start (s_request_t *request)
{
    s_call (request, S_PEERSYNC, CBUS_CMD_NODE_INFO, NULL, 0, TAG_NODE_INFO,
            request->gateway->request_timeout_ms);
}

static void
s_on_node_info (s_request_t *request, s_reply_t *reply)
{
    if (reply->outcome != S_REPLY_OK) {
        s_answer_failure (request, reply);
        return;
    }
    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    //  The reply's fields as they are; the genesis hash comes out as hex.
    if (cbus_json_write (out, reply->map)) {
        s_answer_bad_reply (request, reply, "node info that does not decode");
        return;
    }
    request->status = MHD_HTTP_OK;
}

//  GET /status: ask the three services at once; say what we know.
static void
s_status_start (s_request_t *request)
{
    cbus_gateway_t *self = request->gateway;
    request->info = (s_status_t *) zmalloc (sizeof (s_status_t));
    request->info->left = 3;
    s_call (request, S_CHAINSTORE, CBUS_CMD_TIP, NULL, 0, TAG_STATUS_TIP,
            self->request_timeout_ms);
    s_call (request, S_MEMPOOL, CBUS_CMD_MEMPOOL_INFO, NULL, 0, TAG_STATUS_POOL,
            self->request_timeout_ms);
    s_call (request, S_PEERSYNC, CBUS_CMD_PEER_LIST, NULL, 0, TAG_STATUS_PEERS,
            self->request_timeout_ms);
}

//  One service's entry under "services".
static void
s_write_service (cbus_buf_t *out, const char *name, bool up, uint64_t last_seen)
{
    cbus_buf_printf (out, "\"%s\": {\"up\": %s, \"last_seen_ms\": ", name, up? "true": "false");
    if (last_seen)
        cbus_buf_printf (out, "%" PRIu64 "}", last_seen);
    else
        cbus_buf_puts (out, "null}");
}

static void
s_status_finish (s_request_t *request)
{
    cbus_gateway_t *self = request->gateway;
    s_status_t *info = request->info;
    int64_t now = cbus_mono_ms ();
    bool bus_up = cbus_heartbeats_any_alive (self->heartbeats, now);
    bool all_ok = bus_up;
    for (int service = 0; service < S_SERVICES; service++)
        all_ok = all_ok && info->ok [service];

    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    cbus_buf_printf (out, "{\"ok\": %s, \"network\": ", all_ok? "true": "false");
    if (!*info->network)
        snprintf (info->network, sizeof (info->network), "%s",
                  cbus_config_str (self->config, "node/network"));
    cbus_json_write_string (out, info->network, strlen (info->network));
    if (info->ok [S_CHAINSTORE]) {
        cbus_buf_printf (out, ", \"height\": %" PRIu64 ", \"tip\": ", info->height);
        s_write_hex (out, info->tip);
        cbus_buf_puts (out, ", \"work\": ");
        s_write_hex (out, info->work);
    }
    else
        cbus_buf_puts (out, ", \"height\": null, \"tip\": null, \"work\": null");
    if (info->ok [S_MEMPOOL])
        cbus_buf_printf (out, ", \"mempool\": {\"size\": %" PRIu64 ", \"bytes\": %" PRIu64 "}",
                         info->pool_size, info->pool_bytes);
    else
        cbus_buf_puts (out, ", \"mempool\": null");
    if (info->ok [S_PEERSYNC])
        cbus_buf_printf (out, ", \"peers\": %" PRIu64 ", \"peers_linked\": %" PRIu64 ", \"sync\": %s",
                         info->peers, info->linked, *info->sync ? info->sync : "null");
    else
        cbus_buf_puts (out, ", \"peers\": null, \"peers_linked\": null, \"sync\": null");

    cbus_buf_puts (out, ", \"services\": {");
    s_write_service (out, "bus", bus_up, cbus_heartbeats_latest (self->heartbeats));
    for (int service = 0; service < S_SERVICES; service++) {
        cbus_buf_puts (out, ", ");
        const char *name = s_service_names [service];
        s_write_service (out, name, info->up [service],
                         cbus_heartbeats_last_seen (self->heartbeats, name));
    }
    cbus_buf_puts (out, ", ");
    s_write_service (out, "gateway", true, cbus_heartbeats_last_seen (self->heartbeats, "gateway"));
    cbus_buf_puts (out, ", \"miners\": ");
    cbus_heartbeats_write_alive (self->heartbeats, "miner", now, out);
    cbus_buf_puts (out, "}}");
    request->status = MHD_HTTP_OK;
}

static void
s_on_status (s_request_t *request, int tag, s_reply_t *reply)
{
    s_status_t *info = request->info;
    int service = reply->service;
    info->up [service] = reply->outcome != S_REPLY_TIMEOUT
                      && reply->outcome != S_REPLY_UNREACHABLE
                      && reply->outcome != S_REPLY_STOPPING;
    if (reply->outcome == S_REPLY_OK) {
        const msgpack_object *map = reply->map;
        const msgpack_object *peers;
        const char *network;
        size_t size;
        switch (tag) {
            case TAG_STATUS_TIP:
                info->ok [service] = cbus_msg_get_u64 (map, "height", &info->height) == 0
                                  && cbus_msg_get_hash (map, "hash", info->tip) == 0
                                  && cbus_msg_get_hash (map, "work", info->work) == 0;
                if (cbus_msg_get_str (map, "network", &network, &size) == 0
                &&  size < sizeof (info->network) && cbus_utf8_valid (network, size)) {
                    memcpy (info->network, network, size);
                    info->network [size] = 0;
                }
                break;
            case TAG_STATUS_POOL:
                info->ok [service] = cbus_msg_get_u64 (map, "size", &info->pool_size) == 0
                                  && cbus_msg_get_u64 (map, "bytes", &info->pool_bytes) == 0;
                break;
            default:
                peers = cbus_msg_get (map, "peers");
                info->ok [service] = peers && peers->type == MSGPACK_OBJECT_ARRAY;
                if (info->ok [service]) {
                    //  A redundant link (a node linked both ways) counts once.
                    for (uint32_t index = 0; index < peers->via.array.size; index++) {
                        const msgpack_object *peer = &peers->via.array.ptr [index];
                        const char *state;
                        size_t state_size;
                        bool redundant = false;
                        cbus_msg_get_bool (peer, "redundant", &redundant);
                        if (redundant)
                            continue;
                        info->peers++;
                        if (cbus_msg_get_str (peer, "state", &state, &state_size) == 0
                        &&  state_size == 6 && memcmp (state, "linked", 6) == 0)
                            info->linked++;
                    }
                    const msgpack_object *sync = cbus_msg_get (map, "sync");
                    cbus_buf_t text = {0};
                    if (sync && sync->type == MSGPACK_OBJECT_MAP && cbus_json_write (&text, sync) == 0
                    &&  text.size < sizeof (info->sync))
                        memcpy (info->sync, text.data, text.size + 1);
                    cbus_buf_free (&text);
                }
                break;
        }
    }
    if (!info->ok [service] && request->gateway->verbose)
        zsys_debug ("status: service=%s not ok: %s", s_service_names [service],
                    reply->outcome == S_REPLY_OK? "reply lacks fields": reply->reason);
    if (--info->left == 0)
        s_status_finish (request);
}

//  Run the handler of a call's tag.
static void
s_dispatch (s_request_t *request, int tag, s_reply_t *reply)
{
    switch ((s_tag_t) tag) {
        case TAG_TX_SUBMIT:     s_on_tx_submit (request, reply); break;
        case TAG_TX_GET_POOL:   s_on_tx_get_pool (request, reply); break;
        case TAG_TX_GET_CHAIN:  s_on_tx_get_chain (request, reply); break;
        case TAG_MINE:          s_on_mine (request, reply); break;
        case TAG_MINE_BLOCK:    s_on_mine_block (request, reply); break;
        case TAG_BLOCK_GET:     s_on_block_get (request, reply); break;
        case TAG_RESOLVE:       s_on_resolve (request, reply); break;
        case TAG_STREAM_TIP:    s_on_stream_tip (request, reply); break;
        case TAG_STREAM_PAGE:   s_on_stream_page (request, reply); break;
        case TAG_PEER_ADD:      s_on_peer_add (request, reply); break;
        case TAG_PEER_LIST:     s_on_peer_list (request, reply); break;
        case TAG_NODE_INFO:     s_on_node_info (request, reply); break;
        case TAG_HISTORY:       s_on_history (request, reply); break;
        case TAG_STATUS_TIP:
        case TAG_STATUS_POOL:
        case TAG_STATUS_PEERS:  s_on_status (request, tag, reply); break;
    }
}

static const s_route_t s_routes [] = {
    { "/transactions/new", "POST", true,  false, s_tx_submit_start },
    { "/transactions",     "GET",  false, false, s_history_start },
    { "/transactions/",    "GET",  false, false, s_tx_get_start },
    { "/mine",             "GET",  false, true,  s_mine_start },
    { "/chain",            "GET",  false, false, s_chain_start },
    { "/nodes/register",   "POST", true,  true,  s_peer_add_start },
    { "/nodes/resolve",    "GET",  false, true,  s_resolve_start },
    { "/nodes",            "GET",  false, false, s_nodes_start },
    { "/node/info",        "GET",  false, false, s_node_info_start },
    { "/blocks/",          "GET",  false, false, s_block_get_start },
    { "/status",           "GET",  false, false, s_status_start },
};

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
static const s_route_t *
s_route_find (const char *path)
{
    size_t count = sizeof (s_routes) / sizeof (s_routes [0]);
    for (size_t index = 0; index < count; index++)
        if (streq (path, s_routes [index].path))
            return &s_routes [index];
    for (size_t index = 0; index < count; index++) {
        size_t size = strlen (s_routes [index].path);
        if (s_routes [index].path [size - 1] == '/'
        &&  strncmp (path, s_routes [index].path, size) == 0)
            return &s_routes [index];
    }
    return NULL;
}

//  First call of a request: decide its route, or its answer if it has
//  none (404, 405, 413, a static file).
static void
s_request_route (s_request_t *request)
{
    cbus_gateway_t *self = request->gateway;
    struct MHD_Connection *connection = request->connection;
    const char *length = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *encoding = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_TRANSFER_ENCODING);
    uint64_t declared = length? strtoull (length, NULL, 10): 0;
    request->has_body = declared > 0 || encoding;
    bool get = streq (request->method, "GET") || streq (request->method, "HEAD");

    if (strlen (request->path) > S_PATH_MAX) {
        s_answer_message (request, MHD_HTTP_NOT_FOUND, "Not found");
        return;
    }
    const s_route_t *route = s_route_find (request->path);
    if (route) {
        if (!streq (request->method, route->method)) {
            request->allow = route->method;
            s_answer_message (request, MHD_HTTP_METHOD_NOT_ALLOWED, "Method not allowed");
        }
        else
        if (route->admin && !s_admin_allowed (self, connection)) {
            request->authenticate = true;
            s_answer_message (request, MHD_HTTP_UNAUTHORIZED,
                              "%s needs this node's admin token: Authorization: Bearer <token> "
                              "(the token is in the file gateway/admin_token_file names)",
                              route->path);
        }
        else
        if (declared > self->max_body)
            s_answer_message (request, MHD_HTTP_CONTENT_TOO_LARGE,
                              "Body too large: at most %" PRIu64 " bytes", self->max_body);
        else
            request->route = route;
        return;
    }
    if (get) {
        request->file_fd = cbus_www_open (self->www, request->path, &request->file_size,
                                          &request->file_type);
        if (request->file_fd >= 0)
            request->status = MHD_HTTP_OK;
        else
            s_answer_message (request, MHD_HTTP_NOT_FOUND, "Not found");
    }
    else
    if (streq (request->path, "/")) {
        request->allow = "GET, HEAD";
        s_answer_message (request, MHD_HTTP_METHOD_NOT_ALLOWED, "Method not allowed");
    }
    else
        s_answer_message (request, MHD_HTTP_NOT_FOUND, "Not found");
}

//  A piece of body arrived. Returns MHD_NO to cut the connection.
static enum MHD_Result
s_request_take_body (s_request_t *request, const char *data, size_t size)
{
    cbus_gateway_t *self = request->gateway;
    request->body_seen += size;
    if (request->body_seen > self->max_body) {
        if (!request->status)
            s_answer_message (request, MHD_HTTP_CONTENT_TOO_LARGE,
                              "Body too large: at most %" PRIu64 " bytes", self->max_body);
        cbus_buf_free (&request->body);
        return request->body_seen > self->max_body + S_DISCARD_MAX? MHD_NO: MHD_YES;
    }
    if (request->route && request->route->takes_body && !request->status)
        cbus_buf_append (&request->body, data, size);
    return MHD_YES;
}

//  Hand the answer to MHD; logs answers that are not 2xx.
static enum MHD_Result
s_request_queue (s_request_t *request)
{
    if (request->status == 0)
        s_answer_message (request, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal error: no answer");
    struct MHD_Response *response = NULL;
    const char *type = "application/json";
    if (request->stream && request->status == MHD_HTTP_OK)
        response = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, S_STREAM_BLOCK,
                                                      s_stream_read, request, NULL);
    else
    if (request->file_fd >= 0 && request->status == MHD_HTTP_OK) {
        response = MHD_create_response_from_fd64 (request->file_size, request->file_fd);
        if (response)
            request->file_fd = -1;      //  The response closes it
        type = request->file_type;
    }
    else {
        size_t size;
        char *data = cbus_buf_detach (&request->out, &size);
        response = MHD_create_response_from_buffer (size, data, MHD_RESPMEM_MUST_FREE);
        if (!response)
            free (data);
    }
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (request->allow)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, request->allow);
    if (request->authenticate)
        MHD_add_response_header (response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                 "Bearer realm=\"chainbus\"");
    enum MHD_Result rc = MHD_queue_response (request->connection, request->status, response);
    MHD_destroy_response (response);
    request->queued = true;
    if (request->status >= 300) {
        char path [128];
        s_log_safe (request->path, path, sizeof (path));
        zsys_info ("http status=%u method=%s path=%s message=\"%s\"", request->status,
                   request->method, path, request->message);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  MHD callbacks

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *connection, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **con_cls)
{
    (void) version;
    cbus_gateway_t *self = (cbus_gateway_t *) cls;
    s_request_t *request = (s_request_t *) *con_cls;
    if (!request) {
        request = s_request_new (self, connection, url, method);
        *con_cls = request;
        s_request_route (request);
        //  A refusal of a request with a body goes at once: the client
        //  need not send the body, and the connection closes after it.
        if (request->status && request->status != MHD_HTTP_OK && request->has_body)
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
    if (!request->status && !request->started) {
        request->started = true;
        request->route->start (request);
    }
    if (request->outstanding) {
        s_request_suspend (request);
        return MHD_YES;
    }
    return s_request_queue (request);
}

//  MHD is done with a request (answered, or the client went away).
static void
s_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
             enum MHD_RequestTerminationCode code)
{
    (void) connection;
    cbus_gateway_t *self = (cbus_gateway_t *) cls;
    s_request_t *request = (s_request_t *) *con_cls;
    if (!request)
        return;
    if (code != MHD_REQUEST_TERMINATED_COMPLETED_OK && self->verbose) {
        char path [128];
        s_log_safe (request->path, path, sizeof (path));
        zsys_debug ("http request ended early path=%s code=%d", path, (int) code);
    }
    s_request_destroy (&request);
    *con_cls = NULL;
}

//  Decode %HH in a URL path in place, as MHD does, except %00: a NUL
//  would cut our C string short and make "/chain%00" read as "/chain".
//  It stays as the three characters, which match no route or file.
static size_t
s_unescape (void *cls, struct MHD_Connection *connection, char *text)
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

static void
s_mhd_log (void *cls, const char *format, va_list args)
{
    cbus_gateway_t *self = (cbus_gateway_t *) cls;
    char line [512];
    vsnprintf (line, sizeof (line), format, args);
    size_t size = strlen (line);
    while (size > 0 && (line [size - 1] == '\n' || line [size - 1] == '\r'))
        line [--size] = 0;
    //  MHD speaks of each client it drops; only startup errors matter.
    if (!self->daemon)
        zsys_error ("http: %s", line);
    else
    if (self->verbose)
        zsys_debug ("http: %s", line);
}

//  --------------------------------------------------------------------------
//  Loop handlers

static int
s_mhd_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    cbus_gateway_t *self = (cbus_gateway_t *) arg;
    self->mhd_timer = -1;
    s_mhd_run (self);
    return 0;
}

//  Let MHD do its work, then arm a timer for when it wants to run next
//  (a connection timeout, or at once when it has work left over).
static void
s_mhd_run (cbus_gateway_t *self)
{
    MHD_run (self->daemon);
    MHD_UNSIGNED_LONG_LONG timeout;
    if (MHD_get_timeout (self->daemon, &timeout) != MHD_YES)
        return;
    if (timeout > 3600 * 1000)
        timeout = 3600 * 1000;
    int64_t now = zclock_mono ();
    int64_t due = now + (int64_t) timeout;
    if (self->mhd_timer != -1) {
        if (self->mhd_timer_due <= due)
            return;
        zloop_timer_end (self->loop, self->mhd_timer);
    }
    self->mhd_timer = zloop_timer (self->loop, (size_t) timeout, 1, s_mhd_timer, self);
    self->mhd_timer_due = due;
}

static int
s_mhd_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    s_mhd_run ((cbus_gateway_t *) arg);
    return 0;
}

//  Read a reply [status][id][body] and run its handler.
static void
s_handle_reply (cbus_gateway_t *self, int service, zmsg_t *msg)
{
    if (zmsg_size (msg) != 3) {
        zsys_warning ("bus reply dropped service=%s frames=%zu",
                      s_service_names [service], zmsg_size (msg));
        return;
    }
    zframe_t *status = zmsg_first (msg);
    zframe_t *id_frame = zmsg_next (msg);
    zframe_t *body = zmsg_next (msg);
    if (zframe_size (id_frame) != 8) {
        zsys_warning ("bus reply dropped service=%s: request id of %zu bytes",
                      s_service_names [service], zframe_size (id_frame));
        return;
    }
    uint64_t id = 0;
    for (int index = 7; index >= 0; index--)
        id = (id << 8) | zframe_data (id_frame) [index];
    cbus_call_t call;
    if (cbus_calls_take (self->calls, id, &call)) {
        if (self->verbose)
            zsys_debug ("bus reply dropped service=%s: late or unknown id", s_service_names [service]);
        return;
    }
    s_request_t *request = (s_request_t *) call.owner;
    s_request_forget (request, id);

    static const struct {
        const char *word;
        s_outcome_t outcome;
    } s_words [] = {
        { CBUS_STATUS_OK, S_REPLY_OK },
        { CBUS_STATUS_INVALID, S_REPLY_INVALID },
        { CBUS_STATUS_NOTFOUND, S_REPLY_NOTFOUND },
        { CBUS_STATUS_FULL, S_REPLY_FULL },
        { CBUS_STATUS_UNAVAILABLE, S_REPLY_UNAVAILABLE },
        { CBUS_STATUS_ERROR, S_REPLY_ERROR },
    };
    s_reply_t reply = { .service = call.service, .outcome = S_REPLY_BAD };
    for (size_t index = 0; index < sizeof (s_words) / sizeof (s_words [0]); index++)
        if (zframe_streq (status, s_words [index].word))
            reply.outcome = s_words [index].outcome;

    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    if (reply.outcome != S_REPLY_BAD) {
        if (zframe_size (body) > 0
        &&  msgpack_unpack_next (&unpacked, (const char *) zframe_data (body),
                                 zframe_size (body), &offset) == MSGPACK_UNPACK_SUCCESS
        &&  offset == zframe_size (body) && unpacked.data.type == MSGPACK_OBJECT_MAP)
            reply.map = &unpacked.data;
        else
            reply.outcome = S_REPLY_BAD;
    }
    if (reply.outcome == S_REPLY_BAD)
        s_reply_reason (&reply);
    else
    if (reply.outcome != S_REPLY_OK) {
        const char *reason;
        size_t size;
        if (cbus_msg_get_str (reply.map, "reason", &reason, &size) == 0 && size > 0) {
            if (size >= sizeof (reply.reason))
                size = sizeof (reply.reason) - 1;
            memcpy (reply.reason, reason, size);
            reply.reason [size] = 0;
            s_utf8_fix (reply.reason);
        }
        else {
            char word [16];
            size_t size = zframe_size (status);
            size = size < sizeof (word) - 1? size: sizeof (word) - 1;
            memcpy (word, zframe_data (status), size);
            word [size] = 0;
            s_log_safe (word, word, sizeof (word));
            snprintf (reply.reason, sizeof (reply.reason), "chainbus-%s answered %s",
                      s_service_names [call.service], word);
        }
    }
    s_dispatch (request, (int) (intptr_t) call.arg, &reply);
    msgpack_unpacked_destroy (&unpacked);
    s_request_settle (request);
}

static int
s_dealer_readable (zloop_t *loop, zsock_t *dealer, void *arg)
{
    (void) loop;
    cbus_gateway_t *self = (cbus_gateway_t *) arg;
    int service = 0;
    while (service < S_SERVICES - 1 && self->dealers [service] != dealer)
        service++;
    for (int count = 0; count < S_BATCH; count++) {
        zmsg_t *msg = zmsg_recv (dealer);     //  Receive timeout 0
        if (!msg)
            break;
        s_handle_reply (self, service, msg);
        zmsg_destroy (&msg);
    }
    s_mhd_run (self);
    return 0;
}

//  Answer a call taken out of the table that no reply will come for.
static void
s_fail_call (cbus_call_t *call, s_outcome_t outcome)
{
    s_request_t *request = (s_request_t *) call->owner;
    s_request_forget (request, call->id);
    s_reply_t reply = { .service = call->service, .outcome = outcome };
    s_reply_reason (&reply);
    s_dispatch (request, (int) (intptr_t) call->arg, &reply);
    s_request_settle (request);
}

//  Answer every call whose time is up (or every call, when stopping).
static void
s_expire (cbus_gateway_t *self, int64_t now)
{
    cbus_call_t call;
    int count = 0;
    while (cbus_calls_expired (self->calls, now, &call) == 0) {
        s_fail_call (&call, self->stopping? S_REPLY_STOPPING: S_REPLY_TIMEOUT);
        count++;
    }
    if (count)
        s_mhd_run (self);
}

static int
s_sweep (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_expire ((cbus_gateway_t *) arg, cbus_mono_ms ());
    return 0;
}

static int
s_heartbeat (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    cbus_gateway_t *self = (cbus_gateway_t *) arg;
    cbus_pub_heartbeat (self->pub);
    if (++self->heartbeat_ticks % 60 == 0)
        cbus_heartbeats_prune (self->heartbeats, cbus_mono_ms (), S_HEARTBEAT_FORGET_MS);
    return 0;
}

//  A service's heartbeat: when its boot id changed, the process that had
//  our calls is gone, and calls sent before we last heard it will never
//  be answered: answer them now (503) rather than at their timeout, which
//  is a minute for GET /mine. A call sent since may have reached the new
//  process, and keeps waiting.
static void
s_heard_boot (cbus_gateway_t *self, const char *src, size_t size, uint64_t boot)
{
    int service = 0;
    while (service < S_SERVICES && (strlen (s_service_names [service]) != size
                                 || memcmp (s_service_names [service], src, size) != 0))
        service++;
    if (service == S_SERVICES)
        return;
    int64_t now = cbus_mono_ms ();
    if (self->boots [service] && self->boots [service] != boot) {
        cbus_call_t call;
        size_t count = 0;
        while (cbus_calls_take_lost (self->calls, service, self->boot_heard [service], &call) == 0) {
            s_fail_call (&call, S_REPLY_RESTARTED);
            count++;
        }
        zsys_info ("chainbus-%s restarted: %zu calls it had were answered 503",
                   s_service_names [service], count);
        if (count)
            s_mhd_run (self);
    }
    self->boots [service] = boot;
    self->boot_heard [service] = now;
}

static int
s_sub_readable (zloop_t *loop, zsock_t *sub, void *arg)
{
    (void) loop;
    cbus_gateway_t *self = (cbus_gateway_t *) arg;
    for (int count = 0; count < S_BATCH && (zsock_events (sub) & ZMQ_POLLIN); count++) {
        cbus_event_t *event = cbus_event_recv (sub);
        const char *src;
        size_t size;
        uint64_t boot;
        if (event && event->decoded && streq (event->topic, CBUS_TOPIC_HEARTBEAT)
        &&  cbus_msg_get_str (cbus_event_map (event), "src", &src, &size) == 0) {
            cbus_heartbeats_record (self->heartbeats, src, size, cbus_mono_ms (),
                                    cbus_time_ms ());
            if (cbus_msg_get_u64 (cbus_event_map (event), "boot", &boot) == 0)
                s_heard_boot (self, src, size, boot);
        }
        cbus_event_destroy (&event);
    }
    return 0;
}

static int
s_pipe_readable (zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void) loop;
    (void) arg;
    zmsg_t *msg = zmsg_recv (pipe);
    if (!msg)
        return -1;                      //  Interrupted
    char *command = zmsg_popstr (msg);
    int rc = 0;
    if (command && streq (command, "$TERM"))
        rc = -1;
    else
        zsys_warning ("gateway: unknown pipe command %s", command? command: "(none)");
    zstr_free (&command);
    zmsg_destroy (&msg);
    return rc;
}

//  --------------------------------------------------------------------------
//  Actor

//  Resolve the HTTP bind address (numeric, or a name such as localhost).
static int
s_resolve_bind (const char *host, int port, struct sockaddr_storage *address,
                bool *ipv6, char *reason)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE };
    struct addrinfo *result = NULL;
    char service [16];
    snprintf (service, sizeof (service), "%d", port);
    int rc = getaddrinfo (host, service, &hints, &result);
    if (rc || !result) {
        snprintf (reason, CBUS_REASON_MAX, "gateway/http_bind: cannot resolve '%s': %s",
                  host, gai_strerror (rc));
        return -1;
    }
    memcpy (address, result->ai_addr, result->ai_addrlen);
    *ipv6 = result->ai_family == AF_INET6;
    freeaddrinfo (result);
    return 0;
}

static zsock_t *
s_dealer_new (const char *endpoint)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer)
        return NULL;
    zsock_set_linger (dealer, 0);
    zsock_set_maxmsgsize (dealer, CBUS_MSG_MAX_BYTES);
    //  Never block the loop: a full queue or a service that is not
    //  connected (ZMQ_IMMEDIATE: nothing is queued for a peer that is not
    //  there, so it cannot run stale requests when it comes back) makes
    //  the send fail, and the client gets a 503 at once.
    zsock_set_immediate (dealer, 1);
    zsock_set_sndtimeo (dealer, 0);
    zsock_set_rcvtimeo (dealer, 0);
    zsock_set_sndhwm (dealer, 10000);
    zsock_set_rcvhwm (dealer, 0);
    if (zsock_connect (dealer, "%s", endpoint)) {
        zsock_destroy (&dealer);
        return NULL;
    }
    return dealer;
}

static void
s_gateway_destroy (cbus_gateway_t **self_p);

static cbus_gateway_t *
s_gateway_new (zsock_t *pipe, cbus_config_t *config, char *reason)
{
    cbus_gateway_t *self = (cbus_gateway_t *) zmalloc (sizeof (cbus_gateway_t));
    self->config = config;
    self->pipe = pipe;
    self->mhd_timer = -1;
    self->request_timeout_ms = cbus_config_int (config, "gateway/request_timeout_ms");
    self->mine_timeout_ms = cbus_config_int (config, "gateway/mine_timeout_ms");
    self->resolve_timeout_ms = cbus_config_int (config, "gateway/resolve_timeout_ms");
    self->max_body = (uint64_t) cbus_config_int (config, "gateway/max_body");
    const char *token_file = cbus_config_str (config, "gateway/admin_token_file");
    if (*token_file) {
        char token [CBUS_TOKEN_MAX + 1];
        if (cbus_token_load (token_file, token, reason))
            goto failed;
        crypto_generichash (self->admin_token_hash, sizeof (self->admin_token_hash),
                            (const uint8_t *) token, strlen (token), NULL, 0);
        sodium_memzero (token, sizeof (token));
        self->admin_token_set = true;
    }
    self->verbose = cbus_config_bool (config, "node/verbose");
    self->calls = cbus_calls_new ();
    self->heartbeats = cbus_heartbeats_new ();
    self->www = cbus_www_new (cbus_config_str (config, "gateway/www_dir"));
    self->loop = zloop_new ();
    //  Stop on $TERM from main only, not on a signal: see cbus_service.h.
    zloop_set_nonstop (self->loop, true);
    char *endpoint = NULL;

    for (int service = 0; service < S_SERVICES; service++) {
        endpoint = cbus_config_endpoint (config, s_service_names [service]);
        self->dealers [service] = s_dealer_new (endpoint);
        if (!self->dealers [service]) {
            snprintf (reason, CBUS_REASON_MAX, "cannot connect to %s", endpoint);
            goto failed;
        }
        zloop_reader (self->loop, self->dealers [service], s_dealer_readable, self);
        zstr_free (&endpoint);
    }
    endpoint = cbus_config_endpoint (config, "bus-out");
    self->sub = zsock_new_sub (endpoint, CBUS_TOPIC_HEARTBEAT);
    if (!self->sub) {
        snprintf (reason, CBUS_REASON_MAX, "cannot subscribe to %s", endpoint);
        goto failed;
    }
    zstr_free (&endpoint);
    endpoint = cbus_config_endpoint (config, "bus-in");
    self->pub = cbus_pub_new (endpoint, "gateway");
    if (!self->pub) {
        snprintf (reason, CBUS_REASON_MAX, "cannot publish to %s", endpoint);
        goto failed;
    }
    zstr_free (&endpoint);

    const char *host = cbus_config_str (config, "gateway/http_bind");
    int port = (int) cbus_config_int (config, "gateway/http_port");
    struct sockaddr_storage address = {0};
    bool ipv6 = false;
    if (s_resolve_bind (host, port, &address, &ipv6, reason))
        goto failed;
    unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO
                       | MHD_USE_ERROR_LOG | (ipv6? MHD_USE_IPv6: 0);
    self->daemon = MHD_start_daemon (flags, (uint16_t) port, NULL, NULL, s_access, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,        //  First, or MHD complains
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &address,
        MHD_OPTION_CONNECTION_LIMIT,
            (unsigned int) cbus_config_int (config, "gateway/max_connections"),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) S_IDLE_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_UNESCAPE_CALLBACK, s_unescape, self,
        MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (reason, CBUS_REASON_MAX,
                  "cannot listen on %s port %d (in use, or not allowed)", host, port);
        goto failed;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info || info->epoll_fd < 0) {
        snprintf (reason, CBUS_REASON_MAX, "libmicrohttpd gave no epoll descriptor");
        goto failed;
    }
    self->mhd_item.fd = info->epoll_fd;
    self->mhd_item.events = ZMQ_POLLIN;
    zloop_poller (self->loop, &self->mhd_item, s_mhd_readable, self);
    zloop_poller_set_tolerant (self->loop, &self->mhd_item);

    zloop_reader (self->loop, pipe, s_pipe_readable, self);
    zloop_reader (self->loop, self->sub, s_sub_readable, self);
    int64_t sweep_ms = self->request_timeout_ms / 4;
    sweep_ms = sweep_ms < 5? 5: sweep_ms > 100? 100: sweep_ms;
    zloop_timer (self->loop, (size_t) sweep_ms, 0, s_sweep, self);
    zloop_timer (self->loop, CBUS_HEARTBEAT_MS, 0, s_heartbeat, self);

    info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    zsys_info ("gateway: listening on http://%s%s%s:%d max_connections=%d www=%s",
               ipv6? "[": "", host, ipv6? "]": "", info? info->port: port,
               (int) cbus_config_int (config, "gateway/max_connections"),
               cbus_www_dir (self->www));
    return self;

failed:
    zstr_free (&endpoint);
    s_gateway_destroy (&self);
    return NULL;
}

//  Stop: answer whatever is in flight (503), resume every suspended
//  connection (MHD must not be stopped with one suspended), then stop
//  MHD, which notifies every request's completion.
static void
s_gateway_destroy (cbus_gateway_t **self_p)
{
    cbus_gateway_t *self = *self_p;
    if (!self)
        return;
    self->stopping = true;
    if (self->daemon) {
        s_expire (self, INT64_MAX);
        MHD_run (self->daemon);
        MHD_stop_daemon (self->daemon);
    }
    zloop_destroy (&self->loop);
    for (int service = 0; service < S_SERVICES; service++)
        zsock_destroy (&self->dealers [service]);
    zsock_destroy (&self->sub);
    cbus_pub_destroy (&self->pub);
    cbus_www_destroy (&self->www);
    cbus_heartbeats_destroy (&self->heartbeats);
    cbus_calls_destroy (&self->calls);
    free (self);
    *self_p = NULL;
}

void
cbus_gateway_actor (zsock_t *pipe, void *args)
{
    cbus_config_t *config = (cbus_config_t *) args;
    char reason [CBUS_REASON_MAX] = "";
    cbus_gateway_t *self = NULL;
    if (sodium_init () < 0)
        snprintf (reason, sizeof (reason), "libsodium cannot start");
    else
        self = s_gateway_new (pipe, config, reason);
    zsock_signal (pipe, 0);
    if (!self) {
        cbus_service_fail (pipe, "gateway: %s", reason);
        return;
    }
    cbus_pub_heartbeat (self->pub);
    zloop_start (self->loop);
    zsys_info ("gateway: stopping, requests_in_flight=%zu", cbus_calls_size (self->calls));
    s_gateway_destroy (&self);
}
