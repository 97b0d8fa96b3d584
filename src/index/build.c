/* Building an index from a dataset folder: list and pair the files, embed
 * them on a pool of threads (one inference session each), write the file.
 * A file that cannot be read costs only its own embedding: the item stays
 * when its other half is fine, so one broken frame does not hide a sound. */
#include "index/index.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "audio/audio.h"

/* Frames and sounds larger than this are refused rather than read. */
#define MAX_FILE_BYTES ((size_t)256 << 20)

typedef struct dataset_file {
    char *name; /* file name inside frames/ or audio/ */
    char *id;   /* the name without its last extension */
} dataset_file;

typedef struct file_list {
    dataset_file *files;
    size_t count;
} file_list;

typedef struct build_item {
    const char *id;
    const char *label;
    const char *frame;  /* file name, NULL when none or unreadable */
    const char *audio;
    int has_frame_embedding, has_audio_embedding;
} build_item;

typedef struct build_job {
    const ear_nn_model *model;
    const ear_nn_config *config;
    const char *data_dir;
    const ear_index_build_options *options;
    build_item *items;
    size_t count;
    float *frame_embeddings; /* [count][dim], rows of items without one unused */
    float *audio_embeddings;

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

static void free_file_list(file_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->files[i].name);
        free(list->files[i].id);
    }
    free(list->files);
    list->files = NULL;
    list->count = 0;
}

static int file_order(const void *a, const void *b)
{
    const dataset_file *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : strcmp(x->name, y->name);
}

static void report(build_job *job, const char *file, const char *reason)
{
    pthread_mutex_lock(&job->lock);
    job->problems++;
    if (job->options->problem)
        job->options->problem(job->options->user, file, reason);
    pthread_mutex_unlock(&job->lock);
}

/* The regular files of data_dir/sub sorted by id, then name; hidden files are
 * left out, and a second file with an id already taken is reported. A missing
 * folder is an empty list. */
static int list_folder(build_job *job, const char *sub, file_list *list, ear_error *err)
{
    memset(list, 0, sizeof *list);
    char *dir = path_join(job->data_dir, sub);
    if (!dir)
        return ear_error_set(err, "out of memory");
    DIR *d = opendir(dir);
    if (!d) {
        int rc = errno == ENOENT ? 0 : ear_error_set(err, "%s: %s", dir, strerror(errno));
        free(dir);
        return rc;
    }
    size_t capacity = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        struct stat st;
        char *path = path_join(dir, entry->d_name);
        if (!path)
            goto out_of_memory;
        int regular = stat(path, &st) == 0 && S_ISREG(st.st_mode);
        free(path);
        if (!regular)
            continue;
        if (list->count == capacity) {
            size_t grown = capacity ? capacity * 2 : 64;
            dataset_file *files = realloc(list->files, grown * sizeof *files);
            if (!files)
                goto out_of_memory;
            list->files = files;
            capacity = grown;
        }
        dataset_file *f = &list->files[list->count];
        f->name = strdup(entry->d_name);
        const char *dot = strrchr(entry->d_name, '.');
        f->id = f->name ? strndup(entry->d_name, dot ? (size_t)(dot - entry->d_name)
                                                     : strlen(entry->d_name))
                        : NULL;
        if (!f->name || !f->id) {
            free(f->name);
            free(f->id);
            goto out_of_memory;
        }
        list->count++;
    }
    closedir(d);
    qsort(list->files, list->count, sizeof *list->files, file_order);
    size_t kept = 0;
    for (size_t i = 0; i < list->count; i++) {
        if (kept > 0 && strcmp(list->files[kept - 1].id, list->files[i].id) == 0) {
            char *reason = NULL, *path = path_join(dir, list->files[i].name);
            if (asprintf(&reason, "same id as %s", list->files[kept - 1].name) < 0)
                reason = NULL;
            report(job, path ? path : list->files[i].name, reason ? reason : "same id");
            free(reason);
            free(path);
            free(list->files[i].name);
            free(list->files[i].id);
            continue;
        }
        list->files[kept++] = list->files[i];
    }
    list->count = kept;
    free(dir);
    return 0;
out_of_memory:
    closedir(d);
    free_file_list(list);
    ear_error_set(err, "%s: out of memory", dir);
    free(dir);
    return -1;
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

/* Reads data_dir/folder/name whole: the bytes, and the path in *file (for reports; NULL
 * when out of memory). Returns NULL with err filled when it cannot. */
static uint8_t *read_dataset_file(const build_job *job, const char *folder, const char *name,
                                  char **file, size_t *size, ear_error *err)
{
    char *path = path_join(job->data_dir, folder);
    *file = path ? path_join(path, name) : NULL;
    free(path);
    if (!*file) {
        ear_error_set(err, "out of memory");
        return NULL;
    }
    return ear_file_read(*file, MAX_FILE_BYTES, size, err);
}

