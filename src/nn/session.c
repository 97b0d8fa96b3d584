/* Running a model: one arena per session, laid out once for the largest input of each
 * tower (a full audio segment, a size x size image), and three activation slots that the
 * layers take turns in. A request allocates nothing. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/network.h"

/* A session's activations beyond this are a configuration mistake, not a model to run. */
#define MAX_ARENA_BYTES ((size_t)4 << 30)

struct ear_nn_session {
    const ear_nn_model *model;
    ear_audio_mel *mel;
    float *arena;
    size_t arena_bytes;
    float *input;     /* a log-mel segment or a preprocessed image */
    float *slots[3];  /* activations: a block's input, its middle, its shortcut/output */
    float *scratch;   /* im2col columns */
    float *features;  /* the encoder's pooled output */
    float *hidden;    /* an mlp head's hidden layer */
    float *unit;      /* one segment's (or the image's) unit vector */
    float *sum;       /* the sum of a clip's segment vectors */
    size_t slot_floats, scratch_floats;
    void *w2v_arena; /* the wav2vec2 tower's activations (family W2V) */
    size_t w2v_bytes;
};

typedef struct arena_plan {
    size_t input, slot, scratch, features, hidden, embed;
} arena_plan;

static void track(size_t *maximum, size_t value)
{
    if (value > *maximum)
        *maximum = value;
}

/* Follows the shapes through a conv: records its output and scratch, returns the output size.
 * The scratch is the backend's (in floats) once the conv is compiled, else im2col's. */
static void conv_shape(const ear_nn_conv *c, int *height, int *width, size_t *activation,
                       size_t *scratch)
{
    if (c->compiled) {
        track(scratch, (ear_nn_conv2d_scratch_bytes(c->compiled) + sizeof(float) - 1) /
                           sizeof(float));
    } else {
        /* A smaller input can need more scratch than the planned one: the im2col chunk is a
         * whole number of output rows under EAR_NN_SCRATCH_BUDGET, and shorter rows can fill
         * the budget better (a 3.9 s sound after a 5 s plan). So plan for the budget, capped
         * by the whole im2col of the planned input, which no smaller input exceeds. */
        track(scratch, ear_nn_conv_scratch_floats(c, *height, *width));
        if (!ear_nn_conv_is_pointwise(c)) {
            size_t whole = (size_t)c->in_channels * (size_t)(c->kernel * c->kernel) *
                           (size_t)ear_nn_output_size(*height, c->kernel, c->stride, c->padding) *
                           (size_t)ear_nn_output_size(*width, c->kernel, c->stride, c->padding);
            track(scratch, whole < EAR_NN_SCRATCH_BUDGET ? whole : EAR_NN_SCRATCH_BUDGET);
        }
    }
    *height = ear_nn_output_size(*height, c->kernel, c->stride, c->padding);
    *width = ear_nn_output_size(*width, c->kernel, c->stride, c->padding);
    track(activation, (size_t)c->out_channels * (size_t)*height * (size_t)*width);
}

void ear_nn_tower_sizes(const ear_nn_tower *t, size_t *activation, size_t *scratch)
{
    const ear_nn_encoder *e = &t->encoder;
    int h = t->height, w = t->width;
    *activation = *scratch = 0;
    conv_shape(&e->stem, &h, &w, activation, scratch);
    h = ear_nn_output_size(h, 3, 2, 1);
    w = ear_nn_output_size(w, 3, 2, 1);
    track(activation, (size_t)e->stem.out_channels * (size_t)h * (size_t)w);
    for (int b = 0; b < e->block_count; b++) {
        const ear_nn_block *block = &e->blocks[b];
        int bh = h, bw = w;
        for (int k = 0; k < block->conv_count; k++)
            conv_shape(&block->convs[k], &bh, &bw, activation, scratch);
        if (block->has_downsample) {
            int dh = h, dw = w;
            conv_shape(&block->downsample, &dh, &dw, activation, scratch);
        }
        h = bh;
        w = bw;
    }
}

