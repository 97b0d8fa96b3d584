/* .npy writing and reading, and atomic writes that leave nothing behind. */
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "test.h"

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int main(void)
{
    char dir[512], path[600];
    ear_test_tmp_path(dir, sizeof dir, "core_npy");
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/a.npy", dir);
    unlink(path);

    float data[6] = {1, 2, 3, 4, 5, -6.5f};
    size_t shape[2] = {2, 3};
    ear_error err;
    EAR_CHECK(ear_npy_write_f32(path, data, 2, shape, &err) == 0);

    /* The header is NumPy's: magic, version 1.0, a dict, padded to 64 bytes. */
    size_t size = 0;
    uint8_t *raw = ear_file_read(path, 1 << 20, &size, &err);
    EAR_CHECK(raw != NULL);
    if (raw) {
        EAR_CHECK(memcmp(raw, "\x93NUMPY\x01\x00", 8) == 0);
        size_t hlen = raw[8] | (raw[9] << 8);
        EAR_CHECK((10 + hlen) % 64 == 0);
        EAR_CHECK(size == 10 + hlen + sizeof data);
        EAR_CHECK(strstr((char *)raw + 10, "'shape': (2, 3)") != NULL);
        free(raw);
    }

    int ndim = 0;
    size_t got[4];
    float *back = ear_npy_read_f32(path, &ndim, got, &err);
    EAR_CHECK(back != NULL && ndim == 2 && got[0] == 2 && got[1] == 3);
    if (back) {
        EAR_CHECK(memcmp(back, data, sizeof data) == 0);
        free(back);
    }

    /* 1-D arrays are written as NumPy writes them: (N,). */
    size_t shape1[1] = {6};
    EAR_CHECK(ear_npy_write_f32(path, data, 1, shape1, &err) == 0);
    raw = ear_file_read(path, 1 << 20, &size, &err);
    EAR_CHECK(raw && strstr((char *)raw + 10, "'shape': (6,)") != NULL);
    free(raw);

    /* A write into a missing folder fails with a message and leaves nothing. */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/missing/b.npy", dir);
    EAR_CHECK(ear_npy_write_f32(bad, data, 1, shape1, &err) != 0);
    EAR_CHECK(strstr(err.message, "missing/b.npy") != NULL);
    EAR_CHECK(count_entries(dir) == 1);

    /* Reading refuses what is not a float32 .npy. */
    EAR_CHECK(ear_npy_read_f32(dir, &ndim, got, &err) == NULL);
    char text[700];
    snprintf(text, sizeof text, "%s/t.npy", dir);
    EAR_CHECK(ear_file_write_atomic(text, "hello", 5, &err) == 0);
    EAR_CHECK(ear_npy_read_f32(text, &ndim, got, &err) == NULL);
    EAR_CHECK(strstr(err.message, "not a version 1 .npy") != NULL);
    unlink(text);
    unlink(path);
    return ear_test_finish();
}
