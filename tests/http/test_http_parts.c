/* The HTTP service's parts that need no socket: byte ranges, entity tags,
 * dates, file names, URL unescaping, request ids, k, content types, the
 * embedded page, error bodies and the metrics text. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "http/internal.h"
#include "test.h"

static void check_range(const char *header, uint64_t size, ear_http_range_kind kind,
                        uint64_t first, uint64_t last)
{
    uint64_t a = 12345, b = 67890;
    ear_http_range_kind got = ear_http_parse_range(header, size, &a, &b);
    EAR_CHECK_MSG(got == kind, "range \"%s\" of %llu: kind %d, expected %d", header ? header : "(null)",
                  (unsigned long long)size, (int)got, (int)kind);
    if (got == EAR_HTTP_RANGE_PARTIAL && kind == EAR_HTTP_RANGE_PARTIAL)
        EAR_CHECK_MSG(a == first && b == last, "range \"%s\" of %llu: [%llu, %llu], expected [%llu, %llu]",
                      header, (unsigned long long)size, (unsigned long long)a,
                      (unsigned long long)b, (unsigned long long)first, (unsigned long long)last);
}

static void test_ranges(void)
{
    check_range(NULL, 100, EAR_HTTP_RANGE_NONE, 0, 0);
    check_range("bytes=0-9", 100, EAR_HTTP_RANGE_PARTIAL, 0, 9);
    check_range("bytes=10-", 100, EAR_HTTP_RANGE_PARTIAL, 10, 99);
    check_range("bytes=-10", 100, EAR_HTTP_RANGE_PARTIAL, 90, 99);
    check_range("bytes=-1000", 100, EAR_HTTP_RANGE_PARTIAL, 0, 99);
    check_range("bytes=90-1000", 100, EAR_HTTP_RANGE_PARTIAL, 90, 99);
    check_range("bytes=99-99", 100, EAR_HTTP_RANGE_PARTIAL, 99, 99);
    check_range("Bytes=5-6", 100, EAR_HTTP_RANGE_PARTIAL, 5, 6);
    check_range("bytes=100-", 100, EAR_HTTP_RANGE_UNSATISFIABLE, 0, 0);
    check_range("bytes=200-300", 100, EAR_HTTP_RANGE_UNSATISFIABLE, 0, 0);
    check_range("bytes=-0", 100, EAR_HTTP_RANGE_UNSATISFIABLE, 0, 0);
    check_range("bytes=0-", 0, EAR_HTTP_RANGE_UNSATISFIABLE, 0, 0);
    /* Ignored: the whole file is answered. */
    check_range("bytes=9-0", 100, EAR_HTTP_RANGE_NONE, 0, 0);
    check_range("bytes=0-1,5-6", 100, EAR_HTTP_RANGE_NONE, 0, 0);
    check_range("items=0-1", 100, EAR_HTTP_RANGE_NONE, 0, 0);
    check_range("bytes=a-b", 100, EAR_HTTP_RANGE_NONE, 0, 0);
    check_range("bytes=-", 100, EAR_HTTP_RANGE_NONE, 0, 0);
    check_range("bytes=1-2x", 100, EAR_HTTP_RANGE_NONE, 0, 0);
    check_range("bytes=99999999999999999999-", 100, EAR_HTTP_RANGE_NONE, 0, 0);
}

