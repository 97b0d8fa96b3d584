/* Writing an index: the layout is computed first, then the file is streamed
 * to a temporary beside the target and renamed over it, so that a reader
 * (or a crash) only ever sees the old index or the whole new one. */
#include "index/index.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/format.h"

/* Where each section goes, computed before a byte is written. */
typedef struct layout {
    uint64_t items, image_map, audio_map, strings, strings_size, images, audios, size;
    uint64_t rows[EAR_INDEX_KINDS];
} layout;

typedef struct writer {
    FILE *file;
    uint64_t written;
    const char *path;
    ear_error *err;
    int failed;
} writer;

static void put(writer *w, const void *data, size_t size)
{
    if (w->failed || size == 0)
        return;
    if (fwrite(data, 1, size, w->file) != size) {
        ear_error_set(w->err, "%s: %s", w->path, strerror(errno ? errno : EIO));
        w->failed = 1;
        return;
    }
    w->written += size;
}

static void pad_to(writer *w, uint64_t offset)
{
    static const uint8_t zeros[EAR_INDEX_ALIGN];
    while (!w->failed && w->written < offset) {
        uint64_t n = offset - w->written;
        put(w, zeros, n < sizeof zeros ? (size_t)n : sizeof zeros);
    }
}

static uint64_t align_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

static int entry_order(const void *a, const void *b)
{
    const ear_index_entry *const *x = a, *const *y = b;
    return strcmp((*x)->path, (*y)->path);
}

