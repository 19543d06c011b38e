/*  =========================================================================
    cbus_sha256 - the SHA-256 compression function, and the miner's scan

    For the one caller that lays out its own SHA-256 blocks: the miner,
    which hashes the same header with a million nonces a second. Everything
    else hashes through cbus_hash (OpenSSL). Two implementations of the
    compression: one with the CPU's SHA instructions (x86 SHA-NI, chosen at
    run time when the CPU has them) and portable C; both give the same
    results (the self-test checks them against OpenSSL). The environment
    variable CHAINBUS_SHA256=portable forces the portable one (for tests).

    The scan computes the double SHA-256 of a CBUS_SHA256D_SCAN_BYTES
    message (a block header) whose last 8 bytes are a little-endian nonce:
    its 36-byte tail after the first 64 bytes fits one block with the
    padding, so a nonce costs one compression of that block from the
    midstate of the first 64 bytes and one of the 32-byte first hash; the
    rounds and message words that do not depend on the nonce are computed
    once per call. docs/architecture.md "The header and the hasher" says
    why the block header is laid out for it.
    =========================================================================
*/
#ifndef CBUS_SHA256_H_INCLUDED
#define CBUS_SHA256_H_INCLUDED

//  The message the scan hashes: 64 bytes, 28 more, the nonce (u64 LE).
#define CBUS_SHA256D_SCAN_BYTES 100

typedef enum {
    CBUS_SHA256_PORTABLE,           //  Plain C, any CPU
    CBUS_SHA256_SHANI               //  x86 SHA instructions, two nonces at a time
} cbus_sha256_impl_t;

//  A prepared search: the midstate and the second block's constant words,
//  computed once per header by cbus_sha256d_scan_init.
typedef struct {
    uint32_t midstate [8];          //  State after the first 64 bytes
    uint32_t block [16];            //  Second block, padded, as big-endian words
    uint32_t target [8];            //  Target as big-endian words
    cbus_sha256_impl_t impl;        //  Implementation chosen at init
} cbus_sha256d_scan_t;

//  The implementation the miner uses: SHA-NI when the CPU has it and
//  CHAINBUS_SHA256 is not "portable"; decided once per process, and
//  logged then ("sha256 hasher=sha-ni").
cbus_sha256_impl_t
    cbus_sha256_best (void);
//  Name of an implementation ("sha-ni", "portable"), for logs.
const char *
    cbus_sha256_impl_name (cbus_sha256_impl_t impl);
//  Whether this CPU can run impl.
bool
    cbus_sha256_impl_available (cbus_sha256_impl_t impl);

//  One compression: state (eight words, initially cbus_sha256_iv) absorbs
//  a 64-byte block.
void
    cbus_sha256_compress (cbus_sha256_impl_t impl, uint32_t state [8], const uint8_t block [64]);
extern const uint32_t cbus_sha256_iv [8];

//  Prepare a scan of message (its nonce bytes are ignored) against target
//  (32 bytes, big-endian, as cbus_pow_target writes it), with impl (one
//  this CPU can run: cbus_sha256_best).
void
    cbus_sha256d_scan_init (cbus_sha256d_scan_t *self,
                            const uint8_t message [CBUS_SHA256D_SCAN_BYTES],
                            const uint8_t target [32], cbus_sha256_impl_t impl);
//  Try count nonces from *nonce. Returns true with *nonce set to the first
//  whose double hash is at most the target, or false with *nonce advanced
//  by count. O(count) compressions, two each.
bool
    cbus_sha256d_scan (const cbus_sha256d_scan_t *self, uint64_t *nonce, uint64_t count);
//  The double hash of the message with this nonce, as the scan computes
//  it (for tests and benches: equals cbus_hash_sha256d of the message).
void
    cbus_sha256d_scan_hash (const cbus_sha256d_scan_t *self, uint64_t nonce,
                            uint8_t out [CBUS_HASH_BYTES]);

void
    cbus_sha256_test (bool verbose);

#endif
