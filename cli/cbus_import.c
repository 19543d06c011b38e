/*  =========================================================================
    cbus_import - `chainbus import`: a chain from a JSON file into an empty
    data folder
    =========================================================================
*/
#include "cbus_import.h"
#include <stdarg.h>
#include <ftw.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>

static int
s_remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

//  Remove a folder and everything in it; 0 if it is gone.
static int
s_remove_tree (const char *path)
{
    struct stat st;
    if (lstat (path, &st) && errno == ENOENT)
        return 0;
    return nftw (path, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

//  0 if path is missing or an empty folder; -1 otherwise.
static int
s_check_empty (const char *path, char *reason)
{
    struct stat st;
    if (lstat (path, &st))
        return errno == ENOENT? 0: cbus_fail (reason, "cannot read %s: %s", path, strerror (errno));
    if (!S_ISDIR (st.st_mode))
        return cbus_fail (reason, "%s exists and is not a folder", path);
    DIR *dir = opendir (path);
    if (!dir)
        return cbus_fail (reason, "cannot read %s: %s", path, strerror (errno));
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir (dir)))
        if (!streq (entry->d_name, ".") && !streq (entry->d_name, ".."))
            rc = cbus_fail (reason, "%s already holds a chain: import needs a data folder "
                         "without one", path);
    closedir (dir);
    return rc;
}

//  Load the file and find its list of blocks. Returns the document (a
//  new reference) and the list (borrowed), or NULL with a reason.
static json_t *
s_load (const char *path, json_t **chain_p, char *reason)
{
    json_error_t error;
    json_t *root = streq (path, "-")
        ? json_loadf (stdin, JSON_REJECT_DUPLICATES, &error)
        : json_load_file (path, JSON_REJECT_DUPLICATES, &error);
    if (!root) {
        if (error.line > 0)
            cbus_fail (reason, "%s: not valid JSON: %s (line %d, column %d)", path, error.text,
                    error.line, error.column);
        else
            cbus_fail (reason, "%s: %s", path, error.text);
        return NULL;
    }
    json_t *chain = json_object_get (root, "chain");
    json_t *length = json_object_get (root, "length");
    if (!json_is_object (root) || !json_is_array (chain) || json_array_size (chain) == 0)
        cbus_fail (reason, "%s: not a chain: expected {\"chain\": [blocks...], \"length\": n}", path);
    else
    if (length && (!json_is_integer (length)
               ||  json_integer_value (length) != (json_int_t) json_array_size (chain)))
        cbus_fail (reason, "%s: length does not match the %zu blocks in chain", path,
                json_array_size (chain));
    else {
        *chain_p = chain;
        return root;
    }
    json_decref (root);
    return NULL;
}

//  A block of the file from its JSON; the reason names it by position
//  when its own index could not be read.
static cbus_block_t *
s_block_from_json (json_t *blocks, size_t position, char *reason)
{
    char inner [CBUS_REASON_MAX];
    cbus_block_t *block = cbus_block_new_from_json (json_array_get (blocks, position), inner);
    if (!block && strncmp (inner, "block: ", 7) == 0)
        cbus_fail (reason, "block %zu: %s", position, inner + 7);
    else
    if (!block)
        memcpy (reason, inner, CBUS_REASON_MAX);
    return block;
}

//  The file's first block must be this network's genesis, exactly.
static int
s_check_genesis (json_t *blocks, const char *network, const cbus_pow_rule_t *rule, char *reason)
{
    cbus_block_t *block = s_block_from_json (blocks, 0, reason);
    if (!block)
        return -1;
    cbus_block_t *genesis = cbus_block_new_genesis_rule (network, rule);
    uint8_t hash [CBUS_HASH_BYTES], expected [CBUS_HASH_BYTES];
    cbus_block_hash (block, hash);
    cbus_block_hash (genesis, expected);
    int rc = 0;
    if (memcmp (hash, expected, CBUS_HASH_BYTES) || cbus_block_tx_count (block) > 0)
        rc = cbus_fail (reason, "block 0 is not the genesis of network %s with pow bits %08x "
                     "and block interval %u (give the --network, --pow-bits and "
                     "--block-interval of the node that made the file)",
                     network, rule->bits, rule->interval_s);
    cbus_block_destroy (&genesis);
    cbus_block_destroy (&block);
    return rc;
}

