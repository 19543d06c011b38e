/*  =========================================================================
    cbus_tx - a ledger transaction
    =========================================================================
*/
#include "cbus.h"
#include <stdarg.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>

//  The canonical keys, in their canonical order.
static const char *s_fields [] = {
    "users", "data", "dh_parameters", "server_public_key",
    "receiver_public_key", "sender_public_key", "timestamp"
};
#define S_FIELD_COUNT 7
//  The six the seed's request must carry.
#define S_REQUIRED    6
//  Timestamps stay exact as JSON numbers (2^53 microseconds).
#define S_MAX_TIMESTAMP 9007199254740991ULL

struct _cbus_tx_t {
    uint8_t *bytes;                 //  Full encoding, signature included
    size_t size;                    //  Bytes in bytes
    uint8_t *signed_bytes;          //  Canonical bytes without signature
    size_t signed_size;             //  Bytes in signed_bytes
    uint8_t id [CBUS_HASH_BYTES];   //  sha256d (signed_bytes)
    uint8_t leaf [CBUS_HASH_BYTES]; //  sha256d (bytes)
    uint64_t timestamp;             //  Microseconds since the epoch
    bool is_signed;                 //  Has a signature
    uint8_t signature [CBUS_SIG_BYTES];  //  Ed25519, when is_signed
    char **users;                   //  Users named, NUL-terminated copies
    size_t user_count;              //  Entries in users
    char *sender_key;               //  sender_public_key as given
    char *receiver_key;             //  receiver_public_key as given
};

static cbus_tx_t *
s_tx_alloc (void)
{
    return (cbus_tx_t *) zmalloc (sizeof (cbus_tx_t));
}

void
cbus_tx_destroy (cbus_tx_t **self_p)
{
    assert (self_p);
    cbus_tx_t *self = *self_p;
    if (self) {
        if (self->signed_bytes != self->bytes)
            free (self->signed_bytes);
        free (self->bytes);
        for (size_t index = 0; index < self->user_count; index++)
            free (self->users [index]);
        free (self->users);
        free (self->sender_key);
        free (self->receiver_key);
        free (self);
        *self_p = NULL;
    }
}

static int
s_add_user (cbus_tx_t *self, const char *name, size_t size, char *reason)
{
    if (size == 0 || size > CBUS_TX_MAX_USER_BYTES)
        return cbus_fail (reason, "users: each user must be 1 to %d bytes", CBUS_TX_MAX_USER_BYTES);
    if (!cbus_utf8_valid (name, size))
        return cbus_fail (reason, "users: a user name is not valid UTF-8");
    if (self->user_count == CBUS_TX_MAX_USERS)
        return cbus_fail (reason, "users: at most %d users", CBUS_TX_MAX_USERS);
    self->users = (char **) realloc (self->users, (self->user_count + 1) * sizeof (char *));
    assert (self->users);
    self->users [self->user_count++] = cbus_strdup_size (name, size);
    return 0;
}

//  Verify the signature over the canonical bytes with the sender's key.
static int
s_verify_signature (cbus_tx_t *self, char *reason)
{
    uint8_t key [CBUS_PUBKEY_BYTES];
    if (cbus_hex_decode (self->sender_key, key, sizeof (key)))
        return cbus_fail (reason, "A signed transaction's sender_public_key must be an "
                               "Ed25519 public key as 64 hex digits");
    if (crypto_sign_verify_detached (self->signature, self->signed_bytes,
                                     self->signed_size, key) != 0)
        return cbus_fail (reason, "Signature does not verify with sender_public_key");
    return 0;
}

//  Hashes and the full encoding, once signed_bytes is set.
static void
s_finish (cbus_tx_t *self)
{
    cbus_hash_sha256d (self->signed_bytes, self->signed_size, self->id);
    if (!self->is_signed) {
        self->bytes = self->signed_bytes;
        self->size = self->signed_size;
    }
    cbus_hash_sha256d (self->bytes, self->size, self->leaf);
}

//  Full bytes of a signed transaction: the canonical map with one more key.
static void
s_encode_signed (cbus_tx_t *self)
{
    //  The canonical map header is fixmap 0x87 (seven keys); with the
    //  signature it is 0x88 and the signature pair follows the rest.
    cbus_buf_t buf = {0};
    uint8_t header = 0x88;
    cbus_buf_append (&buf, &header, 1);
    cbus_buf_append (&buf, self->signed_bytes + 1, self->signed_size - 1);
    msgpack_packer pk;
    cbus_packer_init (&pk, &buf);
    cbus_pack_kv_bin (&pk, "signature", self->signature, CBUS_SIG_BYTES);
    self->bytes = (uint8_t *) cbus_buf_detach (&buf, &self->size);
}

