"""Merge label tables from several sources into one table over the union of inputs and tasks.

Rows are matched by the input column (``on``). A task a source does not have is ``"?"`` for that source's
rows; an input missing from a source contributes nothing from it. For an input labelled by several sources for
the same task, equal known values agree, a known value beats ``"?"``, and ``"1"`` against ``"0"`` is a
conflict, handled by ``conflicts``:

- ``"error"`` (default): raise :class:`~multitask.errors.LabelError` naming the input, task and sources;
- ``"unknown"``: the merged value is ``"?"``;
- ``"first"``: the value of the first source (in the order given) that knows it is kept.

Every conflict resolved is recorded in the returned :class:`MergeSummary`. Output rows are sorted by input,
task columns sorted by name. Every column of a source other than ``on`` is a task whose values must be
``1``, ``0``, ``?`` or empty (= ``?``); drop ``split`` columns before merging (assign splits afterwards).

>>> import pandas as pd
>>> a = pd.DataFrame({"image": ["x.jpg", "y.jpg"], "car": ["1", "0"]})
>>> b = pd.DataFrame({"image": ["y.jpg", "z.jpg"], "car": ["0", "?"], "sign": ["1", "0"]})
>>> merged, summary = merge_label_tables({"a": a, "b": b})
>>> merged.values.tolist()
[['x.jpg', '1', '?'], ['y.jpg', '0', '1'], ['z.jpg', '?', '0']]
>>> summary.overlaps
{('a', 'b'): 1}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from multitask.errors import LabelError

ConflictPolicy = Literal["error", "unknown", "first"]
_POLICIES = ("error", "unknown", "first")
_NORMALISE = {"1": "1", "0": "0", "?": "?", "": "?"}


@dataclass(frozen=True)
class Conflict:
    """Two sources gave different known labels for one input and task."""

    input: str
    task: str
    values: dict[str, str]  # source -> its value, for every source that has this input and labels this task
    resolved: str  # the merged value ("?" under "unknown", the first known value under "first")


@dataclass
class MergeSummary:
    """What :func:`merge_label_tables` did: sizes per source, overlaps, known counts and conflicts."""

    on: str
    policy: str
    n_inputs: int
    source_rows: dict[str, int]
    source_tasks: dict[str, list[str]]
    shared_inputs: int  # inputs present in two or more sources
    overlaps: dict[tuple[str, str], int]  # (source, source) -> inputs present in both, in source order
    known_counts: dict[str, int]  # task -> number of merged rows with a known value
    positive_counts: dict[str, int]  # task -> number of merged rows with "1"
    conflicts: list[Conflict] = field(default_factory=list)

    def to_markdown(self) -> str:
        """A readable multi-section Markdown summary."""
        out = [
            f"Merged {len(self.source_rows)} sources into {self.n_inputs} inputs (by {self.on!r}), "
            f"{len(self.known_counts)} tasks, conflicts={self.policy!r}.",
            "",
            "| source | rows | tasks |",
            "| --- | ---: | --- |",
        ]
        for name, rows in self.source_rows.items():
            out.append(f"| {name} | {rows} | {', '.join(self.source_tasks[name])} |")
        out += ["", f"Inputs in two or more sources: {self.shared_inputs}."]
        if self.overlaps:
            out += ["", "| source | source | shared inputs |", "| --- | --- | ---: |"]
            out += [f"| {a} | {b} | {n} |" for (a, b), n in self.overlaps.items()]
        out += ["", "| task | known | positive | unknown |", "| --- | ---: | ---: | ---: |"]
        for task, known in self.known_counts.items():
            out.append(f"| {task} | {known} | {self.positive_counts[task]} | {self.n_inputs - known} |")
        out += ["", f"Conflicts: {len(self.conflicts)}."]
        if self.conflicts:
            out += ["", "| input | task | values | merged |", "| --- | --- | --- | --- |"]
            for c in self.conflicts:
                values = ", ".join(f"{source}={value}" for source, value in c.values.items())
                out.append(f"| {c.input} | {c.task} | {values} | {c.resolved} |")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.to_markdown()


def read_label_frame(path: str | Path) -> pd.DataFrame:
    """Read a ``.csv`` or ``.parquet``/``.pq`` label table with every cell as a string (empty stays ``""``).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.csv"
    >>> _ = path.write_text("image,car,NA\\n001.jpg,1,\\n")
    >>> read_label_frame(path).values.tolist()
    [['001.jpg', '1', '']]
    """
    from multitask.importers import frame_as_strings

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if suffix in (".parquet", ".pq"):
        return frame_as_strings(pd.read_parquet(path))
    raise LabelError("unknown label table extension; use .csv, .parquet or .pq", file=path, value=path.suffix)


def _normalised_source(name: str, frame: pd.DataFrame, on: str) -> pd.DataFrame:
    """The source's task columns as ``"1"``/``"0"``/``"?"`` strings, indexed by input."""
    from multitask.importers import frame_as_strings

    frame = frame.rename(columns=str)
    if on not in frame.columns:
        raise LabelError(f"source {name!r} has no input column", column=on)
    if frame.columns.duplicated().any():
        duplicated = frame.columns[frame.columns.duplicated()][0]
        raise LabelError(f"source {name!r} has a duplicated column", column=str(duplicated))
    if "split" in frame.columns and on != "split":
        raise LabelError(
            f"source {name!r}: drop the split column before merging (assign splits after)", column="split"
        )
    strings = frame_as_strings(frame.reset_index(drop=True))
    inputs = strings[on]
    if (inputs == "").any():
        row = int(np.flatnonzero((inputs == "").to_numpy())[0])
        raise LabelError(f"source {name!r}, row {row}: empty input", column=on)
    duplicated = inputs.duplicated()
    if duplicated.any():
        raise LabelError(f"source {name!r}: input appears twice", column=on, value=inputs[duplicated].iloc[0])
    tasks = [c for c in strings.columns if c != on]
    result = {}
    for task in tasks:
        normalised = strings[task].map(lambda v: _NORMALISE.get(v.strip()))
        bad = normalised.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise LabelError(
                f"source {name!r}, row {row} (input {inputs.iloc[row]!r}): label must be 1, 0 or ?",
                column=task,
                value=strings[task].iloc[row],
            )
        result[task] = normalised.to_numpy(dtype=object)
    return pd.DataFrame(result, index=pd.Index(inputs.to_numpy(dtype=object), name=on), columns=tasks)


