/*  =========================================================================
    cbus_service - the thin main shared by every service program
    =========================================================================
*/
#include "cbus.h"
#include <stdarg.h>
#include <signal.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sodium.h>
#include <systemd/sd-daemon.h>

bool cbus_log_verbose = false;

//  True when file descriptor fd is the journal's stream for this unit:
//  systemd names it in JOURNAL_STREAM as "device:inode" (systemd.exec(5)).
//  Compared with the descriptor itself, not just present: a child of a
//  service (chainbus node run by systemd) inherits the variable, not the
//  stream, when its output goes to a file or a pipe.
static bool
s_is_journal (int fd)
{
    const char *stream = getenv ("JOURNAL_STREAM");
    unsigned long long device, inode;
    struct stat info;
    return stream
        && sscanf (stream, "%llu:%llu", &device, &inode) == 2
        && fstat (fd, &info) == 0
        && (unsigned long long) info.st_dev == device
        && (unsigned long long) info.st_ino == inode;
}

//  An error before logging is set up: one line on standard error, with
//  the journal's priority prefix (<3>, err) when that is the journal.
static void
s_early_error (const char *ident, const char *reason)
{
    fprintf (stderr, "%s%s: %s\n", s_is_journal (STDERR_FILENO) ? SD_ERR: "", ident, reason);
}

//  Log identity "chainbus-<role>"; to syslog when standard output is the
//  journal. CZMQ writes every level to standard output as "E: ...",
//  which the journal stores at info priority; through syslog the journal
//  keeps each line's priority (E err, W warning, N notice, I info, D
//  debug) and the unit (by the sender's cgroup). The stream is switched
//  off as well: some CZMQ versions write both.
static void
s_log_setup (const char *ident)
{
    if (s_is_journal (STDOUT_FILENO)) {
        zsys_set_logsystem (true);
        zsys_set_logstream (NULL);
    }
    zsys_set_logident (ident);
    zsys_set_logsender (NULL);
}

static int
s_on_watchdog (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id; (void) arg;
    sd_notify (0, "WATCHDOG=1");
    return 0;
}

void
cbus_service_ready (zloop_t *loop)
{
    assert (loop);
    uint64_t usec = 0;
    if (sd_watchdog_enabled (0, &usec) > 0) {
        size_t interval_ms = (size_t) (usec / 3000);
        if (zloop_timer (loop, interval_ms > 0? interval_ms: 1, 0, s_on_watchdog, NULL) == -1)
            zsys_error ("cannot register the watchdog timer: systemd will restart this service");
    }
    sd_notify (0, "READY=1\nSTATUS=serving");
}

//  Why this thread's start fails, as first noted (cbus_service_fault):
//  each actor starts on a thread of its own.
static __thread bool s_noted;
static __thread bool s_noted_transient;
static __thread char s_noted_reason [CBUS_REASON_MAX];

void
cbus_service_fault (bool transient, const char *format, ...)
{
    if (s_noted)
        return;                         //  The first cause is the cause
    va_list args;
    va_start (args, format);
    vsnprintf (s_noted_reason, sizeof (s_noted_reason), format, args);
    va_end (args);
    s_noted = true;
    s_noted_transient = transient;
}

bool
cbus_service_transient_errno (int error)
{
    //  What time can mend: an address not up yet (boot, DHCP), memory,
    //  descriptors, space, a device error. EADDRINUSE, EACCES, EINVAL
    //  and the rest are the configuration's to mend.
    return error == EADDRNOTAVAIL || error == ENOMEM || error == ENOBUFS || error == EMFILE
        || error == ENFILE || error == ENOSPC || error == EDQUOT || error == EIO
        || error == EAGAIN || error == EINTR || error == ENETUNREACH || error == ENETDOWN;
}

bool
cbus_service_transient_store (cbus_store_fault_t fault)
{
    return fault == CBUS_STORE_LOCKED || fault == CBUS_STORE_NO_SPACE || fault == CBUS_STORE_IO;
}

