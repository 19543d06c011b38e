/*  =========================================================================
    cbus_gw_events - GET /events: the bus's events as server-sent events

    A stream is a 200 text/event-stream answer that never ends by itself
    (docs/api.md "GET /events"). Each bus event the gateway's SUB socket
    takes on an offered topic gets the next number of one counter (seq)
    and is written ONCE as its SSE text (`id: <seq>`, `data: <one-line
    JSON>`), then copied into the buffer of every stream whose topic
    filter takes it. A stream's buffer is its own: the bytes its
    subscriber has not read yet. MHD pulls them with s_stream_read; when a
    stream's buffer is empty its connection is suspended (its guard clock
    paused: waiting for events is not reading slowly), and the next bytes
    queued resume it.

    The gateway never waits for a subscriber: a stream whose buffer would
    grow past gateway/event_buffer_bytes is closed at once (its socket
    shut down, its bytes dropped), counted in
    chainbus_event_streams_overflowed_total and in one log line per
    report period for all of them. Bytes that MHD or the kernel hold for
    a subscriber that does not read are the guard's business (its slow
    reader rule applies to a stream's running time, not to its pauses).
    At most gateway/event_streams_max streams are open (503 beyond); one
    that sent nothing for gateway/event_keepalive_ms gets `: keepalive`.

    Cost: an event is formatted once, O(streams) to hand out, plus a copy
    of its bytes per stream that takes it; memory at most streams x
    event_buffer_bytes. The topics nobody asked for are not subscribed
    (the bus's publishers then do not even send them to us): a topic is
    subscribed when its first stream opens and unsubscribed a while
    (S_LINGER_MS) after its last one went, so that a page that reloads
    does not miss the events published while its subscription travels.
    Blocks and heartbeats are always subscribed (the gateway reads them
    for GET /status and GET /metrics).
    =========================================================================
*/
#include "cbus_gw.h"
#include "cbus_gw_drain.h"
#include <sys/socket.h>

//  How the reconnect delay is told to EventSource clients (ms).
#define S_RETRY_MS          3000
//  A stream buffer grown past this is freed once it is empty.
#define S_KEEP_BYTES        (64 * 1024)
//  Longest topics= value read, and longest prefix in it.
#define S_QUERY_MAX         1024
#define S_PREFIX_MAX        64
//  How often streams are looked at for keepalives, at most.
#define S_TICK_MAX_MS       1000
//  How often overflows are reported (one line for all of them).
#define S_REPORT_MS         5000
//  How long a topic stays subscribed after its last stream went.
#define S_LINGER_MS         30000
//  Streams given new bytes are woken together at most this often: one
//  write per stream for every event of the interval rather than one per
//  event (at 200 events a second and 200 streams, 40,000 resumes and
//  writes a second otherwise). What a subscriber waits at most, beyond.
//  A stream over half full is woken at once, alone (s_stream_push): one
//  slow subscriber costs the per-event path for itself only.
#define S_FLUSH_MS          20

//  The topics offered, in the order stream.open lists them.
static const struct {
    const char *topic;
    bool always;                    //  The gateway subscribes it anyway
} s_topics [] = {
    { CBUS_TOPIC_BLOCK_CONNECTED, true },
    { CBUS_TOPIC_BLOCK_DISCONNECTED, true },
    { CBUS_TOPIC_CHAIN_STORAGE, false },
    { CBUS_TOPIC_TX_ADDED, false },
    { CBUS_TOPIC_TX_REMOVED, false },
    { CBUS_TOPIC_PEER_CONNECTED, false },
    { CBUS_TOPIC_PEER_DISCONNECTED, false },
    { CBUS_TOPIC_HEARTBEAT, true },
};
#define S_TOPICS (sizeof (s_topics) / sizeof (s_topics [0]))
#define S_ALL_TOPICS ((1u << S_TOPICS) - 1)

typedef struct _s_stream_t s_stream_t;

