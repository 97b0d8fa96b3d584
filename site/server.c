/* The site's HTTP side on libmicrohttpd, one thread per connection: pages are quick, and in
 * dev mode a forwarded search may wait on Ear for up to two minutes without holding up
 * anyone else. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "site.h"

/* As deploy/nginx's proxy_read_timeout. */
#define PROXY_TIMEOUT_S 120
/* Request heads larger than about half of this are answered 431 by libmicrohttpd. */
#define CONNECTION_MEMORY_BYTES (32 * 1024)
#define BODY_CHUNK_BYTES (64 * 1024)

struct ear_site_server {
    struct MHD_Daemon *daemon;
    ear_site_options options;
    char *content_directory;
    char *static_root; /* realpath of content/static, or NULL when there is none */
    char *base_url;
    char *ear_redirect;
    ear_site_content *content; /* NULL in dev mode, which reads the folder per request */
    int port;
};

/* Per request, made when the request line arrives (URI log callback), freed when done. */
typedef struct site_request {
    char *raw_uri; /* as sent: still percent-encoded, with the query */
    char method[16];
    int started;
    int status;
    double start_ms;
    /* Forwarding to Ear. */
    ear_site_proxy *proxy;
    int buffering;          /* chunked upload: collected, then sent with a Content-Length */
    ear_site_buffer body;
    int64_t content_length; /* what Ear is told; -1: no body */
    int upstream_failed;    /* Ear stopped reading: the rest of the upload is dropped */
    uint64_t received;      /* chunked upload bytes so far */
} site_request;

static void *request_begin(void *cls, const char *uri, struct MHD_Connection *connection)
{
    site_request *request = calloc(1, sizeof *request);
    if (!request)
        return NULL;
    request->raw_uri = strdup(uri);
    request->start_ms = ear_now_ms();
    request->content_length = -1;
    return request;
}

