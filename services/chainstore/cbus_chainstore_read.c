/*  =========================================================================
    cbus_chainstore_read - the chainstore's explorer reads (HISTORY,
    BLOCK.LIST, BLOCK.TXS)
    =========================================================================
*/
#include "cbus_chainstore.h"
#include "cbus_chainstore_read.h"

//  Slots of the summary table (direct-mapped by the hash's first bytes).
#define S_SLOTS 1024

//  What a summary needs beyond the index: kept per block hash.
typedef struct {
    bool used;                          //  The slot holds a block
    uint8_t hash [CBUS_HASH_BYTES];     //  Which
    uint8_t header [CBUS_HEADER_BYTES]; //  Its header bytes
    uint64_t tx_count;                  //  Its transactions
    uint64_t size;                      //  Its bytes as stored
} s_slot_t;

struct _cbus_chainstore_read_t {
    zsock_t *router;                    //  Where requests come from (borrowed)
    cbus_chain_t *chain;                //  What they read (borrowed)
    cbus_chainstore_refuse_fn *refuse_storage;  //  The chainstore's storage refusal
    void *arg;                          //  ... its argument
    cbus_buf_t reply;                   //  Reply buffer
    s_slot_t *slots;                    //  Summary table, S_SLOTS
    cbus_store_batch_t *backfill;       //  Summary records to write, or NULL
    uint64_t backfill_count;            //  ... how many
    uint64_t backfilled;                //  Summary records written since start
    bool bad_logged;                    //  A bad summary record was logged
};

cbus_chainstore_read_t *
cbus_chainstore_read_new (zsock_t *router, cbus_chain_t *chain,
                          cbus_chainstore_refuse_fn *refuse_storage, void *arg)
{
    cbus_chainstore_read_t *self =
        (cbus_chainstore_read_t *) zmalloc (sizeof (cbus_chainstore_read_t));
    if (!self)
        return NULL;
    self->slots = (s_slot_t *) calloc (S_SLOTS, sizeof (s_slot_t));
    if (!self->slots) {
        free (self);
        return NULL;
    }
    self->router = router;
    self->chain = chain;
    self->refuse_storage = refuse_storage;
    self->arg = arg;
    return self;
}

void
cbus_chainstore_read_destroy (cbus_chainstore_read_t **self_p)
{
    assert (self_p);
    cbus_chainstore_read_t *self = *self_p;
    if (self) {
        cbus_buf_free (&self->reply);
        cbus_store_batch_destroy (&self->backfill);
        free (self->slots);
        free (self);
        *self_p = NULL;
    }
}

static void
s_refuse_invalid (cbus_chainstore_read_t *self, cbus_request_t *request, const char *reason)
{
    cbus_reply_refuse (self->router, request, CBUS_STATUS_INVALID, CBUS_CODE_INVALID, "%s", reason);
}

static void
s_refuse_memory (cbus_chainstore_read_t *self, cbus_request_t *request)
{
    zsys_error ("out of memory answering %s", request->command);
    cbus_reply_refuse (self->router, request, CBUS_STATUS_ERROR, CBUS_CODE_INTERNAL,
                       "The chain store ran out of memory");
}

//  --------------------------------------------------------------------------
//  HISTORY

//  The block a HISTORY reply reads its items from: the last one read,
//  kept for the next item (a user's items are often in one block, and a
//  block of 10,000 transactions costs about half a millisecond to read
//  and unpack: docs/performance.md).
typedef struct {
    uint8_t hash [CBUS_HASH_BYTES];     //  Which block, when bytes
    char *bytes;                        //  Its bytes (cbus_store_free), or NULL
    msgpack_unpacked unpacked;          //  ... unpacked
    const msgpack_object *txs;          //  ... its txs array, or NULL
} s_reader_t;

static void
s_reader_release (s_reader_t *reader)
{
    if (reader->bytes) {
        msgpack_unpacked_destroy (&reader->unpacked);
        cbus_store_free (reader->bytes);
        reader->bytes = NULL;
    }
    reader->txs = NULL;
}