//  Submit every block after genesis, in order; each must extend the one
//  before. Each element of chain is released once submitted, so that
//  memory does not hold the file twice over.
static int
s_submit_all (cbus_chain_t *chain, json_t *blocks, char *reason)
{
    cbus_buf_t bytes = {0};
    int rc = 0;
    for (size_t index = 1; index < json_array_size (blocks) && rc == 0; index++) {
        if (zsys_interrupted) {
            rc = cbus_fail (reason, "interrupted");
            break;
        }
        cbus_block_t *block = s_block_from_json (blocks, index, reason);
        if (!block) {
            rc = -1;
            break;
        }
        uint64_t height = cbus_block_header (block)->height;
        cbus_buf_reset (&bytes);
        cbus_block_encode (block, &bytes);
        cbus_block_destroy (&block);
        json_array_set_new (blocks, index, json_null ());
        if (height != index) {
            rc = cbus_fail (reason, "block %zu: its index is %" PRIu64, index, height);
            break;
        }
        char inner [CBUS_REASON_MAX];
        uint8_t hash [CBUS_HASH_BYTES];
        cbus_chain_result_t result = cbus_chain_submit (chain, bytes.data, bytes.size, hash, NULL, inner);
        if (result == CBUS_CHAIN_CONNECTED && cbus_chain_left_count (chain) == 0)
            continue;
        if (result == CBUS_CHAIN_INVALID || result == CBUS_CHAIN_FAILED)
            rc = cbus_fail (reason, "block %zu: %s", index, inner);
        else
        if (result == CBUS_CHAIN_DUPLICATE)
            rc = cbus_fail (reason, "block %zu: the same block is already in the file", index);
        else
            rc = cbus_fail (reason, "block %zu: does not extend block %zu", index, index - 1);
    }
    cbus_buf_free (&bytes);
    return rc;
}

int
cbus_import_run (cbus_config_t *config, const char *path)
{
    char reason [CBUS_REASON_MAX];
    const char *network = cbus_config_str (config, "node/network");
    cbus_pow_rule_t rule = cbus_config_pow_rule (config);
    char *final = cbus_config_path (config, "chain");
    char *temp = cbus_config_path (config, "chain.import");
    char *lock_path = cbus_config_path (config, "run/node.lock");
    json_t *root = NULL;
    json_t *blocks = NULL;
    cbus_chain_t *chain = NULL;
    bool made_temp = false;
    int lock = -1;
    int rc = 1;

    if (cbus_config_make_dirs (config, reason))
        goto cleanup;
    //  The node's own lock: no node starts on the folder while we fill it,
    //  and two imports do not race.
    lock = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock (lock, LOCK_EX | LOCK_NB)) {
        cbus_fail (reason, "a node is running on %s: stop it first", cbus_config_data_dir (config));
        goto cleanup;
    }
    if (s_check_empty (final, reason))
        goto cleanup;
    if (!(root = s_load (path, &blocks, reason)))
        goto cleanup;
    if (s_check_genesis (blocks, network, &rule, reason))
        goto cleanup;
    //  Whatever an interrupted import left is ours to remove.
    if (s_remove_tree (temp)) {
        cbus_fail (reason, "cannot remove %s: %s", temp, strerror (errno));
        goto cleanup;
    }
    made_temp = true;
    //  The reason says everything the store would log.
    zsys_set_logstream (NULL);
    chain = cbus_chain_new (temp, network, &rule,
                            (size_t) cbus_config_int (config, "chainstore/cache_mb"),
                            (uint64_t) cbus_config_int (config, "chainstore/max_future_ms"),
                            reason);
    zsys_set_logstream (stderr);
    if (!chain || s_submit_all (chain, blocks, reason))
        goto cleanup;
    cbus_chain_entry_t tip;
    char hex [CBUS_HASH_HEX];
    cbus_hash_hex (cbus_chain_tip (chain, &tip), hex);
    cbus_chain_destroy (&chain);
    //  An empty chain folder gives way; rename then replaces it whole.
    rmdir (final);
    if (rename (temp, final)) {
        cbus_fail (reason, "cannot rename %s to %s: %s", temp, final, strerror (errno));
        goto cleanup;
    }
    made_temp = false;
    int dir = open (cbus_config_data_dir (config), O_RDONLY | O_DIRECTORY);
    if (dir >= 0) {
        fsync (dir);
        close (dir);
    }
    fprintf (stderr, "chainbus import: %" PRIu64 " blocks (heights 0 to %" PRIu64
             ", network %s, tip %s) into %s\n", tip.height + 1, tip.height, network, hex, final);
    rc = 0;
cleanup:
    if (rc)
        fprintf (stderr, "chainbus import: %s\n", reason);
    cbus_chain_destroy (&chain);
    if (made_temp)
        s_remove_tree (temp);
    json_decref (root);
    if (lock >= 0)
        close (lock);
    zstr_free (&lock_path);
    zstr_free (&temp);
    zstr_free (&final);
    return rc;
}
