/*  =========================================================================
    cbus_mempool_intake - TX.SUBMIT on its way in: decoded here, its
    signature verified on the verifier thread, in arrival order, and
    handed on to the group commit. Past batch_max submissions taken in
    and not yet written, the router is not read (back-pressure).
    =========================================================================
*/
#include "cbus_mempool_private.h"
#include <stdarg.h>

void
cbus_mempool_refuse (cbus_mempool_t *self, cbus_request_t *request, const char *status,
                     cbus_code_t code, const char *format, ...)
{
    char reason [CBUS_REASON_MAX];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof (reason), format, args);
    va_end (args);
    if (streq (request->command, CBUS_CMD_TX_SUBMIT))
        cbus_metrics_add (self->metrics, CBUS_METRIC_MEMPOOL_TXS_REFUSED, cbus_code_name (code),
                          NULL, 1);
    cbus_reply_refuse (self->router, request, status, code, "%s", reason);
}

void
cbus_mempool_submit_destroy (cbus_mempool_submit_t **submit_p)
{
    cbus_mempool_submit_t *submit = *submit_p;
    if (submit) {
        cbus_request_destroy (&submit->request);
        cbus_tx_destroy (&submit->tx);
        free (submit->refusal);
        free (submit);
        *submit_p = NULL;
    }
}

//  Submissions taken in and not yet being written: in the verifier,
//  verified, or checked against the chain and waiting for the next write.
static size_t
s_intake (cbus_mempool_t *self)
{
    return self->verifying + cbus_mempool_commit_queued (self);
}

//  At batch_max submissions taken in, or CBUS_MEMPOOL_CHUNKS_MAX chunks in
//  the verifier, stop reading requests: the rest wait in the socket's
//  queue (and the senders') until a write or the verifier takes some;
//  then read again. Requests of every kind wait alike meanwhile, for at
//  most one write and one TX.KNOWN.
void
cbus_mempool_intake_check (cbus_mempool_t *self)
{
    if (self->stopping)
        return;
    bool full = s_intake (self) >= self->batch_max || self->chunks >= CBUS_MEMPOOL_CHUNKS_MAX;
    if (full && !self->intake_paused) {
        zloop_reader_end (self->loop, self->router);
        self->pauses++;
    }
    else
    if (!full && self->intake_paused)
        zloop_reader (self->loop, self->router, cbus_mempool_on_request, self);
    self->intake_paused = full;
}

//  Take a TX.SUBMIT in: decoded and put in the chunk for the verifier,
//  or refused now. Takes the request.
static void
s_submit_take (cbus_mempool_t *self, cbus_request_t *request, cbus_mempool_chunk_t *chunk)
{
    cbus_tx_submit_t msg;           //  Borrows the request's bytes
    char reason [CBUS_REASON_MAX], why [CBUS_REASON_MAX];
    bool full = false;
    cbus_tx_t *tx = NULL;
    cbus_mempool_submit_t *submit = NULL;
    if (cbus_tx_submit_decode (cbus_request_map (request), &msg, reason))
        cbus_mempool_refuse (self, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                             "TX.SUBMIT needs tx bytes");
    else
    if (!(tx = cbus_tx_decode (msg.tx.data, msg.tx.size, reason)))
        cbus_mempool_refuse (self, request, CBUS_STATUS_INVALID, CBUS_CODE_BAD_TX,
                             "%s", reason);
    else
    if (self->require_signatures && !cbus_tx_is_signed (tx))
        cbus_mempool_refuse (self, request, CBUS_STATUS_INVALID, CBUS_CODE_BAD_SIGNATURE,
                             "This node accepts signed transactions only: add a signature "
                             "by sender_public_key (see docs/transactions.md)");
    else
    if (!cbus_pool_writable (self->pool, &full, why))
        //  A paused store takes nothing: refused before any work.
        cbus_mempool_refuse (self, request, CBUS_STATUS_ERROR,
                             full ? CBUS_CODE_NO_SPACE : CBUS_CODE_STORAGE,
                             "chainbus-mempool cannot store transactions now: %s", why);
    else
    if (!(submit = (cbus_mempool_submit_t *) calloc (1, sizeof (cbus_mempool_submit_t))))
        cbus_mempool_refuse (self, request, CBUS_STATUS_ERROR, CBUS_CODE_INTERNAL,
                             "The mempool is out of memory");
    else {
        //  Every submission, duplicates too, is answered after the
        //  commit of its batch, in arrival order.
        submit->request = request;
        submit->tx = tx;
        chunk->submits [chunk->count++] = submit;
        return;
    }
    cbus_tx_destroy (&tx);
    cbus_request_destroy (&request);
}

