"""The run configuration: one pydantic schema shared by the YAML file, the CLI and the Python API.

>>> cfg = RunConfig.model_validate({"train": {"epochs": 3}})
>>> cfg.train.epochs, cfg.model.trunk
(3, 'small_cnn')
>>> apply_overrides(cfg, ["train.lr=0.01", "model.trunk=mlp"]).train.lr
0.01
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
        "error", description="'skip' drops rows whose image is missing or unreadable and lists them."
    )
    hide_fraction: float = Field(
        0.0, ge=0, lt=1, description="Hide this fraction of known train/val labels (seeded), for experiments."
    )
    image_size: int = Field(96, ge=8, description="Images are resized (squashed) to this square size.")
    augment: bool = Field(True, description="Random crops, colour jitter (and flips, see hflip) in training.")
    hflip: bool = Field(True, description="Random horizontal flips when augmenting.")
    cache_images: bool | None = Field(
        None, description="Keep decoded, resized images in memory (default: when they fit in 2 GiB)."
    )
    num_workers: int | None = Field(None, ge=0, description="DataLoader workers (default: 0 if cached).")


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


class TrainConfig(_Strict):
    """The training loop (run by Lightning)."""

    epochs: int = Field(20, ge=1, description="Maximum number of epochs.")
    batch_size: int = Field(64, ge=1, description="Examples per training step (per device).")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay (not on biases and norms).")
    scheduler: Literal["cosine", "none"] = Field("cosine", description="Learning-rate schedule per step.")
    warmup_epochs: float = Field(0.0, ge=0, description="Linear warm-up length, in epochs.")
    patience: int | None = Field(5, ge=1, description="Early stopping patience in epochs (null: off).")
    monitor: Literal["val_map", "val_loss"] = Field("val_map", description="Metric for early stop / best.")
    seed: int = Field(0, description="Seed of everything: initialisation, shuffling, augmentation, splits.")
    accelerator: str = Field("auto", description="cpu | gpu | auto ... (Lightning).")
    devices: int | str = Field("auto", description="Number of devices or 'auto' (Lightning).")
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
    deterministic: bool = Field(True, description="Ask torch for deterministic algorithms (warn only).")


class RunConfig(_Strict):
    """Everything needed to rerun a training run."""

    name: str | None = Field(None, description="Run name (default: from the data file and time).")
    root: Path = Field(Path("runs"), description="Folder holding run directories.")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

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
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read YAML config: {error}") from None
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


def parse_override(text: str) -> tuple[str, Any]:
    """'train.epochs=3' -> ('train.epochs', 3); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    key = key.strip().lstrip("-").replace("-", "_")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_overrides(config: RunConfig, overrides: list[str] | dict[str, Any]) -> RunConfig:
    """A new config with dotted keys replaced: ['train.epochs=3'] or {'train.epochs': 3}."""
    values = config.model_dump(mode="json", exclude_unset=False)
    items = overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides)
    for key, value in items:
        if key not in valid_keys():
            raise ConfigError(f"unknown key {key!r}.{_suggest(key)}")
        _set_dotted(values, key, value)
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
