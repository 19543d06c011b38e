/*  =========================================================================
    cbus_peers - the node's list of peers
    =========================================================================
*/
#include "cbus_peers.h"
#include <ctype.h>
#include <stdarg.h>

struct _cbus_peers_t {
    char *path;                 //  File holding one address a line
    zlistx_t *addresses;        //  Normalised addresses, owned strings
};

int
cbus_peers_normalize (const char *given, size_t size, char *out, char *reason)
{
    //  Work on a terminated copy: the input may come straight off the wire.
    char text [CBUS_PEER_ADDRESS_MAX];
    if (size == 0 || size >= sizeof (text))
        return cbus_fail (reason, "Invalid node address: 1 to %d characters", CBUS_PEER_ADDRESS_MAX - 1);
    memcpy (text, given, size);
    text [size] = 0;
    if (strlen (text) != size)
        return cbus_fail (reason, "Invalid node address: holds a NUL");
    const char *scheme = "http";
    const char *rest = text;
    size_t left = size;
    if (size > 6 && strncasecmp (text, "tcp://", 6) == 0) {
        scheme = "tcp";
        rest += 6, left -= 6;
    }
    else
    if (size > 7 && strncasecmp (text, "http://", 7) == 0)
        rest += 7, left -= 7;
    else
    if (memmem (text, size, "://", 3))
        return cbus_fail (reason, "Invalid node address '%.64s': use http://host:port, "
                               "host:port or tcp://host:port", text);
    //  One trailing slash is tolerated on gateway URLs.
    if (left > 0 && rest [left - 1] == '/' && streq (scheme, "http"))
        left--;
    //  host:port, the host a name, an IPv4 address or [IPv6].
    const char *colon = NULL;
    for (size_t index = left; index > 0; index--)
        if (rest [index - 1] == ':') {
            colon = rest + index - 1;
            break;
        }
    if (!colon)
        return cbus_fail (reason, "Invalid node address '%.64s': a port is required (host:port)", text);
    size_t host_size = (size_t) (colon - rest);
    size_t port_size = left - host_size - 1;
    char host [256];
    if (host_size == 0 || host_size >= sizeof (host))
        return cbus_fail (reason, "Invalid node address '%.64s': bad host", text);
    for (size_t index = 0; index < host_size; index++)
        host [index] = (char) tolower ((unsigned char) rest [index]);
    host [host_size] = 0;
    bool bracketed = host [0] == '[' && host [host_size - 1] == ']';
    const char *allowed = bracketed ? "[]0123456789abcdef:." : "abcdefghijklmnopqrstuvwxyz0123456789.-";
    if (strspn (host, allowed) != host_size || (!bracketed && strchr (host, ':'))
    ||  host [0] == '-' || host [0] == '.')
        return cbus_fail (reason, "Invalid node address '%.64s': bad host", text);
    unsigned port = 0;
    if (port_size == 0 || port_size > 5)
        return cbus_fail (reason, "Invalid node address '%.64s': bad port", text);
    for (size_t index = 0; index < port_size; index++) {
        char c = colon [1 + index];
        if (c < '0' || c > '9')
            return cbus_fail (reason, "Invalid node address '%.64s': bad port", text);
        port = port * 10 + (unsigned) (c - '0');
    }
    if (port == 0 || port > 65535)
        return cbus_fail (reason, "Invalid node address '%.64s': port out of range", text);
    snprintf (out, CBUS_PEER_ADDRESS_MAX, "%s://%s:%u", scheme, host, port);
    return 0;
}

static void
s_free_string (void **item)
{
    free (*item);
    *item = NULL;
}

static bool
s_contains (cbus_peers_t *self, const char *address)
{
    for (const char *known = (const char *) zlistx_first (self->addresses); known;
         known = (const char *) zlistx_next (self->addresses))
        if (streq (known, address))
            return true;
    return false;
}

cbus_peers_t *
cbus_peers_new (const char *path)
{
    cbus_peers_t *self = (cbus_peers_t *) zmalloc (sizeof (cbus_peers_t));
    self->path = strdup (path);
    self->addresses = zlistx_new ();
    zlistx_set_destructor (self->addresses, s_free_string);
    FILE *file = fopen (path, "r");
    if (file) {
        char line [1024];
        while (fgets (line, sizeof (line), file)) {
            size_t size = strcspn (line, "\r\n");
            line [size] = 0;
            if (size == 0 || line [0] == '#')
                continue;
            char address [CBUS_PEER_ADDRESS_MAX], reason [CBUS_REASON_MAX];
            if (cbus_peers_normalize (line, size, address, reason))
                zsys_warning ("peer list %s: dropped line: %s", path, reason);
            else
            if (!s_contains (self, address))
                zlistx_add_end (self->addresses, strdup (address));
        }
        fclose (file);
    }
    return self;
}

void
cbus_peers_destroy (cbus_peers_t **self_p)
{
    assert (self_p);
    cbus_peers_t *self = *self_p;
    if (self) {
        zlistx_destroy (&self->addresses);
        free (self->path);
        free (self);
        *self_p = NULL;
    }
}

