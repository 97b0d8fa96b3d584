/* Building an index from a dataset folder: walk both layouts, embed every
 * file on a pool of threads (one inference session each), write the file.
 * A file that cannot be read costs only its own item. */
#include "query/query.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "audio/audio.h"
#include "image/image.h"

/* Frames and sounds larger than this are refused rather than read. */
#define MAX_FILE_BYTES ((size_t)256 << 20)

/* Folders deeper than this under audio/ or frames/ are not walked (a loop of
 * bind mounts must not run forever; symbolic links to folders are not followed). */
#define MAX_DEPTH 32

typedef struct build_item {
    char *path;          /* under the dataset root, '/'-separated */
    char *label;         /* owned */
    ear_index_kind kind;
    int embedded;
} build_item;

typedef struct build_job {
    const ear_nn_model *model;
    const ear_nn_config *config;
    const char *data_dir;
    const ear_query_build_options *options;
    build_item *items;
    size_t count, capacity;
    float *embeddings; /* [count][dim] */

    pthread_mutex_t lock;
    pthread_cond_t changed;  /* signalled when a worker ends */
    size_t next, done, problems;
    int running;             /* workers still going */
} build_job;

typedef struct build_worker {
    build_job *job;
    ear_nn_session *session;
    pthread_t thread;
    int started;
} build_worker;

/* "a/b" (b may be NULL: a alone), malloc'd; NULL when out of memory. */
static char *path_join(const char *a, const char *b)
{
    char *out;
    if (asprintf(&out, "%s%s%s", a, b ? "/" : "", b ? b : "") < 0)
        return NULL;
    return out;
}

static void report(build_job *job, const char *file, const char *reason)
{
    pthread_mutex_lock(&job->lock);
    job->problems++;
    if (job->options->problem)
        job->options->problem(job->options->user, file, reason);
    pthread_mutex_unlock(&job->lock);
}

static int add_item(build_job *job, const char *path, ear_index_kind kind, const char *label,
                    ear_error *err)
{
    if (job->count == job->capacity) {
        size_t grown = job->capacity ? job->capacity * 2 : 64;
        build_item *items = realloc(job->items, grown * sizeof *items);
        if (!items)
            return ear_error_set(err, "out of memory (%zu files)", job->count);
        job->items = items;
        job->capacity = grown;
    }
    build_item *item = &job->items[job->count];
    item->path = strdup(path);
    item->label = strdup(label);
    item->kind = kind;
    item->embedded = 0;
    if (!item->path || !item->label) {
        free(item->path);
        free(item->label);
        return ear_error_set(err, "out of memory (%zu files)", job->count);
    }
    job->count++;
    return 0;
}

/* labels.tsv as (id, label) pairs sorted by id, then line: when an id comes
 * twice the later line wins, as in the original service's dict. */
typedef struct label_pair {
    const char *id, *label;
    size_t line;
} label_pair;

typedef struct label_table {
    char *text;
    label_pair *pairs;
    size_t count;
} label_table;

static int label_order(const void *a, const void *b)
{
    const label_pair *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Lines without a tab (or with an empty id or label) are ignored. */
static int read_labels(const char *data_dir, label_table *t, ear_error *err)
{
    memset(t, 0, sizeof *t);
    char *path = path_join(data_dir, "labels.tsv");
    if (!path)
        return ear_error_set(err, "out of memory");
    struct stat st;
    size_t size;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        free(path);
        return 0;
    }
    t->text = (char *)ear_file_read(path, (size_t)1 << 30, &size, err);
    free(path);
    if (!t->text)
        return -1;
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += t->text[i] == '\n';
    t->pairs = malloc(lines * sizeof *t->pairs);
    if (!t->pairs) {
        free(t->text);
        t->text = NULL;
        return ear_error_set(err, "labels.tsv: out of memory");
    }
    size_t number = 0;
    for (char *line = t->text; line && *line; number++) {
        char *end = strchr(line, '\n');
        if (end)
            *end = 0;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[len - 1] = 0;
        char *tab = strchr(line, '\t');
        if (tab && tab != line && tab[1]) {
            *tab = 0;
            t->pairs[t->count++] = (label_pair){.id = line, .label = tab + 1, .line = number};
        }
        line = end ? end + 1 : NULL;
    }
    qsort(t->pairs, t->count, sizeof *t->pairs, label_order);
    return 0;
}

