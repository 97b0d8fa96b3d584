/* The model file's checks: broken variants of a valid fixture, written here (header edited
 * with cJSON, bytes cut or changed), each refused with a message that names the key or the
 * tensor at fault; and what must still load (integer tensors, no logit_scale, any padding). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/nn.h"
#include "nn_check.h"

static uint8_t *base;            /* the valid file */
static size_t base_size;
static cJSON *base_header;
static const uint8_t *base_data; /* its data area */
static size_t base_data_size;
static int variant_number;

static void variant_path(char *out, size_t size)
{
    char name[64];
    snprintf(name, sizeof name, "nn_model_variant_%d.safetensors", ++variant_number);
    ear_test_tmp_path(out, size, name);
}

static void write_bytes(const char *path, const void *a, size_t a_size, const void *b,
                        size_t b_size)
{
    FILE *f = fopen(path, "wb");
    EAR_CHECK_MSG(f != NULL, "cannot write %s", path);
    if (!f)
        return;
    fwrite(a, 1, a_size, f);
    if (b_size)
        fwrite(b, 1, b_size, f);
    fclose(f);
}

/* A safetensors file from a header and a data area: the header is padded with spaces to a
 * multiple of 8, as writers do. */
static void write_variant(const char *path, const cJSON *header, const uint8_t *data,
                          size_t data_size)
{
    char *text = cJSON_PrintUnformatted(header);
    size_t length = strlen(text), padded = (length + 7) / 8 * 8;
    uint8_t *head = malloc(8 + padded);
    for (int i = 0; i < 8; i++)
        head[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(head + 8, text, length);
    memset(head + 8 + length, ' ', padded - length);
    write_bytes(path, head, 8 + padded, data, data_size);
    free(head);
    free(text);
}

static cJSON *entry(cJSON *header, const char *name)
{
    cJSON *e = cJSON_GetObjectItemCaseSensitive(header, name);
    EAR_CHECK_MSG(e != NULL, "the fixture has no %s", name);
    return e;
}

static void set_item(cJSON *object, const char *key, cJSON *value)
{
    if (cJSON_GetObjectItemCaseSensitive(object, key))
        cJSON_ReplaceItemInObjectCaseSensitive(object, key, value);
    else
        cJSON_AddItemToObject(object, key, value);
}

static void set_pair(cJSON *e, const char *key, double a, double b)
{
    double v[2] = {a, b};
    set_item(e, key, cJSON_CreateDoubleArray(v, 2));
}

static size_t offset_of(cJSON *header, const char *name, int which)
{
    cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry(header, name), "data_offsets");
    return (size_t)cJSON_GetArrayItem(offsets, which)->valuedouble;
}

static void set_metadata(cJSON *header, const char *key, const char *value)
{
    cJSON *metadata = cJSON_GetObjectItemCaseSensitive(header, "__metadata__");
    if (value)
        set_item(metadata, key, cJSON_CreateString(value));
    else
        cJSON_DeleteItemFromObjectCaseSensitive(metadata, key);
}

/* Loads path and checks it is refused with a message that starts with the path and holds
 * every needle. */
static void check_refused(const char *what, const char *path, const char *needle,
                          const char *needle2)
{
    ear_error err = {{0}};
    ear_nn_model *m = ear_nn_model_load(path, &err);
    EAR_CHECK_MSG(m == NULL, "%s: loaded, should have been refused", what);
    ear_nn_model_free(m);
    int named = strncmp(err.message, path, strlen(path)) == 0 && strstr(err.message, needle) &&
                (!needle2 || strstr(err.message, needle2));
    EAR_CHECK_MSG(named, "%s: the message should name '%s'%s%s: %s", what, needle,
                  needle2 ? " and " : "", needle2 ? needle2 : "", err.message);
    if (strstr(path, "nn_model_variant_"))
        unlink(path);
}

/* A header edit, written with the base data, then refused. */
static void check_header_refused(const char *what, cJSON *header, const char *needle,
                                 const char *needle2)
{
    char path[1024];
    variant_path(path, sizeof path);
    write_variant(path, header, base_data, base_data_size);
    check_refused(what, path, needle, needle2);
    cJSON_Delete(header);
}

static cJSON *copy(void)
{
    return cJSON_Duplicate(base_header, 1);
}

