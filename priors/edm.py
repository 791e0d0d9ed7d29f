"""A network prior in the EDM parametrisation (Karras, Aittala, Aila and Laine, NeurIPS 2022).

The network ``F`` (a diffusers ``UNet2DModel``) is wrapped by the EDM preconditioning (Table 1):

    D(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma)),
    c_skip = sigma_data^2 / (sigma^2 + sigma_data^2),    c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2),
    c_in   = 1 / sqrt(sigma^2 + sigma_data^2),           c_noise = log(sigma) / 4.

These are exactly the conventions of diffusers' ``EDMEulerScheduler`` with ``prediction_type =
"epsilon"``, so a prior saved here (UNet + that scheduler's config) is a diffusers model directory.
"""

from __future__ import annotations

import torch

from priors.base import check_denoise_input
from priors.network import NetworkPrior
from priors.normalisation import Normalisation

__all__ = ["EDMPrior", "edm_coefficients"]


def edm_coefficients(sigma: torch.Tensor, sigma_data: float):
    """``(c_skip, c_out, c_in, c_noise)`` of the EDM preconditioning for noise levels ``sigma`` (B,)."""
    s2 = sigma**2 + sigma_data**2
    c_skip = sigma_data**2 / s2
    c_out = sigma * sigma_data / s2.sqrt()
    c_in = 1.0 / s2.sqrt()
    c_noise = 0.25 * torch.log(sigma.clamp_min(1e-20))
    return c_skip, c_out, c_in, c_noise


class EDMPrior(NetworkPrior):
    """EDM-preconditioned network prior: ``D = c_skip x + c_out F(c_in x, log(sigma) / 4)``.

    Parameters
    ----------
    network : a module called as ``network(x, t).sample`` (diffusers ``UNet2DModel``) or returning a tensor
    shape : shape of one sample ``(C, H, W)``
    sigma_data, sigma_min, sigma_max : EDM constants (model-space units)
    normalisation : model space <-> physical units
    card : the model card (``prior.json``) when loaded from disk

    Example::

        import torch
        from diffusers import UNet2DModel
        from priors import EDMPrior
        unet = UNet2DModel(sample_size=16, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                           down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                           norm_num_groups=4, layers_per_block=1)
        prior = EDMPrior(unet, (1, 16, 16))
        x0_hat = prior.denoise(torch.randn(2, 1, 16, 16), torch.tensor([0.5, 2.0]))
    """

    def __init__(self, network: torch.nn.Module, shape, *, sigma_data: float = 0.5, sigma_min: float = 0.002,
                 sigma_max: float = 80.0, normalisation: Normalisation | None = None, card: dict | None = None,
                 dims=None):
        super().__init__(network, shape, sigma_min=sigma_min, sigma_max=sigma_max, normalisation=normalisation,
                         card=card, dims=dims)
        self.sigma_data = float(sigma_data)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """EDM-preconditioned denoiser (module docstring); runs in the network's dtype."""
        sigma = check_denoise_input(x, sigma, self.shape)
        net_dtype = self.dtype
        xs, ss = x.to(net_dtype), sigma.to(net_dtype)
        c_skip, c_out, c_in, c_noise = edm_coefficients(ss, self.sigma_data)
        view = (-1,) + (1,) * len(self.shape)
        f = self.network_output(c_in.reshape(view) * xs, c_noise)
        return (c_skip.reshape(view) * xs + c_out.reshape(view) * f).to(x.dtype)

    def config(self) -> dict:
        """The base configuration plus ``sigma_data``."""
        return {**super().config(), "sigma_data": self.sigma_data}
