/*  =========================================================================
    fuzz_peer - every peer message body as peersync parses it
    (services/peersync/cbus_peersync_wire.c, compiled in): the first byte
    picks HELLO, STATUS, REJECT, INFO, BLOCK, GETHEADERS, GETBLOCKS, TX,
    HEADERS or BLOCKS, the rest is the msgpack body, unpacked as
    peersync_on_peer_message does. Every field parsed is read; the items
    of TX, HEADERS and BLOCKS are checked as the handlers check them; a
    parsed HELLO, STATUS or INFO packs back to a body that parses the same.
    =========================================================================
*/
#include "fuzz.h"
#include "cbus_peersync_private.h"

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc; (void) argv;
    fuzz_init ();
    return 0;
}

static void
s_hello (const msgpack_object *map)
{
    peersync_hello_t hello, again;
    if (peersync_hello_parse (&hello, map))
        return;
    fuzz_touch (hello.network, hello.network_size);
    fuzz_touch (hello.node_id, 16);
    fuzz_touch (hello.public_key, 40);
    fuzz_touch (hello.endpoint, hello.endpoint_size);
    FUZZ_CHECK (hello.endpoint_size < CBUS_PEER_ADDRESS_MAX);
    cbus_buf_t body = {0};
    peersync_hello_pack (&hello, &body);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    const msgpack_object *packed = fuzz_unpack_map (&unpacked, body.data, body.size);
    FUZZ_CHECK (packed && peersync_hello_parse (&again, packed) == 0);
    FUZZ_CHECK (again.reply == hello.reply && again.version == hello.version
             && again.network_size == hello.network_size
             && memcmp (again.network, hello.network, hello.network_size) == 0
             && again.endpoint_size == hello.endpoint_size
             && memcmp (again.endpoint, hello.endpoint, hello.endpoint_size) == 0
             && memcmp (&again.tip, &hello.tip, sizeof (hello.tip)) == 0
             && memcmp (again.genesis, hello.genesis, CBUS_HASH_BYTES) == 0);
    msgpack_unpacked_destroy (&unpacked);
    cbus_buf_free (&body);
}

static void
s_status (const msgpack_object *map)
{
    peersync_status_t status, again;
    if (peersync_status_parse (&status, map))
        return;
    cbus_buf_t body = {0};
    peersync_status_pack (&status, &body);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    const msgpack_object *packed = fuzz_unpack_map (&unpacked, body.data, body.size);
    FUZZ_CHECK (packed && peersync_status_parse (&again, packed) == 0);
    FUZZ_CHECK (again.reply == status.reply
             && memcmp (&again.tip, &status.tip, sizeof (status.tip)) == 0);
    msgpack_unpacked_destroy (&unpacked);
    cbus_buf_free (&body);
}

static void
s_info (const msgpack_object *map)
{
    peersync_info_t info, again;
    if (peersync_info_parse (&info, map))
        return;
    fuzz_touch (info.node_id, info.node_id_size);
    FUZZ_CHECK (info.network_size < PEERSYNC_NETWORK_MAX && info.public_key_size == 40
             && info.endpoint_size < CBUS_PEER_ADDRESS_MAX);
    cbus_buf_t body = {0};
    peersync_info_pack (&info, &body);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    const msgpack_object *packed = fuzz_unpack_map (&unpacked, body.data, body.size);
    FUZZ_CHECK (packed && peersync_info_parse (&again, packed) == 0);
    FUZZ_CHECK (again.network_size == info.network_size
             && memcmp (again.network, info.network, info.network_size) == 0
             && again.endpoint_size == info.endpoint_size
             && memcmp (again.endpoint, info.endpoint, info.endpoint_size) == 0
             && memcmp (again.public_key, info.public_key, 40) == 0
             && memcmp (again.genesis, info.genesis, CBUS_HASH_BYTES) == 0);
    msgpack_unpacked_destroy (&unpacked);
    cbus_buf_free (&body);
}

//  GETHEADERS and GETBLOCKS: the hashes as they go on to the chainstore.
static void
s_list_request (const msgpack_object *map, bool headers)
{
    const msgpack_object *list;
    uint64_t limit = headers ? PEERSYNC_HEADERS_BATCH : 4 * 1024 * 1024;
    uint64_t asked = limit;
    if (headers ? peersync_getheaders_parse (map, &list, &limit)
                : peersync_getblocks_parse (map, &list, &limit))
        return;
    FUZZ_CHECK (limit <= asked);
    FUZZ_CHECK (list->via.array.size <= (headers ? CBUS_LOCATOR_MAX : PEERSYNC_BLOCKS_BATCH));
    cbus_buf_t body = {0};
    cbus_blocks_get_t get = { .hashes = peersync_hash_list (list), .max_bytes = limit,
                              .has_max_bytes = true };
    cbus_blocks_get_encode (&get, &body);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    const msgpack_object *packed = fuzz_unpack_map (&unpacked, body.data, body.size);
    cbus_blocks_get_t again;
    char reason [CBUS_REASON_MAX];
    FUZZ_CHECK (packed && cbus_blocks_get_decode (packed, &again, reason) == 0);
    FUZZ_CHECK (again.hashes.count == list->via.array.size && again.max_bytes == limit);
    msgpack_unpacked_destroy (&unpacked);
    cbus_buf_free (&body);
}

//  TX, HEADERS, BLOCKS: each item as its handler takes it.
static void
s_items (const msgpack_object *array, int command)
{
    char reason [CBUS_REASON_MAX];
    for (uint32_t index = 0; array && index < array->via.array.size; index++) {
        const msgpack_object *item = &array->via.array.ptr [index];
        if (item->type != MSGPACK_OBJECT_BIN)
            return;
        const uint8_t *data = (const uint8_t *) item->via.bin.ptr;
        size_t size = item->via.bin.size;
        if (command == 7) {
            cbus_tx_t *tx = cbus_tx_decode (data, size, reason);
            cbus_tx_destroy (&tx);
        }
        else
        if (command == 8) {
            cbus_header_t header;
            if (cbus_header_decode (&header, data, size) == 0) {
                uint8_t hash [CBUS_HASH_BYTES];
                cbus_header_hash (&header, hash);
            }
        }
        else {
            cbus_header_t header;
            if (cbus_block_header_from_bytes (data, size, &header) == 0) {
                uint8_t hash [CBUS_HASH_BYTES];
                cbus_header_hash (&header, hash);
            }
        }
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int command = data [0] % 10;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    const msgpack_object *map = fuzz_unpack_map (&unpacked, data + 1, size - 1);
    if (!map) {
        msgpack_unpacked_destroy (&unpacked);
        return 0;
    }
    const uint8_t *bytes;
    size_t bytes_size;
    peersync_reject_t reject;
    switch (command) {
        case 0: s_hello (map); break;
        case 1: s_status (map); break;
        case 2: FUZZ_CHECK (peersync_reject_parse (&reject, map) == 0);
                FUZZ_CHECK (cbus_code_name (reject.code));
                fuzz_touch (reject.reason, reject.reason_size);
                break;
        case 3: s_info (map); break;
        case 4: if (peersync_block_parse (map, &bytes, &bytes_size) == 0)
                    fuzz_touch (bytes, bytes_size);
                break;
        case 5: s_list_request (map, true); break;
        case 6: s_list_request (map, false); break;
        case 7: s_items (peersync_tx_parse (map), command); break;
        case 8: s_items (peersync_headers_parse (map), command); break;
        default: s_items (peersync_blocks_parse (map, PEERSYNC_BLOCKS_BATCH), command); break;
    }
    msgpack_unpacked_destroy (&unpacked);
    return 0;
}