//  The object has every field of the seed and no other than those,
//  timestamp and signature. -1 with a reason naming the missing ones in
//  the seed's order, as the tutorial does, or the unknown one.
static int
s_check_field_names (const json_t *object, char *reason)
{
    if (!json_is_object (object))
        return cbus_fail (reason, "The body must be a JSON object");
    char missing [CBUS_REASON_MAX] = "";
    for (int index = 0; index < S_REQUIRED; index++)
        if (!json_object_get (object, s_fields [index])) {
            if (*missing)
                strcat (missing, ", ");
            strcat (missing, s_fields [index]);
        }
    if (*missing)
        return cbus_fail (reason, "Missing values: %s", missing);
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) object, key, value) {
        bool known = streq (key, "signature");
        for (int index = 0; index < S_FIELD_COUNT && !known; index++)
            known = streq (key, s_fields [index]);
        if (!known)
            return cbus_fail (reason, "Unknown field: %.64s", key);
    }
    return 0;
}

cbus_tx_t *
cbus_tx_new_from_json (const json_t *object, uint64_t now_us, char *reason)
{
    if (s_check_field_names (object, reason))
        return NULL;
    cbus_tx_t *self = s_tx_alloc ();
    cbus_buf_t buf = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &buf);

    //  users: a string or a non-empty list of strings.
    json_t *users = json_object_get (object, "users");
    if (json_is_string (users)) {
        if (s_add_user (self, json_string_value (users), json_string_length (users), reason))
            goto failed;
    }
    else
    if (json_is_array (users) && json_array_size (users) > 0) {
        size_t index;
        json_t *user;
        json_array_foreach (users, index, user) {
            if (!json_is_string (user)) {
                cbus_fail (reason, "users: must be a string or a list of strings");
                goto failed;
            }
            if (s_add_user (self, json_string_value (user), json_string_length (user), reason))
                goto failed;
        }
    }
    else {
        cbus_fail (reason, "users: must be a string or a non-empty list of strings");
        goto failed;
    }
    //  The four key fields are strings.
    for (int index = 2; index < S_REQUIRED; index++) {
        json_t *field = json_object_get (object, s_fields [index]);
        if (!json_is_string (field)) {
            cbus_fail (reason, "%s: must be a string", s_fields [index]);
            goto failed;
        }
        if (json_string_length (field) > CBUS_TX_MAX_FIELD_BYTES) {
            cbus_fail (reason, "%s: at most %d bytes", s_fields [index], CBUS_TX_MAX_FIELD_BYTES);
            goto failed;
        }
    }
    self->receiver_key = strdup (json_string_value (json_object_get (object, "receiver_public_key")));
    self->sender_key = strdup (json_string_value (json_object_get (object, "sender_public_key")));

    json_t *timestamp = json_object_get (object, "timestamp");
    if (timestamp) {
        if (!json_is_integer (timestamp) || json_integer_value (timestamp) < 1
        ||  (uint64_t) json_integer_value (timestamp) > S_MAX_TIMESTAMP) {
            cbus_fail (reason, "timestamp: must be a positive integer (microseconds since 1970)");
            goto failed;
        }
        self->timestamp = (uint64_t) json_integer_value (timestamp);
    }
    else
        self->timestamp = now_us;

    json_t *signature = json_object_get (object, "signature");
    if (signature) {
        if (!json_is_string (signature)
        ||  cbus_hex_decode (json_string_value (signature), self->signature, CBUS_SIG_BYTES)) {
            cbus_fail (reason, "signature: must be %d hex digits", 2 * CBUS_SIG_BYTES);
            goto failed;
        }
        self->is_signed = true;
    }
    //  The canonical map.
    msgpack_pack_map (&pk, S_FIELD_COUNT);
    cbus_pack_str (&pk, "users");
    if (json_is_string (users))
        cbus_pack_str (&pk, json_string_value (users));
    else {
        msgpack_pack_array (&pk, (uint32_t) json_array_size (users));
        for (size_t index = 0; index < json_array_size (users); index++)
            cbus_pack_str (&pk, json_string_value (json_array_get (users, index)));
    }
    cbus_pack_str (&pk, "data");
    if (cbus_json_pack (json_object_get (object, "data"), &pk)) {
        cbus_fail (reason, "data: nested deeper than %d levels", CBUS_JSON_MAX_DEPTH);
        goto failed;
    }
    for (int index = 2; index < S_REQUIRED; index++) {
        json_t *field = json_object_get (object, s_fields [index]);
        cbus_pack_str (&pk, s_fields [index]);
        msgpack_pack_str (&pk, json_string_length (field));
        msgpack_pack_str_body (&pk, json_string_value (field), json_string_length (field));
    }
    cbus_pack_kv_u64 (&pk, "timestamp", self->timestamp);
    if (buf.size + CBUS_SIG_BYTES + 16 > CBUS_TX_MAX_BYTES) {
        cbus_fail (reason, "Transaction too large: %zu bytes encoded, at most %d",
                buf.size, CBUS_TX_MAX_BYTES);
        goto failed;
    }
    self->signed_bytes = (uint8_t *) cbus_buf_detach (&buf, &self->signed_size);
    if (self->is_signed)
        s_encode_signed (self);
    s_finish (self);
    return self;
