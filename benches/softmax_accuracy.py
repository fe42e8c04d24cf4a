"""Softmax accuracy against float64, per instruction set and algorithm:
max elementwise relative error over results in float32's normal range,
on rows of 1..4096 elements (scales 1 and 30), one 64K row and one
16M row (scale 10); log-softmax error in units of max(1e-5, ulp(result)).

    for isa in scalar avx2 avx512; do NORMKIT_ISA=$isa python benches/softmax_accuracy.py; done
"""
import os, sys, numpy as np, normkit
rng = np.random.default_rng(1)
TINY=np.finfo(np.float32).tiny
def rel(y,r):
    m=r>=TINY
    return float(np.max(np.abs(y[m]-r[m])/r[m]))
def ref(x):
    x=x.astype(np.float64); e=np.exp(x-x.max(-1,keepdims=True)); return e/e.sum(-1,keepdims=True)
def lref(x):
    x=x.astype(np.float64); s=x-x.max(-1,keepdims=True); return s-np.log(np.exp(s).sum(-1,keepdims=True))
res={}
rows=[rng.standard_normal((50,n)).astype(np.float32)*sc for n in list(range(1,301,7))+[1024,4096] for sc in (1,30)]
for a in normkit.SOFTMAX_ALGORITHMS:
    w=0
    for x in rows:
        r=ref(x); w=max(w,rel(normkit.softmax(x,algorithm=a),r))
    big=rng.standard_normal((1,65536)).astype(np.float32)*10
    r=ref(big); w64=rel(normkit.softmax(big,algorithm=a),r)
    huge=rng.standard_normal((1,1<<24)).astype(np.float32)*10
    r=ref(huge); w16=rel(normkit.softmax(huge,algorithm=a),r)
    print(f"{os.environ.get('NORMKIT_ISA','best')} softmax {a}: rows<=4096 {w:.2e}  64K {w64:.2e}  16M {w16:.2e}")
w=0
for x in rows:
    r=lref(x); w=max(w,float(np.max(np.abs(normkit.log_softmax(x)-r)/np.maximum(1e-5,np.spacing(np.abs(r).astype(np.float32))))))
print(f"{os.environ.get('NORMKIT_ISA','best')} log_softmax error / max(1e-5, ulp): {w:.2f}")
