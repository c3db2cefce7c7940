"""Printed tables: laid out for any width without cutting a name, parseable as csv / json, symbols explained.

The end-to-end tests pipe real commands (`compare`, `advise`, …) with COLUMNS unset: a pipe counts as 80
columns. Before this renderer, such output cut task names (`crosswa…`) and wrapped the advisor's reasons one
word per line.
"""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multitask.console import FORMATS, Cell, Output, Table, render, split_csv

MULTITASK = [sys.executable, "-m", "multitask.cli"]
TASKS_4 = ["crosswalk", "speedlimit", "stop", "trafficlight"]
TASKS_30 = [f"crosswalk_marking_{j:02d}" for j in range(30)]
APPROACHES_4 = ["shared", "separate", "groups", "shared_pretrained"]


def piped(*args: str, cwd: Path, columns: str | None = None) -> subprocess.CompletedProcess:
    """Run `multitask ARGS` with stdout a pipe and COLUMNS unset (or set), as a CI log would."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["OMP_NUM_THREADS"] = "1"
    if columns:
        env["COLUMNS"] = columns
    result = subprocess.run([*MULTITASK, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def assert_readable(text: str, names: list[str], width: int = 80) -> None:
    """Every line fits (but a command line to copy, never wrapped), every name appears whole, nothing is cut
    with an ellipsis."""
    long = [line for line in text.splitlines() if len(line) > width and not line.startswith("multitask ")
            and " " in line.strip()]  # a single word longer than the width (a long path) cannot be wrapped
    assert not long, f"{len(long)} lines over {width} columns, e.g. {long[0]!r}"
    assert "…" not in text
    for name in names:
        assert name in text, f"{name} not printed whole"
    words = [line.strip() for line in text.splitlines() if line.strip()]
    single = sum(1 for w in words if " " not in w and w not in names and "/" not in w)  # a path alone is fine
    # (a short block — one run's name and field labels on their own lines — is not wrapping)
    assert len(words) < 20 or single < 0.2 * len(words), "values wrapped one word per line"


def features_table(path: Path, tasks: list[str], n: int = 200, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    y = (x @ rng.normal(size=(6, len(tasks))) + 0.5 * rng.normal(size=(n, len(tasks))) > 0).astype(int).astype(str)
    y[rng.random(y.shape) < 0.2] = "?"
    frame = pd.DataFrame(x.round(4), columns=[f"f{i}" for i in range(6)])
    for j, task in enumerate(tasks):
        frame[task] = y[:, j]
    frame.to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------------------------ layouts

def example(n_rows: int = 4, name: str = "task") -> Table:
    rows = [[f"{name}_{i:02d}", 100 + i, 0.5 + i / 100, Cell("+0.010 [-0.002, +0.021] (n.s.)", {"mean": 0.01}),
             "one shared network"] for i in range(n_rows)]
    return Table("t", "A table", ["task", "train labels", "AP shared", "Δ separate − shared [95% CI]", "call"], rows,
                 legend=["(n.s.): not significant"])


@pytest.mark.parametrize("width", [120, 80, 60, 40, 34])
def test_every_width_fits_and_keeps_names_whole(width: int) -> None:
    table = example(name="crosswalk_marking")
    text = render(table, "table", width=width)
    assert max(len(line) for line in text.splitlines()) <= width, text
    for i in range(4):
        assert f"crosswalk_marking_{i:02d}" in text
    assert "+0.010 [-0.002, +0.021] (n.s.)" in text  # never cut, nor wrapped where it fits on a line
    assert "(n.s.): not significant" in " ".join(text.split())


def test_layouts_in_order_full_then_split_then_blocks() -> None:
    table = example(2)
    full = render(table, "table", width=120).splitlines()
    assert full[1].split() == ["task", "train", "labels", "AP", "shared", "Δ", "separate", "−", "shared", "[95%",
                               "CI]", "call"]
    assert len(full) == 1 + 1 + 2 + 1  # title, header, rows, legend
    split = render(table, "table", width=60)
    assert split.count("task_00") == 2  # the key column repeated in each narrower table
    blocks = render(table, "table", width=30).splitlines()
    assert blocks[1] == "task_00" and blocks[2].split() == ["train", "labels", "100"]


def test_fields_wrap_under_their_value() -> None:
    reason = "it is related to crosswalk and stop, whose labels train the features it needs " * 2
    table = Table("why", "Why", ["task", "why"], [["pedestrian", reason.strip()]], fields=True)
    lines = render(table, "table", width=50).splitlines()
    assert lines[1].startswith("pedestrian: it is")
    assert all(line.startswith(" " * len("pedestrian: ")) for line in lines[2:])
    assert " ".join(" ".join(lines[1:]).split()) == "pedestrian: " + " ".join(reason.split())


def test_csv_json_markdown_parse_back() -> None:
    table = example(3)
    rows = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert [r["task"] for r in rows] == ["task_00", "task_01", "task_02"]
    assert float(rows[1]["AP shared"]) == pytest.approx(0.51)  # raw values, not rounded text
    assert rows[0]["Δ separate − shared [95% CI] mean"] == "0.01"  # an interval spread over its keys
    data = json.loads(render(table, "json"))
    assert data["rows"][2]["train labels"] == 102 and data["legend"] == ["(n.s.): not significant"]
    markdown = render(table, "markdown").splitlines()
    assert markdown[0] == "**A table**" and markdown[2].startswith("| task |") and len(markdown) == 2 + 2 + 3 + 2


def test_output_json_is_one_document_and_csv_blocks_split() -> None:
    stream, errors = io.StringIO(), io.StringIO()
    out = Output("json", stream=stream, errors=errors)
    out.tables([example(1), Table("cost", "Cost", ["approach", "parameters"], [["shared", 10]])])
    out.message("saved")
    out.close()
    data = json.loads(stream.getvalue())
    assert [t["name"] for t in data["tables"]] == ["t", "cost"] and data["messages"] == ["saved"]
    stream = io.StringIO()
    out = Output("csv", stream=stream, errors=errors)
    out.tables([example(2), Table("cost", "Cost", ["approach", "parameters"], [["shared", 10]])])
    out.message("saved")
    out.close()
    blocks = split_csv(stream.getvalue())
    assert list(blocks) == ["t", "cost"] and blocks["cost"] == [{"approach": "shared", "parameters": "10"}]
    assert errors.getvalue() == "saved\n"  # messages stay out of the csv
    assert FORMATS == ("table", "csv", "json", "markdown")


# ---------------------------------------------------------------------------------------- real results


def fake_comparison(tmp_path: Path, tasks: list[str], approaches: list[str]):
    """A Comparison of real result objects whose runs' saved test predictions are random."""
    from multitask.compare import ApproachResult, Comparison

    rng = np.random.default_rng(0)
    n = 60
    ids = np.array([f"img{i}.png" for i in range(n)])
    targets = (rng.random((n, len(tasks))) < 0.4).astype(float)
    known = rng.random((n, len(tasks))) < 0.8
    results = {}
    for a, approach in enumerate(approaches):
        folder = tmp_path / approach
        folder.mkdir()
        probs = np.clip(targets * 0.3 + rng.random(targets.shape) * 0.7, 0, 1)
        np.savez_compressed(folder / "predictions_test.npz", ids=ids, targets=targets, known=known, probs=probs,
                            tasks=np.array(tasks))
        metrics = {t: {"task": t, "average_precision": 0.6 + 0.01 * a, "roc_auc": 0.7, "f1": 0.5} for t in tasks}
        results[approach] = [ApproachResult(approach, 0, metrics, 1000 * (a + 1), 1.5, 1e-4,
                                            {t: str(folder) for t in tasks})]
    return Comparison(tuple(tasks), results, tmp_path, {t: 100 + i for i, t in enumerate(tasks)}, n_boot=50)


