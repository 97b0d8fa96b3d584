/* The service: libmicrohttpd's event loop (one thread, epoll) routes every
 * request, answers the cheap ones at once, gathers search bodies in memory up
 * to --max-upload and hands them to the workers with the connection suspended. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/internal.h"

/* Query parameters a request may carry: the routes use at most three. */
#define EAR_HTTP_MAX_PARAMETERS 64
/* The state of a request that on_uri answered: nothing more to do. */
static char refused_in_uri;

#define EAR_HTTP_CSP                                                                        \
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "              \
    "script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; "     \
    "base-uri 'none'; form-action 'self'"

/* Headers every answer carries, the request id aside. */
static const char *const common_headers[][2] = {
    {"Content-Security-Policy", EAR_HTTP_CSP},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
};

/* One request, from its headers to the end of its answer (MHD's *con_cls). */
typedef struct ear_http_request {
    ear_http_server *server;
    ear_http_route route;
    double start_ms;
    char id[65];
    char method[16];
    char path[256];      /* for the access log, control bytes replaced */
    unsigned status;     /* 0 until an answer is queued */
    uint64_t bytes;      /* of the answer's body */

    /* POST /api/search and POST /query */
    int k;
    int each_kind;       /* --fill-columns on POST /query */
    unsigned kinds;
    size_t received;     /* body bytes so far, whatever their encoding */
    uint8_t *body;       /* the upload: the raw body or the multipart field */
    size_t body_size, body_capacity;
    struct MHD_PostProcessor *form;
    int multipart, form_failed, field_seen, field_done, out_of_memory, over_budget;
    int has_file_name;   /* the field came with a non-empty file name */
    char part_type[96];  /* the field's Content-Type and file name, for messages */
    char part_name[96];
    char file_name[256]; /* the field's file name, its end kept when longer */
    char received_text[256];
    int submitted;
    int answered_in_body; /* refuse_during_body wrote the answer itself */
    int aborted;          /* the client left before its answer */
    ear_http_job job;
} ear_http_request;

static int server_shutting_down(ear_http_server *server)
{
    pthread_mutex_lock(&server->lock);
    int stopping = server->shutting_down;
    pthread_mutex_unlock(&server->lock);
    return stopping;
}

/* Queues the answer with the common headers; takes the response. A NULL
 * response (out of memory) becomes an empty 500. */
static enum MHD_Result respond(struct MHD_Connection *connection, ear_http_request *req,
                               unsigned status, struct MHD_Response *response, uint64_t bytes)
{
    if (!response) {
        response = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        bytes = 0;
        if (!response)
            return MHD_NO;
    }
    for (size_t i = 0; i < sizeof common_headers / sizeof common_headers[0]; i++)
        MHD_add_response_header(response, common_headers[i][0], common_headers[i][1]);
    MHD_add_response_header(response, "X-Request-Id", req->id);
    if (server_shutting_down(req->server))
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
    req->status = status;
    req->bytes = bytes;
    enum MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
}

