/*  =========================================================================
    cbus_chainstore - the chain's keeper: the only writer of its LevelDB

    Handlers take the request parsed by its function in
    cbus_chainstore_msgs, ask the chain and hand the answer to the reply's
    pack function there.
    =========================================================================
*/
#include "cbus_chainstore.h"
#include "cbus_chainstore_msgs.h"

struct _cbus_chainstore_t {
    zloop_t *loop;              //  Runs the router and the heartbeat
    zsock_t *router;            //  Queries and submissions
    cbus_pub_t *pub;            //  Events into the bus
    cbus_chain_t *chain;        //  The block tree on disk
    char *network;              //  Network id, for TIP
    char *endpoint;             //  Where the router is bound
    cbus_buf_t reply;           //  Reused reply buffer
    cbus_buf_t event;           //  Reused event buffer
};

//  --------------------------------------------------------------------------
//  Handlers

//  Send self->reply as the OK answer.
static void
s_send (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_reply_send (self->router, request, CBUS_STATUS_OK, self->reply.data, self->reply.size);
}

//  The refusal for a read the store failed.
static void
s_refuse_storage (cbus_chainstore_t *self, cbus_request_t *request, const char *what)
{
    zsys_error ("chain store read failed: %s", what);
    cbus_reply_refuse (self->router, request, CBUS_STATUS_ERROR, CBUS_CODE_STORAGE,
                       "The chain store could not read %s", what);
}

//  The refusal when memory runs out for an answer.
static void
s_refuse_memory (cbus_chainstore_t *self, cbus_request_t *request)
{
    zsys_error ("out of memory answering %s", request->command);
    cbus_reply_refuse (self->router, request, CBUS_STATUS_ERROR, CBUS_CODE_INTERNAL,
                       "The chain store ran out of memory");
}

//  Publish chain.block.connected or .disconnected for one block.
static void
s_publish_block (cbus_chainstore_t *self, const char *topic, cbus_block_t *block)
{
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_block_hash (block, hash);
    cbus_chain_entry_t entry = {0};
    if (cbus_chain_entry (self->chain, hash, &entry))
        zsys_error ("no index entry for a block just stored height=%" PRIu64,
                    cbus_block_header (block)->height);
    cbus_chainstore_block_event_pack (self->pub, &self->event, block, hash, entry.work);
    if (cbus_pub_send (self->pub, topic, &self->event))
        zsys_warning ("could not publish %s: %s", topic, zmq_strerror (zmq_errno ()));
}

static void
s_handle_ping (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_service_pong (self->router, request, "chainstore");
}

static void
s_handle_tip (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_chain_entry_t entry;
    cbus_chainstore_tip_reply_t reply = {
        .entry = &entry, .hash = cbus_chain_tip (self->chain, &entry), .network = self->network,
        .genesis = cbus_chain_genesis (self->chain), .bits = cbus_chain_bits (self->chain)
    };
    cbus_chainstore_tip_reply_pack (&self->reply, &reply);
    s_send (self, request);
}

static void
s_handle_block_get (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_chainstore_block_get_t msg;
    if (cbus_chainstore_block_get_parse (cbus_request_map (request), &msg)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "BLOCK.GET needs a height (int) or a hash (32-byte bin)");
        return;
    }
    if (msg.by_height && cbus_chain_hash_at (self->chain, msg.height, msg.hash)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND,
                           "No block at height %" PRIu64, msg.height);
        return;
    }
    char *bytes = NULL;
    size_t size = 0;
    cbus_chain_entry_t entry, tip;
    if (cbus_chain_entry (self->chain, msg.hash, &entry)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND,
                           "Block not found");
        return;
    }
    if (cbus_chain_block_by_hash (self->chain, msg.hash, &bytes, &size) || !bytes) {
        s_refuse_storage (self, request, "an indexed block");
        return;
    }
    cbus_chain_tip (self->chain, &tip);
    //  A block off the active chain has no confirmations.
    bool active = cbus_chain_is_active (self->chain, msg.hash);
    cbus_chainstore_block_reply_t reply = {
        .block = bytes, .size = size, .height = entry.height, .hash = msg.hash,
        .confirmations = active ? tip.height - entry.height + 1 : 0
    };
    cbus_chainstore_block_reply_pack (&self->reply, &reply);
    s_send (self, request);
    cbus_store_free (bytes);
}