static void request_end(void *cls, struct MHD_Connection *connection, void **context,
                        enum MHD_RequestTerminationCode code)
{
    ear_site_server *server = cls;
    site_request *request = *context;
    if (!request)
        return;
    if (!server->options.quiet && request->status) {
        char address[64] = "-";
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (info && info->client_addr)
            getnameinfo(info->client_addr,
                        info->client_addr->sa_family == AF_INET6
                            ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
                        address, sizeof address, NULL, 0, NI_NUMERICHOST);
        fprintf(stderr, "ear-site: %s %s %s %d %.1f ms%s\n", address, request->method,
                request->raw_uri ? request->raw_uri : "?", request->status,
                ear_now_ms() - request->start_ms,
                code == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (cut short)");
    }
    ear_site_proxy_close(request->proxy);
    ear_site_buffer_free(&request->body);
    free(request->raw_uri);
    free(request);
    *context = NULL;
}

static enum MHD_Result queue(struct MHD_Connection *connection, site_request *request,
                             int status, struct MHD_Response *response)
{
    if (!response)
        return MHD_NO;
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    request->status = status;
    enum MHD_Result result = MHD_queue_response(connection, (unsigned int)status, response);
    MHD_destroy_response(response);
    return result;
}

static enum MHD_Result queue_text(struct MHD_Connection *connection, site_request *request,
                                  int status, const char *content_type, char *text, size_t size)
{
    if (!text) {
        static const char out_of_memory[] = "out of memory\n";
        struct MHD_Response *response = MHD_create_response_from_buffer(
            sizeof out_of_memory - 1, (void *)out_of_memory, MHD_RESPMEM_PERSISTENT);
        if (response)
            MHD_add_response_header(response, "Content-Type", "text/plain; charset=utf-8");
        return queue(connection, request, 500, response);
    }
    struct MHD_Response *response =
        MHD_create_response_from_buffer(size, text, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(response, "Content-Type", content_type);
    return queue(connection, request, status, response);
}

static enum MHD_Result queue_html(struct MHD_Connection *connection, site_request *request,
                                  int status, char *html, size_t size)
{
    return queue_text(connection, request, status, "text/html; charset=utf-8", html, size);
}

static enum MHD_Result queue_error(struct MHD_Connection *connection, site_request *request,
                                   const ear_site_content *content, int status,
                                   const char *message)
{
    size_t size = 0;
    char *html = ear_site_render_error(content, status, message, &size);
    return queue_html(connection, request, status, html, size);
}

static enum MHD_Result queue_redirect(struct MHD_Connection *connection, site_request *request,
                                      int status, const char *location)
{
    size_t size = 0;
    char *html = ear_site_render_error(NULL, status, location, &size);
    if (!html)
        return queue_html(connection, request, 500, NULL, 0);
    struct MHD_Response *response =
        MHD_create_response_from_buffer(size, html, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free(html);
        return MHD_NO;
    }
    MHD_add_response_header(response, "Content-Type", "text/html; charset=utf-8");
    MHD_add_response_header(response, "Location", location);
    return queue(connection, request, status, response);
}

/* ------------------------------------------------------------------ static files */

static const char *content_type_of(const char *path)
{
    static const char *const types[][2] = {
        {".css", "text/css; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".html", "text/html; charset=utf-8"}, {".txt", "text/plain; charset=utf-8"},
        {".xml", "application/xml"}, {".json", "application/json"},
        {".svg", "image/svg+xml"}, {".png", "image/png"}, {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"}, {".gif", "image/gif"}, {".webp", "image/webp"},
        {".ico", "image/x-icon"}, {".woff2", "font/woff2"}, {".woff", "font/woff"},
        {".pdf", "application/pdf"}, {".mp3", "audio/mpeg"}, {".ogg", "audio/ogg"},
        {".wav", "audio/wav"}, {".webm", "video/webm"}, {".mp4", "video/mp4"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot, types[i][0]))
                return types[i][1];
    return "application/octet-stream";
}

static enum MHD_Result serve_static(ear_site_server *server, struct MHD_Connection *connection,
                                    site_request *request, const char *relative)
{
    if (!server->static_root || !ear_site_path_is_safe(relative))
        return queue_error(connection, request, server->content, 404, "No such file.");
    char path[PATH_MAX + 256], resolved[PATH_MAX];
    int written = snprintf(path, sizeof path, "%s/%s", server->static_root, relative);
    size_t root_length = strlen(server->static_root);
    /* The path is checked by text above; realpath also catches symbolic links that lead out. */
    if (written < 0 || (size_t)written >= sizeof path || !realpath(path, resolved) ||
        strncmp(resolved, server->static_root, root_length) || resolved[root_length] != '/')
        return queue_error(connection, request, server->content, 404, "No such file.");
    int fd = open(resolved, O_RDONLY | O_CLOEXEC);
    struct stat info;
    if (fd < 0 || fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        if (fd >= 0)
            close(fd);
        return queue_error(connection, request, server->content, 404, "No such file.");
    }
    char etag[64];
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)info.st_mtime,
             (unsigned long long)info.st_size);
    const char *if_none_match =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "If-None-Match");
    struct MHD_Response *response;
    int status;
    if (if_none_match && !strcmp(if_none_match, etag)) {
        close(fd);
        response = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        status = 304;
    } else {
        response = MHD_create_response_from_fd((size_t)info.st_size, fd); /* owns fd */
        if (!response)
            close(fd);
        status = 200;
    }
    if (!response)
        return MHD_NO;
    MHD_add_response_header(response, "Content-Type", content_type_of(resolved));
    MHD_add_response_header(response, "ETag", etag);
    MHD_add_response_header(response, "Cache-Control",
                            server->options.dev ? "no-cache" : "public, max-age=3600");
    return queue(connection, request, status, response);
}

/* ------------------------------------------------------------------ /ear/ in dev mode */

static ssize_t relay_body(void *cls, uint64_t position, char *data, size_t max)
{
    long got = ear_site_proxy_read_body(cls, data, max);
    if (got > 0)
        return (ssize_t)got;
    return got == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void relay_done(void *cls)
{
    ear_site_proxy_close(cls);
}

typedef struct header_list {
    ear_site_header headers[128];
    size_t count;
    int overflow;
} header_list;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                      const char *value)
{
    header_list *list = cls;
    if (list->count == sizeof list->headers / sizeof list->headers[0]) {
        list->overflow = 1;
        return MHD_NO;
    }
    list->headers[list->count].name = name;
    list->headers[list->count].value = value ? value : "";
    list->count++;
    return MHD_YES;
}

static void client_address(struct MHD_Connection *connection, char *address, size_t size)
{
    snprintf(address, size, "unknown");
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info && info->client_addr)
        getnameinfo(info->client_addr,
                    info->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                             : sizeof(struct sockaddr_in),
                    address, (socklen_t)size, NULL, 0, NI_NUMERICHOST);
}

