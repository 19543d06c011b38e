/*  =========================================================================
    fuzz_bus_msg - every bus request, reply and event body: the first
    input byte picks a message of cbus_msgs.h's table, the rest is its
    msgpack body, decoded with that message's cbus_<name>_decode as the
    service that receives it does. Every field is then read (lists item
    by item, MAPS items decoded with cbus_list_decode_map), and the
    decoded message encodes to a body that decodes and encodes to the
    same bytes again. The per-message code is expanded from the table, so
    a message added there is fuzzed too.
    =========================================================================
*/
#include "fuzz.h"

//  --------------------------------------------------------------------------
//  Reading each field, as a receiver does

#define W_U64(member, element)
#define W_I64(member, element)
#define W_BOOL(member, element)
#define W_STR(member, element)    fuzz_touch ((member).data, (member).size);
#define W_BIN(member, element)    fuzz_touch ((member).data, (member).size);
#define W_HASH(member, element)   if (member) fuzz_touch (member, CBUS_HASH_BYTES);
#define W_HEADER(member, element) if (member) fuzz_touch (member, CBUS_HEADER_BYTES);
#define W_LIST(member, element)   s_walk_list (&(member), S_ELEMENT_##element);
#define W_MAPS(member, element) \
    for (uint32_t index = 0; index < (member).count; index++) { \
        cbus_##element##_t item; \
        char reason [CBUS_REASON_MAX]; \
        if (cbus_list_decode_map (&(member), index, &cbus_##element##_def, &item, reason) == 0) \
            s_walk_##element (&item); \
        else \
            FUZZ_CHECK (memchr (reason, 0, sizeof (reason))); \
    }
#define W_MAP(member, element)    s_walk_##element (&(member));
#define W_FIELD(name, kind, presence, element) W_##kind (self->name, element)

//  Preparing a decoded message to be encoded again: a decoded list has
//  its msgpack items, an encoded one an item function or a C array.
#define P_U64(member, element)
#define P_I64(member, element)
#define P_BOOL(member, element)
#define P_STR(member, element)
#define P_BIN(member, element)
#define P_HASH(member, element)
#define P_HEADER(member, element)
#define P_LIST(member, element)   s_prepare_list (&(member));
#define P_MAPS(member, element) \
    if (s_prepare_maps (&(member), &cbus_##element##_def, sizeof (cbus_##element##_t), \
                        s_prepare_##element, owned)) \
        return -1;
#define P_MAP(member, element) \
    if (s_prepare_##element (&(member), owned)) \
        return -1;
#define P_FIELD(name, kind, presence, element) P_##kind (self->name, element)

typedef enum { S_ELEMENT_HASH, S_ELEMENT_BIN, S_ELEMENT_BOOL, S_ELEMENT_STR,
               S_ELEMENT_HEADER, S_ELEMENT_U64 } s_element_t;

static void
s_walk_list (const cbus_list_t *list, s_element_t element)
{
    for (uint32_t index = 0; index < list->count; index++)
        if (element == S_ELEMENT_HASH)
            fuzz_touch (cbus_list_hash (list, index), CBUS_HASH_BYTES);
        else
        if (element == S_ELEMENT_BOOL)
            (void) cbus_list_bool (list, index);
        else
        if (element == S_ELEMENT_U64)
            (void) cbus_list_u64 (list, index);
        else
        if (element == S_ELEMENT_STR) {
            cbus_str_t item = cbus_list_str (list, index);
            fuzz_touch (item.data, item.size);
        }
        else {
            cbus_bytes_t item = cbus_list_bytes (list, index);
            FUZZ_CHECK (element != S_ELEMENT_HEADER || item.size == CBUS_HEADER_BYTES);
            fuzz_touch (item.data, item.size);
        }
}

//  A decoded list's item as the encoder asks for it.
static const void *
s_decoded_item (const void *source, uint32_t index, size_t *size)
{
    const msgpack_object *item = &((const cbus_list_t *) source)->decoded [index];
    if (item->type == MSGPACK_OBJECT_BOOLEAN) {
        *size = sizeof (bool);
        return &item->via.boolean;
    }
    if (item->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *size = sizeof (uint64_t);
        return &item->via.u64;
    }
    *size = item->type == MSGPACK_OBJECT_STR ? item->via.str.size : item->via.bin.size;
    return item->type == MSGPACK_OBJECT_STR ? (const void *) item->via.str.ptr
                                            : (const void *) item->via.bin.ptr;
}

static void
s_prepare_list (cbus_list_t *list)
{
    list->item = s_decoded_item;
    list->source = list;
}

typedef int (s_prepare_fn) (void *self, zlist_t *owned);

//  Decode every item of a MAPS list into a C array (owned) to encode
//  from; -1 if one does not decode (then the message is not encoded).
static int
s_prepare_maps (cbus_list_t *list, const cbus_msgdef_t *element, size_t size,
                s_prepare_fn *prepare, zlist_t *owned)
{
    uint8_t *items = (uint8_t *) calloc (list->count + 1, size);
    FUZZ_CHECK (items);
    zlist_append (owned, items);
    char reason [CBUS_REASON_MAX];
    for (uint32_t index = 0; index < list->count; index++)
        if (cbus_list_decode_map (list, index, element, items + index * size, reason)
        ||  prepare (items + index * size, owned))
            return -1;
    list->items = items;
    list->item = NULL;
    return 0;
}

//  --------------------------------------------------------------------------
//  The table, expanded: a walker and a preparer per message, then one
//  entry per message with its decoder and encoder.

#define S_MSG_HELPERS(name, fields, kind, wire, service, when) \
    static void \
    s_walk_##name (const cbus_##name##_t *self) \
    { \
        (void) self; \
        fields (W_FIELD) \
    } \
    static int \
    s_prepare_##name (void *self_, zlist_t *owned) \
    { \
        cbus_##name##_t *self = (cbus_##name##_t *) self_; \
        (void) self; (void) owned; \
        fields (P_FIELD) \
        return 0; \
    } \
    static int \
    s_decode_##name (const msgpack_object *map, void *self, char *reason) \
    { \
        return cbus_##name##_decode (map, (cbus_##name##_t *) self, reason); \
    } \
    static void \
    s_encode_##name (const void *self, cbus_buf_t *buf) \
    { \
        cbus_##name##_encode ((const cbus_##name##_t *) self, buf); \
    } \
    static void \
    s_walk_any_##name (const void *self) \
    { \
        s_walk_##name ((const cbus_##name##_t *) self); \
    }
CBUS_MSGS (S_MSG_HELPERS)

typedef struct {
    const cbus_msgdef_t *def;       //  The message
    size_t size;                    //  Its struct
    int (*decode) (const msgpack_object *map, void *self, char *reason);
    void (*encode) (const void *self, cbus_buf_t *buf);
    void (*walk) (const void *self);
    s_prepare_fn *prepare;
} s_message_t;

#define S_MSG_ENTRY(name, fields, kind, wire, service, when) \
    { &cbus_##name##_def, sizeof (cbus_##name##_t), s_decode_##name, s_encode_##name, \
      s_walk_any_##name, s_prepare_##name },
static const s_message_t s_messages [] = { CBUS_MSGS (S_MSG_ENTRY) };
#define S_MESSAGES (sizeof (s_messages) / sizeof (s_messages [0]))

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc; (void) argv;
    fuzz_init ();
    return 0;
}

//  Encode self (decoded, then prepared) into buf; -1 if a MAPS item did
//  not decode.
static int
s_encode (const s_message_t *message, void *self, cbus_buf_t *buf)
{
    zlist_t *owned = zlist_new ();
    FUZZ_CHECK (owned);
    int rc = message->prepare (self, owned);
    if (rc == 0)
        message->encode (self, buf);
    for (void *items = zlist_first (owned); items; items = zlist_next (owned))
        free (items);
    zlist_destroy (&owned);
    return rc;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const s_message_t *message = &s_messages [data [0] % S_MESSAGES];
    char reason [CBUS_REASON_MAX];
    msgpack_unpacked unpacked, again_unpacked;
    msgpack_unpacked_init (&unpacked);
    msgpack_unpacked_init (&again_unpacked);
    cbus_buf_t body = {0}, again_body = {0};
    void *self = calloc (1, message->size);
    void *again = calloc (1, message->size);
    FUZZ_CHECK (self && again);

    const msgpack_object *map = fuzz_unpack_map (&unpacked, data + 1, size - 1);
    if (!map || message->decode (map, self, reason)) {
        FUZZ_CHECK (!map || strstr (reason, cbus_msgdef_wire (message->def)));
        goto cleanup;
    }
    message->walk (self);
    if (s_encode (message, self, &body))
        goto cleanup;
    map = fuzz_unpack_map (&again_unpacked, body.data, body.size);
    FUZZ_CHECK (map);
    if (message->decode (map, again, reason))
        fprintf (stderr, "%s: its own encoding refused: %s\n",
                 cbus_msgdef_name (message->def), reason);
    FUZZ_CHECK (message->decode (map, again, reason) == 0);
    message->walk (again);
    FUZZ_CHECK (s_encode (message, again, &again_body) == 0);
    FUZZ_CHECK (again_body.size == body.size
             && memcmp (again_body.data, body.data, body.size) == 0);
cleanup:
    free (self);
    free (again);
    cbus_buf_free (&body);
    cbus_buf_free (&again_body);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_unpacked_destroy (&again_unpacked);
    return 0;
}
