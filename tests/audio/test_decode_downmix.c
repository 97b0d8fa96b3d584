/* The downmix is the plain average of the channels, whatever their number and
 * layout, with no clipping: WAV files built in memory at the output rate (no
 * resampling, so the values are exact), and one that is resampled. */
#include <math.h>

#include "audio/audio.h"
#include "test.h"
#include "test_decode_util.h"

enum { FRAMES = 4000, MAX_CHANNELS = 9 };

/* The value of channel c at frame i; kinds: 0 constant per channel, 1 a sine
 * on channel 0 and silence elsewhere, 2 a sine and its negation. */
static double signal(int kind, int c, size_t i)
{
    double sine = 0.5 * sin(2 * M_PI * 300.0 * (double)i / 16000);
    switch (kind) {
    case 0: return 0.1 * (c + 1);
    case 1: return c == 0 ? sine : 0;
    default: return c == 0 ? sine : -sine;
    }
}

/* Decodes a WAV of the given shape at 16 kHz and compares each sample with the
 * average of what went in (after the format's own rounding: tolerance). */
static void check_average(const char *what, int format_tag, int channels, int bits,
                          uint32_t mask, int kind, double tolerance)
{
    static double in[FRAMES * MAX_CHANNELS];
    for (size_t i = 0; i < FRAMES; i++)
        for (int c = 0; c < channels; c++)
            in[i * (size_t)channels + (size_t)c] = signal(kind, c, i);
    size_t size;
    uint8_t *wav = decode_test_wav(format_tag, channels, 16000, bits, mask, in, FRAMES, 0, &size);
    ear_audio_clip clip;
    ear_error err;
    int rc = ear_audio_decode(wav, size, NULL, &clip, &err);
    free(wav);
    EAR_CHECK_MSG(rc == 0, "%s: %s", what, err.message);
    if (rc != 0)
        return;
    EAR_CHECK_MSG(clip.count == FRAMES, "%s: %zu samples", what, clip.count);
    double worst = 0;
    for (size_t i = 0; i < clip.count && i < FRAMES; i++) {
        double mean = 0;
        for (int c = 0; c < channels; c++)
            mean += signal(kind, c, i);
        worst = fmax(worst, fabs(clip.samples[i] - mean / channels));
    }
    EAR_CHECK_MSG(worst <= tolerance, "%s: off the average by %g", what, worst);
    printf("%-36s %d ch: off the average by at most %.3g\n", what, channels, worst);
    ear_audio_clip_free(&clip);
}

/* Louder than full scale in a float WAV stays as loud: no clipping, no gain. */
static void check_no_clipping(void)
{
    double in[2 * FRAMES];
    for (size_t i = 0; i < 2 * FRAMES; i++)
        in[i] = 1.5;
    size_t size;
    uint8_t *wav = decode_test_wav(3, 2, 16000, 32, 0, in, FRAMES, 0, &size);
    ear_audio_clip clip;
    ear_error err;
    int rc = ear_audio_decode(wav, size, NULL, &clip, &err);
    free(wav);
    EAR_CHECK_MSG(rc == 0, "%s", err.message);
    if (rc == 0) {
        EAR_CHECK(clip.count == FRAMES);
        EAR_CHECK_MSG(clip.count > 10 && clip.samples[10] == 1.5f, "%g", clip.samples[10]);
    }
    ear_audio_clip_free(&clip);
}

/* Resampled 48 kHz -> 16 kHz: a constant stays the average of its channels. */
static void check_resampled_average(void)
{
    enum { RATE = 48000, COUNT = 48000 };
    double *in = malloc(2 * COUNT * sizeof *in);
    for (size_t i = 0; i < COUNT; i++) {
        in[2 * i] = 0.25;
        in[2 * i + 1] = 0.75;
    }
    size_t size;
    uint8_t *wav = decode_test_wav(1, 2, RATE, 24, 0, in, COUNT, 0, &size);
    free(in);
    ear_audio_clip clip;
    ear_error err;
    int rc = ear_audio_decode(wav, size, NULL, &clip, &err);
    free(wav);
    EAR_CHECK_MSG(rc == 0, "%s", err.message);
    if (rc == 0) {
        EAR_CHECK_MSG(clip.count == 16000, "%zu samples", clip.count);
        double worst = 0;
        for (size_t i = 100; i + 100 < clip.count; i++)
            worst = fmax(worst, fabs(clip.samples[i] - 0.5));
        EAR_CHECK_MSG(worst < 1e-3, "resampled constant off by %g", worst);
    }
    ear_audio_clip_free(&clip);
}

int main(void)
{
    double s16 = 1.0 / 32768, s24 = 1.0 / 8388608, f32 = 1e-7;
    check_average("mono s16", 1, 1, 16, 0, 1, s16);
    /* Half the input's rounding, no more: the average itself is not rounded
     * to 16 bits (libswresample's default for 16-bit input). */
    check_average("stereo s16, sine left, silence right", 1, 2, 16, 0, 1, 0.26 * s16);
    check_average("stereo s16, sine and its negation", 1, 2, 16, 0, 2, s16);
    check_average("stereo f32, constants", 3, 2, 32, 0, 0, f32);
    check_average("stereo u8, constants", 1, 2, 8, 0, 0, 1.0 / 128);
    /* 5.1 with its LFE: FFmpeg's own mono downmix drops LFE and weighs the rest. */
    check_average("5.1 s24 (extensible), constants", 0xFFFE, 6, 24, 0x3F, 0, s24);
    check_average("5.1 s16 (extensible), sine on FL", 0xFFFE, 6, 16, 0x3F, 1, s16);
    check_average("3 channels, no layout, constants", 1, 3, 16, 0, 0, s16);
    check_average("9 channels, no layout, constants", 1, 9, 32, 0, 0, 3 * f32);
    check_no_clipping();
    check_resampled_average();
    return ear_test_finish();
}
