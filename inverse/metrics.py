"""Distances between sample sets, for benchmarks and statistical tests.

- Sliced Wasserstein-1 (Rabin et al. 2011; Bonneel et al. 2015): the average over random unit
  directions ``theta`` of the 1-D Wasserstein-1 distance between the projections; for two sets of
  equal size n it is ``mean_i |sort(a theta)_i - sort(b theta)_i|``. For a *weighted* set (SMC
  particles with normalised weights ``w``) the 1-D distance is ``int |F_a(t) - F_b(t)| dt`` between
  the weighted and the empirical distribution functions, computed exactly on the merged sorted
  projections; with equal weights and sizes it equals the sorted-difference formula.
- Mode-weight total variation: ``0.5 * sum_k |p_k - q_k|`` between exact mixture-component
  weights ``p`` and the sampler's component frequencies ``q`` (each sample assigned to its most
  probable posterior component).
- Predictive-interval coverage: the share of entries whose true value lies in the 90% prediction interval of a new
  draw, ``mean +- t_{n-1} s sqrt(1 + 1/n)`` from ``n`` samples (Student t; exact for Gaussian marginals, so an exact
  sampler scores the level itself at any ``n``; the 5-95% sample-quantile band of ``n`` exchangeable draws covers
  only about ``0.9 (n - 1) / (n + 1)``, 0.70 at ``n = 8``).
- Image metrics: relative L2, PSNR, SSIM (Wang et al. 2004); a reference (truth) holding NaN or Inf is
  refused (:class:`inverse.errors.UserError`) rather than scored ``nan``.
"""

from __future__ import annotations

import math

import torch

from inverse.errors import UserError

__all__ = ["sliced_wasserstein", "mode_weight_tv", "relative_l2", "psnr", "ssim", "predictive_coverage"]


def _check_weights(weights, n: int, name: str) -> torch.Tensor:
    """Normalised float64 weights of length ``n``; a clear error for a bad vector."""
    w = torch.as_tensor(weights, dtype=torch.float64).reshape(-1)
    if w.shape[0] != n:
        raise UserError(f"{name}: {w.shape[0]} weights for {n} samples")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise UserError(f"{name}: weights must be finite, non-negative and not all zero")
    return w / w.sum()


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, num_slices: int = 1000, *, seed: int = 0,
                       weights_a: torch.Tensor | None = None) -> float:
    """Sliced Wasserstein-1 distance between sample sets ``a`` (n, d) and ``b`` (m, d).

    Directions are uniform on the sphere, drawn from a generator seeded with ``seed`` so that
    two calls on the same sets agree. Without ``weights_a`` the sets must have equal size and the
    1-D distance is ``mean_i |sort(a theta)_i - sort(b theta)_i|``; with ``weights_a`` (non-negative,
    normalised here) ``a`` is the weighted empirical measure ``sum_i w_i delta_{a_i}`` and the 1-D
    distance is ``int |F_a - F_b|`` (module docstring), for any ``m``.
    """
    a = torch.as_tensor(a, dtype=torch.float64).reshape(len(a), -1)
    b = torch.as_tensor(b, dtype=torch.float64).reshape(len(b), -1).to(a.device)
    if a.shape[1] != b.shape[1] or (weights_a is None and a.shape != b.shape):
        raise UserError(f"sliced_wasserstein needs {'equal-size ' if weights_a is None else ''}sets of equal "
                        f"dimension, got {tuple(a.shape)} and {tuple(b.shape)}")
    if not (bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())):
        raise UserError("sliced_wasserstein: the samples contain NaN or Inf")
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    theta = torch.randn(a.shape[1], int(num_slices), generator=g, dtype=torch.float64).to(a.device)
    theta = theta / theta.norm(dim=0, keepdim=True)
    if weights_a is None:
        pa, _ = torch.sort(a @ theta, dim=0)
        pb, _ = torch.sort(b @ theta, dim=0)
        return float((pa - pb).abs().mean())
    wa = _check_weights(weights_a, len(a), "sliced_wasserstein").to(a.device)
    vals = torch.cat([a @ theta, b @ theta], 0)  # (n + m, slices)
    jumps = torch.cat([wa, torch.full((len(b),), -1.0 / len(b), dtype=torch.float64, device=a.device)])
    vals, order = torch.sort(vals, dim=0)
    diff_cdf = torch.cumsum(jumps[order], dim=0)[:-1]  # F_a - F_b on each gap between sorted points
    return float((diff_cdf.abs() * vals.diff(dim=0)).sum(0).mean())


def mode_weight_tv(samples: torch.Tensor, mixture, weights: torch.Tensor | None = None) -> float:
    """Total variation between ``mixture.weights`` and the (``weights``-weighted) frequencies of the
    samples' most probable component."""
    x = torch.as_tensor(samples, dtype=torch.float64).reshape(len(samples), -1)
    k = mixture.responsibilities(x).argmax(1)
    w = (torch.full((len(x),), 1.0 / len(x), dtype=torch.float64) if weights is None
         else _check_weights(weights, len(x), "mode_weight_tv")).to(x.device)
    freq = torch.zeros(len(mixture.weights), dtype=torch.float64, device=x.device).index_add_(0, k, w)
    return float(0.5 * (freq - mixture.weights.to(freq.device)).abs().sum())


