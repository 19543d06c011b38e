/*  =========================================================================
    cbus_export - `chainbus export`: a node's chain as one JSON file
    =========================================================================
*/
#include "cbus_export.h"
#include <stdarg.h>
#include <sys/stat.h>
#include <libgen.h>

//  How long a running node's chainstore gets to answer PING before the
//  store is opened directly, and to answer each later request.
#define S_PING_MS       500
#define S_CALL_MS       10000
//  Block bytes asked for in one CHAIN.PAGE (as the gateway asks).
#define S_PAGE_BYTES    (256 * 1024)

//  Where the JSON goes: a temporary file renamed at the end, or stdout.
typedef struct {
    const char *path;           //  Final path, or "-"
    char *temp;                 //  Temporary path beside it (NULL: stdout)
    FILE *stream;               //  Open stream
    cbus_buf_t text;            //  JSON of the block being written
    uint64_t count;             //  Blocks written
    uint8_t last [CBUS_HASH_BYTES];  //  Hash of the last block written
} s_sink_t;

static int
s_sink_open (s_sink_t *self, const char *path, char *reason)
{
    self->path = path;
    if (streq (path, "-")) {
        self->stream = stdout;
        return 0;
    }
    self->temp = zsys_sprintf ("%s.tmp.XXXXXX", path);
    int fd = mkstemp (self->temp);
    if (fd < 0) {
        cbus_fail (reason, "cannot create a file beside %s: %s", path, strerror (errno));
        zstr_free (&self->temp);
        return -1;
    }
    //  mkstemp makes the file 0600; the export gets the usual mode.
    mode_t mask = umask (0);
    umask (mask);
    if (fchmod (fd, 0666 & ~mask) || !(self->stream = fdopen (fd, "w"))) {
        cbus_fail (reason, "cannot write %s: %s", self->temp, strerror (errno));
        close (fd);
        unlink (self->temp);
        zstr_free (&self->temp);
        return -1;
    }
    return 0;
}

static int
s_sink_write (s_sink_t *self, const char *data, size_t size, char *reason)
{
    if (fwrite (data, 1, size, self->stream) != size)
        return cbus_fail (reason, "cannot write %s: %s", self->temp? self->temp: "stdout",
                       strerror (errno));
    return 0;
}

//  Append one block from its stored bytes. It must be the block at the
//  next height and the child of the last one written: a reorganisation
//  while a running node is exported ends the export rather than writing
//  something that is not a chain.
static int
s_sink_block (s_sink_t *self, const void *data, size_t size, char *reason)
{
    cbus_header_t header;
    if (cbus_block_header_from_bytes (data, size, &header))
        return cbus_fail (reason, "the block at height %" PRIu64 " does not decode", self->count);
    if (header.height != self->count
    ||  (self->count > 0 && memcmp (header.prev_hash, self->last, CBUS_HASH_BYTES)))
        return cbus_fail (reason, "the active chain changed at height %" PRIu64
                          " while it was being exported; export again", self->count);
    cbus_buf_reset (&self->text);
    if (self->count > 0)
        cbus_buf_puts (&self->text, ", ");
    if (cbus_block_bytes_to_json (data, size, &self->text))
        return cbus_fail (reason, "the block at height %" PRIu64 " does not decode", self->count);
    if (s_sink_write (self, self->text.data, self->text.size, reason))
        return -1;
    cbus_header_hash (&header, self->last);
    self->count++;
    return 0;
}

//  Finish the document and make it durable under its final name.
static int
s_sink_commit (s_sink_t *self, char *reason)
{
    cbus_buf_reset (&self->text);
    cbus_buf_printf (&self->text, "], \"length\": %" PRIu64 "}", self->count);
    if (s_sink_write (self, self->text.data, self->text.size, reason))
        return -1;
    if (!self->temp) {
        if (fflush (self->stream))
            return cbus_fail (reason, "cannot write stdout: %s", strerror (errno));
        return 0;
    }
    FILE *stream = self->stream;
    self->stream = NULL;
    if (fflush (stream) || fsync (fileno (stream))) {
        cbus_fail (reason, "cannot write %s: %s", self->temp, strerror (errno));
        fclose (stream);
        return -1;
    }
    if (fclose (stream))
        return cbus_fail (reason, "cannot write %s: %s", self->temp, strerror (errno));
    if (rename (self->temp, self->path))
        return cbus_fail (reason, "cannot rename %s to %s: %s", self->temp, self->path,
                       strerror (errno));
    zstr_free (&self->temp);
    //  The rename is durable once the folder is synced.
    char *folder = strdup (self->path);
    int fd = open (dirname (folder), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync (fd);
        close (fd);
    }
    free (folder);
    return 0;
}

