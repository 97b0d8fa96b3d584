/* Bad input gets a clear error and no crash or leak (this test also runs under
 * ASan/UBSan); damaged files decode what is there; the duration cap holds, and
 * a header's claims cost nothing. */
#include <math.h>

#include "audio/audio.h"
#include "test.h"
#include "test_decode_util.h"

static char dir[512];

/* Decodes data with a cap of max_seconds; the clip is filled with junk first,
 * so that a failure must leave it empty. */
static int decode(const uint8_t *data, size_t size, double max_seconds, ear_audio_clip *clip,
                  ear_error *err)
{
    ear_audio_decode_options o;
    ear_audio_decode_options_default(&o);
    o.max_seconds = max_seconds;
    memset(clip, 0x5a, sizeof *clip);
    memset(err, 0, sizeof *err);
    int rc = ear_audio_decode(data, size, &o, clip, err);
    if (rc != 0)
        EAR_CHECK_MSG(clip->samples == NULL && clip->count == 0, "failure left the clip filled");
    return rc;
}

/* Expects data to be refused with a message holding each of the needles. */
static void expect_refused(const char *what, const uint8_t *data, size_t size,
                           const char *needle, const char *needle2)
{
    ear_audio_clip clip;
    ear_error err;
    int rc = decode(data, size, 60, &clip, &err);
    EAR_CHECK_MSG(rc == -1, "%s: decoded (%zu samples)", what, rc == 0 ? clip.count : 0);
    if (rc == 0) {
        ear_audio_clip_free(&clip);
        return;
    }
    EAR_CHECK_MSG(strstr(err.message, needle) != NULL, "%s: message '%s' lacks '%s'", what,
                  err.message, needle);
    if (needle2)
        EAR_CHECK_MSG(strstr(err.message, needle2) != NULL, "%s: message '%s' lacks '%s'", what,
                      err.message, needle2);
    printf("%-28s -> %s\n", what, err.message);
}

static uint8_t *read_sound(const char *name, size_t *size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *data = decode_test_read(path, size);
    EAR_CHECK_MSG(data != NULL, "%s: not made", name);
    return data;
}

static void refuse_file(const char *name, const char *needle, const char *needle2)
{
    size_t size;
    uint8_t *data = read_sound(name, &size);
    if (data)
        expect_refused(name, data, size, needle, needle2);
    free(data);
}

static void check_options(void)
{
    static const uint8_t byte = 0;
    ear_audio_clip clip;
    ear_error err;
    ear_audio_decode_options o;
    ear_audio_decode_options_default(&o);
    EAR_CHECK(o.sample_rate == 16000 && o.max_seconds == 60);
    o.sample_rate = 0;
    EAR_CHECK(ear_audio_decode(&byte, 1, &o, &clip, &err) == -1);
    EAR_CHECK_MSG(strstr(err.message, "sample rate") != NULL, "%s", err.message);
    ear_audio_decode_options_default(&o);
    o.max_seconds = NAN;
    EAR_CHECK(ear_audio_decode(&byte, 1, &o, &clip, &err) == -1);
    EAR_CHECK_MSG(strstr(err.message, "max_seconds") != NULL, "%s", err.message);
    expect_refused("empty input", &byte, 0, "empty", NULL);
    expect_refused("NULL data", NULL, 10, "no data", NULL);
    /* Freeing is safe on zeroed and already freed clips. */
    ear_audio_clip zero = {0};
    ear_audio_clip_free(&zero);
    ear_audio_clip_free(&zero);
    ear_audio_clip_free(NULL);
}

/* Random bytes, text, an image, video without sound, codecs not enabled. */
static void check_not_audio(void)
{
    uint64_t state = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 40; i++) {
        size_t size = 1 + (size_t)(i * i * 211 % 70000);
        uint8_t *data = malloc(size);
        for (size_t k = 0; k < size; k++) {
            state ^= state << 13, state ^= state >> 7, state ^= state << 17;
            data[k] = (uint8_t)(state >> 24);
        }
        char what[64];
        snprintf(what, sizeof what, "random bytes (%zu)", size);
        expect_refused(what, data, size, "unrecognised data", NULL);
        free(data);
    }
    char text[4096] = "";
    while (strlen(text) < sizeof text - 64)
        strcat(text, "This is a text file, not a sound.\n");
    expect_refused("text", (const uint8_t *)text, strlen(text), "unrecognised data", NULL);
    refuse_file("image.png", "unsupported format 'png_pipe'", "accepted are");
    refuse_file("video-only.mp4", "no audio stream", "video mpeg4");
    refuse_file("video-only.webm", "no audio stream", "video vp8");
    refuse_file("wav-adpcm.wav", "audio codec 'adpcm_ms' is not supported in wav", "pcm_s16le");
    refuse_file("mkv-ac3.mkv", "audio codec 'ac3' is not supported in matroska", "opus");
    refuse_file("mkv-alac.mkv", "audio codec 'alac' is not supported in matroska", NULL);
    refuse_file("m4a-alac.m4a", "audio codec 'alac' is not supported in mp4", "aac");
}

