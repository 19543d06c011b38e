/*  =========================================================================
    cbus_mempool_private - the mempool's state, shared by its files

    One zloop thread handles requests, chain events and the replies of the
    chainstore; a verifier thread checks signatures and a writer thread
    runs the synced writes. Nothing on the loop thread waits for another
    service: every call to the chainstore goes through a cbus_caller with
    a deadline, and its handler carries on. The files follow the seams:

      cbus_mempool.c         the class: new, destroy, the loop, the tick,
                             requests other than TX.SUBMIT
      cbus_mempool_intake.c  TX.SUBMIT: decode, verify (thread), back-pressure
      cbus_mempool_commit.c  group commit: one TX.KNOWN per write, the
                             writer thread, the answers
      cbus_mempool_mine.c    MINE: waiters, block templates, miner.work
      cbus_mempool_chain.c   chain events and the chain side's calls: the
                             tip, the walk back after a reorganisation,
                             taking transactions back, reconciling
      cbus_mempool_backup.c  STORE.BACKUP: a point-in-time copy of the store
      cbus_mempool_wire.c    the events it publishes and the item functions
                             its lists are encoded from (every body goes
                             through its one definition, cbus_msgs.h)
    =========================================================================
*/
#ifndef CBUS_MEMPOOL_PRIVATE_H_INCLUDED
#define CBUS_MEMPOOL_PRIVATE_H_INCLUDED

#include "cbus_mempool.h"
#include "cbus_pool.h"

//  How long the mempool waits for the chainstore's answer to one call.
#define CBUS_MEMPOOL_CHAINSTORE_MS 2000
//  Least time a submission's TX.KNOWN is given when the submissions it
//  asks for have already waited (see cbus_mempool_commit.c).
#define CBUS_MEMPOOL_KNOWN_MIN_MS 250
//  How often the tip is checked against the chainstore, and work resent.
#define CBUS_MEMPOOL_TICK_MS 1000
//  Most txids asked about in one TX.KNOWN while reconciling.
#define CBUS_MEMPOOL_KNOWN_BATCH 10000
//  Most blocks walked back from an old tip to find what left the chain.
#define CBUS_MEMPOOL_WALK_BACK_MAX 1000
//  Most submissions handed to the verifier thread at once: small enough
//  that verifying, checking, writing and answering overlap.
#define CBUS_MEMPOOL_CHUNK_MAX 64
//  Most chunks in the verifier's queue: far below the pipe's high-water
//  mark (1,000 messages), so that neither side ever blocks on a send.
#define CBUS_MEMPOOL_CHUNKS_MAX 32
//  Under load a write waits (up to commit_wait_ms) for this many.
#define CBUS_MEMPOOL_WRITE_TARGET 64

//  A submission on its way: verified, checked against the chain, written,
//  answered. Owned by exactly one list (or chunk) at a time.
typedef struct {
    cbus_request_t *request;    //  Answered after the commit
    cbus_tx_t *tx;              //  Decoded transaction
    bool forged;                //  The verifier refused its signature
    char *refusal;              //  Why, or NULL (no memory for the text)
    bool asked;                 //  Its TX.KNOWN question was asked
    bool confirmed;             //  The chain holds it
    bool staged;                //  New: written by the next write
} cbus_mempool_submit_t;

//  Submissions on their way through the verifier, in arrival order.
typedef struct {
    size_t count;
    cbus_mempool_submit_t *submits [CBUS_MEMPOOL_CHUNK_MAX];
} cbus_mempool_chunk_t;

//  A MINE request, answered when the block it asked for connects.
typedef struct {
    cbus_request_t *request;    //  The MINE request
    int64_t deadline;           //  Monotonic ms after which nobody waits
} cbus_mempool_waiter_t;

//  STORE.BACKUP's copy in progress (cbus_mempool_backup.c).
typedef struct _cbus_mempool_backup_t cbus_mempool_backup_t;

//  A tip of ours the active chain may have left unseen.
typedef struct {
    uint8_t hash [CBUS_HASH_BYTES];
    uint64_t height;
} cbus_mempool_old_tip_t;

//  A chain.block.disconnected event whose block is asked for (the event
//  itself is gone by then).
typedef struct {
    uint8_t hash [CBUS_HASH_BYTES];     //  The block that left
    uint8_t prev [CBUS_HASH_BYTES];     //  Its parent, the tip meanwhile
    uint64_t height;                    //  Its height (never 0)
} cbus_mempool_disconnect_t;

