"""Loading weights from local files without unpickling anything.

`.pth` / `.pt` files go through ``torch.load(..., weights_only=True)``; `.safetensors` through safetensors.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from multitask.errors import MissingFileError, UserError


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file (.pth/.pt/.bin via weights_only torch.load, or .safetensors)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserError(f"{path}: not a weights-only PyTorch file ({error.__class__.__name__}: {error})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: expected a dict of tensors (a state_dict)")
    return state


def load_trunk_weights(module: nn.Module, path: str | Path) -> None:
    """Load a state dict into `module`; every parameter of the module must be found in the file.

    Extra keys in the file (a classifier the trunk does not have) are ignored; missing keys or a shape
    mismatch are errors that name the first offending key.
    """
    state = read_state_dict(path)
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    if missing and all(k.startswith("model.") for k in own):  # a TorchvisionTrunk saved by us vs the raw model
        state = {f"model.{k}": v for k, v in state.items()}
        missing = [k for k in own if k not in state]
    if missing:
        raise UserError(f"{path}: {len(missing)} weights of the model are not in the file, e.g. {missing[0]!r}")
    for key, tensor in own.items():
        if state[key].shape != tensor.shape:
            raise UserError(f"{path}: {key!r} has shape {tuple(state[key].shape)} in the file, "
                             f"{tuple(tensor.shape)} in the model")
    module.load_state_dict({k: state[k] for k in own}, strict=True)