//  Append the active block at height to blocks; 0, or -1 on a failed
//  read (or memory).
static int
s_collect_at (cbus_chainstore_t *self, uint64_t height, zlist_t *blocks, size_t *total)
{
    uint8_t hash [CBUS_HASH_BYTES];
    char *bytes = NULL;
    size_t size = 0;
    if (cbus_chain_hash_at (self->chain, height, hash)
    ||  cbus_chain_block_by_hash (self->chain, hash, &bytes, &size) || !bytes)
        return -1;
    zframe_t *frame = zframe_new (bytes, size);
    cbus_store_free (bytes);
    if (!frame || zlist_append (blocks, frame)) {
        zframe_destroy (&frame);
        return -1;
    }
    *total += size;
    return 0;
}

//  Destroy a list of frames.
static void
s_frames_destroy (zlist_t **frames_p)
{
    zframe_t *frame;
    while (*frames_p && (frame = (zframe_t *) zlist_pop (*frames_p)))
        zframe_destroy (&frame);
    zlist_destroy (frames_p);
}

static void
s_handle_chain_page (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_chainstore_chain_page_t msg;
    if (cbus_chainstore_chain_page_parse (cbus_request_map (request), &msg)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "CHAIN.PAGE needs from <= to and max_bytes");
        return;
    }
    cbus_chain_entry_t tip;
    cbus_chain_tip (self->chain, &tip);
    if (msg.from > tip.height) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND,
                           "No block at height %" PRIu64, msg.from);
        return;
    }
    if (msg.to > tip.height)
        msg.to = tip.height;
    //  Collect blocks until the byte budget is spent (at least one).
    zlist_t *blocks = zlist_new ();
    if (!blocks) {
        s_refuse_memory (self, request);
        return;
    }
    size_t total = 0;
    uint64_t height = msg.from;
    int rc = 0;
    while (rc == 0 && height <= msg.to && (total == 0 || total < msg.max_bytes))
        if ((rc = s_collect_at (self, height, blocks, &total)) == 0)
            height++;
    if (rc == 0) {
        cbus_chainstore_chain_page_reply_pack (&self->reply, blocks, height);
        s_send (self, request);
    }
    else {
        char what [64];
        snprintf (what, sizeof (what), "block %" PRIu64, height);
        s_refuse_storage (self, request, what);
    }
    s_frames_destroy (&blocks);
}

static void
s_handle_tx_get (cbus_chainstore_t *self, cbus_request_t *request)
{
    uint8_t txid [CBUS_HASH_BYTES], block_hash [CBUS_HASH_BYTES];
    uint32_t position;
    if (cbus_chainstore_tx_get_parse (cbus_request_map (request), txid)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "TX.GET needs a txid");
        return;
    }
    if (cbus_chain_tx_where (self->chain, txid, block_hash, &position)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND,
                           "Transaction not in the chain");
        return;
    }
    char *bytes = NULL;
    size_t size = 0;
    cbus_chain_entry_t entry, tip;
    cbus_block_t *block = NULL;
    char reason [CBUS_REASON_MAX];
    if (cbus_chain_entry (self->chain, block_hash, &entry) == 0
    &&  cbus_chain_block_by_hash (self->chain, block_hash, &bytes, &size) == 0 && bytes)
        block = cbus_block_new_from_bytes (bytes, size, reason);
    cbus_store_free (bytes);
    cbus_tx_t *tx = block && position < cbus_block_tx_count (block)
                  ? cbus_block_tx (block, position) : NULL;
    if (!tx) {
        s_refuse_storage (self, request, "the block its tx index names");
        cbus_block_destroy (&block);
        return;
    }
    cbus_chain_tip (self->chain, &tip);
    cbus_chainstore_tx_reply_t reply = {
        .block_hash = block_hash, .height = entry.height, .index = position,
        .confirmations = tip.height - entry.height + 1
    };
    reply.tx = cbus_tx_bytes (tx, &reply.size);
    cbus_chainstore_tx_reply_pack (&self->reply, &reply);
    s_send (self, request);
    cbus_block_destroy (&block);
}

