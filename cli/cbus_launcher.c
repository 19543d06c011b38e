/*  =========================================================================
    cbus_launcher - `chainbus node`: a whole node as child processes

    Each child's output (standard output and error) comes through a pipe
    of ours and is written out line by line on our standard output, as
    it would have been; the launcher keeps the first error lines of each
    child's current run, so that a child that cannot start can be named
    with its reason. A child that exits 2 (a service whose actor FAILED
    at start, or a bad configuration: a permanent start error, such as
    its port in use or a store of another network) S_PERMANENT_TRIES
    times in a row, each time before S_HEALTHY_MS, stops the node: every
    child is stopped and the launcher exits 2 with that reason on its
    standard error. Any other end (a crash, a kill, exit 1: a transient
    start error too, such as a store lock another process holds) is
    restarted with the backoff, forever. Miners get --miner-id base ..
    base + N - 1 (miner/id, or 1), so a restarted miner keeps its name.
    =========================================================================
*/
#include "cbus_launcher.h"
#include "cbus_children.h"
#include <signal.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <libgen.h>
#include <sodium.h>

//  First restart delay, and how long a child must live to count as well.
#define S_BACKOFF_MIN_MS  250
#define S_HEALTHY_MS      10000
//  How long children get to stop before SIGKILL.
#define S_GRACE_MS        10000
//  Starts in a row that end in exit 2 before the node stops.
#define S_PERMANENT_TRIES 3
//  The exit code of a permanent start error (cbus_service.h).
#define S_EXIT_PERMANENT  2
//  Error lines kept per run of a child, and the longest line kept whole.
#define S_ERROR_LINES     4
#define S_LINE_MAX        4096

typedef struct {
    char name [32];             //  Role and instance, for logs
    char program [PATH_MAX];    //  Binary to run
    char miner_id [16];         //  A miner's --miner-id, or ""
    pid_t pid;                  //  0 when not running
    int64_t started;            //  Monotonic ms of the last start
    int64_t restart_at;         //  When to start it again (0: not due)
    int backoff_ms;             //  Next restart delay
    unsigned restarts;          //  How many times it was restarted
    int permanent;              //  Runs in a row that ended in exit 2, young
    int out;                    //  Read end of its output pipe, or -1
    char line [S_LINE_MAX];     //  Output line not yet complete
    size_t line_size;           //  ... its bytes
    char errors [S_ERROR_LINES][512];   //  First error lines of this run
    int error_count;            //  ... how many
} s_child_t;

typedef struct {
    s_child_t *children;        //  In start order
    size_t count;               //  Entries in children
    zlist_t *args;              //  Flags given to every child
    int backoff_max_ms;         //  launcher/restart_max_ms
} s_launcher_t;

//  --------------------------------------------------------------------------
//  Children's output

//  Write all of buf on our standard output.
static void
s_write_out (const char *buf, size_t size)
{
    while (size > 0) {
        ssize_t wrote = write (STDOUT_FILENO, buf, size);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0)
            return;                     //  Nowhere to write: drop it
        buf += wrote;
        size -= (size_t) wrote;
    }
}

//  An error line: CZMQ's "E: " lines, and anything not a log line at all
//  (a program's own message on its standard error).
static bool
s_is_error (const char *line, size_t size)
{
    if (size >= 3 && line [1] == ':' && line [2] == ' ' && strchr ("IWDNT", line [0]))
        return false;
    return size > 0;
}

//  A whole line of the child's (or what fits of one): pass it on, and
//  keep it when it is one of the first error lines of this run.
static void
s_line_done (s_child_t *child)
{
    if (child->line_size == 0)
        return;
    s_write_out (child->line, child->line_size);
    if (child->line [child->line_size - 1] != '\n')
        s_write_out ("\n", 1);
    size_t size = child->line_size;
    while (size > 0 && (child->line [size - 1] == '\n' || child->line [size - 1] == '\r'))
        size--;
    if (child->error_count < S_ERROR_LINES && s_is_error (child->line, size)) {
        char *kept = child->errors [child->error_count++];
        size_t length = size < sizeof (child->errors [0]) - 1 ? size : sizeof (child->errors [0]) - 1;
        memcpy (kept, child->line, length);
        kept [length] = 0;
    }
    child->line_size = 0;
}

