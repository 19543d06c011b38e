/*  =========================================================================
    cbus_layout - the chain store's keys and records, byte for byte
    =========================================================================
*/
#include "cbus.h"

cbus_layout_key_t
cbus_layout_hash_key (char prefix, const uint8_t hash [CBUS_HASH_BYTES])
{
    cbus_layout_key_t key;
    key.bytes [0] = (uint8_t) prefix;
    memcpy (key.bytes + 1, hash, CBUS_HASH_BYTES);
    key.size = 1 + CBUS_HASH_BYTES;
    return key;
}

cbus_layout_key_t
cbus_layout_height_key (uint64_t height)
{
    cbus_layout_key_t key;
    key.bytes [0] = CBUS_LAYOUT_HEIGHT;
    cbus_put_be64 (key.bytes + 1, height);
    key.size = CBUS_LAYOUT_HEIGHT_KEY_BYTES;
    return key;
}

cbus_layout_key_t
cbus_layout_single_key (char prefix)
{
    cbus_layout_key_t key;
    key.bytes [0] = (uint8_t) prefix;
    key.size = 1;
    return key;
}

int
cbus_layout_height_decode (const void *key, size_t size, uint64_t *height)
{
    const uint8_t *bytes = (const uint8_t *) key;
    if (size != CBUS_LAYOUT_HEIGHT_KEY_BYTES || bytes [0] != CBUS_LAYOUT_HEIGHT)
        return -1;
    *height = cbus_get_be64 (bytes + 1);
    return 0;
}

void
cbus_layout_entry_encode (const cbus_chain_entry_t *entry, uint8_t out [CBUS_LAYOUT_ENTRY_BYTES])
{
    cbus_put_be64 (out, entry->height);
    memcpy (out + 8, entry->work, CBUS_U256_BYTES);
    cbus_header_encode (&entry->header, out + 8 + CBUS_U256_BYTES);
}

int
cbus_layout_entry_decode (const void *value, size_t size, cbus_chain_entry_t *entry)
{
    const uint8_t *bytes = (const uint8_t *) value;
    if (size != CBUS_LAYOUT_ENTRY_BYTES
    ||  cbus_header_decode (&entry->header, bytes + 8 + CBUS_U256_BYTES, CBUS_HEADER_BYTES))
        return -1;
    entry->height = cbus_get_be64 (bytes);
    memcpy (entry->work, bytes + 8, CBUS_U256_BYTES);
    return 0;
}

void
cbus_layout_where_encode (const uint8_t block [CBUS_HASH_BYTES], uint32_t position,
                          uint8_t out [CBUS_LAYOUT_WHERE_BYTES])
{
    memcpy (out, block, CBUS_HASH_BYTES);
    cbus_put_be32 (out + CBUS_HASH_BYTES, position);
}

int
cbus_layout_where_decode (const void *value, size_t size,
                          uint8_t block [CBUS_HASH_BYTES], uint32_t *position)
{
    if (size != CBUS_LAYOUT_WHERE_BYTES)
        return -1;
    memcpy (block, value, CBUS_HASH_BYTES);
    *position = cbus_get_be32 ((const uint8_t *) value + CBUS_HASH_BYTES);
    return 0;
}

void
cbus_layout_summary_encode (const cbus_header_t *header, uint32_t tx_count, uint64_t size,
                            uint8_t out [CBUS_LAYOUT_SUMMARY_BYTES])
{
    cbus_header_encode (header, out);
    cbus_put_be32 (out + CBUS_HEADER_BYTES, tx_count);
    cbus_put_be64 (out + CBUS_HEADER_BYTES + 4, size);
}

int
cbus_layout_summary_decode (const void *value, size_t value_size,
                            const uint8_t hash [CBUS_HASH_BYTES],
                            uint8_t header [CBUS_HEADER_BYTES], uint64_t *tx_count,
                            uint64_t *size)
{
    const uint8_t *bytes = (const uint8_t *) value;
    cbus_header_t decoded;
    uint8_t computed [CBUS_HASH_BYTES];
    if (value_size != CBUS_LAYOUT_SUMMARY_BYTES
    ||  cbus_header_decode (&decoded, bytes, CBUS_HEADER_BYTES))
        return -1;
    cbus_header_hash (&decoded, computed);
    uint64_t count = cbus_get_be32 (bytes + CBUS_HEADER_BYTES);
    uint64_t total = cbus_get_be64 (bytes + CBUS_HEADER_BYTES + 4);
    //  A block's bytes hold its header and at least a byte per transaction.
    if (memcmp (computed, hash, CBUS_HASH_BYTES) || total < CBUS_HEADER_BYTES + count)
        return -1;
    memcpy (header, bytes, CBUS_HEADER_BYTES);
    *tx_count = count;
    *size = total;
    return 0;
}