static void
s_handle_tx_known (cbus_chainstore_t *self, cbus_request_t *request)
{
    const msgpack_object *txids;
    if (cbus_chainstore_tx_known_parse (cbus_request_map (request), &txids)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "TX.KNOWN needs txids");
        return;
    }
    size_t count = txids->via.array.size;
    bool *known = (bool *) malloc (count ? count * sizeof (bool) : 1);
    if (!known) {
        s_refuse_memory (self, request);
        return;
    }
    for (size_t index = 0; index < count; index++) {
        const msgpack_object *item = &txids->via.array.ptr [index];
        uint8_t where [CBUS_HASH_BYTES];
        uint32_t position;
        known [index] = item->type == MSGPACK_OBJECT_BIN && item->via.bin.size == CBUS_HASH_BYTES
                     && cbus_chain_tx_where (self->chain, (const uint8_t *) item->via.bin.ptr,
                                             where, &position) == 0;
    }
    cbus_chainstore_tx_known_reply_pack (&self->reply, known, count);
    s_send (self, request);
    free (known);
}

//  Tell the bus what a connected block changed: the blocks that left
//  first (old tip down), then those that joined (lowest first).
static void
s_publish_changes (cbus_chainstore_t *self)
{
    for (size_t index = 0; index < cbus_chain_left_count (self->chain); index++)
        s_publish_block (self, CBUS_TOPIC_BLOCK_DISCONNECTED, cbus_chain_left (self->chain, index));
    for (size_t index = 0; index < cbus_chain_joined_count (self->chain); index++)
        s_publish_block (self, CBUS_TOPIC_BLOCK_CONNECTED, cbus_chain_joined (self->chain, index));
}

static void
s_handle_block_submit (cbus_chainstore_t *self, cbus_request_t *request)
{
    const uint8_t *data;
    size_t size;
    if (cbus_chainstore_block_submit_parse (cbus_request_map (request), &data, &size)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "BLOCK.SUBMIT needs a block");
        return;
    }
    char reason [CBUS_REASON_MAX] = "";
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_code_t code = CBUS_CODE_INTERNAL;
    cbus_chain_result_t result = cbus_chain_submit (self->chain, data, size, hash, &code, reason);
    char hex [CBUS_HASH_HEX];
    cbus_hash_hex (hash, hex);
    if (result == CBUS_CHAIN_INVALID) {
        zsys_info ("block refused hash=%s code=%s reason=\"%s\"", hex, cbus_code_name (code), reason);
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, code, "%s", reason);
        return;
    }
    if (result == CBUS_CHAIN_FAILED) {
        zsys_error ("block not stored hash=%s code=%s reason=\"%s\"", hex, cbus_code_name (code),
                    reason);
        cbus_reply_refuse (self->router, request, CBUS_STATUS_ERROR, code, "%s", reason);
        return;
    }
    cbus_chain_entry_t entry = {0};
    cbus_chain_entry (self->chain, hash, &entry);
    if (result == CBUS_CHAIN_CONNECTED) {
        //  Durable now: the batch was synced before submit returned.
        s_publish_changes (self);
        size_t joined = cbus_chain_joined_count (self->chain);
        zsys_info ("block connected height=%" PRIu64 " hash=%s txs=%zu", entry.height, hex,
                   joined ? cbus_block_tx_count (cbus_chain_joined (self->chain, joined - 1)) : 0);
    }
    else
    if (result == CBUS_CHAIN_SIDE)
        zsys_info ("block stored on a side branch height=%" PRIu64 " hash=%s", entry.height, hex);
    const char *status = result == CBUS_CHAIN_CONNECTED ? "connected"
                       : result == CBUS_CHAIN_DUPLICATE ? "duplicate" : "side";
    cbus_chainstore_block_submit_reply_pack (&self->reply, hash, entry.height, status);
    s_send (self, request);
}

static void
s_handle_locator (cbus_chainstore_t *self, cbus_request_t *request)
{
    uint8_t hashes [CBUS_LOCATOR_MAX][CBUS_HASH_BYTES];
    size_t count = cbus_chain_locator (self->chain, hashes);
    cbus_chainstore_locator_reply_pack (&self->reply, hashes, count);
    s_send (self, request);
}

