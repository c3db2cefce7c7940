"""Import Open Images image-level labels (``*-annotations-human-imagelabels*.csv``) as a label table.

The labels CSV has a header and the columns ``ImageID,Source,LabelName,Confidence`` (``Source`` is optional
here). ``LabelName`` is a machine id (MID) such as ``/m/01g317``. Open Images only *verified* some classes per
image, so:

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

import pandas as pd

from multitask.errors import LabelError

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
    from multitask.importers import build_label_table, check_classes

    path = Path(labels_csv)
    wanted = check_classes(classes, file=path)
    descriptions = read_class_descriptions(class_descriptions_csv) if class_descriptions_csv else None

    values: dict[str, dict[str, str]] = {}
    lines: dict[tuple[str, str], int] = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [column for column in _REQUIRED if column not in header]
        if missing:
            raise LabelError(f"labels CSV lacks column(s) {missing}; header is {header}", file=path, line=1)
        for record in reader:
            line = reader.line_num
            image_id = (record["ImageID"] or "").strip()
            mid = (record["LabelName"] or "").strip()
            raw = (record["Confidence"] or "").strip()
            if not image_id:
                raise LabelError("empty ImageID", file=path, line=line, column="ImageID")
            if not mid:
                raise LabelError("empty LabelName", file=path, line=line, column="LabelName")
            if raw not in _CONFIDENCE:
                raise LabelError(
                    "Confidence must be 1 (present) or 0 (absent)",
                    file=path,
                    line=line,
                    column="Confidence",
                    value=raw,
                )
            if descriptions is not None and mid not in descriptions:
                raise LabelError(
                    f"LabelName not in {class_descriptions_csv}",
                    file=path,
                    line=line,
                    column="LabelName",
                    value=mid,
                )
            value = _CONFIDENCE[raw]
            row = values.setdefault(image_id, {})
            previous = row.get(mid)
            if previous is not None and previous != value:
                raise LabelError(
                    f"conflicting labels for image {image_id!r}, class {mid!r}: "
                    f"Confidence {previous} at line {lines[image_id, mid]} and {value} at line {line}",
                    file=path,
                    line=line,
                    column="Confidence",
                    value=raw,
                )
            if previous is None:
                row[mid] = value
                lines[image_id, mid] = line

    mids_seen = sorted({mid for row in values.values() for mid in row})
    # Column names depend on the descriptions file only, not on which classes this labels file happens to use.
    names = _column_names(sorted(descriptions) if descriptions is not None else mids_seen, descriptions)
    if wanted is None:
        chosen = sorted(mids_seen, key=lambda mid: (names[mid], mid))
    else:
        by_name = {name: mid for mid, name in names.items()}
        chosen = []
        for name in wanted:
            if name in by_name:
                chosen.append(by_name[name])
            elif name in names or descriptions is None:
                chosen.append(name)
                names.setdefault(name, name)
            else:
                raise LabelError(f"class not in {class_descriptions_csv}", file=path, value=name)
        if len(set(chosen)) != len(chosen):
            raise LabelError("classes name the same class twice (by MID and by name)", file=path)

    labels = {
        image_id + IMAGE_SUFFIX: {names[mid]: row[mid] for mid in chosen if mid in row}
        for image_id, row in values.items()
    }
    tasks = [names[mid] for mid in chosen]
    return build_label_table(labels, tasks, image_column=image_column, default="?", file=path)
