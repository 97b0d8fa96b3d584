/* The original's audio tower: torchaudio's Wav2Vec2Model (torchaudio/models/wav2vec2/
 * components.py, the reference for every operator here), `extract_features`' last layer
 * averaged over frames, then the Linear head and L2 normalisation.
 *
 * Activations are time-major, [frames][channels]. That makes every convolution of the
 * feature extractor a plain matrix product: output frame t reads the kernel * in_channels
 * floats that start at input frame stride * t, so with the weight reordered to
 * [out][kernel][in] the input itself is the matrix, with row stride stride * in_channels
 * (the first conv: the wave, row stride 5, 10 columns). No im2col. The first two convs run
 * fused in bands (fused_extractor), so that the first's output, the largest activation, is
 * never whole.
 *
 * What a state_dict does not show, and the conventions taken (every torchaudio and fairseq
 * wav2vec2/HuBERT configuration follows them):
 *   - conv strides: 5 for a kernel of 10, else 2;
 *   - heads: embed / 64 (base 12 for 768, large 16 for 1024);
 *   - pre-LN layers exactly when the extractor is LayerNorm'd (torchaudio's wav2vec2_base and
 *     _large: group_norm, post-LN; _large_lv60k, xlsr: layer_norm, pre-LN).
 * An Ear safetensors file may state heads and layer_norm_first in its configuration.
 *
 * Order of operations (Transformer.get_intermediate_outputs): x + GELU(pos_conv(x)); the
 * encoder LayerNorm only when the layers are post-LN (torchaudio builds Transformer with
 * layer_norm_first = not encoder_layer_norm_first; for pre-LN layers that LayerNorm comes
 * after the last layer in forward(), which extract_features does not apply). */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/network.h"

#define NAME_SIZE 192
/* Extractor matrix products run in bands of rows: bounded scratch, cache-sized pieces. */
#define BAND_ROWS 2048
/* The first two convs run fused, in bands of this many of the second's output rows: the first
 * conv's output (the largest activation: 32,000 x 512 floats for 10 s) never exists whole. */
#define FUSED_ROWS 1024
#define NORM_EPSILON 1e-5

typedef struct w2v_conv {
    ear_nn_matmul *mm;
    int in, out, kernel, stride;
    const float *norm_weight, *norm_bias; /* GroupNorm or LayerNorm affine, or NULL */
} w2v_conv;

typedef struct w2v_layer {
    ear_nn_matmul *qkv, *out, *ff1, *ff2;
    const float *ln_weight, *ln_bias, *final_weight, *final_bias;
} w2v_layer;

struct ear_nn_w2v {
    ear_nn_w2v_config c;
    int embed_dim;
    w2v_conv convs[EAR_NN_W2V_MAX_CONVS];
    const float *fp_weight, *fp_bias; /* feature projection LayerNorm */
    ear_nn_matmul *projection;
    ear_nn_matmul **pos; /* one per group */
    const float *pos_bias;
    const float *enc_weight, *enc_bias; /* encoder LayerNorm */
    w2v_layer *layers;
    ear_nn_attention *attention; /* bf16 products, or NULL: float32 through OpenBLAS */
    ear_nn_matmul *head;
    float *small; /* every norm's affine and the pos conv bias: one block */
    size_t max_samples;
    int frames[EAR_NN_W2V_MAX_CONVS + 1]; /* frames after conv i-1 for the longest clip */
    size_t scratch_bytes, weight_bytes;
    /* Arena layout (floats). */
    size_t off_a, off_b, off_band, off_x, off_t, off_qkv, off_ctx, off_h, off_scores, off_pad, off_y,
        off_stats, off_scratch, arena_floats;
};

static int output_frames(int input, int kernel, int stride)
{
    return input < kernel ? 0 : (input - kernel) / stride + 1;
}

/* Rows of the second conv per fused band, and rows of the first conv that band reads. */
static int fused_rows(const ear_nn_w2v *w)
{
    return w->frames[2] < FUSED_ROWS ? w->frames[2] : FUSED_ROWS;
}

static int fused_band(const ear_nn_w2v *w)
{
    return w->c.conv_stride[1] * (fused_rows(w) - 1) + w->c.conv_kernel[1];
}

static const ear_nn_tensor_info *find(const ear_nn_safetensors *file, const char *prefix,
                                      const char *name)
{
    char full[NAME_SIZE];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return ear_nn_safetensors_find(file, full);
}

