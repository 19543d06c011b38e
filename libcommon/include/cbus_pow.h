/*  =========================================================================
    cbus_pow - proof of work: compact targets, the hash-below-target check
    and chain work as 256-bit unsigned integers.

    Targets travel as Bitcoin's compact "bits" (8-bit exponent, 23-bit
    mantissa). A block's work is floor(2^256 / target) computed exactly on
    the compact form, and chain work is the 256-bit sum over the branch;
    numbers are 32 bytes big-endian so that memcmp orders them.
    =========================================================================
*/
#ifndef CBUS_POW_H_INCLUDED
#define CBUS_POW_H_INCLUDED

#define CBUS_U256_BYTES 32

//  A network's target rule (cbus_retarget.h applies it). Part of its
//  identity: the genesis and the chain store's meta record commit to it.
typedef struct {
    uint32_t bits;                  //  Starting target (the fixed one at interval 0)
    uint32_t interval_s;            //  Target block interval, seconds; 0 = fixed target
    uint32_t half_life;             //  In block intervals; 0 = CBUS_RETARGET_HALF_LIFE_BLOCKS
} cbus_pow_rule_t;

//  Expand compact bits into a 32-byte big-endian target. Returns 0, or -1
//  if the bits are negative, zero or overflow 256 bits.
int
    cbus_pow_target (uint32_t bits, uint8_t target [CBUS_U256_BYTES])
    __attribute__ ((warn_unused_result));
//  True if the hash (as a big-endian number) is at or below target.
bool
    cbus_pow_check (const uint8_t hash [CBUS_HASH_BYTES], uint32_t bits);
//  Work of one block with these bits, as a 32-byte big-endian number.
//  Returns -1 for invalid bits.
int
    cbus_pow_work (uint32_t bits, uint8_t work [CBUS_U256_BYTES])
    __attribute__ ((warn_unused_result));
//  sum = a + b (mod 2^256); sum may alias a or b.
void
    cbus_u256_add (const uint8_t a [CBUS_U256_BYTES], const uint8_t b [CBUS_U256_BYTES],
                   uint8_t sum [CBUS_U256_BYTES]);
//  memcmp-like comparison of two big-endian numbers.
int
    cbus_u256_cmp (const uint8_t a [CBUS_U256_BYTES], const uint8_t b [CBUS_U256_BYTES]);
//  Expected number of hashes for these bits, as a double (for logs/status).
double
    cbus_pow_expected_hashes (uint32_t bits);

void
    cbus_pow_test (bool verbose);

#endif
