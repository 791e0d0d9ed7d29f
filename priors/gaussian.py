"""Gaussian prior ``N(m, C)`` with the exact sigma-space denoiser.

``D(x, sigma) = m + C (C + sigma^2 I)^{-1} (x - m)`` (Tweedie's formula for a Gaussian); for a
linear forward model with Gaussian noise the posterior is Gaussian with the Kalman update
written in :mod:`priors.gaussian_mixture` (one component).
"""

from __future__ import annotations

import torch

from priors.errors import PriorError
from priors.gaussian_mixture import GaussianMixturePrior

__all__ = ["GaussianPrior"]


class GaussianPrior(GaussianMixturePrior):
    """Gaussian prior ``N(mean, covariance)`` on samples of any shape (flattened to d).

    ``covariance`` is (d, d), or None with ``std`` a scalar for ``std^2 I``.

    Example::

        import torch
        from priors import GaussianPrior
        prior = GaussianPrior(torch.zeros(3), torch.diag(torch.tensor([1.0, 2.0, 3.0])))
        post = prior.posterior(torch.eye(3)[:1], torch.tensor([0.4]), sigma_y=0.1)
    """

    def __init__(self, mean, covariance=None, *, std: float | None = None, sigma_min: float = 1e-3,
                 sigma_max: float | None = None, device=None, dtype=torch.float64):
        mean = torch.as_tensor(mean, dtype=dtype)
        variance = 1.0
        if covariance is None and std is not None:  # std^2 I without a dense d x d matrix
            if not float(std) > 0:
                raise PriorError(f"std must be positive, got {std}")
            variance = float(std) ** 2
        if sigma_max is None:
            top = variance if covariance is None else float(torch.as_tensor(covariance).diagonal().max())
            scale = top ** 0.5
            sigma_max = max(80.0, 20.0 * scale)
        super().__init__(mean[None], torch.ones(1, dtype=dtype), covariance,
                         sigma_min=sigma_min, sigma_max=sigma_max, device=device, dtype=dtype,
                         isotropic_variance=variance)

    @property
    def mean(self) -> torch.Tensor:
        """Prior mean, shape ``self.shape``."""
        return self.means[0].reshape(self.shape)

    @property
    def covariance(self) -> torch.Tensor:
        """Prior covariance over the flattened sample, (d, d)."""
        return self._full_covariances()