/* A WAV of count samples of a sine at rate (16-bit mono). */
static uint8_t *sine_wav(uint32_t rate, size_t count, uint32_t claim, size_t *size)
{
    double *x = malloc((count ? count : 1) * sizeof *x);
    for (size_t i = 0; i < count; i++)
        x[i] = 0.5 * sin(2 * M_PI * 440.0 * (double)i / rate);
    uint8_t *wav = decode_test_wav(1, 1, rate, 16, 0, x, count, claim, size);
    free(x);
    return wav;
}

/* Headers that lie or claim hours: decode what is there, allocate nothing
 * from the claim (an 18-hour buffer would fail or trip ASan). */
static void check_lying_headers(void)
{
    ear_audio_clip clip;
    ear_error err;
    size_t size;
    uint8_t *wav = sine_wav(16000, 16000, 0x7ffff000u, &size);
    int rc = decode(wav, size, 0, &clip, &err);
    EAR_CHECK_MSG(rc == 0, "lying WAV: %s", err.message);
    EAR_CHECK_MSG(rc != 0 || (clip.count == 16000 && !clip.truncated), "lying WAV: %zu samples",
                  rc == 0 ? clip.count : 0);
    ear_audio_clip_free(&clip);
    rc = decode(wav, size, 60, &clip, &err);
    EAR_CHECK(rc == 0 && clip.count == 16000 && !clip.truncated);
    ear_audio_clip_free(&clip);
    free(wav);

    /* A header promising samples, and none there. */
    wav = sine_wav(16000, 0, 0, &size);
    expect_refused("WAV without samples", wav, size, "no audio decoded", "wav/pcm_s16le");
    free(wav);
    wav = sine_wav(16000, 0, 0x7ffff000u, &size);
    expect_refused("WAV claiming hours, empty", wav, size, "no audio decoded", NULL);
    free(wav);

    /* Sample rates and channel counts no recording has. */
    double samples[65 * 4] = {0};
    wav = decode_test_wav(1, 1, 2000000000u, 16, 0, samples, 4, 0, &size);
    expect_refused("WAV at 2 GHz", wav, size, "sample rate", NULL);
    free(wav);
    wav = decode_test_wav(1, 65, 16000, 16, 0, samples, 4, 0, &size);
    expect_refused("WAV with 65 channels", wav, size, "channel", NULL);
    free(wav);
    wav = decode_test_wav(1, 0, 16000, 16, 0, samples, 4, 0, &size);
    expect_refused("WAV with 0 channels", wav, size, "decoder", "channel");
    free(wav);

    /* FLAC whose STREAMINFO claims 2^36 - 1 samples (about 99 days at 8 kHz). */
    uint8_t *flac = read_sound("flac-8k-mono.flac", &size);
    if (flac && size > 40 && memcmp(flac, "fLaC", 4) == 0) {
        flac[8 + 13] |= 0x0f;
        memset(flac + 8 + 14, 0xff, 4);
        rc = decode(flac, size, 0, &clip, &err);
        EAR_CHECK_MSG(rc == 0, "FLAC claiming months: %s", err.message);
        EAR_CHECK_MSG(rc != 0 || clip.count == 64000, "FLAC claiming months: %zu samples",
                      rc == 0 ? clip.count : 0);
        ear_audio_clip_free(&clip);
    }
    free(flac);
}

/* Files cut short: moov at the end is fatal, anything else decodes the part
 * that is there, and that part is what the whole file decodes to. */
