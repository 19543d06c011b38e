/*  =========================================================================
    cbus_service - what every service program shares: the thin main and
    the actor's startup handshake

    A service is a CZMQ actor taking a cbus_config_t * as its argument.
    It signals the pipe once when started; if it cannot run (a socket that
    will not bind, a store that will not open) it then sends "FAILED" on
    the pipe, with the fault's class and reason, and returns. The main
    runs the actor until SIGINT/SIGTERM or failure and exits 0 for a
    clean stop, 2 for a permanent failure at start (restarting cannot
    help: a port in use, a store of another network, a bad key; a config
    that does not parse exits 2 too), 1 for a transient one (a store lock
    held by another process, no space, an I/O error, no memory, a bind
    address not up yet) and for a loop that ended by itself.

    Under systemd (Type=notify, deploy/systemd/): the actor calls
    cbus_service_ready on its loop once it really serves (sockets bound,
    stores open), which sends READY=1 and, when the unit has WatchdogSec,
    arms a timer on that same loop sending WATCHDOG=1, so a loop that
    hangs (or a process SIGSTOPped) stops the keep-alives and systemd
    restarts the service. Main sends STOPPING=1 when a stop signal comes.
    When standard output is the journal (JOURNAL_STREAM names it), log
    lines go through syslog at their priority (zsys_set_logsystem), so
    `journalctl -p err` shows the errors. Outside systemd all of this is
    nothing: no NOTIFY_SOCKET, no watchdog, lines on standard output.

    Only main takes signals: the actor's thread starts with SIGINT and
    SIGTERM blocked, and actors set their zloop (or zpoller) nonstop, so
    they end on $TERM alone. Otherwise an actor ending on its own at a
    signal races main for the pipe, and main can wait for an end it
    already missed (Ctrl-C reaches every process of the group, then the
    launcher sends SIGTERM: two signals).
    =========================================================================
*/
#ifndef CBUS_SERVICE_H_INCLUDED
#define CBUS_SERVICE_H_INCLUDED

//  The whole main() of a service: parse flags and config, set the log
//  identity to "chainbus-<role>", run the actor. Returns the exit code.
int
    cbus_service_main (int argc, char **argv, const char *role, zactor_fn *actor);

//  One self-test of a program's table of them.
typedef struct {
    const char *name;               //  Class name, "cbus_pool"
    void (*test) (bool verbose);    //  Its self-test
} cbus_selftest_t;
//  Run a program's self-tests from its arguments after --selftest:
//  [-v] [--list] [NAME]: every test, or the one named, or list them.
//  Returns the exit code (2 for an unknown name or flag).
int
    cbus_service_selftest (int argc, char **argv, const cbus_selftest_t *tests, size_t count);

//  For actors: report a startup failure on the pipe (after the signal):
//  "FAILED", CBUS_SERVICE_PERMANENT or CBUS_SERVICE_TRANSIENT, and the
//  reason. The class and the reason's tail are what cbus_service_fault
//  noted first on this thread (none noted: permanent). The reason is
//  logged as an error; main puts it in the unit's STATUS= line and exits
//  2 (permanent) or 1 (transient).
#define CBUS_SERVICE_PERMANENT "permanent"
#define CBUS_SERVICE_TRANSIENT "transient"
void
    cbus_service_fail (zsock_t *pipe, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  For start paths: note why the start fails and whether a retry can
//  mend it (transient: a held store lock, no space, an I/O error, no
//  memory, an address not up yet) or not (permanent: configuration, a
//  store of another network, a bad key, a port in use). The first note
//  of a thread counts, until cbus_service_fail sends it.
void
    cbus_service_fault (bool transient, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  Whether a failed call's errno, or a store's open fault, is transient.
bool
    cbus_service_transient_errno (int error);
bool
    cbus_service_transient_store (cbus_store_fault_t fault);
//  A store whose lock another process holds is tried this many more
//  times, this far apart, before its service fails (transient).
#define CBUS_SERVICE_LOCK_TRIES   12
#define CBUS_SERVICE_LOCK_WAIT_MS 250

//  For actors: call once the service really serves, just before
//  zloop_start (loop): tells systemd READY=1 and, under a unit with
//  WatchdogSec, sends WATCHDOG=1 from a timer of this loop (a third of
//  the interval). Does nothing outside systemd. A timer that cannot be
//  registered is logged: the watchdog then restarts the service.
void
    cbus_service_ready (zloop_t *loop);

//  A service's request ROUTER, bound to endpoint, taking messages up to
//  max_size bytes, with deep queues. NULL with a reason if it will not bind.
zsock_t *
    cbus_service_router (const char *endpoint, int64_t max_size, char *reason);
//  Answer PING with {"role": role, "pid": n}, as every service does.
int
    cbus_service_pong (zsock_t *router, cbus_request_t *request, const char *role);

//  zloop handlers every actor uses: the pipe handler ends the loop on
//  $TERM; the heartbeat timer publishes node.heartbeat through the
//  cbus_pub_t given as its argument.
int
    cbus_service_on_pipe (zloop_t *loop, zsock_t *pipe, void *arg);
int
    cbus_service_on_heartbeat (zloop_t *loop, int timer_id, void *pub);

//  Debug lines are written only with node/verbose set; the test comes
//  before any formatting, so a debug line costs nothing on a hot path.
extern bool cbus_log_verbose;
#define CBUS_DEBUG(...) \
    do { if (cbus_log_verbose) zsys_debug (__VA_ARGS__); } while (0)

//  Interval of node.heartbeat events, and how long before a silent
//  service counts as down.
#define CBUS_HEARTBEAT_MS      1000
#define CBUS_HEARTBEAT_DEAD_MS 3500

#endif
