"""BoxTable: validated detection annotations, with per-(image, class) knowledge of what was annotated.

For class c in image i the annotation is one of three things: boxes (``known[i, c]`` and boxes of c), verified
absent (``known[i, c]`` and no box of c) or unknown (``not known[i, c]``: nobody looked; such an (image, class)
must give neither positive nor background loss, and detections there are neither true nor false positives).
A box of a class that is unknown in its image is refused.

Boxes are ``x1, y1, x2, y2`` in pixels of the original image (x to the right, y down, ``x2 > x1``, ``y2 > y1``);
``ignore`` marks boxes that are neither targets nor false positives (VOC ``difficult``, COCO ``iscrowd``).
Every entry point (files: :func:`read_box_table`; COCO JSON; arrays: :meth:`BoxTable.from_arrays`) validates
with :func:`check_boxes`, so later stages trust the table.

>>> table = BoxTable.from_arrays(["car", "sign"], ["a.png", "b.png"],
...                              boxes=[[[0, 0, 10, 5]], []], labels=[["car"], []],
...                              known=[[True, True], [True, False]], split=["train", "test"])
>>> len(table), table.n_boxes, table.counts().tolist(), table.only_classes(["sign"]).known.tolist()
(2, 1, [1, 0], [[True], [False]])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from multitask.errors import LabelError
from multitask.tables.splits import SPLITS

COORDINATES = ("x1", "y1", "x2", "y2")


def size_tolerance(size: np.ndarray | float) -> np.ndarray:
    """How far (pixels) a box may reach beyond the image's edges: 1 px or 1 % of the side, whichever is larger
    (annotation tools round, and VOC's 1-based corners may touch the far edge).

    >>> size_tolerance(np.array([50.0, 500.0])).tolist()
    [1.0, 5.0]
    """
    return np.maximum(1.0, 0.01 * np.asarray(size, dtype=np.float64))


def check_boxes(xyxy: np.ndarray, image_of_box: np.ndarray, sizes: np.ndarray | None,
                fail: Callable[[int, str, object, str], LabelError]) -> None:
    """Refuse NaN / infinite coordinates, degenerate boxes (``x2 <= x1`` or ``y2 <= y1``) and boxes outside their
    image (beyond :func:`size_tolerance`; the right and bottom edges only where ``sizes[image]`` (width, height)
    is known, > 0). `fail(box row, column, value, reason)` makes the error naming the box.

    >>> def fail(row, column, value, reason):
    ...     return LabelError(reason, line=row + 2, column=column, value=value)
    >>> check_boxes(np.array([[0, 0, 5, 5], [4, 4, 3, 9]], float), np.zeros(2, int), None, fail)
    Traceback (most recent call last):
    multitask.errors.LabelError: line 3, column 'x2': value '3.0': degenerate box: x2 must be greater than x1
    """
    if not len(xyxy):
        return
    finite = np.isfinite(xyxy)
    if not finite.all():
        row, k = (int(v) for v in np.argwhere(~finite)[0])
        raise fail(row, COORDINATES[k], xyxy[row, k], "box coordinates must be finite numbers")
    for lo, hi, axis in ((0, 2, "x"), (1, 3, "y")):
        bad = xyxy[:, hi] <= xyxy[:, lo]
        if bad.any():
            row = int(bad.argmax())
            raise fail(row, COORDINATES[hi], xyxy[row, hi],
                       f"degenerate box: {axis}2 must be greater than {axis}1")
    if sizes is not None:
        size = np.asarray(sizes, dtype=np.float64)[image_of_box]
        has = np.isfinite(size) & (size > 0)
        tol = size_tolerance(np.where(has, size, 0.0))
    else:
        size, has, tol = np.zeros((len(xyxy), 2)), np.zeros((len(xyxy), 2), bool), np.ones((len(xyxy), 2))
    for k in range(4):
        side = k % 2
        if k < 2:
            bad = xyxy[:, k] < -tol[:, side]
            where = "left of" if k == 0 else "above"
        else:
            bad = has[:, side] & (xyxy[:, k] > size[:, side] + tol[:, side])
            where = "right of" if k == 2 else "below"
        if bad.any():
            row = int(bad.argmax())
            extent = f" ({'width' if side == 0 else 'height'} {size[row, side]:g})" if k >= 2 else ""
            raise fail(row, COORDINATES[k], xyxy[row, k], f"box lies {where} the image{extent}")


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float32)


@dataclass(frozen=True, eq=False)
class BoxTable:
    """Detection annotations of N images over C classes (see the module docstring).

    Per image i: ``boxes[i]`` (k_i, 4) float32, ``labels[i]`` (k_i,) int64 class indices, ``ignore[i]`` (k_i,)
    bool; ``known`` (N, C) bool; ``split`` (N,) of "train" / "val" / "test"; ``images[i]`` a path relative to
    ``image_root`` (or absolute); ``sizes`` (N, 2) width, height in pixels when known (0 where not).
    """

    classes: tuple[str, ...]
    images: tuple[str, ...]
    split: np.ndarray
    known: np.ndarray
    boxes: tuple[np.ndarray, ...]
    labels: tuple[np.ndarray, ...]
    ignore: tuple[np.ndarray, ...]
    image_root: Path | None = None
    source: Path | None = None
    sizes: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, c = len(self.images), len(self.classes)
        if self.known.shape != (n, c) or self.split.shape != (n,):
            raise ValueError(f"known must be (images, classes) = {(n, c)} and split ({n},); got "
                             f"{self.known.shape} and {self.split.shape}")
        if not (len(self.boxes) == len(self.labels) == len(self.ignore) == n):
            raise ValueError("boxes, labels and ignore need one entry per image")
        if self.sizes is not None and self.sizes.shape != (n, 2):
            raise ValueError(f"sizes must be (images, 2), got {self.sizes.shape}")

    # ------------------------------------------------------------------------------------------ views

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_boxes(self) -> int:
        return int(sum(len(b) for b in self.boxes))

    def counts(self, include_ignored: bool = False) -> np.ndarray:
        """Boxes per class (ignored boxes left out unless asked)."""
        out = np.zeros(self.n_classes, dtype=np.int64)
        for labels, ignore in zip(self.labels, self.ignore, strict=True):
            np.add.at(out, labels if include_ignored else labels[~ignore], 1)
        return out

    def paths(self) -> list[Path]:
        """Each image's path: ``image_root / image`` (absolute images as they are)."""
        root = self.image_root if self.image_root is not None else \
            (self.source.parent if self.source is not None else Path("."))
        return [Path(p) if Path(p).is_absolute() else root / p for p in self.images]

    def with_image_root(self, folder: str | Path) -> BoxTable:
        """The same images with paths relative to `folder` (e.g. the folder a box table is written to).

        >>> t = BoxTable.from_arrays(["a"], ["x.png"], boxes=[[]], labels=[[]], image_root="/data/images")
        >>> t.with_image_root("/data/tables").images
        ('../images/x.png',)
        """
        import os

        folder = Path(folder)
        images = tuple(os.path.relpath(Path(p).absolute(), folder.absolute()) for p in self.paths())
        return replace(self, images=images, image_root=folder)

    def subset(self, mask_or_indices: np.ndarray | Sequence[int] | Sequence[bool]) -> BoxTable:
        """The images selected by a boolean mask or an index array, in that order."""
        rows = np.asarray(mask_or_indices)
        if rows.dtype == bool:
            if rows.shape != (len(self),):
                raise ValueError(f"mask of shape {rows.shape} for {len(self)} images")
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64)
        return replace(self, images=tuple(self.images[i] for i in rows), split=self.split[rows],
                       known=self.known[rows], boxes=tuple(self.boxes[i] for i in rows),
                       labels=tuple(self.labels[i] for i in rows), ignore=tuple(self.ignore[i] for i in rows),
                       sizes=None if self.sizes is None else self.sizes[rows])

    def part(self, split: str) -> BoxTable:
        """The images of one split."""
        return self.subset(self.split == split)

    def only_classes(self, names: str | Sequence[str]) -> BoxTable:
        """A view over some classes (in the order given): their boxes only, relabelled, ``known`` restricted.

        Every image is kept; select the images where the class is known with ``t.subset(t.known[:, 0])``.
        """
        names = [names] if isinstance(names, str) else list(names)
        missing = [n for n in names if n not in self.classes]
        if missing:
            raise LabelError(f"unknown class(es) {missing}; classes are {list(self.classes)}",
                             file=self.source)
        cols = np.array([self.classes.index(n) for n in names], dtype=np.int64)
        new = np.full(self.n_classes, -1, dtype=np.int64)
        new[cols] = np.arange(len(cols))
        boxes, labels, ignore = [], [], []
        for b, lab, ign in zip(self.boxes, self.labels, self.ignore, strict=True):
            keep = new[lab] >= 0
            boxes.append(b[keep])
            labels.append(new[lab[keep]])
            ignore.append(ign[keep])
        return replace(self, classes=tuple(names), known=self.known[:, cols], boxes=tuple(boxes),
                       labels=tuple(labels), ignore=tuple(ignore))

    def hide_annotations(self, fraction: float, seed: int, splits: Sequence[str] = ("train", "val")) -> BoxTable:
        """Mark a seeded random `fraction` (exactly, rounded) of the known (image, class) annotations in `splits`
        unknown, dropping their boxes (as a source that never annotated them would).

        >>> t = BoxTable.from_arrays(["a"], ["x.png"] * 4, boxes=[[[0, 0, 1, 1]]] * 4, labels=[[0]] * 4)
        >>> h = t.hide_annotations(0.5, seed=0)
        >>> int(h.known.sum()), h.n_boxes
        (2, 2)
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction}")
        eligible = np.flatnonzero(self.known & np.isin(self.split, list(splits))[:, None])
        chosen = np.random.default_rng(seed).choice(eligible, size=round(fraction * len(eligible)), replace=False)
        hide = np.zeros(self.known.size, bool)
        hide[chosen] = True
        hide = hide.reshape(self.known.shape)
        keep = [~hide[i][lab] for i, lab in enumerate(self.labels)]
        return replace(self, known=self.known & ~hide,
                       boxes=tuple(b[k] for b, k in zip(self.boxes, keep, strict=True)),
                       labels=tuple(lab[k] for lab, k in zip(self.labels, keep, strict=True)),
                       ignore=tuple(i[k] for i, k in zip(self.ignore, keep, strict=True)))

    def unknown_as_background(self) -> BoxTable:
        """Every (image, class) known: what is unknown is taken as verified absent (the baseline that ignores
        missing annotations)."""
        return replace(self, known=np.ones_like(self.known))

    def flat(self) -> dict[str, np.ndarray]:
        """All boxes as flat arrays: ``image`` (index), ``label``, ``ignore``, ``xyxy`` (M, 4)."""
        lengths = [len(b) for b in self.boxes]
        return {"image": np.repeat(np.arange(len(self)), lengths),
                "label": np.concatenate([*self.labels, np.zeros(0, np.int64)]).astype(np.int64),
                "ignore": np.concatenate([*self.ignore, np.zeros(0, bool)]).astype(bool),
                "xyxy": np.concatenate([*self.boxes, _empty_boxes()]).astype(np.float32)}

    # ------------------------------------------------------------------------------------------ building

    @classmethod
    def from_flat(cls, classes: Sequence[str], images: Sequence[str], *, image: np.ndarray, label: np.ndarray,
                  xyxy: np.ndarray, ignore: np.ndarray | None = None, known: np.ndarray | None = None,
                  split: np.ndarray | None = None, sizes: np.ndarray | None = None,
                  image_root: str | Path | None = None, source: str | Path | None = None,
                  fail: Callable[[int, str, object, str], LabelError] | None = None) -> BoxTable:
        """Validate flat box arrays (box m is in image ``image[m]``) into a BoxTable; `fail(m, column, value,
        reason)` names box m in errors (default: by image and box number)."""
        classes, images = _names(classes, source), tuple(str(i) for i in images)
        n, c = len(images), len(classes)
        image = np.asarray(image, dtype=np.int64).reshape(-1)
        label = np.asarray(label, dtype=np.int64).reshape(-1)
        xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        ignore = np.zeros(len(image), bool) if ignore is None else np.asarray(ignore, dtype=bool).reshape(-1)
        if not (len(image) == len(label) == len(xyxy) == len(ignore)):
            raise ValueError("image, label, xyxy and ignore need one entry per box")
        if fail is None:
            first = np.searchsorted(image, image, side="left") if len(image) and (np.diff(image) >= 0).all() \
                else np.zeros(len(image), np.int64)

            def fail(m: int, column: str, value: object, reason: str) -> LabelError:
                i = int(image[m])
                name = images[i] if 0 <= i < n else "?"
                return LabelError(f"image {i} ({name!r}), box {m - int(first[m])}: {reason}",
                                  file=source or "<arrays>", column=column, value=value)
        if len(image) and (image.min() < 0 or image.max() >= n):
            raise ValueError(f"box image indices must be in [0, {n})")
        bad = (label < 0) | (label >= c)
        if bad.any():
            m = int(bad.argmax())
            raise fail(m, "class", int(label[m]), f"class index out of range [0, {c})")
        known = np.ones((n, c), bool) if known is None else np.asarray(known, dtype=bool)
        if known.shape != (n, c):
            raise ValueError(f"known must be (images, classes) = {(n, c)}, got {known.shape}")
        unknown = ~known[image, label] if len(image) else np.zeros(0, bool)
        if unknown.any():
            m = int(unknown.argmax())
            raise fail(m, "class", classes[int(label[m])],
                       "a box of a class marked unknown for this image (its annotation is boxes, so it is known)")
        split = _split(split, n, source)
        if sizes is not None:
            sizes = np.asarray(sizes, dtype=np.float64).reshape(n, 2)
            sizes = np.where(np.isfinite(sizes) & (sizes > 0), sizes, 0.0)
        check_boxes(xyxy, image, sizes, fail)
        order = np.argsort(image, kind="stable")
        bounds = np.searchsorted(image[order], np.arange(n + 1))
        xyxy32 = xyxy.astype(np.float32)
        pieces = [order[bounds[i]:bounds[i + 1]] for i in range(n)]
        return cls(classes=classes, images=images, split=split, known=known,
                   boxes=tuple(xyxy32[p] for p in pieces), labels=tuple(label[p] for p in pieces),
                   ignore=tuple(ignore[p] for p in pieces),
                   image_root=None if image_root is None else Path(image_root),
                   source=None if source is None else Path(source), sizes=sizes)

    @classmethod
    def from_arrays(cls, classes: Sequence[str], images: Sequence[str], boxes: Sequence[Any],
                    labels: Sequence[Any], *, ignore: Sequence[Any] | None = None, known: Any = None,
                    split: Sequence[str] | np.ndarray | None = None, sizes: Any = None,
                    image_root: str | Path | None = None, source: str | Path | None = None) -> BoxTable:
        """A validated BoxTable from per-image lists: ``boxes[i]`` (k_i, 4) x1, y1, x2, y2; ``labels[i]`` class
        indices or class names; ``ignore[i]`` (default none); ``known`` (N, C) (default all); ``split``
        (default all "train"); ``sizes`` (N, 2) width, height (default unknown: only the left and top edges
        are checked). Bad values raise :class:`~multitask.errors.LabelError` naming the image and box.
        """
        classes = _names(classes, source)
        n = len(images)
        if len(boxes) != n or len(labels) != n or (ignore is not None and len(ignore) != n):
            raise ValueError(f"boxes, labels and ignore need one entry per image ({n})")
        index = {name: k for k, name in enumerate(classes)}
        flat_image, flat_label, flat_xyxy, flat_ignore = [], [], [], []
        for i in range(n):
            xyxy = np.asarray(boxes[i], dtype=np.float64).reshape(-1, 4)
            lab = list(labels[i]) if not isinstance(labels[i], np.ndarray) else labels[i].tolist()
            if len(lab) != len(xyxy):
                raise ValueError(f"image {i}: {len(xyxy)} boxes but {len(lab)} labels")
            for k, value in enumerate(lab):
                if isinstance(value, str):
                    if value not in index:
                        raise LabelError(f"image {i} ({images[i]!r}), box {k}: class not in {list(classes)}",
                                         file=source or "<arrays>", column="class", value=value)
                    lab[k] = index[value]
            flat_image.append(np.full(len(xyxy), i, np.int64))
            flat_label.append(np.asarray(lab, dtype=np.int64).reshape(-1))
            flat_xyxy.append(xyxy)
            flat_ignore.append(np.zeros(len(xyxy), bool) if ignore is None else
                               np.asarray(ignore[i], dtype=bool).reshape(-1))
        cat = np.concatenate
        return cls.from_flat(classes, images, image=cat([*flat_image, np.zeros(0, np.int64)]),
                             label=cat([*flat_label, np.zeros(0, np.int64)]),
                             xyxy=cat([*flat_xyxy, np.zeros((0, 4))]), ignore=cat([*flat_ignore, np.zeros(0, bool)]),
                             known=known, split=None if split is None else np.asarray(split), sizes=sizes,
                             image_root=image_root, source=source)


def _names(classes: Sequence[str], source: str | Path | None) -> tuple[str, ...]:
    names = tuple(str(c) for c in classes)
    seen: set[str] = set()
    for name in names:
        if not name.strip():
            raise LabelError("empty class name", file=source)
        if name in seen:
            raise LabelError("class listed twice", file=source, value=name)
        seen.add(name)
    return names


def _split(split: np.ndarray | None, n: int, source: str | Path | None) -> np.ndarray:
    if split is None:
        return np.full(n, "train", dtype="<U5")
    split = np.asarray(split).astype(str)
    if split.shape != (n,):
        raise ValueError(f"split must have one entry per image ({n}), got shape {split.shape}")
    bad = ~np.isin(split, SPLITS)
    if bad.any():
        i = int(bad.argmax())
        raise LabelError(f"image {i}: split must be train, val or test", file=source, column="split",
                         value=split[i])
    return split.astype("<U5")


def read_box_table(path: str | Path, *, image_root: str | Path | None = None, known: str | Path | None = None,
                   **options: Any) -> BoxTable:
    """Read and validate a box table file (CSV / TSV / Parquet; format in :mod:`multitask.detection.box_files`),
    or a COCO instances JSON (``.json``).

    `known`: an optional second table ``image,class,known`` saying per (image, class) whether its annotation is
    known (1: boxed or verified absent) or not (0), on top of the box table's own ``known`` column. Other
    options: ``classes`` (the class list: others are refused), ``splits`` (a label table whose ``image`` and
    ``split`` columns give the split), ``check_files`` (default True, for COCO JSON too: images must exist;
    their sizes bound the boxes), ``val_fraction`` / ``test_fraction`` / ``split_seed`` (a seeded split per
    image when there is no split).
    """
    if Path(path).suffix.lower() == ".json":
        from multitask.detection.coco_json import read_coco_json

        if known is not None:
            raise LabelError("a known-classes table goes with CSV / Parquet box tables; a COCO JSON says what is "
                             "known itself (LVIS-style neg_category_ids)", file=known)
        options.setdefault("check_files", True)
        return read_coco_json(path, image_root=image_root, **options)
    from multitask.detection.box_files import read_box_file

    return read_box_file(path, image_root=image_root, known=known, **options)


def write_box_table(table: BoxTable, path: str | Path, *, inputs: Sequence[str | Path] = ()) -> None:
    """Write a box table to CSV / TSV / Parquet (by extension) or COCO JSON (``.json``), atomically; reading it
    back gives the same table. Refuses to write over any of `inputs` (the files it was made from)."""
    if inputs:
        from multitask.importers import refuse_overwrite

        refuse_overwrite(path, inputs, "--boxes")
    if Path(path).suffix.lower() == ".json":
        from multitask.detection.coco_json import write_coco_json

        write_coco_json(table, path)
        return
    from multitask.detection.box_files import write_box_file

    write_box_file(table, path)
