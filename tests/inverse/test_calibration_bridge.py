"""The torch bridge: one callback for value and gradient, batched under vmap, exact against JAX; NUTS through it."""

import jax  # noqa: E402  (after inverse.calibration: float64 is on)
import jax.numpy as jnp  # noqa: E402
import numpy as np
import numpyro.distributions as dist
import pytest
import torch

from forward_models import MatrixOperator
from forward_models.base import ForwardModel
from inverse.calibration import TorchModel, TorchPotential, calibrate
from inverse.calibration.models import T2Relaxation


def test_value_and_gradient_come_from_torch_in_one_call():
    A = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], dtype=torch.float64)
    f = TorchPotential(lambda z: torch.sin(z @ A.T).square().sum(1), dim=3)
    z = jnp.asarray([0.3, -0.2, 0.1])
    v, g = jax.value_and_grad(f)(z)
    zt = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64, requires_grad=True)
    ref = torch.sin(A @ zt).square().sum()
    (g_ref,) = torch.autograd.grad(ref, zt)
    ref = ref.detach()
    assert float(v) == pytest.approx(float(ref), rel=1e-14)
    np.testing.assert_allclose(np.asarray(g), g_ref.numpy(), rtol=1e-13)
    assert (f.calls, f.gradient_calls) == (1, 1)  # value and gradient together
    assert float(jax.jit(f)(z)) == pytest.approx(float(ref)) and f.gradient_calls == 1  # no gradient asked


def test_vmap_reaches_torch_as_one_batch():
    f = TorchPotential(lambda z: (z**2).sum(1), dim=2)
    zs = jnp.arange(12.0).reshape(6, 2)
    v, g = jax.jit(jax.vmap(jax.value_and_grad(f)))(zs)
    np.testing.assert_allclose(np.asarray(g), 2 * np.asarray(zs))
    np.testing.assert_allclose(np.asarray(v), (np.asarray(zs) ** 2).sum(1))
    assert f.calls == 1 and f.evaluations == 6


def test_non_finite_points_are_rejected_without_calling_torch():
    seen = []

    def fn(z):
        seen.append(z.shape[0])
        return z.sum(1)

    f = TorchPotential(fn, dim=2)
    v, g = jax.vmap(jax.value_and_grad(f))(jnp.asarray([[1.0, 2.0], [jnp.nan, 0.0], [jnp.inf, 1.0]]))
    assert seen == [1] and float(v[0]) == 3.0 and np.isinf(np.asarray(v[1:])).all()
    np.testing.assert_array_equal(np.asarray(g[1:]), 0.0)


def test_torch_model_likelihood_and_gradient_equal_the_jax_model():
    m = T2Relaxation()
    tm = TorchModel(m.torch_model(), m.parameters, priors=m.default_priors())
    y = m.simulate(m.default_truth(), 0.02, seed=0)
    th = {"S0": jnp.asarray(0.9), "T2": jnp.asarray(75.0)}
    for sigma in (0.02, jnp.asarray(0.05)):
        f_jax = lambda t, s=sigma: m.log_likelihood(t, jnp.asarray(y), s)  # noqa: E731
        f_torch = lambda t, s=sigma: tm.log_likelihood(t, y, s)  # noqa: E731
        assert float(f_torch(th)) == pytest.approx(float(f_jax(th)), rel=1e-12)
        g_j, g_t = jax.grad(f_jax)(th), jax.grad(f_torch)(th)
        for k in m.parameters:
            assert float(g_t[k]) == pytest.approx(float(g_j[k]), rel=1e-10)
    np.testing.assert_allclose(np.asarray(tm.predict(th)), np.asarray(m.predict(th)), rtol=1e-13)


def test_torch_model_refuses_what_it_cannot_bridge():
    class BlackBox(ForwardModel):
        differentiable = False
        input_shape, output_shape = (2,), (2,)

        def forward(self, x):
            return x

    black_box = TorchModel(BlackBox(), ("a", "b"), priors={"a": dist.Normal(0, 1), "b": dist.Normal(0, 1)})
    for kw in ({}, {"kernel": "ess", "init": "laplace"}):  # NUTS and the Laplace start need gradients
        with pytest.raises(ValueError, match="not differentiable"):
            calibrate(black_box, np.zeros(2), sigma=0.1, **kw)
    with pytest.raises(ValueError, match="3 parameter names"):
        TorchModel(T2Relaxation().torch_model(), ("a", "b", "c"))
    tm = TorchModel(T2Relaxation().torch_model(), ("S0", "T2"))
    with pytest.raises(ValueError, match="shape"):
        tm.misfit(np.zeros(5))


def test_nuts_through_the_bridge_recovers_a_conjugate_posterior():
    """y = A theta + e with Gaussian priors: the posterior is Gaussian and known exactly."""
    from tests.inverse.test_calibration_core import assert_matches_gaussian

    rng = np.random.default_rng(3)
    A = rng.standard_normal((15, 2))
    theta_true, sigma, prior_sd = np.array([0.7, -0.4]), 0.5, 1.5
    y = A @ theta_true + sigma * rng.standard_normal(15)
    tm = TorchModel(MatrixOperator(torch.as_tensor(A)), ("a", "b"),
                    priors={"a": dist.Normal(0.0, prior_sd), "b": dist.Normal(0.0, prior_sd)})
    idata = calibrate(tm, y, sigma=sigma, num_chains=4, num_warmup=200, num_samples=400, seed=0)
    cov = np.linalg.inv(A.T @ A / sigma**2 + np.eye(2) / prior_sd**2)
    assert_matches_gaussian(idata, ["a", "b"], cov @ A.T @ y / sigma**2, cov)
    attrs = idata.posterior.attrs
    assert attrs["init"] == "laplace" and attrs["max_rhat"] <= 1.01
    pot = next(iter(tm._potentials.values()))
    assert pot.evaluations > pot.calls  # vectorised chains: batches of 4 reach torch
