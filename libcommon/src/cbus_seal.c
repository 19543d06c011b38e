/*  =========================================================================
    cbus_seal - a transaction's data sealed for its receiver
    =========================================================================
*/
#include "cbus.h"
#include <sodium.h>

//  "x25519-box:v1:" then 64 hex digits, ":", 48 hex digits.
#define S_PREFIX        CBUS_SEAL_SCHEME ":"
#define S_PREFIX_LEN    (sizeof (S_PREFIX) - 1)
#define S_KEY_HEX       (2 * crypto_box_PUBLICKEYBYTES)
#define S_NONCE_HEX     (2 * crypto_box_NONCEBYTES)
#define S_PARAMS_LEN    (S_PREFIX_LEN + S_KEY_HEX + 1 + S_NONCE_HEX)
//  What any version of the scheme starts with.
#define S_FAMILY        "x25519-box:"
#define S_BASE64        sodium_base64_VARIANT_ORIGINAL

struct _cbus_seal_t {
    uint8_t ephemeral [crypto_box_PUBLICKEYBYTES];  //  Sealer's one-time X25519 key
    uint8_t nonce [crypto_box_NONCEBYTES];          //  Random, once per box
    uint8_t *ciphertext;            //  Poly1305 tag, then the encrypted bytes
    size_t size;                    //  Bytes in ciphertext
    char dh_parameters [S_PARAMS_LEN + 1];  //  The text form of the two above
};

static void
s_format_parameters (cbus_seal_t *self)
{
    char key_hex [S_KEY_HEX + 1], nonce_hex [S_NONCE_HEX + 1];
    cbus_hex_encode (self->ephemeral, sizeof (self->ephemeral), key_hex);
    cbus_hex_encode (self->nonce, sizeof (self->nonce), nonce_hex);
    snprintf (self->dh_parameters, sizeof (self->dh_parameters), "%s%s:%s",
              S_PREFIX, key_hex, nonce_hex);
}

cbus_seal_t *
cbus_seal_new (const uint8_t *receiver_key, const void *plaintext, size_t size, char *reason)
{
    if (size > CBUS_SEAL_MAX_BYTES) {
        cbus_fail (reason, "cannot seal %zu bytes: at most %d", size, CBUS_SEAL_MAX_BYTES);
        return NULL;
    }
    uint8_t receiver [crypto_box_PUBLICKEYBYTES];
    if (crypto_sign_ed25519_pk_to_curve25519 (receiver, receiver_key) != 0) {
        cbus_fail (reason, "cannot seal: the receiver's key is not a usable "
                           "Ed25519 public key");
        return NULL;
    }
    cbus_seal_t *self = (cbus_seal_t *) zmalloc (sizeof (cbus_seal_t));
    uint8_t ephemeral_secret [crypto_box_SECRETKEYBYTES];
    crypto_box_keypair (self->ephemeral, ephemeral_secret);
    randombytes_buf (self->nonce, sizeof (self->nonce));
    self->size = crypto_box_MACBYTES + size;
    self->ciphertext = (uint8_t *) malloc (self->size);
    assert (self->ciphertext);
    int rc = crypto_box_easy (self->ciphertext, (const uint8_t *) plaintext, size,
                              self->nonce, receiver, ephemeral_secret);
    sodium_memzero (ephemeral_secret, sizeof (ephemeral_secret));
    if (rc != 0) {
        //  The converted key gives an all-zero shared secret (small order).
        cbus_fail (reason, "cannot seal: the receiver's key is not a usable "
                           "Ed25519 public key");
        cbus_seal_destroy (&self);
        return NULL;
    }
    s_format_parameters (self);
    return self;
}

//  Decode exactly size bytes of lowercase hex (the one spelling written).
static int
s_lower_hex (const char *text, uint8_t *out, size_t size)
{
    for (size_t index = 0; index < 2 * size; index++)
        if (!isdigit ((unsigned char) text [index])
        &&  (text [index] < 'a' || text [index] > 'f'))
            return -1;
    char copy [2 * 64 + 1];
    assert (size <= 64);
    memcpy (copy, text, 2 * size);
    copy [2 * size] = 0;
    return cbus_hex_decode (copy, out, size);
}

