/* What the fuzz targets share: every target is a libFuzzer entry point
 * (LLVMFuzzerTestOneInput) that replay.c also drives from a plain main, so
 * that the inputs kept in corpus/ and regressions/ run in every ctest build. */
#ifndef EAR_FUZZ_H
#define EAR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A path naming an anonymous file that holds data: the model and index
 * readers take a path (they map the file), and a memfd costs no disk and
 * leaves nothing behind. -1 when the memfd cannot be made. */
static inline int ear_fuzz_memfd(const uint8_t *data, size_t size, char *path, size_t path_size)
{
    int fd = memfd_create("ear-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    snprintf(path, path_size, "/proc/self/fd/%d", fd);
    return fd;
}

/* A failure of the harness itself (not of the code under test): stop loudly. */
#define EAR_FUZZ_REQUIRE(cond, what)                                              \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "fuzz harness: %s (%s:%d)\n", what, __FILE__, __LINE__); \
            abort();                                                              \
        }                                                                         \
    } while (0)

#endif
