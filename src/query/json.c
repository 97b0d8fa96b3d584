/* The answers of both APIs: Ear's /api/search through cJSON, and the
 * original's /query written by hand, byte for byte as Flask's jsonify wrote
 * it (keys sorted, no spaces, ASCII only, Python's float repr, a newline). */
#include "query/query.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

char *ear_query_path_url(const char *prefix, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t prefix_len = strlen(prefix), path_len = strlen(path);
    char *url = malloc(prefix_len + 3 * path_len + 1);
    if (!url)
        return NULL;
    char *p = url;
    memcpy(p, prefix, prefix_len);
    p += prefix_len;
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_' || *c == '~' || *c == '/') {
            *p++ = (char)*c;
        } else {
            *p++ = '%';
            *p++ = hex[*c >> 4];
            *p++ = hex[*c & 15];
        }
    }
    *p = 0;
    return url;
}

char *ear_query_item_id(const ear_index *idx, size_t item)
{
    const char *path = ear_index_item_path(idx, item);
    if (!path)
        return NULL;
    const char *slash = strchr(path, '/');
    const char *start = slash ? slash + 1 : path;
    const char *last_slash = strrchr(start, '/');
    const char *dot = strrchr(last_slash ? last_slash + 1 : start, '.');
    size_t length = dot && dot != (last_slash ? last_slash + 1 : start) ? (size_t)(dot - start)
                                                                         : strlen(start);
    return strndup(start, length);
}

/* Milliseconds to the microsecond: more digits would be noise. */
static double round_ms(double ms) { return round(ms * 1000.0) / 1000.0; }

/* Six decimals: a float's own precision, without its binary tail in the text. */
static double round_score(float score) { return round((double)score * 1e6) / 1e6; }

/* Adds key: prefix + path, or null when path is NULL; 0, or -1 when out of memory. */
static int add_url(cJSON *object, const char *key, const char *prefix, const char *path)
{
    if (!path)
        return cJSON_AddNullToObject(object, key) ? 0 : -1;
    char *url = ear_query_path_url(prefix, path);
    cJSON *added = url ? cJSON_AddStringToObject(object, key, url) : NULL;
    free(url);
    return added ? 0 : -1;
}

char *ear_query_search_json(const ear_index *idx, const ear_query_result *res)
{
    char *text = NULL, *id = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *results = cJSON_AddArrayToObject(root, "results");
    if (!results)
        goto done;
    for (int i = 0; i < res->found; i++) {
        size_t item = res->hits[i].item;
        cJSON *hit = cJSON_CreateObject();
        if (!hit)
            goto done;
        if (!cJSON_AddItemToArray(results, hit)) {
            cJSON_Delete(hit);
            goto done;
        }
        const char *path = ear_index_item_path(idx, item);
        const char *label = ear_index_item_label(idx, item);
        int kind = ear_index_item_kind(idx, item);
        id = ear_query_item_id(idx, item);
        if (!id || !cJSON_AddNumberToObject(hit, "rank", i + 1) ||
            !cJSON_AddStringToObject(hit, "id", id) ||
            !cJSON_AddStringToObject(hit, "kind", kind == EAR_INDEX_AUDIO ? "audio" : "image") ||
            !cJSON_AddStringToObject(hit, "label", label ? label : "") ||
            !cJSON_AddNumberToObject(hit, "score", round_score(res->hits[i].score)) ||
            add_url(hit, "url", "data/", path) != 0 ||
            add_url(hit, "frame_url", "data/", kind == EAR_INDEX_IMAGE ? path : NULL) != 0 ||
            add_url(hit, "audio_url", "data/", kind == EAR_INDEX_AUDIO ? path : NULL) != 0)
            goto done;
        free(id);
        id = NULL;
    }
    const ear_query_vector *q = &res->query;
    cJSON *query = cJSON_AddObjectToObject(root, "query");
    if (!query ||
        !cJSON_AddStringToObject(query, "kind", q->kind == EAR_INDEX_IMAGE ? "image" : "audio") ||
        !cJSON_AddNumberToObject(query, "duration_s", round_ms(q->duration_s)) ||
        !cJSON_AddStringToObject(query, "format", q->format) ||
        !cJSON_AddBoolToObject(query, "truncated", q->truncated != 0))
        goto done;
    cJSON *timing = cJSON_AddObjectToObject(root, "timing_ms");
    if (!timing || !cJSON_AddNumberToObject(timing, "decode", round_ms(q->decode_ms)) ||
        !cJSON_AddNumberToObject(timing, "embed", round_ms(q->embed_ms)) ||
        !cJSON_AddNumberToObject(timing, "search", round_ms(res->search_ms)) ||
        !cJSON_AddNumberToObject(timing, "total", round_ms(res->total_ms)))
        goto done;
    text = cJSON_PrintUnformatted(root);
done:
    free(id);
    cJSON_Delete(root);
    return text;
}

/* ---- the original's answer ---- */

typedef struct text {
    char *data;
    size_t size, capacity;
    int failed;
} text;

static void put(text *t, const char *data, size_t size)
{
    if (t->failed)
        return;
    if (size + 1 > t->capacity - t->size) {
        size_t capacity = t->capacity ? t->capacity * 2 : 1024;
        while (capacity - t->size < size + 1)
            capacity *= 2;
        char *grown = realloc(t->data, capacity);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->data = grown;
        t->capacity = capacity;
    }
    memcpy(t->data + t->size, data, size);
    t->size += size;
    t->data[t->size] = 0;
}

static void puts_(text *t, const char *s) { put(t, s, strlen(s)); }

static void put_u16(text *t, unsigned unit)
{
    static const char hex[] = "0123456789abcdef";
    char escape[6] = {'\\', 'u', hex[unit >> 12 & 15], hex[unit >> 8 & 15], hex[unit >> 4 & 15],
                      hex[unit & 15]};
    put(t, escape, 6);
}

