/* The web page's files, compiled into the binary (embed_web.cmake writes the
 * table), and the Content-Type of any file by its extension. */
#include <string.h>
#include <strings.h>

#include "http/internal.h"

const ear_http_asset *ear_http_asset_find(const char *path)
{
    for (size_t i = 0; i < ear_http_asset_count; i++)
        if (strcmp(ear_http_assets[i].path, path) == 0)
            return &ear_http_assets[i];
    return NULL;
}

typedef struct content_type {
    const char *extension;
    const char *type;
} content_type;

static const content_type content_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"ico", "image/x-icon"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"png", "image/png"},
    {"webp", "image/webp"},
    {"gif", "image/gif"},
    {"wav", "audio/wav"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"oga", "audio/ogg"},
    {"opus", "audio/ogg"},
    {"webm", "audio/webm"},
    {"m4a", "audio/mp4"},
    {"mp4", "audio/mp4"},
    {"flac", "audio/flac"},
    {"woff2", "font/woff2"},
    {"woff", "font/woff"},
    {"wasm", "application/wasm"},
};

const char *ear_http_content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++)
            if (strcasecmp(dot + 1, content_types[i].extension) == 0)
                return content_types[i].type;
    return "application/octet-stream";
}
