/* `ear info` for a torch.save file that is not a model Ear runs (the model loader is tried
 * first): what the .pt reader sees in it. Kept apart from the model description, which nn
 * owns. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "pt/pt.h"

/* One line about a value: its kind and size, a tensor's dtype and shape. */
static void describe_value(const ear_pt_value *v, FILE *out)
{
    static const char *kinds[] = {"None", "bool", "int", "float", "str",
                                  "list", "tuple", "dict", "tensor", "other"};
    ear_pt_kind kind = ear_pt_value_kind(v);
    const ear_pt_tensor *t = ear_pt_value_tensor(v);
    size_t length = 0;
    const char *s = ear_pt_value_string(v, &length);
    if (t) {
        fprintf(out, "tensor %s [", ear_pt_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            fprintf(out, "%s%zu", d ? ", " : "", t->shape[d]);
        fprintf(out, "]%s", t->contiguous ? "" : " (strided)");
    } else if (s) {
        fprintf(out, "str of %zu bytes", length);
    } else if (kind == EAR_PT_KIND_INT || kind == EAR_PT_KIND_BOOL) {
        fprintf(out, "%s %lld", kinds[kind], (long long)ear_pt_value_int(v));
    } else if (kind == EAR_PT_KIND_FLOAT) {
        fprintf(out, "float %.9g", ear_pt_value_float(v));
    } else if (kind == EAR_PT_KIND_LIST || kind == EAR_PT_KIND_TUPLE ||
               kind == EAR_PT_KIND_DICT) {
        fprintf(out, "%s of %zu", kinds[kind], ear_pt_value_count(v));
    } else {
        fputs(kinds[kind], out);
    }
}

int ear_cli_info_pt(const char *path, const char *not_model)
{
    ear_error err;
    ear_pt_file *f = ear_pt_open(path, &err);
    if (!f) {
        fprintf(stderr, "ear: %s\n", err.message);
        return EAR_EXIT_FAILED;
    }
    size_t size = 0;
    (void)ear_pt_bytes(f, &size);
    const ear_pt_value *root = ear_pt_root(f);
    printf("%s: a torch.save file (%zu bytes), not a model Ear runs\n", path, size);
    if (not_model && *not_model)
        printf("as a model: %s\n", not_model);
    printf("root: ");
    describe_value(root, stdout);
    putchar('\n');
    size_t shown = ear_pt_value_kind(root) == EAR_PT_KIND_DICT ? ear_pt_value_count(root) : 0;
    for (size_t i = 0; i < shown && i < 40; i++) {
        const char *key = ear_pt_value_string(ear_pt_dict_key(root, i), NULL);
        printf("  %s: ", key ? key : "(a key that is not a string)");
        describe_value(ear_pt_dict_value(root, i), stdout);
        putchar('\n');
    }
    if (shown > 40)
        printf("  ... %zu more\n", shown - 40);
    /* The state dict's tensors: count, elements, bytes, and how many of each dtype. */
    size_t count = ear_pt_tensor_count(f), elements = 0, bytes = 0, per_dtype[16] = {0};
    for (size_t i = 0; i < count; i++) {
        const ear_pt_tensor *t = ear_pt_tensor_at(f, i);
        elements += t->numel;
        bytes += t->numel * ear_pt_dtype_size(t->dtype);
        per_dtype[t->dtype]++;
    }
    printf("tensors: %zu, %zu elements, %zu bytes; dtypes:", count, elements, bytes);
    for (int d = 0; d <= EAR_PT_BOOL; d++)
        if (per_dtype[d])
            printf(" %s x%zu", ear_pt_dtype_name((ear_pt_dtype)d), per_dtype[d]);
    printf("%s\n", count ? "" : " none");
    ear_pt_close(f);
    return EAR_EXIT_OK;
}