//  Close; a temporary file that was not committed is removed.
static void
s_sink_close (s_sink_t *self)
{
    if (self->stream && self->stream != stdout)
        fclose (self->stream);
    self->stream = NULL;
    if (self->temp) {
        unlink (self->temp);
        zstr_free (&self->temp);
    }
    cbus_buf_free (&self->text);
}

//  One request to the chainstore, its body encoded by the caller from
//  the message's definition. Returns its OK reply (a map; caller
//  destroys), or NULL with a reason: no answer (a reply made locally
//  has no body), a body that does not decode, or a refusal.
static cbus_reply_t *
s_call (cbus_client_t *client, const char *command, const cbus_buf_t *body, char *reason)
{
    cbus_reply_t *reply = cbus_client_request (client, command, body->data, body->size,
                                               S_CALL_MS);
    if (cbus_reply_ok (reply))
        return reply;
    if (zsys_interrupted)
        cbus_fail (reason, "interrupted");
    else
    if (!reply->body)
        cbus_fail (reason, "chainbus-chainstore did not answer %s in time", command);
    else
    if (streq (reply->status, CBUS_STATUS_OK))
        cbus_fail (reason, "chainbus-chainstore sent a reply to %s that does not decode", command);
    else
        cbus_fail (reason, "chainbus-chainstore answered %s %s: %s", command, reply->status,
                   reply->reason);
    cbus_reply_destroy (&reply);
    return NULL;
}

//  A reply that decoded as a map but not as its message: the decoder's
//  reason (why) names the message and the field.
static int
s_unfit (const char *why, char *reason)
{
    return cbus_fail (reason, "chainbus-chainstore sent a reply that does not fit: %s", why);
}

//  Whether the node's chainstore answers PING quickly (it is running and
//  owns the store): 1 when it answers with a chainstore's pong, 0 when
//  nothing answers, -1 with a reason when something else answers.
static int
s_node_running (cbus_client_t *client, char *reason)
{
    cbus_buf_t body = {0};
    cbus_ping_t ping = {0};
    cbus_ping_encode (&ping, &body);
    cbus_reply_t *reply = cbus_client_request (client, CBUS_CMD_PING, body.data, body.size,
                                               S_PING_MS);
    cbus_buf_free (&body);
    int running = 0;
    if (streq (reply->status, CBUS_STATUS_OK)) {
        cbus_pong_t pong;
        char why [CBUS_REASON_MAX] = "PING reply: not a map";
        if (!cbus_reply_ok (reply) || cbus_pong_decode (cbus_reply_map (reply), &pong, why))
            running = s_unfit (why, reason);
        else
        if (!cbus_str_eq (pong.role, "chainstore"))
            running = cbus_fail (reason, "the chainstore's endpoint is answered by %.*s",
                                 (int) pong.role.size, pong.role.data);
        else
            running = 1;
    }
    cbus_reply_destroy (&reply);
    return running;
}

//  From a running node: pin the tip, then page up to it.
static int
s_export_running (cbus_client_t *client, s_sink_t *sink, char *network, char *reason)
{
    cbus_reply_t *reply = NULL;
    cbus_buf_t body = {0};
    char why [CBUS_REASON_MAX];
    int rc = -1;
    cbus_tip_t ask_tip = {0};
    cbus_tip_encode (&ask_tip, &body);
    if (!(reply = s_call (client, CBUS_CMD_TIP, &body, reason)))
        goto cleanup;
    cbus_tip_reply_t tip;
    if (cbus_tip_reply_decode (cbus_reply_map (reply), &tip, why)) {
        s_unfit (why, reason);
        goto cleanup;
    }
    uint64_t height = tip.height;
    snprintf (network, 64, "%.*s", (int) tip.network.size, tip.network.data);
    while (sink->count <= height) {
        if (zsys_interrupted) {
            cbus_fail (reason, "interrupted");
            goto cleanup;
        }
        cbus_chain_page_t ask = { .from = sink->count, .to = height, .max_bytes = S_PAGE_BYTES };
        cbus_chain_page_encode (&ask, &body);
        cbus_reply_destroy (&reply);
        if (!(reply = s_call (client, CBUS_CMD_CHAIN_PAGE, &body, reason)))
            goto cleanup;
        cbus_chain_page_reply_t page;
        if (cbus_chain_page_reply_decode (cbus_reply_map (reply), &page, why)) {
            s_unfit (why, reason);
            goto cleanup;
        }
        if (page.blocks.count == 0) {
            cbus_fail (reason, "chainbus-chainstore sent a page without blocks");
            goto cleanup;
        }
        for (uint32_t index = 0; index < page.blocks.count && sink->count <= height; index++) {
            cbus_bytes_t block = cbus_list_bytes (&page.blocks, index);
            if (s_sink_block (sink, block.data, block.size, reason))
                goto cleanup;
        }
    }
    rc = 0;
cleanup:
    cbus_reply_destroy (&reply);
    cbus_buf_free (&body);
    return rc;
}

