/* The original service's index, indexed_db.pt, read directly: torch.save of
 * {"metadata": [{"type": "audio"|"image", "url": "/ear/data/<path>", "label"}],
 * "tensor": float [N, D]} (../shared/spec/original.md). Every row becomes an
 * item of its type at the path its URL names under the dataset root. What can
 * be checked is: the dimension against the model, every file there. What
 * cannot: which model made the vectors (the file holds no fingerprint). */
#include "query/query.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt/pt.h"

/* The path a URL names under the dataset root: what follows its first "/data/"
 * (the original wrote "/ear/data/<path>"), each segment neither empty, "." nor "..". */
static const char *url_path(const char *url)
{
    const char *at = strstr(url, "/data/");
    if (!at)
        return NULL;
    const char *path = at + 6;
    for (const char *p = path;;) {
        const char *slash = strchr(p, '/');
        size_t length = slash ? (size_t)(slash - p) : strlen(p);
        if (length == 0 || (length == 1 && p[0] == '.') ||
            (length == 2 && p[0] == '.' && p[1] == '.'))
            return NULL;
        if (!slash)
            break;
        p = slash + 1;
    }
    return path;
}

static int is_regular_file(const char *data_dir, const char *path)
{
    char *full = NULL;
    struct stat st;
    if (asprintf(&full, "%s/%s", data_dir, path) < 0)
        return 0;
    int regular = stat(full, &st) == 0 && S_ISREG(st.st_mode);
    free(full);
    return regular;
}

int ear_query_import_pt(const char *pt_path, const char *data_dir, int model_dim,
                        const char *out_path, ear_index_dtype dtype,
                        ear_query_import_summary *summary, ear_error *err)
{
    ear_pt_file *pt = NULL;
    ear_index_entry *entries = NULL;
    float *vectors = NULL;
    int rc = -1;
    memset(summary, 0, sizeof *summary);
    pt = ear_pt_open(pt_path, err);
    if (!pt)
        goto done;
    const ear_pt_value *root = ear_pt_root(pt);
    const ear_pt_value *metadata = ear_pt_dict_get(root, "metadata");
    const ear_pt_tensor *tensor = ear_pt_value_tensor(ear_pt_dict_get(root, "tensor"));
    if (ear_pt_value_kind(metadata) != EAR_PT_KIND_LIST || !tensor) {
        ear_error_set(err, "%s: not the original's index: no \"metadata\" list and \"tensor\" "
                           "beside it",
                      pt_path);
        goto done;
    }
    size_t rows = ear_pt_value_count(metadata);
    if (tensor->ndim != 2 || tensor->shape[0] != rows) {
        ear_error_set(err, "%s: the tensor is not [%zu, D] for %zu metadata entries", pt_path,
                      rows, rows);
        goto done;
    }
    size_t dim = tensor->shape[1];
    if (dim < 1 || dim > 65536 || (model_dim > 0 && dim != (size_t)model_dim)) {
        ear_error_set(err, "%s: vectors of dimension %zu; the model's embeddings have %d: this "
                           "index was not made by this model",
                      pt_path, dim, model_dim);
        goto done;
    }
    if (rows == 0) {
        ear_error_set(err, "%s: the index holds no rows", pt_path);
        goto done;
    }
    entries = calloc(rows, sizeof *entries);
    vectors = malloc(rows * dim * sizeof *vectors);
    if (!entries || !vectors) {
        ear_error_set(err, "%s: out of memory (%zu rows)", pt_path, rows);
        goto done;
    }
    ear_pt_tensor_to_f32(tensor, vectors);
    char first_missing[3][256] = {{0}};
    for (size_t i = 0; i < rows; i++) {
        const ear_pt_value *m = ear_pt_value_item(metadata, i);
        const char *type = ear_pt_value_string(ear_pt_dict_get(m, "type"), NULL);
        const char *url = ear_pt_value_string(ear_pt_dict_get(m, "url"), NULL);
        const char *label = ear_pt_value_string(ear_pt_dict_get(m, "label"), NULL);
        int kind = type && strcmp(type, "audio") == 0   ? EAR_INDEX_AUDIO
                   : type && strcmp(type, "image") == 0 ? EAR_INDEX_IMAGE
                                                        : -1;
        if (ear_pt_value_kind(m) != EAR_PT_KIND_DICT || kind < 0 || !url) {
            ear_error_set(err, "%s: metadata %zu is not {\"type\": \"audio\" or \"image\", "
                               "\"url\", \"label\"}",
                          pt_path, i);
            goto done;
        }
        const char *path = url_path(url);
        if (!path) {
            ear_error_set(err, "%s: metadata %zu: the URL \"%.200s\" names no file under "
                               "/data/",
                          pt_path, i, url);
            goto done;
        }
        for (size_t d = 0; d < dim; d++)
            if (!isfinite(vectors[i * dim + d])) {
                ear_error_set(err, "%s: row %zu (%s) is not finite", pt_path, i, path);
                goto done;
            }
        if (!is_regular_file(data_dir, path)) {
            if (summary->missing < 3)
                snprintf(first_missing[summary->missing], sizeof first_missing[0], "%s", path);
            summary->missing++;
        }
        entries[i] = (ear_index_entry){.kind = (ear_index_kind)kind, .path = path,
                                       .label = label ? label : "",
                                       .embedding = vectors + i * dim};
        summary->images += kind == EAR_INDEX_IMAGE;
        summary->sounds += kind == EAR_INDEX_AUDIO;
    }
    if (summary->missing) {
        ear_error_set(err, "%s: %zu of its %zu files are not under %s (%s%s%s%s%s%s)", pt_path,
                      summary->missing, rows, data_dir, first_missing[0],
                      first_missing[1][0] ? ", " : "", first_missing[1],
                      first_missing[2][0] ? ", " : "", first_missing[2],
                      summary->missing > 3 ? ", ..." : "");
        goto done;
    }
    summary->items = rows;
    summary->dim = (int)dim;
    ear_index_remove_stale_temporaries(out_path);
    if (ear_index_write(out_path, EAR_INDEX_NO_FINGERPRINT, (int)dim, dtype, entries, rows,
                        err) != 0)
        goto done;
    rc = 0;
done:
    free(vectors);
    free(entries);
    ear_pt_close(pt);
    return rc;
}

