/*  =========================================================================
    cbus_bench_miner - the miner's nonces per second against the machine's
    SHA-256 limit, measured in the same run (issue 10, item 4)

    Usage: cbus_bench_miner [ROUNDS [MS]]   (default 7 rounds of 300 ms each)
    Each round measures, one after the other on one thread:
        bulk     OpenSSL SHA256 () over a 64 MiB buffer: the machine's
                 SHA-256 rate in 64-byte blocks per second; a nonce costs
                 at least two compressions, so the ceiling is half of it
        search   cbus_header_search (what chainbus-miner runs), with the
                 implementation cbus_sha256_best chose
        portable cbus_sha256d_scan forced to the portable C compression
        transform OpenSSL's exported block function SHA256_Transform with
                 a midstate, two calls a nonce (deprecated in OpenSSL 3)
        update   OpenSSL SHA256_Update/Final with a midstate (the miner's
                 code before this change), on the 100-byte header
        update_v1 the same on a 124-byte header: the miner before issue 10
    Rates are per second of the thread's CPU time (CLOCK_THREAD_CPUTIME_ID)
    so that other processes on a shared machine do not lower them; each
    figure is the median over the rounds, and the ratio is the median of
    each round's search / ceiling. Then 1 and 2 threads (and the number of
    CPUs when larger) run cbus_header_search at once for ROUNDS * MS ms of
    wall time: their total nonces per second of wall time, and the CPU
    share they got (CPU time / (threads * wall time)): on an idle machine
    the total grows with the threads up to the number of cores.
    Prints key=value lines, then a short table.
    =========================================================================
*/
#include "cbus.h"
#include <pthread.h>
#include <time.h>
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#define S_BULK_BYTES (64u * 1024 * 1024)
#define S_SLICE 65536               //  Nonces per cbus_header_search call
#define S_MAX_ROUNDS 31

static int64_t
s_clock_ns (clockid_t clock)
{
    struct timespec now;
    clock_gettime (clock, &now);
    return (int64_t) now.tv_sec * 1000000000 + now.tv_nsec;
}

static int
s_compare_double (const void *left, const void *right)
{
    double a = *(const double *) left, b = *(const double *) right;
    return a < b ? -1 : a > b;
}

static double
s_median (double *values, int count)
{
    qsort (values, (size_t) count, sizeof (double), s_compare_double);
    return values [count / 2];
}

//  A header no nonce in the bench meets (target 1): every nonce is hashed
//  and none is a hit.
static void
s_bench_header (cbus_header_t *header, uint32_t miner)
{
    memset (header, 0, sizeof (*header));
    header->version = CBUS_BLOCK_VERSION;
    header->height = 1234;
    for (int index = 0; index < CBUS_HASH_BYTES; index++) {
        header->prev_hash [index] = (uint8_t) (index * 7 + 1);
        header->merkle_root [index] = (uint8_t) (index * 13 + 5);
    }
    header->time_ms = 1764000000000ULL;
    header->bits = 0x03000001;
    header->miner = miner;
    header->nonce = (uint64_t) miner << 40;
}

//  Each measure runs for about ms of CPU time and returns units per CPU
//  second.
typedef double (s_measure_fn) (int ms);

static double
s_measure_bulk (int ms)
{
    static uint8_t *buffer = NULL;
    if (!buffer) {
        buffer = (uint8_t *) malloc (S_BULK_BYTES);
        assert (buffer);
        for (size_t index = 0; index < S_BULK_BYTES; index++)
            buffer [index] = (uint8_t) (index * 31);
    }
    uint8_t hash [SHA256_DIGEST_LENGTH];
    int64_t started = s_clock_ns (CLOCK_THREAD_CPUTIME_ID), took;
    double blocks = 0;
    do {
        SHA256 (buffer, S_BULK_BYTES, hash);
        blocks += S_BULK_BYTES / 64.0;
        took = s_clock_ns (CLOCK_THREAD_CPUTIME_ID) - started;
    } while (took < (int64_t) ms * 1000000);
    assert (hash [0] || hash [1] || hash [2]);
    return blocks * 1e9 / (double) took;
}

