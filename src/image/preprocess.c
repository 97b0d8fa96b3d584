/* Resize, centre crop and normalise, as the reference does with
 * torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
 * antialias=True) on float pixels x / 255.
 *
 * PyTorch (1.13, aten/src/ATen/native/cpu/UpSampleKernel.cpp) resizes one axis at
 * a time, width first, each output sample a normalised triangle-filter sum over
 * its source span. The weights here follow its float / double mix expression by
 * expression, and the sums run in the same order, so results agree to float
 * rounding. Only the columns and rows that survive the crop are computed. */
#include "image/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* For each output sample of one axis: where its span starts, how long it is, and
 * its weights (stride taps per sample). */
typedef struct axis_filter {
    int *first;
    int *count;
    float *weights;
    int taps;
} axis_filter;

static void axis_filter_free(axis_filter *f)
{
    free(f->first);
    free(f->count);
    free(f->weights);
    memset(f, 0, sizeof *f);
}

static float triangle(float x)
{
    if (x < 0.0f)
        x = -x;
    return x < 1.0f ? (float)(1.0 - x) : 0.0f;
}

/* The filters of outputs [start, start + n) when input_size samples are resized
 * to output_size (HelperInterpLinear::_compute_indices_weights_aa). */
static int axis_filter_build(int input_size, long output_size, long start, int n, axis_filter *f,
                             ear_error *err)
{
    memset(f, 0, sizeof *f);
    float scale = (float)input_size / (float)output_size;
    /* Downscaling widens the triangle by the scale factor: the antialiasing. */
    float support = scale >= 1.0f ? scale : 1.0f;
    float inverse_scale = scale >= 1.0f ? (float)(1.0 / (double)scale) : 1.0f;
    f->taps = (int)ceilf(support) * 2 + 1;
    f->first = malloc((size_t)n * sizeof *f->first);
    f->count = malloc((size_t)n * sizeof *f->count);
    f->weights = malloc((size_t)n * (size_t)f->taps * sizeof *f->weights);
    if (!f->first || !f->count || !f->weights) {
        axis_filter_free(f);
        return ear_error_set(err, "out of memory for resize weights (%d x %d)", n, f->taps);
    }
    for (int k = 0; k < n; k++) {
        long i = start + k;
        float center = (float)((double)scale * ((double)i + 0.5));
        long first = (long)((double)(center - support) + 0.5);
        long end = (long)((double)(center + support) + 0.5);
        if (first < 0)
            first = 0;
        if (end > input_size)
            end = input_size;
        int count = (int)(end - first);
        if (count > f->taps)
            count = f->taps; /* cannot happen; keeps the writes in bounds regardless */
        float *w = f->weights + (size_t)k * (size_t)f->taps;
        float total = 0.0f;
        for (int j = 0; j < count; j++) {
            float offset = (float)(j + first) - center;
            w[j] = triangle((float)(((double)offset + 0.5) * (double)inverse_scale));
            total += w[j];
        }
        if (total != 0.0f)
            for (int j = 0; j < count; j++)
                w[j] /= total;
        f->first[k] = (int)first;
        f->count[k] = count;
    }
    return 0;
}

/* Python's round() of half an integer: halves go to the even neighbour. */
static long half_rounded_to_even(long twice)
{
    long half = twice / 2;
    if (twice % 2 != 0 && half % 2 != 0)
        half++;
    return half;
}

int ear_image_preprocess(const ear_image *img, int size, const float mean[3], const float std[3],
                         float *out, ear_error *err)
{
    axis_filter columns = {0}, rows = {0};
    float *band = NULL;
    int rc = -1;
    if (!img || !img->rgb || img->width < 1 || img->height < 1) {
        ear_error_set(err, "no image to preprocess");
        goto fail;
    }
    if (size < 1 || size > EAR_IMAGE_MAX_CROP) {
        ear_error_set(err, "crop size %d out of range (1 to %d)", size, EAR_IMAGE_MAX_CROP);
        goto fail;
    }
    if (!mean || !std || !out) {
        ear_error_set(err, "preprocess needs mean, std and an output buffer");
        goto fail;
    }
    for (int c = 0; c < 3; c++) {
        if (!isfinite(mean[c]) || !isfinite(std[c]) || std[c] == 0.0f) {
            ear_error_set(err, "bad normalisation for channel %d (mean %g, std %g)", c,
                          (double)mean[c], (double)std[c]);
            goto fail;
        }
    }
    const long width = img->width, height = img->height;
    /* Python: int(size * long / short), a true division then truncation. */
    long resized_width, resized_height;
    if (height <= width) {
        resized_height = size;
        resized_width = (long)((double)((long)size * width) / (double)height);
    } else {
        resized_width = size;
        resized_height = (long)((double)((long)size * height) / (double)width);
    }
    long top = half_rounded_to_even(resized_height - size);
    long left = half_rounded_to_even(resized_width - size);
    if (axis_filter_build(img->width, resized_width, left, size, &columns, err) != 0 ||
        axis_filter_build(img->height, resized_height, top, size, &rows, err) != 0)
        goto fail;

    /* The source rows the kept output rows read, resized across first. */
    int band_first = rows.first[0], band_end = rows.first[0] + rows.count[0];
    for (int k = 1; k < size; k++) {
        if (rows.first[k] < band_first)
            band_first = rows.first[k];
        if (rows.first[k] + rows.count[k] > band_end)
            band_end = rows.first[k] + rows.count[k];
    }
    int band_rows = band_end - band_first;
    band = malloc((size_t)band_rows * (size_t)size * 3 * sizeof *band);
    if (!band) {
        ear_error_set(err, "out of memory resizing a %ld x %ld image", width, height);
        goto fail;
    }
    float unit[256];
    for (int v = 0; v < 256; v++)
        unit[v] = (float)v / 255.0f;

    for (int y = 0; y < band_rows; y++) {
        const uint8_t *source = img->rgb + (size_t)(band_first + y) * (size_t)width * 3;
        float *target = band + (size_t)y * (size_t)size * 3;
        for (int k = 0; k < size; k++) {
            const uint8_t *span = source + (size_t)columns.first[k] * 3;
            const float *w = columns.weights + (size_t)k * (size_t)columns.taps;
            for (int c = 0; c < 3; c++) {
                float sum = unit[span[c]] * w[0];
                for (int j = 1; j < columns.count[k]; j++)
                    sum += unit[span[3 * j + c]] * w[j];
                target[3 * k + c] = sum;
            }
        }
    }

    const size_t plane = (size_t)size * (size_t)size;
    for (int k = 0; k < size; k++) {
        const float *w = rows.weights + (size_t)k * (size_t)rows.taps;
        const float *span = band + (size_t)(rows.first[k] - band_first) * (size_t)size * 3;
        for (int x = 0; x < size; x++) {
            for (int c = 0; c < 3; c++) {
                float sum = span[3 * x + c] * w[0];
                for (int j = 1; j < rows.count[k]; j++)
                    sum += span[(size_t)j * (size_t)size * 3 + (size_t)(3 * x + c)] * w[j];
                out[(size_t)c * plane + (size_t)k * (size_t)size + (size_t)x] =
                    (sum - mean[c]) / std[c];
            }
        }
    }
    rc = 0;
fail:
    axis_filter_free(&columns);
    axis_filter_free(&rows);
    free(band);
    return rc;
}
