/* Whole image embeddings equal the seed service's embed_image (PIL decode, alpha over white,
 * antialiased resize, centre crop, normalise, encoder, head): a non-square RGBA PNG and a
 * portrait JPEG, through src/image's decoder and preprocessing and the model. */
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "nn/nn.h"
#include "nn_check.h"

static const char *const models[] = {"basic_f32", "bottleneck_f16", "image_f32"};
static const char *const images[] = {"nn_alpha.png", "nn_photo.jpg"};

static void check_model(const char *model_name)
{
    char path[1024], name[256];
    snprintf(name, sizeof name, "nn_%s.safetensors", model_name);
    nn_fixture(path, sizeof path, name);
    ear_error err = {{0}};
    ear_nn_model *model = ear_nn_model_load(path, &err);
    ear_nn_session *session = model ? ear_nn_session_create(model, &err) : NULL;
    EAR_CHECK_MSG(session != NULL, "%s: %s", model_name, err.message);
    int dim = model ? ear_nn_model_config(model)->embed_dim : 0;
    snprintf(name, sizeof name, "nn_%s_image.npy", model_name);
    float *expected = session ? nn_load_npy(name, 2 * (size_t)dim) : NULL;
    for (int i = 0; expected && i < 2; i++) {
        nn_fixture(path, sizeof path, images[i]);
        size_t size = 0;
        uint8_t *bytes = ear_file_read(path, 1 << 20, &size, &err);
        EAR_CHECK_MSG(bytes != NULL, "%s", err.message);
        ear_image img = {0};
        if (bytes && ear_image_decode(bytes, size, &img, &err) != 0)
            EAR_CHECK_MSG(0, "%s: %s", images[i], err.message);
        float got[64];
        if (img.rgb) {
            int rc = ear_nn_embed_image(session, &img, got, &err);
            EAR_CHECK_MSG(rc == 0, "%s %s: %s", model_name, images[i], err.message);
            snprintf(name, sizeof name, "%s, %s", model_name, images[i]);
            if (rc == 0)
                nn_check_close(name, got, expected + i * dim, dim);
        }
        ear_image_free(&img);
        free(bytes);
    }
    free(expected);
    ear_nn_session_free(session);
    ear_nn_model_free(model);
}

int main(void)
{
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        check_model(models[i]);

    /* An audio-only model has no image tower to run. */
    char path[1024];
    nn_fixture(path, sizeof path, "nn_audio_bf16.safetensors");
    ear_error err = {{0}};
    ear_nn_model *model = ear_nn_model_load(path, &err);
    ear_nn_session *session = model ? ear_nn_session_create(model, &err) : NULL;
    EAR_CHECK_MSG(session != NULL, "%s", err.message);
    if (session) {
        uint8_t rgb[3 * 4] = {0};
        ear_image img = {.width = 2, .height = 2, .rgb = rgb};
        float got[16];
        EAR_CHECK(ear_nn_embed_image(session, &img, got, &err) == -1);
        EAR_CHECK_MSG(strstr(err.message, "no image tower") != NULL, "message: %s", err.message);
    }
    ear_nn_session_free(session);
    ear_nn_model_free(model);
    return ear_test_finish();
}
