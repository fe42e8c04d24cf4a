"""Peer implementations of the norms for the benchmarks: ONNX Runtime
sessions with preallocated outputs (io_binding), one thread."""

from __future__ import annotations

import numpy as np


def ort_norm(op: str, x: np.ndarray, w: np.ndarray, b: np.ndarray, out: np.ndarray, eps: float = 1e-5):
    """A callable that runs ONNX Runtime's `op` ("LayerNormalization" with
    weight + bias, or "SimplifiedLayerNormalization", RMSNorm with weight)
    on `x` into `out`, single-threaded, inputs and output bound once."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    shape = list(x.shape)
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, shape),
              helper.make_tensor_value_info("W", TensorProto.FLOAT, [shape[-1]])]
    names = ["X", "W"]
    if op == "LayerNormalization":
        inputs.append(helper.make_tensor_value_info("B", TensorProto.FLOAT, [shape[-1]]))
        names.append("B")
    node = helper.make_node(op, names, ["Y"], axis=-1, epsilon=eps)
    graph = helper.make_graph([node], "norm", inputs, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    binding = session.io_binding()
    for name, array in zip(names, (x, w, b)):
        binding.bind_cpu_input(name, array)
    binding.bind_output("Y", "cpu", 0, np.float32, shape, out.ctypes.data)

    def run():
        session.run_with_iobinding(binding)

    return run
