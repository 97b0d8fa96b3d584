/* GET /api/examples: a few sounds of the index, for the page's one-click
 * example searches (with their frame, in Ear's flat layout). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

/* Adds key: the relative URL of path, or null; false when out of memory. */
static int add_url(cJSON *object, const char *key, const char *path)
{
    if (!path)
        return cJSON_AddNullToObject(object, key) != NULL;
    char *url = ear_query_path_url("data/", path);
    cJSON *added = url ? cJSON_AddStringToObject(object, key, url) : NULL;
    free(url);
    return added != NULL;
}

/* The frame of a sound in Ear's flat layout: frames/<id>.<anything>; NULL when none. */
static const char *paired_frame(const ear_index *idx, const char *path, const char *id)
{
    if (strncmp(path, "audio/", 6) != 0 || strchr(path + 6, '/'))
        return NULL;
    char prefix[600];
    if ((size_t)snprintf(prefix, sizeof prefix, "frames/%s.", id) >= sizeof prefix)
        return NULL;
    long long item = ear_index_find_prefix(idx, prefix);
    if (item < 0 || ear_index_item_kind(idx, (size_t)item) != EAR_INDEX_IMAGE)
        return NULL;
    const char *frame = ear_index_item_path(idx, (size_t)item);
    return strchr(frame + strlen(prefix), '/') ? NULL : frame;
}

char *ear_http_examples_json(const ear_index *idx, int n)
{
    char *text = NULL;
    size_t *picked = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *list = root ? cJSON_AddArrayToObject(root, "examples") : NULL;
    if (!list)
        goto fail;
    /* Items with a sound file, spread evenly over the index (sorted by id) so
     * that a large dataset shows a variety, and the same ones every time. */
    size_t count = ear_index_count(idx), with_sound = 0;
    for (size_t i = 0; i < count; i++)
        with_sound += ear_index_item_kind(idx, i) == EAR_INDEX_AUDIO;
    size_t wanted = n < 1 ? 0 : (size_t)n < with_sound ? (size_t)n : with_sound;
    if (wanted) {
        picked = malloc(wanted * sizeof *picked);
        if (!picked)
            goto fail;
        size_t seen = 0, next = 0;
        for (size_t i = 0; i < count && next < wanted; i++) {
            if (ear_index_item_kind(idx, i) != EAR_INDEX_AUDIO)
                continue;
            /* The k-th pick is the (k * with_sound / wanted)-th item with a sound. */
            if (seen == next * with_sound / wanted)
                picked[next++] = i;
            seen++;
        }
        wanted = next;
    }
    for (size_t k = 0; k < wanted; k++) {
        size_t item = picked[k];
        cJSON *example = cJSON_CreateObject();
        if (!example)
            goto fail;
        if (!cJSON_AddItemToArray(list, example)) {
            cJSON_Delete(example);
            goto fail;
        }
        char *id = ear_query_item_id(idx, item);
        const char *path = ear_index_item_path(idx, item);
        const char *label = ear_index_item_label(idx, item);
        int ok = id && cJSON_AddStringToObject(example, "id", id) &&
                 cJSON_AddStringToObject(example, "label", label ? label : "") &&
                 add_url(example, "audio_url", path) &&
                 add_url(example, "frame_url", paired_frame(idx, path, id));
        free(id);
        if (!ok)
            goto fail;
    }
    text = cJSON_PrintUnformatted(root);
fail:
    free(picked);
    cJSON_Delete(root);
    return text;
}