/* The UTF-8 sequence at s (length n, lead byte s[0] >= 0x80): its code point
 * and length, or -1 when it is not well formed (each such byte is then one
 * lone surrogate U+DC80..U+DCFF, as Python's os.walk decodes it). */
static long decode_utf8(const unsigned char *s, size_t n, size_t *length)
{
    unsigned char c = s[0];
    int more = c >= 0xf0 && c <= 0xf4 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 && c < 0xe0 ? 1 : -1;
    if (c >= 0xf5 || more < 0 || (size_t)more >= n)
        return -1;
    long cp = c & (0x3f >> more);
    for (int i = 1; i <= more; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
        (more == 3 && (cp < 0x10000 || cp > 0x10ffff)))
        return -1;
    *length = (size_t)more + 1;
    return cp;
}

/* A JSON string as Python's json.dumps(ensure_ascii=True) writes it. */
static void put_string(text *t, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    puts_(t, "\"");
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char escape[2] = {'\\', (char)c};
            put(t, escape, 2);
            i++;
        } else if (c >= 0x20 && c < 0x7f) {
            put(t, (const char *)&p[i], 1);
            i++;
        } else if (c < 0x80) {
            static const char *const named[] = {['\b'] = "\\b", ['\f'] = "\\f",
                                                ['\n'] = "\\n", ['\r'] = "\\r",
                                                ['\t'] = "\\t"};
            if (c < sizeof named / sizeof named[0] && named[c])
                puts_(t, named[c]);
            else
                put_u16(t, c);
            i++;
        } else {
            size_t length = 1;
            long cp = decode_utf8(p + i, n - i, &length);
            if (cp < 0) {
                put_u16(t, 0xdc00u | c);
            } else if (cp >= 0x10000) {
                cp -= 0x10000;
                put_u16(t, 0xd800u | (unsigned)(cp >> 10));
                put_u16(t, 0xdc00u | (unsigned)(cp & 0x3ff));
            } else {
                put_u16(t, (unsigned)cp);
            }
            i += length;
        }
    }
    puts_(t, "\"");
}

void ear_query_python_score(float score, char *out, size_t out_size)
{
    /* printf rounds the double's exact value to 3 decimals, ties to even, as
     * Python's round() does; repr then drops the zeros a shorter form spares. */
    char digits[64];
    snprintf(digits, sizeof digits, "%.3f", (double)score);
    size_t n = strlen(digits);
    while (n > 0 && digits[n - 1] == '0' && n >= 2 && digits[n - 2] != '.')
        digits[--n] = 0;
    snprintf(out, out_size, "%s", digits);
}

static void put_item(text *t, const ear_index *idx, const ear_index_hit *hit)
{
    char score[64];
    ear_query_python_score(hit->score, score, sizeof score);
    const char *label = ear_index_item_label(idx, hit->item);
    const char *path = ear_index_item_path(idx, hit->item);
    puts_(t, "{\"label\":");
    put_string(t, label ? label : "");
    puts_(t, ",\"score\":");
    puts_(t, score);
    puts_(t, ",\"type\":");
    puts_(t, ear_index_item_kind(idx, hit->item) == EAR_INDEX_AUDIO ? "\"audio\"" : "\"image\"");
    puts_(t, ",\"url\":");
    char *url = malloc(strlen(path ? path : "") + 11);
    if (!url) {
        t->failed = 1;
        return;
    }
    sprintf(url, "/ear/data/%s", path ? path : "");
    put_string(t, url);
    free(url);
    puts_(t, "}");
}

char *ear_query_original_json(const ear_index *idx, ear_index_kind query_kind,
                              const ear_index_hit *hits, int found)
{
    /* The original's walk: the best first, same kind to one column, any other
     * to the other, five each, stopping once both are full. */
    int same[EAR_QUERY_ORIGINAL_PER_COLUMN], cross[EAR_QUERY_ORIGINAL_PER_COLUMN];
    int n_same = 0, n_cross = 0;
    for (int i = 0; i < found && i < EAR_QUERY_ORIGINAL_TOP; i++) {
        if (ear_index_item_kind(idx, hits[i].item) == (int)query_kind) {
            if (n_same < EAR_QUERY_ORIGINAL_PER_COLUMN)
                same[n_same++] = i;
        } else if (n_cross < EAR_QUERY_ORIGINAL_PER_COLUMN) {
            cross[n_cross++] = i;
        }
        if (n_same >= EAR_QUERY_ORIGINAL_PER_COLUMN && n_cross >= EAR_QUERY_ORIGINAL_PER_COLUMN)
            break;
    }
    text t = {0};
    puts_(&t, "{\"cross_modality\":[");
    for (int i = 0; i < n_cross; i++) {
        if (i)
            puts_(&t, ",");
        put_item(&t, idx, &hits[cross[i]]);
    }
    puts_(&t, "],\"query_type\":");
    puts_(&t, query_kind == EAR_INDEX_AUDIO ? "\"audio\"" : "\"image\"");
    puts_(&t, ",\"same_modality\":[");
    for (int i = 0; i < n_same; i++) {
        if (i)
            puts_(&t, ",");
        put_item(&t, idx, &hits[same[i]]);
    }
    puts_(&t, "]}\n");
    if (t.failed) {
        free(t.data);
        return NULL;
    }
    return t.data;
}

char *ear_query_original_error_json(const char *message)
{
    text t = {0};
    puts_(&t, "{\"error\":");
    put_string(&t, message);
    puts_(&t, "}\n");
    if (t.failed) {
        free(t.data);
        return NULL;
    }
    return t.data;
}
