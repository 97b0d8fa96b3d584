#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "site.h"

/* How many posts the home page lists before "All posts". */
#define HOME_RECENT_POSTS 5

static const char *const layout_names[] = {"title", "site_title", "tagline", "author", "year",
                                           "content"};
enum { LAYOUT_TITLE, LAYOUT_SITE_TITLE, LAYOUT_TAGLINE, LAYOUT_AUTHOR, LAYOUT_YEAR,
       LAYOUT_CONTENT, LAYOUT_NAME_COUNT };

static const char default_layout[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>{{title}}</title>\n"
    "<link rel=\"alternate\" type=\"application/atom+xml\" title=\"{{site_title}}\" "
    "href=\"/feed.xml\">\n"
    "</head>\n"
    "<body>\n"
    "<header><a href=\"/\">{{site_title}}</a> <nav><a href=\"/blog/\">Blog</a> "
    "<a href=\"/ear/\">Ear</a> <a href=\"/feed.xml\">Feed</a></nav></header>\n"
    "<main>\n{{content}}\n</main>\n"
    "<footer>&copy; {{year}} {{author}}</footer>\n"
    "</body>\n"
    "</html>\n";

const char *ear_site_default_layout(void)
{
    return default_layout;
}

/* Finds the placeholder starting at open ("{{"): its index in layout_names, or -1 if unknown;
 * *after points past the closing "}}" (NULL if there is none). */
static int layout_placeholder(const char *open, const char **after)
{
    const char *close = strstr(open + 2, "}}");
    *after = close ? close + 2 : NULL;
    if (!close)
        return -1;
    const char *start = open + 2, *end = close;
    while (start < end && *start == ' ')
        start++;
    while (end > start && end[-1] == ' ')
        end--;
    for (int i = 0; i < LAYOUT_NAME_COUNT; i++)
        if (strlen(layout_names[i]) == (size_t)(end - start) &&
            !memcmp(layout_names[i], start, (size_t)(end - start)))
            return i;
    return -1;
}

int ear_site_layout_check(const char *layout, ear_error *err)
{
    int content_seen = 0;
    for (const char *open = strstr(layout, "{{"); open; open = strstr(open, "{{")) {
        const char *after;
        int index = layout_placeholder(open, &after);
        if (!after)
            return ear_error_set(err, "'{{' without '}}'");
        if (index < 0)
            return ear_error_set(err, "unknown placeholder '%.*s' (known: {{title}}, "
                                      "{{site_title}}, {{tagline}}, {{author}}, {{year}}, "
                                      "{{content}})",
                                 (int)(after - open > 60 ? 60 : after - open), open);
        content_seen |= index == LAYOUT_CONTENT;
        open = after;
    }
    if (!content_seen)
        return ear_error_set(err, "no {{content}} placeholder: pages would be empty");
    return 0;
}

/* The site's name, from index.md's title. */
static const char *site_title(const ear_site_content *content)
{
    return content && content->home.title ? content->home.title : "Ear";
}

static const char *site_author(const ear_site_content *content)
{
    return content && content->home.author ? content->home.author : site_title(content);
}

/* The layout filled in: text values are escaped, content_html is put as it is. */
static char *render_layout(const ear_site_content *content, const char *title,
                           const char *content_html, size_t *size)
{
    const char *layout = content && content->layout ? content->layout : default_layout;
    char year[16];
    time_t now = time(NULL);
    struct tm calendar;
    gmtime_r(&now, &calendar);
    snprintf(year, sizeof year, "%d", calendar.tm_year + 1900);
    const char *values[LAYOUT_NAME_COUNT] = {
        [LAYOUT_TITLE] = title,
        [LAYOUT_SITE_TITLE] = site_title(content),
        [LAYOUT_TAGLINE] = content && content->home.tagline ? content->home.tagline : "",
        [LAYOUT_AUTHOR] = site_author(content),
        [LAYOUT_YEAR] = year,
        [LAYOUT_CONTENT] = content_html,
    };
    ear_site_buffer out = {0};
    const char *run = layout;
    for (const char *open = strstr(layout, "{{"); open; open = strstr(run, "{{")) {
        const char *after;
        int index = layout_placeholder(open, &after);
        if (index < 0) {
            /* Checked at load; the built-in layout and a checked one never get here. */
            break;
        }
        ear_site_buffer_append(&out, run, (size_t)(open - run));
        if (index == LAYOUT_CONTENT)
            ear_site_buffer_append_text(&out, values[index]);
        else
            ear_site_buffer_append_escaped(&out, values[index]);
        run = after;
    }
    ear_site_buffer_append_text(&out, run);
    return ear_site_buffer_take(&out, size);
}

/* "Title · Site", the document title of every page but the home page. */
static char *document_title(const ear_site_content *content, const char *title)
{
    ear_site_buffer out = {0};
    ear_site_buffer_printf(&out, "%s \xc2\xb7 %s", title, site_title(content));
    return ear_site_buffer_take(&out, NULL);
}

static void append_post_item(ear_site_buffer *out, const ear_site_page *post)
{
    ear_site_buffer_append_text(out, "<li><time datetime=\"");
    ear_site_buffer_append_escaped(out, post->date);
    ear_site_buffer_append_text(out, "\">");
    ear_site_buffer_append_escaped(out, post->date);
    ear_site_buffer_printf(out, "</time> <a href=\"/blog/%s\">", post->slug);
    ear_site_buffer_append_escaped(out, post->title);
    ear_site_buffer_append_text(out, "</a>");
    if (post->summary && *post->summary) {
        ear_site_buffer_append_text(out, "<p>");
        ear_site_buffer_append_escaped(out, post->summary);
        ear_site_buffer_append_text(out, "</p>");
    }
    ear_site_buffer_append_text(out, "</li>\n");
}

char *ear_site_render_home(const ear_site_content *content, size_t *size)
{
    ear_site_buffer body = {0};
    ear_site_buffer_append_text(&body, content->home.html);
    if (content->post_count) {
        ear_site_buffer_append_text(&body, "<section class=\"recent\">\n<h2>Recent posts</h2>\n"
                                           "<ul class=\"posts\">\n");
        for (size_t i = 0; i < content->post_count && i < HOME_RECENT_POSTS; i++)
            append_post_item(&body, &content->posts[i]);
        ear_site_buffer_append_text(&body, "</ul>\n<p><a href=\"/blog/\">All posts</a></p>\n"
                                           "</section>\n");
    }
    char *html = ear_site_buffer_take(&body, NULL);
    if (!html)
        return NULL;
    char *page = render_layout(content, site_title(content), html, size);
    free(html);
    return page;
}

char *ear_site_render_blog(const ear_site_content *content, size_t *size)
{
    ear_site_buffer body = {0};
    ear_site_buffer_append_text(&body, "<h1>Blog</h1>\n");
    if (!content->post_count)
        ear_site_buffer_append_text(&body, "<p>No posts yet.</p>\n");
    else
        ear_site_buffer_append_text(&body, "<ul class=\"posts\">\n");
    for (size_t i = 0; i < content->post_count; i++)
        append_post_item(&body, &content->posts[i]);
    if (content->post_count)
        ear_site_buffer_append_text(&body, "</ul>\n");
    ear_site_buffer_append_text(&body, "<p><a href=\"/feed.xml\">Atom feed</a></p>\n");
    char *html = ear_site_buffer_take(&body, NULL);
    char *title = document_title(content, "Blog");
    char *page = html && title ? render_layout(content, title, html, size) : NULL;
    free(html);
    free(title);
    return page;
}

char *ear_site_render_post(const ear_site_content *content, const ear_site_page *post,
                           size_t *size)
{
    ear_site_buffer body = {0};
    ear_site_buffer_append_text(&body, "<article class=\"post\">\n<header>\n<h1>");
    ear_site_buffer_append_escaped(&body, post->title);
    ear_site_buffer_append_text(&body, "</h1>\n<p class=\"meta\"><time datetime=\"");
    ear_site_buffer_append_escaped(&body, post->date);
    ear_site_buffer_append_text(&body, "\">");
    ear_site_buffer_append_escaped(&body, post->date);
    ear_site_buffer_append_text(&body, "</time>");
    if (post->updated) {
        ear_site_buffer_append_text(&body, ", updated ");
        ear_site_buffer_append_escaped(&body, post->updated);
    }
    if (post->author) {
        ear_site_buffer_append_text(&body, ", by ");
        ear_site_buffer_append_escaped(&body, post->author);
    }
    ear_site_buffer_append_text(&body, "</p>\n</header>\n");
    ear_site_buffer_append_text(&body, post->html);
    ear_site_buffer_append_text(&body, "</article>\n<nav class=\"post-nav\"><a href=\"/blog/\">"
                                       "All posts</a></nav>\n");
    char *html = ear_site_buffer_take(&body, NULL);
    char *title = document_title(content, post->title);
    char *page = html && title ? render_layout(content, title, html, size) : NULL;
    free(html);
    free(title);
    return page;
}

static const char *status_text(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}

char *ear_site_render_error(const ear_site_content *content, int status, const char *message,
                            size_t *size)
{
    ear_site_buffer body = {0}, heading = {0};
    ear_site_buffer_printf(&heading, "%d %s", status, status_text(status));
    ear_site_buffer_append_text(&body, "<h1>");
    ear_site_buffer_append_escaped(&body, heading.data ? heading.data : "Error");
    ear_site_buffer_append_text(&body, "</h1>\n<p>");
    ear_site_buffer_append_escaped(&body, message);
    ear_site_buffer_append_text(&body, "</p>\n<p><a href=\"/\">Home</a></p>\n");
    char *html = ear_site_buffer_take(&body, NULL);
    char *heading_text = ear_site_buffer_take(&heading, NULL);
    char *title = heading_text ? document_title(content, heading_text) : NULL;
    char *page = html && title ? render_layout(content, title, html, size) : NULL;
    free(html);
    free(heading_text);
    free(title);
    return page;
}

/* An Atom date-time from YYYY-MM-DD: midnight UTC, so the feed never depends on time zones. */
static void append_feed_time(ear_site_buffer *out, const char *tag, const char *date)
{
    ear_site_buffer_printf(out, "<%s>%sT00:00:00Z</%s>\n", tag, date, tag);
}

static const char *post_updated(const ear_site_page *post)
{
    return post->updated && strcmp(post->updated, post->date) > 0 ? post->updated : post->date;
}

char *ear_site_render_feed(const ear_site_content *content, const char *base_url, size_t *size)
{
    ear_site_buffer base = {0};
    ear_site_buffer_append_text(&base, base_url);
    while (base.size && base.data[base.size - 1] == '/')
        base.data[--base.size] = 0;
    char *root = ear_site_buffer_take(&base, NULL);
    if (!root)
        return NULL;

    const char *latest = NULL;
    for (size_t i = 0; i < content->post_count; i++)
        if (!latest || strcmp(post_updated(&content->posts[i]), latest) > 0)
            latest = post_updated(&content->posts[i]);

    ear_site_buffer out = {0};
    ear_site_buffer_append_text(&out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                                      "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:base=\"");
    ear_site_buffer_append_escaped(&out, root);
    ear_site_buffer_append_text(&out, "/\">\n<title>");
    ear_site_buffer_append_escaped(&out, site_title(content));
    ear_site_buffer_append_text(&out, "</title>\n");
    if (content->home.tagline) {
        ear_site_buffer_append_text(&out, "<subtitle>");
        ear_site_buffer_append_escaped(&out, content->home.tagline);
        ear_site_buffer_append_text(&out, "</subtitle>\n");
    }
    ear_site_buffer_append_text(&out, "<link rel=\"alternate\" type=\"text/html\" href=\"");
    ear_site_buffer_append_escaped(&out, root);
    ear_site_buffer_append_text(&out, "/\"/>\n<link rel=\"self\" "
                                      "type=\"application/atom+xml\" href=\"");
    ear_site_buffer_append_escaped(&out, root);
    ear_site_buffer_append_text(&out, "/feed.xml\"/>\n<id>");
    ear_site_buffer_append_escaped(&out, root);
    ear_site_buffer_append_text(&out, "/</id>\n");
    if (latest) {
        append_feed_time(&out, "updated", latest);
    } else {
        /* No posts: the feed changed when the site started serving, as good as any. */
        char now[32];
        time_t seconds = time(NULL);
        struct tm calendar;
        gmtime_r(&seconds, &calendar);
        strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &calendar);
        ear_site_buffer_printf(&out, "<updated>%s</updated>\n", now);
    }
    ear_site_buffer_append_text(&out, "<author><name>");
    ear_site_buffer_append_escaped(&out, site_author(content));
    ear_site_buffer_append_text(&out, "</name></author>\n");
    for (size_t i = 0; i < content->post_count; i++) {
        const ear_site_page *post = &content->posts[i];
        ear_site_buffer_append_text(&out, "<entry>\n<title>");
        ear_site_buffer_append_escaped(&out, post->title);
        ear_site_buffer_append_text(&out, "</title>\n<link rel=\"alternate\" "
                                          "type=\"text/html\" href=\"");
        ear_site_buffer_append_escaped(&out, root);
        ear_site_buffer_printf(&out, "/blog/%s\"/>\n<id>", post->slug);
        ear_site_buffer_append_escaped(&out, root);
        ear_site_buffer_printf(&out, "/blog/%s</id>\n", post->slug);
        append_feed_time(&out, "published", post->date);
        append_feed_time(&out, "updated", post_updated(post));
        if (post->author) {
            ear_site_buffer_append_text(&out, "<author><name>");
            ear_site_buffer_append_escaped(&out, post->author);
            ear_site_buffer_append_text(&out, "</name></author>\n");
        }
        if (post->summary && *post->summary) {
            ear_site_buffer_append_text(&out, "<summary>");
            ear_site_buffer_append_escaped(&out, post->summary);
            ear_site_buffer_append_text(&out, "</summary>\n");
        }
        ear_site_buffer_append_text(&out, "<content type=\"html\">");
        ear_site_buffer_append_escaped(&out, post->html);
        ear_site_buffer_append_text(&out, "</content>\n</entry>\n");
    }
    ear_site_buffer_append_text(&out, "</feed>\n");
    free(root);
    return ear_site_buffer_take(&out, size);
}
