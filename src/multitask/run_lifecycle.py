"""A training run's life in its run directory: begun, resumed, and ``status.json`` kept true to what happened.

Label tables (:mod:`multitask.pipeline`) and detectors (:mod:`multitask.detection.run`) both go through it: a
run is "running" while it trains, then "finished", "interrupted" (Ctrl-C / SIGTERM: the message says how to
resume) or "failed" (with the error). Only the first process of a distributed run writes.

>>> import tempfile
>>> from pathlib import Path
>>> from multitask.runs import read_status
>>> folder = Path(tempfile.mkdtemp())
>>> recorded(folder, lambda: {"epochs": 3}, epochs_done=lambda out: out["epochs"])
{'epochs': 3}
>>> read_status(folder)["status"], read_status(folder)["epochs_done"]
('finished', 3)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from multitask.config import RunConfig
from multitask.distributed import announce_run_dir, is_global_zero
from multitask.errors import TrainingInterrupted, UserError
from multitask.files import atomic_write_text
from multitask.runs import (
    last_checkpoint,
    new_run_dir,
    provenance,
    read_status,
    resume_hint,
    utc_now,
    write_json,
    write_status,
)

log = logging.getLogger(__name__)

R = TypeVar("R")


def begin_run(config: RunConfig, run_dir: Path | None, *, default_stem: str = "run") -> Path:
    """Reserve a new run directory (or create `run_dir` as given) and write config.yaml, provenance.json and a
    "running" status.json in it."""
    stem = Path(config.data.path).stem if config.data.path else default_stem
    if run_dir is None:
        run_dir = new_run_dir(config, default_stem=stem)
    elif is_global_zero():
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"cannot create run directory {run_dir}: {error.strerror or error}") from None
    if is_global_zero():
        atomic_write_text(run_dir / "config.yaml", config.to_yaml())
        write_json(run_dir / "provenance.json", provenance(config))
        write_status(run_dir, "running", started=utc_now(), resumed=[])
    return run_dir


def begin_resume(path: Path) -> Path | None:
    """Mark an unfinished run "running" again (its resume time added) and return the checkpoint to continue
    from: ``checkpoints/last.ckpt``, or None when no epoch had finished (the stale log and best checkpoint of
    that attempt removed, so the run starts over cleanly)."""
    checkpoint = last_checkpoint(path)
    if checkpoint is None:
        for stale in (path / "logs" / "metrics.csv", path / "checkpoints" / "best.ckpt"):
            stale.unlink(missing_ok=True)
    if is_global_zero():
        status = read_status(path) or {}
        write_status(path, "running", resumed=[*(status.get("resumed") or []), utc_now()])
        log.info("resuming %s from %s", path, checkpoint or "the start (no finished epoch)")
    return checkpoint


def recorded(run_dir: Path, work: Callable[[], R], *, epochs_done: Callable[[R], Any]) -> R:
    """Run `work()` (train, evaluate, save) for the run in `run_dir`, keeping its status.json true: "finished"
    with ``epochs_done(result)``, "interrupted" (re-raised as :class:`TrainingInterrupted` with the resume
    command) or "failed" with the error (re-raised)."""
    announce_run_dir(run_dir)
    writer = is_global_zero()

    def record(status: str, error: str) -> None:  # best effort: the disk may be what failed
        if writer:
            try:
                write_status(run_dir, status, error=error)
            except (UserError, OSError) as failure:
                log.warning("could not record status %s in %s: %s", status, run_dir, failure)

    try:
        result = work()
    except (TrainingInterrupted, KeyboardInterrupt) as error:
        message = str(error) if isinstance(error, TrainingInterrupted) else f"{run_dir}: training interrupted"
        record("interrupted", message)
        raise TrainingInterrupted(f"{message}; {resume_hint(run_dir)}") from None
    except BaseException as error:
        record("failed", str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}")
        raise
    if writer:
        write_status(run_dir, "finished", epochs_done=epochs_done(result))
    return result
