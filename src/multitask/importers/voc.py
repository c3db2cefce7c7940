"""Import Pascal VOC annotation files (one ``*.xml`` per image) as a presence label table, or their boxes as a
box table (:func:`import_voc_boxes`).

Each file gives one row: the image is ``<filename>`` (as written, relative to the image root) and a class is
``"1"`` when the file has at least one ``<object>`` of that class, else ``"0"`` (VOC annotations are taken as
exhaustive for their classes). Objects marked ``<difficult>1</difficult>`` are handled by ``difficult``:

- ``"positive"`` (default): they count as present, like any other object;
- ``"unknown"``: a class whose only objects are difficult becomes ``"?"`` (a non-difficult one still makes it
  ``"1"``);
- ``"ignore"``: they are dropped (so ``"0"`` when no other object of that class is left).

The files are parsed with the standard library's ``xml.etree.ElementTree`` (``defusedxml`` is not a
dependency); it is meant for local annotation files you trust, not for XML from the network.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.xml").write_text(
...     "<annotation><filename>a.jpg</filename>"
...     "<object><name>stop</name><difficult>0</difficult></object></annotation>")
>>> _ = (folder / "b.xml").write_text(
...     "<annotation><filename>b.jpg</filename>"
...     "<object><name>dog</name><difficult>1</difficult></object></annotation>")
>>> import_voc(folder, difficult="unknown").values.tolist()
[['a.jpg', '0', '1'], ['b.jpg', '?', '0']]
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from multitask.detection.boxes import BoxTable
from multitask.errors import LabelError, MissingFileError
from multitask.tables.reader import read_xml_root
from multitask.tables.splits import seeded_split

DifficultPolicy = Literal["positive", "unknown", "ignore"]
_DIFFICULT_POLICIES = ("positive", "unknown", "ignore")
_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no", ""}


def _parse_difficult(obj: ET.Element, path: Path) -> bool:
    text = (obj.findtext("difficult") or "").strip()
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise LabelError("<difficult> must be 0 or 1", file=path, column="difficult", value=text)


@dataclass(frozen=True)
class VocObject:
    """One ``<object>``: its class, whether it is difficult, and its box ``x1, y1, x2, y2`` in 0-based pixel
    edges (VOC's 1-based ``xmin, ymin`` less 1, clipped at 0; ``xmax, ymax`` as written), None without
    ``<bndbox>``."""

    name: str
    difficult: bool
    box: tuple[float, float, float, float] | None


def _coordinate(box: ET.Element, key: str, path: Path, k: int, name: str) -> float:
    text = (box.findtext(key) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise LabelError(f"<object> {k} ({name}): <bndbox> <{key}> must be a number", file=path, column=key,
                         value=text) from None
    if not math.isfinite(value):
        raise LabelError(f"<object> {k} ({name}): <bndbox> <{key}> must be finite", file=path, column=key,
                         value=text)
    return value


def read_voc_annotation(path: str | Path) -> tuple[str, tuple[float, float] | None, list[VocObject]]:
    """Parse one VOC annotation file into ``(filename, (width, height) or None, objects)``.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.xml"
    >>> _ = path.write_text("<annotation><filename>a.jpg</filename><size><width>50</width><height>40</height>"
    ...                     "</size><object><name>cat</name><bndbox><xmin>1</xmin><ymin>5</ymin><xmax>20</xmax>"
    ...                     "<ymax>30</ymax></bndbox></object></annotation>")
    >>> read_voc_annotation(path)
    ('a.jpg', (50.0, 40.0), [VocObject(name='cat', difficult=False, box=(0.0, 4.0, 20.0, 30.0))])
    """
    path = Path(path)
    root = read_xml_root(path)
    filename = (root.findtext("filename") or "").strip()
    if not filename:
        raise LabelError("VOC annotation has no <filename>", file=path)
    size = None
    try:
        width, height = (float((root.findtext(f"size/{key}") or "0").strip() or 0) for key in ("width", "height"))
        size = (width, height) if width > 0 and height > 0 else None
    except ValueError:
        size = None  # an unreadable <size> is not needed: the image file's size is used when checked
    objects: list[VocObject] = []
    for k, obj in enumerate(root.findall("object")):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise LabelError("<object> without a <name>", file=path, column="name")
        box = obj.find("bndbox")
        xyxy = None
        if box is not None:
            xmin, ymin, xmax, ymax = (_coordinate(box, key, path, k, name) for key in ("xmin", "ymin", "xmax", "ymax"))
            xyxy = (max(0.0, xmin - 1), max(0.0, ymin - 1), xmax, ymax)
        objects.append(VocObject(name, _parse_difficult(obj, path), xyxy))
    return filename, size, objects


def read_voc_file(path: str | Path) -> tuple[str, list[tuple[str, bool]]]:
    """Parse one VOC annotation file into ``(filename, [(class name, difficult), ...])``.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.xml"
    >>> _ = path.write_text("<annotation><filename>a.jpg</filename><object><name>cat</name>"
    ...                     "</object></annotation>")
    >>> read_voc_file(path)
    ('a.jpg', [('cat', False)])
    """
    filename, _, objects = read_voc_annotation(path)
    return filename, [(o.name, o.difficult) for o in objects]


def _annotation_files(annotations_dir: str | Path) -> tuple[Path, list[Path]]:
    folder = Path(annotations_dir)
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: annotations directory not found")
    paths = sorted(folder.glob("*.xml"))
    if not paths:
        raise LabelError("no *.xml annotation files found", file=folder)
    return folder, paths


def import_voc_boxes(
    annotations_dir: str | Path,
    classes: Iterable[str] | None = None,
    *,
    image_root: str | Path | None = None,
    check_files: bool = False,
    splits: str | Path | None = None,
    split_seed: int = 0,
) -> BoxTable:
    """Read every ``*.xml`` in ``annotations_dir`` into a box table: one image per file (rows sorted by
    ``<filename>``, as :func:`import_voc`), one box per ``<object>`` (``difficult`` ones marked ``ignore``:
    VOC's evaluation neither rewards nor penalises them). VOC annotations are exhaustive for their classes,
    so every class is known in every image. The image size is ``<size>`` (or, with ``check_files``, the image
    file's); boxes outside it, degenerate boxes and objects without ``<bndbox>`` raise LabelError naming the
    file. ``classes`` as :func:`import_voc`. Split: a label table's (``splits``), else seeded.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.xml").write_text("<annotation><filename>a.jpg</filename><object><name>dog</name>"
    ...     "<difficult>1</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>5</ymax></bndbox>"
    ...     "</object></annotation>")
    >>> table = import_voc_boxes(folder)
    >>> table.classes, table.boxes[0].tolist(), table.ignore[0].tolist()
    (('dog',), [[0.0, 0.0, 9.0, 5.0]], [True])
    """
    from multitask.importers import check_classes

    folder, paths = _annotation_files(annotations_dir)
    wanted = check_classes(classes, file=folder)
    parsed = {}
    source: dict[str, Path] = {}
    for path in paths:
        filename, size, objects = read_voc_annotation(path)
        if filename in source:
            raise LabelError(f"image also annotated by {source[filename]}", file=path, column="filename",
                             value=filename)
        for k, obj in enumerate(objects):
            if obj.box is None and (wanted is None or obj.name in wanted):
                raise LabelError(f"<object> {k} ({obj.name}) has no <bndbox>", file=path, column="bndbox")
        source[filename] = path
        parsed[filename] = (size, objects)
    names = wanted if wanted is not None else sorted({o.name for _, objects in parsed.values() for o in objects})
    index = {name: k for k, name in enumerate(names)}
    images = sorted(parsed)
    image, label, xyxy, ignore, where = [], [], [], [], []
    for i, filename in enumerate(images):
        for k, obj in enumerate(parsed[filename][1]):
            if obj.name in index:
                image.append(i)
                label.append(index[obj.name])
                xyxy.append(obj.box)
                ignore.append(obj.difficult)
                where.append((source[filename], k, obj.name))
    sizes = np.array([parsed[f][0] or (0.0, 0.0) for f in images], dtype=np.float64).reshape(-1, 2)
    root = Path(image_root) if image_root is not None else folder
    if check_files:
        from multitask.detection.box_files import image_sizes

        from_files = image_sizes([root / f for f in images],
                                 lambda i: {"file": source[images[i]], "column": "filename", "value": images[i]})
        sizes = np.where(sizes > 0, sizes, from_files)
    if splits is not None:
        from multitask.detection.box_files import splits_of

        split = splits_of(splits, images, lambda i: {"file": source[images[i]], "column": "filename",
                                                     "value": images[i]})
    else:
        split = seeded_split(len(images), 0.15, 0.15, split_seed)

    def fail(m: int, column: str, value: object, reason: str) -> LabelError:
        path, k, name = where[m]
        key = {"x1": "xmin", "y1": "ymin", "x2": "xmax", "y2": "ymax"}[column]
        return LabelError(f"<object> {k} ({name}): {reason}", file=path, column=key, value=value)

    return BoxTable.from_flat(names, images, image=np.array(image, np.int64), label=np.array(label, np.int64),
                              xyxy=np.array(xyxy, np.float64).reshape(-1, 4), ignore=np.array(ignore, bool),
                              split=split, sizes=sizes, image_root=root, source=folder, fail=fail)


def import_voc(
    annotations_dir: str | Path,
    classes: Iterable[str] | None = None,
    difficult: DifficultPolicy = "positive",
    image_column: str = "image",
) -> pd.DataFrame:
    """Read every ``*.xml`` in ``annotations_dir`` into a label table (see the module docstring).

    ``classes`` fixes the task columns and their order (objects of other classes are ignored; a listed class
    that no file mentions is ``"0"`` everywhere); by default the columns are all class names seen, sorted.
    Two files naming the same ``<filename>`` raise :class:`~multitask.errors.LabelError`.
    """
    from multitask.importers import build_label_table, check_classes

    if difficult not in _DIFFICULT_POLICIES:
        raise LabelError(f"difficult must be one of {_DIFFICULT_POLICIES}", value=difficult)
    folder, paths = _annotation_files(annotations_dir)
    wanted = check_classes(classes, file=folder)

    labels: dict[str, dict[str, str]] = {}
    source: dict[str, Path] = {}
    seen: set[str] = set()
    for path in paths:
        filename, objects = read_voc_file(path)
        if filename in source:
            raise LabelError(
                f"image also annotated by {source[filename]}", file=path, column="filename", value=filename
            )
        source[filename] = path
        row: dict[str, str] = {}
        for name, is_difficult in objects:
            seen.add(name)
            if is_difficult and difficult == "ignore":
                continue
            if is_difficult and difficult == "unknown":
                row.setdefault(name, "?")
            else:
                row[name] = "1"
        labels[filename] = row
    tasks = wanted if wanted is not None else sorted(seen)
    return build_label_table(labels, tasks, image_column=image_column, default="0", file=folder)
