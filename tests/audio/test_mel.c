/* The log-mel spectrogram against torchaudio's (fixtures from tools/make_mel_fixtures.py),
 * plus what the fixtures cannot show: frame counts, silence, errors, threads. */
#include <pthread.h>

#include "audio/audio.h"
#include "test.h"

/* The largest |C - torchaudio| allowed, in normalised units (the model's input). */
#define GOLDEN_TOLERANCE 1e-3

/* The configurations of tools/make_mel_fixtures.py (DEFAULT is the library's default). */
static const ear_audio_mel_config wide_config = {22050, 1024, 1024, 320, 128, 20.0, 7600.0,
                                                 1e-5, -5.0, 3.5};
static const ear_audio_mel_config odd_config = {11025, 401, 300, 128, 40, 50.0, 5000.0,
                                                1e-4, -3.0, 5.0};

typedef struct golden_case {
    const char *name;
    size_t samples;
    const ear_audio_mel_config *config; /* NULL: the default */
} golden_case;

static const golden_case golden_cases[] = {
    {"default_257", 257, NULL},     {"default_1600", 1600, NULL},
    {"default_16000", 16000, NULL}, {"default_85920", 85920, NULL},
    {"wide_16000", 16000, &wide_config}, {"odd_1600", 1600, &odd_config},
};

static float *read_fixture(const char *name, int *ndim, size_t shape[4])
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/audio/%s",
             ear_test_env("EAR_SOURCE_DIR", "."), name);
    ear_error err = {{0}};
    float *data = ear_npy_read_f32(path, ndim, shape, &err);
    EAR_CHECK_MSG(data != NULL, "%s", err.message);
    return data;
}

static void test_golden(const golden_case *g)
{
    ear_audio_mel_config config;
    if (g->config)
        config = *g->config;
    else
        ear_audio_mel_config_default(&config);
    char name[256];
    int wave_ndim = 0, expected_ndim = 0;
    size_t wave_shape[4] = {0}, expected_shape[4] = {0};
    snprintf(name, sizeof name, "mel_wave_%zu.npy", g->samples);
    float *wave = read_fixture(name, &wave_ndim, wave_shape);
    snprintf(name, sizeof name, "mel_%s.npy", g->name);
    float *expected = read_fixture(name, &expected_ndim, expected_shape);
    ear_error err = {{0}};
    ear_audio_mel *mel = ear_audio_mel_create(&config, &err);
    EAR_CHECK_MSG(mel != NULL, "%s: %s", g->name, err.message);
    float *out = NULL;
    if (!wave || !expected || !mel)
        goto done;
    EAR_CHECK(wave_ndim == 1 && wave_shape[0] == g->samples);
    size_t frames = ear_audio_mel_frames(mel, g->samples);
    EAR_CHECK_MSG(expected_ndim == 2 && expected_shape[0] == (size_t)config.n_mels &&
                      expected_shape[1] == frames,
                  "%s: torchaudio gives [%zu, %zu], the library says [%d, %zu]", g->name,
                  expected_shape[0], expected_shape[1], config.n_mels, frames);
    if (expected_ndim != 2 || expected_shape[0] * expected_shape[1] != (size_t)config.n_mels * frames)
        goto done;
    out = malloc((size_t)config.n_mels * frames * sizeof *out);
    EAR_CHECK(out != NULL);
    if (!out)
        goto done;
    int rc = ear_audio_mel_compute(mel, wave, g->samples, out, &err);
    EAR_CHECK_MSG(rc == 0, "%s: %s", g->name, err.message);
    if (rc != 0)
        goto done;
    /* The edge frames (reflect padding) are reported apart from the rest. */
    double max_diff = 0, max_edge_diff = 0;
    for (size_t b = 0; b < (size_t)config.n_mels; b++) {
        for (size_t f = 0; f < frames; f++) {
            double d = fabs((double)out[b * frames + f] - (double)expected[b * frames + f]);
            if (!(d <= max_diff))
                max_diff = d; /* a NaN sticks */
            if ((f < 3 || f + 3 >= frames) && !(d <= max_edge_diff))
                max_edge_diff = d;
        }
    }
    printf("%-14s [%d, %zu]  max |C - torchaudio| = %.3g (edge frames %.3g)\n", g->name,
           config.n_mels, frames, max_diff, max_edge_diff);
    EAR_CHECK_MSG(max_diff <= GOLDEN_TOLERANCE, "%s: max difference %g", g->name, max_diff);
done:
    free(out);
    free(wave);
    free(expected);
    ear_audio_mel_free(mel);
}

