/*  =========================================================================
    cbus_peersync_pending - pending transactions when nodes link

    Gossip carries a transaction once, when it is accepted: a node that was
    down, or not linked yet, never hears of what its peers took meanwhile,
    until a block holds it. So when a link comes up (the peer's HELLO, a
    first link or after either end restarted), each end asks the other for
    its inventory, as Bitcoin's mempool / inv / getdata do:

      us                                     the peer
      MEMPOOL {after: 0}            ->
                                    <-       INV {txids (oldest first, at
                                             most 1000), next, more}
      TXS.HAVE to our mempool: which do we lack?
      GETTXS {txids we lack, at most 256, at most the room the peer's
              transaction budget has}  ->
                                    <-       TXS {txs}
      each to our mempool as a relayed transaction (budget, verdict, score)
      ... more GETTXS as verdicts free the window, then
      MEMPOOL {after: next}         ->       while more, up to pending_max

    One exchange per node at a time (two links to one node share it), one
    request of each kind outstanding, a page's missing txids kept (32 KB
    at most), nothing else: a peer cannot make us hold its inventory. Our
    serving side keeps each peer to one page listing and one fetch at our
    mempool at a time, one page per PEERSYNC_INV_EVERY_MS (and the node
    to PEERSYNC_INV_NODE_PAGES pages per PEERSYNC_INV_EVERY_MS for all,
    oldest ask first), answers of at most peersync/peer_serve_bytes, and
    drops an answer its link does not take (it asks again after its
    deadline, PEERSYNC_SYNC_TIMEOUT_MS).

    A TXS may hold fewer than asked (the byte cap; those the peer no longer
    has): the next GETTXS starts after the last one it holds. An exchange
    waiting PEERSYNC_CATCHUP_WAIT_MS for us to catch up is paused (it holds
    no node's turn) and resumes from its cursor once we have.
    =========================================================================
*/
#include "cbus_peersync_private.h"

//  Deadline of our mempool's answers (lookups, no disk).
#define S_POOL_TIMEOUT_MS 5000

//  --------------------------------------------------------------------------
//  Taking the peer's

//  Stops the exchange; a paused one keeps its cursor to resume from.
static void
s_stop (peersync_t *self, peersync_peer_t *peer, const char *what, const char *why)
{
    peersync_pending_t *pending = &peer->pending;
    if (!pending->running)
        return;
    zsys_info ("pending exchange %s peer=%s announced=%" PRIu64 " lacked=%" PRIu64
               " received=%" PRIu64 " ms=%" PRId64 " why=\"%s\"", what,
               peersync_peer_name (peer), pending->announced, pending->fetched,
               pending->received, cbus_mono_ms () - pending->started, why);
    pending->running = false;
    pending->waiting = PENDING_IDLE;
    if (pending->at_pool)
        //  Its answer is for this exchange only.
        cbus_caller_cancel (self->budget.mempool, pending->have_call);
    pending->at_pool = false;
    pending->wait_since = 0;
    free (pending->queue);
    pending->queue = NULL;
    pending->queue_size = pending->queue_next = pending->asked = 0;
}

static void
s_end (peersync_t *self, peersync_peer_t *peer, const char *why)
{
    s_stop (self, peer, "ended", why);
    peer->pending.paused = false;
}

static void
s_ask_page (peersync_t *self, peersync_peer_t *peer)
{
    peersync_pending_t *pending = &peer->pending;
    peersync_mempool_pack (pending->cursor, &self->message);
    peersync_send (self, peer, CBUS_P2P_MEMPOOL, &self->message);
    pending->waiting = PENDING_INV;
    pending->deadline = cbus_mono_ms () + PEERSYNC_SYNC_TIMEOUT_MS;
}

//  Whether another link to the same node exchanges already (once is
//  enough). Leaves the list's cursor on peer, for a walk in progress.
static bool
s_other_runs (peersync_t *self, peersync_peer_t *peer)
{
    bool runs = false;
    PEERSYNC_EACH (self, other)
        if (other != peer && other->pending.running && streq (other->node_id, peer->node_id))
            runs = true;
    PEERSYNC_EACH (self, other)
        if (other == peer)
            break;
    return runs;
}

