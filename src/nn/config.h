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

typedef struct ear_nn_config {
    int embed_dim;

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

/* Feature width at the end of an encoder: last width, times 4 for bottleneck. */
int ear_nn_encoder_features(const ear_nn_encoder_config *e);

#endif
