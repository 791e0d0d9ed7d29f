"""Training data from the user's own files, read lazily: image folders, ``.npy`` stacks, HDF5, NetCDF and Zarr.

A *source* is a sequence of items, each a ``(C, H, W)`` float32 array in physical units, read only when asked
(:func:`open_source`):

- a folder of images (PNG, JPEG, TIFF, BMP, GIF via Pillow / tifffile; DICOM via pydicom, with the modality
  rescale slope and intercept applied): one file is one item, greyscale (colour is reduced to ITU-R BT.601
  luma, ``0.299 R + 0.587 G + 0.114 B``, Pillow's ``"L"`` weights); each file is opened when its item is read;
- ``stack.npy`` of shape ``(N, H, W)`` or ``(N, C, H, W)``, memory-mapped (``np.load(mmap_mode="r")``);
- ``file.h5:DATASET`` (or ``.hdf5``), an HDF5 dataset of the same shapes, read one item at a time by h5py;
- ``file.nc:VAR`` or ``store.zarr:VAR``, a NetCDF / Zarr variable opened lazily by xarray (first dimension:
  the items).

:class:`ExampleDataset` turns items into training examples of ``size x size`` pixels in model space:

- ``patches=0``: the item is centre-cropped to a square and resized to ``size`` (bilinear with antialiasing,
  ``torch.nn.functional.interpolate(..., antialias=True)``, which averages like an area filter when shrinking);
- ``patches=K``: ``K`` crops of ``size x size`` at native resolution per item, at positions drawn from a
  generator seeded by ``(seed, item, k)`` alone (an item smaller than ``size`` is first resized so its shorter
  side is ``size``), so a few large images give many examples and a resumed run sees the same crops.

:func:`data_statistics` streams the pixel values once (min, max, mean, std) and :func:`normalisation_from_stats`
turns them into the :class:`~priors.normalisation.Normalisation` of the card: ``"range"`` maps ``[min, max]``
to ``[-1, 1]``; ``"std"`` maps ``mean +- 2 std`` to ``[-1, 1]`` (``x = (p - mean) / (2 std)``, the EDM
``sigma_data = 0.5`` scale). :func:`split_items` holds out a seeded validation split of the items.

Example::

    import numpy as np
    from priors.user_data import ExampleDataset, data_statistics, normalisation_from_stats, open_source, split_items
    np.save("stack.npy", np.random.rand(20, 32, 32).astype("float32"))
    src = open_source("stack.npy")
    train, val = split_items(len(src), 0.1, seed=0)
    norm = normalisation_from_stats(data_statistics(src, train), "range", units="a.u.")
    ds = ExampleDataset(src, train, size=16, normalisation=norm)
    (x,) = ds[0]                       # a (1, 16, 16) tensor in [-1, 1]
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from priors.errors import PriorError
from priors.normalisation import Normalisation

__all__ = ["IMAGE_SUFFIXES", "DICOM_SUFFIXES", "RESIZE_METHOD", "ImageFolderSource", "ArraySource", "open_source",
           "split_items", "data_statistics", "normalisation_from_stats", "ExampleDataset", "materialise"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
DICOM_SUFFIXES = (".dcm", ".dicom")

#: how an item becomes a ``size x size`` example (recorded in the card)
RESIZE_METHOD = "centre square crop, then bilinear resize with antialiasing (torch interpolate, antialias=True)"

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _greyscale(a: np.ndarray, name: str) -> np.ndarray:
    """``(H, W)``, ``(H, W, 3|4)`` or a single-channel ``(H, W, 1)`` array -> ``(1, H, W)`` float32."""
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].astype(np.float32) @ _LUMA
    elif a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2 or min(a.shape) < 1:
        raise PriorError(f"{name}: expected a 2-D greyscale or RGB image, got an array of shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise PriorError(f"{name}: pixel type {a.dtype} is not a real number")
    return a.astype(np.float32)[None]


def _read_dicom(path: Path) -> np.ndarray:
    import pydicom

    ds = pydicom.dcmread(str(path))
    a = ds.pixel_array
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        a = a[0]  # a multi-frame file contributes its first frame
    try:
        from pydicom.pixels import apply_modality_lut
    except ImportError:  # pydicom < 3
        from pydicom.pixel_data_handlers.util import apply_modality_lut
    if a.ndim == 2:
        a = apply_modality_lut(a, ds)
    return a


def _read_image(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES:
        return _read_dicom(path)
    if suffix in (".tif", ".tiff"):
        import tifffile

        return tifffile.imread(str(path), key=0)
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("P", "PA", "LA", "1", "CMYK", "YCbCr"):
            im = im.convert("RGB")
        return np.asarray(im)


class ImageFolderSource:
    """The image files of a folder (sorted, recursive; hidden files skipped), one greyscale item each.

    Files are found now and opened only in :meth:`read`. A folder with no image file is a
    :class:`~priors.errors.PriorError` naming the suffixes looked for.
    """

    def __init__(self, folder):
        self.path = Path(folder)
        suffixes = IMAGE_SUFFIXES + DICOM_SUFFIXES
        self.files = sorted(p for p in self.path.rglob("*") if p.suffix.lower() in suffixes and p.is_file()
                            and not any(part.startswith(".") for part in p.relative_to(self.path).parts))
        if not self.files:
            raise PriorError(f"{self.path}: no image files ({', '.join(s[1:] for s in suffixes)})")
        self.channels = 1

    def __len__(self) -> int:
        return len(self.files)

    def name(self, i: int) -> str:
        """The file of item ``i``."""
        return str(self.files[i])

    def read(self, i: int) -> np.ndarray:
        """Item ``i`` as a ``(1, H, W)`` float32 array (the file is opened now)."""
        f = self.files[i]
        try:
            a = _read_image(f)
        except PriorError:
            raise
        except Exception as e:  # Pillow, tifffile and pydicom raise many types for unreadable files
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise PriorError(f"{f}: cannot be read as an image ({msg})") from None
        return _greyscale(a, str(f))

    def describe(self) -> dict:
        """JSON-ready description of the source (for the card)."""
        kinds = sorted({f.suffix.lower().lstrip(".") for f in self.files})
        return {"kind": "image folder", "path": str(self.path), "items": len(self), "file_types": kinds,
                "greyscale": "ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B)"}


class ArraySource:
    """Items along the first axis of an array-like read lazily: a memory-mapped ``.npy``, an h5py dataset or an
    xarray variable. ``opener()`` returns the array; it is called again in a new process (DataLoader workers)."""

    def __init__(self, opener, description: dict):
        self._opener, self._pid, self._array = opener, None, None
        a = self._get()
        if a.ndim not in (3, 4) or min(a.shape) < 1:
            raise PriorError(f"{description['path']}: expected an array of shape (N, H, W) or (N, C, H, W), "
                             f"got {tuple(a.shape)}")
        dtype = np.dtype(a.dtype)
        if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
            raise PriorError(f"{description['path']}: values of type {dtype} are not real numbers")
        self.shape = tuple(int(s) for s in a.shape)
        self.channels = 1 if a.ndim == 3 else self.shape[1]
        self._description = {**description, "items": self.shape[0], "shape": list(self.shape)}

    def _get(self):
        if self._pid != os.getpid():  # h5py / netCDF handles must not cross a fork
            self._array, self._pid = self._opener(), os.getpid()
        return self._array

    def __getstate__(self):
        return {**self.__dict__, "_array": None, "_pid": None}

    def __len__(self) -> int:
        return self.shape[0]

    def name(self, i: int) -> str:
        """``path[i]``."""
        return f"{self._description['path']}[{i}]"

    def read(self, i: int) -> np.ndarray:
        """Item ``i`` as a ``(C, H, W)`` float32 array (only this item is read)."""
        a = np.array(self._get()[int(i)], dtype=np.float32)  # a copy: the memory map stays read-only
        return a[None] if a.ndim == 2 else a

    def describe(self) -> dict:
        """JSON-ready description of the source (for the card)."""
        return dict(self._description)


def _split_variable(spec: str) -> tuple[str, str | None]:
    """``"file.h5:data"`` -> ``("file.h5", "data")``; a path that exists as given keeps its colons."""
    if Path(spec).exists() or ":" not in spec:
        return spec, None
    path, var = spec.rsplit(":", 1)
    return path, var


def _open_npy(path: Path) -> ArraySource:
    def opener():
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise PriorError(f"{path}: not a readable .npy array ({str(e).splitlines()[0]})") from None

    return ArraySource(opener, {"kind": "npy (memory-mapped)", "path": str(path)})


def _open_hdf5(path: Path, var: str | None) -> ArraySource:
    import h5py

    if not var:
        raise PriorError(f"{path}: name the HDF5 dataset as {path}:DATASET")

    def opener():
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise PriorError(f"{path}: not a readable HDF5 file ({str(e).splitlines()[0]})") from None
        if var not in f or not isinstance(f[var], h5py.Dataset):
            names = []
            f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            f.close()
            raise PriorError(f"{path}: no dataset {var!r} (datasets: {', '.join(names) or 'none'})")
        return f[var]

    return ArraySource(opener, {"kind": "hdf5 (lazy)", "path": str(path), "variable": var})


def _open_xarray(path: Path, var: str | None, zarr: bool) -> ArraySource:
    import xarray as xr

    if not var:
        raise PriorError(f"{path}: name the variable as {path}:VARIABLE")

    def opener():
        try:
            ds = xr.open_zarr(path) if zarr else xr.open_dataset(path)
        except ImportError as e:
            raise PriorError(f"{path}: reading it needs a package that is not installed ({e})") from None
        except Exception as e:  # xarray backends raise many types for unreadable files
            raise PriorError(f"{path}: not a readable {'Zarr store' if zarr else 'NetCDF file'} "
                             f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        if var not in ds.data_vars:
            raise PriorError(f"{path}: no variable {var!r} (variables: {', '.join(map(str, ds.data_vars)) or 'none'})")
        return ds[var].variable  # indexing a lazy variable reads only that item

    return ArraySource(opener, {"kind": "zarr (lazy)" if zarr else "netcdf (lazy)", "path": str(path),
                                "variable": var})


def open_source(spec) -> ImageFolderSource | ArraySource:
    """The data source named by ``spec`` (module docstring): a folder, ``x.npy``, ``x.h5:DATASET``,
    ``x.nc:VAR`` or ``x.zarr:VAR``. Raises :class:`~priors.errors.PriorError` (one line) for a missing path,
    an empty folder, an unknown format or an array of the wrong shape."""
    path, var = _split_variable(str(spec))
    p = Path(path)
    if not p.exists():
        raise PriorError(f"{p}: no such file or folder")
    suffix = p.suffix.lower()
    if suffix == ".zarr":
        return _open_xarray(p, var, zarr=True)
    if p.is_dir():
        if var is not None:
            raise PriorError(f"{spec}: a folder of images takes no ':VARIABLE'")
        return ImageFolderSource(p)
    if not p.is_file():
        raise PriorError(f"{p}: not a regular file or folder")
    if suffix == ".npy":
        return _open_npy(p)
    if suffix in (".h5", ".hdf5", ".hdf"):
        return _open_hdf5(p, var)
    if suffix in (".nc", ".nc4", ".cdf", ".netcdf"):
        return _open_xarray(p, var, zarr=False)
    raise PriorError(f"{p}: unknown data format {suffix or '(no suffix)'} (expected a folder of images, .npy, "
                     ".h5:DATASET, .nc:VARIABLE or .zarr:VARIABLE)")


def split_items(n: int, val_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """A seeded split of items ``0..n-1`` into ``(train, validation)``, disjoint, each sorted.

    The validation split holds ``round(n * val_fraction)`` items (at least one when ``val_fraction > 0``); the
    permutation depends on ``(n, seed)`` only. At least one item must remain for training.
    """
    if not 0 <= val_fraction < 1:
        raise PriorError(f"the validation fraction must be in [0, 1), got {val_fraction}")
    n_val = 0 if val_fraction == 0 else max(1, int(round(n * val_fraction)))
    if n - n_val < 1:
        raise PriorError(f"{n} item(s) leave none for training after holding out {n_val} for validation")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).tolist()
    return sorted(perm[n_val:]), sorted(perm[:n_val])


def data_statistics(source, items, chunk: int = 64) -> dict:
    """Pixel statistics of the items ``items`` of ``source``, streamed one item at a time: ``min``, ``max``,
    ``mean``, ``std`` (population), ``count`` (pixels) and ``items``. Refuses NaN / Inf values (naming the item)."""
    n, s, s2, lo, hi = 0, 0.0, 0.0, math.inf, -math.inf
    for i in items:
        a = source.read(i).astype(np.float64)
        if not np.isfinite(a).all():
            raise PriorError(f"{source.name(i)}: holds NaN or Inf values")
        n += a.size
        s += float(a.sum())
        s2 += float((a * a).sum())
        lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    if n == 0:
        raise PriorError("no training items to compute the normalisation from")
    mean = s / n
    std = math.sqrt(max(s2 / n - mean * mean, 0.0))
    return {"min": lo, "max": hi, "mean": mean, "std": std, "count": n, "items": len(items)}


def normalisation_from_stats(stats: dict, method: str = "range", units: str = "") -> Normalisation:
    """The card's normalisation from :func:`data_statistics`: ``"range"`` maps ``[min, max]`` to ``[-1, 1]``,
    ``"std"`` maps ``mean +- 2 std`` to ``[-1, 1]``. Constant data are refused."""
    if method == "range":
        scale, offset = (stats["max"] - stats["min"]) / 2, (stats["max"] + stats["min"]) / 2
    elif method == "std":
        scale, offset = 2 * stats["std"], stats["mean"]
    else:
        raise PriorError(f"unknown normalisation {method!r}; expected 'range' or 'std'")
    if not scale > 0:
        raise PriorError(f"the training data are constant (every value {stats['min']}): nothing to learn")
    return Normalisation(float(scale), float(offset), str(units))


def _resize_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """``(C, H, W)`` -> centre square crop -> ``(C, size, size)`` (:data:`RESIZE_METHOD`)."""
    h, w = x.shape[-2:]
    m = min(h, w)
    top, left = (h - m) // 2, (w - m) // 2
    x = x[:, top:top + m, left:left + m]
    if m == size:
        return x
    return torch.nn.functional.interpolate(x[None], size=(size, size), mode="bilinear", antialias=True,
                                           align_corners=False)[0]


def _crop(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A ``size x size`` crop at a seeded position (the shorter side first resized up to ``size`` if smaller)."""
    h, w = x.shape[-2:]
    if min(h, w) < size:
        f = size / min(h, w)
        h, w = max(size, round(h * f)), max(size, round(w * f))
        x = torch.nn.functional.interpolate(x[None], size=(h, w), mode="bilinear", antialias=True,
                                            align_corners=False)[0]
    top = int(torch.randint(0, h - size + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - size + 1, (1,), generator=generator))
    return x[:, top:top + size, left:left + size]


