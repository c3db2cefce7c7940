"""Run directories: everything a training run produced, in files a person or a program can read.

    runs/<name>/
      config.yaml        the full resolved config (rerun with `multitask train --config config.yaml`)
      tasks.json         task names, decision thresholds, input kind and feature names
      model.safetensors  the network's weights (no pickle)
      metrics.json       validation and test metrics per task, macro means, timings, sizes
      logs/metrics.csv   per-epoch training log (Lightning CSVLogger)
      checkpoints/       the best Lightning checkpoint (for resuming)
      report.md          the report, with plots/ beside it
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from multitask.config import RunConfig, load_config
from multitask.distributed import is_global_zero, shared_run_dir
from multitask.models.network import MultiTaskNetwork, build_network


@dataclass
class Run:
    """A trained model with its config, tasks and thresholds, as stored in a run directory."""

    path: Path
    config: RunConfig
    tasks: tuple[str, ...]
    thresholds: np.ndarray
    network: MultiTaskNetwork
    input_kind: str
    feature_names: tuple[str, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)


def new_run_dir(config: RunConfig, default_stem: str = "run") -> Path:
    """runs/<name>; a fresh timestamped name when none is given, `-2`, `-3`… if it exists.

    In a distributed run only rank 0 picks (and writes) the folder; give `name` when the processes are started
    together by torchrun or SLURM, so that they agree on it.
    """
    shared = shared_run_dir()
    if shared is not None:  # a process launched by rank 0 of a distributed run: rank 0 chose the folder
        return shared
    name = config.name or f"{default_stem}-{datetime.now():%Y%m%d-%H%M%S}"
    path = Path(config.root) / name
    if not is_global_zero():  # started beside rank 0 (torchrun, SLURM): it writes nothing, so no new name
        return path
    candidate, k = path, 2
    while candidate.exists() and any(candidate.iterdir()):
        candidate = path.with_name(f"{name}-{k}")
        k += 1
    candidate.mkdir(parents=True, exist_ok=True)
    return candidate


def jsonable(value: Any) -> Any:
    """Numbers, arrays and containers as JSON-ready Python values; NaN and ±inf become None.

    >>> jsonable({"a": np.array([1.0, np.nan]), "b": (np.int64(2), Path("x"))})
    {'a': [1.0, None], 'b': [2, 'x']}
    """
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, value: Any) -> None:
    """JSON with NaN written as null (strict JSON)."""
    path.write_text(json.dumps(jsonable(value), indent=2, allow_nan=False) + "\n")


def save_run(path: Path, config: RunConfig, network: MultiTaskNetwork, tasks: tuple[str, ...],
             thresholds: np.ndarray, input_kind: str, feature_names: tuple[str, ...] = (),
             metrics: dict[str, Any] | None = None) -> Run:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(config.to_yaml())
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt", "multitask": "1"})
    write_json(path / "tasks.json", {
        "tasks": list(tasks),
        "thresholds": {t: float(v) for t, v in zip(tasks, thresholds, strict=True)},
        "input_kind": input_kind,
        "feature_names": list(feature_names),
    })
    if metrics is not None:
        write_json(path / "metrics.json", metrics)
    return Run(path, config, tuple(tasks), np.asarray(thresholds), network, input_kind, tuple(feature_names),
               metrics or {})


def load_run(path: str | Path) -> Run:
    """Rebuild a run's network from config.yaml and load model.safetensors."""
    path = Path(path)
    if not (path / "tasks.json").is_file() or not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path}: not a run directory (needs tasks.json and model.safetensors)")
    config = load_config(path / "config.yaml")
    info = json.loads((path / "tasks.json").read_text())
    tasks = tuple(info["tasks"])
    features = tuple(info.get("feature_names", ()))
    network = build_network(config.model, len(tasks), len(features), load_weights=False)
    state = load_file(str(path / "model.safetensors"))
    network.load_state_dict(state, strict=True)
    network.eval()
    thresholds = np.array([info["thresholds"][t] for t in tasks], dtype=np.float64)
    metrics_path = path / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    return Run(path, config, tasks, thresholds, network, info["input_kind"], features, metrics)


def load_network_state(network: torch.nn.Module, path: str | Path) -> None:
    """Load a run's model.safetensors into a network of the same shape."""
    network.load_state_dict(load_file(str(Path(path) / "model.safetensors")), strict=True)


def load_shared_weights(network: MultiTaskNetwork, run_path: str | Path) -> int:
    """Copy a trained run's shared trunk into `network` (transfer learning); the task heads stay new.

    Every parameter and buffer of `network.trunk` must be found in the run with the same shape: the two runs
    must use the same trunk and trunk options. Returns the number of tensors copied.
    """
    path = Path(run_path)
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path}: not a run directory (no model.safetensors)")
    state = load_file(str(path / "model.safetensors"))
    own = network.trunk.state_dict()
    source = {k.removeprefix("trunk."): v for k, v in state.items() if k.startswith("trunk.")}
    missing = [k for k in own if k not in source]
    if missing:
        raise ValueError(f"{path}: the run's trunk does not match this model's (e.g. {missing[0]!r} is missing); "
                         "transfer needs the same model.trunk and model.trunk_options")
    for key, tensor in own.items():
        if source[key].shape != tensor.shape:
            raise ValueError(f"{path}: trunk weight {key!r} has shape {tuple(source[key].shape)} in the run, "
                             f"{tuple(tensor.shape)} here; use the same model.trunk_options")
    network.trunk.load_state_dict({k: source[k] for k in own}, strict=True)
    return len(own)
