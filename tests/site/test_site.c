/* The site's pieces without a server: front matter, content folders, pages, the feed, and
 * the dev proxy's request and answer heads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "site.h"
#include "test.h"

static int contains(const char *text, const char *part)
{
    return text && strstr(text, part) != NULL;
}

static int count_of(const char *text, const char *part)
{
    int count = 0;
    for (const char *p = text; p && (p = strstr(p, part)); p += strlen(part))
        count++;
    return count;
}

static void write_text(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    EAR_CHECK_MSG(file != NULL, "cannot write %s", path);
    if (file) {
        fputs(text, file);
        fclose(file);
    }
}

static void test_escaping(void)
{
    ear_site_buffer buffer = {0};
    ear_site_buffer_append_escaped(&buffer, "<a href='x'>&\"</a> plain");
    char *text = ear_site_buffer_take(&buffer, NULL);
    EAR_CHECK_MSG(text && !strcmp(text, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt; plain"),
                  "escaped: %s", text ? text : "(null)");
    free(text);
}

static void test_validators(void)
{
    EAR_CHECK(ear_site_date_is_valid("2024-02-29"));
    EAR_CHECK(!ear_site_date_is_valid("2023-02-29"));
    EAR_CHECK(!ear_site_date_is_valid("2024-13-01"));
    EAR_CHECK(!ear_site_date_is_valid("2024-1-01"));
    EAR_CHECK(!ear_site_date_is_valid("2024-01-01x"));
    EAR_CHECK(ear_site_slug_is_valid("hello-world_2"));
    EAR_CHECK(!ear_site_slug_is_valid("../x"));
    EAR_CHECK(!ear_site_slug_is_valid("Hello"));
    EAR_CHECK(!ear_site_slug_is_valid(""));
    EAR_CHECK(!ear_site_slug_is_valid("-x"));
    EAR_CHECK(ear_site_path_is_safe("style.css"));
    EAR_CHECK(ear_site_path_is_safe("img/a.png"));
    EAR_CHECK(!ear_site_path_is_safe("../etc/passwd"));
    EAR_CHECK(!ear_site_path_is_safe("a/../b"));
    EAR_CHECK(!ear_site_path_is_safe("a/./b"));
    EAR_CHECK(!ear_site_path_is_safe(".git/config"));
    EAR_CHECK(!ear_site_path_is_safe("/etc/passwd"));
    EAR_CHECK(!ear_site_path_is_safe("a//b"));
    EAR_CHECK(!ear_site_path_is_safe("a\\b"));
    EAR_CHECK(!ear_site_path_is_safe("a/"));
    EAR_CHECK(!ear_site_path_is_safe(""));
}

/* Parses text as a post; returns the status and leaves the error in err. */
static int parse(const char *text, ear_site_page *page, ear_error *err)
{
    memset(page, 0, sizeof *page);
    err->message[0] = 0;
    return ear_site_page_parse(text, strlen(text), "posts/x.md", page, err);
}

