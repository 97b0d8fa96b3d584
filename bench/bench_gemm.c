/* bench_gemm: what OpenBLAS's sgemm gives at one thread on this machine, for the matrix
 * products Ear's audio tower makes and for one big square product (the practical peak).
 *
 *   build/bench_gemm [--runs N] [--square S]
 *
 * The audio tower's products are those of the spec's example (ResNet-18, basic blocks
 * [2, 2, 2, 2], widths [64, 128, 256, 512], one log-mel channel, 64 mels x 501 frames, i.e. one
 * 5 s segment), laid out as src/nn/ops.c lays them out: row-major C[M, N] = W[M, K] x cols[K, N]
 * with M the output channels, K = in_channels x kernel^2 and N the output pixels, in bands of
 * output rows whose im2col columns fit OPS_SCRATCH_FLOATS (a copy of ops.h's
 * EAR_NN_SCRATCH_BUDGET; a 1x1 stride-1 convolution is one product on the input itself).
 * For each distinct shape: the calls per pass and the median GFLOP/s of --runs samples (default
 * 15; each sample repeats the product for at least 20 ms, after a warm-up). Then what the
 * tower's products would take at those rates (a lower bound for the tower: no im2col, BatchNorm
 * or pooling), and the square product's rate. 2 FLOPs per multiply-add. Numbers, not a test. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

char *openblas_get_corename(void);
char *openblas_get_config(void);
void openblas_set_num_threads(int threads);

#define OPS_SCRATCH_FLOATS ((size_t)256 << 10) /* ops.h's EAR_NN_SCRATCH_BUDGET */
#define MAX_SHAPES 64

typedef struct {
    int m, n, k;
    int calls; /* per pass of the tower */
    double gflops;
} shape;

typedef struct {
    shape items[MAX_SHAPES];
    int count;
} shape_list;

static void add_shape(shape_list *list, int m, int n, int k)
{
    for (int i = 0; i < list->count; i++) {
        shape *s = &list->items[i];
        if (s->m == m && s->n == n && s->k == k) {
            s->calls++;
            return;
        }
    }
    if (list->count < MAX_SHAPES)
        list->items[list->count++] = (shape){m, n, k, 1, 0.0};
}

static int conv_out(int size, int kernel, int stride, int padding)
{
    return (size + 2 * padding - kernel) / stride + 1;
}

/* The products of one convolution on a height x width input, banded as ops.c bands them. */
static void add_conv(shape_list *list, int in, int out, int kernel, int stride, int height,
                     int width)
{
    int padding = kernel / 2;
    int oh = conv_out(height, kernel, stride, padding);
    int ow = conv_out(width, kernel, stride, padding);
    int depth = in * kernel * kernel;
    if (kernel == 1 && stride == 1) {
        add_shape(list, out, oh * ow, depth);
        return;
    }
    size_t rows = OPS_SCRATCH_FLOATS / ((size_t)depth * (size_t)ow);
    if (rows < 1)
        rows = 1;
    for (int first = 0; first < oh; first += (int)rows) {
        int count = oh - first < (int)rows ? oh - first : (int)rows;
        add_shape(list, out, count * ow, depth);
    }
}

