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

//  --------------------------------------------------------------------------
//  The retarget rule (cbus_retarget.h). Numbers in the rule are nine 32-bit
//  limbs, least significant first: 288 bits hold a 256-bit target times a
//  17-bit factor.

#define S_LIMBS 9
typedef struct { uint32_t limb [S_LIMBS]; } s_wide_t;

static void
s_wide_from_bytes (const uint8_t bytes [CBUS_U256_BYTES], s_wide_t *wide)
{
    memset (wide, 0, sizeof (*wide));
    for (int index = 0; index < CBUS_U256_BYTES; index++)
        wide->limb [index / 4] |= (uint32_t) bytes [CBUS_U256_BYTES - 1 - index] << (8 * (index % 4));
}

//  The low 256 bits as 32 bytes big-endian.
static void
s_wide_to_bytes (const s_wide_t *wide, uint8_t bytes [CBUS_U256_BYTES])
{
    for (int index = 0; index < CBUS_U256_BYTES; index++)
        bytes [CBUS_U256_BYTES - 1 - index] = (uint8_t) (wide->limb [index / 4] >> (8 * (index % 4)));
}

static bool
s_wide_is_zero (const s_wide_t *wide)
{
    for (int index = 0; index < S_LIMBS; index++)
        if (wide->limb [index])
            return false;
    return true;
}

//  memcmp-like.
static int
s_wide_cmp (const s_wide_t *a, const s_wide_t *b)
{
    for (int index = S_LIMBS - 1; index >= 0; index--)
        if (a->limb [index] != b->limb [index])
            return a->limb [index] < b->limb [index] ? -1 : 1;
    return 0;
}

//  wide *= factor; the caller keeps the product inside 288 bits.
static void
s_wide_mul (s_wide_t *wide, uint32_t factor)
{
    uint64_t carry = 0;
    for (int index = 0; index < S_LIMBS; index++) {
        uint64_t product = (uint64_t) wide->limb [index] * factor + carry;
        wide->limb [index] = (uint32_t) product;
        carry = product >> 32;
    }
}

//  wide >>= count (count >= 0), rounding down.
static void
s_wide_shift_right (s_wide_t *wide, unsigned count)
{
    s_wide_t out = {{0}};
    unsigned limbs = count / 32, bits = count % 32;
    for (unsigned index = 0; index + limbs < S_LIMBS; index++) {
        uint64_t pair = wide->limb [index + limbs];
        if (index + limbs + 1 < S_LIMBS)
            pair |= (uint64_t) wide->limb [index + limbs + 1] << 32;
        out.limb [index] = (uint32_t) (pair >> bits);
    }
    *wide = out;
}

//  wide <<= count; false if a set bit would leave the 288 bits.
static bool
s_wide_shift_left (s_wide_t *wide, unsigned count)
{
    for (unsigned bit = 0; bit < count; bit++) {
        if (wide->limb [S_LIMBS - 1] & 0x80000000u)
            return false;
        uint32_t carry = 0;
        for (int index = 0; index < S_LIMBS; index++) {
            uint32_t next = wide->limb [index] >> 31;
            wide->limb [index] = (wide->limb [index] << 1) | carry;
            carry = next;
        }
    }
    return true;
}

uint32_t
cbus_pow_compact (const uint8_t target [CBUS_U256_BYTES])
{
    int first = 0;                      //  First significant byte
    while (first < CBUS_U256_BYTES && target [first] == 0)
        first++;
    if (first == CBUS_U256_BYTES)
        return 0x03000001;
    uint32_t size = (uint32_t) (CBUS_U256_BYTES - first);
    uint32_t exponent = size < 3 ? 3 : size;
    //  The three bytes from the exponent's position down.
    uint32_t mantissa = 0;
    for (uint32_t index = 0; index < 3; index++) {
        int position = CBUS_U256_BYTES - (int) exponent + (int) index;
        mantissa = (mantissa << 8) | (position >= 0 ? target [position] : 0);
    }
    if (mantissa & 0x00800000) {        //  Would read as a sign: one byte less
        mantissa >>= 8;
        exponent++;
    }
    return (exponent << 24) | mantissa;
}

uint32_t
cbus_pow_half_life (const cbus_pow_rule_t *rule)
{
    return rule->half_life ? rule->half_life : CBUS_RETARGET_HALF_LIFE_BLOCKS;
}

bool
cbus_pow_needs_anchor (const cbus_pow_rule_t *rule, const cbus_header_t *parent)
{
    return rule->interval_s > 0 && parent->height > CBUS_RETARGET_ANCHOR_HEIGHT;
}

