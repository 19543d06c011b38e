/*  =========================================================================
    cbus_seal - a transaction's data sealed for its receiver

    Sealing encrypts a plaintext to the holder of an Ed25519 public key
    (the receiver_public_key of a transaction). The key is converted to
    X25519 (crypto_sign_ed25519_pk_to_curve25519) and the plaintext goes
    into libsodium's crypto_box_easy from a fresh ephemeral X25519 keypair,
    with a random 24-byte nonce: X25519, then XSalsa20-Poly1305. The two
    fields of the transaction carry it:

        dh_parameters  "x25519-box:v1:" <ephemeral public key, 64 hex>
                       ":" <nonce, 48 hex>              (lowercase hex)
        data           {"sealed": "<ciphertext, standard base64, padded>"}

    The ciphertext is crypto_box_easy's output: the 16-byte Poly1305 tag,
    then the plaintext's bytes encrypted. Only the receiver's Ed25519
    secret key (converted with crypto_sign_ed25519_sk_to_curve25519) opens
    it; the ephemeral secret is wiped once the box is made, so not even the
    sender can open it later. The box does not name its sender: the
    transaction's signature, which covers data and dh_parameters, does.
    docs/transactions.md describes the format byte by byte.

    The plaintext is any bytes to this class; the wallet seals the JSON
    text of the data value (cbus_json_write's form). Parsing and opening
    take input from the network: anything malformed is NULL with a reason,
    never an assert.
    =========================================================================
*/
#ifndef CBUS_SEAL_H_INCLUDED
#define CBUS_SEAL_H_INCLUDED

typedef struct _cbus_seal_t cbus_seal_t;

//  The scheme and version that start a sealed dh_parameters.
#define CBUS_SEAL_SCHEME        "x25519-box:v1"
//  Largest plaintext sealed or opened (a transaction is smaller still).
#define CBUS_SEAL_MAX_BYTES     CBUS_TX_MAX_BYTES

//  Seal size bytes of plaintext for the holder of an Ed25519 public key
//  (32 bytes). Returns NULL with a reason if the key is not a usable
//  Ed25519 public key (it does not convert to X25519) or the plaintext
//  is larger than CBUS_SEAL_MAX_BYTES.
cbus_seal_t *
    cbus_seal_new (const uint8_t *receiver_key, const void *plaintext, size_t size,
                   char *reason);

//  Read a sealed transaction's two fields as they come from JSON.
//  Returns NULL with a reason if dh_parameters is not this scheme's, or
//  either field is malformed (wrong lengths, bad hex or base64, extra
//  keys, a ciphertext shorter than its tag).
cbus_seal_t *
    cbus_seal_new_from_json (const char *dh_parameters, const json_t *data, char *reason);

//  Destroy; safe on NULL, nulls the caller's pointer.
void
    cbus_seal_destroy (cbus_seal_t **self_p);

//  True if dh_parameters names a sealing scheme ("x25519-box:...", any
//  version): a transaction that says it is sealed, well formed or not.
bool
    cbus_seal_is_sealed (const char *dh_parameters);

//  The dh_parameters string (borrowed).
const char *
    cbus_seal_dh_parameters (cbus_seal_t *self);

//  The data value, {"sealed": "<base64>"}: a new reference, the caller's
//  to json_decref.
json_t *
    cbus_seal_data (cbus_seal_t *self);

//  Open with the receiver's Ed25519 secret key (libsodium's 64 bytes: the
//  seed, then the public key). Returns the plaintext, NUL-terminated for
//  convenience (the caller frees it), with its size in *size_p; or NULL
//  with "cannot open: not sealed for this key" when the key is not the
//  receiver's or the ciphertext was changed (the two look the same).
uint8_t *
    cbus_seal_open (cbus_seal_t *self, const uint8_t *secret_key, size_t *size_p,
                    char *reason)
    __attribute__ ((warn_unused_result));

void
    cbus_seal_test (bool verbose);

#endif
