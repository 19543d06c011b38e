/*  =========================================================================
    cbus_bench_signed - signed transactions for the HTTP bench, and the
    machine's Ed25519 ceiling measured in the same run

    Usage: cbus_bench_signed COUNT FILE
           cbus_bench_signed --ceiling
    The first writes COUNT distinct signed transactions (one JSON object a
    line, ready for POST /transactions/new) to FILE and prints
        sign_per_s=N       signatures per second, one core
        verify_per_s=N     libsodium Ed25519 verifications per second, one core
    The second prints only verify_per_s. The ceiling is the median of
    several bursts, so that one noisy moment does not make it.
    =========================================================================
*/
#include "cbus.h"
#include <sodium.h>

//  The ceiling: bursts of verifications of one typical transaction's
//  bytes, timed one by one; their median.
#define S_BURSTS 7
#define S_BURST_ROUNDS 4000

static int
s_compare_double (const void *left, const void *right)
{
    double a = *(const double *) left, b = *(const double *) right;
    return a < b ? -1 : a > b;
}

static int
s_print_ceiling (void)
{
    uint8_t public_key [crypto_sign_PUBLICKEYBYTES], secret_key [crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair (public_key, secret_key);
    const char *sample = "a canonical transaction of about three hundred bytes, standing in for one";
    uint8_t message [300];
    memset (message, 'x', sizeof (message));
    memcpy (message, sample, strlen (sample));
    uint8_t signature [crypto_sign_BYTES];
    crypto_sign_detached (signature, NULL, message, sizeof (message), secret_key);
    double rates [S_BURSTS];
    for (int burst = 0; burst < S_BURSTS; burst++) {
        int64_t started = zclock_usecs ();
        int good = 0;
        for (int round = 0; round < S_BURST_ROUNDS; round++)
            good += crypto_sign_verify_detached (signature, message, sizeof (message),
                                                 public_key) == 0;
        int64_t took = zclock_usecs () - started;
        if (good != S_BURST_ROUNDS)
            return 1;
        rates [burst] = S_BURST_ROUNDS * 1e6 / (double) (took ? took : 1);
    }
    qsort (rates, S_BURSTS, sizeof (double), s_compare_double);
    printf ("verify_per_s=%.0f\n", rates [S_BURSTS / 2]);
    return 0;
}

int
main (int argc, char *argv [])
{
    if (sodium_init () < 0)
        return 1;
    if (argc == 2 && streq (argv [1], "--ceiling"))
        return s_print_ceiling ();
    if (argc != 3 || atoi (argv [1]) <= 0) {
        fprintf (stderr, "usage: cbus_bench_signed COUNT FILE | --ceiling\n");
        return 2;
    }
    int count = atoi (argv [1]);
    FILE *out = fopen (argv [2], "w");
    if (!out) {
        fprintf (stderr, "cbus_bench_signed: cannot write %s\n", argv [2]);
        return 1;
    }
    uint8_t public_key [crypto_sign_PUBLICKEYBYTES], secret_key [crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair (public_key, secret_key);
    char key_hex [2 * crypto_sign_PUBLICKEYBYTES + 1];
    cbus_hex_encode (public_key, sizeof (public_key), key_hex);
    char reason [CBUS_REASON_MAX];
    uint64_t base = cbus_time_us ();
    int64_t started = cbus_mono_ms ();
    for (int index = 0; index < count; index++) {
        //  The timestamp makes each distinct and is covered by the signature.
        char *text = zsys_sprintf (
            "{\"users\": [\"bench-signer\"], \"data\": {\"n\": %d}, \"dh_parameters\": \"\","
            " \"server_public_key\": \"\", \"receiver_public_key\": \"bench-receiver\","
            " \"sender_public_key\": \"%s\", \"timestamp\": %" PRIu64 "}",
            index, key_hex, base + (uint64_t) index);
        json_t *object = cbus_json_parse (text, strlen (text), reason);
        cbus_tx_t *tx = object ? cbus_tx_new_from_json (object, 0, reason) : NULL;
        if (!tx) {
            fprintf (stderr, "cbus_bench_signed: %s\n", reason);
            return 1;
        }
        size_t size;
        const uint8_t *bytes = cbus_tx_signed_bytes (tx, &size);
        uint8_t signature [crypto_sign_BYTES];
        crypto_sign_detached (signature, NULL, bytes, size, secret_key);
        char signature_hex [2 * crypto_sign_BYTES + 1];
        cbus_hex_encode (signature, sizeof (signature), signature_hex);
        fprintf (out, "%.*s, \"signature\": \"%s\"}\n", (int) strlen (text) - 1, text, signature_hex);
        cbus_tx_destroy (&tx);
        json_decref (object);
        zstr_free (&text);
    }
    int64_t signed_ms = cbus_mono_ms () - started;
    if (fclose (out)) {
        fprintf (stderr, "cbus_bench_signed: cannot write %s\n", argv [2]);
        return 1;
    }
    printf ("sign_per_s=%.0f\n", count * 1000.0 / (double) (signed_ms ? signed_ms : 1));
    return s_print_ceiling ();
}
