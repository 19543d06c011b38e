/*  =========================================================================
    cbus_mempool_test_mine - self-test: continuous mining (miner/mode)

    The mempool runs with miner/mode continuous and miner/refresh_ms 300
    against the stand-in chainstore of cbus_mempool_test.c. With nobody
    asking (no MINE), a template goes out; it is not rebuilt while
    nothing changes; a transaction that comes is in a new template after
    refresh_ms, not before; a block connecting on the template's parent
    answers a MINE waiting and brings the next template at once, with no
    transaction in it (empty blocks are mined); and any block connected,
    not only ours, answers a MINE. With mempool/block_max_txs 1, a
    template that is full is not rebuilt for newer transactions.
    =========================================================================
*/
#include "cbus_mempool_private.h"

#define S_REFRESH_MS 300

//  A job as the miners see it.
typedef struct {
    uint64_t job;
    cbus_header_t header;
    uint32_t count;                             //  Its transactions
    uint8_t txids [64][CBUS_HASH_BYTES];        //  ... the first 64 txids
} s_job_t;

//  Tell the stand-in chainstore its tip, and that the block is on the
//  active chain (its HEADERS and BLOCK.GET then say so).
static void
s_stand_in_tip (zactor_t *stand_in, const uint8_t hash [CBUS_HASH_BYTES], uint64_t height,
                cbus_buf_t *bytes)
{
    char text [24];
    snprintf (text, sizeof (text), "%" PRIu64, height);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "BLOCK");
    zmsg_addmem (msg, hash, CBUS_HASH_BYTES);
    zmsg_addmem (msg, bytes->data, bytes->size);
    zmsg_addstr (msg, text);
    zmsg_addstr (msg, "1");
    zmsg_send (&msg, stand_in);
    zsock_wait (stand_in);
    msg = zmsg_new ();
    zmsg_addstr (msg, "TIP");
    zmsg_addmem (msg, hash, CBUS_HASH_BYTES);
    zmsg_addstr (msg, text);
    zmsg_send (&msg, stand_in);
    zsock_wait (stand_in);
}

//  The next miner.work whose job is not skip, within timeout_ms; false
//  if none came.
static bool
s_next_job (zsock_t *bus_in, uint64_t skip, int timeout_ms, s_job_t *job)
{
    zpoller_t *poller = zpoller_new (bus_in, NULL);
    int64_t deadline = cbus_mono_ms () + timeout_ms;
    bool got = false;
    char reason [CBUS_REASON_MAX];
    while (!got && cbus_mono_ms () < deadline
       &&  zpoller_wait (poller, (int) (deadline - cbus_mono_ms ())) == bus_in) {
        cbus_event_t *event = cbus_event_recv (bus_in);
        cbus_miner_work_t work;
        if (event && streq (event->topic, CBUS_TOPIC_MINER_WORK)
        &&  cbus_miner_work_decode (cbus_event_map (event), &work, reason) == 0
        &&  work.job != skip) {
            assert (cbus_header_decode (&job->header, work.header, CBUS_HEADER_BYTES) == 0);
            job->job = work.job;
            job->count = work.txs.count;
            for (uint32_t index = 0; index < work.txs.count && index < 64; index++) {
                cbus_bytes_t bytes = cbus_list_bytes (&work.txs, index);
                cbus_tx_t *tx = cbus_tx_decode (bytes.data, bytes.size, reason);
                assert (tx);
                memcpy (job->txids [index], cbus_tx_id (tx), CBUS_HASH_BYTES);
                cbus_tx_destroy (&tx);
            }
            got = true;
        }
        cbus_event_destroy (&event);
    }
    zpoller_destroy (&poller);
    return got;
}

//  Connect a block with this header and these txids, as the chainstore
//  does: the stand-in first (so that a resync meanwhile agrees), then
//  chain.block.connected. Its hash into hash.
static void
s_connect (zsock_t *bus_out, zactor_t *stand_in, const cbus_header_t *header,
           uint8_t (*txids) [CBUS_HASH_BYTES], uint32_t count, uint8_t hash [CBUS_HASH_BYTES])
{
    cbus_header_hash (header, hash);
    cbus_block_t *block = cbus_block_new (header);
    cbus_buf_t bytes = {0};
    cbus_block_encode (block, &bytes);
    cbus_block_destroy (&block);
    s_stand_in_tip (stand_in, hash, header->height, &bytes);
    cbus_buf_free (&bytes);
    uint8_t work [CBUS_HASH_BYTES] = {0};
    cbus_block_connected_t event = {
        .hash = hash, .height = header->height, .prev_hash = header->prev_hash,
        .merkle_root = header->merkle_root, .time_ms = header->time_ms, .work = work,
        .txids = { .count = count, .items = txids }
    };
    cbus_buf_t body = {0};
    msgpack_packer pk = cbus_packer_begin (&body, 2 + cbus_msgdef_count (
                                           &cbus_block_connected_def, &event));
    cbus_pack_kv_str (&pk, "src", "chainstore");
    cbus_pack_kv_u64 (&pk, "boot", 1);
    cbus_msgdef_pack (&cbus_block_connected_def, &event, &pk);
    uint8_t sequence [8] = { 1 };
    zmsg_t *frames = zmsg_new ();
    zmsg_addstr (frames, CBUS_TOPIC_BLOCK_CONNECTED);
    zmsg_addmem (frames, body.data, body.size);
    zmsg_addmem (frames, sequence, sizeof (sequence));
    zmsg_send (&frames, bus_out);
    cbus_buf_free (&body);
}

