/* The dataset's files, GET /data/<path> (nested folders allowed): opened one
 * segment at a time relative to the root folder's descriptor, never by a path and
 * never through a symbolic link, so that nothing can reach outside it; sent by
 * the kernel from the descriptor. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/internal.h"

int ear_http_file_name_is_safe(const char *name)
{
    /* Percent-encodings still there after the one decoding: a name that asks
     * for one of these bytes in disguise is refused, not guessed at. */
    static const char *const encoded[] = {"%2e", "%2f", "%5c", "%00"};
    size_t length = strlen(name);
    if (length == 0 || length > 255 || name[0] == '.')
        return 0;
    if (strstr(name, "..") || strchr(name, '/') || strchr(name, '\\'))
        return 0;
    for (size_t i = 0; i < length; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return 0;
    for (size_t i = 0; i < sizeof encoded / sizeof encoded[0]; i++)
        for (const char *p = name; (p = strchr(p, '%')) != NULL; p++)
            if (strncasecmp(p, encoded[i], 3) == 0)
                return 0;
    return 1;
}

/* Reads a decimal number of at most 19 digits; the end of it in *end. */
static int parse_offset(const char *text, uint64_t *value, const char **end)
{
    uint64_t v = 0;
    int digits = 0;
    while (isdigit((unsigned char)*text)) {
        if (++digits > 19)
            return -1;
        v = v * 10 + (uint64_t)(*text - '0');
        text++;
    }
    if (digits == 0)
        return -1;
    *value = v;
    *end = text;
    return 0;
}

ear_http_range_kind ear_http_parse_range(const char *header, uint64_t size, uint64_t *first,
                                         uint64_t *last)
{
    if (!header)
        return EAR_HTTP_RANGE_NONE;
    while (*header == ' ' || *header == '\t')
        header++;
    if (strncasecmp(header, "bytes=", 6) != 0)
        return EAR_HTTP_RANGE_NONE;
    const char *p = header + 6;
    while (*p == ' ')
        p++;
    if (strchr(p, ','))
        return EAR_HTTP_RANGE_NONE;
    uint64_t a = 0, b = 0;
    const char *end;
    if (*p == '-') {
        /* bytes=-n: the last n bytes */
        if (parse_offset(p + 1, &b, &end) != 0)
            return EAR_HTTP_RANGE_NONE;
        while (*end == ' ')
            end++;
        if (*end)
            return EAR_HTTP_RANGE_NONE;
        if (b == 0 || size == 0)
            return EAR_HTTP_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return EAR_HTTP_RANGE_PARTIAL;
    }
    if (parse_offset(p, &a, &end) != 0 || *end != '-')
        return EAR_HTTP_RANGE_NONE;
    p = end + 1;
    int open_ended = 1;
    if (isdigit((unsigned char)*p)) {
        if (parse_offset(p, &b, &end) != 0)
            return EAR_HTTP_RANGE_NONE;
        open_ended = 0;
        p = end;
    }
    while (*p == ' ')
        p++;
    if (*p || (!open_ended && b < a))
        return EAR_HTTP_RANGE_NONE;
    if (a >= size)
        return EAR_HTTP_RANGE_UNSATISFIABLE;
    *first = a;
    *last = open_ended || b >= size ? size - 1 : b;
    return EAR_HTTP_RANGE_PARTIAL;
}

/* The opaque part of an entity tag, without W/ and quotes, as [*start, *start + *length). */
static void etag_opaque(const char *tag, size_t tag_length, const char **start, size_t *length)
{
    if (tag_length >= 2 && tag[0] == 'W' && tag[1] == '/') {
        tag += 2;
        tag_length -= 2;
    }
    if (tag_length >= 2 && tag[0] == '"' && tag[tag_length - 1] == '"') {
        tag++;
        tag_length -= 2;
    }
    *start = tag;
    *length = tag_length;
}

int ear_http_etag_matches(const char *if_none_match, const char *etag)
{
    if (!if_none_match || !etag)
        return 0;
    const char *ours;
    size_t ours_length;
    etag_opaque(etag, strlen(etag), &ours, &ours_length);
    const char *p = if_none_match;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t length = (size_t)(end - start);
        if (length == 1 && *start == '*')
            return 1;
        const char *theirs;
        size_t theirs_length;
        etag_opaque(start, length, &theirs, &theirs_length);
        if (theirs_length == ours_length && memcmp(theirs, ours, ours_length) == 0)
            return 1;
    }
    return 0;
}

void ear_http_file_etag(char *out, size_t out_size, uint64_t bytes, const struct timespec *mtime)
{
    snprintf(out, out_size, "\"%" PRIx64 "-%llx-%lx\"", bytes, (unsigned long long)mtime->tv_sec,
             (unsigned long)mtime->tv_nsec);
}

static const char *const day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void ear_http_format_date(char *out, size_t out_size, time_t when)
{
    struct tm t;
    gmtime_r(&when, &t);
    /* By hand rather than strftime: the names must be English whatever the locale. */
    snprintf(out, out_size, "%s, %02d %s %04d %02d:%02d:%02d GMT", day_names[t.tm_wday % 7],
             t.tm_mday, month_names[t.tm_mon % 12], t.tm_year + 1900, t.tm_hour, t.tm_min,
             t.tm_sec);
}

