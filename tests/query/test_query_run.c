/* ear_query_run, as the HTTP service calls it: from a WAV's or an image's bytes to
 * ranked hits with the small golden model, the kind found from the bytes, each failure
 * with its status (undecodable, bad image, too short, bad request, internal),
 * truncation, timings, the best of each kind (--fill-columns), and the same answers from
 * several threads at once. */
#include <pthread.h>
#include <stdint.h>

#include "audio/audio.h"
#include "image/image.h"
#include "query/query.h"
#include "test.h"

#define MODEL "tests/fixtures/nn/nn_basic_f32.safetensors"
#define IMAGE_MODEL "tests/fixtures/nn/nn_image_f32.safetensors"
#define RATE 8000
#define ITEMS 6

/* A 16-bit mono WAV in memory: a sum of two sines, different for each seed. */
static uint8_t *make_wav(int seed, double seconds, size_t *size)
{
    size_t count = (size_t)(seconds * RATE);
    *size = 44 + 2 * count;
    uint8_t *wav = calloc(1, *size);
    if (!wav)
        return NULL;
    uint32_t riff = (uint32_t)(*size - 8), data = (uint32_t)(2 * count), fmt_size = 16;
    uint32_t rate = RATE, byte_rate = 2 * RATE;
    uint16_t pcm = 1, channels = 1, align = 2, bits = 16;
    memcpy(wav, "RIFF", 4);
    memcpy(wav + 4, &riff, 4);
    memcpy(wav + 8, "WAVEfmt ", 8);
    memcpy(wav + 16, &fmt_size, 4);
    memcpy(wav + 20, &pcm, 2);
    memcpy(wav + 22, &channels, 2);
    memcpy(wav + 24, &rate, 4);
    memcpy(wav + 28, &byte_rate, 4);
    memcpy(wav + 32, &align, 2);
    memcpy(wav + 34, &bits, 2);
    memcpy(wav + 36, "data", 4);
    memcpy(wav + 40, &data, 4);
    for (size_t i = 0; i < count; i++) {
        double t = (double)i / RATE;
        double v = 0.4 * sin(2 * M_PI * (150.0 + 170.0 * seed) * t) +
                   0.3 * sin(2 * M_PI * (900.0 + 311.0 * seed) * t * (1 + 0.2 * t));
        int16_t s = (int16_t)lrint(v * 32767);
        memcpy(wav + 44 + 2 * i, &s, 2);
    }
    return wav;
}

typedef struct fixture {
    ear_nn_model *model;
    ear_index *index;
    uint8_t *wav[ITEMS];
    size_t wav_size[ITEMS];
} fixture;

/* An index of ITEMS sounds, audio/item<i>.wav (items 0 .. ITEMS-1), whose embeddings are
 * the model's own embeddings of the WAVs (decoded with ear_audio_decode, as a search
 * does), and ITEMS - 1 frames, frames/item<i>.jpg for i >= 1 (items ITEMS ..), the same
 * vectors reversed. */
static int make_fixture(fixture *f, const char *path)
{
    ear_error err;
    memset(f, 0, sizeof *f);
    f->model = ear_nn_model_load(MODEL, &err);
    EAR_CHECK_MSG(f->model != NULL, "model: %s", err.message);
    if (!f->model)
        return -1;
    int dim = ear_nn_model_config(f->model)->embed_dim;
    ear_nn_session *session = ear_nn_session_create(f->model, &err);
    static char paths[2 * ITEMS][32];
    static float sounds[ITEMS][64], frames[ITEMS][64];
    ear_index_entry entries[2 * ITEMS];
    size_t n = 0;
    int rc = 0;
    for (int i = 0; i < ITEMS && session && dim <= 64; i++) {
        f->wav[i] = make_wav(i, 0.6 + 0.1 * i, &f->wav_size[i]);
        ear_audio_decode_options o;
        ear_audio_decode_options_default(&o);
        o.sample_rate = RATE;
        ear_audio_clip clip = {0};
        rc |= ear_audio_decode(f->wav[i], f->wav_size[i], &o, &clip, &err);
        rc |= ear_nn_embed_audio(session, clip.samples, clip.count, sounds[i], &err);
        ear_audio_clip_free(&clip);
        for (int d = 0; d < dim; d++)
            frames[i][d] = sounds[i][dim - 1 - d];
        snprintf(paths[n], sizeof paths[n], "audio/item%d.wav", i);
        entries[n] = (ear_index_entry){.kind = EAR_INDEX_AUDIO, .path = paths[n],
                                       .embedding = sounds[i]};
        n++;
        if (i) {
            snprintf(paths[n], sizeof paths[n], "frames/item%d.jpg", i);
            entries[n] = (ear_index_entry){.kind = EAR_INDEX_IMAGE, .path = paths[n],
                                           .embedding = frames[i]};
            n++;
        }
    }
    ear_nn_session_free(session);
    EAR_CHECK_MSG(session && rc == 0, "embedding the items: %s", err.message);
    if (!session || rc != 0)
        return -1;
    EAR_CHECK(ear_index_write(path, ear_nn_model_fingerprint(f->model), dim, EAR_INDEX_F32,
                              entries, n, &err) == 0);
    f->index = ear_index_open(path, ear_nn_model_fingerprint(f->model), &err);
    EAR_CHECK_MSG(f->index != NULL, "index: %s", err.message);
    return f->index ? 0 : -1;
}