static enum MHD_Result queue_bad_gateway(ear_site_server *server,
                                         struct MHD_Connection *connection,
                                         site_request *request, int status, const char *why)
{
    char message[EAR_ERROR_SIZE + 200];
    snprintf(message, sizeof message,
             "The Ear service at %s:%s is not answering (%s). The rest of the site works; "
             "start Ear with `ear serve` and reload.",
             server->options.upstream.host, server->options.upstream.port, why);
    if (!server->options.quiet)
        fprintf(stderr, "ear-site: /ear/: %s\n", why);
    return queue_error(connection, request, NULL, status, message);
}

/* Connects to Ear and sends the request head, Content-Length as request->content_length. */
static int open_upstream(ear_site_server *server, struct MHD_Connection *connection,
                         site_request *request, const char *target, ear_error *err)
{
    header_list list = {.count = 0};
    MHD_get_connection_values(connection, MHD_HEADER_KIND, collect_header, &list);
    if (list.overflow)
        return ear_error_set(err, "too many headers");
    char address[64];
    client_address(connection, address, sizeof address);
    size_t size;
    char *head = ear_site_proxy_request_head(request->method, target, list.headers, list.count,
                                             address, request->content_length, &size, err);
    if (!head)
        return -1;
    request->proxy = ear_site_proxy_open(&server->options.upstream, head, size,
                                         PROXY_TIMEOUT_S, err);
    free(head);
    return request->proxy ? 0 : -1;
}

static enum MHD_Result relay_answer(ear_site_server *server, struct MHD_Connection *connection,
                                    site_request *request)
{
    ear_site_response_head head;
    ear_error err;
    int timed_out;
    if (ear_site_proxy_read_head(request->proxy, &head, &timed_out, &err) != 0)
        return queue_bad_gateway(server, connection, request, timed_out ? 504 : 502,
                                 err.message);
    if (head.chunked)
        return queue_bad_gateway(server, connection, request, 502,
                                 "Ear answered an HTTP/1.0 request in chunks");
    struct MHD_Response *response;
    if (head.status == 204 || head.status == 304 || head.status < 200) {
        response = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    } else {
        uint64_t size = head.content_length >= 0 ? (uint64_t)head.content_length
                                                 : MHD_SIZE_UNKNOWN;
        response = MHD_create_response_from_callback(size, BODY_CHUNK_BYTES, relay_body,
                                                     request->proxy, relay_done);
        if (response)
            request->proxy = NULL; /* the response closes it when it is sent */
    }
    if (!response)
        return MHD_NO;
    for (size_t i = 0; i < head.header_count; i++) {
        const char *name = head.headers[i].name;
        /* libmicrohttpd writes its own framing (Content-Length or chunks) and Date. */
        if (ear_site_header_is_hop_by_hop(name) || !strcasecmp(name, "content-length") ||
            !strcasecmp(name, "date"))
            continue;
        MHD_add_response_header(response, name, head.headers[i].value);
    }
    request->status = head.status;
    enum MHD_Result result = MHD_queue_response(connection, (unsigned int)head.status, response);
    MHD_destroy_response(response);
    return result;
}

