"""The one contract suite, run over every registered forward model (a new operator: one registry line)."""

import pytest
import torch

from forward_models import REGISTRY, ForwardModel, Gaussian, InverseProblem, example_operator, get_operator

NAMES = sorted(REGISTRY)
F64 = torch.float64


def _batch(op, n, seed, dtype=F64):
    dev = next((t.device for t in list(op.parameters()) + list(op.buffers())), torch.device("cpu"))
    return op.example_input(n, seed, dtype).to(dev)


@pytest.fixture(params=NAMES)
def op(request):
    return example_operator(request.param, seed=0)


def test_is_forward_model_with_shapes(op):
    assert isinstance(op, ForwardModel)
    y = op(_batch(op, 3, 0))
    assert tuple(y.shape) == (3, *op.output_shape)
    assert y.dtype == F64


def test_batch_consistency(op):
    x = _batch(op, 4, 1)
    full = op(x)
    one_by_one = torch.cat([op(x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(full, one_by_one)


def test_adjoint_dot_product(op):
    """<A x, y> = <x, A^T y>, relative error < 1e-5 in float64 (normalised by ||A x|| ||y||)."""
    if not op.linear:
        pytest.skip("not linear")
    x = _batch(op, 2, 2)
    g = torch.Generator().manual_seed(3)
    y = torch.randn(2, *op.output_shape, generator=g, dtype=F64)
    Ax = op(x)
    lhs = (Ax * y).sum()
    rhs = (x * op.adjoint(y)).sum()
    assert abs(float(lhs - rhs)) <= 1e-5 * float(Ax.norm() * y.norm())


def test_pseudo_inverse_is_a_generalised_inverse(op):
    if not op.linear:
        pytest.skip("not linear")
    x = _batch(op, 2, 4)
    y = op(x)
    torch.testing.assert_close(op(op.pseudo_inverse(y)), y, atol=1e-8, rtol=1e-8)
    # the generic conjugate-gradient pseudo-inverse agrees with the operator's own
    torch.testing.assert_close(ForwardModel.pseudo_inverse(op, y), op.pseudo_inverse(y), atol=1e-7, rtol=1e-7)


def test_pseudo_inverse_rejects_negative_or_nan_damping(op):
    if not op.linear:
        pytest.skip("not linear")
    y = op(_batch(op, 1, 6))
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="damping must be non-negative"):
            op.pseudo_inverse(y, damping=bad)
    op.prepare_pseudo_inverse()  # every model has it (a no-op for the generic conjugate gradients)
    torch.testing.assert_close(op(op.pseudo_inverse(y)), y, atol=1e-8, rtol=1e-8)


def test_matrix_agrees_with_forward(op):
    if not op.linear:
        pytest.skip("not linear")
    x = _batch(op, 2, 5)
    torch.testing.assert_close(op(x).reshape(2, -1), x.reshape(2, -1) @ op.matrix().to(F64).T)


def test_gradient_matches_finite_differences(op):
    """Directional derivative of L(x) = <F(x), w> by autograd vs central differences (float64)."""
    if not op.differentiable:
        pytest.skip("not differentiable")
    x = _batch(op, 2, 6)
    g = torch.Generator().manual_seed(9)
    v = torch.randn(x.shape, generator=g, dtype=F64)
    v = v / v.norm() * x.norm().clamp_min(1.0)
    w = torch.randn(2, *op.output_shape, generator=g, dtype=F64)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((op(xg) * w).sum(), xg)
    h = 1e-6
    fd = float(((op(x + h * v) - op(x - h * v)) * w).sum()) / (2 * h)
    ad = float((grad * v).sum())
    assert abs(ad - fd) <= 1e-4 * max(1.0, abs(fd)), (ad, fd)


def test_wrong_input_shape_is_named(op):
    bad = torch.zeros(2, *[s + 1 for s in op.input_shape], dtype=F64)
    with pytest.raises(ValueError, match="must have shape"):
        op(bad)
    with pytest.raises(ValueError, match="must have shape"):
        op(torch.zeros(*op.input_shape, dtype=F64))  # missing batch dimension
    x = _batch(op, 2, 8)
    x.view(-1)[3] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        op(x)


def test_seeded_simulation_is_reproducible(op):
    truth = _batch(op, 1, 7)[0]
    a = InverseProblem.simulate(op, Gaussian(0.1), truth, seed=11)
    b = InverseProblem.simulate(op, Gaussian(0.1), truth, seed=11)
    c = InverseProblem.simulate(op, Gaussian(0.1), truth, seed=12)
    assert torch.equal(a.y, b.y) and not torch.equal(a.y, c.y)


def test_config_is_json(op):
    import json

    cfg = json.loads(json.dumps(op.config()))
    assert cfg["class"] == type(op).__name__


def test_unknown_operator_suggests_a_name():
    with pytest.raises(ValueError, match="did you mean 'matrix'"):
        get_operator("matirx")


def test_coarse_level_keeps_shapes_and_agrees_roughly(op, capsys):
    """A coarse level takes the same input and predicts the same observation; report its relative difference."""
    try:
        coarse = op.coarse()
    except (NotImplementedError, ValueError):
        pytest.skip("no coarse level at the example size")
    assert isinstance(coarse, ForwardModel)
    assert coarse.input_shape == op.input_shape and coarse.output_shape == op.output_shape
    x = _batch(op, 2, 10)
    fine, rough = op(x), coarse(x)
    rel = float((rough - fine).norm() / fine.norm())
    with capsys.disabled():
        print(f"\n  coarse-vs-fine relative difference of {type(op).__name__}: {rel:.3g}")
    assert rel < 0.5, rel


def test_float32_copy_agrees_with_float64(op):
    """``op.to(torch.float32)`` computes the same model (samplers run forward models in the prior's precision).

    Catches buffers that ``Module.to(dtype)`` would corrupt (a complex buffer cast to a real dtype loses
    its imaginary part with only a warning).
    """
    import copy
    import warnings

    x = op.example_input(2, seed=0, dtype=torch.float64)
    with torch.no_grad():
        y64 = op(x.to(torch.float32) if type(op).__name__ == "AcousticFWI" else x).double()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            op32 = copy.deepcopy(op).to(torch.float32)
        y32 = op32(x.to(torch.float32)).double()
    assert float((y32 - y64).norm() / y64.norm().clamp_min(1e-30)) < 1e-3