failed:
    cbus_buf_free (&buf);
    cbus_tx_destroy (&self);
    return NULL;
}

//  Check a data value from the wire: the types JSON can produce, finite
//  float64 numbers, UTF-8 strings, string keys without duplicates.
static int
s_check_data (const msgpack_object *object, int depth, char *reason)
{
    if (depth > CBUS_JSON_MAX_DEPTH)
        return cbus_fail (reason, "data: nested deeper than %d levels", CBUS_JSON_MAX_DEPTH);
    switch (object->type) {
        case MSGPACK_OBJECT_NIL:
        case MSGPACK_OBJECT_BOOLEAN:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return 0;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            //  JSON in gives at most 2^63 - 1 (jansson's json_int_t): a
            //  larger one, from a peer, would go out as JSON that does not
            //  read back (an export that does not import; found by fuzz/).
            if (object->via.u64 > INT64_MAX)
                return cbus_fail (reason, "data: integers must be below 2^63");
            return 0;
        case MSGPACK_OBJECT_FLOAT64:
            if (!isfinite (object->via.f64))
                return cbus_fail (reason, "data: numbers must be finite");
            return 0;
        case MSGPACK_OBJECT_STR:
            if (object->via.str.size && !cbus_utf8_valid (object->via.str.ptr, object->via.str.size))
                return cbus_fail (reason, "data: strings must be UTF-8 without NUL");
            return 0;
        case MSGPACK_OBJECT_ARRAY:
            for (uint32_t index = 0; index < object->via.array.size; index++)
                if (s_check_data (&object->via.array.ptr [index], depth + 1, reason))
                    return -1;
            return 0;
        case MSGPACK_OBJECT_MAP: {
            uint32_t size = object->via.map.size;
            zhash_t *seen = size > 8 ? zhash_new () : NULL;
            int rc = 0;
            for (uint32_t index = 0; index < size && rc == 0; index++) {
                const msgpack_object *key = &object->via.map.ptr [index].key;
                if (key->type != MSGPACK_OBJECT_STR
                ||  (key->via.str.size && !cbus_utf8_valid (key->via.str.ptr, key->via.str.size))) {
                    rc = cbus_fail (reason, "data: object keys must be UTF-8 strings");
                    break;
                }
                //  Duplicate keys: a hash for big maps, pairwise for small.
                bool duplicate = false;
                if (seen) {
                    char *name = cbus_strdup_size (key->via.str.ptr, key->via.str.size);
                    duplicate = zhash_insert (seen, name, (void *) 1) != 0;
                    free (name);
                }
                else
                    for (uint32_t other = 0; other < index && !duplicate; other++) {
                        const msgpack_object *earlier = &object->via.map.ptr [other].key;
                        duplicate = earlier->via.str.size == key->via.str.size
                                 && memcmp (earlier->via.str.ptr, key->via.str.ptr,
                                            key->via.str.size) == 0;
                    }
                if (duplicate)
                    rc = cbus_fail (reason, "data: duplicate object key");
                else
                    rc = s_check_data (&object->via.map.ptr [index].val, depth + 1, reason);
            }
            zhash_destroy (&seen);
            return rc;
        }
        default:
            return cbus_fail (reason, "data: holds a value JSON cannot express");
    }
}

static bool
s_key_is (const msgpack_object *key, const char *name)
{
    size_t size = strlen (name);
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == size
        && memcmp (key->via.str.ptr, name, size) == 0;
}

