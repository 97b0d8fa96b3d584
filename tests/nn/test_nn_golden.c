/* Embeddings equal PyTorch's (tools/make_nn_fixtures.py: the seed service's own code on the
 * same model files): clips shorter than a segment, exactly one, several with an overlapping
 * last one; the encoders alone from a log-mel or from preprocessed pixels; F32, F16 and BF16
 * weights; basic and bottleneck blocks; linear and mlp heads; 2 to 4 stages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#include "nn_check.h"

typedef struct model_case {
    const char *name;
    int embed_dim, has_audio, has_image;
} model_case;

static const model_case models[] = {
    {"basic_f32", 8, 1, 1},
    {"bottleneck_f16", 12, 1, 1},
    {"audio_bf16", 16, 1, 0},
    {"image_f32", 8, 0, 1},
};
static const size_t waves[] = {129, 2500, 4000, 9100};
static const size_t mel_waves[] = {2500, 9100};

static char *expected_fingerprint(const char *model_file)
{
    static char found[17];
    char path[1024], line[256];
    nn_fixture(path, sizeof path, "nn_fingerprints.txt");
    FILE *f = fopen(path, "r");
    EAR_CHECK_MSG(f != NULL, "%s cannot be read", path);
    found[0] = 0;
    while (f && fgets(line, sizeof line, f)) {
        char file[200], hex[17];
        if (sscanf(line, "%199s %16s", file, hex) == 2 && strcmp(file, model_file) == 0)
            snprintf(found, sizeof found, "%s", hex);
    }
    if (f)
        fclose(f);
    return found;
}

static void check_audio(const model_case *c, ear_nn_model *model, ear_nn_session *session)
{
    char name[256];
    int dim = c->embed_dim;
    float got[64], again[64];
    snprintf(name, sizeof name, "nn_%s_audio.npy", c->name);
    float *expected = nn_load_npy(name, sizeof waves / sizeof waves[0] * (size_t)dim);
    for (size_t k = 0; expected && k < sizeof waves / sizeof waves[0]; k++) {
        snprintf(name, sizeof name, "nn_wave_%zu.npy", waves[k]);
        float *wave = nn_load_npy(name, waves[k]);
        if (!wave)
            continue;
        ear_error err = {{0}};
        int rc = ear_nn_embed_audio(session, wave, waves[k], got, &err);
        EAR_CHECK_MSG(rc == 0, "%s, wave %zu: %s", c->name, waves[k], err.message);
        snprintf(name, sizeof name, "%s audio, %zu samples", c->name, waves[k]);
        if (rc == 0)
            nn_check_close(name, got, expected + k * (size_t)dim, dim);
        /* The same clip again after others: nothing carried over between requests. */
        if (k == 3) {
            float *short_wave = nn_load_npy("nn_wave_2500.npy", 2500);
            EAR_CHECK(short_wave && ear_nn_embed_audio(session, short_wave, 2500, again, &err) == 0);
            EAR_CHECK(ear_nn_embed_audio(session, wave, waves[k], again, &err) == 0);
            EAR_CHECK_MSG(memcmp(got, again, (size_t)dim * sizeof *got) == 0,
                          "%s: the same clip embeds differently the second time", c->name);
            free(short_wave);
        }
        /* One sample short of the minimum is refused with a clear message. */
        if (k == 0) {
            size_t shortest = ear_nn_model_min_samples(model);
            EAR_CHECK(shortest == (size_t)ear_nn_model_config(model)->mel.n_fft / 2 + 1);
            EAR_CHECK(shortest <= waves[0]);
            err.message[0] = 0;
            EAR_CHECK(ear_nn_embed_audio(session, wave, shortest - 1, got, &err) == -1);
            EAR_CHECK_MSG(strstr(err.message, "too short") != NULL, "message: %s", err.message);
            EAR_CHECK(ear_nn_embed_audio(session, wave, shortest, got, &err) == 0);
        }
        free(wave);
    }
    free(expected);

    const ear_nn_config *config = ear_nn_model_config(model);
    for (size_t k = 0; k < sizeof mel_waves / sizeof mel_waves[0]; k++) {
        size_t segment = ear_nn_model_segment_samples(model);
        size_t length = mel_waves[k] < segment ? mel_waves[k] : segment;
        size_t frames = 1 + length / (size_t)config->mel.hop_length;
        snprintf(name, sizeof name, "nn_%s_mel_%zu.npy", c->name, mel_waves[k]);
        float *mel = nn_load_npy(name, (size_t)config->mel.n_mels * frames);
        snprintf(name, sizeof name, "nn_%s_mel_%zu_unit.npy", c->name, mel_waves[k]);
        float *unit = nn_load_npy(name, (size_t)dim);
        ear_error err = {{0}};
        if (mel && unit) {
            int rc = ear_nn_embed_mel(session, mel, frames, got, &err);
            EAR_CHECK_MSG(rc == 0, "%s mel: %s", c->name, err.message);
            snprintf(name, sizeof name, "%s encoder from the log-mel, %zu frames", c->name, frames);
            if (rc == 0)
                nn_check_close(name, got, unit, dim);
            /* More frames than a segment has do not fit the session: refused, not overrun. */
            EAR_CHECK(ear_nn_embed_mel(session, mel, segment, got, &err) == -1);
        }
        free(mel);
        free(unit);
    }
}

