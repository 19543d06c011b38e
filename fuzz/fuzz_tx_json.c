/*  =========================================================================
    fuzz_tx_json - a POST /transactions/new body: cbus_json_parse, then
    cbus_tx_new_from_json, as the gateway does; what it builds must come
    back the same through its bytes and its JSON (fuzz_check_tx).
    =========================================================================
*/
#include "fuzz.h"

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc; (void) argv;
    fuzz_init ();
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char reason [CBUS_REASON_MAX];
    json_t *object = cbus_json_parse ((const char *) data, size, reason);
    if (!object) {
        FUZZ_CHECK (memchr (reason, 0, sizeof (reason)));
        return 0;
    }
    cbus_tx_t *tx = cbus_tx_new_from_json (object, 1700000000000000ULL, reason);
    FUZZ_CHECK (tx || memchr (reason, 0, sizeof (reason)));
    if (tx)
        fuzz_check_tx (tx);
    cbus_tx_destroy (&tx);
    json_decref (object);
    return 0;
}
