"""as_deepinv_denoiser: a sigma-space prior seen by deepinv on physical images."""

import torch

from priors import GaussianFieldPrior
from priors.deepinv_denoiser import as_deepinv_denoiser


def _prior():
    g = torch.Generator().manual_seed(0)
    physical = 0.5 + 0.2 * torch.randn(8, 1, 12, 12, generator=g)
    return GaussianFieldPrior.fit((physical - 0.5) / 0.5, scale=0.5, offset=0.5, floor=1e-4)


def test_physical_denoiser_is_affine_conjugate_of_model_denoiser():
    prior = _prior()
    den = as_deepinv_denoiser(prior)
    x = torch.rand(3, 1, 12, 12)
    s = torch.tensor([0.05, 0.1, 0.4])
    expect = 0.5 + 0.5 * prior.denoise((x - 0.5) / 0.5, s / 0.5)
    assert torch.allclose(den(x, s), expect, atol=1e-6)


def test_sigma_as_float_and_scalar_tensor():
    den = as_deepinv_denoiser(_prior())
    x = torch.rand(2, 1, 12, 12, dtype=torch.float64)
    a, b = den(x, 0.1), den(x, torch.tensor(0.1))
    assert a.dtype == torch.float64 and torch.allclose(a, b)


def test_drives_deepinv_dps_and_diffpir():
    import deepinv as dinv

    den = as_deepinv_denoiser(_prior())
    physics = dinv.physics.Inpainting(img_size=(1, 12, 12), mask=0.5, noise_model=dinv.physics.GaussianNoise(0.05))
    y = physics(0.5 * torch.ones(1, 1, 12, 12))
    x = dinv.sampling.DPS(den, num_steps=4, dtype=torch.float32)(y, physics)
    z = dinv.sampling.DiffPIR(den, dinv.optim.data_fidelity.L2(), max_iter=4)(y, physics)
    assert x.shape == z.shape == (1, 1, 12, 12) and torch.isfinite(x).all() and torch.isfinite(z).all()
