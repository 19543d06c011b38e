/*  =========================================================================
    cbus_gw_chain - the gateway's chain and block routes

    GET /chain streams the active chain; GET /blocks/<height or hash> shows
    one block; GET /blocks lists block summaries, newest first, and GET
    /blocks/<id>/transactions shows a page of one block; GET /mine asks the mempool for a block and shows it once it
    is connected. docs/api.md has the answers.

    Streams (GET /chain, and GET /nodes/resolve after peersync answered)
    answer 200 with a chunked body produced by cbus_gw_stream_read: when
    its buffer is empty it asks the chainstore for the next page, suspends
    and returns 0; the page's reply fills the buffer and resumes. Memory
    per stream is one page. The buffer is a cbus_gw_drain_t, as GET
    /events' are.
    =========================================================================
*/
#include "cbus_gw.h"
#include "cbus_gw_drain.h"

//  Bytes of blocks asked for per page of a streamed chain.
#define S_PAGE_BYTES        (256 * 1024)
//  A stream buffer grown past this is freed between pages.
#define S_STREAM_KEEP       (1024 * 1024)

//  A chain being streamed as the body of a 200 answer.
struct _cbus_gw_stream_t {
    cbus_gw_drain_t out;            //  JSON not yet handed to MHD
    uint64_t next;                  //  Height of the next block to send
    uint64_t to;                    //  Last height sent (the pinned tip)
    uint8_t last_hash [CBUS_HASH_BYTES];  //  Hash of block next - 1
    bool ended;                     //  Closing text is in the buffer
    bool failed;                    //  A page failed: end with an error
};

//  --------------------------------------------------------------------------
//  Streams

cbus_buf_t *
cbus_gw_stream_new (cbus_gw_request_t *request)
{
    assert (!request->stream);
    request->stream = (cbus_gw_stream_t *) zmalloc (sizeof (cbus_gw_stream_t));
    return &request->stream->out.text;
}

void
cbus_gw_stream_destroy (cbus_gw_stream_t **self_p)
{
    cbus_gw_stream_t *self = *self_p;
    if (self) {
        cbus_gw_drain_free (&self->out);
        free (self);
        *self_p = NULL;
    }
}

static void
s_stream_fail (cbus_gw_request_t *request, const char *reason)
{
    char path [128];
    cbus_gw_log_safe (request->path, path, sizeof (path));
    zsys_warning ("http stream ended early path=%s height=%" PRIu64 " reason=\"%s\"",
                  path, request->stream->next, reason);
    request->stream->failed = true;
}

//  A page of blocks arrived: append them as JSON. Checks that the blocks
//  follow one another, so that a reorganisation during the stream ends
//  it with an error rather than sending something that is not a chain.
static void
s_on_stream_page (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    cbus_gw_stream_t *stream = request->stream;
    if (!cbus_reply_ok (reply)) {
        cbus_gw_failure_t failure;
        cbus_gw_failure_of (call, reply, &failure);
        s_stream_fail (request, failure.message);
        return;
    }
    cbus_chain_page_reply_t page;
    char reason [CBUS_REASON_MAX];
    if (cbus_chain_page_reply_decode (cbus_reply_map (reply), &page, reason)) {
        char text [CBUS_REASON_MAX + 64];
        snprintf (text, sizeof (text), "chainbus-chainstore sent a page that does not decode: %s",
                  reason);
        s_stream_fail (request, text);
        return;
    }
    if (page.blocks.count == 0) {
        s_stream_fail (request, "chainbus-chainstore sent a page without blocks");
        return;
    }
    for (uint32_t index = 0; index < page.blocks.count && stream->next <= stream->to; index++) {
        cbus_bytes_t block = cbus_list_bytes (&page.blocks, index);
        cbus_header_t header;
        if (cbus_block_header_from_bytes (block.data, block.size, &header)) {
            s_stream_fail (request, "chainbus-chainstore sent a block that does not decode");
            return;
        }
        if (header.height != stream->next
        || (stream->next > 0 && memcmp (header.prev_hash, stream->last_hash, CBUS_HASH_BYTES))) {
            s_stream_fail (request, "the active chain changed while it was being sent");
            return;
        }
        if (stream->next > 0)
            cbus_buf_puts (&stream->out.text, ", ");
        if (cbus_block_bytes_to_json (block.data, block.size, &stream->out.text)) {
            s_stream_fail (request, "chainbus-chainstore sent a block that does not decode");
            return;
        }
        cbus_header_hash (&header, stream->last_hash);
        stream->next++;
    }
}

