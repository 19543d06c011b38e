/*  =========================================================================
    fuzz_bus_frames - whole bus messages as a socket delivers them:
    cbus_reply_recv (a reply [status][request id][body], a refusal's
    {code, reason} read into cbus_reply_t), cbus_request_recv (a ROUTER's
    [routing id][command][request id][body]) and cbus_event_recv
    ([topic][body][sequence]). The first byte picks the receiver; the
    rest is frames, each a 2-byte little-endian length then its bytes,
    the last one whatever remains. They go over an inproc DEALER pair to
    the receiver itself.
    =========================================================================
*/
#include "fuzz.h"

static zsock_t *s_sender;               //  Sends the frames
static zsock_t *s_receiver;             //  The receiver under test reads them

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc; (void) argv;
    fuzz_init ();
    s_receiver = zsock_new_dealer ("@inproc://fuzz-bus-frames");
    s_sender = zsock_new_dealer (">inproc://fuzz-bus-frames");
    FUZZ_CHECK (s_receiver && s_sender);
    return 0;
}

static void
s_check_reply (cbus_reply_t *reply)
{
    FUZZ_CHECK (memchr (reply->status, 0, sizeof (reply->status)));
    FUZZ_CHECK (memchr (reply->reason, 0, sizeof (reply->reason)));
    FUZZ_CHECK (cbus_code_name (reply->code));
    bool ok = streq (reply->status, CBUS_STATUS_OK);
    FUZZ_CHECK (ok == (reply->code == CBUS_CODE_OK));
    FUZZ_CHECK (cbus_reply_ok (reply) == (ok && reply->decoded));
    FUZZ_CHECK ((cbus_reply_map (reply) != NULL) == reply->decoded);
    FUZZ_CHECK (!cbus_reply_is_local (reply));
    if (!ok && reply->decoded) {
        //  The refusal as the table reads it agrees on the reason.
        cbus_refusal_t refusal;
        char reason [CBUS_REASON_MAX];
        if (cbus_refusal_decode (cbus_reply_map (reply), &refusal, reason) == 0) {
            size_t size = refusal.reason.size < CBUS_REASON_MAX - 1
                        ? refusal.reason.size : CBUS_REASON_MAX - 1;
            FUZZ_CHECK (strlen (reply->reason) <= size
                     && memcmp (reply->reason, refusal.reason.data, strlen (reply->reason)) == 0);
        }
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int receiver = data [0] % 3;
    data++, size--;
    zmsg_t *msg = zmsg_new ();
    FUZZ_CHECK (msg);
    while (size > 0 && zmsg_size (msg) < 8) {
        size_t length = size;
        if (size >= 2 && zmsg_size (msg) < 7) {
            length = data [0] | (size_t) data [1] << 8;
            data += 2, size -= 2;
            if (length > size)
                length = size;
        }
        FUZZ_CHECK (zmsg_addmem (msg, data, length) == 0);
        data += length, size -= length;
    }
    if (zmsg_size (msg) == 0) {
        zmsg_destroy (&msg);
        return 0;
    }
    FUZZ_CHECK (zmsg_send (&msg, s_sender) == 0);
    if (receiver == 0) {
        cbus_reply_t *reply = cbus_reply_recv (s_receiver);
        if (reply)
            s_check_reply (reply);
        cbus_reply_destroy (&reply);
    }
    else
    if (receiver == 1) {
        cbus_request_t *request = cbus_request_recv (s_receiver);
        if (request) {
            FUZZ_CHECK (memchr (request->command, 0, sizeof (request->command)));
            FUZZ_CHECK ((cbus_request_map (request) != NULL) == request->decoded);
        }
        cbus_request_destroy (&request);
    }
    else {
        cbus_event_t *event = cbus_event_recv (s_receiver);
        if (event)
            FUZZ_CHECK ((cbus_event_map (event) != NULL) == event->decoded);
        cbus_event_destroy (&event);
    }
    return 0;
}
