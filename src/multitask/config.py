"""The run configuration: one pydantic schema shared by the YAML file, the CLI and the Python API.

>>> cfg = RunConfig.model_validate({"train": {"epochs": 3}})
>>> cfg.train.epochs, cfg.model.trunk
(3, 'small_cnn')
>>> apply_overrides(cfg, ["train.lr=0.01", "model.trunk=mlp"]).train.lr
0.01

Command-line values are typed by the schema (pydantic-settings' CLI parser), never guessed:

>>> parse_cli_overrides(["--name", "2024", "--data.tasks", "a,b", "train.devices=2"])
{'name': '2024', 'data': {'tasks': ['a', 'b']}, 'train': {'devices': '2'}}
>>> build_config(parse_cli_overrides(["--name", "2024", "train.devices=2"])).train.devices
2
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, CliSettingsSource, SettingsConfigDict, SettingsError

from multitask.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    """Where the examples and labels are, and how to read them."""

    path: Path | None = Field(None, description="Label table: CSV, Parquet or ARFF.")
    images: Path | None = Field(None, description="Root folder of image paths (default: the table's folder).")
    input_column: str | None = Field(None, description="Image path column (default: 'image' if present).")
    feature_columns: list[str] | None = Field(
        None, description="Feature columns for feature-vector data (default: every column that is not a task "
        "or the split, when data.tasks is given)."
    )
    tasks: list[str] | None = Field(None, description="Task columns (default: every other column).")
    split_column: str = Field("split", description="Column with train / val / test; optional.")
    val_fraction: float = Field(0.15, ge=0, lt=1, description="Seeded split when there is no split column.")
    test_fraction: float = Field(0.15, ge=0, lt=1, description="Seeded split when there is no split column.")
    minus_one_unknown: bool = Field(False, description="Read -1 as unknown (otherwise -1 is an error).")
    missing_images: Literal["error", "skip"] = Field(
        "error", description="'error' checks every image's header before training and stops at the first bad one; "
        "'skip' fully decodes every image first and drops (and lists) rows whose image is missing, unreadable or "
        "broken."
    )
    hide_fraction: float = Field(
        0.0, ge=0, lt=1, description="Hide this fraction of known train/val labels (seeded), for experiments."
    )
    hide: str | None = Field(
        None, description="Hidden-label protocol on the train/val labels (seeded by train.seed; the hidden truth is "
        "saved as hidden_labels.npz in the run): 'rps:P' (each known label hidden with probability P), 'fpc:K' "
        "(K known labels per task and split), 'single_positive' (one known positive per example), 'rows:P'."
    )

    @field_validator("hide")
    @classmethod
    def _known_protocol(cls, value: str | None) -> str | None:
        if value is not None:
            from multitask.hiding import parse_protocol

            try:
                parse_protocol(value)
            except ConfigError as error:
                raise ValueError(str(error).removeprefix("data.hide: ")) from None
        return value
    image_size: int = Field(96, ge=8, description="Images are resized (squashed) to this square size.")
    augment: bool = Field(True, description="Random crops, colour jitter (and flips, see hflip) in training.")
    hflip: bool = Field(True, description="Random horizontal flips when augmenting.")
    cache_images: bool | None = Field(
        None, description="Keep decoded, resized images in memory (default: when they fit in 2 GiB)."
    )
    num_workers: int | None = Field(None, ge=0, description="DataLoader workers (default: 0 if cached).")
    shards: Path | None = Field(
        None, description="Folder of image shards written by `multitask shard`: images are streamed from it "
        "(decoded in the DataLoader workers) instead of read from files or cached."
    )
    kind: Literal["classification", "detection"] = Field(
        "classification", description="'classification': a label table (one yes/no column per task); "
        "'detection': a box table (image, class, x1, y1, x2, y2; see the README's Detection section)."
    )


class ModelConfig(_Strict):
    """The shared network: a trunk by name and one output per task."""

    trunk: str = Field("small_cnn", description="Trunk name from the registry (`multitask trunks`).")
    weights: str | None = Field(
        None, description="Trunk weights: a local .pth/.safetensors file, or a torchvision weight name."
    )
    init_from: Path | None = Field(
        None, description="Transfer: start the shared trunk from a trained run directory's weights (new heads)."
    )
    trunk_options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword options of the trunk (e.g. width for small_cnn)."
    )
    sharing: str = Field("hard", description="How tasks share the trunk: hard | mmoe | cross_stitch.")
    sharing_options: dict[str, Any] = Field(default_factory=dict, description="Options of the sharing model.")
    tower_depth: int = Field(0, ge=0, description="Hidden layers in each task's own tower (0 = linear head).")
    tower_width: int = Field(64, ge=1, description="Width of the per-task tower layers.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout before the task heads.")
    select: Literal["auto", "off"] = Field(
        "auto", description="With the mlp trunk: 'auto' also fits a linear model (no hidden layer: logistic "
        "regression, L-BFGS) and keeps the MLP only when its validation mAP is better beyond the noise of the "
        "validation rows (multitask.model_choice; with hidden: [] it fits that linear model alone); 'off': the "
        "configured network, trained by the loop."
    )


class LossConfig(_Strict):
    """The masked logistic loss: unknown labels drop out of the sum."""

    normalization: Literal["batch", "known"] = Field(
        "batch",
        description="'batch': the lecture's J = (1/m) sum over known labels; "
        "'known': each task's loss divided by its number of known labels in the batch.",
    )
    task_weights: dict[str, float] = Field(default_factory=dict, description="Per-task loss weights.")
    pos_weight: Literal["none", "balanced"] | dict[str, float] = Field(
        "none", description="Weight of positive labels: 'balanced' = negatives/positives per task."
    )
    unknown: str = Field(
        "ignore", description="Unknown-label strategy (`multitask unknowns`): 'ignore' leaves unknown labels out "
        "of the loss; others read them as negatives, reweight, select, correct or complete them."
    )
    unknown_options: dict[str, Any] = Field(default_factory=dict, description="Options of the strategy.")

    @field_validator("unknown")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value == "ignore":  # the default: no need to import the strategies (and torch) to check it
            return value
        from multitask.unknown import UNKNOWNS

        if value not in UNKNOWNS:
            close = difflib.get_close_matches(value, UNKNOWNS.names(), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown strategy {value!r}.{hint} Known (`multitask unknowns`): "
                             f"{', '.join(UNKNOWNS.names())}")
        return value


class TrainConfig(_Strict):
    """The training loop (run by Lightning)."""

    epochs: int = Field(20, ge=1, description="Maximum number of epochs.")
    batch_size: int = Field(64, ge=1, description="Examples per training step (per device).")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay (not on biases and norms).")
    scheduler: Literal["cosine", "none"] = Field("cosine", description="Learning-rate schedule per step.")
    warmup_epochs: float = Field(0.0, ge=0, description="Linear warm-up length, in epochs.")
    patience: int | None = Field(5, ge=1, description="Early stopping patience in epochs (null: off).")
    patience_steps: int = Field(
        200, ge=0, description="Patience is also at least this many optimiser steps, and no early stop comes "
        "before them (small data: an epoch is a few steps)."
    )
    monitor: Literal["auto", "val_map", "val_loss"] = Field(
        "auto", description="Metric for early stop / best epoch. 'auto': val mAP, where epochs within "
        "train.map_tolerance of the best mAP so far are ties broken by the lower val loss (later epoch on equal)."
    )
    map_tolerance: float = Field(0.01, ge=0, description="With monitor auto: val mAP differences counted as ties.")
    seed: int = Field(0, description="Seed of everything: initialisation, shuffling, augmentation, splits.")
    accelerator: str = Field("auto", description="cpu | gpu | auto ... (Lightning).")
    devices: int | str = Field("auto", union_mode="left_to_right",
                               description="Number of devices, or 'auto', or a device list like '0,1' (Lightning).")
    strategy: str = Field("auto", description="auto | ddp | ddp_spawn ... (Lightning).")
    num_nodes: int = Field(1, ge=1, description="Machines for distributed training (Lightning).")
    precision: str = Field("32-true", description="32-true | 16-mixed | bf16-mixed (Lightning).")
    weighting: str = Field("equal", description="Task weighting / gradient method (`multitask methods`).")
    weighting_options: dict[str, Any] = Field(default_factory=dict, description="Options of the method.")
    gradients: Literal["representation", "parameters"] = Field(
        "representation", description="Gradient methods: per-task gradients w.r.t. the shared representation "
        "(one backward through the trunk, as MGDA-UB) or w.r.t. every shared parameter (a batched Jacobian)."
    )
    freeze_trunk: bool = Field(False, description="Train only the heads (transfer learning).")
    unfreeze_after: int | None = Field(None, ge=0, description="With freeze_trunk: unfreeze after N epochs.")
    trunk_lr_scale: float = Field(1.0, gt=0, description="Trunk learning rate = lr x this.")
    max_minutes: float | None = Field(None, gt=0, description="Stop training after this wall time.")
    progress: bool = Field(True, description="Show a progress bar.")
    logger: Literal["tensorboard", "mlflow", "csv"] = Field(
        "tensorboard", description="Training logs besides logs/metrics.csv: TensorBoard (logs/tensorboard/), MLflow "
        "(Lightning's MLFlowLogger; needs `pip install mlflow`; at MLFLOW_TRACKING_URI, else MLflow's default) or "
        "none (csv).")
    deterministic: bool = Field(True, description="Ask torch for deterministic algorithms (warn only).")


class DetectionConfig(_Strict):
    """The detector of `data.kind: detection`: torchvision's FCOS on a feature pyramid over the trunk."""

    levels: int = Field(3, ge=1, le=5, description="Pyramid levels taken from the trunk (its deepest strides).")
    p6p7: bool = Field(False, description="Two extra coarser levels (FCOS's P6, P7) for very large objects.")
    fpn_channels: int = Field(64, ge=32, description="Channels of the FPN and the FCOS head (a multiple of 32).")
    head_convs: int = Field(2, ge=0, description="Convolutions in each FCOS head tower (torchvision: 4).")
    trainable_layers: int | None = Field(
        None, ge=0, description="Train only the last N layers of the trunk's body (null: all; 0: frozen trunk).")
    unknown: Literal["mask", "background"] = Field(
        "mask", description="'mask': an unknown (image, class) gives no loss; 'background': taken as verified "
        "absent (the baseline that ignores missing annotations).")
    center_sampling_radius: float = Field(1.5, gt=0, description="FCOS centre sampling radius (in strides).")
    score_threshold: float = Field(0.05, ge=0, lt=1, description="Detections below this score are dropped.")
    nms_threshold: float = Field(0.6, gt=0, le=1, description="IoU of non-maximum suppression (per class).")
    detections_per_image: int = Field(100, ge=1, description="Detections kept per image after NMS.")
    topk_candidates: int = Field(1000, ge=1, description="Candidates per level before NMS.")


