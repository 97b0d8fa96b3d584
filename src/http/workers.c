/* The search workers: a fixed number of threads, each with its own inference
 * session (the arena sized at load) and hit buffer, taking jobs from a
 * bounded ring. The event loop only suspends a connection and queues its job;
 * the worker resumes the connection when the answer is ready. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

typedef struct ear_http_worker {
    ear_http_pool *pool;
    ear_nn_session *session;
    ear_index_hit hits[EAR_HTTP_HITS];
    pthread_t thread;
    int started;
} ear_http_worker;

struct ear_http_pool {
    ear_http_server *server;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    ear_http_job **ring;   /* capacity slots, count from head */
    size_t capacity, head, count, running;
    int stopping;
    ear_http_worker *workers;
    int worker_count;
};

static const char *search_error_code(ear_query_status status, unsigned *http_status)
{
    switch (status) {
    case EAR_QUERY_UNDECODABLE:
        *http_status = MHD_HTTP_BAD_REQUEST;
        return "undecodable_audio";
    case EAR_QUERY_BAD_IMAGE:
        *http_status = MHD_HTTP_BAD_REQUEST;
        return "undecodable_image";
    case EAR_QUERY_TOO_SHORT:
        *http_status = MHD_HTTP_UNPROCESSABLE_CONTENT;
        return "audio_too_short";
    case EAR_QUERY_BAD_REQUEST:
        *http_status = MHD_HTTP_BAD_REQUEST;
        return "bad_request";
    case EAR_QUERY_CANCELLED: /* nobody reads it: the connection is closed instead */
        *http_status = MHD_HTTP_BAD_REQUEST;
        return "client_left";
    default:
        *http_status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        return "internal";
    }
}

/* The original's status and message for a failed /query (original.md, HTTP):
 * an upload that is neither a readable image nor a sound is "Unsupported file
 * type" unless its name says sound, when the original's ffmpeg would have
 * failed; an unreadable image was its PIL exception, a 500 with the text. */
static const char *original_error(ear_query_status status, const ear_http_job *job,
                                  const char *message, unsigned *http_status)
{
    *http_status = MHD_HTTP_BAD_REQUEST;
    switch (status) {
    case EAR_QUERY_UNDECODABLE:
        return ear_query_name_kind(job->name) == EAR_INDEX_AUDIO
                   ? "Audio conversion failed (FFmpeg error)"
                   : "Unsupported file type";
    case EAR_QUERY_TOO_SHORT:
    case EAR_QUERY_BAD_REQUEST:
        return message;
    default:
        *http_status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        return message;
    }
}

/* The service's sandbox behind src/query's decoder hooks, for one job. */
typedef struct sandboxed {
    ear_sandbox_pool *pool;
    ear_sandbox_cancel cancel; /* the job's client hanging up */
} sandboxed;

/* A sandbox result as a hook's: a helper killed at its deadline, crashed or
 * lying was undone by the upload, so it is refused as the bytes were. */
static int from_sandbox(int rc)
{
    switch (rc) {
    case 0: return 0;
    case EAR_SANDBOX_CANCELLED: return EAR_QUERY_DECODE_CANCELLED;
    case EAR_SANDBOX_FAILED: return EAR_QUERY_DECODE_FAILED;
    default: return EAR_QUERY_DECODE_REFUSED; /* EAR_SANDBOX_REFUSED, EAR_SANDBOX_KILLED */
    }
}

static int sandboxed_audio(void *user, const uint8_t *data, size_t size,
                           const ear_audio_decode_options *o, ear_audio_clip *out, ear_error *err)
{
    sandboxed *box = user;
    return from_sandbox(ear_sandbox_decode_audio(box->pool, data, size, o, &box->cancel, out, err));
}

static int sandboxed_image(void *user, const uint8_t *data, size_t size, ear_image *out,
                           ear_error *err)
{
    sandboxed *box = user;
    return from_sandbox(ear_sandbox_decode_image(box->pool, data, size, &box->cancel, out, err));
}

