"""Report files: the document model (Markdown and HTML from one source, escaping, tables), the plots (known
answers for the thresholds' points, titles and labels, legends outside the data) and a real run's report."""

import base64
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from multitask.config import build_config
from multitask.reporting import plots
from multitask.reporting.document import Document, Facts, Plot, Section, Table, Text, to_html, to_markdown

PNG = b"\x89PNG\r\n\x1a\n"


def test_html_escapes_everything_but_code_and_bold() -> None:
    doc = Document("Run `x<y>`", [Section("A & B", [
        Text("**bold** <script>alert(1)</script> `a<b`"),
        Facts([("data", "`labels<1>.csv`")]),
        Table(["task", "AP"], [["<img src=x onerror=alert(1)>", "0.5"]], main=True)])])
    html = to_html(doc)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<strong>bold</strong>" in html
    assert "<code>a&lt;b</code>" in html and "<h2>A &amp; B</h2>" in html
    assert "<title>Run x&lt;y&gt;</title>" in html


def test_markdown_and_html_come_from_one_document() -> None:
    table = Table(["task", "known", "AP", "Δ"], [["car", "1,203", "0.912", "+0.004 [-0.001, +0.012] (n.s.)"],
                                                   ["bus", "17", "–", "-0.130 [-0.209, -0.051]*"]],
                  footer=[["macro mean", "", "0.912", ""]], main=True)
    doc = Document("t", [Section("Per task", [table, Plot("ap", "t: AP", PNG + b"rest")])])
    markdown = to_markdown(doc)
    assert "| car | 1,203 | 0.912 | +0.004 [-0.001, +0.012] (n.s.) |" in markdown
    assert "| **macro mean** |  | 0.912 |  |" in markdown and "![t: AP](plots/ap.png)" in markdown
    html = to_html(doc)
    body = re.search(r'<table id="tasks">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    assert body.count("<tr>") == 2  # one row per task; the macro mean is in <tfoot>
    assert "<tfoot>" in html and html.count('<td class="num">') >= 6
    assert table.numeric_columns() == {1, 2, 3}
    assert f'src="data:image/png;base64,{base64.b64encode(PNG + b"rest").decode()}"' in html


def test_threshold_points_are_the_known_answers() -> None:
    y = np.array([0, 1, 1, 0])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    s = plots.Scores("", y, p, 0.35)  # predicts [0, 1, 1, 1]: tp 2, fp 1, fn 0, tn 1
    assert plots._threshold_point("pr", s) == pytest.approx((1.0, 2 / 3))
    assert plots._threshold_point("roc", s) == pytest.approx((0.5, 1.0))
    assert plots._threshold_point("roc", plots.Scores("", y, p, 0.9)) == (0.0, 0.0)


def _overlaps(a, b) -> bool:  # noqa: ANN001 (matplotlib Bbox)
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _check_figure(figure, title: str) -> None:  # noqa: ANN001
    renderer = figure.canvas.get_renderer()
    figure.draw(renderer)
    assert title in figure.get_suptitle()
    axes = [a for a in figure.axes if a.get_visible() and a.get_label() != "<colorbar>"]
    for axis in axes:
        assert axis.get_xlabel() and any(a.get_ylabel() for a in axis.get_shared_y_axes().get_siblings(axis))
        if axis.get_legend() is not None:  # per-panel legends sit below their panel
            assert not _overlaps(axis.get_legend().get_window_extent(renderer), axis.get_window_extent(renderer))
    for legend in figure.legends:
        box = legend.get_window_extent(renderer)
        assert not any(_overlaps(box, a.get_window_extent(renderer)) for a in axes)


def test_plots_are_titled_labelled_with_legends_outside_the_data() -> None:
    rng = np.random.default_rng(0)
    panels = []
    for task in ("car", "bus", "stop_sign", "light"):
        y = (rng.random(120) < 0.4).astype(int)
        panels.append((task, [plots.Scores(a, y, np.clip(0.3 * y + 0.7 * rng.random(120), 0, 1), 0.5)
                              for a in ("shared", "separate")]))
    for kind in ("pr", "roc"):
        task, series = panels[0]
        figure = plots.curve_panel(kind, task, series, "demo: curves")
        _check_figure(figure, "demo: curves")
        assert [a.get_title() for a in figure.axes] == ["car"]
        labels = figure.legends[0].get_texts()
        labels = [t.get_text() for t in labels]
        ap = average_precision_score(series[0].y, series[0].p)
        assert (f"shared: AP {ap:.3f}" in labels) == (kind == "pr") and "shared: threshold 0.50" in labels
        assert "separate: threshold 0.50" in labels
    _check_figure(plots.calibration([s for _, series in panels for s in series[:1]], "demo: calibration"),
                  "demo: calibration")
    history = [{"epoch": e, "train_loss": 1 / (e + 1), "val_loss": 1.2 / (e + 1), "val_map": 0.5 + e / 10}
               for e in range(4)]
    for metrics in (["loss"], ["val_map"], ["loss", "val_map"]):
        figure = plots.learning_curves(history, "demo: learning curves", metrics, best_epoch=3)
        _check_figure(figure, "demo: learning curves")
        assert list(figure.axes[0].lines[0].get_xdata()) == [1, 2, 3, 4]  # epochs counted from 1
    tasks = [{"task": t, "average_precision": 0.9, "roc_auc": 0.8, "f1": 0.7} for t in ("a", "b")]
    _check_figure(plots.task_metrics(tasks, "demo: per task"), "demo: per task")
    assert plots.task_metrics(tasks[:1], "one task") is None  # no lonely bar: its table and curves say it
    assert plots.learning_curves([], "none") is None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_features: Path):  # noqa: ANN201
    from multitask.pipeline import train_run

    root = tmp_path_factory.mktemp("report-run")
    config = build_config({"root": str(root), "name": "tiny", "data": {"path": str(tiny_features),
                                                                       "tasks": ["a", "b", "c"]},
                           "model": {"trunk": "mlp", "trunk_options": {"hidden": [8]}},
                           "train": {"epochs": 2, "progress": False, "lr": 0.01}})
    return train_run(config, quiet=True)