static const char *find_label(const label_table *t, const char *id)
{
    size_t low = 0, high = t->count; /* the first pair whose id is > id */
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (strcmp(t->pairs[mid].id, id) <= 0)
            low = mid + 1;
        else
            high = mid;
    }
    return low > 0 && strcmp(t->pairs[low - 1].id, id) == 0 ? t->pairs[low - 1].label : NULL;
}

static void free_labels(label_table *t)
{
    free(t->pairs);
    free(t->text);
}

/* The id of a flat-layout file: its name without the last extension. */
static char *id_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    return strndup(name, dot && dot != name ? (size_t)(dot - name) : strlen(name));
}

/* Adds every regular file under data_dir/rel (hidden names left out) as an
 * item of kind. label: the first folder under the kind's folder; NULL at the
 * top (the flat layout: the id's label in labels.tsv, else the id). */
static int walk(build_job *job, const char *rel, ear_index_kind kind, const char *label,
                const label_table *labels, int depth, ear_error *err)
{
    char *dir = path_join(job->data_dir, rel);
    if (!dir)
        return ear_error_set(err, "out of memory");
    DIR *d = opendir(dir);
    if (!d) {
        /* A missing kind folder is an empty one; the top one is checked by the caller. */
        int rc = errno == ENOENT && depth == 0 ? 0 : ear_error_set(err, "%s: %s", dir,
                                                                   strerror(errno));
        free(dir);
        return rc;
    }
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char *child = path_join(rel, entry->d_name), *full = path_join(dir, entry->d_name);
        struct stat st, link;
        if (!child || !full) {
            rc = ear_error_set(err, "out of memory");
        } else if (lstat(full, &link) != 0 || stat(full, &st) != 0) {
            report(job, full, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            if (S_ISLNK(link.st_mode))
                report(job, full, "a symbolic link to a folder: not followed");
            else if (depth + 1 >= MAX_DEPTH)
                report(job, full, "folders nested too deep: not walked");
            else
                rc = walk(job, child, kind, label ? label : entry->d_name, labels, depth + 1,
                          err);
        } else if (S_ISREG(st.st_mode)) {
            if (label) {
                rc = add_item(job, child, kind, label, err);
            } else {
                char *id = id_of(entry->d_name);
                const char *found = id ? find_label(labels, id) : NULL;
                rc = id ? add_item(job, child, kind, found ? found : id, err)
                        : ear_error_set(err, "out of memory");
                free(id);
            }
        }
        free(child);
        free(full);
    }
    closedir(d);
    free(dir);
    return rc;
}

static int item_order(const void *a, const void *b)
{
    return strcmp(((const build_item *)a)->path, ((const build_item *)b)->path);
}

/* Reads data_dir/rel whole: the bytes, and the path in *file (for reports; NULL
 * when out of memory). Returns NULL with err filled when it cannot. */
static uint8_t *read_dataset_file(const build_job *job, const char *rel, char **file,
                                  size_t *size, ear_error *err)
{
    *file = path_join(job->data_dir, rel);
    if (!*file) {
        ear_error_set(err, "out of memory");
        return NULL;
    }
    return ear_file_read(*file, MAX_FILE_BYTES, size, err);
}

/* Embeds one frame into out; reports and returns -1 when it cannot. */
static int embed_frame(build_worker *w, const char *rel, float *out)
{
    build_job *job = w->job;
    ear_error err;
    ear_image img = {0};
    char *file = NULL;
    size_t size;
    int rc = -1;
    uint8_t *data = read_dataset_file(job, rel, &file, &size, &err);
    if (!data)
        goto done;
    if (ear_image_decode(data, size, &img, &err) != 0)
        goto done;
    rc = ear_nn_embed_image(w->session, &img, out, &err);
done:
    if (rc != 0)
        report(job, file ? file : rel, err.message);
    ear_image_free(&img);
    free(data);
    free(file);
    return rc;
}

