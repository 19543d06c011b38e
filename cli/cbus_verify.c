/*  =========================================================================
    cbus_verify - `chainbus verify`: audit a stopped node's chain store

    Opens the store without the chainstore's code, checks that it is this
    network's, and runs the audit (cbus_audit: the walk, then the scans).
    =========================================================================
*/
#include "cbus_verify.h"
#include "cbus_audit.h"
#include <fcntl.h>
#include <sys/stat.h>

//  LevelDB block cache for the audit: reads are mostly sequential.
#define S_CACHE_MB      8

//  True if a process holds LevelDB's lock on the store (its fcntl lock
//  on LOCK), with its pid: the refusal can then name the process.
static bool
s_locked (const char *path, pid_t *pid)
{
    char *lock = zsys_sprintf ("%s/LOCK", path);
    int fd = open (lock, O_RDWR);
    zstr_free (&lock);
    if (fd < 0)
        return false;
    struct flock request = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    bool locked = fcntl (fd, F_GETLK, &request) == 0 && request.l_type != F_UNLCK;
    *pid = request.l_pid;
    close (fd);
    return locked;
}

//  Open the store of a stopped node without creating one. Returns the
//  exit code to give up with, or -1 with the store in *store_p.
static int
s_open (const char *path, cbus_store_t **store_p)
{
    struct stat st;
    pid_t pid = 0;
    char reason [CBUS_REASON_MAX];
    char *current = zsys_sprintf ("%s/CURRENT", path);
    bool store = stat (current, &st) == 0;
    zstr_free (&current);
    if (stat (path, &st) || !S_ISDIR (st.st_mode)) {
        fprintf (stderr, "chainbus verify: no chain store at %s (is --data-dir the node's "
                 "data folder?)\n", path);
        return CBUS_VERIFY_REFUSED;
    }
    if (!store) {
        fprintf (stderr, "chainbus verify: %s is not a chain store (no LevelDB CURRENT file)\n", path);
        return CBUS_VERIFY_REFUSED;
    }
    if (s_locked (path, &pid)) {
        fprintf (stderr, "chainbus verify: stop the node first (the store is locked: process %d "
                 "holds %s)\n", (int) pid, path);
        return CBUS_VERIFY_REFUSED;
    }
    cbus_store_fault_t fault;
    *store_p = cbus_store_open_audit (path, S_CACHE_MB, &fault, reason);
    if (*store_p)
        return -1;
    if (fault == CBUS_STORE_CORRUPT) {
        printf ("chain NOT sound: the store does not open: %s\n", reason);
        return CBUS_VERIFY_PROBLEMS;
    }
    if (fault == CBUS_STORE_LOCKED)
        fprintf (stderr, "chainbus verify: stop the node first (the store is locked: %s)\n", reason);
    else
        fprintf (stderr, "chainbus verify: %s\n", reason);
    return CBUS_VERIFY_REFUSED;
}

//  The meta record must be the one this network's chainstore writes.
//  Returns the exit code to give up with, or -1.
static int
s_check_meta (cbus_store_t *store, const char *network, const cbus_pow_rule_t *rule,
              const char *path)
{
    uint8_t work [CBUS_U256_BYTES];
    if (cbus_pow_work (rule->bits, work)) {
        fprintf (stderr, "chainbus verify: invalid proof-of-work bits %08x\n", rule->bits);
        return CBUS_VERIFY_REFUSED;
    }
    cbus_block_t *genesis = cbus_block_new_genesis_rule (network, rule);
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_block_hash (genesis, hash);
    cbus_block_destroy (&genesis);
    char *expected = cbus_layout_meta (network, rule, hash);
    char *value = NULL;
    size_t size;
    cbus_layout_key_t key = cbus_layout_single_key (CBUS_LAYOUT_META);
    int rc = -1;
    if (cbus_store_get (store, key.bytes, key.size, &value, &size)) {
        printf ("chain NOT sound: the meta record ('M') cannot be read: %s\n",
                cbus_store_error (store));
        rc = CBUS_VERIFY_PROBLEMS;
    }
    else
    if (!value) {
        fprintf (stderr, "chainbus verify: %s holds no meta record ('M'): not a chain store\n", path);
        rc = CBUS_VERIFY_REFUSED;
    }
    else
    if (size != strlen (expected) || memcmp (value, expected, size) != 0) {
        fprintf (stderr, "chainbus verify: the chain store at %s was made for another network "
                 "(it holds '%.*s', verify was given '%s'): give the node's --network, "
                 "--pow-bits and --block-interval, or its --config\n", path, (int) (size > 200? 200: size), value, expected);
        rc = CBUS_VERIFY_REFUSED;
    }
    cbus_store_free (value);
    zstr_free (&expected);
    return rc;
}

