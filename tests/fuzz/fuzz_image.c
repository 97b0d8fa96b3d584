/* ear_image_decode (JPEG, PNG) on arbitrary bytes, then the preprocessing the
 * image tower runs on what was decoded. */
#include "fuzz.h"
#include "image/image.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ear_image img = {0};
    ear_error err = {{0}};
    if (ear_image_decode(data, size, &img, &err) != 0) {
        EAR_FUZZ_REQUIRE(img.rgb == NULL && err.message[0], "a failure must say why");
        return 0;
    }
    EAR_FUZZ_REQUIRE(img.width > 0 && img.height > 0 && img.rgb, "a decoded image has pixels");
    /* Big images are legal but slow to resize; the decode was the point. */
    if ((long)img.width * img.height <= 512L * 512) {
        static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        static float out[3 * 16 * 16];
        EAR_FUZZ_REQUIRE(ear_image_preprocess(&img, 16, mean, std, out, &err) == 0,
                         "a decoded image can be preprocessed");
    }
    ear_image_free(&img);
    return 0;
}