static void test_etags_and_dates(void)
{
    char etag[64];
    struct timespec mtime = {1700000000, 123456789};
    ear_http_file_etag(etag, sizeof etag, 4096, &mtime);
    EAR_CHECK_MSG(etag[0] == '"' && etag[strlen(etag) - 1] == '"', "etag %s is quoted", etag);
    char other[64];
    struct timespec later = {1700000000, 123456790};
    ear_http_file_etag(other, sizeof other, 4096, &later);
    EAR_CHECK_MSG(strcmp(etag, other) != 0, "a nanosecond changes the etag (%s, %s)", etag, other);
    ear_http_file_etag(other, sizeof other, 4097, &mtime);
    EAR_CHECK_MSG(strcmp(etag, other) != 0, "the size changes the etag");

    EAR_CHECK(ear_http_etag_matches("\"abc\"", "\"abc\""));
    EAR_CHECK(ear_http_etag_matches("W/\"abc\"", "\"abc\""));
    EAR_CHECK(ear_http_etag_matches("\"x\", \"abc\"", "\"abc\""));
    EAR_CHECK(ear_http_etag_matches("\"x\",W/\"abc\" ", "\"abc\""));
    EAR_CHECK(ear_http_etag_matches("*", "\"abc\""));
    EAR_CHECK(!ear_http_etag_matches("\"abcd\"", "\"abc\""));
    EAR_CHECK(!ear_http_etag_matches("\"ab\"", "\"abc\""));
    EAR_CHECK(!ear_http_etag_matches("", "\"abc\""));
    EAR_CHECK(!ear_http_etag_matches(NULL, "\"abc\""));

    char date[40];
    ear_http_format_date(date, sizeof date, 784111777);
    EAR_CHECK_MSG(strcmp(date, "Sun, 06 Nov 1994 08:49:37 GMT") == 0, "date %s", date);
    time_t when = 0;
    EAR_CHECK(ear_http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT", &when) == 0 && when == 784111777);
    ear_http_format_date(date, sizeof date, 1700000000);
    EAR_CHECK(ear_http_parse_date(date, &when) == 0 && when == 1700000000);
    EAR_CHECK(ear_http_parse_date("Sunday, 06-Nov-94 08:49:37 GMT", &when) != 0);
    EAR_CHECK(ear_http_parse_date("Sun, 06 Foo 1994 08:49:37 GMT", &when) != 0);
    EAR_CHECK(ear_http_parse_date("Sun, 06 Nov 1994 08:49:37 CET", &when) != 0);
    EAR_CHECK(ear_http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT trailing", &when) != 0);
    EAR_CHECK(ear_http_parse_date("", &when) != 0);
    EAR_CHECK(ear_http_parse_date(NULL, &when) != 0);
}

static void test_names(void)
{
    static const char *const good[] = {"cow.jpg", "a b.png", "caf\xc3\xa9.wav", "a%20b.jpg",
                                       "100%.png", "a.b.c"};
    static const char *const bad[] = {"", ".", "..", "../x", "a/../b", "a/b", "/etc/passwd",
                                      "..\\x", "a\\b", ".hidden", "a\nb", "a\x7f", "%2e%2e%2fx",
                                      "..%2fx", "%2E%2E", "a%2Fb", "a%5cb", "a%00b", "x..y", "x.."};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        EAR_CHECK_MSG(ear_http_file_name_is_safe(good[i]), "\"%s\" is a fine name", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EAR_CHECK_MSG(!ear_http_file_name_is_safe(bad[i]), "\"%s\" is refused", bad[i]);
    char long_name[300];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    EAR_CHECK(!ear_http_file_name_is_safe(long_name));
}

static void check_unescape(const char *in, const char *expected)
{
    char text[128];
    snprintf(text, sizeof text, "%s", in);
    size_t length = ear_http_unescape(text);
    EAR_CHECK_MSG(strcmp(text, expected) == 0 && length == strlen(expected),
                  "unescape \"%s\": \"%s\" (%zu), expected \"%s\"", in, text, length, expected);
}

static void test_unescape(void)
{
    check_unescape("/data/frames/cow.jpg", "/data/frames/cow.jpg");
    check_unescape("/a%20b", "/a b");
    check_unescape("%2e%2e%2f", "../");
    check_unescape("%2E%2E%5C", "..\\");
    check_unescape("cow.jpg%00.png", "cow.jpg%00.png");
    check_unescape("%", "%");
    check_unescape("%4", "%4");
    check_unescape("%zz", "%zz");
    check_unescape("%25", "%");
    check_unescape("%252e", "%2e");
    check_unescape("caf%C3%A9", "caf\xc3\xa9");
}

static void test_request_ids_and_k(void)
{
    EAR_CHECK(ear_http_request_id_is_sane("abc-DEF_0.9:z"));
    EAR_CHECK(!ear_http_request_id_is_sane(""));
    EAR_CHECK(!ear_http_request_id_is_sane(NULL));
    EAR_CHECK(!ear_http_request_id_is_sane("a b"));
    EAR_CHECK(!ear_http_request_id_is_sane("a\r\nSet-Cookie: x"));
    char long_id[80];
    memset(long_id, 'a', 65);
    long_id[65] = 0;
    EAR_CHECK(!ear_http_request_id_is_sane(long_id));
    long_id[64] = 0;
    EAR_CHECK(ear_http_request_id_is_sane(long_id));

    char first[17], second[17];
    ear_http_request_id_generate(first);
    ear_http_request_id_generate(second);
    EAR_CHECK_MSG(strlen(first) == 16 && strspn(first, "0123456789abcdef") == 16, "id %s", first);
    EAR_CHECK_MSG(strcmp(first, second) != 0, "two ids differ (%s)", first);

    int k = 0;
    EAR_CHECK(ear_http_parse_k(NULL, &k) == 0 && k == 8);
    EAR_CHECK(ear_http_parse_k("1", &k) == 0 && k == 1);
    EAR_CHECK(ear_http_parse_k("50", &k) == 0 && k == 50);
    static const char *const bad[] = {"0", "51", "-1", "", "abc", "5x", " 5", "+5", "0050", "1e1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EAR_CHECK_MSG(ear_http_parse_k(bad[i], &k) != 0, "k=\"%s\" is refused", bad[i]);
}

static void test_content_types_and_assets(void)
{
    EAR_CHECK(strcmp(ear_http_content_type("a.JPG"), "image/jpeg") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("a.jpeg"), "image/jpeg") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("a.png"), "image/png") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("a.webp"), "image/webp") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("a.gif"), "image/gif") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("a.wav"), "audio/wav") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("a.mp3"), "audio/mpeg") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("a.ogg"), "audio/ogg") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("a.oga"), "audio/ogg") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("a.opus"), "audio/ogg") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("a.webm"), "audio/webm") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("a.m4a"), "audio/mp4") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("a.mp4"), "audio/mp4") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("a.flac"), "audio/flac") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("app.js"), "text/javascript; charset=utf-8") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("noext"), "application/octet-stream") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("a.exe"), "application/octet-stream") == 0);
    EAR_CHECK(strcmp(ear_http_content_type("dir.png/x"), "application/octet-stream") == 0);

    /* The embedded page is web/index.html, byte for byte. */
    const ear_http_asset *page = ear_http_asset_find("index.html");
    EAR_CHECK(page != NULL);
    if (page) {
        char path[1024];
        snprintf(path, sizeof path, "%s/web/index.html", ear_test_env("EAR_SOURCE_DIR", "."));
        FILE *f = fopen(path, "rb");
        EAR_CHECK_MSG(f != NULL, "cannot open %s", path);
        if (f) {
            static unsigned char disk[1 << 20];
            size_t n = fread(disk, 1, sizeof disk, f);
            fclose(f);
            EAR_CHECK_MSG(n == page->size && memcmp(disk, page->data, n) == 0,
                          "embedded index.html (%zu bytes) differs from the file (%zu)",
                          page->size, n);
        }
        EAR_CHECK(page->data[page->size] == 0);
        EAR_CHECK(page->etag[0] == '"' && strlen(page->etag) > 2);
    }
    EAR_CHECK(ear_http_asset_find("no-such-file.txt") == NULL);
    EAR_CHECK(ear_http_asset_find("") == NULL || ear_http_asset_count == 0);
}

