/*  =========================================================================
    cbus_key - a wallet's Ed25519 keypair and its key file
    =========================================================================
*/
#include "cbus.h"
#include <ctype.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <sodium.h>

//  A key file is about 170 bytes; anything much larger is something else.
#define S_MAX_FILE_BYTES    4096

struct _cbus_key_t {
    uint8_t public_key [CBUS_PUBKEY_BYTES];         //  Ed25519 public key
    uint8_t secret_key [CBUS_KEY_SECRET_BYTES];     //  Seed, then public key
    char public_hex [CBUS_KEY_HEX];                 //  public_key as hex
};

static cbus_key_t *
s_key_from_seed (const uint8_t *seed)
{
    cbus_key_t *self = (cbus_key_t *) zmalloc (sizeof (cbus_key_t));
    crypto_sign_seed_keypair (self->public_key, self->secret_key, seed);
    cbus_hex_encode (self->public_key, CBUS_PUBKEY_BYTES, self->public_hex);
    return self;
}

cbus_key_t *
cbus_key_new (void)
{
    uint8_t seed [CBUS_KEY_SEED_BYTES];
    randombytes_buf (seed, sizeof (seed));
    cbus_key_t *self = s_key_from_seed (seed);
    sodium_memzero (seed, sizeof (seed));
    return self;
}

cbus_key_t *
cbus_key_new_from_seed (const uint8_t *seed)
{
    return s_key_from_seed (seed);
}

//  Read a whole small secret file (a key or a token file, what names it)
//  into text (NUL-terminated, caller wipes and frees). Refuses a file that
//  group or others may read or write.
static char *
s_read_secret_file (const char *path, const char *what, size_t *size_p, char *reason)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cbus_fail (reason, "cannot read %s %s: %s", what, path, strerror (errno));
        return NULL;
    }
    char *text = NULL;
    struct stat st;
    if (fstat (fd, &st)) {
        cbus_fail (reason, "cannot read %s %s: %s", what, path, strerror (errno));
        goto cleanup;
    }
    if (!S_ISREG (st.st_mode)) {
        cbus_fail (reason, "%s %s is not a regular file", what, path);
        goto cleanup;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        cbus_fail (reason, "%s %s is open to others (mode %04o): chmod 600 it, "
                           "or make a new one", what, path, (unsigned) (st.st_mode & 07777));
        goto cleanup;
    }
    if (st.st_size > S_MAX_FILE_BYTES) {
        cbus_fail (reason, "%s %s is too large (%lld bytes)",
                   what, path, (long long) st.st_size);
        goto cleanup;
    }
    text = (char *) malloc (S_MAX_FILE_BYTES + 1);
    if (!text) {
        cbus_fail (reason, "cannot read %s %s: out of memory", what, path);
        goto cleanup;
    }
    size_t size = 0;
    while (size < S_MAX_FILE_BYTES) {
        ssize_t got = read (fd, text + size, S_MAX_FILE_BYTES - size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            cbus_fail (reason, "cannot read %s %s: %s", what, path, strerror (errno));
            sodium_memzero (text, S_MAX_FILE_BYTES + 1);
            free (text);
            text = NULL;
            goto cleanup;
        }
        if (got == 0)
            break;
        size += (size_t) got;
    }
    text [size] = 0;
    *size_p = size;
cleanup:
    close (fd);
    return text;
}

int
cbus_token_load (const char *path, char token [CBUS_TOKEN_MAX + 1], char *reason)
{
    size_t size = 0;
    char *text = s_read_secret_file (path, "token file", &size, reason);
    if (!text)
        return -1;
    while (size > 0 && (text [size - 1] == '\n' || text [size - 1] == '\r'
                     || text [size - 1] == ' ' || text [size - 1] == '\t'))
        text [--size] = 0;
    bool good = size >= CBUS_TOKEN_MIN && size <= CBUS_TOKEN_MAX;
    for (size_t index = 0; good && index < size; index++)
        //  strchr finds the terminator too: a NUL is no token character
        //  (it cut the token short; found by fuzz/).
        good = isalnum ((unsigned char) text [index])
            || (text [index] && strchr ("-._~+/=", text [index]));
    if (good)
        memcpy (token, text, size + 1);
    else
        cbus_fail (reason, "token file %s must hold one token of %d to %d letters, digits "
                           "or -._~+/= (for one: head -c 32 /dev/urandom | od -An -tx1 "
                           "| tr -d ' \\n')", path, CBUS_TOKEN_MIN, CBUS_TOKEN_MAX);
    sodium_memzero (text, size);
    free (text);
    return good ? 0 : -1;
}