ssize_t
cbus_gw_stream_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) cls;
    cbus_gw_stream_t *stream = request->stream;
    cbus_gw_request_sent (request, pos);
    while (true) {
        size_t size = cbus_gw_drain_take (&stream->out, buf, max, S_STREAM_KEEP);
        if (size > 0)
            return (ssize_t) size;
        if (stream->failed)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (stream->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (stream->next <= stream->to) {
            cbus_chain_page_t page = {
                .from = stream->next, .to = stream->to, .max_bytes = S_PAGE_BYTES
            };
            cbus_chain_page_encode (&page, cbus_gw_body (request));
            cbus_gw_call (request, CBUS_GW_CHAINSTORE, CBUS_CMD_CHAIN_PAGE, cbus_gw_body (request),
                          request->gateway->request_timeout_ms, s_on_stream_page, NULL);
            if (request->outstanding) {
                cbus_gw_request_suspend (request);
                return 0;
            }
        }
        else {
            cbus_buf_printf (&stream->out.text, "], \"length\": %" PRIu64 "}", stream->to + 1);
            stream->ended = true;
        }
    }
}

//  The tip is known: the answer is a 200 stream up to it.
static void
s_on_stream_tip (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    cbus_tip_reply_t tip;
    int rc = cbus_gw_reply_decode (request, call, reply, &cbus_tip_reply_def, &tip,
                                   "a tip that does not decode");
    //  A store known damaged would break the stream off at the block it
    //  cannot read: say so before the 200 instead.
    if (rc == 0 && tip.has_damaged) {
        char text [CBUS_REASON_MAX], damaged [CBUS_REASON_MAX];
        size_t size = tip.damaged.size < sizeof (text) - 1 ? tip.damaged.size : sizeof (text) - 1;
        memcpy (text, tip.damaged.data, size);
        text [size] = 0;
        cbus_gw_log_safe (text, damaged, sizeof (damaged));
        cbus_gw_answer_error (request, MHD_HTTP_INTERNAL_SERVER_ERROR, CBUS_CODE_DAMAGED,
                              "The chain store is damaged, the chain cannot be read whole: %s",
                              damaged);
        rc = -1;
    }
    if (rc == 0) {
        request->stream->next = 0;
        request->stream->to = tip.height;
        request->status = MHD_HTTP_OK;
        return;
    }
    cbus_gw_stream_destroy (&request->stream);
}

void
cbus_gw_stream_start (cbus_gw_request_t *request)
{
    cbus_tip_t tip = {0};
    cbus_tip_encode (&tip, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_CHAINSTORE, CBUS_CMD_TIP, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_stream_tip, NULL);
}

//  GET /chain: pin the tip, then stream.
static void
s_chain_start (cbus_gw_request_t *request)
{
    cbus_buf_puts (cbus_gw_stream_new (request), "{\"chain\": [");
    cbus_gw_stream_start (request);
}

//  --------------------------------------------------------------------------
//  Blocks

//  Write the block of a BLOCK.GET reply into out with extra members
//  first ("message") or last ("confirmations", "in_active_chain"). -1 if
//  its bytes do not decode.
static int
s_write_block (cbus_buf_t *out, const cbus_block_get_reply_t *found, const char *message,
               bool confirmations)
{
    cbus_buf_t json = {0};
    int rc = cbus_block_bytes_to_json (found->block.data, found->block.size, &json);
    //  The block's object is {"index": ...}: splice members in.
    if (rc == 0 && json.size >= 2 && json.data [0] == '{' && json.data [json.size - 1] == '}') {
        cbus_buf_reset (out);
        if (message) {
            cbus_json_write_message (out, message);
            cbus_buf_puts (out, ", ");
            cbus_buf_append (out, json.data + 1, json.size - 1);
        }
        else
            cbus_buf_append (out, json.data, json.size);
        if (confirmations) {
            out->size--;
            cbus_buf_printf (out, ", \"confirmations\": %" PRIu64 ", \"in_active_chain\": %s}",
                             found->confirmations, found->in_active_chain ? "true" : "false");
        }
    }
    else
        rc = -1;
    cbus_buf_free (&json);
    return rc;
}

//  A BLOCK.GET reply: the block with message first, or with its
//  confirmations last.
static void
s_answer_block (const cbus_call_t *call, cbus_reply_t *reply, const char *message,
                bool confirmations)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    cbus_block_get_reply_t found;
    if (cbus_gw_reply_decode (request, call, reply, &cbus_block_get_reply_def, &found,
                              "a block that does not decode"))
        return;
    if (s_write_block (&request->out, &found, message, confirmations))
        cbus_gw_answer_bad_reply (request, call, "a block that does not decode", NULL);
    else
        request->status = MHD_HTTP_OK;
}