class RunConfig(_Strict):
    """Everything needed to rerun a training run."""

    name: str | None = Field(None, description="Run name (default: from the data file and time).")
    root: Path = Field(Path("runs"), description="Folder holding run directories.")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    detection: DetectionConfig = Field(default_factory=DetectionConfig)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or "/" in value or value in {".", ".."}):
            raise ValueError(f"run name {value!r} must be a plain folder name")
        return value

    def to_yaml(self) -> str:
        """The config as YAML, every key present (enough to rerun)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


SECTIONS: dict[str, type[BaseModel]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "train": TrainConfig,
    "detection": DetectionConfig,
}


def valid_keys() -> list[str]:
    """Every dotted key of the config, e.g. 'train.epochs'."""
    keys = [k for k in RunConfig.model_fields if k not in SECTIONS]
    for section, model in SECTIONS.items():
        keys += [f"{section}.{k}" for k in model.model_fields]
    return keys


def _suggest(key: str) -> str:
    matches = difflib.get_close_matches(key, valid_keys(), n=1, cutoff=0.5)
    if not matches:
        tail = key.rsplit(".", 1)[-1]
        matches = [k for k in valid_keys() if k.rsplit(".", 1)[-1] in difflib.get_close_matches(
            tail, [v.rsplit(".", 1)[-1] for v in valid_keys()], n=1, cutoff=0.6)]
    return f" Did you mean {matches[0]!r}?" if matches else ""


def _raise_config_error(error: ValidationError, source: str) -> None:
    lines = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown key {key!r}.{_suggest(key)}")
        else:
            lines.append(f"{key}: {item['msg']} (got {item.get('input')!r})")
    raise ConfigError(f"{source}: " + "; ".join(lines)) from None


def build_config(values: dict[str, Any] | None = None, source: str = "config") -> RunConfig:
    """Validate a nested dict into a RunConfig; unknown keys raise ConfigError with a suggestion."""
    try:
        return RunConfig.model_validate(values or {})
    except ValidationError as error:
        _raise_config_error(error, source)
        raise  # unreachable


def load_config(path: str | Path) -> RunConfig:
    """Read a YAML config file (safe loader)."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: the config file is not UTF-8 text (byte {error.start})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}{where}: malformed YAML: {problem}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of sections, got {type(values).__name__}")
    return build_config(values, source=str(path))