int ear_nn_w2v_detect(const ear_nn_safetensors *file, const char *prefix, ear_nn_w2v_config *c,
                      const char *path, ear_error *err)
{
    char name[NAME_SIZE];
    const ear_nn_tensor_info *t;
    int in = 1;
    c->conv_count = 0;
    for (int i = 0;; i++) {
        snprintf(name, sizeof name, "feature_extractor.conv_layers.%d.conv.weight", i);
        if (!(t = find(file, prefix, name)))
            break;
        if (i == EAR_NN_W2V_MAX_CONVS)
            return ear_error_set(err, "%s: more than %d feature extractor convolutions", path,
                                 EAR_NN_W2V_MAX_CONVS);
        if (t->ndim != 3 || t->shape[1] != in || t->shape[0] < 1 || t->shape[0] > 8192 ||
            t->shape[2] < 1 || t->shape[2] > 64) {
            char got[96];
            ear_nn_shape_format(t->shape, t->ndim, got, sizeof got);
            return ear_error_set(err, "%s: tensor %s%s has shape %s; a wav2vec2 feature "
                                      "extractor conv is [out, %d, kernel]",
                                 path, prefix, name, got, in);
        }
        c->conv_channels[i] = (int)t->shape[0];
        c->conv_kernel[i] = (int)t->shape[2];
        c->conv_stride[i] = c->conv_kernel[i] == 10 ? 5 : 2;
        if (c->conv_kernel[i] < c->conv_stride[i])
            c->conv_stride[i] = c->conv_kernel[i];
        in = c->conv_channels[i];
        c->conv_count++;
    }
    if (c->conv_count == 0)
        return ear_error_set(err, "%s: tensor %sfeature_extractor.conv_layers.0.conv.weight is "
                                  "missing: not a wav2vec2 model", path, prefix);
    c->features = in;
    c->conv_bias = find(file, prefix, "feature_extractor.conv_layers.0.conv.bias") != NULL;
    c->layer_norm_extractor =
        c->conv_count > 1 &&
        find(file, prefix, "feature_extractor.conv_layers.1.layer_norm.weight") != NULL;
    t = find(file, prefix, "encoder.feature_projection.projection.weight");
    if (!t || t->ndim != 2 || t->shape[1] != c->features || t->shape[0] < 1 ||
        t->shape[0] > 8192)
        return ear_error_set(err, "%s: tensor %sencoder.feature_projection.projection.weight is "
                                  "%s; it must be [embed, %d]",
                             path, prefix, t ? "misshapen" : "missing", c->features);
    c->embed = (int)t->shape[0];
    const ear_nn_tensor_info *v = find(file, prefix, "encoder.transformer.pos_conv_embed.conv."
                                                     "weight_v");
    if (!v)
        v = find(file, prefix,
                 "encoder.transformer.pos_conv_embed.conv.parametrizations.weight.original1");
    if (!v || v->ndim != 3 || v->shape[0] != c->embed || v->shape[1] < 1 ||
        c->embed % v->shape[1] != 0 || v->shape[2] < 1 || v->shape[2] > 1024)
        return ear_error_set(err, "%s: tensor %sencoder.transformer.pos_conv_embed.conv.weight_v "
                                  "(or .parametrizations.weight.original1) is %s; it must be "
                                  "[%d, %d / groups, kernel]",
                             path, prefix, v ? "misshapen" : "missing", c->embed, c->embed);
    c->pos_kernel = (int)v->shape[2];
    c->pos_groups = c->embed / (int)v->shape[1];
    c->layers = 0;
    for (;; c->layers++) {
        snprintf(name, sizeof name, "encoder.transformer.layers.%d.attention.q_proj.weight",
                 c->layers);
        if (!find(file, prefix, name))
            break;
    }
    if (c->layers == 0)
        return ear_error_set(err, "%s: tensor %sencoder.transformer.layers.0.attention.q_proj."
                                  "weight is missing",
                             path, prefix);
    t = find(file, prefix, "encoder.transformer.layers.0.feed_forward.intermediate_dense.weight");
    if (!t || t->ndim != 2 || t->shape[1] != c->embed || t->shape[0] < 1 || t->shape[0] > 65536)
        return ear_error_set(err, "%s: tensor %sencoder.transformer.layers.0.feed_forward."
                                  "intermediate_dense.weight is %s; it must be [ffn, %d]",
                             path, prefix, t ? "misshapen" : "missing", c->embed);
    c->ffn = (int)t->shape[0];
    if (c->heads <= 0) {
        if (c->embed % 64 != 0)
            return ear_error_set(err, "%s: wav2vec2 width %d is not a multiple of 64: the head "
                                      "count cannot be inferred (torchaudio's 64 per head); "
                                      "give it in an Ear model file's configuration",
                                 path, c->embed);
        c->heads = c->embed / 64;
    }
    if (c->embed % c->heads != 0)
        return ear_error_set(err, "%s: %d heads do not divide the width %d", path, c->heads,
                             c->embed);
    if (c->layer_norm_first < 0)
        c->layer_norm_first = c->layer_norm_extractor;
    c->sample_rate = 16000;
    c->max_seconds = 10;
    return 0;
}

/* Every tensor checked (and marked) first, then converted: a misshapen tensor is named
 * before anything is allocated for the weights. */
typedef struct loader {
    const ear_nn_safetensors *file;
    unsigned char *used;
    const char *prefix, *path;
    ear_error *err;
    float *temp;     /* one tensor in float32 */
    float *reorder;  /* one tensor reordered */
    float *small;    /* the next free float of the model's small block */
    ear_nn_weights weights;
} loader;

static const ear_nn_tensor_info *need(loader *l, const char *name, int ndim, int64_t d0,
                                      int64_t d1, int64_t d2)
{
    char full[NAME_SIZE];
    snprintf(full, sizeof full, "%s%s", l->prefix, name);
    int64_t shape[3] = {d0, d1, d2};
    return ear_nn_expect_tensor(l->file, l->used, full, shape, ndim, l->path, l->err);
}

/* A small vector (norm affine, bias) into the small block. */
static const float *vector(loader *l, const char *name, int n)
{
    const ear_nn_tensor_info *t = need(l, name, 1, n, 0, 0);
    if (!t)
        return NULL;
    float *out = l->small;
    if (ear_nn_tensor_read(l->file, t, out, l->path, l->err) != 0)
        return NULL;
    l->small += (n + 15) & ~15;
    return out;
}

/* A Linear layer (PREFIX.weight [out][in], PREFIX.bias) into a backend matmul. */
static ear_nn_matmul *linear(loader *l, const char *name, int out, int in, int max_rows)
{
    char w[NAME_SIZE], b[NAME_SIZE];
    snprintf(w, sizeof w, "%s.weight", name);
    snprintf(b, sizeof b, "%s.bias", name);
    const ear_nn_tensor_info *tw = need(l, w, 2, out, in, 0), *tb = need(l, b, 1, out, 0, 0);
    if (!tw || !tb)
        return NULL;
    if (ear_nn_tensor_read(l->file, tw, l->temp, l->path, l->err) != 0 ||
        ear_nn_tensor_read(l->file, tb, l->reorder, l->path, l->err) != 0)
        return NULL;
    return ear_nn_matmul_create(l->temp, l->reorder, out, in, max_rows, l->weights, l->err);
}

