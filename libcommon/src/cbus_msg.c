/*  =========================================================================
    cbus_msg - the bus wire protocol: requests, replies and events
    =========================================================================
*/
#include "cbus.h"
#include <stdarg.h>
#include <sodium.h>

//  Decode a body frame into unpacked; true when it holds exactly one map.
static bool
s_decode_map (zframe_t *body, msgpack_unpacked *unpacked)
{
    msgpack_unpacked_init (unpacked);
    size_t offset = 0;
    size_t size = zframe_size (body);
    if (size == 0)
        return false;
    int rc = cbus_unpack_next (unpacked, (const char *) zframe_data (body), size, &offset);
    return rc == MSGPACK_UNPACK_SUCCESS && offset == size
        && unpacked->data.type == MSGPACK_OBJECT_MAP;
}

//  An empty msgpack map, the body when there is nothing to say.
static const uint8_t s_empty_map [] = { 0x80 };

//  --------------------------------------------------------------------------
//  Requests and replies

int
cbus_request_send (zsock_t *dealer, const char *command, uint64_t request_id,
                   const void *body, size_t size)
{
    uint8_t id [8];
    for (int index = 0; index < 8; index++)
        id [index] = (uint8_t) (request_id >> (8 * index));
    if (!body) {
        body = s_empty_map;
        size = sizeof (s_empty_map);
    }
    void *handle = zsock_resolve (dealer);
    if (zmq_send (handle, command, strlen (command), ZMQ_SNDMORE) < 0
    ||  zmq_send (handle, id, sizeof (id), ZMQ_SNDMORE) < 0
    ||  zmq_send (handle, body, size, 0) < 0)
        return -1;
    return 0;
}

cbus_request_t *
cbus_request_recv (zsock_t *router)
{
    zmsg_t *msg = zmsg_recv (router);
    if (!msg)
        return NULL;
    cbus_request_t *self = NULL;
    if (zmsg_size (msg) != 4) {
        zsys_warning ("dropped request with %zu frames", zmsg_size (msg));
        goto cleanup;
    }
    self = (cbus_request_t *) zmalloc (sizeof (cbus_request_t));
    self->routing_id = zmsg_pop (msg);
    zframe_t *command = zmsg_pop (msg);
    size_t size = zframe_size (command);
    if (size == 0 || size >= sizeof (self->command)) {
        zframe_destroy (&command);
        zsys_warning ("dropped request with a bad command frame");
        cbus_request_destroy (&self);
        goto cleanup;
    }
    memcpy (self->command, zframe_data (command), size);
    self->command [size] = 0;
    zframe_destroy (&command);
    self->request_id = zmsg_pop (msg);
    self->body = zmsg_pop (msg);
    self->decoded = s_decode_map (self->body, &self->unpacked);
cleanup:
    zmsg_destroy (&msg);
    return self;
}

void
cbus_request_destroy (cbus_request_t **self_p)
{
    assert (self_p);
    cbus_request_t *self = *self_p;
    if (self) {
        zframe_destroy (&self->routing_id);
        zframe_destroy (&self->request_id);
        zframe_destroy (&self->body);
        msgpack_unpacked_destroy (&self->unpacked);
        free (self);
        *self_p = NULL;
    }
}

const msgpack_object *
cbus_request_map (cbus_request_t *self)
{
    return self->decoded ? &self->unpacked.data : NULL;
}

int
cbus_reply_send (zsock_t *router, cbus_request_t *request, const char *status,
                 const void *body, size_t size)
{
    if (!body) {
        body = s_empty_map;
        size = sizeof (s_empty_map);
    }
    void *handle = zsock_resolve (router);
    if (zmq_send (handle, zframe_data (request->routing_id),
                  zframe_size (request->routing_id), ZMQ_SNDMORE) < 0
    ||  zmq_send (handle, status, strlen (status), ZMQ_SNDMORE) < 0
    ||  zmq_send (handle, zframe_data (request->request_id),
                  zframe_size (request->request_id), ZMQ_SNDMORE) < 0
    ||  zmq_send (handle, body, size, 0) < 0)
        return -1;
    return 0;
}

static int
s_reply_refuse (zsock_t *router, cbus_request_t *request, const char *status,
                cbus_code_t code, const char *format, va_list args)
{
    char reason [CBUS_REASON_MAX];
    vsnprintf (reason, sizeof (reason), format, args);
    cbus_buf_t buf = {0};
    cbus_refusal_t refusal = { .code = cbus_str (cbus_code_name (code)), .reason = cbus_str (reason) };
    cbus_refusal_encode (&refusal, &buf);
    int rc = cbus_reply_send (router, request, status, buf.data, buf.size);
    cbus_buf_free (&buf);
    return rc;
}

