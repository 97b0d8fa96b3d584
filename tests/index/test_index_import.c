/* An index made by tools/import_index.py from the original's indexed_db.pt layout
 * (committed: tests/fixtures/index/seed.earindex, made from seed.pt by
 * tools/make_index_fixtures.py) reads back as the fixture says it
 * should, and is byte for byte what ear_index_write makes of the same items: the Python
 * writer and the C one implement one format. */
#include "index/index.h"
#include "test.h"

#define FIXTURES "tests/fixtures/index/"

/* The fingerprint of nn_basic_f32.safetensors from the nn fixtures' list. */
static int model_fingerprint(char out[17])
{
    FILE *f = fopen("tests/fixtures/nn/nn_fingerprints.txt", "r");
    char name[256], hex[32];
    int found = 0;
    while (f && !found && fscanf(f, "%255s %31s", name, hex) == 2)
        if (strcmp(name, "nn_basic_f32.safetensors") == 0 && strlen(hex) == 16) {
            memcpy(out, hex, 17);
            found = 1;
        }
    if (f)
        fclose(f);
    return found ? 0 : -1;
}

int main(void)
{
    char fingerprint[17];
    EAR_CHECK(model_fingerprint(fingerprint) == 0);
    ear_error err = {{0}};
    ear_index *idx = ear_index_open(FIXTURES "seed.earindex", fingerprint, &err);
    EAR_CHECK_MSG(idx != NULL, "open: %s", err.message);
    int ndim = 0;
    size_t shape[4] = {0};
    float *expected = ear_npy_read_f32(FIXTURES "seed_expected.npy", &ndim, shape, &err);
    EAR_CHECK_MSG(expected && ndim == 2, "expected embeddings: %s", err.message);
    FILE *tsv = fopen(FIXTURES "seed_expected.tsv", "r");
    EAR_CHECK(tsv != NULL);
    if (!idx || !expected || !tsv)
        return ear_test_finish();
    EAR_CHECK(ear_index_verify(idx, &err) == 0);
    EAR_CHECK(ear_index_count(idx) == shape[0]);
    EAR_CHECK((size_t)ear_index_dim(idx) == shape[1]);
    EAR_CHECK(ear_index_rows(idx, EAR_INDEX_IMAGE) == 2);
    EAR_CHECK(ear_index_rows(idx, EAR_INDEX_AUDIO) == 3);

    enum { MAX_ITEMS = 16 };
    char lines[MAX_ITEMS][3][256];
    ear_index_entry entries[MAX_ITEMS] = {{0}};
    size_t n = 0;
    char line[256];
    while (n < MAX_ITEMS && fgets(line, sizeof line, tsv)) {
        line[strcspn(line, "\n")] = 0;
        char *field = line;
        for (int f = 0; f < 3; f++) {
            char *tab = strchr(field, '\t');
            if (tab)
                *tab = 0;
            snprintf(lines[n][f], sizeof lines[n][f], "%s", field);
            field = tab ? tab + 1 : field + strlen(field);
        }
        size_t item = n;
        EAR_CHECK_MSG(strcmp(ear_index_item_path(idx, item), lines[n][0]) == 0, "item %zu: %s",
                      item, ear_index_item_path(idx, item));
        ear_index_kind kind = strcmp(lines[n][1], "audio") == 0 ? EAR_INDEX_AUDIO
                                                                : EAR_INDEX_IMAGE;
        EAR_CHECK(ear_index_item_kind(idx, item) == (int)kind);
        EAR_CHECK(strcmp(ear_index_item_label(idx, item), lines[n][2]) == 0);
        float got[64];
        EAR_CHECK(ear_index_item_embedding(idx, item, got, &err) == 0);
        float worst = 0;
        for (size_t d = 0; d < shape[1] && d < 64; d++)
            worst = fmaxf(worst, fabsf(got[d] - expected[item * shape[1] + d]));
        EAR_CHECK_MSG(worst < 1e-6f, "item %zu embedding differs by %g", item, worst);
        entries[n] = (ear_index_entry){.kind = kind,
                                       .path = lines[n][0],
                                       .label = lines[n][2],
                                       .embedding = &expected[item * shape[1]]};
        n++;
    }
    EAR_CHECK(n == shape[0]);

    /* The same items written by C, given in another order: the same bytes. */
    ear_index_entry swapped = entries[0];
    entries[0] = entries[n - 1];
    entries[n - 1] = swapped;
    char path[512];
    ear_test_tmp_path(path, sizeof path, "import-twin.earindex");
    EAR_CHECK(ear_index_write(path, fingerprint, (int)shape[1], EAR_INDEX_F32, entries, n,
                              &err) == 0);
    size_t size_c = 0, size_py = 0;
    uint8_t *c_bytes = ear_file_read(path, 1 << 20, &size_c, &err);
    uint8_t *py_bytes = ear_file_read(FIXTURES "seed.earindex", 1 << 20, &size_py, &err);
    EAR_CHECK_MSG(c_bytes && py_bytes && size_c == size_py &&
                      memcmp(c_bytes, py_bytes, size_c) == 0,
                  "the C writer and tools/import_index.py differ (%zu and %zu bytes)", size_c,
                  size_py);
    free(c_bytes);
    free(py_bytes);
    fclose(tsv);
    free(expected);
    ear_index_close(idx);
    return ear_test_finish();
}
