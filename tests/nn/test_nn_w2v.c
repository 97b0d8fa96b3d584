/* The original's model (wav2vec2 + torchvision ResNet, read from torch.save files) equals
 * PyTorch: tools/make_w2v_fixtures.py built the models from torchaudio's and torchvision's own
 * classes and embedded every sound and image as the original service does (the ffmpeg command,
 * 16-bit WAV, 10 s cut; PIL convert("RGB"), resize 232, crop 224). Also: the decoder's
 * ffmpeg-CLI mode against that command's own output, an audio-only model, and the refusals
 * (missing, misshapen and unexpected tensors, an unknown architecture). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "image/image.h"
#include "nn/nn.h"
#include "nn_check.h"

static const char *const sounds[] = {"s_0.3s.wav", "s_3s.flac", "s_10s.mp3",
                                     "s_25s.ogg", "stereo_48k.webm", "stereo_44k.wav"};
static const char *const images[] = {"photo.jpg", "alpha.png", "palette.png", "grey.jpg"};

static void w2v_fixture(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/tests/fixtures/w2v/%s", ear_test_env("EAR_SOURCE_DIR", "."), name);
}

static float *load_expected(const char *name, size_t count)
{
    char path[1024];
    w2v_fixture(path, sizeof path, name);
    ear_error err;
    int ndim = 0;
    size_t shape[4];
    float *data = ear_npy_read_f32(path, &ndim, shape, &err);
    EAR_CHECK_MSG(data != NULL, "%s: %s", name, data ? "" : err.message);
    if (!data)
        return NULL;
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    if (count && n != count) {
        EAR_CHECK_MSG(0, "%s: %zu values, expected %zu", name, n, count);
        free(data);
        return NULL;
    }
    return data;
}

static uint8_t *read_all(const char *name, size_t *size)
{
    char path[1024];
    w2v_fixture(path, sizeof path, name);
    FILE *f = fopen(path, "rb");
    EAR_CHECK_MSG(f != NULL, "%s cannot be read", path);
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
    *size = data ? fread(data, 1, (size_t)n, f) : 0;
    fclose(f);
    return data;
}

/* The sound as the model's front end decodes it (rate, ffmpeg's conversion, 10 s). */
static int decode_sound(const ear_nn_model *m, const char *name, ear_audio_clip *clip)
{
    size_t size = 0;
    uint8_t *data = read_all(name, &size);
    if (!data)
        return -1;
    ear_audio_decode_options o;
    ear_audio_decode_options_default(&o);
    ear_nn_model_decode_options(m, &o);
    ear_error err;
    int rc = ear_audio_decode(data, size, &o, clip, &err);
    EAR_CHECK_MSG(rc == 0, "%s: %s", name, err.message);
    free(data);
    return rc;
}

static void check_model(const char *model_name, int has_image)
{
    char path[1024], name[256];
    w2v_fixture(path, sizeof path, model_name);
    ear_error err;
    ear_nn_model *m = ear_nn_model_load(path, &err);
    EAR_CHECK_MSG(m != NULL, "%s: %s", model_name, m ? "" : err.message);
    if (!m)
        return;
    const ear_nn_config *c = ear_nn_model_config(m);
    EAR_CHECK(c->family == EAR_NN_FAMILY_W2V);
    EAR_CHECK(c->has_image == has_image);
    ear_nn_session *s = ear_nn_session_create(m, &err);
    EAR_CHECK_MSG(s != NULL, "%s: %s", model_name, s ? "" : err.message);
    int dim = c->embed_dim;
    float got[512];
    char stem[64];
    snprintf(stem, sizeof stem, "%.*s", (int)(strlen(model_name) - 3), model_name);
    for (size_t i = 0; s && i < sizeof sounds / sizeof sounds[0]; i++) {
        snprintf(name, sizeof name, "%s_%s.npy", stem, sounds[i]);
        w2v_fixture(path, sizeof path, name);
        FILE *probe = fopen(path, "rb");
        if (!probe)
            continue; /* the audio-only model has expectations for two sounds */
        fclose(probe);
        float *expected = load_expected(name, (size_t)dim);
        ear_audio_clip clip = {0};
        if (expected && decode_sound(m, sounds[i], &clip) == 0) {
            int rc = ear_nn_embed_audio(s, clip.samples, clip.count, got, &err);
            EAR_CHECK_MSG(rc == 0, "%s %s: %s", model_name, sounds[i], err.message);
            snprintf(name, sizeof name, "%s %s", model_name, sounds[i]);
            if (rc == 0)
                nn_check_close(name, got, expected, dim);
        }
        ear_audio_clip_free(&clip);
        free(expected);
    }
    for (size_t i = 0; s && has_image && i < sizeof images / sizeof images[0]; i++) {
        snprintf(name, sizeof name, "%s_%s.npy", stem, images[i]);
        float *expected = load_expected(name, (size_t)dim);
        size_t size = 0;
        uint8_t *data = read_all(images[i], &size);
        ear_image img = {0};
        if (expected && data && ear_image_decode(data, size, &img, &err) == 0) {
            int rc = ear_nn_embed_image(s, &img, got, &err);
            EAR_CHECK_MSG(rc == 0, "%s %s: %s", model_name, images[i], err.message);
            snprintf(name, sizeof name, "%s %s", model_name, images[i]);
            if (rc == 0)
                nn_check_close(name, got, expected, dim);
        } else {
            EAR_CHECK_MSG(0, "%s: cannot decode", images[i]);
        }
        ear_image_free(&img);
        free(data);
        free(expected);
    }
    if (s && !has_image) {
        ear_image img = {0};
        EAR_CHECK(ear_nn_embed_image(s, &img, got, &err) == -1);
        EAR_CHECK_MSG(strstr(err.message, "no image tower") != NULL, "message: %s", err.message);
    }
    /* Shorter than one frame of the feature extractor: refused, named. */
    if (s) {
        float wave[400] = {0};
        EAR_CHECK(ear_nn_model_min_samples(m) == 400);
        EAR_CHECK(ear_nn_embed_audio(s, wave, 399, got, &err) == -1);
        EAR_CHECK_MSG(strstr(err.message, "too short") != NULL, "message: %s", err.message);
        EAR_CHECK(ear_nn_embed_audio(s, wave, 400, got, &err) == 0);
    }
    ear_nn_session_free(s);
    ear_nn_model_free(m);
}

