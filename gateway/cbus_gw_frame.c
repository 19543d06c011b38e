/*  =========================================================================
    cbus_gw_frame - strict HTTP/1.1 framing (RFC 9112) of a request head

    See the header. Each refusal names what was wrong, so that a client
    author can fix it; the status is 400, or 501 for a transfer coding
    we do not implement (RFC 9112 section 6.1: only "chunked" is).
    =========================================================================
*/
#include "cbus_gw_frame.h"
#include <microhttpd.h>
#include <pthread.h>

static int
s_refuse (cbus_gw_frame_t *self, unsigned int status, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_refuse (cbus_gw_frame_t *self, unsigned int status, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->reason, sizeof (self->reason), format, args);
    va_end (args);
    self->status = status;
    return -1;
}

//  A 400 whose reason is fault, one of this file's sentences, with the
//  header's name in its one %s.
static int
s_refuse_named (cbus_gw_frame_t *self, const char *fault, const char *name)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf (self->reason, sizeof (self->reason), fault, name);
#pragma GCC diagnostic pop
    self->status = MHD_HTTP_BAD_REQUEST;
    return -1;
}

void
cbus_gw_frame_init (cbus_gw_frame_t *self)
{
    memset (self, 0, sizeof (*self));
}

//  tchar (RFC 9110 section 5.6.2): "!#$%&'*+-.^_`|~", DIGIT, ALPHA; a
//  table, since every byte of every header name goes through it.
static bool s_tchar [256];

static void
s_tchar_init (void)
{
    for (int c = 0; c < 256; c++)
        s_tchar [c] = c < 0x80 && c > 0 && (isalnum (c) || strchr ("!#$%&'*+-.^_`|~", c));
}

bool
cbus_gw_frame_is_token (const char *text, size_t size)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once (&once, s_tchar_init);
    if (size == 0)
        return false;
    for (size_t index = 0; index < size; index++)
        if (!s_tchar [(unsigned char) text [index]])
            return false;
    return true;
}

