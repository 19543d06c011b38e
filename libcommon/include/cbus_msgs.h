/*  =========================================================================
    cbus_msgs - one definition of every message on the bus

    Each request, reply and event body is defined once, in the table
    below, as its fields in wire order. From that one table come a C
    struct per message (cbus_<name>_t), its encode/decode pair
    (cbus_<name>_encode, cbus_<name>_decode), the descriptor the generic
    codec walks (cbus_<name>_def), and the list that docs/bus.md is
    checked against (cbus_msgs_print). The settings table of cbus_config
    is the model: one list, several uses.

    A field is F (name, KIND, PRESENCE, ELEMENT):
      KIND      C member          wire
      U64       uint64_t          positive int
      I64       int64_t           int
      BOOL      bool              bool
      STR       cbus_str_t        str (UTF-8 not checked: a reader's job)
      BIN       cbus_bytes_t      bin
      HASH      const uint8_t *   bin of 32 bytes (hashes, txids, chain work)
      HEADER    const uint8_t *   bin of 100 bytes (a block header)
      LIST      cbus_list_t       array of ELEMENT (HASH, BIN, BOOL, STR, HEADER, U64)
      MAPS      cbus_list_t       array of maps, each a cbus_<ELEMENT>_t
      MAP       cbus_<ELEMENT>_t  map
    PRESENCE: REQ (always there), OPT (left out when has_<name> is false),
    NIL (always there; nil when has_<name> is false). ELEMENT is "-" when
    the kind takes none.

    Decoding borrows: strings, bytes, hashes and lists point into the
    msgpack object, valid as long as it is. Keys the definition does not
    name are ignored (a newer sender may add some); a missing REQ field,
    or a field of another type, fails with a reason naming it. Lists are
    checked element by element when decoded (a HASH list holds only
    32-byte bins), so reading them afterwards cannot fail; a MAPS
    element is decoded when it is read (cbus_list_decode_map).

    Encoding writes the fields in table order, so that a message has one
    encoding: the bytes are those the services wrote by hand before.
    =========================================================================
*/
#ifndef CBUS_MSGS_H_INCLUDED
#define CBUS_MSGS_H_INCLUDED

//  --------------------------------------------------------------------------
//  Field values

//  A string or byte run, borrowed.
typedef struct {
    const char *data;               //  Not NUL-terminated when decoded
    size_t size;                    //  Bytes
} cbus_str_t;

typedef struct {
    const uint8_t *data;            //  The bytes
    size_t size;                    //  How many
} cbus_bytes_t;

typedef struct _cbus_msgdef_t cbus_msgdef_t;

//  Item index of a list being encoded from something that is not a C
//  array (the txids of a block, frames in a list): returns the item's
//  bytes (HASH, BIN, STR, HEADER lists) or its struct (MAPS lists).
typedef const void * (cbus_list_item_fn) (const void *source, uint32_t index, size_t *size);

//  A list field. To encode, set count and either items (a C array of the
//  element: uint8_t [32] rows for HASH, [100] for HEADER, cbus_bytes_t
//  for BIN, cbus_str_t for STR, bool for BOOL, uint64_t for U64, the
//  element's struct for MAPS) or item + source. Decoding sets count and decoded.
typedef struct {
    uint32_t count;                 //  Items
    const void *items;              //  Encode: a C array of them
    cbus_list_item_fn *item;        //  Encode: or a function giving each
    const void *source;             //  Its argument
    const msgpack_object *decoded;  //  Decode: the items, type-checked
} cbus_list_t;

//  Reading a decoded list (index < count; types were checked).
const uint8_t *
    cbus_list_hash (const cbus_list_t *self, uint32_t index);
cbus_bytes_t
    cbus_list_bytes (const cbus_list_t *self, uint32_t index);
cbus_str_t
    cbus_list_str (const cbus_list_t *self, uint32_t index);
bool
    cbus_list_bool (const cbus_list_t *self, uint32_t index);
uint64_t
    cbus_list_u64 (const cbus_list_t *self, uint32_t index);
//  Decode item index of a MAPS list into item (the element's struct).
//  0, or -1 with a reason.
int
    cbus_list_decode_map (const cbus_list_t *self, uint32_t index,
                          const cbus_msgdef_t *element, void *item, char *reason)
    __attribute__ ((warn_unused_result));

//  A NUL-terminated string as a field value.
cbus_str_t
    cbus_str (const char *text);