/* Embeds one sound into out; reports and returns -1 when it cannot. */
static int embed_sound(build_worker *w, const char *rel, float *out)
{
    build_job *job = w->job;
    ear_error err;
    ear_audio_clip clip = {0};
    char *file = NULL;
    size_t size;
    int rc = -1;
    uint8_t *data = read_dataset_file(job, rel, &file, &size, &err);
    if (!data)
        goto done;
    ear_audio_decode_options decode;
    ear_audio_decode_options_default(&decode);
    decode.sample_rate = job->config->mel.sample_rate;
    decode.max_seconds = job->options->max_seconds;
    if (ear_audio_decode(data, size, &decode, &clip, &err) != 0)
        goto done;
    size_t minimum = (size_t)decode.sample_rate / 10; /* as for a query */
    if (minimum < ear_nn_model_min_samples(job->model))
        minimum = ear_nn_model_min_samples(job->model);
    if (clip.count < minimum) {
        ear_error_set(&err, "too short: %.3f s, at least %.3f s",
                      (double)clip.count / decode.sample_rate,
                      (double)minimum / decode.sample_rate);
        goto done;
    }
    rc = ear_nn_embed_audio(w->session, clip.samples, clip.count, out, &err);
done:
    if (rc != 0)
        report(job, file ? file : rel, err.message);
    ear_audio_clip_free(&clip);
    free(data);
    free(file);
    return rc;
}

static void *worker_main(void *arg)
{
    build_worker *w = arg;
    build_job *job = w->job;
    size_t dim = (size_t)job->config->embed_dim;
    for (;;) {
        pthread_mutex_lock(&job->lock);
        size_t i = job->next < job->count ? job->next++ : job->count;
        pthread_mutex_unlock(&job->lock);
        if (i == job->count)
            break;
        build_item *item = &job->items[i];
        float *out = job->embeddings + i * dim;
        if (item->kind == EAR_INDEX_IMAGE && job->config->has_image)
            item->embedded = embed_frame(w, item->path, out) == 0;
        else if (item->kind == EAR_INDEX_AUDIO && job->config->has_audio)
            item->embedded = embed_sound(w, item->path, out) == 0;
        pthread_mutex_lock(&job->lock);
        job->done++;
        pthread_mutex_unlock(&job->lock);
    }
    pthread_mutex_lock(&job->lock);
    job->running--;
    pthread_cond_signal(&job->changed);
    pthread_mutex_unlock(&job->lock);
    return NULL;
}

static double elapsed_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/* Runs the workers and reports progress until all are done. */
static int run_workers(build_job *job, int jobs, const struct timespec *start, ear_error *err)
{
    build_worker *workers = calloc((size_t)jobs, sizeof *workers);
    if (!workers)
        return ear_error_set(err, "out of memory");
    int rc = -1;
    for (int i = 0; i < jobs; i++) {
        workers[i].job = job;
        workers[i].session = ear_nn_session_create(job->model, err);
        if (!workers[i].session)
            goto done;
    }
    for (int i = 0; i < jobs; i++) {
        pthread_mutex_lock(&job->lock);
        job->running++;
        pthread_mutex_unlock(&job->lock);
        int e = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
        if (e != 0) {
            pthread_mutex_lock(&job->lock);
            job->running--;
            job->next = job->count; /* the started ones stop after their item */
            pthread_mutex_unlock(&job->lock);
            ear_error_set(err, "cannot start a worker thread: %s", strerror(e));
            break;
        }
        workers[i].started = 1;
    }
    pthread_mutex_lock(&job->lock);
    while (job->running > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        /* Woken only when a worker ends: a timeout is the next progress tick. */
        int e = pthread_cond_timedwait(&job->changed, &job->lock, &until);
        if (e == ETIMEDOUT && job->running > 0 && job->options->progress)
            job->options->progress(job->options->user, job->done, job->count,
                                   elapsed_since(start));
    }
    int all_started = job->next == job->count && job->done == job->count;
    if (job->options->progress)
        job->options->progress(job->options->user, job->done, job->count, elapsed_since(start));
    pthread_mutex_unlock(&job->lock);
    rc = all_started ? 0 : -1;
done:
    for (int i = 0; i < jobs; i++) {
        if (workers[i].started)
            pthread_join(workers[i].thread, NULL);
        ear_nn_session_free(workers[i].session);
    }
    free(workers);
    return rc;
}

void ear_query_build_options_default(ear_query_build_options *o)
{
    memset(o, 0, sizeof *o);
    o->jobs = 1;
    o->dtype = EAR_INDEX_F32;
    o->max_seconds = 60;
}

