"""Import Open Images image-level labels (``*-annotations-human-imagelabels*.csv``) as a label table, and its
boxes (``*-annotations-bbox.csv``) as a box table (:func:`import_openimages_boxes`).

The labels CSV has a header and the columns ``ImageID,Source,LabelName,Confidence`` (``Source`` is optional
here); it is read by the project's one table reader (:func:`multitask.tables.read_table`, streamed and
column-wise, so the 9-million-row Open Images files are fine) and checked column-wise. ``LabelName`` is a
machine id (MID) such as ``/m/01g317``. Open Images only *verified* some classes per image, so:

- ``Confidence`` 1 → ``"1"`` (verified present), 0 → ``"0"`` (verified absent);
- a class with no row for an image → ``"?"`` (never checked);
- any other confidence (e.g. the fractional scores of machine-generated labels) raises
  :class:`~multitask.errors.LabelError` — keep to human-verified labels.

The same image/class listed several times with the same value is fine; listed both 1 and 0 raises
:class:`~multitask.errors.LabelError` naming both lines. The input column holds ``ImageID + ".jpg"``, the file
name of the image in the Open Images downloads (relative to the folder holding them).

Task columns are named by display name when ``class_descriptions_csv`` is given (a ``LabelName,DisplayName``
file, with a header or headerless like ``oidv6-class-descriptions.csv``), else by MID. Two MIDs in the
descriptions file with the same display name get columns ``"Name (MID)"`` to stay distinct.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "labels.csv").write_text(
...     "ImageID,Source,LabelName,Confidence\\n"
...     "000a1,verification,/m/01g317,1\\n"
...     "000b2,verification,/m/01g317,0\\n"
...     "000b2,verification,/m/0k4j,1\\n")
>>> _ = (folder / "classes.csv").write_text("/m/01g317,Person\\n/m/0k4j,Car\\n")
>>> import_openimages(folder / "labels.csv", folder / "classes.csv").values.tolist()
[['000a1.jpg', '?', '1'], ['000b2.jpg', '1', '0']]
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from multitask.detection.boxes import BoxTable
from multitask.errors import LabelError
from multitask.tables.reader import RawTable, Role, read_table
from multitask.tables.splits import seeded_split

IMAGE_SUFFIX = ".jpg"
_REQUIRED = ("ImageID", "LabelName", "Confidence")
_CONFIDENCE = {"1": "1", "1.0": "1", "0": "0", "0.0": "0"}


def read_class_descriptions(path: str | Path) -> dict[str, str]:
    """Read a ``LabelName,DisplayName`` file (header optional) into ``{MID: display name}``.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "classes.csv"
    >>> _ = path.write_text("LabelName,DisplayName\\n/m/0k4j,Car\\n")
    >>> read_class_descriptions(path)
    {'/m/0k4j': 'Car'}
    """
    path = Path(path)
    names: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != 2:
                raise LabelError(
                    f"expected 2 fields (LabelName,DisplayName), got {len(row)}", file=path, line=line
                )
            mid, display = row[0].strip(), row[1].strip()
            if line == 1 and mid.lower() == "labelname" and display.lower() == "displayname":
                continue
            if not mid or not display:
                raise LabelError("empty LabelName or DisplayName", file=path, line=line)
            if mid in names and names[mid] != display:
                raise LabelError(
                    f"LabelName already described as {names[mid]!r}", file=path, line=line, value=display
                )
            names[mid] = display
    return names


def _column_names(mids: list[str], descriptions: dict[str, str] | None) -> dict[str, str]:
    """``{MID: column name}``: the display name, or ``"Name (MID)"`` when several MIDs share it."""
    if descriptions is None:
        return {mid: mid for mid in mids}
    counts: dict[str, int] = {}
    for mid in mids:
        counts[descriptions[mid]] = counts.get(descriptions[mid], 0) + 1
    return {
        mid: descriptions[mid] if counts[descriptions[mid]] == 1 else f"{descriptions[mid]} ({mid})"
        for mid in mids
    }


def _choose(mids_seen: list[str], descriptions: dict[str, str] | None, wanted: list[str] | None, path: Path,
            descriptions_path: str | Path | None) -> tuple[list[str], dict[str, str]]:
    """(chosen MIDs, {MID: column name}): `wanted` (names or MIDs) or every MID seen, sorted by name."""
    # Column names depend on the descriptions file only, not on which classes this labels file happens to use.
    names = _column_names(sorted(descriptions) if descriptions is not None else mids_seen, descriptions)
    if wanted is None:
        return sorted(mids_seen, key=lambda mid: (names[mid], mid)), names
    by_name = {name: mid for mid, name in names.items()}
    chosen = []
    for name in wanted:
        if name in by_name:
            chosen.append(by_name[name])
        elif name in names or descriptions is None:
            chosen.append(name)
            names.setdefault(name, name)
        else:
            raise LabelError(f"class not in {descriptions_path}", file=path, value=name)
    if len(set(chosen)) != len(chosen):
        raise LabelError("classes name the same class twice (by MID and by name)", file=path)
    return chosen, names


def _inputs(file: str | Path, classes: Iterable[str] | None, class_descriptions_csv: str | Path | None
            ) -> tuple[Path, list[str] | None, dict[str, str] | None]:
    """(the file's path, the checked ``classes``, the class descriptions or None): what both importers start from."""
    from multitask.importers import check_classes

    path = Path(file)
    wanted = check_classes(classes, file=path)
    return path, wanted, read_class_descriptions(class_descriptions_csv) if class_descriptions_csv else None


def _require_columns(names: list[str], required: tuple[str, ...], what: str, path: Path) -> None:
    """A LabelError (line 1) when the header `names` lacks a `required` column.

    >>> _require_columns(["ImageID", "Source"], _REQUIRED, "labels", Path("l.csv"))
    Traceback (most recent call last):
    multitask.errors.LabelError: l.csv, line 1: labels CSV lacks column(s) ['LabelName', 'Confidence']; header ...
    """
    missing = [column for column in required if column not in names]
    if missing:
        raise LabelError(f"{what} CSV lacks column(s) {missing}; header is {names}", file=path, line=1)


def _check_not_empty(raw: RawTable, image_ids: np.ndarray, mids: np.ndarray, path: Path) -> None:
    """A LabelError at the first empty ImageID, else at the first empty LabelName."""
    for column, values in (("ImageID", image_ids), ("LabelName", mids)):
        empty = values == ""
        if empty.any():
            raise LabelError(f"empty {column}", file=path, line=raw.line(int(empty.argmax())), column=column)


def _check_described(raw: RawTable, mids: np.ndarray, descriptions: dict[str, str] | None,
                     class_descriptions_csv: str | Path | None, path: Path) -> None:
    """With descriptions, a LabelError at the first LabelName they do not list."""
    if descriptions is None:
        return
    unknown = ~pd.Series(mids).isin(list(descriptions)).to_numpy()
    if unknown.any():
        row = int(unknown.argmax())
        raise LabelError(f"LabelName not in {class_descriptions_csv}", file=path, line=raw.line(row),
                         column="LabelName", value=mids[row])


def import_openimages(
    labels_csv: str | Path,
    class_descriptions_csv: str | Path | None = None,
    classes: Iterable[str] | None = None,
    image_column: str = "image",
) -> pd.DataFrame:
    """Read Open Images image-level labels into a label table (see the module docstring).

    ``classes`` selects and orders the task columns; each entry may be a column name (display name, or MID
    without descriptions) or a MID. A listed class that no row mentions gives a column of ``"?"``; rows of
    unlisted classes are skipped (their images still get a row). By default: every class in the file, with
    columns sorted by name. Rows are all images of the file, sorted.
    """
    path, wanted, descriptions = _inputs(labels_csv, classes, class_descriptions_csv)

    def plan(names: list[str], _: object) -> dict[str, Role]:
        _require_columns(names, _REQUIRED, "labels", path)
        return {name: "text" if name in _REQUIRED else "skip" for name in names}

    raw = read_table(path, plan)  # the one reader: streamed, vectorised, lines found on demand
    image_ids, mids, raw_confidence = (_stripped(raw.column(name)) for name in _REQUIRED)
    _check_not_empty(raw, image_ids, mids, path)
    value = pd.Series(raw_confidence).map(_CONFIDENCE).to_numpy(dtype=object)
    bad = pd.isna(value)
    if bad.any():
        row = int(bad.argmax())
        raise LabelError("Confidence must be 1 (present) or 0 (absent)", file=path, line=raw.line(row),
                         column="Confidence", value=raw_confidence[row])
    _check_described(raw, mids, descriptions, class_descriptions_csv, path)
    records = pd.DataFrame({"image": image_ids, "mid": mids, "value": value})
    distinct = records.drop_duplicates(["image", "mid", "value"])
    clash = distinct.duplicated(["image", "mid"])
    if clash.any():
        row = int(distinct.index[clash.to_numpy()][0])
        image_id, mid = records.at[row, "image"], records.at[row, "mid"]
        first = int(distinct.index[((distinct["image"] == image_id) & (distinct["mid"] == mid)).to_numpy()][0])
        raise LabelError(
            f"conflicting labels for image {image_id!r}, class {mid!r}: Confidence {records.at[first, 'value']} at "
            f"line {raw.line(first)} and {records.at[row, 'value']} at line {raw.line(row)}",
            file=path, line=raw.line(row), column="Confidence", value=raw_confidence[row])
    first_values = distinct.drop_duplicates(["image", "mid"])

    chosen, names = _choose(sorted(set(first_values["mid"])), descriptions, wanted, path, class_descriptions_csv)
    if image_column in [names[mid] for mid in chosen]:
        raise LabelError("a class has the same name as the input column", file=path, value=image_column)
    wide = first_values.pivot(index="image", columns="mid", values="value")
    wide = wide.reindex(index=pd.unique(records["image"]), columns=chosen).astype(object).fillna("?")
    wide.index = wide.index.astype(str) + IMAGE_SUFFIX
    wide = wide.sort_index()
    frame = pd.DataFrame({image_column: wide.index.to_numpy(dtype=object)})
    for mid in chosen:
        frame[names[mid]] = wide[mid].to_numpy(dtype=object)
    return frame


def _stripped(column: pa.ChunkedArray) -> np.ndarray:
    """A text column with surrounding spaces removed, as a numpy array of str."""
    return pc.utf8_trim_whitespace(column.cast(pa.string())).to_numpy(zero_copy_only=False).astype(object)


_BOX_COLUMNS = ("ImageID", "LabelName", "XMin", "YMin", "XMax", "YMax")


def import_openimages_boxes(
    boxes_csv: str | Path,
    labels_csv: str | Path | None = None,
    class_descriptions_csv: str | Path | None = None,
    classes: Iterable[str] | None = None,
    *,
    image_root: str | Path | None = None,
    splits: str | Path | None = None,
    split_seed: int = 0,
) -> BoxTable:
    """Read Open Images boxes (``*-annotations-bbox.csv``: ``ImageID, LabelName, XMin, XMax, YMin, YMax``
    normalised to [0, 1], optional ``IsGroupOf``) into a box table in pixels.

    Open Images is not exhaustively annotated, so for class c in image i the annotation is known only when
    the image has boxes of c, or when the image-level labels (``labels_csv``, read by :func:`import_openimages`)
    verify c absent (Confidence 0); a class verified present without a box, or never verified, is unknown.
    Group-of boxes (``IsGroupOf`` 1) are ``ignore`` (COCO's crowd regions, the nearest to Open Images'
    group-of rule). Classes: ``classes`` (names or MIDs, as :func:`import_openimages`), else every class with
    a box; names by ``class_descriptions_csv`` when given. Images (``ImageID + ".jpg"``, sorted) are those with
    a box or a verified label of a chosen class; their files must be under ``image_root`` (default: the
    boxes file's folder) to turn normalised coordinates into pixels. Split: ``splits`` (a label table), else
    seeded.
    """
    from multitask.detection.box_files import image_sizes, splits_of

    path, wanted, descriptions = _inputs(boxes_csv, classes, class_descriptions_csv)

    def plan(names: list[str], _: object) -> dict[str, Role]:
        _require_columns(names, _BOX_COLUMNS, "boxes", path)
        roles: dict[str, Role] = {name: "skip" for name in names}
        roles.update({"ImageID": "text", "LabelName": "text"})
        roles.update({name: "numbers" for name in _BOX_COLUMNS[2:]})
        if "IsGroupOf" in names:
            roles["IsGroupOf"] = "labels"
        return roles

    raw = read_table(path, plan, minus_one_unknown=True)
    image_ids, mids = _stripped(raw.column("ImageID")), _stripped(raw.column("LabelName"))
    _check_not_empty(raw, image_ids, mids, path)
    coords = {}
    for name in _BOX_COLUMNS[2:]:
        values = raw.column(name)
        if not pa.types.is_floating(values.type):
            text = pc.utf8_trim_whitespace(values.cast(pa.string()))
            ok = pc.match_substring_regex(text, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$").fill_null(False)
            bad = ~ok.to_numpy(zero_copy_only=False)
            if bad.any():
                row = int(bad.argmax())
                raise LabelError("must be a number in [0, 1]", file=path, line=raw.line(row), column=name,
                                 value=raw.cell(name, row))
            values = pc.cast(text, pa.float64())
        if values.null_count:
            row = int(values.is_null().to_numpy(zero_copy_only=False).argmax())
            raise LabelError("missing coordinate", file=path, line=raw.line(row), column=name)
        coords[name] = values.to_numpy().astype(np.float64)
    group = raw.label_column("IsGroupOf") == 1 if "IsGroupOf" in raw.labels else np.zeros(raw.n_rows, bool)
    _check_described(raw, mids, descriptions, class_descriptions_csv, path)
    chosen, names = _choose(sorted(set(mids)), descriptions, wanted, path, class_descriptions_csv)
    class_names = [names[mid] for mid in chosen]
    column_of = {mid: k for k, mid in enumerate(chosen)}
    label = pd.Series(mids).map(column_of).fillna(-1).to_numpy(dtype=np.int64)
    keep = np.flatnonzero(label >= 0)

    verified = None
    if labels_csv is not None:
        verified = import_openimages(labels_csv, class_descriptions_csv, classes=chosen)
        verified.columns = ["image", *class_names]
    box_images = pd.unique(image_ids[keep].astype(str) + IMAGE_SUFFIX) if len(keep) else np.zeros(0, object)
    absent = None
    if verified is not None:
        absent = verified.set_index("image")[class_names] == "0"
        absent = absent[absent.any(axis=1)]
    images = sorted(set(box_images) | (set(absent.index) if absent is not None else set()))
    index = {name: i for i, name in enumerate(images)}
    n, c = len(images), len(chosen)
    image = pd.Series(image_ids[keep].astype(str) + IMAGE_SUFFIX).map(index).to_numpy(dtype=np.int64)
    known = np.zeros((n, c), bool)
    if absent is not None and len(absent):
        rows = absent.index.map(index).to_numpy(dtype=np.int64)
        known[rows] = absent.to_numpy(dtype=bool)
    known[image, label[keep]] = True

    root = Path(image_root) if image_root is not None else path.parent
    boxed, first = np.unique(image, return_index=True)
    first_row = {images[int(i)]: int(keep[f]) for i, f in zip(boxed, first, strict=True)}

    def locate(i: int) -> dict[str, object]:
        name = images[i]
        if name in first_row:
            return {"file": path, "line": raw.line(first_row[name]), "column": "ImageID", "value": name[:-4]}
        return {"file": labels_csv, "column": "ImageID", "value": name[:-4]}

    sizes = image_sizes([root / name for name in images], locate)
    scale = sizes[image]
    xyxy = np.stack([coords["XMin"][keep] * scale[:, 0], coords["YMin"][keep] * scale[:, 1],
                     coords["XMax"][keep] * scale[:, 0], coords["YMax"][keep] * scale[:, 1]], axis=1)
    split = splits_of(splits, images, locate) if splits is not None else \
        seeded_split(n, 0.15, 0.15, split_seed)
    file_column = {"x1": "XMin", "y1": "YMin", "x2": "XMax", "y2": "YMax"}

    def fail(m: int, column: str, value: object, reason: str) -> LabelError:
        row = int(keep[m])
        name = file_column[column]
        return LabelError(reason, file=path, line=raw.line(row), column=name, value=raw.cell(name, row))

    return BoxTable.from_flat(class_names, images, image=image, label=label[keep], xyxy=xyxy, ignore=group[keep],
                              known=known, split=split, sizes=sizes, image_root=root, source=path, fail=fail)
