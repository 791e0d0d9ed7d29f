"""DAPS, PnP-DM, DiffPIR and DDRM against exact answers.

- the likelihood step of :mod:`samplers.splitting`: the exact draw has the closed-form Gaussian moments, the Langevin
  draw approaches them, the blurred likelihood matches its dense formula, the curvature estimate is ``||A||^2 /
  sigma_y^2``;
- PnP-DM's Gibbs kernel leaves the exact Gaussian-mixture posterior invariant as ``rho -> 0`` (its asymptotic
  exactness), and visibly not at large ``rho``;
- the level each sampler reaches on the Gaussian-mixture benchmark (sliced Wasserstein over the floor of two exact
  sample sets, fixed seeds), and the posterior mean of a linear-Gaussian problem against the exact one;
- refusals: DDRM and the exact step on a non-linear model, the Langevin step on a model without gradients.
"""

import math
import statistics

import pytest
import torch

from forward_models import Gaussian, InverseProblem, MatrixOperator
from inverse.metrics import sliced_wasserstein
from inverse.problems import evaluate_sampler, gmm_case
from priors import GaussianPrior
from samplers import SamplerConfigError, get_sampler
from samplers.pnp_dm import denoising_posterior_sample
from samplers.splitting import (
    blurred_log_likelihood,
    data_curvature,
    gaussian_likelihood_step,
    langevin_likelihood_step,
)

F64 = torch.float64


def _gaussian_case(seed=0, sigma_y=0.2):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(2, 6, dtype=F64, generator=g)
    prior = GaussianPrior(torch.zeros(6))
    truth = torch.randn(6, dtype=F64, generator=g)
    problem = InverseProblem.simulate(MatrixOperator(A), Gaussian(sigma_y), truth, seed=seed)
    return A, prior, problem


def _anchored_moments(A, y, sigma_y, z, rho):
    """Mean and covariance of N(x; z, rho^2 I) N(y; A x, sigma_y^2 I)."""
    precision = torch.eye(A.shape[1], dtype=F64) / rho**2 + A.T @ A / sigma_y**2
    cov = torch.linalg.inv(precision)
    return cov @ (z / rho**2 + A.T @ y / sigma_y**2), cov


def test_exact_likelihood_step_has_the_gaussian_moments():
    A, prior, problem = _gaussian_case()
    z0 = torch.linspace(-1, 1, 6, dtype=F64)
    mean, cov = _anchored_moments(A, problem.y, 0.2, z0, 0.7)
    g = torch.Generator().manual_seed(1)
    x = gaussian_likelihood_step(problem, prior, z0.expand(40000, 6).clone(), 0.7, g)
    assert float((x.mean(0) - mean).abs().max()) < 0.02
    assert float((torch.cov(x.T) - cov).abs().max()) < 0.02
    mode = gaussian_likelihood_step(problem, prior, z0[None], 0.7, g, sample=False)[0]
    assert torch.allclose(mode, mean, atol=1e-8)


def test_langevin_step_approaches_the_gaussian_moments():
    A, prior, problem = _gaussian_case()
    z0 = torch.linspace(-1, 1, 6, dtype=F64)
    mean, cov = _anchored_moments(A, problem.y, 0.2, z0, 0.7)
    curvature = data_curvature(problem, prior, z0[None])
    g = torch.Generator().manual_seed(2)
    x = langevin_likelihood_step(problem, prior, z0.expand(4000, 6).clone(), 0.7, g, num_steps=5000,
                                 curvature=curvature, step_scale=0.2)
    assert float((x.mean(0) - mean).norm()) < 0.05 * float(mean.norm()) + 0.03
    rel_cov = float((torch.cov(x.T) - cov).norm() / cov.norm())
    assert rel_cov < 0.15, rel_cov
    descent = langevin_likelihood_step(problem, prior, z0[None], 0.7, g, num_steps=2000, curvature=curvature,
                                       step_scale=0.9, sample=False)[0]
    assert torch.allclose(descent, mean, atol=1e-4)


def test_curvature_is_the_largest_eigenvalue_of_the_data_term():
    A, prior, problem = _gaussian_case(sigma_y=0.3)
    exact = float(torch.linalg.eigvalsh(A.T @ A)[-1]) / 0.3**2
    est = data_curvature(problem, prior, torch.zeros(3, 6, dtype=F64), iterations=50)
    assert est == pytest.approx(exact, rel=1e-3)


