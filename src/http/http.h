/* The HTTP service (`ear serve`, ../shared/spec/interfaces.md): libmicrohttpd's
 * own event loop answers every route; searches run on a fixed pool of worker
 * threads, each with its own inference session, fed by a bounded queue, while
 * their connections stay suspended so that the event loop never waits. */
#ifndef EAR_HTTP_H
#define EAR_HTTP_H

#include <stddef.h>

#include "core/core.h"
#include "nn/nn.h"

typedef struct ear_http_options {
    const char *host;           /* numeric address or name to bind */
    int port;                   /* 0: any free port (see ear_http_server_port) */
    int workers;                /* search threads, each with its own session */
    int queue;                  /* searches that may wait for a worker; more get 503 */
    size_t max_upload;          /* largest request body, in bytes; more get 413 */
    double max_seconds;         /* decoded audio is cut there */
    int idle_timeout_s;         /* an idle connection is closed after this */
    int body_timeout_s;         /* a body not received in full this long after its request
                                   began answers 408 (a trickle defeats the idle timeout) */
    int max_connections;        /* open connections at most */
    const char *index_path;     /* the index, opened (and reopened) with the model's fingerprint */
    const char *data_dir;       /* the dataset: frames/ and audio/ are served from there */
    const char *home_url;       /* the page's link back to the main site (GET /api/config) */
    int no_sandbox;             /* 1: decode uploads in-process (debugging only) */
    double decode_timeout_s;    /* a sandboxed decode's wall-clock deadline */
    size_t max_body_memory;     /* bodies in flight together at most; past it 503 (0: 4 x max_upload) */
    int fill_columns;           /* 1: POST /query's columns are the best 5 of each kind, not
                                   those among the best 100 of all (the original's walk) */
} ear_http_options;

typedef struct ear_http_server ear_http_server;

/* Fills o with the defaults: 127.0.0.1:5001, 1 worker, queue 16, 50 MiB, 60 s,
 * 30 s idle, 1000 connections; no index or data folder. */
void ear_http_options_default(ear_http_options *o);

/* Opens the index, creates the workers' sessions and starts answering; the
 * model must outlive the server. NULL with err filled when anything fails. */
ear_http_server *ear_http_server_start(const ear_nn_model *model, const ear_http_options *o,
                                       ear_error *err);

/* The port the server listens on (the one picked when asked for port 0). */
int ear_http_server_port(const ear_http_server *server);

/* The URL it listens on, "http://HOST:PORT" (valid while the server lives). */
const char *ear_http_server_url(const ear_http_server *server);

/* Opens the index file again and swaps it in; searches already running finish
 * on the old one. On failure the old index stays and err says why. */
int ear_http_server_reload_index(ear_http_server *server, ear_error *err);

/* Stops accepting connections, waits up to drain_ms for the requests in
 * flight to be answered, then stops the event loop and the workers. */
void ear_http_server_shutdown(ear_http_server *server, double drain_ms);

/* Shuts down (if not done yet, without waiting) and frees (NULL is fine). */
void ear_http_server_free(ear_http_server *server);

#endif
