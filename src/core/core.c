#define _POSIX_C_SOURCE 200809L
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int ear_error_set(ear_error *err, const char *format, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, format);
        vsnprintf(err->message, sizeof err->message, format, ap);
        va_end(ap);
    }
    return -1;
}

double ear_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

uint8_t *ear_file_read(const char *path, size_t max_bytes, size_t *size, ear_error *err)
{
    uint8_t *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ear_error_set(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        ear_error_set(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        ear_error_set(err, "%s: not a regular file", path);
        goto fail;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        ear_error_set(err, "%s: file too large (%lld bytes, limit %zu)", path,
                      (long long)st.st_size, max_bytes);
        goto fail;
    }
    size_t want = (size_t)st.st_size;
    data = malloc(want + 1);
    if (!data) {
        ear_error_set(err, "%s: out of memory", path);
        goto fail;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t n = read(fd, data + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ear_error_set(err, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    data[got] = 0;
    *size = got;
    close(fd);
    return data;
fail:
    free(data);
    close(fd);
    return NULL;
}

int ear_file_map(const char *path, size_t min_size, ear_file_mapping *map, ear_error *err)
{
    map->data = NULL;
    map->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ear_error_set(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        ear_error_set(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        ear_error_set(err, "%s: not a regular file", path);
        goto fail;
    }
    if (st.st_size == 0 || (uint64_t)st.st_size < min_size) {
        ear_error_set(err, "%s: %lld bytes, too short (at least %zu expected)", path,
                      (long long)st.st_size, min_size ? min_size : 1);
        goto fail;
    }
    void *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (data == MAP_FAILED) {
        ear_error_set(err, "%s: cannot map the file: %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    map->data = data;
    map->size = (size_t)st.st_size;
    return 0;
fail:
    close(fd);
    return -1;
}

void ear_file_unmap(ear_file_mapping *map)
{
    if (map->data)
        munmap((void *)map->data, map->size);
    map->data = NULL;
    map->size = 0;
}

static int write_all(int fd, const void *data, size_t size)
{
    const uint8_t *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

int ear_file_write_atomic(const char *path, const void *data, size_t size, ear_error *err)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp)
        return ear_error_set(err, "%s: out of memory", path);
    snprintf(tmp, len + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        ear_error_set(err, "%s: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    if (write_all(fd, data, size) != 0 || fsync(fd) != 0) {
        ear_error_set(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (fchmod(fd, 0644) != 0 || close(fd) != 0) {
        fd = -1;
        ear_error_set(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        ear_error_set(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    free(tmp);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return -1;
}

int ear_npy_write_f32(const char *path, const float *data, int ndim, const size_t *shape,
                      ear_error *err)
{
    char dims[160] = "";
    size_t count = 1, used = 0;
    for (int i = 0; i < ndim && used < sizeof dims; i++) {
        const char *sep = (i + 1 < ndim) ? ", " : (ndim == 1 ? "," : "");
        used += (size_t)snprintf(dims + used, sizeof dims - used, "%zu%s", shape[i], sep);
        count *= shape[i];
    }
    char header[256];
    int n = snprintf(header, sizeof header,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    /* magic(6) + version(2) + header_len(2) + header, padded with spaces to 64 and ending '\n'. */
    size_t total_header = 10 + (size_t)n + 1;
    size_t padded = (total_header + 63) / 64 * 64;
    size_t bytes = padded + count * sizeof(float);
    uint8_t *buf = malloc(bytes);
    if (!buf)
        return ear_error_set(err, "%s: out of memory", path);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    uint16_t hlen = (uint16_t)(padded - 10);
    buf[8] = (uint8_t)(hlen & 0xff);
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + 10, header, (size_t)n);
    memset(buf + 10 + n, ' ', padded - 10 - (size_t)n);
    buf[padded - 1] = '\n';
    if (count)
        memcpy(buf + padded, data, count * sizeof(float)); /* host is little-endian (x86, arm) */
    int rc = ear_file_write_atomic(path, buf, bytes, err);
    free(buf);
    return rc;
}

float *ear_npy_read_f32(const char *path, int *ndim, size_t shape[4], ear_error *err)
{
    size_t size = 0;
    float *out = NULL;
    uint8_t *buf = ear_file_read(path, (size_t)1 << 32, &size, err);
    if (!buf)
        return NULL;
    if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0 || buf[6] != 1) {
        ear_error_set(err, "%s: not a version 1 .npy file", path);
        goto fail;
    }
    size_t hlen = (size_t)buf[8] | ((size_t)buf[9] << 8);
    if (10 + hlen > size) {
        ear_error_set(err, "%s: truncated header", path);
        goto fail;
    }
    char *header = (char *)buf + 10;
    char saved = header[hlen];
    header[hlen] = 0;
    if (!strstr(header, "'<f4'") || strstr(header, "'fortran_order': True")) {
        ear_error_set(err, "%s: only little-endian float32 in C order is read", path);
        goto fail;
    }
    char *p = strstr(header, "'shape': (");
    if (!p) {
        ear_error_set(err, "%s: no shape in header", path);
        goto fail;
    }
    p += strlen("'shape': (");
    *ndim = 0;
    size_t count = 1;
    while (*p && *p != ')') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ')')
            break;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || *ndim >= 4) {
            ear_error_set(err, "%s: bad shape", path);
            goto fail;
        }
        shape[(*ndim)++] = (size_t)v;
        count *= (size_t)v;
        p = end;
    }
    header[hlen] = saved;
    if (size - 10 - hlen < count * sizeof(float)) {
        ear_error_set(err, "%s: data shorter than its shape", path);
        goto fail;
    }
    out = malloc(count ? count * sizeof(float) : 1);
    if (!out) {
        ear_error_set(err, "%s: out of memory", path);
        goto fail;
    }
    memcpy(out, buf + 10 + hlen, count * sizeof(float));
    free(buf);
    return out;
fail:
    free(buf);
    return NULL;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF), 0 when there is none. */
static size_t utf8_sequence(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (p[0] >= 0xe0 && p[0] <= 0xef) {
        unsigned char low = p[0] == 0xe0 ? 0xa0 : 0x80, high = p[0] == 0xed ? 0x9f : 0xbf;
        return p[1] >= low && p[1] <= high && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        unsigned char low = p[0] == 0xf0 ? 0x90 : 0x80, high = p[0] == 0xf4 ? 0x8f : 0xbf;
        return p[1] >= low && p[1] <= high && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

char *ear_utf8_clean(char *text)
{
    if (!text)
        return NULL;
    size_t bad = 0, length = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        size_t n = utf8_sequence(p);
        bad += n == 0;
        p += n ? n : 1;
        length += n ? n : 1;
    }
    if (bad == 0)
        return text;
    /* Each bad byte (1) becomes U+FFFD (3). */
    char *clean = malloc(length + 2 * bad + 1);
    if (!clean) {
        free(text);
        return NULL;
    }
    size_t out = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        size_t n = utf8_sequence(p);
        if (n) {
            memcpy(clean + out, p, n);
            out += n;
            p += n;
        } else {
            memcpy(clean + out, "\xef\xbf\xbd", 3);
            out += 3;
            p++;
        }
    }
    clean[out] = 0;
    free(text);
    return clean;
}
