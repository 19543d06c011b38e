/*  =========================================================================
    cbus_mempool_pending - the pending transactions, listed and fetched

    Three read-only requests on the pool, answered at once on the loop
    thread:

      TX.PENDING {after?, max}   the txids of pending transactions in
                                 arrival order (oldest first), after a
                                 cursor, at most CBUS_MEMPOOL_PENDING_MAX
                                 a page; the reply's next is the cursor of
                                 the page after, more says whether there
                                 is one. peersync's inventory exchange when
                                 nodes link pages through it; so can a
                                 GET /transactions/pending route.
      TXS.HAVE {txids}           for each txid, whether it is pending (or
                                 staged, or being written): what a peer's
                                 inventory holds that we lack.
      TXS.GET {txids, max_bytes?} the bytes of those pending, in the order
                                 asked, at most max_bytes of them (at least
                                 one); those not pending are left out. With
                                 each, when this node first took it
                                 (received_ms, ms since the epoch, a list
                                 beside txs): GET /transactions/pending
                                 shows it.

    Each is bounded: at most CBUS_MEMPOOL_TXIDS_MAX txids a request, and
    TX.PENDING costs O(max) plus finding its place, walked from the end
    of the list nearer to its cursor (the pool keeps pending transactions
    in a list in arrival order; see cbus_pool_list): a page at either end
    costs its length, one in the middle up to half the pool, which is why
    peersync serves a bounded number of pages a second, node-wide.
    =========================================================================
*/
#include "cbus_mempool_private.h"

//  Most txids in one TX.PENDING page, and in one TXS.HAVE or TXS.GET.
#define CBUS_MEMPOOL_PENDING_MAX 1000
#define CBUS_MEMPOOL_TXIDS_MAX   1024
//  Most bytes of transactions in one TXS.GET reply (below the bus's
//  message limit, CBUS_MSG_MAX_BYTES).
#define CBUS_MEMPOOL_TXS_BYTES   (8 * 1024 * 1024)

static void
s_handle_pending (cbus_mempool_t *self, cbus_request_t *request)
{
    cbus_tx_pending_t msg;
    char reason [CBUS_REASON_MAX];
    if (cbus_tx_pending_decode (cbus_request_map (request), &msg, reason)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "%s", reason);
        return;
    }
    size_t max = msg.max < CBUS_MEMPOOL_PENDING_MAX ? (size_t) msg.max : CBUS_MEMPOOL_PENDING_MAX;
    const uint8_t **txids = (const uint8_t **) calloc (max ? max : 1, sizeof (uint8_t *));
    if (!txids) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_ERROR, CBUS_CODE_INTERNAL,
                           "Out of memory");
        return;
    }
    cbus_tx_pending_reply_t reply = {0};
    size_t count = cbus_pool_list (self->pool, msg.has_after ? msg.after : 0, max, txids,
                                   &reply.next, &reply.more);
    reply.txids = (cbus_list_t) {
        .count = (uint32_t) count, .item = cbus_mempool_hash_item, .source = txids
    };
    cbus_reply_send_msg (self->router, request, &cbus_tx_pending_reply_def, &reply, &self->reply);
    free (txids);
}

//  The txids of a TXS.HAVE or TXS.GET, decoded; false after a refusal.
static bool
s_txids_ok (cbus_mempool_t *self, cbus_request_t *request, const cbus_list_t *txids)
{
    if (txids->count <= CBUS_MEMPOOL_TXIDS_MAX)
        return true;
    cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_TOO_LARGE,
                       "%s takes at most %d txids", request->command, CBUS_MEMPOOL_TXIDS_MAX);
    return false;
}

static void
s_handle_have (cbus_mempool_t *self, cbus_request_t *request)
{
    cbus_txs_have_t msg;
    char reason [CBUS_REASON_MAX];
    if (cbus_txs_have_decode (cbus_request_map (request), &msg, reason)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "%s", reason);
        return;
    }
    if (!s_txids_ok (self, request, &msg.txids))
        return;
    bool have [CBUS_MEMPOOL_TXIDS_MAX];
    for (uint32_t index = 0; index < msg.txids.count; index++)
        have [index] = cbus_pool_has (self->pool, cbus_list_hash (&msg.txids, index));
    cbus_txs_have_reply_t reply = { .have = { .count = msg.txids.count, .items = have } };
    cbus_reply_send_msg (self->router, request, &cbus_txs_have_reply_def, &reply, &self->reply);
}

static void
s_handle_get (cbus_mempool_t *self, cbus_request_t *request)
{
    cbus_txs_get_t msg;
    char reason [CBUS_REASON_MAX];
    if (cbus_txs_get_decode (cbus_request_map (request), &msg, reason)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "%s", reason);
        return;
    }
    if (!s_txids_ok (self, request, &msg.txids))
        return;
    uint64_t limit = msg.has_max_bytes && msg.max_bytes < CBUS_MEMPOOL_TXS_BYTES
                   ? msg.max_bytes : CBUS_MEMPOOL_TXS_BYTES;
    size_t slots = msg.txids.count ? msg.txids.count : 1;
    cbus_bytes_t *txs = (cbus_bytes_t *) calloc (slots, sizeof (cbus_bytes_t));
    uint64_t *received = (uint64_t *) calloc (slots, sizeof (uint64_t));
    if (!txs || !received) {
        free (txs);
        free (received);
        cbus_reply_refuse (self->router, request, CBUS_STATUS_ERROR, CBUS_CODE_INTERNAL,
                           "Out of memory");
        return;
    }
    uint32_t count = 0;
    uint64_t bytes = 0;
    for (uint32_t index = 0; index < msg.txids.count; index++) {
        size_t size;
        uint64_t received_ms;
        const uint8_t *data = cbus_pool_get (self->pool, cbus_list_hash (&msg.txids, index),
                                             &size, &received_ms);
        if (!data)
            continue;               //  Mined or dropped meanwhile
        if (count > 0 && bytes + size > limit)
            break;
        received [count] = received_ms;
        txs [count++] = (cbus_bytes_t) { data, size };
        bytes += size;
    }
    cbus_txs_get_reply_t reply = {
        .txs = { .count = count, .items = txs },
        .received_ms = { .count = count, .items = received }, .has_received_ms = true
    };
    cbus_reply_send_msg (self->router, request, &cbus_txs_get_reply_def, &reply, &self->reply);
    free (txs);
    free (received);
}

bool
cbus_mempool_pending_handle (cbus_mempool_t *self, cbus_request_t *request)
{
    const char *command = request->command;
    if (streq (command, CBUS_CMD_TX_PENDING))
        s_handle_pending (self, request);
    else
    if (streq (command, CBUS_CMD_TXS_HAVE))
        s_handle_have (self, request);
    else
    if (streq (command, CBUS_CMD_TXS_GET))
        s_handle_get (self, request);
    else
        return false;
    cbus_request_destroy (&request);
    return true;
}