struct _cbus_mempool_t {
    cbus_config_t *config;      //  Settings (borrowed)
    zloop_t *loop;              //  Our reactor
    zsock_t *pipe;              //  Actor pipe while running, else NULL
    zsock_t *router;            //  Submissions, MINE, queries
    zsock_t *sub;               //  chain.block.* from the bus
    cbus_caller_t *chainstore;  //  Asynchronous calls to the chainstore
    cbus_pub_t *pub;            //  Events and work into the bus
    cbus_metrics_t *metrics;    //  Carried in our heartbeats; the writer
                                //  thread observes its writes too
    cbus_pool_t *pool;          //  The pending transactions
    char *endpoint;             //  Where the router is bound
    //  Settings
    size_t max_pending;         //  Most pending transactions
    size_t block_max_txs;       //  Most transactions in a template
    size_t batch_max;           //  Most submissions taken in, not written
    bool require_signatures;    //  Node policy: unsigned refused
    int64_t commit_wait_ms;     //  Most a write waits for company
    int64_t mine_timeout_ms;    //  How long a MINE waits

    //  What we know of the chain
    bool tip_known;             //  A TIP answer or event has arrived
    bool tip_stored;            //  tip_hash is the one stored before a restart
    uint64_t tip_height;        //  Height of the active tip
    uint8_t tip_hash [CBUS_HASH_BYTES];
    uint64_t tip_time_ms;       //  Its time
    uint32_t bits;              //  The network's target
    bool chain_full;            //  TIP said the chain store takes no writes
    char chain_storage [CBUS_REASON_MAX];   //  ... and why
    cbus_code_t chain_code;     //  ... and its code: no_space (a full
                                //  disk) or storage (another fault)

    //  The chain side: one call to the chainstore at a time, and chain
    //  events wait in their socket while it runs, so that events and
    //  what the calls bring back are handled in the order they happened.
    bool chainstore_down;       //  Its last call got no answer in time
    bool chain_busy;            //  A chain-side call is in flight
    bool events_paused;         //  sub is not read meanwhile
    bool resync_wanted;         //  Ask for the tip once idle
    bool resync_reconcile;      //  The running resync ends by reconciling
    zlistx_t *old_tips;         //  cbus_mempool_old_tip_t to check, oldest first
    cbus_mempool_old_tip_t walk_from;   //  The old tip being checked
    uint8_t walk_hash [CBUS_HASH_BYTES];    //  The block asked for in the walk
    int walk_steps;             //  Blocks walked back from walk_from
    uint8_t (*reconcile) [CBUS_HASH_BYTES]; //  Pending txids asked about
    size_t reconcile_count;     //  ... how many
    size_t reconcile_done;      //  ... answered so far
    size_t reconcile_removed;   //  ... found confirmed and removed
    cbus_mempool_disconnect_t disconnect;   //  The block asked for after its event

    //  Mining
    zlistx_t *waiters;          //  cbus_mempool_waiter_t, oldest first
    bool template_wanted;       //  Build a template once the chain side is idle
    cbus_header_t template_header;  //  The template being built
    cbus_tx_t **template_txs;   //  ... its candidates (TX.KNOWN in flight)
    size_t template_count;      //  ... how many
    bool template_full;         //  ... no room for more (block_max_txs or size)
    bool job_active;            //  A template is out as miner.work
    uint64_t job;               //  Its number
    uint8_t job_prev [CBUS_HASH_BYTES];     //  Its parent
    uint8_t job_root [CBUS_HASH_BYTES];     //  Its merkle root
    int job_stale_ticks;        //  Ticks the tip has not been its parent
    bool job_full;              //  It had no room for more transactions
    cbus_buf_t work;            //  Its encoded miner.work body
    //  Continuous mining (miner/mode): a template is always out, rebuilt
    //  when the tip moves and when transactions not in it have waited
    //  refresh_ms (see cbus_mempool_mine.c)
    bool continuous;            //  miner/mode is continuous
    int64_t refresh_ms;         //  miner/refresh_ms
    int64_t fresh_since;        //  Monotonic ms the oldest transaction not
                                //  in the template came, 0 if none
    int refresh_timer;          //  One-shot timer at fresh_since + refresh_ms, or -1
    uint64_t refreshes;         //  Templates rebuilt for new transactions
    bool no_tip_logged;         //  Said that no template can be built without a tip

    //  Intake: signatures are verified on their own thread, in arrival
    //  order, while this one checks, stages and answers what came before.
    zactor_t *verifier;         //  Runs the verifier
    size_t verifying;           //  Submissions in the verifier
    size_t chunks;              //  ... in this many chunks
    bool intake_paused;         //  batch_max reached: router not read
    bool stopping;              //  Only writes in flight still end