static int
s_check_string (const msgpack_object *value, const char *name, char *reason)
{
    if (value->type != MSGPACK_OBJECT_STR)
        return cbus_fail (reason, "%s: must be a string", name);
    if (value->via.str.size > CBUS_TX_MAX_FIELD_BYTES)
        return cbus_fail (reason, "%s: at most %d bytes", name, CBUS_TX_MAX_FIELD_BYTES);
    if (value->via.str.size && !cbus_utf8_valid (value->via.str.ptr, value->via.str.size))
        return cbus_fail (reason, "%s: must be UTF-8 without NUL", name);
    return 0;
}

cbus_tx_t *
cbus_tx_decode (const void *data, size_t size, char *reason)
{
    if (size == 0 || size > CBUS_TX_MAX_BYTES) {
        cbus_fail (reason, "Transaction of %zu bytes is empty or too large", size);
        return NULL;
    }
    cbus_tx_t *self = s_tx_alloc ();
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    cbus_buf_t canonical = {0};
    if (cbus_unpack_next (&unpacked, (const char *) data, size, &offset) != MSGPACK_UNPACK_SUCCESS
    ||  offset != size) {
        cbus_fail (reason, "Transaction is not one msgpack value");
        goto failed;
    }
    const msgpack_object *map = &unpacked.data;
    if (map->type != MSGPACK_OBJECT_MAP
    ||  (map->via.map.size != S_FIELD_COUNT && map->via.map.size != S_FIELD_COUNT + 1)) {
        cbus_fail (reason, "Transaction must be a map of %d or %d keys", S_FIELD_COUNT, S_FIELD_COUNT + 1);
        goto failed;
    }
    const msgpack_object_kv *pairs = map->via.map.ptr;
    for (int index = 0; index < S_FIELD_COUNT; index++)
        if (!s_key_is (&pairs [index].key, s_fields [index])) {
            cbus_fail (reason, "Transaction keys are not in canonical order (expected %s)",
                    s_fields [index]);
            goto failed;
        }
    const msgpack_object *users = &pairs [0].val;
    if (users->type == MSGPACK_OBJECT_STR) {
        if (s_add_user (self, users->via.str.ptr, users->via.str.size, reason))
            goto failed;
    }
    else
    if (users->type == MSGPACK_OBJECT_ARRAY && users->via.array.size > 0) {
        for (uint32_t index = 0; index < users->via.array.size; index++) {
            const msgpack_object *user = &users->via.array.ptr [index];
            if (user->type != MSGPACK_OBJECT_STR) {
                cbus_fail (reason, "users: must be a string or a list of strings");
                goto failed;
            }
            if (s_add_user (self, user->via.str.ptr, user->via.str.size, reason))
                goto failed;
        }
    }
    else {
        cbus_fail (reason, "users: must be a string or a non-empty list of strings");
        goto failed;
    }
    if (s_check_data (&pairs [1].val, 0, reason))
        goto failed;
    for (int index = 2; index < S_REQUIRED; index++)
        if (s_check_string (&pairs [index].val, s_fields [index], reason))
            goto failed;
    self->receiver_key = cbus_strdup_size (pairs [4].val.via.str.ptr, pairs [4].val.via.str.size);
    self->sender_key = cbus_strdup_size (pairs [5].val.via.str.ptr, pairs [5].val.via.str.size);
    const msgpack_object *timestamp = &pairs [6].val;
    if (timestamp->type != MSGPACK_OBJECT_POSITIVE_INTEGER || timestamp->via.u64 < 1
    ||  timestamp->via.u64 > S_MAX_TIMESTAMP) {
        cbus_fail (reason, "timestamp: must be a positive integer");
        goto failed;
    }
    self->timestamp = timestamp->via.u64;

    //  Re-encode the seven canonical pairs: the bytes must come out the
    //  same, so that one transaction has exactly one encoding and one id.
    msgpack_packer pk;
    cbus_packer_init (&pk, &canonical);
    msgpack_pack_map (&pk, S_FIELD_COUNT);
    for (int index = 0; index < S_FIELD_COUNT; index++) {
        msgpack_pack_object (&pk, pairs [index].key);
        msgpack_pack_object (&pk, pairs [index].val);
    }
    if (map->via.map.size == S_FIELD_COUNT + 1) {
        const msgpack_object_kv *last = &pairs [S_FIELD_COUNT];
        if (!s_key_is (&last->key, "signature") || last->val.type != MSGPACK_OBJECT_BIN
        ||  last->val.via.bin.size != CBUS_SIG_BYTES) {
            cbus_fail (reason, "The eighth key must be a %d-byte signature", CBUS_SIG_BYTES);
            goto failed;
        }
        memcpy (self->signature, last->val.via.bin.ptr, CBUS_SIG_BYTES);
        self->is_signed = true;
    }
    self->signed_bytes = (uint8_t *) cbus_buf_detach (&canonical, &self->signed_size);
    if (self->is_signed) {
        s_encode_signed (self);
        if (self->size != size || memcmp (self->bytes, data, size) != 0) {
            cbus_fail (reason, "Transaction is not canonically encoded");
            goto failed;
        }
    }
    else
    if (self->signed_size != size || memcmp (self->signed_bytes, data, size) != 0) {
        cbus_fail (reason, "Transaction is not canonically encoded");
        goto failed;
    }
    s_finish (self);
    msgpack_unpacked_destroy (&unpacked);
    return self;
failed:
    cbus_buf_free (&canonical);
    msgpack_unpacked_destroy (&unpacked);
    cbus_tx_destroy (&self);
    return NULL;
}

