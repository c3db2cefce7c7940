"""The public API of the package: every name resolves lazily, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import multitask


@pytest.mark.parametrize("name", sorted(multitask._EXPORTS))
def test_every_public_name_resolves(name: str) -> None:
    module, attribute = multitask._EXPORTS[name]
    value = getattr(multitask, name)
    assert value is getattr(__import__(module, fromlist=[attribute]), attribute)
    assert name in dir(multitask) and name in multitask.__all__


def test_functions_named_like_their_modules_stay_functions() -> None:
    import multitask.advise.rules  # noqa: F401  (imports of the submodules must not replace the functions)
    import multitask.compare  # noqa: F401

    assert callable(multitask.compare) and multitask.compare.__name__ == "compare"
    assert callable(multitask.advise) and multitask.advise.__name__ == "advise"


def test_train_is_train_run_and_unknown_names_fail() -> None:
    assert multitask.train is multitask.train_run
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = multitask.nope


def test_import_does_not_load_torch_or_matplotlib() -> None:
    code = "import sys, multitask; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_reports_leave_the_matplotlib_backend_alone(tmp_path) -> None:
    """A notebook's backend survives writing plots (report.py draws on its own Agg canvas, no pyplot)."""
    code = (
        "import matplotlib; matplotlib.use('svg'); from pathlib import Path\n"
        "from multitask.report import plot_learning_curves\n"
        f"plot_learning_curves([{{'epoch': 0, 'train_loss': 1.0, 'val_loss': 1.1, 'val_map': 0.5}}], "
        f"Path({str(tmp_path / 'curves.png')!r}))\n"
        "import sys; print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["svg", "False"]
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
