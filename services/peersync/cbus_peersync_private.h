/*  =========================================================================
    cbus_peersync_private - what the files of the peersync service share

    The service is one actor (cbus_peersync.c) whose state is grouped by
    concern, each concern in a file of its own:

        cbus_peersync.c           the shell: actor, loop, bus events,
                                  local requests, the tick
        cbus_peersync_links.c     links: connect, HELLO/REJECT, states,
                                  liveness, redundancy, scores
        cbus_peersync_slots.c     inbound slots: limits, bans kept apart,
                                  ZAP, closed links, eviction
        cbus_peersync_info.c      learning a peer's key: /node/info, the
                                  plaintext directory (both ends)
        cbus_peersync_handlers.c  messages from peers, and serving their
                                  GETHEADERS / GETBLOCKS from our store
        cbus_peersync_sync.c      the sync state machine
        cbus_peersync_relay.c     gossip out: TX and BLOCK
        cbus_peersync_wire.c      each peer message packed and parsed by
                                  one small function

    Nothing here waits for another service: every chainstore call goes
    through self->local.chainstore (cbus_caller) with a deadline, and its
    work goes on in the call's handler. Every bus message (requests,
    replies, events) is written and read through its one definition in
    cbus_msgs.h; only the peer messages are packed here, in _wire.c. A handler that needs a peer finds
    it again by serial number (the peer may be gone meanwhile), and the
    sync's handlers check the sync's epoch (it may have ended meanwhile).

    Names here start with peersync_ (not cbus_): nothing outside this
    directory uses them.
    =========================================================================
*/
#ifndef CBUS_PEERSYNC_PRIVATE_H_INCLUDED
#define CBUS_PEERSYNC_PRIVATE_H_INCLUDED

#include "cbus_peersync.h"
#include <sys/socket.h>
#include "cbus_peers.h"
#include "cbus_identity.h"
#include "cbus_fetch.h"
#include "cbus_submitq.h"
#include "cbus_evict.h"
#include "cbus_bans.h"

//  Most addresses taken in one PEER.ADD.
#define PEERSYNC_MAX_ADD            256
//  Most peers linked to us from outside: peersync/max_inbound.
//  Timer granularity; STATUS and HELLO intervals.
#define PEERSYNC_TICK_MS            100
#define PEERSYNC_STATUS_MS          2000
#define PEERSYNC_HELLO_MS           2000
//  A peer silent this long is no longer linked (it sends STATUS every 2 s).
#define PEERSYNC_SILENT_MS          7000
//  How often an unreachable peer's info is asked for again, and a peer
//  that refused us (or we it) is tried again; a full one sooner.
#define PEERSYNC_RETRY_MS           3000
#define PEERSYNC_REFUSED_RETRY_MS   60000
#define PEERSYNC_FULL_RETRY_MS      10000
//  How long a peer may take to answer a sync request before it is
//  scored down. Our own chainstore's time does not count.
#define PEERSYNC_SYNC_TIMEOUT_MS    15000
//  After our chainstore failed a sync, wait this long before the next.
#define PEERSYNC_SYNC_RETRY_MS      1000
//  Scores: start at 0, cut off at PEERSYNC_BAN_SCORE for peersync/ban_ms.
#define PEERSYNC_BAN_SCORE          (-100)
#define PEERSYNC_MALFORMED_COST     10
#define PEERSYNC_INVALID_BLOCK_COST 50
#define PEERSYNC_TIMEOUT_COST       10
//  Sync batch sizes.
#define PEERSYNC_HEADERS_BATCH      2000
#define PEERSYNC_BLOCKS_BATCH       100
#define PEERSYNC_BLOCKS_BYTES       (4 * 1024 * 1024)
//  Transactions gossiped in one TX message; most taken in one.
#define PEERSYNC_TX_BATCH           256
#define PEERSYNC_TX_MAX             (4 * PEERSYNC_TX_BATCH)
//  Deadlines of our chainstore calls. A submission validates a whole
//  block; the rest are index lookups.
#define PEERSYNC_SUBMIT_TIMEOUT_MS  10000
#define PEERSYNC_STORE_TIMEOUT_MS   5000
#define PEERSYNC_TIP_TIMEOUT_MS     2000
//  Synced blocks handed to the chainstore at once (in order), and gossiped
//  blocks in flight at once (more are dropped: sync brings them). What a
//  peer's GETHEADERS / GETBLOCKS may hold us to: see Peer budgets below.
#define PEERSYNC_SUBMIT_WINDOW      8
#define PEERSYNC_GOSSIP_WINDOW      16
//  Block hashes not to relay are forgotten after this long.
#define PEERSYNC_QUIET_MS           60000
//  Of a resolve's time, what is spent asking peers before choosing.
#define PEERSYNC_RESOLVE_ASK_MS     2000
//  The plaintext directory listens this far above the peer port (not
//  next to it: nodes on consecutive ports would clash).
#define PEERSYNC_DIRECTORY_OFFSET   1000
//  Longest network id.
#define PEERSYNC_NETWORK_MAX        64

