"""The number of threads the kernels use for large inputs."""

from __future__ import annotations

from . import _native
from ._rowwise import exact_int

#: The largest count ``set_num_threads`` accepts: a fixed bound, the same on
#: every machine (so ``set_num_threads(os.cpu_count())`` works even on the
#: largest servers), far above any useful count for these memory-bound
#: kernels. Values far beyond it spent minutes starting threads.
MAX_THREADS: int = _native.MAX_THREADS


def set_num_threads(threads: int) -> None:
    """Sets the number of threads used for large inputs (the calling thread
    and ``threads - 1`` workers), an integer in ``1..=MAX_THREADS`` (1024);
    the default is ``NORMKIT_NUM_THREADS``, else the number of CPUs.
    Raises ``TypeError`` for a non-integer (or bool), ``ValueError`` outside
    the range, and ``RuntimeError`` if the operating system will not start
    the threads; on any error the count is unchanged.

    Examples
    --------
    >>> import normkit
    >>> previous = normkit.get_num_threads()
    >>> normkit.set_num_threads(1)
    >>> normkit.get_num_threads()
    1
    >>> normkit.set_num_threads(0)
    Traceback (most recent call last):
        ...
    ValueError: set_num_threads: the number of threads must be between 1 and 1024, got 0
    >>> normkit.set_num_threads(previous)
    """
    n = exact_int(threads, "set_num_threads: threads")
    if not 1 <= n <= MAX_THREADS:
        shown = n if abs(n) < 10**18 else f"{'-' if n < 0 else ''}an integer of {len(str(abs(n)))} digits"
        raise ValueError(f"set_num_threads: the number of threads must be between 1 and {MAX_THREADS}, got {shown}")
    _native.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads used for large inputs.

    Examples
    --------
    >>> import normkit
    >>> normkit.get_num_threads() >= 1
    True
    """
    return _native.get_num_threads()
