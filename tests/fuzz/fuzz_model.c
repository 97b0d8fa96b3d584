/* The model file reader on arbitrary bytes: the safetensors container, the
 * ear.* metadata, the configuration, every tensor's dtype/shape/offsets, the
 * conversion to float32; and, when a file loads, one embedding from it. */
#include <string.h>

#include "fuzz.h"
#include "nn/nn.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    devnull = fopen("/dev/null", "w");
    EAR_FUZZ_REQUIRE(devnull, "cannot open /dev/null");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = ear_fuzz_memfd(data, size, path, sizeof path);
    EAR_FUZZ_REQUIRE(fd >= 0, "memfd_create failed");
    ear_error err = {{0}};
    ear_nn_config cfg;
    int config_ok = ear_nn_model_read_config(path, &cfg, &err) == 0;
    ear_nn_model *m = ear_nn_model_load(path, &err);
    if (!m) {
        EAR_FUZZ_REQUIRE(err.message[0], "a refusal must say why");
        close(fd);
        return 0;
    }
    EAR_FUZZ_REQUIRE(config_ok, "a model that loads has a readable configuration");
    /* A loaded model is used at once: a session sized from its configuration and
     * one embedding, so that a shape the loader let through cannot go unnoticed. */
    size_t arena = ear_nn_model_session_bytes(m);
    if (arena <= (size_t)256 << 20) {
        ear_nn_session *s = ear_nn_session_create(m, &err);
        if (s) {
            const ear_nn_config *c = ear_nn_model_config(m);
            float *embedding = calloc((size_t)c->embed_dim, sizeof *embedding);
            EAR_FUZZ_REQUIRE(embedding, "out of memory");
            if (c->has_audio) {
                size_t count = ear_nn_model_min_samples(m) + 100;
                float *wave = calloc(count, sizeof *wave);
                EAR_FUZZ_REQUIRE(wave, "out of memory");
                for (size_t i = 0; i < count; i++)
                    wave[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
                (void)ear_nn_embed_audio(s, wave, count, embedding, &err);
                free(wave);
            }
            if (c->has_image) {
                uint8_t rgb[8 * 6 * 3];
                for (size_t i = 0; i < sizeof rgb; i++)
                    rgb[i] = (uint8_t)(i * 29);
                ear_image img = {.width = 8, .height = 6, .rgb = rgb};
                (void)ear_nn_embed_image(s, &img, embedding, &err);
            }
            free(embedding);
            ear_nn_session_free(s);
        }
    }
    ear_nn_model_describe(m, devnull);
    ear_nn_model_free(m);
    close(fd);
    return 0;
}