//  --------------------------------------------------------------------------
//  Peer budgets (issue 9, item 5; cbus_peersync_handlers.c): what one peer
//  may cost us. The limits are the peersync/peer_* keys (cbus_config.c).
//  A peer's GETHEADERS / GETBLOCKS waiting to be served are kept as hashes
//  (at most PEERSYNC_SERVE_QUEUE; more are dropped), one at a time at our
//  chainstore; a reply its link does not take (full) is dropped and asked
//  for again once the link takes a message. A relayed transaction our
//  mempool refuses as forged or broken costs its relayer.
#define PEERSYNC_SERVE_QUEUE        2
#define PEERSYNC_BAD_TX_COST        10
//  A TX gossip message is closed at this many bytes of transactions.
#define PEERSYNC_TX_FLUSH_BYTES     (1024 * 1024)
//  Deadline of a relayed transaction at our mempool.
#define PEERSYNC_TX_TIMEOUT_MS      10000
//  A new peer may have this many transactions at our mempool at once; one
//  more for each accepted as new, up to peersync/peer_tx_inflight (slow
//  start: a throw-away key costs the mempool this much before its
//  verdicts ban it).
#define PEERSYNC_TX_WINDOW_START    16

//  --------------------------------------------------------------------------
//  Pending transactions when nodes link (cbus_peersync_pending.c). Each
//  end asks the other for its pending txids (MEMPOOL -> INV, a page at a
//  time, oldest first), asks our mempool which it lacks (TXS.HAVE), and
//  fetches those (GETTXS -> TXS) within the relayer's transaction budget;
//  what comes in goes to our mempool as relayed transactions do.
#define PEERSYNC_INV_MAX            1000    //  Txids in one INV
#define PEERSYNC_GETTXS_MAX         256     //  Txids in one GETTXS
//  A peer is served one INV page this often at most (a page costs our
//  mempool a walk of its list); a MEMPOOL that comes sooner waits.
#define PEERSYNC_INV_EVERY_MS       100
//  ... and the node serves this many pages per PEERSYNC_INV_EVERY_MS in
//  all, to the peer that asked longest ago first: many links cannot make
//  the mempool list its pending transactions without end.
#define PEERSYNC_INV_NODE_PAGES     10
//  An exchange that waits this long for us to catch up (a sync runs, or
//  the peer announces more work) is paused, so that it holds no node's
//  turn; it resumes from its cursor once we have caught up.
#define PEERSYNC_CATCHUP_WAIT_MS    10000
//  What the peer owes us in an exchange.
typedef enum { PENDING_IDLE, PENDING_INV, PENDING_TXS } peersync_pending_wait_t;

typedef struct {
    //  Taking the peer's pending transactions
    bool running;               //  An exchange from this peer is under way
    peersync_pending_wait_t waiting;    //  What the peer owes us
    int64_t deadline;           //  ... by then (monotonic ms)
    bool at_pool;               //  Our TXS.HAVE about its last INV is in flight
    uint64_t have_call;         //  ... as this call (a stale reply is not it)
    bool paused;                //  Waited too long for us to catch up
    int64_t wait_since;         //  Since when it waits for that (0: not)
    size_t asked;               //  Txids of the GETTXS in flight (from queue_next)
    uint64_t cursor;            //  Its cursor after the last INV page
    bool more;                  //  ... and whether it has more after it
    uint64_t announced;         //  Txids it announced (at most pending_max)
    uint64_t fetched;           //  ... we lacked and asked for
    uint64_t received;          //  ... it sent back
    uint8_t (*queue) [CBUS_HASH_BYTES];     //  Lacked, not asked for yet
    size_t queue_size;          //  Entries in queue
    size_t queue_next;          //  First not answered yet
    int64_t started;            //  When the exchange began
    //  Serving its asks
    bool inv_at_pool;           //  Our mempool is listing a page for it
    bool inv_wanted;            //  A MEMPOOL waits for its turn
    uint64_t inv_after;         //  ... from this cursor
    int64_t inv_since;          //  ... waiting since (monotonic ms)
    int64_t inv_next;           //  When the next page may be served
    bool txs_at_pool;           //  Our mempool is fetching a GETTXS for it
} peersync_pending_t;

//  One GETHEADERS (locator) or GETBLOCKS (hashes) still to serve.
typedef struct {
    bool headers;               //  GETHEADERS, else GETBLOCKS
    uint64_t limit;             //  Its max headers or max_bytes, lowered to ours
    size_t count;               //  Hashes
    uint8_t hashes [PEERSYNC_BLOCKS_BATCH][CBUS_HASH_BYTES];
} peersync_ask_t;

