/* The compute backend: matrix products (and, through ops.c, convolutions) with weights laid
 * out once at load in the form the kernels want, in float32, bfloat16 or int8. backend.c is
 * the one file that knows which library does the work (oneDNN). Private to src/nn.
 *
 * Threads: every run uses the calling thread plus ear_nn_set_threads()' count - 1 helpers
 * (default 1 thread: one request per worker thread). Runs allocate nothing: callers hand in
 * scratch sized by the *_scratch_bytes() functions (their arena). */
#ifndef EAR_NN_BACKEND_H
#define EAR_NN_BACKEND_H

#include <stddef.h>

#include "core/core.h"

typedef enum {
    EAR_NN_WEIGHTS_F32,  /* exact float32 */
    EAR_NN_WEIGHTS_BF16, /* weights and activations rounded to bfloat16, float32 sums */
    EAR_NN_WEIGHTS_INT8  /* weights s8 per output channel, activations u8 per row (dynamic) */
} ear_nn_weights;

typedef enum {
    EAR_NN_ACT_NONE,
    EAR_NN_ACT_RELU,
    EAR_NN_ACT_GELU /* exact: 0.5 x (1 + erf(x / sqrt 2)), as torch's default */
} ear_nn_activation;

typedef struct ear_nn_matmul ear_nn_matmul;

/* "f32", "bf16", "int8" -> *weights; -1 (err filled) for anything else. */
int ear_nn_weights_parse(const char *name, ear_nn_weights *weights, ear_error *err);

/* The name ear_nn_weights_parse reads. */
const char *ear_nn_weights_name(ear_nn_weights weights);

/* A linear layer Y[rows][out] = X[rows][in] . W^T + bias. weight is row-major
 * [out_features][in_features] float32 as torch.nn.Linear stores it; it and bias (may be NULL)
 * are copied and laid out here, so the caller may unmap them afterwards. Runs take 1..max_rows
 * rows. NULL with err filled on bad sizes or no memory. */
ear_nn_matmul *ear_nn_matmul_create(const float *weight, const float *bias, int out_features,
                                    int in_features, int max_rows, ear_nn_weights weights,
                                    ear_error *err);

/* Scratch bytes one run of up to max_rows rows needs (64-byte aligned start is best). */
size_t ear_nn_matmul_scratch_bytes(const ear_nn_matmul *mm);

/* y = act(x . W^T + bias + (accumulate ? y : 0)): with accumulate, y holds a residual on entry
 * and the sum is taken before the activation. x: rows rows of in_features floats, row stride
 * x_stride floats (>= 1: rows may overlap, as a 1-D convolution's windows do); y: rows x
 * out_features, packed; x and y must not overlap. scratch: ear_nn_matmul_scratch_bytes() bytes, the caller's own. Thread-
 * safe: any number of threads may run one matmul at once, each with its own scratch and y.
 * Returns 0, or -1 with err filled (rows out of range). */
int ear_nn_matmul_run(const ear_nn_matmul *mm, const float *x, size_t x_stride, int rows,
                      float *y, int accumulate, ear_nn_activation act, void *scratch,
                      ear_error *err);

/* Frees the matmul (NULL is fine). */
void ear_nn_matmul_free(ear_nn_matmul *mm);

/* Bytes of laid-out weights and bias the matmul holds. */
size_t ear_nn_matmul_weight_bytes(const ear_nn_matmul *mm);

/* The layer's sizes. */
int ear_nn_matmul_out_features(const ear_nn_matmul *mm);
int ear_nn_matmul_in_features(const ear_nn_matmul *mm);

typedef struct ear_nn_conv2d ear_nn_conv2d;

/* A 2-D convolution at batch 1 with activations NHWC ([height][width][channels]), float32 in
 * and out. weight [out][in][kernel][kernel] and bias [out] (BatchNorm folded in) are copied
 * and laid out here. Inputs up to max_height x max_width. int8 runs in bf16 (see backend.c).
 * NULL with err filled on a bad shape or no memory. */
ear_nn_conv2d *ear_nn_conv2d_create(const float *weight, const float *bias, int in_channels,
                                    int out_channels, int kernel, int stride, int padding,
                                    int max_height, int max_width, ear_nn_weights weights,
                                    ear_error *err);

/* Scratch bytes one run needs at any input size up to the maximum. */
size_t ear_nn_conv2d_scratch_bytes(const ear_nn_conv2d *c);

/* output = relu?(conv(input) + bias + (accumulate ? output : 0)), NHWC both; input and output
 * must not overlap. Thread-safe as ear_nn_matmul_run. -1 with err filled on a bad size. */
int ear_nn_conv2d_run(const ear_nn_conv2d *c, const float *input, int height, int width,
                      float *output, int accumulate, int relu, void *scratch, ear_error *err);

/* Frees the convolution (NULL is fine). */
void ear_nn_conv2d_free(ear_nn_conv2d *c);

/* Bytes of laid-out weights and bias. */
size_t ear_nn_conv2d_weight_bytes(const ear_nn_conv2d *c);

/* The weight type models loaded from now on use (ear_nn_set_weight_type sets it). */
void ear_nn_backend_set_weights(ear_nn_weights weights);
ear_nn_weights ear_nn_backend_weights(void);

/* Threads each backend run uses (the caller's included); ear_nn_set_threads() sets it. */
void ear_nn_backend_set_threads(int threads);

#endif
