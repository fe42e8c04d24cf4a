// Which 256-bit operations of the AVX2 softmax exponential compete with its
// FMAs for the two FMA pipes of this core: eight independent FMA chains
// (latency-bound at 4 cycles per round of eight, which is also the bound of
// two FMA pipes), with 2 or 4 independent one-operation chains of another
// kind mixed in. An operation on other pipes leaves the time near 4 cycles
// per round; one on the FMA pipes adds half a cycle per operation (vmulps
// shows it). A chain's own latency shows when it exceeds 4 cycles (each
// extra chain runs one operation per round): vpermps shows its latency
// (about 10 cycles here), not its pipes. Clock from a chain of dependent
// integer adds. Issue 11, round 30 (AMD Zen 3, no hardware counters):
//
//     gcc -O3 -mavx2 -mfma benches/probes/fp_pipes_avx2.c -o /tmp/fp_pipes && /tmp/fp_pipes
//
// Check with -S that the loops keep every chain in a register.
#include <immintrin.h>
#include <stdio.h>
#include "probe_clock.h"
#define ROUNDS 25000000L
static double ghz;
#define FMA(i) f##i = _mm256_fmadd_ps(f##i, c, d); __asm__("" : "+x"(f##i));
#define OTHER(o) { __m256 a = o; o = OP(a); __asm__("" : "+x"(o)); }
#define SETUP __m256 c = _mm256_set1_ps(1.0000001f), d = _mm256_set1_ps(1e-9f); \
  __m256 f0 = _mm256_set1_ps(0), f1 = _mm256_set1_ps(1), f2 = _mm256_set1_ps(2), f3 = _mm256_set1_ps(3); \
  __m256 f4 = _mm256_set1_ps(4), f5 = _mm256_set1_ps(5), f6 = _mm256_set1_ps(6), f7 = _mm256_set1_ps(7); \
  __m256 o0 = _mm256_set1_ps(1), o1 = o0, o2 = o0, o3 = o0; double t = now();
#define REPORT(name, k) t = now() - t; \
  printf("%-8s %d per round: %.2f cycles per round of 8 FMAs\n", name, k, t * ghz * 1e9 / ROUNDS); \
  return f0[0] + f1[0] + f2[0] + f3[0] + f4[0] + f5[0] + f6[0] + f7[0] + o0[0] + o1[0] + o2[0] + o3[0];
#define KIND(fn, name) \
  __attribute__((noinline)) float fn##_2(void) { SETUP \
    for (long r = 0; r < ROUNDS; r++) { FMA(0) FMA(1) FMA(2) FMA(3) OTHER(o0) FMA(4) FMA(5) FMA(6) FMA(7) OTHER(o1) } \
    REPORT(name, 2) } \
  __attribute__((noinline)) float fn##_4(void) { SETUP \
    for (long r = 0; r < ROUNDS; r++) { FMA(0) FMA(1) OTHER(o0) FMA(2) FMA(3) OTHER(o1) FMA(4) FMA(5) OTHER(o2) FMA(6) FMA(7) OTHER(o3) } \
    REPORT(name, 4) }
__attribute__((noinline)) float fma_only(void) { SETUP
  for (long r = 0; r < ROUNDS; r++) { FMA(0) FMA(1) FMA(2) FMA(3) FMA(4) FMA(5) FMA(6) FMA(7) }
  REPORT("none", 0) }
#define OP(a) _mm256_max_ps(a, c)
KIND(max, "vmaxps")
#undef OP
#define OP(a) _mm256_add_ps(a, c)
KIND(add, "vaddps")
#undef OP
#define OP(a) _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(a), _mm256_castps_si256(c)))
KIND(paddd, "vpaddd")
#undef OP
#define OP(a) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(a), 1))
KIND(pslld, "vpslld")
#undef OP
#define OP(a) _mm256_permutevar8x32_ps(a, _mm256_castps_si256(c))
KIND(permps, "vpermps")
#undef OP
#define OP(a) _mm256_mul_ps(a, c)
KIND(mul, "vmulps")
#undef OP
int main(void) {
  ghz = clock_ghz();
  printf("clock %.2f GHz (integer add chain)\n", ghz);
  float s = fma_only();
  s += max_2() + max_4() + add_2() + add_4() + paddd_2() + paddd_4();
  s += pslld_2() + pslld_4() + permps_2() + permps_4() + mul_2() + mul_4();
  return s == 1.5f;
}
