/* The main site: a home page and a blog rendered from Markdown (cmark), served on its own
 * port beside Ear by the small `ear-site` binary. It never loads a model. In production nginx
 * sends /ear/ to Ear; in dev mode the site forwards /ear/ itself (proxy.c).
 *
 * A content folder holds:
 *   index.md              the home page; its front matter also names the site
 *   posts/<slug>.md       one blog post per file, at /blog/<slug>
 *   templates/layout.html the page around every page's HTML (optional: a built-in one)
 *   static/               files served as they are under /static/
 * Front matter is a block of `key: value` lines between two `---` lines at the top. */
#ifndef EAR_SITE_H
#define EAR_SITE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Files larger than this are refused: a page is text, not a data set. */
#define EAR_SITE_MAX_FILE_BYTES ((size_t)1 << 20)
#define EAR_SITE_MAX_POSTS 2000
/* Requests forwarded to Ear carry at most this much body, as nginx's client_max_body_size. */
#define EAR_SITE_MAX_UPLOAD_BYTES ((uint64_t)50 << 20)

/* ------------------------------------------------------------------ growable text */

typedef struct ear_site_buffer {
    char *data; /* NUL-terminated while not failed */
    size_t size;
    size_t capacity;
    int failed; /* an allocation failed; later appends do nothing */
} ear_site_buffer;

