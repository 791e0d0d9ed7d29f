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
from priors.errors import PriorError
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


class _PhysicalDenoiser(torch.nn.Module):
    """deepinv ``Denoiser``-style view of a sigma-space prior on physical images (:func:`as_deepinv_denoiser`)."""

    def __init__(self, prior, scale: float, offset: float):
        super().__init__()
        self.prior = prior
        self.scale, self.offset = float(scale), float(offset)

    def forward(self, x: torch.Tensor, sigma, *args, **kwargs) -> torch.Tensor:
        """``offset + scale * D((x - offset) / scale, sigma / scale)``; ``sigma`` a float, 0-d or ``(B,)`` tensor."""
        b = x.shape[0]
        s = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).reshape(-1)
        if s.numel() == 1:
            s = s.expand(b)
        elif s.numel() != b:
            raise PriorError(f"sigma must be a scalar or have one entry per batch item ({b}), got {tuple(s.shape)}")
        dtype = getattr(self.prior, "dtype", x.dtype)
        z = ((x - self.offset) / self.scale).to(dtype)
        out = self.prior.denoise(z, (s / abs(self.scale)).to(dtype))
        return (self.offset + self.scale * out).to(x.dtype)


def as_deepinv_denoiser(prior, *, scale: float | None = None, offset: float | None = None) -> torch.nn.Module:
    """A sigma-space prior as a deepinv denoiser on physical images (the inverse of :class:`DeepInvDenoiserPrior`).

    deepinv's denoisers (``deepinv.models.Denoiser``) take images in physical units, typically [0, 1],
    and a noise level ``sigma`` in the same units. Our priors work in model space with the affine map
    ``physical = offset + scale * model`` (the model card's normalisation, e.g. ``phantoms-64``:
    ``scale = offset = 0.5``, model [-1, 1] <-> physical [0, 1]). Since Gaussian noise of level
    ``sigma`` on ``x_phys`` is noise of level ``sigma / scale`` on ``x_model``, Tweedie's denoiser in
    physical units is exactly

        D_phys(x, sigma) = offset + scale * D_model((x - offset) / scale, sigma / scale).

    The returned module accepts ``sigma`` as a float, a 0-d tensor or a ``(B,)`` tensor (deepinv's
    samplers pass all three), runs the network in the prior's dtype and returns the input's dtype.
    deepinv's diffusion samplers then wrap it for their own conventions (``DPS`` / ``PosteriorDiffusion``
    map the [-1, 1] state to [0, 1] and call ``model(x, sigma / 2)``; ``DiffPIR`` calls
    ``model(x_aux in [0, 1], sigma / 2)``), so the same prior drives them without retraining.

    ``scale`` / ``offset`` default to ``prior.normalisation`` (network priors) or the identity.
    References: Kadkhodaie and Simoncelli (2021) for denoiser-driven samplers; Karras et al. (2022)
    for the sigma-space (EDM) contract; deepinv (Tachella et al. 2023), ``deepinv.models.Denoiser``.

    Example::

        import torch
        from priors import load_prior
        from priors.deepinv_denoiser import as_deepinv_denoiser
        den = as_deepinv_denoiser(load_prior("phantoms-64"))     # [0, 1] images
        x0 = den(torch.rand(2, 1, 64, 64), 0.1)
    """
    norm = getattr(prior, "normalisation", None)
    scale = float(getattr(norm, "scale", 1.0)) if scale is None else float(scale)
    offset = float(getattr(norm, "offset", 0.0)) if offset is None else float(offset)
    if scale == 0:
        raise PriorError("as_deepinv_denoiser: scale must be non-zero")
    return _PhysicalDenoiser(prior, scale, offset)


__all__ += ["as_deepinv_denoiser"]