/* Embeds one frame into out; reports and returns -1 when it cannot. */
static int embed_frame(build_worker *w, const char *name, float *out)
{
    build_job *job = w->job;
    ear_error err;
    ear_image img = {0};
    char *file = NULL;
    size_t size;
    int rc = -1;
    uint8_t *data = read_dataset_file(job, "frames", name, &file, &size, &err);
    if (!data)
        goto done;
    if (ear_image_decode(data, size, &img, &err) != 0)
        goto done;
    rc = ear_nn_embed_image(w->session, &img, out, &err);
done:
    if (rc != 0)
        report(job, file ? file : name, err.message);
    ear_image_free(&img);
    free(data);
    free(file);
    return rc;
}

/* Embeds one sound into out; reports and returns -1 when it cannot. */
static int embed_sound(build_worker *w, const char *name, float *out)
{
    build_job *job = w->job;
    ear_error err;
    ear_audio_clip clip = {0};
    char *file = NULL;
    size_t size;
    int rc = -1;
    uint8_t *data = read_dataset_file(job, "audio", name, &file, &size, &err);
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
        report(job, file ? file : name, err.message);
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
        if (item->frame && job->frame_embeddings) {
            if (embed_frame(w, item->frame, job->frame_embeddings + i * dim) == 0)
                item->has_frame_embedding = 1;
            else
                item->frame = NULL;
        }
        if (item->audio && job->audio_embeddings) {
            if (embed_sound(w, item->audio, job->audio_embeddings + i * dim) == 0)
                item->has_audio_embedding = 1;
            else
                item->audio = NULL;
        }
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

/* Pairs the two sorted lists by id into job->items. */
static int pair_files(build_job *job, const file_list *frames, const file_list *sounds,
                      const label_table *labels, ear_error *err)
{
    job->items = calloc(frames->count + sounds->count + 1, sizeof *job->items);
    if (!job->items)
        return ear_error_set(err, "out of memory (%zu files)", frames->count + sounds->count);
    size_t f = 0, s = 0, n = 0;
    while (f < frames->count || s < sounds->count) {
        int c = f == frames->count   ? 1
                : s == sounds->count ? -1
                                     : strcmp(frames->files[f].id, sounds->files[s].id);
        build_item *item = &job->items[n++];
        if (c <= 0) {
            item->id = frames->files[f].id;
            item->frame = frames->files[f++].name;
        }
        if (c >= 0) {
            item->id = sounds->files[s].id;
            item->audio = sounds->files[s++].name;
        }
        const char *label = find_label(labels, item->id);
        item->label = label ? label : item->id;
    }
    job->count = n;
    return 0;
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

void ear_index_build_options_default(ear_index_build_options *o)
{
    memset(o, 0, sizeof *o);
    o->jobs = 1;
    o->dtype = EAR_INDEX_F32;
    o->max_seconds = 60;
}

int ear_index_build(const ear_nn_model *model, const char *data_dir, const char *path,
                    const ear_index_build_options *o, ear_index_build_summary *summary,
                    ear_error *err)
{
    build_job job = {.model = model, .config = ear_nn_model_config(model), .data_dir = data_dir,
                     .options = o};
    file_list frames = {0}, sounds = {0};
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
    if (list_folder(&job, "frames", &frames, err) != 0 ||
        list_folder(&job, "audio", &sounds, err) != 0 || read_labels(data_dir, &labels, err) != 0)
        goto done;
    if (frames.count + sounds.count == 0) {
        ear_error_set(err, "%s: no files in %s/frames or %s/audio", data_dir, data_dir, data_dir);
        goto done;
    }
    if (pair_files(&job, &frames, &sounds, &labels, err) != 0)
        goto done;
    if (job.config->has_image && frames.count > 0) {
        job.frame_embeddings = malloc(job.count * dim * sizeof(float));
        if (!job.frame_embeddings) {
            ear_error_set(err, "out of memory (%zu frame embeddings)", job.count);
            goto done;
        }
    }
    if (job.config->has_audio && sounds.count > 0) {
        job.audio_embeddings = malloc(job.count * dim * sizeof(float));
        if (!job.audio_embeddings) {
            ear_error_set(err, "out of memory (%zu sound embeddings)", job.count);
            goto done;
        }
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
        if (!item->has_frame_embedding && !item->has_audio_embedding) {
            summary->skipped++;
            continue;
        }
        ear_index_entry *e = &entries[n++];
        e->id = item->id;
        e->label = item->label;
        e->frame = item->frame;
        e->audio = item->audio;
        e->frame_embedding = item->has_frame_embedding ? job.frame_embeddings + i * dim : NULL;
        e->audio_embedding = item->has_audio_embedding ? job.audio_embeddings + i * dim : NULL;
        summary->frames += item->has_frame_embedding;
        summary->sounds += item->has_audio_embedding;
    }
    summary->items = n;
    summary->problems = job.problems;
    if (n == 0) {
        ear_error_set(err, "%s: nothing could be indexed (%zu items, none embedded)%s", data_dir,
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
    free(job.frame_embeddings);
    free(job.audio_embeddings);
    free(job.items);
    free_labels(&labels);
    free_file_list(&frames);
    free_file_list(&sounds);
    pthread_cond_destroy(&job.changed);
    pthread_mutex_destroy(&job.lock);
    return rc;
}
