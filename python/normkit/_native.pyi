"""Type stubs for the compiled extension ``normkit._native``.

The native functions take 2-d float32/float64 arrays with contiguous rows
(the Python layer prepares them) and write into ``out``. They re-check what
memory safety depends on: aligned, native-byte-order arrays of one shape, a
writeable ``out`` that is the input itself or is computed through a scratch
buffer when it partially overlaps it, and ``weight`` / ``bias`` (1-d, of the
row length) that share no memory with any output (``ValueError``); the
norms' ``eps`` must be finite and >= 0 (``ValueError``). Each weight and
bias is copied once, by the native layer. Calls of 16384 elements or more
release the GIL.

``half="bfloat16"`` or ``"float16"``: ``x``, ``out`` (``residual``,
``sum_out``) are ``uint16`` views of 16-bit floats of that type, computed in
float32 and rounded once (to nearest even) at the store; ``weight``,
``bias``, ``mean`` and ``rstd`` are float32 then (``normkit._half``).

``softmax``, ``log_softmax``, ``norm``, ``l1_norm_float`` and ``add_norm``
also take an ``x`` of any rank (C-contiguous; a 2-d ``x`` may have any row
stride, its rows contiguous), with ``out=None`` (a new C-contiguous array)
or an ``out`` of exactly x's shape, and return the output (``add_norm``:
``(out, sum_out)``, either None, and ``residual`` of exactly x's shape):
the Python layer's direct path (``normkit._rowwise.is_direct``).
"""

from typing import Literal

import numpy as np
import numpy.typing as npt

ISA_LEVELS: list[str]
MAX_THREADS: int
SOFTMAX_ALGORITHMS: list[str]

#: float rows, or uint16 views of half-precision rows (with ``half=``).
_Rows = npt.NDArray[np.floating] | npt.NDArray[np.uint16]
_Half = Literal["bfloat16", "float16"] | None

def cpu_info() -> dict[str, object]: ...
def set_num_threads(threads: int) -> None: ...
def get_num_threads() -> int: ...
def softmax(x: _Rows, out: _Rows | None, algorithm: str, *, half: _Half = None) -> _Rows: ...
def log_softmax(x: _Rows, out: _Rows | None, *, half: _Half = None) -> _Rows: ...
def logsumexp(x: _Rows, out: _Rows, *, half: _Half = None) -> None: ...
def softmax_fused(
    x: npt.NDArray[np.floating],
    out: npt.NDArray[np.floating],
    algorithm: str,
    log: bool,
    scale: float,
    bias: npt.NDArray[np.floating] | None = None,
    bias_index: npt.NDArray[np.intp] | None = None,
    mask: npt.NDArray[np.bool_] | None = None,
    mask_index: npt.NDArray[np.intp] | None = None,
) -> None: ...
def auto_algorithm(n: int, itemsize: int, rows: int = 1) -> str: ...
def l1_norm_i8(
    x: npt.NDArray[np.int8],
    out: npt.NDArray[np.int8],
    gain: float,
    weight: npt.NDArray[np.int8] | None = None,
    bias: npt.NDArray[np.int8] | None = None,
) -> None: ...
def l1_norm_float(
    x: _Rows,
    out: _Rows | None,
    eps: float,
    weight: npt.NDArray[np.floating] | None = None,
    bias: npt.NDArray[np.floating] | None = None,
    *,
    half: _Half = None,
) -> _Rows: ...
def norm(
    x: _Rows,
    out: _Rows | None,
    kind: str,
    eps: float,
    weight: npt.NDArray[np.floating] | None = None,
    bias: npt.NDArray[np.floating] | None = None,
    mean: npt.NDArray[np.floating] | None = None,
    rstd: npt.NDArray[np.floating] | None = None,
    *,
    half: _Half = None,
) -> _Rows: ...
def add_norm(
    x: _Rows,
    residual: _Rows,
    out: _Rows | None,
    sum_out: _Rows | None,
    kind: str,
    eps: float,
    weight: npt.NDArray[np.floating] | None = None,
    bias: npt.NDArray[np.floating] | None = None,
    mean: npt.NDArray[np.floating] | None = None,
    rstd: npt.NDArray[np.floating] | None = None,
    *,
    half: _Half = None,
) -> tuple[_Rows, _Rows]: ...
