/*  =========================================================================
    cbus_chain_test - cbus_chain's self-test (kept apart: the class and its
    test would not fit in one file)
    =========================================================================
*/
#include "cbus.h"

//  Mine a block of count fresh transactions on the tip; returns its bytes.
static void
s_make_block (cbus_chain_t *chain, int count, uint64_t time_ms, cbus_buf_t *out,
              const char *prev_override)
{
    cbus_chain_entry_t tip;
    const uint8_t *tip_hash = cbus_chain_tip (chain, &tip);
    cbus_header_t header = {
        .version = CBUS_BLOCK_VERSION, .height = tip.height + 1,
        .time_ms = time_ms, .bits = cbus_chain_next_bits (chain), .miner = 1
    };
    memcpy (header.prev_hash, prev_override ? (const uint8_t *) prev_override : tip_hash,
            CBUS_HASH_BYTES);
    cbus_block_t *block = cbus_block_new (&header);
    char reason [CBUS_REASON_MAX];
    static int serial = 0;
    for (int index = 0; index < count; index++) {
        char *text = zsys_sprintf ("{\"users\": \"u\", \"data\": %d, \"dh_parameters\": \"\","
            " \"server_public_key\": \"\", \"receiver_public_key\": \"\", \"sender_public_key\": \"\"}",
            serial++);
        json_t *object = cbus_json_parse (text, strlen (text), reason);
        cbus_tx_t *tx = cbus_tx_new_from_json (object, 1000, reason);
        assert (tx);
        cbus_block_add_tx (block, &tx);
        json_decref (object);
        zstr_free (&text);
    }
    cbus_block_merkle (block, cbus_block_header (block)->merkle_root);
    uint8_t hash [CBUS_HASH_BYTES];
    for (cbus_block_header (block)->nonce = 0; ; cbus_block_header (block)->nonce++) {
        cbus_block_hash (block, hash);
        if (cbus_pow_check (hash, header.bits))
            break;
    }
    cbus_buf_reset (out);
    cbus_block_encode (block, out);
    cbus_block_destroy (&block);
}

//  Mine an empty block on prev (a stored block) with these bits.
static void
s_mine_on (const uint8_t prev [CBUS_HASH_BYTES], uint64_t height, uint64_t time_ms,
           uint32_t bits, cbus_buf_t *out)
{
    cbus_header_t header = { .version = CBUS_BLOCK_VERSION, .height = height,
                             .time_ms = time_ms, .bits = bits, .miner = 9 };
    memcpy (header.prev_hash, prev, CBUS_HASH_BYTES);
    cbus_block_t *block = cbus_block_new (&header);
    cbus_block_merkle (block, cbus_block_header (block)->merkle_root);
    while (!cbus_header_search (cbus_block_header (block), 100000))
        ;
    cbus_buf_reset (out);
    cbus_block_encode (block, out);
    cbus_block_destroy (&block);
}

