/*  =========================================================================
    cbus_gateway - the HTTP gateway: the node's JSON API and dashboard

    The actor: its sockets (one DEALER per service, a SUB for heartbeats,
    block events and, while a GET /events stream takes them, the other
    topics it streams (cbus_gw_events.c), a PUB for its own), its zloop,
    which also drives libmicrohttpd's epoll descriptor, and the table of
    calls in flight to services.

    A call that cannot be sent (the service's socket is not connected: we
    set ZMQ_IMMEDIATE, so a stopped service is known at once; or its
    queue is full) runs its handler at once with a local reply; a call not
    answered in time runs it with one at its deadline (s_sweep), and so
    does a call to a service whose heartbeat shows a new boot id (it
    restarted and lost the call). Either way every handler runs exactly
    once per call, with one reply type: the service's own cbus_reply_t, or
    one made locally (UNAVAILABLE, code unavailable).
    =========================================================================
*/
#include "cbus_gateway.h"
#include "cbus_gw.h"
#include <netdb.h>
#include <arpa/inet.h>
#include <sys/resource.h>

//  Most replies or events handled per wake-up before serving HTTP again.
#define S_BATCH             1024
//  Sources silent this long are forgotten by the heartbeat table.
#define S_HEARTBEAT_FORGET_MS (10 * 60 * 1000)
//  Longest wait between two looks at expired calls.
#define S_SWEEP_MAX_MS      50
//  Seconds MHD keeps a connection that moves no byte at all (a client
//  that stopped reading its answer); the guard's deadlines are shorter.
#define S_IDLE_TIMEOUT_S    60
//  Descriptors kept for the bus, files and logs when sizing the cap.
#define S_FD_RESERVE        256
//  How often the guard looks at deadlines, and reports refusals.
#define S_GUARD_SWEEP_MS    250
#define S_GUARD_REPORT_MS   5000

static const char *s_service_names [CBUS_GW_SERVICES] = { "chainstore", "mempool", "peersync" };

const char *
cbus_gw_service_name (int service)
{
    return service >= 0 && service < CBUS_GW_SERVICES ? s_service_names [service] : "gateway";
}

const char *
cbus_gw_tracked_name (int tracked)
{
    return tracked == CBUS_GW_SERVICES ? "bus" : cbus_gw_service_name (tracked);
}

//  --------------------------------------------------------------------------
//  Calls

//  Run a call's handler with a reply; the call is out of the table.
static void
s_call_end (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    cbus_gw_request_forget (request, call->id);
    if (call->handler)
        call->handler (call, reply);
    cbus_gw_request_settle (request);
}

//  End a call that no reply will come for, with a local reply.
static void
s_call_fail (const cbus_call_t *call, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_call_fail (const cbus_call_t *call, const char *format, ...)
{
    char reason [CBUS_REASON_MAX];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof (reason), format, args);
    va_end (args);
    cbus_reply_t *reply = cbus_reply_new_local (CBUS_STATUS_UNAVAILABLE,
                                                CBUS_CODE_UNAVAILABLE, "%s", reason);
    s_call_end (call, reply);
    cbus_reply_destroy (&reply);
}

void
cbus_gw_call_fail (const cbus_call_t *call, const char *reason)
{
    s_call_fail (call, "%s", reason);
}

cbus_buf_t *
cbus_gw_body (cbus_gw_request_t *request)
{
    return &request->gateway->send;
}

void
cbus_gw_call (cbus_gw_request_t *request, int service, const char *command,
              const cbus_buf_t *body, int64_t timeout_ms,
              cbus_call_fn *handler, void *arg)
{
    cbus_gateway_t *self = request->gateway;
    assert (request->outstanding < CBUS_GW_MAX_CALLS);
    assert (service >= 0 && service < CBUS_GW_SERVICES);
    cbus_call_t call = { .owner = request, .service = service, .handler = handler, .arg = arg };
    if (self->stopping) {
        s_call_fail (&call, "chainbus-gateway is stopping");
        return;
    }
    call.id = cbus_calls_add (self->calls, request, service, handler, arg,
                              timeout_ms, cbus_mono_ms ());
    request->calls [request->outstanding++] = call.id;
    if (cbus_request_send (self->dealers [service], command, call.id, body->data, body->size) == 0)
        return;
    cbus_calls_cancel (self->calls, call.id);
    if (self->verbose)
        zsys_debug ("bus send failed service=%s command=%s errno=%s",
                    s_service_names [service], command, zmq_strerror (zmq_errno ()));
    s_call_fail (&call, "chainbus-%s is not reachable", s_service_names [service]);
}

