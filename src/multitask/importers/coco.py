"""Import a COCO ``instances_*.json`` file as a presence label table.

One row per entry of ``images`` (the input is its ``file_name``), one task per category name: ``"1"`` when the
image has at least one annotation of that category (``iscrowd`` annotations count), else ``"0"``. COCO images
are exhaustively labelled for all of the file's categories, so an image with annotations is negative for
every category it has none of.

Images listed in ``images`` with no annotation at all are handled by ``unannotated``:

- ``"negative"`` (default): all ``"0"`` — in COCO such an image really shows none of the categories;
- ``"drop"``: the image is left out;
- ``"unknown"``: all ``"?"`` — for datasets in COCO format whose empty images were simply never labelled.

>>> import json, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "instances.json"
>>> _ = path.write_text(json.dumps({
...     "images": [{"id": 1, "file_name": "1.jpg"}, {"id": 2, "file_name": "2.jpg"}],
...     "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
...     "annotations": [{"id": 10, "image_id": 1, "category_id": 3, "iscrowd": 0}]}))
>>> import_coco(path).values.tolist()
[['1.jpg', '1', '0'], ['2.jpg', '0', '0']]
>>> import_coco(path, unannotated="unknown").values.tolist()
[['1.jpg', '1', '0'], ['2.jpg', '?', '?']]
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from multitask.errors import LabelError

UnannotatedPolicy = Literal["negative", "drop", "unknown"]
_UNANNOTATED_POLICIES = ("negative", "drop", "unknown")


def _records(data: dict[str, Any], key: str, fields: tuple[str, ...], path: Path) -> list[dict[str, Any]]:
    records = data.get(key)
    if not isinstance(records, list):
        raise LabelError(f"not a COCO instances file: no {key!r} list", file=path)
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise LabelError(f"{key}[{i}] is not an object", file=path, value=record)
        for field in fields:
            if field not in record:
                raise LabelError(f"{key}[{i}] has no {field!r}", file=path, column=field)
    return records


def import_coco(
    instances_json: str | Path,
    classes: Iterable[str] | None = None,
    unannotated: UnannotatedPolicy = "negative",
    image_column: str = "image",
) -> pd.DataFrame:
    """Read a COCO instances JSON into a label table (see the module docstring).

    ``classes`` selects category names and fixes the column order (a name that is not a category raises
    :class:`~multitask.errors.LabelError`); by default all categories, sorted by name. Whether an image is
    "unannotated" is judged over all its annotations, not only those of the selected classes.
    Annotations whose ``category_id`` is not in ``categories`` or whose ``image_id`` is not in ``images``
    raise :class:`~multitask.errors.LabelError`, as do duplicate image ids, file names or category names.
    """
    from multitask.importers import build_label_table, check_classes

    if unannotated not in _UNANNOTATED_POLICIES:
        raise LabelError(f"unannotated must be one of {_UNANNOTATED_POLICIES}", value=unannotated)
    path = Path(instances_json)
    wanted = check_classes(classes, file=path)
    try:
        with path.open(encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as error:
        raise LabelError(f"malformed JSON ({error.msg})", file=path, line=error.lineno) from error
    if not isinstance(data, dict):
        raise LabelError("not a COCO instances file: top level is not an object", file=path)

    images = _records(data, "images", ("id", "file_name"), path)
    categories = _records(data, "categories", ("id", "name"), path)
    annotations = _records(data, "annotations", ("image_id", "category_id"), path)

    file_names: dict[Any, str] = {}
    seen_names: set[str] = set()
    for image in images:
        image_id, name = image["id"], str(image["file_name"])
        if image_id in file_names:
            raise LabelError("duplicate image id in 'images'", file=path, column="id", value=image_id)
        if name in seen_names:
            raise LabelError("duplicate file_name in 'images'", file=path, column="file_name", value=name)
        file_names[image_id] = name
        seen_names.add(name)

    category_names: dict[Any, str] = {}
    known_names: set[str] = set()
    for category in categories:
        category_id, name = category["id"], str(category["name"])
        if category_id in category_names:
            raise LabelError(
                "duplicate category id in 'categories'", file=path, column="id", value=category_id
            )
        if name in known_names:
            raise LabelError("duplicate category name in 'categories'", file=path, column="name", value=name)
        category_names[category_id] = name
        known_names.add(name)

    if wanted is not None:
        missing = [name for name in wanted if name not in known_names]
        if missing:
            raise LabelError(
                f"class not among the file's categories {sorted(known_names)}",
                file=path,
                value=missing[0],
            )
    tasks = wanted if wanted is not None else sorted(category_names.values())
    selected = set(tasks)

    present: dict[str, dict[str, str]] = {}
    for i, annotation in enumerate(annotations):
        image_id, category_id = annotation["image_id"], annotation["category_id"]
        where = f"annotations[{i}] (id {annotation.get('id', '?')})"
        if category_id not in category_names:
            raise LabelError(
                f"{where}: category_id not in 'categories'",
                file=path,
                column="category_id",
                value=category_id,
            )
        if image_id not in file_names:
            raise LabelError(
                f"{where}: image_id not in 'images'", file=path, column="image_id", value=image_id
            )
        row = present.setdefault(file_names[image_id], {})
        name = category_names[category_id]
        if name in selected:
            row[name] = "1"

    labels: dict[str, dict[str, str]] = {}
    unknown_row = dict.fromkeys(tasks, "?")
    for name in file_names.values():
        if name in present:
            labels[name] = present[name]
        elif unannotated == "negative":
            labels[name] = {}
        elif unannotated == "unknown":
            labels[name] = unknown_row
    return build_label_table(labels, tasks, image_column=image_column, default="0", file=path)
