/* The search answer's JSON: the fields of interfaces.md, ranks in order,
 * relative percent-encoded URLs, null for a missing sound. */
#include <cjson/cJSON.h>

#include "index/search.h"
#include "test.h"

static void check_urls(void)
{
    static const struct {
        const char *folder, *name, *url;
    } cases[] = {
        {"frames", "cow.jpg", "data/frames/cow.jpg"},
        {"audio", "a b.wav", "data/audio/a%20b.wav"},
        {"frames", "caf\xc3\xa9 #1?.png", "data/frames/caf%C3%A9%20%231%3F.png"},
        {"audio", "50%/x&y+z~_-.ogg", "data/audio/50%25%2Fx%26y%2Bz~_-.ogg"},
        {"frames", "", "data/frames/"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *url = ear_search_file_url(cases[i].folder, cases[i].name);
        EAR_CHECK_MSG(url && strcmp(url, cases[i].url) == 0, "url of '%s': %s", cases[i].name,
                      url ? url : "(null)");
        free(url);
    }
}

static const char *string_field(const cJSON *object, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(object, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double number_field(const cJSON *object, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(object, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void check_answer(void)
{
    float a[2] = {1, 0}, b[2] = {0, 1};
    ear_index_entry entries[2] = {
        {.id = "cow", .label = "A cow.", .frame = "cow.jpg", .audio = "cow moo.wav",
         .frame_embedding = a},
        {.id = "dog \xc3\xa9", .frame = "dog \xc3\xa9.png", .frame_embedding = b},
    };
    char path[512];
    ear_test_tmp_path(path, sizeof path, "json.earindex");
    ear_error err;
    EAR_CHECK(ear_index_write(path, "1111222233334444", 2, EAR_INDEX_F32, entries, 2, &err) == 0);
    ear_index *idx = ear_index_open(path, NULL, &err);
    EAR_CHECK(idx != NULL);
    if (!idx)
        return;
    ear_index_hit hits[2] = {{.item = 1, .score = 0.83f}, {.item = 0, .score = -0.25f}};
    ear_search_result res = {.hits = hits, .found = 2, .duration_s = 3.2, .truncated = 1,
                             .decode_ms = 4.1, .embed_ms = 21.7, .search_ms = 0.2,
                             .total_ms = 26.3};
    snprintf(res.format, sizeof res.format, "webm");
    char *text = ear_search_result_json(idx, &res);
    EAR_CHECK(text != NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    EAR_CHECK_MSG(root != NULL, "not JSON: %s", text ? text : "(null)");
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results");
    EAR_CHECK(cJSON_IsArray(results) && cJSON_GetArraySize(results) == 2);
    const cJSON *first = cJSON_GetArrayItem(results, 0), *second = cJSON_GetArrayItem(results, 1);
    EAR_CHECK(number_field(first, "rank") == 1 && number_field(second, "rank") == 2);
    const char *id = string_field(first, "id");
    EAR_CHECK(id && strcmp(id, "dog \xc3\xa9") == 0);
    const char *label = string_field(first, "label");
    EAR_CHECK(label && strcmp(label, "dog \xc3\xa9") == 0); /* no label: the id */
    EAR_CHECK(fabs(number_field(first, "score") - 0.83) < 1e-6);
    const char *frame = string_field(first, "frame_url");
    EAR_CHECK(frame && strcmp(frame, "data/frames/dog%20%C3%A9.png") == 0);
    EAR_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(first, "audio_url")));
    const char *audio = string_field(second, "audio_url");
    EAR_CHECK(audio && strcmp(audio, "data/audio/cow%20moo.wav") == 0);
    label = string_field(second, "label");
    EAR_CHECK(label && strcmp(label, "A cow.") == 0);
    EAR_CHECK(number_field(second, "score") == -0.25);

    const cJSON *query = cJSON_GetObjectItemCaseSensitive(root, "query");
    EAR_CHECK(number_field(query, "duration_s") == 3.2);
    const char *format = string_field(query, "format");
    EAR_CHECK(format && strcmp(format, "webm") == 0);
    EAR_CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(query, "truncated")));
    const cJSON *timing = cJSON_GetObjectItemCaseSensitive(root, "timing_ms");
    EAR_CHECK(number_field(timing, "decode") == 4.1 && number_field(timing, "embed") == 21.7 &&
              number_field(timing, "search") == 0.2 && number_field(timing, "total") == 26.3);
    cJSON_Delete(root);
    free(text);

    /* No hits is an empty list, not a missing one. */
    res.found = 0;
    text = ear_search_result_json(idx, &res);
    root = text ? cJSON_Parse(text) : NULL;
    results = cJSON_GetObjectItemCaseSensitive(root, "results");
    EAR_CHECK(cJSON_IsArray(results) && cJSON_GetArraySize(results) == 0);
    cJSON_Delete(root);
    free(text);
    ear_index_close(idx);
}

int main(void)
{
    check_urls();
    check_answer();
    return ear_test_finish();
}
