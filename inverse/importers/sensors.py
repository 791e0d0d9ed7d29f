"""Sparse sensor readings: CSV or NetCDF with coordinates -> ``darcy`` / ``navier-stokes`` measurements.

CSV: a header row naming the columns ``x``, ``y``, ``value`` and optionally ``t`` (any order, other
columns ignored), one reading per row. NetCDF: a data variable (``--variable``, else ``value`` or the
only one) along one dimension with coordinate variables ``x`` and ``y`` on it (and optionally ``t``),
or a 2-D variable on 1-D coordinates ``x`` and ``y`` (a grid, every point a reading).

Coordinates follow the forward models (``x`` along the first grid axis, ``y`` along the second):

- ``darcy`` (:class:`forward_models.darcy.DarcyFlow`, unit square): sensors anywhere in ``[0, 1]^2``,
  observed by the model's own bilinear interpolation between cell centres (no snapping). Readings
  exactly on the problem's ``n x n`` sensor grid are stored as that recipe (``sensors=n``); any other
  layout is stored as recorded sensor positions.
- ``navier-stokes`` (:class:`forward_models.navier_stokes.NavierStokes2D`, periodic ``[0, 2 pi)^2``):
  the model observes the vorticity at every ``factor``-th grid point at time ``T``; each reading is
  matched to the nearest observed grid point, and must lie within 1e-6 of a grid spacing of it;
  every observed point must have exactly one reading. ``factor`` follows from the number of readings
  (``(N / factor)^2``), ``T`` from the ``t`` column when present (one time only).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from inverse.errors import UserError
from inverse.importers.settings import ImportSettings, settle_options

__all__ = ["import_sensors", "read_csv_readings", "read_netcdf_readings"]


def read_csv_readings(path: Path) -> dict:
    """``{"x", "y", "value"[, "t"]}`` float arrays from a CSV file with a header row."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{path} is not a readable CSV file ({type(e).__name__})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise UserError(f"{path}: the CSV file is empty")
    header = [c.strip().lower() for c in rows[0]]
    missing = [c for c in ("x", "y", "value") if c not in header]
    if missing:
        raise UserError(f"{path}: the CSV header {rows[0]} lacks the column(s) {', '.join(missing)} "
                        "(expected x, y, value [, t])")
    cols = {c: header.index(c) for c in ("x", "y", "value", "t") if c in header}
    out = {c: [] for c in cols}
    for line, r in enumerate(rows[1:], start=2):
        for c, j in cols.items():
            try:
                out[c].append(float(r[j]))
            except (IndexError, ValueError):
                raise UserError(f"{path}, line {line}: column {c!r} is not a number "
                                f"({r[j] if j < len(r) else 'missing'!r})") from None
    if not out["x"]:
        raise UserError(f"{path}: the CSV file has a header but no readings")
    return {c: np.asarray(v, dtype=np.float64) for c, v in out.items()}


def read_netcdf_readings(path: Path, variable: str | None) -> dict:
    """``{"x", "y", "value"[, "t"]}`` from a NetCDF point list or grid (module docstring)."""
    from samplers.netcdf import load_dataset

    ds = load_dataset(path, "sensor file")
    names = list(ds.data_vars)
    name = variable or ("value" if "value" in names else names[0] if len(names) == 1 else None)
    if name is None or name not in ds.data_vars:
        raise UserError(f"{path}: name the readings with --variable (variables: {', '.join(names) or 'none'})")
    v = ds[name]
    if "x" not in ds.variables or "y" not in ds.variables:
        raise UserError(f"{path}: variable {name!r} needs coordinate variables 'x' and 'y'")
    x, y = ds["x"], ds["y"]
    if v.ndim == 1 and x.dims == v.dims and y.dims == v.dims:
        out = {"x": x.values, "y": y.values, "value": v.values}
        if "t" in ds.variables and ds["t"].dims == v.dims:
            out["t"] = ds["t"].values
    elif v.ndim == 2 and x.ndim == 1 and y.ndim == 1 and set(v.dims) == set(x.dims + y.dims):
        g = v.transpose(x.dims[0], y.dims[0]).values
        X, Y = np.meshgrid(x.values, y.values, indexing="ij")
        out = {"x": X.reshape(-1), "y": Y.reshape(-1), "value": g.reshape(-1)}
    else:
        raise UserError(f"{path}: variable {name!r} of dimensions {v.dims} is neither a point list with x and y "
                        "along it nor a grid on 1-D x and y")
    try:
        return {k: np.asarray(a, dtype=np.float64).reshape(-1) for k, a in out.items()}
    except (TypeError, ValueError):
        raise UserError(f"{path}: the readings or their coordinates are not numeric") from None