int
cbus_reply_refuse (zsock_t *router, cbus_request_t *request, const char *status,
                   cbus_code_t code, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    int rc = s_reply_refuse (router, request, status, code, format, args);
    va_end (args);
    return rc;
}

cbus_code_t
cbus_status_code (const char *status)
{
    if (streq (status, CBUS_STATUS_OK))
        return CBUS_CODE_OK;
    if (streq (status, CBUS_STATUS_INVALID))
        return CBUS_CODE_INVALID;
    if (streq (status, CBUS_STATUS_NOTFOUND))
        return CBUS_CODE_NOT_FOUND;
    if (streq (status, CBUS_STATUS_FULL))
        return CBUS_CODE_FULL;
    if (streq (status, CBUS_STATUS_UNAVAILABLE))
        return CBUS_CODE_UNAVAILABLE;
    if (streq (status, CBUS_STATUS_ERROR))
        return CBUS_CODE_STORAGE;
    return CBUS_CODE_INTERNAL;
}

//  --------------------------------------------------------------------------
//  Replies as clients see them

//  Little-endian u64 of an 8-byte id frame; 0 for any other size.
static uint64_t
s_request_id (const uint8_t *data, size_t size)
{
    uint64_t id = 0;
    if (size == 8)
        for (int index = 7; index >= 0; index--)
            id = (id << 8) | data [index];
    return id;
}

//  Fill code and reason of a non-OK reply from its body.
static void
s_reply_read_refusal (cbus_reply_t *self)
{
    self->code = cbus_status_code (self->status);
    self->reason [0] = 0;
    if (!self->decoded)
        return;
    //  Read field by field: a refusal from an older service may lack the
    //  code, and still has its reason.
    cbus_str_t text;
    if (cbus_msg_get_str (&self->unpacked.data, "code", &text.data, &text.size) == 0)
        self->code = cbus_code_from_name (text.data, text.size);
    if (cbus_msg_get_str (&self->unpacked.data, "reason", &text.data, &text.size) == 0) {
        if (text.size >= sizeof (self->reason))
            text.size = sizeof (self->reason) - 1;
        memcpy (self->reason, text.data, text.size);
        self->reason [text.size] = 0;
    }
    if (self->code == CBUS_CODE_OK)         //  A refusal is never "ok"
        self->code = CBUS_CODE_INTERNAL;
}

cbus_reply_t *
cbus_reply_recv (zsock_t *dealer)
{
    zmsg_t *msg = zmsg_recv (dealer);
    if (!msg)
        return NULL;
    cbus_reply_t *self = NULL;
    zframe_t *status = zmsg_first (msg);
    if (zmsg_size (msg) != 3 || zframe_size (status) == 0
    ||  zframe_size (status) >= sizeof (self->status)) {
        zsys_warning ("dropped reply with %zu frames", zmsg_size (msg));
        goto cleanup;
    }
    self = (cbus_reply_t *) zmalloc (sizeof (cbus_reply_t));
    memcpy (self->status, zframe_data (status), zframe_size (status));
    zframe_t *id = zmsg_next (msg);
    self->request_id = s_request_id (zframe_data (id), zframe_size (id));
    zframe_destroy (&(zframe_t *) {zmsg_pop (msg)});
    zframe_destroy (&(zframe_t *) {zmsg_pop (msg)});
    self->body = zmsg_pop (msg);
    self->decoded = s_decode_map (self->body, &self->unpacked);
    if (streq (self->status, CBUS_STATUS_OK))
        self->code = CBUS_CODE_OK;
    else
        s_reply_read_refusal (self);
cleanup:
    zmsg_destroy (&msg);
    return self;
}

cbus_reply_t *
cbus_reply_new_local (const char *status, cbus_code_t code, const char *format, ...)
{
    cbus_reply_t *self = (cbus_reply_t *) zmalloc (sizeof (cbus_reply_t));
    snprintf (self->status, sizeof (self->status), "%s", status);
    self->code = code;
    va_list args;
    va_start (args, format);
    vsnprintf (self->reason, sizeof (self->reason), format, args);
    va_end (args);
    msgpack_unpacked_init (&self->unpacked);
    return self;
}

