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

from multitask.config import ConfigError, RunConfig, apply_overrides, build_config, load_config, valid_keys
from multitask.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train one network for many yes/no tasks (unknown labels welcome), "
                       "and compare it with separate networks.")
import_app = typer.Typer(no_args_is_help=True, help="Convert other label formats into a label table.")
app.add_typer(import_app, name="import")
console = Console(highlight=False)
err_console = Console(highlight=False, stderr=True)  # progress and messages when stdout is csv / json
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
    "logger": "train.logger",
    "hide": "data.hide",
    "unknown": "loss.unknown",
    "shards": "data.shards",
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


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


FormatOpt = Annotated[OutputFormat, typer.Option(
    "--format", help="How results are printed: table (laid out for the width: a pipe or a log counts as 80 "
    "columns unless COLUMNS says otherwise), csv, json or markdown.")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", min=1, help="torch CPU threads (torch.set_num_threads; "
                                                "1 is fastest on a busy machine).")]


def output(fmt: OutputFormat = OutputFormat.table) -> Any:
    """The printer of a command's results (:class:`multitask.console.Output`)."""
    from multitask.console import Output

    return Output(fmt.value)


def use_threads(threads: int | None) -> None:
    """--threads: the torch CPU threads of this process (every command that trains)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def print_comparison(comparison: Any, fmt: OutputFormat = OutputFormat.table) -> None:
    """The comparison's per-task tables (AP with intervals, ROC-AUC, F1) and its cost table."""
    from multitask.result_tables import comparison_tables

    out = output(fmt)
    out.tables(comparison_tables(comparison))
    out.message(f"Comparison saved in {comparison.path} (report: {comparison.path / 'report.md'})")
    out.close()


# ------------------------------------------------------------------------------------------------ commands


@app.command(context_settings=EXTRA_ARGS, epilog=shortcut_help(ALL_SHORTCUTS))
def train(ctx: typer.Context, config: ConfigOpt = None, resume: ResumeOpt = None,
          fmt: FormatOpt = OutputFormat.table, threads: ThreadsOpt = None) -> None:
    """Train one shared network on a label table; write runs/<name>/ with metrics and a report."""
    from multitask.pipeline import resume_run, train_run

    use_threads(threads)
    if resume is not None:  # the run's own config.yaml; options would contradict it
        if ctx.args or config is not None:
            raise ConfigError("--resume continues a run with its own config.yaml: give no other options")
        run = resume_run(resume)
        _print_run(run.metrics, run.path, fmt)
        return
    cfg = assemble_config(config, ctx.args)
    run = train_run(cfg)
    _print_run(run.metrics, run.path, fmt)


def _print_run(metrics: dict[str, Any], path: Path, fmt: OutputFormat = OutputFormat.table) -> None:
    """A finished run's metrics and folder, printed by rank 0 alone (every process of a DDP run gets here)."""
    from multitask.distributed import is_global_zero
    from multitask.result_tables import run_tables

    if not is_global_zero():
        return
    if metrics.get("kind") == "detection":
        from multitask.detection import cli as detection

        detection.print_run(metrics, path, console)
        return
    out = output(fmt)
    out.tables(run_tables(metrics))
    if metrics.get("model_choice"):  # mlp trunk: linear vs MLP on the validation split (multitask.model_choice)
        from multitask.model_choice import describe

        out.message(describe(metrics["model_choice"]))
    out.message(f"Run saved in {path} (report: {path / 'report.md'})")
    out.close()