/* The decoder's ffmpeg-CLI mode against `ffmpeg -i f -ar 16000 -ac 1 out.wav` read back. */
static void check_decoder(void)
{
    char path[1024];
    w2v_fixture(path, sizeof path, "w2v_tiny.pt");
    ear_error err;
    ear_nn_model *m = ear_nn_model_load(path, &err);
    EAR_CHECK_MSG(m != NULL, "w2v_tiny.pt: %s", m ? "" : err.message);
    for (size_t i = 0; m && i < sizeof sounds / sizeof sounds[0]; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s.s16.npy", sounds[i]);
        float *expected = load_expected(name, 0);
        w2v_fixture(path, sizeof path, name);
        int ndim = 0;
        size_t shape[4] = {0};
        free(ear_npy_read_f32(path, &ndim, shape, &err));
        ear_audio_clip clip = {0};
        if (expected && decode_sound(m, sounds[i], &clip) == 0) {
            size_t n = clip.count < shape[0] ? clip.count : shape[0];
            double worst = 0, dot = 0, a = 0, b = 0;
            for (size_t k = 0; k < n; k++) {
                double d = fabs((double)clip.samples[k] - expected[k]);
                worst = d > worst ? d : worst;
                dot += (double)clip.samples[k] * expected[k];
                a += (double)clip.samples[k] * clip.samples[k];
                b += (double)expected[k] * expected[k];
            }
            double cosine = dot / (sqrt(a * b) + 1e-30);
            if (getenv("EAR_TEST_VERBOSE"))
                printf("%s: %zu samples (ffmpeg %zu), cosine %.9f, max |difference| %.3g\n",
                       sounds[i], clip.count, shape[0], cosine, worst);
            /* Same length to a few samples (a resampler's flush), same samples near enough
             * that the embeddings agree (they are checked above). */
            EAR_CHECK_MSG(clip.count + 64 >= shape[0] && clip.count <= shape[0] + 64,
                          "%s: %zu samples, ffmpeg %zu", sounds[i], clip.count, shape[0]);
            EAR_CHECK_MSG(cosine >= 0.9999 && worst <= 4.0 / 32768, "%s: cosine %.7f, max "
                          "|difference| %.3g", sounds[i], cosine, worst);
        }
        ear_audio_clip_free(&clip);
        free(expected);
    }
    ear_nn_model_free(m);
}

/* The safetensors route: tools/convert.py --original --dtype bf16 of w2v_gn.pt embeds as the
 * .pt does to BF16's precision; a configuration's heads / layer_norm_first override the
 * conventions. */
