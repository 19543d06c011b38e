/*  =========================================================================
    cbus_mempool - takes transactions in, durably, and asks for blocks

    The class: set-up and tear-down, the loop, the tick, and the requests
    other than TX.SUBMIT. The rest lives in the files listed in
    cbus_mempool_private.h.
    =========================================================================
*/
#include "cbus_mempool_private.h"

static int s_on_tick (zloop_t *loop, int timer_id, void *arg);

//  The settings, lists and endpoints; -1 (logged) if memory is short.
static int
s_mempool_settings (cbus_mempool_t *self, cbus_config_t *config)
{
    self->config = config;
    self->commit_timer = -1;
    self->max_pending = (size_t) cbus_config_int (config, "mempool/max_pending");
    self->block_max_txs = (size_t) cbus_config_int (config, "mempool/block_max_txs");
    self->batch_max = (size_t) cbus_config_int (config, "mempool/batch_max");
    self->require_signatures = cbus_config_bool (config, "mempool/require_signatures");
    self->commit_wait_ms = cbus_config_int (config, "mempool/commit_wait_ms");
    self->mine_timeout_ms = cbus_config_int (config, "gateway/mine_timeout_ms");
    self->continuous = streq (cbus_config_str (config, "miner/mode"), "continuous");
    self->refresh_ms = cbus_config_int (config, "miner/refresh_ms");
    self->refresh_timer = -1;
    self->template_wanted = self->continuous;
    self->waiters = zlistx_new ();
    self->old_tips = zlistx_new ();
    self->verified = zlistx_new ();
    self->checking = zlistx_new ();
    self->checked = zlistx_new ();
    self->writing_submits = zlistx_new ();
    self->endpoint = cbus_config_endpoint (config, "mempool");
    if (!self->waiters || !self->old_tips || !self->verified || !self->checking
    ||  !self->checked || !self->writing_submits || !self->endpoint) {
        zsys_error ("mempool: cannot start: out of memory");
        return -1;
    }
    return 0;
}

//  The bus: chain.block.* in (a deep queue: a reorganisation comes as a
//  burst, and events wait while the chain side has a call out), events
//  and work out. -1 with a reason.
static int
s_mempool_bus (cbus_mempool_t *self, char *reason)
{
    char *bus_in = cbus_config_endpoint (self->config, "bus-in");
    char *bus_out = cbus_config_endpoint (self->config, "bus-out");
    int rc = -1;
    if (!bus_in || !bus_out)
        cbus_fail (reason, "out of memory");
    else
    if (!(self->sub = zsock_new (ZMQ_SUB)))
        cbus_fail (reason, "cannot make a SUB socket");
    else {
        zsock_set_rcvhwm (self->sub, 100000);
        zsock_set_maxmsgsize (self->sub, CBUS_MSG_MAX_BYTES);
        zsock_set_subscribe (self->sub, CBUS_TOPIC_BLOCK_CONNECTED);
        zsock_set_subscribe (self->sub, CBUS_TOPIC_BLOCK_DISCONNECTED);
        zsock_set_subscribe (self->sub, CBUS_TOPIC_CHAIN_STORAGE);
        if (cbus_endpoint_connect (self->sub, bus_out))
            cbus_fail (reason, "cannot connect to %s", bus_out);
        else
        if (!(self->pub = cbus_pub_new (bus_in, "mempool")))
            cbus_fail (reason, "cannot publish to %s", bus_in);
        else
            rc = 0;
    }
    zstr_free (&bus_in);
    zstr_free (&bus_out);
    return rc;
}

