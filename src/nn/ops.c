#include "nn/ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Output rows whose im2col columns fit the scratch budget (at least one row). */
static int chunk_rows(const ear_nn_conv *conv, int out_height, int out_width)
{
    size_t row = (size_t)conv->in_channels * (size_t)(conv->kernel * conv->kernel) *
                 (size_t)out_width;
    size_t rows = EAR_NN_SCRATCH_BUDGET / row;
    if (rows < 1)
        rows = 1;
    return rows < (size_t)out_height ? (int)rows : out_height;
}

size_t ear_nn_conv_scratch_floats(const ear_nn_conv *conv, int height, int width)
{
    if (ear_nn_conv_is_pointwise(conv))
        return 0;
    int oh = ear_nn_output_size(height, conv->kernel, conv->stride, conv->padding);
    int ow = ear_nn_output_size(width, conv->kernel, conv->stride, conv->padding);
    return (size_t)conv->in_channels * (size_t)(conv->kernel * conv->kernel) *
           (size_t)chunk_rows(conv, oh, ow) * (size_t)ow;
}

/* First and one-past-last output column whose input column ow * stride - padding + offset
 * lies inside [0, width). */
static void valid_columns(int width, int out_width, int stride, int padding, int offset,
                          int *first, int *last)
{
    int shift = padding - offset; /* input column = ow * stride - shift */
    int lo = shift > 0 ? (shift + stride - 1) / stride : 0;
    int top = width - 1 + shift;
    int hi = top < 0 ? 0 : top / stride + 1;
    if (hi > out_width)
        hi = out_width;
    if (lo > hi)
        lo = hi;
    *first = lo;
    *last = hi;
}

/* Unfolds output rows [first_row, first_row + rows) so that the convolution becomes one
 * matrix product: row (c, ki, kj) of col holds, for each of those output pixels, the input
 * pixel under kernel tap (ki, kj) of channel c (zero in the padding). */
static void im2col(const float *input, int channels, int height, int width, int kernel,
                   int stride, int padding, int first_row, int rows, int out_width, float *col)
{
    size_t plane = (size_t)rows * (size_t)out_width;
    for (int c = 0; c < channels; c++) {
        const float *channel = input + (size_t)c * (size_t)height * (size_t)width;
        for (int ki = 0; ki < kernel; ki++) {
            for (int kj = 0; kj < kernel; kj++) {
                float *row = col + ((size_t)(c * kernel + ki) * (size_t)kernel + (size_t)kj) * plane;
                int first, last;
                valid_columns(width, out_width, stride, padding, kj, &first, &last);
                for (int r = 0; r < rows; r++) {
                    float *dst = row + (size_t)r * (size_t)out_width;
                    int ih = (first_row + r) * stride - padding + ki;
                    if (ih < 0 || ih >= height) {
                        memset(dst, 0, (size_t)out_width * sizeof *dst);
                        continue;
                    }
                    const float *src = channel + (size_t)ih * (size_t)width;
                    if (first > 0)
                        memset(dst, 0, (size_t)first * sizeof *dst);
                    if (stride == 1) {
                        memcpy(dst + first, src + first - padding + kj,
                               (size_t)(last - first) * sizeof *dst);
                    } else {
                        const float *s = src + first * stride - padding + kj;
                        for (int ow = first; ow < last; ow++, s += stride)
                            dst[ow] = *s;
                    }
                    if (last < out_width)
                        memset(dst + last, 0, (size_t)(out_width - last) * sizeof *dst);
                }
            }
        }
    }
}

/* Adds the bias to columns [first, first + count) of every output channel, then ReLU. */
static void add_bias(const ear_nn_conv *conv, float *output, size_t pixels, size_t first,
                     size_t count, int relu)
{
    for (int o = 0; o < conv->out_channels; o++) {
        float *row = output + (size_t)o * pixels + first;
        float bias = conv->bias[o];
        if (relu) {
            for (size_t i = 0; i < count; i++) {
                float v = row[i] + bias;
                row[i] = v > 0.0f ? v : 0.0f;
            }
        } else {
            for (size_t i = 0; i < count; i++)
                row[i] += bias;
        }
    }
}

void ear_nn_conv_forward(const ear_nn_conv *conv, const float *input, int height, int width,
                         float *output, float *scratch, int accumulate, int relu)
{
    int out_height = ear_nn_output_size(height, conv->kernel, conv->stride, conv->padding);
    int out_width = ear_nn_output_size(width, conv->kernel, conv->stride, conv->padding);
    int pixels = out_height * out_width;
    int depth = conv->in_channels * conv->kernel * conv->kernel;
    float beta = accumulate ? 1.0f : 0.0f;
    if (ear_nn_conv_is_pointwise(conv)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, conv->out_channels, pixels, depth,
                    1.0f, conv->weight, depth, input, pixels, beta, output, pixels);
        add_bias(conv, output, (size_t)pixels, 0, (size_t)pixels, relu);
        return;
    }
    /* A band of output rows at a time: its columns stay in cache from im2col to the product,
     * and the scratch stays small whatever the image size. */
    int rows = chunk_rows(conv, out_height, out_width);
    for (int first = 0; first < out_height; first += rows) {
        int count = out_height - first < rows ? out_height - first : rows;
        int columns = count * out_width;
        im2col(input, conv->in_channels, height, width, conv->kernel, conv->stride,
               conv->padding, first, count, out_width, scratch);
        float *band = output + (size_t)first * (size_t)out_width;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, conv->out_channels, columns, depth,
                    1.0f, conv->weight, depth, scratch, columns, beta, band, pixels);
        add_bias(conv, output, (size_t)pixels, (size_t)first * (size_t)out_width,
                 (size_t)columns, relu);
    }
}

