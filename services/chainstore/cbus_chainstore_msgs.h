/*  =========================================================================
    cbus_chainstore_msgs - the bodies of the chainstore's messages

    One parse function per request and one pack function per reply or
    event, each with its struct, so that libcommon's one definition per
    message (cbus_msgs.h, under way) replaces them one by one; this file
    goes once it has. docs/bus.md lists the same fields.

    Pack functions reset the buffer and write the whole body. Parse
    functions return 0, or -1 when a field is missing or malformed;
    pointers they leave borrow from the request.
    =========================================================================
*/
#ifndef CBUS_CHAINSTORE_MSGS_H_INCLUDED
#define CBUS_CHAINSTORE_MSGS_H_INCLUDED

#include "cbus.h"

//  Most headers in one HEADERS answer (and hashes in BLOCKS.HAVE), most
//  blocks in one BLOCKS.GET, most entries in one HISTORY page.
#define CBUS_CHAINSTORE_HEADERS_MAX 2000
#define CBUS_CHAINSTORE_BLOCKS_MAX  500
#define CBUS_CHAINSTORE_HISTORY_MAX 100
//  BLOCKS.GET's byte budget when the request names none.
#define CBUS_CHAINSTORE_BLOCKS_GET_BYTES (8 * 1024 * 1024)

//  Hash index of a hash list a parse function accepted.
const uint8_t *
    cbus_chainstore_hash_at (const msgpack_object *list, size_t index);

//  chain.block.connected and chain.block.disconnected; work is the chain
//  work up to and with the block.
void
    cbus_chainstore_block_event_pack (cbus_pub_t *pub, cbus_buf_t *buf, cbus_block_t *block,
                                      const uint8_t hash [CBUS_HASH_BYTES],
                                      const uint8_t work [CBUS_U256_BYTES]);

//  TIP reply
typedef struct {
    const cbus_chain_entry_t *entry;    //  The tip's index entry
    const uint8_t *hash;                //  The tip's hash
    const char *network;                //  Network id
    const uint8_t *genesis;             //  Genesis hash
    uint32_t bits;                      //  The network's target
} cbus_chainstore_tip_reply_t;

void
    cbus_chainstore_tip_reply_pack (cbus_buf_t *buf, const cbus_chainstore_tip_reply_t *msg);

//  BLOCK.GET request: a height, or else a hash.
typedef struct {
    bool by_height;                     //  height given
    uint64_t height;                    //  The active block's height
    uint8_t hash [CBUS_HASH_BYTES];     //  Or any stored block's hash
} cbus_chainstore_block_get_t;

int
    cbus_chainstore_block_get_parse (const msgpack_object *map, cbus_chainstore_block_get_t *msg);

//  BLOCK.GET reply
typedef struct {
    const void *block;                  //  Block bytes
    size_t size;                        //  Their size
    uint64_t height;                    //  Its height
    const uint8_t *hash;                //  Its hash
    uint64_t confirmations;             //  0 off the active chain
} cbus_chainstore_block_reply_t;

void
    cbus_chainstore_block_reply_pack (cbus_buf_t *buf, const cbus_chainstore_block_reply_t *msg);

//  CHAIN.PAGE request
typedef struct {
    uint64_t from;                      //  First height
    uint64_t to;                        //  Last height, inclusive
    uint64_t max_bytes;                 //  Byte budget (at least one block)
} cbus_chainstore_chain_page_t;

int
    cbus_chainstore_chain_page_parse (const msgpack_object *map, cbus_chainstore_chain_page_t *msg);
//  CHAIN.PAGE reply: the blocks (a list of frames) and the height to ask
//  for next.
void
    cbus_chainstore_chain_page_reply_pack (cbus_buf_t *buf, zlist_t *blocks, uint64_t next);

//  TX.GET request
int
    cbus_chainstore_tx_get_parse (const msgpack_object *map, uint8_t txid [CBUS_HASH_BYTES]);

