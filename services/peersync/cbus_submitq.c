/*  =========================================================================
    cbus_submitq - blocks handed to the chainstore in order, a few at a time
    =========================================================================
*/
#include "cbus_submitq.h"

typedef struct {
    zframe_t *block;            //  Its bytes, until sent
    uint8_t hash [CBUS_HASH_BYTES];
    uint64_t call;              //  Its call once sent, else 0
} s_item_t;

struct _cbus_submitq_t {
    cbus_caller_t *caller;      //  To the chainstore (borrowed)
    size_t window;              //  Most submissions in flight
    int timeout_ms;             //  Deadline of each
    cbus_submitq_fn *handler;   //  Runs with each answer
    void *owner;                //  The handler's first argument
    zlistx_t *queued;           //  s_item_t not sent yet, in order
    zlistx_t *sent;             //  s_item_t in flight, oldest first
    cbus_buf_t body;            //  Reused request body
};

static void
s_item_destroy (s_item_t **item_p)
{
    if (*item_p) {
        zframe_destroy (&(*item_p)->block);
        free (*item_p);
        *item_p = NULL;
    }
}

cbus_submitq_t *
cbus_submitq_new (cbus_caller_t *caller, size_t window, int timeout_ms,
                  cbus_submitq_fn *handler, void *owner)
{
    assert (caller && window > 0 && handler);
    cbus_submitq_t *self = (cbus_submitq_t *) zmalloc (sizeof (cbus_submitq_t));
    if (!self)
        return NULL;
    self->caller = caller;
    self->window = window;
    self->timeout_ms = timeout_ms;
    self->handler = handler;
    self->owner = owner;
    self->queued = zlistx_new ();
    self->sent = zlistx_new ();
    if (!self->queued || !self->sent) {
        cbus_submitq_destroy (&self);
        return NULL;
    }
    zlistx_set_destructor (self->queued, (zlistx_destructor_fn *) s_item_destroy);
    zlistx_set_destructor (self->sent, (zlistx_destructor_fn *) s_item_destroy);
    return self;
}

void
cbus_submitq_destroy (cbus_submitq_t **self_p)
{
    assert (self_p);
    cbus_submitq_t *self = *self_p;
    if (self) {
        if (self->sent)
            cbus_submitq_clear (self);
        zlistx_destroy (&self->queued);
        zlistx_destroy (&self->sent);
        cbus_buf_free (&self->body);
        free (self);
        *self_p = NULL;
    }
}

static void s_on_answer (const cbus_call_t *call, cbus_reply_t *reply);

//  Send queued blocks while the window has room.
static void
s_pump (cbus_submitq_t *self)
{
    while (zlistx_size (self->sent) < self->window && zlistx_size (self->queued) > 0) {
        s_item_t *item = (s_item_t *) zlistx_detach (self->queued, NULL);
        cbus_block_submit_t submit = {
            .block = { zframe_data (item->block), zframe_size (item->block) }
        };
        cbus_block_submit_encode (&submit, &self->body);
        zframe_destroy (&item->block);
        if (!zlistx_add_end (self->sent, item)) {
            s_item_destroy (&item);
            continue;
        }
        //  The handler never runs from inside the send, so the item is
        //  in the list before its answer can look for it.
        item->call = cbus_caller_send (self->caller, CBUS_CMD_BLOCK_SUBMIT,
                                       self->body.data, self->body.size, self->timeout_ms,
                                       s_on_answer, self, NULL);
    }
}

static void
s_on_answer (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_submitq_t *self = (cbus_submitq_t *) call->owner;
    //  Answers come in order: the oldest in flight, in practice.
    for (s_item_t *item = (s_item_t *) zlistx_first (self->sent); item;
         item = (s_item_t *) zlistx_next (self->sent))
        if (item->call == call->id) {
            uint8_t hash [CBUS_HASH_BYTES];
            memcpy (hash, item->hash, CBUS_HASH_BYTES);
            zlistx_delete (self->sent, zlistx_cursor (self->sent));
            self->handler (self->owner, hash, reply);
            break;
        }
    s_pump (self);
}

