/* Exact top-k: the search gives what sorting every score gives, ties broken by
 * path, for each kind and both together, both element types and every k. */
#include <stdint.h>

#include "index/index.h"
#include "test.h"

#define FINGERPRINT "00000000deadbeef"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

typedef struct reference_hit {
    size_t item;
    double score;
} reference_hit;

static int reference_order(const void *a, const void *b)
{
    const reference_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

typedef struct dataset {
    size_t count;
    int dim;
    char (*ids)[24];
    float *vectors;  /* [count][dim] */
    int *kinds;
    ear_index_entry *entries;
} dataset;

/* Items "x/id00000", ... each of a random kind. With coarse values (multiples
 * of 1/4 in [-1, 1], dim <= 64) every dot product is exact in float whatever
 * the summation order, and equal scores are common: the search must then match
 * the reference to the bit. */
static void make_dataset(dataset *ds, size_t count, int dim, int coarse)
{
    ds->count = count;
    ds->dim = dim;
    ds->ids = calloc(count, sizeof *ds->ids);
    ds->vectors = calloc(count * (size_t)dim, sizeof(float));
    ds->kinds = calloc(count, sizeof(int));
    ds->entries = calloc(count, sizeof *ds->entries);
    for (size_t i = 0; i < count; i++) {
        /* Written in reverse order: the writer must sort. */
        size_t slot = count - 1 - i;
        snprintf(ds->ids[i], sizeof ds->ids[i], "x/id%05zu", i);
        ds->kinds[i] = next_random() % 3 == 0 ? EAR_INDEX_AUDIO : EAR_INDEX_IMAGE;
        for (int d = 0; d < dim; d++) {
            float *f = &ds->vectors[i * (size_t)dim + d];
            if (coarse)
                *f = (float)((int)(next_random() % 9) - 4) / 4.0f;
            else
                *f = (float)next_random() / 4294967296.0f * 2.0f - 0.5f;
        }
        ds->entries[slot] = (ear_index_entry){.kind = (ear_index_kind)ds->kinds[i],
                                              .path = ds->ids[i],
                                              .embedding = &ds->vectors[i * (size_t)dim]};
    }
    if (coarse && count > 20) {
        /* Exact duplicates far apart in path order: equal scores for every query. */
        memcpy(&ds->vectors[(count - 3) * (size_t)dim], &ds->vectors[5 * (size_t)dim],
               (size_t)dim * sizeof(float));
        memcpy(&ds->vectors[(count - 2) * (size_t)dim], &ds->vectors[7 * (size_t)dim],
               (size_t)dim * sizeof(float));
    }
}

static void free_dataset(dataset *ds)
{
    free(ds->ids);
    free(ds->vectors);
    free(ds->kinds);
    free(ds->entries);
}

/* Every score in double, sorted: the answer by brute force. */
static size_t reference_search(const dataset *ds, unsigned kinds, const float *query,
                               reference_hit *out)
{
    size_t n = 0;
    for (size_t i = 0; i < ds->count; i++) {
        if (!(kinds & EAR_INDEX_MASK(ds->kinds[i])))
            continue;
        const float *row = ds->vectors + i * (size_t)ds->dim;
        double sum = 0;
        for (int d = 0; d < ds->dim; d++)
            sum += (double)row[d] * query[d];
        out[n++] = (reference_hit){.item = i, .score = sum};
    }
    qsort(out, n, sizeof *out, reference_order);
    return n;
}

static void make_query(const dataset *ds, float *query, int coarse)
{
    for (int d = 0; d < ds->dim; d++)
        query[d] = coarse ? (float)((int)(next_random() % 5) - 2) / 2.0f
                          : (float)next_random() / 4294967296.0f - 0.5f;
}

static void check_searches(size_t count, int dim, int coarse, ear_index_dtype dtype,
                           const char *name)
{
    dataset ds;
    make_dataset(&ds, count, dim, coarse);
    char path[512];
    ear_test_tmp_path(path, sizeof path, name);
    ear_error err = {{0}};
    EAR_CHECK_MSG(ear_index_write(path, FINGERPRINT, dim, dtype, ds.entries, count, &err) == 0,
                  "write: %s", err.message);
    ear_index *idx = ear_index_open(path, FINGERPRINT, &err);
    EAR_CHECK_MSG(idx != NULL, "open: %s", err.message);
    if (!idx) {
        free_dataset(&ds);
        return;
    }
    EAR_CHECK(ear_index_verify(idx, &err) == 0);
    /* Sorted by path, item numbers are the dataset's numbers: the reference's
     * (score, item) order is (score, path) order. */
    int ids_in_order = 1;
    for (size_t i = 0; i < count; i++)
        ids_in_order &= strcmp(ear_index_item_path(idx, i), ds.ids[i]) == 0;
    EAR_CHECK(ids_in_order);
    reference_hit *reference = calloc(count, sizeof *reference);
    ear_index_hit *hits = calloc(count + 10, sizeof *hits);
    float *query = calloc((size_t)dim, sizeof *query);
    const int ks[] = {1, 2, 5, 10, 50, (int)count / 2, (int)count, (int)count + 10};
    /* F16 rounds the stored values: compare scores with room for it, order exactly
     * only where the data is exact. */
    double tolerance = coarse ? 0.0 : (dtype == EAR_INDEX_F16 ? 2e-2 : 1e-4);
    for (int query_number = 0; query_number < 6; query_number++) {
        make_query(&ds, query, coarse);
        if (coarse && query_number == 0)
            memset(query, 0, (size_t)dim * sizeof *query); /* every score 0: all ties */
        for (int kind = 0; kind < 3; kind++) {
            unsigned against = kind < 2 ? EAR_INDEX_MASK(kind) : EAR_INDEX_ALL;
            size_t rows = reference_search(&ds, against, query, reference);
            EAR_CHECK(rows == (kind < 2 ? ear_index_rows(idx, (ear_index_kind)kind) : count));
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
                int k = ks[ki], found = -1;
                int rc = ear_index_search(idx, against, query, k, hits, &found, &err);
                EAR_CHECK_MSG(rc == 0, "search: %s", err.message);
                size_t want = (size_t)k < rows ? (size_t)k : rows;
                EAR_CHECK_MSG((size_t)found == want, "k %d: found %d, want %zu", k, found, want);
                int bad = 0;
                for (int r = 0; r < found && !bad; r++) {
                    if (coarse) {
                        bad = hits[r].item != reference[r].item ||
                              hits[r].score != (float)reference[r].score;
                    } else {
                        /* The r-th best score matches; the item has that score too. */
                        double own = 0;
                        for (size_t j = 0; j < rows; j++)
                            if (reference[j].item == hits[r].item)
                                own = reference[j].score;
                        bad = fabs(hits[r].score - reference[r].score) > tolerance ||
                              fabs(own - reference[r].score) > 2 * tolerance;
                    }
                    if (r > 0 && (hits[r].score > hits[r - 1].score ||
                                  (hits[r].score == hits[r - 1].score &&
                                   hits[r].item < hits[r - 1].item)))
                        bad = 1;
                    if (bad)
                        EAR_CHECK_MSG(0, "%s kind %d k %d rank %d: item %zu score %g, reference "
                                         "item %zu score %g",
                                      name, kind, k, r, hits[r].item, hits[r].score,
                                      reference[r].item, reference[r].score);
                }
                if (!bad)
                    EAR_CHECK(1);
            }
        }
    }
    int found = 0;
    EAR_CHECK(ear_index_search(idx, EAR_INDEX_ALL, query, 0, hits, &found, &err) == -1 &&
              strstr(err.message, "k must be"));
    EAR_CHECK(ear_index_search(idx, 0, query, 3, hits, &found, &err) == -1 &&
              strstr(err.message, "kinds"));
    EAR_CHECK(ear_index_search(idx, 4, query, 3, hits, &found, &err) == -1 &&
              strstr(err.message, "kinds"));
    query[0] = NAN;
    EAR_CHECK(ear_index_search(idx, EAR_INDEX_MASK(EAR_INDEX_AUDIO), query, 3, hits, &found,
                               &err) == -1 &&
              strstr(err.message, "not finite"));
    free(query);
    free(hits);
    free(reference);
    ear_index_close(idx);
    free_dataset(&ds);
}