static void check_truncated(void)
{
    static const char *const names[] = {"webm-opus.webm", "ogg-opus.ogg",  "ogg-vorbis.ogg",
                                        "m4a-aac-faststart.m4a", "mp3.mp3", "ogg-flac.oga",
                                        "flac-8k-mono.flac", "wav-s24-48k-stereo.wav"};
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        size_t size;
        uint8_t *data = read_sound(names[n], &size);
        if (!data)
            continue;
        ear_audio_clip whole, part;
        ear_error err;
        int rc = decode(data, size, 60, &whole, &err);
        EAR_CHECK_MSG(rc == 0, "%s: %s", names[n], err.message);
        /* An odd length: cut inside a packet, inside a sample. */
        size_t cut = size / 2 + 1;
        rc = decode(data, cut, 60, &part, &err);
        EAR_CHECK_MSG(rc == 0, "%s cut at %zu: %s", names[n], cut, err.message);
        if (rc == 0 && whole.count > 0) {
            /* Ogg keeps whole pages only (a second each, as ffmpeg writes them). */
            EAR_CHECK_MSG(part.count > whole.count / 8 && part.count < whole.count * 3 / 4,
                          "%s cut in half: %zu of %zu samples", names[n], part.count,
                          whole.count);
            /* The resampler's flush changes the last few samples only. */
            double worst = 0;
            for (size_t i = 0; i + 64 < part.count && i < whole.count; i++)
                worst = fmax(worst, fabs(part.samples[i] - whole.samples[i]));
            EAR_CHECK_MSG(worst < 1e-4, "%s cut in half: differs from the whole by %g", names[n],
                          worst);
            printf("%-28s cut at %zu of %zu bytes: %zu of %zu samples\n", names[n], cut, size,
                   part.count, whole.count);
        }
        ear_audio_clip_free(&part);
        ear_audio_clip_free(&whole);
        /* Every cut, and bytes damaged in the middle: success or a message,
         * never a crash. */
        for (size_t k = 1; k < 24; k++) {
            cut = size * k / 24 + k;
            if (cut > size)
                cut = size;
            rc = decode(data, cut, 60, &part, &err);
            EAR_CHECK_MSG(rc == 0 ? part.count > 0 : err.message[0] != 0, "%s cut at %zu",
                          names[n], cut);
            ear_audio_clip_free(&part);
        }
        for (size_t k = 0; k < 64; k++)
            data[size / 3 + k * 97 % (size / 2)] ^= (uint8_t)(0x55 + k);
        rc = decode(data, size, 60, &part, &err);
        EAR_CHECK_MSG(rc == 0 ? part.count > 0 : err.message[0] != 0, "%s damaged", names[n]);
        ear_audio_clip_free(&part);
        free(data);
    }
    size_t size;
    uint8_t *data = read_sound("m4a-aac.m4a", &size);
    if (data)
        expect_refused("M4A cut, moov at the end", data, size / 2, "cannot read this mp4 file",
                       "moov atom not found");
    free(data);
    data = read_sound("webm-opus.webm", &size);
    if (data)
        expect_refused("WebM cut in its header", data, 40, "webm", NULL);
    free(data);
}

/* max_seconds: 60 s by default, any other cap, none. */
static void check_cap(void)
{
    static const struct {
        const char *name;
        double max_seconds;
        size_t count;
        int truncated;
    } cases[] = {
        {"webm-opus-70s.webm", 60, 960000, 1},  {"webm-opus-70s.webm", 2, 32000, 1},
        {"webm-opus-70s.webm", 0, 1120000, 0},  {"wav-s16-70s.wav", 60, 960000, 1},
        {"wav-s16-70s.wav", 2.5, 40000, 1},     {"wav-s16-70s.wav", 70, 1120000, 0},
        {"wav-s16-70s.wav", 69.99, 1119840, 1}, {"wav-s16-70s.wav", -1, 1120000, 0},
        /* 2.01 * 16000 is 32159.99... in binary floating point */
        {"wav-s16-70s.wav", 2.01, 32160, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t size;
        uint8_t *data = read_sound(cases[i].name, &size);
        if (!data)
            continue;
        ear_audio_clip clip;
        ear_error err;
        int rc = decode(data, size, cases[i].max_seconds, &clip, &err);
        EAR_CHECK_MSG(rc == 0, "%s: %s", cases[i].name, err.message);
        if (rc == 0) {
            EAR_CHECK_MSG(clip.count == cases[i].count && clip.truncated == cases[i].truncated,
                          "%s, cap %g s: %zu samples, truncated %d", cases[i].name,
                          cases[i].max_seconds, clip.count, clip.truncated);
            printf("%-28s cap %5g s: %zu samples, truncated %d\n", cases[i].name,
                   cases[i].max_seconds, clip.count, clip.truncated);
        }
        ear_audio_clip_free(&clip);
        free(data);
    }
}

int main(void)
{
    int made = decode_test_make_sounds(
        "decode_errors",
        "image.png video-only.mp4 video-only.webm wav-adpcm.wav mkv-ac3.mkv mkv-alac.mkv "
        "m4a-alac.m4a m4a-aac.m4a m4a-aac-faststart.m4a webm-opus.webm ogg-opus.ogg "
        "ogg-vorbis.ogg mp3.mp3 ogg-flac.oga flac-8k-mono.flac wav-s24-48k-stereo.wav "
        "webm-opus-70s.webm wav-s16-70s.wav",
        dir, sizeof dir);
    EAR_CHECK_MSG(made == 0, "could not make the test sounds in %s", dir);
    if (made != 0)
        return ear_test_finish();
    check_options();
    check_not_audio();
    check_lying_headers();
    check_truncated();
    check_cap();
    return ear_test_finish();
}
