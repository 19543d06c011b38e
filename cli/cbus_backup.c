/*  =========================================================================
    cbus_backup - `chainbus backup` and `chainbus restore`
    =========================================================================
*/
#include "cbus_backup.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sodium.h>

//  The manifest's format; restore refuses another.
#define S_FORMAT        1
//  How long a service has to answer PING and TIP.
#define S_PING_MS       3000
//  While a store's copy runs, the service is asked PING this often; a
//  new pid, or no answer, means the copy will never be answered.
#define S_WATCH_MS      2000
//  How long a service has to answer STORE.BACKUP.CANCEL once we gave up
//  on a copy (interrupted, or the service stopped answering); without an
//  answer nothing is removed, as the copy may still be written.
#define S_CANCEL_MS     10000
//  Times the stores are copied when a reorganisation disconnected the
//  pool copy's tip before the chain copy was taken.
#define S_TRIES         3
//  s_backup_store's answer when the chainstore refused stale.
#define S_STALE         3
//  Largest manifest restore reads.
#define S_MANIFEST_MAX  (16 * 1024 * 1024)
//  Bytes read at a time when copying a file.
#define S_CHUNK         (256 * 1024)

//  The stores, in the order they are copied (see the header).
static const char *s_stores [] = { "mempool", "chain" };
//  Files of the data folder copied when present; mode 0600 like the keys.
static const char *s_files [] = { "peers", "node.key", "service.cert", "allowlist" };

//  Exit codes
#define S_OK            0
#define S_FAILED        1
#define S_REFUSED       2

//  Put the reason for a refusal; returns S_REFUSED.
static int
s_refuse (char *reason, const char *format, ...) __attribute__ ((format (printf, 2, 3)));
static int
s_refuse (char *reason, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (reason, CBUS_REASON_MAX, format, args);
    va_end (args);
    return S_REFUSED;
}

//  --------------------------------------------------------------------------
//  Files

//  1 if path is an empty folder, 0 if a folder with entries, -1 if it is
//  not a folder or cannot be read (errno says why).
static int
s_empty_dir (const char *path)
{
    DIR *dir = opendir (path);
    if (!dir)
        return -1;
    struct dirent *entry;
    int empty = 1;
    while ((entry = readdir (dir)))
        if (!streq (entry->d_name, ".") && !streq (entry->d_name, ".."))
            empty = 0;
    closedir (dir);
    return empty;
}

//  Remove a folder's contents, one level of folders deep (a backup's
//  layout), and the folder itself if remove_self.
static void
s_remove_tree (const char *path, bool remove_self)
{
    DIR *dir = opendir (path);
    struct dirent *entry;
    while (dir && (entry = readdir (dir))) {
        if (streq (entry->d_name, ".") || streq (entry->d_name, ".."))
            continue;
        char *child = zsys_sprintf ("%s/%s", path, entry->d_name);
        struct stat info;
        if (child && lstat (child, &info) == 0 && S_ISDIR (info.st_mode))
            s_remove_tree (child, true);
        else
        if (child)
            unlink (child);
        zstr_free (&child);
    }
    if (dir)
        closedir (dir);
    if (remove_self)
        rmdir (path);
}