static void test_frame_count(void)
{
    ear_audio_mel_config config;
    ear_audio_mel_config_default(&config);
    ear_error err = {{0}};
    ear_audio_mel *mel = ear_audio_mel_create(&config, &err);
    EAR_CHECK_MSG(mel != NULL, "%s", err.message);
    if (!mel)
        return;
    const size_t counts[] = {257, 319, 320, 321, 16000, 16159, 16160, 80000, 85920};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        EAR_CHECK_MSG(ear_audio_mel_frames(mel, counts[i]) == 1 + counts[i] / 160,
                      "%zu samples: %zu frames", counts[i], ear_audio_mel_frames(mel, counts[i]));
    ear_audio_mel_free(mel);

    /* An odd n_fft pads (n_fft - 1) / 2 on each side, so torch makes one frame fewer
     * when count is a multiple of hop: 1 + (count - 1) / hop. */
    mel = ear_audio_mel_create(&odd_config, &err);
    EAR_CHECK_MSG(mel != NULL, "%s", err.message);
    if (!mel)
        return;
    EAR_CHECK(ear_audio_mel_frames(mel, 1280) == 10);
    EAR_CHECK(ear_audio_mel_frames(mel, 1281) == 11);
    ear_audio_mel_free(mel);
}

/* All zeros: every FFT bin is exactly 0, so every value is (log(offset) - mean) / std. */
static void test_silence(const ear_audio_mel_config *config)
{
    ear_error err = {{0}};
    ear_audio_mel *mel = ear_audio_mel_create(config, &err);
    EAR_CHECK_MSG(mel != NULL, "%s", err.message);
    size_t count = 4000;
    float *wave = calloc(count, sizeof *wave);
    size_t frames = mel ? ear_audio_mel_frames(mel, count) : 0;
    size_t values = (size_t)config->n_mels * frames;
    float *out = malloc(values * sizeof *out);
    if (!mel || !wave || !out)
        goto done;
    int rc = ear_audio_mel_compute(mel, wave, count, out, &err);
    EAR_CHECK_MSG(rc == 0, "%s", err.message);
    float expected = (logf((float)config->log_offset) - (float)config->mean) / (float)config->std;
    size_t wrong = 0;
    for (size_t i = 0; i < values; i++)
        wrong += out[i] != expected;
    EAR_CHECK_MSG(rc == 0 && wrong == 0, "%zu of %zu values differ from %.9g (first %.9g)",
                  wrong, values, expected, out[0]);
done:
    free(out);
    free(wave);
    ear_audio_mel_free(mel);
}

/* A steady 1 kHz tone: in every frame that lies inside the clip (the padded edges
 * reflect the tone with a phase jump) the loudest band is the one whose centre
 * (htk mel scale) lies closest to 1 kHz. */