//  True when a decoded string equals text.
bool
    cbus_str_eq (cbus_str_t value, const char *text);

//  --------------------------------------------------------------------------
//  The messages. Sub-maps first: a MAP or MAPS field names one above it.

//  chainstore HISTORY: one item and the cursor to the next page
#define CBUS_HISTORY_ITEM_FIELDS(F) \
    F (txid,           HASH,   REQ, -) \
    F (height,         U64,    REQ, -) \
    F (index,          U64,    REQ, -) \
    F (block_hash,     HASH,   REQ, -) \
    F (confirmations,  U64,    REQ, -) \
    F (tx,             BIN,    REQ, -)
#define CBUS_HISTORY_CURSOR_FIELDS(F) \
    F (before_height,  U64,    REQ, -) \
    F (before_index,   U64,    REQ, -)
//  Every event: the first keys of its body (cbus_pub_begin writes them)
#define CBUS_EVENT_SOURCE_FIELDS(F) \
    F (src,            STR,    REQ, -) \
    F (boot,           U64,    REQ, -) \
    F (topic_seq,      U64,    OPT, -)
//  peersync PEER.LIST: one peer, and the sync in progress
#define CBUS_PEER_ENTRY_FIELDS(F) \
    F (address,        STR,    REQ, -) \
    F (state,          STR,    REQ, -) \
    F (height,         U64,    REQ, -) \
    F (work,           STR,    REQ, -) \
    F (node_id,        STR,    REQ, -) \
    F (direction,      STR,    REQ, -) \
    F (redundant,      BOOL,   REQ, -) \
    F (score,          I64,    REQ, -) \
    F (reason,         STR,    REQ, -) \
    F (last_seen_ms,   U64,    REQ, -) \
    F (banned_for_ms,  I64,    REQ, -)
#define CBUS_SYNC_STATE_FIELDS(F) \
    F (syncing,        BOOL,   REQ, -) \
    F (peer,           STR,    OPT, -) \
    F (target_height,  U64,    OPT, -) \
    F (blocks_left,    U64,    OPT, -) \
    F (blocks_done,    U64,    OPT, -)
//  peersync RESOLVE: one peer's outcome
#define CBUS_RESOLVE_ENTRY_FIELDS(F) \
    F (address,        STR,    REQ, -) \
    F (status,         STR,    REQ, -) \
    F (height,         U64,    REQ, -) \
    F (work,           STR,    REQ, -) \
    F (node_id,        STR,    REQ, -)

//  Every service
#define CBUS_EMPTY_FIELDS(F)
#define CBUS_REFUSAL_FIELDS(F) \
    F (code,           STR,    REQ, -) \
    F (reason,         STR,    REQ, -)
#define CBUS_PONG_FIELDS(F) \
    F (role,           STR,    REQ, -) \
    F (pid,            U64,    REQ, -)

//  chainstore
#define CBUS_TIP_REPLY_FIELDS(F) \
    F (height,         U64,    REQ, -) \
    F (hash,           HASH,   REQ, -) \
    F (work,           HASH,   REQ, -) \
    F (time_ms,        U64,    REQ, -) \
    F (network,        STR,    REQ, -) \
    F (genesis,        HASH,   REQ, -) \
    F (bits,           U64,    REQ, -) \
    F (storage,        STR,    OPT, -) \
    F (storage_code,   STR,    OPT, -) \
    F (next_bits,      U64,    OPT, -) \
    F (block_interval, U64,    OPT, -) \
    F (damaged,        STR,    OPT, -)
#define CBUS_BLOCK_GET_FIELDS(F) \
    F (height,         U64,    OPT, -) \
    F (hash,           HASH,   OPT, -)
#define CBUS_BLOCK_GET_REPLY_FIELDS(F) \
    F (block,          BIN,    REQ, -) \
    F (height,         U64,    REQ, -) \
    F (hash,           HASH,   REQ, -) \
    F (confirmations,  U64,    REQ, -) \
    F (in_active_chain, BOOL,  REQ, -)
#define CBUS_CHAIN_PAGE_FIELDS(F) \
    F (from,           U64,    REQ, -) \
    F (to,             U64,    REQ, -) \
    F (max_bytes,      U64,    REQ, -)
#define CBUS_CHAIN_PAGE_REPLY_FIELDS(F) \
    F (blocks,         LIST,   REQ, BIN) \
    F (next,           U64,    REQ, -)
#define CBUS_TXID_FIELDS(F) \
    F (txid,           HASH,   REQ, -)