//  Write the whole list but skip (NULL: all of it), atomically; 0 or -1.
static int
s_save (cbus_peers_t *self, const char *skip)
{
    cbus_buf_t text = {0};
    cbus_buf_puts (&text, "# chainbus peers, one a line (written by chainbus-peersync)\n");
    for (const char *address = (const char *) zlistx_first (self->addresses); address;
         address = (const char *) zlistx_next (self->addresses))
        if (!skip || !streq (address, skip))
            cbus_buf_printf (&text, "%s\n", address);
    int rc = cbus_file_write_atomic (self->path, text.data, text.size);
    cbus_buf_free (&text);
    return rc;
}

int
cbus_peers_add (cbus_peers_t *self, zlist_t *addresses)
{
    int added = 0;
    for (const char *address = (const char *) zlist_first (addresses); address;
         address = (const char *) zlist_next (addresses))
        if (!s_contains (self, address)) {
            zlistx_add_end (self->addresses, strdup (address));
            added++;
        }
    if (added == 0)
        return 0;
    if (s_save (self, NULL)) {
        //  Not saved: take them back out so memory matches the disk.
        for (int index = 0; index < added; index++) {
            zlistx_last (self->addresses);
            zlistx_delete (self->addresses, zlistx_cursor (self->addresses));
        }
        return -1;
    }
    return added;
}

int
cbus_peers_remove (cbus_peers_t *self, const char *address)
{
    if (!s_contains (self, address))
        return 0;
    //  Saved without it first: memory changes only once the disk did.
    if (s_save (self, address))
        return -1;
    for (const char *known = (const char *) zlistx_first (self->addresses); known;
         known = (const char *) zlistx_next (self->addresses))
        if (streq (known, address)) {
            zlistx_delete (self->addresses, zlistx_cursor (self->addresses));
            break;
        }
    return 1;
}

bool
cbus_peers_has (cbus_peers_t *self, const char *address)
{
    return s_contains (self, address);
}

size_t
cbus_peers_size (cbus_peers_t *self)
{
    return zlistx_size (self->addresses);
}

const char *
cbus_peers_first (cbus_peers_t *self)
{
    return (const char *) zlistx_first (self->addresses);
}

const char *
cbus_peers_next (cbus_peers_t *self)
{
    return (const char *) zlistx_next (self->addresses);
}

void
cbus_peers_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_peers: ");
    char out [CBUS_PEER_ADDRESS_MAX], reason [CBUS_REASON_MAX];
    const char *good [][2] = {
        { "http://localhost:5001", "http://localhost:5001" },
        { "HTTP://LocalHost:5001/", "http://localhost:5001" },
        { "127.0.0.1:5002", "http://127.0.0.1:5002" },
        { "tcp://10.0.0.1:7000", "tcp://10.0.0.1:7000" },
        { "http://[::1]:5000", "http://[::1]:5000" },
    };
    for (size_t index = 0; index < sizeof (good) / sizeof (good [0]); index++) {
        assert (cbus_peers_normalize (good [index][0], strlen (good [index][0]), out, reason) == 0);
        assert (streq (out, good [index][1]));
    }
    const char *bad [] = { "", "localhost", "ftp://h:1", "http://h", "h:0", "h:65536",
                           "h:12a", "http://h:80/path", "bad host:80", "tcp://h:", ":80",
                           "http://-h:80" };
    for (size_t index = 0; index < sizeof (bad) / sizeof (bad [0]); index++)
        assert (cbus_peers_normalize (bad [index], strlen (bad [index]), out, reason) == -1);

    char dir [] = "/tmp/cbus_peers_test_XXXXXX";
    assert (mkdtemp (dir));
    char path [PATH_MAX];
    snprintf (path, sizeof (path), "%s/peers", dir);
    cbus_peers_t *peers = cbus_peers_new (path);
    assert (cbus_peers_size (peers) == 0);
    zlist_t *list = zlist_new ();
    zlist_append (list, "http://a:1");
    zlist_append (list, "tcp://b:2");
    assert (cbus_peers_add (peers, list) == 2);
    assert (cbus_peers_add (peers, list) == 0);     //  Twice adds once
    cbus_peers_destroy (&peers);
    peers = cbus_peers_new (path);
    assert (cbus_peers_size (peers) == 2);
    assert (streq (cbus_peers_first (peers), "http://a:1"));
    assert (streq (cbus_peers_next (peers), "tcp://b:2"));
    //  Removed, it stays removed after a reload; unknown, nothing changes.
    assert (cbus_peers_remove (peers, "http://a:1") == 1);
    assert (cbus_peers_remove (peers, "http://a:1") == 0 && !cbus_peers_has (peers, "http://a:1"));
    cbus_peers_destroy (&peers);
    peers = cbus_peers_new (path);
    assert (cbus_peers_size (peers) == 1 && cbus_peers_has (peers, "tcp://b:2"));
    assert (streq (cbus_peers_first (peers), "tcp://b:2"));
    cbus_peers_destroy (&peers);
    zlist_destroy (&list);
    unlink (path);
    rmdir (dir);
    if (verbose)
        printf ("OK\n");
}
