/*  =========================================================================
    cbus_bus - the node's event bus: an XSUB/XPUB forwarder
    =========================================================================
*/
#include "cbus_bus.h"

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zsock_t *xsub;              //  Publishers connect here (bus-in)
    zsock_t *xpub;              //  Subscribers connect here (bus-out)
    cbus_pub_t *pub;            //  Our own heartbeat, through bus-in
} s_bus_t;

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
    s_bus_t *self = (s_bus_t *) arg;
    return s_forward (self->xsub, self->xpub);
}

static int
s_on_subscriber (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    s_bus_t *self = (s_bus_t *) arg;
    return s_forward (self->xpub, self->xsub);
}

void
cbus_bus_actor (zsock_t *pipe, void *args)
{
    cbus_config_t *config = (cbus_config_t *) args;
    s_bus_t self = { .pipe = pipe };
    char *in = cbus_config_endpoint (config, "bus-in");
    char *out = cbus_config_endpoint (config, "bus-out");
    zloop_t *loop = NULL;
    zsock_signal (pipe, 0);

    self.xsub = zsock_new (ZMQ_XSUB);
    self.xpub = zsock_new (ZMQ_XPUB);
    //  Deep queues: a subscriber falling behind by a burst of events
    //  (a block's worth of mempool.tx.removed) should not lose any.
    zsock_set_rcvhwm (self.xsub, 200000);
    zsock_set_sndhwm (self.xpub, 200000);
    if (zsock_bind (self.xsub, "%s", in) || zsock_bind (self.xpub, "%s", out)) {
        cbus_service_fail (pipe, "cannot bind the bus endpoints %s and %s: %s",
                           in, out, zmq_strerror (zmq_errno ()));
        goto cleanup;
    }
    self.pub = cbus_pub_new (in, "bus");
    assert (self.pub);
    loop = zloop_new ();
    //  Stop on $TERM from main only, not on a signal: see cbus_service.h.
    zloop_set_nonstop (loop, true);
    zloop_reader (loop, pipe, cbus_service_on_pipe, &self);
    zloop_reader (loop, self.xsub, s_on_publisher, &self);
    zloop_reader (loop, self.xpub, s_on_subscriber, &self);
    zloop_timer (loop, CBUS_HEARTBEAT_MS, 0, cbus_service_on_heartbeat, self.pub);
    zsys_info ("bus ready in=%s out=%s", in, out);
    zloop_start (loop);
cleanup:
    zloop_destroy (&loop);
    cbus_pub_destroy (&self.pub);
    zsock_destroy (&self.xsub);
    zsock_destroy (&self.xpub);
    zstr_free (&in);
    zstr_free (&out);
}