//  One GET /events answer (the request's state).
struct _s_stream_t {
    cbus_gw_events_t *hub;          //  Owner of the list it is in
    cbus_gw_request_t *request;     //  Its request (the stream is its state)
    uint32_t mask;                  //  Bit per offered topic it takes
    cbus_gw_drain_t out;            //  SSE text not yet handed to MHD
    int64_t last_write;             //  When bytes were last queued (mono ms)
    bool unsent;                    //  Bytes queued since it was last woken
    bool closed;                    //  Overflowed: ends with an error
    bool ended;                     //  The gateway stops: ends once sent
    s_stream_t *prev;               //  In the hub's list
    s_stream_t *next;
};

struct _cbus_gw_events_t {
    cbus_gateway_t *gateway;        //  Owner
    s_stream_t *streams;            //  Open streams, newest first
    size_t count;                   //  ... how many
    size_t streams_max;             //  gateway/event_streams_max
    size_t buffer_max;              //  gateway/event_buffer_bytes
    int64_t keepalive_ms;           //  gateway/event_keepalive_ms
    uint64_t seq;                   //  Events taken from the bus (last seq given)
    size_t wanted [S_TOPICS];       //  Streams taking each topic
    bool subscribed [S_TOPICS];     //  Topic subscribed on the SUB socket
    int64_t unwanted_since [S_TOPICS];  //  When its last stream went (mono ms)
    uint64_t overflowed;            //  Streams closed since the last report
    char boot [17];                 //  The gateway's boot id, hex
    cbus_buf_t text;                //  One event's SSE text, shared by all
    bool pressing;                  //  The event being handed out went to a
                                    //  stream over half full (s_stream_push)
    int flush_timer;                //  Armed when a stream has unsent bytes, or -1
};

//  --------------------------------------------------------------------------
//  Streams

static int
s_topic_index (const char *topic)
{
    for (size_t index = 0; index < S_TOPICS; index++)
        if (streq (topic, s_topics [index].topic))
            return (int) index;
    return -1;
}

//  A topic is taken by one more (delta 1) or one less (-1) stream:
//  subscribe it on the first; the unsubscribe waits (s_linger).
static void
s_want (cbus_gw_events_t *self, uint32_t mask, int delta, int64_t now)
{
    cbus_gateway_t *gateway = self->gateway;
    for (size_t index = 0; index < S_TOPICS; index++) {
        if (!(mask & (1u << index)))
            continue;
        if (delta > 0)
            self->wanted [index]++;
        else
        if (self->wanted [index] > 0 && --self->wanted [index] == 0)
            self->unwanted_since [index] = now;
        if (s_topics [index].always || self->subscribed [index] || self->wanted [index] == 0)
            continue;
        zsock_set_subscribe (gateway->sub, s_topics [index].topic);
        //  Events published while we were not subscribed were not ours:
        //  no loss to count before the next one.
        cbus_metrics_event_forget (gateway->metrics, s_topics [index].topic);
        self->subscribed [index] = true;
    }
}

//  Unsubscribe the topics no stream took for S_LINGER_MS.
static void
s_linger (cbus_gw_events_t *self, int64_t now)
{
    for (size_t index = 0; index < S_TOPICS; index++)
        if (!s_topics [index].always && self->subscribed [index] && self->wanted [index] == 0
        &&  now - self->unwanted_since [index] >= S_LINGER_MS) {
            zsock_set_unsubscribe (self->gateway->sub, s_topics [index].topic);
            self->subscribed [index] = false;
        }
}

static void
s_count_streams (cbus_gw_events_t *self)
{
    cbus_metrics_set (self->gateway->metrics, CBUS_METRIC_EVENT_STREAMS, NULL, NULL,
                      (double) self->count);
}

