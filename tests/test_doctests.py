"""Every example in a docstring runs and prints what it says."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import multitask


def _modules_with_examples() -> list[str]:
    names = []
    every = ["multitask"] + [info.name for info in pkgutil.walk_packages(multitask.__path__, prefix="multitask.")]
    for name in every:
        spec = importlib.util.find_spec(name)
        if spec and spec.origin and spec.origin.endswith(".py") and ">>>" in Path(spec.origin).read_text():
            names.append(name)
    return sorted(names)


MODULES = _modules_with_examples()

SLOW = {"multitask", "multitask.export"}
"""Examples that train (the package's quick start) or export to ONNX: several seconds each."""


def test_the_examples_are_found() -> None:
    assert "multitask.weighting.upgrad" in MODULES and "multitask.importers.voc" in MODULES
    assert "multitask" in MODULES  # the quick start of the package docstring
    assert len(MODULES) >= 40


@pytest.mark.parametrize("name", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m for m in MODULES])
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False)
    if result.attempted == 0:  # examples that need a trained run or a file say so with +SKIP
        prompts = [line for line in Path(module.__file__).read_text().splitlines() if line.lstrip().startswith(">>>")]
        assert prompts and all("+SKIP" in line for line in prompts), f"{name}: examples doctest could not collect"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
