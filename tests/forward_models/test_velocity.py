"""OpenFWI-like velocity generators: range, reproducibility, layering, curvature, faults, errors."""

import time

import pytest
import torch

from forward_models.generators.velocity import VELOCITY_FAMILIES, velocity_models


def _monotone_columns(v: torch.Tensor) -> torch.Tensor:
    """Per model: True when every column's velocity never decreases with depth."""
    return (v[:, 0, 1:] >= v[:, 0, :-1]).flatten(1).all(1)


@pytest.mark.parametrize("family", VELOCITY_FAMILIES)
def test_shape_range_and_reproducibility(family):
    v = velocity_models(40, family, size=(30, 50), seed=3)
    assert v.shape == (40, 1, 30, 50) and v.dtype == torch.float32
    assert float(v.min()) >= 1500.0 and float(v.max()) <= 4500.0
    assert torch.equal(v, velocity_models(40, family, size=(30, 50), seed=3))
    assert not torch.equal(v, velocity_models(40, family, size=(30, 50), seed=4))


def test_custom_range_and_dtype():
    v = velocity_models(20, "curved-fault", size=(16, 16), seed=0, v_range=(2000.0, 3000.0), dtype=torch.float64)
    assert v.dtype == torch.float64 and float(v.min()) >= 2000.0 and float(v.max()) < 3000.0


@pytest.mark.parametrize("family", VELOCITY_FAMILIES)
def test_piecewise_constant_with_the_requested_layers(family):
    v = velocity_models(30, family, size=(40, 40), seed=1, num_layers=(3, 3))
    counts = [len(torch.unique(m)) for m in v]
    assert max(counts) <= 3 and min(counts) >= 2
    assert sum(c == 3 for c in counts) >= 25  # an interface is rarely hidden


def test_flat_layers_have_no_lateral_variation_and_curved_ones_do():
    flat = velocity_models(50, "flat", seed=2)
    assert bool((flat == flat[..., :1]).all())
    curved = velocity_models(50, "curved", seed=2)
    lateral = (curved != curved[..., :1]).flatten(1).any(1)
    assert float(lateral.float().mean()) >= 0.8


@pytest.mark.parametrize("family", ["flat", "curved"])
def test_velocity_increases_with_depth_except_for_occasional_inversions(family):
    strict = velocity_models(100, family, seed=5, p_inversion=0.0)
    assert bool(_monotone_columns(strict).all())
    default = velocity_models(200, family, seed=5)
    assert 0.6 <= float(_monotone_columns(default).float().mean()) < 1.0
    always = velocity_models(100, family, seed=5, p_inversion=1.0)
    assert float(_monotone_columns(always).float().mean()) <= 0.15  # a swapped layer may be thinner than a cell


@pytest.mark.parametrize("base", ["flat", "curved"])
def test_faults_displace_a_block_of_the_same_layers(base):
    """Same seed: the faulted model reuses the unfaulted model's layer velocities, shifted in one block."""
    n = 60
    plain = velocity_models(n, base, seed=7, p_inversion=0.0)
    faulted = velocity_models(n, base + "-fault", seed=7, p_inversion=0.0)
    changed = (faulted != plain).flatten(1).any(1)
    assert float(changed.float().mean()) >= 0.8
    same_layers = [set(torch.unique(b).tolist()) <= set(torch.unique(a).tolist())
                   for a, b in zip(plain, faulted, strict=False)]
    assert sum(same_layers) >= 0.9 * n  # the throw can reveal a layer thinner than a cell
    # the fault itself is the only place a column's velocity drops with depth
    drops = (faulted[:, 0, 1:] < faulted[:, 0, :-1]).float()
    assert float(drops.sum(1).max()) <= faulted.shape[-1]  # at most one drop per column
    assert float(drops.mean()) < 0.02


def test_vectorised_speed():
    t0 = time.perf_counter()
    velocity_models(1000, "curved-fault", seed=0)
    assert time.perf_counter() - t0 < 5.0  # ~0.3 s on one core; generous for a loaded machine


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "positive integer"), (dict(family="salt"), "unknown family 'salt'"),
    (dict(size=(70,)), "size"), (dict(v_range=(4500.0, 1500.0)), "v_range"),
    (dict(num_layers=(0, 3)), "num_layers"), (dict(p_inversion=1.5), "p_inversion"),
])
def test_bad_arguments_are_refused(kwargs, match):
    args = dict(n=2, family="flat")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        velocity_models(**args)
