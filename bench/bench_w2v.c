/* bench_w2v: the original's model (wav2vec2 + torchvision ResNet, as best_audio_visual_clip.pt
 * holds it) in Ear at one thread, one weight type per run:
 *
 *   /usr/bin/python3 tools/make_w2v_fixtures.py --full /tmp/full     # wav2vec2_base + resnet50
 *   build/bench_w2v /tmp/full/full.pt --weights f32|bf16|int8 [--runs N]
 *   OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/bench_w2v_torch.py \
 *       /tmp/full/full.pt                                              # PyTorch 1.13, 1 thread
 *
 * Times the embedding of a 10 s and a 3 s clip (deterministic tones and noise, already 16 kHz
 * mono: the forward pass, not the decoder) and of one image already decoded (preprocessing
 * included), medians of --runs (default 5) after one warm-up; prints each one's FLOPs (2 per
 * multiply-add of every convolution, linear layer and attention product) and GFLOP/s, the
 * load time and the process's peak resident memory. CPU time is printed beside wall time: on a
 * shared machine it is the steadier of the two. Numbers, not a test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/core.h"
#include "image/image.h"
#include "nn/nn.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* wav2vec2 on count samples: extractor, projection, positional conv, layers, head. */
static double w2v_flops(const ear_nn_w2v_config *c, int embed_dim, size_t count)
{
    double flops = 0, t = (double)count;
    int in = 1;
    for (int i = 0; i < c->conv_count; i++) {
        t = floor((t - c->conv_kernel[i]) / c->conv_stride[i]) + 1;
        flops += 2.0 * t * c->conv_kernel[i] * in * c->conv_channels[i];
        in = c->conv_channels[i];
    }
    double e = c->embed;
    flops += 2.0 * t * c->features * e;
    flops += 2.0 * t * e * (e / c->pos_groups) * c->pos_kernel;
    flops += c->layers * (2.0 * t * e * 3 * e + 4.0 * t * t * e + 2.0 * t * e * e +
                          4.0 * t * e * c->ffn);
    return flops + 2.0 * e * embed_dim;
}

static int conv_out(int size, int kernel, int stride, int padding)
{
    return (size + 2 * padding - kernel) / stride + 1;
}

static double conv_flops(int in, int out, int kernel, int oh, int ow)
{
    return 2.0 * in * out * kernel * kernel * (double)oh * ow;
}