//  The request is freed (MHD's completion): the stream goes.
static void
s_stream_free (void *state)
{
    s_stream_t *stream = (s_stream_t *) state;
    cbus_gw_events_t *self = stream->hub;
    if (self) {
        if (stream->prev)
            stream->prev->next = stream->next;
        else
            self->streams = stream->next;
        if (stream->next)
            stream->next->prev = stream->prev;
        self->count--;
        s_want (self, stream->mask, -1, cbus_mono_ms ());
        s_count_streams (self);
    }
    cbus_gw_drain_free (&stream->out);
    free (stream);
}

//  Let MHD pull the stream's bytes again, if it was waiting for them.
static bool
s_stream_wake (s_stream_t *stream)
{
    if (!stream->request->suspended)
        return false;
    cbus_gw_request_settle (stream->request);
    return true;
}

//  The stream's socket, or -1.
static int
s_stream_fd (s_stream_t *stream)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (stream->request->connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info ? info->connect_fd : -1;
}

//  The subscriber did not read: drop its bytes, shut its socket down (MHD
//  may be waiting to write to it, and would never ask us again), and let
//  MHD see the end.
static void
s_stream_close (s_stream_t *stream)
{
    cbus_gw_events_t *self = stream->hub;
    stream->closed = true;
    cbus_gw_drain_free (&stream->out);
    self->overflowed++;
    cbus_metrics_inc (self->gateway->metrics, CBUS_METRIC_EVENT_STREAMS_OVERFLOWED);
    int fd = s_stream_fd (stream);
    if (fd >= 0)
        shutdown (fd, SHUT_RDWR);
    s_stream_wake (stream);
}

//  MHD does not watch a suspended connection: a subscriber that left
//  while its stream waited for events would hold its slot until the next
//  bytes. Its socket then reads as ended (0) or reset; a pipelined
//  request's bytes (> 0) or nothing yet (EAGAIN) are a subscriber still
//  there. Returns true when the stream was ended for it. One syscall.
static bool
s_stream_gone (s_stream_t *stream)
{
    if (!stream->request->suspended || stream->closed)
        return false;
    int fd = s_stream_fd (stream);
    char byte;
    ssize_t rc = fd >= 0 ? recv (fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) : 1;
    if (rc > 0 || (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
        return false;
    stream->closed = true;
    cbus_gw_drain_free (&stream->out);
    return s_stream_wake (stream);
}

//  Queue bytes for the stream; the flush wakes it, within S_FLUSH_MS. A
//  stream whose buffer is now over half full ("pressing") is woken at
//  once, it alone: MHD must write its bytes before the next events fill
//  it (a burst of up to 1,024, or events faster than the flush), while
//  the other streams keep waiting for the flush, batched. A stream whose
//  buffer would pass buffer_max is closed (and woken at once). Returns
//  true when a stream was woken.
static bool
s_stream_push (s_stream_t *stream, const char *data, size_t size, int64_t now)
{
    cbus_gw_events_t *self = stream->hub;
    if (stream->closed || stream->ended)
        return false;
    size_t queued = cbus_gw_drain_queued (&stream->out);
    if (queued + size > self->buffer_max) {
        s_stream_close (stream);
        return true;
    }
    cbus_gw_drain_append (&stream->out, data, size, S_KEEP_BYTES);
    stream->last_write = now;
    if (2 * (queued + size) > self->buffer_max) {
        stream->unsent = false;
        self->pressing = true;
        return s_stream_wake (stream);
    }
    stream->unsent = true;
    return false;
}

//  Wake every stream with unsent bytes. Returns true when one was.
static bool
s_flush (cbus_gw_events_t *self)
{
    bool woke = false;
    for (s_stream_t *stream = self->streams; stream; stream = stream->next)
        if (stream->unsent) {
            stream->unsent = false;
            woke |= s_stream_wake (stream);
        }
    return woke;
}

static int
s_flush_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    cbus_gw_events_t *self = (cbus_gw_events_t *) arg;
    self->flush_timer = -1;
    if (s_flush (self))
        cbus_gw_mhd_run (self->gateway);
    return 0;
}

//  Bytes were queued: wake their streams within S_FLUSH_MS.
static void
s_flush_soon (cbus_gw_events_t *self)
{
    if (self->flush_timer == -1)
        self->flush_timer = zloop_timer (self->gateway->loop, S_FLUSH_MS, 1, s_flush_timer, self);
    if (self->flush_timer == -1 && s_flush (self))     //  No timer: at once
        cbus_gw_mhd_run (self->gateway);
}

//  MHD's pull callback (cls: the request).
static ssize_t
s_stream_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) cls;
    s_stream_t *stream = (s_stream_t *) request->state;
    cbus_gw_request_sent (request, pos);
    if (stream->closed)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t size = cbus_gw_drain_take (&stream->out, buf, max, S_KEEP_BYTES);
    if (size > 0)
        return (ssize_t) size;
    if (stream->ended)
        return MHD_CONTENT_READER_END_OF_STREAM;
    cbus_gw_request_suspend (request);
    return 0;
}

