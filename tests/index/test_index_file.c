/* The index file: what is written is what is read back, typed items in path
 * order, in both element types; damaged, foreign, older-format or other-model
 * files are refused with a message that says so; a failed write leaves the old
 * file as it was. */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/format.h"
#include "index/index.h"
#include "test.h"

#define DIM 12
#define FINGERPRINT "0123456789abcdef"

static float vectors[4][DIM];

/* Four items given out of order: an image with no label (the path is), a
 * nested sound labelled by its folder, a sound with spaces and UTF-8 in its
 * path and label, an image whose label equals its path. */
static void make_entries(ear_index_entry e[4])
{
    for (int i = 0; i < 4; i++)
        for (int d = 0; d < DIM; d++)
            vectors[i][d] = i % 2 ? (float)(d - i) / 32.0f : (float)(i * DIM + d) / 64.0f - 0.5f;
    memset(e, 0, 4 * sizeof *e);
    e[0] = (ear_index_entry){.kind = EAR_INDEX_IMAGE, .path = "frames/b.jpg",
                             .embedding = vectors[0]};
    e[1] = (ear_index_entry){.kind = EAR_INDEX_AUDIO, .path = "audio/violin/deep/a.wav",
                             .label = "violin", .embedding = vectors[1]};
    e[2] = (ear_index_entry){.kind = EAR_INDEX_AUDIO, .path = "audio/c d \xc3\xa9.ogg",
                             .label = "label \xe2\x9c\x93", .embedding = vectors[2]};
    e[3] = (ear_index_entry){.kind = EAR_INDEX_IMAGE, .path = "frames/a.b.jpg",
                             .label = "frames/a.b.jpg", .embedding = vectors[3]};
}

static void check_roundtrip(ear_index_dtype dtype)
{
    char path[512];
    ear_test_tmp_path(path, sizeof path, dtype == EAR_INDEX_F16 ? "roundtrip16.earindex"
                                                               : "roundtrip32.earindex");
    ear_index_entry e[4];
    make_entries(e);
    ear_error err = {{0}};
    EAR_CHECK_MSG(ear_index_write(path, FINGERPRINT, DIM, dtype, e, 4, &err) == 0, "write: %s",
                  err.message);
    ear_index *idx = ear_index_open(path, FINGERPRINT, &err);
    EAR_CHECK_MSG(idx != NULL, "open: %s", err.message);
    if (!idx)
        return;
    EAR_CHECK(ear_index_verify(idx, &err) == 0);
    EAR_CHECK(ear_index_count(idx) == 4);
    EAR_CHECK(ear_index_dim(idx) == DIM);
    EAR_CHECK(ear_index_element_type(idx) == dtype);
    EAR_CHECK(strcmp(ear_index_model_fingerprint(idx), FINGERPRINT) == 0);
    EAR_CHECK(ear_index_rows(idx, EAR_INDEX_IMAGE) == 2);
    EAR_CHECK(ear_index_rows(idx, EAR_INDEX_AUDIO) == 2);
    struct stat st;
    EAR_CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size == ear_index_file_size(idx));

    /* Bytewise path order: "audio/c d é.ogg" < "audio/violin/…" < "frames/a.b.jpg" < "frames/b.jpg". */
    const ear_index_entry *expected[4] = {&e[2], &e[1], &e[3], &e[0]};
    for (size_t i = 0; i < 4; i++) {
        const ear_index_entry *x = expected[i];
        EAR_CHECK_MSG(strcmp(ear_index_item_path(idx, i), x->path) == 0, "item %zu path %s", i,
                      ear_index_item_path(idx, i));
        EAR_CHECK(strcmp(ear_index_item_label(idx, i), x->label ? x->label : x->path) == 0);
        EAR_CHECK(ear_index_item_kind(idx, i) == (int)x->kind);
        EAR_CHECK(ear_index_find_path(idx, x->path) == (long long)i);
        float got[DIM];
        EAR_CHECK(ear_index_item_embedding(idx, i, got, &err) == 0);
        float worst = 0;
        for (int d = 0; d < DIM; d++)
            worst = fmaxf(worst, fabsf(got[d] - x->embedding[d]));
        /* F16 keeps 11 significant bits: values under 1 within 2^-11. */
        EAR_CHECK_MSG(worst <= (dtype == EAR_INDEX_F16 ? 1.0f / 2048 : 0.0f),
                      "item %zu differs by %g", i, worst);
    }
    EAR_CHECK(ear_index_find_path(idx, "frames/c.jpg") == -1);
    EAR_CHECK(ear_index_find_prefix(idx, "frames/a.") == 2);
    EAR_CHECK(ear_index_find_prefix(idx, "frames/z") == -1);
    EAR_CHECK(ear_index_item_path(idx, 4) == NULL);
    EAR_CHECK(ear_index_item_kind(idx, 4) == -1);
    EAR_CHECK(ear_index_item_embedding(idx, 4, vectors[0], &err) == -1);
    ear_index_close(idx);
}

