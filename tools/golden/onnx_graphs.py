#!/usr/bin/env python3
"""Tiny ONNX graphs with the ONNX judges' input and output shapes and fixed outputs, for the
tests that the judges refuse non-finite model outputs (crates/judges/tests/non_finite.rs).
No reference numbers come from here: each graph's output is a constant (times a term that
uses the input, so the graph really reads it). Not run in CI; rerun when the shapes change:

    python -m venv /tmp/og && /tmp/og/bin/pip install onnx==1.17.0 numpy
    /tmp/og/bin/python tools/golden/onnx_graphs.py

Writes crates/judges/tests/fixtures/onnx_judges/graphs/:
  nudenet-nan.onnx    input [1, 3, 320, 320] -> [1, 22, 4]: every value NaN;
  nudenet-zero.onnx   the same shapes, every value 0 (nothing detected: a finite control);
  open-nsfw-nan.onnx  input [1, 224, 224, 3] -> [1, 2]: (NaN, NaN);
  open-nsfw-0.9.onnx  the same shapes, (0.1, 0.9) (P(nsfw) 0.9: a finite control).
Each output is `constant * (1 + 0 * mean(input))`.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "../../crates/judges/tests/fixtures/onnx_judges/graphs")


def graph(name, in_shape, value):
    value = np.asarray(value, dtype=np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["m0"]),
        helper.make_node("Add", ["m0", "one"], ["m1"]),
        helper.make_node("Mul", ["c", "m1"], ["y"]),
    ]
    g = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(value.shape))],
        initializer=[
            numpy_helper.from_array(np.float32(0.0).reshape(()), "zero"),
            numpy_helper.from_array(np.float32(1.0).reshape(()), "one"),
            numpy_helper.from_array(value, "c"),
        ],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="art")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, name + ".onnx"))


def main():
    os.makedirs(OUT, exist_ok=True)
    graph("nudenet-nan", [1, 3, 320, 320], np.full((1, 22, 4), np.nan))
    graph("nudenet-zero", [1, 3, 320, 320], np.zeros((1, 22, 4)))
    graph("open-nsfw-nan", [1, 224, 224, 3], np.full((1, 2), np.nan))
    graph("open-nsfw-0.9", [1, 224, 224, 3], [[0.1, 0.9]])


if __name__ == "__main__":
    main()
