/* The index: every item of a dataset with its frame and sound embeddings, in a
 * versioned binary file that is mapped, not read (docs/index-format.md), and
 * exact top-k search over it. */
#ifndef EAR_INDEX_H
#define EAR_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/core.h"
#include "nn/nn.h"

/* The first 8 bytes of every index file. */
#define EAR_INDEX_MAGIC "EARINDEX"

typedef struct ear_index ear_index;

typedef enum { EAR_INDEX_FRAMES = 0, EAR_INDEX_SOUNDS = 1 } ear_index_against;

/* How the embeddings are stored; the search always accumulates in float32. */
typedef enum { EAR_INDEX_F32 = 1, EAR_INDEX_F16 = 2 } ear_index_dtype;

/* The format version this build reads and writes. */
#define EAR_INDEX_FORMAT_VERSION 1

typedef struct ear_index_hit {
    size_t item;  /* item number in the index */
    float score;  /* inner product with the query */
} ear_index_hit;

/* Maps an index file and checks its header; when fingerprint is not NULL the
 * index must have been built by the model with that fingerprint. */
ear_index *ear_index_open(const char *path, const char *fingerprint, ear_error *err);

/* Unmaps an index (NULL is fine). */
void ear_index_close(ear_index *idx);

/* What the header says, and each item's strings (valid while the index is
 * open); item must be < ear_index_count, else NULL. */
size_t ear_index_count(const ear_index *idx);
int ear_index_dim(const ear_index *idx);
const char *ear_index_model_fingerprint(const ear_index *idx);
const char *ear_index_item_id(const ear_index *idx, size_t item);
const char *ear_index_item_label(const ear_index *idx, size_t item);
const char *ear_index_item_frame(const ear_index *idx, size_t item); /* file name or NULL */
const char *ear_index_item_audio(const ear_index *idx, size_t item); /* file name or NULL */

/* How the embeddings are stored. */
ear_index_dtype ear_index_element_type(const ear_index *idx);

/* How many items have a frame embedding (EAR_INDEX_FRAMES) or a sound one. */
size_t ear_index_rows(const ear_index *idx, ear_index_against against);

/* Size of the mapped file in bytes. */
uint64_t ear_index_file_size(const ear_index *idx);

/* Whether the item has that embedding. */
int ear_index_item_has(const ear_index *idx, size_t item, ear_index_against against);

/* Copies the item's embedding (as float32) into out[dim]; -1 when it has none. */
int ear_index_item_embedding(const ear_index *idx, size_t item, ear_index_against against,
                             float *out, ear_error *err);

/* Reads every table once (not the embeddings): string offsets in bounds, row
 * maps consistent, ids unique and sorted. ear_index_open checks only the
 * header and the section bounds, so that start-up stays O(1). */
int ear_index_verify(const ear_index *idx, ear_error *err);

/* Writes what the index holds (version, fingerprint, counts, dtype, size). */
void ear_index_describe(const ear_index *idx, FILE *out);

/* Exact top-k by inner product over the items that have that embedding, best
 * first, ties broken by item id; *found <= k. */
int ear_index_search(const ear_index *idx, ear_index_against against, const float *query, int k,
                     ear_index_hit *hits, int *found, ear_error *err);

/* One item to write. Strings are UTF-8 without NUL inside; file names are
 * relative to the dataset's frames/ and audio/ folders. */
typedef struct ear_index_entry {
    const char *id;
    const char *label;            /* NULL: the id */
    const char *frame;            /* frame file name, NULL when none */
    const char *audio;            /* sound file name, NULL when none */
    const float *frame_embedding; /* [dim], NULL when none */
    const float *audio_embedding; /* [dim], NULL when none */
} ear_index_entry;

/* Writes entries (any order; ids unique) as an index file, sorted by id
 * (bytewise). Atomic: a temporary ".NAME.tmp.PID" in the same folder, fsync,
 * rename; on failure it is removed and an old file at path is untouched. */
int ear_index_write(const char *path, const char *fingerprint, int dim, ear_index_dtype dtype,
                    const ear_index_entry *entries, size_t count, ear_error *err);

/* Removes temporaries ".NAME.tmp.PID" beside path left by writers that were
 * killed (their process is gone); returns how many were removed. */
int ear_index_remove_stale_temporaries(const char *path);

/* Building an index from a dataset folder (interfaces.md, dataset layout). */
typedef struct ear_index_build_options {
    int jobs;                /* worker threads, each with its own session (>= 1) */
    ear_index_dtype dtype;   /* storage of the embeddings */
    double max_seconds;      /* each sound is cut there (<= 0: no cap) */
    /* Both are called with the builder's lock held, so never at the same time;
     * progress from the calling thread a few times a second and once at the end. */
    void (*progress)(void *user, size_t done, size_t total, double elapsed_ms);
    void (*problem)(void *user, const char *file, const char *reason);
    void *user;
} ear_index_build_options;

typedef struct ear_index_build_summary {
    size_t items;     /* written */
    size_t frames;    /* frame embeddings written */
    size_t sounds;    /* sound embeddings written */
    size_t skipped;   /* items left out: nothing of them could be embedded */
    size_t problems;  /* files reported to the problem callback */
    double elapsed_ms;
} ear_index_build_summary;

/* Fills o with the defaults: one job, f32, 60 s, no callbacks. */
void ear_index_build_options_default(ear_index_build_options *o);

/* Embeds every item of data_dir with model and writes the index to path
 * (ear_index_write). An unreadable file is reported and that embedding left
 * out; fails, writing nothing, when no item could be embedded. */
int ear_index_build(const ear_nn_model *model, const char *data_dir, const char *path,
                    const ear_index_build_options *o, ear_index_build_summary *summary,
                    ear_error *err);

#endif
