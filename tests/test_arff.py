"""Tests for multitask.data.arff: dense/sparse ARFF reading, label selection, errors, real Mulan files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multitask.data.arff import default_xml_path, load_mulan, read_arff, read_mulan_xml
from multitask.errors import LabelError

SHARED = Path(__file__).parents[2] / "shared"
MULAN = SHARED / "data" / "mulan"
needs_mulan = pytest.mark.skipif(not MULAN.is_dir(), reason=f"shared Mulan data not found at {MULAN}")

HEADER = """% a tiny multi-label set
@relation 'toy'

@attribute f1 numeric
@attribute f2 real
@attribute f3 integer
@attribute L3 {0,1}
@attribute L1 {0,1}
@attribute L2 {0,1}

@data
"""
# (f1, f2, f3, L3, L1, L2); None = "?"
ROWS = [
    (0.5, 0.0, 3, 1, 0, 0),
    (0.0, 0.0, 0, 0, 0, 0),
    (-1.25, 2.0, 0, 0, 1, None),
    (0.0, 7.5, 1, 1, 1, 1),
]


def dense_text(rows: list[tuple]) -> str:
    return HEADER + "\n".join(",".join("?" if v is None else str(v) for v in row) for row in rows) + "\n"


def sparse_text(rows: list[tuple]) -> str:
    lines = []
    for row in rows:
        items = [f"{j} {'?' if v is None else v}" for j, v in enumerate(row) if v is None or v != 0]
        lines.append("{" + ",".join(items) + "}")
    return HEADER + "% comment inside the data\n" + "\n".join(lines) + "\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def reference_frame(rows: list[tuple], labels: list[str]) -> pd.DataFrame:
    """Brute-force expectation built directly from ROWS."""
    names = ["f1", "f2", "f3", "L3", "L1", "L2"]
    records = [dict(zip(names, row, strict=True)) for row in rows]
    data = {name: [float(r[name]) for r in records] for name in ("f1", "f2", "f3")}
    for name in labels:
        values = [math.nan if r[name] is None else r[name] for r in records]
        data[name] = values
    return pd.DataFrame(data)


def test_dense_and_sparse_give_identical_frames(tmp_path: Path) -> None:
    dense, dense_labels = read_arff(write(tmp_path / "dense.arff", dense_text(ROWS)))
    sparse, sparse_labels = read_arff(write(tmp_path / "sparse.arff", sparse_text(ROWS)))
    assert dense_labels == sparse_labels == ["L3", "L1", "L2"]  # fallback: trailing {0,1} attributes
    pd.testing.assert_frame_equal(dense, sparse)
    expected = reference_frame(ROWS, ["L3", "L1", "L2"])
    pd.testing.assert_frame_equal(dense, expected, check_dtype=False)
    assert list(dense.columns) == ["f1", "f2", "f3", "L3", "L1", "L2"]


def test_sparse_omitted_values_are_zero(tmp_path: Path) -> None:
    frame, _ = read_arff(write(tmp_path / "s.arff", HEADER + "{}\n{1 4}\n{4 1}\n"))
    assert frame.values.tolist() == [[0, 0, 0, 0, 0, 0], [0, 4, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0]]
    assert frame.dtypes["L1"] == np.int64


def test_unknown_label_is_nan_and_other_labels_are_int(tmp_path: Path) -> None:
    frame, labels = read_arff(write(tmp_path / "d.arff", dense_text(ROWS)))
    assert frame["L2"].dtype == np.float64
    assert np.isnan(frame["L2"].iloc[2])
    assert frame["L2"].drop(index=2).tolist() == [0, 0, 1]
    assert frame["L1"].dtype == np.int64 and frame["L3"].dtype == np.int64
    assert set(frame.columns[:3]) == {"f1", "f2", "f3"} and all(
        frame[c].dtype == np.float64 for c in frame.columns[:3]
    )


def test_label_names_select_by_name_in_given_order(tmp_path: Path) -> None:
    path = write(tmp_path / "d.arff", dense_text(ROWS))
    frame, labels = read_arff(path, label_names=["L1", "L2", "L3"])
    assert labels == ["L1", "L2", "L3"]
    assert list(frame.columns) == ["f1", "f2", "f3", "L1", "L2", "L3"]
    assert frame["L1"].tolist() == [0, 0, 1, 1]
    assert frame["L3"].tolist() == [1, 0, 0, 1]
    # a numeric attribute may be a label only if its values are 0/1/?; f3 is 3 in the first data row (line 12)
    with pytest.raises(LabelError, match="f3") as info:
        read_arff(path, label_names=["f3"])
    assert (info.value.line, info.value.column, info.value.value) == (12, "f3", 3.0)


def test_mulan_xml_order_and_default_xml_path(tmp_path: Path) -> None:
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n<labels xmlns="http://mulan.sourceforge.net/labels">\n'
        '<label name="L1"></label>\n<label name="L3"></label>\n<label name="L2"></label>\n</labels>\n'
    )
    write(tmp_path / "toy.xml", xml)
    path = write(tmp_path / "toy-train.arff", dense_text(ROWS))
    assert default_xml_path(path) == tmp_path / "toy.xml"
    frame, labels = read_arff(path)
    assert labels == ["L1", "L3", "L2"]
    assert list(frame.columns) == ["f1", "f2", "f3", "L1", "L3", "L2"]
    other = write(tmp_path / "elsewhere.xml", xml.replace('<label name="L3"></label>\n', ""))
    frame, labels = read_arff(path, xml_path=other)
    assert labels == ["L1", "L2"]
    assert list(frame.columns) == ["f1", "f2", "f3", "L3", "L1", "L2"]  # L3 is then a {0,1} feature
    assert frame["L3"].dtype == np.float64
    with pytest.raises(FileNotFoundError):
        read_arff(path, xml_path=tmp_path / "absent.xml")


def test_hierarchical_mulan_xml(tmp_path: Path) -> None:
    xml = write(
        tmp_path / "h.xml",
        '<labels xmlns="http://mulan.sourceforge.net/labels">'
        '<label name="a"><label name="a1"/></label><label name="b"/></labels>',
    )
    assert read_mulan_xml(xml) == ["a", "a1", "b"]


def test_meka_relation_gives_first_labels(tmp_path: Path) -> None:
    text = (
        "@relation 'toy: -C 2'\n@attribute A {0,1}\n@attribute B {0,1}\n@attribute x numeric\n"
        "@data\n1,0,0.5\n0,1,1.5\n"
    )
    frame, labels = read_arff(write(tmp_path / "meka.arff", text))
    assert labels == ["A", "B"]
    assert frame.values.tolist() == [[0.5, 1, 0], [1.5, 0, 1]]


def test_nominal_features_are_one_hot(tmp_path: Path) -> None:
    text = (
        "@relation t\n@attribute colour {red,green,'dark blue'}\n@attribute flag {0,1}\n"
        "@attribute x numeric\n@attribute L {0,1}\n@data\nred,1,1,0\n'dark blue',0,2,1\n?,?,3,0\n"
    )
    frame, labels = read_arff(write(tmp_path / "n.arff", text))
    assert labels == ["L"]
    assert list(frame.columns) == ["colour=red", "colour=green", "colour=dark blue", "flag", "x", "L"]
    np.testing.assert_array_equal(
        frame.to_numpy(), [[1, 0, 0, 1, 1, 0], [0, 0, 1, 0, 2, 1], [np.nan, np.nan, np.nan, np.nan, 3, 0]]
    )


def test_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "d.arff", dense_text(ROWS))
    with pytest.raises(LabelError, match=r"d\.arff.*L9"):
        read_arff(path, label_names=["L1", "L9"])
    two_strings = "@relation t\n@attribute s string\n@attribute u string\n@attribute L {0,1}\n@data\n'a','b',1\n"
    with pytest.raises(LabelError, match=r"s\.arff.*column 'u'.*2 string attributes"):
        read_arff(write(tmp_path / "s.arff", two_strings))
    bad_value = dense_text(ROWS).replace("0.5,0.0,3,1,0,0", "0.5,zero,3,1,0,0")
    with pytest.raises(LabelError, match="bad.arff") as info:
        read_arff(write(tmp_path / "bad.arff", bad_value))
    assert info.value.line == 12
    bad_label = dense_text(ROWS).replace("0.0,7.5,1,1,1,1", "0.0,7.5,1,1,1,2")
    with pytest.raises(LabelError, match="bad2.arff") as info:
        read_arff(write(tmp_path / "bad2.arff", bad_label))
    assert info.value.line == 15
    odd_label = "@relation t\n@attribute x numeric\n@attribute L {yes,no}\n@data\n1,yes\n"
    with pytest.raises(LabelError, match=r"\{0,1\}"):
        read_arff(write(tmp_path / "odd.arff", odd_label), label_names=["L"])
    no_labels = "@relation t\n@attribute x numeric\n@data\n1\n"
    with pytest.raises(LabelError, match="label_names"):
        read_arff(write(tmp_path / "none.arff", no_labels))
    with pytest.raises(LabelError, match="twice"):
        read_arff(path, label_names=["L1", "L1"])
    write(tmp_path / "broken.xml", "<labels><label name='L1'></labels>")
    with pytest.raises(LabelError, match="broken.xml"):
        read_arff(path, xml_path=tmp_path / "broken.xml")


def test_load_mulan_toy(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    folder.mkdir()
    write(folder / "toy-train.arff", dense_text(ROWS))
    write(folder / "toy-test.arff", sparse_text(ROWS[:2]))
    write(folder / "toy.xml", '<labels><label name="L2"/><label name="L1"/><label name="L3"/></labels>')
    data = load_mulan("toy", tmp_path)
    assert set(data) == {"train", "test"}
    assert data["train"][1] == data["test"][1] == ["L2", "L1", "L3"]
    assert data["train"][0].shape == (4, 6) and data["test"][0].shape == (2, 6)
    with pytest.raises(FileNotFoundError):
        load_mulan("absent", tmp_path)


@needs_mulan
@pytest.mark.parametrize(
    ("name", "n_train", "n_test", "n_features", "n_labels"),
    [("yeast", 1500, 917, 103, 14), ("scene", 1211, 1196, 294, 6), ("emotions", 391, 202, 72, 6)],
)
def test_real_mulan_files(name: str, n_train: int, n_test: int, n_features: int, n_labels: int) -> None:
    data = load_mulan(name, MULAN)
    xml_labels = read_mulan_xml(MULAN / name / f"{name}.xml")
    for split, n in (("train", n_train), ("test", n_test)):
        frame, labels = data[split]
        assert frame.shape == (n, n_features + n_labels)
        assert labels == xml_labels
        assert list(frame.columns[n_features:]) == labels
        features = frame.iloc[:, :n_features]
        assert all(dtype == np.float64 for dtype in features.dtypes)
        assert frame[labels].isin([0, 1]).all().all()
        assert (frame[labels].sum(axis=0) > 0).all()


@needs_mulan
def test_real_emotions_labels_and_yeast_order() -> None:
    _, emotions = read_arff(MULAN / "emotions" / "emotions-train.arff")
    assert emotions == [
        "amazed-suprised",
        "happy-pleased",
        "relaxing-calm",
        "quiet-still",
        "sad-lonely",
        "angry-aggresive",
    ]
    frame, yeast = read_arff(MULAN / "yeast" / "yeast-train.arff")
    assert yeast[:5] == ["Class1", "Class2", "Class3", "Class6", "Class4"]  # the XML's order, not the ARFF's
    arff_order, _ = read_arff(
        MULAN / "yeast" / "yeast-train.arff", label_names=[f"Class{i}" for i in range(1, 15)]
    )
    pd.testing.assert_series_equal(frame["Class6"], arff_order["Class6"])
    # first training row of yeast-train.arff, labels read by name from its last 14 values
    with open(MULAN / "yeast" / "yeast-train.arff") as f:
        first = next(line for line in f if line.strip() and line[0] not in "@%").strip().split(",")
    by_name = {f"Class{i}": int(v) for i, v in enumerate(first[-14:], start=1)}
    assert {name: int(frame[name].iloc[0]) for name in yeast} == by_name
    assert frame["Att1"].iloc[0] == pytest.approx(float(first[0]))


def test_string_attribute_gives_row_ids_not_features(tmp_path: Path) -> None:
    from multitask.data.arff import read_arff_rows
    from multitask.tables import read_label_table

    text = ("@relation t\n@attribute id string\n@attribute x numeric\n@attribute a {0,1}\n@attribute b {0,1}\n"
            "@data\n'row-1',0.5,1,0\n'row-2',1.5,0,1\n'row-3',2.5,1,1\n")
    path = write(tmp_path / "ids.arff", text)
    frame, labels, lines, ids = read_arff_rows(path)
    assert list(frame.columns) == ["x", "a", "b"] and labels == ["a", "b"] and lines == [7, 8, 9]
    assert ids.tolist() == ["row-1", "row-2", "row-3"]
    table = read_label_table(path, val_fraction=0, test_fraction=0)
    assert table.feature_names == ("x",) and table.ids.tolist() == ["row-1", "row-2", "row-3"]
    sparse = text.split("@data")[0] + "@data\n{0 'r1',1 0.5,2 1}\n{0 'r2',3 1}\n"
    _, _, _, ids = read_arff_rows(write(tmp_path / "sparse.arff", sparse))
    assert ids.tolist() == ["r1", "r2"]


def test_escaped_quotes_in_label_names_match_the_mulan_xml(tmp_path: Path) -> None:
    from multitask.tables import read_label_table

    arff_text = ("@relation birds\n@attribute f1 numeric\n@attribute 'Swainson\\'s Thrush' {0,1}\n"
                 "@attribute \"Wilson\\\"s Warbler\" {0,1}\n@attribute 'Plain' {0,1}\n"
                 "@data\n0.1,1,0,0\n0.2,0,1,1\n0.3,1,1,0\n0.4,0,0,1\n")
    path = write(tmp_path / "birds-train.arff", arff_text)
    write(tmp_path / "birds.xml", '<?xml version="1.0" encoding="utf-8"?>\n'
          '<labels xmlns="http://mulan.sourceforge.net/labels">'
          '<label name="Swainson&apos;s Thrush"></label><label name="Wilson&quot;s Warbler"></label>'
          '<label name="Plain"></label></labels>')
    frame, labels = read_arff(path)
    assert labels == ["Swainson's Thrush", 'Wilson"s Warbler', "Plain"]
    assert frame["Swainson's Thrush"].tolist() == [1, 0, 1, 0]
    table = read_label_table(path, val_fraction=0, test_fraction=0)
    assert table.tasks == ("Swainson's Thrush", 'Wilson"s Warbler', "Plain") and table.feature_names == ("f1",)
