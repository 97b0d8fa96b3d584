/* PIL's Image.resize(BILINEAR) as Pillow 9 computes it (libImaging/Resample.c): per axis,
 * each output sample a triangle filter widened by the scale (the antialiasing), weights in
 * double, normalised, then turned into 22-bit fixed point; the horizontal pass first, its
 * result rounded and clipped to 8 bits, then the vertical pass. Only the outputs that
 * survive the centre crop are computed (each output sample depends on its own weights only,
 * so the subset is exact). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

#define PRECISION_BITS (32 - 8 - 2)

typedef struct pil_axis {
    int *first, *count;
    int32_t *weights;
    int taps;
} pil_axis;

static void pil_axis_free(pil_axis *a)
{
    free(a->first);
    free(a->count);
    free(a->weights);
}

static double triangle(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* precompute_coeffs + normalize_coeffs_8bpc for outputs [start, start + n). */
static int pil_axis_build(int in_size, int out_size, int start, int n, pil_axis *a)
{
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    a->taps = (int)ceil(support) * 2 + 1;
    a->first = malloc((size_t)n * sizeof *a->first);
    a->count = malloc((size_t)n * sizeof *a->count);
    a->weights = malloc((size_t)n * (size_t)a->taps * sizeof *a->weights);
    double *k = malloc((size_t)a->taps * sizeof *k);
    if (!a->first || !a->count || !a->weights || !k) {
        free(k);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int xx = start + i;
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0)
            xmin = 0;
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        if (xmax > a->taps)
            xmax = a->taps; /* cannot happen; keeps the writes in bounds regardless */
        for (int x = 0; x < xmax; x++) {
            k[x] = triangle((x + xmin - center + 0.5) * ss);
            ww += k[x];
        }
        int32_t *w = a->weights + (size_t)i * (size_t)a->taps;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? k[x] / ww : k[x];
            w[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        a->first[i] = xmin;
        a->count[i] = xmax;
    }
    free(k);
    return 0;
}

static uint8_t clip8(int64_t v)
{
    if (v >= ((int64_t)1 << PRECISION_BITS << 8))
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

/* Python's round() of half an integer: halves go to the even neighbour. */
static long half_to_even(long twice)
{
    long q = twice / 2;
    if (twice % 2 != 0 && q % 2 != 0)
        q++;
    return q;
}

int ear_image_preprocess_pil(const ear_image *img, int resize, int crop, const float mean[3],
                             const float std[3], float *out, ear_error *err)
{
    if (!img || !img->rgb || img->width < 1 || img->height < 1)
        return ear_error_set(err, "no image");
    if (crop < 1 || resize < crop || resize > EAR_IMAGE_MAX_CROP)
        return ear_error_set(err, "resize %d / crop %d out of range (1 <= crop <= resize <= %d)",
                             resize, crop, EAR_IMAGE_MAX_CROP);
    const uint8_t *rgb = img->rgb_alpha_dropped ? img->rgb_alpha_dropped : img->rgb;
    long w = img->width, h = img->height, new_w, new_h;
    /* torchvision's _compute_resized_output_size: int(size * long / short). */
    if (w <= h) {
        new_w = resize;
        new_h = (long)((double)resize * (double)h / (double)w);
    } else {
        new_h = resize;
        new_w = (long)((double)resize * (double)w / (double)h);
    }
    if (new_w > EAR_IMAGE_MAX_SIDE * 16L || new_h > EAR_IMAGE_MAX_SIDE * 16L)
        return ear_error_set(err, "image %ldx%ld too elongated to resize", w, h);
    long top = half_to_even(new_h - crop), left = half_to_even(new_w - crop);
    pil_axis cols = {0}, rows = {0};
    uint8_t *band = NULL;
    int rc = -1;
    if (pil_axis_build((int)w, (int)new_w, (int)left, crop, &cols) != 0 ||
        pil_axis_build((int)h, (int)new_h, (int)top, crop, &rows) != 0) {
        ear_error_set(err, "out of memory for resize weights");
        goto done;
    }
    int y_first = rows.first[0], y_last = rows.first[0] + rows.count[0];
    for (int k = 1; k < crop; k++) {
        if (rows.first[k] < y_first)
            y_first = rows.first[k];
        if (rows.first[k] + rows.count[k] > y_last)
            y_last = rows.first[k] + rows.count[k];
    }
    size_t band_rows = (size_t)(y_last - y_first);
    band = malloc((band_rows ? band_rows : 1) * (size_t)crop * 3);
    if (!band) {
        ear_error_set(err, "out of memory for a %d-wide resize band", crop);
        goto done;
    }
    /* Horizontal pass: source rows [y_first, y_last), the crop's columns, 8-bit results. */
    for (size_t y = 0; y < band_rows; y++) {
        const uint8_t *src = rgb + ((size_t)y_first + y) * (size_t)w * 3;
        uint8_t *dst = band + y * (size_t)crop * 3;
        for (int k = 0; k < crop; k++) {
            const int32_t *wt = cols.weights + (size_t)k * (size_t)cols.taps;
            const uint8_t *span = src + (size_t)cols.first[k] * 3;
            for (int c = 0; c < 3; c++) {
                int64_t ss = 1 << (PRECISION_BITS - 1);
                for (int j = 0; j < cols.count[k]; j++)
                    ss += (int64_t)span[3 * j + c] * wt[j];
                dst[3 * k + c] = clip8(ss);
            }
        }
    }
    /* Vertical pass, then x / 255 and the normalisation (torch's float order). */
    size_t plane = (size_t)crop * (size_t)crop;
    for (int k = 0; k < crop; k++) {
        const int32_t *wt = rows.weights + (size_t)k * (size_t)rows.taps;
        const uint8_t *span = band + (size_t)(rows.first[k] - y_first) * (size_t)crop * 3;
        for (int x = 0; x < crop; x++)
            for (int c = 0; c < 3; c++) {
                int64_t ss = 1 << (PRECISION_BITS - 1);
                for (int j = 0; j < rows.count[k]; j++)
                    ss += (int64_t)span[(size_t)j * (size_t)crop * 3 + (size_t)(3 * x + c)] *
                          wt[j];
                float v = (float)clip8(ss) / 255.0f;
                out[(size_t)c * plane + (size_t)k * (size_t)crop + (size_t)x] =
                    (v - mean[c]) / std[c];
            }
    }
    rc = 0;
done:
    free(band);
    pil_axis_free(&cols);
    pil_axis_free(&rows);
    return rc;
}
