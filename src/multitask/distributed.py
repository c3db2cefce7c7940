"""Which process writes files when several train one network together (DDP, torchrun, SLURM).

Every process of a data-parallel run executes the same script; only the global rank 0 writes the run directory.
Processes started by Lightning's launcher inherit ``MULTITASK_RUN_DIR`` from rank 0, so all agree on the folder.

>>> is_global_zero({"RANK": "1"}), is_global_zero({"LOCAL_RANK": "0", "NODE_RANK": "0"}), is_global_zero({})
(False, True, True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

RUN_DIR_VARIABLE = "MULTITASK_RUN_DIR"


def is_global_zero(environ: Mapping[str, str] | None = None) -> bool:
    """True in the process that should write files (rank 0, or the only process)."""
    env = os.environ if environ is None else environ
    for key in ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if key in env:
            return int(env[key]) == 0
    return int(env.get("LOCAL_RANK", 0)) == 0 and int(env.get("NODE_RANK", env.get("GROUP_RANK", 0))) == 0


def shared_run_dir() -> Path | None:
    """The run directory chosen by rank 0, in the other processes of a distributed run."""
    value = os.environ.get(RUN_DIR_VARIABLE)
    return Path(value) if value and not is_global_zero() else None


def announce_run_dir(path: Path) -> None:
    """Rank 0: let processes launched from now on use the same run directory."""
    if is_global_zero():
        os.environ[RUN_DIR_VARIABLE] = str(path)
