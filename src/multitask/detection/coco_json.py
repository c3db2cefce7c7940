"""COCO instances JSON in and out (and LVIS's per-image annotation status), for box tables and predictions.

Reading (:func:`read_coco_json`): one image per entry of ``images`` (its ``file_name``, ``width`` and
``height`` when given), one class per category (sorted by name, as :func:`multitask.importers.import_coco`
orders its columns; or ``classes``), one box per annotation: ``bbox`` ``[x, y, width, height]`` becomes
``x1, y1, x2, y2``; ``iscrowd`` 1 becomes ``ignore``. COCO images are exhaustively labelled: every category is
known in every image. LVIS-style files (an image with ``neg_category_ids``) are federated: in an image only the
categories it has boxes of or lists in ``neg_category_ids`` (verified absent) are known; the categories in
``not_exhaustive_category_ids`` (some instances not boxed) are unknown, and their boxes are left out.
An image's ``split`` (this project's addition, written by :func:`write_coco_json`) gives its split.

Writing (:func:`write_coco_json`): a BoxTable as an instances file (image ids 1..N, category ids 1..C, in the
table's order; ``neg_category_ids`` per image when some annotation is unknown), or predictions as a COCO
results list (``image_id``, ``category_id``, ``bbox``, ``score``) whose ids match the table's file.

>>> import tempfile, pathlib
>>> from multitask.detection.boxes import BoxTable
>>> table = BoxTable.from_arrays(["car"], ["a.png", "b.png"], boxes=[[[1, 2, 11, 7]], []], labels=[[0], []])
>>> path = pathlib.Path(tempfile.mkdtemp()) / "instances.json"
>>> write_coco_json(table, path)
>>> back = read_coco_json(path)
>>> back.images, back.boxes[0].tolist(), back.split.tolist()
(('a.png', 'b.png'), [[1.0, 2.0, 11.0, 7.0]], ['train', 'train'])
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multitask.detection.boxes import BoxTable
from multitask.errors import LabelError
from multitask.tables.splits import SPLITS, seeded_split


@dataclass(frozen=True)
class CocoFile:
    """A checked COCO instances file: ``images`` records, ``{image id: file name}``, ``{category id: name}``,
    and the ``annotations`` records (each has ``image_id`` and ``category_id`` of a listed image / category)."""

    path: Path
    images: list[dict[str, Any]]
    file_names: dict[Any, str]
    category_names: dict[Any, str]
    annotations: list[dict[str, Any]]


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


def _names_by_id(records: list[dict[str, Any]], key: str, id_label: str, field: str, name_label: str,
                 path: Path) -> dict[Any, str]:
    """{record id: its `field` as text} of the `key` records; a repeated id or name is a LabelError (the message
    says "duplicate <id_label>" or "duplicate <name_label>")."""
    names: dict[Any, str] = {}
    seen: set[str] = set()
    for record in records:
        record_id, name = record["id"], str(record[field])
        if record_id in names:
            raise LabelError(f"duplicate {id_label} in {key!r}", file=path, column="id", value=record_id)
        if name in seen:
            raise LabelError(f"duplicate {name_label} in {key!r}", file=path, column=field, value=name)
        names[record_id] = name
        seen.add(name)
    return names


def parse_coco(path: str | Path) -> CocoFile:
    """Read and check a COCO instances JSON: malformed JSON, missing lists or fields, duplicate image ids, file
    names or category ids / names, and annotations of unlisted images or categories raise
    :class:`~multitask.errors.LabelError` naming the file, the record and the field."""
    path = Path(path)
    if not path.is_file():
        raise LabelError("file not found", file=path)
    try:
        with path.open(encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as error:
        raise LabelError(f"malformed JSON ({error.msg})", file=path, line=error.lineno) from error
    except UnicodeDecodeError:
        raise LabelError("not a JSON file (cannot decode it as UTF-8)", file=path) from None
    if not isinstance(data, dict):
        raise LabelError("not a COCO instances file: top level is not an object", file=path)

    images = _records(data, "images", ("id", "file_name"), path)
    categories = _records(data, "categories", ("id", "name"), path)
    annotations = _records(data, "annotations", ("image_id", "category_id"), path)

    file_names = _names_by_id(images, "images", "image id", "file_name", "file_name", path)
    category_names = _names_by_id(categories, "categories", "category id", "name", "category name", path)

    for i, annotation in enumerate(annotations):
        where = f"annotations[{i}] (id {annotation.get('id', '?')})"
        if annotation["category_id"] not in category_names:
            raise LabelError(f"{where}: category_id not in 'categories'", file=path, column="category_id",
                             value=annotation["category_id"])
        if annotation["image_id"] not in file_names:
            raise LabelError(f"{where}: image_id not in 'images'", file=path, column="image_id",
                             value=annotation["image_id"])
    return CocoFile(path, images, file_names, category_names, annotations)


def select_classes(coco: CocoFile, classes: Sequence[str] | None) -> list[str]:
    """The class names to use: `classes` (each must be a category) or every category, sorted by name."""
    from multitask.importers import check_classes

    wanted = check_classes(classes, file=coco.path)
    names = set(coco.category_names.values())
    if wanted is None:
        return sorted(names)
    missing = [name for name in wanted if name not in names]
    if missing:
        raise LabelError(f"class not among the file's categories {sorted(names)}", file=coco.path, value=missing[0])
    return wanted


def _id_list(image: Mapping[str, Any], key: str, coco: CocoFile, i: int) -> list[Any]:
    values = image.get(key, [])
    if not isinstance(values, list):
        raise LabelError(f"images[{i}]: {key} must be a list of category ids", file=coco.path, column=key,
                         value=values)
    for value in values:
        if value not in coco.category_names:
            raise LabelError(f"images[{i}]: {key} names a category id not in 'categories'", file=coco.path,
                             column=key, value=value)
    return values


def _bbox(annotation: Mapping[str, Any], m: int, path: Path) -> list[float]:
    bbox = annotation.get("bbox")
    where = f"annotations[{m}] (id {annotation.get('id', '?')})"
    if bbox is None:
        raise LabelError(f"{where}: no 'bbox' (a box table needs one per annotation)", file=path, column="bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or \
            not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox):
        raise LabelError(f"{where}: bbox must be [x, y, width, height] numbers", file=path, column="bbox",
                         value=bbox)
    return [float(v) for v in bbox]


def read_coco_json(
    path: str | Path,
    *,
    classes: Sequence[str] | None = None,
    image_root: str | Path | None = None,
    check_files: bool = False,
    splits: str | Path | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
) -> BoxTable:
    """A COCO (or LVIS-style) instances JSON as a validated BoxTable (see the module docstring).

    Boxes outside their image (by its ``width`` / ``height``; with ``check_files`` also by the image file's
    size) or of zero width or height raise a LabelError naming the annotation. Annotations of categories not in
    `classes` are left out. Split: the images' ``split`` fields, else `splits` (a label table with ``image`` and
    ``split``), else a seeded split.
    """
    coco = parse_coco(path)
    path = coco.path
    class_list = select_classes(coco, classes)
    index = {name: k for k, name in enumerate(class_list)}
    by_id = {cid: index.get(name, -1) for cid, name in coco.category_names.items()}
    row_of = {image["id"]: i for i, image in enumerate(coco.images)}
    n, c = len(coco.images), len(class_list)
    images = [str(image["file_name"]) for image in coco.images]

    federated = any("neg_category_ids" in image for image in coco.images)
    known = np.zeros((n, c), bool) if federated else np.ones((n, c), bool)
    not_exhaustive = np.zeros((n, c), bool)
    for i, image in enumerate(coco.images):
        for key, target in (("neg_category_ids", known), ("not_exhaustive_category_ids", not_exhaustive)):
            for cid in _id_list(image, key, coco, i):
                if by_id[cid] >= 0:
                    target[i, by_id[cid]] = True
    sizes = np.zeros((n, 2))
    for i, image in enumerate(coco.images):
        for k, key in enumerate(("width", "height")):
            value = image.get(key)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                    raise LabelError(f"images[{i}]: {key} must be a positive number", file=path, column=key,
                                     value=value)
                sizes[i, k] = float(value)

    picked = [m for m, a in enumerate(coco.annotations) if by_id[a["category_id"]] >= 0]
    image = np.array([row_of[coco.annotations[m]["image_id"]] for m in picked], dtype=np.int64)
    label = np.array([by_id[coco.annotations[m]["category_id"]] for m in picked], dtype=np.int64)
    bbox = np.array([_bbox(coco.annotations[m], m, path) for m in picked], dtype=np.float64).reshape(-1, 4)
    crowd = np.array([bool(coco.annotations[m].get("iscrowd", 0)) for m in picked], dtype=bool)
    if federated:
        known[image, label] = True
    known &= ~not_exhaustive
    keep = ~not_exhaustive[image, label] if len(image) else np.zeros(0, bool)
    image, label, bbox, crowd = image[keep], label[keep], bbox[keep], crowd[keep]
    picked = [m for m, k in zip(picked, keep, strict=True) if k]
    xyxy = np.concatenate([bbox[:, :2], bbox[:, :2] + bbox[:, 2:]], axis=1)

    split = _split(coco, images, splits, val_fraction, test_fraction, split_seed)
    root = Path(image_root) if image_root is not None else path.parent
    if check_files:
        from multitask.detection.box_files import image_sizes

        from_files = image_sizes([Path(p) if Path(p).is_absolute() else root / p for p in images],
                                 lambda i: {"file": path, "column": "file_name", "value": images[i]})
        sizes = np.where(sizes > 0, sizes, from_files)

    def fail(m: int, column: str, value: object, reason: str) -> LabelError:
        annotation = coco.annotations[picked[m]]
        if column == "x2":
            reason = reason.replace("x2 must be greater than x1", "bbox width must be positive")
        if column == "y2":
            reason = reason.replace("y2 must be greater than y1", "bbox height must be positive")
        return LabelError(f"annotations[{picked[m]}] (id {annotation.get('id', '?')}), image "
                          f"{images[int(image[m])]!r}: {reason}", file=path, column="bbox",
                          value=annotation.get("bbox"))

    return BoxTable.from_flat(class_list, images, image=image, label=label, xyxy=xyxy, ignore=crowd, known=known,
                              split=split, sizes=sizes, image_root=root, source=path, fail=fail)


def _split(coco: CocoFile, images: list[str], splits: str | Path | None, val_fraction: float,
           test_fraction: float, split_seed: int) -> np.ndarray:
    given = [image.get("split") for image in coco.images]
    if any(v is not None for v in given):
        out = np.empty(len(images), dtype="<U5")
        for i, value in enumerate(given):
            if value not in SPLITS:
                raise LabelError(f"images[{i}]: split must be train, val or test", file=coco.path, column="split",
                                 value=value)
            out[i] = value
        return out
    if splits is not None:
        from multitask.detection.box_files import splits_of

        return splits_of(splits, images, lambda i: {"file": coco.path, "column": "file_name", "value": images[i]})
    return seeded_split(len(images), val_fraction, test_fraction, split_seed)


def coco_dataset(table: BoxTable) -> dict[str, Any]:
    """A BoxTable as a COCO instances dict (see the module docstring)."""
    federated = not table.known.all()
    images, annotations = [], []
    for i, name in enumerate(table.images):
        record: dict[str, Any] = {"id": i + 1, "file_name": name}
        if table.sizes is not None and (table.sizes[i] > 0).all():
            record["width"], record["height"] = float(table.sizes[i][0]), float(table.sizes[i][1])
        record["split"] = str(table.split[i])
        if federated:
            boxed = np.zeros(table.n_classes, bool)
            boxed[table.labels[i]] = True
            record["neg_category_ids"] = [int(k) + 1 for k in np.flatnonzero(table.known[i] & ~boxed)]
            record["not_exhaustive_category_ids"] = []
        images.append(record)
        for box, label, ignore in zip(table.boxes[i], table.labels[i], table.ignore[i], strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(label) + 1,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                "iscrowd": int(bool(ignore))})
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(table.classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_results(predictions: Sequence[Mapping[str, Any]], table: BoxTable) -> list[dict[str, Any]]:
    """Predictions (one dict per image of `table`: ``boxes`` x1, y1, x2, y2, ``scores``, ``labels``) as a COCO
    results list whose ids match :func:`coco_dataset` of the table."""
    from multitask.detection.metrics import prediction_arrays

    if len(predictions) != len(table):
        raise ValueError(f"{len(predictions)} predictions for {len(table)} images")
    out = []
    for i, item in enumerate(predictions):
        boxes, scores, labels = prediction_arrays(item, i, table.n_classes)
        for box, score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True):
            out.append({"image_id": i + 1, "category_id": int(label) + 1,
                        "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "score": float(score)})
    return out


def write_coco_json(data: BoxTable | Sequence[Mapping[str, Any]], path: str | Path, *,
                    table: BoxTable | None = None) -> None:
    """Write a BoxTable as a COCO instances file, or predictions (with the `table` they belong to) as a COCO
    results file, atomically."""
    from multitask.files import atomic_write_text

    if isinstance(data, BoxTable):
        content: Any = coco_dataset(data)
    else:
        if table is None:
            raise ValueError("writing predictions as COCO results needs the table they belong to (table=...)")
        content = coco_results(data, table)
    atomic_write_text(path, json.dumps(content) + "\n")
