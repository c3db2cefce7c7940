"""ONNX export: onnxruntime gives the same logits as PyTorch, for any batch size; tasks travel as metadata."""

import json
from pathlib import Path

import numpy as np
import pytest

from multitask.config import build_config
from multitask.export import example_input, export_onnx
from multitask.pipeline import train_run
from multitask.tables import label_table_from_arrays

ort = pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("trunk", ["mlp", "small_cnn"])
def test_onnx_matches_torch(tmp_path: Path, tiny_scenes: Path, trunk: str) -> None:
    if trunk == "mlp":
        rng = np.random.default_rng(0)
        table = label_table_from_arrays(rng.normal(size=(60, 4)), (rng.random((60, 2)) < 0.5).astype(float),
                                        split=np.array(["train"] * 40 + ["val"] * 20), tasks=["p", "q"])
        values = {"model": {"trunk": "mlp", "trunk_options": {"hidden": [8]}}}
    else:
        table = None
        values = {"data": {"path": str(tiny_scenes), "image_size": 32},
                  "model": {"trunk": "small_cnn", "trunk_options": {"width": 4, "depth": 2}, "tower_depth": 1}}
    config = build_config({**values, "root": str(tmp_path), "train": {"epochs": 1, "progress": False}})
    run = train_run(config, table, quiet=True, report=False)
    path = export_onnx(run, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path))
    for batch in (1, 5):
        x = example_input(run, batch)
        got = session.run(["logits"], {"input": x.numpy()})[0]
        np.testing.assert_allclose(got, run.network(x).detach().numpy(), atol=1e-4, rtol=1e-4)
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["tasks"]) == list(run.tasks)
    assert json.loads(metadata["thresholds"]) == pytest.approx(list(run.thresholds))
