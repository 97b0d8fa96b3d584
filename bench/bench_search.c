/* bench_search: how long one exact top-k search takes over N items at D = 512,
 * on one thread, with the embeddings stored as F32 and as F16, and how many of
 * F32's top 10 F16 finds (recall@10). Synthetic unit vectors; each index is
 * written with ear_index_write and mapped as the service maps it.
 *
 *   bench_search [--sizes 1000,100000,1000000] [--queries 51] [--dir FOLDER]
 *
 * Prints one line per size and type: median and 90th percentile of the
 * queries (after one warm-up query that faults the pages in). Needs about
 * 4 GB of memory and 3 GB of disk for N = 1,000,000. `make` builds it as build/bench_search. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/index.h"

#define DIM 512
#define TOP 10

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

/* Roughly normal: the sum of four uniforms, enough to spread unit vectors. */
static float next_gaussian(void)
{
    float sum = 0;
    for (int i = 0; i < 4; i++) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        sum += (float)(rng_state >> 40) / 16777216.0f - 0.5f;
    }
    return sum;
}

static void random_unit(float *v)
{
    double norm = 0;
    for (int d = 0; d < DIM; d++) {
        v[d] = next_gaussian();
        norm += (double)v[d] * v[d];
    }
    float scale = (float)(1.0 / sqrt(norm));
    for (int d = 0; d < DIM; d++)
        v[d] *= scale;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Times `queries` searches (after a warm-up); fills hits[q][TOP]. */
static int time_searches(const ear_index *idx, const float *query_vectors, int queries,
                         ear_index_hit *hits, double *median, double *p90)
{
    double *times = malloc((size_t)queries * sizeof *times);
    ear_error err;
    int found;
    if (!times)
        return -1;
    if (ear_index_search(idx, EAR_INDEX_ALL, query_vectors, TOP, hits, &found, &err) != 0) {
        fprintf(stderr, "bench_search: %s\n", err.message);
        free(times);
        return -1;
    }
    for (int q = 0; q < queries; q++) {
        double start = ear_now_ms();
        ear_index_search(idx, EAR_INDEX_ALL, query_vectors + (size_t)q * DIM, TOP,
                         hits + (size_t)q * TOP, &found, &err);
        times[q] = ear_now_ms() - start;
    }
    qsort(times, (size_t)queries, sizeof *times, compare_double);
    *median = times[queries / 2];
    *p90 = times[(queries * 9) / 10];
    free(times);
    return 0;
}

static int run_size(size_t count, int queries, const char *dir)
{
    float *vectors = malloc(count * DIM * sizeof *vectors);
    float *query_vectors = malloc((size_t)queries * DIM * sizeof *query_vectors);
    ear_index_entry *entries = calloc(count, sizeof *entries);
    char (*ids)[32] = calloc(count, sizeof *ids);
    ear_index_hit *hits[2] = {calloc((size_t)queries * TOP, sizeof(ear_index_hit)),
                              calloc((size_t)queries * TOP, sizeof(ear_index_hit))};
    int rc = -1;
    char path[4096];
    if (!vectors || !query_vectors || !entries || !ids || !hits[0] || !hits[1]) {
        fprintf(stderr, "bench_search: out of memory for %zu items\n", count);
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        random_unit(vectors + i * DIM);
        snprintf(ids[i], sizeof ids[i], "frames/%09zu.jpg", i);
        entries[i] = (ear_index_entry){.kind = EAR_INDEX_IMAGE, .path = ids[i],
                                       .embedding = vectors + i * DIM};
    }
    for (int q = 0; q < queries; q++)
        random_unit(query_vectors + (size_t)q * DIM);

    static const ear_index_dtype types[2] = {EAR_INDEX_F32, EAR_INDEX_F16};
    for (int t = 0; t < 2; t++) {
        ear_error err;
        snprintf(path, sizeof path, "%s/bench-search-%d.earindex", dir, (int)getpid());
        if (ear_index_write(path, "0000000000000000", DIM, types[t], entries, count, &err) != 0) {
            fprintf(stderr, "bench_search: %s\n", err.message);
            goto done;
        }
        ear_index *idx = ear_index_open(path, NULL, &err);
        unlink(path); /* the mapping keeps it readable; nothing is left behind */
        if (!idx) {
            fprintf(stderr, "bench_search: %s\n", err.message);
            goto done;
        }
        double median, p90;
        int timed = time_searches(idx, query_vectors, queries, hits[t], &median, &p90);
        ear_index_close(idx);
        if (timed != 0)
            goto done;
        printf("N=%-8zu D=%d %s  top-%d exact: median %8.3f ms  p90 %8.3f ms  (%.1f GB/s)", count,
               DIM, t ? "f16" : "f32", TOP, median, p90,
               (double)count * DIM * (t ? 2 : 4) / (median * 1e6));
        if (t == 1) {
            size_t kept = 0;
            for (int q = 0; q < queries; q++)
                for (int a = 0; a < TOP; a++)
                    for (int b = 0; b < TOP; b++)
                        kept += hits[1][q * TOP + a].item == hits[0][q * TOP + b].item;
            printf("  recall@%d vs f32: %.4f", TOP, (double)kept / ((double)queries * TOP));
        }
        printf("\n");
        fflush(stdout);
    }
    rc = 0;
done:
    free(vectors);
    free(query_vectors);
    free(entries);
    free(ids);
    free(hits[0]);
    free(hits[1]);
    return rc;
}

int main(int argc, char **argv)
{
    const char *sizes = "1000,100000,1000000", *dir = getenv("TMPDIR");
    int queries = 51;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc)
            sizes = argv[++i];
        else if (strcmp(argv[i], "--queries") == 0 && i + 1 < argc)
            queries = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: bench_search [--sizes N,N,...] [--queries Q] [--dir FOLDER]\n");
            return 2;
        }
    }
    if (queries < 1)
        queries = 1;
    if (!dir || !*dir)
        dir = "/tmp";
    openblas_set_num_threads(1); /* one thread: the figure a single search costs */
    printf("exact top-%d search, one thread, %d queries per line (D=%d, unit vectors)\n", TOP,
           queries, DIM);
    for (const char *p = sizes; *p;) {
        char *end;
        unsigned long long n = strtoull(p, &end, 10);
        if (end == p || n == 0) {
            fprintf(stderr, "bench_search: bad --sizes '%s'\n", sizes);
            return 2;
        }
        if (run_size((size_t)n, queries, dir) != 0)
            return 1;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}
