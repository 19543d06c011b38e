/*  =========================================================================
    cbus_pack - reading and writing msgpack maps
    =========================================================================
*/
#include "cbus.h"

//  --------------------------------------------------------------------------
//  Unpacking bytes from outside

//  Big-endian length of width bytes at data.
static uint64_t
s_length (const uint8_t *data, int width)
{
    uint64_t value = 0;
    for (int index = 0; index < width; index++)
        value = (value << 8) | data [index];
    return value;
}

//  Does the object at data [0..size) declare no more items than bytes
//  remain? Each item takes at least one byte, so the items still to read
//  may never outnumber the bytes left. Truncated bodies are left to
//  msgpack-c, which reports them itself.
static bool
s_counts_fit (const uint8_t *data, size_t size)
{
    uint64_t pending = 1;           //  Objects still to read
    size_t at = 0;
    while (pending > 0 && at < size) {
        uint8_t type = data [at++];
        pending--;
        uint64_t items = 0, skip = 0;
        int width = 0;              //  Bytes of a length that follows
        if (type <= 0x7f || type >= 0xe0 || (type >= 0xc0 && type <= 0xc3))
            ;                       //  Fixint, nil, bool (0xc1 left to msgpack-c)
        else if (type <= 0x8f) items = 2 * (uint64_t) (type & 0x0f);
        else if (type <= 0x9f) items = type & 0x0f;
        else if (type <= 0xbf) skip = type & 0x1f;
        else if (type >= 0xc4 && type <= 0xc6) width = 1 << (type - 0xc4);
        else if (type >= 0xc7 && type <= 0xc9) width = 1 << (type - 0xc7), skip = 1;
        else if (type == 0xca || type == 0xce || type == 0xd2) skip = 4;
        else if (type == 0xcb || type == 0xcf || type == 0xd3) skip = 8;
        else if (type == 0xcc || type == 0xd0) skip = 1;
        else if (type == 0xcd || type == 0xd1) skip = 2;
        else if (type >= 0xd4 && type <= 0xd8) skip = 1 + ((uint64_t) 1 << (type - 0xd4));
        else if (type >= 0xd9 && type <= 0xdb) width = 1 << (type - 0xd9);
        else {                      //  0xdc..0xdf: array16/32, map16/32
            int size_width = (type == 0xdc || type == 0xde) ? 2 : 4;
            if (size - at < (size_t) size_width)
                return true;
            items = s_length (data + at, size_width) * (type >= 0xde ? 2 : 1);
            at += size_width;
        }
        if (width) {
            if (size - at < (size_t) width)
                return true;
            skip += s_length (data + at, width);
            at += width;
        }
        if (skip > size - at)
            return true;
        at += skip;
        pending += items;
        if (pending > size - at)
            return false;
    }
    return true;
}

msgpack_unpack_return
cbus_unpack_next (msgpack_unpacked *result, const char *data, size_t size, size_t *offset)
{
    if (*offset < size && !s_counts_fit ((const uint8_t *) data + *offset, size - *offset))
        return MSGPACK_UNPACK_CONTINUE;
    return msgpack_unpack_next (result, data, size, offset);
}

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
    //  Five bytes that claim 2^32 - 1 items are refused before msgpack-c
    //  allocates for them; items that fit are not.
    size_t claimed = 0;
    assert (cbus_unpack_next (&unpacked, "\xdd\xff\xff\xff\xff", 5, &claimed)
            == MSGPACK_UNPACK_CONTINUE && claimed == 0);
    assert (cbus_unpack_next (&unpacked, "\xdf\x00\x00\x00\x01\xa1k\x92\xc0\xc4\x01x", 12,
                              &claimed) == MSGPACK_UNPACK_SUCCESS && claimed == 12);
    offset = 0;
    assert (cbus_unpack_next (&unpacked, buf.data, buf.size, &offset) == MSGPACK_UNPACK_SUCCESS);
    map = &unpacked.data;
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
