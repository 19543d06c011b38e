/*  =========================================================================
    cbus_chainstore - the chain's keeper: the only writer of its LevelDB

    Each handler decodes its request through the message's one definition
    (cbus_msgs.h), asks the chain and sends the answer through the
    reply's definition; events go out the same way. A request the
    definition refuses gets the handler's own reason, the one it always
    gave.
    =========================================================================
*/
#include "cbus_chainstore.h"
#include "cbus_chainstore_backup.h"
#include "cbus_chainstore_read.h"

struct _cbus_chainstore_t {
    zloop_t *loop;              //  Runs the router and the heartbeat
    zsock_t *router;            //  Queries and submissions
    cbus_pub_t *pub;            //  Events into the bus
    cbus_metrics_t *metrics;    //  Carried in our heartbeats
    cbus_chain_t *chain;        //  The block tree on disk
    cbus_chainstore_backup_t *backup;   //  STORE.BACKUP (cbus_chainstore_backup.c)
    cbus_chainstore_read_t *read;       //  HISTORY, BLOCK.LIST, BLOCK.TXS (cbus_chainstore_read.c)
    char *network;              //  Network id, for TIP
    char *endpoint;             //  Where the router is bound
    cbus_buf_t reply;           //  Reused reply buffer
    cbus_buf_t event;           //  Reused event buffer
    bool paused;                //  chain.storage last said: no writes
    cbus_code_t paused_code;    //  ... and the code it gave
    //  LevelDB's message for the first read that found the store damaged
    //  (a Corruption status: a table file that does not read back), ""
    //  while none has. Sticky until the process ends: TIP tells it.
    char damaged [CBUS_REASON_MAX];
};

//  Blocks read for one answer, as a BIN list's items: their bytes as
//  the store gave them (freed with cbus_store_free).
typedef struct {
    cbus_bytes_t *items;        //  The blocks, in order
    uint32_t count;             //  How many
    uint32_t capacity;          //  Room in items
    size_t total;               //  Bytes in all
} s_blocks_t;

//  Append block bytes, taking them (freed on failure too). 0, or -1 when
//  memory runs out.
static int
s_blocks_append (s_blocks_t *self, char *bytes, size_t size)
{
    if (self->count == self->capacity) {
        uint32_t capacity = self->capacity ? self->capacity * 2 : 16;
        cbus_bytes_t *items = (cbus_bytes_t *) realloc (self->items,
                                                        capacity * sizeof (cbus_bytes_t));
        if (!items) {
            cbus_store_free (bytes);
            return -1;
        }
        self->items = items;
        self->capacity = capacity;
    }
    self->items [self->count++] = (cbus_bytes_t) { (const uint8_t *) bytes, size };
    self->total += size;
    return 0;
}

static void
s_blocks_free (s_blocks_t *self)
{
    for (uint32_t index = 0; index < self->count; index++)
        cbus_store_free ((void *) self->items [index].data);
    free (self->items);
    memset (self, 0, sizeof (*self));
}

//  The blocks as a list field.
static cbus_list_t
s_blocks_list (const s_blocks_t *self)
{
    cbus_list_t list = { .count = self->count, .items = self->items };
    return list;
}

//  --------------------------------------------------------------------------
//  Handlers

//  The refusal for a request its definition does not accept, or that
//  breaks a rule of the command; reason is what the user reads.
static void
s_refuse_invalid (cbus_chainstore_t *self, cbus_request_t *request, const char *reason)
{
    cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID, "%s", reason);
}

//  The refusal for a read the store failed. A read LevelDB found corrupt
//  marks the store damaged, once (GET /status then says so).
static void
s_refuse_storage (cbus_chainstore_t *self, cbus_request_t *request, const char *what)
{
    zsys_error ("chain store read failed: %s", what);
    cbus_store_t *store = cbus_chain_store (self->chain);
    if (!*self->damaged && cbus_store_fault (store) == CBUS_STORE_CORRUPT) {
        snprintf (self->damaged, sizeof (self->damaged), "%.160s (reading %.64s)",
                  cbus_store_error (store), what);
        zsys_error ("chain store damaged: reads fail with \"%s\"; stop the node, keep a copy "
                    "of the data folder, and restore or resync it", self->damaged);
    }
    cbus_reply_refuse (self->router, request, CBUS_STATUS_ERROR, CBUS_CODE_STORAGE,
                       "The chain store could not read %s", what);
}

