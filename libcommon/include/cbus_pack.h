/*  =========================================================================
    cbus_pack - reading and writing msgpack maps, the codec every message
    and record uses

    Small helpers over msgpack-c: getters that find a key in a decoded map
    and check its type, and packers that append one key and value to an
    open map. cbus_msgs builds the bus messages on them; the data model
    (tx, block) uses them for its canonical encodings. The getters' names
    keep the cbus_msg_ prefix they had when they lived in cbus_msg.
    =========================================================================
*/
#ifndef CBUS_PACK_H_INCLUDED
#define CBUS_PACK_H_INCLUDED

//  msgpack_unpack_next for bytes from outside: the same, except that an
//  array or map declaring more items than bytes remain is refused
//  (MSGPACK_UNPACK_CONTINUE, as for any incomplete object) before
//  msgpack-c allocates room for them all: otherwise five bytes claiming
//  2^32 items cost an allocation of 100 GB (found by fuzz/). One pass
//  over the object's headers, skipping str, bin and ext bodies.
msgpack_unpack_return
    cbus_unpack_next (msgpack_unpacked *result, const char *data, size_t size, size_t *offset);

//  Reading msgpack maps. Each getter returns 0, or -1 when the key is
//  missing or has another type; pointers borrow from the object.
const msgpack_object *
    cbus_msg_get (const msgpack_object *map, const char *key);
int
    cbus_msg_get_u64 (const msgpack_object *map, const char *key, uint64_t *value);
int
    cbus_msg_get_str (const msgpack_object *map, const char *key,
                      const char **text, size_t *size);
int
    cbus_msg_get_bin (const msgpack_object *map, const char *key,
                      const uint8_t **data, size_t *size);
//  A 32-byte bin.
int
    cbus_msg_get_hash (const msgpack_object *map, const char *key,
                       uint8_t hash [CBUS_HASH_BYTES]);
int
    cbus_msg_get_bool (const msgpack_object *map, const char *key, bool *value);

//  Packing: key/value pairs into an open map.
void
    cbus_pack_str (msgpack_packer *pk, const char *text);
void
    cbus_pack_kv_str (msgpack_packer *pk, const char *key, const char *value);
void
    cbus_pack_kv_u64 (msgpack_packer *pk, const char *key, uint64_t value);
void
    cbus_pack_kv_i64 (msgpack_packer *pk, const char *key, int64_t value);
void
    cbus_pack_kv_bool (msgpack_packer *pk, const char *key, bool value);
void
    cbus_pack_kv_bin (msgpack_packer *pk, const char *key, const void *data, size_t size);
void
    cbus_pack_kv_double (msgpack_packer *pk, const char *key, double value);
//  Initialise a packer writing into buf.
void
    cbus_packer_init (msgpack_packer *pk, cbus_buf_t *buf);
//  Empty buf and start a map of count entries in it: the usual start of
//  a request or reply body.
msgpack_packer
    cbus_packer_begin (cbus_buf_t *buf, uint32_t count);

void
    cbus_pack_test (bool verbose);

#endif
