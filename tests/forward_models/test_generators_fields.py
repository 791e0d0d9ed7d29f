"""Gaussian random fields and Navier-Stokes snapshots: target statistics, seeding, errors."""

import math

import pytest
import torch

from forward_models.generators.grf import (
    gaussian_random_field,
    initial_vorticity,
    matern_spectrum,
    two_phase_permeability,
)
from forward_models.generators.vorticity import navier_stokes_snapshots

F64 = torch.float64


def test_grf_pointwise_variance_matches_the_spectrum():
    u = gaussian_random_field(400, 32, alpha=2.0, tau=3.0, seed=0, dtype=F64)
    target = float(matern_spectrum(32, alpha=2.0, tau=3.0).sum())  # unit square: sum(mu) / 1^2
    assert abs(float(u.var()) / target - 1) < 0.08  # measured 1.4%
    # on another domain: variance sum(mu) / L^2
    v = gaussian_random_field(400, 32, alpha=2.5, tau=7.0, length=2 * math.pi, seed=1, dtype=F64)
    target = float(matern_spectrum(32, alpha=2.5, tau=7.0, length=2 * math.pi).sum()) / (2 * math.pi) ** 2
    assert abs(float(v.var()) / target - 1) < 0.08


def test_grf_empirical_spectrum_matches_the_target():
    """E |DFT(u)_k|^2 = s^4 mu_k / L^2, averaged over rings |k| ~ r (measured within 2.5%)."""
    s = 32
    u = gaussian_random_field(400, s, alpha=2.0, tau=3.0, seed=2, dtype=F64)[:, 0]
    power = (torch.fft.fft2(u).abs() ** 2).mean(0)
    mu = matern_spectrum(s, alpha=2.0, tau=3.0)
    k = torch.fft.fftfreq(s, 1.0 / s)
    ring = (k[:, None] ** 2 + k[None, :] ** 2).sqrt().round()
    for r in (1, 2, 4, 8, 12):
        m = ring == r
        assert abs(float(power[m].mean() / (s**4 * mu[m].mean())) - 1) < 0.12, r
    assert float(power[0, 0]) < 1e-20  # zero-mean fields


def test_grf_is_seeded_and_typed():
    a = gaussian_random_field(3, 16, seed=5)
    assert a.shape == (3, 1, 16, 16) and a.dtype == torch.float32
    assert torch.equal(a, gaussian_random_field(3, 16, seed=5))
    assert not torch.equal(a, gaussian_random_field(3, 16, seed=6))
    assert torch.equal(gaussian_random_field(2, 16, seed=5, dtype=F64).float(), a[:2])


def test_non_periodic_grf_has_the_same_local_statistics():
    u = gaussian_random_field(300, 32, seed=3, periodic=False, dtype=F64)
    assert u.shape == (300, 1, 32, 32)
    target = float(matern_spectrum(64, alpha=2.0, tau=3.0, length=2.0).sum()) / 4.0
    assert abs(float(u.var()) / target - 1) < 0.08  # measured 0.5%
    # no wrap-around: opposite edges are less correlated than in a periodic field
    edge = lambda f: float((f[..., 0, :] * f[..., -1, :]).mean() / f.var())  # noqa: E731
    assert edge(u) < 0.5 * edge(gaussian_random_field(300, 32, seed=3, dtype=F64))


def test_initial_vorticity_and_two_phase_permeability():
    w = initial_vorticity(20, 32, seed=0, dtype=F64)
    assert w.shape == (20, 1, 32, 32)
    assert float(w.mean(dim=(1, 2, 3)).abs().max()) < 1e-12  # vorticity on the torus has zero mean
    assert 1.0 < float(w.std()) < 2.0  # measured 1.42 at 64 x 64
    a = two_phase_permeability(20, 32, seed=0)
    assert set(a.unique().tolist()) == {3.0, 12.0}
    assert 0.35 < float((a == 12).float().mean()) < 0.65  # measured 0.50
    assert torch.equal(a, two_phase_permeability(20, 32, seed=0))


def test_snapshots_are_seeded_and_batch_independent():
    a = navier_stokes_snapshots(3, 16, seed=4, t_spinup=0.3, batch_size=2)
    b = navier_stokes_snapshots(3, 16, seed=4, t_spinup=0.3, batch_size=3)
    assert a.shape == (3, 1, 16, 16) and a.dtype == torch.float32
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert not torch.equal(a, navier_stokes_snapshots(3, 16, seed=5, t_spinup=0.3))
    assert bool(torch.isfinite(a).all())


def test_snapshots_at_the_documented_size_have_inverse_bench_like_values():
    w = navier_stokes_snapshots(4, 64, seed=0)  # 0.4-2 s on the shared 2-core machine
    assert 3.0 < float(w.std()) < 7.0  # measured 4.8 (InverseBench: values roughly in (-10, 10))
    assert float(w.abs().max()) < 30.0  # measured 19


@pytest.mark.parametrize("call, match", [
    (lambda: gaussian_random_field(0, 8), "number of fields"),
    (lambda: gaussian_random_field(1, 1), "grid size"),
    (lambda: gaussian_random_field(1, 8, alpha=0.0), "alpha"),
    (lambda: gaussian_random_field(1, 8, tau=-1.0), "tau"),
    (lambda: gaussian_random_field(1, 8, sigma=float("nan")), "sigma"),
    (lambda: gaussian_random_field(1, 8, length=0.0), "length"),
    (lambda: two_phase_permeability(1, 8, low=0.0), "low"),
    (lambda: navier_stokes_snapshots(0, 16), "number of snapshots"),
    (lambda: navier_stokes_snapshots(1, 16, t_spinup=0.0), "t_spinup"),
    (lambda: navier_stokes_snapshots(1, 16, batch_size=0), "batch_size"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
