#include "nn/config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

int ear_nn_encoder_features(const ear_nn_encoder_config *e)
{
    int last = e->widths[e->stage_count - 1];
    return e->block == EAR_NN_BLOCK_BOTTLENECK ? last * 4 : last;
}

/* Reads an optional number field; a field present but not a number is an error. */
static int read_number(const cJSON *obj, const char *where, const char *key, double *out,
                       int required, ear_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        if (required)
            return ear_error_set(err, "ear.config: %s.%s is missing", where, key);
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return ear_error_set(err, "ear.config: %s.%s must be a number", where, key);
    *out = v->valuedouble;
    return 0;
}

static int read_int(const cJSON *obj, const char *where, const char *key, int *out, int min,
                    int max, int required, ear_error *err)
{
    double d = *out;
    if (read_number(obj, where, key, &d, required, err) != 0)
        return -1;
    if (d != floor(d) || d < min || d > max)
        return ear_error_set(err, "ear.config: %s.%s must be an integer from %d to %d", where, key,
                             min, max);
    *out = (int)d;
    return 0;
}

static int parse_mel_object(const cJSON *a, ear_audio_mel_config *m, int required, ear_error *err)
{
    if (read_int(a, "audio", "sample_rate", &m->sample_rate, 1000, 384000, required, err) ||
        read_int(a, "audio", "n_fft", &m->n_fft, 16, 65536, required, err) ||
        read_int(a, "audio", "win_length", &m->win_length, 1, 65536, required, err) ||
        read_int(a, "audio", "hop_length", &m->hop_length, 1, 65536, required, err) ||
        read_int(a, "audio", "n_mels", &m->n_mels, 1, 1024, required, err) ||
        read_number(a, "audio", "f_min", &m->f_min, required, err) ||
        read_number(a, "audio", "f_max", &m->f_max, required, err) ||
        read_number(a, "audio", "log_offset", &m->log_offset, required, err) ||
        read_number(a, "audio", "mean", &m->mean, required, err) ||
        read_number(a, "audio", "std", &m->std, required, err))
        return -1;
    if (m->win_length > m->n_fft)
        return ear_error_set(err, "ear.config: audio.win_length (%d) exceeds n_fft (%d)",
                             m->win_length, m->n_fft);
    if (m->f_min < 0 || m->f_max <= m->f_min || m->f_max > m->sample_rate / 2.0 + 1e-9)
        return ear_error_set(err, "ear.config: audio.f_min/f_max must satisfy 0 <= f_min < f_max "
                                  "<= sample_rate/2");
    if (m->std == 0 || m->log_offset <= 0)
        return ear_error_set(err, "ear.config: audio.std must be non-zero and log_offset positive");
    return 0;
}

static int parse_encoder(const cJSON *tower, const char *where, ear_nn_encoder_config *e,
                         ear_error *err)
{
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(tower, "encoder");
    if (!cJSON_IsObject(enc))
        return ear_error_set(err, "ear.config: %s.encoder is missing", where);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(enc, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "resnet") != 0)
        return ear_error_set(err, "ear.config: %s.encoder.type must be \"resnet\"", where);
    const cJSON *block = cJSON_GetObjectItemCaseSensitive(enc, "block");
    if (cJSON_IsString(block) && strcmp(block->valuestring, "basic") == 0)
        e->block = EAR_NN_BLOCK_BASIC;
    else if (cJSON_IsString(block) && strcmp(block->valuestring, "bottleneck") == 0)
        e->block = EAR_NN_BLOCK_BOTTLENECK;
    else
        return ear_error_set(err, "ear.config: %s.encoder.block must be \"basic\" or "
                                  "\"bottleneck\"", where);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(enc, "layers");
    const cJSON *widths = cJSON_GetObjectItemCaseSensitive(enc, "widths");
    if (!cJSON_IsArray(layers) || !cJSON_IsArray(widths))
        return ear_error_set(err, "ear.config: %s.encoder.layers and widths must be arrays", where);
    int n = cJSON_GetArraySize(layers);
    if (n < 1 || n > EAR_NN_MAX_STAGES || cJSON_GetArraySize(widths) != n)
        return ear_error_set(err, "ear.config: %s.encoder.layers and widths must have the same "
                                  "length, 1 to %d", where, EAR_NN_MAX_STAGES);
    e->stage_count = n;
    for (int i = 0; i < n; i++) {
        const cJSON *l = cJSON_GetArrayItem(layers, i), *w = cJSON_GetArrayItem(widths, i);
        if (!cJSON_IsNumber(l) || l->valuedouble != floor(l->valuedouble) || l->valuedouble < 1 ||
            l->valuedouble > 64 || !cJSON_IsNumber(w) || w->valuedouble != floor(w->valuedouble) ||
            w->valuedouble < 1 || w->valuedouble > 8192)
            return ear_error_set(err, "ear.config: %s.encoder.layers[%d]/widths[%d] out of range",
                                 where, i, i);
        e->layers[i] = (int)l->valuedouble;
        e->widths[i] = (int)w->valuedouble;
    }
    return read_int(enc, where, "in_channels", &e->in_channels, 1, 64, 1, err);
}

