/*  =========================================================================
    cbus_msg - the bus wire protocol: requests, replies and events

    Requests go DEALER -> ROUTER as [command][request id][msgpack body];
    replies come back [status][request id][msgpack body]. The request id is
    opaque to the server (8 bytes from our clients) and echoed unchanged.
    Status is one of the CBUS_STATUS_* words; every non-OK reply body is a
    map with a "code" (cbus_code.h: what a program decides by) and a
    "reason" string a user can read.

    Events go PUB -> bus XSUB, bus XPUB -> SUB as
    [topic][msgpack body][sequence u64 LE]. Each body is a map whose first
    two keys are "src" (publishing role and instance) and "boot" (u64 random
    per process start), so that a tap can tell a restart from a gap.

    Every command and topic is listed in docs/bus.md; the names below are
    the only place the code spells them.
    =========================================================================
*/
#ifndef CBUS_MSG_H_INCLUDED
#define CBUS_MSG_H_INCLUDED

//  Reply status words
#define CBUS_STATUS_OK        "OK"
#define CBUS_STATUS_INVALID   "INVALID"     //  Input rejected: reason says why
#define CBUS_STATUS_NOTFOUND  "NOTFOUND"    //  No such thing
#define CBUS_STATUS_FULL      "FULL"        //  Resource limit reached, retry later
#define CBUS_STATUS_UNAVAILABLE "UNAVAILABLE" //  A service it depends on did not answer
#define CBUS_STATUS_ERROR     "ERROR"       //  The service failed (storage...)

//  Commands (ROUTER services)
#define CBUS_CMD_PING          "PING"           //  any service
#define CBUS_CMD_TIP           "TIP"            //  chainstore
#define CBUS_CMD_BLOCK_GET     "BLOCK.GET"      //  chainstore
#define CBUS_CMD_BLOCK_SUBMIT  "BLOCK.SUBMIT"   //  chainstore
#define CBUS_CMD_LOCATOR       "LOCATOR"        //  chainstore
#define CBUS_CMD_HEADERS       "HEADERS"        //  chainstore
#define CBUS_CMD_BLOCKS_HAVE   "BLOCKS.HAVE"    //  chainstore
#define CBUS_CMD_BLOCKS_GET    "BLOCKS.GET"     //  chainstore
#define CBUS_CMD_HISTORY       "HISTORY"        //  chainstore
#define CBUS_CMD_CHAIN_PAGE    "CHAIN.PAGE"     //  chainstore
#define CBUS_CMD_TX_GET        "TX.GET"         //  chainstore and mempool
#define CBUS_CMD_TX_KNOWN      "TX.KNOWN"       //  chainstore
#define CBUS_CMD_TX_SUBMIT     "TX.SUBMIT"      //  mempool
#define CBUS_CMD_MINE          "MINE"           //  mempool
#define CBUS_CMD_MEMPOOL_INFO  "MEMPOOL.INFO"   //  mempool
#define CBUS_CMD_PEER_ADD      "PEER.ADD"       //  peersync
#define CBUS_CMD_PEER_LIST     "PEER.LIST"      //  peersync
#define CBUS_CMD_RESOLVE       "RESOLVE"        //  peersync
#define CBUS_CMD_NODE_INFO     "NODE.INFO"      //  peersync
#define CBUS_CMD_TX_PENDING    "TX.PENDING"     //  mempool
#define CBUS_CMD_TXS_HAVE      "TXS.HAVE"       //  mempool
#define CBUS_CMD_TXS_GET       "TXS.GET"        //  mempool
#define CBUS_CMD_PEER_REMOVE   "PEER.REMOVE"    //  peersync
#define CBUS_CMD_STORE_BACKUP  "STORE.BACKUP"   //  chainstore and mempool
#define CBUS_CMD_STORE_BACKUP_CANCEL "STORE.BACKUP.CANCEL"   //  chainstore and mempool
#define CBUS_CMD_BLOCK_LIST    "BLOCK.LIST"     //  chainstore
#define CBUS_CMD_BLOCK_TXS     "BLOCK.TXS"      //  chainstore