void
peersync_pending_start (peersync_t *self, peersync_peer_t *peer)
{
    //  A link that went down and up again before our tick noticed starts over.
    s_end (self, peer, "the link came up again");
    peer->pending.paused = false;
    if (self->budget.pending_max == 0)
        return;
    if (s_other_runs (self, peer))
        return;
    peersync_pending_t *pending = &peer->pending;
    pending->running = true;
    pending->cursor = 0;
    pending->more = true;           //  The first page is still to ask for
    pending->announced = pending->fetched = pending->received = 0;
    pending->started = cbus_mono_ms ();
    peersync_pending_pump (self, peer);
}

//  Whether we are catching up: a sync runs, or the peer has more work.
//  Pages wait until we are not (as Bitcoin Core takes no transactions in
//  its initial block download): what the blocks we lack confirm would be
//  fetched and checked for nothing, and our chainstore is busy.
static bool
s_catching_up (peersync_t *self, peersync_peer_t *peer)
{
    return self->sync.peer || cbus_u256_cmp (peer->work, self->chain.work) > 0;
}

void
peersync_pending_pump (peersync_t *self, peersync_peer_t *peer)
{
    peersync_pending_t *pending = &peer->pending;
    if (!pending->running || pending->waiting != PENDING_IDLE || pending->at_pool
    ||  peer->state != P_LINKED)
        return;
    if (pending->queue_next < pending->queue_size) {
        //  No more than its budget would take now: the rest would be
        //  dropped on arrival.
        size_t room = peersync_tx_room (self, peer);
        size_t left = pending->queue_size - pending->queue_next;
        size_t count = left < room ? left : room;
        if (count > PEERSYNC_GETTXS_MAX)
            count = PEERSYNC_GETTXS_MAX;
        if (count == 0)
            return;                 //  Verdicts or the clock give room back
        peersync_gettxs_pack ((const uint8_t (*) [CBUS_HASH_BYTES])
                              (pending->queue + pending->queue_next), count, &self->message);
        peersync_send (self, peer, CBUS_P2P_GETTXS, &self->message);
        pending->asked = count;     //  queue_next moves as they are answered
        pending->waiting = PENDING_TXS;
        pending->deadline = cbus_mono_ms () + PEERSYNC_SYNC_TIMEOUT_MS;
    }
    else
    if (pending->more && pending->announced < self->budget.pending_max) {
        int64_t now = cbus_mono_ms ();
        if (!s_catching_up (self, peer)) {
            pending->wait_since = 0;
            s_ask_page (self, peer);
        }
        else
        if (!pending->wait_since)
            pending->wait_since = now;  //  The tick asks again later
        else
        if (now - pending->wait_since >= PEERSYNC_CATCHUP_WAIT_MS) {
            //  A sync that does not end, or a peer announcing work it
            //  never gives, must not hold the node's one exchange: it
            //  resumes from its cursor once we have caught up.
            s_stop (self, peer, "paused", "catching up");
            pending->paused = true;
        }
    }
    else
    if (pending->more)
        s_end (self, peer, "bounded: peersync/pending_max reached, the rest left to blocks");
    else
        s_end (self, peer, "done");
}