@pytest.mark.slow
def test_a_run_writes_markdown_and_a_self_contained_html_report(tiny_run) -> None:  # noqa: ANN001
    folder = tiny_run.path
    html = (folder / "report.html").read_text()
    markdown = (folder / "report.md").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html) and "<script" not in html
    assert "<link" not in html and "@import" not in html
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    names = re.findall(r"\(plots/(\w+)\.png\)", markdown)
    assert len(images) == len(names) == 10 and html.count("<img") == 10
    for data, name in zip(images, names, strict=True):
        assert base64.b64decode(data) == (folder / "plots" / f"{name}.png").read_bytes()
    assert set(names) == {"learning_loss", "learning_val_map", "task_metrics", "calibration",
                          *(f"{kind}_{j}_{t}" for kind in ("pr", "roc") for j, t in (("01", "a"), ("02", "b"),
                                                                                    ("03", "c")))}
    body = re.search(r'<table id="tasks">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    assert re.findall(r'<th scope="row">(\w+)</th>', body) == ["a", "b", "c"]
    test = tiny_run.metrics["test"]["tasks"][0]
    assert f'<td class="num">{test["n_known"]}</td>' in body and f"{test['average_precision']:.3f}" in body
    for setting in ("<code>mlp</code>", "epochs (planned)", "command line", "training examples"):
        assert setting in html
    assert "Rerun: `multitask train --config config.yaml`" in markdown


@pytest.mark.slow
def test_a_one_task_network_gets_curves_not_a_lonely_bar(tmp_path: Path, tiny_features: Path) -> None:
    from multitask.pipeline import train_run

    config = build_config({"root": str(tmp_path), "name": "one", "data": {
                               "path": str(tiny_features), "tasks": ["b"],
                               "feature_columns": [f"f{i}" for i in range(8)]},
                           "model": {"trunk": "mlp", "trunk_options": {"hidden": [8]}},
                           "train": {"epochs": 1, "progress": False}})
    run = train_run(config, quiet=True)
    names = {p.stem for p in (run.path / "plots").iterdir()}
    assert names == {"learning_loss", "learning_val_map", "pr_01_b", "roc_01_b", "calibration"}


def test_settings_name_trunk_epochs_and_image_size() -> None:
    from multitask.reporting.run import settings

    items = dict(settings(build_config({"data": {"path": "labels.csv", "image_size": 64},
                                        "model": {"trunk": "small_cnn"}, "train": {"epochs": 7}})))
    assert (items["trunk"], items["epochs (planned)"], items["image size"]) == ("`small_cnn`", "7", "64 px")
    assert "image size" not in dict(settings(build_config({"model": {"trunk": "mlp"}})))
