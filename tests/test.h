/* A minimal test harness: checks count, failures print where and why, and the
 * program ends with the line "N passed, N failed" and a non-zero status on failure. */
#ifndef EAR_TEST_H
#define EAR_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ear_test_passed, ear_test_failed;

#define EAR_CHECK(cond) EAR_CHECK_MSG(cond, "%s", #cond)

#define EAR_CHECK_MSG(cond, ...)                                            \
    do {                                                                    \
        if (cond) {                                                         \
            ear_test_passed++;                                              \
        } else {                                                            \
            ear_test_failed++;                                              \
            fprintf(stderr, "%s:%d: check failed: ", __FILE__, __LINE__);   \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
        }                                                                   \
    } while (0)

/* Prints the closing line; returns the process exit status. */
static inline int ear_test_finish(void)
{
    printf("%d passed, %d failed\n", ear_test_passed, ear_test_failed);
    return ear_test_failed ? 1 : 0;
}

/* An environment variable the test needs, or a fallback. */
static inline const char *ear_test_env(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* A path under EAR_TEST_TMP, in a static buffer per call site's copy. */
static inline void ear_test_tmp_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", ear_test_env("EAR_TEST_TMP", "/tmp"), name);
}

#endif
