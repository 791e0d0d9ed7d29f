"""Ellipse phantoms for CT and MRI: seeded random ellipse phantoms and the Shepp-Logan head phantom.

A phantom is a sum of constant-intensity ellipses, ``f(r) = sum_k rho_k 1[r in E_k]``, with

    ``E_k = { r : (x'_k / a_k)^2 + (y'_k / b_k)^2 <= 1 }``,
    ``(x'_k, y'_k) = Rot(-phi_k) (r - c_k)``,

on the square ``[-1, 1]^2`` (``x`` to the right, ``y`` up; row 0 of the image is ``y`` near +1),
evaluated at pixel centres ``x_j = -1 + (2 j + 1) / size``. Ellipse sums are the classical CT test
objects because their Radon transforms are known in closed form (Shepp & Logan, "The Fourier
reconstruction of a head section", IEEE Trans. Nucl. Sci. 21:21, 1974; Kak & Slaney 1988, ch. 3).

Own code rather than deepinv's ``generate_random_phantom`` (which draws from NumPy's global RNG,
so it is neither seedable per call nor reproducible alongside other code).
"""

from __future__ import annotations

import math
import numbers

import torch

from forward_models.errors import ForwardModelError

__all__ = ["random_ellipses", "shepp_logan", "ellipse_image", "SHEPP_LOGAN_MODIFIED"]

#: Toft's modified Shepp-Logan head (better contrast than the original): rows
#: (intensity rho, semi-axis a (x), semi-axis b (y), centre x, centre y, angle phi in degrees).
#: P. Toft, *The Radon Transform: Theory and Implementation*, PhD thesis, DTU (1996), table B.2.
SHEPP_LOGAN_MODIFIED = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.8740, 0.0, -0.0184, 0.0),
    (-0.2, 0.1100, 0.3100, 0.22, 0.0, -18.0),
    (-0.2, 0.1600, 0.4100, -0.22, 0.0, 18.0),
    (0.1, 0.2100, 0.2500, 0.0, 0.35, 0.0),
    (0.1, 0.0460, 0.0460, 0.0, 0.1, 0.0),
    (0.1, 0.0460, 0.0460, 0.0, -0.1, 0.0),
    (0.1, 0.0460, 0.0230, -0.08, -0.605, 0.0),
    (0.1, 0.0230, 0.0230, 0.0, -0.605, 0.0),
    (0.1, 0.0230, 0.0460, 0.06, -0.605, 0.0),
)


def _check_size(size) -> int:
    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 2:
        raise ForwardModelError(f"phantom size must be an integer >= 2, got {size!r}")
    return int(size)


def ellipse_image(params: torch.Tensor, size: int) -> torch.Tensor:
    """Sum of ellipses ``(..., K, 6)`` [rho, a, b, cx, cy, phi (radians)] on the grid -> ``(..., size, size)``.

    Computed in ``params``' dtype; see the module docstring for the coordinate convention.
    """
    size = _check_size(size)
    p = params
    c = (torch.arange(size, dtype=p.dtype, device=p.device) * 2 + 1) / size - 1
    x = c[None, :]            # (1, size): columns
    y = -c[:, None]           # (size, 1): rows, y up
    rho, a, b, cx, cy, phi = (p[..., i, None, None] for i in range(6))
    dx, dy = x - cx, y - cy  # (..., K, 1, size) and (..., K, size, 1)
    cos, sin = torch.cos(phi), torch.sin(phi)
    ia2, ib2 = 1 / a**2, 1 / b**2
    # (x'/a)^2 + (y'/b)^2 as a quadratic form in (dx, dy): fewer full-size operations
    q = (dx * dx * (cos**2 * ia2 + sin**2 * ib2) + dy * dy * (sin**2 * ia2 + cos**2 * ib2)
         + (dx * (2 * cos * sin * (ia2 - ib2))) * dy)
    return torch.where(q <= 1, rho, torch.zeros((), dtype=p.dtype, device=p.device)).sum(-3)


