/*
 * Forks once without exec. Prints "PIDS <parent> <child>", then both processes wait for stdin to close and exit.
 * Under the shim, each must end up with a segment of its own.
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        char buf[64];
        while (fgets(buf, sizeof(buf), stdin) != NULL) {
        }
        return 0;
    }
    printf("PIDS %d %d\n", (int)getpid(), (int)child);
    char buf[64];
    while (fgets(buf, sizeof(buf), stdin) != NULL) {
    }
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
