"""The `multitask` command line: a thin layer over the Python API.

Every config key can be set from the command line as `--section.key VALUE` (or `section.key=VALUE`), e.g.
`--train.epochs 5 --loss.pos_weight balanced`; the common ones also have short flags (`--epochs 5`).
"""

from __future__ import annotations

import difflib
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from multitask.config import ConfigError, RunConfig, apply_overrides, build_config, load_config, valid_keys
from multitask.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train one network for many yes/no tasks (unknown labels welcome), "
                       "and compare it with separate networks.")
import_app = typer.Typer(no_args_is_help=True, help="Convert other label formats into a label table.")
app.add_typer(import_app, name="import")
console = Console(highlight=False)
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}

# ---------------------------------------------------------------------------------------------- config


# One definition of the short flags shared by the config-driven commands: each is only another spelling of a
# config key, so its value is typed by the same schema as `--section.key VALUE` and the YAML file.
SHORTCUTS: dict[str, str] = {
    "data": "data.path",
    "images": "data.images",
    "trunk": "model.trunk",
    "weights": "model.weights",
    "epochs": "train.epochs",
    "batch-size": "train.batch_size",
    "lr": "train.lr",
    "seed": "train.seed",
    "name": "name",
    "root": "root",
    "accelerator": "train.accelerator",
    "devices": "train.devices",
    "weighting": "train.weighting",
    "image-size": "data.image_size",
    "tasks": "data.tasks",
}
ALL_SHORTCUTS = tuple(SHORTCUTS)
TRANSFER_SHORTCUTS = tuple(s for s in SHORTCUTS if s not in ("trunk", "weights", "weighting", "image-size"))
ADVISE_SHORTCUTS = ("data", "images", "trunk", "weights", "batch-size", "lr", "seed", "image-size", "tasks")


def shortcut_help(names: tuple[str, ...]) -> str:
    """The epilog of a command's --help: its short flags and the config key each one sets."""
    flags = "; ".join(f"--{n} ({SHORTCUTS[n]})" for n in names)
    return (f"Config keys: --section.key VALUE or section.key=VALUE (see `multitask config`). "
            f"Short flags: {flags}.")


def expand_shortcuts(args: list[str], allowed: tuple[str, ...]) -> list[str]:
    """Rewrite a command's short flags into the config keys they stand for; unknown flags get a suggestion.

    >>> expand_shortcuts(["--epochs", "3", "--tasks=a,b", "train.lr=0.1"], ALL_SHORTCUTS)
    ['--train.epochs', '3', '--data.tasks=a,b', 'train.lr=0.1']
    """
    out = []
    for token in args:
        flag, eq, value = token.partition("=")
        name = flag[2:] if flag.startswith("--") else None
        if name in allowed:
            out.append(f"--{SHORTCUTS[name]}{eq}{value}")
        elif name is None or "." in name or name.replace("-", "_") in valid_keys():
            out.append(token)
        else:
            known = [f"--{n}" for n in allowed]
            close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(f"no such option: {flag}.{hint} Short flags here: {', '.join(known)}; any config key "
                              "as --section.key VALUE (see `multitask config`)")
    return out


def _absolute(path: Any) -> Any:
    return str(Path(path).expanduser().resolve()) if path not in (None, "") else path


def assemble_config(config_file: Path | None, args: list[str], allowed: tuple[str, ...] = ALL_SHORTCUTS,
                    base: dict[str, Any] | None = None) -> RunConfig:
    """Defaults ← YAML file ← `base` values ← command-line args (short flags and --section.key, typed by the
    schema); data paths made absolute."""
    config = load_config(config_file) if config_file else build_config({})
    if base:
        config = apply_overrides(config, base)
    config = apply_overrides(config, expand_shortcuts(list(args), allowed))
    paths = {"data.path": _absolute(config.data.path), "data.images": _absolute(config.data.images)}
    weights = config.model.weights
    if weights and Path(weights).expanduser().exists():
        paths["model.weights"] = _absolute(weights)
    return apply_overrides(config, paths)