/* q, k and v as one [3 * embed][embed] product. */
static ear_nn_matmul *qkv(loader *l, int layer, int embed, int max_rows)
{
    static const char *const parts[3] = {"q_proj", "k_proj", "v_proj"};
    const ear_nn_tensor_info *tw[3], *tb[3];
    char w[NAME_SIZE], b[NAME_SIZE];
    for (int i = 0; i < 3; i++) {
        snprintf(w, sizeof w, "encoder.transformer.layers.%d.attention.%s.weight", layer,
                 parts[i]);
        snprintf(b, sizeof b, "encoder.transformer.layers.%d.attention.%s.bias", layer,
                 parts[i]);
        if (!(tw[i] = need(l, w, 2, embed, embed, 0)) || !(tb[i] = need(l, b, 1, embed, 0, 0)))
            return NULL;
    }
    size_t square = (size_t)embed * (size_t)embed;
    float *bias = l->reorder + 3 * square;
    for (int i = 0; i < 3; i++)
        if (ear_nn_tensor_read(l->file, tw[i], l->reorder + (size_t)i * square, l->path,
                               l->err) != 0 ||
            ear_nn_tensor_read(l->file, tb[i], bias + (size_t)i * (size_t)embed, l->path,
                               l->err) != 0)
            return NULL;
    return ear_nn_matmul_create(l->reorder, bias, 3 * embed, embed, max_rows, l->weights,
                                l->err);
}

static int load_extractor(ear_nn_w2v *w, loader *l)
{
    const ear_nn_w2v_config *c = &w->c;
    char name[NAME_SIZE];
    int in = 1;
    for (int i = 0; i < c->conv_count; i++) {
        w2v_conv *v = &w->convs[i];
        v->in = in;
        v->out = c->conv_channels[i];
        v->kernel = c->conv_kernel[i];
        v->stride = c->conv_stride[i];
        snprintf(name, sizeof name, "feature_extractor.conv_layers.%d.conv.weight", i);
        const ear_nn_tensor_info *tw = need(l, name, 3, v->out, in, v->kernel), *tb = NULL;
        if (!tw)
            return -1;
        if (c->conv_bias) {
            snprintf(name, sizeof name, "feature_extractor.conv_layers.%d.conv.bias", i);
            if (!(tb = need(l, name, 1, v->out, 0, 0)))
                return -1;
        }
        if (c->layer_norm_extractor || i == 0) {
            snprintf(name, sizeof name, "feature_extractor.conv_layers.%d.layer_norm.weight", i);
            if (!(v->norm_weight = vector(l, name, v->out)))
                return -1;
            snprintf(name, sizeof name, "feature_extractor.conv_layers.%d.layer_norm.bias", i);
            if (!(v->norm_bias = vector(l, name, v->out)))
                return -1;
        }
        {
            /* [out][in][kernel] -> [out][kernel][in]: the time-major input's row layout. */
            if (ear_nn_tensor_read(l->file, tw, l->temp, l->path, l->err) != 0)
                return -1;
            size_t fan = (size_t)in * (size_t)v->kernel;
            for (int o = 0; o < v->out; o++)
                for (int ch = 0; ch < in; ch++)
                    for (int k = 0; k < v->kernel; k++)
                        l->reorder[(size_t)o * fan + (size_t)k * (size_t)in + (size_t)ch] =
                            l->temp[(size_t)o * fan + (size_t)ch * (size_t)v->kernel + (size_t)k];
            float *bias = NULL;
            if (tb) {
                bias = l->temp;
                if (ear_nn_tensor_read(l->file, tb, bias, l->path, l->err) != 0)
                    return -1;
            }
            int rows = w->frames[i + 1] < BAND_ROWS ? w->frames[i + 1] : BAND_ROWS;
            if (c->conv_count >= 2 && i < 2)
                rows = i == 0 ? fused_band(w) : fused_rows(w);
            /* The first conv reads the raw wave with K = kernel (10): 0.2 % of the FLOPs, but
             * converting every 10-sample window to u8 or bf16 and int8's epilogue over its
             * 512 outputs per frame (twice: GroupNorm's statistics pass, then the real one)
             * cost more than the product. float32 is cheaper here, and exact. */
            ear_nn_weights type = i == 0 && in == 1 ? EAR_NN_WEIGHTS_F32 : l->weights;
            v->mm = ear_nn_matmul_create(l->reorder, bias, v->out, (int)fan, rows, type, l->err);
            if (!v->mm)
                return -1;
        }
        in = v->out;
    }
    return 0;
}

/* weight = g * v / |v|, the norm over every dimension but 2 (the kernel), reordered per group
 * to [out][kernel][in] for the padded group-major input. */
static int load_pos_conv(ear_nn_w2v *w, loader *l)
{
    const ear_nn_w2v_config *c = &w->c;
    int e = c->embed, k = c->pos_kernel, groups = c->pos_groups, eg = e / groups;
    const char *base = "encoder.transformer.pos_conv_embed.conv.";
    char g_name[NAME_SIZE], v_name[NAME_SIZE], b_name[NAME_SIZE];
    snprintf(g_name, sizeof g_name, "%sweight_g", base);
    snprintf(v_name, sizeof v_name, "%sweight_v", base);
    if (!find(l->file, l->prefix, v_name)) {
        snprintf(g_name, sizeof g_name, "%sparametrizations.weight.original0", base);
        snprintf(v_name, sizeof v_name, "%sparametrizations.weight.original1", base);
    }
    snprintf(b_name, sizeof b_name, "%sbias", base);
    const ear_nn_tensor_info *tg = need(l, g_name, 3, 1, 1, k), *tv = need(l, v_name, 3, e, eg, k);
    if (!tg || !tv || !(w->pos_bias = vector(l, b_name, e)))
        return -1;
    float *v = l->temp, g[1024];
    double norm[1024];
    if (ear_nn_tensor_read(l->file, tg, g, l->path, l->err) != 0 ||
        ear_nn_tensor_read(l->file, tv, v, l->path, l->err) != 0)
        return -1;
    for (int j = 0; j < k; j++)
        norm[j] = 0;
    for (size_t i = 0; i < (size_t)e * (size_t)eg; i++)
        for (int j = 0; j < k; j++)
            norm[j] += (double)v[i * (size_t)k + (size_t)j] * v[i * (size_t)k + (size_t)j];
    for (int j = 0; j < k; j++)
        norm[j] = g[j] / sqrt(norm[j]);
    size_t fan = (size_t)k * (size_t)eg;
    for (int grp = 0; grp < groups; grp++) {
        for (int o = 0; o < eg; o++) {
            const float *src = v + (size_t)(grp * eg + o) * fan;
            float *dst = l->reorder + (size_t)o * fan;
            for (int ch = 0; ch < eg; ch++)
                for (int j = 0; j < k; j++)
                    dst[(size_t)j * (size_t)eg + (size_t)ch] =
                        (float)(src[(size_t)ch * (size_t)k + (size_t)j] * norm[j]);
        }
        w->pos[grp] = ear_nn_matmul_create(l->reorder, w->pos_bias + grp * eg, eg, (int)fan,
                                           w->frames[c->conv_count], l->weights, l->err);
        if (!w->pos[grp])
            return -1;
    }
    return 0;
}

