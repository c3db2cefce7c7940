"""Trunks by name, vectorised heads against per-task loops, weights files without pickle."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from multitask.config import ModelConfig
from multitask.models import TRUNKS, TaskHeads, build_network, build_trunk
from multitask.models.weights import load_trunk_weights, read_state_dict

SHARED = Path(__file__).resolve().parents[2] / "shared"
MOBILENET = SHARED / "models" / "mobilenet_v2-b0353104.pth"


def test_linear_heads_equal_a_loop_over_tasks() -> None:
    torch.manual_seed(0)
    heads = TaskHeads(in_features=6, n_tasks=5)
    z = torch.randn(3, 6)
    expected = torch.stack([z @ heads.weight[j] + heads.bias[j] for j in range(5)], dim=1)
    torch.testing.assert_close(heads(z), expected)


def test_towers_equal_a_loop_over_tasks() -> None:
    torch.manual_seed(1)
    heads = TaskHeads(in_features=6, n_tasks=4, tower_depth=2, tower_width=3)
    z = torch.randn(5, 6)
    outputs = []
    for j in range(4):
        h = z
        for weight, bias in zip(heads.tower_weights, heads.tower_biases, strict=True):
            h = torch.relu(h @ weight[j] + bias[j])
        outputs.append(h @ heads.weight[j] + heads.bias[j])
    torch.testing.assert_close(heads(z), torch.stack(outputs, dim=1))
    per_task_input = z.unsqueeze(1).expand(5, 4, 6)
    torch.testing.assert_close(heads(per_task_input), heads(z))


def test_500_tasks_is_one_layer() -> None:
    heads = TaskHeads(in_features=64, n_tasks=500)
    assert sum(p.numel() for p in heads.parameters()) == 500 * 64 + 500
    assert heads(torch.zeros(2, 64)).shape == (2, 500)


def test_registry_lists_required_trunks() -> None:
    for name in ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0",
                 "convnext_tiny", "small_cnn", "mlp"):
        assert name in TRUNKS
    with pytest.raises(KeyError, match="Did you mean 'resnet18'"):
        build_trunk("resnet81")


@pytest.mark.parametrize("name,width", [("resnet18", 512), ("mobilenet_v3_small", 1024), ("efficientnet_b0", 1280)])
def test_torchvision_trunks_lose_their_classifier(name: str, width: int) -> None:
    trunk = build_trunk(name)
    assert trunk.out_features == width
    assert trunk.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, width)


@pytest.mark.skipif(not MOBILENET.exists(), reason="needs ../shared/models/mobilenet_v2-b0353104.pth")
def test_pretrained_mobilenet_from_local_file_matches_torchvision() -> None:
    import torchvision

    trunk = build_trunk("mobilenet_v2", weights=str(MOBILENET)).eval()
    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(torch.load(MOBILENET, weights_only=True))
    reference.classifier = nn.Identity()
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(trunk(x), reference.eval()(x))


def test_weights_round_trip_through_safetensors(tmp_path: Path) -> None:
    source = build_trunk("small_cnn", width=4)
    path = tmp_path / "trunk.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    target = build_trunk("small_cnn", width=4, weights=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)


def test_weights_file_that_does_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in build_trunk("small_cnn", width=8).state_dict().items()}, str(path))
    with pytest.raises(ValueError, match="shape"):
        load_trunk_weights(build_trunk("small_cnn", width=4), path)
    save_file({"unrelated": torch.zeros(1)}, str(path))
    with pytest.raises(ValueError, match="not in the file"):
        load_trunk_weights(build_trunk("small_cnn", width=4), path)


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1), "payload": Path("x")}, path)  # not a plain tensor dict
    with pytest.raises(ValueError, match="weights-only"):
        read_state_dict(path)


def test_network_standardises_features_and_builds_by_config() -> None:
    mean, std = torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0])
    config = ModelConfig(trunk="mlp", trunk_options={"hidden": [4]})
    net = build_network(config, n_tasks=3, n_features=2, feature_mean=mean, feature_std=std)
    x = torch.tensor([[3.0, 6.0]])
    torch.testing.assert_close(net.normalize(x), torch.tensor([[1.0, 1.0]]))
    assert net(x).shape == (1, 3)
    image_net = build_network(ModelConfig(trunk="small_cnn", trunk_options={"width": 4}, tower_depth=1), n_tasks=2)
    assert image_net(torch.rand(2, 3, 32, 32)).shape == (2, 2)


def test_every_torchvision_classification_model_is_a_trunk() -> None:
    import torchvision

    from multitask.models.trunks import IMAGE_TRUNKS, torchvision_trunks

    names = torchvision.models.list_models(module=torchvision.models)
    assert torchvision_trunks() == names and len(names) > 22
    assert set(names) <= set(TRUNKS.names()) and set(names) <= IMAGE_TRUNKS


@pytest.mark.parametrize("name,width", [("squeezenet1_1", 512), ("alexnet", 4096)])
def test_a_convolutional_or_deep_classifier_is_removed_too(name: str, width: int) -> None:
    """SqueezeNet classifies with a 1×1 convolution; AlexNet's classifier has three Linear layers (the last goes)."""
    trunk = build_trunk(name)
    assert trunk.out_features == width
    assert trunk.eval()(torch.zeros(1, 3, 64 if name != "alexnet" else 96, 64 if name != "alexnet" else 96)).shape \
        == (1, width)


def test_prepare_is_what_the_trunk_sees() -> None:
    network = build_network(ModelConfig(trunk="small_cnn", trunk_options={"width": 4, "depth": 1}), n_tasks=2)
    x = torch.rand(2, 3, 8, 8)
    prepared = network.prepare(x)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(prepared, (x - mean) / std)
    torch.testing.assert_close(network.representation(x), network.trunk(prepared))
