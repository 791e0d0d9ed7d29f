"""Cartesian MRI operators, undersampling masks and coil maps (forward_models.mri / masks / coils)."""

import json
import math
import warnings

import numpy as np
import pytest
import torch

from forward_models import ForwardModel
from forward_models.coils import synthetic_coil_maps
from forward_models.masks import cartesian_mask, realised_acceleration
from forward_models.mri import REGISTRY_ENTRIES, MultiCoilMRI, RealImageMRI, SingleCoilMRI, fft2c, ifft2c

F64 = torch.float64


def _rand(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --------------------------------------------------------------------------- FFT and single coil

def test_centred_fft_matches_numpy_and_puts_dc_in_the_centre():
    z = torch.complex(_rand(3, 8, 6, seed=1), _rand(3, 8, 6, seed=2))
    want = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(z.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(fft2c(z).numpy(), want, atol=1e-12)
    torch.testing.assert_close(ifft2c(fft2c(z)), z)
    k = fft2c(torch.ones(8, 6, dtype=torch.complex128))
    assert abs(float(k[4, 3].real) - math.sqrt(48)) < 1e-12  # DC at (H // 2, W // 2)
    assert float(k.abs().sum() - k[4, 3].abs()) < 1e-12


def test_fully_sampled_single_coil_is_unitary():
    op = SingleCoilMRI(torch.ones(16, 12))
    x = _rand(3, 2, 16, 12)
    y = op(x)
    torch.testing.assert_close(y.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1), rtol=1e-12, atol=0)
    torch.testing.assert_close(op.adjoint(y), x, rtol=1e-12, atol=1e-12)


def test_single_coil_pseudo_inverse_and_zero_filled():
    full = SingleCoilMRI(torch.ones(16, 16))
    x = _rand(2, 2, 16, 16, seed=3)
    torch.testing.assert_close(full.pseudo_inverse(full(x)), x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(full.zero_filled(full(x)), x, rtol=1e-12, atol=1e-12)
    op = SingleCoilMRI.cartesian(16, acceleration=4, center_fraction=0.125, kind="random", seed=1)
    y = op(x)
    # zero-filled = inverse DFT of the masked k-space
    torch.testing.assert_close(op.zero_filled(y), op.adjoint(y))
    # damped closed form = the generic conjugate-gradient A^T (A A^T + d I)^{-1} y
    for d in (0.0, 0.3):
        torch.testing.assert_close(op.pseudo_inverse(y, damping=d), ForwardModel.pseudo_inverse(op, y, damping=d),
                                   rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="damping"):
        op.pseudo_inverse(y, damping=-1.0)


def test_single_coil_agrees_with_deepinv():
    dinv = pytest.importorskip("deepinv")
    mask = cartesian_mask(32, 4, 0.08, "equispaced", seed=2)
    op = SingleCoilMRI(mask)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = dinv.physics.MRI(mask=mask, img_size=(32, 32))
    x = _rand(2, 2, 32, 32, seed=4, dtype=torch.float32)
    torch.testing.assert_close(op(x), ref.A(x))
    torch.testing.assert_close(op.adjoint(op(x)), ref.A_adjoint(ref.A(x)))


def test_float32_input_stays_float32():
    op = SingleCoilMRI.cartesian(16, 4, 0.125, "random", 0)
    x = _rand(2, 2, 16, 16, seed=5)
    y32 = op(x.float())
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), op(x), rtol=1e-5, atol=1e-5)


def test_least_squares_gradient_is_adjoint_of_residual():
    op = REGISTRY_ENTRIES["mri-multicoil"]["example"](0)
    x = _rand(2, *op.input_shape, seed=6).requires_grad_(True)
    y = _rand(2, *op.output_shape, seed=7)
    (g,) = torch.autograd.grad(((op(x) - y) ** 2).sum(), x)
    torch.testing.assert_close(g, 2 * op.adjoint(op(x.detach()) - y))


# --------------------------------------------------------------------------- masks

@pytest.mark.parametrize("kind", ["random", "equispaced", "gaussian"])
@pytest.mark.parametrize("acceleration,center_fraction", [(4, 0.08), (8, 0.04)])
@pytest.mark.parametrize("shape", [(64, 64), (48, 100)])
def test_mask_acceleration_centre_and_lines(kind, acceleration, center_fraction, shape):
    m = cartesian_mask(shape, acceleration, center_fraction, kind, seed=3)
    H, W = shape
    assert m.shape == shape and m.dtype == torch.get_default_dtype()
    assert bool(((m == 0) | (m == 1)).all())
    assert bool((m == m[0:1]).all()), "whole phase-encode columns"
    n = m[0].sum().item()
    assert abs(n - W / acceleration) <= 0.5  # the nearest whole number of lines
    if W == 64:
        assert realised_acceleration(m) == acceleration
    assert abs(realised_acceleration(m) / acceleration - 1) < 0.04, realised_acceleration(m)  # W=100: 7.69 at 8x
    n_c = math.floor(center_fraction * W + 0.5)
    start = W // 2 - n_c // 2
    assert bool((m[:, start:start + n_c] == 1).all())
    assert m[0].sum() > n_c  # lines outside the band as well


