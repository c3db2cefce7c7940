"""The advisor's finished parts, saved as they finish so that an interrupted ``advise`` can resume.

With an out dir, ``OUT/partial/`` holds ``inputs.json`` (the fingerprint of everything that determines the
parts: the config, the probe options, the data file's path, size and modification time, and a digest of the
label table), ``probe.json`` (the probe's measurements and the shared network's fit, as JSON) and
``evidence.json`` (the short comparison of the approaches, :mod:`multitask.advise.evidence`) and
``capacity/NNNN_<task>.json`` (one capacity-check row per task checked). Every file is written atomically; a
resume with other inputs is refused, naming what differs.

>>> import tempfile
>>> from multitask.config import build_config
>>> from multitask.tables import label_table_from_arrays
>>> table = label_table_from_arrays(np.zeros((4, 1)), np.array([[1.0], [0.0], [1.0], [0.0]]))
>>> parts = Parts(tempfile.mkdtemp(), fingerprint(build_config(), table, {"probe_steps": 40}))
>>> parts.start(resume=False)
>>> parts.save_capacity(0, {"task": "task_0", "own_loss": float("nan")}, seconds=0.5)
>>> parts.capacity(["task_0"])
({0: {'task': 'task_0', 'own_loss': nan}}, 0.5)
>>> Parts(parts.out, fingerprint(build_config(), table, {"probe_steps": 41})).start(resume=True)
Traceback (most recent call last):
...
multitask.errors.ConfigError: ... probe_steps: 40 (saved) → 41 (now)...
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from multitask.advise.probe import ProbeResult
from multitask.config import RunConfig, load_config
from multitask.errors import ConfigError, RunDirError, UserError
from multitask.files import atomic_write_text
from multitask.runs import _flat, read_json, write_json
from multitask.tables import LabelTable

PARTS_VERSION = 1

_ARRAYS = ("cosine", "cosine_batches", "tag", "tag_batches")


def table_digest(table: LabelTable) -> str:
    """SHA-256 of what the advisor reads from a table: tasks, split, labels and inputs."""
    digest = hashlib.sha256()
    digest.update(json.dumps([list(table.tasks), table.kind]).encode())
    for array in (table.split, table.targets, table.known,
                  table.features if table.features is not None else table.images):
        array = np.asarray(array)
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes() if array.dtype != object else
                      "\0".join(map(str, array.ravel())).encode())
    return digest.hexdigest()


def fingerprint(config: RunConfig, table: LabelTable, options: dict[str, Any]) -> dict[str, Any]:
    """Everything that determines the parts, as flat JSON values (see the module docstring)."""
    data: dict[str, Any] = {}
    if config.data.path is not None:
        path = Path(config.data.path).expanduser().resolve()
        data["path"] = str(path)
        if path.is_file():
            stat = path.stat()
            data.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    data["table_sha256"] = table_digest(table)
    return {"version": PARTS_VERSION, "config": _flat(config.model_dump(mode="json")), "options": dict(options),
            "data": data}


def saved_inputs(out: str | Path) -> tuple[RunConfig, dict[str, Any]]:
    """The config and the advisor options saved in out/partial (RunDirError when there are none)."""
    folder = Path(out) / "partial"
    if not (folder / "inputs.json").is_file() or not (folder / "config.yaml").is_file():
        raise RunDirError(f"{folder}: no saved advisor inputs (inputs.json, config.yaml); {out} holds no advisor "
                          "run that can be resumed (give --out DIR to start one)")
    inputs = read_json(folder / "inputs.json")
    try:
        config = load_config(folder / "config.yaml")
    except UserError as error:
        raise RunDirError(f"{folder / 'config.yaml'}: {error}") from None
    if not isinstance(inputs, dict) or not isinstance(inputs.get("options"), dict):
        raise RunDirError(f"{folder / 'inputs.json'}: not an advisor fingerprint")
    return config, inputs["options"]


def _differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    out = []
    for section in ("version", "options", "config", "data"):
        a, b = saved.get(section), now.get(section)
        if not isinstance(a, dict) or not isinstance(b, dict):
            if a != b:
                out.append(f"{section}: {a!r} (saved) → {b!r} (now)")
            continue
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                name = key if section == "options" else f"{section}.{key}"
                out.append(f"{name}: {a.get(key)!r} (saved) → {b.get(key)!r} (now)")
    return out


def _nan(value: Any) -> Any:
    return float("nan") if value is None else value


class Parts:
    """The saved parts of one advisor run in ``out/partial``, for the inputs `inputs` (a :func:`fingerprint`)."""

    def __init__(self, out: str | Path, inputs: dict[str, Any], config: RunConfig | None = None) -> None:
        self.out = Path(out)
        self.dir = self.out / "partial"
        self.inputs = json.loads(json.dumps(inputs))  # as it reads back from JSON
        self.config = config

    def start(self, resume: bool) -> None:
        """Resume: check the saved fingerprint (ConfigError naming what differs). Otherwise: drop old parts."""
        inputs_file = self.dir / "inputs.json"
        if not resume:
            shutil.rmtree(self.dir, ignore_errors=True)
            if self.config is not None:  # for `multitask advise --resume DIR` without options
                atomic_write_text(self.dir / "config.yaml", self.config.to_yaml())
            write_json(inputs_file, self.inputs)
            return
        if not inputs_file.is_file():
            raise RunDirError(f"{inputs_file}: missing; {self.out} holds no advisor run that can be resumed "
                              "(give --out DIR to start one)")
        saved = read_json(inputs_file)
        if not isinstance(saved, dict):
            raise RunDirError(f"{inputs_file}: not an advisor fingerprint")
        differences = _differences(saved, self.inputs)
        if differences:
            raise ConfigError(f"cannot resume the advisor run in {self.out}: its inputs differ from the saved "
                              "ones: " + "; ".join(differences) + ". Give the same inputs, or start again "
                              "without --resume")

    # ---------------------------------------------------------------------------------------- probe
    def save_probe(self, probe: ProbeResult, shared_fit: dict[str, np.ndarray] | None) -> None:
        values = {f.name: getattr(probe, f.name) for f in dataclasses.fields(probe) if f.name != "network"}
        write_json(self.dir / "probe.json", {"result": values, "shared_fit": shared_fit})

    def probe(self) -> tuple[ProbeResult, dict[str, np.ndarray] | None] | None:
        """The saved probe result and shared fit, or None when the probe has not finished."""
        file = self.dir / "probe.json"
        if not file.is_file():
            return None
        data = read_json(file)
        try:
            values = dict(data["result"])
            for name in _ARRAYS:
                if values[name] is not None:
                    kind = float if name in ("cosine", "tag") else int
                    values[name] = np.array(values[name], dtype=float).astype(kind)
            fit = data["shared_fit"]
            shared = None if fit is None else {k: np.array(v, dtype=float) for k, v in fit.items()}
            return ProbeResult(**values), shared
        except (KeyError, TypeError, ValueError) as error:
            raise RunDirError(f"{file}: not a saved probe result ({error}); delete it to run the probe again") \
                from None

    # ---------------------------------------------------------------------------------------- evidence
    def save_evidence(self, evidence: dict[str, Any]) -> None:
        write_json(self.dir / "evidence.json", evidence)

    def evidence(self) -> dict[str, Any] | None:
        """The saved evidence (:meth:`multitask.advise.evidence.Evidence.to_dict`), or None if not finished."""
        file = self.dir / "evidence.json"
        if not file.is_file():
            return None
        data = read_json(file)
        if not isinstance(data, dict) or "call" not in data or "statement" not in data:
            raise RunDirError(f"{file}: not a saved evidence file; delete it to measure the evidence again")
        return data

    # ---------------------------------------------------------------------------------------- capacity
    def _capacity_file(self, index: int, task: str) -> Path:
        return self.dir / "capacity" / f"{index:04d}_{re.sub(r'[^A-Za-z0-9._-]', '_', task)[:80]}.json"

    def save_capacity(self, index: int, row: dict[str, Any], seconds: float) -> None:
        write_json(self._capacity_file(index, row["task"]), {"row": row, "seconds": seconds})

    def capacity(self, tasks: list[str]) -> tuple[dict[int, dict[str, Any]], float]:
        """The saved capacity rows by task index, and the seconds they took."""
        rows, seconds = {}, 0.0
        for index, task in enumerate(tasks):
            file = self._capacity_file(index, task)
            if not file.is_file():
                continue
            data = read_json(file)
            try:
                row = {k: _nan(v) for k, v in data["row"].items()}
                if row["task"] != task:
                    raise ValueError(f"it is task {row['task']!r}, not {task!r}")
                rows[index], seconds = row, seconds + float(data["seconds"])
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                raise RunDirError(f"{file}: not a saved capacity row ({error}); delete it to check the task "
                                  "again") from None
        return rows, seconds
