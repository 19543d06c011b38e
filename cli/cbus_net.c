/*  =========================================================================
    cbus_net - `chainbus net`: a local network of whole nodes
    =========================================================================
*/
#include "cbus_net.h"
#include "cbus_children.h"
#include <stdarg.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <curl/curl.h>

//  How long the nodes get to answer GET /status and take their peers.
#define S_READY_MS          60000
//  How long nodes get to stop before SIGKILL.
#define S_GRACE_MS          15000
//  One HTTP request to a node.
#define S_HTTP_TIMEOUT_MS   2000
//  Largest HTTP answer read (a /status or a register reply is small).
#define S_HTTP_MAX_BYTES    (1024 * 1024)
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
    bool ready;                 //  Answered GET /status with "ok": true
    bool registered;            //  Took every other node as a peer
} s_node_t;

typedef struct {
    s_node_t nodes [CBUS_NET_MAX_NODES];    //  The nodes, by index - 1
    int count;                  //  Nodes in use
    char program [PATH_MAX];    //  This chainbus binary
} s_net_t;

//  --------------------------------------------------------------------------
//  HTTP to the nodes, through libcurl

static size_t
s_on_http_data (char *data, size_t size, size_t count, void *arg)
{
    cbus_buf_t *reply = (cbus_buf_t *) arg;
    if (reply->size + size * count > S_HTTP_MAX_BYTES)
        return 0;                   //  Aborts the transfer
    cbus_buf_append (reply, data, size * count);
    return size * count;
}

//  GET (body NULL) or POST a JSON body to a node. Returns the HTTP status
//  with the answer in reply, or -1 if there was no answer.
static long
s_http (int port, const char *path, const char *body, cbus_buf_t *reply)
{
    CURL *curl = curl_easy_init ();
    if (!curl)
        return -1;
    char url [128];
    snprintf (url, sizeof (url), "http://127.0.0.1:%d%s", port, path);
    cbus_buf_reset (reply);
    struct curl_slist *headers = NULL;
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_PROXY, "");     //  Loopback, never a proxy
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) S_HTTP_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_http_data);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, reply);
    if (body) {
        headers = curl_slist_append (headers, "Content-Type: application/json");
        curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    }
    long status = -1;
    if (curl_easy_perform (curl) == CURLE_OK)
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all (headers);
    curl_easy_cleanup (curl);
    return status;
}

//  True once the node's GET /status says every service answered.
static bool
s_node_ready (s_node_t *node)
{
    cbus_buf_t reply = {0};
    bool ready = false;
    if (s_http (node->port, "/status", NULL, &reply) == 200) {
        json_t *status = json_loadb (reply.data, reply.size, 0, NULL);
        ready = json_is_true (json_object_get (status, "ok"));
        json_decref (status);
    }
    cbus_buf_free (&reply);
    return ready;
}