void
cbus_reply_destroy (cbus_reply_t **self_p)
{
    assert (self_p);
    cbus_reply_t *self = *self_p;
    if (self) {
        zframe_destroy (&self->body);
        msgpack_unpacked_destroy (&self->unpacked);
        free (self);
        *self_p = NULL;
    }
}

bool
cbus_reply_ok (const cbus_reply_t *self)
{
    return self->decoded && streq (self->status, CBUS_STATUS_OK);
}

const msgpack_object *
cbus_reply_map (const cbus_reply_t *self)
{
    return self->decoded ? &self->unpacked.data : NULL;
}

bool
cbus_reply_is_local (const cbus_reply_t *self)
{
    return self->body == NULL;
}

//  --------------------------------------------------------------------------
//  Synchronous client

struct _cbus_client_t {
    zsock_t *dealer;            //  Connected to the service's ROUTER
    uint64_t next_id;           //  Request id of the next call
};

cbus_client_t *
cbus_client_new (const char *endpoint)
{
    cbus_client_t *self = (cbus_client_t *) zmalloc (sizeof (cbus_client_t));
    self->dealer = zsock_new (ZMQ_DEALER);
    //  A request to a dead service must not sit queued forever.
    zsock_set_linger (self->dealer, 0);
    zsock_set_maxmsgsize (self->dealer, CBUS_MSG_MAX_BYTES);
    if (!self->dealer || cbus_endpoint_connect (self->dealer, endpoint)) {
        zsock_destroy (&self->dealer);
        free (self);
        return NULL;
    }
    self->next_id = randombytes_random ();
    return self;
}

void
cbus_client_destroy (cbus_client_t **self_p)
{
    assert (self_p);
    cbus_client_t *self = *self_p;
    if (self) {
        zsock_destroy (&self->dealer);
        free (self);
        *self_p = NULL;
    }
}

cbus_reply_t *
cbus_client_request (cbus_client_t *self, const char *command,
                     const void *body, size_t size, int timeout_ms)
{
    uint64_t id = self->next_id++;
    if (cbus_request_send (self->dealer, command, id, body, size))
        return cbus_reply_new_local (CBUS_STATUS_UNAVAILABLE, CBUS_CODE_UNAVAILABLE,
                                     "%s could not be sent", command);
    int64_t deadline = cbus_mono_ms () + timeout_ms;
    zpoller_t *poller = zpoller_new (self->dealer, NULL);
    cbus_reply_t *reply = NULL;
    while (!reply) {
        int64_t left = deadline - cbus_mono_ms ();
        //  Signals are blocked in actor threads (cbus_service.h), so a
        //  stop shows only as the flag: wait in slices and look at it.
        if (left <= 0 || zsys_interrupted)
            break;
        if (!zpoller_wait (poller, (int) (left < 100 ? left : 100))) {
            if (zpoller_terminated (poller))
                break;
            continue;
        }
        reply = cbus_reply_recv (self->dealer);
        if (reply && reply->request_id != id)
            cbus_reply_destroy (&reply);        //  A late reply to an earlier call
    }
    zpoller_destroy (&poller);
    if (!reply)
        reply = cbus_reply_new_local (CBUS_STATUS_UNAVAILABLE, CBUS_CODE_UNAVAILABLE,
                                      zsys_interrupted ? "%s was not answered: stopping"
                                                       : "%s did not answer within %d ms",
                                      command, timeout_ms);
    return reply;
}

//  --------------------------------------------------------------------------
//  Events

//  Topics one publisher counts apart; beyond, events carry no topic_seq.
#define S_PUB_TOPICS 16

struct _cbus_pub_t {
    zsock_t *pub;               //  Connected to the bus's XSUB
    char *source;               //  Role and instance, "miner.3"
    uint64_t boot;              //  Random per process start
    uint64_t sequence;          //  Of the next event
    cbus_metrics_t *metrics;    //  Carried in heartbeats (borrowed), or NULL
    cbus_buf_t snapshot;        //  The last heartbeat's metrics bytes
    struct {
        const char *topic;      //  Its name (the callers' constant, or a copy)
        uint64_t next;          //  Topic sequence of its next event
    } topics [S_PUB_TOPICS];    //  Per-topic sequences, first come
    uint32_t topic_count;       //  In use
};