static size_t track_scratch(size_t current, const ear_nn_matmul *mm)
{
    size_t s = mm ? ear_nn_matmul_scratch_bytes(mm) : 0;
    return s > current ? s : current;
}

static size_t up(size_t floats)
{
    return (floats + 15) & ~(size_t)15;
}

static void plan(ear_nn_w2v *w)
{
    const ear_nn_w2v_config *c = &w->c;
    size_t a = 0, b = 0, band = 0;
    for (int i = c->conv_count >= 2 ? 1 : 0; i < c->conv_count; i++) {
        size_t n = (size_t)w->frames[i + 1] * (size_t)c->conv_channels[i];
        if (i % 2 == 0)
            a = n > a ? n : a;
        else
            b = n > b ? n : b;
    }
    if (c->conv_count >= 2)
        band = (size_t)fused_band(w) * (size_t)c->conv_channels[0];
    size_t t = (size_t)w->frames[c->conv_count], e = (size_t)c->embed;
    size_t eg = e / (size_t)c->pos_groups;
    size_t next = 0;
    w->off_a = next, next += up(a);
    w->off_b = next, next += up(b);
    w->off_band = next, next += up(band);
    w->off_x = next, next += up(t * e);
    w->off_t = next, next += up(t * e);
    w->off_qkv = next, next += up(t * 3 * e);
    w->off_ctx = next, next += up(t * e);
    w->off_h = next, next += up(t * (size_t)c->ffn);
    w->off_scores = next, next += up(t * t);
    w->off_pad = next, next += up((t + (size_t)c->pos_kernel) * eg);
    w->off_y = next, next += up(t * eg > e ? t * eg : e);
    w->off_stats = next, next += up(6 * (size_t)(c->features > c->embed ? c->features : c->embed));
    for (int i = 0; i < c->conv_count; i++)
        next += up(6 * (size_t)c->conv_channels[i]);
    w->off_scratch = next, next += up(w->scratch_bytes / sizeof(float) + 1);
    w->arena_floats = next;
}

ear_nn_w2v *ear_nn_w2v_load(const ear_nn_safetensors *file, unsigned char *used,
                            const char *prefix, const char *head_prefix,
                            const ear_nn_w2v_config *c, int embed_dim, ear_nn_weights weights,
                            const char *path, ear_error *err)
{
    ear_nn_w2v *w = calloc(1, sizeof *w);
    if (!w) {
        ear_error_set(err, "%s: out of memory", path);
        return NULL;
    }
    w->c = *c;
    w->embed_dim = embed_dim;
    w->max_samples = (size_t)(c->max_seconds * c->sample_rate);
    w->frames[0] = (int)w->max_samples;
    for (int i = 0; i < c->conv_count; i++)
        w->frames[i + 1] = output_frames(w->frames[i], c->conv_kernel[i], c->conv_stride[i]);
    int frames = w->frames[c->conv_count];
    loader l = {file, used, prefix, path, err, NULL, NULL, NULL, weights};
    size_t temp = (size_t)3 * (size_t)c->embed * (size_t)c->embed + 3 * (size_t)c->embed;
    size_t sizes[4] = {(size_t)c->embed * (size_t)c->ffn,
                       (size_t)c->embed * (size_t)(c->embed / c->pos_groups) *
                           (size_t)c->pos_kernel,
                       (size_t)c->features * (size_t)c->embed,
                       (size_t)embed_dim * (size_t)c->embed};
    for (int i = 0; i < 4; i++)
        temp = sizes[i] > temp ? sizes[i] : temp;
    for (int i = 0; i < c->conv_count; i++) {
        size_t n = (size_t)c->conv_channels[i] * (size_t)(i ? c->conv_channels[i - 1] : 1) *
                   (size_t)c->conv_kernel[i];
        temp = n > temp ? n : temp;
    }
    size_t small = (size_t)(2 * c->conv_count + 6 + 4 * c->layers) *
                   up((size_t)(c->embed > c->features ? c->embed : c->features) + 16);
    for (int i = 0; i < c->conv_count; i++)
        small += 2 * up((size_t)c->conv_channels[i]);
    w->layers = calloc((size_t)c->layers, sizeof *w->layers);
    w->pos = calloc((size_t)c->pos_groups, sizeof *w->pos);
    w->small = malloc(small * sizeof(float));
    l.temp = malloc(temp * sizeof(float));
    l.reorder = malloc(temp * sizeof(float));
    if (!w->layers || !w->pos || !w->small || !l.temp || !l.reorder) {
        ear_error_set(err, "%s: out of memory", path);
        goto fail;
    }
    l.small = w->small;
    if (frames < 1) {
        ear_error_set(err, "%s: the wav2vec2 feature extractor leaves no frame of a %g s clip",
                      path, c->max_seconds);
        goto fail;
    }
    char name[NAME_SIZE];
    int e = c->embed;
    if (load_extractor(w, &l) != 0 ||
        !(w->fp_weight = vector(&l, "encoder.feature_projection.layer_norm.weight", c->features)) ||
        !(w->fp_bias = vector(&l, "encoder.feature_projection.layer_norm.bias", c->features)))
        goto fail;
    if (!(w->projection =
              linear(&l, "encoder.feature_projection.projection", e, c->features, frames)))
        goto fail;
    if (load_pos_conv(w, &l) != 0 ||
        !(w->enc_weight = vector(&l, "encoder.transformer.layer_norm.weight", e)) ||
        !(w->enc_bias = vector(&l, "encoder.transformer.layer_norm.bias", e)))
        goto fail;
    for (int i = 0; i < c->layers; i++) {
        w2v_layer *y = &w->layers[i];
        const char *p = "encoder.transformer.layers.";
        y->qkv = qkv(&l, i, e, frames);
#define LINEAR(field, part, out, in)                                                           \
    snprintf(name, sizeof name, "%s%d.%s", p, i, part);                                        \
    y->field = linear(&l, name, out, in, frames);                                              \
    if (!y->field)                                                                             \
        goto fail;
#define VECTOR(field, part, n)                                                                 \
    snprintf(name, sizeof name, "%s%d.%s", p, i, part);                                        \
    if (!(y->field = vector(&l, name, n)))                                                     \
        goto fail;
        if (!y->qkv)
            goto fail;
        LINEAR(out, "attention.out_proj", e, e)
        LINEAR(ff1, "feed_forward.intermediate_dense", c->ffn, e)
        LINEAR(ff2, "feed_forward.output_dense", e, c->ffn)
        VECTOR(ln_weight, "layer_norm.weight", e)
        VECTOR(ln_bias, "layer_norm.bias", e)
        VECTOR(final_weight, "final_layer_norm.weight", e)
        VECTOR(final_bias, "final_layer_norm.bias", e)
#undef LINEAR
#undef VECTOR
    }
    {
        int heads = c->heads, d = e / heads;
        ear_error why = {{0}}; /* NULL and no message: float32 attention, not a failure */
        w->attention = ear_nn_attention_create(e, heads, frames, 1.0f / sqrtf((float)d), weights,
                                               &why);
        if (!w->attention && why.message[0]) {
            ear_error_set(err, "%s: %s", path, why.message);
            goto fail;
        }
    }
    /* The head lives outside the tower's prefix. */
    l.prefix = "";
    if (!(w->head = linear(&l, head_prefix, embed_dim, e, 1)))
        goto fail;
    /* Whatever else the tower holds (a CTC head `aux`) is not used by extract_features. */
    for (size_t i = 0; i < file->count; i++) {
        size_t n = strlen(prefix);
        if (strncmp(file->tensors[i].name, prefix, n) == 0 &&
            strncmp(file->tensors[i].name + n, "aux.", 4) == 0)
            used[i] = 1;
    }
    free(l.temp);
    free(l.reorder);
    l.temp = l.reorder = NULL;
    {
        size_t s = 0;
        for (int i = 0; i < c->conv_count; i++) {
            s = track_scratch(s, w->convs[i].mm);
            w->weight_bytes += ear_nn_matmul_weight_bytes(w->convs[i].mm);
        }
        ear_nn_matmul *all[4] = {w->projection, w->head, NULL, NULL};
        for (int i = 0; i < 2; i++) {
            s = track_scratch(s, all[i]);
            w->weight_bytes += ear_nn_matmul_weight_bytes(all[i]);
        }
        for (int g = 0; g < c->pos_groups; g++) {
            s = track_scratch(s, w->pos[g]);
            w->weight_bytes += ear_nn_matmul_weight_bytes(w->pos[g]);
        }
        for (int i = 0; i < c->layers; i++) {
            ear_nn_matmul *mms[4] = {w->layers[i].qkv, w->layers[i].out, w->layers[i].ff1,
                                     w->layers[i].ff2};
            for (int j = 0; j < 4; j++) {
                s = track_scratch(s, mms[j]);
                w->weight_bytes += ear_nn_matmul_weight_bytes(mms[j]);
            }
        }
        size_t att = ear_nn_attention_scratch_bytes(w->attention);
        s = att > s ? att : s; /* between the qkv and out products: the same scratch */
        w->weight_bytes += small * sizeof(float);
        w->scratch_bytes = s;
        plan(w);
    }
    return w;
fail:
    free(l.temp);
    free(l.reorder);
    ear_nn_w2v_free(w);
    return NULL;
}