static void test_front_matter(void)
{
    ear_site_page page;
    ear_error err;
    int status = parse("---\n# a comment\ntitle: \"  Spaced <b> title \"\ndate: 2024-05-06\n"
                       "summary: A summary: with a colon\ndraft: false\n---\n"
                       "## Heading\n\nText *here* and <script>alert(1)</script>.\n",
                       &page, &err);
    EAR_CHECK_MSG(status == 0, "good post refused: %s", err.message);
    EAR_CHECK(page.title && !strcmp(page.title, "  Spaced <b> title "));
    EAR_CHECK(page.date && !strcmp(page.date, "2024-05-06"));
    EAR_CHECK(page.summary && !strcmp(page.summary, "A summary: with a colon"));
    EAR_CHECK(!page.draft);
    EAR_CHECK(contains(page.html, "<h2>Heading</h2>"));
    EAR_CHECK(contains(page.html, "<em>here</em>"));
    EAR_CHECK_MSG(!contains(page.html, "<script>"), "raw HTML kept: %s", page.html);
    ear_site_page_free(&page);

    EAR_CHECK(parse("---\r\ntitle: CRLF\r\ndate: 2024-01-01\r\ndraft: true\r\n---\r\nbody\r\n",
                    &page, &err) == 0);
    EAR_CHECK(page.draft && page.title && !strcmp(page.title, "CRLF"));
    ear_site_page_free(&page);

    static const struct {
        const char *text;
        const char *message_part;
    } bad[] = {
        {"title: no fence\n", "no front matter"},
        {"---\ntitle: x\n", "not closed"},
        {"---\ntitel: x\n---\n", "unknown key 'titel'"},
        {"---\ntitle: x\ntitle: y\n---\n", "given twice"},
        {"---\ntitle: x\ndate: 2024-02-30\n---\n", "2024-02-30"},
        {"---\ntitle: x\nupdated: soon\n---\n", "updated"},
        {"---\ntitle: x\ndraft: maybe\n---\n", "draft must be"},
        {"---\ndate: 2024-01-01\n---\n", "no title"},
        {"---\ntitle x\n---\n", "posts/x.md:2"},
        {"---\ntitle: \xff\xfe\n---\n", "UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        status = parse(bad[i].text, &page, &err);
        EAR_CHECK_MSG(status == -1 && contains(err.message, bad[i].message_part),
                      "case %zu: status %d, message '%s', wanted '%s'", i, status, err.message,
                      bad[i].message_part);
        ear_site_page_free(&page);
    }
    static const char with_nul[] = "---\ntitle: a\0b\n---\n";
    memset(&page, 0, sizeof page);
    EAR_CHECK(ear_site_page_parse(with_nul, sizeof with_nul - 1, "n.md", &page, &err) == -1 &&
              contains(err.message, "NUL"));
    ear_site_page_free(&page);
}

/* A content folder under EAR_TEST_TMP, with three posts (one a draft). */
static void make_content(const char *root)
{
    char path[4096];
    mkdir(root, 0755);
    /* Left over if an earlier run stopped half-way. */
    snprintf(path, sizeof path, "%s/posts/Bad Name.md", root);
    unlink(path);
    snprintf(path, sizeof path, "%s/posts/undated.md", root);
    unlink(path);
    snprintf(path, sizeof path, "%s/posts", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/templates", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/index.md", root);
    write_text(path, "---\ntitle: Test & Site\nauthor: A. Author\ntagline: Things\n---\n"
                     "Welcome. See [Ear](/ear/).\n");
    snprintf(path, sizeof path, "%s/posts/older.md", root);
    write_text(path, "---\ntitle: Older <post>\ndate: 2024-01-02\nupdated: 2024-04-01\n---\n"
                     "Old *text*.\n");
    snprintf(path, sizeof path, "%s/posts/newer.md", root);
    write_text(path, "---\ntitle: Newer\ndate: 2024-03-01\nsummary: The new one\n---\nNew.\n");
    snprintf(path, sizeof path, "%s/posts/secret.md", root);
    write_text(path, "---\ntitle: Secret draft\ndate: 2024-05-01\ndraft: true\n---\nHidden.\n");
    snprintf(path, sizeof path, "%s/templates/layout.html", root);
    write_text(path, "<title>{{title}}</title><h1>{{ site_title }}</h1><p>{{tagline}}</p>"
                     "{{content}}<footer>{{author}} {{year}}</footer>\n");
}

static void test_content_and_pages(const char *root)
{
    ear_error err;
    ear_site_content *content = ear_site_content_load(root, &err);
    EAR_CHECK_MSG(content != NULL, "load: %s", err.message);
    if (!content)
        return;
    EAR_CHECK_MSG(content->post_count == 2, "%zu posts (the draft must be left out)",
                  content->post_count);
    if (content->post_count == 2) {
        EAR_CHECK(!strcmp(content->posts[0].slug, "newer"));
        EAR_CHECK(!strcmp(content->posts[1].slug, "older"));
    }
    EAR_CHECK(ear_site_content_find_post(content, "older") != NULL);
    EAR_CHECK(ear_site_content_find_post(content, "secret") == NULL);
    EAR_CHECK(ear_site_content_find_post(content, "missing") == NULL);

    size_t size = 0;
    char *home = ear_site_render_home(content, &size);
    EAR_CHECK(home && size == strlen(home));
    EAR_CHECK_MSG(contains(home, "<h1>Test &amp; Site</h1>"), "home: %s", home ? home : "(none)");
    EAR_CHECK(contains(home, "<title>Test &amp; Site</title>"));
    EAR_CHECK(contains(home, "href=\"/ear/\""));
    EAR_CHECK(contains(home, "href=\"/blog/newer\""));
    EAR_CHECK(contains(home, "A. Author"));
    EAR_CHECK(!contains(home, "Secret"));
    EAR_CHECK(!contains(home, "{{"));
    free(home);

    char *blog = ear_site_render_blog(content, &size);
    EAR_CHECK(blog && contains(blog, "Older &lt;post&gt;") && contains(blog, "The new one"));
    EAR_CHECK(blog && strstr(blog, "/blog/newer") < strstr(blog, "/blog/older"));
    free(blog);

    char *post = ear_site_render_post(content, ear_site_content_find_post(content, "older"),
                                      &size);
    EAR_CHECK(contains(post, "<h1>Older &lt;post&gt;</h1>"));
    EAR_CHECK(contains(post, "<em>text</em>"));
    EAR_CHECK(contains(post, "updated 2024-04-01"));
    EAR_CHECK(contains(post, "<title>Older &lt;post&gt; \xc2\xb7 Test &amp; Site</title>"));
    free(post);

    char *error_page = ear_site_render_error(content, 404, "No <such> post", &size);
    EAR_CHECK(contains(error_page, "404 Not Found") && contains(error_page, "No &lt;such&gt;"));
    free(error_page);
    error_page = ear_site_render_error(NULL, 502, "Ear is down", &size);
    EAR_CHECK(contains(error_page, "502 Bad Gateway") && contains(error_page, "Ear is down"));
    free(error_page);

    char *feed = ear_site_render_feed(content, "https://example.org//", &size);
    EAR_CHECK(contains(feed, "<feed xmlns=\"http://www.w3.org/2005/Atom\""));
    EAR_CHECK(contains(feed, "<id>https://example.org/blog/older</id>"));
    EAR_CHECK(contains(feed, "href=\"https://example.org/feed.xml\""));
    /* The feed's <updated> is the latest of all dates, the older post's update here. */
    EAR_CHECK_MSG(contains(feed, "<id>https://example.org/</id>\n"
                                 "<updated>2024-04-01T00:00:00Z</updated>"),
                  "feed: %s", feed ? feed : "(none)");
    EAR_CHECK(contains(feed, "&lt;em&gt;text&lt;/em&gt;"));
    EAR_CHECK(count_of(feed, "<entry>") == 2);
    EAR_CHECK(!contains(feed, "Secret"));
    free(feed);
    ear_site_content_free(content);
}

static void test_bad_content(const char *root)
{
    char path[4096];
    ear_error err;
    ear_site_content *content;

    snprintf(path, sizeof path, "%s/templates/layout.html", root);
    write_text(path, "<title>{{title}}</title>{{contents}}\n");
    content = ear_site_content_load(root, &err);
    EAR_CHECK_MSG(!content && contains(err.message, "layout.html") &&
                      contains(err.message, "contents"),
                  "bad placeholder: %s", content ? "loaded" : err.message);
    ear_site_content_free(content);
    write_text(path, "<title>{{title}}</title> no content\n");
    content = ear_site_content_load(root, &err);
    EAR_CHECK(!content && contains(err.message, "{{content}}"));
    ear_site_content_free(content);
    unlink(path);
    content = ear_site_content_load(root, &err);
    EAR_CHECK_MSG(content && contains(content->layout, "{{content}}"),
                  "no layout: the built-in one, %s", content ? "" : err.message);
    ear_site_content_free(content);

    snprintf(path, sizeof path, "%s/posts/Bad Name.md", root);
    write_text(path, "---\ntitle: x\ndate: 2024-01-01\n---\n");
    content = ear_site_content_load(root, &err);
    EAR_CHECK_MSG(!content && contains(err.message, "Bad Name.md"), "bad name: %s",
                  content ? "loaded" : err.message);
    ear_site_content_free(content);
    unlink(path);

    snprintf(path, sizeof path, "%s/posts/undated.md", root);
    write_text(path, "---\ntitle: x\n---\n");
    content = ear_site_content_load(root, &err);
    EAR_CHECK(!content && contains(err.message, "undated.md") && contains(err.message, "date"));
    ear_site_content_free(content);
    unlink(path);

    content = ear_site_content_load("/nonexistent/content", &err);
    EAR_CHECK(!content && contains(err.message, "/nonexistent/content/index.md"));
    ear_site_content_free(content);
}

static void test_upstream_and_heads(void)
{
    ear_site_upstream upstream;
    ear_error err;
    EAR_CHECK(ear_site_upstream_parse("127.0.0.1:5001", &upstream, &err) == 0 &&
              !strcmp(upstream.host, "127.0.0.1") && !strcmp(upstream.port, "5001"));
    EAR_CHECK(ear_site_upstream_parse("[::1]:80", &upstream, &err) == 0 &&
              !strcmp(upstream.host, "::1") && !strcmp(upstream.port, "80"));
    EAR_CHECK(ear_site_upstream_parse("localhost", &upstream, &err) == -1);
    EAR_CHECK(ear_site_upstream_parse("h:0", &upstream, &err) == -1);
    EAR_CHECK(ear_site_upstream_parse("h:70000", &upstream, &err) == -1);
    EAR_CHECK(ear_site_upstream_parse(":80", &upstream, &err) == -1);

    EAR_CHECK(ear_site_target_is_clean("/"));
    EAR_CHECK(ear_site_target_is_clean("/data/frames/a%20b.jpg?x=../y"));
    EAR_CHECK(ear_site_target_is_clean("/a.b/..c/...?"));
    EAR_CHECK(!ear_site_target_is_clean("/../etc/passwd"));
    EAR_CHECK(!ear_site_target_is_clean("/data/.."));
    EAR_CHECK(!ear_site_target_is_clean("/data/./x"));
    EAR_CHECK(!ear_site_target_is_clean("/%2e%2E/etc"));
    EAR_CHECK(!ear_site_target_is_clean("/.%2e/etc"));
    EAR_CHECK(!ear_site_target_is_clean("/data/..%2fetc"));
    EAR_CHECK(!ear_site_target_is_clean("/data/%2F"));
    EAR_CHECK(!ear_site_target_is_clean("data"));

    const ear_site_header headers[] = {
        {"Host", "site.test:8000"}, {"Connection", "keep-alive, X-Private"},
        {"X-Private", "hop only"},  {"Keep-Alive", "timeout=5"},
        {"Expect", "100-continue"}, {"X-Forwarded-For", "10.0.0.1"},
        {"Content-Length", "99"},   {"Content-Type", "audio/webm"},
        {"X-Custom", "kept"},       {"Transfer-Encoding", "chunked"},
    };
    size_t size;
    char *head = ear_site_proxy_request_head("POST", "/api/search?k=3", headers,
                                             sizeof headers / sizeof headers[0], "127.0.0.1",
                                             10, &size, &err);
    EAR_CHECK(head && size == strlen(head));
    EAR_CHECK_MSG(head && !strncmp(head, "POST /api/search?k=3 HTTP/1.0\r\n", 31), "head: %s",
                  head ? head : "(none)");
    EAR_CHECK(contains(head, "\r\nHost: site.test:8000\r\n"));
    EAR_CHECK(contains(head, "\r\nX-Real-IP: 127.0.0.1\r\n"));
    EAR_CHECK(contains(head, "\r\nX-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n"));
    EAR_CHECK(contains(head, "\r\nX-Forwarded-Proto: http\r\n"));
    EAR_CHECK(contains(head, "\r\nConnection: close\r\n"));
    EAR_CHECK(contains(head, "\r\nContent-Type: audio/webm\r\n"));
    EAR_CHECK(contains(head, "\r\nX-Custom: kept\r\n"));
    EAR_CHECK(count_of(head, "Content-Length") == 1 && contains(head, "Content-Length: 10\r\n"));
    EAR_CHECK(!contains(head, "Keep-Alive") && !contains(head, "Expect") &&
              !contains(head, "X-Private") && !contains(head, "Transfer-Encoding"));
    EAR_CHECK(count_of(head, "\r\n\r\n") == 1 && head &&
              !strcmp(head + size - 4, "\r\n\r\n"));
    free(head);

    head = ear_site_proxy_request_head("GET", "/", headers, 1, "::1", -1, &size, &err);
    EAR_CHECK(head && !contains(head, "Content-Length") && contains(head, "X-Real-IP: ::1"));
    free(head);
    const ear_site_header injected[] = {{"X-Bad", "a\r\nX-Injected: 1"}};
    EAR_CHECK(!ear_site_proxy_request_head("GET", "/", injected, 1, "1.2.3.4", -1, &size, &err));
    EAR_CHECK(!ear_site_proxy_request_head("GET", "/a b", NULL, 0, "1.2.3.4", -1, &size, &err));
    EAR_CHECK(!ear_site_proxy_request_head("G T", "/", NULL, 0, "1.2.3.4", -1, &size, &err));
    EAR_CHECK(!ear_site_proxy_request_head("GET", "http://x/", NULL, 0, "1", -1, &size, &err));

    char answer[] = "HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
                    "Content-Length:  57 \r\nX-A: b: c\r\n\r\n";
    ear_site_response_head parsed;
    EAR_CHECK(ear_site_response_head_parse(answer, sizeof answer - 1, &parsed, &err) == 0);
    EAR_CHECK(parsed.status == 413 && parsed.content_length == 57 && !parsed.chunked);
    EAR_CHECK(parsed.header_count == 3 && !strcmp(parsed.headers[2].name, "X-A") &&
              !strcmp(parsed.headers[2].value, "b: c"));
    char chunked[] = "HTTP/1.1 200 OK\nTransfer-Encoding: gzip, chunked\n\n";
    EAR_CHECK(ear_site_response_head_parse(chunked, sizeof chunked - 1, &parsed, &err) == 0 &&
              parsed.chunked && parsed.content_length == -1);
    char *bad[] = {strdup("HTTP/2 200 OK\r\n\r\n"), strdup("HTTP/1.1 20 OK\r\n\r\n"),
                   strdup("HTTP/1.1 200 OK\r\n folded\r\n\r\n"),
                   strdup("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
                   strdup("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
                   strdup("HTTP/1.1 200 OK\r\nNo colon\r\n\r\n"),
                   strdup("HTTP/1.1 200 OK\r\nX: y\r\n")};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EAR_CHECK_MSG(bad[i] && ear_site_response_head_parse(bad[i], strlen(bad[i]), &parsed,
                                                             &err) == -1,
                      "bad answer head %zu accepted", i);
        free(bad[i]);
    }
}

int main(void)
{
    char root[2048];
    ear_test_tmp_path(root, sizeof root, "site_units_content");
    test_escaping();
    test_validators();
    test_front_matter();
    make_content(root);
    test_content_and_pages(root);
    test_bad_content(root);
    test_upstream_and_heads();
    return ear_test_finish();
}
