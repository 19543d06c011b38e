/*  =========================================================================
    cbus_chainstore_backup - STORE.BACKUP: a point-in-time copy of the chain
    =========================================================================
*/
#include "cbus_chainstore_backup.h"

//  Longest path a request may name.
#define S_PATH_MAX  1024

struct _cbus_chainstore_backup_t {
    zloop_t *loop;              //  The chainstore's (borrowed)
    zsock_t *router;            //  Where requests come from (borrowed)
    cbus_chain_t *chain;        //  Whose store is copied (borrowed)
    cbus_store_copy_t *copy;    //  The copy running, or NULL
    cbus_request_t asker;       //  Who asked for it: routing and request ids
    int64_t started;            //  Monotonic ms it started
    uint64_t height;            //  The tip it holds
    uint8_t tip [CBUS_HASH_BYTES];
    cbus_buf_t reply;           //  Reply buffer
    char *damaged;              //  The chainstore's damaged state (borrowed)
    size_t damaged_size;
};

cbus_chainstore_backup_t *
cbus_chainstore_backup_new (zloop_t *loop, zsock_t *router, cbus_chain_t *chain,
                            char *damaged, size_t damaged_size)
{
    cbus_chainstore_backup_t *self =
        (cbus_chainstore_backup_t *) zmalloc (sizeof (cbus_chainstore_backup_t));
    if (self) {
        self->loop = loop;
        self->router = router;
        self->chain = chain;
        self->damaged = damaged;
        self->damaged_size = damaged_size;
    }
    return self;
}

static void
s_asker_free (cbus_chainstore_backup_t *self)
{
    zframe_destroy (&self->asker.routing_id);
    zframe_destroy (&self->asker.request_id);
}

void
cbus_chainstore_backup_destroy (cbus_chainstore_backup_t **self_p)
{
    assert (self_p);
    cbus_chainstore_backup_t *self = *self_p;
    if (self) {
        cbus_store_copy_destroy (&self->copy);
        s_asker_free (self);
        cbus_buf_free (&self->reply);
        free (self);
        *self_p = NULL;
    }
}

//  The copy ended: answer whoever asked.
static void
s_on_copied (cbus_store_copy_t *copy, void *arg)
{
    cbus_chainstore_backup_t *self = (cbus_chainstore_backup_t *) arg;
    cbus_store_copy_sum_t sum;
    cbus_code_t code;
    char reason [CBUS_REASON_MAX];
    if (cbus_store_copy_result (copy, &sum, &code, reason) == 0) {
        cbus_chain_backup_reply_t reply = {
            .entries = sum.entries, .bytes = sum.bytes, .digest = sum.digest,
            .ms = (uint64_t) (cbus_mono_ms () - self->started),
            .has_height = true, .height = self->height, .has_tip = true, .tip = self->tip
        };
        zsys_info ("backup written height=%" PRIu64 " entries=%" PRIu64 " bytes=%" PRIu64
                   " ms=%" PRIu64, reply.height, sum.entries, sum.bytes, reply.ms);
        cbus_reply_send_msg (self->router, &self->asker, &cbus_chain_backup_reply_def, &reply,
                             &self->reply);
    }
    else {
        //  A table of the store that does not read back: the store is
        //  damaged, as when a request's read finds it (GET /status).
        if (cbus_store_copy_fault (copy) == CBUS_STORE_CORRUPT && !*self->damaged) {
            snprintf (self->damaged, self->damaged_size, "%.160s (reading the store for a backup)",
                      reason);
            zsys_error ("chain store damaged: reads fail with \"%s\"; stop the node, keep a "
                        "copy of the data folder, and restore or resync it", self->damaged);
        }
        cbus_reply_refuse (self->router, &self->asker, CBUS_STATUS_ERROR, code,
                           "backup failed: %s", reason);
    }
    cbus_store_copy_destroy (&self->copy);
    s_asker_free (self);
}

void
cbus_chainstore_backup_cancel (cbus_chainstore_backup_t *self, cbus_request_t *request)
{
    cbus_chain_backup_cancel_t msg;
    char reason [CBUS_REASON_MAX];
    if (!cbus_store_copy_local (request, reason)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_LOCAL_ONLY,
                           "%s", reason);
        return;
    }
    if (cbus_chain_backup_cancel_decode (cbus_request_map (request), &msg, reason)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "%s", reason);
        return;
    }
    cbus_chain_backup_cancel_reply_t reply = {
        .cancelled = self->copy && cbus_store_copy_matches (self->copy, msg.path.data,
                                                            msg.path.size)
    };
    if (reply.cancelled) {
        //  Stops the thread and removes what it wrote before it returns;
        //  the request cancelled gets no answer (its asker gave up).
        cbus_store_copy_destroy (&self->copy);
        s_asker_free (self);
        zsys_info ("backup cancelled: the copy was stopped and removed");
    }
    cbus_reply_send_msg (self->router, request, &cbus_chain_backup_cancel_reply_def, &reply,
                         &self->reply);
}

void
cbus_chainstore_backup_handle (cbus_chainstore_backup_t *self, cbus_request_t *request)
{
    cbus_chain_backup_t msg;
    char reason [CBUS_REASON_MAX];
    char path [S_PATH_MAX + 1];
    cbus_code_t code;
    if (!cbus_store_copy_local (request, reason)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_LOCAL_ONLY,
                           "%s", reason);
        return;
    }
    if (cbus_chain_backup_decode (cbus_request_map (request), &msg, reason)) {
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
    if (self->copy) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_FULL, CBUS_CODE_FULL,
                           "a backup is being written: try again when it is done");
        return;
    }
    //  The pool's copy holds no transaction of a block up to its tip: the
    //  chain copy must hold that block, or a reorganisation since lost
    //  them from both (chainbus backup then takes both again).
    if (msg.has_after_tip && !cbus_chain_is_active (self->chain, msg.after_tip)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_STALE,
                           "the block after_tip names is not on the active chain "
                           "(a reorganisation): take the pool's copy again");
        return;
    }
    memcpy (path, msg.path.data, msg.path.size);
    path [msg.path.size] = 0;
    //  The snapshot and the tip it holds, in the same turn of the loop.
    cbus_chain_entry_t tip;
    memcpy (self->tip, cbus_chain_tip (self->chain, &tip), CBUS_HASH_BYTES);
    self->height = tip.height;
    self->started = cbus_mono_ms ();
    self->copy = cbus_store_copy_new (cbus_chain_store (self->chain), path, &code, reason);
    self->asker.routing_id = zframe_dup (request->routing_id);
    self->asker.request_id = zframe_dup (request->request_id);
    snprintf (self->asker.command, sizeof (self->asker.command), "%s", request->command);
    if (!self->copy || !self->asker.routing_id || !self->asker.request_id
    ||  cbus_store_copy_watch (self->copy, self->loop, s_on_copied, self)) {
        if (self->copy) {
            code = CBUS_CODE_INTERNAL;
            cbus_fail (reason, "out of memory");
        }
        cbus_store_copy_destroy (&self->copy);
        s_asker_free (self);
        cbus_reply_refuse (self->router, request, code == CBUS_CODE_INVALID
                           ? CBUS_STATUS_INVALID : CBUS_STATUS_ERROR, code, "%s", reason);
        return;
    }
    zsys_info ("backup started height=%" PRIu64 " path=%s", tip.height, path);
}
