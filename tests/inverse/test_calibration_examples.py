"""The shipped example models calibrate cleanly: R-hat <= 1.01, no divergences, truth inside the posterior;
the gradient-free kernels agree with the conjugate posterior, in JAX and through the torch bridge for a forward
model without autograd. Small runs; slow ones are marked."""

import numpy as np
import pytest
import torch

from forward_models.base import ForwardModel
from inverse.calibration import TorchModel, calibrate
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


@pytest.mark.parametrize("kernel, warmup, samples", [("ess", 500, 1000), ("aies", 1000, 2000)])
def test_gradient_free_kernels_agree_with_the_conjugate_posterior(kernel, warmup, samples):
    import jax.numpy as jnp
    import numpyro.distributions as dist

    from tests.inverse.test_calibration_core import T, assert_matches_gaussian, exact_linear_posterior, linear_data

    y = linear_data(seed=4)
    idata = calibrate(lambda th: th["a"] + th["b"] * jnp.asarray(T), y,
                      {"a": dist.Normal(0.0, 2.0), "b": dist.Normal(0.0, 2.0)}, sigma=0.3, kernel=kernel,
                      num_warmup=warmup, num_samples=samples, seed=0)
    mean, cov = exact_linear_posterior(y)
    assert_matches_gaussian(idata, ["a", "b"], mean, cov)
    attrs = idata.posterior.attrs
    assert attrs["kernel"] == kernel and attrs["max_rhat"] <= 1.01 and attrs["divergences"] == 0
    assert idata.posterior.sizes == {"chain": 8, "draw": samples}  # default walkers: max(8, 2 p)
    if kernel == "aies":
        assert 0.15 < attrs["acceptance_rate"] < 0.6


class _NumpyLine(ForwardModel):
    """``y = a + b t`` computed in NumPy: no autograd, a black box to torch."""

    differentiable = False
    input_shape = (2,)

    def __init__(self, t):
        super().__init__()
        self.t = np.asarray(t, dtype=np.float64)
        self.output_shape = self.t.shape

    def forward(self, x):
        x = x.detach().numpy()
        return torch.from_numpy(x[:, :1] + x[:, 1:] * self.t)


def test_ensemble_slice_sampling_runs_a_forward_model_without_gradients_through_the_bridge():
    import numpyro.distributions as dist

    from tests.inverse.test_calibration_core import T, assert_matches_gaussian, exact_linear_posterior, linear_data

    y = linear_data(seed=4)
    tm = TorchModel(_NumpyLine(T), ("a", "b"), priors={"a": dist.Normal(0.0, 2.0), "b": dist.Normal(0.0, 2.0)})
    idata = calibrate(tm, y, sigma=0.3, kernel="ess", num_warmup=300, num_samples=600, seed=1)
    mean, cov = exact_linear_posterior(y)
    assert_matches_gaussian(idata, ["a", "b"], mean, cov)
    attrs = idata.posterior.attrs
    assert attrs["init"] == "mode" and attrs["max_rhat"] <= 1.01  # walkers around the mode, found from values
    assert attrs["torch_evaluations"] > 8 * (300 + 600)  # values only, one batch of walkers per call


def test_kernel_choice_is_checked():
    import numpyro.distributions as dist

    prior = {"a": dist.Normal(0.0, 1.0)}
    with pytest.raises(ValueError, match="kernel must be one of"):
        calibrate(lambda th: th["a"], [0.0], prior, sigma=0.1, kernel="rwm")
    with pytest.raises(ValueError, match="even and at least 4"):
        calibrate(lambda th: th["a"], [0.0], prior, sigma=0.1, kernel="ess", num_chains=5)
    with pytest.raises(ValueError, match="chain_method='vectorized'"):
        calibrate(lambda th: th["a"], [0.0], prior, sigma=0.1, kernel="aies", chain_method="sequential")
