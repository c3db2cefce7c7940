"""Tests for multitask.importers: VOC, COCO, Open Images importers, label-table writing and merging."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multitask.errors import LabelError
from multitask.importers import (
    MergeSummary,
    import_coco,
    import_openimages,
    import_voc,
    merge_label_tables,
    write_label_table,
)


def read_label_frame(path: Path) -> pd.DataFrame:
    """A written label table back as strings (pandas, independently of the project's reader)."""
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.read_parquet(path).astype(str)

SHARED = Path(__file__).parents[2] / "shared"
ROADSIGN = SHARED / "data" / "roadsign"


def rows(frame: pd.DataFrame) -> list[list[str]]:
    return frame.values.tolist()


# ---------------------------------------------------------------------------------------------------- VOC


def voc_xml(filename: str | None, objects: list[tuple[str, int | str | None]]) -> str:
    parts = ["<annotation>", "<folder>images</folder>"]
    if filename is not None:
        parts.append(f"<filename>{filename}</filename>")
    for name, difficult in objects:
        parts.append("<object>")
        parts.append(f"<name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>")
        if difficult is not None:
            parts.append(f"<difficult>{difficult}</difficult>")
        parts.append("<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>")
    parts.append("</annotation>")
    return "\n".join(parts)


@pytest.fixture
def voc_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "annotations"
    folder.mkdir()
    # a: cat only difficult; dog difficult and not difficult
    (folder / "a.xml").write_text(voc_xml("a.jpg", [("cat", 1), ("dog", 1), ("dog", 0)]))
    # b: bird without a <difficult> tag (= not difficult)
    (folder / "b.xml").write_text(voc_xml("b.jpg", [("bird", None)]))
    # c: no objects at all
    (folder / "c.xml").write_text(voc_xml("c.jpg", []))
    (folder / "notes.txt").write_text("not an annotation")
    return folder


@pytest.mark.skipif(not ROADSIGN.is_dir(), reason=f"shared road sign data not found at {ROADSIGN}")
def test_voc_reproduces_roadsign_labels_csv() -> None:
    imported = import_voc(ROADSIGN / "annotations")
    reference = pd.read_csv(ROADSIGN / "labels.csv", dtype=str, keep_default_na=False)
    reference = reference.drop(columns="split").sort_values("image").reset_index(drop=True)
    assert list(imported.columns) == list(reference.columns)
    assert len(imported) == len(reference) == len(list((ROADSIGN / "annotations").glob("*.xml")))
    assert rows(imported) == rows(reference)


def test_voc_difficult_policies(voc_dir: Path) -> None:
    positive = import_voc(voc_dir)
    assert list(positive.columns) == ["image", "bird", "cat", "dog"]
    assert rows(positive) == [["a.jpg", "0", "1", "1"], ["b.jpg", "1", "0", "0"], ["c.jpg", "0", "0", "0"]]
    unknown = import_voc(voc_dir, difficult="unknown")
    assert rows(unknown) == [["a.jpg", "0", "?", "1"], ["b.jpg", "1", "0", "0"], ["c.jpg", "0", "0", "0"]]
    ignore = import_voc(voc_dir, difficult="ignore")
    assert rows(ignore) == [["a.jpg", "0", "0", "1"], ["b.jpg", "1", "0", "0"], ["c.jpg", "0", "0", "0"]]


def test_voc_unknown_keeps_positive_when_difficult_comes_after(tmp_path: Path) -> None:
    (tmp_path / "x.xml").write_text(voc_xml("x.jpg", [("dog", 0), ("dog", 1)]))
    assert rows(import_voc(tmp_path, difficult="unknown")) == [["x.jpg", "1"]]


def test_voc_classes_fix_order_and_subset(voc_dir: Path) -> None:
    frame = import_voc(voc_dir, classes=["dog", "zebra", "bird"], image_column="path")
    assert list(frame.columns) == ["path", "dog", "zebra", "bird"]
    assert rows(frame) == [["a.jpg", "1", "0", "0"], ["b.jpg", "0", "0", "1"], ["c.jpg", "0", "0", "0"]]
    with pytest.raises(LabelError, match="twice"):
        import_voc(voc_dir, classes=["dog", "dog"])


def test_voc_malformed_file_names_file_and_line(voc_dir: Path) -> None:
    (voc_dir / "broken.xml").write_text("<annotation>\n<filename>d.jpg</filename>\n<object>\n</annotation>\n")
    with pytest.raises(LabelError, match="broken.xml") as info:
        import_voc(voc_dir)
    assert info.value.line == 4


def test_voc_missing_filename(voc_dir: Path) -> None:
    (voc_dir / "nofile.xml").write_text(voc_xml(None, [("cat", 0)]))
    with pytest.raises(LabelError, match=r"nofile\.xml.*filename"):
        import_voc(voc_dir)


def test_voc_duplicate_image_and_bad_difficult(tmp_path: Path) -> None:
    (tmp_path / "1.xml").write_text(voc_xml("same.jpg", [("cat", 0)]))
    (tmp_path / "2.xml").write_text(voc_xml("same.jpg", [("dog", 0)]))
    with pytest.raises(LabelError, match="same.jpg"):
        import_voc(tmp_path)
    (tmp_path / "2.xml").write_text(voc_xml("other.jpg", [("dog", "maybe")]))
    with pytest.raises(LabelError, match="maybe"):
        import_voc(tmp_path)
    with pytest.raises(LabelError, match="difficult"):
        import_voc(tmp_path, difficult="sometimes")  # type: ignore[arg-type]


def test_voc_empty_or_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="no"):
        import_voc(tmp_path)
    with pytest.raises(FileNotFoundError):
        import_voc(tmp_path / "absent")