int
cbus_tx_verify (cbus_tx_t *self, char *reason)
{
    return self->is_signed ? s_verify_signature (self, reason) : 0;
}

//  With at least this many signed transactions, cbus_tx_verify_many uses
//  one thread per CPU (at most S_VERIFY_THREADS); fewer are verified on
//  the caller's thread.
#define S_VERIFY_PARALLEL_MIN 64
#define S_VERIFY_THREADS 8

typedef struct {
    cbus_tx_t **txs;                //  All the transactions
    size_t count;                   //  How many
    size_t stride;                  //  Threads taking part
    size_t start;                   //  This thread's first index
    bool *ok;                       //  Every result, or NULL: stop early
    atomic_size_t *lowest_bad;      //  Lowest index that failed so far
} s_verify_job_t;

//  Verify every stride-th transaction from start. Without ok, stop past
//  an index that already failed: only the lowest failure is wanted.
static void *
s_verify_part (void *arg)
{
    s_verify_job_t *job = (s_verify_job_t *) arg;
    char reason [CBUS_REASON_MAX];
    for (size_t index = job->start; index < job->count; index += job->stride) {
        if (!job->ok && index > atomic_load (job->lowest_bad))
            break;
        bool good = cbus_tx_verify (job->txs [index], reason) == 0;
        if (job->ok)
            job->ok [index] = good;
        if (good)
            continue;
        size_t seen = atomic_load (job->lowest_bad);
        while (index < seen && !atomic_compare_exchange_weak (job->lowest_bad, &seen, index))
            ;
        if (!job->ok)
            break;
    }
    return NULL;
}

size_t
cbus_tx_verify_many (cbus_tx_t **txs, size_t count, bool *ok)
{
    size_t signed_count = 0;
    for (size_t index = 0; index < count; index++)
        signed_count += txs [index]->is_signed;
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    size_t threads = cpus < 1 ? 1 : cpus > S_VERIFY_THREADS ? S_VERIFY_THREADS : (size_t) cpus;
    if (signed_count < S_VERIFY_PARALLEL_MIN)
        threads = 1;
    atomic_size_t lowest_bad = SIZE_MAX;
    s_verify_job_t jobs [S_VERIFY_THREADS];
    pthread_t helpers [S_VERIFY_THREADS];
    bool started [S_VERIFY_THREADS] = { false };
    for (size_t index = 0; index < threads; index++)
        jobs [index] = (s_verify_job_t) { txs, count, threads, index, ok, &lowest_bad };
    //  The caller's thread takes part 0; a helper that cannot start
    //  leaves its part to the caller.
    for (size_t index = 1; index < threads; index++)
        started [index] = pthread_create (&helpers [index], NULL, s_verify_part, &jobs [index]) == 0;
    s_verify_part (&jobs [0]);
    for (size_t index = 1; index < threads; index++)
        if (started [index])
            pthread_join (helpers [index], NULL);
        else
            s_verify_part (&jobs [index]);
    size_t bad = atomic_load (&lowest_bad);
    return bad == SIZE_MAX ? count : bad;
}

cbus_tx_t *
cbus_tx_new_from_bytes (const void *data, size_t size, char *reason)
{
    cbus_tx_t *self = cbus_tx_decode (data, size, reason);
    if (self && cbus_tx_verify (self, reason))
        cbus_tx_destroy (&self);
    return self;
}

//  The signature pair at the end of a signed transaction's bytes: fixstr
//  "signature" (10 bytes), bin8 header (2), the signature (64).
#define S_SIGNATURE_PAIR_BYTES (10 + 2 + CBUS_SIG_BYTES)