static void
s_read_refused (void *arg, cbus_request_t *request, const char *what)
{
    s_refuse_storage ((cbus_chainstore_t *) arg, request, what);
}

//  The refusal when memory runs out for an answer.
static void
s_refuse_memory (cbus_chainstore_t *self, cbus_request_t *request)
{
    zsys_error ("out of memory answering %s", request->command);
    cbus_reply_refuse (self->router, request, CBUS_STATUS_ERROR, CBUS_CODE_INTERNAL,
                       "The chain store ran out of memory");
}

//  Item index of a block's txids (source is the block).
static const void *
s_block_txid (const void *source, uint32_t index, size_t *size)
{
    *size = CBUS_HASH_BYTES;
    return cbus_tx_id (cbus_block_tx ((cbus_block_t *) source, index));
}

//  The two block events have one field list; this fills either struct.
//  next_bits: the bits of a block on the tip the event leaves (on the
//  connected block; on the disconnected block's parent, which are that
//  block's own).
#define S_BLOCK_EVENT(block_, hash_, header_, work_, next_bits_) { \
    .hash = (hash_), .height = (header_)->height, .prev_hash = (header_)->prev_hash, \
    .merkle_root = (header_)->merkle_root, .time_ms = (header_)->time_ms, .work = (work_), \
    .txids = { .count = (uint32_t) cbus_block_tx_count (block_), .item = s_block_txid, \
               .source = (block_) }, \
    .next_bits = (next_bits_), .has_next_bits = (next_bits_) != 0 }

//  Publish chain.block.connected (or, when not connected, .disconnected)
//  for one block; work is the chain work up to and with it.
static void
s_publish_block (cbus_chainstore_t *self, bool connected, cbus_block_t *block)
{
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_block_hash (block, hash);
    cbus_chain_entry_t entry = {0};
    const cbus_header_t *header = cbus_block_header (block);
    if (cbus_chain_entry (self->chain, hash, &entry))
        zsys_error ("no index entry for a block just stored height=%" PRIu64, header->height);
    int rc;
    if (connected) {
        cbus_block_connected_t event = S_BLOCK_EVENT (block, hash, header, entry.work,
                                                      cbus_chain_bits_on (self->chain, hash));
        rc = cbus_pub_send_msg (self->pub, &cbus_block_connected_def, &event, &self->event);
    }
    else {
        cbus_block_disconnected_t event = S_BLOCK_EVENT (block, hash, header, entry.work,
                                                         header->bits);
        rc = cbus_pub_send_msg (self->pub, &cbus_block_disconnected_def, &event, &self->event);
    }
    if (rc)
        zsys_warning ("could not publish %s: %s", connected ? CBUS_TOPIC_BLOCK_CONNECTED
                      : CBUS_TOPIC_BLOCK_DISCONNECTED, zmq_strerror (zmq_errno ()));
}

static void
s_handle_ping (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_service_pong (self->router, request, "chainstore");
}

//  Whether the store takes writes; while it does not, why (storage,
//  CBUS_REASON_MAX) and the code of that fault: no_space for a full
//  disk, storage for any other (an I/O error, a damaged store).
static bool
s_writable (cbus_chainstore_t *self, char *storage, cbus_code_t *code)
{
    cbus_store_fault_t fault = CBUS_STORE_OK;
    bool writable = cbus_store_writable (cbus_chain_store (self->chain), &fault, storage);
    *code = writable ? CBUS_CODE_OK : fault == CBUS_STORE_NO_SPACE ? CBUS_CODE_NO_SPACE
                                                                       : CBUS_CODE_STORAGE;
    return writable;
}

