"""Measured numbers in markdown docs: named sections between markers, stamped with the machine and commit.

The benchmark and experiment scripts (``benchmarks/``, ``experiments/``) write their tables into
docs/benchmarks.md and docs/experiments.md through these functions, so a rerun replaces its own section only.

>>> text = "# Doc\\n\\n<!-- a:start -->\\nold\\n<!-- a:end -->\\n"
>>> print(replace_section(text, "a", "<!-- a:start -->\\nnew\\n<!-- a:end -->"))
# Doc
<BLANKLINE>
<!-- a:start -->
new
<!-- a:end -->
<BLANKLINE>
>>> "b:start" in replace_section(text, "b", "<!-- b:start -->\\nB\\n<!-- b:end -->")
True
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from multitask.files import atomic_write_text


def machine() -> str:
    """CPU model (or GPU), cores, torch threads and version, and the date: written beside every number.

    >>> "torch" in machine()
    True
    """
    import torch

    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    device = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    threads = torch.get_num_threads()
    return (f"{device}, {os.cpu_count()} cores ({threads} torch thread{'s' if threads > 1 else ''}), "
            f"torch {torch.__version__}, {date.today().isoformat()}")


def git_revision(folder: str | Path = ".") -> str:
    """The short commit of the git checkout holding `folder`, or "unknown"."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def text_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table of cells written as they are (the scripts format their numbers themselves).

    >>> print(text_table(["a"], [["0.10"]]))
    | a |
    |---|
    | 0.10 |
    """
    from multitask.report import markdown_table

    return markdown_table(header, rows, cell=str)


def replace_section(text: str, name: str, block: str, order: Sequence[str] = ()) -> str:
    """`text` with its section ``<!-- name:start -->`` … ``<!-- name:end -->`` replaced by `block`; a section not
    there yet goes before the first section after `name` in `order` that is present, else at the end."""
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    later = [n for n in order[order.index(name) + 1:] if f"<!-- {n}:start -->" in text] if name in order else []
    if later:
        marker = f"<!-- {later[0]}:start -->"
        return text.replace(marker, block + "\n\n" + marker, 1)
    return text.rstrip() + "\n\n" + block + "\n"


def write_section(doc: Path, name: str, body: str, footer: str, *, header: str, order: Sequence[str] = ()) -> None:
    """Replace (or insert, in `order`) the section `name` of the markdown file `doc` (created with `header`)."""
    text = doc.read_text() if doc.exists() else header
    block = f"<!-- {name}:start -->\n{body.strip()}{footer}\n<!-- {name}:end -->"
    atomic_write_text(doc, replace_section(text, name, block, order))
