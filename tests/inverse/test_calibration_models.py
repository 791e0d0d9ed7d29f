"""Example calibration models: shapes, physics checks against independent solutions, gradients, torch twins."""

import jax  # noqa: E402  (after inverse.calibration: float64 is on)
import jax.numpy as jnp  # noqa: E402
import numpy as np
import pytest
import torch

from inverse.calibration.models import (
    MODELS,
    HeatEquation1D,
    LayeredEarth,
    NavierStokesCalibration,
    NavierStokesParameters,
    T2Relaxation,
    get_model_class,
    reflection_traveltimes,
)

JAX_MODELS = [T2Relaxation, HeatEquation1D, LayeredEarth]


def _theta(m, values=None):
    return {k: jnp.asarray(float(v)) for k, v in (values or m.default_truth()).items()}


@pytest.mark.parametrize("cls", JAX_MODELS)
def test_prediction_shape_dtype_and_priors(cls):
    m = cls()
    pred = np.asarray(jax.jit(m.predict)(_theta(m)))
    assert pred.shape == m.obs_shape and pred.dtype == np.float64 and np.isfinite(pred).all()
    assert set(m.default_priors()) == set(m.parameters) == set(m.default_truth())
    for name, prior in m.default_priors().items():  # the truth lies where its prior has mass
        assert np.isfinite(float(prior.log_prob(m.default_truth()[name])))


@pytest.mark.parametrize("cls", JAX_MODELS)
def test_gradient_matches_central_differences(cls):
    m = cls()
    th = _theta(m)
    w = jnp.asarray(np.random.default_rng(0).standard_normal(m.obs_shape))
    f = jax.jit(lambda t: jnp.sum(w * m.predict(t)))
    g = jax.jit(jax.grad(f))(th)
    for k in m.parameters:
        h = 1e-6 * abs(float(th[k]))
        up, down = dict(th), dict(th)
        up[k], down[k] = th[k] + h, th[k] - h
        fd = (float(f(up)) - float(f(down))) / (2 * h)
        assert float(g[k]) == pytest.approx(fd, rel=1e-5, abs=1e-9 * abs(fd) + 1e-12)


def test_heat_series_matches_crank_nicolson_finite_differences():
    """The series solution against an independent Crank-Nicolson solve of u_t = D u_xx + A."""
    m = HeatEquation1D()
    D, A = 1e-4, 0.05
    n = 200
    x = np.linspace(0.0, m.length, n + 1)
    dx = x[1] - x[0]
    u = sum(b * np.sin((i + 1) * np.pi * x / m.length) for i, b in enumerate(m.initial_modes))
    lap = (np.diag(-2.0 * np.ones(n - 1)) + np.diag(np.ones(n - 2), 1) + np.diag(np.ones(n - 2), -1)) / dx**2
    dt = 0.02
    I = np.eye(n - 1)
    step = np.linalg.solve(I - 0.5 * dt * D * lap, np.concatenate([I + 0.5 * dt * D * lap, dt * np.eye(n - 1)], 1))
    t, out = 0.0, []
    ui = u[1:-1]
    for t_obs in m.times:
        while t < t_obs - 1e-9:
            ui = step @ np.concatenate([ui, np.full(n - 1, A)])
            t += dt
        out.append(np.interp(m.positions, x, np.concatenate([[0.0], ui, [0.0]])))
    pred = np.asarray(m.predict(_theta(m, {"diffusivity": D, "source": A})))
    np.testing.assert_allclose(pred, np.array(out), atol=2e-4)


def test_heat_and_t2_torch_twins_agree_with_jax():
    for m in (HeatEquation1D(), T2Relaxation()):
        tm = m.torch_model()
        truth = m.default_truth()
        theta = torch.tensor([[truth[k] for k in m.parameters]], dtype=torch.float64)
        np.testing.assert_allclose(tm(theta)[0].numpy(), np.asarray(m.predict(_theta(m))), rtol=1e-12, atol=1e-14)


def test_layered_earth_traveltimes_exact_on_parametric_rays():
    """For a chosen ray parameter p, offset and time follow in closed form; the solver must invert that."""
    v, h = np.array([1800.0, 2500.0, 3200.0]), np.array([300.0, 400.0, 500.0])
    traveltimes = jax.jit(reflection_traveltimes)
    for k in range(3):
        for p in (0.0, 1e-4, 2.5e-4, 3.0e-4):
            q = p * v[: k + 1]
            X = 2 * np.sum(h[: k + 1] * q / np.sqrt(1 - q**2))
            T = 2 * np.sum(h[: k + 1] / (v[: k + 1] * np.sqrt(1 - q**2)))
            t = traveltimes(jnp.asarray(v), jnp.asarray(h), jnp.asarray([X]))
            assert float(t[k, 0]) == pytest.approx(T, rel=1e-12)
    pred = np.asarray(traveltimes(jnp.asarray(v), jnp.asarray(h), jnp.asarray(LayeredEarth().offsets)))
    assert pred[:, 0] == pytest.approx(2 * np.cumsum(h / v), rel=1e-12)  # zero offset: vertical two-way time
    assert (np.diff(pred, axis=1) > 0).all()  # moveout grows with offset


def test_layered_earth_handles_velocity_inversions_and_is_vmappable():
    v, h = jnp.asarray([3000.0, 2000.0]), jnp.asarray([500.0, 500.0])  # slower layer below a faster one
    batch = jax.jit(jax.vmap(lambda vv: reflection_traveltimes(vv, h, jnp.asarray([0.0, 800.0, 1600.0]))))(
        jnp.stack([v, v * 1.1]))
    assert batch.shape == (2, 2, 3) and np.isfinite(np.asarray(batch)).all()
    assert float(batch[1, 0, 0]) < float(batch[0, 0, 0])  # faster layers, earlier arrivals


def test_navier_stokes_parameters_match_the_solver_and_gradcheck():
    from forward_models.navier_stokes import NavierStokes2D

    m = NavierStokesCalibration(16, factor=2, T=0.2, dt=0.05)
    w0 = m.forward_model.w0
    for nu, amp in ((1 / 200, 4.0), (1 / 50, 1.5)):
        ref = NavierStokes2D(16, factor=2, T=0.2, dt=0.05, viscosity=nu, forcing_amplitude=amp)(w0[None, None])
        out = m.forward_model(torch.tensor([[nu, amp]], dtype=torch.float64))
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    theta = torch.tensor([[0.01, 3.0], [0.02, 1.0]], dtype=torch.float64, requires_grad=True)
    op = NavierStokesParameters(w0, factor=4, T=0.1, dt=0.05)
    assert torch.autograd.gradcheck(lambda t: op(t), (theta,), eps=1e-6, atol=1e-6)


def test_simulate_is_seeded_and_checks_parameters():
    m = T2Relaxation()
    a, b = m.simulate(m.default_truth(), 0.02, seed=3), m.simulate(m.default_truth(), 0.02, seed=3)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="missing parameter value"):
        m.simulate({"S0": 1.0}, 0.02)


def test_registry_and_bad_constructor_arguments():
    assert set(MODELS) == {"heat", "layered-earth", "navier-stokes", "mri-t2"}
    with pytest.raises(ValueError, match="did you mean 'layered-earth'"):
        get_model_class("layered_earth")
    with pytest.raises(ValueError, match="positions"):
        HeatEquation1D(positions=[0.0, 0.05])
    with pytest.raises(ValueError, match="echo_times"):
        T2Relaxation(echo_times=[10.0])
    with pytest.raises(ValueError, match="num_layers"):
        LayeredEarth(num_layers=0)
