/* The operators of a ResNet at batch size 1, on float32 tensors in CHW order. They work
 * in buffers the caller owns (the session's arena) and allocate nothing. Private to src/nn
 * and its tests. */
#ifndef EAR_NN_OPS_H
#define EAR_NN_OPS_H

#include <stddef.h>

#include "nn/backend.h"

/* A convolution with its BatchNorm folded in: output = weight * input + bias. */
typedef struct ear_nn_conv {
    int in_channels, out_channels, kernel, stride, padding;
    const float *weight; /* [out_channels][in_channels][kernel][kernel] */
    const float *bias;   /* [out_channels] */
    ear_nn_conv2d *compiled; /* the backend's, NHWC (resnet.c); what a session runs */
    int in_height, in_width; /* the largest input it sees in its tower (resnet.c) */
} ear_nn_conv;

/* A fully connected layer: output = weight * input + bias. */
typedef struct ear_nn_linear {
    int in_features, out_features;
    const float *weight; /* [out_features][in_features] */
    const float *bias;   /* [out_features] */
} ear_nn_linear;

/* Output length along one axis of a convolution or pooling window. */
static inline int ear_nn_output_size(int input, int kernel, int stride, int padding)
{
    return (input + 2 * padding - kernel) / stride + 1;
}

/* Whether the convolution reads its input directly as a matrix (no im2col scratch). */
static inline int ear_nn_conv_is_pointwise(const ear_nn_conv *conv)
{
    return conv->kernel == 1 && conv->stride == 1 && conv->padding == 0;
}

/* im2col works on bands of output rows that fit this many floats of scratch (1 MiB: the
 * band stays in a core's L2 cache between its unfolding and the matrix product). */
#define EAR_NN_SCRATCH_BUDGET ((size_t)256 << 10)

/* Floats of im2col scratch the convolution needs on a height x width input (0 if none). */
size_t ear_nn_conv_scratch_floats(const ear_nn_conv *conv, int height, int width);

/* The reference convolution (CHW, im2col + OpenBLAS; sessions run conv->compiled instead):
 * input [in_channels][height][width] -> output [out_channels][oh][ow]. With accumulate,
 * output already holds the residual shortcut and the result is added to it; then the bias,
 * then ReLU when relu is set. scratch holds ear_nn_conv_scratch_floats() floats. input and
 * output must not overlap. */
void ear_nn_conv_forward(const ear_nn_conv *conv, const float *input, int height, int width,
                         float *output, float *scratch, int accumulate, int relu);

/* 3x3 max pooling, stride 2, padding 1 (padding never wins): [channels][h][w] ->
 * [channels][oh][ow]. */
void ear_nn_max_pool(const float *input, int channels, int height, int width, float *output);

/* The same max pooling on NHWC activations: [h][w][channels] -> [oh][ow][channels]. */
void ear_nn_max_pool_hwc(const float *input, int channels, int height, int width,
                         float *output);

/* Mean of each channel's pixels, NHWC: [pixels][channels] -> [channels]. */
void ear_nn_average_pool_hwc(const float *input, int channels, size_t pixels, float *output);

/* [channels][pixels] -> [pixels][channels]. */
void ear_nn_chw_to_hwc(const float *input, int channels, size_t pixels, float *output);

/* Mean of each channel's pixels: [channels][pixels] -> [channels]. */
void ear_nn_average_pool(const float *input, int channels, size_t pixels, float *output);

/* output = weight * input + bias, then ReLU when relu is set. */
void ear_nn_linear_forward(const ear_nn_linear *layer, const float *input, float *output,
                           int relu);

/* v / max(|v|, 1e-12), as torch.nn.functional.normalize. */
void ear_nn_l2_normalize(float *v, int count);

#endif
