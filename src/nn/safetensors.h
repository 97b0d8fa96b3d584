/* The safetensors container, mapped read-only and validated strictly: an 8-byte
 * little-endian header length, a JSON header, then the tensor bytes. Private to src/nn
 * (and its tests); the model loader decides which tensors a model needs. */
#ifndef EAR_NN_SAFETENSORS_H
#define EAR_NN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* safetensors allows at most this much header (its reference reader refuses more). */
#define EAR_NN_SAFETENSORS_MAX_HEADER ((size_t)100 << 20)
#define EAR_NN_TENSOR_MAX_DIMS 8

typedef enum ear_nn_dtype {
    EAR_NN_DTYPE_F64,
    EAR_NN_DTYPE_F32,
    EAR_NN_DTYPE_F16,
    EAR_NN_DTYPE_BF16,
    EAR_NN_DTYPE_F8_E4M3,
    EAR_NN_DTYPE_F8_E5M2,
    EAR_NN_DTYPE_I64,
    EAR_NN_DTYPE_I32,
    EAR_NN_DTYPE_I16,
    EAR_NN_DTYPE_I8,
    EAR_NN_DTYPE_U64,
    EAR_NN_DTYPE_U32,
    EAR_NN_DTYPE_U16,
    EAR_NN_DTYPE_U8,
    EAR_NN_DTYPE_BOOL,
    EAR_NN_DTYPE_COUNT
} ear_nn_dtype;

typedef struct ear_nn_tensor_info {
    const char *name; /* inside the parsed header, owned by the file */
    ear_nn_dtype dtype;
    int ndim;
    int64_t shape[EAR_NN_TENSOR_MAX_DIMS];
    size_t element_count;
    size_t begin, end;   /* data_offsets: bytes [begin, end) of the data area */
    const uint8_t *data; /* the mapped bytes (no alignment promised) */
} ear_nn_tensor_info;

typedef struct ear_nn_safetensors {
    uint8_t *map; /* the whole file, PROT_READ */
    size_t size;
    size_t header_length;
    const uint8_t *data; /* the data area: map + 8 + header_length */
    size_t data_size;
    ear_nn_tensor_info *tensors; /* sorted by name */
    size_t count;
    void *header; /* the parsed JSON header (cJSON *) */
    void *pt;     /* a .pt file's reader (ear_pt_file *), which owns the map; else NULL */
} ear_nn_safetensors;

/* Maps path and validates the container (header length, JSON, dtypes, shapes, offsets
 * inside the data area and not overlapping, unique names, string metadata). Messages
 * start with path and name the tensor or key at fault. */
int ear_nn_safetensors_open(ear_nn_safetensors *file, const char *path, ear_error *err);

/* Opens a model's tensors whatever the container: a torch.save zip (.pt, by its "PK" magic)
 * read by src/pt into the same table, else safetensors. */
int ear_nn_tensor_file_open(ear_nn_safetensors *file, const char *path, ear_error *err);

/* Unmaps and frees (safe on a zeroed or closed file). */
void ear_nn_safetensors_close(ear_nn_safetensors *file);

/* The tensor called name, or NULL. */
const ear_nn_tensor_info *ear_nn_safetensors_find(const ear_nn_safetensors *file,
                                                  const char *name);

/* The __metadata__ string under key, or NULL when absent. */
const char *ear_nn_safetensors_metadata(const ear_nn_safetensors *file, const char *key);

/* Gives the mapped pages of bytes [offset, offset + size) back to the kernel (they are
 * read again from the file if touched): keeps resident memory to one copy of the weights
 * while they are converted. */
void ear_nn_safetensors_release(const ear_nn_safetensors *file, const void *start, size_t size);

/* The dtype's name in the header ("F32", ...) and its size in bytes. */
const char *ear_nn_dtype_name(ear_nn_dtype dtype);
size_t ear_nn_dtype_size(ear_nn_dtype dtype);

/* Formats a shape as "[2, 3, 7, 7]" into out. */
void ear_nn_shape_format(const int64_t *shape, int ndim, char *out, size_t size);

#endif
