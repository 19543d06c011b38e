/*  =========================================================================
    cbus_pack - reading and writing msgpack maps
    =========================================================================
*/
#include "cbus.h"

//  --------------------------------------------------------------------------
//  Reading maps

const msgpack_object *
cbus_msg_get (const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t key_size = strlen (key);
    for (uint32_t index = 0; index < map->via.map.size; index++) {
        const msgpack_object *candidate = &map->via.map.ptr [index].key;
        if (candidate->type == MSGPACK_OBJECT_STR
        &&  candidate->via.str.size == key_size
        &&  memcmp (candidate->via.str.ptr, key, key_size) == 0)
            return &map->via.map.ptr [index].val;
    }
    return NULL;
}

int
cbus_msg_get_u64 (const msgpack_object *map, const char *key, uint64_t *value)
{
    const msgpack_object *object = cbus_msg_get (map, key);
    if (!object || object->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -1;
    *value = object->via.u64;
    return 0;
}

int
cbus_msg_get_str (const msgpack_object *map, const char *key,
                  const char **text, size_t *size)
{
    const msgpack_object *object = cbus_msg_get (map, key);
    if (!object || object->type != MSGPACK_OBJECT_STR)
        return -1;
    *text = object->via.str.ptr;
    *size = object->via.str.size;
    return 0;
}

int
cbus_msg_get_bin (const msgpack_object *map, const char *key,
                  const uint8_t **data, size_t *size)
{
    const msgpack_object *object = cbus_msg_get (map, key);
    if (!object || object->type != MSGPACK_OBJECT_BIN)
        return -1;
    *data = (const uint8_t *) object->via.bin.ptr;
    *size = object->via.bin.size;
    return 0;
}

int
cbus_msg_get_hash (const msgpack_object *map, const char *key,
                   uint8_t hash [CBUS_HASH_BYTES])
{
    const uint8_t *data;
    size_t size;
    if (cbus_msg_get_bin (map, key, &data, &size) || size != CBUS_HASH_BYTES)
        return -1;
    memcpy (hash, data, CBUS_HASH_BYTES);
    return 0;
}

int
cbus_msg_get_bool (const msgpack_object *map, const char *key, bool *value)
{
    const msgpack_object *object = cbus_msg_get (map, key);
    if (!object || object->type != MSGPACK_OBJECT_BOOLEAN)
        return -1;
    *value = object->via.boolean;
    return 0;
}

//  --------------------------------------------------------------------------
//  Packing

void
cbus_packer_init (msgpack_packer *pk, cbus_buf_t *buf)
{
    msgpack_packer_init (pk, buf, cbus_buf_msgpack_write);
}

msgpack_packer
cbus_packer_begin (cbus_buf_t *buf, uint32_t count)
{
    cbus_buf_reset (buf);
    msgpack_packer pk;
    cbus_packer_init (&pk, buf);
    msgpack_pack_map (&pk, count);
    return pk;
}

void
cbus_pack_str (msgpack_packer *pk, const char *text)
{
    size_t size = strlen (text);
    msgpack_pack_str (pk, size);
    msgpack_pack_str_body (pk, text, size);
}

void
cbus_pack_kv_str (msgpack_packer *pk, const char *key, const char *value)
{
    cbus_pack_str (pk, key);
    cbus_pack_str (pk, value);
}

void
cbus_pack_kv_u64 (msgpack_packer *pk, const char *key, uint64_t value)
{
    cbus_pack_str (pk, key);
    msgpack_pack_uint64 (pk, value);
}

void
cbus_pack_kv_i64 (msgpack_packer *pk, const char *key, int64_t value)
{
    cbus_pack_str (pk, key);
    msgpack_pack_int64 (pk, value);
}

void
cbus_pack_kv_bool (msgpack_packer *pk, const char *key, bool value)
{
    cbus_pack_str (pk, key);
    if (value)
        msgpack_pack_true (pk);
    else
        msgpack_pack_false (pk);
}

void
cbus_pack_kv_bin (msgpack_packer *pk, const char *key, const void *data, size_t size)
{
    cbus_pack_str (pk, key);
    msgpack_pack_bin (pk, size);
    msgpack_pack_bin_body (pk, data, size);
}

void
cbus_pack_kv_double (msgpack_packer *pk, const char *key, double value)
{
    cbus_pack_str (pk, key);
    msgpack_pack_double (pk, value);
}

//  --------------------------------------------------------------------------
//  Self test

void
cbus_pack_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_pack: ");
    cbus_buf_t buf = {0};
    msgpack_packer pk = cbus_packer_begin (&buf, 6);
    cbus_pack_kv_u64 (&pk, "n", 42);
    cbus_pack_kv_str (&pk, "s", "text");
    cbus_pack_kv_bool (&pk, "b", true);
    uint8_t hash [CBUS_HASH_BYTES];
    memset (hash, 9, sizeof (hash));
    cbus_pack_kv_bin (&pk, "h", hash, sizeof (hash));
    cbus_pack_kv_bin (&pk, "short", hash, 3);
    cbus_pack_kv_i64 (&pk, "neg", -5);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    assert (msgpack_unpack_next (&unpacked, buf.data, buf.size, &offset) == MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *map = &unpacked.data;
    uint64_t number;
    assert (cbus_msg_get_u64 (map, "n", &number) == 0 && number == 42);
    assert (cbus_msg_get_u64 (map, "s", &number) == -1);       //  Another type
    assert (cbus_msg_get_u64 (map, "neg", &number) == -1);     //  Not positive
    assert (cbus_msg_get_u64 (map, "none", &number) == -1);
    const char *text;
    size_t size;
    assert (cbus_msg_get_str (map, "s", &text, &size) == 0 && size == 4 && memcmp (text, "text", 4) == 0);
    bool flag = false;
    assert (cbus_msg_get_bool (map, "b", &flag) == 0 && flag);
    uint8_t back [CBUS_HASH_BYTES];
    assert (cbus_msg_get_hash (map, "h", back) == 0 && memcmp (back, hash, sizeof (back)) == 0);
    assert (cbus_msg_get_hash (map, "short", back) == -1);     //  Not 32 bytes
    const uint8_t *data;
    assert (cbus_msg_get_bin (map, "short", &data, &size) == 0 && size == 3);
    assert (cbus_msg_get (NULL, "n") == NULL);
    msgpack_unpacked_destroy (&unpacked);
    cbus_buf_free (&buf);
    if (verbose)
        printf ("OK\n");
}
