"""Errors raised at the boundary, with enough context to find the bad value."""

from __future__ import annotations

from pathlib import Path


class LabelError(ValueError):
    """A label table (or another user file) holds something we cannot use.

    The message names the file, the 1-based line, the column and the value whenever they are known.

    >>> str(LabelError("not a label", file="labels.csv", line=3, column="car", value="maybe"))
    "labels.csv, line 3, column 'car': value 'maybe': not a label"
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
        value: object = None,
    ) -> None:
        self.reason = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.value = value
        location = []
        if self.file is not None:
            location.append(self.file)
        if line is not None:
            location.append(f"line {line}")
        if column is not None:
            location.append(f"column {column!r}")
        parts = [", ".join(location)] if location else []
        if value is not None:
            parts.append(f"value {str(value)!r}")
        parts.append(message)
        super().__init__(": ".join(parts))


class ConfigError(ValueError):
    """A configuration value or key is invalid."""