def test_mask_is_seeded():
    a = cartesian_mask(64, 4, 0.08, "random", seed=1)
    assert torch.equal(a, cartesian_mask(64, 4, 0.08, "random", seed=1))
    assert not torch.equal(a, cartesian_mask(64, 4, 0.08, "random", seed=2))
    g = cartesian_mask(64, 4, 0.08, "gaussian", seed=1)
    assert not torch.equal(g, cartesian_mask(64, 4, 0.08, "gaussian", seed=2))


def test_gaussian_mask_is_denser_near_the_centre():
    m = torch.stack([cartesian_mask(128, 4, 0.0, "gaussian", seed=s)[0] for s in range(20)]).mean(0)
    assert m[48:80].mean() > 2 * torch.cat([m[:16], m[-16:]]).mean()


@pytest.mark.parametrize("kwargs,match", [
    ({"acceleration": 0.5}, "acceleration"),
    ({"acceleration": float("nan")}, "acceleration"),
    ({"acceleration": "fast"}, "acceleration"),
    ({"acceleration": 100}, "too high"),
    ({"center_fraction": 1.0}, "center_fraction"),
    ({"center_fraction": -0.1}, "center_fraction"),
    ({"acceleration": 8, "center_fraction": 0.3}, "center_fraction"),
    ({"kind": "poisson"}, "unknown mask kind"),
    ({"shape": (0, 16)}, "shape"),
    ({"shape": (16,)}, "shape"),
    ({"shape": "abc"}, "shape"),
    ({"shape": (16.5, 16)}, "shape"),
])
def test_bad_mask_arguments(kwargs, match):
    args = {"shape": (32, 32), "acceleration": 4, "center_fraction": 0.08, "kind": "random", **kwargs}
    with pytest.raises(ValueError, match=match):
        cartesian_mask(**args)


# --------------------------------------------------------------------------- coil maps and multi coil

def test_coil_maps_are_normalised_smooth_and_seeded():
    S = synthetic_coil_maps(8, 32, 24, seed=0, dtype=F64)
    assert S.shape == (2, 8, 32, 24)
    torch.testing.assert_close((S**2).sum((0, 1)), torch.ones(32, 24, dtype=F64), rtol=1e-12, atol=1e-12)
    assert torch.equal(S, synthetic_coil_maps(8, 32, 24, seed=0, dtype=F64))
    assert not torch.equal(S, synthetic_coil_maps(8, 32, 24, seed=1, dtype=F64))
    Sc = torch.complex(S[0], S[1])
    assert float((Sc[:, 1:] - Sc[:, :-1]).abs().max()) < 0.3  # smooth: small pixel-to-pixel change
    assert float(Sc.abs().std(0).mean()) > 0.05              # coils differ
    with pytest.raises(ValueError, match="num_coils"):
        synthetic_coil_maps(0, 8, 8)
    with pytest.raises(ValueError, match="radius"):
        synthetic_coil_maps(4, 8, 8, radius=1.0)


def test_multicoil_adjoint_at_benchmark_size():
    op = REGISTRY_ENTRIES["mri-multicoil"]["benchmark"]()
    assert op.input_shape == (2, 64, 64) and op.output_shape == (2, 8, 64, 64)
    x = _rand(2, *op.input_shape, seed=8)
    y = _rand(2, *op.output_shape, seed=9)
    Ax = op(x)
    err = abs(float((Ax * y).sum() - (x * op.adjoint(y)).sum())) / float(Ax.norm() * y.norm())
    assert err < 1e-13, err  # measured 3e-18 (float32: 3e-10)