//  The last lines: what is missing whole, then the summary. Returns the
//  exit code.
static int
s_summary (cbus_audit_t *self)
{
    if (self->blocks == 0)
        cbus_audit_say (self, "height index ('H'): empty: the store holds no active chain");
    if (!self->have_users && self->users_expected)
        cbus_audit_say (self, "user history ('U'): missing whole: the blocks name %" PRIu64 " users "
                        "(a store written before the history index existed?)", self->users_expected);
    if (!self->have_keys && self->keys_expected)
        cbus_audit_say (self, "key history ('K'): missing whole: the blocks give %" PRIu64 " keys "
                        "(a store written before the history index existed?)", self->keys_expected);
    char hex [CBUS_HASH_HEX];
    if (self->problems == 0) {
        printf ("chain sound: %" PRIu64 " blocks, %" PRIu64 " transactions, %" PRIu64 " signed, "
                "%" PRIu64 " user and %" PRIu64 " key history entries, tip %s (height %" PRIu64 ")\n",
                self->blocks, self->tx_count, self->signed_count, self->users_found,
                self->keys_found, cbus_hash_hex (self->tip, hex), self->tip_height);
        return CBUS_VERIFY_SOUND;
    }
    printf ("chain NOT sound: %" PRIu64 " problem%s (%" PRIu64 " blocks, %" PRIu64
            " transactions checked)", self->problems, self->problems == 1? "": "s",
            self->blocks, self->tx_count);
    if (self->problems > CBUS_AUDIT_SHOW_MAX)
        printf ("; the first %d are shown", CBUS_AUDIT_SHOW_MAX);
    printf ("\n");
    return CBUS_VERIFY_PROBLEMS;
}

int
cbus_verify_run (cbus_config_t *config)
{
    const char *network = cbus_config_str (config, "node/network");
    cbus_pow_rule_t rule = cbus_config_pow_rule (config);
    char *path = cbus_config_path (config, "chain");
    cbus_store_t *store = NULL;
    cbus_audit_t *audit = NULL;
    int rc = s_open (path, &store);
    if (rc < 0)
        rc = s_check_meta (store, network, &rule, path);
    if (rc >= 0)
        goto cleanup;
    audit = cbus_audit_new (store, network, &rule,
                            (uint64_t) cbus_config_int (config, "chainstore/max_future_ms"));
    audit->have_users = cbus_audit_any (audit, CBUS_LAYOUT_USER);
    audit->have_keys = cbus_audit_any (audit, CBUS_LAYOUT_KEY);
    cbus_audit_walk (audit);
    cbus_audit_scan (audit);
    if (audit->interrupted) {
        fprintf (stderr, "chainbus verify: interrupted\n");
        rc = CBUS_VERIFY_REFUSED;
    }
    else
        rc = s_summary (audit);
cleanup:
    fflush (stdout);
    cbus_audit_destroy (&audit);
    cbus_store_destroy (&store);
    zstr_free (&path);
    return rc;
}

int
cbus_verify_main (int argc, char **argv)
{
    for (int arg = 1; arg < argc; arg++)
        if (streq (argv [arg], "--help") || streq (argv [arg], "-h")) {
            printf ("usage: chainbus verify --data-dir D [--network N --pow-bits B | --config F]\n\n"
                    "Re-check a stopped node's chain store from genesis: links, proof of work,\n"
                    "merkle roots, signatures, times, work and every index. Prints each problem\n"
                    "and a summary; exits 0 if the chain is sound, 1 if problems were found,\n"
                    "2 if it could not audit (no store, a running node, another network).\n\n"
                    "flags:\n");
            cbus_config_print_help (stdout);
            return CBUS_VERIFY_SOUND;
        }
    char reason [CBUS_REASON_MAX];
    cbus_config_t *config = cbus_config_new_with_args (argc, argv, reason);
    if (!config) {
        fprintf (stderr, "chainbus verify: %s\n", reason);
        return CBUS_VERIFY_REFUSED;
    }
    int rc;
    if (cbus_config_arg_count (config)) {
        fprintf (stderr, "chainbus verify: unexpected argument '%s'\n", cbus_config_arg (config, 0));
        rc = CBUS_VERIFY_REFUSED;
    }
    else {
        //  Every problem is reported here; the store's own log lines
        //  would only repeat them.
        zsys_init ();
        zsys_set_logstream (NULL);
        rc = cbus_verify_run (config);
    }
    cbus_config_destroy (&config);
    return rc;
}
