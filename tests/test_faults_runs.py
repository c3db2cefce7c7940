"""Faults around run directories: damaged or inconsistent run files, unfinished runs, refused runs that must
leave nothing, unwritable and full disks. Each case asserts the exit code, that no traceback reaches the user,
and that the message names the file or option.

The commands run in-process through the CLI's entry point (`multitask.cli.main`), as a user would call them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from multitask.config import build_config
from multitask.errors import RunDirError
from multitask.pipeline import train_run
from multitask.runs import load_run

FEATURES = ["--tasks", "a,b,c", "--trunk", "mlp", "--model.trunk_options", "{hidden: [8]}", "--epochs", "1",
            "--train.progress", "false"]


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """Run `multitask ARGS` in-process; (exit code, stdout + stderr)."""
    from multitask import cli as module

    argv, width = sys.argv, module.console.width
    sys.argv = ["multitask", *args]
    module.console.width = 100_000  # no line wrapping inside file names
    try:
        module.main()
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    finally:
        sys.argv = argv
        module.console.width = width
    out = capsys.readouterr()
    return code, " ".join((out.out + out.err).split())  # rich wraps long lines


def refused(capsys: pytest.CaptureFixture, *args: str, names: str | Path, code: int = 2) -> str:
    status, text = cli(capsys, *args)
    assert status == code, text
    assert "Traceback" not in text, text
    assert str(names) in text, f"{names!r} not in {text!r}"
    return text


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_features: Path) -> Path:
    root = tmp_path_factory.mktemp("trained")
    config = build_config({"root": str(root), "name": "good",
                           "data": {"path": str(tiny_features), "tasks": ["a", "b", "c"]},
                           "model": {"trunk": "mlp", "trunk_options": {"hidden": [8]}},
                           "train": {"epochs": 1, "progress": False}})
    return train_run(config, quiet=True, report=False).path


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    """A fresh copy of a finished run, to damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def edit_json(path: Path, change: Callable[[dict], object]) -> None:
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def edit_yaml(path: Path, change: Callable[[dict], object]) -> None:
    value = yaml.safe_load(path.read_text())
    change(value)
    path.write_text(yaml.safe_dump(value))


# ------------------------------------------------------------------------------------ damaged weights