//  Answer every call whose time is up (or every call, when stopping).
static void
s_expire (cbus_gateway_t *self, int64_t now)
{
    cbus_call_t call;
    int count = 0;
    while (cbus_calls_expired (self->calls, now, &call) == 0) {
        if (self->stopping)
            s_call_fail (&call, "chainbus-gateway is stopping");
        else
            s_call_fail (&call, "chainbus-%s did not answer in time",
                         s_service_names [call.service]);
        count++;
    }
    if (count)
        cbus_gw_mhd_run (self);
}

static int
s_dealer_readable (zloop_t *loop, zsock_t *dealer, void *arg)
{
    (void) loop;
    cbus_gateway_t *self = (cbus_gateway_t *) arg;
    int service = 0;
    while (service < CBUS_GW_SERVICES - 1 && self->dealers [service] != dealer)
        service++;
    for (int count = 0; count < S_BATCH && (zsock_events (dealer) & ZMQ_POLLIN); count++) {
        cbus_reply_t *reply = cbus_reply_recv (dealer);     //  NULL: malformed, dropped
        cbus_call_t call;
        if (reply && cbus_calls_take (self->calls, reply->request_id, &call) == 0)
            s_call_end (&call, reply);
        else
        if (reply && self->verbose)
            zsys_debug ("bus reply dropped service=%s: late or unknown id",
                        s_service_names [service]);
        cbus_reply_destroy (&reply);
    }
    cbus_gw_mhd_run (self);
    return 0;
}

static int
s_sweep (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    int64_t now = cbus_mono_ms ();
    s_expire ((cbus_gateway_t *) arg, now);
    cbus_gw_mine_sweep ((cbus_gateway_t *) arg, now);
    return 0;
}

//  --------------------------------------------------------------------------
//  Heartbeats

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
    while (service < CBUS_GW_SERVICES && (strlen (s_service_names [service]) != size
                                      || memcmp (s_service_names [service], src, size) != 0))
        service++;
    if (service == CBUS_GW_SERVICES)
        return;
    int64_t now = cbus_mono_ms ();
    if (self->boots [service] && self->boots [service] != boot) {
        cbus_call_t call;
        size_t count = 0;
        while (cbus_calls_take_lost (self->calls, service, self->boot_heard [service], &call) == 0) {
            s_call_fail (&call, "chainbus-%s restarted before answering; the request may not "
                         "have been carried out: try again", s_service_names [service]);
            count++;
        }
        zsys_info ("chainbus-%s restarted: %zu calls it had were answered 503",
                   s_service_names [service], count);
        if (count)
            cbus_gw_mhd_run (self);
    }
    self->boots [service] = boot;
    self->boot_heard [service] = now;
}

//  A tracked process's heartbeat: a boot id other than the last one
//  heard is a restart, counted and timed (GET /status, the metrics).
static void
s_heard_restart (cbus_gateway_t *self, const char *src, size_t size, uint64_t boot,
                 int64_t now)
{
    cbus_str_t name = { .data = src, .size = size };
    int tracked = 0;
    while (tracked < CBUS_GW_TRACKED && !cbus_str_eq (name, cbus_gw_tracked_name (tracked)))
        tracked++;
    if (tracked == CBUS_GW_TRACKED || self->tracked_boot [tracked] == boot)
        return;
    if (self->tracked_boot [tracked]) {
        uint64_t count = self->restarts [tracked]++;
        self->restart_times [tracked][count % CBUS_GW_RESTARTS_UNHEALTHY] = now;
        zsys_warning ("restart heard service=%s restarts=%" PRIu64 " recent=%d window_ms=%" PRId64,
                      cbus_gw_tracked_name (tracked), count + 1,
                      cbus_gw_restarts_recent (self, tracked, now), self->restart_window_ms);
    }
    self->tracked_boot [tracked] = boot;
}

