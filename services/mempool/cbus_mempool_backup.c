/*  =========================================================================
    cbus_mempool_backup - STORE.BACKUP: a point-in-time copy of the pool

    `chainbus backup` asks the mempool first, then the chainstore: a
    transaction acknowledged before the backup started is in this copy
    (acknowledgements are sent only once its write returned, and the
    snapshot is taken when the request is handled, on the loop), or, if
    a block confirmed it meanwhile, in the chain copy taken after (given
    this copy's tip, the chainstore refuses its copy stale when a
    reorganisation disconnected that block: chainbus backup retries). The
    copy is written by cbus_store_copy's thread while submissions and
    their group commits go on; the reply comes from the loop once the
    copy is durable, with the tip the pool reflected. One at a time:
    another request meanwhile is refused FULL (full). STORE.BACKUP.CANCEL
    stops a copy and removes what it wrote; both are taken only from this
    machine (cbus_store_copy_local).
    =========================================================================
*/
#include "cbus_mempool_private.h"

//  Longest path a request may name.
#define S_PATH_MAX  1024

struct _cbus_mempool_backup_t {
    cbus_store_copy_t *copy;    //  The copy running, or NULL
    cbus_request_t asker;       //  Who asked for it: routing and request ids
    int64_t started;            //  Monotonic ms it started
    bool tip_known;             //  The pool knew its tip then
    uint64_t height;            //  ... that tip
    uint8_t tip [CBUS_HASH_BYTES];
};

static void
s_asker_free (cbus_mempool_backup_t *self)
{
    zframe_destroy (&self->asker.routing_id);
    zframe_destroy (&self->asker.request_id);
}

void
cbus_mempool_backup_stop (cbus_mempool_t *self)
{
    if (self->backup) {
        cbus_store_copy_destroy (&self->backup->copy);
        s_asker_free (self->backup);
        free (self->backup);
        self->backup = NULL;
    }
}

//  The copy ended: answer whoever asked.
static void
s_on_copied (cbus_store_copy_t *copy, void *arg)
{
    cbus_mempool_t *self = (cbus_mempool_t *) arg;
    cbus_mempool_backup_t *backup = self->backup;
    cbus_store_copy_sum_t sum;
    cbus_code_t code;
    char reason [CBUS_REASON_MAX];
    if (cbus_store_copy_result (copy, &sum, &code, reason) == 0) {
        cbus_pool_backup_reply_t reply = {
            .entries = sum.entries, .bytes = sum.bytes, .digest = sum.digest,
            .ms = (uint64_t) (cbus_mono_ms () - backup->started),
            .has_height = backup->tip_known, .height = backup->height,
            .has_tip = backup->tip_known, .tip = backup->tip
        };
        zsys_info ("backup written entries=%" PRIu64 " bytes=%" PRIu64 " ms=%" PRIu64,
                   sum.entries, sum.bytes, reply.ms);
        cbus_reply_send_msg (self->router, &backup->asker, &cbus_pool_backup_reply_def, &reply,
                             &self->reply);
    }
    else
        cbus_reply_refuse (self->router, &backup->asker, CBUS_STATUS_ERROR, code,
                           "backup failed: %s", reason);
    cbus_store_copy_destroy (&backup->copy);
    s_asker_free (backup);
}

//  Start the copy for request into path: 0, or -1 with the code and
//  reason.
static int
s_start (cbus_mempool_t *self, cbus_request_t *request, const char *path, cbus_code_t *code,
         char *reason)
{
    cbus_mempool_backup_t *backup = self->backup;
    backup->tip_known = self->tip_known || self->tip_stored;
    backup->height = self->tip_height;
    memcpy (backup->tip, self->tip_hash, CBUS_HASH_BYTES);
    backup->started = cbus_mono_ms ();
    backup->copy = cbus_store_copy_new (cbus_pool_store (self->pool), path, code, reason);
    if (!backup->copy)
        return -1;
    backup->asker.routing_id = zframe_dup (request->routing_id);
    backup->asker.request_id = zframe_dup (request->request_id);
    snprintf (backup->asker.command, sizeof (backup->asker.command), "%s", request->command);
    if (!backup->asker.routing_id || !backup->asker.request_id
    ||  cbus_store_copy_watch (backup->copy, self->loop, s_on_copied, self)) {
        *code = CBUS_CODE_INTERNAL;
        cbus_fail (reason, "out of memory");
        cbus_store_copy_destroy (&backup->copy);
        s_asker_free (backup);
        return -1;
    }
    return 0;
}

void
cbus_mempool_backup_cancel (cbus_mempool_t *self, cbus_request_t *request)
{
    cbus_pool_backup_cancel_t msg;
    char reason [CBUS_REASON_MAX];
    if (!cbus_store_copy_local (request, reason)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_LOCAL_ONLY,
                           "%s", reason);
        return;
    }
    if (cbus_pool_backup_cancel_decode (cbus_request_map (request), &msg, reason)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "%s", reason);
        return;
    }
    cbus_mempool_backup_t *backup = self->backup;
    cbus_pool_backup_cancel_reply_t reply = {
        .cancelled = backup && backup->copy
                  && cbus_store_copy_matches (backup->copy, msg.path.data, msg.path.size)
    };
    if (reply.cancelled) {
        //  Stops the thread and removes what it wrote before it returns;
        //  the request cancelled gets no answer (its asker gave up).
        cbus_store_copy_destroy (&backup->copy);
        s_asker_free (backup);
        zsys_info ("backup cancelled: the copy was stopped and removed");
    }
    cbus_reply_send_msg (self->router, request, &cbus_pool_backup_cancel_reply_def, &reply,
                         &self->reply);
}

void
cbus_mempool_backup_handle (cbus_mempool_t *self, cbus_request_t *request)
{
    cbus_pool_backup_t msg;
    char reason [CBUS_REASON_MAX];
    char path [S_PATH_MAX + 1];
    cbus_code_t code = CBUS_CODE_INTERNAL;
    if (!cbus_store_copy_local (request, reason)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_LOCAL_ONLY,
                           "%s", reason);
        return;
    }
    if (cbus_pool_backup_decode (cbus_request_map (request), &msg, reason)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "%s", reason);
        return;
    }
    if (msg.path.size == 0 || msg.path.size > S_PATH_MAX || msg.path.data [0] != '/'
    ||  memchr (msg.path.data, 0, msg.path.size)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "path must be absolute, at most %d bytes", S_PATH_MAX);
        return;
    }
    if (self->backup && self->backup->copy) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_FULL, CBUS_CODE_FULL,
                           "a backup is being written: try again when it is done");
        return;
    }
    if (!self->backup
    &&  !(self->backup = (cbus_mempool_backup_t *) zmalloc (sizeof (cbus_mempool_backup_t)))) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_ERROR, CBUS_CODE_INTERNAL,
                           "out of memory");
        return;
    }
    memcpy (path, msg.path.data, msg.path.size);
    path [msg.path.size] = 0;
    if (s_start (self, request, path, &code, reason)) {
        cbus_reply_refuse (self->router, request, code == CBUS_CODE_INVALID
                           ? CBUS_STATUS_INVALID : CBUS_STATUS_ERROR, code, "%s", reason);
        return;
    }
    zsys_info ("backup started pending=%zu path=%s", cbus_pool_size (self->pool), path);
}
