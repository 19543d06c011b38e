/*  =========================================================================
    cbus_util - small shared helpers: growable byte buffer, hex, clocks
    =========================================================================
*/
#include "cbus.h"
#include <stdarg.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>

void
cbus_buf_init (cbus_buf_t *self)
{
    memset (self, 0, sizeof (*self));
}

void
cbus_buf_free (cbus_buf_t *self)
{
    free (self->data);
    memset (self, 0, sizeof (*self));
}

void
cbus_buf_reset (cbus_buf_t *self)
{
    self->size = 0;
    if (self->data)
        self->data [0] = 0;
}

//  Make room for extra more bytes plus the terminator; doubles the
//  allocation so that appends are amortised O(1).
static void
s_reserve (cbus_buf_t *self, size_t extra)
{
    size_t needed = self->size + extra + 1;
    if (needed <= self->alloc)
        return;
    size_t alloc = self->alloc ? self->alloc : 256;
    while (alloc < needed)
        alloc *= 2;
    self->data = (char *) realloc (self->data, alloc);
    assert (self->data);
    self->alloc = alloc;
}

void
cbus_buf_append (cbus_buf_t *self, const void *data, size_t size)
{
    s_reserve (self, size);
    if (size)
        memcpy (self->data + self->size, data, size);
    self->size += size;
    self->data [self->size] = 0;
}

void
cbus_buf_puts (cbus_buf_t *self, const char *text)
{
    cbus_buf_append (self, text, strlen (text));
}

void
cbus_buf_printf (cbus_buf_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char small [256];
    int size = vsnprintf (small, sizeof (small), format, args);
    va_end (args);
    assert (size >= 0);
    if ((size_t) size < sizeof (small)) {
        cbus_buf_append (self, small, (size_t) size);
        return;
    }
    s_reserve (self, (size_t) size);
    va_start (args, format);
    vsnprintf (self->data + self->size, (size_t) size + 1, format, args);
    va_end (args);
    self->size += (size_t) size;
}

char *
cbus_buf_detach (cbus_buf_t *self, size_t *size_p)
{
    s_reserve (self, 0);
    char *data = self->data;
    if (size_p)
        *size_p = self->size;
    memset (self, 0, sizeof (*self));
    return data;
}

int
cbus_buf_msgpack_write (void *data, const char *buf, size_t len)
{
    cbus_buf_append ((cbus_buf_t *) data, buf, len);
    return 0;
}

void
cbus_hex_encode (const uint8_t *data, size_t size, char *out)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t index = 0; index < size; index++) {
        out [2 * index] = digits [data [index] >> 4];
        out [2 * index + 1] = digits [data [index] & 15];
    }
    out [2 * size] = 0;
}