//  fsync a file or folder by path; 0 or -1.
static int
s_sync_path (const char *path)
{
    int fd = open (path, O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync (fd);
    close (fd);
    return rc;
}

//  Copy from into to (new, mode), hashing what it copies; with to NULL,
//  only hash. The copy is synced. 0 with size and SHA-256, or -1 with a
//  reason.
static int
s_copy_file (const char *from, const char *to, mode_t mode, uint64_t *size_p,
             uint8_t hash [CBUS_HASH_BYTES], char *reason)
{
    int in = open (from, O_RDONLY);
    if (in < 0)
        return cbus_fail (reason, "cannot read %s: %s", from, strerror (errno));
    int out = to ? open (to, O_WRONLY | O_CREAT | O_EXCL, mode) : -1;
    char *chunk = (char *) malloc (S_CHUNK);
    int rc = -1;
    if (to && out < 0)
        cbus_fail (reason, "cannot write %s: %s", to, strerror (errno));
    else
    if (!chunk)
        cbus_fail (reason, "out of memory");
    else {
        crypto_hash_sha256_state state;
        crypto_hash_sha256_init (&state);
        uint64_t size = 0;
        ssize_t got;
        rc = 0;
        while (rc == 0 && (got = read (in, chunk, S_CHUNK)) != 0) {
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                rc = cbus_fail (reason, "cannot read %s: %s", from, strerror (errno));
            else {
                crypto_hash_sha256_update (&state, (const unsigned char *) chunk, (size_t) got);
                size += (uint64_t) got;
                for (ssize_t done = 0; rc == 0 && to && done < got; ) {
                    ssize_t put = write (out, chunk + done, (size_t) (got - done));
                    if (put < 0 && errno == EINTR)
                        continue;
                    if (put <= 0)
                        rc = cbus_fail (reason, "cannot write %s: %s", to, strerror (errno));
                    else
                        done += put;
                }
            }
        }
        if (rc == 0 && to && fsync (out))
            rc = cbus_fail (reason, "cannot write %s: %s", to, strerror (errno));
        crypto_hash_sha256_final (&state, hash);
        *size_p = size;
    }
    free (chunk);
    close (in);
    if (out >= 0 && close (out) && rc == 0)
        rc = cbus_fail (reason, "cannot write %s: %s", to, strerror (errno));
    return rc;
}

//  Add {path, size, sha256} of root/name to files; 0 or -1 with a reason.
static int
s_manifest_add (json_t *files, const char *root, const char *name, char *reason)
{
    char *path = zsys_sprintf ("%s/%s", root, name);
    uint8_t hash [CBUS_HASH_BYTES];
    char hex [CBUS_HASH_HEX];
    uint64_t size = 0;
    int rc = path ? s_copy_file (path, NULL, 0, &size, hash, reason) : cbus_fail (reason, "out of memory");
    zstr_free (&path);
    if (rc == 0 && json_array_append_new (files, json_pack ("{s:s, s:I, s:s}", "path", name,
                                          "size", (json_int_t) size, "sha256",
                                          cbus_hash_hex (hash, hex))))
        rc = cbus_fail (reason, "out of memory");
    return rc;
}

//  --------------------------------------------------------------------------
//  Backup

//  A request to a service; the reply, or NULL with a reason (its refusal).
static cbus_reply_t *
s_call (cbus_config_t *config, const char *service, const char *command, cbus_buf_t *body,
        int timeout_ms, char *reason)
{
    char *endpoint = cbus_config_endpoint (config, service);
    cbus_client_t *client = endpoint ? cbus_client_new (endpoint) : NULL;
    zstr_free (&endpoint);
    if (!client) {
        cbus_fail (reason, "cannot make a socket for the %s", service);
        return NULL;
    }
    cbus_reply_t *reply = cbus_client_request (client, command, body->data, body->size,
                                               timeout_ms);
    cbus_client_destroy (&client);
    if (!cbus_reply_ok (reply)) {
        if (reply->code == CBUS_CODE_UNAVAILABLE && cbus_reply_is_local (reply))
            cbus_fail (reason, "the %s does not answer (is the node at %s running?)", service,
                       cbus_config_data_dir (config));
        else
            cbus_fail (reason, "the %s refused %s: %s", service, command, reply->reason);
        cbus_reply_destroy (&reply);
    }
    return reply;
}

//  The output folder: made if missing (its parent must exist), else an
//  empty folder we can write. Its absolute path into *path_p. Returns -1,
//  or the exit code to give up with (a reason given).
static int
s_out_prepare (const char *out, char **path_p, bool *made, char *reason)
{
    struct stat info;
    if (stat (out, &info) == 0) {
        if (!S_ISDIR (info.st_mode))
            return s_refuse (reason, "--out %s exists and is not a folder", out);
        int empty = s_empty_dir (out);
        if (empty < 0)
            return s_refuse (reason, "--out %s cannot be read: %s", out, strerror (errno));
        if (!empty)
            return s_refuse (reason, "--out %s is not empty: give a new or empty folder", out);
        if (access (out, W_OK | X_OK))
            return s_refuse (reason, "--out %s cannot be written: %s", out, strerror (errno));
    }
    else
    if (errno != ENOENT)
        return s_refuse (reason, "--out %s cannot be made: %s", out, strerror (errno));
    else
    if (mkdir (out, 0700))
        return s_refuse (reason, "--out %s cannot be made: %s", out, strerror (errno));
    else
        *made = true;
    *path_p = realpath (out, NULL);
    if (!*path_p)
        return s_refuse (reason, "--out %s: %s", out, strerror (errno));
    return -1;
}

//  The pid of the service's process (PING), 0 if it does not answer.
static uint64_t
s_service_pid (cbus_config_t *config, const char *service)
{
    cbus_buf_t body = {0};
    cbus_ping_t ping = {0};
    cbus_ping_encode (&ping, &body);
    char reason [CBUS_REASON_MAX];
    cbus_reply_t *reply = s_call (config, service, CBUS_CMD_PING, &body, S_PING_MS, reason);
    cbus_buf_free (&body);
    cbus_pong_t pong;
    uint64_t pid = reply && cbus_pong_decode (cbus_reply_map (reply), &pong, reason) == 0
                 ? pong.pid : 0;
    cbus_reply_destroy (&reply);
    return pid;
}

//  A request whose answer may take long (a store's copy): sent once, then
//  waited for as long as the same process of the service answers PING.
//  The reply, or NULL with a reason and the exit code in *exit_p:
//  S_REFUSED when the service did not answer at all or refused, S_FAILED
//  when it went away (or we were interrupted) meanwhile.
//  Once we gave up on a copy: ask the service on dealer to stop the copy
//  at path and remove what it wrote, and wait for its answer, signals or
//  not (Ctrl-C is why we are here). 0 once it answered (the copy is
//  stopped, or was not running: nothing writes at path any more), -1 if
//  it did not answer in S_CANCEL_MS.
static int
s_cancel (zsock_t *dealer, const char *service, const char *path)
{
    cbus_buf_t body = {0};
    cbus_chain_backup_cancel_t ask = { .path = cbus_str (path) };
    cbus_chain_backup_cancel_encode (&ask, &body);
    uint64_t id = randombytes_random ();
    int rc = cbus_request_send (dealer, CBUS_CMD_STORE_BACKUP_CANCEL, id, body.data, body.size);
    cbus_buf_free (&body);
    int64_t deadline = cbus_mono_ms () + S_CANCEL_MS;
    while (rc == 0) {
        int64_t left = deadline - cbus_mono_ms ();
        if (left <= 0) {
            rc = -1;
            break;
        }
        zmq_pollitem_t item = { zsock_resolve (dealer), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, (long) left) <= 0)
            continue;                   //  A signal, or the time is up
        cbus_reply_t *reply = cbus_reply_recv (dealer);
        bool answered = reply && reply->request_id == id;
        if (answered && !cbus_reply_ok (reply))
            zsys_warning ("the %s refused %s: %s", service, CBUS_CMD_STORE_BACKUP_CANCEL,
                          reply->reason);
        else
        if (answered)
            zsys_debug ("the %s cancelled the copy at %s", service, path);
        cbus_reply_destroy (&reply);
        if (answered)
            break;
    }
    return rc;
}

