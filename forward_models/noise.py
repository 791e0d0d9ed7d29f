"""Noise models: how measurements scatter around the noise-free ``y_clean = F(x)``.

Each noise model gives ``sample(y_clean, generator)`` and the exact ``log_likelihood(y, y_clean)``
summed over a measurement (one value per batch element), plus ``residual_norm`` - the norm that
DPS (Chung et al., ICLR 2023, eqs. 16 and 17) differentiates.
"""

from __future__ import annotations

import math

import torch

from forward_models.errors import ForwardModelError

__all__ = ["NoiseModel", "Gaussian", "Poisson", "noise_from_config"]


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1) if t.ndim > 1 else t.reshape(1, -1)


class NoiseModel:
    """Base class: ``p(y | y_clean)``."""

    def sample(self, y_clean: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:  # pragma: no cover
        """Draw noisy measurements around ``y_clean``."""
        raise NotImplementedError

    def log_likelihood(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """``log p(y | y_clean)`` summed over all entries of each batch element -> (B,)."""
        raise NotImplementedError

    def residual_norm(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Norm of the data misfit used by DPS-type guidance -> (B,)."""
        raise NotImplementedError

    def config(self) -> dict:  # pragma: no cover
        """JSON description, enough to rebuild the noise model."""
        raise NotImplementedError


class Gaussian(NoiseModel):
    """Additive white Gaussian noise ``y = y_clean + sigma * e``, ``e ~ N(0, I)``.

    ``log p(y | y_clean) = -||y - y_clean||^2 / (2 sigma^2) - (n/2) log(2 pi sigma^2)``;
    the DPS residual norm is ``||y - y_clean||_2``.
    """

    def __init__(self, sigma: float):
        try:
            sigma = float(sigma)
        except (TypeError, ValueError):
            raise ForwardModelError(f"the Gaussian noise level must be a number, got {sigma!r}") from None
        if not math.isfinite(sigma) or sigma <= 0:
            raise ForwardModelError(f"the Gaussian noise level sigma must be positive and finite, got {sigma}")
        self.sigma = sigma

    def sample(self, y_clean, generator=None):
        """``y_clean + sigma * e``."""
        e = torch.randn(y_clean.shape, dtype=y_clean.dtype, device=y_clean.device, generator=generator)
        return y_clean + self.sigma * e

    def log_likelihood(self, y, y_clean):
        """Exact Gaussian log-density, summed per batch element."""
        r = _flat(y - y_clean)
        n = r.shape[1]
        return -0.5 * (r**2).sum(1) / self.sigma**2 - 0.5 * n * math.log(2 * math.pi * self.sigma**2)

    def residual_norm(self, y, y_clean):
        """``||y - y_clean||_2`` per batch element."""
        return torch.linalg.vector_norm(_flat(y - y_clean), dim=1)

    def config(self):
        """``{"class": "Gaussian", "sigma": ...}``."""
        return {"class": "Gaussian", "sigma": self.sigma}

    def __repr__(self):
        return f"Gaussian(sigma={self.sigma})"


class Poisson(NoiseModel):
    """Photon-counting noise ``y = k / gain``, ``k ~ Poisson(gain * y_clean)``.

    ``log p(y | y_clean) = sum k log(lam) - lam - log(k!)`` with ``lam = gain * y_clean``
    (clamped below by ``1e-12`` so a zero intensity gives a finite value). DPS's weighted
    residual norm is ``||y - y_clean||_Lambda`` with ``Lambda = diag(1 / (2 y))`` (Chung et al. 2023,
    eq. 17), ``y`` clamped below by ``1 / gain``.
    """

    def __init__(self, gain: float = 1.0):
        gain = float(gain)
        if not math.isfinite(gain) or gain <= 0:
            raise ForwardModelError(f"the Poisson gain must be positive and finite, got {gain}")
        self.gain = gain

    def sample(self, y_clean, generator=None):
        """Counts divided by the gain."""
        if bool((y_clean < 0).any()):
            raise ForwardModelError("Poisson noise needs non-negative clean measurements")
        return torch.poisson(self.gain * y_clean, generator=generator) / self.gain

    def log_likelihood(self, y, y_clean):
        """Exact Poisson log-probability of the counts, summed per batch element."""
        k = _flat(y * self.gain)
        lam = _flat(y_clean * self.gain).clamp_min(1e-12)
        return (k * torch.log(lam) - lam - torch.lgamma(k + 1.0)).sum(1)

    def residual_norm(self, y, y_clean):
        """DPS's Poisson-weighted residual norm."""
        w = 1.0 / (2.0 * y.clamp_min(1.0 / self.gain))
        return torch.sqrt((_flat((y - y_clean) ** 2 * w)).sum(1))

    def config(self):
        """``{"class": "Poisson", "gain": ...}``."""
        return {"class": "Poisson", "gain": self.gain}

    def __repr__(self):
        return f"Poisson(gain={self.gain})"


def noise_from_config(config: dict) -> NoiseModel:
    """Rebuild a noise model from its :meth:`NoiseModel.config`."""
    kinds = {"Gaussian": lambda c: Gaussian(c["sigma"]), "Poisson": lambda c: Poisson(c["gain"])}
    name = config.get("class") if isinstance(config, dict) else None
    if name not in kinds:
        raise ForwardModelError(f"unknown noise model {name!r}; known: {', '.join(kinds)}")
    return kinds[name](config)
