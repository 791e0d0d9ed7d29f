"""Fan-beam CT (flat detector): exact adjoint, gradients, analytic chord lengths, FBP, configuration."""

import copy
import json
import math

import pytest
import torch

from forward_models.errors import ForwardModelError
from forward_models.fanbeam import FanBeamCT

F64 = torch.float64


def _disc(W: int, radius: float, sub: int = 8) -> torch.Tensor:
    """A uniform disc of ``radius`` pixels at the image centre, anti-aliased by ``sub x sub`` supersampling."""
    c = (W - 1) / 2
    i = torch.arange(W, dtype=F64)
    o = (torch.arange(sub, dtype=F64) + 0.5) / sub - 0.5
    x = i[None, :, None, None] - c + o[None, None, None, :]
    y = c - i[:, None, None, None] + o[None, None, :, None]
    return ((x**2 + y**2) <= radius**2).to(F64).mean((2, 3))[None, None]


@pytest.fixture(scope="module")
def op():
    return FanBeamCT(32, 24, source_distance=64.0, detector_distance=128.0)


def test_default_geometry_covers_the_image():
    op = FanBeamCT(64, 30)
    assert op.output_shape == (1, 30, op.num_detectors)
    assert (op.source_distance, op.detector_distance, op.detector_spacing) == (128.0, 256.0, 2.0)
    # the outermost rays miss the image's circumscribed circle (radius W / sqrt(2)): nothing is cut off
    R, D, du = 128.0, 256.0, 2.0
    u_max = (op.num_detectors - 1) / 2 * du
    assert R * u_max / math.hypot(D, u_max) > 64 / math.sqrt(2)


def test_adjoint_is_the_exact_transpose(op):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, *op.input_shape, generator=g, dtype=F64)
    y = torch.randn(3, *op.output_shape, generator=g, dtype=F64)
    lhs, rhs = (op(x) * y).sum(), (x * op.adjoint(y)).sum()
    assert abs(float(lhs - rhs)) <= 1e-13 * float(op(x).norm() * y.norm())
    op32 = copy.deepcopy(op).to(torch.float32)
    lhs, rhs = (op32(x.float()) * y.float()).sum(), (x.float() * op32.adjoint(y.float())).sum()
    assert abs(float(lhs - rhs)) <= 1e-5 * float(op(x).norm() * y.norm())


def test_gradcheck_on_a_tiny_geometry():
    op = FanBeamCT(6, angles=[0.0, 50.0, 130.0], source_distance=12.0, num_detectors=5, detector_spacing=2.0)
    x = torch.rand(2, 1, 6, 6, dtype=F64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    assert torch.autograd.gradcheck(op, (x,))
    assert torch.autograd.gradgradcheck(op, (x,))
    y = torch.randn(2, *op.output_shape, dtype=F64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    assert torch.autograd.gradcheck(op.adjoint, (y,))


def test_disc_projects_to_its_chord_lengths():
    """A uniform disc of radius r: the ray at distance p from the centre measures 2 sqrt(r^2 - p^2)."""
    op = FanBeamCT(64, 12)
    r = 20.0
    y = op(_disc(64, r))[0, 0]
    R, D, du = op.source_distance, op.detector_distance, op.detector_spacing
    u = (torch.arange(op.num_detectors, dtype=F64) - (op.num_detectors - 1) / 2) * du
    p = R * u / torch.sqrt(D**2 + u**2)  # distance of each ray from the isocentre
    chord = 2 * torch.sqrt((r**2 - p**2).clamp_min(0)).expand_as(y)
    inside, outside = p.abs() < r - 1, p.abs() > r + 1
    err = (y - chord).abs()
    assert float(err[:, inside].max()) < 0.7  # pixels, along chords up to 40 pixels
    assert float(err[:, inside].mean()) < 0.15
    assert float(err[:, outside].max()) < 0.05
    # every source angle sees the same centred disc
    assert float((y - y.mean(0))[:, inside].abs().max()) < 0.3


def test_fbp_recovers_a_disc_and_scales_with_pixel_size():
    x = _disc(48, 15.0)
    op = FanBeamCT(48, 180)
    rec = op.fbp(op(x))
    assert abs(float(rec[0, 0, 20:28, 20:28].mean()) - 1.0) < 0.01
    assert float(rec[0, 0, :4, :4].abs().max()) < 0.05
    assert float((rec - x).norm() / x.norm()) < 0.15
    # in millimetres: the same geometry with 0.5 mm pixels, same attenuation image
    op_mm = FanBeamCT(48, 180, source_distance=48.0, detector_distance=96.0, detector_spacing=1.0, pixel_size=0.5)
    y_mm = op_mm(x)
    torch.testing.assert_close(y_mm, 0.5 * op(x))
    torch.testing.assert_close(op_mm.fbp(y_mm), rec)


def test_pseudo_inverse_exact_agrees_with_conjugate_gradients(op):
    x = op.example_input(2, seed=3)
    y = op(x)
    exact = op.pseudo_inverse(y, damping=1.0)
    cg = op.pseudo_inverse(y, damping=1.0, exact=False, iterations=500, tol=1e-12)
    torch.testing.assert_close(exact, cg, atol=1e-7, rtol=1e-7)
    # at zero damping directions with singular values below GRAM_CUTOFF s_max are dropped: y is matched closely
    assert float((op(op.pseudo_inverse(y)) - y).norm() / y.norm()) < 1e-5


def test_config_round_trip_and_explicit_angles(op):
    cfg = json.loads(json.dumps(op.config()))
    assert cfg["class"] == "FanBeamCT" and cfg["detector"] == "flat, equispaced"
    again = FanBeamCT.from_config(cfg)
    assert again.config() == op.config()
    x = op.example_input(1, seed=0)
    assert torch.equal(again(x), op(x))
    same = FanBeamCT(32, angles=[15.0 * a for a in range(24)], source_distance=64.0, detector_distance=128.0)
    assert torch.equal(same(x), op(x))


@pytest.mark.parametrize("kwargs, match", [
    ({"img_size": 2}, "img_size"),
    ({"num_angles": 0}, "num_angles"),
    ({"source_distance": 20.0}, "source_distance must exceed"),
    ({"source_distance": 80.0, "detector_distance": 60.0}, "detector_distance"),
    ({"detector_spacing": -1.0}, "detector_spacing"),
    ({"num_detectors": 0}, "num_detectors"),
    ({"pixel_size": float("nan")}, "pixel_size"),
    ({"angles": []}, "angles is empty"),
])
def test_bad_geometry_is_one_line(kwargs, match):
    args = {"img_size": 32, **kwargs}
    with pytest.raises(ForwardModelError, match=match):
        FanBeamCT(**args)
