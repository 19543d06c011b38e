/*  =========================================================================
    cbus_children - stopping the child processes of chainbus node and net

    Both the node launcher (services) and chainbus net (whole nodes) stop
    their children the same way: SIGTERM to all, wait, SIGKILL whatever is
    left after a grace period, each end logged.
    =========================================================================
*/
#ifndef CBUS_CHILDREN_H_INCLUDED
#define CBUS_CHILDREN_H_INCLUDED

#include "cbus.h"

//  Stop count processes. Each *pids [i] that is above 0 is signalled and
//  reaped, then set to 0; names [i] names it in the log lines.
void
    cbus_children_stop (pid_t *pids [], const char *names [], size_t count, int grace_ms);

#endif
