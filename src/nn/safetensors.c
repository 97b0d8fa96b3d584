#include "nn/safetensors.h"
#include "pt/pt.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[EAR_NN_DTYPE_COUNT] = {
    [EAR_NN_DTYPE_F64] = {"F64", 8},         [EAR_NN_DTYPE_F32] = {"F32", 4},
    [EAR_NN_DTYPE_F16] = {"F16", 2},         [EAR_NN_DTYPE_BF16] = {"BF16", 2},
    [EAR_NN_DTYPE_F8_E4M3] = {"F8_E4M3", 1}, [EAR_NN_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
    [EAR_NN_DTYPE_I64] = {"I64", 8},         [EAR_NN_DTYPE_I32] = {"I32", 4},
    [EAR_NN_DTYPE_I16] = {"I16", 2},         [EAR_NN_DTYPE_I8] = {"I8", 1},
    [EAR_NN_DTYPE_U64] = {"U64", 8},         [EAR_NN_DTYPE_U32] = {"U32", 4},
    [EAR_NN_DTYPE_U16] = {"U16", 2},         [EAR_NN_DTYPE_U8] = {"U8", 1},
    [EAR_NN_DTYPE_BOOL] = {"BOOL", 1},
};

const char *ear_nn_dtype_name(ear_nn_dtype dtype)
{
    return dtype < EAR_NN_DTYPE_COUNT ? dtypes[dtype].name : "?";
}

size_t ear_nn_dtype_size(ear_nn_dtype dtype)
{
    return dtype < EAR_NN_DTYPE_COUNT ? dtypes[dtype].size : 0;
}

void ear_nn_shape_format(const int64_t *shape, int ndim, char *out, size_t size)
{
    size_t used = (size_t)snprintf(out, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%lld", i ? ", " : "",
                                 (long long)shape[i]);
    if (used < size)
        snprintf(out + used, size - used, "]");
}

/* JSON numbers are doubles: integers are exact up to 2^53, which bounds every size here. */
static int read_count(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d))
        return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_tensor(const ear_nn_safetensors *file, const cJSON *entry,
                        ear_nn_tensor_info *t, const char *path, ear_error *err)
{
    t->name = entry->string;
    if (!cJSON_IsObject(entry))
        return ear_error_set(err, "%s: tensor %s: header entry is not an object", path, t->name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsString(dtype))
        return ear_error_set(err, "%s: tensor %s: no dtype string", path, t->name);
    t->dtype = EAR_NN_DTYPE_COUNT;
    for (int i = 0; i < EAR_NN_DTYPE_COUNT; i++)
        if (strcmp(dtype->valuestring, dtypes[i].name) == 0)
            t->dtype = (ear_nn_dtype)i;
    if (t->dtype == EAR_NN_DTYPE_COUNT)
        return ear_error_set(err, "%s: tensor %s: unknown dtype \"%.32s\"", path, t->name,
                             dtype->valuestring);
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > EAR_NN_TENSOR_MAX_DIMS)
        return ear_error_set(err, "%s: tensor %s: shape must be an array of at most %d sizes",
                             path, t->name, EAR_NN_TENSOR_MAX_DIMS);
    t->ndim = cJSON_GetArraySize(shape);
    uint64_t elements = 1;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t dim;
        if (read_count(cJSON_GetArrayItem(shape, i), &dim) != 0)
            return ear_error_set(err, "%s: tensor %s: shape[%d] is not a size", path, t->name, i);
        t->shape[i] = (int64_t)dim;
        /* A product past the file's size is wrong whatever follows; stop before overflow. */
        if (dim && elements > file->size / dim)
            return ear_error_set(err, "%s: tensor %s: shape is larger than the file", path,
                                 t->name);
        elements *= dim;
    }
    t->element_count = (size_t)elements;
    uint64_t begin, end;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        read_count(cJSON_GetArrayItem(offsets, 0), &begin) != 0 ||
        read_count(cJSON_GetArrayItem(offsets, 1), &end) != 0)
        return ear_error_set(err, "%s: tensor %s: data_offsets must be two byte offsets", path,
                             t->name);
    if (begin > end || end > file->data_size)
        return ear_error_set(err, "%s: tensor %s: data_offsets [%llu, %llu) outside the data "
                                  "area (%zu bytes; the file may be truncated)",
                             path, t->name, (unsigned long long)begin, (unsigned long long)end,
                             file->data_size);
    if (end - begin != elements * dtypes[t->dtype].size)
        return ear_error_set(err, "%s: tensor %s: data_offsets hold %llu bytes, its shape and "
                                  "dtype need %llu",
                             path, t->name, (unsigned long long)(end - begin),
                             (unsigned long long)(elements * dtypes[t->dtype].size));
    t->begin = (size_t)begin;
    t->end = (size_t)end;
    t->data = file->data + begin;
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(((const ear_nn_tensor_info *)a)->name, ((const ear_nn_tensor_info *)b)->name);
}

