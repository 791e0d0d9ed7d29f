"""Ellipse phantoms (forward_models.generators.phantoms)."""

import pytest
import torch

from forward_models.generators import random_ellipses, shepp_logan
from forward_models.generators.phantoms import ellipse_image


def test_random_ellipses_shape_range_and_seed():
    a = random_ellipses(6, 32, seed=1)
    assert a.shape == (6, 1, 32, 32) and a.dtype == torch.get_default_dtype()
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, random_ellipses(6, 32, seed=1))
    assert not torch.equal(a, random_ellipses(6, 32, seed=2))
    assert torch.equal(a[:3], random_ellipses(3, 32, seed=1))  # prefix-stable
    assert not torch.equal(a[0], a[1])
    frac = (a > 0).flatten(1).float().mean(1)
    assert bool(((frac > 0.2) & (frac < 0.8)).all()), frac  # a body, not the whole square
    assert random_ellipses(2, 16, seed=0, dtype=torch.float64).dtype == torch.float64


def test_shepp_logan_values():
    p = shepp_logan(64)
    assert p.shape == (1, 64, 64)
    assert float(p.min()) == 0 and float(p.max()) == 1
    assert abs(float(p[0, 32, 32]) - 0.2) < 1e-6          # brain
    assert float(p[0, 0, 0]) == 0                          # outside the head
    vals = sorted({round(v, 6) for v in p.unique().tolist()})
    assert vals == [0.0, 0.1, 0.2, 0.3, 0.4, 1.0]
    assert p[0, :, :32].sum() != p[0, :, 32:].flip(-1).sum()  # not left-right symmetric (tilted ventricles)


def test_ellipse_image_area():
    # one ellipse of semi-axes 0.5 x 0.25: area pi/8 of the [-1, 1]^2 square's 4
    P = torch.tensor([[1.0, 0.5, 0.25, 0.1, -0.2, 0.3]], dtype=torch.float64)
    img = ellipse_image(P, 256)
    assert abs(float(img.mean()) * 4 - torch.pi / 8) < 5e-3


@pytest.mark.parametrize("call,match", [
    (lambda: random_ellipses(0, 16), "number of phantoms"),
    (lambda: random_ellipses(2, 1), "size"),
    (lambda: random_ellipses(2, 16, num_ellipses=-1), "num_ellipses"),
    (lambda: shepp_logan(16.0), "size"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
