/* The helper protocol as the service reads it: a helper taken over by a
 * crafted file may answer anything, so ear_sandbox_reply_read gets arbitrary
 * bytes for a reply. The first byte picks the request it answers (audio with
 * or without a cap, or an image); the same bytes are also checked as a
 * request, as a helper reads one. */
#include <string.h>

#include "fuzz.h"
#include "sandbox/protocol.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

typedef struct memory {
    const uint8_t *data;
    size_t size, position;
} memory;

static int memory_read(void *context, void *buffer, size_t size, ear_error *err)
{
    memory *m = context;
    if (size > m->size - m->position)
        return ear_error_set(err, "the decoder stopped answering");
    memcpy(buffer, m->data + m->position, size);
    m->position += size;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    ear_error err = {{0}};
    if (size > sizeof(ear_sandbox_request)) {
        ear_sandbox_request q;
        memcpy(&q, data + 1, sizeof q);
        (void)ear_sandbox_request_check(&q, &err);
    }
    ear_sandbox_request q = {.magic = EAR_SANDBOX_MAGIC_REQUEST, .size = 1};
    switch (data[0] % 3) {
    case 0: q.kind = EAR_SANDBOX_JOB_AUDIO, q.rate = 16000, q.max_seconds = 60; break;
    case 1: q.kind = EAR_SANDBOX_JOB_AUDIO, q.rate = 8000, q.max_seconds = 0; break;
    default: q.kind = EAR_SANDBOX_JOB_IMAGE; break;
    }
    EAR_FUZZ_REQUIRE(ear_sandbox_request_check(&q, &err) == 0, "the fuzzer's own request is valid");
    memory m = {data + 1, size - 1, 0};
    ear_audio_clip clip;
    ear_image img;
    int retire = 0;
    int rc = ear_sandbox_reply_read(memory_read, &m, &q, &clip, &img, &retire, &err);
    EAR_FUZZ_REQUIRE(rc == 0 || rc == EAR_SANDBOX_REFUSED || rc == EAR_SANDBOX_KILLED,
                     "a reply is read, refused or rejected");
    if (rc != 0) {
        EAR_FUZZ_REQUIRE(clip.samples == NULL && img.rgb == NULL && err.message[0],
                         "a rejected reply leaves nothing and says why");
        for (const char *p = err.message; *p; p++)
            EAR_FUZZ_REQUIRE(*p >= 0x20 && *p < 0x7f, "the reason is printable");
        return 0;
    }
    if (q.kind == EAR_SANDBOX_JOB_AUDIO) {
        EAR_FUZZ_REQUIRE(clip.count > 0 && clip.sample_rate == (int)q.rate,
                         "a clip at the asked rate");
        EAR_FUZZ_REQUIRE(q.max_seconds <= 0 || clip.count <= (size_t)(q.max_seconds * q.rate),
                         "a clip within the cap");
        ear_audio_clip_free(&clip);
    } else {
        EAR_FUZZ_REQUIRE(img.width > 0 && img.height > 0 && img.rgb, "an image with pixels");
        ear_image_free(&img);
    }
    return 0;
}