//  The bytes of the transaction at a position of an active block
//  (caller frees), read without checking the block again: it was checked
//  when stored. NULL if the store cannot give them.
static uint8_t *
s_tx_at (cbus_chainstore_read_t *self, s_reader_t *reader, uint64_t height, uint32_t index,
         uint8_t block_hash [CBUS_HASH_BYTES], size_t *size_p)
{
    if (cbus_chain_hash_at (self->chain, height, block_hash))
        return NULL;
    if (!reader->bytes || memcmp (reader->hash, block_hash, CBUS_HASH_BYTES)) {
        s_reader_release (reader);
        size_t size = 0;
        if (cbus_chain_block_by_hash (self->chain, block_hash, &reader->bytes, &size)
        ||  !reader->bytes)
            return NULL;
        memcpy (reader->hash, block_hash, CBUS_HASH_BYTES);
        //  Block bytes (cbus_block.h), not a bus message.
        msgpack_unpacked_init (&reader->unpacked);
        size_t offset = 0;
        if (cbus_unpack_next (&reader->unpacked, reader->bytes, size, &offset)
            == MSGPACK_UNPACK_SUCCESS)
            reader->txs = cbus_msg_get (&reader->unpacked.data, "txs");
    }
    const msgpack_object *txs = reader->txs;
    if (!txs || txs->type != MSGPACK_OBJECT_ARRAY || index >= txs->via.array.size
    ||  txs->via.array.ptr [index].type != MSGPACK_OBJECT_BIN)
        return NULL;
    *size_p = txs->via.array.ptr [index].via.bin.size;
    uint8_t *tx = (uint8_t *) malloc (*size_p ? *size_p : 1);
    if (tx)
        memcpy (tx, txs->via.array.ptr [index].via.bin.ptr, *size_p);
    return tx;
}

//  A HISTORY request's rules beyond its definition: a user or a key of
//  1 to CBUS_TX_MAX_FIELD_BYTES bytes of UTF-8, a cursor of both fields,
//  limit brought into 1 to HISTORY_MAX. 0, or -1 with the reason.
static int
s_history_check (cbus_history_t *msg, char *kind, cbus_str_t *name, char *reason)
{
    *kind = msg->has_user ? CBUS_HISTORY_USER : CBUS_HISTORY_KEY;
    *name = msg->has_user ? msg->user : msg->key;
    if (!msg->has_user && !msg->has_key)
        return cbus_fail (reason, "HISTORY needs a user or a key");
    if (!msg->has_before_height)
        msg->before_height = UINT64_MAX;
    else
    if (!msg->has_before_index || msg->before_index > UINT32_MAX)
        return cbus_fail (reason, "HISTORY's cursor is before_height and before_index");
    if (msg->limit == 0 || msg->limit > CBUS_CHAINSTORE_HISTORY_MAX)
        msg->limit = msg->limit ? CBUS_CHAINSTORE_HISTORY_MAX : 1;
    if (name->size == 0 || name->size > CBUS_TX_MAX_FIELD_BYTES
    ||  !cbus_utf8_valid (name->data, name->size))
        return cbus_fail (reason, "A user or key is 1 to %d bytes of UTF-8", CBUS_TX_MAX_FIELD_BYTES);
    return 0;
}

