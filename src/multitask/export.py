"""Export a trained run to ONNX: the network with its input normalisation, logits out, and a model that
describes itself.

The file's metadata (``metadata_props``; onnxruntime: ``session.get_modelmeta().custom_metadata_map``) says
everything a consumer needs, as strings (lists and mappings as JSON): the input's name, layout, colour order,
value range, size and resizing, the normalisation (applied inside the model, with its mean and std), the
tasks in output order with their decision thresholds, and what the output holds (logits). README.md's
"ONNX" section is the recipe, and a test follows it to the same probabilities as ``multitask predict``.

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
>>> meta = model_metadata(run)
>>> meta["input_layout"], meta["feature_names"], meta["output"][:41]
('NC', '["x", "y", "z"]', 'logits (N, T), one column per task in the')
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from multitask.errors import UserError
from multitask.files import atomic_path
from multitask.runs import Run, load_run

INPUT_NAME, OUTPUT_NAME = "input", "logits"
RESIZE = ("PIL: Image.open(path).convert('RGB').resize((image_size, image_size), Image.BILINEAR, "
          "reducing_gap=2.0): squashed to a square, no crop")


def example_input(run: Run, batch: int = 2) -> torch.Tensor:
    """A batch of the shape the run's network takes: images in [0, 1] or feature vectors."""
    if run.input_kind == "features":
        return torch.zeros(batch, run.n_features)
    size = run.config.data.image_size
    return torch.rand(batch, 3, size, size)


def _normalization(run: Run) -> dict[str, object]:
    """The input normalisation the network applies itself: (x - mean) / std per channel or feature."""
    from multitask.models.network import Standardize

    module = run.network.normalize
    if not isinstance(module, Standardize):
        return {"applied": "none"}
    return {"applied": "inside the model: do not normalise the input", "formula": "(x - mean) / std",
            "mean": [round(float(v), 8) for v in module.mean], "std": [round(float(v), 8) for v in module.std]}


def model_metadata(run: Run) -> dict[str, str]:
    """The metadata written into the ONNX file (every value a string; lists and mappings as JSON)."""
    meta = {
        "producer": "multitask",
        "input_name": INPUT_NAME,
        "input_kind": run.input_kind,
        "normalization": json.dumps(_normalization(run)),
        "tasks": json.dumps(list(run.tasks)),
        "thresholds": json.dumps([float(t) for t in run.thresholds]),
        "output_name": OUTPUT_NAME,
        "output": "logits (N, T), one column per task in the order of `tasks`: probability = 1 / (1 + exp(-logit)) "
                  "(not probabilities: apply the sigmoid); decision = probability >= the task's threshold",
    }
    if run.input_kind == "features":
        meta.update({"input_layout": "NC", "input_dtype": "float32",
                     "input": "float32 (N, F): raw feature values in the order of `feature_names`",
                     "feature_names": json.dumps(list(run.feature_names))})
    else:
        size = run.config.data.image_size
        meta.update({"input_layout": "NCHW", "input_dtype": "float32", "colour_order": "RGB",
                     "value_range": "[0, 1]", "image_size": str(size), "resize": RESIZE,
                     "input": f"float32 (N, 3, {size}, {size}): RGB images, channels first, pixel / 255 in [0, 1]"})
    return meta


def export_onnx(run: str | Path | Run, path: str | Path) -> Path:
    """Write `path` (.onnx): input `input` (batch × …, batch size free), output `logits` (batch × T), with the
    metadata of :func:`model_metadata`. Needs the `onnx` extra (`pip install 'multitask[onnx]'`)."""
    run = run if isinstance(run, Run) else load_run(run)
    path = Path(path)
    try:
        import onnx
    except ImportError:  # pragma: no cover - depends on the environment
        raise UserError("ONNX export needs the onnx extra: pip install 'multitask[onnx]'") from None
    network = run.network.eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(network, (example_input(run),), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                dynamic_shapes={"x": {0: batch}}, dynamo=True, verbose=False)
    with atomic_path(path) as tmp:
        program.save(str(tmp))
        model = onnx.load(str(tmp))
        for key, value in model_metadata(run).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, str(tmp))
    return path
