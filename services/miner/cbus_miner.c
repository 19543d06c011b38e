/*  =========================================================================
    cbus_miner - searches proof of work for the mempool's block templates
    =========================================================================
*/
#include "cbus_miner.h"
#include <sodium.h>

//  Nonces tried between two looks at the sockets (~10 ms).
#define S_SLICE 20000

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zsock_t *sub;               //  miner.work and chain.block.connected
    zsock_t *dealer;            //  Block submissions to the chainstore
    cbus_pub_t *pub;            //  Heartbeats
    uint32_t id;                //  Miner id in every header we hash
    //  Current work
    bool working;               //  A template is being searched
    uint64_t job;               //  Its number
    cbus_header_t header;       //  Its header, nonce advancing
    zframe_t *txs;              //  Its transactions: the msgpack body
    uint64_t hashes;            //  Hashes since the last report
    int64_t since;              //  When counting started
    uint64_t next_request;      //  Request id counter
} s_miner_t;

//  Submit the solved block: the template's transactions with our header.
static void
s_submit (s_miner_t *self)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    if (msgpack_unpack_next (&unpacked, (const char *) zframe_data (self->txs),
                             zframe_size (self->txs), &offset) != MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy (&unpacked);
        return;
    }
    const msgpack_object *txs = cbus_msg_get (&unpacked.data, "txs");
    cbus_buf_t block = {0}, body = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &block);
    uint8_t header [CBUS_HEADER_BYTES];
    cbus_header_encode (&self->header, header);
    msgpack_pack_map (&pk, 2);
    cbus_pack_kv_bin (&pk, "header", header, sizeof (header));
    cbus_pack_str (&pk, "txs");
    msgpack_pack_object (&pk, *txs);
    cbus_packer_init (&pk, &body);
    msgpack_pack_map (&pk, 1);
    cbus_pack_kv_bin (&pk, "block", block.data, block.size);
    cbus_request_send (self->dealer, CBUS_CMD_BLOCK_SUBMIT, self->next_request++, body.data, body.size);
    uint8_t hash [CBUS_HASH_BYTES];
    char hex [CBUS_HASH_HEX];
    cbus_header_hash (&self->header, hash);
    zsys_info ("block found job=%" PRIu64 " height=%" PRIu64 " nonce=%" PRIu64 " hash=%s",
               self->job, self->header.height, self->header.nonce, cbus_hash_hex (hash, hex));
    cbus_buf_free (&block);
    cbus_buf_free (&body);
    msgpack_unpacked_destroy (&unpacked);
}

static void
s_take_work (s_miner_t *self, cbus_event_t *event)
{
    const msgpack_object *map = cbus_event_map (event);
    uint64_t job;
    const uint8_t *header_bytes;
    size_t header_size;
    const msgpack_object *txs = cbus_msg_get (map, "txs");
    cbus_header_t header;
    if (cbus_msg_get_u64 (map, "job", &job) || !txs || txs->type != MSGPACK_OBJECT_ARRAY
    ||  cbus_msg_get_bin (map, "header", &header_bytes, &header_size)
    ||  cbus_header_decode (&header, header_bytes, header_size)) {
        zsys_warning ("dropped malformed miner.work");
        return;
    }
    //  The same job again (a resend): keep our place in it.
    if (self->working && job == self->job
    &&  memcmp (header.prev_hash, self->header.prev_hash, CBUS_HASH_BYTES) == 0)
        return;
    self->job = job;
    self->header = header;
    self->header.miner = self->id;
    self->header.nonce = 0;
    zframe_destroy (&self->txs);
    self->txs = zframe_dup (event->body);
    self->working = true;
    CBUS_DEBUG ("work taken job=%" PRIu64 " height=%" PRIu64, job, header.height);
}

static void
s_on_event (s_miner_t *self)
{
    cbus_event_t *event = cbus_event_recv (self->sub);
    if (!event || !event->decoded) {
        cbus_event_destroy (&event);
        return;
    }
    if (streq (event->topic, CBUS_TOPIC_MINER_WORK))
        s_take_work (self, event);
    else
    if (streq (event->topic, CBUS_TOPIC_BLOCK_CONNECTED) && self->working) {
        uint8_t prev [CBUS_HASH_BYTES];
        if (cbus_msg_get_hash (cbus_event_map (event), "prev_hash", prev) == 0
        &&  memcmp (prev, self->header.prev_hash, CBUS_HASH_BYTES) == 0) {
            self->working = false;      //  Stale: that height is taken
            CBUS_DEBUG ("work dropped as stale job=%" PRIu64, self->job);
        }
    }
    cbus_event_destroy (&event);
}

