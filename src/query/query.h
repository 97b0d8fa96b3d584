/* From an upload to answers: a sound or an image (its kind found from its
 * bytes) into a vector, a vector into ranked items of the index, and those
 * into the JSON of both APIs, Ear's /api/search (../shared/spec/interfaces.md)
 * and the original's /query (../shared/spec/original.md); and `ear index`'s
 * walk of a dataset in either layout. Shared by the CLI and the HTTP service
 * so that both answer alike. */
#ifndef EAR_QUERY_H
#define EAR_QUERY_H

#include "audio/audio.h"
#include "image/image.h"
#include "index/index.h"
#include "nn/nn.h"

/* The most results one search returns (?k= of /api/search, `ear search -k`). */
#define EAR_QUERY_MAX_K 50

/* The original's /query: the best 100 walked, at most 5 per column. */
#define EAR_QUERY_ORIGINAL_TOP 100
#define EAR_QUERY_ORIGINAL_PER_COLUMN 5

/* ---- the dataset walk: `ear index` ---- */

typedef struct ear_query_build_options {
    int jobs;                /* worker threads, each with its own session (>= 1) */
    ear_index_dtype dtype;   /* storage of the embeddings */
    double max_seconds;      /* each sound is cut there (<= 0: no cap) */
    /* Both are called with the builder's lock held, so never at the same time;
     * progress from the calling thread a few times a second and once at the end. */
    void (*progress)(void *user, size_t done, size_t total, double elapsed_ms);
    void (*problem)(void *user, const char *file, const char *reason);
    void *user;
} ear_query_build_options;

typedef struct ear_query_build_summary {
    size_t items;     /* written */
    size_t images;    /* of them images */
    size_t sounds;    /* of them sounds */
    size_t skipped;   /* files left out: they could not be embedded */
    size_t problems;  /* files reported to the problem callback */
    double elapsed_ms;
} ear_query_build_summary;

/* Fills o with the defaults: one job, f32, 60 s, no callbacks. */
void ear_query_build_options_default(ear_query_build_options *o);

/* Embeds every file of data_dir and writes the index to path (ear_index_write).
 * Both layouts: the original's, audio/<label>/... and frames/<label>/... (the label
 * is the first folder), and Ear's flat one, audio/<id>.* and frames/<id>.* with
 * labels.tsv (the label is the id's line there, else the id); both may mix.
 * Every file is its own item: frames need the image tower, sounds the audio
 * tower. A file that cannot be read is reported and left out; fails, writing
 * nothing, when no file could be embedded. */
int ear_query_build_index(const ear_nn_model *model, const char *data_dir, const char *path,
                          const ear_query_build_options *o, ear_query_build_summary *summary,
                          ear_error *err);

/* ---- the original's indexed_db.pt ---- */

typedef struct ear_query_import_summary {
    size_t items, images, sounds;
    size_t missing;  /* files the metadata names that are not under the dataset root */
    int dim;
} ear_query_import_summary;

/* Converts the original's indexed_db.pt ({"metadata": [{type, url, label}], "tensor"
 * [N, D]}) into an Ear index at out_path: each row an item of its type, its path
 * what follows "/data/" in its URL. Refused: a dimension other than model_dim (when
 * > 0), a file missing under data_dir (all counted, the first named), a row not
 * finite. The index gets EAR_INDEX_NO_FINGERPRINT: no model can be checked. */
int ear_query_import_pt(const char *pt_path, const char *data_dir, int model_dim,
                        const char *out_path, ear_index_dtype dtype,
                        ear_query_import_summary *summary, ear_error *err);

/* Whether path is a torch.save file (a zip), not an Ear index. */
int ear_query_is_pt(const char *path);

/* Opens the index a service or a search uses: an Ear index built by model (or
 * imported: its dimension checked), or the original's indexed_db.pt converted on
 * the fly (nothing left on disk). note (when not NULL) says what could not be
 * checked, "" when everything was. */
ear_index *ear_query_open_index(const char *path, const char *data_dir,
                                const ear_nn_model *model, char *note, size_t note_size,
                                ear_error *err);

/* ---- an upload into a vector ---- */

typedef enum {
    EAR_QUERY_OK = 0,
    EAR_QUERY_UNDECODABLE,   /* not a sound nor an image Ear reads (400) */
    EAR_QUERY_BAD_IMAGE,     /* JPEG or PNG by its bytes or name, but unreadable */
    EAR_QUERY_TOO_SHORT,     /* a sound under 0.1 s (422) */
    EAR_QUERY_BAD_REQUEST,   /* the model lacks the tower, the index the kind, k out of range */
    EAR_QUERY_INTERNAL,      /* 500 */
    EAR_QUERY_CANCELLED      /* a decoder said nobody waits for the answer any more */
} ear_query_status;