class MissingImages(StrEnum):
    error = "error"
    skip = "skip"


ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.", exists=True,
                                                dir_okay=False)]
ImagesOpt = Annotated[Path | None, typer.Option("--images", help="Image root folder.")]
ResumeOpt = Annotated[Path | None, typer.Option("--resume", help="Continue an unfinished run (or comparison) "
                                                "directory from its last finished epoch.")]


# ---------------------------------------------------------------------------------------------- tables


def _f(value: Any, digits: int = 3) -> str:
    from multitask.report import fmt

    return fmt(value, digits)


def metrics_rich_table(split_metrics: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    for column in ("task", "known", "positives", "AP", "ROC-AUC", "F1", "accuracy", "threshold"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for m in split_metrics["tasks"]:
        table.add_row(m["task"], str(m["n_known"]), str(m["n_positive"]), _f(m["average_precision"]),
                      _f(m["roc_auc"]), _f(m["f1"]), _f(m["accuracy"]), _f(m["threshold"]))
    macro = split_metrics["macro"]
    table.add_row("[bold]macro mean[/bold]", "", "", _f(macro["average_precision"]), _f(macro["roc_auc"]),
                  _f(macro["f1"]), _f(macro["accuracy"]), "")
    return table


def print_comparison(comparison: Any) -> None:
    seeds = f", mean ± std over {comparison.n_seeds} seeds" if comparison.n_seeds > 1 else ""
    for key, short in (("average_precision", "AP"), ("roc_auc", "ROC-AUC"), ("f1", "F1")):
        table = Table(title=f"Test {short} per task (known labels only{seeds})")
        header = comparison.task_header(short, with_ci=key == "average_precision")
        for column in header:
            table.add_column(column, justify="left" if column == "task" else "right")
        for row in comparison.task_rows(key):
            cells = []
            for column, text in zip(header, row, strict=True):
                if column.startswith("Δ") and "n.s." not in text and text.strip().startswith(("+", "-")):
                    colour = "green" if text.strip().startswith("+") else "red"
                    text = f"[{colour}]{escape(text)}[/{colour}]"
                else:
                    text = escape(text)
                cells.append(text)
            table.add_row(*cells)
        console.print(table)
    console.print("Δ: difference from the first approach; for AP with a 95 % bootstrap interval over test examples"
                  + (" and seeds" if comparison.n_seeds > 1 else "") + "; n.s. = the interval contains 0.")
    cost = Table(title="Cost")
    for column in ("approach", "parameters", "training time (s)", "inference ms / example (all tasks)"):
        cost.add_column(column, justify="left" if column == "approach" else "right")
    for name, params, seconds, ms in comparison.cost_rows():
        cost.add_row(name, f"{params:,}", f"{seconds:.1f}", f"{ms:.3f}")
    console.print(cost)


# ------------------------------------------------------------------------------------------------ commands


@app.command(context_settings=EXTRA_ARGS, epilog=shortcut_help(ALL_SHORTCUTS))
def train(ctx: typer.Context, config: ConfigOpt = None, resume: ResumeOpt = None) -> None:
    """Train one shared network on a label table; write runs/<name>/ with metrics and a report."""
    from multitask.pipeline import resume_run, train_run

    if resume is not None:  # the run's own config.yaml; options would contradict it
        if ctx.args or config is not None:
            raise ConfigError("--resume continues a run with its own config.yaml: give no other options")
        run = resume_run(resume)
        _print_run(run.metrics, run.path)
        return
    cfg = assemble_config(config, ctx.args)
    run = train_run(cfg)
    _print_run(run.metrics, run.path)


def _print_run(metrics: dict[str, Any], path: Path) -> None:
    for split in ("val", "test"):
        if split in metrics:
            console.print(metrics_rich_table(metrics[split], f"{split} metrics (thresholds chosen on val)"))
    console.print(f"Run saved in [bold]{path}[/bold] (report: {path / 'report.md'})")


@app.command(context_settings=EXTRA_ARGS, epilog=shortcut_help(ALL_SHORTCUTS))
def compare(ctx: typer.Context, config: ConfigOpt = None,
            approaches: Annotated[str, typer.Option(help="Comma-separated: shared, separate, groups, "
                                                    "shared_pretrained, separate_pretrained.")] = "shared,separate",
            seeds: Annotated[int, typer.Option(help="Train every approach with this many seeds.")] = 1,
            groups: Annotated[str | None, typer.Option(help="Task groups for the groups approach: 'a,b;c,d' "
                                                       "(tasks in no group train alone).")] = None,
            pretrained: Annotated[str | None, typer.Option(help="Trunk weights for the *_pretrained "
                                                           "approaches (file or torchvision name).")] = None,
            resume: ResumeOpt = None) -> None:
    """Train one shared network and T separate networks (or groups, pretrained…); print per-task metrics,
    differences with confidence intervals, and cost."""
    from multitask.compare import compare as run_compare

    cfg = assemble_config(config, ctx.args)
    names = [a.strip() for a in approaches.split(",") if a.strip()]
    group_list = [[t.strip() for t in g.split(",") if t.strip()] for g in groups.split(";")] if groups else None
    if group_list and "groups" not in names:
        names.append("groups")
    if pretrained and Path(pretrained).expanduser().exists():
        pretrained = _absolute(pretrained)
    comparison = run_compare(cfg, approaches=names, seeds=seeds, groups=group_list, pretrained=pretrained,
                             resume=resume)
    print_comparison(comparison)
    console.print(f"Comparison saved in [bold]{comparison.path}[/bold] (report: {comparison.path}/report.md)")


@app.command(context_settings=EXTRA_ARGS, epilog=shortcut_help(TRANSFER_SHORTCUTS))
def transfer(ctx: typer.Context,
             source: Annotated[Path, typer.Option("--from", help="Trained run whose trunk starts the new run.")],
             config: ConfigOpt = None,
             freeze_trunk: Annotated[bool, typer.Option(help="Train only the new heads.")] = False,
             unfreeze_after: Annotated[int | None, typer.Option(help="With --freeze-trunk: fine-tune all "
                                                                "after N epochs.")] = None,
             trunk_lr_scale: Annotated[float | None, typer.Option(help="Trunk learning rate = lr × this.")] = None,
             ) -> None:
    """Transfer learning: a new run for new tasks, its trunk started from a trained run (new heads)."""
    from multitask.pipeline import train_run
    from multitask.runs import check_finished

    expand_shortcuts(ctx.args, TRANSFER_SHORTCUTS)  # a flag transfer does not take, before anything is read
    check_finished(source)
    source_config = load_config(source / "config.yaml")
    model = source_config.model.model_dump(mode="json")
    model.update({"weights": None, "init_from": _absolute(source)})
    given = {"train.freeze_trunk": freeze_trunk or None, "train.unfreeze_after": unfreeze_after,
             "train.trunk_lr_scale": trunk_lr_scale}
    base = {**{f"model.{k}": v for k, v in model.items()}, **{k: v for k, v in given.items() if v is not None}}
    cfg = assemble_config(config, ctx.args, TRANSFER_SHORTCUTS, base=base)
    if cfg.data.image_size != source_config.data.image_size and "data.image_size" not in " ".join(ctx.args):
        cfg = apply_overrides(cfg, {"data.image_size": source_config.data.image_size})
    run = train_run(cfg)
    _print_run(run.metrics, run.path)


@app.command("advise", context_settings=EXTRA_ARGS, epilog=shortcut_help(ADVISE_SHORTCUTS))
def advise_cmd(
    ctx: typer.Context, config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option(help="Write advice.json, report.md and plots/ here.")] = None,
    probe_steps: Annotated[int, typer.Option(help="Probe training steps (0: from the labels only).")] = 200,
    probe_seconds: Annotated[float, typer.Option(help="Time limit of the probe (s).")] = 45.0,
    probe_rows: Annotated[int, typer.Option(help="Training rows used by the probe.")] = 2000,
    probe_image_size: Annotated[int, typer.Option(help="Image size of the probe (px).")] = 32,
    capacity: Annotated[bool, typer.Option("--capacity/--no-capacity",
                                           help="Compare the shared network with each task's own.")] = True,
    capacity_seconds: Annotated[float, typer.Option(help="Time limit of the capacity check (s).")] = 30.0,
    tag: Annotated[bool | None, typer.Option("--tag/--no-tag", help="Lookahead task affinity (default: T ≤ 20).")]
    = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (1 is fastest on a busy machine).")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Finish an interrupted `advise --out DIR`: "
                                                "reuse its saved probe and capacity checks, compute the rest.")]
    = None,
) -> None:
    """Should these tasks share one network? Measures the three conditions on your data and recommends."""
    from multitask.advise import advise
    from multitask.advise.parts import saved_inputs

    options = {"probe_steps": probe_steps, "probe_seconds": probe_seconds, "probe_rows": probe_rows,
               "probe_image_size": probe_image_size, "capacity_check": capacity, "capacity_seconds": capacity_seconds,
               "tag": tag}
    if resume is not None:  # options not given take the saved values; given ones must match them
        if out is not None and out.resolve() != resume.resolve():
            raise ConfigError(f"--resume {resume} writes the advice there: give no other --out")
        out = resume
        saved_config, saved = saved_inputs(resume)
        for name in options:
            cli_name = "capacity" if name == "capacity_check" else name
            source = ctx.get_parameter_source(cli_name)  # ParameterSource.DEFAULT: not on the command line
            if getattr(source, "name", None) == "DEFAULT" and name in saved:
                options[name] = saved[name]
        cfg = saved_config if config is None and not ctx.args else assemble_config(config, ctx.args,
                                                                                    ADVISE_SHORTCUTS)
    else:
        cfg = assemble_config(config, ctx.args, ADVISE_SHORTCUTS)
    result = advise(cfg, **options, threads=threads, out_dir=out, resume=resume is not None,
                    log=lambda m: console.print(f"[dim]{escape(m)}[/dim]"))
    for table in result.rich_tables():
        console.print(table)
    if out:
        console.print(f"Advice saved in [bold]{out}[/bold] (report: {out / 'report.md'})")


