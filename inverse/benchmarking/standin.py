"""A stationary Gaussian field prior with an affine normalisation: the stand-in when a network prior is missing.

``x ~ N(m, C)`` in model space, ``C`` diagonal in the orthonormal 2-D Fourier basis with power
``P_k``; its denoiser is exact mode by mode (Tweedie's formula):

    D(x, sigma) = m + IFFT[ P_k / (P_k + sigma^2) FFT(x - m) ],

and ``physical = offset + scale * x``. :meth:`GaussianFieldStandIn.fit` estimates ``m`` and ``P_k``
from physical samples. The quick benchmark runs use it so that the code paths of samplers whose
shipped prior (e.g. ``seismic-velocity-70``) is not trained yet are still exercised; such rows are
labelled "stand-in" in the tables. Reference: Rasmussen and Williams (2006), ch. 4 (stationary
fields); Efron (2011) for Tweedie's formula.
"""

from __future__ import annotations

import torch

from priors.base import Prior, check_denoise_input
from priors.normalisation import Normalisation

__all__ = ["GaussianFieldStandIn"]


class GaussianFieldStandIn(Prior):
    """Stationary Gaussian field on images ``(C, H, W)`` with ``physical = offset + scale * x``.

    Example::

        import torch
        from inverse.benchmarking.standin import GaussianFieldStandIn
        prior = GaussianFieldStandIn.fit(1500 + 3000 * torch.rand(16, 1, 20, 20), scale=1500.0, offset=3000.0)
        x0 = prior.denoise(torch.randn(2, 1, 20, 20), torch.tensor([0.5, 1.0]))
    """

    dims = ("channel", "y", "x")

    def __init__(self, mean: torch.Tensor, power: torch.Tensor, scale: float = 1.0, offset: float = 0.0, *,
                 sigma_min: float = 2e-3, sigma_max: float = 80.0):
        super().__init__()
        self.shape = tuple(mean.shape)
        self.register_buffer("mean_field", mean.float())
        self.register_buffer("power", power.float())
        self.normalisation = Normalisation(float(scale), float(offset))
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)

    @classmethod
    def fit(cls, samples: torch.Tensor, scale: float, offset: float = 0.0, floor: float = 1e-4) -> GaussianFieldStandIn:
        """Mean field and power spectrum of physical ``samples`` ``(N, C, H, W)``; ``floor`` keeps ``P_k > 0``."""
        z = (samples.double() - offset) / scale
        mean = z.mean(0)
        power = (torch.fft.rfft2(z - mean, norm="ortho").abs() ** 2).mean(0).clamp_min(floor)
        return cls(mean, power, scale, offset)

    def denoise(self, x, sigma):
        """Exact ``E[x0 | x0 + sigma eps = x]`` Fourier mode by Fourier mode."""
        sigma = check_denoise_input(x, sigma, self.shape)
        s2 = sigma.reshape(-1, 1, 1, 1).to(self.power.dtype) ** 2
        z = torch.fft.rfft2((x - self.mean_field).to(self.power.dtype), norm="ortho")
        out = torch.fft.irfft2(self.power / (self.power + s2) * z, s=self.shape[-2:], norm="ortho")
        return (out + self.mean_field).to(x.dtype)

    def to_physical(self, x):
        """``offset + scale * x``."""
        return self.normalisation.to_physical(x)

    def from_physical(self, x):
        """``(x - offset) / scale``."""
        return self.normalisation.from_physical(x)

    def config(self):
        """Class, shape and normalisation."""
        return {"class": "GaussianFieldStandIn", "shape": list(self.shape), "normalisation": self.normalisation.to_dict()}
