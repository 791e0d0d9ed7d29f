"""Forward models rebuilt from recorded geometry arrays: a user's mask, coil maps or sensor positions.

A simulated measurement is rebuilt from its recipe ``(problem, options)`` alone
(:func:`inverse.problems.build_forward_model`). Measured data carry geometry that no seed reproduces:
the k-space mask the scanner sampled, coil sensitivities estimated from the data, the positions of
field sensors. Such *operator arrays* are stored in the measurement file as variables (their names
listed in the ``operator_arrays`` attribute) and :func:`build_with_arrays` rebuilds the operator
from the options plus the arrays. The option an array replaces is set to a marker (``mask="given"``,
``sensors=0``), so rebuilding from the options alone fails loudly instead of giving another operator.

| problem | arrays (dimensions in the file) |
|---|---|
| ``mri`` | ``mask`` ``(ky, kx)``, 0/1 |
| ``mri-multicoil`` | ``mask`` ``(ky, kx)``; ``coil_maps`` ``(complex, coil, y, x)`` |
| ``darcy`` | ``sensors`` ``(sensor, position)``: ``(x, y)`` in the unit square (DarcyFlow's convention) |
| ``seismic-interp`` | ``mask`` ``(receiver,)`` or ``(shot, receiver)``, 1 = recorded trace |

A new problem with recorded geometry needs one entry in :data:`ARRAY_BUILDERS`.
"""

from __future__ import annotations

import numpy as np
import torch

from forward_models.base import ForwardModel
from inverse.errors import UserError

__all__ = ["ARRAY_BUILDERS", "ARRAY_DIMS", "GIVEN_MARKERS", "array_dims", "build_with_arrays", "options_with_arrays"]


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _mri(o, arrays):
    from forward_models.mri import RealImageMRI, SingleCoilMRI

    return RealImageMRI(SingleCoilMRI(_t(arrays["mask"])))


def _mri_multicoil(o, arrays):
    from forward_models.coils import synthetic_coil_maps
    from forward_models.masks import cartesian_mask
    from forward_models.mri import MultiCoilMRI, RealImageMRI

    if "mask" in arrays:
        mask = _t(arrays["mask"])
    else:
        mask = cartesian_mask(o["size"], o["acceleration"], o["center_fraction"], o["mask"], o["mask_seed"])
    H, W = mask.shape
    maps = _t(arrays["coil_maps"]) if "coil_maps" in arrays else \
        synthetic_coil_maps(o["coils"], H, W, seed=o["mask_seed"], dtype=torch.float64)
    return RealImageMRI(MultiCoilMRI(mask, maps))


def _darcy(o, arrays):
    from forward_models.darcy import DarcyFlow

    return DarcyFlow(o["size"], coefficient="identity", sensors=_t(arrays["sensors"]))


def _interp(o, arrays):
    from forward_models.trace_interpolation import TraceInterpolation

    return TraceInterpolation(_t(arrays["mask"]), nt=o["nt"], num_shots=o["shots"])


#: problem -> builder(options, arrays) of the forward model from its options and recorded arrays
ARRAY_BUILDERS = {"mri": _mri, "mri-multicoil": _mri_multicoil, "darcy": _darcy, "seismic-interp": _interp}

#: array name -> its dimension names in a measurement file (the ``mask`` of seismic-interp is 1-D or 2-D)
ARRAY_DIMS = {"mask": ("ky", "kx"), "coil_maps": ("complex", "coil", "y", "x"), "sensors": ("sensor", "position")}

#: problem -> {array: {option: marker}}: the option whose recipe a recorded array replaces
GIVEN_MARKERS = {"mri": {"mask": {"mask": "given"}}, "mri-multicoil": {"mask": {"mask": "given"}},
                 "darcy": {"sensors": {"sensors": 0}}, "seismic-interp": {"mask": {"missing": -1.0}}}

_ALLOWED = {"mri": {"mask"}, "mri-multicoil": {"mask", "coil_maps"}, "darcy": {"sensors"},
            "seismic-interp": {"mask"}}


def array_dims(problem: str, name: str, a: np.ndarray) -> tuple[str, ...]:
    """Dimension names of the operator array ``name`` of ``problem`` (shape-dependent for trace masks)."""
    if problem == "seismic-interp" and name == "mask":
        return ("receiver",) if np.ndim(a) == 1 else ("shot", "receiver")
    return ARRAY_DIMS[name]


def _markers(problem: str, arrays: dict) -> dict:
    return {k: v for name in arrays for k, v in GIVEN_MARKERS.get(problem, {}).get(name, {}).items()}


def options_with_arrays(problem: str, options: dict, arrays: dict) -> dict:
    """The problem's options (defaults filled in, checked) for recorded ``arrays``: the sizes the arrays fix
    (MRI: ``size`` from the mask, ``coils`` from the coil maps; seismic-interp: ``receivers``), then the
    markers of :data:`GIVEN_MARKERS` (set after the check: a marker is deliberately not a valid recipe)."""
    from inverse.problems import problem_options

    opts = dict(options)
    for name, a in arrays.items():
        shape = np.shape(a)
        if problem.startswith("mri") and name == "mask" and len(shape) == 2 and shape[0] == shape[1]:
            opts["size"] = int(shape[0])
        if name == "coil_maps" and len(shape) == 4:
            opts["coils"] = int(shape[1])
        if problem == "seismic-interp" and name == "mask":
            opts["receivers"] = int(shape[-1])
    markers = _markers(problem, arrays)
    opts = problem_options(problem, **{k: v for k, v in opts.items() if k not in markers})
    return {**opts, **markers}


def build_with_arrays(problem: str, options: dict, arrays: dict) -> ForwardModel:
    """The forward model of ``problem`` from ``options`` (defaults filled in) and recorded ``arrays``.

    Without arrays this is :func:`inverse.problems.build_forward_model`. Unknown array names, a problem
    without recorded geometry, or arrays the operator refuses are a one-line :class:`UserError`.
    """
    from inverse.problems import build_forward_model, problem_options

    if not arrays:
        return build_forward_model(problem, options)
    allowed = _ALLOWED.get(problem, set())
    extra = sorted(set(arrays) - allowed)
    if extra:
        known = ", ".join(sorted(allowed)) or "none"
        raise UserError(f"problem {problem!r} takes no recorded {', '.join(extra)} (it takes: {known})")
    markers = _markers(problem, arrays)
    opts = {**problem_options(problem, **{k: v for k, v in options.items() if k not in markers}), **markers}
    for name, a in arrays.items():
        a = np.asarray(a)
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a) or not np.isfinite(a).all():
            raise UserError(f"problem {problem!r}: the {name} array must be real and finite")
    try:
        return ARRAY_BUILDERS[problem](opts, arrays)
    except ValueError as e:
        raise UserError(f"problem {problem!r}: {str(e).splitlines()[0]}") from None