cbus_pub_t *
cbus_pub_new (const char *endpoint, const char *source)
{
    cbus_pub_t *self = (cbus_pub_t *) zmalloc (sizeof (cbus_pub_t));
    self->pub = zsock_new (ZMQ_PUB);
    if (!self->pub || cbus_endpoint_connect (self->pub, endpoint)) {
        zsock_destroy (&self->pub);
        free (self);
        return NULL;
    }
    //  Events queued while the bus is down are dropped by PUB once the
    //  high-water mark is hit; a subscriber learns it from the sequence.
    zsock_set_linger (self->pub, 100);
    self->source = strdup (source);
    randombytes_buf (&self->boot, sizeof (self->boot));
    self->boot &= 0x001fffffffffffffULL;    //  Exact in a JSON number too
    return self;
}

void
cbus_pub_destroy (cbus_pub_t **self_p)
{
    assert (self_p);
    cbus_pub_t *self = *self_p;
    if (self) {
        zsock_destroy (&self->pub);
        cbus_buf_free (&self->snapshot);
        for (uint32_t index = 0; index < self->topic_count; index++)
            free ((char *) self->topics [index].topic);
        free (self->source);
        free (self);
        *self_p = NULL;
    }
}

//  The topic's slot in the publisher, made on first use; NULL when full.
static uint64_t *
s_topic_next (cbus_pub_t *self, const char *topic)
{
    for (uint32_t index = 0; index < self->topic_count; index++)
        if (self->topics [index].topic == topic || streq (self->topics [index].topic, topic))
            return &self->topics [index].next;
    if (self->topic_count == S_PUB_TOPICS)
        return NULL;
    char *copy = strdup (topic);
    if (!copy)
        return NULL;
    self->topics [self->topic_count].topic = copy;
    return &self->topics [self->topic_count++].next;
}

void
cbus_pub_begin (cbus_pub_t *self, const char *topic, msgpack_packer *pk,
                cbus_buf_t *buf, uint32_t fields)
{
    cbus_buf_reset (buf);
    cbus_packer_init (pk, buf);
    cbus_event_source_t source = { .src = cbus_str (self->source), .boot = self->boot };
    uint64_t *next = s_topic_next (self, topic);
    if (next) {
        source.topic_seq = (*next)++;
        source.has_topic_seq = true;
    }
    msgpack_pack_map (pk, fields + cbus_msgdef_count (&cbus_event_source_def, &source));
    cbus_msgdef_pack (&cbus_event_source_def, &source, pk);
}

int
cbus_pub_send (cbus_pub_t *self, const char *topic, cbus_buf_t *buf)
{
    uint8_t sequence [8];
    for (int index = 0; index < 8; index++)
        sequence [index] = (uint8_t) (self->sequence >> (8 * index));
    self->sequence++;
    void *handle = zsock_resolve (self->pub);
    if (zmq_send (handle, topic, strlen (topic), ZMQ_SNDMORE) < 0
    ||  zmq_send (handle, buf->data, buf->size, ZMQ_SNDMORE) < 0
    ||  zmq_send (handle, sequence, sizeof (sequence), 0) < 0)
        return -1;
    return 0;
}

void
cbus_pub_set_metrics (cbus_pub_t *self, cbus_metrics_t *metrics)
{
    self->metrics = metrics;
}

void
cbus_pub_heartbeat_fill (cbus_pub_t *self, cbus_heartbeat_t *beat)
{
    beat->pid = (uint64_t) getpid ();
    beat->time_ms = cbus_time_ms ();
    beat->resident_bytes = cbus_metrics_resident_bytes ();
    beat->has_resident_bytes = beat->resident_bytes > 0;
    beat->has_metrics = self->metrics
                     && cbus_metrics_encode (self->metrics, &self->snapshot) == 0;
    if (beat->has_metrics)
        beat->metrics = (cbus_bytes_t) { (const uint8_t *) self->snapshot.data,
                                         self->snapshot.size };
}

int
cbus_pub_heartbeat (cbus_pub_t *self)
{
    cbus_buf_t buf = {0};
    cbus_heartbeat_t beat = {0};
    cbus_pub_heartbeat_fill (self, &beat);
    int rc = cbus_pub_send_msg (self, &cbus_heartbeat_def, &beat, &buf);
    cbus_buf_free (&buf);
    return rc;
}

uint64_t
cbus_pub_boot (cbus_pub_t *self)
{
    return self->boot;
}

const char *
cbus_pub_source (cbus_pub_t *self)
{
    return self->source;
}

