/* The backend's matrix products against a double-precision reference on random data: every
 * weight type (float32 tight; bfloat16 and int8 within their rounding), strided and
 * overlapping inputs, accumulate, each activation, one row and max rows; and the refusals. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/backend.h"
#include "test.h"

static uint32_t rng_state = 2024;

static float random_float(void) /* in [-1, 1) */
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) / 8388608.0 - 1.0);
}

static double activate(double v, ear_nn_activation act)
{
    if (act == EAR_NN_ACT_RELU)
        return v > 0 ? v : 0;
    if (act == EAR_NN_ACT_GELU)
        return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
    return v;
}

/* Largest |got - reference| over the rms of the reference's pre-activation sums. */
static double relative_error(const float *x, size_t stride, int rows, const float *w,
                             const float *bias, int out, int in, const float *y0,
                             ear_nn_activation act, const float *y)
{
    double worst = 0, square = 0;
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double sum = bias ? bias[o] : 0.0;
            for (int i = 0; i < in; i++)
                sum += (double)x[(size_t)r * stride + (size_t)i] * w[(size_t)o * (size_t)in + (size_t)i];
            if (y0)
                sum += y0[(size_t)r * (size_t)out + (size_t)o];
            square += sum * sum;
            double d = fabs(activate(sum, act) - y[(size_t)r * (size_t)out + (size_t)o]);
            if (isnan(d))
                d = INFINITY;
            if (d > worst)
                worst = d;
        }
    double rms = sqrt(square / ((double)rows * out));
    return worst / (rms > 1e-30 ? rms : 1e-30);
}

/* Measured on random data (K up to 300): f32 ~1e-7, bf16 ~1e-2, int8 ~2e-2 of the rms. */
static const double tolerance[3] = {2e-5, 4e-2, 8e-2};

static void check_shape(ear_nn_weights type, int out, int in, int max_rows, size_t stride,
                        int with_bias)
{
    ear_error err;
    size_t x_floats = (size_t)(max_rows - 1) * stride + (size_t)in;
    float *x = malloc(x_floats * sizeof *x);
    float *w = malloc((size_t)out * (size_t)in * sizeof *w);
    float *bias = malloc((size_t)out * sizeof *bias);
    float *y = malloc((size_t)max_rows * (size_t)out * sizeof *y);
    float *y0 = malloc((size_t)max_rows * (size_t)out * sizeof *y0);
    for (size_t i = 0; i < x_floats; i++)
        x[i] = random_float();
    for (size_t i = 0; i < (size_t)out * (size_t)in; i++)
        w[i] = random_float() * 0.2f;
    for (int i = 0; i < out; i++)
        bias[i] = random_float();
    /* A few large activations: int8's per-row scales must cope with outliers. */
    x[0] = 6.0f;
    ear_nn_matmul *mm = ear_nn_matmul_create(w, with_bias ? bias : NULL, out, in, max_rows, type,
                                             &err);
    EAR_CHECK_MSG(mm != NULL, "create: %s", mm ? "" : err.message);
    if (!mm)
        goto done;
    /* The weights are the matmul's own copy: the caller's may change or go. */
    float *w_copy = malloc((size_t)out * (size_t)in * sizeof *w_copy);
    memcpy(w_copy, w, (size_t)out * (size_t)in * sizeof *w);
    memset(w, 0xff, (size_t)out * (size_t)in * sizeof *w);
    memcpy(w, w_copy, (size_t)out * (size_t)in * sizeof *w);
    free(w_copy);
    EAR_CHECK(ear_nn_matmul_weight_bytes(mm) > 0);
    EAR_CHECK(ear_nn_matmul_out_features(mm) == out && ear_nn_matmul_in_features(mm) == in);
    size_t scratch_bytes = ear_nn_matmul_scratch_bytes(mm);
    void *scratch = NULL;
    EAR_CHECK(posix_memalign(&scratch, 64, scratch_bytes ? scratch_bytes : 64) == 0);
    int row_counts[3] = {1, max_rows > 2 ? max_rows / 2 + 1 : 1, max_rows};
    for (int rc = 0; rc < 3; rc++) {
        int rows = row_counts[rc];
        for (int act = EAR_NN_ACT_NONE; act <= EAR_NN_ACT_GELU; act++) {
            for (int accumulate = 0; accumulate <= 1; accumulate++) {
                for (size_t i = 0; i < (size_t)rows * (size_t)out; i++)
                    y0[i] = y[i] = random_float();
                int rcode = ear_nn_matmul_run(mm, x, stride, rows, y, accumulate,
                                              (ear_nn_activation)act, scratch, &err);
                EAR_CHECK_MSG(rcode == 0, "run: %s", rcode ? err.message : "");
                double e = relative_error(x, stride, rows, w, with_bias ? bias : NULL, out, in,
                                          accumulate ? y0 : NULL, (ear_nn_activation)act, y);
                if (getenv("EAR_TEST_VERBOSE"))
                    printf("%s %dx%d rows %d stride %zu act %d acc %d: %.3g\n",
                           ear_nn_weights_name(type), out, in, rows, stride, act, accumulate, e);
                EAR_CHECK_MSG(e <= tolerance[type],
                              "%s %dx%d rows %d stride %zu act %d acc %d: error %.3g > %.3g",
                              ear_nn_weights_name(type), out, in, rows, stride, act, accumulate,
                              e, tolerance[type]);
            }
        }
    }
    /* Refusals: no rows, too many rows, a zero stride. */
    EAR_CHECK(ear_nn_matmul_run(mm, x, stride, 0, y, 0, EAR_NN_ACT_NONE, scratch, &err) == -1);
    EAR_CHECK(ear_nn_matmul_run(mm, x, stride, max_rows + 1, y, 0, EAR_NN_ACT_NONE, scratch,
                                &err) == -1);
    EAR_CHECK(strstr(err.message, "rows") != NULL);
    EAR_CHECK(ear_nn_matmul_run(mm, x, 0, 1, y, 0, EAR_NN_ACT_NONE, scratch, &err) == -1);
    free(scratch);
    ear_nn_matmul_free(mm);
done:
    free(x);
    free(w);
    free(bias);
    free(y);
    free(y0);
}