__attribute__((format(printf, 5, 6))) static enum MHD_Result
respond_error(struct MHD_Connection *connection, ear_http_request *req, unsigned status,
              const char *code, const char *format, ...)
{
    char message[EAR_ERROR_SIZE];
    va_list ap;
    va_start(ap, format);
    vsnprintf(message, sizeof message, format, ap);
    va_end(ap);
    uint64_t bytes = 0;
    struct MHD_Response *response = ear_http_error_response(code, message, &bytes);
    if (response && status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    return respond(connection, req, status, response, bytes);
}

/* An error of POST /query as the original answered it, {"error": message};
 * NULL when out of memory. */
static struct MHD_Response *original_error_response(const char *message, uint64_t *bytes)
{
    char *body = ear_query_original_error_json(message);
    if (!body)
        return NULL;
    *bytes = strlen(body);
    struct MHD_Response *response =
        MHD_create_response_from_buffer((size_t)*bytes, body, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free(body);
        return NULL;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return response;
}

static enum MHD_Result respond_original_error(struct MHD_Connection *connection,
                                              ear_http_request *req, unsigned status,
                                              const char *message)
{
    uint64_t bytes = 0;
    struct MHD_Response *response = original_error_response(message, &bytes);
    if (response && status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    return respond(connection, req, status, response, bytes);
}

static enum MHD_Result respond_method_not_allowed(struct MHD_Connection *connection,
                                                  ear_http_request *req, const char *allow)
{
    uint64_t bytes = 0;
    char message[160];
    snprintf(message, sizeof message, "%s is not allowed here; use %s", req->method, allow);
    struct MHD_Response *response =
        ear_http_error_response("method_not_allowed", message, &bytes);
    if (response)
        MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
    return respond(connection, req, MHD_HTTP_METHOD_NOT_ALLOWED, response, bytes);
}

static enum MHD_Result respond_text(struct MHD_Connection *connection, ear_http_request *req,
                                    const char *body, size_t length, const char *content_type)
{
    struct MHD_Response *response = ear_http_text_response(body, length, content_type);
    if (response)
        MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return respond(connection, req, MHD_HTTP_OK, response, length);
}

/* ---- requests ---- */

/* Copies text for the access log and messages: every byte that is not
 * printable ASCII (spaces, quotes and backslashes too) written as \xHH, so
 * that a line can be neither split nor forged, and stays valid UTF-8. */
static void copy_escaped(char *out, size_t size, const char *text, int keep_spaces)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; text[i]; i++) {
        unsigned char c = (unsigned char)text[i];
        int plain = (c > 0x20 || (c == 0x20 && keep_spaces)) && c < 0x7f && c != '"' && c != '\\';
        size_t need = plain ? 1 : 4;
        if (n + need + 1 > size)
            break;
        if (plain) {
            out[n++] = (char)c;
        } else {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = 0;
}

/* For the access log's fields: a space would split one. */
static void copy_for_log(char *out, size_t size, const char *text)
{
    copy_escaped(out, size, text, 0);
}

/* For messages: spaces stay. */
static void copy_for_message(char *out, size_t size, const char *text)
{
    copy_escaped(out, size, text, 1);
}

/* As copy_for_message, but the end of text is what is kept when it does not
 * fit (a file name's extension says its kind), counting the escapes' length. */
static void copy_end_for_message(char *out, size_t size, const char *text)
{
    size_t start = strlen(text), used = 1;
    while (start > 0) {
        unsigned char c = (unsigned char)text[start - 1];
        size_t need = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? 1 : 4;
        if (used + need > size)
            break;
        used += need;
        start--;
    }
    copy_escaped(out, size, text + start, 1);
}

static ear_http_request *request_begin(ear_http_server *server, struct MHD_Connection *connection,
                                       const char *url, const char *method)
{
    ear_http_request *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->server = server;
    req->start_ms = ear_now_ms();
    req->route = EAR_HTTP_ROUTE_UNKNOWN;
    const char *incoming = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-Request-Id");
    if (ear_http_request_id_is_sane(incoming))
        snprintf(req->id, sizeof req->id, "%s", incoming);
    else
        ear_http_request_id_generate(req->id);
    copy_for_log(req->method, sizeof req->method, method);
    copy_for_log(req->path, sizeof req->path, url);
    pthread_mutex_lock(&server->lock);
    server->active_requests++;
    pthread_mutex_unlock(&server->lock);
    return req;
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **state,
                         enum MHD_RequestTerminationCode how)
{
    ear_http_server *server = cls;
    ear_http_request *req = *state;
    if (!req || *state == &refused_in_uri)
        return;
    *state = NULL;
    if (req->form)
        MHD_destroy_post_processor(req->form);
    /* A worker's answer to a client that left while its search ran: the
     * connection ended on resuming, before the answer could be queued. */
    if (req->job.response)
        MHD_destroy_response(req->job.response);
    double elapsed_ms = ear_now_ms() - req->start_ms;
    /* A connection closed by the client before the answer was complete. */
    unsigned status = req->status;
    if ((how != MHD_REQUEST_TERMINATED_COMPLETED_OK && !req->answered_in_body) || req->aborted)
        status = 0;
    char client[64] = "-";
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info && info->client_addr)
        getnameinfo(info->client_addr,
                    info->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                             : sizeof(struct sockaddr_in),
                    client, sizeof client, NULL, 0, NI_NUMERICHOST);
    char line[512];
    char status_text[16];
    if (status)
        snprintf(status_text, sizeof status_text, "%u", status);
    else
        snprintf(status_text, sizeof status_text, "-");
    snprintf(line, sizeof line, "ear serve: %s %s %s %s %llu B %.1f ms id=%s%s\n", client,
             req->method, req->path, status_text, status ? (unsigned long long)req->bytes : 0ull,
             elapsed_ms, req->id,
             status ? "" : " aborted (the client left before the answer was sent)");
    fputs(line, stderr);
    ear_http_metrics_record(&server->metrics, req->route, status, elapsed_ms / 1000.0);
    free(req->body);
    size_t body_capacity = req->body_capacity;
    free(req);
    pthread_mutex_lock(&server->lock);
    server->body_memory -= body_capacity; /* given back to --max-body-memory */
    server->active_requests--;
    pthread_cond_broadcast(&server->idle);
    pthread_mutex_unlock(&server->lock);
}

/* ---- routes answered at once ---- */

static enum MHD_Result answer_asset(struct MHD_Connection *connection, ear_http_request *req,
                                    const ear_http_asset *asset)
{
    const char *if_none_match =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    int not_modified = ear_http_etag_matches(if_none_match, asset->etag);
    struct MHD_Response *response = MHD_create_response_from_buffer(
        not_modified ? 0 : asset->size, (void *)asset->data, MHD_RESPMEM_PERSISTENT);
    if (response) {
        if (!not_modified)
            MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    ear_http_content_type(asset->path));
        MHD_add_response_header(response, MHD_HTTP_HEADER_ETAG, asset->etag);
        MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    }
    return respond(connection, req, not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, response,
                   not_modified ? 0 : asset->size);
}

static enum MHD_Result answer_metrics(struct MHD_Connection *connection, ear_http_request *req)
{
    ear_http_server *server = req->server;
    ear_http_gauges gauges = {0};
    ear_http_pool_load(server->pool, &gauges.queue_depth, &gauges.running);
    gauges.workers = server->options.workers;
    gauges.queue_capacity = (size_t)server->options.queue;
    ear_http_index_ref *ref = ear_http_index_acquire(server);
    gauges.index_items = ear_index_count(ref->index);
    ear_http_index_release(server, ref);
    gauges.resident_bytes = ear_http_resident_bytes();
    pthread_mutex_lock(&server->lock);
    gauges.body_memory = server->body_memory;
    pthread_mutex_unlock(&server->lock);
    gauges.body_memory_limit = server->options.max_body_memory;
    gauges.sandbox_started = server->sandbox ? ear_sandbox_pool_spawned(server->sandbox) : 0;
    size_t length = 0;
    char *text = ear_http_metrics_text(&server->metrics, &gauges, &length);
    if (!text)
        return respond(connection, req, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, 0);
    struct MHD_Response *response =
        MHD_create_response_from_buffer(length, text, MHD_RESPMEM_MUST_FREE);
    if (!response)
        free(text);
    else {
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8");
        MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    }
    return respond(connection, req, MHD_HTTP_OK, response, length);
}

/* GET /api/examples?n=N (default 6, at most 50): items with a sound to try. */
static enum MHD_Result answer_examples(struct MHD_Connection *connection, ear_http_request *req)
{
    const char *n_text = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "n");
    int n = 6;
    if (n_text && ear_http_parse_k(n_text, &n) != 0)
        return respond_error(connection, req, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "n must be a whole number from 1 to 50 (got \"%.40s\")", n_text);
    ear_http_index_ref *ref = ear_http_index_acquire(req->server);
    char *text = ear_http_examples_json(ref->index, n);
    ear_http_index_release(req->server, ref);
    if (!text)
        return respond_error(connection, req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                             "out of memory");
    size_t length = strlen(text);
    struct MHD_Response *response =
        MHD_create_response_from_buffer(length, text, MHD_RESPMEM_MUST_FREE);
    if (!response)
        free(text);
    else {
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        /* A reload may change the index, so the page asks each time. */
        MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    }
    return respond(connection, req, MHD_HTTP_OK, response, length);
}