def test_multicoil_fully_sampled_is_isometric_and_inverted():
    S = synthetic_coil_maps(4, 16, 16, seed=1, dtype=F64)
    op = MultiCoilMRI(torch.ones(16, 16), S)
    x = _rand(2, 2, 16, 16, seed=10)
    y = op(x)
    torch.testing.assert_close(y.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1), rtol=1e-12, atol=0)
    torch.testing.assert_close(op.zero_filled(y), x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(op.pseudo_inverse(y), x, rtol=1e-10, atol=1e-10)
    # zero_filled divides by sum |S|^2, so unnormalised maps are inverted too
    op2 = MultiCoilMRI(torch.ones(16, 16), 3.0 * S)
    torch.testing.assert_close(op2.zero_filled(op2(x)), x, rtol=1e-12, atol=1e-12)


def test_multicoil_svd_pseudo_inverse():
    op = REGISTRY_ENTRIES["mri-multicoil"]["example"](0)  # equispaced 2x, 4 coils: well conditioned
    x = _rand(2, *op.input_shape, seed=11)
    y = op(x)
    for d in (0.0, 0.1):
        torch.testing.assert_close(op.pseudo_inverse(y, damping=d), ForwardModel.pseudo_inverse(op, y, damping=d),
                                   rtol=1e-7, atol=1e-7)
    # benchmark (random 4x, 8 coils: SENSE condition number ~4e6) is solved exactly by the per-row SVD
    big = REGISTRY_ENTRIES["mri-multicoil"]["benchmark"]()
    yb = big(_rand(1, *big.input_shape, seed=12))
    assert float((big(big.pseudo_inverse(yb)) - yb).norm() / yb.norm()) < 1e-10


def test_multicoil_pseudo_inverse_follows_an_in_place_change_of_the_coil_maps():
    op = REGISTRY_ENTRIES["mri-multicoil"]["example"](0)
    x = _rand(1, *op.input_shape, seed=13)
    before = op.pseudo_inverse(op(x))  # fills the per-row SVD cache
    with torch.no_grad():
        op.coil_maps.mul_(2.0)  # A -> 2 A, so A^+ -> A^+ / 2
    y2 = op(x)
    torch.testing.assert_close(op.pseudo_inverse(y2), ForwardModel.pseudo_inverse(op, y2), rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(op.pseudo_inverse(y2 / 2.0), before / 2.0, rtol=1e-9, atol=1e-9)


def _dense_damped_inverse(op, y, damping):
    A = op.matrix()
    Y = y.reshape(len(y), -1).T
    if damping > 0:
        Z = A.T @ torch.linalg.solve(A @ A.T + damping * torch.eye(A.shape[0], dtype=A.dtype), Y)
    else:
        Z = torch.linalg.pinv(A, rtol=1e-10) @ Y
    return Z.T.reshape(len(y), *op.input_shape)


@pytest.mark.parametrize("base", [
    SingleCoilMRI.cartesian(16, acceleration=4, center_fraction=0.125, seed=0),
    MultiCoilMRI.cartesian(16, acceleration=2, kind="equispaced", seed=0, num_coils=4, coil_seed=0),
    MultiCoilMRI.cartesian(16, acceleration=4, seed=1, num_coils=4, coil_seed=1),  # ill-conditioned
], ids=["single", "multi-2x", "multi-4x"])
def test_real_image_pseudo_inverse_is_the_dense_damped_inverse(base):
    op = RealImageMRI(base)
    x = _rand(3, *op.input_shape, seed=20)
    y = op(x) + 0.1 * _rand(3, *op.output_shape, seed=21)
    for d in (0.0, 0.01, 1.0):
        # measured max relative error 1e-11 (multi-4x, no damping), 1e-15 otherwise
        got = op.pseudo_inverse(y, damping=d)
        ref = _dense_damped_inverse(op, y, d)
        assert float((got - ref).norm() / ref.norm()) < 1e-9, d
    assert op.pseudo_inverse(y.float(), damping=0.1).dtype == torch.float32
    with pytest.raises(ValueError, match="non-negative"):
        op.pseudo_inverse(y, damping=-1.0)


def test_real_image_pseudo_inverse_at_benchmark_size_and_after_an_in_place_change():
    op = RealImageMRI(REGISTRY_ENTRIES["mri-multicoil"]["benchmark"]())
    x = torch.rand(2, *op.input_shape, generator=torch.Generator().manual_seed(22), dtype=F64)
    y = op(x)
    # noiseless data: A A^+ y = y to round-off although the SENSE condition number is ~1e6
    assert float((op(op.pseudo_inverse(y)) - y).norm() / y.norm()) < 1e-10
    before = op.pseudo_inverse(y, damping=0.1)
    with torch.no_grad():
        op.operator.coil_maps.mul_(2.0)  # A -> 2 A: the cached per-row SVD must be rebuilt
    small = RealImageMRI(REGISTRY_ENTRIES["mri-multicoil"]["example"](0))
    small.pseudo_inverse(small(x[:, :, :16, :16]))
    with torch.no_grad():
        small.operator.coil_maps.mul_(2.0)
    y2 = small(x[:, :, :16, :16])
    torch.testing.assert_close(small.pseudo_inverse(y2, damping=0.1), _dense_damped_inverse(small, y2, 0.1),
                               rtol=1e-9, atol=1e-9)
    # (2A)^T (4 A A^T + d)^-1 (2 y) = A^T (A A^T + d/4)^-1 y
    torch.testing.assert_close(op.pseudo_inverse(2 * y, damping=0.4), before, rtol=1e-9, atol=1e-9)


def test_real_image_pseudo_inverse_of_a_non_column_mask_uses_conjugate_gradients():
    mask = (_rand(16, 16, seed=23) > 0).to(F64)  # random points: no per-row split
    op = RealImageMRI(SingleCoilMRI(mask))
    y = op(_rand(2, *op.input_shape, seed=24))
    assert op._row_svd() is None
    torch.testing.assert_close(op.pseudo_inverse(y, damping=0.1), _dense_damped_inverse(op, y, 0.1),
                               rtol=1e-8, atol=1e-8)
    # zero damping with noise in the unmeasured entries: y is outside range(A) and A A^T is singular;
    # CG in measurement space diverged there (relative error 6e8 in float32), the normal equations do not
    noisy = y + 0.1 * _rand(*y.shape, seed=25)
    ref = _dense_damped_inverse(op, noisy, 0.0)
    for dtype, tol in ((F64, 1e-9), (torch.float32, 1e-5)):
        got = op.pseudo_inverse(noisy.to(dtype)).double()
        assert float((got - ref).norm() / ref.norm()) < tol, dtype


def test_multicoil_agrees_with_deepinv():
    dinv = pytest.importorskip("deepinv")
    op = MultiCoilMRI.cartesian(32, 4, 0.08, "random", seed=0, num_coils=4, coil_seed=0)
    S = torch.complex(op.coil_maps[0], op.coil_maps[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = dinv.physics.MultiCoilMRI(mask=op.mask, coil_maps=S, img_size=(32, 32))
    x = _rand(2, 2, 32, 32, seed=13)
    torch.testing.assert_close(op(x), ref.A(x))
    y = op(x)
    torch.testing.assert_close(op.adjoint(y), ref.A_adjoint(y))


def test_complex_coil_maps_accepted():
    S = synthetic_coil_maps(3, 8, 8, dtype=F64)
    m = torch.ones(8, 8)
    x = _rand(1, 2, 8, 8, seed=14)
    torch.testing.assert_close(MultiCoilMRI(m, S)(x), MultiCoilMRI(m, torch.complex(S[0], S[1]))(x))


# --------------------------------------------------------------------------- validation and config

def test_column_mask_with_height():
    cols = cartesian_mask((1, 16), 4, 0.125, "random", seed=0)[0]
    op = SingleCoilMRI(cols, height=12)
    assert op.input_shape == (2, 12, 16)
    assert torch.equal(op.mask, cols.expand(12, 16))


@pytest.mark.parametrize("mask,match", [
    (torch.full((8, 8), 0.5), "only 0"),
    (torch.zeros(8, 8), "samples no"),
    (torch.ones(2, 8, 8), "shape"),
    (torch.ones(8), "at least 2x2"),
])
def test_bad_masks(mask, match):
    with pytest.raises(ValueError, match=match):
        SingleCoilMRI(mask)


def test_bad_coil_maps_and_measurements():
    m = torch.ones(8, 8)
    with pytest.raises(ValueError, match=r"\(2, C, H, W\)"):
        MultiCoilMRI(m, torch.ones(3, 8, 8))
    with pytest.raises(ValueError, match="do not match"):
        MultiCoilMRI(m, torch.ones(2, 3, 8, 6))
    with pytest.raises(ValueError, match="NaN"):
        MultiCoilMRI(m, torch.full((2, 3, 8, 8), float("nan")))
    op = MultiCoilMRI(m, synthetic_coil_maps(3, 8, 8))
    with pytest.raises(ValueError, match="must have shape"):
        op.adjoint(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="must have shape"):
        SingleCoilMRI(m).pseudo_inverse(torch.zeros(1, 2, 8, 7))


def test_config_is_json_and_rebuilds_the_mask():
    op = MultiCoilMRI.cartesian(32, 8, 0.04, "gaussian", seed=5, num_coils=4, coil_seed=2)
    cfg = json.loads(json.dumps(op.config()))
    assert cfg["class"] == "MultiCoilMRI" and cfg["num_coils"] == 4
    spec = cfg["mask_spec"]
    m = cartesian_mask(32, spec["acceleration"], spec["center_fraction"], spec["kind"], spec["seed"])
    assert torch.equal(m, op.mask.to(m.dtype))
    assert sorted(cfg["sampled_columns"]) == [int(j) for j in torch.nonzero(m[0]).flatten()]
    assert cfg["acceleration_realised"] == 8.0
