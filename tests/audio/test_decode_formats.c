/* Every accepted container and codec, made the way browsers and phones make
 * them, decodes in-process to what the ffmpeg command makes of the same file:
 * the same length within one codec frame, correlation >= 0.99, and the same
 * level (channels averaged with equal weights). */
#include <math.h>

#include "audio/audio.h"
#include "test.h"
#include "test_decode_util.h"

typedef struct sound {
    const char *name, *format, *codec;
    int channels;
    int frame;       /* the codec's largest frame, in samples at rate */
    int rate;        /* the file's sample rate */
} sound;

static const sound sounds[] = {
    {"webm-opus.webm", "webm", "opus", 2, 2880, 48000},
    {"webm-opus-live.webm", "webm", "opus", 2, 2880, 48000},
    {"ogg-opus.ogg", "ogg", "opus", 1, 2880, 48000},
    {"ogg-opus-5.1.opus", "ogg", "opus", 6, 2880, 48000},
    {"webm-vorbis.webm", "webm", "vorbis", 2, 2048, 48000},
    {"ogg-vorbis.ogg", "ogg", "vorbis", 2, 2048, 44100},
    {"ogg-flac.oga", "ogg", "flac", 2, 4608, 44100},
    {"m4a-aac.m4a", "mp4", "aac", 2, 1024, 44100},
    {"m4a-aac-faststart.m4a", "mp4", "aac", 2, 1024, 44100},
    {"mp4-video-aac.mp4", "mp4", "aac", 2, 1024, 44100},
    {"mp4-aac-fragmented.mp4", "mp4", "aac", 2, 1024, 48000},
    {"mp3.mp3", "mp3", "mp3", 2, 1152, 44100},
    {"mp3-8k-mono.mp3", "mp3", "mp3", 1, 576, 8000},
    {"wav-u8-8k-mono.wav", "wav", "pcm_u8", 1, 0, 8000},
    {"wav-s16-16k-mono.wav", "wav", "pcm_s16le", 1, 0, 16000},
    {"wav-s16-44k-stereo.wav", "wav", "pcm_s16le", 2, 0, 44100},
    {"wav-s24-48k-stereo.wav", "wav", "pcm_s24le", 2, 0, 48000},
    {"wav-s32-96k-stereo.wav", "wav", "pcm_s32le", 2, 0, 96000},
    {"wav-f32-44k-stereo.wav", "wav", "pcm_f32le", 2, 0, 44100},
    {"wav-f64-22k-mono.wav", "wav", "pcm_f64le", 1, 0, 22050},
    {"wav-s16-5.1.wav", "wav", "pcm_s16le", 6, 0, 48000},
    {"flac-s24-48k-stereo.flac", "flac", "flac", 2, 4608, 48000},
    {"flac-8k-mono.flac", "flac", "flac", 1, 4608, 8000},
};

/* The resampler's delay at the output (its filter is 32 taps long at most). */
enum { RESAMPLER_SLACK = 32 };
/* Both decodes use the same decoders and resampler, so they should line up;
 * a few milliseconds of search tell a shift from a difference. */
enum { MAX_LAG = 64 };

static void check_sound(const char *dir, const sound *s, int rate)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, s->name);
    size_t size = 0;
    uint8_t *data = decode_test_read(path, &size);
    EAR_CHECK_MSG(data != NULL, "%s: not made", s->name);
    if (!data)
        return;
    ear_audio_decode_options o;
    ear_audio_decode_options_default(&o);
    o.sample_rate = rate;
    ear_audio_clip clip;
    ear_error err = {{0}};
    int rc = ear_audio_decode(data, size, &o, &clip, &err);
    free(data);
    EAR_CHECK_MSG(rc == 0, "%s: %s", s->name, err.message);
    if (rc != 0)
        return;
    EAR_CHECK_MSG(strcmp(clip.format, s->format) == 0, "%s: format %s", s->name, clip.format);
    EAR_CHECK_MSG(strcmp(clip.codec, s->codec) == 0, "%s: codec %s", s->name, clip.codec);
    EAR_CHECK(clip.sample_rate == rate);
    EAR_CHECK(clip.truncated == 0);
    /* The sources last 4 s; encoders may pad by a frame. */
    double seconds = (double)clip.count / rate;
    EAR_CHECK_MSG(seconds > 3.95 && seconds < 4.2, "%s: %.3f s", s->name, seconds);
    int finite = 1;
    for (size_t i = 0; i < clip.count; i++)
        finite &= isfinite(clip.samples[i]) && fabsf(clip.samples[i]) <= 1.5f;
    EAR_CHECK_MSG(finite, "%s: samples not finite or far out of range", s->name);

    size_t ref_count = 0;
    float *ref = decode_test_ffmpeg_reference(path, s->channels, rate, &ref_count);
    EAR_CHECK_MSG(ref != NULL, "%s: ffmpeg could not decode it", s->name);
    if (ref) {
        long tolerance = (long)ceil((double)s->frame * rate / s->rate) + RESAMPLER_SLACK;
        long difference = (long)clip.count - (long)ref_count;
        EAR_CHECK_MSG(labs(difference) <= tolerance, "%s: %zu samples, ffmpeg %zu (tolerance %ld)",
                      s->name, clip.count, ref_count, tolerance);
        int lag;
        double gain;
        double r = decode_test_correlation(clip.samples, clip.count, ref, ref_count,
                                           MAX_LAG, &lag, &gain);
        EAR_CHECK_MSG(r >= 0.99, "%s: correlation %.5f", s->name, r);
        /* The reference averages the channels too, so the levels agree. */
        EAR_CHECK_MSG(fabs(gain - 1) < 0.02, "%s: level %.4f of ffmpeg's", s->name, gain);
        double worst = 0;
        for (long i = lag > 0 ? lag : 0; i < (long)clip.count && i - lag < (long)ref_count; i++)
            worst = fmax(worst, fabs(clip.samples[i] - ref[i - lag]));
        printf("%-24s %5d Hz %-4s %-9s %6zu samples, ffmpeg %+ld, lag %+d, 1 - correlation "
               "%.1e, level %.4f, max |difference| %.1e\n",
               s->name, rate, clip.format, clip.codec, clip.count, difference, lag, 1 - r, gain,
               worst);
        free(ref);
    }
    ear_audio_clip_free(&clip);
    EAR_CHECK(clip.samples == NULL && clip.count == 0);
}

int main(void)
{
    char names[4096] = "", dir[512];
    size_t count = sizeof sounds / sizeof sounds[0];
    for (size_t i = 0; i < count; i++) {
        strcat(names, " ");
        strcat(names, sounds[i].name);
    }
    int made = decode_test_make_sounds("decode_formats", names, dir, sizeof dir);
    EAR_CHECK_MSG(made == 0, "could not make the test sounds in %s", dir);
    if (made != 0)
        return ear_test_finish();
    for (size_t i = 0; i < count; i++)
        check_sound(dir, &sounds[i], 16000);
    /* Other output rates, down and up. */
    for (size_t i = 0; i < count; i++) {
        if (strcmp(sounds[i].name, "webm-opus.webm") == 0) {
            check_sound(dir, &sounds[i], 8000);
            check_sound(dir, &sounds[i], 44100);
        }
        if (strcmp(sounds[i].name, "wav-s16-44k-stereo.wav") == 0)
            check_sound(dir, &sounds[i], 22050);
    }
    return ear_test_finish();
}