//  2^(frac / 65536) * 65536 for frac in [0, 65536), by aserti3-2d's cubic:
//  within 0.013 % of the exact value, the same on every machine.
static uint32_t
s_pow2_fraction (uint32_t frac)
{
    unsigned __int128 x = frac;
    unsigned __int128 sum = (unsigned __int128) 195766423245049ULL * x
                          + (unsigned __int128) 971821376ULL * x * x
                          + (unsigned __int128) 5127ULL * x * x * x
                          + ((unsigned __int128) 1 << 47);
    return 65536u + (uint32_t) (sum >> 48);
}

uint32_t
cbus_pow_next_bits (const cbus_pow_rule_t *rule, const cbus_header_t *parent,
                    const cbus_header_t *anchor)
{
    if (rule->interval_s == 0 || parent->height < CBUS_RETARGET_ANCHOR_HEIGHT)
        return rule->bits;
    if (parent->height == CBUS_RETARGET_ANCHOR_HEIGHT)
        anchor = parent;
    if (!anchor || anchor->height != CBUS_RETARGET_ANCHOR_HEIGHT)
        return 0;
    uint8_t start_bytes [CBUS_U256_BYTES];
    if (cbus_pow_target (rule->bits, start_bytes))
        return 0;
    //  How far the parent is behind its schedule (ahead when negative),
    //  in ms, then in half-lives as 16.16 fixed point, rounded down.
    __int128 ideal = (__int128) rule->interval_s * 1000;
    __int128 half_life = ideal * cbus_pow_half_life (rule);
    __int128 behind = (__int128) parent->time_ms - (__int128) anchor->time_ms
                    - ideal * (__int128) (parent->height - anchor->height);
    __int128 scaled = behind * 65536;
    __int128 exponent = scaled / half_life;
    if (scaled % half_life != 0 && scaled < 0)
        exponent--;                     //  Floor, not truncation
    //  exponent = 65536 * shifts + frac, 0 <= frac < 65536.
    __int128 frac = exponent % 65536;
    if (frac < 0)
        frac += 65536;
    __int128 shifts = (exponent - frac) / 65536 - 16;
    //  target = start * 2^(frac / 65536) * 2^shifts, with 2^16 folded into
    //  the factor; past +-300 bits the clamps below decide anyway.
    if (shifts > 300)
        shifts = 300;
    if (shifts < -300)
        shifts = -300;
    s_wide_t start, next;
    s_wide_from_bytes (start_bytes, &start);
    next = start;
    s_wide_mul (&next, s_pow2_fraction ((uint32_t) frac));
    bool fits = true;
    if (shifts < 0)
        s_wide_shift_right (&next, (unsigned) -shifts);
    else
        fits = s_wide_shift_left (&next, (unsigned) shifts);
    //  Never easier than the start (nor than the maximum it stands for).
    if (!fits || s_wide_cmp (&next, &start) >= 0)
        return rule->bits;
    uint8_t bytes [CBUS_U256_BYTES];
    s_wide_to_bytes (&next, bytes);
    if (s_wide_is_zero (&next))
        return 0x03000001;              //  Never zero: target 1
    return cbus_pow_compact (bytes);
}

//  --------------------------------------------------------------------------
//  Self test

