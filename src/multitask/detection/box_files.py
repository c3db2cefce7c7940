"""The box-table file format (CSV / TSV / Parquet), read through the project's one table reader.

One row per box, plus rows without a box that list an image or state what is known about a class in it:

============  =========================================================================================
column        meaning
============  =========================================================================================
``image``     image path, relative to the image root (default: the table's folder) or absolute; required
``class``     class name; empty on a row that only lists its image
``x1`` ...    ``x1, y1, x2, y2``: the box in pixels of the original image (x right, y down); all four
``y2``        empty on a row without a box; required columns
``ignore``    optional: 1 for a box that is neither a target nor a false positive (VOC difficult, COCO
              iscrowd); 0 / empty otherwise
``known``     optional: 0 on a row without a box makes its class unknown in that image (nobody looked);
              0 on a row without class *and* box makes every class unknown in that image except those its
              other rows name (its boxes; a boxless row of a class with ``known`` 1 or empty: verified
              absent); 1 or empty: known (the default for every class of the file in every image listed)
``split``     optional: train / val / test, the same on every row of an image
``width``     optional: the image's size in pixels, the same on every row of an image (otherwise read from
``height``    the image file's header when files are checked)
============  =========================================================================================

Every class of the file is known in every image it lists unless a ``known`` 0 says otherwise, so a listed
image without a box is *verified empty*. Other columns are ignored. The values of ``ignore`` and ``known``
are 1 / 0 (or yes / no, true / false) or empty; ``?`` is refused (``known`` 0 is unknown). Boxes are checked
at the boundary: all four coordinates or none, finite numbers, ``x2 > x1`` and ``y2 > y1``, inside the image
(with :func:`~multitask.detection.boxes.size_tolerance`), a class from ``classes`` when that list is given,
and not of a class marked unknown in its image; errors name the file, line, column and value.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "boxes.csv"
>>> _ = path.write_text("image,class,x1,y1,x2,y2,known\\n"
...                     "a.png,car,0,0,10,5,\\n"
...                     "b.png,,,,,,\\n"
...                     "c.png,sign,,,,,0\\n")
>>> table = read_box_file(path, check_files=False)
>>> table.classes, table.known.tolist(), [len(b) for b in table.boxes]
(('car', 'sign'), [[True, True], [True, True], [True, False]], [1, 0, 0])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from multitask.detection.boxes import COORDINATES, BoxTable
from multitask.errors import LabelError
from multitask.tables import vocabulary
from multitask.tables.reader import PARQUET_SUFFIXES, TEXT_SUFFIXES, RawTable, Role, read_table
from multitask.tables.splits import SPLITS, seeded_split, split_codes

REQUIRED = ("image", "class", *COORDINATES)
OPTIONAL: dict[str, Role] = {"ignore": "text", "known": "text", "split": "category", "width": "numbers",
                             "height": "numbers"}
_NUMBER = r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf|infinity|nan)$"


def _plan(source: str | Path, required: Sequence[str]) -> Any:
    def plan(names: list[str], _: object) -> dict[str, Role]:
        missing = [name for name in required if name not in names]
        if missing:
            raise LabelError(f"box table lacks column(s) {missing}; columns are {names}", file=source, line=1)
        roles: dict[str, Role] = {name: "skip" for name in names}
        roles.update({name: "text" for name in ("image", "class") if name in names})
        roles.update({name: "numbers" for name in COORDINATES if name in names})
        roles.update({name: role for name, role in OPTIONAL.items() if name in names})
        return roles
    return plan


def _text(raw: RawTable, name: str) -> np.ndarray:
    """A text column, trimmed, nulls as ""."""
    values = raw.column(name)
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    return pc.utf8_trim_whitespace(values).fill_null("").to_numpy(zero_copy_only=False).astype(object)


def _numbers(raw: RawTable, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, empty mask) of a number column; a cell that is not a number is a LabelError."""
    values = raw.column(name)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) or pa.types.is_null(values.type):
        text = pc.utf8_trim_whitespace(values.cast(pa.string())).fill_null("")
        empty = pc.equal(text, "").to_numpy(zero_copy_only=False)
        ok = pc.match_substring_regex(text, _NUMBER, ignore_case=True).to_numpy(zero_copy_only=False) | empty
        if not ok.all():
            row = int((~ok).argmax())
            raise LabelError("must be a number (or empty on a row without a box)", file=raw.source,
                             line=raw.line(row), column=name, value=raw.cell(name, row))
        numbers = pc.cast(pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text), pa.float64())
    elif pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_decimal(values.type) \
            or pa.types.is_boolean(values.type):
        numbers = values.cast(pa.float64())
        empty = values.is_null().to_numpy(zero_copy_only=False)
    else:
        raise LabelError(f"column of type {values.type} is not numeric", file=raw.source, column=name)
    out = numbers.fill_null(np.nan).to_numpy(zero_copy_only=False).astype(np.float64)
    if pa.types.is_floating(values.type):  # a typed NaN is a value, not an empty cell
        out = np.where(empty, np.nan, out)
    return out, np.asarray(empty, dtype=bool)