//  Read what the child wrote, passing on whole lines. At its end (EOF)
//  the pipe is closed and what is left of a line passed on.
static void
s_read_child (s_child_t *child)
{
    char buf [8192];
    while (child->out >= 0) {
        ssize_t got = read (child->out, buf, sizeof (buf));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return;                     //  EAGAIN: nothing more for now
        if (got == 0) {
            s_line_done (child);
            close (child->out);
            child->out = -1;
            return;
        }
        for (ssize_t index = 0; index < got; index++) {
            child->line [child->line_size++] = buf [index];
            if (buf [index] == '\n' || child->line_size == sizeof (child->line))
                s_line_done (child);
        }
    }
}

//  Wait up to timeout_ms for output of any child, and pass it on.
static void
s_read_all (s_launcher_t *self, int timeout_ms)
{
    struct pollfd fds [self->count];
    size_t used = 0;
    for (size_t index = 0; index < self->count; index++)
        if (self->children [index].out >= 0)
            fds [used++] = (struct pollfd) { .fd = self->children [index].out, .events = POLLIN };
    if (used == 0) {
        if (timeout_ms > 0)
            usleep ((useconds_t) timeout_ms * 1000);
        return;
    }
    if (poll (fds, used, timeout_ms) <= 0)
        return;
    for (size_t index = 0; index < self->count; index++)
        if (self->children [index].out >= 0)
            s_read_child (&self->children [index]);
}

//  While the children stop (cbus_children_stop's idle).
static void
s_read_idle (void *arg)
{
    s_read_all ((s_launcher_t *) arg, 0);
}

//  --------------------------------------------------------------------------
//  Children

static int
s_start (s_launcher_t *self, s_child_t *child)
{
    int pipe_fds [2];
    if (pipe2 (pipe_fds, O_CLOEXEC)) {
        zsys_error ("cannot make a pipe for child=%s: %s", child->name, strerror (errno));
        return -1;
    }
    //  A miner keeps its id (and so its bus name, miner.<id>) across
    //  restarts: given last, it wins over a --miner-id given to the node.
    zlist_t *args = *child->miner_id ? zlist_dup (self->args) : self->args;
    if (args && *child->miner_id) {
        zlist_autofree (args);
        if (zlist_append (args, "--miner-id") || zlist_append (args, child->miner_id))
            zlist_destroy (&args);
    }
    pid_t pid = args ? cbus_children_start (child->program, args, pipe_fds [1], child->name): -1;
    if (args != self->args)
        zlist_destroy (&args);
    close (pipe_fds [1]);
    if (pid < 0) {
        close (pipe_fds [0]);
        return -1;
    }
    fcntl (pipe_fds [0], F_SETFL, fcntl (pipe_fds [0], F_GETFL) | O_NONBLOCK);
    if (child->out >= 0)                //  A previous run's, ended
        close (child->out);
    child->out = pipe_fds [0];
    child->line_size = 0;
    child->error_count = 0;
    child->pid = pid;
    child->started = cbus_mono_ms ();
    child->restart_at = 0;
    zsys_info ("started child=%s pid=%d", child->name, (int) pid);
    return 0;
}

//  A child ended: log how, and schedule its restart. Returns true when
//  it was its S_PERMANENT_TRIES-th young exit 2 in a row: the node stops.
static bool
s_on_exit (s_launcher_t *self, s_child_t *child, int status)
{
    int64_t now = cbus_mono_ms ();
    int64_t lived = now - child->started;
    if (lived >= S_HEALTHY_MS)
        child->backoff_ms = S_BACKOFF_MIN_MS;
    //  Its last words: the pipe is at its end once the child is gone.
    s_read_child (child);
    char how [64];
    if (WIFSIGNALED (status))
        snprintf (how, sizeof (how), "signal=%d", WTERMSIG (status));
    else
        snprintf (how, sizeof (how), "exit=%d", WEXITSTATUS (status));
    bool permanent = WIFEXITED (status) && WEXITSTATUS (status) == S_EXIT_PERMANENT
                  && lived < S_HEALTHY_MS;
    child->permanent = permanent ? child->permanent + 1 : 0;
    child->pid = 0;
    if (child->permanent >= S_PERMANENT_TRIES) {
        zsys_error ("child cannot start child=%s %s tries=%d: stopping the node",
                    child->name, how, child->permanent);
        return true;
    }
    child->restart_at = now + child->backoff_ms;
    child->restarts++;
    zsys_warning ("child died child=%s %s lived_ms=%" PRId64 " restart_in_ms=%d restarts=%u",
                  child->name, how, lived, child->backoff_ms, child->restarts);
    child->backoff_ms *= 2;
    if (child->backoff_ms > self->backoff_max_ms)
        child->backoff_ms = self->backoff_max_ms;
    return false;
}