# ---------------------------------------------------------------------------------------------------- writing


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_label_table_round_trip(tmp_path: Path, voc_dir: Path, suffix: str) -> None:
    frame = import_voc(voc_dir, difficult="unknown")
    path = tmp_path / f"labels{suffix}"
    write_label_table(frame, path)
    back = read_label_frame(path)
    assert list(back.columns) == list(frame.columns)
    assert rows(back) == rows(frame)
    if suffix == ".csv":
        assert path.read_text().splitlines()[0] == "image,bird,cat,dog"
        assert path.read_text().splitlines()[1] == "a.jpg,0,?,1"


def test_write_label_table_writes_strings_and_rejects_unknown_extension(tmp_path: Path) -> None:
    frame = pd.DataFrame({"image": ["a.jpg", "b.jpg"], "car": [1, 0], "dog": [1.0, float("nan")]})
    write_label_table(frame, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == "image,car,dog\na.jpg,1,1\nb.jpg,0,\n"
    with pytest.raises(LabelError, match="extension"):
        write_label_table(frame, tmp_path / "t.xlsx")
    (tmp_path / "t.xlsx").write_bytes(b"PK")
    with pytest.raises(LabelError, match="unsupported file type"):
        merge_label_tables({"a": tmp_path / "t.xlsx"})


# ---------------------------------------------------------------------------------------------------- COCO


def coco_json(tmp_path: Path, **overrides: object) -> Path:
    data = {
        "info": {"description": "tiny"},
        "licenses": [],
        "images": [
            {"id": 397133, "file_name": "000000397133.jpg", "height": 427, "width": 640},
            {"id": 37777, "file_name": "000000037777.jpg", "height": 230, "width": 352},
            {"id": 252219, "file_name": "000000252219.jpg", "height": 428, "width": 640},
            {"id": 87038, "file_name": "000000087038.jpg", "height": 480, "width": 640},
        ],
        "annotations": [
            {"id": 1, "image_id": 397133, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 1, 1], "area": 1.0},
            {"id": 2, "image_id": 397133, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 1, 1], "area": 1.0},
            {"id": 3, "image_id": 37777, "category_id": 62, "iscrowd": 0, "bbox": [0, 0, 1, 1], "area": 1.0},
            {
                "id": 4,
                "image_id": 252219,
                "category_id": 3,
                "iscrowd": 1,
                "bbox": [0, 0, 1, 1],
                "area": 1.0,
                "segmentation": {"counts": [1, 2], "size": [428, 640]},
            },
        ],
        "categories": [
            {"supercategory": "person", "id": 1, "name": "person"},
            {"supercategory": "vehicle", "id": 3, "name": "car"},
            {"supercategory": "furniture", "id": 62, "name": "chair"},
            {"supercategory": "animal", "id": 18, "name": "dog"},
        ],
    }
    data.update(overrides)
    path = tmp_path / "instances_tiny.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_presence_and_default_negative(tmp_path: Path) -> None:
    frame = import_coco(coco_json(tmp_path))
    assert list(frame.columns) == ["image", "car", "chair", "dog", "person"]
    assert rows(frame) == [
        ["000000037777.jpg", "0", "1", "0", "0"],
        ["000000087038.jpg", "0", "0", "0", "0"],  # no annotation: negative for everything
        ["000000252219.jpg", "1", "0", "0", "0"],  # iscrowd counts as present
        ["000000397133.jpg", "0", "0", "0", "1"],
    ]


def test_coco_unannotated_policies(tmp_path: Path) -> None:
    path = coco_json(tmp_path)
    dropped = import_coco(path, unannotated="drop")
    assert "000000087038.jpg" not in set(dropped["image"])
    assert len(dropped) == 3
    unknown = import_coco(path, unannotated="unknown")
    assert rows(unknown)[1] == ["000000087038.jpg", "?", "?", "?", "?"]
    assert rows(unknown)[0] == ["000000037777.jpg", "0", "1", "0", "0"]
    with pytest.raises(LabelError, match="unannotated"):
        import_coco(path, unannotated="maybe")  # type: ignore[arg-type]