int ear_query_is_pt(const char *path)
{
    unsigned char magic[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, magic, sizeof magic);
    close(fd);
    return n == 4 && memcmp(magic, "PK\x03\x04", 4) == 0;
}

ear_index *ear_query_open_index(const char *path, const char *data_dir,
                                const ear_nn_model *model, char *note, size_t note_size,
                                ear_error *err)
{
    const char *fingerprint = model ? ear_nn_model_fingerprint(model) : NULL;
    int model_dim = model ? ear_nn_model_config(model)->embed_dim : 0;
    if (note && note_size)
        note[0] = 0;
    if (!ear_query_is_pt(path)) {
        ear_index *idx = ear_index_open(path, NULL, err);
        if (!idx)
            return NULL;
        const char *built_by = ear_index_model_fingerprint(idx);
        if (strcmp(built_by, EAR_INDEX_NO_FINGERPRINT) == 0) {
            if (model_dim && ear_index_dim(idx) != model_dim) {
                ear_error_set(err, "%s: vectors of dimension %d; the model's embeddings have %d",
                              path, ear_index_dim(idx), model_dim);
                ear_index_close(idx);
                return NULL;
            }
            if (note)
                snprintf(note, note_size,
                         "%s was imported from the original's indexed_db.pt: its dimension "
                         "matches the model, but which model made its vectors cannot be "
                         "checked (the original kept no fingerprint)",
                         path);
            return idx;
        }
        if (fingerprint && strcmp(built_by, fingerprint) != 0) {
            ear_error_set(err,
                          "%s: built by another model (fingerprint %s, this model's is %s): "
                          "rebuild it with `ear index` for this model",
                          path, built_by, fingerprint);
            ear_index_close(idx);
            return NULL;
        }
        return idx;
    }
    /* The original's file: converted into a private index file that is
     * unlinked as soon as it is mapped, so that nothing is left behind. */
    const char *tmp_dir = getenv("TMPDIR");
    char folder[4096];
    snprintf(folder, sizeof folder, "%s/ear-import-XXXXXX",
             tmp_dir && *tmp_dir ? tmp_dir : "/tmp");
    if (!mkdtemp(folder)) {
        ear_error_set(err, "%s: cannot make a folder to convert it in: %s", path,
                      strerror(errno));
        return NULL;
    }
    char converted[4200];
    snprintf(converted, sizeof converted, "%s/index.earindex", folder);
    ear_query_import_summary summary;
    ear_index *idx = NULL;
    if (ear_query_import_pt(path, data_dir, model_dim, converted, EAR_INDEX_F32, &summary,
                            err) == 0)
        idx = ear_index_open(converted, NULL, err);
    unlink(converted);
    rmdir(folder);
    if (idx && note)
        snprintf(note, note_size,
                 "%s: the original's index, %zu items (%zu images, %zu sounds), every file "
                 "found under %s and the dimension (%d) the model's; which model made its "
                 "vectors cannot be checked (the original kept no fingerprint)",
                 path, summary.items, summary.images, summary.sounds, data_dir, summary.dim);
    return idx;
}
