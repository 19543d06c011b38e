/*  =========================================================================
    cbus_gw_tx - the gateway's transaction routes

    POST /transactions/new submits to the mempool; GET /transactions/<txid>
    asks the mempool, then the chainstore; GET /transactions/pending pages
    through the mempool's pending transactions, oldest first; GET /transactions?user=|key=
    pages through the chainstore's history index. docs/api.md has the
    answers.
    =========================================================================
*/
#include "cbus_gw.h"

//  --------------------------------------------------------------------------
//  POST /transactions/new

static void
s_on_tx_submit (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    cbus_tx_submit_reply_t submitted;
    if (cbus_gw_reply_decode (request, call, reply, &cbus_tx_submit_reply_def, &submitted,
                              "a submission reply that does not decode"))
        return;
    bool duplicate = submitted.duplicate, confirmed = submitted.confirmed;
    memcpy (request->key, submitted.txid, CBUS_HASH_BYTES);
    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    if (confirmed) {
        request->status = MHD_HTTP_OK;
        cbus_json_write_message (out, "Transaction is already in the chain");
    }
    else {
        request->status = duplicate ? MHD_HTTP_OK : MHD_HTTP_CREATED;
        char message [64];
        snprintf (message, sizeof (message), "Transaction will be added to Block %" PRIu64,
                  submitted.height);
        cbus_json_write_message (out, message);
    }
    cbus_buf_puts (out, ", \"txid\": ");
    cbus_gw_write_hex (out, request->key);
    if (duplicate || confirmed)
        cbus_buf_puts (out, ", \"duplicate\": true");
    if (confirmed)
        cbus_buf_puts (out, ", \"confirmed\": true");
    cbus_buf_puts (out, "}");
}

//  The body must be JSON (else bad_json) and an object (else bad_json:
//  the wrong shape); what the transaction rules refuse is bad_tx.
static void
s_tx_submit_start (cbus_gw_request_t *request)
{
    char reason [CBUS_REASON_MAX];
    json_t *value = cbus_json_parse (request->body.data, request->body.size, reason);
    cbus_buf_free (&request->body);
    if (!value) {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_BAD_JSON, "%s", reason);
        return;
    }
    cbus_tx_t *tx = cbus_tx_new_from_json (value, cbus_time_us (), reason);
    cbus_code_t code = json_is_object (value) ? CBUS_CODE_BAD_TX : CBUS_CODE_BAD_JSON;
    json_decref (value);
    if (!tx) {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, code, "%s", reason);
        return;
    }
    memcpy (request->key, cbus_tx_id (tx), CBUS_HASH_BYTES);
    cbus_tx_submit_t submit = {0};
    submit.tx.data = cbus_tx_bytes (tx, &submit.tx.size);
    cbus_tx_submit_encode (&submit, cbus_gw_body (request));
    cbus_tx_destroy (&tx);
    cbus_gw_call (request, CBUS_GW_MEMPOOL, CBUS_CMD_TX_SUBMIT, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_tx_submit, NULL);
}

//  --------------------------------------------------------------------------
//  GET /transactions/<txid>: pending in the mempool, else in the chain.

static void
s_on_tx_get_chain (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    if (cbus_gw_reply_is (reply, CBUS_STATUS_NOTFOUND)) {
        //  Not in the chain: the mempool's failure, if it had one, says
        //  more than "not found" does.
        if (request->state)
            cbus_gw_answer_kept (request, (cbus_gw_failure_t *) request->state);
        else
            cbus_gw_answer_error (request, MHD_HTTP_NOT_FOUND, CBUS_CODE_NOT_FOUND,
                                  "Transaction not found");
        return;
    }
    cbus_chain_tx_reply_t found;
    if (cbus_gw_reply_decode (request, call, reply, &cbus_chain_tx_reply_def, &found,
                              "an incomplete transaction record"))
        return;
    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    cbus_buf_printf (out, "{\"status\": \"confirmed\", \"block_height\": %" PRIu64
                     ", \"block_hash\": ", found.height);
    cbus_gw_write_hex (out, found.block_hash);
    cbus_buf_printf (out, ", \"confirmations\": %" PRIu64 ", \"transaction\": ",
                     found.confirmations);
    if (cbus_tx_bytes_to_json (found.tx.data, found.tx.size, out)) {
        cbus_gw_answer_bad_reply (request, call, "a transaction that does not decode", NULL);
        return;
    }
    cbus_buf_puts (out, "}");
    request->status = MHD_HTTP_OK;
}