//  Our mempool says which of a page's txids it holds; the others are
//  queued to be fetched.
static void
s_on_have (const cbus_call_t *call, cbus_reply_t *reply)
{
    peersync_t *self = (peersync_t *) call->owner;
    peersync_peer_t *peer = peersync_peer_by_serial (self, (uint64_t) (uintptr_t) call->arg);
    //  Only the answer to our last ask: an older one (an exchange since
    //  ended, or an earlier page) would be applied to another queue.
    if (!peer || !peer->pending.at_pool || call->id != peer->pending.have_call)
        return;
    peersync_pending_t *pending = &peer->pending;
    pending->at_pool = false;
    cbus_txs_have_reply_t have;
    char reason [CBUS_REASON_MAX];
    if (!cbus_reply_ok (reply)
    ||  cbus_txs_have_reply_decode (cbus_reply_map (reply), &have, reason)
    ||  have.have.count != pending->queue_size) {
        s_end (self, peer, cbus_reply_ok (reply) ? "our mempool's TXS.HAVE does not decode"
                                                 : reply->reason);
        return;
    }
    size_t kept = 0;
    for (uint32_t index = 0; index < have.have.count; index++)
        if (!cbus_list_bool (&have.have, index)) {
            if (kept != index)
                memcpy (pending->queue [kept], pending->queue [index], CBUS_HASH_BYTES);
            kept++;
        }
    pending->queue_size = kept;
    pending->queue_next = 0;
    pending->fetched += kept;
    peersync_pending_pump (self, peer);
}

static void
s_on_inv (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map)
{
    peersync_pending_t *pending = &peer->pending;
    const msgpack_object *txids;
    uint64_t next;
    bool more;
    if (peersync_inv_parse (map, &txids, &next, &more)) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "malformed INV");
        s_end (self, peer, "malformed INV");
        return;
    }
    if (!pending->running || pending->waiting != PENDING_INV) {
        CBUS_DEBUG ("peer=%s sent an INV we did not ask for", peersync_peer_name (peer));
        return;
    }
    //  At most pending_max announced in all: the oldest first.
    uint64_t room = self->budget.pending_max - pending->announced;
    uint32_t count = txids->via.array.size;
    more = more && count > 0;       //  An empty page ends it, whatever it says
    if (count > room) {
        count = (uint32_t) room;
        more = true;
    }
    pending->waiting = PENDING_IDLE;
    pending->cursor = next;
    pending->more = more;
    pending->announced += count;
    free (pending->queue);
    pending->queue = count ? (uint8_t (*) [CBUS_HASH_BYTES]) malloc (count * CBUS_HASH_BYTES) : NULL;
    pending->queue_size = pending->queue_next = 0;
    if (count && !pending->queue) {
        s_end (self, peer, "out of memory");
        return;
    }
    for (uint32_t index = 0; index < count; index++)
        memcpy (pending->queue [index], txids->via.array.ptr [index].via.bin.ptr, CBUS_HASH_BYTES);
    pending->queue_size = count;
    if (count == 0) {
        peersync_pending_pump (self, peer);
        return;
    }
    cbus_txs_have_t ask = { .txids = { .count = count, .items = pending->queue } };
    cbus_txs_have_encode (&ask, &self->message);
    pending->at_pool = true;
    pending->have_call = cbus_caller_send (self->budget.mempool, CBUS_CMD_TXS_HAVE, self->message.data,
                      self->message.size, S_POOL_TIMEOUT_MS, s_on_have, self,
                      (void *) (uintptr_t) peer->serial);
}

//  How many of the txids asked were answered: up to the last transaction
//  the answer holds. The peer answers in the order asked, leaves out those
//  it no longer has, and stops at its byte cap (peersync/peer_serve_bytes:
//  a few large transactions fill it), so those after the last one it sent
//  are asked again. An empty answer means none of them is there: the
//  whole ask is done. Each ask answered so moves on by one at least.
static size_t
s_answered (peersync_pending_t *pending, const msgpack_object *txs)
{
    uint32_t size = txs->via.array.size;
    if (size == 0)
        return pending->asked;
    const msgpack_object *last = &txs->via.array.ptr [size - 1];
    char reason [CBUS_REASON_MAX];
    cbus_tx_t *tx = last->type == MSGPACK_OBJECT_BIN
                  ? cbus_tx_decode (last->via.bin.ptr, last->via.bin.size, reason) : NULL;
    size_t answered = pending->asked;   //  Not one we asked for: all done
    for (size_t index = 0; tx && index < pending->asked; index++)
        if (memcmp (pending->queue [pending->queue_next + index], cbus_tx_id (tx),
                    CBUS_HASH_BYTES) == 0) {
            answered = index + 1;
            break;
        }
    cbus_tx_destroy (&tx);
    return answered;
}

