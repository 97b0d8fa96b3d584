/* One search, from the bytes of an uploaded sound to ranked items: decode,
 * embed, top-k; and its answer as the JSON of ../shared/spec/interfaces.md.
 * Shared by `ear search` and the HTTP service so both answer alike. */
#ifndef EAR_INDEX_SEARCH_H
#define EAR_INDEX_SEARCH_H

#include "index/index.h"
#include "sandbox/sandbox.h"

typedef enum {
    EAR_SEARCH_OK = 0,
    EAR_SEARCH_UNDECODABLE,  /* 400 undecodable_audio */
    EAR_SEARCH_TOO_SHORT,    /* 422 audio_too_short (under 0.1 s) */
    EAR_SEARCH_BAD_REQUEST,  /* 400 bad_request (k out of range, no audio tower, ...) */
    EAR_SEARCH_INTERNAL,     /* 500 internal */
    EAR_SEARCH_CANCELLED     /* the client left while its sound was decoding: no answer */
} ear_search_status;

typedef struct ear_search_request {
    /* The model the session was made from (its sample rate and dimension);
     * required while nn.h cannot give a session's model. */
    const ear_nn_model *model;
    const uint8_t *audio;     /* the uploaded file's bytes */
    size_t audio_size;
    ear_index_against against;
    int k;                    /* 1 .. capacity of the result's hits */
    double max_seconds;       /* decoding cap (cut there, "truncated": true) */
    ear_sandbox_pool *sandbox; /* decode there (NULL: in this process) */
    ear_sandbox_cancel cancel; /* with the sandbox: what stops the decode early */
} ear_search_request;

typedef struct ear_search_result {
    ear_index_hit *hits;      /* caller's array of at least k entries */
    int found;
    double duration_s;
    char format[32];
    int truncated;
    double decode_ms, embed_ms, search_ms, total_ms;
} ear_search_result;

/* Runs one search with the session's arena (the session made from req->model);
 * err says why when not OK. Reentrant: one session per concurrent call. */
ear_search_status ear_search_run(ear_nn_session *session, const ear_index *idx,
                                 const ear_search_request *req, ear_search_result *res,
                                 ear_error *err);

/* Writes a dataset file name as a relative URL, "data/frames/<name>" or
 * "data/audio/<name>", the name percent-encoded (RFC 3986 unreserved bytes kept);
 * malloc'd, NULL when out of memory. */
char *ear_search_file_url(const char *folder, const char *name);

/* The 200 answer as JSON text (malloc'd, NUL-terminated); NULL when out of memory. */
char *ear_search_result_json(const ear_index *idx, const ear_search_result *res);

#endif
