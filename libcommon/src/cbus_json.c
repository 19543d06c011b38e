/*  =========================================================================
    cbus_json - the edge codec: JSON values to canonical msgpack and back
    =========================================================================
*/
#include "cbus.h"
#include <ctype.h>
#include <math.h>

//  The shortest %g text that reads back to the same double.
static void
s_shortest (double value, char text [32])
{
    for (int precision = 1; precision <= 17; precision++) {
        snprintf (text, 32, "%.*g", precision, value);
        if (strtod (text, NULL) == value)
            break;
    }
}

//  A JSON number's text as sign, significant digits and exponent:
//  value = 0.DIGITS x 10^exponent, DIGITS without leading or trailing
//  zeros (none for zero). Returns false when it has more than 17
//  significant digits: a double's shortest text never has more.
typedef struct {
    bool negative;
    char digits [17];
    size_t count;
    long exponent;
} s_decimal_t;

static bool
s_decimal (const char *text, size_t size, s_decimal_t *decimal)
{
    memset (decimal, 0, sizeof (*decimal));
    size_t at = 0;
    if (at < size && (text [at] == '-' || text [at] == '+'))
        decimal->negative = text [at++] == '-';
    long point = 0;                     //  Digits before the point
    bool leading = true, seen_point = false;
    size_t zeros = 0;                   //  Zeros held back (trailing so far)
    for (; at < size && (isdigit ((unsigned char) text [at]) || text [at] == '.'); at++) {
        if (text [at] == '.') {
            seen_point = true;
            continue;
        }
        if (leading && text [at] == '0') {
            if (seen_point)
                point--;
            continue;
        }
        leading = false;
        if (!seen_point)
            point++;
        if (text [at] == '0') {
            zeros++;
            continue;
        }
        if (decimal->count + zeros + 1 > sizeof (decimal->digits))
            return false;
        memset (decimal->digits + decimal->count, '0', zeros);
        decimal->count += zeros;
        zeros = 0;
        decimal->digits [decimal->count++] = text [at];
    }
    long exponent = 0;
    if (at < size && (text [at] == 'e' || text [at] == 'E')) {
        at++;
        bool minus = at < size && text [at] == '-';
        if (at < size && (text [at] == '-' || text [at] == '+'))
            at++;
        //  Capped: far beyond any double either way, and no overflow.
        for (; at < size && isdigit ((unsigned char) text [at]); at++)
            if (exponent < 100000)
                exponent = exponent * 10 + (text [at] - '0');
        if (minus)
            exponent = -exponent;
    }
    decimal->exponent = decimal->count ? point + exponent : 0;
    if (!decimal->count)
        decimal->negative = false;
    return true;
}

//  Whether a JSON number with a fraction or an exponent (stored as a
//  double) comes back as the same number, i.e. is the double's shortest
//  text (what cbus_json_write_double writes): 1e-400 becomes 0, and
//  0.10000000000000000001 becomes 0.1; both are refused. With N the
//  given significant digits (at most 17, else refused unread): the
//  double rounded to N digits must be the given digits, and rounded to
//  N-1 digits must not read back as the double (or that shorter text is
//  what comes back). Two formatted numbers and a strtod or two: the
//  check must not cost much more than parsing (a body is up to
//  gateway/max_body of numbers, on the gateway's loop).
static bool
s_real_exact (const char *text, size_t size)
{
    s_decimal_t given, kept;
    char copy [1024];
    if (size >= sizeof (copy) || !s_decimal (text, size, &given))
        return false;
    memcpy (copy, text, size);
    copy [size] = 0;
    double value = strtod (copy, NULL);
    if (!isfinite (value))
        return false;
    if (given.count == 0)
        return value == 0.0;
    char back [40];
    snprintf (back, sizeof (back), "%.*e", (int) given.count - 1, value);
    if (!s_decimal (back, strlen (back), &kept)
    ||  given.negative != kept.negative || given.count != kept.count
    ||  given.exponent != kept.exponent
    ||  memcmp (given.digits, kept.digits, given.count) != 0)
        return false;
    if (given.count > 1) {
        snprintf (back, sizeof (back), "%.*e", (int) given.count - 2, value);
        if (strtod (back, NULL) == value)
            return false;
    }
    return true;
}