static int parse_head(const cJSON *tower, const char *where, ear_nn_head_config *h, ear_error *err)
{
    const cJSON *head = cJSON_GetObjectItemCaseSensitive(tower, "head");
    if (!cJSON_IsObject(head))
        return ear_error_set(err, "ear.config: %s.head is missing", where);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(head, "type");
    h->hidden = 0;
    if (cJSON_IsString(type) && strcmp(type->valuestring, "linear") == 0) {
        h->type = EAR_NN_HEAD_LINEAR;
        return 0;
    }
    if (cJSON_IsString(type) && strcmp(type->valuestring, "mlp") == 0) {
        h->type = EAR_NN_HEAD_MLP;
        return read_int(head, where, "hidden", &h->hidden, 1, 65536, 1, err);
    }
    return ear_error_set(err, "ear.config: %s.head.type must be \"linear\" or \"mlp\"", where);
}

static int read_triple(const cJSON *obj, const char *key, float out[3], ear_error *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3)
        return ear_error_set(err, "ear.config: image.%s must be an array of 3 numbers", key);
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(v))
            return ear_error_set(err, "ear.config: image.%s must be an array of 3 numbers", key);
        out[i] = (float)v->valuedouble;
    }
    return 0;
}

int ear_nn_config_parse(const char *json, ear_nn_config *cfg, ear_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = cJSON_Parse(json);
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        ear_error_set(err, "ear.config: not a JSON object");
        goto done;
    }
    if (read_int(root, "config", "embed_dim", &cfg->embed_dim, 1, 65536, 1, err) != 0)
        goto done;
    const cJSON *audio = cJSON_GetObjectItemCaseSensitive(root, "audio");
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(root, "image");
    if (!audio && !image) {
        ear_error_set(err, "ear.config: neither an audio nor an image tower");
        goto done;
    }
    if (audio) {
        if (!cJSON_IsObject(audio)) {
            ear_error_set(err, "ear.config: audio must be an object");
            goto done;
        }
        cfg->has_audio = 1;
        ear_audio_mel_config_default(&cfg->mel);
        if (parse_mel_object(audio, &cfg->mel, 1, err) != 0 ||
            read_number(audio, "audio", "segment_seconds", &cfg->segment_seconds, 1, err) != 0 ||
            parse_encoder(audio, "audio", &cfg->audio_encoder, err) != 0 ||
            parse_head(audio, "audio", &cfg->audio_head, err) != 0)
            goto done;
        if (cfg->segment_seconds * cfg->mel.sample_rate < cfg->mel.n_fft ||
            cfg->segment_seconds > 600) {
            ear_error_set(err, "ear.config: audio.segment_seconds out of range");
            goto done;
        }
        if (cfg->audio_encoder.in_channels != 1) {
            ear_error_set(err, "ear.config: audio.encoder.in_channels must be 1 (one log-mel "
                               "channel), not %d", cfg->audio_encoder.in_channels);
            goto done;
        }
    }
    if (image) {
        if (!cJSON_IsObject(image)) {
            ear_error_set(err, "ear.config: image must be an object");
            goto done;
        }
        cfg->has_image = 1;
        if (read_int(image, "image", "size", &cfg->image_size, 8, 4096, 1, err) != 0 ||
            read_triple(image, "mean", cfg->image_mean, err) != 0 ||
            read_triple(image, "std", cfg->image_std, err) != 0 ||
            parse_encoder(image, "image", &cfg->image_encoder, err) != 0 ||
            parse_head(image, "image", &cfg->image_head, err) != 0)
            goto done;
        for (int i = 0; i < 3; i++)
            if (cfg->image_std[i] == 0) {
                ear_error_set(err, "ear.config: image.std must be non-zero");
                goto done;
            }
        if (cfg->image_encoder.in_channels != 3) {
            ear_error_set(err, "ear.config: image.encoder.in_channels must be 3 (RGB), not %d",
                          cfg->image_encoder.in_channels);
            goto done;
        }
    }
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

int ear_nn_config_parse_mel(const char *json, ear_audio_mel_config *mel, ear_error *err)
{
    ear_audio_mel_config_default(mel);
    cJSON *root = cJSON_Parse(json);
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        ear_error_set(err, "not a JSON object");
        goto done;
    }
    const cJSON *audio = cJSON_GetObjectItemCaseSensitive(root, "audio");
    rc = parse_mel_object(cJSON_IsObject(audio) ? audio : root, mel, 0, err);
done:
    cJSON_Delete(root);
    return rc;
}

int ear_nn_config_family(const char *json, int *heads, int *layer_norm_first)
{
    cJSON *root = cJSON_Parse(json);
    const cJSON *family = cJSON_GetObjectItemCaseSensitive(root, "family");
    int w2v = cJSON_IsString(family) && strcmp(family->valuestring, "wav2vec2") == 0;
    if (w2v) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(root, "heads");
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_first");
        if (cJSON_IsNumber(h) && h->valuedouble >= 1 && h->valuedouble <= 1024)
            *heads = (int)h->valuedouble;
        if (cJSON_IsBool(f))
            *layer_norm_first = cJSON_IsTrue(f);
    }
    cJSON_Delete(root);
    return w2v;
}
