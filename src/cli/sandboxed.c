/* Decoding for the commands: in a one-helper sandbox by default, as the
 * service does, so that `ear decode` on a file from the internet is as safe
 * as an upload; in-process with --no-sandbox, to debug a decoder. */
#include "cli/cli.h"

#include "sandbox/sandbox.h"

/* A command decodes one file; a file that is long to decode is not an attack here. */
#define EAR_CLI_DECODE_TIMEOUT_S 300

static ear_sandbox_pool *start_one(ear_error *err)
{
    ear_sandbox_options o;
    ear_sandbox_options_default(&o);
    o.timeout_s = EAR_CLI_DECODE_TIMEOUT_S;
    return ear_sandbox_pool_start(&o, err);
}

int ear_cli_decode_audio(const uint8_t *data, size_t size, const ear_audio_decode_options *o,
                         int sandbox, ear_audio_clip *clip, ear_error *err)
{
    if (!sandbox)
        return ear_audio_decode(data, size, o, clip, err);
    ear_sandbox_pool *pool = start_one(err);
    if (!pool)
        return -1;
    int rc = ear_sandbox_decode_audio(pool, data, size, o, NULL, clip, err);
    ear_sandbox_pool_stop(pool);
    return rc == 0 ? 0 : -1;
}

int ear_cli_decode_image(const uint8_t *data, size_t size, int sandbox, ear_image *img,
                         ear_error *err)
{
    if (!sandbox)
        return ear_image_decode(data, size, img, err);
    ear_sandbox_pool *pool = start_one(err);
    if (!pool)
        return -1;
    int rc = ear_sandbox_decode_image(pool, data, size, NULL, img, err);
    ear_sandbox_pool_stop(pool);
    return rc == 0 ? 0 : -1;
}
