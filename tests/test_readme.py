"""Every README line runnable as written: its shell and Python code blocks run here, on tiny data.

The README's convention ("About the examples" in README.md):

- The file and folder names of the examples (`labels.csv`, `/path/to/root`, `other_labels.csv`, `new_images/`,
  `photo.jpg`, `table.csv`, `a.csv`, `b.csv`, `annotations/`, `instances_train.json`, `image-labels.csv`,
  `classes.csv`, `cars.csv`, `signs.csv`, `model.onnx`; in Python `X`, `Y`, `X_test`) stand for the user's own:
  here they are a tiny generated data set in a temporary folder (`/path/to/root` and `photos/` are that folder).
- Training commands run with one epoch (`--epochs 1` in place of the README's, or added), and `resnet18` is
  replaced by `small_cnn` (on 32-px images it learns nothing more, much slower).
- A line (or a block whose first line) whose comment says `not run: REASON` is skipped with that reason: a download, a
  cluster, several GPUs, minutes of CPU.

Commands starting with `multitask` run in this process through :func:`multitask.cli.run_cli` (the entry point
of the `multitask` script), one after the other in one folder, so later lines see what earlier ones wrote.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SRC = Path(__file__).resolve().parents[1] / "src" / "multitask"
NOT_RUN = re.compile(r"#.*\bnot run:\s*(?P<reason>.+?)\s*$")
TRAINING = ("train", "compare", "transfer", "advise")
ROOTS = ("/path/to/root", "photos/")  # image folders: the workspace itself


@dataclass
class Snippet:
    """One command of a shell block, or one Python block, with its README line."""

    language: str
    line: int
    code: str
    skip: str | None = None

    @property
    def id(self) -> str:
        words = self.code.split()
        return f"README:{self.line}:{' '.join(words[:3])}"


def snippets(text: str | None = None) -> list[Snippet]:
    """The runnable snippets of the README, in order: each shell command (continuation lines joined), each
    Python block; a `# not run: REASON` comment marks what is skipped."""
    text = README.read_text() if text is None else text
    found: list[Snippet] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w+)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        language, start = fence.group(1), i + 1
        end = next(j for j in range(start, len(lines)) if lines[j].startswith("```"))
        body = lines[start:end]
        i = end + 1
        if language not in ("bash", "sh", "shell", "python"):
            continue
        block_skip = NOT_RUN.search(body[0]) if body else None
        if language == "python":
            found.append(Snippet("python", start + 1, "\n".join(body),
                                 block_skip.group("reason") if block_skip else None))
            continue
        command, first = "", None
        for k, raw in enumerate(body):
            if first is None:
                first = start + 1 + k
            command += raw.rstrip()
            if command.endswith("\\"):
                command = command[:-1] + " "
                continue
            if command.strip() and not command.strip().startswith("#"):
                mark = NOT_RUN.search(command) or block_skip
                found.append(Snippet("bash", first, command.strip(), mark.group("reason") if mark else None))
            command, first = "", None
    return found


def test_the_readme_has_runnable_blocks_and_marks_the_rest() -> None:
    found = snippets()
    run = [s for s in found if s.skip is None]
    assert len(run) >= 15, [s.id for s in run]
    assert any(s.code.startswith("multitask compare") for s in run)
    assert all(s.skip.strip() for s in found if s.skip is not None)
    example = "```bash\nmultitask a \\\n  --b 1   # note\nmake x   # builds; not run: slow\n```\n"
    assert [(s.line, s.code, s.skip) for s in snippets(example)] == [
        (2, "multitask a    --b 1   # note", None), (4, "make x   # builds; not run: slow", "slow")]


# ------------------------------------------------------------------------------------------------ workspace


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the README's example files, tiny and generated."""
    from multitask.data.generators import generate_road_scenes

    folder = tmp_path_factory.mktemp("readme")
    labels = generate_road_scenes(folder, n_images=64, image_size=32, unknown_fraction=0.3, seed=0)
    assert labels == folder / "labels.csv"
    frame = pd.read_csv(labels, dtype=str, keep_default_na=False)
    frame.to_csv(folder / "other_labels.csv", index=False)
    frame[["image", "pedestrian", "car", "split"]].to_csv(folder / "a.csv", index=False)
    frame[["image", "stop_sign", "traffic_light", "split"]].to_csv(folder / "b.csv", index=False)
    frame[["image", "car"]].head(30).to_csv(folder / "cars.csv", index=False)
    frame[["image", "stop_sign"]].iloc[20:50].to_csv(folder / "signs.csv", index=False)
    images = sorted((folder / "images").glob("*.png"))
    (folder / "new_images").mkdir()
    for image in images[:3]:
        shutil.copy(image, folder / "new_images" / image.name)
    shutil.copy(images[0], folder / "photo.jpg")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5))
    y = (x @ rng.normal(size=(5, 3)) > 0).astype(int).astype(str)
    y[rng.random(y.shape) < 0.2] = "?"
    table = pd.DataFrame(x.round(4), columns=[f"x{i}" for i in range(5)])
    for j, task in enumerate("abc"):
        table[task] = y[:, j]
    table.to_csv(folder / "table.csv", index=False)
    (folder / "annotations").mkdir()
    for name, objects in (("0001", ["car", "person"]), ("0002", ["car"]), ("0003", [])):
        body = "".join(f"<object><name>{o}</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
                       f"<xmax>5</xmax><ymax>5</ymax></bndbox></object>" for o in objects)
        (folder / "annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename>{body}</annotation>")
    (folder / "instances_train.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "1.jpg"}, {"id": 2, "file_name": "2.jpg"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "iscrowd": 0, "bbox": [0, 0, 1, 1]}],
        "categories": [{"id": 3, "name": "car"}, {"id": 1, "name": "person"}]}))
    (folder / "image-labels.csv").write_text("ImageID,Source,LabelName,Confidence\nimg1,verification,/m/0k4j,1\n"
                                             "img1,verification,/m/01g317,0\nimg2,verification,/m/0k4j,0\n")
    (folder / "classes.csv").write_text("/m/0k4j,Car\n/m/01g317,Person\n")
    return folder