//  Tell why the node stops: the child and its first error lines.
static void
s_report_permanent (s_child_t *child)
{
    fprintf (stderr, "chainbus node: stopped: chainbus-%s cannot start (exit 2, %d times in a "
             "row: a permanent start error)%s\n", child->name, child->permanent,
             child->error_count ? "; it said:" : "; it gave no reason on its output");
    for (int index = 0; index < child->error_count; index++)
        fprintf (stderr, "chainbus node:   %s\n", child->errors [index]);
}

static void
s_add_child (s_launcher_t *self, const char *dir, const char *role, const char *name)
{
    s_child_t *child = &self->children [self->count++];
    snprintf (child->name, sizeof (child->name), "%s", name);
    snprintf (child->program, sizeof (child->program), "%s/chainbus-%s", dir, role);
    child->backoff_ms = S_BACKOFF_MIN_MS;
    child->out = -1;
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
    cbus_children_stop (pids, names, self->count, S_GRACE_MS, s_read_idle, self);
    free (pids);
    free (names);
    //  Whatever they said last.
    for (size_t index = 0; index < self->count; index++)
        s_read_child (&self->children [index]);
    for (size_t index = 0; index < self->count; index++)
        if (self->children [index].out >= 0)
            close (self->children [index].out);
}

//  Run until a signal stops the node (NULL) or a child cannot start
//  (that child): pass on the children's output, restart those that end.
static s_child_t *
s_run (s_launcher_t *self, sigset_t *signals)
{
    while (true) {
        s_read_all (self, 100);
        struct timespec none = { 0, 0 };
        int signal = sigtimedwait (signals, NULL, &none);
        if (signal == SIGTERM || signal == SIGINT || signal == SIGHUP) {
            zsys_info ("node stopping signal=%d", signal);
            return NULL;
        }
        //  Reap every child that ended, whatever woke us.
        int status;
        pid_t pid;
        while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
            for (size_t index = 0; index < self->count; index++)
                if (self->children [index].pid == pid
                &&  s_on_exit (self, &self->children [index], status))
                    return &self->children [index];
        int64_t now = cbus_mono_ms ();
        for (size_t index = 0; index < self->count; index++) {
            s_child_t *child = &self->children [index];
            if (child->pid == 0 && child->restart_at && now >= child->restart_at)
                s_start (self, child);
        }
    }
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

    //  Our output may be a pipe whose reader goes: a write must fail
    //  (EPIPE, dropped), not kill the node.
    signal (SIGPIPE, SIG_IGN);
    int miners = (int) cbus_config_int (config, "launcher/miners");
    //  Miner ids base .. base + miners - 1: miner/id, or 1 when it is 0
    //  (random), so that miner.N is miner id N. Distinct ids split the
    //  nonce space (an id is in every header mined).
    uint64_t base = (uint64_t) cbus_config_int (config, "miner/id");
    if (base == 0)
        base = 1;
    s_launcher_t self = {
        .children = (s_child_t *) calloc ((size_t) miners + 5, sizeof (s_child_t)),
        .args = cbus_config_child_args (config),
        .backoff_max_ms = (int) cbus_config_int (config, "launcher/restart_max_ms"),
    };
    if (!self.children || !self.args) {
        fprintf (stderr, "chainbus node: out of memory\n");
        zlist_destroy (&self.args);
        free (self.children);
        return 2;
    }
    s_add_child (&self, dir, "bus", "bus");
    s_add_child (&self, dir, "chainstore", "chainstore");
    s_add_child (&self, dir, "mempool", "mempool");
    s_add_child (&self, dir, "peersync", "peersync");
    for (int index = 0; index < miners; index++) {
        char name [32];
        uint32_t id = (uint32_t) ((base - 1 + (uint64_t) index) % UINT32_MAX + 1);
        snprintf (name, sizeof (name), "miner.%u", id);
        s_add_child (&self, dir, "miner", name);
        snprintf (self.children [self.count - 1].miner_id,
                  sizeof (self.children [0].miner_id), "%u", id);
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

    s_child_t *failed = s_run (&self, &signals);
    s_stop_all (&self);
    zsys_info ("node stopped%s", failed ? ": a child cannot start" : "");
    if (failed)
        s_report_permanent (failed);
    zlist_destroy (&self.args);
    free (self.children);
    close (lock);
    return failed ? 2 : 0;
}
