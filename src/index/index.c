/* Reading an index: the file is mapped and only its header is checked at
 * open, so that a service starts at once whatever the index's size; every
 * offset read later is bounds-checked where it is used. */
#include "index/index.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/format.h"

/* Rows scored per kernel call: the scores stay in L1 and the call overhead is
 * spread over enough work. */
#define SEARCH_BLOCK_ROWS 1024

typedef struct index_kind {
    const uint8_t *matrix;  /* [rows][dim] of the index's element type */
    const uint32_t *items;  /* row -> item number, increasing */
    size_t rows;
} index_kind;

struct ear_index {
    uint8_t *map;
    size_t size;
    size_t count;
    int dim;
    ear_index_dtype dtype;
    size_t element_size;
    char fingerprint[17];
    const uint8_t *items;
    const char *strings;
    uint64_t strings_size;
    index_kind kinds[EAR_INDEX_KINDS];
};

const char *ear_index_kind_name(ear_index_kind kind)
{
    return kind == EAR_INDEX_AUDIO ? "audio" : kind == EAR_INDEX_IMAGE ? "image" : NULL;
}

static const char *kind_name(ear_index_kind kind)
{
    const char *name = ear_index_kind_name(kind);
    return name ? name : "unknown";
}

/* Whether [offset, offset + count * unit) lies inside a file of size bytes,
 * without overflowing. */
static int section_fits(uint64_t offset, uint64_t count, uint64_t unit, uint64_t size)
{
    if (offset > size)
        return 0;
    return unit == 0 || count <= (size - offset) / unit;
}