static void free_fixture(fixture *f)
{
    for (int i = 0; i < ITEMS; i++)
        free(f->wav[i]);
    ear_index_close(f->index);
    ear_nn_model_free(f->model);
}

static ear_query_status search(const fixture *f, ear_nn_session *s, const uint8_t *data,
                               size_t size, unsigned kinds, int k, ear_query_result *res,
                               ear_error *err)
{
    ear_query_request req = {.model = f->model, .kinds = kinds, .k = k,
                             .upload = {.data = data, .size = size, .kind = -1,
                                        .max_seconds = 60}};
    return ear_query_run(s, f->index, &req, res, err);
}

#define SOUNDS EAR_INDEX_MASK(EAR_INDEX_AUDIO)
#define FRAMES EAR_INDEX_MASK(EAR_INDEX_IMAGE)

static void check_answers(const fixture *f)
{
    ear_error err = {{0}};
    ear_nn_session *s = ear_nn_session_create(f->model, &err);
    ear_index_hit hits[2 * ITEMS];
    ear_query_result res = {.hits = hits};
    /* Each sound finds itself first among the sounds, with score ~1. */
    for (int i = 0; i < ITEMS; i++) {
        ear_query_status st = search(f, s, f->wav[i], f->wav_size[i], SOUNDS, ITEMS, &res, &err);
        EAR_CHECK_MSG(st == EAR_QUERY_OK, "search %d: %d %s", i, (int)st, err.message);
        EAR_CHECK(res.found == ITEMS);
        EAR_CHECK_MSG(res.found > 0 && hits[0].item == (size_t)i && hits[0].score > 0.9999f,
                      "sound %d found item %zu first, score %g", i, hits[0].item,
                      hits[0].score);
        EAR_CHECK(res.query.kind == EAR_INDEX_AUDIO);
        EAR_CHECK(fabs(res.query.duration_s - (0.6 + 0.1 * i)) < 1e-3);
        EAR_CHECK(strcmp(res.query.format, "wav") == 0 && res.query.truncated == 0);
        EAR_CHECK(res.query.decode_ms >= 0 && res.query.embed_ms > 0 && res.search_ms >= 0 &&
                  res.total_ms + 1e-9 >= res.query.decode_ms + res.query.embed_ms +
                                             res.search_ms);
    }
    /* Against frames: ITEMS - 1 of them, every hit a frame. */
    EAR_CHECK(search(f, s, f->wav[1], f->wav_size[1], FRAMES, 2 * ITEMS, &res, &err) ==
                  EAR_QUERY_OK &&
              res.found == ITEMS - 1);
    for (int r = 0; r < res.found; r++)
        EAR_CHECK(ear_index_item_kind(f->index, hits[r].item) == EAR_INDEX_IMAGE);
    /* Both kinds: every item. */
    EAR_CHECK(search(f, s, f->wav[1], f->wav_size[1], EAR_INDEX_ALL, 2 * ITEMS, &res, &err) ==
                  EAR_QUERY_OK &&
              res.found == 2 * ITEMS - 1);

    /* An image query: its kind from the bytes, whatever the name says. */
    size_t jpeg_size;
    uint8_t *jpeg = ear_file_read("tests/fixtures/image/photo_77x52.jpg", 1 << 20, &jpeg_size,
                                  &err);
    EAR_CHECK(jpeg != NULL);
    EAR_CHECK(ear_query_kind_of(jpeg, jpeg_size, "x.wav") == EAR_INDEX_IMAGE);
    ear_query_request req = {.model = f->model, .kinds = EAR_INDEX_ALL, .k = 3,
                             .upload = {.data = jpeg, .size = jpeg_size, .name = "photo.wav",
                                        .kind = -1, .max_seconds = 60}};
    EAR_CHECK_MSG(ear_query_run(s, f->index, &req, &res, &err) == EAR_QUERY_OK, "image: %s",
                  err.message);
    EAR_CHECK(res.query.kind == EAR_INDEX_IMAGE && strcmp(res.query.format, "jpeg") == 0 &&
              res.found == 3);
    free(jpeg);

    /* Cut at --max-seconds: said so, duration at the cap. */
    req = (ear_query_request){.model = f->model, .kinds = SOUNDS, .k = 2,
                              .upload = {.data = f->wav[5], .size = f->wav_size[5], .kind = -1,
                                         .max_seconds = 0.5}};
    EAR_CHECK(ear_query_run(s, f->index, &req, &res, &err) == EAR_QUERY_OK);
    EAR_CHECK_MSG(res.query.truncated == 1 && fabs(res.query.duration_s - 0.5) < 1e-3,
                  "truncated %d, %g s", res.query.truncated, res.query.duration_s);

    /* Failures, each with its status and a message. */
    static const uint8_t junk[] = "this is not a sound at all, just some bytes";
    err.message[0] = 0;
    EAR_CHECK(search(f, s, junk, sizeof junk, FRAMES, 3, &res, &err) == EAR_QUERY_UNDECODABLE &&
              err.message[0]);
    EAR_CHECK(search(f, s, junk, 0, FRAMES, 3, &res, &err) == EAR_QUERY_UNDECODABLE &&
              strstr(err.message, "0 bytes"));
    /* Neither image nor sound, named as an image: an unreadable image. */
    req = (ear_query_request){.model = f->model, .kinds = EAR_INDEX_ALL, .k = 3,
                              .upload = {.data = junk, .size = sizeof junk, .name = "a.JPG",
                                         .kind = -1}};
    EAR_CHECK(ear_query_run(s, f->index, &req, &res, &err) == EAR_QUERY_BAD_IMAGE &&
              strstr(err.message, "cannot identify image file 'a.JPG'"));
    /* A PNG signature with nothing after it. */
    static const uint8_t png[] = "\x89PNG\r\n\x1a\n";
    EAR_CHECK(ear_query_kind_of(png, 8, NULL) == EAR_INDEX_IMAGE);
    EAR_CHECK(search(f, s, png, 8, EAR_INDEX_ALL, 3, &res, &err) == EAR_QUERY_BAD_IMAGE);
    EAR_CHECK(ear_query_kind_of(junk, sizeof junk, "b.Mp3") == EAR_INDEX_AUDIO);
    EAR_CHECK(ear_query_kind_of(junk, sizeof junk, "b.txt") == -1);
    EAR_CHECK(ear_query_kind_of(junk, sizeof junk, NULL) == -1);
    size_t short_size;
    uint8_t *short_wav = make_wav(1, 0.05, &short_size);
    EAR_CHECK(search(f, s, short_wav, short_size, FRAMES, 3, &res, &err) ==
                  EAR_QUERY_TOO_SHORT &&
              strstr(err.message, "0.050 s"));
    free(short_wav);
    EAR_CHECK(search(f, s, f->wav[0], f->wav_size[0], FRAMES, 0, &res, &err) ==
                  EAR_QUERY_BAD_REQUEST &&
              strstr(err.message, "k must be"));
    req = (ear_query_request){.upload = {.data = f->wav[0], .size = f->wav_size[0]}, .k = 1,
                              .kinds = SOUNDS};
    EAR_CHECK(ear_query_run(s, f->index, &req, &res, &err) == EAR_QUERY_INTERNAL);
    ear_nn_session_free(s);

    /* A model without an audio tower cannot embed a sound. */
    ear_nn_model *image_model = ear_nn_model_load(IMAGE_MODEL, &err);
    ear_nn_session *image_session = image_model ? ear_nn_model_config(image_model)->embed_dim ==
                                                          ear_index_dim(f->index)
                                                      ? ear_nn_session_create(image_model, &err)
                                                      : NULL
                                                : NULL;
    if (image_session) {
        req = (ear_query_request){.model = image_model, .kinds = SOUNDS, .k = 1,
                                  .upload = {.data = f->wav[0], .size = f->wav_size[0],
                                             .kind = -1}};
        EAR_CHECK(ear_query_run(image_session, f->index, &req, &res, &err) ==
                      EAR_QUERY_BAD_REQUEST &&
                  strstr(err.message, "no audio tower"));
    }
    ear_nn_session_free(image_session);
    ear_nn_model_free(image_model);
}

