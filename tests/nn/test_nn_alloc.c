/* Nothing is allocated per request: once a session exists and each input size has been seen
 * once (the backend makes a convolution's primitive on the first input of a new size and
 * keeps it, as a JIT cache), embedding a clip (log-mel and every layer), a log-mel or
 * preprocessed pixels calls no allocator. The test is linked with
 * --wrap for malloc, calloc, realloc and posix_memalign, so every call from Ear's code
 * passes through the counters below. */
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#include "nn_check.h"

static long allocations;

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *p, size_t size);
int __real_posix_memalign(void **p, size_t alignment, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t count, size_t size);
void *__wrap_realloc(void *p, size_t size);
int __wrap_posix_memalign(void **p, size_t alignment, size_t size);

void *__wrap_malloc(size_t size)
{
    allocations++;
    return __real_malloc(size);
}

void *__wrap_calloc(size_t count, size_t size)
{
    allocations++;
    return __real_calloc(count, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    allocations++;
    return __real_realloc(p, size);
}

int __wrap_posix_memalign(void **p, size_t alignment, size_t size)
{
    allocations++;
    return __real_posix_memalign(p, alignment, size);
}

int main(void)
{
    char path[1024];
    nn_fixture(path, sizeof path, "nn_bottleneck_f16.safetensors");
    ear_error err = {{0}};
    allocations = 0;
    ear_nn_model *model = ear_nn_model_load(path, &err);
    ear_nn_session *session = model ? ear_nn_session_create(model, &err) : NULL;
    EAR_CHECK_MSG(session != NULL, "%s", err.message);
    EAR_CHECK_MSG(allocations > 0, "the counters see no allocation at all: not wrapped?");
    float *wave = nn_load_npy("nn_wave_9100.npy", 9100);
    float *mel = nn_load_npy("nn_bottleneck_f16_mel_9100.npy", 16 * 51);
    float *pixels = nn_load_npy("nn_bottleneck_f16_pixels.npy", 3 * 40 * 40);
    if (session && wave && mel && pixels) {
        float embedding[12];
        for (int round = 0; round < 4; round++) {
            if (round == 1) /* after the first of each size */
                allocations = 0;
            EAR_CHECK(ear_nn_embed_audio(session, wave, 9100, embedding, &err) == 0);
            EAR_CHECK(ear_nn_embed_audio(session, wave, 2000, embedding, &err) == 0);
            EAR_CHECK(ear_nn_embed_mel(session, mel, 51, embedding, &err) == 0);
            EAR_CHECK(ear_nn_embed_pixels(session, pixels, embedding, &err) == 0);
        }
        EAR_CHECK_MSG(allocations == 0, "%ld allocations while embedding", allocations);
    }
    free(wave);
    free(mel);
    free(pixels);
    ear_nn_session_free(session);
    ear_nn_model_free(model);
    return ear_test_finish();
}
