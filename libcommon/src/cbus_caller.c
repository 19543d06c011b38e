/*  =========================================================================
    cbus_caller - asynchronous calls from a service's zloop to another

    Expiry runs on a zloop timer that exists only while calls are in
    flight (an idle service does not wake up for it), every
    S_TICK_MS: a call ends at most that much after its deadline.
    =========================================================================
*/
#include "cbus.h"

#define S_TICK_MS 50

struct _cbus_caller_t {
    zloop_t *loop;              //  Where replies and expiry are handled
    zsock_t *dealer;            //  Connected to the service's ROUTER
    char *name;                 //  The service, for locally made reasons
    cbus_calls_t *calls;        //  In flight, by request id
    int timer;                  //  Expiry timer id, or -1 while idle
};

static int s_on_reply (zloop_t *loop, zsock_t *reader, void *arg);

cbus_caller_t *
cbus_caller_new (zloop_t *loop, const char *endpoint, const char *name)
{
    cbus_caller_t *self = (cbus_caller_t *) zmalloc (sizeof (cbus_caller_t));
    self->loop = loop;
    self->timer = -1;
    self->name = strdup (name);
    self->calls = cbus_calls_new ();
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->name || !self->calls || !self->dealer)
        goto failed;
    //  A request to a dead service must not sit queued forever, nor may
    //  a send block the loop: past the high-water mark it fails at once.
    zsock_set_linger (self->dealer, 0);
    zsock_set_maxmsgsize (self->dealer, CBUS_MSG_MAX_BYTES);
    zsock_set_sndtimeo (self->dealer, 0);
    if (cbus_endpoint_connect (self->dealer, endpoint)
    ||  zloop_reader (loop, self->dealer, s_on_reply, self))
        goto failed;
    return self;
failed:
    cbus_caller_destroy (&self);
    return NULL;
}

void
cbus_caller_destroy (cbus_caller_t **self_p)
{
    assert (self_p);
    cbus_caller_t *self = *self_p;
    if (self) {
        if (self->timer != -1)
            zloop_timer_end (self->loop, self->timer);
        if (self->dealer)
            zloop_reader_end (self->loop, self->dealer);
        zsock_destroy (&self->dealer);
        cbus_calls_destroy (&self->calls);
        free (self->name);
        free (self);
        *self_p = NULL;
    }
}

static void
s_run (const cbus_call_t *call, cbus_reply_t *reply)
{
    if (call->handler)
        call->handler (call, reply);
}

//  The expiry timer is needed only while calls are in flight.
static int s_on_tick (zloop_t *loop, int timer_id, void *arg);

static void
s_timer_update (cbus_caller_t *self)
{
    if (cbus_calls_size (self->calls) > 0 && self->timer == -1)
        self->timer = zloop_timer (self->loop, S_TICK_MS, 0, s_on_tick, self);
    else
    if (cbus_calls_size (self->calls) == 0 && self->timer != -1) {
        zloop_timer_end (self->loop, self->timer);
        self->timer = -1;
    }
}

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    cbus_caller_t *self = (cbus_caller_t *) arg;
    //  Only calls due before this tick: one a handler sends now that fails
    //  at once (due now) ends on the next tick, so a handler that retries
    //  cannot keep this loop turning.
    int64_t due = cbus_mono_ms () - 1;
    cbus_call_t call;
    while (cbus_calls_expired (self->calls, due, &call) == 0) {
        cbus_reply_t *reply = call.deadline == call.sent
            ? cbus_reply_new_local (CBUS_STATUS_UNAVAILABLE, CBUS_CODE_UNAVAILABLE,
                                    "the %s could not be reached", self->name)
            : cbus_reply_new_local (CBUS_STATUS_UNAVAILABLE, CBUS_CODE_UNAVAILABLE,
                                    "the %s did not answer within %" PRId64 " ms",
                                    self->name, call.deadline - call.sent);
        s_run (&call, reply);
        cbus_reply_destroy (&reply);
    }
    s_timer_update (self);
    return 0;
}

static int
s_on_reply (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    cbus_caller_t *self = (cbus_caller_t *) arg;
    cbus_reply_t *reply = cbus_reply_recv (reader);
    cbus_call_t call;
    if (reply && cbus_calls_take (self->calls, reply->request_id, &call) == 0) {
        s_run (&call, reply);
        s_timer_update (self);
    }
    cbus_reply_destroy (&reply);
    return 0;
}

uint64_t
cbus_caller_send (cbus_caller_t *self, const char *command,
                  const void *body, size_t size, int timeout_ms,
                  cbus_call_fn *handler, void *owner, void *arg)
{
    int64_t now = cbus_mono_ms ();
    uint64_t id = cbus_calls_add (self->calls, owner, 0, handler, arg, timeout_ms, now);
    if (cbus_request_send (self->dealer, command, id, body, size)) {
        //  Answered as unreachable on the next tick: a deadline of now.
        cbus_call_t call;
        cbus_calls_take (self->calls, id, &call);
        id = cbus_calls_add (self->calls, owner, 0, handler, arg, 0, now);
    }
    s_timer_update (self);
    return id;
}

void
cbus_caller_cancel (cbus_caller_t *self, uint64_t id)
{
    cbus_calls_cancel (self->calls, id);
    s_timer_update (self);
}

