// Issue rates of the AVX-512 instructions the softmax exponential is made
// of, on this core: the clock from a chain of dependent integer adds (one
// cycle each), then twelve independent chains of 512-bit and 256-bit FMAs,
// adds, vpermps and vscalefps, alone and interleaved, in ns and per cycle
// (medians of 9 runs). No hardware counters are needed (the VMs this
// project measures on have none). Issue 11, round 18:
//
//     gcc -O3 -mavx512f -mavx512vl -mfma benches/probes/issue_rates.c -o /tmp/issue_rates && /tmp/issue_rates
//
// The chains stay in registers only when the inner loops are unrolled
// (the pragmas; check with -S that no chain is loaded and stored).
#include <immintrin.h>
#include <stdio.h>
#include <stdint.h>
#include <time.h>
#include "probe_clock.h"
#define CHAINS 12
static double fma512(long n){
  __m512 a[CHAINS]; __m512 b=_mm512_set1_ps(0.999f), c=_mm512_set1_ps(0.001f);
  for(int k=0;k<CHAINS;k++) a[k]=_mm512_set1_ps(k);
  double t=now();
  for(long i=0;i<n;i++){ _Pragma("GCC unroll 16") for(int k=0;k<CHAINS;k++){ a[k]=_mm512_fmadd_ps(a[k],b,c); __asm__ volatile("":"+v"(a[k])); } }
  t=now()-t; float s=0; for(int k=0;k<CHAINS;k++) s+=_mm512_reduce_add_ps(a[k]); if(s==1234.5f) puts("");
  return t/(n*(double)CHAINS)*1e9;
}
static double fma256(long n){
  __m256 a[CHAINS]; __m256 b=_mm256_set1_ps(0.999f), c=_mm256_set1_ps(0.001f);
  for(int k=0;k<CHAINS;k++) a[k]=_mm256_set1_ps(k);
  double t=now();
  for(long i=0;i<n;i++){ _Pragma("GCC unroll 16") for(int k=0;k<CHAINS;k++){ a[k]=_mm256_fmadd_ps(a[k],b,c); __asm__ volatile("":"+x"(a[k])); } }
  t=now()-t; float s=0; for(int k=0;k<CHAINS;k++){ float v[8]; _mm256_storeu_ps(v,a[k]); s+=v[0]; } if(s==1234.5f) puts("");
  return t/(n*(double)CHAINS)*1e9;
}
static double add512(long n){
  __m512 a[CHAINS]; __m512 b=_mm512_set1_ps(1e-9f);
  for(int k=0;k<CHAINS;k++) a[k]=_mm512_set1_ps(k);
  double t=now();
  for(long i=0;i<n;i++){ _Pragma("GCC unroll 16") for(int k=0;k<CHAINS;k++){ a[k]=_mm512_add_ps(a[k],b); __asm__ volatile("":"+v"(a[k])); } }
  t=now()-t; float s=0; for(int k=0;k<CHAINS;k++) s+=_mm512_reduce_add_ps(a[k]); if(s==1234.5f) puts("");
  return t/(n*(double)CHAINS)*1e9;
}
static double fma_and_add512(long n){ // 6 FMA chains and 6 add chains interleaved
  __m512 a[CHAINS]; __m512 b=_mm512_set1_ps(0.999f), c=_mm512_set1_ps(0.001f);
  for(int k=0;k<CHAINS;k++) a[k]=_mm512_set1_ps(k);
  double t=now();
  for(long i=0;i<n;i++){ _Pragma("GCC unroll 16") for(int k=0;k<CHAINS;k+=2){ a[k]=_mm512_fmadd_ps(a[k],b,c); a[k+1]=_mm512_add_ps(a[k+1],c); __asm__ volatile("":"+v"(a[k]),"+v"(a[k+1])); } }
  t=now()-t; float s=0; for(int k=0;k<CHAINS;k++) s+=_mm512_reduce_add_ps(a[k]); if(s==1234.5f) puts("");
  return t/(n*(double)CHAINS)*1e9;
}
static double fma_and_scalef512(long n){ // 6 FMA chains and 6 vscalefps chains interleaved
  __m512 a[CHAINS]; __m512 b=_mm512_set1_ps(0.999f), c=_mm512_set1_ps(0.001f), e=_mm512_set1_ps(0.0f);
  for(int k=0;k<CHAINS;k++) a[k]=_mm512_set1_ps(k+1);
  double t=now();
  for(long i=0;i<n;i++){ _Pragma("GCC unroll 16") for(int k=0;k<CHAINS;k+=2){ a[k]=_mm512_fmadd_ps(a[k],b,c); a[k+1]=_mm512_scalef_ps(a[k+1],e); __asm__ volatile("":"+v"(a[k]),"+v"(a[k+1])); } }
  t=now()-t; float s=0; for(int k=0;k<CHAINS;k++) s+=_mm512_reduce_add_ps(a[k]); if(s==1234.5f) puts("");
  return t/(n*(double)CHAINS)*1e9;
}
static double perm512(long n){
  __m512 a[CHAINS]; __m512i idx=_mm512_set_epi32(0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15);
  for(int k=0;k<CHAINS;k++) a[k]=_mm512_set1_ps(k);
  double t=now();
  for(long i=0;i<n;i++){ _Pragma("GCC unroll 16") for(int k=0;k<CHAINS;k++){ a[k]=_mm512_permutexvar_ps(idx,a[k]); __asm__ volatile("":"+v"(a[k])); } }
  t=now()-t; float s=0; for(int k=0;k<CHAINS;k++) s+=_mm512_reduce_add_ps(a[k]); if(s==1234.5f) puts("");
  return t/(n*(double)CHAINS)*1e9;
}
static double scalef512(long n){
  __m512 a[CHAINS]; __m512 e=_mm512_set1_ps(0.0f);
  for(int k=0;k<CHAINS;k++) a[k]=_mm512_set1_ps(k+1);
  double t=now();
  for(long i=0;i<n;i++){ _Pragma("GCC unroll 16") for(int k=0;k<CHAINS;k++){ a[k]=_mm512_scalef_ps(a[k],e); __asm__ volatile("":"+v"(a[k])); } }
  t=now()-t; float s=0; for(int k=0;k<CHAINS;k++) s+=_mm512_reduce_add_ps(a[k]); if(s==1234.5f) puts("");
  return t/(n*(double)CHAINS)*1e9;
}
int main(void){
  enum{R=9}; double g[R],f5[R],f2[R],a5[R],fa[R],p5[R],s5[R],fs[R];
  long n=20000000;
  for(int r=0;r<R;r++){ g[r]=clock_ghz(); f5[r]=fma512(n); f2[r]=fma256(n); a5[r]=add512(n); fa[r]=fma_and_add512(n); p5[r]=perm512(n); s5[r]=scalef512(n); fs[r]=fma_and_scalef512(n); }
  double* all[]={g,f5,f2,a5,fa,p5,s5,fs}; for(int i=0;i<8;i++) qsort(all[i],R,sizeof(double),cmp_doubles);
  double ghz=g[R/2];
  printf("clock (dependent integer adds): %.2f GHz (%.2f-%.2f), %d runs, medians below\n", ghz, g[0], g[R-1], R);
  const char* names[]={"","zmm vfmadd231ps","ymm vfmadd231ps","zmm vaddps","zmm fma+add interleaved","zmm vpermps","zmm vscalefps","zmm fma+scalef interleaved"};
  for(int i=1;i<8;i++) printf("%-26s %.3f ns per instruction = %.2f per cycle (%.3f-%.3f ns)\n", names[i], all[i][R/2], 1.0/(all[i][R/2]*ghz), all[i][0], all[i][R-1]);
  return 0;
}
