/*  =========================================================================
    fuzz_key - the secret files a node or a wallet reads: a wallet key
    file (cbus_key_load, JSON), an access token file (cbus_token_load)
    and the node's CurveZMQ key, node.key (cbus_identity_new in
    services/peersync/cbus_identity.c, ZPL; compiled in). Each input is
    written to a scratch file of mode 0600 and read by all three.
    =========================================================================
*/
#include "fuzz.h"
#include "cbus_identity.h"

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc; (void) argv;
    fuzz_init ();
    FUZZ_CHECK (sodium_init () >= 0);
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file ("secret", data, size, 0600);
    char reason [CBUS_REASON_MAX];
    cbus_key_t *key = cbus_key_load (path, reason);
    if (key) {
        //  A loaded key is whole: it signs, and its hex is its key.
        uint8_t signature [CBUS_SIG_BYTES];
        cbus_key_sign (key, data, size, signature);
        FUZZ_CHECK (crypto_sign_verify_detached (signature, data, size, cbus_key_public (key)) == 0);
        FUZZ_CHECK (strlen (cbus_key_public_hex (key)) == 2 * CBUS_PUBKEY_BYTES);
    }
    else
        FUZZ_CHECK (memchr (reason, 0, sizeof (reason)));
    cbus_key_destroy (&key);

    char token [CBUS_TOKEN_MAX + 1];
    if (cbus_token_load (path, token, reason) == 0)
        FUZZ_CHECK (strlen (token) >= CBUS_TOKEN_MIN && strlen (token) <= CBUS_TOKEN_MAX);

    cbus_identity_t *identity = cbus_identity_new (path, reason);
    if (identity) {
        FUZZ_CHECK (strlen (cbus_identity_public (identity)) == 40);
        FUZZ_CHECK (strlen (cbus_identity_node_id (identity)) == 16);
    }
    cbus_identity_destroy (&identity);
    return 0;
}