static void check_container(void)
{
    char path[1024];
    uint8_t *bytes = malloc(base_size);
    memcpy(bytes, base, base_size);

    variant_path(path, sizeof path);
    write_bytes(path, base, 5, NULL, 0);
    check_refused("a 5-byte file", path, "too short", NULL);

    variant_path(path, sizeof path);
    for (int i = 0; i < 8; i++)
        bytes[i] = (uint8_t)((uint64_t)base_size >> (8 * i));
    write_bytes(path, bytes, base_size, NULL, 0);
    check_refused("a header length past the end", path, "header length", NULL);

    variant_path(path, sizeof path);
    memset(bytes, 0, 8);
    write_bytes(path, bytes, base_size, NULL, 0);
    check_refused("a header length of 0", path, "header length", NULL);

    variant_path(path, sizeof path);
    memset(bytes, 0xff, 8);
    write_bytes(path, bytes, base_size, NULL, 0);
    check_refused("a header length of 2^64 - 1", path, "header length", NULL);

    /* A header length over safetensors' 100 MiB limit, in a (sparse) file that long. */
    variant_path(path, sizeof path);
    FILE *f = fopen(path, "wb");
    if (f) {
        uint64_t length = ((uint64_t)100 << 20) + 1;
        for (int i = 0; i < 8; i++)
            fputc((int)(length >> (8 * i)) & 0xff, f);
        EAR_CHECK(ftruncate(fileno(f), (off_t)(length + 64)) == 0);
        fclose(f);
    }
    check_refused("a header over 100 MiB", path, "over the limit", NULL);

    static const char *const broken[][2] = {
        {"{\"a\": [1, 2", "not valid JSON"},
        {"[1, 2, 3]", "not a JSON object"},
        {"{}      xx", "after its JSON"},
        {"{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", "w: data_offsets"},
        {"{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", "w: shape"},
        {"{\"w\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", "w: shape"},
        {"{\"w\": {\"dtype\": \"F32\", \"shape\": [1e300, 1e300], \"data_offsets\": [0, 4]}}",
         "w: shape"},
        {"{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", "w: no dtype"},
        {"{\"w\": 7}", "w: header entry"},
        {"{\"__metadata__\": {\"ear.format\": 1}}", "ear.format"},
        {"{\"__metadata__\": []}", "__metadata__"},
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        size_t length = strlen(broken[i][0]);
        uint8_t *file = malloc(8 + length + 16);
        for (int k = 0; k < 8; k++)
            file[k] = (uint8_t)((uint64_t)length >> (8 * k));
        memcpy(file + 8, broken[i][0], length);
        memset(file + 8 + length, 0, 16);
        variant_path(path, sizeof path);
        write_bytes(path, file, 8 + length + 16, NULL, 0);
        check_refused(broken[i][0], path, broken[i][1], NULL);
        free(file);
    }

    /* Cut the file inside its last tensor (by 3 bytes: no other tensor is touched): that
     * tensor is named. */
    const char *last = NULL;
    size_t last_end = 0;
    for (cJSON *e = base_header->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__") != 0 && offset_of(base_header, e->string, 1) > last_end) {
            last_end = offset_of(base_header, e->string, 1);
            last = e->string;
        }
    variant_path(path, sizeof path);
    write_bytes(path, base, base_size - 3, NULL, 0);
    check_refused("a truncated file", path, last, "outside");

    ear_error err = {{0}};
    check_refused("a missing file", "/nonexistent/model.safetensors", "No such file", NULL);
    const char *folder = ear_test_env("EAR_TEST_TMP", "/tmp");
    EAR_CHECK(ear_nn_model_load(folder, &err) == NULL && strstr(err.message, "regular file"));
    free(bytes);
}