//  Submit a new transaction (data n); asserts it was taken.
static void
s_submit (cbus_client_t *client, int n)
{
    char reason [CBUS_REASON_MAX];
    char *text = zsys_sprintf ("{\"users\": \"mine\", \"data\": %d, \"dh_parameters\": \"\","
        " \"server_public_key\": \"\", \"receiver_public_key\": \"\", \"sender_public_key\": \"\","
        " \"timestamp\": 5000}", n);
    json_t *object = cbus_json_parse (text, strlen (text), reason);
    cbus_tx_t *tx = cbus_tx_new_from_json (object, 0, reason);
    assert (tx);
    cbus_tx_submit_t msg;
    msg.tx.data = cbus_tx_bytes (tx, &msg.tx.size);
    cbus_buf_t body = {0};
    cbus_tx_submit_encode (&msg, &body);
    cbus_reply_t *reply = cbus_client_request (client, CBUS_CMD_TX_SUBMIT, body.data, body.size,
                                               10000);
    assert (reply && cbus_reply_ok (reply));
    cbus_reply_destroy (&reply);
    cbus_buf_free (&body);
    cbus_tx_destroy (&tx);
    json_decref (object);
    zstr_free (&text);
}

//  The reply to the MINE sent with request id on dealer: the block's
//  hash and height.
static void
s_mined (zsock_t *dealer, uint64_t id, const uint8_t hash [CBUS_HASH_BYTES], uint64_t height)
{
    zpoller_t *poller = zpoller_new (dealer, NULL);
    assert (zpoller_wait (poller, 5000) == dealer);
    zpoller_destroy (&poller);
    cbus_reply_t *reply = cbus_reply_recv (dealer);
    assert (reply && reply->request_id == id && cbus_reply_ok (reply));
    cbus_mine_reply_t mined;
    char reason [CBUS_REASON_MAX];
    assert (cbus_mine_reply_decode (cbus_reply_map (reply), &mined, reason) == 0);
    assert (memcmp (mined.hash, hash, CBUS_HASH_BYTES) == 0 && mined.height == height);
    cbus_reply_destroy (&reply);
}

void
cbus_mempool_test_continuous (cbus_config_t *config, cbus_client_t *client, zsock_t *bus_in,
                              zsock_t *bus_out, zactor_t *stand_in)
{
    assert (cbus_config_int (config, "miner/refresh_ms") == S_REFRESH_MS);
    //  Nobody asks, yet work goes out; resends aside, nothing new while
    //  nothing changes.
    s_job_t first, next;
    assert (s_next_job (bus_in, 0, 5000, &first));
    assert (!s_next_job (bus_in, first.job, 2 * S_REFRESH_MS, &next));
    //  A new transaction: in a new template on the same parent after
    //  refresh_ms (counted from when it is stored), not before.
    int64_t submitted = cbus_mono_ms ();
    s_submit (client, 31337);
    assert (s_next_job (bus_in, first.job, 5000, &next));
    int64_t took = cbus_mono_ms () - submitted;
    assert (took >= S_REFRESH_MS && took < S_REFRESH_MS + 3000);
    assert (next.count == first.count + 1 && next.count <= 64);
    assert (next.header.height == first.header.height
        &&  memcmp (next.header.prev_hash, first.header.prev_hash, CBUS_HASH_BYTES) == 0);

    //  Our block connects: a MINE waiting has its answer, and the next
    //  template, on it, goes out at once and holds no transaction.
    char *endpoint = cbus_config_endpoint (config, "mempool");
    zsock_t *dealer = zsock_new_dealer (endpoint);
    assert (dealer);
    zstr_free (&endpoint);
    assert (cbus_request_send (dealer, CBUS_CMD_MINE, 9, NULL, 0) == 0);
    zclock_sleep (100);             //  The MINE is in before the block
    uint8_t hash [CBUS_HASH_BYTES];
    int64_t connected = cbus_mono_ms ();
    s_connect (bus_out, stand_in, &next.header, next.txids, next.count, hash);
    s_mined (dealer, 9, hash, next.header.height);
    s_job_t empty;
    assert (s_next_job (bus_in, next.job, 5000, &empty));
    assert (cbus_mono_ms () - connected < CBUS_MEMPOOL_TICK_MS);
    assert (empty.count == 0 && empty.header.height == next.header.height + 1);
    assert (memcmp (empty.header.prev_hash, hash, CBUS_HASH_BYTES) == 0);

    //  A block that is not our template (another miner's, a peer's)
    //  answers a MINE too: it waits for the next block, whoever made it.
    assert (cbus_request_send (dealer, CBUS_CMD_MINE, 10, NULL, 0) == 0);
    zclock_sleep (100);
    cbus_header_t theirs = empty.header;
    memset (theirs.merkle_root, 0x5a, CBUS_HASH_BYTES);
    s_connect (bus_out, stand_in, &theirs, NULL, 0, hash);
    s_mined (dealer, 10, hash, theirs.height);
    assert (s_next_job (bus_in, empty.job, 5000, &next));
    assert (next.header.height == theirs.height + 1);
    zsock_destroy (&dealer);
}

void
cbus_mempool_test_full_template (cbus_config_t *config, cbus_client_t *client, zsock_t *bus_in)
{
    assert (cbus_config_int (config, "mempool/block_max_txs") == 1);
    s_job_t job, next;
    assert (s_next_job (bus_in, 0, 5000, &job));
    uint32_t pending = job.count;
    //  Room for one: a new transaction gets in (if the pool was empty)...
    s_submit (client, 4001);
    if (pending == 0) {
        assert (s_next_job (bus_in, job.job, 5000, &next));
        assert (next.count == 1);
        job = next;
    }
    //  ...but once the template is full, newer ones wait for the next.
    s_submit (client, 4002);
    s_submit (client, 4003);
    assert (!s_next_job (bus_in, job.job, 4 * S_REFRESH_MS, &next));
}