#define CBUS_CHAIN_TX_REPLY_FIELDS(F) \
    F (tx,             BIN,    REQ, -) \
    F (block_hash,     HASH,   REQ, -) \
    F (height,         U64,    REQ, -) \
    F (index,          U64,    REQ, -) \
    F (confirmations,  U64,    REQ, -)
#define CBUS_TX_KNOWN_FIELDS(F) \
    F (txids,          LIST,   REQ, HASH)
#define CBUS_TX_KNOWN_REPLY_FIELDS(F) \
    F (known,          LIST,   REQ, BOOL)
#define CBUS_BLOCK_SUBMIT_FIELDS(F) \
    F (block,          BIN,    REQ, -)
#define CBUS_BLOCK_SUBMIT_REPLY_FIELDS(F) \
    F (hash,           HASH,   REQ, -) \
    F (height,         U64,    REQ, -) \
    F (status,         STR,    REQ, -)
#define CBUS_HASHES_FIELDS(F) \
    F (hashes,         LIST,   REQ, HASH)
#define CBUS_HEADERS_FIELDS(F) \
    F (locator,        LIST,   REQ, HASH) \
    F (max,            U64,    OPT, -)
#define CBUS_HEADERS_REPLY_FIELDS(F) \
    F (start,          U64,    REQ, -) \
    F (headers,        LIST,   REQ, HEADER)
#define CBUS_BLOCKS_HAVE_REPLY_FIELDS(F) \
    F (have,           LIST,   REQ, BOOL)
#define CBUS_HISTORY_FIELDS(F) \
    F (user,           STR,    OPT, -) \
    F (key,            STR,    OPT, -) \
    F (limit,          U64,    REQ, -) \
    F (before_height,  U64,    OPT, -) \
    F (before_index,   U64,    OPT, -)
#define CBUS_HISTORY_REPLY_FIELDS(F) \
    F (items,          MAPS,   REQ, history_item) \
    F (next,           MAP,    NIL, history_cursor)
#define CBUS_BLOCKS_GET_FIELDS(F) \
    F (hashes,         LIST,   REQ, HASH) \
    F (max_bytes,      U64,    OPT, -)
#define CBUS_BLOCKS_REPLY_FIELDS(F) \
    F (blocks,         LIST,   REQ, BIN)

//  chainstore and mempool: a point-in-time copy of the store (chainbus
//  backup); the reply comes once the copy is durable, with the tip it
//  holds (the mempool's: the tip its pool reflects, if known)
#define CBUS_STORE_BACKUP_FIELDS(F) \
    F (path,           STR,    REQ, -)
//  the chainstore's takes the tip of the pool's copy: the chain copy is
//  refused (stale) unless that block is on its active chain
#define CBUS_CHAIN_BACKUP_FIELDS(F) \
    F (path,           STR,    REQ, -) \
    F (after_tip,      HASH,   OPT, -)
//  stop a copy still being written at path and remove what it wrote
#define CBUS_STORE_BACKUP_CANCEL_FIELDS(F) \
    F (path,           STR,    REQ, -)
#define CBUS_STORE_BACKUP_CANCEL_REPLY_FIELDS(F) \
    F (cancelled,      BOOL,   REQ, -)
#define CBUS_STORE_BACKUP_REPLY_FIELDS(F) \
    F (entries,        U64,    REQ, -) \
    F (bytes,          U64,    REQ, -) \
    F (digest,         HASH,   REQ, -) \
    F (ms,             U64,    REQ, -) \
    F (height,         U64,    OPT, -) \
    F (tip,            HASH,   OPT, -)

//  mempool
#define CBUS_TX_SUBMIT_FIELDS(F) \
    F (tx,             BIN,    REQ, -)
#define CBUS_TX_SUBMIT_REPLY_FIELDS(F) \
    F (txid,           HASH,   REQ, -) \
    F (height,         U64,    REQ, -) \
    F (duplicate,      BOOL,   REQ, -) \
    F (confirmed,      BOOL,   REQ, -)
#define CBUS_POOL_TX_REPLY_FIELDS(F) \
    F (tx,             BIN,    REQ, -) \
    F (received_ms,    U64,    REQ, -)
#define CBUS_MINE_REPLY_FIELDS(F) \
    F (hash,           HASH,   REQ, -) \
    F (height,         U64,    REQ, -)