//  One peer's budget, as used so far.
typedef struct {
    peersync_ask_t asks [PEERSYNC_SERVE_QUEUE];    //  Ring, oldest first
    size_t ask_first;           //  Index of the oldest
    size_t ask_count;           //  Asks waiting (the oldest may be at the store)
    bool at_store;              //  The oldest is at our chainstore
    uint64_t store_call;        //  ... as this call (to cancel it)
    int64_t full_since;         //  Its link refused a reply then (0: not full)
    size_t tx_inflight;         //  Its transactions at our mempool
    size_t tx_window;           //  ... at most (grows as they are accepted)
    double tx_tokens;           //  Transactions it may still relay now
    int64_t tx_refilled;        //  When tx_tokens was last topped up
    uint64_t tx_dropped;        //  Over its budget, not relayed (for the log)
} peersync_peer_budget_t;

//  The limits, and the mempool calls.
typedef struct {
    cbus_caller_t *mempool;     //  Relayed transactions, each with its verdict
    int queue;                  //  Messages queued toward a peer (ZMQ_SNDHWM)
    uint64_t serve_bytes;       //  Block bytes in one BLOCKS we send
    int64_t stall_ms;           //  A link full this long is closed
    double tx_rate;             //  Transactions a second one peer may relay
    size_t tx_inflight;         //  ... and have at our mempool at once
    uint64_t pending_max;       //  Pending txids taken from a peer as it links
    int64_t inv_window_end;     //  INV pages served node-wide: this window ends
    size_t inv_pages;           //  ... pages listed in it
} peersync_budget_t;

//  --------------------------------------------------------------------------
//  Peers

typedef enum {
    P_FETCHING,                 //  Learning the peer's endpoint and key
    P_CONNECTING,               //  Link up, HELLO not answered yet
    P_LINKED,                   //  HELLO exchanged: the peer is in the network
    P_REFUSED,                  //  Another network, ourselves, or it is full
    P_BANNED                    //  Misbehaved; cut off until banned_until
} peersync_state_t;

extern const char *peersync_state_names [];

typedef struct {
    uint64_t serial;            //  Unique in this process: how handlers find it
    char *address;              //  As registered, or NULL for an inbound peer
    char endpoint [CBUS_PEER_ADDRESS_MAX];  //  Its tcp:// peer endpoint
    char public_key [41];       //  Its CurveZMQ key (Z85)
    zsock_t *dealer;            //  Our link to it (outbound peers)
    zsock_t *monitor;           //  The link's connect/disconnect events
    zsock_t *directory;         //  Plaintext INFO query in flight (tcp:// peers)
    zframe_t *routing_id;       //  Its link to us (inbound peers)
    char node_id [17];          //  From its HELLO
    char linked_id [17];        //  The node id it was linked as, or ""
    peersync_state_t state;     //  See peersync_state_t
    char reason [160];          //  Why it is not linked, for PEER.LIST
    uint64_t height;            //  Its tip, from HELLO and STATUS
    uint8_t work [CBUS_U256_BYTES];     //  ... its cumulative work
    uint8_t tip [CBUS_HASH_BYTES];      //  ... and its hash
    int score;                  //  Misbehaviour so far (0 is clean)
    int64_t banned_until;       //  Monotonic ms
    int64_t last_heard;         //  Monotonic ms of its last message
    int64_t last_seen_wall;     //  Wall-clock ms of the same, for users
    int64_t next_try;           //  When to ask for its info again
    int64_t next_hello;         //  When to send HELLO again
    int64_t next_status;        //  When to send STATUS again
    peersync_peer_budget_t budget;  //  What it costs us (peer budgets)
    peersync_pending_t pending; //  Pending transactions exchanged as it links
    bool fetching;              //  An info request is in flight
    bool asked;                 //  Asked for STATUS by a resolve
    bool answered;              //  ... and answered
    void *handle;               //  Its place in the peer list
    //  Its slot (inbound peers; cbus_peersync_slots.c)
    char remote [48];           //  Its address as the socket saw it ("" outbound)
    uint64_t group;             //  ... its address group (cbus_evict_group)
    int fd;                     //  Its connection's descriptor, -1 if not known
    struct sockaddr_storage sockaddr;   //  ... that connection's far end
    socklen_t sockaddr_size;    //  ... 0 if not known
    int64_t connected_at;       //  Monotonic ms it took its slot
    int64_t min_rtt;            //  Lowest STATUS round trip (ms), -1 if none yet
    int64_t ping_sent;          //  When a STATUS asking for one left, 0 if none
    int64_t next_ping;          //  When to ask again
    int64_t last_block;         //  When it last gave us a block we stored, 0 never
    int64_t last_tx;            //  When it last relayed transactions, 0 never
    uint64_t bytes_in;          //  Peer messages' bytes from it (command and body)
    uint64_t bytes_out;         //  ... and to it (sent whole)
} peersync_peer_t;

//  --------------------------------------------------------------------------
//  The state, by concern