def shell_arguments(command: str, folder: Path) -> list[str]:
    """The command's words with the README's marked substitutions: the image root, one epoch, small_cnn."""
    words = [folder.as_posix() if w in ROOTS else w for w in shlex.split(command, comments=True)]
    words = ["small_cnn" if w == "resnet18" else w for w in words]
    if len(words) > 1 and words[0] == "multitask" and words[1] in TRAINING and "--resume" not in words:
        if "--epochs" in words:
            words[words.index("--epochs") + 1] = "1"
        elif words[1] != "advise":
            words += ["--epochs", "1"]
        else:
            words += ["--train.epochs", "1"]
    return words


def python_namespace() -> dict:
    """The Python examples' own names for the user's data: X, Y (NaN = unknown), X_test."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4)).astype(np.float32)
    y = (x[:, :2] > 0).astype(float)
    y[rng.random(y.shape) < 0.2] = np.nan
    return {"X": x, "Y": y, "X_test": x[:10]}


README_SNIPPETS = snippets()


@pytest.mark.slow
@pytest.mark.readme
@pytest.mark.parametrize("snippet", README_SNIPPETS, ids=[s.id for s in README_SNIPPETS])
def test_readme_snippet_runs(snippet: Snippet, workspace: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture) -> None:
    if snippet.skip:
        pytest.skip(f"README line {snippet.line}: {snippet.skip}")
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("COLUMNS", "100")
    if snippet.language == "python":
        code = snippet.code.replace('"resnet18"', '"small_cnn"')
        code = re.sub(r"(epochs=|\"epochs\": )\d+", r"\g<1>1", code)
        exec(compile(code, f"README.md:{snippet.line}", "exec"), python_namespace())
        return
    words = shell_arguments(snippet.code, workspace)
    assert words[0] == "multitask", f"README line {snippet.line}: only `multitask` commands run here; mark " \
                                    f"others `# not run: REASON`: {snippet.code}"
    from multitask.cli import run_cli

    code = run_cli(words[1:])
    out = capsys.readouterr()
    assert code == 0, f"README line {snippet.line}: {snippet.code}\nexit {code}\n{out.out}\n{out.err}"


# ------------------------------------------------------------------------------------------------- hints


HINT = re.compile(r"(?:use|with|give|try)\s+`?(--[a-z][a-z_.-]*)[ =]([A-Za-z0-9_.]+)")


def source_hints() -> list[tuple[str, str, str]]:
    """(file, option, value) of every `use --section.key VALUE` or `use --short-flag VALUE` hint in the package's
    messages (flags of one command, such as --out, are that command's business)."""
    from multitask.cli import SHORTCUTS

    found = []
    for path in sorted(SRC.rglob("*.py")):
        for option, value in HINT.findall(path.read_text()):
            if "." in option or option[2:] in SHORTCUTS:
                found.append((str(path.relative_to(SRC)), option, value))
    return found


def test_hints_in_messages_name_options_that_exist() -> None:
    """An option a message suggests is a config key taking that value, in the spelling the commands accept."""
    from multitask.cli import ALL_SHORTCUTS, expand_shortcuts
    from multitask.config import apply_overrides, build_config
    from multitask.errors import ConfigError

    hints = source_hints()
    assert ("data/datasets.py", "--data.missing_images", "skip") in hints and ("--trunk", "mlp") in \
        [(o, v) for _, o, v in hints]
    for file, option, value in hints:
        try:
            apply_overrides(build_config({}), expand_shortcuts([option, value], ALL_SHORTCUTS))
        except ConfigError as error:
            pytest.fail(f"{file}: the hint `{option} {value}` is refused: {error}")


def test_the_missing_images_hint_is_accepted_by_the_commands_that_read_images(tmp_path: Path) -> None:
    """`--data.missing_images skip` (the hint's spelling) is taken by train, compare and evaluate."""
    from typer.testing import CliRunner

    from multitask.cli import app

    runner = CliRunner()
    for command in ("train", "compare", "evaluate"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0
    evaluate = runner.invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200"})
    assert "--data.missing_images" in evaluate.output
    from multitask.cli import assemble_config

    assert assemble_config(None, ["--data.missing_images", "skip"]).data.missing_images == "skip"
    assert assemble_config(None, ["--data.missing_images=skip"]).data.missing_images == "skip"
