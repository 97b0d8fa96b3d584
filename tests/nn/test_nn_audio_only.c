/* ear_nn_model_load_audio (what `ear serve` loads): the same fingerprint and the same audio
 * embeddings, bit for bit, as the full load; no image tower afterwards, and a smaller arena;
 * the same refusals as the full load; a model without an audio tower loads in full. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#include "nn_check.h"

static void check_model(const char *model_name)
{
    char path[1024], name[256];
    snprintf(name, sizeof name, "nn_%s.safetensors", model_name);
    nn_fixture(path, sizeof path, name);
    ear_error err = {{0}};
    ear_nn_model *full = ear_nn_model_load(path, &err);
    EAR_CHECK_MSG(full != NULL, "%s: %s", model_name, err.message);
    ear_nn_model *audio = ear_nn_model_load_audio(path, &err);
    EAR_CHECK_MSG(audio != NULL, "%s: %s", model_name, err.message);
    ear_nn_session *a = full ? ear_nn_session_create(full, &err) : NULL;
    ear_nn_session *b = audio ? ear_nn_session_create(audio, &err) : NULL;
    EAR_CHECK_MSG(a && b, "%s: %s", model_name, err.message);
    if (!a || !b)
        goto done;
    EAR_CHECK(strcmp(ear_nn_model_fingerprint(full), ear_nn_model_fingerprint(audio)) == 0);
    EAR_CHECK(ear_nn_model_config(full)->has_image && ear_nn_model_config(full)->has_audio);
    EAR_CHECK(!ear_nn_model_config(audio)->has_image && ear_nn_model_config(audio)->has_audio);
    EAR_CHECK_MSG(ear_nn_session_bytes(b) < ear_nn_session_bytes(a), "%s: arena %zu vs %zu",
                  model_name, ear_nn_session_bytes(b), ear_nn_session_bytes(a));

    /* Two lengths: one segment, and several (averaged). */
    static const size_t lengths[2] = {2500, 9100};
    for (int k = 0; k < 2; k++) {
        snprintf(name, sizeof name, "nn_wave_%zu.npy", lengths[k]);
        float *wave = nn_load_npy(name, lengths[k]);
        int dim = ear_nn_model_config(full)->embed_dim;
        float *x = calloc((size_t)dim, sizeof *x), *y = calloc((size_t)dim, sizeof *y);
        EAR_CHECK(x && y);
        if (wave && x && y) {
            EAR_CHECK(ear_nn_embed_audio(a, wave, lengths[k], x, &err) == 0);
            EAR_CHECK(ear_nn_embed_audio(b, wave, lengths[k], y, &err) == 0);
            EAR_CHECK_MSG(memcmp(x, y, (size_t)dim * sizeof *x) == 0,
                          "%s: the audio-only embedding differs", model_name);
        }
        free(x);
        free(y);
        free(wave);
    }
    /* Refused before it reads a pixel or writes an output. */
    float pixels[1] = {0}, out[1];
    EAR_CHECK(ear_nn_embed_pixels(b, pixels, out, &err) != 0 &&
              strstr(err.message, "no image tower"));
done:
    ear_nn_session_free(a);
    ear_nn_session_free(b);
    ear_nn_model_free(full);
    ear_nn_model_free(audio);
}

int main(void)
{
    check_model("basic_f32");
    check_model("bottleneck_f16");

    /* No audio tower: everything is loaded, as ear_nn_model_load does. */
    char path[1024];
    nn_fixture(path, sizeof path, "nn_image_f32.safetensors");
    ear_error err = {{0}};
    ear_nn_model *m = ear_nn_model_load_audio(path, &err);
    EAR_CHECK_MSG(m && ear_nn_model_config(m)->has_image && !ear_nn_model_config(m)->has_audio,
                  "%s", err.message);
    ear_nn_model_free(m);

    /* Refused like the full load: a missing file, and a file that is not a model. */
    EAR_CHECK(ear_nn_model_load_audio("/nonexistent/model.safetensors", &err) == NULL &&
              err.message[0]);
    nn_fixture(path, sizeof path, "nn_basic_f32_audio.npy");
    EAR_CHECK(ear_nn_model_load_audio(path, &err) == NULL && err.message[0]);
    return ear_test_finish();
}
