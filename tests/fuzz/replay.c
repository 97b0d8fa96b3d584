/* Replays inputs through a fuzz target without libFuzzer: `fuzz_replay_T
 * FILE_OR_DIR...` runs LLVMFuzzerTestOneInput on each file, so the corpus and
 * every crash kept in regressions/ run in every ctest build (plain, ASan,
 * valgrind). A crash or sanitizer report fails the test; the count is printed. */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "fuzz.h"

static int run_file(const char *path)
{
    ear_error err = {{0}};
    size_t size;
    uint8_t *data = ear_file_read(path, (size_t)64 << 20, &size, &err);
    if (!data) {
        fprintf(stderr, "replay: %s\n", err.message);
        return -1;
    }
    /* An exact-size copy, so that ASan sees a read past the end. */
    uint8_t *exact = malloc(size ? size : 1);
    if (!exact) {
        free(data);
        return -1;
    }
    memcpy(exact, data, size);
    free(data);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    return 0;
}

int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    int files = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: no such file or folder\n", argv[i]);
            failed++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            failed += run_file(argv[i]) != 0;
            files++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, alphasort);
        if (n < 0) {
            failed++;
            continue;
        }
        for (int j = 0; j < n; j++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name);
            if (names[j]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                printf("replay %s\n", path);
                fflush(stdout);
                failed += run_file(path) != 0;
                files++;
            }
            free(names[j]);
        }
        free(names);
    }
    printf("%d inputs replayed, %d unreadable\n", files, failed);
    return failed ? 1 : 0;
}