static void
s_on_txs (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map)
{
    peersync_pending_t *pending = &peer->pending;
    const msgpack_object *txs = peersync_tx_parse (map);
    if (!txs) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "malformed TXS");
        s_end (self, peer, "malformed TXS");
        return;
    }
    if (!pending->running || pending->waiting != PENDING_TXS) {
        CBUS_DEBUG ("peer=%s sent a TXS we did not ask for", peersync_peer_name (peer));
        return;
    }
    pending->waiting = PENDING_IDLE;
    pending->queue_next += s_answered (pending, txs);
    pending->asked = 0;
    pending->received += txs->via.array.size;
    //  As relayed transactions: its budget, our mempool's verdict, its score.
    peersync_txs_take (self, peer, txs);
    peersync_pending_pump (self, peer);
}

//  --------------------------------------------------------------------------
//  Serving the peer's asks

static void
s_on_listed (const cbus_call_t *call, cbus_reply_t *reply)
{
    peersync_t *self = (peersync_t *) call->owner;
    peersync_peer_t *peer = peersync_peer_by_serial (self, (uint64_t) (uintptr_t) call->arg);
    if (!peer)
        return;
    peer->pending.inv_at_pool = false;
    cbus_tx_pending_reply_t listed;
    char reason [CBUS_REASON_MAX];
    if (!cbus_reply_ok (reply)
    ||  cbus_tx_pending_reply_decode (cbus_reply_map (reply), &listed, reason)) {
        CBUS_DEBUG ("a peer's MEMPOOL not answered: %s",
                    cbus_reply_ok (reply) ? reason : reply->reason);
        return;
    }
    if (peer->state != P_LINKED)
        return;
    //  The same bytes the reply held; a full link drops it (the peer's
    //  deadline asks again).
    peersync_inv_pack (&listed.txids, listed.next, listed.more, &self->message);
    peersync_send (self, peer, CBUS_P2P_INV, &self->message);
}

static void
s_serve_page (peersync_t *self, peersync_peer_t *peer, int64_t now)
{
    peersync_pending_t *pending = &peer->pending;
    pending->inv_wanted = false;
    pending->inv_at_pool = true;
    pending->inv_next = now + PEERSYNC_INV_EVERY_MS;
    cbus_tx_pending_t ask = {
        .after = pending->inv_after, .has_after = true, .max = PEERSYNC_INV_MAX
    };
    cbus_tx_pending_encode (&ask, &self->message);
    cbus_caller_send (self->budget.mempool, CBUS_CMD_TX_PENDING, self->message.data,
                      self->message.size, S_POOL_TIMEOUT_MS, s_on_listed, self,
                      (void *) (uintptr_t) peer->serial);
}

//  Pages due, within the node's budget, the longest waiting first.
static void
s_serve_pages (peersync_t *self, int64_t now)
{
    peersync_budget_t *budget = &self->budget;
    if (now >= budget->inv_window_end) {
        budget->inv_window_end = now + PEERSYNC_INV_EVERY_MS;
        budget->inv_pages = 0;
    }
    while (budget->inv_pages < PEERSYNC_INV_NODE_PAGES) {
        peersync_peer_t *oldest = NULL;
        PEERSYNC_EACH (self, peer) {
            peersync_pending_t *pending = &peer->pending;
            if (pending->inv_wanted && !pending->inv_at_pool && now >= pending->inv_next
            &&  peer->state == P_LINKED
            &&  (!oldest || pending->inv_since < oldest->pending.inv_since))
                oldest = peer;
        }
        if (!oldest)
            return;
        budget->inv_pages++;
        s_serve_page (self, oldest, now);
    }
}

static void
s_on_mempool (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map)
{
    uint64_t after;
    if (peersync_mempool_parse (map, &after)) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "malformed MEMPOOL");
        return;
    }
    //  Kept as its cursor (the latest wins), served in its turn.
    int64_t now = cbus_mono_ms ();
    if (!peer->pending.inv_wanted)
        peer->pending.inv_since = now;
    peer->pending.inv_wanted = true;
    peer->pending.inv_after = after;
    s_serve_pages (self, now);
}

