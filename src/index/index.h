/* The index: every item of a dataset (one file: a sound or an image, its path
 * under the dataset root, its label and its embedding) in a versioned binary
 * file that is mapped, not read (docs/index-format.md), and exact top-k search
 * over it. Storage only: it stands on core alone. */
#ifndef EAR_INDEX_H
#define EAR_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/core.h"

/* The first 8 bytes of every index file. */
#define EAR_INDEX_MAGIC "EARINDEX"

typedef struct ear_index ear_index;

/* What an item is; each kind has its own matrix in the file. */
typedef enum { EAR_INDEX_IMAGE = 0, EAR_INDEX_AUDIO = 1 } ear_index_kind;
#define EAR_INDEX_KINDS 2

/* Sets of kinds, for a search over some of them. */
#define EAR_INDEX_MASK(kind) (1u << (unsigned)(kind))
#define EAR_INDEX_ALL (EAR_INDEX_MASK(EAR_INDEX_IMAGE) | EAR_INDEX_MASK(EAR_INDEX_AUDIO))

/* How the embeddings are stored; the search always accumulates in float32. */
typedef enum { EAR_INDEX_F32 = 1, EAR_INDEX_F16 = 2 } ear_index_dtype;

/* The format version this build reads and writes. */
#define EAR_INDEX_FORMAT_VERSION 2

/* A fingerprint that says no model's was checked (an index imported from the
 * original's indexed_db.pt): opened only when no fingerprint is asked for. */
#define EAR_INDEX_NO_FINGERPRINT "0000000000000000"

typedef struct ear_index_hit {
    size_t item;  /* item number in the index */
    float score;  /* inner product with the query */
} ear_index_hit;

/* "image" or "audio" (NULL for anything else). */
const char *ear_index_kind_name(ear_index_kind kind);

/* Maps an index file and checks its header; when fingerprint is not NULL the
 * index must have been built by the model with that fingerprint. */
ear_index *ear_index_open(const char *path, const char *fingerprint, ear_error *err);

/* Unmaps an index (NULL is fine). */
void ear_index_close(ear_index *idx);

/* What the header says. */
size_t ear_index_count(const ear_index *idx);
int ear_index_dim(const ear_index *idx);
const char *ear_index_model_fingerprint(const ear_index *idx);

/* An item's path under the dataset root ("frames/violin/f7.jpg") and label,
 * valid while the index is open; NULL when item >= ear_index_count. */
const char *ear_index_item_path(const ear_index *idx, size_t item);
const char *ear_index_item_label(const ear_index *idx, size_t item);

/* An item's kind; -1 when item >= ear_index_count or the record is corrupt. */
int ear_index_item_kind(const ear_index *idx, size_t item);

/* The item whose path is exactly path (items are sorted by path); -1 when none. */
long long ear_index_find_path(const ear_index *idx, const char *path);

/* The first item whose path starts with prefix; -1 when none. */
long long ear_index_find_prefix(const ear_index *idx, const char *prefix);

/* How the embeddings are stored. */
ear_index_dtype ear_index_element_type(const ear_index *idx);

/* How many items of that kind the index holds. */
size_t ear_index_rows(const ear_index *idx, ear_index_kind kind);

/* Size of the mapped file in bytes. */
uint64_t ear_index_file_size(const ear_index *idx);

/* Copies the item's embedding (as float32) into out[dim]. */
int ear_index_item_embedding(const ear_index *idx, size_t item, float *out, ear_error *err);

/* Reads every table once (not the embeddings): string offsets in bounds, kinds
 * known, row maps consistent, paths unique and sorted. ear_index_open checks
 * only the header and the section bounds, so that start-up stays O(1). */
int ear_index_verify(const ear_index *idx, ear_error *err);

/* Writes what the index holds (version, fingerprint, counts, dtype, size). */
void ear_index_describe(const ear_index *idx, FILE *out);

/* Exact top-k by inner product over the items of the kinds in the mask
 * (EAR_INDEX_MASK, EAR_INDEX_ALL), best first, ties broken by item number;
 * *found <= k. */
int ear_index_search(const ear_index *idx, unsigned kinds, const float *query, int k,
                     ear_index_hit *hits, int *found, ear_error *err);

/* One item to write. Strings are UTF-8 without NUL inside. */
typedef struct ear_index_entry {
    ear_index_kind kind;
    const char *path;       /* relative to the dataset root, '/'-separated, unique */
    const char *label;      /* NULL: the path */
    const float *embedding; /* [dim] */
} ear_index_entry;

/* Writes entries (any order; paths unique) as an index file, sorted by path
 * (bytewise). Atomic: a temporary ".NAME.tmp.PID" in the same folder, fsync,
 * rename; on failure it is removed and an old file at path is untouched. */
int ear_index_write(const char *path, const char *fingerprint, int dim, ear_index_dtype dtype,
                    const ear_index_entry *entries, size_t count, ear_error *err);

/* Removes temporaries ".NAME.tmp.PID" beside path left by writers that were
 * killed (their process is gone); returns how many were removed. */
int ear_index_remove_stale_temporaries(const char *path);

#endif