#define CBUS_MEMPOOL_INFO_REPLY_FIELDS(F) \
    F (size,           U64,    REQ, -) \
    F (bytes,          U64,    REQ, -) \
    F (next_height,    U64,    REQ, -) \
    F (storage,        STR,    OPT, -) \
    F (storage_code,   STR,    OPT, -)
//  mempool: pending transactions, paged by arrival (the inventory peersync
//  exchanges when nodes link; GET /transactions/pending), and by txid
#define CBUS_TX_PENDING_FIELDS(F) \
    F (after,          U64,    OPT, -) \
    F (max,            U64,    REQ, -)
#define CBUS_TX_PENDING_REPLY_FIELDS(F) \
    F (txids,          LIST,   REQ, HASH) \
    F (next,           U64,    REQ, -) \
    F (more,           BOOL,   REQ, -)
#define CBUS_TXS_GET_FIELDS(F) \
    F (txids,          LIST,   REQ, HASH) \
    F (max_bytes,      U64,    OPT, -)
#define CBUS_TXS_GET_REPLY_FIELDS(F) \
    F (txs,            LIST,   REQ, BIN) \
    F (received_ms,    LIST,   OPT, U64)

//  peersync
#define CBUS_PEER_ADD_FIELDS(F) \
    F (addresses,      LIST,   REQ, STR)
#define CBUS_PEER_ADD_REPLY_FIELDS(F) \
    F (peers,          LIST,   REQ, STR)
#define CBUS_PEER_LIST_REPLY_FIELDS(F) \
    F (peers,          MAPS,   REQ, peer_entry) \
    F (sync,           MAP,    REQ, sync_state)
#define CBUS_RESOLVE_REPLY_FIELDS(F) \
    F (replaced,       BOOL,   REQ, -) \
    F (height,         U64,    REQ, -) \
    F (peers,          MAPS,   REQ, resolve_entry)
#define CBUS_NODE_INFO_REPLY_FIELDS(F) \
    F (node_id,        STR,    REQ, -) \
    F (public_key,     STR,    REQ, -) \
    F (p2p_endpoint,   STR,    REQ, -) \
    F (network,        STR,    REQ, -) \
    F (genesis,        HASH,   REQ, -) \
    F (block_interval, U64,    OPT, -)
#define CBUS_PEER_REMOVE_FIELDS(F) \
    F (address,        STR,    REQ, -)
#define CBUS_PEER_REMOVE_REPLY_FIELDS(F) \
    F (removed,        STR,    REQ, -) \
    F (peers,          LIST,   REQ, STR)

//  Events (after "src" and "boot", which every event body starts with)
#define CBUS_BLOCK_EVENT_FIELDS(F) \
    F (hash,           HASH,   REQ, -) \
    F (height,         U64,    REQ, -) \
    F (prev_hash,      HASH,   REQ, -) \
    F (merkle_root,    HASH,   REQ, -) \
    F (time_ms,        U64,    REQ, -) \
    F (work,           HASH,   REQ, -) \
    F (txids,          LIST,   REQ, HASH) \
    F (next_bits,      U64,    OPT, -)
#define CBUS_TX_ADDED_FIELDS(F) \
    F (txid,           HASH,   REQ, -) \
    F (size,           U64,    REQ, -) \
    F (tx,             BIN,    REQ, -) \
    F (users,          LIST,   REQ, STR) \
    F (received_ms,    U64,    OPT, -)
#define CBUS_TX_REMOVED_FIELDS(F) \
    F (txid,           HASH,   REQ, -) \
    F (reason,         STR,    REQ, -)
#define CBUS_MINER_WORK_FIELDS(F) \
    F (job,            U64,    REQ, -) \
    F (header,         HEADER, REQ, -) \
    F (txs,            LIST,   REQ, BIN)
#define CBUS_HEARTBEAT_FIELDS(F) \
    F (pid,            U64,    REQ, -) \
    F (time_ms,        U64,    REQ, -) \
    F (hash_rate,      U64,    OPT, -) \
    F (resident_bytes, U64,    OPT, -) \
    F (metrics,        BIN,    OPT, -)
#define CBUS_PEER_EVENT_FIELDS(F) \
    F (address,        STR,    REQ, -) \
    F (node_id,        STR,    REQ, -) \
    F (state,          STR,    REQ, -)
#define CBUS_CHAIN_STORAGE_FIELDS(F) \
    F (writable,       BOOL,   REQ, -) \
    F (storage,        STR,    REQ, -) \
    F (storage_code,   STR,    OPT, -)

