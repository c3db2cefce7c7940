"""Label tables (multitask.tables): parsing good and bad files, with errors naming file, line, column and value."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from multitask.errors import LabelError
from multitask.tables import check_trainable, label_table_from_arrays, read_label_table, seeded_split


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    for name in ("a.png", "b.png", "c.png", "d.png"):
        Image.new("RGB", (8, 6), (10, 20, 30)).save(tmp_path / name)
    return tmp_path


def test_known_and_unknown_spellings(images: Path) -> None:
    path = write(images / "labels.csv", "image,car,stop,light,walk\n"
                 "a.png,1,yes,TRUE,?\nb.png,0,no,false,\nc.png,1,Yes,NA,NaN\nd.png, 0 ,NO,n/a,null\n")
    table = read_label_table(path, val_fraction=0, test_fraction=0)
    assert table.tasks == ("car", "stop", "light", "walk")
    assert table.targets.tolist() == [[1, 1, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]
    assert table.known.tolist() == [[True, True, True, False], [True, True, True, False],
                                    [True, True, False, False], [True, True, False, False]]
    assert table.images[0] == str(images / "a.png")
    assert table.kind == "images"


def test_bad_value_names_file_line_column_and_value(images: Path) -> None:
    path = write(images / "labels.csv", "image,car,stop\na.png,1,0\nb.png,0,maybe\nc.png,1,0\n")
    with pytest.raises(LabelError) as error:
        read_label_table(path)
    assert (error.value.file, error.value.line, error.value.column, error.value.value) == (str(path), 3, "stop",
                                                                                            "maybe")
    assert "labels.csv, line 3, column 'stop': value 'maybe'" in str(error.value)


def test_minus_one_is_an_error_unless_asked(images: Path) -> None:
    path = write(images / "labels.csv", "image,car\na.png,1\nb.png,-1\nc.png,0\n")
    with pytest.raises(LabelError, match="minus_one_unknown"):
        read_label_table(path)
    table = read_label_table(path, minus_one_unknown=True, val_fraction=0, test_fraction=0)
    assert table.known[:, 0].tolist() == [True, False, True]


def test_split_column_is_used_and_validated(images: Path) -> None:
    path = write(images / "labels.csv", "image,car,split\na.png,1,train\nb.png,0,Validation\nc.png,1,test\n"
                 "d.png,0,train\n")
    assert read_label_table(path).split.tolist() == ["train", "val", "test", "train"]
    write(path, "image,car,split\na.png,1,train\nb.png,0,holdout\n")
    with pytest.raises(LabelError, match="split must be") as error:
        read_label_table(path)
    assert error.value.line == 3 and error.value.value == "holdout"


def test_seeded_split_is_reproducible_and_sized() -> None:
    a, b = seeded_split(100, 0.15, 0.2, seed=3), seeded_split(100, 0.15, 0.2, seed=3)
    assert (a == b).all()
    assert (a == "val").sum() == 15 and (a == "test").sum() == 20
    assert not (seeded_split(100, 0.15, 0.2, seed=4) == a).all()


def test_duplicate_column_names(images: Path) -> None:
    path = write(images / "labels.csv", "image,car,car\na.png,1,0\n")
    with pytest.raises(LabelError, match="duplicate column") as error:
        read_label_table(path)
    assert error.value.column == "car" and error.value.line == 1


def test_missing_image_is_an_error_or_skipped(images: Path) -> None:
    path = write(images / "labels.csv", "image,car\na.png,1\nmissing.png,0\nb.png,0\nc.png,1\n")
    with pytest.raises(LabelError, match="not found") as error:
        read_label_table(path)
    assert error.value.line == 3 and error.value.value == "missing.png"
    table = read_label_table(path, missing_images="skip", val_fraction=0, test_fraction=0)
    assert table.skipped == ("missing.png",)
    assert len(table) == 3 and table.targets[:, 0].tolist() == [1, 0, 1]


def test_unreadable_image(images: Path) -> None:
    (images / "broken.png").write_bytes(b"not an image at all")
    path = write(images / "labels.csv", "image,car\na.png,1\nbroken.png,0\n")
    with pytest.raises(LabelError, match="unreadable") as error:
        read_label_table(path)
    assert error.value.line == 3


def test_image_root_option(tmp_path: Path, images: Path) -> None:
    other = tmp_path / "tables"
    other.mkdir()
    path = write(other / "labels.csv", "image,car\na.png,1\nb.png,0\n")
    with pytest.raises(LabelError):
        read_label_table(path)
    assert read_label_table(path, image_root=images).images[1] == str(images / "b.png")


def test_not_a_table(tmp_path: Path) -> None:
    binary = tmp_path / "photo.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(LabelError, match="not a text table"):
        read_label_table(binary)
    with pytest.raises(LabelError, match="unsupported file type"):
        read_label_table(write(tmp_path / "labels.json", "{}"))
    with pytest.raises(LabelError, match="empty"):
        read_label_table(write(tmp_path / "empty.csv", ""))
    with pytest.raises(LabelError, match="not found"):
        read_label_table(tmp_path / "nope.csv")
    with pytest.raises(LabelError, match="no rows"):
        read_label_table(write(tmp_path / "header.csv", "image,car\n"), check_files=False)


def test_ragged_csv_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "ragged.csv", "image,car\na.png,1\n\nb.png,0,1,1\n")
    with pytest.raises(LabelError, match="too many") as error:
        read_label_table(path)
    assert error.value.line == 4


def test_feature_table_needs_to_know_its_tasks(tmp_path: Path) -> None:
    path = write(tmp_path / "features.csv", "x1,x2,car\n0.5,1,1\n0.1,2,0\n")
    with pytest.raises(LabelError, match="cannot tell inputs from tasks"):
        read_label_table(path)
    table = read_label_table(path, tasks=["car"], val_fraction=0, test_fraction=0)
    assert table.kind == "features" and table.feature_names == ("x1", "x2")
    assert table.features.dtype == np.float32
    np.testing.assert_array_equal(table.features, np.float32([[0.5, 1.0], [0.1, 2.0]]))


def test_non_numeric_feature(tmp_path: Path) -> None:
    path = write(tmp_path / "features.csv", "x1,x2,car\n0.5,1,1\n0.1,abc,0\n")
    with pytest.raises(LabelError, match="feature values must be numbers") as error:
        read_label_table(path, tasks=["car"])
    assert (error.value.line, error.value.column, error.value.value) == (3, "x2", "abc")


def test_unknown_task_column(images: Path) -> None:
    path = write(images / "labels.csv", "image,car\na.png,1\n")
    with pytest.raises(LabelError, match="task column 'bus' not found"):
        read_label_table(path, tasks=["bus"])


def test_parquet_with_booleans_and_nulls(images: Path) -> None:
    frame = pd.DataFrame({"image": ["a.png", "b.png", "c.png"], "car": [True, False, None],
                          "stop": [1.0, np.nan, 0.0], "split": ["train", "train", "test"]})
    path = images / "labels.parquet"
    frame.to_parquet(path)
    table = read_label_table(path)
    assert table.targets.tolist() == [[1, 1], [0, 0], [0, 0]]
    assert table.known.tolist() == [[True, True], [True, False], [False, True]]


def test_check_trainable_errors(images: Path) -> None:
    path = write(images / "labels.csv", "image,car,stop,split\na.png,1,?,train\nb.png,0,?,train\n"
                 "c.png,1,1,test\nd.png,0,0,test\n")
    with pytest.raises(LabelError, match="no known label in the training split") as error:
        check_trainable(read_label_table(path))
    assert error.value.column == "stop"
    path = write(images / "labels.csv", "image,car,stop,split\na.png,1,1,train\nb.png,0,1,train\nc.png,1,0,test\n")
    with pytest.raises(LabelError, match="only one class") as error:
        check_trainable(read_label_table(path))
    assert error.value.column == "stop"


def test_hide_labels_only_in_requested_splits() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((400, 3)) < 0.5).astype(float)
    split = np.array(["train"] * 200 + ["val"] * 100 + ["test"] * 100)
    table = label_table_from_arrays(rng.normal(size=(400, 2)), y, split=split)
    hidden = table.hide_labels(0.5, seed=1)
    assert hidden.known[300:].all()
    assert 0.4 < 1 - hidden.known[:300].mean() < 0.6
    assert (hidden.targets[hidden.known] == table.targets[hidden.known]).all()
    assert (hidden.known == table.hide_labels(0.5, seed=1).known).all()


def test_round_trip_through_to_frame(images: Path) -> None:
    path = write(images / "labels.csv", "image,car,stop,split\na.png,1,?,train\nb.png,0,1,val\nc.png,?,0,test\n")
    table = read_label_table(path)
    frame = table.to_frame()
    assert frame.columns.tolist() == ["image", "car", "stop", "split"]
    assert frame.to_numpy().tolist() == [["a.png", "1", "?", "train"], ["b.png", "0", "1", "val"],
                                         ["c.png", "?", "0", "test"]]


def test_select_tasks_drops_unlabelled_rows(images: Path) -> None:
    path = write(images / "labels.csv", "image,car,stop\na.png,1,?\nb.png,?,1\nc.png,0,0\n")
    table = read_label_table(path).select_tasks(["car"], drop_unlabelled=True)
    assert table.tasks == ("car",) and table.ids.tolist() == ["a.png", "c.png"]
