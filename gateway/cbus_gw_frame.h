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

    MHD cuts a header value at a NUL byte, so a NUL inside a value cannot
    be seen in the strings MHD gives; it is seen in where they lie in the
    buffer (cbus_gw_frame_layout). Limit: MHD writes a NUL over a CR, so a
    NUL just before a line's LF reads as the CR of a CRLF.
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
    const char *cursor;             //  Layout check: end of the last line's text
    const char *end;                //  ... and end of the head, or NULL: no check
    unsigned int status;            //  0, or 400 / 501 once refused
    char reason [CBUS_REASON_MAX];  //  Why, for the client
} cbus_gw_frame_t;

//  Start checking a request's head.
void
    cbus_gw_frame_init (cbus_gw_frame_t *self);
//  Also check where each header lies in MHD's read buffer, which MHD
//  0.9.75 parses in place, overwriting each CR, LF and colon with a NUL:
//  version is the request line's version (MHD's pointer, in the buffer),
//  [head, head + size) the whole head (MHD_CONNECTION_INFO_REQUEST_
//  HEADER_SIZE). Then each header must start right after the previous
//  line's CRLF and end where its line does, and the head right after the
//  last line's CRLF and the empty line: bytes MHD's strings do not show (a
//  value cut at a NUL, the rest of the line hidden), a bare LF, or a
//  folded line (which MHD moves elsewhere) are refused. Headers must be
//  given in the order MHD received them (MHD_get_connection_values_n).
void
    cbus_gw_frame_layout (cbus_gw_frame_t *self, const char *version, const char *head,
                          size_t size);
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
