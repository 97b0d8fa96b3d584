/* Small readers of what a request carries: its URL's escapes, its id, ?k=. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "http/internal.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t ear_http_unescape(char *text)
{
    char *in = text, *out = text;
    while (*in) {
        int high, low;
        if (in[0] == '%' && (high = hex_value(in[1])) >= 0 && (low = hex_value(in[2])) >= 0 &&
            (high | low) != 0) {
            *out++ = (char)(high * 16 + low);
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = 0;
    return (size_t)(out - text);
}

int ear_http_request_id_is_sane(const char *id)
{
    size_t length = id ? strlen(id) : 0;
    if (length == 0 || length > 64)
        return 0;
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-')
            return 0;
    }
    return 1;
}

void ear_http_request_id_generate(char out[17])
{
    unsigned char random[8];
    if (getrandom(random, sizeof random, GRND_NONBLOCK) != (ssize_t)sizeof random) {
        /* Early boot without entropy: ids need only be unlikely to collide. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t v = (uint64_t)now.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)now.tv_sec;
        memcpy(random, &v, sizeof random);
    }
    for (size_t i = 0; i < sizeof random; i++)
        snprintf(out + 2 * i, 3, "%02x", random[i]);
}

int ear_http_parse_k(const char *text, int *k)
{
    if (!text) {
        *k = 8;
        return 0;
    }
    if (!isdigit((unsigned char)text[0]) || strlen(text) > 3)
        return -1;
    char *end;
    long v = strtol(text, &end, 10);
    if (*end || v < 1 || v > EAR_QUERY_MAX_K)
        return -1;
    *k = (int)v;
    return 0;
}
