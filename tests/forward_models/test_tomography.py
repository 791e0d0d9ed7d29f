"""Parallel-beam CT (forward_models.tomography): geometry, exact adjoint, FBP, validation."""

import json
import math
import warnings

import pytest
import torch

from forward_models.generators.phantoms import shepp_logan
from forward_models.tomography import REGISTRY_ENTRIES, ParallelBeamCT, ramp_filter

F64 = torch.float64


def _rand(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_shapes_and_dtypes():
    op = REGISTRY_ENTRIES["ct"]["benchmark"]()
    assert op.input_shape == (1, 64, 64)
    assert op.output_shape == (1, 30, 91) and op.num_detectors == math.ceil(math.sqrt(2) * 64)
    x = _rand(3, 1, 64, 64)
    for dtype in (torch.float32, F64):
        y = op(x.to(dtype))
        assert y.dtype == dtype and y.shape == (3, 1, 30, 91)
        assert op.adjoint(y).dtype == dtype and op.fbp(y).dtype == dtype
    torch.testing.assert_close(op(x.float()).double(), op(x), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(op.angles_deg, torch.arange(30, dtype=F64) * 6.0)


@pytest.mark.parametrize("dtype,tol", [(F64, 1e-13), (torch.float32, 1e-6)])
def test_adjoint_is_exact(dtype, tol):
    """Dot-product test at the benchmark size; measured ~1e-17 (float64) and ~4e-10 (float32)."""
    op = ParallelBeamCT(64, 30)
    x = _rand(2, 1, 64, 64, seed=1, dtype=dtype)
    y = _rand(2, *op.output_shape, seed=2, dtype=dtype)
    Ax = op(x)
    err = abs(float((Ax * y).double().sum() - (x * op.adjoint(y)).double().sum()))
    assert err <= tol * float(Ax.double().norm() * y.double().norm()), err


def test_views_at_0_and_90_degrees_are_column_and_row_sums():
    op = ParallelBeamCT(16, 2)  # angles 0 and 90 degrees
    x = _rand(1, 1, 16, 16, seed=3)
    y = op(x)[0, 0]
    pad = op.num_detectors // 2 - 16 // 2
    torch.testing.assert_close(y[0, pad:pad + 16], x[0, 0].sum(0))          # rays along the rows axis
    torch.testing.assert_close(y[1].flip(0)[pad:pad + 16], x[0, 0].sum(1), rtol=1e-10, atol=1e-10)
    assert float(y[0, :pad].abs().max()) == 0.0  # rays outside the image


def test_agrees_with_deepinv_tomography():
    dinv = pytest.importorskip("deepinv")
    op = ParallelBeamCT(32, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = dinv.physics.Tomography(angles=op.angles_deg, img_width=32, normalize=False, dtype=F64)
    x = _rand(2, 1, 32, 32, seed=4)
    sino = ref.A(x)  # deepinv: (B, 1, detectors, angles)
    assert float((op(x) - sino.transpose(-1, -2)).abs().max()) < 1e-10 * float(sino.abs().max())
    # deepinv builds its ramp filter from float32 indices: agreement ~2e-7
    torch.testing.assert_close(op.fbp(op(x)), ref.A_dagger(sino, fbp=True), rtol=0, atol=1e-6)


def test_fbp_reconstructs_a_phantom_from_180_views():
    """Noiseless 180-view sinograms at 64x64. Measured relative L2 errors: Shepp-Logan 0.317 (the
    thin skull ring dominates; 0.099 inside the brain), a smooth Gaussian blob 0.022; 30 views: 0.427."""
    op = ParallelBeamCT(64, 180)
    x = shepp_logan(64, dtype=F64)[None]
    rec = op.fbp(op(x))
    assert float((rec - x).norm() / x.norm()) < 0.33
    c = (torch.arange(64, dtype=F64) * 2 + 1) / 64 - 1
    blob = torch.exp(-(c[None, :] ** 2 + c[:, None] ** 2) / (2 * 0.2**2))[None, None]
    assert float((op.fbp(op(blob)) - blob).norm() / blob.norm()) < 0.03
    # the Hann window smooths: worse on a noiseless sharp phantom, but finite and close
    assert float((op.fbp(op(x), filter="hann") - x).norm() / x.norm()) < 0.55


def test_pixel_size_scales_measurements_not_fbp():
    op1, op2 = ParallelBeamCT(16, 8), ParallelBeamCT(16, 8, pixel_size=0.5)
    x = _rand(1, 1, 16, 16, seed=5)
    torch.testing.assert_close(op2(x), 0.5 * op1(x))
    torch.testing.assert_close(op2.fbp(op2(x)), op1.fbp(op1(x)))


def test_gradient_is_back_projection_and_double_backward_works():
    op = ParallelBeamCT(16, 6)
    x = _rand(2, 1, 16, 16, seed=6).requires_grad_(True)
    w = _rand(2, *op.output_shape, seed=7)
    (g,) = torch.autograd.grad((op(x) * w).sum(), x, create_graph=True)
    torch.testing.assert_close(g, op.adjoint(w))
    v = _rand(2, 1, 16, 16, seed=8)
    (h,) = torch.autograd.grad(((op(x) ** 2).sum() / 2), x, create_graph=True)  # A^T A x
    (hv,) = torch.autograd.grad((h * v).sum(), x)                                # A^T A v
    torch.testing.assert_close(hv, op.adjoint(op(v)))


def test_ramp_filter_response():
    H = ramp_filter(91)
    assert H.numel() == 256 // 2 + 1
    f = torch.fft.rfftfreq(256, dtype=F64)
    # the band-limited Ram-Lak response is ~|f| away from DC (Kak & Slaney eq. 3.61)
    assert float((H[8:] - f[8:]).abs().max()) < 2e-3
    assert 0 < float(H[0]) < 2e-3


@pytest.mark.parametrize("args,kwargs,match", [
    ((3, 10), {}, "img_size"),
    ((64.5, 10), {}, "img_size"),
    ((16, 0), {}, "num_angles"),
    ((16, True), {}, "num_angles"),
    ((16, 4), {"pixel_size": -1.0}, "pixel_size"),
    ((16, 4), {"pixel_size": "big"}, "pixel_size"),
])
def test_bad_construction(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ParallelBeamCT(*args, **kwargs)


def test_bad_measurements():
    op = ParallelBeamCT(16, 4)
    with pytest.raises(ValueError, match="must have shape"):
        op.adjoint(torch.zeros(1, 1, op.num_detectors, 4))  # deepinv's (detector, angle) order
    with pytest.raises(ValueError, match="must have shape"):
        op.fbp(torch.zeros(1, op.num_detectors, 4))
    with pytest.raises(ValueError, match="unknown FBP filter"):
        op.fbp(torch.zeros(1, *op.output_shape), filter="cosine")
    y = torch.zeros(1, *op.output_shape)
    y[0, 0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        op.fbp(y)


def test_copy_and_pickle_after_use():
    import copy
    import pickle

    op = ParallelBeamCT(16, 4)
    x = _rand(1, 1, 16, 16, seed=9)
    y = op(x)  # fills the sparse-matrix cache
    for clone in (copy.deepcopy(op), pickle.loads(pickle.dumps(op))):
        torch.testing.assert_close(clone(x), y)


def test_config_is_json():
    cfg = json.loads(json.dumps(ParallelBeamCT(16, 4, pixel_size=0.1).config()))
    assert cfg["class"] == "ParallelBeamCT"
    assert (cfg["img_size"], cfg["num_angles"], cfg["num_detectors"], cfg["pixel_size"]) == (16, 4, 23, 0.1)


def _dense_pseudo_inverse(op, y, damping, rtol):
    """Float64 reference: ``A^T (A A^T + d I)^{-1} y`` by a dense solve, or ``pinv(A, rtol) y`` at d = 0."""
    M = op.matrix()
    Y = y.reshape(len(y), -1).T
    if damping > 0:
        X = M.T @ torch.linalg.solve(M @ M.T + damping * torch.eye(M.shape[0], dtype=F64), Y)
    else:
        X = torch.linalg.pinv(M, rtol=rtol) @ Y
    return X.T.reshape(len(y), *op.input_shape)


# (16, 6): 138 measurements, SVD route; (16, 12): 276, eigendecomposition of A A^T (condition ~1e6 on
# its range, where 200 CG iterations stop at relative error 0.4 for d = 1e-4)
@pytest.mark.parametrize("angles,rtol", [(6, 1e-12), (12, 1e-5)])
@pytest.mark.parametrize("damping,tol", [(0.0, 1e-6), (1e-6, 1e-6), (1e-4, 1e-9), (1e-2, 1e-11), (1.0, 1e-12)])
def test_exact_pseudo_inverse_matches_the_dense_solve(angles, rtol, damping, tol):
    op = ParallelBeamCT(16, angles, pixel_size=0.5)
    x = _rand(3, 1, 16, 16, seed=1)
    y = op(x) + 0.05 * _rand(3, *op.output_shape, seed=2)  # noisy: a part outside range(A)
    ref = _dense_pseudo_inverse(op, y, damping, rtol)
    out = op.pseudo_inverse(y, damping=damping)
    assert out.shape == x.shape and out.dtype == F64
    assert float((out - ref).norm() / ref.norm()) < tol
    y32 = y.float()  # float32 in, float32 out; the solve itself runs in float64
    out32 = op.pseudo_inverse(y32, damping=damping)
    assert out32.dtype == torch.float32
    ref32 = _dense_pseudo_inverse(op, y32.double(), damping, rtol)
    assert float((out32.double() - ref32).norm() / ref32.norm()) < 1e-5


def test_exact_pseudo_inverse_beats_conjugate_gradients_and_can_be_switched_off():
    from forward_models.base import ForwardModel
    from forward_models.tomography import range_basis

    op = ParallelBeamCT(16, 12)
    y = op(_rand(2, 1, 16, 16, seed=3)) + 0.05 * _rand(2, *op.output_shape, seed=4)
    ref = _dense_pseudo_inverse(op, y, 1e-4, None)
    err = {k: float((v - ref).norm() / ref.norm()) for k, v in
           {"exact": op.pseudo_inverse(y, damping=1e-4), "cg": op.pseudo_inverse(y, damping=1e-4, exact=False)}.items()}
    assert err["exact"] < 1e-9 and err["cg"] > 1e-2
    torch.testing.assert_close(op.pseudo_inverse(y, damping=1e-4, exact=False),
                               ForwardModel.pseudo_inverse(op, y, damping=1e-4))
    hits = range_basis.cache_info().hits
    ParallelBeamCT(16, 12).pseudo_inverse(y, damping=1e-2)  # a new operator of the same geometry reuses the basis
    assert range_basis.cache_info().hits == hits + 1
    with pytest.raises(ValueError, match="damping must be non-negative"):
        op.pseudo_inverse(y, damping=-1.0)
    with pytest.raises(ValueError, match="must have shape"):
        op.pseudo_inverse(y[:, :, :5])


def test_prepare_pseudo_inverse_fills_the_cache_that_mcg_uses(monkeypatch):
    """MCG's set-up factorises CT's projection (``prepare_pseudo_inverse``) before its first step."""
    from forward_models import Gaussian, InverseProblem
    from priors import GaussianPrior
    from samplers import MCG

    op = ParallelBeamCT(16, 12)
    assert op._basis_cache == {}
    op.prepare_pseudo_inverse()
    assert "cpu" in op._basis_cache
    op2 = ParallelBeamCT(16, 12)
    calls = []
    monkeypatch.setattr(op2, "prepare_pseudo_inverse", lambda: calls.append("set-up"))
    problem = InverseProblem.simulate(op2, Gaussian(0.05), _rand(1, 16, 16, seed=5), seed=0)
    MCG(num_steps=3).sample(problem, GaussianPrior(torch.zeros(1, 16, 16, dtype=F64)), 2, seed=0)
    assert calls == ["set-up"]