static void
s_handle_tip (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_chain_entry_t entry;
    const uint8_t *hash = cbus_chain_tip (self->chain, &entry);
    char storage [CBUS_REASON_MAX] = "";
    cbus_code_t code;
    bool writable = s_writable (self, storage, &code);
    //  What a block on the tip must carry: the mempool builds on it.
    uint32_t next_bits = cbus_chain_next_bits (self->chain);
    cbus_tip_reply_t reply = {
        .height = entry.height, .hash = hash, .work = entry.work,
        .time_ms = entry.header.time_ms, .network = cbus_str (self->network),
        .genesis = cbus_chain_genesis (self->chain), .bits = cbus_chain_bits (self->chain),
        .has_storage = !writable, .storage = cbus_str (storage),
        .has_storage_code = !writable, .storage_code = cbus_str (cbus_code_name (code)),
        .next_bits = next_bits, .has_next_bits = next_bits != 0,
        .block_interval = cbus_chain_rule (self->chain)->interval_s, .has_block_interval = true,
        .damaged = cbus_str (self->damaged), .has_damaged = *self->damaged != 0
    };
    cbus_reply_send_msg (self->router, request, &cbus_tip_reply_def, &reply, &self->reply);
}

static void
s_handle_block_get (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_block_get_t msg;
    char reason [CBUS_REASON_MAX];
    uint8_t hash [CBUS_HASH_BYTES];
    if (cbus_block_get_decode (cbus_request_map (request), &msg, reason)
    ||  !(msg.has_height || msg.has_hash)) {
        s_refuse_invalid (self, request, "BLOCK.GET needs a height (int) or a hash (32-byte bin)");
        return;
    }
    //  A height, or else a hash.
    if (msg.has_height && cbus_chain_hash_at (self->chain, msg.height, hash)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND,
                           "No block at height %" PRIu64, msg.height);
        return;
    }
    if (!msg.has_height)
        memcpy (hash, msg.hash, CBUS_HASH_BYTES);
    char *bytes = NULL;
    size_t size = 0;
    cbus_chain_entry_t entry, tip;
    if (cbus_chain_entry (self->chain, hash, &entry)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND,
                           "Block not found");
        return;
    }
    if (cbus_chain_block_by_hash (self->chain, hash, &bytes, &size) || !bytes) {
        s_refuse_storage (self, request, "an indexed block");
        return;
    }
    cbus_chain_tip (self->chain, &tip);
    //  A block off the active chain (a side branch's, stale) is served
    //  by its hash all the same, as Bitcoin Core's getblock does, with
    //  no confirmations and in_active_chain false.
    bool active = cbus_chain_is_active (self->chain, hash);
    cbus_block_get_reply_t reply = {
        .block = { (const uint8_t *) bytes, size }, .height = entry.height, .hash = hash,
        .confirmations = active ? tip.height - entry.height + 1 : 0, .in_active_chain = active
    };
    cbus_reply_send_msg (self->router, request, &cbus_block_get_reply_def, &reply, &self->reply);
    cbus_store_free (bytes);
}

//  Append the active block at height to blocks; 0, or -1 on a failed
//  read (or memory).
static int
s_collect_at (cbus_chainstore_t *self, uint64_t height, s_blocks_t *blocks)
{
    uint8_t hash [CBUS_HASH_BYTES];
    char *bytes = NULL;
    size_t size = 0;
    if (cbus_chain_hash_at (self->chain, height, hash)
    ||  cbus_chain_block_by_hash (self->chain, hash, &bytes, &size) || !bytes)
        return -1;
    return s_blocks_append (blocks, bytes, size);
}