//  Peer protocol: node-to-node messages on the CurveZMQ link, frames
//  [command][msgpack body] (docs/p2p.md)
#define CBUS_P2P_HELLO         "HELLO"          //  Both ways, first on a link
#define CBUS_P2P_REJECT        "REJECT"         //  Link refused, with a reason
#define CBUS_P2P_STATUS        "STATUS"         //  Tip announcement, every 2 s
#define CBUS_P2P_TX            "TX"             //  Newly accepted transactions
#define CBUS_P2P_BLOCK         "BLOCK"          //  A newly connected tip block
#define CBUS_P2P_GETHEADERS    "GETHEADERS"     //  Locator -> HEADERS
#define CBUS_P2P_HEADERS       "HEADERS"
#define CBUS_P2P_GETBLOCKS     "GETBLOCKS"      //  Hashes -> BLOCKS
#define CBUS_P2P_BLOCKS        "BLOCKS"
#define CBUS_P2P_INFO          "INFO"           //  Plaintext directory only
#define CBUS_P2P_MEMPOOL       "MEMPOOL"        //  Cursor -> INV (pending txids)
#define CBUS_P2P_INV           "INV"
#define CBUS_P2P_GETTXS        "GETTXS"         //  Txids -> TXS
#define CBUS_P2P_TXS           "TXS"
#define CBUS_P2P_VERSION       1

//  Event topics
#define CBUS_TOPIC_BLOCK_CONNECTED    "chain.block.connected"
#define CBUS_TOPIC_BLOCK_DISCONNECTED "chain.block.disconnected"
#define CBUS_TOPIC_TX_ADDED           "mempool.tx.added"
#define CBUS_TOPIC_TX_REMOVED         "mempool.tx.removed"
#define CBUS_TOPIC_MINER_WORK         "miner.work"
#define CBUS_TOPIC_HEARTBEAT          "node.heartbeat"
#define CBUS_TOPIC_PEER_CONNECTED     "peer.connected"
#define CBUS_TOPIC_PEER_DISCONNECTED  "peer.disconnected"
#define CBUS_TOPIC_CHAIN_STORAGE      "chain.storage"

//  Most frames in one request we accept; bodies are capped by the socket's
//  ZMQ_MAXMSGSIZE (CBUS_MSG_MAX_BYTES) so an oversized one never arrives.
#define CBUS_MSG_MAX_BYTES (CBUS_BLOCK_MAX_BYTES + 1024 * 1024)

//  --------------------------------------------------------------------------
//  Requests and replies

//  Send a request on a DEALER. Returns 0 or -1.
int
    cbus_request_send (zsock_t *dealer, const char *command, uint64_t request_id,
                       const void *body, size_t size);

//  A request as received on a ROUTER. All fields owned by the request.
typedef struct {
    zframe_t *routing_id;           //  Who asked
    char command [32];              //  NUL-terminated command word
    zframe_t *request_id;           //  Echoed in the reply
    zframe_t *body;                 //  msgpack bytes
    msgpack_unpacked unpacked;      //  body decoded
    bool decoded;                   //  unpacked is valid and a map
} cbus_request_t;

//  Receive one request from a ROUTER. Returns a new request, or NULL for a
//  malformed message (logged and dropped). The body must be a msgpack map;
//  when it is not, request->decoded is false and the caller replies INVALID.
cbus_request_t *
    cbus_request_recv (zsock_t *router);
void
    cbus_request_destroy (cbus_request_t **self_p);
//  The decoded body map (valid only when decoded).
const msgpack_object *
    cbus_request_map (cbus_request_t *self);

//  Reply with a status and a body (may be NULL for an empty map).
int
    cbus_reply_send (zsock_t *router, cbus_request_t *request, const char *status,
                     const void *body, size_t size);
//  Reply with a non-OK status and {"code": code, "reason": reason}.
int
    cbus_reply_refuse (zsock_t *router, cbus_request_t *request, const char *status,
                       cbus_code_t code, const char *format, ...)
    __attribute__ ((format (printf, 5, 6)));
//  The usual code of a non-OK status word.
cbus_code_t
    cbus_status_code (const char *status);

//  --------------------------------------------------------------------------
//  A reply as a client sees it: the one type every request path returns,
//  whether the service answered or the reply was made locally because it
//  did not (status UNAVAILABLE, code unavailable, a reason naming it).
typedef struct {
    char status [16];               //  CBUS_STATUS_* word, NUL-terminated
    cbus_code_t code;               //  CBUS_CODE_OK when status is OK
    char reason [CBUS_REASON_MAX];  //  What a user reads; "" when OK
    uint64_t request_id;            //  The request it answers
    zframe_t *body;                 //  msgpack bytes; NULL when made locally
    msgpack_unpacked unpacked;      //  body decoded
    bool decoded;                   //  unpacked holds a map
} cbus_reply_t;

