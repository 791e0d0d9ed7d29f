"""The deterministic probability-flow map between latent noise ``z`` and samples ``x``.

The probability-flow ODE in sigma space (Song et al. 2021; Karras et al. 2022, eq. 4 with
``s(t) = 1, sigma(t) = t``) is ``dx/dsigma = (x - D(x, sigma)) / sigma``. ``latent_to_sample``
integrates it from ``x = sigma_max z`` down the EDM schedule with Heun's second-order method
(Karras et al. 2022, Algorithm 1 without churn), the last step to ``sigma = 0`` by Euler;
``sample_to_latent`` integrates the same steps in reverse order, starting at ``sigma_min`` with
``x``, so that the two maps are inverse up to discretisation error. Each returns its network
evaluations per sample (NFE): ``2 num_steps - 1`` down, ``2 num_steps - 2`` up.
"""

from __future__ import annotations

import torch

from priors.base import Prior
from priors.errors import PriorError

__all__ = ["latent_to_sample", "sample_to_latent", "edm_sigmas"]


def edm_sigmas(num_steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0, *, device=None) -> torch.Tensor:
    """``num_steps`` EDM noise levels from ``sigma_max`` down to ``sigma_min`` followed by 0."""
    if int(num_steps) < 2:
        raise PriorError(f"the probability-flow map needs at least 2 steps, got {num_steps}")
    ramp = torch.linspace(0, 1, int(num_steps), dtype=torch.float64, device=device)
    s = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([s, s.new_zeros(1)])


def _drift(prior: Prior, x: torch.Tensor, sigma: float) -> torch.Tensor:
    s = torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device)
    return (x - prior.denoise(x, s)) / sigma


def _heun(prior, x, s_from, s_to):
    d = _drift(prior, x, s_from)
    x_euler = x + (s_to - s_from) * d
    if s_to == 0:
        return x_euler, 1
    d2 = _drift(prior, x_euler, s_to)
    return x + (s_to - s_from) * 0.5 * (d + d2), 2


def latent_to_sample(prior: Prior, z: torch.Tensor, num_steps: int = 18, rho: float = 7.0):
    """Map latent ``z ~ N(0, I)`` to a sample ``x`` by the probability-flow ODE. Returns ``(x, nfe)``."""
    sig = edm_sigmas(num_steps, prior.sigma_min, prior.sigma_max, rho).tolist()
    x = z * sig[0]
    nfe = 0
    for s_from, s_to in zip(sig[:-1], sig[1:], strict=False):
        x, n = _heun(prior, x, s_from, s_to)
        nfe += n
    return x, nfe


def sample_to_latent(prior: Prior, x: torch.Tensor, num_steps: int = 18, rho: float = 7.0):
    """Inverse map: the ODE integrated upwards from ``sigma_min``; returns ``(x_sigma_max / sigma_max, nfe)``."""
    sig = edm_sigmas(num_steps, prior.sigma_min, prior.sigma_max, rho).tolist()[:-1][::-1]  # ascending, no 0
    nfe = 0
    for s_from, s_to in zip(sig[:-1], sig[1:], strict=False):
        x, n = _heun(prior, x, s_from, s_to)
        nfe += n
    return x / sig[-1], nfe
