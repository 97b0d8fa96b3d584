/* The index: every item of a dataset with its frame and sound embeddings, in a
 * versioned binary file that is mapped, not read (docs/index-format.md), and
 * exact top-k search over it. */
#ifndef EAR_INDEX_H
#define EAR_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "nn/nn.h"

/* The first 8 bytes of every index file. */
#define EAR_INDEX_MAGIC "EARINDEX"

typedef struct ear_index ear_index;

typedef enum { EAR_INDEX_FRAMES = 0, EAR_INDEX_SOUNDS = 1 } ear_index_against;

typedef struct ear_index_hit {
    size_t item;  /* item number in the index */
    float score;  /* inner product with the query */
} ear_index_hit;

/* Maps an index file and checks its header; when fingerprint is not NULL the
 * index must have been built by the model with that fingerprint. */
ear_index *ear_index_open(const char *path, const char *fingerprint, ear_error *err);

/* Unmaps an index (NULL is fine). */
void ear_index_close(ear_index *idx);

size_t ear_index_count(const ear_index *idx);
int ear_index_dim(const ear_index *idx);
const char *ear_index_model_fingerprint(const ear_index *idx);
const char *ear_index_item_id(const ear_index *idx, size_t item);
const char *ear_index_item_label(const ear_index *idx, size_t item);
const char *ear_index_item_frame(const ear_index *idx, size_t item); /* file name or NULL */
const char *ear_index_item_audio(const ear_index *idx, size_t item); /* file name or NULL */

/* Exact top-k by inner product over the items that have that embedding, best
 * first, ties broken by item id; *found <= k. */
int ear_index_search(const ear_index *idx, ear_index_against against, const float *query, int k,
                     ear_index_hit *hits, int *found, ear_error *err);

#endif
