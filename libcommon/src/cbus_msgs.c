/*  =========================================================================
    cbus_msgs - one definition of every message on the bus

    The table in cbus_msgs.h is expanded here three times per message:
    into a field list (names, kinds, sub-messages: for printing and for
    decoding nested maps), into a counter and a packer that read the
    struct's members by name, and into a decoder. The kinds' work is
    done by a handful of generic functions below, so what a macro
    expands to stays one line per field.
    =========================================================================
*/
#include "cbus.h"
#include <stdarg.h>

typedef enum {
    S_U64, S_I64, S_BOOL, S_STR, S_BIN, S_HASH, S_HEADER, S_LIST, S_MAPS, S_MAP
} s_kind_t;

typedef enum { S_REQ, S_OPT, S_NIL } s_presence_t;

#define S_STRINGIFY(value) #value
#define S_BIN_OF(bytes) "bin" S_STRINGIFY (bytes)
static const char *s_kind_names [] = {
    "int", "int", "bool", "str", "bin", "bin32", S_BIN_OF (CBUS_HEADER_BYTES), "list", "list", "map"
};

//  One field as the printer and the decoder see it.
typedef struct {
    const char *name;               //  Key on the wire
    s_kind_t kind;                  //  Its kind
    s_presence_t presence;          //  REQ, OPT, NIL
    s_kind_t element;               //  A LIST's element kind
    const cbus_msgdef_t *sub;       //  A MAP's or MAPS' element message
} s_field_t;

struct _cbus_msgdef_t {
    const char *name;               //  In the table ("tip_reply")
    const char *kind;               //  SUB, REQUEST, REPLY, EVENT
    const char *wire;               //  Command or topic
    const char *service;            //  Who serves or publishes it
    const char *when;               //  For events: when it is published
    const s_field_t *fields;        //  In wire order
    size_t field_count;             //  How many
    size_t size;                    //  sizeof its struct
    uint32_t (*count) (const void *self);
    void (*pack) (const void *self, msgpack_packer *pk);
    int (*decode) (const msgpack_object *map, void *self, char *reason);
};

//  --------------------------------------------------------------------------
//  Values

cbus_str_t
cbus_str (const char *text)
{
    cbus_str_t value = { text, text ? strlen (text) : 0 };
    return value;
}

bool
cbus_str_eq (cbus_str_t value, const char *text)
{
    size_t size = strlen (text);
    return value.size == size && (size == 0 || memcmp (value.data, text, size) == 0);
}

const uint8_t *
cbus_list_hash (const cbus_list_t *self, uint32_t index)
{
    assert (self->decoded && index < self->count);
    return (const uint8_t *) self->decoded [index].via.bin.ptr;
}

cbus_bytes_t
cbus_list_bytes (const cbus_list_t *self, uint32_t index)
{
    assert (self->decoded && index < self->count);
    const msgpack_object *item = &self->decoded [index];
    cbus_bytes_t value = { (const uint8_t *) item->via.bin.ptr, item->via.bin.size };
    return value;
}

cbus_str_t
cbus_list_str (const cbus_list_t *self, uint32_t index)
{
    assert (self->decoded && index < self->count);
    const msgpack_object *item = &self->decoded [index];
    cbus_str_t value = { item->via.str.ptr, item->via.str.size };
    return value;
}

bool
cbus_list_bool (const cbus_list_t *self, uint32_t index)
{
    assert (self->decoded && index < self->count);
    return self->decoded [index].via.boolean;
}

uint64_t
cbus_list_u64 (const cbus_list_t *self, uint32_t index)
{
    assert (self->decoded && index < self->count);
    return self->decoded [index].via.u64;
}

int
cbus_list_decode_map (const cbus_list_t *self, uint32_t index,
                      const cbus_msgdef_t *element, void *item, char *reason)
{
    assert (self->decoded && index < self->count);
    return cbus_msgdef_decode (element, &self->decoded [index], item, reason);
}

//  --------------------------------------------------------------------------
//  Packing one value of each kind

static void
s_pack_bytes (msgpack_packer *pk, const void *data, size_t size)
{
    msgpack_pack_bin (pk, size);
    msgpack_pack_bin_body (pk, data, size);
}

static void
s_pack_text (msgpack_packer *pk, const char *data, size_t size)
{
    msgpack_pack_str (pk, size);
    msgpack_pack_str_body (pk, data, size);
}

