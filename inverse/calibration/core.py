"""``calibrate``: the posterior of a few physical parameters by NumPyro's MCMC, as ArviZ ``InferenceData``.

The posterior of the parameters ``theta`` (and, optionally, the noise level ``sigma``) given data ``y``,

    p(theta, sigma | y) ∝ p(theta) p(sigma) prod_i N(y_i; G(theta)_i, sigma^2),

is sampled by the No-U-Turn Sampler (Hoffman and Gelman 2014, JMLR 15, 1593-1623) as implemented in
NumPyro (Phan, Pradhan and Jankowiak 2019, arXiv:1912.11554): several chains, ``num_warmup``
adaptation steps (dual averaging of the step size to ``target_accept_prob``, diagonal or dense mass
matrix from windowed variance estimates; Stan's schedule), float64 throughout. Constrained
parameters are sampled in an unconstrained space (:mod:`inverse.calibration.distributions`).
Chains are vectorised (one ``vmap``: JAX models and the torch bridge evaluate all chains in one
batch) unless the model says otherwise. ``kernel="ess"`` or ``"aies"`` replaces NUTS by one of NumPyro's
gradient-free ensemble kernels under the same driver (:mod:`inverse.calibration.gradient_free`): for
models without gradients, such as a torch forward model without autograd.

Diagnostics (Vehtari et al. 2021, "Rank-normalization, folding, and localization: an improved R-hat",
Bayesian Analysis 16, 667-718): rank-normalised split R-hat and bulk ESS by ArviZ; divergent
transitions after warm-up are counted in the attributes and reported by a :class:`DivergenceWarning`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import xarray as xr
from numpyro.infer import MCMC, NUTS, init_to_median
from numpyro.infer.mcmc import MCMCKernel

from forward_models.names import close_match_hint
from inverse.calibration.bridge import TorchModel
from inverse.calibration.distributions import check_noise_prior, check_prior, describe_distribution
from inverse.calibration.gradient_free import (
    GRADIENT_FREE,
    KERNELS,
    SAMPLER_NAMES,
    acceptance_rate,
    check_walkers,
    default_walkers,
    ensemble_kernel,
    mode_start,
    unconstrained_dim,
)
from inverse.calibration.laplace import laplace_approximation
from inverse.calibration.model import CalibrationModel, JaxModel
from inverse.errors import UserError
from samplers.posterior import package_version

__all__ = ["calibrate", "CalibrationSetup", "prepare", "DivergenceWarning", "CHAIN_METHODS", "NOISE_NAME",
           "check_run_settings", "diagnostics_attrs"]

CHAIN_METHODS = ("vectorized", "sequential", "parallel")
#: name of the noise standard deviation when it is sampled (reserved: no model parameter may use it)
NOISE_NAME = "sigma"
#: NUTS statistics kept per draw (ArviZ names: diverging, n_steps, acceptance_rate, lp, energy, step_size)
_EXTRA_FIELDS = ("diverging", "num_steps", "accept_prob", "potential_energy", "energy", "adapt_state.step_size")


class DivergenceWarning(RuntimeWarning):
    """NUTS reported divergent transitions after warm-up: the posterior summaries may be biased."""


@dataclass
class CalibrationSetup:
    """A validated calibration problem: model, priors, noise treatment and data.

    ``sigma`` is the known noise standard deviation, or None when ``sigma_prior`` makes it a
    parameter. :meth:`numpyro_model` is the NumPyro program of the module docstring.
    """

    model: CalibrationModel
    priors: dict[str, dist.Distribution]
    sigma: float | None
    sigma_prior: dist.Distribution | None
    y: np.ndarray

    @property
    def dim(self) -> int:
        """Dimension of the unconstrained space that the kernels sample."""
        noise = [self.sigma_prior] if self.sigma_prior is not None else []
        return unconstrained_dim(list(self.priors.values()) + noise)

    @property
    def names(self) -> list[str]:
        """Sampled parameter names (physical parameters, then ``sigma`` when it is unknown)."""
        return list(self.priors) + ([NOISE_NAME] if self.sigma_prior is not None else [])

    def numpyro_model(self) -> Callable[..., None]:
        """The NumPyro program: priors, then the log-likelihood as a factor.

        The data are held by closure (concrete, as the torch bridge needs); a JAX model's program also
        takes other data as its argument ``program(y)`` (simulation-based calibration reuses one program).
        """
        model, priors, sigma, sigma_prior = self.model, self.priors, self.sigma, self.sigma_prior
        data = self.y if isinstance(model, TorchModel) else jnp.asarray(self.y)

        def program(y=None):
            theta = {name: numpyro.sample(name, prior) for name, prior in priors.items()}
            s = numpyro.sample(NOISE_NAME, sigma_prior) if sigma_prior is not None else sigma
            numpyro.factor("log_likelihood", model.log_likelihood(theta, data if y is None else y, s))

        return program

    def attrs(self) -> dict:
        """NetCDF-safe attributes describing the problem."""
        priors = {k: describe_distribution(v) for k, v in self.priors.items()}
        if self.sigma_prior is not None:
            priors[NOISE_NAME] = describe_distribution(self.sigma_prior)
        return {"model": self.model.name, "model_config": json.dumps(self.model.config(), sort_keys=True),
                "parameters": json.dumps(list(self.priors)), "priors": json.dumps(priors),
                "noise": "estimated" if self.sigma_prior is not None else "known",
                "sigma": float("nan") if self.sigma is None else float(self.sigma)}


def _as_model(model, priors) -> CalibrationModel:
    if isinstance(model, CalibrationModel):
        return model
    if callable(model):
        names = [k for k in (priors or {}) if k != NOISE_NAME]
        if not names:
            raise UserError("a plain function as the model needs priors naming its parameters")
        return JaxModel(model, names)
    raise TypeError(f"the model must be a CalibrationModel or a JAX function theta -> predictions, "
                    f"got {type(model).__name__}")


def _check_data(model: CalibrationModel, data) -> np.ndarray:
    try:
        y = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"the data must be an array of numbers, got {type(data).__name__}") from None
    if y.size == 0:
        raise UserError("the data are empty")
    bad = int((~np.isfinite(y)).sum())
    if bad:
        raise UserError(f"the data contain {bad} NaN or Inf value(s)")
    shape = model.obs_shape
    if shape is not None and tuple(y.shape) != tuple(shape):
        raise UserError(f"the data have shape {tuple(y.shape)}, but {model.name} predicts {tuple(shape)}")
    return y


def _resolve_priors(model: CalibrationModel, priors) -> dict[str, dist.Distribution]:
    priors = dict(priors or {})
    unknown = [k for k in priors if k not in model.parameters and k != NOISE_NAME]
    if unknown:
        close = close_match_hint(unknown[0], model.parameters, cutoff=0.5)
        raise UserError(f"{model.name} has no parameter {unknown[0]!r}{close} "
                        f"(parameters: {', '.join(model.parameters)}, and sigma for the noise)")
    if NOISE_NAME in model.parameters:
        raise UserError("'sigma' is reserved for the noise level; rename the model parameter")
    defaults = model.default_priors()
    out = {}
    for name in model.parameters:
        d = priors.get(name, defaults.get(name))
        if d is None:
            raise UserError(f"no prior for the parameter {name!r} of {model.name} (and no default)")
        out[name] = check_prior(name, d)
        if isinstance(model, TorchModel) and (d.batch_shape or d.event_shape):
            raise UserError(f"the prior of {name!r} must be scalar for a torch model, got shape "
                            f"{tuple(d.batch_shape) + tuple(d.event_shape)}")
    return out


def _resolve_sigma(model: CalibrationModel, sigma, priors) -> tuple[float | None, dist.Distribution | None]:
    if isinstance(sigma, dist.Distribution):
        return None, check_noise_prior(sigma)
    if sigma is None:
        if priors and NOISE_NAME in priors:
            return None, check_noise_prior(priors[NOISE_NAME])
        if isinstance(model, JaxModel):
            raise UserError("give the noise level: sigma=<number> (known) or sigma=<distribution> (unknown)")
        return None, check_noise_prior(model.default_sigma_prior())
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        raise TypeError(f"sigma must be a number, a NumPyro distribution or None, got {type(sigma).__name__}") from None
    if not (math.isfinite(s) and s > 0):
        raise UserError(f"the noise level sigma must be positive and finite, got {sigma}")
    if priors and NOISE_NAME in priors:
        raise UserError("sigma is given both as a number and as a prior; choose one")
    return s, None


def prepare(model, data, priors=None, sigma=None) -> CalibrationSetup:
    """Validate ``model``, ``data``, ``priors`` and ``sigma`` into a :class:`CalibrationSetup`
    (see :func:`calibrate`)."""
    model = _as_model(model, priors)
    if priors is not None and not isinstance(priors, Mapping):
        raise TypeError(f"priors must be a dict name -> distribution, got {type(priors).__name__}")
    y = _check_data(model, data)
    theta_priors = _resolve_priors(model, priors)
    s, s_prior = _resolve_sigma(model, sigma, priors)
    return CalibrationSetup(model, theta_priors, s, s_prior, y)


def check_run_settings(num_chains, num_warmup, num_samples, chain_method, target_accept_prob) -> None:
    """One-line ``ValueError`` for chain counts, lengths, chain method or target acceptance out of range."""
    for what, v, low in (("num_chains", num_chains, 1), ("num_warmup", num_warmup, 0), ("num_samples", num_samples, 1)):
        if isinstance(v, bool) or int(v) != v or v < low:
            raise UserError(f"{what} must be an integer >= {low}, got {v}")
    if chain_method not in CHAIN_METHODS:
        raise UserError(f"chain_method must be one of {', '.join(CHAIN_METHODS)}, got {chain_method!r}")
    if not 0 < float(target_accept_prob) < 1:
        raise UserError(f"target_accept_prob must lie in (0, 1), got {target_accept_prob}")


def _observed_group(setup: CalibrationSetup) -> tuple[xr.Dataset, xr.Dataset]:
    m = setup.model
    dims = m.obs_dims if len(m.obs_dims) == setup.y.ndim else tuple(f"obs_dim_{i}" for i in range(setup.y.ndim))
    coords = {d: v for d, v in m.coords().items() if d in dims}
    observed = xr.Dataset({"y": (dims, setup.y)}, coords=coords)
    const = {name: xr.Variable(d, np.asarray(v)) for name, (d, v) in m.constant_data().items()}
    return observed, xr.Dataset(const)


def diagnostics_attrs(idata: az.InferenceData, names) -> dict:
    """Divergences after warm-up, the largest R-hat (``max_rhat_note`` instead for one chain) and the smallest
    bulk ESS over ``names``."""
    stats = idata.sample_stats if "sample_stats" in idata.groups() else {}
    div = int(stats["diverging"].sum()) if "diverging" in stats else 0
    post = idata.posterior[list(names)]
    min_ess = float(az.ess(post, method="bulk").to_array().min())
    if post.sizes["chain"] < 2:  # no NaN: R-hat compares chains
        return {"divergences": div, "max_rhat_note": "R-hat needs >= 2 chains", "min_ess_bulk": min_ess}
    return {"divergences": div, "max_rhat": float(az.rhat(post).to_array().max()), "min_ess_bulk": min_ess}


def calibrate(model, data, priors: Mapping[str, dist.Distribution] | None = None, *, sigma=None, kernel: str = "nuts",
              num_chains: int | None = None, num_warmup: int = 500, num_samples: int = 500, seed: int = 0,
              chain_method: str = "vectorized", progress_bar: bool = False, target_accept_prob: float = 0.8,
              max_tree_depth: int = 10, dense_mass: bool = True, regularize_mass_matrix: bool = False,
              init: str = "auto", init_strategy=None) -> az.InferenceData:
    """Sample ``p(theta, sigma | y)`` with NUTS or a gradient-free kernel (module docstring); ArviZ ``InferenceData``.

    Parameters
    ----------
    model : a :class:`~inverse.calibration.model.CalibrationModel` (the examples in
        :mod:`inverse.calibration.models`, a :class:`~inverse.calibration.bridge.TorchModel`), or a JAX
        function ``theta (dict) -> predictions`` whose parameter names are the keys of ``priors``
    data : observations ``y``, an array of the model's observation shape (finite)
    priors : name -> NumPyro distribution; missing names take the model's defaults; bounded supports
        (Uniform, LogNormal, ...) are handled by transforms, so draws stay in the support
    sigma : the Gaussian noise standard deviation: a number (known), a NumPyro distribution on
        positive values (unknown, sampled as ``sigma``), or None: ``priors["sigma"]`` if given, else the
        model's default noise prior (a plain function must be given sigma)
    kernel : "nuts" (default; needs gradients), or a gradient-free ensemble kernel, "ess" (ensemble slice
        sampling; the one to use for a model without gradients) or "aies" (affine-invariant ensemble
        sampling): :mod:`inverse.calibration.gradient_free`
    num_chains : chains; default 4 for NUTS and, for an ensemble kernel, ``max(8, 2 p)`` walkers (``p``
        unconstrained parameters; an ensemble needs an even number, at least ``max(4, 2 p)``)
    num_warmup, num_samples : adaptation (NUTS) or burn-in (ensembles) steps, and kept draws per chain
    seed : seed of ``jax.random.PRNGKey``
    chain_method : "vectorized" (default; one batch for all chains), "sequential" or "parallel"
    progress_bar : NumPyro's progress bar
    target_accept_prob, max_tree_depth : NUTS settings (the ensemble kernels have none)
    init : "laplace": chains start around the posterior mode with the inverse Hessian as the initial
        mass matrix (:mod:`inverse.calibration.laplace`; falls back to "prior" if the mode or a
        positive-definite Hessian cannot be found); "prior": every chain starts at the median of 15 prior
        draws with an identity mass matrix (NumPyro's ``init_to_median``), or at ``init_strategy`` if
        given; "mode" (ensemble kernels only): walkers in a small ball around the posterior mode, found
        from values only (:func:`~inverse.calibration.gradient_free.mode_start`); "auto" (default): for
        NUTS, "laplace" for torch models (far fewer solver runs in the warm-up: docs/calibration.md) and
        "prior" for JAX models (there compiling the optimiser's gradient costs more than the cheaper
        warm-up saves); "mode" for the ensemble kernels
    dense_mass, regularize_mass_matrix : a dense mass matrix (default; a few parameters are often
        strongly correlated, e.g. diffusivity and source, 0.994) estimated *without* Stan's shrinkage
        towards ``1e-3 I`` (default off: that shrinkage swamps any direction whose posterior standard
        deviation is below ~0.01 in the unconstrained space: docs/calibration.md); NUTS only

    Returns
    -------
    ``arviz.InferenceData`` with groups ``posterior`` (one variable per parameter, dims ``chain, draw``),
    ``sample_stats`` (NumPyro's, ``diverging`` among them), ``observed_data`` (``y`` with the design
    as coordinates) and ``constant_data`` (fixed arrays of the design). ``posterior.attrs`` holds the
    model and its configuration, the priors, the ``kernel`` and its settings and the diagnostics:
    ``divergences``, ``max_rhat`` (``max_rhat_note`` for one chain), ``min_ess_bulk``, ``wall_time_s`` (and
    ``acceptance_rate`` for "aies").
    Divergences (NUTS) raise a :class:`DivergenceWarning`.

    Example::

        from inverse.calibration import calibrate
        from inverse.calibration.models import T2Relaxation
        import numpyro.distributions as dist
        m = T2Relaxation()
        y = m.simulate({"S0": 1.0, "T2": 80.0}, sigma=0.02, seed=0)
        idata = calibrate(m, y, {"T2": dist.Uniform(10, 300)}, sigma=dist.HalfNormal(0.1))
        idata.posterior["T2"].mean()
        gf = calibrate(m, y, {"T2": dist.Uniform(10, 300)}, sigma=0.02, kernel="ess")  # no gradients
    """
    setup = prepare(model, data, priors, sigma)
    if kernel not in KERNELS:
        raise UserError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    if num_chains is None:
        num_chains = 4 if kernel == "nuts" else default_walkers(setup.dim)
    check_run_settings(num_chains, num_warmup, num_samples, chain_method, target_accept_prob)
    if kernel in GRADIENT_FREE:
        check_walkers(kernel, int(num_chains), setup.dim)
        if chain_method != "vectorized" or not setup.model.vectorizable:
            raise UserError(f"kernel={kernel!r} runs an ensemble: it needs chain_method='vectorized' "
                            f"and a vectorizable model")
    elif chain_method == "vectorized" and not setup.model.vectorizable:
        chain_method = "sequential"
    if init not in ("auto", "laplace", "mode", "prior"):
        raise UserError(f"init must be 'auto', 'laplace', 'mode' or 'prior', got {init!r}")
    if init == "mode" and kernel == "nuts":
        raise UserError("init='mode' starts an ensemble (kernel='ess' or 'aies'); NUTS takes 'laplace' or 'prior'")
    if init == "auto":  # a torch model's warm-up costs solver runs; a JAX model's, mostly compilation
        init = ("laplace" if isinstance(setup.model, TorchModel) else "prior") if kernel == "nuts" else "mode"
    no_gradient = isinstance(setup.model, TorchModel) and not setup.model.differentiable
    if no_gradient and (kernel == "nuts" or init == "laplace"):
        raise UserError(f"{setup.model.name} is not differentiable: "
                        f"{'NUTS' if kernel == 'nuts' else 'the Laplace start'} needs gradients "
                        f"(use calibrate(..., kernel='ess'))")
    program = setup.numpyro_model()
    key_init, key_run = jax.random.split(jax.random.PRNGKey(int(seed)))
    evals0 = setup.model.evaluations if isinstance(setup.model, TorchModel) else 0
    t0 = time.perf_counter()
    lap = laplace_approximation(program, key_init) if init == "laplace" and init_strategy is None else None
    init_params, mass = None, None
    strategy = init_strategy or init_to_median(num_samples=15)
    if init == "mode":
        init_params = mode_start(program, key_init, int(num_chains), init_strategy=strategy)
    if lap is not None:
        init_params = lap.chain_starts(int(num_chains), key_init)
        if int(num_chains) == 1:
            init_params = jax.tree_util.tree_map(lambda a: a[0], init_params)
        mass = {tuple(sorted(lap.z_map)): jnp.asarray(lap.cov if dense_mass else np.diag(lap.cov))}
    if kernel == "nuts":
        mcmc_kernel: MCMCKernel = NUTS(
            program, target_accept_prob=float(target_accept_prob), max_tree_depth=int(max_tree_depth),
            dense_mass=bool(dense_mass), inverse_mass_matrix=mass, regularize_mass_matrix=bool(regularize_mass_matrix),
            init_strategy=strategy)
    else:
        mcmc_kernel = ensemble_kernel(kernel, program, strategy)
    mcmc = MCMC(mcmc_kernel, num_warmup=int(num_warmup), num_samples=int(num_samples), num_chains=int(num_chains),
                chain_method=chain_method, progress_bar=bool(progress_bar))
    with warnings.catch_warnings():
        # NumPyro warns that parallel chains fall back to sequential on one device; that is fine here
        warnings.filterwarnings("ignore", message="There are not enough devices")
        mcmc.run(key_run, init_params=init_params, extra_fields=_EXTRA_FIELDS if kernel == "nuts" else ())
    wall = time.perf_counter() - t0
    idata = az.from_numpyro(mcmc, log_likelihood=False)
    observed, const = _observed_group(setup)
    groups = {"observed_data": observed}
    if const.data_vars:
        groups["constant_data"] = const
    for name in groups:  # from_numpyro may add an empty observed_data group (the likelihood is a factor)
        if name in idata.groups():
            delattr(idata, name)
    idata.add_groups(groups)
    diag = diagnostics_attrs(idata, setup.names)
    attrs = {**setup.attrs(), "sampler": SAMPLER_NAMES[kernel], "kernel": kernel, "num_chains": int(num_chains),
             "num_warmup": int(num_warmup), "num_samples": int(num_samples), "seed": int(seed),
             "chain_method": chain_method}
    if kernel == "nuts":
        attrs.update({"target_accept_prob": float(target_accept_prob), "max_tree_depth": int(max_tree_depth),
                      "dense_mass": int(bool(dense_mass)), "regularize_mass_matrix": int(bool(regularize_mass_matrix))})
    elif kernel == "aies":
        attrs["acceptance_rate"] = acceptance_rate(np.stack([idata.posterior[k].values for k in setup.names], -1))
    started = "mode" if init == "mode" and init_params is not None else "prior median"
    attrs.update({"init": "laplace" if lap is not None else started, **diag,
                  "wall_time_s": wall, "numpyro_version": numpyro.__version__, "inverse_version": package_version(),
                  "calibrated_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")})
    if isinstance(setup.model, TorchModel):
        attrs["torch_evaluations"] = int(setup.model.evaluations - evals0)
    idata.posterior.attrs.update(attrs)
    if diag["divergences"]:
        total = int(num_chains) * int(num_samples)
        warnings.warn(f"{diag['divergences']} of {total} transitions after warm-up diverged "
                      f"({diag['divergences'] / total:.1%}); raise target_accept_prob or reparametrise",
                      DivergenceWarning, stacklevel=2)
    return idata
