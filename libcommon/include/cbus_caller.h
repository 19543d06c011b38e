/*  =========================================================================
    cbus_caller - asynchronous calls from a service's zloop to another

    A service never waits for another inside its loop: it sends a request
    through a caller and goes on; the call's handler runs from the same
    zloop when the reply comes, or with a reply made locally (UNAVAILABLE,
    code unavailable, "<service> did not answer within N ms") once its
    deadline passes. One caller holds one DEALER to one service and the
    table of its calls in flight (cbus_calls), so a reply that comes after
    its deadline finds nothing and is dropped.

    Handlers run only from the loop, never from inside cbus_caller_send,
    so a handler may send further calls; a send that fails is answered
    like a timeout on the next turn of the loop. Destroying the caller
    drops the calls in flight without running their handlers: whoever
    destroys it is stopping and answers its own waiters.
    =========================================================================
*/
#ifndef CBUS_CALLER_H_INCLUDED
#define CBUS_CALLER_H_INCLUDED

typedef struct _cbus_caller_t cbus_caller_t;

//  Connect to a service's ROUTER at endpoint and read its replies from
//  loop. name is the service as users read it ("chainstore"), for the
//  reasons of locally made replies. NULL if the endpoint is not valid.
cbus_caller_t *
    cbus_caller_new (zloop_t *loop, const char *endpoint, const char *name);
void
    cbus_caller_destroy (cbus_caller_t **self_p);

//  Send command with a msgpack body (NULL: the empty map). handler runs
//  once, with owner and arg in the call, when the reply comes or
//  timeout_ms passes. Returns the call's id (for cbus_caller_cancel).
uint64_t
    cbus_caller_send (cbus_caller_t *self, const char *command,
                      const void *body, size_t size, int timeout_ms,
                      cbus_call_fn *handler, void *owner, void *arg);
//  Forget a call (whoever waited went away); its handler will not run.
void
    cbus_caller_cancel (cbus_caller_t *self, uint64_t id);
//  End every call sent before sent_before (monotonic ms), as a service
//  that restarted since can no longer answer them: their handlers run
//  now with UNAVAILABLE. Returns how many ended.
size_t
    cbus_caller_fail_before (cbus_caller_t *self, int64_t sent_before);
//  Calls in flight.
size_t
    cbus_caller_pending (cbus_caller_t *self);

void
    cbus_caller_test (bool verbose);

#endif