static void
s_handle_history (cbus_chainstore_read_t *self, cbus_request_t *request)
{
    cbus_history_t msg;
    char reason [CBUS_REASON_MAX], kind;
    cbus_str_t name_field;
    if (cbus_history_decode (cbus_request_map (request), &msg, reason)
    ||  s_history_check (&msg, &kind, &name_field, reason)) {
        s_refuse_invalid (self, request, reason);
        return;
    }
    char *name = cbus_strdup_size (name_field.data, name_field.size);
    if (!name) {
        s_refuse_memory (self, request);
        return;
    }
    cbus_chain_history_t found [CBUS_CHAINSTORE_HISTORY_MAX + 1];
    //  One more than asked: whether there is a next page.
    size_t count = cbus_chain_history (self->chain, kind, name, msg.before_height,
                                       (uint32_t) msg.before_index, found, (size_t) msg.limit + 1);
    free (name);
    bool more = count > msg.limit;
    if (more)
        count = (size_t) msg.limit;
    cbus_chain_entry_t tip;
    cbus_chain_tip (self->chain, &tip);
    cbus_history_item_t items [CBUS_CHAINSTORE_HISTORY_MAX];
    uint8_t block_hashes [CBUS_CHAINSTORE_HISTORY_MAX][CBUS_HASH_BYTES];
    size_t filled = 0;
    s_reader_t reader = { .bytes = NULL };
    for (; filled < count; filled++) {
        const cbus_chain_history_t *where = &found [filled];
        cbus_history_item_t *item = &items [filled];
        *item = (cbus_history_item_t) {
            .txid = where->txid, .height = where->height, .index = where->index,
            .block_hash = block_hashes [filled], .confirmations = tip.height - where->height + 1
        };
        item->tx.data = s_tx_at (self, &reader, where->height, where->index,
                                 block_hashes [filled], &item->tx.size);
        if (!item->tx.data)
            break;
    }
    s_reader_release (&reader);
    if (filled == count) {
        cbus_history_reply_t reply = { .items = { .count = (uint32_t) count, .items = items } };
        if (more) {
            reply.has_next = true;
            reply.next.before_height = found [count - 1].height;
            reply.next.before_index = found [count - 1].index;
        }
        cbus_reply_send_msg (self->router, request, &cbus_history_reply_def, &reply,
                             &self->reply);
    }
    else
        self->refuse_storage (self->arg, request, "a transaction its history index names");
    for (size_t index = 0; index < filled; index++)
        free ((void *) items [index].tx.data);
}

//  --------------------------------------------------------------------------
//  Summaries

