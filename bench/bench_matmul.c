/* bench_matmul: the compute backend's matrix products (src/nn/backend.c, oneDNN) at one
 * thread, for wav2vec2-base's shapes on a 10 s clip (499 frames; 768 -> 768 for q, k, v and
 * the output projection, 768 -> 3072 and 3072 -> 768 for the feed-forward) and a 3 s clip (149),
 * in each weight type (GFLOP/s by wall clock and by CPU time; "% peak" from the CPU time),
 * against the machine's per-core peaks (--peak-f32 275, bf16 twice, int8
 * four times: AMD Zen 5 with AVX-512, AVX512-BF16 and VNNI). Also each type's error against a
 * double-precision product on the same random data (max |difference| over the rms of the
 * exact result).
 *
 *   build/bench_matmul [--runs N] [--peak-f32 GFLOPS]
 *
 * Median of --runs samples (default 15), each repeating the product for >= 20 ms after a
 * warm-up, by the wall clock and by the thread's CPU time. 2 FLOPs per multiply-add; the time includes the activations' conversion (bf16) or
 * quantisation and dequantisation (int8). Numbers, not a test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "nn/backend.h"

/* This thread's CPU time in ms: on a shared, oversubscribed machine the wall clock also
 * counts other processes' turns; at one thread, the CPU time is what the kernels took. */
static double cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *random_floats(size_t n, unsigned seed, float scale)
{
    float *a = malloc(n * sizeof *a);
    for (size_t i = 0; a && i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        a[i] = scale * (float)((seed >> 8) / 8388608.0 - 1.0);
    }
    return a;
}

/* Error of y against the double product, over the rms of the product (16 rows checked). */
static double error_of(const float *x, const float *w, const float *bias, const float *y,
                       int rows, int in, int out)
{
    double worst = 0, square = 0;
    int checked = rows < 16 ? rows : 16;
    for (int r = 0; r < checked; r++)
        for (int o = 0; o < out; o++) {
            double sum = bias[o];
            for (int i = 0; i < in; i++)
                sum += (double)x[(size_t)r * in + i] * w[(size_t)o * in + i];
            square += sum * sum;
            double d = fabs(sum - y[(size_t)r * out + o]);
            worst = d > worst ? d : worst;
        }
    return worst / sqrt(square / ((double)checked * out));
}

int main(int argc, char **argv)
{
    int runs = 15;
    double peak = 275;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--peak-f32") && i + 1 < argc)
            peak = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_matmul [--runs N] [--peak-f32 GFLOPS]\n");
            return 2;
        }
    }
    if (runs < 1 || peak <= 0) {
        fprintf(stderr, "usage: bench_matmul [--runs N] [--peak-f32 GFLOPS]\n");
        return 2;
    }
    static const int shapes[][3] = {{499, 768, 768}, {499, 768, 3072}, {499, 3072, 768},
                                    {149, 768, 3072}, {149, 3072, 768}};
    printf("backend matmul (oneDNN), 1 thread, median of %d samples; peaks %.0f / %.0f / %.0f "
           "GFLOP/s (f32 / bf16 / int8)\n", runs, peak, 2 * peak, 4 * peak);
    printf("  %5s %5s %5s  %-5s %9s %9s %7s %10s\n", "M", "K", "N", "type", "wall", "cpu",
           "% peak", "rel. error");
    double *rates = malloc((size_t)runs * sizeof *rates);
    double *cpu_rates = malloc((size_t)runs * sizeof *cpu_rates);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int rows = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        float *x = random_floats((size_t)rows * in, 7u + (unsigned)s, 1.0f);
        float *w = random_floats((size_t)out * in, 11u + (unsigned)s, 0.05f);
        float *bias = random_floats((size_t)out, 13u, 0.1f);
        float *y = malloc((size_t)rows * out * sizeof *y);
        for (int t = EAR_NN_WEIGHTS_F32; t <= EAR_NN_WEIGHTS_INT8; t++) {
            ear_error err;
            ear_nn_matmul *mm = ear_nn_matmul_create(w, bias, out, in, rows,
                                                     (ear_nn_weights)t, &err);
            if (!mm) {
                fprintf(stderr, "bench_matmul: %s\n", err.message);
                return 1;
            }
            void *scratch = NULL;
            if (posix_memalign(&scratch, 64, ear_nn_matmul_scratch_bytes(mm)) != 0)
                return 1;
            int repeats = 1;
            for (;;) {
                double start = ear_now_ms();
                for (int r = 0; r < repeats; r++)
                    ear_nn_matmul_run(mm, x, (size_t)in, rows, y, 0, EAR_NN_ACT_NONE, scratch,
                                      &err);
                double ms = ear_now_ms() - start;
                if (ms >= 20.0 || repeats >= (1 << 16))
                    break;
                repeats = ms > 0.5 ? (int)(repeats * 25.0 / ms) + 1 : repeats * 16;
            }
            double flops = 2.0 * rows * (double)in * out;
            for (int i = 0; i < runs; i++) {
                double start = ear_now_ms(), cpu_start = cpu_ms();
                for (int r = 0; r < repeats; r++)
                    ear_nn_matmul_run(mm, x, (size_t)in, rows, y, 0, EAR_NN_ACT_NONE, scratch,
                                      &err);
                rates[i] = flops / ((ear_now_ms() - start) / repeats * 1e6);
                cpu_rates[i] = flops / ((cpu_ms() - cpu_start) / repeats * 1e6);
            }
            qsort(rates, (size_t)runs, sizeof *rates, compare_doubles);
            qsort(cpu_rates, (size_t)runs, sizeof *cpu_rates, compare_doubles);
            double wall = runs % 2 ? rates[runs / 2] : (rates[runs / 2 - 1] + rates[runs / 2]) / 2;
            double median = runs % 2 ? cpu_rates[runs / 2]
                                     : (cpu_rates[runs / 2 - 1] + cpu_rates[runs / 2]) / 2;
            double type_peak = peak * (t == EAR_NN_WEIGHTS_F32 ? 1 : t == EAR_NN_WEIGHTS_BF16 ? 2 : 4);
            printf("  %5d %5d %5d  %-5s %9.1f %9.1f %6.0f%% %10.2g\n", rows, in, out,
                   ear_nn_weights_name((ear_nn_weights)t), wall, median, 100 * median / type_peak,
                   error_of(x, w, bias, y, rows, in, out));
            fflush(stdout);
            free(scratch);
            ear_nn_matmul_free(mm);
        }
        free(x);
        free(w);
        free(bias);
        free(y);
    }
    free(rates);
    free(cpu_rates);
    return 0;
}