@app.command(context_settings=EXTRA_ARGS, epilog=shortcut_help(ALL_SHORTCUTS))
def compare(ctx: typer.Context, config: ConfigOpt = None,
            approaches: Annotated[str, typer.Option(help="Comma-separated: shared, separate, groups, "
                                                    "shared_pretrained, separate_pretrained.")] = "shared,separate",
            seeds: Annotated[int, typer.Option(help="Train every approach with this many seeds.")] = 1,
            groups: Annotated[str | None, typer.Option(help="Task groups for the groups approach: 'a,b;c,d' "
                                                       "(tasks in no group train alone).")] = None,
            pretrained: Annotated[str | None, typer.Option(help="Trunk weights for the *_pretrained "
                                                           "approaches (file or torchvision name).")] = None,
            resume: ResumeOpt = None, fmt: FormatOpt = OutputFormat.table, threads: ThreadsOpt = None,
            n_boot: Annotated[int, typer.Option("--n-boot", min=1, help="Box tables: bootstrap resamples of the test "
                                                "images for the AP intervals.")] = 200) -> None:
    """Train one shared network and T separate networks (or groups, pretrained…); print per-task metrics,
    differences with confidence intervals, and cost."""
    from multitask.compare import compare as run_compare

    use_threads(threads)
    cfg = assemble_config(config, ctx.args)
    names = [a.strip() for a in approaches.split(",") if a.strip()]
    from multitask.detection import cli as detection

    if detection.is_detection_comparison(cfg, resume):  # a box table: shared vs one detector per class
        detection.compare(cfg, names, resume, console, n_boot=n_boot)
        return
    group_list = [[t.strip() for t in g.split(",") if t.strip()] for g in groups.split(";")] if groups else None
    if group_list and "groups" not in names:
        names.append("groups")
    if pretrained and Path(pretrained).expanduser().exists():
        pretrained = _absolute(pretrained)
    comparison = run_compare(cfg, approaches=names, seeds=seeds, groups=group_list, pretrained=pretrained,
                             resume=resume)
    print_comparison(comparison, fmt)


@app.command(context_settings=EXTRA_ARGS, epilog=shortcut_help(TRANSFER_SHORTCUTS))
def transfer(ctx: typer.Context,
             source: Annotated[Path, typer.Option("--from", help="Trained run whose trunk starts the new run.")],
             config: ConfigOpt = None,
             freeze_trunk: Annotated[bool, typer.Option(help="Train only the new heads.")] = False,
             unfreeze_after: Annotated[int | None, typer.Option(help="With --freeze-trunk: fine-tune all "
                                                                "after N epochs.")] = None,
             trunk_lr_scale: Annotated[float | None, typer.Option(help="Trunk learning rate = lr × this.")] = None,
             fmt: FormatOpt = OutputFormat.table, threads: ThreadsOpt = None) -> None:
    """Transfer learning: a new run for new tasks, its trunk started from a trained run (new heads)."""
    from multitask.pipeline import train_run
    from multitask.runs import check_finished

    expand_shortcuts(ctx.args, TRANSFER_SHORTCUTS)  # a flag transfer does not take, before anything is read
    use_threads(threads)
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
    _print_run(run.metrics, run.path, fmt)


@app.command("advise", context_settings=EXTRA_ARGS, epilog=shortcut_help(ADVISE_SHORTCUTS))
def advise_cmd(
    ctx: typer.Context, config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option(help="Write advice.json, report.md and plots/ here.")] = None,
    probe_steps: Annotated[int, typer.Option(help="Probe training steps (0: from the labels only).")] = 200,
    probe_seconds: Annotated[float | None, typer.Option(
        help="Optional time limit of the probe (s); off by default: a clock makes the advice depend on the "
        "machine's load.")] = None,
    probe_rows: Annotated[int, typer.Option(help="Training rows used by the probe.")] = 2000,
    probe_image_size: Annotated[int, typer.Option(help="Image size of the probe (px).")] = 32,
    evidence: Annotated[bool, typer.Option("--evidence/--no-evidence",
                                           help="Decide by a short comparison of the approaches on held-out "
                                           "training rows (--no-evidence: by the rules alone).")] = True,
    evidence_epochs: Annotated[float | None, typer.Option(
        help="Epochs each candidate network trains for the evidence (default: train.epochs / 2).")] = None,
    evidence_tasks: Annotated[int, typer.Option(help="Tasks given their own network in the evidence.")] = 6,
    capacity: Annotated[bool, typer.Option("--capacity/--no-capacity",
                                           help="Also run the training-fit capacity check (an explanation).")]
    = False,
    capacity_seconds: Annotated[float | None, typer.Option(help="Optional time limit of the capacity check (s).")]
    = None,
    tag: Annotated[bool | None, typer.Option("--tag/--no-tag", help="Lookahead task affinity (default: T ≤ 20).")]
    = None,
    threads: ThreadsOpt = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Finish an interrupted `advise --out DIR`: "
                                                "reuse its saved probe and capacity checks, compute the rest.")]
    = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """Should these tasks share one network? Measures the three conditions on your data and recommends."""
    from multitask.advise import advise
    from multitask.advise.parts import saved_inputs

    options = {"probe_steps": probe_steps, "probe_seconds": probe_seconds, "probe_rows": probe_rows,
               "probe_image_size": probe_image_size, "capacity_check": capacity, "capacity_seconds": capacity_seconds,
               "tag": tag, "evidence": evidence, "evidence_epochs": evidence_epochs, "evidence_tasks": evidence_tasks}
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
    from multitask.result_tables import advice_tables

    printer, progress = output(fmt), console if fmt == OutputFormat.table else err_console
    result = advise(cfg, **options, threads=threads, out_dir=out, resume=resume is not None,
                    log=lambda m: progress.print(f"[dim]{escape(m)}[/dim]"))
    printer.tables(advice_tables(result))
    printer.message("Confirm it by training in full (the same data and recipe):")
    printer.command(result.compare_command())
    if out:
        printer.message(f"Advice saved in {out} (report: {out / 'report.md'})")
    printer.close()