static double
s_measure_search (int ms)
{
    cbus_header_t header;
    s_bench_header (&header, 1);
    int64_t started = s_clock_ns (CLOCK_THREAD_CPUTIME_ID), took;
    double nonces = 0;
    do {
        bool found = cbus_header_search (&header, S_SLICE);
        assert (!found);
        nonces += S_SLICE;
        took = s_clock_ns (CLOCK_THREAD_CPUTIME_ID) - started;
    } while (took < (int64_t) ms * 1000000);
    return nonces * 1e9 / (double) took;
}

static double
s_measure_portable (int ms)
{
    cbus_header_t header;
    s_bench_header (&header, 2);
    uint8_t bytes [CBUS_HEADER_BYTES], target [CBUS_U256_BYTES];
    cbus_header_encode (&header, bytes);
    int rc = cbus_pow_target (header.bits, target);
    assert (rc == 0);
    cbus_sha256d_scan_t scan;
    cbus_sha256d_scan_init (&scan, bytes, target, CBUS_SHA256_PORTABLE);
    uint64_t nonce = 0;
    int64_t started = s_clock_ns (CLOCK_THREAD_CPUTIME_ID), took;
    double nonces = 0;
    do {
        bool found = cbus_sha256d_scan (&scan, &nonce, S_SLICE / 4);
        assert (!found);
        nonces += S_SLICE / 4;
        took = s_clock_ns (CLOCK_THREAD_CPUTIME_ID) - started;
    } while (took < (int64_t) ms * 1000000);
    return nonces * 1e9 / (double) took;
}

static void
s_put_be32 (uint8_t *out, uint32_t value)
{
    out [0] = (uint8_t) (value >> 24);
    out [1] = (uint8_t) (value >> 16);
    out [2] = (uint8_t) (value >> 8);
    out [3] = (uint8_t) value;
}

//  The best a miner gets from OpenSSL's exported calls: the midstate, then
//  SHA256_Transform of the padded second block and of the padded first
//  hash. Checked against cbus_header_hash on its first nonce.
static double
s_measure_transform (int ms)
{
    cbus_header_t header;
    s_bench_header (&header, 3);
    uint8_t bytes [CBUS_HEADER_BYTES];
    cbus_header_encode (&header, bytes);
    SHA256_CTX midstate;
    SHA256_Init (&midstate);
    SHA256_Update (&midstate, bytes, 64);
    uint8_t second [64] = {0}, outer [64] = {0};
    memcpy (second, bytes + 64, CBUS_HEADER_BYTES - 64);
    second [CBUS_HEADER_BYTES - 64] = 0x80;
    s_put_be32 (second + 60, 8 * CBUS_HEADER_BYTES);
    outer [32] = 0x80;
    s_put_be32 (outer + 60, 256);
    SHA256_CTX iv;
    SHA256_Init (&iv);
    uint32_t hits = 0;
    uint64_t nonce = header.nonce;
    int64_t started = s_clock_ns (CLOCK_THREAD_CPUTIME_ID), took;
    double nonces = 0;
    do {
        for (int count = 0; count < S_SLICE; count++, nonce++) {
            memcpy (second + 28, &nonce, 8);        //  x86: little-endian
            SHA256_CTX context = midstate;
            SHA256_Transform (&context, second);
            for (int index = 0; index < 8; index++)
                s_put_be32 (outer + 4 * index, context.h [index]);
            SHA256_CTX final = iv;
            SHA256_Transform (&final, outer);
            if (nonces == 0 && count == 0) {
                uint8_t expected [CBUS_HASH_BYTES];
                cbus_header_hash (&header, expected);
                for (int index = 0; index < 8; index++)
                    s_put_be32 (outer + 4 * index, final.h [index]);
                assert (memcmp (outer, expected, CBUS_HASH_BYTES) == 0);
            }
            hits += final.h [0] == 0;
        }
        nonces += S_SLICE;
        took = s_clock_ns (CLOCK_THREAD_CPUTIME_ID) - started;
    } while (took < (int64_t) ms * 1000000);
    assert (hits < 2);
    return nonces * 1e9 / (double) took;
}