//  --------------------------------------------------------------------------
//  Events as JSON (the API's form of each topic's fields)

//  A number as JSON: integers exactly (counts), others in their shortest
//  form.
static void
s_write_number (cbus_buf_t *out, double value)
{
    if (value == (double) (int64_t) value && value > -9007199254740992.0
    &&  value < 9007199254740992.0)
        cbus_buf_printf (out, "%" PRId64, (int64_t) value);
    else
        cbus_json_write_double (out, value);
}

//  chain.block.*: the block's header fields as GET /blocks gives them,
//  and its transaction count (not its txids: a block may hold 10,000).
static int
s_write_block (cbus_buf_t *out, const msgpack_object *map, const cbus_msgdef_t *def,
               char *reason)
{
    cbus_block_connected_t block;
    //  Both topics are one row of fields: one layout.
    if (cbus_msgdef_decode (def, map, &block, reason))
        return -1;
    cbus_buf_puts (out, ", \"hash\": ");
    cbus_gw_write_hex (out, block.hash);
    cbus_buf_printf (out, ", \"index\": %" PRIu64 ", \"previous_hash\": ", block.height);
    cbus_gw_write_hex (out, block.prev_hash);
    cbus_buf_puts (out, ", \"merkle_root\": ");
    cbus_gw_write_hex (out, block.merkle_root);
    cbus_buf_printf (out, ", \"timestamp\": %" PRIu64 ".%03u, \"transaction_count\": %" PRIu32,
                     block.time_ms / 1000, (unsigned) (block.time_ms % 1000), block.txids.count);
    return 0;
}

static int
s_write_tx_added (cbus_buf_t *out, const msgpack_object *map, char *reason)
{
    cbus_tx_added_t added;
    if (cbus_tx_added_decode (map, &added, reason))
        return -1;
    cbus_buf_puts (out, ", \"txid\": ");
    cbus_gw_write_hex (out, added.txid);
    cbus_buf_printf (out, ", \"size\": %" PRIu64 ", \"users\": [", added.size);
    for (uint32_t index = 0; index < added.users.count; index++) {
        if (index)
            cbus_buf_puts (out, ", ");
        if (cbus_gw_write_str (out, cbus_list_str (&added.users, index)))
            return cbus_fail (reason, "a user name is not UTF-8");
    }
    cbus_buf_puts (out, "]");
    if (added.has_received_ms)
        cbus_buf_printf (out, ", \"received_ms\": %" PRIu64, added.received_ms);
    return 0;
}

static int
s_write_tx_removed (cbus_buf_t *out, const msgpack_object *map, char *reason)
{
    cbus_tx_removed_t removed;
    if (cbus_tx_removed_decode (map, &removed, reason))
        return -1;
    cbus_buf_puts (out, ", \"txid\": ");
    cbus_gw_write_hex (out, removed.txid);
    cbus_buf_puts (out, ", \"reason\": ");
    if (cbus_gw_write_str (out, removed.reason))
        return cbus_fail (reason, "the reason is not UTF-8");
    return 0;
}