@app.command()
def evaluate(run: Annotated[Path, typer.Argument(help="Run directory.")],
             data: Annotated[Path, typer.Option(help="Label table with the run's task columns.")],
             images: ImagesOpt = None,
             split: Annotated[str, typer.Option(help="Rows to evaluate: test, val, train or all.")] = "all",
             out: Annotated[Path | None, typer.Option(help="Write the metrics as JSON here.")] = None,
             missing_images: Annotated[MissingImages, typer.Option(
                 "--data.missing_images", help="skip: leave out rows whose image is missing or unreadable.")]
             = MissingImages.error, fmt: FormatOpt = OutputFormat.table) -> None:
    """Metrics of a trained run on a labelled table (known labels only, the run's thresholds); a detection run's
    AP per class on a box table."""
    from multitask.detection.run import is_detection_run
    from multitask.evaluation import evaluate as evaluate_run

    if is_detection_run(run):
        from multitask.detection import cli as detection

        detection.evaluate(run, data, images, split, out, console)
        return
    from multitask.result_tables import metrics_table
    from multitask.runs import write_json

    result = evaluate_run(run, data, images=images, split=split, missing_images=missing_images.value)
    printer = output(fmt)
    printer.table(metrics_table(result, f"{data.name}: {split} rows ({result['n_examples']})", split))
    if out:
        write_json(out, result)
        printer.message(f"Metrics written to {out}")
    printer.close()


@app.command()
def predict(run: Annotated[Path, typer.Argument(help="Run directory.")],
            inputs: Annotated[list[Path], typer.Argument(help="Image files, image folders, or one table.")],
            out: Annotated[Path, typer.Option(help="Output CSV (a detection run: its boxes as CSV / Parquet, or "
                                              "COCO JSON for a .json file).")] = Path("predictions.csv"),
            images: ImagesOpt = None,
            draw: Annotated[Path | None, typer.Option(help="A detection run: also save each image with its boxes "
                                                      "drawn into this folder.")] = None,
            min_score: Annotated[float, typer.Option(help="A detection run: keep detections with at least this "
                                                     "score.")] = 0.3) -> None:
    """Per-task probability and decision for new inputs, written as CSV; a detection run's boxes."""
    from multitask.detection.run import is_detection_run
    from multitask.predict import predict_inputs

    if is_detection_run(run):
        from multitask.detection import cli as detection

        detection.predict(run, inputs, out, draw, min_score, console)
        return

    frame = predict_inputs(run, inputs, image_root=images)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    console.print(f"{len(frame)} predictions written to [bold]{out}[/bold]")