static void
s_on_block_get (const cbus_call_t *call, cbus_reply_t *reply)
{
    if (cbus_gw_reply_is (reply, CBUS_STATUS_NOTFOUND))
        cbus_gw_answer_error ((cbus_gw_request_t *) call->owner, MHD_HTTP_NOT_FOUND,
                              CBUS_CODE_NOT_FOUND, "Block not found");
    else
        s_answer_block (call, reply, NULL, true);
}

//  A block id of a path (length bytes at id): a 64-digit hex hash or a
//  decimal height, into get's fields. 0, or -1 once answered 400.
static int
s_block_id (cbus_gw_request_t *request, const char *id, size_t length, cbus_block_get_t *get,
            uint8_t hash [CBUS_HASH_BYTES])
{
    char text [2 * CBUS_HASH_BYTES + 1];
    if (length == 2 * CBUS_HASH_BYTES) {
        memcpy (text, id, length);
        text [length] = 0;
    }
    if (length == 2 * CBUS_HASH_BYTES && cbus_hex_decode (text, hash, CBUS_HASH_BYTES) == 0) {
        get->hash = hash;
        get->has_hash = true;
        return 0;
    }
    if (length > 0 && length <= 20 && strspn (id, "0123456789") >= length) {
        uint64_t height = 0;
        if (cbus_parse_u64 (id, length, UINT64_MAX, &height)) {
            cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                                  "Bad block height: too large");
            return -1;
        }
        get->height = height;
        get->has_height = true;
        return 0;
    }
    cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                          "Bad block id: expected a height or a 64-digit hex hash");
    return -1;
}

//  GET /blocks/<height or hash>
static void
s_block_get_start (cbus_gw_request_t *request)
{
    const char *id = request->path + strlen ("/blocks/");
    cbus_block_get_t get = {0};
    uint8_t hash [CBUS_HASH_BYTES];
    if (s_block_id (request, id, strlen (id), &get, hash))
        return;
    cbus_block_get_encode (&get, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_CHAINSTORE, CBUS_CMD_BLOCK_GET, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_block_get, NULL);
}

//  --------------------------------------------------------------------------
//  GET /blocks?limit=N&before=H and GET /blocks/<id>/transactions?start=I&limit=N:
//  block summaries (BLOCK.LIST) and a slice of a block (BLOCK.TXS), so
//  that neither reads whole blocks over the bus.

//  A query number: 0 with value (dflt when absent), or -1 once answered
//  400 with message when it is not decimal digits from min to max.
static int
s_query_number (cbus_gw_request_t *request, const char *name, uint64_t min, uint64_t max,
                uint64_t dflt, uint64_t *value, const char *message)
{
    const char *text = MHD_lookup_connection_value (request->connection, MHD_GET_ARGUMENT_KIND,
                                                    name);
    *value = dflt;
    if (!text)
        return 0;
    if (cbus_parse_u64 (text, strlen (text), max, value) == 0 && *value >= min)
        return 0;
    cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID, "%s", message);
    return -1;
}

//  A block summary as JSON: the object of GET /blocks/<id> without
//  "transactions", with "transaction_count", "size", "confirmations" and
//  "in_active_chain".
//  The header's members are written by cbus_block_write_json itself (of
//  an empty block with this header), so that both routes show a block
//  alike. -1 (nothing written) if the header does not decode.
static int
s_write_summary (cbus_buf_t *out, const cbus_block_summary_t *summary)
{
    static const char s_txs [] = "\"transactions\": [], ";
    cbus_header_t header;
    if (cbus_header_decode (&header, summary->header, CBUS_HEADER_BYTES))
        return -1;
    cbus_block_t *block = cbus_block_new (&header);
    if (!block)
        return -1;
    cbus_buf_t json = {0};
    cbus_block_write_json (block, &json);
    cbus_block_destroy (&block);
    size_t cut = 0, length = sizeof (s_txs) - 1;
    while (cut + length <= json.size && memcmp (json.data + cut, s_txs, length))
        cut++;
    int rc = -1;
    if (cut + length < json.size && json.data [json.size - 1] == '}') {
        cbus_buf_append (out, json.data, cut);
        cbus_buf_append (out, json.data + cut + length, json.size - cut - length - 1);
        cbus_buf_printf (out, ", \"transaction_count\": %" PRIu64 ", \"size\": %" PRIu64
                         ", \"confirmations\": %" PRIu64 ", \"in_active_chain\": %s}",
                         summary->tx_count, summary->size, summary->confirmations,
                         summary->in_active_chain ? "true" : "false");
        rc = 0;
    }
    cbus_buf_free (&json);
    return rc;
}