static void check_pixels(const model_case *c, ear_nn_model *model, ear_nn_session *session)
{
    char name[256];
    int size = ear_nn_model_config(model)->image_size;
    float got[64];
    snprintf(name, sizeof name, "nn_%s_pixels.npy", c->name);
    float *pixels = nn_load_npy(name, 3 * (size_t)size * (size_t)size);
    snprintf(name, sizeof name, "nn_%s_image.npy", c->name);
    float *expected = nn_load_npy(name, 2 * (size_t)c->embed_dim);
    if (pixels && expected) {
        ear_error err = {{0}};
        int rc = ear_nn_embed_pixels(session, pixels, got, &err);
        EAR_CHECK_MSG(rc == 0, "%s pixels: %s", c->name, err.message);
        snprintf(name, sizeof name, "%s image encoder from pixels", c->name);
        if (rc == 0)
            nn_check_close(name, got, expected, c->embed_dim);
    }
    free(pixels);
    free(expected);
}

static void check_model(const model_case *c)
{
    char path[1024], file[128];
    snprintf(file, sizeof file, "nn_%s.safetensors", c->name);
    nn_fixture(path, sizeof path, file);
    ear_error err = {{0}};
    ear_nn_model *model = ear_nn_model_load(path, &err);
    EAR_CHECK_MSG(model != NULL, "%s: %s", c->name, err.message);
    if (!model)
        return;
    const ear_nn_config *config = ear_nn_model_config(model);
    EAR_CHECK(config->embed_dim == c->embed_dim && config->has_audio == c->has_audio &&
              config->has_image == c->has_image);
    const char *fingerprint = ear_nn_model_fingerprint(model);
    EAR_CHECK_MSG(strlen(fingerprint) == 16 && strcmp(fingerprint, expected_fingerprint(file)) == 0,
                  "%s: fingerprint %s, expected %s", c->name, fingerprint,
                  expected_fingerprint(file));

    ear_nn_session *session = ear_nn_session_create(model, &err);
    EAR_CHECK_MSG(session != NULL, "%s session: %s", c->name, err.message);
    if (session) {
        EAR_CHECK(ear_nn_session_bytes(session) == ear_nn_model_session_bytes(model) &&
                  ear_nn_session_bytes(session) > 0);
        float unit[64];
        float zeros[4096] = {0};
        if (c->has_audio) {
            check_audio(c, model, session);
        } else {
            EAR_CHECK(ear_nn_embed_audio(session, zeros, 1000, unit, &err) == -1);
            EAR_CHECK_MSG(strstr(err.message, "no audio tower") != NULL, "message: %s",
                          err.message);
            EAR_CHECK(ear_nn_model_segment_samples(model) == 0);
        }
        if (c->has_image) {
            check_pixels(c, model, session);
        } else {
            EAR_CHECK(ear_nn_embed_pixels(session, zeros, unit, &err) == -1);
            EAR_CHECK_MSG(strstr(err.message, "no image tower") != NULL, "message: %s",
                          err.message);
        }
    }
    ear_nn_session_free(session);
    ear_nn_model_free(model);
}

int main(void)
{
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        check_model(&models[i]);
    return ear_test_finish();
}
