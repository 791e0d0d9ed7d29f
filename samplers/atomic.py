"""Atomic output files: write to a temporary file beside the target, then rename.

A reader never sees a half-written file, and a crash leaves the old file (or nothing) in place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_output", "OutputExistsError"]


class OutputExistsError(FileExistsError):
    """Raised when an output file exists and overwriting was not asked for."""


@contextlib.contextmanager
def atomic_output(path, *, overwrite: bool = False, suffix: str | None = None):
    """Yield a temporary path in the target's directory; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched. An existing
    ``path`` raises :class:`OutputExistsError` unless ``overwrite`` is true.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists (pass overwrite=True / --overwrite to replace it)")
    if path.exists() and path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"output directory {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or (path.suffix + ".tmp"), dir=parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
