"""Import a COCO ``instances_*.json`` file as a presence label table.

One row per entry of ``images`` (the input is its ``file_name``), one task per category name: ``"1"`` when the
image has at least one annotation of that category (``iscrowd`` annotations count), else ``"0"``. COCO images
are exhaustively labelled for all of the file's categories, so an image with annotations is negative for
every category it has none of.

LVIS-style files (an image with ``neg_category_ids``) are federated: a category is ``"1"`` where annotated,
``"0"`` where listed in the image's ``neg_category_ids`` (verified absent) and ``"?"`` elsewhere.

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

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from multitask.detection.boxes import BoxTable
from multitask.errors import LabelError

UnannotatedPolicy = Literal["negative", "drop", "unknown"]
_UNANNOTATED_POLICIES = ("negative", "drop", "unknown")


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
    from multitask.detection.coco_json import parse_coco, select_classes
    from multitask.importers import build_label_table

    if unannotated not in _UNANNOTATED_POLICIES:
        raise LabelError(f"unannotated must be one of {_UNANNOTATED_POLICIES}", value=unannotated)
    coco = parse_coco(instances_json)
    path = coco.path
    tasks = select_classes(coco, classes)
    selected = set(tasks)
    present: dict[str, dict[str, str]] = {}
    for annotation in coco.annotations:
        row = present.setdefault(coco.file_names[annotation["image_id"]], {})
        name = coco.category_names[annotation["category_id"]]
        if name in selected:
            row[name] = "1"
    file_names = coco.file_names
    federated: dict[str, dict[str, str]] = {}
    if any("neg_category_ids" in image for image in coco.images):  # LVIS-style: only verified classes are known
        for image in coco.images:
            verified = {coco.category_names.get(cid) for cid in image.get("neg_category_ids") or []}
            row = present.get(str(image["file_name"]), {})
            federated[str(image["file_name"])] = {task: row.get(task, "0" if task in verified else "?")
                                                  for task in tasks}

    labels: dict[str, dict[str, str]] = {}
    unknown_row = dict.fromkeys(tasks, "?")
    for name in file_names.values():
        if name in present:
            labels[name] = federated.get(name, present[name])
        elif unannotated == "negative":
            labels[name] = federated.get(name, {})
        elif unannotated == "unknown":
            labels[name] = unknown_row
    return build_label_table(labels, tasks, image_column=image_column, default="0", file=path)


def import_coco_boxes(
    instances_json: str | Path,
    classes: Iterable[str] | None = None,
    unannotated: UnannotatedPolicy = "negative",
    **options: object,
) -> BoxTable:
    """Read a COCO instances JSON into a box table (:func:`multitask.detection.coco_json.read_coco_json`:
    ``iscrowd`` boxes are ``ignore``, every category known in every image, LVIS-style ``neg_category_ids`` /
    ``not_exhaustive_category_ids`` honoured), with images without any annotation handled by ``unannotated``
    as in :func:`import_coco`: verified empty ("negative"), left out ("drop"), or every class unknown
    ("unknown"). `options` go to ``read_coco_json`` (image_root, check_files, splits, split_seed).

    >>> import json, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "instances.json"
    >>> _ = path.write_text(json.dumps({
    ...     "images": [{"id": 1, "file_name": "1.jpg"}, {"id": 2, "file_name": "2.jpg"}],
    ...     "categories": [{"id": 3, "name": "car"}],
    ...     "annotations": [{"id": 10, "image_id": 1, "category_id": 3, "bbox": [0, 0, 4, 2], "iscrowd": 1}]}))
    >>> table = import_coco_boxes(path, unannotated="unknown")
    >>> table.ignore[0].tolist(), table.known.tolist()
    ([True], [[True], [False]])
    """
    from dataclasses import replace

    from multitask.detection.coco_json import parse_coco, read_coco_json

    if unannotated not in _UNANNOTATED_POLICIES:
        raise LabelError(f"unannotated must be one of {_UNANNOTATED_POLICIES}", value=unannotated)
    table = read_coco_json(instances_json, classes=list(classes) if classes is not None else None,
                           **options)  # type: ignore[arg-type]
    if unannotated == "negative":
        return table
    coco = parse_coco(instances_json)
    annotated = {coco.file_names[a["image_id"]] for a in coco.annotations}
    empty = np.array([name not in annotated for name in table.images], dtype=bool)
    if unannotated == "drop":
        return table.subset(~empty)
    return replace(table, known=table.known & ~empty[:, None])
