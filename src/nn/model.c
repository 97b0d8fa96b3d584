/* Loading an Ear model file: the container, the metadata, every tensor the configuration
 * needs (and nothing else), then BatchNorm folded into the convolutions in one owned block
 * of float32 weights. The mapping is gone once the model is loaded. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nn/fingerprint.h"
#include "nn/network.h"

#define NAME_SIZE 160

/* Where one convolution's parameters come from in the file. */
typedef struct conv_source {
    ear_nn_conv *conv;
    char weight[NAME_SIZE]; /* the conv's weight tensor */
    char norm[NAME_SIZE];   /* its BatchNorm's prefix: NORM.weight, NORM.bias, NORM.running_* */
} conv_source;

typedef struct linear_source {
    ear_nn_linear *linear;
    char prefix[NAME_SIZE]; /* PREFIX.weight, PREFIX.bias */
} linear_source;

/* Every parameter the configuration needs, in file terms. */
typedef struct model_sources {
    conv_source *convs;
    size_t conv_count, conv_capacity;
    linear_source linears[4];
    size_t linear_count;
} model_sources;

static size_t encoder_block_count(const ear_nn_encoder_config *e)
{
    size_t n = 0;
    for (int i = 0; i < e->stage_count; i++)
        n += (size_t)e->layers[i];
    return n;
}

static void add_conv(model_sources *s, ear_nn_conv *conv, int in, int out, int kernel,
                     int stride, const char *encoder, const char *weight, const char *norm)
{
    conv->in_channels = in;
    conv->out_channels = out;
    conv->kernel = kernel;
    conv->stride = stride;
    conv->padding = kernel / 2;
    conv_source *c = &s->convs[s->conv_count++];
    c->conv = conv;
    snprintf(c->weight, sizeof c->weight, "%s%s", encoder, weight);
    snprintf(c->norm, sizeof c->norm, "%s%s", encoder, norm);
}

static void add_linear(model_sources *s, ear_nn_linear *linear, int in, int out,
                       const char *tower, const char *name)
{
    linear->in_features = in;
    linear->out_features = out;
    linear_source *l = &s->linears[s->linear_count++];
    l->linear = linear;
    snprintf(l->prefix, sizeof l->prefix, "%s.%s", tower, name);
}

/* How a tower's tensors are named: Ear's files ("audio.encoder.conv1.weight", "layer1.0...",
 * "audio.proj") or the original's nn.Sequential of torchvision's children
 * ("image_encoder.0.weight", "image_encoder.1.*" for bn1, "image_encoder.4.0..." for layer1,
 * "image_proj.proj"). */
typedef struct tower_names {
    const char *encoder;                /* prefix of every encoder tensor */
    const char *stem_weight, *stem_norm;
    const char *stage;                  /* printf format of a stage's prefix from its index */
    int first_stage;                    /* the first stage's index */
    const char *head;                   /* the head's prefix, before ".proj" */
} tower_names;

static const tower_names ear_audio_names = {"audio.encoder.", "conv1.weight", "bn1", "layer%d",
                                            1, "audio"};
static const tower_names ear_image_names = {"image.encoder.", "conv1.weight", "bn1", "layer%d",
                                            1, "image"};
static const tower_names torchvision_names = {"image_encoder.", "0.weight", "1", "%d", 4,
                                              "image_proj"};

/* Lays out one tower as the spec's "Encoder resnet" and "Head" say, and records where each
 * parameter comes from. The stem has widths[0] channels, as torchvision's 64 for 64. */