/* One problem line for a kind the model cannot embed, instead of one per file. */
static void report_missing_tower(build_job *job, ear_index_kind kind, const char *tower)
{
    size_t n = 0;
    for (size_t i = 0; i < job->count; i++)
        n += job->items[i].kind == kind;
    if (n == 0)
        return;
    char *folder = path_join(job->data_dir, kind == EAR_INDEX_IMAGE ? "frames" : "audio");
    char reason[160];
    snprintf(reason, sizeof reason, "the model has no %s tower: %zu file%s left out", tower, n,
             n == 1 ? "" : "s");
    report(job, folder ? folder : job->data_dir, reason);
    free(folder);
}

int ear_query_build_index(const ear_nn_model *model, const char *data_dir, const char *path,
                          const ear_query_build_options *o, ear_query_build_summary *summary,
                          ear_error *err)
{
    build_job job = {.model = model, .config = ear_nn_model_config(model), .data_dir = data_dir,
                     .options = o};
    label_table labels = {0};
    ear_index_entry *entries = NULL;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    memset(summary, 0, sizeof *summary);
    pthread_mutex_init(&job.lock, NULL);
    pthread_cond_init(&job.changed, NULL);
    int rc = -1;
    size_t dim = (size_t)job.config->embed_dim;

    struct stat st;
    if (stat(data_dir, &st) != 0) {
        ear_error_set(err, "%s: %s", data_dir, strerror(errno));
        goto done;
    }
    if (!S_ISDIR(st.st_mode)) {
        ear_error_set(err, "%s: not a folder", data_dir);
        goto done;
    }
    if (read_labels(data_dir, &labels, err) != 0 ||
        walk(&job, "frames", EAR_INDEX_IMAGE, NULL, &labels, 0, err) != 0 ||
        walk(&job, "audio", EAR_INDEX_AUDIO, NULL, &labels, 0, err) != 0)
        goto done;
    if (job.count == 0) {
        ear_error_set(err, "%s: no files in %s/frames or %s/audio", data_dir, data_dir, data_dir);
        goto done;
    }
    /* The same order whatever readdir's: reports and progress repeat run to run. */
    qsort(job.items, job.count, sizeof *job.items, item_order);
    if (!job.config->has_image)
        report_missing_tower(&job, EAR_INDEX_IMAGE, "image");
    if (!job.config->has_audio)
        report_missing_tower(&job, EAR_INDEX_AUDIO, "audio");
    job.embeddings = malloc(job.count * dim * sizeof(float));
    if (!job.embeddings) {
        ear_error_set(err, "out of memory (%zu embeddings)", job.count);
        goto done;
    }
    int jobs = o->jobs < 1 ? 1 : o->jobs;
    if ((size_t)jobs > job.count)
        jobs = (int)job.count;
    ear_nn_set_threads(1); /* the pool is the parallelism: one BLAS thread per worker */
    if (run_workers(&job, jobs, &start, err) != 0)
        goto done;

    entries = calloc(job.count, sizeof *entries);
    if (!entries) {
        ear_error_set(err, "out of memory");
        goto done;
    }
    size_t n = 0;
    for (size_t i = 0; i < job.count; i++) {
        const build_item *item = &job.items[i];
        if (!item->embedded) {
            summary->skipped++;
            continue;
        }
        entries[n++] = (ear_index_entry){.kind = item->kind, .path = item->path,
                                         .label = item->label,
                                         .embedding = job.embeddings + i * dim};
        summary->images += item->kind == EAR_INDEX_IMAGE;
        summary->sounds += item->kind == EAR_INDEX_AUDIO;
    }
    summary->items = n;
    summary->problems = job.problems;
    if (n == 0) {
        ear_error_set(err, "%s: nothing could be indexed (%zu files, none embedded)%s", data_dir,
                      job.count,
                      !job.config->has_image && !job.config->has_audio ? ": the model has no tower"
                                                                      : "");
        goto done;
    }
    ear_index_remove_stale_temporaries(path);
    if (ear_index_write(path, ear_nn_model_fingerprint(model), (int)dim, o->dtype, entries, n,
                        err) != 0)
        goto done;
    rc = 0;
done:
    summary->elapsed_ms = elapsed_since(&start);
    free(entries);
    free(job.embeddings);
    for (size_t i = 0; i < job.count; i++) {
        free(job.items[i].path);
        free(job.items[i].label);
    }
    free(job.items);
    free_labels(&labels);
    pthread_cond_destroy(&job.changed);
    pthread_mutex_destroy(&job.lock);
    return rc;
}
