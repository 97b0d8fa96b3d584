/* bench_nn: how fast and how small Ear's model engine is, per tower, at one BLAS thread.
 *
 *   /usr/bin/python3 tools/make_random_model.py --tower audio -o /tmp/audio.safetensors
 *   /usr/bin/python3 tools/make_random_model.py --tower image -o /tmp/image.safetensors
 *   build/bench_nn /tmp/audio.safetensors     # one process per tower: its own peak RSS
 *   build/bench_nn /tmp/image.safetensors
 *   /usr/bin/python3 bench/bench_torch.py /tmp/audio.safetensors   # the same in PyTorch
 *
 * Audio: one clip of --seconds (default 5) of deterministic noise and tones, wave to
 * embedding (log-mel, encoder, head). Image: a --size RGB image already preprocessed to the
 * model's [3, size, size] pixels, pixels to embedding (encoder, head). Prints the median and
 * the fastest of --runs timed runs (default 10, after one warm-up), the forward pass's FLOPs
 * (2 per multiply-add of every convolution and linear layer) and GFLOP/s, and the process's
 * peak resident memory (getrusage). Numbers, not a test: nothing here fails on speed.
 *
 * --weights T (f32, bf16, int8): the backend's weight type; the median is then also given by
 * the thread's CPU time (what the kernels took on a shared machine), and for bf16/int8 the
 * cosine of each embedding against the same model loaded in f32 (after the peak RSS). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/core.h"
#include "nn/nn.h"

char *openblas_get_corename(void);

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int conv_out(int size, int kernel, int stride, int padding)
{
    return (size + 2 * padding - kernel) / stride + 1;
}

static double conv_flops(int in, int out, int kernel, int out_h, int out_w)
{
    return 2.0 * in * out * kernel * kernel * (double)out_h * out_w;
}

/* The encoder's and head's FLOPs on a height x width input, following the spec's ResNet. */
static double tower_flops(const ear_nn_encoder_config *e, const ear_nn_head_config *head,
                          int embed_dim, int height, int width)
{
    int h = conv_out(height, 7, 2, 3), w = conv_out(width, 7, 2, 3);
    int channels = e->widths[0];
    double flops = conv_flops(e->in_channels, channels, 7, h, w);
    h = conv_out(h, 3, 2, 1);
    w = conv_out(w, 3, 2, 1);
    int expansion = e->block == EAR_NN_BLOCK_BOTTLENECK ? 4 : 1;
    for (int stage = 0; stage < e->stage_count; stage++) {
        int width_ = e->widths[stage], out = width_ * expansion;
        for (int b = 0; b < e->layers[stage]; b++) {
            int stride = stage > 0 && b == 0 ? 2 : 1;
            int oh = conv_out(h, 3, stride, 1), ow = conv_out(w, 3, stride, 1);
            if (expansion == 1) {
                flops += conv_flops(channels, width_, 3, oh, ow) +
                         conv_flops(width_, width_, 3, oh, ow);
            } else {
                flops += conv_flops(channels, width_, 1, h, w) +
                         conv_flops(width_, width_, 3, oh, ow) +
                         conv_flops(width_, out, 1, oh, ow);
            }
            if (stride != 1 || channels != out)
                flops += conv_flops(channels, out, 1, oh, ow);
            channels = out;
            h = oh;
            w = ow;
        }
    }
    if (head->type == EAR_NN_HEAD_LINEAR)
        flops += 2.0 * channels * embed_dim;
    else
        flops += 2.0 * channels * head->hidden + 2.0 * head->hidden * embed_dim;
    return flops;
}

typedef int (*embed_fn)(ear_nn_session *s, const void *input, size_t count, float *out,
                        ear_error *err);

static int embed_wave(ear_nn_session *s, const void *input, size_t count, float *out,
                      ear_error *err)
{
    return ear_nn_embed_audio(s, input, count, out, err);
}

static int embed_pixels(ear_nn_session *s, const void *input, size_t count, float *out,
                        ear_error *err)
{
    (void)count;
    return ear_nn_embed_pixels(s, input, out, err);
}

