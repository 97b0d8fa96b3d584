/* A torch.save file's state_dict as the same table of named tensors a safetensors file gives:
 * src/pt maps the file and reads its pickle as data; every tensor points into the mapping. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/safetensors.h"
#include "pt/pt.h"

static int by_name(const void *a, const void *b)
{
    return strcmp(((const ear_nn_tensor_info *)a)->name, ((const ear_nn_tensor_info *)b)->name);
}

static int dtype_of(ear_pt_dtype d, ear_nn_dtype *out)
{
    static const struct {
        ear_pt_dtype pt;
        ear_nn_dtype nn;
    } map[] = {{EAR_PT_F32, EAR_NN_DTYPE_F32}, {EAR_PT_F16, EAR_NN_DTYPE_F16},
               {EAR_PT_BF16, EAR_NN_DTYPE_BF16}, {EAR_PT_F64, EAR_NN_DTYPE_F64},
               {EAR_PT_I64, EAR_NN_DTYPE_I64}, {EAR_PT_I32, EAR_NN_DTYPE_I32},
               {EAR_PT_I16, EAR_NN_DTYPE_I16}, {EAR_PT_I8, EAR_NN_DTYPE_I8},
               {EAR_PT_U8, EAR_NN_DTYPE_U8},   {EAR_PT_BOOL, EAR_NN_DTYPE_BOOL}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].pt == d) {
            *out = map[i].nn;
            return 0;
        }
    return -1;
}

static int open_pt(ear_nn_safetensors *file, const char *path, ear_error *err)
{
    memset(file, 0, sizeof *file);
    ear_pt_file *pt = ear_pt_open(path, err);
    if (!pt)
        return -1;
    file->pt = pt;
    size_t size = 0;
    file->map = (uint8_t *)(uintptr_t)ear_pt_bytes(pt, &size);
    file->size = size;
    file->data = file->map;
    file->data_size = size;
    file->count = ear_pt_tensor_count(pt);
    if (file->count == 0) {
        ear_error_set(err, "%s: no tensors: the pickle is not a state_dict", path);
        goto fail;
    }
    if (file->count > ((size_t)1 << 20)) {
        ear_error_set(err, "%s: %zu tensors, more than any model", path, file->count);
        goto fail;
    }
    file->tensors = calloc(file->count, sizeof *file->tensors);
    if (!file->tensors) {
        ear_error_set(err, "%s: out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < file->count; i++) {
        const ear_pt_tensor *t = ear_pt_tensor_at(pt, i);
        ear_nn_tensor_info *info = &file->tensors[i];
        info->name = ear_pt_tensor_name(pt, i);
        if (dtype_of(t->dtype, &info->dtype) != 0 || t->ndim > EAR_NN_TENSOR_MAX_DIMS) {
            ear_error_set(err, "%s: tensor %s: unsupported dtype or rank", path, info->name);
            goto fail;
        }
        /* A state_dict's tensors are whole, dense storages; a strided view (a transposed
         * parameter saved as is) would need a copy, and is refused by name. */
        if (t->numel > 0 && !t->contiguous) {
            ear_error_set(err, "%s: tensor %s is not contiguous in its storage", path,
                          info->name);
            goto fail;
        }
        info->ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++)
            info->shape[d] = (int64_t)t->shape[d];
        info->element_count = t->numel;
        info->data = t->data ? t->data : file->map;
        info->begin = (size_t)(info->data - file->map);
        info->end = info->begin + t->numel * ear_nn_dtype_size(info->dtype);
    }
    qsort(file->tensors, file->count, sizeof *file->tensors, by_name);
    return 0;
fail:
    ear_nn_safetensors_close(file);
    return -1;
}

int ear_nn_tensor_file_open(ear_nn_safetensors *file, const char *path, ear_error *err)
{
    uint8_t magic[4] = {0};
    FILE *f = fopen(path, "rb");
    size_t got = 0;
    if (f) {
        got = fread(magic, 1, sizeof magic, f);
        fclose(f);
    }
    if (got == 4 && memcmp(magic, "PK\003\004", 4) == 0)
        return open_pt(file, path, err);
    return ear_nn_safetensors_open(file, path, err);
}