def flag_codes(raw: RawTable, name: str, meaning: str) -> np.ndarray:
    """A yes/no column as int8 codes: 1 (1 / true / yes), 0 (0 / false / no), -1 (empty: not stated); anything
    else, ``?`` included (say 0 for unknown), is a LabelError naming the cell.

    >>> import pyarrow as pa
    >>> raw = RawTable(pa.table({"known": ["1", "", " no"]}), "t.csv", n_rows=3)
    >>> flag_codes(raw, "known", "1 known, 0 unknown").tolist()
    [1, -1, 0]
    """
    if name not in raw.table.column_names:
        return np.full(raw.n_rows, -1, np.int8)
    text = pc.utf8_trim_whitespace(raw.column(name).cast(pa.string())).fill_null("")
    empty = pc.equal(text, "").to_numpy(zero_copy_only=False)
    codes = vocabulary.label_codes(text)
    bad = ~empty & ((codes == vocabulary.BAD) | (codes == vocabulary.UNKNOWN_CODE))
    if bad.any():
        row = int(bad.argmax())
        raise LabelError(f"{name} must be {meaning}, or empty", file=raw.source, line=raw.line(row), column=name,
                         value=raw.cell(name, row))
    return np.where(empty, -1, codes).astype(np.int8)


def _first_rows(codes: np.ndarray, n: int) -> np.ndarray:
    """The first row of each of n groups (codes from pd.factorize, every group present)."""
    first = np.full(n, -1, np.int64)
    groups, rows = np.unique(codes, return_index=True)
    first[groups] = rows
    return first


def _per_image(values: np.ndarray, given: np.ndarray, image: np.ndarray, n: int, raw: RawTable,
               column: str) -> np.ndarray:
    """One value per image from a per-row column (rows where `given`; NaN / -1 for an image without one); the
    rows of an image must agree."""
    out = np.full(n, np.nan) if values.dtype.kind == "f" else np.full(n, -1, values.dtype)
    rows = np.flatnonzero(given)
    groups, first = np.unique(image[rows], return_index=True)
    out[groups] = values[rows[first]]
    first_row = np.full(n, -1, np.int64)
    first_row[groups] = rows[first]
    differs = given & (values != out[image])
    if values.dtype.kind == "f":
        differs &= ~(np.isnan(values) & np.isnan(out[image]))
    if differs.any():
        row = int(differs.argmax())
        raise LabelError(f"rows of one image disagree on {column} (line {raw.line(int(first_row[image[row]]))} "
                         f"has {raw.cell(column, int(first_row[image[row]]))!r})", file=raw.source,
                         line=raw.line(row), column=column, value=raw.cell(column, row))
    return out