int
cbus_submitq_push (cbus_submitq_t *self, zframe_t **block_p, const uint8_t hash [CBUS_HASH_BYTES])
{
    assert (block_p && *block_p);
    s_item_t *item = (s_item_t *) zmalloc (sizeof (s_item_t));
    if (!item || !zlistx_add_end (self->queued, item)) {
        free (item);
        zframe_destroy (block_p);
        return -1;
    }
    item->block = *block_p;
    *block_p = NULL;
    memcpy (item->hash, hash, CBUS_HASH_BYTES);
    s_pump (self);
    return 0;
}

void
cbus_submitq_clear (cbus_submitq_t *self)
{
    for (s_item_t *item = (s_item_t *) zlistx_first (self->sent); item;
         item = (s_item_t *) zlistx_next (self->sent))
        cbus_caller_cancel (self->caller, item->call);
    zlistx_purge (self->sent);
    zlistx_purge (self->queued);
}

size_t
cbus_submitq_queued (cbus_submitq_t *self)
{
    return zlistx_size (self->queued);
}

size_t
cbus_submitq_in_flight (cbus_submitq_t *self)
{
    return zlistx_size (self->sent);
}

//  --------------------------------------------------------------------------
//  Self test: a chainstore that stores blocks, refuses one as an orphan,
//  and sits on another; the loop must keep turning meanwhile.

#define S_TEST_WINDOW 4

typedef struct {
    cbus_submitq_t *queue;      //  Under test
    int answered;               //  Handlers run
    int ok;                     //  ... with OK
    uint8_t order [64];         //  First hash byte of each, in order
    cbus_code_t last_code;      //  Code of the last answer
    size_t most_in_flight;      //  Seen at each answer (after its removal)
    int ticks;                  //  Timer turns while waiting
    int expect;                 //  Stop once this many answered
} s_test_t;

static void
s_test_store (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new_router ((const char *) args);
    assert (router);
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    cbus_buf_t body = {0};
    uint8_t hash [CBUS_HASH_BYTES] = { 0 };
    char reason [CBUS_REASON_MAX];
    while (zpoller_wait (poller, -1) == router) {
        cbus_request_t *request = cbus_request_recv (router);
        cbus_block_submit_t submit;
        if (request && request->decoded
        &&  cbus_block_submit_decode (cbus_request_map (request), &submit, reason) == 0) {
            cbus_block_submit_reply_t stored = {
                .hash = hash, .height = 1, .status = cbus_str ("connected")
            };
            if (submit.block.size == 6 && memcmp (submit.block.data, "orphan", 6) == 0)
                cbus_reply_refuse (router, request, CBUS_STATUS_INVALID, CBUS_CODE_ORPHAN,
                                   "Block's previous hash is not a known block");
            else
            if (!(submit.block.size == 6 && memcmp (submit.block.data, "silent", 6) == 0))
                cbus_reply_send_msg (router, request, &cbus_block_submit_reply_def, &stored, &body);
        }
        cbus_request_destroy (&request);
    }
    cbus_buf_free (&body);
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static void
s_test_handler (void *owner, const uint8_t hash [CBUS_HASH_BYTES], cbus_reply_t *reply)
{
    s_test_t *test = (s_test_t *) owner;
    if (test->answered < 64)
        test->order [test->answered] = hash [0];
    test->answered++;
    test->ok += cbus_reply_ok (reply);
    test->last_code = reply->code;
    size_t in_flight = cbus_submitq_in_flight (test->queue);
    if (in_flight > test->most_in_flight)
        test->most_in_flight = in_flight;
    //  What a sync does on a refusal: drop the rest.
    if (reply->code == CBUS_CODE_ORPHAN)
        cbus_submitq_clear (test->queue);
}

static int
s_test_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    s_test_t *test = (s_test_t *) arg;
    test->ticks++;
    return test->answered >= test->expect ? -1 : 0;
}

