"""Adapters: deepinv physics <-> ForwardModel round trips, and numpy black-box simulators."""

import warnings

import deepinv
import numpy as np
import pytest
import torch

from forward_models import ForwardModel, Inpainting, MatrixOperator
from forward_models.adapters import (
    BlackBoxForwardModel,
    DeepInvForwardModel,
    ForwardModelPhysics,
    LinearForwardModelPhysics,
    damped_oscillator,
    to_deepinv,
)

F64 = torch.float64
TOL = dict(atol=1e-6, rtol=1e-6)


@pytest.fixture(autouse=True)
def _quiet_deepinv():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _blur():
    g = torch.Generator().manual_seed(0)
    return deepinv.physics.Blur(filter=torch.rand(1, 1, 3, 3, generator=g), padding="circular")


# ----------------------------------------------------------------------------- deepinv -> ours -> deepinv


def test_deepinv_blur_round_trip():
    blur = _blur()
    op = DeepInvForwardModel(blur, (1, 8, 8))
    assert op.linear and op.differentiable and op.output_shape == (1, 8, 8)
    back = to_deepinv(op)
    assert isinstance(back, deepinv.physics.LinearPhysics)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 1, 8, 8, generator=g, dtype=F64)
    y = torch.randn(3, 1, 8, 8, generator=g, dtype=F64)
    torch.testing.assert_close(op(x), blur.A(x), **TOL)
    torch.testing.assert_close(back.A(x), blur.A(x), **TOL)
    torch.testing.assert_close(back.A_adjoint(y), blur.A_adjoint(y), **TOL)
    assert abs(float(back.adjointness_test(x))) < 1e-6


def test_deepinv_inpainting_round_trip_and_output_shape_by_probe():
    physics = deepinv.physics.Inpainting(img_size=(2, 5, 7), mask=0.6, rng=torch.Generator().manual_seed(0))
    op = DeepInvForwardModel(physics, (2, 5, 7))
    assert op.output_shape == (2, 5, 7) and op.linear
    x = torch.randn(4, 2, 5, 7, dtype=F64)
    torch.testing.assert_close(to_deepinv(op).A(x), physics.A(x), **TOL)
    torch.testing.assert_close(op.adjoint(op(x)), physics.A_adjoint(physics.A(x)), **TOL)


def test_downsampling_changes_the_output_shape_and_keeps_complex_buffers():
    physics = deepinv.physics.Downsampling(img_size=(1, 8, 8), filter="gaussian", factor=2, padding="circular")
    op = DeepInvForwardModel(physics, (1, 8, 8))
    assert op.output_shape == (1, 4, 4)
    x = torch.randn(2, 1, 8, 8, dtype=F64)
    y32 = physics.A(x.float())
    y64 = op(x)  # casts the physics' tensors to float64 (complex ones to complex128)
    assert y64.dtype == F64 and physics.Fh.dtype == torch.complex128
    torch.testing.assert_close(y64.float(), y32, atol=1e-5, rtol=1e-5)


def test_nonlinear_deepinv_physics_has_no_adjoint():
    op = DeepInvForwardModel(deepinv.physics.Physics(A=lambda x, **kw: x**2), (3,))
    assert not op.linear and op.output_shape == (3,)
    torch.testing.assert_close(op(torch.full((2, 3), 3.0)), torch.full((2, 3), 9.0))
    with pytest.raises(NotImplementedError, match="not linear|no adjoint"):
        op.adjoint(torch.zeros(2, 3))
    assert type(to_deepinv(op)) is ForwardModelPhysics


def test_gradient_flows_through_the_deepinv_adapter():
    op = DeepInvForwardModel(_blur(), (1, 6, 6))
    x = torch.randn(2, 1, 6, 6, dtype=F64, requires_grad=True)
    w = torch.randn(2, 1, 6, 6, dtype=F64)
    (g,) = torch.autograd.grad((op(x) * w).sum(), x)
    torch.testing.assert_close(g, op.adjoint(w), **TOL)  # gradient of <Ax, w> is A^T w


def test_deepinv_adapter_refusals():
    with pytest.raises(ValueError, match="deepinv.physics.Physics"):
        DeepInvForwardModel(lambda x: x, (3,))
    blur = _blur()
    stacked = blur.stack(deepinv.physics.Inpainting(img_size=(1, 8, 8), mask=0.5))
    with pytest.raises(ValueError, match="one tensor"):
        DeepInvForwardModel(stacked, (1, 8, 8))
    with pytest.raises(ValueError, match="must have shape"):
        DeepInvForwardModel(blur, (1, 8, 8))(torch.zeros(2, 1, 9, 8))


# ----------------------------------------------------------------------------- ours -> deepinv -> ours


