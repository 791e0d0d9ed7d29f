"""Noise schedules as plain functions returning a tensor of sigmas (descending, ending at 0).

``karras_sigmas``: Karras et al. 2022 (EDM), eq. 5:
``sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``, then 0.
"""

from __future__ import annotations

import math

import torch

from samplers.errors import SamplerConfigError
from samplers.validation import positive_int

__all__ = ["karras_sigmas", "check_rho", "RHO_RANGE"]

#: accepted schedule exponents: 1 spaces the levels linearly, EDM uses 7; outside this range the levels
#: pile up at one end (and ``sigma^(1/rho)`` overflows for rho near 0)
RHO_RANGE = (0.5, 1000.0)


def check_rho(rho) -> float:
    """``rho`` as a float in :data:`RHO_RANGE`, or :class:`~samplers.errors.SamplerConfigError`."""
    try:
        value = float(rho)
    except (TypeError, ValueError, OverflowError):
        raise SamplerConfigError(f"the schedule exponent rho must be a number, got {rho!r}") from None
    if not (math.isfinite(value) and RHO_RANGE[0] <= value <= RHO_RANGE[1]):
        raise SamplerConfigError(f"the schedule exponent rho must lie in [{RHO_RANGE[0]:g}, {RHO_RANGE[1]:g}] "
                                 f"(EDM: 7), got {value:g}")
    return value


def _check(num_steps, sigma_min, sigma_max, rho) -> int:
    num_steps = positive_int(num_steps, "num_steps")
    try:
        sigma_min, sigma_max = float(sigma_min), float(sigma_max)
    except (TypeError, ValueError, OverflowError):
        raise SamplerConfigError(f"sigma_min and sigma_max must be numbers, got {sigma_min!r}, {sigma_max!r}") from None
    if not (math.isfinite(sigma_min) and math.isfinite(sigma_max) and 0 < sigma_min < sigma_max):
        raise SamplerConfigError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    check_rho(rho)
    return num_steps


def karras_sigmas(num_steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0,
                  *, device=None, dtype=torch.float64) -> torch.Tensor:
    """EDM schedule of ``num_steps`` noise levels from ``sigma_max`` to ``sigma_min``, plus a final 0.

    ``rho`` must lie in :data:`RHO_RANGE`, and the levels must come out finite and decreasing. Returns a
    tensor of length ``num_steps + 1``; a bad setting raises :class:`~samplers.errors.SamplerConfigError`.

    Example::

        >>> karras_sigmas(3, 0.002, 80.0).tolist()[-1]
        0.0
    """
    num_steps = _check(num_steps, sigma_min, sigma_max, rho)
    if num_steps == 1:
        s = torch.tensor([sigma_max], dtype=dtype, device=device)
    else:
        ramp = torch.linspace(0, 1, num_steps, dtype=dtype, device=device)
        try:
            lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
            s = (hi + ramp * (lo - hi)) ** rho
        except OverflowError:
            s = ramp.new_full((1,), math.inf)
        if not (bool(torch.isfinite(s).all()) and bool((s[1:] < s[:-1]).all()) and float(s[-1]) > 0):
            raise SamplerConfigError(f"rho={float(rho):g} gives no finite decreasing noise schedule from "
                                     f"sigma_max={float(sigma_max):g} to sigma_min={float(sigma_min):g}; "
                                     "use a rho nearer 7")
    return torch.cat([s, s.new_zeros(1)])
