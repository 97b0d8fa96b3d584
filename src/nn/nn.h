/* The audio-visual CLIP model of ../shared/spec/model-format.md, run in C: the
 * safetensors file mapped and checked, its weights converted to float32 with BatchNorm
 * folded into the convolutions (one block the model owns; the mapping is released once
 * loaded), and one arena per session sized for the largest input. A model is read-only
 * once loaded and may be shared by threads; a session belongs to one thread at a time.
 * The same functions run the original service's model (docs/original-model.md: wav2vec2 +
 * torchvision ResNet, from its torch.save file or an Ear file of family "wav2vec2"): its
 * sounds are the raw 16 kHz wave, cut at 10 s (ear_nn_model_decode_options). */
#ifndef EAR_NN_H
#define EAR_NN_H

#include <stddef.h>
#include <stdio.h>

#include "core/core.h"
#include "image/image.h"
#include "nn/config.h"

typedef struct ear_nn_model ear_nn_model;

/* Loads and validates an Ear model file; every problem is named (tensor or key). */
ear_nn_model *ear_nn_model_load(const char *path, ear_error *err);

/* As ear_nn_model_load (the whole file checked, the same fingerprint), but only the audio
 * tower is converted and kept: the model then reports no image tower. For `ear serve`, which
 * embeds sounds only: a ResNet-50 image tower is most of a model's memory. */
ear_nn_model *ear_nn_model_load_audio(const char *path, ear_error *err);

/* For `ear embed --image`: the image tower alone is checked and converted; a wav2vec2 audio
 * tower is neither (for the compact family, as ear_nn_model_load). */
ear_nn_model *ear_nn_model_load_image(const char *path, ear_error *err);

/* Frees a model (NULL is fine). Its sessions must be freed first. */
void ear_nn_model_free(ear_nn_model *m);

/* The model's configuration. */
const ear_nn_config *ear_nn_model_config(const ear_nn_model *m);

/* A stable fingerprint of the model file's contents: XXH64 (seed 0) of its bytes, as 16
 * lowercase hex digits. */
const char *ear_nn_model_fingerprint(const ear_nn_model *m);

/* Writes a human-readable description (configuration, parameters, bytes, dtypes). */
void ear_nn_model_describe(const ear_nn_model *m, FILE *out);

/* Reads only a model file's configuration (container and metadata checked, tensors not):
 * what `ear mel --model` needs, without converting any weights. */
int ear_nn_model_read_config(const char *path, ear_nn_config *cfg, ear_error *err);

/* Samples in one audio segment, round(segment_seconds * sample_rate); 0 without audio. */
size_t ear_nn_model_segment_samples(const ear_nn_model *m);

/* The shortest clip the audio tower takes: n_fft / 2 + 1 samples; 0 without audio. */
size_t ear_nn_model_min_samples(const ear_nn_model *m);

/* Bytes of the arena each session of this model allocates. */
size_t ear_nn_model_session_bytes(const ear_nn_model *m);

/* One inference context: the activation arena and scratch buffers. A session is
 * used by one thread at a time; nothing is allocated per layer or per call. */
typedef struct ear_nn_session ear_nn_session;

/* Creates a session with its arena sized for the largest input of each tower. */
ear_nn_session *ear_nn_session_create(const ear_nn_model *m, ear_error *err);

/* Frees a session (NULL is fine). */
void ear_nn_session_free(ear_nn_session *s);

/* The clip's embedding (segments, mean, renormalise) into embedding[embed_dim]; wave is
 * mono at the model's sample rate. Refused: a model without audio, a clip shorter than
 * ear_nn_model_min_samples(). */
int ear_nn_embed_audio(ear_nn_session *s, const float *wave, size_t count, float *embedding,
                       ear_error *err);

/* The image's embedding into embedding[embed_dim] (preprocessed by ear_image_preprocess
 * into the session's arena). Refused: a model without an image tower. */
int ear_nn_embed_image(ear_nn_session *s, const ear_image *img, float *embedding,
                       ear_error *err);

/* One segment's unit vector from its normalised log-mel, row-major [n_mels][frames] with
 * 1 <= frames <= the frames of a full segment (the audio tower without the mel step). */
int ear_nn_embed_mel(ear_nn_session *s, const float *mel, size_t frames, float *unit,
                     ear_error *err);

/* The image tower from preprocessed pixels, CHW [3][size][size] (without decode/resize). */
int ear_nn_embed_pixels(ear_nn_session *s, const float *pixels, float *embedding,
                        ear_error *err);

/* Bytes of the session's arena (all its activations and scratch). */
size_t ear_nn_session_bytes(const ear_nn_session *s);

/* The weight type ("f32", "bf16", "int8") of the matrix products of models loaded afterwards
 * (default f32; `ear` sets bf16 unless told otherwise). */
int ear_nn_set_weight_type(const char *name, ear_error *err);

/* Fills o for decoding a sound this model embeds: its sample rate, and for the wav2vec2 family
 * the original's front end (ffmpeg's own resample and downmix, 16-bit samples) and its 10 s. */
void ear_nn_model_decode_options(const ear_nn_model *m, ear_audio_decode_options *o);

/* Sets the number of BLAS threads for the whole process (default 1). */
void ear_nn_set_threads(int threads);

#endif
