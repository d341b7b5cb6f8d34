"""ONNX Runtime sessions: one per network, on the GPU when ONNX Runtime has one, else the CPU.

Every network FaceDB serves with (MTCNN's three, FaceNet, age and gender) runs here, so the
serving path never imports TensorFlow. The GPU needs the `onnxruntime-gpu` wheel in place of
`onnxruntime`; the same code then puts each session on CUDA, the CPU otherwise.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)


def providers() -> list[str]:
    """Return the execution providers to use, best first."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def session(path: Path | bytes, threads: int | None = None, arena: bool = True) -> Any:
    """Return an inference session for the model at ``path`` (or the serialised model).

    ``threads``: intra-op threads (default: the machine's cores); one call then uses every
    core, and the callers take turns (each network has one lock). ``arena``: keep freed
    buffers for reuse, which pays for fixed input shapes; a network fed a new shape per
    photo (the detector's image pyramid) would grow the arena to the largest photo seen and
    keep it, so it allocates per call instead (measured: 350 MiB less resident after
    phone-size photos, bench/RESULTS.md Memory).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = arena
    options.log_severity_level = 3  # errors only: no warnings about unused initializers
    # Idle threads sleep instead of spinning: several sessions share the cores, and a
    # spinning pool of one network slowed the next network's call threefold (measured).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    chosen = providers()
    model = path if isinstance(path, bytes) else str(path)
    created = ort.InferenceSession(model, sess_options=options, providers=chosen)
    log.debug("ONNX session on %s", created.get_providers()[0])
    return created


def freed(path: Path) -> bytes:
    """Return the model at ``path`` with its batch dimension left free and its weights no
    longer listed as inputs (an old export's habit: as inputs, ONNX Runtime may not fold
    them into the layers, and a fixed batch of one costs a call per input). The weights
    and the graph are unchanged."""
    import onnx

    model = onnx.load(str(path))
    weights = {w.name for w in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    return bytes(model.SerializeToString())


def run(model: Any, inputs: NDArray[Any]) -> list[NDArray[np.float32]]:
    """Run a one-input model; return its outputs in declared order."""
    name = model.get_inputs()[0].name
    return [np.asarray(out) for out in model.run(None, {name: np.ascontiguousarray(inputs)})]