static void
s_on_tx_get_pool (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    if (cbus_reply_ok (reply)) {
        cbus_pool_tx_reply_t pending;
        char reason [CBUS_REASON_MAX];
        cbus_buf_t *out = &request->out;
        cbus_buf_reset (out);
        if (cbus_pool_tx_reply_decode (cbus_reply_map (reply), &pending, reason)) {
            cbus_gw_answer_bad_reply (request, call, "a transaction that does not decode", reason);
            return;
        }
        cbus_buf_printf (out, "{\"status\": \"pending\", \"received_ms\": %" PRIu64
                         ", \"transaction\": ", pending.received_ms);
        if (cbus_tx_bytes_to_json (pending.tx.data, pending.tx.size, out)) {
            cbus_gw_answer_bad_reply (request, call, "a transaction that does not decode", NULL);
            return;
        }
        cbus_buf_puts (out, "}");
        request->status = MHD_HTTP_OK;
        return;
    }
    //  Not pending (or the mempool cannot say): the chain may know it.
    if (!cbus_gw_reply_is (reply, CBUS_STATUS_NOTFOUND)) {
        cbus_gw_failure_t *failure = (cbus_gw_failure_t *) zmalloc (sizeof (cbus_gw_failure_t));
        cbus_gw_failure_of (call, reply, failure);
        request->state = failure;
        request->state_free = free;
    }
    cbus_chain_tx_get_t get = { .txid = request->key };
    cbus_chain_tx_get_encode (&get, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_CHAINSTORE, CBUS_CMD_TX_GET, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_tx_get_chain, NULL);
}

static void
s_tx_get_start (cbus_gw_request_t *request)
{
    const char *id = request->path + strlen ("/transactions/");
    if (cbus_hex_decode (id, request->key, CBUS_HASH_BYTES)) {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                              "Bad transaction id: expected 64 hex digits");
        return;
    }
    cbus_pool_tx_get_t get = { .txid = request->key };
    cbus_pool_tx_get_encode (&get, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_MEMPOOL, CBUS_CMD_TX_GET, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_tx_get_pool, NULL);
}

//  --------------------------------------------------------------------------
//  GET /transactions?user=NAME or ?key=KEY [&limit=N] [&before=H:I]:
//  confirmed history, newest first, a page at a time from the
//  chainstore's index; "next" is the cursor of the following page.

//  Write one history entry. Returns 0, or -1 if it does not decode (and
//  then the answer is a 502).
static int
s_write_history_item (cbus_gw_request_t *request, const cbus_call_t *call,
                      const cbus_list_t *items, uint32_t index)
{
    cbus_buf_t *out = &request->out;
    cbus_history_item_t item;
    char reason [CBUS_REASON_MAX];
    if (cbus_list_decode_map (items, index, &cbus_history_item_def, &item, reason)) {
        cbus_gw_answer_bad_reply (request, call, "an incomplete history entry", reason);
        return -1;
    }
    cbus_buf_printf (out, "%s{\"block_height\": %" PRIu64 ", \"block_index\": %" PRIu64
                     ", \"confirmations\": %" PRIu64 ", \"block_hash\": ",
                     index == 0 ? "" : ", ", item.height, item.index, item.confirmations);
    cbus_gw_write_hex (out, item.block_hash);
    cbus_buf_puts (out, ", \"transaction\": ");
    if (cbus_tx_bytes_to_json (item.tx.data, item.tx.size, out)) {
        cbus_gw_answer_bad_reply (request, call, "a transaction that does not decode", NULL);
        return -1;
    }
    cbus_buf_puts (out, "}");
    return 0;
}

static void
s_on_history (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    cbus_history_reply_t page;
    if (cbus_gw_reply_decode (request, call, reply, &cbus_history_reply_def, &page,
                              "a history page that does not decode"))
        return;
    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    cbus_buf_puts (out, "{\"transactions\": [");
    for (uint32_t index = 0; index < page.items.count; index++)
        if (s_write_history_item (request, call, &page.items, index))
            return;
    if (page.has_next)
        cbus_buf_printf (out, "], \"next\": \"%" PRIu64 ":%" PRIu64 "\"}",
                         page.next.before_height, page.next.before_index);
    else
        cbus_buf_puts (out, "], \"next\": null}");
    request->status = MHD_HTTP_OK;
}