static enum MHD_Result answer_file(struct MHD_Connection *connection, ear_http_request *req,
                                   int dir_fd, const char *name)
{
    unsigned status = 0;
    uint64_t bytes = 0;
    struct MHD_Response *response =
        ear_http_file_response(connection, dir_fd, name, &status, &bytes);
    if (!response)
        return respond_error(connection, req, MHD_HTTP_NOT_FOUND, "not_found",
                             "no such file in the dataset");
    return respond(connection, req, status, response, bytes);
}

/* ---- POST /api/search ---- */

/* Takes extra bytes from --max-body-memory, shared by every body in flight;
 * -1 when they are not there. */
static int body_memory_take(ear_http_server *server, size_t extra)
{
    pthread_mutex_lock(&server->lock);
    int ok = extra <= server->options.max_body_memory - server->body_memory;
    if (ok)
        server->body_memory += extra;
    pthread_mutex_unlock(&server->lock);
    return ok ? 0 : -1;
}

/* Appends to the gathered audio; the buffer grows by doubling, as the bytes
 * arrive (never from the declared length), up to --max-upload and within
 * --max-body-memory. -1 out of memory, -2 over the shared budget. */
static int body_append(ear_http_request *req, const char *data, size_t size)
{
    if (size > req->body_capacity - req->body_size) {
        size_t limit = req->server->options.max_upload;
        size_t capacity = req->body_capacity ? req->body_capacity * 2 : 64 * 1024;
        if (capacity < req->body_size + size)
            capacity = req->body_size + size;
        if (capacity > limit)
            capacity = limit < req->body_size + size ? req->body_size + size : limit;
        if (body_memory_take(req->server, capacity - req->body_capacity) != 0)
            return -2;
        uint8_t *grown = realloc(req->body, capacity);
        if (!grown) {
            pthread_mutex_lock(&req->server->lock);
            req->server->body_memory -= capacity - req->body_capacity;
            pthread_mutex_unlock(&req->server->lock);
            return -1;
        }
        req->body = grown;
        req->body_capacity = capacity;
    }
    memcpy(req->body + req->body_size, data, size);
    req->body_size += size;
    return 0;
}

/* The field that carries the upload: "file" for /query, "audio" or "image" for
 * /api/search. */
static int is_upload_field(const ear_http_request *req, const char *key)
{
    if (req->route == EAR_HTTP_ROUTE_QUERY)
        return strcmp(key, "file") == 0;
    return strcmp(key, "audio") == 0 || strcmp(key, "image") == 0;
}

static enum MHD_Result on_form_part(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *filename, const char *content_type,
                                    const char *transfer_encoding, const char *data,
                                    uint64_t offset, size_t size)
{
    ear_http_request *req = cls;
    if (!key || !is_upload_field(req, key) || req->field_done)
        return MHD_YES;
    /* A second upload field starts again at offset 0: only the first counts. */
    if (req->field_seen && offset == 0 && req->body_size > 0) {
        req->field_done = 1;
        return MHD_YES;
    }
    if (!req->field_seen) {
        req->field_seen = 1;
        req->has_file_name = filename && *filename;
        copy_for_message(req->part_type, sizeof req->part_type, content_type ? content_type : "");
        copy_for_message(req->part_name, sizeof req->part_name, filename ? filename : "");
        if (filename)
            copy_end_for_message(req->file_name, sizeof req->file_name, filename);
    }
    int appended = size ? body_append(req, data, size) : 0;
    if (appended != 0) {
        *(appended == -2 ? &req->over_budget : &req->out_of_memory) = 1;
        return MHD_NO;
    }
    return MHD_YES;
}

/* ?kind=audio|image|all, or the older ?against=frames|sounds; images by default,
 * as against=frames was before sounds were items of their own. */
static int parse_kinds(struct MHD_Connection *connection, unsigned *kinds, const char **bad)
{
    const char *kind = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "kind");
    const char *against =
        MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "against");
    unsigned from_kind = EAR_INDEX_ALL, from_against = EAR_INDEX_ALL;
    *bad = NULL;
    if (kind) {
        if (strcmp(kind, "audio") == 0)
            from_kind = EAR_INDEX_MASK(EAR_INDEX_AUDIO);
        else if (strcmp(kind, "image") == 0)
            from_kind = EAR_INDEX_MASK(EAR_INDEX_IMAGE);
        else if (strcmp(kind, "all") != 0)
            return *bad = "kind must be audio, image or all", -1;
    }
    if (against) {
        if (strcmp(against, "frames") == 0)
            from_against = EAR_INDEX_MASK(EAR_INDEX_IMAGE);
        else if (strcmp(against, "sounds") == 0)
            from_against = EAR_INDEX_MASK(EAR_INDEX_AUDIO);
        else
            return *bad = "against must be frames or sounds", -1;
    }
    *kinds = from_kind & from_against;
    if (!kind && !against)
        *kinds = EAR_INDEX_MASK(EAR_INDEX_IMAGE);
    if (*kinds == 0)
        return *bad = "kind and against ask for different kinds", -1;
    return 0;
}