def _set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = values
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


class _CliSchema(RunConfig, BaseSettings):
    """RunConfig as pydantic-settings sees it: only its CLI parser is used (no environment, no files)."""

    model_config = SettingsConfigDict(extra="forbid")


def _field_annotation(key: str) -> Any:
    section, _, name = key.rpartition(".")
    model = SECTIONS[section] if section else RunConfig
    return model.model_fields[name].annotation


def _normalise(key: str, raw: str) -> str:
    """A dict-valued key also takes YAML flow syntax ('{width: 32}'): re-encode it as the JSON the parser reads."""
    text = raw.strip()
    if text.startswith("{") and "dict" in str(_field_annotation(key)):
        try:
            json.loads(text)
        except ValueError:
            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError as error:
                raise ConfigError(f"--{key}: {raw!r} is neither JSON nor YAML: {error}".splitlines()[0]) from None
            if isinstance(value, dict):
                return json.dumps(value)
    return raw


def _split_args(args: list[str]) -> list[tuple[str, str]]:
    """['--train.epochs', '3', 'loss.normalization=known', '--a.b=1'] -> [(key, raw text), ...]."""
    out, i = [], 0
    while i < len(args):
        token = args[i]
        if token.startswith("--") and "=" in token:
            key, raw = token[2:].split("=", 1)
        elif token.startswith("--"):
            if i + 1 >= len(args) or (args[i + 1].startswith("--") and len(args[i + 1]) > 2):
                raise ConfigError(f"option {token} needs a value")
            key, raw = token[2:], args[i + 1]
            i += 1
        elif "=" in token:
            key, raw = token.split("=", 1)
        else:
            raise ConfigError(f"unexpected argument {token!r}; config keys are given as --section.key VALUE")
        key = key.strip().replace("-", "_")
        if key not in valid_keys():
            raise ConfigError(f"unknown key {key!r}.{_suggest(key)}")
        out.append((key, raw))
        i += 1
    return out


