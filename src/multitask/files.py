"""Files written atomically: a temporary file in the same folder, flushed, then renamed over the target.

A reader (or a process killed half-way) sees either the old file or the new one, never half a file. The file
is not fsynced: this protects against a killed process or a full disk, not against a power cut (an fsync per
checkpoint cost about 20 % of a small model's training time). New files get the usual permissions (0666 less
the umask), not mkstemp's 0600.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
>>> atomic_write_text(path, "hello\\n")
>>> path.read_text()
'hello\\n'
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from multitask.errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def _describe(error: OSError, path: Path) -> str:
    reason = error.strerror or error.__class__.__name__
    return f"cannot write {path}: {reason}"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path`; renamed onto `path` when the block ends without an exception.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "b.bin"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_bytes(b"x")
    >>> target.read_bytes()
    b'x'
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(handle)
        os.chmod(name, _FILE_MODE)
    except OSError as error:
        raise UserError(_describe(error, path)) from None
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise UserError(_describe(error, path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_with(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` to produce the file, then rename it onto `path` (for writers that take a path).

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "c.txt"
    >>> atomic_write_with(target, lambda tmp: tmp.write_text("c"))
    >>> target.read_text()
    'c'
    """
    with atomic_path(path) as tmp:
        write(tmp)