@app.command()
def shard(table: Annotated[Path, typer.Argument(help="Label table with an image column.")],
          out: Annotated[Path, typer.Option(help="Folder to write the shards (shard-*.parquet, shards.json) in.")],
          images: ImagesOpt = None,
          input_column: Annotated[str, typer.Option(help="The image path column.")] = "image",
          rows_per_shard: Annotated[int, typer.Option(min=1, help="Images per shard file.")] = 4096) -> None:
    """Write a table's images as Parquet shards, to train from them with --shards (images that do not fit in
    memory, or too many small files)."""
    from multitask.data.shards import write_shards
    from multitask.tables import read_label_table

    labels = read_label_table(table, input_column=input_column, image_root=images)
    paths = write_shards(labels, out, shard_rows=rows_per_shard)
    console.print(f"{len(labels)} images written to {len(paths)} shard(s) in [bold]{escape(str(out))}[/bold]; "
                  f"train with --shards {escape(str(out))}")


@app.command()
def info(run: Annotated[Path, typer.Argument(help="Run directory.")], fmt: FormatOpt = OutputFormat.table) -> None:
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
    from multitask.detection.run import is_detection_run
    from multitask.result_tables import info_tables

    if is_detection_run(run):
        from multitask.detection import cli as detection

        detection.info(run, console)
        return
    printer = output(fmt)
    printer.tables(info_tables(load_run(run)))
    printer.close()


@app.command("runs")
def runs_cmd(root: Annotated[Path, typer.Option(help="Folder of run directories.")] = Path("runs"),
             fmt: FormatOpt = OutputFormat.table) -> None:
    """List the runs under --root: name, status, data, epochs done / planned, test mAP."""
    from multitask.result_tables import runs_table
    from multitask.runs import list_runs

    printer = output(fmt)
    printer.table(runs_table(list_runs(root), root))
    printer.close()


@app.command()
def export(run: Annotated[Path, typer.Argument(help="Run directory.")],
           out: Annotated[Path, typer.Option(help="Output .onnx file.")] = Path("model.onnx")) -> None:
    """Export a run's network to ONNX (input normalisation included; task names and thresholds as metadata)."""
    from multitask.detection.run import is_detection_run
    from multitask.export import export_onnx

    if is_detection_run(run):
        from multitask.detection import cli as detection

        detection.export(run, out, console)
        return
    path = export_onnx(run, out)
    console.print(f"ONNX model written to [bold]{path}[/bold]: input 'input', output 'logits' (one per task); how to "
                  "feed it is in its metadata (README: The ONNX model)")


@app.command()
def generate(out: Annotated[Path, typer.Argument(help="Output folder.")],
             n_images: Annotated[int, typer.Option("--images", help="Number of images.")] = 2000,
             image_size: Annotated[int, typer.Option("--image-size")] = 64,
             extra_tasks: Annotated[int, typer.Option(help="Attribute tasks beyond the 4 base tasks.")] = 0,
             unknown_fraction: Annotated[float, typer.Option(help="Hide this fraction of train/val labels.")] = 0.0,
             seed: Annotated[int, typer.Option()] = 0) -> None:
    """Generate the built-in road-scene data set: images + labels.csv + boxes.csv (the objects' boxes)."""
    from multitask.data.generators import generate_road_scenes

    path = generate_road_scenes(out, n_images=n_images, image_size=image_size, extra_tasks=extra_tasks,
                                unknown_fraction=unknown_fraction, seed=seed, progress=sys.stdout.isatty())
    console.print(f"Wrote {n_images} images, [bold]{path}[/bold] and boxes.csv beside it")


@app.command()
def demo(out: Annotated[Path, typer.Option(help="Folder for the data and the runs.")] = Path("runs/demo"),
         n_images: Annotated[int, typer.Option("--images", help="Generated images.")] = 2400,
         image_size: Annotated[int, typer.Option("--image-size")] = 64,
         epochs: Annotated[int, typer.Option(help="Epochs for every network.")] = 10,
         hide: Annotated[float, typer.Option(help="Fraction of train/val labels hidden.")] = 0.3,
         seed: Annotated[int, typer.Option()] = 0, fmt: FormatOpt = OutputFormat.table,
         threads: ThreadsOpt = None) -> None:
    """Generate road scenes, hide 30 % of the labels, train the shared and 4 separate networks, compare."""
    from multitask.demo import run_demo

    use_threads(threads)
    comparison = run_demo(out, n_images=n_images, image_size=image_size, epochs=epochs, hide=hide, seed=seed,
                          console=console if fmt == OutputFormat.table else err_console)
    print_comparison(comparison, fmt)


