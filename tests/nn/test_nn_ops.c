/* The operators against direct, obviously-right loops (in double), on odd shapes, strides,
 * paddings and tiny inputs; and the fingerprint hash against XXH64's published values. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/fingerprint.h"
#include "nn/ops.h"
#include "test.h"

static uint32_t rng_state = 12345;

static float random_float(void) /* in [-1, 1) */
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) / 8388608.0 - 1.0);
}

static float *random_array(size_t n)
{
    float *a = malloc((n ? n : 1) * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = random_float();
    return a;
}

/* Direct convolution with zero padding. */
static void reference_conv(const ear_nn_conv *c, const float *in, int h, int w, const float *shortcut,
                           int relu, double *out)
{
    int oh = (h + 2 * c->padding - c->kernel) / c->stride + 1;
    int ow = (w + 2 * c->padding - c->kernel) / c->stride + 1;
    for (int o = 0; o < c->out_channels; o++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                double sum = c->bias[o];
                for (int i = 0; i < c->in_channels; i++)
                    for (int ky = 0; ky < c->kernel; ky++)
                        for (int kx = 0; kx < c->kernel; kx++) {
                            int iy = y * c->stride - c->padding + ky;
                            int ix = x * c->stride - c->padding + kx;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                continue;
                            sum += (double)c->weight[((o * c->in_channels + i) * c->kernel + ky) *
                                                         c->kernel + kx] *
                                   in[(i * h + iy) * w + ix];
                        }
                size_t at = ((size_t)o * oh + y) * ow + x;
                if (shortcut)
                    sum += shortcut[at];
                out[at] = relu && sum < 0 ? 0 : sum;
            }
}

/* The backend's convolution (NHWC, weights laid out once) against the same reference: float32
 * within 1e-4 as the CHW one, bfloat16 within its rounding (relative to the outputs' scale);
 * the largest input and a smaller one through one compiled conv. */
static void check_compiled(const ear_nn_conv *c, const float *input, int h, int w,
                           const float *shortcut)
{
    for (int type = EAR_NN_WEIGHTS_F32; type <= EAR_NN_WEIGHTS_BF16; type++) {
        ear_error err;
        ear_nn_conv2d *cc = ear_nn_conv2d_create(c->weight, c->bias, c->in_channels,
                                                 c->out_channels, c->kernel, c->stride,
                                                 c->padding, h, w, (ear_nn_weights)type, &err);
        EAR_CHECK_MSG(cc != NULL, "conv2d: %s", cc ? "" : err.message);
        if (!cc)
            return;
        int sizes[2][2] = {{h, w}, {h > c->kernel ? h - 1 : h, w > c->kernel ? w - 2 : w}};
        void *scratch = malloc(ear_nn_conv2d_scratch_bytes(cc));
        for (int size = 0; size < 2; size++) {
            int ih = sizes[size][0], iw = sizes[size][1];
            int oh = ear_nn_output_size(ih, c->kernel, c->stride, c->padding);
            int ow = ear_nn_output_size(iw, c->kernel, c->stride, c->padding);
            size_t pixels = (size_t)oh * ow, out_count = (size_t)c->out_channels * pixels;
            /* The sub-image: the first ih rows and iw columns, CHW. */
            float *sub = malloc((size_t)c->in_channels * ih * iw * sizeof *sub);
            for (int ch = 0; ch < c->in_channels; ch++)
                for (int y = 0; y < ih; y++)
                    memcpy(sub + ((size_t)ch * ih + y) * iw, input + ((size_t)ch * h + y) * w,
                           (size_t)iw * sizeof *sub);
            float *hwc = malloc((size_t)c->in_channels * ih * iw * sizeof *hwc);
            float *out = malloc(out_count * sizeof *out);
            double *expected = malloc(out_count * sizeof *expected);
            ear_nn_chw_to_hwc(sub, c->in_channels, (size_t)ih * iw, hwc);
            for (int mode = 0; mode < 3; mode++) {
                int relu = mode > 0, accumulate = mode == 2;
                if (accumulate)
                    ear_nn_chw_to_hwc(shortcut, c->out_channels, pixels, out);
                int rc = ear_nn_conv2d_run(cc, hwc, ih, iw, out, accumulate, relu, scratch, &err);
                EAR_CHECK_MSG(rc == 0, "conv2d run: %s", rc ? err.message : "");
                reference_conv(c, sub, ih, iw, accumulate ? shortcut : NULL, relu, expected);
                double worst = 0, square = 0;
                for (int o = 0; o < c->out_channels; o++)
                    for (size_t i = 0; i < pixels; i++) {
                        double e = expected[(size_t)o * pixels + i];
                        double d = fabs(out[i * (size_t)c->out_channels + (size_t)o] - e);
                        worst = d > worst || isnan(d) ? d : worst;
                        square += e * e;
                    }
                double rms = sqrt(square / (double)out_count) + 1e-12;
                double limit = type == EAR_NN_WEIGHTS_F32 ? 1e-4 : 3e-2 * rms;
                EAR_CHECK_MSG(worst <= limit, "%s conv %d->%d k%d s%d on %dx%d, mode %d: max "
                              "|difference| %g (limit %g)", ear_nn_weights_name(type),
                              c->in_channels, c->out_channels, c->kernel, c->stride, ih, iw,
                              mode, worst, limit);
            }
            free(sub);
            free(hwc);
            free(out);
            free(expected);
        }
        /* Refused: an input larger than planned. */
        EAR_CHECK(ear_nn_conv2d_run(cc, input, h + 1, w, NULL, 0, 0, scratch, &err) == -1);
        free(scratch);
        ear_nn_conv2d_free(cc);
    }
}

static void check_conv(int in_channels, int out_channels, int kernel, int stride, int padding,
                       int h, int w)
{
    ear_nn_conv c = {.in_channels = in_channels, .out_channels = out_channels, .kernel = kernel,
                     .stride = stride, .padding = padding};
    float *weight = random_array((size_t)out_channels * in_channels * kernel * kernel);
    float *bias = random_array((size_t)out_channels);
    c.weight = weight;
    c.bias = bias;
    int oh = ear_nn_output_size(h, kernel, stride, padding);
    int ow = ear_nn_output_size(w, kernel, stride, padding);
    EAR_CHECK(oh == (h + 2 * padding - kernel) / stride + 1 && oh >= 1 && ow >= 1);
    size_t out_count = (size_t)out_channels * oh * ow;
    float *input = random_array((size_t)in_channels * h * w);
    size_t scratch_count = ear_nn_conv_scratch_floats(&c, h, w);
    size_t unfolded = (size_t)in_channels * kernel * kernel * oh * ow;
    if (ear_nn_conv_is_pointwise(&c))
        EAR_CHECK(scratch_count == 0);
    else /* whole when it fits the budget, else bands of whole output rows */
        EAR_CHECK_MSG(unfolded <= EAR_NN_SCRATCH_BUDGET
                          ? scratch_count == unfolded
                          : scratch_count <= EAR_NN_SCRATCH_BUDGET &&
                                scratch_count % ((size_t)in_channels * kernel * kernel * ow) == 0,
                      "scratch %zu floats for %zu unfolded", scratch_count, unfolded);
    /* Exactly sized buffers, so that AddressSanitizer sees any write past them. */
    float *scratch = malloc((scratch_count ? scratch_count : 1) * sizeof *scratch);
    float *output = malloc(out_count * sizeof *output);
    float *shortcut = random_array(out_count);
    double *expected = malloc(out_count * sizeof *expected);
    for (int mode = 0; mode < 3; mode++) { /* plain, ReLU, shortcut + ReLU */
        int relu = mode > 0, accumulate = mode == 2;
        if (accumulate)
            memcpy(output, shortcut, out_count * sizeof *output);
        ear_nn_conv_forward(&c, input, h, w, output, scratch, accumulate, relu);
        reference_conv(&c, input, h, w, accumulate ? shortcut : NULL, relu, expected);
        double worst = 0;
        int negatives = 0;
        for (size_t i = 0; i < out_count; i++) {
            double d = fabs(output[i] - expected[i]);
            worst = d > worst || isnan(d) ? d : worst;
            negatives += output[i] < 0;
        }
        EAR_CHECK_MSG(worst < 1e-4, "conv %d->%d k%d s%d p%d on %dx%d, mode %d: max |difference| "
                      "%g", in_channels, out_channels, kernel, stride, padding, h, w, mode, worst);
        if (relu)
            EAR_CHECK_MSG(negatives == 0, "ReLU left %d negative values", negatives);
    }
    check_compiled(&c, input, h, w, shortcut);
    free(weight);
    free(bias);
    free(input);
    free(scratch);
    free(output);
    free(shortcut);
    free(expected);
}

static void check_max_pool(int channels, int h, int w, float offset)
{
    float *input = random_array((size_t)channels * h * w);
    for (int i = 0; i < channels * h * w; i++)
        input[i] += offset; /* all negative with offset -2: padding must never win */
    int oh = ear_nn_output_size(h, 3, 2, 1), ow = ear_nn_output_size(w, 3, 2, 1);
    float *output = malloc((size_t)channels * oh * ow * sizeof *output);
    ear_nn_max_pool(input, channels, h, w, output);
    /* The NHWC one gives the same values, transposed. */
    float *hwc = malloc((size_t)channels * h * w * sizeof *hwc);
    float *hwc_out = malloc((size_t)channels * oh * ow * sizeof *hwc_out);
    float *back = malloc((size_t)channels * oh * ow * sizeof *back);
    ear_nn_chw_to_hwc(input, channels, (size_t)h * w, hwc);
    ear_nn_max_pool_hwc(hwc, channels, h, w, hwc_out);
    ear_nn_chw_to_hwc(output, channels, (size_t)oh * ow, back);
    EAR_CHECK(memcmp(back, hwc_out, (size_t)channels * oh * ow * sizeof *back) == 0);
    float mean_chw[8], mean_hwc[8];
    if (channels <= 8) {
        ear_nn_average_pool(input, channels, (size_t)h * w, mean_chw);
        ear_nn_average_pool_hwc(hwc, channels, (size_t)h * w, mean_hwc);
        EAR_CHECK(memcmp(mean_chw, mean_hwc, (size_t)channels * sizeof *mean_chw) == 0);
    }
    free(hwc);
    free(hwc_out);
    free(back);
    int wrong = 0;
    for (int c = 0; c < channels; c++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                float best = -INFINITY;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        int iy = 2 * y - 1 + ky, ix = 2 * x - 1 + kx;
                        if (iy >= 0 && iy < h && ix >= 0 && ix < w && input[(c * h + iy) * w + ix] > best)
                            best = input[(c * h + iy) * w + ix];
                    }
                wrong += output[(c * oh + y) * ow + x] != best;
            }
    EAR_CHECK_MSG(wrong == 0, "max pool %dx%dx%d: %d values differ", channels, h, w, wrong);
    free(input);
    free(output);
}

