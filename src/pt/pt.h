/* PyTorch `torch.save` files (the zip format of torch >= 1.6), read as data.
 *
 * The file is mapped read-only. Its zip container is checked strictly (end of central
 * directory, zip64 records, central directory, local headers, bounds, overlaps; storages must
 * be stored, not compressed). `<folder>/data.pkl` is run by a restricted pickle machine that
 * knows only the opcodes a state_dict or a plain dict of lists/strings/tensors uses and only
 * these globals: collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 * torch._utils._rebuild_parameter(_with_state) and the typed storages torch.FloatStorage,
 * HalfStorage, BFloat16Storage, DoubleStorage, LongStorage, IntStorage, ShortStorage,
 * CharStorage, ByteStorage, BoolStorage. Anything else (another global such as os.system or
 * builtins.eval, an unknown opcode) is refused with a message naming it: a pickle is data here,
 * never code. Every size is bounded (stack, memo, values, nesting depth) and every claimed
 * length is checked against the bytes that are there before anything is allocated for it.
 *
 * The result is a tree of values (the pickle's object graph; it may share a value between
 * two places but never has a cycle, and no value lies deeper than EAR_PT_MAX_DEPTH) whose
 * tensors point into the mapped file: nothing is copied. Everything returned lives until
 * ear_pt_close.
 * Messages start with the file's path (or "<memory>"). */
#ifndef EAR_PT_H
#define EAR_PT_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define EAR_PT_MAX_DIMS 8   /* tensors with more dimensions are refused */
#define EAR_PT_MAX_DEPTH 64 /* a value's depth (the root's is 0) beyond this is refused */

typedef struct ear_pt_file ear_pt_file;
typedef struct ear_pt_value ear_pt_value;

typedef enum ear_pt_kind {
    EAR_PT_KIND_NONE,
    EAR_PT_KIND_BOOL,
    EAR_PT_KIND_INT,
    EAR_PT_KIND_FLOAT,
    EAR_PT_KIND_STRING, /* UTF-8 (checked) or a pickled byte string */
    EAR_PT_KIND_LIST,
    EAR_PT_KIND_TUPLE,
    EAR_PT_KIND_DICT, /* dict or OrderedDict, in insertion order */
    EAR_PT_KIND_TENSOR,
    EAR_PT_KIND_OTHER, /* a storage or an allowed global outside a tensor: shown, not used */
} ear_pt_kind;

typedef enum ear_pt_dtype {
    EAR_PT_F32,
    EAR_PT_F16,
    EAR_PT_BF16,
    EAR_PT_F64,
    EAR_PT_I64,
    EAR_PT_I32,
    EAR_PT_I16,
    EAR_PT_I8,
    EAR_PT_U8,
    EAR_PT_BOOL,
} ear_pt_dtype;

/* A tensor: a view (shape, stride, offset) of a storage that lies in the mapped file, little
 * endian. Checked at open: the storage holds every element the view reaches. */
typedef struct ear_pt_tensor {
    ear_pt_dtype dtype;
    int ndim;                      /* 0 for a scalar */
    size_t shape[EAR_PT_MAX_DIMS];
    size_t stride[EAR_PT_MAX_DIMS]; /* in elements, as torch has it (may be 0) */
    size_t storage_offset;         /* in elements */
    size_t numel;                  /* product of shape (1 for a scalar, 0 if any dim is 0);
                                      with a 0 stride it can exceed the storage's elements:
                                      check it before allocating numel of anything */
    int contiguous;                /* 1 when the elements lie in C order, densely, from data */
    int aligned;                   /* 1 when data is aligned to the element size */
    const uint8_t *data;           /* element [0,...,0] in the map (NULL when numel is 0) */
    const uint8_t *storage;        /* the whole storage in the map */
    size_t storage_bytes;
    const char *storage_key;       /* the storage's record name, data/<key> */
} ear_pt_tensor;

/* Maps path and reads it; NULL with err filled ("PATH: why") on any refusal. */
ear_pt_file *ear_pt_open(const char *path, ear_error *err);

/* As ear_pt_open over bytes in memory (borrowed: they must outlive the file). */
ear_pt_file *ear_pt_open_memory(const uint8_t *data, size_t size, ear_error *err);

/* Frees everything the file returned and unmaps it; NULL is fine. */
void ear_pt_close(ear_pt_file *f);

/* The mapped file, for fingerprints. */
const uint8_t *ear_pt_bytes(const ear_pt_file *f, size_t *size);

/* The object the pickle built (never NULL for an open file). */
const ear_pt_value *ear_pt_root(const ear_pt_file *f);

/* The kind of v. Every accessor takes NULL (what a missing key or item gives): it reads as
 * None, count 0, no string, no tensor. */
ear_pt_kind ear_pt_value_kind(const ear_pt_value *v);

/* A bool's or int's value (a bool reads as 0/1); 0 for other kinds. */
int64_t ear_pt_value_int(const ear_pt_value *v);

/* A float's value, or an int's converted; 0 for other kinds. */
double ear_pt_value_float(const ear_pt_value *v);

/* A string's bytes, NUL-terminated, length in *length if not NULL; NULL for other kinds. */
const char *ear_pt_value_string(const ear_pt_value *v, size_t *length);

/* Items of a list or tuple, entries of a dict; 0 for other kinds. */
size_t ear_pt_value_count(const ear_pt_value *v);

/* Item i of a list or tuple; NULL when out of range or another kind. */
const ear_pt_value *ear_pt_value_item(const ear_pt_value *v, size_t i);

/* Key / value of a dict's entry i (insertion order); NULL when out of range or not a dict. */
const ear_pt_value *ear_pt_dict_key(const ear_pt_value *dict, size_t i);
const ear_pt_value *ear_pt_dict_value(const ear_pt_value *dict, size_t i);

/* The value under the string key in a dict, or NULL. */
const ear_pt_value *ear_pt_dict_get(const ear_pt_value *dict, const char *key);

/* The tensor a value holds, or NULL when it is not a tensor. */
const ear_pt_tensor *ear_pt_value_tensor(const ear_pt_value *v);

/* The named tensors of the state dict: the root dict's string-keyed tensor entries or, when
 * the root dict has a dict under "state_dict", "model_state_dict" or "model" (checked in that
 * order), that dict's. In the file's order; names are unique. 0 when the root is no dict. */
size_t ear_pt_tensor_count(const ear_pt_file *f);
const char *ear_pt_tensor_name(const ear_pt_file *f, size_t i);
const ear_pt_tensor *ear_pt_tensor_at(const ear_pt_file *f, size_t i);

/* The state dict's tensor with this name, or NULL (a binary search). */
const ear_pt_tensor *ear_pt_find(const ear_pt_file *f, const char *name);

/* Bytes per element of a dtype; its name ("F32", "BF16", ...). */
size_t ear_pt_dtype_size(ear_pt_dtype dtype);
const char *ear_pt_dtype_name(ear_pt_dtype dtype);

/* Writes t's numel elements to out as float32 in C order, whatever its dtype, stride or
 * alignment (F16/BF16 exactly, F64 and integers rounded as C converts them). */
void ear_pt_tensor_to_f32(const ear_pt_tensor *t, float *out);

#endif