uint64_t
cbus_gw_restarts (cbus_gateway_t *self, const char *service)
{
    for (int tracked = 0; tracked < CBUS_GW_TRACKED; tracked++)
        if (streq (service, cbus_gw_tracked_name (tracked)))
            return self->restarts [tracked];
    return 0;
}

int
cbus_gw_restarts_recent (cbus_gateway_t *self, int tracked, int64_t now)
{
    assert (tracked >= 0 && tracked < CBUS_GW_TRACKED);
    int recent = 0;
    uint64_t count = self->restarts [tracked];
    for (int index = 0; index < CBUS_GW_RESTARTS_UNHEALTHY && (uint64_t) index < count; index++)
        recent += now - self->restart_times [tracked][index] <= self->restart_window_ms;
    return recent;
}

bool
cbus_gw_no_miner (cbus_gateway_t *self, int64_t now)
{
    return now - self->started_ms > CBUS_HEARTBEAT_DEAD_MS
        && (self->miner_heard == 0 || now - self->miner_heard > CBUS_HEARTBEAT_DEAD_MS);
}

//  A node.heartbeat: who sent it (its source) and that it is one.
static void
s_heard (cbus_gateway_t *self, cbus_event_t *event)
{
    const msgpack_object *map = cbus_event_map (event);
    cbus_event_source_t source;
    cbus_heartbeat_t beat;
    char reason [CBUS_REASON_MAX];
    if (cbus_event_source_decode (map, &source, reason)
    ||  cbus_heartbeat_decode (map, &beat, reason)) {
        if (self->verbose)
            zsys_debug ("heartbeat ignored: %s", reason);
        return;
    }
    int64_t now = cbus_mono_ms ();
    cbus_heartbeats_record (self->heartbeats, source.src.data, source.src.size,
                            now, cbus_time_ms ());
    if (beat.has_hash_rate)
        cbus_heartbeats_set_rate (self->heartbeats, source.src.data, source.src.size,
                                  beat.hash_rate);
    cbus_heartbeats_set_beat (self->heartbeats, source.src.data, source.src.size,
                              beat.has_resident_bytes ? beat.resident_bytes : 0,
                              beat.has_metrics ? beat.metrics.data : NULL, beat.metrics.size);
    s_heard_boot (self, source.src.data, source.src.size, source.boot);
    s_heard_restart (self, source.src.data, source.src.size, source.boot, now);
    //  A miner: its source is miner.<id> (cbus_miner.c).
    if (source.src.size > 6 && memcmp (source.src.data, "miner.", 6) == 0)
        self->miner_heard = now;
}

static int
s_sub_readable (zloop_t *loop, zsock_t *sub, void *arg)
{
    (void) loop;
    cbus_gateway_t *self = (cbus_gateway_t *) arg;
    bool streamed = false;              //  GET /events streams have bytes
    for (int count = 0; count < S_BATCH && (zsock_events (sub) & ZMQ_POLLIN); count++) {
        cbus_event_t *event = cbus_event_recv (sub);
        cbus_metrics_event (self->metrics, event);
        if (event && event->decoded && streq (event->topic, CBUS_TOPIC_HEARTBEAT))
            s_heard (self, event);
        else
        if (event && event->decoded)
            cbus_gw_status_block_event (self, event);
        streamed |= cbus_gw_events_take (self->events, event);
        cbus_event_destroy (&event);
    }
    if (streamed)
        cbus_gw_mhd_run (self);
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
        zsys_warning ("gateway: unknown pipe command %s", command ? command : "(none)");
    zstr_free (&command);
    zmsg_destroy (&msg);
    return rc;
}

//  --------------------------------------------------------------------------
//  libmicrohttpd in the loop

static int
s_mhd_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    cbus_gateway_t *self = (cbus_gateway_t *) arg;
    self->mhd_timer = -1;
    cbus_gw_mhd_run (self);
    return 0;
}

//  Let MHD do its work, then arm a timer for when it wants to run next
//  (a connection timeout, or at once when it has work left over).
void
cbus_gw_mhd_run (cbus_gateway_t *self)
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
    cbus_gw_mhd_run ((cbus_gateway_t *) arg);
    return 0;
}

