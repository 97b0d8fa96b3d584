/* Several workers decode at once (as the service's do): every result is
 * bit-identical to decoding alone, and each failure keeps its own message. */
#include <pthread.h>

#include "audio/audio.h"
#include "test.h"
#include "test_decode_util.h"

enum { THREADS = 4, ROUNDS = 3 };

static const char *const names[] = {"webm-opus.webm", "m4a-aac.m4a",
                                    "mp3.mp3",        "ogg-vorbis.ogg",
                                    "wav-s16-44k-stereo.wav", "flac-8k-mono.flac"};
enum { FILES = sizeof names / sizeof names[0] };

static uint8_t *files[FILES];
static size_t sizes[FILES];
static ear_audio_clip alone[FILES];
static uint8_t *moov_missing; /* an M4A cut short before its moov */
static size_t moov_missing_size;

typedef struct worker {
    int id;
    int decoded, mismatches, wrong_messages;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int round = 0; round < ROUNDS; round++) {
        for (int k = 0; k < FILES; k++) {
            int f = (k + w->id) % FILES;
            ear_audio_clip clip;
            ear_error err;
            if (ear_audio_decode(files[f], sizes[f], NULL, &clip, &err) != 0) {
                w->mismatches++;
                continue;
            }
            w->decoded++;
            if (clip.count != alone[f].count ||
                memcmp(clip.samples, alone[f].samples, clip.count * sizeof(float)) != 0 ||
                strcmp(clip.format, alone[f].format) != 0)
                w->mismatches++;
            ear_audio_clip_free(&clip);
            /* FFmpeg's reason is kept per thread: never another worker's. */
            if (ear_audio_decode(moov_missing, moov_missing_size, NULL, &clip, &err) == 0 ||
                !strstr(err.message, "moov atom not found"))
                w->wrong_messages++;
        }
    }
    return NULL;
}

int main(void)
{
    char dir[512], list[1024] = "";
    for (int f = 0; f < FILES; f++) {
        strcat(list, " ");
        strcat(list, names[f]);
    }
    int made = decode_test_make_sounds("decode_threads", list, dir, sizeof dir);
    EAR_CHECK_MSG(made == 0, "could not make the test sounds in %s", dir);
    if (made != 0)
        return ear_test_finish();
    int ready = 1;
    for (int f = 0; f < FILES; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        files[f] = decode_test_read(path, &sizes[f]);
        ear_error err;
        int rc = files[f] ? ear_audio_decode(files[f], sizes[f], NULL, &alone[f], &err) : -1;
        EAR_CHECK_MSG(rc == 0, "%s: %s", names[f], files[f] ? err.message : "not made");
        ready &= rc == 0;
    }
    if (ready) {
        moov_missing = files[1];
        moov_missing_size = sizes[1] / 2;
        pthread_t threads[THREADS];
        worker workers[THREADS] = {{0}};
        int started = 0;
        for (int t = 0; t < THREADS; t++) {
            workers[t].id = t;
            if (pthread_create(&threads[t], NULL, work, &workers[t]) == 0)
                started++;
            else
                break;
        }
        EAR_CHECK(started == THREADS);
        for (int t = 0; t < started; t++) {
            pthread_join(threads[t], NULL);
            EAR_CHECK_MSG(workers[t].decoded == ROUNDS * FILES, "worker %d decoded %d", t,
                          workers[t].decoded);
            EAR_CHECK_MSG(workers[t].mismatches == 0, "worker %d: %d results differ", t,
                          workers[t].mismatches);
            EAR_CHECK_MSG(workers[t].wrong_messages == 0, "worker %d: %d wrong messages", t,
                          workers[t].wrong_messages);
        }
        printf("%d threads decoded %d files each %d times, identical to decoding alone\n",
               started, FILES, ROUNDS);
    }
    for (int f = 0; f < FILES; f++) {
        ear_audio_clip_free(&alone[f]);
        free(files[f]);
    }
    return ear_test_finish();
}
