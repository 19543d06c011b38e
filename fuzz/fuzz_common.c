/*  =========================================================================
    fuzz_common - what the libFuzzer harnesses share (fuzz.h)
    =========================================================================
*/
#include "fuzz.h"
#include <sys/stat.h>
#include <ftw.h>

static char s_folder [256];             //  This process's scratch folder

static int
s_remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

//  At exit (libFuzzer exits when its time is up): nothing left behind.
static void
s_remove_scratch (void)
{
    nftw (s_folder, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void
fuzz_init (void)
{
    zsys_handler_set (NULL);
    zsys_set_logstream (NULL);
    zsys_set_logsystem (false);
    zsys_init ();
    zsys_set_logstream (NULL);
}

const msgpack_object *
fuzz_unpack_map (msgpack_unpacked *unpacked, const void *data, size_t size)
{
    size_t offset = 0;
    if (size == 0
    ||  cbus_unpack_next (unpacked, (const char *) data, size, &offset) != MSGPACK_UNPACK_SUCCESS
    ||  offset != size || unpacked->data.type != MSGPACK_OBJECT_MAP)
        return NULL;
    return &unpacked->data;
}

uint8_t
fuzz_touch (const void *data, size_t size)
{
    const volatile uint8_t *bytes = (const volatile uint8_t *) data;
    uint8_t sum = 0;
    for (size_t index = 0; index < size; index++)
        sum ^= bytes [index];
    return sum;
}

const char *
fuzz_scratch (const char *name)
{
    static char path [512];
    if (!*s_folder) {
        const char *base = getenv ("TMPDIR");
        struct stat st;
        if (!base)
            base = stat ("/dev/shm", &st) == 0 && S_ISDIR (st.st_mode) ? "/dev/shm" : "/tmp";
        snprintf (s_folder, sizeof (s_folder), "%s/chainbus-fuzz-%d", base, (int) getpid ());
        FUZZ_CHECK (mkdir (s_folder, 0700) == 0 || errno == EEXIST);
        atexit (s_remove_scratch);
    }
    snprintf (path, sizeof (path), "%s/%s", s_folder, name);
    return path;
}

const char *
fuzz_write_file (const char *name, const void *data, size_t size, mode_t mode)
{
    const char *path = fuzz_scratch (name);
    unlink (path);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    FUZZ_CHECK (fd >= 0);
    FUZZ_CHECK (size == 0 || write (fd, data, size) == (ssize_t) size);
    FUZZ_CHECK (fchmod (fd, mode) == 0);        //  Whatever the umask
    close (fd);
    return path;
}

void
fuzz_check_tx (cbus_tx_t *tx)
{
    char reason [CBUS_REASON_MAX];
    size_t size;
    const uint8_t *bytes = cbus_tx_bytes (tx, &size);
    cbus_tx_t *again = cbus_tx_decode (bytes, size, reason);
    FUZZ_CHECK (again);
    FUZZ_CHECK (memcmp (cbus_tx_id (again), cbus_tx_id (tx), CBUS_HASH_BYTES) == 0);
    FUZZ_CHECK (memcmp (cbus_tx_leaf (again), cbus_tx_leaf (tx), CBUS_HASH_BYTES) == 0);
    cbus_tx_destroy (&again);
    for (size_t index = 0; index < cbus_tx_user_count (tx); index++)
        fuzz_touch (cbus_tx_user (tx, index), strlen (cbus_tx_user (tx, index)));

    //  The JSON users read, both ways it is written.
    cbus_buf_t json = {0}, stored = {0};
    cbus_tx_write_json (tx, &json);
    FUZZ_CHECK (cbus_tx_bytes_to_json (bytes, size, &stored) == 0);
    FUZZ_CHECK (json.size == stored.size && memcmp (json.data, stored.data, json.size) == 0);
    //  And it comes back as the same transaction (txid is output only).
    json_t *object = cbus_json_parse (json.data, json.size, reason);
    FUZZ_CHECK (object);
    json_object_del (object, "txid");
    again = cbus_tx_new_from_json (object, 0, reason);
    if (!again)
        fprintf (stderr, "written JSON refused: %s\n%s\n", reason, json.data);
    FUZZ_CHECK (again);
    size_t again_size;
    const uint8_t *again_bytes = cbus_tx_bytes (again, &again_size);
    FUZZ_CHECK (again_size == size && memcmp (again_bytes, bytes, size) == 0);
    cbus_tx_destroy (&again);
    json_decref (object);
    cbus_buf_free (&json);
    cbus_buf_free (&stored);
}
