/*  =========================================================================
    cbus_net - `chainbus net`: a local network of whole nodes
    =========================================================================
*/
#include "cbus_net.h"
#include "cbus_children.h"
#include "cbus_http.h"
#include <stdarg.h>
#include <signal.h>
#include <sys/wait.h>

//  How long the nodes get to answer GET /status and take their peers.
#define S_READY_MS          60000
//  How long nodes get to stop before SIGKILL.
#define S_GRACE_MS          15000
//  One HTTP request to a node, within 2 s; the largest answer read (a
//  /status or a register reply is small).
static const cbus_http_limits_t s_limits = { 2000, 2000, 1024 * 1024 };
//  First restart delay of a node that died, and how long it must live to
//  count as well (the launcher's rule, with a longer first delay: the
//  dead launcher's services are still stopping and hold ports and locks).
#define S_BACKOFF_MIN_MS    1000
#define S_HEALTHY_MS        10000
//  Exits 2 in a row (each young) after which a node is left stopped.
#define S_PERMANENT_TRIES   3
//  Ports a node takes above its HTTP port when no peer port is given:
//  the peer port (+1000) and its directory (+2000), see docs/p2p.md.
#define S_PORTS_ABOVE       2000

typedef struct {
    int index;                  //  1..N, for messages
    int port;                   //  HTTP port
    char *data_dir;             //  Its data folder, absolute
    char *log_path;             //  Where its output goes
    zlist_t *argv;              //  Its command line (strings owned)
    pid_t pid;                  //  Launcher's pid; 0 once it exited
    int64_t started;            //  When it was last started (mono ms)
    int64_t restart_at;         //  When to start it again (0: not due)
    int backoff_ms;             //  Next restart delay
    int permanent;              //  Young exits 2 in a row
    unsigned restarts;          //  Restarts so far
    bool ready;                 //  Answered GET /status with "ok": true
    bool registered;            //  Took every other node as a peer
} s_node_t;

typedef enum {
    S_STARTING,                 //  Waiting for every GET /status
    S_REGISTERING,              //  Telling each node about the others
    S_RUNNING                   //  Ready; until a signal
} s_phase_t;

typedef struct {
    s_node_t nodes [CBUS_NET_MAX_NODES];    //  The nodes, by index - 1
    int count;                  //  Nodes in use
    char program [PATH_MAX];    //  This chainbus binary
    s_phase_t phase;            //  Where the network is
    int backoff_max_ms;         //  launcher/restart_max_ms
} s_net_t;

//  --------------------------------------------------------------------------
//  HTTP to the nodes, through libcurl

//  The node's base URL, "http://127.0.0.1:<port>" (into url, 32 bytes).
static const char *
s_node_url (s_node_t *node, char url [32])
{
    snprintf (url, 32, "http://127.0.0.1:%d", node->port);
    return url;
}

//  True once the node's GET /status says every service answered.
static bool
s_node_ready (s_node_t *node)
{
    char url [32];
    cbus_http_reply_t *reply = cbus_http_request (s_node_url (node, url), "/status", NULL, &s_limits);
    bool ready = reply->status == 200 && json_is_true (json_object_get (reply->json, "ok"));
    cbus_http_reply_destroy (&reply);
    return ready;
}

//  POST /nodes/register with every other node. True once accepted.
static bool
s_node_register (s_net_t *self, s_node_t *node)
{
    cbus_buf_t body = {0};
    cbus_buf_puts (&body, "{\"nodes\": [");
    bool first = true;
    for (int index = 0; index < self->count; index++) {
        if (self->nodes [index].index == node->index)
            continue;
        cbus_buf_printf (&body, "%s\"http://127.0.0.1:%d\"", first? "": ", ",
                         self->nodes [index].port);
        first = false;
    }
    cbus_buf_puts (&body, "]}");
    char url [32];
    cbus_http_reply_t *reply = cbus_http_request (s_node_url (node, url), "/nodes/register",
                                                  body.data, &s_limits);
    bool taken = reply->status == 201;
    if (!taken && reply->status)
        zsys_warning ("node %d refused its peers status=%ld code=%s reason=%s", node->index,
                      reply->status, cbus_code_name (reply->code), reply->reason);
    cbus_buf_free (&body);
    cbus_http_reply_destroy (&reply);
    return taken;
}