@app.command()
def evaluate(run: Annotated[Path, typer.Argument(help="Run directory.")],
             data: Annotated[Path, typer.Option(help="Label table with the run's task columns.")],
             images: ImagesOpt = None,
             split: Annotated[str, typer.Option(help="Rows to evaluate: test, val, train or all.")] = "all",
             out: Annotated[Path | None, typer.Option(help="Write the metrics as JSON here.")] = None,
             missing_images: Annotated[MissingImages, typer.Option(
                 "--data.missing_images", help="skip: leave out rows whose image is missing or unreadable.")]
             = MissingImages.error) -> None:
    """Metrics of a trained run on a labelled table (known labels only, the run's thresholds)."""
    from multitask.evaluation import evaluate as evaluate_run
    from multitask.runs import write_json

    result = evaluate_run(run, data, images=images, split=split, missing_images=missing_images.value)
    console.print(metrics_rich_table(result, f"{data.name}: {split} rows ({result['n_examples']})"))
    if out:
        write_json(out, result)


@app.command()
def predict(run: Annotated[Path, typer.Argument(help="Run directory.")],
            inputs: Annotated[list[Path], typer.Argument(help="Image files, image folders, or one table.")],
            out: Annotated[Path, typer.Option(help="Output CSV.")] = Path("predictions.csv"),
            images: ImagesOpt = None) -> None:
    """Per-task probability and decision for new inputs, written as CSV."""
    from multitask.predict import predict_inputs

    frame = predict_inputs(run, inputs, image_root=images)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    console.print(f"{len(frame)} predictions written to [bold]{out}[/bold]")