static void
s_handle_chain_page (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_chain_page_t msg;
    char reason [CBUS_REASON_MAX];
    if (cbus_chain_page_decode (cbus_request_map (request), &msg, reason) || msg.to < msg.from) {
        s_refuse_invalid (self, request, "CHAIN.PAGE needs from <= to and max_bytes");
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
    s_blocks_t blocks = {0};
    uint64_t height = msg.from;
    int rc = 0;
    while (rc == 0 && height <= msg.to && (blocks.total == 0 || blocks.total < msg.max_bytes))
        if ((rc = s_collect_at (self, height, &blocks)) == 0)
            height++;
    if (rc == 0) {
        cbus_chain_page_reply_t reply = { .blocks = s_blocks_list (&blocks), .next = height };
        cbus_reply_send_msg (self->router, request, &cbus_chain_page_reply_def, &reply,
                             &self->reply);
    }
    else {
        char what [64];
        snprintf (what, sizeof (what), "block %" PRIu64, height);
        s_refuse_storage (self, request, what);
    }
    s_blocks_free (&blocks);
}

static void
s_handle_tx_get (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_chain_tx_get_t msg;
    char reason [CBUS_REASON_MAX];
    uint8_t block_hash [CBUS_HASH_BYTES];
    uint32_t position;
    if (cbus_chain_tx_get_decode (cbus_request_map (request), &msg, reason)) {
        s_refuse_invalid (self, request, "TX.GET needs a txid");
        return;
    }
    if (cbus_chain_tx_where (self->chain, msg.txid, block_hash, &position)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND,
                           "Transaction not in the chain");
        return;
    }
    char *bytes = NULL;
    size_t size = 0;
    cbus_chain_entry_t entry, tip;
    cbus_block_t *block = NULL;
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
    cbus_chain_tx_reply_t reply = {
        .block_hash = block_hash, .height = entry.height, .index = position,
        .confirmations = tip.height - entry.height + 1
    };
    reply.tx.data = cbus_tx_bytes (tx, &reply.tx.size);
    cbus_reply_send_msg (self->router, request, &cbus_chain_tx_reply_def, &reply, &self->reply);
    cbus_block_destroy (&block);
}

static void
s_handle_tx_known (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_tx_known_t msg;
    char reason [CBUS_REASON_MAX];
    if (cbus_tx_known_decode (cbus_request_map (request), &msg, reason)) {
        s_refuse_invalid (self, request, "TX.KNOWN needs txids");
        return;
    }
    bool *known = (bool *) malloc (msg.txids.count ? msg.txids.count * sizeof (bool) : 1);
    if (!known) {
        s_refuse_memory (self, request);
        return;
    }
    for (uint32_t index = 0; index < msg.txids.count; index++) {
        uint8_t where [CBUS_HASH_BYTES];
        uint32_t position;
        known [index] = cbus_chain_tx_where (self->chain, cbus_list_hash (&msg.txids, index),
                                             where, &position) == 0;
    }
    cbus_tx_known_reply_t reply = { .known = { .count = msg.txids.count, .items = known } };
    cbus_reply_send_msg (self->router, request, &cbus_tx_known_reply_def, &reply, &self->reply);
    free (known);
}

//  Tell the bus what a connected block changed: the blocks that left
//  first (old tip down), then those that joined (lowest first).
static void
s_publish_changes (cbus_chainstore_t *self)
{
    for (size_t index = 0; index < cbus_chain_left_count (self->chain); index++)
        s_publish_block (self, false, cbus_chain_left (self->chain, index));
    for (size_t index = 0; index < cbus_chain_joined_count (self->chain); index++)
        s_publish_block (self, true, cbus_chain_joined (self->chain, index));
}

//  The tip's gauges: its height and its timestamp (Prometheus computes
//  the age; the gateway also serves it as chainbus_chain_tip_age_seconds).
static void
s_metrics_tip (cbus_chainstore_t *self)
{
    cbus_chain_entry_t tip;
    cbus_chain_tip (self->chain, &tip);
    cbus_metrics_set (self->metrics, CBUS_METRIC_CHAIN_HEIGHT, NULL, NULL, (double) tip.height);
    cbus_metrics_set (self->metrics, CBUS_METRIC_CHAIN_TIP_TIMESTAMP, NULL, NULL,
                      (double) tip.header.time_ms / 1000.0);
}