/* ResNet-18 as the spec's audio tower: stem, max-pool, four stages of two basic blocks. */
static void audio_tower(shape_list *list, int height, int width)
{
    static const int widths[4] = {64, 128, 256, 512};
    add_conv(list, 1, 64, 7, 2, height, width);
    int h = conv_out(conv_out(height, 7, 2, 3), 3, 2, 1);
    int w = conv_out(conv_out(width, 7, 2, 3), 3, 2, 1);
    int channels = 64;
    for (int stage = 0; stage < 4; stage++) {
        for (int b = 0; b < 2; b++) {
            int stride = stage > 0 && b == 0 ? 2 : 1, out = widths[stage];
            add_conv(list, channels, out, 3, stride, h, w);
            int oh = conv_out(h, 3, stride, 1), ow = conv_out(w, 3, stride, 1);
            add_conv(list, out, out, 3, 1, oh, ow);
            if (stride != 1 || channels != out)
                add_conv(list, channels, out, 1, stride, h, w);
            channels = out;
            h = oh;
            w = ow;
        }
    }
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median GFLOP/s of C[m, n] = A[m, k] x B[k, n] over `runs` samples of >= 20 ms each. */
static double measure(int m, int n, int k, int runs)
{
    size_t a_count = (size_t)m * (size_t)k, b_count = (size_t)k * (size_t)n;
    size_t c_count = (size_t)m * (size_t)n;
    float *a = malloc(a_count * sizeof *a), *b = malloc(b_count * sizeof *b);
    float *c = malloc(c_count * sizeof *c);
    double *rates = malloc((size_t)runs * sizeof *rates);
    double result = -1.0;
    if (!a || !b || !c || !rates)
        goto done;
    unsigned state = 12345;
    for (size_t i = 0; i < a_count; i++) {
        state = state * 1664525u + 1013904223u;
        a[i] = (float)((state >> 8) / 8388608.0 - 1.0);
    }
    for (size_t i = 0; i < b_count; i++) {
        state = state * 1664525u + 1013904223u;
        b[i] = (float)((state >> 8) / 8388608.0 - 1.0);
    }
    double flops = 2.0 * m * n * (double)k;
    /* Warm-up, which also finds how many products make a sample of 20 ms. */
    int repeats = 1;
    for (;;) {
        double start = ear_now_ms();
        for (int r = 0; r < repeats; r++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n,
                        0.0f, c, n);
        double ms = ear_now_ms() - start;
        if (ms >= 20.0 || repeats >= (1 << 20))
            break;
        repeats = ms > 0.5 ? (int)(repeats * 25.0 / ms) + 1 : repeats * 16;
    }
    for (int i = 0; i < runs; i++) {
        double start = ear_now_ms();
        for (int r = 0; r < repeats; r++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n,
                        0.0f, c, n);
        double ms = (ear_now_ms() - start) / repeats;
        rates[i] = flops / (ms * 1e6);
    }
    qsort(rates, (size_t)runs, sizeof *rates, compare_doubles);
    result = runs % 2 ? rates[runs / 2] : (rates[runs / 2 - 1] + rates[runs / 2]) / 2;
done:
    free(a);
    free(b);
    free(c);
    free(rates);
    return result;
}

int main(int argc, char **argv)
{
    int runs = 15, square = 1024, usage_error = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--square") == 0 && i + 1 < argc)
            square = atoi(argv[++i]);
        else
            usage_error = 1;
    }
    if (usage_error || runs < 1 || square < 1 || square > 8192) {
        fprintf(stderr, "usage: bench_gemm [--runs N] [--square S]\n");
        return 2;
    }
    openblas_set_num_threads(1);
    printf("OpenBLAS %s, kernels %s, 1 thread; median of %d samples\n", openblas_get_config(),
           openblas_get_corename(), runs);

    shape_list list = {.count = 0};
    audio_tower(&list, 64, 501);
    double tower_flops = 0.0, tower_ms = 0.0;
    printf("audio tower (ResNet-18 on 64x501), its products as src/nn/ops.c makes them:\n");
    printf("  %5s %6s %6s %6s  %12s  %8s\n", "M", "N", "K", "calls", "MFLOP/call", "GFLOP/s");
    for (int i = 0; i < list.count; i++) {
        shape *s = &list.items[i];
        s->gflops = measure(s->m, s->n, s->k, runs);
        if (s->gflops <= 0) {
            fprintf(stderr, "bench_gemm: out of memory\n");
            return 1;
        }
        double flops = 2.0 * s->m * s->n * (double)s->k;
        tower_flops += flops * s->calls;
        tower_ms += flops * s->calls / (s->gflops * 1e6);
        printf("  %5d %6d %6d %6d  %12.2f  %8.1f\n", s->m, s->n, s->k, s->calls, flops / 1e6,
               s->gflops);
    }
    printf("audio tower products: %.3f GFLOP per segment, %.2f ms at these rates = %.1f GFLOP/s "
           "(a bound: products only)\n",
           tower_flops / 1e9, tower_ms, tower_flops / (tower_ms * 1e6));
    double peak = measure(square, square, square, runs);
    if (peak <= 0) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        return 1;
    }
    printf("square %dx%dx%d: %.1f GFLOP/s (the practical peak)\n", square, square, square, peak);
    return 0;
}