static void test_tone_band(void)
{
    ear_audio_mel_config config;
    ear_audio_mel_config_default(&config);
    ear_error err = {{0}};
    ear_audio_mel *mel = ear_audio_mel_create(&config, &err);
    size_t count = 8000;
    float *wave = malloc(count * sizeof *wave);
    size_t frames = mel ? ear_audio_mel_frames(mel, count) : 0;
    float *out = malloc((size_t)config.n_mels * frames * sizeof *out);
    EAR_CHECK(mel && wave && out);
    if (!mel || !wave || !out)
        goto done;
    const double pi = 3.14159265358979323846, tone = 1000.0;
    for (size_t i = 0; i < count; i++)
        wave[i] = (float)(0.5 * sin(2 * pi * tone * (double)i / config.sample_rate));
    EAR_CHECK(ear_audio_mel_compute(mel, wave, count, out, &err) == 0);
    double mel_min = 2595 * log10(1 + config.f_min / 700), mel_max = 2595 * log10(1 + config.f_max / 700);
    double step = (mel_max - mel_min) / (config.n_mels + 1), tone_mel = 2595 * log10(1 + tone / 700);
    int nearest = (int)floor((tone_mel - mel_min) / step - 1 + 0.5);
    int frames_right = 0, frames_inside = 0;
    long window_start = (config.n_fft - config.win_length) / 2 - config.n_fft / 2;
    for (size_t f = 0; f < frames; f++) {
        long start = (long)f * config.hop_length + window_start;
        if (start < 0 || start + config.win_length > (long)count)
            continue;
        frames_inside++;
        int loudest = 0;
        for (int b = 1; b < config.n_mels; b++)
            if (out[(size_t)b * frames + f] > out[(size_t)loudest * frames + f])
                loudest = b;
        frames_right += loudest == nearest;
    }
    EAR_CHECK_MSG(frames_inside > 40 && frames_right == frames_inside,
                  "band %d loudest in %d of %d frames", nearest, frames_right, frames_inside);
done:
    free(out);
    free(wave);
    ear_audio_mel_free(mel);
}

static void test_bad_input(void)
{
    ear_audio_mel_config config;
    ear_audio_mel_config_default(&config);
    ear_error err = {{0}};
    ear_audio_mel *mel = ear_audio_mel_create(&config, &err);
    EAR_CHECK_MSG(mel != NULL, "%s", err.message);
    if (!mel)
        return;
    float wave[300] = {0}, out[64 * 2];
    err.message[0] = 0;
    EAR_CHECK(ear_audio_mel_compute(mel, wave, 0, out, &err) == -1);
    EAR_CHECK_MSG(strstr(err.message, "empty") != NULL, "message: %s", err.message);
    err.message[0] = 0;
    EAR_CHECK(ear_audio_mel_compute(mel, wave, 256, out, &err) == -1);
    EAR_CHECK_MSG(strstr(err.message, "too short") && strstr(err.message, "256"), "message: %s",
                  err.message);
    EAR_CHECK(ear_audio_mel_frames(mel, 257) == 2);
    EAR_CHECK(ear_audio_mel_compute(mel, wave, 257, out, &err) == 0);
    EAR_CHECK(ear_audio_mel_compute(mel, NULL, 257, out, &err) == -1);
    EAR_CHECK(ear_audio_mel_compute(mel, wave, 257, NULL, &err) == -1);
    ear_audio_mel_free(mel);
    ear_audio_mel_free(NULL);
}

static void test_bad_config(void)
{
    struct {
        const char *field; /* what the message must name */
        ear_audio_mel_config config;
    } bad[11];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ear_audio_mel_config_default(&bad[i].config);
    bad[0].field = "sample_rate", bad[0].config.sample_rate = 0;
    bad[1].field = "n_fft", bad[1].config.n_fft = 1;
    bad[2].field = "win_length", bad[2].config.win_length = 513;
    bad[3].field = "hop_length", bad[3].config.hop_length = 0;
    bad[4].field = "n_mels", bad[4].config.n_mels = 0;
    bad[5].field = "f_max", bad[5].config.f_max = 0.0;
    bad[6].field = "f_min", bad[6].config.f_min = NAN;
    bad[7].field = "log_offset", bad[7].config.log_offset = 0.0;
    bad[8].field = "std", bad[8].config.std = 0.0;
    bad[9].field = "n_mels", bad[9].config.n_mels = 1025;
    bad[10].field = "too narrow", bad[10].config.f_min = 1000.0, bad[10].config.f_max = 1000.001;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ear_error err = {{0}};
        ear_audio_mel *mel = ear_audio_mel_create(&bad[i].config, &err);
        EAR_CHECK_MSG(mel == NULL, "%s: accepted", bad[i].field);
        EAR_CHECK_MSG(strstr(err.message, bad[i].field) != NULL, "%s: message '%s'",
                      bad[i].field, err.message);
        ear_audio_mel_free(mel);
    }
    ear_error err = {{0}};
    EAR_CHECK(ear_audio_mel_create(NULL, &err) == NULL && err.message[0]);
}