static size_t round_up(size_t floats)
{
    return (floats + 15) & ~(size_t)15; /* 64-byte boundaries */
}

static void plan_arena(const ear_nn_model *m, arena_plan *p)
{
    memset(p, 0, sizeof *p);
    const ear_nn_tower *towers[2] = {&m->audio, &m->image};
    for (int i = 0; i < 2; i++) {
        const ear_nn_tower *t = towers[i];
        if (!t->present)
            continue;
        size_t activation, scratch;
        ear_nn_tower_sizes(t, &activation, &scratch);
        track(&p->input, (size_t)t->in_channels * (size_t)t->height * (size_t)t->width);
        track(&p->slot, activation);
        if (t->in_channels > 1) /* run_tower turns the input to NHWC in a slot */
            track(&p->slot, (size_t)t->in_channels * (size_t)t->height * (size_t)t->width);
        track(&p->scratch, scratch);
        track(&p->features, (size_t)t->encoder.features);
        if (t->head.has_second)
            track(&p->hidden, (size_t)t->head.first.out_features);
    }
    p->embed = (size_t)m->config.embed_dim;
}

static size_t plan_bytes(const arena_plan *p)
{
    size_t floats = round_up(p->input) + 3 * round_up(p->slot) + round_up(p->scratch) +
                    round_up(p->features) + round_up(p->hidden) + 2 * round_up(p->embed);
    return floats * sizeof(float);
}

size_t ear_nn_model_session_bytes(const ear_nn_model *m)
{
    arena_plan p;
    plan_arena(m, &p);
    return plan_bytes(&p) + (m->w2v ? ear_nn_w2v_arena_bytes(m->w2v) : 0);
}

ear_nn_session *ear_nn_session_create(const ear_nn_model *m, ear_error *err)
{
    ear_nn_session *s = calloc(1, sizeof *s);
    if (!s) {
        ear_error_set(err, "out of memory");
        return NULL;
    }
    s->model = m;
    arena_plan p;
    plan_arena(m, &p);
    s->arena_bytes = plan_bytes(&p);
    /* Every plane and matrix dimension must fit the ints of BLAS and of the operators. */
    if (s->arena_bytes > MAX_ARENA_BYTES || p.slot > INT_MAX || p.input > INT_MAX) {
        ear_error_set(err, "the model's largest input needs %zu bytes of activations per session "
                           "(limit %zu)", s->arena_bytes, MAX_ARENA_BYTES);
        goto fail;
    }
    void *arena = NULL;
    if (posix_memalign(&arena, 64, s->arena_bytes) != 0) {
        ear_error_set(err, "out of memory (%zu bytes for a session's arena)", s->arena_bytes);
        goto fail;
    }
    s->arena = arena;
    float *next = s->arena;
    s->input = next;
    next += round_up(p.input);
    for (int i = 0; i < 3; i++) {
        s->slots[i] = next;
        next += round_up(p.slot);
    }
    s->scratch = next;
    next += round_up(p.scratch);
    s->features = next;
    next += round_up(p.features);
    s->hidden = next;
    next += round_up(p.hidden);
    s->unit = next;
    next += round_up(p.embed);
    s->sum = next;
    s->slot_floats = p.slot;
    s->scratch_floats = p.scratch;
    if (m->w2v) {
        s->w2v_bytes = ear_nn_w2v_arena_bytes(m->w2v);
        if (s->w2v_bytes > MAX_ARENA_BYTES) {
            ear_error_set(err, "the model's longest clip needs %zu bytes of activations per "
                               "session (limit %zu)", s->w2v_bytes, MAX_ARENA_BYTES);
            goto fail;
        }
        if (posix_memalign(&s->w2v_arena, 64, s->w2v_bytes) != 0) {
            s->w2v_arena = NULL;
            ear_error_set(err, "out of memory (%zu bytes for a session's arena)", s->w2v_bytes);
            goto fail;
        }
    } else if (m->config.has_audio) {
        s->mel = ear_audio_mel_create(&m->config.mel, err);
        if (!s->mel)
            goto fail;
    }
    return s;
fail:
    ear_nn_session_free(s);
    return NULL;
}