static int build_tower(ear_nn_tower *t, const tower_names *names, const ear_nn_encoder_config *ec,
                       const ear_nn_head_config *hc, int embed_dim, model_sources *s,
                       ear_error *err)
{
    char name[64], norm[64], stage_name[16]; /* encoder + name fits NAME_SIZE */
    const char *encoder = names->encoder, *tower = names->head;
    ear_nn_encoder *e = &t->encoder;
    e->block_count = (int)encoder_block_count(ec);
    e->blocks = calloc((size_t)e->block_count, sizeof *e->blocks);
    if (!e->blocks)
        return ear_error_set(err, "out of memory");
    t->present = 1;
    t->in_channels = ec->in_channels;
    int channels = ec->widths[0];
    add_conv(s, &e->stem, ec->in_channels, channels, 7, 2, encoder, names->stem_weight,
             names->stem_norm);
    int expansion = ec->block == EAR_NN_BLOCK_BOTTLENECK ? 4 : 1;
    ear_nn_block *block = e->blocks;
    for (int stage = 0; stage < ec->stage_count; stage++) {
        int width = ec->widths[stage], out = width * expansion;
        snprintf(stage_name, sizeof stage_name, names->stage, stage + names->first_stage);
        for (int b = 0; b < ec->layers[stage]; b++, block++) {
            int stride = stage > 0 && b == 0 ? 2 : 1;
            /* torchvision's kernels and strides per conv: basic 3x3(stride), 3x3;
             * bottleneck 1x1, 3x3(stride), 1x1 to 4 * width. */
            static const int basic[2][2] = {{3, 1}, {3, 0}};
            static const int bottleneck[3][2] = {{1, 0}, {3, 1}, {1, 0}};
            block->conv_count = expansion == 4 ? 3 : 2;
            int in = channels;
            for (int k = 0; k < block->conv_count; k++) {
                const int *shape = expansion == 4 ? bottleneck[k] : basic[k];
                int conv_out = k == block->conv_count - 1 ? out : width;
                snprintf(name, sizeof name, "%s.%d.conv%d.weight", stage_name, b, k + 1);
                snprintf(norm, sizeof norm, "%s.%d.bn%d", stage_name, b, k + 1);
                add_conv(s, &block->convs[k], in, conv_out, shape[0], shape[1] ? stride : 1,
                         encoder, name, norm);
                in = conv_out;
            }
            if (stride != 1 || channels != out) {
                block->has_downsample = 1;
                snprintf(name, sizeof name, "%s.%d.downsample.0.weight", stage_name, b);
                snprintf(norm, sizeof norm, "%s.%d.downsample.1", stage_name, b);
                add_conv(s, &block->downsample, channels, out, 1, stride, encoder, name, norm);
            }
            channels = out;
        }
    }
    e->features = channels;
    if (hc->type == EAR_NN_HEAD_LINEAR) {
        add_linear(s, &t->head.first, channels, embed_dim, tower, "proj");
    } else {
        t->head.has_second = 1;
        add_linear(s, &t->head.first, channels, hc->hidden, tower, "proj.0");
        add_linear(s, &t->head.second, hc->hidden, embed_dim, tower, "proj.2");
    }
    return 0;
}

static int is_float(ear_nn_dtype d)
{
    return d == EAR_NN_DTYPE_F32 || d == EAR_NN_DTYPE_F16 || d == EAR_NN_DTYPE_BF16;
}

static int is_integer(ear_nn_dtype d)
{
    return d >= EAR_NN_DTYPE_I64 && d <= EAR_NN_DTYPE_BOOL;
}

/* Finds a tensor the model needs and checks its dtype and shape; marks it used. */
const ear_nn_tensor_info *ear_nn_expect_tensor(const ear_nn_safetensors *file,
                                               unsigned char *used, const char *name,
                                               const int64_t *shape, int ndim, const char *path,
                                               ear_error *err)
{
    const ear_nn_tensor_info *t = ear_nn_safetensors_find(file, name);
    if (!t) {
        ear_error_set(err, "%s: tensor %s is missing", path, name);
        return NULL;
    }
    if (!is_float(t->dtype)) {
        ear_error_set(err, "%s: tensor %s has dtype %s; weights must be F32, F16 or BF16", path,
                      name, ear_nn_dtype_name(t->dtype));
        return NULL;
    }
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char want[96], got[96];
        ear_nn_shape_format(shape, ndim, want, sizeof want);
        ear_nn_shape_format(t->shape, t->ndim, got, sizeof got);
        ear_error_set(err, "%s: tensor %s has shape %s, the configuration needs %s", path, name,
                      got, want);
        return NULL;
    }
    used[t - file->tensors] = 1;
    return t;
}

static const char *const norm_parts[4] = {"weight", "bias", "running_mean", "running_var"};

/* Every needed tensor present with the right dtype and shape, and no float tensor that the
 * configuration does not explain (a file and a configuration that disagree are refused). */
