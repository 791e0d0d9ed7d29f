"""Measurement files: simulate a named problem or wrap measured arrays, write and read them as NetCDF.

A measurement file (format ``inverse-measurements/2``) is an xarray Dataset with

- ``measurements``: the noisy measurement, named dimensions (e.g. ``channel, angle, detector``), ``units``;
- ``truth`` (optional): the ground truth in physical units, named dimensions (``channel, y, x``);
- operator arrays (optional, :mod:`inverse.importers.geometry`): recorded geometry that no recipe
  reproduces (a k-space ``mask``, ``coil_maps``, sensor positions), listed in the ``operator_arrays`` attribute;
- one coordinate variable per dimension, in physical units with ``units`` and ``long_name``
  (:mod:`inverse.coordinates`: pixel positions, angles in degrees, k-space frequencies, time, receiver
  positions, depth), as the CF conventions ask;
- attributes: ``problem`` (name), ``options`` (JSON recipe), ``noise`` (JSON noise model),
  ``forward_model`` (JSON ``config()`` of the operator), ``seed``, ``package_version``, ``created``, and the
  provenance of imported data: ``source_file``, ``importer``, ``command_line``, ``noise_estimate`` (how the
  noise level was obtained), ``preprocessing`` (a crop, a slice, a mask inference).

Format ``inverse-measurements/1`` (written before the rename) named the measurement variable ``y``, which
collides with the image dimension ``y`` (xarray then lists it as a coordinate); it is still read.

``open_measurements`` rebuilds the forward model from the recipe (and the operator arrays) alone and checks
its ``config()`` against the stored one, so a file from an incompatible version fails with a clear message
instead of silently using a different operator.

:func:`from_arrays` wraps measured arrays of any problem into the same :class:`Measurements`; the importers
of :mod:`inverse.importers` (``inverse import``) read foreign formats through it.

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
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from forward_models import Gaussian, InverseProblem, noise_from_config
from forward_models.base import ForwardModel
from inverse.errors import UserError
from inverse.problems import build_forward_model, draw_truth, get_problem, problem_options
from samplers.netcdf import write_netcdf
from samplers.posterior import package_version

__all__ = ["Measurements", "simulate", "from_arrays", "open_measurements", "load_truth", "TRUTH_RANGES",
           "PROVENANCE_KEYS"]

_FORMAT = "inverse-measurements/2"
_OLD_FORMATS = ("inverse-measurements/1",)  # the measurement variable was called ``y``

#: provenance attributes of a measurement file (all strings; absent when unknown)
PROVENANCE_KEYS = ("source_file", "importer", "command_line", "noise_estimate", "preprocessing")

#: physical range an image (grey levels 0..1) is mapped onto, per problem
TRUTH_RANGES = {"ct": (0.0, 1.0), "mri": (0.0, 1.0), "mri-multicoil": (0.0, 1.0), "navier-stokes": (-10.0, 10.0),
                "darcy": (3.0, 12.0), "fwi": (1500.0, 4500.0), "seismic-interp": (-1.0, 1.0),
                "ct-fanbeam": (0.0, 1.0), "mri-radial": (0.0, 1.0), "mri-radial-multicoil": (0.0, 1.0)}


@dataclass
class Measurements:
    """A simulated or recorded measurement with everything needed to rebuild its forward model.

    Attributes: ``problem`` name, ``options`` recipe, ``y`` (one measurement, float64), ``noise``
    model, ``forward_model``, optional ``truth`` ``(*input_shape)``, ``seed``, ``arrays`` (recorded
    geometry, :mod:`inverse.importers.geometry`) and ``provenance`` (strings, :data:`PROVENANCE_KEYS`).
    """

    problem: str
    options: dict
    y: torch.Tensor
    noise: object
    forward_model: ForwardModel
    truth: torch.Tensor | None = None
    seed: int | None = None
    arrays: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def inverse_problem(self) -> InverseProblem:
        """The :class:`forward_models.InverseProblem` (y, forward model, noise, truth)."""
        return InverseProblem(self.forward_model, self.y, self.noise, truth=self.truth)

    def fresh_forward_model(self) -> ForwardModel:
        """A new copy of the forward model, rebuilt from the options and the recorded arrays."""
        from inverse.importers.geometry import build_with_arrays

        return build_with_arrays(self.problem, self.options, self.arrays)

    def to_xarray(self):
        """The NetCDF layout of the module docstring as an ``xarray.Dataset``."""
        import xarray as xr

        from inverse.coordinates import auxiliary_coords, dimension_coords
        from inverse.importers.geometry import array_dims

        spec = get_problem(self.problem)
        y = self.y.detach().cpu().numpy()
        data = {"measurements": (spec.y_dims, y, {"units": spec.y_units, "long_name": "noisy measurement"})}
        if self.truth is not None:
            data["truth"] = (spec.x_dims, self.truth.detach().cpu().numpy(), {"units": spec.x_units,
                                                                              "long_name": "ground truth"})
        for name in sorted(self.arrays):
            a = np.asarray(self.arrays[name], dtype=np.float64)
            data[name] = (array_dims(self.problem, name, a), a, {"long_name": f"recorded {name.replace('_', ' ')}",
                                                                  "units": "1"})
        coords = {}
        for dims, values in [(v[0], v[1]) for v in data.values()]:
            for dim, (c, attrs) in dimension_coords(self.forward_model, dims, np.shape(values)).items():
                coords.setdefault(dim, (dim, c, attrs))
        coords.update(auxiliary_coords(self.forward_model, spec.y_dims))
        attrs = {"format": _FORMAT, "Conventions": "CF-1.10", "problem": self.problem,
                 "description": spec.description, "options": json.dumps(self.options),
                 "noise": json.dumps(self.noise.config()), "forward_model": json.dumps(self.forward_model.config()),
                 "seed": -1 if self.seed is None else int(self.seed), "package_version": package_version(),
                 "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
        if self.arrays:
            attrs["operator_arrays"] = json.dumps(sorted(self.arrays))
        attrs.update({k: str(v) for k, v in self.provenance.items() if k in PROVENANCE_KEYS and v is not None})
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def to_netcdf(self, path, *, overwrite: bool = False) -> Path:
        """Write atomically (temporary file, then rename); refuses to replace a file unless asked."""
        return write_netcdf(self.to_xarray(), path, overwrite=overwrite)


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
    from samplers.netcdf import check_input_file

    path = check_input_file(path, "truth file")  # a directory, a FIFO or a device: one line, nothing opened
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
    """Read a measurement file and rebuild its forward model from the recipe (clear errors otherwise).

    Reads the current format and ``inverse-measurements/1`` (measurement variable ``y``).
    """
    from inverse.importers.geometry import build_with_arrays
    from samplers.netcdf import load_dataset

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"measurement file {path} does not exist")
    if path.is_dir():
        raise UserError(f"measurement file {path} is a directory")
    ds = load_dataset(path, "measurement file")
    fmt = ds.attrs.get("format")
    var = "measurements" if fmt == _FORMAT else "y" if fmt in _OLD_FORMATS else None
    if var is None or var not in ds.variables:
        hint = " (it is a posterior: plot it with 'inverse plot')" if "samples" in ds else ""
        raise UserError(f"{path} is not a measurement file written by 'inverse simulate' or 'inverse import'{hint}")
    try:
        options = json.loads(ds.attrs["options"])
        noise = noise_from_config(json.loads(ds.attrs["noise"]))
        stored = json.loads(ds.attrs["forward_model"])
        names = json.loads(ds.attrs.get("operator_arrays", "[]"))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"corrupt measurement file {path}: bad attribute ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(options, dict) or not isinstance(stored, dict):
        raise UserError(f"corrupt measurement file {path}: the options and forward_model attributes must be "
                        "JSON objects")
    if not isinstance(names, list) or not all(isinstance(n, str) and n in ds.variables for n in names):
        raise UserError(f"corrupt measurement file {path}: the operator_arrays attribute names missing variables")
    if "problem" not in ds.attrs:
        raise UserError(f"corrupt measurement file {path}: it has no 'problem' attribute")
    problem = str(ds.attrs["problem"])
    get_problem(problem)
    try:
        arrays = {n: np.asarray(ds[n].values, dtype=np.float64).copy() for n in names}
    except (TypeError, ValueError) as e:
        raise UserError(f"corrupt measurement file {path}: {type(e).__name__} reading the operator arrays") from None
    fm = build_with_arrays(problem, options, arrays)
    rebuilt = json.loads(json.dumps(fm.config()))
    if rebuilt != stored:
        diff = sorted(k for k in set(rebuilt) | set(stored) if rebuilt.get(k) != stored.get(k))
        raise UserError(f"{path}: the forward model rebuilt from the recipe differs from the stored one in "
                        f"{diff} (file written by version {ds.attrs.get('package_version', '?')})")
    if any(np.iscomplexobj(ds[k].values) for k in (var, "truth") if k in ds):  # a cast would drop the imaginary part
        raise UserError(f"{path}: the measurement or truth is complex; store k-space as (real, imaginary) on a leading "
                        "axis of length 2, as 'inverse simulate' and 'inverse import' write it")
    try:
        y = torch.from_numpy(np.asarray(ds[var].values, dtype=np.float64).copy())
        truth = torch.from_numpy(np.asarray(ds["truth"].values, dtype=np.float64).copy()) if "truth" in ds else None
        seed = int(ds.attrs.get("seed", -1))
    except (TypeError, ValueError, OverflowError) as e:
        raise UserError(f"corrupt measurement file {path}: {type(e).__name__} reading {var}, truth or seed") from None
    provenance = {k: str(ds.attrs[k]) for k in PROVENANCE_KEYS if k in ds.attrs}
    m = Measurements(problem, options, y, noise, fm, truth, None if seed < 0 else seed, arrays, provenance)
    m.inverse_problem()  # shape / NaN checks, with their messages
    return m


# ------------------------------------------------------------------ measured arrays
def _as_numpy(a, what: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise UserError(f"{what} is not numeric (dtype {a.dtype})")
    return a


def _measurement_layout(problem: str, a: np.ndarray, shape: tuple) -> np.ndarray:
    """``a`` in the operator's real layout ``shape``: complex k-space becomes (real, imaginary) on a leading axis,
    a leading batch axis of 1 and a missing channel axis of 1 are accepted."""
    complex_layout = get_problem(problem).y_dims[:1] == ("complex",)
    given = tuple(a.shape)
    if np.iscomplexobj(a):
        if not complex_layout:
            raise UserError(f"problem {problem!r} needs real measurements, got a complex array of shape {given}")
        a = np.stack([a.real, a.imag], 0)
    elif complex_layout and (a.ndim != len(shape) or a.shape[0] != 2):
        raise UserError(f"problem {problem!r} needs complex k-space of shape {tuple(shape[1:])} (or its real layout "
                        f"{tuple(shape)}, real and imaginary parts first), got a real array of shape {given}")
    if a.ndim == len(shape) + 1 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == len(shape) - 1 and shape[0] == 1:
        a = a[None]
    if tuple(a.shape) != tuple(shape):
        raise UserError(f"problem {problem!r}: the measurements have shape {given}, the forward model gives "
                        f"{tuple(shape)}" + (" (complex: the last dimensions)" if complex_layout else ""))
    return a.astype(np.float64)


def from_arrays(problem: str, y, options: dict | None = None, *, noise_std: float | None = None, mask=None,
                geometry: dict | None = None, truth=None, provenance: dict | None = None) -> Measurements:
    """Wrap measured arrays of a named problem into :class:`Measurements` (then ``to_netcdf`` for ``reconstruct``).

    The forward model is rebuilt from ``options`` (the problem's defaults filled in,
    :func:`inverse.problems.problem_options`) and the recorded geometry, and ``y`` is checked against its
    output shape. Per problem family:

    | problem | ``y`` | ``mask`` / ``geometry`` |
    |---|---|---|
    | ``ct`` (``ct-fanbeam``) | sinogram ``(angles, detectors)`` | the geometry is in ``options`` |
    | ``mri`` | complex k-space ``(ky, kx)`` (or real ``(2, ky, kx)``) | ``mask`` ``(ky, kx)`` or ``(kx,)`` |
    | ``mri-multicoil`` | complex ``(coils, ky, kx)`` | ``mask``; ``geometry={"coil_maps": (C, H, W) complex}`` |
    | ``navier-stokes`` | vorticity ``(N / factor, N / factor)`` | ``options``: ``size``, ``factor`` |
    | ``darcy`` | pressures ``(S,)`` | ``geometry={"sensors": (S, 2)}`` (x, y in [0, 1]), or ``sensors=n`` |
    | ``fwi`` | shot gathers ``(shots, time, receivers)`` | ``options`` (``nt``, ``shots``, ...) |
    | ``seismic-interp`` | shot gathers ``(shots, time, receivers)`` | ``mask`` ``(receivers,)``, 1 = recorded |

    Args:
        problem: a name of :data:`inverse.problems.PROBLEMS`.
        y: the measurement (numpy or torch); complex only for MRI.
        options: problem options; an option that a recorded array replaces is set to a marker
            (:data:`inverse.importers.geometry.GIVEN_MARKERS`).
        noise_std: standard deviation of the Gaussian noise (per real and imaginary part for k-space);
            None estimates it (:func:`inverse.importers.noise.estimate_noise`) and records how.
        mask: the sampling mask (MRI: 0/1 k-space, seismic-interp: recorded traces).
        geometry: other recorded operator arrays (``coil_maps``, ``sensors``).
        truth: optional ground truth of the forward model's input shape.
        provenance: strings recorded as file attributes (:data:`PROVENANCE_KEYS`).

    Errors (wrong shape, complex where real is needed and vice versa, NaN or Inf, an unknown option) are one
    :class:`UserError` line naming the problem.

    Example::

        import numpy as np
        from inverse.measurements import from_arrays
        k = np.fft.fftshift(np.fft.fft2(np.random.rand(64, 64), norm="ortho")) * np.r_[:64] % 4 == 0
        m = from_arrays("mri", k, mask=(np.arange(64) % 4 == 0).astype(float), noise_std=0.01)
        m.to_netcdf("y.nc")
    """
    from inverse.importers.geometry import build_with_arrays, options_with_arrays
    from inverse.importers.noise import estimate_noise

    get_problem(problem)
    arrays = {}
    for name, a in {**(geometry or {}), **({} if mask is None else {"mask": mask})}.items():
        a = _as_numpy(a, f"problem {problem!r}: the {name}")
        if name == "coil_maps" and np.iscomplexobj(a):
            a = np.stack([a.real, a.imag], 0)
        if name == "mask" and problem.startswith("mri") and a.ndim == 1:
            a = np.broadcast_to(a[None, :], (np.shape(y)[-2], a.shape[0]))
        arrays[name] = np.ascontiguousarray(a, dtype=np.float64)
    opts = options_with_arrays(problem, dict(options or {}), arrays)
    fm = build_with_arrays(problem, opts, arrays)
    a = _as_numpy(y, f"problem {problem!r}: the measurements")
    a = _measurement_layout(problem, a, tuple(fm.output_shape))
    if not np.isfinite(a).all():
        raise UserError(f"problem {problem!r}: the measurements contain {int((~np.isfinite(a)).sum())} NaN or Inf "
                        "values")
    yt = torch.from_numpy(np.ascontiguousarray(a))
    prov = {k: str(v) for k, v in (provenance or {}).items() if v is not None}
    if noise_std is None:
        sigma, method = estimate_noise(problem, yt, fm)
        prov["noise_estimate"] = f"{method}: {sigma:.6g}"
    else:
        sigma = float(noise_std)
        if not (math.isfinite(sigma) and sigma > 0):
            raise UserError(f"problem {problem!r}: the noise standard deviation must be positive and finite, "
                            f"got {noise_std}")
        prov.setdefault("noise_estimate", "given")
    x = None
    if truth is not None:
        x = _check_truth_array(_as_numpy(truth, "truth"), tuple(fm.input_shape), f"problem {problem!r}: truth")
    m = Measurements(problem, opts, yt, Gaussian(sigma), fm, x, None, arrays, prov)
    m.inverse_problem()
    return m