cbus_seal_t *
cbus_seal_new_from_json (const char *dh_parameters, const json_t *data, char *reason)
{
    if (!dh_parameters || !cbus_seal_is_sealed (dh_parameters)) {
        cbus_fail (reason, "not sealed: dh_parameters does not start with \"%s\"", S_PREFIX);
        return NULL;
    }
    if (strncmp (dh_parameters, S_PREFIX, S_PREFIX_LEN) != 0) {
        cbus_fail (reason, "cannot open: sealed with an unknown version (%.40s), "
                           "this program reads %s", dh_parameters, CBUS_SEAL_SCHEME);
        return NULL;
    }
    cbus_seal_t *self = (cbus_seal_t *) zmalloc (sizeof (cbus_seal_t));
    const char *key_hex = dh_parameters + S_PREFIX_LEN;
    if (strlen (dh_parameters) != S_PARAMS_LEN || key_hex [S_KEY_HEX] != ':'
    ||  s_lower_hex (key_hex, self->ephemeral, sizeof (self->ephemeral))
    ||  s_lower_hex (key_hex + S_KEY_HEX + 1, self->nonce, sizeof (self->nonce))) {
        cbus_fail (reason, "malformed dh_parameters: expected %s:<%d hex digits>:<%d hex digits>",
                   CBUS_SEAL_SCHEME, (int) S_KEY_HEX, (int) S_NONCE_HEX);
        goto failed;
    }
    json_t *sealed = json_is_object (data) && json_object_size (data) == 1
                   ? json_object_get (data, "sealed"): NULL;
    if (!json_is_string (sealed)) {
        cbus_fail (reason, "malformed sealed data: expected {\"sealed\": \"<base64>\"}");
        goto failed;
    }
    const char *text = json_string_value (sealed);
    size_t length = json_string_length (sealed);
    if (length > sodium_base64_ENCODED_LEN (crypto_box_MACBYTES + CBUS_SEAL_MAX_BYTES, S_BASE64)) {
        cbus_fail (reason, "malformed sealed data: more than %d bytes", CBUS_SEAL_MAX_BYTES);
        goto failed;
    }
    //  Base64 decodes to at most three bytes for four characters.
    size_t room = length / 4 * 3 + 3;
    self->ciphertext = (uint8_t *) malloc (room);
    assert (self->ciphertext);
    const char *end = NULL;
    if (sodium_base642bin (self->ciphertext, room, text, length, NULL,
                           &self->size, &end, S_BASE64) != 0
    ||  end != text + length) {
        cbus_fail (reason, "malformed sealed data: \"sealed\" is not padded standard base64");
        goto failed;
    }
    if (self->size < crypto_box_MACBYTES) {
        cbus_fail (reason, "malformed sealed data: %zu bytes, shorter than the %d-byte tag",
                   self->size, crypto_box_MACBYTES);
        goto failed;
    }
    memcpy (self->dh_parameters, dh_parameters, S_PARAMS_LEN + 1);
    return self;
failed:
    cbus_seal_destroy (&self);
    return NULL;
}

void
cbus_seal_destroy (cbus_seal_t **self_p)
{
    assert (self_p);
    cbus_seal_t *self = *self_p;
    if (self) {
        free (self->ciphertext);
        free (self);
        *self_p = NULL;
    }
}

bool
cbus_seal_is_sealed (const char *dh_parameters)
{
    return dh_parameters && strncmp (dh_parameters, S_FAMILY, strlen (S_FAMILY)) == 0;
}

const char *
cbus_seal_dh_parameters (cbus_seal_t *self)
{
    return self->dh_parameters;
}

json_t *
cbus_seal_data (cbus_seal_t *self)
{
    size_t length = sodium_base64_ENCODED_LEN (self->size, S_BASE64);
    char *text = (char *) zmalloc (length);     //  Aborts on no memory, as CZMQ does
    sodium_bin2base64 (text, length, self->ciphertext, self->size, S_BASE64);
    json_t *data = json_pack ("{s:s}", "sealed", text);
    assert (data);
    free (text);
    return data;
}

uint8_t *
cbus_seal_open (cbus_seal_t *self, const uint8_t *secret_key, size_t *size_p, char *reason)
{
    uint8_t receiver_secret [crypto_box_SECRETKEYBYTES];
    if (crypto_sign_ed25519_sk_to_curve25519 (receiver_secret, secret_key) != 0) {
        cbus_fail (reason, "cannot open: the key does not convert to X25519");
        return NULL;
    }
    size_t size = self->size - crypto_box_MACBYTES;
    uint8_t *plaintext = (uint8_t *) malloc (size + 1);
    if (!plaintext) {
        sodium_memzero (receiver_secret, sizeof (receiver_secret));
        cbus_fail (reason, "cannot open: out of memory");
        return NULL;
    }
    int rc = crypto_box_open_easy (plaintext, self->ciphertext, self->size,
                                   self->nonce, self->ephemeral, receiver_secret);
    sodium_memzero (receiver_secret, sizeof (receiver_secret));
    if (rc != 0) {
        free (plaintext);
        cbus_fail (reason, "cannot open: not sealed for this key (or the sealed data was changed)");
        return NULL;
    }
    plaintext [size] = 0;
    *size_p = size;
    return plaintext;
}

