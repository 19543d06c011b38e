/*  =========================================================================
    cbus_gw_chain - the gateway's chain and block routes

    GET /chain streams the active chain; GET /blocks/<height or hash> shows
    one block; GET /mine asks the mempool for a block and shows it once it
    is connected. docs/api.md has the answers.

    Streams (GET /chain, and GET /nodes/resolve after peersync answered)
    answer 200 with a chunked body produced by cbus_gw_stream_read: when
    its buffer is empty it asks the chainstore for the next page, suspends
    and returns 0; the page's reply fills the buffer and resumes. Memory
    per stream is one page.
    =========================================================================
*/
#include "cbus_gw.h"

//  Bytes of blocks asked for per page of a streamed chain.
#define S_PAGE_BYTES        (256 * 1024)
//  A stream buffer grown past this is freed between pages.
#define S_STREAM_KEEP       (1024 * 1024)

//  A chain being streamed as the body of a 200 answer.
struct _cbus_gw_stream_t {
    cbus_buf_t text;                //  JSON not yet handed to MHD
    size_t offset;                  //  Bytes of text already handed
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
    return &request->stream->text;
}

void
cbus_gw_stream_destroy (cbus_gw_stream_t **self_p)
{
    cbus_gw_stream_t *self = *self_p;
    if (self) {
        cbus_buf_free (&self->text);
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
            cbus_buf_puts (&stream->text, ", ");
        if (cbus_block_bytes_to_json (block.data, block.size, &stream->text)) {
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
    while (stream->offset == stream->text.size) {
        if (stream->failed)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (stream->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        stream->offset = 0;
        if (stream->text.alloc > S_STREAM_KEEP)
            cbus_buf_free (&stream->text);
        cbus_buf_reset (&stream->text);
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
            cbus_buf_printf (&stream->text, "], \"length\": %" PRIu64 "}", stream->to + 1);
            stream->ended = true;
        }
    }
    size_t size = stream->text.size - stream->offset;
    if (size > max)
        size = max;
    memcpy (buf, stream->text.data + stream->offset, size);
    stream->offset += size;
    return (ssize_t) size;
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
//  first ("message") or last ("confirmations"). -1 if its bytes do not
//  decode.
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
            cbus_buf_printf (out, ", \"confirmations\": %" PRIu64 "}", found->confirmations);
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

//  GET /blocks/<height or hash>
static void
s_block_get_start (cbus_gw_request_t *request)
{
    const char *id = request->path + strlen ("/blocks/");
    size_t length = strlen (id);
    cbus_block_get_t get = {0};
    uint8_t hash [CBUS_HASH_BYTES];
    if (length == 2 * CBUS_HASH_BYTES && cbus_hex_decode (id, hash, CBUS_HASH_BYTES) == 0) {
        get.hash = hash;
        get.has_hash = true;
    }
    else
    if (length > 0 && length <= 20 && strspn (id, "0123456789") == length) {
        errno = 0;
        get.height = strtoull (id, NULL, 10);
        get.has_height = true;
        if (errno == ERANGE) {
            cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                                  "Bad block height: too large");
            return;
        }
    }
    else {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                              "Bad block id: expected a height or a 64-digit hex hash");
        return;
    }
    cbus_block_get_encode (&get, cbus_gw_body (request));
    cbus_gw_call (request, CBUS_GW_CHAINSTORE, CBUS_CMD_BLOCK_GET, cbus_gw_body (request),
                  request->gateway->request_timeout_ms, s_on_block_get, NULL);
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
    { "/blocks/", "GET", false, false, s_block_get_start },
    { "/mine",    "GET", false, true,  s_mine_start },
    { NULL }
};