void
cbus_layout_history_prefix (cbus_buf_t *key, char kind, const char *name, size_t size)
{
    uint8_t zero = 0;
    cbus_buf_reset (key);
    cbus_buf_append (key, &kind, 1);
    cbus_buf_append (key, name, size);
    cbus_buf_append (key, &zero, 1);
}

void
cbus_layout_history_key (cbus_buf_t *key, char kind, const char *name, size_t size,
                         uint64_t height, uint32_t position)
{
    cbus_layout_history_prefix (key, kind, name, size);
    uint8_t tail [CBUS_LAYOUT_HISTORY_TAIL - 1];
    cbus_put_be64 (tail, height);
    cbus_put_be32 (tail + 8, position);
    cbus_buf_append (key, tail, sizeof (tail));
}

int
cbus_layout_history_decode (const void *key, size_t size, const char **name,
                            size_t *name_size, uint64_t *height, uint32_t *position)
{
    const uint8_t *bytes = (const uint8_t *) key;
    if (size < 1 + CBUS_LAYOUT_HISTORY_TAIL || bytes [size - CBUS_LAYOUT_HISTORY_TAIL] != 0)
        return -1;
    *name = (const char *) bytes + 1;
    *name_size = size - 1 - CBUS_LAYOUT_HISTORY_TAIL;
    *height = cbus_get_be64 (bytes + size - 12);
    *position = cbus_get_be32 (bytes + size - 4);
    return 0;
}

char *
cbus_layout_meta (const char *network, const cbus_pow_rule_t *rule,
                  const uint8_t genesis [CBUS_HASH_BYTES])
{
    char hex [CBUS_HASH_HEX];
    if (rule->interval_s)
        return zsys_sprintf ("network=%s bits=%08x block_interval=%u half_life=%u genesis=%s",
                             network, rule->bits, rule->interval_s, cbus_pow_half_life (rule),
                             cbus_hash_hex (genesis, hex));
    return zsys_sprintf ("network=%s bits=%08x genesis=%s", network, rule->bits,
                         cbus_hash_hex (genesis, hex));
}

//  --------------------------------------------------------------------------
//  Self test

