/*  =========================================================================
    cbus_keyfile - CurveZMQ keypair files and allowlists

    A keypair file is CZMQ's zcert secret format (ZPL: curve/public-key
    and curve/secret-key in Z85), so that ZeroMQ tools read it, one file,
    mode 0600. It is written beside its final name and hard-linked into
    place: of two processes making it at once, one wins and the other
    reads the winner's. An allowlist is one Z85 public key a line.
    =========================================================================
*/
#include "cbus.h"
#include <sys/stat.h>
#include <sodium.h>

#define S_ALLOWLIST_MAX (1024 * 1024)

bool
cbus_keyfile_key_valid (const char *text)
{
    uint8_t raw [32];
    return text && strlen (text) == 40 && zmq_z85_decode (raw, text) != NULL;
}

static zcert_t *
s_cert_read (const char *path, char *reason)
{
    struct stat st;
    if (stat (path, &st))
        return cbus_fail (reason, "key file %s: %s", path, strerror (errno)), NULL;
    if (!S_ISREG (st.st_mode) || st.st_size > 65536)
        return cbus_fail (reason, "key file %s: not a key file", path), NULL;
    if (st.st_mode & 077)
        return cbus_fail (reason, "key file %s: readable by others (mode %03o): chmod 600 it",
                          path, (unsigned) (st.st_mode & 0777)), NULL;
    zchunk_t *chunk = zchunk_slurp (path, 65536);
    zconfig_t *root = chunk ? zconfig_chunk_load (chunk) : NULL;
    zchunk_destroy (&chunk);
    if (!root)
        return cbus_fail (reason, "key file %s: not a ZPL keypair file", path), NULL;
    const char *public_text = zconfig_get (root, "curve/public-key", NULL);
    const char *secret_text = zconfig_get (root, "curve/secret-key", NULL);
    zcert_t *cert = NULL;
    uint8_t public_key [32], secret_key [32], derived [32];
    if (!cbus_keyfile_key_valid (public_text) || !cbus_keyfile_key_valid (secret_text))
        cbus_fail (reason, "key file %s: no valid curve public-key and secret-key (40 Z85 "
                   "characters each)", path);
    else {
        zmq_z85_decode (public_key, public_text);
        zmq_z85_decode (secret_key, secret_text);
        char secret_z85 [41], derived_z85 [41];
        zmq_z85_encode (secret_z85, secret_key, 32);
        if (zmq_curve_public (derived_z85, secret_z85) || !zmq_z85_decode (derived, derived_z85)
        ||  memcmp (derived, public_key, 32))
            cbus_fail (reason, "key file %s: its public key is not its secret key's", path);
        else
        if (!(cert = zcert_new_from (public_key, secret_key)))
            cbus_fail (reason, "key file %s: out of memory", path);
        sodium_memzero (secret_z85, sizeof (secret_z85));
    }
    sodium_memzero (secret_key, sizeof (secret_key));
    zconfig_destroy (&root);
    return cert;
}

//  A new keypair written beside path then linked to it: of two processes
//  making it at once, one wins and the other reads the winner's.
static int
s_cert_make (const char *path, char *reason)
{
    zcert_t *cert = zcert_new ();
    char *temporary = zsys_sprintf ("%s.%d.new", path, (int) getpid ());
    int rc = -1;
    if (!cert || !temporary)
        cbus_fail (reason, "key file %s: out of memory", path);
    else {
        zcert_set_meta (cert, "made-by", "chainbus");
        //  CZMQ writes a secret file with a private mode (0600, checked
        //  under umask 022); the chmod makes sure of it.
        if (zcert_save_secret (cert, temporary) || chmod (temporary, 0600))
            cbus_fail (reason, "key file %s: cannot write it: %s", path, strerror (errno));
        else
        if (link (temporary, path) && errno != EEXIST)
            cbus_fail (reason, "key file %s: cannot create it: %s", path, strerror (errno));
        else
            rc = 0;
        unlink (temporary);
    }
    zstr_free (&temporary);
    zcert_destroy (&cert);
    return rc;
}

zcert_t *
cbus_keyfile_load (const char *path, bool make, bool *made, char *reason)
{
    if (made)
        *made = false;
    struct stat st;
    if (make && stat (path, &st) && errno == ENOENT) {
        if (s_cert_make (path, reason))
            return NULL;
        if (made)
            *made = true;
    }
    return s_cert_read (path, reason);
}

//  The allowlist: one Z85 public key a line; blank lines, and comments
//  from a # at the start of a line or after a blank.

