"""Options checked before any work starts: names, component options, input kind, image size, devices, output.

:func:`check_options` is called by `train`, `compare` and `advise` once the data is read and before anything is
written, so a mistake costs a second and leaves nothing on disk. Each problem is a :class:`ConfigError` that
names the option, the value and what would work.

>>> from multitask.config import RunConfig
>>> check_options(RunConfig.model_validate({"model": {"trunk_options": {"widht": 8}}}), "images")
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
multitask.errors.ConfigError: model.trunk_options: trunk 'small_cnn' takes no option 'widht'. Did you mean 'width'? ...
>>> check_options(RunConfig.model_validate({"train": {"num_nodes": 2}}), "images", environ={})
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
multitask.errors.ConfigError: train.num_nodes 2: no cluster environment (SLURM, torchrun / MASTER_ADDR) was found, ...
"""

from __future__ import annotations

import difflib
import functools
import inspect
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from multitask.config import RunConfig
from multitask.errors import ConfigError

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
CLUSTER_VARIABLES = ("SLURM_NTASKS", "SLURM_JOB_ID", "WORLD_SIZE", "MASTER_ADDR", "TORCHELASTIC_RUN_ID",
                     "OMPI_COMM_WORLD_SIZE", "LSB_JOBID")
AUTOMATIC = ("weights", "in_features")  # trunk options set by multitask itself


def check_logger(name: str) -> None:
    """Refuse a `train.logger` whose library is not installed, naming the install command.

    >>> check_logger("tensorboard"), check_logger("csv")
    (None, None)
    """
    import importlib.util

    if name == "mlflow" and importlib.util.find_spec("mlflow") is None:
        raise ConfigError("train.logger mlflow (--logger mlflow) needs MLflow, which is not installed: "
                          "pip install mlflow (or pip install 'multitask[mlflow]')")


def check_options(config: RunConfig, table_kind: str, *, root: bool = True,
                  environ: Mapping[str, str] | None = None) -> None:
    """Raise ConfigError for the first option that cannot work with this data ('images' | 'features') here;
    `root=False` for a command that writes no run directory (advise)."""
    from multitask.models.network import SHARING
    from multitask.models.trunks import TRUNKS, trunk_takes_images
    from multitask.weighting import WEIGHTINGS

    model, train = config.model, config.train
    trunk = _lookup(TRUNKS, model.trunk, "model.trunk", "multitask trunks")
    sharing = _lookup(SHARING, model.sharing, "model.sharing", None)
    weighting = _lookup(WEIGHTINGS, train.weighting, "train.weighting", "multitask methods")
    check_keywords(trunk, model.trunk_options, "model.trunk_options", f"trunk {model.trunk!r}", skip=AUTOMATIC)
    check_keywords(sharing, model.sharing_options, "model.sharing_options", f"sharing {model.sharing!r}",
                   skip=("trunk", "n_tasks", "config"))
    check_keywords(weighting, train.weighting_options, "train.weighting_options", f"weighting {train.weighting!r}",
                   skip=("n_tasks",))
    if config.loss.unknown != "ignore" or config.loss.unknown_options:
        from multitask.unknown import UNKNOWNS

        strategy = _lookup(UNKNOWNS, config.loss.unknown, "loss.unknown", "multitask unknowns")
        check_keywords(strategy, config.loss.unknown_options, "loss.unknown_options",
                       f"strategy {config.loss.unknown!r}", skip=("n_tasks",))
    takes_images = trunk_takes_images(model.trunk)
    if takes_images and table_kind == "features":
        raise ConfigError(f"model.trunk {model.trunk!r} takes images, but the data is a feature table; "
                          "use --trunk mlp for feature vectors")
    if not takes_images and table_kind == "images":
        raise ConfigError(f"model.trunk {model.trunk!r} takes feature vectors, but the data is images; "
                          "use an image trunk such as --trunk small_cnn (see `multitask trunks`)")
    if takes_images:
        check_image_size(model.trunk, model.trunk_options, config.data.image_size)
    check_devices(train.accelerator, train.devices, train.num_nodes, environ=environ)
    check_logger(train.logger)
    if root:
        check_writable(config.root, "root")


