"""The `multitask` command line: a thin layer over the Python API.

Every config key can be set from the command line as `--section.key VALUE` (or `section.key=VALUE`), e.g.
`--train.epochs 5 --loss.pos_weight balanced`; the common ones also have short flags (`--epochs 5`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from multitask.config import ConfigError, RunConfig, apply_overrides, build_config, load_config, valid_keys
from multitask.errors import LabelError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train one network for many yes/no tasks (unknown labels welcome), "
                       "and compare it with separate networks.")
import_app = typer.Typer(no_args_is_help=True, help="Convert other label formats into a label table.")
app.add_typer(import_app, name="import")
console = Console(highlight=False)
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}

# ---------------------------------------------------------------------------------------------- config


def _extra_overrides(args: list[str]) -> list[str]:
    """['--train.epochs', '3', 'loss.normalization=known'] -> ['train.epochs=3', 'loss.normalization=known']."""
    out, i = [], 0
    while i < len(args):
        token = args[i]
        if token.startswith("--") and "=" in token:
            out.append(token[2:])
        elif token.startswith("--"):
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise ConfigError(f"option {token} needs a value")
            out.append(f"{token[2:]}={args[i + 1]}")
            i += 1
        elif "=" in token:
            out.append(token)
        else:
            raise ConfigError(f"unexpected argument {token!r}; config keys are given as --section.key VALUE")
        i += 1
    return out


def _absolute(path: Any) -> Any:
    return str(Path(path).expanduser().resolve()) if path not in (None, "") else path


def assemble_config(config_file: Path | None, shortcuts: dict[str, Any], extra: list[str]) -> RunConfig:
    """Defaults ← YAML file ← short flags ← --section.key overrides; data paths made absolute."""
    config = load_config(config_file) if config_file else build_config({})
    given = {k: v for k, v in shortcuts.items() if v is not None}
    if given:
        config = apply_overrides(config, given)
    config = apply_overrides(config, _extra_overrides(extra))
    paths = {"data.path": _absolute(config.data.path), "data.images": _absolute(config.data.images)}
    weights = config.model.weights
    if weights and Path(weights).expanduser().exists():
        paths["model.weights"] = _absolute(weights)
    return apply_overrides(config, paths)


ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.", exists=True)]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Label table (CSV, Parquet, ARFF).")]
ImagesOpt = Annotated[Path | None, typer.Option("--images", help="Image root folder.")]
TrunkOpt = Annotated[str | None, typer.Option("--trunk", help="Trunk name (see `multitask trunks`).")]
WeightsOpt = Annotated[str | None, typer.Option("--weights", help="Trunk weights file or torchvision name.")]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", help="Training epochs.")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="Batch size.")]
LrOpt = Annotated[float | None, typer.Option("--lr", help="Learning rate.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Run name (folder under --root).")]
RootOpt = Annotated[Path | None, typer.Option("--root", help="Folder of run directories (default runs).")]
AccelOpt = Annotated[str | None, typer.Option("--accelerator", help="cpu | gpu | auto.")]
DevicesOpt = Annotated[str | None, typer.Option("--devices", help="Devices: a number or auto.")]
WeightingOpt = Annotated[str | None, typer.Option("--weighting", help="Task weighting method.")]
SizeOpt = Annotated[int | None, typer.Option("--image-size", help="Square image size in pixels.")]
TasksOpt = Annotated[str | None, typer.Option("--tasks", help="Comma-separated task columns.")]


def _shortcuts(data: Path | None = None, images: Path | None = None, trunk: str | None = None,
               weights: str | None = None, epochs: int | None = None, batch_size: int | None = None,
               lr: float | None = None, seed: int | None = None, name: str | None = None,
               root: Path | None = None, accelerator: str | None = None, devices: str | None = None,
               weighting: str | None = None, image_size: int | None = None,
               tasks: str | None = None) -> dict[str, Any]:
    devices_value: Any = devices
    if devices is not None and devices.isdigit():
        devices_value = int(devices)
    return {
        "data.path": str(data) if data else None, "data.images": str(images) if images else None,
        "model.trunk": trunk, "model.weights": weights, "train.epochs": epochs, "train.batch_size": batch_size,
        "train.lr": lr, "train.seed": seed, "name": name, "root": str(root) if root else None,
        "train.accelerator": accelerator, "train.devices": devices_value, "train.weighting": weighting,
        "data.image_size": image_size, "data.tasks": tasks.split(",") if tasks else None,
    }


def fail(message: str) -> None:
    console.print("[red]error:[/red]", escape(message))
    raise typer.Exit(2)


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


@app.command(context_settings=EXTRA_ARGS)
def train(ctx: typer.Context, config: ConfigOpt = None, data: DataOpt = None, images: ImagesOpt = None,
          trunk: TrunkOpt = None, weights: WeightsOpt = None, epochs: EpochsOpt = None, batch_size: BatchOpt = None,
          lr: LrOpt = None, seed: SeedOpt = None, name: NameOpt = None, root: RootOpt = None,
          accelerator: AccelOpt = None, devices: DevicesOpt = None, weighting: WeightingOpt = None,
          image_size: SizeOpt = None, tasks: TasksOpt = None) -> None:
    """Train one shared network on a label table; write runs/<name>/ with metrics and a report."""
    from multitask.pipeline import train_run

    cfg = assemble_config(config, _shortcuts(data, images, trunk, weights, epochs, batch_size, lr, seed, name,
                                             root, accelerator, devices, weighting, image_size, tasks), ctx.args)
    run = train_run(cfg)
    _print_run(run.metrics, run.path)


def _print_run(metrics: dict[str, Any], path: Path) -> None:
    for split in ("val", "test"):
        if split in metrics:
            console.print(metrics_rich_table(metrics[split], f"{split} metrics (thresholds chosen on val)"))
    console.print(f"Run saved in [bold]{path}[/bold] (report: {path / 'report.md'})")


@app.command(context_settings=EXTRA_ARGS)
def compare(ctx: typer.Context, config: ConfigOpt = None, data: DataOpt = None, images: ImagesOpt = None,
            trunk: TrunkOpt = None, weights: WeightsOpt = None, epochs: EpochsOpt = None,
            batch_size: BatchOpt = None, lr: LrOpt = None, seed: SeedOpt = None, name: NameOpt = None,
            root: RootOpt = None, accelerator: AccelOpt = None, devices: DevicesOpt = None,
            weighting: WeightingOpt = None, image_size: SizeOpt = None, tasks: TasksOpt = None,
            approaches: Annotated[str, typer.Option(help="Comma-separated: shared, separate, groups, "
                                                    "shared_pretrained, separate_pretrained.")] = "shared,separate",
            seeds: Annotated[int, typer.Option(help="Train every approach with this many seeds.")] = 1,
            groups: Annotated[str | None, typer.Option(help="Task groups for the groups approach: 'a,b;c,d' "
                                                       "(tasks in no group train alone).")] = None,
            pretrained: Annotated[str | None, typer.Option(help="Trunk weights for the *_pretrained "
                                                           "approaches (file or torchvision name).")] = None,
            ) -> None:
    """Train one shared network and T separate networks (or groups, pretrained…); print per-task metrics,
    differences with confidence intervals, and cost."""
    from multitask.compare import compare as run_compare

    cfg = assemble_config(config, _shortcuts(data, images, trunk, weights, epochs, batch_size, lr, seed, name,
                                             root, accelerator, devices, weighting, image_size, tasks), ctx.args)
    names = [a.strip() for a in approaches.split(",") if a.strip()]
    group_list = [[t.strip() for t in g.split(",") if t.strip()] for g in groups.split(";")] if groups else None
    if group_list and "groups" not in names:
        names.append("groups")
    if pretrained and Path(pretrained).expanduser().exists():
        pretrained = _absolute(pretrained)
    comparison = run_compare(cfg, approaches=names, seeds=seeds, groups=group_list, pretrained=pretrained)
    print_comparison(comparison)
    console.print(f"Comparison saved in [bold]{comparison.path}[/bold] (report: {comparison.path}/report.md)")


@app.command(context_settings=EXTRA_ARGS)
def transfer(ctx: typer.Context,
             source: Annotated[Path, typer.Option("--from", help="Trained run whose trunk starts the new run.")],
             config: ConfigOpt = None, data: DataOpt = None, images: ImagesOpt = None, epochs: EpochsOpt = None,
             batch_size: BatchOpt = None, lr: LrOpt = None, seed: SeedOpt = None, name: NameOpt = None,
             root: RootOpt = None, accelerator: AccelOpt = None, devices: DevicesOpt = None,
             tasks: TasksOpt = None,
             freeze_trunk: Annotated[bool, typer.Option(help="Train only the new heads.")] = False,
             unfreeze_after: Annotated[int | None, typer.Option(help="With --freeze-trunk: fine-tune all "
                                                                "after N epochs.")] = None,
             trunk_lr_scale: Annotated[float | None, typer.Option(help="Trunk learning rate = lr × this.")] = None,
             ) -> None:
    """Transfer learning: a new run for new tasks, its trunk started from a trained run (new heads)."""
    from multitask.pipeline import train_run

    source_config = load_config(source / "config.yaml")
    shortcuts = _shortcuts(data, images, None, None, epochs, batch_size, lr, seed, name, root, accelerator, devices,
                           None, None, tasks)
    shortcuts.update({"train.freeze_trunk": freeze_trunk or None, "train.unfreeze_after": unfreeze_after,
                      "train.trunk_lr_scale": trunk_lr_scale})
    model = source_config.model.model_dump(mode="json")
    model.update({"weights": None, "init_from": _absolute(source)})
    given = {k: v for k, v in shortcuts.items() if v is not None}
    cfg = assemble_config(config, {**{f"model.{k}": v for k, v in model.items()}, **given}, ctx.args)
    if cfg.data.image_size != source_config.data.image_size and "data.image_size" not in " ".join(ctx.args):
        cfg = apply_overrides(cfg, {"data.image_size": source_config.data.image_size})
    run = train_run(cfg)
    _print_run(run.metrics, run.path)


@app.command("advise", context_settings=EXTRA_ARGS)
def advise_cmd(
    ctx: typer.Context, config: ConfigOpt = None, data: DataOpt = None, images: ImagesOpt = None,
    trunk: TrunkOpt = None, weights: WeightsOpt = None, batch_size: BatchOpt = None, lr: LrOpt = None,
    seed: SeedOpt = None, image_size: SizeOpt = None, tasks: TasksOpt = None,
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
) -> None:
    """Should these tasks share one network? Measures the three conditions on your data and recommends."""
    from multitask.advise import advise

    cfg = assemble_config(config, _shortcuts(data, images, trunk, weights, None, batch_size, lr, seed,
                                             image_size=image_size, tasks=tasks), ctx.args)
    result = advise(cfg, probe_steps=probe_steps, probe_seconds=probe_seconds, probe_rows=probe_rows,
                    probe_image_size=probe_image_size, capacity_check=capacity, capacity_seconds=capacity_seconds,
                    tag=tag, threads=threads, out_dir=out, log=lambda m: console.print(f"[dim]{escape(m)}[/dim]"))
    for table in result.rich_tables():
        console.print(table)
    if out:
        console.print(f"Advice saved in [bold]{out}[/bold] (report: {out / 'report.md'})")


@app.command()
def evaluate(run: Annotated[Path, typer.Argument(help="Run directory.")],
             data: Annotated[Path, typer.Option(help="Label table with the run's task columns.")],
             images: ImagesOpt = None,
             split: Annotated[str, typer.Option(help="Rows to evaluate: test, val, train or all.")] = "all",
             out: Annotated[Path | None, typer.Option(help="Write the metrics as JSON here.")] = None) -> None:
    """Metrics of a trained run on a labelled table (known labels only, the run's thresholds)."""
    from multitask.labels import read_label_table
    from multitask.pipeline import evaluate_table
    from multitask.runs import load_run, write_json

    trained = load_run(run)
    cfg = trained.config.data
    table = read_label_table(data, tasks=list(trained.tasks), image_root=images,
                             feature_columns=list(trained.feature_names) or None,
                             input_column=cfg.input_column if trained.input_kind == "images" else None,
                             minus_one_unknown=cfg.minus_one_unknown, val_fraction=0, test_fraction=0)
    if split != "all":
        if split not in ("train", "val", "test"):
            fail("--split must be train, val, test or all")
        table = table.part(split)
        if not len(table):
            fail(f"no rows in split {split!r} of {data}")
    result = evaluate_table(trained.network, table, cfg, trained.thresholds)
    console.print(metrics_rich_table(result, f"{data.name}: {split} rows ({len(table)})"))
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
    """What a run is: data, tasks, model, thresholds and metrics."""
    from multitask.runs import load_run

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
    from multitask.data.roadscenes import generate_road_scenes

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
    write_label_table(frame, out)
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
    write_label_table(frame, out)
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
    write_label_table(frame, out)
    console.print(f"{len(frame)} images × {frame.shape[1] - 1} classes → [bold]{out}[/bold]")


@import_app.command("merge")
def import_merge_cmd(tables: Annotated[list[Path], typer.Argument(help="Label tables to merge.")],
                     out: Annotated[Path, typer.Option(help="Output label table (.csv or .parquet).")],
                     on: Annotated[str, typer.Option(help="Input column shared by the tables.")] = "image",
                     conflicts: Annotated[str, typer.Option(help="error | unknown | first.")] = "error") -> None:
    """Merge label tables that label different tasks: unknown where a source did not label a task."""
    from multitask.importers import merge_label_tables, read_label_frame, write_label_table

    frames = [(path.stem, read_label_frame(path)) for path in tables]
    merged, summary = merge_label_tables(frames, on=on, conflicts=conflicts)
    write_label_table(merged, out)
    console.print(summary.to_markdown(), markup=False)
    console.print(f"{len(merged)} rows × {merged.shape[1] - 1} tasks → [bold]{out}[/bold]")


def main() -> None:
    """Entry point that turns input errors into one clear line and exit status 2."""
    try:
        app(standalone_mode=False)
    except (LabelError, ConfigError, FileNotFoundError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        console.print("[red]error:[/red]", escape(str(message)))
        sys.exit(2)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except Exception as error:  # usage errors of typer's click: show them as click would
        if callable(getattr(error, "show", None)) and isinstance(getattr(error, "exit_code", None), int):
            error.show()
            sys.exit(error.exit_code)
        raise


if __name__ == "__main__":
    main()