def test_coco_classes_subset(tmp_path: Path) -> None:
    frame = import_coco(coco_json(tmp_path), classes=["person", "chair"], unannotated="unknown")
    assert list(frame.columns) == ["image", "person", "chair"]
    # 252219 has only a car annotation: it is annotated, so negative for the selected classes
    assert rows(frame)[2] == ["000000252219.jpg", "0", "0"]
    with pytest.raises(LabelError, match="unicorn"):
        import_coco(coco_json(tmp_path), classes=["person", "unicorn"])


def test_coco_errors(tmp_path: Path) -> None:
    bad_category = [{"id": 9, "image_id": 397133, "category_id": 99, "iscrowd": 0}]
    with pytest.raises(LabelError, match="category_id.*99"):
        import_coco(coco_json(tmp_path, annotations=bad_category))
    bad_image = [{"id": 9, "image_id": 5, "category_id": 1, "iscrowd": 0}]
    with pytest.raises(LabelError, match="image_id"):
        import_coco(coco_json(tmp_path, annotations=bad_image))
    with pytest.raises(LabelError, match="annotations"):
        import_coco(coco_json(tmp_path, annotations=None))
    duplicate = [{"id": 1, "name": "person"}, {"id": 2, "name": "person"}]
    with pytest.raises(LabelError, match="duplicate category name"):
        import_coco(coco_json(tmp_path, categories=duplicate))
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [\n{"id": 1,}\n]}')
    with pytest.raises(LabelError, match="broken.json") as info:
        import_coco(broken)
    assert info.value.line == 2


# ----------------------------------------------------------------------------------------------- Open Images