//  Decode a field of 64 hex digits.
static int
s_hex_field (json_t *object, const char *name, uint8_t *out, size_t size)
{
    json_t *value = json_object_get (object, name);
    return json_is_string (value) ? cbus_hex_decode (json_string_value (value), out, size): -1;
}

cbus_key_t *
cbus_key_load (const char *path, char *reason)
{
    size_t size = 0;
    char *text = s_read_secret_file (path, "key file", &size, reason);
    if (!text)
        return NULL;
    cbus_key_t *self = NULL;
    uint8_t seed [CBUS_KEY_SEED_BYTES];
    uint8_t public_key [CBUS_PUBKEY_BYTES];
    json_error_t error;
    json_t *object = json_loadb (text, size, JSON_REJECT_DUPLICATES, &error);
    sodium_memzero (text, size);
    free (text);
    if (!json_is_object (object)
    ||  !json_is_string (json_object_get (object, "type"))
    ||  !streq (json_string_value (json_object_get (object, "type")), CBUS_KEY_TYPE)) {
        cbus_fail (reason, "key file %s is not a chainbus key file "
                           "(a JSON object with \"type\": \"%s\")", path, CBUS_KEY_TYPE);
        goto cleanup;
    }
    const char *name;
    json_t *value;
    json_object_foreach (object, name, value)
        if (!streq (name, "type") && !streq (name, "public_key") && !streq (name, "seed")) {
            cbus_fail (reason, "key file %s has an unknown field \"%.32s\"", path, name);
            goto cleanup;
        }
    if (s_hex_field (object, "seed", seed, sizeof (seed))) {
        cbus_fail (reason, "key file %s is damaged: \"seed\" must be %d hex digits",
                   path, 2 * CBUS_KEY_SEED_BYTES);
        goto cleanup;
    }
    if (s_hex_field (object, "public_key", public_key, sizeof (public_key))) {
        cbus_fail (reason, "key file %s is damaged: \"public_key\" must be %d hex digits",
                   path, 2 * CBUS_PUBKEY_BYTES);
        goto cleanup;
    }
    self = s_key_from_seed (seed);
    if (memcmp (self->public_key, public_key, CBUS_PUBKEY_BYTES) != 0) {
        cbus_fail (reason, "key file %s is damaged: its public_key is not its seed's", path);
        cbus_key_destroy (&self);
    }
cleanup:
    sodium_memzero (seed, sizeof (seed));
    //  jansson's copy of the seed is freed, not wiped: the process is
    //  short-lived and the file itself holds the same bytes.
    json_decref (object);
    return self;
}

void
cbus_key_destroy (cbus_key_t **self_p)
{
    assert (self_p);
    cbus_key_t *self = *self_p;
    if (self) {
        sodium_memzero (self, sizeof (cbus_key_t));
        free (self);
        *self_p = NULL;
    }
}