static void check_metadata(void)
{
    static const char *const keys[] = {"ear.format", "ear.version", "ear.config"};
    for (int i = 0; i < 3; i++) {
        cJSON *h = copy();
        set_metadata(h, keys[i], NULL);
        check_header_refused("a missing metadata key", h, keys[i], NULL);
    }
    cJSON *h = copy();
    cJSON_DeleteItemFromObjectCaseSensitive(h, "__metadata__");
    check_header_refused("no __metadata__", h, "ear.format", NULL);

    h = copy();
    set_metadata(h, "ear.format", "clip");
    check_header_refused("another format", h, "ear.format", "clip");
    h = copy();
    set_metadata(h, "ear.version", "2");
    check_header_refused("another version", h, "ear.version", NULL);
    h = copy();
    set_metadata(h, "ear.config", "{\"embed_dim\": 8}");
    check_header_refused("a configuration without towers", h, "ear.config", NULL);
    h = copy();
    set_metadata(h, "ear.config", "not JSON");
    check_header_refused("a configuration that is not JSON", h, "ear.config", NULL);

    /* The fixture's own configuration with one field wrong. */
    const char *config =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(base_header,
                                                                          "__metadata__"),
                                         "ear.config")->valuestring;
    static const char *const edits[][3] = {
        {"\"in_channels\":1", "\"in_channels\":2", "in_channels"},
        {"\"block\":\"basic\"", "\"block\":\"wide\"", "block"},
        {"\"hop_length\":80", "\"hop_length\":0", "hop_length"},
        {"\"type\":\"mlp\"", "\"type\":\"mlp2\"", "head.type"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        const char *at = strstr(config, edits[i][0]);
        EAR_CHECK_MSG(at != NULL, "the fixture's configuration has no %s", edits[i][0]);
        if (!at)
            continue;
        char edited[4096];
        snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - config), config, edits[i][1],
                 at + strlen(edits[i][0]));
        h = copy();
        set_metadata(h, "ear.config", edited);
        check_header_refused(edits[i][1], h, "ear.config", edits[i][2]);
    }

    /* An image-only configuration: the file's image tensors are not its to explain away... */
    cJSON *parsed = cJSON_Parse(config);
    cJSON_DeleteItemFromObjectCaseSensitive(parsed, "audio");
    char *image_only = cJSON_PrintUnformatted(parsed);
    h = copy();
    set_metadata(h, "ear.config", image_only);
    check_header_refused("audio tensors in an image-only model", h, "unexpected tensor", "audio.");
    free(image_only);
    cJSON_Delete(parsed);
}

