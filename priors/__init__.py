"""Priors: every prior is a sigma-space denoiser ``D(x, sigma) ~= E[x0 | x0 + sigma * eps = x]``."""

from priors.base import Prior
from priors.gaussian import GaussianPrior
from priors.gaussian_mixture import GaussianMixture, GaussianMixturePrior

__all__ = ["Prior", "GaussianPrior", "GaussianMixture", "GaussianMixturePrior"]