static void
s_handle_headers (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_chainstore_headers_t msg;
    if (cbus_chainstore_headers_parse (cbus_request_map (request), &msg)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "HEADERS needs a locator of at most %d hashes", CBUS_LOCATOR_MAX);
        return;
    }
    if (msg.max > CBUS_CHAINSTORE_HEADERS_MAX)
        msg.max = CBUS_CHAINSTORE_HEADERS_MAX;
    uint64_t start = cbus_chain_fork_point (self->chain,
                                            (const uint8_t (*) [CBUS_HASH_BYTES]) msg.locator,
                                            msg.count) + 1;
    cbus_chain_entry_t tip;
    cbus_chain_tip (self->chain, &tip);
    uint64_t end = start + msg.max - 1 < tip.height ? start + msg.max - 1 : tip.height;
    size_t count = msg.max > 0 && end >= start ? (size_t) (end - start + 1) : 0;
    cbus_header_t *headers = (cbus_header_t *) malloc ((count ? count : 1) * sizeof (cbus_header_t));
    if (!headers) {
        s_refuse_memory (self, request);
        return;
    }
    for (size_t index = 0; index < count; index++) {
        uint8_t hash [CBUS_HASH_BYTES];
        cbus_chain_entry_t entry;
        if (cbus_chain_hash_at (self->chain, start + index, hash)
        ||  cbus_chain_entry (self->chain, hash, &entry)) {
            s_refuse_storage (self, request, "the active chain's index");
            free (headers);
            return;
        }
        headers [index] = entry.header;
    }
    cbus_chainstore_headers_reply_pack (&self->reply, start, headers, count);
    s_send (self, request);
    free (headers);
}

static void
s_handle_blocks_have (cbus_chainstore_t *self, cbus_request_t *request)
{
    const msgpack_object *hashes;
    if (cbus_chainstore_blocks_have_parse (cbus_request_map (request), &hashes)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "BLOCKS.HAVE needs at most %d hashes", CBUS_CHAINSTORE_HEADERS_MAX);
        return;
    }
    bool have [CBUS_CHAINSTORE_HEADERS_MAX];
    size_t count = hashes->via.array.size;
    for (size_t index = 0; index < count; index++) {
        cbus_chain_entry_t entry;
        const uint8_t *hash = cbus_chainstore_hash_at (hashes, index);
        have [index] = cbus_chain_entry (self->chain, hash, &entry) == 0;
    }
    cbus_chainstore_blocks_have_reply_pack (&self->reply, have, count);
    s_send (self, request);
}

static void
s_handle_blocks_get (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_chainstore_blocks_get_t msg;
    if (cbus_chainstore_blocks_get_parse (cbus_request_map (request), &msg)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "BLOCKS.GET needs at most %d hashes", CBUS_CHAINSTORE_BLOCKS_MAX);
        return;
    }
    zlist_t *blocks = zlist_new ();
    if (!blocks) {
        s_refuse_memory (self, request);
        return;
    }
    //  Blocks we have, in the order asked, until the byte budget is spent
    //  or one is missing.
    size_t total = 0;
    int rc = 0;
    for (size_t index = 0; index < msg.hashes->via.array.size
                        && (total == 0 || total < msg.max_bytes); index++) {
        char *bytes = NULL;
        size_t size = 0;
        const uint8_t *hash = cbus_chainstore_hash_at (msg.hashes, index);
        if ((rc = cbus_chain_block_by_hash (self->chain, hash, &bytes, &size)) || !bytes)
            break;
        zframe_t *frame = zframe_new (bytes, size);
        cbus_store_free (bytes);
        if (!frame || zlist_append (blocks, frame)) {
            zframe_destroy (&frame);
            rc = -1;
            break;
        }
        total += size;
    }
    if (rc == 0) {
        cbus_chainstore_blocks_get_reply_pack (&self->reply, blocks);
        s_send (self, request);
    }
    else
        s_refuse_storage (self, request, "a block asked for");
    s_frames_destroy (&blocks);
}