int
cbus_tx_bytes_to_json (const void *data, size_t size, cbus_buf_t *out)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    int rc = -1;
    if (cbus_unpack_next (&unpacked, (const char *) data, size, &offset) != MSGPACK_UNPACK_SUCCESS
    ||  offset != size || unpacked.data.type != MSGPACK_OBJECT_MAP
    ||  size <= S_SIGNATURE_PAIR_BYTES)
        goto done;
    size_t start = out->size;
    if (cbus_json_write (out, &unpacked.data)) {
        out->size = start;
        goto done;
    }
    //  The txid hashes the canonical bytes: for a signed transaction,
    //  the seven-key map without the trailing signature pair.
    uint8_t id [CBUS_HASH_BYTES];
    if (unpacked.data.via.map.size == S_FIELD_COUNT + 1) {
        uint8_t *canonical = (uint8_t *) malloc (size - S_SIGNATURE_PAIR_BYTES);
        if (!canonical) {
            out->size = start;
            goto done;
        }
        canonical [0] = 0x87;
        memcpy (canonical + 1, (const uint8_t *) data + 1, size - S_SIGNATURE_PAIR_BYTES - 1);
        cbus_hash_sha256d (canonical, size - S_SIGNATURE_PAIR_BYTES, id);
        free (canonical);
    }
    else
        cbus_hash_sha256d (data, size, id);
    out->size--;                //  Reopen the object for the txid
    char hex [CBUS_HASH_HEX];
    cbus_buf_printf (out, ", \"txid\": \"%s\"}", cbus_hash_hex (id, hex));
    rc = 0;
done:
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

const uint8_t *
cbus_tx_id (cbus_tx_t *self)
{
    return self->id;
}

const uint8_t *
cbus_tx_leaf (cbus_tx_t *self)
{
    return self->leaf;
}

const uint8_t *
cbus_tx_bytes (cbus_tx_t *self, size_t *size_p)
{
    *size_p = self->size;
    return self->bytes;
}

const uint8_t *
cbus_tx_signed_bytes (cbus_tx_t *self, size_t *size_p)
{
    *size_p = self->signed_size;
    return self->signed_bytes;
}

uint64_t
cbus_tx_timestamp (cbus_tx_t *self)
{
    return self->timestamp;
}

bool
cbus_tx_is_signed (cbus_tx_t *self)
{
    return self->is_signed;
}

size_t
cbus_tx_user_count (cbus_tx_t *self)
{
    return self->user_count;
}

const char *
cbus_tx_user (cbus_tx_t *self, size_t index)
{
    return index < self->user_count ? self->users [index] : NULL;
}

const char *
cbus_tx_sender_key (cbus_tx_t *self)
{
    return self->sender_key;
}

const char *
cbus_tx_receiver_key (cbus_tx_t *self)
{
    return self->receiver_key;
}

void
cbus_tx_write_json (cbus_tx_t *self, cbus_buf_t *out)
{
    //  The bytes were checked when this transaction was made.
    int rc = cbus_tx_bytes_to_json (self->bytes, self->size, out);
    assert (rc == 0);
}

//  --------------------------------------------------------------------------
//  Self test

//  The canonical bytes of a transaction whose data is one integer.
static void
s_test_integer_data (cbus_buf_t *out, uint64_t value)
{
    msgpack_packer pk = cbus_packer_begin (out, 7);
    cbus_pack_kv_str (&pk, "users", "u");
    cbus_pack_kv_u64 (&pk, "data", value);
    cbus_pack_kv_str (&pk, "dh_parameters", "");
    cbus_pack_kv_str (&pk, "server_public_key", "");
    cbus_pack_kv_str (&pk, "receiver_public_key", "");
    cbus_pack_kv_str (&pk, "sender_public_key", "");
    cbus_pack_kv_u64 (&pk, "timestamp", 5);
}

static cbus_tx_t *
s_from_text (const char *text, char *reason)
{
    json_t *object = cbus_json_parse (text, strlen (text), reason);
    if (!object)
        return NULL;
    cbus_tx_t *tx = cbus_tx_new_from_json (object, 1700000000000000ULL, reason);
    json_decref (object);
    return tx;
}