/* Many row counts (more than the matmul keeps primitives for) and several threads at once on
 * one matmul, each with its own scratch: every result equals the one-thread result. */
typedef struct job {
    const ear_nn_matmul *mm;
    const float *x;
    int rows;
    float *y;
    int status;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    ear_error err;
    void *scratch = malloc(ear_nn_matmul_scratch_bytes(j->mm));
    j->status = scratch ? 0 : -1;
    for (int round = 0; round < 5 && j->status == 0; round++)
        j->status = ear_nn_matmul_run(j->mm, j->x, 32, j->rows, j->y, 0, EAR_NN_ACT_GELU,
                                      scratch, &err);
    free(scratch);
    return NULL;
}

static void check_rows_and_threads(ear_nn_weights type)
{
    enum { OUT = 24, IN = 32, MAX_ROWS = 70, THREADS = 4 };
    ear_error err;
    float *w = malloc(OUT * IN * sizeof *w), *x = malloc(MAX_ROWS * IN * sizeof *x);
    float *one = malloc(MAX_ROWS * OUT * sizeof *one);
    float *many = malloc(THREADS * MAX_ROWS * OUT * sizeof *many);
    for (int i = 0; i < OUT * IN; i++)
        w[i] = random_float();
    for (int i = 0; i < MAX_ROWS * IN; i++)
        x[i] = random_float();
    ear_nn_matmul *mm = ear_nn_matmul_create(w, NULL, OUT, IN, MAX_ROWS, type, &err);
    EAR_CHECK_MSG(mm != NULL, "create: %s", mm ? "" : err.message);
    void *scratch = mm ? malloc(ear_nn_matmul_scratch_bytes(mm)) : NULL;
    int worst_rows = 0;
    double worst = 0;
    for (int rows = 1; mm && rows <= MAX_ROWS; rows++) {
        int rc = ear_nn_matmul_run(mm, x, IN, rows, one, 0, EAR_NN_ACT_NONE, scratch, &err);
        EAR_CHECK_MSG(rc == 0, "%d rows: %s", rows, rc ? err.message : "");
        double e = relative_error(x, IN, rows, w, NULL, OUT, IN, NULL, EAR_NN_ACT_NONE, one);
        if (e > worst) {
            worst = e;
            worst_rows = rows;
        }
    }
    EAR_CHECK_MSG(worst <= tolerance[type], "%s: %d rows: error %.3g",
                  ear_nn_weights_name(type), worst_rows, worst);
    if (mm) {
        EAR_CHECK(ear_nn_matmul_run(mm, x, 32, MAX_ROWS - 3, one, 0, EAR_NN_ACT_GELU, scratch,
                                    &err) == 0);
        pthread_t threads[THREADS];
        job jobs[THREADS];
        for (int t = 0; t < THREADS; t++) {
            jobs[t] = (job){mm, x, MAX_ROWS - 3, many + (size_t)t * MAX_ROWS * OUT, -1};
            pthread_create(&threads[t], NULL, run_job, &jobs[t]);
        }
        for (int t = 0; t < THREADS; t++) {
            pthread_join(threads[t], NULL);
            EAR_CHECK(jobs[t].status == 0);
            EAR_CHECK_MSG(!memcmp(one, jobs[t].y, (size_t)(MAX_ROWS - 3) * OUT * sizeof *one),
                          "%s: thread %d differs", ear_nn_weights_name(type), t);
        }
    }
    free(scratch);
    ear_nn_matmul_free(mm);
    free(w);
    free(x);
    free(one);
    free(many);
}

int main(void)
{
    ear_error err;
    for (int t = EAR_NN_WEIGHTS_F32; t <= EAR_NN_WEIGHTS_INT8; t++) {
        ear_nn_weights type = (ear_nn_weights)t, parsed;
        EAR_CHECK(ear_nn_weights_parse(ear_nn_weights_name(type), &parsed, &err) == 0 &&
                  parsed == type);
        check_shape(type, 48, 64, 17, 64, 1);   /* packed rows */
        check_shape(type, 33, 70, 9, 75, 1);    /* odd sizes, strided rows */
        check_shape(type, 64, 40, 12, 8, 0);    /* overlapping windows (stride < in), no bias */
        check_shape(type, 96, 300, 1, 300, 1);  /* one row only */
        check_shape(type, 1, 17, 5, 17, 1);     /* one output */
        check_rows_and_threads(type);
    }
    EAR_CHECK(ear_nn_weights_parse("fp16", &(ear_nn_weights){0}, &err) == -1);
    EAR_CHECK(strstr(err.message, "fp16") != NULL);
    EAR_CHECK(ear_nn_weights_parse(NULL, &(ear_nn_weights){0}, &err) == -1);
    float w[4] = {1, 2, 3, 4};
    EAR_CHECK(ear_nn_matmul_create(w, NULL, 0, 4, 1, EAR_NN_WEIGHTS_F32, &err) == NULL);
    EAR_CHECK(ear_nn_matmul_create(w, NULL, 1, 4, 0, EAR_NN_WEIGHTS_F32, &err) == NULL);
    EAR_CHECK(ear_nn_matmul_create(w, NULL, 1, -3, 1, EAR_NN_WEIGHTS_BF16, &err) == NULL);
    ear_nn_matmul_free(NULL);
    return ear_test_finish();
}
