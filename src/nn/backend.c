/* The compute backend (first version: OpenBLAS with bf16/int8 rounding emulated; oneDNN
 * replaces it behind the same API). */
#include "nn/backend.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ear_nn_matmul {
    int out_features, in_features, max_rows;
    ear_nn_weights weights;
    float *weight; /* [out][in], already rounded to the weight type's values */
    float *bias;   /* [out], zeros when none */
};

int ear_nn_weights_parse(const char *name, ear_nn_weights *weights, ear_error *err)
{
    if (name && !strcmp(name, "f32"))
        *weights = EAR_NN_WEIGHTS_F32;
    else if (name && !strcmp(name, "bf16"))
        *weights = EAR_NN_WEIGHTS_BF16;
    else if (name && !strcmp(name, "int8"))
        *weights = EAR_NN_WEIGHTS_INT8;
    else
        return ear_error_set(err, "unknown weight type '%s' (f32, bf16 or int8)",
                             name ? name : "(null)");
    return 0;
}

const char *ear_nn_weights_name(ear_nn_weights weights)
{
    switch (weights) {
    case EAR_NN_WEIGHTS_BF16:
        return "bf16";
    case EAR_NN_WEIGHTS_INT8:
        return "int8";
    default:
        return "f32";
    }
}

static float round_bf16(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
    memcpy(&v, &u, sizeof v);
    return v;
}

ear_nn_matmul *ear_nn_matmul_create(const float *weight, const float *bias, int out_features,
                                    int in_features, int max_rows, ear_nn_weights weights,
                                    ear_error *err)
{
    if (out_features < 1 || in_features < 1 || max_rows < 1) {
        ear_error_set(err, "matmul: bad sizes %d x %d, %d rows", out_features, in_features,
                      max_rows);
        return NULL;
    }
    ear_nn_matmul *mm = calloc(1, sizeof *mm);
    if (!mm)
        goto oom;
    mm->out_features = out_features;
    mm->in_features = in_features;
    mm->max_rows = max_rows;
    mm->weights = weights;
    size_t n = (size_t)out_features * (size_t)in_features;
    mm->weight = malloc(n * sizeof *mm->weight);
    mm->bias = calloc((size_t)out_features, sizeof *mm->bias);
    if (!mm->weight || !mm->bias)
        goto oom;
    for (int o = 0; o < out_features; o++) {
        const float *w = weight + (size_t)o * (size_t)in_features;
        float *d = mm->weight + (size_t)o * (size_t)in_features;
        float amax = 0;
        for (int i = 0; i < in_features; i++)
            amax = fabsf(w[i]) > amax ? fabsf(w[i]) : amax;
        float scale = amax > 0 ? amax / 127.0f : 1.0f;
        for (int i = 0; i < in_features; i++) {
            if (weights == EAR_NN_WEIGHTS_BF16)
                d[i] = round_bf16(w[i]);
            else if (weights == EAR_NN_WEIGHTS_INT8)
                d[i] = nearbyintf(w[i] / scale) * scale;
            else
                d[i] = w[i];
        }
        if (bias)
            mm->bias[o] = bias[o];
    }
    return mm;
oom:
    ear_nn_matmul_free(mm);
    ear_error_set(err, "out of memory");
    return NULL;
}

size_t ear_nn_matmul_scratch_bytes(const ear_nn_matmul *mm)
{
    return (size_t)mm->max_rows * (size_t)(mm->in_features + mm->out_features) * sizeof(float);
}

static float activate(float v, ear_nn_activation act)
{
    if (act == EAR_NN_ACT_RELU)
        return v > 0 ? v : 0;
    if (act == EAR_NN_ACT_GELU)
        return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    return v;
}

int ear_nn_matmul_run(const ear_nn_matmul *mm, const float *x, size_t x_stride, int rows,
                      float *y, int accumulate, ear_nn_activation act, void *scratch,
                      ear_error *err)
{
    if (rows < 1 || rows > mm->max_rows || x_stride < 1)
        return ear_error_set(err, "matmul: %d rows (1..%d), stride %zu", rows, mm->max_rows,
                             x_stride);
    int in = mm->in_features, out = mm->out_features;
    float *xs = scratch, *ys = xs + (size_t)rows * (size_t)in;
    for (int r = 0; r < rows; r++) {
        const float *s = x + (size_t)r * x_stride;
        float *d = xs + (size_t)r * (size_t)in;
        if (mm->weights == EAR_NN_WEIGHTS_F32) {
            memcpy(d, s, (size_t)in * sizeof *d);
        } else if (mm->weights == EAR_NN_WEIGHTS_BF16) {
            for (int i = 0; i < in; i++)
                d[i] = round_bf16(s[i]);
        } else {
            float lo = 0, hi = 0;
            for (int i = 0; i < in; i++) {
                lo = s[i] < lo ? s[i] : lo;
                hi = s[i] > hi ? s[i] : hi;
            }
            float scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
            float zero = nearbyintf(-lo / scale);
            for (int i = 0; i < in; i++) {
                float q = nearbyintf(s[i] / scale) + zero;
                q = q < 0 ? 0 : q > 255 ? 255 : q;
                d[i] = (q - zero) * scale;
            }
        }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f, xs, in,
                mm->weight, in, 0.0f, ys, out);
    for (int r = 0; r < rows; r++) {
        float *d = y + (size_t)r * (size_t)out;
        const float *s = ys + (size_t)r * (size_t)out;
        for (int o = 0; o < out; o++)
            d[o] = activate(s[o] + mm->bias[o] + (accumulate ? d[o] : 0.0f), act);
    }
    return 0;
}

void ear_nn_matmul_free(ear_nn_matmul *mm)
{
    if (!mm)
        return;
    free(mm->weight);
    free(mm->bias);
    free(mm);
}

size_t ear_nn_matmul_weight_bytes(const ear_nn_matmul *mm)
{
    return (size_t)mm->out_features * (size_t)(mm->in_features + 1) * sizeof(float);
}

int ear_nn_matmul_out_features(const ear_nn_matmul *mm)
{
    return mm->out_features;
}

int ear_nn_matmul_in_features(const ear_nn_matmul *mm)
{
    return mm->in_features;
}