void
cbus_tx_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_tx: ");
    assert (sodium_init () >= 0);
    char reason [CBUS_REASON_MAX];
    const char *seed = "{\"users\": \"user1\", \"data\": [], \"dh_parameters\": \"param\","
        " \"server_public_key\": \"server_key\", \"receiver_public_key\": \"receiver_key\","
        " \"sender_public_key\": \"sender_key\"}";
    cbus_tx_t *tx = s_from_text (seed, reason);
    assert (tx);
    assert (cbus_tx_timestamp (tx) == 1700000000000000ULL);
    assert (cbus_tx_user_count (tx) == 1 && streq (cbus_tx_user (tx, 0), "user1"));
    assert (!cbus_tx_is_signed (tx));
    assert (memcmp (cbus_tx_id (tx), cbus_tx_leaf (tx), CBUS_HASH_BYTES) == 0);

    //  The bytes decode back to the same transaction.
    size_t size;
    const uint8_t *bytes = cbus_tx_bytes (tx, &size);
    cbus_tx_t *copy = cbus_tx_new_from_bytes (bytes, size, reason);
    assert (copy);
    assert (memcmp (cbus_tx_id (copy), cbus_tx_id (tx), CBUS_HASH_BYTES) == 0);
    cbus_buf_t json = {0};
    cbus_tx_write_json (copy, &json);
    assert (strstr (json.data, "\"users\": \"user1\", \"data\": []"));
    assert (strstr (json.data, "\"timestamp\": 1700000000000000, \"txid\": \""));
    cbus_tx_destroy (&copy);

    //  A changed byte changes the id or is refused; appended bytes refused.
    uint8_t *tampered = (uint8_t *) malloc (size + 1);
    memcpy (tampered, bytes, size);
    tampered [size] = 0xc0;
    assert (cbus_tx_new_from_bytes (tampered, size + 1, reason) == NULL);
    //  "user1" -> "user2": valid, but another transaction.
    uint8_t *at = (uint8_t *) memmem (tampered, size, "user1", 5);
    assert (at);
    at [4] = '2';
    copy = cbus_tx_new_from_bytes (tampered, size, reason);
    assert (copy && memcmp (cbus_tx_id (copy), cbus_tx_id (tx), CBUS_HASH_BYTES) != 0);
    cbus_tx_destroy (&copy);
    free (tampered);
    cbus_tx_destroy (&tx);

    //  Lists of users, any JSON data, explicit timestamp.
    tx = s_from_text ("{\"users\": [\"a\", \"b\"], \"data\": {\"x\": [1, 2.5, null]},"
                      " \"dh_parameters\": \"\", \"server_public_key\": \"s\","
                      " \"receiver_public_key\": \"r\", \"sender_public_key\": \"k\","
                      " \"timestamp\": 42}", reason);
    assert (tx && cbus_tx_user_count (tx) == 2 && cbus_tx_timestamp (tx) == 42);
    cbus_buf_reset (&json);
    cbus_tx_write_json (tx, &json);
    assert (strstr (json.data, "\"data\": {\"x\": [1, 2.5, null]}"));
    cbus_tx_destroy (&tx);

    //  Refusals with reasons.
    assert (!s_from_text ("[1]", reason) && strstr (reason, "JSON object"));
    assert (!s_from_text ("{\"users\": \"u\"}", reason));
    assert (streq (reason, "Missing values: data, dh_parameters, server_public_key, "
                           "receiver_public_key, sender_public_key"));
    assert (!s_from_text ("{\"users\": 5, \"data\": 1, \"dh_parameters\": \"\", \"server_public_key\": \"\","
                          " \"receiver_public_key\": \"\", \"sender_public_key\": \"\"}", reason));
    assert (strstr (reason, "users"));
    assert (!s_from_text ("{\"users\": [], \"data\": 1, \"dh_parameters\": \"\", \"server_public_key\": \"\","
                          " \"receiver_public_key\": \"\", \"sender_public_key\": \"\"}", reason));
    assert (!s_from_text ("{\"users\": \"u\", \"data\": 1, \"dh_parameters\": 7, \"server_public_key\": \"\","
                          " \"receiver_public_key\": \"\", \"sender_public_key\": \"\"}", reason));
    assert (strstr (reason, "dh_parameters: must be a string"));
    assert (!s_from_text ("{\"users\": \"u\", \"data\": 1, \"dh_parameters\": \"\", \"server_public_key\": \"\","
                          " \"receiver_public_key\": \"\", \"sender_public_key\": \"\", \"extra\": 1}", reason));
    assert (strstr (reason, "Unknown field: extra"));
    assert (!s_from_text ("{\"users\": \"u\", \"data\": 1, \"dh_parameters\": \"\", \"server_public_key\": \"\","
                          " \"receiver_public_key\": \"\", \"sender_public_key\": \"\", \"timestamp\": -1}", reason));
    assert (strstr (reason, "timestamp"));

    //  Signed: verifies; a changed field or a forged signature does not.
    uint8_t public_key [crypto_sign_PUBLICKEYBYTES], secret_key [crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair (public_key, secret_key);
    char key_hex [2 * CBUS_PUBKEY_BYTES + 1];
    cbus_hex_encode (public_key, CBUS_PUBKEY_BYTES, key_hex);
    char *unsigned_text = zsys_sprintf (
        "{\"users\": \"u\", \"data\": {\"k\": 1}, \"dh_parameters\": \"\", \"server_public_key\": \"\","
        " \"receiver_public_key\": \"r\", \"sender_public_key\": \"%s\", \"timestamp\": 5}", key_hex);
    tx = s_from_text (unsigned_text, reason);
    assert (tx);
    const uint8_t *to_sign = cbus_tx_signed_bytes (tx, &size);
    uint8_t signature [CBUS_SIG_BYTES];
    crypto_sign_detached (signature, NULL, to_sign, size, secret_key);
    char signature_hex [2 * CBUS_SIG_BYTES + 1];
    cbus_hex_encode (signature, CBUS_SIG_BYTES, signature_hex);
    char *signed_text = zsys_sprintf ("%.*s, \"signature\": \"%s\"}",
        (int) strlen (unsigned_text) - 1, unsigned_text, signature_hex);
    cbus_tx_t *signed_tx = s_from_text (signed_text, reason);
    assert (signed_tx && cbus_tx_is_signed (signed_tx));
    assert (cbus_tx_verify (signed_tx, reason) == 0);
    cbus_buf_reset (&json);
    cbus_tx_write_json (signed_tx, &json);
    char txid_hex [CBUS_HASH_HEX];
    assert (strstr (json.data, cbus_hash_hex (cbus_tx_id (signed_tx), txid_hex)));
    assert (strstr (json.data, "\"signature\": \""));
    assert (memcmp (cbus_tx_id (signed_tx), cbus_tx_id (tx), CBUS_HASH_BYTES) == 0);
    assert (memcmp (cbus_tx_leaf (signed_tx), cbus_tx_id (tx), CBUS_HASH_BYTES) != 0);
    bytes = cbus_tx_bytes (signed_tx, &size);
    copy = cbus_tx_new_from_bytes (bytes, size, reason);
    assert (copy && cbus_tx_is_signed (copy));
    cbus_tx_destroy (&copy);
    cbus_tx_destroy (&signed_tx);
    cbus_tx_destroy (&tx);
    //  Change a field after signing: refused.
    char *changed = strdup (signed_text);
    char *receiver = strstr (changed, "\"r\"");
    receiver [1] = 'R';
    tx = s_from_text (changed, reason);
    assert (tx && cbus_tx_verify (tx, reason) == -1 && strstr (reason, "does not verify"));
    //  ... and its bytes are refused on the way in.
    bytes = cbus_tx_bytes (tx, &size);
    assert (cbus_tx_new_from_bytes (bytes, size, reason) == NULL);
    assert (strstr (reason, "does not verify"));
    //  cbus_tx_decode leaves the signature to cbus_tx_verify.
    copy = cbus_tx_decode (bytes, size, reason);
    assert (copy && cbus_tx_is_signed (copy));
    assert (cbus_tx_verify (copy, reason) == -1 && strstr (reason, "does not verify"));
    cbus_tx_destroy (&copy);
    cbus_tx_destroy (&tx);
    free (changed);
    //  Forge: flip one signature digit.
    changed = strdup (signed_text);
    char *digits = strstr (changed, signature_hex);
    digits [0] = digits [0] == '0' ? '1' : '0';
    tx = s_from_text (changed, reason);
    assert (tx && cbus_tx_verify (tx, reason) == -1 && strstr (reason, "does not verify"));
    cbus_tx_destroy (&tx);
    free (changed);
    zstr_free (&signed_text);
    zstr_free (&unsigned_text);

    //  A data integer JSON cannot give (2^63 and above) is refused.
    s_test_integer_data (&json, INT64_MAX);
    tx = cbus_tx_decode (json.data, json.size, reason);
    assert (tx);
    cbus_tx_destroy (&tx);
    s_test_integer_data (&json, (uint64_t) INT64_MAX + 1);
    assert (!cbus_tx_decode (json.data, json.size, reason) && strstr (reason, "below 2^63"));
    cbus_buf_free (&json);
    if (verbose)
        printf ("OK\n");
}