//  A retargeting chain: each block carries the rule's bits (harder as
//  blocks come faster than the interval), a block with other bits is
//  refused with bad_bits on the active chain and on a side branch (whose
//  anchor is its own block 1), and the store is another network's for
//  another interval.
static void
s_test_retarget (const char *path)
{
    char reason [CBUS_REASON_MAX];
    cbus_pow_rule_t rule = { .bits = 0x2000ffff, .interval_s = 1 };
    cbus_chain_t *chain = cbus_chain_new (path, "test", &rule, 8, 3600000, reason);
    assert (chain);
    assert (cbus_chain_rule (chain)->interval_s == 1);
    cbus_buf_t bytes = {0};
    uint8_t hash [CBUS_HASH_BYTES], fork [CBUS_HASH_BYTES];
    cbus_code_t code;
    uint64_t now = cbus_time_ms ();
    //  Forty blocks 100 ms apart: 35 s ahead of schedule, two half-lives.
    for (uint64_t height = 1; height <= 40; height++) {
        uint32_t bits = cbus_chain_next_bits (chain);
        assert (bits == (height <= 2 ? rule.bits : cbus_chain_bits_on (chain, cbus_chain_tip (chain, NULL))));
        if (height == 30) {
            //  The network's fixed bits are not the rule's any more.
            s_mine_on (cbus_chain_tip (chain, NULL), height, now + height * 100, rule.bits, &bytes);
            assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, &code, reason)
                    == CBUS_CHAIN_INVALID);
            assert (code == CBUS_CODE_BAD_BITS && strstr (reason, "rule gives"));
        }
        s_mine_on (cbus_chain_tip (chain, NULL), height, now + height * 100, bits, &bytes);
        assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, NULL, reason)
                == CBUS_CHAIN_CONNECTED);
        if (height == 5)
            memcpy (fork, hash, CBUS_HASH_BYTES);
    }
    uint8_t start [CBUS_U256_BYTES], now_target [CBUS_U256_BYTES];
    assert (cbus_pow_target (rule.bits, start) == 0);
    assert (cbus_pow_target (cbus_chain_next_bits (chain), now_target) == 0);
    assert (cbus_u256_cmp (now_target, start) < 0);
    //  Harder than a quarter of the start: 2 half-lives and more.
    assert (now_target [1] < 0x40);
    //  A side branch on block 5, a second later: the rule of its parent.
    uint32_t side_bits = cbus_chain_bits_on (chain, fork);
    s_mine_on (fork, 6, now + 1600, side_bits ^ 1, &bytes);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, &code, reason) == CBUS_CHAIN_INVALID);
    assert (code == CBUS_CODE_BAD_BITS);
    s_mine_on (fork, 6, now + 1600, side_bits, &bytes);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, NULL, reason) == CBUS_CHAIN_SIDE);
    //  A branch from genesis: its block 1 is its anchor. Block 1' 10 s
    //  later than ours, block 2' on it, then 3' whose bits follow 2' and 1'.
    s_mine_on (cbus_chain_genesis (chain), 1, now + 10000, rule.bits, &bytes);
    uint8_t one [CBUS_HASH_BYTES], two [CBUS_HASH_BYTES];
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, one, NULL, reason) == CBUS_CHAIN_SIDE);
    s_mine_on (one, 2, now + 10100, rule.bits, &bytes);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, two, NULL, reason) == CBUS_CHAIN_SIDE);
    cbus_header_t parent = { .height = 2, .time_ms = now + 10100 };
    cbus_header_t anchor = { .height = 1, .time_ms = now + 10000 };
    uint32_t expected = cbus_pow_next_bits (&rule, &parent, &anchor);
    assert (expected != rule.bits && cbus_chain_bits_on (chain, two) == expected);
    s_mine_on (two, 3, now + 10200, expected, &bytes);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, NULL, reason) == CBUS_CHAIN_SIDE);
    cbus_chain_destroy (&chain);
    //  Another interval (or none): another network's store.
    rule.interval_s = 2;
    assert (cbus_chain_new (path, "test", &rule, 8, 3600000, reason) == NULL);
    assert (strstr (reason, "another network") && strstr (reason, "block_interval=1"));
    rule.interval_s = 0;
    assert (cbus_chain_new (path, "test", &rule, 8, 3600000, reason) == NULL);
    rule.interval_s = 1;
    chain = cbus_chain_new (path, "test", &rule, 8, 3600000, reason);
    assert (chain);
    cbus_chain_destroy (&chain);
    cbus_buf_free (&bytes);
}

//  The bits a block on hash must carry, from the rule's definition: the
//  anchor is the height-1 ancestor, walked entry by entry (the reference
//  the chain's remembered and active-chain anchors must agree with).
static uint32_t
s_reference_bits (cbus_chain_t *chain, const uint8_t hash [CBUS_HASH_BYTES])
{
    cbus_chain_entry_t parent, entry;
    assert (cbus_chain_entry (chain, hash, &parent) == 0);
    entry = parent;
    while (entry.height > CBUS_RETARGET_ANCHOR_HEIGHT)
        assert (cbus_chain_entry (chain, entry.header.prev_hash, &entry) == 0);
    parent.header.height = parent.height;
    return cbus_pow_next_bits (cbus_chain_rule (chain), &parent.header, &entry.header);
}