static void
s_on_fetched (const cbus_call_t *call, cbus_reply_t *reply)
{
    peersync_t *self = (peersync_t *) call->owner;
    peersync_peer_t *peer = peersync_peer_by_serial (self, (uint64_t) (uintptr_t) call->arg);
    if (!peer)
        return;
    peer->pending.txs_at_pool = false;
    cbus_txs_get_reply_t fetched;
    char reason [CBUS_REASON_MAX];
    if (!cbus_reply_ok (reply)
    ||  cbus_txs_get_reply_decode (cbus_reply_map (reply), &fetched, reason)) {
        CBUS_DEBUG ("a peer's GETTXS not answered: %s",
                    cbus_reply_ok (reply) ? reason : reply->reason);
        return;
    }
    if (peer->state != P_LINKED)
        return;
    peersync_txs_pack (&fetched.txs, &self->message);
    peersync_send (self, peer, CBUS_P2P_TXS, &self->message);
}

static void
s_on_gettxs (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map)
{
    const msgpack_object *txids = peersync_gettxs_parse (map);
    if (!txids) {
        peersync_punish (self, peer, PEERSYNC_MALFORMED_COST, "malformed GETTXS");
        return;
    }
    if (peer->pending.txs_at_pool) {
        //  An honest peer asks once its last was answered.
        CBUS_DEBUG ("peer=%s asks for transactions faster than we answer",
                    peersync_peer_name (peer));
        return;
    }
    cbus_txs_get_t ask = {
        .txids = peersync_hash_list (txids),
        .max_bytes = self->budget.serve_bytes, .has_max_bytes = true
    };
    cbus_txs_get_encode (&ask, &self->message);
    peer->pending.txs_at_pool = true;
    cbus_caller_send (self->budget.mempool, CBUS_CMD_TXS_GET, self->message.data,
                      self->message.size, S_POOL_TIMEOUT_MS, s_on_fetched, self,
                      (void *) (uintptr_t) peer->serial);
}

//  --------------------------------------------------------------------------
//  Dispatch, time, clean-up

bool
peersync_pending_message (peersync_t *self, peersync_peer_t *peer, const char *command,
                          const msgpack_object *map)
{
    if (streq (command, CBUS_P2P_MEMPOOL))
        s_on_mempool (self, peer, map);
    else
    if (streq (command, CBUS_P2P_INV))
        s_on_inv (self, peer, map);
    else
    if (streq (command, CBUS_P2P_GETTXS))
        s_on_gettxs (self, peer, map);
    else
    if (streq (command, CBUS_P2P_TXS))
        s_on_txs (self, peer, map);
    else
        return false;
    return true;
}

void
peersync_pending_tick (peersync_t *self, int64_t now)
{
    PEERSYNC_EACH (self, peer) {
        peersync_pending_t *pending = &peer->pending;
        if (peer->state != P_LINKED) {
            s_end (self, peer, "link down");
            pending->paused = false;
            pending->inv_wanted = false;
            continue;
        }
        if (pending->paused && !s_catching_up (self, peer)) {
            //  Caught up: on from its cursor, unless another link to
            //  the same node exchanges meanwhile.
            pending->paused = false;
            if (!s_other_runs (self, peer)) {
                pending->running = true;
                CBUS_DEBUG ("pending exchange resumed peer=%s", peersync_peer_name (peer));
            }
        }
        if (!pending->running)
            continue;
        if (pending->waiting != PENDING_IDLE && now >= pending->deadline)
            //  Its mempool may be slow: no cost, the next link tries again.
            s_end (self, peer, pending->waiting == PENDING_INV ? "no INV in time"
                                                               : "no TXS in time");
        else
            peersync_pending_pump (self, peer);
    }
    s_serve_pages (self, now);
}

void
peersync_pending_clear (peersync_peer_t *peer)
{
    free (peer->pending.queue);
    peer->pending.queue = NULL;
    peer->pending.running = false;
}