/* Decoder hooks (the service's sandbox): used instead of the in-process decoders, their
 * refusals, failures and cancellations mapped to statuses. */
typedef struct hook_state {
    int calls, result;
} hook_state;

static int fake_audio(void *user, const uint8_t *data, size_t size,
                      const ear_audio_decode_options *o, ear_audio_clip *out, ear_error *err)
{
    hook_state *h = user;
    h->calls++;
    if (h->result != 0)
        return ear_error_set(err, "hook says %d", h->result), h->result;
    return ear_audio_decode(data, size, o, out, err) == 0 ? 0 : EAR_QUERY_DECODE_REFUSED;
}

static int fake_image(void *user, const uint8_t *data, size_t size, ear_image *out,
                      ear_error *err)
{
    hook_state *h = user;
    h->calls++;
    if (h->result != 0)
        return ear_error_set(err, "hook says %d", h->result), h->result;
    return ear_image_decode(data, size, out, err) == 0 ? 0 : EAR_QUERY_DECODE_REFUSED;
}

static void check_decoder_hooks(const fixture *f)
{
    ear_error err = {{0}};
    ear_nn_session *s = ear_nn_session_create(f->model, &err);
    ear_index_hit hits[2 * ITEMS];
    ear_query_result res = {.hits = hits};
    hook_state h = {0};
    ear_query_decoders hooks = {.audio = fake_audio, .image = fake_image, .user = &h};
    ear_query_request req = {.model = f->model, .kinds = SOUNDS, .k = 1,
                             .upload = {.data = f->wav[2], .size = f->wav_size[2], .kind = -1,
                                        .max_seconds = 60, .decoders = &hooks}};
    EAR_CHECK(ear_query_run(s, f->index, &req, &res, &err) == EAR_QUERY_OK && h.calls == 1 &&
              hits[0].item == 2);
    static const struct {
        int result;
        ear_query_status status;
    } cases[] = {{EAR_QUERY_DECODE_REFUSED, EAR_QUERY_UNDECODABLE},
                 {EAR_QUERY_DECODE_FAILED, EAR_QUERY_INTERNAL},
                 {EAR_QUERY_DECODE_CANCELLED, EAR_QUERY_CANCELLED}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        h.result = cases[i].result;
        ear_query_status st = ear_query_run(s, f->index, &req, &res, &err);
        EAR_CHECK_MSG(st == cases[i].status, "audio hook %d: status %d", cases[i].result,
                      (int)st);
    }
    size_t jpeg_size;
    uint8_t *jpeg = ear_file_read("tests/fixtures/image/photo_77x52.jpg", 1 << 20, &jpeg_size,
                                  &err);
    req.upload.data = jpeg;
    req.upload.size = jpeg_size;
    req.kinds = EAR_INDEX_ALL;
    h = (hook_state){0};
    EAR_CHECK(jpeg && ear_query_run(s, f->index, &req, &res, &err) == EAR_QUERY_OK &&
              h.calls == 1 && res.query.kind == EAR_INDEX_IMAGE);
    h.result = EAR_QUERY_DECODE_REFUSED;
    EAR_CHECK(ear_query_run(s, f->index, &req, &res, &err) == EAR_QUERY_BAD_IMAGE);
    h.result = EAR_QUERY_DECODE_CANCELLED;
    EAR_CHECK(ear_query_run(s, f->index, &req, &res, &err) == EAR_QUERY_CANCELLED);
    free(jpeg);
    ear_nn_session_free(s);
}

