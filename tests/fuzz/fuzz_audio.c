/* ear_audio_decode on arbitrary bytes: what a client's upload reaches first. */
#include <libavutil/mem.h>

#include "audio/audio.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* As the service's decoding helpers do (src/sandbox/helper.c): a container claiming a
     * huge chunk (RIFF LIST/INFO, ID3, ...) makes FFmpeg allocate what it claims; the helpers
     * bound that with av_max_alloc and their RLIMIT_AS, and so does this in-process target. */
    av_max_alloc((size_t)64 << 20);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ear_audio_decode_options o;
    ear_audio_decode_options_default(&o);
    /* A short cap keeps each run fast; the cut itself is a path worth fuzzing. */
    o.max_seconds = 5;
    ear_audio_clip clip = {0};
    ear_error err = {{0}};
    if (ear_audio_decode(data, size, &o, &clip, &err) == 0) {
        /* Read every sample: a buffer shorter than count shows up under ASan.
         * (Float PCM may hold any value, so the values themselves prove nothing.) */
        EAR_FUZZ_REQUIRE(clip.sample_rate == o.sample_rate, "the requested rate");
        volatile float sink = 0;
        for (size_t i = 0; i < clip.count; i++)
            sink += clip.samples[i];
        (void)sink;
    } else {
        EAR_FUZZ_REQUIRE(clip.samples == NULL && err.message[0], "a failure must say why");
    }
    ear_audio_clip_free(&clip);
    return 0;
}