void ear_nn_w2v_free(ear_nn_w2v *w)
{
    if (!w)
        return;
    for (int i = 0; i < EAR_NN_W2V_MAX_CONVS; i++)
        ear_nn_matmul_free(w->convs[i].mm);
    ear_nn_matmul_free(w->projection);
    ear_nn_matmul_free(w->head);
    if (w->pos)
        for (int g = 0; g < w->c.pos_groups; g++)
            ear_nn_matmul_free(w->pos[g]);
    if (w->layers)
        for (int i = 0; i < w->c.layers; i++) {
            ear_nn_matmul_free(w->layers[i].qkv);
            ear_nn_matmul_free(w->layers[i].out);
            ear_nn_matmul_free(w->layers[i].ff1);
            ear_nn_matmul_free(w->layers[i].ff2);
        }
    ear_nn_attention_free(w->attention);
    free(w->pos);
    free(w->layers);
    free(w->small);
    free(w);
}

size_t ear_nn_w2v_arena_bytes(const ear_nn_w2v *w)
{
    return w->arena_floats * sizeof(float);
}

size_t ear_nn_w2v_weight_bytes(const ear_nn_w2v *w)
{
    return w->weight_bytes;
}

size_t ear_nn_w2v_min_samples(const ear_nn_w2v *w)
{
    size_t n = 1;
    for (int i = w->c.conv_count - 1; i >= 0; i--)
        n = (n - 1) * (size_t)w->c.conv_stride[i] + (size_t)w->c.conv_kernel[i];
    return n;
}

/* ------------------------------------------------------------------ operators */

/* The elementwise loops below are compiled for AVX-512 and AVX2 as well, picked at run time:
 * a 10 s clip's first GroupNorm alone normalises and GELUs 16 million values. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SIMD_CLONES
#endif

/* erf to a few float ulps (Eigen's and XLA's rational approximation on [-4, 4], where float's
 * erf reaches +-1), branch-free so that it vectorises; GELU(x) = x / 2 (1 + erf(x / sqrt 2)),
 * the exact GELU torch uses, not its tanh approximation. */
static inline float erf_approx(float x)
{
    x = x > 4.0f ? 4.0f : x < -4.0f ? -4.0f : x;
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 - 2.10102402082508e-06f;
    p = p * x2 - 5.69250639462346e-05f;
    p = p * x2 - 7.34990630326855e-04f;
    p = p * x2 - 2.95459980854025e-03f;
    p = p * x2 - 1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 - 2.13374055278905e-04f;
    q = q * x2 - 1.68282697438203e-03f;
    q = q * x2 - 7.37332916720468e-03f;
    q = q * x2 - 1.42647390514189e-02f;
    return x * p / q;
}

