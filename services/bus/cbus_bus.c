/*  =========================================================================
    cbus_bus - the node's event bus: an XSUB/XPUB forwarder
    =========================================================================
*/
#include "cbus_bus.h"

struct _cbus_bus_t {
    zloop_t *loop;              //  Runs both directions and the heartbeat
    zsock_t *xsub;              //  Publishers connect here (bus-in)
    zsock_t *xpub;              //  Subscribers connect here (bus-out)
    cbus_pub_t *pub;            //  Our own heartbeat, through bus-in
};

//  Forward whole multipart messages from one socket to another, up to a
//  burst at a time so that one busy direction cannot starve the other.
static int
s_forward (zsock_t *from, zsock_t *to)
{
    zmq_msg_t part;
    zmq_msg_init (&part);
    void *source = zsock_resolve (from);
    void *target = zsock_resolve (to);
    for (int message = 0; message < 1000; message++) {
        if (zmq_msg_recv (&part, source, ZMQ_DONTWAIT) < 0)
            break;
        //  Parts of one message arrive together: the rest are there.
        while (zmq_msg_more (&part)) {
            zmq_msg_send (&part, target, ZMQ_SNDMORE);
            if (zmq_msg_recv (&part, source, 0) < 0)
                break;
        }
        zmq_msg_send (&part, target, 0);
    }
    zmq_msg_close (&part);
    return 0;
}

static int
s_on_publisher (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    cbus_bus_t *self = (cbus_bus_t *) arg;
    return s_forward (self->xsub, self->xpub);
}

static int
s_on_subscriber (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    cbus_bus_t *self = (cbus_bus_t *) arg;
    return s_forward (self->xpub, self->xsub);
}

cbus_bus_t *
cbus_bus_new (cbus_config_t *config)
{
    char reason [CBUS_REASON_MAX] = "out of memory";
    cbus_bus_t *self = (cbus_bus_t *) zmalloc (sizeof (cbus_bus_t));
    if (!self) {
        zsys_error ("bus: %s", reason);
        return NULL;
    }
    char *in = cbus_config_endpoint (config, "bus-in");
    char *out = cbus_config_endpoint (config, "bus-out");
    self->xsub = zsock_new (ZMQ_XSUB);
    self->xpub = zsock_new (ZMQ_XPUB);
    self->loop = zloop_new ();
    if (!in || !out || !self->xsub || !self->xpub || !self->loop)
        goto failed;
    //  Deep queues: a subscriber falling behind by a burst of events
    //  (a block's worth of mempool.tx.removed) should not lose any.
    zsock_set_rcvhwm (self->xsub, 200000);
    zsock_set_sndhwm (self->xpub, 200000);
    if (cbus_endpoint_bind (self->xsub, in) || cbus_endpoint_bind (self->xpub, out)) {
        int error = zmq_errno ();
        cbus_fail (reason, "cannot bind the bus endpoints %s and %s: %s",
                   in, out, zmq_strerror (error));
        cbus_service_fault (cbus_service_transient_errno (error), "%s", reason);
        goto failed;
    }
    self->pub = cbus_pub_new (in, "bus");
    if (!self->pub) {
        cbus_fail (reason, "cannot publish to %s", in);
        goto failed;
    }
    //  Stop on $TERM from main only, not on a signal: see cbus_service.h.
    zloop_set_nonstop (self->loop, true);
    if (zloop_reader (self->loop, self->xsub, s_on_publisher, self)
    ||  zloop_reader (self->loop, self->xpub, s_on_subscriber, self)
    ||  zloop_timer (self->loop, CBUS_HEARTBEAT_MS, 0, cbus_service_on_heartbeat,
                     self->pub) == -1) {
        cbus_fail (reason, "cannot register the sockets in the loop");
        goto failed;
    }
    zsys_info ("bus ready in=%s out=%s", in, out);
    zstr_free (&in);
    zstr_free (&out);
    return self;
failed:
    cbus_service_fault (streq (reason, "out of memory"), "%s", reason);
    zstr_free (&in);
    zstr_free (&out);
    cbus_bus_destroy (&self);
    return NULL;
}

void
cbus_bus_destroy (cbus_bus_t **self_p)
{
    assert (self_p);
    cbus_bus_t *self = *self_p;
    if (self) {
        zloop_destroy (&self->loop);
        cbus_pub_destroy (&self->pub);
        zsock_destroy (&self->xsub);
        zsock_destroy (&self->xpub);
        free (self);
        *self_p = NULL;
    }
}

