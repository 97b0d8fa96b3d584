/* A loaded model's networks: what model.c builds and session.c runs. Private to src/nn. */
#ifndef EAR_NN_NETWORK_H
#define EAR_NN_NETWORK_H

#include <stddef.h>

#include "nn/backend.h"
#include "nn/nn.h"
#include "nn/ops.h"
#include "nn/safetensors.h"

/* BatchNorm's epsilon (torch's default; the spec fixes it). */
#define EAR_NN_BATCHNORM_EPSILON 1e-5

/* One residual block: conv1, conv2 (and conv3 for bottleneck), each followed by ReLU except
 * the last, whose output is added to the shortcut before the ReLU. */
typedef struct ear_nn_block {
    ear_nn_conv convs[3];
    int conv_count;
    int has_downsample;
    ear_nn_conv downsample; /* the shortcut when it is not the identity */
} ear_nn_block;

typedef struct ear_nn_encoder {
    ear_nn_conv stem; /* 7x7 stride 2, then ReLU and 3x3/2 max pooling */
    ear_nn_block *blocks;
    int block_count;
    int features; /* channels after the last block */
} ear_nn_encoder;

typedef struct ear_nn_head {
    ear_nn_linear first;  /* linear: the projection; mlp: proj.0 */
    ear_nn_linear second; /* mlp only: proj.2, after a ReLU */
    int has_second;
} ear_nn_head;

typedef struct ear_nn_tower {
    int present;
    int in_channels, height, width; /* largest input: [in_channels][height][width] */
    ear_nn_weights weights;         /* the compiled convolutions' type (resnet.c) */
    ear_nn_encoder encoder;
    ear_nn_head head;
} ear_nn_tower;

typedef struct ear_nn_w2v ear_nn_w2v;

struct ear_nn_model {
    ear_nn_config config;
    ear_nn_w2v *w2v; /* family W2V: the audio tower (wav2vec2.c) */
    ear_nn_tower audio, image;
    size_t segment_samples; /* round(segment_seconds * sample_rate) */
    float *weights;         /* every conv and linear parameter, BatchNorm folded: one block */
    size_t weight_floats;

    /* For the description. */
    char fingerprint[17];
    size_t file_bytes, tensor_count, parameter_count;
    size_t dtype_counts[EAR_NN_DTYPE_COUNT];
    int has_logit_scale;
    float logit_scale;
};

/* Sets the process default of one BLAS thread, once (blas.c; ear_nn_set_threads overrides). */
void ear_nn_blas_prepare(void);

/* Largest activation (floats) and im2col scratch (floats) the tower needs. */
void ear_nn_tower_sizes(const ear_nn_tower *tower, size_t *activation, size_t *scratch);

/* Finds a tensor the model needs, checks its dtype (F32, F16 or BF16) and shape, marks it in
 * used[]; NULL with err naming the tensor otherwise (model.c). */
const ear_nn_tensor_info *ear_nn_expect_tensor(const ear_nn_safetensors *file,
                                               unsigned char *used, const char *name,
                                               const int64_t *shape, int ndim, const char *path,
                                               ear_error *err);

/* A tensor's values as float32 into out; non-finite values refused; the mapped pages are
 * released afterwards (model.c). */
int ear_nn_tensor_read(const ear_nn_safetensors *file, const ear_nn_tensor_info *t, float *out,
                       const char *path, ear_error *err);

/* wav2vec2.c: the audio tower of family W2V. */

/* Reads the configuration from the tensors under prefix ("audio_encoder.model."): refuses an
 * unknown architecture or a misshapen tensor, naming it. heads/layer_norm_first keep the
 * values given when > 0 / >= 0 (an override), else torchaudio's conventions. */
int ear_nn_w2v_detect(const ear_nn_safetensors *file, const char *prefix, ear_nn_w2v_config *c,
                      const char *path, ear_error *err);

/* Checks and converts every tensor of the tower and of its head (head_prefix "audio_proj.proj",
 * [embed_dim][embed]) into backend matmuls; marks them in used[]. */
ear_nn_w2v *ear_nn_w2v_load(const ear_nn_safetensors *file, unsigned char *used,
                            const char *prefix, const char *head_prefix,
                            const ear_nn_w2v_config *c, int embed_dim, ear_nn_weights weights,
                            const char *path, ear_error *err);

void ear_nn_w2v_free(ear_nn_w2v *w);

/* Bytes of the arena one forward of the longest clip needs (64-byte aligned). */
size_t ear_nn_w2v_arena_bytes(const ear_nn_w2v *w);

/* Shortest wave (samples) that gives one frame. */
size_t ear_nn_w2v_min_samples(const ear_nn_w2v *w);

/* Bytes of the converted weights. */
size_t ear_nn_w2v_weight_bytes(const ear_nn_w2v *w);

/* The unit vector of wave[0..count) (cut at max_seconds) into unit[embed_dim]. */
int ear_nn_w2v_embed(const ear_nn_w2v *w, const float *wave, size_t count, void *arena,
                     float *unit, ear_error *err);

/* resnet.c: records each conv's largest input (in_height, in_width) from the tower's. */
void ear_nn_tower_shapes(ear_nn_tower *tower);

/* Lays out one conv's folded weight and bias in the backend (conv->compiled) for its largest
 * input; they may go afterwards. -1 with err filled. */
int ear_nn_conv_compile(ear_nn_conv *conv, const float *weight, const float *bias,
                        ear_nn_weights weights, ear_error *err);

/* Frees the tower's compiled convs (a partly compiled tower too). */
void ear_nn_tower_release(ear_nn_tower *tower);

/* Bytes of the tower's laid-out convolution weights. */
size_t ear_nn_tower_compiled_bytes(const ear_nn_tower *tower);

#endif
