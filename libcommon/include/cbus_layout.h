/*  =========================================================================
    cbus_layout - the chain store's keys and records, byte for byte

    The one definition of what the chain store holds: each key's one-byte
    prefix (Bitcoin Core's habit), how keys are built from hashes, heights
    and names, and the records' bytes, each with its encoder and decoder.
    cbus_chain writes and reads the store through these, and so do the
    offline tools (`chainbus verify` reads the raw records itself, to
    audit them without trusting cbus_chain). Decoders check sizes and
    return -1 for a record that is not the shape it should be: what comes
    from the disk never reaches an assert. docs/architecture.md shows the
    table.
    =========================================================================
*/
#ifndef CBUS_LAYOUT_H_INCLUDED
#define CBUS_LAYOUT_H_INCLUDED

//  Key prefixes
#define CBUS_LAYOUT_META    'M'     //  "M": network, bits, genesis (text)
#define CBUS_LAYOUT_TIP     'S'     //  "S": hash of the active tip
#define CBUS_LAYOUT_BLOCK   'B'     //  'B' hash: block bytes
#define CBUS_LAYOUT_ENTRY   'I'     //  'I' hash: index entry (below)
#define CBUS_LAYOUT_HEIGHT  'H'     //  'H' height (8, BE): active block's hash
#define CBUS_LAYOUT_TX      'T'     //  'T' txid: where record (below)
#define CBUS_LAYOUT_USER    'U'     //  'U' user 0x00 height position: txid
#define CBUS_LAYOUT_KEY     'K'     //  'K' key 0x00 height position: txid
#define CBUS_LAYOUT_SUMMARY 'C'     //  'C' hash: summary record (below)

//  Index entry: height u64 BE, cumulative work [32], header [100].
#define CBUS_LAYOUT_ENTRY_BYTES     (8 + CBUS_U256_BYTES + CBUS_HEADER_BYTES)
//  Where record of a confirmed transaction: block hash [32], position
//  u32 BE.
#define CBUS_LAYOUT_WHERE_BYTES     (CBUS_HASH_BYTES + 4)
//  Summary record of a stored block (what GET /blocks lists without
//  reading the block): header [100], transaction count u32 BE, the
//  block's bytes as stored u64 BE. Written in the batch that stores the
//  block; a store made before these records has none (the chainstore
//  writes one the first time it reads such a block for a summary).
#define CBUS_LAYOUT_SUMMARY_BYTES   (CBUS_HEADER_BYTES + 4 + 8)
//  A height key: prefix, height u64 BE.
#define CBUS_LAYOUT_HEIGHT_KEY_BYTES 9
//  What follows the name in a history key: 0x00, height u64 BE, position
//  u32 BE.
#define CBUS_LAYOUT_HISTORY_TAIL    13

//  A fixed-size key: a prefix and up to 32 bytes. A value, built on the
//  stack.
typedef struct {
    uint8_t bytes [1 + CBUS_HASH_BYTES];    //  Prefix, then the rest
    size_t size;                            //  Bytes used
} cbus_layout_key_t;

//  'B', 'I' or 'T' followed by a hash.
cbus_layout_key_t
    cbus_layout_hash_key (char prefix, const uint8_t hash [CBUS_HASH_BYTES]);
//  'H' followed by the height, big-endian: key order is height order.
cbus_layout_key_t
    cbus_layout_height_key (uint64_t height);
//  A one-byte key: "M" or "S".
cbus_layout_key_t
    cbus_layout_single_key (char prefix);
//  The height of a height key; -1 if the key is not one.
int
    cbus_layout_height_decode (const void *key, size_t size, uint64_t *height)
    __attribute__ ((warn_unused_result));

//  The index entry of a block, and back; -1 for bytes that are not one.
void
    cbus_layout_entry_encode (const cbus_chain_entry_t *entry,
                              uint8_t out [CBUS_LAYOUT_ENTRY_BYTES]);
int
    cbus_layout_entry_decode (const void *value, size_t size, cbus_chain_entry_t *entry)
    __attribute__ ((warn_unused_result));

//  The where record of a transaction, and back; -1 for bytes that are
//  not one.
void
    cbus_layout_where_encode (const uint8_t block [CBUS_HASH_BYTES], uint32_t position,
                              uint8_t out [CBUS_LAYOUT_WHERE_BYTES]);
int
    cbus_layout_where_decode (const void *value, size_t size,
                              uint8_t block [CBUS_HASH_BYTES], uint32_t *position)
    __attribute__ ((warn_unused_result));

//  The summary record of a block, and back. The decoder takes the hash
//  the record is stored under and returns -1 for bytes that are not the
//  record of that block: another size, a header that does not decode or
//  does not hash to it, more transactions than bytes. header receives
//  the header's bytes as stored.
void
    cbus_layout_summary_encode (const cbus_header_t *header, uint32_t tx_count, uint64_t size,
                                uint8_t out [CBUS_LAYOUT_SUMMARY_BYTES]);
int
    cbus_layout_summary_decode (const void *value, size_t value_size,
                                const uint8_t hash [CBUS_HASH_BYTES],
                                uint8_t header [CBUS_HEADER_BYTES], uint64_t *tx_count,
                                uint64_t *size)
    __attribute__ ((warn_unused_result));

//  A history key into key (reset first): kind ('U' or 'K'), the name's
//  size bytes, 0x00, height, position.
void
    cbus_layout_history_key (cbus_buf_t *key, char kind, const char *name, size_t size,
                             uint64_t height, uint32_t position);
//  What every history key of one name starts with: kind, name, 0x00.
void
    cbus_layout_history_prefix (cbus_buf_t *key, char kind, const char *name, size_t size);
//  The parts of a history key: name (borrowed from key, not terminated)
//  and its size, height and position. -1 if the key is not one (too
//  short, or no 0x00 before its tail).
int
    cbus_layout_history_decode (const void *key, size_t size, const char **name,
                                size_t *name_size, uint64_t *height, uint32_t *position)
    __attribute__ ((warn_unused_result));

//  The meta record a network's chain store holds: "network=<id>
//  bits=<8 hex> genesis=<hash hex>", with " block_interval=<s>
//  half_life=<intervals>" after the bits when the network retargets (a fixed-target store's record is the
//  one it always was). Caller frees.
char *
    cbus_layout_meta (const char *network, const cbus_pow_rule_t *rule,
                      const uint8_t genesis [CBUS_HASH_BYTES]);

void
    cbus_layout_test (bool verbose);

#endif
