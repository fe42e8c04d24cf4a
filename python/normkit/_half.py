"""bfloat16 and float16 storage: which dtypes the kernels read and write as
16-bit floats, and the promotion rule of their weights.

The kernels load 16-bit floats, compute in float32 registers and round once
(to nearest even) at the store. A half array reaches ``normkit._native`` as
a ``uint16`` view with ``half="bfloat16"`` or ``half="float16"``: never as
a bfloat16 dtype, whose lookup by name in rust-numpy panics when
``ml_dtypes`` was never imported. bfloat16 is recognised by its dtype
name, so ``ml_dtypes`` stays optional and is never imported here.
"""

from __future__ import annotations

import numpy as np

FLOAT16 = np.dtype(np.float16)
FLOAT32 = np.dtype(np.float32)
UINT16 = np.dtype(np.uint16)


def half_name(dtype: np.dtype) -> str | None:
    """``"float16"`` or ``"bfloat16"`` for a native-byte-order half dtype
    (the ``half=`` argument of the native kernels), else None."""
    if dtype == FLOAT16:
        return "float16"
    if dtype.name == "bfloat16" and dtype.itemsize == 2:
        return "bfloat16"
    return None


def as_bits(rows: np.ndarray) -> np.ndarray:
    """A half array as the ``uint16`` view the native layer takes."""
    return rows.view(UINT16)


def half_channel(name: str, label: str, a: np.ndarray, x_dtype: np.dtype) -> np.ndarray:
    """A weight or bias for half-precision ``x``, as the float32 array the
    kernels take. It may be float32 or x's own half type (one row:
    converted once, exactly); anything else is a ``TypeError``: a float64
    weight would be silently rounded to float32 (or force a float64
    computation of a half result), and the two half types differ in range
    and precision, so neither converts without loss."""
    if a.dtype == FLOAT32 or a.dtype == x_dtype:
        return a.astype(FLOAT32, copy=False)
    if half_name(a.dtype):
        why = f"{a.dtype} and {x_dtype} differ in range and precision; neither converts to the other without loss"
    else:
        why = f"converting {a.dtype} to the float32 the kernels compute in could silently lose precision"
    raise TypeError(
        f"{name}: {label} has dtype {a.dtype} but x is {x_dtype}; with half-precision x, {label} must be float32 "
        f"or {x_dtype} ({why}): convert it explicitly, e.g. {label}.astype(np.float32)"
    )