//  The services of this node we talk to.
typedef struct {
    zsock_t *router;            //  Local requests (PEER.ADD ...)
    cbus_caller_t *chainstore;  //  Every chainstore call, asynchronous
    zsock_t *sub;               //  mempool.tx.added, chain.block.*
    cbus_pub_t *pub;            //  Events and heartbeats
} peersync_local_t;

//  Our chain, as the chainstore last told us (TIP, then its events).
typedef struct {
    bool known;                 //  TIP answered once
    bool asking;                //  A TIP is in flight
    char network [PEERSYNC_NETWORK_MAX];    //  Network id
    uint8_t genesis [CBUS_HASH_BYTES];      //  Genesis block's hash
    bool has_block_interval;    //  The chainstore gave its target rule:
    uint64_t block_interval;    //  ... seconds between blocks (0: fixed)
    uint64_t height;            //  Our tip's height
    uint8_t work [CBUS_U256_BYTES];         //  ... its cumulative work
    uint8_t tip [CBUS_HASH_BYTES];          //  ... and its hash
    zlistx_t *waiting;          //  NODE.INFO requests waiting for a TIP
} peersync_chain_t;

//  Our peers and the links to them.
typedef struct {
    cbus_identity_t *identity;  //  Our keypair and node id
    cbus_peers_t *registered;   //  The saved peer list
    zlistx_t *peers;            //  peersync_peer_t, registered first then inbound
    zhashx_t *nodes;            //  node id -> links to it, linked nodes only
    size_t linked;              //  Peers linked: mempool.tx.added is
                                //  subscribed to while there are any
    uint64_t next_serial;       //  For the next peer
    zsock_t *p2p;               //  Peer protocol, CurveZMQ server
    zsock_t *directory;         //  Plaintext INFO, + PEERSYNC_DIRECTORY_OFFSET
    zactor_t *fetch;            //  HTTP GETs of /node/info
    char endpoint [CBUS_PEER_ADDRESS_MAX];  //  Our advertised endpoint
} peersync_links_t;

//  What the sync waits for from its peer.
typedef enum {
    SYNC_IDLE,                  //  Nothing (maybe our chainstore)
    SYNC_HEADERS,               //  HEADERS, after our GETHEADERS
    SYNC_BLOCKS                 //  BLOCKS, after our GETBLOCKS
} peersync_wait_t;

//  The sync: one peer at a time. Headers, then blocks in batches; each
//  block goes to the chainstore in order through the submission queue.
typedef struct {
    peersync_peer_t *peer;      //  Who we sync from, or NULL
    uint64_t epoch;             //  Bumped at every start and stop
    peersync_wait_t waiting;    //  What the peer owes us
    int64_t deadline;           //  ... by then (monotonic ms)
    bool asking_store;          //  A LOCATOR or BLOCKS.HAVE is in flight
    uint8_t (*queue) [CBUS_HASH_BYTES];     //  Blocks to fetch, chain order
    size_t queue_size;          //  Entries in queue
    size_t queue_next;          //  First not received yet
    size_t queue_asked;         //  Asked in the outstanding GETBLOCKS
    bool more_headers;          //  The last HEADERS was full: ask after it
    uint8_t last_header [CBUS_HASH_BYTES];  //  The last header's hash
    cbus_submitq_t *submitq;    //  Received blocks on their way to the store
    uint64_t target;            //  Peer's height when the sync started
    uint64_t blocks;            //  Blocks stored by this sync
    int64_t logged;             //  Last progress line
    int64_t retry_at;           //  No sync before this (our store failed)
} peersync_sync_t;

//  Gossip out.
typedef struct {
    cbus_buf_t txs;             //  TX body being gathered (packed bins)
    size_t tx_count;            //  Transactions in it
    zhashx_t *quiet;            //  Block hash -> expiry: not to relay (by sync)
    int64_t next_purge;         //  When quiet is next swept
    size_t submitting;          //  Gossiped blocks at the chainstore
} peersync_relay_t;

//  RESOLVE: ask every peer, sync from the best, answer; all bounded.
typedef struct {
    cbus_request_t *request;    //  The RESOLVE waiting for an answer
    int64_t ask_until;          //  End of the asking phase
    int64_t until;              //  Deadline of the whole resolve
    uint8_t start_tip [CBUS_HASH_BYTES];    //  Our tip when it started
    bool syncing;               //  Asking phase over, waiting for the sync
    int64_t timeout_ms;         //  gateway/resolve_timeout_ms, less a margin
} peersync_resolve_t;

//  A connection to close soon (peersync_slots_hangup).
typedef struct {
    int fd;                     //  Its descriptor
    struct sockaddr_storage sockaddr;   //  Its far end: a reused descriptor differs
    socklen_t sockaddr_size;
    int64_t due;                //  When (monotonic ms)
} peersync_hangup_t;

