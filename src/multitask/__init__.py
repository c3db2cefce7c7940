"""multitask: one network, many yes/no tasks, unknown labels welcome.

The Python API in one place (each name is imported on first use, so ``import multitask`` stays fast).
Quick start, on a tiny generated data set:

>>> import tempfile
>>> from pathlib import Path
>>> import multitask
>>> folder = Path(tempfile.mkdtemp())
>>> labels = multitask.generate_road_scenes(folder / "scenes", n_images=48, image_size=16, seed=1)
>>> config = multitask.build_config({
...     "data": {"path": str(labels), "image_size": 16, "augment": False, "num_workers": 0},
...     "model": {"trunk": "small_cnn", "trunk_options": {"width": 4, "depth": 2}},
...     "train": {"epochs": 1, "batch_size": 16, "progress": False, "accelerator": "cpu", "devices": 1},
...     "root": str(folder / "runs")})
>>> run = multitask.train(config, quiet=True, report=False)   # train, choose thresholds, evaluate, save
>>> run.tasks
('pedestrian', 'car', 'stop_sign', 'traffic_light')
>>> same = multitask.load_run(run.path)                         # what a run directory holds
>>> metrics = multitask.evaluate(same, labels, split="test")
>>> sorted(metrics), metrics["n_examples"]
(['macro', 'n_examples', 'tasks'], 7)
>>> frame = multitask.predict_inputs(same, [labels.parent / "images" / "scene_00000.png"])
>>> list(frame.columns[:3])
['image', 'pedestrian_prob', 'pedestrian']

Also here: :func:`compare` (shared vs separate networks, with bootstrap intervals), :func:`advise` (whether to
share, before training), :class:`MultiTaskClassifier` (a scikit-learn estimator for feature vectors),
:func:`register_trunk` and ``WEIGHTINGS.register`` (your own trunks and task-weighting methods, subclasses of
:class:`Weighting`),
:func:`read_data` / :class:`LabelTable` (label tables with unknown cells), :func:`predict_proba` (batched
probabilities of any network).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, tuple[str, str]] = {
    "train": ("multitask.pipeline", "train_run"),
    "train_run": ("multitask.pipeline", "train_run"),
    "compare": ("multitask.compare", "compare"),
    "Comparison": ("multitask.compare", "Comparison"),
    "advise": ("multitask.advise", "advise"),
    "predict_inputs": ("multitask.predict", "predict_inputs"),
    "evaluate": ("multitask.evaluation", "evaluate"),
    "load_run": ("multitask.runs", "load_run"),
    "Run": ("multitask.runs", "Run"),
    "RunConfig": ("multitask.config", "RunConfig"),
    "build_config": ("multitask.config", "build_config"),
    "load_config": ("multitask.config", "load_config"),
    "read_data": ("multitask.tables", "read_data"),
    "LabelTable": ("multitask.tables", "LabelTable"),
    "register_trunk": ("multitask.models.trunks", "register_trunk"),
    "WEIGHTINGS": ("multitask.weighting", "WEIGHTINGS"),
    "Weighting": ("multitask.weighting", "Weighting"),
    "MultiTaskClassifier": ("multitask.sklearn", "MultiTaskClassifier"),
    "predict_proba": ("multitask.inference", "predict_proba"),
    "generate_road_scenes": ("multitask.data.generators", "generate_road_scenes"),
    "UserError": ("multitask.errors", "UserError"),
}

__all__ = [
    "Comparison",
    "LabelTable",
    "MultiTaskClassifier",
    "Run",
    "RunConfig",
    "UserError",
    "WEIGHTINGS",
    "Weighting",
    "__version__",
    "advise",
    "build_config",
    "compare",
    "evaluate",
    "generate_road_scenes",
    "load_config",
    "load_run",
    "predict_inputs",
    "predict_proba",
    "read_data",
    "register_trunk",
    "train",
    "train_run",
]


class _Package(types.ModuleType):
    """The package module: ``compare`` and ``advise`` stay the functions when their submodules are imported.

    (Importing ``multitask.compare`` would otherwise set the package attribute ``compare`` to the submodule;
    reach the submodules with ``from multitask.compare import ...``.)
    """

    def __setattr__(self, name: str, value: Any) -> None:
        exported = _EXPORTS.get(name)
        if exported and isinstance(value, types.ModuleType) and value.__name__ == exported[0]:
            value = getattr(value, exported[1])
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    """PEP 562: import the module of a public name on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'multitask' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from multitask.advise import advise
    from multitask.compare import Comparison, compare
    from multitask.config import RunConfig, build_config, load_config
    from multitask.data.generators import generate_road_scenes
    from multitask.errors import UserError
    from multitask.evaluation import evaluate
    from multitask.inference import predict_proba
    from multitask.models.trunks import register_trunk
    from multitask.pipeline import train_run
    from multitask.pipeline import train_run as train
    from multitask.predict import predict_inputs
    from multitask.runs import Run, load_run
    from multitask.sklearn import MultiTaskClassifier
    from multitask.tables import LabelTable, read_data
    from multitask.weighting import WEIGHTINGS, Weighting
