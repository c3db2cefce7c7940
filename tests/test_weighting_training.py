"""The weighting methods inside the real training step and a short `train_run`, with 40 % unknown labels."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from multitask.config import build_config
from multitask.models.network import build_network
from multitask.pipeline import train_run
from multitask.tables import LabelTable, label_table_from_arrays
from multitask.training import MultiTaskModule
from multitask.weighting import WEIGHTINGS, build_weighting
from multitask.weighting.mgda import MGDA

N_TASKS = 4


@pytest.fixture(scope="module")
def table() -> LabelTable:
    rng = np.random.default_rng(0)
    n = 96
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = (x[:, :N_TASKS] + 0.5 * rng.normal(size=(n, N_TASKS)) > 0).astype(np.float64)
    y[rng.random((n, N_TASKS)) < 0.4] = np.nan  # 40 % unknown labels
    y[:, 0] = np.where(np.isnan(y[:, 0]), 1.0, y[:, 0])  # keep both classes and a known label in every split
    y[:4, 0], y[4:8, 0] = 0.0, 1.0
    y[3:64, 3] = np.nan  # task 3: labels in 3 training rows only, so most batches lack it
    y[0, 3], y[1:3, 3] = 0.0, 1.0
    split = np.array(["train"] * 64 + ["val"] * 16 + ["test"] * 16)
    return label_table_from_arrays(x, y, split=split)


def config_for(name: str, root: Path) -> object:
    return build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [16]}},
                         "loss": {"normalization": "known"},
                         "train": {"epochs": 1, "batch_size": 16, "weighting": name, "progress": False,
                                   "scheduler": "none"},
                         "root": str(root)})


class RecordingMGDA(MGDA):
    """MGDA that records the arguments of each aggregate call."""

    def __init__(self, n_tasks: int) -> None:
        super().__init__(n_tasks)
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []

    def aggregate(self, gradients: torch.Tensor, losses: torch.Tensor, tasks: torch.Tensor | None = None):
        self.calls.append((gradients.clone(), losses.clone(), None if tasks is None else tasks.clone()))
        return super().aggregate(gradients, losses, tasks)


def test_training_step_passes_only_present_tasks_with_their_index(table: LabelTable, tmp_path: Path) -> None:
    config = config_for("mgda", tmp_path)
    network = build_network(config.model, N_TASKS, table.n_features)
    spy = RecordingMGDA(N_TASKS)
    module = MultiTaskModule(network, table.tasks, config.loss, config.train, weighting=spy)
    x = torch.from_numpy(table.features[:8])
    targets = torch.from_numpy(table.targets[:8]).float()
    known = torch.from_numpy(table.known[:8]).clone()
    known[:, 2] = False  # task 2 has no known label in this batch
    with warnings.catch_warnings():  # self.log outside a Trainer
        warnings.simplefilter("ignore")
        objective = module.training_step((x, targets, known), 0)
    objective.backward()
    gradients, losses, tasks = spy.calls[-1]
    assert gradients.shape[0] == 3 and losses.shape == (3,)
    assert tasks is not None, "training step must call aggregate(gradients, losses, tasks=index)"
    assert tasks.tolist() == [0, 1, 3]
    assert spy.last_weights[2] == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", WEIGHTINGS.names())
def test_one_epoch_of_train_run_with_each_method(name: str, table: LabelTable, tmp_path: Path) -> None:
    run = train_run(config_for(name, tmp_path), table, run_dir=tmp_path / name, quiet=True, report=False)
    macro = run.metrics["test"]["macro"]
    assert math.isfinite(macro["average_precision"])
    assert all(torch.isfinite(parameter).all() for parameter in run.network.parameters())


def test_methods_build_with_yaml_style_options() -> None:
    assert build_weighting("cagrad", n_tasks=3, c=0.2, rescale=0).c == 0.2
    assert build_weighting("gradnorm", n_tasks=3, alpha=0.5, lr=0.01).alpha == 0.5
    assert build_weighting("famo", n_tasks=3, lr=0.01, weight_decay=0.0).weight_decay == 0.0
    assert build_weighting("rlw", n_tasks=3, seed=1).generator is not None
