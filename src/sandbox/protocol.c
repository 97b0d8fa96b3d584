/* The checks on what crosses the helper's socket. The service reads a reply
 * as it would read an upload: a helper that was taken over by a crafted file
 * may send anything, so every size is bounded by what the request asked for
 * before a byte of it is allocated, and every sample must be a finite number. */
#include "sandbox/protocol.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ear_sandbox_request_check(const ear_sandbox_request *q, ear_error *err)
{
    if (q->magic != EAR_SANDBOX_MAGIC_REQUEST)
        return ear_error_set(err, "not a request (magic %08x)", (unsigned)q->magic);
    if (q->kind != EAR_SANDBOX_JOB_AUDIO && q->kind != EAR_SANDBOX_JOB_IMAGE)
        return ear_error_set(err, "unknown job kind %u", (unsigned)q->kind);
    if (q->size == 0 || q->size > EAR_SANDBOX_MAX_INPUT)
        return ear_error_set(err, "input of %llu bytes (1 to %llu)", (unsigned long long)q->size,
                             (unsigned long long)EAR_SANDBOX_MAX_INPUT);
    if (q->reserved != 0 || (q->flags & ~(uint32_t)EAR_SANDBOX_AUDIO_FFMPEG_CLI) ||
        (q->kind != EAR_SANDBOX_JOB_AUDIO && q->flags))
        return ear_error_set(err, "unknown request flags %08x", (unsigned)q->flags);
    if (q->kind == EAR_SANDBOX_JOB_AUDIO && (q->rate < 1000 || q->rate > 768000))
        return ear_error_set(err, "output rate %u Hz", (unsigned)q->rate);
    if (isnan(q->max_seconds) || q->max_seconds > 1e7)
        return ear_error_set(err, "max_seconds out of range");
    return 0;
}