//  TX.GET reply
typedef struct {
    const uint8_t *tx;                  //  Transaction bytes
    size_t size;                        //  Their size
    const uint8_t *block_hash;          //  The active block holding it
    uint64_t height;                    //  That block's height
    uint64_t index;                     //  Its position in the block
    uint64_t confirmations;             //  Blocks from it to the tip
} cbus_chainstore_tx_reply_t;

void
    cbus_chainstore_tx_reply_pack (cbus_buf_t *buf, const cbus_chainstore_tx_reply_t *msg);

//  TX.KNOWN request: the txids array. An item that is not a 32-byte bin
//  is answered false, not refused.
int
    cbus_chainstore_tx_known_parse (const msgpack_object *map, const msgpack_object **txids_p);
//  TX.KNOWN reply
void
    cbus_chainstore_tx_known_reply_pack (cbus_buf_t *buf, const bool *known, size_t count);

//  BLOCK.SUBMIT request: the block bytes.
int
    cbus_chainstore_block_submit_parse (const msgpack_object *map, const uint8_t **data_p,
                                        size_t *size_p);
//  BLOCK.SUBMIT reply; status is "connected", "duplicate" or "side".
void
    cbus_chainstore_block_submit_reply_pack (cbus_buf_t *buf, const uint8_t hash [CBUS_HASH_BYTES],
                                             uint64_t height, const char *status);

//  LOCATOR reply
void
    cbus_chainstore_locator_reply_pack (cbus_buf_t *buf, uint8_t hashes [][CBUS_HASH_BYTES],
                                        size_t count);

//  HEADERS request
typedef struct {
    uint8_t locator [CBUS_LOCATOR_MAX][CBUS_HASH_BYTES];    //  Peer's locator
    size_t count;                       //  Hashes in it
    uint64_t max;                       //  Most headers wanted
} cbus_chainstore_headers_t;

int
    cbus_chainstore_headers_parse (const msgpack_object *map, cbus_chainstore_headers_t *msg);
//  HEADERS reply
void
    cbus_chainstore_headers_reply_pack (cbus_buf_t *buf, uint64_t start,
                                        const cbus_header_t *headers, size_t count);

//  BLOCKS.HAVE request: the hashes.
int
    cbus_chainstore_blocks_have_parse (const msgpack_object *map, const msgpack_object **hashes_p);
//  BLOCKS.HAVE reply
void
    cbus_chainstore_blocks_have_reply_pack (cbus_buf_t *buf, const bool *have, size_t count);

//  BLOCKS.GET request
typedef struct {
    const msgpack_object *hashes;       //  Blocks asked, in order
    uint64_t max_bytes;                 //  Byte budget (at least one block)
} cbus_chainstore_blocks_get_t;

int
    cbus_chainstore_blocks_get_parse (const msgpack_object *map, cbus_chainstore_blocks_get_t *msg);
//  BLOCKS.GET reply
void
    cbus_chainstore_blocks_get_reply_pack (cbus_buf_t *buf, zlist_t *blocks);

//  HISTORY request
typedef struct {
    char kind;                          //  CBUS_HISTORY_USER or _KEY
    const char *name;                   //  The user or key, not terminated
    size_t name_size;                   //  Its size
    uint64_t limit;                     //  Entries wanted, 1 to HISTORY_MAX
    uint64_t before_height;             //  Cursor; UINT64_MAX: the newest
    uint64_t before_index;              //  Cursor's position
} cbus_chainstore_history_t;

//  0, or -1 with the refusal's reason.
int
    cbus_chainstore_history_parse (const msgpack_object *map, cbus_chainstore_history_t *msg,
                                   char *reason);

//  One HISTORY item
typedef struct {
    cbus_chain_history_t where;         //  txid, height, index
    uint8_t block_hash [CBUS_HASH_BYTES];   //  Its block
    uint64_t confirmations;             //  Blocks from it to the tip
    uint8_t *tx;                        //  Its bytes (owned by the caller)
    size_t size;                        //  Their size
} cbus_chainstore_history_item_t;

//  HISTORY reply; with more, next is the cursor after the last item.
void
    cbus_chainstore_history_reply_pack (cbus_buf_t *buf, const cbus_chainstore_history_item_t *items,
                                        size_t count, bool more);

#endif
