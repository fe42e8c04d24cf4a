// Softmax's passes over one float32 row in L1, one at a time, in cycles
// per 16-element register on this core (AVX-512): the loop-level breakdown
// of `benches/probes/softmax_kernel_time.py`'s kernel time (issue 11,
// round 19). Each pass is the operation sequence of the Rust kernel
// (`rust/simd/exp.rs`, `exp_down_table16_f32`; `rust/softmax/vector.rs`,
// `sum_map_form`, `row_max_alongside`, `update_in_place`), written again
// here with intrinsics, run over the same 1024-element row many times.
// The clock is measured as in `issue_rates.c` (dependent integer adds).
// Medians of 9 runs.
//
//     gcc -O3 -march=x86-64-v4 benches/probes/softmax_passes.c -o /tmp/softmax_passes -lm && /tmp/softmax_passes [GAP]
//
// GAP (default 0): y starts GAP bytes after x's end, so 0 puts y[i] 4 KiB
// after x[i]. Variants of the exp-and-sum pass: with or without the
// kernel's f64 fold of the sums, 4 or 8 registers per step, 2 or 4 sum
// chains, the underflow mask left out (a timing variant
// only: lanes below 2^-127 are then wrong), from an integer comparison,
// or one comparison per step of four registers; and the max pass keeping
// the row's minimum too (what a per-row choice of the unmasked form would
// need).
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "probe_clock.h"

#define LEN 1024
#define REGS (LEN / 16)
// x and y in one buffer, y starting `gap` bytes after x's end (argv[1]):
// 0 puts y[i] exactly 4 KiB after x[i], as when rows of 1024 of two
// arrays start at the same offset in their pages.
static float* x;
static float* y;
static float table[16] __attribute__((aligned(64)));

// The kernel's constants (rust/simd/exp.rs, rust/simd/mod.rs).
#define MAGIC 786432.0f
static const float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f, C2 = 0.50001615f, C3 = 0.16666721f;

typedef struct { __m512 base, log2e, nhi, nlo, c2, c3, one, limit, tab; } Exp;

static Exp exp_consts(float n_m) {
    Exp e;
    e.base = _mm512_set1_ps(MAGIC - n_m);
    e.log2e = _mm512_set1_ps(1.44269504f);
    e.nhi = _mm512_set1_ps(-LN2_HI);
    e.nlo = _mm512_set1_ps(-LN2_LO);
    e.c2 = _mm512_set1_ps(C2);
    e.c3 = _mm512_set1_ps(C3);
    e.one = _mm512_set1_ps(1.0f);
    e.limit = _mm512_set1_ps(MAGIC - 127.0f);
    e.tab = _mm512_load_ps(table);
    return e;
}

// exp(x) / 2^n from x (v0) and v = x log2 e + (MAGIC - n):
// exp_down_table16_f32, operation for operation; the last multiply-add
// zero-masked by `keep` when `masked`.
static inline __attribute__((always_inline)) __m512 exp16_v(const Exp* e, __m512 v0, __m512 v, __mmask16 keep, int masked) {
    __m512 r = _mm512_sub_ps(v, e->base);
    __m512i idx = _mm512_castps_si512(v);
    __m512 s = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(_mm512_permutexvar_ps(idx, e->tab)), _mm512_slli_epi32(idx, 19)));
    __m512 t = _mm512_fmadd_ps(r, e->nhi, v0);
    t = _mm512_fmadd_ps(r, e->nlo, t);
    __m512 q = _mm512_fmadd_ps(_mm512_fmadd_ps(e->c3, t, e->c2), t, e->one);
    __m512 f = _mm512_mul_ps(q, t);
    if (masked) return _mm512_maskz_fmadd_ps(keep, s, f, s);
    return _mm512_fmadd_ps(s, f, s);
}

// The underflow masks: none, the kernel's float comparison, or an integer
// comparison of v's bits (the same lanes for positive v and -inf).
enum { NO_MASK, FLOAT_MASK, INT_MASK };

static inline __attribute__((always_inline)) __m512 exp16(const Exp* e, __m512 v0, int mask) {
    __m512 v = _mm512_fmadd_ps(v0, e->log2e, e->base);
    __mmask16 keep = mask == FLOAT_MASK ? _mm512_cmp_ps_mask(v, e->limit, _CMP_NLT_UQ)
                                        : _mm512_cmpge_epi32_mask(_mm512_castps_si512(v), _mm512_castps_si512(e->limit));
    return exp16_v(e, v0, v, keep, mask != NO_MASK);
}

