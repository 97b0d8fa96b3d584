/* The pool: helpers started with posix_spawn (a vfork and an exec of `ear`
 * itself, safe from a process with threads, unlike a bare fork), each behind
 * one end of a socketpair. A job takes an idle helper, writes the request,
 * and reads the reply under a wall-clock deadline while watching its client:
 * past the deadline, when the client hangs up, or when the helper dies or
 * says something malformed, the helper is killed, reaped and replaced, and
 * the job alone fails. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/protocol.h"

extern char **environ;

/* Spawning waits this long for a helper to say it is locked down. */
#define EAR_SANDBOX_START_TIMEOUT_MS 20000.0
/* How often a wait looks at the cancel flag. */
#define EAR_SANDBOX_POLL_MS 50

typedef struct helper {
    pid_t pid; /* 0: none (dead, or never started) */
    int fd;    /* the pool's end of the socket; -1 with pid 0 */
    int busy;
} helper;

struct ear_sandbox_pool {
    ear_sandbox_options o;
    char exe[PATH_MAX];
    char memory_text[32], cpu_text[32];
    char user[64];
    pthread_mutex_t lock; /* guards busy flags and spawned */
    pthread_cond_t freed;
    helper *helpers;
    int count;
    uint64_t spawned;
};

void ear_sandbox_options_default(ear_sandbox_options *o)
{
    memset(o, 0, sizeof *o);
    o->helpers = 1;
    o->timeout_s = 5;
    o->memory_limit = (size_t)1 << 30;
    o->cpu_budget_s = 60;
    o->user = "nobody";
    o->exe = NULL;
}

/* ---- talking to one helper under a deadline ---- */

typedef struct job_io {
    int fd;
    double deadline_ms;
    const ear_sandbox_cancel *cancel;
    int timed_out, cancelled, closed;
} job_io;

/* Waits until fd is ready for events, the deadline passes or the job is
 * cancelled; 0 when ready. */