//  From a stopped node: open its store and walk the active chain.
static int
s_export_stopped (cbus_config_t *config, s_sink_t *sink, char *reason)
{
    char *path = cbus_config_path (config, "chain");
    cbus_chain_t *chain = NULL;
    int rc = -1;
    struct stat st;
    //  Opening would create an empty store: there is nothing to export.
    if (stat (path, &st) || !S_ISDIR (st.st_mode)) {
        cbus_fail (reason, "no chain at %s (no node running there, and no store)", path);
        goto cleanup;
    }
    //  The reason says everything the store would log.
    zsys_set_logstream (NULL);
    cbus_store_fault_t fault;
    cbus_pow_rule_t rule = cbus_config_pow_rule (config);
    chain = cbus_chain_open (path, cbus_config_str (config, "node/network"), &rule,
                             (size_t) cbus_config_int (config, "chainstore/cache_mb"),
                             (uint64_t) cbus_config_int (config, "chainstore/max_future_ms"),
                             &fault, reason);
    zsys_set_logstream (stderr);
    if (!chain) {
        if (fault == CBUS_STORE_LOCKED)
            strncat (reason, " (a node holds it but its chainstore does not answer)",
                     CBUS_REASON_MAX - strlen (reason) - 1);
        goto cleanup;
    }
    cbus_chain_entry_t tip;
    cbus_chain_tip (chain, &tip);
    for (uint64_t height = 0; height <= tip.height; height++) {
        if (zsys_interrupted) {
            cbus_fail (reason, "interrupted");
            goto cleanup;
        }
        uint8_t hash [CBUS_HASH_BYTES];
        char *bytes = NULL;
        size_t size;
        if (cbus_chain_hash_at (chain, height, hash)
        ||  cbus_chain_block_by_hash (chain, hash, &bytes, &size) || !bytes) {
            cbus_fail (reason, "the store has no block at height %" PRIu64, height);
            goto cleanup;
        }
        int written = s_sink_block (sink, bytes, size, reason);
        cbus_store_free (bytes);
        if (written)
            goto cleanup;
    }
    rc = 0;
cleanup:
    cbus_chain_destroy (&chain);
    zstr_free (&path);
    return rc;
}

int
cbus_export_run (cbus_config_t *config, const char *path)
{
    char reason [CBUS_REASON_MAX];
    char network [64];
    s_sink_t sink = {0};
    char *endpoint = cbus_config_endpoint (config, "chainstore");
    cbus_client_t *client = cbus_client_new (endpoint);
    zstr_free (&endpoint);
    int rc = 1;
    if (!client) {
        fprintf (stderr, "chainbus export: cannot make a socket for the chainstore\n");
        return 1;
    }
    if (s_sink_open (&sink, path, reason))
        goto cleanup;
    cbus_buf_puts (&sink.text, "{\"chain\": [");
    if (s_sink_write (&sink, sink.text.data, sink.text.size, reason))
        goto cleanup;
    int running = s_node_running (client, reason);
    if (running < 0)
        goto cleanup;
    if (running) {
        if (s_export_running (client, &sink, network, reason))
            goto cleanup;
    }
    else {
        snprintf (network, sizeof (network), "%s", cbus_config_str (config, "node/network"));
        if (s_export_stopped (config, &sink, reason))
            goto cleanup;
    }
    if (s_sink_commit (&sink, reason))
        goto cleanup;
    fprintf (stderr, "chainbus export: %" PRIu64 " blocks (heights 0 to %" PRIu64
             ", network %s) from the %s to %s\n", sink.count, sink.count - 1, network,
             running? "running node": "stopped node's store", streq (path, "-")? "stdout": path);
    rc = 0;
cleanup:
    if (rc)
        fprintf (stderr, "chainbus export: %s\n", reason);
    s_sink_close (&sink);
    cbus_client_destroy (&client);
    return rc;
}
