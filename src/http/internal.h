/* What the files of the HTTP module share with each other (and with its tests);
 * not part of the module's interface. */
#ifndef EAR_HTTP_INTERNAL_H
#define EAR_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "http/http.h"
#include "index/index.h"
#include "query/query.h"
#include "sandbox/sandbox.h"

/* The routes, as counted by the metrics. */
typedef enum {
    EAR_HTTP_ROUTE_PAGE,    /* / and /index.html */
    EAR_HTTP_ROUTE_WEB,     /* the page's other files */
    EAR_HTTP_ROUTE_SEARCH,  /* /api/search */
    EAR_HTTP_ROUTE_FRAMES,  /* /data/frames/<path> */
    EAR_HTTP_ROUTE_AUDIO,   /* /data/audio/<path> */
    EAR_HTTP_ROUTE_DATA,    /* /data/<any other path> */
    EAR_HTTP_ROUTE_HEALTHZ,
    EAR_HTTP_ROUTE_METRICS,
    EAR_HTTP_ROUTE_REDIRECT, /* /ear to /ear/ */
    EAR_HTTP_ROUTE_EXAMPLES, /* /api/examples */
    EAR_HTTP_ROUTE_CONFIG,   /* /api/config */
    EAR_HTTP_ROUTE_QUERY,    /* /query, the original service's search */
    EAR_HTTP_ROUTE_UNKNOWN,
    EAR_HTTP_ROUTE_COUNT
} ear_http_route;

/* The route's label in the metrics. */
const char *ear_http_route_name(ear_http_route route);

/* ---- the web page's files, embedded at build time (embed_web.cmake) ---- */

typedef struct ear_http_asset {
    const char *path;          /* relative to web/, e.g. "index.html" */
    const unsigned char *data; /* NUL-terminated; size excludes the NUL */
    size_t size;
    const char *etag;          /* quoted, from the file's SHA-1 */
} ear_http_asset;

extern const ear_http_asset ear_http_assets[];
extern const size_t ear_http_asset_count;

/* The embedded file at that path (relative to web/), or NULL. */
const ear_http_asset *ear_http_asset_find(const char *path);

/* The Content-Type for a file name, by its extension (case-insensitive);
 * application/octet-stream when unknown. */
const char *ear_http_content_type(const char *name);

/* ---- request details ---- */

/* Percent-decodes text in place, except %00, which stays as it is so that a
 * NUL can never cut a path short; returns the new length. */
size_t ear_http_unescape(char *text);

/* Whether an incoming X-Request-Id may be echoed: 1 to 64 of [A-Za-z0-9._:-]. */
int ear_http_request_id_is_sane(const char *id);

/* Writes 16 random lowercase hex digits and a NUL into out[17]. */
void ear_http_request_id_generate(char out[17]);

/* Whether a dataset file name may be served: not empty, no "..", "/", "\",
 * control byte, leading dot, nor a percent-encoding of any of those. */
int ear_http_file_name_is_safe(const char *name);

typedef enum {
    EAR_HTTP_RANGE_NONE,          /* no usable Range: answer the whole file */
    EAR_HTTP_RANGE_PARTIAL,       /* [first, last] */
    EAR_HTTP_RANGE_UNSATISFIABLE  /* 416 */
} ear_http_range_kind;

/* Reads a Range header (NULL: none) against a file of size bytes. One range of
 * bytes=a-b, a- or -n; anything else (several ranges, other units, bad
 * syntax) is ignored, as RFC 9110 allows. */
ear_http_range_kind ear_http_parse_range(const char *header, uint64_t size, uint64_t *first,
                                         uint64_t *last);

/* Whether an If-None-Match list (a, b, W/"c" or *) holds etag (weak comparison). */
int ear_http_etag_matches(const char *if_none_match, const char *etag);

/* A quoted ETag from a file's size and modification time, into out (>= 48 bytes). */
void ear_http_file_etag(char *out, size_t out_size, uint64_t bytes, const struct timespec *mtime);