#define PEERSYNC_HANGUPS 256    //  Connections waiting to be closed, at most
#define PEERSYNC_HANGUP_MS 500  //  Time a REJECT is given to leave first
#define PEERSYNC_QUIET 1024     //  New connections watched for a first message
#define PEERSYNC_SPEAK_MS 5000  //  ... shut if none has come by then

//  Inbound slots: limits, bans, eviction (cbus_peersync_slots.c).
typedef struct {
    size_t max_inbound;         //  peersync/max_inbound
    size_t max_per_address;     //  peersync/max_inbound_per_address
    bool limit_loopback;        //  peersync/limit_loopback: the above on 127/8 too
    int64_t ban_ms;             //  peersync/ban_ms
    cbus_bans_t *bans;          //  Banned keys, at most peersync/max_bans
    zsock_t *zap;               //  ZAP handler: authenticates each handshake
    zsock_t *monitor;           //  The peer ROUTER's disconnections
    uint64_t evict_key;         //  Secret of the keyed group order
    int64_t next_purge;         //  When ended bans are next swept
    int64_t next_report;        //  When the refusal counts are next logged
    size_t refused_full;        //  Refused since the last report: no slot
    size_t refused_address;     //  ... its address has its share
    size_t refused_banned;      //  ... handshakes of banned keys
    size_t evicted;             //  Peers evicted for newcomers
    size_t released;            //  Slots released as their link closed
    size_t hung_up;             //  Connections we closed
    size_t hangups_dropped;     //  ... left open: too many were waiting
    peersync_hangup_t quiet [PEERSYNC_QUIET];  //  New connections, due to speak
    size_t quiet_count;         //  ... how many
    size_t quiet_closed;        //  Connections shut for saying nothing
    peersync_hangup_t hangups [PEERSYNC_HANGUPS];  //  Connections to close soon
    size_t hangup_count;        //  ... how many
} peersync_slots_t;

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    cbus_config_t *config;      //  Settings
    zloop_t *loop;              //  Our reactor
    peersync_local_t local;     //  Services of this node
    peersync_chain_t chain;     //  Our chain
    peersync_links_t links;     //  Peers and links
    peersync_sync_t sync;       //  Catching up
    peersync_relay_t relay;     //  Gossip out
    peersync_resolve_t resolve; //  RESOLVE
    peersync_budget_t budget;   //  Peer budgets' limits
    peersync_slots_t slots;     //  Inbound slots
    int64_t next_beat;          //  Next heartbeat
    cbus_metrics_t *metrics;    //  Carried in each heartbeat
    cbus_buf_t message;         //  Reused body of what we send
} peersync_t;

//  Walk the peer list.
#define PEERSYNC_EACH(self, peer) \
    for (peersync_peer_t *peer = (peersync_peer_t *) zlistx_first ((self)->links.peers); peer; \
         peer = (peersync_peer_t *) zlistx_next ((self)->links.peers))

//  --------------------------------------------------------------------------
//  Peer messages (cbus_peersync_wire.c). Parsed fields borrow from the
//  decoded message; each parse returns 0, or -1 for a malformed message.

//  Where a node's chain is: in HELLO and STATUS.
typedef struct {
    uint64_t height;            //  Of its tip
    uint8_t work [CBUS_U256_BYTES];     //  Cumulative work up to its tip
    uint8_t tip [CBUS_HASH_BYTES];      //  Its tip's hash
} peersync_tip_t;

typedef struct {
    bool reply;                 //  Asks for the peer's HELLO back
    uint64_t version;           //  CBUS_P2P_VERSION
    const char *network;        //  Not terminated: network_size bytes
    size_t network_size;        //  Bytes of network
    uint8_t genesis [CBUS_HASH_BYTES];  //  Its genesis block's hash
    const char *node_id;        //  16 characters, not terminated
    const char *public_key;     //  40 characters (Z85), not terminated
    const char *endpoint;       //  endpoint_size bytes, not terminated
    size_t endpoint_size;       //  Bytes of endpoint
    peersync_tip_t tip;         //  Its chain
} peersync_hello_t;

typedef struct {
    peersync_tip_t tip;         //  Its chain
    bool reply;                 //  Asks for the peer's STATUS at once
} peersync_status_t;

typedef struct {
    cbus_code_t code;           //  wrong_network, banned, full, protocol, invalid
    const char *reason;         //  reason_size bytes, not terminated
    size_t reason_size;         //  Bytes of reason
} peersync_reject_t;

//  INFO's answer; each string not terminated, with its size.
typedef struct {
    const char *network;        //  Network id
    size_t network_size;
    uint8_t genesis [CBUS_HASH_BYTES];  //  Genesis block's hash
    const char *node_id;        //  Node id (16 hex), may be absent ("")
    size_t node_id_size;
    const char *public_key;     //  CurveZMQ key, Z85 (40)
    size_t public_key_size;
    const char *endpoint;       //  Its tcp:// peer endpoint
    size_t endpoint_size;
} peersync_info_t;

