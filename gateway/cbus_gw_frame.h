/*  =========================================================================
    cbus_gw_frame - strict HTTP/1.1 framing (RFC 9112) of a request head

    libmicrohttpd 0.9.75 frames requests leniently: the first of two
    Content-Length headers wins, Content-Length beside Transfer-Encoding
    is taken, "Content-Length : 5" is a header named "Content-Length "
    (so the body is read as the next request), header names need not be
    tokens, a bare CR stays inside a value, and an unknown transfer coding
    is read until the client closes. Behind a proxy that frames the same
    bytes differently, each is request smuggling.

    The gateway feeds every header MHD parsed (with its lengths) to this
    checker on the access handler's first call for a request, before any
    body byte is read, and answers a refusal there, which makes MHD close
    the connection after the answer: nothing after the head is ever read
    as a request. What MHD itself refuses (a line without a colon, a
    Content-Length that is not a number) gets MHD's own 400 and a close.

    Limit: MHD cuts a header value at a NUL byte and keeps no trace of the
    rest, so a NUL inside a value cannot be seen here (a NUL in a name
    leaves no colon, which MHD refuses).
    =========================================================================
*/
#ifndef CBUS_GW_FRAME_H_INCLUDED
#define CBUS_GW_FRAME_H_INCLUDED

#include "cbus.h"

typedef struct {
    int lengths;                    //  Content-Length headers seen
    uint64_t length;                //  The first one's value
    bool length_differs;            //  A later one has another value
    int encodings;                  //  Transfer-Encoding headers seen
    bool chunked_only;              //  ... and they say exactly "chunked"
    unsigned int status;            //  0, or 400 / 501 once refused
    char reason [CBUS_REASON_MAX];  //  Why, for the client
} cbus_gw_frame_t;

//  Start checking a request's head.
void
    cbus_gw_frame_init (cbus_gw_frame_t *self);
//  Check one header (key and value with their lengths, as MHD gives
//  them). Returns 0, or -1 with self->status and self->reason set; after
//  a refusal further headers are ignored.
int
    cbus_gw_frame_header (cbus_gw_frame_t *self, const char *key, size_t key_size,
                          const char *value, size_t value_size);
//  After the last header: refuse what only the whole head shows (two
//  different lengths, a length with an encoding, an unknown coding).
//  Returns 0, or -1 with status and reason.
int
    cbus_gw_frame_end (cbus_gw_frame_t *self);
//  True when text [0..size) is an RFC 9110 token (a header name).
bool
    cbus_gw_frame_is_token (const char *text, size_t size);

void
    cbus_gw_frame_test (bool verbose);

#endif