//  Every number of a JSON text that jansson accepted: integers it keeps
//  exactly (it refuses those beyond 64 bits); reals must read back the
//  same. O(size), one pass; strings are skipped.
static int
s_numbers_exact (const char *text, size_t size, char *reason)
{
    for (size_t at = 0; at < size; at++) {
        char c = text [at];
        if (c == '"') {
            for (at++; at < size && text [at] != '"'; at++)
                if (text [at] == '\\')
                    at++;
            continue;
        }
        if (c != '-' && !isdigit ((unsigned char) c))
            continue;
        size_t start = at;
        bool real = false;
        while (at < size && text [at] && strchr ("0123456789+-.eE", text [at])) {
            real |= text [at] == '.' || text [at] == 'e' || text [at] == 'E';
            at++;
        }
        if (real && !s_real_exact (text + start, at - start)) {
            size_t shown = at - start > 40 ? 40 : at - start;
            snprintf (reason, CBUS_REASON_MAX,
                      "The number %.*s%s cannot be kept exactly: a number with a fraction or "
                      "an exponent is kept as a double (at most 17 significant digits, "
                      "magnitude up to 1.8e308); send it as a string", (int) shown,
                      text + start, shown < at - start ? "..." : "");
            return -1;
        }
        at--;
    }
    return 0;
}

//  What a parse error means, in words a user reads: jansson's own text
//  ("'[' or '{' expected near 'hello'", "\\u0000 is not allowed without
//  JSON_ALLOW_NUL") names its internals, so its error code picks a
//  sentence instead.
static const char *
s_error_words (const json_error_t *error)
{
    switch (json_error_code (error)) {
        case json_error_invalid_utf8:
            return "the body is not valid UTF-8 text";
        case json_error_premature_end_of_input:
            return "the text ends before the JSON value does (a closing quote, bracket or "
                   "brace is missing)";
        case json_error_end_of_input_expected:
            return "there is more text after the end of the JSON value";
        case json_error_null_character:
            return "a string holds a NUL character (\\u0000), which is not allowed";
        case json_error_duplicate_key:
            return "a key is given twice in one object";
        case json_error_numeric_overflow:
            return "a number is too large: an integer must be from -2^63 to 2^63-1, another "
                   "number at most about 1.8e308 (send a larger one as a string)";
        case json_error_stack_overflow:
            return "the JSON is nested too deeply";
        case json_error_out_of_memory:
            return "the node ran out of memory reading it";
        default:
            return "this is not JSON (text must be in double quotes; check the quotes, "
                   "commas and brackets)";
    }
}

