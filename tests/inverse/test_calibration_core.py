"""calibrate(): a conjugate problem with a known posterior, bounded priors, unknown noise, divergences, bad input."""

import json
import warnings

import jax.numpy as jnp  # noqa: E402  (after inverse.calibration: float64 is on)
import numpy as np
import numpyro.distributions as dist
import pytest

from inverse.calibration import DivergenceWarning, calibrate, prepare
from inverse.calibration.models import T2Relaxation

T = np.linspace(0.0, 1.0, 20)
PRIOR_SD, SIGMA = 2.0, 0.3


def linear_data(seed=0):
    rng = np.random.default_rng(seed)
    return 0.5 - 1.2 * T + SIGMA * rng.standard_normal(T.size)


def exact_linear_posterior(y):
    """Gaussian prior N(0, PRIOR_SD^2 I) on (a, b), y = a + b t + N(0, SIGMA^2): conjugate."""
    X = np.stack([np.ones_like(T), T], 1)
    cov = np.linalg.inv(X.T @ X / SIGMA**2 + np.eye(2) / PRIOR_SD**2)
    return cov @ X.T @ y / SIGMA**2, cov


def assert_matches_gaussian(idata, names, mean, cov):
    """Means within 4 Monte Carlo standard errors (sd / sqrt(ESS)); sds and correlation within 10%."""
    import arviz as az

    ess = az.ess(idata, var_names=names)
    draws = np.stack([idata.posterior[n].values.ravel() for n in names], 1)
    for i, n in enumerate(names):
        mcse = np.sqrt(cov[i, i] / float(ess[n]))
        assert abs(draws[:, i].mean() - mean[i]) < 4 * mcse, n
        assert draws[:, i].std() == pytest.approx(np.sqrt(cov[i, i]), rel=0.1), n
    corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    assert np.corrcoef(draws.T)[0, 1] == pytest.approx(corr, abs=0.05)


def test_conjugate_linear_gaussian_posterior_is_recovered():
    y = linear_data()
    prior = {"a": dist.Normal(0.0, PRIOR_SD), "b": dist.Normal(0.0, PRIOR_SD)}
    idata = calibrate(lambda th: th["a"] + th["b"] * jnp.asarray(T), y, prior, sigma=SIGMA,
                      num_chains=4, num_warmup=300, num_samples=500, seed=1)
    mean, cov = exact_linear_posterior(y)
    assert_matches_gaussian(idata, ["a", "b"], mean, cov)
    attrs = idata.posterior.attrs
    assert attrs["divergences"] == 0 and attrs["max_rhat"] <= 1.01 and attrs["noise"] == "known"
    assert attrs["chain_method"] == "vectorized" and json.loads(attrs["parameters"]) == ["a", "b"]
    assert idata.posterior.sizes == {"chain": 4, "draw": 500}
    np.testing.assert_array_equal(idata.observed_data["y"].values, y)
    assert {"diverging", "n_steps", "acceptance_rate", "step_size"} <= set(idata.sample_stats.data_vars)


def test_bounded_priors_and_unknown_noise_stay_in_support():
    m = T2Relaxation()
    y = m.simulate({"S0": 0.98, "T2": 80.0}, 0.02, seed=2)
    priors = {"S0": dist.Uniform(0.0, 1.0), "T2": dist.LogNormal(np.log(80.0), 0.5)}
    idata = calibrate(m, y, priors, sigma=dist.HalfNormal(0.1), num_chains=2, num_warmup=300, num_samples=300)
    s0, t2, sigma = (idata.posterior[k].values for k in ("S0", "T2", "sigma"))
    assert (s0 > 0).all() and (s0 < 1).all() and s0.max() > 0.99  # pressed against the bound, never past it
    assert (t2 > 0).all() and (sigma > 0).all()
    assert 0.01 < float(np.median(sigma)) < 0.04
    attrs = idata.posterior.attrs
    assert attrs["noise"] == "estimated" and "Uniform(low=0, high=1)" in attrs["priors"]
    assert idata.observed_data["y"].dims == ("echo_time",)