void
    peersync_hello_pack (const peersync_hello_t *hello, cbus_buf_t *body);
//  Whether our node takes a parsed HELLO: CBUS_CODE_OK, or the refusal
//  (protocol: another version; wrong_network: another network or
//  genesis; invalid: our own node id).
cbus_code_t
    peersync_hello_check (peersync_t *self, const peersync_hello_t *hello);
int
    peersync_hello_parse (peersync_hello_t *hello, const msgpack_object *map);
void
    peersync_status_pack (const peersync_status_t *status, cbus_buf_t *body);
int
    peersync_status_parse (peersync_status_t *status, const msgpack_object *map);
void
    peersync_reject_pack (cbus_code_t code, const char *reason, cbus_buf_t *body);
int
    peersync_reject_parse (peersync_reject_t *reject, const msgpack_object *map);
void
    peersync_info_pack (const peersync_info_t *info, cbus_buf_t *body);
int
    peersync_info_parse (peersync_info_t *info, const msgpack_object *map);
//  BLOCK {"block": bin}
void
    peersync_block_pack (const void *data, size_t size, cbus_buf_t *body);
int
    peersync_block_parse (const msgpack_object *map, const uint8_t **data, size_t *size);
//  GETHEADERS {"locator": [bin32], "max"}: the locator as the chainstore
//  gave it (a decoded LOCATOR reply's hashes), after first when not NULL,
//  at most CBUS_LOCATOR_MAX in all.
void
    peersync_getheaders_pack (const uint8_t *first, const cbus_list_t *locator, uint64_t max,
                              cbus_buf_t *body);
//  GETBLOCKS {"hashes": [bin32], "max_bytes"}
void
    peersync_getblocks_pack (const uint8_t (*hashes) [CBUS_HASH_BYTES], size_t count,
                             uint64_t max_bytes, cbus_buf_t *body);
//  GETHEADERS and GETBLOCKS as received: the list of 32-byte hashes (at
//  most CBUS_LOCATOR_MAX, PEERSYNC_BLOCKS_BATCH) and the limit, lowered
//  to what the peer asked for.
int
    peersync_getheaders_parse (const msgpack_object *map, const msgpack_object **locator,
                               uint64_t *max);
int
    peersync_getblocks_parse (const msgpack_object *map, const msgpack_object **hashes,
                              uint64_t *max_bytes);
//  Those hashes as a list to encode in the chainstore's HEADERS or
//  BLOCKS.GET request (borrowing the array).
cbus_list_t
    peersync_hash_list (const msgpack_object *hashes);
//  HEADERS {"start", "headers": [bin100]} and BLOCKS {"blocks": [bin]},
//  from the chainstore's decoded HEADERS and BLOCKS.GET replies.
void
    peersync_headers_pack (uint64_t start, const cbus_list_t *headers, cbus_buf_t *body);
void
    peersync_blocks_pack (const cbus_list_t *blocks, cbus_buf_t *body);
//  TX {"txs": [bin]}: each transaction added to txs as a bin, then the
//  count of them closed into a body; parsed, the array (at most
//  PEERSYNC_TX_MAX items, each still to be checked) or NULL.
void
    peersync_tx_add (cbus_buf_t *txs, const uint8_t *data, size_t size);
void
    peersync_tx_pack (const cbus_buf_t *txs, size_t count, cbus_buf_t *body);
const msgpack_object *
    peersync_tx_parse (const msgpack_object *map);
//  HEADERS and BLOCKS as received: the array (at most
//  PEERSYNC_HEADERS_BATCH headers, max blocks; items still to be
//  checked), or NULL.
const msgpack_object *
    peersync_headers_parse (const msgpack_object *map);
const msgpack_object *
    peersync_blocks_parse (const msgpack_object *map, uint32_t max);

//  --------------------------------------------------------------------------
//  Links (cbus_peersync_links.c)

const char *
    peersync_peer_name (peersync_peer_t *peer);
//  A new peer at the end of the list (address NULL: inbound).
peersync_peer_t *
    peersync_peer_add (peersync_t *self, const char *address);
//  Take a peer off the list and destroy it (as it is: a linked peer is
//  set unlinked first by whoever forgets it while running).
void
    peersync_peer_remove (peersync_t *self, peersync_peer_t **peer_p);
//  The peer with this serial, or NULL if it is gone.
peersync_peer_t *
    peersync_peer_by_serial (peersync_t *self, uint64_t serial);
//  Send body as [command][body]; dropped (not queued) when the link is not
//  up or is full, so one slow peer holds nobody up.
void
    peersync_send (peersync_t *self, peersync_peer_t *peer, const char *command,
                   const cbus_buf_t *body);
void
    peersync_send_hello (peersync_t *self, peersync_peer_t *peer, bool want_reply);