def _known(n: int, c: int, image: np.ndarray, cls: np.ndarray, code: np.ndarray, has_box: np.ndarray,
           line: Any, source: Any, column: str = "known") -> np.ndarray:
    """(n, c) known from statements: rows (image, class or -1, known code 1 / 0 / -1, whether it is a box)."""
    unknown_row = code == 0
    boxless_default = cls < 0
    if (unknown_row & has_box).any():
        row = int((unknown_row & has_box).argmax())
        raise LabelError("a box of a class marked unknown (known 0) on the same row", file=source,
                         line=line(row), column=column, value=0)
    default_unknown = np.zeros(n, bool)
    default_known = np.zeros(n, bool)
    default_unknown[image[boxless_default & unknown_row]] = True
    default_known[image[boxless_default & (code == 1)]] = True
    stated_known = np.zeros((n, c), bool)
    stated_unknown = np.zeros((n, c), bool)
    named = ~boxless_default
    stated_known[image[named & ~unknown_row], cls[named & ~unknown_row]] = True
    stated_unknown[image[named & unknown_row], cls[named & unknown_row]] = True
    clash = default_unknown & default_known
    if clash.any():
        i = int(clash.argmax())
        row = int(np.flatnonzero(boxless_default & unknown_row & (image == i))[0])
        raise LabelError("image marked both known (1) and unknown (0) on rows without a class", file=source,
                         line=line(row), column=column, value=0)
    both = stated_known & stated_unknown
    if both.any():
        i, k = (int(v) for v in np.argwhere(both)[0])
        rows = np.flatnonzero(named & (image == i) & (cls == k))
        bad = int(rows[code[rows] == 0][0])
        other = int(rows[code[rows] != 0][0])
        what = "has a box" if has_box[other] else "is marked known"
        raise LabelError(f"class marked unknown (known 0) in an image where it {what} (line {line(other)})",
                         file=source, line=line(bad), column=column, value=0)
    return np.where(stated_unknown, False, np.where(stated_known, True, ~default_unknown[:, None]))


Locate = Callable[[int], dict[str, Any]]


def image_sizes(paths: Sequence[Path], locate: Locate) -> np.ndarray:
    """(n, 2) width, height from each image file's header; a missing or unreadable image i is a LabelError at
    `locate(i)` (file, line, column, value keywords)."""
    from multitask.data.images import image_problem, open_image

    def size(path: Path) -> tuple[float, float] | str:
        problem = image_problem(path)
        if problem is not None:
            return problem
        with open_image(path) as image:
            return float(image.size[0]), float(image.size[1])

    with ThreadPoolExecutor(max(1, min(8, len(paths)))) as pool:
        found = list(pool.map(size, paths))
    for i, item in enumerate(found):
        if isinstance(item, str):
            raise LabelError(f"{item}: {paths[i]} (pass check_files=False to read boxes without their images)",
                             **locate(i))
    return np.array(found, dtype=np.float64).reshape(-1, 2)


def splits_of(path: str | Path, images: Sequence[str], locate: Locate) -> np.ndarray:
    """The split of each image from a label table's ``image`` and ``split`` columns; an image it lacks is a
    LabelError at `locate(i)`."""
    def plan(names: list[str], _: object) -> dict[str, Role]:
        for name in ("image", "split"):
            if name not in names:
                raise LabelError(f"splits table lacks column {name!r}; columns are {names}", file=path, line=1)
        return {n: "text" if n == "image" else "category" if n == "split" else "skip" for n in names}

    table = read_table(path, plan)
    codes = split_codes(table.column("split"))
    if (codes < 0).any():
        row = int((codes < 0).argmax())
        raise LabelError("split must be train, val or test", file=path, line=table.line(row), column="split",
                         value=table.cell("split", row))
    lookup = pd.Series(codes, index=_text(table, "image")).groupby(level=0).first()
    found = lookup.reindex(list(images))
    missing = found.isna().to_numpy()
    if missing.any():
        i = int(missing.argmax())
        raise LabelError(f"image not in the splits table {path}", **locate(i))
    return np.array(SPLITS, dtype="<U5")[found.to_numpy(dtype=np.int64)]