int
cbus_mempool_on_request (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    cbus_mempool_t *self = (cbus_mempool_t *) arg;
    //  Paused by a timer in this round of zloop (see the chain events).
    if (self->intake_paused)
        return 0;
    //  Take what has arrived, up to a chunk of submissions; the chunk
    //  goes to the verifier, and what arrives meanwhile makes the next.
    cbus_mempool_chunk_t *chunk = (cbus_mempool_chunk_t *) calloc (1, sizeof (cbus_mempool_chunk_t));
    if (!chunk) {
        zsys_error ("mempool: out of memory, requests left waiting");
        return 0;
    }
    do {
        cbus_request_t *request = cbus_request_recv (self->router);
        if (!request)
            ;                       //  Malformed: logged and dropped
        else
        if (!request->decoded) {
            cbus_mempool_refuse (self, request, CBUS_STATUS_INVALID, CBUS_CODE_MALFORMED,
                                 "The body is not a msgpack map");
            cbus_request_destroy (&request);
        }
        else
        if (streq (request->command, CBUS_CMD_TX_SUBMIT))
            s_submit_take (self, request, chunk);
        else
            cbus_mempool_handle_request (self, request);
    } while (chunk->count < CBUS_MEMPOOL_CHUNK_MAX
          && s_intake (self) + chunk->count < self->batch_max
          && (zsock_events (self->router) & ZMQ_POLLIN));
    if (chunk->count) {
        self->verifying += chunk->count;
        self->chunks++;
        zsock_send (zactor_sock (self->verifier), "sp", "VERIFY", chunk);
    }
    else
        free (chunk);
    cbus_mempool_intake_check (self);
    return 0;
}

//  The verifier: checks the signatures of each chunk it is given and
//  hands the chunk back; a submission that fails is marked forged.
static void
s_verifier_actor (zsock_t *pipe, void *args)
{
    (void) args;
    cbus_thread_name ("mempool-verify");
    zsock_signal (pipe, 0);
    while (true) {
        char *command = NULL;
        void *pointer = NULL;
        if (zsock_recv (pipe, "sp", &command, &pointer) == -1)
            break;
        bool stop = !command || !streq (command, "VERIFY");
        zstr_free (&command);
        if (stop)
            break;
        cbus_mempool_chunk_t *chunk = (cbus_mempool_chunk_t *) pointer;
        char reason [CBUS_REASON_MAX];
        for (size_t index = 0; index < chunk->count; index++)
            if (cbus_tx_verify (chunk->submits [index]->tx, reason)) {
                chunk->submits [index]->forged = true;
                chunk->submits [index]->refusal = strdup (reason);
            }
        zsock_send (pipe, "p", chunk);
    }
}

//  A chunk is back from the verifier: refuse what failed; the rest wait
//  for the next check and write, which start now if none runs.
static int
s_on_verified (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    cbus_mempool_t *self = (cbus_mempool_t *) arg;
    void *pointer = NULL;
    if (zsock_recv (reader, "p", &pointer) || !pointer)
        return 0;
    cbus_mempool_chunk_t *chunk = (cbus_mempool_chunk_t *) pointer;
    self->verifying -= chunk->count;
    self->chunks--;
    if (zlistx_size (self->verified) == 0)
        self->verified_since = cbus_mono_ms ();
    for (size_t index = 0; index < chunk->count; index++) {
        cbus_mempool_submit_t *submit = chunk->submits [index];
        if (submit->forged) {
            cbus_mempool_refuse (self, submit->request, CBUS_STATUS_INVALID,
                                 CBUS_CODE_BAD_SIGNATURE, "%s",
                                 submit->refusal ? submit->refusal : "The signature does not verify");
            cbus_mempool_submit_destroy (&submit);
        }
        else
            zlistx_add_end (self->verified, submit);
    }
    free (chunk);
    cbus_mempool_write_next (self);
    cbus_mempool_intake_check (self);
    return 0;
}

int
cbus_mempool_intake_start (cbus_mempool_t *self)
{
    self->verifier = zactor_new (s_verifier_actor, NULL);
    if (!self->verifier
    ||  zloop_reader (self->loop, zactor_sock (self->verifier), s_on_verified, self)
    ||  zloop_reader (self->loop, self->router, cbus_mempool_on_request, self))
        return -1;
    return 0;
}

//  Chunks still in the verifier come back and are dropped unanswered:
//  nothing of them was stored, and their senders see the mempool gone.
void
cbus_mempool_intake_stop (cbus_mempool_t *self)
{
    while (self->verifier && self->verifying) {
        void *pointer = NULL;
        if (zsock_recv (self->verifier, "p", &pointer) || !pointer)
            break;
        cbus_mempool_chunk_t *chunk = (cbus_mempool_chunk_t *) pointer;
        self->verifying -= chunk->count;
        self->chunks--;
        for (size_t index = 0; index < chunk->count; index++)
            cbus_mempool_submit_destroy (&chunk->submits [index]);
        free (chunk);
    }
    zactor_destroy (&self->verifier);
}