static int wait_ready(job_io *io, short events, ear_error *err)
{
    for (;;) {
        if (io->cancel && io->cancel->flag && *io->cancel->flag) {
            io->cancelled = 1;
            return ear_error_set(err, "cancelled");
        }
        double left = io->deadline_ms - ear_now_ms();
        if (left <= 0) {
            io->timed_out = 1;
            return ear_error_set(err, "deadline passed");
        }
        struct pollfd fds[2] = {{.fd = io->fd, .events = events}, {.fd = -1}};
        int n = 1;
        if (io->cancel && io->cancel->client_fd >= 0) {
            /* The peer's hang-up; its bytes (a next request) are not ours to read. */
            fds[1].fd = io->cancel->client_fd;
            fds[1].events = POLLRDHUP;
            n = 2;
        }
        int wait_ms = left < EAR_SANDBOX_POLL_MS ? (int)left + 1 : EAR_SANDBOX_POLL_MS;
        int rc = poll(fds, (nfds_t)n, wait_ms);
        if (rc < 0 && errno != EINTR)
            return ear_error_set(err, "poll: %s", strerror(errno));
        if (rc <= 0)
            continue;
        if (n == 2 && (fds[1].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
            io->cancelled = 1;
            return ear_error_set(err, "the client left");
        }
        if (fds[0].revents)
            return 0;
    }
}

static int io_read(void *context, void *buffer, size_t size, ear_error *err)
{
    job_io *io = context;
    uint8_t *p = buffer;
    while (size) {
        ssize_t n = read(io->fd, p, size);
        if (n > 0) {
            p += n;
            size -= (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            io->closed = 1;
            return ear_error_set(err, "the decoder stopped answering");
        }
        if (wait_ready(io, POLLIN, err) != 0)
            return -1;
    }
    return 0;
}

static int io_write(job_io *io, const void *buffer, size_t size, ear_error *err)
{
    const uint8_t *p = buffer;
    while (size) {
        /* send, not write: a dead helper must not raise SIGPIPE in a CLI run. */
        ssize_t n = send(io->fd, p, size, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            size -= (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            io->closed = 1;
            return ear_error_set(err, "the decoder stopped reading");
        }
        if (wait_ready(io, POLLOUT, err) != 0)
            return -1;
    }
    return 0;
}

/* ---- helpers' lives ---- */

/* How a reaped helper ended, in words. */
static void describe_end(int status, char *out, size_t size)
{
    if (WIFEXITED(status)) {
        snprintf(out, size, "the decoder exited (status %d)", WEXITSTATUS(status));
        return;
    }
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    switch (sig) {
    case SIGSYS: snprintf(out, size, "the decoder attempted a forbidden system call"); break;
    case SIGXCPU: snprintf(out, size, "the decoder used up its CPU time"); break;
    case SIGKILL: snprintf(out, size, "the decoder was killed (out of memory?)"); break;
    default:
        snprintf(out, size, "the decoder crashed (signal %d, %s)", sig, strsignal(sig));
    }
}

/* Kills (when asked) and reaps h; its end status in *status (when not NULL). */
static void end_helper(helper *h, int kill_it, int *status)
{
    int end = 0;
    if (h->pid > 0) {
        if (kill_it)
            kill(h->pid, SIGKILL);
        while (waitpid(h->pid, &end, 0) < 0 && errno == EINTR)
            ;
    }
    if (h->fd >= 0)
        close(h->fd);
    h->pid = 0;
    h->fd = -1;
    if (status)
        *status = end;
}

static int spawn_helper(ear_sandbox_pool *pool, helper *h, ear_error *err)
{
    int sv[2] = {-1, -1};
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int have_actions = 0, have_attributes = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        ear_error_set(err, "cannot make the decoder's socket: %s", strerror(errno));
        goto fail;
    }
    /* Room for a whole reply (a minute of samples is 3.8 MB; the kernel caps
     * this at net.core.wmem_max): fewer wake-ups of either side per job. */
    int buffer = 8 << 20;
    for (int i = 0; i < 2; i++) {
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    }
    if (posix_spawn_file_actions_init(&actions) != 0)
        goto no_memory;
    have_actions = 1;
    /* dup2 clears close-on-exec on the copies only. */
    if (posix_spawn_file_actions_adddup2(&actions, sv[1], 0) != 0 ||
        posix_spawn_file_actions_adddup2(&actions, sv[1], 1) != 0)
        goto no_memory;
    if (posix_spawnattr_init(&attributes) != 0)
        goto no_memory;
    have_attributes = 1;
    /* The service blocks its signals for sigwait and ignores SIGPIPE; the
     * helper starts plain, in its own process group (a terminal's Ctrl-C is
     * the service's to handle). */
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGHUP);
    if (posix_spawnattr_setsigmask(&attributes, &none) != 0 ||
        posix_spawnattr_setsigdefault(&attributes, &defaults) != 0 ||
        posix_spawnattr_setpgroup(&attributes, 0) != 0 ||
        posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                  POSIX_SPAWN_SETPGROUP) != 0)
        goto no_memory;

    /* A small environment: one BLAS thread (OpenBLAS starts its threads when
     * loaded), and the sanitizers' and the trace switch's settings. */
    char *env[10];
    int n = 0;
    env[n++] = "EAR_SANDBOX_HELPER=1";
    env[n++] = "OPENBLAS_NUM_THREADS=1";
    env[n++] = "OMP_NUM_THREADS=1";
    static const char *const passed[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
                                         "EAR_SANDBOX_TRACE"};
    for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++) {
        size_t length = strlen(passed[i]);
        for (char **e = environ; e && *e; e++)
            if (strncmp(*e, passed[i], length) == 0 && (*e)[length] == '=') {
                env[n++] = *e;
                break;
            }
    }
    env[n] = NULL;
    char *argv[] = {"ear",   "sandbox-helper",  "--memory", pool->memory_text, "--cpu",
                    pool->cpu_text, "--user", pool->user, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, pool->exe, &actions, &attributes, argv, env);
    if (rc != 0) {
        ear_error_set(err, "cannot start the decoder %s: %s", pool->exe, strerror(rc));
        goto fail;
    }
    close(sv[1]);
    sv[1] = -1;
    h->pid = pid;
    h->fd = sv[0];
    sv[0] = -1; /* h's now */
    fcntl(h->fd, F_SETFL, fcntl(h->fd, F_GETFL) | O_NONBLOCK);
    pthread_mutex_lock(&pool->lock);
    pool->spawned++;
    pthread_mutex_unlock(&pool->lock);

    job_io io = {.fd = h->fd, .deadline_ms = ear_now_ms() + EAR_SANDBOX_START_TIMEOUT_MS};
    uint32_t ready = 0;
    ear_error why;
    if (io_read(&io, &ready, sizeof ready, &why) != 0 || ready != EAR_SANDBOX_MAGIC_READY) {
        int status = 0;
        end_helper(h, 1, &status);
        char how[128];
        describe_end(status, how, sizeof how);
        ear_error_set(err, "the decoder process did not start: %s",
                      io.timed_out ? "no answer" : how);
        goto fail;
    }
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return 0;
no_memory:
    ear_error_set(err, "out of memory");
