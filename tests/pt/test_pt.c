/* The .pt reader (src/pt) against files torch 1.13 wrote (tools/make_pt_fixtures.py):
 * every tensor's dtype, shape, stride, offset, contiguity and every element against
 * expected.json; the plain values of a checkpoint and of the original's index; each hostile
 * or damaged file refused with its reason; and every prefix and every one-byte change of a
 * good file read without a crash (the sanitizer build checks the bounds). */
#include <cjson/cJSON.h>
#include <stdint.h>

#include "core/core.h"
#include "pt/pt.h"
#include "test.h"

#define FIXTURES "tests/fixtures/pt/"

static cJSON *expected;
/* torch's writer pads each record to 64 bytes; Python's zipfile (rezipped.pt) does not. */
static int expect_aligned = 1;

static int same_float(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b);
}

/* One tensor against its expected.json description. */
static void check_tensor(const char *file, const char *name, const ear_pt_tensor *t,
                         const cJSON *want, const ear_pt_file *f)
{
    EAR_CHECK_MSG(t, "%s: no tensor '%s'", file, name);
    if (!t)
        return;
    const char *dtype = cJSON_GetObjectItem(want, "dtype")->valuestring;
    EAR_CHECK_MSG(strcmp(ear_pt_dtype_name(t->dtype), dtype) == 0, "%s %s: dtype %s, want %s",
                  file, name, ear_pt_dtype_name(t->dtype), dtype);
    const cJSON *shape = cJSON_GetObjectItem(want, "shape"),
                *stride = cJSON_GetObjectItem(want, "stride");
    EAR_CHECK_MSG(t->ndim == cJSON_GetArraySize(shape), "%s %s: ndim %d", file, name, t->ndim);
    size_t numel = 1;
    for (int d = 0; d < t->ndim && d < cJSON_GetArraySize(shape); d++) {
        EAR_CHECK_MSG(t->shape[d] == (size_t)cJSON_GetArrayItem(shape, d)->valuedouble,
                      "%s %s: shape[%d] %zu", file, name, d, t->shape[d]);
        EAR_CHECK_MSG(t->stride[d] == (size_t)cJSON_GetArrayItem(stride, d)->valuedouble,
                      "%s %s: stride[%d] %zu", file, name, d, t->stride[d]);
        numel *= t->shape[d];
    }
    EAR_CHECK_MSG(t->numel == numel, "%s %s: numel %zu, want %zu", file, name, t->numel, numel);
    EAR_CHECK_MSG(t->storage_offset ==
                      (size_t)cJSON_GetObjectItem(want, "offset")->valuedouble,
                  "%s %s: offset %zu", file, name, t->storage_offset);
    EAR_CHECK_MSG(t->contiguous == cJSON_IsTrue(cJSON_GetObjectItem(want, "contiguous")),
                  "%s %s: contiguous %d", file, name, t->contiguous);
    size_t size;
    const uint8_t *bytes = ear_pt_bytes(f, &size);
    EAR_CHECK_MSG(t->storage >= bytes && t->storage + t->storage_bytes <= bytes + size,
                  "%s %s: the storage is not inside the mapped file", file, name);
    if (numel)
        EAR_CHECK_MSG(t->data == t->storage + t->storage_offset * ear_pt_dtype_size(t->dtype) &&
                          (t->aligned || !expect_aligned),
                      "%s %s: data pointer or alignment", file, name);
    const cJSON *values = cJSON_GetObjectItem(want, "values");
    EAR_CHECK_MSG((size_t)cJSON_GetArraySize(values) == numel, "%s %s: expected values",
                  file, name);
    float *got = malloc((numel ? numel : 1) * sizeof *got);
    ear_pt_tensor_to_f32(t, got);
    size_t wrong = 0;
    for (size_t i = 0; i < numel; i++) {
        float w = (float)cJSON_GetArrayItem(values, (int)i)->valuedouble;
        if (!same_float(got[i], w) && wrong++ == 0)
            EAR_CHECK_MSG(0, "%s %s: element %zu is %.9g, want %.9g", file, name, i, got[i], w);
    }
    EAR_CHECK_MSG(wrong == 0, "%s %s: %zu of %zu elements differ", file, name, wrong, numel);
    free(got);
}

