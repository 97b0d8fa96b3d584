/* The index file's layout (docs/index-format.md), private to src/index: the
 * reader and the writer must agree on every offset below. */
#ifndef EAR_INDEX_FORMAT_H
#define EAR_INDEX_FORMAT_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the index file is little-endian and mapped as it is: big-endian hosts need to swap"
#endif

#define EAR_INDEX_VERSION 2
#define EAR_INDEX_HEADER_SIZE 256
#define EAR_INDEX_ITEM_SIZE 24
#define EAR_INDEX_ALIGN 64
#define EAR_INDEX_NO_STRING UINT64_MAX
#define EAR_INDEX_NO_ROW UINT32_MAX

/* Byte offsets of the header's fields. */
enum {
    EAR_INDEX_AT_MAGIC = 0,           /* "EARINDEX" */
    EAR_INDEX_AT_VERSION = 8,         /* u32 */
    EAR_INDEX_AT_HEADER_SIZE = 12,    /* u32 */
    EAR_INDEX_AT_FINGERPRINT = 16,    /* 16 ASCII hex digits */
    EAR_INDEX_AT_ITEM_COUNT = 32,     /* u64 */
    EAR_INDEX_AT_DIM = 40,            /* u32 */
    EAR_INDEX_AT_DTYPE = 44,          /* u32: ear_index_dtype */
    EAR_INDEX_AT_IMAGE_ROWS = 48,     /* u64 */
    EAR_INDEX_AT_AUDIO_ROWS = 56,     /* u64 */
    EAR_INDEX_AT_FILE_SIZE = 64,      /* u64 */
    EAR_INDEX_AT_ITEMS = 72,          /* u64 offset of the item table */
    EAR_INDEX_AT_STRINGS = 80,        /* u64 offset of the strings */
    EAR_INDEX_AT_STRINGS_SIZE = 88,   /* u64 */
    EAR_INDEX_AT_IMAGES = 96,         /* u64 offset of the images' matrix */
    EAR_INDEX_AT_IMAGE_MAP = 104,     /* u64 offset of the images' row -> item map */
    EAR_INDEX_AT_AUDIOS = 112,        /* u64 offset of the sounds' matrix */
    EAR_INDEX_AT_AUDIO_MAP = 120,     /* u64 offset of the sounds' row -> item map */
    EAR_INDEX_AT_CHECKSUM = 248       /* u64 FNV-1a of bytes [0, 248) */
};

/* Byte offsets inside one item record (version 2: one file, one kind, one vector). */
enum {
    EAR_INDEX_ITEM_PATH = 0,   /* u64 offset into the strings: path under the dataset root */
    EAR_INDEX_ITEM_LABEL = 8,  /* u64 */
    EAR_INDEX_ITEM_KIND = 16,  /* u32: ear_index_kind */
    EAR_INDEX_ITEM_ROW = 20    /* u32: the item's row in its kind's matrix */
};

static inline uint32_t ear_index_get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint64_t ear_index_get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void ear_index_put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, sizeof v); }
static inline void ear_index_put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, sizeof v); }

/* FNV-1a, 64 bits: guards the header against a flipped byte. */
static inline uint64_t ear_index_fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* IEEE half <-> float, round to nearest even (no F16C needed). */
uint16_t ear_index_f32_to_f16(float value);
float ear_index_f16_to_f32(uint16_t half);

/* scores[r] = dot(matrix row r, query) for rows [0, rows), the matrix F32
 * [rows][dim]: AVX2 + FMA when the CPU has them, else cblas_sgemv. */
void ear_index_dot_f32(const float *matrix, size_t rows, int dim, const float *query,
                       float *scores);

/* scores[r] = dot(matrix row r, query) for rows [0, rows), the matrix F16
 * [rows][dim]; F32 accumulation, F16C + FMA when the CPU has them. */
void ear_index_dot_f16(const uint16_t *matrix, size_t rows, int dim, const float *query,
                       float *scores);

#endif