def test_divergences_are_counted_and_warned_about():
    """Neal's funnel: x e^{-v/2} observed at 0 with unit noise; the neck defeats one step size."""
    with pytest.warns(DivergenceWarning, match="diverged"):
        idata = calibrate(lambda th: th["x"] * jnp.exp(-th["v"] / 2) * jnp.ones(1), np.zeros(1),
                          {"v": dist.Normal(0, 3), "x": dist.Normal(0, 30)}, sigma=1.0, num_chains=2,
                          num_warmup=200, num_samples=200, target_accept_prob=0.6)
    n = idata.posterior.attrs["divergences"]
    assert n > 0 and n == int(idata.sample_stats["diverging"].sum())


@pytest.mark.parametrize("kwargs, error, match", [
    ({"data": [1.0, np.nan] + [0.0] * 14}, ValueError, "1 NaN or Inf"),
    ({"data": np.ones(3)}, ValueError, r"shape \(3,\)"),
    ({"priors": {"T3": dist.Normal(0, 1)}}, ValueError, "did you mean 'T2'"),
    ({"priors": {"T2": dist.Poisson(3.0)}}, ValueError, "discrete"),
    ({"priors": {"T2": 80.0}}, TypeError, "Distribution"),
    ({"sigma": -0.1}, ValueError, "positive"),
    ({"sigma": dist.Normal(0, 1)}, ValueError, "positive values"),
    ({"sigma": 0.1, "priors": {"sigma": dist.HalfNormal(1.0)}}, ValueError, "both"),
    ({"sigma": "small"}, TypeError, "sigma must be a number"),
])
def test_bad_input_fails_in_one_line(kwargs, error, match):
    m = T2Relaxation()
    args = {"data": m.simulate(m.default_truth(), 0.02), "priors": None, "sigma": 0.02, **kwargs}
    with pytest.raises(error, match=match) as e:
        prepare(m, args["data"], args["priors"], args["sigma"])
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_chains": 0}, "num_chains"), ({"num_samples": 2.5}, "num_samples"),
    ({"chain_method": "threads"}, "chain_method"), ({"target_accept_prob": 1.0}, "target_accept_prob"),
    ({"init": "mode"}, "init"),
])
def test_bad_run_settings_fail_before_sampling(kwargs, match):
    m = T2Relaxation()
    with pytest.raises(ValueError, match=match):
        calibrate(m, m.simulate(m.default_truth(), 0.02), sigma=0.02, **kwargs)


def test_plain_functions_need_priors_and_a_noise_level():
    with pytest.raises(ValueError, match="needs priors"):
        prepare(lambda th: th["a"], np.zeros(2))
    with pytest.raises(ValueError, match="give the noise level"):
        prepare(lambda th: th["a"] * jnp.ones(2), np.zeros(2), {"a": dist.Normal(0, 1)})
    setup = prepare(lambda th: th["a"] * jnp.ones(2), np.zeros(2), {"a": dist.Normal(0, 1)}, sigma=0.5)
    assert setup.names == ["a"] and setup.sigma == 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        setup = prepare(T2Relaxation(), np.ones(16))  # a named model: default noise prior
    assert setup.names == ["S0", "T2", "sigma"] and setup.sigma is None


def test_laplace_approximation_is_exact_for_a_gaussian_posterior():
    """Normal priors and a linear model: the unconstrained posterior is Gaussian, so mode and inverse
    Hessian (by central differences of the exact gradient) are the posterior mean and covariance."""
    import jax

    from inverse.calibration.laplace import laplace_approximation

    y = linear_data(seed=2)
    setup = prepare(lambda th: th["a"] + th["b"] * jnp.asarray(T), y,
                    {"a": dist.Normal(0.0, PRIOR_SD), "b": dist.Normal(0.0, PRIOR_SD)}, sigma=SIGMA)
    lap = laplace_approximation(setup.numpyro_model(), jax.random.PRNGKey(0))
    mean, cov = exact_linear_posterior(y)
    np.testing.assert_allclose(lap.flat, mean, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(lap.cov, cov, rtol=1e-5, atol=1e-10)
    starts = lap.chain_starts(3, jax.random.PRNGKey(1))
    assert set(starts) == {"a", "b"} and starts["a"].shape == (3,)