//  --------------------------------------------------------------------------
//  Child processes

//  The last line a node wrote to its log, for a reason (borrowed buffer).
static const char *
s_last_line (s_node_t *node, char *line, size_t size)
{
    *line = 0;
    FILE *file = fopen (node->log_path, "r");
    if (!file)
        return line;
    char tail [4096];
    if (fseek (file, -(long) (sizeof (tail) - 1), SEEK_END))
        rewind (file);
    size_t got = fread (tail, 1, sizeof (tail) - 1, file);
    fclose (file);
    tail [got] = 0;
    while (got > 0 && (tail [got - 1] == '\n' || tail [got - 1] == '\r'))
        tail [--got] = 0;
    const char *start = strrchr (tail, '\n');
    start = start? start + 1: tail;
    size_t length = strlen (start);
    if (length >= size)
        length = size - 1;
    memcpy (line, start, length);
    line [length] = 0;
    return line;
}

static int
s_node_start (s_net_t *self, s_node_t *node)
{
    int log = open (node->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0) {
        zsys_error ("cannot open %s: %s", node->log_path, strerror (errno));
        return -1;
    }
    char name [16];
    snprintf (name, sizeof (name), "node %d", node->index);
    pid_t pid = cbus_children_start (self->program, node->argv, log, name);
    close (log);
    if (pid < 0)
        return -1;
    node->pid = pid;
    node->started = cbus_mono_ms ();
    node->restart_at = 0;
    zsys_info ("started node=%d pid=%d port=%d data_dir=%s", node->index, (int) pid,
               node->port, node->data_dir);
    return 0;
}

//  How a child ended, for messages.
static void
s_describe_exit (int status, char *how, size_t size)
{
    if (WIFSIGNALED (status))
        snprintf (how, size, "signal %d", WTERMSIG (status));
    else
        snprintf (how, size, "exit %d", WEXITSTATUS (status));
}

//  Stop every node: SIGTERM, wait, SIGKILL what is left.
static void
s_stop_all (s_net_t *self)
{
    pid_t *pids [CBUS_NET_MAX_NODES];
    const char *names [CBUS_NET_MAX_NODES];
    char labels [CBUS_NET_MAX_NODES][16];
    for (int index = 0; index < self->count; index++) {
        pids [index] = &self->nodes [index].pid;
        snprintf (labels [index], sizeof (labels [index]), "node%d", self->nodes [index].index);
        names [index] = labels [index];
    }
    cbus_children_stop (pids, names, (size_t) self->count, S_GRACE_MS, NULL, NULL);
}

//  --------------------------------------------------------------------------
//  Setup

//  Each node's command line: the flags given to us, then its own port and
//  folder. Checked with the configuration's own rules (the path limit of
//  local sockets, bad values), and its folder made.
static int
s_node_prepare (s_node_t *node, cbus_config_t *config, int port, char *reason)
{
    node->port = port;
    node->data_dir = zsys_sprintf ("%s/node%d", cbus_config_data_dir (config), node->index);
    node->log_path = zsys_sprintf ("%s.log", node->data_dir);
    node->argv = zlist_new ();
    zlist_autofree (node->argv);
    zlist_append (node->argv, "node");
    zlist_t *flags = cbus_config_child_args (config);
    int rc = 0;
    for (char *flag = (char *) zlist_first (flags); flag && rc == 0;
         flag = (char *) zlist_next (flags)) {
        char *value = (char *) zlist_next (flags);
        if (streq (flag, "--http-port") || streq (flag, "--p2p-port"))
            rc = cbus_fail (reason, "%s: each node takes its own (see --base-port)", flag);
        else
        if (!streq (flag, "--data-dir")) {
            zlist_append (node->argv, flag);
            zlist_append (node->argv, value? value: "");
        }
    }
    zlist_destroy (&flags);
    if (rc)
        return -1;
    char number [16];
    snprintf (number, sizeof (number), "%d", port);
    zlist_append (node->argv, "--http-port");
    zlist_append (node->argv, number);
    zlist_append (node->argv, "--data-dir");
    zlist_append (node->argv, node->data_dir);

    //  What `chainbus node` will make of it: the configuration skips its
    //  first argument, the command.
    int argc = (int) zlist_size (node->argv);
    char **argv = (char **) calloc ((size_t) argc + 1, sizeof (char *));
    if (!argv)
        return cbus_fail (reason, "node %d: out of memory", node->index);
    int index = 0;
    for (char *arg = (char *) zlist_first (node->argv); arg; arg = (char *) zlist_next (node->argv))
        argv [index++] = arg;
    char inner [CBUS_REASON_MAX];
    cbus_config_t *node_config = cbus_config_new (argc, argv, inner);
    free (argv);
    if (!node_config)
        return cbus_fail (reason, "node %d: %s", node->index, inner);
    rc = cbus_config_make_dirs (node_config, inner);
    cbus_config_destroy (&node_config);
    if (rc)
        return cbus_fail (reason, "node %d: %s", node->index, inner);
    return 0;
}

