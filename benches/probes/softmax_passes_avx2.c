// A C replica of normkit's AVX2 float32 three-pass softmax (max; exp,
// store and sum; scale in place), row by row, in cycles per 8-float
// register: each pass alone on one row in L2 (30720 elements), and the
// whole softmax on rows in L2, L3 and memory. The exponential is the
// kernels' 8-entry table form (`exp_down_table8`: XNNPACK's rr2-lut8), the
// sum is kept in float32 over blocks of 128 elements and added up in
// float64, and the passes prefetch 8 KiB ahead, as in
// rust/softmax/vector.rs. Issue 11, round 29 (AMD Zen 3). Variants:
//
//   -DPF=0   no software prefetches
//   -DDEF=1  each block's horizontal sum issued after the next block's loop
//            (as the kernels do since round 29; the default is the loop before)
//   -DEST=1  the polynomial as t + t^2 (c2 + c3 t) instead of t (1 + t (c2 + c3 t))
//   -DSWP=R  the exp pass software-pipelined over steps of R = 2 or 4 registers
//            (round 30): the first stage of the next step's registers (clamp,
//            reduction, table lookup, t) is issued before this step's
//            polynomial, store and sum; block sums deferred as with DEF=1.
//            It keeps 2R more registers live: gcc 12 spills one of them to
//            the stack with R = 2 and more with R = 4 (check with -S). A
//            row's last step repeats its own first stage (1/64 of a row of
//            1024 with R = 2), and with R = 2 the exp pass covers whole
//            steps of 16 elements
//
//     gcc -O3 -mavx2 -mfma benches/probes/softmax_passes_avx2.c -o /tmp/sp2 -lm && /tmp/sp2
//
// gcc keeps the exponential's constants in registers (or as memory
// operands); rustc's build of the same loop reloads several of them per
// iteration and keeps one sum on the stack, so this replica is a bound on
// what the same operations cost, not a copy of the kernel's code.
// The loops take whole steps of 32 elements only: a row's last n mod 32
// elements are skipped (26 of 30522; cycles are still per n / 8 registers).
#include <immintrin.h>
#include <stdio.h>
#include <string.h>
#include <math.h>
#include "probe_clock.h"
static float tbl[8];
#define MAGIC 1572864.0f
#define LN2HI 0.693145751953125f
#define LN2LO 1.428606765330187045e-06f
#define C2 0.5000646f
#define C3 0.1666686f
#define BLK 128
#ifndef PF
#define PF 1
#endif
#ifndef DEF
#define DEF 0
#endif
#ifndef EST
#define EST 0
#endif
#ifndef SWP
#define SWP 0
#endif
#if SWP && (SWP != 2 && SWP != 4)
#error "SWP is 0 (off), 2 or 4: a step's registers must divide a block of BLK elements"
#endif
// The exponential in two stages (SWP issues them for different steps):
// the scale s = 2^(K/8) and the reduced t, then s + s t q(t).
typedef struct { __m256 s, t; } reduced;
static inline reduced exp_first(__m256 x, __m256 lo, __m256 base, __m256 table, __m256 clampv){
  x = _mm256_max_ps(lo, x);
  __m256 v = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504f), base);
  __m256 r = _mm256_sub_ps(v, base);
  __m256i k = _mm256_castps_si256(_mm256_max_ps(clampv, v));
  __m256i e = _mm256_castps_si256(_mm256_permutevar8x32_ps(table, k));
  reduced o;
  o.s = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_slli_epi32(k, 20)));
  __m256 t = _mm256_fmadd_ps(r, _mm256_set1_ps(-LN2HI), x);
  o.t = _mm256_fmadd_ps(r, _mm256_set1_ps(-LN2LO), t);
  return o;
}
static inline __m256 exp_second(reduced a){
#if EST
  __m256 f = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(C3), a.t, _mm256_set1_ps(C2)), _mm256_mul_ps(a.t, a.t), a.t);
#else
  __m256 q = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(C3), a.t, _mm256_set1_ps(C2)), a.t, _mm256_set1_ps(1.0f));
  __m256 f = _mm256_mul_ps(q, a.t);
#endif
  return _mm256_fmadd_ps(a.s, f, a.s);
}
static inline __m256 exp_h(__m256 x, __m256 lo, __m256 base, __m256 table, __m256 clampv){
  return exp_second(exp_first(x, lo, base, table, clampv));
}
static inline float hsum(__m256 s){ __m128 h=_mm_add_ps(_mm256_castps256_ps128(s),_mm256_extractf128_ps(s,1));
    h=_mm_add_ps(h,_mm_movehl_ps(h,h)); h=_mm_add_ss(h,_mm_movehdup_ps(h)); return _mm_cvtss_f32(h); }