@app.command()
def info(run: Annotated[Path, typer.Argument(help="Run directory.")]) -> None:
    """What a run is: data, tasks, model, thresholds and metrics (or, unfinished, how to resume it)."""
    from multitask.runs import describe_status, last_checkpoint, load_run, read_status, resume_hint

    status = read_status(run) if run.is_dir() else None
    if status is not None and status["status"] != "finished":
        console.print(f"[bold]{escape(str(run))}[/bold]: unfinished run, status {escape(describe_status(status))}")
        console.print(f"started {status.get('started')}, last update {status.get('updated')}, "
                      f"pid {status.get('pid')} on {status.get('host')}")
        checkpoint = last_checkpoint(run)
        console.print(f"checkpoint: {escape(str(checkpoint)) if checkpoint else 'none (no epoch finished)'}; "
                      + escape(resume_hint(run)))
        return
    trained = load_run(run)
    m, cfg = trained.metrics, trained.config
    console.print(f"[bold]{trained.path}[/bold]")
    console.print(f"data: {cfg.data.path}  ({trained.input_kind}; {len(trained.tasks)} tasks)")
    console.print(f"model: trunk {cfg.model.trunk}, sharing {cfg.model.sharing}, "
                  f"{m.get('parameters', 0):,} parameters; weighting {cfg.train.weighting}")
    console.print(f"training: {m.get('epochs')} epochs, best epoch {m.get('best_epoch')}, "
                  f"{_f(m.get('train_seconds'), 1)} s on {m.get('machine')}")
    if "test" in m:
        console.print(metrics_rich_table(m["test"], "test metrics"))
    else:
        console.print("tasks: " + ", ".join(trained.tasks))


