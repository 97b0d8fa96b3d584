/* bench_peak: this core's arithmetic peak, the ceiling every "% of peak" in BENCHMARKS.md is
 * against. Twelve independent accumulators of 512-bit FMA (float32), VDPBF16PS (bf16 pairs
 * into float32) and VPDPBUSD (u8 x s8 quads into int32), registers only, timed by the thread's
 * CPU time (other processes' turns on a shared machine do not count):
 *
 *   build/bench_peak [--seconds S]
 *
 * A core that runs 512-bit instructions as two 256-bit halves (AMD Zen 4) reports half of one
 * that has full-width units (Zen 5, Intel server cores) at the same clock. Numbers, not a test;
 * x86-64 with AVX-512 only (anything else says so and exits 0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double thread_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

#if defined(__x86_64__)
#include <cpuid.h>

#define TWELVE(op)                                                                              \
    op " %%zmm12, %%zmm13, %%zmm0\n\t" op " %%zmm12, %%zmm13, %%zmm1\n\t" op                    \
       " %%zmm12, %%zmm13, %%zmm2\n\t" op " %%zmm12, %%zmm13, %%zmm3\n\t" op                    \
       " %%zmm12, %%zmm13, %%zmm4\n\t" op " %%zmm12, %%zmm13, %%zmm5\n\t" op                    \
       " %%zmm12, %%zmm13, %%zmm6\n\t" op " %%zmm12, %%zmm13, %%zmm7\n\t" op                    \
       " %%zmm12, %%zmm13, %%zmm8\n\t" op " %%zmm12, %%zmm13, %%zmm9\n\t" op                    \
       " %%zmm12, %%zmm13, %%zmm10\n\t" op " %%zmm12, %%zmm13, %%zmm11\n\t"

/* Runs iterations x 12 of the instruction; returns the thread CPU seconds it took. */
#define KERNEL(name, op)                                                                        \
    __attribute__((target("avx512f"))) static double name(long iterations)                     \
    {                                                                                           \
        double start = thread_cpu();                                                            \
        __asm__ volatile("vpxord %%zmm12, %%zmm12, %%zmm12\n\t"                                 \
                         "vpxord %%zmm13, %%zmm13, %%zmm13\n"                                   \
                         "1:\n\t" TWELVE(op) "dec %0\n\t"                                       \
                         "jnz 1b\n"                                                             \
                         : "+r"(iterations)                                                     \
                         :                                                                      \
                         : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7",      \
                           "zmm8", "zmm9", "zmm10", "zmm11", "zmm12", "zmm13", "cc");           \
        return thread_cpu() - start;                                                            \
    }

KERNEL(run_fma, "vfmadd231ps")
KERNEL(run_bf16, "vdpbf16ps")
KERNEL(run_vnni, "vpdpbusd")

/* Best of five: iterations sized to about seconds / 15 each. */
static double rate(double (*kernel)(long), double ops_per_instruction, double seconds)
{
    long iterations = 1000000;
    double t = kernel(iterations);
    while (t < 0.01) {
        iterations *= 4;
        t = kernel(iterations);
    }
    iterations = (long)((double)iterations * (seconds / 15.0) / t) + 1;
    double best = 0;
    for (int i = 0; i < 5; i++) {
        t = kernel(iterations);
        double r = (double)iterations * 12.0 * ops_per_instruction / t * 1e-9;
        best = r > best ? r : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    double seconds = 3.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_peak [--seconds S]\n");
            return 2;
        }
    }
    if (!(seconds > 0 && seconds < 600)) {
        fprintf(stderr, "usage: bench_peak [--seconds S] (0 < S < 600)\n");
        return 2;
    }
    unsigned a, b, c, d, a1 = 0, b1, c1, d1;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 16))) {
        printf("bench_peak: this CPU has no AVX-512\n");
        return 0;
    }
    __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
    unsigned family = 0, model = 0;
    if (__get_cpuid(1, &a, &b1, &c1, &d1)) {
        family = ((a >> 8) & 15) + ((a >> 20) & 255);
        model = ((a >> 4) & 15) | ((a >> 12) & 0xf0);
    }
    printf("bench_peak: one thread, CPU family %u model %u, thread CPU time, best of 5\n", family,
           model);
    printf("  fp32 FMA (vfmadd231ps zmm)     %7.1f GFLOP/s\n", rate(run_fma, 32, seconds));
    if (a1 & (1u << 5))
        printf("  bf16 dot (vdpbf16ps zmm)       %7.1f GFLOP/s\n", rate(run_bf16, 64, seconds));
    else
        printf("  bf16 dot: no AVX512-BF16\n");
    if (c & (1u << 11))
        printf("  int8 dot (vpdpbusd zmm)        %7.1f GOP/s\n", rate(run_vnni, 128, seconds));
    else
        printf("  int8 dot: no AVX512-VNNI\n");
    return 0;
}
#else
int main(void)
{
    (void)thread_cpu;
    printf("bench_peak: x86-64 only\n");
    return 0;
}
#endif
