"""Coil sensitivity maps estimated from the autocalibration (ACS) region of multi-coil k-space.

Low-resolution sum-of-squares estimate (Pruessmann et al., "SENSE", MRM 42:952, 1999, sec. "Sensitivity
assessment"; the initialisation of ESPIRiT, Uecker et al., MRM 71:990, 2014): keep only the fully
sampled k-space centre, a ``a x a`` square around the DC entry (``a`` the ACS width, the contiguous run
of sampled columns through the centre column), tapered by a 2-D Hann window of width ``a + 2`` (no
sample is zeroed, ringing is damped); its inverse DFT gives smooth coil images ``c_j``, and

    S_j = c_j / sqrt(sum_k |c_k|^2)

(root-sum-of-squares normalisation: ``sum_j |S_j|^2 = 1`` wherever any coil sees signal). The object's
own low-resolution magnitude cancels in the ratio; its phase stays in the maps, which is what a
real-valued image model needs. Outside the object the maps are noise-driven but still normalised.

Example::

    import torch
    from forward_models.mri import MultiCoilMRI
    from inverse.importers.coil_maps import acs_columns, estimate_coil_maps
    op = MultiCoilMRI.cartesian(64, acceleration=4, num_coils=8, seed=0)
    k = op(op.example_input(1))[0]                        # (2, 8, 64, 64)
    S = estimate_coil_maps(torch.complex(k[0], k[1]).numpy(), op.mask.numpy())   # (8, 64, 64) complex
"""

from __future__ import annotations

import numpy as np

from inverse.errors import UserError

__all__ = ["acs_columns", "estimate_coil_maps"]


def acs_columns(mask: np.ndarray) -> tuple[int, int]:
    """``(start, stop)`` of the contiguous run of fully sampled columns through the centre column ``W // 2``."""
    cols = np.asarray(mask).astype(bool).all(axis=0)
    c = cols.shape[0] // 2
    if not cols[c]:
        raise UserError("the k-space centre column is not sampled: no autocalibration region to estimate coil "
                        "maps from; give --coil-maps")
    lo, hi = c, c + 1
    while lo > 0 and cols[lo - 1]:
        lo -= 1
    while hi < cols.shape[0] and cols[hi]:
        hi += 1
    return lo, hi


def estimate_coil_maps(kspace: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Complex maps ``(C, H, W)`` from k-space ``(C, H, W)`` (centred, complex) and its 0/1 mask ``(H, W)``."""
    C, H, W = kspace.shape
    lo, hi = acs_columns(mask)
    a = hi - lo
    if a < 2:
        raise UserError(f"the autocalibration region is {a} column wide: too narrow to estimate coil maps; "
                        "give --coil-maps")
    r0 = H // 2 - a // 2
    win = np.hanning(a + 2)[1:-1]
    low = np.zeros_like(kspace)
    rows = slice(max(r0, 0), min(r0 + a, H))
    low[:, rows, lo:hi] = kspace[:, rows, lo:hi] * np.outer(win[: rows.stop - rows.start], win)[None]
    imgs = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(low, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    rss = np.sqrt((np.abs(imgs) ** 2).sum(0))
    if not np.isfinite(rss).all() or rss.max() == 0:
        raise UserError("the autocalibration region holds no signal: cannot estimate coil maps; give --coil-maps")
    return np.where(rss > 0, imgs / np.where(rss > 0, rss, 1.0), 0.0)