cbus_event_t *
cbus_event_recv (zsock_t *sub)
{
    zmsg_t *msg = zmsg_recv (sub);
    if (!msg)
        return NULL;
    cbus_event_t *self = NULL;
    zframe_t *topic = zmsg_first (msg);
    if (zmsg_size (msg) != 3 || zframe_size (topic) == 0
    ||  zframe_size (topic) >= sizeof (self->topic)) {
        zsys_warning ("dropped malformed event (%zu frames)", zmsg_size (msg));
        zmsg_destroy (&msg);
        return NULL;
    }
    self = (cbus_event_t *) zmalloc (sizeof (cbus_event_t));
    memcpy (self->topic, zframe_data (topic), zframe_size (topic));
    zframe_t *frame = zmsg_pop (msg);
    zframe_destroy (&frame);
    self->body = zmsg_pop (msg);
    zframe_t *sequence = zmsg_pop (msg);
    if (zframe_size (sequence) == 8)
        for (int index = 7; index >= 0; index--)
            self->sequence = (self->sequence << 8) | zframe_data (sequence) [index];
    zframe_destroy (&sequence);
    self->decoded = s_decode_map (self->body, &self->unpacked);
    zmsg_destroy (&msg);
    return self;
}

void
cbus_event_destroy (cbus_event_t **self_p)
{
    assert (self_p);
    cbus_event_t *self = *self_p;
    if (self) {
        zframe_destroy (&self->body);
        msgpack_unpacked_destroy (&self->unpacked);
        free (self);
        *self_p = NULL;
    }
}

const msgpack_object *
cbus_event_map (cbus_event_t *self)
{
    return self->decoded ? &self->unpacked.data : NULL;
}

//  A tiny echo service for the self-test: answers PING with {"pong": n}.
static void
s_echo_actor (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new_router ((const char *) args);
    assert (router);
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, -1);
        if (which != router)
            break;
        cbus_request_t *request = cbus_request_recv (router);
        if (!request)
            continue;
        uint64_t value = 0;
        if (!request->decoded)
            cbus_reply_refuse (router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                               "body is not a map");
        else
        if (streq (request->command, CBUS_CMD_PING)
        &&  cbus_msg_get_u64 (cbus_request_map (request), "n", &value) == 0) {
            cbus_buf_t buf = {0};
            msgpack_packer pk;
            cbus_packer_init (&pk, &buf);
            msgpack_pack_map (&pk, 1);
            cbus_pack_kv_u64 (&pk, "pong", value + 1);
            cbus_reply_send (router, request, CBUS_STATUS_OK, buf.data, buf.size);
            cbus_buf_free (&buf);
        }
        else
            cbus_reply_refuse (router, request, CBUS_STATUS_INVALID, CBUS_CODE_UNKNOWN_COMMAND,
                               "unknown command %s", request->command);
        cbus_request_destroy (&request);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