/* Every tensor of a file that expected.json describes under key (a state dict). */
static ear_pt_file *check_state_dict(const char *file, const char *key)
{
    char path[256];
    snprintf(path, sizeof path, FIXTURES "%s", file);
    ear_error err = {{0}};
    ear_pt_file *f = ear_pt_open(path, &err);
    EAR_CHECK_MSG(f, "%s: %s", file, err.message);
    if (!f)
        return NULL;
    const cJSON *tensors = cJSON_GetObjectItem(expected, key);
    EAR_CHECK_MSG(ear_pt_tensor_count(f) == (size_t)cJSON_GetArraySize(tensors),
                  "%s: %zu tensors, want %d", file, ear_pt_tensor_count(f),
                  cJSON_GetArraySize(tensors));
    const cJSON *t;
    cJSON_ArrayForEach(t, tensors) check_tensor(file, t->string, ear_pt_find(f, t->string), t,
                                                f);
    EAR_CHECK(ear_pt_find(f, "no.such.tensor") == NULL);
    return f;
}

static void test_state_dict(const char *file)
{
    ear_pt_file *f = check_state_dict(file, "state_dict.pt");
    if (!f)
        return;
    /* The file's order, and each name's tensor the one ear_pt_find gives. */
    const cJSON *order = cJSON_GetObjectItem(expected, "state_dict.pt#order");
    for (int i = 0; i < cJSON_GetArraySize(order); i++) {
        const char *want = cJSON_GetArrayItem(order, i)->valuestring;
        const char *name = ear_pt_tensor_name(f, (size_t)i);
        EAR_CHECK_MSG(name && strcmp(name, want) == 0, "%s: tensor %d is %s, want %s", file, i,
                      name ? name : "(none)", want);
        EAR_CHECK(ear_pt_find(f, want) == ear_pt_tensor_at(f, (size_t)i));
    }
    EAR_CHECK(ear_pt_tensor_name(f, 1000) == NULL && ear_pt_tensor_at(f, 1000) == NULL);
    /* Views of one storage share its bytes: nothing was copied. */
    const cJSON *pair;
    cJSON_ArrayForEach(pair, cJSON_GetObjectItem(expected, "state_dict.pt#shared"))
    {
        const ear_pt_tensor *a = ear_pt_find(f, cJSON_GetArrayItem(pair, 0)->valuestring),
                            *b = ear_pt_find(f, cJSON_GetArrayItem(pair, 1)->valuestring);
        EAR_CHECK_MSG(a && b && a->storage == b->storage && a->storage_key == b->storage_key,
                      "%s: %s and %s do not share a storage", file,
                      cJSON_GetArrayItem(pair, 0)->valuestring,
                      cJSON_GetArrayItem(pair, 1)->valuestring);
    }
    /* The root is the OrderedDict itself; its _metadata attribute is not an entry. */
    const ear_pt_value *root = ear_pt_root(f);
    EAR_CHECK(ear_pt_value_kind(root) == EAR_PT_KIND_DICT);
    EAR_CHECK(ear_pt_value_count(root) == (size_t)cJSON_GetArraySize(order));
    EAR_CHECK(ear_pt_dict_get(root, "_metadata") == NULL);
    const ear_pt_tensor *scalar = ear_pt_find(f, "scalar");
    EAR_CHECK(scalar && scalar->ndim == 0 && scalar->numel == 1);
    const ear_pt_tensor *empty = ear_pt_find(f, "empty");
    EAR_CHECK(empty && empty->numel == 0 && empty->data == NULL);
    ear_pt_close(f);
}

static void test_checkpoint(void)
{
    ear_pt_file *f = check_state_dict("checkpoint.pt", "checkpoint.pt");
    if (!f)
        return;
    const ear_pt_value *root = ear_pt_root(f);
    EAR_CHECK(ear_pt_value_kind(ear_pt_dict_get(root, "epoch")) == EAR_PT_KIND_INT);
    EAR_CHECK(ear_pt_value_int(ear_pt_dict_get(root, "epoch")) == 7);
    EAR_CHECK(ear_pt_value_kind(ear_pt_dict_get(root, "lr")) == EAR_PT_KIND_FLOAT);
    EAR_CHECK(ear_pt_value_float(ear_pt_dict_get(root, "lr")) == 0.25);
    size_t length = 0;
    const char *name = ear_pt_value_string(ear_pt_dict_get(root, "name"), &length);
    EAR_CHECK(name && length == 5 && strcmp(name, "run-1") == 0);
    EAR_CHECK(ear_pt_value_kind(ear_pt_dict_get(root, "done")) == EAR_PT_KIND_BOOL);
    EAR_CHECK(ear_pt_value_int(ear_pt_dict_get(root, "done")) == 1);
    EAR_CHECK(ear_pt_value_kind(ear_pt_dict_get(root, "none")) == EAR_PT_KIND_NONE);
    EAR_CHECK(ear_pt_dict_get(root, "absent") == NULL);
    EAR_CHECK(ear_pt_value_string(ear_pt_dict_get(root, "epoch"), NULL) == NULL);
    EAR_CHECK(ear_pt_value_tensor(ear_pt_dict_get(root, "epoch")) == NULL);
    ear_pt_close(f);
}

