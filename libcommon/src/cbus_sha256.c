/*  =========================================================================
    cbus_sha256 - the SHA-256 compression function, and the miner's scan

    Two implementations of FIPS 180-4's compression: portable C, and the
    x86 SHA extensions (SHA-NI: sha256rnds2 does two rounds, sha256msg1/2
    the message schedule), compiled for that target alone and chosen at
    run time by CPUID, so the binary still runs on a CPU without them.

    The scan (the miner's inner loop) hashes a 100-byte header whose last
    8 bytes are the nonce. Per call: the midstate of bytes 0..63; the
    second block with its padding (bytes 64..99, 0x80, zeroes, the length
    800 bits) as words W0..W15, of which only W7 and W8 (the nonce) vary;
    so rounds 0..5 (SHA-NI) or 0..6 (portable) and the schedule words
    W16..W21 are the same for every nonce and are computed once; so are
    the outer hash's padding words with their round constants. Per nonce
    there remain the rest of one compression and the whole of the outer
    one. The SHA-NI loop runs two nonces side by side: each rnds2 depends
    on the one before, so one chain alone leaves the unit idle for most of
    the instruction's latency; two independent chains fill it (Bitcoin
    Core's double-SHA-256 for SHA-NI does the same).
    =========================================================================
*/
#include "cbus.h"
#include "cbus_sha256.h"
#if defined (__x86_64__) || defined (__i386__)
#   define S_HAVE_X86 1
#   include <cpuid.h>
#   include <immintrin.h>
#endif

const uint32_t cbus_sha256_iv [8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
};