void
cbus_layout_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_layout: ");
    uint8_t hash [CBUS_HASH_BYTES];
    for (size_t index = 0; index < sizeof (hash); index++)
        hash [index] = (uint8_t) index;

    //  Keys: a prefix and a hash; heights sort as numbers.
    cbus_layout_key_t key = cbus_layout_hash_key (CBUS_LAYOUT_BLOCK, hash);
    assert (key.size == 33 && key.bytes [0] == 'B' && key.bytes [32] == 31);
    cbus_layout_key_t low = cbus_layout_height_key (255);
    cbus_layout_key_t high = cbus_layout_height_key (256);
    assert (low.size == 9 && low.bytes [0] == 'H');
    assert (memcmp (low.bytes, high.bytes, 9) < 0);
    uint64_t height;
    assert (cbus_layout_height_decode (high.bytes, high.size, &height) == 0 && height == 256);
    assert (cbus_layout_height_decode (high.bytes, 8, &height) == -1);
    assert (cbus_layout_height_decode (key.bytes, 9, &height) == -1);
    key = cbus_layout_single_key (CBUS_LAYOUT_TIP);
    assert (key.size == 1 && key.bytes [0] == 'S');

    //  An index entry round-trips; a short or damaged one is refused.
    cbus_chain_entry_t entry = { .height = 7, .header = { .version = 1, .height = 7,
                                 .time_ms = 1234, .bits = 0x2000ffff, .nonce = 99 } };
    entry.work [31] = 5;
    memcpy (entry.header.prev_hash, hash, CBUS_HASH_BYTES);
    uint8_t record [CBUS_LAYOUT_ENTRY_BYTES];
    cbus_layout_entry_encode (&entry, record);
    assert (cbus_get_be64 (record) == 7);
    cbus_chain_entry_t back;
    assert (cbus_layout_entry_decode (record, sizeof (record), &back) == 0);
    assert (back.height == 7 && back.work [31] == 5 && back.header.nonce == 99);
    assert (memcmp (back.header.prev_hash, hash, CBUS_HASH_BYTES) == 0);
    assert (cbus_layout_entry_decode (record, sizeof (record) - 1, &back) == -1);
    //  A version-2 header has no reserved bytes (cbus_block.h): its last
    //  byte is the nonce's top one.
    record [CBUS_LAYOUT_ENTRY_BYTES - 1] = 1;
    assert (cbus_layout_entry_decode (record, sizeof (record), &back) == 0
         && back.header.nonce == (99 | 1ULL << 56));

    //  Where records: block hash and position.
    uint8_t where [CBUS_LAYOUT_WHERE_BYTES], block [CBUS_HASH_BYTES];
    uint32_t position;
    cbus_layout_where_encode (hash, 0x01020304, where);
    assert (where [32] == 1 && where [35] == 4);
    assert (cbus_layout_where_decode (where, sizeof (where), block, &position) == 0);
    assert (position == 0x01020304 && memcmp (block, hash, CBUS_HASH_BYTES) == 0);
    assert (cbus_layout_where_decode (where, 35, block, &position) == -1);

    //  Summary records: only the record of the block they are stored
    //  under, of the right size and counts, reads back.
    uint8_t summary [CBUS_LAYOUT_SUMMARY_BYTES], header_bytes [CBUS_HEADER_BYTES];
    uint8_t entry_hash [CBUS_HASH_BYTES];
    uint64_t tx_count, block_size;
    cbus_header_hash (&entry.header, entry_hash);
    cbus_layout_summary_encode (&entry.header, 3, 500, summary);
    assert (cbus_layout_summary_decode (summary, sizeof (summary), entry_hash, header_bytes,
                                        &tx_count, &block_size) == 0);
    assert (tx_count == 3 && block_size == 500);
    cbus_header_t header_back;
    assert (cbus_header_decode (&header_back, header_bytes, CBUS_HEADER_BYTES) == 0
         && header_back.nonce == entry.header.nonce);
    assert (cbus_layout_summary_decode (summary, sizeof (summary) - 1, entry_hash, header_bytes,
                                        &tx_count, &block_size) == -1);
    assert (cbus_layout_summary_decode (summary, sizeof (summary), hash, header_bytes,
                                        &tx_count, &block_size) == -1);
    cbus_layout_summary_encode (&entry.header, 1000, 500, summary);
    assert (cbus_layout_summary_decode (summary, sizeof (summary), entry_hash, header_bytes,
                                        &tx_count, &block_size) == -1);
    cbus_layout_summary_encode (&entry.header, 0, 500, summary);
    summary [CBUS_HEADER_BYTES - 1] ^= 1;           //  The header no longer hashes to it
    assert (cbus_layout_summary_decode (summary, sizeof (summary), entry_hash, header_bytes,
                                        &tx_count, &block_size) == -1);

    //  History keys: every key of a name starts with its prefix, and
    //  decodes back to its parts.
    cbus_buf_t history = {0}, prefix = {0};
    cbus_layout_history_key (&history, CBUS_LAYOUT_USER, "alice", 5, 3, 2);
    assert (history.size == 1 + 5 + CBUS_LAYOUT_HISTORY_TAIL);
    cbus_layout_history_prefix (&prefix, CBUS_LAYOUT_USER, "alice", 5);
    assert (prefix.size == 7 && memcmp (history.data, prefix.data, prefix.size) == 0);
    const char *name;
    size_t name_size;
    assert (cbus_layout_history_decode (history.data, history.size, &name, &name_size,
                                        &height, &position) == 0);
    assert (name_size == 5 && memcmp (name, "alice", 5) == 0 && height == 3 && position == 2);
    assert (cbus_layout_history_decode (history.data, 13, &name, &name_size, &height,
                                        &position) == -1);
    history.data [6] = 'x';                         //  No 0x00 before the tail
    assert (cbus_layout_history_decode (history.data, history.size, &name, &name_size,
                                        &height, &position) == -1);
    cbus_buf_free (&history);
    cbus_buf_free (&prefix);

    cbus_pow_rule_t rule = { .bits = 0x2000ffff, .interval_s = 0 };
    char *meta = cbus_layout_meta ("test", &rule, hash);
    assert (strncmp (meta, "network=test bits=2000ffff genesis=00010203", 43) == 0);
    zstr_free (&meta);
    rule.interval_s = 10;
    meta = cbus_layout_meta ("test", &rule, hash);
    assert (strncmp (meta, "network=test bits=2000ffff block_interval=10 half_life=16 "
                           "genesis=00010203", 72) == 0);
    zstr_free (&meta);
    if (verbose)
        printf ("OK\n");
}