static void test_index(void)
{
    ear_error err = {{0}};
    ear_pt_file *f = ear_pt_open(FIXTURES "index.pt", &err);
    EAR_CHECK_MSG(f, "index.pt: %s", err.message);
    if (!f)
        return;
    const cJSON *want = cJSON_GetObjectItem(expected, "index.pt");
    const ear_pt_value *root = ear_pt_root(f);
    check_tensor("index.pt", "tensor", ear_pt_value_tensor(ear_pt_dict_get(root, "tensor")),
                 cJSON_GetObjectItem(want, "tensor"), f);
    const ear_pt_value *metadata = ear_pt_dict_get(root, "metadata");
    const cJSON *items = cJSON_GetObjectItem(want, "metadata");
    EAR_CHECK(ear_pt_value_kind(metadata) == EAR_PT_KIND_LIST);
    EAR_CHECK(ear_pt_value_count(metadata) == (size_t)cJSON_GetArraySize(items));
    for (int i = 0; i < cJSON_GetArraySize(items); i++) {
        const ear_pt_value *item = ear_pt_value_item(metadata, (size_t)i);
        EAR_CHECK(ear_pt_value_kind(item) == EAR_PT_KIND_DICT && ear_pt_value_count(item) == 3);
        const char *keys[] = {"type", "url", "label"};
        for (int k = 0; k < 3; k++) {
            const char *got = ear_pt_value_string(ear_pt_dict_get(item, keys[k]), NULL);
            const char *w = cJSON_GetObjectItem(cJSON_GetArrayItem(items, i), keys[k])->valuestring;
            EAR_CHECK_MSG(got && strcmp(got, w) == 0, "index.pt: metadata[%d].%s is %s, want %s",
                          i, keys[k], got ? got : "(none)", w);
        }
        /* Entries in insertion order. */
        EAR_CHECK(strcmp(ear_pt_value_string(ear_pt_dict_key(item, 0), NULL), "type") == 0);
    }
    EAR_CHECK(ear_pt_value_item(metadata, 1000) == NULL);
    EAR_CHECK(ear_pt_dict_key(metadata, 0) == NULL);
    ear_pt_close(f);
}