static int
s_write_peer (cbus_buf_t *out, const msgpack_object *map, const cbus_msgdef_t *def,
              char *reason)
{
    cbus_peer_connected_t peer;
    //  Both topics are one row of fields: one layout.
    if (cbus_msgdef_decode (def, map, &peer, reason))
        return -1;
    cbus_buf_puts (out, ", \"address\": ");
    int rc = cbus_gw_write_str (out, peer.address);
    cbus_buf_puts (out, ", \"node_id\": ");
    rc |= cbus_gw_write_str (out, peer.node_id);
    cbus_buf_puts (out, ", \"state\": ");
    rc |= cbus_gw_write_str (out, peer.state);
    return rc ? cbus_fail (reason, "a field is not UTF-8") : 0;
}

static int
s_write_storage (cbus_buf_t *out, const msgpack_object *map, char *reason)
{
    cbus_chain_storage_t storage;
    if (cbus_chain_storage_decode (map, &storage, reason))
        return -1;
    cbus_buf_printf (out, ", \"writable\": %s, \"storage\": ", storage.writable ? "true" : "false");
    if (cbus_gw_write_str (out, storage.storage))
        return cbus_fail (reason, "storage is not UTF-8");
    cbus_buf_puts (out, ", \"storage_code\": ");
    //  A sender without storage_code means a full disk (docs/bus.md).
    if (storage.writable)
        cbus_buf_puts (out, "null");
    else
    if (!storage.has_storage_code)
        cbus_buf_puts (out, "\"no_space\"");
    else
    if (cbus_gw_write_str (out, storage.storage_code))
        return cbus_fail (reason, "storage_code is not UTF-8");
    return 0;
}

//  The snapshot's counters and gauges summed over their label sets, a
//  histogram as name_count and name_sum: what a chart plots.
static void
s_write_metrics (cbus_buf_t *out, const cbus_heartbeat_t *beat)
{
    cbus_buf_puts (out, ", \"metrics\": {");
    char reason [CBUS_REASON_MAX];
    cbus_metrics_t *metrics = beat->has_metrics
                            ? cbus_metrics_decode (beat->metrics.data, beat->metrics.size, reason)
                            : NULL;
    bool first = true;
    for (int id = 0; metrics && id < CBUS_METRIC_COUNT_; id++) {
        double sum;
        uint64_t count;
        if (cbus_metrics_total (metrics, (cbus_metric_t) id, &sum, &count) == 0)
            continue;
        const char *name = cbus_metric_name ((cbus_metric_t) id);
        cbus_buf_puts (out, first ? "\"" : ", \"");
        first = false;
        if (cbus_metric_type ((cbus_metric_t) id) == CBUS_METRIC_TYPE_HISTOGRAM) {
            cbus_buf_printf (out, "%s_count\": %" PRIu64 ", \"%s_sum\": ", name, count, name);
            s_write_number (out, sum);
        }
        else {
            cbus_buf_printf (out, "%s\": ", name);
            s_write_number (out, sum);
        }
    }
    cbus_buf_puts (out, "}");
    cbus_metrics_destroy (&metrics);
}

static int
s_write_heartbeat (cbus_buf_t *out, const msgpack_object *map, char *reason)
{
    cbus_heartbeat_t beat;
    if (cbus_heartbeat_decode (map, &beat, reason))
        return -1;
    cbus_buf_printf (out, ", \"pid\": %" PRIu64, beat.pid);
    if (beat.has_hash_rate)
        cbus_buf_printf (out, ", \"hash_rate\": %" PRIu64, beat.hash_rate);
    if (beat.has_resident_bytes)
        cbus_buf_printf (out, ", \"resident_bytes\": %" PRIu64, beat.resident_bytes);
    s_write_metrics (out, &beat);
    return 0;
}