json_t *
cbus_json_parse (const char *text, size_t size, char *reason)
{
    if (size == 0) {
        snprintf (reason, CBUS_REASON_MAX, "Empty body: a JSON object is required");
        return NULL;
    }
    json_error_t error;
    json_t *value = json_loadb (text, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
    if (!value)
        snprintf (reason, CBUS_REASON_MAX, "Malformed JSON: %s (line %d, column %d)",
                  s_error_words (&error), error.line, error.column);
    else
    if (s_numbers_exact (text, size, reason)) {
        json_decref (value);
        value = NULL;
    }
    return value;
}

static int
s_pack (const json_t *value, msgpack_packer *pk, int depth)
{
    if (depth > CBUS_JSON_MAX_DEPTH)
        return -1;
    switch (json_typeof (value)) {
        case JSON_OBJECT: {
            msgpack_pack_map (pk, (uint32_t) json_object_size (value));
            const char *key;
            json_t *member;
            //  jansson keeps insertion order: the order the client sent.
            json_object_foreach ((json_t *) value, key, member) {
                cbus_pack_str (pk, key);
                if (s_pack (member, pk, depth + 1))
                    return -1;
            }
            return 0;
        }
        case JSON_ARRAY: {
            size_t count = json_array_size (value);
            msgpack_pack_array (pk, (uint32_t) count);
            for (size_t index = 0; index < count; index++)
                if (s_pack (json_array_get (value, index), pk, depth + 1))
                    return -1;
            return 0;
        }
        case JSON_STRING: {
            size_t size = json_string_length (value);
            msgpack_pack_str (pk, size);
            msgpack_pack_str_body (pk, json_string_value (value), size);
            return 0;
        }
        case JSON_INTEGER:
            msgpack_pack_int64 (pk, json_integer_value (value));
            return 0;
        case JSON_REAL:
            msgpack_pack_double (pk, json_real_value (value));
            return 0;
        case JSON_TRUE:
            msgpack_pack_true (pk);
            return 0;
        case JSON_FALSE:
            msgpack_pack_false (pk);
            return 0;
        case JSON_NULL:
            msgpack_pack_nil (pk);
            return 0;
    }
    return -1;
}

int
cbus_json_pack (const json_t *value, msgpack_packer *pk)
{
    return s_pack (value, pk, 0);
}

void
cbus_json_write_string (cbus_buf_t *out, const char *text, size_t size)
{
    static const char digits [] = "0123456789abcdef";
    if (size == 0) {
        //  msgpack-c gives an empty string a NULL pointer, and NULL + 0 is
        //  undefined (found by fuzz/).
        cbus_buf_append (out, "\"\"", 2);
        return;
    }
    cbus_buf_append (out, "\"", 1);
    size_t start = 0;
    for (size_t index = 0; index < size; index++) {
        unsigned char c = (unsigned char) text [index];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        cbus_buf_append (out, text + start, index - start);
        start = index + 1;
        char escape [7] = { '\\', 0 };
        switch (c) {
            case '"':  escape [1] = '"'; break;
            case '\\': escape [1] = '\\'; break;
            case '\n': escape [1] = 'n'; break;
            case '\r': escape [1] = 'r'; break;
            case '\t': escape [1] = 't'; break;
            case '\b': escape [1] = 'b'; break;
            case '\f': escape [1] = 'f'; break;
            default:
                memcpy (escape + 1, "u00", 3);
                escape [4] = digits [c >> 4];
                escape [5] = digits [c & 15];
        }
        cbus_buf_puts (out, escape);
    }
    cbus_buf_append (out, text + start, size - start);
    cbus_buf_append (out, "\"", 1);
}

void
cbus_json_write_double (cbus_buf_t *out, double value)
{
    char text [32];
    s_shortest (value, text);
    cbus_buf_puts (out, text);
    //  Keep it a real number for the reader: 1.0 stays 1.0, not 1.
    if (!strpbrk (text, ".eE"))
        cbus_buf_puts (out, ".0");
}

void
cbus_json_write_message (cbus_buf_t *out, const char *message)
{
    cbus_buf_puts (out, "{\"message\": ");
    cbus_json_write_string (out, message, strlen (message));
}

bool
cbus_utf8_valid (const char *text, size_t size)
{
    const unsigned char *bytes = (const unsigned char *) text;
    size_t index = 0;
    while (index < size) {
        unsigned char c = bytes [index];
        if (c == 0)
            return false;
        if (c < 0x80) {
            index++;
            continue;
        }
        size_t extra;
        uint32_t point;
        if (c >= 0xc2 && c <= 0xdf) {
            extra = 1; point = c & 0x1f;
        }
        else
        if (c >= 0xe0 && c <= 0xef) {
            extra = 2; point = c & 0x0f;
        }
        else
        if (c >= 0xf0 && c <= 0xf4) {
            extra = 3; point = c & 0x07;
        }
        else
            return false;
        if (index + extra >= size)
            return false;
        for (size_t next = 1; next <= extra; next++) {
            if ((bytes [index + next] & 0xc0) != 0x80)
                return false;
            point = (point << 6) | (bytes [index + next] & 0x3f);
        }
        //  Overlong forms, surrogates and beyond U+10FFFF are refused.
        if ((extra == 2 && point < 0x800) || (extra == 3 && point < 0x10000)
        ||  (point >= 0xd800 && point <= 0xdfff) || point > 0x10ffff)
            return false;
        index += extra + 1;
    }
    return true;
}

static int
s_write (cbus_buf_t *out, const msgpack_object *object, int depth)
{
    if (depth > CBUS_JSON_MAX_DEPTH)
        return -1;
    switch (object->type) {
        case MSGPACK_OBJECT_NIL:
            cbus_buf_puts (out, "null");
            return 0;
        case MSGPACK_OBJECT_BOOLEAN:
            cbus_buf_puts (out, object->via.boolean ? "true" : "false");
            return 0;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            cbus_buf_printf (out, "%" PRIu64, object->via.u64);
            return 0;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            cbus_buf_printf (out, "%" PRId64, object->via.i64);
            return 0;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            if (!isfinite (object->via.f64))
                return -1;
            cbus_json_write_double (out, object->via.f64);
            return 0;
        case MSGPACK_OBJECT_STR:
            if (!cbus_utf8_valid (object->via.str.ptr, object->via.str.size))
                return -1;
            cbus_json_write_string (out, object->via.str.ptr, object->via.str.size);
            return 0;
        case MSGPACK_OBJECT_BIN: {
            //  Hex in slices through a buffer on the stack: no allocation
            //  whatever the size.
            const uint8_t *bytes = (const uint8_t *) object->via.bin.ptr;
            size_t left = object->via.bin.size;
            char hex [2 * 64 + 1];
            cbus_buf_append (out, "\"", 1);
            while (left) {
                size_t slice = left < 64 ? left : 64;
                cbus_hex_encode (bytes, slice, hex);
                cbus_buf_append (out, hex, 2 * slice);
                bytes += slice;
                left -= slice;
            }
            cbus_buf_append (out, "\"", 1);
            return 0;
        }
        case MSGPACK_OBJECT_ARRAY:
            cbus_buf_append (out, "[", 1);
            for (uint32_t index = 0; index < object->via.array.size; index++) {
                if (index)
                    cbus_buf_append (out, ", ", 2);
                if (s_write (out, &object->via.array.ptr [index], depth + 1))
                    return -1;
            }
            cbus_buf_append (out, "]", 1);
            return 0;
        case MSGPACK_OBJECT_MAP:
            cbus_buf_append (out, "{", 1);
            for (uint32_t index = 0; index < object->via.map.size; index++) {
                const msgpack_object_kv *pair = &object->via.map.ptr [index];
                if (pair->key.type != MSGPACK_OBJECT_STR)
                    return -1;
                if (index)
                    cbus_buf_append (out, ", ", 2);
                if (s_write (out, &pair->key, depth + 1))
                    return -1;
                cbus_buf_append (out, ": ", 2);
                if (s_write (out, &pair->val, depth + 1))
                    return -1;
            }
            cbus_buf_append (out, "}", 1);
            return 0;
        default:
            return -1;
    }
}

int
cbus_json_write (cbus_buf_t *out, const msgpack_object *object)
{
    return s_write (out, object, 0);
}

//  Pack JSON text and write it back; for the self-test.
static char *
s_round_trip (const char *text)
{
    char reason [CBUS_REASON_MAX];
    json_t *value = cbus_json_parse (text, strlen (text), reason);
    assert (value);
    cbus_buf_t packed = {0}, written = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &packed);
    int rc = cbus_json_pack (value, &pk);
    assert (rc == 0);
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t offset = 0;
    rc = msgpack_unpack_next (&result, packed.data, packed.size, &offset);
    assert (rc == MSGPACK_UNPACK_SUCCESS && offset == packed.size);
    rc = cbus_json_write (&written, &result.data);
    assert (rc == 0);
    msgpack_unpacked_destroy (&result);
    json_decref (value);
    cbus_buf_free (&packed);
    return cbus_buf_detach (&written, NULL);
}

