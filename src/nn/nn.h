/* The audio-visual CLIP model of ../shared/spec/model-format.md, run in C:
 * weights mapped from the safetensors file, BatchNorm folded at load, and one
 * arena per session sized at load time. */
#ifndef EAR_NN_H
#define EAR_NN_H

#include <stddef.h>
#include <stdio.h>

#include "core/core.h"
#include "image/image.h"
#include "nn/config.h"

typedef struct ear_nn_model ear_nn_model;

/* Maps and validates an Ear model file; every problem is named (tensor or key). */
ear_nn_model *ear_nn_model_load(const char *path, ear_error *err);

/* Unmaps and frees a model (NULL is fine). Sessions must be freed first. */
void ear_nn_model_free(ear_nn_model *m);

/* The model's configuration. */
const ear_nn_config *ear_nn_model_config(const ear_nn_model *m);

/* A stable fingerprint of the model file's contents: 16 lowercase hex digits. */
const char *ear_nn_model_fingerprint(const ear_nn_model *m);

/* Writes a human-readable description (configuration, parameters, bytes, dtypes). */
void ear_nn_model_describe(const ear_nn_model *m, FILE *out);

/* One inference context: the activation arena and scratch buffers. A session is
 * used by one thread at a time; nothing is allocated per layer or per call. */
typedef struct ear_nn_session ear_nn_session;

/* Creates a session with its arena sized for the largest input of each tower. */
ear_nn_session *ear_nn_session_create(const ear_nn_model *m, ear_error *err);

/* Frees a session (NULL is fine). */
void ear_nn_session_free(ear_nn_session *s);

/* The clip's embedding (segments, mean, renormalise) into embedding[embed_dim]. */
int ear_nn_embed_audio(ear_nn_session *s, const float *wave, size_t count, float *embedding,
                       ear_error *err);

/* The image's embedding into embedding[embed_dim]. */
int ear_nn_embed_image(ear_nn_session *s, const ear_image *img, float *embedding,
                       ear_error *err);

/* Sets the number of BLAS threads for the whole process (default 1). */
void ear_nn_set_threads(int threads);

#endif
