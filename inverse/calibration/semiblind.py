"""Semi-blind calibration: Gibbs sampling of a field ``x`` and physical parameters ``theta`` together (``gibbs``).

When the data depend on an unknown field ``x`` (an image, a velocity model) *and* a few parameters
``theta`` (the noise level, a viscosity), the joint posterior ``p(x, theta | y) ∝ p(y | x, theta) p(x) p(theta)``
is sampled by alternating two conditional moves (Geman and Geman 1984; Gelfand and Smith 1990):

    1. x     ~ p(x | theta, y)                  -- the field step: any callable, e.g. the exact Gaussian
                                                   conditional, or a diffusion sampler (DPS, MCG) run for
                                                   the current theta (then approximate);
    2. theta ~ K_theta(. | theta; x, y)         -- ``nuts_steps`` NUTS transitions targeting
                                                   p(theta | x, y) ∝ p(y | x, theta) p(theta).

Step 2 leaves ``p(theta | x, y)`` invariant for the current ``x``, so with an exact field step the pair
is a valid Metropolis-within-Gibbs chain for the joint posterior (Tierney 1994, Ann. Statist. 22,
1701-1728). NUTS adapts its step size and (dense) mass matrix during the first ``num_warmup``
iterations, with the target changing as ``x`` moves (as NumPyro's ``HMCGibbs`` does); afterwards its
settings are frozen. After each field step the cached potential energy and gradient of the NUTS
state are recomputed for the new ``x``.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Callable, Mapping

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import torch
from numpyro.infer import init_to_uniform
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model
from tqdm.auto import tqdm

from inverse.calibration.core import diagnostics_attrs
from inverse.calibration.distributions import check_prior, describe_distribution
from inverse.errors import UserError

__all__ = ["gibbs", "gaussian_field_step", "sampler_field_step", "linear_gaussian_log_likelihood"]

FieldStep = Callable[[dict, np.ndarray, int], np.ndarray]


def _prior_medians(priors: Mapping[str, dist.Distribution], key) -> dict[str, float]:
    keys = jax.random.split(key, len(priors))
    return {k: float(np.median(np.asarray(p.sample(kk, (15,)))))
            for (k, p), kk in zip(priors.items(), keys, strict=False)}


def _seed(seed: int, chain: int, iteration: int) -> int:
    """A distinct, reproducible integer seed per (run, chain, iteration) for the field step."""
    return int(np.random.SeedSequence([int(seed), int(chain), int(iteration)]).generate_state(1)[0])


def gibbs(field_step: FieldStep, log_likelihood: Callable, priors: Mapping[str, dist.Distribution], y, *,
          num_chains: int = 2, num_warmup: int = 200, num_samples: int = 500, nuts_steps: int = 1, seed: int = 0,
          keep_field: bool = False, progress_bar: bool = False, target_accept_prob: float = 0.8,
          dense_mass: bool = True) -> az.InferenceData:
    """Gibbs sampler alternating ``x ~ field_step`` and NUTS on ``theta | x, y`` (module docstring).

    Parameters
    ----------
    field_step : ``(theta: dict of floats, y: ndarray, seed: int) -> x`` drawing the field given the
        parameters (numpy or torch output, any fixed shape)
    log_likelihood : JAX function ``(theta: dict, x: jax array, y: jax array) -> log p(y | x, theta)``
    priors : name -> NumPyro distribution of each parameter (bounded supports handled by transforms)
    y : the data
    num_chains, num_warmup, num_samples : chains; Gibbs iterations of warm-up (NUTS adaptation) and kept
    nuts_steps : NUTS transitions per Gibbs iteration
    keep_field : also store the field draws as the posterior variable ``field``
    progress_bar : a tqdm bar over Gibbs iterations

    Returns ``InferenceData``: posterior (the parameters, and ``field`` if kept), sample_stats
    (``diverging``, ``acceptance_rate``, ``n_steps`` of the last NUTS transition per iteration),
    observed_data (``y``, dimensions ``obs_dim_0, ...``), and the diagnostics in ``posterior.attrs``
    (``max_rhat``, or ``max_rhat_note`` = "R-hat needs >= 2 chains" for one chain).

    Example (unknown noise level under a Gaussian field prior, exact field step)::

        import numpyro.distributions as dist, torch
        from priors import GaussianPrior
        from forward_models import MatrixOperator
        from inverse.calibration.semiblind import gibbs, gaussian_field_step, linear_gaussian_log_likelihood
        A = torch.randn(12, 4, dtype=torch.float64); op = MatrixOperator(A)
        prior = GaussianPrior(torch.zeros(4, dtype=torch.float64), std=1.0)
        y = (A @ torch.randn(4, dtype=torch.float64) + 0.5 * torch.randn(12, dtype=torch.float64)).numpy()
        idata = gibbs(gaussian_field_step(prior, op), linear_gaussian_log_likelihood(A),
                      {"sigma_y": dist.HalfNormal(2.0)}, y)
    """
    for what, v, low in (("num_chains", num_chains, 1), ("num_warmup", num_warmup, 0),
                         ("num_samples", num_samples, 1), ("nuts_steps", nuts_steps, 1)):
        if isinstance(v, bool) or int(v) != v or v < low:
            raise UserError(f"{what} must be an integer >= {low}, got {v}")
    if not callable(field_step) or not callable(log_likelihood):
        raise TypeError("field_step and log_likelihood must be callables")
    priors = {k: check_prior(k, p) for k, p in dict(priors).items()}
    if not priors:
        raise UserError("gibbs needs at least one parameter prior")
    y_np = np.asarray(y, dtype=np.float64)
    if not np.isfinite(y_np).all():
        raise UserError(f"the data contain {int((~np.isfinite(y_np)).sum())} NaN or Inf value(s)")
    y_j = jnp.asarray(y_np)

    def param_model(x):
        theta = {name: numpyro.sample(name, p) for name, p in priors.items()}
        numpyro.factor("log_likelihood", log_likelihood(theta, x, y_j))

    def field(theta: dict, chain: int, it: int) -> np.ndarray:
        x = field_step({k: float(v) for k, v in theta.items()}, y_np, _seed(seed, chain, it))
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        x = x.astype(np.float64)
        if not np.isfinite(x).all():
            raise UserError(f"the field step returned NaN or Inf (chain {chain}, iteration {it})")
        return x

    t_start = time.perf_counter()
    C, W, S = int(num_chains), int(num_warmup), int(num_samples)
    key_med, key_init, key_run = jax.random.split(jax.random.PRNGKey(int(seed)), 3)
    x_med = field(_prior_medians(priors, key_med), C, 0)  # chain index C: a seed no chain uses
    info, potential_gen, postprocess_gen, _ = initialize_model(
        jax.random.split(key_init, C), param_model, model_args=(jnp.asarray(x_med),), dynamic_args=True,
        init_strategy=init_to_uniform)
    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")
    names = list(priors)
    dense = [tuple(sorted(info.z))] if dense_mass else []

    @jax.jit
    def constrain(z, x):
        return postprocess_gen(x)(z)

    @jax.jit
    def nuts(state, x):
        pe, grad = jax.value_and_grad(potential_gen(x))(state.z)  # the target moved with x
        state = state._replace(potential_energy=pe, z_grad=grad)
        for _ in range(int(nuts_steps)):
            state = sample_kernel(state, model_args=(x,))
        return state

    states, xs = [], []
    for c, key in enumerate(jax.random.split(key_run, C)):
        z_c = jax.tree_util.tree_map(lambda a, c=c: a[c], info.z)
        x_c = jnp.asarray(field(constrain(z_c, jnp.asarray(x_med)), c, 0))
        states.append(init_kernel(z_c, W * int(nuts_steps), dense_mass=dense,
                                  target_accept_prob=float(target_accept_prob),
                                  regularize_mass_matrix=False, model_args=(x_c,), rng_key=key))
        xs.append(x_c)
    draws = {k: np.zeros((C, S)) for k in names}
    stats = {"diverging": np.zeros((C, S), bool), "acceptance_rate": np.zeros((C, S)), "n_steps": np.zeros((C, S), int)}
    fields = np.zeros((C, S) + x_med.shape) if keep_field else None
    with tqdm(total=C * (W + S), disable=not progress_bar, desc="Gibbs", leave=False) as bar:
        for it in range(W + S):
            for c in range(C):
                states[c] = nuts(states[c], xs[c])
                theta = constrain(states[c].z, xs[c])
                xs[c] = jnp.asarray(field(theta, c, it + 1))
                if it >= W:
                    j = it - W
                    for k in names:
                        draws[k][c, j] = float(theta[k])
                    stats["diverging"][c, j] = bool(states[c].diverging)
                    stats["acceptance_rate"][c, j] = float(states[c].accept_prob)
                    stats["n_steps"][c, j] = int(states[c].num_steps)
                    if keep_field:
                        fields[c, j] = np.asarray(xs[c])
                bar.update(1)
    posterior = dict(draws)
    if keep_field:
        posterior["field"] = fields
    obs_dims = [f"obs_dim_{i}" for i in range(y_np.ndim)]  # the fallback names of calibrate's observed_data
    idata = az.from_dict(posterior=posterior, sample_stats=stats, observed_data={"y": y_np}, dims={"y": obs_dims})
    diag = diagnostics_attrs(idata, names)
    idata.posterior.attrs.update({
        "sampler": "Gibbs: field step + NUTS (NumPyro)",
        "field_step": getattr(field_step, "__name__", repr(field_step)),
        "parameters": json.dumps(names), "priors": json.dumps({k: describe_distribution(p) for k, p in priors.items()}),
        "num_chains": C, "num_warmup": W, "num_samples": S, "nuts_steps": int(nuts_steps), "seed": int(seed), **diag,
        "wall_time_s": time.perf_counter() - t_start,
        "calibrated_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")})
    return idata


def linear_gaussian_log_likelihood(matrix, sigma_name: str = "sigma_y") -> Callable:
    """``log N(y; A x, sigma^2 I)`` as a JAX function ``(theta, x, y)``, ``sigma = theta[sigma_name]``.

    ``matrix``: the (m, d) matrix ``A`` (numpy, torch or a :class:`forward_models.MatrixOperator`).
    """
    A = matrix.matrix() if hasattr(matrix, "matrix") else matrix
    A = jnp.asarray(A.detach().cpu().numpy() if isinstance(A, torch.Tensor) else np.asarray(A), dtype=jnp.float64)

    def log_likelihood(theta, x, y):
        return jnp.sum(dist.Normal(A @ x.reshape(-1), theta[sigma_name]).log_prob(y.reshape(-1)))

    return log_likelihood


def gaussian_field_step(prior, operator, sigma_name: str = "sigma_y") -> FieldStep:
    """The exact field conditional ``x | sigma_y, y`` for ``y = A x + sigma_y e`` under a Gaussian prior.

    ``prior`` is a :class:`priors.GaussianPrior` ``N(m, C)``; the conditional is Gaussian with
    ``mu = m + C A^T (A C A^T + sigma_y^2 I)^{-1} (y - A m)`` and ``Sigma = C - C A^T (A C A^T + sigma_y^2 I)^{-1} A C``
    (:meth:`priors.GaussianPrior.posterior`).
    """
    A = operator.matrix() if hasattr(operator, "matrix") else torch.as_tensor(operator)
    A = A.detach().to(torch.float64)

    def exact_gaussian_conditional(theta, y, seed):
        post = prior.posterior(A, torch.as_tensor(y, dtype=torch.float64), sigma_y=float(theta[sigma_name]))
        return post.sample(1, torch.Generator().manual_seed(int(seed)))[0].reshape(prior.shape)

    return exact_gaussian_conditional


def sampler_field_step(sampler, prior, forward_model, sigma_name: str = "sigma_y") -> FieldStep:
    """A field step by a posterior sampler of :mod:`samplers` (e.g. ``DPS``) for the current noise level.

    Each call builds ``InverseProblem(forward_model, y, Gaussian(theta[sigma_name]))`` and draws one
    sample with ``sampler.sample(problem, prior, 1, seed=seed)``. Approximate: the Gibbs chain then
    targets the joint posterior only as well as the sampler targets ``x | theta, y``.
    """
    from forward_models.noise import Gaussian
    from forward_models.problem import InverseProblem

    def diffusion_sampler_conditional(theta, y, seed):
        y_t = torch.as_tensor(y, dtype=prior.dtype, device=prior.device)
        problem = InverseProblem(forward_model, y_t, Gaussian(float(theta[sigma_name])))
        return sampler.sample(problem, prior, 1, seed=int(seed)).samples[0]

    return diffusion_sampler_conditional