void
cbus_service_fail (zsock_t *pipe, const char *format, ...)
{
    //  Room for what it says and what was noted.
    char reason [2 * CBUS_REASON_MAX + 2];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, CBUS_REASON_MAX, format, args);
    va_end (args);
    bool transient = s_noted && s_noted_transient;
    if (s_noted && *s_noted_reason && !strstr (reason, s_noted_reason)) {
        size_t length = strlen (reason);
        snprintf (reason + length, sizeof (reason) - length, ": %s", s_noted_reason);
    }
    s_noted = false;
    const char *fault = transient ? CBUS_SERVICE_TRANSIENT: CBUS_SERVICE_PERMANENT;
    zsys_error ("%s (%s start error: %s)", reason, fault,
                transient ? "restarted": "not restarted until mended");
    zstr_sendx (pipe, "FAILED", fault, reason, NULL);
}

zsock_t *
cbus_service_router (const char *endpoint, int64_t max_size, char *reason)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    if (!router) {
        cbus_fail (reason, "cannot make a socket for %s", endpoint);
        return NULL;
    }
    zsock_set_maxmsgsize (router, (int) max_size);
    zsock_set_sndhwm (router, 100000);
    zsock_set_rcvhwm (router, 100000);
    if (cbus_endpoint_bind (router, endpoint)) {
        int error = zmq_errno ();
        cbus_fail (reason, "cannot bind %s: %s", endpoint, zmq_strerror (error));
        cbus_service_fault (cbus_service_transient_errno (error), "%s", reason);
        zsock_destroy (&router);
    }
    return router;
}

int
cbus_service_pong (zsock_t *router, cbus_request_t *request, const char *role)
{
    cbus_buf_t buf = {0};
    cbus_pong_t pong = { .role = cbus_str (role), .pid = (uint64_t) getpid () };
    int rc = cbus_reply_send_msg (router, request, &cbus_pong_def, &pong, &buf);
    cbus_buf_free (&buf);
    return rc;
}

int
cbus_service_on_pipe (zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void) loop; (void) arg;
    char *command = zstr_recv (pipe);
    int rc = (!command || streq (command, "$TERM")) ? -1 : 0;
    zstr_free (&command);
    return rc;
}

int
cbus_service_on_heartbeat (zloop_t *loop, int timer_id, void *pub)
{
    (void) loop; (void) timer_id;
    cbus_pub_heartbeat ((cbus_pub_t *) pub);
    return 0;
}