void
cbus_bus_actor (zsock_t *pipe, void *args)
{
    cbus_bus_t *self = cbus_bus_new ((cbus_config_t *) args);
    zsock_signal (pipe, 0);
    if (self && zloop_reader (self->loop, pipe, cbus_service_on_pipe, self) == 0) {
        cbus_service_ready (self->loop);
        zloop_start (self->loop);
    }
    else
        cbus_service_fail (pipe, "bus: not started");
    cbus_bus_destroy (&self);
}

//  --------------------------------------------------------------------------
//  Self test: the bus in-process between a publisher and a subscriber.
//  The events are real ones (mempool.tx.removed, mempool.tx.added) made
//  through their definitions, each numbered by its txid's first byte.

//  The next event on sub within timeout_ms, skipping heartbeats from
//  anyone but the source named (NULL: skip them all). "src" is the
//  envelope every event starts with, not a field of the heartbeat.
static cbus_event_t *
s_test_event (zsock_t *sub, int timeout_ms, const char *heartbeat_from)
{
    zpoller_t *poller = zpoller_new (sub, NULL);
    assert (poller);
    int64_t deadline = cbus_mono_ms () + timeout_ms;
    cbus_event_t *event = NULL;
    while (!event && cbus_mono_ms () < deadline) {
        if (zpoller_wait (poller, (int) (deadline - cbus_mono_ms ())) != sub)
            continue;
        event = cbus_event_recv (sub);
        const char *source;
        size_t size;
        char reason [CBUS_REASON_MAX];
        cbus_heartbeat_t beat;
        if (event && streq (event->topic, CBUS_TOPIC_HEARTBEAT)
        &&  !(heartbeat_from
              && cbus_heartbeat_decode (cbus_event_map (event), &beat, reason) == 0
              && cbus_msg_get_str (cbus_event_map (event), "src", &source, &size) == 0
              && size == strlen (heartbeat_from) && memcmp (source, heartbeat_from, size) == 0))
            cbus_event_destroy (&event);
    }
    zpoller_destroy (&poller);
    return event;
}

//  Publish event number index: mempool.tx.removed, or with other
//  mempool.tx.added (which the test's subscriber does not take).
static void
s_test_publish (cbus_pub_t *pub, cbus_buf_t *buf, uint8_t index, bool other)
{
    uint8_t txid [CBUS_HASH_BYTES] = { index };
    if (other) {
        cbus_tx_added_t added = { .txid = txid, .size = 1, .tx = { txid, 1 } };
        assert (cbus_pub_send_msg (pub, &cbus_tx_added_def, &added, buf) == 0);
    }
    else {
        cbus_tx_removed_t removed = { .txid = txid, .reason = cbus_str ("test") };
        assert (cbus_pub_send_msg (pub, &cbus_tx_removed_def, &removed, buf) == 0);
    }
}

//  The number of a mempool.tx.removed event.
static uint8_t
s_test_index (cbus_event_t *event)
{
    cbus_tx_removed_t removed;
    char reason [CBUS_REASON_MAX];
    assert (event && event->decoded && streq (event->topic, CBUS_TOPIC_TX_REMOVED));
    assert (cbus_tx_removed_decode (cbus_event_map (event), &removed, reason) == 0);
    assert (cbus_str_eq (removed.reason, "test"));
    return removed.txid [0];
}

//  Publish event 0 until the subscriber has one: the subscription has
//  reached the publisher through the bus then.
static void
s_test_join (cbus_pub_t *pub, zsock_t *sub, cbus_buf_t *buf)
{
    cbus_event_t *event = NULL;
    for (int attempt = 0; attempt < 100 && !event; attempt++) {
        s_test_publish (pub, buf, 0, false);
        event = s_test_event (sub, 50, NULL);
    }
    assert (s_test_index (event) == 0);
    cbus_event_destroy (&event);
    //  Others may still be queued: let them go.
    while ((event = s_test_event (sub, 100, NULL)))
        cbus_event_destroy (&event);
}

