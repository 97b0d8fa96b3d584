#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "site.h"

static int buffer_reserve(ear_site_buffer *buffer, size_t extra)
{
    if (buffer->failed)
        return -1;
    if (extra > SIZE_MAX / 2 - buffer->size)
        goto fail;
    size_t need = buffer->size + extra + 1;
    if (need <= buffer->capacity)
        return 0;
    size_t capacity = buffer->capacity ? buffer->capacity : 256;
    while (capacity < need)
        capacity *= 2;
    char *data = realloc(buffer->data, capacity);
    if (!data)
        goto fail;
    buffer->data = data;
    buffer->capacity = capacity;
    return 0;
fail:
    buffer->failed = 1;
    return -1;
}

int ear_site_buffer_append(ear_site_buffer *buffer, const char *data, size_t size)
{
    if (buffer_reserve(buffer, size) != 0)
        return -1;
    if (size)
        memcpy(buffer->data + buffer->size, data, size);
    buffer->size += size;
    buffer->data[buffer->size] = 0;
    return 0;
}

int ear_site_buffer_append_text(ear_site_buffer *buffer, const char *text)
{
    return ear_site_buffer_append(buffer, text, strlen(text));
}

int ear_site_buffer_printf(ear_site_buffer *buffer, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int needed = vsnprintf(NULL, 0, format, ap);
    va_end(ap);
    if (needed < 0 || buffer_reserve(buffer, (size_t)needed) != 0) {
        buffer->failed = 1;
        return -1;
    }
    va_start(ap, format);
    vsnprintf(buffer->data + buffer->size, (size_t)needed + 1, format, ap);
    va_end(ap);
    buffer->size += (size_t)needed;
    return 0;
}

int ear_site_buffer_append_escaped(ear_site_buffer *buffer, const char *text)
{
    const char *run = text;
    for (const char *p = text;; p++) {
        const char *entity = NULL;
        switch (*p) {
        case '&': entity = "&amp;"; break;
        case '<': entity = "&lt;"; break;
        case '>': entity = "&gt;"; break;
        case '"': entity = "&quot;"; break;
        case '\'': entity = "&#39;"; break;
        case 0: break;
        default: continue;
        }
        if (ear_site_buffer_append(buffer, run, (size_t)(p - run)) != 0)
            return -1;
        if (!entity)
            return 0;
        if (ear_site_buffer_append_text(buffer, entity) != 0)
            return -1;
        run = p + 1;
    }
}

char *ear_site_buffer_take(ear_site_buffer *buffer, size_t *size)
{
    if (buffer->failed || ear_site_buffer_append(buffer, "", 0) != 0) {
        ear_site_buffer_free(buffer);
        return NULL;
    }
    char *data = buffer->data;
    if (size)
        *size = buffer->size;
    memset(buffer, 0, sizeof *buffer);
    return data;
}

void ear_site_buffer_free(ear_site_buffer *buffer)
{
    free(buffer->data);
    memset(buffer, 0, sizeof *buffer);
}
