"""Adaptive random-walk Metropolis: the gradient-free baseline for :func:`~inverse.calibration.calibrate`.

In the unconstrained space ``z`` of the same NumPyro program that NUTS samples (so the target,
``U(z) = -log p(theta(z), sigma(z) | y) - log |det J|``, is identical), each chain proposes

    z' = z + s_c L xi,     xi ~ N(0, I),     accepted with probability min(1, exp(U(z) - U(z'))),

with ``L L^T`` the posterior covariance estimated from the warm-up draws (pooled over chains,
re-estimated at the end of warm-up windows of doubling length (the warm-up is rounded up to whole
chunks of 50 iterations); Haario, Saksman and Tamminen 2001, Bernoulli 7,
223-242) and the per-chain scale ``s_c = exp(l_c)`` adapted during warm-up by Robbins-Monro,
``l_c += t^(-0.6) (alpha_t - 0.234)`` towards the acceptance rate that is optimal in high dimension
(Roberts, Gelman and Gilks 1997, Ann. Appl. Probab. 7, 110-120); ``s`` starts at ``2.38 / sqrt(d)``.
After warm-up the proposal is frozen, so the kept draws form a valid Metropolis chain. All chains
advance together in one ``vmap`` (a torch model through the bridge sees one batch per step, value only).
"""

from __future__ import annotations

import datetime as _dt
import time

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer import init_to_median
from numpyro.infer.util import initialize_model

from inverse.calibration.bridge import TorchModel
from inverse.calibration.core import check_run_settings, diagnostics_attrs, prepare

__all__ = ["random_walk_metropolis"]

_TARGET_ACCEPT = 0.234


_CHUNK = 50  # iterations per compiled call: every call has the same shapes, so one compilation serves all


def _windows(num_warmup: int) -> list[int]:
    """Warm-up windows in chunks, of doubling length (the last takes the remainder, rounded up)."""
    sizes, size, left = [], 1, -(-int(num_warmup) // _CHUNK)
    while left > 0:
        n = left if left < 2 * size else size
        sizes.append(n)
        left -= n
        size *= 2
    return sizes


def _make_runner(potential, dim: int):
    """A jitted ``(state, chol, adapt, t0, keys) -> (state, draws, accept)`` scan over iterations, vmapped over chains."""

    def one_chain(state, chol, adapt, t0, keys):
        def step(carry, xs):
            z, u, log_s = carry
            t, key = xs
            k1, k2 = jax.random.split(key)
            prop = z + jnp.exp(log_s) * chol @ jax.random.normal(k1, (dim,))
            u_prop = potential(prop)
            log_alpha = jnp.where(jnp.isfinite(u_prop), u - u_prop, -jnp.inf)
            alpha = jnp.exp(jnp.minimum(log_alpha, 0.0))
            accept = jnp.log(jax.random.uniform(k2)) < log_alpha
            z, u = jnp.where(accept, prop, z), jnp.where(accept, u_prop, u)
            log_s = jnp.where(adapt, log_s + (t0 + t + 1.0) ** -0.6 * (alpha - _TARGET_ACCEPT), log_s)
            return (z, u, log_s), (z, alpha)

        ts = jnp.arange(keys.shape[0], dtype=jnp.float64)
        return jax.lax.scan(step, state, (ts, keys))

    return jax.jit(jax.vmap(one_chain, in_axes=(0, None, None, None, 0)))


def random_walk_metropolis(model, data, priors=None, *, sigma=None, num_chains: int = 4, num_warmup: int = 2000,
                           num_samples: int = 2000, seed: int = 0) -> az.InferenceData:
    """Sample the calibration posterior by adaptive random-walk Metropolis (module docstring).

    Arguments as for :func:`inverse.calibration.calibrate`; returns the same ``InferenceData`` layout
    (``sample_stats`` holds ``acceptance_rate``; ``posterior.attrs`` the diagnostics and ``wall_time_s``).

    Example::

        from inverse.calibration.rwm import random_walk_metropolis
        from inverse.calibration.models import T2Relaxation
        m = T2Relaxation()
        idata = random_walk_metropolis(m, m.simulate(m.default_truth(), 0.02), sigma=0.02)
    """
    setup = prepare(model, data, priors, sigma)
    check_run_settings(num_chains, num_warmup, num_samples, "vectorized", 0.5)
    evals0 = setup.model.evaluations if isinstance(setup.model, TorchModel) else 0
    t_start = time.perf_counter()
    key_init, key_run = jax.random.split(jax.random.PRNGKey(int(seed)))
    info, potential_fn, postprocess_fn, _ = initialize_model(
        jax.random.split(key_init, int(num_chains)), setup.numpyro_model(), init_strategy=init_to_median(num_samples=15))
    z_init = info.z
    _, unravel = ravel_pytree(jax.tree_util.tree_map(lambda a: a[0], z_init))
    z = jax.vmap(lambda tree: ravel_pytree(tree)[0])(z_init)
    dim = z.shape[1]
    potential = lambda zf: potential_fn(unravel(zf))  # noqa: E731
    run = _make_runner(potential, dim)
    state = (z, jax.vmap(potential)(z), jnp.full(int(num_chains), np.log(2.38 / np.sqrt(dim))))
    chol = 0.1 * jnp.eye(dim)
    C = int(num_chains)

    def advance(state, chol, adapt, t, key, chunks):
        draws, alphas = [], []
        for k in jax.random.split(key, chunks):
            state, (d, a) = run(state, chol, adapt, float(t), jax.random.split(k, C * _CHUNK).reshape(C, _CHUNK, -1))
            draws.append(d)
            alphas.append(a)
            t += _CHUNK
        return state, np.concatenate(draws, 1), np.concatenate(alphas, 1), t

    windows = _windows(num_warmup)
    keys = jax.random.split(key_run, len(windows) + 1)
    t = 0
    for chunks, k in zip(windows, keys[:-1], strict=False):
        state, draws, _, t = advance(state, chol, True, t, k, chunks)
        flat = draws.reshape(-1, dim)
        cov = np.atleast_2d(np.cov(flat, rowvar=False))
        if np.all(np.isfinite(cov)) and np.linalg.eigvalsh(cov).min() > 0:
            chol = jnp.asarray(np.linalg.cholesky(cov + 1e-12 * np.trace(cov) / dim * np.eye(dim)))
    state, draws, alpha, _ = advance(state, chol, False, t, keys[-1], -(-int(num_samples) // _CHUNK))
    draws, alpha = draws[:, : int(num_samples)], alpha[:, : int(num_samples)]
    constrained = jax.vmap(jax.vmap(lambda zf: postprocess_fn(unravel(zf))))(draws)
    wall = time.perf_counter() - t_start
    posterior = {k: np.asarray(constrained[k]) for k in setup.names}
    idata = az.from_dict(posterior=posterior, sample_stats={"acceptance_rate": np.asarray(alpha)})
    attrs = {**setup.attrs(), "sampler": "adaptive random-walk Metropolis", "num_chains": int(num_chains),
             "num_warmup": int(num_warmup), "num_samples": int(num_samples), "seed": int(seed),
             **diagnostics_attrs(idata, setup.names), "acceptance_rate": float(np.mean(alpha)),
             "wall_time_s": wall, "calibrated_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    if isinstance(setup.model, TorchModel):
        attrs["torch_evaluations"] = int(setup.model.evaluations - evals0)
    idata.posterior.attrs.update(attrs)
    return idata