int
cbus_hex_digit (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
cbus_hex_decode (const char *text, uint8_t *out, size_t size)
{
    if (!text || strlen (text) != 2 * size)
        return -1;
    for (size_t index = 0; index < size; index++) {
        int high = cbus_hex_digit (text [2 * index]);
        int low = cbus_hex_digit (text [2 * index + 1]);
        if (high < 0 || low < 0)
            return -1;
        out [index] = (uint8_t) (high << 4 | low);
    }
    return 0;
}

int
cbus_parse_u64 (const char *text, size_t size, uint64_t max, uint64_t *value)
{
    if (!text || size == 0)
        return -1;
    uint64_t result = 0;
    for (size_t index = 0; index < size; index++) {
        if (text [index] < '0' || text [index] > '9')
            return -1;
        uint64_t digit = (uint64_t) (text [index] - '0');
        if (digit > max || result > (max - digit) / 10)
            return -1;
        result = result * 10 + digit;
    }
    *value = result;
    return 0;
}

void
cbus_printable (char *out, size_t out_size, const char *in, size_t in_size)
{
    if (out_size == 0)
        return;
    size_t at = 0;
    for (; at < in_size && at + 1 < out_size && in [at]; at++)
        out [at] = in [at] >= ' ' && in [at] <= '~' ? in [at] : '?';
    out [at] = 0;
}

int
cbus_fail (char *reason, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (reason, CBUS_REASON_MAX, format, args);
    va_end (args);
    return -1;
}

char *
cbus_strdup_size (const void *data, size_t size)
{
    char *copy = (char *) malloc (size + 1);
    assert (copy);
    if (size)
        memcpy (copy, data, size);
    copy [size] = 0;
    return copy;
}

uint64_t
cbus_median_u64 (uint64_t *values, size_t count)
{
    for (size_t index = 1; index < count; index++)
        for (size_t other = index; other > 0 && values [other - 1] > values [other]; other--) {
            uint64_t swap = values [other];
            values [other] = values [other - 1];
            values [other - 1] = swap;
        }
    return count ? values [count / 2] : 0;
}

void
cbus_put_be64 (uint8_t *out, uint64_t value)
{
    for (int index = 0; index < 8; index++)
        out [index] = (uint8_t) (value >> (56 - 8 * index));
}

uint64_t
cbus_get_be64 (const uint8_t *in)
{
    uint64_t value = 0;
    for (int index = 0; index < 8; index++)
        value = (value << 8) | in [index];
    return value;
}

void
cbus_put_be32 (uint8_t *out, uint32_t value)
{
    for (int index = 3; index >= 0; index--) {
        out [index] = (uint8_t) value;
        value >>= 8;
    }
}

uint32_t
cbus_get_be32 (const uint8_t *in)
{
    return (uint32_t) in [0] << 24 | (uint32_t) in [1] << 16
         | (uint32_t) in [2] << 8 | (uint32_t) in [3];
}

uint64_t
cbus_time_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

uint64_t
cbus_time_ms (void)
{
    return cbus_time_us () / 1000;
}

int64_t
cbus_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
cbus_thread_name (const char *name)
{
    char cut [16];
    size_t size = strnlen (name, sizeof (cut) - 1);
    memcpy (cut, name, size);
    cut [size] = 0;
    pthread_setname_np (pthread_self (), cut);
}

int
cbus_file_write_atomic (const char *path, const void *data, size_t size)
{
    char temp [PATH_MAX];
    if (snprintf (temp, sizeof (temp), "%s.tmp", path) >= (int) sizeof (temp))
        return -1;
    int fd = open (temp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    const char *cursor = (const char *) data;
    size_t left = size;
    while (left > 0) {
        ssize_t written = write (fd, cursor, left);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0) {
            close (fd);
            unlink (temp);
            return -1;
        }
        cursor += written;
        left -= (size_t) written;
    }
    if (fsync (fd) || close (fd) || rename (temp, path)) {
        unlink (temp);
        return -1;
    }
    //  The rename is durable only once the directory is synced.
    char dir [PATH_MAX];
    snprintf (dir, sizeof (dir), "%s", path);
    int dir_fd = open (dirname (dir), O_RDONLY | O_DIRECTORY);
    if (dir_fd >= 0) {
        fsync (dir_fd);
        close (dir_fd);
    }
    return 0;
}

void
cbus_util_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_util: ");
    cbus_buf_t buf = {0};
    cbus_buf_puts (&buf, "abc");
    cbus_buf_printf (&buf, "-%d-", 42);
    for (int index = 0; index < 100; index++)
        cbus_buf_printf (&buf, "%s", "0123456789");
    assert (buf.size == 3 + 4 + 1000);
    assert (memcmp (buf.data, "abc-42-0123", 11) == 0);
    cbus_buf_reset (&buf);
    assert (buf.size == 0 && buf.data [0] == 0);
    //  Thread names are cut to what the kernel keeps.
    char saved [16], named [16];
    assert (pthread_getname_np (pthread_self (), saved, sizeof (saved)) == 0);
    cbus_thread_name ("cbus-a-name-too-long-to-keep");
    assert (pthread_getname_np (pthread_self (), named, sizeof (named)) == 0);
    assert (streq (named, "cbus-a-name-too"));
    cbus_thread_name (saved);
    cbus_buf_free (&buf);

    uint8_t bytes [4] = { 0x00, 0x7f, 0xab, 0xff };
    char hex [9];
    cbus_hex_encode (bytes, 4, hex);
    assert (streq (hex, "007fabff"));
    uint8_t back [4];
    assert (cbus_hex_decode ("007FABff", back, 4) == 0);
    assert (memcmp (back, bytes, 4) == 0);
    assert (cbus_hex_decode ("007fab", back, 4) == -1);
    char shown [6];
    cbus_printable (shown, sizeof (shown), "a\x01\xc3\xa9\nbcd", 8);
    assert (streq (shown, "a???\?"));
    cbus_printable (shown, sizeof (shown), "ab\0cd", 5);
    assert (streq (shown, "ab"));
    uint64_t number = 7;
    assert (cbus_parse_u64 ("18446744073709551615", 20, UINT64_MAX, &number) == 0);
    assert (number == UINT64_MAX);
    assert (cbus_parse_u64 ("18446744073709551616", 20, UINT64_MAX, &number) == -1);
    assert (cbus_parse_u64 ("99999999999999999999", 20, UINT64_MAX, &number) == -1);
    assert (cbus_parse_u64 ("100", 3, 100, &number) == 0 && number == 100);
    assert (cbus_parse_u64 ("101", 3, 100, &number) == -1);
    assert (cbus_parse_u64 ("0", 1, 0, &number) == 0 && number == 0);
    assert (cbus_parse_u64 ("5", 1, 3, &number) == -1);
    assert (cbus_parse_u64 ("7", 1, 0, &number) == -1);
    assert (cbus_parse_u64 ("13", 2, 13, &number) == 0 && number == 13);
    assert (cbus_parse_u64 ("14", 2, 13, &number) == -1);
    assert (cbus_parse_u64 ("-1", 2, 100, &number) == -1);
    assert (cbus_parse_u64 (" 1", 2, 100, &number) == -1);
    assert (cbus_parse_u64 ("+1", 2, 100, &number) == -1);
    assert (cbus_parse_u64 ("", 0, 100, &number) == -1);
    assert (cbus_parse_u64 ("12", 1, 100, &number) == 0 && number == 1);
    assert (cbus_hex_decode ("007fabfg", back, 4) == -1);
    uint64_t values [] = { 5, 1, 4, 2, 3 };
    assert (cbus_median_u64 (values, 5) == 3 && values [0] == 1 && values [4] == 5);
    assert (cbus_median_u64 (values, 0) == 0);
    char *copy = cbus_strdup_size ("abcdef", 3);
    assert (streq (copy, "abc"));
    free (copy);
    uint8_t be [8];
    cbus_put_be64 (be, 0x0102030405060708ULL);
    assert (be [0] == 1 && be [7] == 8);
    assert (cbus_get_be64 (be) == 0x0102030405060708ULL);
    cbus_put_be32 (be, 0x0a0b0c0dU);
    assert (be [0] == 0x0a && be [3] == 0x0d);
    assert (cbus_get_be32 (be) == 0x0a0b0c0dU);

    assert (cbus_time_us () > 1600000000ULL * 1000000);
    int64_t before = cbus_mono_ms ();
    assert (cbus_mono_ms () >= before);

    char path [] = "/tmp/cbus_util_test_XXXXXX";
    assert (mkdtemp (path));
    char file [PATH_MAX];
    snprintf (file, sizeof (file), "%s/file", path);
    assert (cbus_file_write_atomic (file, "hello", 5) == 0);
    FILE *in = fopen (file, "r");
    char read_back [8] = {0};
    assert (in && fread (read_back, 1, 8, in) == 5);
    fclose (in);
    assert (streq (read_back, "hello"));
    unlink (file);
    rmdir (path);
    if (verbose)
        printf ("OK\n");
}