//  The bytes of the transaction at a position of an active block
//  (caller frees), read without checking the block again: it was checked
//  when stored. NULL if the store cannot give them.
static uint8_t *
s_tx_at (cbus_chainstore_t *self, uint64_t height, uint32_t index,
         uint8_t block_hash [CBUS_HASH_BYTES], size_t *size_p)
{
    char *bytes = NULL;
    size_t size = 0;
    uint8_t *tx = NULL;
    if (cbus_chain_hash_at (self->chain, height, block_hash)
    ||  cbus_chain_block_by_hash (self->chain, block_hash, &bytes, &size) || !bytes)
        return NULL;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    if (msgpack_unpack_next (&unpacked, bytes, size, &offset) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *txs = cbus_msg_get (&unpacked.data, "txs");
        if (txs && txs->type == MSGPACK_OBJECT_ARRAY && index < txs->via.array.size
        &&  txs->via.array.ptr [index].type == MSGPACK_OBJECT_BIN) {
            *size_p = txs->via.array.ptr [index].via.bin.size;
            tx = (uint8_t *) malloc (*size_p ? *size_p : 1);
            if (tx)
                memcpy (tx, txs->via.array.ptr [index].via.bin.ptr, *size_p);
        }
    }
    msgpack_unpacked_destroy (&unpacked);
    cbus_store_free (bytes);
    return tx;
}

static void
s_handle_history (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_chainstore_history_t msg;
    char reason [CBUS_REASON_MAX];
    if (cbus_chainstore_history_parse (cbus_request_map (request), &msg, reason)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "%s", reason);
        return;
    }
    char *name = cbus_strdup_size (msg.name, msg.name_size);
    if (!name) {
        s_refuse_memory (self, request);
        return;
    }
    cbus_chain_history_t found [CBUS_CHAINSTORE_HISTORY_MAX + 1];
    //  One more than asked: whether there is a next page.
    size_t count = cbus_chain_history (self->chain, msg.kind, name, msg.before_height,
                                       (uint32_t) msg.before_index, found, (size_t) msg.limit + 1);
    free (name);
    bool more = count > msg.limit;
    if (more)
        count = (size_t) msg.limit;
    cbus_chain_entry_t tip;
    cbus_chain_tip (self->chain, &tip);
    cbus_chainstore_history_item_t items [CBUS_CHAINSTORE_HISTORY_MAX];
    size_t filled = 0;
    for (; filled < count; filled++) {
        cbus_chainstore_history_item_t *item = &items [filled];
        item->where = found [filled];
        item->confirmations = tip.height - item->where.height + 1;
        item->tx = s_tx_at (self, item->where.height, item->where.index, item->block_hash,
                            &item->size);
        if (!item->tx)
            break;
    }
    if (filled == count) {
        cbus_chainstore_history_reply_pack (&self->reply, items, count, more);
        s_send (self, request);
    }
    else
        s_refuse_storage (self, request, "a transaction its history index names");
    for (size_t index = 0; index < filled; index++)
        free (items [index].tx);
}

typedef void (s_handler_fn) (cbus_chainstore_t *self, cbus_request_t *request);

static const struct {
    const char *command;
    s_handler_fn *handler;
} s_handlers [] = {
    { CBUS_CMD_PING,         s_handle_ping },
    { CBUS_CMD_TIP,          s_handle_tip },
    { CBUS_CMD_BLOCK_GET,    s_handle_block_get },
    { CBUS_CMD_CHAIN_PAGE,   s_handle_chain_page },
    { CBUS_CMD_TX_GET,       s_handle_tx_get },
    { CBUS_CMD_TX_KNOWN,     s_handle_tx_known },
    { CBUS_CMD_BLOCK_SUBMIT, s_handle_block_submit },
    { CBUS_CMD_LOCATOR,      s_handle_locator },
    { CBUS_CMD_HEADERS,      s_handle_headers },
    { CBUS_CMD_BLOCKS_HAVE,  s_handle_blocks_have },
    { CBUS_CMD_BLOCKS_GET,   s_handle_blocks_get },
    { CBUS_CMD_HISTORY,      s_handle_history },
};