OI_LABELS = """ImageID,Source,LabelName,Confidence
000002b66c9c498e,verification,/m/014j1m,0
000002b66c9c498e,verification,/m/014sv8,1
000002b66c9c498e,crowdsource-verification,/m/014sv8,1
000002b97e5471a0,verification,/m/05s2s,1
000002b97e5471a0,verification,/m/0c9ph5,0
0000048549557964,verification,/m/014sv8,0
"""
OI_CLASSES = """/m/014j1m,Apple
/m/014sv8,Human eye
/m/05s2s,Plant
/m/0c9ph5,Flower
/m/0k4j,Car
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_openimages_with_headerless_descriptions(tmp_path: Path) -> None:
    frame = import_openimages(write(tmp_path / "l.csv", OI_LABELS), write(tmp_path / "c.csv", OI_CLASSES))
    assert list(frame.columns) == ["image", "Apple", "Flower", "Human eye", "Plant"]
    assert rows(frame) == [
        ["000002b66c9c498e.jpg", "0", "?", "1", "?"],
        ["000002b97e5471a0.jpg", "?", "0", "?", "1"],
        ["0000048549557964.jpg", "?", "?", "0", "?"],
    ]


def test_openimages_descriptions_with_header_and_without_file(tmp_path: Path) -> None:
    labels = write(tmp_path / "l.csv", OI_LABELS)
    with_header = import_openimages(labels, write(tmp_path / "c.csv", "LabelName,DisplayName\n" + OI_CLASSES))
    headerless = import_openimages(labels, write(tmp_path / "c2.csv", OI_CLASSES))
    assert rows(with_header) == rows(headerless)
    by_mid = import_openimages(labels)
    assert list(by_mid.columns) == ["image", "/m/014j1m", "/m/014sv8", "/m/05s2s", "/m/0c9ph5"]
    assert rows(by_mid)[0] == ["000002b66c9c498e.jpg", "0", "1", "?", "?"]


def test_openimages_classes(tmp_path: Path) -> None:
    labels = write(tmp_path / "l.csv", OI_LABELS)
    classes = write(tmp_path / "c.csv", OI_CLASSES)
    frame = import_openimages(labels, classes, classes=["Plant", "/m/014j1m", "Car"])
    assert list(frame.columns) == ["image", "Plant", "Apple", "Car"]
    assert rows(frame) == [
        ["000002b66c9c498e.jpg", "?", "0", "?"],
        ["000002b97e5471a0.jpg", "1", "?", "?"],
        ["0000048549557964.jpg", "?", "?", "?"],
    ]
    with pytest.raises(LabelError, match="Unicorn"):
        import_openimages(labels, classes, classes=["Unicorn"])


def test_openimages_duplicate_display_names_stay_distinct(tmp_path: Path) -> None:
    labels = write(tmp_path / "l.csv", "ImageID,Source,LabelName,Confidence\nx,v,/m/a,1\ny,v,/m/b,0\n")
    classes = write(tmp_path / "c.csv", "/m/a,Cricket\n/m/b,Cricket\n")
    frame = import_openimages(labels, classes)
    assert list(frame.columns) == ["image", "Cricket (/m/a)", "Cricket (/m/b)"]
    assert rows(frame) == [["x.jpg", "1", "?"], ["y.jpg", "?", "0"]]


def test_openimages_conflict_names_both_lines(tmp_path: Path) -> None:
    text = OI_LABELS + "000002b66c9c498e,crowdsource-verification,/m/014j1m,1\n"
    with pytest.raises(LabelError, match=r"line 2 and 1 at line 8") as info:
        import_openimages(write(tmp_path / "l.csv", text))
    assert info.value.line == 8
    assert info.value.file is not None and info.value.file.endswith("l.csv")


@pytest.mark.parametrize("confidence", ["0.7", "yes", ""])
def test_openimages_bad_confidence(tmp_path: Path, confidence: str) -> None:
    text = OI_LABELS.replace("/m/05s2s,1", f"/m/05s2s,{confidence}")
    with pytest.raises(LabelError, match="Confidence") as info:
        import_openimages(write(tmp_path / "l.csv", text))
    error = info.value
    assert (error.line, error.column, error.value) == (5, "Confidence", confidence)
    assert "l.csv, line 5, column 'Confidence'" in str(error)


def test_openimages_other_errors(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="Confidence"):
        import_openimages(write(tmp_path / "l.csv", "ImageID,Source,LabelName\nx,v,/m/a\n"))
    labels = write(tmp_path / "l2.csv", OI_LABELS)
    with pytest.raises(LabelError, match=r"/m/0c9ph5") as info:
        import_openimages(
            labels, write(tmp_path / "c.csv", "/m/014j1m,Apple\n/m/014sv8,Eye\n/m/05s2s,Plant\n")
        )
    assert info.value.line == 6
    with pytest.raises(LabelError, match="2 fields"):
        import_openimages(labels, write(tmp_path / "c2.csv", "/m/014j1m,Apple,extra\n"))


# ---------------------------------------------------------------------------------------------------- merging


def frame(data: dict[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame(data)


def test_merge_disjoint_tasks() -> None:
    a = frame({"image": ["1.jpg", "2.jpg"], "car": ["1", "0"], "pedestrian": ["0", "1"]})
    b = frame({"image": ["3.jpg", "4.jpg"], "sign": ["1", "?"], "light": ["0", "1"]})
    merged, summary = merge_label_tables({"A": a, "B": b})
    assert list(merged.columns) == ["image", "car", "light", "pedestrian", "sign"]
    assert rows(merged) == [
        ["1.jpg", "1", "?", "0", "?"],
        ["2.jpg", "0", "?", "1", "?"],
        ["3.jpg", "?", "0", "?", "1"],
        ["4.jpg", "?", "1", "?", "?"],
    ]
    assert isinstance(summary, MergeSummary)
    assert summary.source_rows == {"A": 2, "B": 2}
    assert summary.source_tasks == {"A": ["car", "pedestrian"], "B": ["sign", "light"]}
    assert summary.overlaps == {("A", "B"): 0}
    assert summary.shared_inputs == 0
    assert summary.known_counts == {"car": 2, "light": 2, "pedestrian": 2, "sign": 1}
    assert summary.positive_counts == {"car": 1, "light": 1, "pedestrian": 1, "sign": 1}
    assert summary.conflicts == []


def test_merge_overlapping_inputs_agree_and_known_beats_unknown() -> None:
    a = frame({"image": ["1.jpg", "2.jpg", "3.jpg"], "car": ["1", "?", "0"], "dog": ["?", "?", "1"]})
    b = frame({"image": ["2.jpg", "3.jpg", "9.jpg"], "car": ["1", "0", "?"], "sign": ["0", "1", "1"]})
    merged, summary = merge_label_tables([("a", a), ("b", b)])
    assert rows(merged) == [
        ["1.jpg", "1", "?", "?"],
        ["2.jpg", "1", "?", "0"],
        ["3.jpg", "0", "1", "1"],
        ["9.jpg", "?", "?", "1"],
    ]
    assert summary.overlaps == {("a", "b"): 2}
    assert summary.shared_inputs == 2
    assert summary.known_counts == {"car": 3, "dog": 1, "sign": 3}


@pytest.fixture
def conflicting() -> dict[str, pd.DataFrame]:
    return {
        "first": frame({"image": ["1.jpg", "2.jpg"], "car": ["1", "0"], "dog": ["0", "1"]}),
        "second": frame({"image": ["1.jpg", "2.jpg"], "car": ["0", "0"]}),
        "third": frame({"image": ["1.jpg", "3.jpg"], "car": ["?", "1"], "dog": ["1", "?"]}),
    }


def test_merge_conflict_error(conflicting: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(LabelError, match=r"'1\.jpg'.*'car'.*first=1, second=0, third=\?"):
        merge_label_tables(conflicting)


def test_merge_conflict_unknown(conflicting: dict[str, pd.DataFrame]) -> None:
    merged, summary = merge_label_tables(conflicting, conflicts="unknown")
    assert rows(merged) == [["1.jpg", "?", "?"], ["2.jpg", "0", "1"], ["3.jpg", "1", "?"]]
    assert [(c.input, c.task, c.resolved) for c in summary.conflicts] == [
        ("1.jpg", "car", "?"),
        ("1.jpg", "dog", "?"),
    ]
    assert summary.conflicts[0].values == {"first": "1", "second": "0", "third": "?"}
    assert summary.conflicts[1].values == {"first": "0", "third": "1"}
    assert summary.overlaps == {("first", "second"): 2, ("first", "third"): 1, ("second", "third"): 1}
    assert summary.shared_inputs == 2
    text = str(summary)
    assert text == summary.to_markdown()
    assert "| 1.jpg | car | first=1, second=0, third=? | ? |" in text
    assert "Conflicts: 2." in text


def test_merge_conflict_first(conflicting: dict[str, pd.DataFrame]) -> None:
    merged, summary = merge_label_tables(conflicting, conflicts="first")
    assert rows(merged) == [["1.jpg", "1", "0"], ["2.jpg", "0", "1"], ["3.jpg", "1", "?"]]
    assert [c.resolved for c in summary.conflicts] == ["1", "0"]
    # the first source that *knows* the value wins: here the third source's "0" beats the second's "?"
    merged, _ = merge_label_tables(
        [
            ("b", frame({"image": ["x"], "car": ["?"]})),
            ("c", frame({"image": ["x"], "car": ["0"]})),
            ("d", frame({"image": ["x"], "car": ["1"]})),
        ],
        conflicts="first",
    )
    assert rows(merged) == [["x", "0"]]


def brute_force_merge(
    sources: list[tuple[str, dict[str, dict[str, str]]]], tasks: list[str], policy: str
) -> dict[str, dict[str, str]]:
    inputs = sorted({i for _, table in sources for i in table})
    result: dict[str, dict[str, str]] = {}
    for item in inputs:
        result[item] = {}
        for task in tasks:
            known = [
                table[item][task]
                for _, table in sources
                if item in table and task in table[item] and table[item][task] != "?"
            ]
            if not known:
                value = "?"
            elif len(set(known)) == 1:
                value = known[0]
            else:
                value = "?" if policy == "unknown" else known[0]
            result[item][task] = value
    return result


@pytest.mark.parametrize("seed", range(5))
def test_merge_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    all_tasks = ["t1", "t2", "t3", "t4"]
    sources = []
    for s in range(rng.randint(1, 4)):
        tasks = rng.sample(all_tasks, rng.randint(1, 4))
        inputs = rng.sample([f"img{i:02d}" for i in range(30)], rng.randint(0, 20))
        table = {i: {t: rng.choice(["1", "0", "?"]) for t in tasks} for i in inputs}
        sources.append((f"s{s}", table, tasks))
    for policy in ("unknown", "first"):
        frames = [
            (name, pd.DataFrame({"image": list(table), **{t: [table[i][t] for i in table] for t in tasks}}))
            for name, table, tasks in sources
        ]
        merged, summary = merge_label_tables(frames, conflicts=policy)
        expected_tasks = sorted({t for _, _, tasks in sources for t in tasks})
        expected = brute_force_merge([(name, table) for name, table, _ in sources], expected_tasks, policy)
        got = {r[0]: dict(zip(merged.columns[1:], r[1:], strict=True)) for r in rows(merged)}
        assert list(merged.columns) == ["image", *expected_tasks]
        assert got == expected
        for a, b in itertools.combinations([name for name, _, _ in sources], 2):
            tables = {name: table for name, table, _ in sources}
            assert summary.overlaps[a, b] == len(set(tables[a]) & set(tables[b]))
        for task in expected_tasks:
            assert summary.known_counts[task] == sum(1 for row in expected.values() if row[task] != "?")


def test_merge_accepts_empty_cells_and_numbers_and_rejects_bad_values() -> None:
    a = pd.DataFrame({"image": ["x", "y"], "car": [1, float("nan")]})
    b = frame({"image": ["x", "y"], "car": ["", "0"]})
    merged, _ = merge_label_tables({"a": a, "b": b})
    assert rows(merged) == [["x", "1"], ["y", "0"]]
    with pytest.raises(LabelError, match="maybe"):
        merge_label_tables({"a": frame({"image": ["x"], "car": ["maybe"]})})
    with pytest.raises(LabelError, match="twice"):
        merge_label_tables({"a": frame({"image": ["x", "x"], "car": ["1", "0"]})})
    with pytest.raises(LabelError, match="input column"):
        merge_label_tables({"a": frame({"path": ["x"], "car": ["1"]})})
    with pytest.raises(LabelError, match="split"):
        merge_label_tables({"a": frame({"image": ["x"], "car": ["1"], "split": ["train"]})})
    with pytest.raises(LabelError, match="distinct"):
        merge_label_tables([("a", b), ("a", b)])
    with pytest.raises(LabelError, match="conflicts"):
        merge_label_tables({"a": b}, conflicts="vote")  # type: ignore[arg-type]


def test_merge_imported_tables_from_files(tmp_path: Path, voc_dir: Path) -> None:
    voc = import_voc(voc_dir)
    write_label_table(voc, tmp_path / "voc.csv")
    other = frame({"image": ["a.jpg", "z.jpg"], "dog": ["1", "0"], "car": ["0", "1"]})
    write_label_table(other, tmp_path / "other.parquet")
    merged, summary = merge_label_tables({"voc": tmp_path / "voc.csv", "other": tmp_path / "other.parquet"})
    assert list(merged.columns) == ["image", "bird", "car", "cat", "dog"]
    assert rows(merged)[0] == ["a.jpg", "0", "0", "1", "1"]
    assert rows(merged)[-1] == ["z.jpg", "?", "1", "?", "0"]
    assert summary.n_inputs == 4


# ----------------------------------------------------------------------------------------------- boxes


def voc_box_xml(filename: str, size: tuple[int, int] | None, objects: list[tuple[str, int, str | None]]) -> str:
    """`objects`: (name, difficult, "xmin ymin xmax ymax" or None for no <bndbox>)."""
    parts = ["<annotation>", f"<filename>{filename}</filename>"]
    if size is not None:
        parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>")
    for name, difficult, box in objects:
        parts.append(f"<object><name>{name}</name><difficult>{difficult}</difficult>")
        if box is not None:
            xmin, ymin, xmax, ymax = box.split()
            parts.append(f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax>"
                         "</bndbox>")
        parts.append("</object>")
    return "\n".join([*parts, "</annotation>"])


def test_voc_boxes_difficult_is_ignore_and_empty_images_verified(tmp_path: Path) -> None:
    from multitask.importers import import_voc_boxes

    write(tmp_path / "a.xml", voc_box_xml("a.jpg", (50, 40), [("dog", 1, "1 1 10 20"), ("cat", 0, "5 6 50 40")]))
    write(tmp_path / "b.xml", voc_box_xml("b.jpg", (50, 40), []))
    table = import_voc_boxes(tmp_path)
    assert table.classes == ("cat", "dog") and table.images == ("a.jpg", "b.jpg") and table.known.all()
    assert table.boxes[0].tolist() == [[0, 0, 10, 20], [4, 5, 50, 40]]  # 1-based mins → 0-based pixel edges
    assert table.labels[0].tolist() == [1, 0] and table.ignore[0].tolist() == [True, False]
    assert table.boxes[1].shape == (0, 4) and table.sizes.tolist() == [[50, 40], [50, 40]]
    assert import_voc_boxes(tmp_path, classes=["dog"]).counts(include_ignored=True).tolist() == [1]


def test_voc_boxes_errors_name_the_file(tmp_path: Path) -> None:
    from multitask.importers import import_voc_boxes

    write(tmp_path / "a.xml", voc_box_xml("a.jpg", (50, 40), [("dog", 0, "1 1 10 45")]))
    with pytest.raises(LabelError) as info:
        import_voc_boxes(tmp_path)
    assert info.value.file == str(tmp_path / "a.xml") and info.value.column == "ymax" and info.value.value == 45
    assert "below the image (height 40)" in info.value.reason
    write(tmp_path / "a.xml", voc_box_xml("a.jpg", None, [("dog", 0, "10 1 9 5")]))
    with pytest.raises(LabelError, match="degenerate"):
        import_voc_boxes(tmp_path)
    write(tmp_path / "a.xml", voc_box_xml("a.jpg", None, [("dog", 0, "1 1 ten 5")]))
    with pytest.raises(LabelError, match="must be a number") as info:
        import_voc_boxes(tmp_path)
    assert info.value.column == "xmax" and info.value.value == "ten"
    write(tmp_path / "a.xml", voc_box_xml("a.jpg", None, [("dog", 0, None)]))
    with pytest.raises(LabelError, match="no <bndbox>"):
        import_voc_boxes(tmp_path)


@pytest.mark.skipif(not ROADSIGN.is_dir(), reason=f"shared road sign data not found at {ROADSIGN}")
def test_voc_boxes_of_the_road_signs_agree_with_labels_csv() -> None:
    from multitask.importers import import_voc_boxes

    table = import_voc_boxes(ROADSIGN / "annotations", splits=ROADSIGN / "labels.csv")
    labels = pd.read_csv(ROADSIGN / "labels.csv", dtype=str).set_index("image").loc[list(table.images)]
    assert table.split.tolist() == labels["split"].tolist()
    present = np.zeros((len(table), table.n_classes), dtype=bool)
    for i, lab in enumerate(table.labels):
        present[i, lab] = True
    assert (present == (labels[list(table.classes)].to_numpy() == "1")).all()


def test_coco_boxes_unannotated_policies(tmp_path: Path) -> None:
    from multitask.importers import import_coco_boxes

    path = coco_json(tmp_path)
    table = import_coco_boxes(path)
    assert table.classes == ("car", "chair", "dog", "person") and len(table) == 4 and table.known.all()
    assert table.ignore[table.images.index("000000252219.jpg")].tolist() == [True]  # iscrowd
    assert len(import_coco_boxes(path, unannotated="drop")) == 3
    unknown = import_coco_boxes(path, unannotated="unknown")
    assert unknown.known.sum(axis=1).tolist() == [4, 4, 4, 0]
    assert import_coco_boxes(path, classes=["person"]).counts().tolist() == [2]


OI_BOXES = """ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf
000002b66c9c498e,xclick,/m/014sv8,1,0.1,0.5,0.25,0.75,0,0,0
000002b66c9c498e,xclick,/m/014sv8,1,0.0,1.0,0.0,1.0,0,0,1
000002b97e5471a0,xclick,/m/0k4j,1,0.5,1.0,0.5,1.0,0,0,0
"""


def test_openimages_boxes_known_only_where_boxed_or_verified_absent(tmp_path: Path) -> None:
    from PIL import Image

    from multitask.importers import import_openimages_boxes

    for image in ("000002b66c9c498e", "000002b97e5471a0", "0000048549557964"):
        Image.new("RGB", (20, 8)).save(tmp_path / f"{image}.jpg")
    boxes = write(tmp_path / "boxes.csv", OI_BOXES)
    labels = write(tmp_path / "labels.csv", OI_LABELS)
    classes = write(tmp_path / "classes.csv", OI_CLASSES)
    table = import_openimages_boxes(boxes, labels, classes, classes=["Human eye", "Car", "Apple"])
    assert table.classes == ("Human eye", "Car", "Apple")
    assert table.images == ("000002b66c9c498e.jpg", "000002b97e5471a0.jpg", "0000048549557964.jpg")
    # 66c9: eye boxed, car never verified, apple verified absent; 7e54: car boxed; 5579: eye verified absent
    assert table.known.tolist() == [[True, False, True], [False, True, False], [True, False, False]]
    assert table.boxes[0].tolist() == [[2, 2, 10, 6], [0, 0, 20, 8]]  # normalised × the image's 20 × 8 pixels
    assert table.ignore[0].tolist() == [False, True]  # IsGroupOf
    without_labels = import_openimages_boxes(boxes, classes=["/m/014sv8", "/m/0k4j"])
    assert without_labels.known.tolist() == [[True, False], [False, True]]  # only the boxed classes are known


def test_openimages_boxes_errors(tmp_path: Path) -> None:
    from PIL import Image

    from multitask.importers import import_openimages_boxes

    Image.new("RGB", (20, 8)).save(tmp_path / "000002b66c9c498e.jpg")
    bad = OI_BOXES.splitlines()[:2] + ["000002b66c9c498e,xclick,/m/014sv8,1,0.6,0.5,0.25,0.75,0,0,0"]
    with pytest.raises(LabelError) as info:
        import_openimages_boxes(write(tmp_path / "boxes.csv", "\n".join(bad) + "\n"))
    assert (info.value.line, info.value.column) == (3, "XMax") and "degenerate" in info.value.reason
    with pytest.raises(LabelError, match="image file not found") as info:
        import_openimages_boxes(write(tmp_path / "boxes.csv", OI_BOXES))
    assert (info.value.line, info.value.column, info.value.value) == (4, "ImageID", "000002b97e5471a0")


def box_table(images: list[str], classes: list[str], boxes: list[list[list[float]]], labels: list[list[int]],
              **options: object) -> object:
    from multitask.detection import BoxTable

    return BoxTable.from_arrays(classes, images, boxes=boxes, labels=labels, **options)


def test_merge_box_tables_marks_classes_a_source_never_annotated_unknown() -> None:
    from multitask.importers import merge_box_tables

    a = box_table(["x.jpg", "y.jpg"], ["car"], [[[0, 0, 5, 5]], []], [[0], []], split=["train", "test"])
    b = box_table(["y.jpg", "z.jpg"], ["car", "sign"], [[], [[1, 1, 2, 2]]], [[], [1]],
                  known=[[True, True], [False, True]], split=["test", "val"])
    merged, summary = merge_box_tables({"a": a, "b": b})
    assert merged.classes == ("car", "sign") and merged.images == ("x.jpg", "y.jpg", "z.jpg")
    # x: only in a (no sign there: unknown); y: car absent in both, sign from b; z: only in b, car unknown in b
    assert merged.known.tolist() == [[True, False], [True, True], [False, True]]
    assert [lab.tolist() for lab in merged.labels] == [[0], [], [1]] and merged.split.tolist() == ["train", "test",
                                                                                                   "val"]
    assert summary.known_counts == {"car": 2, "sign": 2} and summary.positive_counts == {"car": 1, "sign": 1}
    assert summary.shared_inputs == 1 and summary.overlaps == {("a", "b"): 1} and not summary.conflicts


def test_merge_box_tables_conflicts() -> None:
    from multitask.importers import merge_box_tables

    a = box_table(["x.jpg"], ["car"], [[[0, 0, 5, 5]]], [[0]])
    b = box_table(["x.jpg"], ["car"], [[]], [[]])
    with pytest.raises(LabelError, match=r"'x.jpg', class 'car': sources disagree \(a: 1 box, b: verified absent\)"):
        merge_box_tables({"a": a, "b": b})
    first, summary = merge_box_tables({"a": a, "b": b}, conflicts="first")
    assert first.n_boxes == 1 and summary.conflicts[0].resolved == "1 box"
    unknown, _ = merge_box_tables({"a": a, "b": b}, conflicts="unknown")
    assert unknown.known.tolist() == [[False]] and unknown.n_boxes == 0
    same, summary = merge_box_tables({"a": a, "c": box_table(["x.jpg"], ["car"], [[[0, 0, 5.001, 5]]], [[0]])})
    assert same.n_boxes == 1 and not summary.conflicts  # equal to 0.01 px


def test_cli_import_voc_writes_boxes_and_merge_boxes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from multitask.cli import app
    from multitask.detection import read_box_table

    folder = tmp_path / "annotations"
    folder.mkdir()
    write(folder / "a.xml", voc_box_xml("a.jpg", (50, 40), [("dog", 1, "1 1 10 20")]))
    runner = CliRunner()
    result = runner.invoke(app, ["import", "voc", str(folder), "--out", str(tmp_path / "labels.csv"),
                                 "--boxes", str(tmp_path / "boxes.csv")])
    assert result.exit_code == 0, result.output
    assert "1 images × 1 classes, 1 boxes, 100% of (image, class) known" in " ".join(result.output.split())
    table = read_box_table(tmp_path / "boxes.csv", check_files=False)
    assert table.ignore[0].tolist() == [True] and (tmp_path / "labels.csv").read_text() == "image,dog\na.jpg,1\n"
    other = box_table(["b.jpg"], ["cat"], [[[0, 0, 1, 1]]], [[0]])
    from multitask.detection import write_box_table

    write_box_table(other, tmp_path / "other.csv")
    result = runner.invoke(app, ["import", "merge", str(tmp_path / "boxes.csv"), str(tmp_path / "other.csv"),
                                 "--boxes", "--out", str(tmp_path / "merged.parquet")])
    assert result.exit_code == 0, result.output
    merged = read_box_table(tmp_path / "merged.parquet", check_files=False)
    assert merged.classes == ("cat", "dog") and merged.known.tolist() == [[False, True], [True, False]]


def test_coco_lvis_style_presence_labels_match_the_boxes(tmp_path: Path) -> None:
    from multitask.importers import import_coco_boxes

    images = [{"id": 1, "file_name": "1.jpg", "neg_category_ids": [3]}, {"id": 2, "file_name": "2.jpg"},
              {"id": 3, "file_name": "3.jpg", "neg_category_ids": [1, 3]}]
    annotations = [{"id": 10, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}]
    categories = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]
    path = coco_json(tmp_path, images=images, annotations=annotations, categories=categories)
    assert rows(import_coco(path)) == [["1.jpg", "0", "1"], ["2.jpg", "?", "?"], ["3.jpg", "0", "0"]]
    assert import_coco_boxes(path).known.tolist() == [[True, True], [False, False], [True, True]]


def test_cli_import_openimages_and_coco_boxes(tmp_path: Path) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from multitask.cli import app
    from multitask.detection import read_box_table

    for image in ("000002b66c9c498e", "000002b97e5471a0", "0000048549557964"):
        Image.new("RGB", (20, 8)).save(tmp_path / f"{image}.jpg")
    runner = CliRunner()
    args = ["import", "openimages", str(write(tmp_path / "labels.csv", OI_LABELS)), "--out", str(tmp_path / "oi.csv"),
            "--descriptions", str(write(tmp_path / "classes.csv", OI_CLASSES))]
    result = runner.invoke(app, [*args, "--bbox", str(write(tmp_path / "bbox.csv", OI_BOXES))])
    assert "go together" in str(result.exception)  # a ConfigError: main() prints it and exits with 2
    result = runner.invoke(app, [*args, "--bbox", str(tmp_path / "bbox.csv"), "--boxes", str(tmp_path / "oi.json")])
    assert result.exit_code == 0, result.output
    table = read_box_table(tmp_path / "oi.json")  # COCO JSON, LVIS-style: the unknown classes survive the trip
    assert table.classes == ("Car", "Human eye") and table.known.tolist() == [[False, True], [True, False],
                                                                              [False, True]]
    result = runner.invoke(app, ["import", "coco", str(coco_json(tmp_path)), "--out", str(tmp_path / "c.csv"),
                                 "--boxes", str(tmp_path / "c_boxes.csv"), "--unannotated", "drop"])
    assert result.exit_code == 0, result.output
    assert len(read_box_table(tmp_path / "c_boxes.csv", check_files=False)) == 3


def test_merge_box_tables_with_different_image_roots(tmp_path: Path) -> None:
    from multitask.importers import merge_box_tables

    a = box_table(["x.jpg"], ["car"], [[[0, 0, 5, 5]]], [[0]], image_root=tmp_path / "one")
    b = box_table(["x.jpg"], ["sign"], [[]], [[]], image_root=tmp_path / "two")
    merged, _ = merge_box_tables([("a", a), ("b", b)])
    assert merged.images == (str(tmp_path / "one" / "x.jpg"), str(tmp_path / "two" / "x.jpg"))  # two files
    assert merged.known.tolist() == [[True, False], [False, True]]
    assert merged.with_image_root(tmp_path / "tables").images == ("../one/x.jpg", "../two/x.jpg")
