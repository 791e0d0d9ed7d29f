"""The named problems of ``inverse simulate``: forward model, noise, ground truth and matching prior.

A problem is rebuilt from its *recipe* alone: ``(name, options)``, a small JSON dict stored in every
measurement file. Every random ingredient (MRI masks, coil maps, missing traces) is drawn from the
seeds in the options, so :func:`build_forward_model` gives the same operator on any machine; the
measurement file also stores the operator's ``config()`` and :func:`inverse.measurements.open_measurements`
checks the rebuilt operator against it.

| problem | unknown x (physical units) | measurements y | shipped prior |
|---|---|---|---|
| ``ct`` | attenuation image (1, N, N), a.u. | parallel-beam sinogram (angle, detector) | ``phantoms-64`` |
| ``mri`` | real image (1, N, N), a.u. | single-coil k-space (complex, ky, kx), Cartesian mask | ``phantoms-64`` |
| ``mri-multicoil`` | real image (1, N, N), a.u. | k-space (complex, coil, ky, kx), birdcage coils | ``phantoms-64`` |
| ``navier-stokes`` | initial vorticity (1, N, N), 1/s | vorticity at T, every ``factor``-th point | ``ns-vorticity-64`` |
| ``darcy`` | permeability (1, N, N), a.u. | pressure at an n x n sensor grid | ``darcy-perm-32`` |
| ``fwi`` | velocity (1, H, W), m/s | shot gathers (shot, time, receiver) | ``seismic-velocity-70`` |
| ``seismic-interp`` | shot gathers (shot, time, receiver) | the gathers with missing traces | none |

Ground truths are drawn from the generators the shipped priors were trained on, with the stream
``truth_seed = 1_000_003 + seed`` (the priors' training sets use seed 0 and its derived streams, so a
simulated truth is not a training example).

Noise: ``Gaussian(sigma)`` with ``sigma = noise_rel * rms(F(x_true))`` unless ``noise_std`` gives
``sigma`` directly (in the measurement's units); the file stores the absolute ``sigma``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from forward_models.base import ForwardModel
from forward_models.names import unknown_name_message
from inverse.errors import UserError

__all__ = ["ProblemSpec", "PROBLEMS", "get_problem", "build_forward_model", "problem_options", "draw_truth",
           "measurement_view"]

TRUTH_SEED_OFFSET = 1_000_003


@dataclass(frozen=True)
class ProblemSpec:
    """A named problem: option defaults, builders and the metadata files and figures need.

    ``build(options) -> ForwardModel``; ``truth(options, seed) -> (1, *input_shape)`` in physical units;
    ``view(forward_model, y) -> (1, *input_shape)`` a direct reconstruction (FBP, zero-filled, adjoint)
    or None; ``y_dims`` names the measurement axes; ``prior`` the shipped prior that fits, if any.
    """

    name: str
    description: str
    defaults: dict
    build: Callable[[dict], ForwardModel]
    truth: Callable[[dict, int], torch.Tensor]
    x_dims: tuple[str, ...]
    y_dims: tuple[str, ...]
    x_units: str
    y_units: str
    prior: str | None
    noise_rel: float
    view_name: str | None = None
    view: Callable | None = None
    help: dict = field(default_factory=dict)


def _g(seed: int) -> int:
    return TRUTH_SEED_OFFSET + int(seed)


# ------------------------------------------------------------------ CT
def _build_ct(o):
    from forward_models.tomography import ParallelBeamCT

    return ParallelBeamCT(o["size"], o["angles"])


def _truth_phantom(o, seed):
    from forward_models.generators.phantoms import random_ellipses

    return random_ellipses(1, o["size"], seed=_g(seed)).double()


def _view_ct(fm, y):
    return fm.fbp(y) if hasattr(fm, "fbp") else fm.adjoint(y)


# ------------------------------------------------------------------ MRI
def _build_mri(o):
    from forward_models.mri import RealImageMRI, SingleCoilMRI

    return RealImageMRI(SingleCoilMRI.cartesian(o["size"], acceleration=o["acceleration"],
                                                center_fraction=o["center_fraction"], kind=o["mask"],
                                                seed=o["mask_seed"]))


def _build_mri_multicoil(o):
    from forward_models.mri import MultiCoilMRI, RealImageMRI

    return RealImageMRI(MultiCoilMRI.cartesian(o["size"], acceleration=o["acceleration"],
                                               center_fraction=o["center_fraction"], kind=o["mask"],
                                               seed=o["mask_seed"], num_coils=o["coils"], coil_seed=o["mask_seed"]))


def _view_adjoint(fm, y):
    return fm.adjoint(y)


# ------------------------------------------------------------------ PDEs
def _build_ns(o):
    from forward_models.navier_stokes import NavierStokes2D

    return NavierStokes2D(o["size"], factor=o["factor"], T=o["T"], dt=o["dt"])


def _truth_ns(o, seed):
    from forward_models.generators.vorticity import navier_stokes_snapshots

    return navier_stokes_snapshots(1, o["size"], seed=_g(seed), dtype=torch.float64)


def _build_darcy(o):
    from forward_models.darcy import DarcyFlow

    return DarcyFlow(o["size"], coefficient="identity", sensors=o["sensors"])


def _truth_darcy(o, seed):
    from forward_models.generators.grf import two_phase_permeability

    return two_phase_permeability(1, o["size"], seed=_g(seed)).double()


# ------------------------------------------------------------------ seismic
def _fwi_kwargs(o):
    return {"nt": o["nt"], "num_shots": o["shots"], "num_receivers": o["receivers"], "freq": o["freq"]}


def _build_fwi(o):
    from forward_models.seismic import AcousticFWI

    return AcousticFWI((o["size"], o["size"]), **_fwi_kwargs(o))


def _truth_velocity(o, seed):
    from forward_models.generators.velocity import velocity_models

    fams = ["flat", "curved", "flat-fault", "curved-fault"]
    return velocity_models(1, fams[int(seed) % 4], (o["size"], o["size"]), seed=_g(seed), dtype=torch.float64)


def _build_interp(o):
    from forward_models.trace_interpolation import TraceInterpolation, random_trace_mask

    mask = random_trace_mask(o["receivers"], o["missing"], seed=o["mask_seed"])
    return TraceInterpolation(mask, nt=o["nt"], num_shots=o["shots"])


def _truth_gathers(o, seed):
    from forward_models.seismic import AcousticFWI

    v = _truth_velocity({"size": o["size"]}, seed)
    op = AcousticFWI((o["size"], o["size"]), nt=o["nt"], num_shots=o["shots"], num_receivers=o["receivers"],
                     freq=o["freq"])
    with torch.no_grad():
        return op(v)


PROBLEMS: dict[str, ProblemSpec] = {
    "ct": ProblemSpec(
        "ct", "sparse-view parallel-beam CT of an ellipse phantom", {"size": 64, "angles": 30},
        _build_ct, _truth_phantom, ("channel", "y", "x"), ("channel", "angle", "detector"), "attenuation (a.u.)",
        "line integral (a.u. x pixel)", "phantoms-64", 0.02, "filtered back-projection", _view_ct,
        {"size": "image size N", "angles": "number of projection angles in [0, 180) degrees"}),
    "mri": ProblemSpec(
        "mri", "single-coil Cartesian MRI of a real phantom",
        {"size": 64, "acceleration": 4.0, "center_fraction": 0.08, "mask": "random", "mask_seed": 0},
        _build_mri, _truth_phantom, ("channel", "y", "x"), ("complex", "ky", "kx"), "intensity (a.u.)",
        "k-space (a.u.)", "phantoms-64", 0.02, "zero-filled inverse FFT", _view_adjoint,
        {"acceleration": "undersampling factor", "mask": "random, equispaced or gaussian columns"}),
    "mri-multicoil": ProblemSpec(
        "mri-multicoil", "multi-coil (SENSE) Cartesian MRI of a real phantom",
        {"size": 64, "acceleration": 4.0, "center_fraction": 0.08, "mask": "random", "mask_seed": 0, "coils": 8},
        _build_mri_multicoil, _truth_phantom, ("channel", "y", "x"), ("complex", "coil", "ky", "kx"),
        "intensity (a.u.)", "k-space (a.u.)", "phantoms-64", 0.02, "coil-combined zero-filled (adjoint)",
        _view_adjoint, {"coils": "number of birdcage coils"}),
    "navier-stokes": ProblemSpec(
        "navier-stokes", "initial vorticity from the subsampled vorticity at time T (Re 200)",
        {"size": 64, "factor": 4, "T": 1.0, "dt": 1e-2},
        _build_ns, _truth_ns, ("channel", "y", "x"), ("channel", "y_obs", "x_obs"), "vorticity (1/s)",
        "vorticity (1/s)", "ns-vorticity-64", 0.05, None, None,
        {"factor": "observe every factor-th grid point", "T": "final time"}),
    "darcy": ProblemSpec(
        "darcy", "permeability from pressure sensors (Darcy flow, unit square)",
        {"size": 32, "sensors": 7},
        _build_darcy, _truth_darcy, ("channel", "y", "x"), ("sensor",), "permeability (a.u.)",
        "pressure (a.u.)", "darcy-perm-32", 0.01, None, None, {"sensors": "n for an n x n sensor grid"}),
    "fwi": ProblemSpec(
        "fwi", "acoustic full-waveform inversion of a layered velocity model (OpenFWI geometry)",
        {"size": 70, "nt": 1000, "shots": 5, "receivers": 70, "freq": 15.0},
        _build_fwi, _truth_velocity, ("channel", "depth", "x"), ("shot", "time", "receiver"), "velocity (m/s)",
        "pressure (a.u.)", "seismic-velocity-70", 0.01, None, None, {"nt": "time samples (1 ms)"}),
    "seismic-interp": ProblemSpec(
        "seismic-interp", "missing-trace interpolation of shot gathers",
        {"size": 70, "nt": 1000, "shots": 5, "receivers": 70, "freq": 15.0, "missing": 0.5, "mask_seed": 0},
        _build_interp, _truth_gathers, ("shot", "time", "receiver"), ("shot", "time", "receiver"),
        "pressure (a.u.)", "pressure (a.u.)", None, 0.01, "recorded traces (missing = 0)", _view_adjoint,
        {"missing": "fraction of missing traces"}),
}


def get_problem(name: str) -> ProblemSpec:
    """The :class:`ProblemSpec` called ``name`` (one-line error with a suggestion otherwise)."""
    if name not in PROBLEMS:
        raise UserError(unknown_name_message("problem", name, PROBLEMS))
    return PROBLEMS[name]


def problem_options(name: str, **overrides) -> dict:
    """The problem's default options updated by ``overrides`` (None values ignored), type-checked.

    Unknown option names and values of the wrong type are a ``ValueError`` naming them.
    """
    spec = get_problem(name)
    opts = dict(spec.defaults)
    for k, v in overrides.items():
        if v is None:
            continue
        if k not in opts:
            raise UserError(f"problem {name!r} has no option {k!r} (options: {', '.join(opts)})")
        default = opts[k]
        try:
            opts[k] = type(default)(v) if not isinstance(default, str) else str(v)
            if isinstance(default, float) and not math.isfinite(opts[k]):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"option {k!r} of problem {name!r} must be a {type(default).__name__}, got {v!r}") from None
        if isinstance(default, int) and opts[k] != float(v):
            raise UserError(f"option {k!r} of problem {name!r} must be an integer, got {v!r}")
    return opts


def build_forward_model(name: str, options: dict | None = None) -> ForwardModel:
    """The forward model of problem ``name`` with ``options`` (defaults filled in)."""
    spec = get_problem(name)
    return spec.build(problem_options(name, **(options or {})))


def draw_truth(name: str, options: dict, seed: int) -> torch.Tensor:
    """A ground truth ``(1, *input_shape)`` in physical units from the problem's generator (float64)."""
    spec = get_problem(name)
    return spec.truth(problem_options(name, **options), int(seed)).to(torch.float64)


def measurement_view(name: str, forward_model: ForwardModel, y: torch.Tensor) -> torch.Tensor | None:
    """A direct reconstruction of ``y`` (``(1, *input_shape)``) for figures, or None when the problem has none."""
    spec = get_problem(name)
    if spec.view is None:
        return None
    with torch.no_grad():
        return spec.view(forward_model, y)