static enum MHD_Result serve_ear(ear_site_server *server, struct MHD_Connection *connection,
                                 site_request *request, const char *upload_data,
                                 size_t *upload_data_size)
{
    if (!request->started) {
        request->started = 1;
        /* The raw URI keeps the client's own encoding and query, as nginx's rewrite does. */
        const char *raw = request->raw_uri;
        if (!raw || strncmp(raw, "/ear/", 5))
            return queue_error(connection, request, NULL, 400,
                               "The path must start with /ear/ as sent, not percent-encoded.");
        const char *target = raw + 4;
        if (!ear_site_target_is_clean(target))
            return queue_error(connection, request, NULL, 400,
                               "A '.' or '..' path segment, or an encoded '/'.");
        if (!server->options.dev)
            return queue_error(connection, request, NULL, 404,
                               "In production nginx serves /ear/; run ear-site with --dev to "
                               "forward it to Ear.");
        if (server->ear_redirect) {
            ear_site_buffer location = {0};
            ear_site_buffer_append_text(&location, server->ear_redirect);
            ear_site_buffer_append_text(&location, target + 1);
            char *text = ear_site_buffer_take(&location, NULL);
            enum MHD_Result result =
                text ? queue_redirect(connection, request, 307, text)
                     : queue_html(connection, request, 500, NULL, 0);
            free(text);
            return result;
        }
        const char *length_text = NULL;
        int lengths_differ = 0;
        header_list list = {.count = 0};
        MHD_get_connection_values(connection, MHD_HEADER_KIND, collect_header, &list);
        for (size_t i = 0; i < list.count; i++) {
            if (strcasecmp(list.headers[i].name, "content-length"))
                continue;
            lengths_differ |= length_text && strcmp(length_text, list.headers[i].value);
            length_text = list.headers[i].value;
        }
        /* Two lengths are how requests get smuggled past a proxy: refused, as nginx does. */
        if (lengths_differ || list.overflow)
            return queue_error(connection, request, NULL, 400,
                               "Conflicting Content-Length headers, or too many headers.");
        const char *encoding =
            MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Transfer-Encoding");
        if (encoding && strcasecmp(encoding, "identity")) {
            request->buffering = 1; /* chunked: the length is known at the end */
        } else if (length_text) {
            char *end;
            errno = 0;
            unsigned long long length = strtoull(length_text, &end, 10);
            if (!*length_text || *end || errno || *length_text == '-')
                return queue_error(connection, request, NULL, 400, "A bad Content-Length.");
            if (length > EAR_SITE_MAX_UPLOAD_BYTES)
                return queue_error(connection, request, NULL, 413,
                                   "Uploads are limited to 50 MiB.");
            request->content_length = (int64_t)length;
        }
        if (!request->buffering) {
            ear_error err;
            if (open_upstream(server, connection, request, target, &err) != 0)
                return queue_bad_gateway(server, connection, request, 502, err.message);
        }
        return MHD_YES;
    }
    if (request->status) {
        /* Answered early (413, 502): what is left of the upload is dropped. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        if (request->buffering) {
            /* libmicrohttpd takes no answer in the middle of a body: the rest is read and
             * dropped, 413 comes at the end, and a client that never stops is cut off. */
            request->received += size;
            if (request->received > EAR_SITE_MAX_UPLOAD_BYTES) {
                ear_site_buffer_free(&request->body);
                return request->received > 4 * EAR_SITE_MAX_UPLOAD_BYTES ? MHD_NO : MHD_YES;
            }
            if (ear_site_buffer_append(&request->body, upload_data, size) != 0)
                return queue_html(connection, request, 500, NULL, 0);
        } else if (!request->upstream_failed) {
            /* Ear may refuse an upload and close before reading it all: what it answered
             * is still relayed below, so the failure only stops the sending. */
            if (ear_site_proxy_send(request->proxy, upload_data, size, NULL) != 0)
                request->upstream_failed = 1;
        }
        return MHD_YES;
    }
    if (request->buffering && request->received > EAR_SITE_MAX_UPLOAD_BYTES)
        return queue_error(connection, request, NULL, 413, "Uploads are limited to 50 MiB.");
    if (request->buffering) {
        ear_error err;
        request->content_length = (int64_t)request->body.size;
        const char *target = request->raw_uri + 4;
        if (open_upstream(server, connection, request, target, &err) != 0 ||
            ear_site_proxy_send(request->proxy, request->body.data, request->body.size,
                                &err) != 0)
            return queue_bad_gateway(server, connection, request, 502, err.message);
        ear_site_buffer_free(&request->body);
    }
    return relay_answer(server, connection, request);
}

