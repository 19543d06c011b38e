/*  =========================================================================
    cbus_tx - a ledger transaction: the seed's six fields, a timestamp and
    an optional Ed25519 signature

    A transaction's identity is its canonical msgpack encoding: a map with
    the keys users, data, dh_parameters, server_public_key,
    receiver_public_key, sender_public_key, timestamp in that order. The
    txid is the double SHA-256 of those bytes; a signature, when present,
    signs the same bytes and is appended as an eighth key (bin, 64 bytes),
    so it never changes the txid. The merkle leaf of a transaction is the
    hash of its full bytes, signature included.

    Both constructors validate everything and return NULL with a reason a
    user can read; nothing from outside reaches an assert.
    =========================================================================
*/
#ifndef CBUS_TX_H_INCLUDED
#define CBUS_TX_H_INCLUDED

typedef struct _cbus_tx_t cbus_tx_t;

//  Consensus limits on one transaction.
#define CBUS_TX_MAX_BYTES       (256 * 1024)
#define CBUS_TX_MAX_USERS       64
#define CBUS_TX_MAX_USER_BYTES  256
#define CBUS_TX_MAX_FIELD_BYTES 4096
#define CBUS_SIG_BYTES          64
#define CBUS_PUBKEY_BYTES       32

//  Build a transaction from a JSON object as posted to /transactions/new.
//  The six seed fields are required; timestamp (integer microseconds) and
//  signature (128 hex digits) are optional; timestamp defaults to now_us.
//  Returns NULL with a reason for missing values ("Missing values: a, b"),
//  wrong types, unknown fields or oversize. A signature is decoded but
//  not verified here: the mempool, which accepts transactions, verifies
//  (cbus_tx_verify), so the edge does not spend the CPU twice.
cbus_tx_t *
    cbus_tx_new_from_json (const json_t *object, uint64_t now_us, char *reason);

//  Decode and check a transaction's full bytes (from the bus, a peer or
//  the disk), signature included. Only the canonical encoding is accepted.
cbus_tx_t *
    cbus_tx_new_from_bytes (const void *data, size_t size, char *reason);

//  The same checks except the signature, which the caller verifies with
//  cbus_tx_verify: the mempool decodes on one thread and verifies on
//  another.
cbus_tx_t *
    cbus_tx_decode (const void *data, size_t size, char *reason);

//  Verify the signature, if any, against sender_public_key. Returns 0 for
//  an unsigned transaction or a good signature, -1 with a reason.
int
    cbus_tx_verify (cbus_tx_t *self, char *reason)
    __attribute__ ((warn_unused_result));

//  Verify the signatures of count transactions, on one thread per CPU (at
//  most 8) when 64 or more are signed. With ok, every one is verified and
//  ok [i] says whether it passed; without (NULL), verification stops soon
//  after a failure. Returns the lowest index that failed, or count.
size_t
    cbus_tx_verify_many (cbus_tx_t **txs, size_t count, bool *ok);

//  Write stored transaction bytes as JSON (as cbus_tx_write_json) without
//  re-validating them: for bytes this node already checked and stored.
//  Returns -1 if they do not decode.
int
    cbus_tx_bytes_to_json (const void *data, size_t size, cbus_buf_t *out)
    __attribute__ ((warn_unused_result));

//  Destroy; safe on NULL, nulls the caller's pointer.
void
    cbus_tx_destroy (cbus_tx_t **self_p);

//  Transaction id (32 bytes, borrowed).
const uint8_t *
    cbus_tx_id (cbus_tx_t *self);
//  Merkle leaf: hash of the full bytes, signature included (borrowed).
const uint8_t *
    cbus_tx_leaf (cbus_tx_t *self);
//  Full encoded bytes (borrowed) and their size.
const uint8_t *
    cbus_tx_bytes (cbus_tx_t *self, size_t *size_p);
//  Canonical bytes without the signature: what the txid hashes and a
//  signature signs (borrowed).
const uint8_t *
    cbus_tx_signed_bytes (cbus_tx_t *self, size_t *size_p);
uint64_t
    cbus_tx_timestamp (cbus_tx_t *self);
bool
    cbus_tx_is_signed (cbus_tx_t *self);
//  The users named by the transaction (a string counts as one user).
//  Borrowed, NUL-terminated.
size_t
    cbus_tx_user_count (cbus_tx_t *self);
const char *
    cbus_tx_user (cbus_tx_t *self, size_t index);
//  The sender's and receiver's key fields as given (borrowed).
const char *
    cbus_tx_sender_key (cbus_tx_t *self);
const char *
    cbus_tx_receiver_key (cbus_tx_t *self);

//  Write the transaction as a JSON object: its fields as given plus
//  "txid" (hex) and, when signed, "signature" (hex).
void
    cbus_tx_write_json (cbus_tx_t *self, cbus_buf_t *out);

void
    cbus_tx_test (bool verbose);

#endif