zhashx_t *
cbus_keyfile_allowlist (const char *path, char *reason)
{
    zchunk_t *chunk = zchunk_slurp (path, S_ALLOWLIST_MAX);
    if (!chunk)
        return cbus_fail (reason, "allowlist %s: cannot read it: %s (one public key a line; "
                          "`chainbus service-key` prints the node's)", path,
                          errno ? strerror (errno) : "empty or too large"), NULL;
    zhashx_t *keys = zhashx_new ();
    char *text = keys ? (char *) zmalloc (zchunk_size (chunk) + 1) : NULL;
    if (!text) {
        zhashx_destroy (&keys);
        zchunk_destroy (&chunk);
        return cbus_fail (reason, "allowlist %s: out of memory", path), NULL;
    }
    memcpy (text, zchunk_data (chunk), zchunk_size (chunk));
    zchunk_destroy (&chunk);
    int number = 0;
    for (char *line = text, *next; line && keys; line = next) {
        next = strchr (line, '\n');
        if (next)
            *next++ = 0;
        number++;
        line += strspn (line, " \t\r");
        //  Z85 has '#' in it: a comment starts a line or follows a blank.
        size_t length = *line == '#' ? 0 : strcspn (line, " \t\r");
        const char *rest = line + length + strspn (line + length, " \t\r");
        if (length == 0 && (*rest == 0 || *rest == '#'))
            continue;
        char key [41] = "";
        if (length == 40)
            memcpy (key, line, 40);
        if (!cbus_keyfile_key_valid (key) || (*rest && *rest != '#')) {
            cbus_fail (reason, "allowlist %s line %d: not a public key (40 Z85 characters)",
                       path, number);
            zhashx_destroy (&keys);
        }
        else
            zhashx_insert (keys, key, "");
    }
    free (text);
    return keys;
}

//  --------------------------------------------------------------------------
//  Self-test

static void
s_write (const char *path, const char *text, int mode)
{
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
    chmod (path, (mode_t) mode);
}

void
cbus_keyfile_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_keyfile: ");
    char reason [CBUS_REASON_MAX];
    char dir [] = "/tmp/cbus_keyfile_test_XXXXXX";
    assert (mkdtemp (dir));
    char path [PATH_MAX], allowlist [PATH_MAX];
    snprintf (path, sizeof (path), "%s/service.cert", dir);
    snprintf (allowlist, sizeof (allowlist), "%s/allowlist", dir);
    assert (cbus_keyfile_key_valid ("0123456789012345678901234567890123456789"));
    assert (!cbus_keyfile_key_valid ("short") && !cbus_keyfile_key_valid (NULL));

    //  Keypair files: made once (0600), read back the same; refusals.
    bool made = false;
    zcert_t *cert = cbus_keyfile_load (path, true, &made, reason);
    assert (cert && made);
    struct stat st;
    assert (stat (path, &st) == 0 && (st.st_mode & 0777) == 0600);
    zcert_t *again = cbus_keyfile_load (path, true, &made, reason);
    assert (again && !made && zcert_eq (cert, again));
    zcert_destroy (&again);
    chmod (path, 0644);
    assert (!cbus_keyfile_load (path, false, NULL, reason) && strstr (reason, "chmod 600"));
    chmod (path, 0600);
    char bad [PATH_MAX];
    snprintf (bad, sizeof (bad), "%s/bad.cert", dir);
    s_write (bad, "curve\n    public-key = \"short\"\n", 0600);
    assert (!cbus_keyfile_load (bad, true, NULL, reason) && strstr (reason, "40 Z85"));
    zcert_t *other = zcert_new ();
    char *mixed = zsys_sprintf ("curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n",
                                zcert_public_txt (other), zcert_secret_txt (cert));
    s_write (bad, mixed, 0600);
    zstr_free (&mixed);
    assert (!cbus_keyfile_load (bad, true, NULL, reason) && strstr (reason, "not its secret"));
    assert (!cbus_keyfile_load ("/nonexistent/x.cert", false, NULL, reason));

    //  Allowlist lines: a key with '#' in it (Z85 has it), comments.
    zcert_t *hashed = zcert_new ();
    while (!strchr (zcert_public_txt (hashed), '#')) {
        zcert_destroy (&hashed);
        hashed = zcert_new ();
    }
    char *lines = zsys_sprintf ("#  comment\n   \n  %s\t# a miner\r\n%s\n",
                                zcert_public_txt (hashed), zcert_public_txt (cert));
    s_write (allowlist, lines, 0644);
    zstr_free (&lines);
    zhashx_t *parsed = cbus_keyfile_allowlist (allowlist, reason);
    assert (parsed && zhashx_size (parsed) == 2 && zhashx_lookup (parsed, zcert_public_txt (hashed)));
    zhashx_destroy (&parsed);
    zcert_destroy (&hashed);
    unlink (allowlist);

    assert (!cbus_keyfile_allowlist ("/nonexistent/allowlist", reason)
         && strstr (reason, "cannot read"));
    s_write (allowlist, "# one key a line\nnot-a-key\n", 0644);
    assert (!cbus_keyfile_allowlist (allowlist, reason) && strstr (reason, "line 2"));
    zcert_destroy (&cert);
    zcert_destroy (&other);
    char *command = zsys_sprintf ("rm -rf %s", dir);
    assert (system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("OK\n");
}