static int is_hex_fingerprint(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Checks the header of a file of size bytes and fills idx's fields. */
static int read_header(ear_index *idx, const char *path, ear_error *err)
{
    const uint8_t *h = idx->map;
    uint64_t size = idx->size;
    uint32_t version = ear_index_get_u32(h + EAR_INDEX_AT_VERSION);
    if (version == 1)
        return ear_error_set(err,
                             "%s: an index of format version 1 (frames and sounds paired by "
                             "id), this ear reads version %d (one item per file, any kind): "
                             "rebuild it with `ear index` (`ear serve --project` rebuilds a "
                             "project's index itself)",
                             path, EAR_INDEX_VERSION);
    if (version != EAR_INDEX_VERSION)
        return ear_error_set(err,
                             "%s: index format version %u, this ear reads version %d "
                             "(rebuild it with `ear index`)",
                             path, version, EAR_INDEX_VERSION);
    if (ear_index_get_u32(h + EAR_INDEX_AT_HEADER_SIZE) != EAR_INDEX_HEADER_SIZE)
        return ear_error_set(err, "%s: corrupt index: header size %u, expected %d", path,
                             ear_index_get_u32(h + EAR_INDEX_AT_HEADER_SIZE),
                             EAR_INDEX_HEADER_SIZE);
    if (ear_index_get_u64(h + EAR_INDEX_AT_CHECKSUM) !=
        ear_index_fnv1a(h, EAR_INDEX_AT_CHECKSUM))
        return ear_error_set(err, "%s: corrupt index: the header's checksum does not match",
                             path);
    uint64_t declared = ear_index_get_u64(h + EAR_INDEX_AT_FILE_SIZE);
    if (declared != size)
        return ear_error_set(err, "%s: %s index: %llu bytes, its header says %llu", path,
                             size < declared ? "truncated" : "corrupt",
                             (unsigned long long)size, (unsigned long long)declared);
    const char *fp = (const char *)h + EAR_INDEX_AT_FINGERPRINT;
    if (!is_hex_fingerprint(fp, 16))
        return ear_error_set(err, "%s: corrupt index: the model fingerprint is not 16 hex digits",
                             path);
    memcpy(idx->fingerprint, fp, 16);
    idx->fingerprint[16] = 0;

    uint32_t dtype = ear_index_get_u32(h + EAR_INDEX_AT_DTYPE);
    if (dtype != EAR_INDEX_F32 && dtype != EAR_INDEX_F16)
        return ear_error_set(err, "%s: corrupt index: unknown element type %u", path, dtype);
    idx->dtype = (ear_index_dtype)dtype;
    idx->element_size = dtype == EAR_INDEX_F16 ? 2 : 4;
    uint32_t dim = ear_index_get_u32(h + EAR_INDEX_AT_DIM);
    if (dim < 1 || dim > 65536)
        return ear_error_set(err, "%s: corrupt index: dimension %u (1 to 65536)", path, dim);
    idx->dim = (int)dim;
    uint64_t count = ear_index_get_u64(h + EAR_INDEX_AT_ITEM_COUNT);
    uint64_t items = ear_index_get_u64(h + EAR_INDEX_AT_ITEMS);
    if (count >= EAR_INDEX_NO_ROW || items % 8 ||
        !section_fits(items, count, EAR_INDEX_ITEM_SIZE, size))
        return ear_error_set(err, "%s: corrupt index: the item table (%llu items at %llu) "
                                  "is outside the file",
                             path, (unsigned long long)count, (unsigned long long)items);
    idx->count = (size_t)count;
    idx->items = h + items;

    uint64_t strings = ear_index_get_u64(h + EAR_INDEX_AT_STRINGS);
    uint64_t strings_size = ear_index_get_u64(h + EAR_INDEX_AT_STRINGS_SIZE);
    if (!section_fits(strings, strings_size, 1, size) || (count > 0 && strings_size == 0) ||
        (strings_size > 0 && h[strings + strings_size - 1] != 0))
        return ear_error_set(err, "%s: corrupt index: the strings table is outside the file "
                                  "or not NUL-terminated",
                             path);
    idx->strings = (const char *)h + strings;
    idx->strings_size = strings_size;

    static const int at_rows[2] = {EAR_INDEX_AT_IMAGE_ROWS, EAR_INDEX_AT_AUDIO_ROWS};
    static const int at_matrix[2] = {EAR_INDEX_AT_IMAGES, EAR_INDEX_AT_AUDIOS};
    static const int at_map[2] = {EAR_INDEX_AT_IMAGE_MAP, EAR_INDEX_AT_AUDIO_MAP};
    uint64_t total_rows = 0;
    for (int kind = 0; kind < EAR_INDEX_KINDS; kind++) {
        uint64_t rows = ear_index_get_u64(h + at_rows[kind]);
        uint64_t matrix = ear_index_get_u64(h + at_matrix[kind]);
        uint64_t map = ear_index_get_u64(h + at_map[kind]);
        const char *name = kind_name((ear_index_kind)kind);
        if (rows > count)
            return ear_error_set(err, "%s: corrupt index: %llu %s rows for %llu items", path,
                                 (unsigned long long)rows, name, (unsigned long long)count);
        if (matrix % EAR_INDEX_ALIGN || map % 4 ||
            !section_fits(matrix, rows * dim, idx->element_size, size) ||
            !section_fits(map, rows, 4, size))
            return ear_error_set(err, "%s: corrupt index: the %s matrix or its row map is "
                                      "misaligned or outside the file",
                                 path, name);
        idx->kinds[kind].matrix = h + matrix;
        idx->kinds[kind].items = (const uint32_t *)(const void *)(h + map);
        idx->kinds[kind].rows = (size_t)rows;
        total_rows += rows;
    }
    if (total_rows != count)
        return ear_error_set(err, "%s: corrupt index: %llu rows for %llu items", path,
                             (unsigned long long)total_rows, (unsigned long long)count);
    return 0;
}

ear_index *ear_index_open(const char *path, const char *fingerprint, ear_error *err)
{
    ear_index *idx = calloc(1, sizeof *idx);
    int fd = -1;
    if (!idx) {
        ear_error_set(err, "%s: out of memory", path);
        goto fail;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        ear_error_set(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        ear_error_set(err, "%s: not a regular file", path);
        goto fail;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        ear_error_set(err, "%s: too large to map", path);
        goto fail;
    }
    idx->size = (size_t)st.st_size;
    if (idx->size < 8) {
        ear_error_set(err, "%s: not an Ear index (%zu bytes, no \"%s\" magic)", path, idx->size,
                      EAR_INDEX_MAGIC);
        goto fail;
    }
    idx->map = mmap(NULL, idx->size, PROT_READ, MAP_SHARED, fd, 0);
    if (idx->map == MAP_FAILED) {
        idx->map = NULL;
        ear_error_set(err, "%s: cannot map: %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    if (memcmp(idx->map, EAR_INDEX_MAGIC, 8) != 0) {
        ear_error_set(err, "%s: not an Ear index (no \"%s\" magic)", path, EAR_INDEX_MAGIC);
        goto fail;
    }
    if (idx->size < EAR_INDEX_HEADER_SIZE) {
        ear_error_set(err, "%s: truncated index: %zu bytes, the header alone is %d", path,
                      idx->size, EAR_INDEX_HEADER_SIZE);
        goto fail;
    }
    if (read_header(idx, path, err) != 0)
        goto fail;
    if (fingerprint && strcmp(fingerprint, idx->fingerprint) != 0) {
        ear_error_set(err,
                      "%s: built by another model (fingerprint %s, this model's is %s): "
                      "rebuild it with `ear index` for this model",
                      path, idx->fingerprint, fingerprint);
        goto fail;
    }
    return idx;
fail:
    if (fd >= 0)
        close(fd);
    ear_index_close(idx);
    return NULL;
}

void ear_index_close(ear_index *idx)
{
    if (!idx)
        return;
    if (idx->map)
        munmap(idx->map, idx->size);
    free(idx);
}

size_t ear_index_count(const ear_index *idx) { return idx->count; }
int ear_index_dim(const ear_index *idx) { return idx->dim; }
const char *ear_index_model_fingerprint(const ear_index *idx) { return idx->fingerprint; }
ear_index_dtype ear_index_element_type(const ear_index *idx) { return idx->dtype; }
uint64_t ear_index_file_size(const ear_index *idx) { return idx->size; }

size_t ear_index_rows(const ear_index *idx, ear_index_kind kind)
{
    return kind == EAR_INDEX_IMAGE || kind == EAR_INDEX_AUDIO ? idx->kinds[kind].rows : 0;
}

static const uint8_t *item_record(const ear_index *idx, size_t item)
{
    return item < idx->count ? idx->items + item * EAR_INDEX_ITEM_SIZE : NULL;
}

/* The string at a field of the item's record; NULL when out of range, "" when
 * the offset is corrupt (ear_index_verify reports it). */
static const char *item_string(const ear_index *idx, size_t item, int field)
{
    const uint8_t *record = item_record(idx, item);
    if (!record)
        return NULL;
    uint64_t at = ear_index_get_u64(record + field);
    return at < idx->strings_size ? idx->strings + at : "";
}

const char *ear_index_item_path(const ear_index *idx, size_t item)
{
    return item_string(idx, item, EAR_INDEX_ITEM_PATH);
}

const char *ear_index_item_label(const ear_index *idx, size_t item)
{
    return item_string(idx, item, EAR_INDEX_ITEM_LABEL);
}

int ear_index_item_kind(const ear_index *idx, size_t item)
{
    const uint8_t *record = item_record(idx, item);
    if (!record)
        return -1;
    uint32_t kind = ear_index_get_u32(record + EAR_INDEX_ITEM_KIND);
    return kind < EAR_INDEX_KINDS ? (int)kind : -1;
}

/* The first item whose path is >= key (count when none). */
static size_t lower_bound(const ear_index *idx, const char *key)
{
    size_t low = 0, high = idx->count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (strcmp(ear_index_item_path(idx, mid), key) < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return low;
}

long long ear_index_find_path(const ear_index *idx, const char *path)
{
    size_t at = lower_bound(idx, path);
    return at < idx->count && strcmp(ear_index_item_path(idx, at), path) == 0 ? (long long)at
                                                                              : -1;
}

long long ear_index_find_prefix(const ear_index *idx, const char *prefix)
{
    size_t at = lower_bound(idx, prefix);
    return at < idx->count && strncmp(ear_index_item_path(idx, at), prefix, strlen(prefix)) == 0
               ? (long long)at
               : -1;
}

int ear_index_item_embedding(const ear_index *idx, size_t item, float *out, ear_error *err)
{
    if (item >= idx->count)
        return ear_error_set(err, "item %zu out of range (%zu items)", item, idx->count);
    int kind = ear_index_item_kind(idx, item);
    uint32_t row = ear_index_get_u32(item_record(idx, item) + EAR_INDEX_ITEM_ROW);
    if (kind < 0 || row >= idx->kinds[kind].rows)
        return ear_error_set(err, "corrupt index: item %zu's kind or row is out of range", item);
    const uint8_t *at = idx->kinds[kind].matrix + row * (size_t)idx->dim * idx->element_size;
    if (idx->dtype == EAR_INDEX_F32) {
        memcpy(out, at, (size_t)idx->dim * sizeof *out);
    } else {
        const uint16_t *half = (const uint16_t *)(const void *)at;
        for (int i = 0; i < idx->dim; i++)
            out[i] = ear_index_f16_to_f32(half[i]);
    }
    return 0;
}

int ear_index_verify(const ear_index *idx, ear_error *err)
{
    const char *previous = NULL;
    for (size_t item = 0; item < idx->count; item++) {
        const uint8_t *record = item_record(idx, item);
        static const int fields[2] = {EAR_INDEX_ITEM_PATH, EAR_INDEX_ITEM_LABEL};
        static const char *const field_names[2] = {"path", "label"};
        for (int f = 0; f < 2; f++)
            if (ear_index_get_u64(record + fields[f]) >= idx->strings_size)
                return ear_error_set(err, "corrupt index: item %zu's %s is outside the strings",
                                     item, field_names[f]);
        const char *path = ear_index_item_path(idx, item);
        if (!*path)
            return ear_error_set(err, "corrupt index: item %zu has an empty path", item);
        if (previous && strcmp(previous, path) >= 0)
            return ear_error_set(err, "corrupt index: paths not sorted or not unique at item "
                                      "%zu ('%s' after '%s')",
                                 item, path, previous);
        previous = path;
        int kind = ear_index_item_kind(idx, item);
        if (kind < 0)
            return ear_error_set(err, "corrupt index: item %zu has an unknown kind %u", item,
                                 ear_index_get_u32(record + EAR_INDEX_ITEM_KIND));
        uint32_t row = ear_index_get_u32(record + EAR_INDEX_ITEM_ROW);
        if (row >= idx->kinds[kind].rows || idx->kinds[kind].items[row] != item)
            return ear_error_set(err, "corrupt index: item %zu's %s row %u does not map back "
                                      "to it",
                                 item, kind_name((ear_index_kind)kind), row);
    }
    for (int kind = 0; kind < EAR_INDEX_KINDS; kind++) {
        const index_kind *k = &idx->kinds[kind];
        for (size_t row = 0; row < k->rows; row++) {
            uint32_t item = k->items[row];
            if (item >= idx->count || ear_index_item_kind(idx, item) != kind ||
                ear_index_get_u32(item_record(idx, item) + EAR_INDEX_ITEM_ROW) != row)
                return ear_error_set(err, "corrupt index: %s row %zu maps to item %u, which "
                                          "does not point back",
                                     kind_name((ear_index_kind)kind), row, item);
        }
    }
    return 0;
}

void ear_index_describe(const ear_index *idx, FILE *out)
{
    fprintf(out, "Ear index (format version %d)\n", EAR_INDEX_VERSION);
    fprintf(out, "  fingerprint    %s (the model that built it)\n", idx->fingerprint);
    fprintf(out, "  items          %zu\n", idx->count);
    fprintf(out, "  images         %zu\n", idx->kinds[EAR_INDEX_IMAGE].rows);
    fprintf(out, "  sounds         %zu\n", idx->kinds[EAR_INDEX_AUDIO].rows);
    fprintf(out, "  dimension      %d\n", idx->dim);
    fprintf(out, "  element type   %s\n", idx->dtype == EAR_INDEX_F16 ? "f16" : "f32");
    fprintf(out, "  file           %zu bytes (%.1f MiB)\n", idx->size,
            (double)idx->size / (1024.0 * 1024.0));
}

/* A candidate is worse when its score is lower or, at equal scores, its item
 * comes later: items are sorted by path, so ties go to the smaller path. */
static int hit_worse(const ear_index_hit *a, const ear_index_hit *b)
{
    return a->score < b->score || (a->score == b->score && a->item > b->item);
}

/* hits[0, n) is a heap with the worst hit on top. */
static void heap_sift_down(ear_index_hit *hits, int n, int at)
{
    for (;;) {
        int worst = at, left = 2 * at + 1, right = left + 1;
        if (left < n && hit_worse(&hits[left], &hits[worst]))
            worst = left;
        if (right < n && hit_worse(&hits[right], &hits[worst]))
            worst = right;
        if (worst == at)
            return;
        ear_index_hit t = hits[at];
        hits[at] = hits[worst];
        hits[worst] = t;
        at = worst;
    }
}

static void heap_sift_up(ear_index_hit *hits, int at)
{
    while (at > 0) {
        int parent = (at - 1) / 2;
        if (!hit_worse(&hits[at], &hits[parent]))
            return;
        ear_index_hit t = hits[at];
        hits[at] = hits[parent];
        hits[parent] = t;
        at = parent;
    }
}

static int hit_order(const void *a, const void *b)
{
    const ear_index_hit *x = a, *y = b;
    return hit_worse(y, x) ? -1 : hit_worse(x, y) ? 1 : 0;
}

int ear_index_search(const ear_index *idx, unsigned kinds, const float *query, int k,
                     ear_index_hit *hits, int *found, ear_error *err)
{
    *found = 0;
    if (kinds == 0 || (kinds & ~EAR_INDEX_ALL) != 0)
        return ear_error_set(err, "unknown set of kinds %#x", kinds);
    if (k < 1)
        return ear_error_set(err, "k must be at least 1 (got %d)", k);
    for (int i = 0; i < idx->dim; i++)
        if (!isfinite(query[i]))
            return ear_error_set(err, "the query embedding is not finite");
    size_t searched = 0;
    for (int kind = 0; kind < EAR_INDEX_KINDS; kind++)
        if (kinds & EAR_INDEX_MASK(kind))
            searched += idx->kinds[kind].rows;
    if (searched == 0)
        return ear_error_set(err, "the index holds no %s items",
                             kinds == EAR_INDEX_ALL ? "searchable"
                                                    : kind_name(kinds == EAR_INDEX_MASK(EAR_INDEX_IMAGE)
                                                                    ? EAR_INDEX_IMAGE
                                                                    : EAR_INDEX_AUDIO));

    float scores[SEARCH_BLOCK_ROWS];
    size_t dim = (size_t)idx->dim;
    int n = 0;
    for (int kind_number = 0; kind_number < EAR_INDEX_KINDS; kind_number++) {
        if (!(kinds & EAR_INDEX_MASK(kind_number)))
            continue;
        const index_kind *kind = &idx->kinds[kind_number];
        for (size_t start = 0; start < kind->rows; start += SEARCH_BLOCK_ROWS) {
            size_t rows = kind->rows - start;
            if (rows > SEARCH_BLOCK_ROWS)
                rows = SEARCH_BLOCK_ROWS;
            const uint8_t *block = kind->matrix + start * dim * idx->element_size;
            if (idx->dtype == EAR_INDEX_F32)
                ear_index_dot_f32((const float *)(const void *)block, rows, (int)dim, query,
                                  scores);
            else
                ear_index_dot_f16((const uint16_t *)(const void *)block, rows, (int)dim, query,
                                  scores);
            for (size_t r = 0; r < rows; r++) {
                /* Most rows lose to the worst kept hit: decide that before anything else. */
                if (n == k && scores[r] < hits[0].score)
                    continue;
                if (isnan(scores[r]))
                    continue; /* a corrupt matrix must not poison the ordering */
                uint32_t item = kind->items[start + r];
                if (item >= idx->count)
                    return ear_error_set(err, "corrupt index: %s row %zu maps to item %u of %zu",
                                         kind_name((ear_index_kind)kind_number), start + r, item,
                                         idx->count);
                ear_index_hit candidate = {.item = item, .score = scores[r]};
                if (n < k) {
                    hits[n] = candidate;
                    heap_sift_up(hits, n++);
                } else if (hit_worse(&hits[0], &candidate)) {
                    hits[0] = candidate;
                    heap_sift_down(hits, n, 0);
                }
            }
        }
    }
    qsort(hits, (size_t)n, sizeof *hits, hit_order);
    *found = n;
    return 0;
}