void ear_nn_max_pool(const float *input, int channels, int height, int width, float *output)
{
    int out_height = ear_nn_output_size(height, 3, 2, 1);
    int out_width = ear_nn_output_size(width, 3, 2, 1);
    for (int c = 0; c < channels; c++) {
        const float *in = input + (size_t)c * (size_t)height * (size_t)width;
        float *out = output + (size_t)c * (size_t)out_height * (size_t)out_width;
        for (int oh = 0; oh < out_height; oh++) {
            int h0 = oh * 2 - 1, h1 = h0 + 3;
            if (h0 < 0)
                h0 = 0;
            if (h1 > height)
                h1 = height;
            for (int ow = 0; ow < out_width; ow++) {
                int w0 = ow * 2 - 1, w1 = w0 + 3;
                if (w0 < 0)
                    w0 = 0;
                if (w1 > width)
                    w1 = width;
                float best = -INFINITY;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) {
                        float v = in[(size_t)h * (size_t)width + (size_t)w];
                        if (v > best)
                            best = v;
                    }
                out[(size_t)oh * (size_t)out_width + (size_t)ow] = best;
            }
        }
    }
}

void ear_nn_max_pool_hwc(const float *input, int channels, int height, int width,
                         float *output)
{
    int out_height = ear_nn_output_size(height, 3, 2, 1);
    int out_width = ear_nn_output_size(width, 3, 2, 1);
    size_t c_count = (size_t)channels;
    for (int oh = 0; oh < out_height; oh++) {
        int h0 = oh * 2 - 1, h1 = h0 + 3;
        h0 = h0 < 0 ? 0 : h0;
        h1 = h1 > height ? height : h1;
        for (int ow = 0; ow < out_width; ow++) {
            int w0 = ow * 2 - 1, w1 = w0 + 3;
            w0 = w0 < 0 ? 0 : w0;
            w1 = w1 > width ? width : w1;
            float *out = output + ((size_t)oh * (size_t)out_width + (size_t)ow) * c_count;
            for (size_t c = 0; c < c_count; c++)
                out[c] = -INFINITY;
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++) {
                    const float *in = input + ((size_t)h * (size_t)width + (size_t)w) * c_count;
                    for (size_t c = 0; c < c_count; c++)
                        out[c] = in[c] > out[c] ? in[c] : out[c];
                }
        }
    }
}

void ear_nn_average_pool_hwc(const float *input, int channels, size_t pixels, float *output)
{
    /* In double, as the CHW version: the order of a long float sum would show in the digits. */
    for (int c = 0; c < channels; c++) {
        double sum = 0;
        for (size_t i = 0; i < pixels; i++)
            sum += input[i * (size_t)channels + (size_t)c];
        output[c] = (float)(sum / (double)pixels);
    }
}

void ear_nn_chw_to_hwc(const float *input, int channels, size_t pixels, float *output)
{
    for (int c = 0; c < channels; c++)
        for (size_t i = 0; i < pixels; i++)
            output[i * (size_t)channels + (size_t)c] = input[(size_t)c * pixels + i];
}

void ear_nn_average_pool(const float *input, int channels, size_t pixels, float *output)
{
    for (int c = 0; c < channels; c++) {
        const float *in = input + (size_t)c * pixels;
        double sum = 0;
        for (size_t i = 0; i < pixels; i++)
            sum += in[i];
        output[c] = (float)(sum / (double)pixels);
    }
}

void ear_nn_linear_forward(const ear_nn_linear *layer, const float *input, float *output,
                           int relu)
{
    cblas_sgemv(CblasRowMajor, CblasNoTrans, layer->out_features, layer->in_features, 1.0f,
                layer->weight, layer->in_features, input, 1, 0.0f, output, 1);
    for (int i = 0; i < layer->out_features; i++) {
        float v = output[i] + layer->bias[i];
        output[i] = relu && v < 0.0f ? 0.0f : v;
    }
}

void ear_nn_l2_normalize(float *v, int count)
{
    double sum = 0;
    for (int i = 0; i < count; i++)
        sum += (double)v[i] * v[i];
    double norm = sqrt(sum);
    if (norm < 1e-12)
        norm = 1e-12;
    for (int i = 0; i < count; i++)
        v[i] = (float)(v[i] / norm);
}
