"""Merge label tables (or box tables: :func:`merge_box_tables`) from several sources into one table over the union
of inputs and tasks.

Rows are matched by the input column (``on``). A task a source does not have is ``"?"`` for that source's
rows; an input missing from a source contributes nothing from it. For an input labelled by several sources for
the same task, equal known values agree, a known value beats ``"?"``, and ``"1"`` against ``"0"`` is a
conflict, handled by ``conflicts``:

- ``"error"`` (default): raise :class:`~multitask.errors.LabelError` naming the input, task and sources;
- ``"unknown"``: the merged value is ``"?"``;
- ``"first"``: the value of the first source (in the order given) that knows it is kept.

Every conflict resolved is recorded in the returned :class:`MergeSummary`. Output rows are sorted by input,
task columns sorted by name. A source is a DataFrame or a table file (read by the one reader,
:func:`multitask.tables.read_table`); every column of it other than ``on`` is a task whose values follow the
label vocabulary of ``multitask train`` (:mod:`multitask.tables.vocabulary`: ``1``/``0``, ``true``/``false``,
``yes``/``no``, and ``?``, empty, ``NA``, ``N/A``, ``NaN``, ``null`` for unknown); anything else, a ragged row,
or two task names that differ only in surrounding spaces is refused naming the file, line, column and value.
Drop ``split`` columns before merging (assign splits afterwards).

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
import pyarrow as pa
import pyarrow.compute as pc

from multitask.detection.boxes import BoxTable
from multitask.errors import LabelError
from multitask.tables.reader import RawTable, Role, read_table, table_from_frame

ConflictPolicy = Literal["error", "unknown", "first"]
_POLICIES = ("error", "unknown", "first")
_TEXT = np.array(["0", "1", "?"], dtype=object)  # indexed by the vocabulary's codes 0, 1 and -1 (unknown)


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


def _source(name: str, source: pd.DataFrame | str | Path, on: str) -> tuple[RawTable, pd.DataFrame]:
    """(raw table, the task columns as ``"1"``/``"0"``/``"?"`` strings indexed by input) of one source."""
    def plan(names: list[str], _: object) -> dict[str, Role]:
        if on not in names:
            raise LabelError(f"source {name!r} has no input column", file=where, column=on)
        if "split" in names and on != "split":
            raise LabelError(f"source {name!r}: drop the split column before merging (assign splits after)",
                             file=where, column="split")
        return {column: "text" if column == on else "labels" for column in names}

    if isinstance(source, str | Path):
        where: str | Path | None = source
        raw = read_table(source, plan)
    else:
        where = None
        raw = table_from_frame(source.reset_index(drop=True), f"source {name!r}", plan)
    inputs = pc.utf8_trim_whitespace(raw.column(on).cast(pa.string())).fill_null("")
    inputs = inputs.to_numpy(zero_copy_only=False).astype(object)
    empty = inputs == ""
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise LabelError(f"source {name!r}: empty input", file=where, line=raw.line(row), column=on)
    index = pd.Index(inputs, name=on)
    duplicated = index.duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        raise LabelError(f"source {name!r}: input appears twice", file=where, line=raw.line(row), column=on,
                         value=inputs[row])
    columns = {task: _TEXT[raw.label_column(task)] for task in raw.labels}
    return raw, pd.DataFrame(columns, index=index, columns=list(raw.labels))


def merge_label_tables(
    frames: Mapping[str, pd.DataFrame | str | Path] | Sequence[tuple[str, pd.DataFrame | str | Path]],
    on: str = "image",
    conflicts: ConflictPolicy = "error",
) -> tuple[pd.DataFrame, MergeSummary]:
    """Merge named label tables (DataFrames or table files; see the module docstring); returns the merged table
    and a summary."""
    if conflicts not in _POLICIES:
        raise LabelError(f"conflicts must be one of {_POLICIES}", value=conflicts)
    pairs = list(frames.items()) if isinstance(frames, Mapping) else [tuple(p) for p in frames]
    if not pairs:
        raise LabelError("no label tables to merge")
    names = [str(name) for name, _ in pairs]
    if len(set(names)) != len(names):
        raise LabelError("source names must be distinct", value=names)
    sources = {name: _source(name, frame, on)[1] for name, (_, frame) in zip(names, pairs, strict=True)}

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


def _same_boxes(a: BoxTable, i: int, b: BoxTable, j: int, ca: int, cb: int) -> bool:
    """Whether class ca's boxes in a's image i equal class cb's in b's image j (as sets, to 0.01 px)."""
    boxes_a = a.boxes[i][a.labels[i] == ca]
    boxes_b = b.boxes[j][b.labels[j] == cb]
    if len(boxes_a) != len(boxes_b):
        return False
    order_a, order_b = np.lexsort(boxes_a.T[::-1]), np.lexsort(boxes_b.T[::-1])
    return bool(np.allclose(boxes_a[order_a], boxes_b[order_b], atol=0.01))


def _describe(table: BoxTable, i: int, k: int) -> str:
    n = int((table.labels[i] == k).sum())
    return f"{n} box{'es' if n != 1 else ''}" if n else "verified absent"


def merge_box_tables(
    tables: Mapping[str, BoxTable] | Sequence[tuple[str, BoxTable]],
    conflicts: ConflictPolicy = "error",
) -> tuple[BoxTable, MergeSummary]:
    """Merge named box tables into one over the union of their images (matched by path) and classes (sorted).

    The rule of :func:`merge_label_tables`, for boxes: a class a source never annotated (not in its classes) is
    unknown for that source's images; an image's class known in one source takes that source's boxes (or its
    verified absence); known in several, their boxes must agree (the same boxes, to 0.01 px; verified absent
    agrees only with absent), else ``conflicts`` decides: ``"error"`` (LabelError naming image, class and
    sources), ``"unknown"`` (the class becomes unknown in that image) or ``"first"`` (the first source that
    knows it, in the order given). Splits of a shared image must agree; the image root is the sources' common
    root (images of a source with another root get absolute paths).

    >>> a = BoxTable.from_arrays(["car"], ["x.png"], boxes=[[[0, 0, 4, 4]]], labels=[[0]])
    >>> b = BoxTable.from_arrays(["sign"], ["x.png", "y.png"], boxes=[[], [[1, 1, 2, 2]]], labels=[[], [0]])
    >>> merged, summary = merge_box_tables({"a": a, "b": b})
    >>> merged.classes, merged.known.tolist(), [len(x) for x in merged.boxes]
    (('car', 'sign'), [[True, True], [False, True]], [1, 1])
    """
    if conflicts not in _POLICIES:
        raise LabelError(f"conflicts must be one of {_POLICIES}", value=conflicts)
    pairs = list(tables.items()) if isinstance(tables, Mapping) else [tuple(p) for p in tables]
    if not pairs:
        raise LabelError("no box tables to merge")
    names = [str(name) for name, _ in pairs]
    if len(set(names)) != len(names):
        raise LabelError("source names must be distinct", value=names)
    sources = [table for _, table in pairs]
    roots = {(t.image_root or (t.source.parent if t.source else Path("."))).resolve() for t in sources}
    common = roots.pop() if len(roots) == 1 else None

    def image_key(table: BoxTable, path: Path, name: str) -> str:
        return name if common is not None or Path(name).is_absolute() else str(path.resolve())

    keys = [[image_key(t, p, name) for p, name in zip(t.paths(), t.images, strict=True)] for t in sources]
    images = sorted(set().union(*map(set, keys)))
    image_index = {name: i for i, name in enumerate(images)}
    classes = sorted(set().union(*(set(t.classes) for t in sources)))
    class_index = {name: k for k, name in enumerate(classes)}
    n, c, s = len(images), len(classes), len(sources)

    rows = [np.array([image_index[k] for k in ks], dtype=np.int64) for ks in keys]
    cols = [np.array([class_index[name] for name in t.classes], dtype=np.int64) for t in sources]
    known_by = np.zeros((s, n, c), bool)
    for q, t in enumerate(sources):
        known_by[q][np.ix_(rows[q], cols[q])] = t.known
    owner = np.where(known_by.any(axis=0), known_by.argmax(axis=0), -1)
    found: list[Conflict] = []
    where = [dict(zip(r.tolist(), range(len(r)), strict=True)) for r in rows]
    col_of = [dict(zip(cl.tolist(), range(len(cl)), strict=True)) for cl in cols]
    for i, k in np.argwhere(known_by.sum(axis=0) > 1):
        knowers = [q for q in range(s) if known_by[q, i, k]]
        first = knowers[0]
        fi, fk = where[first][i], col_of[first][k]
        if all(_same_boxes(sources[first], fi, sources[q], where[q][i], fk, col_of[q][k]) for q in knowers[1:]):
            continue
        values = {names[q]: _describe(sources[q], where[q][i], col_of[q][k]) for q in knowers}
        if conflicts == "error":
            listing = ", ".join(f"{name}: {value}" for name, value in values.items())
            raise LabelError(f"image {images[i]!r}, class {classes[k]!r}: sources disagree ({listing}); pass "
                             "conflicts='unknown' or 'first' to resolve", column=classes[k], value=images[i])
        resolved = values[names[first]] if conflicts == "first" else "?"
        if conflicts == "unknown":
            owner[i, k] = -1
        found.append(Conflict(input=images[i], task=classes[k], values=values, resolved=resolved))

    split = np.full(n, "", dtype="<U5")
    sizes = np.zeros((n, 2))
    for q, t in enumerate(sources):
        mine = split[rows[q]]
        clash = (mine != "") & (mine != t.split)
        if clash.any():
            j = int(clash.argmax())
            raise LabelError(f"source {names[q]!r}: image {images[rows[q][j]]!r} is in split {t.split[j]!r} here "
                             f"but {mine[j]!r} in an earlier source", column="split", value=t.split[j])
        split[rows[q]] = t.split
        if t.sizes is not None:
            sizes[rows[q]] = np.where(sizes[rows[q]] > 0, sizes[rows[q]], t.sizes)

    flat_image, flat_label, flat_xyxy, flat_ignore = [], [], [], []
    for q, t in enumerate(sources):
        flat = t.flat()
        image, label = rows[q][flat["image"]], cols[q][flat["label"]]
        mine = owner[image, label] == q
        flat_image.append(image[mine])
        flat_label.append(label[mine])
        flat_xyxy.append(flat["xyxy"][mine])
        flat_ignore.append(flat["ignore"][mine])
    known = owner >= 0
    merged = BoxTable.from_flat(classes, images, image=np.concatenate(flat_image), label=np.concatenate(flat_label),
                                xyxy=np.concatenate(flat_xyxy), ignore=np.concatenate(flat_ignore), known=known,
                                split=split, sizes=sizes, image_root=common)
    sets = [set(r.tolist()) for r in rows]
    counts = np.bincount(np.concatenate(rows), minlength=n)
    boxed = np.zeros((n, c), bool)
    for i, labels in enumerate(merged.labels):
        boxed[i, labels] = True
    summary = MergeSummary(
        on="image", policy=conflicts, n_inputs=n,
        source_rows={name: len(t) for name, t in zip(names, sources, strict=True)},
        source_tasks={name: list(t.classes) for name, t in zip(names, sources, strict=True)},
        shared_inputs=int((counts > 1).sum()),
        overlaps={(a, b): len(sets[x] & sets[y]) for x, a in enumerate(names) for y, b in enumerate(names) if x < y},
        known_counts={name: int(known[:, k].sum()) for k, name in enumerate(classes)},
        positive_counts={name: int(boxed[:, k].sum()) for k, name in enumerate(classes)},
        conflicts=found)
    return merged, summary
