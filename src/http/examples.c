/* GET /api/examples: a few items of the index that have a sound, for the
 * page's one-click example searches. */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "http/internal.h"

/* Adds key: the relative URL of folder/name; false when out of memory. */
static int add_url(cJSON *object, const char *key, const char *folder, const char *name)
{
    if (!name)
        return cJSON_AddNullToObject(object, key) != NULL;
    char *url = ear_search_file_url(folder, name);
    cJSON *added = url ? cJSON_AddStringToObject(object, key, url) : NULL;
    free(url);
    return added != NULL;
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
        with_sound += ear_index_item_audio(idx, i) != NULL;
    size_t wanted = n < 1 ? 0 : (size_t)n < with_sound ? (size_t)n : with_sound;
    if (wanted) {
        picked = malloc(wanted * sizeof *picked);
        if (!picked)
            goto fail;
        size_t seen = 0, next = 0;
        for (size_t i = 0; i < count && next < wanted; i++) {
            if (!ear_index_item_audio(idx, i))
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
        const char *id = ear_index_item_id(idx, item);
        const char *label = ear_index_item_label(idx, item);
        if (!cJSON_AddStringToObject(example, "id", id ? id : "") ||
            !cJSON_AddStringToObject(example, "label", label ? label : "") ||
            !add_url(example, "audio_url", "audio", ear_index_item_audio(idx, item)) ||
            !add_url(example, "frame_url", "frames", ear_index_item_frame(idx, item)))
            goto fail;
    }
    text = ear_utf8_clean(cJSON_PrintUnformatted(root)); /* names from the disk may be any bytes */
fail:
    free(picked);
    cJSON_Delete(root);
    return text;
}