@app.command("runs")
def runs_cmd(root: Annotated[Path, typer.Option(help="Folder of run directories.")] = Path("runs")) -> None:
    """List the runs under --root: status, name, data, epochs done / planned, test mAP."""
    from multitask.runs import list_runs

    table = Table(title=f"runs in {root}")
    for column in ("status", "name", "data", "epochs", "test mAP"):
        table.add_column(column, justify="right" if column in ("epochs", "test mAP") else "left")
    for summary in list_runs(root):
        table.add_row(escape(summary.status), escape(summary.name), escape(summary.data), summary.epochs,
                      _f(summary.test_map))
    console.print(table)


@app.command()
def export(run: Annotated[Path, typer.Argument(help="Run directory.")],
           out: Annotated[Path, typer.Option(help="Output .onnx file.")] = Path("model.onnx")) -> None:
    """Export a run's network to ONNX (input normalisation included; task names and thresholds as metadata)."""
    from multitask.export import export_onnx

    path = export_onnx(run, out)
    console.print(f"ONNX model written to [bold]{path}[/bold]: input 'input', output 'logits' (one per task)")


@app.command()
def generate(out: Annotated[Path, typer.Argument(help="Output folder.")],
             n_images: Annotated[int, typer.Option("--images", help="Number of images.")] = 2000,
             image_size: Annotated[int, typer.Option("--image-size")] = 64,
             extra_tasks: Annotated[int, typer.Option(help="Attribute tasks beyond the 4 base tasks.")] = 0,
             unknown_fraction: Annotated[float, typer.Option(help="Hide this fraction of train/val labels.")] = 0.0,
             seed: Annotated[int, typer.Option()] = 0) -> None:
    """Generate the built-in road-scene data set: images + labels.csv."""
    from multitask.data.generators import generate_road_scenes

    path = generate_road_scenes(out, n_images=n_images, image_size=image_size, extra_tasks=extra_tasks,
                                unknown_fraction=unknown_fraction, seed=seed, progress=sys.stdout.isatty())
    console.print(f"Wrote {n_images} images and [bold]{path}[/bold]")


@app.command()
def demo(out: Annotated[Path, typer.Option(help="Folder for the data and the runs.")] = Path("runs/demo"),
         n_images: Annotated[int, typer.Option("--images", help="Generated images.")] = 2400,
         image_size: Annotated[int, typer.Option("--image-size")] = 64,
         epochs: Annotated[int, typer.Option(help="Epochs for every network.")] = 10,
         hide: Annotated[float, typer.Option(help="Fraction of train/val labels hidden.")] = 0.3,
         seed: Annotated[int, typer.Option()] = 0) -> None:
    """Generate road scenes, hide 30 % of the labels, train the shared and 4 separate networks, compare."""
    from multitask.demo import run_demo

    comparison = run_demo(out, n_images=n_images, image_size=image_size, epochs=epochs, hide=hide, seed=seed,
                          console=console)
    print_comparison(comparison)
    console.print(f"Report: [bold]{comparison.path / 'report.md'}[/bold]")


