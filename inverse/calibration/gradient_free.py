"""Gradient-free kernels for :func:`~inverse.calibration.calibrate`: NumPyro's ensemble samplers, run by ``MCMC``.

``calibrate(..., kernel="ess")`` or ``kernel="aies"`` samples the same target as NUTS, the unconstrained
posterior ``p(z | y) ∝ exp(-U(z))`` of the same NumPyro program, but evaluates only ``U(z)``, never its
gradient, so a torch forward model without autograd runs through the bridge (value-only callbacks,
one batch per call). Both are *ensemble* kernels: the ``C`` chains are the walkers of one ensemble,
split into two halves; each half moves using the positions of the other (the complementary ensemble),
so the proposals learn the posterior's scale and correlations without a tuned proposal covariance.

- ``"ess"``, ensemble slice sampling (Karamanis and Beutler 2021, "Ensemble slice sampling",
  Statistics and Computing 31, 61; NumPyro's :class:`numpyro.infer.ESS`): walker ``z`` slice-samples
  along ``d = 2 mu (z_j - z_k)`` for two walkers ``j != k`` of the other half (differential move):
  a level ``log u = -U(z) - E``, ``E ~ Exp(1)``, then stepping out and shrinkage along ``z + t d``
  (Neal 2003, "Slice sampling", Annals of Statistics 31, 705-767). Every move is accepted; ``mu``
  is set after each iteration to ``2 N_expand / (N_expand + N_contract)``.
- ``"aies"``, affine-invariant ensemble sampling (Goodman and Weare 2010, Communications in Applied
  Mathematics and Computational Science 5, 65-80; Foreman-Mackey et al. 2013, PASP 125, 306;
  :class:`numpyro.infer.AIES`) with the differential-evolution move ``z' = z + gamma (z_j - z_k)``,
  ``gamma ~ N(g, (1e-5 g)^2)``, ``g = 2.38 / sqrt(2 p)`` (ter Braak 2006, Statistics and Computing 16,
  239-249), accepted with probability ``min(1, exp(U(z) - U(z')))``.

Both need ``chain_method="vectorized"`` and an even number of walkers, at least twice the dimension
``p`` of ``z``; the default is :func:`default_walkers`. An ensemble only explores well from walkers that
all sit in the posterior's typical set: a walker left far out (say, in the flat tail of a bounded prior's
logit) moves by steps the size of the other walkers' spread and can stay there for thousands of
iterations. So the walkers start as emcee advises (Foreman-Mackey et al. 2013, section 4), in a small
ball around the posterior mode, found from values only (:func:`mode_start`: Nelder-Mead, Gao and Han
2012's adaptive parameters, then a diagonal curvature by central differences). Walkers of one ensemble
are not independent chains, so R-hat and bulk ESS over walkers (ArviZ) are a guide rather than a guarantee; the
calibration tests check the draws against exact posteriors. The comparison that chose ``"ess"`` as the
gradient-free default is in docs/calibration.md.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.distributions.transforms import biject_to
from numpyro.infer import AIES, ESS
from numpyro.infer.util import initialize_model
from scipy import optimize

from inverse.errors import UserError

__all__ = ["KERNELS", "GRADIENT_FREE", "SAMPLER_NAMES", "default_walkers", "check_walkers", "ensemble_kernel",
           "acceptance_rate", "mode_start", "unconstrained_dim"]

#: every kernel :func:`~inverse.calibration.calibrate` runs; the first is the default
KERNELS = ("nuts", "ess", "aies")
#: the kernels that never ask for a gradient
GRADIENT_FREE = ("ess", "aies")
#: the ``sampler`` attribute of the posterior for each kernel
SAMPLER_NAMES = {"nuts": "NUTS (NumPyro)", "ess": "ensemble slice sampling (NumPyro ESS)",
                 "aies": "affine-invariant ensemble sampling (NumPyro AIES)"}


def unconstrained_dim(distributions) -> int:
    """Dimension ``p`` of the unconstrained space of ``distributions`` (one sample site each)."""
    total = 0
    for d in distributions:
        shape = biject_to(d.support).inverse_shape(tuple(d.batch_shape) + tuple(d.event_shape))
        total += int(np.prod(shape))
    return total


def default_walkers(dim: int) -> int:
    """Walkers of an ensemble in ``dim`` unconstrained dimensions: ``max(8, 2 dim)``, rounded up to even."""
    n = max(8, 2 * int(dim))
    return n + n % 2


def check_walkers(kernel: str, num_chains: int, dim: int) -> None:
    """One-line :class:`~inverse.errors.UserError` unless ``num_chains`` is even and at least ``max(4, 2 dim)``."""
    low = max(4, 2 * int(dim))
    if num_chains % 2 or num_chains < low:
        raise UserError(f"kernel={kernel!r} runs an ensemble: num_chains must be even and at least {low} "
                        f"(twice the {dim} unconstrained parameters, and 4), got {num_chains}")


def ensemble_kernel(kernel: str, program, init_strategy) -> AIES | ESS:
    """NumPyro's ensemble kernel ``kernel`` ("ess" or "aies", default moves) for the NumPyro ``program``."""
    if kernel == "ess":
        return ESS(program, init_strategy=init_strategy)
    if kernel == "aies":
        return AIES(program, init_strategy=init_strategy)
    raise UserError(f"no gradient-free kernel {kernel!r} (choose from {', '.join(GRADIENT_FREE)})")