class ExampleDataset(torch.utils.data.Dataset):
    """Training examples ``(x,)`` of shape ``(C, size, size)`` in model space, read from ``source`` per access.

    ``items`` are the source items used (e.g. the training split); with ``patches = K > 0`` each item gives
    ``K`` examples (module docstring), so ``len = len(items) * max(1, K)``. Nothing is held in memory but
    the file list / array handle: a map-style dataset for :class:`torch.utils.data.DataLoader`, and for
    :class:`priors.training.TensorDataModule`'s seeded batch sampler.
    """

    def __init__(self, source, items, size: int, normalisation: Normalisation | None = None, patches: int = 0,
                 seed: int = 0):
        self.source, self.items, self.size = source, list(items), int(size)
        self.patches, self.seed = int(patches), int(seed)
        self.normalisation = normalisation or Normalisation()
        if not self.items:
            raise PriorError("no items to make training examples from")

    @property
    def per_item(self) -> int:
        """Examples per item."""
        return max(1, self.patches)

    @property
    def example_shape(self) -> tuple[int, int, int]:
        """``(C, size, size)``."""
        return (int(self.source.channels), self.size, self.size)

    def __len__(self) -> int:
        return len(self.items) * self.per_item

    def __getitem__(self, j: int):
        if not 0 <= j < len(self):
            raise IndexError(j)
        item, k = divmod(int(j), self.per_item)
        i = self.items[item]
        x = torch.from_numpy(np.ascontiguousarray(self.source.read(i)))
        if self.patches:
            g = torch.Generator().manual_seed(((self.seed * 1_000_003 + i) * 1_000_003 + k) % (2**63 - 1))
            x = _crop(x, self.size, g)
        else:
            x = _resize_square(x, self.size)
        x = self.normalisation.from_physical(x).float()
        if not bool(torch.isfinite(x).all()):
            raise PriorError(f"{self.source.name(i)}: holds NaN or Inf values")
        return (x.contiguous(),)


def materialise(dataset: ExampleDataset, limit: int | None = None) -> torch.Tensor:
    """``limit`` examples of ``dataset`` (all by default), evenly spaced over it, as one tensor ``(N, C, H, W)``."""
    n = len(dataset) if limit is None else min(int(limit), len(dataset))
    picks = torch.linspace(0, len(dataset) - 1, n).round().long().unique().tolist() if n else []
    return torch.stack([dataset[j][0] for j in picks])
