/*  =========================================================================
    cbus_children - the child processes of chainbus node and net

    Both the node launcher (services) and chainbus net (whole nodes) start
    their children the same way: fork, the default signal mask, death
    with the parent (PR_SET_PDEATHSIG), exec; they take their signals the
    same way (blocked, then waited for in their loop); and stop them the
    same way: SIGTERM to all, wait, SIGKILL whatever is left after a grace
    period, each end logged.
    =========================================================================
*/
#ifndef CBUS_CHILDREN_H_INCLUDED
#define CBUS_CHILDREN_H_INCLUDED

#include "cbus.h"

//  Start program as a child with args (strings; argv [0] is program) as
//  its arguments. With log_fd >= 0 its standard input is /dev/null and
//  its output goes to log_fd. name names it in the messages. Returns its
//  pid, or -1 (logged) if it could not be forked; a program that cannot
//  be run exits 127 with a line on its standard error.
pid_t
    cbus_children_start (const char *program, zlist_t *args, int log_fd, const char *name);

//  Block the signals the loop of a parent waits for (SIGCHLD, SIGTERM,
//  SIGINT, SIGHUP), and fill signals with them for sigtimedwait.
void
    cbus_children_signals (sigset_t *signals);

//  Stop count processes. Each *pids [i] that is above 0 is signalled and
//  reaped, then set to 0; names [i] names it in the log lines. idle,
//  when not NULL, is called with arg every 20 ms or so while they stop
//  (the launcher reads their output meanwhile, so that none blocks on a
//  full pipe).
void
    cbus_children_stop (pid_t *pids [], const char *names [], size_t count, int grace_ms,
                        void (*idle) (void *arg), void *arg);

#endif
