/*  =========================================================================
    cbus_util - small shared helpers: growable byte buffer, hex, clocks

    cbus_buf_t is a plain growable buffer used to build JSON text and
    msgpack bodies without a round of small allocations per field. Growth
    failures abort (out of memory is not recoverable here), like CZMQ.
    =========================================================================
*/
#ifndef CBUS_UTIL_H_INCLUDED
#define CBUS_UTIL_H_INCLUDED

typedef struct {
    char *data;                 //  Bytes written so far, NUL-terminated
    size_t size;                //  Bytes used, excluding the terminator
    size_t alloc;               //  Bytes allocated
} cbus_buf_t;

//  Buffers are values: zero-initialise (cbus_buf_t b = {0}) or call init.
void
    cbus_buf_init (cbus_buf_t *self);
void
    cbus_buf_free (cbus_buf_t *self);
void
    cbus_buf_reset (cbus_buf_t *self);
void
    cbus_buf_append (cbus_buf_t *self, const void *data, size_t size);
void
    cbus_buf_puts (cbus_buf_t *self, const char *text);
void
    cbus_buf_printf (cbus_buf_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  Hand the bytes to the caller (who frees them); the buffer is emptied.
char *
    cbus_buf_detach (cbus_buf_t *self, size_t *size_p);

//  msgpack_sbuffer-compatible write callback appending to a cbus_buf_t.
int
    cbus_buf_msgpack_write (void *data, const char *buf, size_t len);

//  Lowercase hex of size bytes into out, which must hold 2*size+1 chars.
void
    cbus_hex_encode (const uint8_t *data, size_t size, char *out);
//  Value of one hex digit (either case), or -1.
int
    cbus_hex_digit (char c);
//  Decode exactly size bytes from a hex string of length 2*size.
//  Returns 0, or -1 if the text is not that many hex digits.
int
    cbus_hex_decode (const char *text, uint8_t *out, size_t size)
    __attribute__ ((warn_unused_result));

//  Read size bytes of text as a decimal number of at most max: digits
//  only (no sign, space or leading "+"), at least one. Returns 0, or -1
//  for anything else, including a value beyond max or beyond 64 bits.
int
    cbus_parse_u64 (const char *text, size_t size, uint64_t max, uint64_t *value)
    __attribute__ ((warn_unused_result));

//  Copy at most in_size bytes of in to out (out_size bytes, always
//  terminated), each byte outside printable ASCII (space to ~) made '?',
//  stopping at a NUL: text from a peer, safe to log and to show as JSON.
void
    cbus_printable (char *out, size_t out_size, const char *in, size_t in_size);

//  Leave a reason (CBUS_REASON_MAX bytes) and return -1: the one-line
//  way every validator fails.
int
    cbus_fail (char *reason, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  A NUL-terminated copy of size bytes that need not be terminated
//  themselves (a msgpack string, say); caller frees. Unlike strndup it
//  never looks past size.
char *
    cbus_strdup_size (const void *data, size_t size);

//  Median of count values (the upper one of an even count), sorting them
//  in place; 0 for none. For short lists: insertion sort, O(count^2).
uint64_t
    cbus_median_u64 (uint64_t *values, size_t count);

//  Big-endian 64-bit integers, for keys that must sort by number.
void
    cbus_put_be64 (uint8_t *out, uint64_t value);
uint64_t
    cbus_get_be64 (const uint8_t *in);
//  Big-endian 32-bit integers (positions inside a block, in keys).
void
    cbus_put_be32 (uint8_t *out, uint32_t value);
uint32_t
    cbus_get_be32 (const uint8_t *in);

//  Wall clock in microseconds and milliseconds since the Unix epoch,
//  and a monotonic clock in milliseconds.
uint64_t
    cbus_time_us (void);
uint64_t
    cbus_time_ms (void);
int64_t
    cbus_mono_ms (void);

//  Name the calling thread (at most 15 characters are kept), so that top,
//  ps -L and /proc/PID/task/TID/comm tell a service's threads apart.
void
    cbus_thread_name (const char *name);

//  Write a whole file atomically: temp file, fsync, rename, fsync dir.
int
    cbus_file_write_atomic (const char *path, const void *data, size_t size);

//  Self test of this class
void
    cbus_util_test (bool verbose);

#endif