// Each pass copies the constants and pins them to registers, as the Rust
// kernel keeps them (without this GCC reads them from memory operands).
#define CONSTANTS_IN_REGISTERS(ep)                                                       \
    Exp c = *(ep), *e = &c;                                                              \
    __asm__("" : "+v"(c.base), "+v"(c.log2e), "+v"(c.nhi), "+v"(c.nlo), "+v"(c.c2), "+v"(c.c3), "+v"(c.one), "+v"(c.limit), "+v"(c.tab))

// The exp-and-sum pass with one comparison per step of four registers:
// the minimum of their v against the limit; only a step with a lane below
// it compares each register.
static float exp_store_step_min(const Exp* ep) {
    CONSTANTS_IN_REGISTERS(ep);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    for (int i = 0; i < LEN; i += 64) {
        __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16), x2 = _mm512_loadu_ps(x + i + 32), x3 = _mm512_loadu_ps(x + i + 48);
        __m512 v0 = _mm512_fmadd_ps(x0, e->log2e, e->base), v1 = _mm512_fmadd_ps(x1, e->log2e, e->base);
        __m512 v2 = _mm512_fmadd_ps(x2, e->log2e, e->base), v3 = _mm512_fmadd_ps(x3, e->log2e, e->base);
        // As signed integers the bits of positive floats keep their order
        // and negative ones (-inf, a NaN with its sign set) are below every
        // positive one, so the minimum is at least the limit's bits only if
        // every lane is a positive float at least the limit, or +NaN: lanes
        // the mask would keep.
        __m512i b0 = _mm512_castps_si512(v0), b1 = _mm512_castps_si512(v1), b2 = _mm512_castps_si512(v2), b3 = _mm512_castps_si512(v3);
        __m512i lo = _mm512_min_epi32(_mm512_min_epi32(b0, b1), _mm512_min_epi32(b2, b3));
        __m512 e0, e1, e2, e3;
        if (__builtin_expect(_mm512_cmplt_epi32_mask(lo, _mm512_castps_si512(e->limit)) == 0, 1)) {
            e0 = exp16_v(e, x0, v0, 0, 0); e1 = exp16_v(e, x1, v1, 0, 0); e2 = exp16_v(e, x2, v2, 0, 0); e3 = exp16_v(e, x3, v3, 0, 0);
        } else {
            e0 = exp16_v(e, x0, v0, _mm512_cmp_ps_mask(v0, e->limit, _CMP_NLT_UQ), 1);
            e1 = exp16_v(e, x1, v1, _mm512_cmp_ps_mask(v1, e->limit, _CMP_NLT_UQ), 1);
            e2 = exp16_v(e, x2, v2, _mm512_cmp_ps_mask(v2, e->limit, _CMP_NLT_UQ), 1);
            e3 = exp16_v(e, x3, v3, _mm512_cmp_ps_mask(v3, e->limit, _CMP_NLT_UQ), 1);
        }
        _mm512_storeu_ps(y + i, e0); _mm512_storeu_ps(y + i + 16, e1); _mm512_storeu_ps(y + i + 32, e2); _mm512_storeu_ps(y + i + 48, e3);
        s0 = _mm512_add_ps(s0, _mm512_add_ps(e0, e2));
        s1 = _mm512_add_ps(s1, _mm512_add_ps(e1, e3));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

// The kernel's exp pass as `sum_map_form` runs it: the sums folded into
// an f64 total every 128 elements (`BLOCK`) by a horizontal reduction.
static float exp_store_blocks(const Exp* ep) {
    CONSTANTS_IN_REGISTERS(ep);
    double total = 0.0;
    for (int start = 0; start < LEN; start += 128) {
        __m512 s0 = _mm512_setzero_ps(), s1 = s0;
        for (int i = start; i < start + 128; i += 64) {
            __m512 e0 = exp16(e, _mm512_loadu_ps(x + i), FLOAT_MASK), e1 = exp16(e, _mm512_loadu_ps(x + i + 16), FLOAT_MASK);
            __m512 e2 = exp16(e, _mm512_loadu_ps(x + i + 32), FLOAT_MASK), e3 = exp16(e, _mm512_loadu_ps(x + i + 48), FLOAT_MASK);
            _mm512_storeu_ps(y + i, e0); _mm512_storeu_ps(y + i + 16, e1); _mm512_storeu_ps(y + i + 32, e2); _mm512_storeu_ps(y + i + 48, e3);
            s0 = _mm512_add_ps(_mm512_add_ps(s0, e0), e2);
            s1 = _mm512_add_ps(_mm512_add_ps(s1, e1), e3);
        }
        __m512 sum = _mm512_add_ps(s0, s1);
        __m256 h = _mm256_add_ps(_mm512_castps512_ps256(sum), _mm512_extractf32x8_ps(sum, 1));
        __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));
        total += _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)));
    }
    return (float)total;
}

