"""A variance-preserving (DDPM-family) diffusion network converted exactly to the sigma-space contract.

A diffusers model trained on ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` sees, for our noisy
``x_sigma = x0 + sigma eps``, the input ``x_t = sqrt(abar) x_sigma`` with ``abar = 1 / (1 + sigma^2)``
(so ``sigma = sqrt((1 - abar) / abar)``), at the timestep whose ``abar_t`` equals that ``abar``. Its
output converts to ``x0_hat`` by the prediction type (Ho et al. 2020; Salimans and Ho 2022 for v):

- ``epsilon``: ``x0_hat = x_sigma - sigma eps_hat``
- ``v_prediction``: ``x0_hat = sqrt(abar) x_t - sqrt(1 - abar) v_hat``
- ``sample``: ``x0_hat = out``

At the training timesteps the conversion is exact. Between them the timestep is interpolated
linearly in ``log sigma`` and passed to the network as a fractional timestep (diffusers' positional
time embeddings accept real values); outside ``[sigma(t=0), sigma(t=T-1)]`` it is clamped.
"""

from __future__ import annotations

import torch

from priors.base import check_denoise_input
from priors.errors import PriorError
from priors.network import NetworkPrior
from priors.normalisation import Normalisation

__all__ = ["VPDiffusionPrior", "PREDICTION_TYPES"]

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


class VPDiffusionPrior(NetworkPrior):
    """A DDPM-family network (epsilon / v / sample prediction) as a sigma-space denoiser.

    Parameters
    ----------
    network : called as ``network(x_t, t).sample`` (diffusers ``UNet2DModel``) or returning a tensor
    alphas_cumprod : tensor (T,) of the training schedule's ``abar_t``
    prediction_type : one of ``epsilon``, ``v_prediction``, ``sample``
    shape : shape of one sample
    """

    def __init__(self, network: torch.nn.Module, alphas_cumprod, prediction_type: str, shape, *,
                 normalisation: Normalisation | None = None, card: dict | None = None, dims=None):
        if prediction_type not in PREDICTION_TYPES:
            raise PriorError(f"unknown prediction type {prediction_type!r}; expected one of "
                             f"{', '.join(PREDICTION_TYPES)}")
        abar = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
        if abar.ndim != 1 or len(abar) < 2 or not bool(((abar > 0) & (abar < 1)).all()):
            raise PriorError("alphas_cumprod must be a 1-D schedule of values in (0, 1)")
        log_sig = 0.5 * torch.log((1 - abar) / abar)
        if not bool((log_sig[1:] > log_sig[:-1]).all()):
            raise PriorError("alphas_cumprod must decrease strictly with the timestep")
        super().__init__(network, shape, sigma_min=float(log_sig[0].exp()), sigma_max=float(log_sig[-1].exp()),
                         normalisation=normalisation, card=card, dims=dims)
        self.prediction_type = prediction_type
        self.register_buffer("_log_sigmas", log_sig, persistent=False)

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """Fractional training timestep of each ``sigma``: linear interpolation in ``log sigma``."""
        ls = torch.log(sigma.to(torch.float64).clamp_min(1e-30)).clamp(self._log_sigmas[0], self._log_sigmas[-1])
        idx = torch.searchsorted(self._log_sigmas, ls).clamp(1, len(self._log_sigmas) - 1)
        lo, hi = self._log_sigmas[idx - 1], self._log_sigmas[idx]
        return (idx - 1).to(torch.float64) + (ls - lo) / (hi - lo)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Exact conversion of the network's prediction to ``E[x0 | x_sigma]`` (module docstring)."""
        sigma = check_denoise_input(x, sigma, self.shape)
        dt = self.dtype
        view = (-1,) + (1,) * len(self.shape)
        s = sigma.to(torch.float64)
        abar = 1.0 / (1.0 + s**2)
        x_t = (x.to(torch.float64) * abar.sqrt().reshape(view)).to(dt)
        out = self.network_output(x_t, self.timestep(s).to(dt)).to(torch.float64)
        if self.prediction_type == "epsilon":
            x0 = x.to(torch.float64) - s.reshape(view) * out
        elif self.prediction_type == "v_prediction":
            x0 = abar.sqrt().reshape(view) * x_t.to(torch.float64) - (1 - abar).sqrt().reshape(view) * out
        else:
            x0 = out
        return x0.to(x.dtype)

    def config(self) -> dict:
        """The base configuration plus the prediction type."""
        return {**super().config(), "prediction_type": self.prediction_type}
