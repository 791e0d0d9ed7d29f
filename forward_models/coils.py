"""Synthetic receive-coil sensitivity maps for multi-coil (parallel) MRI.

A coil ``c`` sees the image weighted by its complex sensitivity ``S_c(r)``. The maps here mimic a
ring of surface coils around the object: coil ``c`` sits at angle ``phi_c = 2 pi c / C + jitter``
on a circle of radius ``R = 1.2`` (image coordinates in ``[-1, 1]^2``), its magnitude falls off as
a Gaussian ``exp(-|r - p_c|^2 / (2 w^2))`` with ``w = 0.9``, and its phase is smooth (linear in
``r``, plus the offset ``phi_c``). Finally the maps are normalised,

    ``S_c <- S_c / sqrt(sum_c' |S_c'|^2)``  so that  ``sum_c |S_c(r)|^2 = 1`` at every pixel,

which makes the coil-expansion operator ``x -> (S_1 x, ..., S_C x)`` an isometry and the SENSE
coil combination ``sum_c conj(S_c) y_c`` its exact left inverse (Pruessmann et al., "SENSE:
Sensitivity encoding for fast MRI", MRM 42:952, 1999).

Complex numbers follow the library's MRI convention: a real tensor whose leading axis of length 2
holds the (real, imaginary) parts, here ``(2, C, H, W)`` — the layout
:class:`forward_models.mri.MultiCoilMRI` takes.

Example::

    from forward_models.coils import synthetic_coil_maps
    S = synthetic_coil_maps(8, 64, 64, seed=0)       # (2, 8, 64, 64)
    (S**2).sum((0, 1))                               # all ones
"""

from __future__ import annotations

import math
import numbers

import torch

__all__ = ["synthetic_coil_maps"]


def _positive_int(v, name: str) -> int:
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def synthetic_coil_maps(num_coils: int, H: int, W: int, seed: int | None = None, *, dtype=None) -> torch.Tensor:
    """Smooth, normalised complex coil sensitivities as a real tensor ``(2, C, H, W)`` (real, imaginary).

    ``S_c(r) = G_c(r) exp(i theta_c(r)) / sqrt(sum_c' G_c'(r)^2)`` with Gaussian magnitudes
    ``G_c(r) = exp(-|r - p_c|^2 / (2 * 0.9^2))`` centred at ``p_c = 1.2 (cos phi_c, sin phi_c)``
    around the border of the image square ``[-1, 1]^2`` and smooth phases
    ``theta_c(r) = phi_c + a_c . r`` (``|a_c| <= pi / 2``). The result has
    ``sum_c |S_c(r)|^2 = 1`` at every pixel ``r`` (to rounding).

    ``seed=None`` gives the deterministic layout (``phi_c = 2 pi c / C``, phase ramps fixed);
    an integer seed jitters the coil angles by up to half a coil spacing and draws the phase
    ramps from a private ``torch.Generator``. ``dtype`` defaults to torch's default dtype (the
    maps are computed in float64 and then cast).

    Reference for the model: Pruessmann et al., MRM 42:952 (1999); the Gaussian ring is a common
    simulation stand-in for the Biot-Savart birdcage maps of Guerquin-Kern et al., IEEE TMI 31:626 (2012).
    """
    C = _positive_int(num_coils, "num_coils")
    H = _positive_int(H, "H")
    W = _positive_int(W, "W")
    f64 = torch.float64
    phi = 2 * math.pi * torch.arange(C, dtype=f64) / C
    if seed is None:
        a = 0.5 * torch.stack([torch.cos(phi + 1.0), torch.sin(phi + 1.0)], 1)  # (C, 2), fixed ramps
    else:
        g = torch.Generator().manual_seed(int(seed))
        phi = phi + (torch.rand(C, generator=g, dtype=f64) - 0.5) * (2 * math.pi / C)
        a = (torch.rand(C, 2, generator=g, dtype=f64) * 2 - 1) * (math.pi / 2 / math.sqrt(2))
    yy = torch.linspace(-1, 1, H, dtype=f64)[:, None].expand(H, W)
    xx = torch.linspace(-1, 1, W, dtype=f64)[None, :].expand(H, W)
    px, py = 1.2 * torch.cos(phi), 1.2 * torch.sin(phi)
    d2 = (xx[None] - px[:, None, None]) ** 2 + (yy[None] - py[:, None, None]) ** 2
    mag = torch.exp(-d2 / (2 * 0.9**2))
    theta = phi[:, None, None] + a[:, 0, None, None] * xx[None] + a[:, 1, None, None] * yy[None]
    mag = mag / torch.sqrt((mag**2).sum(0, keepdim=True))
    S = torch.stack([mag * torch.cos(theta), mag * torch.sin(theta)], 0)
    return S.to(dtype if dtype is not None else torch.get_default_dtype())