//  The SSE text of one event into out: "id: <seq>\ndata: {...}\n\n".
//  Returns 0, or -1 with a reason when its body does not decode.
static int
s_write_event (cbus_buf_t *out, cbus_event_t *event, int index, uint64_t seq, char *reason)
{
    const msgpack_object *map = cbus_event_map (event);
    cbus_event_source_t source;
    if (cbus_event_source_decode (map, &source, reason))
        return -1;
    cbus_buf_reset (out);
    cbus_buf_printf (out, "id: %" PRIu64 "\ndata: {\"topic\": \"%s\", \"seq\": %" PRIu64
                     ", \"source\": ", seq, s_topics [index].topic, seq);
    if (cbus_gw_write_str (out, source.src))
        return cbus_fail (reason, "src is not UTF-8");
    const char *topic = s_topics [index].topic;
    int rc = streq (topic, CBUS_TOPIC_BLOCK_CONNECTED)
           ? s_write_block (out, map, &cbus_block_connected_def, reason)
           : streq (topic, CBUS_TOPIC_BLOCK_DISCONNECTED)
           ? s_write_block (out, map, &cbus_block_disconnected_def, reason)
           : streq (topic, CBUS_TOPIC_TX_ADDED) ? s_write_tx_added (out, map, reason)
           : streq (topic, CBUS_TOPIC_TX_REMOVED) ? s_write_tx_removed (out, map, reason)
           : streq (topic, CBUS_TOPIC_PEER_CONNECTED)
           ? s_write_peer (out, map, &cbus_peer_connected_def, reason)
           : streq (topic, CBUS_TOPIC_PEER_DISCONNECTED)
           ? s_write_peer (out, map, &cbus_peer_disconnected_def, reason)
           : streq (topic, CBUS_TOPIC_CHAIN_STORAGE) ? s_write_storage (out, map, reason)
           : s_write_heartbeat (out, map, reason);
    if (rc == 0)
        cbus_buf_puts (out, "}\n\n");
    return rc;
}

//  --------------------------------------------------------------------------
//  The hub

bool
cbus_gw_events_take (cbus_gw_events_t *self, cbus_event_t *event)
{
    if (!self || !event || !event->decoded)
        return false;
    int index = s_topic_index (event->topic);
    if (index < 0)
        return false;
    uint64_t seq = ++self->seq;
    if (self->wanted [index] == 0)
        return false;
    char reason [CBUS_REASON_MAX];
    if (s_write_event (&self->text, event, index, seq, reason)) {
        if (self->gateway->verbose)
            zsys_debug ("event not streamed topic=%s seq=%" PRIu64 ": %s", event->topic, seq,
                        reason);
        return false;
    }
    int64_t now = cbus_mono_ms ();
    bool woke = false;
    self->pressing = false;
    for (s_stream_t *stream = self->streams; stream; stream = stream->next)
        if (stream->mask & (1u << index))
            woke |= s_stream_push (stream, self->text.data, self->text.size, now);
    s_flush_soon (self);
    //  A stream presses (woken, or already being written to): let MHD
    //  write to it now, before the next event of the batch (the others
    //  wait for the flush).
    if (self->pressing) {
        self->pressing = false;
        cbus_gw_mhd_run (self->gateway);
        return false;
    }
    return woke;
}

//  Keepalives for streams that sent nothing for keepalive_ms, and the
//  end of those whose subscriber left.
static int
s_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    cbus_gw_events_t *self = (cbus_gw_events_t *) arg;
    int64_t now = cbus_mono_ms ();
    static const char s_keepalive [] = ": keepalive\n\n";
    bool woke = false;
    for (s_stream_t *stream = self->streams; stream; stream = stream->next)
        if (s_stream_gone (stream))
            woke = true;
        else
        if (now - stream->last_write >= self->keepalive_ms)
            woke |= s_stream_push (stream, s_keepalive, sizeof (s_keepalive) - 1, now);
    woke |= s_flush (self);
    s_linger (self, now);
    if (woke)
        cbus_gw_mhd_run (self->gateway);
    return 0;
}