static double resnet_flops(const ear_nn_encoder_config *e, int embed_dim, int size)
{
    int h = conv_out(size, 7, 2, 3), channels = e->widths[0];
    double flops = conv_flops(3, channels, 7, h, h);
    h = conv_out(h, 3, 2, 1);
    int expansion = e->block == EAR_NN_BLOCK_BOTTLENECK ? 4 : 1;
    for (int s = 0; s < e->stage_count; s++) {
        int width = e->widths[s], out = width * expansion;
        for (int b = 0; b < e->layers[s]; b++) {
            int stride = s > 0 && b == 0 ? 2 : 1, oh = conv_out(h, 3, stride, 1);
            if (expansion == 1)
                flops += conv_flops(channels, width, 3, oh, oh) + conv_flops(width, width, 3, oh, oh);
            else
                flops += conv_flops(channels, width, 1, h, h) +
                         conv_flops(width, width, 3, oh, oh) + conv_flops(width, out, 1, oh, oh);
            if (stride != 1 || channels != out)
                flops += conv_flops(channels, out, 1, oh, oh);
            channels = out;
            h = oh;
        }
    }
    return flops + 2.0 * channels * embed_dim;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *weights = "f32";
    int runs = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--weights") && i + 1 < argc)
            weights = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "usage: bench_w2v MODEL.pt [--weights f32|bf16|int8] [--runs N]\n");
            return 2;
        }
    }
    if (!path || runs < 1 || runs > 1000) {
        fprintf(stderr, "usage: bench_w2v MODEL.pt [--weights f32|bf16|int8] [--runs N]\n");
        return 2;
    }
    ear_error err;
    if (ear_nn_set_weight_type(weights, &err) != 0) {
        fprintf(stderr, "bench_w2v: %s\n", err.message);
        return 2;
    }
    ear_nn_set_threads(1);
    double t0 = now();
    ear_nn_model *m = ear_nn_model_load(path, &err);
    double load = now() - t0;
    if (!m) {
        fprintf(stderr, "bench_w2v: %s\n", err.message);
        return 1;
    }
    const ear_nn_config *c = ear_nn_model_config(m);
    ear_nn_session *s = ear_nn_session_create(m, &err);
    size_t n = 160000;
    float *wave = malloc(n * sizeof *wave), *embedding = malloc((size_t)c->embed_dim * sizeof(float));
    ear_image img = {.width = 640, .height = 480, .rgb = malloc(640 * 480 * 3)};
    if (!s || !wave || !embedding || !img.rgb) {
        fprintf(stderr, "bench_w2v: %s\n", s ? "out of memory" : err.message);
        return 1;
    }
    unsigned noise = 12345;
    for (size_t i = 0; i < n; i++) {
        noise = noise * 1103515245u + 12345u;
        double t = (double)i / 16000;
        wave[i] = (float)(0.3 * sin(2 * M_PI * (220 + 30 * t) * t) +
                          0.1 * sin(2 * M_PI * 1750 * t) + 0.02 * ((noise >> 16) / 32768.0 - 1));
    }
    for (size_t i = 0; i < (size_t)640 * 480 * 3; i++)
        img.rgb[i] = (uint8_t)((i * 7 + i / 1920 * 3) & 255);
    printf("bench_w2v: %s, weights %s, 1 thread, load %.3f s\n", path, weights, load);
    double *times = malloc((size_t)runs * sizeof *times), *cpus = malloc((size_t)runs * sizeof *cpus);
    struct {
        const char *what;
        size_t samples;
    } cases[3] = {{"10 s clip", 160000}, {"3 s clip", 48000}, {"image", 0}};
    for (int k = 0; k < 3 && times && cpus; k++) {
        int audio = cases[k].samples > 0;
        if (audio ? !c->has_audio : !c->has_image)
            continue;
        double flops = audio ? w2v_flops(&c->w2v, c->embed_dim, cases[k].samples)
                             : resnet_flops(&c->image_encoder, c->embed_dim, c->image_size);
        for (int r = -1; r < runs; r++) {
            double a = now(), b = cpu();
            int rc = audio ? ear_nn_embed_audio(s, wave, cases[k].samples, embedding, &err)
                           : ear_nn_embed_image(s, &img, embedding, &err);
            if (rc != 0) {
                fprintf(stderr, "bench_w2v: %s\n", err.message);
                return 1;
            }
            if (r >= 0) {
                times[r] = now() - a;
                cpus[r] = cpu() - b;
            }
        }
        qsort(times, (size_t)runs, sizeof *times, compare_doubles);
        qsort(cpus, (size_t)runs, sizeof *cpus, compare_doubles);
        double median = times[runs / 2];
        printf("  %-10s median %.4f s (CPU %.4f s), fastest %.4f s, %.1f GFLOP, %.1f GFLOP/s "
               "(%.1f of CPU time)\n",
               cases[k].what, median, cpus[runs / 2], times[0], flops * 1e-9,
               flops * 1e-9 / median, flops * 1e-9 / cpus[runs / 2]);
    }
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("  peak RSS %.1f MB, session arena %.1f MB\n", usage.ru_maxrss / 1024.0,
           ear_nn_session_bytes(s) / 1048576.0);
    free(times);
    free(cpus);
    free(img.rgb);
    free(wave);
    free(embedding);
    ear_nn_session_free(s);
    ear_nn_model_free(m);
    return 0;
}
