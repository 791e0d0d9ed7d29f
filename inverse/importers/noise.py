"""Noise level of measured data when nobody gives it: k-space corners and the wavelet MAD.

Both estimators are robust: they use the median absolute deviation (MAD), which a few large signal
coefficients do not move, and assume white Gaussian noise of standard deviation ``sigma``.

- **k-space** (MRI): the outer corners of the sampled k-space, where an image's spectrum has decayed
  to the noise floor: every sampled entry with ``|ky - H/2| >= 3H/8`` and ``|kx - W/2| >= 3W/8``
  (the outer eighth on both axes; the outer quarter on either axis when fewer than 64 sampled entries lie
  in the corners). ``sigma = 1.4826 MAD`` over their real and imaginary parts, the per-part standard
  deviation of the library's ``Gaussian(sigma)`` k-space noise.
- **wavelet MAD** (everything else; Donoho and Johnstone, Biometrika 81:425, 1994): the finest diagonal
  Haar detail coefficients ``HH1`` of the data arranged as images (the last two axes; 1-D data use the
  finest detail coefficients), ``sigma = median(|HH1|) / 0.6745``. Smooth or piecewise-smooth data have
  few large fine-scale details, so the median sees the noise.

Example::

    import numpy as np
    from inverse.importers.noise import wavelet_mad_sigma
    wavelet_mad_sigma(np.random.default_rng(0).normal(0, 0.1, (64, 64)))   # ~0.1
"""

from __future__ import annotations

import numpy as np
import torch

from inverse.errors import UserError

__all__ = ["estimate_noise", "kspace_corner_sigma", "wavelet_mad_sigma"]

_MAD_TO_SIGMA = 1.4826  # 1 / Phi^{-1}(3/4)


def _mad_sigma(v: np.ndarray) -> float:
    return float(_MAD_TO_SIGMA * np.median(np.abs(v - np.median(v))))


def kspace_corner_sigma(y: np.ndarray, mask: np.ndarray) -> float:
    """Per-part noise std of k-space ``y`` ``(2, ..., H, W)`` (real layout) from its sampled outer corners."""
    H, W = mask.shape
    ky = np.abs(np.arange(H) - H // 2)[:, None]
    kx = np.abs(np.arange(W) - W // 2)[None, :]
    sampled = mask > 0
    region = sampled & (ky >= 3 * H / 8) & (kx >= 3 * W / 8)
    if region.sum() < 64:
        region = sampled & ((ky >= H / 4) | (kx >= W / 4))
    if not region.any():
        raise UserError("cannot estimate the k-space noise: no sampled entry lies outside the k-space centre; "
                        "give --noise-std")
    return _mad_sigma(np.asarray(y)[..., region].reshape(-1))


def wavelet_mad_sigma(a: np.ndarray) -> float:
    """``median(|HH1|) / 0.6745`` over the finest diagonal Haar details of the last two axes of ``a``.

    Arrays with a last-two-axes shape under 2 x 2 use the finest 1-D details of the flattened data.
    """
    import pywt

    a = np.asarray(a, dtype=np.float64)
    a = a.reshape(-1, *a.shape[-2:]) if a.ndim >= 2 else a.reshape(1, 1, -1)
    if min(a.shape[-2:]) < 2:
        d = pywt.dwt(a.reshape(-1), "haar")[1]
    else:
        d = np.concatenate([pywt.dwt2(img, "haar")[1][2].reshape(-1) for img in a])
    if d.size == 0:
        raise UserError("too few measurements to estimate the noise level; give --noise-std")
    return float(np.median(np.abs(d)) / 0.6745)


def estimate_noise(problem: str, y: torch.Tensor, forward_model) -> tuple[float, str]:
    """``(sigma, method)`` for measurement ``y`` of ``problem`` (module docstring); a zero estimate is refused."""
    a = y.detach().cpu().numpy()
    mask = getattr(getattr(forward_model, "operator", forward_model), "mask", None)
    if problem.startswith("mri") and mask is not None and tuple(mask.shape) == tuple(a.shape[-2:]):
        sigma = kspace_corner_sigma(a, mask.detach().cpu().numpy())
        method = "k-space corners (MAD of the sampled outer corners)"
    else:
        sigma = wavelet_mad_sigma(a)
        method = "wavelet MAD (median |HH1| / 0.6745, Haar)"
    if not np.isfinite(sigma) or sigma <= 0:
        raise UserError(f"problem {problem!r}: the noise level estimated by {method} is {sigma:g} (noise-free "
                        "or quantised data?); give --noise-std")
    return sigma, method
