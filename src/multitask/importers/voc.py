"""Import Pascal VOC annotation files (one ``*.xml`` per image) as a presence label table.

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

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import pandas as pd

from multitask.errors import LabelError, MissingFileError
from multitask.tables.reader import read_xml_root

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


def read_voc_file(path: str | Path) -> tuple[str, list[tuple[str, bool]]]:
    """Parse one VOC annotation file into ``(filename, [(class name, difficult), ...])``.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.xml"
    >>> _ = path.write_text("<annotation><filename>a.jpg</filename><object><name>cat</name>"
    ...                     "</object></annotation>")
    >>> read_voc_file(path)
    ('a.jpg', [('cat', False)])
    """
    path = Path(path)
    root = read_xml_root(path)
    filename = (root.findtext("filename") or "").strip()
    if not filename:
        raise LabelError("VOC annotation has no <filename>", file=path)
    objects: list[tuple[str, bool]] = []
    for obj in root.findall("object"):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise LabelError("<object> without a <name>", file=path, column="name")
        objects.append((name, _parse_difficult(obj, path)))
    return filename, objects


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
    folder = Path(annotations_dir)
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: annotations directory not found")
    wanted = check_classes(classes, file=folder)
    paths = sorted(folder.glob("*.xml"))
    if not paths:
        raise LabelError("no *.xml annotation files found", file=folder)

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