//  chainstore: explorer reads (cbus_chainstore_read.c): block summaries
//  newest first, and a slice of one block's transactions
#define CBUS_BLOCK_SUMMARY_FIELDS(F) \
    F (hash,           HASH,   REQ, -) \
    F (height,         U64,    REQ, -) \
    F (header,         HEADER, REQ, -) \
    F (tx_count,       U64,    REQ, -) \
    F (size,           U64,    REQ, -) \
    F (confirmations,  U64,    REQ, -) \
    F (in_active_chain, BOOL,  REQ, -)
#define CBUS_BLOCK_LIST_FIELDS(F) \
    F (before,         U64,    OPT, -) \
    F (limit,          U64,    REQ, -)
#define CBUS_BLOCK_LIST_REPLY_FIELDS(F) \
    F (blocks,         MAPS,   REQ, block_summary) \
    F (next,           U64,    NIL, -)
#define CBUS_BLOCK_TXS_FIELDS(F) \
    F (height,         U64,    OPT, -) \
    F (hash,           HASH,   OPT, -) \
    F (start,          U64,    REQ, -) \
    F (limit,          U64,    REQ, -)
#define CBUS_BLOCK_TXS_REPLY_FIELDS(F) \
    F (block,          MAP,    REQ, block_summary) \
    F (start,          U64,    REQ, -) \
    F (txs,            LIST,   REQ, BIN) \
    F (next,           U64,    NIL, -)

