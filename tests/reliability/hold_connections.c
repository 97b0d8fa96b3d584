/* A crowd of idle clients for the service's tests:
 *   hold_connections PORT COUNT SECONDS
 * raises this process's open-file limit, opens COUNT TCP connections to
 * 127.0.0.1:PORT at once (non-blocking connects), prints "connected N failed M"
 * and a line "ready", then holds them, sending nothing, for SECONDS (less if the
 * server closes them all), and prints "closed_by_server K": how many it closed. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: hold_connections PORT COUNT SECONDS\n");
        return 2;
    }
    int port = atoi(argv[1]), count = atoi(argv[2]);
    double seconds = atof(argv[3]);
    if (port <= 0 || port > 65535 || count <= 0 || count > 1000000) {
        fprintf(stderr, "hold_connections: bad port or count\n");
        return 2;
    }
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < (rlim_t)count + 64) {
        limit.rlim_cur = limit.rlim_max < (rlim_t)count + 64 ? limit.rlim_max : (rlim_t)count + 64;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    struct pollfd *fds = calloc((size_t)count, sizeof *fds);
    int *state = calloc((size_t)count, sizeof *state); /* 0 connecting, 1 open, 2 failed, 3 closed */
    if (!fds || !state)
        return 1;
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons((uint16_t)port);
    int failed = 0;
    for (int i = 0; i < count; i++) {
        fds[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fds[i].fd < 0) {
            fprintf(stderr, "hold_connections: socket %d: %s\n", i, strerror(errno));
            state[i] = 2;
            failed++;
            continue;
        }
        /* Waves of 250, 25 ms apart (10,000 a second): all at once would overflow
         * the listen backlog (511), and with SYN cookies a connection whose last
         * ACK was dropped looks open here but never reaches the server. */
        if (i % 250 == 249)
            nanosleep(&(struct timespec){0, 25 * 1000 * 1000}, NULL);
        if (connect(fds[i].fd, (struct sockaddr *)&address, sizeof address) == 0)
            state[i] = 1;
        else if (errno != EINPROGRESS) {
            state[i] = 2;
            failed++;
        }
    }
    /* Wait (at most 20 s) for the connects still in progress. */
    int connected = 0, pending;
    double give_up = now_s() + 20;
    do {
        pending = 0;
        for (int i = 0; i < count; i++) {
            fds[i].events = state[i] == 0 ? POLLOUT : 0;
            pending += state[i] == 0;
        }
        if (!pending)
            break;
        poll(fds, (nfds_t)count, 100);
        for (int i = 0; i < count; i++) {
            if (state[i] != 0 || !fds[i].revents)
                continue;
            int error = 0;
            socklen_t length = sizeof error;
            getsockopt(fds[i].fd, SOL_SOCKET, SO_ERROR, &error, &length);
            state[i] = error ? 2 : 1;
            failed += error != 0;
        }
    } while (now_s() < give_up);
    for (int i = 0; i < count; i++)
        connected += state[i] == 1;
    printf("connected %d failed %d\nready\n", connected, failed + pending);
    fflush(stdout);

    /* Hold: watch for the server closing (EOF or reset). */
    double end = now_s() + seconds;
    int closed = 0;
    char byte[512];
    while (now_s() < end && closed < connected) {
        for (int i = 0; i < count; i++)
            fds[i].events = state[i] == 1 ? POLLIN : 0;
        int left = (int)((end - now_s()) * 1000) + 1;
        if (poll(fds, (nfds_t)count, left < 200 ? left : 200) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < count; i++) {
            if (state[i] != 1 || !fds[i].revents)
                continue;
            ssize_t n = recv(fds[i].fd, byte, sizeof byte, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN)) {
                state[i] = 3;
                closed++;
            }
        }
    }
    printf("closed_by_server %d\n", closed);
    fflush(stdout);
    for (int i = 0; i < count; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    free(fds);
    free(state);
    return 0;
}