//  What a connected submission changed: blocks connected and
//  disconnected, the depth of a reorganisation, and each joined block's
//  interval from its parent (by their header timestamps, which need not
//  increase: a negative difference counts as 0). Block 1 has none: the
//  genesis timestamp is the network's constant, not when it was mined.
//  Costs one index read (the first joined block's parent).
static void
s_metrics_connected (cbus_chainstore_t *self)
{
    size_t left = cbus_chain_left_count (self->chain);
    size_t joined = cbus_chain_joined_count (self->chain);
    cbus_metrics_add (self->metrics, CBUS_METRIC_CHAIN_BLOCKS_CONNECTED, NULL, NULL, joined);
    if (left) {
        cbus_metrics_add (self->metrics, CBUS_METRIC_CHAIN_BLOCKS_DISCONNECTED, NULL, NULL, left);
        cbus_metrics_observe (self->metrics, CBUS_METRIC_CHAIN_REORG_DEPTH, NULL, NULL,
                              (double) left);
    }
    cbus_chain_entry_t parent;
    bool known = joined && cbus_chain_entry (self->chain, cbus_block_header (
                     cbus_chain_joined (self->chain, 0))->prev_hash, &parent) == 0
              && parent.height > 0;
    uint64_t parent_ms = known ? parent.header.time_ms : 0;
    for (size_t index = 0; index < joined; index++) {
        uint64_t time_ms = cbus_block_header (cbus_chain_joined (self->chain, index))->time_ms;
        if (known)
            cbus_metrics_observe (self->metrics, CBUS_METRIC_CHAIN_BLOCK_INTERVAL, NULL, NULL,
                                  time_ms > parent_ms ? (double) (time_ms - parent_ms) / 1000.0 : 0);
        parent_ms = time_ms;
        known = true;
    }
    s_metrics_tip (self);
}

static void s_storage_changed (cbus_chainstore_t *self);

static void
s_handle_block_submit (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_block_submit_t msg;
    char reason [CBUS_REASON_MAX] = "";
    if (cbus_block_submit_decode (cbus_request_map (request), &msg, reason)) {
        s_refuse_invalid (self, request, "BLOCK.SUBMIT needs a block");
        return;
    }
    //  A paused store takes nothing: refused before the checks cost
    //  anything, and long before a write would be tried.
    cbus_store_t *store = cbus_chain_store (self->chain);
    cbus_code_t paused;
    if (!s_writable (self, reason, &paused)) {
        zsys_info ("block refused unchecked size=%zu code=%s reason=\"%s\"", msg.block.size,
                   cbus_code_name (paused), reason);
        cbus_reply_refuse (self->router, request, CBUS_STATUS_ERROR, paused,
                           "chainbus-chainstore cannot store blocks: %s", reason);
        return;
    }
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_code_t code = CBUS_CODE_INTERNAL;
    cbus_chain_result_t result = cbus_chain_submit (self->chain, msg.block.data, msg.block.size,
                                                    hash, &code, reason);
    char hex [CBUS_HASH_HEX];
    cbus_hash_hex (hash, hex);
    if (result == CBUS_CHAIN_FAILED && code == CBUS_CODE_STORAGE
    &&  cbus_store_fault (store) == CBUS_STORE_NO_SPACE) {
        code = CBUS_CODE_NO_SPACE;
        snprintf (reason, sizeof (reason), "chainbus-chainstore could not store the block: %.180s",
                  cbus_store_error (store));
    }
    if (result == CBUS_CHAIN_INVALID) {
        zsys_info ("block refused hash=%s code=%s reason=\"%s\"", hex, cbus_code_name (code), reason);
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, code, "%s", reason);
        return;
    }
    if (result == CBUS_CHAIN_FAILED) {
        zsys_error ("block not stored hash=%s code=%s reason=\"%s\"", hex, cbus_code_name (code),
                    reason);
        cbus_reply_refuse (self->router, request, CBUS_STATUS_ERROR, code, "%s", reason);
        s_storage_changed (self);
        return;
    }
    cbus_chain_entry_t entry = {0};
    cbus_chain_entry (self->chain, hash, &entry);
    if (result == CBUS_CHAIN_CONNECTED) {
        //  Durable now: the batch was synced before submit returned.
        s_publish_changes (self);
        s_metrics_connected (self);
        size_t joined = cbus_chain_joined_count (self->chain);
        zsys_info ("block connected height=%" PRIu64 " hash=%s txs=%zu", entry.height, hex,
                   joined ? cbus_block_tx_count (cbus_chain_joined (self->chain, joined - 1)) : 0);
    }
    else
    if (result == CBUS_CHAIN_SIDE)
        zsys_info ("block stored on a side branch height=%" PRIu64 " hash=%s", entry.height, hex);
    cbus_block_submit_reply_t reply = {
        .hash = hash, .height = entry.height,
        .status = cbus_str (result == CBUS_CHAIN_CONNECTED ? "connected"
                          : result == CBUS_CHAIN_DUPLICATE ? "duplicate" : "side")
    };
    cbus_reply_send_msg (self->router, request, &cbus_block_submit_reply_def, &reply,
                         &self->reply);
}