def _finite_reference(ref: torch.Tensor, name: str) -> None:
    """A reference (truth) with NaN or Inf gives meaningless scores ("relative L2 nan"): refuse it in one line."""
    if not bool(torch.isfinite(ref).all()):
        raise UserError(f"{name}: the reference (truth) contains {int((~torch.isfinite(ref)).sum())} NaN or Inf "
                        "values")


def relative_l2(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Relative error ``||x - ref||_2 / ||ref||_2`` over all entries."""
    x, ref = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(ref, dtype=torch.float64)
    if x.shape != ref.shape:
        raise UserError(f"relative_l2: shapes differ, {tuple(x.shape)} vs {tuple(ref.shape)}")
    _finite_reference(ref, "relative_l2")
    return float((x - ref).norm() / ref.norm().clamp_min(1e-300))


def predictive_coverage(samples: torch.Tensor, truth: torch.Tensor, level: float = 0.9) -> float:
    """Share of entries of ``truth`` inside the ``level`` prediction interval ``m +- t s sqrt(1 + 1/n)`` of the ``n``
    samples (per-entry mean ``m`` and unbiased standard deviation ``s``, ``t`` the ``(1 + level) / 2`` quantile of
    Student's t with ``n - 1`` degrees of freedom). If the truth is one more draw from the samples' (Gaussian)
    distribution, the interval holds it with probability ``level`` whatever ``n`` (Geisser 1993, ch. 2).

    Example::

        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(9, 20000, generator=g, dtype=torch.float64)
        >>> round(predictive_coverage(x[:8], x[8]), 2)
        0.9
    """
    from scipy.stats import t as student_t

    x = torch.as_tensor(samples, dtype=torch.float64)
    ref = torch.as_tensor(truth, dtype=torch.float64)
    if x.ndim < 1 or x.shape[1:] != ref.shape:
        raise UserError(f"predictive_coverage: samples {tuple(x.shape)} do not stack truths {tuple(ref.shape)}")
    if len(x) < 2:
        raise UserError("predictive_coverage: needs at least 2 samples")
    if not 0.0 < level < 1.0:
        raise UserError(f"predictive_coverage: level must lie in (0, 1), got {level}")
    _finite_reference(ref, "predictive_coverage")
    n = len(x)
    half = float(student_t.ppf(0.5 + level / 2, n - 1)) * math.sqrt(1 + 1 / n) * x.std(0, unbiased=True)
    return float(((ref - x.mean(0)).abs() <= half).double().mean())


def psnr(x: torch.Tensor, ref: torch.Tensor, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio ``10 log10(R^2 / MSE)`` in dB; ``R`` defaults to ``max(ref) - min(ref)``."""
    x, ref = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(ref, dtype=torch.float64)
    if x.shape != ref.shape:
        raise UserError(f"psnr: shapes differ, {tuple(x.shape)} vs {tuple(ref.shape)}")
    _finite_reference(ref, "psnr")
    r = float(ref.max() - ref.min()) if data_range is None else float(data_range)
    mse = float((x - ref).square().mean())
    return float("inf") if mse == 0 else 10.0 * math.log10(r * r / mse)


def ssim(x: torch.Tensor, ref: torch.Tensor, data_range: float | None = None, *, window: int = 11,
         sigma: float = 1.5) -> float:
    """Structural similarity (Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 13:600, 2004), mean over the image.

    Gaussian window (11 x 11, sigma 1.5), ``K1 = 0.01``, ``K2 = 0.03``, ``L = data_range`` (default
    ``max(ref) - min(ref)``), valid region only (no padding); channels averaged. Inputs ``(H, W)`` or
    ``(C, H, W)``.
    """
    x, ref = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(ref, dtype=torch.float64)
    if x.shape != ref.shape or x.ndim not in (2, 3):
        raise UserError(f"ssim: need two images of the same shape (H, W) or (C, H, W), got {tuple(x.shape)}, "
                        f"{tuple(ref.shape)}")
    _finite_reference(ref, "ssim")
    if x.ndim == 2:
        x, ref = x[None], ref[None]
    if min(x.shape[-2:]) < window:
        raise UserError(f"ssim: images smaller than the {window} x {window} window")
    L = float(ref.max() - ref.min()) if data_range is None else float(data_range)
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    t = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-t**2 / (2 * sigma**2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :])[None, None]
    f = lambda z: torch.nn.functional.conv2d(z[:, None], k)[:, 0]  # noqa: E731
    mx, my = f(x), f(ref)
    sxx, syy, sxy = f(x * x) - mx**2, f(ref * ref) - my**2, f(x * ref) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(s.mean())
