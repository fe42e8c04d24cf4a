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
    scale: log-softmax, norms) or, for int8 output, in output steps.
    The yardstick is a copy of ``x``, plus one of each ``copy_also`` array
    (the fused residual forms read two arrays and write two: two copies).
    ``skipped``: implementations left out, with the reason."""

    label: str
    x: np.ndarray
    out: np.ndarray
    reference: np.ndarray
    impls: dict[str, Kernel] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    absolute_error: bool = False
    copy_also: tuple = ()
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class Timing:
    """``seconds``: the median over rounds; ``ratio_to_copy``: the median
    of the per-round ratios to the copy timed in the same round, with their
    ``ratio_min`` and ``ratio_max``; ``samples``: seconds per round."""

    seconds: float
    ratio_to_copy: float
    max_error: float | None
    ratio_min: float = float("nan")
    ratio_max: float = float("nan")
    samples: list = field(default_factory=list)


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


class Unsupported(Exception):
    """A peer that is installed but does not run this case (e.g. an
    operator ONNX Runtime has no CPU kernel for in this dtype)."""


class OnnxNode:
    """An ONNX Runtime session of one node ``op`` (of ``opset``, in
    ``domain``) with input ``x`` (then the ``inputs``, name -> array),
    constant inputs ``consts`` (name -> array, in the node's input order)
    and attributes ``attrs``, run with its inputs and outputs bound to the
    caller's arrays (no copies, no allocation per call): output 0 is
    ``out``, ``outputs`` maps further output positions to arrays (the
    others are left out). Raises ImportError when onnx or onnxruntime is
    not installed, ``Unsupported`` when ONNX Runtime refuses the graph."""

    def __init__(self, op: str, opset: int, x: np.ndarray, out: np.ndarray,
                 consts: dict[str, np.ndarray], threads: int = 1, *, inputs: dict[str, np.ndarray] | None = None,
                 outputs: dict[int, np.ndarray] | None = None, domain: str = "", **attrs):
        import onnx
        import onnx.numpy_helper
        import onnxruntime as ort
        from onnxruntime.capi import onnxruntime_pybind11_state as state

        helper = onnx.helper
        inputs = {"x": x, **(inputs or {})}
        bound = {0: out, **(outputs or {})}
        names = [f"y{k}" if k in bound else "" for k in range(max(bound) + 1)]
        node = helper.make_node(op, [*inputs, *consts], names, domain=domain, **attrs)
        info = lambda name, a: helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape))
        graph = helper.make_graph(
            [node], op, [info(k, v) for k, v in inputs.items()], [info(f"y{k}", v) for k, v in bound.items()],
            initializer=[onnx.numpy_helper.from_array(v, k) for k, v in consts.items()],
        )
        imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
        model = helper.make_model(graph, opset_imports=imports)
        model.ir_version = 10
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(model.SerializeToString(), options,
                                                providers=["CPUExecutionProvider"])
            self.binding = self.session.io_binding()
            for name, a in inputs.items():
                self.binding.bind_cpu_input(name, a)
            for k, a in bound.items():
                self.binding.bind_output(f"y{k}", "cpu", 0, a.dtype, list(a.shape), a.ctypes.data)
        # No kernel for the dtype, or (RuntimeError) no binding of NumPy arrays of it (bfloat16).
        except (state.Fail, state.InvalidGraph, state.NotImplemented, RuntimeError) as exc:
            raise Unsupported(f"{op} {x.dtype}: {str(exc).splitlines()[0][:120]}") from exc

    def __call__(self):
        self.session.run_with_iobinding(self.binding)


def _onnx_peer(case: Case, op: str, opset: int, consts: dict[str, np.ndarray], threads: int, **kwargs):
    try:
        case.impls["onnxruntime"] = OnnxNode(op, opset, case.x, case.out, consts, threads, **kwargs)
    except ImportError:
        pass  # an optional peer
    except Unsupported as exc:
        case.skipped["onnxruntime"] = str(exc)


def _torch(threads: int):
    torch = _optional("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    return torch


# --------------------------------------------------------------------------
# Cases


def _rows64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _reference(op: str, x64: np.ndarray, eps: float | None = None) -> np.ndarray:
    """``op`` ("softmax", "layer_norm" or "rms_norm", no weight) of the
    float64 rows ``x64``: what every implementation is compared with."""
    if op == "softmax":
        e = np.exp(x64 - x64.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if op == "layer_norm":
        x64 = x64 - x64.mean(axis=-1, keepdims=True)
    return x64 / np.sqrt((x64 * x64).mean(axis=-1, keepdims=True) + eps)


def softmax_case(x: np.ndarray, threads: int = 1) -> Case:
    case = Case(f"softmax {_shape(x)}", x, np.empty_like(x), _reference("softmax", _rows64(x)))
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
    reference = _reference("layer_norm", _rows64(x), eps)
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
    reference = _reference("rms_norm", _rows64(x), eps)
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


def crms_norm_case(x: np.ndarray, threads: int = 1, eps: float = 1e-6) -> Case:
    """CRMSNorm (no ONNX or torch operator): normkit against its formula in
    NumPy."""
    x64 = _rows64(x)
    n = x.shape[-1]
    ms = ((x64 * x64).sum(axis=-1, keepdims=True) + x64.sum(axis=-1, keepdims=True) ** 2) / (n + 1)
    case = Case(f"crms_norm {_shape(x)}", x, np.empty_like(x), x64 / np.sqrt(ms + eps), absolute_error=True)
    out = case.out

    def numpy_crms_norm():
        sums = x.sum(axis=-1, keepdims=True)
        ms = (np.einsum("...i,...i->...", x, x)[..., None] + sums * sums) / (n + 1)
        np.multiply(x, 1 / np.sqrt(ms + eps), out=out)

    case.impls["normkit"] = lambda: normkit.crms_norm(x, eps=eps, out=out)
    case.impls["numpy"] = numpy_crms_norm
    return case


def add_norm_case(kind: str, x: np.ndarray, residual: np.ndarray, threads: int = 1) -> Case:
    """The fused residual forms ``add_rms_norm`` / ``add_layer_norm``
    (``kind`` "rms" or "layer"): two arrays in, the norm and the sum out,
    against two copies; ONNX Runtime's fused SkipSimplifiedLayerNormalization
    / SkipLayerNormalization (com.microsoft, with a weight of ones and
    the sum as output 3) and NumPy's add followed by normkit's norm as
    peers. The error is that of the normed output."""
    eps = 1e-6 if kind == "rms" else 1e-5
    reference = _reference(f"{kind}_norm", _rows64(x) + _rows64(residual), eps)
    case = Case(f"add_{kind}_norm {_shape(x)}", x, np.empty_like(x), reference, absolute_error=True,
                copy_also=(residual,))
    out, summed, n = case.out, np.empty_like(x), x.shape[-1]
    fused = normkit.add_rms_norm if kind == "rms" else normkit.add_layer_norm
    norm = normkit.rms_norm if kind == "rms" else normkit.layer_norm
    case.impls["normkit"] = lambda: fused(x, residual, eps=eps, out=(out, summed))
    case.impls["numpy add + normkit"] = lambda: norm(np.add(x, residual, out=summed), eps=eps, out=out)
    ones = np.ones(n, x.dtype)
    op, consts = (("SkipSimplifiedLayerNormalization", {"gamma": ones}) if kind == "rms"
                  else ("SkipLayerNormalization", {"gamma": ones, "beta": np.zeros(n, x.dtype)}))
    _onnx_peer(case, op, 17, consts, threads, inputs={"skip": residual}, outputs={3: summed},
               domain="com.microsoft", epsilon=eps)
    return case


HALF_OPS = ("softmax", "rms_norm", "layer_norm")
#: eps of the half-precision rows, as in the float cases.
_HALF_EPS = {"softmax": None, "rms_norm": 1e-6, "layer_norm": 1e-5}


def half_dtypes() -> dict[str, np.dtype]:
    """The half-precision dtypes available here: float16, and bfloat16
    when ``ml_dtypes`` is installed."""
    dtypes = {"float16": np.dtype(np.float16)}
    ml_dtypes = _optional("ml_dtypes")
    if ml_dtypes is not None:
        dtypes["bfloat16"] = np.dtype(ml_dtypes.bfloat16)
    return dtypes


def _public_half_kernels() -> bool:
    """Whether the public API hands half arrays to the native half kernels:
    it then takes bfloat16 (float16 alone it has long taken, through a
    float32 cast)."""
    ml_dtypes = _optional("ml_dtypes")
    if ml_dtypes is None:
        return False
    try:
        normkit.softmax(np.zeros(2, ml_dtypes.bfloat16))
    except TypeError:
        return False
    return True


def _normkit_half(case: Case, op: str) -> None:
    """Adds normkit's ``op`` on the half array ``case.x`` into
    ``case.out``: through the public API when it runs the native half
    kernels, else through the native layer's ``half=`` on ``uint16`` views
    (and the public API's float32 cast beside it, where it takes the
    dtype); left out, with the reason, when neither runs."""
    x, out, half, eps = case.x, case.out, case.x.dtype.name, _HALF_EPS[op]
    public = {"softmax": lambda: normkit.softmax(x, out=out),
              "rms_norm": lambda: normkit.rms_norm(x, eps=eps, out=out),
              "layer_norm": lambda: normkit.layer_norm(x, eps=eps, out=out)}[op]
    if _public_half_kernels():
        case.impls["normkit"] = public
        return
    xv, yv = x.view(np.uint16), out.view(np.uint16)
    native = {"softmax": lambda: normkit._native.softmax(xv, yv, "auto", half=half),
              "rms_norm": lambda: normkit._native.norm(xv, yv, "rms", eps, half=half),
              "layer_norm": lambda: normkit._native.norm(xv, yv, "layer", eps, half=half)}[op]
    try:
        native()
        case.impls["normkit"] = native
        case.notes["normkit"] = "the native half kernel on uint16 views (the public API does not reach it yet)"
    except TypeError as exc:
        case.skipped["normkit"] = f"the native layer has no half kernels ({exc})"
    try:
        public()
        case.impls["normkit API"] = public
        case.notes["normkit API"] = "the public API's float32 cast (NumPy casts in and out)"
    except TypeError as exc:
        case.skipped["normkit API"] = str(exc)


def half_case(op: str, x32: np.ndarray, dtype: np.dtype, threads: int = 1) -> Case:
    """``op`` (one of ``HALF_OPS``) with input and output in a half dtype
    (float16 or bfloat16) of the values of ``x32``: normkit's half kernels
    against normkit's float32 kernel on the same values ("normkit
    float32": the same shape, twice the bytes), ONNX Runtime's operator in
    the half dtype, and torch's when it is installed. Errors are against
    float64 on the half input's values (softmax relative, norms absolute)."""
    x = x32.astype(dtype)
    eps = _HALF_EPS[op]
    case = Case(f"{op} {_shape(x)}", x, np.empty_like(x), _reference(op, x.astype(np.float64), eps),
                absolute_error=op != "softmax")
    _normkit_half(case, op)
    xf = x.astype(np.float32)
    yf = np.empty_like(xf)
    f32 = {"softmax": lambda: normkit.softmax(xf, out=yf), "rms_norm": lambda: normkit.rms_norm(xf, eps=eps, out=yf),
           "layer_norm": lambda: normkit.layer_norm(xf, eps=eps, out=yf)}[op]
    case.impls["normkit float32"] = f32
    case.notes["normkit float32"] = "float32 input of the same values, 2x the bytes"
    n = x.shape[-1]
    ones, zeros = np.ones(n, dtype), np.zeros(n, dtype)
    if op == "softmax":
        _onnx_peer(case, "Softmax", 13, {}, threads, axis=-1)
    elif op == "rms_norm":
        _onnx_peer(case, "RMSNormalization", 23, {"scale": ones}, threads, axis=-1, epsilon=eps)
    else:
        _onnx_peer(case, "LayerNormalization", 17, {"scale": ones, "bias": zeros}, threads, axis=-1, epsilon=eps)
    torch = _torch(threads)
    if torch is not None:
        xt = torch.from_numpy(xf).to(getattr(torch, dtype.name))
        F = torch.nn.functional
        case.impls["torch"] = {"softmax": lambda: torch.softmax(xt, -1),
                               "rms_norm": lambda: F.rms_norm(xt, (n,), eps=eps),
                               "layer_norm": lambda: F.layer_norm(xt, (n,), eps=eps)}[op]
        case.notes["torch"] = "allocates"
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
    """Seconds per call of each implementation and of the copy yardstick
    (``x`` and each ``copy_also`` array copied once), interleaved over
    ``rounds``: the median, and the median, min and max of the per-round
    ratios to the copy; plus each implementation's max error against the
    float64 reference (relative for floats, in output steps for int8)."""
    pairs = [(np.empty_like(a), a) for a in (case.x, *case.copy_also)]
    kernels = {"copy": lambda: [np.copyto(dst, src) for dst, src in pairs], **case.impls}
    samples = interleaved_samples(kernels, rounds, sample_seconds, clock)
    timings = {}
    for name, times in samples.items():
        ratios = np.divide(times, samples["copy"])
        timings[name] = Timing(float(np.median(times)), float(np.median(ratios)),
                               _error(case, kernels[name]) if name != "copy" else None,
                               float(ratios.min()), float(ratios.max()), times)
    return timings


def interleaved_samples(kernels: dict[str, Kernel], rounds: int = 7, sample_seconds: float = 0.02,
                        clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds per call of each kernel in each round: every round times
    each kernel once, in order, over enough calls to last
    ``sample_seconds``. ``clock`` is wall time by default;
    ``time.process_time`` (the process's CPU time, summed over its threads)
    leaves out the time a single-threaded run waits for a core on a busy
    machine."""
    calls = {name: _calibrate(fn, sample_seconds) for name, fn in kernels.items()}
    samples: dict[str, list[float]] = {name: [] for name in kernels}
    for _ in range(rounds):
        for name, fn in kernels.items():
            start = clock()
            for _ in range(calls[name]):
                fn()
            samples[name].append((clock() - start) / calls[name])
    return samples


def interleaved_medians(kernels: dict[str, Kernel], rounds: int = 7, sample_seconds: float = 0.02,
                        clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median seconds per call of each kernel over ``interleaved_samples``."""
    samples = interleaved_samples(kernels, rounds, sample_seconds, clock)
    return {name: float(np.median(times)) for name, times in samples.items()}


def relative(a: Timing, b: Timing) -> tuple[float, float, float]:
    """(median, min, max) over rounds of ``a``'s time / ``b``'s, both timed
    in the same rounds (e.g. normkit / ONNX Runtime)."""
    ratios = np.divide(a.samples, b.samples)
    return float(np.median(ratios)), float(ratios.min()), float(ratios.max())


def _error(case: Case, fn: Kernel) -> float | None:
    case.out.fill(0)
    result = fn()
    if isinstance(result, (tuple, list)):
        result = result[0]
    if hasattr(result, "numpy"):  # a torch tensor; torch.bfloat16 has no NumPy dtype
        result = result.double().numpy().astype(case.x.dtype)
    y = case.out if result is None or result is case.out or not isinstance(result, np.ndarray) else result
    if y.shape != case.reference.shape:
        return None
    if y.dtype != case.x.dtype:
        return None  # e.g. the float32 layer_norm shown beside the int8 L1 norm
    error = np.abs(y.astype(np.float64) - case.reference)
    if case.x.dtype == np.int8 or case.absolute_error:
        return float(np.max(error))
    return float(np.max(error / np.maximum(np.abs(case.reference), _tiny(case.x.dtype))))


def _tiny(dtype: np.dtype) -> float:
    """The smallest normal number of a float dtype (bfloat16 too, whose
    finfo is ``ml_dtypes.finfo``)."""
    try:
        return float(np.finfo(dtype).tiny)
    except ValueError:
        return float(_optional("ml_dtypes").finfo(dtype).tiny)


# --------------------------------------------------------------------------
# Tables


#: Columns of normkit's time over another implementation's, each shown
#: when some case has that implementation.
RELATIVE_TO = ("onnxruntime", "normkit float32")


def format_table(results: list[tuple[Case, dict[str, Timing]]], markdown: bool = False, spread: bool = False) -> str:
    """One row per case: copy time, then each implementation as
    'time / copy' (with ``spread``: the median and, in parentheses, the min
    and max over rounds), then normkit's time over ONNX Runtime's (and over
    its own float32 kernel's, for the half-precision cases); its max error
    in a second table."""
    columns: list[str] = []
    for case, _ in results:
        columns += [name for name in case.impls if name not in columns]
    versus = [c for c in RELATIVE_TO if c in columns]
    header = ["case", "copy µs", "normkit µs", *columns, *[f"normkit / {c}" for c in versus]]
    rows, errors = [], []
    for case, timing in results:
        normkit_timing = timing.get("normkit")
        rows.append([case.label, _micros(timing["copy"]), _micros(normkit_timing) if normkit_timing else "-",
                     *[_ratio(timing.get(c), case.notes.get(c), spread) for c in columns],
                     *[_relative(normkit_timing, timing.get(c), spread) for c in versus]])
        errors.append([case.label, *[_err(timing.get(c)) for c in columns]])
    what = "median (min-max) of rounds" if spread else "median of rounds"
    return f"time / copy of the same array ({what})\n" + _render(header, rows, markdown) + \
        "\n\nmax error vs float64 (softmax: relative; log_softmax, norms: absolute; int8: output steps)\n" + \
        _render(["case", *columns], errors, markdown)


def _micros(t: Timing) -> str:
    micros = t.seconds * 1e6
    return f"{micros:.1f}" if micros < 100 else f"{micros:.0f}"


def _ratio(t: Timing | None, note: str | None, spread: bool = False) -> str:
    if t is None:
        return "-"
    return _spread(t.ratio_to_copy, t.ratio_min, t.ratio_max, spread) + ("*" if note else "")


def _relative(a: Timing | None, b: Timing | None, spread: bool) -> str:
    return "-" if a is None or b is None else _spread(*relative(a, b), spread)


def _spread(median: float, low: float, high: float, spread: bool) -> str:
    return f"{median:.2f}x ({low:.2f}-{high:.2f})" if spread else f"{median:.2f}x"


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
    skipped = [f"- {case.label}: {name} left out: {why}" for case, _ in results for name, why in case.skipped.items()]
    return "\n".join(notes + skipped)


def measure_all(cases: list[Case], rounds: int = 7, sample_seconds: float = 0.02,
                clock: Callable[[], float] = time.perf_counter, threads: int = 1) -> list[tuple[Case, dict[str, Timing]]]:
    """Measures every case with normkit on ``threads`` threads (the
    previous count restored after); the peers' thread counts are set when
    their cases are made."""
    previous = normkit.get_num_threads()
    normkit.set_num_threads(threads)
    try:
        return [(case, measure(case, rounds, sample_seconds, clock)) for case in cases]
    finally:
        normkit.set_num_threads(previous)


def run(cases: list[Case], rounds: int = 7, sample_seconds: float = 0.02,
        markdown: bool = False) -> str:
    """Measures every case (``measure_all``) and formats the tables."""
    results = measure_all(cases, rounds, sample_seconds)
    return format_table(results, markdown) + "\n" + footnotes(results)


def results_as_dicts(results: list[tuple[Case, dict[str, Timing]]]) -> list[dict]:
    """The measurements in plain types (for JSON): per case its label, the
    copy's seconds, the implementations left out (with the reason) and,
    per implementation, seconds, time / copy (median, min and max over
    rounds), max error and the note (e.g. "allocates") where there is
    one, and normkit's time over each of ``RELATIVE_TO`` (median, min,
    max) where both ran."""
    rows = []
    for case, timing in results:
        row = {"case": case.label, "copy_seconds": timing["copy"].seconds, "skipped": dict(case.skipped),
               "impls": {name: {"seconds": t.seconds, "ratio_to_copy": t.ratio_to_copy, "ratio_min": t.ratio_min,
                                "ratio_max": t.ratio_max, "max_error": t.max_error, "note": case.notes.get(name)}
                         for name, t in timing.items() if name != "copy"}}
        for other in RELATIVE_TO:
            if "normkit" in timing and other in timing:
                row[f"normkit / {other}"] = relative(timing["normkit"], timing[other])
        rows.append(row)
    return rows


def quantize_int8(x: np.ndarray) -> np.ndarray:
    """Symmetric per-tensor int8 quantization (scale = max|x| / 127)."""
    scale = float(np.max(np.abs(x))) / 127 or 1.0
    return np.clip(np.rint(x / scale), -127, 127).astype(np.int8)


__all__ = [
    "HALF_OPS",
    "RELATIVE_TO",
    "Case",
    "OnnxNode",
    "Timing",
    "Unsupported",
    "add_norm_case",
    "available_peers",
    "crms_norm_case",
    "format_table",
    "half_case",
    "half_dtypes",
    "interleaved_medians",
    "interleaved_samples",
    "l1_norm_int8_case",
    "layer_norm_case",
    "log_softmax_case",
    "measure",
    "measure_all",
    "quantize_int8",
    "relative",
    "results_as_dicts",
    "rms_norm_case",
    "run",
    "softmax_case",
]
