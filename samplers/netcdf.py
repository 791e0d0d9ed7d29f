"""Reading NetCDF-4 files that may be missing, truncated, corrupt or not NetCDF at all; writing them safely.

Every reader of this library (posteriors, measurements, calibration data) opens files through
:func:`load_dataset`, which turns every failure of the HDF5 stack into one clean error:
``FileNotFoundError`` for a missing path, ``IsADirectoryError`` for a directory, and a one-line
``ValueError`` for anything else. A corrupt HDF5 file makes h5py raise almost any exception type
(``OSError``, ``KeyError``, ``RuntimeError``, ...) and leaves h5netcdf printing "Exception ignored"
noise when its half-built file object is collected; both are contained here, and so are the
warnings h5netcdf prints for plain HDF5 files (``phony_dims``). Nothing is unpickled.

:func:`check_input_file` is the check every reader runs before opening a path: a FIFO, a device
(``/dev/zero``) or a socket is refused with one line instead of blocking or reading forever.

:func:`write_netcdf` builds the whole file in memory and writes it with
:func:`samplers.atomic.write_bytes_atomic`: no HDF5 handle ever points at the disk, so a full disk is
one clean ``OutputWriteError`` (no "Can't close file" noise, no crash while an h5py object is freed).

:func:`probe_hdf5` guards against the worst corrupt files: some make the HDF5 C library loop forever
(or crash) while it parses their metadata, which no exception handler can catch. Before this
process touches a file, a forked child walks it (every group, attribute and dataset header, and the
data itself for files up to :data:`PROBE_READ_LIMIT` bytes) under a watchdog; a child that does not
finish within ``PROBE_TIMEOUT_S`` plus a second per 50 MB is killed, and the file is refused with one
line. The child sends nothing back but its exit status.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import stat
import sys
import time
import warnings
from pathlib import Path

from samplers.atomic import check_output_path, write_bytes_atomic
from samplers.errors import SamplerConfigError

__all__ = ["load_dataset", "write_netcdf", "check_input_file", "probe_hdf5", "HDF5_SIGNATURE", "PROBE_TIMEOUT_S",
           "PROBE_READ_LIMIT"]

#: the first bytes of every NetCDF-4 (HDF5) file this library writes
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: seconds a probe of a small file may take before the file is declared unreadable (plus 1 s per 50 MB)
PROBE_TIMEOUT_S = 15.0
#: files up to this size have their data read by the probe too (larger ones: metadata only)
PROBE_READ_LIMIT = 256 * 2**20


def _walk_hdf5(path: Path, read_data: bool) -> None:
    """Open ``path`` with h5py and touch every group, attribute and dataset header (and data if asked)."""
    import h5py

    with h5py.File(path, "r") as f:
        def visit(obj):
            for key in obj.attrs:
                obj.attrs[key]
            if isinstance(obj, h5py.Dataset):
                obj.shape, obj.dtype  # noqa: B018 - reading the header is the point
                if read_data:
                    obj[()]
            elif isinstance(obj, h5py.Group):
                for key in obj:
                    visit(obj[key])

        visit(f)


def probe_hdf5(path, what: str = "HDF5 file") -> None:
    """Refuse an HDF5 file that hangs or crashes the HDF5 library (module docstring); return if it does not.

    A file that merely fails to parse (an exception in the child) passes: the caller's own reader
    then reports the failure with its own message. Where ``os.fork`` does not exist, nothing is probed.
    Raises :class:`~samplers.errors.SamplerConfigError`. Example::

        probe_hdf5("posterior.nc")  # returns None for any file h5py reads or refuses in finite time
    """
    if not hasattr(os, "fork"):
        return
    import h5py  # noqa: F401 - imported before the fork, so the child does not pay for it

    path = Path(path)
    size = path.stat().st_size
    timeout = PROBE_TIMEOUT_S + size / 50e6
    with warnings.catch_warnings():
        # "this process is multi-threaded" (Python >= 3.12) and JAX's "os.fork() was called": the child runs
        # only h5py and never touches the parent's thread pools
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        code = 0
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            _walk_hdf5(path, size <= PROBE_READ_LIMIT)
        except BaseException:  # noqa: BLE001 - any failure is the parent reader's to report
            code = 3
        os._exit(code)
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise SamplerConfigError(f"{path} is not a readable {what}: the HDF5 library did not finish reading "
                                     f"it in {timeout:.0f} s (a corrupt file)")
        time.sleep(delay)
        delay = min(2 * delay, 0.05)
    if os.WIFSIGNALED(status):
        raise SamplerConfigError(f"{path} is not a readable {what}: the HDF5 library crashed reading it "
                                 f"(signal {os.WTERMSIG(status)}; a corrupt file)")


@contextlib.contextmanager
def _quiet_unraisable():
    """Swallow 'Exception ignored in __del__' reports while a failed open is cleaned up."""
    old = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        yield
    finally:
        gc.collect(1)  # the half-built objects are young: no full (slow) collection needed
        sys.unraisablehook = old


def check_input_file(path, what: str = "input file") -> Path:
    """``Path(path)`` if it names a regular file (symbolic links followed), else a one-line error.

    ``FileNotFoundError`` for a missing file (or a broken link), ``IsADirectoryError`` for a directory,
    :class:`~samplers.errors.SamplerConfigError` for an empty path, a FIFO, a device or a socket
    ("is not a regular file") and a path that cannot be looked at (too long, permission). Nothing is opened.
    """
    if path is None or not str(os.fspath(path)).strip():
        raise SamplerConfigError(f"empty {what} path")
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        broken = " (a broken symbolic link)" if path.is_symlink() else ""
        raise FileNotFoundError(f"{what} {path} does not exist{broken}") from None
    except OSError as e:
        raise SamplerConfigError(f"{what} {path} cannot be read ({e.strerror or type(e).__name__})") from None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"{what} {path} is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "special")
        raise SamplerConfigError(f"{what} {path} is not a regular file ({kind})")
    return path


def write_netcdf(data, path, *, overwrite: bool = False) -> Path:
    """Write an ``xarray.Dataset`` or ``DataTree`` (h5netcdf engine) to ``path`` atomically (module docstring).

    The target is checked first (:func:`samplers.atomic.check_output_path`), so a refusal costs no
    serialisation. Example::

        import numpy as np, xarray as xr
        from samplers.netcdf import write_netcdf, load_dataset
        write_netcdf(xr.Dataset({"a": ("x", np.arange(3.0))}), "a.nc", overwrite=True)
        assert float(load_dataset("a.nc")["a"].sum()) == 3.0
    """
    check_output_path(path, overwrite)
    return write_bytes_atomic(path, data.to_netcdf(None, engine="h5netcdf"), overwrite=overwrite)


def load_dataset(path, what: str = "NetCDF file"):
    """The whole ``xarray.Dataset`` in ``path`` (read into memory, file closed), or a clean error.

    ``what`` names the file in messages (e.g. ``"measurement file"``).
    """
    import xarray as xr

    path = check_input_file(path, what)
    try:
        with path.open("rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
    except OSError as e:
        raise SamplerConfigError(f"{what} {path} cannot be read ({type(e).__name__})") from None
    if head != HDF5_SIGNATURE:
        raise SamplerConfigError(f"{path} is not a readable NetCDF file (not NetCDF-4/HDF5: "
                                 f"{'empty' if not head else 'wrong signature'})")
    probe_hdf5(path, what)
    try:
        import h5py

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # h5netcdf's phony_dims notice for plain HDF5 files
            with h5py.File(path, "r") as f:  # fails cleanly where h5netcdf would leave a half-built object behind
                dict(f.attrs)
            with xr.open_dataset(path, engine="h5netcdf", cache=False, phony_dims="access") as ds:
                return ds.load()
    except Exception as e:  # noqa: BLE001 - corrupt HDF5 raises many types; all mean 'unreadable'
        error = type(e).__name__
    with _quiet_unraisable():
        pass
    raise SamplerConfigError(f"{path} is not a readable NetCDF file ({error})")