static void
s_pack_u64 (msgpack_packer *pk, const uint64_t *value)
{
    msgpack_pack_uint64 (pk, *value);
}

static void
s_pack_i64 (msgpack_packer *pk, const int64_t *value)
{
    msgpack_pack_int64 (pk, *value);
}

static void
s_pack_bool (msgpack_packer *pk, const bool *value)
{
    if (*value)
        msgpack_pack_true (pk);
    else
        msgpack_pack_false (pk);
}

static void
s_pack_str (msgpack_packer *pk, const cbus_str_t *value)
{
    s_pack_text (pk, value->data, value->size);
}

static void
s_pack_bin (msgpack_packer *pk, const cbus_bytes_t *value)
{
    s_pack_bytes (pk, value->data, value->size);
}

static void
s_pack_hash (msgpack_packer *pk, const uint8_t *const *value)
{
    s_pack_bytes (pk, *value, CBUS_HASH_BYTES);
}

static void
s_pack_header (msgpack_packer *pk, const uint8_t *const *value)
{
    s_pack_bytes (pk, *value, CBUS_HEADER_BYTES);
}

//  A list of element kind (or of sub maps), from its items or its item
//  function.
static void
s_pack_list (msgpack_packer *pk, const cbus_list_t *list, s_kind_t element,
             const cbus_msgdef_t *sub)
{
    msgpack_pack_array (pk, list->count);
    for (uint32_t index = 0; index < list->count; index++) {
        const uint8_t *items = (const uint8_t *) list->items;
        size_t size = 0;
        const void *item = list->item ? list->item (list->source, index, &size) : NULL;
        if (sub) {
            const void *self = item ? item : items + index * sub->size;
            msgpack_pack_map (pk, sub->count (self));
            sub->pack (self, pk);
        }
        else
        if (element == S_HASH || element == S_HEADER) {
            size_t row = element == S_HASH ? CBUS_HASH_BYTES : CBUS_HEADER_BYTES;
            s_pack_bytes (pk, item ? item : items + index * row, row);
        }
        else
        if (element == S_BIN) {
            if (item)
                s_pack_bytes (pk, item, size);
            else
                s_pack_bin (pk, (const cbus_bytes_t *) items + index);
        }
        else
        if (element == S_STR) {
            if (item)
                s_pack_text (pk, (const char *) item, size);
            else
                s_pack_str (pk, (const cbus_str_t *) items + index);
        }
        else
        if (element == S_U64)
            s_pack_u64 (pk, item ? (const uint64_t *) item : (const uint64_t *) items + index);
        else
            s_pack_bool (pk, item ? (const bool *) item : (const bool *) items + index);
    }
}

//  --------------------------------------------------------------------------
//  Decoding one field

static int
s_wrong (const cbus_msgdef_t *def, const char *field, const char *what, char *reason)
{
    return cbus_fail (reason, "%s %s: %s %s", def->wire, strcmp (def->kind, "REQUEST") == 0
                      ? "request" : strcmp (def->kind, "EVENT") == 0 ? "event" : "reply",
                      field, what);
}

//  Is object of kind (a 32- or 100-byte bin for HASH and HEADER)?
static bool
s_is (const msgpack_object *object, s_kind_t kind)
{
    switch (kind) {
        case S_U64:    return object->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
        case S_I64:    return object->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
                           || (object->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                               && object->via.u64 <= INT64_MAX);
        case S_BOOL:   return object->type == MSGPACK_OBJECT_BOOLEAN;
        case S_STR:    return object->type == MSGPACK_OBJECT_STR;
        case S_BIN:    return object->type == MSGPACK_OBJECT_BIN;
        case S_HASH:   return object->type == MSGPACK_OBJECT_BIN
                           && object->via.bin.size == CBUS_HASH_BYTES;
        case S_HEADER: return object->type == MSGPACK_OBJECT_BIN
                           && object->via.bin.size == CBUS_HEADER_BYTES;
        case S_LIST:
        case S_MAPS:   return object->type == MSGPACK_OBJECT_ARRAY;
        case S_MAP:    return object->type == MSGPACK_OBJECT_MAP;
    }
    return false;
}

