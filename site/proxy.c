/* Dev mode's reverse proxy to Ear, on plain sockets rather than libcurl: the upstream is one
 * known HTTP/1.0 server on loopback, and the request body arrives from libmicrohttpd in
 * pushed chunks, which a blocking socket forwards as they come (libcurl pulls its upload
 * through a read callback, which would need a thread or the whole body in memory). */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <fcntl.h>

#include "site.h"

#define CONNECT_TIMEOUT_MS 10000
#define MAX_RESPONSE_HEAD_BYTES (64 * 1024)

struct ear_site_proxy {
    int socket;
    char *buffer; /* the answer head, then the first body bytes that came with it */
    size_t filled;
    size_t body_position; /* body bytes in buffer[body_position..filled) not yet handed out */
};

int ear_site_upstream_parse(const char *text, ear_site_upstream *upstream, ear_error *err)
{
    const char *host = text, *host_end, *port;
    if (*text == '[') {
        host = text + 1;
        host_end = strchr(host, ']');
        if (!host_end || host_end[1] != ':')
            return ear_error_set(err, "'%s': expected [IPV6]:PORT", text);
        port = host_end + 2;
    } else {
        host_end = strrchr(text, ':');
        if (!host_end)
            return ear_error_set(err, "'%s': expected HOST:PORT", text);
        port = host_end + 1;
    }
    size_t host_length = (size_t)(host_end - host);
    if (host_length == 0 || host_length >= sizeof upstream->host)
        return ear_error_set(err, "'%s': no host, or a host name too long", text);
    char *end;
    long number = strtol(port, &end, 10);
    if (!*port || *end || number < 1 || number > 65535)
        return ear_error_set(err, "'%s': the port must be a number from 1 to 65535", text);
    memcpy(upstream->host, host, host_length);
    upstream->host[host_length] = 0;
    snprintf(upstream->port, sizeof upstream->port, "%ld", number);
    return 0;
}

/* Whether [start, end) spells "." or ".." with each dot written plainly or as %2e. */
static int is_dot_segment(const char *start, const char *end)
{
    int dots = 0;
    while (start < end) {
        if (*start == '.') {
            start++;
        } else if (end - start >= 3 && start[0] == '%' && start[1] == '2' &&
                   (start[2] == 'e' || start[2] == 'E')) {
            start += 3;
        } else {
            return 0;
        }
        dots++;
    }
    return dots == 1 || dots == 2;
}

int ear_site_target_is_clean(const char *target)
{
    if (target[0] != '/')
        return 0;
    const char *path_end = target + strcspn(target, "?#");
    for (const char *segment = target + 1; segment <= path_end;) {
        const char *end = segment;
        while (end < path_end && *end != '/')
            end++;
        /* A %2f inside a segment would be a slash to a server that decodes first. */
        for (const char *p = segment; p + 2 < end; p++)
            if (p[0] == '%' && p[1] == '2' && (p[2] == 'f' || p[2] == 'F'))
                return 0;
        if (is_dot_segment(segment, end))
            return 0;
        segment = end + 1;
    }
    return 1;
}

int ear_site_header_is_hop_by_hop(const char *name)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "proxy-authenticate", "proxy-authorization", "te",
                                        "trailer", "transfer-encoding", "upgrade", "expect"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(name, names[i]))
            return 1;
    return 0;
}

/* Whether the comma-separated list holds name (case-insensitively), as Connection's value
 * names further headers that end at this hop. */
static int list_has_token(const char *list, const char *name)
{
    size_t length = strlen(name);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        if ((size_t)(p - start) == length && length && !strncasecmp(start, name, length))
            return 1;
    }
    return 0;
}