//  --------------------------------------------------------------------------
//  Self test

//  Parse the fields of a sealed value from text, as a wallet reads them.
static cbus_seal_t *
s_from_text (const char *dh_parameters, const char *data_text, char *reason)
{
    json_t *data = json_loads (data_text, JSON_DECODE_ANY, NULL);
    assert (data);
    cbus_seal_t *seal = cbus_seal_new_from_json (dh_parameters, data, reason);
    json_decref (data);
    return seal;
}

void
cbus_seal_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_seal: ");
    assert (sodium_init () >= 0);
    char reason [CBUS_REASON_MAX];
    uint8_t public_key [crypto_sign_PUBLICKEYBYTES], secret_key [crypto_sign_SECRETKEYBYTES];
    uint8_t other_public [crypto_sign_PUBLICKEYBYTES], other_secret [crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair (public_key, secret_key);
    crypto_sign_keypair (other_public, other_secret);

    //  Seal, write the two fields, read them back, open.
    const char *plaintext = "{\"amount\": 5, \"memo\": \"sign\\u00e9\"}";
    cbus_seal_t *seal = cbus_seal_new (public_key, plaintext, strlen (plaintext), reason);
    assert (seal);
    const char *parameters = cbus_seal_dh_parameters (seal);
    assert (strlen (parameters) == S_PARAMS_LEN);
    assert (strncmp (parameters, "x25519-box:v1:", 14) == 0);
    assert (cbus_seal_is_sealed (parameters));
    json_t *data = cbus_seal_data (seal);
    char *data_text = json_dumps (data, JSON_COMPACT);
    assert (data_text && strncmp (data_text, "{\"sealed\":\"", 11) == 0);
    assert (!strstr (data_text, "amount"));
    cbus_seal_t *copy = cbus_seal_new_from_json (parameters, data, reason);
    assert (copy);
    size_t size;
    uint8_t *opened = cbus_seal_open (copy, secret_key, &size, reason);
    assert (opened && size == strlen (plaintext) && streq ((char *) opened, plaintext));
    free (opened);

    //  Another key does not open it; neither does the sealer's own.
    opened = cbus_seal_open (copy, other_secret, &size, reason);
    assert (!opened && strstr (reason, "not sealed for this key"));
    cbus_seal_destroy (&copy);
    cbus_seal_destroy (&copy);

    //  Two seals of the same plaintext differ (fresh ephemeral and nonce).
    cbus_seal_t *again = cbus_seal_new (public_key, plaintext, strlen (plaintext), reason);
    assert (again && !streq (cbus_seal_dh_parameters (again), parameters));
    cbus_seal_destroy (&again);

    //  A changed ciphertext byte, or nonce, or ephemeral key: not opened.
    const char *text = json_string_value (json_object_get (data, "sealed"));
    char *changed = strdup (text);
    changed [5] = changed [5] == 'A' ? 'B' : 'A';
    json_t *changed_data = json_pack ("{s:s}", "sealed", changed);
    copy = cbus_seal_new_from_json (parameters, changed_data, reason);
    assert (copy);
    opened = cbus_seal_open (copy, secret_key, &size, reason);
    assert (!opened && strstr (reason, "cannot open"));
    cbus_seal_destroy (&copy);
    json_decref (changed_data);
    free (changed);
    char *changed_parameters = strdup (parameters);
    changed_parameters [S_PARAMS_LEN - 1] = changed_parameters [S_PARAMS_LEN - 1] == '0' ? '1' : '0';
    copy = cbus_seal_new_from_json (changed_parameters, data, reason);
    assert (copy);
    opened = cbus_seal_open (copy, secret_key, &size, reason);
    assert (!opened && strstr (reason, "cannot open"));
    cbus_seal_destroy (&copy);
    changed_parameters [S_PREFIX_LEN] = changed_parameters [S_PREFIX_LEN] == '0' ? '1' : '0';
    copy = cbus_seal_new_from_json (changed_parameters, data, reason);
    assert (copy);
    opened = cbus_seal_open (copy, secret_key, &size, reason);
    assert (!opened && strstr (reason, "cannot open"));
    cbus_seal_destroy (&copy);
    free (changed_parameters);

    //  Malformed parameters.
    char good [S_PARAMS_LEN + 2];
    snprintf (good, sizeof (good), "%s", parameters);
    assert (!cbus_seal_new_from_json ("param", data, reason) && strstr (reason, "not sealed"));
    assert (!cbus_seal_new_from_json ("", data, reason) && strstr (reason, "not sealed"));
    assert (!cbus_seal_new_from_json (NULL, data, reason) && strstr (reason, "not sealed"));
    assert (!cbus_seal_new_from_json ("x25519-box:v2:00", data, reason));
    assert (strstr (reason, "unknown version"));
    assert (!cbus_seal_new_from_json ("x25519-box:v1:", data, reason));
    assert (strstr (reason, "malformed dh_parameters"));
    char bad [S_PARAMS_LEN + 8];
    snprintf (bad, sizeof (bad), "%s0", good);             //  One digit too many
    assert (!cbus_seal_new_from_json (bad, data, reason) && strstr (reason, "malformed dh_parameters"));
    snprintf (bad, sizeof (bad), "%s", good);
    bad [S_PARAMS_LEN - 1] = 0;                             //  One too few
    assert (!cbus_seal_new_from_json (bad, data, reason) && strstr (reason, "malformed dh_parameters"));
    snprintf (bad, sizeof (bad), "%s", good);
    bad [S_PREFIX_LEN + S_KEY_HEX] = '-';                   //  Wrong separator
    assert (!cbus_seal_new_from_json (bad, data, reason) && strstr (reason, "malformed dh_parameters"));
    snprintf (bad, sizeof (bad), "%s", good);
    bad [S_PREFIX_LEN + 3] = 'g';                           //  Not hex
    assert (!cbus_seal_new_from_json (bad, data, reason) && strstr (reason, "malformed dh_parameters"));
    snprintf (bad, sizeof (bad), "%s", good);
    bad [S_PARAMS_LEN - 2] = 'F';                           //  Uppercase
    assert (!cbus_seal_new_from_json (bad, data, reason) && strstr (reason, "malformed dh_parameters"));

    //  Malformed data values.
    const char *bad_data [] = {
        "[]", "\"abc\"", "{}", "{\"sealed\": 5}", "{\"sealed\": \"AAAA\", \"x\": 1}",
        "{\"other\": \"AAAA\"}", "{\"sealed\": \"not base64!\"}", "{\"sealed\": \"QUJD\\n\"}",
        "{\"sealed\": \"QUJDRA\"}",                         //  Unpadded
        "{\"sealed\": \"QUJDRA==\"}",                       //  4 bytes: shorter than the tag
        "{\"sealed\": \"\"}", NULL
    };
    for (int index = 0; bad_data [index]; index++) {
        copy = s_from_text (good, bad_data [index], reason);
        assert (!copy && strstr (reason, "malformed sealed data"));
    }

    //  An empty plaintext seals to the tag alone and opens to nothing.
    {
        cbus_seal_t *empty = cbus_seal_new (public_key, "", 0, reason);
        assert (empty);
        json_t *empty_data = cbus_seal_data (empty);
        copy = cbus_seal_new_from_json (cbus_seal_dh_parameters (empty), empty_data, reason);
        assert (copy);
        opened = cbus_seal_open (copy, secret_key, &size, reason);
        assert (opened && size == 0 && opened [0] == 0);
        free (opened);
        cbus_seal_destroy (&copy);
        json_decref (empty_data);
        cbus_seal_destroy (&empty);
    }

    //  Keys that are not Ed25519 points, or of small order, are refused.
    uint8_t zero [crypto_sign_PUBLICKEYBYTES] = {0};
    assert (!cbus_seal_new (zero, "x", 1, reason) && strstr (reason, "not a usable"));
    uint8_t not_a_point [crypto_sign_PUBLICKEYBYTES];
    memset (not_a_point, 0xff, sizeof (not_a_point));
    assert (!cbus_seal_new (not_a_point, "x", 1, reason) && strstr (reason, "not a usable"));
    assert (!cbus_seal_new (public_key, "x", CBUS_SEAL_MAX_BYTES + 1, reason));
    assert (strstr (reason, "at most"));

    free (data_text);
    json_decref (data);
    cbus_seal_destroy (&seal);
    if (verbose)
        printf ("OK\n");
}