int
cbus_key_save (cbus_key_t *self, const char *path, char *reason)
{
    struct stat st;
    if (lstat (path, &st) == 0)
        return cbus_fail (reason, "%s already exists: a key file is never replaced", path);
    char seed_hex [2 * CBUS_KEY_SEED_BYTES + 1];
    cbus_hex_encode (self->secret_key, CBUS_KEY_SEED_BYTES, seed_hex);
    char text [256];
    int size = snprintf (text, sizeof (text),
                         "{\"type\": \"%s\", \"public_key\": \"%s\", \"seed\": \"%s\"}\n",
                         CBUS_KEY_TYPE, self->public_hex, seed_hex);
    sodium_memzero (seed_hex, sizeof (seed_hex));
    assert (size > 0 && size < (int) sizeof (text));

    //  mkstemp makes the file 0600 whatever the umask.
    char *temp = zsys_sprintf ("%s.tmp.XXXXXX", path);
    int rc = -1;
    int fd = mkstemp (temp);
    if (fd < 0) {
        cbus_fail (reason, "cannot create key file %s: %s", path, strerror (errno));
        goto cleanup;
    }
    size_t left = (size_t) size;
    const char *cursor = text;
    while (left > 0) {
        ssize_t written = write (fd, cursor, left);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0) {
            cbus_fail (reason, "cannot write key file %s: %s", temp,
                       written < 0 ? strerror (errno): "nothing written");
            close (fd);
            goto cleanup;
        }
        cursor += written;
        left -= (size_t) written;
    }
    if (fchmod (fd, 0600) || fsync (fd)) {
        cbus_fail (reason, "cannot write key file %s: %s", temp, strerror (errno));
        close (fd);
        goto cleanup;
    }
    if (close (fd)) {
        cbus_fail (reason, "cannot write key file %s: %s", temp, strerror (errno));
        goto cleanup;
    }
    //  link(), unlike rename(), refuses an existing name: a key made by
    //  someone else meanwhile is never replaced.
    if (link (temp, path)) {
        if (errno == EEXIST)
            cbus_fail (reason, "%s already exists: a key file is never replaced", path);
        else
            cbus_fail (reason, "cannot create key file %s: %s", path, strerror (errno));
        goto cleanup;
    }
    rc = 0;
    char folder [PATH_MAX];
    snprintf (folder, sizeof (folder), "%s", path);
    int dir_fd = open (dirname (folder), O_RDONLY | O_DIRECTORY);
    if (dir_fd >= 0) {
        fsync (dir_fd);
        close (dir_fd);
    }
cleanup:
    sodium_memzero (text, sizeof (text));
    if (fd >= 0)
        unlink (temp);
    zstr_free (&temp);
    return rc;
}

const uint8_t *
cbus_key_public (cbus_key_t *self)
{
    return self->public_key;
}

const char *
cbus_key_public_hex (cbus_key_t *self)
{
    return self->public_hex;
}

const uint8_t *
cbus_key_secret (cbus_key_t *self)
{
    return self->secret_key;
}