//  --------------------------------------------------------------------------
//  Connection guard (cbus_gw_guard.h)

static int
s_guard_sweep (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    cbus_gateway_t *self = (cbus_gateway_t *) arg;
    if (cbus_gw_guard_sweep (self->guard, cbus_mono_ms ()))
        cbus_gw_mhd_run (self);
    return 0;
}

static int
s_guard_report (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    cbus_gateway_t *self = (cbus_gateway_t *) arg;
    char line [256];
    if (cbus_gw_guard_report (self->guard, line, sizeof (line)) == 0)
        zsys_warning ("http refusals in the last %d s: %s", S_GUARD_REPORT_MS / 1000, line);
    if (self->errors_unlogged)
        zsys_warning ("http error answers in the last %d s: %zu more not logged one by one",
                      S_GUARD_REPORT_MS / 1000, self->errors_unlogged);
    self->error_lines = self->errors_unlogged = 0;
    return 0;
}

//  Slots the guard keeps free below MHD's cap: 1/16 of it, at least 32
//  (a quarter for a small cap). In epoll mode MHD stops accepting at its
//  cap (newcomers wait in the listen backlog, unanswered), and it accepts
//  several connections in one run before it cleans up those the guard
//  shut for them (17 shut and not yet cleaned up were seen at once under
//  the slow-read attack, cap 300; more on a slower, sanitizer build): the
//  room must hold that, so that a newcomer is always accepted and the
//  guard, not MHD, decides who goes. MHD's own cap is set a room above
//  max_connections, so the guard's threshold is two rooms below it.
static size_t
s_room (size_t max_connections)
{
    size_t room = max_connections / 16;
    size_t least = max_connections / 4 < 32 ? max_connections / 4 : 32;
    return room > least ? room : least;
}

//  Raise the soft open-file limit to the hard one, and cap the HTTP
//  connections below it. Returns the cap.
static size_t
s_connections_cap (cbus_gateway_t *self)
{
    size_t wanted = (size_t) cbus_config_int (self->config, "gateway/max_connections");
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit))
        return wanted;
    if (limit.rlim_cur < limit.rlim_max) {
        rlim_t was = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &limit))
            limit.rlim_cur = was;
    }
    size_t room = limit.rlim_cur > 2 * S_FD_RESERVE ? (size_t) limit.rlim_cur - S_FD_RESERVE
                                                     : (size_t) limit.rlim_cur / 2;
    //  MHD is given the cap plus a room more (s_http_start).
    if (wanted + s_room (wanted) > room) {
        size_t fits = room * 16 / 17;
        zsys_warning ("gateway/max_connections=%zu is above the open-file limit %zu less %d: "
                      "%zu used", wanted, (size_t) limit.rlim_cur, S_FD_RESERVE, fits);
        wanted = fits;
    }
    return wanted;
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

//  True when the address is a loopback one (127.0.0.0/8, ::1, or a
//  127.x address mapped into IPv6): only this machine reaches it.
static bool
s_is_loopback (const struct sockaddr_storage *address, bool ipv6)
{
    if (!ipv6) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) address;
        return (ntohl (in->sin_addr.s_addr) >> 24) == 127;
    }
    const struct in6_addr *in6 = &((const struct sockaddr_in6 *) address)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK (in6)
        || (IN6_IS_ADDR_V4MAPPED (in6) && in6->s6_addr [12] == 127);
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
    if (cbus_endpoint_connect (dealer, endpoint)) {
        zsock_destroy (&dealer);
        return NULL;
    }
    return dealer;
}