//  Mine a block on tip (stored, at height - 1) with the reference bits,
//  submit it, check the result; tip becomes its hash. Returns the index
//  reads the chain took for the bits on tip and for the submission.
static uint64_t
s_extend (cbus_chain_t *chain, uint8_t tip [CBUS_HASH_BYTES], uint64_t height,
          uint64_t time_ms, cbus_chain_result_t expected, cbus_buf_t *bytes)
{
    char reason [CBUS_REASON_MAX];
    uint32_t bits = s_reference_bits (chain, tip);
    uint64_t before = cbus_chain_index_reads (chain);
    assert (cbus_chain_bits_on (chain, tip) == bits);
    s_mine_on (tip, height, time_ms, bits, bytes);
    cbus_chain_result_t result = cbus_chain_submit (chain, bytes->data, bytes->size, tip,
                                                    NULL, reason);
    uint64_t reads = cbus_chain_index_reads (chain) - before;
    if (result != expected)
        printf ("result %d, not %d: %s\n", (int) result, (int) expected, reason);
    assert (result == expected);
    return reads;
}

//  Reads the bits on a block and a block on it may take: the parent's
//  entry (bits), then the block's and its parent's, the median's eleven,
//  the fork walk's first step; none for the anchor.
#define S_READS_MAX (CBUS_CHAIN_MEDIAN_SPAN + 5)