static inline float rowmax(const float* x, long n){
  __m256 m0=_mm256_set1_ps(-INFINITY),m1=m0,m2=m0,m3=m0;
  for(long i=0;i+32<=n;i+=32){
    if(PF){ _mm_prefetch((const char*)(x+i)+8192,_MM_HINT_T0); _mm_prefetch((const char*)(x+i)+8192+64,_MM_HINT_T0);}
    m0=_mm256_max_ps(m0,_mm256_loadu_ps(x+i)); m1=_mm256_max_ps(m1,_mm256_loadu_ps(x+i+8));
    m2=_mm256_max_ps(m2,_mm256_loadu_ps(x+i+16)); m3=_mm256_max_ps(m3,_mm256_loadu_ps(x+i+24));
  }
  __m256 m=_mm256_max_ps(_mm256_max_ps(m0,m1),_mm256_max_ps(m2,m3)); m=_mm256_max_ps(m,_mm256_permute2f128_ps(m,m,1));
  m=_mm256_max_ps(m,_mm256_permute_ps(m,0x4e)); m=_mm256_max_ps(m,_mm256_permute_ps(m,0xb1)); return _mm256_cvtss_f32(m);
}
static inline double exppass(const float* x, float* y, long n, float nm){
  __m256 lo=_mm256_set1_ps(-363408.0f), base=_mm256_sub_ps(_mm256_set1_ps(MAGIC), _mm256_set1_ps(nm));
  __m256 table=_mm256_loadu_ps(tbl), clampv=_mm256_set1_ps(MAGIC-127.0f);
  double total=0; __m256 pending=_mm256_setzero_ps();
  for(long st=0; st<n; st+=BLK){
    long end = st+BLK<n?st+BLK:n;
    __m256 s0=_mm256_setzero_ps(), s1=_mm256_setzero_ps();
    for(long i=st;i+32<=end;i+=32){
      if(PF){ _mm_prefetch((const char*)(x+i)+8192,_MM_HINT_T0); _mm_prefetch((const char*)(x+i)+8192+64,_MM_HINT_T0);
              _mm_prefetch((const char*)(y+i)+8192,_MM_HINT_T0); _mm_prefetch((const char*)(y+i)+8192+64,_MM_HINT_T0);}
      _Pragma("GCC unroll 8") for(int k=0;k<4;k++){
        __m256 e = exp_h(_mm256_loadu_ps(x+i+8*k), lo, base, table, clampv);
        _mm256_storeu_ps(y+i+8*k, e);
        if(k&1) s1=_mm256_add_ps(s1,e); else s0=_mm256_add_ps(s0,e);
      }
    }
#if DEF
    total += hsum(pending); pending=_mm256_add_ps(s0,s1);
#else
    total += hsum(_mm256_add_ps(s0,s1));
#endif
  }
  return total + hsum(pending);
}
// The exp pass software-pipelined (SWP=R registers per step), whole steps only.
enum { R = SWP > 0 ? SWP : 1 };
static inline double exppass_swp(const float* x, float* y, long n, float nm){
  __m256 lo=_mm256_set1_ps(-363408.0f), base=_mm256_sub_ps(_mm256_set1_ps(MAGIC), _mm256_set1_ps(nm));
  __m256 table=_mm256_loadu_ps(tbl), clampv=_mm256_set1_ps(MAGIC-127.0f);
  double total=0; __m256 pending=_mm256_setzero_ps(), s0=pending, s1=pending;
  long steps=n/(8*R);
  if(steps==0) return 0;
  reduced cur[R], next[R];
  for(int k=0;k<R;k++) cur[k]=exp_first(_mm256_loadu_ps(x+8*k),lo,base,table,clampv);
  for(long j=0;j<steps;j++){
    long i=j*8*R, ni=j+1<steps?i+8*R:i;
    if(PF && i%32==0){ _mm_prefetch((const char*)(x+i)+8192,_MM_HINT_T0); _mm_prefetch((const char*)(x+i)+8192+64,_MM_HINT_T0);
            _mm_prefetch((const char*)(y+i)+8192,_MM_HINT_T0); _mm_prefetch((const char*)(y+i)+8192+64,_MM_HINT_T0);}
    _Pragma("GCC unroll 4") for(int k=0;k<R;k++) next[k]=exp_first(_mm256_loadu_ps(x+ni+8*k),lo,base,table,clampv);
    _Pragma("GCC unroll 4") for(int k=0;k<R;k++){ __m256 e=exp_second(cur[k]); _mm256_storeu_ps(y+i+8*k,e);
      if(k&1) s1=_mm256_add_ps(s1,e); else s0=_mm256_add_ps(s0,e); }
    _Pragma("GCC unroll 4") for(int k=0;k<R;k++) cur[k]=next[k];
    if((j+1)%(BLK/(8*R))==0 || j+1==steps){ total+=hsum(pending); pending=_mm256_add_ps(s0,s1); s0=_mm256_setzero_ps(); s1=s0; }
  }
  return total+hsum(pending);
}
static inline void scalepass(float* y, long n, float r){
  __m256 rv=_mm256_set1_ps(r);
  for(long i=0;i+32<=n;i+=32){
    if(PF){ _mm_prefetch((const char*)(y+i)+8192,_MM_HINT_T0); _mm_prefetch((const char*)(y+i)+8192+64,_MM_HINT_T0);}
    _Pragma("GCC unroll 4") for(int k=0;k<4;k++) _mm256_storeu_ps(y+i+8*k,_mm256_mul_ps(rv,_mm256_loadu_ps(y+i+8*k)));
  }
}
__attribute__((noipa)) void softmax(const float* x, float* y, long rows, long n){
  for(long r=0;r<rows;r++){ const float* xr=x+r*n; float* yr=y+r*n;
    float m=rowmax(xr,n); float nm=nearbyintf(m*1.44269504f);
    double s=SWP?exppass_swp(xr,yr,n,nm):exppass(xr,yr,n,nm); scalepass(yr,n,(float)(1.0/s)); }
}
static double median(double* v, int k){ qsort(v,k,sizeof(double),cmp_doubles); return v[k/2]; }
__attribute__((noipa)) float max_only(const float* x, long n){ return rowmax(x,n); }
__attribute__((noipa)) double exp_only(const float* x, float* y, long n){ return SWP?exppass_swp(x,y,n,0.0f):exppass(x,y,n,0.0f); }
// r is read from a volatile: with a constant 1 the compiler drops the multiply and the store.
static volatile float one = 1.0f;
__attribute__((noipa)) void scale_only(float* y, long n){ scalepass(y,n,one); }
int main(void){
  for(int j=0;j<8;j++){ float e=exp2f(j/8.0f); unsigned b; memcpy(&b,&e,4); b-= (unsigned)j<<20; memcpy(&tbl[j],&b,4);}
  double g=clock_ghz();
  printf("clock %.2f GHz (integer add chain); PF=%d DEF=%d EST=%d SWP=%d; cycles per register, medians of 11\n", g, PF, DEF || SWP, EST, SWP);
  { long n=30720; float*x=aligned_alloc(64,n*4),*y=aligned_alloc(64,n*4);
    for(long i=0;i<n;i++){x[i]=(float)((i*2654435761u)%20000)/1000.0f-10.0f; y[i]=1.0f;}
    long reps=20000000/n; double a[11],b[11],c[11]; double acc=0;
    for(int r=0;r<11;r++){ double t=now(); for(long k=0;k<reps;k++){acc+=max_only(x,n); __asm__ volatile("":::"memory");} a[r]=(now()-t)/reps;
      t=now(); for(long k=0;k<reps;k++){acc+=exp_only(x,y,n); __asm__ volatile("":::"memory");} b[r]=(now()-t)/reps;
      t=now(); for(long k=0;k<reps;k++){scale_only(y,n); __asm__ volatile("":::"memory");} c[r]=(now()-t)/reps; }
    printf("one row of %ld in L2, each pass alone: max %.2f, exp+store+sum %.2f, scale %.2f%s\n", n,
      median(a,11)*g*1e9/(n/8), median(b,11)*g*1e9/(n/8), median(c,11)*g*1e9/(n/8), acc==1.5?" ":""); free(x); free(y); }
  long shapes[][2]={{1,30720},{64,30522},{256,1024},{4096,1024}};
  for(int si=0;si<4;si++){ long rows=shapes[si][0], n=shapes[si][1], len=rows*n; float*x=aligned_alloc(64,(len*4+63)/64*64),*y=aligned_alloc(64,(len*4+63)/64*64);
    for(long i=0;i<len;i++){x[i]=(float)((i*2654435761u)%20000)/1000.0f-10.0f; y[i]=0;}
    long reps=8000000/len; if(reps<1)reps=1; double a[11],c[11];
    for(int r=0;r<11;r++){ double t=now(); for(long k=0;k<reps;k++){ memcpy(y,x,len*4); __asm__ volatile("":::"memory");} c[r]=(now()-t)/reps;
      t=now(); for(long k=0;k<reps;k++){softmax(x,y,rows,n); __asm__ volatile("":::"memory");} a[r]=(now()-t)/reps; }
    printf("%ldx%ld: softmax %.2f, memcpy %.2f\n",rows,n,median(a,11)*g*1e9/(len/8),median(c,11)*g*1e9/(len/8)); free(x); free(y); }
  return 0;
}