static void
s_test_push (s_test_t *test, uint8_t first, const char *bytes)
{
    uint8_t hash [CBUS_HASH_BYTES] = { first };
    zframe_t *block = zframe_new (bytes, strlen (bytes));
    assert (cbus_submitq_push (test->queue, &block, hash) == 0 && !block);
}

static void
s_test_run (zloop_t *loop, s_test_t *test, int expect)
{
    test->expect = expect;
    int timer = zloop_timer (loop, 10, 0, s_test_tick, test);
    zloop_start (loop);
    zloop_timer_end (loop, timer);
}

void
cbus_submitq_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_submitq: ");
    const char *endpoint = "inproc://cbus_submitq_test";
    zactor_t *store = zactor_new (s_test_store, (void *) endpoint);
    zloop_t *loop = zloop_new ();
    cbus_caller_t *caller = cbus_caller_new (loop, endpoint, "chainstore");
    assert (store && loop && caller);
    s_test_t test = {0};
    test.queue = cbus_submitq_new (caller, S_TEST_WINDOW, 2000, s_test_handler, &test);
    assert (test.queue);

    //  Twenty blocks: four go out at once, all come back, in order.
    for (uint8_t index = 0; index < 20; index++)
        s_test_push (&test, index, "block");
    assert (cbus_submitq_in_flight (test.queue) == S_TEST_WINDOW);
    assert (cbus_submitq_queued (test.queue) == 20 - S_TEST_WINDOW);
    assert (test.answered == 0);        //  Never from inside a push
    s_test_run (loop, &test, 20);
    assert (test.answered == 20 && test.ok == 20);
    for (uint8_t index = 0; index < 20; index++)
        assert (test.order [index] == index);
    assert (test.most_in_flight < S_TEST_WINDOW);
    assert (cbus_submitq_in_flight (test.queue) == 0 && cbus_submitq_queued (test.queue) == 0);

    //  A refusal carries its code; the handler drops the rest, and the
    //  answers of those already sent run nothing.
    memset (&test.order, 0, sizeof (test.order));
    test.answered = test.ok = 0;
    for (uint8_t index = 0; index < 10; index++)
        s_test_push (&test, index, index == 3 ? "orphan" : "block");
    s_test_run (loop, &test, 4);
    assert (test.answered == 4 && test.ok == 3 && test.last_code == CBUS_CODE_ORPHAN);
    assert (test.order [3] == 3);
    assert (cbus_submitq_in_flight (test.queue) == 0 && cbus_submitq_queued (test.queue) == 0);
    assert (cbus_caller_pending (caller) == 0);

    //  A chainstore that sits on a block: its deadline answers it, the
    //  loop turns meanwhile, and the next block follows.
    cbus_submitq_t *slow = cbus_submitq_new (caller, 1, 150, s_test_handler, &test);
    assert (slow);
    cbus_submitq_t *saved = test.queue;
    test.queue = slow;
    test.answered = test.ok = test.ticks = 0;
    int64_t start = cbus_mono_ms ();
    s_test_push (&test, 1, "silent");
    s_test_push (&test, 2, "block");
    s_test_run (loop, &test, 2);
    assert (test.answered == 2 && test.ok == 1);
    assert (test.order [0] == 1 && test.order [1] == 2);
    assert (cbus_mono_ms () - start >= 150);
    assert (test.ticks >= 5);

    //  Destroyed with a block in flight: its handler never runs.
    s_test_push (&test, 3, "silent");
    cbus_submitq_destroy (&slow);
    cbus_submitq_destroy (&slow);
    assert (cbus_caller_pending (caller) == 0);
    test.queue = saved;
    cbus_submitq_destroy (&test.queue);
    assert (test.answered == 2);

    cbus_caller_destroy (&caller);
    zloop_destroy (&loop);
    zactor_destroy (&store);
    if (verbose)
        printf ("OK\n");
}
