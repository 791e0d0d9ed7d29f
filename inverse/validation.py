"""Checks of command-line values shared by the ``inverse`` commands, run before any work or output.

Each check returns the value in its checked form or raises a user error (:class:`inverse.errors.UserError`,
or ``FileNotFoundError`` / ``FileExistsError`` / ``IsADirectoryError`` for paths) whose message is one line
naming the flag, the value and the accepted range; ``inverse`` prints it and exits with code 2.

- :func:`check_seed`: an integer in ``0 .. 2**63 - 1`` (what ``torch.Generator.manual_seed`` and JAX keys take).
- :func:`check_threads`: an integer in ``1 .. MAX_THREADS`` (``torch.set_num_threads`` takes a C int).
- :func:`check_device`: ``cpu``, ``cuda`` / ``cuda:N`` (present on this machine) or ``mps`` (present).
- :func:`check_output_path`: a file name the file system accepts, in an existing writable directory, not a
  directory, not an existing file unless ``overwrite`` (:func:`samplers.atomic.check_output_path`).
- :func:`check_output_dir`: a directory that exists or can be created (names within the file system's limits).
- :func:`check_distinct_paths`: no two outputs (or an output and an input) are the same file.

Example::

    from inverse.validation import check_distinct_paths, check_output_path, check_seed
    check_seed(2**70)        # UserError: --seed must be an integer in 0..9223372036854775807, got 1180...
    check_output_path("o.nc", "--out")
    check_distinct_paths([("--out", "z.nc"), ("--checkpoint", "./z.nc")])   # UserError: the same file
"""

from __future__ import annotations

import os
from pathlib import Path

from inverse.errors import UserError

__all__ = ["MAX_SEED", "MAX_THREADS", "check_seed", "check_threads", "check_device", "check_output_path",
           "check_output_dir", "check_path_names", "check_distinct_paths", "memory_limit_bytes", "format_bytes"]

#: largest seed: torch generators take unsigned 64-bit seeds, JAX keys signed 64-bit ones
MAX_SEED = 2**63 - 1
#: most CPU threads a command accepts (beyond a few per core, threads only slow a run down)
MAX_THREADS = 4096


def _integer(value, flag: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            as_float = float(value)
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"{flag} must be an integer in {low}..{high}, got {value!r}") from None
        if not as_float.is_integer():
            raise UserError(f"{flag} must be an integer in {low}..{high}, got {value!r}")
        value = int(as_float)
    if not low <= value <= high:
        raise UserError(f"{flag} must be an integer in {low}..{high}, got {value}")
    return int(value)


def check_seed(value, flag: str = "--seed") -> int:
    """``value`` as a seed in ``0 .. MAX_SEED``."""
    return _integer(value, flag, 0, MAX_SEED)


def check_threads(value, flag: str = "--threads") -> int | None:
    """``value`` as a thread count in ``1 .. MAX_THREADS`` (None stays None: torch's choice)."""
    return None if value is None else _integer(value, flag, 1, MAX_THREADS)


def check_device(device, flag: str = "--device") -> str | None:
    """``device`` if this machine can run on it: ``cpu``, ``cuda`` / ``cuda:N`` or ``mps``; None stays None."""
    if device is None:
        return None
    import torch

    accepted = "use cpu, cuda, cuda:N or mps"
    try:
        dev = torch.device(str(device))
    except (RuntimeError, TypeError, ValueError):
        raise UserError(f"{flag} {device!r}: unknown device ({accepted})") from None
    if dev.type == "cpu":
        return str(device)
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"{flag} {device}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= count:
            raise UserError(f"{flag} {device}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}")
        return str(device)
    if dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise UserError(f"{flag} {device}: MPS is not available on this machine")
        return str(device)
    raise UserError(f"{flag} {device!r}: not a device the samplers run on ({accepted})")


def check_output_path(path, flag: str, *, overwrite: bool = False) -> Path:
    """``path`` as a :class:`~pathlib.Path` that an atomic write can create: a name the file system takes, in
    an existing writable directory, not a directory, not an existing file unless ``overwrite``
    (:func:`samplers.atomic.check_output_path`); an empty name is refused naming ``flag``."""
    from samplers.atomic import check_output_path as atomic_check

    if path is None or not str(os.fspath(path)).strip():
        raise UserError(f"{flag}: the file name is empty")
    check_path_names(Path(path), flag)
    p = atomic_check(Path(path), overwrite=overwrite)
    _probe_directory(p)
    return p


def _probe_directory(p: Path) -> None:
    """Create and remove an empty file beside ``p``: some directories pass every permission check and still
    refuse new files (``/proc``, a full quota, a read-only bind mount seen as writable)."""
    from samplers.atomic import OutputWriteError

    parent = p.parent if str(p.parent) else Path(".")
    try:
        fd = os.open(parent / f".{os.getpid()}.inverse-probe", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return  # our own probe from a moment ago: the directory takes files
    except OSError as e:
        raise OutputWriteError(e.errno, e.strerror or str(e), str(p)) from None
    os.close(fd)
    os.unlink(parent / f".{os.getpid()}.inverse-probe")


def _is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except OSError:  # a name too long for the file system
        return False


def check_path_names(p, flag: str) -> None:
    """Each name of ``p`` within the file system's ``NAME_MAX`` (checked before any ``stat``, which fails on
    such a name), the whole path under 4000 bytes."""
    p = Path(p)
    existing = next((a for a in p.parents if _is_dir(a)), Path("."))
    try:
        name_max = int(os.pathconf(existing, "PC_NAME_MAX"))
    except (OSError, ValueError):
        name_max = 255
    for part in p.parts:
        if len(os.fsencode(part)) > name_max:
            raise UserError(f"{flag}: the name {part[:24]}... is {len(os.fsencode(part))} bytes long; this file "
                            f"system allows {name_max}")
    if len(os.fsencode(os.path.abspath(p))) >= 4000:
        raise UserError(f"{flag}: the path is too long ({len(os.fsencode(os.path.abspath(p)))} bytes)")


def check_output_dir(path, flag: str) -> Path:
    """``path`` as a directory that exists or can be created: not empty, not a file, each name within the
    file system's limit (``NAME_MAX``, usually 255 bytes), the whole path under 4096 bytes."""
    if path is None or not str(os.fspath(path)).strip():
        raise UserError(f"{flag}: the directory name is empty")
    p = Path(path)
    check_path_names(p, flag)
    if p.exists() and not p.is_dir():
        raise NotADirectoryError(f"{flag} {p} exists and is not a directory")
    return p


def check_distinct_paths(items) -> None:
    """Refuse two entries of ``items`` (``(flag, path)`` pairs; None paths skipped) that name the same file:
    the same path after resolving ``.``, ``..`` and links, or two names of one existing file."""
    seen: list[tuple[str, Path, str]] = []
    for flag, path in items:
        if path is None:
            continue
        p = Path(path)
        key = os.path.normcase(os.path.realpath(p))
        for other_flag, other, other_key in seen:
            same = key == other_key
            if not same and p.exists() and other.exists():
                try:
                    same = os.path.samefile(p, other)
                except OSError:
                    same = False
            if same:
                raise UserError(f"{other_flag} {other} and {flag} {p} are the same file: give them different names")
        seen.append((flag, p, key))


def memory_limit_bytes(fraction: float = 0.5) -> int:
    """``fraction`` of this machine's physical memory (8 GiB assumed where it cannot be read): the most a
    command lets one problem or run allocate."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 0
    total = total if total > 0 else 16 * 2**30
    return int(fraction * total)


def format_bytes(n: float) -> str:
    """``1.5e9`` -> ``'1.4 GiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover
