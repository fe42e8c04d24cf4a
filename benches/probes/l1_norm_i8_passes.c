// The int8 L1 norm's passes over one row of 1024 int8 elements in L1, one
// at a time, in cycles per 64 bytes on this core (AVX-512 BW + VBMI): the
// loop-level breakdown of the kernel against an int8 copy (issue 11,
// round 19). Each pass is the operation sequence of the Rust kernel
// (`rust/l1norm/avx512.rs`: `row_sum`, `row_sad` (`sad_pass_count`;
// `sad_pass` is its form before round 21), `table` (`build_table_stepped`;
// `build_table`, four `requant64`, is its form before round 22),
// `write_row_table`), written again here with
// intrinsics; the per-row constants between the passes
// (`fixed::BatchConstants`, 4.6-4.9 ns a row in round 16) are not
// included. The passes do not wait for each other's results here (in the
// kernel, rows two ahead keep them apart too), but the write reads the
// table just built. The clock is measured as in `issue_rates.c`. Medians
// of 9 runs.
//
//     gcc -O3 -march=x86-64-v4 -mavx512vbmi benches/probes/l1_norm_i8_passes.c -o /tmp/l1_passes && /tmp/l1_passes
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "probe_clock.h"

#define LEN 1024
#define BLOCKS (LEN / 64)
static int8_t x[LEN] __attribute__((aligned(64)));
// y is 4 KiB longer than the row: the layout round 19's numbers were
// measured with.
static int8_t y[LEN + 4096] __attribute__((aligned(64)));
static int8_t every_byte[256] __attribute__((aligned(64)));

// Pass 1: S from vpsadbw of x ^ 0x80 against zero, two accumulators.
static int64_t sum_pass(void) {
    __m512i flip = _mm512_set1_epi8(-128), zero = _mm512_setzero_si512(), s0 = zero, s1 = zero;
    for (int i = 0; i < LEN; i += 128) {
        __m512i a = _mm512_xor_si512(_mm512_loadu_si512(x + i), flip), b = _mm512_xor_si512(_mm512_loadu_si512(x + i + 64), flip);
        s0 = _mm512_add_epi64(s0, _mm512_sad_epu8(a, zero));
        s1 = _mm512_add_epi64(s1, _mm512_sad_epu8(b, zero));
    }
    return _mm512_reduce_add_epi64(_mm512_add_epi64(s0, s1)) - 128 * LEN;
}

// Pass 2 as the kernel ran it until round 21: sum |x - q| and
// sum |x - q - 1| by two vpsadbw.
static int64_t sad_pass(int8_t q) {
    __m512i flip = _mm512_set1_epi8(-128), qf = _mm512_set1_epi8(q ^ -128), q1f = _mm512_set1_epi8((q + 1) ^ -128);
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    for (int i = 0; i < LEN; i += 64) {
        __m512i f = _mm512_xor_si512(_mm512_loadu_si512(x + i), flip);
        s0 = _mm512_add_epi64(s0, _mm512_sad_epu8(f, qf));
        s1 = _mm512_add_epi64(s1, _mm512_sad_epu8(f, q1f));
    }
    return _mm512_reduce_add_epi64(s0) + 3 * _mm512_reduce_add_epi64(s1);
}

// Pass 2 with one vpsadbw, the kernel's since issue 11's round 21: for
// integers x and q1 = q + 1, |x - q1| = |x - q| + 1 where x <= q and - 1
// where x > q, so sum |x - q1| = sum |x - q| + n - 2 count(x > q); the
// count from a signed compare into a mask and popcnt. main checks that it
// returns what sad_pass does for every q < 127.
static int64_t sad_pass_count(int8_t q) {
    __m512i flip = _mm512_set1_epi8(-128), qv = _mm512_set1_epi8(q), qf = _mm512_set1_epi8(q ^ -128);
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    int64_t c0 = 0, c1 = 0;
    for (int i = 0; i < LEN; i += 128) {
        __m512i v = _mm512_loadu_si512(x + i), w = _mm512_loadu_si512(x + i + 64);
        s0 = _mm512_add_epi64(s0, _mm512_sad_epu8(_mm512_xor_si512(v, flip), qf));
        s1 = _mm512_add_epi64(s1, _mm512_sad_epu8(_mm512_xor_si512(w, flip), qf));
        c0 += __builtin_popcountll(_mm512_cmpgt_epi8_mask(v, qv));
        c1 += __builtin_popcountll(_mm512_cmpgt_epi8_mask(w, qv));
    }
    int64_t sad_q = _mm512_reduce_add_epi64(_mm512_add_epi64(s0, s1));
    return sad_q + 3 * (sad_q + LEN - 2 * (c0 + c1));
}

typedef struct { __m512i mul, sub, order; __m128i shift; } Consts;

// 16 int8 lanes requantized (unweighted: one shift).
static inline __attribute__((always_inline)) __m512i group16(const int8_t* p, const Consts* k) {
    __m512i prod = _mm512_sub_epi32(_mm512_mullo_epi32(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)p)), k->mul), k->sub);
    return _mm512_sra_epi32(prod, k->shift);
}

static inline __attribute__((always_inline)) __m512i requant64(const int8_t* p, const Consts* k) {
    __m512i packed = _mm512_packs_epi16(_mm512_packs_epi32(group16(p, k), group16(p + 16, k)), _mm512_packs_epi32(group16(p + 32, k), group16(p + 48, k)));
    return _mm512_permutexvar_epi32(k->order, packed);
}

static __m512i table[4];

// The row's table: the requantized output of every byte.
static int8_t build_table(const Consts* k) {
    for (int j = 0; j < 4; j++) table[j] = requant64(every_byte + 64 * j, k);
    return (int8_t)_mm512_reduce_add_epi32(table[3]);
}

// The same table as the kernel builds it since round 22: x mul - sub for
// x = 0..15 from one multiply, each next group of 16 bytes that plus
// 16 mul (wrapping, as vpmulld wraps), the bytes 128-255 (x = -128..-1)
// from first - 128 mul: no widening and one multiply per row.
static int8_t build_table_stepped(const Consts* k) {
    __m512i first = _mm512_sub_epi32(_mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), k->mul), k->sub);
    __m512i step = _mm512_slli_epi32(k->mul, 4), up = first, down = _mm512_sub_epi32(first, _mm512_slli_epi32(k->mul, 7));
    __m512i g[16];
    for (int j = 0; j < 8; j++) {
        g[j] = _mm512_sra_epi32(up, k->shift);
        g[8 + j] = _mm512_sra_epi32(down, k->shift);
        up = _mm512_add_epi32(up, step);
        down = _mm512_add_epi32(down, step);
    }
    for (int j = 0; j < 4; j++)
        table[j] = _mm512_permutexvar_epi32(k->order, _mm512_packs_epi16(_mm512_packs_epi32(g[4 * j], g[4 * j + 1]), _mm512_packs_epi32(g[4 * j + 2], g[4 * j + 3])));
    return (int8_t)_mm512_reduce_add_epi32(table[3]);
}

// Pass 3 through the table: two vpermt2b and a blend on the index's sign.
static int8_t write_pass(void) {
    __m512i t0 = table[0], t1 = table[1], t2 = table[2], t3 = table[3];
    for (int i = 0; i < LEN; i += 64) {
        __m512i v = _mm512_loadu_si512(x + i);
        __m512i lo = _mm512_permutex2var_epi8(t0, v, t1), hi = _mm512_permutex2var_epi8(t2, v, t3);
        _mm512_storeu_si512(y + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), lo, hi));
    }
    return y[LEN - 1];
}

// Pass 3 without the table (rows with a weight or bias, or no VBMI):
// four groups of 16 widened, multiplied, shifted and packed per 64 bytes.
static int8_t write_plain_pass(const Consts* k) {
    for (int i = 0; i < LEN; i += 64) _mm512_storeu_si512(y + i, requant64(x + i, k));
    return y[LEN - 1];
}

static volatile int64_t sink;
// The second pass's q, read at every call from a volatile no timed call
// writes: until round 21 it was taken from `sink`, so each call waited
// for the previous call's result (a reduction's latency per row, which
// the kernel's rows, two ahead, do not wait for).
static volatile int8_t q_in = 3;

// A copy of the row by 512-bit loads and stores.
static int8_t copy_row(void) {
    for (int i = 0; i < LEN; i += 64) _mm512_storeu_si512(y + i, _mm512_loadu_si512(x + i));
    return y[LEN - 1];
}

// The four one after another. Every result is used, so the compiler keeps
// each pass's work, and compiler barriers between them keep it from
// merging the loads of passes 1 and 2 (in the kernel they read different
// rows).
static int64_t all_passes(const Consts* k) {
    int64_t s = sum_pass();
    __asm__ volatile("" ::: "memory");
    s += sad_pass_count(q_in);
    __asm__ volatile("" ::: "memory");
    s += build_table_stepped(k);
    __asm__ volatile("" ::: "memory");
    return s + write_pass();
}

static const long REPS = 400000;

#define TIME(EXPR) ({ double t0 = now(); for (long rep = 0; rep < REPS; rep++) { __asm__ volatile("" ::: "memory"); sink = (EXPR); } (now() - t0) / (REPS * (double)BLOCKS) * 1e9; })

int main(void) {
    srand(1);
    for (int i = 0; i < LEN; i++) x[i] = (int8_t)(rand() % 256 - 128);
    for (int i = 0; i < 256; i++) every_byte[i] = (int8_t)i;
    Consts k = {_mm512_set1_epi32(300), _mm512_set1_epi32(1000), _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), _mm_cvtsi32_si128(8)};
    // The stepped table against the widened one, also for constants whose
    // products wrap (the identity holds modulo 2^32).
    const int32_t muls[] = {300, -300, 1, 0x12345678, 0x7fffffff, -0x7fffffff - 1};
    const int32_t subs[] = {1000, -1000, 0, 0x7fffffff, -0x7fffffff - 1};
    const int shifts[] = {0, 8, 31};
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 5; b++)
            for (int c = 0; c < 3; c++) {
                Consts kc = {_mm512_set1_epi32(muls[a]), _mm512_set1_epi32(subs[b]), k.order, _mm_cvtsi32_si128(shifts[c])};
                __m512i widened[4];
                build_table(&kc);
                for (int j = 0; j < 4; j++) widened[j] = table[j];
                build_table_stepped(&kc);
                for (int j = 0; j < 4; j++)
                    if (_mm512_cmpneq_epi8_mask(widened[j], table[j])) {
                        fprintf(stderr, "build_table_stepped differs from build_table (mul %d, sub %d, shift %d)\n", muls[a], subs[b], shifts[c]);
                        return 1;
                    }
            }
    build_table(&k);
    for (int q = -128; q < 127; q++)
        if (sad_pass((int8_t)q) != sad_pass_count((int8_t)q)) {
            fprintf(stderr, "sad_pass_count differs from sad_pass at q = %d\n", q);
            return 1;
        }
    enum { R = 9, K = 9 };
    const char* names[K] = {
        "pass 1: the sum (xor, vpsadbw, add)",
        "pass 2 before round 21: two sums (xor, 2 vpsadbw, 2 adds)",
        "the row's table before round 22 (4 x requant64), over the row",
        "pass 3: the table write (2 vpermt2b, blend, store)",
        "pass 3 without the table (no VBMI; weight or bias rows do more)",
        "the three passes and the table, one after another",
        "a copy of the row (512-bit loads and stores)",
        "pass 2: one vpsadbw and a count (compare, popcnt)",
        "the row's table, stepped (one vpmulld), over the row",
    };
    double res[K][R], ghz[R];
    for (int r = 0; r < R; r++) {
        ghz[r] = clock_ghz();
        res[0][r] = TIME(sum_pass());
        res[1][r] = TIME(sad_pass(q_in));
        res[2][r] = TIME(build_table(&k));
        res[3][r] = TIME(write_pass());
        res[4][r] = TIME(write_plain_pass(&k));
        res[5][r] = TIME(all_passes(&k));
        res[6][r] = TIME(copy_row());
        res[7][r] = TIME(sad_pass_count(q_in));
        res[8][r] = TIME(build_table_stepped(&k));
    }
    qsort(ghz, R, sizeof(double), cmp_doubles);
    double g = ghz[R / 2];
    printf("clock (dependent integer adds): %.2f GHz (%.2f-%.2f); one row of %d int8 in L1; medians of %d runs\n", g, ghz[0], ghz[R - 1], LEN, R);
    for (int j = 0; j < K; j++) {
        qsort(res[j], R, sizeof(double), cmp_doubles);
        printf("%-60s %6.2f cycles per 64 bytes (%.2f-%.2f)\n", names[j], res[j][R / 2] * g, res[j][0] * g, res[j][R - 1] * g);
    }
    return 0;
}