def read_box_file(
    path: str | Path,
    *,
    image_root: str | Path | None = None,
    known: str | Path | None = None,
    classes: Sequence[str] | None = None,
    splits: str | Path | None = None,
    check_files: bool = True,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
) -> BoxTable:
    """Read and validate a box table (format in the module docstring; options as
    :func:`~multitask.detection.boxes.read_box_table`). Images keep the order of their first row."""
    raw = read_table(path, _plan(path, REQUIRED))
    source = raw.source
    n_rows = raw.n_rows
    if n_rows == 0:
        raise LabelError("the box table has no rows", file=source)
    image_text = _text(raw, "image")
    empty = image_text == ""
    if empty.any():
        row = int(empty.argmax())
        raise LabelError("empty image path", file=source, line=raw.line(row), column="image")
    class_text = _text(raw, "class")
    coords, blank = zip(*(_numbers(raw, name) for name in COORDINATES), strict=True)
    xyxy, blank = np.stack(coords, axis=1), np.stack(blank, axis=1)
    has_box = ~blank.any(axis=1)
    partial = blank.any(axis=1) & ~blank.all(axis=1)
    if partial.any():
        row = int(partial.argmax())
        raise LabelError("a box needs all of x1, y1, x2, y2 (or none of them, on a row without a box)",
                         file=source, line=raw.line(row), column=COORDINATES[int(blank[row].argmax())])
    no_class = has_box & (class_text == "")
    if no_class.any():
        row = int(no_class.argmax())
        raise LabelError("a box needs a class", file=source, line=raw.line(row), column="class")

    image, image_names = pd.factorize(image_text, sort=False)
    images = tuple(str(v) for v in image_names)
    n = len(images)
    first = _first_rows(image, n)

    def locate(i: int) -> dict[str, Any]:
        return {"file": source, "line": raw.line(int(first[i])), "column": "image", "value": images[i]}

    extra = None
    if known is not None:
        extra = read_table(known, _known_plan(known))
    class_code, class_names = pd.factorize(class_text)  # the few distinct names, then codes by index
    seen = {str(v) for v in class_names if v != ""}
    if extra is not None:
        seen |= {str(v) for v in pd.unique(_text(extra, "class")) if v != ""}
    if classes is not None:
        class_list = tuple(str(c) for c in classes)
        bad = (class_text != "") & ~np.isin(class_code, [k for k, v in enumerate(class_names) if v in class_list])
        if bad.any():
            row = int(bad.argmax())
            raise LabelError(f"class not in the class list {list(class_list)}", file=source, line=raw.line(row),
                             column="class", value=class_text[row])
    else:
        class_list = tuple(sorted(seen))
    index = {name: k for k, name in enumerate(class_list)}
    cls = np.array([index.get(str(v), -1) for v in class_names], dtype=np.int64)[class_code] if len(class_code) \
        else np.zeros(0, np.int64)

    known_code = flag_codes(raw, "known", "1 (known: boxed or verified absent) or 0 (unknown)")
    matrix = _known(n, len(class_list), image, cls, known_code, has_box, raw.line, source)
    if extra is not None:
        boxed = np.zeros((n, len(class_list)), bool)
        boxed[image[has_box], cls[has_box]] = True
        matrix = _apply_known_file(matrix, boxed, extra, images, index, class_list)
    ignore = flag_codes(raw, "ignore", "1 (neither a target nor a false positive) or 0") == 1

    if "split" in raw.names:
        split_code = split_codes(raw.column("split"))
        if (split_code < 0).any():
            row = int((split_code < 0).argmax())
            raise LabelError("split must be train, val or test", file=source, line=raw.line(row), column="split",
                             value=raw.cell("split", row))
        per_image = _per_image(split_code.astype(np.int64), np.ones(n_rows, bool), image, n, raw, "split")
        split = np.array(SPLITS, dtype="<U5")[per_image]
    elif splits is not None:
        split = splits_of(splits, images, locate)
    else:
        split = seeded_split(n, val_fraction, test_fraction, split_seed)

    root = Path(image_root) if image_root is not None else Path(source).parent
    sizes = None
    if "width" in raw.names and "height" in raw.names:
        sizes = np.zeros((n, 2))
        for k, name in enumerate(("width", "height")):
            values, blank_size = _numbers(raw, name)
            bad = ~blank_size & ~(np.isfinite(values) & (values > 0))
            if bad.any():
                row = int(bad.argmax())
                raise LabelError("image size must be a positive number", file=source, line=raw.line(row),
                                 column=name, value=raw.cell(name, row))
            sizes[:, k] = np.nan_to_num(_per_image(values, ~blank_size, image, n, raw, name), nan=0.0)
    if check_files:
        paths = [Path(p) if Path(p).is_absolute() else root / p for p in images]
        from_files = image_sizes(paths, locate)
        sizes = from_files if sizes is None else np.where(sizes > 0, sizes, from_files)

    rows = np.flatnonzero(has_box)

    def fail(m: int, column: str, value: object, reason: str) -> LabelError:
        row = int(rows[m])
        return LabelError(reason, file=source, line=raw.line(row), column=column,
                          value=raw.cell(column, row) if column in raw.table.column_names else value)

    return BoxTable.from_flat(class_list, images, image=image[rows], label=cls[rows], xyxy=xyxy[rows],
                              ignore=ignore[rows], known=matrix, split=split, sizes=sizes, image_root=root,
                              source=source, fail=fail)