static void
s_net_free (s_net_t *self)
{
    for (int index = 0; index < self->count; index++) {
        s_node_t *node = &self->nodes [index];
        zstr_free (&node->data_dir);
        zstr_free (&node->log_path);
        zlist_destroy (&node->argv);
    }
}

//  --------------------------------------------------------------------------
//  The foreground loop

//  A node ended once the network ran: schedule its restart with the
//  backoff, or leave it stopped after S_PERMANENT_TRIES young exits 2.
static void
s_node_ended (s_net_t *self, s_node_t *node, int status, const char *how, const char *line)
{
    int64_t now = cbus_mono_ms ();
    int64_t lived = now - node->started;
    if (lived >= S_HEALTHY_MS)
        node->backoff_ms = S_BACKOFF_MIN_MS;
    bool permanent = WIFEXITED (status) && WEXITSTATUS (status) == 2 && lived < S_HEALTHY_MS;
    node->permanent = permanent ? node->permanent + 1 : 0;
    if (node->permanent >= S_PERMANENT_TRIES) {
        zsys_error ("node cannot start node=%d port=%d %s tries=%d: left stopped; the others "
                    "keep running; its log: %s: %.120s", node->index, node->port, how,
                    node->permanent, node->log_path, line);
        return;
    }
    node->restart_at = now + node->backoff_ms;
    node->restarts++;
    zsys_warning ("node died node=%d port=%d %s lived_ms=%" PRId64 " restart_in_ms=%d "
                  "restarts=%u; its log: %s", node->index, node->port, how, lived,
                  node->backoff_ms, node->restarts, node->log_path);
    node->backoff_ms *= 2;
    if (node->backoff_ms > self->backoff_max_ms)
        node->backoff_ms = self->backoff_max_ms;
}

//  Reap every node that ended: before the network is ready that ends it
//  (-1 with a reason), after it is restarted (s_node_ended), and any
//  restart due is made. -1 when no node is left, running or to restart.
static int
s_reap (s_net_t *self, char *reason)
{
    int status;
    pid_t pid;
    int rc = 0;
    while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
        for (int index = 0; index < self->count; index++) {
            s_node_t *node = &self->nodes [index];
            if (node->pid != pid)
                continue;
            node->pid = 0;
            char how [32], line [256];
            s_describe_exit (status, how, sizeof (how));
            s_last_line (node, line, sizeof (line));
            if (self->phase != S_RUNNING)
                rc = cbus_fail (reason, "node %d (port %d) stopped before the network was "
                                "ready (%s): %.120s", node->index, node->port, how, line);
            else
                s_node_ended (self, node, status, how, line);
        }
    if (rc)
        return rc;
    int64_t now = cbus_mono_ms ();
    int alive = 0;
    for (int index = 0; index < self->count; index++) {
        s_node_t *node = &self->nodes [index];
        if (node->pid == 0 && node->restart_at && now >= node->restart_at
        &&  s_node_start (self, node))
            node->restart_at = now + node->backoff_ms;      //  Try again later
        alive += node->pid > 0 || node->restart_at;
    }
    return alive? 0: cbus_fail (reason, "every node has stopped");
}

