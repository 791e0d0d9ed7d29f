"""DarcyFlow: series solution and second-order convergence, adjoint gradient, coarse level, sensors, errors."""

import json
import math

import pytest
import torch

from forward_models.darcy import REGISTRY_ENTRIES, DarcyFlow

F64 = torch.float64


def _series(xy, terms=99):
    """-Lap u = 1 on the unit square, u = 0 on its boundary:
    u = sum_{m, n odd} 16 sin(m pi x) sin(n pi y) / (pi^4 m n (m^2 + n^2))."""
    m = torch.arange(1, terms + 1, 2, dtype=F64)
    sx = torch.sin(math.pi * xy[:, :1] * m)  # (S, M)
    sy = torch.sin(math.pi * xy[:, 1:] * m)
    coef = 16 / (math.pi**4 * m[:, None] * m[None, :] * (m[:, None] ** 2 + m[None, :] ** 2))
    return torch.einsum("sm,mn,sn->s", sx, coef, sy)


def _rel(a, b):
    return float(((a - b).norm(dim=-1) / b.norm(dim=-1)).max())


def test_constant_coefficient_matches_the_series_with_second_order_convergence():
    errors = []
    for n in (8, 16, 32):
        op = DarcyFlow(n, sensors=5)
        u = op(torch.zeros(1, 1, n, n, dtype=F64))[0]
        exact = _series(op.sensors)
        errors.append(float((u - exact).abs().max() / exact.abs().max()))
    assert errors[-1] < 1e-3  # measured 1.2e-2, 3.1e-3, 7.7e-4
    assert errors[0] / errors[1] > 3.5 and errors[1] / errors[2] > 3.5  # measured 3.94, 3.99


def test_scaling_laws():
    """u scales with f / a: doubling the source doubles u; a -> c a divides u by c."""
    x = DarcyFlow(8).example_input(2, 0)
    op, op2 = DarcyFlow(8, sensors=3), DarcyFlow(8, sensors=3, source=2.0)
    torch.testing.assert_close(op2(x), 2 * op(x))
    torch.testing.assert_close(op(x + math.log(4.0)), op(x) / 4)


def test_variable_coefficient_converges_at_second_order():
    def log_a(n):
        c = (torch.arange(n, dtype=F64) + 0.5) / n
        X, Y = torch.meshgrid(c, c, indexing="ij")
        return (0.8 * torch.sin(2 * math.pi * X) * torch.cos(math.pi * Y) + 0.5 * X)[None, None]

    u = {n: DarcyFlow(n, sensors=7)(log_a(n)) for n in (16, 32, 64)}
    ratio = (u[16] - u[32]).abs().max() / (u[32] - u[64]).abs().max()
    assert 3.0 < float(ratio) < 5.0  # second order: measured 3.89


def test_adjoint_gradient_matches_finite_differences():
    for coefficient in ("exp", "sigmoid"):
        op = DarcyFlow(10, coefficient=coefficient, sensors=4, sigmoid_width=0.5)
        x = op.example_input(2, 1)
        g = torch.Generator().manual_seed(2)
        v = torch.randn(x.shape, generator=g, dtype=F64)
        w = torch.randn(2, *op.output_shape, generator=g, dtype=F64)
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad((op(xg) * w).sum(), xg)
        h = 1e-6
        fd = float(((op(x + h * v) - op(x - h * v)) * w).sum()) / (2 * h)
        assert abs(float((grad * v).sum()) - fd) <= 1e-6 * abs(fd), coefficient


def test_gradcheck_small_grid():
    op = DarcyFlow(4, sensors=[[0.3, 0.6], [0.9, 0.1]])
    x = op.example_input(2, 3).requires_grad_(True)
    assert torch.autograd.gradcheck(op, (x,))


def test_more_permeability_lowers_the_pressure_everywhere():
    """Maximum principle: raising a anywhere lowers u everywhere, so d(sum u)/dx <= 0 in every cell."""
    op = DarcyFlow(12)
    x = op.example_input(1, 4).requires_grad_(True)
    (grad,) = torch.autograd.grad(op.pressure(x).sum(), x)
    assert bool((grad < 0).all())


def test_threshold_coefficient_is_the_fno_two_phase_field_and_not_differentiable():
    op = DarcyFlow(12, coefficient="threshold", sensors=3)
    assert op.differentiable is False and op.config()["differentiable"] is False
    x = op.example_input(2, 0)
    a = op.permeability(x)
    assert set(a.unique().tolist()) == {3.0, 12.0}
    assert torch.equal(a == 12.0, x > 0)
    smooth = DarcyFlow(12, coefficient="sigmoid", sensors=3, sigmoid_width=1e-4)
    torch.testing.assert_close(smooth(x), op(x), rtol=1e-3, atol=0)