/* Writes a copy of src with bytes patched at offset (and the header checksum
 * recomputed when fix_checksum), or cut to size when cut > 0. */
static void write_variant(const char *src, const char *dst, size_t offset, const void *bytes,
                          size_t n, int fix_checksum, size_t cut)
{
    size_t size;
    ear_error err;
    uint8_t *data = ear_file_read(src, (size_t)1 << 30, &size, &err);
    if (!data)
        return;
    if (n)
        memcpy(data + offset, bytes, n);
    if (fix_checksum)
        ear_index_put_u64(data + EAR_INDEX_AT_CHECKSUM,
                          ear_index_fnv1a(data, EAR_INDEX_AT_CHECKSUM));
    FILE *f = fopen(dst, "wb");
    if (f) {
        fwrite(data, 1, cut ? cut : size, f);
        fclose(f);
    }
    free(data);
}

static void check_refused(const char *path, const char *fingerprint, const char *words,
                          const char *what)
{
    ear_error err = {{0}};
    ear_index *idx = ear_index_open(path, fingerprint, &err);
    EAR_CHECK_MSG(idx == NULL, "%s: opened", what);
    EAR_CHECK_MSG(strstr(err.message, words) != NULL, "%s: message '%s' lacks '%s'", what,
                  err.message, words);
    EAR_CHECK_MSG(strstr(err.message, path) != NULL, "%s: message '%s' lacks the path", what,
                  err.message);
    ear_index_close(idx);
}

