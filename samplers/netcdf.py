"""Reading NetCDF-4 files that may be missing, truncated, corrupt or not NetCDF at all.

Every reader of this library (posteriors, measurements, calibration data) opens files through
:func:`load_dataset`, which turns every failure of the HDF5 stack into one clean error:
``FileNotFoundError`` for a missing path, ``IsADirectoryError`` for a directory, and a one-line
``ValueError`` for anything else. A corrupt HDF5 file makes h5py raise almost any exception type
(``OSError``, ``KeyError``, ``RuntimeError``, ...) and leaves h5netcdf printing "Exception ignored"
noise when its half-built file object is collected; both are contained here. Nothing is unpickled.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from pathlib import Path

from samplers.errors import SamplerConfigError

__all__ = ["load_dataset", "HDF5_SIGNATURE"]

#: the first bytes of every NetCDF-4 (HDF5) file this library writes
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


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


def load_dataset(path, what: str = "NetCDF file"):
    """The whole ``xarray.Dataset`` in ``path`` (read into memory, file closed), or a clean error.

    ``what`` names the file in messages (e.g. ``"measurement file"``).
    """
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a directory, not a NetCDF file")
    try:
        with path.open("rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
    except OSError as e:
        raise SamplerConfigError(f"{what} {path} cannot be read ({type(e).__name__})") from None
    if head != HDF5_SIGNATURE:
        raise SamplerConfigError(f"{path} is not a readable NetCDF file (not NetCDF-4/HDF5: "
                                 f"{'empty' if not head else 'wrong signature'})")
    try:
        import h5py

        with h5py.File(path, "r") as f:  # fails cleanly where h5netcdf would leave a half-built object behind
            dict(f.attrs)
        with xr.open_dataset(path, engine="h5netcdf", cache=False) as ds:
            return ds.load()
    except Exception as e:  # noqa: BLE001 - corrupt HDF5 raises many types; all mean 'unreadable'
        error = type(e).__name__
    with _quiet_unraisable():
        pass
    raise SamplerConfigError(f"{path} is not a readable NetCDF file ({error})")