static enum MHD_Result begin_search(struct MHD_Connection *connection, ear_http_request *req)
{
    ear_http_server *server = req->server;
    int original = req->route == EAR_HTTP_ROUTE_QUERY;
    if (original) {
        /* --fill-columns: the best 5 of each kind, as a walk of the whole index would
         * give, where the original walks the best 100 (a dataset of many more sounds
         * than frames leaves its frame column short there). */
        req->each_kind = server->options.fill_columns;
        req->k = req->each_kind ? EAR_QUERY_ORIGINAL_PER_COLUMN : EAR_QUERY_ORIGINAL_TOP;
        req->kinds = EAR_INDEX_ALL;
    } else {
        const char *k_text = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "k");
        if (ear_http_parse_k(k_text, &req->k) != 0)
            return respond_error(connection, req, MHD_HTTP_BAD_REQUEST, "bad_request",
                                 "k must be a whole number from 1 to %d (got \"%.40s\")",
                                 EAR_QUERY_MAX_K, k_text);
        const char *bad;
        if (parse_kinds(connection, &req->kinds, &bad) != 0)
            return respond_error(connection, req, MHD_HTTP_BAD_REQUEST, "bad_request", "%s",
                                 bad);
    }

    const char *length_text = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                          MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length_text) {
        /* Refused from the headers, before a byte of the body is read. */
        char *end;
        errno = 0;
        unsigned long long declared = strtoull(length_text, &end, 10);
        if (errno == 0 && end != length_text && declared > server->options.max_upload) {
            char message[160];
            snprintf(message, sizeof message, "the body is %llu bytes; at most %zu are accepted",
                     declared, server->options.max_upload);
            if (original)
                return respond_original_error(connection, req, MHD_HTTP_CONTENT_TOO_LARGE,
                                              message);
            return respond_error(connection, req, MHD_HTTP_CONTENT_TOO_LARGE,
                                 "payload_too_large", "%s", message);
        }
        /* Nothing is allocated for the declared length (a client may declare
         * 50 MiB and send a byte); but a body that could not fit in the memory
         * left for bodies is refused now, before it is read. */
        if (errno == 0 && end != length_text && declared > 0) {
            pthread_mutex_lock(&server->lock);
            size_t left = server->options.max_body_memory - server->body_memory;
            pthread_mutex_unlock(&server->lock);
            if (declared > left) {
                char message[200];
                snprintf(message, sizeof message,
                         "the service is receiving other uploads; try again in a moment "
                         "(%llu bytes declared, %zu free)",
                         declared, left);
                if (original)
                    return respond_original_error(connection, req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                                  message);
                return respond_error(connection, req, MHD_HTTP_SERVICE_UNAVAILABLE, "busy", "%s",
                                     message);
            }
        }
    }
    const char *type = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_CONTENT_TYPE);
    if (type && strncasecmp(type, "multipart/form-data", 19) == 0) {
        req->multipart = 1;
        req->form = MHD_create_post_processor(connection, 16 * 1024, on_form_part, req);
        if (!req->form && original)
            return respond_original_error(connection, req, MHD_HTTP_BAD_REQUEST, "No file");
        if (!req->form)
            return respond_error(connection, req, MHD_HTTP_BAD_REQUEST, "bad_request",
                                 "a multipart/form-data body needs a boundary");
    }
    char type_text[96];
    copy_for_message(type_text, sizeof type_text, type ? type : "no Content-Type");
    snprintf(req->received_text, sizeof req->received_text, "%s", type_text);
    return MHD_YES;
}

/* Writes a whole JSON error answer on the connection's socket and shuts its
 * sending side, in the original's shape ({"error": message}) when original;
 * the size of the body sent (0 when none could be). */
static uint64_t write_answer(struct MHD_Connection *connection, unsigned status,
                             const char *status_line, const char *id, int original,
                             const char *code, const char *message)
{
    uint64_t bytes = 0;
    char *body =
        original ? ear_query_original_error_json(message) : ear_http_error_body(code, message);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (body && info) {
        char answer[2048];
        int n = snprintf(answer, sizeof answer,
                         "HTTP/1.1 %s\r\nConnection: close\r\n"
                         "Content-Type: application/json\r\nCache-Control: no-store\r\n"
                         "Content-Length: %zu\r\nX-Request-Id: %s\r\n%s",
                         status_line, strlen(body), id,
                         status == MHD_HTTP_SERVICE_UNAVAILABLE ? "Retry-After: 1\r\n" : "");
        for (size_t i = 0; i < sizeof common_headers / sizeof common_headers[0]; i++)
            n += snprintf(answer + n, sizeof answer - (size_t)n, "%s: %s\r\n",
                          common_headers[i][0], common_headers[i][1]);
        n += snprintf(answer + n, sizeof answer - (size_t)n, "\r\n%s", body);
        if (n > 0 && (size_t)n < sizeof answer) {
            ssize_t sent = send(info->connect_fd, answer, (size_t)n, MSG_NOSIGNAL);
            (void)sent; /* a client that is gone gets nothing; either way we close */
            shutdown(info->connect_fd, SHUT_WR);
        }
        bytes = strlen(body);
    }
    free(body);
    return bytes;
}

/* A body refused while it streams in (over --max-upload when chunked, too
 * slow, past --max-body-memory). This libmicrohttpd (0.9.75) cannot queue an
 * answer while the body is being read, and would otherwise read it to its
 * end; so the answer is written to the socket here and the connection closed
 * by returning MHD_NO. */
static enum MHD_Result refuse_during_body(struct MHD_Connection *connection, ear_http_request *req,
                                         unsigned status, const char *status_line,
                                         const char *code, const char *message)
{
    req->bytes = write_answer(connection, status, status_line, req->id,
                              req->route == EAR_HTTP_ROUTE_QUERY, code, message);
    req->status = status;
    req->answered_in_body = 1;
    return MHD_NO;
}

static enum MHD_Result refuse_growing_body(struct MHD_Connection *connection, ear_http_request *req)
{
    char message[160];
    snprintf(message, sizeof message, "the body grew past the %zu bytes accepted",
             req->server->options.max_upload);
    return refuse_during_body(connection, req, MHD_HTTP_CONTENT_TOO_LARGE, "413 Payload Too Large",
                              "payload_too_large", message);
}

/* Whether the client closed its side of the connection (poll, no wait). A
 * client that half-closes after its request counts as gone: browsers, curl
 * and proxies do not, and nothing else can tell a leaver from a waiter. */