//  Receive one reply [status][request id][body] from a DEALER. NULL for a
//  malformed message (logged, dropped). A non-OK body's code and reason
//  are read into the struct; a body without a code gets the status's.
cbus_reply_t *
    cbus_reply_recv (zsock_t *dealer);
//  A reply made locally, for a call that got none.
cbus_reply_t *
    cbus_reply_new_local (const char *status, cbus_code_t code, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
void
    cbus_reply_destroy (cbus_reply_t **self_p);
//  True when the status is OK and the body a map.
bool
    cbus_reply_ok (const cbus_reply_t *self);
//  The decoded body map, or NULL.
const msgpack_object *
    cbus_reply_map (const cbus_reply_t *self);
//  True when the reply was made locally (the service did not answer).
bool
    cbus_reply_is_local (const cbus_reply_t *self);

//  --------------------------------------------------------------------------
//  A synchronous client: one DEALER, one request at a time, a timeout.
//  For CLIs, tests and simple service-to-service calls; the gateway
//  pipelines instead.
typedef struct _cbus_client_t cbus_client_t;

cbus_client_t *
    cbus_client_new (const char *endpoint);
void
    cbus_client_destroy (cbus_client_t **self_p);
//  Send and wait for the matching reply, which the caller destroys. When
//  none comes within timeout_ms, or once the process is told to stop
//  (SIGINT/SIGTERM, so that a stopping program never waits out a
//  timeout), the reply is made locally: UNAVAILABLE with a reason that
//  names the command. Late replies to earlier calls are discarded. Never
//  NULL.
cbus_reply_t *
    cbus_client_request (cbus_client_t *self, const char *command,
                         const void *body, size_t size, int timeout_ms);

//  --------------------------------------------------------------------------
//  Event publishing with a per-publisher sequence number.
typedef struct _cbus_pub_t cbus_pub_t;

//  Connect a PUB socket to the bus's XSUB endpoint. source names the
//  publisher in every event ("chainstore", "miner.3").
cbus_pub_t *
    cbus_pub_new (const char *endpoint, const char *source);
void
    cbus_pub_destroy (cbus_pub_t **self_p);
//  Start an event body for topic: resets buf, opens a map of fields + its
//  own and packs "src", "boot" and "topic_seq" (this publisher's
//  count of events on that topic before this one, so that a subscriber
//  to some topics only can tell a loss from events it did not ask for).
//  The caller then packs its fields.
void
    cbus_pub_begin (cbus_pub_t *self, const char *topic, msgpack_packer *pk,
                    cbus_buf_t *buf, uint32_t fields);
//  Publish buf as the body of an event on topic.
int
    cbus_pub_send (cbus_pub_t *self, const char *topic, cbus_buf_t *buf);
//  Publish a node.heartbeat: pid, time, the process's resident memory
//  and, once cbus_pub_set_metrics was called, the registry's snapshot.
int
    cbus_pub_heartbeat (cbus_pub_t *self);
//  Make every heartbeat carry this registry's snapshot (borrowed: it
//  must outlive the publisher, or be unset with NULL first).
typedef struct _cbus_metrics_t cbus_metrics_t;
void
    cbus_pub_set_metrics (cbus_pub_t *self, cbus_metrics_t *metrics);
//  (cbus_pub_heartbeat_fill, in cbus_msgs.h, for a role that sends its
//  own heartbeat.)
uint64_t
    cbus_pub_boot (cbus_pub_t *self);
const char *
    cbus_pub_source (cbus_pub_t *self);

//  An event as received on a SUB socket.
typedef struct {
    char topic [64];                //  NUL-terminated topic
    zframe_t *body;                 //  msgpack bytes
    uint64_t sequence;              //  Publisher's sequence number
    msgpack_unpacked unpacked;      //  body decoded
    bool decoded;                   //  unpacked is valid and a map
} cbus_event_t;

//  Receive one event; NULL for a malformed message (dropped).
cbus_event_t *
    cbus_event_recv (zsock_t *sub);
void
    cbus_event_destroy (cbus_event_t **self_p);
const msgpack_object *
    cbus_event_map (cbus_event_t *self);

void
    cbus_msg_test (bool verbose);

#endif
