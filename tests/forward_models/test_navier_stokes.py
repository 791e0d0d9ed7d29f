"""NavierStokes2D: exact decaying solution, forcing convention, gradients, checkpointing, coarse level, errors."""

import json
import math

import pytest
import torch

from forward_models.navier_stokes import REGISTRY_ENTRIES, NavierStokes2D, spectral_resample

F64 = torch.float64


def _grid(n):
    x = 2 * math.pi * torch.arange(n, dtype=F64) / n
    return torch.meshgrid(x, x, indexing="ij")


def _rel(a, b):
    return float(((a - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)).max())


def test_taylor_green_decays_at_the_viscous_rate():
    """Unforced w0 = 2k cos(kx) cos(ky): advection vanishes, w(t) = w0 exp(-2 nu k^2 t)."""
    k, nu, T = 3, 0.05, 1.0
    X, Y = _grid(32)
    w0 = (2 * k * torch.cos(k * X) * torch.cos(k * Y))[None, None]
    op = NavierStokes2D(32, factor=1, T=T, dt=1e-2, viscosity=nu, forcing_amplitude=0.0)
    exact = w0 * math.exp(-2 * nu * k**2 * T)
    assert _rel(op(w0), exact) < 1e-4  # measured 6.1e-6 (Crank-Nicolson time error)
    assert _rel(op.coarse()(w0), exact) < 1e-4  # k = 3 is resolved on the 16 x 16 grid too


def test_forcing_is_minus_4_cos_4y_along_the_last_axis():
    """From rest the flow stays a shear flow (no advection): w(t) = -(4 / (nu 16)) (1 - exp(-16 nu t)) cos(4 y),
    with y the second spatial axis (InverseBench's meshgrid 'ij' convention)."""
    T, nu = 0.5, 1 / 200
    op = NavierStokes2D(16, factor=1, T=T, dt=0.01)
    w = op(torch.zeros(1, 1, 16, 16, dtype=F64))[0, 0]
    _, Y = _grid(16)
    exact = -4 / (16 * nu) * (1 - math.exp(-16 * nu * T)) * torch.cos(4 * Y)
    torch.testing.assert_close(w, exact, atol=1e-6, rtol=0)  # Crank-Nicolson error ~1e-9


def test_mean_vorticity_is_conserved():
    op = NavierStokes2D(16, factor=1, T=0.2, dt=0.02)
    w0 = op.example_input(2, 0) + 0.7
    torch.testing.assert_close(op(w0).mean(dim=(1, 2, 3)), w0.mean(dim=(1, 2, 3)), atol=1e-12, rtol=0)


def test_gradient_is_nonzero_and_matches_finite_differences():
    op = NavierStokes2D(16, factor=2, T=0.2, dt=0.02)
    x = op.example_input(2, 1)
    g = torch.Generator().manual_seed(0)
    v = torch.randn(x.shape, generator=g, dtype=F64)
    w = torch.randn(2, *op.output_shape, generator=g, dtype=F64)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((op(xg) * w).sum(), xg)
    assert float(grad.abs().max()) > 1e-2  # not silently zero (the InverseBench no_grad pitfall)
    h = 1e-5
    fd = float(((op(x + h * v) - op(x - h * v)) * w).sum()) / (2 * h)
    assert abs(float((grad * v).sum()) - fd) <= 1e-6 * abs(fd)


def test_checkpointed_and_plain_runs_agree():
    plain = NavierStokes2D(16, factor=2, T=0.14, dt=0.02)
    ckpt = NavierStokes2D(16, factor=2, T=0.14, dt=0.02, checkpoint_every=3)  # 7 steps: chunks 3, 3, 1
    x = plain.example_input(2, 2).requires_grad_(True)
    w = torch.randn(2, *plain.output_shape, generator=torch.Generator().manual_seed(1), dtype=F64)
    y1, y2 = plain(x), ckpt(x)
    assert torch.equal(y1, y2)
    (g1,) = torch.autograd.grad((y1 * w).sum(), x)
    (g2,) = torch.autograd.grad((y2 * w).sum(), x)
    torch.testing.assert_close(g1, g2, atol=1e-13, rtol=1e-12)


def test_solve_returns_the_full_field_and_forward_subsamples_it():
    op = NavierStokes2D(16, factor=4, T=0.1, dt=0.02)
    x = op.example_input(3, 3)
    full = op.solve(x)
    assert full.shape == (3, 1, 16, 16)
    torch.testing.assert_close(op(x), full[:, :, ::4, ::4], atol=1e-12, rtol=0)
    # solve at another time: T = 0.06 is three of the same steps
    torch.testing.assert_close(op.solve(x, 0.06), NavierStokes2D(16, factor=1, T=0.06, dt=0.02)(x))


