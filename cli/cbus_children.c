/*  =========================================================================
    cbus_children - stopping the child processes of chainbus node and net
    =========================================================================
*/
#include "cbus_children.h"
#include <signal.h>
#include <sys/wait.h>

void
cbus_children_stop (pid_t *pids [], const char *names [], size_t count, int grace_ms)
{
    for (size_t index = 0; index < count; index++)
        if (*pids [index] > 0)
            kill (*pids [index], SIGTERM);
    int64_t deadline = cbus_mono_ms () + grace_ms;
    size_t running = count;
    while (running > 0) {
        running = 0;
        for (size_t index = 0; index < count; index++) {
            pid_t pid = *pids [index];
            if (pid <= 0)
                continue;
            int status;
            if (waitpid (pid, &status, WNOHANG) == pid) {
                zsys_info ("stopped child=%s", names [index]);
                *pids [index] = 0;
            }
            else
            if (cbus_mono_ms () > deadline) {
                zsys_warning ("killing child=%s: it did not stop in %d ms", names [index], grace_ms);
                kill (pid, SIGKILL);
                waitpid (pid, &status, 0);
                *pids [index] = 0;
            }
            else
                running++;
        }
        if (running)
            usleep (20000);
    }
}