static void
s_handle_locator (cbus_chainstore_t *self, cbus_request_t *request)
{
    uint8_t hashes [CBUS_LOCATOR_MAX][CBUS_HASH_BYTES];
    cbus_locator_reply_t reply = {
        .hashes = { .count = (uint32_t) cbus_chain_locator (self->chain, hashes), .items = hashes }
    };
    cbus_reply_send_msg (self->router, request, &cbus_locator_reply_def, &reply, &self->reply);
}

static void
s_handle_headers (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_headers_t msg;
    char reason [CBUS_REASON_MAX];
    if (cbus_headers_decode (cbus_request_map (request), &msg, reason)
    ||  msg.locator.count > CBUS_LOCATOR_MAX) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "HEADERS needs a locator of at most %d hashes", CBUS_LOCATOR_MAX);
        return;
    }
    uint64_t max = msg.has_max && msg.max < CBUS_CHAINSTORE_HEADERS_MAX
                 ? msg.max : CBUS_CHAINSTORE_HEADERS_MAX;
    uint8_t locator [CBUS_LOCATOR_MAX][CBUS_HASH_BYTES];
    for (uint32_t index = 0; index < msg.locator.count; index++)
        memcpy (locator [index], cbus_list_hash (&msg.locator, index), CBUS_HASH_BYTES);
    uint64_t start = cbus_chain_fork_point (self->chain, (const uint8_t (*) [CBUS_HASH_BYTES]) locator,
                                            msg.locator.count) + 1;
    cbus_chain_entry_t tip;
    cbus_chain_tip (self->chain, &tip);
    uint64_t end = start + max - 1 < tip.height ? start + max - 1 : tip.height;
    size_t count = max > 0 && end >= start ? (size_t) (end - start + 1) : 0;
    uint8_t (*headers) [CBUS_HEADER_BYTES] =
        (uint8_t (*) [CBUS_HEADER_BYTES]) malloc ((count ? count : 1) * CBUS_HEADER_BYTES);
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
        cbus_header_encode (&entry.header, headers [index]);
    }
    cbus_headers_reply_t reply = {
        .start = start, .headers = { .count = (uint32_t) count, .items = headers }
    };
    cbus_reply_send_msg (self->router, request, &cbus_headers_reply_def, &reply, &self->reply);
    free (headers);
}