def test_coarse_has_the_same_shapes_and_observes_the_same_points():
    op = NavierStokes2D(32, factor=2, T=0.5, dt=0.02)
    c = op.coarse()
    assert (c.input_shape, c.output_shape, c.solver_resolution) == (op.input_shape, op.output_shape, 16)
    assert c.dt == 2 * op.dt and op.coarse(dt=op.dt).dt == op.dt
    x = op.example_input(3, 0)
    # observation on the coarse grid directly == spectral interpolation of the coarse solution to 32
    torch.testing.assert_close(c(x), c.solve(x)[:, :, ::2, ::2], atol=1e-11, rtol=0)
    # smooth, weak fields (|k| < 4, amplitude 0.3): measured 1.0% coarse-vs-fine relative difference
    smooth = 0.3 * spectral_resample(spectral_resample(x, 8), 32)
    assert _rel(c(smooth), op(smooth)) < 0.02
    # full Gaussian-random-field inputs carry modes the 16 x 16 grid drops: measured 37% (at 64 -> 32 and
    # T = 1: 15%, and ~40% for spun-up InverseBench-like fields) - the coarse level is a rough one
    assert _rel(c(x), op(x)) < 0.5


def test_spectral_resample_round_trip():
    x = NavierStokes2D(16).example_input(2, 4)
    smooth = spectral_resample(spectral_resample(x, 8), 16)  # no Nyquist content: interpolation is exact
    torch.testing.assert_close(spectral_resample(spectral_resample(smooth, 32), 16), smooth, atol=1e-12, rtol=0)
    torch.testing.assert_close(smooth[..., ::2, ::2], spectral_resample(x, 8), atol=1e-12, rtol=0)
    coarse = spectral_resample(x, 8)  # restriction is a projection
    torch.testing.assert_close(spectral_resample(spectral_resample(coarse, 16), 8), coarse, atol=1e-12, rtol=0)


def test_float32_input_gives_float32_output():
    op = NavierStokes2D(16, factor=2, T=0.04, dt=0.02)
    y = op(op.example_input(2, 0, torch.float32))
    assert y.dtype == torch.float32 and bool(torch.isfinite(y).all())


def test_config_rebuilds_the_same_model():
    op = NavierStokes2D(16, factor=4, T=0.06, dt=0.02, viscosity=0.01, forcing_amplitude=2.0,
                        forcing_wavenumber=3, checkpoint_every=2)
    cfg = json.loads(json.dumps(op.config()))
    assert cfg["convention"] == "InverseBench" and cfg["n_steps"] == 3
    keys = ("resolution", "factor", "T", "dt", "viscosity", "forcing_amplitude", "forcing_wavenumber",
            "solver_resolution", "checkpoint_every")
    again = NavierStokes2D(**{k: cfg[k] for k in keys})
    x = op.example_input(1, 0)
    assert torch.equal(op(x), again(x))


def test_registry_entries_build():
    entry = REGISTRY_ENTRIES["navier-stokes"]
    small = entry["example"](0)
    assert isinstance(small, entry["cls"])
    big = entry["benchmark"]()
    assert (big.input_shape, big.output_shape, big.n_steps) == ((1, 64, 64), (1, 32, 32), 100)


@pytest.mark.parametrize("kwargs, match", [
    ({"factor": 3}, "factor"),
    ({"factor": 16}, "factor"),
    ({"viscosity": 0.0}, "viscosity"),
    ({"viscosity": -0.1}, "viscosity"),
    ({"T": 0.0}, "final time T"),
    ({"dt": float("nan")}, "time step dt"),
    ({"solver_resolution": 12}, "solver_resolution"),
    ({"checkpoint_every": 0}, "checkpoint_every"),
    ({"forcing_wavenumber": 7}, "forcing_wavenumber 7 is not resolved"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NavierStokes2D(16, **kwargs)


def test_bad_resolution_and_inputs_are_named():
    with pytest.raises(ValueError, match="resolution must be an even integer"):
        NavierStokes2D(15)
    op = NavierStokes2D(16, T=0.02, dt=0.02)
    with pytest.raises(ValueError, match="must have shape"):
        op(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="must have shape"):
        op.solve(torch.zeros(1, 16, 16))
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        op(x)
    with pytest.raises(ValueError, match="NaN or Inf"):
        op.solve(x)
    with pytest.raises(ValueError, match="coarse"):
        op.coarse(3)
    with pytest.raises(ValueError, match="not resolved"):
        op.coarse()  # 8 x 8 cannot carry the k = 4 forcing


def test_stable_time_step_keeps_the_courant_number_of_the_64_grid():
    from forward_models.navier_stokes import stable_time_step

    assert stable_time_step(32) == stable_time_step(64) == 1e-2
    assert stable_time_step(128) == pytest.approx(5e-3) and stable_time_step(256) == pytest.approx(2.5e-3)


def test_the_navier_stokes_problem_caps_dt_at_the_stable_step():
    from inverse.problems import build_forward_model

    assert build_forward_model("navier-stokes", {"size": 128}).dt == pytest.approx(5e-3)
    assert build_forward_model("navier-stokes", {"size": 64}).dt == pytest.approx(1e-2)
    assert build_forward_model("navier-stokes", {"size": 128, "dt": 1e-3}).dt == pytest.approx(1e-3)


@pytest.mark.slow
def test_snapshots_on_a_128_grid_are_finite():
    """At dt = 1e-2 the 128 grid's spin-up blew up to NaN; the default step now scales with the grid."""
    from forward_models.generators.vorticity import navier_stokes_snapshots

    w = navier_stokes_snapshots(1, 128, seed=0)
    assert bool(torch.isfinite(w).all()) and 0.1 < float(w.abs().max()) < 30
