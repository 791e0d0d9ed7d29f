"""Weights of a particle system: systematic resampling, effective sample size, evidence increments.

- Systematic resampling (Kitagawa 1996): one uniform ``u`` places ``M`` evenly spaced points in the
  cumulative weights, so particle ``i`` has ``floor(M W_i)`` or ``ceil(M W_i)`` offspring.
- Effective sample size (Kong, Liu and Wong 1994): ``ESS = (sum w)^2 / sum w^2``.
- Evidence (Del Moral 2004; Chopin and Papaspiliopoulos 2020, ch. 10): each weighting multiplies the
  estimate of ``Z`` by the weighted mean of its increments, ``sum_i W_i exp(c_i)``.

Example::

    import torch
    from samplers.smc.resampling import effective_sample_size, systematic_resample
    lw = torch.log(torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64))
    effective_sample_size(lw), systematic_resample(lw, torch.Generator().manual_seed(0))
"""

from __future__ import annotations

import math

import torch

from samplers.errors import SamplerError

__all__ = ["systematic_resample", "effective_sample_size", "should_resample", "log_mean_weight",
           "normalise_log_weights", "take"]


def systematic_resample(log_weights: torch.Tensor, generator: torch.Generator | None = None,
                        num: int | None = None) -> torch.Tensor:
    """Ancestor indices by systematic resampling (Kitagawa 1996).

    One uniform ``u ~ U[0, 1)`` gives the points ``(u + j) / M``, j = 0..M-1; index ``i`` is drawn
    as often as points fall in ``[C_{i-1}, C_i)`` with ``C`` the cumulative normalised weights, so
    particle ``i`` has ``floor(M W_i)`` or ``ceil(M W_i)`` offspring and ``E[count_i] = M W_i``.
    """
    n = log_weights.shape[0]
    m = n if num is None else int(num)
    w = torch.softmax(log_weights.detach().to(torch.float64), 0)
    cdf = torch.cumsum(w, 0)
    cdf[-1] = 1.0
    dev = generator.device if generator is not None else cdf.device
    u = torch.rand(1, generator=generator, dtype=torch.float64, device=dev).to(cdf.device)
    points = (u + torch.arange(m, dtype=torch.float64, device=cdf.device)) / m
    idx = torch.searchsorted(cdf, points, right=True)
    return idx.clamp_(max=n - 1).to(log_weights.device)


def effective_sample_size(log_weights: torch.Tensor) -> float:
    """``ESS = (sum_i w_i)^2 / sum_i w_i^2`` from unnormalised log-weights (Kong, Liu and Wong 1994)."""
    lw = log_weights.detach().to(torch.float64)
    return float(torch.exp(2.0 * torch.logsumexp(lw, 0) - torch.logsumexp(2.0 * lw, 0)))


def should_resample(log_weights: torch.Tensor, threshold: float) -> bool:
    """The ESS rule: resample when ``ESS < threshold * N`` (threshold 0: never, 1: unless uniform)."""
    return effective_sample_size(log_weights) < threshold * log_weights.shape[0]


def log_mean_weight(log_weights: torch.Tensor, log_increments: torch.Tensor) -> float:
    """``log sum_i W_i exp(c_i)`` with ``W`` the normalised ``exp(log_weights)``: one evidence factor."""
    lw = log_weights.detach().to(torch.float64)
    lc = log_increments.detach().to(torch.float64)
    return float(torch.logsumexp(torch.log_softmax(lw, 0) + lc, 0))


def normalise_log_weights(log_weights: torch.Tensor, who: str, step: int) -> torch.Tensor:
    """``log_softmax`` of unnormalised log-weights; NaN, infinite or all-zero weights raise
    :class:`SamplerError` naming the sampler ``who`` and the ``step``."""
    if bool(torch.isnan(log_weights).any()):
        raise SamplerError(f"{who}: NaN log-weights at step {step} (the likelihood or the twist returned NaN)")
    if bool((log_weights == math.inf).any()):
        raise SamplerError(f"{who}: infinite log-weights at step {step} (the likelihood or the twist overflowed)")
    if not bool(torch.isfinite(log_weights).any()):
        raise SamplerError(f"{who}: every particle weight is zero at step {step}; use more particles or steps")
    return torch.log_softmax(log_weights, 0)


def take(tensors: dict, idx: torch.Tensor) -> dict:
    """The per-particle entries of ``tensors`` at ancestor indices ``idx`` (other values as they are)."""
    return {k: (v[idx] if isinstance(v, torch.Tensor) else v) for k, v in tensors.items()}
