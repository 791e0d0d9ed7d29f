"""Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari and Gelman 2018, arXiv:1804.06788).

If ``theta~ ~ p(theta)``, ``y ~ p(y | theta~)`` and ``theta_1..theta_L`` are draws from the posterior
``p(theta | y)``, then the rank ``r = #{l : theta_l < theta~}`` is uniform on ``{0, ..., L}`` for every
scalar parameter (Talts et al., Theorem 1). A sampler (or a model implementation) that is wrong makes
the ranks non-uniform: too many extreme ranks mean posteriors that are too narrow, a hump in the middle
too wide, a slope a bias. Here ``N`` replications are run at once: the prior draws, the simulated
data and ``N`` NUTS chains (each with its own warm-up) are vectorised in one compiled program. The
kept draws are thinned to reduce autocorrelation (which also distorts rank histograms), the ranks are
binned, and uniformity is tested per parameter with Pearson's chi-square test on ``bins - 1`` degrees
of freedom (expected counts proportional to the number of rank values in each bin).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import init_to_median
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model
from scipy import stats

from inverse.calibration.bridge import TorchModel
from inverse.calibration.core import NOISE_NAME, prepare
from inverse.errors import UserError

__all__ = ["SBCResult", "simulation_based_calibration", "rank_uniformity"]


@dataclass
class SBCResult:
    """Ranks ``(replications, parameters)`` in ``{0..num_draws}``, per-parameter chi-square statistics and p-values."""

    names: list[str]
    ranks: np.ndarray
    num_draws: int
    bins: int
    chi2: dict[str, float]
    p_values: dict[str, float]
    divergences: int
    truths: np.ndarray

    def histogram(self, name: str) -> np.ndarray:
        """Counts of ``name``'s ranks in each bin."""
        return np.bincount(_bin(self.ranks[:, self.names.index(name)], self.num_draws, self.bins),
                           minlength=self.bins)


def _bin(ranks: np.ndarray, num_draws: int, bins: int) -> np.ndarray:
    return (np.asarray(ranks) * bins) // (num_draws + 1)


def rank_uniformity(ranks, num_draws: int, bins: int) -> tuple[float, float]:
    """Pearson chi-square statistic and p-value of ranks in ``{0..num_draws}`` against the uniform law."""
    ranks = np.asarray(ranks)
    if bins < 2 or bins > num_draws + 1:
        raise UserError(f"bins must lie in 2..{num_draws + 1}, got {bins}")
    observed = np.bincount(_bin(ranks, num_draws, bins), minlength=bins)
    width = np.bincount(_bin(np.arange(num_draws + 1), num_draws, bins), minlength=bins)
    expected = len(ranks) * width / (num_draws + 1)
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    return chi2, float(stats.chi2.sf(chi2, bins - 1))


def simulation_based_calibration(model, priors=None, *, sigma=None, num_replications: int = 100,
                                 num_warmup: int = 300, num_samples: int = 400, thin: int = 4, bins: int = 10,
                                 seed: int = 0, data_sigma: float | None = None) -> SBCResult:
    """Run SBC for a JAX calibration model (module docstring).

    Parameters
    ----------
    model, priors, sigma : as for :func:`inverse.calibration.calibrate` (sigma known or a prior; with a
        prior, each replication draws its own sigma)
    num_replications : N prior draws / data sets / posteriors
    num_warmup, num_samples, thin : one NUTS chain per replication; ``num_samples // thin`` draws are ranked
    bins : histogram bins of the chi-square test
    data_sigma : simulate the data with this noise level instead (a deliberately wrong model, to check
        that SBC notices); default: the same as the inference

    Example::

        from inverse.calibration.sbc import simulation_based_calibration
        from inverse.calibration.models import T2Relaxation
        res = simulation_based_calibration(T2Relaxation(), sigma=0.02, num_replications=100)
        res.p_values          # {"S0": ..., "T2": ...}, uniform ranks -> p-values uniform on (0, 1)
    """
    for what, v, low in (("num_replications", num_replications, 2), ("num_warmup", num_warmup, 1),
                         ("num_samples", num_samples, 1), ("thin", thin, 1), ("bins", bins, 2)):
        if isinstance(v, bool) or int(v) != v or v < low:
            raise UserError(f"{what} must be an integer >= {low}, got {v}")
    probe = prepare(model, np.zeros(model.obs_shape), priors, sigma) if getattr(model, "obs_shape", None) else None
    if probe is None:
        raise UserError("simulation-based calibration needs a model with a known observation shape")
    if isinstance(probe.model, TorchModel):
        raise UserError("simulation-based calibration runs vectorised JAX models only (not the torch bridge)")
    m, names = probe.model, probe.names
    R, W, S = int(num_replications), int(num_warmup), int(num_samples)
    L = S // int(thin)
    if L < 1 or bins > L + 1:
        raise UserError(f"{L} ranked draws per replication are too few for {bins} bins")
    k_theta, k_sigma, k_noise, k_init, k_run = jax.random.split(jax.random.PRNGKey(int(seed)), 5)
    keys = jax.random.split(k_theta, len(probe.priors))
    truths = {k: p.sample(kk, (R,)) for (k, p), kk in zip(probe.priors.items(), keys, strict=False)}
    if probe.sigma_prior is not None:
        truths[NOISE_NAME] = probe.sigma_prior.sample(k_sigma, (R,))
    noise_sd = (truths[NOISE_NAME] if probe.sigma_prior is not None else jnp.full(R, probe.sigma))
    if data_sigma is not None:
        noise_sd = jnp.full(R, float(data_sigma))
    clean = jax.vmap(lambda th: m.predict(th))({k: truths[k] for k in probe.priors})
    eps = jax.random.normal(k_noise, clean.shape)
    ys = clean + noise_sd.reshape((R,) + (1,) * (clean.ndim - 1)) * eps
    program = probe.numpyro_model()
    info, potential_gen, postprocess_gen, _ = initialize_model(
        jax.random.split(k_init, R), program, model_args=(ys[0],), dynamic_args=True,
        init_strategy=init_to_median(num_samples=15))
    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")
    dense = [tuple(sorted(info.z))]

    def one(z0, y, key):
        state = init_kernel(z0, W, dense_mass=dense, regularize_mass_matrix=False, model_args=(y,), rng_key=key)

        def step(state, _):
            state = sample_kernel(state, model_args=(y,))
            return state, (postprocess_gen(y)(state.z), state.diverging)

        state, _ = jax.lax.scan(step, state, None, length=W)
        _, (draws, div) = jax.lax.scan(step, state, None, length=S)
        return draws, div

    draws, div = jax.jit(jax.vmap(one))(info.z, ys, jax.random.split(k_run, R))
    ranks = np.stack([np.sum(np.asarray(draws[k])[:, ::int(thin)][:, :L] < np.asarray(truths[k])[:, None], axis=1)
                      for k in names], axis=1)
    tests = {k: rank_uniformity(ranks[:, i], L, int(bins)) for i, k in enumerate(names)}
    return SBCResult(names, ranks, L, int(bins), {k: t[0] for k, t in tests.items()},
                     {k: t[1] for k, t in tests.items()}, int(np.sum(np.asarray(div))),
                     np.stack([np.asarray(truths[k]) for k in names], axis=1))