//  M (name, FIELDS, KIND, "command or topic", "service", "when")
//  KIND: SUB (a map inside another), REQUEST, REPLY (the OK reply to the
//  command), EVENT (a topic's body). The same command may be served by
//  two services (TX.GET), each with its own reply.
#define CBUS_MSGS(M) \
    M (event_source,      CBUS_EVENT_SOURCE_FIELDS,      SUB,     "*", "any", "src and boot of every event body") \
    M (history_item,      CBUS_HISTORY_ITEM_FIELDS,      SUB,     "HISTORY", "chainstore", "items of the HISTORY reply") \
    M (history_cursor,    CBUS_HISTORY_CURSOR_FIELDS,    SUB,     "HISTORY", "chainstore", "next of the HISTORY reply") \
    M (peer_entry,        CBUS_PEER_ENTRY_FIELDS,        SUB,     "PEER.LIST", "peersync", "peers of the PEER.LIST reply") \
    M (sync_state,        CBUS_SYNC_STATE_FIELDS,        SUB,     "PEER.LIST", "peersync", "sync of the PEER.LIST reply") \
    M (resolve_entry,     CBUS_RESOLVE_ENTRY_FIELDS,     SUB,     "RESOLVE", "peersync", "peers of the RESOLVE reply") \
    M (refusal,           CBUS_REFUSAL_FIELDS,           REPLY,   "*", "any", "every reply whose status is not OK") \
    M (ping,              CBUS_EMPTY_FIELDS,             REQUEST, "PING", "any", "") \
    M (pong,              CBUS_PONG_FIELDS,              REPLY,   "PING", "any", "") \
    M (tip,               CBUS_EMPTY_FIELDS,             REQUEST, "TIP", "chainstore", "") \
    M (tip_reply,         CBUS_TIP_REPLY_FIELDS,         REPLY,   "TIP", "chainstore", "") \
    M (block_get,         CBUS_BLOCK_GET_FIELDS,         REQUEST, "BLOCK.GET", "chainstore", "") \
    M (block_get_reply,   CBUS_BLOCK_GET_REPLY_FIELDS,   REPLY,   "BLOCK.GET", "chainstore", "") \
    M (chain_page,        CBUS_CHAIN_PAGE_FIELDS,        REQUEST, "CHAIN.PAGE", "chainstore", "") \
    M (chain_page_reply,  CBUS_CHAIN_PAGE_REPLY_FIELDS,  REPLY,   "CHAIN.PAGE", "chainstore", "") \
    M (chain_tx_get,      CBUS_TXID_FIELDS,              REQUEST, "TX.GET", "chainstore", "") \
    M (chain_tx_reply,    CBUS_CHAIN_TX_REPLY_FIELDS,    REPLY,   "TX.GET", "chainstore", "") \
    M (tx_known,          CBUS_TX_KNOWN_FIELDS,          REQUEST, "TX.KNOWN", "chainstore", "") \
    M (tx_known_reply,    CBUS_TX_KNOWN_REPLY_FIELDS,    REPLY,   "TX.KNOWN", "chainstore", "") \
    M (block_submit,      CBUS_BLOCK_SUBMIT_FIELDS,      REQUEST, "BLOCK.SUBMIT", "chainstore", "") \
    M (block_submit_reply, CBUS_BLOCK_SUBMIT_REPLY_FIELDS, REPLY, "BLOCK.SUBMIT", "chainstore", "") \
    M (locator,           CBUS_EMPTY_FIELDS,             REQUEST, "LOCATOR", "chainstore", "") \
    M (locator_reply,     CBUS_HASHES_FIELDS,            REPLY,   "LOCATOR", "chainstore", "") \
    M (headers,           CBUS_HEADERS_FIELDS,           REQUEST, "HEADERS", "chainstore", "") \
    M (headers_reply,     CBUS_HEADERS_REPLY_FIELDS,     REPLY,   "HEADERS", "chainstore", "") \
    M (blocks_have,       CBUS_HASHES_FIELDS,            REQUEST, "BLOCKS.HAVE", "chainstore", "") \
    M (blocks_have_reply, CBUS_BLOCKS_HAVE_REPLY_FIELDS, REPLY,   "BLOCKS.HAVE", "chainstore", "") \
    M (history,           CBUS_HISTORY_FIELDS,           REQUEST, "HISTORY", "chainstore", "") \
    M (history_reply,     CBUS_HISTORY_REPLY_FIELDS,     REPLY,   "HISTORY", "chainstore", "") \
    M (blocks_get,        CBUS_BLOCKS_GET_FIELDS,        REQUEST, "BLOCKS.GET", "chainstore", "") \
    M (blocks_get_reply,  CBUS_BLOCKS_REPLY_FIELDS,      REPLY,   "BLOCKS.GET", "chainstore", "") \
    M (chain_backup,      CBUS_CHAIN_BACKUP_FIELDS,      REQUEST, "STORE.BACKUP", "chainstore", "") \
    M (chain_backup_reply, CBUS_STORE_BACKUP_REPLY_FIELDS, REPLY, "STORE.BACKUP", "chainstore", "") \
    M (chain_backup_cancel, CBUS_STORE_BACKUP_CANCEL_FIELDS, REQUEST, "STORE.BACKUP.CANCEL", "chainstore", "") \
    M (chain_backup_cancel_reply, CBUS_STORE_BACKUP_CANCEL_REPLY_FIELDS, REPLY, "STORE.BACKUP.CANCEL", "chainstore", "") \
    M (tx_submit,         CBUS_TX_SUBMIT_FIELDS,         REQUEST, "TX.SUBMIT", "mempool", "") \
    M (tx_submit_reply,   CBUS_TX_SUBMIT_REPLY_FIELDS,   REPLY,   "TX.SUBMIT", "mempool", "") \
    M (pool_tx_get,       CBUS_TXID_FIELDS,              REQUEST, "TX.GET", "mempool", "") \
    M (pool_tx_reply,     CBUS_POOL_TX_REPLY_FIELDS,     REPLY,   "TX.GET", "mempool", "") \
    M (mine,              CBUS_EMPTY_FIELDS,             REQUEST, "MINE", "mempool", "") \
    M (mine_reply,        CBUS_MINE_REPLY_FIELDS,        REPLY,   "MINE", "mempool", "") \
    M (mempool_info,      CBUS_EMPTY_FIELDS,             REQUEST, "MEMPOOL.INFO", "mempool", "") \
    M (mempool_info_reply, CBUS_MEMPOOL_INFO_REPLY_FIELDS, REPLY, "MEMPOOL.INFO", "mempool", "") \
    M (tx_pending,        CBUS_TX_PENDING_FIELDS,        REQUEST, "TX.PENDING", "mempool", "") \
    M (tx_pending_reply,  CBUS_TX_PENDING_REPLY_FIELDS,  REPLY,   "TX.PENDING", "mempool", "") \
    M (txs_have,          CBUS_TX_KNOWN_FIELDS,          REQUEST, "TXS.HAVE", "mempool", "") \
    M (txs_have_reply,    CBUS_BLOCKS_HAVE_REPLY_FIELDS, REPLY,   "TXS.HAVE", "mempool", "") \
    M (txs_get,           CBUS_TXS_GET_FIELDS,           REQUEST, "TXS.GET", "mempool", "") \
    M (txs_get_reply,     CBUS_TXS_GET_REPLY_FIELDS,     REPLY,   "TXS.GET", "mempool", "") \
    M (pool_backup,       CBUS_STORE_BACKUP_FIELDS,      REQUEST, "STORE.BACKUP", "mempool", "") \
    M (pool_backup_reply, CBUS_STORE_BACKUP_REPLY_FIELDS, REPLY,  "STORE.BACKUP", "mempool", "") \
    M (pool_backup_cancel, CBUS_STORE_BACKUP_CANCEL_FIELDS, REQUEST, "STORE.BACKUP.CANCEL", "mempool", "") \
    M (pool_backup_cancel_reply, CBUS_STORE_BACKUP_CANCEL_REPLY_FIELDS, REPLY, "STORE.BACKUP.CANCEL", "mempool", "") \
    M (peer_add,          CBUS_PEER_ADD_FIELDS,          REQUEST, "PEER.ADD", "peersync", "") \
    M (peer_add_reply,    CBUS_PEER_ADD_REPLY_FIELDS,    REPLY,   "PEER.ADD", "peersync", "") \
    M (peer_list,         CBUS_EMPTY_FIELDS,             REQUEST, "PEER.LIST", "peersync", "") \
    M (peer_list_reply,   CBUS_PEER_LIST_REPLY_FIELDS,   REPLY,   "PEER.LIST", "peersync", "") \
    M (resolve,           CBUS_EMPTY_FIELDS,             REQUEST, "RESOLVE", "peersync", "") \
    M (resolve_reply,     CBUS_RESOLVE_REPLY_FIELDS,     REPLY,   "RESOLVE", "peersync", "") \
    M (node_info,         CBUS_EMPTY_FIELDS,             REQUEST, "NODE.INFO", "peersync", "") \
    M (node_info_reply,   CBUS_NODE_INFO_REPLY_FIELDS,   REPLY,   "NODE.INFO", "peersync", "") \
    M (peer_remove,       CBUS_PEER_REMOVE_FIELDS,       REQUEST, "PEER.REMOVE", "peersync", "") \
    M (peer_remove_reply, CBUS_PEER_REMOVE_REPLY_FIELDS, REPLY,   "PEER.REMOVE", "peersync", "") \
    M (block_connected,   CBUS_BLOCK_EVENT_FIELDS,       EVENT,   CBUS_TOPIC_BLOCK_CONNECTED, "chainstore", "after the block and its indexes are durable on disk") \
    M (block_disconnected, CBUS_BLOCK_EVENT_FIELDS,      EVENT,   CBUS_TOPIC_BLOCK_DISCONNECTED, "chainstore", "a reorganisation took the block off the active chain") \
    M (tx_added,          CBUS_TX_ADDED_FIELDS,          EVENT,   CBUS_TOPIC_TX_ADDED, "mempool", "after the transaction is durable in the mempool's store") \
    M (tx_removed,        CBUS_TX_REMOVED_FIELDS,        EVENT,   CBUS_TOPIC_TX_REMOVED, "mempool", "the transaction left the mempool") \
    M (miner_work,        CBUS_MINER_WORK_FIELDS,        EVENT,   CBUS_TOPIC_MINER_WORK, "mempool", "a block is wanted; republished every second while wanted") \
    M (heartbeat,         CBUS_HEARTBEAT_FIELDS,         EVENT,   CBUS_TOPIC_HEARTBEAT, "any", "every second") \
    M (peer_connected,    CBUS_PEER_EVENT_FIELDS,        EVENT,   CBUS_TOPIC_PEER_CONNECTED, "peersync", "a link to a peer completed its HELLO") \
    M (peer_disconnected, CBUS_PEER_EVENT_FIELDS,        EVENT,   CBUS_TOPIC_PEER_DISCONNECTED, "peersync", "a link to a peer closed") \
    M (chain_storage,     CBUS_CHAIN_STORAGE_FIELDS,     EVENT,   CBUS_TOPIC_CHAIN_STORAGE, "chainstore", "its store stopped or started taking writes") \
    M (block_summary,     CBUS_BLOCK_SUMMARY_FIELDS,     SUB,     "BLOCK.LIST", "chainstore", "blocks of the BLOCK.LIST reply, block of the BLOCK.TXS reply") \
    M (block_list,        CBUS_BLOCK_LIST_FIELDS,        REQUEST, "BLOCK.LIST", "chainstore", "") \
    M (block_list_reply,  CBUS_BLOCK_LIST_REPLY_FIELDS,  REPLY,   "BLOCK.LIST", "chainstore", "") \
    M (block_txs,         CBUS_BLOCK_TXS_FIELDS,         REQUEST, "BLOCK.TXS", "chainstore", "") \
    M (block_txs_reply,   CBUS_BLOCK_TXS_REPLY_FIELDS,   REPLY,   "BLOCK.TXS", "chainstore", "")

