"""Radial MRI on a NUFFT: direct-sum agreement, adjoint, gradients, gridding, coils, engines, configuration."""

import copy
import json
import math

import pytest
import torch

from forward_models.coils import synthetic_coil_maps
from forward_models.errors import ForwardModelError
from forward_models.generators.phantoms import shepp_logan
from forward_models.mri import fft2c
from forward_models.radial_mri import RadialMRI, radial_density, radial_trajectory

F64 = torch.float64


def _ndft(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Direct sum ``(1 / sqrt(H W)) sum_r x(r) exp(-i k . r)``, ``x`` complex ``(H, W)``, ``k`` ``(2, M)``."""
    H, W = x.shape
    r = torch.arange(H, dtype=F64) - H // 2
    c = torch.arange(W, dtype=F64) - W // 2
    phase = k[0][:, None, None] * r[None, :, None] + k[1][:, None, None] * c[None, None, :]
    return (torch.exp(-1j * phase) * x).sum((1, 2)) / math.sqrt(H * W)


def _cplx(t):
    return torch.complex(t[:, 0], t[:, 1])


def test_trajectory_and_shapes():
    op = RadialMRI(64, spokes=32)
    assert op.input_shape == (2, 64, 64) and op.output_shape == (2, 32, 128)
    k = radial_trajectory(4, 8, "uniform")
    assert k.shape == (2, 4, 8)
    # spoke s at angle pi s / 4; the readout runs over [-pi, pi) through the centre
    torch.testing.assert_close(k[:, :, 4], torch.zeros(2, 4, dtype=F64))
    torch.testing.assert_close(k[1, 0], (torch.arange(8, dtype=F64) - 4) * math.pi / 4)
    golden = radial_trajectory(3, 8, "golden")
    angle = torch.atan2(golden[0, 1, -1], golden[1, 1, -1])
    assert abs(float(angle) - math.pi / ((1 + math.sqrt(5)) / 2)) < 1e-12


@pytest.mark.parametrize("shape", [(6, 6), (5, 8)])
def test_matches_the_direct_fourier_sum(shape):
    op = RadialMRI(shape, spokes=5, samples_per_spoke=7)
    x = op.example_input(1, seed=1)
    ref = _ndft(_cplx(x)[0], op.kspace.reshape(2, -1)).reshape(op.spokes, op.samples_per_spoke)
    torch.testing.assert_close(_cplx(op(x))[0], ref, atol=1e-11, rtol=1e-11)


def test_on_cartesian_points_it_is_the_centred_orthonormal_dft():
    N = 8
    op = RadialMRI(N, angles=[0.0, 90.0], samples_per_spoke=N)  # rho = 2 pi m / N: the grid's axes
    x = op.example_input(1, seed=2)
    X = fft2c(_cplx(x)[0])
    y = _cplx(op(x))[0]
    torch.testing.assert_close(y[0], X[N // 2, :], atol=1e-11, rtol=0)  # theta = 0: along columns
    torch.testing.assert_close(y[1], X[:, N // 2], atol=1e-11, rtol=0)  # theta = 90: along rows


@pytest.mark.parametrize("coils, real", [(0, False), (3, False), (3, True)])
def test_adjoint_identity_to_1e_10(coils, real):
    maps = synthetic_coil_maps(coils, 16, 16, seed=0, dtype=F64) if coils else None
    op = RadialMRI(16, spokes=9, coil_maps=maps, real_image=real)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, *op.input_shape, generator=g, dtype=F64)
    y = torch.randn(2, *op.output_shape, generator=g, dtype=F64)
    Ax = op(x)
    err = abs(float((Ax * y).sum() - (x * op.adjoint(y)).sum())) / float(Ax.norm() * y.norm())
    assert err < 1e-10, err
    op32 = copy.deepcopy(op).to(torch.float32)
    Ax32 = op32(x.float())
    err32 = abs(float((Ax32 * y.float()).sum() - (x.float() * op32.adjoint(y.float())).sum())) / float(
        Ax.norm() * y.norm())
    assert err32 < 1e-5, err32  # FINUFFT's single-precision tolerance
    assert float((Ax32.double() - Ax).norm() / Ax.norm()) < 1e-5


def test_gradcheck_on_a_tiny_size():
    maps = synthetic_coil_maps(2, 5, 5, seed=1, dtype=F64)
    for op in (RadialMRI(5, spokes=3, samples_per_spoke=4), RadialMRI(5, spokes=3, coil_maps=maps, real_image=True)):
        x = op.example_input(2, seed=3).requires_grad_(True)
        assert torch.autograd.gradcheck(op, (x,))
        assert torch.autograd.gradgradcheck(op, (x,))
        y = torch.randn(1, *op.output_shape, dtype=F64, generator=torch.Generator().manual_seed(4), requires_grad=True)
        assert torch.autograd.gradcheck(op.adjoint, (y,))


def test_multicoil_is_the_single_coil_operator_on_each_weighted_image():
    maps = synthetic_coil_maps(3, 12, 12, seed=0, dtype=F64)
    multi = RadialMRI(12, spokes=6, coil_maps=maps)
    single = RadialMRI(12, spokes=6)
    x = multi.example_input(1, seed=5)
    S = torch.complex(maps[0], maps[1])
    for c in range(3):
        xc = torch.view_as_real(_cplx(x) * S[c]).movedim(-1, 1)
        torch.testing.assert_close(multi(x)[:, :, c], single(xc))


def test_gridding_reconstructs_with_dense_spokes_and_beats_the_adjoint():
    x = shepp_logan(64).double()[None]  # (1, 1, 64, 64), real
    dense = RadialMRI(64, spokes=201, trajectory="uniform", real_image=True)
    rec = dense.gridding(dense(x))
    assert float((rec - x).norm() / x.norm()) < 0.2
    # the ramp weights integrate the narrow peak of the image's DC term on the readout grid: a few % of bias,
    # which a finer readout reduces
    assert abs(float(rec.mean() / x.mean()) - 1) < 0.06
    fine = RadialMRI(64, spokes=201, samples_per_spoke=256, trajectory="uniform", real_image=True)
    assert abs(float(fine.gridding(fine(x)).mean() / x.mean()) - 1) < 0.02
    sparse = RadialMRI(64, spokes=32, real_image=True)
    y = sparse(x)
    grid = sparse.gridding(y)
    adj = sparse.adjoint(y)
    best_scale = float((adj * x).sum() / (adj * adj).sum())  # even the adjoint's best rescaling is worse
    assert float((grid - x).norm()) < float((best_scale * adj - x).norm())
    # coil-combined gridding: as good as single-coil gridding, and exact coil combination on dense spokes
    maps = synthetic_coil_maps(4, 64, 64, seed=0, dtype=F64)
    multi = RadialMRI(64, spokes=32, coil_maps=maps, real_image=True)
    err_multi, err_single = float((multi.gridding(multi(x)) - x).norm()), float((grid - x).norm())
    assert err_multi < 1.2 * err_single, (err_multi, err_single)
    multi_dense = RadialMRI(64, spokes=201, trajectory="uniform", coil_maps=maps, real_image=True)
    assert float((multi_dense.gridding(multi_dense(x)) - x).norm() / x.norm()) < 0.2


def test_density_weights_sum_to_the_disc_area():
    # the ramp quadrature of the disc |k| < pi: sum over spokes and samples of w ~ pi^3 (area pi * pi^2)
    w = radial_density(40, 128)
    assert abs(float(w.sum() * 40) / math.pi**3 - 1) < 0.02


def test_torchkbnufft_engine_agrees_with_finufft():
    x = shepp_logan(32).double()[None]
    a = RadialMRI(32, spokes=16, real_image=True)
    b = RadialMRI(32, spokes=16, real_image=True, engine="torchkbnufft")
    ya, yb = a(x), b(x)
    assert float((ya - yb).norm() / ya.norm()) < 5e-3
    g = torch.Generator().manual_seed(0)
    y = torch.randn(1, *b.output_shape, generator=g, dtype=F64)
    err = abs(float((yb * y).sum() - (x * b.adjoint(y)).sum())) / float(yb.norm() * y.norm())
    assert err < 1e-10, err  # its adjoint is the exact transpose of its own forward map


def test_config_round_trip():
    for op in (RadialMRI(16, spokes=5, trajectory="uniform"),
               RadialMRI.with_coils(16, spokes=5, num_coils=3, coil_seed=2, real_image=True),
               RadialMRI(16, angles=[0.0, 30.0, 75.0], samples_per_spoke=20)):
        cfg = json.loads(json.dumps(op.config()))
        again = RadialMRI.from_config(cfg)
        assert again.config() == op.config()
        x = op.example_input(1, seed=0)
        assert torch.equal(again(x), op(x))
    with pytest.raises(ForwardModelError, match="coil_spec"):
        RadialMRI.from_config({**RadialMRI(8, spokes=2, coil_maps=torch.ones(2, 1, 8, 8)).config()})


@pytest.mark.parametrize("kwargs, match", [
    ({"img_size": 3}, "img_size"),
    ({"spokes": 0}, "spokes"),
    ({"samples_per_spoke": 1}, "samples_per_spoke"),
    ({"trajectory": "spiral"}, "unknown radial trajectory"),
    ({"engine": "fft"}, "unknown NUFFT engine"),
    ({"coil_maps": torch.ones(2, 2, 8, 9)}, "coil maps must have shape"),
    ({"coil_maps": torch.full((2, 2, 8, 8), float("nan"))}, "NaN"),
    ({"angles": []}, "angles is empty"),
])
def test_bad_arguments_are_one_line(kwargs, match):
    args = {"img_size": 8, **kwargs}
    with pytest.raises(ForwardModelError, match=match):
        RadialMRI(**args)
