/*  =========================================================================
    fuzz_block - a block's msgpack bytes (BLOCK.SUBMIT, a peer's BLOCK or
    BLOCKS, the chain store): cbus_block_new_from_bytes and the checks
    that need no chain, cbus_block_header_from_bytes (bytes only looked
    at), cbus_block_bytes_to_json (stored bytes). A decoded block encodes
    to bytes that decode to the same block, and its JSON (GET /chain, an
    export file) builds it back (cbus_block_new_from_json).
    =========================================================================
*/
#include "fuzz.h"

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc; (void) argv;
    fuzz_init ();
    return 0;
}

//  The decoded block's promises.
static void
s_check_block (cbus_block_t *block, const uint8_t *data, size_t size)
{
    char reason [CBUS_REASON_MAX];
    cbus_header_t header;
    FUZZ_CHECK (cbus_block_header_from_bytes (data, size, &header) == 0);
    uint8_t given [CBUS_HEADER_BYTES], decoded [CBUS_HEADER_BYTES];
    cbus_header_encode (&header, given);
    cbus_header_encode (cbus_block_header (block), decoded);
    FUZZ_CHECK (memcmp (given, decoded, CBUS_HEADER_BYTES) == 0);
    cbus_code_t code;
    if (cbus_block_check (block, &code, reason))
        FUZZ_CHECK (cbus_code_name (code) && memchr (reason, 0, sizeof (reason)));

    cbus_buf_t bytes = {0};
    cbus_block_encode (block, &bytes);
    //  cbus_block_size is an upper bound: it counts the widest bin and
    //  array headers, which the encoder writes only when needed.
    FUZZ_CHECK (bytes.size <= cbus_block_size (block));
    cbus_block_t *again = cbus_block_new_from_bytes (bytes.data, bytes.size, reason);
    FUZZ_CHECK (again);
    cbus_buf_t again_bytes = {0};
    cbus_block_encode (again, &again_bytes);
    FUZZ_CHECK (again_bytes.size == bytes.size
             && memcmp (again_bytes.data, bytes.data, bytes.size) == 0);
    cbus_block_destroy (&again);
    for (size_t index = 0; index < cbus_block_tx_count (block); index++)
        fuzz_check_tx (cbus_block_tx (block, index));

    //  Its JSON, written both ways, and back. JSON is read back only for
    //  what a chain can hold: times up to 10^15 ms (the year 33,700,
    //  S_JSON_MAX_TIME_MS in cbus_block.c; max_future_ms is at most a
    //  day), heights and nonces up to INT64_MAX (jansson reads no larger
    //  integer; our miners count nonces up from 0).
    cbus_buf_t json = {0}, stored = {0};
    cbus_block_write_json (block, &json);
    FUZZ_CHECK (cbus_block_bytes_to_json (bytes.data, bytes.size, &stored) == 0);
    FUZZ_CHECK (stored.size == json.size && memcmp (stored.data, json.data, json.size) == 0);
    json_t *object = NULL;
    const cbus_header_t *fields = cbus_block_header (block);
    if (fields->time_ms > 1000000000000000ULL || fields->height > INT64_MAX
    ||  fields->nonce > INT64_MAX)
        goto done;
    object = cbus_json_parse (json.data, json.size, reason);
    FUZZ_CHECK (object);
    again = cbus_block_new_from_json (object, reason);
    if (!again)
        fprintf (stderr, "written JSON refused: %s\n%s\n", reason, json.data);
    FUZZ_CHECK (again);
    cbus_buf_reset (&again_bytes);
    cbus_block_encode (again, &again_bytes);
    FUZZ_CHECK (again_bytes.size == bytes.size
             && memcmp (again_bytes.data, bytes.data, bytes.size) == 0);
    cbus_block_destroy (&again);
done:
    json_decref (object);
    cbus_buf_free (&json);
    cbus_buf_free (&stored);
    cbus_buf_free (&again_bytes);
    cbus_buf_free (&bytes);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char reason [CBUS_REASON_MAX];
    cbus_header_t header;
    if (cbus_block_header_from_bytes (data, size, &header) == 0) {
        uint8_t hash [CBUS_HASH_BYTES];
        cbus_header_hash (&header, hash);
    }
    if (size >= CBUS_HEADER_BYTES) {
        //  A HEADERS item, or a MINER.WORK header.
        uint8_t encoded [CBUS_HEADER_BYTES];
        if (cbus_header_decode (&header, data, CBUS_HEADER_BYTES) == 0) {
            cbus_header_encode (&header, encoded);
            FUZZ_CHECK (memcmp (encoded, data, CBUS_HEADER_BYTES) == 0);
        }
    }
    cbus_block_t *block = cbus_block_new_from_bytes (data, size, reason);
    if (block)
        s_check_block (block, data, size);
    else
        FUZZ_CHECK (memchr (reason, 0, sizeof (reason)));
    cbus_block_destroy (&block);
    cbus_buf_t json = {0};
    if (cbus_block_bytes_to_json (data, size, &json) == 0)
        FUZZ_CHECK (json.data && strlen (json.data) == json.size);
    cbus_buf_free (&json);
    return 0;
}