static void
s_handle_blocks_have (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_blocks_have_t msg;
    char reason [CBUS_REASON_MAX];
    if (cbus_blocks_have_decode (cbus_request_map (request), &msg, reason)
    ||  msg.hashes.count > CBUS_CHAINSTORE_HEADERS_MAX) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "BLOCKS.HAVE needs at most %d hashes", CBUS_CHAINSTORE_HEADERS_MAX);
        return;
    }
    bool have [CBUS_CHAINSTORE_HEADERS_MAX];
    for (uint32_t index = 0; index < msg.hashes.count; index++) {
        cbus_chain_entry_t entry;
        have [index] = cbus_chain_entry (self->chain, cbus_list_hash (&msg.hashes, index),
                                         &entry) == 0;
    }
    cbus_blocks_have_reply_t reply = { .have = { .count = msg.hashes.count, .items = have } };
    cbus_reply_send_msg (self->router, request, &cbus_blocks_have_reply_def, &reply,
                         &self->reply);
}

static void
s_handle_blocks_get (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_blocks_get_t msg;
    char reason [CBUS_REASON_MAX];
    if (cbus_blocks_get_decode (cbus_request_map (request), &msg, reason)
    ||  msg.hashes.count > CBUS_CHAINSTORE_BLOCKS_MAX) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID,
                           "BLOCKS.GET needs at most %d hashes", CBUS_CHAINSTORE_BLOCKS_MAX);
        return;
    }
    uint64_t max_bytes = msg.has_max_bytes ? msg.max_bytes : CBUS_CHAINSTORE_BLOCKS_GET_BYTES;
    //  Blocks we have, in the order asked, until the byte budget is spent
    //  or one is missing.
    s_blocks_t blocks = {0};
    int rc = 0;
    for (uint32_t index = 0; index < msg.hashes.count
                          && (blocks.total == 0 || blocks.total < max_bytes); index++) {
        char *bytes = NULL;
        size_t size = 0;
        rc = cbus_chain_block_by_hash (self->chain, cbus_list_hash (&msg.hashes, index),
                                       &bytes, &size);
        if (rc || !bytes || (rc = s_blocks_append (&blocks, bytes, size)))
            break;
    }
    if (rc == 0) {
        cbus_blocks_get_reply_t reply = { .blocks = s_blocks_list (&blocks) };
        cbus_reply_send_msg (self->router, request, &cbus_blocks_get_reply_def, &reply,
                             &self->reply);
    }
    else
        s_refuse_storage (self, request, "a block asked for");
    s_blocks_free (&blocks);
}

typedef void (s_handler_fn) (cbus_chainstore_t *self, cbus_request_t *request);

static void
s_handle_backup (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_chainstore_backup_handle (self->backup, request);
}

static void
s_handle_backup_cancel (cbus_chainstore_t *self, cbus_request_t *request)
{
    cbus_chainstore_backup_cancel (self->backup, request);
}

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
    { CBUS_CMD_STORE_BACKUP, s_handle_backup },
    { CBUS_CMD_STORE_BACKUP_CANCEL, s_handle_backup_cancel },
};

//  Publish chain.storage when the store stopped or started taking
//  writes, or when the kind of fault that pauses it changed (a full disk
//  became a failed write).
static void
s_storage_changed (cbus_chainstore_t *self)
{
    char storage [CBUS_REASON_MAX] = "";
    cbus_code_t code;
    bool writable = s_writable (self, storage, &code);
    if (writable == !self->paused && (writable || code == self->paused_code))
        return;
    self->paused = !writable;
    self->paused_code = code;
    cbus_chain_storage_t event = {
        .writable = writable, .storage = cbus_str (storage),
        .has_storage_code = !writable, .storage_code = cbus_str (cbus_code_name (code))
    };
    if (cbus_pub_send_msg (self->pub, &cbus_chain_storage_def, &event, &self->event))
        zsys_warning ("could not publish %s: %s", CBUS_TOPIC_CHAIN_STORAGE,
                      zmq_strerror (zmq_errno ()));
}