//  A field value may hold visible characters, spaces, tabs and obs-text;
//  no other control character (a bare CR, a NUL, a LF from a fold).
static bool
s_value_valid (const char *value, size_t size)
{
    for (size_t index = 0; index < size; index++) {
        unsigned char c = (unsigned char) value [index];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

//  value without the optional whitespace around it equals word, in any case.
static bool
s_value_is (const char *value, size_t size, const char *word)
{
    while (size && (*value == ' ' || *value == '\t')) {
        value++;
        size--;
    }
    while (size && (value [size - 1] == ' ' || value [size - 1] == '\t'))
        size--;
    return size == strlen (word) && strncasecmp (value, word, size) == 0;
}

//  key is longer than word and starts with it, in any case.
static bool
s_starts_as (const char *key, size_t size, const char *word)
{
    size_t word_size = strlen (word);
    return size > word_size && strncasecmp (key, word, word_size) == 0;
}

//  A header name, printable and bounded, for the reason.
static void
s_name_safe (const char *key, size_t size, char *out, size_t out_size)
{
    size_t index = 0;
    for (; index < size && index + 1 < out_size; index++) {
        char c = key [index];
        out [index] = (c < 0x20 || c > 0x7e || c == '"') ? '?' : c;
    }
    out [index] = 0;
}

void
cbus_gw_frame_layout (cbus_gw_frame_t *self, const char *version, const char *head, size_t size)
{
    self->end = head + size;
    self->cursor = version + strlen (version);
    if ((uintptr_t) self->cursor < (uintptr_t) head || (uintptr_t) self->cursor >= (uintptr_t) self->end)
        self->cursor = NULL;        //  Not in the head: refused at the first check
}

//  The CRLF (two NULs, as MHD left it) at the cursor, then at is next.
static bool
s_layout_follows (cbus_gw_frame_t *self, const char *at)
{
    const char *cursor = self->cursor;
    return cursor && (uintptr_t) cursor + 2 <= (uintptr_t) self->end
        && cursor [0] == 0 && cursor [1] == 0 && at == cursor + 2;
}

//  Where one header lies: right after the last line, its name, the NUL
//  MHD wrote over the colon, spaces or tabs, its value, its line's end.
static bool
s_layout_header (cbus_gw_frame_t *self, const char *key, size_t key_size,
                 const char *value, size_t value_size)
{
    if (!key || !value || !s_layout_follows (self, key))
        return false;
    uintptr_t end = (uintptr_t) self->end;
    if ((uintptr_t) key + key_size >= end || key [key_size] != 0
    ||  (uintptr_t) value < (uintptr_t) key + key_size + 1
    ||  (uintptr_t) value + value_size >= end)
        return false;
    for (const char *at = key + key_size + 1; at < value; at++)
        if (*at != ' ' && *at != '\t')
            return false;
    self->cursor = value + value_size;
    return true;
}

int
cbus_gw_frame_header (cbus_gw_frame_t *self, const char *key, size_t key_size,
                      const char *value, size_t value_size)
{
    if (self->status)
        return -1;
    //  Each fault's sentence names the header (%s); the name is made
    //  printable only for a refusal.
    const char *fault = NULL;
    if (!cbus_gw_frame_is_token (key, key_size))
        fault = "Bad header name \"%s\": a name is a token (letters, digits and "
                "!#$%%&'*+-.^_`|~), with no space before its colon";
    else
    //  MHD glues a folded line (obs-fold: a line starting with a space)
    //  to the previous header's NAME, so "Content-Length: 1\r\n 0" is a
    //  header "Content-Length0": a proxy would read a length (or refuse),
    //  MHD none. A name that only starts like a framing header is refused.
    if (s_starts_as (key, key_size, MHD_HTTP_HEADER_CONTENT_LENGTH)
    ||  s_starts_as (key, key_size, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        fault = "Bad header name \"%s\": a folded line (obs-fold) or a name that "
                "only starts as a framing header";
    else
    if (!value && value_size)
        fault = "Header %s has no value";
    else
    if (self->end && !s_layout_header (self, key, key_size, value, value_size))
        fault = "The line before header %s or its own line holds a NUL, ends without "
                "CRLF, or is folded";
    else
    if (value && !s_value_valid (value, value_size))
        fault = "Header %s holds a control character (a CR, LF or NUL)";
    if (fault) {
        char name [64];
        s_name_safe (key, key_size, name, sizeof (name));
        return s_refuse_named (self, fault, name);
    }
    if (key_size == strlen (MHD_HTTP_HEADER_CONTENT_LENGTH)
    &&  strncasecmp (key, MHD_HTTP_HEADER_CONTENT_LENGTH, key_size) == 0) {
        uint64_t length = 0;
        bool digits = value_size > 0 && value_size <= 19;
        for (size_t index = 0; digits && index < value_size; index++)
            if (isdigit ((unsigned char) value [index]))
                length = length * 10 + (uint64_t) (value [index] - '0');
            else
                digits = false;
        if (!digits)
            return s_refuse (self, MHD_HTTP_BAD_REQUEST,
                             "Content-Length is not a number of bytes");
        if (self->lengths++ == 0)
            self->length = length;
        else
        if (length != self->length)
            self->length_differs = true;
    }
    else
    if (key_size == strlen (MHD_HTTP_HEADER_TRANSFER_ENCODING)
    &&  strncasecmp (key, MHD_HTTP_HEADER_TRANSFER_ENCODING, key_size) == 0) {
        self->chunked_only = self->encodings++ == 0
                          && s_value_is (value, value_size, "chunked");
    }
    return 0;
}

int
cbus_gw_frame_end (cbus_gw_frame_t *self)
{
    if (self->status)
        return -1;
    //  The head ends in the CRLF of the last line and the empty line's:
    //  four NULs, the last one at the end; the bound is checked before
    //  any of them is read.
    if (self->end && !(self->cursor
                    && (uintptr_t) self->cursor + 4 == (uintptr_t) self->end
                    && s_layout_follows (self, self->cursor + 2)
                    && self->cursor [2] == 0 && self->cursor [3] == 0))
        return s_refuse (self, MHD_HTTP_BAD_REQUEST,
                         "The request's last line holds a NUL, or a line ends without CRLF");
    if (self->length_differs)
        return s_refuse (self, MHD_HTTP_BAD_REQUEST,
                         "Content-Length headers differ: the body's length is not known");
    if (self->lengths && self->encodings)
        return s_refuse (self, MHD_HTTP_BAD_REQUEST,
                         "Content-Length and Transfer-Encoding together: send one of them");
    if (self->encodings > 1)
        return s_refuse (self, MHD_HTTP_BAD_REQUEST,
                         "More than one Transfer-Encoding header");
    if (self->encodings && !self->chunked_only)
        return s_refuse (self, MHD_HTTP_NOT_IMPLEMENTED,
                         "Transfer-Encoding not implemented: only \"chunked\" is");
    return 0;
}

//  --------------------------------------------------------------------------
//  Self-test

static int
s_check (const char *const *pairs, unsigned int *status)
{
    cbus_gw_frame_t frame;
    cbus_gw_frame_init (&frame);
    for (; pairs [0]; pairs += 2)
        cbus_gw_frame_header (&frame, pairs [0], strlen (pairs [0]),
                              pairs [1], strlen (pairs [1]));
    int rc = cbus_gw_frame_end (&frame);
    *status = frame.status;
    assert ((rc == 0) == (frame.status == 0));
    assert (rc == 0 || *frame.reason);
    return rc;
}

void
cbus_gw_frame_test (bool verbose)
{
    printf (" * cbus_gw_frame: ");
    unsigned int status;
    const char *plain [] = { "Host", "x", "Content-Length", "12", "Accept", "*/*", NULL };
    assert (s_check (plain, &status) == 0);
    const char *same [] = { "Content-Length", "12", "content-length", "12", NULL };
    assert (s_check (same, &status) == 0);
    const char *chunked [] = { "Transfer-Encoding", " Chunked ", NULL };
    assert (s_check (chunked, &status) == 0);

    const char *differ [] = { "Content-Length", "12", "Content-Length", "13", NULL };
    assert (s_check (differ, &status) == -1 && status == 400);
    const char *both [] = { "Content-Length", "12", "Transfer-Encoding", "chunked", NULL };
    assert (s_check (both, &status) == -1 && status == 400);
    const char *space [] = { "Content-Length ", "12", NULL };
    assert (s_check (space, &status) == -1 && status == 400);
    const char *name [] = { "X Y", "1", NULL };
    assert (s_check (name, &status) == -1 && status == 400);
    const char *bare_cr [] = { "X-A", "1\rX-B: 2", NULL };
    assert (s_check (bare_cr, &status) == -1 && status == 400);
    const char *cr_name [] = { "X\rA", "1", NULL };
    assert (s_check (cr_name, &status) == -1 && status == 400);
    const char *gzip [] = { "Transfer-Encoding", "gzip", NULL };
    assert (s_check (gzip, &status) == -1 && status == 501);
    const char *two_te [] = { "Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked",
                              NULL };
    assert (s_check (two_te, &status) == -1 && status == 400);
    const char *folded [] = { "Content-Length0", "1", NULL };
    assert (s_check (folded, &status) == -1 && status == 400);
    const char *bad_length [] = { "Content-Length", "+12", NULL };
    assert (s_check (bad_length, &status) == -1 && status == 400);
    //  A NUL inside a value, when the length shows it, is refused too.
    cbus_gw_frame_t frame;
    cbus_gw_frame_init (&frame);
    assert (cbus_gw_frame_header (&frame, "X-A", 3, "a\0b", 3) == -1);
    assert (frame.status == 400);
    //  The layout, as MHD 0.9.75 leaves "GET / HTTP/1.1\r\nA: 1\r\nB:  2\r\n\r\n".
    const char good [] = "GET\0/\0HTTP/1.1\0\0A\0 1\0\0B\0  2\0\0\0\0";
    size_t good_size = sizeof (good) - 1;
    cbus_gw_frame_init (&frame);
    cbus_gw_frame_layout (&frame, good + 6, good, good_size);
    assert (cbus_gw_frame_header (&frame, good + 16, 1, good + 19, 1) == 0);
    assert (cbus_gw_frame_header (&frame, good + 22, 1, good + 26, 1) == 0);
    assert (cbus_gw_frame_end (&frame) == 0);
    //  "A: 1<NUL>zz\r\n": MHD's value is "1", the line goes on.
    const char nul [] = "GET\0/\0HTTP/1.1\0\0A\0 1\0zz\0\0B\0 2\0\0\0\0";
    cbus_gw_frame_init (&frame);
    cbus_gw_frame_layout (&frame, nul + 6, nul, sizeof (nul) - 1);
    assert (cbus_gw_frame_header (&frame, nul + 16, 1, nul + 19, 1) == 0);
    assert (cbus_gw_frame_header (&frame, nul + 25, 1, nul + 28, 1) == -1);
    assert (frame.status == 400);
    //  The same in the last header: the head ends later than its line.
    cbus_gw_frame_init (&frame);
    cbus_gw_frame_layout (&frame, nul + 6, nul, sizeof (nul) - 1);
    assert (cbus_gw_frame_header (&frame, nul + 16, 1, nul + 19, 1) == 0);
    assert (cbus_gw_frame_end (&frame) == -1);
    //  A bare LF ("A: 1\nB: 2"): one NUL between the lines.
    const char bare [] = "GET\0/\0HTTP/1.1\0\0A\0 1\0B\0 2\0\0\0\0";
    cbus_gw_frame_init (&frame);
    cbus_gw_frame_layout (&frame, bare + 6, bare, sizeof (bare) - 1);
    assert (cbus_gw_frame_header (&frame, bare + 16, 1, bare + 19, 1) == 0);
    assert (cbus_gw_frame_header (&frame, bare + 21, 1, bare + 24, 1) == -1);
    //  A header that lies outside the head (MHD moved a folded line).
    cbus_gw_frame_init (&frame);
    cbus_gw_frame_layout (&frame, good + 6, good, good_size);
    assert (cbus_gw_frame_header (&frame, "A", 1, good + 19, 1) == -1);
    //  A head that ends right after its last line's CRLF (no empty
    //  line): refused, reading nothing past the head (an exact-size
    //  copy, so that AddressSanitizer sees any byte read beyond it).
    char *cut = (char *) malloc (16);
    assert (cut);
    memcpy (cut, good, 16);             //  "GET\0/\0HTTP/1.1\0\0"
    cbus_gw_frame_init (&frame);
    cbus_gw_frame_layout (&frame, cut + 6, cut, 16);
    assert (cbus_gw_frame_end (&frame) == -1 && frame.status == 400);
    cbus_gw_frame_init (&frame);
    cbus_gw_frame_layout (&frame, cut + 6, cut, 15);     //  One NUL of the CRLF
    assert (cbus_gw_frame_end (&frame) == -1 && frame.status == 400);
    free (cut);
    assert (cbus_gw_frame_is_token ("X-Request-Id", 12));
    assert (!cbus_gw_frame_is_token ("", 0));
    assert (!cbus_gw_frame_is_token ("a\0b", 3));
    assert (!cbus_gw_frame_is_token ("caf\xc3\xa9", 5));
    if (verbose)
        printf ("(%s) ", frame.reason);
    printf ("OK\n");
}