fail:
    if (have_actions)
        posix_spawn_file_actions_destroy(&actions);
    if (have_attributes)
        posix_spawnattr_destroy(&attributes);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    return -1;
}

/* Whether h is alive and idle-ready; a helper that left on its own is reaped. */
static int helper_alive(helper *h)
{
    if (h->pid <= 0)
        return 0;
    int status;
    if (waitpid(h->pid, &status, WNOHANG) == 0)
        return 1;
    h->pid = 0; /* reaped just now */
    end_helper(h, 0, NULL);
    return 0;
}

ear_sandbox_pool *ear_sandbox_pool_start(const ear_sandbox_options *o, ear_error *err)
{
    /* A binary that is not `ear` (a test linking the service) would run as its
     * own helper, start a pool of its own, and so on without end. */
    if (getenv("EAR_SANDBOX_HELPER")) {
        ear_error_set(err, "a sandbox helper cannot start helpers: is %s the `ear` binary?",
                      o->exe ? o->exe : "this program");
        return NULL;
    }
    if (o->helpers < 1 || o->helpers > 1024) {
        ear_error_set(err, "decode helpers must be from 1 to 1024 (got %d)", o->helpers);
        return NULL;
    }
    if (!(o->timeout_s > 0) || !(o->cpu_budget_s >= 1)) {
        ear_error_set(err, "the decode timeout must be positive and the CPU budget at least 1 s");
        return NULL;
    }
    ear_sandbox_pool *pool = calloc(1, sizeof *pool);
    if (!pool) {
        ear_error_set(err, "out of memory");
        return NULL;
    }
    pool->o = *o;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->freed, NULL);
    pool->helpers = calloc((size_t)o->helpers, sizeof *pool->helpers);
    if (!pool->helpers) {
        ear_error_set(err, "out of memory");
        goto fail;
    }
    pool->count = o->helpers;
    for (int i = 0; i < pool->count; i++)
        pool->helpers[i].fd = -1;
    if (o->exe) {
        snprintf(pool->exe, sizeof pool->exe, "%s", o->exe);
    } else {
        /* The path, not /proc/self/exe itself: under valgrind that would name valgrind. */
        ssize_t n = readlink("/proc/self/exe", pool->exe, sizeof pool->exe - 1);
        if (n <= 0) {
            ear_error_set(err, "cannot find this program's path: %s", strerror(errno));
            goto fail;
        }
        pool->exe[n] = 0;
    }
    snprintf(pool->memory_text, sizeof pool->memory_text, "%zu", o->memory_limit);
    snprintf(pool->cpu_text, sizeof pool->cpu_text, "%g", o->cpu_budget_s);
    snprintf(pool->user, sizeof pool->user, "%s", o->user ? o->user : "nobody");
    for (int i = 0; i < pool->count; i++)
        if (spawn_helper(pool, &pool->helpers[i], err) != 0)
            goto fail;
    return pool;
fail:
    ear_sandbox_pool_stop(pool);
    return NULL;
}

uint64_t ear_sandbox_pool_spawned(ear_sandbox_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    uint64_t n = pool->spawned;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

void ear_sandbox_pool_stop(ear_sandbox_pool *pool)
{
    if (!pool)
        return;
    for (int i = 0; pool->helpers && i < pool->count; i++) {
        helper *h = &pool->helpers[i];
        if (h->pid > 0) {
            /* Closing the socket ends an idle helper's read; the kill, any other. */
            close(h->fd);
            h->fd = -1;
            end_helper(h, 1, NULL);
        }
    }
    free(pool->helpers);
    pthread_cond_destroy(&pool->freed);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

/* ---- jobs ---- */

static helper *acquire(ear_sandbox_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        for (int i = 0; i < pool->count; i++)
            if (!pool->helpers[i].busy) {
                pool->helpers[i].busy = 1;
                pthread_mutex_unlock(&pool->lock);
                return &pool->helpers[i];
            }
        pthread_cond_wait(&pool->freed, &pool->lock);
    }
}

static void release_helper(ear_sandbox_pool *pool, helper *h)
{
    pthread_mutex_lock(&pool->lock);
    h->busy = 0;
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->lock);
}

