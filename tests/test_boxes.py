"""Box tables: the file format, its boundary validation (file, line, column, value), COCO JSON in and out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from multitask.detection.boxes import BoxTable, read_box_table, write_box_table
from multitask.detection.coco_json import read_coco_json, write_coco_json
from multitask.errors import LabelError

HEADER = "image,class,x1,y1,x2,y2"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def table_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def read(tmp_path: Path, *rows: str, header: str = HEADER, **options: object) -> BoxTable:
    options.setdefault("check_files", False)
    return read_box_table(write(tmp_path / "boxes.csv", table_text(*rows, header=header)), **options)


def error_of(tmp_path: Path, *rows: str, header: str = HEADER, **options: object) -> LabelError:
    with pytest.raises(LabelError) as info:
        read(tmp_path, *rows, header=header, **options)
    return info.value


def sample() -> BoxTable:
    return BoxTable.from_arrays(
        ["car", "person", "sign"], ["a.png", "b.png", "c.png", "d.png"],
        boxes=[[[1, 2, 11, 7], [0.5, 0, 3.25, 9]], [[4, 4, 8, 8]], [], []],
        labels=[["car", "person"], ["sign"], [], []],
        ignore=[[False, True], [False], [], []],
        known=[[True, True, True], [False, True, True], [True, False, False], [True, True, True]],
        split=["train", "val", "test", "train"], sizes=[[20, 10], [10, 10], [5, 5], [0, 0]])


def same(a: BoxTable, b: BoxTable) -> None:
    assert a.classes == b.classes and a.images == b.images
    assert a.split.tolist() == b.split.tolist() and a.known.tolist() == b.known.tolist()
    for x, y in zip(a.boxes, b.boxes, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-4)
    assert [x.tolist() for x in a.labels] == [y.tolist() for y in b.labels]
    assert [x.tolist() for x in a.ignore] == [y.tolist() for y in b.ignore]


# ---------------------------------------------------------------------------------------------- the format


def test_rows_boxes_image_rows_and_defaults(tmp_path: Path) -> None:
    table = read(tmp_path, "a.png,car,0,0,10,5", "a.png,sign,2,2,4,4", "b.png,,,,,", "c.png,car,1,1,2,2")
    assert table.classes == ("car", "sign") and table.images == ("a.png", "b.png", "c.png")
    assert table.known.all()  # default: every class of the file known in every image listed
    assert [len(b) for b in table.boxes] == [2, 0, 1]  # b.png is verified empty
    assert table.boxes[0].dtype == np.float32 and table.labels[0].tolist() == [0, 1]
    assert table.boxes[2].tolist() == [[1, 1, 2, 2]]
    assert set(table.split.tolist()) <= {"train", "val", "test"} and table.image_root == tmp_path


def test_known_column_unknown_class_and_unknown_image(tmp_path: Path) -> None:
    header = HEADER + ",known"
    table = read(tmp_path, "a.png,car,0,0,10,5,", "a.png,sign,,,,,0",  # sign unknown in a
                 "b.png,,,,,,0", "b.png,person,,,,,1",  # b: everything unknown except person (verified absent)
                 "c.png,,,,,,0", "c.png,sign,1,1,3,3,",  # c: only sign known (a box)
                 "d.png,,,,,,", header=header)
    assert table.classes == ("car", "person", "sign")
    assert table.known.tolist() == [[True, True, False], [False, True, False], [False, False, True],
                                    [True, True, True]]


def test_ignore_and_split_columns(tmp_path: Path) -> None:
    table = read(tmp_path, "a.png,car,0,0,10,5,1,train", "a.png,car,1,1,3,3,0,train", "b.png,,,,,,,test",
                 header=HEADER + ",ignore,split")
    assert table.ignore[0].tolist() == [True, False] and table.split.tolist() == ["train", "test"]
    assert table.counts().tolist() == [1] and table.counts(include_ignored=True).tolist() == [2]


def test_known_file_and_splits_file(tmp_path: Path) -> None:
    write(tmp_path / "known.csv", "image,class,known\na.png,sign,0\nb.png,,0\nb.png,car,1\n")
    write(tmp_path / "labels.csv", "image,car,split\na.png,1,val\nb.png,0,test\n")
    table = read(tmp_path, "a.png,car,0,0,10,5", "b.png,sign,,,,", known=tmp_path / "known.csv",
                 splits=tmp_path / "labels.csv")
    assert table.known.tolist() == [[True, False], [True, False]] and table.split.tolist() == ["val", "test"]
    write(tmp_path / "labels.csv", "image,car,split\na.png,1,val\n")
    error = error_of(tmp_path, "a.png,car,0,0,10,5", "b.png,sign,,,,", splits=tmp_path / "labels.csv")
    assert (error.line, error.column, error.value) == (3, "image", "b.png") and "splits table" in error.reason
    write(tmp_path / "known.csv", "image,class,known\na.png,,0\n")  # all unknown but its boxed car
    assert read(tmp_path, "a.png,car,0,0,10,5", "b.png,sign,,,,", known=tmp_path / "known.csv").known[0].tolist() == [
        True, False]
    write(tmp_path / "known.csv", "image,class,known\na.png,car,0\n")
    error = error_of(tmp_path, "a.png,car,0,0,10,5", known=tmp_path / "known.csv")
    assert (error.line, error.column) == (2, "known") and "has a box" in error.reason
    write(tmp_path / "known.csv", "image,class,known\nz.png,sign,0\n")
    error = error_of(tmp_path, "a.png,car,0,0,10,5", known=tmp_path / "known.csv")
    assert error.file == str(tmp_path / "known.csv") and error.line == 2 and error.value == "z.png"


def test_seeded_split_without_split(tmp_path: Path) -> None:
    rows = [f"{i}.png,car,0,0,1,1" for i in range(20)]
    a, b = read(tmp_path, *rows, split_seed=3), read(tmp_path, *rows, split_seed=3)
    assert a.split.tolist() == b.split.tolist() and (a.split == "test").sum() == 3


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".json"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    table = sample()
    path = tmp_path / f"boxes{suffix}"
    write_box_table(table, path)
    back = read_box_table(path, check_files=False)
    same(table, back)
    assert back.sizes is not None and back.sizes[:3].tolist() == [[20, 10], [10, 10], [5, 5]]


def test_round_trip_mostly_unknown_image_and_unused_class(tmp_path: Path) -> None:
    table = BoxTable.from_arrays(["a", "b", "c", "d"], ["x.png", "y.png"], boxes=[[[0, 0, 1, 1]], []],
                                 labels=[[0], []], known=[[True, False, False, False], [True, True, True, True]])
    write_box_table(table, tmp_path / "t.csv")
    same(table, read_box_table(tmp_path / "t.csv", check_files=False))
    assert (tmp_path / "t.csv").read_text().splitlines() == [
        "image,class,x1,y1,x2,y2,known,split",
        "x.png,,,,,,0,train",  # most classes unknown in x.png: one image row says so
        "x.png,a,0,0,1,1,,train",
        "y.png,,,,,,,train",  # verified empty
        "y.png,b,,,,,1,train", "y.png,c,,,,,1,train", "y.png,d,,,,,1,train"]  # classes without a box kept


# ---------------------------------------------------------------------------------------------- errors


def test_missing_column(tmp_path: Path) -> None:
    error = error_of(tmp_path, "a.png,car,0,0,10", header="image,class,x1,y1,x2")
    assert error.line == 1 and "y2" in error.reason


def test_degenerate_box(tmp_path: Path) -> None:
    error = error_of(tmp_path, "a.png,car,0,0,10,5", "a.png,car,5,0,5,9")
    assert (error.line, error.column, float(error.value)) == (3, "x2", 5) and "degenerate" in error.reason
    error = error_of(tmp_path, "a.png,car,0,6,10,5")
    assert (error.line, error.column) == (2, "y2")


def test_nan_and_not_a_number(tmp_path: Path) -> None:
    error = error_of(tmp_path, "a.png,car,0,0,10,5", "b.png,car,nan,0,10,5")
    assert (error.line, error.column, str(error.value)) == (3, "x1", "nan") and "finite" in error.reason
    error = error_of(tmp_path, "a.png,car,0,0,ten,5")
    assert (error.line, error.column, error.value) == (2, "x2", "ten") and "number" in error.reason


def test_partial_box_and_box_without_class(tmp_path: Path) -> None:
    error = error_of(tmp_path, "a.png,car,0,0,,5")
    assert (error.line, error.column) == (2, "x2") and "all of" in error.reason
    error = error_of(tmp_path, "a.png,car,0,0,1,1", "b.png,,0,0,1,1")
    assert (error.line, error.column) == (3, "class")
    error = error_of(tmp_path, ",car,0,0,1,1")
    assert (error.line, error.column) == (2, "image")


def test_box_outside_image_by_size_columns(tmp_path: Path) -> None:
    header = HEADER + ",width,height"
    assert read(tmp_path, "a.png,car,0,0,20.2,10,20,10", header=header).n_boxes == 1  # within the 1 px tolerance
    error = error_of(tmp_path, "a.png,car,0,0,10,5,20,10", "b.png,car,0,0,10,12,20,10", header=header)
    assert (error.line, error.column, float(error.value)) == (3, "y2", 12) and "below the image" in error.reason
    error = error_of(tmp_path, "a.png,car,-3,0,10,5,20,10", header=header)
    assert (error.line, error.column) == (2, "x1") and "left of" in error.reason
    error = error_of(tmp_path, "a.png,car,0,0,1,1,20,10", "a.png,car,0,0,1,1,21,10", header=header)
    assert (error.line, error.column) == (3, "width") and "disagree" in error.reason


def test_box_outside_image_by_the_image_file(tmp_path: Path) -> None:
    Image.new("RGB", (16, 8)).save(tmp_path / "a.png")
    table = read(tmp_path, "a.png,car,0,0,16,8", check_files=True)
    assert table.sizes.tolist() == [[16, 8]] and table.paths() == [tmp_path / "a.png"]
    error = error_of(tmp_path, "a.png,car,0,0,16,9.5", check_files=True)
    assert (error.line, error.column, float(error.value)) == (2, "y2", 9.5)
    error = error_of(tmp_path, "a.png,car,0,0,1,1", "missing.png,,,,,", check_files=True)
    assert (error.line, error.column, error.value) == (3, "image", "missing.png") and "not found" in error.reason


def test_unknown_class_name_with_class_list(tmp_path: Path) -> None:
    error = error_of(tmp_path, "a.png,car,0,0,1,1", "a.png,cat,0,0,1,1", classes=["car", "sign"])
    assert (error.line, error.column, error.value) == (3, "class", "cat")
    table = read(tmp_path, "a.png,car,0,0,1,1", classes=["sign", "car"])
    assert table.classes == ("sign", "car") and table.labels[0].tolist() == [1]


def test_box_of_a_class_marked_unknown(tmp_path: Path) -> None:
    header = HEADER + ",known"
    error = error_of(tmp_path, "a.png,car,,,,,0", "a.png,car,0,0,1,1,", header=header)
    assert (error.line, error.column) == (2, "known") and "line 3" in error.reason and "box" in error.reason
    error = error_of(tmp_path, "a.png,car,0,0,1,1,0", header=header)
    assert (error.line, error.column) == (2, "known")
    error = error_of(tmp_path, "a.png,,,,,,0", "a.png,,,,,,1", header=header)
    assert error.line == 2 and "both" in error.reason


def test_bad_split_and_disagreeing_split(tmp_path: Path) -> None:
    header = HEADER + ",split"
    error = error_of(tmp_path, "a.png,car,0,0,1,1,holdout", header=header)
    assert (error.line, error.column, error.value) == (2, "split", "holdout")
    error = error_of(tmp_path, "a.png,car,0,0,1,1,train", "a.png,car,0,0,2,2,test", header=header)
    assert (error.line, error.column) == (3, "split") and "disagree" in error.reason


def test_bad_known_and_ignore_values(tmp_path: Path) -> None:
    error = error_of(tmp_path, "a.png,car,0,0,1,1,maybe", header=HEADER + ",ignore")
    assert (error.line, error.column, error.value) == (2, "ignore", "maybe")
    error = error_of(tmp_path, "a.png,car,0,0,1,1,", "a.png,sign,,,,,?", header=HEADER + ",known")
    assert (error.line, error.column, error.value) == (3, "known", "?") and "0 (unknown)" in error.reason


def test_from_arrays_errors() -> None:
    with pytest.raises(LabelError, match=r"image 1 \('b.png'\), box 0: degenerate box"):
        BoxTable.from_arrays(["car"], ["a.png", "b.png"], boxes=[[[0, 0, 1, 1]], [[0, 0, 0, 1]]],
                             labels=[[0], [0]])
    with pytest.raises(LabelError, match="marked unknown"):
        BoxTable.from_arrays(["car"], ["a.png"], boxes=[[[0, 0, 1, 1]]], labels=[[0]], known=[[False]])
    with pytest.raises(LabelError, match="class not in"):
        BoxTable.from_arrays(["car"], ["a.png"], boxes=[[[0, 0, 1, 1]]], labels=[["cat"]])
    with pytest.raises(LabelError, match="right of the image"):
        BoxTable.from_arrays(["car"], ["a.png"], boxes=[[[0, 0, 30, 1]]], labels=[[0]], sizes=[[20, 20]])
    with pytest.raises(LabelError, match="split must be"):
        BoxTable.from_arrays(["car"], ["a.png"], boxes=[[]], labels=[[]], split=["holdout"])


# ---------------------------------------------------------------------------------------------- views


def test_subset_only_classes_and_hide() -> None:
    table = sample()
    part = table.subset([3, 0])
    assert part.images == ("d.png", "a.png") and part.boxes[1].shape == (2, 4)
    assert table.part("val").images == ("b.png",)
    sign = table.only_classes("sign")
    assert sign.classes == ("sign",) and [lab.tolist() for lab in sign.labels] == [[], [0], [], []]
    assert sign.known[:, 0].tolist() == [True, True, False, True]
    swapped = table.only_classes(["person", "car"])
    assert swapped.labels[0].tolist() == [1, 0] and swapped.ignore[0].tolist() == [False, True]
    hidden = table.hide_annotations(1.0, seed=0)
    assert not hidden.known[table.split != "test"].any() and hidden.known[2].tolist() == [True, False, False]
    assert hidden.n_boxes == 0 and hidden.unknown_as_background().known.all()
    with pytest.raises(LabelError, match="unknown class"):
        table.only_classes(["dog"])


# ---------------------------------------------------------------------------------------------- COCO JSON


def coco(tmp_path: Path, **overrides: object) -> Path:
    data = {"images": [{"id": 1, "file_name": "1.jpg", "width": 40, "height": 30},
                       {"id": 2, "file_name": "2.jpg", "width": 40, "height": 30}],
            "categories": [{"id": 3, "name": "person"}, {"id": 7, "name": "car"}],
            "annotations": [{"id": 10, "image_id": 1, "category_id": 7, "bbox": [2, 3, 10, 5], "iscrowd": 0},
                            {"id": 11, "image_id": 1, "category_id": 3, "bbox": [0, 0, 40, 30], "iscrowd": 1}]}
    data.update(overrides)
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_json_reads_boxes_crowd_and_sizes(tmp_path: Path) -> None:
    table = read_box_table(coco(tmp_path), check_files=False)
    assert table.classes == ("car", "person") and table.images == ("1.jpg", "2.jpg")
    assert table.boxes[0].tolist() == [[2, 3, 12, 8], [0, 0, 40, 30]] and table.labels[0].tolist() == [0, 1]
    assert table.ignore[0].tolist() == [False, True] and table.known.all() and table.sizes.tolist()[0] == [40, 30]


def test_coco_json_lvis_federated(tmp_path: Path) -> None:
    images = [{"id": 1, "file_name": "1.jpg", "neg_category_ids": [3], "not_exhaustive_category_ids": []},
              {"id": 2, "file_name": "2.jpg", "neg_category_ids": [], "not_exhaustive_category_ids": [7]}]
    annotations = [{"id": 10, "image_id": 1, "category_id": 7, "bbox": [2, 3, 10, 5]},
                   {"id": 11, "image_id": 2, "category_id": 7, "bbox": [2, 3, 10, 5]}]
    table = read_coco_json(coco(tmp_path, images=images, annotations=annotations))
    assert table.known.tolist() == [[True, True], [False, False]]  # 2.jpg: car not exhaustive, person never checked
    assert [len(b) for b in table.boxes] == [1, 0]


def test_coco_json_errors(tmp_path: Path) -> None:
    bad = [{"id": 10, "image_id": 1, "category_id": 7, "bbox": [2, 3, 0, 5]}]
    with pytest.raises(LabelError) as info:
        read_coco_json(coco(tmp_path, annotations=bad))
    assert info.value.column == "bbox" and "annotations[0] (id 10)" in info.value.reason
    assert "width must be positive" in info.value.reason
    outside = [{"id": 10, "image_id": 2, "category_id": 7, "bbox": [30, 3, 20, 5]}]
    with pytest.raises(LabelError, match=r"'2.jpg': box lies right of the image \(width 40\)"):
        read_coco_json(coco(tmp_path, annotations=outside))
    with pytest.raises(LabelError, match=r"bbox must be \[x, y, width, height\]"):
        read_coco_json(coco(tmp_path, annotations=[{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 2]}]))
    with pytest.raises(LabelError, match="category_id not in"):
        read_coco_json(coco(tmp_path, annotations=[{"id": 1, "image_id": 1, "category_id": 99, "bbox": [0, 0, 1, 1]}]))
    with pytest.raises(LabelError, match="class not among"):
        read_coco_json(coco(tmp_path), classes=["unicorn"])


def test_coco_results_ids_match_the_dataset(tmp_path: Path) -> None:
    table = sample()
    write_coco_json(table, tmp_path / "gt.json")
    predictions = [{"boxes": [[1, 2, 11, 7]], "scores": [0.5], "labels": [2]}, {"boxes": [], "scores": [],
                                                                               "labels": []}] + [{}] * 2
    write_coco_json(predictions, tmp_path / "dt.json", table=table)
    results = json.loads((tmp_path / "dt.json").read_text())
    assert results == [{"image_id": 1, "category_id": 3, "bbox": [1.0, 2.0, 10.0, 5.0], "score": 0.5}]
    gt = json.loads((tmp_path / "gt.json").read_text())
    assert gt["images"][0]["file_name"] == "a.png" and gt["categories"][2] == {"id": 3, "name": "sign"}


def test_round_trip_quotes_names_that_need_it_and_empty_tables(tmp_path: Path) -> None:
    table = BoxTable.from_arrays(["a, b", 'say "hi"'], ["x,1.png", "y.png"], boxes=[[[0, 0, 1, 1]], []],
                                 labels=[[1], []])
    write_box_table(table, tmp_path / "q.csv")
    same(table, read_box_table(tmp_path / "q.csv", check_files=False))
    empty = BoxTable.from_arrays(["a"], [], boxes=[], labels=[])
    assert len(empty) == 0 and empty.n_boxes == 0 and empty.subset([]).known.shape == (0, 1)
    with pytest.raises(LabelError, match="no rows"):
        read(tmp_path)


def test_typed_parquet_from_pandas(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"image": ["a.png", "a.png", "b.png"], "class": ["car", "car", None],
                          "x1": [0, 2, None], "y1": [0, 2, None], "x2": [4, 6, None], "y2": [3, 9, None],
                          "ignore": [False, True, None], "split": ["train", "train", "test"]})
    frame.to_parquet(tmp_path / "t.parquet")
    table = read_box_table(tmp_path / "t.parquet", check_files=False)
    assert table.boxes[0].tolist() == [[0, 0, 4, 3], [2, 2, 6, 9]] and table.ignore[0].tolist() == [False, True]
    assert table.images == ("a.png", "b.png") and table.split.tolist() == ["train", "test"]
    frame.loc[1, "y2"] = float("inf")
    frame.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(LabelError) as info:
        read_box_table(tmp_path / "t.parquet", check_files=False)
    assert (info.value.line, info.value.column) == (3, "y2") and "finite" in info.value.reason