static void
s_history_start (cbus_gw_request_t *request)
{
    struct MHD_Connection *connection = request->connection;
    const char *user = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "user");
    const char *key = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "key");
    const char *limit_text = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "limit");
    const char *before = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "before");
    if ((user == NULL) == (key == NULL) || !*(user ? user : key)) {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                              "Give one of user=NAME or key=PUBLIC_KEY (GET /transactions/<txid> for one)");
        return;
    }
    const char *name = user ? user : key;
    if (strlen (name) > CBUS_TX_MAX_FIELD_BYTES || !cbus_utf8_valid (name, strlen (name))) {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                              "The user or key is not valid UTF-8 of at most %d bytes",
                              CBUS_TX_MAX_FIELD_BYTES);
        return;
    }
    uint64_t limit = 20, height = 0, index = 0;
    if (limit_text && (cbus_parse_u64 (limit_text, strlen (limit_text), 100, &limit) || limit < 1)) {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                              "limit must be 1 to 100");
        return;
    }
    //  HEIGHT:INDEX, each in range: a height fits 63 bits, an index 32.
    const char *colon = before ? strchr (before, ':') : NULL;
    if (before && (!colon || cbus_parse_u64 (before, (size_t) (colon - before), INT64_MAX, &height)
               ||  cbus_parse_u64 (colon + 1, strlen (colon + 1), UINT32_MAX, &index))) {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                              "before must be the \"next\" cursor of the previous page "
                              "(HEIGHT:INDEX, a height below 2^63 and an index below 2^32)");
        return;
    }
    cbus_history_t history = {
        .user = cbus_str (user), .has_user = user != NULL,
        .key = cbus_str (key), .has_key = key != NULL,
        .limit = limit,
        .before_height = height, .has_before_height = before != NULL,
        .before_index = index, .has_before_index = before != NULL
    };
    cbus_history_encode (&history, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_CHAINSTORE, CBUS_CMD_HISTORY, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_history, NULL);
}

//  --------------------------------------------------------------------------
//  GET /transactions/pending?limit=N&after=CURSOR: pending transactions,
//  oldest first. The mempool's TX.PENDING gives a page of txids and the
//  cursor after it, TXS.GET their bytes: those gone meanwhile (mined)
//  are left out. TXS.GET also stops at its byte budget; then the txids
//  after the last one it gave are asked again, until it gives none.

//  Most transactions a page.
#define S_PENDING_MAX 100

typedef struct {
    uint8_t txids [S_PENDING_MAX][CBUS_HASH_BYTES];  //  The page's txids
    uint32_t count;                 //  How many
    uint32_t given;                 //  Those TXS.GET answered for so far
    uint32_t written;               //  Transactions written into the answer
    uint64_t next;                  //  TX.PENDING's cursor after the page
    bool more;                      //  ... and whether more follow
} s_pending_t;

static const void *
s_pending_txid (const void *source, uint32_t index, size_t *size)
{
    const s_pending_t *pending = (const s_pending_t *) source;
    *size = CBUS_HASH_BYTES;
    return pending->txids [pending->given + index];
}

static void s_on_pending_txs (const cbus_call_t *call, cbus_reply_t *reply);

static void
s_pending_ask (cbus_gw_request_t *request, s_pending_t *pending)
{
    cbus_txs_get_t get = {
        .txids = { .count = pending->count - pending->given, .item = s_pending_txid,
                   .source = pending }
    };
    cbus_txs_get_encode (&get, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_MEMPOOL, CBUS_CMD_TXS_GET, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_pending_txs, NULL);
}

static void
s_pending_end (cbus_gw_request_t *request, const s_pending_t *pending)
{
    if (pending->more)
        cbus_buf_printf (&request->out, "], \"next\": \"%" PRIu64 "\"}", pending->next);
    else
        cbus_buf_puts (&request->out, "], \"next\": null}");
    request->status = MHD_HTTP_OK;
}

//  Where the last transaction TXS.GET gave is in the page (from given),
//  or count when it is none of them.
static uint32_t
s_pending_find (const s_pending_t *pending, cbus_bytes_t tx)
{
    char reason [CBUS_REASON_MAX];
    cbus_tx_t *decoded = cbus_tx_decode (tx.data, tx.size, reason);
    uint32_t index = pending->count;
    if (decoded)
        for (index = pending->given; index < pending->count; index++)
            if (memcmp (pending->txids [index], cbus_tx_id (decoded), CBUS_HASH_BYTES) == 0)
                break;
    cbus_tx_destroy (&decoded);
    return index;
}

