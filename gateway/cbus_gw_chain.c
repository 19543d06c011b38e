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
    const msgpack_object *blocks = cbus_msg_get (cbus_reply_map (reply), "blocks");
    if (!blocks || blocks->type != MSGPACK_OBJECT_ARRAY || blocks->via.array.size == 0) {
        s_stream_fail (request, "chainbus-chainstore sent a page without blocks");
        return;
    }
    for (uint32_t index = 0; index < blocks->via.array.size && stream->next <= stream->to; index++) {
        const msgpack_object *item = &blocks->via.array.ptr [index];
        cbus_header_t header;
        if (item->type != MSGPACK_OBJECT_BIN
        ||  cbus_block_header_from_bytes (item->via.bin.ptr, item->via.bin.size, &header)) {
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
        if (cbus_block_bytes_to_json (item->via.bin.ptr, item->via.bin.size, &stream->text)) {
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
    (void) pos;
    cbus_gw_request_t *request = (cbus_gw_request_t *) cls;
    cbus_gw_stream_t *stream = request->stream;
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
            cbus_buf_t body = {0};
            msgpack_packer pk = cbus_packer_begin (&body, 3);
            cbus_pack_kv_u64 (&pk, "from", stream->next);
            cbus_pack_kv_u64 (&pk, "to", stream->to);
            cbus_pack_kv_u64 (&pk, "max_bytes", S_PAGE_BYTES);
            cbus_gw_call (request, CBUS_GW_CHAINSTORE, CBUS_CMD_CHAIN_PAGE, body.data, body.size,
                          request->gateway->request_timeout_ms, s_on_stream_page, NULL);
            cbus_buf_free (&body);
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
    uint64_t height;
    if (!cbus_reply_ok (reply))
        cbus_gw_answer_failure (request, call, reply);
    else
    if (cbus_msg_get_u64 (cbus_reply_map (reply), "height", &height))
        cbus_gw_answer_bad_reply (request, call, "a tip without a height");
    else {
        request->stream->next = 0;
        request->stream->to = height;
        request->status = MHD_HTTP_OK;
        return;
    }
    cbus_gw_stream_destroy (&request->stream);
}

void
cbus_gw_stream_start (cbus_gw_request_t *request)
{
    cbus_gw_call (request, CBUS_GW_CHAINSTORE, CBUS_CMD_TIP, NULL, 0,
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
//  first ("message") or last ("confirmations"). -1 if it does not decode.
static int
s_write_block (cbus_buf_t *out, const cbus_reply_t *reply, const char *message,
               bool confirmations)
{
    const msgpack_object *map = cbus_reply_map (reply);
    const uint8_t *block;
    size_t size;
    uint64_t count = 0;
    if (cbus_msg_get_bin (map, "block", &block, &size)
    ||  (confirmations && cbus_msg_get_u64 (map, "confirmations", &count)))
        return -1;
    cbus_buf_t json = {0};
    int rc = cbus_block_bytes_to_json (block, size, &json);
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
            cbus_buf_printf (out, ", \"confirmations\": %" PRIu64 "}", count);
        }
    }
    else
        rc = -1;
    cbus_buf_free (&json);
    return rc;
}

static void
s_on_block_get (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    if (cbus_gw_reply_is (reply, CBUS_STATUS_NOTFOUND))
        cbus_gw_answer_error (request, MHD_HTTP_NOT_FOUND, CBUS_CODE_NOT_FOUND, "Block not found");
    else
    if (!cbus_reply_ok (reply))
        cbus_gw_answer_failure (request, call, reply);
    else
    if (s_write_block (&request->out, reply, NULL, true))
        cbus_gw_answer_bad_reply (request, call, "a block that does not decode");
    else
        request->status = MHD_HTTP_OK;
}

//  GET /blocks/<height or hash>
static void
s_block_get_start (cbus_gw_request_t *request)
{
    const char *id = request->path + strlen ("/blocks/");
    size_t length = strlen (id);
    cbus_buf_t body = {0};
    msgpack_packer pk = cbus_packer_begin (&body, 1);
    uint8_t hash [CBUS_HASH_BYTES];
    if (length == 2 * CBUS_HASH_BYTES && cbus_hex_decode (id, hash, CBUS_HASH_BYTES) == 0)
        cbus_pack_kv_bin (&pk, "hash", hash, CBUS_HASH_BYTES);
    else
    if (length > 0 && length <= 20 && strspn (id, "0123456789") == length) {
        errno = 0;
        unsigned long long height = strtoull (id, NULL, 10);
        if (errno == ERANGE) {
            cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                                  "Bad block height: too large");
            goto cleanup;
        }
        cbus_pack_kv_u64 (&pk, "height", height);
    }
    else {
        cbus_gw_answer_error (request, MHD_HTTP_BAD_REQUEST, CBUS_CODE_INVALID,
                              "Bad block id: expected a height or a 64-digit hex hash");
        goto cleanup;
    }
    cbus_gw_call (request, CBUS_GW_CHAINSTORE, CBUS_CMD_BLOCK_GET, body.data, body.size,
                  request->gateway->request_timeout_ms, s_on_block_get, NULL);
cleanup:
    cbus_buf_free (&body);
}

//  --------------------------------------------------------------------------
//  GET /mine: ask for a block, then fetch it to show it.

static void
s_on_mine_block (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    if (!cbus_reply_ok (reply))
        cbus_gw_answer_failure (request, call, reply);
    else
    if (s_write_block (&request->out, reply, "New Block Forged", false))
        cbus_gw_answer_bad_reply (request, call, "a block that does not decode");
    else
        request->status = MHD_HTTP_OK;
}

static void
s_on_mine (const cbus_call_t *call, cbus_reply_t *reply)
{
    cbus_gw_request_t *request = (cbus_gw_request_t *) call->owner;
    uint8_t hash [CBUS_HASH_BYTES];
    if (!cbus_reply_ok (reply))
        cbus_gw_answer_failure (request, call, reply);
    else
    if (cbus_msg_get_hash (cbus_reply_map (reply), "hash", hash))
        cbus_gw_answer_bad_reply (request, call, "a reply without a block hash");
    else {
        cbus_buf_t body = {0};
        cbus_gw_pack_kv_hash (&body, "hash", hash);
        cbus_gw_call (request, CBUS_GW_CHAINSTORE, CBUS_CMD_BLOCK_GET, body.data, body.size,
                      request->gateway->request_timeout_ms, s_on_mine_block, NULL);
        cbus_buf_free (&body);
    }
}

static void
s_mine_start (cbus_gw_request_t *request)
{
    cbus_gw_call (request, CBUS_GW_MEMPOOL, CBUS_CMD_MINE, NULL, 0,
                  request->gateway->mine_timeout_ms, s_on_mine, NULL);
}

const cbus_gw_route_t cbus_gw_chain_routes [] = {
    { "/chain",   "GET", false, false, s_chain_start },
    { "/blocks/", "GET", false, false, s_block_get_start },
    { "/mine",    "GET", false, true,  s_mine_start },
    { NULL }
};