SIMD_CLONES static void gelu_inplace(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 0.5f * x[i] * (1.0f + erf_approx(x[i] * 0.70710678118654752f));
}

/* One row: (x - mean) * inv * weight + bias. */
SIMD_CLONES static void normalise_row(const float *x, float *y, int n, float mean, float inv,
                                      const float *weight, const float *bias)
{
    for (int i = 0; i < n; i++)
        y[i] = (x[i] - mean) * inv * weight[i] + bias[i];
}

/* LayerNorm over each row of [rows][n] (biased variance, eps 1e-5), from in to out (may be
 * the same), then GELU when asked. */
static void layer_norm(const float *in, float *out, size_t rows, int n, const float *weight,
                       const float *bias, int with_gelu)
{
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * (size_t)n;
        float *y = out + r * (size_t)n;
        double sum = 0, squares = 0;
        for (int i = 0; i < n; i++)
            sum += x[i];
        double mean = sum / n;
        for (int i = 0; i < n; i++) {
            double d = x[i] - mean;
            squares += d * d;
        }
        normalise_row(x, y, n, (float)mean, (float)(1.0 / sqrt(squares / n + NORM_EPSILON)),
                      weight, bias);
        if (with_gelu)
            gelu_inplace(y, (size_t)n);
    }
}

SIMD_CLONES static void column_sums(const float *x, size_t rows, int n, const double *mean,
                                    double *sum)
{
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * (size_t)n;
        if (mean)
            for (int i = 0; i < n; i++)
                sum[i] += ((double)row[i] - mean[i]) * ((double)row[i] - mean[i]);
        else
            for (int i = 0; i < n; i++)
                sum[i] += row[i];
    }
}

SIMD_CLONES static void column_moments(const float *x, size_t rows, int n, double *sum,
                                       double *squares)
{
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * (size_t)n;
        for (int i = 0; i < n; i++) {
            sum[i] += row[i];
            squares[i] += (double)row[i] * row[i];
        }
    }
}

SIMD_CLONES static void normalise_columns(float *x, size_t rows, int n, const float *scale,
                                          const float *shift)
{
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * (size_t)n;
        for (int i = 0; i < n; i++)
            row[i] = row[i] * scale[i] + shift[i];
    }
}

/* GroupNorm with one group per channel over time-major [rows][n]: each column normalised over
 * the rows (two passes, in double), the affine folded into one scale and shift per column,
 * then GELU. stats: 4 n floats' room as doubles, then 2 n floats. */
static void group_norm_gelu(float *x, size_t rows, int n, const float *weight, const float *bias,
                            double *stats)
{
    double *mean = stats, *squares = stats + n;
    float *scale = (float *)(stats + 2 * n), *shift = scale + n;
    for (int i = 0; i < n; i++)
        mean[i] = squares[i] = 0;
    column_sums(x, rows, n, NULL, mean);
    for (int i = 0; i < n; i++)
        mean[i] /= (double)rows;
    column_sums(x, rows, n, mean, squares);
    for (int i = 0; i < n; i++) {
        double inv = 1.0 / sqrt(squares[i] / (double)rows + NORM_EPSILON);
        scale[i] = (float)(inv * weight[i]);
        shift[i] = (float)(bias[i] - mean[i] * inv * weight[i]);
    }
    normalise_columns(x, rows, n, scale, shift);
    gelu_inplace(x, rows * (size_t)n);
}

/* e^x for x <= 0 to about 1 ulp (Cephes' expf polynomial, the power of two put in the
 * exponent bits), branch-free so that a row of scores vectorises. */
static inline float exp_nonpositive(float x)
{
    x = x > -87.0f ? x : -87.0f; /* a NaN (scores of a model that overflowed) too */
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        int32_t bits;
        float value;
    } scale = {.bits = ((int32_t)n + 127) << 23}; /* a union, not memcpy: it vectorises */
    return p * scale.value;
}

/* 16 lanes of e^x for x <= 0, exp_nonpositive's arithmetic in GCC/Clang vector types (the
 * power of two built in the exponent bits; floor from truncation, x being <= 0.5 there): plain
 * loops with the bit cast do not vectorise. */
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

/* s[0..16) = e^(s - top), added to *sum (pointers, not vector values: no vector ABI). */
static inline __attribute__((always_inline)) void exp16_nonpositive(float *s, float top,
                                                                    v16f *sum)
{
    v16f x;
    memcpy(&x, s, sizeof x);
    x = x - top;
    v16f lo = x * 0 - 87.0f;
    v16i keep = x > lo; /* not a NaN, not below e^-87 */
    x = (v16f)((keep & (v16i)x) | (~keep & (v16i)lo));
    v16f t = x * 1.44269504088896341f + 0.5f;
    v16f n = __builtin_convertvector(__builtin_convertvector(t, v16i), v16f);
    v16i above = t < n; /* truncation went up (t negative, not whole): floor is one less */
    n = n - (v16f)(above & (v16i)(x * 0 + 1.0f));
    v16f r = x - n * 0.693359375f - n * -2.12194440e-4f;
    v16f p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    v16i bits = (__builtin_convertvector(n, v16i) + 127) << 23;
    p = p * (v16f)bits;
    *sum += p;
    memcpy(s, &p, sizeof p);
}

/* One row of scores to its softmax, in place: 16 lanes at a time (the max and the sum too,
 * which a compiler may not reorder by itself), the tail one by one. */
SIMD_CLONES static void softmax_row(float *s, int n)
{
    int whole = n / 16 * 16;
    float top = s[0];
    if (whole) {
        v16f m;
        memcpy(&m, s, sizeof m);
        for (int j = 16; j < whole; j += 16) {
            v16f v;
            memcpy(&v, s + j, sizeof v);
            v16i bigger = v > m;
            m = (v16f)((bigger & (v16i)v) | (~bigger & (v16i)m));
        }
        for (int k = 0; k < 16; k++)
            top = m[k] > top ? m[k] : top;
    }
    for (int j = whole; j < n; j++)
        top = s[j] > top ? s[j] : top;
    v16f sum = {0};
    for (int j = 0; j < whole; j += 16)
        exp16_nonpositive(s + j, top, &sum);
    float total = 0;
    for (int k = 0; k < 16; k++)
        total += sum[k];
    for (int j = whole; j < n; j++) {
        s[j] = exp_nonpositive(s[j] - top);
        total += s[j];
    }
    float inv = 1.0f / total;
    for (int j = 0; j < n; j++)
        s[j] *= inv;
}