def test_blurred_likelihood_matches_its_dense_formula():
    A, prior, problem = _gaussian_case()
    x = torch.randn(5, 6, dtype=F64, generator=torch.Generator().manual_seed(3))
    rho = 0.8
    S = 0.2**2 * torch.eye(2, dtype=F64) + rho**2 * A @ A.T
    r = problem.y[None] - x @ A.T
    dense = -0.5 * torch.einsum("bi,ij,bj->b", r, torch.linalg.inv(S), r)
    assert torch.allclose(blurred_log_likelihood(problem, prior, x, rho), dense, atol=1e-8)


def _kernel_sw(rho: float) -> tuple[float, float]:
    """SW between the exact GMM posterior pushed through 5 PnP-DM sweeps at ``rho`` and a fresh exact set, and the
    floor of two exact sets."""
    case = gmm_case(8, 2, 1)
    g = torch.Generator().manual_seed(0)
    x = case.posterior.sample(2000, g)
    ref, ref2 = case.posterior.sample(2000, g), case.posterior.sample(2000, g)
    for _ in range(5):
        z = gaussian_likelihood_step(case.problem, case.prior, x, rho, g)
        x, _ = denoising_posterior_sample(case.prior, z, rho, 20, g)
    return sliced_wasserstein(x, ref, 500, seed=0), sliced_wasserstein(ref2, ref, 500, seed=0)


def test_pnp_dm_kernel_keeps_the_exact_posterior_as_rho_goes_to_zero():
    sw_small, floor = _kernel_sw(0.05)
    sw_large, _ = _kernel_sw(2.0)
    assert sw_small < 1.3 * floor, (sw_small, floor)  # measured 1.14x
    assert sw_large > 3 * floor, (sw_large, floor)  # the blurred likelihood's posterior is another distribution


def _gmm_ratios(name, settings, cells=((8, 2),), seeds=(0, 1, 2), n=500):
    out = []
    for d, dy in cells:
        for seed in seeds:
            r = evaluate_sampler(gmm_case(d, dy, seed), get_sampler(name, **settings), n, seed=seed, num_slices=500)
            out.append(r["sw"] / r["sw_floor"])
    return out


def test_pnp_dm_reaches_the_floor_on_the_gaussian_mixture():
    ratios = _gmm_ratios("pnp-dm", {}, cells=((8, 2), (8, 4)))
    assert statistics.median(ratios) < 1.5, ratios
    unweighted = _gmm_ratios("pnp-dm", {"reweight": False}, cells=((8, 4),))
    assert statistics.median(unweighted) > 3 * statistics.median(ratios), unweighted  # what the weights buy


#: measured median SW / floor at d = 8, dy = 2, seeds 0-2, 500 samples (the approximate samplers); the bound leaves
#: a quarter for platform noise
MEASURED_GMM_LEVEL = {"ddrm": 29.9, "diffpir": 32.3, "daps": 33.0}


@pytest.mark.parametrize("name", sorted(MEASURED_GMM_LEVEL))
def test_approximate_samplers_keep_their_measured_gaussian_mixture_level(name):
    level = statistics.median(_gmm_ratios(name, {}))
    assert math.isfinite(level) and level < 1.25 * MEASURED_GMM_LEVEL[name], level


@pytest.mark.parametrize("name", ["daps", "pnp-dm", "diffpir", "ddrm"])
def test_posterior_mean_of_a_linear_gaussian_problem(name):
    A, prior, problem = _gaussian_case()
    mean, _ = _anchored_moments(A, problem.y, 0.2, torch.zeros(6, dtype=F64), 1.0)
    post = get_sampler(name).sample(problem, prior, 2000, seed=0)
    assert float((post.mean() - mean).norm()) < 0.12 * float(mean.norm()), (post.mean(), mean)


class _Squared(MatrixOperator):
    """A non-linear model: ``(A x)^2``."""

    linear = False

    def forward(self, x):
        return super().forward(x) ** 2


class _BlackBox(_Squared):
    differentiable = False