@pytest.mark.parametrize("make", [
    lambda: MatrixOperator(torch.randn(4, 7, generator=torch.Generator().manual_seed(0), dtype=F64)),
    lambda: Inpainting((torch.rand(1, 5, 6, generator=torch.Generator().manual_seed(1)) > 0.4).float()),
])
def test_our_linear_models_round_trip_through_deepinv(make):
    op = make()
    physics = to_deepinv(op)
    assert isinstance(physics, LinearForwardModelPhysics) and isinstance(physics, deepinv.physics.LinearPhysics)
    again = DeepInvForwardModel(physics, op.input_shape)
    assert again.linear and again.output_shape == op.output_shape
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, *op.input_shape, generator=g, dtype=F64)
    y = torch.randn(3, *op.output_shape, generator=g, dtype=F64)
    torch.testing.assert_close(again(x), op(x), **TOL)
    torch.testing.assert_close(again.adjoint(y), op.adjoint(y), **TOL)
    torch.testing.assert_close(physics.A_dagger(op(x)), op.pseudo_inverse(op(x)), **TOL)
    assert abs(float(physics.adjointness_test(x))) < 1e-6


def test_exported_physics_adds_its_noise_model():
    op = MatrixOperator(torch.eye(3, dtype=F64))
    physics = to_deepinv(op, noise_model=deepinv.physics.GaussianNoise(sigma=0.5))
    x = torch.zeros(20000, 3, dtype=F64)
    assert abs(float(physics(x).std()) - 0.5) < 0.01
    torch.testing.assert_close(physics.A(x), x)


def test_nonlinear_model_exports_as_plain_physics():
    op = BlackBoxForwardModel(damped_oscillator, (3,), (10,))
    physics = to_deepinv(op)
    assert type(physics) is ForwardModelPhysics and not isinstance(physics, deepinv.physics.LinearPhysics)
    x = torch.randn(2, 3, dtype=F64)
    torch.testing.assert_close(physics(x), op(x))


def test_to_deepinv_refuses_other_objects():
    with pytest.raises(ValueError, match="ForwardModels"):
        to_deepinv(_blur())


# ----------------------------------------------------------------------------- black boxes


def _counting(fn):
    def wrapped(a):
        wrapped.calls += 1
        return fn(a)
    wrapped.calls = 0
    return wrapped


def test_black_box_per_sample_and_batched_agree():
    per = _counting(damped_oscillator)
    batched = _counting(lambda a: np.stack([damped_oscillator(t) for t in a]))
    op1 = BlackBoxForwardModel(per, (3,), (10,))
    op2 = BlackBoxForwardModel(batched, (3,), (10,), batched=True)
    x = torch.randn(5, 3, dtype=F64)
    y1, y2 = op1(x), op2(x)
    torch.testing.assert_close(y1, y2)
    assert per.calls == 5 and batched.calls == 1
    assert y1.dtype == F64 and op1(x.float()).dtype == torch.float32
    assert not op1.differentiable and not op1.linear and isinstance(op1, ForwardModel)
    cfg = op2.config()
    assert cfg["batched"] is True and cfg["class"] == "BlackBoxForwardModel"


def test_black_box_output_carries_no_gradient():
    op = BlackBoxForwardModel(damped_oscillator, (3,), (10,))
    y = op(torch.zeros(1, 3, requires_grad=True))
    assert not y.requires_grad


def test_black_box_matches_the_numpy_formula():
    t = np.linspace(0.0, 3.0, 10)
    y = BlackBoxForwardModel(damped_oscillator, (3,), (10,))(torch.tensor([[np.log(2.0), np.log(0.5), 3.0]]))
    np.testing.assert_allclose(y[0].numpy(), 2.0 * np.exp(-0.5 * t) * np.cos(3.0 * t), rtol=1e-6)


@pytest.mark.parametrize("fn, batched, match", [
    (lambda a: np.zeros(9), False, r"returned shape \(9,\) for sample 0, expected \(10,\)"),
    (lambda a: np.zeros((2, 10)), True, r"returned shape \(2, 10\) for a batch of 3"),
    (lambda a: np.full(10, np.nan), False, "NaN or Inf"),
    (lambda a: np.full((3, 10), np.inf), True, "NaN or Inf"),
    (lambda a: "ten numbers", False, "non-numeric str"),
])
def test_black_box_refusals(fn, batched, match):
    op = BlackBoxForwardModel(fn, (3,), (10,), batched=batched)
    with pytest.raises(ValueError, match=match):
        op(torch.zeros(3, 3))


def test_black_box_constructor_refusals():
    with pytest.raises(ValueError, match="callable"):
        BlackBoxForwardModel(42, (3,), (10,))
    with pytest.raises(ValueError, match="positive"):
        BlackBoxForwardModel(damped_oscillator, (0,), (10,))