/* What a decoder hook returns besides 0. */
enum {
    EAR_QUERY_DECODE_REFUSED = -1,   /* the bytes are not what it decodes (400) */
    EAR_QUERY_DECODE_FAILED = -2,    /* it could not run (500) */
    EAR_QUERY_DECODE_CANCELLED = -3  /* the client left: no answer is wanted */
};

/* Decoders used instead of ear_audio_decode and ear_image_decode, e.g. the
 * service's sandboxed helpers; either may be NULL (in this process). Each
 * fills out as the in-process decoder would (audio: with every field of o,
 * the model's front end included), or returns EAR_QUERY_DECODE_* with err
 * filled and out left empty. */
typedef struct ear_query_decoders {
    int (*audio)(void *user, const uint8_t *data, size_t size, const ear_audio_decode_options *o,
                 ear_audio_clip *out, ear_error *err);
    int (*image)(void *user, const uint8_t *data, size_t size, ear_image *out, ear_error *err);
    void *user;
} ear_query_decoders;

/* The kind an upload's bytes say (JPEG or PNG signature: image), else the
 * kind its file name's extension says (the original's lists), else -1. */
int ear_query_kind_of(const uint8_t *data, size_t size, const char *name);

/* Whether a file name ends in one of the original's image or sound extensions. */
int ear_query_name_kind(const char *name);

typedef struct ear_query_upload {
    const uint8_t *data;  /* the uploaded file's bytes */
    size_t size;
    const char *name;     /* its file name, NULL when none: a tie-break only */
    int kind;             /* -1: from the bytes (ear_query_kind_of, then the audio probe) */
    double max_seconds;   /* a sound is cut there ("truncated") */
    const ear_query_decoders *decoders; /* NULL: decode in this process */
} ear_query_upload;

typedef struct ear_query_vector {
    float *vector;        /* caller's [embed_dim] */
    ear_index_kind kind;  /* what the upload was */
    double duration_s;    /* a sound's */
    char format[32];      /* "jpeg", "png", or the sound's container */
    int truncated;
    double decode_ms, embed_ms;
} ear_query_vector;

/* Decodes and embeds one upload with a session of model; err says why when
 * not OK. Reentrant: one session per concurrent call. */
ear_query_status ear_query_embed(ear_nn_session *session, const ear_nn_model *model,
                                 const ear_query_upload *upload, ear_query_vector *out,
                                 ear_error *err);

/* ---- a vector into answers ---- */

/* A dataset path as a URL: prefix, then the path with each segment
 * percent-encoded (RFC 3986 unreserved bytes kept, '/' kept between
 * segments); malloc'd, NULL when out of memory. */
char *ear_query_path_url(const char *prefix, const char *path);

/* The item's id: its path under its kind's folder without the last extension
 * ("cow" for frames/cow.jpg, "violin/v3" for audio/violin/v3.wav); malloc'd. */
char *ear_query_item_id(const ear_index *idx, size_t item);

typedef struct ear_query_result {
    ear_index_hit *hits;      /* caller's array of at least k entries */
    int found;
    ear_query_vector query;   /* what the upload was, its timings */
    double search_ms, total_ms;
} ear_query_result;

typedef struct ear_query_request {
    const ear_nn_model *model;  /* the model the session was made from */
    ear_query_upload upload;
    unsigned kinds;             /* the kinds searched: EAR_INDEX_MASK, EAR_INDEX_ALL */
    int k;                      /* 1 .. capacity of the result's hits */
    int each_kind;              /* 1: the best k of each kind searched, merged best first
                                   (hits must hold k x the kinds); 0: the best k of all */
} ear_query_request;

/* One search: embeds the upload (ear_query_embed) and ranks the index's items
 * of the asked kinds against it; the hits go to res->hits. */
ear_query_status ear_query_run(ear_nn_session *session, const ear_index *idx,
                               const ear_query_request *req, ear_query_result *res,
                               ear_error *err);

/* /api/search's 200 answer as JSON text (malloc'd, NUL-terminated): results
 * with rank, id, kind, label, score, url, frame_url, audio_url; the query; the
 * timings. NULL when out of memory. */
char *ear_query_search_json(const ear_index *idx, const ear_query_result *res);

/* The original's /query answer for hits (the best first, up to
 * EAR_QUERY_ORIGINAL_TOP of every kind), byte for byte as its Flask jsonify
 * wrote it: keys sorted, no spaces, ASCII with \u escapes, scores as Python's
 * repr of round(score, 3), a final newline. URLs "/ear/data/<path>" as the
 * original stored them. NULL when out of memory. */
char *ear_query_original_json(const ear_index *idx, ear_index_kind query_kind,
                              const ear_index_hit *hits, int found);

/* {"error": message} as the original's jsonify wrote it (with the newline). */
char *ear_query_original_error_json(const char *message);

/* A score as Python prints round(score, 3) (0.9, 1.0, -0.0, 0.912) into out. */
void ear_query_python_score(float score, char *out, size_t out_size);

#endif
