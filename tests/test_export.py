"""ONNX export: onnxruntime gives the same logits as PyTorch, for any batch size; the model describes its input and
output in its metadata, and the README's recipe gives the probabilities of `multitask predict`."""

import json
import os
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


def readme_block(marker: str) -> str:
    """The README's Python code block that contains `marker`."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    [block] = [b for b in blocks if marker in b]
    return block


@pytest.mark.slow
def test_following_the_readme_gives_the_probabilities_of_predict(tmp_path: Path, tiny_scenes: Path) -> None:
    """Pillow + NumPy + onnxruntime, as the README says (reading the metadata), against `multitask predict`."""
    import shutil

    from multitask.predict import predict_inputs

    config = build_config({"data": {"path": str(tiny_scenes), "image_size": 24}, "root": str(tmp_path),
                           "model": {"trunk": "small_cnn", "trunk_options": {"width": 4, "depth": 2}},
                           "train": {"epochs": 1, "progress": False}})
    run = train_run(config, quiet=True, report=False)  # 32-px images squashed to 24 px: resizing matters
    export_onnx(run, tmp_path / "model.onnx")
    images = sorted((tiny_scenes.parent / "images").glob("*.png"))[:6]
    shutil.copy(images[0], tmp_path / "photo.jpg")
    namespace: dict = {}
    cwd = Path.cwd()
    try:
        os.chdir(tmp_path)
        exec(compile(readme_block("onnxruntime.InferenceSession"), "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    expected = predict_inputs(run, [tmp_path / "photo.jpg", *images[1:]])
    columns = [f"{t}_prob" for t in run.tasks]
    np.testing.assert_allclose(namespace["probabilities"][0], expected[columns].to_numpy()[0], atol=1e-5, rtol=0)
    batch = np.stack([namespace["load"](path) for path in images[1:]])  # the README's recipe, for a batch
    logits = namespace["session"].run(["logits"], {"input": batch})[0]
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), expected[columns].to_numpy()[1:], atol=1e-5, rtol=0)
    assert namespace["tasks"] == list(run.tasks)
    assert (namespace["decisions"][0] == expected[list(run.tasks)].to_numpy()[0].astype(bool)).all()


def test_metadata_describes_the_input(tmp_path: Path) -> None:
    from multitask.export import model_metadata
    from multitask.models.network import IMAGENET_MEAN, IMAGENET_STD, build_network
    from multitask.runs import Run

    config = build_config({"data": {"image_size": 40}, "model": {"trunk": "small_cnn",
                                                                  "trunk_options": {"width": 4, "depth": 2}}})
    run = Run(tmp_path, config, ("car", "bus"), np.array([0.3, 0.6]), build_network(config.model, 2), "images", ())
    path = export_onnx(run, tmp_path / "model.onnx")
    meta = ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
    assert meta == model_metadata(run)
    assert (meta["input_name"], meta["input_layout"], meta["colour_order"], meta["value_range"],
            meta["image_size"]) == ("input", "NCHW", "RGB", "[0, 1]", "40")
    normalization = json.loads(meta["normalization"])
    assert normalization["mean"] == pytest.approx(IMAGENET_MEAN) and normalization["std"] == pytest.approx(IMAGENET_STD)
    assert "inside the model" in normalization["applied"]
    assert json.loads(meta["tasks"]) == ["car", "bus"] and json.loads(meta["thresholds"]) == pytest.approx([0.3, 0.6])
    assert meta["output_name"] == "logits" and "sigmoid" in meta["output"]
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left behind
