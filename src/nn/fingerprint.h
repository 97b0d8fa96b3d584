/* XXH64, the 64-bit xxHash: a fast, well-mixed hash of a model file's bytes, so that an
 * index can tell whether it was built by the same model. Private to src/nn. */
#ifndef EAR_NN_FINGERPRINT_H
#define EAR_NN_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ear_nn_xxh64 {
    uint64_t lanes[4];
    uint64_t total;
    uint64_t seed;
    uint8_t pending[32]; /* input not yet a whole 32-byte stripe */
    size_t pending_count;
} ear_nn_xxh64;

/* Starts a hash with the given seed (Ear's fingerprint uses 0). */
void ear_nn_xxh64_init(ear_nn_xxh64 *state, uint64_t seed);

/* Adds bytes; chunks of any size give the same result as one call. */
void ear_nn_xxh64_update(ear_nn_xxh64 *state, const void *data, size_t size);

/* The hash of everything added so far. */
uint64_t ear_nn_xxh64_digest(const ear_nn_xxh64 *state);

#endif
