/*  =========================================================================
    cbus_mempool_commit - the group commit: verified submissions are
    checked against the chain with one TX.KNOWN, staged, written in one
    synced batch on the writer thread, and only then answered.

    One write runs at a time. When the writer is free, everything
    verified meanwhile is asked about in one TX.KNOWN (sent through the
    caller, so the loop goes on); its answer stages the new transactions
    and starts the write. Submissions verified while a question or a
    write is out wait for the next, which is what makes batches grow under
    load. Staging happens only right before a write starts, so nothing
    is ever staged while the loop waits for anything.

    A submission whose confirmed-status the chainstore did not give in
    time is refused (UNAVAILABLE, code unavailable): storing it could let
    a replay of a confirmed transaction in. Each question's deadline is
    CBUS_MEMPOOL_CHAINSTORE_MS counted from when the oldest submission it
    asks about came back from the verifier (at least
    CBUS_MEMPOOL_KNOWN_MIN_MS), so that no submission waits for the
    chainstore much longer than that, however many questions timed out
    before its own; once one timed out, the next are given the least time
    until the chainstore answers again.
    =========================================================================
*/
#include "cbus_mempool_private.h"

size_t
cbus_mempool_commit_queued (cbus_mempool_t *self)
{
    return zlistx_size (self->verified) + zlistx_size (self->checking)
         + zlistx_size (self->checked);
}

//  Answer a submission whose write (if any) has ended; stored says
//  whether that write succeeded.
static void
s_answer_submit (cbus_mempool_t *self, cbus_mempool_submit_t *submit, bool stored)
{
    size_t size;
    bool durable = submit->confirmed
                || (stored && submit->staged)
                || (!submit->staged && cbus_pool_get (self->pool, cbus_tx_id (submit->tx),
                                                      &size, NULL));
    char reason [CBUS_REASON_MAX];
    bool full = false;
    if (!durable && !cbus_pool_writable (self->pool, &full, reason) && full)
        cbus_mempool_refuse (self, submit->request, CBUS_STATUS_ERROR, CBUS_CODE_NO_SPACE,
                             "chainbus-mempool could not store the transaction: %s", reason);
    else
    if (!durable)
        cbus_mempool_refuse (self, submit->request, CBUS_STATUS_ERROR, CBUS_CODE_STORAGE,
                             "The mempool could not store the transaction");
    else {
        cbus_tx_submit_reply_t reply = {
            .txid = cbus_tx_id (submit->tx), .height = self->tip_height + 1,
            .duplicate = !submit->staged, .confirmed = submit->confirmed
        };
        cbus_reply_send_msg (self->router, submit->request, &cbus_tx_submit_reply_def, &reply,
                             &self->reply);
    }
}

static void
s_refuse (cbus_mempool_t *self, cbus_mempool_submit_t **submit_p, const char *status,
          cbus_code_t code, const char *reason)
{
    cbus_mempool_refuse (self, (*submit_p)->request, status, code, "%s", reason);
    cbus_mempool_submit_destroy (submit_p);
}

static void s_on_checked (const cbus_call_t *call, cbus_reply_t *reply);

//  Ask the chainstore which of the verified submissions are already
//  confirmed: one TX.KNOWN for all those the pool does not hold (what it
//  holds is a duplicate whatever the chain says). With none to ask, they
//  are checked at once.
static void
s_check_start (cbus_mempool_t *self)
{
    //  The verified list becomes the checking list: no copy.
    zlistx_t *swap = self->checking;
    self->checking = self->verified;
    self->verified = swap;
    size_t count = zlistx_size (self->checking), asked = 0;
    const uint8_t **txids = (const uint8_t **) malloc (count * sizeof (uint8_t *));
    cbus_mempool_submit_t *submit;
    if (!txids) {
        zsys_error ("mempool: out of memory, %zu submissions refused", count);
        while ((submit = (cbus_mempool_submit_t *) zlistx_detach (self->checking, NULL)))
            s_refuse (self, &submit, CBUS_STATUS_ERROR, CBUS_CODE_INTERNAL,
                      "The mempool is out of memory");
        return;
    }
    for (submit = (cbus_mempool_submit_t *) zlistx_first (self->checking); submit;
         submit = (cbus_mempool_submit_t *) zlistx_next (self->checking)) {
        submit->asked = !cbus_pool_has (self->pool, cbus_tx_id (submit->tx));
        if (submit->asked)
            txids [asked++] = cbus_tx_id (submit->tx);
    }
    self->checking_asked = asked;
    if (asked == 0) {
        free (txids);
        swap = self->checked;
        self->checked = self->checking;
        self->checking = swap;
        return;
    }
    cbus_tx_known_t ask = {
        .txids = { .count = (uint32_t) asked, .item = cbus_mempool_hash_item, .source = txids }
    };
    cbus_tx_known_encode (&ask, &self->ask);
    free (txids);
    int64_t timeout = CBUS_MEMPOOL_KNOWN_MIN_MS;
    if (!self->chainstore_down) {
        timeout = CBUS_MEMPOOL_CHAINSTORE_MS - (cbus_mono_ms () - self->verified_since);
        if (timeout < CBUS_MEMPOOL_KNOWN_MIN_MS)
            timeout = CBUS_MEMPOOL_KNOWN_MIN_MS;
    }
    cbus_caller_send (self->chainstore, CBUS_CMD_TX_KNOWN, self->ask.data, self->ask.size,
                      (int) timeout, s_on_checked, self, NULL);
    self->checks++;
}

