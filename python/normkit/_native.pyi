"""Type stubs for the compiled extension ``normkit._native``.

The native functions take 2-d float32/float64 arrays with contiguous rows
(the Python layer prepares them) and write into ``out``.
"""

import numpy as np
import numpy.typing as npt

ISA_LEVELS: list[str]
SOFTMAX_ALGORITHMS: list[str]

def cpu_info() -> dict[str, object]: ...
def set_num_threads(threads: int) -> None: ...
def get_num_threads() -> int: ...
def softmax(x: npt.NDArray[np.floating], out: npt.NDArray[np.floating], algorithm: str) -> None: ...
def log_softmax(x: npt.NDArray[np.floating], out: npt.NDArray[np.floating]) -> None: ...
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
) -> None: ...