static void
s_on_reply (s_miner_t *self)
{
    zmsg_t *msg = zmsg_recv (self->dealer);
    if (!msg)
        return;
    char *status = zmsg_popstr (msg);
    if (status && !streq (status, CBUS_STATUS_OK)) {
        zframe_t *id = zmsg_pop (msg);
        zframe_t *body = zmsg_pop (msg);
        msgpack_unpacked unpacked;
        msgpack_unpacked_init (&unpacked);
        size_t offset = 0;
        const char *reason = "";
        size_t size = 0;
        if (body && msgpack_unpack_next (&unpacked, (const char *) zframe_data (body),
                                         zframe_size (body), &offset) == MSGPACK_UNPACK_SUCCESS)
            cbus_msg_get_str (&unpacked.data, "reason", &reason, &size);
        zsys_warning ("block refused status=%s reason=\"%.*s\"", status, (int) size, reason);
        msgpack_unpacked_destroy (&unpacked);
        zframe_destroy (&id);
        zframe_destroy (&body);
    }
    zstr_free (&status);
    zmsg_destroy (&msg);
}

void
cbus_miner_actor (zsock_t *pipe, void *args)
{
    cbus_config_t *config = (cbus_config_t *) args;
    s_miner_t self = { .pipe = pipe };
    char *bus_in = cbus_config_endpoint (config, "bus-in");
    char *bus_out = cbus_config_endpoint (config, "bus-out");
    char *store = cbus_config_endpoint (config, "chainstore");
    zsock_signal (pipe, 0);

    self.id = (uint32_t) cbus_config_int (config, "miner/id");
    while (self.id == 0)
        self.id = randombytes_random ();
    char source [32];
    snprintf (source, sizeof (source), "miner.%u", self.id);
    self.sub = zsock_new_sub (bus_out, CBUS_TOPIC_MINER_WORK);
    zsock_set_subscribe (self.sub, CBUS_TOPIC_BLOCK_CONNECTED);
    zsock_set_rcvhwm (self.sub, 100000);
    zsock_set_maxmsgsize (self.sub, CBUS_MSG_MAX_BYTES);
    self.dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (self.dealer, 1000);
    zsock_connect (self.dealer, "%s", store);
    self.pub = cbus_pub_new (bus_in, source);
    assert (self.sub && self.dealer && self.pub);
    zpoller_t *poller = zpoller_new (pipe, self.sub, self.dealer, NULL);
    //  Stop on $TERM from main only, not on a signal: see cbus_service.h.
    zpoller_set_nonstop (poller, true);
    zsys_info ("miner ready id=%u", self.id);
    int64_t next_beat = cbus_mono_ms ();
    self.since = cbus_mono_ms ();
    while (true) {
        int64_t now = cbus_mono_ms ();
        if (now >= next_beat) {
            cbus_pub_heartbeat (self.pub);
            next_beat = now + CBUS_HEARTBEAT_MS;
            if (self.hashes && now - self.since >= 10000) {
                zsys_info ("hash rate=%.0f/s", self.hashes * 1000.0 / (double) (now - self.since));
                self.hashes = 0;
                self.since = now;
            }
        }
        //  Working: peek at the sockets and go on hashing. Idle: block.
        zsock_t *which = NULL;
        if (self.working) {
            if (zsock_events (pipe) & ZMQ_POLLIN)
                which = pipe;
            else
            if (zsock_events (self.sub) & ZMQ_POLLIN)
                which = self.sub;
            else
            if (zsock_events (self.dealer) & ZMQ_POLLIN)
                which = self.dealer;
        }
        else {
            which = (zsock_t *) zpoller_wait (poller, (int) (next_beat - now));
        }
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool stop = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (stop)
                break;
        }
        else
        if (which == self.sub)
            s_on_event (&self);
        else
        if (which == self.dealer)
            s_on_reply (&self);
        else
        if (self.working) {
            bool found = cbus_header_search (&self.header, S_SLICE);
            self.hashes += S_SLICE;
            if (found) {
                s_submit (&self);
                self.working = false;
            }
        }
    }
    zpoller_destroy (&poller);
    zframe_destroy (&self.txs);
    zsock_destroy (&self.sub);
    zsock_destroy (&self.dealer);
    cbus_pub_destroy (&self.pub);
    zstr_free (&bus_in);
    zstr_free (&bus_out);
    zstr_free (&store);
}