void
cbus_msg_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_msg: ");
    const char *endpoint = "inproc://cbus_msg_test";
    zactor_t *echo = zactor_new (s_echo_actor, (void *) endpoint);
    cbus_client_t *client = cbus_client_new (endpoint);
    assert (client);

    cbus_buf_t buf = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &buf);
    msgpack_pack_map (&pk, 1);
    cbus_pack_kv_u64 (&pk, "n", 41);
    cbus_reply_t *reply = cbus_client_request (client, CBUS_CMD_PING, buf.data, buf.size, 2000);
    assert (cbus_reply_ok (reply) && reply->code == CBUS_CODE_OK && !*reply->reason);
    uint64_t pong;
    assert (cbus_msg_get_u64 (cbus_reply_map (reply), "pong", &pong) == 0 && pong == 42);
    assert (cbus_msg_get_str (cbus_reply_map (reply), "pong", &(const char *) {0}, &(size_t) {0}) == -1);
    cbus_reply_destroy (&reply);
    cbus_reply_destroy (&reply);

    //  Unknown command and a body that is not a map get codes and reasons.
    reply = cbus_client_request (client, "NOPE", buf.data, buf.size, 2000);
    assert (!cbus_reply_ok (reply) && streq (reply->status, CBUS_STATUS_INVALID));
    assert (reply->code == CBUS_CODE_UNKNOWN_COMMAND && streq (reply->reason, "unknown command NOPE"));
    cbus_reply_destroy (&reply);
    reply = cbus_client_request (client, CBUS_CMD_PING, "\xc1", 1, 2000);
    assert (streq (reply->status, CBUS_STATUS_INVALID) && reply->code == CBUS_CODE_INVALID);
    cbus_reply_destroy (&reply);
    cbus_client_destroy (&client);
    zactor_destroy (&echo);

    //  A call to nobody is answered locally: unavailable, naming it.
    client = cbus_client_new ("inproc://cbus_msg_nobody");
    assert (client);
    reply = cbus_client_request (client, CBUS_CMD_PING, NULL, 0, 50);
    assert (streq (reply->status, CBUS_STATUS_UNAVAILABLE) && reply->code == CBUS_CODE_UNAVAILABLE);
    assert (streq (reply->reason, "PING did not answer within 50 ms") && cbus_reply_is_local (reply));
    cbus_reply_destroy (&reply);
    cbus_client_destroy (&client);
    assert (cbus_status_code (CBUS_STATUS_FULL) == CBUS_CODE_FULL);
    assert (cbus_status_code ("WHAT") == CBUS_CODE_INTERNAL);

    //  Events: sequence numbers count up, src and boot lead the body.
    zsock_t *sub = zsock_new_sub ("@inproc://cbus_msg_events", "test.");
    cbus_pub_t *pub = cbus_pub_new ("inproc://cbus_msg_events", "tester");
    assert (sub && pub);
    //  A bound SUB attaches a new peer (and sends it the subscription)
    //  only when its own thread touches it: poll instead of sleeping.
    zpoller_t *settle = zpoller_new (sub, NULL);
    zpoller_wait (settle, 100);
    zpoller_destroy (&settle);
    //  Each topic has its own topic_seq; the frame's sequence counts all.
    const char *topics [4] = { "test.event", "test.other", "test.event", "test.event" };
    for (int index = 0; index < 4; index++) {
        cbus_pub_begin (pub, topics [index], &pk, &buf, 1);
        cbus_pack_kv_u64 (&pk, "index", (uint64_t) index);
        assert (cbus_pub_send (pub, topics [index], &buf) == 0);
    }
    const uint64_t topic_seqs [4] = { 0, 0, 1, 2 };
    for (uint64_t index = 0; index < 4; index++) {
        cbus_event_t *event = cbus_event_recv (sub);
        assert (event && event->decoded);
        assert (streq (event->topic, topics [index]));
        assert (event->sequence == index);
        uint64_t value, boot, topic_seq;
        assert (cbus_msg_get_u64 (cbus_event_map (event), "index", &value) == 0 && value == index);
        assert (cbus_msg_get_u64 (cbus_event_map (event), "boot", &boot) == 0);
        assert (boot == cbus_pub_boot (pub));
        assert (cbus_msg_get_u64 (cbus_event_map (event), "topic_seq", &topic_seq) == 0);
        assert (topic_seq == topic_seqs [index]);
        cbus_event_destroy (&event);
    }
    //  A heartbeat carries the resident memory and, once given a
    //  registry, its snapshot.
    zsock_set_subscribe (sub, CBUS_TOPIC_HEARTBEAT);
    zpoller_t *again = zpoller_new (sub, NULL);
    zpoller_wait (again, 100);
    zpoller_destroy (&again);
    cbus_metrics_t *metrics = cbus_metrics_new ();
    assert (metrics);
    cbus_metrics_set (metrics, CBUS_METRIC_CHAIN_HEIGHT, NULL, NULL, 12);
    for (int round = 0; round < 2; round++) {
        cbus_pub_set_metrics (pub, round ? metrics : NULL);
        assert (cbus_pub_heartbeat (pub) == 0);
        cbus_event_t *event = cbus_event_recv (sub);
        assert (event && streq (event->topic, CBUS_TOPIC_HEARTBEAT));
        cbus_heartbeat_t beat;
        char reason [CBUS_REASON_MAX];
        assert (cbus_heartbeat_decode (cbus_event_map (event), &beat, reason) == 0);
        assert (beat.has_resident_bytes && beat.resident_bytes > 1024 * 1024);
        assert (beat.has_metrics == (round == 1));
        if (round) {
            cbus_metrics_t *copy = cbus_metrics_decode (beat.metrics.data, beat.metrics.size, reason);
            assert (copy && cbus_metrics_value (copy, CBUS_METRIC_CHAIN_HEIGHT, NULL, NULL) == 12);
            cbus_metrics_destroy (&copy);
        }
        cbus_event_destroy (&event);
    }
    cbus_pub_set_metrics (pub, NULL);
    cbus_metrics_destroy (&metrics);
    cbus_pub_destroy (&pub);
    zsock_destroy (&sub);
    cbus_buf_free (&buf);
    if (verbose)
        printf ("OK\n");
}