static void
s_on_block_list (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    cbus_block_list_reply_t list;
    if (cbus_gw_reply_decode (request, call, reply, &cbus_block_list_reply_def, &list,
                              "a block list that does not decode"))
        return;
    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    cbus_buf_puts (out, "{\"blocks\": [");
    for (uint32_t index = 0; index < list.blocks.count; index++) {
        cbus_block_summary_t summary;
        char reason [CBUS_REASON_MAX];
        if (index)
            cbus_buf_puts (out, ", ");
        if (cbus_list_decode_map (&list.blocks, index, &cbus_block_summary_def, &summary, reason)
        ||  s_write_summary (out, &summary)) {
            cbus_gw_answer_bad_reply (request, call, "a block summary that does not decode",
                                      NULL);
            return;
        }
    }
    if (list.has_next)
        cbus_buf_printf (out, "], \"next\": %" PRIu64 "}", list.next);
    else
        cbus_buf_puts (out, "], \"next\": null}");
    request->status = MHD_HTTP_OK;
}

static void
s_blocks_start (cbus_gw_request_t *request)
{
    uint64_t limit, before;
    if (s_query_number (request, "limit", 1, 100, 10, &limit, "limit must be 1 to 100")
    ||  s_query_number (request, "before", 0, INT64_MAX, UINT64_MAX, &before,
                        "before must be a height below 2^63 (the \"next\" of the previous page)"))
        return;
    cbus_block_list_t list = { .limit = limit, .before = before, .has_before = before != UINT64_MAX };
    cbus_block_list_encode (&list, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_CHAINSTORE, CBUS_CMD_BLOCK_LIST, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_block_list, NULL);
}

static void
s_on_block_txs (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    if (cbus_gw_reply_is (reply, CBUS_STATUS_NOTFOUND)) {
        cbus_gw_answer_error (request, MHD_HTTP_NOT_FOUND, CBUS_CODE_NOT_FOUND, "Block not found");
        return;
    }
    cbus_block_txs_reply_t slice;
    if (cbus_gw_reply_decode (request, call, reply, &cbus_block_txs_reply_def, &slice,
                              "a block's transactions that do not decode"))
        return;
    cbus_buf_t *out = &request->out;
    cbus_buf_reset (out);
    cbus_buf_puts (out, "{\"block\": ");
    int rc = s_write_summary (out, &slice.block);
    cbus_buf_puts (out, ", \"transactions\": [");
    for (uint32_t index = 0; rc == 0 && index < slice.txs.count; index++) {
        cbus_bytes_t tx = cbus_list_bytes (&slice.txs, index);
        if (index)
            cbus_buf_puts (out, ", ");
        rc = cbus_tx_bytes_to_json (tx.data, tx.size, out);
    }
    if (rc) {
        cbus_gw_answer_bad_reply (request, call, "a block's transactions that do not decode",
                                  NULL);
        return;
    }
    cbus_buf_printf (out, "], \"start\": %" PRIu64, slice.start);
    if (slice.has_next)
        cbus_buf_printf (out, ", \"next\": %" PRIu64 "}", slice.next);
    else
        cbus_buf_puts (out, ", \"next\": null}");
    request->status = MHD_HTTP_OK;
}

//  GET /blocks/<height or hash>/transactions
static void
s_block_txs_start (cbus_gw_request_t *request)
{
    const char *id = request->path + strlen ("/blocks/");
    const char *slash = strchr (id, '/');
    cbus_block_get_t get = {0};
    uint8_t hash [CBUS_HASH_BYTES];
    uint64_t start, limit;
    if (!slash || s_block_id (request, id, (size_t) (slash - id), &get, hash)
    ||  s_query_number (request, "start", 0, INT64_MAX, 0, &start,
                        "start must be a position in the block, below 2^63")
    ||  s_query_number (request, "limit", 1, 500, 50, &limit, "limit must be 1 to 500"))
        return;
    cbus_block_txs_t txs = {
        .height = get.height, .has_height = get.has_height,
        .hash = get.hash, .has_hash = get.has_hash, .start = start, .limit = limit
    };
    cbus_block_txs_encode (&txs, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_CHAINSTORE, CBUS_CMD_BLOCK_TXS, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_block_txs, NULL);
}

//  --------------------------------------------------------------------------
//  GET /mine: ask for a block, then fetch it to show it.