//  Anchors cost O(1) reads a block on every branch: a side branch of 300
//  blocks from genesis (its own block 1, bits that move), one forked at
//  block 100 (the active block 1), both after a restart (one walk, then
//  remembered again) and with a tiny cache (dropped anchors walked
//  again); a fork at genesis that becomes active changes the active
//  block 1. Every block carries the reference bits, or it is refused.
static void
s_test_anchor_cost (const char *path)
{
    char reason [CBUS_REASON_MAX];
    cbus_pow_rule_t rule = { .bits = 0x2000ffff, .interval_s = 1 };
    cbus_chain_t *chain = cbus_chain_new (path, "test", &rule, 8, 3600000, reason);
    assert (chain);
    cbus_buf_t bytes = {0};
    uint64_t start = cbus_time_ms () - 2000000;
    uint8_t main_tip [CBUS_HASH_BYTES], at_100 [CBUS_HASH_BYTES];
    uint8_t side [CBUS_HASH_BYTES], fork [CBUS_HASH_BYTES];
    //  The active chain: 400 blocks on schedule, each a bounded cost, and
    //  the bits of the next block cost no read.
    memcpy (main_tip, cbus_chain_genesis (chain), CBUS_HASH_BYTES);
    for (uint64_t height = 1; height <= 400; height++) {
        uint64_t reads = s_extend (chain, main_tip, height, start + height * 1000,
                                   CBUS_CHAIN_CONNECTED, &bytes);
        assert (reads <= S_READS_MAX);
        if (height == 100)
            memcpy (at_100, main_tip, CBUS_HASH_BYTES);
    }
    uint64_t before = cbus_chain_index_reads (chain);
    assert (cbus_chain_next_bits (chain) == s_reference_bits (chain, main_tip));
    before = cbus_chain_index_reads (chain);
    assert (cbus_chain_next_bits (chain) != 0);
    assert (cbus_chain_index_reads (chain) == before);
    //  From genesis: 300 blocks, at times that put it ahead of and behind
    //  its own schedule in turn (bits harder than the start, then not).
    memcpy (side, cbus_chain_genesis (chain), CBUS_HASH_BYTES);
    uint64_t time_ms = start + 700;
    uint64_t most = 0;
    int harder = 0;
    for (uint64_t height = 1; height <= 300; height++) {
        time_ms += height % 3 == 0 ? 1700 : 650;
        uint64_t reads = s_extend (chain, side, height, time_ms, CBUS_CHAIN_SIDE, &bytes);
        most = reads > most ? reads : most;
        if (s_reference_bits (chain, side) != rule.bits)
            harder++;
    }
    assert (most <= S_READS_MAX);
    assert (harder > 50 && harder < 250);
    //  From block 100: its anchor is the active block 1.
    memcpy (fork, at_100, CBUS_HASH_BYTES);
    for (uint64_t height = 101; height <= 140; height++)
        assert (s_extend (chain, fork, height, start + height * 1000 + 300, CBUS_CHAIN_SIDE,
                          &bytes) <= S_READS_MAX);

    //  Restarted, nothing is remembered: the next block on the branch
    //  walks it once (two reads a block, and one for its tip), the one
    //  after does not.
    cbus_chain_destroy (&chain);
    chain = cbus_chain_new (path, "test", &rule, 8, 3600000, reason);
    assert (chain);
    time_ms += 1000;
    uint64_t reads = s_extend (chain, side, 301, time_ms, CBUS_CHAIN_SIDE, &bytes);
    assert (reads > 300 && reads <= 2 * (300 + 1) + S_READS_MAX);
    time_ms += 1000;
    assert (s_extend (chain, side, 302, time_ms, CBUS_CHAIN_SIDE, &bytes) <= S_READS_MAX);

    //  A cache of four a generation: two branches extended in turn keep
    //  their tips; twenty blocks on one drop the other's, which is then
    //  walked, down to the first ancestor still remembered.
    //  (The branch from block 100 walks its 40 blocks once, too.)
    reads = s_extend (chain, fork, 141, start + 141 * 1000 + 300, CBUS_CHAIN_SIDE, &bytes);
    assert (reads > 40 && reads <= 2 * (40 + 1) + S_READS_MAX);
    cbus_chain_set_anchor_generation (chain, 4);
    for (uint64_t step = 0; step < 10; step++) {
        time_ms += 1000;
        assert (s_extend (chain, side, 303 + step, time_ms, CBUS_CHAIN_SIDE, &bytes) <= S_READS_MAX);
        assert (s_extend (chain, fork, 142 + step, start + (142 + step) * 1000 + 300,
                          CBUS_CHAIN_SIDE, &bytes) <= S_READS_MAX);
    }
    for (uint64_t height = 152; height <= 170; height++)
        s_extend (chain, fork, height, start + height * 1000 + 300, CBUS_CHAIN_SIDE, &bytes);
    time_ms += 1000;
    reads = s_extend (chain, side, 313, time_ms, CBUS_CHAIN_SIDE, &bytes);
    assert (reads > 2 * 300);
    time_ms += 1000;
    assert (s_extend (chain, side, 314, time_ms, CBUS_CHAIN_SIDE, &bytes) <= S_READS_MAX);
    cbus_chain_destroy (&chain);
    char *command = zsys_sprintf ("rm -rf %s", path);
    assert (system (command) == 0);
    zstr_free (&command);

    //  A fork at genesis that takes over at its fifth block (harder than
    //  the start from its third on): its block 1 is the active
    //  anchor from then on (a block with the old one's bits would be
    //  refused), and the old branch keeps its own.
    chain = cbus_chain_new (path, "test", &rule, 8, 3600000, reason);
    assert (chain);
    memcpy (main_tip, cbus_chain_genesis (chain), CBUS_HASH_BYTES);
    for (uint64_t height = 1; height <= 5; height++)
        s_extend (chain, main_tip, height, start + height * 1000, CBUS_CHAIN_CONNECTED, &bytes);
    assert (cbus_chain_next_bits (chain) == rule.bits);
    memcpy (side, cbus_chain_genesis (chain), CBUS_HASH_BYTES);
    for (uint64_t height = 1; height <= 7; height++)
        s_extend (chain, side, height, start + 5000 + height * 500,
                  height < 5 ? CBUS_CHAIN_SIDE : CBUS_CHAIN_CONNECTED, &bytes);
    assert (memcmp (cbus_chain_tip (chain, NULL), side, CBUS_HASH_BYTES) == 0);
    uint32_t bits = cbus_chain_next_bits (chain);
    assert (bits == s_reference_bits (chain, side) && bits != rule.bits);
    s_extend (chain, side, 8, start + 9500, CBUS_CHAIN_CONNECTED, &bytes);
    s_extend (chain, main_tip, 6, start + 6000, CBUS_CHAIN_SIDE, &bytes);
    assert (cbus_chain_bits_on (chain, main_tip) == rule.bits);
    cbus_chain_destroy (&chain);
    cbus_buf_free (&bytes);
}

