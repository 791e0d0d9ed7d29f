"""Noise schedules as plain functions returning a tensor of sigmas (descending, ending at 0).

``karras_sigmas``: Karras et al. 2022 (EDM), eq. 5:
``sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``, then 0.
"""

from __future__ import annotations

import torch

from samplers.errors import SamplerConfigError
from samplers.validation import positive_int

__all__ = ["karras_sigmas"]


def karras_sigmas(num_steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0,
                  *, device=None, dtype=torch.float64) -> torch.Tensor:
    """EDM schedule of ``num_steps`` noise levels from ``sigma_max`` to ``sigma_min``, plus a final 0.

    Returns a tensor of length ``num_steps + 1``.
    """
    num_steps = positive_int(num_steps, "num_steps")
    if not 0 < sigma_min < sigma_max:
        raise SamplerConfigError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    if num_steps == 1:
        s = torch.tensor([sigma_max], dtype=dtype, device=device)
    else:
        ramp = torch.linspace(0, 1, num_steps, dtype=dtype, device=device)
        lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
        s = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([s, s.new_zeros(1)])