static int check_tensors(const ear_nn_safetensors *file, const model_sources *s,
                         ear_nn_model *m, unsigned char *used, const char *path, ear_error *err)
{
    int rc = -1;
    char name[NAME_SIZE + 16];
    for (size_t i = 0; i < s->conv_count; i++) {
        const ear_nn_conv *c = s->convs[i].conv;
        int64_t weight[4] = {c->out_channels, c->in_channels, c->kernel, c->kernel};
        int64_t channels[1] = {c->out_channels};
        if (!ear_nn_expect_tensor(file, used, s->convs[i].weight, weight, 4, path, err))
            goto fail;
        for (int p = 0; p < 4; p++) {
            snprintf(name, sizeof name, "%s.%s", s->convs[i].norm, norm_parts[p]);
            if (!ear_nn_expect_tensor(file, used, name, channels, 1, path, err))
                goto fail;
        }
    }
    for (size_t i = 0; i < s->linear_count; i++) {
        const ear_nn_linear *l = s->linears[i].linear;
        int64_t weight[2] = {l->out_features, l->in_features}, bias[1] = {l->out_features};
        snprintf(name, sizeof name, "%s.weight", s->linears[i].prefix);
        if (!ear_nn_expect_tensor(file, used, name, weight, 2, path, err))
            goto fail;
        snprintf(name, sizeof name, "%s.bias", s->linears[i].prefix);
        if (!ear_nn_expect_tensor(file, used, name, bias, 1, path, err))
            goto fail;
    }
    for (size_t i = 0; i < file->count; i++) {
        const ear_nn_tensor_info *t = &file->tensors[i];
        if (used[i] || is_integer(t->dtype))
            continue; /* the spec: integer tensors (num_batches_tracked) are ignored */
        if (strcmp(t->name, "logit_scale") == 0 && is_float(t->dtype) && t->element_count == 1 &&
            t->ndim <= 1) {
            m->has_logit_scale = 1;
            continue;
        }
        if (strcmp(t->name, "logit_scale") == 0) {
            ear_error_set(err, "%s: tensor logit_scale must be one F32, F16 or BF16 number", path);
            goto fail;
        }
        ear_error_set(err, "%s: unexpected tensor %s (%s): the configuration has no place for it",
                      path, t->name, ear_nn_dtype_name(t->dtype));
        goto fail;
    }
    rc = 0;
fail:
    return rc;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu, bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | mantissa << 13;
    } else if (exponent != 0) {
        bits = sign | (exponent + 112) << 23 | mantissa << 13;
    } else if (mantissa == 0) {
        bits = sign;
    } else { /* subnormal: normalise the mantissa */
        exponent = 113;
        while (!(mantissa & 0x400u)) {
            mantissa <<= 1;
            exponent--;
        }
        bits = sign | exponent << 23 | (mantissa & 0x3ffu) << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* A tensor's values as float32 into out (element_count floats); non-finite values are
 * refused. The mapped pages are released afterwards. */
int ear_nn_tensor_read(const ear_nn_safetensors *file, const ear_nn_tensor_info *t, float *out,
                       const char *path, ear_error *err)
{
    const uint8_t *p = t->data;
    size_t n = t->element_count;
    if (t->dtype == EAR_NN_DTYPE_F32) {
        memcpy(out, p, n * sizeof *out);
    } else {
        for (size_t i = 0; i < n; i++) {
            uint16_t v = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            if (t->dtype == EAR_NN_DTYPE_F16) {
                out[i] = half_to_float(v);
            } else {
                uint32_t bits = (uint32_t)v << 16;
                memcpy(&out[i], &bits, sizeof bits);
            }
        }
    }
    ear_nn_safetensors_release(file, t->data, t->end - t->begin);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(out[i]))
            return ear_error_set(err, "%s: tensor %s holds a non-finite value (element %zu)", path,
                                 t->name, i);
    return 0;
}

/* conv weight * gamma / sqrt(var + eps) per output channel, bias beta - mean * that scale:
 * BatchNorm with running statistics becomes part of the convolution. */
static int fold_conv(const ear_nn_safetensors *file, const conv_source *src, float *weight,
                     float *bias, float *norm, const char *path, ear_error *err)
{
    const ear_nn_conv *c = src->conv;
    size_t out = (size_t)c->out_channels;
    size_t fan_in = (size_t)c->in_channels * (size_t)c->kernel * (size_t)c->kernel;
    if (ear_nn_tensor_read(file, ear_nn_safetensors_find(file, src->weight), weight, path, err) != 0)
        return -1;
    char name[NAME_SIZE + 16];
    for (int p = 0; p < 4; p++) {
        snprintf(name, sizeof name, "%s.%s", src->norm, norm_parts[p]);
        if (ear_nn_tensor_read(file, ear_nn_safetensors_find(file, name), norm + (size_t)p * out, path,
                        err) != 0)
            return -1;
    }
    const float *gamma = norm, *beta = norm + out, *mean = norm + 2 * out, *var = norm + 3 * out;
    for (size_t o = 0; o < out; o++) {
        if (var[o] < 0)
            return ear_error_set(err, "%s: tensor %s.running_var holds a negative variance "
                                      "(channel %zu)", path, src->norm, o);
        double scale = gamma[o] / sqrt((double)var[o] + EAR_NN_BATCHNORM_EPSILON);
        float *row = weight + o * fan_in;
        for (size_t i = 0; i < fan_in; i++)
            row[i] = (float)(row[i] * scale);
        bias[o] = (float)(beta[o] - mean[o] * scale);
    }
    return 0;
}

static size_t conv_floats(const ear_nn_conv *c)
{
    return (size_t)c->out_channels * (size_t)c->in_channels * (size_t)c->kernel *
               (size_t)c->kernel + (size_t)c->out_channels;
}

/* A block of floats for the weights, in 2 MiB pages where the kernel offers transparent huge
 * pages on request: tens of thousands fewer page faults while the weights are written, which
 * was most of `ear serve`'s start-up (bench/compare_seed.py). Freed with free(). */
