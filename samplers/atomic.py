"""Atomic output files: write to a temporary file beside the target, then publish it in one step.

A reader never sees a half-written file, and a failure (an exception, Ctrl-C, a full disk) leaves
the old file (or nothing) in place and no temporary file.

- **Publishing.** With ``overwrite`` the temporary file replaces the target (``os.replace``) and takes
  the replaced file's permission bits. Without it, the temporary file is hard-linked to the target
  (``os.link`` fails if the target exists, so of two writers racing for one name exactly one wins and
  the other gets :class:`OutputExistsError`), then unlinked. On a file system without hard links
  (``EPERM``/``ENOTSUP``) the name is reserved with ``open(O_CREAT | O_EXCL)`` and then replaced: still
  one winner, but a reader may see an empty file at the target for that instant.
- **Permissions.** The temporary file is created with mode ``0o666`` filtered by the umask (``0644``
  under umask 022), like a file opened with ``open(path, "w")``.
- **Names and stale files.** The temporary file is ``.NAME.PID-HOST-RANDOM.SUFFIX`` in the target's
  directory (``HOST``: six hex digits of a hash of the host name). A write of a killed process stays
  behind; the next write to the same target removes such files whose process no longer runs on this
  host, and any of that pattern older than :data:`STALE_AFTER_S`.
- **Errors.** :func:`check_output_path` refuses an unusable target before any work (empty path,
  missing directory, a directory, an over-long name, an existing file, a read-only or unwritable
  directory). An ``OSError`` while writing becomes :class:`OutputWriteError`, naming the target (never
  the temporary file) and the errno, e.g. ``cannot write tiny/y.nc: [Errno 28] No space left on device``.

Example::

    from samplers.atomic import atomic_output, check_output_path
    check_output_path("out.txt")                  # before any expensive work
    with atomic_output("out.txt") as tmp:
        tmp.write_text("result")
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
import stat
import time
from pathlib import Path

from samplers.errors import SamplerConfigError

__all__ = ["atomic_output", "write_bytes_atomic", "check_output_path", "remove_stale_temporaries",
           "OutputExistsError", "OutputWriteError", "ENVIRONMENT_ERRNOS", "STALE_AFTER_S"]

#: errno values of an environment failure (full disk, quota, read-only or failing device): exit code 1
ENVIRONMENT_ERRNOS = frozenset(getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EROFS", "EIO", "EFBIG")
                               if hasattr(errno, n))

#: a temporary file of our naming pattern older than this (seconds) is removed by the next write
STALE_AFTER_S = 3600.0

#: errno values of ``os.link`` on a file system without hard links
_NO_HARD_LINKS = frozenset(getattr(errno, n) for n in ("EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EMLINK")
                           if hasattr(errno, n))


class OutputExistsError(FileExistsError):
    """Raised when an output file exists and overwriting was not asked for."""


class OutputWriteError(OSError):
    """An output file could not be written; ``str()`` names the target and the errno."""

    def __str__(self) -> str:
        why = f"[Errno {self.errno}] {self.strerror}" if self.errno is not None else str(self.strerror)
        return f"cannot write {self.filename}: {why}"


def _write_error(path, e: OSError) -> OutputWriteError:
    return OutputWriteError(e.errno, e.strerror or str(e), str(path))


def check_output_path(path, overwrite: bool = False) -> Path:
    """``Path(path)`` if a file can be written there, else a one-line error; call it before expensive work.

    Raises :class:`~samplers.errors.SamplerConfigError` for an empty path or a name longer than the
    file system allows, ``IsADirectoryError`` / ``FileNotFoundError`` / ``NotADirectoryError`` for a
    directory or a missing parent directory, :class:`OutputExistsError` for an existing file without
    ``overwrite``, and :class:`OutputWriteError` for a read-only (``EROFS``) or unwritable (``EACCES``)
    directory.
    """
    if path is None or not str(os.fspath(path)).strip():
        raise SamplerConfigError("empty output path: name the output file")
    p = Path(path)
    _check_lengths(p)  # first: stat() itself fails on an over-long name
    if p.name in ("", ".", "..") or p.is_dir():
        raise IsADirectoryError(f"{p} is a directory, not a file")
    parent = p.parent
    try:
        pst = parent.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"output directory {parent} does not exist") from None
    except OSError as e:
        raise _write_error(p, e) from None
    if not stat.S_ISDIR(pst.st_mode):
        raise NotADirectoryError(f"{parent} is not a directory (output {p})")
    if os.path.lexists(p) and not overwrite:
        raise OutputExistsError(f"{p} already exists (pass --overwrite / overwrite=True to replace it)")
    read_only = False
    with contextlib.suppress(OSError, AttributeError):
        read_only = bool(os.statvfs(parent).f_flag & os.ST_RDONLY)
    if read_only:
        raise _write_error(p, OSError(errno.EROFS, os.strerror(errno.EROFS)))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _write_error(p, OSError(errno.EACCES, os.strerror(errno.EACCES)))
    return p


def _check_lengths(p: Path) -> None:
    """Each name in ``p`` within the file system's ``NAME_MAX``, the whole path within ``PATH_MAX``."""
    limit = next((a for a in p.parents if _is_dir(a)), Path("."))
    name_max, path_max = _pathconf(limit, "PC_NAME_MAX", 255), _pathconf(limit, "PC_PATH_MAX", 4096)
    for part in p.parts:
        if len(os.fsencode(part)) > name_max:
            raise SamplerConfigError(f"output file name too long ({len(os.fsencode(part))} bytes; this file "
                                     f"system allows {name_max}): {part[:40]}...")
    if len(os.fsencode(os.path.abspath(p))) >= path_max:
        raise SamplerConfigError(f"output path too long (at most {path_max - 1} bytes): {str(p)[:60]}...")


