"""Dimension coordinates in physical units for measurement and image arrays (CF conventions).

Every named dimension of a measurement file gets a coordinate variable of the same name with a
``units`` and a ``long_name`` attribute (CF conventions, section 4 and 5), read off the forward model:

| dimension | values | units |
|---|---|---|
| ``y``, ``x`` (images) | pixel centres relative to the rotation / FFT centre (``i - N // 2``) | ``pixel`` |
|  | Darcy flow: cell centres ``(i + 1/2) / N`` of the unit square | ``1`` |
|  | Navier-Stokes: grid points ``2 pi i / N`` of the periodic square | ``1`` |
| ``depth``, ``x`` (velocity models) | ``i * dx`` | ``m`` |
| ``angle`` | projection (or source) angles | ``degree`` |
| ``detector`` | detector bin centres relative to the central ray | ``pixel`` |
| ``ky``, ``kx`` | spatial frequencies ``(k - N // 2) / N`` of the centred DFT | ``cycles/pixel`` |
| ``y_obs``, ``x_obs`` | observed grid points ``2 pi f i / N`` | ``1`` |
| ``time`` | ``t * dt`` | ``s`` |
| ``shot``, ``receiver`` | source / receiver positions along the surface | ``m`` |
| ``complex`` | ``0`` (real part), ``1`` (imaginary part) | ``1`` |
| ``channel``, ``coil``, ``sensor`` and any other | index | ``1`` |

Non-square and new operators fall back to the index (units ``1``) for any dimension they do not
describe, so a new problem needs no entry here to write valid files.

Example::

    from inverse.coordinates import dimension_coords
    from inverse.problems import build_forward_model
    fm = build_forward_model("ct", {"size": 16, "angles": 8})
    coords = dimension_coords(fm, ("channel", "angle", "detector"), (1, 8, 23))
    coords["angle"]        # (values, {"units": "degree", "long_name": ...})
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["dimension_coords", "auxiliary_coords", "model_angles_deg"]


def model_angles_deg(fm) -> np.ndarray | None:
    """The projection angles of a CT operator in degrees, or None for another operator.

    ``angles_deg`` when the operator exposes it (fan beam), else ``180 a / A`` (parallel beam, uniform in [0, 180)).
    """
    angles = getattr(fm, "angles_deg", None)
    if angles is not None:
        return np.asarray(angles.detach().cpu() if hasattr(angles, "detach") else angles, dtype=np.float64)
    if type(fm).__name__ == "ParallelBeamCT":
        return 180.0 * np.arange(fm.num_angles, dtype=np.float64) / fm.num_angles
    return None


def _centred(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64) - n // 2


def _image_axis(fm, n: int, name: str):
    cls = type(fm).__name__
    if cls == "DarcyFlow":
        return (np.arange(n) + 0.5) / n, "1", f"{name} (cell centre, unit square)"
    if cls == "NavierStokes2D":
        return 2 * math.pi * np.arange(n) / n, "1", f"{name} (grid point, periodic square of side 2 pi)"
    if cls == "AcousticFWI":
        return np.arange(n) * fm.dx, "m", name
    return _centred(n), "pixel", f"{name} (pixel centre relative to the image centre)"


def _one(fm, dim: str, n: int):
    """(values, units, long_name) of one dimension of length ``n``."""
    cls = type(fm).__name__
    if dim in ("y", "x", "depth"):
        return _image_axis(fm, n, dim)
    if dim == "angle":
        a = model_angles_deg(fm)
        if a is not None and len(a) == n:
            return a, "degree", "projection angle"
    if dim == "detector":
        du = float(getattr(fm, "detector_spacing", 1.0)) if cls != "ParallelBeamCT" else 1.0
        return (np.arange(n) - (n - 1) / 2) * du if cls != "ParallelBeamCT" else _centred(n), "pixel", \
            "detector bin centre relative to the central ray"
    if dim in ("ky", "kx"):
        return _centred(n) / n, "cycles/pixel", f"spatial frequency {dim} (centred DFT)"
    if dim in ("y_obs", "x_obs") and cls == "NavierStokes2D":
        return 2 * math.pi * fm.factor * np.arange(n) / fm.resolution, "1", \
            f"{dim[0]} of the observed grid point (periodic square of side 2 pi)"
    if dim == "time" and hasattr(fm, "dt"):
        return np.arange(n) * float(fm.dt), "s", "recording time"
    if dim in ("shot", "receiver") and cls == "AcousticFWI":
        loc = fm.source_locations[:, 0, 1] if dim == "shot" else fm.receiver_locations[0, :, 1]
        return loc.detach().cpu().numpy().astype(np.float64) * fm.dx, "m", \
            f"{'source' if dim == 'shot' else 'receiver'} position along the surface"
    if dim == "complex":
        return np.arange(n), "1", "0: real part, 1: imaginary part"
    return np.arange(n), "1", f"{dim} index"


def dimension_coords(fm, dims, shape) -> dict:
    """``{dim: (values, attrs)}`` for every dimension in ``dims`` (lengths ``shape``), from the forward model ``fm``.

    ``fm``: the operator (its class and geometry pick the values, see the module docstring); values are
    numpy arrays of length ``shape[i]``, ``attrs`` holds ``units`` and ``long_name``.
    """
    out = {}
    for dim, n in zip(dims, shape, strict=True):
        values, units, long_name = _one(fm, dim, int(n))
        if len(values) != int(n):  # the operator's geometry does not describe this axis: fall back to the index
            values, units, long_name = np.arange(int(n)), "1", f"{dim} index"
        out[dim] = (np.asarray(values), {"units": units, "long_name": long_name})
    return out


def auxiliary_coords(fm, dims) -> dict:
    """Non-dimension coordinates: the sensor positions ``sensor_x``, ``sensor_y`` along ``sensor`` (Darcy flow).

    Returns ``{name: (dims, values, attrs)}`` (CF auxiliary coordinate variables).
    """
    sensors = getattr(fm, "sensors", None)
    if "sensor" not in dims or sensors is None or getattr(sensors, "ndim", 0) != 2:
        return {}
    xy = sensors.detach().cpu().numpy().astype(np.float64)
    return {f"sensor_{c}": (("sensor",), xy[:, i], {"units": "1", "long_name": f"sensor {c} (unit square; x along "
                                                    "the first grid axis)"}) for i, c in enumerate("xy")}