//  One line for every stream closed for overflow in the period.
static int
s_report (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    cbus_gw_events_t *self = (cbus_gw_events_t *) arg;
    if (self->overflowed)
        zsys_warning ("event streams closed in the last %d s: %" PRIu64 " whose subscriber did "
                      "not read them (gateway/event_buffer_bytes=%zu), streams=%zu",
                      S_REPORT_MS / 1000, self->overflowed, self->buffer_max, self->count);
    self->overflowed = 0;
    return 0;
}

cbus_gw_events_t *
cbus_gw_events_new (cbus_gateway_t *gateway)
{
    cbus_gw_events_t *self = (cbus_gw_events_t *) zmalloc (sizeof (cbus_gw_events_t));
    if (!self)
        return NULL;
    self->gateway = gateway;
    self->flush_timer = -1;
    cbus_config_t *config = gateway->config;
    self->streams_max = (size_t) cbus_config_int (config, "gateway/event_streams_max");
    self->buffer_max = (size_t) cbus_config_int (config, "gateway/event_buffer_bytes");
    self->keepalive_ms = cbus_config_int (config, "gateway/event_keepalive_ms");
    snprintf (self->boot, sizeof (self->boot), "%016" PRIx64, cbus_pub_boot (gateway->pub));
    for (size_t index = 0; index < S_TOPICS; index++)
        self->subscribed [index] = s_topics [index].always;
    int64_t tick = self->keepalive_ms / 4 < S_TICK_MAX_MS ? self->keepalive_ms / 4 : S_TICK_MAX_MS;
    //  Without its timers nothing keeps streams alive or sees readers
    //  gone: fail the start (the gateway's loop, and any timer set here,
    //  go with the gateway).
    if (zloop_timer (gateway->loop, (size_t) (tick < 25 ? 25 : tick), 0, s_tick, self) == -1
    ||  zloop_timer (gateway->loop, S_REPORT_MS, 0, s_report, self) == -1) {
        free (self);
        return NULL;
    }
    s_count_streams (self);
    cbus_metrics_touch (gateway->metrics, CBUS_METRIC_EVENT_STREAMS_OVERFLOWED, NULL, NULL);
    return self;
}

void
cbus_gw_events_destroy (cbus_gw_events_t **self_p)
{
    cbus_gw_events_t *self = *self_p;
    if (!self)
        return;
    //  (Its timers went with the gateway's loop.) MHD freed every request
    //  before; any stream left is detached.
    for (s_stream_t *stream = self->streams; stream; stream = stream->next)
        stream->hub = NULL;
    cbus_buf_free (&self->text);
    free (self);
    *self_p = NULL;
}

void
cbus_gw_events_stop (cbus_gw_events_t *self)
{
    if (!self)
        return;
    for (s_stream_t *stream = self->streams; stream; stream = stream->next) {
        stream->ended = true;
        s_stream_wake (stream);
    }
}

//  --------------------------------------------------------------------------
//  GET /events[?topics=prefix,prefix...]

//  The topics a topics= value takes, as a mask; 0 with a 400 answered
//  when an item is empty or matches no offered topic.
static uint32_t
s_parse_topics (cbus_gw_request_t *request, const char *value)
{
    if (!value) {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                              "topics is empty: give comma-separated topic prefixes, such as "
                              "topics=chain.,mempool.tx");
        return 0;
    }
    if (strlen (value) > S_QUERY_MAX) {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                              "topics is too long: at most %d characters", S_QUERY_MAX);
        return 0;
    }
    uint32_t mask = 0;
    const char *item = value;
    while (true) {
        size_t size = strcspn (item, ",");
        if (size == 0) {
            cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                                  "topics has an empty prefix: give comma-separated topic "
                                  "prefixes, such as topics=chain.,mempool.tx");
            return 0;
        }
        uint32_t matched = 0;
        for (size_t index = 0; index < S_TOPICS; index++)
            if (size <= S_PREFIX_MAX && strncmp (s_topics [index].topic, item, size) == 0)
                matched |= 1u << index;
        if (!matched) {
            char prefix [S_PREFIX_MAX + 1], safe [S_PREFIX_MAX + 1];
            snprintf (prefix, sizeof (prefix), "%.*s",
                      (int) (size < S_PREFIX_MAX ? size : S_PREFIX_MAX), item);
            cbus_gw_log_safe (prefix, safe, sizeof (safe));
            cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                                  "No topic starts with '%s'%s: the topics are chain.block."
                                  "connected, chain.block.disconnected, chain.storage, mempool.tx."
                                  "added, mempool.tx.removed, peer.connected, peer.disconnected "
                                  "and node.heartbeat", safe, size > S_PREFIX_MAX ? "..." : "");
            return 0;
        }
        mask |= matched;
        if (item [size] == 0)
            return mask;
        item += size + 1;
    }
}

