"""Helpers shared by the benchmark scripts: where the data is, tables, and writing sections of docs/benchmarks.md.

The machine description, the commit and the section writing are the library's (:mod:`multitask.doc_sections`),
shared with the experiment scripts.
"""

from __future__ import annotations

from pathlib import Path

from multitask.doc_sections import git_revision, machine, replace_section
from multitask.doc_sections import text_table as markdown_table
from multitask.doc_sections import write_section as write_doc_section

__all__ = ["DOCS", "ROOT", "SHARED", "git_revision", "machine", "markdown_table", "replace_section",
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
