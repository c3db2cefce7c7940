"""Run directories: everything a training run produced, in files a person or a program can read.

    runs/<name>/
      status.json        running / finished / failed / interrupted, with times, pid and the error
      provenance.json    command line, config overrides, package versions, git commit, hardware
      config.yaml        the full resolved config (rerun with `multitask train --config config.yaml`)
      tasks.json         task names, decision thresholds, input kind and feature names
      model.safetensors  the network's weights (no pickle)
      metrics.json       validation and test metrics per task, macro means, timings, sizes
      logs/metrics.csv   per-epoch training log (Lightning CSVLogger)
      checkpoints/       best.ckpt (best validation epoch) and last.ckpt (last finished epoch, for resuming)
      report.html        the report, one self-contained page (report.md with plots/ beside it)

The folder is reserved with one ``os.mkdir`` (which fails when it exists), so two runs never share one; a name
that is taken gets ``-2``, ``-3`` … Every file is written atomically (:mod:`multitask.files`).

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> [reserve_run_dir(root, "a").name for _ in range(3)]
['a', 'a-2', 'a-3']
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from multitask.config import RunConfig, load_config
from multitask.distributed import is_global_zero, shared_run_dir
from multitask.errors import RunDirError, UserError
from multitask.files import atomic_write_text, atomic_write_with
from multitask.models.network import MultiTaskNetwork, build_network

STATUSES = ("running", "finished", "failed", "interrupted")
RUN_FILES = ("config.yaml", "tasks.json", "model.safetensors")


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


# ------------------------------------------------------------------------------------------ reserving a name


def reserve_run_dir(root: str | Path, name: str) -> Path:
    """Create root/name, or root/name-2, -3 … when taken; atomic (``os.mkdir``), so concurrent runs never share."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the run root {root} (--root): {error.strerror or error}") from None
    k = 1
    while True:
        candidate = root / (name if k == 1 else f"{name}-{k}")
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            k += 1
        except OSError as error:
            raise UserError(f"cannot create run directory {candidate} (--root {root}): "
                            f"{error.strerror or error}") from None


def new_run_dir(config: RunConfig, default_stem: str = "run") -> Path:
    """runs/<name> reserved for a new run; a timestamped name when none is given, `-2`, `-3`… if taken.

    In a distributed run only rank 0 reserves (and writes) the folder; give `name` when the processes are
    started together by torchrun or SLURM, so that they agree on it.
    """
    shared = shared_run_dir()
    if shared is not None:  # a process launched by rank 0 of a distributed run: rank 0 chose the folder
        return shared
    name = config.name or f"{default_stem}-{datetime.now():%Y%m%d-%H%M%S}"
    if not is_global_zero():  # started beside rank 0 (torchrun, SLURM): it writes nothing, so no new name
        return Path(config.root) / name
    return reserve_run_dir(config.root, name)


# ------------------------------------------------------------------------------------------------ JSON files


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


