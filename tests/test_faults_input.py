"""Malformed input, one case per test: every one is a UserError whose message names the file, line, column and
value where they exist; and end to end through `multitask train`, exit code 2 and no traceback."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from multitask.errors import UserError
from multitask.importers import merge_label_tables, write_label_table
from multitask.tables import label_table_from_arrays, label_table_from_frame, read_label_table


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("a.png", "b.png", "c.png", "d.png"):
        Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / name)
    return tmp_path


def refused(call: object, *, file: object = None, line: int | None = None, column: str | None = None,
            value: object = None, match: str | None = None) -> UserError:
    with pytest.raises(UserError) as info:
        call()  # type: ignore[operator]
    error = info.value
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    if file is not None:
        assert str(file) in text
    if line is not None:
        assert error.line == line and f"line {line}" in text
    if column is not None:
        assert error.column == column and f"column {column!r}" in text
    if value is not None:
        assert str(error.value) == str(value) and repr(str(value)) in text
    if match is not None:
        assert match in text, text
    return error


# ------------------------------------------------------------------------------------------ label values

BAD_LABELS = ["1.0", "0.0", "t", "f", "y", "n", "none", "None", "2", "+1", "01", "maybe", "yes please", "TRUE1",
              "１", "nan?", "-1", "-1.0", "0x1", "<NA>"]


@pytest.mark.parametrize("value", BAD_LABELS)
def test_label_outside_the_vocabulary(folder: Path, value: str) -> None:
    path = folder / "labels.csv"
    path.write_text(f"image,car,stop\na.png,1,0\nb.png,0,{value}\nc.png,1,0\n", encoding="utf-8")
    refused(lambda: read_label_table(path), file=path, line=3, column="stop", value=value, match="not a label")


@pytest.mark.parametrize("value", ["1", "0", "TRUE", "false", " Yes ", "no", "?", "", "NA", "n/a", "NaN", "NULL"])
def test_label_inside_the_vocabulary(folder: Path, value: str) -> None:
    path = folder / "labels.csv"
    path.write_text(f"image,car\na.png,1\nb.png,{value}\nc.png,0\n")
    table = read_label_table(path, val_fraction=0, test_fraction=0)
    expected = {"1": (1, True), "true": (1, True), "yes": (1, True), "0": (0, True), "false": (0, True),
                "no": (0, True)}.get(value.strip().lower(), (0, False))
    assert (table.targets[1, 0], table.known[1, 0]) == expected


def test_minus_one_names_the_option(folder: Path) -> None:
    path = folder / "labels.csv"
    path.write_text("image,car\na.png,1\nb.png,-1\n")
    refused(lambda: read_label_table(path), line=3, column="car", value="-1", match="minus_one_unknown")


def test_bad_label_after_blank_lines_and_a_quoted_line_break(folder: Path) -> None:
    path = folder / "labels.csv"
    path.write_text('image,car,note\n\na.png,1,"two\nlines"\n\nb.png,perhaps,x\n')
    refused(lambda: read_label_table(path, tasks=["car"], input_column="image"), line=6, column="car",
            value="perhaps")


def test_bad_label_far_into_a_big_file(tmp_path: Path) -> None:
    rows = ["x,car"] + [f"{i},1" if i % 2 else f"{i},0" for i in range(200_000)]
    rows[150_001] = "150000,t"
    path = tmp_path / "big.csv"
    path.write_text("\n".join(rows) + "\n")
    refused(lambda: read_label_table(path, tasks=["car"]), line=150_002, column="car", value="t")


def test_field_longer_than_the_csv_module_limit_is_read(folder: Path) -> None:
    path = folder / "labels.csv"
    path.write_text(f"image,car,note\na.png,1,{'x' * 200_000}\nb.png,0,y\n")
    table = read_label_table(path, tasks=["car"], input_column="image")
    assert table.known.all()
    path.write_text(f"image,car,note\na.png,1,{'x' * 200_000}\nb.png,bad,y\n")
    refused(lambda: read_label_table(path, tasks=["car"], input_column="image"), line=3, column="car", value="bad")


# ------------------------------------------------------------------------------------------ ragged rows

RAGGED = {
    "too few": ("image,car,stop\na.png,1,0\nb.png,0\n", 3, "too few"),
    "too many": ("image,car,stop\na.png,1,0\nb.png,0,1,1\n", 3, "too many"),
    "too many after a blank line": ("image,car\na.png,1\n\nb.png,0,1\n", 4, "too many"),
    "one cell": ("image,car,stop\na.png,1,0\nb.png\n", 3, "too few"),
    "last line without newline": ("image,car\na.png,1\nb.png,0,0", 3, "too many"),
    "trailing comma": ("image,car\na.png,1,\n", 2, "too many"),
}


@pytest.mark.parametrize("case", list(RAGGED))
def test_ragged_row_names_its_line(folder: Path, case: str) -> None:
    text, line, what = RAGGED[case]
    path = folder / "labels.csv"
    path.write_text(text)
    refused(lambda: read_label_table(path), file=path, line=line, match=what)


# ------------------------------------------------------------------------------------------ splits

@pytest.mark.parametrize("value", ["holdout", "", "trainn", "5"])
def test_bad_split_value(folder: Path, value: str) -> None:
    path = folder / "labels.csv"
    path.write_text(f"image,car,split\na.png,1,train\nb.png,0,{value}\n")
    refused(lambda: read_label_table(path), line=3, column="split", value=value, match="split must be")


# ------------------------------------------------------------------------------------------ features

BAD_FEATURES = {"abc": "must be numbers", "": "missing", "nan": "NaN", "inf": "infinite", "-inf": "infinite",
                "1e400": "infinite", "3e38": "too large", "-2e38": "too large", "1e39": "too large", "1,2": None,
                "0x10": "must be numbers", "1_000": "must be numbers"}


@pytest.mark.parametrize("value", list(BAD_FEATURES))
def test_bad_feature_value_names_the_cell(tmp_path: Path, value: str) -> None:
    path = tmp_path / "features.csv"
    cell = f'"{value}"' if "," in value else value
    path.write_text(f"x1,x2,car\n0.5,1,1\n0.1,{cell},0\n")
    error = refused(lambda: read_label_table(path, tasks=["car"]), file=path, line=3)
    if BAD_FEATURES[value] is not None:
        assert error.column == "x2" and BAD_FEATURES[value] in str(error)


def test_large_but_allowed_feature_keeps_finite_statistics(tmp_path: Path) -> None:
    from multitask.data.datamodule import feature_statistics

    path = tmp_path / "features.csv"
    path.write_text("x1,car\n1.6e38,1\n-1.6e38,0\n1e20,1\n")
    table = read_label_table(path, tasks=["car"], val_fraction=0, test_fraction=0)
    mean, std = feature_statistics(table)
    assert np.isfinite(mean.numpy()).all() and np.isfinite(std.numpy()).all() and float(std[0]) > 1e38


@pytest.mark.parametrize("bad", [np.inf, np.nan, 3e38])
def test_arrays_with_unusable_features(bad: float) -> None:
    x = np.ones((3, 2))
    x[2, 1] = bad
    refused(lambda: label_table_from_arrays(x, np.array([[1.0], [0.0], [1.0]])), column="x1", match="row 2")


def test_predict_table_with_non_finite_features_is_refused(tmp_path: Path) -> None:
    from multitask.predict import _table_inputs

    path = tmp_path / "new.csv"
    path.write_text("x1,x2\n0.5,1\n0.1,inf\n")
    run = SimpleNamespace(input_kind="features", feature_names=("x1", "x2"), tasks=("a",),
                          config=SimpleNamespace(data=SimpleNamespace(input_column=None)))
    refused(lambda: _table_inputs(run, path, None), file=path, line=3, column="x2", match="infinite")
    path.write_text("x1,x2\n0.5,1\n0.1,\n")
    refused(lambda: _table_inputs(run, path, None), line=3, column="x2", match="missing")
    path.write_text("x1\n0.5\n")
    refused(lambda: _table_inputs(run, path, None), file=path, match="x2")


def test_arff_missing_feature_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "t.arff"
    path.write_text("@relation t\n@attribute x numeric\n@attribute a {0,1}\n@attribute b {0,1}\n@data\n"
                    "1,0,1\n?,1,0\n")
    refused(lambda: read_label_table(path), file=path, line=7, column="x", match="NaN")


# ------------------------------------------------------------------------------------------ files and headers

def test_duplicate_column(folder: Path) -> None:
    path = folder / "labels.csv"
    path.write_text("image,car,car\na.png,1,0\n")
    refused(lambda: read_label_table(path), file=path, line=1, column="car", match="duplicate")


def test_columns_differing_only_in_spaces(folder: Path) -> None:
    path = folder / "labels.csv"
    path.write_text('image,car," car "\na.png,1,0\n')
    refused(lambda: read_label_table(path), file=path, line=1, column="car", match="surrounding spaces")


@pytest.mark.parametrize("text, match", [("", "empty"), ("\n\n", "empty"), ("image,car\n", "no rows")])
def test_empty_tables(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    refused(lambda: read_label_table(path, check_files=False), file=path, match=match)


def test_binary_file_with_a_csv_name(tmp_path: Path) -> None:
    path = tmp_path / "photo.csv"
    path.write_bytes(bytes(range(256)) * 8)
    refused(lambda: read_label_table(path), file=path, match="not a text table")


def test_latin1_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes("image,car\ncaf\xe9.png,1\n".encode("latin-1"))
    refused(lambda: read_label_table(path), file=path, match="UTF-8")


@pytest.mark.parametrize("name", ["labels.json", "labels.xlsx", "labels"])
def test_unsupported_suffix(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("{}")
    refused(lambda: read_label_table(path), file=path, match="unsupported file type")


def test_missing_file_and_folder(tmp_path: Path) -> None:
    refused(lambda: read_label_table(tmp_path / "nope.csv"), file=tmp_path / "nope.csv", match="not found")
    (tmp_path / "dir.csv").mkdir()
    refused(lambda: read_label_table(tmp_path / "dir.csv"), match="folder")


def test_damaged_parquet(tmp_path: Path) -> None:
    path = tmp_path / "labels.parquet"
    path.write_bytes(b"PAR1 definitely not parquet")
    refused(lambda: read_label_table(path), file=path, match="Parquet")


@pytest.mark.parametrize("values, bad", [(["1", "0", "perhaps"], "perhaps"), ([1, 0, 2], 2), ([1.0, 0.5, 0.0], 0.5)])
def test_parquet_bad_typed_or_text_values(folder: Path, values: list, bad: object) -> None:
    path = folder / "labels.parquet"
    pd.DataFrame({"image": ["a.png", "b.png", "c.png"], "car": values}).to_parquet(path)
    refused(lambda: read_label_table(path), file=path, column="car", value=bad, match="not a label")


def test_parquet_column_type_that_cannot_hold_labels(folder: Path) -> None:
    path = folder / "labels.parquet"
    pd.DataFrame({"image": ["a.png"], "car": pd.to_datetime(["2024-01-01"])}).to_parquet(path)
    refused(lambda: read_label_table(path), file=path, column="car", match="cannot hold labels")


def test_parquet_typed_columns_are_understood(folder: Path) -> None:
    path = folder / "labels.parquet"
    pd.DataFrame({"image": ["a.png", "b.png", "c.png"], "b": [True, None, False], "i": pd.array([1, None, 0]),
                  "f": [1.0, np.nan, 0.0]}).to_parquet(path)
    table = read_label_table(path, val_fraction=0, test_fraction=0)
    assert table.known.tolist() == [[True] * 3, [False] * 3, [True] * 3]
    assert table.targets.tolist() == [[1] * 3, [0] * 3, [0] * 3]


# ------------------------------------------------------------------------------------------ columns and tasks

@pytest.mark.parametrize("options, match", [({"tasks": ["bus"]}, "task column 'bus' not found"),
                                            ({"input_column": "path"}, "input column 'path' not found"),
                                            ({"feature_columns": ["x9"], "tasks": ["car"]}, "feature column"),
                                            ({"tasks": []}, "no task columns")])
def test_missing_columns(folder: Path, options: dict, match: str) -> None:
    path = folder / "labels.csv"
    path.write_text("image,car\na.png,1\n")
    refused(lambda: read_label_table(path, **options), file=path, match=match)


def test_cannot_tell_inputs_from_tasks(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x1,car\n0.5,1\n")
    refused(lambda: read_label_table(path), file=path, match="cannot tell inputs from tasks")


def test_untrainable_tasks(folder: Path) -> None:
    from multitask.tables import check_trainable

    path = folder / "labels.csv"
    path.write_text("image,car,stop,split\na.png,1,?,train\nb.png,0,?,train\nc.png,1,1,test\n")
    refused(lambda: check_trainable(read_label_table(path)), file=path, column="stop", match="no known label")


# ------------------------------------------------------------------------------------------ images

def bomb_png(path: Path, side: int = 30000) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))
                     + chunk(b"IEND", b""))
    return path


def truncated(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    return path


IMAGES = {
    "missing": (lambda f: None, "image file not found"),
    "not an image": (lambda f: (f / "x.png").write_bytes(b"not an image"), "unreadable"),
    "empty file": (lambda f: (f / "x.png").write_bytes(b""), "unreadable"),
    "bomb": (lambda f: bomb_png(f / "x.png"), "decompression-bomb"),
}


@pytest.mark.parametrize("case", list(IMAGES))
def test_bad_image_names_file_line_and_value(folder: Path, case: str) -> None:
    make, match = IMAGES[case]
    make(folder)
    path = folder / "labels.csv"
    path.write_text("image,car\na.png,1\nx.png,0\n")
    refused(lambda: read_label_table(path), file=path, line=3, column="image", value="x.png", match=match)


def test_empty_image_path(folder: Path) -> None:
    path = folder / "labels.csv"
    path.write_text('image,car\na.png,1\n"  ",0\n')
    refused(lambda: read_label_table(path), line=3, column="image", match="empty image path")


@pytest.mark.parametrize("case", ["missing", "not an image", "bomb", "truncated"])
def test_skip_drops_and_lists_bad_images(folder: Path, case: str) -> None:
    if case == "truncated":
        truncated(folder / "x.png")
    else:
        IMAGES[case][0](folder)
    path = folder / "labels.csv"
    path.write_text("image,car\na.png,1\nx.png,0\nb.png,0\n")
    table = read_label_table(path, missing_images="skip", val_fraction=0, test_fraction=0)
    assert table.skipped == ("x.png",) and table.ids.tolist() == ["a.png", "b.png"]


# ------------------------------------------------------------------------------------------ merge and importers

def test_merge_uses_the_train_vocabulary(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("image,car,dog\nx.jpg,yes,NA\ny.jpg,False,?\n")
    merged, _ = merge_label_tables({"a": tmp_path / "a.csv"})
    assert merged.values.tolist() == [["x.jpg", "1", "?"], ["y.jpg", "0", "?"]]


@pytest.mark.parametrize("value", ["1.0", "t", "none", "maybe"])
def test_merge_refuses_values_train_refuses(tmp_path: Path, value: str) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"image,car\nx.jpg,1\ny.jpg,{value}\n")
    refused(lambda: merge_label_tables({"a": path}), file=path, line=3, column="car", value=value)


def test_merge_refuses_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("image,car,dog\nx.jpg,1,0\ny.jpg,0\n")
    refused(lambda: merge_label_tables({"a": path}), file=path, line=3, match="too few")


def test_merge_refuses_duplicate_and_space_different_task_names(tmp_path: Path) -> None:
    frame = pd.DataFrame([["x.jpg", "1", "0"]], columns=["image", "car", "car"])
    refused(lambda: merge_label_tables({"a": frame}), column="car", match="duplicate")
    frame = pd.DataFrame([["x.jpg", "1", "0"]], columns=["image", "car", "car "])
    refused(lambda: merge_label_tables({"a": frame}), column="car", match="surrounding spaces")
    path = tmp_path / "a.csv"
    path.write_text("image,car, car\nx.jpg,1,0\n")
    refused(lambda: merge_label_tables({"a": path}), file=path, line=1, column="car")


def test_merge_duplicate_input_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("image,car\nx.jpg,1\nx.jpg,0\n")
    refused(lambda: merge_label_tables({"a": path}), file=path, line=3, column="image", value="x.jpg")


def test_importer_refuses_to_overwrite_its_input(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("image,car\nx.jpg,1\n")
    merged, _ = merge_label_tables({"a": path})
    refused(lambda: write_label_table(merged, path, inputs=[path]), file=path, match="overwrite")
    assert path.read_text() == "image,car\nx.jpg,1\n"


def test_frame_with_bad_label_names_the_row(tmp_path: Path) -> None:
    frame = pd.DataFrame({"image": ["a.png", "b.png"], "car": ["1", "t"]})
    refused(lambda: label_table_from_frame(frame, check_files=False), line=3, column="car", value="t")


# ------------------------------------------------------------------------------------------ end to end

def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "multitask.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120)


CLI_CASES = {
    "bad label": ("labels.csv", "image,car\na.png,1\nb.png,1.0\n", ["line 3", "column 'car'", "'1.0'"]),
    "ragged row": ("labels.csv", "image,car\na.png,1\nb.png,0,1\n", ["line 3", "too many"]),
    "bad feature": ("features.csv", "x,car\n1,1\ninf,0\n", ["line 3", "column 'x'", "infinite"]),
    "bomb image": ("labels.csv", "image,car\na.png,1\nbomb.png,0\n", ["line 3", "bomb.png", "decompression-bomb"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CLI_CASES))
def test_train_refuses_with_exit_2_and_no_traceback(folder: Path, case: str) -> None:
    name, text, expected = CLI_CASES[case]
    bomb_png(folder / "bomb.png")
    (folder / name).write_text(text)
    extra = ["--tasks", "car", "--trunk", "mlp"] if name == "features.csv" else []
    result = cli("train", "--data", str(folder / name), *extra, "--name", "x", cwd=folder)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    for part in expected:
        assert part in output, output
    assert not (folder / "runs" / "x").exists() or not any((folder / "runs" / "x").iterdir())


@pytest.mark.slow
def test_estimator_refuses_features_whose_statistics_overflow_float32() -> None:
    from multitask.sklearn import MultiTaskClassifier

    x = np.random.default_rng(0).normal(size=(20, 2))
    x[5, 1] = 3e38
    y = (np.arange(20) % 2).astype(float)[:, None].repeat(2, axis=1)
    refused(lambda: MultiTaskClassifier(epochs=1).fit(x, y), column="x1", match="too large")
