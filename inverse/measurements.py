"""Measurement files: simulate a named problem, write and read it as NetCDF, load ground truths.

A measurement file (format ``inverse-measurements/1``) is an xarray Dataset with

- ``y``: the noisy measurement, named dimensions (e.g. ``angle, detector``), ``units`` attribute;
- ``truth`` (optional): the ground truth in physical units, named dimensions (``channel, y, x``);
- attributes: ``problem`` (name), ``options`` (JSON recipe), ``noise`` (JSON noise model),
  ``forward_model`` (JSON ``config()`` of the operator), ``seed``, ``package_version``, ``created``.

``open_measurements`` rebuilds the forward model from the recipe alone and checks its ``config()``
against the stored one, so a file from an incompatible version fails with a clear message instead
of silently using a different operator.

Truth files (``--truth``): NetCDF (a variable ``truth``, or the only data variable), ``.npy``, or
an image (PNG / JPEG). Images are converted to grey levels in [0, 1], resized to the problem's
grid with bilinear antialiasing (Pillow), then mapped linearly onto ``[lo, hi]`` of the problem's
physical range (:data:`TRUTH_RANGES`: [0, 1] for images, 1500-4500 m/s for velocities, 3-12 for
permeability, -10..10 for vorticity). Arrays must already have the problem's shape (a leading batch
axis of 1 and a missing channel axis are accepted) and are used unchanged.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from forward_models import Gaussian, InverseProblem, noise_from_config
from forward_models.base import ForwardModel
from inverse.errors import UserError
from inverse.problems import build_forward_model, draw_truth, get_problem, problem_options
from samplers.atomic import atomic_output
from samplers.posterior import package_version

__all__ = ["Measurements", "simulate", "open_measurements", "load_truth", "TRUTH_RANGES"]

_FORMAT = "inverse-measurements/1"

#: physical range an image (grey levels 0..1) is mapped onto, per problem
TRUTH_RANGES = {"ct": (0.0, 1.0), "mri": (0.0, 1.0), "mri-multicoil": (0.0, 1.0), "navier-stokes": (-10.0, 10.0),
                "darcy": (3.0, 12.0), "fwi": (1500.0, 4500.0), "seismic-interp": (-1.0, 1.0)}


@dataclass
class Measurements:
    """A simulated or recorded measurement with everything needed to rebuild its forward model.

    Attributes: ``problem`` name, ``options`` recipe, ``y`` (one measurement, float64), ``noise``
    model, ``forward_model``, optional ``truth`` ``(*input_shape)``, ``seed``.
    """

    problem: str
    options: dict
    y: torch.Tensor
    noise: object
    forward_model: ForwardModel
    truth: torch.Tensor | None = None
    seed: int | None = None

    def inverse_problem(self) -> InverseProblem:
        """The :class:`forward_models.InverseProblem` (y, forward model, noise, truth)."""
        return InverseProblem(self.forward_model, self.y, self.noise, truth=self.truth)

    def to_xarray(self):
        """The NetCDF layout of the module docstring as an ``xarray.Dataset``."""
        import xarray as xr

        spec = get_problem(self.problem)
        data = {"y": (spec.y_dims, self.y.detach().cpu().numpy(), {"units": spec.y_units,
                                                                   "long_name": "noisy measurement"})}
        if self.truth is not None:
            data["truth"] = (spec.x_dims, self.truth.detach().cpu().numpy(), {"units": spec.x_units,
                                                                              "long_name": "ground truth"})
        attrs = {"format": _FORMAT, "problem": self.problem, "description": spec.description,
                 "options": json.dumps(self.options), "noise": json.dumps(self.noise.config()),
                 "forward_model": json.dumps(self.forward_model.config()),
                 "seed": -1 if self.seed is None else int(self.seed), "package_version": package_version(),
                 "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
        return xr.Dataset(data, attrs=attrs)

    def to_netcdf(self, path, *, overwrite: bool = False) -> Path:
        """Write atomically (temporary file, then rename); refuses to replace a file unless asked."""
        ds = self.to_xarray()
        with atomic_output(path, overwrite=overwrite) as tmp:
            ds.to_netcdf(tmp, engine="h5netcdf")
        return Path(path)


def _noise_sigma(y_clean: torch.Tensor, noise_rel: float | None, noise_std: float | None, default_rel: float) -> float:
    if noise_std is not None and noise_rel is not None:
        raise UserError("give either --noise-std or --noise-rel, not both")
    if noise_std is not None:
        if not float(noise_std) > 0:
            raise UserError(f"--noise-std must be positive, got {noise_std}")
        return float(noise_std)
    rel = default_rel if noise_rel is None else float(noise_rel)
    if not rel > 0:
        raise UserError(f"--noise-rel must be positive, got {noise_rel}")
    rms = float(y_clean.double().square().mean().sqrt())
    if rms == 0:
        raise UserError("the noise-free measurement is identically zero; give --noise-std explicitly")
    return rel * rms


def simulate(problem: str, *, options: dict | None = None, truth=None, seed: int = 0, noise_rel: float | None = None,
             noise_std: float | None = None) -> Measurements:
    """Simulate ``y = F(x_true) + sigma e`` for a named problem (see :mod:`inverse.problems`).

    ``truth``: None (drawn from the problem's generator with ``seed``), a tensor / array of the
    input shape, or a path (:func:`load_truth`). ``seed`` also seeds the noise.

    Example::

        from inverse.measurements import simulate
        m = simulate("ct", options={"angles": 20}, seed=0)
        m.to_netcdf("y.nc")
    """
    spec = get_problem(problem)
    opts = problem_options(problem, **(options or {}))
    fm = build_forward_model(problem, opts)
    if truth is None:
        x = draw_truth(problem, opts, seed)
    elif isinstance(truth, (str, Path)):
        x = load_truth(truth, problem, tuple(fm.input_shape))[None]
    else:
        x = _check_truth_array(np.asarray(truth), tuple(fm.input_shape), "truth")[None]
    x = x.to(torch.float64)
    with torch.no_grad():
        y_clean = fm(x.to(_model_dtype(fm)))[0].to(torch.float64)
    if not bool(torch.isfinite(y_clean).all()):
        raise UserError(f"the forward model {type(fm).__name__} returned non-finite data for this truth")
    sigma = _noise_sigma(y_clean, noise_rel, noise_std, spec.noise_rel)
    g = torch.Generator().manual_seed(int(seed))
    y = y_clean + sigma * torch.randn(y_clean.shape, generator=g, dtype=torch.float64)
    return Measurements(problem, opts, y, Gaussian(sigma), fm, x[0], int(seed))


def _model_dtype(fm: ForwardModel) -> torch.dtype:
    """float32 for the wave-equation model (deepwave's fast path), float64 for the others."""
    return torch.float32 if type(fm).__name__ == "AcousticFWI" else torch.float64


def _check_truth_array(a: np.ndarray, shape: tuple, what: str) -> torch.Tensor:
    a = np.asarray(a)
    given = tuple(a.shape)
    if a.ndim == len(shape) + 1 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == len(shape) - 1 and shape[0] == 1:
        a = a[None]
    if tuple(a.shape) != tuple(shape):
        raise UserError(f"{what} has shape {given}, the problem needs {tuple(shape)}")
    if not np.issubdtype(a.dtype, np.number):
        raise UserError(f"{what} is not numeric (dtype {a.dtype})")
    if not np.isfinite(a).all():
        raise UserError(f"{what} contains {int((~np.isfinite(a)).sum())} NaN or Inf values")
    return torch.from_numpy(a.astype(np.float64))


def load_truth(path, problem: str, shape: tuple) -> torch.Tensor:
    """A ground truth of ``shape`` from a NetCDF, ``.npy`` or image file (rules in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"truth file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError, SyntaxError, TypeError) as e:  # pickles refused, corrupt headers
            raise UserError(f"{path} is not a plain .npy array ({type(e).__name__})") from None
        if not isinstance(a, np.ndarray):
            raise UserError(f"{path} is not a plain .npy array")
        return _check_truth_array(a, shape, f"truth {path.name}")
    if suffix in (".nc", ".nc4", ".netcdf"):
        from samplers.netcdf import load_dataset

        ds = load_dataset(path, "truth file")
        names = list(ds.data_vars)
        name = "truth" if "truth" in ds else names[0] if len(names) == 1 else None
        if name is None:
            raise UserError(f"{path} has variables {names}: name the ground truth 'truth'")
        return _check_truth_array(ds[name].values, shape, f"truth {path.name}:{name}")
    if suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
        from PIL import Image, UnidentifiedImageError

        if len(shape) != 3 or shape[0] != 1:
            raise UserError(f"an image cannot be the truth of problem {problem!r} (shape {shape})")
        try:
            img = Image.open(path).convert("L")
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
            raise UserError(f"{path} is not a readable image") from None
        img = img.resize((shape[2], shape[1]), Image.Resampling.BILINEAR)
        a = np.asarray(img, dtype=np.float64) / 255.0
        lo, hi = TRUTH_RANGES.get(problem, (0.0, 1.0))
        return torch.from_numpy(lo + (hi - lo) * a)[None]
    raise UserError(f"unsupported truth file {path.name}: use NetCDF (.nc), NumPy (.npy) or an image (.png)")


def open_measurements(path) -> Measurements:
    """Read a measurement file and rebuild its forward model from the recipe (clear errors otherwise)."""
    from samplers.netcdf import load_dataset

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"measurement file {path} does not exist")
    if path.is_dir():
        raise UserError(f"measurement file {path} is a directory")
    ds = load_dataset(path, "measurement file")
    if ds.attrs.get("format") != _FORMAT or "y" not in ds:
        hint = " (it is a posterior: plot it with 'inverse plot')" if "samples" in ds else ""
        raise UserError(f"{path} is not a measurement file written by 'inverse simulate'{hint}")
    try:
        options = json.loads(ds.attrs["options"])
        noise = noise_from_config(json.loads(ds.attrs["noise"]))
        stored = json.loads(ds.attrs["forward_model"])
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"corrupt measurement file {path}: bad attribute ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(options, dict) or not isinstance(stored, dict):
        raise UserError(f"corrupt measurement file {path}: the options and forward_model attributes must be "
                        "JSON objects")
    problem = str(ds.attrs.get("problem", ""))
    fm = build_forward_model(problem, options)
    rebuilt = json.loads(json.dumps(fm.config()))
    if rebuilt != stored:
        diff = sorted(k for k in set(rebuilt) | set(stored) if rebuilt.get(k) != stored.get(k))
        raise UserError(f"{path}: the forward model rebuilt from the recipe differs from the stored one in "
                        f"{diff} (file written by version {ds.attrs.get('package_version', '?')})")
    try:
        y = torch.from_numpy(np.asarray(ds["y"].values, dtype=np.float64).copy())
        truth = torch.from_numpy(np.asarray(ds["truth"].values, dtype=np.float64).copy()) if "truth" in ds else None
        seed = int(ds.attrs.get("seed", -1))
    except (TypeError, ValueError, OverflowError) as e:
        raise UserError(f"corrupt measurement file {path}: {type(e).__name__} reading y, truth or seed") from None
    m = Measurements(problem, options, y, noise, fm, truth, None if seed < 0 else seed)
    m.inverse_problem()  # shape / NaN checks, with their messages
    return m