def acceptance_rate(draws: np.ndarray) -> float:
    """Fraction of walker moves between consecutive kept draws (``draws``: ``(chain, draw, ...)``): AIES's
    acceptance rate, since a rejected proposal leaves a walker where it was."""
    moved = np.any(np.diff(draws.reshape(draws.shape[0], draws.shape[1], -1), axis=1) != 0, axis=-1)
    return float(moved.mean()) if moved.size else float("nan")



def mode_start(program, key, num_chains: int, *, init_strategy, max_evaluations: int = 3000, ball: float = 0.1):
    """Walkers ``z* + ball * s * xi`` (``xi ~ N(0, I)``) around the mode ``z*`` of ``U`` in the unconstrained space.

    ``z*`` is found by Nelder-Mead from ``init_strategy``'s point (values only, at most ``max_evaluations``),
    ``s_i = (d^2 U / d z_i^2)^(-1/2)`` by central differences (a coordinate with no positive curvature keeps
    the difference step). Returns the starts as a batched dict of unconstrained sites, or None when ``U``
    is not finite at the first point.
    """
    k_init, k_ball = jax.random.split(key)
    info, potential_fn, _, _ = initialize_model(k_init, program, init_strategy=init_strategy, validate_grad=False)
    flat0, unravel = ravel_pytree(info.z)
    value = jax.jit(lambda zf: potential_fn(unravel(zf)))

    def u(zf) -> float:
        v = float(value(np.asarray(zf, dtype=np.float64)))
        return v if np.isfinite(v) else np.inf

    x0 = np.asarray(flat0, dtype=np.float64)
    if not np.isfinite(u(x0)):
        return None
    res = optimize.minimize(u, x0, method="Nelder-Mead",
                            options={"maxfev": int(max_evaluations), "xatol": 1e-8, "fatol": 1e-10, "adaptive": True})
    z = np.asarray(res.x) if np.isfinite(res.fun) and res.fun <= u(x0) else x0
    uz, h = u(z), 1e-3 * (1.0 + np.abs(z))
    scale = h.copy()
    for i in range(z.size):
        e = np.zeros_like(z)
        e[i] = h[i]
        d2 = (u(z + e) - 2.0 * uz + u(z - e)) / h[i] ** 2
        if np.isfinite(d2) and d2 > 0:
            scale[i] = 1.0 / np.sqrt(d2)
    xi = np.asarray(jax.random.normal(k_ball, (int(num_chains), z.size)), dtype=np.float64)
    return jax.vmap(unravel)(z + float(ball) * scale * xi)