/* An index with no sounds says so when searched for sounds. */
static void check_missing_kind(void)
{
    float v[4] = {1, 0, 0, 0};
    ear_index_entry e = {.kind = EAR_INDEX_IMAGE, .path = "frames/only.jpg", .embedding = v};
    char path[512];
    ear_test_tmp_path(path, sizeof path, "frames-only.earindex");
    ear_error err;
    EAR_CHECK(ear_index_write(path, FINGERPRINT, 4, EAR_INDEX_F32, &e, 1, &err) == 0);
    ear_index *idx = ear_index_open(path, NULL, &err);
    EAR_CHECK(idx != NULL);
    if (!idx)
        return;
    ear_index_hit hits[2];
    int found = -1;
    EAR_CHECK(ear_index_search(idx, EAR_INDEX_MASK(EAR_INDEX_AUDIO), v, 2, hits, &found,
                               &err) == -1 &&
              strstr(err.message, "no audio items") && found == 0);
    EAR_CHECK(ear_index_search(idx, EAR_INDEX_MASK(EAR_INDEX_IMAGE), v, 2, hits, &found,
                               &err) == 0 &&
              found == 1 && hits[0].item == 0 && hits[0].score == 1.0f);
    EAR_CHECK(ear_index_search(idx, EAR_INDEX_ALL, v, 2, hits, &found, &err) == 0 &&
              found == 1);
    ear_index_close(idx);
}

int main(void)
{
    /* Row counts around the search's block of 1024 rows and odd dimensions
     * exercise every tail. */
    check_searches(300, 24, 1, EAR_INDEX_F32, "coarse32.earindex");
    check_searches(300, 24, 1, EAR_INDEX_F16, "coarse16.earindex");
    check_searches(2500, 37, 1, EAR_INDEX_F32, "coarse-blocks.earindex");
    check_searches(2100, 64, 1, EAR_INDEX_F16, "coarse-blocks16.earindex");
    check_searches(1500, 40, 0, EAR_INDEX_F32, "random32.earindex");
    check_searches(1500, 33, 0, EAR_INDEX_F16, "random16.earindex");
    check_missing_kind();
    return ear_test_finish();
}