/* Each refused file, and a word its message must hold. */
static void test_refusals(void)
{
    static const struct {
        const char *file, *reason;
    } cases[] = {
        {"os_system.pt", "refusing the global posix.system"},
        {"eval.pt", "refusing the global builtins.eval"},
        {"truncated.pt", "no end of central directory"},
        {"corrupt_cd.pt", "corrupt zip"},
        {"short_storage.pt", "storage shorter than tensor"},
        {"deflate.pt", "is compressed"},
        {"missing_storage.pt", "is missing"},
        {"legacy.pt", "legacy torch.save format"},
        {"byteorder_big.pt", "not little endian"},
        {"opcode.pt", "refusing pickle opcode 'I'"},
        {"cycle.pt", "contains itself"},
        {"deep.pt", "nested more than 64 deep"},
        {"dupkey.pt", "the key 'a' twice"},
        {"memo_skip.pt", "memo index 5"},
        {"no_such_file.pt", "No such file"},
        {"expected.json", "not a zip file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, FIXTURES "%s", cases[i].file);
        ear_error err = {{0}};
        ear_pt_file *f = ear_pt_open(path, &err);
        EAR_CHECK_MSG(!f, "%s was read", cases[i].file);
        ear_pt_close(f);
        EAR_CHECK_MSG(strncmp(err.message, path, strlen(path)) == 0 &&
                          strstr(err.message, cases[i].reason),
                      "%s: message \"%s\" lacks \"%s\"", cases[i].file, err.message,
                      cases[i].reason);
    }
}

static uint8_t *read_fixture(const char *file, size_t *size)
{
    char path[256];
    snprintf(path, sizeof path, FIXTURES "%s", file);
    ear_error err = {{0}};
    uint8_t *data = ear_file_read(path, (size_t)1 << 20, size, &err);
    EAR_CHECK_MSG(data, "%s", err.message);
    return data;
}

/* Reads whatever opened, to the last element: the sanitizers see any overrun. */
static void touch_everything(ear_pt_file *f)
{
    for (size_t i = 0; i < ear_pt_tensor_count(f); i++) {
        const ear_pt_tensor *t = ear_pt_tensor_at(f, i);
        float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
        ear_pt_tensor_to_f32(t, out);
        free(out);
    }
}

/* Every prefix of a good file is refused; every one-byte change is refused or read, and
 * never crashes. The bytes are an exact-size copy, so reading past them is an ASan error. */
static void test_damage(const char *file)
{
    size_t size = 0;
    uint8_t *good = read_fixture(file, &size);
    if (!good)
        return;
    size_t refused = 0, silent = 0, opened = 0;
    for (size_t n = 0; n < size; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, good, n);
        ear_error err = {{0}};
        ear_pt_file *f = ear_pt_open_memory(copy, n, &err);
        if (f) {
            ear_pt_close(f);
        } else {
            refused++;
            silent += err.message[0] == 0;
        }
        free(copy);
    }
    EAR_CHECK_MSG(refused == size && silent == 0, "%s: %zu of %zu prefixes refused, %zu silently",
                  file, refused, size, silent);
    refused = silent = 0;
    for (size_t at = 0; at < size; at++) {
        uint8_t *copy = malloc(size);
        memcpy(copy, good, size);
        copy[at] ^= (uint8_t)(0x5A + at);
        ear_error err = {{0}};
        ear_pt_file *f = ear_pt_open_memory(copy, size, &err);
        if (f) {
            opened++;
            touch_everything(f);
            ear_pt_close(f);
        } else {
            refused++;
            silent += err.message[0] == 0;
        }
        free(copy);
    }
    EAR_CHECK_MSG(silent == 0 && refused > size / 2, "%s: one-byte changes: %zu refused (%zu "
                  "silently), %zu read", file, refused, silent, opened);
    ear_error err = {{0}};
    ear_pt_file *f = ear_pt_open_memory(good, size, &err);
    EAR_CHECK_MSG(f && ear_pt_tensor_count(f) > 0, "%s from memory: %s", file, err.message);
    size_t mapped = 0;
    EAR_CHECK(f && ear_pt_bytes(f, &mapped) == good && mapped == size);
    EAR_CHECK(f && strncmp(err.message, "", 1) == 0);
    ear_pt_close(f);
    free(good);
}

static void test_helpers(void)
{
    EAR_CHECK(ear_pt_dtype_size(EAR_PT_BF16) == 2 && ear_pt_dtype_size(EAR_PT_I64) == 8);
    EAR_CHECK(strcmp(ear_pt_dtype_name(EAR_PT_BOOL), "BOOL") == 0);
    ear_pt_close(NULL);
    /* ear_file_map: a file mapped whole, an empty or missing one refused. */
    ear_file_mapping map;
    ear_error err = {{0}};
    EAR_CHECK(ear_file_map(FIXTURES "state_dict.pt", 22, &map, &err) == 0 && map.size > 22 &&
              memcmp(map.data, "PK", 2) == 0);
    ear_file_unmap(&map);
    EAR_CHECK(map.data == NULL && map.size == 0);
    char empty[512];
    ear_test_tmp_path(empty, sizeof empty, "pt-empty.pt");
    FILE *fp = fopen(empty, "w");
    if (fp)
        fclose(fp);
    EAR_CHECK(ear_file_map(empty, 0, &map, &err) == -1 && strstr(err.message, "too short"));
    EAR_CHECK(ear_file_map(FIXTURES, 0, &map, &err) == -1 &&
              strstr(err.message, "not a regular file"));
    remove(empty);
}

int main(void)
{
    size_t size = 0;
    uint8_t *json = read_fixture("expected.json", &size);
    expected = json ? cJSON_Parse((const char *)json) : NULL;
    free(json);
    EAR_CHECK_MSG(expected, "expected.json does not parse");
    if (!expected)
        return ear_test_finish();
    test_helpers();
    test_state_dict("state_dict.pt");
    expect_aligned = 0;
    test_state_dict("rezipped.pt");
    test_state_dict("zip64.pt");
    ear_pt_close(check_state_dict("byteorder_little.pt", "byteorder_little.pt"));
    expect_aligned = 1;
    ear_pt_close(check_state_dict("protocol4.pt", "protocol4.pt"));
    ear_pt_close(check_state_dict("protocol5.pt", "protocol5.pt"));
    test_checkpoint();
    test_index();
    test_refusals();
    test_damage("protocol4.pt");
    test_damage("state_dict.pt");
    test_damage("zip64.pt");
    cJSON_Delete(expected);
    return ear_test_finish();
}