void
cbus_json_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_json: ");
    const char *cases [][2] = {
        { "[]", "[]" },
        { "{\"b\":1,\"a\":[true,false,null]}", "{\"b\": 1, \"a\": [true, false, null]}" },
        { "[0.1, 1.0, -2, 1e300, 18446744]", "[0.1, 1.0, -2, 1e+300, 18446744]" },
        { "\"tab\\tquote\\\"nl\\n\\u0001\\u00e9\"", "\"tab\\tquote\\\"nl\\n\\u0001\xc3\xa9\"" },
        { "{\"nested\": {\"x\": [1, {\"y\": \"z\"}]}}", "{\"nested\": {\"x\": [1, {\"y\": \"z\"}]}}" },
    };
    for (size_t index = 0; index < sizeof (cases) / sizeof (cases [0]); index++) {
        char *back = s_round_trip (cases [index][0]);
        if (!streq (back, cases [index][1]))
            printf ("\nround trip of %s gave %s\n", cases [index][0], back);
        assert (streq (back, cases [index][1]));
        free (back);
    }
    char reason [CBUS_REASON_MAX];
    assert (cbus_json_parse ("", 0, reason) == NULL);
    assert (strstr (reason, "Empty"));
    assert (cbus_json_parse ("{\"a\":1,\"a\":2}", 13, reason) == NULL);
    assert (strstr (reason, "Malformed JSON"));
    assert (cbus_json_parse ("{\"a\":", 5, reason) == NULL);

    //  Reals are taken only when they read back as given.
    const char *exact [] = {
        "[0.1, 1.50, 1.5e3, -0.0, 5e-324, 1e300, 0.00001, 1E+2, 12345678901234567]",
        "{\"x\": \"1e-400 in a string\", \"y\\\"1e-400\": 2.5}",
        "0.000000000000000000000000000000000000000000000000000000000000000000000001"
    };
    for (size_t index = 0; index < sizeof (exact) / sizeof (exact [0]); index++) {
        json_t *taken = cbus_json_parse (exact [index], strlen (exact [index]), reason);
        if (!taken)
            printf ("\n%s refused: %s\n", exact [index], reason);
        assert (taken);
        json_decref (taken);
    }
    const char *inexact [] = {
        "1e-400", "{\"amount\": 1e-400}", "[1, 0.10000000000000000001]",
        "0.10000000000000001", "9007199254740993.0",
        "123456789012345678.5", "-2.4703282292062327e-324"
    };
    for (size_t index = 0; index < sizeof (inexact) / sizeof (inexact [0]); index++) {
        assert (cbus_json_parse (inexact [index], strlen (inexact [index]), reason) == NULL);
        assert (strstr (reason, "cannot be kept exactly"));
    }
    assert (cbus_json_parse ("1e400", 5, reason) == NULL);

    //  Too deep is refused on the way in.
    char deep [200] = "";
    for (int index = 0; index < 40; index++)
        strcat (deep, "[");
    for (int index = 0; index < 40; index++)
        strcat (deep, "]");
    json_t *value = cbus_json_parse (deep, strlen (deep), reason);
    assert (value);
    cbus_buf_t packed = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &packed);
    assert (cbus_json_pack (value, &pk) == -1);
    json_decref (value);
    cbus_buf_free (&packed);

    assert (cbus_utf8_valid ("plain", 5));
    assert (cbus_utf8_valid ("\xc3\xa9", 2));
    assert (!cbus_utf8_valid ("\xc3", 1));
    assert (!cbus_utf8_valid ("\xc0\x80", 2));          //  Overlong NUL
    assert (!cbus_utf8_valid ("\xed\xa0\x80", 3));      //  Surrogate
    assert (!cbus_utf8_valid ("a\0b", 3));
    if (verbose)
        printf ("OK\n");
}