int
cbus_service_main (int argc, char **argv, const char *role, zactor_fn *actor)
{
    char ident [64];
    snprintf (ident, sizeof (ident), "chainbus-%s", role);
    for (int arg = 1; arg < argc; arg++)
        if (streq (argv [arg], "--help") || streq (argv [arg], "-h")) {
            printf ("usage: %s [--config FILE] [--flag VALUE ...]\n", ident);
            cbus_config_print_help (stdout);
            return 0;
        }
    //  Our output may be a pipe of the launcher's: once it is gone, a
    //  write must fail (EPIPE), not kill us.
    signal (SIGPIPE, SIG_IGN);
    char reason [CBUS_REASON_MAX];
    cbus_config_t *config = cbus_config_new (argc, argv, reason);
    if (!config) {
        s_early_error (ident, reason);
        return 2;
    }
    zsys_init ();
    s_log_setup (ident);
    cbus_log_verbose = cbus_config_bool (config, "node/verbose");
    if (cbus_config_make_dirs (config, reason)) {
        s_early_error (ident, reason);
        cbus_config_destroy (&config);
        return 2;
    }
    //  The keys of tcp endpoints, for the whole process (cbus_endpoint.h).
    cbus_endpoint_t *keys = cbus_endpoint_new (config, role, reason);
    if (!keys) {
        s_early_error (ident, reason);
        cbus_config_destroy (&config);
        return 2;
    }
    zsys_info ("starting version=%s data_dir=%s pid=%d", CBUS_VERSION,
               cbus_config_data_dir (config), (int) getpid ());
    //  Signals go to main alone: the actor (and the ZeroMQ threads it
    //  starts) inherit a mask that blocks them, so no poll of theirs is
    //  cut short by one; main stops the actor with $TERM.
    sigset_t stop_signals, previous;
    sigemptyset (&stop_signals);
    sigaddset (&stop_signals, SIGINT);
    sigaddset (&stop_signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop_signals, &previous);
    zactor_t *service = zactor_new (actor, config);
    pthread_sigmask (SIG_SETMASK, &previous, NULL);
    zpoller_t *poller = service? zpoller_new (service, NULL): NULL;
    if (!poller) {
        zsys_error ("out of memory starting the service");
        zactor_destroy (&service);
        cbus_endpoint_destroy (&keys);
        cbus_config_destroy (&config);
        return 1;
    }
    int exit_code = 0;
    //  The actor speaks on its pipe only to say it failed at start:
    //  "FAILED", its class and its reason (cbus_service_fail). A
    //  permanent error exits 2, which the launcher and the units do not
    //  retry forever; a transient one (a held lock, a full disk, an
    //  address not up yet) exits 1, to be restarted. Otherwise run until
    //  SIGINT or SIGTERM (CZMQ's handler sets zsys_interrupted).
    while (!zsys_interrupted) {
        if (zpoller_wait (poller, 1000) == service) {
            //  Anything else is the actor's end signal: its loop ended
            //  by itself, a failure (exit 1) for the launcher and systemd
            //  to restart.
            char *message = NULL, *fault = NULL, *why = NULL;
            zstr_recvx (service, &message, &fault, &why, NULL);
            bool failed = message && streq (message, "FAILED");
            exit_code = failed && !(fault && streq (fault, CBUS_SERVICE_TRANSIENT))? 2: 1;
            if (failed)
                sd_notifyf (0, "STATUS=%s: %s start error (exit %d): %s", role,
                            exit_code == 2 ? "permanent": "transient", exit_code,
                            why ? why: "no reason given");
            //  Processed before we exit: systemd drops a message whose
            //  sender is gone (it cannot tell the unit).
            if (failed && sd_notify_barrier (0, 5000000) < 0 && getenv ("NOTIFY_SOCKET"))
                zsys_warning ("the status line may not have reached systemd");
            zstr_free (&message);
            zstr_free (&fault);
            zstr_free (&why);
            break;
        }
    }
    zpoller_destroy (&poller);
    if (exit_code == 0)
        sd_notify (0, "STOPPING=1\nSTATUS=stopping");
    //  Wait for the actor's end with no signal able to cut it short (a
    //  second one comes when Ctrl-C reached the group and the launcher
    //  then sends SIGTERM); one arriving now stays pending and is moot.
    pthread_sigmask (SIG_BLOCK, &stop_signals, &previous);
    zactor_destroy (&service);
    pthread_sigmask (SIG_SETMASK, &previous, NULL);
    zsys_info ("stopped exit=%d", exit_code);
    cbus_endpoint_destroy (&keys);
    cbus_config_destroy (&config);
    return exit_code;
}

int
cbus_service_selftest (int argc, char **argv, const cbus_selftest_t *tests, size_t count)
{
    bool verbose = false;
    const char *only = NULL;
    for (int arg = 0; arg < argc; arg++) {
        if (streq (argv [arg], "-v"))
            verbose = true;
        else
        if (streq (argv [arg], "--list")) {
            for (size_t index = 0; index < count; index++)
                puts (tests [index].name);
            return 0;
        }
        else
        if (argv [arg][0] != '-' && !only)
            only = argv [arg];
        else {
            fprintf (stderr, "usage: --selftest [-v] [--list] [NAME]\n");
            return 2;
        }
    }
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    bool found = false;
    for (size_t index = 0; index < count; index++)
        if (!only || streq (only, tests [index].name)) {
            tests [index].test (verbose);
            found = true;
        }
    if (!found) {
        fprintf (stderr, "no self-test named %s\n", only);
        return 2;
    }
    return 0;
}
