/* The index reader on arbitrary bytes: the header and section bounds checked
 * at open, the full table check (ear_index_verify) and, for a file that
 * passes both, everything the service reads from it: strings, embeddings, a
 * search against both kinds of items. */
#include <string.h>

#include "fuzz.h"
#include "index/index.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    devnull = fopen("/dev/null", "w");
    EAR_FUZZ_REQUIRE(devnull, "cannot open /dev/null");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = ear_fuzz_memfd(data, size, path, sizeof path);
    EAR_FUZZ_REQUIRE(fd >= 0, "memfd_create failed");
    ear_error err = {{0}};
    ear_index *idx = ear_index_open(path, NULL, &err);
    if (!idx) {
        EAR_FUZZ_REQUIRE(err.message[0], "a refusal must say why");
        close(fd);
        return 0;
    }
    ear_index_describe(idx, devnull);
    if (ear_index_verify(idx, &err) != 0) {
        EAR_FUZZ_REQUIRE(err.message[0], "a refusal must say why");
        ear_index_close(idx);
        close(fd);
        return 0;
    }
    int dim = ear_index_dim(idx);
    size_t count = ear_index_count(idx);
    float *vector = calloc((size_t)(dim > 0 ? dim : 1), sizeof *vector);
    EAR_FUZZ_REQUIRE(vector, "out of memory");
    volatile size_t sink = 0;
    for (size_t i = 0; i < count && i < 4096; i++) {
        const char *texts[2] = {ear_index_item_path(idx, i), ear_index_item_label(idx, i)};
        EAR_FUZZ_REQUIRE(texts[0] && texts[1], "every item has a path and a label");
        for (int t = 0; t < 2; t++)
            sink += strlen(texts[t]);
        EAR_FUZZ_REQUIRE(ear_index_item_kind(idx, i) >= 0, "a verified item has a known kind");
        EAR_FUZZ_REQUIRE(ear_index_item_embedding(idx, i, vector, &err) == 0,
                         "a verified item's embedding can be read");
    }
    EAR_FUZZ_REQUIRE(ear_index_item_path(idx, count) == NULL, "item out of range gives NULL");
    for (int d = 0; d < dim; d++)
        vector[d] = (float)(d % 7) - 3.0f;
    ear_index_hit hits[50];
    for (unsigned kinds = 1; kinds <= EAR_INDEX_ALL; kinds++) {
        int found = -1;
        if (ear_index_search(idx, kinds, vector, 50, hits, &found, &err) == 0) {
            EAR_FUZZ_REQUIRE(found >= 0 && found <= 50, "found within k");
            for (int h = 0; h < found; h++)
                EAR_FUZZ_REQUIRE(hits[h].item < count, "a hit is an item of the index");
        }
    }
    (void)sink;
    free(vector);
    ear_index_close(idx);
    close(fd);
    return 0;
}