cbus_mempool_t *
cbus_mempool_new (cbus_config_t *config)
{
    assert (config);
    char reason [CBUS_REASON_MAX] = "out of memory";
    char *path = NULL, *store = NULL;
    cbus_mempool_t *self = (cbus_mempool_t *) calloc (1, sizeof (cbus_mempool_t));
    if (!self || s_mempool_settings (self, config) || !(self->metrics = cbus_metrics_new ()))
        goto failed;
    path = cbus_config_path (config, "mempool");
    store = cbus_config_endpoint (config, "chainstore");
    if (!path || !store)
        goto failed;
    //  A held lock is waited for a while, as the chainstore does.
    cbus_store_fault_t fault = CBUS_STORE_OK;
    for (int tries = 0; ; tries++) {
        self->pool = cbus_pool_open (path, &fault, reason);
        if (self->pool || fault != CBUS_STORE_LOCKED || tries >= CBUS_SERVICE_LOCK_TRIES)
            break;
        zclock_sleep (CBUS_SERVICE_LOCK_WAIT_MS);
    }
    if (!self->pool)
        cbus_service_fault (fault == CBUS_STORE_OK || cbus_service_transient_store (fault),
                            "%s", reason);
    if (!self->pool
    ||  !(self->router = cbus_service_router (self->endpoint, CBUS_MSG_MAX_BYTES, reason))
    ||  s_mempool_bus (self, reason))
        goto failed;
    cbus_pub_set_metrics (self->pub, self->metrics);
    //  Scraped as 0 before the first submission comes.
    cbus_metric_t zero [] = { CBUS_METRIC_MEMPOOL_TXS_ACCEPTED, CBUS_METRIC_MEMPOOL_COMMIT_BATCH,
        CBUS_METRIC_MEMPOOL_COMMIT_WRITE };
    for (size_t index = 0; index < sizeof (zero) / sizeof (zero [0]); index++)
        cbus_metrics_touch (self->metrics, zero [index], NULL, NULL);
    cbus_pool_set_reserve (self->pool,
                           (uint64_t) cbus_config_int (config, "node/disk_reserve_mb") << 20);
    if (!(self->loop = zloop_new ())) {
        cbus_fail (reason, "cannot make a loop");
        goto failed;
    }
    //  Stop on $TERM from the pipe only, not on a signal: see cbus_service.h.
    zloop_set_nonstop (self->loop, true);
    if (!(self->chainstore = cbus_caller_new (self->loop, store, "chainstore"))) {
        cbus_fail (reason, "cannot connect to %s", store);
        goto failed;
    }
    if (cbus_mempool_intake_start (self) || cbus_mempool_commit_start (self)
    ||  zloop_reader (self->loop, self->sub, cbus_mempool_on_chain_event, self)
    ||  zloop_timer (self->loop, CBUS_MEMPOOL_TICK_MS, 0, s_on_tick, self) == -1) {
        cbus_fail (reason, "cannot start the mempool's threads");
        goto failed;
    }
    //  The tip the pool reflected when this service last ran: if the
    //  chain has left it since, the first resync takes back what left.
    self->tip_stored = cbus_pool_tip (self->pool, self->tip_hash, &self->tip_height) == 0;
    self->resync_wanted = true;
    zstr_free (&path);
    zstr_free (&store);
    return self;
failed:
    //  Out of memory (the reason's first value) is transient; a fault
    //  noted before (store, bind) stands.
    cbus_service_fault (streq (reason, "out of memory"), "%s", reason);
    zstr_free (&path);
    zstr_free (&store);
    cbus_mempool_destroy (&self);
    return NULL;
}

void
cbus_mempool_destroy (cbus_mempool_t **self_p)
{
    assert (self_p);
    cbus_mempool_t *self = *self_p;
    if (!self)
        return;
    self->stopping = true;
    //  Calls in flight are dropped, their handlers never run; then the
    //  loop goes, and the threads end with what they hold.
    cbus_caller_destroy (&self->chainstore);
    cbus_mempool_backup_stop (self);
    zloop_destroy (&self->loop);
    cbus_mempool_intake_stop (self);
    cbus_mempool_commit_stop (self);
    cbus_mempool_mine_stop (self);
    cbus_mempool_chain_stop (self);
    zlistx_destroy (&self->waiters);
    zlistx_destroy (&self->old_tips);
    zlistx_destroy (&self->verified);
    zlistx_destroy (&self->checking);
    zlistx_destroy (&self->checked);
    zlistx_destroy (&self->writing_submits);
    zsock_destroy (&self->router);
    zsock_destroy (&self->sub);
    cbus_pub_destroy (&self->pub);
    cbus_pool_destroy (&self->pool);
    cbus_metrics_destroy (&self->metrics);
    cbus_buf_free (&self->reply);
    cbus_buf_free (&self->event);
    cbus_buf_free (&self->ask);
    cbus_buf_free (&self->work);
    zstr_free (&self->endpoint);
    free (self);
    *self_p = NULL;
}

static void
s_handle_tx_get (cbus_mempool_t *self, cbus_request_t *request)
{
    cbus_pool_tx_get_t msg;
    cbus_pool_tx_reply_t reply;
    char reason [CBUS_REASON_MAX];
    size_t size;
    if (cbus_pool_tx_get_decode (cbus_request_map (request), &msg, reason))
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "TX.GET needs a txid");
    else
    if (!(reply.tx.data = cbus_pool_get (self->pool, msg.txid, &size, &reply.received_ms)))
        cbus_reply_refuse (self->router, request, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND,
                           "Transaction not pending");
    else {
        reply.tx.size = size;
        cbus_reply_send_msg (self->router, request, &cbus_pool_tx_reply_def, &reply, &self->reply);
    }
}

