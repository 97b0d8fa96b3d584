/* Shared by the nn tests: fixture paths and the contract's closeness check. */
#ifndef EAR_TEST_NN_CHECK_H
#define EAR_TEST_NN_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "test.h"

/* tests/fixtures/nn/<name> into out. */
static inline void nn_fixture(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/tests/fixtures/nn/%s", ear_test_env("EAR_SOURCE_DIR", "."), name);
}

/* A float32 .npy fixture with the given number of elements (NULL, and a failed check, if
 * it cannot be read or has another size). */
static inline float *nn_load_npy(const char *name, size_t expected_count)
{
    char path[1024];
    nn_fixture(path, sizeof path, name);
    ear_error err;
    int ndim = 0;
    size_t shape[4];
    float *data = ear_npy_read_f32(path, &ndim, shape, &err);
    EAR_CHECK_MSG(data != NULL, "%s: %s", name, data ? "" : err.message);
    if (!data)
        return NULL;
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= shape[i];
    EAR_CHECK_MSG(count == expected_count, "%s: %zu values, expected %zu", name, count,
                  expected_count);
    if (count != expected_count) {
        free(data);
        return NULL;
    }
    return data;
}

/* The contract: cosine >= 0.9999 and every |difference| <= 1e-4. */
static inline void nn_check_close(const char *what, const float *got, const float *expected,
                                  int count)
{
    double dot = 0, a = 0, b = 0, worst = 0;
    for (int i = 0; i < count; i++) {
        dot += (double)got[i] * expected[i];
        a += (double)got[i] * got[i];
        b += (double)expected[i] * expected[i];
        double d = fabs((double)got[i] - expected[i]);
        if (isnan(d))
            d = INFINITY;
        if (d > worst)
            worst = d;
    }
    double cosine = dot / (sqrt(a) * sqrt(b) + 1e-30);
    if (getenv("EAR_TEST_VERBOSE"))
        printf("%s: cosine %.9f, max |difference| %.3g\n", what, cosine, worst);
    EAR_CHECK_MSG(cosine >= 0.9999 && worst <= 1e-4, "%s: cosine %.7f, max |difference| %.3g",
                  what, cosine, worst);
}

#endif