//  --------------------------------------------------------------------------
//  What the table generates

//  C member of each kind
#define CBUS_MEMBER_U64(name, element)    uint64_t name;
#define CBUS_MEMBER_I64(name, element)    int64_t name;
#define CBUS_MEMBER_BOOL(name, element)   bool name;
#define CBUS_MEMBER_STR(name, element)    cbus_str_t name;
#define CBUS_MEMBER_BIN(name, element)    cbus_bytes_t name;
#define CBUS_MEMBER_HASH(name, element)   const uint8_t *name;
#define CBUS_MEMBER_HEADER(name, element) const uint8_t *name;
#define CBUS_MEMBER_LIST(name, element)   cbus_list_t name;
#define CBUS_MEMBER_MAPS(name, element)   cbus_list_t name;
#define CBUS_MEMBER_MAP(name, element)    cbus_##element##_t name;
#define CBUS_PRESENCE_REQ(name)
#define CBUS_PRESENCE_OPT(name)           bool has_##name;
#define CBUS_PRESENCE_NIL(name)           bool has_##name;
#define CBUS_MEMBER(name, kind, presence, element) \
    CBUS_MEMBER_##kind (name, element) CBUS_PRESENCE_##presence (name)

//  The struct of each message, its descriptor and its codec. encode
//  empties buf and writes the body; decode fills self from a body map.
#define CBUS_MSG_DECLARE(name, fields, kind, wire, service, when) \
    typedef struct { \
        fields (CBUS_MEMBER) \
        char unused_;                   /*  Keeps empty messages legal C */ \
    } cbus_##name##_t; \
    extern const cbus_msgdef_t cbus_##name##_def; \
    void cbus_##name##_encode (const cbus_##name##_t *self, cbus_buf_t *buf); \
    int cbus_##name##_decode (const msgpack_object *map, cbus_##name##_t *self, \
                              char *reason) __attribute__ ((warn_unused_result));
