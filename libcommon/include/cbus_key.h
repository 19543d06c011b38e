/*  =========================================================================
    cbus_key - a wallet's Ed25519 keypair and its key file

    One keypair both signs transactions (Ed25519 over the canonical bytes,
    see cbus_tx) and receives sealed data (the same key converted to
    X25519, see cbus_seal). The key file is one line of JSON:

        {"type": "chainbus-ed25519", "public_key": "<64 hex>", "seed": "<64 hex>"}

    seed is the 32-byte Ed25519 private key of RFC 8032, from which
    libsodium derives the keypair (crypto_sign_seed_keypair); public_key
    must be the key it derives, which catches a damaged file. A key file
    is created with mode 0600 and never replaced: the bytes go to a
    temporary file beside it that is synced and then linked to the final
    name, which fails if that name exists. A key file that group or others
    may read or write is refused (as ssh refuses one): its secret may
    already be someone else's.

    Loading reads a file from the disk: anything wrong with it is NULL and
    a one-line reason, never an assert. The secret is wiped on destroy.
    =========================================================================
*/
#ifndef CBUS_KEY_H_INCLUDED
#define CBUS_KEY_H_INCLUDED

typedef struct _cbus_key_t cbus_key_t;

//  The "type" of a key file.
#define CBUS_KEY_TYPE           "chainbus-ed25519"
//  libsodium's Ed25519 secret key: the seed, then the public key.
#define CBUS_KEY_SECRET_BYTES   64
#define CBUS_KEY_SEED_BYTES     32
//  A public key as hex, with its terminator.
#define CBUS_KEY_HEX            (2 * CBUS_PUBKEY_BYTES + 1)

//  A fresh random keypair. Needs sodium_init.
cbus_key_t *
    cbus_key_new (void);

//  The keypair of a 32-byte seed (deterministic; for tests and restores).
cbus_key_t *
    cbus_key_new_from_seed (const uint8_t *seed);

//  Load a key file. NULL with a reason naming the file: it cannot be
//  read, is not a regular file, may be read by group or others, is not a
//  key file, or its public key does not match its seed.
cbus_key_t *
    cbus_key_load (const char *path, char *reason);

//  Destroy, wiping the secret; safe on NULL, nulls the caller's pointer.
void
    cbus_key_destroy (cbus_key_t **self_p);

//  Write the key file, mode 0600. Refuses (-1 with a reason) if path
//  exists, even when another process creates it meanwhile.
int
    cbus_key_save (cbus_key_t *self, const char *path, char *reason);

//  Public key: 32 bytes, and as 64 lowercase hex digits (both borrowed).
const uint8_t *
    cbus_key_public (cbus_key_t *self);
const char *
    cbus_key_public_hex (cbus_key_t *self);

//  libsodium's 64-byte secret key (borrowed), for cbus_seal_open.
const uint8_t *
    cbus_key_secret (cbus_key_t *self);

//  Ed25519 detached signature of size bytes into signature (64 bytes).
void
    cbus_key_sign (cbus_key_t *self, const void *data, size_t size, uint8_t *signature);

//  An access token file (the gateway's admin token): one line of
//  CBUS_TOKEN_MIN to CBUS_TOKEN_MAX letters, digits or -._~+/=, trailing
//  whitespace ignored, in a file no one else may read (as a key file).
//  Returns 0 with the token, or -1 and a one-line reason.
#define CBUS_TOKEN_MIN          32
#define CBUS_TOKEN_MAX          256
int
    cbus_token_load (const char *path, char token [CBUS_TOKEN_MAX + 1], char *reason);

void
    cbus_key_test (bool verbose);

#endif