static int client_hung_up(int fd)
{
    if (fd < 0)
        return 0;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static enum MHD_Result continue_search(struct MHD_Connection *connection, ear_http_request *req,
                                       const char *upload_data, size_t *upload_data_size)
{
    ear_http_server *server = req->server;
    if (req->submitted) {
        struct MHD_Response *response = req->job.response;
        req->job.response = NULL; /* respond() owns it now */
        if (req->job.client_left || client_hung_up(req->job.client_fd)) {
            /* Nobody to answer: logged as aborted, with the time it ran. */
            req->aborted = 1;
            if (response)
                MHD_destroy_response(response);
            return MHD_NO;
        }
        return respond(connection, req, req->job.status, response, req->job.response_bytes);
    }
    if (*upload_data_size > 0) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        if (size > server->options.max_upload - req->received)
            return refuse_growing_body(connection, req);
        /* libmicrohttpd's timeout counts only the silence between two reads, so a
         * body trickled a byte at a time would hold its connection for ever: the
         * whole body gets --body-timeout (nginx's 120 s by default, so that an honest
         * upload over a slow line is not cut). */
        double elapsed_s = (ear_now_ms() - req->start_ms) / 1000;
        if (elapsed_s > server->options.body_timeout_s) {
            char message[160];
            snprintf(message, sizeof message,
                     "the body did not arrive within %d s (%zu bytes in %.0f s)",
                     server->options.body_timeout_s, req->received + size, elapsed_s);
            return refuse_during_body(connection, req, MHD_HTTP_REQUEST_TIMEOUT,
                                      "408 Request Timeout", "request_timeout", message);
        }
        req->received += size;
        if (req->form) {
            if (!req->form_failed && MHD_post_process(req->form, upload_data, size) != MHD_YES)
                req->form_failed = 1;
        } else if (!req->out_of_memory) {
            int appended = body_append(req, upload_data, size);
            if (appended != 0)
                *(appended == -2 ? &req->over_budget : &req->out_of_memory) = 1;
        }
        if (req->over_budget) {
            char message[200];
            snprintf(message, sizeof message,
                     "the service is receiving other uploads (%zu bytes at most together); "
                     "try again in a moment", server->options.max_body_memory);
            return refuse_during_body(connection, req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                      "503 Service Unavailable", "busy", message);
        }
        return MHD_YES;
    }

    /* The whole body is in. */
    if (req->form) {
        if (MHD_destroy_post_processor(req->form) != MHD_YES)
            req->form_failed = 1;
        req->form = NULL;
    }
    int original = req->route == EAR_HTTP_ROUTE_QUERY;
    if (original && req->out_of_memory)
        return respond_original_error(connection, req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                      "out of memory while receiving the body");
    if (req->out_of_memory)
        return respond_error(connection, req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                             "out of memory while receiving the body");
    /* The original: no "file" field, or one without a file name, is "No file". */
    if (original && (!req->multipart || !req->field_seen || !req->has_file_name))
        return respond_original_error(connection, req, MHD_HTTP_BAD_REQUEST, "No file");
    if (req->multipart && (req->form_failed || !req->field_seen))
        return respond_error(connection, req, MHD_HTTP_BAD_REQUEST, "bad_request",
                             req->form_failed
                                 ? "the multipart/form-data body could not be read"
                                 : "the multipart/form-data body has no \"audio\" or \"image\" "
                                   "field");
    char what[256];
    if (req->multipart)
        snprintf(what, sizeof what, "%zu bytes in the upload field (%s%s%s)", req->body_size,
                 req->part_type[0] ? req->part_type : "no Content-Type",
                 req->part_name[0] ? ", file " : "", req->part_name);
    else
        snprintf(what, sizeof what, "%zu bytes (%.96s)", req->body_size, req->received_text);
    snprintf(req->received_text, sizeof req->received_text, "%s", what);

    req->job.connection = connection;
    const union MHD_ConnectionInfo *fd_info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    req->job.client_fd = fd_info ? fd_info->connect_fd : -1;
    req->job.upload = req->body;
    req->job.upload_size = req->body_size;
    req->job.name = req->file_name[0] ? req->file_name : NULL;
    req->job.received = req->received_text;
    req->job.k = req->k;
    req->job.each_kind = req->each_kind;
    req->job.kinds = req->kinds;
    req->job.original = original;
    req->submitted = 1;
    if (ear_http_pool_submit(server->pool, &req->job) != 0) {
        req->submitted = 0;
        if (original) {
            char message[160];
            snprintf(message, sizeof message,
                     "every worker is busy and %d searches are already waiting",
                     server->options.queue);
            return respond_original_error(connection, req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                          message);
        }
        return respond_error(connection, req, MHD_HTTP_SERVICE_UNAVAILABLE, "busy",
                             "every worker is busy and %d searches are already waiting",
                             server->options.queue);
    }
    return MHD_YES;
}

/* ---- routing ---- */