static void check_safetensors(void)
{
    char path[1024];
    w2v_fixture(path, sizeof path, "w2v_gn_bf16.safetensors");
    ear_error err;
    ear_nn_model *m = ear_nn_model_load(path, &err);
    EAR_CHECK_MSG(m != NULL, "w2v_gn_bf16.safetensors: %s", m ? "" : err.message);
    ear_nn_session *s = m ? ear_nn_session_create(m, &err) : NULL;
    if (s) {
        const ear_nn_config *c = ear_nn_model_config(m);
        EAR_CHECK(c->family == EAR_NN_FAMILY_W2V && c->w2v.heads == 2 &&
                  c->w2v.layer_norm_first == 0 && c->has_image);
        float got[64];
        float *expected = load_expected("w2v_gn_s_3s.flac.npy", 48);
        ear_audio_clip clip = {0};
        if (expected && decode_sound(m, "s_3s.flac", &clip) == 0 &&
            ear_nn_embed_audio(s, clip.samples, clip.count, got, &err) == 0) {
            double dot = 0;
            for (int i = 0; i < 48; i++)
                dot += (double)got[i] * expected[i];
            EAR_CHECK_MSG(dot >= 0.999, "bf16 file: cosine %.6f against F32 PyTorch", dot);
        } else {
            EAR_CHECK_MSG(0, "bf16 file: %s", err.message);
        }
        ear_audio_clip_free(&clip);
        free(expected);
    }
    ear_nn_session_free(s);
    ear_nn_model_free(m);
    w2v_fixture(path, sizeof path, "w2v_tiny_override.safetensors");
    m = ear_nn_model_load(path, &err);
    EAR_CHECK_MSG(m != NULL, "w2v_tiny_override.safetensors: %s", m ? "" : err.message);
    if (m) {
        const ear_nn_config *c = ear_nn_model_config(m);
        EAR_CHECK(c->w2v.heads == 2 && c->w2v.layer_norm_first == 1 && !c->has_image);
    }
    ear_nn_model_free(m);
}

/* ear_image_preprocess_pil equals torchvision's transforms on PIL's convert("RGB"), bit for
 * bit: FNV-1a 64 of the float32 pixels, from tools/make_w2v_fixtures.py. */
static void check_pil_pixels(void)
{
    char path[1024], line[256];
    w2v_fixture(path, sizeof path, "pil_pixels.txt");
    FILE *f = fopen(path, "r");
    EAR_CHECK_MSG(f != NULL, "%s cannot be read", path);
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    float *pixels = malloc(3 * 224 * 224 * sizeof *pixels);
    int seen = 0;
    while (f && pixels && fgets(line, sizeof line, f)) {
        char name[128];
        unsigned long long expected;
        if (sscanf(line, "%127s %llx", name, &expected) != 2)
            continue;
        size_t size = 0;
        uint8_t *data = read_all(name, &size);
        ear_image img = {0};
        ear_error err;
        if (data && ear_image_decode(data, size, &img, &err) == 0 &&
            ear_image_preprocess_pil(&img, 232, 224, mean, std, pixels, &err) == 0) {
            uint64_t h = 0xcbf29ce484222325ull;
            const uint8_t *b = (const uint8_t *)pixels;
            for (size_t i = 0; i < 3 * 224 * 224 * sizeof *pixels; i++)
                h = (h ^ b[i]) * 0x100000001b3ull;
            EAR_CHECK_MSG(h == expected, "%s: pixels hash %016llx, PIL's %016llx", name,
                          (unsigned long long)h, expected);
            seen++;
        } else {
            EAR_CHECK_MSG(0, "%s: %s", name, err.message);
        }
        ear_image_free(&img);
        free(data);
    }
    EAR_CHECK(seen == 4);
    free(pixels);
    if (f)
        fclose(f);
    /* Bad sizes are refused. */
    ear_image img = {0};
    ear_error err;
    EAR_CHECK(ear_image_preprocess_pil(&img, 232, 224, mean, std, NULL, &err) == -1);
}

static void check_refused(const char *file, const char *needle)
{
    char path[1024];
    w2v_fixture(path, sizeof path, file);
    ear_error err = {{0}};
    ear_nn_model *m = ear_nn_model_load(path, &err);
    EAR_CHECK_MSG(m == NULL, "%s was accepted", file);
    EAR_CHECK_MSG(strstr(err.message, needle) != NULL, "%s: message '%s' lacks '%s'", file,
                  err.message, needle);
    ear_nn_model_free(m);
    ear_nn_config cfg;
    if (strcmp(file, "refuse_unknown.pt") == 0)
        EAR_CHECK(ear_nn_model_read_config(path, &cfg, &err) == -1);
}

int main(void)
{
    check_model("w2v_gn.pt", 1);
    check_model("w2v_ln.pt", 1);
    check_model("w2v_tiny.pt", 0);
    check_decoder();
    check_safetensors();
    check_pil_pixels();
    check_refused("refuse_missing.pt",
                  "tensor audio_encoder.model.encoder.transformer.layers.0.feed_forward."
                  "output_dense.weight is missing");
    check_refused("refuse_misshapen.pt", "attention.k_proj.weight has shape [64, 32]");
    check_refused("refuse_unknown.pt", "unknown architecture");
    check_refused("refuse_extra.pt", "unexpected tensor audio_encoder.model.encoder.transformer."
                                     "extra.weight");
    return ear_test_finish();
}