static const uint32_t s_k [64] __attribute__ ((aligned (16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

//  The outer hash's message after the 32-byte first hash: padding and
//  the length, 256 bits.
static const uint32_t s_outer_pad [8] __attribute__ ((aligned (16))) = {
    0x80000000, 0, 0, 0, 0, 0, 0, 256
};

static uint32_t
s_be32 (const uint8_t *in)
{
    return (uint32_t) in [0] << 24 | (uint32_t) in [1] << 16 | (uint32_t) in [2] << 8 | in [3];
}

//  The nonce's two halves as they sit in the block: its little-endian
//  bytes read as big-endian words.
static uint32_t
s_nonce_word (uint64_t nonce, int half)
{
    return __builtin_bswap32 ((uint32_t) (nonce >> (32 * half)));
}

//  --------------------------------------------------------------------------
//  Portable C

#define S_ROTR(x, n)    (((x) >> (n)) | ((x) << (32 - (n))))
#define S_SIGMA0(x)     (S_ROTR (x, 7) ^ S_ROTR (x, 18) ^ ((x) >> 3))
#define S_SIGMA1(x)     (S_ROTR (x, 17) ^ S_ROTR (x, 19) ^ ((x) >> 10))

//  Message words from..63 from the ones before.
static void
s_portable_schedule (uint32_t w [64], int from)
{
    for (int index = from; index < 64; index++)
        w [index] = S_SIGMA1 (w [index - 2]) + w [index - 7] + S_SIGMA0 (w [index - 15])
                  + w [index - 16];
}

//  Rounds from..to-1 on the working variables v (a..h).
static void
s_portable_rounds (uint32_t v [8], const uint32_t w [64], int from, int to)
{
    uint32_t a = v [0], b = v [1], c = v [2], d = v [3];
    uint32_t e = v [4], f = v [5], g = v [6], h = v [7];
    for (int index = from; index < to; index++) {
        uint32_t t1 = h + (S_ROTR (e, 6) ^ S_ROTR (e, 11) ^ S_ROTR (e, 25))
                    + ((e & f) ^ (~e & g)) + s_k [index] + w [index];
        uint32_t t2 = (S_ROTR (a, 2) ^ S_ROTR (a, 13) ^ S_ROTR (a, 22))
                    + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    v [0] = a; v [1] = b; v [2] = c; v [3] = d;
    v [4] = e; v [5] = f; v [6] = g; v [7] = h;
}

static void
s_portable_compress_words (uint32_t state [8], uint32_t w [64])
{
    uint32_t v [8];
    memcpy (v, state, sizeof (v));
    s_portable_schedule (w, 16);
    s_portable_rounds (v, w, 0, 64);
    for (int index = 0; index < 8; index++)
        state [index] += v [index];
}

//  The scan's nonce-independent part: the second block's rounds 0..6 and
//  schedule words W16..W21 (W7 is the first word that varies).
typedef struct {
    uint32_t w [64];                //  Second block's schedule, W0..W21 fixed
    uint32_t after [8];             //  Working variables after round 6
} s_portable_pre_t;

static void
s_portable_prepare (const cbus_sha256d_scan_t *self, s_portable_pre_t *pre)
{
    memcpy (pre->w, self->block, 16 * sizeof (uint32_t));
    for (int index = 16; index < 22; index++)
        pre->w [index] = S_SIGMA1 (pre->w [index - 2]) + pre->w [index - 7]
                       + S_SIGMA0 (pre->w [index - 15]) + pre->w [index - 16];
    memcpy (pre->after, self->midstate, sizeof (pre->after));
    s_portable_rounds (pre->after, pre->w, 0, 7);
}

static void
s_portable_hash (const cbus_sha256d_scan_t *self, s_portable_pre_t *pre, uint64_t nonce,
                 uint32_t out [8])
{
    pre->w [7] = s_nonce_word (nonce, 0);
    pre->w [8] = s_nonce_word (nonce, 1);
    s_portable_schedule (pre->w, 22);
    uint32_t v [8];
    memcpy (v, pre->after, sizeof (v));
    s_portable_rounds (v, pre->w, 7, 64);
    uint32_t outer [64];
    for (int index = 0; index < 8; index++)
        outer [index] = self->midstate [index] + v [index];
    memcpy (outer + 8, s_outer_pad, sizeof (s_outer_pad));
    memcpy (out, cbus_sha256_iv, 8 * sizeof (uint32_t));
    s_portable_compress_words (out, outer);
}

//  --------------------------------------------------------------------------
//  SHA-NI

#ifdef S_HAVE_X86
#define S_SHANI __attribute__ ((target ("sha,sse4.1")))
#define S_SHANI_INLINE static inline __attribute__ ((always_inline, target ("sha,sse4.1")))

//  State words a..h into the two registers sha256rnds2 takes: ABEF (a in
//  the top lane) and CDGH.
S_SHANI_INLINE void
s_shani_load (const uint32_t state [8], __m128i *abef, __m128i *cdgh)
{
    __m128i badc = _mm_shuffle_epi32 (_mm_loadu_si128 ((const __m128i *) state), 0xB1);
    __m128i hgfe = _mm_shuffle_epi32 (_mm_loadu_si128 ((const __m128i *) (state + 4)), 0x1B);
    *abef = _mm_alignr_epi8 (badc, hgfe, 8);
    *cdgh = _mm_blend_epi16 (hgfe, badc, 0xF0);
}

//  And back: words a..d and e..h, one register each.
S_SHANI_INLINE void
s_shani_unload (__m128i abef, __m128i cdgh, __m128i *abcd, __m128i *efgh)
{
    __m128i feba = _mm_shuffle_epi32 (abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32 (cdgh, 0xB1);
    *abcd = _mm_blend_epi16 (feba, dchg, 0xF0);
    *efgh = _mm_alignr_epi8 (dchg, feba, 8);
}

//  Round constants 4 * group .. 4 * group + 3.
S_SHANI_INLINE __m128i
s_shani_k (int group)
{
    return _mm_load_si128 ((const __m128i *) (s_k + 4 * group));
}

//  Four rounds, given the message words plus their round constants.
S_SHANI_INLINE void
s_shani_rounds (__m128i *abef, __m128i *cdgh, __m128i wk)
{
    *cdgh = _mm_sha256rnds2_epu32 (*cdgh, *abef, wk);
    *abef = _mm_sha256rnds2_epu32 (*abef, *cdgh, _mm_shuffle_epi32 (wk, 0x0E));
}

//  The next four message words from the sixteen before (oldest first).
S_SHANI_INLINE __m128i
s_shani_next (__m128i w0, __m128i w1, __m128i w2, __m128i w3)
{
    __m128i sum = _mm_add_epi32 (_mm_sha256msg1_epu32 (w0, w1), _mm_alignr_epi8 (w3, w2, 4));
    return _mm_sha256msg2_epu32 (sum, w3);
}

//  Groups first..15 of two compressions side by side, each with its four
//  latest message registers (w [group % 4] is the oldest).
S_SHANI_INLINE void
s_shani_groups2 (__m128i state [4], __m128i wa [4], __m128i wb [4], int first)
{
#pragma GCC unroll 16
    for (int group = first; group < 16; group++) {
        int slot = group & 3;
        if (group >= 4) {
            wa [slot] = s_shani_next (wa [slot], wa [(slot + 1) & 3], wa [(slot + 2) & 3],
                                      wa [(slot + 3) & 3]);
            wb [slot] = s_shani_next (wb [slot], wb [(slot + 1) & 3], wb [(slot + 2) & 3],
                                      wb [(slot + 3) & 3]);
        }
        __m128i k = s_shani_k (group);
        s_shani_rounds (&state [0], &state [1], _mm_add_epi32 (wa [slot], k));
        s_shani_rounds (&state [2], &state [3], _mm_add_epi32 (wb [slot], k));
    }
}

static S_SHANI void
s_shani_compress (uint32_t state [8], const uint8_t block [64])
{
    const __m128i swap = _mm_set_epi64x (0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i abef, cdgh;
    s_shani_load (state, &abef, &cdgh);
    __m128i start_abef = abef, start_cdgh = cdgh;
    __m128i w [4];
    for (int slot = 0; slot < 4; slot++)
        w [slot] = _mm_shuffle_epi8 (_mm_loadu_si128 ((const __m128i *) (block + 16 * slot)), swap);
#pragma GCC unroll 16
    for (int group = 0; group < 16; group++) {
        int slot = group & 3;
        if (group >= 4)
            w [slot] = s_shani_next (w [slot], w [(slot + 1) & 3], w [(slot + 2) & 3],
                                     w [(slot + 3) & 3]);
        s_shani_rounds (&abef, &cdgh, _mm_add_epi32 (w [slot], s_shani_k (group)));
    }
    abef = _mm_add_epi32 (abef, start_abef);
    cdgh = _mm_add_epi32 (cdgh, start_cdgh);
    __m128i abcd, efgh;
    s_shani_unload (abef, cdgh, &abcd, &efgh);
    _mm_storeu_si128 ((__m128i *) state, abcd);
    _mm_storeu_si128 ((__m128i *) (state + 4), efgh);
}

//  The scan's nonce-independent part in SHA-NI registers.
typedef struct {
    __m128i mid_abef, mid_cdgh;     //  Midstate
    __m128i after_abef, after_cdgh; //  After rounds 0..5 of the second block
    __m128i w1, w2, w3, w4;         //  W4..W7 (W7 per nonce), W8..W11 (W8
                                    //  per nonce), W12..W15, W16..W19
    __m128i iv_abef, iv_cdgh;       //  The outer hash's start
    __m128i outer_wk2, outer_wk3;   //  Its padding words plus constants
} s_shani_pre_t;

static S_SHANI void
s_shani_prepare (const cbus_sha256d_scan_t *self, s_shani_pre_t *pre)
{
    __m128i w0 = _mm_loadu_si128 ((const __m128i *) self->block);
    pre->w1 = _mm_loadu_si128 ((const __m128i *) (self->block + 4));
    pre->w2 = _mm_loadu_si128 ((const __m128i *) (self->block + 8));
    pre->w3 = _mm_loadu_si128 ((const __m128i *) (self->block + 12));
    //  W16..W19 use W0..W4 and W9..W15: no nonce word.
    pre->w4 = s_shani_next (w0, pre->w1, pre->w2, pre->w3);
    s_shani_load (self->midstate, &pre->mid_abef, &pre->mid_cdgh);
    __m128i abef = pre->mid_abef, cdgh = pre->mid_cdgh;
    s_shani_rounds (&abef, &cdgh, _mm_add_epi32 (w0, s_shani_k (0)));
    //  Rounds 4 and 5 (W4, W5); rounds 6 and 7 wait for the nonce.
    cdgh = _mm_sha256rnds2_epu32 (cdgh, abef, _mm_add_epi32 (pre->w1, s_shani_k (1)));
    pre->after_abef = cdgh;
    pre->after_cdgh = abef;
    s_shani_load (cbus_sha256_iv, &pre->iv_abef, &pre->iv_cdgh);
    pre->outer_wk2 = _mm_add_epi32 (_mm_load_si128 ((const __m128i *) s_outer_pad),
                                    s_shani_k (2));
    pre->outer_wk3 = _mm_add_epi32 (_mm_load_si128 ((const __m128i *) (s_outer_pad + 4)),
                                    s_shani_k (3));
}

//  The double hashes of two nonces: out [0], out [1] are a's words a..d
//  and e..h, out [2], out [3] b's.
S_SHANI_INLINE void
s_shani_hash2 (const s_shani_pre_t *pre, uint64_t nonce_a, uint64_t nonce_b, __m128i out [4])
{
    __m128i wa [4], wb [4];
    wa [1] = _mm_insert_epi32 (pre->w1, (int) s_nonce_word (nonce_a, 0), 3);
    wb [1] = _mm_insert_epi32 (pre->w1, (int) s_nonce_word (nonce_b, 0), 3);
    wa [2] = _mm_insert_epi32 (pre->w2, (int) s_nonce_word (nonce_a, 1), 0);
    wb [2] = _mm_insert_epi32 (pre->w2, (int) s_nonce_word (nonce_b, 1), 0);
    wa [3] = wb [3] = pre->w3;
    wa [0] = wb [0] = pre->w4;
    //  Rounds 6 and 7, groups 2..4 (W16..W19 made once, in slot 0), then
    //  groups 5..15.
    __m128i state [4] = { pre->after_abef, pre->after_cdgh, pre->after_abef, pre->after_cdgh };
    __m128i k1 = s_shani_k (1);
    state [0] = _mm_sha256rnds2_epu32 (pre->after_cdgh, pre->after_abef,
                                       _mm_shuffle_epi32 (_mm_add_epi32 (wa [1], k1), 0x0E));
    state [2] = _mm_sha256rnds2_epu32 (pre->after_cdgh, pre->after_abef,
                                       _mm_shuffle_epi32 (_mm_add_epi32 (wb [1], k1), 0x0E));
    state [1] = state [3] = pre->after_abef;
    for (int group = 2; group < 4; group++) {
        __m128i k = s_shani_k (group);
        s_shani_rounds (&state [0], &state [1], _mm_add_epi32 (wa [group], k));
        s_shani_rounds (&state [2], &state [3], _mm_add_epi32 (wb [group], k));
    }
    __m128i k4 = _mm_add_epi32 (pre->w4, s_shani_k (4));
    s_shani_rounds (&state [0], &state [1], k4);
    s_shani_rounds (&state [2], &state [3], k4);
    //  Slots now hold W16..19, W4..7, W8..11, W12..15: slot 1 is the
    //  oldest, as group 5 wants.
    s_shani_groups2 (state, wa, wb, 5);
    __m128i first [4];
    s_shani_unload (_mm_add_epi32 (state [0], pre->mid_abef),
                    _mm_add_epi32 (state [1], pre->mid_cdgh), &first [0], &first [1]);
    s_shani_unload (_mm_add_epi32 (state [2], pre->mid_abef),
                    _mm_add_epi32 (state [3], pre->mid_cdgh), &first [2], &first [3]);

    //  The outer hash: W0..W7 the first hash, W8..W15 the padding.
    const __m128i pad2 = _mm_load_si128 ((const __m128i *) s_outer_pad);
    const __m128i pad3 = _mm_load_si128 ((const __m128i *) (s_outer_pad + 4));
    __m128i oa [4] = { first [0], first [1], pad2, pad3 };
    __m128i ob [4] = { first [2], first [3], pad2, pad3 };
    state [0] = state [2] = pre->iv_abef;
    state [1] = state [3] = pre->iv_cdgh;
    for (int group = 0; group < 2; group++) {
        __m128i k = s_shani_k (group);
        s_shani_rounds (&state [0], &state [1], _mm_add_epi32 (oa [group], k));
        s_shani_rounds (&state [2], &state [3], _mm_add_epi32 (ob [group], k));
    }
    s_shani_rounds (&state [0], &state [1], pre->outer_wk2);
    s_shani_rounds (&state [2], &state [3], pre->outer_wk2);
    s_shani_rounds (&state [0], &state [1], pre->outer_wk3);
    s_shani_rounds (&state [2], &state [3], pre->outer_wk3);
    s_shani_groups2 (state, oa, ob, 4);
    s_shani_unload (_mm_add_epi32 (state [0], pre->iv_abef),
                    _mm_add_epi32 (state [1], pre->iv_cdgh), &out [0], &out [1]);
    s_shani_unload (_mm_add_epi32 (state [2], pre->iv_abef),
                    _mm_add_epi32 (state [3], pre->iv_cdgh), &out [2], &out [3]);
}
#endif

//  --------------------------------------------------------------------------
//  Choosing one

static bool
s_cpu_has_shani (void)
{
#ifdef S_HAVE_X86
    unsigned int eax, ebx, ecx, edx;
    if (__get_cpuid_max (0, NULL) < 7 || !__get_cpuid (1, &eax, &ebx, &ecx, &edx))
        return false;
    bool sse = (ecx & (1u << 19)) && (ecx & (1u << 9));     //  SSE4.1, SSSE3
    __cpuid_count (7, 0, eax, ebx, ecx, edx);
    return sse && (ebx & (1u << 29));                       //  SHA
#else
    return false;
#endif
}

bool
cbus_sha256_impl_available (cbus_sha256_impl_t impl)
{
    return impl == CBUS_SHA256_PORTABLE || (impl == CBUS_SHA256_SHANI && s_cpu_has_shani ());
}

cbus_sha256_impl_t
cbus_sha256_best (void)
{
    //  0 not decided yet, else the implementation plus one. Threads that
    //  race here decide the same.
    static int decided = 0;
    int value = __atomic_load_n (&decided, __ATOMIC_RELAXED);
    if (value == 0) {
        const char *forced = getenv ("CHAINBUS_SHA256");
        bool portable = (forced && streq (forced, "portable")) || !s_cpu_has_shani ();
        value = 1 + (portable ? CBUS_SHA256_PORTABLE : CBUS_SHA256_SHANI);
        if (__atomic_exchange_n (&decided, value, __ATOMIC_RELAXED) == 0)
            zsys_info ("sha256 hasher=%s%s", portable ? "portable" : "sha-ni",
                       forced && streq (forced, "portable") ? " (CHAINBUS_SHA256=portable)" : "");
    }
    return (cbus_sha256_impl_t) (value - 1);
}

const char *
cbus_sha256_impl_name (cbus_sha256_impl_t impl)
{
    return impl == CBUS_SHA256_SHANI ? "sha-ni" : "portable";
}

void
cbus_sha256_compress (cbus_sha256_impl_t impl, uint32_t state [8], const uint8_t block [64])
{
#ifdef S_HAVE_X86
    if (impl == CBUS_SHA256_SHANI) {
        s_shani_compress (state, block);
        return;
    }
#endif
    uint32_t w [64];
    for (int index = 0; index < 16; index++)
        w [index] = s_be32 (block + 4 * index);
    s_portable_compress_words (state, w);
}

void
cbus_sha256d_scan_init (cbus_sha256d_scan_t *self, const uint8_t message [CBUS_SHA256D_SCAN_BYTES],
                        const uint8_t target [32], cbus_sha256_impl_t impl)
{
    assert (cbus_sha256_impl_available (impl));
    self->impl = impl;
    memcpy (self->midstate, cbus_sha256_iv, sizeof (self->midstate));
    cbus_sha256_compress (impl, self->midstate, message);
    uint8_t block [64] = {0};
    memcpy (block, message + 64, CBUS_SHA256D_SCAN_BYTES - 64);
    block [CBUS_SHA256D_SCAN_BYTES - 64] = 0x80;
    uint64_t bits = 8 * CBUS_SHA256D_SCAN_BYTES;
    for (int index = 0; index < 8; index++)
        block [63 - index] = (uint8_t) (bits >> (8 * index));
    for (int index = 0; index < 16; index++)
        self->block [index] = s_be32 (block + 4 * index);
    for (int index = 0; index < 8; index++)
        self->target [index] = s_be32 (target + 4 * index);
}

//  Is the hash (eight words) at most the target? Lexicographic order of
//  the words is the order of the big-endian bytes.
static bool
s_meets (const uint32_t hash [8], const uint32_t target [8])
{
    for (int index = 0; index < 8; index++)
        if (hash [index] != target [index])
            return hash [index] < target [index];
    return true;
}

#ifdef S_HAVE_X86
static S_SHANI bool
s_shani_scan (const cbus_sha256d_scan_t *self, uint64_t *nonce_p, uint64_t count)
{
    s_shani_pre_t pre;
    s_shani_prepare (self, &pre);
    uint64_t nonce = *nonce_p;
    for (uint64_t done = 0; done < count; done += 2, nonce += 2) {
        __m128i out [4];
        s_shani_hash2 (&pre, nonce, nonce + 1, out);
        //  The first word decides almost always; the rest only on a tie
        //  or a hit. A count that is odd does not try its last pair's b.
        uint32_t first_a = (uint32_t) _mm_cvtsi128_si32 (out [0]);
        uint32_t first_b = (uint32_t) _mm_cvtsi128_si32 (out [2]);
        if (first_a > self->target [0] && first_b > self->target [0])
            continue;
        uint32_t words [16];
        for (int index = 0; index < 4; index++)
            _mm_storeu_si128 ((__m128i *) (words + 4 * index), out [index]);
        if (s_meets (words, self->target)) {
            *nonce_p = nonce;
            return true;
        }
        if (done + 1 < count && s_meets (words + 8, self->target)) {
            *nonce_p = nonce + 1;
            return true;
        }
    }
    *nonce_p += count;
    return false;
}

//  One nonce's double hash (the other lane computes its neighbour).
static S_SHANI void
s_shani_hash_one (const cbus_sha256d_scan_t *self, uint64_t nonce, uint32_t hash [8])
{
    s_shani_pre_t pre;
    s_shani_prepare (self, &pre);
    __m128i both [4];
    s_shani_hash2 (&pre, nonce, nonce ^ 1, both);
    _mm_storeu_si128 ((__m128i *) hash, both [0]);
    _mm_storeu_si128 ((__m128i *) (hash + 4), both [1]);
}
#endif

bool
cbus_sha256d_scan (const cbus_sha256d_scan_t *self, uint64_t *nonce_p, uint64_t count)
{
#ifdef S_HAVE_X86
    if (self->impl == CBUS_SHA256_SHANI)
        return s_shani_scan (self, nonce_p, count);
#endif
    s_portable_pre_t pre;
    s_portable_prepare (self, &pre);
    uint64_t nonce = *nonce_p;
    for (uint64_t done = 0; done < count; done++, nonce++) {
        uint32_t hash [8];
        s_portable_hash (self, &pre, nonce, hash);
        if (hash [0] <= self->target [0] && s_meets (hash, self->target)) {
            *nonce_p = nonce;
            return true;
        }
    }
    *nonce_p += count;
    return false;
}

void
cbus_sha256d_scan_hash (const cbus_sha256d_scan_t *self, uint64_t nonce,
                        uint8_t out [CBUS_HASH_BYTES])
{
    uint32_t hash [8];
#ifdef S_HAVE_X86
    if (self->impl == CBUS_SHA256_SHANI)
        s_shani_hash_one (self, nonce, hash);
    else
#endif
    {
        s_portable_pre_t pre;
        s_portable_prepare (self, &pre);
        s_portable_hash (self, &pre, nonce, hash);
    }
    for (int index = 0; index < 8; index++)
        for (int byte = 0; byte < 4; byte++)
            out [4 * index + byte] = (uint8_t) (hash [index] >> (24 - 8 * byte));
}

//  --------------------------------------------------------------------------
//  Self-test

//  xorshift64: reproducible "random" bytes (a failing case can be rerun).
static uint64_t
s_next_random (uint64_t *seed)
{
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    return *seed;
}

static void
s_put_nonce (uint8_t message [CBUS_SHA256D_SCAN_BYTES], uint64_t nonce)
{
    for (int index = 0; index < 8; index++)
        message [CBUS_SHA256D_SCAN_BYTES - 8 + index] = (uint8_t) (nonce >> (8 * index));
}

//  The first nonce from start, within count, whose double hash meets the
//  target, by OpenSSL: what the scan must find.
static bool
s_reference_scan (uint8_t message [CBUS_SHA256D_SCAN_BYTES], const uint8_t target [32],
                  uint64_t start, uint64_t count, uint64_t *found)
{
    for (uint64_t nonce = start; nonce != start + count; nonce++) {
        s_put_nonce (message, nonce);
        uint8_t hash [CBUS_HASH_BYTES];
        cbus_hash_sha256d (message, CBUS_SHA256D_SCAN_BYTES, hash);
        if (memcmp (hash, target, 32) <= 0) {
            *found = nonce;
            return true;
        }
    }
    return false;
}

void
cbus_sha256_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_sha256 (%s): ", cbus_sha256_impl_name (cbus_sha256_best ()));
    cbus_sha256_impl_t impls [] = { CBUS_SHA256_PORTABLE, CBUS_SHA256_SHANI };
    //  Known answer: SHA-256 ("abc") is one padded block.
    uint8_t abc [64] = { 'a', 'b', 'c', 0x80 };
    abc [63] = 24;
    for (int which = 0; which < 2; which++) {
        if (!cbus_sha256_impl_available (impls [which])) {
            //  This CPU has no SHA instructions: the portable code is all
            //  there is, and best must say so.
            assert (cbus_sha256_best () == CBUS_SHA256_PORTABLE);
            continue;
        }
        uint32_t state [8];
        memcpy (state, cbus_sha256_iv, sizeof (state));
        cbus_sha256_compress (impls [which], state, abc);
        assert (state [0] == 0xba7816bf && state [7] == 0xf20015ad);
    }
    //  Random headers and nonces (the high half's edges too): every
    //  implementation's double hash is OpenSSL's.
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    uint8_t message [CBUS_SHA256D_SCAN_BYTES];
    uint8_t target [32];
    memset (target, 0xff, sizeof (target));
    for (int round = 0; round < 3000; round++) {
        for (size_t index = 0; index < sizeof (message); index++)
            message [index] = (uint8_t) s_next_random (&seed);
        uint64_t nonce = s_next_random (&seed);
        if (round % 3 == 1)
            nonce = 0xfffffffeULL + (uint64_t) (round % 4);
        else
        if (round % 3 == 2)
            nonce = UINT64_MAX - (uint64_t) (round % 4);
        s_put_nonce (message, nonce);
        uint8_t expected [CBUS_HASH_BYTES];
        cbus_hash_sha256d (message, sizeof (message), expected);
        //  The scan ignores the nonce bytes it was prepared with.
        s_put_nonce (message, s_next_random (&seed));
        for (int which = 0; which < 2; which++) {
            if (!cbus_sha256_impl_available (impls [which]))
                continue;
            cbus_sha256d_scan_t scan;
            cbus_sha256d_scan_init (&scan, message, target, impls [which]);
            uint8_t hash [CBUS_HASH_BYTES];
            cbus_sha256d_scan_hash (&scan, nonce, hash);
            assert (memcmp (hash, expected, CBUS_HASH_BYTES) == 0);
            //  Compression of a random block: both give the same state.
            uint32_t state [8], other [8];
            memcpy (state, message + 4, sizeof (state));
            memcpy (other, state, sizeof (other));
            cbus_sha256_compress (impls [which], state, message + 16);
            cbus_sha256_compress (CBUS_SHA256_PORTABLE, other, message + 16);
            assert (memcmp (state, other, sizeof (state)) == 0);
        }
    }
    //  The scan finds the first nonce that meets an easy target (one in
    //  about 64), as a nonce-by-nonce search with OpenSSL does; odd and
    //  even counts and starts, a start just below the high half's change.
    memset (target, 0, sizeof (target));
    target [0] = 0x03;
    uint64_t starts [] = { 0, 1, 0xffffffe0ULL, 12345 };
    uint64_t counts [] = { 0, 1, 2, 3, 200, 201 };
    for (int round = 0; round < 40; round++) {
        for (size_t index = 0; index < sizeof (message); index++)
            message [index] = (uint8_t) s_next_random (&seed);
        uint64_t start = starts [round % 4];
        uint64_t count = counts [round % 6];
        uint64_t expected = 0;
        bool expect = s_reference_scan (message, target, start, count, &expected);
        for (int which = 0; which < 2; which++) {
            if (!cbus_sha256_impl_available (impls [which]))
                continue;
            cbus_sha256d_scan_t scan;
            cbus_sha256d_scan_init (&scan, message, target, impls [which]);
            uint64_t nonce = start;
            bool found = cbus_sha256d_scan (&scan, &nonce, count);
            assert (found == expect);
            assert (nonce == (found ? expected : start + count));
        }
    }
    if (verbose)
        printf ("OK\n");
}