void
cbus_bus_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_bus: ");
    char dir [] = "/tmp/cbus_bus_test_XXXXXX";
    assert (mkdtemp (dir));
    char reason [CBUS_REASON_MAX];
    char *args [] = { "chainbus-bus", "--data-dir", dir };
    cbus_config_t *config = cbus_config_new (3, args, reason);
    assert (config && cbus_config_make_dirs (config, reason) == 0);
    zactor_t *bus = zactor_new (cbus_bus_actor, config);
    assert (bus);
    char *in = cbus_config_endpoint (config, "bus-in");
    char *out = cbus_config_endpoint (config, "bus-out");
    zsock_t *sub = zsock_new_sub (out, CBUS_TOPIC_TX_REMOVED);
    assert (sub);
    zsock_set_subscribe (sub, CBUS_TOPIC_HEARTBEAT);
    cbus_pub_t *pub = cbus_pub_new (in, "tester");
    assert (pub);
    cbus_buf_t buf = {0};
    s_test_join (pub, sub, &buf);

    //  Events pass whole and in order, with the publisher's sequence;
    //  topics nobody subscribed to do not.
    for (uint8_t index = 1; index <= 3; index++)
        s_test_publish (pub, &buf, index, index == 2);
    uint64_t first_sequence = 0;
    for (uint8_t index = 1; index <= 3; index += 2) {
        cbus_event_t *event = s_test_event (sub, 2000, NULL);
        assert (s_test_index (event) == index);
        const char *source;
        size_t size;
        assert (cbus_msg_get_str (cbus_event_map (event), "src", &source, &size) == 0);
        assert (size == 6 && memcmp (source, "tester", 6) == 0);
        if (index == 1)
            first_sequence = event->sequence;
        else {
            assert (event->sequence == first_sequence + 2);
            cbus_event_t *next = s_test_event (sub, 100, NULL);
            assert (next == NULL);
        }
        cbus_event_destroy (&event);
    }
    //  The bus beats like every service.
    cbus_event_t *event = s_test_event (sub, 3000, "bus");
    assert (event && streq (event->topic, CBUS_TOPIC_HEARTBEAT));
    cbus_event_destroy (&event);
    cbus_pub_destroy (&pub);
    zsock_destroy (&sub);
    zactor_destroy (&bus);
    cbus_buf_free (&buf);
    zstr_free (&in);
    zstr_free (&out);
    cbus_config_destroy (&config);

    //  Endpoints that cannot be bound: NULL, and FAILED from the actor.
    char *bad [] = { "chainbus-bus", "--data-dir", "/dev/null/bus" };
    config = cbus_config_new (3, bad, reason);
    assert (config);
    cbus_bus_t *self = cbus_bus_new (config);
    assert (self == NULL);
    //  What it noted goes with this thread's next fail, once.
    zsock_t *pair [2] = { zsock_new_pair ("@inproc://cbus-fail-test"),
                          zsock_new_pair (">inproc://cbus-fail-test") };
    assert (pair [0] && pair [1]);
    char *message = NULL, *fault = NULL, *why = NULL;
    cbus_service_fail (pair [0], "direct");
    assert (zstr_recvx (pair [1], &message, &fault, &why, NULL) == 3);
    assert (streq (fault, CBUS_SERVICE_PERMANENT) && strstr (why, "direct: cannot bind"));
    zstr_free (&message);
    zstr_free (&fault);
    zstr_free (&why);
    bus = zactor_new (cbus_bus_actor, config);
    assert (bus);
    //  A folder that is not one: permanent, with the reason.
    assert (zstr_recvx (bus, &message, &fault, &why, NULL) == 3);
    assert (streq (message, "FAILED") && streq (fault, CBUS_SERVICE_PERMANENT));
    assert (strstr (why, "bus: not started: cannot bind"));
    zstr_free (&message);
    zstr_free (&fault);
    zstr_free (&why);
    //  A transient fault noted first is the one sent, once.
    cbus_service_fault (true, "no memory");
    cbus_service_fault (false, "later");
    cbus_service_fail (pair [0], "test");
    assert (zstr_recvx (pair [1], &message, &fault, &why, NULL) == 3);
    assert (streq (fault, CBUS_SERVICE_TRANSIENT) && streq (why, "test: no memory"));
    zstr_free (&message);
    zstr_free (&fault);
    zstr_free (&why);
    cbus_service_fail (pair [0], "again");
    assert (zstr_recvx (pair [1], &message, &fault, &why, NULL) == 3);
    assert (streq (fault, CBUS_SERVICE_PERMANENT) && streq (why, "again"));
    zstr_free (&message);
    zstr_free (&fault);
    zstr_free (&why);
    zsock_destroy (&pair [0]);
    zsock_destroy (&pair [1]);
    assert (cbus_service_transient_errno (EADDRNOTAVAIL) && !cbus_service_transient_errno (EADDRINUSE));
    assert (cbus_service_transient_store (CBUS_STORE_LOCKED)
         && !cbus_service_transient_store (CBUS_STORE_CORRUPT));
    zactor_destroy (&bus);
    cbus_config_destroy (&config);
    char *command = zsys_sprintf ("rm -rf %s", dir);
    assert (command && system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("OK\n");
}