def test_truncated_weights(capsys: pytest.CaptureFixture, run: Path) -> None:
    data = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(data[: len(data) // 2])
    refused(capsys, "info", str(run), names=run / "model.safetensors")


def test_random_bytes_as_weights(capsys: pytest.CaptureFixture, run: Path) -> None:
    (run / "model.safetensors").write_bytes(os.urandom(4096))
    refused(capsys, "info", str(run), names=run / "model.safetensors")


def test_empty_weights(capsys: pytest.CaptureFixture, run: Path) -> None:
    (run / "model.safetensors").write_bytes(b"")
    refused(capsys, "info", str(run), names=run / "model.safetensors")


@pytest.mark.parametrize("name", ["model.safetensors", "tasks.json", "config.yaml"])
def test_missing_run_file(capsys: pytest.CaptureFixture, run: Path, name: str) -> None:
    (run / name).unlink()
    text = refused(capsys, "info", str(run), names=run / name)
    assert "missing" in text


def test_not_a_directory(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    refused(capsys, "info", str(tmp_path / "nothing"), names=tmp_path / "nothing")


# ------------------------------------------------------------------------------------ tasks.json


def test_tasks_json_malformed(capsys: pytest.CaptureFixture, run: Path) -> None:
    (run / "tasks.json").write_text('{"tasks": ["a", "b"')
    text = refused(capsys, "info", str(run), names=run / "tasks.json")
    assert "malformed JSON" in text and "line 1" in text


def test_tasks_json_not_text(capsys: pytest.CaptureFixture, run: Path) -> None:
    (run / "tasks.json").write_bytes(b"\xff\xfe\x00garbage")
    refused(capsys, "info", str(run), names=run / "tasks.json")


def test_tasks_json_a_list(capsys: pytest.CaptureFixture, run: Path) -> None:
    (run / "tasks.json").write_text('["a", "b", "c"]')
    refused(capsys, "info", str(run), names=run / "tasks.json")


def test_tasks_json_without_tasks(capsys: pytest.CaptureFixture, run: Path) -> None:
    edit_json(run / "tasks.json", lambda v: v.pop("tasks"))
    text = refused(capsys, "info", str(run), names=run / "tasks.json")
    assert '"tasks"' in text


def test_tasks_json_with_an_extra_task_disagrees_with_the_heads(capsys: pytest.CaptureFixture, run: Path) -> None:
    def add(v: dict) -> None:
        v["tasks"].append("d")
        v["thresholds"]["d"] = 0.5

    edit_json(run / "tasks.json", add)
    text = refused(capsys, "info", str(run), names=run / "tasks.json")
    assert "4 task(s)" in text and "model.safetensors" in text


def test_tasks_json_with_a_task_less_disagrees_with_the_heads(capsys: pytest.CaptureFixture, run: Path) -> None:
    def drop(v: dict) -> None:
        v["tasks"].pop()
        v["thresholds"].pop("c")

    edit_json(run / "tasks.json", drop)
    refused(capsys, "info", str(run), names=run / "tasks.json")


def test_tasks_json_fewer_features_than_the_weights(capsys: pytest.CaptureFixture, run: Path) -> None:
    edit_json(run / "tasks.json", lambda v: v["feature_names"].pop())
    refused(capsys, "info", str(run), names=run / "tasks.json")


def test_tasks_json_threshold_missing(capsys: pytest.CaptureFixture, run: Path) -> None:
    edit_json(run / "tasks.json", lambda v: v["thresholds"].pop("b"))
    text = refused(capsys, "info", str(run), names=run / "tasks.json")
    assert "thresholds" in text


def test_tasks_json_threshold_not_a_number(capsys: pytest.CaptureFixture, run: Path) -> None:
    edit_json(run / "tasks.json", lambda v: v["thresholds"].update(a="high"))
    text = refused(capsys, "info", str(run), names=run / "tasks.json")
    assert "'a'" in text and "high" in text


def test_tasks_json_duplicate_task(capsys: pytest.CaptureFixture, run: Path) -> None:
    edit_json(run / "tasks.json", lambda v: v.update(tasks=["a", "a", "c"]))
    refused(capsys, "info", str(run), names=run / "tasks.json")


def test_tasks_json_bad_input_kind(capsys: pytest.CaptureFixture, run: Path) -> None:
    edit_json(run / "tasks.json", lambda v: v.update(input_kind="audio"))
    text = refused(capsys, "info", str(run), names=run / "tasks.json")
    assert "audio" in text


# ------------------------------------------------------------------------------------ config.yaml


def test_config_malformed_yaml(capsys: pytest.CaptureFixture, run: Path) -> None:
    (run / "config.yaml").write_text("model: {trunk: mlp\n  - [\n")
    refused(capsys, "info", str(run), names=run / "config.yaml")


def test_config_not_a_mapping(capsys: pytest.CaptureFixture, run: Path) -> None:
    (run / "config.yaml").write_text("- a\n- b\n")
    refused(capsys, "info", str(run), names=run / "config.yaml")


def test_config_trunk_options_changed(capsys: pytest.CaptureFixture, run: Path) -> None:
    edit_yaml(run / "config.yaml", lambda v: v["model"]["trunk_options"].update(hidden=[32]))
    text = refused(capsys, "info", str(run), names=run / "config.yaml")
    assert "model.safetensors" in text and "mlp" in text


def test_config_trunk_changed(capsys: pytest.CaptureFixture, run: Path) -> None:
    edit_yaml(run / "config.yaml", lambda v: v["model"].update(trunk="linear", trunk_options={}))
    refused(capsys, "info", str(run), names=run / "config.yaml")


def test_config_unknown_trunk(capsys: pytest.CaptureFixture, run: Path) -> None:
    edit_yaml(run / "config.yaml", lambda v: v["model"].update(trunk="no_such_trunk"))
    refused(capsys, "info", str(run), names=run / "config.yaml")


def test_config_unknown_key(capsys: pytest.CaptureFixture, run: Path) -> None:
    edit_yaml(run / "config.yaml", lambda v: v["train"].update(epochz=3))
    text = refused(capsys, "info", str(run), names=run / "config.yaml")
    assert "epochz" in text


# ------------------------------------------------------------------------------------ metrics / status


def test_metrics_json_malformed(capsys: pytest.CaptureFixture, run: Path) -> None:
    (run / "metrics.json").write_text("{nope")
    refused(capsys, "info", str(run), names=run / "metrics.json")


def test_status_json_malformed(capsys: pytest.CaptureFixture, run: Path) -> None:
    (run / "status.json").write_text("{")
    refused(capsys, "info", str(run), names=run / "status.json")


def test_status_json_unknown_status(capsys: pytest.CaptureFixture, run: Path) -> None:
    edit_json(run / "status.json", lambda v: v.update(status="done-ish"))
    refused(capsys, "info", str(run), names=run / "status.json")


@pytest.mark.parametrize("state", ["running", "interrupted"])
def test_unfinished_run_is_refused_with_the_resume_command(capsys: pytest.CaptureFixture, run: Path,
                                                          state: str, tiny_features: Path) -> None:
    edit_json(run / "status.json", lambda v: v.update(status=state, pid=2**22 + 7))
    text = refused(capsys, "evaluate", str(run), "--data", str(tiny_features), names=run)
    assert f"unfinished (status {state}" in text and f"multitask train --resume {run}" in text
    with pytest.raises(RunDirError, match="unfinished"):
        load_run(run)
    # info describes it instead of refusing
    code, info = cli(capsys, "info", str(run))
    assert code == 0 and "unfinished" in info and "--resume" in info


def test_failed_run_is_refused(capsys: pytest.CaptureFixture, run: Path, tmp_path: Path) -> None:
    edit_json(run / "status.json", lambda v: v.update(status="failed", error="disk full"))
    text = refused(capsys, "export", str(run), "--out", str(tmp_path / "m.onnx"), names=run)
    assert "failed" in text and "disk full" in text


def test_predict_on_damaged_weights(capsys: pytest.CaptureFixture, run: Path, tiny_features: Path) -> None:
    (run / "model.safetensors").write_bytes(b"\x00" * 100)
    refused(capsys, "predict", str(run), str(tiny_features), names=run / "model.safetensors")


def test_transfer_from_damaged_weights(capsys: pytest.CaptureFixture, run: Path, tiny_features: Path) -> None:
    (run / "model.safetensors").write_bytes(os.urandom(64))
    refused(capsys, "transfer", "--from", str(run), "--data", str(tiny_features), "--tasks", "a,b,c", "--epochs", "1",
            "--root", str(run.parent / "runs"), names=run / "model.safetensors")
    assert not (run.parent / "runs").exists() or not any((run.parent / "runs").iterdir())


# ------------------------------------------------------------------------------------ resume refusals


def test_resume_a_finished_run(capsys: pytest.CaptureFixture, run: Path) -> None:
    text = refused(capsys, "train", "--resume", str(run), names=run)
    assert "already finished" in text


def test_resume_a_missing_folder(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    refused(capsys, "train", "--resume", str(tmp_path / "gone"), names=tmp_path / "gone")


def test_resume_without_config(capsys: pytest.CaptureFixture, run: Path) -> None:
    edit_json(run / "status.json", lambda v: v.update(status="interrupted"))
    (run / "config.yaml").unlink()
    refused(capsys, "train", "--resume", str(run), names=run / "config.yaml")


def test_resume_with_other_options(capsys: pytest.CaptureFixture, run: Path) -> None:
    refused(capsys, "train", "--resume", str(run), "--epochs", "3", names="--resume")


def test_compare_resume_of_a_plain_folder(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    refused(capsys, "compare", "--resume", str(tmp_path), names=tmp_path / "plan.json")


# ------------------------------------------------------------------------------------ refusals leave nothing


def nothing_under(root: Path) -> bool:
    return not root.exists() or not any(root.iterdir())


def test_bad_trunk_name_leaves_nothing(capsys: pytest.CaptureFixture, tmp_path: Path, tiny_features: Path) -> None:
    refused(capsys, "train", "--data", str(tiny_features), *FEATURES, "--trunk", "mlpp", "--root",
            str(tmp_path / "runs"), "--name", "x", names="mlpp")
    assert nothing_under(tmp_path / "runs")


def test_pickle_as_weights_leaves_nothing(capsys: pytest.CaptureFixture, tmp_path: Path, tiny_features: Path) -> None:
    import pickle

    weights = tmp_path / "evil.pth"
    weights.write_bytes(pickle.dumps({"trunk": object()}))
    refused(capsys, "train", "--data", str(tiny_features), *FEATURES, "--weights", str(weights), "--root",
            str(tmp_path / "runs"), "--name", "x", names="evil.pth")
    assert nothing_under(tmp_path / "runs")


def test_bad_table_leaves_nothing(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    table = tmp_path / "bad.csv"
    table.write_text("f0,a\n1.0,1\n2.0,maybe\n")
    refused(capsys, "train", "--data", str(table), "--tasks", "a", "--trunk", "mlp", "--root",
            str(tmp_path / "runs"), names="maybe")
    assert nothing_under(tmp_path / "runs")


def test_unknown_task_weight_leaves_nothing(capsys: pytest.CaptureFixture, tmp_path: Path,
                                            tiny_features: Path) -> None:
    refused(capsys, "train", "--data", str(tiny_features), *FEATURES, "--loss.task_weights", "{zz: 2}", "--root",
            str(tmp_path / "runs"), names="zz")
    assert nothing_under(tmp_path / "runs")


def test_unknown_weighting_option_leaves_nothing(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                 tiny_features: Path) -> None:
    status, text = cli(capsys, "train", "--data", str(tiny_features), *FEATURES, "--weighting", "dwa",
                       "--train.weighting_options", "{temprature: 2}", "--root", str(tmp_path / "runs"))
    assert status == 2 and "Traceback" not in text and "temprature" in text, text
    assert nothing_under(tmp_path / "runs")


# ------------------------------------------------------------------------------------ unwritable / full disks


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount small tmpfs folders (root only; skipped where mounting is not permitted)."""
    mounted: list[Path] = []

    def mount(name: str, *options: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(folder)
        return folder

    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root (as a non-root user, chmod gives a read-only folder: see "
                    "test_read_only_root_without_root)")
    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_read_only_root(capsys: pytest.CaptureFixture, tmpfs: Callable[..., Path], tiny_features: Path) -> None:
    root = tmpfs("ro", "ro", "size=200k")
    text = refused(capsys, "train", "--data", str(tiny_features), *FEATURES, "--root", str(root / "runs"),
                   names=root / "runs")
    assert "Read-only" in text


def test_read_only_root_without_root(capsys: pytest.CaptureFixture, tmp_path: Path, tiny_features: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod cannot make a folder read-only (see test_read_only_root)")
    root = tmp_path / "locked"
    root.mkdir(mode=0o500)
    try:
        refused(capsys, "train", "--data", str(tiny_features), *FEATURES, "--root", str(root), names=root)
    finally:
        root.chmod(0o700)


def test_full_disk(capsys: pytest.CaptureFixture, tmpfs: Callable[..., Path], tiny_features: Path) -> None:
    root = tmpfs("full", "size=200k")
    file = open(root / "filler", "wb")  # noqa: SIM115 - closing it flushes into a full disk
    with contextlib.suppress(OSError):
        while True:
            file.write(b"\0" * 4096)
            file.flush()
    with contextlib.suppress(OSError):
        file.close()
    text = refused(capsys, "train", "--data", str(tiny_features), *FEATURES, "--root", str(root / "runs"),
                   "--name", "x", names=root / "runs" / "x")
    assert "No space left" in text


def test_disk_full_while_saving_marks_the_run_failed(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                     tiny_features: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A patched writer: the disk fills up when the weights are saved, after training."""
    import errno

    import multitask.runs as runs

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs, "save_file", full)
    text = refused(capsys, "train", "--data", str(tiny_features), *FEATURES, "--root", str(tmp_path / "runs"),
                   "--name", "x", names=tmp_path / "runs" / "x" / "model.safetensors")
    assert "No space left" in text
    status = json.loads((tmp_path / "runs" / "x" / "status.json").read_text())
    assert status["status"] == "failed" and "No space left" in status["error"]
    assert not (tmp_path / "runs" / "x" / "model.safetensors").exists()  # no half-written weights
