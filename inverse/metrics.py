"""Distances between sample sets, for benchmarks and statistical tests.

- Sliced Wasserstein-1 (Rabin et al. 2011; Bonneel et al. 2015): the average over random unit
  directions ``theta`` of the 1-D Wasserstein-1 distance between the projections; for two sets of
  equal size n it is ``mean_i |sort(a theta)_i - sort(b theta)_i|``.
- Mode-weight total variation: ``0.5 * sum_k |p_k - q_k|`` between exact mixture-component
  weights ``p`` and the sampler's component frequencies ``q`` (each sample assigned to its most
  probable posterior component).
"""

from __future__ import annotations

import torch

__all__ = ["sliced_wasserstein", "mode_weight_tv"]


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, num_slices: int = 1000, *, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance between equal-size sample sets ``a``, ``b`` of shape (n, d).

    Directions are uniform on the sphere, drawn from a generator seeded with ``seed`` so that
    two calls on the same sets agree.
    """
    a = torch.as_tensor(a, dtype=torch.float64).reshape(len(a), -1)
    b = torch.as_tensor(b, dtype=torch.float64).reshape(len(b), -1).to(a.device)
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein needs equal-size sets of equal dimension, got {tuple(a.shape)} and {tuple(b.shape)}")
    if not (bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())):
        raise ValueError("sliced_wasserstein: the samples contain NaN or Inf")
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    theta = torch.randn(a.shape[1], int(num_slices), generator=g, dtype=torch.float64).to(a.device)
    theta = theta / theta.norm(dim=0, keepdim=True)
    pa, _ = torch.sort(a @ theta, dim=0)
    pb, _ = torch.sort(b @ theta, dim=0)
    return float((pa - pb).abs().mean())


def mode_weight_tv(samples: torch.Tensor, mixture) -> float:
    """Total variation between ``mixture.weights`` and the frequencies of the samples' most probable component."""
    x = torch.as_tensor(samples, dtype=torch.float64).reshape(len(samples), -1)
    k = mixture.responsibilities(x).argmax(1)
    freq = torch.bincount(k, minlength=len(mixture.weights)).to(torch.float64) / len(x)
    return float(0.5 * (freq - mixture.weights.to(freq.device)).abs().sum())