static int is_token(const char *text)
{
    if (!*text)
        return 0;
    for (const char *p = text; *p; p++)
        if (!strchr("!#$%&'*+-.^_`|~", *p) &&
            !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return 0;
    return 1;
}

static int is_field_value(const char *text)
{
    for (const char *p = text; *p; p++)
        if (*p == '\r' || *p == '\n')
            return 0;
    return 1;
}

char *ear_site_proxy_request_head(const char *method, const char *target,
                                  const ear_site_header *headers, size_t header_count,
                                  const char *client_address, int64_t content_length,
                                  size_t *size, ear_error *err)
{
    if (!is_token(method)) {
        ear_error_set(err, "bad method");
        return NULL;
    }
    if (target[0] != '/') {
        ear_error_set(err, "the target must start with '/'");
        return NULL;
    }
    for (const char *p = target; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            ear_error_set(err, "a space or control character in the target");
            return NULL;
        }
    const char *connection = NULL, *host = NULL;
    ear_site_buffer forwarded_for = {0};
    for (size_t i = 0; i < header_count; i++) {
        if (!is_token(headers[i].name) || !is_field_value(headers[i].value)) {
            ear_error_set(err, "a malformed header");
            ear_site_buffer_free(&forwarded_for);
            return NULL;
        }
        if (!strcasecmp(headers[i].name, "connection"))
            connection = headers[i].value;
        else if (!strcasecmp(headers[i].name, "host"))
            host = headers[i].value;
        else if (!strcasecmp(headers[i].name, "x-forwarded-for"))
            ear_site_buffer_printf(&forwarded_for, "%s, ", headers[i].value);
    }
    ear_site_buffer_append_text(&forwarded_for, client_address);

    ear_site_buffer out = {0};
    ear_site_buffer_printf(&out, "%s %s HTTP/1.0\r\n", method, target);
    if (host)
        ear_site_buffer_printf(&out, "Host: %s\r\n", host);
    ear_site_buffer_printf(&out, "X-Real-IP: %s\r\nX-Forwarded-For: %s\r\n"
                                 "X-Forwarded-Proto: http\r\nConnection: close\r\n",
                           client_address, forwarded_for.data ? forwarded_for.data : "");
    if (content_length >= 0)
        ear_site_buffer_printf(&out, "Content-Length: %lld\r\n", (long long)content_length);
    static const char *const replaced[] = {"host", "x-real-ip", "x-forwarded-for",
                                           "x-forwarded-proto", "content-length"};
    for (size_t i = 0; i < header_count; i++) {
        int skip = ear_site_header_is_hop_by_hop(headers[i].name) ||
                   (connection && list_has_token(connection, headers[i].name));
        for (size_t k = 0; k < sizeof replaced / sizeof replaced[0]; k++)
            skip |= !strcasecmp(headers[i].name, replaced[k]);
        if (!skip)
            ear_site_buffer_printf(&out, "%s: %s\r\n", headers[i].name, headers[i].value);
    }
    ear_site_buffer_append_text(&out, "\r\n");
    ear_site_buffer_free(&forwarded_for);
    char *head = ear_site_buffer_take(&out, size);
    if (!head)
        ear_error_set(err, "out of memory");
    return head;
}

int ear_site_response_head_parse(char *text, size_t size, ear_site_response_head *head,
                                 ear_error *err)
{
    memset(head, 0, sizeof *head);
    head->content_length = -1;
    char *end = text + size;
    char *line = text;
    char *line_end = memchr(line, '\n', size);
    if (!line_end)
        return ear_error_set(err, "no status line");
    *line_end = 0;
    if (line_end > line && line_end[-1] == '\r')
        line_end[-1] = 0;
    if (strncmp(line, "HTTP/1.", 7) || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
        line[9] < '1' || line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' ||
        line[11] > '9' || (line[12] != ' ' && line[12] != 0))
        return ear_error_set(err, "not an HTTP/1.x status line: '%.60s'", line);
    head->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    for (line = line_end + 1; line < end; line = line_end + 1) {
        line_end = memchr(line, '\n', (size_t)(end - line));
        if (!line_end)
            return ear_error_set(err, "a header line without its end");
        *line_end = 0;
        if (line_end > line && line_end[-1] == '\r')
            line_end[-1] = 0;
        if (!*line)
            return 0; /* the empty line that ends the head */
        if (*line == ' ' || *line == '\t')
            return ear_error_set(err, "a folded header line (obsolete, refused)");
        char *colon = strchr(line, ':');
        if (!colon)
            return ear_error_set(err, "a header line without ':'");
        *colon = 0;
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        for (char *trail = value + strlen(value); trail > value && (trail[-1] == ' ' ||
                                                                    trail[-1] == '\t');)
            *--trail = 0;
        if (!is_token(line))
            return ear_error_set(err, "a malformed header name");
        if (!strcasecmp(line, "content-length")) {
            char *number_end;
            errno = 0;
            long long length = strtoll(value, &number_end, 10);
            if (!*value || *number_end || length < 0 || errno ||
                (head->content_length >= 0 && head->content_length != length))
                return ear_error_set(err, "a bad Content-Length");
            head->content_length = length;
        }
        if (!strcasecmp(line, "transfer-encoding") && list_has_token(value, "chunked"))
            head->chunked = 1;
        if (head->header_count == EAR_SITE_MAX_RESPONSE_HEADERS)
            return ear_error_set(err, "more than %d headers", EAR_SITE_MAX_RESPONSE_HEADERS);
        head->headers[head->header_count].name = line;
        head->headers[head->header_count].value = value;
        head->header_count++;
    }
    return ear_error_set(err, "the head does not end with an empty line");
}

static int connect_with_timeout(const struct addrinfo *address, ear_error *err)
{
    int fd = socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    address->ai_protocol);
    if (fd < 0)
        return ear_error_set(err, "socket: %s", strerror(errno));
    if (connect(fd, address->ai_addr, address->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            ear_error_set(err, "%s", strerror(errno));
            goto fail;
        }
        struct pollfd wait = {.fd = fd, .events = POLLOUT};
        int ready;
        do
            ready = poll(&wait, 1, CONNECT_TIMEOUT_MS);
        while (ready < 0 && errno == EINTR);
        if (ready == 0) {
            ear_error_set(err, "connection timed out");
            goto fail;
        }
        int problem = 0;
        socklen_t length = sizeof problem;
        if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &problem, &length) != 0 || problem) {
            ear_error_set(err, "%s", strerror(problem ? problem : errno));
            goto fail;
        }
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        ear_error_set(err, "fcntl: %s", strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

ear_site_proxy *ear_site_proxy_open(const ear_site_upstream *upstream, const char *head,
                                    size_t head_size, int timeout_s, ear_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *addresses = NULL;
    ear_site_proxy *proxy = calloc(1, sizeof *proxy);
    if (proxy)
        proxy->socket = -1;
    if (!proxy || !(proxy->buffer = malloc(MAX_RESPONSE_HEAD_BYTES))) {
        ear_error_set(err, "out of memory");
        goto fail;
    }
    int status = getaddrinfo(upstream->host, upstream->port, &hints, &addresses);
    if (status != 0) {
        ear_error_set(err, "%s:%s: %s", upstream->host, upstream->port, gai_strerror(status));
        goto fail;
    }
    ear_error connect_error = {"no address"};
    for (struct addrinfo *address = addresses; address && proxy->socket < 0;
         address = address->ai_next)
        proxy->socket = connect_with_timeout(address, &connect_error);
    if (proxy->socket < 0) {
        ear_error_set(err, "%s:%s: %s", upstream->host, upstream->port, connect_error.message);
        goto fail;
    }
    struct timeval timeout = {.tv_sec = timeout_s};
    setsockopt(proxy->socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(proxy->socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (ear_site_proxy_send(proxy, head, head_size, err) != 0)
        goto fail;
    freeaddrinfo(addresses);
    return proxy;
fail:
    if (addresses)
        freeaddrinfo(addresses);
    ear_site_proxy_close(proxy);
    return NULL;
}

int ear_site_proxy_send(ear_site_proxy *proxy, const void *data, size_t size, ear_error *err)
{
    const char *next = data;
    while (size) {
        ssize_t sent = send(proxy->socket, next, size, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0)
            return ear_error_set(err, "sending to Ear: %s",
                                 errno == EAGAIN ? "timed out" : strerror(errno));
        next += sent;
        size -= (size_t)sent;
    }
    return 0;
}

/* Where the head in buffer[0..filled) ends (past its empty line), or 0 if not yet. */
static size_t head_end(const char *buffer, size_t filled)
{
    for (size_t i = 0; i + 1 < filled; i++) {
        if (buffer[i] != '\n')
            continue;
        if (buffer[i + 1] == '\n')
            return i + 2;
        if (i + 2 < filled && buffer[i + 1] == '\r' && buffer[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

int ear_site_proxy_read_head(ear_site_proxy *proxy, ear_site_response_head *head,
                             int *timed_out, ear_error *err)
{
    *timed_out = 0;
    size_t end = 0;
    while (!(end = head_end(proxy->buffer, proxy->filled))) {
        if (proxy->filled == MAX_RESPONSE_HEAD_BYTES)
            return ear_error_set(err, "Ear's answer head is over %d bytes",
                                 MAX_RESPONSE_HEAD_BYTES);
        ssize_t got = recv(proxy->socket, proxy->buffer + proxy->filled,
                           MAX_RESPONSE_HEAD_BYTES - proxy->filled, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            *timed_out = 1;
            return ear_error_set(err, "Ear did not answer in time");
        }
        if (got < 0)
            return ear_error_set(err, "reading Ear's answer: %s", strerror(errno));
        if (got == 0)
            return ear_error_set(err, "Ear closed the connection without answering");
        proxy->filled += (size_t)got;
    }
    ear_error parse_error;
    if (ear_site_response_head_parse(proxy->buffer, end, head, &parse_error) != 0)
        return ear_error_set(err, "Ear's answer: %s", parse_error.message);
    proxy->body_position = end;
    return 0;
}

long ear_site_proxy_read_body(ear_site_proxy *proxy, char *data, size_t max)
{
    if (proxy->body_position < proxy->filled) {
        size_t count = proxy->filled - proxy->body_position;
        if (count > max)
            count = max;
        memcpy(data, proxy->buffer + proxy->body_position, count);
        proxy->body_position += count;
        return (long)count;
    }
    for (;;) {
        ssize_t got = recv(proxy->socket, data, max, 0);
        if (got < 0 && errno == EINTR)
            continue;
        return got < 0 ? -1 : (long)got;
    }
}

void ear_site_proxy_close(ear_site_proxy *proxy)
{
    if (!proxy)
        return;
    if (proxy->socket >= 0)
        close(proxy->socket);
    free(proxy->buffer);
    free(proxy);
}
