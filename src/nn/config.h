/* The model's configuration: the `ear.config` JSON of an Ear model file. */
#ifndef EAR_NN_CONFIG_H
#define EAR_NN_CONFIG_H

#include "audio/audio.h"
#include "core/core.h"

#define EAR_NN_MAX_STAGES 8

typedef enum { EAR_NN_BLOCK_BASIC, EAR_NN_BLOCK_BOTTLENECK } ear_nn_block_type;
typedef enum { EAR_NN_HEAD_LINEAR, EAR_NN_HEAD_MLP } ear_nn_head_type;

typedef struct ear_nn_encoder_config {
    ear_nn_block_type block;
    int stage_count;                   /* length of layers and widths */
    int layers[EAR_NN_MAX_STAGES];     /* blocks per stage */
    int widths[EAR_NN_MAX_STAGES];     /* channels per stage (before bottleneck expansion) */
    int in_channels;
} ear_nn_encoder_config;

typedef struct ear_nn_head_config {
    ear_nn_head_type type;
    int hidden; /* mlp only */
} ear_nn_head_config;

/* The model families: Ear's compact log-mel ResNets (model-format.md), and the original's
 * AudioVisualCLIP (original.md: torchaudio's Wav2Vec2Model over the 16 kHz wave, torchvision's
 * ResNet trunk over 232 -> 224 PIL-resized images). */
typedef enum { EAR_NN_FAMILY_COMPACT, EAR_NN_FAMILY_W2V } ear_nn_family;

#define EAR_NN_W2V_MAX_CONVS 16

/* A Wav2Vec2Model as its state_dict shows it (wav2vec2.c reads it from the shapes). */
typedef struct ear_nn_w2v_config {
    int conv_count;
    int conv_channels[EAR_NN_W2V_MAX_CONVS], conv_kernel[EAR_NN_W2V_MAX_CONVS],
        conv_stride[EAR_NN_W2V_MAX_CONVS];
    int conv_bias;
    int layer_norm_extractor; /* every conv normalised by LayerNorm; else GroupNorm on the first */
    int features;             /* the extractor's output channels */
    int embed, layers, heads, ffn;
    int pos_kernel, pos_groups;
    int layer_norm_first; /* pre-LN layers (and no encoder LayerNorm before them) */
    int sample_rate;      /* 16000 */
    double max_seconds;   /* 10: the original's cut */
} ear_nn_w2v_config;

typedef struct ear_nn_config {
    ear_nn_family family;
    int embed_dim;
    ear_nn_w2v_config w2v; /* family W2V: the audio tower */
    int image_resize;      /* family W2V: the short side before the centre crop (232); else 0 */

    int has_audio;
    ear_audio_mel_config mel;
    double segment_seconds;
    ear_nn_encoder_config audio_encoder;
    ear_nn_head_config audio_head;

    int has_image;
    int image_size;
    float image_mean[3], image_std[3];
    ear_nn_encoder_config image_encoder;
    ear_nn_head_config image_head;
} ear_nn_config;

/* Parses a whole configuration (the spec's JSON object); every field checked. */
int ear_nn_config_parse(const char *json, ear_nn_config *cfg, ear_error *err);

/* Parses an `audio` object's log-mel fields (missing ones keep the defaults);
 * accepts either the audio object itself or a whole configuration holding one. */
int ear_nn_config_parse_mel(const char *json, ear_audio_mel_config *mel, ear_error *err);

/* 1 when the configuration JSON names the family "wav2vec2" (the original's model, read from
 * its tensors), with its optional "heads" and "layer_norm_first" into the outputs; else 0. */
int ear_nn_config_family(const char *json, int *heads, int *layer_norm_first);

/* Feature width at the end of an encoder: last width, times 4 for bottleneck. */
int ear_nn_encoder_features(const ear_nn_encoder_config *e);

#endif