/* Several threads, one session each, on one model and one index: every answer is the one
 * a single thread gives. */
enum { THREADS = 4, ROUNDS = 12 };

typedef struct worker {
    const fixture *f;
    int seed;
    ear_index_hit hits[ROUNDS][3];
    int failures;
} worker;

/* each_kind (ear serve --fill-columns): the best k of each kind, merged best first; each
 * kind's hits are exactly those of a search of that kind alone, whatever the other kind's
 * scores, where one ranking of both kinds together may hold none of a kind. */
static void check_each_kind(const fixture *f)
{
    ear_error err = {{0}};
    ear_nn_session *s = ear_nn_session_create(f->model, &err);
    ear_index_hit hits[2 * ITEMS], alone[ITEMS];
    ear_query_result res = {.hits = hits}, res_alone = {.hits = alone};
    for (int q = 0; q < ITEMS; q++) {
        for (int k = 1; k <= 3; k++) {
            ear_query_request req = {.model = f->model, .kinds = EAR_INDEX_ALL, .k = k,
                                     .each_kind = 1,
                                     .upload = {.data = f->wav[q], .size = f->wav_size[q],
                                                .kind = -1, .max_seconds = 60}};
            EAR_CHECK_MSG(ear_query_run(s, f->index, &req, &res, &err) == EAR_QUERY_OK,
                          "each kind: %s", err.message);
            EAR_CHECK_MSG(res.found == 2 * k, "query %d, k %d: found %d", q, k, res.found);
            for (int r = 1; r < res.found; r++)
                EAR_CHECK_MSG(hits[r - 1].score > hits[r].score ||
                                  (hits[r - 1].score == hits[r].score &&
                                   hits[r - 1].item < hits[r].item),
                              "query %d, k %d: rank %d out of order", q, k, r);
            for (unsigned kind = 0; kind < EAR_INDEX_KINDS; kind++) {
                EAR_CHECK(search(f, s, f->wav[q], f->wav_size[q], EAR_INDEX_MASK(kind), k,
                                 &res_alone, &err) == EAR_QUERY_OK &&
                          res_alone.found == k);
                int n = 0;
                for (int r = 0; r < res.found; r++) {
                    if (ear_index_item_kind(f->index, hits[r].item) != (int)kind)
                        continue;
                    EAR_CHECK_MSG(n < k && hits[r].item == alone[n].item &&
                                      hits[r].score == alone[n].score,
                                  "query %d, k %d, kind %u: rank %d differs", q, k, kind, n);
                    n++;
                }
                EAR_CHECK(n == k);
            }
        }
    }
    /* Against one kind only it is the plain search. */
    ear_query_request req = {.model = f->model, .kinds = SOUNDS, .k = 2, .each_kind = 1,
                             .upload = {.data = f->wav[2], .size = f->wav_size[2], .kind = -1,
                                        .max_seconds = 60}};
    EAR_CHECK(ear_query_run(s, f->index, &req, &res, &err) == EAR_QUERY_OK && res.found == 2 &&
              hits[0].item == 2);
    ear_nn_session_free(s);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    ear_error err;
    ear_nn_session *s = ear_nn_session_create(w->f->model, &err);
    if (!s) {
        w->failures = ROUNDS;
        return NULL;
    }
    for (int r = 0; r < ROUNDS; r++) {
        int i = (w->seed + r) % ITEMS;
        ear_query_result res = {.hits = w->hits[r]};
        if (search(w->f, s, w->f->wav[i], w->f->wav_size[i], EAR_INDEX_MASK(r % 2), 3, &res,
                   &err) != EAR_QUERY_OK ||
            res.found != 3)
            w->failures++;
    }
    ear_nn_session_free(s);
    return NULL;
}

static void check_threads(const fixture *f)
{
    worker single = {.f = f, .seed = 0}, workers[THREADS];
    worker_main(&single);
    EAR_CHECK(single.failures == 0);
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (worker){.f = f, .seed = 0};
        pthread_create(&threads[t], NULL, worker_main, &workers[t]);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        EAR_CHECK(workers[t].failures == 0);
        int same = 1;
        for (int r = 0; r < ROUNDS; r++)
            for (int h = 0; h < 3; h++)
                same &= workers[t].hits[r][h].item == single.hits[r][h].item &&
                        workers[t].hits[r][h].score == single.hits[r][h].score;
        EAR_CHECK_MSG(same, "thread %d answered differently", t);
    }
}

int main(void)
{
    char path[512];
    ear_test_tmp_path(path, sizeof path, "search-run.earindex");
    fixture f;
    if (make_fixture(&f, path) == 0) {
        check_answers(&f);
        check_each_kind(&f);
        check_decoder_hooks(&f);
        check_threads(&f);
    }
    free_fixture(&f);
    return ear_test_finish();
}
