/*  =========================================================================
    cbus_pow - proof of work: compact targets, the check, chain work

    A hash meets the target when, read as a 256-bit big-endian number (the
    way it is shown in hex), it is at or below the target: the shown hash
    of a valid block starts with zeroes.
    =========================================================================
*/
#include "cbus.h"
#include <math.h>

//  Split bits into mantissa and shift (target = mantissa << shift).
//  Exponents under 3 would shift right and are refused: no real target
//  is that small, and it keeps the work computation exact.
static int
s_decode_bits (uint32_t bits, uint32_t *mantissa, unsigned *shift)
{
    uint32_t exponent = bits >> 24;
    *mantissa = bits & 0x007fffff;
    if (bits & 0x00800000)          //  Sign bit: negative target
        return -1;
    if (*mantissa == 0 || exponent < 3)
        return -1;
    *shift = 8 * (exponent - 3);
    //  The mantissa's top bit must land inside 256 bits.
    unsigned top = 32 - (unsigned) __builtin_clz (*mantissa);
    if (*shift + top > 256)
        return -1;
    return 0;
}

int
cbus_pow_target (uint32_t bits, uint8_t target [CBUS_U256_BYTES])
{
    uint32_t mantissa;
    unsigned shift;
    if (s_decode_bits (bits, &mantissa, &shift))
        return -1;
    memset (target, 0, CBUS_U256_BYTES);
    //  Place the mantissa's bytes; shift is a multiple of 8.
    for (unsigned index = 0; index < 3; index++) {
        uint8_t byte = (uint8_t) (mantissa >> (8 * index));
        unsigned position = shift / 8 + index;     //  From the low end
        if (byte && position >= CBUS_U256_BYTES)
            return -1;
        if (position < CBUS_U256_BYTES)
            target [CBUS_U256_BYTES - 1 - position] = byte;
    }
    return 0;
}

bool
cbus_pow_check (const uint8_t hash [CBUS_HASH_BYTES], uint32_t bits)
{
    uint8_t target [CBUS_U256_BYTES];
    if (cbus_pow_target (bits, target))
        return false;
    return memcmp (hash, target, CBUS_U256_BYTES) <= 0;
}

int
cbus_pow_work (uint32_t bits, uint8_t work [CBUS_U256_BYTES])
{
    uint32_t mantissa;
    unsigned shift;
    if (s_decode_bits (bits, &mantissa, &shift))
        return -1;
    //  work = floor (2^(256 - shift) / mantissa), by long division over
    //  nine 32-bit limbs, most significant first (limb 0 holds bit 256+).
    uint32_t dividend [9] = {0};
    unsigned power = 256 - shift;
    dividend [8 - power / 32] = 1u << (power % 32);
    uint32_t quotient [9];
    uint64_t remainder = 0;
    for (int index = 0; index < 9; index++) {
        uint64_t current = (remainder << 32) | dividend [index];
        quotient [index] = (uint32_t) (current / mantissa);
        remainder = current % mantissa;
    }
    if (quotient [0])               //  Does not fit in 256 bits
        return -1;
    for (int index = 1; index < 9; index++)
        for (int byte = 0; byte < 4; byte++)
            work [(index - 1) * 4 + byte] = (uint8_t) (quotient [index] >> (24 - 8 * byte));
    return 0;
}

void
cbus_u256_add (const uint8_t a [CBUS_U256_BYTES], const uint8_t b [CBUS_U256_BYTES],
               uint8_t sum [CBUS_U256_BYTES])
{
    unsigned carry = 0;
    for (int index = CBUS_U256_BYTES - 1; index >= 0; index--) {
        unsigned total = (unsigned) a [index] + b [index] + carry;
        sum [index] = (uint8_t) total;
        carry = total >> 8;
    }
}

int
cbus_u256_cmp (const uint8_t a [CBUS_U256_BYTES], const uint8_t b [CBUS_U256_BYTES])
{
    return memcmp (a, b, CBUS_U256_BYTES);
}

double
cbus_pow_expected_hashes (uint32_t bits)
{
    uint8_t work [CBUS_U256_BYTES];
    if (cbus_pow_work (bits, work))
        return 0;
    double value = 0;
    for (int index = 0; index < CBUS_U256_BYTES; index++)
        value = value * 256 + work [index];
    return value;
}

void
cbus_pow_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_pow: ");
    uint8_t target [CBUS_U256_BYTES];
    //  Bitcoin's genesis bits: 0x00000000ffff0000...
    assert (cbus_pow_target (0x1d00ffff, target) == 0);
    for (int index = 0; index < 4; index++)
        assert (target [index] == 0);
    assert (target [4] == 0xff && target [5] == 0xff && target [6] == 0);
    //  Refused: negative, zero mantissa, tiny exponent, overflow.
    assert (cbus_pow_target (0x1d80ffff, target) == -1);
    assert (cbus_pow_target (0x1d000000, target) == -1);
    assert (cbus_pow_target (0x0200ffff, target) == -1);
    assert (cbus_pow_target (0x2200ffff, target) == -1);
    assert (cbus_pow_target (0x2100ffff, target) == 0);
    assert (target [0] == 0xff && target [1] == 0xff);

    //  Work of 0x1f00ffff: 2^(256-224) / 0xffff = 2^32 / 65535 = 65537.
    uint8_t work [CBUS_U256_BYTES], expected [CBUS_U256_BYTES] = {0};
    assert (cbus_pow_work (0x1f00ffff, work) == 0);
    expected [29] = 0x01; expected [30] = 0x00; expected [31] = 0x01;
    assert (cbus_u256_cmp (work, expected) == 0);
    assert (fabs (cbus_pow_expected_hashes (0x1f00ffff) - 65537) < 0.5);
    //  Harder target, more work.
    uint8_t harder [CBUS_U256_BYTES];
    assert (cbus_pow_work (0x1e00ffff, harder) == 0);
    assert (cbus_u256_cmp (harder, work) > 0);
    assert (cbus_pow_work (0x1d80ffff, harder) == -1);

    //  Addition carries across bytes.
    uint8_t a [CBUS_U256_BYTES] = {0}, b [CBUS_U256_BYTES] = {0}, sum [CBUS_U256_BYTES];
    a [31] = 0xff; b [31] = 0x01;
    cbus_u256_add (a, b, sum);
    assert (sum [31] == 0 && sum [30] == 1);

    //  The check: all-zero hash passes, all-ones fails.
    uint8_t hash [CBUS_HASH_BYTES] = {0};
    assert (cbus_pow_check (hash, 0x1f00ffff));
    memset (hash, 0xff, sizeof (hash));
    assert (!cbus_pow_check (hash, 0x1f00ffff));
    assert (!cbus_pow_check (hash, 0x1d80ffff));
    if (verbose)
        printf ("OK\n");
}