//  The first bytes of a stream: the reconnect delay, and stream.open.
static void
s_write_open (cbus_gw_events_t *self, s_stream_t *stream)
{
    cbus_buf_t *out = &stream->out.text;
    cbus_buf_printf (out, "retry: %d\nid: %" PRIu64 "\ndata: {\"topic\": \"stream.open\", "
                     "\"seq\": %" PRIu64 ", \"source\": \"gateway\", \"gateway_boot\": \"%s\", "
                     "\"topics\": [", S_RETRY_MS, self->seq, self->seq, self->boot);
    bool first = true;
    for (size_t index = 0; index < S_TOPICS; index++)
        if (stream->mask & (1u << index)) {
            cbus_buf_printf (out, "%s\"%s\"", first ? "" : ", ", s_topics [index].topic);
            first = false;
        }
    cbus_buf_puts (out, "]}\n\n");
}

static void
s_events_start (cbus_gw_request_t *request)
{
    cbus_gateway_t *gateway = request->gateway;
    cbus_gw_events_t *self = gateway->events;
    const char *topics = NULL;
    bool given = MHD_lookup_connection_value_n (request->connection, MHD_GET_ARGUMENT_KIND,
                                                "topics", 6, &topics, NULL) == MHD_YES;
    uint32_t mask = given ? s_parse_topics (request, topics) : S_ALL_TOPICS;
    if (!mask)
        return;
    if (!self || gateway->stopping) {
        cbus_gw_answer_error (request, MHD_HTTP_SERVICE_UNAVAILABLE, CBUS_CODE_UNAVAILABLE,
                              "chainbus-gateway is stopping");
        return;
    }
    if (self->count >= self->streams_max) {
        cbus_gw_answer_error (request, MHD_HTTP_SERVICE_UNAVAILABLE, CBUS_CODE_FULL,
                              "Too many event streams open: this node serves at most %zu at "
                              "once (gateway/event_streams_max); try again later",
                              self->streams_max);
        return;
    }
    s_stream_t *stream = (s_stream_t *) zmalloc (sizeof (s_stream_t));
    if (!stream) {
        cbus_gw_answer_error (request, MHD_HTTP_SERVICE_UNAVAILABLE, CBUS_CODE_FULL,
                              "Out of memory for an event stream; try again later");
        return;
    }
    stream->hub = self;
    stream->request = request;
    stream->mask = mask;
    stream->last_write = cbus_mono_ms ();
    s_write_open (self, stream);
    stream->next = self->streams;
    if (self->streams)
        self->streams->prev = stream;
    self->streams = stream;
    self->count++;
    s_want (self, mask, 1, stream->last_write);
    s_count_streams (self);
    request->state = stream;
    request->state_free = s_stream_free;
    request->reader = s_stream_read;
    request->out_type = "text/event-stream";
    request->no_store = true;
    request->status = MHD_HTTP_OK;
}

const cbus_gw_route_t cbus_gw_events_routes [] = {
    { "/events", "GET", false, false, s_events_start },
    { NULL }
};
