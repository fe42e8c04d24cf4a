"""Side-by-side timings of normkit and the libraries a user would otherwise
call: NumPy (always), SciPy, PyTorch CPU and ONNX Runtime (each where it is
installed; none is a dependency of normkit).

Every implementation of a case runs on the same input array and writes into
the same preallocated output where the peer allows it (NumPy ``out=``,
ONNX Runtime I/O binding, ``torch.ops.aten.*.out``); otherwise the peer
allocates its result, which the table notes. Time is reported as a ratio to
``numpy.copyto`` of the same array, measured in the same rounds (DESIGN.md:
"Performance method"). Each round times every implementation once, in the
same order; the reported time is the median over rounds, so a burst of load
on a shared machine moves one round, not one column.

All peers are pinned to one thread unless ``threads`` says otherwise.
``python -m normkit`` shows a small table; ``benches/compare.py`` the full
one.
"""

from __future__ import annotations

import functools
import importlib
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import normkit

Kernel = Callable[[], object]


@dataclass
class Case:
    """One operation on one input: every implementation computes ``f(x)``
    into ``out`` (or returns it), compared with a float64 ``reference``:
    elementwise relative error (softmax), absolute error (outputs of unit
    scale: log-softmax, norms) or, for int8 output, in output steps."""

    label: str
    x: np.ndarray
    out: np.ndarray
    reference: np.ndarray
    impls: dict[str, Kernel] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    absolute_error: bool = False


@dataclass
class Timing:
    seconds: float
    ratio_to_copy: float
    max_error: float | None


# --------------------------------------------------------------------------
# Peers (optional imports)