static void check_refusals(void)
{
    char good[512], bad[512];
    ear_test_tmp_path(good, sizeof good, "refusals.earindex");
    ear_test_tmp_path(bad, sizeof bad, "refusals-bad.earindex");
    ear_index_entry e[4];
    make_entries(e);
    ear_error err;
    EAR_CHECK(ear_index_write(good, FINGERPRINT, DIM, EAR_INDEX_F32, e, 4, &err) == 0);

    check_refused(good, "fedcba9876543210", "built by another model", "other model");
    write_variant(good, bad, 0, "EARINDEY", 8, 0, 0);
    check_refused(bad, NULL, "not an Ear index", "wrong magic");
    write_variant(good, bad, 0, NULL, 0, 0, 5);
    check_refused(bad, NULL, "not an Ear index", "five bytes");
    write_variant(good, bad, 0, NULL, 0, 0, 100);
    check_refused(bad, NULL, "truncated", "cut in the header");
    write_variant(good, bad, 0, NULL, 0, 0, 600);
    check_refused(bad, NULL, "truncated", "cut in the tables");
    uint32_t version = 7;
    write_variant(good, bad, EAR_INDEX_AT_VERSION, &version, 4, 0, 0);
    check_refused(bad, NULL, "version 7", "wrong version");
    /* An index of the first format (frames and sounds paired by id): rebuild it. */
    version = 1;
    write_variant(good, bad, EAR_INDEX_AT_VERSION, &version, 4, 0, 0);
    check_refused(bad, NULL, "format version 1", "the first format");
    check_refused(bad, NULL, "rebuild it with `ear index`", "the first format, what to do");
    uint8_t flipped = 'X';
    write_variant(good, bad, EAR_INDEX_AT_FINGERPRINT + 3, &flipped, 1, 0, 0);
    check_refused(bad, NULL, "checksum", "flipped header byte");
    uint64_t far = (uint64_t)1 << 40;
    write_variant(good, bad, EAR_INDEX_AT_IMAGES, &far, 8, 1, 0);
    check_refused(bad, NULL, "image matrix", "images outside the file");
    uint64_t misaligned = 300;
    write_variant(good, bad, EAR_INDEX_AT_AUDIOS, &misaligned, 8, 1, 0);
    check_refused(bad, NULL, "misaligned", "sounds misaligned");
    uint64_t rows = 1;
    write_variant(good, bad, EAR_INDEX_AT_AUDIO_ROWS, &rows, 8, 1, 0);
    check_refused(bad, NULL, "rows for", "rows that do not add up to the items");
    write_variant(good, bad, EAR_INDEX_AT_STRINGS_SIZE, &far, 8, 1, 0);
    check_refused(bad, NULL, "strings", "strings outside the file");
    uint32_t dtype = 9;
    write_variant(good, bad, EAR_INDEX_AT_DTYPE, &dtype, 4, 1, 0);
    check_refused(bad, NULL, "element type", "unknown element type");

    /* Damage the header cannot see: verify finds it, accessors stay safe. */
    uint64_t wild = 1u << 30;
    write_variant(good, bad, EAR_INDEX_HEADER_SIZE + EAR_INDEX_ITEM_LABEL, &wild, 8, 0, 0);
    ear_index *idx = ear_index_open(bad, NULL, &err);
    EAR_CHECK_MSG(idx != NULL, "open: %s", err.message);
    if (idx) {
        EAR_CHECK(strcmp(ear_index_item_label(idx, 0), "") == 0);
        EAR_CHECK(ear_index_verify(idx, &err) == -1 && strstr(err.message, "label"));
        ear_index_close(idx);
    }
    uint32_t kind = 5;
    write_variant(good, bad, EAR_INDEX_HEADER_SIZE + EAR_INDEX_ITEM_KIND, &kind, 4, 0, 0);
    idx = ear_index_open(bad, NULL, &err);
    EAR_CHECK_MSG(idx != NULL, "open: %s", err.message);
    if (idx) {
        EAR_CHECK(ear_index_item_kind(idx, 0) == -1);
        EAR_CHECK(ear_index_verify(idx, &err) == -1 && strstr(err.message, "unknown kind"));
        ear_index_close(idx);
    }
    /* Two items' paths swapped in the table: paths out of order. */
    uint8_t first[8], second[8];
    size_t size;
    uint8_t *data = ear_file_read(good, 1 << 20, &size, &err);
    if (data) {
        memcpy(first, data + EAR_INDEX_HEADER_SIZE, sizeof first);
        memcpy(second, data + EAR_INDEX_HEADER_SIZE + EAR_INDEX_ITEM_SIZE, sizeof second);
        free(data);
        write_variant(good, bad, EAR_INDEX_HEADER_SIZE, second, sizeof second, 0, 0);
        write_variant(bad, bad, EAR_INDEX_HEADER_SIZE + EAR_INDEX_ITEM_SIZE, first,
                      sizeof first, 0, 0);
        idx = ear_index_open(bad, NULL, &err);
        EAR_CHECK_MSG(idx && ear_index_verify(idx, &err) == -1 && strstr(err.message, "not sorted"),
                      "swapped items: %s", err.message);
        ear_index_close(idx);
    }
    check_refused(ear_test_env("EAR_TEST_TMP", "/tmp"), NULL, "not a regular file", "a folder");
    char missing[512];
    ear_test_tmp_path(missing, sizeof missing, "no-such.earindex");
    check_refused(missing, NULL, "No such file", "missing");
}