def _lookup(registry: Any, name: str, key: str, command: str | None) -> Callable[..., Any]:
    if name in registry:
        return registry.get(name)
    close = difflib.get_close_matches(name, registry.names(), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    listing = f" (`{command}` lists them)" if command else ""
    raise ConfigError(f"{key}: unknown {registry.kind} {name!r}.{hint} Known{listing}: {', '.join(registry.names())}")


def check_keywords(factory: Callable[..., Any], options: Mapping[str, Any], key: str, what: str,
                   skip: tuple[str, ...] = ()) -> None:
    """ConfigError for an option `factory` does not take (nearest valid name and the full list).

    >>> def make(n_tasks, alpha=1.0, beta=2): ...
    >>> check_keywords(make, {"alpah": 1}, "train.weighting_options", "weighting 'x'", skip=("n_tasks",))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    multitask.errors.ConfigError: train.weighting_options: weighting 'x' takes no option 'alpah'. ...
    """
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin or C extension: nothing to check against
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    valid = [p.name for p in parameters if p.name not in skip
             and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    for name in options:
        if name not in valid and name not in skip:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            listing = ", ".join(valid) if valid else "none"
            raise ConfigError(f"{key}: {what} takes no option {name!r}.{hint} Its options: {listing}")


def _forward_ok(name: str, options: Mapping[str, Any], size: int) -> bool:
    """Whether the trunk takes `size`×`size` images; remembered per (trunk, options, size), since `compare`
    checks the same trunk once for itself and once for every network it trains."""
    return _forward_ok_cached(name, json.dumps(dict(options), sort_keys=True, default=str), size)


@functools.lru_cache(maxsize=64)
def _forward_ok_cached(name: str, options_json: str, size: int) -> bool:
    import torch

    from multitask.models.trunks import build_trunk

    options = json.loads(options_json)
    trunk = build_trunk(name, **{k: v for k, v in options.items() if k not in AUTOMATIC}).eval()
    try:
        with torch.no_grad():
            out = trunk(torch.zeros(1, 3, size, size))
    except RuntimeError:
        return False
    return bool(out.numel()) and bool(torch.isfinite(out).all())


def check_image_size(name: str, options: Mapping[str, Any], size: int) -> None:
    """ConfigError when the trunk cannot take `size`×`size` images, found by a dry forward pass of zeros (no
    weights loaded); the message gives the smallest power of two that works.

    >>> check_image_size("small_cnn", {"depth": 4}, 8)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    multitask.errors.ConfigError: data.image_size 8 is too small for trunk 'small_cnn' with options {'depth': 4}: ...
    """
    try:
        if _forward_ok(name, options, size):
            return
    except (TypeError, ValueError) as error:  # the trunk refused an option value
        raise ConfigError(f"model.trunk_options {dict(options)}: trunk {name!r}: {error}") from None
    smallest = next((s for s in (16, 32, 64, 128, 256, 512) if s > size and _forward_ok(name, options, s)), None)
    hint = f"use at least {smallest}" if smallest else "no size up to 512 works"
    raise ConfigError(f"data.image_size {size} is too small for trunk {name!r} with options {dict(options)}: "
                      f"{hint} (or a shallower trunk)")


def _device_count(accelerator: str) -> int:
    import torch

    if accelerator in ("gpu", "cuda"):
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    if accelerator == "mps":
        return int(torch.backends.mps.is_available())
    if accelerator == "tpu":
        return 0
    return os.cpu_count() or 1


def check_devices(accelerator: str, devices: int | str, num_nodes: int = 1, *,
                  environ: Mapping[str, str] | None = None) -> None:
    """ConfigError for an accelerator, device count or node count this machine cannot provide (never a hang).

    >>> check_devices("cpu", 0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    multitask.errors.ConfigError: train.devices 0: give a number of devices of at least 1, -1 (all), 'auto', ...
    """
    if accelerator not in ACCELERATORS:
        close = difflib.get_close_matches(accelerator, ACCELERATORS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"train.accelerator: unknown accelerator {accelerator!r}.{hint} "
                          f"Known: {', '.join(ACCELERATORS)}")
    kind = accelerator
    if accelerator == "auto":
        import torch

        kind = "gpu" if torch.cuda.is_available() else "cpu"
    available = _device_count(kind)
    if available == 0:
        raise ConfigError(f"train.accelerator {accelerator!r}: this machine has no {kind.upper()} that torch can use; "
                          "use --accelerator cpu (or auto)")
    wanted = _requested_devices(devices)
    if isinstance(wanted, int) and wanted > available:
        unit = "CPU cores" if kind == "cpu" else f"{kind.upper()}s"
        raise ConfigError(f"train.devices {devices!r}: this machine has {available} {unit}; use at most "
                          f"{available}, or auto")
    if isinstance(wanted, list) and kind != "cpu" and max(wanted) >= available:
        raise ConfigError(f"train.devices {devices!r}: device index {max(wanted)} does not exist; this machine "
                          f"has {available} {kind.upper()}s (indices 0 to {available - 1})")
    env = os.environ if environ is None else environ
    if num_nodes > 1 and not any(variable in env for variable in CLUSTER_VARIABLES):
        raise ConfigError(f"train.num_nodes {num_nodes}: no cluster environment (SLURM, torchrun / MASTER_ADDR) was "
                          "found, so the other machines would never join; start the run with srun or torchrun on "
                          "every node, or use train.num_nodes 1")


def _requested_devices(devices: int | str) -> int | list[int] | None:
    """An int count, a list of indices, or None for 'auto' / -1 (all); ConfigError for anything else."""
    message = (f"train.devices {devices!r}: give a number of devices of at least 1, -1 (all), 'auto', or a list of "
               "device indices like '0,1'")
    if isinstance(devices, int):
        if devices == -1:
            return None
        if devices < 1:
            raise ConfigError(message)
        return devices
    text = devices.strip()
    if text in ("auto", "-1"):
        return None
    parts = [p.strip() for p in text.strip("[]").split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise ConfigError(message)
    if len(parts) == 1 and "," not in text:
        return _requested_devices(int(parts[0]))
    return [int(p) for p in parts]


def check_writable(folder: Path | str, key: str) -> None:
    """ConfigError unless `folder` can be created or written (the nearest existing parent is checked).

    >>> check_writable("/dev/null/runs", "root")
    Traceback (most recent call last):
    ...
    multitask.errors.ConfigError: root /dev/null/runs: /dev/null is a file, not a folder; choose another --root
    """
    path = Path(folder).expanduser().absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{key} {path}: {existing} is a file, not a folder; choose another --{key}")
    import tempfile

    try:  # a real write (os.access says yes to root on a read-only mount); the probe file is removed at once
        handle, probe = tempfile.mkstemp(prefix=".multitask-write-check-", dir=existing)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise ConfigError(f"{key} {path}: cannot write in {existing} ({error.strerror or error}); "
                          f"choose another --{key}") from None