static int compare_offsets(const void *a, const void *b)
{
    const ear_nn_tensor_info *x = *(const ear_nn_tensor_info *const *)a;
    const ear_nn_tensor_info *y = *(const ear_nn_tensor_info *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Two tensors must not share bytes: a writer that aliased them is broken, and a file
 * crafted that way could make one weight change another's meaning. */
static int check_overlaps(const ear_nn_safetensors *file, const char *path, ear_error *err)
{
    int rc = -1;
    const ear_nn_tensor_info **order = malloc((file->count ? file->count : 1) * sizeof *order);
    if (!order)
        return ear_error_set(err, "%s: out of memory", path);
    for (size_t i = 0; i < file->count; i++)
        order[i] = &file->tensors[i];
    qsort(order, file->count, sizeof *order, compare_offsets);
    const ear_nn_tensor_info *last = NULL; /* the non-empty tensor ending furthest */
    for (size_t i = 0; i < file->count; i++) {
        const ear_nn_tensor_info *t = order[i];
        if (t->begin == t->end)
            continue;
        if (last && t->begin < last->end) {
            ear_error_set(err, "%s: tensors %s and %s overlap (bytes [%zu, %zu) and [%zu, %zu))",
                          path, last->name, t->name, last->begin, last->end, t->begin, t->end);
            goto fail;
        }
        last = t;
    }
    rc = 0;
fail:
    free(order);
    return rc;
}

static int parse_header(ear_nn_safetensors *file, const char *path, ear_error *err)
{
    const char *text = (const char *)file->map + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, file->header_length, &end, 0);
    file->header = root;
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        return ear_error_set(err, "%s: the header is not valid JSON (near byte %zu of %zu)", path,
                             at, file->header_length);
    }
    /* safetensors writers pad the header with spaces; anything else after the JSON is not ours. */
    for (const char *p = end; p < text + file->header_length; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return ear_error_set(err, "%s: the header has bytes after its JSON object (byte %zu)",
                                 path, (size_t)(p - text));
    if (!cJSON_IsObject(root))
        return ear_error_set(err, "%s: the header is not a JSON object", path);

    size_t entries = 0;
    int metadata_seen = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") != 0) {
            entries++;
            continue;
        }
        if (metadata_seen++)
            return ear_error_set(err, "%s: __metadata__ appears twice in the header", path);
        if (!cJSON_IsObject(e))
            return ear_error_set(err, "%s: __metadata__ is not an object", path);
        for (const cJSON *m = e->child; m; m = m->next)
            if (!cJSON_IsString(m))
                return ear_error_set(err, "%s: __metadata__ key %s: the value is not a string",
                                     path, m->string);
    }
    file->tensors = calloc(entries ? entries : 1, sizeof *file->tensors);
    if (!file->tensors)
        return ear_error_set(err, "%s: out of memory", path);
    for (const cJSON *e = root->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__") != 0 &&
            parse_tensor(file, e, &file->tensors[file->count++], path, err) != 0)
            return -1;
    qsort(file->tensors, file->count, sizeof *file->tensors, compare_names);
    for (size_t i = 1; i < file->count; i++)
        if (strcmp(file->tensors[i - 1].name, file->tensors[i].name) == 0)
            return ear_error_set(err, "%s: tensor %s appears twice in the header", path,
                                 file->tensors[i].name);
    return check_overlaps(file, path, err);
}