//  The header bytes and transaction count of stored block bytes: read in
//  place from the canonical encoding ({"header": bin 100, "txs": [...]},
//  the array's count in its header), any other map the long way. 0, or
//  -1 if the bytes are no block.
static int
s_block_shape (const uint8_t *bytes, size_t size, uint8_t header [CBUS_HEADER_BYTES],
               uint64_t *tx_count)
{
    static const uint8_t s_head [] = {
        0x82, 0xa6, 'h', 'e', 'a', 'd', 'e', 'r', 0xc4, CBUS_HEADER_BYTES
    };
    static const uint8_t s_txs [] = { 0xa3, 't', 'x', 's' };
    size_t at = sizeof (s_head) + CBUS_HEADER_BYTES;
    if (size >= at + sizeof (s_txs) + 1 && memcmp (bytes, s_head, sizeof (s_head)) == 0
    &&  memcmp (bytes + at, s_txs, sizeof (s_txs)) == 0) {
        const uint8_t *array = bytes + at + sizeof (s_txs);
        size_t left = size - at - sizeof (s_txs);
        memcpy (header, bytes + sizeof (s_head), CBUS_HEADER_BYTES);
        if ((array [0] & 0xf0) == 0x90) {
            *tx_count = array [0] & 0x0f;
            return 0;
        }
        if (array [0] == 0xdc && left >= 3) {
            *tx_count = ((uint64_t) array [1] << 8) | array [2];
            return 0;
        }
        if (array [0] == 0xdd && left >= 5) {
            *tx_count = ((uint64_t) array [1] << 24) | ((uint64_t) array [2] << 16)
                      | ((uint64_t) array [3] << 8) | array [4];
            return 0;
        }
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    int rc = -1;
    const uint8_t *header_bytes;
    size_t header_size;
    if (cbus_unpack_next (&unpacked, (const char *) bytes, size, &offset) == MSGPACK_UNPACK_SUCCESS
    &&  unpacked.data.type == MSGPACK_OBJECT_MAP
    &&  cbus_msg_get_bin (&unpacked.data, "header", &header_bytes, &header_size) == 0
    &&  header_size == CBUS_HEADER_BYTES) {
        const msgpack_object *txs = cbus_msg_get (&unpacked.data, "txs");
        if (txs && txs->type == MSGPACK_OBJECT_ARRAY) {
            memcpy (header, header_bytes, CBUS_HEADER_BYTES);
            *tx_count = txs->via.array.size;
            rc = 0;
        }
    }
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

static s_slot_t *
s_slot_of (cbus_chainstore_read_t *self, const uint8_t hash [CBUS_HASH_BYTES])
{
    //  A block hash is uniform: its last bytes pick the slot (the first
    //  are zeroes under proof of work).
    size_t index = ((size_t) hash [30] << 8 | hash [31]) % S_SLOTS;
    return &self->slots [index];
}

//  Keep what a summary of these block bytes needs; the slot, or NULL if
//  they are no block.
static s_slot_t *
s_slot_fill (cbus_chainstore_read_t *self, const uint8_t hash [CBUS_HASH_BYTES],
             const uint8_t *bytes, size_t size)
{
    s_slot_t *slot = s_slot_of (self, hash);
    if (s_block_shape (bytes, size, slot->header, &slot->tx_count)) {
        slot->used = false;
        return NULL;
    }
    memcpy (slot->hash, hash, CBUS_HASH_BYTES);
    slot->size = size;
    slot->used = true;
    return slot;
}

//  The block's summary record ('C', cbus_layout.h) into its slot: the
//  slot, or NULL when the store has none or a bad one (outside input: a
//  record of another size, or whose header is not the block's, is
//  treated as missing, logged once a start).
static s_slot_t *
s_slot_read (cbus_chainstore_read_t *self, const uint8_t hash [CBUS_HASH_BYTES])
{
    cbus_layout_key_t key = cbus_layout_hash_key (CBUS_LAYOUT_SUMMARY, hash);
    char *value = NULL;
    size_t size = 0;
    if (cbus_store_get (cbus_chain_store (self->chain), key.bytes, key.size, &value, &size)
    ||  !value)
        return NULL;
    s_slot_t *slot = s_slot_of (self, hash);
    int rc = cbus_layout_summary_decode (value, size, hash, slot->header, &slot->tx_count,
                                         &slot->size);
    cbus_store_free (value);
    if (rc) {
        slot->used = false;
        if (!self->bad_logged) {
            char hex [CBUS_HASH_HEX];
            zsys_warning ("bad summary record block=%s size=%zu: reading the block instead",
                          cbus_hash_hex (hash, hex), size);
            self->bad_logged = true;
        }
        return NULL;
    }
    memcpy (slot->hash, hash, CBUS_HASH_BYTES);
    slot->used = true;
    return slot;
}

//  Queue the summary record of a block that had none (a store made before
//  summary records, or a bad record) for cbus_chainstore_read's next
//  flush: the chainstore is the store's only writer and a block never
//  changes, so a record written later can never disagree with its block.
//  Skipped while the store takes no writes, and for a header that is not
//  the block's (the block's bytes are then damaged: not summarised).
static void
s_backfill (cbus_chainstore_read_t *self, const s_slot_t *slot)
{
    cbus_header_t header;
    uint8_t computed [CBUS_HASH_BYTES], record [CBUS_LAYOUT_SUMMARY_BYTES];
    if (!cbus_store_writable (cbus_chain_store (self->chain), NULL, NULL)
    ||  slot->tx_count > UINT32_MAX
    ||  cbus_header_decode (&header, slot->header, CBUS_HEADER_BYTES))
        return;
    cbus_header_hash (&header, computed);
    if (memcmp (computed, slot->hash, CBUS_HASH_BYTES))
        return;
    if (!self->backfill)
        self->backfill = cbus_store_batch_new ();
    cbus_layout_summary_encode (&header, (uint32_t) slot->tx_count, slot->size, record);
    cbus_layout_key_t key = cbus_layout_hash_key (CBUS_LAYOUT_SUMMARY, slot->hash);
    cbus_store_batch_put (self->backfill, key.bytes, key.size, record, sizeof (record));
    self->backfill_count++;
}

//  Write the queued summary records, not synced (a record lost to a
//  crash is written again the next time). A failed write is logged; the
//  store then pauses as after any failed write (cbus_store.h).
static void
s_backfill_flush (cbus_chainstore_read_t *self)
{
    if (!self->backfill)
        return;
    uint64_t count = self->backfill_count;
    self->backfill_count = 0;
    if (cbus_store_write (cbus_chain_store (self->chain), self->backfill, false))
        zsys_warning ("could not write %" PRIu64 " summary records", count);
    else {
        if (self->backfilled == 0)
            zsys_info ("writing summary records of blocks stored without one "
                       "(a chain store from before them), as they are listed");
        self->backfilled += count;
        zsys_debug ("summary records written count=%" PRIu64 " total=%" PRIu64, count,
                    self->backfilled);
    }
    cbus_store_batch_destroy (&self->backfill);
}

//  The summary of a stored block into summary (its header bytes point
//  into the table: use it before the next lookup): from the table, else
//  the block's summary record, else (no record, or a bad one) the block
//  itself, whose record is then written. 0, or -1 when the store cannot
//  give the block.
static int
s_summary (cbus_chainstore_read_t *self, const uint8_t hash [CBUS_HASH_BYTES], uint64_t height,
           const cbus_chain_entry_t *tip, cbus_block_summary_t *summary)
{
    s_slot_t *slot = s_slot_of (self, hash);
    if (!slot->used || memcmp (slot->hash, hash, CBUS_HASH_BYTES))
        slot = s_slot_read (self, hash);
    if (!slot) {
        char *bytes = NULL;
        size_t size = 0;
        if (cbus_chain_block_by_hash (self->chain, hash, &bytes, &size) || !bytes)
            return -1;
        slot = s_slot_fill (self, hash, (const uint8_t *) bytes, size);
        cbus_store_free (bytes);
        if (!slot)
            return -1;
        s_backfill (self, slot);
    }
    bool active = cbus_chain_is_active (self->chain, hash);
    *summary = (cbus_block_summary_t) {
        .hash = slot->hash, .height = height, .header = slot->header,
        .tx_count = slot->tx_count, .size = slot->size,
        .confirmations = active && tip->height >= height ? tip->height - height + 1 : 0,
        .in_active_chain = active
    };
    return 0;
}

//  BLOCK.LIST {before?, limit}: the active blocks below before (the tip
//  and down without it), at most limit (brought into 1 to LIST_MAX);
//  next is the height to pass as before for the page after, nil at 0.
static void
s_handle_block_list (cbus_chainstore_read_t *self, cbus_request_t *request)
{
    cbus_block_list_t msg;
    char reason [CBUS_REASON_MAX];
    if (cbus_block_list_decode (cbus_request_map (request), &msg, reason)) {
        s_refuse_invalid (self, request, "BLOCK.LIST needs a limit (int) and takes before (int)");
        return;
    }
    uint64_t limit = msg.limit == 0 ? 1 : msg.limit > CBUS_CHAINSTORE_LIST_MAX
                   ? CBUS_CHAINSTORE_LIST_MAX : msg.limit;
    cbus_chain_entry_t tip;
    cbus_chain_tip (self->chain, &tip);
    uint64_t before = msg.has_before && msg.before <= tip.height ? msg.before : tip.height + 1;
    cbus_block_summary_t summaries [CBUS_CHAINSTORE_LIST_MAX];
    //  Copies: a later lookup may reuse a slot an earlier one pointed to.
    uint8_t hashes [CBUS_CHAINSTORE_LIST_MAX][CBUS_HASH_BYTES];
    uint8_t headers [CBUS_CHAINSTORE_LIST_MAX][CBUS_HEADER_BYTES];
    uint32_t count = 0;
    for (uint64_t height = before; height > 0 && count < limit; height--, count++) {
        cbus_block_summary_t *summary = &summaries [count];
        if (cbus_chain_hash_at (self->chain, height - 1, hashes [count])
        ||  s_summary (self, hashes [count], height - 1, &tip, summary)) {
            char what [64];
            snprintf (what, sizeof (what), "block %" PRIu64, height - 1);
            self->refuse_storage (self->arg, request, what);
            return;
        }
        memcpy (headers [count], summary->header, CBUS_HEADER_BYTES);
        summary->hash = hashes [count];
        summary->header = headers [count];
    }
    uint64_t lowest = before - count;
    cbus_block_list_reply_t reply = {
        .blocks = { .count = count, .items = summaries },
        .next = lowest, .has_next = lowest > 0
    };
    cbus_reply_send_msg (self->router, request, &cbus_block_list_reply_def, &reply, &self->reply);
}

//  --------------------------------------------------------------------------
//  BLOCK.TXS {height? | hash?, start, limit}

//  The block a BLOCK.TXS names: 0 with its hash and height, or -1 once
//  the request is answered (not found).
static int
s_txs_block (cbus_chainstore_read_t *self, cbus_request_t *request, const cbus_block_txs_t *msg,
             uint8_t hash [CBUS_HASH_BYTES], uint64_t *height)
{
    cbus_chain_entry_t entry;
    if (msg->has_height ? cbus_chain_hash_at (self->chain, msg->height, hash)
                        : (memcpy (hash, msg->hash, CBUS_HASH_BYTES), 0)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND,
                           "No block at height %" PRIu64, msg->height);
        return -1;
    }
    if (cbus_chain_entry (self->chain, hash, &entry)) {
        cbus_reply_refuse (self->router, request, CBUS_STATUS_NOTFOUND, CBUS_CODE_NOT_FOUND,
                           "Block not found");
        return -1;
    }
    *height = entry.height;
    return 0;
}

static void
s_handle_block_txs (cbus_chainstore_read_t *self, cbus_request_t *request)
{
    cbus_block_txs_t msg;
    char reason [CBUS_REASON_MAX];
    uint8_t hash [CBUS_HASH_BYTES];
    uint64_t height;
    if (cbus_block_txs_decode (cbus_request_map (request), &msg, reason)
    ||  !(msg.has_height || msg.has_hash)) {
        s_refuse_invalid (self, request, "BLOCK.TXS needs a height (int) or a hash (32-byte bin), "
                          "start and limit (int)");
        return;
    }
    if (s_txs_block (self, request, &msg, hash, &height))
        return;
    uint64_t limit = msg.limit == 0 ? 1 : msg.limit > CBUS_CHAINSTORE_TXS_MAX
                   ? CBUS_CHAINSTORE_TXS_MAX : msg.limit;
    char *bytes = NULL;
    size_t size = 0;
    if (cbus_chain_block_by_hash (self->chain, hash, &bytes, &size) || !bytes) {
        self->refuse_storage (self->arg, request, "an indexed block");
        return;
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    const msgpack_object *txs = NULL;
    if (s_slot_fill (self, hash, (const uint8_t *) bytes, size)
    &&  cbus_unpack_next (&unpacked, bytes, size, &offset) == MSGPACK_UNPACK_SUCCESS)
        txs = cbus_msg_get (&unpacked.data, "txs");
    cbus_bytes_t *items = (cbus_bytes_t *) malloc (limit * sizeof (cbus_bytes_t));
    cbus_chain_entry_t tip;
    cbus_chain_tip (self->chain, &tip);
    cbus_block_summary_t summary;
    if (!txs || txs->type != MSGPACK_OBJECT_ARRAY || !items
    ||  s_summary (self, hash, height, &tip, &summary)) {
        if (items)
            self->refuse_storage (self->arg, request, "an indexed block");
        else
            s_refuse_memory (self, request);
        goto cleanup;
    }
    //  The slice: limit transactions from start, or fewer once their
    //  bytes pass the budget (at least one).
    uint32_t count = 0, total = txs->via.array.size;
    uint64_t at = msg.start, spent = 0;
    for (; at < total && count < limit && (count == 0 || spent < CBUS_CHAINSTORE_TXS_BYTES);
           at++) {
        const msgpack_object *item = &txs->via.array.ptr [at];
        if (item->type != MSGPACK_OBJECT_BIN) {
            self->refuse_storage (self->arg, request, "a transaction of an indexed block");
            goto cleanup;
        }
        items [count++] = (cbus_bytes_t) { (const uint8_t *) item->via.bin.ptr, item->via.bin.size };
        spent += item->via.bin.size;
    }
    cbus_block_txs_reply_t reply = {
        .block = summary, .start = msg.start, .txs = { .count = count, .items = items },
        .next = at, .has_next = at < total
    };
    cbus_reply_send_msg (self->router, request, &cbus_block_txs_reply_def, &reply, &self->reply);
cleanup:
    free (items);
    msgpack_unpacked_destroy (&unpacked);
    cbus_store_free (bytes);
}

bool
cbus_chainstore_read_handle (cbus_chainstore_read_t *self, cbus_request_t *request)
{
    if (streq (request->command, CBUS_CMD_HISTORY))
        s_handle_history (self, request);
    else
    if (streq (request->command, CBUS_CMD_BLOCK_LIST))
        s_handle_block_list (self, request);
    else
    if (streq (request->command, CBUS_CMD_BLOCK_TXS))
        s_handle_block_txs (self, request);
    else
        return false;
    s_backfill_flush (self);
    return true;
}
