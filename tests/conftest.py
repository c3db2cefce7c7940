"""Shared fixtures: tiny generated data sets, written once per test session, and one torch thread for a test."""

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several test workers share the cores: one thread each avoids oversubscription, which slows
    # small torch operations down by orders of magnitude on a busy machine.
    torch.set_num_threads(1)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread during the test, the previous count restored after (a module asks for it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): the networks in tests are tiny, so extra
    intra-op threads only add synchronisation, and on a loaded 2-core machine spinning OpenMP threads make small
    operations orders of magnitude slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """labels.csv of 96 generated 32-px road scenes, 30 % of train/val labels unknown."""
    from multitask.data.generators import generate_road_scenes

    return generate_road_scenes(tmp_path_factory.mktemp("scenes"), n_images=96, image_size=32,
                                unknown_fraction=0.3, seed=0)


@pytest.fixture(scope="session")
def tiny_features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """features.csv: 300 rows, 8 features, 3 linearly separable-ish tasks with 30 % unknown."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    y = (x @ rng.normal(size=(8, 3)) + 0.3 * rng.normal(size=(300, 3)) > 0).astype(int).astype(str)
    y[rng.random(y.shape) < 0.3] = "?"
    frame = pd.DataFrame(x.round(5), columns=[f"f{i}" for i in range(8)])
    for j, task in enumerate(("a", "b", "c")):
        frame[task] = y[:, j]
    path = tmp_path_factory.mktemp("features") / "features.csv"
    frame.to_csv(path, index=False)
    return path