//  Start libmicrohttpd on gateway/http_bind and http_port, its epoll
//  descriptor polled by our loop. Returns 0, or -1 with a reason.
static int
s_http_start (cbus_gateway_t *self, char *reason)
{
    const char *host = cbus_config_str (self->config, "gateway/http_bind");
    int port = (int) cbus_config_int (self->config, "gateway/http_port");
    struct sockaddr_storage address = {0};
    bool ipv6 = false;
    if (s_resolve_bind (host, port, &address, &ipv6, reason))
        return -1;
    //  Anyone who reaches the port could then mine and change our peers.
    if (!self->admin_token_set && !s_is_loopback (&address, ipv6))
        zsys_warning ("gateway: listening on %s beyond loopback without an admin token: anyone "
                      "who reaches port %d can mine (GET /mine) and change the peers (POST "
                      "/nodes/register, GET /nodes/resolve); set gateway/admin_token_file "
                      "(--admin-token-file)", host, port);
    self->max_connections = s_connections_cap (self);
    cbus_gw_guard_limits_t limits = {
        .header_timeout_ms = cbus_config_int (self->config, "gateway/header_timeout_ms"),
        .body_min_rate = (uint64_t) cbus_config_int (self->config, "gateway/body_min_rate"),
        .max_connections = self->max_connections,
        .room = s_room (self->max_connections)
    };
    self->guard = cbus_gw_guard_new (&limits);
    if (!self->guard) {
        snprintf (reason, CBUS_REASON_MAX, "out of memory");
        cbus_service_fault (true, "%s", reason);
        return -1;
    }
    unsigned int per_address =
        (unsigned int) cbus_config_int (self->config, "gateway/max_connections_per_address");
    unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO
                       | MHD_USE_ERROR_LOG | (ipv6? MHD_USE_IPv6: 0);
    errno = 0;
    self->daemon = MHD_start_daemon (flags, (uint16_t) port, NULL, NULL, cbus_gw_access, self,
        MHD_OPTION_EXTERNAL_LOGGER, cbus_gw_mhd_log, self,       //  First, or MHD complains
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &address,
        MHD_OPTION_CONNECTION_LIMIT,
            (unsigned int) (self->max_connections + s_room (self->max_connections)),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_address,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) S_IDLE_TIMEOUT_S,
        MHD_OPTION_NOTIFY_CONNECTION, cbus_gw_notify_connection, self,
        MHD_OPTION_NOTIFY_COMPLETED, cbus_gw_completed, self,
        MHD_OPTION_UNESCAPE_CALLBACK, cbus_gw_unescape, self,
        MHD_OPTION_END);
    if (!self->daemon) {
        //  MHD leaves bind's errno: EADDRNOTAVAIL (the address is not up
        //  yet, at boot) is transient, EADDRINUSE and EACCES permanent.
        int error = errno;
        snprintf (reason, CBUS_REASON_MAX, "cannot listen on %s port %d (%s)", host, port,
                  error ? strerror (error) : "in use, or not allowed");
        cbus_service_fault (cbus_service_transient_errno (error), "%s", reason);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info || info->epoll_fd < 0) {
        snprintf (reason, CBUS_REASON_MAX, "libmicrohttpd gave no epoll descriptor");
        return -1;
    }
    self->mhd_item.fd = info->epoll_fd;
    self->mhd_item.events = ZMQ_POLLIN;
    zloop_poller (self->loop, &self->mhd_item, s_mhd_readable, self);
    zloop_poller_set_tolerant (self->loop, &self->mhd_item);
    info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    zsys_info ("gateway: listening on http://%s%s%s:%d max_connections=%zu "
               "max_connections_per_address=%u header_timeout_ms=%" PRId64
               " body_min_rate=%" PRIu64 " www=%s",
               ipv6? "[": "", host, ipv6? "]": "", info? info->port: port,
               self->max_connections, per_address, limits.header_timeout_ms,
               limits.body_min_rate, cbus_www_dir (self->www));
    zloop_timer (self->loop, S_GUARD_SWEEP_MS, 0, s_guard_sweep, self);
    zloop_timer (self->loop, S_GUARD_REPORT_MS, 0, s_guard_report, self);
    return 0;
}

static void
s_gateway_destroy (cbus_gateway_t **self_p);

