"""NetCDF files of calibration: observations with their design in, ArviZ ``InferenceData`` out.

A *data file* holds

- the variable ``y`` (the observations) with the model's dimension names and the design as
  coordinates (``time``/``position`` for ``heat``, ``echo_time`` for ``mri-t2``,
  ``reflector``/``offset`` for ``layered-earth``, ``channel``/``obs_x``/``obs_y`` for ``navier-stokes``);
- fixed arrays of the design as further variables (``initial_vorticity`` for ``navier-stokes``);
- attributes: ``model`` (its command-line name, required), ``model_config`` (JSON constructor
  arguments, optional: coordinates override it), ``noise_sigma`` (the known noise standard
  deviation, optional), ``truth`` (JSON parameter values of simulated data, optional).

A file with only ``y``, its coordinates and ``model`` is enough, so measured data need no JSON.
Every file is written to a temporary file and renamed (:func:`samplers.netcdf.write_netcdf`);
an existing file is replaced only when asked.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import arviz as az
import numpy as np
import xarray as xr

from inverse.calibration.model import CalibrationModel
from inverse.calibration.models import get_model_class
from inverse.errors import UserError
from samplers.netcdf import write_netcdf
from samplers.posterior import package_version

__all__ = ["CalibrationData", "write_data", "read_data", "write_inference_data", "read_inference_data"]


@dataclass
class CalibrationData:
    """What a data file holds: the model it was made for, the observations, the known noise level, the truth."""

    model: CalibrationModel
    y: np.ndarray
    sigma: float | None = None
    truth: dict | None = None
    attrs: dict = field(default_factory=dict)


def _dataset(model: CalibrationModel, y: np.ndarray) -> xr.Dataset:
    coords = {d: np.asarray(v) for d, v in model.coords().items() if d in model.obs_dims}
    units = model.units()
    ds = xr.Dataset({"y": (model.obs_dims, y)}, coords=coords)
    for d in coords:
        if d in units:
            ds[d].attrs["units"] = units[d]
    if "y" in units:
        ds["y"].attrs["units"] = units["y"]
    for name, (dims, values) in model.constant_data().items():
        if name in ds.coords:
            continue
        ds[name] = (dims, np.asarray(values))
    return ds


def write_data(path, model: CalibrationModel, y, *, sigma: float | None = None, truth: dict | None = None,
               seed: int | None = None, overwrite: bool = False) -> Path:
    """Write observations ``y`` of ``model`` (and the known ``sigma``, the ``truth``) as a data file, atomically.

    Example::

        from inverse.calibration.io import write_data, read_data
        from inverse.calibration.models import T2Relaxation
        m = T2Relaxation()
        write_data("t2.nc", m, m.simulate(m.default_truth(), 0.02, seed=0), sigma=0.02, truth=m.default_truth())
        data = read_data("t2.nc")          # data.model, data.y, data.sigma, data.truth
    """
    y = np.asarray(y, dtype=np.float64)
    if model.obs_shape is not None and y.shape != tuple(model.obs_shape):
        raise UserError(f"the observations have shape {y.shape}, but {model.name} predicts {model.obs_shape}")
    ds = _dataset(model, y)
    ds.attrs.update({"model": model.name, "model_config": json.dumps(model.config(), sort_keys=True),
                     "parameters": json.dumps(list(model.parameters)), "inverse_version": package_version(),
                     "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")})
    if sigma is not None:
        ds.attrs["noise_sigma"] = float(sigma)
    if truth is not None:
        ds.attrs["truth"] = json.dumps({k: float(v) for k, v in truth.items()}, sort_keys=True)
    if seed is not None:
        ds.attrs["simulation_seed"] = int(seed)
    return write_netcdf(ds, path, overwrite=overwrite)


def _open(path, what: str) -> xr.Dataset:
    from samplers.netcdf import load_dataset

    return load_dataset(path, what)


def _json_attr(ds: xr.Dataset, key: str, path) -> dict | None:
    if key not in ds.attrs:
        return None
    try:
        value = json.loads(ds.attrs[key])
    except (TypeError, ValueError):
        raise UserError(f"{path}: the attribute {key!r} is not valid JSON") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: the attribute {key!r} must be a JSON object")
    return value


def read_data(path, model: str | None = None) -> CalibrationData:
    """Read a data file (module docstring), rebuilding its model; one-line errors for every bad input.

    ``model``: the expected model name (the command line's ``--model``); a file made for another
    model is refused. Missing files raise ``FileNotFoundError``, everything else ``ValueError``.
    """
    ds = _open(path, "data file")
    name = ds.attrs.get("model", model)
    if name is None:
        raise UserError(f"{path} does not say which model it is for (attribute 'model'); pass --model")
    cls = get_model_class(str(name))
    if model is not None and str(model) != str(name):
        get_model_class(str(model))
        raise UserError(f"{path} holds data for the model {name!r}, not {model!r}")
    if "y" not in ds.data_vars:
        raise UserError(f"{path} has no variable 'y' (the observations); it has {', '.join(ds.data_vars) or 'none'}")
    y = np.asarray(ds["y"].values, dtype=np.float64)
    bad = int((~np.isfinite(y)).sum())
    if bad:
        raise UserError(f"{path}: the observations contain {bad} NaN or Inf value(s)")
    config = _json_attr(ds, "model_config", path) or {}
    config.update(cls.config_from_coords({d: ds[d].values for d in ds["y"].dims if d in ds.coords}))
    arrays = {k: np.asarray(ds[k].values) for k in ds.data_vars if k != "y"}
    try:
        m = cls.from_config(config, arrays)
    except TypeError as e:
        raise UserError(f"{path}: the model configuration does not fit {name!r} ({e})") from None
    if m.obs_shape is not None and tuple(y.shape) != tuple(m.obs_shape):
        raise UserError(f"{path}: 'y' has shape {tuple(y.shape)}, but the {name} model built from the file "
                        f"predicts {tuple(m.obs_shape)}")
    sigma = ds.attrs.get("noise_sigma")
    if sigma is not None:
        sigma = float(sigma)
        if not (math.isfinite(sigma) and sigma > 0):
            raise UserError(f"{path}: the attribute noise_sigma must be positive, got {sigma}")
    return CalibrationData(m, y, sigma, _json_attr(ds, "truth", path), dict(ds.attrs))


def write_inference_data(idata: az.InferenceData, path, *, overwrite: bool = False) -> Path:
    """Write ``InferenceData`` as NetCDF-4 (one group per ArviZ group), atomically."""
    if not isinstance(idata, az.InferenceData):
        raise TypeError(f"expected arviz.InferenceData, got {type(idata).__name__}")
    return write_netcdf(idata.to_datatree(), path, overwrite=overwrite)


def read_inference_data(path) -> az.InferenceData:
    """Read ``InferenceData`` written by :func:`write_inference_data` (one-line errors)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"posterior file {path} does not exist")
    try:
        idata = az.from_netcdf(str(path), engine="h5netcdf")
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise UserError(f"{path} is not a readable InferenceData NetCDF file ({type(e).__name__})") from None
    if "posterior" not in idata.groups():
        raise UserError(f"{path} has no posterior group")
    return idata
