/*
 * meshcert's pause: the sandbox process of every pod. It holds the pod's namespaces open, exits
 * cleanly on SIGINT/SIGTERM, and reaps orphaned children (it is PID 1 of the pod when the PID
 * namespace is shared). Written here instead of pulled so nodes can be built offline; build with
 * `gcc -static -O2 -o pause pause.c` (the image has no libc).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MESHCERT_PAUSE_VERSION
#define MESHCERT_PAUSE_VERSION "meshcert"
#endif

static void on_terminate(int sig) {
    (void)sig;
    _exit(0);
}

static void on_child(int sig) {
    (void)sig;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        printf("pause.c %s\n", MESHCERT_PAUSE_VERSION);
        return 0;
    }
    if (getpid() != 1) {
        fprintf(stderr, "pause: warning: not PID 1, orphaned children will not be reaped here\n");
    }
    struct sigaction term = {0};
    term.sa_handler = on_terminate;
    sigemptyset(&term.sa_mask);
    if (sigaction(SIGINT, &term, NULL) < 0 || sigaction(SIGTERM, &term, NULL) < 0) {
        perror("pause: sigaction");
        return 1;
    }
    struct sigaction child = {0};
    child.sa_handler = on_child;
    child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigemptyset(&child.sa_mask);
    if (sigaction(SIGCHLD, &child, NULL) < 0) {
        perror("pause: sigaction");
        return 1;
    }
    for (;;) {
        pause();
    }
    return 42; /* unreachable */
}