static int finite_vector(const float *v, int dim)
{
    for (int i = 0; i < dim; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

/* Checks the entries and sorts pointers to them by id into *sorted. */
static int check_entries(const ear_index_entry *entries, size_t count, int dim,
                         const ear_index_entry ***sorted, ear_error *err)
{
    if (count >= EAR_INDEX_NO_ROW)
        return ear_error_set(err, "too many items (%zu; at most %u)", count,
                             EAR_INDEX_NO_ROW - 1);
    const ear_index_entry **order = malloc((count ? count : 1) * sizeof *order);
    if (!order)
        return ear_error_set(err, "out of memory (%zu items)", count);
    for (size_t i = 0; i < count; i++) {
        const ear_index_entry *e = &entries[i];
        order[i] = e;
        if (!e->path || !*e->path) {
            ear_error_set(err, "item %zu has no path", i);
            goto fail;
        }
        if (e->kind != EAR_INDEX_IMAGE && e->kind != EAR_INDEX_AUDIO) {
            ear_error_set(err, "item '%s': unknown kind %d", e->path, (int)e->kind);
            goto fail;
        }
        if (!e->embedding || !finite_vector(e->embedding, dim)) {
            ear_error_set(err, "item '%s': no embedding, or one that is not finite", e->path);
            goto fail;
        }
    }
    qsort(order, count, sizeof *order, entry_order);
    for (size_t i = 1; i < count; i++)
        if (strcmp(order[i - 1]->path, order[i]->path) == 0) {
            ear_error_set(err, "two items have the path '%s'", order[i]->path);
            goto fail;
        }
    *sorted = order;
    return 0;
fail:
    free(order);
    return -1;
}

/* The strings of one item, with the label stored once when it is the path. */
static uint64_t strings_of(const ear_index_entry *e, uint64_t at, uint64_t offsets[2])
{
    offsets[0] = at;
    at += strlen(e->path) + 1;
    if (e->label && strcmp(e->label, e->path) != 0) {
        offsets[1] = at;
        at += strlen(e->label) + 1;
    } else {
        offsets[1] = offsets[0];
    }
    return at;
}

static void compute_layout(const ear_index_entry **order, size_t count, int dim,
                           size_t element_size, layout *l)
{
    uint64_t offsets[2], strings_size = 0;
    memset(l, 0, sizeof *l);
    for (size_t i = 0; i < count; i++) {
        strings_size = strings_of(order[i], strings_size, offsets);
        l->rows[order[i]->kind]++;
    }
    uint64_t row_bytes = (uint64_t)dim * element_size;
    l->items = EAR_INDEX_HEADER_SIZE;
    l->image_map = l->items + (uint64_t)count * EAR_INDEX_ITEM_SIZE;
    l->audio_map = l->image_map + l->rows[EAR_INDEX_IMAGE] * 4;
    l->strings = l->audio_map + l->rows[EAR_INDEX_AUDIO] * 4;
    l->strings_size = strings_size;
    l->images = align_up(l->strings + strings_size, EAR_INDEX_ALIGN);
    l->audios = align_up(l->images + l->rows[EAR_INDEX_IMAGE] * row_bytes, EAR_INDEX_ALIGN);
    l->size = l->audios + l->rows[EAR_INDEX_AUDIO] * row_bytes;
}

static void write_header(writer *w, const layout *l, const char *fingerprint, size_t count,
                         int dim, ear_index_dtype dtype)
{
    uint8_t h[EAR_INDEX_HEADER_SIZE] = {0};
    memcpy(h + EAR_INDEX_AT_MAGIC, EAR_INDEX_MAGIC, 8);
    ear_index_put_u32(h + EAR_INDEX_AT_VERSION, EAR_INDEX_VERSION);
    ear_index_put_u32(h + EAR_INDEX_AT_HEADER_SIZE, EAR_INDEX_HEADER_SIZE);
    memcpy(h + EAR_INDEX_AT_FINGERPRINT, fingerprint, 16);
    ear_index_put_u64(h + EAR_INDEX_AT_ITEM_COUNT, count);
    ear_index_put_u32(h + EAR_INDEX_AT_DIM, (uint32_t)dim);
    ear_index_put_u32(h + EAR_INDEX_AT_DTYPE, (uint32_t)dtype);
    ear_index_put_u64(h + EAR_INDEX_AT_IMAGE_ROWS, l->rows[EAR_INDEX_IMAGE]);
    ear_index_put_u64(h + EAR_INDEX_AT_AUDIO_ROWS, l->rows[EAR_INDEX_AUDIO]);
    ear_index_put_u64(h + EAR_INDEX_AT_FILE_SIZE, l->size);
    ear_index_put_u64(h + EAR_INDEX_AT_ITEMS, l->items);
    ear_index_put_u64(h + EAR_INDEX_AT_STRINGS, l->strings);
    ear_index_put_u64(h + EAR_INDEX_AT_STRINGS_SIZE, l->strings_size);
    ear_index_put_u64(h + EAR_INDEX_AT_IMAGES, l->images);
    ear_index_put_u64(h + EAR_INDEX_AT_IMAGE_MAP, l->image_map);
    ear_index_put_u64(h + EAR_INDEX_AT_AUDIOS, l->audios);
    ear_index_put_u64(h + EAR_INDEX_AT_AUDIO_MAP, l->audio_map);
    ear_index_put_u64(h + EAR_INDEX_AT_CHECKSUM, ear_index_fnv1a(h, EAR_INDEX_AT_CHECKSUM));
    put(w, h, sizeof h);
}

static void write_tables(writer *w, const ear_index_entry **order, size_t count)
{
    uint64_t offsets[2], strings_at = 0;
    uint32_t rows[EAR_INDEX_KINDS] = {0, 0};
    for (size_t i = 0; i < count && !w->failed; i++) {
        uint8_t record[EAR_INDEX_ITEM_SIZE];
        strings_at = strings_of(order[i], strings_at, offsets);
        ear_index_put_u64(record + EAR_INDEX_ITEM_PATH, offsets[0]);
        ear_index_put_u64(record + EAR_INDEX_ITEM_LABEL, offsets[1]);
        ear_index_put_u32(record + EAR_INDEX_ITEM_KIND, (uint32_t)order[i]->kind);
        ear_index_put_u32(record + EAR_INDEX_ITEM_ROW, rows[order[i]->kind]++);
        put(w, record, sizeof record);
    }
    for (int kind = 0; kind < EAR_INDEX_KINDS; kind++)
        for (size_t i = 0; i < count && !w->failed; i++) {
            uint32_t item = (uint32_t)i;
            if ((int)order[i]->kind == kind)
                put(w, &item, sizeof item);
        }
    for (size_t i = 0; i < count && !w->failed; i++) {
        const ear_index_entry *e = order[i];
        put(w, e->path, strlen(e->path) + 1);
        if (e->label && strcmp(e->label, e->path) != 0)
            put(w, e->label, strlen(e->label) + 1);
    }
}

static void write_matrix(writer *w, const ear_index_entry **order, size_t count, int dim,
                         ear_index_dtype dtype, ear_index_kind kind, uint16_t *half_row)
{
    for (size_t i = 0; i < count && !w->failed; i++) {
        if (order[i]->kind != kind)
            continue;
        const float *e = order[i]->embedding;
        if (dtype == EAR_INDEX_F32) {
            put(w, e, (size_t)dim * sizeof *e);
        } else {
            for (int d = 0; d < dim; d++)
                half_row[d] = ear_index_f32_to_f16(e[d]);
            put(w, half_row, (size_t)dim * sizeof *half_row);
        }
    }
}

/* ".NAME.tmp.PID" beside path: hidden, and tied to the process that writes it. */
static char *temporary_path(const char *path, long pid)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    size_t size = strlen(path) + 32;
    char *tmp = malloc(size);
    if (tmp)
        snprintf(tmp, size, "%.*s.%s.tmp.%ld", (int)dir_len, path, path + dir_len, pid);
    return tmp;
}

/* The folder part of path ("." when none), malloc'd; NULL when out of memory. */
static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* Makes the rename itself durable. */
static void sync_folder(const char *path)
{
    char *dir = folder_of(path);
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int ear_index_write(const char *path, const char *fingerprint, int dim, ear_index_dtype dtype,
                    const ear_index_entry *entries, size_t count, ear_error *err)
{
    const ear_index_entry **order = NULL;
    uint16_t *half_row = NULL;
    char *tmp = NULL;
    writer w = {.path = path, .err = err};
    if (!fingerprint || strlen(fingerprint) != 16 ||
        strspn(fingerprint, "0123456789abcdef") != 16)
        return ear_error_set(err, "%s: the model fingerprint must be 16 lowercase hex digits",
                             path);
    if (dim < 1 || dim > 65536)
        return ear_error_set(err, "%s: dimension %d (1 to 65536)", path, dim);
    if (dtype != EAR_INDEX_F32 && dtype != EAR_INDEX_F16)
        return ear_error_set(err, "%s: unknown element type %d", path, (int)dtype);
    if (check_entries(entries, count, dim, &order, err) != 0)
        return -1;
    half_row = malloc((size_t)dim * sizeof *half_row);
    tmp = temporary_path(path, (long)getpid());
    if (!half_row || !tmp) {
        ear_error_set(err, "%s: out of memory", path);
        goto fail;
    }
    layout l;
    compute_layout(order, count, dim, dtype == EAR_INDEX_F16 ? 2 : 4, &l);

    unlink(tmp); /* ours by its pid: a leftover of this very process id is stale */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        ear_error_set(err, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        free(tmp);
        tmp = NULL; /* nothing to remove */
        goto fail;
    }
    w.file = fdopen(fd, "wb");
    if (!w.file) {
        ear_error_set(err, "%s: %s", path, strerror(errno));
        close(fd);
        goto fail;
    }
    errno = 0;
    write_header(&w, &l, fingerprint, count, dim, dtype);
    write_tables(&w, order, count);
    pad_to(&w, l.images);
    write_matrix(&w, order, count, dim, dtype, EAR_INDEX_IMAGE, half_row);
    pad_to(&w, l.audios);
    write_matrix(&w, order, count, dim, dtype, EAR_INDEX_AUDIO, half_row);
    if (w.failed)
        goto fail;
    if (w.written != l.size) {
        ear_error_set(err, "%s: wrote %llu bytes, the layout says %llu", path,
                      (unsigned long long)w.written, (unsigned long long)l.size);
        goto fail;
    }
    if (fflush(w.file) != 0 || fsync(fileno(w.file)) != 0) {
        ear_error_set(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    FILE *file = w.file;
    w.file = NULL;
    if (fclose(file) != 0) {
        ear_error_set(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        ear_error_set(err, "%s: cannot replace it: %s", path, strerror(errno));
        goto fail;
    }
    sync_folder(path);
    free(tmp);
    free(half_row);
    free(order);
    return 0;
fail:
    if (w.file)
        fclose(w.file);
    if (tmp)
        unlink(tmp);
    free(tmp);
    free(half_row);
    free(order);
    return -1;
}

int ear_index_remove_stale_temporaries(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir = folder_of(path), *prefix = NULL;
    DIR *d = NULL;
    int removed = 0;
    if (!dir || asprintf(&prefix, ".%s.tmp.", base) < 0) {
        prefix = NULL;
        goto done;
    }
    size_t prefix_len = strlen(prefix);
    d = opendir(dir);
    if (!d)
        goto done;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (strncmp(entry->d_name, prefix, prefix_len) != 0)
            continue;
        const char *digits = entry->d_name + prefix_len;
        char *end;
        long pid = strtol(digits, &end, 10);
        if (end == digits || *end || pid <= 0 || pid == (long)getpid())
            continue;
        /* Only a writer that is gone: a live one may be about to rename it. */
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        if (unlinkat(dirfd(d), entry->d_name, 0) == 0)
            removed++;
    }
done:
    if (d)
        closedir(d);
    free(prefix);
    free(dir);
    return removed;
}
