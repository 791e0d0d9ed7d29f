"""The shipped example models calibrate cleanly: R-hat <= 1.01, no divergences, truth inside the posterior;
random-walk Metropolis agrees with NUTS. Small runs; slow ones are marked."""

import pytest

from inverse.calibration import calibrate, random_walk_metropolis
from inverse.calibration.models import HeatEquation1D, LayeredEarth, NavierStokesCalibration, T2Relaxation


def check(idata, truth, z=4.0):
    attrs = idata.posterior.attrs
    assert attrs["divergences"] == 0
    assert attrs["max_rhat"] <= 1.01, attrs["max_rhat"]
    assert attrs["min_ess_bulk"] >= 400, attrs["min_ess_bulk"]
    for k, v in truth.items():
        d = idata.posterior[k].values
        assert abs(d.mean() - v) < z * d.std(), (k, d.mean(), d.std(), v)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [T2Relaxation, HeatEquation1D, LayeredEarth], ids=lambda c: c.name)
def test_jax_examples_converge(cls):
    m = cls()
    y = m.simulate(m.default_truth(), m.sigma_scale, seed=11)
    check(calibrate(m, y, sigma=m.sigma_scale, num_chains=4, num_warmup=500, num_samples=500, seed=0),
          m.default_truth())


@pytest.mark.slow
def test_navier_stokes_example_converges_through_the_torch_bridge():
    m = NavierStokesCalibration()  # 24 x 24, ten steps to T = 0.5
    y = m.simulate(m.default_truth(), m.sigma_scale, seed=11)
    idata = calibrate(m, y, sigma=m.sigma_scale, num_chains=4, num_warmup=200, num_samples=300, seed=0)
    check(idata, m.default_truth())
    assert idata.posterior.attrs["init"] == "laplace" and idata.posterior.attrs["torch_evaluations"] > 0


@pytest.mark.slow
def test_unknown_noise_level_is_recovered_on_the_heat_example():
    m = HeatEquation1D()
    y = m.simulate(m.default_truth(), 0.01, seed=5)
    idata = calibrate(m, y, num_chains=4, num_warmup=500, num_samples=500)  # default half-normal noise prior
    check(idata, {**m.default_truth(), "sigma": 0.01})


def test_random_walk_metropolis_agrees_with_the_conjugate_posterior():
    import jax.numpy as jnp
    import numpyro.distributions as dist

    from tests.inverse.test_calibration_core import T, assert_matches_gaussian, exact_linear_posterior, linear_data

    y = linear_data(seed=4)
    idata = random_walk_metropolis(lambda th: th["a"] + th["b"] * jnp.asarray(T), y,
                                   {"a": dist.Normal(0.0, 2.0), "b": dist.Normal(0.0, 2.0)}, sigma=0.3,
                                   num_chains=4, num_warmup=1000, num_samples=2000, seed=0)
    mean, cov = exact_linear_posterior(y)
    assert_matches_gaussian(idata, ["a", "b"], mean, cov)
    attrs = idata.posterior.attrs
    assert 0.15 < attrs["acceptance_rate"] < 0.35 and attrs["max_rhat"] <= 1.01
    assert idata.posterior.sizes == {"chain": 4, "draw": 2000}
