/* Both answers: /api/search's JSON (the fields of interfaces.md, ranks in
 * order, relative percent-encoded URLs, kind and the older frame_url/audio_url)
 * and the original's /query, byte for byte as Flask's jsonify wrote it. */
#include <cjson/cJSON.h>

#include "query/query.h"
#include "test.h"

static void check_urls(void)
{
    static const struct {
        const char *path, *url;
    } cases[] = {
        {"frames/cow.jpg", "data/frames/cow.jpg"},
        {"audio/a b.wav", "data/audio/a%20b.wav"},
        {"frames/caf\xc3\xa9/#1?.png", "data/frames/caf%C3%A9/%231%3F.png"},
        {"audio/50%/x&y+z~_-.ogg", "data/audio/50%25/x%26y%2Bz~_-.ogg"},
        {"", "data/"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *url = ear_query_path_url("data/", cases[i].path);
        EAR_CHECK_MSG(url && strcmp(url, cases[i].url) == 0, "url of '%s': %s", cases[i].path,
                      url ? url : "(null)");
        free(url);
    }
}

/* Python's repr(round(x, 3)) for the float32 scores the original had. */
static void check_python_scores(void)
{
    static const struct {
        float score;
        const char *text;
    } cases[] = {
        {0.912345f, "0.912"}, {0.9f, "0.9"},      {0.8999f, "0.9"},    {1.0f, "1.0"},
        {0.99999f, "1.0"},    {0.0f, "0.0"},      {-0.0001f, "-0.0"},  {-0.25f, "-0.25"},
        {0.0625f, "0.062"},   {0.1875f, "0.188"}, {0.0015f, "0.002"},  {0.1f, "0.1"},
        {-1.0f, "-1.0"},      {0.5004999f, "0.5"}, {0.123f, "0.123"},  {0.01f, "0.01"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[32];
        ear_query_python_score(cases[i].score, out, sizeof out);
        EAR_CHECK_MSG(strcmp(out, cases[i].text) == 0, "score %.9g: %s, want %s",
                      (double)cases[i].score, out, cases[i].text);
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
        {.kind = EAR_INDEX_AUDIO, .path = "audio/cow moo.wav", .label = "A cow.", .embedding = a},
        {.kind = EAR_INDEX_IMAGE, .path = "frames/dog \xc3\xa9.png", .embedding = b},
    };
    char path[512];
    ear_test_tmp_path(path, sizeof path, "json.earindex");
    ear_error err;
    EAR_CHECK(ear_index_write(path, "1111222233334444", 2, EAR_INDEX_F32, entries, 2, &err) == 0);
    ear_index *idx = ear_index_open(path, NULL, &err);
    EAR_CHECK(idx != NULL);
    if (!idx)
        return;
    /* Items by path: 0 the sound, 1 the frame. */
    ear_index_hit hits[2] = {{.item = 1, .score = 0.83f}, {.item = 0, .score = -0.25f}};
    ear_query_result res = {.hits = hits, .found = 2, .search_ms = 0.2, .total_ms = 26.3};
    res.query = (ear_query_vector){.kind = EAR_INDEX_AUDIO, .duration_s = 3.2, .truncated = 1,
                                   .decode_ms = 4.1, .embed_ms = 21.7};
    snprintf(res.query.format, sizeof res.query.format, "webm");
    char *text = ear_query_search_json(idx, &res);
    EAR_CHECK(text != NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    EAR_CHECK_MSG(root != NULL, "not JSON: %s", text ? text : "(null)");
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results");
    EAR_CHECK(cJSON_IsArray(results) && cJSON_GetArraySize(results) == 2);
    const cJSON *first = cJSON_GetArrayItem(results, 0), *second = cJSON_GetArrayItem(results, 1);
    EAR_CHECK(number_field(first, "rank") == 1 && number_field(second, "rank") == 2);
    const char *id = string_field(first, "id");
    EAR_CHECK_MSG(id && strcmp(id, "dog \xc3\xa9") == 0, "id %s", id ? id : "(null)");
    const char *kind = string_field(first, "kind");
    EAR_CHECK(kind && strcmp(kind, "image") == 0);
    const char *label = string_field(first, "label");
    EAR_CHECK(label && strcmp(label, "frames/dog \xc3\xa9.png") == 0); /* no label: the path */
    EAR_CHECK(fabs(number_field(first, "score") - 0.83) < 1e-6);
    const char *url = string_field(first, "url");
    EAR_CHECK(url && strcmp(url, "data/frames/dog%20%C3%A9.png") == 0);
    const char *frame = string_field(first, "frame_url");
    EAR_CHECK(frame && strcmp(frame, "data/frames/dog%20%C3%A9.png") == 0);
    EAR_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(first, "audio_url")));
    const char *audio = string_field(second, "audio_url");
    EAR_CHECK(audio && strcmp(audio, "data/audio/cow%20moo.wav") == 0);
    EAR_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(second, "frame_url")));
    kind = string_field(second, "kind");
    EAR_CHECK(kind && strcmp(kind, "audio") == 0);
    label = string_field(second, "label");
    EAR_CHECK(label && strcmp(label, "A cow.") == 0);
    EAR_CHECK(number_field(second, "score") == -0.25);

    const cJSON *query = cJSON_GetObjectItemCaseSensitive(root, "query");
    const char *query_kind = string_field(query, "kind");
    EAR_CHECK(query_kind && strcmp(query_kind, "audio") == 0);
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
    text = ear_query_search_json(idx, &res);
    root = text ? cJSON_Parse(text) : NULL;
    results = cJSON_GetObjectItemCaseSensitive(root, "results");
    EAR_CHECK(cJSON_IsArray(results) && cJSON_GetArraySize(results) == 0);
    cJSON_Delete(root);
    free(text);

    /* The original's answer, byte for byte: keys sorted, no spaces, \u escapes. */
    text = ear_query_original_json(idx, EAR_INDEX_AUDIO, hits, 2);
    const char *want =
        "{\"cross_modality\":[{\"label\":\"frames/dog \\u00e9.png\",\"score\":0.83,"
        "\"type\":\"image\",\"url\":\"/ear/data/frames/dog \\u00e9.png\"}],"
        "\"query_type\":\"audio\",\"same_modality\":[{\"label\":\"A cow.\",\"score\":-0.25,"
        "\"type\":\"audio\",\"url\":\"/ear/data/audio/cow moo.wav\"}]}\n";
    EAR_CHECK_MSG(text && strcmp(text, want) == 0, "original answer:\n%s\nwant:\n%s",
                  text ? text : "(null)", want);
    free(text);
    text = ear_query_original_json(idx, EAR_INDEX_IMAGE, hits, 0);
    EAR_CHECK(text && strcmp(text, "{\"cross_modality\":[],\"query_type\":\"image\","
                                   "\"same_modality\":[]}\n") == 0);
    free(text);
    ear_index_close(idx);
}

