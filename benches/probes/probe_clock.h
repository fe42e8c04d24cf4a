// Timing helpers shared by the probes in this directory: a monotonic
// clock, the core clock measured without counters (a chain of dependent
// integer adds, one cycle each), and a comparison for qsort of doubles
// (the probes report medians).
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static double clock_ghz(void) {
    const long n = 100000000L;
    uint64_t x = 0;
    double t = now();
    for (long i = 0; i < n; i++) __asm__ volatile("add $1,%0\n\tadd $1,%0\n\tadd $1,%0\n\tadd $1,%0" : "+r"(x));
    return 4.0 * n / (now() - t) / 1e9;
}

static int cmp_doubles(const void* a, const void* b) { double p = *(const double*)a, q = *(const double*)b; return p < q ? -1 : p > q; }
