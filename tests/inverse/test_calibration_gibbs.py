"""Semi-blind Gibbs: unknown noise level and unknown field, checked against the exact marginal posterior of sigma_y."""

import jax.numpy as jnp  # noqa: E402  (after inverse.calibration: float64 is on)
import numpy as np
import numpyro.distributions as dist
import pytest
import torch

from forward_models import MatrixOperator
from inverse.calibration import gaussian_field_step, gibbs, linear_gaussian_log_likelihood, sampler_field_step
from priors import GaussianPrior

SIGMA_PRIOR = dist.HalfNormal(2.0)


def problem(d=4, m=12, sigma_true=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m, d, generator=g, dtype=torch.float64)
    prior = GaussianPrior(torch.zeros(d, dtype=torch.float64), std=1.0)
    x = torch.randn(d, generator=g, dtype=torch.float64)
    y = (A @ x + sigma_true * torch.randn(m, generator=g, dtype=torch.float64)).numpy()
    return A, prior, y


def marginal_posterior_of_sigma(A, prior, y):
    """p(sigma | y) ∝ p(sigma) N(y; A m, A C A^T + sigma^2 I), the field integrated out exactly, on a grid."""
    grid = np.linspace(1e-3, 4.0, 2000)
    logp = np.array([prior.log_evidence(A, torch.as_tensor(y), s) for s in grid])
    logp += np.asarray(SIGMA_PRIOR.log_prob(jnp.asarray(grid)))
    w = np.exp(logp - logp.max())
    w /= w.sum()
    mean = float((w * grid).sum())
    return mean, float(np.sqrt((w * (grid - mean) ** 2).sum())), grid, np.cumsum(w)


def check_against_grid(idata, A, prior, y, z=4.0):
    import arviz as az

    mean, sd, grid, cdf = marginal_posterior_of_sigma(A, prior, y)
    draws = idata.posterior["sigma_y"].values.ravel()
    ess = float(az.ess(idata, var_names=["sigma_y"])["sigma_y"])
    assert abs(draws.mean() - mean) < z * sd / np.sqrt(ess)
    assert draws.std() == pytest.approx(sd, rel=z / np.sqrt(2 * ess) + 0.02)
    for q in (0.1, 0.5, 0.9):  # quantiles of the exact marginal
        assert np.mean(draws <= np.interp(q, cdf, grid)) == pytest.approx(q, abs=z * np.sqrt(q * (1 - q) / ess))
    return mean, sd, draws.mean(), draws.std(), ess


def test_gibbs_with_exact_field_step_matches_the_marginal_posterior_of_sigma():
    A, prior, y = problem()
    idata = gibbs(gaussian_field_step(prior, MatrixOperator(A)), linear_gaussian_log_likelihood(A),
                  {"sigma_y": SIGMA_PRIOR}, y, num_chains=2, num_warmup=100, num_samples=400, seed=0, keep_field=True)
    check_against_grid(idata, A, prior, y)
    assert idata.posterior["field"].shape == (2, 400, 4)
    assert idata.posterior.attrs["field_step"] == "exact_gaussian_conditional"
    assert idata.posterior.attrs["divergences"] == 0 and (idata.posterior["sigma_y"].values > 0).all()


@pytest.mark.slow
def test_gibbs_long_run_matches_tightly():
    A, prior, y = problem(d=6, m=20, sigma_true=0.3, seed=1)
    idata = gibbs(gaussian_field_step(prior, MatrixOperator(A)), linear_gaussian_log_likelihood(A),
                  {"sigma_y": SIGMA_PRIOR}, y, num_chains=4, num_warmup=300, num_samples=2500, seed=1)
    check_against_grid(idata, A, prior, y, z=3.5)
    assert idata.posterior.attrs["max_rhat"] <= 1.01


def test_gibbs_runs_with_dps_as_the_field_step():
    """Smoke test: a diffusion sampler (DPS, 20 steps, one particle) draws the field for each sigma_y."""
    from samplers import DPS

    A, prior, y = problem()
    idata = gibbs(sampler_field_step(DPS(num_steps=20, zeta=0.5), prior, MatrixOperator(A)),
                  linear_gaussian_log_likelihood(A), {"sigma_y": SIGMA_PRIOR}, y, num_chains=2, num_warmup=5,
                  num_samples=10, seed=0, keep_field=True)
    s = idata.posterior["sigma_y"].values
    assert s.shape == (2, 10) and np.isfinite(s).all() and (s > 0).all()
    assert np.isfinite(idata.posterior["field"].values).all()
    assert idata.posterior.attrs["field_step"] == "diffusion_sampler_conditional"


def test_gibbs_checks_its_input():
    A, prior, y = problem()
    step, ll = gaussian_field_step(prior, MatrixOperator(A)), linear_gaussian_log_likelihood(A)
    with pytest.raises(ValueError, match="num_samples"):
        gibbs(step, ll, {"sigma_y": SIGMA_PRIOR}, y, num_samples=0)
    with pytest.raises(ValueError, match="at least one parameter"):
        gibbs(step, ll, {}, y)
    with pytest.raises(ValueError, match="NaN"):
        gibbs(step, ll, {"sigma_y": SIGMA_PRIOR}, np.full_like(y, np.nan))
    with pytest.raises(ValueError, match="field step returned NaN"):
        gibbs(lambda th, yy, seed: np.full(4, np.nan), ll, {"sigma_y": SIGMA_PRIOR}, y)