/* One head's attention for every frame: scores = (scale q) k^T, softmax by row, scores v; by
 * heads, so that one head's scores are all there is at once. In bf16 through the backend when
 * it has the products (bf16 and int8 weights), else float32 through OpenBLAS. */
static int attention(const ear_nn_w2v *w, const float *qkv, int frames, float *scores,
                     float *ctx, void *scratch, ear_error *err)
{
    int embed = w->c.embed, heads = w->c.heads, d = embed / heads;
    float scale = 1.0f / sqrtf((float)d);
    int ld = 3 * embed;
    const ear_nn_attention *a = w->attention;
    if (a && ear_nn_attention_prepare(a, qkv, frames, scratch, err) != 0)
        return -1;
    for (int h = 0; h < heads; h++) {
        const float *q = qkv + h * d, *k = qkv + embed + h * d, *v = qkv + 2 * embed + h * d;
        if (a) {
            if (ear_nn_attention_scores(a, h, frames, scores, scratch, err) != 0)
                return -1;
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, frames, frames, d, scale, q,
                        ld, k, ld, 0.0f, scores, frames);
        }
        for (int r = 0; r < frames; r++)
            softmax_row(scores + (size_t)r * (size_t)frames, frames);
        if (a) {
            if (ear_nn_attention_context(a, h, frames, scores, ctx, scratch, err) != 0)
                return -1;
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, frames, d, frames, 1.0f,
                        scores, frames, v, ld, 0.0f, ctx + h * d, embed);
        }
    }
    return 0;
}

/* A matrix product over rows in bands (each within the matmul's max_rows). */
static int banded(const ear_nn_matmul *mm, const float *x, size_t x_stride, int rows, int band,
                  float *y, ear_nn_activation act, void *scratch, ear_error *err)
{
    int out = ear_nn_matmul_out_features(mm);
    for (int r = 0; r < rows; r += band) {
        int n = rows - r < band ? rows - r : band;
        if (ear_nn_matmul_run(mm, x + (size_t)r * x_stride, x_stride, n,
                              y + (size_t)r * (size_t)out, 0, act, scratch, err) != 0)
            return -1;
    }
    return 0;
}

/* The first two convs in bands of the second's rows: each band's first-conv rows made,
 * normalised and GELU'd in a small buffer, then the second conv over them into the arena's
 * second buffer. The first conv's GroupNorm needs its whole output's statistics: a first pass
 * makes each band and keeps only the column sums and sums of squares (in double). */
static int fused_extractor(const ear_nn_w2v *w, const float *wave, int count, float *base,
                           void *scratch, ear_error *err)
{
    const ear_nn_w2v_config *c = &w->c;
    const w2v_conv *v0 = &w->convs[0], *v1 = &w->convs[1];
    int c0 = v0->out, f0 = output_frames(count, v0->kernel, v0->stride);
    int f1 = output_frames(f0, v1->kernel, v1->stride), rows = fused_rows(w);
    int group = v0->norm_weight && !c->layer_norm_extractor;
    float *band = base + w->off_band, *out = base + w->off_b;
    double *sum = (double *)(base + w->off_stats), *squares = sum + c0;
    float *scale = (float *)(squares + c0), *shift = scale + c0;
    ear_nn_activation act0 = v0->norm_weight ? EAR_NN_ACT_NONE : EAR_NN_ACT_GELU;
    if (group) {
        int step = fused_band(w);
        for (int i = 0; i < c0; i++)
            sum[i] = squares[i] = 0;
        for (int r = 0; r < f0; r += step) {
            int n = f0 - r < step ? f0 - r : step;
            if (ear_nn_matmul_run(v0->mm, wave + (size_t)r * (size_t)v0->stride,
                                  (size_t)v0->stride, n, band, 0, act0, scratch, err) != 0)
                return -1;
            column_moments(band, (size_t)n, c0, sum, squares);
        }
        for (int i = 0; i < c0; i++) {
            double mean = sum[i] / f0, var = squares[i] / f0 - mean * mean;
            double inv = 1.0 / sqrt((var > 0 ? var : 0) + NORM_EPSILON);
            scale[i] = (float)(inv * v0->norm_weight[i]);
            shift[i] = (float)(v0->norm_bias[i] - mean * inv * v0->norm_weight[i]);
        }
    }
    for (int t = 0; t < f1; t += rows) {
        int n1 = f1 - t < rows ? f1 - t : rows;
        int r0 = t * v1->stride, n0 = v1->stride * (n1 - 1) + v1->kernel;
        if (ear_nn_matmul_run(v0->mm, wave + (size_t)r0 * (size_t)v0->stride,
                              (size_t)v0->stride, n0, band, 0, act0, scratch, err) != 0)
            return -1;
        if (group) {
            normalise_columns(band, (size_t)n0, c0, scale, shift);
            gelu_inplace(band, (size_t)n0 * (size_t)c0);
        } else if (v0->norm_weight) {
            layer_norm(band, band, (size_t)n0, c0, v0->norm_weight, v0->norm_bias, 1);
        }
        float *y = out + (size_t)t * (size_t)v1->out;
        if (ear_nn_matmul_run(v1->mm, band, (size_t)v1->stride * (size_t)c0, n1, y, 0,
                              v1->norm_weight ? EAR_NN_ACT_NONE : EAR_NN_ACT_GELU, scratch,
                              err) != 0)
            return -1;
        if (v1->norm_weight)
            layer_norm(y, y, (size_t)n1, v1->out, v1->norm_weight, v1->norm_bias, 1);
    }
    return 0;
}

