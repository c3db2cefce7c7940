"""Hidden-label protocols: hide known labels of a table the way the partial-label literature does, keeping the
hidden truth so that a method can be scored on it.

- ``rps:P`` — random partial supervision: each known label hidden with probability P (Durand et al. 2019's
  "partial labels", the RPS of later papers).
- ``fpc:K`` — a fixed number of known labels per class: K known labels per task and split are kept (chosen at
  random among its known labels; a task with fewer keeps all), every other label hidden.
- ``single_positive`` — one known positive per example (Cole et al., CVPR 2021): one of each example's known
  positives kept at random, every other label (positive or negative) hidden; an example with no known
  positive loses all its labels.
- ``rows:P`` — whole rows: every label of a random fraction P of the examples hidden.

Only the splits given (train and val by default) are touched; the test labels stay known. Seeded: the same
seed gives the same hidden cells.

>>> import numpy as np
>>> from multitask.tables import label_table_from_arrays
>>> table = label_table_from_arrays(np.zeros((4, 1)), np.array([[1, 0], [1, 1], [0, 1], [1, 1]]))
>>> hidden = hide_labels(table, "single_positive", seed=0)
>>> hidden.table.known.sum(axis=1).tolist(), int(hidden.hidden.sum())
([1, 1, 1, 1], 4)
>>> bool((hidden.table.targets[hidden.table.known] == 1).all())
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from multitask.errors import ConfigError
from multitask.tables import LabelTable

PROTOCOLS = ("rps", "fpc", "single_positive", "rows")


@dataclass(frozen=True)
class Hidden:
    """A table with labels hidden, and the truth: `hidden` (n, T) marks the cells known before and unknown now,
    `values` (n, T) their labels (0 elsewhere)."""

    table: LabelTable
    hidden: np.ndarray
    values: np.ndarray
    protocol: str

    def save(self, path: str | Path) -> None:
        """The hidden cells and their labels as .npz (ids, tasks, hidden, values, protocol), written atomically."""
        from multitask.files import atomic_write_with

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, ids=self.table.ids.astype(str), tasks=np.array(self.table.tasks),
                         hidden=self.hidden, values=self.values, protocol=np.array(self.protocol))

        atomic_write_with(path, write)


def parse_protocol(spec: str) -> tuple[str, float | None]:
    """'rps:0.5' → ('rps', 0.5); 'fpc:10' → ('fpc', 10.0); 'single_positive' → ('single_positive', None).

    >>> parse_protocol("rps:0.3"), parse_protocol("single_positive")
    (('rps', 0.3), ('single_positive', None))
    >>> parse_protocol("rsp:0.3")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    multitask.errors.ConfigError: data.hide: unknown protocol 'rsp'. Did you mean 'rps'? Known: rps:P, fpc:K, ...
    """
    import difflib

    name, _, value = spec.strip().partition(":")
    known = "rps:P, fpc:K, single_positive, rows:P"
    if name not in PROTOCOLS:
        close = difflib.get_close_matches(name, PROTOCOLS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"data.hide: unknown protocol {name!r}.{hint} Known: {known}")
    if name == "single_positive":
        if value:
            raise ConfigError(f"data.hide: single_positive takes no value, got {spec!r}")
        return name, None
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"data.hide: {name} needs a number after ':' ({known}), got {spec!r}") from None
    if name in ("rps", "rows") and not 0 <= number < 1:
        raise ConfigError(f"data.hide: {name}:P needs 0 <= P < 1, got {spec!r}")
    if name == "fpc" and (number < 1 or number != int(number)):
        raise ConfigError(f"data.hide: fpc:K needs a whole number K >= 1, got {spec!r}")
    return name, number


def hide_labels(table: LabelTable, protocol: str, *, seed: int = 0,
                splits: Sequence[str] = ("train", "val")) -> Hidden:
    """Apply a protocol ('rps:0.5', 'fpc:10', 'single_positive', 'rows:0.5') to the known labels of `splits`."""
    name, value = parse_protocol(protocol)
    rng = np.random.default_rng(seed)
    eligible = table.known & np.isin(table.split, list(splits))[:, None]
    if name == "rps":  # the same draws as LabelTable.hide_labels: its results are reproduced exactly
        hide = eligible & (rng.random(table.known.shape) < value)
    elif name == "rows":
        hide = eligible & (rng.random(len(table.split)) < value)[:, None]
    elif name == "fpc":
        hide = eligible.copy()
        for split in splits:
            rows = np.flatnonzero(table.split == split)
            for j in range(table.n_tasks):
                candidates = rows[eligible[rows, j]]
                keep = rng.permutation(candidates)[:int(value)]
                hide[keep, j] = False
    else:  # single positive
        hide = eligible.copy()
        positives = eligible & (table.targets > 0.5)
        for i in np.flatnonzero(positives.any(axis=1)):
            hide[i, rng.choice(np.flatnonzero(positives[i]))] = False
    new = replace(table, known=table.known & ~hide, targets=np.where(hide, 0.0, table.targets).astype(np.float32))
    return Hidden(new, hide, np.where(hide, table.targets, 0.0).astype(np.float32), protocol)
