/*  =========================================================================
    cbus_code - machine-readable codes of every refusal

    Every non-OK reply on the bus carries a code beside its readable
    reason, and every HTTP error carries the same code beside its message,
    so that a program decides by the code and a person reads the reason.
    The table below is the one list: names on the wire (lowercase words),
    C constants, and the sentence docs/api.md gives for each (a test
    checks that page against this table). A code's name never changes once
    shipped; new codes are added at the end of their group.
    =========================================================================
*/
#ifndef CBUS_CODE_H_INCLUDED
#define CBUS_CODE_H_INCLUDED

//  X (CONSTANT, "wire name", "what it means")
#define CBUS_CODES(X) \
    X (OK,              "ok",              "No refusal (OK replies)") \
    /*  The request itself */ \
    X (INVALID,         "invalid",         "The request or a field of it is malformed or out of range") \
    X (MALFORMED,       "malformed",       "Bytes that do not decode as what they claim to be") \
    X (UNKNOWN_COMMAND, "unknown_command", "The service has no such command") \
    X (NOT_FOUND,       "not_found",       "No such block, transaction, route or height") \
    /*  Transactions and blocks */ \
    X (BAD_TX,          "bad_tx",          "A transaction field breaks the transaction rules") \
    X (BAD_SIGNATURE,   "bad_signature",   "A signature does not verify, or is required and missing") \
    X (DUPLICATE,       "duplicate",       "Already stored: a transaction twice in one block, or a block already known") \
    X (CONFIRMED,       "confirmed",       "The transaction is already in the chain") \
    X (ORPHAN,          "orphan",          "The block's parent is not a known block") \
    X (BAD_POW,         "bad_pow",         "The block's hash does not meet its target") \
    X (BAD_MERKLE_ROOT, "bad_merkle_root", "The block's merkle root does not match its transactions") \
    X (BAD_HEIGHT,      "bad_height",      "The block's height does not follow its parent's") \
    X (BAD_BITS,        "bad_bits",        "The block's target is not the one the rules give") \
    X (BAD_TIME,        "bad_time",        "The block's time is not after the median of its parents, or too far ahead") \
    X (BAD_VERSION,     "bad_version",     "The block's header version is not one this node knows") \
    X (TOO_LARGE,       "too_large",       "Bigger than a limit allows (block, body, batch)") \
    X (WRONG_NETWORK,   "wrong_network",   "Made for another network, genesis or rules") \
    /*  Limits and other services */ \
    X (FULL,            "full",            "A limit was reached; try again later") \
    X (UNAVAILABLE,     "unavailable",     "A service this one needs did not answer in time, or restarted") \
    X (STORAGE,         "storage",         "The storage failed (a damaged store, an I/O error); nothing was changed") \
    X (INTERNAL,        "internal",        "The service failed otherwise; its log says more") \
    X (NO_SPACE,        "no_space",        "The disk is full: nothing was stored; the node goes on by itself once there is room") \
    X (DAMAGED,         "damaged",         "A read found the store damaged (a table file that does not read back)") \
    X (RESTARTING,      "restarting",      "A process restarted 3 times within gateway/restart_window_ms") \
    X (LOCAL_ONLY,      "local_only",      "Taken only from this machine (the ipc bus, or tcp from loopback)") \
    X (STALE,           "stale",           "What the request builds on left the active chain (a reorganisation): ask again") \
    /*  The HTTP edge */ \
    X (BAD_JSON,        "bad_json",        "The body is not the JSON this route takes") \
    X (UNAUTHORIZED,    "unauthorized",    "This route needs the admin token") \
    X (METHOD,          "method_not_allowed", "The route exists with another method") \
    X (BAD_FRAMING,     "bad_framing",     "The HTTP request's framing is ambiguous or not supported (RFC 9112)") \
    /*  Between nodes */ \
    X (BANNED,          "banned",          "The peer is banned for a while") \
    X (PROTOCOL,        "protocol",        "A peer broke the peer protocol (order, version, size)") \
    X (SELF,            "self",            "The address given is this node's own")

typedef enum {
#define CBUS_CODE_ENUM(constant, name, meaning) CBUS_CODE_##constant,
    CBUS_CODES (CBUS_CODE_ENUM)
#undef CBUS_CODE_ENUM
    CBUS_CODE_COUNT
} cbus_code_t;

//  The wire name of a code ("orphan"); "internal" for a value out of range.
const char *
    cbus_code_name (cbus_code_t code);
//  What a code means, one sentence.
const char *
    cbus_code_meaning (cbus_code_t code);
//  The code with this wire name, given as size bytes (need not be
//  terminated). An unknown name gives CBUS_CODE_INTERNAL: a newer peer's
//  code is still a refusal.
cbus_code_t
    cbus_code_from_name (const char *name, size_t size);

void
    cbus_code_test (bool verbose);

#endif
