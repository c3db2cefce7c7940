"""Errors raised at the boundary, with enough context to find the bad value.

Every mistake a user can make (a bad label, a misspelled option, a damaged run directory, a folder that cannot
be written) raises a :class:`UserError`: the command line prints its message on one line and exits with code 2.
Any other exception is a bug of multitask: the command line says so, saves the traceback and exits with 1.

>>> issubclass(LabelError, UserError) and issubclass(ConfigError, UserError)
True
"""

from __future__ import annotations

from pathlib import Path


class UserError(ValueError):
    """Something the user gave (a file, an option, a folder) cannot be used; the message says what and where.

    A subclass of ValueError, so that code catching ValueError keeps working.

    >>> str(UserError("no such folder: runs/x"))
    'no such folder: runs/x'
    """


class LabelError(UserError):
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


class ConfigError(UserError):
    """A configuration key, option or value is invalid (the message names it and suggests the nearest valid)."""


class RunDirError(UserError):
    """A run directory is missing, unfinished or damaged; the message names the file and what is wrong.

    >>> str(RunDirError("runs/a/tasks.json: malformed JSON (line 1, column 2)"))
    'runs/a/tasks.json: malformed JSON (line 1, column 2)'
    """


class TrainingInterrupted(UserError):
    """Training stopped by SIGINT (Ctrl-C) or SIGTERM; the last finished epoch's checkpoint is kept and the run
    can be resumed (the message says how)."""


class UnknownNameError(ConfigError, KeyError):
    """A name looked up in a registry (trunk, sharing, weighting) that is not there; also a KeyError, as a missing
    mapping key is.

    >>> str(UnknownNameError("unknown trunk 'resnet'. Did you mean 'resnet18'?"))
    "unknown trunk 'resnet'. Did you mean 'resnet18'?"
    """

    __str__ = BaseException.__str__


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist; also a FileNotFoundError, for code that catches that.

    >>> error = MissingFileError("weights file not found: trunk.pth")
    >>> str(error), isinstance(error, FileNotFoundError)
    ('weights file not found: trunk.pth', True)
    """

    __str__ = BaseException.__str__