int ear_nn_w2v_embed(const ear_nn_w2v *w, const float *wave, size_t count, void *arena,
                     float *unit, ear_error *err)
{
    const ear_nn_w2v_config *c = &w->c;
    if (count > w->max_samples)
        count = w->max_samples; /* the original's cut: the first max_seconds */
    size_t shortest = ear_nn_w2v_min_samples(w);
    if (count < shortest)
        return ear_error_set(err, "clip too short: %zu samples (%.4f s); wav2vec2 needs at least "
                                  "%zu (one frame)",
                             count, (double)count / c->sample_rate, shortest);
    float *base = arena;
    float *buf[2] = {base + w->off_a, base + w->off_b};
    float *x = base + w->off_x, *t = base + w->off_t, *qkvb = base + w->off_qkv;
    float *ctx = base + w->off_ctx, *hid = base + w->off_h, *scores = base + w->off_scores;
    float *pad = base + w->off_pad, *y = base + w->off_y;
    void *scratch = base + w->off_scratch;

    /* The feature extractor. */
    const float *in = wave;
    int frames = (int)count, channels = 1, first = 0;
    if (c->conv_count >= 2) {
        if (fused_extractor(w, wave, frames, base, scratch, err) != 0)
            return -1;
        first = 2;
        in = buf[1];
        frames = output_frames(output_frames(frames, c->conv_kernel[0], c->conv_stride[0]),
                               c->conv_kernel[1], c->conv_stride[1]);
        channels = c->conv_channels[1];
    }
    for (int i = first; i < c->conv_count; i++) {
        const w2v_conv *v = &w->convs[i];
        int out_frames = output_frames(frames, v->kernel, v->stride);
        float *out = buf[i % 2];
        int normed = v->norm_weight != NULL;
        if (banded(v->mm, in, (size_t)v->stride * (size_t)channels, out_frames, BAND_ROWS, out,
                   normed ? EAR_NN_ACT_NONE : EAR_NN_ACT_GELU, scratch, err) != 0)
            return -1;
        if (normed && c->layer_norm_extractor)
            layer_norm(out, out, (size_t)out_frames, v->out, v->norm_weight, v->norm_bias, 1);
        else if (normed)
            group_norm_gelu(out, (size_t)out_frames, v->out, v->norm_weight, v->norm_bias,
                            (double *)(base + w->off_stats));
        in = out;
        frames = out_frames;
        channels = v->out;
    }
    /* Feature projection: LayerNorm, Linear. */
    float *features = buf[(c->conv_count - 1) % 2];
    layer_norm(features, features, (size_t)frames, c->features, w->fp_weight, w->fp_bias, 0);
    int e = c->embed;
    if (ear_nn_matmul_run(w->projection, features, (size_t)c->features, frames, x, 0,
                          EAR_NN_ACT_NONE, scratch, err) != 0)
        return -1;
    /* x += GELU(pos_conv(x)): per group, the padded group-major input [frames + kernel][eg]
     * is the matrix with row stride eg; the even kernel's extra last frame is never made. */
    int groups = c->pos_groups, eg = e / groups, half = c->pos_kernel / 2;
    for (int g = 0; g < groups; g++) {
        size_t rows = (size_t)frames + (size_t)c->pos_kernel;
        memset(pad, 0, rows * (size_t)eg * sizeof *pad);
        for (int f = 0; f < frames; f++)
            memcpy(pad + (size_t)(f + half) * (size_t)eg, x + (size_t)f * (size_t)e + g * eg,
                   (size_t)eg * sizeof *pad);
        if (ear_nn_matmul_run(w->pos[g], pad, (size_t)eg, frames, y, 0, EAR_NN_ACT_GELU,
                              scratch, err) != 0)
            return -1;
        for (int f = 0; f < frames; f++)
            for (int o = 0; o < eg; o++)
                t[(size_t)f * (size_t)e + (size_t)(g * eg + o)] = y[(size_t)f * (size_t)eg + o];
    }
    for (size_t i = 0; i < (size_t)frames * (size_t)e; i++)
        x[i] += t[i];
    if (!c->layer_norm_first)
        layer_norm(x, x, (size_t)frames, e, w->enc_weight, w->enc_bias, 0);
    /* The layers. */
    for (int i = 0; i < c->layers; i++) {
        const w2v_layer *L = &w->layers[i];
        const float *a = x;
        if (c->layer_norm_first) {
            layer_norm(x, t, (size_t)frames, e, L->ln_weight, L->ln_bias, 0);
            a = t;
        }
        if (ear_nn_matmul_run(L->qkv, a, (size_t)e, frames, qkvb, 0, EAR_NN_ACT_NONE, scratch,
                              err) != 0)
            return -1;
        if (attention(w, qkvb, frames, scores, ctx, scratch, err) != 0)
            return -1;
        if (ear_nn_matmul_run(L->out, ctx, (size_t)e, frames, x, 1, EAR_NN_ACT_NONE, scratch,
                              err) != 0)
            return -1;
        if (c->layer_norm_first) {
            layer_norm(x, t, (size_t)frames, e, L->final_weight, L->final_bias, 0);
            a = t;
        } else {
            layer_norm(x, x, (size_t)frames, e, L->ln_weight, L->ln_bias, 0);
            a = x;
        }
        if (ear_nn_matmul_run(L->ff1, a, (size_t)e, frames, hid, 0, EAR_NN_ACT_GELU, scratch,
                              err) != 0 ||
            ear_nn_matmul_run(L->ff2, hid, (size_t)c->ffn, frames, x, 1, EAR_NN_ACT_NONE,
                              scratch, err) != 0)
            return -1;
        if (!c->layer_norm_first)
            layer_norm(x, x, (size_t)frames, e, L->final_weight, L->final_bias, 0);
    }
    /* The last layer averaged over frames, the head, L2. */
    for (int j = 0; j < e; j++) {
        double s = 0;
        for (int f = 0; f < frames; f++)
            s += x[(size_t)f * (size_t)e + (size_t)j];
        y[j] = (float)(s / frames);
    }
    if (ear_nn_matmul_run(w->head, y, (size_t)e, 1, unit, 0, EAR_NN_ACT_NONE, scratch, err) != 0)
        return -1;
    ear_nn_l2_normalize(unit, w->embed_dim);
    return 0;
}