static void check_tensors(void)
{
    static const char *const missing[] = {
        "audio.encoder.layer2.0.downsample.1.running_var", "audio.encoder.conv1.weight",
        "audio.proj.bias", "image.proj.2.weight", "image.encoder.layer4.0.bn2.weight",
    };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        cJSON *h = copy();
        cJSON_DeleteItemFromObjectCaseSensitive(h, missing[i]);
        check_header_refused("a missing tensor", h, missing[i], "missing");
    }

    /* Same bytes, another shape. */
    cJSON *h = copy();
    double swapped[2] = {12, 8};
    set_item(entry(h, "image.proj.2.weight"), "shape", cJSON_CreateDoubleArray(swapped, 2));
    check_header_refused("a transposed weight", h, "image.proj.2.weight", "shape");
    h = copy();
    double flat[4] = {4, 1, 49, 1};
    set_item(entry(h, "audio.encoder.conv1.weight"), "shape", cJSON_CreateDoubleArray(flat, 4));
    check_header_refused("a reshaped conv", h, "audio.encoder.conv1.weight", "[4, 1, 7, 7]");

    /* Integer and double weights, with offsets that fit their size. */
    h = copy();
    cJSON *e = entry(h, "audio.encoder.conv1.weight");
    size_t begin = offset_of(h, "audio.encoder.conv1.weight", 0);
    set_item(e, "dtype", cJSON_CreateString("I8"));
    set_pair(e, "data_offsets", (double)begin, (double)(begin + 4 * 1 * 7 * 7));
    check_header_refused("an I8 weight", h, "audio.encoder.conv1.weight", "I8");
    h = copy();
    e = entry(h, "audio.proj.bias");
    double half[1] = {4};
    set_item(e, "dtype", cJSON_CreateString("F64"));
    set_item(e, "shape", cJSON_CreateDoubleArray(half, 1));
    check_header_refused("an F64 weight", h, "audio.proj.bias", "F64");
    h = copy();
    set_item(entry(h, "audio.proj.bias"), "dtype", cJSON_CreateString("F33"));
    check_header_refused("an unknown dtype", h, "audio.proj.bias", "unknown dtype");

    /* Offsets out of the data area, of the wrong length, overlapping. */
    h = copy();
    set_pair(entry(h, "audio.proj.weight"), "data_offsets", (double)(base_data_size - 8),
             (double)(base_data_size - 8 + 8 * 16 * 4));
    check_header_refused("offsets past the end", h, "audio.proj.weight", "outside");
    h = copy();
    set_pair(entry(h, "audio.proj.weight"), "data_offsets", 0, 1e15);
    check_header_refused("offsets far past the end", h, "audio.proj.weight", "outside");
    h = copy();
    begin = offset_of(h, "audio.proj.weight", 0);
    set_pair(entry(h, "audio.proj.weight"), "data_offsets", (double)begin, (double)begin + 4);
    check_header_refused("offsets of the wrong length", h, "audio.proj.weight", "need");
    h = copy();
    set_pair(entry(h, "audio.encoder.bn1.bias"), "data_offsets",
             (double)offset_of(h, "audio.encoder.bn1.weight", 0),
             (double)offset_of(h, "audio.encoder.bn1.weight", 1));
    check_header_refused("overlapping tensors", h, "audio.encoder.bn1.bias", "overlap");
    h = copy();
    set_pair(entry(h, "audio.encoder.bn1.bias"), "data_offsets",
             (double)offset_of(h, "audio.encoder.bn1.weight", 0) + 4,
             (double)offset_of(h, "audio.encoder.bn1.weight", 1) + 4);
    check_header_refused("partly overlapping tensors", h, "audio.encoder.bn1.weight", "overlap");

    /* Tensors the configuration does not explain; a name twice; a malformed logit_scale. */
    static const char *const unexpected[] = {"audio.encoder.layer1.2.conv1.weight",
                                             "image.encoder.fc.weight", "text.proj.weight"};
    for (size_t i = 0; i < sizeof unexpected / sizeof unexpected[0]; i++) {
        char path[1024];
        h = copy();
        cJSON *t = cJSON_CreateObject();
        double shape[1] = {2};
        cJSON_AddStringToObject(t, "dtype", "F32");
        cJSON_AddItemToObject(t, "shape", cJSON_CreateDoubleArray(shape, 1));
        set_pair(t, "data_offsets", (double)base_data_size, (double)base_data_size + 8);
        cJSON_AddItemToObject(h, unexpected[i], t);
        uint8_t *data = calloc(base_data_size + 8, 1);
        memcpy(data, base_data, base_data_size);
        variant_path(path, sizeof path);
        write_variant(path, h, data, base_data_size + 8);
        check_refused("an unexpected tensor", path, unexpected[i], "unexpected");
        free(data);
        cJSON_Delete(h);
    }
    h = copy();
    cJSON_AddItemToObject(h, "audio.proj.bias",
                          cJSON_Duplicate(entry(h, "audio.proj.bias"), 1));
    check_header_refused("a name twice", h, "audio.proj.bias", "twice");
    h = copy();
    double two[1] = {2};
    e = entry(h, "logit_scale");
    set_item(e, "shape", cJSON_CreateDoubleArray(two, 1));
    set_pair(e, "data_offsets", (double)base_data_size, (double)base_data_size + 8);
    {
        char path[1024];
        uint8_t *data = calloc(base_data_size + 8, 1);
        memcpy(data, base_data, base_data_size);
        variant_path(path, sizeof path);
        write_variant(path, h, data, base_data_size + 8);
        check_refused("two logit scales", path, "logit_scale", NULL);
        free(data);
        cJSON_Delete(h);
    }
}

