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
| ``ct-fanbeam`` | attenuation image (1, N, N), a.u. | fan-beam sinogram (angle, detector), flat | ``phantoms-64`` |
| ``mri-radial`` | real image (1, N, N), a.u. | single-coil radial k-space (complex, spoke, sample) | ``phantoms-64`` |
| ``mri-radial-multicoil`` | real image (1, N, N), a.u. | k-space (complex, coil, spoke, sample) | ``phantoms-64`` |
| ``navier-stokes`` | initial vorticity (1, N, N), 1/s | vorticity at T, every factor-th point | ``ns-vorticity-64`` |
| ``darcy`` | permeability (1, N, N), a.u. | pressure at an n x n sensor grid | ``darcy-perm-32`` |
| ``fwi`` | velocity (1, H, W), m/s | shot gathers (shot, time, receiver) | ``seismic-velocity-70`` |
| ``seismic-interp`` | shot gathers (shot, time, receiver) | the gathers with missing traces | none |

Ground truths are drawn from the generators the shipped priors were trained on, with the stream
``truth_seed = 1_000_003 + seed`` (the priors' training sets use seed 0 and its derived streams, so a
simulated truth is not a training example).

Noise: ``Gaussian(sigma)`` with ``sigma = noise_rel * rms(F(x_true))`` unless ``noise_std`` gives
``sigma`` directly (in the measurement's units); the file stores the absolute ``sigma``.

Three problems with a known structure, built in code rather than through ``inverse simulate``:
:func:`gmm_case`, a Gaussian mixture whose posterior is exact (scored by :func:`evaluate_sampler` and
:func:`averaged_sw_ratio`), :func:`darcy_two_level_problem`, Darcy flow in Karhunen-Loeve coordinates
with an accurate and a coarse-grid forward model (two-level MCMC), and :func:`linear_gaussian_problem`, a
small linear-Gaussian problem with its exact Gaussian posterior.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import torch

from forward_models.base import ForwardModel
from forward_models.names import unknown_name_message
from forward_models.problem import InverseProblem
from inverse.errors import UserError
from inverse.metrics import mode_weight_tv, sliced_wasserstein
from priors.gaussian_mixture import GaussianMixture, GaussianMixturePrior

if TYPE_CHECKING:
    from priors.function_space import DenseGaussian, MaternField

__all__ = ["ProblemSpec", "PROBLEMS", "OPTION_LIMITS", "MAX_TIME_STEPS", "get_problem", "build_forward_model",
           "problem_options", "draw_truth",
           "measurement_view", "GMM_SETTINGS", "GMMCase", "gmm_case", "evaluate_sampler", "averaged_sw_ratio",
           "DarcyTwoLevel", "darcy_two_level_problem", "LinearGaussianCase", "linear_gaussian_problem"]

TRUTH_SEED_OFFSET = 1_000_003


@dataclass(frozen=True)
class ProblemSpec:
    """A named problem: option defaults, builders and the metadata files and figures need.

    ``build(options) -> ForwardModel``; ``truth(options, seed) -> (1, *input_shape)`` in physical units;
    ``view(forward_model, y) -> (1, *input_shape)`` a direct reconstruction (FBP, zero-filled, adjoint)
    or None; ``y_dims`` names the measurement axes; ``prior`` the shipped prior that fits, if any.
    ``limits`` maps an option to its accepted ``(low, high)`` (on top of :data:`OPTION_LIMITS`);
    ``footprint(options)`` estimates the bytes that building the operator and one evaluation allocate.
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
    limits: dict = field(default_factory=dict)
    footprint: Callable[[dict], float] | None = None


#: accepted range of the options that set an array's size, for every problem that has them (a problem's
#: ``limits`` override them; the upper end is checked here, the lower one by the forward model); on top of
#: these, :func:`problem_options` refuses options whose estimated memory (``ProblemSpec.footprint``) exceeds
#: half of this machine's memory
OPTION_LIMITS = {"size": (1, 4096), "angles": (1, 10_000), "coils": (1, 256), "sensors": (1, 1024),
                 "nt": (1, 100_000), "shots": (1, 1000), "receivers": (1, 10_000), "factor": (1, 4096),
                 "mask_seed": (0, 2**63 - 1)}
#: most time steps ``T / dt`` of the Navier-Stokes solver
MAX_TIME_STEPS = 100_000


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


# ------------------------------------------------------------------ fan-beam CT and radial MRI
def _build_ct_fanbeam(o):
    from forward_models.fanbeam import FanBeamCT

    return FanBeamCT(o["size"], o["angles"], source_distance=o["source_distance"] * o["size"],
                     detector_distance=o["detector_distance"] * o["size"])


def _radial_args(o):
    return {"img_size": o["size"], "spokes": o["spokes"], "samples_per_spoke": o["samples"] or 2 * o["size"],
            "trajectory": o["trajectory"], "real_image": True}


def _build_mri_radial(o):
    from forward_models.radial_mri import RadialMRI

    return RadialMRI(**_radial_args(o))


def _build_mri_radial_multicoil(o):
    from forward_models.radial_mri import RadialMRI

    return RadialMRI.with_coils(**_radial_args(o), num_coils=o["coils"], coil_seed=o["coil_seed"])


def _view_gridding(fm, y):
    return fm.gridding(y)


# ------------------------------------------------------------------ PDEs
def _build_ns(o):
    from forward_models.navier_stokes import NavierStokes2D, stable_time_step

    # dt is capped at the grid's stable step: dt = 1e-2 on a 128 grid blows up to NaN
    return NavierStokes2D(o["size"], factor=o["factor"], T=o["T"], dt=min(o["dt"], stable_time_step(o["size"])))


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


# ------------------------------------------------------------------ memory estimates (bytes, upper bounds)
def _footprint_ct(o):
    # the CSR projector and its transpose (about 2.2 entries per pixel and angle), and the build's work arrays
    return 200.0 * o["angles"] * o["size"] ** 2 + 400.0 * min(o["angles"], 16) * o["size"] ** 2


def _footprint_mri(o):
    return 1024.0 * o.get("coils", 1) * o["size"] ** 2  # a few complex128 copies of the (coil) k-space


def _footprint_fanbeam(o):
    # the CSR projector and its transpose (about 5 entries per pixel and angle at the default geometry, 24 bytes
    # each), and the build's work arrays (8 angles at a time)
    return 300.0 * o["angles"] * o["size"] ** 2 + 3000.0 * o["size"] ** 2


def _footprint_radial(o):
    samples = o["samples"] or 2 * o["size"]
    return 1024.0 * o.get("coils", 1) * (o["size"] ** 2 + o["spokes"] * samples)  # complex128 copies, NUFFT grids


def _footprint_ns(o):
    return 1024.0 * o["size"] ** 2  # the pseudo-spectral solver's complex work arrays


def _footprint_darcy(o):
    return 64.0 * o["size"] ** 3  # sparse LU factors of the size^2 x size^2 system, with fill-in


def _footprint_wave(o):
    # the wavefields of every time step and shot (kept for the adjoint), and the shot gathers
    return 8.0 * o["nt"] * o["shots"] * (o["size"] ** 2 + 4 * o["receivers"])


PROBLEMS: dict[str, ProblemSpec] = {
    "ct": ProblemSpec(
        "ct", "sparse-view parallel-beam CT of an ellipse phantom", {"size": 64, "angles": 30},
        _build_ct, _truth_phantom, ("channel", "y", "x"), ("channel", "angle", "detector"), "attenuation (a.u.)",
        "line integral (a.u. x pixel)", "phantoms-64", 0.02, "filtered back-projection", _view_ct,
        {"size": "image size N", "angles": "number of projection angles in [0, 180) degrees"},
        footprint=_footprint_ct),
    "mri": ProblemSpec(
        "mri", "single-coil Cartesian MRI of a real phantom",
        {"size": 64, "acceleration": 4.0, "center_fraction": 0.08, "mask": "random", "mask_seed": 0},
        _build_mri, _truth_phantom, ("channel", "y", "x"), ("complex", "ky", "kx"), "intensity (a.u.)",
        "k-space (a.u.)", "phantoms-64", 0.02, "zero-filled inverse FFT", _view_adjoint,
        {"acceleration": "undersampling factor", "mask": "random, equispaced or gaussian columns"},
        footprint=_footprint_mri),
    "mri-multicoil": ProblemSpec(
        "mri-multicoil", "multi-coil (SENSE) Cartesian MRI of a real phantom",
        {"size": 64, "acceleration": 4.0, "center_fraction": 0.08, "mask": "random", "mask_seed": 0, "coils": 8},
        _build_mri_multicoil, _truth_phantom, ("channel", "y", "x"), ("complex", "coil", "ky", "kx"),
        "intensity (a.u.)", "k-space (a.u.)", "phantoms-64", 0.02, "coil-combined zero-filled (adjoint)",
        _view_adjoint, {"coils": "number of birdcage coils"}, footprint=_footprint_mri),
    "ct-fanbeam": ProblemSpec(
        "ct-fanbeam", "sparse-view fan-beam CT (flat detector, full turn) of an ellipse phantom",
        {"size": 64, "angles": 30, "source_distance": 2.0, "detector_distance": 4.0},
        _build_ct_fanbeam, _truth_phantom, ("channel", "y", "x"), ("channel", "angle", "detector"),
        "attenuation (a.u.)", "line integral (a.u. x pixel)", "phantoms-64", 0.02,
        "weighted fan-beam filtered back-projection", _view_ct,
        {"angles": "number of source angles in [0, 360) degrees",
         "source_distance": "source-to-isocentre distance in image widths (> 0.71 + 1 pixel)",
         "detector_distance": "source-to-detector distance in image widths"},
        limits={"source_distance": (0.75, 100.0), "detector_distance": (0.75, 200.0)}, footprint=_footprint_fanbeam),
    "mri-radial": ProblemSpec(
        "mri-radial", "single-coil radial (golden-angle) MRI of a real phantom",
        {"size": 64, "spokes": 32, "samples": 0, "trajectory": "golden"},
        _build_mri_radial, _truth_phantom, ("channel", "y", "x"), ("complex", "spoke", "sample"), "intensity (a.u.)",
        "k-space (a.u.)", "phantoms-64", 0.02, "density-compensated gridding", _view_gridding,
        {"spokes": "number of radial spokes", "samples": "samples per spoke over [-pi, pi) (0: twice the size)",
         "trajectory": "golden or uniform spoke angles"},
        limits={"size": (4, 4096), "spokes": (1, 100_000), "samples": (0, 65_536)}, footprint=_footprint_radial),
    "mri-radial-multicoil": ProblemSpec(
        "mri-radial-multicoil", "multi-coil radial (golden-angle) MRI of a real phantom",
        {"size": 64, "spokes": 32, "samples": 0, "trajectory": "golden", "coils": 8, "coil_seed": 0},
        _build_mri_radial_multicoil, _truth_phantom, ("channel", "y", "x"), ("complex", "coil", "spoke", "sample"),
        "intensity (a.u.)", "k-space (a.u.)", "phantoms-64", 0.02, "coil-combined density-compensated gridding",
        _view_gridding, {"coils": "number of birdcage coils", "coil_seed": "seed of the coil maps' jitter"},
        limits={"size": (4, 4096), "spokes": (1, 100_000), "samples": (0, 65_536), "coil_seed": (0, 2**63 - 1)},
        footprint=_footprint_radial),
    "navier-stokes": ProblemSpec(
        "navier-stokes", "initial vorticity from the subsampled vorticity at time T (Re 200)",
        {"size": 64, "factor": 4, "T": 1.0, "dt": 1e-2},
        _build_ns, _truth_ns, ("channel", "y", "x"), ("channel", "y_obs", "x_obs"), "vorticity (1/s)",
        "vorticity (1/s)", "ns-vorticity-64", 0.05, None, None,
        {"factor": "observe every factor-th grid point", "T": "final time",
         "dt": "solver time step (capped at 0.64 / size, the stable step, on grids finer than 64)"},
        footprint=_footprint_ns),
    "darcy": ProblemSpec(
        "darcy", "permeability from pressure sensors (Darcy flow, unit square)",
        {"size": 32, "sensors": 7},
        _build_darcy, _truth_darcy, ("channel", "y", "x"), ("sensor",), "permeability (a.u.)",
        "pressure (a.u.)", "darcy-perm-32", 0.01, None, None, {"sensors": "n for an n x n sensor grid"},
        limits={"size": (2, 1024)}, footprint=_footprint_darcy),
    "fwi": ProblemSpec(
        "fwi", "acoustic full-waveform inversion of a layered velocity model (OpenFWI geometry)",
        {"size": 70, "nt": 1000, "shots": 5, "receivers": 70, "freq": 15.0},
        _build_fwi, _truth_velocity, ("channel", "depth", "x"), ("shot", "time", "receiver"), "velocity (m/s)",
        "pressure (a.u.)", "seismic-velocity-70", 0.01, None, None, {"nt": "time samples (1 ms)"},
        footprint=_footprint_wave),
    "seismic-interp": ProblemSpec(
        "seismic-interp", "missing-trace interpolation of shot gathers",
        {"size": 70, "nt": 1000, "shots": 5, "receivers": 70, "freq": 15.0, "missing": 0.5, "mask_seed": 0},
        _build_interp, _truth_gathers, ("shot", "time", "receiver"), ("shot", "time", "receiver"),
        "pressure (a.u.)", "pressure (a.u.)", None, 0.01, "recorded traces (missing = 0)", _view_adjoint,
        {"missing": "fraction of missing traces"}, footprint=_footprint_wave),
}


def get_problem(name: str) -> ProblemSpec:
    """The :class:`ProblemSpec` called ``name`` (one-line error with a suggestion otherwise)."""
    if name not in PROBLEMS:
        raise UserError(unknown_name_message("problem", name, PROBLEMS))
    return PROBLEMS[name]


def problem_options(name: str, **overrides) -> dict:
    """The problem's default options updated by ``overrides`` (None values ignored), type-checked and bounded.

    Unknown option names and values of the wrong type are a ``ValueError`` naming them. Sizes are bounded
    before anything is allocated: each option within its range (:data:`OPTION_LIMITS`, the problem's
    ``limits``; at most :data:`MAX_TIME_STEPS` solver steps ``T / dt``), and the estimated memory of the
    operator (``ProblemSpec.footprint``) within half of this machine's memory. This holds for options read
    from a measurement file too (:func:`build_forward_model`).
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
    _check_size(spec, opts)
    return opts


def _check_size(spec: ProblemSpec, opts: dict) -> None:
    """Refuse options beyond their range or whose operator would not fit in memory (:func:`problem_options`)."""
    from inverse.validation import format_bytes, memory_limit_bytes

    for k, v in opts.items():  # the lower ends are the forward models' own checks, with their messages
        high = spec.limits.get(k, OPTION_LIMITS.get(k, (None, None)))[1]
        if high is not None and v > high:
            raise UserError(f"option {k!r} of problem {spec.name!r} must be at most {high}, got {v}")
    if "T" in opts and "dt" in opts and opts["dt"] > 0 and opts["T"] / opts["dt"] > MAX_TIME_STEPS:
        raise UserError(f"problem {spec.name!r}: T / dt = {opts['T'] / opts['dt']:.3g} solver steps; at most "
                        f"{MAX_TIME_STEPS} are allowed (raise dt or lower T)")
    if spec.footprint is not None:
        need, limit = float(spec.footprint(opts)), memory_limit_bytes()
        if need > limit:
            sized = ", ".join(f"{k}={opts[k]}" for k in opts if k in OPTION_LIMITS and k != "mask_seed")
            raise UserError(f"problem {spec.name!r} with {sized} needs about {format_bytes(need)} of memory, more "
                            f"than half of this machine's ({format_bytes(limit)} allowed): choose smaller sizes")


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


# ------------------------------------------------------------------ Gaussian mixture with an exact posterior
#: guidance scales of the gradient samplers on :func:`gmm_case` (the paper's VP units), chosen on seeds 0-2
#: from {0, 0.3, 1, 3}; the other samplers take only their step count
GMM_SETTINGS = {"dps": {"zeta": 0.3}, "mcg": {"alpha": 0.3}}


@dataclass
class GMMCase:
    """One instance of the Gaussian-mixture problem: prior, problem, exact posterior and log-evidence."""

    prior: GaussianMixturePrior
    problem: InverseProblem
    posterior: GaussianMixture
    log_evidence: float
    sigma_y: float
    seed: int


def gmm_case(d: int, dy: int, seed: int, *, device="cpu") -> GMMCase:
    """The Gaussian-mixture problem of Cardoso, Janati, Le Corff and Moulines (ICLR 2024), whose posterior is exact.

    Prior: 25 components ``N(m_ij, I_d)`` with ``m_ij = (-8i, -8j, -8i, -8j, ...)`` for ``i, j`` in {-2..2},
    weights ``randn(25)^2`` normalised. Operator: ``A0 = randn(dy, d)``, ``(U, S, V^T) = svd(A0)``, ``s`` sorted
    ``uniform(0, 1)^dy`` descending, ``A = U diag(s) V^T[:dy]``. Truth ``x*`` from the prior,
    ``sigma_y = uniform(0, 1) * max(s)`` (at least 1e-3), ``y = A x* + sigma_y e``. The posterior is again a
    Gaussian mixture (:meth:`priors.GaussianMixturePrior.posterior`), and so is the evidence.

    Args:
        d: dimension, an even number >= 2.
        dy: number of measurements, ``1 <= dy <= d``.
        seed: seeds every random ingredient (float64 throughout).
        device: where the prior and the problem live (the exact posterior stays on the CPU).

    Example::

        from inverse.problems import gmm_case
        from samplers import get_sampler
        case = gmm_case(8, 2, seed=0)
        post = get_sampler("dps", num_steps=20, zeta=0.3).sample(case.problem, case.prior, 64, seed=0)
        exact = case.posterior.sample(64)
    """
    from forward_models import Gaussian, MatrixOperator

    if d < 2 or d % 2:
        raise UserError(f"d must be an even number >= 2, got {d}")
    if not 1 <= dy <= d:
        raise UserError(f"dy must lie in [1, d], got {dy}")
    g = torch.Generator().manual_seed(int(seed))
    f64 = torch.float64
    grid = torch.arange(-2, 3, dtype=f64)
    ii, jj = torch.meshgrid(grid, grid, indexing="ij")
    pair = torch.stack([-8.0 * ii.reshape(-1), -8.0 * jj.reshape(-1)], 1)  # (25, 2)
    means = pair.repeat(1, d // 2)
    weights = torch.randn(25, generator=g, dtype=f64) ** 2
    prior = GaussianMixturePrior(means, weights)
    A0 = torch.randn(dy, d, generator=g, dtype=f64)
    U, _, Vh = torch.linalg.svd(A0, full_matrices=False)
    s, _ = torch.sort(torch.rand(dy, generator=g, dtype=f64), descending=True)
    A = U @ torch.diag(s) @ Vh[:dy]
    x_star = prior.sample(1, g)[0]
    sigma_y = float(torch.rand(1, generator=g, dtype=f64)) * float(s.max())
    sigma_y = max(sigma_y, 1e-3)
    op = MatrixOperator(A, dtype=f64)
    y = A @ x_star + sigma_y * torch.randn(dy, generator=g, dtype=f64)
    problem = InverseProblem(op, y, Gaussian(sigma_y), truth=x_star)
    post = prior.posterior(A, y, sigma_y)
    logz = prior.log_evidence(A, y, sigma_y)
    if str(device) != "cpu":
        prior = prior.to(device)
        problem = problem.to(device)
    return GMMCase(prior, problem, post, logz, sigma_y, int(seed))


def evaluate_sampler(case: GMMCase, sampler, num_samples: int = 1000, *, seed: int = 0,
                     num_slices: int = 1000) -> dict:
    """Run ``sampler`` on ``case`` and score it against exact posterior draws, with the floor beside each score.

    The *floor* of a metric is its value between two independent exact sets of the same size: no sampler can be
    expected to do better. Scores: sliced Wasserstein-1 (``sw``, :func:`inverse.metrics.sliced_wasserstein`) and
    mode-weight total variation (``tv``, :func:`inverse.metrics.mode_weight_tv`). A weighted posterior (SMC) is
    scored as the weighted particle measure it is; ``sw_resampled`` / ``tv_resampled`` score ``num_samples``
    multinomial draws from it (resampling noise on top of the sampler's own error). Also returns ``time_s``,
    ``nfe_per_sample`` and the ``posterior``.
    """
    t0 = time.perf_counter()
    post = sampler.sample(case.problem, case.prior, num_samples, seed=seed)
    wall = time.perf_counter() - t0
    g = torch.Generator().manual_seed(10_000 + int(seed))
    x = post.resample(num_samples, g).cpu()
    ref1 = case.posterior.sample(num_samples, g)
    ref2 = case.posterior.sample(num_samples, g)
    sw_resampled = sliced_wasserstein(x, ref1, num_slices, seed=seed)
    tv_resampled = mode_weight_tv(x, case.posterior)
    if post.log_weights is None:
        sw, tv = sw_resampled, tv_resampled
    else:
        w = post.weights().detach().cpu()
        xs = post.samples.detach().cpu()
        sw = sliced_wasserstein(xs, ref1, num_slices, seed=seed, weights_a=w)
        tv = mode_weight_tv(xs, case.posterior, weights=w)
    return {
        "sw": sw,
        "sw_floor": sliced_wasserstein(ref2, ref1, num_slices, seed=seed),
        "sw_resampled": sw_resampled,
        "tv": tv,
        "tv_floor": mode_weight_tv(ref2, case.posterior),
        "tv_resampled": tv_resampled,
        "time_s": wall,
        "nfe_per_sample": post.diagnostics["nfe"] / num_samples,
        "posterior": post,
    }


def averaged_sw_ratio(case: GMMCase, posterior, num_draws: int = 1000, *, refs: int = 10, seed: int = 0,
                      num_slices: int = 500) -> dict:
    """Sliced-Wasserstein ratio of ``posterior`` to the floor, both sides averaged over ``refs`` draws:

        E[SW(x_r, ref_r)] / E[SW(ref'_r, ref_r)],   r = 1..refs,

    ``x_r`` a fresh resampling of ``n = min(num_draws, len(posterior))`` draws from the (weighted) posterior,
    ``ref_r`` and ``ref'_r`` fresh exact ``n``-sets; ``posterior=None`` puts exact draws in the sampler's place
    (expected ratio 1). One floor pair is itself random, so one ratio per seed mostly measures the floor's luck;
    averaging both sides estimates the ratio of expected distances. Returns ``{"ratio", "sw", "floor", "n"}``.
    """
    n = int(num_draws) if posterior is None else min(int(num_draws), len(posterior.samples))
    g = torch.Generator().manual_seed(50_000 + int(seed))
    num, den = [], []
    for r in range(int(refs)):
        x = case.posterior.sample(n, g) if posterior is None else posterior.resample(n, g).detach().cpu()
        ref, ref2 = case.posterior.sample(n, g), case.posterior.sample(n, g)
        num.append(sliced_wasserstein(x, ref, num_slices, seed=r))
        den.append(sliced_wasserstein(ref2, ref, num_slices, seed=r))
    sw, floor = sum(num) / len(num), sum(den) / len(den)
    return {"ratio": sw / floor, "sw": sw, "floor": floor, "n": n}


# ------------------------------------------------------------------ Darcy flow in Karhunen-Loeve coordinates
@dataclass
class DarcyTwoLevel:
    """The Darcy problem of two-level MCMC: a Matern KL prior, the fine problem and its coarse-grid twin.

    ``problem`` and ``coarse_problem`` share ``y`` and the noise; ``truth_coefficients`` ``(1, K)`` are the KL
    coefficients of the truth, ``problem.truth == prior.field(truth_coefficients)[0]``.
    """

    prior: MaternField
    problem: InverseProblem
    coarse_problem: InverseProblem
    truth_coefficients: torch.Tensor


def darcy_two_level_problem(size: int, modes: int, noise: float, *, seed: int = 0, truth_seed: int | None = None,
                            coarse_size: int = 16, check_finite: bool = True) -> DarcyTwoLevel:
    """Log-permeability from 25 pressure sensors, with an accurate and a cheap forward model.

    Prior: ``x = m_0 + sum_k sqrt(mu_k) xi_k phi_k``, a Matern field (alpha 2, tau 3, pointwise scale 6) kept to
    ``modes`` Karhunen-Loeve modes (:class:`priors.function_space.MaternField`), ``xi ~ N(0, I_K)``. Forward
    model: Darcy flow ``-div(exp(x) grad p) = f`` on a ``size x size`` grid, pressure at a 5 x 5 sensor grid
    (:class:`forward_models.darcy.DarcyFlow`); the coarse model solves the same map on a
    ``coarse_size x coarse_size`` grid (``DarcyFlow.coarse``). Gaussian noise of standard deviation ``noise``.
    Two-level MCMC (delayed acceptance, MLDA: Christen and Fox 2005, Lykkegaard et al. 2023) moves in ``xi``.

    Args:
        size: fine grid, a multiple of ``coarse_size``.
        modes: number of KL modes ``K``.
        noise: noise standard deviation (pressure units).
        seed: seed of the measurement noise.
        truth_seed: seed of the truth's KL coefficients (default ``1000 + seed``).
        coarse_size: coarse grid.
        check_finite: whether both forward models check their input for NaN / Inf on every call.

    Example::

        from inverse.problems import darcy_two_level_problem
        d = darcy_two_level_problem(32, 16, 0.01)
        print(d.problem.y.shape, d.coarse_problem.forward_model.solver_resolution)
    """
    from forward_models import Gaussian
    from forward_models.darcy import DarcyFlow
    from priors.function_space import MaternField

    if int(size) % int(coarse_size):
        raise UserError(f"the grid size must be a multiple of the coarse grid {coarse_size}, got {size}")
    prior = MaternField(size, modes, alpha=2.0, tau=3.0, sigma=6.0, mean=0.0)
    ts = 1000 + int(seed) if truth_seed is None else int(truth_seed)
    xi_true = torch.randn(1, modes, generator=torch.Generator().manual_seed(ts), dtype=torch.float64)
    fine = DarcyFlow(size, coefficient="exp", sensors=5)
    fine.check_finite = check_finite
    problem = InverseProblem.simulate(fine, Gaussian(noise), prior.field(xi_true)[0], seed=seed)
    coarse = fine.coarse(int(size) // int(coarse_size))
    coarse.check_finite = check_finite
    return DarcyTwoLevel(prior, problem, InverseProblem(coarse, problem.y, problem.noise), xi_true)


# ------------------------------------------------------------------ a linear-Gaussian problem with an exact posterior
class LinearGaussianCase(NamedTuple):
    """A linear-Gaussian problem and its exact posterior ``N(mean, covariance)`` (:func:`linear_gaussian_problem`)."""

    problem: InverseProblem
    biased: InverseProblem
    prior: DenseGaussian
    mean: torch.Tensor
    covariance: torch.Tensor


def linear_gaussian_problem(seed: int, *, nonzero_mean: bool = True) -> LinearGaussianCase:
    """Three noisy linear measurements of ``u`` in ``R^4`` under a Gaussian prior: the posterior is known exactly.

    With ``g`` a generator seeded ``seed``, drawn in this order: ``A ~ N(0, 1)^{3 x 4}``,
    ``B ~ N(0, 1)^{4 x 4}`` and the truth ``u* ~ N(m_0, C_0)``, where ``C_0 = B B^T / 4 + I / 2`` and
    ``m_0 = (2, -1.5, 0.5, 1.5)`` (``0`` without ``nonzero_mean``). ``y = A u* + eta``, ``eta ~ N(0, s^2 I)``,
    ``s = 0.5`` (noise stream ``seed + 2``). The posterior is Gaussian with

        C_post = (C_0^{-1} + A^T A / s^2)^{-1},    m_post = C_post (C_0^{-1} m_0 + A^T y / s^2)

    (e.g. Stuart 2010, "Inverse problems: a Bayesian perspective", Acta Numerica 19, Theorem 6.20). The
    problem tests function-space MCMC (pCN, delayed acceptance) for exactness; ``biased`` shares ``y`` and the
    noise but uses the deliberately wrong model ``u -> (1.2 A + 0.15) u``, a cheap level whose error the
    multilevel corrections must remove.

    Returns ``(problem, biased, prior, mean, covariance)``, a named tuple; ``prior`` is the
    :class:`~priors.function_space.DenseGaussian` ``N(m_0, C_0)``, float64 throughout.

    Example::

        from inverse.problems import linear_gaussian_problem
        problem, biased, mu, m, P = linear_gaussian_problem(1)
        print(m, P.diagonal().sqrt())
    """
    from forward_models import Gaussian, MatrixOperator
    from priors.function_space import DenseGaussian

    d, dy, s = 4, 3, 0.5
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(dy, d, generator=g, dtype=torch.float64)
    m0 = torch.tensor([2.0, -1.5, 0.5, 1.5], dtype=torch.float64) if nonzero_mean \
        else torch.zeros(d, dtype=torch.float64)
    B = torch.randn(d, d, generator=g, dtype=torch.float64)
    C0 = B @ B.T / d + 0.5 * torch.eye(d, dtype=torch.float64)
    mu = DenseGaussian(m0, C0)
    problem = InverseProblem.simulate(MatrixOperator(A), Gaussian(s), mu.sample(1, g)[0], seed=seed + 2)
    P = torch.linalg.inv(torch.linalg.inv(C0) + A.T @ A / s**2)
    m = P @ (torch.linalg.solve(C0, m0) + A.T @ problem.y / s**2)
    biased = InverseProblem(MatrixOperator(1.2 * A + 0.15), problem.y, problem.noise)
    return LinearGaussianCase(problem, biased, mu, m, P)