static int run_job(ear_sandbox_pool *pool, const ear_sandbox_request *q, const uint8_t *input,
                   const ear_sandbox_cancel *cancel, ear_audio_clip *clip, ear_image *img,
                   ear_error *err)
{
    double start = ear_now_ms();
    helper *h = acquire(pool);
    int rc = EAR_SANDBOX_FAILED;
    if (!helper_alive(h) && spawn_helper(pool, h, err) != 0)
        goto done;
    job_io io = {.fd = h->fd, .deadline_ms = start + pool->o.timeout_s * 1000, .cancel = cancel};
    ear_error why = {{0}};
    int retire = 0;
    if (io_write(&io, q, sizeof *q, &why) == 0 && io_write(&io, input, (size_t)q->size, &why) == 0)
        rc = ear_sandbox_reply_read(io_read, &io, q, clip, img, &retire, &why);
    else
        rc = EAR_SANDBOX_KILLED;
    if (rc == 0 || rc == EAR_SANDBOX_REFUSED) {
        if (rc == EAR_SANDBOX_REFUSED)
            ear_error_set(err, "%s", why.message);
        if (retire)
            end_helper(h, 0, NULL); /* it is leaving on its own; the next job starts another */
        goto done;
    }
    /* Killed whatever it was doing: a helper is only ever reused after a clean reply. */
    int status = 0;
    end_helper(h, 1, &status);
    if (io.cancelled) {
        rc = EAR_SANDBOX_CANCELLED;
        ear_error_set(err, "decoding stopped: %s", why.message);
    } else if (io.timed_out) {
        rc = EAR_SANDBOX_KILLED;
        ear_error_set(err, "decoding took longer than %g s and was stopped", pool->o.timeout_s);
    } else if (io.closed) {
        rc = EAR_SANDBOX_KILLED;
        describe_end(status, err->message, sizeof err->message);
    } else {
        rc = EAR_SANDBOX_KILLED;
        ear_error_set(err, "%s", why.message);
    }
    /* Replaced at once, so that the next job does not wait for the start. */
    ear_error spawn_err;
    if (spawn_helper(pool, h, &spawn_err) != 0)
        fprintf(stderr, "ear: %s (tried again at the next job)\n", spawn_err.message);
done:
    release_helper(pool, h);
    return rc;
}

int ear_sandbox_decode_audio(ear_sandbox_pool *pool, const uint8_t *bytes, size_t size,
                             const ear_audio_decode_options *o, const ear_sandbox_cancel *cancel,
                             ear_audio_clip *out, ear_error *err)
{
    memset(out, 0, sizeof *out);
    if (size == 0 || !bytes) {
        ear_error_set(err, "empty input (0 bytes)");
        return EAR_SANDBOX_REFUSED;
    }
    ear_sandbox_request q = {
        .magic = EAR_SANDBOX_MAGIC_REQUEST,
        .kind = EAR_SANDBOX_JOB_AUDIO,
        .rate = o->sample_rate > 0 ? (uint32_t)o->sample_rate : 0,
        .timeout_ms = (uint32_t)(pool->o.timeout_s * 1000),
        .flags = o->ffmpeg_cli ? EAR_SANDBOX_AUDIO_FFMPEG_CLI : 0,
        .max_seconds = o->max_seconds,
        .size = size,
    };
    if (ear_sandbox_request_check(&q, err) != 0)
        return EAR_SANDBOX_REFUSED;
    return run_job(pool, &q, bytes, cancel, out, NULL, err);
}

int ear_sandbox_decode_image(ear_sandbox_pool *pool, const uint8_t *bytes, size_t size,
                             const ear_sandbox_cancel *cancel, ear_image *out, ear_error *err)
{
    memset(out, 0, sizeof *out);
    if (size == 0 || !bytes) {
        ear_error_set(err, "empty input (0 bytes)");
        return EAR_SANDBOX_REFUSED;
    }
    ear_sandbox_request q = {
        .magic = EAR_SANDBOX_MAGIC_REQUEST,
        .kind = EAR_SANDBOX_JOB_IMAGE,
        .timeout_ms = (uint32_t)(pool->o.timeout_s * 1000),
        .size = size,
    };
    if (ear_sandbox_request_check(&q, err) != 0)
        return EAR_SANDBOX_REFUSED;
    return run_job(pool, &q, bytes, cancel, NULL, out, err);
}