@app.command()
def trunks(fmt: FormatOpt = OutputFormat.table) -> None:
    """List the trunk names."""
    from multitask.result_tables import trunks_table

    printer = output(fmt)
    printer.table(trunks_table())
    printer.close()


@app.command()
def methods(fmt: FormatOpt = OutputFormat.table) -> None:
    """List the task weighting / gradient methods."""
    from multitask.result_tables import methods_table

    printer = output(fmt)
    printer.table(methods_table())
    printer.close()


@app.command()
def unknowns() -> None:
    """List the unknown-label strategies (`--loss.unknown NAME`)."""
    from multitask.unknown import UNKNOWNS

    for name in UNKNOWNS.names():
        factory = UNKNOWNS.get(name)
        console.print(f"{name}\t{(factory.__doc__ or '').strip().splitlines()[0]}", soft_wrap=True)


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
                   difficult: Annotated[str, typer.Option(help="positive | unknown | ignore.")] = "positive",
                   boxes: Annotated[Path | None, typer.Option(help="Also write the boxes: a box table "
                                                              "(.csv, .parquet or COCO .json).")] = None,
                   splits: Annotated[Path | None, typer.Option(help="Label table whose split column gives the "
                                                               "box table's split.")] = None,
                   ) -> None:
    """Pascal VOC annotations → presence of each class per image (and, with --boxes, the boxes)."""
    from multitask.importers import import_voc, import_voc_boxes, write_label_table

    names = classes.split(",") if classes else None
    frame = import_voc(annotations, classes=names, difficult=difficult)
    inputs = sorted(Path(annotations).glob("*.xml"))
    table = _boxes_to_write(boxes, inputs, lambda: import_voc_boxes(annotations, names, splits=splits))
    write_label_table(frame, out, inputs=inputs)
    console.print(f"{len(frame)} images × {frame.shape[1] - 1} classes → [bold]{out}[/bold]")
    _write_boxes(table, boxes, inputs)


@import_app.command("coco")
def import_coco_cmd(instances: Annotated[Path, typer.Argument(help="COCO instances JSON.")],
                    out: Annotated[Path, typer.Option(help="Output label table (.csv or .parquet).")],
                    classes: Annotated[str | None, typer.Option(help="Comma-separated category names.")] = None,
                    unannotated: Annotated[str, typer.Option(help="negative | drop | unknown.")] = "negative",
                    boxes: Annotated[Path | None, typer.Option(help="Also write the boxes: a box table "
                                                               "(.csv, .parquet or COCO .json).")] = None,
                    splits: Annotated[Path | None, typer.Option(help="Label table whose split column gives the "
                                                                "box table's split.")] = None,
                    ) -> None:
    """COCO instances → presence of each category per image (and, with --boxes, the boxes)."""
    from multitask.importers import import_coco, import_coco_boxes, write_label_table

    names = classes.split(",") if classes else None
    frame = import_coco(instances, classes=names, unannotated=unannotated)
    table = _boxes_to_write(boxes, [instances],
                            lambda: import_coco_boxes(instances, names, unannotated, check_files=False, splits=splits))
    write_label_table(frame, out, inputs=[instances])
    console.print(f"{len(frame)} images × {frame.shape[1] - 1} categories → [bold]{out}[/bold]")
    _write_boxes(table, boxes, [instances])


