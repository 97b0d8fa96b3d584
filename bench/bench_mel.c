/* How long the log-mel of one 5 s segment takes at the default configuration:
 * the median (and spread) over many runs, plus the one-time cost of creating the
 * computer. Prints numbers; asserts nothing.
 *
 * usage: bench_mel [RUNS] (default 500) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "audio/audio.h"

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 500;
    if (runs < 1) {
        fprintf(stderr, "usage: bench_mel [RUNS]\n");
        return 2;
    }
    ear_audio_mel_config config;
    ear_audio_mel_config_default(&config);
    size_t count = (size_t)(5.0 * config.sample_rate);
    float *wave = malloc(count * sizeof *wave);
    double *times = malloc((size_t)runs * sizeof *times);
    float *out = NULL;
    ear_audio_mel *mel = NULL;
    int status = 1;
    if (!wave || !times)
        goto done;
    /* A chirp plus a cheap deterministic noise: the input's values do not change
     * the work done, but denormals or zeros could, so avoid them. */
    unsigned state = 12345;
    for (size_t i = 0; i < count; i++) {
        double t = (double)i / config.sample_rate;
        state = state * 1664525u + 1013904223u;
        wave[i] = (float)(0.4 * sin(2 * 3.14159265358979 * (100 + 700 * t) * t) +
                          0.02 * ((double)(state >> 8) / (1 << 24) - 0.5));
    }

    ear_error err;
    double start = ear_now_ms();
    mel = ear_audio_mel_create(&config, &err);
    double create_ms = ear_now_ms() - start;
    if (!mel) {
        fprintf(stderr, "bench_mel: %s\n", err.message);
        goto done;
    }
    size_t frames = ear_audio_mel_frames(mel, count);
    out = malloc((size_t)config.n_mels * frames * sizeof *out);
    if (!out)
        goto done;
    for (int i = 0; i < 10; i++) /* warm caches and page in the buffers */
        if (ear_audio_mel_compute(mel, wave, count, out, &err) != 0)
            goto fail;
    for (int i = 0; i < runs; i++) {
        start = ear_now_ms();
        if (ear_audio_mel_compute(mel, wave, count, out, &err) != 0)
            goto fail;
        times[i] = ear_now_ms() - start;
    }
    qsort(times, (size_t)runs, sizeof *times, compare_doubles);
    double median = times[runs / 2];
    printf("log-mel of a 5 s clip at %d Hz (n_fft %d, hop %d, %d mels -> [%d, %zu]), %d runs\n",
           config.sample_rate, config.n_fft, config.hop_length, config.n_mels, config.n_mels,
           frames, runs);
    printf("  median %.3f ms   min %.3f ms   p90 %.3f ms   (%.0fx real time)\n", median,
           times[0], times[(size_t)runs * 9 / 10], 5000.0 / median);
    printf("  create (window, filterbank, FFT plan): %.3f ms\n", create_ms);
    status = 0;
    goto done;
fail:
    fprintf(stderr, "bench_mel: %s\n", err.message);
done:
    ear_audio_mel_free(mel);
    free(out);
    free(times);
    free(wave);
    return status;
}