static void check_pool_linear_normalize(void)
{
    float input[2 * 6] = {1, 2, 3, 4, 5, 6, -1, -1, -1, -1, -1, 2.5f};
    float pooled[2];
    ear_nn_average_pool(input, 2, 6, pooled);
    EAR_CHECK(fabsf(pooled[0] - 3.5f) < 1e-6f && fabsf(pooled[1] - (-2.5f / 6)) < 1e-6f);

    float weight[3 * 4], bias[3], x[4], y[3];
    for (int i = 0; i < 12; i++)
        weight[i] = random_float();
    for (int i = 0; i < 3; i++)
        bias[i] = random_float();
    for (int i = 0; i < 4; i++)
        x[i] = random_float();
    ear_nn_linear layer = {4, 3, weight, bias};
    for (int relu = 0; relu < 2; relu++) {
        ear_nn_linear_forward(&layer, x, y, relu);
        double worst = 0;
        for (int o = 0; o < 3; o++) {
            double sum = bias[o];
            for (int i = 0; i < 4; i++)
                sum += (double)weight[o * 4 + i] * x[i];
            if (relu && sum < 0)
                sum = 0;
            worst = fmax(worst, fabs(sum - y[o]));
        }
        EAR_CHECK_MSG(worst < 1e-6, "linear (relu %d): max |difference| %g", relu, worst);
    }

    float v[3] = {3, 0, -4};
    ear_nn_l2_normalize(v, 3);
    EAR_CHECK(fabsf(v[0] - 0.6f) < 1e-7f && v[1] == 0 && fabsf(v[2] + 0.8f) < 1e-7f);
    float zero[2] = {0, 0};
    ear_nn_l2_normalize(zero, 2); /* torch divides by max(norm, eps): zeros stay zeros */
    EAR_CHECK(zero[0] == 0 && zero[1] == 0);
}

