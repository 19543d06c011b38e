/*  =========================================================================
    cbus_peersync_relay - gossip out: what this node newly accepted

    Transactions our mempool accepted are gathered as the bus delivers them
    and leave together in one TX to every linked peer (not over redundant
    links). A block that became our tip is fetched from our chainstore
    (BLOCK.GET, asynchronous) and sent as BLOCK to every linked peer whose
    tip is not that block, unless it came by sync: those hashes are kept
    "quiet" for a while, and forgotten if they never become the tip.
    =========================================================================
*/
#include "cbus_peersync_private.h"

void
peersync_relay_tx (peersync_t *self, const uint8_t *data, size_t size)
{
    peersync_tx_add (&self->relay.txs, data, size);
    //  A message of a bounded size: a peer's queue is counted in messages.
    if (++self->relay.tx_count >= PEERSYNC_TX_BATCH
    ||  self->relay.txs.size >= PEERSYNC_TX_FLUSH_BYTES)
        peersync_relay_flush (self);
}

void
peersync_relay_flush (peersync_t *self)
{
    peersync_relay_t *relay = &self->relay;
    if (relay->tx_count == 0)
        return;
    //  Close the TX body, then send it to every peer.
    peersync_tx_pack (&relay->txs, relay->tx_count, &self->message);
    PEERSYNC_EACH (self, peer)
        if (peer->state == P_LINKED && !peersync_peer_redundant (self, peer))
            peersync_send (self, peer, CBUS_P2P_TX, &self->message);
    cbus_buf_reset (&relay->txs);
    relay->tx_count = 0;
}

static void
s_on_block_fetched (const cbus_call_t *call, cbus_reply_t *reply)
{
    peersync_t *self = (peersync_t *) call->owner;
    cbus_block_get_reply_t block;
    cbus_header_t header;
    char reason [CBUS_REASON_MAX] = "";
    if (!cbus_reply_ok (reply)) {
        CBUS_DEBUG ("a new tip was not relayed: %s", reply->reason);
        return;
    }
    if (cbus_block_get_reply_decode (cbus_reply_map (reply), &block, reason)
    ||  cbus_block_header_from_bytes (block.block.data, block.block.size, &header)) {
        zsys_warning ("a new tip was not relayed: the chainstore's %s",
                      *reason ? reason : "block does not decode");
        return;
    }
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_header_hash (&header, hash);
    peersync_block_pack (block.block.data, block.block.size, &self->message);
    PEERSYNC_EACH (self, peer)
        //  A peer at or past this block has it, or a better branch.
        if (peer->state == P_LINKED && !peersync_peer_redundant (self, peer)
        &&  memcmp (peer->tip, hash, CBUS_HASH_BYTES) != 0)
            peersync_send (self, peer, CBUS_P2P_BLOCK, &self->message);
}

void
peersync_relay_block (peersync_t *self, const uint8_t hash [CBUS_HASH_BYTES])
{
    cbus_block_get_t get = { .hash = hash, .has_hash = true };
    cbus_block_get_encode (&get, &self->message);
    cbus_caller_send (self->local.chainstore, CBUS_CMD_BLOCK_GET, self->message.data,
                      self->message.size, PEERSYNC_STORE_TIMEOUT_MS, s_on_block_fetched, self, NULL);
}

//  --------------------------------------------------------------------------
//  Quiet hashes. The table keeps its keys where the caller put them
//  (cbus_hash_table_new): each key is its own entry's hash.

typedef struct {
    uint8_t hash [CBUS_HASH_BYTES];     //  The key
    int64_t expiry;                     //  Forgotten after (monotonic ms)
} s_quiet_t;

void
peersync_quiet_add (peersync_t *self, const uint8_t hash [CBUS_HASH_BYTES])
{
    s_quiet_t *entry = (s_quiet_t *) zhashx_lookup (self->relay.quiet, hash);
    if (!entry) {
        entry = (s_quiet_t *) malloc (sizeof (s_quiet_t));
        if (!entry)
            return;
        memcpy (entry->hash, hash, CBUS_HASH_BYTES);
        if (zhashx_insert (self->relay.quiet, entry->hash, entry)) {
            free (entry);
            return;
        }
    }
    entry->expiry = cbus_mono_ms () + PEERSYNC_QUIET_MS;
}

bool
peersync_quiet_take (peersync_t *self, const uint8_t hash [CBUS_HASH_BYTES])
{
    if (!zhashx_lookup (self->relay.quiet, hash))
        return false;
    zhashx_delete (self->relay.quiet, hash);
    return true;
}

void
peersync_relay_tick (peersync_t *self, int64_t now)
{
    peersync_relay_flush (self);
    if (now < self->relay.next_purge)
        return;
    self->relay.next_purge = now + PEERSYNC_QUIET_MS / 4;
    //  Gather first: the table cannot lose entries while it is walked.
    zlistx_t *expired = zlistx_new ();
    if (!expired)
        return;
    for (s_quiet_t *entry = (s_quiet_t *) zhashx_first (self->relay.quiet); entry;
         entry = (s_quiet_t *) zhashx_next (self->relay.quiet))
        if (entry->expiry <= now)
            zlistx_add_end (expired, entry);
    uint8_t hash [CBUS_HASH_BYTES];
    for (s_quiet_t *entry = (s_quiet_t *) zlistx_first (expired); entry;
         entry = (s_quiet_t *) zlistx_next (expired)) {
        memcpy (hash, entry->hash, CBUS_HASH_BYTES);
        zhashx_delete (self->relay.quiet, hash);
    }
    zlistx_destroy (&expired);
}
