/*  =========================================================================
    cbus_launcher - `chainbus node`: a whole node as child processes
    =========================================================================
*/
#include "cbus_launcher.h"
#include "cbus_children.h"
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <libgen.h>
#include <sodium.h>

//  First restart delay, and how long a child must live to count as well.
#define S_BACKOFF_MIN_MS  250
#define S_HEALTHY_MS      10000
//  How long children get to stop before SIGKILL.
#define S_GRACE_MS        10000

typedef struct {
    char name [32];             //  Role and instance, for logs
    char program [PATH_MAX];    //  Binary to run
    pid_t pid;                  //  0 when not running
    int64_t started;            //  Monotonic ms of the last start
    int64_t restart_at;         //  When to start it again (0: not due)
    int backoff_ms;             //  Next restart delay
    unsigned restarts;          //  How many times it was restarted
} s_child_t;

typedef struct {
    s_child_t *children;        //  In start order
    size_t count;               //  Entries in children
    zlist_t *args;              //  Flags given to every child
    int backoff_max_ms;         //  launcher/restart_max_ms
} s_launcher_t;

static int
s_start (s_launcher_t *self, s_child_t *child)
{
    pid_t pid = cbus_children_start (child->program, self->args, -1, child->name);
    if (pid < 0)
        return -1;
    child->pid = pid;
    child->started = cbus_mono_ms ();
    child->restart_at = 0;
    zsys_info ("started child=%s pid=%d", child->name, (int) pid);
    return 0;
}

//  A child ended: log how, and schedule its restart.
static void
s_on_exit (s_launcher_t *self, s_child_t *child, int status)
{
    int64_t now = cbus_mono_ms ();
    int64_t lived = now - child->started;
    if (lived >= S_HEALTHY_MS)
        child->backoff_ms = S_BACKOFF_MIN_MS;
    char how [64];
    if (WIFSIGNALED (status))
        snprintf (how, sizeof (how), "signal=%d", WTERMSIG (status));
    else
        snprintf (how, sizeof (how), "exit=%d", WEXITSTATUS (status));
    child->pid = 0;
    child->restart_at = now + child->backoff_ms;
    child->restarts++;
    zsys_warning ("child died child=%s %s lived_ms=%" PRId64 " restart_in_ms=%d restarts=%u",
                  child->name, how, lived, child->backoff_ms, child->restarts);
    child->backoff_ms *= 2;
    if (child->backoff_ms > self->backoff_max_ms)
        child->backoff_ms = self->backoff_max_ms;
}

static void
s_add_child (s_launcher_t *self, const char *dir, const char *role, const char *name)
{
    s_child_t *child = &self->children [self->count++];
    snprintf (child->name, sizeof (child->name), "%s", name);
    snprintf (child->program, sizeof (child->program), "%s/chainbus-%s", dir, role);
    child->backoff_ms = S_BACKOFF_MIN_MS;
}

//  Stop every child: SIGTERM, wait, SIGKILL what is left.
static void
s_stop_all (s_launcher_t *self)
{
    pid_t **pids = (pid_t **) calloc (self->count, sizeof (pid_t *));
    const char **names = (const char **) calloc (self->count, sizeof (char *));
    for (size_t index = 0; index < self->count; index++) {
        pids [index] = &self->children [index].pid;
        names [index] = self->children [index].name;
    }
    cbus_children_stop (pids, names, self->count, S_GRACE_MS);
    free (pids);
    free (names);
}