static int is_read_method(const char *method)
{
    return strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

/* The path without the /ear prefix that a proxy may leave in front of it. */
static const char *route_path(const char *url)
{
    return strncmp(url, "/ear/", 5) == 0 ? url + 4 : url;
}

/* Whether a body follows the headers (RFC 9112: Content-Length or Transfer-Encoding). */
static int request_has_body(struct MHD_Connection *connection)
{
    const char *length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    return (length && strcmp(length, "0") != 0) ||
           MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/* ---- strict framing (RFC 9112 section 6) ---- */

typedef struct framing {
    int lengths, encodings;
    const char *encoding;
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    framing *f = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        f->lengths++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->encodings++;
        f->encoding = value;
    }
    return MHD_YES;
}

/* Whether a Transfer-Encoding value is exactly "chunked", optional spaces aside. */
static int is_chunked(const char *value)
{
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strlen(value);
    while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    return n == 7 && strncasecmp(value, "chunked", 7) == 0;
}

/* What is wrong with how the body is framed, or NULL. libmicrohttpd 0.9.75
 * takes the first Content-Length of several and lets Content-Length stand
 * beside Transfer-Encoding, so that the two ends of a proxy may disagree on
 * where the body stops (request smuggling); other codings it cannot decode. */
static const char *framing_problem(struct MHD_Connection *connection)
{
    framing f = {0, 0, NULL};
    MHD_get_connection_values(connection, MHD_HEADER_KIND, count_framing, &f);
    if (f.lengths > 1)
        return "more than one Content-Length header";
    if (f.lengths && f.encodings)
        return "both Content-Length and Transfer-Encoding";
    if (f.encodings > 1)
        return "more than one Transfer-Encoding header";
    if (f.encodings && !is_chunked(f.encoding ? f.encoding : ""))
        return "a transfer coding other than chunked";
    return NULL;
}

static enum MHD_Result refuse_framing(struct MHD_Connection *connection, ear_http_request *req,
                                      const char *problem)
{
    uint64_t bytes = 0;
    char message[160];
    snprintf(message, sizeof message, "the request's body is framed ambiguously: %s", problem);
    struct MHD_Response *response = req->route == EAR_HTTP_ROUTE_QUERY
                                        ? original_error_response(message, &bytes)
                                        : ear_http_error_response("bad_request", message, &bytes);
    if (response)
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
    return respond(connection, req, MHD_HTTP_BAD_REQUEST, response, bytes);
}

/* Every route but the search, answered in one go. */
static enum MHD_Result answer_route(struct MHD_Connection *connection, ear_http_request *req,
                                    const char *url, const char *method)
{
    ear_http_server *server = req->server;
    if (strcmp(url, "/ear") == 0) {
        /* Relative URLs in the page only resolve under /ear/ with the slash. */
        req->route = EAR_HTTP_ROUTE_REDIRECT;
        struct MHD_Response *response =
            MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (response)
            MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, "ear/");
        return respond(connection, req, MHD_HTTP_MOVED_PERMANENTLY, response, 0);
    }
    const char *path = route_path(url);
    int read = is_read_method(method);
    if (strcmp(path, "/healthz") == 0) {
        req->route = EAR_HTTP_ROUTE_HEALTHZ;
        if (!read)
            return respond_method_not_allowed(connection, req, "GET, HEAD");
        static const char ok[] = "{\"status\":\"ok\"}";
        return respond_text(connection, req, ok, sizeof ok - 1, "application/json");
    }
    if (strcmp(path, "/metrics") == 0) {
        req->route = EAR_HTTP_ROUTE_METRICS;
        if (!read)
            return respond_method_not_allowed(connection, req, "GET, HEAD");
        return answer_metrics(connection, req);
    }
    if (strcmp(path, "/api/config") == 0) {
        req->route = EAR_HTTP_ROUTE_CONFIG;
        if (!read)
            return respond_method_not_allowed(connection, req, "GET, HEAD");
        return respond_text(connection, req, server->config_json, strlen(server->config_json),
                            "application/json");
    }
    if (strcmp(path, "/api/examples") == 0) {
        req->route = EAR_HTTP_ROUTE_EXAMPLES;
        if (!read)
            return respond_method_not_allowed(connection, req, "GET, HEAD");
        return answer_examples(connection, req);
    }
    if (strncmp(path, "/data/", 6) == 0) {
        req->route = strncmp(path, "/data/frames/", 13) == 0  ? EAR_HTTP_ROUTE_FRAMES
                     : strncmp(path, "/data/audio/", 12) == 0 ? EAR_HTTP_ROUTE_AUDIO
                                                              : EAR_HTTP_ROUTE_DATA;
        if (!read)
            return respond_method_not_allowed(connection, req, "GET, HEAD");
        return answer_file(connection, req, server->data_dir_fd, path + 6);
    }
    const ear_http_asset *asset = NULL;
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        req->route = EAR_HTTP_ROUTE_PAGE;
        asset = ear_http_asset_find("index.html");
    } else if (strcmp(path, "/ce-loss") == 0) {
        /* The original's second page, at its own address without .html. */
        req->route = EAR_HTTP_ROUTE_PAGE;
        asset = ear_http_asset_find("ce-loss.html");
    } else if (path[0] == '/' && (asset = ear_http_asset_find(path + 1)) != NULL) {
        req->route = EAR_HTTP_ROUTE_WEB;
    }
    if (asset) {
        if (!read)
            return respond_method_not_allowed(connection, req, "GET, HEAD");
        return answer_asset(connection, req, asset);
    }
    return respond_error(connection, req, MHD_HTTP_NOT_FOUND, "not_found", "no such route");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **state)
{
    ear_http_server *server = cls;
    ear_http_request *req = *state;
    if (*state == &refused_in_uri)
        return MHD_NO; /* answered by on_uri already */
    if (!req) {
        req = request_begin(server, connection, url, method);
        if (!req)
            return MHD_NO;
        *state = req;
        const char *path = route_path(url);
        int search = strcmp(path, "/api/search") == 0 || strcmp(path, "/query") == 0;
        if (search)
            req->route = path[1] == 'q' ? EAR_HTTP_ROUTE_QUERY : EAR_HTTP_ROUTE_SEARCH;
        const char *problem = framing_problem(connection);
        if (problem)
            return refuse_framing(connection, req, problem);
        if (search) {
            if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
                return respond_method_not_allowed(connection, req, "POST");
            return begin_search(connection, req);
        }
        /* libmicrohttpd 0.9.75 closes the connection after an answer queued
         * on this first call (it may leave a body unread): that is right when
         * a body follows, and otherwise the answer waits for the next call so
         * that the connection can be kept alive. */
        if (request_has_body(connection))
            return answer_route(connection, req, url, method);
        return MHD_YES;
    }
    if (req->route == EAR_HTTP_ROUTE_SEARCH || req->route == EAR_HTTP_ROUTE_QUERY)
        return continue_search(connection, req, upload_data, upload_data_size);
    if (*upload_data_size > 0)
        return MHD_NO; /* a body that its headers did not announce */
    return answer_route(connection, req, url, method);
}