static cbus_reply_t *
s_call_watched (cbus_config_t *config, const char *service, const char *command,
                cbus_buf_t *body, const char *path, int *exit_p, cbus_code_t *code_p,
                bool *kept_p, char *reason)
{
    *exit_p = S_REFUSED;
    *code_p = CBUS_CODE_OK;
    uint64_t pid = s_service_pid (config, service);
    if (!pid) {
        cbus_fail (reason, "the %s does not answer (is the node at %s running?)", service,
                   cbus_config_data_dir (config));
        return NULL;
    }
    char *endpoint = cbus_config_endpoint (config, service);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    uint64_t id = randombytes_random ();
    cbus_reply_t *reply = NULL;
    if (dealer) {
        zsock_set_linger (dealer, 0);
        zsock_set_maxmsgsize (dealer, CBUS_MSG_MAX_BYTES);
    }
    if (!endpoint || !dealer || cbus_endpoint_connect (dealer, endpoint)
    ||  cbus_request_send (dealer, command, id, body->data, body->size)) {
        cbus_fail (reason, "cannot send %s to the %s", command, service);
        *exit_p = S_FAILED;
        goto cleanup;
    }
    *exit_p = S_FAILED;
    zpoller_t *poller = zpoller_new (dealer, NULL);
    int64_t watched = cbus_mono_ms ();
    while (!reply && poller) {
        if (zsys_interrupted) {
            cbus_fail (reason, "interrupted");
            break;
        }
        if (zpoller_wait (poller, 100)) {
            reply = cbus_reply_recv (dealer);
            if (reply && reply->request_id != id)
                cbus_reply_destroy (&reply);
        }
        else
        if (zpoller_terminated (poller)) {
            cbus_fail (reason, "interrupted");
            break;
        }
        else
        if (cbus_mono_ms () - watched >= S_WATCH_MS) {
            if (s_service_pid (config, service) != pid) {
                cbus_fail (reason, "the %s stopped or restarted during %s: run the backup again",
                           service, command);
                break;
            }
            watched = cbus_mono_ms ();
        }
    }
    zpoller_destroy (&poller);
    //  Given up: nothing may be removed while the service's copy thread
    //  may still write at path.
    if (!reply && s_cancel (dealer, service, path)) {
        *kept_p = true;
        char why [CBUS_REASON_MAX];
        snprintf (why, sizeof (why), "%s", reason);
        cbus_fail (reason, "%s; the %s did not answer %s, so its copy may still be written at "
                   "%s: nothing was removed (remove the folder once the %s answers again or "
                   "was restarted)", why, service, CBUS_CMD_STORE_BACKUP_CANCEL, path, service);
    }
    if (reply && !cbus_reply_ok (reply)) {
        *code_p = reply->code;
        cbus_fail (reason, "the %s refused %s: %s", service, command, reply->reason);
        //  A copy that failed on the way (a full disk) is no refusal.
        *exit_p = reply->code == CBUS_CODE_INVALID || reply->code == CBUS_CODE_FULL
               || reply->code == CBUS_CODE_LOCAL_ONLY ? S_REFUSED : S_FAILED;
        cbus_reply_destroy (&reply);
    }
cleanup:
    zsock_destroy (&dealer);
    zstr_free (&endpoint);
    return reply;
}