def _known_plan(path: str | Path) -> Any:
    def plan(names: list[str], _: object) -> dict[str, Role]:
        for name in ("image", "class", "known"):
            if name not in names:
                raise LabelError(f"known-classes table lacks column {name!r} (it needs image, class, known); "
                                 f"columns are {names}", file=path, line=1)
        return {n: "text" if n in ("image", "class", "known") else "skip" for n in names}
    return plan


def _apply_known_file(matrix: np.ndarray, boxed: np.ndarray, extra: RawTable, images: Sequence[str],
                      index: dict[str, int], class_list: Sequence[str]) -> np.ndarray:
    """Overlay a known-classes table (image, class, known: 1 / 0; an empty class: every class of the image, except
    that its boxed classes stay known); a boxed class marked 0 is a LabelError."""
    where = {name: i for i, name in enumerate(images)}
    ids, names = _text(extra, "image"), _text(extra, "class")
    code = flag_codes(extra, "known", "1 (known: boxed or verified absent) or 0 (unknown)")
    image = np.array([where.get(v, -1) for v in ids], dtype=np.int64)
    if (image < 0).any():
        row = int((image < 0).argmax())
        raise LabelError("image not in the box table", file=extra.source, line=extra.line(row), column="image",
                         value=ids[row])
    cls = np.array([index.get(v, -1) if v else -1 for v in names], dtype=np.int64)
    bad = (names != "") & (cls < 0)
    if bad.any():
        row = int(bad.argmax())
        raise LabelError(f"class not in the box table's classes {list(class_list)}", file=extra.source,
                         line=extra.line(row), column="class", value=names[row])
    if (code < 0).any():
        row = int((code < 0).argmax())
        raise LabelError("known must be 1 (boxed or verified absent) or 0 (unknown)", file=extra.source,
                         line=extra.line(row), column="known")
    whole = cls < 0
    clash = ~whole & (code == 0) & boxed[image, np.maximum(cls, 0)]
    if clash.any():
        row = int(clash.argmax())
        raise LabelError("class marked unknown (known 0) in an image where the box table has a box of it",
                         file=extra.source, line=extra.line(row), column="known", value=names[row])
    out = matrix.copy()
    out[image[whole & (code == 0)]] = boxed[image[whole & (code == 0)]]
    out[image[whole & (code == 1)]] = True
    out[image[~whole], cls[~whole]] = code[~whole] == 1
    return out


