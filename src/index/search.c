/* One search from the uploaded bytes to the JSON answer. Nothing here is
 * shared between calls but the read-only model and index, so the HTTP
 * service's workers run it side by side, each with its own session. */
#include "index/search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"

ear_search_status ear_search_run(ear_nn_session *session, const ear_index *idx,
                                 const ear_search_request *req, ear_search_result *res,
                                 ear_error *err)
{
    double start = ear_now_ms();
    ear_audio_clip clip = {0};
    float *query = NULL;
    ear_search_status status = EAR_SEARCH_INTERNAL;
    res->found = 0;
    res->duration_s = 0;
    res->format[0] = 0;
    res->truncated = 0;
    res->decode_ms = res->embed_ms = res->search_ms = res->total_ms = 0;
    if (!req->model || !session || !idx || !res->hits) {
        ear_error_set(err, "search: model, session, index and hits are required");
        goto done;
    }
    const ear_nn_config *config = ear_nn_model_config(req->model);
    status = EAR_SEARCH_BAD_REQUEST;
    if (req->k < 1) {
        ear_error_set(err, "k must be at least 1 (got %d)", req->k);
        goto done;
    }
    if (!config->has_audio) {
        ear_error_set(err, "the model has no audio tower: it cannot embed a query sound");
        goto done;
    }
    if (req->against != EAR_INDEX_FRAMES && req->against != EAR_INDEX_SOUNDS) {
        ear_error_set(err, "unknown search kind %d", (int)req->against);
        goto done;
    }
    if (ear_index_rows(idx, req->against) == 0) {
        ear_error_set(err, "the index holds no %s embeddings",
                      req->against == EAR_INDEX_SOUNDS ? "sound" : "frame");
        goto done;
    }
    status = EAR_SEARCH_INTERNAL;
    if (config->embed_dim != ear_index_dim(idx)) {
        ear_error_set(err, "the index's dimension is %d, the model's %d", ear_index_dim(idx),
                      config->embed_dim);
        goto done;
    }

    status = EAR_SEARCH_UNDECODABLE;
    if (req->audio_size == 0) {
        ear_error_set(err, "no audio received (0 bytes)");
        goto done;
    }
    ear_audio_decode_options decode;
    ear_audio_decode_options_default(&decode);
    decode.sample_rate = config->mel.sample_rate;
    decode.max_seconds = req->max_seconds;
    if (req->sandbox) {
        int rc = ear_sandbox_decode_audio(req->sandbox, req->audio, req->audio_size,
                                          decode.sample_rate, decode.max_seconds, &req->cancel,
                                          &clip, err);
        if (rc == EAR_SANDBOX_CANCELLED)
            status = EAR_SEARCH_CANCELLED;
        else if (rc == EAR_SANDBOX_FAILED)
            status = EAR_SEARCH_INTERNAL;
        if (rc != 0)
            goto done;
    } else if (ear_audio_decode(req->audio, req->audio_size, &decode, &clip, err) != 0) {
        goto done;
    }
    res->duration_s = (double)clip.count / clip.sample_rate;
    snprintf(res->format, sizeof res->format, "%s", clip.format);
    res->truncated = clip.truncated;
    double decoded = ear_now_ms();
    res->decode_ms = decoded - start;
    /* The model may need more than 0.1 s (a long FFT window): too short all the same. */
    size_t minimum = (size_t)clip.sample_rate / 10;
    if (minimum < ear_nn_model_min_samples(req->model))
        minimum = ear_nn_model_min_samples(req->model);
    if (clip.count < minimum) {
        status = EAR_SEARCH_TOO_SHORT;
        ear_error_set(err, "the sound lasts %.3f s; at least %.3f s is needed", res->duration_s,
                      (double)minimum / clip.sample_rate);
        goto done;
    }

    status = EAR_SEARCH_INTERNAL;
    query = malloc((size_t)config->embed_dim * sizeof *query);
    if (!query) {
        ear_error_set(err, "out of memory");
        goto done;
    }
    if (ear_nn_embed_audio(session, clip.samples, clip.count, query, err) != 0)
        goto done;
    double embedded = ear_now_ms();
    res->embed_ms = embedded - decoded;
    if (ear_index_search(idx, req->against, query, req->k, res->hits, &res->found, err) != 0)
        goto done;
    res->search_ms = ear_now_ms() - embedded;
    status = EAR_SEARCH_OK;
done:
    res->total_ms = ear_now_ms() - start;
    free(query);
    ear_audio_clip_free(&clip);
    return status;
}