void
cbus_mempool_handle_request (cbus_mempool_t *self, cbus_request_t *request)
{
    const char *command = request->command;
    if (cbus_mempool_pending_handle (self, request))
        return;                     //  TX.PENDING, TXS.HAVE, TXS.GET (cbus_mempool_pending.c)
    if (streq (command, CBUS_CMD_MINE)) {
        cbus_mempool_mine_request (self, request);
        return;                     //  The waiter owns the request now
    }
    if (streq (command, CBUS_CMD_TX_GET))
        s_handle_tx_get (self, request);
    else
    if (streq (command, CBUS_CMD_STORE_BACKUP))
        cbus_mempool_backup_handle (self, request);
    else
    if (streq (command, CBUS_CMD_STORE_BACKUP_CANCEL))
        cbus_mempool_backup_cancel (self, request);
    else
    if (streq (command, CBUS_CMD_MEMPOOL_INFO)) {
        char storage [CBUS_REASON_MAX] = "";
        bool full = false;
        bool writable = cbus_pool_writable (self->pool, &full, storage);
        cbus_mempool_info_reply_t reply = {
            .size = cbus_pool_size (self->pool), .bytes = cbus_pool_bytes (self->pool),
            .next_height = self->tip_height + 1, .has_storage = !writable,
            .storage = cbus_str (storage), .has_storage_code = !writable,
            .storage_code = cbus_str (full ? "no_space" : "storage")
        };
        cbus_reply_send_msg (self->router, request, &cbus_mempool_info_reply_def, &reply,
                             &self->reply);
    }
    else
    if (streq (command, CBUS_CMD_PING))
        cbus_service_pong (self->router, request, "mempool");
    else
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_UNKNOWN_COMMAND,
                           "Unknown command %s", command);
    cbus_request_destroy (&request);
}

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    cbus_mempool_t *self = (cbus_mempool_t *) arg;
    //  The gauges as of this heartbeat, which carries them.
    cbus_metrics_set (self->metrics, CBUS_METRIC_MEMPOOL_TXS, NULL, NULL,
                      (double) cbus_pool_size (self->pool));
    cbus_metrics_set (self->metrics, CBUS_METRIC_MEMPOOL_BYTES, NULL, NULL,
                      (double) cbus_pool_bytes (self->pool));
    cbus_pub_heartbeat (self->pub);
    cbus_mempool_mine_tick (self);
    //  A full disk pauses the pool's store, and room resumes it; a
    //  reopen must not run beside a write.
    if (!self->writing)
        cbus_pool_probe (self->pool);
    //  Catch a tip that moved without us hearing (a missed event).
    cbus_mempool_resync (self);
    return 0;
}

static int
s_on_pipe (zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void) loop;
    cbus_mempool_t *self = (cbus_mempool_t *) arg;
    char *command = zstr_recv (pipe);
    int rc = 0;
    if (!command || streq (command, "$TERM"))
        rc = -1;
    else
    if (streq (command, "STATS"))
        zsock_send (pipe, "8888", self->writes, self->checks, self->pauses,
                    (uint64_t) cbus_pool_size (self->pool));
    zstr_free (&command);
    return rc;
}

void
cbus_mempool_run (cbus_mempool_t *self, zsock_t *pipe)
{
    assert (self);
    self->pipe = pipe;
    if (zloop_reader (self->loop, pipe, s_on_pipe, self)) {
        zsys_error ("mempool: cannot read the actor pipe");
        return;
    }
    cbus_mempool_chain_next (self);
    zsys_info ("mempool ready pending=%zu stored_tip_height=%" PRIu64 " endpoint=%s mining=%s",
               cbus_pool_size (self->pool), self->tip_height, self->endpoint,
               self->continuous ? "continuous" : "on-demand");
    cbus_service_ready (self->loop);
    zloop_start (self->loop);
    zloop_reader_end (self->loop, pipe);
    self->pipe = NULL;
}

void
cbus_mempool_actor (zsock_t *pipe, void *args)
{
    //  Signalled before the pool is loaded (seconds for a large one), as
    //  the launcher and main expect: they wait for FAILED or $TERM.
    zsock_signal (pipe, 0);
    cbus_mempool_t *self = cbus_mempool_new ((cbus_config_t *) args);
    if (!self) {
        cbus_service_fail (pipe, "mempool: not started");
        return;
    }
    cbus_mempool_run (self, pipe);
    cbus_mempool_destroy (&self);
}