static void test_error_body(void)
{
    char *body = ear_http_error_body("bad_request", "k \"x\"\n is <bad>");
    EAR_CHECK(body != NULL);
    cJSON *root = body ? cJSON_Parse(body) : NULL;
    EAR_CHECK_MSG(root != NULL, "error body parses: %s", body ? body : "(null)");
    cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
    cJSON *code = cJSON_GetObjectItemCaseSensitive(error, "code");
    cJSON *message = cJSON_GetObjectItemCaseSensitive(error, "message");
    EAR_CHECK(cJSON_IsString(code) && strcmp(code->valuestring, "bad_request") == 0);
    EAR_CHECK(cJSON_IsString(message) && strcmp(message->valuestring, "k \"x\"\n is <bad>") == 0);
    EAR_CHECK(cJSON_GetArraySize(root) == 1 && cJSON_GetArraySize(error) == 2);
    cJSON_Delete(root);
    free(body);
}

static void test_metrics(void)
{
    ear_http_metrics m;
    ear_error err;
    EAR_CHECK(ear_http_metrics_init(&m, &err) == 0);
    ear_http_metrics_record(&m, EAR_HTTP_ROUTE_SEARCH, 200, 0.003);
    ear_http_metrics_record(&m, EAR_HTTP_ROUTE_SEARCH, 200, 0.2);
    ear_http_metrics_record(&m, EAR_HTTP_ROUTE_SEARCH, 503, 20);
    ear_http_metrics_record(&m, EAR_HTTP_ROUTE_SEARCH, 0, 0.001);
    ear_http_metrics_record(&m, EAR_HTTP_ROUTE_FRAMES, 206, 0.0001);
    ear_http_gauges g = {.queue_depth = 3, .running = 1, .workers = 2, .queue_capacity = 16,
                         .index_items = 42, .resident_bytes = ear_http_resident_bytes()};
    EAR_CHECK(g.resident_bytes > 0);
    size_t length = 0;
    char *text = ear_http_metrics_text(&m, &g, &length);
    EAR_CHECK(text != NULL && length == strlen(text));
    if (text) {
        static const char *const lines[] = {
            "ear_http_requests_total{route=\"search\",status=\"200\"} 2\n",
            "ear_http_requests_total{route=\"search\",status=\"503\"} 1\n",
            "ear_http_requests_total{route=\"search\",status=\"aborted\"} 1\n",
            "ear_http_requests_total{route=\"frames\",status=\"206\"} 1\n",
            "ear_http_request_duration_seconds_bucket{route=\"search\",le=\"0.001\"} 1\n",
            "ear_http_request_duration_seconds_bucket{route=\"search\",le=\"0.005\"} 2\n",
            "ear_http_request_duration_seconds_bucket{route=\"search\",le=\"0.25\"} 3\n",
            "ear_http_request_duration_seconds_bucket{route=\"search\",le=\"10\"} 3\n",
            "ear_http_request_duration_seconds_bucket{route=\"search\",le=\"+Inf\"} 4\n",
            "ear_http_request_duration_seconds_sum{route=\"search\"} 20.204000\n",
            "ear_http_request_duration_seconds_count{route=\"search\"} 4\n",
            "# TYPE ear_http_requests_total counter\n",
            "# TYPE ear_http_request_duration_seconds histogram\n",
            "ear_search_queue_depth 3\n",
            "ear_searches_running 1\n",
            "ear_search_workers 2\n",
            "ear_search_queue_capacity 16\n",
            "ear_index_items 42\n",
            "# TYPE process_resident_memory_bytes gauge\n",
        };
        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
            EAR_CHECK_MSG(strstr(text, lines[i]) != NULL, "metrics lack: %s", lines[i]);
        EAR_CHECK_MSG(!strstr(text, "route=\"healthz\""), "no lines for routes never used");
    }
    free(text);
    ear_http_metrics_destroy(&m);
}

int main(void)
{
    test_ranges();
    test_etags_and_dates();
    test_names();
    test_unescape();
    test_request_ids_and_k();
    test_content_types_and_assets();
    test_error_body();
    test_metrics();
    return ear_test_finish();
}
