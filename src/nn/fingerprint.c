/* XXH64 as specified by its author (github.com/Cyan4973/xxHash, doc/xxhash_spec.md),
 * written from the specification. */
#include "nn/fingerprint.h"

#include <string.h>

static const uint64_t prime1 = 0x9E3779B185EBCA87ULL;
static const uint64_t prime2 = 0xC2B2AE3D27D4EB4FULL;
static const uint64_t prime3 = 0x165667B19E3779F9ULL;
static const uint64_t prime4 = 0x85EBCA77C2B2AE63ULL;
static const uint64_t prime5 = 0x27D4EB2F165667C5ULL;

static uint64_t rotate_left(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Little-endian reads whatever the alignment (one load on a little-endian machine). */
static uint64_t read64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static uint32_t read32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t mix_lane(uint64_t acc, uint64_t input)
{
    acc += input * prime2;
    acc = rotate_left(acc, 31);
    return acc * prime1;
}

static uint64_t merge_lane(uint64_t acc, uint64_t lane)
{
    acc ^= mix_lane(0, lane);
    return acc * prime1 + prime4;
}

static void consume_stripe(ear_nn_xxh64 *s, const uint8_t *p)
{
    for (int i = 0; i < 4; i++)
        s->lanes[i] = mix_lane(s->lanes[i], read64(p + 8 * i));
}

void ear_nn_xxh64_init(ear_nn_xxh64 *state, uint64_t seed)
{
    memset(state, 0, sizeof *state);
    state->seed = seed;
    state->lanes[0] = seed + prime1 + prime2;
    state->lanes[1] = seed + prime2;
    state->lanes[2] = seed;
    state->lanes[3] = seed - prime1;
}

void ear_nn_xxh64_update(ear_nn_xxh64 *state, const void *data, size_t size)
{
    const uint8_t *p = data;
    state->total += size;
    if (state->pending_count) {
        size_t take = 32 - state->pending_count;
        if (take > size)
            take = size;
        memcpy(state->pending + state->pending_count, p, take);
        state->pending_count += take;
        p += take;
        size -= take;
        if (state->pending_count < 32)
            return;
        consume_stripe(state, state->pending);
        state->pending_count = 0;
    }
    /* The lanes in locals: through the state they would be stored and reloaded every stripe
     * (the bytes read may alias them, as far as the compiler knows). Hashing a 455 MB model
     * was a quarter of its load. */
    uint64_t a = state->lanes[0], b = state->lanes[1], c = state->lanes[2], d = state->lanes[3];
    for (; size >= 32; p += 32, size -= 32) {
        a = mix_lane(a, read64(p));
        b = mix_lane(b, read64(p + 8));
        c = mix_lane(c, read64(p + 16));
        d = mix_lane(d, read64(p + 24));
    }
    state->lanes[0] = a;
    state->lanes[1] = b;
    state->lanes[2] = c;
    state->lanes[3] = d;
    memcpy(state->pending, p, size);
    state->pending_count = size;
}

uint64_t ear_nn_xxh64_digest(const ear_nn_xxh64 *state)
{
    uint64_t h;
    if (state->total >= 32) {
        const uint64_t *v = state->lanes;
        h = rotate_left(v[0], 1) + rotate_left(v[1], 7) + rotate_left(v[2], 12) +
            rotate_left(v[3], 18);
        for (int i = 0; i < 4; i++)
            h = merge_lane(h, v[i]);
    } else {
        h = state->seed + prime5;
    }
    h += state->total;
    const uint8_t *p = state->pending;
    size_t left = state->pending_count;
    for (; left >= 8; p += 8, left -= 8) {
        h ^= mix_lane(0, read64(p));
        h = rotate_left(h, 27) * prime1 + prime4;
    }
    if (left >= 4) {
        h ^= (uint64_t)read32(p) * prime1;
        h = rotate_left(h, 23) * prime2 + prime3;
        p += 4;
        left -= 4;
    }
    for (; left > 0; p++, left--) {
        h ^= *p * prime5;
        h = rotate_left(h, 11) * prime1;
    }
    h ^= h >> 33;
    h *= prime2;
    h ^= h >> 29;
    h *= prime3;
    h ^= h >> 32;
    return h;
}