//  Ask service for a copy of its store at root/name; its reply fields
//  into the manifest's entry for it. 0, or the exit code with a reason.
//  after_tip (or NULL): the pool copy's tip, which the chain copy must
//  hold (S_STALE when a reorganisation disconnected it). The tip the
//  copy holds into tip, *has_tip if the service gave one. *kept_p when
//  the copy may still be written (nothing may be removed).
static int
s_backup_store (cbus_config_t *config, const char *service, const char *root, const char *name,
                const uint8_t *after_tip, json_t *manifest, uint8_t tip [CBUS_HASH_BYTES],
                bool *has_tip, bool *kept_p, char *reason)
{
    int exit_code = S_FAILED;
    cbus_code_t code;
    char *path = zsys_sprintf ("%s/%s", root, name);
    if (!path)
        return cbus_fail (reason, "out of memory"), S_FAILED;
    cbus_buf_t body = {0};
    cbus_chain_backup_t ask = { .path = cbus_str (path), .has_after_tip = after_tip != NULL,
                                .after_tip = after_tip };
    cbus_chain_backup_encode (&ask, &body);
    int64_t started = cbus_mono_ms ();
    cbus_reply_t *reply = s_call_watched (config, service, CBUS_CMD_STORE_BACKUP, &body,
                                          path, &exit_code, &code, kept_p, reason);
    cbus_buf_free (&body);
    zstr_free (&path);
    *has_tip = false;
    if (!reply)
        return code == CBUS_CODE_STALE ? S_STALE : exit_code;
    cbus_chain_backup_reply_t copied;
    char why [CBUS_REASON_MAX];
    int rc = S_FAILED;
    if (cbus_chain_backup_reply_decode (cbus_reply_map (reply), &copied, why))
        cbus_fail (reason, "the %s's STORE.BACKUP reply: %s", service, why);
    else {
        char hex [CBUS_HASH_HEX] = "";
        char digest [CBUS_HASH_HEX];
        json_t *entry = json_pack ("{s:I, s:I, s:s, s:I}", "entries", (json_int_t) copied.entries,
                                   "bytes", (json_int_t) copied.bytes,
                                   "sha256", cbus_hash_hex (copied.digest, digest),
                                   "ms", (json_int_t) (cbus_mono_ms () - started));
        if (entry && copied.has_height && copied.has_tip) {
            memcpy (tip, copied.tip, CBUS_HASH_BYTES);
            *has_tip = true;
            json_object_set_new (entry, "height", json_integer ((json_int_t) copied.height));
            json_object_set_new (entry, "tip", json_string (cbus_hash_hex (copied.tip, hex)));
        }
        if (!entry || json_object_set_new (manifest, name, entry))
            cbus_fail (reason, "out of memory");
        else
            rc = 0;
    }
    cbus_reply_destroy (&reply);
    return rc;
}