int ear_http_parse_date(const char *text, time_t *when)
{
    char day[4], month[4], zone[4];
    int mday, year, hour, minute, second, consumed = 0;
    if (!text || sscanf(text, "%3s, %d %3s %d %d:%d:%d %3s%n", day, &mday, month, &year, &hour,
                        &minute, &second, zone, &consumed) != 8)
        return -1;
    if (text[consumed] != 0 || strlen(day) != 3 || text[3] != ',' || strcmp(zone, "GMT") != 0)
        return -1;
    int mon = -1;
    for (int i = 0; i < 12; i++)
        if (strcmp(month, month_names[i]) == 0)
            mon = i;
    if (mon < 0 || mday < 1 || mday > 31 || year < 1970 || year > 9999 || hour > 23 ||
        minute > 59 || second > 60 || hour < 0 || minute < 0 || second < 0)
        return -1;
    struct tm t = {0};
    t.tm_mday = mday;
    t.tm_mon = mon;
    t.tm_year = year - 1900;
    t.tm_hour = hour;
    t.tm_min = minute;
    t.tm_sec = second;
    *when = timegm(&t);
    return 0;
}

int ear_http_open_data_path(int root_fd, const char *path)
{
    if (root_fd < 0 || strlen(path) > 4096)
        return -1;
    char segment[256];
    int dir = root_fd, fd = -1;
    for (const char *p = path;;) {
        const char *slash = strchr(p, '/');
        size_t length = slash ? (size_t)(slash - p) : strlen(p);
        if (length == 0 || length >= sizeof segment)
            break;
        memcpy(segment, p, length);
        segment[length] = 0;
        /* Each folder and the file itself as the one-name check allows. */
        if (!ear_http_file_name_is_safe(segment))
            break;
        /* O_NOFOLLOW on every step: a link cannot lead out of the dataset. O_NONBLOCK:
         * a FIFO put in the folder must not hang the event loop on open. */
        int next = openat(dir, segment,
                          (slash ? O_DIRECTORY | O_PATH : O_RDONLY | O_NOCTTY | O_NONBLOCK) |
                              O_NOFOLLOW | O_CLOEXEC);
        if (dir != root_fd)
            close(dir);
        dir = root_fd;
        if (next < 0)
            break;
        if (!slash) {
            fd = next;
            break;
        }
        dir = next;
        p = slash + 1;
    }
    if (dir != root_fd)
        close(dir);
    return fd;
}

struct MHD_Response *ear_http_file_response(struct MHD_Connection *connection, int dir_fd,
                                            const char *name, unsigned *status, uint64_t *bytes)
{
    struct MHD_Response *response = NULL;
    int fd = ear_http_open_data_path(dir_fd, name);
    if (fd < 0)
        goto fail;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto fail;
    uint64_t size = (uint64_t)st.st_size;
    char etag[64], modified[40];
    ear_http_file_etag(etag, sizeof etag, size, &st.st_mtim);
    ear_http_format_date(modified, sizeof modified, st.st_mtim.tv_sec);

    const char *if_none_match =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    const char *if_modified_since = MHD_lookup_connection_value(
        connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
    time_t since;
    int not_modified = 0;
    if (if_none_match)
        not_modified = ear_http_etag_matches(if_none_match, etag);
    else if (ear_http_parse_date(if_modified_since, &since) == 0)
        not_modified = st.st_mtim.tv_sec <= since;

    const char *range_header =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
    const char *if_range =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_RANGE);
    /* If-Range: a range of a file that has changed since would splice two versions. */
    if (if_range && strcmp(if_range, etag) != 0 && strcmp(if_range, modified) != 0)
        range_header = NULL;
    uint64_t first = 0, last = size ? size - 1 : 0;
    ear_http_range_kind range = ear_http_parse_range(range_header, size, &first, &last);
    char content_range[96];

    if (not_modified) {
        response = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        *status = MHD_HTTP_NOT_MODIFIED;
        *bytes = 0;
    } else if (range == EAR_HTTP_RANGE_UNSATISFIABLE) {
        response = ear_http_error_response("range_not_satisfiable",
                                           "the requested range is outside the file", bytes);
        snprintf(content_range, sizeof content_range, "bytes */%" PRIu64, size);
        if (response)
            MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_RANGE, content_range);
        *status = MHD_HTTP_RANGE_NOT_SATISFIABLE;
    } else {
        uint64_t length = range == EAR_HTTP_RANGE_PARTIAL ? last - first + 1 : size;
        /* The response owns the descriptor from here and closes it. */
        response = MHD_create_response_from_fd_at_offset64(length, fd, first);
        if (!response)
            goto fail;
        fd = -1;
        if (range == EAR_HTTP_RANGE_PARTIAL) {
            snprintf(content_range, sizeof content_range,
                     "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
            MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_RANGE, content_range);
            *status = MHD_HTTP_PARTIAL_CONTENT;
        } else {
            *status = MHD_HTTP_OK;
        }
        *bytes = length;
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                ear_http_content_type(name));
    }
    if (!response)
        goto fail;
    if (fd >= 0)
        close(fd);
    MHD_add_response_header(response, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(response, MHD_HTTP_HEADER_LAST_MODIFIED, modified);
    MHD_add_response_header(response, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    return response;
fail:
    if (fd >= 0)
        close(fd);
    return NULL;
}
