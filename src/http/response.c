/* Response bodies: the spec's JSON errors and copies of short texts. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

char *ear_http_error_body(const char *code, const char *message)
{
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *error = cJSON_CreateObject();
    if (!root || !error) {
        cJSON_Delete(error);
        goto done;
    }
    if (!cJSON_AddItemToObject(root, "error", error)) {
        cJSON_Delete(error);
        goto done;
    }
    if (!cJSON_AddStringToObject(error, "code", code) ||
        !cJSON_AddStringToObject(error, "message", message))
        goto done;
    text = cJSON_PrintUnformatted(root);
done:
    cJSON_Delete(root);
    return text;
}

char *ear_http_config_json(const char *home_url)
{
    cJSON *root = cJSON_CreateObject();
    char *text = NULL;
    if (root && cJSON_AddStringToObject(root, "home_url", home_url))
        text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

struct MHD_Response *ear_http_text_response(const char *body, size_t length,
                                            const char *content_type)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(length, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (response && content_type)
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return response;
}

struct MHD_Response *ear_http_error_response(const char *code, const char *message,
                                             uint64_t *bytes)
{
    char *body = ear_http_error_body(code, message);
    if (!body)
        return NULL;
    size_t length = strlen(body);
    struct MHD_Response *response =
        MHD_create_response_from_buffer(length, body, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free(body);
        return NULL;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (bytes)
        *bytes = length;
    return response;
}