def shepp_logan(size: int, *, dtype=None) -> torch.Tensor:
    """Modified Shepp-Logan head phantom (Toft 1996), shape ``(1, size, size)``, values in [0, 1].

    Background 0, skull 1, brain 0.2, ventricles 0, small features 0.1 to 0.4 (Shepp & Logan
    1974, with Toft's higher-contrast intensities). Deterministic.
    """
    size = _check_size(size)
    P = torch.tensor(SHEPP_LOGAN_MODIFIED, dtype=torch.float64)
    P[:, 5] = P[:, 5] * (math.pi / 180)
    img = ellipse_image(P, size).clamp(0, 1)
    return img[None].to(dtype if dtype is not None else torch.get_default_dtype())


def random_ellipses(n: int, size: int, seed: int = 0, *, num_ellipses: int = 8, dtype=None) -> torch.Tensor:
    """Seeded random ellipse phantoms ``(n, 1, size, size)`` with values in [0, 1].

    Each phantom is a body ellipse (centre within 0.1 of the origin, semi-axes in [0.6, 0.9],
    any orientation, intensity in [0.2, 0.5]) plus ``num_ellipses`` inner ellipses (centres inside
    the body, semi-axes log-uniform in [0.04, 0.35], intensity change uniform in [-0.3, 0.5]),
    summed as in the Shepp-Logan phantom and clipped to [0, 1].

    All parameters come from one ``torch.rand`` draw of a private generator seeded by ``seed``, so
    the result is reproducible and prefix-stable: ``random_ellipses(10, s, k)[:5]`` equals
    ``random_ellipses(5, s, k)``.
    """
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise ForwardModelError(f"the number of phantoms n must be a positive integer, got {n!r}")
    size = _check_size(size)
    if not isinstance(num_ellipses, numbers.Integral) or isinstance(num_ellipses, bool) or num_ellipses < 0:
        raise ForwardModelError(f"num_ellipses must be a non-negative integer, got {num_ellipses!r}")
    n, K = int(n), int(num_ellipses)
    g = torch.Generator().manual_seed(int(seed))
    u = torch.rand(n, K + 1, 6, generator=g, dtype=torch.float64)
    P = torch.empty_like(u)
    # body
    body = u[:, 0]
    P[:, 0, 0] = 0.2 + 0.3 * body[:, 0]
    P[:, 0, 1] = 0.6 + 0.3 * body[:, 1]
    P[:, 0, 2] = 0.6 + 0.3 * body[:, 2]
    P[:, 0, 3] = 0.2 * body[:, 3] - 0.1
    P[:, 0, 4] = 0.2 * body[:, 4] - 0.1
    P[:, 0, 5] = math.pi * body[:, 5]
    if K:
        inner = u[:, 1:]
        # centres: uniform in a disc, mapped into the body ellipse (shrunk to 0.75 of its axes)
        rad, ang = torch.sqrt(inner[..., 3]), 2 * math.pi * inner[..., 4]
        lx, ly = 0.75 * P[:, :1, 1] * rad * torch.cos(ang), 0.75 * P[:, :1, 2] * rad * torch.sin(ang)
        bc, bs = torch.cos(P[:, :1, 5]), torch.sin(P[:, :1, 5])
        P[:, 1:, 3] = P[:, :1, 3] + lx * bc - ly * bs
        P[:, 1:, 4] = P[:, :1, 4] + lx * bs + ly * bc
        lo, hi = math.log(0.04), math.log(0.35)
        P[:, 1:, 0] = -0.3 + 0.8 * inner[..., 0]
        P[:, 1:, 1] = torch.exp(lo + (hi - lo) * inner[..., 1])
        P[:, 1:, 2] = torch.exp(lo + (hi - lo) * inner[..., 2])
        P[:, 1:, 5] = math.pi * inner[..., 5]
    chunk = max(1, int(2e7 // ((K + 1) * size * size)))
    imgs = torch.cat([ellipse_image(P[i:i + chunk], size) for i in range(0, n, chunk)])
    return imgs.clamp_(0, 1)[:, None].to(dtype if dtype is not None else torch.get_default_dtype())
