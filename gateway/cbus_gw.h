/*  =========================================================================
    cbus_gw - what the gateway's files share (private to gateway/)

    The gateway is one actor (cbus_gateway.c: its sockets, its loop and
    its calls to services) serving HTTP through libmicrohttpd
    (cbus_gw_http.c: requests, routing, answers). The routes live in one
    file per resource, each with its own table of routes:

        cbus_gw_tx.c        POST /transactions/new, GET /transactions...
        cbus_gw_chain.c     GET /chain (streamed), /blocks/<id>, /mine
        cbus_gw_nodes.c     POST /nodes/register, /nodes/resolve, /nodes
        cbus_gw_status.c    GET /status, /node/info, the dashboard's files
        cbus_gw_metrics.c   GET /metrics, and the HTTP metrics of every answer
        cbus_gw_events.c    GET /events (server-sent events fed from the bus)

    Two classes guard the HTTP edge: cbus_gw_frame (strict RFC 9112
    framing of a request head) and cbus_gw_guard (deadlines that bytes do
    not reset, room kept near the connection cap, refusals counted).

    A route's start function answers at once (cbus_gw_answer...) or asks a
    service (cbus_gw_call) with the handler that its reply will run; that
    handler answers or asks further. Adding a route is an entry in its
    file's table and the functions it names. Every handler gets one reply
    type, cbus_reply_t: the service's, or one made locally (UNAVAILABLE,
    code unavailable) when the service did not answer in time, restarted,
    could not be reached, or the gateway is stopping.

    Bodies on the bus are libcommon's messages (cbus_msgs.h): a request is
    written with its cbus_<name>_encode into cbus_gw_body, an OK reply
    read with its cbus_<name>_decode; a reply that does not decode is a
    502 (cbus_gw_answer_bad_reply). The JSON of what peersync reports
    (peers, sync, node info) is written from the decoded messages here,
    field by field, in the API's form (docs/api.md).
    =========================================================================
*/
#ifndef CBUS_GW_H_INCLUDED
#define CBUS_GW_H_INCLUDED

#include "cbus.h"
#include "cbus_heartbeats.h"
#include "cbus_www.h"
#include "cbus_gw_frame.h"
#include "cbus_gw_guard.h"
#include <microhttpd.h>
#include <sodium.h>

//  The services the gateway asks, one DEALER each.
enum { CBUS_GW_CHAINSTORE, CBUS_GW_MEMPOOL, CBUS_GW_PEERSYNC, CBUS_GW_SERVICES };

//  Error answers logged one a line per guard report period (5 s); more
//  are counted into one line, so that a flood of bad requests cannot
//  flood the log.
#define CBUS_GW_ERROR_LINES 20


//  Most calls one HTTP request has in flight at once (GET /status: 3).
#define CBUS_GW_MAX_CALLS   4
//  Longest URL path we keep; longer ones match no route.
#define CBUS_GW_PATH_MAX    1024
//  Processes whose restarts the gateway counts (a new boot id in their
//  heartbeat): the three services, then the bus.
#define CBUS_GW_TRACKED     (CBUS_GW_SERVICES + 1)
//  Restarts within gateway/restart_window_ms that make GET /status not ok.
#define CBUS_GW_RESTARTS_UNHEALTHY 3
//  How long GET /status waits for each service (capped by
//  gateway/request_timeout_ms): a frozen service is reported down within
//  this, so that the route answers well within a second (docs/api.md).
#define CBUS_GW_STATUS_TIMEOUT_MS 500

typedef struct _cbus_gateway_t cbus_gateway_t;
typedef struct _cbus_gw_request_t cbus_gw_request_t;
typedef struct _cbus_gw_stream_t cbus_gw_stream_t;
typedef struct _cbus_gw_events_t cbus_gw_events_t;

//  A GET /mine's MINE call in flight: answered 503 at once when the last
//  miner goes (cbus_gw_mine_sweep).
typedef struct {
    uint64_t id;                    //  The call's id
    int64_t deadline;               //  When it expires anyway (mono ms)
} cbus_gw_mine_wait_t;
//  Most MINE calls tracked at once; beyond, a call just waits its timeout.
#define CBUS_GW_MINE_WAITS_MAX 4096

//  A route's work, run once its request's body is in.
typedef void (cbus_gw_start_fn) (cbus_gw_request_t *request);

typedef struct {
    const char *path;               //  Exact path, or a prefix if it ends in '/'
    const char *method;             //  The method served
    bool takes_body;                //  Collect the request body for it
    bool admin;                     //  Needs the admin token, if one is set
    cbus_gw_start_fn *start;        //  Starts the work once the body is in
} cbus_gw_route_t;

