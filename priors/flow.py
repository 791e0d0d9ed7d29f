"""A flow-matching (rectified-flow) velocity model converted exactly to the sigma-space contract.

Flow matching (Lipman et al. 2023; Liu et al. 2023) trains ``v(x_t, t) ~= E[eps - x0 | x_t]`` on the
straight path ``x_t = (1 - t) x0 + t eps``. Dividing by ``1 - t`` gives ``x_t / (1 - t) = x0 +
sigma eps`` with ``sigma = t / (1 - t)``, so for our ``x_sigma``: ``t = sigma / (1 + sigma)``,
``x_t = x_sigma / (1 + sigma)`` and

    D(x_sigma, sigma) = E[x0 | x_t] = x_t - t v(x_t, t).

The network takes the time as ``1000 t`` (the range of DDPM timesteps, which diffusers' positional
embeddings are built for).
"""

from __future__ import annotations

import torch

from priors.base import check_denoise_input
from priors.network import NetworkPrior
from priors.normalisation import Normalisation

__all__ = ["FlowMatchingPrior", "TIME_SCALE"]

#: network time input = TIME_SCALE * t
TIME_SCALE = 1000.0


class FlowMatchingPrior(NetworkPrior):
    """Flow-matching velocity network as a sigma-space denoiser: ``D = x_t - t v(x_t, 1000 t)``.

    ``sigma_max`` bounds the noise levels samplers start from (``t = sigma_max / (1 + sigma_max)``).
    """

    def __init__(self, network: torch.nn.Module, shape, *, sigma_min: float = 0.002, sigma_max: float = 80.0,
                 normalisation: Normalisation | None = None, card: dict | None = None, dims=None):
        super().__init__(network, shape, sigma_min=sigma_min, sigma_max=sigma_max, normalisation=normalisation,
                         card=card, dims=dims)

    def velocity(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network's velocity ``v(x_t, t)``."""
        return self.network_output(x_t, TIME_SCALE * t)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``x_t - t v(x_t, t)`` with ``t = sigma / (1 + sigma)``, ``x_t = x / (1 + sigma)``."""
        sigma = check_denoise_input(x, sigma, self.shape)
        dt = self.dtype
        view = (-1,) + (1,) * len(self.shape)
        t = (sigma / (1 + sigma)).to(dt)
        x_t = (x / (1 + sigma).reshape(view)).to(dt)
        return (x_t - t.reshape(view) * self.velocity(x_t, t)).to(x.dtype)