    //  Group commit, double-buffered: one write at a time runs on the
    //  writer thread while the next batch is checked here. A batch goes
    //  verified -> checking (its TX.KNOWN in flight) -> checked -> staged
    //  and written -> answered.
    zactor_t *writer;           //  Runs cbus_pool_write_run off this thread
    cbus_pool_write_t *writing; //  The write in flight, or NULL
    zlistx_t *writing_submits;  //  Submissions answered when it ends
    zlistx_t *verified;         //  Verified, for the next check
    int64_t verified_since;     //  Monotonic ms the oldest of them came back
    int commit_timer;           //  Timer that starts a waiting check, or -1
    zlistx_t *checking;         //  Their TX.KNOWN is in flight
    size_t checking_asked;      //  ... how many txids it asks about
    zlistx_t *checked;          //  Checked, staged by the next write

    cbus_mempool_backup_t *backup;  //  STORE.BACKUP, made at its first request

    cbus_buf_t reply;           //  Reused reply buffer
    cbus_buf_t event;           //  Reused event buffer
    cbus_buf_t ask;             //  Reused request buffer
    //  Counters for the self-test (pipe command STATS)
    uint64_t writes;            //  Writes started
    uint64_t checks;            //  TX.KNOWN questions about submissions
    uint64_t pauses;            //  Times the intake paused
};

//  Requests (cbus_mempool.c): a decoded request other than TX.SUBMIT
//  (takes it).
void
    cbus_mempool_handle_request (cbus_mempool_t *self, cbus_request_t *request);

//  TX.PENDING, TXS.HAVE, TXS.GET (cbus_mempool_pending.c): true when the
//  request was one of them (answered and destroyed), else false.
bool
    cbus_mempool_pending_handle (cbus_mempool_t *self, cbus_request_t *request);

//  Refuse a TX.SUBMIT (or any request: only a TX.SUBMIT's refusal is
//  counted, by code, in chainbus_mempool_txs_refused_total).
void
    cbus_mempool_refuse (cbus_mempool_t *self, cbus_request_t *request, const char *status,
                         cbus_code_t code, const char *format, ...)
    __attribute__ ((format (printf, 5, 6)));

//  Intake (cbus_mempool_intake.c)
int
    cbus_mempool_intake_start (cbus_mempool_t *self);
void
    cbus_mempool_intake_stop (cbus_mempool_t *self);
int
    cbus_mempool_on_request (zloop_t *loop, zsock_t *reader, void *arg);
void
    cbus_mempool_intake_check (cbus_mempool_t *self);
void
    cbus_mempool_submit_destroy (cbus_mempool_submit_t **submit_p);

//  Group commit (cbus_mempool_commit.c)
int
    cbus_mempool_commit_start (cbus_mempool_t *self);
void
    cbus_mempool_commit_stop (cbus_mempool_t *self);
void
    cbus_mempool_write_next (cbus_mempool_t *self);
size_t
    cbus_mempool_commit_queued (cbus_mempool_t *self);

//  Mining (cbus_mempool_mine.c)
void
    cbus_mempool_mine_request (cbus_mempool_t *self, cbus_request_t *request);
void
    cbus_mempool_mine_tick (cbus_mempool_t *self);
void
    cbus_mempool_template_start (cbus_mempool_t *self);
void
    cbus_mempool_mine_connected (cbus_mempool_t *self, const cbus_block_connected_t *event);
void
    cbus_mempool_mine_stop (cbus_mempool_t *self);
//  The chain store takes no blocks (chain_storage says why): every MINE
//  waiting is answered so at once, and so is every new one meanwhile,
//  with the chain store's code (chain_code).
void
    cbus_mempool_mine_no_space (cbus_mempool_t *self);
//  A transaction became pending (durably): in continuous mode the
//  template is rebuilt once it has waited miner/refresh_ms.
void
    cbus_mempool_mine_added (cbus_mempool_t *self);

//  The chain side (cbus_mempool_chain.c). chainstore_heard notes from a
//  reply whether the chainstore answered (logged when that changes).
void
    cbus_mempool_chainstore_heard (cbus_mempool_t *self, cbus_reply_t *reply,
                                   const char *command);
void
    cbus_mempool_chain_call (cbus_mempool_t *self, const char *command,
                             cbus_buf_t *body, cbus_call_fn *handler);
void
    cbus_mempool_chain_idle (cbus_mempool_t *self);
void
    cbus_mempool_chain_next (cbus_mempool_t *self);