//  POST /nodes/register with every other node. True once accepted.
static bool
s_node_register (s_net_t *self, s_node_t *node)
{
    cbus_buf_t body = {0}, reply = {0};
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
    long status = s_http (node->port, "/nodes/register", body.data, &reply);
    if (status != 201 && status != -1)
        zsys_warning ("node %d refused its peers status=%ld answer=%.200s",
                      node->index, status, reply.data? reply.data: "");
    cbus_buf_free (&body);
    cbus_buf_free (&reply);
    return status == 201;
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
    size_t argc = zlist_size (node->argv);
    char **argv = (char **) calloc (argc + 1, sizeof (char *));
    assert (argv);
    size_t index = 0;
    for (char *arg = (char *) zlist_first (node->argv); arg; arg = (char *) zlist_next (node->argv))
        argv [index++] = arg;
    pid_t pid = fork ();
    if (pid == 0) {
        //  The child: default signals, output to its log, and die with us.
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        int null = open ("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2 (null, STDIN_FILENO);
        dup2 (log, STDOUT_FILENO);
        dup2 (log, STDERR_FILENO);
        execv (self->program, argv);
        fprintf (stderr, "chainbus net: cannot run %s: %s\n", self->program, strerror (errno));
        _exit (127);
    }
    free (argv);
    close (log);
    if (pid < 0) {
        zsys_error ("cannot fork for node %d: %s", node->index, strerror (errno));
        return -1;
    }
    node->pid = pid;
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
    cbus_children_stop (pids, names, (size_t) self->count, S_GRACE_MS);
}

//  --------------------------------------------------------------------------
//  Setup

//  Each node's command line: the flags given to us, then its own port and
//  folder. Checked with the configuration's own rules (the path limit of
//  local sockets, bad values), and its folder made.
static int
s_node_prepare (s_net_t *self, s_node_t *node, cbus_config_t *config, int port, char *reason)
{
    node->port = port;
    node->data_dir = zsys_sprintf ("%s/node%d", cbus_config_data_dir (config), node->index);
    node->log_path = zsys_sprintf ("%s.log", node->data_dir);
    node->argv = zlist_new ();
    zlist_autofree (node->argv);
    zlist_append (node->argv, self->program);
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

    //  What `chainbus node` will make of it (it skips its argv [0]).
    int argc = (int) zlist_size (node->argv) - 1;
    char **argv = (char **) calloc ((size_t) argc + 1, sizeof (char *));
    assert (argv);
    int index = 0;
    zlist_first (node->argv);
    for (char *arg = (char *) zlist_next (node->argv); arg; arg = (char *) zlist_next (node->argv))
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

typedef enum {
    S_STARTING,                 //  Waiting for every GET /status
    S_REGISTERING,              //  Telling each node about the others
    S_RUNNING                   //  Ready; until a signal
} s_phase_t;

int
cbus_net_run (cbus_config_t *config, int nodes, int base_port)
{
    char reason [CBUS_REASON_MAX];
    s_net_t self = { .count = 0 };
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
        if (s_node_prepare (&self, node, config, base_port + index, reason)) {
            fprintf (stderr, "chainbus net: %s\n", reason);
            s_net_free (&self);
            return 2;
        }
    }
    curl_global_init (CURL_GLOBAL_DEFAULT);

    //  Signals are taken synchronously, in the loop below.
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGCHLD);
    sigaddset (&signals, SIGTERM);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGHUP);
    sigprocmask (SIG_BLOCK, &signals, NULL);

    zsys_info ("net starting nodes=%d base_port=%d data_dir=%s", nodes, base_port,
               cbus_config_data_dir (config));
    int rc = 0;
    for (int index = 0; index < self.count && rc == 0; index++)
        if (s_node_start (&self, &self.nodes [index])) {
            snprintf (reason, sizeof (reason), "cannot start node %d", index + 1);
            rc = 1;
        }
    s_phase_t phase = S_STARTING;
    int64_t deadline = cbus_mono_ms () + S_READY_MS;
    while (rc == 0) {
        struct timespec wait = { 0, 200 * 1000000 };
        int signal = sigtimedwait (&signals, NULL, &wait);
        if (signal == SIGTERM || signal == SIGINT || signal == SIGHUP) {
            zsys_info ("net stopping signal=%d", signal);
            break;
        }
        //  Reap every node that ended, whatever woke us.
        int status;
        pid_t pid;
        while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
            for (int index = 0; index < self.count; index++) {
                s_node_t *node = &self.nodes [index];
                if (node->pid != pid)
                    continue;
                node->pid = 0;
                char how [32], line [256];
                s_describe_exit (status, how, sizeof (how));
                s_last_line (node, line, sizeof (line));
                if (phase != S_RUNNING) {
                    snprintf (reason, sizeof (reason), "node %d (port %d) stopped before the "
                              "network was ready (%s): %.120s", node->index, node->port, how, line);
                    rc = 1;
                }
                else
                    zsys_warning ("node stopped node=%d port=%d %s; the others keep running; "
                                  "its log: %s", node->index, node->port, how, node->log_path);
            }
        if (rc)
            break;
        int alive = 0;
        for (int index = 0; index < self.count; index++)
            alive += self.nodes [index].pid > 0;
        if (alive == 0) {
            snprintf (reason, sizeof (reason), "every node has stopped");
            rc = 1;
            break;
        }
        if (phase == S_RUNNING)
            continue;
        int pending = 0;
        for (int index = 0; index < self.count; index++) {
            s_node_t *node = &self.nodes [index];
            if (phase == S_STARTING && !node->ready)
                node->ready = s_node_ready (node);
            if (phase == S_REGISTERING && !node->registered)
                node->registered = self.count == 1 || s_node_register (&self, node);
            pending += phase == S_STARTING? !node->ready: !node->registered;
        }
        if (pending == 0 && phase == S_STARTING)
            phase = S_REGISTERING;
        else
        if (pending == 0 && phase == S_REGISTERING) {
            for (int index = 0; index < self.count; index++) {
                s_node_t *node = &self.nodes [index];
                printf ("node %d: http://127.0.0.1:%d data %s log %s\n", node->index,
                        node->port, node->data_dir, node->log_path);
            }
            printf ("network ready: %d node%s (Ctrl-C stops them all)\n", self.count,
                    self.count > 1? "s": "");
            fflush (stdout);
            phase = S_RUNNING;
        }
        else
        if (cbus_mono_ms () > deadline) {
            //  Name the first node that is late, with its last words.
            s_node_t *late = &self.nodes [0];
            for (int index = self.count - 1; index >= 0; index--)
                if (phase == S_STARTING? !self.nodes [index].ready: !self.nodes [index].registered)
                    late = &self.nodes [index];
            char line [256];
            s_last_line (late, line, sizeof (line));
            snprintf (reason, sizeof (reason), "node %d (port %d) %s after %d s; its log "
                      "ends: %.120s", late->index, late->port,
                      phase == S_STARTING? "did not answer GET /status": "did not take its peers",
                      S_READY_MS / 1000, line);
            rc = 1;
        }
    }
    if (rc)
        fprintf (stderr, "chainbus net: %s\n", reason);
    s_stop_all (&self);
    zsys_info ("net stopped");
    s_net_free (&self);
    curl_global_cleanup ();
    return rc;
}