/* Several threads create (the FFTW planner is global), compute and free at once;
 * each must get exactly what one thread alone gets. */
typedef struct worker {
    const ear_audio_mel_config *config;
    const float *wave;
    size_t count;
    const float *reference; /* NULL: fill result */
    float *result;
    int failures;
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    for (int round = 0; round < 20; round++) {
        ear_error err;
        ear_audio_mel *mel = ear_audio_mel_create(w->config, &err);
        if (!mel || ear_audio_mel_compute(mel, w->wave, w->count, w->result, &err) != 0)
            w->failures++;
        else if (w->reference &&
                 memcmp(w->result, w->reference,
                        (size_t)w->config->n_mels * ear_audio_mel_frames(mel, w->count) *
                            sizeof(float)) != 0)
            w->failures++;
        ear_audio_mel_free(mel);
    }
    return NULL;
}

static void test_threads(void)
{
    enum { THREADS = 4, COUNT = 3000 };
    ear_audio_mel_config defaults;
    ear_audio_mel_config_default(&defaults);
    const ear_audio_mel_config *configs[THREADS] = {&defaults, &wide_config, &odd_config,
                                                    &defaults};
    static float wave[COUNT];
    for (size_t i = 0; i < COUNT; i++)
        wave[i] = (float)sin(0.01 * (double)(i * i % 7919)) * 0.5f;
    worker workers[THREADS];
    pthread_t threads[THREADS];
    size_t size = 128 * (1 + COUNT / 128) * sizeof(float); /* the largest output of the three */
    float *buffers[2 * THREADS] = {0};
    int ok = 1;
    for (int i = 0; i < 2 * THREADS; i++)
        ok &= (buffers[i] = malloc(size)) != NULL;
    EAR_CHECK(ok);
    for (int i = 0; ok && i < THREADS; i++) {
        workers[i] = (worker){configs[i], wave, COUNT, NULL, buffers[i], 0};
        run_worker(&workers[i]);
        EAR_CHECK(workers[i].failures == 0);
        workers[i] = (worker){configs[i], wave, COUNT, buffers[i], buffers[THREADS + i], 0};
    }
    int started = 0;
    for (; ok && started < THREADS; started++)
        if (pthread_create(&threads[started], NULL, run_worker, &workers[started]) != 0)
            break;
    EAR_CHECK(!ok || started == THREADS);
    for (int i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        EAR_CHECK_MSG(workers[i].failures == 0, "thread %d: %d rounds differ or failed", i,
                      workers[i].failures);
    }
    for (int i = 0; i < 2 * THREADS; i++)
        free(buffers[i]);
}

int main(void)
{
    for (size_t i = 0; i < sizeof golden_cases / sizeof golden_cases[0]; i++)
        test_golden(&golden_cases[i]);
    test_frame_count();
    ear_audio_mel_config defaults;
    ear_audio_mel_config_default(&defaults);
    test_silence(&defaults);
    test_silence(&wide_config);
    test_silence(&odd_config);
    test_tone_band();
    test_bad_input();
    test_bad_config();
    test_threads();
    return ear_test_finish();
}
