/* The answer of a search as the JSON of interfaces.md, shared by `ear search`
 * and the HTTP service; kept apart from search.c so that it links without
 * the inference engine. */
#include "index/search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

char *ear_search_file_url(const char *folder, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t folder_len = strlen(folder), name_len = strlen(name);
    char *url = malloc(5 + folder_len + 1 + 3 * name_len + 1);
    if (!url)
        return NULL;
    char *p = url;
    memcpy(p, "data/", 5);
    p += 5;
    memcpy(p, folder, folder_len);
    p += folder_len;
    *p++ = '/';
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_' || *c == '~') {
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

/* Milliseconds to the microsecond: more digits would be noise. */
static double round_ms(double ms) { return round(ms * 1000.0) / 1000.0; }

/* Six decimals: a float's own precision, without its binary tail in the text. */
static double round_score(float score) { return round((double)score * 1e6) / 1e6; }

/* Adds "data/<folder>/<name>" or null; returns 0, or -1 when out of memory. */
static int add_url(cJSON *object, const char *key, const char *folder, const char *name)
{
    if (!name)
        return cJSON_AddNullToObject(object, key) ? 0 : -1;
    char *url = ear_search_file_url(folder, name);
    cJSON *added = url ? cJSON_AddStringToObject(object, key, url) : NULL;
    free(url);
    return added ? 0 : -1;
}

char *ear_search_result_json(const ear_index *idx, const ear_search_result *res)
{
    char *text = NULL;
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
        const char *id = ear_index_item_id(idx, item);
        const char *label = ear_index_item_label(idx, item);
        if (!cJSON_AddNumberToObject(hit, "rank", i + 1) ||
            !cJSON_AddStringToObject(hit, "id", id ? id : "") ||
            !cJSON_AddStringToObject(hit, "label", label ? label : "") ||
            !cJSON_AddNumberToObject(hit, "score", round_score(res->hits[i].score)) ||
            add_url(hit, "frame_url", "frames", ear_index_item_frame(idx, item)) != 0 ||
            add_url(hit, "audio_url", "audio", ear_index_item_audio(idx, item)) != 0)
            goto done;
    }
    cJSON *query = cJSON_AddObjectToObject(root, "query");
    if (!query || !cJSON_AddNumberToObject(query, "duration_s", round_ms(res->duration_s)) ||
        !cJSON_AddStringToObject(query, "format", res->format) ||
        !cJSON_AddBoolToObject(query, "truncated", res->truncated != 0))
        goto done;
    cJSON *timing = cJSON_AddObjectToObject(root, "timing_ms");
    if (!timing || !cJSON_AddNumberToObject(timing, "decode", round_ms(res->decode_ms)) ||
        !cJSON_AddNumberToObject(timing, "embed", round_ms(res->embed_ms)) ||
        !cJSON_AddNumberToObject(timing, "search", round_ms(res->search_ms)) ||
        !cJSON_AddNumberToObject(timing, "total", round_ms(res->total_ms)))
        goto done;
    text = ear_utf8_clean(cJSON_PrintUnformatted(root)); /* names from the disk may be any bytes */
done:
    cJSON_Delete(root);
    return text;
}