static uint64_t xxh64(const void *data, size_t size)
{
    ear_nn_xxh64 state;
    ear_nn_xxh64_init(&state, 0);
    ear_nn_xxh64_update(&state, data, size);
    return ear_nn_xxh64_digest(&state);
}

static void check_fingerprint_hash(void)
{
    /* XXH64 values published with xxHash (seed 0). */
    EAR_CHECK(xxh64("", 0) == 0xEF46DB3751D8E999ULL);
    EAR_CHECK(xxh64("abc", 3) == 0x44BC2CF5AD770999ULL);
    const char *spam = "Nobody inspects the spammish repetition";
    EAR_CHECK(xxh64(spam, strlen(spam)) == 0xFBCEA83C8A378BF1ULL);

    /* Any chunking gives the one-call result. */
    uint8_t data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(random_float() * 127 + 128);
    uint64_t whole = xxh64(data, sizeof data);
    static const size_t chunks[] = {1, 7, 31, 32, 33, 100, 999};
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        ear_nn_xxh64 state;
        ear_nn_xxh64_init(&state, 0);
        for (size_t at = 0; at < sizeof data; at += chunks[k])
            ear_nn_xxh64_update(&state, data + at,
                                sizeof data - at < chunks[k] ? sizeof data - at : chunks[k]);
        EAR_CHECK_MSG(ear_nn_xxh64_digest(&state) == whole, "chunks of %zu", chunks[k]);
    }
    data[500] ^= 1;
    EAR_CHECK(xxh64(data, sizeof data) != whole);
}

