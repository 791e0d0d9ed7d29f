"""Any deepinv denoiser as a prior.

deepinv denoisers (``deepinv.models.Denoiser``: DRUNet, DnCNN, TV, ...) are called as
``model(x, sigma)`` with ``x = x0 + sigma * n`` and return an estimate of ``x0``: exactly the
sigma-space contract ``D(x, sigma) ~= E[x0 | x_sigma]`` (for an MMSE-trained network; a MAP-type
denoiser such as TV is a plug-and-play surrogate, not a posterior mean). The adapter only checks
shapes, passes ``sigma`` as a ``(B,)`` tensor and maps units. Weights are whatever the user loaded:
nothing is downloaded here.
"""

from __future__ import annotations

import torch

from priors.base import check_denoise_input
from priors.network import NetworkPrior
from priors.normalisation import Normalisation

__all__ = ["DeepInvDenoiserPrior"]


class DeepInvDenoiserPrior(NetworkPrior):
    """A deepinv denoiser ``model(x, sigma)`` as a :class:`priors.Prior` on samples of ``shape``.

    Example::

        import deepinv, torch
        from priors import DeepInvDenoiserPrior
        prior = DeepInvDenoiserPrior(deepinv.models.DRUNet(1, 1, pretrained=None), (1, 32, 32))
        x0_hat = prior.denoise(torch.randn(2, 1, 32, 32), torch.tensor([0.1, 0.5]))
    """

    def __init__(self, model: torch.nn.Module, shape, *, sigma_min: float = 0.002, sigma_max: float = 80.0,
                 normalisation: Normalisation | None = None, card: dict | None = None, dims=None):
        if not callable(model):
            raise TypeError(f"expected a deepinv denoiser (a callable module), got {type(model).__name__}")
        super().__init__(model, shape, sigma_min=sigma_min, sigma_max=sigma_max, normalisation=normalisation,
                         card=card, dims=dims)

    @property
    def dtype(self) -> torch.dtype:
        """The model's dtype (float32 for parameter-free denoisers)."""
        return next((p.dtype for p in self.network.parameters()), torch.float32)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``model(x, sigma)`` in the model's dtype."""
        sigma = check_denoise_input(x, sigma, self.shape)
        out = self.network(x.to(self.dtype), sigma.to(self.dtype))
        return out.to(x.dtype)