/* ------------------------------------------------------------------ pages */

/* The public address for the feed's links: --base-url, index.md's url, or what the request
 * says it reached (Host, and X-Forwarded-Proto from nginx). */
static char *feed_base_url(ear_site_server *server, const ear_site_content *content,
                           struct MHD_Connection *connection)
{
    ear_site_buffer out = {0};
    if (server->base_url) {
        ear_site_buffer_append_text(&out, server->base_url);
    } else if (content->home.url) {
        ear_site_buffer_append_text(&out, content->home.url);
    } else {
        const char *host = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Host");
        const char *scheme =
            MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-Forwarded-Proto");
        int host_ok = host && *host && strlen(host) < 256;
        for (const char *p = host; host_ok && *p; p++)
            host_ok = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]",
                             *p) != NULL;
        ear_site_buffer_printf(&out, "%s://%s",
                               scheme && !strcmp(scheme, "https") ? "https" : "http",
                               host_ok ? host : "localhost");
    }
    return ear_site_buffer_take(&out, NULL);
}

static enum MHD_Result serve_page(ear_site_server *server, struct MHD_Connection *connection,
                                  site_request *request, const char *url,
                                  const ear_site_content *content)
{
    size_t size = 0;
    char *html;
    if (!strcmp(url, "/")) {
        html = ear_site_render_home(content, &size);
        return queue_html(connection, request, 200, html, size);
    }
    if (!strcmp(url, "/blog/")) {
        html = ear_site_render_blog(content, &size);
        return queue_html(connection, request, 200, html, size);
    }
    if (!strncmp(url, "/blog/", 6)) {
        const char *slug = url + 6;
        const ear_site_page *post =
            ear_site_slug_is_valid(slug) ? ear_site_content_find_post(content, slug) : NULL;
        if (!post)
            return queue_error(connection, request, content, 404, "There is no such post.");
        html = ear_site_render_post(content, post, &size);
        return queue_html(connection, request, 200, html, size);
    }
    if (!strcmp(url, "/feed.xml")) {
        char *base = feed_base_url(server, content, connection);
        char *feed = base ? ear_site_render_feed(content, base, &size) : NULL;
        free(base);
        return queue_text(connection, request, 200, "application/atom+xml; charset=utf-8", feed,
                          size);
    }
    return queue_error(connection, request, content, 404, "There is no such page.");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **context)
{
    ear_site_server *server = cls;
    site_request *request = *context;
    if (!request || !request->raw_uri)
        return MHD_NO; /* out of memory when the request began */
    if (!request->started)
        snprintf(request->method, sizeof request->method, "%s", method);

    /* libmicrohttpd decodes %00 into the path, which would end it early as a C string. */
    if (!request->started && strcasestr(request->raw_uri, "%00")) {
        request->started = 1;
        return queue_error(connection, request, NULL, 400, "A NUL byte in the path.");
    }
    if (!strncmp(url, "/ear/", 5))
        return serve_ear(server, connection, request, upload_data, upload_data_size);

    /* Everything else is answered on the first call; a body, if any, is not read. */
    request->started = 1;
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        struct MHD_Response *response = NULL;
        size_t size = 0;
        char *html = ear_site_render_error(NULL, 405, "The site only answers GET and HEAD.",
                                           &size);
        if (html && !(response = MHD_create_response_from_buffer(size, html,
                                                                  MHD_RESPMEM_MUST_FREE)))
            free(html);
        if (!response)
            return MHD_NO;
        MHD_add_response_header(response, "Content-Type", "text/html; charset=utf-8");
        MHD_add_response_header(response, "Allow", "GET, HEAD");
        return queue(connection, request, 405, response);
    }
    if (!strcmp(url, "/ear"))
        return queue_redirect(connection, request, 301, "/ear/");
    if (!strcmp(url, "/blog"))
        return queue_redirect(connection, request, 301, "/blog/");
    if (!strcmp(url, "/healthz"))
        return queue_text(connection, request, 200, "text/plain; charset=utf-8",
                          strdup("ok\n"), 3);
    if (!strncmp(url, "/static/", 8))
        return serve_static(server, connection, request, url + 8);
    if (!strcmp(url, "/favicon.ico"))
        return serve_static(server, connection, request, "favicon.ico");

    if (server->content)
        return serve_page(server, connection, request, url, server->content);
    /* Dev mode: read the folder again, so an edited post shows on reload. */
    ear_error err;
    ear_site_content *content = ear_site_content_load(server->content_directory, &err);
    if (!content)
        return queue_error(connection, request, NULL, 500, err.message);
    enum MHD_Result result = serve_page(server, connection, request, url, content);
    ear_site_content_free(content);
    return result;
}