void ear_nn_session_free(ear_nn_session *s)
{
    if (!s)
        return;
    ear_audio_mel_free(s->mel);
    free(s->w2v_arena);
    free(s->arena);
    free(s);
}

/* One convolution (the backend's, NHWC), after checking that its output and scratch fit the
 * plan (they always do for inputs no larger than the planned one; the check keeps a mistake
 * from writing past the arena). */
static int conv(ear_nn_session *s, const ear_nn_conv *c, const float *input, int *height,
                int *width, float *output, int accumulate, int relu, ear_error *err)
{
    int oh = ear_nn_output_size(*height, c->kernel, c->stride, c->padding);
    int ow = ear_nn_output_size(*width, c->kernel, c->stride, c->padding);
    if ((size_t)c->out_channels * (size_t)oh * (size_t)ow > s->slot_floats ||
        ear_nn_conv2d_scratch_bytes(c->compiled) > s->scratch_floats * sizeof(float))
        return ear_error_set(err, "internal: a %dx%d input outgrows the session's arena", *height,
                             *width);
    if (ear_nn_conv2d_run(c->compiled, input, *height, *width, output, accumulate, relu,
                          s->scratch, err) != 0)
        return -1;
    *height = oh;
    *width = ow;
    return 0;
}

/* input [in_channels][height][width] -> the tower's unit vector in s->unit. The activations
 * are NHWC from the stem on (one channel: CHW is already NHWC). */
static int run_tower(ear_nn_session *s, const ear_nn_tower *t, const float *input, int height,
                     int width, ear_error *err)
{
    const ear_nn_encoder *e = &t->encoder;
    float **slot = s->slots;
    int h = height, w = width;
    if (t->in_channels > 1) {
        ear_nn_chw_to_hwc(input, t->in_channels, (size_t)h * (size_t)w, slot[2]);
        input = slot[2];
    }
    if (conv(s, &e->stem, input, &h, &w, slot[0], 0, 1, err) != 0)
        return -1;
    ear_nn_max_pool_hwc(slot[0], e->stem.out_channels, h, w, slot[1]);
    h = ear_nn_output_size(h, 3, 2, 1);
    w = ear_nn_output_size(w, 3, 2, 1);
    int x = 1; /* the slot holding the current activation */
    for (int b = 0; b < e->block_count; b++) {
        const ear_nn_block *block = &e->blocks[b];
        int in = x, mid = (x + 1) % 3, other = (x + 2) % 3;
        int bh = h, bw = w, dh = h, dw = w;
        const ear_nn_conv *last = &block->convs[block->conv_count - 1];
        /* The middle convs, each into the slot the previous one did not use. */
        int from = in, to = mid;
        for (int k = 0; k < block->conv_count - 1; k++) {
            if (conv(s, &block->convs[k], slot[from], &bh, &bw, slot[to], 0, 1, err) != 0)
                return -1;
            from = to;
            to = to == mid ? other : mid;
        }
        /* The shortcut goes where the last conv adds its result: the downsample's output in
         * the free slot, or the block's input itself (the identity). */
        int out = in;
        if (block->has_downsample) {
            out = to;
            if (conv(s, &block->downsample, slot[in], &dh, &dw, slot[out], 0, 0, err) != 0)
                return -1;
        }
        if (conv(s, last, slot[from], &bh, &bw, slot[out], 1, 1, err) != 0)
            return -1;
        x = out;
        h = bh;
        w = bw;
    }
    ear_nn_average_pool_hwc(slot[x], e->features, (size_t)h * (size_t)w, s->features);
    if (t->head.has_second) {
        ear_nn_linear_forward(&t->head.first, s->features, s->hidden, 1);
        ear_nn_linear_forward(&t->head.second, s->hidden, s->unit, 0);
    } else {
        ear_nn_linear_forward(&t->head.first, s->features, s->unit, 0);
    }
    ear_nn_l2_normalize(s->unit, s->model->config.embed_dim);
    return 0;
}

