/*  =========================================================================
    cbus_gw_drain - the bytes of a streamed answer, handed to MHD as it pulls

    A streamed answer (GET /chain, GET /nodes/resolve, GET /events) is a
    libmicrohttpd content reader: MHD calls it with room for up to max
    bytes, and it copies what it has. The route appends text at the end
    of the buffer; the reader takes from the front. Once all is taken the
    buffer starts again at its front, and a buffer grown past the route's
    keep size is freed then, so that one big page or a burst of events
    does not hold its memory for the life of the stream.

    A value, zero-initialised; the route owns it (cbus_gw_drain_free).
    Growth aborts on out of memory, as cbus_buf_t does. Cost: a take is
    one memcpy of what it hands; an append may move the bytes not yet
    taken to the front first (at most once per keep bytes taken).
    =========================================================================
*/
#ifndef CBUS_GW_DRAIN_H_INCLUDED
#define CBUS_GW_DRAIN_H_INCLUDED

#include "cbus.h"

typedef struct {
    cbus_buf_t text;                //  Bytes appended; those from offset not yet taken
    size_t offset;                  //  Bytes of text already taken
} cbus_gw_drain_t;

//  Bytes appended and not yet taken.
size_t
    cbus_gw_drain_queued (const cbus_gw_drain_t *self);

//  Copy up to max bytes not yet taken into buf, and return how many (0
//  when none are left: then the buffer starts again at its front, freed
//  first if it has more than keep bytes allocated).
size_t
    cbus_gw_drain_take (cbus_gw_drain_t *self, char *buf, size_t max, size_t keep);

//  Append size bytes at the end. When the bytes already taken are keep
//  or more, or half the buffer or more, those not yet taken move to the
//  front first (a stream that is never drained to empty, such as events
//  for a slow subscriber, does not grow without bound).
void
    cbus_gw_drain_append (cbus_gw_drain_t *self, const void *data, size_t size, size_t keep);

//  Drop every byte and free the memory; the drain may be used again.
void
    cbus_gw_drain_free (cbus_gw_drain_t *self);

//  Self test of this class.
void
    cbus_gw_drain_test (bool verbose);

#endif
