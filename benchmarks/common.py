"""Helpers shared by the benchmark scripts: the machine, tables, and writing sections of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Sequence
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
SHARED = ROOT.parent / "shared"


def machine() -> str:
    """CPU model (or GPU), cores and torch version: written beside every number."""
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


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


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


def write_section(name: str, body: str, command: str) -> None:
    """Replace (or append) the section `name` of docs/benchmarks.md, with its command and machine."""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\nEvery table below was written by the script named " \
        "beside it; rerun the command to reproduce it.\n"
    block = (f"<!-- {name}:start -->\n{body.strip()}\n\nReproduce: `{command}` — measured on {machine()}, "
             f"commit {git_revision()}.\n<!-- {name}:end -->")
    text = replace_section(text, name, block)
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)