static void
s_on_pending_txs (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    s_pending_t *pending = (s_pending_t *) request->state;
    cbus_txs_get_reply_t got;
    if (cbus_gw_reply_decode (request, call, reply, &cbus_txs_get_reply_def, &got,
                              "pending transactions that do not decode"))
        return;
    cbus_buf_t *out = &request->out;
    //  When this node took each one: a list beside txs (a mempool older
    //  than it, or one that gives another count, gives none we trust).
    bool received = got.has_received_ms && got.received_ms.count == got.txs.count;
    for (uint32_t index = 0; index < got.txs.count; index++) {
        cbus_bytes_t tx = cbus_list_bytes (&got.txs, index);
        cbus_buf_puts (out, pending->written++ ? ", " : "");
        cbus_buf_puts (out, "{\"status\": \"pending\", ");
        if (received)
            cbus_buf_printf (out, "\"received_ms\": %" PRIu64 ", ",
                             cbus_list_u64 (&got.received_ms, index));
        cbus_buf_puts (out, "\"transaction\": ");
        if (cbus_tx_bytes_to_json (tx.data, tx.size, out)) {
            cbus_gw_answer_bad_reply (request, call, "a transaction that does not decode", NULL);
            return;
        }
        cbus_buf_puts (out, "}");
    }
    uint32_t asked = pending->count - pending->given;
    if (got.txs.count == 0 || got.txs.count == asked) {
        s_pending_end (request, pending);
        return;
    }
    //  Fewer than asked: mined meanwhile, or past TXS.GET's byte budget.
    uint32_t last = s_pending_find (pending, cbus_list_bytes (&got.txs, got.txs.count - 1));
    if (last + 1 >= pending->count) {
        s_pending_end (request, pending);
        return;
    }
    pending->given = last + 1;
    s_pending_ask (request, pending);
}

static void
s_on_pending (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    s_pending_t *pending = (s_pending_t *) request->state;
    cbus_tx_pending_reply_t page;
    if (cbus_gw_reply_decode (request, call, reply, &cbus_tx_pending_reply_def, &page,
                              "a pending page that does not decode"))
        return;
    //  We asked for at most S_PENDING_MAX: a longer page would make us
    //  skip what lies between its cut and its cursor.
    if (page.txids.count > S_PENDING_MAX) {
        cbus_gw_answer_bad_reply (request, call, "a pending page longer than asked", NULL);
        return;
    }
    pending->count = page.txids.count;
    for (uint32_t index = 0; index < pending->count; index++)
        memcpy (pending->txids [index], cbus_list_hash (&page.txids, index), CBUS_HASH_BYTES);
    pending->next = page.next;
    pending->more = page.more;
    cbus_buf_reset (&request->out);
    cbus_buf_puts (&request->out, "{\"transactions\": [");
    if (pending->count == 0)
        s_pending_end (request, pending);
    else
        s_pending_ask (request, pending);
}

static void
s_pending_start (cbus_gw_request_t *request)
{
    struct MHD_Connection *connection = request->connection;
    const char *limit_text = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "limit");
    const char *after_text = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "after");
    uint64_t limit = 20, after = 0;
    if (limit_text && (cbus_parse_u64 (limit_text, strlen (limit_text), S_PENDING_MAX, &limit)
                       || limit < 1)) {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                              "limit must be 1 to %d", S_PENDING_MAX);
        return;
    }
    if (after_text && cbus_parse_u64 (after_text, strlen (after_text), INT64_MAX, &after)) {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                              "after must be the \"next\" cursor of the previous page "
                              "(decimal digits, below 2^63)");
        return;
    }
    s_pending_t *pending = (s_pending_t *) zmalloc (sizeof (s_pending_t));
    if (!pending) {
        cbus_gw_answer_error (request, MHD_HTTP_INTERNAL_SERVER_ERROR, CBUS_CODE_INTERNAL,
                              "chainbus-gateway ran out of memory");
        return;
    }
    request->state = pending;
    request->state_free = free;
    cbus_tx_pending_t ask = { .after = after, .has_after = after_text != NULL, .max = limit };
    cbus_tx_pending_encode (&ask, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_MEMPOOL, CBUS_CMD_TX_PENDING, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_pending, NULL);
}

const cbus_gw_route_t cbus_gw_tx_routes [] = {
    { "/transactions/new", "POST", true,  false, s_tx_submit_start },
    { "/transactions/pending", "GET", false, false, s_pending_start },
    { "/transactions",     "GET",  false, false, s_history_start },
    { "/transactions/",    "GET",  false, false, s_tx_get_start },
    { NULL }
};
