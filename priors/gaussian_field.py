"""A stationary Gaussian random field on a periodic grid, with its exact denoiser.

In model space ``x ~ N(m, C)`` on images ``(C, H, W)``, where ``C`` is diagonal in the orthonormal 2-D
Fourier basis ``F`` (the field is stationary and periodic): ``C = F^* diag(P_k) F`` with power
spectrum ``P_k >= 0``. Tweedie's formula for a Gaussian gives the denoiser mode by mode,

    D(x, sigma) = E[x0 | x0 + sigma eps = x] = m + F^* [ P_k / (P_k + sigma^2) ] F (x - m),

and an exact draw is ``x = m + F^* sqrt(P_k) F eps`` with ``eps ~ N(0, I)``. Physical units are
``offset + scale * x`` (:class:`priors.normalisation.Normalisation`).

:meth:`GaussianFieldPrior.fit` estimates ``m`` (the mean field) and ``P_k = mean_i |F(x_i - m)_k|^2``
from samples: a network-free stand-in for a trained prior of the same data, and a prior whose
posterior mean for a linear-Gaussian problem is known in closed form.

References: C. E. Rasmussen and C. K. I. Williams, "Gaussian Processes for Machine Learning" (2006),
ch. 4 (stationary covariance functions); B. Efron, "Tweedie's formula and selection bias", JASA 106
(2011) (the denoiser).
"""

from __future__ import annotations

import torch

from priors.base import Prior, check_denoise_input, sample_arguments
from priors.normalisation import Normalisation

__all__ = ["GaussianFieldPrior"]


class GaussianFieldPrior(Prior):
    """Stationary Gaussian field ``N(m, F^* diag(P) F)`` on images ``(C, H, W)``; ``physical = offset + scale * x``.

    Args:
        mean: mean field ``m`` in model space, shape ``(C, H, W)``.
        power: power spectrum ``P_k`` in ``torch.fft.rfft2`` layout, shape ``(C, H, W // 2 + 1)``.
        scale, offset: the affine map to physical units.
        sigma_min, sigma_max: the noise range samplers use.

    Example::

        import torch
        from priors import GaussianFieldPrior
        physical = 1500 + 3000 * torch.rand(16, 1, 20, 20)
        prior = GaussianFieldPrior.fit((physical - 3000.0) / 1500.0, scale=1500.0, offset=3000.0, floor=1e-4)
        x0 = prior.denoise(torch.randn(2, 1, 20, 20), torch.tensor([0.5, 1.0]))
        draws = prior.to_physical(prior.sample(4, torch.Generator().manual_seed(0)))
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
    def fit(cls, samples: torch.Tensor, scale: float = 1.0, offset: float = 0.0, *,
            floor: float | None = None) -> GaussianFieldPrior:
        """Mean field and power spectrum of model-space ``samples`` ``(N, C, H, W)``.

        ``floor`` (if given) is a lower bound on ``P_k``, so that no mode is pinned to the mean.
        """
        z = samples.double()
        mean = z.mean(0)
        power = (torch.fft.rfft2(z - mean, norm="ortho").abs() ** 2).mean(0)
        if floor is not None:
            power = power.clamp_min(floor)
        return cls(mean, power, scale, offset)

    def denoise(self, x, sigma):
        """Exact ``E[x0 | x0 + sigma eps = x]``, Fourier mode by Fourier mode."""
        sigma = check_denoise_input(x, sigma, self.shape)
        s2 = sigma.reshape(-1, 1, 1, 1).to(self.power.dtype) ** 2
        z = torch.fft.rfft2((x - self.mean_field).to(self.power.dtype), norm="ortho")
        out = torch.fft.irfft2(self.power / (self.power + s2) * z, s=self.shape[-2:], norm="ortho")
        return (out + self.mean_field).to(x.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None, *, num_steps: int | None = None,
               steps: int | None = None, seed: int | None = None, physical: bool = False,
               batch_size: int | None = None) -> torch.Tensor:
        """``n`` exact draws ``m + F^* sqrt(P) F eps``, ``(n, C, H, W)`` (arguments of :meth:`priors.Prior.sample`;
        the number of steps and the batch size, of the base class's ODE, are checked and unused)."""
        n, generator, _ = sample_arguments(n, generator, num_steps, steps, seed, batch_size)
        where = generator.device if generator is not None else self.device
        eps = torch.randn(n, *self.shape, generator=generator, dtype=self.power.dtype, device=where)
        z = torch.fft.rfft2(eps.to(self.power.device), norm="ortho") * self.power.sqrt()
        x = torch.fft.irfft2(z, s=self.shape[-2:], norm="ortho") + self.mean_field
        return self.to_physical(x) if physical else x

    def to_physical(self, x):
        """``offset + scale * x``."""
        return self.normalisation.to_physical(x)

    def from_physical(self, x):
        """``(x - offset) / scale``."""
        return self.normalisation.from_physical(x)

    def config(self):
        """Class, shape and normalisation."""
        return {"class": type(self).__name__, "shape": list(self.shape), "normalisation": self.normalisation.to_dict()}