void
    peersync_send_status (peersync_t *self, peersync_peer_t *peer, bool want_reply);
void
    peersync_send_reject (peersync_t *self, peersync_peer_t *peer, cbus_code_t code,
                          const char *reason);
//  peer.connected (connected) or peer.disconnected.
void
    peersync_publish_peer (peersync_t *self, peersync_peer_t *peer, bool connected);
void
    peersync_set_state (peersync_t *self, peersync_peer_t *peer, peersync_state_t state,
                        const char *reason);
//  Count a linked peer's links under its (new) node id again.
void
    peersync_relabel (peersync_t *self, peersync_peer_t *peer);
//  A linked peer whose node is linked the other way too, and that way
//  carries the gossip.
bool
    peersync_peer_redundant (peersync_t *self, peersync_peer_t *peer);
//  Score a peer down; at the ban score it is cut off for a while.
void
    peersync_punish (peersync_t *self, peersync_peer_t *peer, int cost, const char *why);
//  Open the CurveZMQ link to a peer whose endpoint and key we know.
void
    peersync_link (peersync_t *self, peersync_peer_t *peer);
//  Close an outbound peer's link (it is opened again from its info).
void
    peersync_unlink (peersync_t *self, peersync_peer_t *peer);
//  zloop reader of the peer ROUTER (peers that linked to us).
int
    peersync_on_p2p (zloop_t *loop, zsock_t *reader, void *arg);
//  Liveness, once a tick: retries, HELLO, STATUS, silence, ban ends.
void
    peersync_links_tick (peersync_t *self, int64_t now);
//  Before each heartbeat: peers by state, blocks left to sync, and the
//  bytes in and out of each peer, into self->metrics. O(peers).
void
    peersync_links_metrics (peersync_t *self);

//  --------------------------------------------------------------------------
//  Inbound slots (cbus_peersync_slots.c)

//  Read the limits, bind the ZAP handler (before the peer ROUTER binds)
//  and watch the ROUTER's disconnections; 0 or -1 (out of memory).
int
    peersync_slots_init (peersync_t *self);
void
    peersync_slots_destroy (peersync_t *self);
//  Remember an inbound peer's ban (its slot is released by the caller
//  or at the next tick).
void
    peersync_slots_ban (peersync_t *self, peersync_peer_t *peer);
//  Close an inbound peer's connection in delay_ms (time for a REJECT to
//  leave), so that a banned, evicted or unread peer stops costing us:
//  ZeroMQ's ROUTER cannot drop one connection, so its TCP connection is
//  shut down under it and ZeroMQ sees it end. The descriptor is shut only
//  while its far end is still the peer's: a descriptor reused meanwhile
//  is left alone. Nothing for an outbound peer (its DEALER is closed).
void
    peersync_slots_hangup (peersync_t *self, peersync_peer_t *peer, int64_t delay_ms);
//  How long a ban lasts, in words ("10 minutes").
void
    peersync_slots_ban_span (peersync_t *self, char *text, size_t size);
//  Inbound peers holding a slot (banned ones do not).
size_t
    peersync_slots_taken (peersync_t *self);
//  Once a tick: release the slots of banned inbound peers, sweep ended
//  bans, log the refusal counts now and then.
void
    peersync_slots_tick (peersync_t *self, int64_t now);

//  --------------------------------------------------------------------------
//  Learning peers' keys (cbus_peersync_info.c)

//  Ask a registered peer who it is (its /node/info, or its directory).
void
    peersync_ask_info (peersync_t *self, peersync_peer_t *peer);
//  zloop readers: the fetcher's answers, and our own directory.
int
    peersync_on_fetched (zloop_t *loop, zsock_t *reader, void *arg);
int
    peersync_on_directory (zloop_t *loop, zsock_t *reader, void *arg);

//  --------------------------------------------------------------------------
//  Messages from peers (cbus_peersync_handlers.c)

//  One message [command][body] from a peer, either direction of link.
void
    peersync_on_peer_message (peersync_t *self, peersync_peer_t *peer,
                              zframe_t *command, zframe_t *body, bool inbound);
//  Whether our chainstore's refusal of a peer's block is the peer's fault
//  (a consensus rule: proof of work, merkle root, bits, height, time,
//  transactions, bytes). Our chainstore not answering or failing
//  (unavailable, storage, internal) never is; an orphan is no fault.
bool
    peersync_refusal_blames_peer (cbus_code_t code);
//  Whether a refusal is our own node's failure, whatever was asked.
bool
    peersync_refusal_is_local (cbus_code_t code);

//  Peer budgets (cbus_peersync_handlers.c)

//  Read the limits and open the mempool caller; 0 or -1.
int
    peersync_budget_init (peersync_t *self, const char *mempool_endpoint);
void
    peersync_budget_destroy (peersync_t *self);