def _is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except OSError:
        return False


def _pathconf(path, name: str, default: int) -> int:
    try:
        return int(os.pathconf(path, name))
    except (OSError, ValueError, AttributeError):
        return default


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _stem(path: Path) -> str:
    """The target's name as it appears in temporary names, cut so that they fit the file system's limit."""
    room = _pathconf(path.parent, "PC_NAME_MAX", 255) - 48
    return os.fsdecode(os.fsencode(path.name)[:max(room, 1)])


def _temporary_pattern(path: Path):
    return re.compile(rf"\.{re.escape(_stem(path))}\.(?:(\d+)-([0-9a-f]{{6}})-[0-9a-f]{{8}}|[A-Za-z0-9_]{{8}})\..+")


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def remove_stale_temporaries(path) -> list[Path]:
    """Remove temporary files of a killed write to ``path`` (module docstring); returns those removed."""
    path = Path(path)
    pattern, host, now, removed = _temporary_pattern(path), _host_tag(), time.time(), []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                continue
            dead = m.group(1) is not None and m.group(2) == host and not _pid_running(int(m.group(1)))
            if dead or now - st.st_mtime > STALE_AFTER_S:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _create_temporary(path: Path, suffix: str) -> Path:
    for _ in range(100):
        tmp = path.parent / f".{_stem(path)}.{os.getpid()}-{_host_tag()}-{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # the umask applies
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary file name")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` onto ``path`` (module docstring)."""
    _fsync(tmp)  # some file systems (NFS, quotas) report a full disk only here
    if overwrite:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # a replaced file keeps its mode
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(f"{path} already exists (another process wrote it meanwhile; "
                                "pass --overwrite / overwrite=True to replace it)") from None
    except OSError as e:
        if e.errno not in _NO_HARD_LINKS:
            raise
        try:  # no hard links here: reserve the name exclusively, then replace the placeholder
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            raise OutputExistsError(f"{path} already exists (another process wrote it meanwhile; "
                                    "pass --overwrite / overwrite=True to replace it)") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _concerns_output(e: BaseException, tmp: Path) -> bool:
    """Whether an exception raised by the writer is a failure to write the output (so it names the target)."""
    if not isinstance(e, OSError) or isinstance(e, (FileExistsError, OutputWriteError)):
        return False
    return e.errno in ENVIRONMENT_ERRNOS or (e.filename is not None and os.fspath(e.filename) == os.fspath(tmp))


@contextlib.contextmanager
def atomic_output(path, *, overwrite: bool = False, suffix: str | None = None):
    """Yield a temporary path in the target's directory; publish it as ``path`` on success (module docstring).

    On any exception the temporary file is removed and ``path`` is untouched. Refusals are those of
    :func:`check_output_path`; an ``OSError`` while writing (a full disk) becomes :class:`OutputWriteError`.
    ``suffix`` ends the temporary file's name (default: the target's suffix and ``.tmp``).
    """
    path = check_output_path(path, overwrite)
    remove_stale_temporaries(path)
    try:
        suffix = suffix or (path.suffix + ".tmp")
        tmp = _create_temporary(path, suffix if len(suffix) <= 16 else ".tmp")
    except OSError as e:
        raise _write_error(path, e) from None
    try:
        yield tmp
        try:
            _publish(tmp, path, overwrite)
        except OutputExistsError:
            raise
        except OSError as e:
            raise _write_error(path, e) from e
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if _concerns_output(e, tmp):
            raise _write_error(path, e) from e
        raise


def write_bytes_atomic(path, data, *, overwrite: bool = False) -> Path:
    """Write ``data`` (bytes-like) to ``path`` atomically; the only file handle is Python's own.

    Writers that build a whole file in memory (NetCDF, safetensors, PNG) use this, so that a full disk
    surfaces as one :class:`OutputWriteError` from a plain ``write`` and no library handle is left open.
    """
    with atomic_output(path, overwrite=overwrite) as tmp:
        _write_all(tmp, memoryview(data).cast("B"))
    return Path(path)


def _write_all(tmp: Path, view: memoryview) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
    try:
        done = 0
        while done < len(view):
            done += os.write(fd, view[done:done + (1 << 24)])
    finally:
        os.close(fd)