/* An HTTP date (IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT") into out (>= 32 bytes). */
void ear_http_format_date(char *out, size_t out_size, time_t when);

/* Reads an IMF-fixdate; -1 when it is not one. */
int ear_http_parse_date(const char *text, time_t *when);

/* Hits a worker keeps: enough for ?k= and for the original's walk of the best 100. */
#define EAR_HTTP_HITS (EAR_QUERY_ORIGINAL_TOP > EAR_QUERY_MAX_K ? EAR_QUERY_ORIGINAL_TOP \
                                                                : EAR_QUERY_MAX_K)

/* Reads ?k= (NULL: the default, 8); -1 unless a whole number from 1 to EAR_QUERY_MAX_K. */
int ear_http_parse_k(const char *text, int *k);

/* The answer of GET /api/examples: up to n items that have a sound, spread
 * evenly over the index, {"examples":[{"id","label","audio_url","frame_url"}]};
 * malloc'd, NULL when out of memory. */
char *ear_http_examples_json(const ear_index *idx, int n);

/* ---- metrics ---- */

#define EAR_HTTP_LATENCY_BUCKETS 14

typedef struct ear_http_metrics {
    pthread_mutex_t lock;
    /* [route][status - 100]; status 0 (no answer: the client went away) is aborted. */
    uint64_t requests[EAR_HTTP_ROUTE_COUNT][500];
    uint64_t aborted[EAR_HTTP_ROUTE_COUNT];
    uint64_t latency_buckets[EAR_HTTP_ROUTE_COUNT][EAR_HTTP_LATENCY_BUCKETS];
    uint64_t latency_count[EAR_HTTP_ROUTE_COUNT];
    double latency_sum_s[EAR_HTTP_ROUTE_COUNT];
} ear_http_metrics;

/* What the metrics page shows besides the counters. */
typedef struct ear_http_gauges {
    size_t queue_depth;     /* searches waiting for a worker */
    size_t running;         /* searches being run */
    int workers;
    size_t queue_capacity;
    size_t index_items;
    long long resident_bytes; /* -1: unknown */
    size_t body_memory, body_memory_limit; /* bodies in flight; 0 limit: not shown */
    uint64_t sandbox_started; /* decoding helpers started; 0: no sandbox, not shown */
} ear_http_gauges;

int ear_http_metrics_init(ear_http_metrics *m, ear_error *err);
void ear_http_metrics_destroy(ear_http_metrics *m);

/* Counts one answered request (status 0: none was sent) and its duration. */
void ear_http_metrics_record(ear_http_metrics *m, ear_http_route route, unsigned status,
                             double seconds);

/* The Prometheus text exposition of the counters and gauges; malloc'd,
 * NUL-terminated, NULL when out of memory. */
char *ear_http_metrics_text(ear_http_metrics *m, const ear_http_gauges *g, size_t *length);

/* This process's resident memory in bytes, from /proc/self/statm; -1 if unknown. */
long long ear_http_resident_bytes(void);

/* ---- responses ---- */

/* GET /api/config's answer, {"home_url":"..."}; malloc'd, NULL when out of memory. */
char *ear_http_config_json(const char *home_url);

/* The error body of the spec, {"error":{"code":..,"message":..}}; malloc'd, NULL when out of memory. */
char *ear_http_error_body(const char *code, const char *message);

/* A response holding a copy of body (NULL when out of memory). */
struct MHD_Response *ear_http_text_response(const char *body, size_t length,
                                            const char *content_type);

/* A JSON error response for the spec's code, its body's size in *bytes (when
 * not NULL); NULL when out of memory. */
struct MHD_Response *ear_http_error_response(const char *code, const char *message,
                                             uint64_t *bytes);

/* ---- the index, shared by the workers and swapped on reload ---- */

typedef struct ear_http_index_ref {
    ear_index *index;
    int references; /* guarded by the server's index_lock */
} ear_http_index_ref;

/* ---- the search workers ---- */