size_t
cbus_caller_fail_before (cbus_caller_t *self, int64_t sent_before)
{
    size_t count = 0;
    cbus_call_t call;
    while (cbus_calls_take_lost (self->calls, 0, sent_before, &call) == 0) {
        cbus_reply_t *reply = cbus_reply_new_local (CBUS_STATUS_UNAVAILABLE, CBUS_CODE_UNAVAILABLE,
                                                    "the %s restarted before it answered",
                                                    self->name);
        s_run (&call, reply);
        cbus_reply_destroy (&reply);
        count++;
    }
    s_timer_update (self);
    return count;
}

size_t
cbus_caller_pending (cbus_caller_t *self)
{
    return cbus_calls_size (self->calls);
}

//  --------------------------------------------------------------------------
//  Self test: a service that answers PING at once and sits on SLOW.

typedef struct {
    int answered;               //  Handlers run
    char status [16];           //  Status of the last one
    cbus_code_t code;           //  Code of the last one
    cbus_caller_t *caller;      //  To send again from a handler
    int chained;                //  Calls sent from inside handlers
} s_test_state_t;

static void
s_test_actor (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new_router ((const char *) args);
    assert (router);
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (zpoller_wait (poller, -1) == router) {
        cbus_request_t *request = cbus_request_recv (router);
        if (request && streq (request->command, CBUS_CMD_PING))
            cbus_reply_send (router, request, CBUS_STATUS_OK, NULL, 0);
        else
        if (request && streq (request->command, "FULL"))
            cbus_reply_refuse (router, request, CBUS_STATUS_FULL, CBUS_CODE_FULL, "full up");
        cbus_request_destroy (&request);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static void
s_test_handler (const cbus_call_t *call, cbus_reply_t *reply)
{
    s_test_state_t *state = (s_test_state_t *) call->owner;
    assert (call->arg == state);
    state->answered++;
    snprintf (state->status, sizeof (state->status), "%s", reply->status);
    state->code = reply->code;
    if (state->chained == 1) {
        state->chained++;
        cbus_caller_send (state->caller, CBUS_CMD_PING, NULL, 0, 1000,
                          s_test_handler, state, state);
    }
}

static int
s_test_stop (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_test_state_t *state = (s_test_state_t *) arg;
    return state->answered >= state->chained + 0 && cbus_caller_pending (state->caller) == 0
         ? -1 : 0;
}

//  Run the loop until every call ended (or 2 s passed).
static void
s_test_run (zloop_t *loop, s_test_state_t *state)
{
    int timer = zloop_timer (loop, 5, 0, s_test_stop, state);
    int guard = zloop_timer (loop, 2000, 1, s_test_stop, state);
    zloop_start (loop);
    zloop_timer_end (loop, timer);
    zloop_timer_end (loop, guard);
}

void
cbus_caller_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_caller: ");
    const char *endpoint = "inproc://cbus_caller_test";
    zactor_t *service = zactor_new (s_test_actor, (void *) endpoint);
    zloop_t *loop = zloop_new ();
    s_test_state_t state = {0};
    state.caller = cbus_caller_new (loop, endpoint, "tester");
    assert (state.caller);

    //  A reply runs the handler from the loop, never from the send.
    cbus_caller_send (state.caller, CBUS_CMD_PING, NULL, 0, 1000, s_test_handler, &state, &state);
    assert (state.answered == 0 && cbus_caller_pending (state.caller) == 1);
    s_test_run (loop, &state);
    assert (state.answered == 1 && streq (state.status, CBUS_STATUS_OK));
    assert (state.code == CBUS_CODE_OK);

    //  A refusal carries its code; a handler may send again.
    state.chained = 1;
    cbus_caller_send (state.caller, "FULL", NULL, 0, 1000, s_test_handler, &state, &state);
    s_test_run (loop, &state);
    assert (state.answered == 3 && state.chained == 2 && streq (state.status, CBUS_STATUS_OK));

    //  A command the service never answers expires with a reason.
    state.answered = 0;
    state.chained = 0;
    int64_t start = cbus_mono_ms ();
    cbus_caller_send (state.caller, "SILENT", NULL, 0, 100, s_test_handler, &state, &state);
    s_test_run (loop, &state);
    assert (state.answered == 1 && streq (state.status, CBUS_STATUS_UNAVAILABLE));
    assert (state.code == CBUS_CODE_UNAVAILABLE);
    assert (cbus_mono_ms () - start >= 100);

    //  A cancelled call never runs; calls sent before a restart end now.
    uint64_t id = cbus_caller_send (state.caller, "SILENT", NULL, 0, 60000,
                                    s_test_handler, &state, &state);
    cbus_caller_cancel (state.caller, id);
    cbus_caller_send (state.caller, "SILENT", NULL, 0, 60000, s_test_handler, &state, &state);
    assert (cbus_caller_pending (state.caller) == 1);
    assert (cbus_caller_fail_before (state.caller, cbus_mono_ms () + 1) == 1);
    assert (state.answered == 2 && state.code == CBUS_CODE_UNAVAILABLE);
    assert (cbus_caller_pending (state.caller) == 0);

    //  Calls left in flight are dropped with the caller.
    cbus_caller_send (state.caller, "SILENT", NULL, 0, 60000, s_test_handler, &state, &state);
    cbus_caller_destroy (&state.caller);
    cbus_caller_destroy (&state.caller);
    assert (state.answered == 2);
    zloop_destroy (&loop);
    zactor_destroy (&service);
    if (verbose)
        printf ("OK\n");
}
