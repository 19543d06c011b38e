/*  =========================================================================
    fuzz_tx - a transaction's msgpack bytes (from the bus, a peer or the
    disk): cbus_tx_decode, cbus_tx_new_from_bytes and, as for stored
    bytes, cbus_tx_bytes_to_json. Only the canonical encoding decodes, so
    a decoded transaction's bytes are the input's.
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
    cbus_tx_t *tx = cbus_tx_decode (data, size, reason);
    if (tx) {
        size_t tx_size;
        const uint8_t *bytes = cbus_tx_bytes (tx, &tx_size);
        FUZZ_CHECK (tx_size == size && memcmp (bytes, data, size) == 0);
        fuzz_check_tx (tx);
        //  The checked decoder agrees, signature aside.
        cbus_tx_t *checked = cbus_tx_new_from_bytes (data, size, reason);
        FUZZ_CHECK (!checked || memcmp (cbus_tx_id (checked), cbus_tx_id (tx), CBUS_HASH_BYTES) == 0);
        FUZZ_CHECK ((checked != NULL) == (cbus_tx_verify (tx, reason) == 0));
        cbus_tx_destroy (&checked);
        cbus_tx_destroy (&tx);
    }
    else
        FUZZ_CHECK (!cbus_tx_new_from_bytes (data, size, reason));
    //  Stored bytes are trusted, but a damaged store must not crash.
    cbus_buf_t json = {0};
    if (cbus_tx_bytes_to_json (data, size, &json) == 0)
        FUZZ_CHECK (json.data && strlen (json.data) == json.size);
    cbus_buf_free (&json);
    return 0;
}
