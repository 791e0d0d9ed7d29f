"""Arrays out of foreign files: NumPy ``.npy``, MATLAB ``.mat`` (v5 and v7.3), HDF5 datasets and TIFF stacks.

Every failure to read (missing file, wrong format, truncated file, a dataset that is not there, a
pickle in a ``.npy``) is a one-line :class:`~inverse.errors.UserError` naming the file.

MATLAB v7.3 files are HDF5 (read with h5py): their arrays are stored in column-major order, so the
axes come back reversed (transposed here to MATLAB's order), and complex arrays are compound
``(real, imag)`` records (combined here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inverse.errors import UserError

__all__ = ["pick_slice", "read_npy", "read_mat", "read_hdf5", "read_tiff", "require_file"]


def require_file(path) -> Path:
    """``path`` as a ``Path`` if it is a readable regular file (one-line errors otherwise)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input file {path} does not exist")
    if not path.is_file():
        raise UserError(f"input {path} is not a regular file")
    return path


def _numeric(a, path: Path, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.names and set(a.dtype.names) >= {"real", "imag"}:
        a = a["real"] + 1j * a["imag"]
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise UserError(f"{path}: {name} is not a numeric array (dtype {a.dtype})")
    return a


def read_npy(path) -> np.ndarray:
    """A plain (non-pickled) NumPy array from a ``.npy`` file."""
    path = require_file(path)
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as e:
        raise UserError(f"{path} is not a readable .npy array ({type(e).__name__})") from None
    if not isinstance(a, np.ndarray):
        raise UserError(f"{path} is not a plain .npy array")
    return _numeric(a, path, "the array")


def _choose(names, wanted: str | None, defaults: tuple[str, ...], path: Path) -> str:
    if wanted is not None:
        if wanted not in names:
            raise UserError(f"{path} has no variable {wanted!r} (it has: {', '.join(names) or 'none'})")
        return wanted
    for d in defaults:
        if d in names:
            return d
    if len(names) == 1:
        return names[0]
    raise UserError(f"{path} has variables {', '.join(names) or 'none'}: name one with --variable "
                    f"(expected {' or '.join(defaults)})")


def read_hdf5(path, variable: str | None = None, defaults: tuple[str, ...] = ("kspace",),
              extra: tuple[str, ...] = ()) -> tuple[np.ndarray, dict]:
    """Dataset ``variable`` (default: the first of ``defaults`` present, or the only dataset) of an HDF5 file,
    and the datasets named in ``extra`` that exist (e.g. fastMRI's ``mask``)."""
    import h5py

    path = require_file(path)
    if not h5py.is_hdf5(path):
        raise UserError(f"{path} is not an HDF5 file")
    from samplers.netcdf import probe_hdf5

    probe_hdf5(path, "HDF5 file")
    try:
        with h5py.File(path, "r") as f:
            names = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
            name = _choose(names, variable, defaults, path)
            a = _numeric(f[name][()], path, f"dataset {name!r}")
            more = {k: _numeric(f[k][()], path, f"dataset {k!r}") for k in extra if k in names and k != name}
    except (OSError, KeyError, ValueError, RuntimeError) as e:
        if isinstance(e, UserError):
            raise
        raise UserError(f"{path}: unreadable HDF5 file ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    return a, more


def read_mat(path, variable: str | None = None, defaults: tuple[str, ...] = ("kspace",)) -> np.ndarray:
    """Variable ``variable`` of a MATLAB file: v4-v7 through ``scipy.io.loadmat``, v7.3 (HDF5) through h5py."""
    import h5py
    import scipy.io

    path = require_file(path)
    if h5py.is_hdf5(path):
        a, _ = read_hdf5(path, variable, defaults)
        return np.ascontiguousarray(a.transpose()) if a.ndim > 1 else a
    try:
        data = scipy.io.loadmat(path)
    except (ValueError, OSError, TypeError, NotImplementedError, EOFError) as e:
        raise UserError(f"{path} is not a readable MATLAB file ({type(e).__name__})") from None
    names = [k for k in data if not k.startswith("__")]
    name = _choose(names, variable, defaults, path)
    return _numeric(data[name], path, f"variable {name!r}")


def read_tiff(path) -> np.ndarray:
    """The image stack of a TIFF file ``(pages, rows, columns)`` or one page ``(rows, columns)`` (tifffile)."""
    import tifffile

    path = require_file(path)
    try:
        a = tifffile.imread(path)
    except (tifffile.TiffFileError, ValueError, OSError, KeyError, IndexError) as e:
        raise UserError(f"{path} is not a readable TIFF file ({type(e).__name__})") from None
    return _numeric(a, path, "the image")


def pick_slice(a: np.ndarray, index, stacked: bool, path, what: str) -> tuple[np.ndarray, str]:
    """``(a[index], "slice i of n")`` from a stack along axis 0 (``index`` None: the middle one), or
    ``(a, "")`` when ``stacked`` is false, where ``index`` must be None or 0. ``what`` names the stack's items."""
    if not stacked:
        if index not in (None, 0):
            raise UserError(f"{path}: the file holds one {what} (shape {a.shape}); --slice must be 0")
        return a, ""
    n = a.shape[0]
    i = n // 2 if index is None else int(index)
    if not 0 <= i < n:
        raise UserError(f"{path}: --slice {index} is out of range: the file has {n} {what}s (0..{n - 1})")
    return a[i], f"slice {i} of {n}"