/* One search handed to a worker. The request it belongs to stays alive (its
 * connection suspended) until the worker resumes the connection. */
typedef struct ear_http_job {
    struct MHD_Connection *connection;
    const uint8_t *upload;
    size_t upload_size;
    const char *name;       /* the upload's file name (its extension is enough), or NULL */
    const char *received;   /* what the client sent, for error messages */
    int client_fd;          /* its socket: a hang-up cancels the decode */
    int client_left;        /* set by the worker: the client went away; no answer */
    int k;
    unsigned kinds;         /* EAR_INDEX_MASK of the kinds searched */
    int original;           /* POST /query: the original service's answer and errors */
    int each_kind;          /* the best k of each kind (--fill-columns), not of all */
    /* the answer, filled by the worker */
    unsigned status;
    struct MHD_Response *response;
    uint64_t response_bytes;
} ear_http_job;

typedef struct ear_http_pool ear_http_pool;

/* Creates the sessions and starts the threads; NULL with err filled. */
ear_http_pool *ear_http_pool_start(ear_http_server *server, const ear_nn_model *model,
                                   int workers, int queue_capacity, ear_error *err);

/* Hands a job to the workers and suspends its connection; -1 (nothing done)
 * when the queue is full or the pool is stopping. */
int ear_http_pool_submit(ear_http_pool *pool, ear_http_job *job);

/* Searches waiting and running. */
void ear_http_pool_load(ear_http_pool *pool, size_t *waiting, size_t *running);

/* Stops the threads: jobs still waiting are answered 503; running ones finish. */
void ear_http_pool_stop(ear_http_pool *pool);

/* Stops (if needed) and frees the pool (NULL is fine). */
void ear_http_pool_free(ear_http_pool *pool);

/* ---- the server ---- */

struct ear_http_server {
    ear_http_options options;   /* the strings below are copies */
    char *index_path;
    char *data_dir;
    char *config_json;          /* GET /api/config's answer, made once */
    const ear_nn_model *model;
    char url[128];
    int port;

    struct MHD_Daemon *daemon;
    int listen_fd;              /* ours until the daemon starts; closed after quiesce */
    int data_dir_fd;            /* the dataset's root folder */

    pthread_mutex_t index_lock;
    ear_http_index_ref *index;

    ear_http_pool *pool;
    ear_sandbox_pool *sandbox;  /* NULL with --no-sandbox */
    ear_http_metrics metrics;

    pthread_mutex_t lock;       /* guards what follows */
    pthread_cond_t idle;        /* signalled when active_requests drops */
    size_t active_requests;     /* requests begun and not yet completed */
    size_t body_memory;         /* bytes held by request bodies in flight */
    int shutting_down;
    int stopped;
};

/* Opens, verifies and wraps the server's index file, holding one reference. */
ear_http_index_ref *ear_http_index_open(ear_http_server *server, ear_error *err);

/* A reference to the current index; release it when done. */
ear_http_index_ref *ear_http_index_acquire(ear_http_server *server);
void ear_http_index_release(ear_http_server *server, ear_http_index_ref *ref);

/* The search itself, run by a worker with its session and hits[EAR_HTTP_HITS]: fills the
 * job's status and response (never NULL on return unless out of memory). */
void ear_http_run_search(ear_http_server *server, ear_nn_session *session, ear_index_hit *hits,
                         ear_http_job *job);

/* Opens path (segments joined by '/', each one safe by ear_http_file_name_is_safe,
 * no symbolic link followed) under the folder root_fd for reading; -1 when it cannot. */
int ear_http_open_data_path(int root_fd, const char *path);

/* The dataset file response for GET/HEAD of a path under the folder dir_fd, honouring
 * If-None-Match, If-Modified-Since and Range; NULL (404) when it cannot be served. */
struct MHD_Response *ear_http_file_response(struct MHD_Connection *connection, int dir_fd,
                                            const char *name, unsigned *status,
                                            uint64_t *bytes);

#endif
