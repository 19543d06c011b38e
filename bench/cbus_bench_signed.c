/*  =========================================================================
    cbus_bench_signed - signed transactions for the HTTP bench, and the
    machine's Ed25519 ceiling measured in the same run

    Usage: cbus_bench_signed COUNT FILE
    Writes COUNT distinct signed transactions (one JSON object a line,
    ready for POST /transactions/new) to FILE, then prints
        verify_per_s=N     libsodium Ed25519 verifications per second, one core
        sign_per_s=N       signatures per second, one core
    =========================================================================
*/
#include "cbus.h"
#include <sodium.h>

//  Verifications timed for the ceiling.
#define S_VERIFY_ROUNDS 20000

int
main (int argc, char *argv [])
{
    if (argc != 3 || atoi (argv [1]) <= 0) {
        fprintf (stderr, "usage: cbus_bench_signed COUNT FILE\n");
        return 2;
    }
    if (sodium_init () < 0)
        return 1;
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
    //  The ceiling: verify one typical transaction's bytes again and again.
    const char *sample = "a canonical transaction of about three hundred bytes, standing in for one";
    uint8_t message [300];
    memset (message, 'x', sizeof (message));
    memcpy (message, sample, strlen (sample));
    uint8_t signature [crypto_sign_BYTES];
    crypto_sign_detached (signature, NULL, message, sizeof (message), secret_key);
    started = cbus_mono_ms ();
    int good = 0;
    for (int round = 0; round < S_VERIFY_ROUNDS; round++)
        good += crypto_sign_verify_detached (signature, message, sizeof (message), public_key) == 0;
    int64_t verify_ms = cbus_mono_ms () - started;
    if (good != S_VERIFY_ROUNDS)
        return 1;
    printf ("verify_per_s=%.0f\n", S_VERIFY_ROUNDS * 1000.0 / (double) (verify_ms ? verify_ms : 1));
    printf ("sign_per_s=%.0f\n", count * 1000.0 / (double) (signed_ms ? signed_ms : 1));
    return 0;
}