//  The node's network and genesis, from the chainstore's TIP, into the
//  manifest. 0, or -1 with a reason.
static int
s_backup_network (cbus_config_t *config, json_t *manifest, char *reason)
{
    cbus_buf_t body = {0};
    cbus_tip_t ask = {0};
    cbus_tip_encode (&ask, &body);
    cbus_reply_t *reply = s_call (config, "chainstore", CBUS_CMD_TIP, &body, S_PING_MS, reason);
    cbus_buf_free (&body);
    if (!reply)
        return -1;
    cbus_tip_reply_t tip;
    char why [CBUS_REASON_MAX], hex [CBUS_HASH_HEX];
    int rc = 0;
    if (cbus_tip_reply_decode (cbus_reply_map (reply), &tip, why))
        rc = cbus_fail (reason, "the chainstore's TIP reply: %s", why);
    else
    if (json_object_set_new (manifest, "network", json_stringn (tip.network.data, tip.network.size))
    ||  json_object_set_new (manifest, "genesis", json_string (cbus_hash_hex (tip.genesis, hex))))
        rc = cbus_fail (reason, "out of memory");
    cbus_reply_destroy (&reply);
    return rc;
}

//  The pool's copy, then the chain's. A transaction the pool dropped
//  because a block up to its tip confirmed it is in the chain copy only
//  if that block is on the chain copy's active chain: a reorganisation
//  in between disconnected it (the chainstore refuses stale), so both
//  are taken again, S_TRIES times at most. The manifest has both tips.
//  0, or the exit code with a reason.
static int
s_backup_stores (cbus_config_t *config, const char *root, json_t *manifest, bool *kept_p,
                 char *reason)
{
    for (int tries = 1; tries <= S_TRIES; tries++) {
        uint8_t pool_tip [CBUS_HASH_BYTES], chain_tip [CBUS_HASH_BYTES];
        bool has_pool_tip, has_chain_tip;
        int rc = s_backup_store (config, "mempool", root, "mempool", NULL, manifest, pool_tip,
                                 &has_pool_tip, kept_p, reason);
        if (rc == 0)
            rc = s_backup_store (config, "chainstore", root, "chain",
                                 has_pool_tip ? pool_tip : NULL, manifest, chain_tip,
                                 &has_chain_tip, kept_p, reason);
        if (rc != S_STALE)
            return rc;
        zsys_info ("backup: a reorganisation disconnected the pool copy's tip before the "
                   "chain copy (try %d of %d): taking both again", tries, S_TRIES);
        char *pool = zsys_sprintf ("%s/mempool", root);
        if (!pool)
            return cbus_fail (reason, "out of memory"), S_FAILED;
        s_remove_tree (pool, true);
        zstr_free (&pool);
        json_object_del (manifest, "mempool");
    }
    cbus_fail (reason, "reorganisations disconnected the pool copy's tip before the chain copy "
               "%d times in a row: run the backup again", S_TRIES);
    return S_FAILED;
}

//  Everything but the manifest's file list: the stores, then the files.
//  0, or the exit code with a reason.
static int
s_backup_copy (cbus_config_t *config, const char *root, json_t *manifest, bool *kept_p,
               char *reason)
{
    //  The chainstore's TIP first: no copy starts for a node not running.
    if (s_backup_network (config, manifest, reason))
        return S_REFUSED;
    int rc = s_backup_stores (config, root, manifest, kept_p, reason);
    if (rc)
        return rc;
    for (size_t index = 0; index < sizeof (s_files) / sizeof (s_files [0]); index++) {
        char *from = cbus_config_path (config, s_files [index]);
        char *to = zsys_sprintf ("%s/%s", root, s_files [index]);
        uint8_t hash [CBUS_HASH_BYTES];
        uint64_t size;
        struct stat info;
        rc = 0;
        if (!from || !to)
            rc = cbus_fail (reason, "out of memory");
        else
        if (stat (from, &info) == 0)
            rc = s_copy_file (from, to, 0600, &size, hash, reason);
        zstr_free (&from);
        zstr_free (&to);
        if (rc)
            return S_FAILED;
    }
    return 0;
}

//  The manifest's list of files, then the manifest itself, atomically.
//  The stores are named by their content's sum (cbus_store_copy.h), the
//  other files by their own.
static int
s_backup_manifest (const char *root, json_t *manifest, char *reason)
{
    json_t *files = json_array ();
    if (!files || json_object_set_new (manifest, "files", files))
        return cbus_fail (reason, "out of memory");
    for (size_t index = 0; index < sizeof (s_files) / sizeof (s_files [0]); index++) {
        char *path = zsys_sprintf ("%s/%s", root, s_files [index]);
        struct stat info;
        bool present = path && stat (path, &info) == 0;
        zstr_free (&path);
        if (present && s_manifest_add (files, root, s_files [index], reason))
            return -1;
    }
    char *text = json_dumps (manifest, JSON_INDENT (2) | JSON_SORT_KEYS);
    char *path = zsys_sprintf ("%s/%s", root, CBUS_BACKUP_MANIFEST);
    int rc = 0;
    if (!text || !path)
        rc = cbus_fail (reason, "out of memory");
    else
    if (cbus_file_write_atomic (path, text, strlen (text)) || s_sync_path (root))
        rc = cbus_fail (reason, "cannot write %s: %s", path, strerror (errno));
    free (text);
    zstr_free (&path);
    return rc;
}

