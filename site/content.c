#include <cmark.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "site.h"

void ear_site_page_free(ear_site_page *page)
{
    free(page->slug);
    free(page->title);
    free(page->date);
    free(page->updated);
    free(page->summary);
    free(page->author);
    free(page->url);
    free(page->tagline);
    free(page->html);
    memset(page, 0, sizeof *page);
}

int ear_site_date_is_valid(const char *text)
{
    static const int days_in_month[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(text) != 10 || text[4] != '-' || text[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (text[i] < '0' || text[i] > '9'))
            return 0;
    int year = atoi(text);
    int month = atoi(text + 5);
    int day = atoi(text + 8);
    if (year < 1970 || month < 1 || month > 12 || day < 1 || day > days_in_month[month - 1])
        return 0;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return !(month == 2 && day == 29 && !leap);
}

int ear_site_slug_is_valid(const char *slug)
{
    size_t length = strlen(slug);
    if (length == 0 || length > 100 || slug[0] == '-' || slug[0] == '_')
        return 0;
    for (const char *p = slug; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return 0;
    return 1;
}

int ear_site_path_is_safe(const char *path)
{
    if (!*path || *path == '/')
        return 0;
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
            return 0;
    const char *segment = path;
    for (;;) {
        const char *end = strchr(segment, '/');
        size_t length = end ? (size_t)(end - segment) : strlen(segment);
        /* A leading dot covers ".", ".." and hidden files such as .git or .htpasswd. */
        if (length == 0 || segment[0] == '.')
            return 0;
        if (!end)
            return 1;
        segment = end + 1;
    }
}

/* Well-formed UTF-8 (no overlong forms, no surrogates), so titles can be trusted in pages. */
static int text_is_utf8(const unsigned char *text, size_t size)
{
    size_t i = 0;
    while (i < size) {
        unsigned char c = text[i];
        size_t extra;
        unsigned int code, minimum;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1, code = c & 0x1f, minimum = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2, code = c & 0x0f, minimum = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3, code = c & 0x07, minimum = 0x10000;
        } else {
            return 0;
        }
        if (size - i <= extra)
            return 0;
        for (size_t k = 1; k <= extra; k++) {
            if ((text[i + k] & 0xc0) != 0x80)
                return 0;
            code = (code << 6) | (text[i + k] & 0x3f);
        }
        if (code < minimum || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
            return 0;
        i += extra + 1;
    }
    return 1;
}

static char *trimmed_copy(const char *start, const char *end)
{
    while (start < end && (*start == ' ' || *start == '\t'))
        start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    /* Quotes are optional, as in YAML, for values that start or end with spaces or '#'. */
    if (end - start >= 2 && (*start == '"' || *start == '\'') && end[-1] == *start) {
        start++;
        end--;
    }
    return strndup(start, (size_t)(end - start));
}

/* The line [start, end) without its line ending is exactly "---". */
static int is_fence(const char *start, const char *end)
{
    if (end > start && end[-1] == '\r')
        end--;
    return end - start == 3 && memcmp(start, "---", 3) == 0;
}

static char **page_field(ear_site_page *page, const char *key)
{
    if (!strcmp(key, "title"))
        return &page->title;
    if (!strcmp(key, "date"))
        return &page->date;
    if (!strcmp(key, "updated"))
        return &page->updated;
    if (!strcmp(key, "summary"))
        return &page->summary;
    if (!strcmp(key, "author"))
        return &page->author;
    if (!strcmp(key, "url"))
        return &page->url;
    if (!strcmp(key, "tagline"))
        return &page->tagline;
    return NULL;
}

int ear_site_page_parse(const char *text, size_t size, const char *name, ear_site_page *page,
                        ear_error *err)
{
    if (memchr(text, 0, size))
        return ear_error_set(err, "%s: not a text file (holds NUL bytes)", name);
    if (!text_is_utf8((const unsigned char *)text, size))
        return ear_error_set(err, "%s: not UTF-8 text", name);
    const char *end = text + size;
    const char *line = text;
    const char *line_end = memchr(line, '\n', size);
    if (!line_end || !is_fence(line, line_end))
        return ear_error_set(err, "%s: no front matter (the first line must be '---')", name);
    int line_number = 1;
    const char *body = NULL;
    for (line = line_end + 1; line < end; line = line_end + 1) {
        line_number++;
        line_end = memchr(line, '\n', (size_t)(end - line));
        if (!line_end)
            line_end = end;
        if (is_fence(line, line_end)) {
            body = line_end < end ? line_end + 1 : end;
            break;
        }
        const char *p = line;
        while (p < line_end && (*p == ' ' || *p == '\t' || *p == '\r'))
            p++;
        if (p == line_end || *p == '#')
            continue;
        const char *colon = memchr(line, ':', (size_t)(line_end - line));
        if (!colon)
            return ear_error_set(err, "%s:%d: expected 'key: value'", name, line_number);
        char *key = trimmed_copy(line, colon);
        if (!key)
            return ear_error_set(err, "%s: out of memory", name);
        int known = 1, duplicate = 0;
        if (!strcmp(key, "draft")) {
            char *value = trimmed_copy(colon + 1, line_end);
            if (!value) {
                free(key);
                return ear_error_set(err, "%s: out of memory", name);
            }
            int valid = !strcmp(value, "true") || !strcmp(value, "false");
            page->draft = !strcmp(value, "true");
            free(value);
            if (!valid) {
                ear_error_set(err, "%s:%d: draft must be true or false", name, line_number);
                free(key);
                return -1;
            }
        } else {
            char **field = page_field(page, key);
            if (!field)
                known = 0;
            else if (*field)
                duplicate = 1;
            else if (!(*field = trimmed_copy(colon + 1, line_end))) {
                free(key);
                return ear_error_set(err, "%s: out of memory", name);
            }
        }
        if (!known || duplicate) {
            ear_error_set(err,
                          known ? "%s:%d: '%s' given twice"
                                : "%s:%d: unknown key '%s' (known: title, date, updated, "
                                  "summary, draft, author, url, tagline)",
                          name, line_number, key);
            free(key);
            return -1;
        }
        free(key);
    }
    if (!body)
        return ear_error_set(err, "%s: front matter not closed (no second '---' line)", name);
    if (!page->title || !*page->title)
        return ear_error_set(err, "%s: no title in the front matter", name);
    if (page->date && !ear_site_date_is_valid(page->date))
        return ear_error_set(err, "%s: date '%s' is not a date written YYYY-MM-DD", name,
                             page->date);
    if (page->updated && !ear_site_date_is_valid(page->updated))
        return ear_error_set(err, "%s: updated '%s' is not a date written YYYY-MM-DD", name,
                             page->updated);
    /* Without CMARK_OPT_UNSAFE, cmark drops raw HTML and javascript: links: a post cannot
     * smuggle script into the site. SMART gives typographic quotes and dashes. */
    page->html = cmark_markdown_to_html(body, (size_t)(end - body), CMARK_OPT_SMART);
    if (!page->html)
        return ear_error_set(err, "%s: out of memory", name);
    return 0;
}

static int load_page(const char *path, const char *name, ear_site_page *page, ear_error *err)
{
    ear_error read_error;
    size_t size;
    char *text = (char *)ear_file_read(path, EAR_SITE_MAX_FILE_BYTES, &size, &read_error);
    if (!text)
        return ear_error_set(err, "%s", read_error.message);
    int status = ear_site_page_parse(text, size, name, page, err);
    free(text);
    return status;
}

static int compare_posts(const void *a, const void *b)
{
    const ear_site_page *left = a, *right = b;
    int by_date = strcmp(right->date, left->date);
    return by_date ? by_date : strcmp(left->slug, right->slug);
}

static int load_posts(ear_site_content *content, ear_error *err)
{
    char folder[4096];
    snprintf(folder, sizeof folder, "%s/posts", content->directory);
    DIR *dir = opendir(folder);
    if (!dir) {
        if (errno == ENOENT)
            return 0; /* a site without a blog yet */
        return ear_error_set(err, "%s: %s", folder, strerror(errno));
    }
    size_t capacity = 0;
    ear_site_page page = {0};
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        size_t length = strlen(entry->d_name);
        if (entry->d_name[0] == '.' || length < 4 || strcmp(entry->d_name + length - 3, ".md"))
            continue;
        char path[4096 + 256], name[300];
        snprintf(path, sizeof path, "%s/%s", folder, entry->d_name);
        snprintf(name, sizeof name, "posts/%s", entry->d_name);
        if (!(page.slug = strndup(entry->d_name, length - 3))) {
            ear_error_set(err, "%s: out of memory", name);
            goto fail;
        }
        if (!ear_site_slug_is_valid(page.slug)) {
            ear_error_set(err, "%s: a post's file name must be its URL slug: lowercase letters, "
                               "digits, '-' and '_', then .md", name);
            goto fail;
        }
        if (load_page(path, name, &page, err) != 0)
            goto fail;
        if (!page.date) {
            ear_error_set(err, "%s: a post needs a date (date: YYYY-MM-DD)", name);
            goto fail;
        }
        if (page.draft) {
            ear_site_page_free(&page);
            continue;
        }
        if (content->post_count == EAR_SITE_MAX_POSTS) {
            ear_error_set(err, "%s: more than %d posts", folder, EAR_SITE_MAX_POSTS);
            goto fail;
        }
        if (content->post_count == capacity) {
            size_t grown = capacity ? capacity * 2 : 16;
            ear_site_page *posts = realloc(content->posts, grown * sizeof *posts);
            if (!posts) {
                ear_error_set(err, "%s: out of memory", name);
                goto fail;
            }
            content->posts = posts;
            capacity = grown;
        }
        content->posts[content->post_count++] = page;
        memset(&page, 0, sizeof page);
    }
    closedir(dir);
    if (content->post_count)
        qsort(content->posts, content->post_count, sizeof *content->posts, compare_posts);
    return 0;
fail:
    ear_site_page_free(&page);
    closedir(dir);
    return -1;
}

static int load_layout(ear_site_content *content, ear_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/templates/layout.html", content->directory);
    struct stat info;
    if (stat(path, &info) != 0 && errno == ENOENT) {
        if (!(content->layout = strdup(ear_site_default_layout())))
            return ear_error_set(err, "out of memory");
        return 0;
    }
    ear_error read_error;
    size_t size;
    content->layout = (char *)ear_file_read(path, EAR_SITE_MAX_FILE_BYTES, &size, &read_error);
    if (!content->layout)
        return ear_error_set(err, "%s", read_error.message);
    if (memchr(content->layout, 0, size))
        return ear_error_set(err, "templates/layout.html: not a text file");
    ear_error check_error;
    if (ear_site_layout_check(content->layout, &check_error) != 0)
        return ear_error_set(err, "templates/layout.html: %s", check_error.message);
    return 0;
}

ear_site_content *ear_site_content_load(const char *directory, ear_error *err)
{
    char path[4096];
    ear_site_content *content = calloc(1, sizeof *content);
    if (!content || !(content->directory = strdup(directory))) {
        ear_error_set(err, "out of memory");
        goto fail;
    }
    if (strlen(directory) > 3000) {
        ear_error_set(err, "%.40s...: content folder path too long", directory);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/index.md", directory);
    if (load_page(path, "index.md", &content->home, err) != 0)
        goto fail;
    if (!(content->home.slug = strdup("index"))) {
        ear_error_set(err, "out of memory");
        goto fail;
    }
    if (load_posts(content, err) != 0 || load_layout(content, err) != 0)
        goto fail;
    return content;
fail:
    if (err && strncmp(err->message, directory, strlen(directory)) != 0) {
        /* Say which content folder, once, so a message about index.md is findable. */
        char message[EAR_ERROR_SIZE];
        snprintf(message, sizeof message, "%s", err->message);
        ear_error_set(err, "content %s: %s", directory, message);
    }
    ear_site_content_free(content);
    return NULL;
}

void ear_site_content_free(ear_site_content *content)
{
    if (!content)
        return;
    ear_site_page_free(&content->home);
    for (size_t i = 0; i < content->post_count; i++)
        ear_site_page_free(&content->posts[i]);
    free(content->posts);
    free(content->layout);
    free(content->directory);
    free(content);
}

const ear_site_page *ear_site_content_find_post(const ear_site_content *content,
                                                const char *slug)
{
    for (size_t i = 0; i < content->post_count; i++)
        if (!strcmp(content->posts[i].slug, slug))
            return &content->posts[i];
    return NULL;
}