//  Every CBUS_CHAINSTORE_PROBE_MS: pause the store on a full disk, or
//  resume it once there is room (the store logs both), and say so.
static int
s_on_probe (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    cbus_chainstore_t *self = (cbus_chainstore_t *) arg;
    cbus_store_probe (cbus_chain_store (self->chain));
    s_storage_changed (self);
    return 0;
}

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
    if (!handler && request->decoded && cbus_chainstore_read_handle (self->read, request))
        ;                               //  Answered by cbus_chainstore_read.c
    else
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
    cbus_pow_rule_t rule = cbus_config_pow_rule (config);
    cbus_store_fault_t fault = CBUS_STORE_OK;
    //  A lock held by another process (an operator's `chainbus verify`,
    //  or our last run still closing) is waited for a few seconds, then
    //  a transient failure: main exits 1 and is restarted.
    for (int tries = 0; ; tries++) {
        self->chain = cbus_chain_open (path, self->network, &rule,
                                       (size_t) cbus_config_int (config, "chainstore/cache_mb"),
                                       (uint64_t) cbus_config_int (config, "chainstore/max_future_ms"),
                                       &fault, reason);
        if (self->chain || fault != CBUS_STORE_LOCKED || tries >= CBUS_SERVICE_LOCK_TRIES)
            break;
        zclock_sleep (CBUS_SERVICE_LOCK_WAIT_MS);
    }
    if (!self->chain) {
        cbus_service_fault (cbus_service_transient_store (fault), "%s", reason);
        goto failed;
    }
    cbus_store_set_reserve (cbus_chain_store (self->chain),
                            (uint64_t) cbus_config_int (config, "node/disk_reserve_mb") << 20);
    self->router = cbus_service_router (self->endpoint, CBUS_MSG_MAX_BYTES, reason);
    if (!self->router)
        goto failed;
    self->backup = cbus_chainstore_backup_new (self->loop, self->router, self->chain,
                                               self->damaged, sizeof (self->damaged));
    self->read = cbus_chainstore_read_new (self->router, self->chain, s_read_refused, self);
    if (!self->backup || !self->read)
        goto failed;                    //  Out of memory
    self->pub = cbus_pub_new (bus, "chainstore");
    if (!self->pub) {
        cbus_fail (reason, "cannot connect to the bus at %s", bus);
        goto failed;
    }
    if (!(self->metrics = cbus_metrics_new ())) {
        cbus_fail (reason, "out of memory");
        goto failed;
    }
    cbus_pub_set_metrics (self->pub, self->metrics);
    //  Scraped as 0 before the first block comes.
    cbus_metric_t zero [] = { CBUS_METRIC_CHAIN_BLOCKS_CONNECTED,
        CBUS_METRIC_CHAIN_BLOCKS_DISCONNECTED, CBUS_METRIC_CHAIN_REORG_DEPTH,
        CBUS_METRIC_CHAIN_BLOCK_INTERVAL };
    for (size_t index = 0; index < sizeof (zero) / sizeof (zero [0]); index++)
        cbus_metrics_touch (self->metrics, zero [index], NULL, NULL);
    s_metrics_tip (self);
    //  Stop on $TERM from main only, not on a signal: see cbus_service.h.
    zloop_set_nonstop (self->loop, true);
    if (zloop_reader (self->loop, self->router, s_on_request, self)
    ||  zloop_timer (self->loop, CBUS_HEARTBEAT_MS, 0, cbus_service_on_heartbeat,
                     self->pub) == -1
    ||  zloop_timer (self->loop, CBUS_CHAINSTORE_PROBE_MS, 0, s_on_probe, self) == -1) {
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
    cbus_service_fault (streq (reason, "out of memory"), "%s", reason);
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
        cbus_chainstore_backup_destroy (&self->backup);
        cbus_chainstore_read_destroy (&self->read);
        zloop_destroy (&self->loop);
        zsock_destroy (&self->router);
        cbus_pub_destroy (&self->pub);
        cbus_metrics_destroy (&self->metrics);
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
    if (self && zloop_reader (self->loop, pipe, cbus_service_on_pipe, self) == 0) {
        cbus_service_ready (self->loop);
        zloop_start (self->loop);
    }
    else
        cbus_service_fail (pipe, "chainstore: not started");
    cbus_chainstore_destroy (&self);
}
