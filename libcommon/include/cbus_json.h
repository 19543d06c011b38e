/*  =========================================================================
    cbus_json - the edge codec: JSON values to canonical msgpack and back

    JSON comes in through jansson (which keeps object keys in the order
    given) and is packed canonically: integers in msgpack's smallest form,
    other numbers as float64, strings as str, objects in the given key
    order. The way back writes JSON text straight from a msgpack object
    into a buffer, without building a jansson tree, so that long responses
    (GET /chain) cost one pass. Doubles print in their shortest form that
    reads back to the same value, so 0.1 comes back as 0.1.
    =========================================================================
*/
#ifndef CBUS_JSON_H_INCLUDED
#define CBUS_JSON_H_INCLUDED

//  Deepest nesting accepted in a JSON value or a msgpack object.
#define CBUS_JSON_MAX_DEPTH 32

//  Parse a request body. Returns a new reference, or NULL with a reason
//  ("Malformed JSON: ...") for empty, malformed or duplicate-key input.
json_t *
    cbus_json_parse (const char *text, size_t size, char *reason);

//  Pack a JSON value canonically. Returns 0, or -1 if too deep.
int
    cbus_json_pack (const json_t *value, msgpack_packer *pk)
    __attribute__ ((warn_unused_result));

//  Write a msgpack object as JSON text. bin objects are written as hex
//  strings. Returns 0, or -1 (buffer undefined) for ext objects, non-str
//  map keys, invalid UTF-8 or nesting deeper than CBUS_JSON_MAX_DEPTH.
int
    cbus_json_write (cbus_buf_t *out, const msgpack_object *object)
    __attribute__ ((warn_unused_result));

//  Write a string as a quoted, escaped JSON string (bytes must be UTF-8).
void
    cbus_json_write_string (cbus_buf_t *out, const char *text, size_t size);
//  Write a double in its shortest round-trip form (finite values only).
void
    cbus_json_write_double (cbus_buf_t *out, double value);
//  Write {"message": text} followed by extra already-formatted members.
void
    cbus_json_write_message (cbus_buf_t *out, const char *message);

//  True if the bytes are valid UTF-8 with no NUL.
bool
    cbus_utf8_valid (const char *text, size_t size);

void
    cbus_json_test (bool verbose);

#endif
