"""Export a trained run to ONNX: the network with its input normalisation, logits out, task names inside.

``export_onnx("runs/demo/compare/shared", "model.onnx")`` exports a run directory; a loaded (or hand-built)
:class:`~multitask.runs.Run` works too:

>>> import tempfile
>>> import numpy as np
>>> from multitask.config import build_config
>>> from multitask.models.network import build_network
>>> config = build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [8]}}})
>>> run = Run(Path("."), config, ("a", "b"), np.array([0.5, 0.5]), build_network(config.model, 2, n_features=3),
...           "features", ("x", "y", "z"))
>>> export_onnx(run, Path(tempfile.mkdtemp()) / "model.onnx").name
'model.onnx'
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from multitask.runs import Run, load_run


def example_input(run: Run, batch: int = 2) -> torch.Tensor:
    """A batch of the shape the run's network takes: images in [0, 1] or feature vectors."""
    if run.input_kind == "features":
        return torch.zeros(batch, run.n_features)
    size = run.config.data.image_size
    return torch.rand(batch, 3, size, size)


def export_onnx(run: str | Path | Run, path: str | Path) -> Path:
    """Write `path` (.onnx): input `input` (batch × …, batch size free), output `logits` (batch × T).

    The file's metadata holds the task names and decision thresholds (`tasks`, `thresholds`, JSON), so a
    consumer can turn logits into decisions: probability = sigmoid(logit) ≥ threshold.
    Needs the `onnx` extra (`pip install 'multitask[onnx]'`: onnx, onnxscript).
    """
    run = run if isinstance(run, Run) else load_run(run)
    path = Path(path)
    try:
        import onnx
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise RuntimeError("ONNX export needs the onnx extra: pip install 'multitask[onnx]'") from error
    network = run.network.eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(network, (example_input(run),), input_names=["input"], output_names=["logits"],
                                dynamic_shapes={"x": {0: batch}}, dynamo=True, verbose=False)
    program.save(str(path))
    model = onnx.load(str(path))
    for key, value in (("tasks", json.dumps(list(run.tasks))),
                       ("thresholds", json.dumps([float(t) for t in run.thresholds])),
                       ("input_kind", run.input_kind)):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path