static cbus_gateway_t *
s_gateway_new (zsock_t *pipe, cbus_config_t *config, char *reason)
{
    cbus_gateway_t *self = (cbus_gateway_t *) zmalloc (sizeof (cbus_gateway_t));
    char *endpoint = NULL;
    self->config = config;
    self->pipe = pipe;
    self->mhd_timer = -1;
    self->request_timeout_ms = cbus_config_int (config, "gateway/request_timeout_ms");
    self->mine_timeout_ms = cbus_config_int (config, "gateway/mine_timeout_ms");
    self->restart_window_ms = cbus_config_int (config, "gateway/restart_window_ms");
    self->started_ms = cbus_mono_ms ();
    self->resolve_timeout_ms = cbus_config_int (config, "gateway/resolve_timeout_ms");
    self->max_body = (uint64_t) cbus_config_int (config, "gateway/max_body");
    self->send_buffer = (int) cbus_config_int (config, "gateway/send_buffer_bytes");
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
    self->metrics = cbus_metrics_new ();
    self->www = cbus_www_new (cbus_config_str (config, "gateway/www_dir"));
    self->loop = zloop_new ();
    if (!self->calls || !self->heartbeats || !self->metrics || !self->www || !self->loop) {
        snprintf (reason, CBUS_REASON_MAX, "out of memory");
        goto failed;
    }
    //  Stop on $TERM from main only, not on a signal: see cbus_service.h.
    zloop_set_nonstop (self->loop, true);

    for (int service = 0; service < CBUS_GW_SERVICES; service++) {
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
    self->sub = cbus_endpoint_new_sub (endpoint, CBUS_TOPIC_HEARTBEAT);
    if (!self->sub) {
        snprintf (reason, CBUS_REASON_MAX, "cannot subscribe to %s", endpoint);
        goto failed;
    }
    //  Blocks too: GET /status estimates the network's hash rate from them.
    zsock_set_subscribe (self->sub, CBUS_TOPIC_BLOCK_CONNECTED);
    zsock_set_subscribe (self->sub, CBUS_TOPIC_BLOCK_DISCONNECTED);
    zstr_free (&endpoint);
    endpoint = cbus_config_endpoint (config, "bus-in");
    self->pub = cbus_pub_new (endpoint, "gateway");
    if (!self->pub) {
        snprintf (reason, CBUS_REASON_MAX, "cannot publish to %s", endpoint);
        goto failed;
    }
    zstr_free (&endpoint);

    if (s_http_start (self, reason))
        goto failed;
    self->events = cbus_gw_events_new (self);
    if (!self->events) {
        snprintf (reason, CBUS_REASON_MAX, "out of memory");
        goto failed;
    }
    zloop_reader (self->loop, pipe, s_pipe_readable, self);
    zloop_reader (self->loop, self->sub, s_sub_readable, self);
    int64_t sweep_ms = self->request_timeout_ms / 4;
    sweep_ms = sweep_ms < 5? 5: sweep_ms > S_SWEEP_MAX_MS? S_SWEEP_MAX_MS: sweep_ms;
    zloop_timer (self->loop, (size_t) sweep_ms, 0, s_sweep, self);
    zloop_timer (self->loop, CBUS_HEARTBEAT_MS, 0, s_heartbeat, self);
    return self;

failed:
    zstr_free (&endpoint);
    s_gateway_destroy (&self);
    return NULL;
}

//  Stop: answer whatever is in flight (503), end the event streams,
//  resume every suspended connection (MHD must not be stopped with one
//  suspended), then stop MHD, which notifies every request's completion.
static void
s_gateway_destroy (cbus_gateway_t **self_p)
{
    cbus_gateway_t *self = *self_p;
    if (!self)
        return;
    self->stopping = true;
    if (self->daemon) {
        s_expire (self, INT64_MAX);
        cbus_gw_events_stop (self->events);
        MHD_run (self->daemon);
        MHD_stop_daemon (self->daemon);
    }
    cbus_gw_events_destroy (&self->events);
    zloop_destroy (&self->loop);
    cbus_gw_guard_destroy (&self->guard);
    for (int service = 0; service < CBUS_GW_SERVICES; service++)
        zsock_destroy (&self->dealers [service]);
    zsock_destroy (&self->sub);
    cbus_pub_destroy (&self->pub);
    cbus_www_destroy (&self->www);
    cbus_heartbeats_destroy (&self->heartbeats);
    cbus_metrics_destroy (&self->metrics);
    cbus_calls_destroy (&self->calls);
    cbus_buf_free (&self->send);
    free (self->mine_waits);
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
    cbus_service_ready (self->loop);
    zloop_start (self->loop);
    zsys_info ("gateway: stopping, requests_in_flight=%zu", cbus_calls_size (self->calls));
    s_gateway_destroy (&self);
}