//  One step of the start: ask the nodes not ready yet, then register
//  those not registered yet; once all are, print the network. -1 with a
//  reason naming the first node that is late after the deadline.
static int
s_step (s_net_t *self, int64_t deadline, char *reason)
{
    bool starting = self->phase == S_STARTING;
    int pending = 0;
    for (int index = 0; index < self->count; index++) {
        s_node_t *node = &self->nodes [index];
        if (starting && !node->ready)
            node->ready = s_node_ready (node);
        if (!starting && !node->registered)
            node->registered = self->count == 1 || s_node_register (self, node);
        pending += starting? !node->ready: !node->registered;
    }
    if (pending == 0 && starting)
        self->phase = S_REGISTERING;
    else
    if (pending == 0) {
        for (int index = 0; index < self->count; index++) {
            s_node_t *node = &self->nodes [index];
            printf ("node %d: http://127.0.0.1:%d data %s log %s\n", node->index,
                    node->port, node->data_dir, node->log_path);
        }
        printf ("network ready: %d node%s (Ctrl-C stops them all)\n", self->count,
                self->count > 1? "s": "");
        fflush (stdout);
        self->phase = S_RUNNING;
    }
    else
    if (cbus_mono_ms () > deadline) {
        //  Name the first node that is late, with its last words.
        s_node_t *late = &self->nodes [0];
        for (int index = self->count - 1; index >= 0; index--)
            if (starting? !self->nodes [index].ready: !self->nodes [index].registered)
                late = &self->nodes [index];
        char line [256];
        s_last_line (late, line, sizeof (line));
        return cbus_fail (reason, "node %d (port %d) %s after %d s; its log ends: %.120s",
                          late->index, late->port,
                          starting? "did not answer GET /status": "did not take its peers",
                          S_READY_MS / 1000, line);
    }
    return 0;
}

int
cbus_net_run (cbus_config_t *config, int nodes, int base_port)
{
    char reason [CBUS_REASON_MAX];
    s_net_t self = {
        .count = 0, .backoff_max_ms = (int) cbus_config_int (config, "launcher/restart_max_ms")
    };
    if (nodes < 1 || nodes > CBUS_NET_MAX_NODES) {
        fprintf (stderr, "chainbus net: --nodes must be 1 to %d\n", CBUS_NET_MAX_NODES);
        return 2;
    }
    if (base_port < 1 || base_port + nodes - 1 + S_PORTS_ABOVE > 65535) {
        fprintf (stderr, "chainbus net: --base-port must leave room for %d HTTP ports "
                 "and their peer ports (+%d) below 65536\n", nodes, S_PORTS_ABOVE);
        return 2;
    }
    ssize_t size = readlink ("/proc/self/exe", self.program, sizeof (self.program) - 1);
    if (size <= 0) {
        fprintf (stderr, "chainbus net: cannot find my own binary\n");
        return 2;
    }
    self.program [size] = 0;
    for (int index = 0; index < nodes; index++) {
        s_node_t *node = &self.nodes [self.count++];
        node->index = index + 1;
        node->backoff_ms = S_BACKOFF_MIN_MS;
        if (s_node_prepare (node, config, base_port + index, reason)) {
            fprintf (stderr, "chainbus net: %s\n", reason);
            s_net_free (&self);
            return 2;
        }
    }
    cbus_http_global_init ();

    //  Signals are taken synchronously, in the loop below. Our output
    //  may be a pipe whose reader goes: a write must fail, not kill us.
    signal (SIGPIPE, SIG_IGN);
    sigset_t signals;
    cbus_children_signals (&signals);

    zsys_info ("net starting nodes=%d base_port=%d data_dir=%s", nodes, base_port,
               cbus_config_data_dir (config));
    int rc = 0;
    for (int index = 0; index < self.count && rc == 0; index++)
        if (s_node_start (&self, &self.nodes [index])) {
            snprintf (reason, sizeof (reason), "cannot start node %d", index + 1);
            rc = 1;
        }
    int64_t deadline = cbus_mono_ms () + S_READY_MS;
    while (rc == 0) {
        struct timespec wait = { 0, 200 * 1000000 };
        int signal = sigtimedwait (&signals, NULL, &wait);
        if (signal == SIGTERM || signal == SIGINT || signal == SIGHUP) {
            zsys_info ("net stopping signal=%d", signal);
            break;
        }
        //  Reap every node that ended, whatever woke us.
        if (s_reap (&self, reason) || (self.phase != S_RUNNING && s_step (&self, deadline, reason)))
            rc = 1;
    }
    if (rc)
        fprintf (stderr, "chainbus net: %s\n", reason);
    s_stop_all (&self);
    zsys_info ("net stopped");
    s_net_free (&self);
    cbus_http_global_cleanup ();
    return rc;
}