def merge_label_tables(
    frames: Mapping[str, pd.DataFrame] | Sequence[tuple[str, pd.DataFrame]],
    on: str = "image",
    conflicts: ConflictPolicy = "error",
) -> tuple[pd.DataFrame, MergeSummary]:
    """Merge named label tables (see the module docstring); returns the merged table and a summary."""
    if conflicts not in _POLICIES:
        raise LabelError(f"conflicts must be one of {_POLICIES}", value=conflicts)
    pairs = list(frames.items()) if isinstance(frames, Mapping) else [tuple(p) for p in frames]
    if not pairs:
        raise LabelError("no label tables to merge")
    names = [str(name) for name, _ in pairs]
    if len(set(names)) != len(names):
        raise LabelError("source names must be distinct", value=names)
    sources = {
        name: _normalised_source(name, frame, on) for name, (_, frame) in zip(names, pairs, strict=True)
    }

    input_sets = {name: set(source.index) for name, source in sources.items()}
    all_inputs = sorted(set().union(*input_sets.values()))
    tasks = sorted({task for source in sources.values() for task in source.columns})

    merged: dict[str, object] = {on: all_inputs}
    known_counts: dict[str, int] = {}
    positive_counts: dict[str, int] = {}
    found: list[Conflict] = []
    for task in tasks:
        labellers = [name for name, source in sources.items() if task in source.columns]
        values = np.stack(
            [
                sources[name][task].reindex(all_inputs, fill_value="?").to_numpy(dtype="<U1")
                for name in labellers
            ]
        )
        has1 = (values == "1").any(axis=0)
        has0 = (values == "0").any(axis=0)
        column = np.where(has1, "1", np.where(has0, "0", "?")).astype(object)
        for i in np.flatnonzero(has1 & has0):
            item = all_inputs[i]
            by_source = {
                name: str(values[k, i]) for k, name in enumerate(labellers) if item in input_sets[name]
            }
            if conflicts == "error":
                listing = ", ".join(f"{source}={value}" for source, value in by_source.items())
                raise LabelError(
                    f"input {item!r}, task {task!r}: sources disagree ({listing}); "
                    "pass conflicts='unknown' or 'first' to resolve",
                    column=task,
                )
            # "first": the first labelling source (in the order given) whose value is known
            first_known = int(np.argmax(values[:, i] != "?"))
            resolved = "?" if conflicts == "unknown" else str(values[first_known, i])
            column[i] = resolved
            found.append(Conflict(input=item, task=task, values=by_source, resolved=resolved))
        merged[task] = column
        known_counts[task] = int(np.sum(column != "?"))
        positive_counts[task] = int(np.sum(column == "1"))

    counts: dict[str, int] = {}
    for inputs in input_sets.values():
        for item in inputs:
            counts[item] = counts.get(item, 0) + 1
    overlaps = {
        (a, b): len(input_sets[a] & input_sets[b]) for i, a in enumerate(names) for b in names[i + 1 :]
    }
    summary = MergeSummary(
        on=on,
        policy=conflicts,
        n_inputs=len(all_inputs),
        source_rows={name: len(source) for name, source in sources.items()},
        source_tasks={name: list(source.columns) for name, source in sources.items()},
        shared_inputs=sum(1 for n in counts.values() if n > 1),
        overlaps=overlaps,
        known_counts=known_counts,
        positive_counts=positive_counts,
        conflicts=found,
    )
    return pd.DataFrame({key: list(value) for key, value in merged.items()}, columns=[on, *tasks]), summary