def _darcy(r: dict, s: ImportSettings, path: Path):
    from forward_models.darcy import DarcyFlow
    from inverse.measurements import from_arrays
    from inverse.problems import get_problem

    xy = np.stack([r["x"], r["y"]], 1)
    if not np.isfinite(xy).all() or (xy < 0).any() or (xy > 1).any():
        raise UserError(f"{path}: Darcy sensors must lie in the unit square [0, 1]^2")
    order = np.lexsort((xy[:, 1], xy[:, 0]))
    n = math.isqrt(len(xy))
    grid = DarcyFlow(2, sensors=n).sensors.numpy() if n * n == len(xy) else None  # the recipe's n x n positions
    options = dict(s.options)
    options.setdefault("size", get_problem("darcy").defaults["size"])
    if grid is not None and np.array_equal(xy[order], grid):
        options["sensors"] = n
        return from_arrays("darcy", r["value"][order], options, noise_std=s.noise_std,
                           provenance=_prov(path, s, f"{len(xy)} readings on the {n} x {n} sensor grid"))
    return from_arrays("darcy", r["value"], options, noise_std=s.noise_std, geometry={"sensors": xy},
                       provenance=_prov(path, s, f"{len(xy)} sensors at recorded positions (bilinear observation)"))


def _navier_stokes(r: dict, s: ImportSettings, path: Path):
    from inverse.measurements import from_arrays
    from inverse.problems import get_problem

    options = dict(s.options)
    N = int(options.get("size", get_problem("navier-stokes").defaults["size"]))
    m = math.isqrt(len(r["value"]))
    if m * m != len(r["value"]) or m == 0 or N % m or N // m not in (1, 2, 4, 8):
        counts = ", ".join(str((N // f) ** 2) for f in (1, 2, 4, 8))
        raise UserError(f"{path}: {len(r['value'])} readings; the Navier-Stokes model on a {N} x {N} grid observes "
                        f"(N / factor)^2 points, factor 1, 2, 4 or 8 ({counts})")
    factor = N // m
    if "t" in r:
        if np.ptp(r["t"]) > 0:
            raise UserError(f"{path}: readings at several times; the model observes one time T")
        options = settle_options(options, {"T": float(r["t"][0])}, path)
    h = 2 * math.pi * factor / N
    idx = []
    for c in ("x", "y"):
        u = np.mod(r[c], 2 * math.pi) / h
        k = np.round(u)
        far = np.abs(u - k) > 1e-6
        if far.any():
            i = int(np.flatnonzero(far)[0])
            raise UserError(f"{path}: reading {i} at {c} = {r[c][i]:g} is {abs(u[i] - k[i]):.3g} grid spacings from "
                            f"the nearest observed point (spacing 2 pi / {m}); interpolate the data onto the grid")
        idx.append(k.astype(int) % m)
    flat = idx[0] * m + idx[1]
    if len(np.unique(flat)) != m * m:
        raise UserError(f"{path}: {m * m - len(np.unique(flat))} observed grid points have no reading and others "
                        "have several")
    y = np.empty(m * m)
    y[flat] = r["value"]
    options = settle_options(options, {"size": N, "factor": factor}, path)
    return from_arrays("navier-stokes", y.reshape(1, m, m), options, noise_std=s.noise_std,
                       provenance=_prov(path, s, f"{m * m} readings matched to the observed grid (factor {factor})"))


def _prov(path: Path, s: ImportSettings, note: str) -> dict:
    return {"source_file": str(path), "importer": "inverse.importers.sensors", "command_line": s.command_line,
            "preprocessing": note}


def import_sensors(problem: str, path: Path, fmt: str, s: ImportSettings):
    """Measurements of ``darcy`` / ``navier-stokes`` from sensor readings (module docstring)."""
    r = read_csv_readings(path) if fmt == "csv" else read_netcdf_readings(path, s.variable)
    if not all(np.isfinite(v).all() for v in r.values()):
        raise UserError(f"{path}: the readings contain NaN or Inf")
    return _darcy(r, s, path) if problem == "darcy" else _navier_stokes(r, s, path)