/* Called with the request line's URI before libmicrohttpd splits its query:
 * 0.9.75 sends nothing at all (the client waits for the idle timeout) when
 * the parameters outgrow its memory pool, so a query with more than any route
 * needs is answered 414 here, on the socket, and the connection closed. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *connection)
{
    ear_http_server *server = cls;
    const char *query = strchr(uri, '?');
    size_t parameters = 0;
    for (const char *p = query; p && *p; p++)
        parameters += *p == '&' || *p == ';';
    if (parameters < EAR_HTTP_MAX_PARAMETERS)
        return NULL;
    char id[17], message[160], path[96];
    ear_http_request_id_generate(id);
    snprintf(message, sizeof message, "the query has %zu parameters; at most %d are accepted",
             parameters + 1, EAR_HTTP_MAX_PARAMETERS);
    /* POST /query answers in the original's shape, even here. */
    size_t path_length = query ? (size_t)(query - uri) : strlen(uri);
    int original = (path_length == 6 && strncmp(uri, "/query", 6) == 0) ||
                   (path_length == 10 && strncmp(uri, "/ear/query", 10) == 0);
    uint64_t bytes = write_answer(connection, MHD_HTTP_URI_TOO_LONG, "414 URI Too Long", id,
                                  original, "uri_too_long", message);
    /* No request is begun (the library may never call on_completed for it):
     * logged and counted here. */
    copy_for_log(path, sizeof path, uri);
    fprintf(stderr, "ear serve: - - %s 414 %llu B 0.0 ms id=%s\n", path,
            (unsigned long long)bytes, id);
    ear_http_metrics_record(&server->metrics, EAR_HTTP_ROUTE_UNKNOWN, MHD_HTTP_URI_TOO_LONG, 0);
    return &refused_in_uri;
}

static size_t on_unescape(void *cls, struct MHD_Connection *connection, char *uri)
{
    return ear_http_unescape(uri);
}

static void on_library_log(void *cls, const char *format, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, format, ap);
    size_t length = strlen(line);
    while (length && (line[length - 1] == '\n' || line[length - 1] == '\r'))
        line[--length] = 0;
    /* Said after each body that outgrew --max-upload: refuse_growing_body's MHD_NO. */
    if (strstr(line, "Application reported internal error"))
        return;
    fprintf(stderr, "ear serve: libmicrohttpd: %s\n", line);
}

/* ---- starting and stopping ---- */

void ear_http_options_default(ear_http_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 5001;
    o->workers = 1;
    o->queue = 16;
    o->max_upload = (size_t)50 << 20;
    o->max_seconds = 60;
    o->idle_timeout_s = 30;
    o->body_timeout_s = 120;
    o->max_connections = 1000;
    o->home_url = "/";
    o->no_sandbox = 0;
    o->decode_timeout_s = 5;
    o->max_body_memory = 0;
}

/* Binds and listens on host:port; fills the bound port and the URL. */
static int listen_on(ear_http_server *server, const char *host_name, ear_error *err)
{
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", server->options.port);
    struct addrinfo hints = {0}, *found = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int fd = -1;
    int e = getaddrinfo(host_name, port_text, &hints, &found);
    if (e != 0) {
        ear_error_set(err, "cannot resolve host %s: %s", host_name, gai_strerror(e));
        goto fail;
    }
    int bind_errno = 0;
    for (struct addrinfo *a = found; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            bind_errno = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 511) == 0)
            break;
        bind_errno = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        ear_error_set(err, "cannot listen on %s port %d: %s", host_name,
                      server->options.port, strerror(bind_errno));
        goto fail;
    }
    struct sockaddr_storage bound;
    socklen_t bound_length = sizeof bound;
    char host[INET6_ADDRSTRLEN + 1], port[16];
    if (getsockname(fd, (struct sockaddr *)&bound, &bound_length) != 0 ||
        getnameinfo((struct sockaddr *)&bound, bound_length, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        ear_error_set(err, "cannot read the address listened on: %s", strerror(errno));
        goto fail;
    }
    server->port = atoi(port);
    snprintf(server->url, sizeof server->url,
             bound.ss_family == AF_INET6 ? "http://[%s]:%s" : "http://%s:%s", host, port);
    server->listen_fd = fd;
    freeaddrinfo(found);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    if (found)
        freeaddrinfo(found);
    return -1;
}

static int check_options(const ear_http_options *o, ear_error *err)
{
    if (!o->index_path || !o->data_dir)
        return ear_error_set(err, "an index file and a data folder are required");
    if (!o->host || !*o->host)
        return ear_error_set(err, "no host to listen on");
    if (o->port < 0 || o->port > 65535)
        return ear_error_set(err, "port %d is not from 0 to 65535", o->port);
    if (o->workers < 1 || o->workers > 256)
        return ear_error_set(err, "workers must be from 1 to 256 (got %d)", o->workers);
    if (o->queue < 1 || o->queue > 1000000)
        return ear_error_set(err, "queue must be from 1 to 1000000 (got %d)", o->queue);
    if (o->max_upload < 1)
        return ear_error_set(err, "max-upload must be at least 1 byte");
    if (!(o->max_seconds >= 0))
        return ear_error_set(err, "max-seconds must not be negative");
    if (o->idle_timeout_s < 1)
        return ear_error_set(err, "idle-timeout must be at least 1 s (got %d)", o->idle_timeout_s);
    if (o->body_timeout_s < 1)
        return ear_error_set(err, "body-timeout must be at least 1 s (got %d)", o->body_timeout_s);
    if (!(o->decode_timeout_s > 0) || o->decode_timeout_s > 3600)
        return ear_error_set(err, "decode-timeout must be from 0 to 3600 s (got %g)",
                             o->decode_timeout_s);
    if (o->max_connections < 1)
        return ear_error_set(err, "max-connections must be at least 1 (got %d)",
                             o->max_connections);
    return 0;
}

