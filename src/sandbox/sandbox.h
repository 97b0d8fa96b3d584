/* Decoding in a sandbox: uploaded sounds and images are parsed by FFmpeg,
 * libjpeg and libpng in a small pool of helper processes (`ear` itself, run
 * with a hidden subcommand), never in the service. Each helper has no
 * privileges, a seccomp filter that allows little more than reading its
 * request and writing its answer, and limits on memory and CPU; a job that
 * passes its wall-clock deadline, or whose client leaves, gets its helper
 * killed and replaced. Bytes go in and samples or pixels come out over a
 * Unix socket; the service checks every answer before trusting it. */
#ifndef EAR_SANDBOX_H
#define EAR_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include "audio/audio.h"
#include "core/core.h"
#include "image/image.h"

typedef struct ear_sandbox_options {
    int helpers;            /* processes in the pool, one per concurrent job (default 1) */
    double timeout_s;       /* wall-clock deadline of one job (default 5 s) */
    size_t memory_limit;    /* RLIMIT_AS of a helper in bytes (default 1 GiB; 0: none) */
    double cpu_budget_s;    /* CPU seconds a helper may spend before it is replaced (default 60) */
    const char *user;       /* taken when started as root (default "nobody") */
    const char *exe;        /* the `ear` binary to run (default: this process's own) */
} ear_sandbox_options;

/* What ends a job early besides its deadline: *flag turning non-zero, or the
 * peer of client_fd (a socket, -1: none) hanging up. Either may be absent. */
typedef struct ear_sandbox_cancel {
    const volatile int *flag;
    int client_fd;
} ear_sandbox_cancel;

/* Results of a job besides 0 (done). */
enum {
    EAR_SANDBOX_REFUSED = -1,   /* the decoder refused the bytes; err says why (400) */
    EAR_SANDBOX_KILLED = -2,    /* the helper overran, crashed or broke the protocol (400) */
    EAR_SANDBOX_CANCELLED = -3, /* the cancel fired; nobody waits for an answer */
    EAR_SANDBOX_FAILED = -4     /* no helper could be started (500) */
};

typedef struct ear_sandbox_pool ear_sandbox_pool;

/* Fills o with the defaults above. */
void ear_sandbox_options_default(ear_sandbox_options *o);

/* Starts o->helpers helpers and waits until each is locked down; NULL with err filled. */
ear_sandbox_pool *ear_sandbox_pool_start(const ear_sandbox_options *o, ear_error *err);

/* Decodes an audio file in a helper, as ear_audio_decode with o would (its rate,
 * cap and ffmpeg_cli; the deadline is the pool's); 0 or one of EAR_SANDBOX_* with
 * err filled and out left empty. Thread-safe. */
int ear_sandbox_decode_audio(ear_sandbox_pool *pool, const uint8_t *bytes, size_t size,
                             const ear_audio_decode_options *o, const ear_sandbox_cancel *cancel,
                             ear_audio_clip *out, ear_error *err);

/* Decodes a JPEG or PNG in a helper, as ear_image_decode would; 0 or EAR_SANDBOX_*. */
int ear_sandbox_decode_image(ear_sandbox_pool *pool, const uint8_t *bytes, size_t size,
                             const ear_sandbox_cancel *cancel, ear_image *out, ear_error *err);

/* Helpers started so far, the first ones included (for the metrics and benchmarks). */
uint64_t ear_sandbox_pool_spawned(ear_sandbox_pool *pool);

/* Kills the helpers and frees the pool (NULL is fine); no job may be running. */
void ear_sandbox_pool_stop(ear_sandbox_pool *pool);

/* The hidden `ear sandbox-helper` subcommand: the helper's life, run by the
 * pool in a fresh process with its socket on fds 0 and 1. Returns an exit status. */
int ear_sandbox_helper_main(int argc, char **argv);

#endif
