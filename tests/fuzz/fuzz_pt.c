/* The .pt reader (src/pt) on arbitrary bytes: the zip container, the restricted pickle
 * machine, every tensor's bounds; then everything a file that opens holds is walked and
 * every tensor read to its last element, so a bound the reader let through shows.
 *
 * An input that starts "PK" is a whole file. Any other input is a bare pickle, which the
 * harness wraps in a torch zip (with the right CRC, and storages data/0 .. data/3 of 16, 12,
 * 8 and 0 bytes): a mutated pickle inside a whole file would almost always fail data.pkl's
 * CRC and never reach the pickle machine. */
#include <string.h>

#include "fuzz.h"
#include "pt/pt.h"
#include "../pt/pt_zip.h"

/* Visits values depth-first, at most *budget of them: a shared value is visited once per
 * place, so a small pickle can describe a huge tree; the reader bounds depth, not size. */
static void walk(const ear_pt_value *v, size_t *budget, int depth)
{
    if (!*budget)
        return;
    (*budget)--;
    EAR_FUZZ_REQUIRE(depth <= EAR_PT_MAX_DEPTH, "a tree deeper than the reader allows");
    size_t length = 0;
    const char *s = ear_pt_value_string(v, &length);
    if (s)
        EAR_FUZZ_REQUIRE(s[length] == 0, "a string without its NUL");
    (void)ear_pt_value_float(v);
    const ear_pt_tensor *t = ear_pt_value_tensor(v);
    if (t)
        EAR_FUZZ_REQUIRE(t->ndim >= 0 && t->ndim <= EAR_PT_MAX_DIMS, "a tensor's ndim");
    for (size_t i = 0; i < ear_pt_value_count(v); i++) {
        if (ear_pt_value_kind(v) == EAR_PT_KIND_DICT) {
            walk(ear_pt_dict_key(v, i), budget, depth + 1);
            walk(ear_pt_dict_value(v, i), budget, depth + 1);
        } else {
            walk(ear_pt_value_item(v, i), budget, depth + 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *wrapped = NULL;
    if (size < 2 || data[0] != 'P' || data[1] != 'K') {
        if (size > (1u << 20))
            return 0;
        data = wrapped = ear_test_pt_zip(data, size, &size);
    }
    ear_error err = {{0}};
    ear_pt_file *f = ear_pt_open_memory(data, size, &err);
    if (!f) {
        EAR_FUZZ_REQUIRE(err.message[0], "a refusal must say why");
        free(wrapped);
        return 0;
    }
    size_t budget = 100000;
    walk(ear_pt_root(f), &budget, 0);
    size_t elements = (size_t)1 << 20; /* read at most this many, all tensors together */
    for (size_t i = 0; i < ear_pt_tensor_count(f); i++) {
        const char *name = ear_pt_tensor_name(f, i);
        EAR_FUZZ_REQUIRE(name && ear_pt_tensor_at(f, i), "a listed tensor is missing");
        const ear_pt_tensor *t = ear_pt_find(f, name);
        EAR_FUZZ_REQUIRE(t, "a listed name is not found");
        if (t->numel && t->numel <= elements) {
            elements -= t->numel;
            float *out = malloc(t->numel * sizeof *out);
            EAR_FUZZ_REQUIRE(out, "out of memory");
            ear_pt_tensor_to_f32(t, out);
            free(out);
        }
    }
    ear_pt_close(f);
    free(wrapped);
    return 0;
}