def box_frame(table: BoxTable) -> pd.DataFrame:
    """The table as box-file rows (see the module docstring), column-wise: per image, an image row when it needs
    one (no box and nothing stated, or most classes unknown: then ``known`` 0, and rows of its known boxless
    classes with ``known`` 1), its boxes, then its unknown classes (``known`` 0); last, a row for each class
    that has none yet (in an image where it is known), so that every class is read back."""
    n, c = len(table), table.n_classes
    flat = table.flat()
    boxed = np.zeros((n, c), bool)
    boxed[flat["image"], flat["label"]] = True
    mostly_unknown = (~table.known).sum(axis=1) * 2 > c
    image_row = np.flatnonzero(mostly_unknown | (~boxed.any(axis=1) & table.known.all(axis=1)))
    state = np.where(mostly_unknown[:, None], table.known & ~boxed, ~table.known)
    state_image, state_class = np.nonzero(state)
    named = boxed.any(axis=0) | state.any(axis=0)
    extra_class = np.flatnonzero(~named) if n else np.zeros(0, np.int64)
    extra_image = np.array([int(np.flatnonzero(table.known[:, k])[0]) if table.known[:, k].any() else 0
                            for k in extra_class], dtype=np.int64)
    parts = [  # (image, kind, class or -1, box row or -1, known text)
        (image_row, 0, np.full(len(image_row), -1), np.full(len(image_row), -1),
         np.where(mostly_unknown[image_row], "0", "")),
        (flat["image"], 1, flat["label"], np.arange(len(flat["image"])), np.full(len(flat["image"]), "")),
        (state_image, 2, state_class, np.full(len(state_image), -1),
         np.where(mostly_unknown[state_image], "1", "0")),
        (extra_image, 3, extra_class, np.full(len(extra_class), -1),
         np.where(table.known[extra_image, extra_class], "1", "0") if len(extra_class) else np.zeros(0, str)),
    ]
    image = np.concatenate([p[0] for p in parts]).astype(np.int64)
    kind = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    cls = np.concatenate([p[2] for p in parts]).astype(np.int64)
    box = np.concatenate([p[3] for p in parts]).astype(np.int64)
    known = np.concatenate([p[4] for p in parts]).astype(object)
    order = np.lexsort((np.arange(len(image)), kind, np.where(kind == 3, n, image)))
    image, cls, box, known = image[order], cls[order], box[order], known[order]
    has_box = box >= 0
    xyxy = np.full((len(image), 4), np.nan, np.float32)
    xyxy[has_box] = flat["xyxy"][box[has_box]]
    names = np.array([*table.classes, ""], dtype=object)
    frame = pd.DataFrame({"image": np.array(table.images, dtype=object)[image], "class": names[cls]})
    for k, column in enumerate(COORDINATES):
        frame[column] = xyxy[:, k]
    if any(ign.any() for ign in table.ignore):
        frame["ignore"] = np.where(has_box, np.where(flat["ignore"][np.maximum(box, 0)], "1", "0"), "")
    if not table.known.all():
        frame["known"] = known
    frame["split"] = table.split[image].astype(object)
    if table.sizes is not None:
        for k, column in enumerate(("width", "height")):
            frame[column] = np.where(table.sizes[image, k] > 0, table.sizes[image, k], np.nan)
    return frame


def write_box_file(table: BoxTable, path: str | Path) -> None:
    """Write a box table as CSV / TSV / Parquet (by extension), atomically; :func:`read_box_file` reads back the
    same table (image order, boxes, classes that have a box or a row, known, split, sizes)."""
    from multitask.files import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (*TEXT_SUFFIXES, *PARQUET_SUFFIXES):
        raise LabelError(f"unknown box table extension; use one of {', '.join((*TEXT_SUFFIXES, *PARQUET_SUFFIXES))}"
                         " or .json", file=path, value=path.suffix)
    frame = box_frame(table)
    with atomic_path(path) as tmp:
        if suffix in TEXT_SUFFIXES:
            _write_text(frame, tmp, "\t" if suffix == ".tsv" else ",")
        else:
            frame.to_parquet(tmp, index=False)


def _write_text(frame: pd.DataFrame, path: Path, delimiter: str) -> None:
    """CSV / TSV through pyarrow, column-wise: numbers in their shortest form (float32 coordinates read back
    exactly), missing cells empty, fields quoted only when some field needs it."""
    import pyarrow.csv as pa_csv

    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    columns = {}
    for name in arrow.column_names:
        column = arrow.column(name)
        if pa.types.is_floating(column.type):
            column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
        columns[name] = column.cast(pa.string()).fill_null("")
    strings = pa.table(columns)
    special = '[' + ('\t' if delimiter == "\t" else ',') + '"\n\r]'
    needs = any(pc.any(pc.match_substring_regex(strings.column(name), special)).as_py() for name in columns)
    with path.open("wb") as handle:  # the header unquoted (pyarrow quotes it), then the rows
        handle.write((delimiter.join(arrow.column_names) + "\n").encode())
        pa_csv.write_csv(strings, handle, write_options=pa_csv.WriteOptions(
            include_header=False, delimiter=delimiter, quoting_style="needed" if needs else "none"))