def test_sensors_interpolate_bilinearly_with_zero_walls():
    op = DarcyFlow(8, sensors=[[0.5 / 8, 2.5 / 8], [0.0, 0.4], [1.0, 1.0], [1.0 / 8, 2.5 / 8]])
    x = op.example_input(1, 5)
    u = op.pressure(x)[0, 0]
    y = op(x)[0]
    torch.testing.assert_close(y[0], u[0, 2])  # a cell centre
    assert float(y[1]) == 0.0 and float(y[2]) == 0.0  # on the walls
    torch.testing.assert_close(y[3], (u[0, 2] + u[1, 2]) / 2)  # half-way between two centres
    grid = DarcyFlow(8, sensors=3)
    assert grid.output_shape == (9,) and torch.allclose(grid.sensors[4], torch.tensor([0.5, 0.5], dtype=F64))


def test_coarse_levels():
    op = DarcyFlow(32, sensors=5)
    x = op.example_input(3, 0)
    c2, c4 = op.coarse(), op.coarse(4)
    assert (c2.input_shape, c2.output_shape, c2.solver_resolution, c4.solver_resolution) == \
        (op.input_shape, op.output_shape, 16, 8)
    y = op(x)
    # measured relative differences (32 -> 16: 0.37%, 32 -> 8: 1.6%; at 64: 64 -> 32 0.1-0.2%, -> 16 0.5-1%)
    assert _rel(c2(x), y) < 0.006
    assert _rel(c4(x), y) < 0.025
    assert _rel(c2.coarse()(x), c4(x)) < 1e-12  # coarse of coarse == coarse(4)
    thr = DarcyFlow(32, sensors=5, coefficient="threshold")
    assert _rel(thr.coarse()(x), thr(x)) < 0.02  # measured 1.2% (geometric mean of the two phases)


def test_float32_and_batches():
    op = DarcyFlow(8, sensors=3)
    x = op.example_input(3, 0, torch.float32)
    y = op(x)
    assert y.dtype == torch.float32 and y.shape == (3, 9)
    torch.testing.assert_close(y, op(x.double()).float())


def test_config_rebuilds_the_same_model():
    op = DarcyFlow(12, coefficient="sigmoid", sensors=[[0.2, 0.3], [0.7, 0.7]], source=0.5, solver_resolution=6,
                   sigmoid_width=0.2)
    cfg = json.loads(json.dumps(op.config()))
    keys = ("resolution", "coefficient", "sensors", "source", "solver_resolution", "sigmoid_width")
    again = DarcyFlow(**{k: cfg[k] for k in keys})
    x = op.example_input(1, 0)
    assert torch.equal(op(x), again(x))
    assert DarcyFlow(12, sensors=4).config()["sensors"] == 4


def test_registry_entries_build():
    entry = REGISTRY_ENTRIES["darcy"]
    assert isinstance(entry["example"](0), entry["cls"])
    big = entry["benchmark"]()
    assert (big.input_shape, big.output_shape) == ((1, 64, 64), (49,))


@pytest.mark.parametrize("kwargs, match", [
    ({"coefficient": "log"}, "unknown coefficient 'log'"),
    ({"sensors": 0}, "at least 1 x 1"),
    ({"sensors": [[0.5, 1.5]]}, "unit square"),
    ({"sensors": [0.5, 0.5]}, r"shape \(S, 2\)"),
    ({"solver_resolution": 5}, "solver_resolution"),
    ({"source": float("nan")}, "source"),
    ({"sigmoid_width": 0.0}, "sigmoid_width"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DarcyFlow(8, **kwargs)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="resolution"):
        DarcyFlow(1)
    op = DarcyFlow(8)
    with pytest.raises(ValueError, match="must have shape"):
        op(torch.zeros(2, 1, 8, 9))
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 1, 1] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        op(x)
    with pytest.raises(ValueError, match="coarse"):
        op.coarse(3)
    with pytest.raises(ValueError, match="coarse"):
        op.coarse(8)


def test_overflowing_permeability_is_named():
    op = DarcyFlow(8)
    with pytest.raises(ValueError, match="permeability a"):
        op(torch.full((1, 1, 8, 8), 100.0))  # exp(100) overflows float32