/* ------------------------------------------------------------------ start and stop */

ear_site_server *ear_site_server_start(const ear_site_options *options, ear_error *err)
{
    struct addrinfo *address = NULL;
    ear_site_server *server = calloc(1, sizeof *server);
    if (!server) {
        ear_error_set(err, "out of memory");
        return NULL;
    }
    server->options = *options;
    if (!(server->content_directory = strdup(options->content)) ||
        (options->base_url && !(server->base_url = strdup(options->base_url)))) {
        ear_error_set(err, "out of memory");
        goto fail;
    }
    if (options->ear_redirect) {
        /* Kept with exactly one trailing slash: the forwarded path follows it. */
        ear_site_buffer redirect = {0};
        ear_site_buffer_append_text(&redirect, options->ear_redirect);
        while (redirect.size && redirect.data[redirect.size - 1] == '/')
            redirect.data[--redirect.size] = 0;
        ear_site_buffer_append_text(&redirect, "/");
        if (!(server->ear_redirect = ear_site_buffer_take(&redirect, NULL))) {
            ear_error_set(err, "out of memory");
            goto fail;
        }
    }
    /* Loading now, in dev mode too, reports a broken content folder at start. */
    ear_site_content *content = ear_site_content_load(options->content, err);
    if (!content)
        goto fail;
    if (options->dev)
        ear_site_content_free(content);
    else
        server->content = content;
    char static_path[PATH_MAX];
    snprintf(static_path, sizeof static_path, "%s/static", options->content);
    char resolved[PATH_MAX];
    if (realpath(static_path, resolved) && !(server->static_root = strdup(resolved))) {
        ear_error_set(err, "out of memory");
        goto fail;
    }

    char port[16];
    snprintf(port, sizeof port, "%d", options->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    int status = getaddrinfo(options->host, port, &hints, &address);
    if (status != 0) {
        ear_error_set(err, "%s: %s", options->host, gai_strerror(status));
        goto fail;
    }
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                         MHD_USE_ERROR_LOG;
    if (address->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    server->daemon = MHD_start_daemon(
        flags, (uint16_t)options->port, NULL, NULL, handle, server,
        MHD_OPTION_SOCK_ADDR, address->ai_addr,
        MHD_OPTION_URI_LOG_CALLBACK, request_begin, server,
        MHD_OPTION_NOTIFY_COMPLETED, request_end, server,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY_BYTES,
        MHD_OPTION_CONNECTION_LIMIT, 256u,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
        MHD_OPTION_END);
    if (!server->daemon) {
        ear_error_set(err, "cannot listen on %s port %d (in use, or not an address of this "
                           "machine)", options->host, options->port);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(server->daemon,
                                                           MHD_DAEMON_INFO_BIND_PORT);
    server->port = info ? info->port : options->port;
    freeaddrinfo(address);
    return server;
fail:
    if (address)
        freeaddrinfo(address);
    ear_site_server_stop(server);
    return NULL;
}

int ear_site_server_port(const ear_site_server *server)
{
    return server->port;
}

void ear_site_server_stop(ear_site_server *server)
{
    if (!server)
        return;
    if (server->daemon)
        MHD_stop_daemon(server->daemon);
    ear_site_content_free(server->content);
    free(server->content_directory);
    free(server->static_root);
    free(server->base_url);
    free(server->ear_redirect);
    free(server);
}
