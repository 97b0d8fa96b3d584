/* Opening a torch.save file: map, check the zip, run the pickle, list the state dict. */
#include "pt/pt_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *find_state_dict_keys[] = {"state_dict", "model_state_dict", "model"};

static int compare_names(const void *a, const void *b, void *names)
{
    return strcmp(((const char **)names)[*(const size_t *)a],
                  ((const char **)names)[*(const size_t *)b]);
}

/* The flat, named tensor list of the state dict (see the header for which dict). */
static int list_tensors(ear_pt_file *f, ear_error *err)
{
    const ear_pt_value *dict = f->root;
    if (ear_pt_value_kind(dict) != EAR_PT_KIND_DICT)
        return 0;
    for (size_t k = 0; k < sizeof find_state_dict_keys / sizeof *find_state_dict_keys; k++) {
        const ear_pt_value *inner = ear_pt_dict_get(dict, find_state_dict_keys[k]);
        if (inner && ear_pt_value_kind(inner) == EAR_PT_KIND_DICT) {
            dict = inner;
            break;
        }
    }
    size_t n = ear_pt_value_count(dict), count = 0;
    f->names = malloc((n ? n : 1) * sizeof *f->names);
    f->tensors = malloc((n ? n : 1) * sizeof *f->tensors);
    f->sorted = malloc((n ? n : 1) * sizeof *f->sorted);
    if (!f->names || !f->tensors || !f->sorted)
        return ear_error_set(err, "%s: out of memory", f->path);
    for (size_t i = 0; i < n; i++) {
        const char *name = ear_pt_value_string(ear_pt_dict_key(dict, i), NULL);
        const ear_pt_tensor *t = ear_pt_value_tensor(ear_pt_dict_value(dict, i));
        if (!name || !t)
            continue;
        f->names[count] = name;
        f->tensors[count] = t;
        f->sorted[count] = count;
        count++;
    }
    f->tensor_count = count;
    qsort_r(f->sorted, count, sizeof *f->sorted, compare_names, f->names);
    return 0;
}

static ear_pt_file *open_mapped(ear_pt_file *f, ear_error *err)
{
    if (ear_pt_zip_read(f, err) != 0 || ear_pt_unpickle(f, err) != 0 ||
        list_tensors(f, err) != 0) {
        ear_pt_close(f);
        return NULL;
    }
    return f;
}

ear_pt_file *ear_pt_open(const char *path, ear_error *err)
{
    ear_pt_file *f = calloc(1, sizeof *f);
    if (!f) {
        ear_error_set(err, "%s: out of memory", path);
        return NULL;
    }
    snprintf(f->path, sizeof f->path, "%s", path);
    if (ear_file_map(path, 0, &f->map, err) != 0) {
        free(f);
        return NULL;
    }
    f->owns_map = 1;
    return open_mapped(f, err);
}

ear_pt_file *ear_pt_open_memory(const uint8_t *data, size_t size, ear_error *err)
{
    ear_pt_file *f = calloc(1, sizeof *f);
    if (!f) {
        ear_error_set(err, "<memory>: out of memory");
        return NULL;
    }
    snprintf(f->path, sizeof f->path, "<memory>");
    f->map.data = data;
    f->map.size = size;
    return open_mapped(f, err);
}

void ear_pt_close(ear_pt_file *f)
{
    if (!f)
        return;
    ear_pt_arena_free(f);
    free(f->entries);
    free(f->names);
    free(f->tensors);
    free(f->sorted);
    if (f->owns_map)
        ear_file_unmap(&f->map);
    free(f);
}

const uint8_t *ear_pt_bytes(const ear_pt_file *f, size_t *size)
{
    *size = f->map.size;
    return f->map.data;
}

const ear_pt_value *ear_pt_root(const ear_pt_file *f)
{
    return f->root;
}

size_t ear_pt_tensor_count(const ear_pt_file *f)
{
    return f->tensor_count;
}

const char *ear_pt_tensor_name(const ear_pt_file *f, size_t i)
{
    return i < f->tensor_count ? f->names[i] : NULL;
}

const ear_pt_tensor *ear_pt_tensor_at(const ear_pt_file *f, size_t i)
{
    return i < f->tensor_count ? f->tensors[i] : NULL;
}

const ear_pt_tensor *ear_pt_find(const ear_pt_file *f, const char *name)
{
    size_t lo = 0, hi = f->tensor_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->names[f->sorted[mid]], name);
        if (c == 0)
            return f->tensors[f->sorted[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t ear_pt_dtype_size(ear_pt_dtype dtype)
{
    static const size_t sizes[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};
    return (unsigned)dtype < sizeof sizes / sizeof *sizes ? sizes[dtype] : 0;
}

const char *ear_pt_dtype_name(ear_pt_dtype dtype)
{
    static const char *names[] = {"F32", "F16", "BF16", "F64", "I64",
                                  "I32", "I16", "I8",   "U8",  "BOOL"};
    return (unsigned)dtype < sizeof names / sizeof *names ? names[dtype] : "?";
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    uint32_t bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | mantissa << 13;
    } else if (exponent) {
        bits = sign | (exponent + 112) << 23 | mantissa << 13;
    } else if (mantissa) { /* subnormal: exact as a float */
        float f = (float)mantissa * (1.0f / 16777216.0f);
        return sign ? -f : f;
    } else {
        bits = sign;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float element_to_float(const uint8_t *p, ear_pt_dtype dtype)
{
    /* memcpy: the element may be unaligned in the file. */
    switch (dtype) {
    case EAR_PT_F32: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    case EAR_PT_F16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return half_to_float(h);
    }
    case EAR_PT_BF16: {
        uint16_t h;
        memcpy(&h, p, 2);
        uint32_t bits = (uint32_t)h << 16;
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    case EAR_PT_F64: {
        double d;
        memcpy(&d, p, 8);
        return (float)d;
    }
    case EAR_PT_I64: {
        int64_t i;
        memcpy(&i, p, 8);
        return (float)i;
    }
    case EAR_PT_I32: {
        int32_t i;
        memcpy(&i, p, 4);
        return (float)i;
    }
    case EAR_PT_I16: {
        int16_t i;
        memcpy(&i, p, 2);
        return (float)i;
    }
    case EAR_PT_I8:
        return (float)(int8_t)*p;
    case EAR_PT_U8:
        return (float)*p;
    case EAR_PT_BOOL:
        return *p ? 1.0f : 0.0f;
    }
    return 0.0f;
}

void ear_pt_tensor_to_f32(const ear_pt_tensor *t, float *out)
{
    if (!t->numel)
        return;
    size_t element = ear_pt_dtype_size(t->dtype);
    if (t->contiguous && t->dtype == EAR_PT_F32) {
        memcpy(out, t->data, t->numel * 4);
        return;
    }
    size_t index[EAR_PT_MAX_DIMS] = {0};
    size_t offset = 0; /* in elements from data */
    for (size_t n = 0; n < t->numel; n++) {
        out[n] = element_to_float(t->data + offset * element, t->dtype);
        /* The next index in C order, carrying through the dimensions. */
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++index[d] < t->shape[d]) {
                offset += t->stride[d];
                break;
            }
            offset -= (index[d] - 1) * t->stride[d];
            index[d] = 0;
        }
    }
}
