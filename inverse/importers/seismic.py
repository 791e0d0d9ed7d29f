"""Seismic shot gathers: SEG-Y (segyio) -> ``fwi`` / ``seismic-interp`` measurements.

The file is read trace by trace (``segyio.open(..., ignore_geometry=True)``, so no inline/crossline
sorting is assumed). Positions come from the trace headers: source ``SourceX`` and receiver ``GroupX``,
scaled by ``SourceGroupScalar`` (SEG-Y rev 1: a positive scalar multiplies, a negative one divides, 0
means 1); the sample interval from the binary header (``Interval``, microseconds; the first trace's
``TRACE_SAMPLE_INTERVAL`` when it is 0). Traces are grouped into shots by source position (ascending)
and ordered by receiver position within a shot, giving ``(shot, time, receiver)``.

Mapping onto the ``fwi`` geometry (:class:`forward_models.seismic.AcousticFWI`, OpenFWI's): cells of
``dx = 10`` m, time step 1 ms, receivers on every model column from the first to the last
(``round(linspace(0, W - 1, R))``), sources likewise. The model width ``W`` follows from the receiver
spread (``(max - min) / dx + 1``; positions relative to the first receiver), ``nt`` from the samples
per trace. Data that do not fit (another sample interval, receivers off the cell grid, shots with
different receivers, sources not at the model's columns) are refused with the reason; resample or
re-bin them first. The source wavelet is not in SEG-Y: ``-o freq=`` sets the model's Ricker peak
frequency (default 15 Hz).

``seismic-interp``: dead traces (all samples zero) are the missing traces, a per-shot mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inverse.errors import UserError
from inverse.importers.settings import ImportSettings

__all__ = ["import_segy", "read_segy"]

_DX = 10.0  # the fwi problem's cell size (m)
_DT = 1e-3  # and time step (s)


def _scaled(values: np.ndarray, scalar: np.ndarray) -> np.ndarray:
    s = scalar.astype(np.float64)
    factor = np.where(s > 0, s, np.where(s < 0, -1.0 / np.where(s < 0, s, -1.0), 1.0))
    return values.astype(np.float64) * factor


def read_segy(path: Path) -> dict:
    """``{"traces" (n, ns) float64, "sx", "gx" (n,) metres, "dt" seconds}`` from a SEG-Y file."""
    import segyio

    try:
        with segyio.open(str(path), "r", ignore_geometry=True) as f:
            n = f.tracecount
            if n == 0:
                raise UserError(f"{path}: the SEG-Y file has no traces")
            traces = np.asarray(f.trace.raw[:], dtype=np.float64).reshape(n, -1)
            T = segyio.TraceField
            sx = np.asarray(f.attributes(T.SourceX)[:])
            gx = np.asarray(f.attributes(T.GroupX)[:])
            scalar = np.asarray(f.attributes(T.SourceGroupScalar)[:])
            interval = int(f.bin[segyio.BinField.Interval]) or int(f.header[0][T.TRACE_SAMPLE_INTERVAL])
    except UserError:
        raise
    except (RuntimeError, OSError, ValueError, IndexError, KeyError) as e:
        raise UserError(f"{path} is not a readable SEG-Y file ({type(e).__name__}: {str(e).splitlines()[0]})") \
            from None
    if traces.shape[1] == 0:
        raise UserError(f"{path}: the traces have no samples")
    if interval <= 0:
        raise UserError(f"{path}: the SEG-Y headers give no sample interval")
    return {"traces": traces, "sx": _scaled(sx, scalar), "gx": _scaled(gx, scalar), "dt": interval * 1e-6}


def _gathers(d: dict, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(y (shot, time, receiver), source x (S,), receiver x (R,))``."""
    shots = np.unique(d["sx"])
    receivers = None
    y = []
    for s in shots:
        idx = np.flatnonzero(d["sx"] == s)
        idx = idx[np.argsort(d["gx"][idx], kind="stable")]
        g = d["gx"][idx]
        if receivers is None:
            receivers = g
        elif g.shape != receivers.shape or not np.array_equal(g, receivers):
            raise UserError(f"{path}: the shots do not share one receiver spread (shot at x = {s:g} m has "
                            f"{len(g)} receivers, the first {len(receivers)})")
        if len(np.unique(g)) != len(g):
            raise UserError(f"{path}: shot at x = {s:g} m has two traces at the same receiver position")
        y.append(d["traces"][idx].T)
    return np.stack(y), shots, receivers


def _columns(x: np.ndarray, what: str, path: Path) -> np.ndarray:
    c = x / _DX
    if not np.allclose(c, np.round(c), rtol=0, atol=1e-3):
        raise UserError(f"{path}: {what} positions are not on the model's {_DX:g} m grid; re-bin them")
    return np.round(c).astype(int)


def import_segy(problem: str, path: Path, fmt: str, s: ImportSettings):
    """Measurements of ``fwi`` / ``seismic-interp`` from a SEG-Y file (module docstring)."""
    from forward_models.seismic import _spread
    from inverse.importers.resize import check_prior_size
    from inverse.measurements import from_arrays

    d = read_segy(path)
    if abs(d["dt"] - _DT) > 1e-9:
        raise UserError(f"{path}: sample interval {d['dt'] * 1e3:g} ms; the {problem} model records every "
                        f"{_DT * 1e3:g} ms: resample the traces")
    y, sx, gx = _gathers(d, path)
    x0 = gx[0]
    rc, sc = _columns(gx - x0, "receiver", path), _columns(sx - x0, "source", path)
    W = int(rc[-1]) + 1
    R, S, nt = len(gx), len(sx), y.shape[1]
    if W < 2 or not np.array_equal(rc, _spread(R, W).numpy()):
        raise UserError(f"{path}: {R} receivers at columns {rc[:4].tolist()}... of a {W}-column model; the model "
                        f"spreads them evenly over every column (round(linspace(0, {W - 1}, {R})))")
    if not np.array_equal(sc, _spread(S, W).numpy()):
        raise UserError(f"{path}: sources at columns {sc.tolist()}; the {W}-column model puts its {S} sources at "
                        f"{_spread(S, W).tolist()}")
    options = {**s.options, "size": W, "nt": nt, "shots": S, "receivers": R}
    check_prior_size(problem, (1, W, W), s.any_size or problem == "seismic-interp",
                     "re-bin the receivers to that many columns")
    mask = None
    if problem == "seismic-interp":
        mask = (np.abs(y).max(axis=1) > 0).astype(np.float64)  # (shot, receiver)
    prov = {"source_file": str(path), "importer": "inverse.importers.seismic (segy)",
            "command_line": s.command_line,
            "preprocessing": f"{S} shots x {R} receivers from {S * R} traces; positions relative to the first "
                             f"receiver at x = {x0:g} m"}
    return from_arrays(problem, y, options, noise_std=s.noise_std, mask=mask, provenance=prov)
