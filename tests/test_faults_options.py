"""Faults in options, config files and the command line: each one case, run in-process through the real CLI.

Every refused case asserts exit code 2, that no traceback reaches the user, that the message names the
offending option or value, and that nothing was written. Internal errors exit 1 with the traceback saved to a
file; Ctrl-C exits 130. The machine facts are this CPU-only machine's (torch.cuda.is_available() is False).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from multitask.cli import assemble_config, run_cli
from multitask.distributed import RUN_DIR_VARIABLE

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the device cases assume a machine without GPU")


@pytest.fixture(scope="module")
def image_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """labels.csv of 16 tiny PNGs with two tasks, both classes in every split."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    rows = ["image,car,bus,split"]
    for i in range(16):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        rows.append(f"{i}.png,{i % 2},{(i // 4) % 2},{('train', 'train', 'val', 'test')[i % 4]}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder / "labels.csv"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run_cli(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# (id, command, data kind, arguments, fragments the message must contain)
CASES = [
    ("unknown-key", "train", None, ["--train.epochz", "3"], ["train.epochz", "train.epochs"]),
    ("unknown-key-equals", "train", None, ["train.epochz=3"], ["train.epochz", "train.epochs"]),
    ("unknown-section", "train", None, ["--trian.epochs", "3"], ["trian.epochs", "train.epochs"]),
    ("unknown-short-flag", "train", None, ["--epoch", "3"], ["--epoch", "--epochs"]),
    ("short-flag-not-of-advise", "advise", None, ["--epochs", "3"], ["--epochs", "no such option"]),
    ("short-flag-not-of-transfer", "transfer", None, ["--from", "nowhere", "--trunk", "mlp"], ["--trunk"]),
    ("epochs-not-a-number", "train", None, ["--epochs", "abc"], ["train.epochs", "abc"]),
    ("epochs-zero", "train", None, ["--epochs", "0"], ["train.epochs"]),
    ("batch-size-fraction", "train", None, ["--batch-size", "1.5"], ["train.batch_size", "1.5"]),
    ("lr-negative", "train", None, ["--lr", "-1"], ["train.lr"]),
    ("literal-value", "train", None, ["--loss.normalization", "mean"], ["loss.normalization", "mean"]),
    ("missing-images-value", "train", None, ["--data.missing_images", "maybe"], ["data.missing_images", "maybe"]),
    ("fraction-above-one", "train", None, ["--data.val_fraction", "1.5"], ["data.val_fraction"]),
    ("name-with-path", "train", None, ["--name", "../x"], ["name", "../x"]),
    ("key-without-value", "train", None, ["--train.epochs"], ["--train.epochs", "needs a value"]),
    ("stray-argument", "train", None, ["bogus"], ["bogus"]),
    ("bool-value", "train", None, ["--data.augment", "maybe"], ["data.augment", "maybe"]),
    ("dict-malformed", "train", None, ["--model.trunk_options", "{width: 32"], ["model.trunk_options"]),
    ("dict-given-a-list", "train", None, ["--model.trunk_options", "[1, 2]"], ["model.trunk_options"]),
    ("image-size-below-schema", "train", None, ["--image-size", "4"], ["data.image_size"]),
    ("num-nodes-zero", "train", None, ["--train.num_nodes", "0"], ["train.num_nodes"]),
    ("trunk-unknown", "train", "images", ["--trunk", "small_cnnn"], ["small_cnnn", "'small_cnn'"]),
    ("weighting-unknown", "train", "features", ["--weighting", "pcgradd"], ["pcgradd", "'pcgrad'"]),
    ("sharing-unknown", "train", "features", ["--model.sharing", "mmo"], ["mmo", "'mmoe'"]),
    ("trunk-option-unknown", "train", "images", ["--model.trunk_options", "{bogus: 1}"], ["bogus", "width"]),
    ("trunk-option-typo", "train", "images", ["--model.trunk_options", "{widht: 8}"], ["widht", "'width'"]),
    ("mlp-option-typo", "train", "features", ["--model.trunk_options", "{hiden: [8]}"], ["hiden", "'hidden'"]),
    ("weighting-option-typo", "train", "features", ["--weighting", "dwa", "--train.weighting_options", "{temp: 2}"],
     ["temp", "temperature"]),
    ("weighting-option-value", "train", "features",
     ["--weighting", "dwa", "--train.weighting_options", "{temperature: -1}"], ["temperature", "-1"]),
    ("sharing-option-typo", "train", "features",
     ["--model.sharing", "mmoe", "--model.sharing_options", "{n_expert: 2}"], ["n_expert", "'n_experts'"]),
    ("sharing-option-value", "train", "features",
     ["--model.sharing", "mmoe", "--model.sharing_options", "{n_experts: 0}"], ["n_experts"]),
    ("conv-trunk-on-features", "train", "features", ["--trunk", "small_cnn"], ["small_cnn", "feature table"]),
    ("mlp-trunk-on-images", "train", "images", ["--trunk", "mlp"], ["'mlp'", "images"]),
    ("image-too-small", "train", "images", ["--image-size", "8"], ["data.image_size 8", "small_cnn", "16"]),
    ("image-too-small-for-depth", "train", "images", ["--image-size", "16", "--model.trunk_options", "{depth: 5}"],
     ["data.image_size 16", "32"]),
    ("accelerator-gpu", "train", "features", ["--accelerator", "gpu"], ["train.accelerator 'gpu'", "GPU"]),
    ("accelerator-cuda", "train", "features", ["--accelerator", "cuda"], ["train.accelerator 'cuda'"]),
    ("accelerator-unknown", "train", "features", ["--accelerator", "gpuu"], ["gpuu", "'gpu'"]),
    ("devices-zero", "train", "features", ["--devices", "0"], ["train.devices 0"]),
    ("devices-abc", "train", "features", ["--devices", "abc"], ["train.devices 'abc'"]),
    ("devices-negative", "train", "features", ["--devices", "-2"], ["train.devices -2"]),
    ("devices-more-than-cores", "train", "features", ["--devices", "999"], ["train.devices 999", "CPU cores"]),
    ("devices-bad-list", "train", "features", ["--train.devices", "0,x"], ["train.devices '0,x'"]),
    ("num-nodes-without-cluster", "train", "features", ["--train.num_nodes", "2"], ["train.num_nodes 2", "torchrun"]),
    ("task-weight-unknown-task", "train", "features", ["--loss.task_weights", "{zz: 2}"], ["loss.task_weights", "zz"]),
    ("unknown-task-column", "train", "features", ["--tasks", "a,zz"], ["zz"]),
    ("weights-file-missing", "train", "images", ["--weights", "missing.pth"], ["missing.pth"]),
    ("resume-with-options", "train", None, ["--resume", "runs/x", "--epochs", "3"], ["--resume"]),
    ("compare-unknown-approach", "compare", "features", ["--approaches", "shared,bogus"], ["bogus"]),
    ("compare-group-unknown-task", "compare", "features", ["--approaches", "groups", "--groups", "a,zz"], ["zz"]),
    ("compare-gpu", "compare", "features", ["--accelerator", "gpu"], ["train.accelerator 'gpu'"]),
    ("advise-trunk-option", "advise", "features", ["--model.trunk_options", "{hiden: [8]}"], ["hiden"]),
    ("advise-conv-on-features", "advise", "features", ["--trunk", "small_cnn"], ["feature table"]),
]


@pytest.mark.parametrize(("command", "kind", "args", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_option(command: str, kind: str | None, args: list[str], fragments: list[str], tmp_path: Path,
                        tiny_features: Path, image_table: Path, capsys: pytest.CaptureFixture[str],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("SLURM_NTASKS", "SLURM_JOB_ID", "WORLD_SIZE", "MASTER_ADDR", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(variable, raising=False)
    data = {"features": ["--data", str(tiny_features), "--tasks", "a,b,c", "--trunk", "mlp"],
            "images": ["--data", str(image_table), "--image-size", "16"], None: []}[kind]
    if command == "advise":
        data = [a for a in data if a not in ("--image-size", "16")]
    root = [] if command in ("transfer",) else ["--root", str(tmp_path / "runs")]
    if command == "advise":
        root = []
    code, out = run([command, *data, *args, *root], capsys)
    assert code == 2, out
    assert "Traceback" not in out
    for fragment in fragments:
        assert fragment in out, (fragment, out)
    assert files(tmp_path) == [], "a refused command must leave nothing behind"


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


CONFIG_CASES = [
    ("unclosed-list", "train:\n  epochs: [3\n", ["config.yaml", "line 3"]),
    ("bad-indentation", "train:\n  epochs: 3\n   lr: 0.1\n", ["config.yaml", "line 3"]),
    ("tab-indentation", "train:\n\tepochs: 3\n", ["config.yaml", "line 2"]),
    ("not-a-mapping", "- a\n- b\n", ["config.yaml", "mapping"]),
    ("unknown-key", "train:\n  epoch: 3\n", ["config.yaml", "train.epoch", "train.epochs"]),
    ("bad-value", "train:\n  epochs: many\n", ["config.yaml", "train.epochs", "many"]),
    ("not-utf8", b"train:\n  epochs: \xff\xfe\n", ["config.yaml", "UTF-8"]),
    ("section-not-a-mapping", "train: 3\n", ["config.yaml", "train"]),
]


@pytest.mark.parametrize(("text", "fragments"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_malformed_config_file(text: str | bytes, fragments: list[str], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["train", "--config", str(write(tmp_path, text)), "--root", str(tmp_path / "runs")], capsys)
    assert code == 2 and "Traceback" not in out
    for fragment in fragments:
        assert fragment in out, (fragment, out)


@pytest.mark.parametrize("args", [["--config", "missing.yaml"], ["--config", "."]], ids=["missing", "a-folder"])
def test_config_option_must_be_a_file(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = run(["train", *args], capsys)
    assert code == 2 and "Traceback" not in out and "--config" in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["trian"], capsys)
    assert code == 2 and "trian" in out and "Traceback" not in out


def test_root_is_a_file(tmp_path: Path, tiny_features: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "runs").write_text("")
    code, out = run(["train", "--data", str(tiny_features), "--tasks", "a,b,c", "--trunk", "mlp", "--root",
                     str(tmp_path / "runs" / "deeper")], capsys)
    assert code == 2 and "is a file, not a folder" in out and "root" in out


def test_root_not_writable(tmp_path: Path, tiny_features: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only folder (a patched writer: chmod does not stop root)."""
    import tempfile

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    code, out = run(["train", "--data", str(tiny_features), "--tasks", "a,b,c", "--trunk", "mlp", "--root",
                     str(tmp_path / "runs")], capsys)
    assert code == 2 and "cannot write" in out and "Permission denied" in out and "--root" in out
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------------------------------ values typed by the schema

TYPED = [
    (["--name", "2024"], lambda c: c.name == "2024"),
    (["--data.input_column", "yes"], lambda c: c.data.input_column == "yes"),
    (["--data.tasks", "a,b"], lambda c: c.data.tasks == ["a", "b"]),
    (["--tasks", "a,b"], lambda c: c.data.tasks == ["a", "b"]),
    (["data.tasks=[a, b]"], lambda c: c.data.tasks == ["a", "b"]),
    (["--data.tasks", '["a", "b"]'], lambda c: c.data.tasks == ["a", "b"]),
    (["--data.tasks", "2024"], lambda c: c.data.tasks == ["2024"]),
    (["--model.trunk_options", "{width: 32}"], lambda c: c.model.trunk_options == {"width": 32}),
    (["--model.trunk_options", '{"width": 32}'], lambda c: c.model.trunk_options == {"width": 32}),
    (["--train.devices", "2"], lambda c: c.train.devices == 2),
    (["--devices", "auto"], lambda c: c.train.devices == "auto"),
    (["--train.devices=0,1"], lambda c: c.train.devices == "0,1"),
    (["--epochs", "3", "--lr", "0.5"], lambda c: (c.train.epochs, c.train.lr) == (3, 0.5)),
    (["--train.patience", "null"], lambda c: c.train.patience is None),
    (["--data.augment", "false"], lambda c: c.data.augment is False),
    (["--loss.pos_weight", "balanced"], lambda c: c.loss.pos_weight == "balanced"),
    (["--loss.pos_weight", "{a: 2}"], lambda c: c.loss.pos_weight == {"a": 2.0}),
    (["--trunk", "yes"], lambda c: c.model.trunk == "yes"),
]


@pytest.mark.parametrize(("args", "check"), TYPED, ids=[" ".join(a) for a, _ in TYPED])
def test_values_are_typed_by_the_schema(args: list[str], check: object) -> None:
    assert check(assemble_config(None, args))  # type: ignore[operator]


def test_yaml_flag_and_python_agree(tmp_path: Path) -> None:
    """One typed path: the same key given by YAML, by flag and in Python ends in the same config."""
    from multitask.config import RunConfig, apply_overrides, load_config

    path = write(tmp_path, "name: '2024'\ntrain:\n  devices: 2\ndata:\n  tasks: [a, b]\n")
    from_yaml = load_config(path)
    from_flags = assemble_config(None, ["--name", "2024", "--devices", "2", "--tasks", "a,b"])
    from_python = apply_overrides(RunConfig(), {"name": "2024", "train.devices": "2", "data.tasks": ["a", "b"]})
    assert from_yaml.model_dump(exclude={"data": {"path"}}) == from_flags.model_dump(exclude={"data": {"path"}})
    assert from_yaml == from_python


# ------------------------------------------------------------------------------------ internal errors

@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyError("boom"), ValueError("boom")],
                         ids=["RuntimeError", "KeyError", "ValueError"])
def test_internal_error_exits_1_and_saves_the_traceback(error: Exception, tmp_path: Path, tiny_features: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import multitask.pipeline

    def broken(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(multitask.pipeline, "train_run", broken)
    monkeypatch.delenv(RUN_DIR_VARIABLE, raising=False)
    code, out = run(["train", "--data", str(tiny_features), "--root", str(tmp_path)], capsys)
    assert code == 1
    assert "internal error of multitask" in out and "please report" in out and "Traceback" not in out
    saved = Path(out.split("the full traceback is in ", 1)[1].split(";")[0].strip())
    assert saved.name.startswith("multitask-traceback-")
    text = saved.read_text()
    saved.unlink()
    assert "Traceback" in text and "boom" in text and "def broken" not in out


def test_internal_error_traceback_goes_to_the_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise ZeroDivisionError("inside a run")

    monkeypatch.setenv(RUN_DIR_VARIABLE, str(tmp_path))
    monkeypatch.setattr("multitask.models.trunks.TRUNKS.names", broken)
    code, out = run(["trunks"], capsys)
    assert code == 1 and str(tmp_path / "traceback.txt") in out
    assert "ZeroDivisionError: inside a run" in (tmp_path / "traceback.txt").read_text()


def test_ctrl_c_exits_130(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("multitask.models.trunks.TRUNKS.names", interrupt)
    code, out = run(["trunks"], capsys)
    assert code == 130 and "interrupted" in out and "Traceback" not in out


def test_success_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["trunks"], capsys)
    assert code == 0 and "small_cnn" in out


# ------------------------------------------------------------------------------- evaluate on a trained run

@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_features: Path) -> Path:
    root = tmp_path_factory.mktemp("runs")
    assert run_cli(["train", "--data", str(tiny_features), "--tasks", "a,b,c", "--trunk", "mlp", "--epochs", "1",
                    "--model.trunk_options", "{hidden: [4]}", "--name", "r", "--root", str(root),
                    "--train.progress", "false"]) == 0
    os.environ.pop(RUN_DIR_VARIABLE, None)
    return root / "r"


@pytest.mark.slow
@pytest.mark.parametrize(("args", "code", "fragment"), [
    (["--split", "bogus"], 2, "'bogus'"),
    (["--data.missing_images", "skip"], 0, "all rows (300)"),
    (["--data.missing_images", "maybe"], 2, "maybe"),
], ids=["split-bogus", "missing-images-skip-accepted", "missing-images-bad"])
def test_evaluate_options(args: list[str], code: int, fragment: str, trained: Path, tiny_features: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    got, out = run(["evaluate", str(trained), "--data", str(tiny_features), *args], capsys)
    assert got == code, out
    assert fragment in out and "Traceback" not in out
