/*  =========================================================================
    fuzz_seal - sealed data as a transaction carries it: a JSON object
    whose "dh_parameters" and "data" go to cbus_seal_new_from_json (a
    whole transaction's JSON works too), then cbus_seal_open with the
    fuzzer's fixed receiver key, as `chainbus wallet` opens what it
    received. The seed corpus is sealed for that key, so opening succeeds
    on it and the fuzzer explores the way past the tag too.
    =========================================================================
*/
#include "fuzz.h"

//  The receiver: the key of 32 bytes of 0x42 (fuzz/seeds.c seals for it).
static cbus_key_t *s_receiver;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc; (void) argv;
    fuzz_init ();
    FUZZ_CHECK (sodium_init () >= 0);
    uint8_t seed [CBUS_KEY_SEED_BYTES];
    memset (seed, 0x42, sizeof (seed));
    s_receiver = cbus_key_new_from_seed (seed);
    FUZZ_CHECK (s_receiver);
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char reason [CBUS_REASON_MAX];
    json_t *object = cbus_json_parse ((const char *) data, size, reason);
    if (!object)
        return 0;
    json_t *dh = json_object_get (object, "dh_parameters");
    if (!json_is_string (dh)) {
        json_decref (object);
        return 0;
    }
    const char *dh_parameters = json_string_value (dh);
    cbus_seal_t *seal = cbus_seal_new_from_json (dh_parameters, json_object_get (object, "data"),
                                                 reason);
    if (seal) {
        FUZZ_CHECK (cbus_seal_is_sealed (dh_parameters));
        FUZZ_CHECK (streq (cbus_seal_dh_parameters (seal), dh_parameters));
        json_t *sealed = cbus_seal_data (seal);
        FUZZ_CHECK (sealed);
        //  What is read back seals the same box.
        char *text = json_dumps (sealed, JSON_COMPACT);
        FUZZ_CHECK (text);
        json_t *reread = json_loads (text, 0, NULL);
        cbus_seal_t *again = cbus_seal_new_from_json (dh_parameters, reread, reason);
        FUZZ_CHECK (again);
        cbus_seal_destroy (&again);
        json_decref (reread);
        free (text);
        json_decref (sealed);
        size_t plain_size = 0;
        uint8_t *plain = cbus_seal_open (seal, cbus_key_secret (s_receiver), &plain_size, reason);
        if (plain) {
            FUZZ_CHECK (plain [plain_size] == 0);
            fuzz_touch (plain, plain_size);
        }
        free (plain);
    }
    else
        FUZZ_CHECK (memchr (reason, 0, sizeof (reason)));
    cbus_seal_destroy (&seal);
    json_decref (object);
    return 0;
}