/* Copies text as printable ASCII: a helper's words reach JSON and logs. */
static void printable(char *out, size_t out_size, const char *in, size_t in_size)
{
    size_t n = 0;
    for (size_t i = 0; i < in_size && in[i] && n + 1 < out_size; i++) {
        unsigned char c = (unsigned char)in[i];
        out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[n] = 0;
}

/* Whether a fixed-size name field is NUL-terminated, printable and not empty. */
static int name_is_sane(const char *name, size_t size)
{
    size_t n = strnlen(name, size);
    if (n == 0 || n == size)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (name[i] < 0x20 || name[i] >= 0x7f)
            return 0;
    return 1;
}

int ear_sandbox_reply_read(ear_sandbox_read_fn read, void *context,
                           const ear_sandbox_request *q, ear_audio_clip *clip, ear_image *img,
                           int *retire, ear_error *err)
{
    ear_sandbox_reply r;
    ear_error why;
    *retire = 0;
    if (clip)
        memset(clip, 0, sizeof *clip);
    if (img)
        memset(img, 0, sizeof *img);
    if (read(context, &r, sizeof r, &why) != 0) {
        ear_error_set(err, "%s", why.message);
        return EAR_SANDBOX_KILLED;
    }
    if (r.magic != EAR_SANDBOX_MAGIC_REPLY || r.retire > 1) {
        ear_error_set(err, "the decoder's answer is malformed");
        return EAR_SANDBOX_KILLED;
    }
    *retire = (int)r.retire;
    if (r.status == EAR_SANDBOX_REPLY_REFUSED) {
        char text[EAR_ERROR_SIZE];
        if (r.payload == 0 || r.payload >= sizeof text) {
            ear_error_set(err, "the decoder's answer is malformed (a reason of %llu bytes)",
                          (unsigned long long)r.payload);
            return EAR_SANDBOX_KILLED;
        }
        if (read(context, text, (size_t)r.payload, &why) != 0) {
            ear_error_set(err, "%s", why.message);
            return EAR_SANDBOX_KILLED;
        }
        char clean[EAR_ERROR_SIZE];
        printable(clean, sizeof clean, text, (size_t)r.payload);
        ear_error_set(err, "%s", clean[0] ? clean : "the decoder refused it without a reason");
        return EAR_SANDBOX_REFUSED;
    }
    if (r.status != EAR_SANDBOX_REPLY_OK) {
        ear_error_set(err, "the decoder's answer is malformed (status %u)", (unsigned)r.status);
        return EAR_SANDBOX_KILLED;
    }

    if (q->kind == EAR_SANDBOX_JOB_AUDIO) {
        uint64_t limit = EAR_SANDBOX_MAX_SAMPLES;
        if (q->max_seconds > 0) {
            double cap = floor(q->max_seconds * q->rate + 1e-6);
            if (cap < (double)limit)
                limit = (uint64_t)cap;
        }
        if (!clip || r.rate != q->rate || r.payload == 0 || r.payload > limit || r.truncated > 1 ||
            !name_is_sane(r.format, sizeof r.format) || !name_is_sane(r.codec, sizeof r.codec)) {
            ear_error_set(err, "the decoder's answer is malformed (%llu samples at %u Hz)",
                          (unsigned long long)r.payload, (unsigned)r.rate);
            return EAR_SANDBOX_KILLED;
        }
        float *samples = malloc((size_t)r.payload * sizeof *samples);
        if (!samples) {
            ear_error_set(err, "out of memory for %llu samples", (unsigned long long)r.payload);
            return EAR_SANDBOX_KILLED;
        }
        if (read(context, samples, (size_t)r.payload * sizeof *samples, &why) != 0) {
            free(samples);
            ear_error_set(err, "%s", why.message);
            return EAR_SANDBOX_KILLED;
        }
        for (size_t i = 0; i < (size_t)r.payload; i++)
            if (!isfinite(samples[i])) {
                free(samples);
                ear_error_set(err, "the decoder's answer is malformed (sample %zu is not finite)",
                              i);
                return EAR_SANDBOX_KILLED;
            }
        clip->samples = samples;
        clip->count = (size_t)r.payload;
        clip->sample_rate = (int)r.rate;
        clip->truncated = (int)r.truncated;
        memcpy(clip->format, r.format, sizeof clip->format);
        memcpy(clip->codec, r.codec, sizeof clip->codec);
        return 0;
    }

    uint64_t width = r.rate, height = r.height;
    uint64_t plane = width * height * 3;
    if (!img || width < 1 || height < 1 || width > EAR_IMAGE_MAX_SIDE ||
        height > EAR_IMAGE_MAX_SIDE || width * height > (uint64_t)EAR_IMAGE_MAX_PIXELS ||
        r.truncated > 1 || r.payload != plane * (1 + r.truncated)) {
        ear_error_set(err, "the decoder's answer is malformed (%llux%llu pixels, %llu bytes)",
                      (unsigned long long)width, (unsigned long long)height,
                      (unsigned long long)r.payload);
        return EAR_SANDBOX_KILLED;
    }
    /* The colour with the alpha dropped (PIL's convert("RGB")) comes second, when there is one. */
    uint8_t *rgb = malloc((size_t)plane);
    uint8_t *dropped = r.truncated ? malloc((size_t)plane) : NULL;
    if (!rgb || (r.truncated && !dropped)) {
        free(rgb);
        free(dropped);
        ear_error_set(err, "out of memory for a %llux%llu image", (unsigned long long)width,
                      (unsigned long long)height);
        return EAR_SANDBOX_KILLED;
    }
    if (read(context, rgb, (size_t)plane, &why) != 0 ||
        (dropped && read(context, dropped, (size_t)plane, &why) != 0)) {
        free(rgb);
        free(dropped);
        ear_error_set(err, "%s", why.message);
        return EAR_SANDBOX_KILLED;
    }
    img->width = (int)width;
    img->height = (int)height;
    img->rgb = rgb;
    img->rgb_alpha_dropped = dropped;
    return 0;
}