def _optional(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def available_peers() -> dict[str, str | None]:
    """Version of each optional peer, or None where it is not installed."""
    versions = {}
    for name, module in [("scipy", "scipy"), ("torch", "torch"), ("onnxruntime", "onnxruntime")]:
        mod = _optional(module)
        versions[name] = getattr(mod, "__version__", "?") if mod is not None else None
    return versions


@functools.lru_cache(maxsize=None)
def cpu_model() -> str:
    """The CPU that results are measured on, as the operating system names
    it, for printing next to every benchmark result: ``model name`` from
    /proc/cpuinfo with its ``cpu family`` and ``model`` numbers (x86 Linux;
    a virtual machine may report a generic name such as "AMD EPYC", and the
    numbers are the ones the hypervisor passes on), else lscpu's ``Model
    name``, else ``platform.processor()``; then the number of logical CPUs.
    Which instruction set normkit uses on it is ``normkit.cpu_info()``."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if not sep:
                    if fields:
                        break  # the end of the first processor's block
                    continue
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name")
    if not name:
        try:
            lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                                   env={**os.environ, "LC_ALL": "C"}).stdout
            name = next((line.partition(":")[2].strip() for line in lscpu.splitlines()
                         if line.strip().startswith("Model name:")), None)
        except (OSError, subprocess.SubprocessError):
            name = None
    name = name or platform.processor() or platform.machine() or "unknown CPU"
    numbers = [f"{label} {fields[key]}" for key, label in
               [("cpu family", "family"), ("model", "model"), ("stepping", "stepping")] if key in fields]
    if numbers:
        name += f" ({', '.join(numbers)})"
    return f"{name}, {os.cpu_count()} logical CPUs"


class OnnxNode:
    """An ONNX Runtime session of one node ``op`` (of ``opset``) with input
    ``x``, constant inputs ``consts`` (name -> array, in the node's input
    order) and attributes ``attrs``, run with its input and output bound to
    the caller's arrays (no copies, no allocation per call). Raises
    ImportError when onnx or onnxruntime is not installed."""

    def __init__(self, op: str, opset: int, x: np.ndarray, out: np.ndarray,
                 consts: dict[str, np.ndarray], threads: int = 1, **attrs):
        import onnx
        import onnx.numpy_helper
        import onnxruntime as ort

        helper, proto = onnx.helper, onnx.TensorProto
        elem = proto.FLOAT if x.dtype == np.float32 else proto.DOUBLE
        node = helper.make_node(op, ["x", *consts], ["y"], **attrs)
        graph = helper.make_graph(
            [node], op,
            [helper.make_tensor_value_info("x", elem, list(x.shape))],
            [helper.make_tensor_value_info("y", elem, list(out.shape))],
            initializer=[onnx.numpy_helper.from_array(v, k) for k, v in consts.items()],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 10
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model.SerializeToString(), options,
                                            providers=["CPUExecutionProvider"])
        self.binding = self.session.io_binding()
        self.binding.bind_cpu_input("x", x)
        self.binding.bind_output("y", "cpu", 0, out.dtype, list(out.shape), out.ctypes.data)

    def __call__(self):
        self.session.run_with_iobinding(self.binding)


def _onnx_peer(case: Case, op: str, opset: int, consts: dict[str, np.ndarray], threads: int, **attrs):
    try:
        case.impls["onnxruntime"] = OnnxNode(op, opset, case.x, case.out, consts, threads, **attrs)
    except ImportError:
        pass  # an optional peer


def _torch(threads: int):
    torch = _optional("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    return torch


# --------------------------------------------------------------------------
# Cases


def _rows64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def softmax_case(x: np.ndarray, threads: int = 1) -> Case:
    x64 = _rows64(x)
    e = np.exp(x64 - x64.max(axis=-1, keepdims=True))
    case = Case(f"softmax {_shape(x)}", x, np.empty_like(x), e / e.sum(axis=-1, keepdims=True))
    out = case.out

    def numpy_softmax():
        np.subtract(x, x.max(axis=-1, keepdims=True), out=out)
        np.exp(out, out=out)
        np.divide(out, out.sum(axis=-1, keepdims=True), out=out)

    case.impls["normkit"] = lambda: normkit.softmax(x, out=out)
    case.impls["numpy"] = numpy_softmax
    special = _optional("scipy.special")
    if special is not None:
        case.impls["scipy"] = lambda: special.softmax(x, axis=-1)
        case.notes["scipy"] = "allocates"
    torch = _torch(threads)
    if torch is not None:
        xt, yt = torch.from_numpy(x), torch.from_numpy(out)
        case.impls["torch"] = lambda: torch.ops.aten._softmax.out(xt, -1, False, out=yt)
    _onnx_peer(case, "Softmax", 13, {}, threads, axis=-1)
    return case


def log_softmax_case(x: np.ndarray, threads: int = 1) -> Case:
    x64 = _rows64(x)
    shifted = x64 - x64.max(axis=-1, keepdims=True)
    reference = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    case = Case(f"log_softmax {_shape(x)}", x, np.empty_like(x), reference, absolute_error=True)
    out = case.out

    def numpy_log_softmax():
        np.subtract(x, x.max(axis=-1, keepdims=True), out=out)
        np.subtract(out, np.log(np.exp(out).sum(axis=-1, keepdims=True)), out=out)

    case.impls["normkit"] = lambda: normkit.log_softmax(x, out=out)
    case.impls["numpy"] = numpy_log_softmax
    special = _optional("scipy.special")
    if special is not None:
        case.impls["scipy"] = lambda: special.log_softmax(x, axis=-1)
        case.notes["scipy"] = "allocates"
    torch = _torch(threads)
    if torch is not None:
        xt, yt = torch.from_numpy(x), torch.from_numpy(out)
        case.impls["torch"] = lambda: torch.ops.aten._log_softmax.out(xt, -1, False, out=yt)
    _onnx_peer(case, "LogSoftmax", 13, {}, threads, axis=-1)
    return case


def layer_norm_case(x: np.ndarray, threads: int = 1, eps: float = 1e-5) -> Case:
    x64 = _rows64(x)
    centered = x64 - x64.mean(axis=-1, keepdims=True)
    reference = centered / np.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)
    case = Case(f"layer_norm {_shape(x)}", x, np.empty_like(x), reference, absolute_error=True)
    out, n = case.out, x.shape[-1]

    def numpy_layer_norm():
        mean = x.mean(axis=-1, keepdims=True)
        np.subtract(x, mean, out=out)
        var = np.einsum("...i,...i->...", out, out)[..., None] / n
        np.multiply(out, 1 / np.sqrt(var + eps), out=out)

    case.impls["normkit"] = lambda: normkit.layer_norm(x, eps=eps, out=out)
    case.impls["numpy"] = numpy_layer_norm
    torch = _torch(threads)
    if torch is not None:
        xt = torch.from_numpy(x)
        case.impls["torch"] = lambda: torch.nn.functional.layer_norm(xt, (n,), eps=eps)
        case.notes["torch"] = "allocates"
    ones, zeros = np.ones(n, x.dtype), np.zeros(n, x.dtype)
    _onnx_peer(case, "LayerNormalization", 17, {"scale": ones, "bias": zeros}, threads, axis=-1, epsilon=eps)
    return case


def rms_norm_case(x: np.ndarray, threads: int = 1, eps: float = 1e-6) -> Case:
    x64 = _rows64(x)
    reference = x64 / np.sqrt((x64 * x64).mean(axis=-1, keepdims=True) + eps)
    case = Case(f"rms_norm {_shape(x)}", x, np.empty_like(x), reference, absolute_error=True)
    out, n = case.out, x.shape[-1]

    def numpy_rms_norm():
        ms = np.einsum("...i,...i->...", x, x)[..., None] / n
        np.multiply(x, 1 / np.sqrt(ms + eps), out=out)

    case.impls["normkit"] = lambda: normkit.rms_norm(x, eps=eps, out=out)
    case.impls["numpy"] = numpy_rms_norm
    torch = _torch(threads)
    if torch is not None and hasattr(torch.nn.functional, "rms_norm"):
        xt = torch.from_numpy(x)
        case.impls["torch"] = lambda: torch.nn.functional.rms_norm(xt, (n,), eps=eps)
        case.notes["torch"] = "allocates"
    _onnx_peer(case, "RMSNormalization", 23, {"scale": np.ones(n, x.dtype)}, threads, axis=-1, epsilon=eps)
    return case


def l1_norm_int8_case(x8: np.ndarray, out_scale: float = 4 / 127) -> Case:
    """The int8 L1 norm against the same formula in NumPy float32 (then
    rounded and saturated to int8), and against normkit's own float32
    layer_norm on the same values (4x the bytes): the comparison the
    sub-8-bit training paper makes. The reference is the float formula;
    the error column is in output steps (int8 units)."""
    x64 = x8.astype(np.float64)
    centered = x64 - x64.mean(axis=-1, keepdims=True)
    spread = np.abs(centered).mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        reference = np.clip(np.nan_to_num(centered / spread) / out_scale, -128, 127)
    case = Case(f"l1_norm int8 {_shape(x8)}", x8, np.empty_like(x8), reference)
    out = case.out
    xf = x8.astype(np.float32)
    yf = np.empty_like(xf)
    gain = np.float32(1 / out_scale)

    def numpy_l1_norm():
        np.subtract(xf, xf.mean(axis=-1, keepdims=True), out=yf)
        spread = np.abs(yf).mean(axis=-1, keepdims=True)
        np.multiply(yf, gain / spread, out=yf)
        np.rint(yf, out=yf)
        np.clip(yf, -128, 127, out=yf)
        out[...] = yf

    case.impls["normkit"] = lambda: normkit.l1_norm(x8, out_scale=out_scale, out=out)
    case.impls["numpy"] = numpy_l1_norm
    case.impls["normkit layer_norm f32"] = lambda: normkit.layer_norm(xf, out=yf)
    case.notes["normkit layer_norm f32"] = "float32 input, 4x the bytes"
    return case


def _shape(x: np.ndarray) -> str:
    return "x".join(map(str, x.shape)) + f" {x.dtype}"


# --------------------------------------------------------------------------
# Timing


def _calibrate(fn: Kernel, target: float) -> int:
    """Calls per sample so that a sample lasts about `target` seconds."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, min(10_000, int(target / once)))


def measure(case: Case, rounds: int = 7, sample_seconds: float = 0.02,
            clock: Callable[[], float] = time.perf_counter) -> dict[str, Timing]:
    """Median seconds per call of each implementation and of a copy of the
    same array, interleaved over `rounds`; plus each implementation's max
    error against the float64 reference (relative for floats, in output
    steps for int8)."""
    copy_out = np.empty_like(case.x)
    kernels = {"copy": lambda: np.copyto(copy_out, case.x), **case.impls}
    seconds = interleaved_medians(kernels, rounds, sample_seconds, clock)
    return {
        name: Timing(median, median / seconds["copy"], _error(case, kernels[name]) if name != "copy" else None)
        for name, median in seconds.items()
    }


def interleaved_medians(kernels: dict[str, Kernel], rounds: int = 7, sample_seconds: float = 0.02,
                        clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median seconds per call of each kernel: every round times each
    kernel once, in order, over enough calls to last ``sample_seconds``.
    ``clock`` is wall time by default; ``time.process_time`` (the process's
    CPU time) leaves out the time a single-threaded run waits for a core on
    a busy machine."""
    calls = {name: _calibrate(fn, sample_seconds) for name, fn in kernels.items()}
    samples: dict[str, list[float]] = {name: [] for name in kernels}
    for _ in range(rounds):
        for name, fn in kernels.items():
            start = clock()
            for _ in range(calls[name]):
                fn()
            samples[name].append((clock() - start) / calls[name])
    return {name: float(np.median(times)) for name, times in samples.items()}


def _error(case: Case, fn: Kernel) -> float | None:
    case.out.fill(0)
    result = fn()
    if isinstance(result, (tuple, list)):
        result = result[0]
    if hasattr(result, "numpy"):
        result = result.numpy()
    y = case.out if result is None or result is case.out or not isinstance(result, np.ndarray) else result
    if y.shape != case.reference.shape:
        return None
    if y.dtype != case.x.dtype:
        return None  # e.g. the float32 layer_norm shown beside the int8 L1 norm
    error = np.abs(y.astype(np.float64) - case.reference)
    if case.x.dtype == np.int8 or case.absolute_error:
        return float(np.max(error))
    return float(np.max(error / np.maximum(np.abs(case.reference), np.finfo(case.x.dtype).tiny)))


# --------------------------------------------------------------------------
# Tables


def format_table(results: list[tuple[Case, dict[str, Timing]]], markdown: bool = False) -> str:
    """One row per case: copy time, then each implementation as
    'time / copy' (and its max error in a second table)."""
    columns: list[str] = []
    for case, _ in results:
        columns += [name for name in case.impls if name not in columns]
    header = ["case", "copy µs", "normkit µs", *columns]
    rows, errors = [], []
    for case, timing in results:
        rows.append([case.label, _micros(timing["copy"]), _micros(timing["normkit"]),
                     *[_ratio(timing.get(c), case.notes.get(c)) for c in columns]])
        errors.append([case.label, *[_err(timing.get(c)) for c in columns]])
    return "time / copy of the same array (median of rounds)\n" + _render(header, rows, markdown) + \
        "\n\nmax error vs float64 (softmax: relative; log_softmax, norms: absolute; int8: output steps)\n" + \
        _render(["case", *columns], errors, markdown)


def _micros(t: Timing) -> str:
    micros = t.seconds * 1e6
    return f"{micros:.1f}" if micros < 100 else f"{micros:.0f}"


def _ratio(t: Timing | None, note: str | None) -> str:
    if t is None:
        return "-"
    return f"{t.ratio_to_copy:.2f}x" + ("*" if note else "")


def _err(t: Timing | None) -> str:
    return "-" if t is None or t.max_error is None else f"{t.max_error:.1e}"


def _render(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)])


def footnotes(results: list[tuple[Case, dict[str, Timing]]]) -> str:
    notes = sorted({f"* {name}: {note}" for case, _ in results for name, note in case.notes.items()})
    return "\n".join(notes)


def measure_all(cases: list[Case], rounds: int = 7, sample_seconds: float = 0.02,
                clock: Callable[[], float] = time.perf_counter) -> list[tuple[Case, dict[str, Timing]]]:
    """Measures every case with normkit on one thread (restored after)."""
    threads = normkit.get_num_threads()
    normkit.set_num_threads(1)
    try:
        return [(case, measure(case, rounds, sample_seconds, clock)) for case in cases]
    finally:
        normkit.set_num_threads(threads)


def run(cases: list[Case], rounds: int = 7, sample_seconds: float = 0.02,
        markdown: bool = False) -> str:
    """Measures every case (``measure_all``) and formats the tables."""
    results = measure_all(cases, rounds, sample_seconds)
    return format_table(results, markdown) + "\n" + footnotes(results)


def results_as_dicts(results: list[tuple[Case, dict[str, Timing]]]) -> list[dict]:
    """The measurements in plain types (for JSON): per case its label, the
    copy's seconds and, per implementation, seconds, time / copy, max error
    and the note (e.g. "allocates") where there is one."""
    return [{"case": case.label, "copy_seconds": timing["copy"].seconds,
             "impls": {name: {"seconds": t.seconds, "ratio_to_copy": t.ratio_to_copy,
                              "max_error": t.max_error, "note": case.notes.get(name)}
                       for name, t in timing.items() if name != "copy"}}
            for case, timing in results]


def quantize_int8(x: np.ndarray) -> np.ndarray:
    """Symmetric per-tensor int8 quantization (scale = max|x| / 127)."""
    scale = float(np.max(np.abs(x))) / 127 or 1.0
    return np.clip(np.rint(x / scale), -127, 127).astype(np.int8)


__all__ = [
    "Case",
    "OnnxNode",
    "Timing",
    "available_peers",
    "format_table",
    "interleaved_medians",
    "l1_norm_int8_case",
    "layer_norm_case",
    "log_softmax_case",
    "measure",
    "measure_all",
    "quantize_int8",
    "results_as_dicts",
    "rms_norm_case",
    "run",
    "softmax_case",
]
