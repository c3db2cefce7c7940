"""Read multi-label ARFF files (Mulan/MEKA style, dense or sparse) into a DataFrame of features and labels.

Parsing is done by ``liac-arff`` (``import arff``). Sparse rows (``{index value, ...}``) follow Weka's rule:
an omitted value is 0 for numeric attributes and the first declared value for nominal ones (``0`` for Mulan's
``{0,1}`` labels).

Which attributes are labels, in this order of precedence:

1. ``label_names`` when given;
2. else the Mulan XML file (``xml_path``; by default ``<name>.xml`` beside the ARFF, with a ``-train`` or
   ``-test`` suffix removed: ``yeast-train.arff`` → ``yeast.xml``), every ``<label name=...>`` in document
   order;
3. else a MEKA relation name ``'... -C n'``: the first ``n`` attributes (``n > 0``) or the last ``-n``;
4. else the trailing run of attributes declared nominal ``{0,1}``.

Labels are selected by name and returned in that order (the XML's order, which for yeast differs from the
ARFF's); the frame has the features (in ARFF order) followed by the labels (in the returned order).

Features are floats (``?`` → NaN). A nominal feature declared ``{0,1}`` becomes one 0/1 column; any other
nominal feature is one-hot encoded into columns ``"name=value"`` (NaN in all of them when missing). A ``string``
attribute is never a feature: one string attribute (an example ID) gives the row ids (:func:`read_arff_rows`;
``read_arff`` leaves it out of the frame); more than one raises :class:`~multitask.errors.LabelError`. Other
non-numeric attributes (``date``, relational) raise it too.

Attribute names and nominal values are unescaped as the ARFF format writes them (``'Swainson\\'s Thrush'`` is
the label ``Swainson's Thrush``, as in the Mulan XML).

Labels are 0/1: an ``int64`` column, or ``float64`` with NaN where the ARFF has ``?`` for that label (NaN
exists only here, at the file edge; convert it once to ``targets``/``known``).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "toy.arff"
>>> _ = path.write_text(
...     "@relation toy\\n@attribute x numeric\\n@attribute a {0,1}\\n@attribute b {0,1}\\n"
...     "@data\\n0.5,1,0\\n{0 2,2 1}\\n")
>>> frame, labels = read_arff(path)
>>> labels
['a', 'b']
>>> frame.values.tolist()
[[0.5, 1.0, 0.0], [2.0, 0.0, 1.0]]
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import arff
import numpy as np
import pandas as pd

from multitask.errors import LabelError, MissingFileError
from multitask.tables.reader import read_xml_root

_SPLIT_SUFFIX = re.compile(r"[-_](train|test)$", re.IGNORECASE)
_MEKA_LABELS = re.compile(r"-C\s+(-?\d+)")
_NUMERIC_TYPES = ("NUMERIC", "REAL", "INTEGER")
_BINARY = {"0", "1"}
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def default_xml_path(path: str | Path) -> Path:
    """The Mulan XML expected beside an ARFF file: ``yeast-train.arff`` → ``yeast.xml``.

    >>> default_xml_path("data/yeast/yeast-train.arff").as_posix()
    'data/yeast/yeast.xml'
    """
    path = Path(path)
    return path.with_name(_SPLIT_SUFFIX.sub("", path.stem) + ".xml")


def read_mulan_xml(path: str | Path) -> list[str]:
    """Label names of a Mulan XML file, in document order (nested, hierarchical labels included).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "toy.xml"
    >>> _ = path.write_text('<labels xmlns="http://mulan.sourceforge.net/labels">'
    ...                     '<label name="b"></label><label name="a"></label></labels>')
    >>> read_mulan_xml(path)
    ['b', 'a']
    """
    path = Path(path)
    root = read_xml_root(path)
    names: list[str] = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "label":
            continue
        name = element.get("name")
        if not name:
            raise LabelError("<label> without a name attribute", file=path)
        if name in names:
            raise LabelError("label listed twice", file=path, value=name)
        names.append(name)
    if not names:
        raise LabelError("no <label name=...> elements", file=path)
    return names


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _is_sparse(text: str) -> bool:
    """Whether the first data row is written sparse (``{...}``)."""
    in_data = False
    for line in text.splitlines():
        stripped = line.strip()
        if not in_data:
            in_data = stripped.upper().startswith("@DATA")
            continue
        if stripped and not stripped.startswith("%"):
            return stripped.startswith("{")
    return False


def _unescape(text: str) -> str:
    r"""An ARFF name or value as meant: liac-arff keeps the backslashes of quoted names.

    >>> _unescape("Swainson\\'s Thrush")
    "Swainson's Thrush"
    """
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), text) if "\\" in text else text


def _decode(path: Path) -> tuple[str, list[tuple[str, Any]], np.ndarray, list[int], dict[int, list[str]]]:
    """Parse with liac-arff: (relation, attributes, codes matrix, 1-based line of each data row, string values).

    ``codes`` is float: numeric values, nominal values as their index among the declared values, NaN for
    ``?``. String attributes are NaN in ``codes``; their values are in the last item, by attribute position.
    """
    text = _read_text(path)
    sparse = _is_sparse(text)
    decoder = arff.ArffDecoder()
    try:
        parsed = decoder.decode(
            text, encode_nominal=True, return_type=arff.LOD_GEN if sparse else arff.DENSE_GEN
        )
        attributes = parsed["attributes"]
        n_columns = len(attributes)
        numeric_or_nominal = [kind != "STRING" for _, kind in attributes]
        all_numeric = all(numeric_or_nominal)
        strings: dict[int, list[str]] = {j: [] for j, ok in enumerate(numeric_or_nominal) if not ok}
        rows: list[np.ndarray] = []
        lines: list[int] = []
        for record in parsed["data"]:
            if all_numeric and not sparse:  # fast path: numpy turns None into NaN
                rows.append(np.asarray(record, dtype=float))
                lines.append(decoder._current_line)
                continue
            row = np.zeros(n_columns)
            items = record.items() if sparse else enumerate(record)
            for j, values in strings.items():
                values.append("" if sparse and j not in record else (record[j] or ""))
            for j, value in items:
                if value is None:
                    row[j] = np.nan
                elif numeric_or_nominal[j]:
                    row[j] = value
                else:
                    row[j] = np.nan
            rows.append(row)
            lines.append(decoder._current_line)
    except arff.ArffException as error:
        line = getattr(decoder, "_current_line", None) or None
        error.line = line if line is not None else -1  # liac-arff leaves -1 for errors found in the data rows
        raise LabelError(f"ARFF parse error: {error}", file=path, line=line) from error
    except ValueError as error:  # e.g. a value liac-arff's conversors reject without their own exception
        line = getattr(decoder, "_current_line", None) or None
        raise LabelError(f"ARFF parse error: {error}", file=path, line=line) from error
    codes = np.vstack(rows) if rows else np.zeros((0, n_columns))
    attributes = [(_unescape(name), [_unescape(v) for v in kind] if isinstance(kind, list) else kind)
                  for name, kind in attributes]
    return parsed["relation"], attributes, codes, lines, strings


def _label_names_from_attributes(relation: str, attributes: list[tuple[str, Any]], path: Path) -> list[str]:
    names = [name for name, _ in attributes]
    meka = _MEKA_LABELS.search(relation or "")
    if meka:
        n = int(meka.group(1))
        if n == 0 or abs(n) >= len(names):
            raise LabelError("MEKA relation '-C n' does not fit the attributes", file=path, value=relation)
        return names[:n] if n > 0 else names[n:]
    labels: list[str] = []
    for name, kind in reversed(attributes):
        if not (isinstance(kind, list) and set(kind) == _BINARY):
            break
        labels.append(name)
    if not labels or len(labels) == len(names):
        raise LabelError(
            "cannot tell which attributes are labels: pass label_names or provide a Mulan XML "
            "(the file has no trailing {0,1} attributes after its features)",
            file=path,
        )
    return labels[::-1]


def _check_label_names(label_names: Iterable[str], path: Path) -> list[str]:
    if isinstance(label_names, str):
        raise LabelError(
            "label_names must be a list of names, not a single string", file=path, value=label_names
        )
    names = [str(n) for n in label_names]
    if not names:
        raise LabelError("label_names is empty", file=path)
    duplicated = [n for i, n in enumerate(names) if n in names[:i]]
    if duplicated:
        raise LabelError("label listed twice in label_names", file=path, value=duplicated[0])
    return names


def _label_column(name: str, kind: Any, values: np.ndarray, lines: list[int], path: Path) -> np.ndarray:
    """0/1 ints (or floats with NaN) from one label attribute's codes."""
    if isinstance(kind, list):
        if not set(kind) <= _BINARY:
            raise LabelError(
                "label attribute must be declared {0,1}",
                file=path,
                column=name,
                value="{" + ",".join(kind) + "}",
            )
        lookup = np.array([float(v) for v in kind])
        missing = np.isnan(values)
        out = np.full(values.shape, np.nan)
        out[~missing] = lookup[values[~missing].astype(int)]
    elif kind in _NUMERIC_TYPES:
        out = values.copy()
        bad = ~(np.isnan(out) | (out == 0) | (out == 1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise LabelError(
                "label value must be 0, 1 or ?", file=path, line=lines[i], column=name, value=out[i]
            )
    else:
        raise LabelError(
            f"label attribute must be nominal {{0,1}} or numeric, not {kind}", file=path, column=name
        )
    if np.isnan(out).any():
        return out
    return out.astype(np.int64)


def read_arff(
    path: str | Path,
    label_names: Iterable[str] | None = None,
    xml_path: str | Path | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Read a multi-label ARFF file: ``(frame of features then labels, label names)`` (see module docstring).

    An explicit ``xml_path`` that does not exist raises ``FileNotFoundError``; the default one is only used
    when present. A label name that is not an attribute raises :class:`~multitask.errors.LabelError`.
    """
    frame, labels, _, _ = read_arff_rows(path, label_names, xml_path)
    return frame, labels


def read_arff_rows(
    path: str | Path,
    label_names: Iterable[str] | None = None,
    xml_path: str | Path | None = None,
) -> tuple[pd.DataFrame, list[str], list[int], np.ndarray | None]:
    """As :func:`read_arff`, plus the file line of every data row and the row ids (the string attribute's values,
    or None when the file has none).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ids.arff"
    >>> _ = path.write_text("@relation t\\n@attribute id string\\n@attribute x numeric\\n@attribute 'a\\\\'s' {0,1}\\n"
    ...                     "@data\\n'r1',0.5,1\\n'r2',1,0\\n")
    >>> frame, labels, lines, ids = read_arff_rows(path)
    >>> list(frame.columns), labels, lines, ids.tolist()
    (['x', "a's"], ["a's"], [6, 7], ['r1', 'r2'])
    """
    path = Path(path)
    relation, attributes, codes, lines, strings = _decode(path)
    kinds = dict(attributes)
    string_names = [attributes[j][0] for j in strings]
    if len(string_names) > 1:
        raise LabelError(f"{len(string_names)} string attributes {string_names}: one string attribute (an example "
                         "ID) is used as the row ids, more are not supported; remove the others", file=path,
                         column=string_names[1])
    ids = np.array(next(iter(strings.values())), dtype=object) if strings else None

    if label_names is not None:
        labels = _check_label_names(label_names, path)
    else:
        xml = Path(xml_path) if xml_path is not None else default_xml_path(path)
        if xml_path is not None and not xml.is_file():
            raise MissingFileError(f"{xml}: Mulan XML file not found")
        labels = read_mulan_xml(xml) if xml.is_file() else _label_names_from_attributes(relation, attributes, path)
    missing = [name for name in labels if name not in kinds]
    if missing:
        raise LabelError(
            f"label attribute(s) {missing} not in the ARFF file",
            file=path,
            column=missing[0],
            value=missing[0],
        )

    position = {name: j for j, (name, _) in enumerate(attributes)}
    label_set = set(labels)
    columns: dict[str, np.ndarray] = {}
    for j, (name, kind) in enumerate(attributes):
        if name in label_set or j in strings:
            continue
        values = codes[:, j]
        if kind in _NUMERIC_TYPES:
            columns[name] = values.astype(float)
        elif isinstance(kind, list) and set(kind) == _BINARY:
            lookup = np.array([float(v) for v in kind])
            missing_value = np.isnan(values)
            out = np.full(values.shape, np.nan)
            out[~missing_value] = lookup[values[~missing_value].astype(int)]
            columns[name] = out
        elif isinstance(kind, list):
            missing_value = np.isnan(values)
            for index, value in enumerate(kind):
                column = f"{name}={value}"
                if column in kinds or column in columns:
                    raise LabelError(
                        "one-hot column name clashes with an attribute", file=path, column=column
                    )
                onehot = (values == index).astype(float)
                onehot[missing_value] = np.nan
                columns[column] = onehot
        else:
            raise LabelError(
                f"feature attribute has non-numeric type {kind}; only numeric and nominal features "
                "are supported",
                file=path,
                column=name,
            )
    for name in labels:
        if position[name] in strings:
            raise LabelError("a string attribute cannot be a label", file=path, column=name)
        columns[name] = _label_column(name, kinds[name], codes[:, position[name]], lines, path)
    return pd.DataFrame(columns), labels, lines, ids


def load_mulan(name: str, root: str | Path) -> dict[str, tuple[pd.DataFrame, list[str]]]:
    """Read ``root/name/name-train.arff`` and ``-test.arff`` (labels from ``root/name/name.xml`` if present).

    Returns ``{"train": (frame, labels), "test": (frame, labels)}``; both splits must have the same columns.

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "toy").mkdir()
    >>> for split in ("train", "test"):
    ...     _ = (root / "toy" / f"toy-{split}.arff").write_text(
    ...         "@relation toy\\n@attribute x numeric\\n@attribute a {0,1}\\n@data\\n1,0\\n")
    >>> sorted(load_mulan("toy", root))
    ['test', 'train']
    """
    folder = Path(root) / name
    result: dict[str, tuple[pd.DataFrame, list[str]]] = {}
    for split in ("train", "test"):
        path = folder / f"{name}-{split}.arff"
        if not path.is_file():
            raise MissingFileError(f"{path}: Mulan {split} file not found")
        result[split] = read_arff(path)
    train_columns = list(result["train"][0].columns)
    test_columns = list(result["test"][0].columns)
    if train_columns != test_columns:
        differing = next(
            (a for a, b in zip(train_columns, test_columns, strict=False) if a != b), "column count"
        )
        raise LabelError(
            "train and test files have different columns", file=folder / f"{name}-test.arff", column=differing
        )
    return result


def mulan_table(name: str, root: str | Path, val_fraction: float = 0.15, seed: int = 0) -> Any:
    """A Mulan set as one LabelTable: the standard train file (a seeded `val_fraction` of it held out for
    validation) and the standard test file as the test split.

    >>> table = mulan_table("emotions", "../shared/data/mulan")  # doctest: +SKIP
    >>> table.n_tasks, (table.split == "test").sum()  # doctest: +SKIP
    (6, 202)
    """
    from multitask.tables import label_table_from_arrays, seeded_split

    parts = load_mulan(name, root)
    train_frame, labels = parts["train"]
    test_frame, _ = parts["test"]
    frame = pd.concat([train_frame, test_frame], ignore_index=True)
    features = [c for c in frame.columns if c not in labels]
    split = np.concatenate([seeded_split(len(train_frame), val_fraction, 0.0, seed),
                            np.full(len(test_frame), "test", dtype="<U5")])
    return label_table_from_arrays(frame[features].to_numpy(dtype=np.float32), frame[labels].to_numpy(dtype=float),
                                   tasks=labels, split=split, feature_names=features,
                                   source=str(Path(root) / name))