def write_json(path: str | Path, value: Any) -> None:
    """JSON with NaN written as null (strict JSON), written atomically."""
    atomic_write_text(path, json.dumps(jsonable(value), indent=2, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    """A JSON file of a run directory; RunDirError naming the file when it is unreadable or malformed."""
    try:
        return json.loads(path.read_text())
    except OSError as error:
        raise RunDirError(f"{path}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise RunDirError(f"{path}: not a text file (damaged?)") from None
    except json.JSONDecodeError as error:
        raise RunDirError(f"{path}: malformed JSON (line {error.lineno}, column {error.colno}): {error.msg}") \
            from None


# ------------------------------------------------------------------------------------------------ status


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_status(path: str | Path) -> dict[str, Any] | None:
    """status.json of a run directory (None when there is none: a run from before status files)."""
    file = Path(path) / "status.json"
    if not file.is_file():
        return None
    status = read_json(file)
    if not isinstance(status, dict) or status.get("status") not in STATUSES:
        raise RunDirError(f"{file}: not a run status (needs \"status\": one of {', '.join(STATUSES)})")
    return status


def write_status(path: str | Path, status: str, **fields: Any) -> dict[str, Any]:
    """Update status.json atomically: `status` and `fields` over what was there; times and pid kept current."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    path = Path(path)
    try:
        current = read_status(path) or {}
    except RunDirError:
        current = {}
    current.update(fields)
    current["status"] = status
    current.setdefault("started", utc_now())
    current["updated"] = utc_now()
    current["ended"] = utc_now() if status != "running" else None
    current["pid"] = os.getpid()
    current["host"] = platform.node()
    if status == "running":
        current["error"] = None
    write_json(path / "status.json", current)
    return current


def process_alive(pid: int | None, host: str | None = None) -> bool | None:
    """Whether a process of this machine still exists (None: unknown, another host)."""
    if not pid or (host and host != platform.node()):
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe_status(status: dict[str, Any]) -> str:
    """'running', 'running (process 12 is gone: killed?)', 'failed: <error>' …"""
    state = status["status"]
    if state == "running" and process_alive(status.get("pid"), status.get("host")) is False:
        return f"running (process {status.get('pid')} is gone: killed?)"
    if state in ("failed", "interrupted") and status.get("error"):
        return f"{state}: {status['error']}"
    return state


def resume_hint(path: Path) -> str:
    return f"resume with multitask train --resume {path}"


def last_checkpoint(path: str | Path) -> Path | None:
    """checkpoints/last.ckpt (the state after the last finished epoch) when there is one."""
    file = Path(path) / "checkpoints" / "last.ckpt"
    return file if file.is_file() else None


# ------------------------------------------------------------------------------------------------ provenance


def _git_commit() -> str | None:
    folder = Path(__file__).resolve().parent
    try:
        done = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=False)
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version(), "torch": torch.__version__}
    for package in ("multitask", "lightning", "torchmetrics", "torchvision", "numpy", "pandas",
                    "scikit-learn", "safetensors", "pydantic"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value and prefix.count(".") < 1:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_overrides(config: RunConfig) -> dict[str, Any]:
    """The config keys whose values differ from the defaults.

    >>> config_overrides(RunConfig.model_validate({"train": {"epochs": 3}}))
    {'train.epochs': 3}
    """
    given, default = _flat(config.model_dump(mode="json")), _flat(RunConfig().model_dump(mode="json"))
    return {k: v for k, v in given.items() if default.get(k, object()) != v}


def provenance(config: RunConfig) -> dict[str, Any]:
    """Where a run came from: command line, overrides, versions, git commit, hardware."""
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    return {
        "command": list(sys.argv),
        "cwd": os.getcwd(),
        "overrides": config_overrides(config),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "hardware": {"machine": platform.machine(), "processor": platform.processor() or None,
                     "cpu_cores": os.cpu_count(), "gpus": gpus, "system": platform.platform(),
                     "host": platform.node()},
        "time": utc_now(),
    }


# ------------------------------------------------------------------------------------------------ save / load


def save_run(path: Path, config: RunConfig, network: MultiTaskNetwork, tasks: tuple[str, ...],
             thresholds: np.ndarray, input_kind: str, feature_names: tuple[str, ...] = (),
             metrics: dict[str, Any] | None = None) -> Run:
    """Write weights, tasks.json and metrics.json (each once, atomically); config.yaml unless already there."""
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "config.yaml").exists():
        atomic_write_text(path / "config.yaml", config.to_yaml())
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    atomic_write_with(path / "model.safetensors",
                      lambda tmp: save_file(state, str(tmp), metadata={"format": "pt", "multitask": "1"}))
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


def read_weights(file: Path) -> dict[str, torch.Tensor]:
    """model.safetensors as tensors; RunDirError naming the file when it is missing, truncated or not safetensors."""
    if not file.is_file():
        raise RunDirError(f"{file}: missing (a run directory needs {', '.join(RUN_FILES)})")
    try:
        return load_file(str(file))
    except Exception as error:  # safetensors raises its own error types (and OSError) for damaged files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RunDirError(f"{file}: not a readable safetensors file (truncated or damaged?): {reason}") from None


def _read_tasks(file: Path) -> tuple[tuple[str, ...], dict[str, float], str, tuple[str, ...]]:
    info = read_json(file)
    if not isinstance(info, dict):
        raise RunDirError(f"{file}: expected a JSON object with tasks, thresholds, input_kind")
    tasks, thresholds = info.get("tasks"), info.get("thresholds")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise RunDirError(f"{file}: \"tasks\" must be a non-empty list of task names")
    if len(set(tasks)) != len(tasks):
        raise RunDirError(f"{file}: \"tasks\" names a task twice")
    if not isinstance(thresholds, dict) or set(thresholds) != set(tasks):
        raise RunDirError(f"{file}: \"thresholds\" must give one threshold for each task in \"tasks\"")
    values = {}
    for task in tasks:
        value = thresholds[task]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise RunDirError(f"{file}: threshold of task {task!r} is {value!r}, not a finite number")
        values[task] = float(value)
    kind = info.get("input_kind")
    if kind not in ("images", "features"):
        raise RunDirError(f"{file}: \"input_kind\" must be 'images' or 'features', got {kind!r}")
    features = info.get("feature_names", [])
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise RunDirError(f"{file}: \"feature_names\" must be a list of column names")
    return tuple(tasks), values, kind, tuple(features)


def _check_weights(path: Path, network: MultiTaskNetwork, state: dict[str, torch.Tensor], config: RunConfig,
                   n_tasks: int, n_features: int) -> None:
    """Name the file that disagrees with the weights: config.yaml (the network) or tasks.json (tasks/features)."""
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if not (missing or unexpected or shapes):
        return
    trunk = [k for k in missing + unexpected + shapes if k.startswith("trunk.")]
    weights = path / "model.safetensors"
    inputs = [k for k in shapes if k.startswith("normalize.")]
    if inputs:
        key = inputs[0]
        raise RunDirError(f"{path / 'tasks.json'} disagrees with {weights}: it lists {n_features} feature(s), but "
                          f"the network's input {key!r} has shape {tuple(state[key].shape)}")
    if shapes and not trunk:
        key = shapes[0]
        raise RunDirError(f"{path / 'tasks.json'} disagrees with {weights}: it lists {n_tasks} task(s) and "
                          f"{n_features} feature(s), but weight {key!r} has shape {tuple(state[key].shape)} "
                          f"(expected {tuple(own[key].shape)})")
    example = (missing or unexpected or shapes)[0]
    raise RunDirError(f"{path / 'config.yaml'} disagrees with {weights}: model.trunk {config.model.trunk!r} "
                      f"(sharing {config.model.sharing!r}, trunk_options {config.model.trunk_options}) does not "
                      f"build the saved network (e.g. weight {example!r} "
                      + ("is missing" if example in missing else "is unexpected" if example in unexpected
                         else f"has shape {tuple(state[example].shape)}, expected {tuple(own[example].shape)}")
                      + ")")


def check_finished(path: Path) -> dict[str, Any] | None:
    """RunDirError unless the run directory holds a finished run (runs from before status files pass)."""
    if not path.is_dir():
        raise RunDirError(f"{path}: no such run directory")
    status = read_status(path)
    if status is not None and status["status"] != "finished":
        state = describe_status(status)
        if status["status"] == "failed":
            raise RunDirError(f"{path}: run failed ({status.get('error') or 'no error recorded'}); fix the cause "
                              f"and rerun it, or {resume_hint(path)}")
        raise RunDirError(f"{path}: run is unfinished (status {state}): {resume_hint(path)}")
    return status


def load_run(path: str | Path) -> Run:
    """Rebuild a run's network from config.yaml and load model.safetensors, checking every file.

    Each problem (unfinished run, missing file, malformed JSON/YAML, damaged weights, files that disagree)
    is a RunDirError naming the file and what is wrong.
    """
    path = Path(path)
    check_finished(path)
    for name in RUN_FILES:
        if not (path / name).is_file():
            raise RunDirError(f"{path / name}: missing (a run directory needs {', '.join(RUN_FILES)})")
    try:
        config = load_config(path / "config.yaml")
    except UserError as error:
        message = str(error)
        raise RunDirError(message if str(path / "config.yaml") in message else f"{path / 'config.yaml'}: {message}") \
            from None
    tasks, threshold_map, kind, features = _read_tasks(path / "tasks.json")
    state = read_weights(path / "model.safetensors")
    try:
        network = build_network(config.model, len(tasks), len(features), load_weights=False)
    except (UserError, KeyError, ValueError, TypeError) as error:  # registries raise KeyError for unknown names
        reason = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise RunDirError(f"{path / 'config.yaml'}: cannot build the network: {reason}") from None
    _check_weights(path, network, state, config, len(tasks), len(features))
    network.load_state_dict(state, strict=True)
    network.eval()
    thresholds = np.array([threshold_map[t] for t in tasks], dtype=np.float64)
    metrics_path = path / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.exists() else {}
    if not isinstance(metrics, dict):
        raise RunDirError(f"{metrics_path}: expected a JSON object of metrics")
    return Run(path, config, tasks, thresholds, network, kind, features, metrics)


def load_shared_weights(network: MultiTaskNetwork, run_path: str | Path) -> int:
    """Copy a trained run's shared trunk into `network` (transfer learning); the task heads stay new.

    Every parameter and buffer of `network.trunk` must be found in the run with the same shape: the two runs
    must use the same trunk and trunk options. Returns the number of tensors copied.
    """
    path = Path(run_path)
    state = read_weights(path / "model.safetensors")
    own = network.trunk.state_dict()
    source = {k.removeprefix("trunk."): v for k, v in state.items() if k.startswith("trunk.")}
    missing = [k for k in own if k not in source]
    if missing:
        raise RunDirError(f"{path}: the run's trunk does not match this model's (e.g. {missing[0]!r} is missing); "
                          "transfer needs the same model.trunk and model.trunk_options")
    for key, tensor in own.items():
        if source[key].shape != tensor.shape:
            raise RunDirError(f"{path}: trunk weight {key!r} has shape {tuple(source[key].shape)} in the run, "
                              f"{tuple(tensor.shape)} here; use the same model.trunk_options")
    network.trunk.load_state_dict({k: source[k] for k in own}, strict=True)
    return len(own)


# ------------------------------------------------------------------------------------------------ listing


@dataclass
class RunSummary:
    """One line of `multitask runs`."""

    name: str
    status: str
    data: str
    epochs: str
    test_map: float | None
    path: Path


def summarize_run(path: Path) -> RunSummary:
    """Status, data, epochs done / planned and test mAP of a run directory; damaged files are shown, not raised."""
    try:
        status = read_status(path)
        if status:
            state = describe_status(status)
        elif (path / "comparison.json").is_file():
            state = "finished (comparison)"
        elif (path / "plan.json").is_file():
            state = f"unfinished comparison: resume with multitask compare --resume {path}"
        else:
            state = "finished" if (path / "model.safetensors").is_file() else "unknown"
    except RunDirError as error:
        status, state = None, f"damaged: {error}"
    data, planned = "?", "?"
    try:
        config = load_config(path / "config.yaml")
        data, planned = str(config.data.path), str(config.train.epochs)
    except UserError:
        pass
    done, test_map = (status or {}).get("epochs_done"), None
    metrics_path = path / "metrics.json"
    if metrics_path.is_file():
        try:
            metrics = read_json(metrics_path)
            done = metrics.get("epochs", done)
            test_map = metrics.get("test", {}).get("macro", {}).get("average_precision")
            if metrics.get("kind") == "detection":  # a detector: its test mAP@0.5
                test_map = metrics.get("test", {}).get("map50")
        except (RunDirError, AttributeError):
            pass
    return RunSummary(path.name, state, data, f"{'?' if done is None else done}/{planned}", test_map, path)


def list_runs(root: str | Path) -> list[RunSummary]:
    """Every run directory under `root` (folders with a status.json or a config.yaml), oldest first."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"no such folder: {root} (--root)")
    folders = [p for p in root.iterdir() if p.is_dir() and ((p / "status.json").exists()
                                                             or (p / "config.yaml").exists())]
    return [summarize_run(p) for p in sorted(folders, key=lambda p: (p.stat().st_mtime, p.name))]