@app.command()
def trunks() -> None:
    """List the trunk names."""
    from multitask.models.trunks import IMAGE_TRUNKS, TRUNKS

    for name in TRUNKS.names():
        console.print(f"{name}\t{'images' if name in IMAGE_TRUNKS else 'feature vectors'}")


@app.command()
def methods() -> None:
    """List the task weighting / gradient methods."""
    from multitask.weighting import WEIGHTINGS

    for name in WEIGHTINGS.names():
        factory = WEIGHTINGS.get(name)
        console.print(f"{name}\t{(factory.__doc__ or '').strip().splitlines()[0]}")


@app.command("config")
def show_config(config: ConfigOpt = None,
                markdown: Annotated[bool, typer.Option(help="Print the reference table instead.")] = False) -> None:
    """Print the full config (defaults, or a file's values with defaults filled in) and the key list."""
    if markdown:
        from multitask.config import reference_markdown

        print(reference_markdown())
        return
    cfg = load_config(config) if config else RunConfig()
    console.print(cfg.to_yaml(), markup=False)
    console.print("# keys: " + ", ".join(valid_keys()), markup=False)


# ----------------------------------------------------------------------------------------------- imports


@import_app.command("voc")
def import_voc_cmd(annotations: Annotated[Path, typer.Argument(help="Folder of Pascal VOC XML files.")],
                   out: Annotated[Path, typer.Option(help="Output label table (.csv or .parquet).")],
                   classes: Annotated[str | None, typer.Option(help="Comma-separated classes.")] = None,
                   difficult: Annotated[str, typer.Option(help="positive | unknown | ignore.")] = "positive"
                   ) -> None:
    """Pascal VOC annotations → presence of each class per image."""
    from multitask.importers import import_voc, write_label_table

    frame = import_voc(annotations, classes=classes.split(",") if classes else None, difficult=difficult)
    write_label_table(frame, out, inputs=sorted(Path(annotations).glob("*.xml")))
    console.print(f"{len(frame)} images × {frame.shape[1] - 1} classes → [bold]{out}[/bold]")


@import_app.command("coco")
def import_coco_cmd(instances: Annotated[Path, typer.Argument(help="COCO instances JSON.")],
                    out: Annotated[Path, typer.Option(help="Output label table (.csv or .parquet).")],
                    classes: Annotated[str | None, typer.Option(help="Comma-separated category names.")] = None,
                    unannotated: Annotated[str, typer.Option(help="negative | drop | unknown.")] = "negative"
                    ) -> None:
    """COCO instances → presence of each category per image."""
    from multitask.importers import import_coco, write_label_table

    frame = import_coco(instances, classes=classes.split(",") if classes else None, unannotated=unannotated)
    write_label_table(frame, out, inputs=[instances])
    console.print(f"{len(frame)} images × {frame.shape[1] - 1} categories → [bold]{out}[/bold]")


@import_app.command("openimages")
def import_openimages_cmd(
    labels: Annotated[Path, typer.Argument(help="Open Images image-level labels CSV.")],
    out: Annotated[Path, typer.Option(help="Output label table (.csv or .parquet).")],
    descriptions: Annotated[Path | None, typer.Option(help="Class descriptions CSV (MID → name).")] = None,
    classes: Annotated[str | None, typer.Option(help="Comma-separated classes (names or MIDs).")] = None,
) -> None:
    """Open Images verified labels → 1 / 0, and ? where a class was not verified for an image."""
    from multitask.importers import import_openimages, write_label_table

    frame = import_openimages(labels, descriptions, classes=classes.split(",") if classes else None)
    write_label_table(frame, out, inputs=[labels, *([descriptions] if descriptions else [])])
    console.print(f"{len(frame)} images × {frame.shape[1] - 1} classes → [bold]{out}[/bold]")