/* Names of temporaries of path's basename left in its folder. */
static int count_temporaries(const char *dir, const char *base)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, ".%s.tmp.", base);
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *entry;
    while (d && (entry = readdir(d)) != NULL)
        n += strncmp(entry->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

static void check_failed_writes(void)
{
    char dir[512], path[600];
    ear_test_tmp_path(dir, sizeof dir, "failed-writes");
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/old.earindex", dir);
    ear_index_entry e[4];
    make_entries(e);
    ear_error err = {{0}};
    EAR_CHECK(ear_index_write(path, FINGERPRINT, DIM, EAR_INDEX_F32, e, 2, &err) == 0);

    /* A file size limit makes the write itself fail part-way (EFBIG), as a full
     * disk would, and works when the tests run as root. */
    struct rlimit saved;
    getrlimit(RLIMIT_FSIZE, &saved);
    struct rlimit small = saved;
    small.rlim_cur = 400;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    EAR_CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    int rc = ear_index_write(path, FINGERPRINT, DIM, EAR_INDEX_F32, e, 4, &err);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, old_handler);
    EAR_CHECK_MSG(rc == -1 && strstr(err.message, "too large"), "write over the limit: %d %s",
                  rc, err.message);
    EAR_CHECK(count_temporaries(dir, "old.earindex") == 0);
    ear_index *idx = ear_index_open(path, FINGERPRINT, &err);
    EAR_CHECK_MSG(idx && ear_index_count(idx) == 2, "old index after a failed write");
    ear_index_close(idx);

    /* Invalid input fails before any file is made. */
    ear_index_entry twice[2] = {e[0], e[0]};
    EAR_CHECK(ear_index_write(path, FINGERPRINT, DIM, EAR_INDEX_F32, twice, 2, &err) == -1 &&
              strstr(err.message, "two items have the path 'frames/b.jpg'"));
    float nan_vector[DIM] = {0};
    nan_vector[3] = NAN;
    ear_index_entry broken = {.kind = EAR_INDEX_IMAGE, .path = "x", .embedding = nan_vector};
    EAR_CHECK(ear_index_write(path, FINGERPRINT, DIM, EAR_INDEX_F32, &broken, 1, &err) == -1 &&
              strstr(err.message, "not finite"));
    ear_index_entry no_kind = {.kind = (ear_index_kind)7, .path = "x", .embedding = vectors[0]};
    EAR_CHECK(ear_index_write(path, FINGERPRINT, DIM, EAR_INDEX_F32, &no_kind, 1, &err) == -1 &&
              strstr(err.message, "unknown kind"));
    ear_index_entry no_path = {.kind = EAR_INDEX_IMAGE, .path = "", .embedding = vectors[0]};
    EAR_CHECK(ear_index_write(path, FINGERPRINT, DIM, EAR_INDEX_F32, &no_path, 1, &err) == -1 &&
              strstr(err.message, "no path"));
    EAR_CHECK(ear_index_write(path, "0123", DIM, EAR_INDEX_F32, e, 4, &err) == -1 &&
              strstr(err.message, "fingerprint"));
    char nowhere[600];
    snprintf(nowhere, sizeof nowhere, "%s/no-such-folder/x.earindex", dir);
    EAR_CHECK(ear_index_write(nowhere, FINGERPRINT, DIM, EAR_INDEX_F32, e, 4, &err) == -1 &&
              strstr(err.message, "No such file"));
    EAR_CHECK(count_temporaries(dir, "old.earindex") == 0);
    idx = ear_index_open(path, FINGERPRINT, &err);
    EAR_CHECK(idx && ear_index_count(idx) == 2);
    ear_index_close(idx);

    /* Stale temporaries: a dead writer's goes, a live one's and ours stay. */
    char stale[700], live[700], own[700];
    snprintf(stale, sizeof stale, "%s/.old.earindex.tmp.99999999", dir);
    snprintf(live, sizeof live, "%s/.old.earindex.tmp.1", dir);
    snprintf(own, sizeof own, "%s/.old.earindex.tmp.%ld", dir, (long)getpid());
    FILE *f;
    if ((f = fopen(stale, "w")))
        fclose(f);
    if ((f = fopen(live, "w")))
        fclose(f);
    if ((f = fopen(own, "w")))
        fclose(f);
    EAR_CHECK(ear_index_remove_stale_temporaries(path) == 1);
    EAR_CHECK(access(stale, F_OK) != 0);
    EAR_CHECK(access(live, F_OK) == 0);
    EAR_CHECK(access(own, F_OK) == 0);
    unlink(live);
    /* Our own pid's leftover is replaced by the next write, not left beside it. */
    EAR_CHECK(ear_index_write(path, FINGERPRINT, DIM, EAR_INDEX_F32, e, 3, &err) == 0);
    EAR_CHECK(count_temporaries(dir, "old.earindex") == 0);
}

int main(void)
{
    check_roundtrip(EAR_INDEX_F32);
    check_roundtrip(EAR_INDEX_F16);
    check_refusals();
    check_failed_writes();
    return ear_test_finish();
}