int main(void)
{
    check_conv(3, 5, 7, 2, 3, 11, 17); /* a stem */
    check_conv(1, 4, 7, 2, 3, 16, 51); /* an audio stem */
    check_conv(1, 4, 7, 2, 3, 1, 1);   /* the smallest input: one output pixel */
    check_conv(4, 6, 3, 1, 1, 9, 5);
    check_conv(4, 6, 3, 2, 1, 8, 13);
    check_conv(2, 3, 3, 2, 1, 2, 3);
    check_conv(8, 4, 1, 1, 0, 6, 7);   /* pointwise: no im2col */
    check_conv(8, 12, 1, 2, 0, 7, 9);  /* a strided downsample */
    check_conv(5, 3, 3, 1, 1, 1, 12);
    check_conv(64, 8, 3, 1, 1, 40, 100); /* over the scratch budget: 10 bands of 4 rows */
    check_conv(3, 4, 7, 2, 3, 130, 150); /* 3 bands, the last one short */
    check_max_pool(3, 7, 10, 0.0f);
    check_max_pool(2, 5, 6, -2.0f);
    check_max_pool(1, 1, 1, -2.0f);
    check_max_pool(4, 2, 2, 0.0f);
    check_pool_linear_normalize();
    check_fingerprint_hash();
    return ear_test_finish();
}
