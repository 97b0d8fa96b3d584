/* The helper protocol: what crosses the socket between the service and a
 * helper. Not part of the module's interface; shared with its fuzz target.
 * Both ends are the same binary on the same machine: native byte order. */
#ifndef EAR_SANDBOX_PROTOCOL_H
#define EAR_SANDBOX_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "sandbox/sandbox.h"

#define EAR_SANDBOX_MAGIC_REQUEST 0x51524145u /* "EARQ" */
#define EAR_SANDBOX_MAGIC_REPLY 0x52524145u   /* "EARR" */
#define EAR_SANDBOX_MAGIC_READY 0x59524145u   /* "EARY": the helper is locked down */
/* Larger inputs are refused before the helper allocates them. */
#define EAR_SANDBOX_MAX_INPUT ((uint64_t)1 << 30)
/* Samples a reply may hold when the job has no cap (max_seconds <= 0). */
#define EAR_SANDBOX_MAX_SAMPLES ((uint64_t)1 << 28)

enum { EAR_SANDBOX_JOB_AUDIO = 1, EAR_SANDBOX_JOB_IMAGE = 2 };
enum { EAR_SANDBOX_REPLY_OK = 0, EAR_SANDBOX_REPLY_REFUSED = 1 };
/* Request flags. */
enum {
    EAR_SANDBOX_AUDIO_FFMPEG_CLI = 1 /* audio: ear_audio_decode_options.ffmpeg_cli (wav2vec2) */
};

typedef struct ear_sandbox_request {
    uint32_t magic;
    uint32_t kind;       /* EAR_SANDBOX_JOB_* */
    uint32_t rate;       /* audio: output rate */
    uint32_t timeout_ms; /* the helper's own deadline for FFmpeg's interrupt callback */
    uint32_t flags;      /* EAR_SANDBOX_AUDIO_* (audio only; 0 for an image) */
    uint32_t reserved;   /* 0: keeps the doubles aligned, with no padding to leave unset */
    double max_seconds;  /* audio: the cap (<= 0: none) */
    uint64_t size;       /* input bytes that follow */
} ear_sandbox_request;

typedef struct ear_sandbox_reply {
    uint32_t magic;
    uint32_t status;    /* EAR_SANDBOX_REPLY_* */
    uint32_t retire;    /* 1: the helper exits after this reply (its CPU budget is spent) */
    uint32_t truncated; /* audio: cut at max_seconds; image: 1 when a second RGB plane
                           follows the first, the alpha dropped (ear_image.rgb_alpha_dropped) */
    uint32_t rate;      /* audio: the output rate; image: the width */
    uint32_t height;    /* image */
    uint64_t payload;   /* what follows: samples (audio), bytes (image: one or two planes;
                           error message) */
    char format[32];    /* audio: the container */
    char codec[32];     /* audio: the codec */
} ear_sandbox_reply;

/* Reads exactly size bytes into buffer; 0 or -1 (err filled). */
typedef int (*ear_sandbox_read_fn)(void *context, void *buffer, size_t size, ear_error *err);

/* Checks a request as the helper receives it; 0 or -1 with err filled. */
int ear_sandbox_request_check(const ear_sandbox_request *q, ear_error *err);

/* Reads and checks a helper's reply to the request q, trusting nothing in it:
 * 0 with the clip or image filled (the one q asked for), EAR_SANDBOX_REFUSED
 * with the helper's reason in err (made printable), or EAR_SANDBOX_KILLED when
 * the reply breaks the protocol or reading fails. *retire tells whether the
 * helper will exit now. Nothing is left allocated unless 0 is returned. */
int ear_sandbox_reply_read(ear_sandbox_read_fn read, void *context,
                           const ear_sandbox_request *q, ear_audio_clip *clip, ear_image *img,
                           int *retire, ear_error *err);

#endif