// The exp-and-sum pass: U registers per step, C sum chains, storing the
// exponentials (reload) or not (the sum alone).
#define EXP_PASS(NAME, U, C, STORE, MASK)                                          \
    static float NAME(const Exp* ep) {                                               \
        CONSTANTS_IN_REGISTERS(ep);                                                  \
        __m512 s[C];                                                                 \
        for (int k = 0; k < C; k++) s[k] = _mm512_setzero_ps();                      \
        for (int i = 0; i < LEN; i += 16 * U) {                                      \
            _Pragma("GCC unroll 8") for (int k = 0; k < U; k++) {                    \
                __m512 ek = exp16(e, _mm512_loadu_ps(x + i + 16 * k), MASK);       \
                if (STORE) _mm512_storeu_ps(y + i + 16 * k, ek);                     \
                s[k % C] = _mm512_add_ps(s[k % C], ek);                              \
            }                                                                        \
        }                                                                            \
        for (int k = 1; k < C; k++) s[0] = _mm512_add_ps(s[0], s[k]);                \
        return _mm512_reduce_add_ps(s[0]);                                           \
    }
EXP_PASS(exp_store_u4c2, 4, 2, 1, FLOAT_MASK) // the kernel's loop without its f64 fold
EXP_PASS(exp_store_u8c2, 8, 2, 1, FLOAT_MASK)
EXP_PASS(exp_store_u4c4, 4, 4, 1, FLOAT_MASK)
EXP_PASS(exp_store_u4c2_nomask, 4, 2, 1, NO_MASK)
EXP_PASS(exp_store_u4c2_intmask, 4, 2, 1, INT_MASK)
EXP_PASS(exp_sum_u4c2, 4, 2, 0, FLOAT_MASK)   // no store

// The max pass over x in 4 chains, written once for its four variants:
// with `keep_min` the row's minimum kept too (returned as max - min), with
// `scale_y` each register of y scaled in place by r alongside (the fused
// last pass of `fused_rows`: four registers of y scaled and four of the
// next row maxed per step). The flags are constants at every call, so each
// variant compiles to its own loop.
static inline __attribute__((always_inline)) float max_pass_with(int keep_min, int scale_y, float r) {
    __m512 rv = _mm512_set1_ps(r), m[4], l[4];
    for (int k = 0; k < 4; k++) m[k] = _mm512_set1_ps(-INFINITY), l[k] = _mm512_set1_ps(INFINITY);
    for (int i = 0; i < LEN; i += 64)
        for (int k = 0; k < 4; k++) {
            __m512 v = _mm512_loadu_ps(x + i + 16 * k);
            m[k] = _mm512_max_ps(m[k], v);
            if (keep_min) l[k] = _mm512_min_ps(l[k], v);
            if (scale_y) _mm512_storeu_ps(y + i + 16 * k, _mm512_mul_ps(_mm512_loadu_ps(y + i + 16 * k), rv));
        }
    float max = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m[0], m[1]), _mm512_max_ps(m[2], m[3])));
    return keep_min ? max - _mm512_reduce_min_ps(_mm512_min_ps(_mm512_min_ps(l[0], l[1]), _mm512_min_ps(l[2], l[3]))) : max;
}

static float max_pass(void) { return max_pass_with(0, 0, 0.0f); }
static float max_min_pass(void) { return max_pass_with(1, 0, 0.0f); }
static float scale_and_max_pass(float r) { return max_pass_with(0, 1, r); }
static float scale_and_max_min_pass(float r) { return max_pass_with(1, 1, r); }

static void scale_pass(float r) {
    __m512 rv = _mm512_set1_ps(r);
    for (int i = 0; i < LEN; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), rv));
}

static Exp e;
// The last pass's factor, read at run time: 1, so that y keeps its
// values over the repetitions (a factor below 1 would take it into
// subnormals).
static volatile float scale_in = 1.0f;
static float scale;

