/*  =========================================================================
    cbus_hash - SHA-256 and double SHA-256

    One implementation for the whole node (OpenSSL's low-level SHA-256,
    which uses the CPU's SHA instructions where present), except the
    miner's inner loop (cbus_sha256, checked against this one). Hashes are
    32 bytes, shown to users as lowercase hex in byte order.
    =========================================================================
*/
#ifndef CBUS_HASH_H_INCLUDED
#define CBUS_HASH_H_INCLUDED

#define CBUS_HASH_BYTES 32
#define CBUS_HASH_HEX   (2 * CBUS_HASH_BYTES + 1)

void
    cbus_hash_sha256 (const void *data, size_t size, uint8_t out [CBUS_HASH_BYTES]);
//  SHA-256 of the SHA-256: what block and transaction ids are.
void
    cbus_hash_sha256d (const void *data, size_t size, uint8_t out [CBUS_HASH_BYTES]);
//  Hash of two 32-byte hashes side by side (one merkle tree node).
void
    cbus_hash_pair (const uint8_t left [CBUS_HASH_BYTES],
                    const uint8_t right [CBUS_HASH_BYTES],
                    uint8_t out [CBUS_HASH_BYTES]);
//  Hex of a hash into a CBUS_HASH_HEX buffer; returns out.
char *
    cbus_hash_hex (const uint8_t hash [CBUS_HASH_BYTES], char out [CBUS_HASH_HEX]);
bool
    cbus_hash_is_zero (const uint8_t hash [CBUS_HASH_BYTES]);

//  A hash table keyed by 32-byte hashes (txids, block hashes). Keys are
//  borrowed, not copied: each must live as long as its entry (point them
//  into the item). Items are not freed unless a destructor is set.
zhashx_t *
    cbus_hash_table_new (void);

void
    cbus_hash_test (bool verbose);

#endif