static int
s_on_request (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop; (void) reader;
    cbus_chainstore_t *self = (cbus_chainstore_t *) arg;
    cbus_request_t *request = cbus_request_recv (self->router);
    if (!request)
        return 0;
    s_handler_fn *handler = NULL;
    for (size_t index = 0; index < sizeof (s_handlers) / sizeof (s_handlers [0]); index++)
        if (streq (request->command, s_handlers [index].command))
            handler = s_handlers [index].handler;
    if (!handler)
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_UNKNOWN_COMMAND,
                           "Unknown command %s", request->command);
    else
    if (!request->decoded)
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_MALFORMED,
                           "The body is not a msgpack map");
    else
        handler (self, request);
    cbus_request_destroy (&request);
    return 0;
}

//  --------------------------------------------------------------------------
//  The class and its actor

cbus_chainstore_t *
cbus_chainstore_new (cbus_config_t *config)
{
    char reason [CBUS_REASON_MAX] = "out of memory";
    cbus_chainstore_t *self = (cbus_chainstore_t *) zmalloc (sizeof (cbus_chainstore_t));
    if (!self) {
        zsys_error ("chainstore: %s", reason);
        return NULL;
    }
    char *bus = cbus_config_endpoint (config, "bus-in");
    char *path = cbus_config_path (config, "chain");
    self->endpoint = cbus_config_endpoint (config, "chainstore");
    self->network = strdup (cbus_config_str (config, "node/network"));
    self->loop = zloop_new ();
    if (!bus || !path || !self->endpoint || !self->network || !self->loop)
        goto failed;
    self->chain = cbus_chain_new (path, self->network,
                                  (uint32_t) cbus_config_int (config, "node/pow_bits"),
                                  (size_t) cbus_config_int (config, "chainstore/cache_mb"),
                                  (uint64_t) cbus_config_int (config, "chainstore/max_future_ms"),
                                  reason);
    if (!self->chain)
        goto failed;
    self->router = cbus_service_router (self->endpoint, CBUS_MSG_MAX_BYTES, reason);
    if (!self->router)
        goto failed;
    self->pub = cbus_pub_new (bus, "chainstore");
    if (!self->pub) {
        cbus_fail (reason, "cannot connect to the bus at %s", bus);
        goto failed;
    }
    //  Stop on $TERM from main only, not on a signal: see cbus_service.h.
    zloop_set_nonstop (self->loop, true);
    if (zloop_reader (self->loop, self->router, s_on_request, self)
    ||  zloop_timer (self->loop, CBUS_HEARTBEAT_MS, 0, cbus_service_on_heartbeat,
                     self->pub) == -1) {
        cbus_fail (reason, "cannot register the sockets in the loop");
        goto failed;
    }
    cbus_chain_entry_t tip;
    char hex [CBUS_HASH_HEX];
    cbus_hash_hex (cbus_chain_tip (self->chain, &tip), hex);
    zsys_info ("chainstore ready height=%" PRIu64 " tip=%s endpoint=%s", tip.height, hex,
               self->endpoint);
    zstr_free (&bus);
    zstr_free (&path);
    return self;
failed:
    zsys_error ("chainstore: %s", reason);
    zstr_free (&bus);
    zstr_free (&path);
    cbus_chainstore_destroy (&self);
    return NULL;
}

void
cbus_chainstore_destroy (cbus_chainstore_t **self_p)
{
    assert (self_p);
    cbus_chainstore_t *self = *self_p;
    if (self) {
        zloop_destroy (&self->loop);
        zsock_destroy (&self->router);
        cbus_pub_destroy (&self->pub);
        cbus_chain_destroy (&self->chain);
        cbus_buf_free (&self->reply);
        cbus_buf_free (&self->event);
        free (self->network);
        zstr_free (&self->endpoint);
        free (self);
        *self_p = NULL;
    }
}

void
cbus_chainstore_actor (zsock_t *pipe, void *args)
{
    cbus_chainstore_t *self = cbus_chainstore_new ((cbus_config_t *) args);
    zsock_signal (pipe, 0);
    if (self && zloop_reader (self->loop, pipe, cbus_service_on_pipe, self) == 0)
        zloop_start (self->loop);
    else
        cbus_service_fail (pipe, "chainstore: not started");
    cbus_chainstore_destroy (&self);
}
