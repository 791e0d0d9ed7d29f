"""The Gaussian-mixture exact-posterior benchmark (Cardoso, Janati, Le Corff and Moulines, ICLR 2024).

Prior: 25 components ``N(m_ij, I_d)`` with ``m_ij = (-8i, -8j, -8i, -8j, ...)`` for ``i, j`` in
{-2..2}, weights ``randn(25)^2`` normalised. Operator: ``A0 = randn(dy, d)``, ``(U, S, V^T) = svd(A0)``,
``s`` sorted ``uniform(0, 1)^dy`` descending, ``A = U diag(s) V^T[:dy]``. Truth ``x*`` from the prior,
``sigma_y = uniform(0, 1) * max(s)``, ``y = A x* + sigma_y e``. The exact posterior is a Gaussian
mixture (:meth:`priors.GaussianMixturePrior.posterior`).

The *floor* of a metric is its value between two independent exact sample sets of the size the
sampler produced: no sampler can be expected to do better.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from forward_models import Gaussian, InverseProblem, MatrixOperator
from inverse.metrics import mode_weight_tv, sliced_wasserstein
from priors import GaussianMixture, GaussianMixturePrior

__all__ = ["GMMCase", "averaged_sw_ratio", "evaluate_sampler", "gmm_case"]


@dataclass
class GMMCase:
    """One benchmark instance: prior, problem, exact posterior and evidence."""

    prior: GaussianMixturePrior
    problem: InverseProblem
    posterior: GaussianMixture
    log_evidence: float
    sigma_y: float
    seed: int


def gmm_case(d: int, dy: int, seed: int, *, device="cpu") -> GMMCase:
    """Build the benchmark instance for dimension ``d``, ``dy`` measurements and ``seed``."""
    if d < 2 or d % 2:
        raise ValueError(f"d must be an even number >= 2, got {d}")
    if not 1 <= dy <= d:
        raise ValueError(f"dy must lie in [1, d], got {dy}")
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
    """Run ``sampler`` on ``case`` and score it against exact samples (with the floor beside it).

    A weighted posterior (SMC) is scored as the weighted particle measure it is (``sw``, ``tv``);
    ``sw_resampled`` / ``tv_resampled`` score ``num_samples`` draws resampled from it (multinomial),
    which adds resampling noise on top of the sampler's own error. Unweighted posteriors: the same.
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

    ``x_r`` a fresh resampling of ``n = min(num_draws, len(posterior))`` draws from the (weighted)
    posterior, ``ref_r`` and ``ref'_r`` fresh exact ``n``-sets; ``posterior=None`` puts exact draws in the
    sampler's place (expected ratio 1). One floor pair is itself random (at dy = 1 a floor moved 2x
    between draws of one instance), so one ratio per seed mostly measures the floor's luck; averaging
    both sides estimates the ratio of expected distances. Returns ``{"ratio", "sw", "floor", "n"}``.
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