@import_app.command("merge")
def import_merge_cmd(tables: Annotated[list[Path], typer.Argument(help="Label tables to merge.")],
                     out: Annotated[Path, typer.Option(help="Output label table (.csv or .parquet).")],
                     on: Annotated[str, typer.Option(help="Input column shared by the tables.")] = "image",
                     conflicts: Annotated[str, typer.Option(help="error | unknown | first.")] = "error") -> None:
    """Merge label tables that label different tasks: unknown where a source did not label a task."""
    from multitask.importers import merge_label_tables, write_label_table

    merged, summary = merge_label_tables([(path.stem, path) for path in tables], on=on, conflicts=conflicts)
    write_label_table(merged, out, inputs=tables)
    console.print(summary.to_markdown(), markup=False)
    console.print(f"{len(merged)} rows × {merged.shape[1] - 1} tasks → [bold]{out}[/bold]")


class _StderrHandler(logging.StreamHandler):
    """Log records to whatever sys.stderr is at the time (it may be replaced, e.g. by a test's capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _save_traceback(text: str) -> Path:
    """The traceback of an internal error: in the run directory this process was writing, else a temporary file."""
    import os
    import tempfile

    from multitask.distributed import RUN_DIR_VARIABLE
    from multitask.files import atomic_write_text

    run_dir = os.environ.get(RUN_DIR_VARIABLE)
    if run_dir and Path(run_dir).is_dir():
        try:
            path = Path(run_dir) / "traceback.txt"
            atomic_write_text(path, text)
            return path
        except OSError:
            pass
    handle, name = tempfile.mkstemp(prefix="multitask-traceback-", suffix=".txt")
    with os.fdopen(handle, "w") as file:
        file.write(text)
    return Path(name)


def report_internal_error(error: BaseException) -> int:
    """Say that multitask itself failed, save the full traceback and say where; the exit status (1)."""
    import traceback

    text = "".join(traceback.format_exception(error))
    try:
        where = f"the full traceback is in {_save_traceback(text)}"
    except OSError as failure:
        where = f"the traceback could not be saved ({failure})"
    console.print(f"[red]internal error of multitask[/red] (a bug, not a mistake in your input): "
                  f"{escape(type(error).__name__)}: {escape(str(error).splitlines()[0] if str(error) else '')}",
                  soft_wrap=True)
    console.print(f"{escape(where)}; please report it, with that file and the command line.", soft_wrap=True)
    return 1


EXIT_OK, EXIT_INTERNAL, EXIT_USER, EXIT_INTERRUPTED = 0, 1, 2, 130


def run_cli(args: list[str] | None = None) -> int:
    """Run the command line and return its exit status: 0 done, 1 internal error (traceback saved),
    2 user error (one line `error: …`), 130 interrupted."""
    from typer.exceptions import TyperException

    try:
        code = app(args=args, standalone_mode=False, prog_name="multitask")
    except typer.Exit as done:
        return done.exit_code
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C (the parser reports it as Abort)
        console.print("[red]interrupted[/red]")
        return EXIT_INTERRUPTED
    except TyperException as error:  # usage errors: a missing argument, an unknown command, a bad flag value
        show = getattr(error, "show", None)
        if callable(show):
            show()
        else:
            console.print("[red]error:[/red]", escape(error.format_message()), soft_wrap=True)
        return EXIT_USER
    except UserError as error:
        from multitask.training import TrainingInterrupted

        console.print("[red]error:[/red]", escape(" ".join(str(error).split("\n"))), soft_wrap=True)
        return EXIT_INTERRUPTED if isinstance(error, TrainingInterrupted) else EXIT_USER
    except Exception as error:
        return report_internal_error(error)
    if code == EXIT_INTERRUPTED:  # typer turns Ctrl-C into this exit code
        console.print("[red]interrupted[/red]")
    return code if isinstance(code, int) else EXIT_OK


def main() -> None:
    """Entry point: `multitask …`; exit codes as :func:`run_cli`."""
    progress = logging.getLogger("multitask")  # the application shows the library's progress records
    if not progress.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        progress.addHandler(handler)
        progress.setLevel(logging.INFO)
    sys.exit(run_cli())


if __name__ == "__main__":
    main()