@pytest.fixture
def pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdout as a pipe: no COLUMNS, and no terminal to ask (shutil.get_terminal_size falls back to 80)."""
    monkeypatch.delenv("COLUMNS", raising=False)

    def no_terminal(*args: object) -> os.terminal_size:
        raise OSError("not a terminal")

    monkeypatch.setattr(os, "get_terminal_size", no_terminal)


@pytest.mark.parametrize("tasks", [TASKS_4, TASKS_30], ids=["4 tasks", "30 tasks"])
def test_piped_compare_of_four_approaches_is_readable(tmp_path: Path, tasks: list[str], pipe: None,
                                                      capsys: pytest.CaptureFixture) -> None:
    from multitask.cli import OutputFormat, print_comparison

    comparison = fake_comparison(tmp_path, tasks, APPROACHES_4)
    print_comparison(comparison)
    text = capsys.readouterr().out
    assert_readable(text, tasks + APPROACHES_4)
    assert "*: significant" in text and "(n.s.): not significant" in text  # every symbol explained
    print_comparison(comparison, OutputFormat.json)
    data = json.loads(capsys.readouterr().out)
    ap = data["tables"][0]
    assert [r["task"] for r in ap["rows"]] == [*tasks, "macro mean"]
    difference = ap["rows"][0]["Δ separate − shared [95% CI]"]
    assert set(difference) == {"mean", "low", "high", "significant"} and difference["low"] <= difference["high"]
    assert difference["mean"] == pytest.approx(comparison.difference("separate", tasks[0]).mean)
    assert data["messages"] == [f"Comparison saved in {tmp_path} (report: {tmp_path / 'report.md'})"]


def in_process(capsys: pytest.CaptureFixture, *args: str) -> str:
    from multitask.cli import run_cli

    capsys.readouterr()
    code = run_cli(list(args))
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    return out.out


@pytest.mark.slow
def test_piped_compare_and_every_format_of_the_result_commands(tmp_path: Path, pipe: None,
                                                                capsys: pytest.CaptureFixture,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    data = features_table(tmp_path / "t4.csv", TASKS_4)
    common = ["--data", str(data), "--tasks", ",".join(TASKS_4), "--trunk", "mlp", "--epochs", "1",
              "--model.trunk_options", "{hidden: [8]}", "--train.progress", "false", "--threads", "1"]
    text = piped("compare", *common, "--name", "c4", "--groups", "crosswalk,stop", cwd=tmp_path).stdout
    assert_readable(text, TASKS_4 + ["shared", "separate", "groups"])
    assert "Comparison saved in" in text
    monkeypatch.chdir(tmp_path)
    as_csv = in_process(capsys, "compare", "--resume", "runs/c4", "--format", "csv")
    blocks = split_csv(as_csv)
    assert list(blocks) == ["average_precision", "roc_auc", "f1", "cost"]
    assert [r["task"] for r in blocks["average_precision"]] == [*TASKS_4, "macro mean"]
    assert "Comparison saved" not in as_csv  # messages go to stderr
    result = json.loads(in_process(capsys, "train", *common, "--name", "one", "--format", "json"))
    assert [t["name"] for t in result["tables"]] == ["val", "test"]
    assert [r["task"] for r in result["tables"][1]["rows"]] == [*TASKS_4, "macro mean"]
    assert any(m.startswith("Run saved in") for m in result["messages"])
    for command in (["info", "runs/one"], ["runs"], ["evaluate", "runs/one", "--data", str(data)], ["methods"]):
        names = {"methods": ["upgrad"], "runs": ["c4", "one", str(data)]}.get(command[0], TASKS_4)
        assert_readable(in_process(capsys, *command), names)
        for fmt in ("csv", "json", "markdown"):
            out = in_process(capsys, *command, "--format", fmt)
            if fmt == "json":
                assert json.loads(out)["tables"]
            elif fmt == "csv":
                assert all(rows for rows in split_csv(out).values())
            else:  # a pipe table, or a list for a fields table (methods)
                assert "|---|" in out or out.count("\n- ") >= 10


@pytest.mark.slow
@pytest.mark.parametrize("tasks", [TASKS_4, TASKS_30], ids=["4 tasks", "30 tasks"])
def test_piped_advise_is_readable(tmp_path: Path, tasks: list[str]) -> None:
    data = features_table(tmp_path / "t.csv", tasks)
    args = ["advise", "--data", str(data), "--tasks", ",".join(tasks), "--trunk", "mlp", "--probe-steps", "20",
            "--no-evidence", "--threads", "1"]
    text = piped(*args, cwd=tmp_path).stdout  # a real pipe
    assert_readable(text, tasks)
    assert "Why, per task" in text and "ratio:" in text
    data_out = json.loads(piped(*args, "--format", "json", cwd=tmp_path).stdout)
    names = [t["name"] for t in data_out["tables"]]
    assert names[0] == "recommendation" and "tasks" in names and "why" in names
    why = next(t for t in data_out["tables"] if t["name"] == "why")["fields"]
    assert list(why) == tasks


# ------------------------------------------------------------------------------------------- distributed


METRICS = {"tasks": [{"task": "car", "n_known": 4, "n_positive": 2, "average_precision": 1.0, "roc_auc": 1.0,
                      "f1": 1.0, "accuracy": 1.0, "threshold": 0.5}],
           "macro": {"average_precision": 1.0, "roc_auc": 1.0, "f1": 1.0, "accuracy": 1.0}}


@pytest.mark.parametrize(("environ", "printed"), [({"RANK": "1"}, False), ({"LOCAL_RANK": "1"}, False),
                                                  ({"RANK": "0"}, True), ({}, True)])
def test_a_run_is_printed_by_rank_zero_alone(environ: dict, printed: bool, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    from multitask.cli import _print_run

    for key in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK", "GROUP_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    _print_run({"test": METRICS}, tmp_path)
    out = capsys.readouterr().out
    assert ("Run saved in" in out) is printed and ("test metrics" in out) is printed


def test_progress_bar_and_log_count_epochs_from_one(caplog: pytest.LogCaptureFixture) -> None:
    import logging
    from types import SimpleNamespace

    from multitask.trainer import ProgressLog, progress_bar

    bar = progress_bar()
    bar._trainer = SimpleNamespace(max_epochs=3)
    assert bar._get_train_description(0).strip() == "Epoch 1/3"  # Lightning's own bar says "Epoch 0"
    trainer = SimpleNamespace(global_rank=0, current_epoch=0, max_epochs=3, callback_metrics={})
    with caplog.at_level(logging.INFO, logger="multitask"):
        ProgressLog().on_train_epoch_end(trainer, None)
    assert "epoch 1/3" in caplog.text