static struct MHD_Response *json_response(char *json, uint64_t *bytes)
{
    if (!json)
        return NULL;
    *bytes = strlen(json);
    struct MHD_Response *response =
        MHD_create_response_from_buffer(*bytes, json, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free(json);
        return NULL;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return response;
}

void ear_http_run_search(ear_http_server *server, ear_nn_session *session, ear_index_hit *hits,
                         ear_http_job *job)
{
    ear_error err = {{0}};
    ear_http_index_ref *ref = ear_http_index_acquire(server);
    sandboxed box = {server->sandbox, {.flag = NULL, .client_fd = job->client_fd}};
    const ear_query_decoders decoders = {sandboxed_audio, sandboxed_image, &box};
    ear_query_request request = {
        .model = server->model,
        .upload = {.data = job->upload, .size = job->upload_size, .name = job->name,
                   .kind = -1, .max_seconds = server->options.max_seconds,
                   .decoders = server->sandbox ? &decoders : NULL},
        .kinds = job->kinds,
        .k = job->k,
        .each_kind = job->each_kind,
    };
    ear_query_result result = {.hits = hits};
    ear_query_status status = ear_query_run(session, ref->index, &request, &result, &err);
    job->response = NULL;
    if (status == EAR_QUERY_OK) {
        char *json = job->original ? ear_query_original_json(ref->index, result.query.kind, hits,
                                                             result.found)
                                   : ear_query_search_json(ref->index, &result);
        job->response = json_response(json, &job->response_bytes);
        job->status = MHD_HTTP_OK;
        if (!job->response) {
            status = EAR_QUERY_INTERNAL;
            ear_error_set(&err, "out of memory while writing the answer");
        }
    }
    ear_http_index_release(server, ref);
    if (status == EAR_QUERY_OK)
        return;
    /* Nobody reads an answer now: the connection is closed instead (on_completed logs it). */
    job->client_left = status == EAR_QUERY_CANCELLED;
    if (status == EAR_QUERY_INTERNAL)
        fprintf(stderr, "ear serve: search failed: %s\n", err.message);
    if (job->original) {
        const char *message = original_error(status, job, err.message, &job->status);
        job->response = json_response(ear_query_original_error_json(message),
                                      &job->response_bytes);
        return;
    }
    char message[EAR_ERROR_SIZE + 160];
    const char *code = search_error_code(status, &job->status);
    if (status == EAR_QUERY_UNDECODABLE)
        snprintf(message, sizeof message,
                 "received %s, which is neither an image (JPEG, PNG) nor audio that can be "
                 "decoded: %s",
                 job->received, err.message);
    else
        snprintf(message, sizeof message, "%s", err.message);
    job->response = ear_http_error_response(code, message, &job->response_bytes);
}

/* Answers a job that will not be run because the service is stopping. */
static void refuse_job(ear_http_job *job)
{
    job->status = MHD_HTTP_SERVICE_UNAVAILABLE;
    job->response =
        ear_http_error_response("busy", "the service is shutting down", &job->response_bytes);
    if (job->response)
        MHD_add_response_header(job->response, MHD_HTTP_HEADER_RETRY_AFTER, "1");
}

static void *worker_main(void *arg)
{
    ear_http_worker *worker = arg;
    ear_http_pool *pool = worker->pool;
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        while (pool->count == 0 && !pool->stopping)
            pthread_cond_wait(&pool->wake, &pool->lock);
        if (pool->count == 0) {
            pthread_mutex_unlock(&pool->lock);
            break;
        }
        ear_http_job *job = pool->ring[pool->head];
        pool->head = (pool->head + 1) % pool->capacity;
        pool->count--;
        pool->running++;
        int stopping = pool->stopping;
        pthread_mutex_unlock(&pool->lock);

        if (stopping)
            refuse_job(job);
        else
            ear_http_run_search(pool->server, worker->session, worker->hits, job);
        /* The last touch of the job: once resumed, the event loop may answer
         * and free the request that holds it. */
        MHD_resume_connection(job->connection);

        pthread_mutex_lock(&pool->lock);
        pool->running--;
        pthread_mutex_unlock(&pool->lock);
    }
    return NULL;
}

ear_http_pool *ear_http_pool_start(ear_http_server *server, const ear_nn_model *model,
                                   int workers, int queue_capacity, ear_error *err)
{
    if (workers < 1 || queue_capacity < 1) {
        ear_error_set(err, "workers and queue must be at least 1 (got %d and %d)", workers,
                      queue_capacity);
        return NULL;
    }
    ear_http_pool *pool = calloc(1, sizeof *pool);
    if (!pool) {
        ear_error_set(err, "out of memory");
        return NULL;
    }
    pool->server = server;
    pool->capacity = (size_t)queue_capacity;
    if (pthread_mutex_init(&pool->lock, NULL) != 0) {
        free(pool);
        ear_error_set(err, "cannot create the workers' lock");
        return NULL;
    }
    if (pthread_cond_init(&pool->wake, NULL) != 0) {
        pthread_mutex_destroy(&pool->lock);
        free(pool);
        ear_error_set(err, "cannot create the workers' condition variable");
        return NULL;
    }
    /* From here ear_http_pool_free undoes whatever was done. */
    pool->ring = calloc(pool->capacity, sizeof *pool->ring);
    pool->workers = calloc((size_t)workers, sizeof *pool->workers);
    if (!pool->ring || !pool->workers) {
        ear_error_set(err, "out of memory");
        goto fail;
    }
    pool->worker_count = workers;
    for (int i = 0; i < workers; i++) {
        pool->workers[i].pool = pool;
        pool->workers[i].session = ear_nn_session_create(model, err);
        if (!pool->workers[i].session)
            goto fail;
    }
    for (int i = 0; i < workers; i++) {
        int e = pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]);
        if (e != 0) {
            ear_error_set(err, "cannot start worker thread %d: %s", i + 1, strerror(e));
            goto fail;
        }
        pool->workers[i].started = 1;
    }
    return pool;
fail:
    ear_http_pool_free(pool);
    return NULL;
}

int ear_http_pool_submit(ear_http_pool *pool, ear_http_job *job)
{
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping || pool->count == pool->capacity) {
        pthread_mutex_unlock(&pool->lock);
        return -1;
    }
    /* Suspended before it is queued, so that no worker can resume it first. */
    MHD_suspend_connection(job->connection);
    pool->ring[(pool->head + pool->count) % pool->capacity] = job;
    pool->count++;
    pthread_cond_signal(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

void ear_http_pool_load(ear_http_pool *pool, size_t *waiting, size_t *running)
{
    pthread_mutex_lock(&pool->lock);
    *waiting = pool->count;
    *running = pool->running;
    pthread_mutex_unlock(&pool->lock);
}

void ear_http_pool_stop(ear_http_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->worker_count; i++)
        if (pool->workers[i].started) {
            pthread_join(pool->workers[i].thread, NULL);
            pool->workers[i].started = 0;
        }
}

void ear_http_pool_free(ear_http_pool *pool)
{
    if (!pool)
        return;
    if (pool->workers) {
        ear_http_pool_stop(pool);
        for (int i = 0; i < pool->worker_count; i++)
            ear_nn_session_free(pool->workers[i].session);
    }
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool->ring);
    free(pool->workers);
    free(pool);
}