//  Read the field into target (the member), setting *has for OPT and NIL
//  fields. -1 with a reason when it is missing (REQ) or of another kind.
static int
s_decode_field (const cbus_msgdef_t *def, const s_field_t *field,
                const msgpack_object *map, void *target, bool *has, char *reason)
{
    const msgpack_object *object = cbus_msg_get (map, field->name);
    if (has)
        *has = false;
    if (!object || (field->presence == S_NIL && object->type == MSGPACK_OBJECT_NIL)) {
        if (field->presence == S_REQ)
            return s_wrong (def, field->name, "is missing", reason);
        return 0;
    }
    if (!s_is (object, field->kind)) {
        char what [64];
        snprintf (what, sizeof (what), "must be %s %s", field->kind == S_MAP ? "a" : "of type",
                  s_kind_names [field->kind]);
        return s_wrong (def, field->name, what, reason);
    }
    if (has)
        *has = true;
    switch (field->kind) {
        case S_U64:    *(uint64_t *) target = object->via.u64; break;
        case S_I64:    *(int64_t *) target = object->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
                                             ? object->via.i64 : (int64_t) object->via.u64;
                       break;
        case S_BOOL:   *(bool *) target = object->via.boolean; break;
        case S_STR:    *(cbus_str_t *) target = (cbus_str_t) { object->via.str.ptr,
                                                                object->via.str.size };
                       break;
        case S_BIN:    *(cbus_bytes_t *) target = (cbus_bytes_t) {
                           (const uint8_t *) object->via.bin.ptr, object->via.bin.size };
                       break;
        case S_HASH:
        case S_HEADER: *(const uint8_t **) target = (const uint8_t *) object->via.bin.ptr; break;
        case S_LIST:
        case S_MAPS: {
            cbus_list_t *list = (cbus_list_t *) target;
            s_kind_t element = field->kind == S_MAPS ? S_MAP : field->element;
            for (uint32_t index = 0; index < object->via.array.size; index++)
                if (!s_is (&object->via.array.ptr [index], element)) {
                    char what [64];
                    snprintf (what, sizeof (what), "item %u must be of type %s",
                              index, s_kind_names [element]);
                    return s_wrong (def, field->name, what, reason);
                }
            memset (list, 0, sizeof (*list));
            list->count = object->via.array.size;
            list->decoded = object->via.array.ptr;
            break;
        }
        case S_MAP: {
            //  The sub-message's reason starts with its own command (a
            //  sub-message may sit in several: block_summary): name this
            //  one's, and the path to the field.
            char inner [CBUS_REASON_MAX];
            if (field->sub->decode (object, target, inner) == 0)
                return 0;
            const char *tail = strstr (inner, ": ");
            return s_wrong (def, field->name, tail ? tail + 2 : inner, reason);
        }
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  The table, expanded

//  Per kind: the packer, the element of a LIST, the sub-message.
#define S_PACK_U64(pk, member, element)    s_pack_u64 (pk, &(member))
#define S_PACK_I64(pk, member, element)    s_pack_i64 (pk, &(member))
#define S_PACK_BOOL(pk, member, element)   s_pack_bool (pk, &(member))
#define S_PACK_STR(pk, member, element)    s_pack_str (pk, &(member))
#define S_PACK_BIN(pk, member, element)    s_pack_bin (pk, &(member))
#define S_PACK_HASH(pk, member, element)   s_pack_hash (pk, &(member))
#define S_PACK_HEADER(pk, member, element) s_pack_header (pk, &(member))
#define S_PACK_LIST(pk, member, element)   s_pack_list (pk, &(member), S_##element, NULL)
#define S_PACK_MAPS(pk, member, element)   s_pack_list (pk, &(member), S_MAP, &cbus_##element##_def)
#define S_PACK_MAP(pk, member, element) \
    (msgpack_pack_map (pk, cbus_##element##_def.count (&(member))), \
     cbus_##element##_def.pack (&(member), pk))
#define S_ELEMENT_U64(element)    S_U64
#define S_ELEMENT_I64(element)    S_U64
#define S_ELEMENT_BOOL(element)   S_U64
#define S_ELEMENT_STR(element)    S_U64
#define S_ELEMENT_BIN(element)    S_U64
#define S_ELEMENT_HASH(element)   S_U64
#define S_ELEMENT_HEADER(element) S_U64
#define S_ELEMENT_LIST(element)   S_##element
#define S_ELEMENT_MAPS(element)   S_MAP
#define S_ELEMENT_MAP(element)    S_MAP
#define S_SUB_U64(element)        NULL
#define S_SUB_I64(element)        NULL
#define S_SUB_BOOL(element)       NULL
#define S_SUB_STR(element)        NULL
#define S_SUB_BIN(element)        NULL
#define S_SUB_HASH(element)       NULL
#define S_SUB_HEADER(element)     NULL
#define S_SUB_LIST(element)       NULL
#define S_SUB_MAPS(element)       &cbus_##element##_def
#define S_SUB_MAP(element)        &cbus_##element##_def
//  Per presence: is the field written, and where its has_ flag is.
#define S_PRESENT_REQ(self, name) true
#define S_PRESENT_OPT(self, name) (self)->has_##name
#define S_PRESENT_NIL(self, name) true
#define S_WRITE_REQ(self, name)   true
#define S_WRITE_OPT(self, name)   (self)->has_##name
#define S_WRITE_NIL(self, name)   (self)->has_##name
#define S_HAS_REQ(self, name)     NULL
#define S_HAS_OPT(self, name)     &(self)->has_##name
#define S_HAS_NIL(self, name)     &(self)->has_##name

#define S_FIELD_INFO(name, kind, presence, element) \
    { #name, S_##kind, S_##presence, S_ELEMENT_##kind (element), S_SUB_##kind (element) },
#define S_FIELD_COUNT(name, kind, presence, element) \
    count += S_PRESENT_##presence (self, name) ? 1 : 0;
#define S_FIELD_PACK(name, kind, presence, element) \
    if (S_WRITE_##presence (self, name)) { \
        cbus_pack_str (pk, #name); \
        S_PACK_##kind (pk, self->name, element); \
    } \
    else \
    if (S_PRESENT_##presence (self, name)) { \
        cbus_pack_str (pk, #name); \
        msgpack_pack_nil (pk); \
    }
#define S_FIELD_DECODE(name, kind, presence, element) \
    if (s_decode_field (def, &def->fields [field++], map, &self->name, \
                        S_HAS_##presence (self, name), reason)) \
        return -1;

#define S_MSG_DEFINE(message, fields, kind, wire, service, when) \
    static const s_field_t s_##message##_fields [] = { fields (S_FIELD_INFO) { 0 } }; \
    static uint32_t \
    s_##message##_count (const void *self_) \
    { \
        const cbus_##message##_t *self = (const cbus_##message##_t *) self_; \
        uint32_t count = 0; \
        (void) self; \
        fields (S_FIELD_COUNT) \
        return count; \
    } \
    static void \
    s_##message##_pack (const void *self_, msgpack_packer *pk) \
    { \
        const cbus_##message##_t *self = (const cbus_##message##_t *) self_; \
        (void) self; \
        (void) pk; \
        fields (S_FIELD_PACK) \
    } \
    static int \
    s_##message##_decode (const msgpack_object *map, void *self_, char *reason) \
    { \
        cbus_##message##_t *self = (cbus_##message##_t *) self_; \
        const cbus_msgdef_t *def = &cbus_##message##_def; \
        size_t field = 0; \
        (void) field; \
        if (!map || map->type != MSGPACK_OBJECT_MAP) \
            return s_wrong (def, "body", "must be a map", reason); \
        memset (self, 0, sizeof (*self)); \
        fields (S_FIELD_DECODE) \
        return 0; \
    } \
    const cbus_msgdef_t cbus_##message##_def = { \
        #message, #kind, wire, service, when, s_##message##_fields, \
        sizeof (s_##message##_fields) / sizeof (s_field_t) - 1, sizeof (cbus_##message##_t), \
        s_##message##_count, s_##message##_pack, s_##message##_decode \
    }; \
    void \
    cbus_##message##_encode (const cbus_##message##_t *self, cbus_buf_t *buf) \
    { \
        cbus_msgdef_encode (&cbus_##message##_def, self, buf); \
    } \
    int \
    cbus_##message##_decode (const msgpack_object *map, cbus_##message##_t *self, char *reason) \
    { \
        return s_##message##_decode (map, self, reason); \
    }
CBUS_MSGS (S_MSG_DEFINE)

//  --------------------------------------------------------------------------
//  The generic codec

uint32_t
cbus_msgdef_count (const cbus_msgdef_t *def, const void *self)
{
    return def->count (self);
}

void
cbus_msgdef_pack (const cbus_msgdef_t *def, const void *self, msgpack_packer *pk)
{
    def->pack (self, pk);
}

void
cbus_msgdef_encode (const cbus_msgdef_t *def, const void *self, cbus_buf_t *buf)
{
    msgpack_packer pk = cbus_packer_begin (buf, def->count (self));
    def->pack (self, &pk);
}

int
cbus_msgdef_decode (const cbus_msgdef_t *def, const msgpack_object *map, void *self, char *reason)
{
    return def->decode (map, self, reason);
}

const char *
cbus_msgdef_wire (const cbus_msgdef_t *def)
{
    return def->wire;
}

const char *
cbus_msgdef_name (const cbus_msgdef_t *def)
{
    return def->name;
}

int
cbus_pub_send_msg (cbus_pub_t *pub, const cbus_msgdef_t *def, const void *self, cbus_buf_t *buf)
{
    msgpack_packer pk;
    cbus_pub_begin (pub, def->wire, &pk, buf, def->count (self));
    def->pack (self, &pk);
    return cbus_pub_send (pub, def->wire, buf);
}

int
cbus_reply_send_msg (zsock_t *router, cbus_request_t *request,
                     const cbus_msgdef_t *def, const void *self, cbus_buf_t *buf)
{
    cbus_msgdef_encode (def, self, buf);
    return cbus_reply_send (router, request, CBUS_STATUS_OK, buf->data, buf->size);
}

//  --------------------------------------------------------------------------
//  The list docs/bus.md is checked against

static void
s_print_fields (FILE *out, const cbus_msgdef_t *def, const char *prefix)
{
    for (size_t index = 0; index < def->field_count; index++) {
        const s_field_t *field = &def->fields [index];
        const char *type = field->kind == S_LIST ? s_kind_names [field->element]
                         : field->kind == S_MAPS ? "map" : s_kind_names [field->kind];
        fprintf (out, " %s%s:%s%s%s", prefix, field->name,
                 field->kind == S_LIST || field->kind == S_MAPS ? "[" : "", type,
                 field->kind == S_LIST || field->kind == S_MAPS ? "]" : "");
        if (field->presence != S_REQ)
            fprintf (out, "%s", field->presence == S_OPT ? "?" : "|nil");
        if (field->sub) {
            char nested [128];
            snprintf (nested, sizeof (nested), "%s%s.", prefix, field->name);
            s_print_fields (out, field->sub, nested);
        }
    }
}

#define S_MSG_LIST(message, fields, kind, wire, service, when) &cbus_##message##_def,
static const cbus_msgdef_t *s_all [] = { CBUS_MSGS (S_MSG_LIST) };

void
cbus_msgs_print (FILE *out)
{
    for (size_t index = 0; index < sizeof (s_all) / sizeof (s_all [0]); index++) {
        const cbus_msgdef_t *def = s_all [index];
        if (streq (def->kind, "SUB"))
            continue;               //  Printed inside the message that holds it
        fprintf (out, "%s %s %s %s", def->kind, def->wire, def->service, def->name);
        s_print_fields (out, def, "");
        fprintf (out, "\n");
    }
}

//  --------------------------------------------------------------------------
//  Self test

//  Item function for a list not held in a C array.
static const void *
s_test_item (const void *source, uint32_t index, size_t *size)
{
    const char *const *words = (const char *const *) source;
    *size = strlen (words [index]);
    return words [index];
}

static msgpack_unpacked
s_test_unpack (cbus_buf_t *buf)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    int rc = msgpack_unpack_next (&unpacked, buf->data, buf->size, &offset);
    assert (rc == MSGPACK_UNPACK_SUCCESS && offset == buf->size);
    return unpacked;
}

void
cbus_msgs_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_msgs: ");
    char reason [CBUS_REASON_MAX];
    cbus_buf_t buf = {0}, hand = {0};
    uint8_t hash [CBUS_HASH_BYTES], work [CBUS_HASH_BYTES], genesis [CBUS_HASH_BYTES];
    memset (hash, 1, sizeof (hash));
    memset (work, 2, sizeof (work));
    memset (genesis, 3, sizeof (genesis));

    //  The bytes are those the services wrote by hand.
    cbus_tip_reply_t tip = {
        .height = 7, .hash = hash, .work = work, .time_ms = 1700000000000ULL,
        .network = cbus_str ("dev"), .genesis = genesis, .bits = 0x2000ffff
    };
    cbus_tip_reply_encode (&tip, &buf);
    msgpack_packer pk = cbus_packer_begin (&hand, 7);
    cbus_pack_kv_u64 (&pk, "height", 7);
    cbus_pack_kv_bin (&pk, "hash", hash, CBUS_HASH_BYTES);
    cbus_pack_kv_bin (&pk, "work", work, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "time_ms", 1700000000000ULL);
    cbus_pack_kv_str (&pk, "network", "dev");
    cbus_pack_kv_bin (&pk, "genesis", genesis, CBUS_HASH_BYTES);
    cbus_pack_kv_u64 (&pk, "bits", 0x2000ffff);
    assert (buf.size == hand.size && memcmp (buf.data, hand.data, buf.size) == 0);

    //  And decode back, borrowing.
    msgpack_unpacked unpacked = s_test_unpack (&buf);
    cbus_tip_reply_t back;
    assert (cbus_tip_reply_decode (&unpacked.data, &back, reason) == 0);
    assert (back.height == 7 && back.bits == 0x2000ffff && cbus_str_eq (back.network, "dev"));
    assert (memcmp (back.genesis, genesis, CBUS_HASH_BYTES) == 0);
    //  A reply of another shape names the field.
    cbus_block_get_reply_t wrong;
    assert (cbus_block_get_reply_decode (&unpacked.data, &wrong, reason) == -1);
    assert (streq (reason, "BLOCK.GET reply: block is missing"));
    msgpack_unpacked_destroy (&unpacked);
    //  A bad map inside names the enclosing command and the path, not
    //  the sub-message's own command (block_summary's is BLOCK.LIST).
    cbus_buf_reset (&hand);
    pk = cbus_packer_begin (&hand, 3);
    cbus_pack_str (&pk, "block");
    msgpack_pack_map (&pk, 1);
    cbus_pack_kv_u64 (&pk, "height", 1);
    cbus_pack_kv_u64 (&pk, "start", 0);
    cbus_pack_str (&pk, "txs");
    msgpack_pack_array (&pk, 0);
    unpacked = s_test_unpack (&hand);
    cbus_block_txs_reply_t slice;
    assert (cbus_block_txs_reply_decode (&unpacked.data, &slice, reason) == -1);
    assert (streq (reason, "BLOCK.TXS reply: block hash is missing"));
    msgpack_unpacked_destroy (&unpacked);

    //  Optional fields are left out; a NIL one is written as nil.
    cbus_block_get_t get = { .height = 3, .has_height = true };
    cbus_block_get_encode (&get, &buf);
    assert (buf.size == 9 && (uint8_t) buf.data [0] == 0x81);
    unpacked = s_test_unpack (&buf);
    cbus_block_get_t get_back;
    assert (cbus_block_get_decode (&unpacked.data, &get_back, reason) == 0);
    assert (get_back.has_height && get_back.height == 3 && !get_back.has_hash);
    msgpack_unpacked_destroy (&unpacked);

    //  Lists from a C array, from an item function, and a nested list of
    //  maps with a nil cursor.
    uint8_t rows [2][CBUS_HASH_BYTES];
    memset (rows [0], 4, CBUS_HASH_BYTES);
    memset (rows [1], 5, CBUS_HASH_BYTES);
    cbus_block_connected_t event = {
        .hash = hash, .height = 1, .prev_hash = genesis, .merkle_root = work, .time_ms = 5,
        .work = work, .txids = { .count = 2, .items = rows }
    };
    cbus_block_connected_encode (&event, &buf);
    unpacked = s_test_unpack (&buf);
    cbus_block_connected_t event_back;
    assert (cbus_block_connected_decode (&unpacked.data, &event_back, reason) == 0);
    assert (event_back.txids.count == 2);
    assert (memcmp (cbus_list_hash (&event_back.txids, 1), rows [1], CBUS_HASH_BYTES) == 0);
    msgpack_unpacked_destroy (&unpacked);

    const char *words [] = { "alice", "bob" };
    cbus_peer_add_t add = { .addresses = { .count = 2, .item = s_test_item, .source = words } };
    cbus_peer_add_encode (&add, &buf);
    unpacked = s_test_unpack (&buf);
    cbus_peer_add_t add_back;
    assert (cbus_peer_add_decode (&unpacked.data, &add_back, reason) == 0);
    assert (cbus_str_eq (cbus_list_str (&add_back.addresses, 1), "bob"));
    msgpack_unpacked_destroy (&unpacked);

    cbus_history_item_t items [1] = {{
        .txid = hash, .height = 9, .index = 2, .block_hash = work, .confirmations = 1,
        .tx = { (const uint8_t *) "tx", 2 }
    }};
    cbus_history_reply_t history = { .items = { .count = 1, .items = items } };
    cbus_history_reply_encode (&history, &buf);
    unpacked = s_test_unpack (&buf);
    cbus_history_reply_t history_back;
    assert (cbus_history_reply_decode (&unpacked.data, &history_back, reason) == 0);
    assert (!history_back.has_next && history_back.items.count == 1);
    cbus_history_item_t item;
    assert (cbus_list_decode_map (&history_back.items, 0, &cbus_history_item_def, &item, reason) == 0);
    assert (item.height == 9 && item.tx.size == 2 && memcmp (item.tx.data, "tx", 2) == 0);
    msgpack_unpacked_destroy (&unpacked);
    history.has_next = true;
    history.next.before_height = 9;
    history.next.before_index = 2;
    cbus_history_reply_encode (&history, &buf);
    unpacked = s_test_unpack (&buf);
    assert (cbus_history_reply_decode (&unpacked.data, &history_back, reason) == 0);
    assert (history_back.has_next && history_back.next.before_index == 2);
    msgpack_unpacked_destroy (&unpacked);

    //  A list of integers (TXS.GET's received_ms, one per transaction),
    //  and an item that is not one is refused.
    cbus_bytes_t pair [2] = { { (const uint8_t *) "a", 1 }, { (const uint8_t *) "b", 1 } };
    uint64_t times [2] = { 1700000000123ULL, 7 };
    cbus_txs_get_reply_t got = {
        .txs = { .count = 2, .items = pair },
        .received_ms = { .count = 2, .items = times }, .has_received_ms = true
    };
    cbus_txs_get_reply_encode (&got, &buf);
    unpacked = s_test_unpack (&buf);
    cbus_txs_get_reply_t got_back;
    assert (cbus_txs_get_reply_decode (&unpacked.data, &got_back, reason) == 0);
    assert (got_back.has_received_ms && got_back.received_ms.count == 2);
    assert (cbus_list_u64 (&got_back.received_ms, 0) == 1700000000123ULL);
    assert (cbus_list_u64 (&got_back.received_ms, 1) == 7);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_packer ints = cbus_packer_begin (&buf, 2);
    cbus_pack_str (&ints, "txs");
    msgpack_pack_array (&ints, 0);
    cbus_pack_str (&ints, "received_ms");
    msgpack_pack_array (&ints, 1);
    msgpack_pack_int64 (&ints, -1);
    unpacked = s_test_unpack (&buf);
    assert (cbus_txs_get_reply_decode (&unpacked.data, &got_back, reason) == -1);
    assert (streq (reason, "TXS.GET reply: received_ms item 0 must be of type int"));
    msgpack_unpacked_destroy (&unpacked);

    //  Element types are checked when decoded: a short hash is refused.
    msgpack_packer bad = cbus_packer_begin (&buf, 1);
    cbus_pack_str (&bad, "txids");
    msgpack_pack_array (&bad, 1);
    msgpack_pack_bin (&bad, 3);
    msgpack_pack_bin_body (&bad, "abc", 3);
    unpacked = s_test_unpack (&buf);
    cbus_tx_known_t known;
    assert (cbus_tx_known_decode (&unpacked.data, &known, reason) == -1);
    assert (streq (reason, "TX.KNOWN request: txids item 0 must be of type bin32"));
    msgpack_unpacked_destroy (&unpacked);

    //  Every message prints, and the printout names nested fields.
    char *text = NULL;
    size_t text_size = 0;
    FILE *out = open_memstream (&text, &text_size);
    assert (out);
    cbus_msgs_print (out);
    fclose (out);
    assert (strstr (text, "REPLY PEER.LIST peersync peer_list_reply peers:[map] peers.address:str"));
    assert (strstr (text, "EVENT chain.block.connected chainstore block_connected hash:bin32"));
    free (text);

    cbus_buf_free (&buf);
    cbus_buf_free (&hand);
    if (verbose)
        printf ("OK\n");
}