ear_http_server *ear_http_server_start(const ear_nn_model *model, const ear_http_options *o,
                                       ear_error *err)
{
    if (check_options(o, err) != 0)
        return NULL;
    if (!ear_nn_model_config(model)->has_audio && !ear_nn_model_config(model)->has_image) {
        ear_error_set(err, "the model has no tower: it cannot answer searches");
        return NULL;
    }
    ear_http_server *server = calloc(1, sizeof *server);
    if (!server) {
        ear_error_set(err, "out of memory");
        return NULL;
    }
    server->options = *o;
    server->model = model;
    server->listen_fd = server->data_dir_fd = -1;
    if (pthread_mutex_init(&server->lock, NULL) != 0 ||
        pthread_mutex_init(&server->index_lock, NULL) != 0) {
        /* glibc's mutexes cannot fail to initialise; this keeps the free path simple. */
        free(server);
        ear_error_set(err, "cannot create a mutex");
        return NULL;
    }
    pthread_condattr_t monotonic;
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init(&server->idle, &monotonic);
    pthread_condattr_destroy(&monotonic);
    /* From here ear_http_server_free undoes whatever was done. */
    if (ear_http_metrics_init(&server->metrics, err) != 0)
        goto fail;
    server->index_path = strdup(o->index_path);
    server->data_dir = strdup(o->data_dir);
    if (!server->index_path || !server->data_dir) {
        ear_error_set(err, "out of memory");
        goto fail;
    }
    server->config_json = ear_http_config_json(o->home_url ? o->home_url : "/");
    if (!server->config_json) {
        ear_error_set(err, "out of memory");
        goto fail;
    }
    server->options.home_url = NULL; /* in config_json; the caller's string is not kept */
    server->options.index_path = server->index_path;
    server->options.data_dir = server->data_dir;
    server->options.host = NULL; /* only needed to listen, below; not kept */
    if (server->options.max_body_memory == 0)
        server->options.max_body_memory = o->max_upload > SIZE_MAX / 4 ? SIZE_MAX
                                                                         : 4 * o->max_upload;

    server->index = ear_http_index_open(server, err);
    if (!server->index)
        goto fail;
    server->data_dir_fd = open(o->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (server->data_dir_fd < 0) {
        ear_error_set(err, "%s: %s", o->data_dir, strerror(errno));
        goto fail;
    }

    if (!o->no_sandbox) {
        /* One helper per worker: a search never waits for a decoder. */
        ear_sandbox_options sandbox;
        ear_sandbox_options_default(&sandbox);
        sandbox.helpers = o->workers;
        sandbox.timeout_s = o->decode_timeout_s;
        server->sandbox = ear_sandbox_pool_start(&sandbox, err);
        if (!server->sandbox) {
            char why[EAR_ERROR_SIZE];
            snprintf(why, sizeof why, "%s", err->message);
            ear_error_set(err, "the decoding sandbox: %.400s (--no-sandbox runs without it)",
                          why);
            goto fail;
        }
    }
    server->pool = ear_http_pool_start(server, model, o->workers, o->queue, err);
    if (!server->pool)
        goto fail;
    if (listen_on(server, o->host, err) != 0)
        goto fail;

    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (strchr(server->url, '['))
        flags |= MHD_USE_IPv6;
    /* The logger first: libmicrohttpd reads the options in order. */
    server->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, server,
        MHD_OPTION_EXTERNAL_LOGGER, on_library_log, server,
        MHD_OPTION_LISTEN_SOCKET, server->listen_fd,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, server,
        MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, server,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, server,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)o->idle_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)o->max_connections,
        MHD_OPTION_END);
    if (!server->daemon) {
        ear_error_set(err, "cannot start libmicrohttpd on %s", server->url);
        goto fail;
    }
    return server;
fail:
    ear_http_server_free(server);
    return NULL;
}

int ear_http_server_port(const ear_http_server *server)
{
    return server->port;
}

const char *ear_http_server_url(const ear_http_server *server)
{
    return server->url;
}

void ear_http_server_shutdown(ear_http_server *server, double drain_ms)
{
    pthread_mutex_lock(&server->lock);
    int stopped = server->stopped;
    server->shutting_down = 1;
    server->stopped = 1;
    pthread_mutex_unlock(&server->lock);
    if (stopped)
        return;
    if (server->daemon) {
        MHD_socket listener = MHD_quiesce_daemon(server->daemon);
        if (listener != MHD_INVALID_SOCKET) {
            close(listener);
            server->listen_fd = -1;
        }
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    long long nanoseconds = deadline.tv_nsec + (long long)(drain_ms * 1e6);
    deadline.tv_sec += (time_t)(nanoseconds / 1000000000);
    deadline.tv_nsec = (long)(nanoseconds % 1000000000);
    pthread_mutex_lock(&server->lock);
    while (server->active_requests > 0 && drain_ms > 0)
        if (pthread_cond_timedwait(&server->idle, &server->lock, &deadline) == ETIMEDOUT)
            break;
    size_t left = server->active_requests;
    pthread_mutex_unlock(&server->lock);
    if (left && drain_ms > 0)
        fprintf(stderr, "ear serve: %zu requests still open after %.0f s; closing them\n", left,
                drain_ms / 1000);
    /* Workers first: a connection they still hold suspended must be resumed
     * before the daemon goes. */
    if (server->pool)
        ear_http_pool_stop(server->pool);
    if (server->daemon) {
        MHD_stop_daemon(server->daemon);
        server->daemon = NULL;
        server->listen_fd = -1; /* closed above, or by the daemon when quiescing failed */
    }
}

void ear_http_server_free(ear_http_server *server)
{
    if (!server)
        return;
    ear_http_server_shutdown(server, 0);
    ear_http_pool_free(server->pool);
    ear_sandbox_pool_stop(server->sandbox);
    ear_http_index_release(server, server->index);
    if (server->listen_fd >= 0)
        close(server->listen_fd);
    if (server->data_dir_fd >= 0)
        close(server->data_dir_fd);
    ear_http_metrics_destroy(&server->metrics);
    pthread_cond_destroy(&server->idle);
    pthread_mutex_destroy(&server->index_lock);
    pthread_mutex_destroy(&server->lock);
    free(server->index_path);
    free(server->data_dir);
    free(server->config_json);
    free(server);
}
