/* The helper: `ear sandbox-helper`, run by the pool with its end of a Unix
 * socket on fds 0 and 1. It locks itself down before it reads a byte of an
 * upload: every other descriptor closed, root given up, no new privileges,
 * limits on address space, CPU, files and processes, then a seccomp filter
 * that lets it read fd 0, write fds 1 and 2, manage memory and exit. Then it
 * answers jobs one at a time until the socket closes or its CPU budget is
 * spent. Whatever a crafted file makes the decoders do happens in here. */

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <libavutil/mem.h>

#include "sandbox/protocol.h"

/* The largest single allocation FFmpeg may make in a helper: far above any
 * honest packet or frame, far below what a header may claim (a WAV's LIST
 * chunk claiming 2 GiB). */
#define EAR_SANDBOX_AV_MAX_ALLOC ((size_t)64 << 20)

typedef struct helper_args {
    size_t memory_limit;
    double cpu_budget_s;
    const char *user;
} helper_args;

static int read_all(int fd, void *buffer, size_t size)
{
    uint8_t *p = buffer;
    while (size) {
        ssize_t n = read(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

static int write_all(int fd, const void *buffer, size_t size)
{
    const uint8_t *p = buffer;
    while (size) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

/* Writes a reply's header and payload in one call when the socket takes it
 * (one wake-up of the pool instead of two), the rest as write_all does. */
static int write_two(int fd, const void *head, size_t head_size, const void *body,
                     size_t body_size)
{
    struct iovec parts[2] = {{(void *)head, head_size}, {(void *)body, body_size}};
    ssize_t n;
    do
        n = writev(fd, parts, 2);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    size_t done = (size_t)n;
    if (done < head_size) {
        if (write_all(fd, (const uint8_t *)head + done, head_size - done) != 0)
            return -1;
        done = head_size;
    }
    return write_all(fd, (const uint8_t *)body + (done - head_size),
                     body_size - (done - head_size));
}

/* Under a sanitizer the runtime needs address space by the terabyte and a few
 * more system calls; the filter and the limits are the same otherwise. */
#if defined(__SANITIZE_ADDRESS__)
#define EAR_SANDBOX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EAR_SANDBOX_SANITIZED 1
#endif
#endif
#ifndef EAR_SANDBOX_SANITIZED
#define EAR_SANDBOX_SANITIZED 0
#endif

static int drop_privileges(const char *user)
{
    if (geteuid() != 0)
        return 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        fprintf(stderr, "ear sandbox-helper: no user %s to run as\n", user);
        return -1;
    }
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        fprintf(stderr, "ear sandbox-helper: cannot become %s: %s\n", user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) { /* root must be gone for good */
        fprintf(stderr, "ear sandbox-helper: could regain root\n");
        return -1;
    }
    return 0;
}

static int set_limit(int resource, rlim_t soft, rlim_t hard)
{
    struct rlimit limit = {soft, hard};
    return setrlimit(resource, &limit);
}

static void report_forbidden_syscall(int sig, siginfo_t *info, void *context)
{
    /* Only for EAR_SANDBOX_TRACE: which call a decoder needed. */
    char line[64];
    int n = snprintf(line, sizeof line, "ear sandbox-helper: forbidden syscall %d\n",
                     info->si_syscall);
    if (n > 0)
        (void)!write(2, line, (size_t)n);
    _exit(128 + SIGSYS);
}

static int install_filter(void)
{
    /* EAR_SANDBOX_TRACE=1 names a forbidden call on stderr instead of dying silently. */
    int trace = getenv("EAR_SANDBOX_TRACE") != NULL;
    if (trace) {
        struct sigaction action = {0};
        action.sa_sigaction = report_forbidden_syscall;
        action.sa_flags = SA_SIGINFO;
        sigaction(SIGSYS, &action, NULL);
    }
    scmp_filter_ctx ctx = seccomp_init(trace ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS);
    /* Without the seccomp() call (a parent filter may forbid it, leaving prctl)
     * the kernel's API level hides KILL_PROCESS: killing the thread is the same
     * here, where there is only one. */
    if (!ctx && !trace)
        ctx = seccomp_init(SCMP_ACT_KILL_THREAD);
    if (!ctx)
        return -1;
    int rc = 0;
    /* Its socket and stderr only. */
    /* Spelt out: clang warns of SCMP_A0's missing field. */
    const struct scmp_arg_cmp fd0 = {.arg = 0, .op = SCMP_CMP_EQ, .datum_a = 0, .datum_b = 0};
    const struct scmp_arg_cmp fd1 = {.arg = 0, .op = SCMP_CMP_EQ, .datum_a = 1, .datum_b = 0};
    const struct scmp_arg_cmp fd2 = {.arg = 0, .op = SCMP_CMP_EQ, .datum_a = 2, .datum_b = 0};
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(read), 1, fd0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, fd1);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, fd2);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(writev), 1, fd1);
    /* Memory, threads' wake-ups, time, and the way out. */
    static const int allowed[] = {
        SCMP_SYS(mmap),          SCMP_SYS(munmap),       SCMP_SYS(mremap),
        SCMP_SYS(brk),           SCMP_SYS(madvise),      SCMP_SYS(mprotect),
        SCMP_SYS(futex),         SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday),
        SCMP_SYS(getrusage),     SCMP_SYS(exit),         SCMP_SYS(exit_group),
        SCMP_SYS(rt_sigreturn),  SCMP_SYS(rt_sigprocmask), SCMP_SYS(getpid),
        SCMP_SYS(gettid),        SCMP_SYS(sched_yield),  SCMP_SYS(fstat),
        SCMP_SYS(newfstatat),
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
    /* A library that looks for a file is told no rather than killed. */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0);
    if (EAR_SANDBOX_SANITIZED) {
        /* AddressSanitizer's own bookkeeping (stack limits, its reports). */
        static const int sanitizer[] = {SCMP_SYS(getrlimit), SCMP_SYS(prlimit64),
                                        SCMP_SYS(sigaltstack), SCMP_SYS(rt_sigaction),
                                        SCMP_SYS(readlink),  SCMP_SYS(sched_getaffinity),
                                        SCMP_SYS(prctl),     SCMP_SYS(getppid),
                                        SCMP_SYS(close),     SCMP_SYS(uname)};
        for (size_t i = 0; i < sizeof sanitizer / sizeof sanitizer[0]; i++)
            rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sanitizer[i], 0);
    }
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc == 0 ? 0 : -1;
}

