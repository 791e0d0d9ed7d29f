"""Seeded Cartesian k-space undersampling masks for MRI.

Convention (the fastMRI one, Zbontar et al. 2018, arXiv:1811.08839): k-space is stored *centred*
(zero frequency at index ``(H // 2, W // 2)``, as produced by ``fftshift``), the **columns** (last
axis, length ``W``) are the phase-encode lines, and a Cartesian mask keeps or drops whole columns:
``mask[:, j]`` is all ones or all zeros. Every mask has

- a fully sampled centre band of ``n_c = round(center_fraction * W)`` columns around ``W // 2``
  (``round`` = to the nearest integer, halves up)
  (the low frequencies that carry most of the image energy and allow coil calibration);
- ``n = round(W / acceleration)`` sampled columns in total, so the realised acceleration
  ``W / n`` equals the requested one up to the rounding of ``n`` (exact when ``acceleration``
  divides ``W``; off by at most ``0.5 / n`` relative, e.g. 7.69 for 8x at W = 100);
- the ``n - n_c`` remaining columns chosen outside the band by ``kind``:

  ``"random"``      uniformly at random without replacement (Lustig et al. 2007, MRM 58:1182);
  ``"equispaced"``  evenly spaced over the outer columns with a seeded random offset
                    (fastMRI's equispaced mask, a GRAPPA-like pattern);
  ``"gaussian"``    without replacement with probability ``∝ exp(-(j - W/2)^2 / (2 (0.2 W)^2))``,
                    a variable-density pattern denser near the centre (Lustig et al. 2007).

Example::

    from forward_models.masks import cartesian_mask, realised_acceleration
    m = cartesian_mask((64, 64), acceleration=4, center_fraction=0.08, kind="random", seed=0)
    realised_acceleration(m)      # 4.0
"""

from __future__ import annotations

import math
import numbers

import torch

from forward_models.errors import ForwardModelError

__all__ = ["cartesian_mask", "realised_acceleration", "MASK_KINDS"]

#: the kinds of outer-line selection :func:`cartesian_mask` knows
MASK_KINDS = ("random", "equispaced", "gaussian")

#: standard deviation of the variable-density ``"gaussian"`` kind, as a fraction of W
_GAUSSIAN_WIDTH = 0.2


def _check_shape(shape) -> tuple[int, int]:
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (int(shape), int(shape))
    try:
        shape = tuple(shape)
    except TypeError:
        raise ForwardModelError(f"mask shape must be an int or a pair (H, W), got {shape!r}") from None
    if len(shape) != 2 or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape):
        raise ForwardModelError(f"mask shape must be a pair of integers (H, W), got {shape!r}")
    H, W = int(shape[0]), int(shape[1])
    if H < 1 or W < 2:
        raise ForwardModelError(f"mask shape must have H >= 1 and W >= 2, got {(H, W)}")
    return H, W


def cartesian_mask(shape, acceleration: float, center_fraction: float = 0.08, kind: str = "random",
                   seed: int | None = 0, *, dtype=None) -> torch.Tensor:
    """Cartesian undersampling mask of whole phase-encode columns, a float 0/1 tensor ``(H, W)``.

    Parameters
    ----------
    shape : int or (H, W)
        k-space size; an int means square.
    acceleration : float >= 1
        ``W / (number of sampled columns)``; 4 and 8 are the fastMRI settings.
    center_fraction : float in [0, 1)
        fraction of the ``W`` columns in the fully sampled centre band (fastMRI: 0.08 at 4x,
        0.04 at 8x); the band must fit into the ``round(W / acceleration)`` sampled columns.
    kind : "random", "equispaced" or "gaussian"
        how the columns outside the band are chosen (see the module docstring).
    seed : int or None
        seed of a private ``torch.Generator`` (None: 0); the global RNG is not touched.
    dtype : torch dtype of the result (default: torch's default dtype).

    Returns ``mask`` with ``mask[:, j] = 1`` on sampled columns and 0 elsewhere; the centre band is
    the columns ``W // 2 - n_c // 2, ..., W // 2 - n_c // 2 + n_c - 1``.

    Raises ``ValueError`` naming the problem for a bad shape, acceleration, centre fraction or kind.

    Reference: Zbontar et al., "fastMRI: An Open Dataset and Benchmarks for Accelerated MRI",
    arXiv:1811.08839 (2018), section 4.2.
    """
    H, W = _check_shape(shape)
    if kind not in MASK_KINDS:
        raise ForwardModelError(f"unknown mask kind {kind!r}; known: {', '.join(MASK_KINDS)}")
    try:
        acceleration = float(acceleration)
    except (TypeError, ValueError):
        raise ForwardModelError(f"acceleration must be a number >= 1, got {acceleration!r}") from None
    if not math.isfinite(acceleration) or acceleration < 1:
        raise ForwardModelError(f"acceleration must be a finite number >= 1, got {acceleration}")
    try:
        center_fraction = float(center_fraction)
    except (TypeError, ValueError):
        raise ForwardModelError(f"center_fraction must be a number in [0, 1), got {center_fraction!r}") from None
    if not (0 <= center_fraction < 1):
        raise ForwardModelError(f"center_fraction must be in [0, 1), got {center_fraction}")
    n_total = int(math.floor(W / acceleration + 0.5))
    if n_total < 1:
        raise ForwardModelError(f"acceleration {acceleration} is too high for W = {W}: no column would be sampled")
    n_center = int(math.floor(center_fraction * W + 0.5))
    if n_center > n_total:
        raise ForwardModelError(f"center_fraction {center_fraction} asks for {n_center} centre columns but "
                                f"acceleration {acceleration} allows only {n_total} of W = {W}; lower center_fraction")
    g = torch.Generator().manual_seed(0 if seed is None else int(seed))
    sampled = torch.zeros(W, dtype=torch.bool)
    start = W // 2 - n_center // 2
    sampled[start:start + n_center] = True
    outer = torch.nonzero(~sampled).flatten()  # sorted outer column indices
    k = n_total - n_center
    if k > 0:
        if kind == "random":
            pick = outer[torch.randperm(outer.numel(), generator=g)[:k]]
        elif kind == "equispaced":
            m = outer.numel()
            u = float(torch.rand((), generator=g, dtype=torch.float64))
            pos = torch.floor((torch.arange(k, dtype=torch.float64) + u) * (m / k)).long().clamp_(0, m - 1)
            pick = outer[pos]
        else:  # gaussian variable density
            d = (outer.to(torch.float64) - W / 2) / (_GAUSSIAN_WIDTH * W)
            weights = torch.exp(-0.5 * d**2)
            pick = outer[torch.multinomial(weights, k, replacement=False, generator=g)]
        sampled[pick] = True
    mask = sampled[None, :].expand(H, W).to(dtype if dtype is not None else torch.get_default_dtype())
    return mask.contiguous()


def realised_acceleration(mask: torch.Tensor) -> float:
    """``mask.numel() / mask.sum()``: the realised acceleration of a 0/1 k-space mask."""
    mask = torch.as_tensor(mask)
    measured = float(mask.sum())
    if measured <= 0:
        raise ForwardModelError("the mask samples nothing: its acceleration is infinite")
    return mask.numel() / measured