int
cbus_backup_run (cbus_config_t *config, const char *out)
{
    char reason [CBUS_REASON_MAX] = "";
    char *root = NULL;
    bool made = false, kept = false;
    int64_t started = cbus_mono_ms ();
    //  Services on tcp: this machine's client key (the node's own).
    cbus_endpoint_t *keys = cbus_endpoint_new (config, "backup", reason);
    if (!keys) {
        fprintf (stderr, "chainbus backup: %s\n", reason);
        return S_REFUSED;
    }
    int rc = s_out_prepare (out, &root, &made, reason);
    if (rc >= 0) {
        fprintf (stderr, "chainbus backup: %s\n", reason);
        cbus_endpoint_destroy (&keys);
        return rc;
    }
    json_t *manifest = json_pack ("{s:i, s:s, s:I}", "format", S_FORMAT, "chainbus", CBUS_VERSION,
                                  "created_ms", (json_int_t) cbus_time_ms ());
    if (!manifest) {
        cbus_fail (reason, "out of memory");
        rc = S_FAILED;
    }
    else
        rc = s_backup_copy (config, root, manifest, &kept, reason);
    if (rc == S_OK && s_backup_manifest (root, manifest, reason))
        rc = S_FAILED;
    if (rc == S_OK) {
        json_t *chain = json_object_get (manifest, "chain");
        json_t *pool = json_object_get (manifest, "mempool");
        fprintf (stderr, "chainbus backup: chain height %" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT
                 " records) and mempool (%" JSON_INTEGER_FORMAT " records) of network %s "
                 "written to %s in %.2f s\n",
                 json_integer_value (json_object_get (chain, "height")),
                 json_integer_value (json_object_get (chain, "entries")),
                 json_integer_value (json_object_get (pool, "entries")),
                 json_string_value (json_object_get (manifest, "network")), root,
                 (double) (cbus_mono_ms () - started) / 1000.0);
    }
    else {
        fprintf (stderr, "chainbus backup: %s\n", reason);
        //  What was written is removed, unless a copy may still be
        //  written there (its service did not confirm it stopped).
        if (!kept)
            s_remove_tree (root, made);
    }
    json_decref (manifest);
    free (root);
    cbus_endpoint_destroy (&keys);
    return rc;
}

//  --------------------------------------------------------------------------
//  Restore

//  A manifest's file is one of s_files.
static bool
s_known_file (const char *name)
{
    for (size_t index = 0; index < sizeof (s_files) / sizeof (s_files [0]); index++)
        if (streq (name, s_files [index]))
            return true;
    return false;
}

//  Read the manifest of from and check it against the configuration.
//  The manifest, or NULL with a reason.
static json_t *
s_restore_manifest (cbus_config_t *config, const char *from, char *reason)
{
    char *path = zsys_sprintf ("%s/%s", from, CBUS_BACKUP_MANIFEST);
    struct stat info;
    json_error_t error;
    json_t *manifest = NULL;
    if (!path)
        cbus_fail (reason, "out of memory");
    else
    if (stat (path, &info) || !S_ISREG (info.st_mode))
        cbus_fail (reason, "%s has no %s: not a backup, or one that did not finish", from,
                   CBUS_BACKUP_MANIFEST);
    else
    if (info.st_size > S_MANIFEST_MAX)
        cbus_fail (reason, "%s is larger than %d bytes", path, S_MANIFEST_MAX);
    else
    if (!(manifest = json_load_file (path, JSON_REJECT_DUPLICATES, &error)))
        cbus_fail (reason, "%s does not parse: %s (line %d)", path, error.text, error.line);
    zstr_free (&path);
    if (!manifest)
        return NULL;
    json_t *format = json_object_get (manifest, "format");
    const char *network = json_string_value (json_object_get (manifest, "network"));
    const char *genesis = json_string_value (json_object_get (manifest, "genesis"));
    json_t *files = json_object_get (manifest, "files");
    cbus_pow_rule_t rule = cbus_config_pow_rule (config);
    cbus_block_t *block = cbus_block_new_genesis_rule (cbus_config_str (config, "node/network"),
                                                       &rule);
    uint8_t hash [CBUS_HASH_BYTES];
    char hex [CBUS_HASH_HEX] = "";
    if (block) {
        cbus_block_hash (block, hash);
        cbus_hash_hex (hash, hex);
    }
    cbus_block_destroy (&block);
    if (!json_is_integer (format) || json_integer_value (format) != S_FORMAT)
        cbus_fail (reason, "the manifest's format is not %d", S_FORMAT);
    else
    if (!network || !genesis || !json_is_array (files))
        cbus_fail (reason, "the manifest has no network, genesis or files");
    else
    if (!streq (genesis, hex))
        cbus_fail (reason, "the backup is of network %s (genesis %.16s...), this configuration's "
                   "genesis is %.16s... (network %s): give the node's --network, --pow-bits "
                   "and --block-interval, or its --config", network, genesis, hex,
                   cbus_config_str (config, "node/network"));
    else
        return manifest;
    json_decref (manifest);
    return NULL;
}