static void
s_on_mine_block (const cbus_call_t *call, cbus_reply_t *reply)
{
    s_answer_block (call, reply, "New Block Forged", false);
}

//  Forget a MINE call, and those whose time is up anyway (a request its
//  client left is cancelled without its handler running).
static void
s_mine_forget (cbus_gateway_t *self, uint64_t id, int64_t now)
{
    for (size_t index = 0; index < self->mine_count; )
        if (self->mine_waits [index].id == id || self->mine_waits [index].deadline < now)
            self->mine_waits [index] = self->mine_waits [--self->mine_count];
        else
            index++;
}

//  Keep the MINE call just made, if it is in flight (and there is room).
static void
s_mine_keep (cbus_gw_request_t *request, int64_t now)
{
    cbus_gateway_t *self = request->gateway;
    if (request->outstanding == 0 || self->mine_count == CBUS_GW_MINE_WAITS_MAX)
        return;
    if (self->mine_count == self->mine_alloc) {
        size_t alloc = self->mine_alloc ? self->mine_alloc * 2 : 16;
        cbus_gw_mine_wait_t *waits = (cbus_gw_mine_wait_t *) realloc (
            self->mine_waits, alloc * sizeof (cbus_gw_mine_wait_t));
        if (!waits)
            return;                     //  It waits its timeout, as before
        self->mine_waits = waits;
        self->mine_alloc = alloc;
    }
    self->mine_waits [self->mine_count++] = (cbus_gw_mine_wait_t) {
        .id = request->calls [request->outstanding - 1],
        .deadline = now + self->mine_timeout_ms
    };
}

void
cbus_gw_mine_sweep (cbus_gateway_t *self, int64_t now)
{
    if (self->mine_count == 0 || !cbus_gw_no_miner (self, now))
        return;
    char reason [CBUS_REASON_MAX];
    snprintf (reason, sizeof (reason), "no miner is running: no miner's heartbeat was heard in "
              "the last %d ms", CBUS_HEARTBEAT_DEAD_MS);
    bool answered = false;
    while (self->mine_count > 0) {
        uint64_t id = self->mine_waits [--self->mine_count].id;
        cbus_call_t call;
        if (cbus_calls_take (self->calls, id, &call) == 0) {
            cbus_gw_call_fail (&call, reason);
            answered = true;
        }
    }
    if (answered)
        cbus_gw_mhd_run (self);
}

static void
s_on_mine (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    s_mine_forget (request->gateway, call->id, cbus_mono_ms ());
    cbus_mine_reply_t mined;
    if (cbus_gw_reply_decode (request, call, reply, &cbus_mine_reply_def, &mined,
                              "a mining reply that does not decode") == 0) {
        cbus_block_get_t get = { .hash = mined.hash, .has_hash = true };
        cbus_block_get_encode (&get, cbus_gw_body (request));
        cbus_gw_call (request, CBUS_GW_CHAINSTORE, CBUS_CMD_BLOCK_GET, cbus_gw_body (request),
                      request->gateway->request_timeout_ms, s_on_mine_block, NULL);
    }
}

//  No miner heard: nobody would mine the block, so say so at once rather
//  than after the mine timeout. In the first heartbeat window after the
//  gateway started (its miners may not have been heard yet) the MINE is
//  sent, and kept: cbus_gw_mine_sweep answers it 503 as soon as the
//  window ends with no miner heard, or when the last miner goes.
static void
s_mine_start (cbus_gw_request_t *request)
{
    if (cbus_gw_no_miner (request->gateway, cbus_mono_ms ())) {
        cbus_gw_answer_error (request, MHD_HTTP_SERVICE_UNAVAILABLE, CBUS_CODE_UNAVAILABLE,
                              "no miner is running: no miner's heartbeat was heard in the "
                              "last %d ms", CBUS_HEARTBEAT_DEAD_MS);
        return;
    }
    cbus_mine_t mine = {0};
    cbus_mine_encode (&mine, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_MEMPOOL, CBUS_CMD_MINE, cbus_gw_body (request),
                  request->gateway->mine_timeout_ms, s_on_mine, NULL);
    s_mine_keep (request, cbus_mono_ms ());
}

const cbus_gw_route_t cbus_gw_chain_routes [] = {
    { "/chain",   "GET", false, false, s_chain_start },
    { "/blocks",  "GET", false, false, s_blocks_start },
    { "/blocks/*/transactions", "GET", false, false, s_block_txs_start },
    { "/blocks/", "GET", false, false, s_block_get_start },
    { "/mine",    "GET", false, true,  s_mine_start },
    { NULL }
};
