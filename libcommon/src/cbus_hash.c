/*  =========================================================================
    cbus_hash - SHA-256 and double SHA-256
    =========================================================================
*/
#include "cbus.h"
//  OpenSSL 3 marks the low-level SHA256_* calls deprecated; they are still
//  the fastest way in (no EVP context per hash) and are what we need.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

void
cbus_hash_sha256 (const void *data, size_t size, uint8_t out [CBUS_HASH_BYTES])
{
    SHA256_CTX context;
    SHA256_Init (&context);
    SHA256_Update (&context, data, size);
    SHA256_Final (out, &context);
}

void
cbus_hash_sha256d (const void *data, size_t size, uint8_t out [CBUS_HASH_BYTES])
{
    uint8_t first [CBUS_HASH_BYTES];
    cbus_hash_sha256 (data, size, first);
    cbus_hash_sha256 (first, sizeof (first), out);
}

void
cbus_hash_pair (const uint8_t left [CBUS_HASH_BYTES],
                const uint8_t right [CBUS_HASH_BYTES],
                uint8_t out [CBUS_HASH_BYTES])
{
    uint8_t both [2 * CBUS_HASH_BYTES];
    memcpy (both, left, CBUS_HASH_BYTES);
    memcpy (both + CBUS_HASH_BYTES, right, CBUS_HASH_BYTES);
    cbus_hash_sha256d (both, sizeof (both), out);
}

char *
cbus_hash_hex (const uint8_t hash [CBUS_HASH_BYTES], char out [CBUS_HASH_HEX])
{
    cbus_hex_encode (hash, CBUS_HASH_BYTES, out);
    return out;
}

bool
cbus_hash_is_zero (const uint8_t hash [CBUS_HASH_BYTES])
{
    for (size_t index = 0; index < CBUS_HASH_BYTES; index++)
        if (hash [index])
            return false;
    return true;
}

//  A hash is already uniformly spread: its first bytes are the bucket.
static size_t
s_table_hasher (const void *key)
{
    size_t value;
    memcpy (&value, key, sizeof (value));
    return value;
}

static int
s_table_comparator (const void *left, const void *right)
{
    return memcmp (left, right, CBUS_HASH_BYTES);
}

zhashx_t *
cbus_hash_table_new (void)
{
    zhashx_t *table = zhashx_new ();
    zhashx_set_key_hasher (table, s_table_hasher);
    zhashx_set_key_comparator (table, s_table_comparator);
    zhashx_set_key_duplicator (table, NULL);
    zhashx_set_key_destructor (table, NULL);
    return table;
}

void
cbus_hash_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_hash: ");
    uint8_t hash [CBUS_HASH_BYTES];
    char hex [CBUS_HASH_HEX];
    //  Known answers: SHA-256("abc") and SHA-256d("hello").
    cbus_hash_sha256 ("abc", 3, hash);
    assert (streq (cbus_hash_hex (hash, hex),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    cbus_hash_sha256d ("hello", 5, hash);
    assert (streq (cbus_hash_hex (hash, hex),
        "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"));
    assert (!cbus_hash_is_zero (hash));
    uint8_t zero [CBUS_HASH_BYTES] = {0};
    assert (cbus_hash_is_zero (zero));
    uint8_t pair [CBUS_HASH_BYTES], manual [CBUS_HASH_BYTES];
    cbus_hash_pair (hash, zero, pair);
    uint8_t both [64];
    memcpy (both, hash, 32);
    memset (both + 32, 0, 32);
    cbus_hash_sha256d (both, 64, manual);
    assert (memcmp (pair, manual, 32) == 0);
    zhashx_t *table = cbus_hash_table_new ();
    zhashx_insert (table, hash, hash);
    uint8_t copy [CBUS_HASH_BYTES];
    memcpy (copy, hash, sizeof (copy));
    assert (zhashx_lookup (table, copy) == hash);
    assert (zhashx_lookup (table, zero) == NULL);
    zhashx_destroy (&table);
    if (verbose)
        printf ("OK\n");
}
