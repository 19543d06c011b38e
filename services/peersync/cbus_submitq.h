/*  =========================================================================
    cbus_submitq - blocks handed to the chainstore in order, a few at a time

    A sync receives blocks by the hundred and must hand them to the
    chainstore (BLOCK.SUBMIT) in chain order without waiting for it inside
    the loop. The queue sends at most `window` submissions at once through
    a cbus_caller, each with a deadline; the chainstore answers one DEALER's
    requests in the order they came, so the blocks are stored in order and
    their answers come back in order. Each answer (or the UNAVAILABLE made
    locally when the deadline passed) runs the handler, then the next
    queued block goes out.

    A block whose submission timed out may still be stored later, once the
    chainstore wakes up: a submission is idempotent (the second one is a
    duplicate), so a sync that starts again simply finds it there.
    =========================================================================
*/
#ifndef CBUS_SUBMITQ_H_INCLUDED
#define CBUS_SUBMITQ_H_INCLUDED

#include "cbus.h"

typedef struct _cbus_submitq_t cbus_submitq_t;

//  Runs from the loop with each block's answer, in the order pushed. The
//  reply is borrowed. The handler may push and clear, not destroy.
typedef void (cbus_submitq_fn) (void *owner, const uint8_t hash [CBUS_HASH_BYTES],
                                cbus_reply_t *reply);

//  A queue sending through caller (borrowed; it must outlive the queue),
//  at most window at once, each given timeout_ms. NULL if out of memory.
cbus_submitq_t *
    cbus_submitq_new (cbus_caller_t *caller, size_t window, int timeout_ms,
                      cbus_submitq_fn *handler, void *owner);
//  Destroy the queue; blocks in flight are forgotten (no handler runs).
void
    cbus_submitq_destroy (cbus_submitq_t **self_p);
//  Queue a block's bytes (the frame is taken) with its hash. It goes out
//  at once if the window has room. Returns 0, or -1 if out of memory (the
//  frame is destroyed).
int
    cbus_submitq_push (cbus_submitq_t *self, zframe_t **block_p,
                       const uint8_t hash [CBUS_HASH_BYTES]);
//  Drop every queued block and forget those in flight: their answers,
//  when they come, run nothing.
void
    cbus_submitq_clear (cbus_submitq_t *self);
//  Blocks waiting to be sent, and sent but not answered.
size_t
    cbus_submitq_queued (cbus_submitq_t *self);
size_t
    cbus_submitq_in_flight (cbus_submitq_t *self);

void
    cbus_submitq_test (bool verbose);

#endif