int ear_nn_embed_mel(ear_nn_session *s, const float *mel, size_t frames, float *unit,
                     ear_error *err)
{
    const ear_nn_model *m = s->model;
    if (!m->config.has_audio || m->w2v)
        return ear_error_set(err, "the model has no log-mel audio tower");
    if (frames < 1 || frames > (size_t)m->audio.width)
        return ear_error_set(err, "a log-mel of %zu frames; the model takes 1 to %d", frames,
                             m->audio.width);
    if (run_tower(s, &m->audio, mel, m->audio.height, (int)frames, err) != 0)
        return -1;
    memcpy(unit, s->unit, (size_t)m->config.embed_dim * sizeof *unit);
    return 0;
}

int ear_nn_embed_audio(ear_nn_session *s, const float *wave, size_t count, float *embedding,
                       ear_error *err)
{
    const ear_nn_model *m = s->model;
    const ear_nn_config *c = &m->config;
    if (!c->has_audio)
        return ear_error_set(err, "the model has no audio tower");
    if (m->w2v) {
        if (ear_nn_w2v_embed(m->w2v, wave, count, s->w2v_arena, s->unit, err) != 0)
            return -1;
        memcpy(embedding, s->unit, (size_t)c->embed_dim * sizeof *embedding);
        return 0;
    }
    size_t shortest = ear_nn_model_min_samples(m), segment = m->segment_samples;
    if (count < shortest)
        return ear_error_set(err, "clip too short: %zu samples (%.4f s); the model needs at least "
                                  "%zu (n_fft / 2 + 1)",
                             count, (double)count / c->mel.sample_rate, shortest);
    size_t segments = count <= segment ? 1 : (count + segment - 1) / segment;
    size_t length = count <= segment ? count : segment;
    int dim = c->embed_dim;
    memset(s->sum, 0, (size_t)dim * sizeof *s->sum);
    for (size_t i = 0; i < segments; i++) {
        /* Segment i is [i*S, (i+1)*S), except the last: the clip's last S samples. */
        size_t start = (i + 1) * length <= count ? i * length : count - length;
        size_t frames = ear_audio_mel_frames(s->mel, length);
        if (ear_audio_mel_compute(s->mel, wave + start, length, s->input, err) != 0 ||
            run_tower(s, &m->audio, s->input, m->audio.height, (int)frames, err) != 0)
            return -1;
        for (int d = 0; d < dim; d++)
            s->sum[d] += s->unit[d];
    }
    ear_nn_l2_normalize(s->sum, dim);
    memcpy(embedding, s->sum, (size_t)dim * sizeof *embedding);
    return 0;
}

int ear_nn_embed_pixels(ear_nn_session *s, const float *pixels, float *embedding,
                        ear_error *err)
{
    const ear_nn_model *m = s->model;
    if (!m->config.has_image)
        return ear_error_set(err, "the model has no image tower");
    if (run_tower(s, &m->image, pixels, m->image.height, m->image.width, err) != 0)
        return -1;
    memcpy(embedding, s->unit, (size_t)m->config.embed_dim * sizeof *embedding);
    return 0;
}

int ear_nn_embed_image(ear_nn_session *s, const ear_image *img, float *embedding,
                       ear_error *err)
{
    const ear_nn_model *m = s->model;
    const ear_nn_config *c = &m->config;
    if (!c->has_image)
        return ear_error_set(err, "the model has no image tower");
    if (c->image_resize
            ? ear_image_preprocess_pil(img, c->image_resize, c->image_size, c->image_mean,
                                       c->image_std, s->input, err) != 0
            : ear_image_preprocess(img, c->image_size, c->image_mean, c->image_std, s->input,
                                   err) != 0)
        return -1;
    return ear_nn_embed_pixels(s, s->input, embedding, err);
}

size_t ear_nn_session_bytes(const ear_nn_session *s)
{
    return s->arena_bytes + s->w2v_bytes;
}
