/* The search's inner loops: one dot product per stored row, F32 or F16 rows
 * against an F32 query, and the half-precision conversions. An exact scan is
 * bound by memory traffic: F16 halves it, and the vector kernels prefetch
 * across the 4 KiB pages of the mapped file, which the hardware prefetcher
 * does not (measured over a mapped 1M x 512 F32 matrix: cblas_sgemv 65 ms,
 * this kernel 50 ms; bench/bench_search.c). Without AVX2 a plain loop does it,
 * so that the index stands on core alone (its fuzzer and bench need no BLAS). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "index/format.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#define HAVE_X86_KERNEL 1
#endif

uint16_t ear_index_f32_to_f16(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    uint32_t sign = (bits >> 16) & 0x8000u;
    uint32_t exponent = (bits >> 23) & 0xffu;
    uint32_t mantissa = bits & 0x7fffffu;
    if (exponent == 0xff) /* infinity stays infinity; NaN stays a quiet NaN */
        return (uint16_t)(sign | 0x7c00u | (mantissa ? 0x200u : 0));
    int e = (int)exponent - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10)
            return (uint16_t)sign;
        /* Subnormal half: shift the mantissa, with its implicit bit, into place. */
        mantissa |= 0x800000u;
        int shift = 14 - e;
        uint32_t half = mantissa >> shift;
        uint32_t rest = mantissa & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (half & 1u)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (mantissa >> 13);
    uint32_t rest = mantissa & 0x1fffu;
    /* Round to nearest even; a carry into the exponent is what rounding up means. */
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
        half++;
    return (uint16_t)(sign | half);
}

float ear_index_f16_to_f32(uint16_t half)
{
    uint32_t sign = (uint32_t)(half & 0x8000u) << 16;
    uint32_t exponent = (half >> 10) & 0x1fu;
    uint32_t mantissa = half & 0x3ffu;
    uint32_t bits;
    if (exponent == 0) {
        float v = ldexpf((float)mantissa, -24);
        return sign ? -v : v;
    }
    if (exponent == 31)
        bits = sign | 0x7f800000u | (mantissa << 13);
    else
        bits = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void dot_f16_portable(const uint16_t *matrix, size_t rows, int dim, const float *query,
                             float *scores)
{
    for (size_t r = 0; r < rows; r++) {
        const uint16_t *row = matrix + r * (size_t)dim;
        float sum = 0;
        for (int i = 0; i < dim; i++)
            sum += ear_index_f16_to_f32(row[i]) * query[i];
        scores[r] = sum;
    }
}

/* Elements ahead of the current one to ask the cache for: one page of F32. */
#define PREFETCH_AHEAD 1024

#ifdef HAVE_X86_KERNEL
__attribute__((target("avx2,fma"))) static float sum_lanes(__m256 v)
{
    __m128 sum4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum4 = _mm_add_ps(sum4, _mm_movehl_ps(sum4, sum4));
    sum4 = _mm_add_ss(sum4, _mm_shuffle_ps(sum4, sum4, 1));
    return _mm_cvtss_f32(sum4);
}

__attribute__((target("avx2,fma"))) static void
dot_f32_avx2(const float *matrix, size_t rows, int dim, const float *query, float *scores)
{
    int wide = dim & ~31;
    for (size_t r = 0; r < rows; r++) {
        const float *row = matrix + r * (size_t)dim;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        int i = 0;
        for (; i < wide; i += 32) {
            /* Two 64-byte lines per 32 floats; a prefetch past the end is harmless. */
            _mm_prefetch((const char *)(row + i + PREFETCH_AHEAD), _MM_HINT_T0);
            _mm_prefetch((const char *)(row + i + PREFETCH_AHEAD + 16), _MM_HINT_T0);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(row + i), _mm256_loadu_ps(query + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(row + i + 8), _mm256_loadu_ps(query + i + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(row + i + 16), _mm256_loadu_ps(query + i + 16),
                                 a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(row + i + 24), _mm256_loadu_ps(query + i + 24),
                                 a3);
        }
        float sum = sum_lanes(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; i < dim; i++)
            sum += row[i] * query[i];
        scores[r] = sum;
    }
}

__attribute__((target("avx2,fma,f16c"))) static void
dot_f16_avx2(const uint16_t *matrix, size_t rows, int dim, const float *query, float *scores)
{
    int wide = dim & ~31;
    for (size_t r = 0; r < rows; r++) {
        const uint16_t *row = matrix + r * (size_t)dim;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        int i = 0;
        for (; i < wide; i += 32) {
            _mm_prefetch((const char *)(row + i + PREFETCH_AHEAD), _MM_HINT_T0);
            __m256 h0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(row + i)));
            __m256 h1 =
                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(row + i + 8)));
            __m256 h2 =
                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(row + i + 16)));
            __m256 h3 =
                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(row + i + 24)));
            a0 = _mm256_fmadd_ps(h0, _mm256_loadu_ps(query + i), a0);
            a1 = _mm256_fmadd_ps(h1, _mm256_loadu_ps(query + i + 8), a1);
            a2 = _mm256_fmadd_ps(h2, _mm256_loadu_ps(query + i + 16), a2);
            a3 = _mm256_fmadd_ps(h3, _mm256_loadu_ps(query + i + 24), a3);
        }
        float sum = sum_lanes(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; i < dim; i++)
            sum += _cvtsh_ss(row[i]) * query[i];
        scores[r] = sum;
    }
}
#endif

#ifdef HAVE_X86_KERNEL
static pthread_once_t cpu_checked = PTHREAD_ONCE_INIT;
static int cpu_has_avx2_fma_f16c;

/* CPUID (clang's __builtin_cpu_supports knows no "f16c"), and XGETBV: the OS must save
 * the AVX registers too. Run once: CPUID traps to the hypervisor on a VM. */
static void check_cpu(void)
{
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return;
    int fma = (ecx >> 12) & 1, osxsave = (ecx >> 27) & 1, f16c = (ecx >> 29) & 1;
    if (!fma || !osxsave || !f16c)
        return;
    unsigned xcr0_low, xcr0_high;
    __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    if ((xcr0_low & 6) != 6)
        return;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
        return;
    cpu_has_avx2_fma_f16c = (ebx >> 5) & 1;
}
#endif

static int have_avx2(void)
{
#ifdef HAVE_X86_KERNEL
    pthread_once(&cpu_checked, check_cpu);
    return cpu_has_avx2_fma_f16c;
#else
    return 0;
#endif
}

void ear_index_dot_f32(const float *matrix, size_t rows, int dim, const float *query,
                       float *scores)
{
#ifdef HAVE_X86_KERNEL
    if (have_avx2()) {
        dot_f32_avx2(matrix, rows, dim, query, scores);
        return;
    }
#endif
    for (size_t r = 0; r < rows; r++) {
        const float *row = matrix + r * (size_t)dim;
        float sum = 0;
        for (int i = 0; i < dim; i++)
            sum += row[i] * query[i];
        scores[r] = sum;
    }
}

void ear_index_dot_f16(const uint16_t *matrix, size_t rows, int dim, const float *query,
                       float *scores)
{
#ifdef HAVE_X86_KERNEL
    if (have_avx2()) {
        dot_f16_avx2(matrix, rows, dim, query, scores);
        return;
    }
#endif
    dot_f16_portable(matrix, rows, dim, query, scores);
}
