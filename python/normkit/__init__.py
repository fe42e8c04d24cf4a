"""normkit: SIMD normalization kernels for NumPy.

Softmax (two-pass, three-pass and online algorithms) and log-softmax,
chosen at run time for AVX-512, AVX2 or plain scalar code. Functions
follow NumPy conventions: any array-like, ``axis``, ``out=``.
"""

from __future__ import annotations

from . import _native
from . import coda
from ._threads import get_num_threads, set_num_threads
from .l1norm import l1_norm
from .norm import add_layer_norm, add_rms_norm, crms_norm, layer_norm, rms_norm
from .softmax import ALGORITHMS as SOFTMAX_ALGORITHMS
from .softmax import log_softmax, logsumexp, softmax
from . import nn  # after the kernels it is built on

__version__ = "0.1.0"


def cpu_info() -> dict:
    """What the CPU supports and which kernels run: ``detected`` (best
    level), ``available`` (every level), ``active`` (in use, lowered by
    ``NORMKIT_ISA``), ``forced`` (the variable's value), ``arch``,
    ``num_threads``, ``tuning`` (``amd_zen4`` or ``default``: which set of
    measured choices applies, for softmax's ``auto`` crossover and
    ``prefetch``) and ``prefetch`` (whether the kernels issue software
    prefetches: on x86-64 but on AMD Zen 4, where they were measured to
    cost; the aarch64 kernels have none). The levels are ``scalar``,
    ``avx2``, ``avx512`` on x86-64 and ``scalar``, ``neon`` on aarch64.
    Sub-features that concern bfloat16 / float16 are reported as booleans:
    ``f16c`` (part of the x86-64 vector levels) and ``avx512_bf16``
    (detected, not used) on x86-64, ``fp16`` on aarch64.

    Examples
    --------
    >>> import normkit
    >>> info = normkit.cpu_info()
    >>> {"active", "arch", "available", "detected", "forced", "num_threads", "prefetch", "tuning"} <= set(info)
    True
    >>> info["active"] in info["available"]
    True
    """
    return _native.cpu_info()


__all__ = [
    "SOFTMAX_ALGORITHMS",
    "add_layer_norm",
    "add_rms_norm",
    "coda",
    "cpu_info",
    "crms_norm",
    "get_num_threads",
    "l1_norm",
    "layer_norm",
    "log_softmax",
    "logsumexp",
    "nn",
    "rms_norm",
    "set_num_threads",
    "softmax",
]
