/* How long ear_audio_decode takes for one clip held in memory (to 16 kHz mono,
 * as the service decodes uploads): the median and spread over many runs, after
 * a few warm-up runs. Prints numbers; asserts nothing.
 *
 * usage: bench_decode [FILE] [RUNS] (default: RUNS 200, and a 5 s WebM/Opus
 * clip made the way a browser records it: 48 kHz stereo, 64 kb/s, speech over
 * noise, made with espeak-ng and ffmpeg in $TMPDIR) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio.h"

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Makes the default clip; returns 0 and its path in path. */
static int make_clip(char *path, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(path, size, "%s/bench_decode_%d.webm", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    char command[2048];
    snprintf(command, sizeof command,
             "espeak-ng --stdout 'A browser recorded these five seconds of speech for the "
             "benchmark of decoding.' | ffmpeg -nostdin -v error -y -i - "
             "-f lavfi -i 'anoisesrc=c=pink:r=48000:a=0.05:seed=1:d=5' "
             "-filter_complex "
             "'[0:a]aresample=48000,apad[s];[s][1:a]amix=inputs=2:duration=shortest' "
             "-t 5 -ac 2 -ar 48000 -c:a libopus -b:a 64k '%s'",
             path);
    return system(command) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *file = argc > 1 ? argv[1] : NULL;
    int runs = argc > 2 ? atoi(argv[2]) : 200;
    if (runs < 1 || argc > 3) {
        fprintf(stderr, "usage: bench_decode [FILE] [RUNS]\n");
        return 2;
    }
    char made[1024] = "";
    if (!file) {
        if (make_clip(made, sizeof made) != 0) {
            fprintf(stderr, "bench_decode: could not make the clip with espeak-ng and ffmpeg\n");
            return 1;
        }
        file = made;
    }
    ear_error err;
    size_t size = 0;
    uint8_t *data = ear_file_read(file, (size_t)1 << 30, &size, &err);
    if (made[0])
        unlink(made);
    double *times = malloc((size_t)runs * sizeof *times);
    int status = 1;
    if (!data || !times) {
        fprintf(stderr, "bench_decode: %s\n", data ? "out of memory" : err.message);
        goto done;
    }

    ear_audio_decode_options options;
    ear_audio_decode_options_default(&options);
    ear_audio_clip clip;
    for (int i = 0; i < 5; i++) {
        if (ear_audio_decode(data, size, &options, &clip, &err) != 0) {
            fprintf(stderr, "bench_decode: %s: %s\n", file, err.message);
            goto done;
        }
        if (i < 4)
            ear_audio_clip_free(&clip);
    }
    double seconds = (double)clip.count / clip.sample_rate;
    printf("clip: %s, %s/%s, %zu bytes, %.2f s -> %zu samples at %d Hz\n",
           made[0] ? "5 s WebM/Opus 48 kHz stereo 64 kb/s" : file, clip.format, clip.codec, size,
           seconds, clip.count, clip.sample_rate);
    ear_audio_clip_free(&clip);

    for (int i = 0; i < runs; i++) {
        double start = ear_now_ms();
        int rc = ear_audio_decode(data, size, &options, &clip, &err);
        times[i] = ear_now_ms() - start;
        if (rc != 0) {
            fprintf(stderr, "bench_decode: %s\n", err.message);
            goto done;
        }
        ear_audio_clip_free(&clip);
    }
    qsort(times, (size_t)runs, sizeof *times, compare_doubles);
    double median = times[runs / 2];
    printf("ear_audio_decode over %d runs: median %.3f ms, p10 %.3f ms, p90 %.3f ms, "
           "min %.3f ms, max %.3f ms (%.0fx real time at the median)\n",
           runs, median, times[runs / 10], times[runs * 9 / 10], times[0], times[runs - 1],
           seconds * 1000 / median);
    status = 0;
done:
    free(times);
    free(data);
    return status;
}
