/* Images in: JPEG and PNG decoded to RGB, then resized, cropped and normalised
 * exactly as ../shared/spec/model-format.md (image tower) says. */
#ifndef EAR_IMAGE_H
#define EAR_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Larger images are refused before any pixel memory is allocated. */
#define EAR_IMAGE_MAX_SIDE 16384
#define EAR_IMAGE_MAX_PIXELS 100000000L
/* The largest crop ear_image_preprocess accepts. */
#define EAR_IMAGE_MAX_CROP 4096

typedef struct ear_image {
    int width, height;
    uint8_t *rgb; /* width * height * 3 bytes, interleaved RGB, malloc'd */
    /* For a PNG with alpha (RGBA, gray+alpha, palette with tRNS): the colour with the alpha
     * dropped, as PIL's convert("RGB") gives it (what the original's model saw); else NULL. */
    uint8_t *rgb_alpha_dropped;
} ear_image;

/* Decodes a JPEG or PNG held in memory (type found from the bytes) to RGB:
 * gray replicated, alpha composited over white, 16-bit reduced to 8, pixel for
 * pixel as PIL does. On failure img is left zeroed and nothing is allocated. */
int ear_image_decode(const uint8_t *data, size_t size, ear_image *img, ear_error *err);

/* Frees the pixels of an image (safe on a zeroed image). */
void ear_image_free(ear_image *img);

/* Resize (shorter side to size, antialiased bilinear as PyTorch), centre crop
 * size x size, (x/255 - mean) / std: out is CHW float [3][size][size], size from
 * 1 to EAR_IMAGE_MAX_CROP. */
int ear_image_preprocess(const ear_image *img, int size, const float mean[3], const float std[3],
                         float *out, ear_error *err);

/* As torchvision's transforms on a PIL image (ResNet50_Weights.IMAGENET1K_V2.transforms()):
 * PIL's convert("RGB") (alpha dropped), the shorter side to resize with PIL's antialiased
 * bilinear resample in 8-bit fixed point (libImaging/Resample.c, horizontal pass first, rounded
 * to 8 bits between the passes), centre crop crop x crop (Python's round), x / 255, then
 * (x - mean) / std: out is CHW float [3][crop][crop]. crop <= resize <= EAR_IMAGE_MAX_CROP. */
int ear_image_preprocess_pil(const ear_image *img, int resize, int crop, const float mean[3],
                             const float std[3], float *out, ear_error *err);

#endif
