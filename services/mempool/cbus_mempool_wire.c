/*  =========================================================================
    cbus_mempool_wire - glue between the mempool and the one definition of
    each message (cbus_msgs.h): the events it publishes, the item
    functions its lists are encoded from, and the reading of the TX.KNOWN
    reply, which three of its calls share.

    The item functions give each item from where it already lives (a
    transaction's users, a block's transactions, an array of hash
    pointers or of transactions), so that no list is built or copied to
    be encoded.
    =========================================================================
*/
#include "cbus_mempool_private.h"

//  --------------------------------------------------------------------------
//  Item functions (cbus_list_item_fn)

const void *
cbus_mempool_hash_item (const void *source, uint32_t index, size_t *size)
{
    *size = CBUS_HASH_BYTES;
    return ((const uint8_t *const *) source) [index];
}

const void *
cbus_mempool_tx_id_item (const void *source, uint32_t index, size_t *size)
{
    *size = CBUS_HASH_BYTES;
    return cbus_tx_id (((cbus_tx_t *const *) source) [index]);
}

//  A transaction's users (source: the cbus_tx_t).
static const void *
s_user_item (const void *source, uint32_t index, size_t *size)
{
    const char *user = cbus_tx_user ((cbus_tx_t *) source, index);
    *size = strlen (user);
    return user;
}

//  A block's transactions as their bytes (source: the cbus_block_t).
static const void *
s_block_tx_item (const void *source, uint32_t index, size_t *size)
{
    return cbus_tx_bytes (cbus_block_tx ((cbus_block_t *) source, index), size);
}

//  --------------------------------------------------------------------------
//  Replies

int
cbus_mempool_known_decode (cbus_reply_t *reply, size_t count, cbus_tx_known_reply_t *msg,
                           char *reason)
{
    if (!cbus_reply_ok (reply))
        return cbus_fail (reason, "%s", reply->reason);
    if (cbus_tx_known_reply_decode (cbus_reply_map (reply), msg, reason))
        return -1;
    if (msg->known.count != count)
        return cbus_fail (reason, "TX.KNOWN reply: known has %u items for %zu txids",
                          msg->known.count, count);
    return 0;
}

//  --------------------------------------------------------------------------
//  Events

void
cbus_mempool_publish_added (cbus_mempool_t *self, cbus_tx_t *tx)
{
    cbus_tx_added_t msg = {
        .txid = cbus_tx_id (tx),
        .users = { .count = (uint32_t) cbus_tx_user_count (tx), .item = s_user_item,
                   .source = tx }
    };
    //  The bytes ride along so that peersync can relay without asking.
    msg.tx.data = cbus_tx_bytes (tx, &msg.tx.size);
    msg.size = msg.tx.size;
    //  When this node first took it, as the pool keeps it (TXS.GET's).
    size_t stored;
    msg.has_received_ms = cbus_pool_get (self->pool, msg.txid, &stored, &msg.received_ms) != NULL;
    cbus_pub_send_msg (self->pub, &cbus_tx_added_def, &msg, &self->event);
    cbus_mempool_mine_added (self);
}

void
cbus_mempool_publish_removed (cbus_mempool_t *self, const uint8_t txid [CBUS_HASH_BYTES])
{
    cbus_tx_removed_t msg = { .txid = txid, .reason = cbus_str ("mined") };
    cbus_pub_send_msg (self->pub, &cbus_tx_removed_def, &msg, &self->event);
}

void
cbus_mempool_publish_work (cbus_mempool_t *self, const cbus_header_t *header,
                           cbus_block_t *block)
{
    uint8_t header_bytes [CBUS_HEADER_BYTES];
    cbus_header_encode (header, header_bytes);
    cbus_miner_work_t msg = {
        .job = self->job,
        .header = header_bytes,
        .txs = { .count = (uint32_t) cbus_block_tx_count (block), .item = s_block_tx_item,
                 .source = block }
    };
    cbus_pub_send_msg (self->pub, &cbus_miner_work_def, &msg, &self->work);
}