int ear_nn_safetensors_open(ear_nn_safetensors *file, const char *path, ear_error *err)
{
    memset(file, 0, sizeof *file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ear_error_set(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        ear_error_set(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        ear_error_set(err, "%s: not a regular file", path);
        goto fail;
    }
    if (st.st_size < 8) {
        ear_error_set(err, "%s: %lld bytes, too short for a safetensors file (8-byte header "
                           "length, then the header)", path, (long long)st.st_size);
        goto fail;
    }
    file->size = (size_t)st.st_size;
    void *map = mmap(NULL, file->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        ear_error_set(err, "%s: cannot map the file: %s", path, strerror(errno));
        goto fail;
    }
    file->map = map;
    close(fd);
    fd = -1;

    uint64_t length = 0;
    for (int i = 7; i >= 0; i--)
        length = length << 8 | file->map[i];
    if (length < 2 || length > file->size - 8) {
        ear_error_set(err, "%s: header length %llu does not fit the file (%zu bytes): not a "
                           "safetensors file, or truncated", path, (unsigned long long)length,
                      file->size);
        goto fail;
    }
    if (length > EAR_NN_SAFETENSORS_MAX_HEADER) {
        ear_error_set(err, "%s: header length %llu is over the limit of %zu bytes", path,
                      (unsigned long long)length, EAR_NN_SAFETENSORS_MAX_HEADER);
        goto fail;
    }
    file->header_length = (size_t)length;
    file->data = file->map + 8 + file->header_length;
    file->data_size = file->size - 8 - file->header_length;
    if (parse_header(file, path, err) != 0)
        goto fail;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    ear_nn_safetensors_close(file);
    return -1;
}

void ear_nn_safetensors_close(ear_nn_safetensors *file)
{
    if (!file)
        return;
    if (file->pt)
        ear_pt_close(file->pt);
    else if (file->map)
        munmap(file->map, file->size);
    cJSON_Delete(file->header);
    free(file->tensors);
    memset(file, 0, sizeof *file);
}

const ear_nn_tensor_info *ear_nn_safetensors_find(const ear_nn_safetensors *file,
                                                  const char *name)
{
    ear_nn_tensor_info key = {.name = name};
    if (!file->count)
        return NULL;
    return bsearch(&key, file->tensors, file->count, sizeof key, compare_names);
}

const char *ear_nn_safetensors_metadata(const ear_nn_safetensors *file, const char *key)
{
    const cJSON *metadata = cJSON_GetObjectItemCaseSensitive(file->header, "__metadata__");
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(metadata, key);
    return cJSON_IsString(value) ? value->valuestring : NULL;
}

void ear_nn_safetensors_release(const ear_nn_safetensors *file, const void *start, size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t first = (uintptr_t)start, last = first + size;
    uintptr_t map_end = (uintptr_t)file->map + file->size;
    if (page <= 0 || first < (uintptr_t)file->map || last > map_end)
        return;
    /* Whole pages only: a page shared with a neighbour may still be needed. The file's last
     * page is whole as far as the mapping goes. */
    uintptr_t from = (first + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t to = last == map_end ? last : last & ~((uintptr_t)page - 1);
    if (first == (uintptr_t)file->map)
        from = first;
    if (to > from)
        madvise((void *)from, to - from, MADV_DONTNEED);
}