@import_app.command("openimages")
def import_openimages_cmd(
    labels: Annotated[Path, typer.Argument(help="Open Images image-level labels CSV.")],
    out: Annotated[Path, typer.Option(help="Output label table (.csv or .parquet).")],
    descriptions: Annotated[Path | None, typer.Option(help="Class descriptions CSV (MID → name).")] = None,
    classes: Annotated[str | None, typer.Option(help="Comma-separated classes (names or MIDs).")] = None,
    bbox: Annotated[Path | None, typer.Option(help="Open Images boxes CSV (*-annotations-bbox.csv); with "
                                              "--boxes.")] = None,
    boxes: Annotated[Path | None, typer.Option(help="Output box table (.csv, .parquet or COCO .json).")] = None,
    images: Annotated[Path | None, typer.Option(help="Folder of the images (their sizes turn the normalised "
                                                "boxes into pixels); default: the boxes CSV's folder.")] = None,
    splits: Annotated[Path | None, typer.Option(help="Label table whose split column gives the box table's "
                                                "split.")] = None,
) -> None:
    """Open Images verified labels → 1 / 0, and ? where a class was not verified for an image (and, with --bbox
    and --boxes, the boxes: known where boxed or verified absent, unknown elsewhere)."""
    from multitask.importers import import_openimages, import_openimages_boxes, write_label_table

    if (bbox is None) != (boxes is None):
        raise ConfigError("--bbox (the Open Images boxes CSV) and --boxes (the output box table) go together")
    names = classes.split(",") if classes else None
    frame = import_openimages(labels, descriptions, classes=names)
    inputs = [labels, *([descriptions] if descriptions else []), *([bbox] if bbox else [])]
    table = _boxes_to_write(boxes, inputs, lambda: import_openimages_boxes(
        bbox, labels, descriptions, names, image_root=images, splits=splits))
    write_label_table(frame, out, inputs=inputs)
    console.print(f"{len(frame)} images × {frame.shape[1] - 1} classes → [bold]{out}[/bold]")
    _write_boxes(table, boxes, inputs)


@import_app.command("merge")
def import_merge_cmd(tables: Annotated[list[Path], typer.Argument(help="Label tables to merge.")],
                     out: Annotated[Path, typer.Option(help="Output label table (.csv or .parquet).")],
                     on: Annotated[str, typer.Option(help="Input column shared by the tables.")] = "image",
                     conflicts: Annotated[str, typer.Option(help="error | unknown | first.")] = "error",
                     boxes: Annotated[bool, typer.Option("--boxes", help="The tables are box tables: a class a "
                                                         "source never annotated is unknown for its images.")
                                      ] = False) -> None:
    """Merge label tables that label different tasks: unknown where a source did not label a task."""
    from multitask.importers import merge_label_tables, write_label_table

    if boxes:
        from multitask.detection.boxes import read_box_table
        from multitask.importers import merge_box_tables

        merged_boxes, summary = merge_box_tables([(path.stem, read_box_table(path, check_files=False))
                                                  for path in tables], conflicts=conflicts)
        console.print(summary.to_markdown(), markup=False)
        _write_boxes(merged_boxes.with_image_root(out.parent), out, tables)
        return
    merged, summary = merge_label_tables([(path.stem, path) for path in tables], on=on, conflicts=conflicts)
    write_label_table(merged, out, inputs=tables)
    console.print(summary.to_markdown(), markup=False)
    console.print(f"{len(merged)} rows × {merged.shape[1] - 1} tasks → [bold]{out}[/bold]")


def _boxes_to_write(path: Path | None, inputs: list[Path], build: Any) -> Any:
    """The box table an import writes to `path` (None without --boxes), built and checked before any output."""
    if path is None:
        return None
    from multitask.importers import refuse_overwrite

    refuse_overwrite(path, inputs, "--boxes")
    return build()


def _write_boxes(table: Any, path: Path | None, inputs: list[Path]) -> None:
    if table is None or path is None:
        return
    from multitask.detection.boxes import write_box_table

    write_box_table(table, path, inputs=inputs)
    known = table.known.mean() if table.known.size else 1.0
    console.print(f"{len(table)} images × {table.n_classes} classes, {table.n_boxes} boxes, {known:.0%} of "
                  f"(image, class) known → [bold]{path}[/bold]")


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
        from multitask.errors import TrainingInterrupted

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
