#include "test_decode_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const char *environment(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

int decode_test_make_sounds(const char *folder, const char *names, char *dir, size_t size)
{
    snprintf(dir, size, "%s/%s", environment("EAR_TEST_TMP", "/tmp"), folder);
    char command[4096];
    int n = snprintf(command, sizeof command, "bash '%s/tests/audio/decode_sounds.sh' '%s' %s",
                     environment("EAR_SOURCE_DIR", "."), dir, names);
    if (n < 0 || (size_t)n >= sizeof command || strchr(dir, '\''))
        return -1;
    return system(command) == 0 ? 0 : -1;
}

uint8_t *decode_test_read(const char *path, size_t *size)
{
    ear_error err;
    uint8_t *data = ear_file_read(path, (size_t)1 << 30, size, &err);
    if (!data)
        fprintf(stderr, "%s\n", err.message);
    return data;
}

float *decode_test_ffmpeg_reference(const char *path, int channels, int rate, size_t *count)
{
    char mix[1024] = "-ac 1";
    if (channels > 1) {
        size_t used = (size_t)snprintf(mix, sizeof mix, "-af 'pan=mono|c0=");
        for (int c = 0; c < channels && used < sizeof mix; c++)
            used += (size_t)snprintf(mix + used, sizeof mix - used, "%s%.12f*c%d", c ? "+" : "",
                                     1.0 / channels, c);
        if (used + 2 >= sizeof mix)
            return NULL;
        strcat(mix, "'");
    }
    char command[2048];
    int n = snprintf(command, sizeof command,
                     "ffmpeg -nostdin -v error -i '%s' %s -ar %d -f f32le -", path, mix, rate);
    if (n < 0 || (size_t)n >= sizeof command || strchr(path, '\''))
        return NULL;
    FILE *pipe = popen(command, "r");
    if (!pipe)
        return NULL;
    size_t capacity = 1 << 16, used = 0;
    float *samples = malloc(capacity * sizeof *samples);
    while (samples) {
        if (used == capacity) {
            float *grown = realloc(samples, 2 * capacity * sizeof *samples);
            if (!grown) {
                free(samples);
                samples = NULL;
                break;
            }
            samples = grown;
            capacity *= 2;
        }
        size_t got = fread(samples + used, sizeof *samples, capacity - used, pipe);
        if (got == 0)
            break;
        used += got;
    }
    if (pclose(pipe) != 0 || used == 0) {
        free(samples);
        return NULL;
    }
    *count = used;
    return samples;
}

double decode_test_correlation(const float *a, size_t a_count, const float *b, size_t b_count,
                               int max_lag, int *lag, double *gain)
{
    double best = -2;
    *lag = 0;
    *gain = 0;
    for (int l = -max_lag; l <= max_lag; l++) {
        /* a[i] against b[i - l] */
        size_t start = l > 0 ? (size_t)l : 0;
        size_t end = a_count;
        if ((long)b_count + l < (long)end)
            end = (size_t)((long)b_count + l);
        double ab = 0, aa = 0, bb = 0;
        for (size_t i = start; i < end; i++) {
            double x = a[i], y = b[(long)i - l];
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        if (aa <= 0 || bb <= 0)
            continue;
        double r = ab / sqrt(aa * bb);
        if (r > best) {
            best = r;
            *lag = l;
            *gain = ab / bb;
        }
    }
    return best;
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

uint8_t *decode_test_wav(int format_tag, int channels, uint32_t rate, int bits,
                         uint32_t channel_mask, const double *samples, size_t frames,
                         uint32_t data_size_claim, size_t *size)
{
    size_t fmt_size = format_tag == 0xFFFE ? 40 : 16;
    size_t bytes = (size_t)bits / 8, data_size = frames * (size_t)channels * bytes;
    size_t header = 12 + 8 + fmt_size + 8;
    uint8_t *wav = calloc(1, header + data_size);
    if (!wav)
        return NULL;
    uint32_t claim = data_size_claim ? data_size_claim : (uint32_t)data_size;
    memcpy(wav, "RIFF", 4);
    put32(wav + 4, (uint32_t)(header - 8) + claim);
    memcpy(wav + 8, "WAVEfmt ", 8);
    put32(wav + 16, (uint32_t)fmt_size);
    uint8_t *f = wav + 20;
    put16(f, (uint32_t)format_tag);
    put16(f + 2, (uint32_t)channels);
    put32(f + 4, rate);
    put32(f + 8, rate * (uint32_t)(channels * (int)bytes));
    put16(f + 12, (uint32_t)(channels * (int)bytes));
    put16(f + 14, (uint32_t)bits);
    if (format_tag == 0xFFFE) {
        static const uint8_t pcm_guid[16] = {1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa,
                                             0, 0x38, 0x9b, 0x71};
        put16(f + 16, 22);
        put16(f + 18, (uint32_t)bits);
        put32(f + 20, channel_mask);
        memcpy(f + 24, pcm_guid, 16);
    }
    uint8_t *d = f + fmt_size;
    memcpy(d, "data", 4);
    put32(d + 4, claim);
    d += 8;
    for (size_t i = 0; i < frames * (size_t)channels; i++, d += bytes) {
        double x = samples[i];
        if (format_tag == 3 && bits == 32) {
            float v = (float)x;
            memcpy(d, &v, 4);
        } else if (format_tag == 3 && bits == 64) {
            memcpy(d, &x, 8);
        } else if (bits == 8) {
            d[0] = (uint8_t)lround(fmin(fmax(x * 128 + 128, 0), 255));
        } else {
            double full = ldexp(1.0, bits - 1);
            long long v = llround(fmin(fmax(x * full, -full), full - 1));
            for (size_t k = 0; k < bytes; k++)
                d[k] = (uint8_t)((unsigned long long)v >> (8 * k));
        }
    }
    *size = header + data_size;
    return wav;
}