/* Appends size bytes; returns -1 (and marks the buffer failed) when out of memory. */
int ear_site_buffer_append(ear_site_buffer *buffer, const char *data, size_t size);
/* Appends a NUL-terminated string. */
int ear_site_buffer_append_text(ear_site_buffer *buffer, const char *text);
/* Appends printf-style text. */
int ear_site_buffer_printf(ear_site_buffer *buffer, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends text with &, <, >, " and ' escaped, for HTML and XML text and attributes. */
int ear_site_buffer_append_escaped(ear_site_buffer *buffer, const char *text);
/* Hands the text over to the caller (NULL if any append failed) and empties the buffer. */
char *ear_site_buffer_take(ear_site_buffer *buffer, size_t *size);
/* Frees what the buffer holds. */
void ear_site_buffer_free(ear_site_buffer *buffer);

/* ------------------------------------------------------------------ content */

typedef struct ear_site_page {
    char *slug;    /* the file's stem ("index" for the home page) */
    char *title;   /* required */
    char *date;    /* YYYY-MM-DD; required for posts */
    char *updated; /* YYYY-MM-DD or NULL; the feed's <updated> when later than date */
    char *summary; /* may be NULL */
    char *author;  /* home: the site's author; posts: an override, or NULL */
    char *url;     /* home only: the public address, for the feed's absolute links */
    char *tagline; /* home only: the line under the site's title */
    int draft;     /* posts with `draft: true` are left out */
    char *html;    /* the Markdown body rendered by cmark */
} ear_site_page;

typedef struct ear_site_content {
    char *directory;
    ear_site_page home;
    ear_site_page *posts; /* newest first; drafts left out */
    size_t post_count;
    char *layout; /* the page template */
} ear_site_content;

/* Parses front matter and the Markdown body of one file into page (fields malloc'd; the
 * caller frees them with ear_site_page_free even on failure). name is for messages only. */
int ear_site_page_parse(const char *text, size_t size, const char *name, ear_site_page *page,
                        ear_error *err);

/* Frees a page's fields and zeroes it. */
void ear_site_page_free(ear_site_page *page);

/* Whether text is a calendar date written YYYY-MM-DD. */
int ear_site_date_is_valid(const char *text);

/* Whether a post's slug is safe in a URL and a file name: 1-100 of [a-z0-9_-], not
 * starting with '-' or '_'. */
int ear_site_slug_is_valid(const char *slug);

/* Whether a relative path below a served folder stays below it: no empty, ".", ".." or
 * hidden segments, no leading '/', no backslash or control characters. */
int ear_site_path_is_safe(const char *path);

/* Reads and renders a whole content folder. Any bad file is an error naming it. */
ear_site_content *ear_site_content_load(const char *directory, ear_error *err);

/* Frees what ear_site_content_load returned (NULL is fine). */
void ear_site_content_free(ear_site_content *content);

/* The post with that slug, or NULL. */
const ear_site_page *ear_site_content_find_post(const ear_site_content *content,
                                                const char *slug);

/* ------------------------------------------------------------------ rendering */

/* Checks that a layout uses only the placeholders {{title}}, {{site_title}}, {{tagline}},
 * {{author}}, {{year}} and {{content}}, each closed. */
int ear_site_layout_check(const char *layout, ear_error *err);

/* The layout built into the binary, for a content folder without templates/layout.html. */
const char *ear_site_default_layout(void);

/* Each returns a malloc'd HTML document (its size in *size), or NULL when out of memory. */
char *ear_site_render_home(const ear_site_content *content, size_t *size);
char *ear_site_render_blog(const ear_site_content *content, size_t *size);
char *ear_site_render_post(const ear_site_content *content, const ear_site_page *post,
                           size_t *size);
/* A page for an error status; message is plain text. content may be NULL (a bare page). */
char *ear_site_render_error(const ear_site_content *content, int status, const char *message,
                            size_t *size);

/* The Atom feed; base_url is the site's public address ("https://example.org"), with or
 * without a trailing slash. */
char *ear_site_render_feed(const ear_site_content *content, const char *base_url,
                           size_t *size);

/* ------------------------------------------------------------------ dev-mode proxy */

typedef struct ear_site_upstream {
    char host[256];
    char port[16];
} ear_site_upstream;

/* Parses HOST:PORT (or [IPv6]:PORT). */
int ear_site_upstream_parse(const char *text, ear_site_upstream *upstream, ear_error *err);

/* Whether a request target (path and query) is safe to forward: it starts with '/' and its
 * path has no "." or ".." segment, written plainly or percent-encoded (nginx refuses or
 * resolves these before they reach Ear; dev mode refuses them). */
int ear_site_target_is_clean(const char *target);

/* One header of a request or response; name and value point into someone else's memory. */
typedef struct ear_site_header {
    const char *name;
    const char *value;
} ear_site_header;

/* Whether a header belongs to one connection only (Connection, Keep-Alive, Transfer-Encoding,
 * TE, Trailer, Upgrade, Proxy-*, Expect) and so is never relayed. */
int ear_site_header_is_hop_by_hop(const char *name);

/* The request head sent to Ear, as nginx sends it with the deploy/ configuration: HTTP/1.0
 * (so the answer is never chunked and ends when Ear closes), `Connection: close`, Host kept,
 * X-Real-IP, X-Forwarded-For (appended to), X-Forwarded-Proto and Content-Length set, the
 * client's other end-to-end headers as they came. content_length < 0: no body. target is the
 * path with /ear stripped, plus the query. NULL if a header holds CR or LF, or out of memory. */
char *ear_site_proxy_request_head(const char *method, const char *target,
                                  const ear_site_header *headers, size_t header_count,
                                  const char *client_address, int64_t content_length,
                                  size_t *size, ear_error *err);

#define EAR_SITE_MAX_RESPONSE_HEADERS 64

typedef struct ear_site_response_head {
    int status;
    ear_site_header headers[EAR_SITE_MAX_RESPONSE_HEADERS];
    size_t header_count;
    int64_t content_length; /* -1 when not given: the body ends at end of stream */
    int chunked;            /* Transfer-Encoding: chunked was given */
} ear_site_response_head;

/* Parses an HTTP/1.x status line and headers, text[0..size) ending in an empty line. The
 * text is modified in place (names and values are NUL-terminated inside it). */
int ear_site_response_head_parse(char *text, size_t size, ear_site_response_head *head,
                                 ear_error *err);

/* A connection to Ear carrying one request. */
typedef struct ear_site_proxy ear_site_proxy;

/* Connects (10 s at most) and sends the request head; timeout_s bounds every later wait. */
ear_site_proxy *ear_site_proxy_open(const ear_site_upstream *upstream, const char *head,
                                    size_t head_size, int timeout_s, ear_error *err);

/* Sends body bytes. -1 when Ear has stopped reading (it may still have answered). */
int ear_site_proxy_send(ear_site_proxy *proxy, const void *data, size_t size, ear_error *err);

/* Reads and parses Ear's answer head (64 KiB at most). *timed_out tells 504 from 502. */
int ear_site_proxy_read_head(ear_site_proxy *proxy, ear_site_response_head *head,
                             int *timed_out, ear_error *err);

/* Reads up to max body bytes: >0 bytes, 0 at end of stream, -1 on error or timeout. */
long ear_site_proxy_read_body(ear_site_proxy *proxy, char *data, size_t max);

/* Closes the connection and frees the proxy (NULL is fine). */
void ear_site_proxy_close(ear_site_proxy *proxy);

/* ------------------------------------------------------------------ server */

typedef struct ear_site_options {
    const char *host;          /* address to listen on */
    int port;
    const char *content;       /* the content folder */
    const char *base_url;      /* overrides index.md's url for the feed; may be NULL */
    int dev;                   /* forward /ear/ to the upstream; reload content per request */
    ear_site_upstream upstream;
    const char *ear_redirect;  /* with dev: redirect /ear/… there instead of forwarding */
    int quiet;                 /* no access log */
} ear_site_options;

typedef struct ear_site_server ear_site_server;

/* Loads the content (failing on any bad file) and starts serving on background threads. */
ear_site_server *ear_site_server_start(const ear_site_options *options, ear_error *err);

/* The port the server listens on (the one the system picked when options->port was 0). */
int ear_site_server_port(const ear_site_server *server);

/* Stops accepting, finishes the requests under way and frees everything (NULL is fine). */
void ear_site_server_stop(ear_site_server *server);

#endif