//  The chainstore answered (or the question expired): what it confirms
//  is answered as a duplicate, what it did not answer for is refused,
//  the rest waits to be staged by the next write.
static void
s_on_checked (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_mempool_t *self = (cbus_mempool_t *) call->owner;
    cbus_mempool_chainstore_heard (self, reply, CBUS_CMD_TX_KNOWN);
    size_t asked = self->checking_asked;
    uint32_t index = 0;
    cbus_tx_known_reply_t msg;      //  Borrows the reply
    char why [CBUS_REASON_MAX];
    bool answered = cbus_mempool_known_decode (reply, asked, &msg, why) == 0;
    //  Long enough for the prefix and any reason: the reply's reason is
    //  cut, not this one.
    char reason [CBUS_REASON_MAX + 64];
    if (!answered)
        snprintf (reason, sizeof (reason),
                  "Cannot tell whether the transaction is already in the chain: %s", why);
    cbus_mempool_submit_t *submit;
    while ((submit = (cbus_mempool_submit_t *) zlistx_detach (self->checking, NULL))) {
        if (submit->asked && !answered) {
            s_refuse (self, &submit, CBUS_STATUS_UNAVAILABLE, CBUS_CODE_UNAVAILABLE, reason);
            continue;
        }
        if (submit->asked)
            submit->confirmed = cbus_list_bool (&msg.known, index++);
        zlistx_add_end (self->checked, submit);
    }
    self->checking_asked = 0;
    cbus_mempool_write_next (self);
    cbus_mempool_intake_check (self);
}

//  Stage the checked submissions and start their write. A submission
//  the pool holds by now is a duplicate; one it held when asked about
//  and no longer holds left it meanwhile (mined), and is refused for
//  want of an answer about it; confirmed ones are answered as such;
//  past max_pending the rest are refused as full. With nothing staged,
//  they are all answered at once.
static void
s_write_start (cbus_mempool_t *self)
{
    size_t pending = cbus_pool_size (self->pool);
    size_t room = pending < self->max_pending ? self->max_pending - pending : 0;
    size_t staged_count = 0;
    cbus_mempool_submit_t *submit = (cbus_mempool_submit_t *) zlistx_first (self->checked);
    for (; submit; submit = (cbus_mempool_submit_t *) zlistx_next (self->checked)) {
        if (cbus_pool_has (self->pool, cbus_tx_id (submit->tx))) {
            submit->confirmed = false;
            continue;
        }
        if (!submit->asked || (!submit->confirmed && room == 0)) {
            zlistx_detach_cur (self->checked);
            if (!submit->asked)
                s_refuse (self, &submit, CBUS_STATUS_UNAVAILABLE, CBUS_CODE_UNAVAILABLE,
                          "The transaction left the mempool while it was checked: try again");
            else {
                char reason [CBUS_REASON_MAX];
                snprintf (reason, sizeof (reason),
                          "The mempool is full (%zu pending): try again later", pending);
                s_refuse (self, &submit, CBUS_STATUS_FULL, CBUS_CODE_FULL, reason);
            }
            continue;
        }
        if (!submit->confirmed) {
            int staged = cbus_pool_stage (self->pool, submit->tx);
            if (staged < 0) {
                zlistx_detach_cur (self->checked);
                s_refuse (self, &submit, CBUS_STATUS_ERROR, CBUS_CODE_INTERNAL,
                          "The mempool is out of memory");
                continue;
            }
            submit->staged = staged == 1;
            room -= submit->staged;
            staged_count += submit->staged;
        }
    }
    //  NULL with something staged: memory was short, nothing was kept.
    self->writing = cbus_pool_write_begin (self->pool);
    if (!self->writing) {
        while ((submit = (cbus_mempool_submit_t *) zlistx_detach (self->checked, NULL))) {
            s_answer_submit (self, submit, staged_count == 0);
            cbus_mempool_submit_destroy (&submit);
        }
        return;
    }
    zlistx_t *swap = self->writing_submits;
    self->writing_submits = self->checked;
    self->checked = swap;
    self->writes++;
    cbus_metrics_observe (self->metrics, CBUS_METRIC_MEMPOOL_COMMIT_BATCH, NULL, NULL,
                          (double) staged_count);
    zsock_send (self->writer, "sp", "WRITE", self->writing);
}

static int s_on_commit_timer (zloop_t *loop, int timer_id, void *arg);