/* The original's walk: the best 100, five per column, stopping once both are full. */
static void check_original_walk(void)
{
    enum { N = 130 };
    static float vectors[N][2];
    static char paths[N][32];
    ear_index_entry entries[N];
    for (int i = 0; i < N; i++) {
        /* Images are items 0..119 (paths "a..."), sounds 120..129 ("b..."). */
        int image = i < 120;
        snprintf(paths[i], sizeof paths[i], "%s%03d", image ? "a/" : "b/", i);
        vectors[i][0] = 1;
        entries[i] = (ear_index_entry){.kind = image ? EAR_INDEX_IMAGE : EAR_INDEX_AUDIO,
                                       .path = paths[i], .label = "l", .embedding = vectors[i]};
    }
    char path[512];
    ear_test_tmp_path(path, sizeof path, "walk.earindex");
    ear_error err;
    EAR_CHECK(ear_index_write(path, "1111222233334444", 2, EAR_INDEX_F32, entries, N, &err) == 0);
    ear_index *idx = ear_index_open(path, NULL, &err);
    if (!idx)
        return;
    /* 100 images first, then the sounds: the sounds are beyond the top 100. */
    ear_index_hit hits[N];
    for (int i = 0; i < N; i++)
        hits[i] = (ear_index_hit){.item = (size_t)i, .score = 1.0f - (float)i / 1000.0f};
    char *text = ear_query_original_json(idx, EAR_INDEX_AUDIO, hits, N);
    int same = 0, cross = 0;
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    same = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "same_modality"));
    cross = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "cross_modality"));
    EAR_CHECK_MSG(same == 0 && cross == 5, "walk of the top 100: %d same, %d cross", same, cross);
    cJSON_Delete(root);
    free(text);
    /* With the sounds within the top 100: five each, in score order. */
    for (int i = 0; i < N; i++)
        hits[i].item = (size_t)(i % 2 ? 120 + i / 2 % 10 : i);
    text = ear_query_original_json(idx, EAR_INDEX_IMAGE, hits, 20);
    root = text ? cJSON_Parse(text) : NULL;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "same_modality");
    EAR_CHECK(cJSON_GetArraySize(list) == 5);
    const cJSON *last = cJSON_GetArrayItem(list, 4);
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(last, "score");
    EAR_CHECK(cJSON_IsNumber(score) && fabs(score->valuedouble - 0.992) < 1e-9);
    EAR_CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "cross_modality")) == 5);
    cJSON_Delete(root);
    free(text);
    ear_index_close(idx);
}

/* Errors as the original wrote them, with JSON escapes for what a message may hold. */
static void check_original_errors(void)
{
    char *text = ear_query_original_error_json("No file");
    EAR_CHECK(text && strcmp(text, "{\"error\":\"No file\"}\n") == 0);
    free(text);
    text = ear_query_original_error_json("a \"q\" \\ \n\t\x01 \xc3\xa9 \xf0\x9f\x8e\xb5 \xff\x7f");
    const char *want = "{\"error\":\"a \\\"q\\\" \\\\ \\n\\t\\u0001 \\u00e9 \\ud83c\\udfb5 "
                       "\\udcff\\u007f\"}\n";
    EAR_CHECK_MSG(text && strcmp(text, want) == 0, "escapes: %s", text ? text : "(null)");
    free(text);
}

int main(void)
{
    check_urls();
    check_python_scores();
    check_answer();
    check_original_walk();
    check_original_errors();
    return ear_test_finish();
}