void
cbus_chain_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_chain: ");
    char path [] = "/tmp/cbus_chain_test_XXXXXX";
    assert (mkdtemp (path));
    char reason [CBUS_REASON_MAX];
    cbus_pow_rule_t fixed = { .bits = 0x2000ffff, .interval_s = 0 };
    cbus_chain_t *chain = cbus_chain_new (path, "test", &fixed, 8, 3600000, reason);
    assert (chain);
    cbus_chain_entry_t tip;
    cbus_chain_tip (chain, &tip);
    assert (tip.height == 0);
    assert (memcmp (cbus_chain_tip (chain, NULL), cbus_chain_genesis (chain), CBUS_HASH_BYTES) == 0);

    //  Three blocks connect in turn.
    cbus_buf_t bytes = {0};
    uint8_t hash [CBUS_HASH_BYTES];
    uint64_t now = cbus_time_ms ();
    for (int height = 1; height <= 3; height++) {
        s_make_block (chain, height, now + (uint64_t) height, &bytes, NULL);
        cbus_chain_result_t result = cbus_chain_submit (chain, bytes.data, bytes.size, hash, NULL, reason);
        assert (result == CBUS_CHAIN_CONNECTED);
        assert (cbus_chain_left_count (chain) == 0 && cbus_chain_joined_count (chain) == 1);
        assert (cbus_block_tx_count (cbus_chain_joined (chain, 0)) == (size_t) height);
    }
    cbus_chain_tip (chain, &tip);
    assert (tip.height == 3);
    //  Submitting it again is harmless.
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, NULL, reason) == CBUS_CHAIN_DUPLICATE);
    //  Its transactions are indexed.
    cbus_block_t *block = cbus_block_new_from_bytes (bytes.data, bytes.size, reason);
    uint8_t where [CBUS_HASH_BYTES];
    uint32_t position;
    assert (cbus_chain_tx_where (chain, cbus_tx_id (cbus_block_tx (block, 2)), where, &position) == 0);
    assert (position == 2 && memcmp (where, hash, CBUS_HASH_BYTES) == 0);
    assert (cbus_chain_is_active (chain, hash));

    //  A block repeating a confirmed transaction is refused.
    cbus_header_t header = *cbus_block_header (block);
    header.height = 4;
    memcpy (header.prev_hash, hash, CBUS_HASH_BYTES);
    header.time_ms = now + 10;
    cbus_block_t *replay = cbus_block_new (&header);
    size_t tx_size;
    const uint8_t *tx_bytes = cbus_tx_bytes (cbus_block_tx (block, 0), &tx_size);
    cbus_tx_t *again = cbus_tx_new_from_bytes (tx_bytes, tx_size, reason);
    cbus_block_add_tx (replay, &again);
    cbus_block_merkle (replay, cbus_block_header (replay)->merkle_root);
    uint8_t replay_hash [CBUS_HASH_BYTES];
    for (cbus_block_header (replay)->nonce = 0; ; cbus_block_header (replay)->nonce++) {
        cbus_block_hash (replay, replay_hash);
        if (cbus_pow_check (replay_hash, header.bits))
            break;
    }
    cbus_buf_reset (&bytes);
    cbus_block_encode (replay, &bytes);
    cbus_code_t code;
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, &code, reason) == CBUS_CHAIN_INVALID);
    assert (code == CBUS_CODE_CONFIRMED && strstr (reason, "already in the chain"));
    cbus_block_destroy (&replay);
    cbus_block_destroy (&block);

    //  Refusals: unknown parent, time before the median, garbage.
    uint8_t nowhere [CBUS_HASH_BYTES];
    memset (nowhere, 7, sizeof (nowhere));
    s_make_block (chain, 1, now + 20, &bytes, (const char *) nowhere);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, &code, reason) == CBUS_CHAIN_INVALID);
    assert (code == CBUS_CODE_ORPHAN && strstr (reason, "not a known block"));
    s_make_block (chain, 1, now - 1000, &bytes, NULL);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, &code, reason) == CBUS_CHAIN_INVALID);
    assert (code == CBUS_CODE_BAD_TIME && strstr (reason, "median"));
    s_make_block (chain, 1, now + 100000000, &bytes, NULL);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, &code, reason) == CBUS_CHAIN_INVALID);
    assert (code == CBUS_CODE_BAD_TIME && strstr (reason, "future"));
    assert (cbus_chain_submit (chain, "junk", 4, hash, &code, reason) == CBUS_CHAIN_INVALID);
    assert (code == CBUS_CODE_MALFORMED);

    //  The context rules on their own: each refusal with its code, and
    //  the index entry of a header that passes.
    cbus_chain_entry_t parent = { .height = 5 }, child;
    parent.work [31] = 1;
    cbus_header_t context = { .height = 6, .time_ms = 1000, .bits = 0x2000ffff };
    cbus_pow_rule_t other_bits = { .bits = 0x2000fffe };
    assert (cbus_chain_check_context (&context, &parent, NULL, 999, &fixed, 1000, 0, &child,
                                      &code, reason) == 0);
    assert (code == CBUS_CODE_OK && child.height == 6 && child.header.time_ms == 1000);
    uint8_t one_work [CBUS_U256_BYTES];
    assert (cbus_pow_work (0x2000ffff, one_work) == 0);
    assert (child.work [31] == (uint8_t) (one_work [31] + 1));
    assert (cbus_chain_check_context (&context, &parent, NULL, 999, &other_bits, 1000, 0, NULL,
                                      &code, reason) == -1 && code == CBUS_CODE_BAD_BITS);
    assert (cbus_chain_check_context (&context, NULL, NULL, 999, &fixed, 1000, 0, NULL,
                                      &code, reason) == -1 && code == CBUS_CODE_ORPHAN);
    context.height = 7;
    assert (cbus_chain_check_context (&context, &parent, NULL, 999, &fixed, 1000, 0, NULL,
                                      &code, reason) == -1 && code == CBUS_CODE_BAD_HEIGHT);
    context.height = 6;
    assert (cbus_chain_check_context (&context, &parent, NULL, 1000, &fixed, 1000, 0, NULL,
                                      &code, reason) == -1 && code == CBUS_CODE_BAD_TIME);
    assert (strstr (reason, "median"));
    assert (cbus_chain_check_context (&context, &parent, NULL, 999, &fixed, 998, 1, NULL,
                                      &code, reason) == -1 && code == CBUS_CODE_BAD_TIME);
    assert (strstr (reason, "future"));
    assert (cbus_chain_check_context (&context, &parent, NULL, 999, &fixed, 0, UINT64_MAX, NULL,
                                      NULL, reason) == 0);

    //  History: user "u" is in every transaction so far (1 + 2 + 3),
    //  newest first, paged with a cursor.
    cbus_chain_history_t page [4];
    assert (cbus_chain_history (chain, CBUS_HISTORY_USER, "u", UINT64_MAX, 0, page, 4) == 4);
    assert (page [0].height == 3 && page [0].index == 2);
    assert (page [3].height == 2 && page [3].index == 1);
    size_t rest = cbus_chain_history (chain, CBUS_HISTORY_USER, "u", page [3].height, page [3].index,
                                      page, 4);
    assert (rest == 2 && page [0].height == 2 && page [0].index == 0 && page [1].height == 1);
    assert (cbus_chain_history (chain, CBUS_HISTORY_USER, "nobody", UINT64_MAX, 0, page, 4) == 0);
    assert (cbus_chain_history (chain, CBUS_HISTORY_KEY, "", UINT64_MAX, 0, page, 4) == 0);

    //  Locator: tip first, genesis last; a peer's locator finds the fork.
    uint8_t locator [CBUS_LOCATOR_MAX][CBUS_HASH_BYTES];
    size_t located = cbus_chain_locator (chain, locator);
    assert (located == 4);
    assert (memcmp (locator [0], cbus_chain_tip (chain, NULL), CBUS_HASH_BYTES) == 0);
    assert (memcmp (locator [3], cbus_chain_genesis (chain), CBUS_HASH_BYTES) == 0);
    assert (cbus_chain_fork_point (chain, locator + 1, 3) == 2);
    memset (locator [0], 9, CBUS_HASH_BYTES);       //  Unknown to us
    assert (cbus_chain_fork_point (chain, locator, 1) == 0);

    //  Reorganisation: a branch from block 1 that reaches more work.
    //  Active: G-1-2-3. Branch: 1-b2-b3-b4, b2 repeating a transaction of
    //  block 2 (allowed: block 2 leaves), b3 one of block 1 (refused).
    uint8_t one [CBUS_HASH_BYTES], two [CBUS_HASH_BYTES], three [CBUS_HASH_BYTES];
    assert (cbus_chain_hash_at (chain, 1, one) == 0);
    assert (cbus_chain_hash_at (chain, 2, two) == 0);
    assert (cbus_chain_hash_at (chain, 3, three) == 0);
    char *two_bytes, *one_bytes;
    size_t two_size, one_size;
    assert (cbus_chain_block_by_hash (chain, two, &two_bytes, &two_size) == 0 && two_bytes);
    assert (cbus_chain_block_by_hash (chain, one, &one_bytes, &one_size) == 0 && one_bytes);
    cbus_block_t *block_two = cbus_block_new_from_bytes (two_bytes, two_size, reason);
    cbus_block_t *block_one = cbus_block_new_from_bytes (one_bytes, one_size, reason);
    cbus_store_free (two_bytes);
    cbus_store_free (one_bytes);
    //  b2: one fresh transaction and one of block 2.
    cbus_header_t branch = { .version = CBUS_BLOCK_VERSION, .height = 2, .time_ms = now + 30,
                             .bits = cbus_chain_bits (chain), .miner = 2 };
    memcpy (branch.prev_hash, one, CBUS_HASH_BYTES);
    cbus_block_t *b2 = cbus_block_new (&branch);
    cbus_tx_t *shared = cbus_tx_new_from_bytes (cbus_tx_bytes (cbus_block_tx (block_two, 0), &tx_size),
                                                tx_size, reason);
    cbus_block_add_tx (b2, &shared);
    cbus_block_merkle (b2, cbus_block_header (b2)->merkle_root);
    cbus_block_header (b2)->nonce = 0;
    while (!cbus_header_search (cbus_block_header (b2), 1000))
        ;
    cbus_buf_reset (&bytes);
    cbus_block_encode (b2, &bytes);
    uint8_t b2_hash [CBUS_HASH_BYTES];
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, b2_hash, NULL, reason) == CBUS_CHAIN_SIDE);
    cbus_chain_tip (chain, &tip);
    assert (tip.height == 3);
    //  b3 with a transaction of block 1, which stays: stored while its
    //  branch has no more work (a tie keeps the first-seen tip), refused
    //  once a block on it would make it active, and nothing changes.
    branch.height = 3;
    branch.time_ms = now + 31;
    memcpy (branch.prev_hash, b2_hash, CBUS_HASH_BYTES);
    cbus_block_t *bad = cbus_block_new (&branch);
    cbus_tx_t *old = cbus_tx_new_from_bytes (cbus_tx_bytes (cbus_block_tx (block_one, 0), &tx_size),
                                             tx_size, reason);
    cbus_block_add_tx (bad, &old);
    cbus_block_merkle (bad, cbus_block_header (bad)->merkle_root);
    while (!cbus_header_search (cbus_block_header (bad), 1000))
        ;
    cbus_buf_reset (&bytes);
    cbus_block_encode (bad, &bytes);
    uint8_t bad_hash [CBUS_HASH_BYTES];
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, bad_hash, NULL, reason) == CBUS_CHAIN_SIDE);
    cbus_block_destroy (&bad);
    cbus_header_t on_bad = branch;
    on_bad.height = 4;
    on_bad.time_ms = now + 32;
    memcpy (on_bad.prev_hash, bad_hash, CBUS_HASH_BYTES);
    bad = cbus_block_new (&on_bad);
    while (!cbus_header_search (cbus_block_header (bad), 1000))
        ;
    cbus_buf_reset (&bytes);
    cbus_block_encode (bad, &bytes);
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, hash, &code, reason) == CBUS_CHAIN_INVALID);
    assert (code == CBUS_CODE_CONFIRMED && strstr (reason, "already in the chain"));
    cbus_chain_tip (chain, &tip);
    assert (tip.height == 3 && memcmp (cbus_chain_tip (chain, NULL), three, CBUS_HASH_BYTES) == 0);
    cbus_block_destroy (&bad);
    //  An empty b3 beside it: a tie again, stored on the side.
    bad = cbus_block_new (&branch);
    cbus_block_header (bad)->miner = 3;
    while (!cbus_header_search (cbus_block_header (bad), 1000))
        ;
    cbus_buf_reset (&bytes);
    cbus_block_encode (bad, &bytes);
    uint8_t b3_hash [CBUS_HASH_BYTES];
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, b3_hash, NULL, reason) == CBUS_CHAIN_SIDE);
    cbus_block_destroy (&bad);
    //  b4 on b3: more work, the branch becomes active.
    branch.height = 4;
    branch.time_ms = now + 32;
    memcpy (branch.prev_hash, b3_hash, CBUS_HASH_BYTES);
    cbus_block_t *b4 = cbus_block_new (&branch);
    while (!cbus_header_search (cbus_block_header (b4), 1000))
        ;
    cbus_buf_reset (&bytes);
    cbus_block_encode (b4, &bytes);
    uint8_t b4_hash [CBUS_HASH_BYTES];
    assert (cbus_chain_submit (chain, bytes.data, bytes.size, b4_hash, NULL, reason) == CBUS_CHAIN_CONNECTED);
    assert (cbus_chain_left_count (chain) == 2 && cbus_chain_joined_count (chain) == 3);
    uint8_t check [CBUS_HASH_BYTES];
    cbus_block_hash (cbus_chain_left (chain, 0), check);
    assert (memcmp (check, three, CBUS_HASH_BYTES) == 0);       //  Old tip first
    cbus_block_hash (cbus_chain_joined (chain, 0), check);
    assert (memcmp (check, b2_hash, CBUS_HASH_BYTES) == 0);     //  Lowest first
    cbus_chain_tip (chain, &tip);
    assert (tip.height == 4 && memcmp (cbus_chain_tip (chain, NULL), b4_hash, CBUS_HASH_BYTES) == 0);
    assert (!cbus_chain_is_active (chain, two) && cbus_chain_is_active (chain, b2_hash));
    //  The tx index follows: block 2's other tx left, the shared one moved.
    assert (cbus_chain_tx_where (chain, cbus_tx_id (cbus_block_tx (block_two, 1)), where, &position) == -1);
    assert (cbus_chain_tx_where (chain, cbus_tx_id (cbus_block_tx (block_two, 0)), where, &position) == 0);
    assert (memcmp (where, b2_hash, CBUS_HASH_BYTES) == 0);
    assert (cbus_chain_hash_at (chain, 2, check) == 0 && memcmp (check, b2_hash, CBUS_HASH_BYTES) == 0);
    //  History follows the reorganisation: 1 (block 1) + 1 (b2) now.
    assert (cbus_chain_history (chain, CBUS_HISTORY_USER, "u", UINT64_MAX, 0, page, 4) == 2);
    assert (page [0].height == 2 && memcmp (page [0].txid, cbus_tx_id (cbus_block_tx (block_two, 0)),
                                            CBUS_HASH_BYTES) == 0);
    assert (page [1].height == 1);
    cbus_block_destroy (&b2);
    cbus_block_destroy (&b4);
    cbus_block_destroy (&block_one);
    cbus_block_destroy (&block_two);

    //  Reopened: same tip. Another network on the same folder: refused.
    cbus_chain_destroy (&chain);
    chain = cbus_chain_new (path, "test", &fixed, 8, 3600000, reason);
    assert (chain);
    cbus_chain_tip (chain, &tip);
    assert (tip.height == 4);
    uint8_t at_two [CBUS_HASH_BYTES];
    assert (cbus_chain_hash_at (chain, 2, at_two) == 0);
    assert (memcmp (at_two, b2_hash, CBUS_HASH_BYTES) == 0);
    assert (cbus_chain_hash_at (chain, 5, at_two) == -1);
    cbus_chain_destroy (&chain);
    assert (cbus_chain_new (path, "other", &fixed, 8, 3600000, reason) == NULL);
    assert (strstr (reason, "another network"));
    cbus_buf_free (&bytes);
    char *command = zsys_sprintf ("rm -rf %s", path);
    assert (system (command) == 0);
    zstr_free (&command);
    s_test_retarget (path);
    command = zsys_sprintf ("rm -rf %s", path);
    assert (system (command) == 0);
    zstr_free (&command);
    s_test_anchor_cost (path);
    command = zsys_sprintf ("rm -rf %s", path);
    assert (system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("OK\n");
}