static double cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Times embed; leaves the embedding in out[embed_dim]. */
static int time_runs(const char *tower, ear_nn_session *s, embed_fn embed, const void *input,
                     size_t count, int runs, double flops, float *out)
{
    double *ms = malloc((size_t)runs * sizeof *ms), *cpu = malloc((size_t)runs * sizeof *cpu);
    ear_error err;
    int rc = -1;
    if (!cpu || !ms || embed(s, input, count, out, &err) != 0) { /* warm-up */
        fprintf(stderr, "bench_nn: %s: %s\n", tower, cpu && ms ? err.message : "out of memory");
        goto done;
    }
    for (int i = 0; i < runs; i++) {
        double start = ear_now_ms(), cpu_start = cpu_ms();
        if (embed(s, input, count, out, &err) != 0) {
            fprintf(stderr, "bench_nn: %s: %s\n", tower, err.message);
            goto done;
        }
        ms[i] = ear_now_ms() - start;
        cpu[i] = cpu_ms() - cpu_start;
    }
    qsort(ms, (size_t)runs, sizeof *ms, compare_doubles);
    qsort(cpu, (size_t)runs, sizeof *cpu, compare_doubles);
    double median = runs % 2 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2;
    double cpu_median = runs % 2 ? cpu[runs / 2] : (cpu[runs / 2 - 1] + cpu[runs / 2]) / 2;
    printf("%s: median %.2f ms, fastest %.2f ms over %d runs; %.3f GFLOP per pass, %.1f GFLOP/s "
           "(median); CPU time median %.2f ms, %.1f GFLOP/s\n",
           tower, median, ms[0], runs, flops / 1e9, flops / (median * 1e6), cpu_median,
           flops / (cpu_median * 1e6));
    rc = 0;
done:
    free(cpu);
    free(ms);
    return rc;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    const char *weights = "f32";
    int runs = 10, usage_error = 0;
    double seconds = 5.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--weights") == 0 && i + 1 < argc)
            weights = argv[++i];
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else
            usage_error = 1;
    }
    if (usage_error || !path || runs < 1 || !(seconds > 0)) {
        fprintf(stderr, "usage: bench_nn MODEL [--runs N] [--seconds S] [--weights T]\n");
        return 2;
    }
    ear_nn_set_threads(1);
    ear_error err;
    if (ear_nn_set_weight_type(weights, &err) != 0) {
        fprintf(stderr, "bench_nn: %s\n", err.message);
        return 2;
    }
    double start = ear_now_ms();
    ear_nn_model *model = ear_nn_model_load(path, &err);
    if (!model) {
        fprintf(stderr, "bench_nn: %s\n", err.message);
        return 1;
    }
    double load_ms = ear_now_ms() - start;
    ear_nn_session *session = ear_nn_session_create(model, &err);
    if (!session) {
        fprintf(stderr, "bench_nn: %s\n", err.message);
        ear_nn_model_free(model);
        return 1;
    }
    const ear_nn_config *c = ear_nn_model_config(model);
    printf("model %s: loaded in %.1f ms, fingerprint %s; weights %s; OpenBLAS kernels: %s, 1 "
           "thread; session arena %.1f MiB\n",
           path, load_ms, ear_nn_model_fingerprint(model), weights, openblas_get_corename(),
           ear_nn_session_bytes(session) / 1048576.0);
    int status = 0;
    float *audio_out = calloc((size_t)c->embed_dim, sizeof(float));
    float *image_out = calloc((size_t)c->embed_dim, sizeof(float));
    float *wave = NULL, *pixels = NULL;
    size_t wave_count = 0;
    if (c->has_audio) {
        size_t count = (size_t)(seconds * c->mel.sample_rate);
        wave = malloc(count * sizeof *wave);
        wave_count = count;
        unsigned state = 1;
        for (size_t i = 0; wave && i < count; i++) {
            state = state * 1664525u + 1013904223u;
            double t = (double)i / c->mel.sample_rate;
            wave[i] = (float)(0.3 * sin(2 * M_PI * 440 * t) + 0.2 * sin(2 * M_PI * 3100 * t) +
                              0.1 * ((state >> 8) / 8388608.0 - 1.0));
        }
        size_t segment = ear_nn_model_segment_samples(model);
        size_t segments = count <= segment ? 1 : (count + segment - 1) / segment;
        size_t length = count < segment ? count : segment;
        int frames = (int)(1 + length / (size_t)c->mel.hop_length);
        double flops = (double)segments * tower_flops(&c->audio_encoder, &c->audio_head,
                                                      c->embed_dim, c->mel.n_mels, frames);
        char name[64];
        snprintf(name, sizeof name, "audio %.2g s (%zu segment%s of %dx%d)", seconds, segments,
                 segments == 1 ? "" : "s", c->mel.n_mels, frames);
        if (!wave || time_runs(name, session, embed_wave, wave, count, runs, flops,
                               audio_out) != 0)
            status = 1;
    }
    if (c->has_image) {
        size_t count = 3 * (size_t)c->image_size * (size_t)c->image_size;
        pixels = malloc(count * sizeof *pixels);
        unsigned state = 7;
        for (size_t i = 0; pixels && i < count; i++) {
            state = state * 1664525u + 1013904223u;
            pixels[i] = (float)((state >> 8) / 4194304.0 - 2.0);
        }
        double flops = tower_flops(&c->image_encoder, &c->image_head, c->embed_dim,
                                   c->image_size, c->image_size);
        char name[64];
        snprintf(name, sizeof name, "image %dx%d", c->image_size, c->image_size);
        if (!pixels || time_runs(name, session, embed_pixels, pixels, count, runs, flops,
                                 image_out) != 0)
            status = 1;
    }
    ear_nn_session_free(session);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("peak RSS %.1f MiB\n", usage.ru_maxrss / 1024.0);
    if (status == 0 && strcmp(weights, "f32") != 0) {
        /* The same inputs through the model in float32. */
        ear_nn_set_weight_type("f32", &err);
        ear_nn_model *exact = ear_nn_model_load(path, &err);
        ear_nn_session *es = exact ? ear_nn_session_create(exact, &err) : NULL;
        float *ref = calloc((size_t)c->embed_dim, sizeof *ref);
        const float *outs[2] = {audio_out, image_out};
        for (int t = 0; es && ref && t < 2; t++) {
            if (!(t ? pixels : wave))
                continue;
            int rc = t ? ear_nn_embed_pixels(es, pixels, ref, &err)
                       : ear_nn_embed_audio(es, wave, wave_count, ref, &err);
            double dot = 0, a = 0, b = 0;
            for (int i = 0; rc == 0 && i < c->embed_dim; i++) {
                dot += (double)outs[t][i] * ref[i];
                a += (double)outs[t][i] * outs[t][i];
                b += (double)ref[i] * ref[i];
            }
            if (rc == 0)
                printf("%s: cosine against f32 %.6f\n", t ? "image" : "audio",
                       dot / sqrt(a * b + 1e-30));
        }
        if (!es)
            fprintf(stderr, "bench_nn: f32 model: %s\n", err.message);
        free(ref);
        ear_nn_session_free(es);
        ear_nn_model_free(exact);
    }
    ear_nn_model_free(model);
    free(audio_out);
    free(image_out);
    free(wave);
    free(pixels);
    return status;
}
