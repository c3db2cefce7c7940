"""Trunks: the shared part of the network, built by name.

Every trunk maps a batch of inputs to a flat representation and says how wide it is (`out_features`).

>>> trunk = build_trunk("small_cnn", width=8)
>>> import torch
>>> trunk(torch.zeros(2, 3, 32, 32)).shape, trunk.out_features
(torch.Size([2, 64]), 64)
>>> build_trunk("mlp", in_features=10, hidden=[16])(torch.zeros(4, 10)).shape
torch.Size([4, 16])
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from multitask.errors import ConfigError
from multitask.models.registry import Registry
from multitask.models.weights import load_trunk_weights

TRUNKS: Registry[nn.Module] = Registry("trunk")

IMAGE_TRUNKS: set[str] = set()
"""Names of trunks that take images (N, 3, H, W); the others take feature vectors (N, D)."""


def register_trunk(name: str, *, images: bool = True):
    """Decorator: add a trunk factory `f(**options) -> nn.Module with .out_features`."""
    if images:
        IMAGE_TRUNKS.add(name)
    return TRUNKS.register(name)


def build_trunk(name: str, **options: object) -> nn.Module:
    """A trunk by registry name; options are passed to its factory."""
    trunk = TRUNKS.build(name, **options)
    if not isinstance(getattr(trunk, "out_features", None), int):
        raise TypeError(f"trunk {name!r} must have an integer attribute out_features")
    return trunk


def trunk_takes_images(name: str) -> bool:
    return name in IMAGE_TRUNKS


class SmallCNN(nn.Module):
    """A compact VGG-style CNN for small images: `depth` stages of conv-BN-ReLU ×2 and max-pool, then
    global average pooling. Channels double each stage from `width`."""

    def __init__(self, width: int = 32, depth: int = 4, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for stage in range(depth):
            out = width * 2**stage
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                nn.Conv2d(out, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = channels

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x)).flatten(1)


class MLP(nn.Module):
    """Fully connected layers with LayerNorm, ReLU and dropout, for feature vectors."""

    def __init__(self, in_features: int, hidden: Sequence[int] = (256, 256), dropout: float = 0.1) -> None:
        super().__init__()
        if in_features < 1:
            raise ConfigError("the mlp trunk needs in_features >= 1 (the number of feature columns)")
        layers: list[nn.Module] = []
        size = in_features
        for width in hidden:
            layers += [nn.Linear(size, width), nn.LayerNorm(width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            size = width
        self.layers = nn.Sequential(*layers)
        self.out_features = size

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


@register_trunk("small_cnn")
def small_cnn(width: int = 32, depth: int = 4, weights: str | None = None) -> nn.Module:
    trunk = SmallCNN(width=width, depth=depth)
    if weights:
        load_trunk_weights(trunk, weights)
    return trunk


@register_trunk("mlp", images=False)
def mlp(in_features: int = 0, hidden: Sequence[int] = (256, 256), dropout: float = 0.1,
        weights: str | None = None) -> nn.Module:
    trunk = MLP(in_features=in_features, hidden=hidden, dropout=dropout)
    if weights:
        load_trunk_weights(trunk, weights)
    return trunk


class TorchvisionTrunk(nn.Module):
    """A torchvision classification model with its classifier layer (the last layer with one output per ImageNet
    class: a Linear, or SqueezeNet's 1×1 convolution) replaced by the identity."""

    def __init__(self, name: str, weights: str | None = None) -> None:
        super().__init__()
        import torchvision

        local = weights is not None and _looks_like_file(weights)
        try:
            model = torchvision.models.get_model(name, weights=None if local or not weights else weights)
        except Exception as error:  # torchvision raises ValueError, URLError, RuntimeError...
            raise ConfigError(
                f"cannot build torchvision model {name!r} with weights {weights!r}: {error}. Without network "
                "access, pass a local weights file (.pth or .safetensors) instead of a weight name."
            ) from error
        parent, attribute, width = _classifier_layer(model, name)
        setattr(parent, attribute, nn.Identity())
        if local:
            load_trunk_weights(model, weights)  # a classifier in the file is ignored
        self.model = model
        self.name = name
        self.out_features = width

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        if isinstance(out, tuple):  # e.g. inception/googlenet auxiliary outputs in training mode
            out = out[0]
        return out.flatten(1)


def _looks_like_file(weights: str) -> bool:
    return weights.endswith((".pth", ".pt", ".safetensors", ".bin")) or "/" in weights


IMAGENET_CLASSES = 1000
"""torchvision's classification models are built for ImageNet's classes; the classifier is the layer giving them."""


def _classifier_layer(model: nn.Module, name: str) -> tuple[nn.Module, str, int]:
    """(parent module, attribute, input width) of the last Linear or 1×1 convolution with one output per class."""
    last = None
    for path, module in model.named_modules():
        if (isinstance(module, nn.Linear) and module.out_features == IMAGENET_CLASSES) or (
                isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1)
                and module.out_channels == IMAGENET_CLASSES):
            last = path, module
    if last is None:
        raise ConfigError(f"torchvision model {name!r} has no classifier layer with {IMAGENET_CLASSES} outputs to "
                         "remove")
    path, module = last
    parent = model.get_submodule(path.rsplit(".", 1)[0]) if "." in path else model
    width = module.in_features if isinstance(module, nn.Linear) else module.in_channels
    return parent, path.rsplit(".", 1)[-1], width


def _torchvision_factory(name: str):
    def factory(weights: str | None = None) -> nn.Module:
        return TorchvisionTrunk(name, weights=weights)

    factory.__doc__ = f"torchvision's {name} without its classifier."
    return factory


def torchvision_trunks() -> list[str]:
    """torchvision's own list of its classification models (each is a trunk of the same name).

    >>> {"resnet18", "mobilenet_v3_small", "vit_b_16"} <= set(torchvision_trunks())
    True
    """
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


for _name in torchvision_trunks():
    register_trunk(_name)(_torchvision_factory(_name))