def parse_cli_overrides(args: list[str]) -> dict[str, Any]:
    """Command-line config arguments (`--section.key VALUE` or `section.key=VALUE`) as a nested dict, each value
    parsed for its key's type by pydantic-settings' CLI parser: `--name 2024` stays the string '2024',
    `--data.tasks a,b` (or `[a, b]`) is a list, `--model.trunk_options '{width: 32}'` a dict, `null` is None.

    >>> parse_cli_overrides(["--data.input_column", "yes", "model.trunk_options={width: 32}"])
    {'data': {'input_column': 'yes'}, 'model': {'trunk_options': {'width': 32}}}
    >>> parse_cli_overrides(["--train.epochz", "3"])
    Traceback (most recent call last):
    ...
    multitask.errors.ConfigError: unknown key 'train.epochz'. Did you mean 'train.epochs'?
    """
    pairs = _split_args(args)
    if not pairs:
        return {}
    argv = [f"--{key}={_normalise(key, raw)}" for key, raw in pairs]
    try:
        return CliSettingsSource(_CliSchema, cli_parse_args=argv, cli_exit_on_error=False)()
    except SettingsError as error:
        message = str(error).replace("Parsing error encountered for ", "--").replace("error parsing CLI: ", "")
        raise ConfigError(f"command line: {message}") from None


def _merge(base: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key in SECTIONS:
            _merge(base[key], value)
        else:
            base[key] = value


def apply_overrides(config: RunConfig, overrides: list[str] | dict[str, Any]) -> RunConfig:
    """A new config with dotted keys replaced: ['train.epochs=3'] (text, typed by the schema) or
    {'train.epochs': 3} (Python values); either way validated by the one RunConfig schema."""
    values = config.model_dump(mode="json", exclude_unset=False)
    if isinstance(overrides, dict):
        for key, value in overrides.items():
            if key not in valid_keys():
                raise ConfigError(f"unknown key {key!r}.{_suggest(key)}")
            _set_dotted(values, key, value)
    else:
        _merge(values, parse_cli_overrides(list(overrides)))
    return build_config(values, source="command line")


def reference_markdown() -> str:
    """The config reference (docs/config.md): every key, its default and its meaning."""
    lines = ["# Configuration reference", "",
             "Generated from the schema in `src/multitask/config.py` by `multitask config --markdown`. "
             "Every key can be set in a YAML file (sections as below), or on the command line as "
             "`--section.key VALUE` (e.g. `--train.epochs 5`). An unknown key is an error that suggests the "
             "nearest valid one.", ""]
    top = {k: f for k, f in RunConfig.model_fields.items() if k not in SECTIONS}
    for title, fields in [("top level", top)] + [(name, model.model_fields) for name, model in SECTIONS.items()]:
        lines += [f"## `{title}`" if title != "top level" else "## top level", "",
                  "| key | default | meaning |", "|---|---|---|"]
        for key, info in fields.items():
            default = info.default_factory() if info.default_factory is not None else info.default
            shown = yaml.safe_dump(default if not isinstance(default, Path) else str(default),
                                   default_flow_style=True).strip().removesuffix("...").strip()
            dotted = key if title == "top level" else f"{title}.{key}"
            lines.append(f"| `{dotted}` | `{shown}` | {(info.description or '').replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines)
