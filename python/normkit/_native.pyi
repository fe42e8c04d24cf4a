"""Type stubs for the compiled extension ``normkit._native``.

The native functions take 2-d float32/float64 arrays with contiguous rows
(the Python layer prepares them) and write into ``out``. They re-check what
memory safety depends on: aligned, native-byte-order arrays of one shape, a
writeable ``out`` that is the input itself or is computed through a scratch
buffer when it partially overlaps it, and ``weight`` / ``bias`` (1-d, of the
row length) that share no memory with any output (``ValueError``). Each
weight and bias is copied once, by the native layer. Calls of 16384
elements or more release the GIL.
"""

import numpy as np
import numpy.typing as npt

ISA_LEVELS: list[str]
MAX_THREADS: int
SOFTMAX_ALGORITHMS: list[str]

def cpu_info() -> dict[str, object]: ...
def set_num_threads(threads: int) -> None: ...
def get_num_threads() -> int: ...
def softmax(x: npt.NDArray[np.floating], out: npt.NDArray[np.floating], algorithm: str) -> None: ...
def log_softmax(x: npt.NDArray[np.floating], out: npt.NDArray[np.floating]) -> None: ...
def logsumexp(x: npt.NDArray[np.floating], out: npt.NDArray[np.floating]) -> None: ...
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
def auto_algorithm(n: int, itemsize: int) -> str: ...
def l1_norm_i8(
    x: npt.NDArray[np.int8],
    out: npt.NDArray[np.int8],
    gain: float,
    weight: npt.NDArray[np.int8] | None = None,
    bias: npt.NDArray[np.int8] | None = None,
) -> None: ...
def l1_norm_float(
    x: npt.NDArray[np.floating],
    out: npt.NDArray[np.floating],
    eps: float,
    weight: npt.NDArray[np.floating] | None = None,
    bias: npt.NDArray[np.floating] | None = None,
) -> None: ...
def norm(
    x: npt.NDArray[np.floating],
    out: npt.NDArray[np.floating],
    kind: str,
    eps: float,
    weight: npt.NDArray[np.floating] | None = None,
    bias: npt.NDArray[np.floating] | None = None,
    mean: npt.NDArray[np.floating] | None = None,
    rstd: npt.NDArray[np.floating] | None = None,
) -> None: ...
def add_norm(
    x: npt.NDArray[np.floating],
    residual: npt.NDArray[np.floating],
    out: npt.NDArray[np.floating],
    sum_out: npt.NDArray[np.floating],
    kind: str,
    eps: float,
    weight: npt.NDArray[np.floating] | None = None,
    bias: npt.NDArray[np.floating] | None = None,
    mean: npt.NDArray[np.floating] | None = None,
    rstd: npt.NDArray[np.floating] | None = None,
) -> None: ...
