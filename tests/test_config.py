"""The config schema: YAML, overrides, and errors that suggest the nearest valid key."""

from pathlib import Path

import pytest

from multitask.config import ConfigError, RunConfig, apply_overrides, build_config, load_config, valid_keys


def test_defaults_and_yaml_round_trip(tmp_path: Path) -> None:
    config = build_config({"data": {"path": "labels.csv", "tasks": ["car"]}, "train": {"epochs": 3}})
    path = tmp_path / "config.yaml"
    path.write_text(config.to_yaml())
    again = load_config(path)
    assert again == config
    assert again.train.epochs == 3 and again.model.trunk == "small_cnn" and again.loss.normalization == "batch"


def test_unknown_key_suggests_the_nearest(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'train.epoch'. Did you mean 'train.epochs'\?"):
        load_config(path)
    with pytest.raises(ConfigError, match="Did you mean 'model.trunk'"):
        build_config({"model": {"trunc": "mlp"}})
    with pytest.raises(ConfigError, match="Did you mean 'train.batch_size'"):
        apply_overrides(RunConfig(), ["train.batchsize=3"])


def test_bad_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match="train.epochs"):
        build_config({"train": {"epochs": 0}})
    with pytest.raises(ConfigError, match="loss.normalization"):
        build_config({"loss": {"normalization": "mean"}})


def test_overrides_parse_yaml_values() -> None:
    config = apply_overrides(RunConfig(), ["train.lr=0.01", "data.tasks=[a, b]", "train.patience=null",
                                           "loss.pos_weight=balanced", "model.trunk_options={width: 8}"])
    assert config.train.lr == 0.01
    assert config.data.tasks == ["a", "b"]
    assert config.train.patience is None
    assert config.loss.pos_weight == "balanced"
    assert config.model.trunk_options == {"width": 8}


def test_every_key_is_overridable() -> None:
    keys = valid_keys()
    assert "train.epochs" in keys and "data.path" in keys and "name" in keys
    assert len(keys) > 40


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)


def test_run_name_must_be_a_folder_name() -> None:
    with pytest.raises(ConfigError, match="name"):
        build_config({"name": "../elsewhere"})


def test_command_line_values_are_typed_by_the_schema() -> None:
    from multitask.config import parse_cli_overrides

    values = parse_cli_overrides(["--name", "2024", "--data.input_column", "yes", "--data.tasks", "a,b",
                                  "model.trunk_options={width: 32}", "--train.devices=2"])
    config = build_config(values)
    assert config.name == "2024" and config.data.input_column == "yes" and config.data.tasks == ["a", "b"]
    assert config.model.trunk_options == {"width": 32} and config.train.devices == 2
    assert build_config(parse_cli_overrides(["--train.devices", "auto"])).train.devices == "auto"


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("train:\n  epochs: 3\n  lr: [0.1\n")
    with pytest.raises(ConfigError, match=r"config.yaml, line \d+, column \d+: malformed YAML"):
        load_config(path)