//  Copy a store's folder (LevelDB's files but its LOCK and info logs),
//  then open the copy and check its content against the manifest's sum.
//  0, S_REFUSED or -1 with a reason, as s_restore_files.
static int
s_restore_store (json_t *manifest, const char *from, const char *root, const char *name,
                 char *reason)
{
    json_t *entry = json_object_get (manifest, name);
    const char *sha256 = json_string_value (json_object_get (entry, "sha256"));
    json_t *entries = json_object_get (entry, "entries");
    if (!sha256 || !json_is_integer (entries))
        return s_refuse (reason, "the manifest has no sum of the %s store", name);
    char *source = zsys_sprintf ("%s/%s", from, name);
    char *target = zsys_sprintf ("%s/%s", root, name);
    DIR *dir = source ? opendir (source) : NULL;
    int rc = !source || !target ? cbus_fail (reason, "out of memory")
           : !dir ? cbus_fail (reason, "cannot read %s: %s", source, strerror (errno))
           : mkdir (target, 0700) ? cbus_fail (reason, "cannot make %s: %s", target, strerror (errno))
           : 0;
    struct dirent *entry_name;
    while (rc == 0 && (entry_name = readdir (dir))) {
        const char *file = entry_name->d_name;
        if (streq (file, ".") || streq (file, "..") || streq (file, "LOCK")
        ||  strncmp (file, "LOG", 3) == 0)
            continue;
        char *in = zsys_sprintf ("%s/%s", source, file);
        char *out = zsys_sprintf ("%s/%s", target, file);
        uint8_t hash [CBUS_HASH_BYTES];
        uint64_t size;
        rc = in && out ? s_copy_file (in, out, 0644, &size, hash, reason)
                       : cbus_fail (reason, "out of memory");
        zstr_free (&in);
        zstr_free (&out);
    }
    if (dir)
        closedir (dir);
    cbus_store_t *store = NULL;
    cbus_store_copy_sum_t sum;
    char hex [CBUS_HASH_HEX], why [CBUS_REASON_MAX];
    if (rc == 0 && !(store = cbus_store_open (target, 8, NULL, why)))
        rc = s_refuse (reason, "the %s store of the backup does not open: %s", name, why);
    else
    if (rc == 0 && cbus_store_copy_sum (store, &sum, why))
        rc = s_refuse (reason, "the %s store of the backup does not read: %s", name, why);
    else
    if (rc == 0 && (!streq (cbus_hash_hex (sum.digest, hex), sha256)
                ||  sum.entries != (uint64_t) json_integer_value (entries)))
        rc = s_refuse (reason, "the %s store does not match the manifest (%" PRIu64 " records, "
                        "sha256 %.16s...; the manifest says %" JSON_INTEGER_FORMAT ", %.16s...): "
                        "the backup is damaged", name, sum.entries, hex,
                        json_integer_value (entries), sha256);
    cbus_store_destroy (&store);
    if (rc == 0 && s_sync_path (target))
        rc = cbus_fail (reason, "cannot sync %s: %s", target, strerror (errno));
    zstr_free (&source);
    zstr_free (&target);
    return rc;
}