//  Options of a peer socket (ROUTER or DEALER), before it binds or connects.
void
    peersync_budget_socket (peersync_t *self, zsock_t *socket);
//  Once a tick: links found full are probed, and closed if full too long.
void
    peersync_budget_tick (peersync_t *self, int64_t now);
//  Whether our mempool's refusal of a relayed transaction is the
//  relayer's fault: it does not follow the rules (bad_tx), or it is signed
//  and the signature does not verify (bad_signature). Unsigned where we
//  want signatures is our policy, not its fault.
bool
    peersync_tx_refusal_blames_peer (cbus_code_t code, bool is_signed);
void
    peersync_budget_test (bool verbose);

//  Relayed transactions (a TX or TXS's array, checked here item by item)
//  to our mempool, each within the peer's budget (the rest are dropped);
//  how many were sent there.
size_t
    peersync_txs_take (peersync_t *self, peersync_peer_t *peer, const msgpack_object *txs);
//  How many transactions the peer may relay now (its rate and window).
size_t
    peersync_tx_room (peersync_t *self, peersync_peer_t *peer);

//  --------------------------------------------------------------------------
//  Pending transactions when nodes link (cbus_peersync_pending.c)

//  MEMPOOL {"after"}, INV {"txids": [bin32], "next", "more"} (packed from
//  the mempool's decoded TX.PENDING reply), GETTXS {"txids": [bin32]},
//  TXS {"txs": [bin]} (from TXS.GET's; parsed as TX, peersync_tx_parse).
void
    peersync_mempool_pack (uint64_t after, cbus_buf_t *body);
int
    peersync_mempool_parse (const msgpack_object *map, uint64_t *after);
void
    peersync_inv_pack (const cbus_list_t *txids, uint64_t next, bool more, cbus_buf_t *body);
int
    peersync_inv_parse (const msgpack_object *map, const msgpack_object **txids,
                        uint64_t *next, bool *more);
void
    peersync_gettxs_pack (const uint8_t (*txids) [CBUS_HASH_BYTES], size_t count,
                          cbus_buf_t *body);
const msgpack_object *
    peersync_gettxs_parse (const msgpack_object *map);
void
    peersync_txs_pack (const cbus_list_t *txs, cbus_buf_t *body);
//  A peer just linked: ask it for its pending transactions (unless an
//  exchange with its node runs over another link).
void
    peersync_pending_start (peersync_t *self, peersync_peer_t *peer);
//  MEMPOOL, INV, GETTXS, TXS from a linked peer; false for another command.
bool
    peersync_pending_message (peersync_t *self, peersync_peer_t *peer, const char *command,
                              const msgpack_object *map);
//  A verdict came back: the peer's window may take more.
void
    peersync_pending_pump (peersync_t *self, peersync_peer_t *peer);
//  Once a tick: deadlines, pages waiting for their turn, more to fetch.
void
    peersync_pending_tick (peersync_t *self, int64_t now);
//  Free what an exchange holds (the peer is going).
void
    peersync_pending_clear (peersync_peer_t *peer);

//  --------------------------------------------------------------------------
//  Sync (cbus_peersync_sync.c)

int
    peersync_sync_init (peersync_t *self);
void
    peersync_sync_destroy (peersync_t *self);
void
    peersync_sync_start (peersync_t *self, peersync_peer_t *peer);
void
    peersync_sync_stop (peersync_t *self, const char *why);
//  Start a sync from the linked peer with most work, if it has more than us.
void
    peersync_sync_if_behind (peersync_t *self);
void
    peersync_on_headers (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map);
void
    peersync_on_blocks (peersync_t *self, peersync_peer_t *peer, const msgpack_object *map);
//  Once a tick: a peer late with its answer is scored down.
void
    peersync_sync_tick (peersync_t *self, int64_t now);

//  --------------------------------------------------------------------------
//  Gossip out (cbus_peersync_relay.c)

//  A transaction our mempool accepted: gathered, sent at the next flush.
void
    peersync_relay_tx (peersync_t *self, const uint8_t *data, size_t size);
//  Send the gathered transactions to every linked peer.
void
    peersync_relay_flush (peersync_t *self);
//  A block that became our tip: fetched from the chainstore, then sent.
void
    peersync_relay_block (peersync_t *self, const uint8_t hash [CBUS_HASH_BYTES]);
//  Blocks that came by sync are not relayed: peers sync too.
void
    peersync_quiet_add (peersync_t *self, const uint8_t hash [CBUS_HASH_BYTES]);
//  True if the hash was quiet (it is forgotten now).
bool
    peersync_quiet_take (peersync_t *self, const uint8_t hash [CBUS_HASH_BYTES]);
//  Forget quiet hashes that never became our tip.
void
    peersync_relay_tick (peersync_t *self, int64_t now);

//  --------------------------------------------------------------------------
//  Self tests of the parts that stand alone (wire, refusals).
void
    peersync_wire_test (bool verbose);

#endif