// The passes timed, by name.
static float f_max(void) { return max_pass(); }
static float f_exp(void) { return exp_store_u4c2(&e); }
static float f_exp_blocks(void) { return exp_store_blocks(&e); }
static float f_exp_u8(void) { return exp_store_u8c2(&e); }
static float f_exp_c4(void) { return exp_store_u4c4(&e); }
static float f_exp_nomask(void) { return exp_store_u4c2_nomask(&e); }
static float f_exp_intmask(void) { return exp_store_u4c2_intmask(&e); }
static float f_exp_step(void) { return exp_store_step_min(&e); }
static float f_exp_sum(void) { return exp_sum_u4c2(&e); }
static float f_last(void) { scale_pass(scale); return y[LEN - 1]; }
static float f_last_max(void) { return scale_and_max_pass(scale); }
static float f_max_min(void) { return max_min_pass(); }
static float f_last_max_min(void) { return scale_and_max_min_pass(scale); }
// Each result is used, so the compiler keeps every pass's work.
static float f_three(void) { float m = max_pass(), sum = exp_store_blocks(&e); scale_pass(scale); return m + sum + y[LEN - 1]; }
static float f_fused(void) { float sum = exp_store_blocks(&e); return sum + scale_and_max_pass(scale); }
// A copy by 512-bit loads and stores (not memcpy, which GCC makes
// `rep movsq`).
static float f_copy(void) {
    for (int i = 0; i < LEN; i += 16) _mm512_storeu_ps(y + i, _mm512_loadu_ps(x + i));
    return y[LEN - 1];
}

static const struct { const char* name; float (*run)(void); } PASSES[] = {
    {"max pass (load, max; 4 chains)", f_max},
    {"exp pass: load, exp, store, add (4 registers per step, 2 sums)", f_exp},
    {"the same with the f64 fold every 128 elements (the kernel's)", f_exp_blocks},
    {"exp pass, 8 registers per step", f_exp_u8},
    {"exp pass, 4 sum chains", f_exp_c4},
    {"exp pass without the underflow mask (wrong below 2^-127)", f_exp_nomask},
    {"exp pass, the mask from an integer compare (vpcmpd)", f_exp_intmask},
    {"exp pass, one compare per step (min of 4 v as integers)", f_exp_step},
    {"exp pass without the store (the sum alone)", f_exp_sum},
    {"last pass (load, multiply, store)", f_last},
    {"last pass with the next row's max (fused_rows)", f_last_max},
    {"max pass keeping the minimum too", f_max_min},
    {"last pass with the next row's max and min", f_last_max_min},
    {"the kernel's three passes (the exp pass with its fold)", f_three},
    {"the exp pass (with its fold) and the fused last pass", f_fused},
    {"a copy of the row (512-bit loads and stores)", f_copy},
};
#define K (sizeof PASSES / sizeof PASSES[0])

static volatile float sink;
static const long REPS = 200000;

// ns per register of one pass, over REPS passes of the row.
static double time_pass(float (*run)(void)) {
    double t0 = now();
    for (long rep = 0; rep < REPS; rep++) sink = run();
    return (now() - t0) / (REPS * (double)REGS) * 1e9;
}

int main(int argc, char** argv) {
    long gap = argc > 1 ? atol(argv[1]) : 0;
    float* buffer = aligned_alloc(4096, 3 * sizeof(float) * LEN + 4096);
    x = buffer;
    y = (float*)((char*)(x + LEN) + gap);
    srand(1);
    float m = -INFINITY;
    for (int i = 0; i < LEN; i++) { x[i] = (float)rand() / RAND_MAX * 20.0f - 10.0f; m = fmaxf(m, x[i]); }
    for (int j = 0; j < 16; j++) { float v = exp2f(j / 16.0f); uint32_t b; __builtin_memcpy(&b, &v, 4); b -= (uint32_t)j << 19; __builtin_memcpy(&table[j], &b, 4); }
    e = exp_consts(rintf(m * 1.44269504f));
    scale = scale_in;
    enum { R = 9 };
    double res[K][R], ghz[R];
    for (int r = 0; r < R; r++) {
        ghz[r] = clock_ghz();
        for (size_t k = 0; k < K; k++) res[k][r] = time_pass(PASSES[k].run);
    }
    qsort(ghz, R, sizeof(double), cmp_doubles);
    double g = ghz[R / 2];
    printf("clock (dependent integer adds): %.2f GHz (%.2f-%.2f); one row of %d float32 in L1, y %ld bytes after x's end; medians of %d runs\n", g, ghz[0], ghz[R - 1], LEN, gap, R);
    for (size_t k = 0; k < K; k++) {
        qsort(res[k], R, sizeof(double), cmp_doubles);
        printf("%-70s %6.2f cycles per register (%.2f-%.2f)\n", PASSES[k].name, res[k][R / 2] * g, res[k][0] * g, res[k][R - 1] * g);
    }
    return 0;
}