CBUS_MSGS (CBUS_MSG_DECLARE)

//  --------------------------------------------------------------------------
//  The generic codec the per-message functions call

//  Append def's fields of self to an open packer; returns how many
//  fields were written (the map size the caller opened must match:
//  cbus_msgdef_count says how many that will be).
void
    cbus_msgdef_pack (const cbus_msgdef_t *def, const void *self, msgpack_packer *pk);
uint32_t
    cbus_msgdef_count (const cbus_msgdef_t *def, const void *self);
//  Empty buf and write self as a whole body map.
void
    cbus_msgdef_encode (const cbus_msgdef_t *def, const void *self, cbus_buf_t *buf);
//  Zero self and fill it from map; -1 with a reason naming the message
//  and field when the map does not fit the definition.
int
    cbus_msgdef_decode (const cbus_msgdef_t *def, const msgpack_object *map,
                        void *self, char *reason)
    __attribute__ ((warn_unused_result));
//  The command or topic, and the message's name in the table.
const char *
    cbus_msgdef_wire (const cbus_msgdef_t *def);
const char *
    cbus_msgdef_name (const cbus_msgdef_t *def);

//  Publish an event: "src", "boot", then self's fields (cbus_pub_send).
int
    cbus_pub_send_msg (cbus_pub_t *pub, const cbus_msgdef_t *def, const void *self,
                       cbus_buf_t *buf);
//  Fill a heartbeat's common fields (pid, time_ms, resident_bytes and,
//  with cbus_pub_set_metrics, metrics) for a role that sends its own
//  (the miner adds hash_rate). The metrics bytes are the publisher's,
//  valid until its next heartbeat.
void
    cbus_pub_heartbeat_fill (cbus_pub_t *pub, cbus_heartbeat_t *beat);
//  Reply OK with self as the body.
int
    cbus_reply_send_msg (zsock_t *router, cbus_request_t *request,
                         const cbus_msgdef_t *def, const void *self, cbus_buf_t *buf);

//  Print every message, one per line, for docs/bus.md's test:
//  "<kind> <command or topic> <service> <name> field:type ...", a
//  nested map's fields as parent.field.
void
    cbus_msgs_print (FILE *out);

void
    cbus_msgs_test (bool verbose);

#endif