void
    cbus_mempool_resync (cbus_mempool_t *self);
int
    cbus_mempool_on_chain_event (zloop_t *loop, zsock_t *reader, void *arg);
void
    cbus_mempool_chain_stop (cbus_mempool_t *self);

//  Messages (cbus_mempool_wire.c). Item functions for cbus_list_t:
//  hash_item over an array of pointers to hashes or txids (const
//  uint8_t *const *), tx_id_item over an array of transactions (cbus_tx_t
//  *const *): the txid of each.
const void *
    cbus_mempool_hash_item (const void *source, uint32_t index, size_t *size);
const void *
    cbus_mempool_tx_id_item (const void *source, uint32_t index, size_t *size);
//  The TX.KNOWN reply to a question about count txids: 0, or -1 with a
//  reason (the reply's own when the chainstore refused or did not answer).
int
    cbus_mempool_known_decode (cbus_reply_t *reply, size_t count, cbus_tx_known_reply_t *msg,
                               char *reason)
    __attribute__ ((warn_unused_result));
//  mempool.tx.added (the transaction is durable in the pool),
//  mempool.tx.removed (reason "mined"), and miner.work for the job
//  self->job (its body kept in self->work, for resending).
void
    cbus_mempool_publish_added (cbus_mempool_t *self, cbus_tx_t *tx);
void
    cbus_mempool_publish_removed (cbus_mempool_t *self, const uint8_t txid [CBUS_HASH_BYTES]);
void
    cbus_mempool_publish_work (cbus_mempool_t *self, const cbus_header_t *header,
                               cbus_block_t *block);

//  STORE.BACKUP (cbus_mempool_backup.c): handle one request (borrowed;
//  answered now if refused, else once the copy ended); stop a copy in
//  progress (what it wrote is removed), before the loop goes.
void
    cbus_mempool_backup_handle (cbus_mempool_t *self, cbus_request_t *request);
void
    cbus_mempool_backup_cancel (cbus_mempool_t *self, cbus_request_t *request);
void
    cbus_mempool_backup_stop (cbus_mempool_t *self);

//  Self-test (cbus_mempool_test_storage.c): MINE refused with the code
//  the chain store gives while it takes no blocks, against the stand-in
//  chainstore of cbus_mempool_test.c (its pipe command STORAGE).
void
    cbus_mempool_test_chain_paused (cbus_client_t *client, zsock_t *bus_out, zactor_t *stand_in);

//  Self-test (cbus_mempool_test_mine.c): continuous mining, against the
//  stand-in chainstore of cbus_mempool_test.c, with a mempool started
//  with miner/mode continuous and miner/refresh_ms 300.
void
    cbus_mempool_test_continuous (cbus_config_t *config, cbus_client_t *client,
                                  zsock_t *bus_in, zsock_t *bus_out, zactor_t *stand_in);
//  ... and with mempool/block_max_txs 1: a full template is not rebuilt.
void
    cbus_mempool_test_full_template (cbus_config_t *config, cbus_client_t *client,
                                     zsock_t *bus_in);

//  Self-test (cbus_mempool_test_wire.c): assert that a body the mempool
//  sent is byte for byte what its hand-written packing of before wrote
//  for the same values (msg: the body as decoded).
void
    cbus_mempool_test_old_tip (cbus_request_t *request);
void
    cbus_mempool_test_old_tx_known (cbus_request_t *request, const cbus_tx_known_t *msg);
void
    cbus_mempool_test_old_headers (cbus_request_t *request, const cbus_headers_t *msg);
void
    cbus_mempool_test_old_block_get (cbus_request_t *request, const cbus_block_get_t *msg);
void
    cbus_mempool_test_old_tx_submit_reply (cbus_reply_t *reply, const cbus_tx_submit_reply_t *msg);
void
    cbus_mempool_test_old_tx_get_reply (cbus_reply_t *reply, const cbus_pool_tx_reply_t *msg);
void
    cbus_mempool_test_old_info_reply (cbus_reply_t *reply, const cbus_mempool_info_reply_t *msg);
void
    cbus_mempool_test_old_mine_reply (cbus_reply_t *reply, const cbus_mine_reply_t *msg);
void
    cbus_mempool_test_old_tx_added (cbus_event_t *event, const cbus_tx_added_t *msg);
void
    cbus_mempool_test_old_tx_removed (cbus_event_t *event, const cbus_tx_removed_t *msg);
void
    cbus_mempool_test_old_work (cbus_event_t *event, const cbus_miner_work_t *msg);

#endif