//  The miner's loop before this change (SHA256_Update/Final from a
//  midstate), on a header of size bytes: 100, or 124 as version 1 was
//  (the same fields and 24 zero bytes).
static double
s_measure_update_sized (int ms, size_t size)
{
    cbus_header_t header;
    s_bench_header (&header, 4);
    uint8_t bytes [124] = {0};
    assert (size <= sizeof (bytes) && size >= CBUS_HEADER_BYTES);
    cbus_header_encode (&header, bytes);
    SHA256_CTX midstate;
    SHA256_Init (&midstate);
    SHA256_Update (&midstate, bytes, 64);
    uint32_t hits = 0;
    uint64_t nonce = header.nonce;
    int64_t started = s_clock_ns (CLOCK_THREAD_CPUTIME_ID), took;
    double nonces = 0;
    do {
        for (int count = 0; count < S_SLICE; count++, nonce++) {
            memcpy (bytes + 92, &nonce, 8);
            SHA256_CTX context = midstate;
            uint8_t first [SHA256_DIGEST_LENGTH], hash [SHA256_DIGEST_LENGTH];
            SHA256_Update (&context, bytes + 64, size - 64);
            SHA256_Final (first, &context);
            SHA256_Init (&context);
            SHA256_Update (&context, first, sizeof (first));
            SHA256_Final (hash, &context);
            hits += hash [0] == 0 && hash [1] == 0 && hash [2] == 0 && hash [3] == 0;
        }
        nonces += S_SLICE;
        took = s_clock_ns (CLOCK_THREAD_CPUTIME_ID) - started;
    } while (took < (int64_t) ms * 1000000);
    assert (hits < 2);
    return nonces * 1e9 / (double) took;
}

static double
s_measure_update (int ms)
{
    return s_measure_update_sized (ms, CBUS_HEADER_BYTES);
}

static double
s_measure_update_v1 (int ms)
{
    return s_measure_update_sized (ms, 124);
}

//  Threads searching at once until told to stop.
typedef struct {
    pthread_t thread;
    uint32_t miner;                 //  Its own nonce space, as miners have
    volatile int *stop;             //  Set by main when the time is up
    double nonces;                  //  Nonces tried
    double cpu_ns;                  //  Its CPU time
} s_worker_t;

static void *
s_worker (void *arg)
{
    s_worker_t *self = (s_worker_t *) arg;
    cbus_header_t header;
    s_bench_header (&header, self->miner);
    int64_t started = s_clock_ns (CLOCK_THREAD_CPUTIME_ID);
    while (!__atomic_load_n (self->stop, __ATOMIC_RELAXED)) {
        bool found = cbus_header_search (&header, S_SLICE);
        assert (!found);
        self->nonces += S_SLICE;
    }
    self->cpu_ns = (double) (s_clock_ns (CLOCK_THREAD_CPUTIME_ID) - started);
    return NULL;
}

//  Total nonces per wall second of count threads, and their CPU share.
static double
s_measure_threads (int count, int ms, double *cpu_share)
{
    s_worker_t workers [count];
    volatile int stop = 0;
    int64_t started = s_clock_ns (CLOCK_MONOTONIC);
    for (int index = 0; index < count; index++) {
        workers [index] = (s_worker_t) { .miner = 10 + (uint32_t) index, .stop = &stop };
        int rc = pthread_create (&workers [index].thread, NULL, s_worker, &workers [index]);
        assert (rc == 0);
    }
    zclock_sleep (ms);
    __atomic_store_n (&stop, 1, __ATOMIC_RELAXED);
    double nonces = 0, cpu = 0;
    for (int index = 0; index < count; index++) {
        pthread_join (workers [index].thread, NULL);
        nonces += workers [index].nonces;
        cpu += workers [index].cpu_ns;
    }
    double wall = (double) (s_clock_ns (CLOCK_MONOTONIC) - started);
    *cpu_share = cpu / (count * wall);
    return nonces * 1e9 / wall;
}