static int lock_down(const helper_args *a)
{
    /* Whatever else the service had open (its listening socket, client
     * connections, the index) stays out of reach. */
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    if (drop_privileges(a->user) != 0)
        return -1;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return -1;
    rlim_t cpu = (rlim_t)(a->cpu_budget_s + 0.999);
    if (set_limit(RLIMIT_CORE, 0, 0) != 0 || set_limit(RLIMIT_FSIZE, 0, 0) != 0 ||
        set_limit(RLIMIT_NPROC, 0, 0) != 0 || set_limit(RLIMIT_NOFILE, 3, 3) != 0 ||
        set_limit(RLIMIT_CPU, cpu + 1, cpu + 2) != 0)
        return -1;
    if (!EAR_SANDBOX_SANITIZED && a->memory_limit &&
        set_limit(RLIMIT_AS, a->memory_limit, a->memory_limit) != 0)
        return -1;
    av_max_alloc(EAR_SANDBOX_AV_MAX_ALLOC);
    /* stderr's buffer made before the filter, in case FFmpeg's log ever writes. */
    setvbuf(stderr, NULL, _IONBF, 0);
    return install_filter();
}

static double cpu_seconds(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        return 0;
    return (double)usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 +
           (double)usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

/* Whether this helper leaves after the reply: decided once the work is done,
 * and told in the reply, so the pool waits for the exit instead of sending
 * the next job into a closing socket. */
static uint32_t retiring(const helper_args *a)
{
    return cpu_seconds() > a->cpu_budget_s / 2;
}

static int send_refusal(const helper_args *a, ear_sandbox_reply *r, const char *message)
{
    r->retire = retiring(a);
    r->status = EAR_SANDBOX_REPLY_REFUSED;
    r->payload = strlen(message) + 1;
    if (r->payload >= EAR_ERROR_SIZE)
        r->payload = EAR_ERROR_SIZE - 1;
    if (write_all(1, r, sizeof *r) != 0 || write_all(1, message, (size_t)r->payload) != 0)
        return -1;
    return (int)r->retire;
}

/* One job; 1 when the helper retires after it, -1 when the socket is gone. */
static int serve_job(const helper_args *a, const ear_sandbox_request *q, const uint8_t *input)
{
    ear_sandbox_reply r;
    ear_error err;
    memset(&r, 0, sizeof r);
    r.magic = EAR_SANDBOX_MAGIC_REPLY;
    if (q->kind == EAR_SANDBOX_JOB_AUDIO) {
        ear_audio_decode_options o;
        ear_audio_decode_options_default(&o);
        o.sample_rate = (int)q->rate;
        o.max_seconds = q->max_seconds;
        o.ffmpeg_cli = (q->flags & EAR_SANDBOX_AUDIO_FFMPEG_CLI) != 0;
        o.deadline_ms = q->timeout_ms ? ear_now_ms() + q->timeout_ms : 0;
        ear_audio_clip clip;
        if (ear_audio_decode(input, (size_t)q->size, &o, &clip, &err) != 0)
            return send_refusal(a, &r, err.message);
        r.rate = (uint32_t)clip.sample_rate;
        r.truncated = (uint32_t)clip.truncated;
        r.payload = clip.count;
        memcpy(r.format, clip.format, sizeof r.format);
        memcpy(r.codec, clip.codec, sizeof r.codec);
        r.format[sizeof r.format - 1] = r.codec[sizeof r.codec - 1] = 0;
        r.retire = retiring(a);
        int rc = write_two(1, &r, sizeof r, clip.samples, clip.count * sizeof *clip.samples);
        ear_audio_clip_free(&clip);
        return rc == 0 ? (int)r.retire : -1;
    }
    ear_image img;
    if (ear_image_decode(input, (size_t)q->size, &img, &err) != 0)
        return send_refusal(a, &r, err.message);
    size_t plane = (size_t)img.width * (size_t)img.height * 3;
    r.rate = (uint32_t)img.width;
    r.height = (uint32_t)img.height;
    r.truncated = img.rgb_alpha_dropped != NULL; /* a second plane follows */
    r.payload = (uint64_t)plane * (1 + r.truncated);
    r.retire = retiring(a);
    int rc = write_two(1, &r, sizeof r, img.rgb, plane);
    if (rc == 0 && img.rgb_alpha_dropped)
        rc = write_all(1, img.rgb_alpha_dropped, plane);
    ear_image_free(&img);
    return rc == 0 ? (int)r.retire : -1;
}

int ear_sandbox_helper_main(int argc, char **argv)
{
    helper_args a = {.memory_limit = 0, .cpu_budget_s = 60, .user = "nobody"};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--memory") == 0)
            a.memory_limit = (size_t)strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--cpu") == 0)
            a.cpu_budget_s = strtod(argv[i + 1], NULL);
        else if (strcmp(argv[i], "--user") == 0)
            a.user = argv[i + 1];
    }
    if (!(a.cpu_budget_s >= 1))
        a.cpu_budget_s = 1;
    if (lock_down(&a) != 0) {
        static const char failed[] = "ear sandbox-helper: cannot lock down\n";
        (void)!write(2, failed, sizeof failed - 1);
        return 1;
    }
    uint32_t ready = EAR_SANDBOX_MAGIC_READY;
    if (write_all(1, &ready, sizeof ready) != 0)
        return 0;
    for (;;) {
        ear_sandbox_request q;
        ear_error err;
        if (read_all(0, &q, sizeof q) != 0)
            return 0; /* the pool closed the socket: done */
        if (ear_sandbox_request_check(&q, &err) != 0)
            return 1; /* only the pool writes here: it is confused; start afresh */
        uint8_t *input = malloc((size_t)q.size);
        if (!input)
            return 1;
        if (read_all(0, input, (size_t)q.size) != 0) {
            free(input);
            return 0;
        }
        int rc = serve_job(&a, &q, input);
        free(input);
        if (rc != 0)
            return 0;
    }
}
