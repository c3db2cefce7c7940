"""Helpers shared by the benchmark scripts: where the data is, tables, and writing sections of docs/benchmarks.md.

The machine description, the commit and the section writing are the library's (:mod:`multitask.doc_sections`),
shared with the experiment scripts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from multitask.doc_sections import git_revision, machine, replace_section
from multitask.doc_sections import text_table as markdown_table
from multitask.doc_sections import write_section as write_doc_section

__all__ = ["DOCS", "ROOT", "SHARED", "add_grid_options", "git_revision", "machine", "markdown_table", "replace_section",
           "write_section"]

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
SHARED = ROOT.parent / "shared"

HEADER = ("# Benchmarks\n\nEvery table below was written by the script named beside it; rerun the command to "
          "reproduce it.\n")


def write_section(name: str, body: str, command: str) -> None:
    """Replace (or append) the section `name` of docs/benchmarks.md, with its command and machine."""
    footer = f"\n\nReproduce: `{command}` — measured on {machine()}, commit {git_revision(ROOT)}."
    write_doc_section(DOCS, name, body, footer, header=HEADER)


def add_grid_options(parser: argparse.ArgumentParser, out: str, n_boot: int) -> None:
    """Add the options of a benchmark grid: `--n-boot` (bootstrap resamples), `--threads` (torch threads, 1) and
    `--out` (its folder, runs/<out>).

    >>> parser = argparse.ArgumentParser()
    >>> add_grid_options(parser, "bench-x", n_boot=100)
    >>> args = parser.parse_args(["--threads", "2"])
    >>> args.n_boot, args.threads, args.out.relative_to(ROOT).as_posix()
    (100, 2, 'runs/bench-x')
    """
    parser.add_argument("--n-boot", type=int, default=n_boot)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / out)
