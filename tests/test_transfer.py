"""Transfer learning: a new run for new tasks whose trunk starts from a trained run."""

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from multitask.config import build_config
from multitask.models.network import build_network
from multitask.pipeline import train_run
from multitask.runs import load_shared_weights
from multitask.tables import label_table_from_arrays


def tables(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(240, 6))
    w = rng.normal(size=(6, 3))
    y = (x @ w > 0).astype(float)
    split = np.array(["train"] * 160 + ["val"] * 40 + ["test"] * 40)
    return (label_table_from_arrays(x, y[:, :2], split=split, tasks=["a", "b"]),
            label_table_from_arrays(x, y[:, 2:], split=split, tasks=["c"]))


def config(tmp_path: Path, **values: object):
    return build_config({"root": str(tmp_path), "model": {"trunk": "mlp", "trunk_options": {"hidden": [16]},
                                                        "select": "off"},  # an MLP source: a trunk to transfer
                         "train": {"epochs": 2, "progress": False, **values}})


def test_transfer_copies_the_trunk_and_starts_new_heads(tmp_path: Path) -> None:
    source_table, target_table = tables()
    source = train_run(config(tmp_path), source_table, quiet=True, report=False)
    network = build_network(config(tmp_path).model, n_tasks=1, n_features=6)
    assert load_shared_weights(network, source.path) > 0
    trained = load_file(str(source.path / "model.safetensors"))
    for key, value in network.trunk.state_dict().items():
        assert torch.equal(value, trained[f"trunk.{key}"])
    assert network.task_block.weight.shape == (1, 16)


def test_frozen_transfer_keeps_the_source_trunk(tmp_path: Path) -> None:
    source_table, target_table = tables()
    source = train_run(config(tmp_path), source_table, quiet=True, report=False)
    cfg = config(tmp_path, freeze_trunk=True)
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"init_from": source.path})})
    target = train_run(cfg, target_table, quiet=True, report=False)
    before, after = (load_file(str(r.path / "model.safetensors")) for r in (source, target))
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("trunk."))
    assert target.tasks == ("c",)


def test_transfer_from_a_different_trunk_is_refused(tmp_path: Path) -> None:
    source_table, _ = tables()
    source = train_run(config(tmp_path), source_table, quiet=True, report=False)
    other = build_network(build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [8]}}}).model, 1, 6)
    with pytest.raises(ValueError, match="shape"):
        load_shared_weights(other, source.path)