//  Each resource's routes; every table ends with an entry whose path is NULL.
extern const cbus_gw_route_t cbus_gw_tx_routes [];
extern const cbus_gw_route_t cbus_gw_chain_routes [];
extern const cbus_gw_route_t cbus_gw_nodes_routes [];
extern const cbus_gw_route_t cbus_gw_status_routes [];
extern const cbus_gw_route_t cbus_gw_metrics_routes [];
extern const cbus_gw_route_t cbus_gw_events_routes [];
//  An answer was queued: count it by route and status, and its time
//  (cbus_gw_metrics.c).
void
    cbus_gw_metrics_http (cbus_gw_request_t *request);
//  A chain.block.connected or .disconnected event from the bus: kept for
//  the network's hash rate in GET /status (cbus_gw_status.c).
void
    cbus_gw_status_block_event (cbus_gateway_t *self, cbus_event_t *event);

//  An error answer kept for later (GET /transactions/<txid> keeps the
//  mempool's failure while it asks the chainstore).
typedef struct {
    unsigned int status;            //  HTTP status
    cbus_code_t code;               //  Its "code"
    char message [CBUS_REASON_MAX]; //  Its "message"
} cbus_gw_failure_t;

//  One HTTP request, from its first access-handler call to MHD's
//  completion notice, which frees it.
struct _cbus_gw_request_t {
    cbus_gateway_t *gateway;        //  Owner
    struct MHD_Connection *connection;  //  Borrowed from MHD
    char *path;                     //  URL path, query string excluded
    char method [16];               //  HTTP method (truncated)
    const cbus_gw_route_t *route;   //  Matched route, NULL for others
    bool has_body;                  //  The request announced a body
    cbus_buf_t body;                //  Body collected for the route
    uint64_t body_seen;             //  Body bytes received so far
    bool started;                   //  The route's work has begun
    bool suspended;                 //  The connection is suspended
    bool queued;                    //  The answer went to MHD
    int outstanding;                //  Calls in flight
    uint64_t calls [CBUS_GW_MAX_CALLS]; //  Their ids
    //  The answer
    unsigned int status;            //  HTTP status; 0 until decided
    cbus_buf_t out;                 //  JSON body (when not a stream or file)
    const char *out_type;           //  Its Content-Type when not JSON, or NULL
    int64_t started_us;             //  First access call (zclock_usecs)
    char message [CBUS_REASON_MAX]; //  Error message, for the log line
    const char *allow;              //  Allow header of a 405
    bool authenticate;              //  WWW-Authenticate header of a 401
    bool quiet;                     //  A refusal counted, not logged one by one
    int file_fd;                    //  Static file to send, or -1
    uint64_t file_size;             //  Its size
    const char *file_type;          //  Its Content-Type (borrowed)
    cbus_gw_stream_t *stream;       //  Chain being streamed, or NULL
    MHD_ContentReaderCallback reader;   //  A route's own streamed body (cls: the
                                    //  request), its type out_type, or NULL
    bool no_store;                  //  Send Cache-Control: no-store
    //  Route scratch
    uint8_t key [CBUS_HASH_BYTES];  //  The txid submitted or looked up
    void *state;                    //  The route's own state, or NULL
    void (*state_free) (void *state);   //  ... and how to free it
};

struct _cbus_gateway_t {
    cbus_config_t *config;          //  Borrowed from the actor's caller
    zsock_t *pipe;                  //  Actor pipe
    zloop_t *loop;                  //  Drives everything below
    struct MHD_Daemon *daemon;      //  HTTP server, external epoll mode
    zmq_pollitem_t mhd_item;        //  MHD's epoll fd, polled by the loop
    int mhd_timer;                  //  One-shot timer for MHD, or -1
    int64_t mhd_timer_due;          //  When it fires (zclock_mono)
    zsock_t *dealers [CBUS_GW_SERVICES];    //  One DEALER per service
    zsock_t *sub;                   //  Heartbeats and events from the bus
    cbus_pub_t *pub;                //  Our own heartbeat
    cbus_calls_t *calls;            //  Bus requests in flight
    cbus_buf_t send;                //  Body of the bus request being sent
    cbus_heartbeats_t *heartbeats;  //  Who is alive
    cbus_metrics_t *metrics;        //  Our own metrics (HTTP, events lost)
    uint64_t boots [CBUS_GW_SERVICES];      //  Each service's boot id, 0 if unheard
    int64_t boot_heard [CBUS_GW_SERVICES];  //  When that boot was last heard

