/* The search's kernels: half-precision conversions round to nearest even as
 * IEEE (and the CPU's F16C) do, and the F32 and F16 dot products agree with a
 * plain one for every length, including the tails the vector code handles one
 * by one. */
#include <stdint.h>

#include "index/format.h"
#include "test.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
__attribute__((target("f16c"))) static uint16_t hardware_f16(float v)
{
    return (uint16_t)_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT);
}
#define HAVE_HARDWARE_F16 1
#endif

static uint32_t rng = 12345;
static uint32_t next_random(void)
{
    rng = rng * 1664525u + 1013904223u;
    return rng;
}

static float float_from_bits(uint32_t bits)
{
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void check_conversions(void)
{
    int roundtrip_failures = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float v = ear_index_f16_to_f32((uint16_t)h);
        int nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
        if (nan ? !isnan(v) : ear_index_f32_to_f16(v) != h)
            roundtrip_failures++;
    }
    EAR_CHECK_MSG(roundtrip_failures == 0, "%d halves do not survive f16 -> f32 -> f16",
                  roundtrip_failures);
    EAR_CHECK(ear_index_f16_to_f32(0x3c00) == 1.0f);
    EAR_CHECK(ear_index_f16_to_f32(0xc000) == -2.0f);
    EAR_CHECK(ear_index_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    EAR_CHECK(ear_index_f32_to_f16(65504.0f) == 0x7bff);
    EAR_CHECK(ear_index_f32_to_f16(65520.0f) == 0x7c00); /* rounds up to infinity */
    EAR_CHECK(ear_index_f32_to_f16(1e9f) == 0x7c00);
    EAR_CHECK(ear_index_f32_to_f16(-1e-9f) == 0x8000);
    EAR_CHECK(ear_index_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3c00); /* tie to even */
    EAR_CHECK(ear_index_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3c02);
    EAR_CHECK(isnan(ear_index_f16_to_f32(ear_index_f32_to_f16(NAN))));
#ifdef HAVE_HARDWARE_F16
    unsigned eax, ebx, ecx, edx;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && ((ecx >> 29) & 1)) { /* F16C */
        int mismatches = 0;
        for (int i = 0; i < 2000000; i++) {
            /* Every exponent, normal and subnormal halves, overflow. */
            float v = float_from_bits(next_random());
            if (isnan(v))
                continue;
            if (ear_index_f32_to_f16(v) != hardware_f16(v))
                mismatches++;
        }
        EAR_CHECK_MSG(mismatches == 0, "%d floats convert unlike F16C", mismatches);
        for (int i = 0; i < 2000000; i++) {
            /* Concentrated where halves live, to hit subnormals and ties. */
            float v = ldexpf((float)(next_random() % (1u << 24)), (int)(next_random() % 44) - 60);
            if (ear_index_f32_to_f16(v) != hardware_f16(v))
                mismatches++;
        }
        EAR_CHECK_MSG(mismatches == 0, "%d small floats convert unlike F16C", mismatches);
    }
#endif
}

static float random_unit_interval(void)
{
    return (float)(int)(next_random() % 2001 - 1000) / 1000.0f;
}

static void check_dot_products(void)
{
    enum { ROWS = 7, MAX_DIM = 80 };
    uint16_t halves[ROWS * MAX_DIM];
    float floats[ROWS * MAX_DIM], query[MAX_DIM], scores16[ROWS], scores32[ROWS];
    int wrong16 = -1, wrong32 = -1;
    for (int dim = 1; dim <= MAX_DIM; dim++) {
        for (int i = 0; i < ROWS * dim; i++) {
            floats[i] = random_unit_interval();
            halves[i] = ear_index_f32_to_f16(floats[i]);
        }
        for (int d = 0; d < dim; d++)
            query[d] = random_unit_interval();
        ear_index_dot_f16(halves, ROWS, dim, query, scores16);
        ear_index_dot_f32(floats, ROWS, dim, query, scores32);
        for (int r = 0; r < ROWS; r++) {
            double want16 = 0, want32 = 0;
            for (int d = 0; d < dim; d++) {
                want16 += (double)ear_index_f16_to_f32(halves[r * dim + d]) * query[d];
                want32 += (double)floats[r * dim + d] * query[d];
            }
            if (fabs(scores16[r] - want16) > 1e-5 * dim)
                wrong16 = dim;
            if (fabs(scores32[r] - want32) > 1e-5 * dim)
                wrong32 = dim;
        }
    }
    EAR_CHECK_MSG(wrong16 < 0, "F16 dot product wrong at dimension %d", wrong16);
    EAR_CHECK_MSG(wrong32 < 0, "F32 dot product wrong at dimension %d", wrong32);
}

int main(void)
{
    check_conversions();
    check_dot_products();
    return ear_test_finish();
}
