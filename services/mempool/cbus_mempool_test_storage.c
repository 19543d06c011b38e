/*  =========================================================================
    cbus_mempool_test_storage - self-test: MINE while the chain store is paused

    The chain store says why it takes no blocks, and the kind of fault,
    in its TIP reply and in chain.storage. MINE is refused with that
    code: storage for a failed write or a damaged store (HTTP 500),
    no_space for a full disk (507), and no_space from a chain store that
    gives no code (one older than storage_code). Once it takes blocks
    again, MINE waits for a block as before.
    =========================================================================
*/
#include "cbus_mempool_private.h"

//  Tell the stand-in chainstore what its TIP says of its store: why
//  ("" for writable) and the code (NULL for none, as an older one).
static void
s_stand_in_storage (zactor_t *stand_in, const char *storage, const char *code)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "STORAGE");
    zmsg_addstr (msg, storage);
    if (code)
        zmsg_addstr (msg, code);
    zmsg_send (&msg, stand_in);
    zsock_wait (stand_in);
}

//  Publish chain.storage as the chainstore would (code NULL: none).
static void
s_publish_storage (zsock_t *bus_out, const char *storage, const char *code)
{
    cbus_chain_storage_t event = {
        .writable = !*storage, .storage = cbus_str (storage),
        .has_storage_code = code != NULL, .storage_code = cbus_str (code ? code : "")
    };
    const cbus_msgdef_t *def = &cbus_chain_storage_def;
    cbus_buf_t body = {0};
    msgpack_packer pk = cbus_packer_begin (&body, 2 + cbus_msgdef_count (def, &event));
    cbus_pack_kv_str (&pk, "src", "chainstore");
    cbus_pack_kv_u64 (&pk, "boot", 1);
    cbus_msgdef_pack (def, &event, &pk);
    uint8_t sequence [8] = { 1 };
    zmsg_t *frames = zmsg_new ();
    zmsg_addstr (frames, cbus_msgdef_wire (def));
    zmsg_addmem (frames, body.data, body.size);
    zmsg_addmem (frames, sequence, sizeof (sequence));
    zmsg_send (&frames, bus_out);
    cbus_buf_free (&body);
}

//  Ask MINE until it is answered with code within 5 s; before that only
//  the answer of the state before (was) may come. Returns how long MINE
//  took the last time (ms).
static int64_t
s_mine_until (cbus_client_t *client, cbus_code_t code, cbus_code_t was, const char *reason)
{
    int64_t deadline = cbus_mono_ms () + 5000;
    while (true) {
        int64_t asked = cbus_mono_ms ();
        cbus_reply_t *reply = cbus_client_request (client, CBUS_CMD_MINE, NULL, 0, 10000);
        int64_t took = cbus_mono_ms () - asked;
        assert (reply && !cbus_reply_ok (reply));
        if (reply->code == code) {
            assert (streq (reply->status, code == CBUS_CODE_UNAVAILABLE ? CBUS_STATUS_UNAVAILABLE
                                                                          : CBUS_STATUS_ERROR));
            assert (!reason || strstr (reply->reason, reason));
            cbus_reply_destroy (&reply);
            return took;
        }
        assert (reply->code == was);
        cbus_reply_destroy (&reply);
        assert (cbus_mono_ms () < deadline);
        zclock_sleep (50);
    }
}

void
cbus_mempool_test_chain_paused (cbus_client_t *client, zsock_t *bus_out, zactor_t *stand_in)
{
    //  A failed write: refused at once with code storage (HTTP 500), the
    //  chain store's reason in the message.
    const char *failed = "write failed: /data/chain: IO error: Input/output error";
    s_stand_in_storage (stand_in, failed, "storage");
    s_publish_storage (bus_out, failed, "storage");
    s_mine_until (client, CBUS_CODE_STORAGE, CBUS_CODE_UNAVAILABLE, "Input/output error");
    assert (s_mine_until (client, CBUS_CODE_STORAGE, CBUS_CODE_STORAGE, NULL) < 200);
    //  A full disk, from a chain store that gives no code: no_space (507).
    const char *full = "disk full: /data/chain (0.0 MiB free, 4.0 MiB needed)";
    s_stand_in_storage (stand_in, full, NULL);
    s_publish_storage (bus_out, full, NULL);
    s_mine_until (client, CBUS_CODE_NO_SPACE, CBUS_CODE_STORAGE, "disk full: /data/chain");
    //  The same, said with its code; then a failed write on top of it.
    s_stand_in_storage (stand_in, full, "no_space");
    s_publish_storage (bus_out, full, "no_space");
    assert (s_mine_until (client, CBUS_CODE_NO_SPACE, CBUS_CODE_NO_SPACE, NULL) < 200);
    s_stand_in_storage (stand_in, failed, "storage");
    s_publish_storage (bus_out, failed, "storage");
    s_mine_until (client, CBUS_CODE_STORAGE, CBUS_CODE_NO_SPACE, "Input/output error");
    //  Writable again: MINE waits for a block (none comes: unavailable).
    s_stand_in_storage (stand_in, "", NULL);
    s_publish_storage (bus_out, "", NULL);
    s_mine_until (client, CBUS_CODE_UNAVAILABLE, CBUS_CODE_STORAGE, NULL);
}