//  Copy the stores, then every file the manifest lists, checking each
//  one's size and SHA-256. 0; S_REFUSED with a reason when the backup
//  does not match its manifest; -1 with a reason when a copy failed.
static int
s_restore_files (json_t *manifest, const char *from, const char *root, char *reason)
{
    //  Every file is checked before anything is copied: a backup's file
    //  (a plain name, so no "..", "/" or absolute path), each once.
    size_t index;
    json_t *file;
    json_array_foreach (json_object_get (manifest, "files"), index, file) {
        const char *name = json_string_value (json_object_get (file, "path"));
        if (!name || !s_known_file (name))
            return s_refuse (reason, "the manifest's file %zu is not {path, size, sha256} of a "
                              "backup's file (%s)", index, name ? name : "no path");
        for (size_t before = 0; before < index; before++)
            if (streq (name, json_string_value (json_object_get (
                    json_array_get (json_object_get (manifest, "files"), before), "path"))))
                return s_refuse (reason, "the manifest lists %s twice: the backup is damaged",
                                  name);
    }
    for (size_t index = 0; index < sizeof (s_stores) / sizeof (s_stores [0]); index++) {
        int rc = s_restore_store (manifest, from, root, s_stores [index], reason);
        if (rc)
            return rc;
    }
    json_array_foreach (json_object_get (manifest, "files"), index, file) {
        const char *name = json_string_value (json_object_get (file, "path"));
        const char *sha256 = json_string_value (json_object_get (file, "sha256"));
        json_t *size = json_object_get (file, "size");
        if (!name || !sha256 || !json_is_integer (size) || !s_known_file (name))
            return s_refuse (reason, "the manifest's file %zu is not {path, size, sha256} of a "
                              "backup's file", index);
        char *source = zsys_sprintf ("%s/%s", from, name);
        char *target = zsys_sprintf ("%s/%s", root, name);
        uint8_t hash [CBUS_HASH_BYTES];
        char hex [CBUS_HASH_HEX];
        uint64_t copied = 0;
        int rc = source && target ? s_copy_file (source, target, 0600, &copied, hash, reason)
                                  : cbus_fail (reason, "out of memory");
        zstr_free (&source);
        zstr_free (&target);
        if (rc)
            return -1;
        cbus_hash_hex (hash, hex);
        if (copied != (uint64_t) json_integer_value (size) || !streq (hex, sha256))
            return s_refuse (reason, "%s/%s does not match the manifest (%" PRIu64 " bytes, "
                              "sha256 %.16s...; the manifest says %" JSON_INTEGER_FORMAT
                              " bytes, %.16s...): the backup is damaged", from, name, copied,
                              hex, json_integer_value (size), sha256);
    }
    return s_sync_path (root) ? cbus_fail (reason, "cannot sync %s: %s", root, strerror (errno)) : 0;
}

int
cbus_restore_run (cbus_config_t *config, const char *from)
{
    char reason [CBUS_REASON_MAX] = "";
    const char *root = cbus_config_data_dir (config);
    bool made = false;
    int rc = S_OK;
    struct stat info;
    json_t *manifest = NULL;
    if (stat (root, &info) == 0) {
        int empty = S_ISDIR (info.st_mode) ? s_empty_dir (root) : -1;
        if (empty != 1)
            rc = s_refuse (reason, "--data-dir %s %s: restore into a new or empty folder", root,
                            empty == 0 ? "is not empty" : "is not a folder we can read");
    }
    else
    if (errno != ENOENT || mkdir (root, 0700))
        rc = s_refuse (reason, "--data-dir %s cannot be made: %s", root, strerror (errno));
    else
        made = true;
    if (rc == S_OK && !(manifest = s_restore_manifest (config, from, reason)))
        rc = S_REFUSED;
    int copied = rc == S_OK ? s_restore_files (manifest, from, root, reason) : 0;
    if (copied) {
        //  A damaged backup is refused: nothing is left of it.
        rc = copied == S_REFUSED ? S_REFUSED : S_FAILED;
        s_remove_tree (root, made);
    }
    if (rc == S_OK) {
        json_t *chain = json_object_get (manifest, "chain");
        json_t *pool = json_object_get (manifest, "mempool");
        fprintf (stderr, "chainbus restore: network %s, chain height %" JSON_INTEGER_FORMAT
                 " (%" JSON_INTEGER_FORMAT " records), mempool (%" JSON_INTEGER_FORMAT
                 " records) and %zu files checked against the manifest and restored from %s "
                 "into %s: start the node with --data-dir %s\n",
                 json_string_value (json_object_get (manifest, "network")),
                 json_integer_value (json_object_get (chain, "height")),
                 json_integer_value (json_object_get (chain, "entries")),
                 json_integer_value (json_object_get (pool, "entries")),
                 json_array_size (json_object_get (manifest, "files")), from, root, root);
    }
    else {
        fprintf (stderr, "chainbus restore: %s\n", reason);
        if (made && rc == S_REFUSED)
            rmdir (root);
    }
    json_decref (manifest);
    return rc;
}
