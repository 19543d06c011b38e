/*  =========================================================================
    cbus_children - the child processes of chainbus node and net
    =========================================================================
*/
#include "cbus_children.h"
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

pid_t
cbus_children_start (const char *program, zlist_t *args, int log_fd, const char *name)
{
    char **argv = (char **) calloc (zlist_size (args) + 2, sizeof (char *));
    if (!argv) {
        zsys_error ("cannot start %s: out of memory", name);
        return -1;
    }
    size_t index = 0;
    argv [index++] = (char *) program;
    for (char *arg = (char *) zlist_first (args); arg; arg = (char *) zlist_next (args))
        argv [index++] = arg;
    pid_t pid = fork ();
    if (pid == 0) {
        //  The child: default signals, and die with the parent.
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        signal (SIGPIPE, SIG_DFL);      //  Ignored by the parent only
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        if (log_fd >= 0) {
            int null = open ("/dev/null", O_RDONLY);
            if (null >= 0)
                dup2 (null, STDIN_FILENO);
            dup2 (log_fd, STDOUT_FILENO);
            dup2 (log_fd, STDERR_FILENO);
        }
        execv (program, argv);
        fprintf (stderr, "chainbus: cannot run %s for %s: %s\n", program, name, strerror (errno));
        _exit (127);
    }
    free (argv);
    if (pid < 0)
        zsys_error ("cannot fork for %s: %s", name, strerror (errno));
    return pid;
}

void
cbus_children_signals (sigset_t *signals)
{
    sigemptyset (signals);
    sigaddset (signals, SIGCHLD);
    sigaddset (signals, SIGTERM);
    sigaddset (signals, SIGINT);
    sigaddset (signals, SIGHUP);
    sigprocmask (SIG_BLOCK, signals, NULL);
}

void
cbus_children_stop (pid_t *pids [], const char *names [], size_t count, int grace_ms,
                    void (*idle) (void *arg), void *arg)
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
        if (running && idle)
            idle (arg);
        if (running)
            usleep (20000);
    }
}
