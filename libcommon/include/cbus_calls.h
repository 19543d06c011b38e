/*  =========================================================================
    cbus_calls - a table of bus requests in flight

    Every request a client sends to a service gets a fresh 64-bit id
    and an entry here, so that replies, which come back in any order, find
    who is waiting for them, and so that a request nobody answered can be
    expired. Lookup and removal by id are O(1) (a hash table); expiry is
    O(1) per expired call, because calls with the same timeout are kept in
    one FIFO list whose deadlines grow with insertion order.

    The table never calls back: its owner takes calls out (by id, by
    expiry, or by cancelling them) and runs each call's handler. A reply
    whose id is no longer in the table (late, or whoever waited went
    away) finds nothing and is dropped by the caller. The gateway keeps
    one table for all its services; cbus_caller wraps one per service
    for a service that calls another from its zloop.
    =========================================================================
*/
#ifndef CBUS_CALLS_H_INCLUDED
#define CBUS_CALLS_H_INCLUDED

typedef struct _cbus_calls_t cbus_calls_t;
typedef struct _cbus_call_t cbus_call_t;

//  What runs when a call ends: with the service's reply, or with one
//  made locally (UNAVAILABLE) when it expired or its service restarted.
//  The reply is borrowed for the handler's duration.
typedef void (cbus_call_fn) (const cbus_call_t *call, cbus_reply_t *reply);

//  One call in flight, as handed back by the table (a copy).
struct _cbus_call_t {
    uint64_t id;                //  Request id on the bus, never 0
    void *owner;                //  Who waits for the reply (borrowed)
    int service;                //  Which service was asked (owner's index)
    cbus_call_fn *handler;      //  What the reply is for (may be NULL)
    void *arg;                  //  The handler's own argument (borrowed)
    int64_t sent;               //  Monotonic ms it was registered (sent)
    int64_t deadline;           //  Monotonic ms after which it expires
};

//  New empty table; request ids start at a random value.
cbus_calls_t *
    cbus_calls_new (void);
//  Destroy the table and any calls left in it; nulls the pointer.
void
    cbus_calls_destroy (cbus_calls_t **self_p);

//  Register a call that expires timeout_ms after now_ms. Returns its id.
uint64_t
    cbus_calls_add (cbus_calls_t *self, void *owner, int service,
                    cbus_call_fn *handler, void *arg,
                    int64_t timeout_ms, int64_t now_ms);
//  Remove the call with this id and copy it into call. Returns 0, or -1
//  if no such call is in flight.
int
    cbus_calls_take (cbus_calls_t *self, uint64_t id, cbus_call_t *call);
//  Remove one call whose deadline is at or before now_ms (the earliest
//  such call of one of the timeout classes) and copy it into call.
//  Returns 0, or -1 if none has expired. Pass INT64_MAX to drain.
int
    cbus_calls_expired (cbus_calls_t *self, int64_t now_ms, cbus_call_t *call);
//  Remove one call to this service registered before sent_before (one the
//  service can no longer answer: it restarted since) and copy it into
//  call. Returns 0, or -1 if there is none. O(calls in flight).
int
    cbus_calls_take_lost (cbus_calls_t *self, int service, int64_t sent_before,
                          cbus_call_t *call);
//  Forget a call (its owner went away). Safe on an unknown id.
void
    cbus_calls_cancel (cbus_calls_t *self, uint64_t id);
//  Number of calls in flight.
size_t
    cbus_calls_size (cbus_calls_t *self);

void
    cbus_calls_test (bool verbose);

#endif