void
cbus_key_sign (cbus_key_t *self, const void *data, size_t size, uint8_t *signature)
{
    crypto_sign_detached (signature, NULL, (const uint8_t *) data, size, self->secret_key);
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_write_file (const char *path, const char *text, mode_t mode)
{
    unlink (path);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert (fd >= 0);
    assert (write (fd, text, strlen (text)) == (ssize_t) strlen (text));
    assert (fchmod (fd, mode) == 0);
    close (fd);
}

void
cbus_key_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_key: ");
    assert (sodium_init () >= 0);
    char reason [CBUS_REASON_MAX];
    char folder [] = "/tmp/cbus_key_test_XXXXXX";
    assert (mkdtemp (folder));
    char path [PATH_MAX], other [PATH_MAX];
    snprintf (path, sizeof (path), "%s/wallet.key", folder);
    snprintf (other, sizeof (other), "%s/other.key", folder);

    //  Make, save (0600), load back: the same key, which signs.
    cbus_key_t *key = cbus_key_new ();
    assert (key && strlen (cbus_key_public_hex (key)) == 64);
    assert (cbus_key_save (key, path, reason) == 0);
    struct stat st;
    assert (stat (path, &st) == 0 && (st.st_mode & 07777) == 0600);
    cbus_key_t *loaded = cbus_key_load (path, reason);
    assert (loaded);
    assert (streq (cbus_key_public_hex (loaded), cbus_key_public_hex (key)));
    uint8_t signature [CBUS_SIG_BYTES];
    cbus_key_sign (loaded, "abc", 3, signature);
    assert (crypto_sign_verify_detached (signature, (const uint8_t *) "abc", 3,
                                         cbus_key_public (key)) == 0);
    assert (memcmp (cbus_key_secret (loaded), cbus_key_secret (key), CBUS_KEY_SECRET_BYTES) == 0);
    cbus_key_destroy (&loaded);

    //  Never replaced; the file is unchanged and no temporary is left.
    cbus_key_t *second = cbus_key_new ();
    assert (cbus_key_save (second, path, reason) == -1 && strstr (reason, "already exists"));
    loaded = cbus_key_load (path, reason);
    assert (loaded && streq (cbus_key_public_hex (loaded), cbus_key_public_hex (key)));
    cbus_key_destroy (&loaded);
    cbus_key_destroy (&second);
    zdir_t *dir = zdir_new (folder, NULL);
    assert (dir && zdir_count (dir) == 1);
    zdir_destroy (&dir);

    //  A seed gives one key, always.
    uint8_t seed [CBUS_KEY_SEED_BYTES];
    memset (seed, 7, sizeof (seed));
    cbus_key_t *seeded = cbus_key_new_from_seed (seed);
    cbus_key_t *again = cbus_key_new_from_seed (seed);
    assert (streq (cbus_key_public_hex (seeded), cbus_key_public_hex (again)));
    cbus_key_destroy (&again);

    //  Token files: one token, trailing newline allowed; private.
    char token [CBUS_TOKEN_MAX + 1];
    s_write_file (other, "0123456789abcdef0123456789abcdef0123\n", 0600);
    assert (cbus_token_load (other, token, reason) == 0);
    assert (streq (token, "0123456789abcdef0123456789abcdef0123"));
    s_write_file (other, "short\n", 0600);
    assert (cbus_token_load (other, token, reason) == -1 && strstr (reason, "must hold one token"));
    //  A NUL is no token character: it would cut the token short.
    FILE *nul = fopen (other, "wb");
    assert (nul && fwrite ("a\0" "0123456789abcdef0123456789abcdef", 1, 34, nul) == 34);
    fclose (nul);
    assert (cbus_token_load (other, token, reason) == -1 && strstr (reason, "must hold one token"));
    s_write_file (other, "0123456789abcdef 0123456789abcdef0123", 0600);
    assert (cbus_token_load (other, token, reason) == -1 && strstr (reason, "must hold one token"));
    s_write_file (other, "0123456789abcdef0123456789abcdef0123", 0644);
    assert (cbus_token_load (other, token, reason) == -1 && strstr (reason, "token file"));
    assert (strstr (reason, "open to others"));
    assert (cbus_token_load ("/nonexistent/token", token, reason) == -1);
    assert (strstr (reason, "cannot read token file"));

    //  Refusals, each with a reason naming the file.
    assert (!cbus_key_load ("/nonexistent/key", reason) && strstr (reason, "cannot read key file"));
    assert (!cbus_key_load (folder, reason) && strstr (reason, "not a regular file"));
    assert (chmod (path, 0644) == 0);
    assert (!cbus_key_load (path, reason) && strstr (reason, "open to others (mode 0644)"));
    assert (chmod (path, 0660) == 0);
    assert (!cbus_key_load (path, reason) && strstr (reason, "open to others"));
    assert (chmod (path, 0400) == 0);
    loaded = cbus_key_load (path, reason);
    assert (loaded);
    cbus_key_destroy (&loaded);
    s_write_file (other, "not json", 0600);
    assert (!cbus_key_load (other, reason) && strstr (reason, "not a chainbus key file"));
    s_write_file (other, "{\"type\": \"other\"}", 0600);
    assert (!cbus_key_load (other, reason) && strstr (reason, "not a chainbus key file"));
    s_write_file (other, "{\"type\": \"chainbus-ed25519\", \"public_key\": \"00\"}", 0600);
    assert (!cbus_key_load (other, reason) && strstr (reason, "\"seed\" must be"));
    char *text = zsys_sprintf ("{\"type\": \"chainbus-ed25519\", \"public_key\": \"%s\", "
                               "\"seed\": \"%064d\"}", cbus_key_public_hex (seeded), 0);
    s_write_file (other, text, 0600);
    assert (!cbus_key_load (other, reason) && strstr (reason, "is not its seed's"));
    zstr_free (&text);
    text = zsys_sprintf ("{\"type\": \"chainbus-ed25519\", \"public_key\": \"%s\", "
                         "\"seed\": \"%s\", \"extra\": 1}", cbus_key_public_hex (seeded),
                         "0707070707070707070707070707070707070707070707070707070707070707");
    s_write_file (other, text, 0600);
    assert (!cbus_key_load (other, reason) && strstr (reason, "unknown field"));
    zstr_free (&text);
    cbus_key_destroy (&seeded);
    assert (cbus_key_save (key, "/nonexistent/dir/key", reason) == -1);
    assert (strstr (reason, "cannot create key file"));

    unlink (other);
    unlink (path);
    rmdir (folder);
    cbus_key_destroy (&key);
    cbus_key_destroy (&key);
    if (verbose)
        printf ("OK\n");
}