static float *alloc_weights(size_t floats)
{
    const size_t huge = (size_t)2 << 20;
    size_t bytes = floats * sizeof(float);
    void *block = NULL;
    if (posix_memalign(&block, bytes >= huge ? huge : 64, bytes ? bytes : 1) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (bytes >= huge)
        (void)madvise(block, bytes, MADV_HUGEPAGE); /* advice only: 4 KiB pages still work */
#endif
    return block;
}

/* Converts the first conv_count convolutions' and linear_count linear layers' parameters
 * (every one, or the audio tower's alone, which comes first): each convolution folded into a
 * scratch buffer and handed to the backend in the process's weight type
 * (ear_nn_set_weight_type), the linear layers into one owned block. */
static int load_weights(ear_nn_model *m, const ear_nn_safetensors *file, const model_sources *s,
                        size_t conv_count, size_t linear_count, const char *path,
                        ear_error *err)
{
    size_t total = 0, widest = 1, largest = 1;
    for (size_t i = 0; i < conv_count; i++) {
        if (conv_floats(s->convs[i].conv) > largest)
            largest = conv_floats(s->convs[i].conv);
        if ((size_t)s->convs[i].conv->out_channels > widest)
            widest = (size_t)s->convs[i].conv->out_channels;
    }
    for (size_t i = 0; i < linear_count; i++) {
        const ear_nn_linear *l = s->linears[i].linear;
        total += (size_t)l->out_features * (size_t)(l->in_features + 1);
    }
    m->weights = alloc_weights(total);
    float *norm = malloc(4 * widest * sizeof *norm);
    float *folded = malloc(largest * sizeof *folded);
    int rc = -1;
    if (!m->weights || !norm || !folded) {
        ear_error_set(err, "%s: out of memory (%zu bytes of weights)", path, total * sizeof(float));
        goto fail;
    }
    m->weight_floats = total;
    float *next = m->weights;
    ear_nn_weights type = ear_nn_backend_weights();
    m->audio.weights = m->image.weights = type;
    ear_nn_tower *towers[2] = {&m->audio, &m->image};
    for (int t = 0; t < 2; t++)
        if (towers[t]->present)
            ear_nn_tower_shapes(towers[t]);
    for (size_t i = 0; i < conv_count; i++) {
        ear_nn_conv *c = s->convs[i].conv;
        float *weight = folded, *bias = folded + conv_floats(c) - (size_t)c->out_channels;
        ear_error inner;
        if (fold_conv(file, &s->convs[i], weight, bias, norm, path, err) != 0)
            goto fail;
        if (ear_nn_conv_compile(c, weight, bias, type, &inner) != 0) {
            ear_error_set(err, "%s: %s: %s", path, s->convs[i].weight, inner.message);
            goto fail;
        }
    }
    char name[NAME_SIZE + 16];
    for (size_t i = 0; i < linear_count; i++) {
        ear_nn_linear *l = s->linears[i].linear;
        float *weight = next, *bias = next + (size_t)l->out_features * (size_t)l->in_features;
        snprintf(name, sizeof name, "%s.weight", s->linears[i].prefix);
        if (ear_nn_tensor_read(file, ear_nn_safetensors_find(file, name), weight, path, err) != 0)
            goto fail;
        snprintf(name, sizeof name, "%s.bias", s->linears[i].prefix);
        if (ear_nn_tensor_read(file, ear_nn_safetensors_find(file, name), bias, path, err) != 0)
            goto fail;
        l->weight = weight;
        l->bias = bias;
        next = bias + l->out_features;
    }
    if (m->has_logit_scale &&
        ear_nn_tensor_read(file, ear_nn_safetensors_find(file, "logit_scale"), &m->logit_scale, path,
                    err) != 0)
        goto fail;
    rc = 0;
fail:
    free(norm);
    free(folded);
    return rc;
}

/* The hash of the whole file. Hashing reads every page; each chunk is released after it so
 * that the file is never resident in full next to the converted weights. */
static void fingerprint(const ear_nn_safetensors *file, char out[17])
{
    const size_t chunk = (size_t)4 << 20;
    ear_nn_xxh64 state;
    ear_nn_xxh64_init(&state, 0);
    for (size_t offset = 0; offset < file->size; offset += chunk) {
        size_t n = file->size - offset < chunk ? file->size - offset : chunk;
        ear_nn_xxh64_update(&state, file->map + offset, n);
        ear_nn_safetensors_release(file, file->map + offset, n);
    }
    snprintf(out, 17, "%016llx", (unsigned long long)ear_nn_xxh64_digest(&state));
}

/* The three ear.* keys and the configuration. */
static int read_metadata(const ear_nn_safetensors *file, ear_nn_config *config,
                         const char *path, ear_error *err)
{
    static const char *const keys[3] = {"ear.format", "ear.version", "ear.config"};
    const char *values[3];
    for (int i = 0; i < 3; i++) {
        values[i] = ear_nn_safetensors_metadata(file, keys[i]);
        if (!values[i])
            return ear_error_set(err, "%s: __metadata__ has no %s: not an Ear model file", path,
                                 keys[i]);
    }
    if (strcmp(values[0], "avclip") != 0)
        return ear_error_set(err, "%s: ear.format is \"%.40s\", not \"avclip\"", path, values[0]);
    if (strcmp(values[1], "1") != 0)
        return ear_error_set(err, "%s: ear.version is \"%.40s\"; this Ear reads version 1", path,
                             values[1]);
    ear_error inner;
    if (ear_nn_config_parse(values[2], config, &inner) != 0)
        return ear_error_set(err, "%s: %s", path, inner.message);
    return 0;
}

static int read_config(const ear_nn_safetensors *file, ear_nn_config *c, const char *path,
                       ear_error *err);

int ear_nn_model_read_config(const char *path, ear_nn_config *config, ear_error *err)
{
    ear_nn_safetensors file;
    if (ear_nn_tensor_file_open(&file, path, err) != 0)
        return -1;
    int rc = read_config(&file, config, path, err);
    ear_nn_safetensors_close(&file);
    return rc;
}

static void count_file(ear_nn_model *m, const ear_nn_safetensors *file)
{
    m->file_bytes = file->size;
    m->tensor_count = file->count;
    for (size_t i = 0; i < file->count; i++) {
        const ear_nn_tensor_info *t = &file->tensors[i];
        m->dtype_counts[t->dtype]++;
        size_t length = strlen(t->name);
        /* torch's parameters: BatchNorm's running statistics are buffers, not parameters. */
        int buffer = is_integer(t->dtype) ||
                     (length > 13 && strcmp(t->name + length - 13, ".running_mean") == 0) ||
                     (length > 12 && strcmp(t->name + length - 12, ".running_var") == 0);
        if (!buffer)
            m->parameter_count += t->element_count;
    }
}

#define W2V_PREFIX "audio_encoder.model."
#define W2V_HEAD "audio_proj.proj"

/* The first dimension of a 2-D tensor, or 0 when it is absent or not 2-D. */
static int rows_of(const ear_nn_safetensors *file, const char *name)
{
    const ear_nn_tensor_info *t = ear_nn_safetensors_find(file, name);
    return t && t->ndim == 2 && t->shape[0] > 0 && t->shape[0] <= 65536 ? (int)t->shape[0] : 0;
}

/* torchvision's ResNet trunk from the shapes of image_encoder.*: stem width, then stages 4.. as
 * long as they exist, blocks per stage, width from each stage's first conv1, bottleneck when
 * conv3 exists. */
static int detect_torchvision(const ear_nn_safetensors *file, ear_nn_encoder_config *e,
                              const char *path, ear_error *err)
{
    char name[96];
    const ear_nn_tensor_info *stem = ear_nn_safetensors_find(file, "image_encoder.0.weight");
    if (!stem || stem->ndim != 4 || stem->shape[1] != 3 || stem->shape[2] != 7 ||
        stem->shape[3] != 7 || stem->shape[0] < 1 || stem->shape[0] > 8192)
        return ear_error_set(err, "%s: tensor image_encoder.0.weight is %s; torchvision's stem "
                                  "is [width, 3, 7, 7]",
                             path, stem ? "misshapen" : "missing");
    e->in_channels = 3;
    e->stage_count = 0;
    e->block = ear_nn_safetensors_find(file, "image_encoder.4.0.conv3.weight")
                   ? EAR_NN_BLOCK_BOTTLENECK
                   : EAR_NN_BLOCK_BASIC;
    for (int s = 0; s < EAR_NN_MAX_STAGES; s++) {
        int blocks = 0;
        for (;; blocks++) {
            snprintf(name, sizeof name, "image_encoder.%d.%d.conv1.weight", 4 + s, blocks);
            if (!ear_nn_safetensors_find(file, name))
                break;
        }
        if (blocks == 0)
            break;
        snprintf(name, sizeof name, "image_encoder.%d.0.conv1.weight", 4 + s);
        const ear_nn_tensor_info *t = ear_nn_safetensors_find(file, name);
        if (t->ndim != 4 || t->shape[0] < 1 || t->shape[0] > 8192 || blocks > 64)
            return ear_error_set(err, "%s: tensor %s is misshapen", path, name);
        e->layers[s] = blocks;
        e->widths[s] = (int)t->shape[0];
        e->stage_count++;
    }
    if (e->stage_count == 0)
        return ear_error_set(err, "%s: tensor image_encoder.4.0.conv1.weight is missing: no "
                                  "ResNet stage",
                             path);
    if (e->widths[0] != stem->shape[0])
        return ear_error_set(err, "%s: image_encoder.0.weight has %lld channels but the first "
                                  "stage %d: not torchvision's ResNet",
                             path, (long long)stem->shape[0], e->widths[0]);
    return 0;
}

/* The original's AudioVisualCLIP, its configuration read from the tensors (overrides from an
 * Ear file's configuration already in c: w2v.heads, w2v.layer_norm_first). */
static int detect_w2v(const ear_nn_safetensors *file, ear_nn_config *c, const char *path,
                      ear_error *err)
{
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    c->family = EAR_NN_FAMILY_W2V;
    ear_audio_mel_config_default(&c->mel);
    c->mel.sample_rate = 16000; /* what `ear` decodes sounds at for this model */
    c->has_audio = ear_nn_safetensors_find(file, W2V_PREFIX
                                           "feature_extractor.conv_layers.0.conv.weight") != NULL;
    c->has_image = ear_nn_safetensors_find(file, "image_encoder.0.weight") != NULL;
    if (!c->has_audio && !c->has_image)
        return ear_error_set(err, "%s: unknown architecture: neither an Ear model (__metadata__ has no "
                                  "ear.format, ear.version, ear.config) "
                                  "nor the original's AudioVisualCLIP (no tensor "
                                  "audio_encoder.model.feature_extractor.conv_layers.0.conv.weight"
                                  " or image_encoder.0.weight)",
                             path);
    int audio_dim = rows_of(file, W2V_HEAD ".weight"),
        image_dim = rows_of(file, "image_proj.proj.weight");
    if (c->has_audio && !audio_dim)
        return ear_error_set(err, "%s: tensor " W2V_HEAD ".weight is missing or not 2-D", path);
    if (c->has_image && !image_dim)
        return ear_error_set(err, "%s: tensor image_proj.proj.weight is missing or not 2-D", path);
    if (c->has_audio && c->has_image && audio_dim != image_dim)
        return ear_error_set(err, "%s: the heads disagree: " W2V_HEAD ".weight gives %d, "
                                  "image_proj.proj.weight %d",
                             path, audio_dim, image_dim);
    c->embed_dim = c->has_audio ? audio_dim : image_dim;
    if (c->has_audio) {
        c->segment_seconds = 10;
        if (ear_nn_w2v_detect(file, W2V_PREFIX, &c->w2v, path, err) != 0)
            return -1;
        c->segment_seconds = c->w2v.max_seconds;
    }
    if (c->has_image) {
        c->image_size = 224;
        c->image_resize = 232;
        memcpy(c->image_mean, mean, sizeof mean);
        memcpy(c->image_std, std, sizeof std);
        c->image_head.type = EAR_NN_HEAD_LINEAR;
        if (detect_torchvision(file, &c->image_encoder, path, err) != 0)
            return -1;
    }
    return 0;
}

/* The configuration: an Ear file's ear.config (family compact, or "wav2vec2" with the tensors
 * read as the original's), or a bare state_dict of the original's model. */
static int read_config(const ear_nn_safetensors *file, ear_nn_config *c, const char *path,
                       ear_error *err)
{
    const char *config = ear_nn_safetensors_metadata(file, "ear.config");
    memset(c, 0, sizeof *c);
    c->w2v.layer_norm_first = -1;
    if (!config && !ear_nn_safetensors_metadata(file, "ear.format") &&
        !ear_nn_safetensors_metadata(file, "ear.version"))
        return detect_w2v(file, c, path, err);
    if (!config)
        return read_metadata(file, c, path, err);
    int heads = 0, first = -1;
    if (ear_nn_config_family(config, &heads, &first)) {
        c->w2v.heads = heads;
        c->w2v.layer_norm_first = first;
        return detect_w2v(file, c, path, err);
    }
    return read_metadata(file, c, path, err);
}

enum { LOAD_BOTH, LOAD_AUDIO, LOAD_IMAGE };

static ear_nn_model *load(const char *path, int which, ear_error *err)
{
    ear_nn_blas_prepare();
    ear_nn_safetensors file = {0};
    model_sources sources = {0};
    unsigned char *used = NULL;
    ear_nn_model *m = calloc(1, sizeof *m);
    if (!m) {
        ear_error_set(err, "%s: out of memory", path);
        return NULL;
    }
    if (ear_nn_tensor_file_open(&file, path, err) != 0 ||
        read_config(&file, &m->config, path, err) != 0)
        goto fail;
    const ear_nn_config *c = &m->config;
    int w2v = c->family == EAR_NN_FAMILY_W2V;
    size_t blocks = (c->has_audio && !w2v ? encoder_block_count(&c->audio_encoder) : 0) +
                    (c->has_image ? encoder_block_count(&c->image_encoder) : 0);
    sources.conv_capacity = 2 + 4 * blocks; /* a stem per tower; at most 4 convs per block */
    sources.convs = calloc(sources.conv_capacity, sizeof *sources.convs);
    used = calloc(file.count ? file.count : 1, 1);
    if (!sources.convs || !used) {
        ear_error_set(err, "%s: out of memory", path);
        goto fail;
    }
    ear_error inner;
    size_t audio_convs = 0, audio_linears = 0;
    if (c->has_audio && !w2v) {
        m->segment_samples = (size_t)nearbyint(c->segment_seconds * c->mel.sample_rate);
        m->audio.height = c->mel.n_mels;
        m->audio.width = (int)(1 + m->segment_samples / (size_t)c->mel.hop_length);
        if (build_tower(&m->audio, &ear_audio_names, &c->audio_encoder, &c->audio_head,
                        c->embed_dim, &sources, &inner) != 0) {
            ear_error_set(err, "%s: %s", path, inner.message);
            goto fail;
        }
        audio_convs = sources.conv_count;
        audio_linears = sources.linear_count;
    }
    if (c->has_image) {
        m->image.height = m->image.width = c->image_size;
        if (build_tower(&m->image, w2v ? &torchvision_names : &ear_image_names,
                        &c->image_encoder, &c->image_head, c->embed_dim, &sources,
                        &inner) != 0) {
            ear_error_set(err, "%s: %s", path, inner.message);
            goto fail;
        }
    }
    if (c->has_audio && w2v && which == LOAD_IMAGE) {
        /* Not converted, so not checked either: only the image tower is wanted. */
        size_t n = strlen(W2V_PREFIX), h = strlen(W2V_HEAD ".");
        for (size_t i = 0; i < file.count; i++)
            if (strncmp(file.tensors[i].name, W2V_PREFIX, n) == 0 ||
                strncmp(file.tensors[i].name, W2V_HEAD ".", h) == 0)
                used[i] = 1;
        m->config.has_audio = 0;
    } else if (c->has_audio && w2v) {
        m->segment_samples = (size_t)(c->w2v.max_seconds * c->w2v.sample_rate);
        m->w2v = ear_nn_w2v_load(&file, used, W2V_PREFIX, W2V_HEAD, &c->w2v, c->embed_dim,
                                 ear_nn_backend_weights(), path, err);
        if (!m->w2v)
            goto fail;
    }
    if (check_tensors(&file, &sources, m, used, path, err) != 0)
        goto fail;
    fingerprint(&file, m->fingerprint);
    if (which == LOAD_AUDIO && c->has_audio) {
        /* The image tower was checked with the rest of the file; it is not converted, and the
         * model then has none (no weights, no room for it in the sessions' arenas). */
        if (load_weights(m, &file, &sources, audio_convs, audio_linears, path, err) != 0)
            goto fail;
        m->image.present = 0;
        m->config.has_image = 0;
    } else if (load_weights(m, &file, &sources, sources.conv_count, sources.linear_count, path,
                            err) != 0) {
        goto fail;
    }
    count_file(m, &file);
    free(sources.convs);
    free(used);
    ear_nn_safetensors_close(&file);
    return m;
fail:
    free(sources.convs);
    free(used);
    ear_nn_safetensors_close(&file);
    ear_nn_model_free(m);
    return NULL;
}

ear_nn_model *ear_nn_model_load(const char *path, ear_error *err)
{
    return load(path, LOAD_BOTH, err);
}

ear_nn_model *ear_nn_model_load_audio(const char *path, ear_error *err)
{
    return load(path, LOAD_AUDIO, err);
}

ear_nn_model *ear_nn_model_load_image(const char *path, ear_error *err)
{
    return load(path, LOAD_IMAGE, err);
}

void ear_nn_model_free(ear_nn_model *m)
{
    if (!m)
        return;
    ear_nn_tower_release(&m->audio);
    ear_nn_tower_release(&m->image);
    free(m->audio.encoder.blocks);
    free(m->image.encoder.blocks);
    free(m->weights);
    ear_nn_w2v_free(m->w2v);
    free(m);
}

const ear_nn_config *ear_nn_model_config(const ear_nn_model *m)
{
    return &m->config;
}

const char *ear_nn_model_fingerprint(const ear_nn_model *m)
{
    return m->fingerprint;
}

size_t ear_nn_model_segment_samples(const ear_nn_model *m)
{
    return m->config.has_audio ? m->segment_samples : 0;
}

void ear_nn_model_decode_options(const ear_nn_model *m, ear_audio_decode_options *o)
{
    o->sample_rate = m->config.mel.sample_rate;
    if (m->w2v) {
        o->sample_rate = m->config.w2v.sample_rate;
        o->ffmpeg_cli = 1;
        /* One sample past the cut tells the caller that there was more. */
        if (o->max_seconds <= 0 || o->max_seconds > m->config.w2v.max_seconds)
            o->max_seconds = m->config.w2v.max_seconds;
    }
}

size_t ear_nn_model_min_samples(const ear_nn_model *m)
{
    if (m->w2v)
        return ear_nn_w2v_min_samples(m->w2v);
    return m->config.has_audio ? (size_t)m->config.mel.n_fft / 2 + 1 : 0;
}

static void describe_encoder(FILE *out, const ear_nn_encoder_config *e, int features)
{
    fprintf(out, "    encoder      resnet, %s blocks, layers [",
            e->block == EAR_NN_BLOCK_BASIC ? "basic" : "bottleneck");
    for (int i = 0; i < e->stage_count; i++)
        fprintf(out, "%s%d", i ? ", " : "", e->layers[i]);
    fprintf(out, "], widths [");
    for (int i = 0; i < e->stage_count; i++)
        fprintf(out, "%s%d", i ? ", " : "", e->widths[i]);
    fprintf(out, "], %d input channel%s -> %d features\n", e->in_channels,
            e->in_channels == 1 ? "" : "s", features);
}

static void describe_head(FILE *out, const ear_nn_head_config *h, int features, int embed_dim)
{
    if (h->type == EAR_NN_HEAD_LINEAR)
        fprintf(out, "    head         linear %d -> %d\n", features, embed_dim);
    else
        fprintf(out, "    head         mlp %d -> %d -> ReLU -> %d\n", features, h->hidden,
                embed_dim);
}

void ear_nn_model_describe(const ear_nn_model *m, FILE *out)
{
    const ear_nn_config *c = &m->config;
    if (c->family == EAR_NN_FAMILY_W2V)
        fprintf(out, "AudioVisualCLIP (the original's model: wav2vec2 + torchvision ResNet)\n");
    else
        fprintf(out, "Ear model (format avclip, version 1)\n");
    fprintf(out, "  fingerprint    %s\n", m->fingerprint);
    fprintf(out, "  file           %zu bytes, %zu tensors (", m->file_bytes, m->tensor_count);
    int first = 1;
    for (int d = 0; d < EAR_NN_DTYPE_COUNT; d++)
        if (m->dtype_counts[d]) {
            fprintf(out, "%s%zu %s", first ? "" : ", ", m->dtype_counts[d],
                    ear_nn_dtype_name((ear_nn_dtype)d));
            first = 0;
        }
    fprintf(out, ")\n");
    fprintf(out, "  parameters     %zu\n", m->parameter_count);
    fprintf(out, "  embed_dim      %d\n", c->embed_dim);
    if (m->has_logit_scale)
        fprintf(out, "  logit_scale    %.6g (temperature 1/%.4g)\n", m->logit_scale,
                exp(m->logit_scale));
    if (c->has_audio && m->w2v) {
        const ear_nn_w2v_config *w = &c->w2v;
        fprintf(out, "  audio tower    wav2vec2 (torchaudio Wav2Vec2Model), raw %d Hz wave, the "
                     "first %g s\n", w->sample_rate, w->max_seconds);
        fprintf(out, "    extractor    %d convs (%s, conv bias %s):", w->conv_count,
                w->layer_norm_extractor ? "layer_norm" : "group_norm",
                w->conv_bias ? "yes" : "no");
        for (int i = 0; i < w->conv_count; i++)
            fprintf(out, " (%d,%d,%d)", w->conv_channels[i], w->conv_kernel[i], w->conv_stride[i]);
        fprintf(out, "; clips from %zu samples\n", ear_nn_w2v_min_samples(m->w2v));
        fprintf(out, "    encoder      width %d, %d layers, %d heads (assumed: width / 64 unless "
                     "configured), ffn %d, %s; positional conv kernel %d, %d groups\n",
                w->embed, w->layers, w->heads, w->ffn,
                w->layer_norm_first ? "pre-LN" : "post-LN", w->pos_kernel, w->pos_groups);
        fprintf(out, "    output       last layer averaged over frames\n");
        fprintf(out, "    head         linear %d -> %d (audio_proj.proj), L2\n", w->embed,
                c->embed_dim);
        fprintf(out, "    weights      %zu bytes (%s matrix products)\n",
                ear_nn_w2v_weight_bytes(m->w2v), ear_nn_weights_name(ear_nn_backend_weights()));
    } else if (c->has_audio) {
        const ear_audio_mel_config *a = &c->mel;
        fprintf(out, "  audio tower\n");
        fprintf(out, "    log-mel      %d Hz, n_fft %d, win_length %d, hop_length %d, %d mels "
                     "from %g to %g Hz\n",
                a->sample_rate, a->n_fft, a->win_length, a->hop_length, a->n_mels, a->f_min,
                a->f_max);
        fprintf(out, "    normalise    log(mel + %g), mean %g, std %g\n", a->log_offset, a->mean,
                a->std);
        fprintf(out, "    segments     %g s = %zu samples = %d frames; clips from %zu samples\n",
                c->segment_seconds, m->segment_samples, m->audio.width,
                ear_nn_model_min_samples(m));
        describe_encoder(out, &c->audio_encoder, m->audio.encoder.features);
        describe_head(out, &c->audio_head, m->audio.encoder.features, c->embed_dim);
    }
    if (c->has_image) {
        fprintf(out, "  image tower\n");
        if (c->image_resize)
            fprintf(out, "    resize       short side to %d (PIL bilinear, antialiased), centre "
                         "crop:\n", c->image_resize);
        fprintf(out, "    input        %dx%d RGB, mean [%g, %g, %g], std [%g, %g, %g]\n",
                c->image_size, c->image_size, c->image_mean[0], c->image_mean[1],
                c->image_mean[2], c->image_std[0], c->image_std[1], c->image_std[2]);
        describe_encoder(out, &c->image_encoder, m->image.encoder.features);
        describe_head(out, &c->image_head, m->image.encoder.features, c->embed_dim);
    }
    fprintf(out, "  memory         %zu bytes of weights (%s, BatchNorm folded), %zu bytes "
                 "per session\n",
            m->weight_floats * sizeof(float) + ear_nn_tower_compiled_bytes(&m->audio) +
                ear_nn_tower_compiled_bytes(&m->image),
            ear_nn_weights_name(m->audio.present ? m->audio.weights : m->image.weights),
            ear_nn_model_session_bytes(m));
}