    //  Restarts (cbus_gw_restarts): per tracked process, its boot id
    //  (0 until heard), the restarts heard since we started, and when
    //  the last CBUS_GW_RESTARTS_UNHEALTHY were heard (a ring, mono ms)
    uint64_t tracked_boot [CBUS_GW_TRACKED];
    uint64_t restarts [CBUS_GW_TRACKED];
    int64_t restart_times [CBUS_GW_TRACKED][CBUS_GW_RESTARTS_UNHEALTHY];
    int64_t restart_window_ms;      //  gateway/restart_window_ms
    int64_t started_ms;             //  When the gateway started (mono ms)
    int64_t miner_heard;            //  When a miner's heartbeat was last heard (mono ms, 0: never)
    cbus_gw_mine_wait_t *mine_waits;    //  MINE calls in flight (cbus_gw_chain.c)
    size_t mine_count;              //  ... entries used
    size_t mine_alloc;              //  ... entries allocated
    cbus_www_t *www;                //  Dashboard files
    cbus_gw_guard_t *guard;         //  Deadlines and room of connections
    cbus_gw_events_t *events;       //  Event streams (GET /events)
    int send_buffer;                //  gateway/send_buffer_bytes (0: the kernel's)
    size_t error_lines;             //  Error answers logged this report period
    size_t errors_unlogged;         //  ... and those past CBUS_GW_ERROR_LINES, counted
    size_t max_connections;         //  gateway/max_connections, as started
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

//  --------------------------------------------------------------------------
//  Calls to services (cbus_gateway.c)

//  "chainstore", "mempool", "peersync".
const char *
    cbus_gw_service_name (int service);
//  A tracked process's name: the services', then "bus".
const char *
    cbus_gw_tracked_name (int tracked);
//  How many times the named process ("chainstore", "mempool",
//  "peersync", "bus") restarted since the gateway started, as its
//  heartbeats tell (a new boot id); 0 for any other name. A process that
//  dies before its first heartbeat (under a second) is not seen.
uint64_t
    cbus_gw_restarts (cbus_gateway_t *self, const char *service);
//  How many times it restarted within gateway/restart_window_ms of now
//  (at most CBUS_GW_RESTARTS_UNHEALTHY), by tracked index.
int
    cbus_gw_restarts_recent (cbus_gateway_t *self, int tracked, int64_t now);
//  True once the gateway has run long enough to have heard every live
//  process's heartbeat (CBUS_HEARTBEAT_DEAD_MS), and no miner was heard
//  within that: GET /mine answers 503 at once.
bool
    cbus_gw_no_miner (cbus_gateway_t *self, int64_t now);
//  The buffer a route encodes its next request's body into (with the
//  message's cbus_<name>_encode, which empties it first). Owned by the
//  gateway; what it holds is used up by the next cbus_gw_call.
cbus_buf_t *
    cbus_gw_body (cbus_gw_request_t *request);
//  Ask a service on behalf of an HTTP request, with a body encoded by the
//  command's message; handler runs once with the reply (call->owner is
//  the request, call->arg is arg). A call that cannot be sent (the
//  service is not connected, its queue is full, the gateway is stopping)
//  runs the handler at once with a local reply.
void
    cbus_gw_call (cbus_gw_request_t *request, int service, const char *command,
                  const cbus_buf_t *body, int64_t timeout_ms,
                  cbus_call_fn *handler, void *arg);
//  Let MHD do its work, then arm a timer for when it wants to run next.
void
    cbus_gw_mhd_run (cbus_gateway_t *self);
//  End a call with a local UNAVAILABLE reply, after it was taken out of
//  the table.
void
    cbus_gw_call_fail (const cbus_call_t *call, const char *reason);
//  While no miner is heard (cbus_gw_no_miner), answer every GET /mine
//  waiting for a block 503 (cbus_gw_chain.c; from the gateway's sweep).
void
    cbus_gw_mine_sweep (cbus_gateway_t *self, int64_t now);

//  --------------------------------------------------------------------------
//  Requests and answers (cbus_gw_http.c)

//  The MHD callbacks the daemon is started with.
enum MHD_Result
    cbus_gw_access (void *cls, struct MHD_Connection *connection, const char *url,
                    const char *method, const char *version, const char *upload_data,
                    size_t *upload_data_size, void **con_cls);
void
    cbus_gw_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
                       enum MHD_RequestTerminationCode code);
size_t
    cbus_gw_unescape (void *cls, struct MHD_Connection *connection, char *text);
void
    cbus_gw_mhd_log (void *cls, const char *format, va_list args);
void
    cbus_gw_notify_connection (void *cls, struct MHD_Connection *connection,
                               void **socket_context, enum MHD_ConnectionNotificationCode code);

//  A call of this request ended: forget its id.
void
    cbus_gw_request_forget (cbus_gw_request_t *request, uint64_t id);
//  After a reply: once nothing is in flight, let MHD carry on.
void
    cbus_gw_request_settle (cbus_gw_request_t *request);
void
    cbus_gw_request_suspend (cbus_gw_request_t *request);