int
cbus_launcher_run (cbus_config_t *config)
{
    char reason [CBUS_REASON_MAX];
    if (cbus_config_make_dirs (config, reason)) {
        fprintf (stderr, "chainbus node: %s\n", reason);
        return 2;
    }
    //  A token file the gateway cannot use stops the node now, with the
    //  reason, rather than a gateway that keeps failing.
    const char *token_file = cbus_config_str (config, "gateway/admin_token_file");
    char token [CBUS_TOKEN_MAX + 1];
    if (*token_file && cbus_token_load (token_file, token, reason)) {
        fprintf (stderr, "chainbus node: %s\n", reason);
        return 2;
    }
    sodium_memzero (token, sizeof (token));
    //  Tcp endpoints: their keys and the allowlist are checked now (and
    //  the service keypair made once, before the children would race).
    cbus_endpoint_t *keys = cbus_endpoint_new (config, "node", reason);
    if (!keys) {
        fprintf (stderr, "chainbus node: %s\n", reason);
        return 2;
    }
    cbus_endpoint_destroy (&keys);
    //  One node per data directory.
    char *lock_path = cbus_config_path (config, "run/node.lock");
    int lock = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock (lock, LOCK_EX | LOCK_NB)) {
        fprintf (stderr, "chainbus node: another node is running on %s\n", cbus_config_data_dir (config));
        zstr_free (&lock_path);
        return 2;
    }
    zstr_free (&lock_path);

    char exe [PATH_MAX];
    ssize_t size = readlink ("/proc/self/exe", exe, sizeof (exe) - 1);
    if (size <= 0) {
        fprintf (stderr, "chainbus node: cannot find my own binary\n");
        return 2;
    }
    exe [size] = 0;
    const char *dir = dirname (exe);

    int miners = (int) cbus_config_int (config, "launcher/miners");
    s_launcher_t self = {
        .children = (s_child_t *) calloc ((size_t) miners + 5, sizeof (s_child_t)),
        .args = cbus_config_child_args (config),
        .backoff_max_ms = (int) cbus_config_int (config, "launcher/restart_max_ms"),
    };
    s_add_child (&self, dir, "bus", "bus");
    s_add_child (&self, dir, "chainstore", "chainstore");
    s_add_child (&self, dir, "mempool", "mempool");
    s_add_child (&self, dir, "peersync", "peersync");
    for (int index = 0; index < miners; index++) {
        char name [32];
        snprintf (name, sizeof (name), "miner.%d", index + 1);
        s_add_child (&self, dir, "miner", name);
    }
    s_add_child (&self, dir, "gateway", "gateway");
    for (size_t index = 0; index < self.count; index++)
        if (access (self.children [index].program, X_OK)) {
            fprintf (stderr, "chainbus node: missing program %s\n", self.children [index].program);
            zlist_destroy (&self.args);
            free (self.children);
            return 2;
        }

    //  Signals are taken synchronously, in the loop below.
    sigset_t signals;
    cbus_children_signals (&signals);

    zsys_info ("node starting data_dir=%s http=%s:%s network=%s miners=%d",
               cbus_config_data_dir (config), cbus_config_str (config, "gateway/http_bind"),
               cbus_config_str (config, "gateway/http_port"),
               cbus_config_str (config, "node/network"), miners);
    for (size_t index = 0; index < self.count; index++)
        s_start (&self, &self.children [index]);

    bool stopping = false;
    while (!stopping) {
        struct timespec wait = { 0, 100 * 1000000 };
        int signal = sigtimedwait (&signals, NULL, &wait);
        if (signal == SIGTERM || signal == SIGINT || signal == SIGHUP) {
            zsys_info ("node stopping signal=%d", signal);
            stopping = true;
            break;
        }
        //  Reap every child that ended, whatever woke us.
        int status;
        pid_t pid;
        while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
            for (size_t index = 0; index < self.count; index++)
                if (self.children [index].pid == pid)
                    s_on_exit (&self, &self.children [index], status);
        int64_t now = cbus_mono_ms ();
        for (size_t index = 0; index < self.count; index++) {
            s_child_t *child = &self.children [index];
            if (child->pid == 0 && child->restart_at && now >= child->restart_at)
                s_start (&self, child);
        }
    }
    s_stop_all (&self);
    zsys_info ("node stopped");
    zlist_destroy (&self.args);
    free (self.children);
    close (lock);
    return 0;
}
