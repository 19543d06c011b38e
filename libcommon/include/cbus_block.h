/*  =========================================================================
    cbus_block - a block: a fixed 100-byte header and its transactions

    Header bytes (version 2), all integers little-endian: version u32 (0),
    height u64 (4), previous hash [32] (12), merkle root [32] (44), time
    in ms u64 (76), bits u32 (84), miner u32 (88), nonce u64 (92). The
    block hash is the double SHA-256 of those bytes. The nonce comes last
    and the 36 bytes after the first 64 fit one SHA-256 block with its
    padding, so a miner hashes a nonce with two compressions (the second
    block from the midstate of the first, then the 32-byte first hash):
    docs/architecture.md "The header and the hasher". Version 1 was 124
    bytes (the same fields and 24 reserved zero bytes: three compressions
    a nonce). The merkle root is Bitcoin's tree (the last node of an odd
    level pairs with itself) over each transaction's leaf hash; an empty
    block's root is all zeroes. On the bus and on disk a block is the
    msgpack map {"header": bin 100, "txs": [bin, ...]}.
    =========================================================================
*/
#ifndef CBUS_BLOCK_H_INCLUDED
#define CBUS_BLOCK_H_INCLUDED

#define CBUS_HEADER_BYTES   100
#define CBUS_BLOCK_VERSION  2
//  Consensus limits on one block.
#define CBUS_BLOCK_MAX_BYTES (16 * 1024 * 1024)
#define CBUS_BLOCK_MAX_TXS   100000

typedef struct {
    uint32_t version;                   //  Header format, CBUS_BLOCK_VERSION
    uint64_t height;                    //  Distance from genesis
    uint8_t prev_hash [CBUS_HASH_BYTES];//  Hash of the parent block
    uint8_t merkle_root [CBUS_HASH_BYTES];  //  Root over tx leaf hashes
    uint64_t time_ms;                   //  Miner's clock, ms since epoch
    uint32_t bits;                      //  Compact proof-of-work target
    uint32_t miner;                     //  Miner id: splits the nonce space
    uint64_t nonce;                     //  The proof
} cbus_header_t;

typedef struct _cbus_block_t cbus_block_t;

void
    cbus_header_encode (const cbus_header_t *self, uint8_t out [CBUS_HEADER_BYTES]);
//  Returns 0, or -1 if size is not CBUS_HEADER_BYTES.
int
    cbus_header_decode (cbus_header_t *self, const uint8_t *data, size_t size)
    __attribute__ ((warn_unused_result));
void
    cbus_header_hash (const cbus_header_t *self, uint8_t out [CBUS_HASH_BYTES]);
//  The header of encoded block bytes, without decoding the transactions:
//  the canonical encoding (the map's first key "header", a 100-byte bin)
//  is read in place, any other map the long way. Returns 0, or -1 if the
//  bytes hold no valid header. For bytes from a store or a peer that are
//  only looked at (hashed, listed), not admitted: that is
//  cbus_block_new_from_bytes.
int
    cbus_block_header_from_bytes (const void *data, size_t size, cbus_header_t *header)
    __attribute__ ((warn_unused_result));
//  Try up to tries nonces from the header's current nonce. Returns true
//  with the header's nonce set to the first that meets its target, or
//  false with the nonce advanced past the last one tried (also false,
//  nonce unchanged, when the bits give no valid target). Hashes with
//  cbus_sha256d_scan: the CPU's SHA instructions when it has them, the
//  midstate of the first 64 bytes and the nonce-independent rounds once
//  per call, two compressions per nonce.
bool
    cbus_header_search (cbus_header_t *self, uint64_t tries);

//  New block with a copy of this header and no transactions.
cbus_block_t *
    cbus_block_new (const cbus_header_t *header);
//  Decode a block; checks encoding and each transaction, not the proof or
//  the merkle root (see cbus_block_check). NULL with a reason.
cbus_block_t *
    cbus_block_new_from_bytes (const void *data, size_t size, char *reason);
//  Build a block from the JSON object cbus_block_write_json writes (one
//  element of GET /chain): the header from index, timestamp (seconds with
//  up to three decimals, or an integer), proof, previous_hash,
//  merkle_root, bits, miner and version; each transaction through
//  cbus_tx_new_from_json. The given "hash" and each transaction's "txid",
//  when present, must match what the fields hash to; other keys are
//  ignored. Checks neither the proof nor the merkle root (see
//  cbus_block_check). NULL with a reason that names the block
//  ("block 12: hash does not match its header").
cbus_block_t *
    cbus_block_new_from_json (const json_t *object, char *reason);
//  The fixed first block of a network: height 0, zero parent, no
//  transactions, the network id committed in the merkle root field.
cbus_block_t *
    cbus_block_new_genesis (const char *network, uint32_t bits);
//  The same for a network's whole target rule: the root field commits to
//  the block interval too (when not 0: a fixed-target network's genesis
//  is cbus_block_new_genesis's), so networks with other rules never share
//  a genesis.
cbus_block_t *
    cbus_block_new_genesis_rule (const char *network, const cbus_pow_rule_t *rule);
void
    cbus_block_destroy (cbus_block_t **self_p);

//  The header, mutable (a miner sets the nonce through it).
cbus_header_t *
    cbus_block_header (cbus_block_t *self);
//  Hash of the current header into out.
void
    cbus_block_hash (cbus_block_t *self, uint8_t out [CBUS_HASH_BYTES]);
//  Append a transaction; takes ownership.
void
    cbus_block_add_tx (cbus_block_t *self, cbus_tx_t **tx_p);
size_t
    cbus_block_tx_count (cbus_block_t *self);
//  Borrowed transaction at index.
cbus_tx_t *
    cbus_block_tx (cbus_block_t *self, size_t index);
//  Merkle root over the current transactions.
void
    cbus_block_merkle (cbus_block_t *self, uint8_t out [CBUS_HASH_BYTES]);
//  Encoded size in bytes (as cbus_block_encode would write).
size_t
    cbus_block_size (cbus_block_t *self);

//  Checks that need no chain: proof of work against the header's bits,
//  merkle root, no transaction twice, size limits. -1 with a reason
//  and, when code is not NULL, its code (bad_version, bad_pow,
//  bad_merkle_root, too_large, duplicate; internal when memory runs out).
int
    cbus_block_check (cbus_block_t *self, cbus_code_t *code, char *reason)
    __attribute__ ((warn_unused_result));

//  Append the msgpack encoding to out.
void
    cbus_block_encode (cbus_block_t *self, cbus_buf_t *out);
//  Append the JSON object users see (tutorial keys plus hash,
//  merkle_root, target, miner).
void
    cbus_block_write_json (cbus_block_t *self, cbus_buf_t *out);

//  Write stored block bytes as that JSON object without re-validating
//  them (for blocks this node already checked and stored). Returns -1 if
//  they do not decode.
int
    cbus_block_bytes_to_json (const void *data, size_t size, cbus_buf_t *out)
    __attribute__ ((warn_unused_result));

void
    cbus_block_test (bool verbose);

#endif
