/* An upload into a vector: its kind found from its bytes (a JPEG or PNG
 * signature, else the audio probe: a decode that succeeds), its name only
 * breaking the tie when neither reads it. Nothing here is shared between calls
 * but the read-only model, so the HTTP service's workers run it side by side,
 * each with its own session. */
#include "query/query.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audio/audio.h"
#include "image/image.h"

static int ends_with(const char *name, const char *const *suffixes)
{
    size_t n = strlen(name);
    for (; *suffixes; suffixes++) {
        size_t s = strlen(*suffixes);
        if (n >= s && strcasecmp(name + n - s, *suffixes) == 0)
            return 1;
    }
    return 0;
}

int ear_query_name_kind(const char *name)
{
    /* The original's lists, lower-cased before the test as it did. */
    static const char *const image[] = {".jpg", ".jpeg", ".png", NULL};
    static const char *const audio[] = {".wav", ".mp3", ".webm", ".mp4", ".m4a", ".ogg", NULL};
    if (!name)
        return -1;
    if (ends_with(name, image))
        return EAR_INDEX_IMAGE;
    if (ends_with(name, audio))
        return EAR_INDEX_AUDIO;
    return -1;
}

/* JPEG's SOI and a marker, or PNG's eight-byte signature. */
static const char *image_signature(const uint8_t *data, size_t size)
{
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return "jpeg";
    if (size >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "png";
    return NULL;
}

int ear_query_kind_of(const uint8_t *data, size_t size, const char *name)
{
    if (image_signature(data, size))
        return EAR_INDEX_IMAGE;
    return ear_query_name_kind(name);
}

/* A decoder's result as a status: 0 OK, else what refused means for this kind. */
static ear_query_status decoded(int rc, ear_query_status refused)
{
    return rc == 0                            ? EAR_QUERY_OK
           : rc == EAR_QUERY_DECODE_FAILED    ? EAR_QUERY_INTERNAL
           : rc == EAR_QUERY_DECODE_CANCELLED ? EAR_QUERY_CANCELLED
                                              : refused;
}

static int decode_image(const ear_query_upload *upload, ear_image *img, ear_error *err)
{
    const ear_query_decoders *d = upload->decoders;
    if (d && d->image)
        return d->image(d->user, upload->data, upload->size, img, err);
    return ear_image_decode(upload->data, upload->size, img, err) == 0
               ? 0
               : EAR_QUERY_DECODE_REFUSED;
}

static int decode_audio(const ear_query_upload *upload, const ear_audio_decode_options *o,
                        ear_audio_clip *clip, ear_error *err)
{
    const ear_query_decoders *d = upload->decoders;
    if (d && d->audio)
        return d->audio(d->user, upload->data, upload->size, o, clip, err);
    return ear_audio_decode(upload->data, upload->size, o, clip, err) == 0
               ? 0
               : EAR_QUERY_DECODE_REFUSED;
}

static ear_query_status embed_image(ear_nn_session *session, const ear_nn_config *config,
                                    const ear_query_upload *upload, ear_query_vector *out,
                                    double start, ear_error *err)
{
    ear_image img = {0};
    ear_query_status status = EAR_QUERY_BAD_REQUEST;
    if (!config->has_image) {
        ear_error_set(err, "the model has no image tower: it cannot embed a query image");
        goto done;
    }
    status = decoded(decode_image(upload, &img, err), EAR_QUERY_BAD_IMAGE);
    if (status != EAR_QUERY_OK)
        goto done;
    const char *format = image_signature(upload->data, upload->size);
    snprintf(out->format, sizeof out->format, "%s", format ? format : "image");
    double decoded = ear_now_ms();
    out->decode_ms = decoded - start;
    status = EAR_QUERY_INTERNAL;
    if (ear_nn_embed_image(session, &img, out->vector, err) != 0)
        goto done;
    out->embed_ms = ear_now_ms() - decoded;
    status = EAR_QUERY_OK;
done:
    ear_image_free(&img);
    return status;
}

static ear_query_status embed_sound(ear_nn_session *session, const ear_nn_model *model,
                                    ear_query_vector *out, const ear_audio_clip *clip,
                                    double start, ear_error *err)
{
    out->duration_s = (double)clip->count / clip->sample_rate;
    snprintf(out->format, sizeof out->format, "%s", clip->format);
    out->truncated = clip->truncated;
    double decoded = ear_now_ms();
    out->decode_ms = decoded - start;
    /* The model may need more than 0.1 s (a long FFT window): too short all the same. */
    size_t minimum = (size_t)clip->sample_rate / 10;
    if (minimum < ear_nn_model_min_samples(model))
        minimum = ear_nn_model_min_samples(model);
    if (clip->count < minimum) {
        ear_error_set(err, "the sound lasts %.3f s; at least %.3f s is needed", out->duration_s,
                      (double)minimum / clip->sample_rate);
        return EAR_QUERY_TOO_SHORT;
    }
    if (ear_nn_embed_audio(session, clip->samples, clip->count, out->vector, err) != 0)
        return EAR_QUERY_INTERNAL;
    out->embed_ms = ear_now_ms() - decoded;
    return EAR_QUERY_OK;
}

ear_query_status ear_query_embed(ear_nn_session *session, const ear_nn_model *model,
                                 const ear_query_upload *upload, ear_query_vector *out,
                                 ear_error *err)
{
    double start = ear_now_ms();
    ear_audio_clip clip = {0};
    ear_query_status status = EAR_QUERY_INTERNAL;
    out->duration_s = 0;
    out->format[0] = 0;
    out->truncated = 0;
    out->decode_ms = out->embed_ms = 0;
    if (!model || !session || !out->vector) {
        ear_error_set(err, "query: model, session and vector are required");
        goto done;
    }
    const ear_nn_config *config = ear_nn_model_config(model);
    int kind = upload->kind;
    if (kind < 0 && image_signature(upload->data, upload->size))
        kind = EAR_INDEX_IMAGE;
    if (kind == EAR_INDEX_IMAGE) {
        out->kind = EAR_INDEX_IMAGE;
        status = embed_image(session, config, upload, out, start, err);
        goto done;
    }
    out->kind = EAR_INDEX_AUDIO;
    status = EAR_QUERY_BAD_REQUEST;
    if (!config->has_audio) {
        ear_error_set(err, "the model has no audio tower: it cannot embed a query sound");
        goto done;
    }
    status = EAR_QUERY_UNDECODABLE;
    if (upload->size == 0) {
        ear_error_set(err, "no audio received (0 bytes)");
    } else {
        ear_audio_decode_options decode;
        ear_audio_decode_options_default(&decode);
        decode.max_seconds = upload->max_seconds;
        /* The model's front end: its rate, and for wav2vec2 the original's
         * `ffmpeg -ar 16000 -ac 1` and its 10 s, wherever the decode runs. */
        ear_nn_model_decode_options(model, &decode);
        int rc = decode_audio(upload, &decode, &clip, err);
        if (rc == 0) {
            status = embed_sound(session, model, out, &clip, start, err);
            goto done;
        }
        if (rc != EAR_QUERY_DECODE_REFUSED) {
            status = decoded(rc, EAR_QUERY_UNDECODABLE);
            goto done;
        }
    }
    /* Neither an image by its bytes nor a sound Ear decodes: the name says what
     * the sender meant (an image by its extension is an unreadable image). */
    if (kind < 0 && ear_query_name_kind(upload->name) == EAR_INDEX_IMAGE) {
        out->kind = EAR_INDEX_IMAGE;
        status = EAR_QUERY_BAD_IMAGE;
        ear_error_set(err, "cannot identify image file '%.200s'", upload->name);
    }
done:
    ear_audio_clip_free(&clip);
    return status;
}

/* The best k of each kind in the mask, one after the other, then merged into one
 * ranking (best first, ties by item number, as ear_index_search orders them). */
static int search_each_kind(const ear_index *idx, unsigned kinds, const float *vector, int k,
                            ear_index_hit *hits, int *found, ear_error *err)
{
    int total = 0;
    for (int kind = 0; kind < EAR_INDEX_KINDS; kind++) {
        if (!(kinds & EAR_INDEX_MASK(kind)))
            continue;
        int n = 0;
        if (ear_index_search(idx, EAR_INDEX_MASK(kind), vector, k, hits + total, &n, err) != 0)
            return -1;
        total += n;
    }
    /* At most a few k entries: an insertion sort. */
    for (int i = 1; i < total; i++) {
        ear_index_hit hit = hits[i];
        int j = i;
        while (j > 0 && (hits[j - 1].score < hit.score ||
                         (hits[j - 1].score == hit.score && hits[j - 1].item > hit.item))) {
            hits[j] = hits[j - 1];
            j--;
        }
        hits[j] = hit;
    }
    *found = total;
    return 0;
}

ear_query_status ear_query_run(ear_nn_session *session, const ear_index *idx,
                               const ear_query_request *req, ear_query_result *res,
                               ear_error *err)
{
    double start = ear_now_ms();
    float *vector = NULL;
    ear_query_status status = EAR_QUERY_INTERNAL;
    res->found = 0;
    res->search_ms = res->total_ms = 0;
    memset(&res->query, 0, sizeof res->query);
    if (!req->model || !session || !idx || !res->hits) {
        ear_error_set(err, "search: model, session, index and hits are required");
        goto done;
    }
    const ear_nn_config *config = ear_nn_model_config(req->model);
    status = EAR_QUERY_BAD_REQUEST;
    if (req->k < 1) {
        ear_error_set(err, "k must be at least 1 (got %d)", req->k);
        goto done;
    }
    size_t rows = 0;
    for (int kind = 0; kind < EAR_INDEX_KINDS; kind++)
        if (req->kinds & EAR_INDEX_MASK(kind))
            rows += ear_index_rows(idx, (ear_index_kind)kind);
    if (rows == 0) {
        ear_error_set(err, "the index holds no %s",
                      req->kinds == EAR_INDEX_MASK(EAR_INDEX_IMAGE)   ? "images"
                      : req->kinds == EAR_INDEX_MASK(EAR_INDEX_AUDIO) ? "sounds"
                                                                      : "items");
        goto done;
    }
    status = EAR_QUERY_INTERNAL;
    if (config->embed_dim != ear_index_dim(idx)) {
        ear_error_set(err, "the index's dimension is %d, the model's %d", ear_index_dim(idx),
                      config->embed_dim);
        goto done;
    }
    vector = malloc((size_t)config->embed_dim * sizeof *vector);
    if (!vector) {
        ear_error_set(err, "out of memory");
        goto done;
    }
    res->query.vector = vector;
    status = ear_query_embed(session, req->model, &req->upload, &res->query, err);
    if (status != EAR_QUERY_OK)
        goto done;
    double embedded = ear_now_ms();
    status = EAR_QUERY_INTERNAL;
    if (!req->each_kind) {
        if (ear_index_search(idx, req->kinds, vector, req->k, res->hits, &res->found, err) != 0)
            goto done;
    } else if (search_each_kind(idx, req->kinds, vector, req->k, res->hits, &res->found,
                                err) != 0) {
        goto done;
    }
    res->search_ms = ear_now_ms() - embedded;
    status = EAR_QUERY_OK;
done:
    res->total_ms = ear_now_ms() - start;
    res->query.vector = NULL;
    free(vector);
    return status;
}