int
main (int argc, char *argv [])
{
    int rounds = argc > 1 ? atoi (argv [1]) : 7;
    int ms = argc > 2 ? atoi (argv [2]) : 300;
    if (rounds < 1 || rounds > S_MAX_ROUNDS || ms < 10) {
        fprintf (stderr, "usage: cbus_bench_miner [ROUNDS (1..%d) [MS (>= 10)]]\n",
                 S_MAX_ROUNDS);
        return 2;
    }
    const char *names [] = {
        "bulk", "search", "portable", "transform", "update", "update_v1"
    };
    s_measure_fn *measures [] = {
        s_measure_bulk, s_measure_search, s_measure_portable, s_measure_transform,
        s_measure_update, s_measure_update_v1
    };
    enum { S_MEASURES = 6 };
    double rates [S_MEASURES][S_MAX_ROUNDS], ratios [S_MAX_ROUNDS];
    s_measure_search (ms / 3 + 1);          //  Warm up
    for (int round = 0; round < rounds; round++) {
        for (int which = 0; which < S_MEASURES; which++)
            rates [which][round] = measures [which] (which < 2 ? ms : ms / 2);
        ratios [round] = rates [1][round] / (rates [0][round] / 2);
    }
    double median [S_MEASURES];
    for (int which = 0; which < S_MEASURES; which++)
        median [which] = s_median (rates [which], rounds);
    double ceiling = median [0] / 2;
    double ratio = s_median (ratios, rounds);
    printf ("sha256_impl=%s\n", cbus_sha256_impl_name (cbus_sha256_best ()));
    printf ("header_bytes=%d\n", CBUS_HEADER_BYTES);
    printf ("bulk_blocks_per_s=%.0f\n", median [0]);
    printf ("ceiling_nonces_per_s=%.0f\n", ceiling);
    for (int which = 1; which < S_MEASURES; which++)
        printf ("%s_nonces_per_s=%.0f\n", names [which], median [which]);
    printf ("search_ratio=%.3f\n", ratio);
    printf ("search_ratio_target=0.850\n");

    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    int most = cpus > 2 ? (int) cpus : 2;
    double one = 0;
    for (int count = 1; count <= most; count++) {
        if (count > 2 && count != most)
            continue;
        double share;
        double total = s_measure_threads (count, rounds * ms, &share);
        if (count == 1)
            one = total;
        printf ("threads_%d_nonces_per_s=%.0f\n", count, total);
        printf ("threads_%d_cpu_share=%.2f\n", count, share);
        printf ("threads_%d_nonces_per_cpu_s=%.0f\n", count, total / (share * count));
        printf ("threads_%d_scaling=%.2f\n", count, total / one);
    }
    printf ("cpus=%ld\n", cpus);

    printf ("\n| what | per CPU second |\n|---|---|\n");
    printf ("| OpenSSL bulk SHA-256, 64-byte blocks | %.2f M |\n", median [0] / 1e6);
    printf ("| ceiling (blocks / 2) | %.2f M nonces |\n", ceiling / 1e6);
    printf ("| cbus_header_search (%s) | %.2f M nonces (%.0f %% of the ceiling; target 85 %%) |\n",
            cbus_sha256_impl_name (cbus_sha256_best ()), median [1] / 1e6, 100 * ratio);
    printf ("| portable C scan | %.2f M nonces (%.0f %%) |\n", median [2] / 1e6,
            100 * median [2] / ceiling);
    printf ("| OpenSSL SHA256_Transform, midstate | %.2f M nonces (%.0f %%) |\n",
            median [3] / 1e6, 100 * median [3] / ceiling);
    printf ("| OpenSSL SHA256_Update/Final, midstate | %.2f M nonces (%.0f %%) |\n",
            median [4] / 1e6, 100 * median [4] / ceiling);
    printf ("| the same on a 124-byte header (version 1) | %.2f M nonces (%.0f %%) |\n",
            median [5] / 1e6, 100 * median [5] / ceiling);
    return 0;
}