def test_refusals_name_the_problem():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(2, 6, dtype=F64, generator=g)
    prior = GaussianPrior(torch.zeros(6))
    problem = InverseProblem.simulate(_Squared(A), Gaussian(0.1), torch.ones(6, dtype=F64), seed=0)
    with pytest.raises(SamplerConfigError, match="DDRM needs a linear forward model"):
        get_sampler("ddrm").sample(problem, prior, 4)
    with pytest.raises(SamplerConfigError, match="exact likelihood step needs a linear forward model"):
        get_sampler("daps", likelihood_step="exact").sample(problem, prior, 4)
    black = InverseProblem.simulate(_BlackBox(A), Gaussian(0.1), torch.ones(6, dtype=F64), seed=0)
    for name in ("daps", "pnp-dm", "diffpir"):
        with pytest.raises(SamplerConfigError, match="not differentiable; use the derivative-free"):
            get_sampler(name).sample(black, prior, 4)
    with pytest.raises(SamplerConfigError, match="likelihood_step must be one of auto, exact, langevin"):
        get_sampler("pnp-dm", likelihood_step="magic")
    post = get_sampler("daps", num_steps=10, langevin_steps=5).sample(problem, prior, 8, seed=0)
    assert torch.isfinite(post.samples).all() and post.config["sampler"]["likelihood_step"] == "auto"


def test_tamed_langevin_stays_finite_when_the_curvature_is_underestimated():
    """With the curvature taken as 0 the plain step is far too long for this data term: plain gradient descent
    overflows, the capped drift keeps every move within DRIFT_CAP anchor radii. With the true curvature the cap
    never binds: the iterates are plain ULA's."""
    from samplers.splitting import DRIFT_CAP

    A, prior, problem = _gaussian_case(sigma_y=0.01)
    z0 = torch.zeros(4, 6, dtype=F64)
    x = langevin_likelihood_step(problem, prior, z0, 10.0, torch.Generator().manual_seed(0), num_steps=300,
                                 curvature=0.0, step_scale=1.0, sample=False)
    h = 1.0 / (1.0 / 10.0**2)
    assert torch.isfinite(x).all()
    assert float(x.norm(dim=1).max()) <= 300 * DRIFT_CAP * 10.0 * math.sqrt(6)
    plain = z0.clone()
    with torch.no_grad():
        for _ in range(300):
            plain = plain - h * ((plain @ A.T - problem.y) @ A / 0.01**2 + plain / 10.0**2)
    assert not torch.isfinite(plain).all()
    curvature = data_curvature(problem, prior, z0)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    tamed = langevin_likelihood_step(problem, prior, z0, 0.5, g1, num_steps=50, curvature=curvature)
    h = 0.5 / (curvature + 1 / 0.25)
    ula = z0.clone()
    for _ in range(50):
        grad = (ula @ A.T - problem.y) @ A / 0.01**2 + ula / 0.25
        ula = ula - h * grad + math.sqrt(2 * h) * torch.randn(ula.shape, dtype=F64, generator=g2)
    assert torch.allclose(tamed, ula, atol=1e-8)


def test_daps_last_level_is_sigma_min_and_sets_the_spread():
    """``sigma_min`` is DAPS's last annealing level (the anchor width of the returned draw); at or above the prior's
    ``sigma_max`` it is refused. A wider last level spreads the draws in the directions the data leave free."""
    A, prior, problem = _gaussian_case()
    g = torch.Generator().manual_seed(0)
    state = get_sampler("daps", num_steps=12, sigma_min=0.3).init(problem, prior, 4, g)
    assert state.sigmas[-2] == pytest.approx(0.3) and state.sigmas[-1] == 0.0
    with pytest.raises(SamplerConfigError, match="sigma_min=100 must be below the prior's sigma_max"):
        get_sampler("daps", sigma_min=100.0).sample(problem, prior, 4)
    narrow = GaussianPrior(torch.zeros(6), std=0.05, sigma_max=10.0)  # a peaked prior, as image priors are
    null = torch.linalg.svd(A).Vh[2:]  # the directions A does not see
    spread = {s: float((get_sampler("daps", num_steps=20, sigma_min=s).sample(problem, narrow, 400, seed=1).samples
                        @ null.T).std(0).mean()) for s in (None, 0.3)}
    assert spread[None] < 0.1 < 0.2 < spread[0.3], spread