//  Whether the next check should wait for more: only under load (more
//  submissions are being verified behind these), only while fewer than
//  CBUS_MEMPOOL_WRITE_TARGET wait, and no longer than commit_wait_ms. One
//  fsync then covers more submissions; a lone submission never waits.
static bool
s_should_wait (cbus_mempool_t *self)
{
    size_t count = zlistx_size (self->verified);
    if (count == 0 || self->verifying == 0 || count >= CBUS_MEMPOOL_WRITE_TARGET)
        return false;
    int64_t left = self->verified_since + self->commit_wait_ms - cbus_mono_ms ();
    if (left <= 0)
        return false;
    if (self->commit_timer == -1)
        self->commit_timer = zloop_timer (self->loop, (size_t) left, 1, s_on_commit_timer, self);
    return true;
}

//  Move the pipeline on: start the write of what is checked when the
//  writer is free, else ask about what is verified when no question is
//  out. Called whenever one of those lists or the writer changes.
void
cbus_mempool_write_next (cbus_mempool_t *self)
{
    while (!self->stopping && !self->writing) {
        if (zlistx_size (self->checked))
            s_write_start (self);   //  Answers at once when nothing is new
        else
        if (zlistx_size (self->checking) == 0 && zlistx_size (self->verified)
        &&  !s_should_wait (self))
            s_check_start (self);   //  Checked at once when none is asked
        else
            break;                  //  A reply, a write's end or the timer calls again
        if (zlistx_size (self->checking))
            break;
    }
}

//  The writer thread finished a write: make it pending, answer the
//  submissions that waited on it, announce what became pending (it is
//  durable now), then go on.
static void
s_write_ended (cbus_mempool_t *self, int rc)
{
    cbus_pool_write_end (self->pool, &self->writing, rc);
    if (rc)
        zsys_error ("mempool write failed: %zu submissions answered with an error",
                    zlistx_size (self->writing_submits));
    cbus_mempool_submit_t *submit;
    uint64_t added = 0;
    while ((submit = (cbus_mempool_submit_t *) zlistx_detach (self->writing_submits, NULL))) {
        s_answer_submit (self, submit, rc == 0);
        if (rc == 0 && submit->staged) {
            cbus_mempool_publish_added (self, submit->tx);
            added++;
        }
        cbus_mempool_submit_destroy (&submit);
    }
    //  Accepted: acknowledged and new in the pool (not duplicates, nor
    //  those the chain already holds).
    cbus_metrics_add (self->metrics, CBUS_METRIC_MEMPOOL_TXS_ACCEPTED, NULL, NULL, added);
    cbus_mempool_write_next (self);
}

static int
s_on_written (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    cbus_mempool_t *self = (cbus_mempool_t *) arg;
    void *write = NULL;
    int rc = -1;
    if (zsock_recv (reader, "pi", &write, &rc) == 0 && write == self->writing) {
        s_write_ended (self, rc);
        cbus_mempool_intake_check (self);
    }
    return 0;
}

static int
s_on_commit_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    cbus_mempool_t *self = (cbus_mempool_t *) arg;
    self->commit_timer = -1;
    cbus_mempool_write_next (self);
    cbus_mempool_intake_check (self);
    return 0;
}

//  The writer: runs each write it is given and says how it went; each
//  synced write's duration, if it succeeded, goes into the registry
//  (args; it locks).
static void
s_writer_actor (zsock_t *pipe, void *args)
{
    cbus_metrics_t *metrics = (cbus_metrics_t *) args;
    cbus_thread_name ("mempool-write");
    zsock_signal (pipe, 0);
    while (true) {
        char *command = NULL;
        void *write = NULL;
        if (zsock_recv (pipe, "sp", &command, &write) == -1)
            break;
        bool stop = !command || !streq (command, "WRITE");
        zstr_free (&command);
        if (stop)
            break;
        int64_t started = zclock_usecs ();
        int rc = cbus_pool_write_run ((cbus_pool_write_t *) write);
        if (rc == 0)
            cbus_metrics_observe (metrics, CBUS_METRIC_MEMPOOL_COMMIT_WRITE, NULL, NULL,
                                  (double) (zclock_usecs () - started) / 1e6);
        zsock_send (pipe, "pi", write, rc);
    }
}

int
cbus_mempool_commit_start (cbus_mempool_t *self)
{
    self->writer = zactor_new (s_writer_actor, self->metrics);
    if (!self->writer
    ||  zloop_reader (self->loop, zactor_sock (self->writer), s_on_written, self))
        return -1;
    return 0;
}

//  The write still running ends first: what it holds is answered. What
//  is verified or checked but not yet written is dropped unanswered:
//  nothing of it was stored, and its senders see the mempool gone.
void
cbus_mempool_commit_stop (cbus_mempool_t *self)
{
    while (self->writer && self->writing) {
        void *write = NULL;
        int rc = -1;
        if (zsock_recv (self->writer, "pi", &write, &rc) == -1 || write != self->writing)
            break;
        s_write_ended (self, rc);
    }
    zactor_destroy (&self->writer);
    zlistx_t *lists [] = { self->verified, self->checking, self->checked, self->writing_submits };
    for (size_t index = 0; index < sizeof (lists) / sizeof (lists [0]); index++) {
        cbus_mempool_submit_t *submit;
        while (lists [index]
           && (submit = (cbus_mempool_submit_t *) zlistx_detach (lists [index], NULL)))
            cbus_mempool_submit_destroy (&submit);
    }
}