//  The rule against vectors computed apart (an exact-integer Python
//  model of the formula in docs/architecture.md), then its shape.
static void
s_test_retarget (void)
{
    struct {
        uint32_t start, interval;
        uint64_t parent_height, parent_time, anchor_height, anchor_time;
        uint32_t expected;
    } vectors [] = {
        { 0x1f00ffff, 1, 1, 5000, 1, 5000, 0x1f00ffff },     //  Parent is the anchor
        { 0x1f00ffff, 1, 2, 5500, 1, 5000, 0x1f00fa86 },     //  Half a second early
        { 0x1f00ffff, 1, 10, 14000, 1, 5000, 0x1f00ffff },   //  On schedule
        { 0x1f00ffff, 1, 10, 6000, 1, 5000, 0x1f00b500 },
        { 0x1f00ffff, 1, 17, 5000, 1, 5000, 0x1e7fff80 },    //  One half-life ahead
        { 0x1f00ffff, 1, 33, 5000, 1, 5000, 0x1e3fffc0 },    //  Two
        { 0x2000ffff, 10, 100, 1000000, 1, 0, 0x2000ffff },  //  Behind: clamped to start
        { 0x1d00ffff, 600, 1000, 300000000, 1, 0, 0x1901c1a3 },
        { 0x2100ffff, 1, 5, 1000, 1, 0, 0x2100e0d1 },
        { 0x1f00ffff, 1, 1000000, 0, 1, 1000000000000ULL, 0x03000001 },  //  Never zero
        { 0x1f00ffff, 1, 40, 31655, 1, 5000, 0x1f0095f6 },
        { 0x1e012345, 2, 300, 100000, 1, 1000, 0x1c0181f8 },
        { 0x1f00ffff, 1, 3, 4000, 1, 5000, 0x1f00e0d1 },     //  Parent before the anchor
    };
    for (size_t index = 0; index < sizeof (vectors) / sizeof (vectors [0]); index++) {
        cbus_pow_rule_t rule = { .bits = vectors [index].start, .interval_s = vectors [index].interval };
        cbus_header_t parent = { .height = vectors [index].parent_height,
                                 .time_ms = vectors [index].parent_time };
        cbus_header_t anchor = { .height = vectors [index].anchor_height,
                                 .time_ms = vectors [index].anchor_time };
        uint32_t bits = cbus_pow_next_bits (&rule, &parent, &anchor);
        if (bits != vectors [index].expected)
            printf ("vector %zu: %08x, expected %08x\n", index, bits, vectors [index].expected);
        assert (bits == vectors [index].expected);
    }
    //  Another half-life (8 intervals): vectors of the same model.
    cbus_pow_rule_t short_rule = { .bits = 0x1f00ffff, .interval_s = 1, .half_life = 8 };
    cbus_header_t short_parent = { .height = 9, .time_ms = 5000 }, short_anchor = { .height = 1, .time_ms = 5000 };
    assert (cbus_pow_next_bits (&short_rule, &short_parent, &short_anchor) == 0x1e7fff80);
    short_rule.bits = 0x1f003fff;
    short_parent = (cbus_header_t) { .height = 50, .time_ms = 30000 };
    short_anchor.time_ms = 1000;
    assert (cbus_pow_next_bits (&short_rule, &short_parent, &short_anchor) == 0x1e0b4fe2);
    assert (cbus_pow_half_life (&short_rule) == 8);
    short_rule.half_life = 0;
    assert (cbus_pow_half_life (&short_rule) == CBUS_RETARGET_HALF_LIFE_BLOCKS);
    //  Interval 0: the fixed bits whatever the times; so for block 1 and
    //  block 2 with any interval (the anchor starts the schedule).
    cbus_pow_rule_t fixed = { .bits = 0x1f00ffff, .interval_s = 0 };
    cbus_header_t parent = { .height = 500, .time_ms = 1 }, anchor = { .height = 1, .time_ms = 999999 };
    assert (cbus_pow_next_bits (&fixed, &parent, &anchor) == 0x1f00ffff);
    assert (cbus_pow_next_bits (&fixed, &parent, NULL) == 0x1f00ffff);
    assert (!cbus_pow_needs_anchor (&fixed, &parent));
    cbus_pow_rule_t rule = { .bits = 0x1f00ffff, .interval_s = 1 };
    cbus_header_t genesis = { .height = 0, .time_ms = 1700000000000ULL };
    assert (cbus_pow_next_bits (&rule, &genesis, NULL) == 0x1f00ffff);
    assert (cbus_pow_needs_anchor (&rule, &parent));
    assert (cbus_pow_next_bits (&rule, &parent, NULL) == 0);           //  Anchor missing
    anchor.height = 2;
    assert (cbus_pow_next_bits (&rule, &parent, &anchor) == 0);        //  Not block 1
    //  Monotonic: the later the parent, the easier (never harder) the
    //  target, and never easier than the start.
    anchor = (cbus_header_t) { .height = 1, .time_ms = 1000000 };
    uint8_t previous [CBUS_U256_BYTES] = {0}, target [CBUS_U256_BYTES], start [CBUS_U256_BYTES];
    assert (cbus_pow_target (rule.bits, start) == 0);
    for (uint64_t time = 1000000; time < 1000000 + 200000; time += 997) {
        parent = (cbus_header_t) { .height = 100, .time_ms = time };
        uint32_t bits = cbus_pow_next_bits (&rule, &parent, &anchor);
        assert (cbus_pow_target (bits, target) == 0);
        assert (cbus_u256_cmp (target, previous) >= 0);
        assert (cbus_u256_cmp (target, start) <= 0);
        memcpy (previous, target, CBUS_U256_BYTES);
    }
    assert (cbus_u256_cmp (previous, start) == 0);     //  Far behind: the start
    //  The compact form rounds down and reads back.
    memset (target, 0, sizeof (target));
    assert (cbus_pow_compact (target) == 0x03000001);
    target [31] = 0x7f;
    assert (cbus_pow_compact (target) == 0x0300007f);
    target [29] = 0x80;                 //  0x80007f: the sign bit moves it up
    assert (cbus_pow_compact (target) == 0x04008000);
    uint32_t samples [] = { 0x1d00ffff, 0x1f00ffff, 0x2000ffff, 0x2100ffff, 0x1e7fff80, 0x1c0181f8 };
    for (size_t index = 0; index < sizeof (samples) / sizeof (samples [0]); index++) {
        assert (cbus_pow_target (samples [index], target) == 0);
        assert (cbus_pow_compact (target) == samples [index]);
    }
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
    s_test_retarget ();
    if (verbose)
        printf ("OK\n");
}