//  A streamed answer has produced pos bytes (the guard's rate).
void
    cbus_gw_request_sent (cbus_gw_request_t *request, uint64_t pos);

//  Answer {"message": text, "code": name} with this HTTP status.
void
    cbus_gw_answer_error (cbus_gw_request_t *request, unsigned int status,
                          cbus_code_t code, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));
//  What a call that did not end OK answers: a service's refusal with the
//  HTTP status of its status word, its code and its reason; a local reply
//  503 unavailable; a reply that does not decode 502.
void
    cbus_gw_failure_of (const cbus_call_t *call, const cbus_reply_t *reply,
                        cbus_gw_failure_t *failure);
//  Answer a kept failure.
void
    cbus_gw_answer_kept (cbus_gw_request_t *request, const cbus_gw_failure_t *failure);
//  Answer the failure of a call (cbus_gw_failure_of).
void
    cbus_gw_answer_failure (cbus_gw_request_t *request, const cbus_call_t *call,
                            const cbus_reply_t *reply);
//  Answer 502: a service said OK with a body we cannot use ("what": the
//  user reads "chainbus-<service> sent <what>"). reason, when not NULL,
//  is the decoder's, for the log.
void
    cbus_gw_answer_bad_reply (cbus_gw_request_t *request, const cbus_call_t *call,
                              const char *what, const char *reason);
//  Decode an OK reply into msg by its definition. Returns 0, or -1 once
//  the request is answered: the service's failure, or 502 with what (as
//  cbus_gw_answer_bad_reply) when the body does not fit the definition.
int
    cbus_gw_reply_decode (cbus_gw_request_t *request, const cbus_call_t *call,
                          const cbus_reply_t *reply, const cbus_msgdef_t *def, void *msg,
                          const char *what);
//  True when the reply has this status word and a body that decodes.
bool
    cbus_gw_reply_is (const cbus_reply_t *reply, const char *status);

//  Copy for a log line: printable ASCII only, bounded.
void
    cbus_gw_log_safe (const char *text, char *out, size_t size);
//  Write a hash as a quoted hex string.
void
    cbus_gw_write_hex (cbus_buf_t *out, const uint8_t *hash);
//  Write a decoded string as a JSON string. -1 (nothing written) when it
//  is not valid UTF-8.
int
    cbus_gw_write_str (cbus_buf_t *out, cbus_str_t value)
    __attribute__ ((warn_unused_result));

//  --------------------------------------------------------------------------
//  What peersync reports, as JSON (cbus_gw_nodes.c)

//  The "sync" object of GET /status from PEER.LIST's sync. -1 (out
//  undefined) when a string is not UTF-8.
int
    cbus_gw_write_sync (cbus_buf_t *out, const cbus_sync_state_t *sync)
    __attribute__ ((warn_unused_result));

//  --------------------------------------------------------------------------
//  Streams (cbus_gw_chain.c): GET /chain and GET /nodes/resolve

//  Start a stream for the request; returns its text buffer, where the
//  caller writes the opening of the JSON object up to the chain's '['.
cbus_buf_t *
    cbus_gw_stream_new (cbus_gw_request_t *request);
void
    cbus_gw_stream_destroy (cbus_gw_stream_t **self_p);
//  Pin the tip, after which the answer is a 200 streamed up to it.
void
    cbus_gw_stream_start (cbus_gw_request_t *request);
//  MHD's pull callback of a streamed answer (cls is the request).
ssize_t
    cbus_gw_stream_read (void *cls, uint64_t pos, char *buf, size_t max);

//  --------------------------------------------------------------------------
//  Event streams (cbus_gw_events.c): GET /events

//  The streams' hub, its limits from the config and its timers on the
//  gateway's loop (started after the HTTP daemon). NULL when out of memory.
cbus_gw_events_t *
    cbus_gw_events_new (cbus_gateway_t *gateway);
//  After MHD stopped (every stream's request is freed by then).
void
    cbus_gw_events_destroy (cbus_gw_events_t **self_p);
//  An event from the bus: written once and queued to every stream that
//  asked for its topic. Returns true when a stream has bytes for MHD
//  (then call cbus_gw_mhd_run, once per batch of events).
bool
    cbus_gw_events_take (cbus_gw_events_t *self, cbus_event_t *event);
//  The gateway stops: every stream ends (and is resumed for MHD to see it).
void
    cbus_gw_events_stop (cbus_gw_events_t *self);

//  --------------------------------------------------------------------------
//  Static files (cbus_gw_status.c)

//  Answer a path that is no API route: a dashboard file for GET and HEAD,
//  else 404 (or 405 for "/").
void
    cbus_gw_www_answer (cbus_gw_request_t *request);

#endif
