"""End-to-end command-line runs on tiny generated data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

MULTITASK = [sys.executable, "-m", "multitask.cli"]


def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run([*MULTITASK, *args], cwd=cwd, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


@pytest.mark.slow
def test_train_info_evaluate_predict_on_images(tmp_path: Path, tiny_scenes: Path) -> None:
    cli("train", "--data", str(tiny_scenes), "--image-size", "32", "--epochs", "2", "--name", "tiny",
        "--model.trunk_options", "{width: 4, depth: 2}", "--train.batch_size=16", cwd=tmp_path)
    run = tmp_path / "runs" / "tiny"
    metrics = json.loads((run / "metrics.json").read_text())
    assert [m["task"] for m in metrics["test"]["tasks"]] == ["pedestrian", "car", "stop_sign", "traffic_light"]
    assert "Rerun" in (run / "report.md").read_text()

    info = cli("info", str(run), cwd=tmp_path).stdout
    assert "small_cnn" in info and "traffic_light" in info

    out = tmp_path / "eval.json"
    evaluated = cli("evaluate", str(run), "--data", str(tiny_scenes), "--split", "test", "--out", str(out),
                    cwd=tmp_path)
    assert "macro mean" in evaluated.stdout
    assert json.loads(out.read_text())["macro"] == pytest.approx(metrics["test"]["macro"], rel=1e-5)

    images = sorted((tiny_scenes.parent / "images").glob("*.png"))[:5]
    cli("predict", str(run), *map(str, images), "--out", str(tmp_path / "preds.csv"), cwd=tmp_path)
    preds = pd.read_csv(tmp_path / "preds.csv")
    assert len(preds) == 5
    assert list(preds.columns[:3]) == ["image", "pedestrian_prob", "pedestrian"]
    assert preds.filter(like="_prob").apply(lambda c: c.between(0, 1).all()).all()
    thresholds = json.loads((run / "tasks.json").read_text())["thresholds"]
    for task, threshold in thresholds.items():
        assert ((preds[f"{task}_prob"] >= threshold).astype(int) == preds[task]).all()

    folder = cli("predict", str(run), str(tiny_scenes.parent / "images"), "--out", str(tmp_path / "all.csv"),
                 cwd=tmp_path)
    assert "96 predictions" in folder.stdout


def test_bad_label_gives_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    table = tmp_path / "labels.csv"
    table.write_text("image,car\na.png,1\na.png,perhaps\n")
    result = cli("train", "--data", str(table), cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "line 3, column 'car': value 'perhaps'" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_unknown_config_key_suggests(tmp_path: Path) -> None:
    result = cli("train", "--train.epoch", "3", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "Did you mean 'train.epochs'" in result.stdout


@pytest.mark.slow
def test_compare_prints_shared_and_separate(tmp_path: Path, tiny_features: Path) -> None:
    result = cli("compare", "--data", str(tiny_features), "--tasks", "a,b,c", "--trunk", "mlp", "--epochs", "2",
                 "--name", "cmp", "--model.trunk_options", "{hidden: [8]}", "--model.select", "off", cwd=tmp_path)
    assert "AP shared" in result.stdout and "AP separate" in result.stdout and "Cost" in result.stdout
    saved = json.loads((tmp_path / "runs" / "cmp" / "comparison.json").read_text())
    assert set(saved["results"]) == {"shared", "separate"}
    separate, shared = saved["results"]["separate"][0], saved["results"]["shared"][0]
    assert len(set(separate["runs"].values())) == 3 and len(set(shared["runs"].values())) == 1
    assert (tmp_path / "runs" / "cmp" / "report.md").exists()
    # Separate networks are three single-task networks: together about three times the shared one.
    assert separate["parameters"] > 2 * shared["parameters"]
    assert set(saved["ap_differences"]["separate"]) == {"a", "b", "c", "macro"}


def test_config_command_lists_keys(tmp_path: Path) -> None:
    result = cli("config", cwd=tmp_path)
    assert "train.epochs" in result.stdout and "normalization: batch" in result.stdout


@pytest.mark.slow
def test_transfer_command(tmp_path: Path, tiny_features: Path) -> None:
    features = "--data.feature_columns=[f0, f1, f2, f3, f4, f5, f6, f7]"
    cli("train", "--data", str(tiny_features), "--tasks", "a,b", "--trunk", "mlp", "--epochs", "1", "--name", "src",
        "--model.trunk_options", "{hidden: [8]}", features, cwd=tmp_path)
    result = cli("transfer", "--from", "runs/src", "--data", str(tiny_features), "--tasks", "c", "--epochs", "1",
                 "--name", "dst", "--freeze-trunk", features, cwd=tmp_path)
    assert "test metrics" in result.stdout
    config = (tmp_path / "runs" / "dst" / "config.yaml").read_text()
    assert "init_from: " + str(tmp_path / "runs" / "src") in config and "freeze_trunk: true" in config
    assert json.loads((tmp_path / "runs" / "dst" / "tasks.json").read_text())["tasks"] == ["c"]


@pytest.mark.slow
def test_every_weighting_method_trains_through_the_cli(tmp_path: Path, tiny_features: Path) -> None:
    """In-process (no interpreter start per method): each method, 1 epoch, 30 % unknown labels."""
    from typer.testing import CliRunner

    from multitask.cli import app
    from multitask.weighting import WEIGHTINGS

    runner = CliRunner()
    for method in WEIGHTINGS.names():
        result = runner.invoke(app, ["train", "--data", str(tiny_features), "--tasks", "a,b,c", "--trunk", "mlp",
                                     "--epochs", "1", "--name", method, "--root", str(tmp_path), "--weighting", method,
                                     "--model.trunk_options", "{hidden: [8]}", "--loss.normalization", "known"])
        assert result.exit_code == 0, (method, result.output, result.exception)
        metrics = json.loads((tmp_path / method / "metrics.json").read_text())
        assert metrics["test"]["macro"]["average_precision"] is not None, method
        assert f"weighting: {method}" in (tmp_path / method / "config.yaml").read_text()


def test_short_flags_are_defined_once_and_listed_in_help() -> None:
    from typer.testing import CliRunner

    from multitask.cli import ADVISE_SHORTCUTS, SHORTCUTS, TRANSFER_SHORTCUTS, app

    assert set(ADVISE_SHORTCUTS) <= set(SHORTCUTS) and set(TRANSFER_SHORTCUTS) <= set(SHORTCUTS)
    for command, names in (("train", SHORTCUTS), ("compare", SHORTCUTS), ("advise", ADVISE_SHORTCUTS),
                           ("transfer", TRANSFER_SHORTCUTS)):
        text = " ".join(CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "400"}).output.split())
        for name in names:
            assert f"--{name} ({SHORTCUTS[name]})" in text, (command, name)


def test_user_error_is_one_line_on_a_narrow_terminal(tmp_path: Path) -> None:
    env_cli = subprocess.run([*MULTITASK, "train", "--train.epochz", "3"], cwd=tmp_path, capture_output=True,
                             text=True, env={**os.environ, "COLUMNS": "40"})
    assert env_cli.returncode == 2
    assert env_cli.stdout.strip().count("\n") == 0 and "Did you mean 'train.epochs'" in env_cli.stdout


def test_advise_resume_reuses_saved_options_and_refuses_other_ones(tmp_path: Path, tiny_features: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from multitask.cli import run_cli

    out = tmp_path / "advice"
    args = ["advise", "--data", str(tiny_features), "--tasks", "a,b,c", "--trunk", "mlp", "--probe-steps", "20",
            "--capacity", "--threads", "1", "--out", str(out)]
    assert run_cli(args) == 0
    first = json.loads((out / "advice.json").read_text())
    (out / "advice.json").unlink()
    next((out / "partial" / "capacity").iterdir()).unlink()
    capsys.readouterr()
    assert run_cli(["advise", "--resume", str(out), "--threads", "1"]) == 0  # the saved config and options
    assert "reusing the saved result" in capsys.readouterr().out
    again = json.loads((out / "advice.json").read_text())
    assert {**again, "seconds": 0} == {**first, "seconds": 0}
    assert run_cli(["advise", "--resume", str(out), "--probe-steps", "21"]) == 2
    assert "probe_steps: 20 (saved) → 21 (now)" in " ".join(capsys.readouterr().out.split())