/* A value the model cannot use: the tensor is named. */
static void check_values(void)
{
    static const struct {
        const char *tensor;
        float value;
        const char *needle;
    } cases[] = {
        {"audio.encoder.layer1.0.conv2.weight", NAN, "non-finite"},
        {"image.proj.0.bias", INFINITY, "non-finite"},
        {"image.encoder.bn1.running_var", -1.0f, "negative variance"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[1024];
        uint8_t *data = malloc(base_data_size);
        memcpy(data, base_data, base_data_size);
        size_t at = offset_of(base_header, cases[i].tensor, 0) + 3 * sizeof(float);
        memcpy(data + at, &cases[i].value, sizeof(float));
        variant_path(path, sizeof path);
        write_variant(path, base_header, data, base_data_size);
        check_refused(cases[i].needle, path, cases[i].tensor, cases[i].needle);
        free(data);
    }
}

static int embed_pixels(const char *path, float *out)
{
    ear_error err = {{0}};
    ear_nn_model *m = ear_nn_model_load(path, &err);
    ear_nn_session *s = m ? ear_nn_session_create(m, &err) : NULL;
    EAR_CHECK_MSG(s != NULL, "%s: %s", path, err.message);
    int rc = -1;
    float *pixels = nn_load_npy("nn_basic_f32_pixels.npy", 3 * 32 * 32);
    if (s && pixels)
        rc = ear_nn_embed_pixels(s, pixels, out, &err);
    free(pixels);
    ear_nn_session_free(s);
    ear_nn_model_free(m);
    return rc;
}

/* What the spec allows still loads, and gives the same embeddings. */
static void check_accepted(const char *base_path)
{
    float reference[8], got[8];
    EAR_CHECK(embed_pixels(base_path, reference) == 0);

    /* No integer tensors, no logit_scale, other padding: the same model. */
    char path[1024];
    cJSON *h = copy();
    for (cJSON *e = h->child, *next; e; e = next) {
        next = e->next;
        if (strstr(e->string, "num_batches_tracked") || strcmp(e->string, "logit_scale") == 0)
            cJSON_DeleteItemFromObjectCaseSensitive(h, e->string);
    }
    variant_path(path, sizeof path);
    write_variant(path, h, base_data, base_data_size);
    cJSON_Delete(h);
    EAR_CHECK(embed_pixels(path, got) == 0 && memcmp(got, reference, sizeof got) == 0);
    unlink(path);

    /* An integer tensor anywhere is ignored, as the spec says. */
    h = copy();
    cJSON *t = cJSON_CreateObject();
    double shape[1] = {1};
    cJSON_AddStringToObject(t, "dtype", "I64");
    cJSON_AddItemToObject(t, "shape", cJSON_CreateDoubleArray(shape, 1));
    set_pair(t, "data_offsets", (double)base_data_size, (double)base_data_size + 8);
    cJSON_AddItemToObject(h, "image.encoder.step", t);
    uint8_t *data = calloc(base_data_size + 8, 1);
    memcpy(data, base_data, base_data_size);
    variant_path(path, sizeof path);
    write_variant(path, h, data, base_data_size + 8);
    cJSON_Delete(h);
    free(data);
    EAR_CHECK(embed_pixels(path, got) == 0 && memcmp(got, reference, sizeof got) == 0);

    /* The fingerprint is of the bytes: the same model written differently is another file. */
    ear_error err = {{0}};
    ear_nn_model *a = ear_nn_model_load(base_path, &err), *b = ear_nn_model_load(path, &err);
    EAR_CHECK(a && b && strcmp(ear_nn_model_fingerprint(a), ear_nn_model_fingerprint(b)) != 0);
    unlink(path);

    /* The description says what the file holds. */
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (a && out) {
        ear_nn_model_describe(a, out);
        fclose(out);
        static const char *const needles[] = {"fingerprint", "parameters", "F32", "I64",
                                              "logit_scale", "audio tower", "image tower",
                                              "basic", "mlp 16 -> 12", "8000 Hz", "4000 samples"};
        EAR_CHECK(strstr(text, ear_nn_model_fingerprint(a)) != NULL);
        for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++)
            EAR_CHECK_MSG(strstr(text, needles[i]) != NULL, "describe lacks '%s':\n%s",
                          needles[i], text);
    }
    free(text);
    ear_nn_model_free(a);
    ear_nn_model_free(b);

    ear_nn_config config;
    EAR_CHECK(ear_nn_model_read_config(base_path, &config, &err) == 0 && config.has_audio &&
              config.mel.n_mels == 16 && config.image_size == 32);
    EAR_CHECK(ear_nn_model_read_config("/nonexistent", &config, &err) == -1);
}

int main(void)
{
    char path[1024];
    nn_fixture(path, sizeof path, "nn_basic_f32.safetensors");
    ear_error err;
    base = ear_file_read(path, 1 << 24, &base_size, &err);
    EAR_CHECK_MSG(base != NULL, "%s", err.message);
    if (!base)
        return ear_test_finish();
    size_t header_length = 0;
    for (int i = 7; i >= 0; i--)
        header_length = header_length << 8 | base[i];
    base_header = cJSON_ParseWithLength((const char *)base + 8, header_length);
    EAR_CHECK(base_header != NULL);
    if (base_header) {
        base_data = base + 8 + header_length;
        base_data_size = base_size - 8 - header_length;
        check_container();
        check_metadata();
        check_tensors();
        check_values();
        check_accepted(path);
    }
    cJSON_Delete(base_header);
    free(base);
    return ear_test_finish();
}
