"""Seeded Gaussian random fields by spectral synthesis (the FNO / InverseBench input distributions).

A mean-zero Gaussian field on the square ``[0, L]^2`` with covariance operator

    C = sigma^2 (-Lap + tau^2 I)^(-alpha)

(a Matern-type field: smoothness ``alpha - 1`` in 2-D, correlation length ~ ``1 / tau``; Lindgren,
Rue & Lindstroem 2011) is, on the periodic square, ``u(x) = sum_k sqrt(mu_k) xi_k e_k(x)`` with
``e_k(x) = exp(2 pi i k . x / L) / L`` and eigenvalues ``mu_k = sigma^2 ((2 pi / L)^2 |k|^2 + tau^2)^(-alpha)``.
Sampling it on an ``s x s`` grid: ``u = IDFT(sqrt(lambda) DFT(xi))`` with ``xi`` white noise and
``lambda_k = mu_k s^2 / L^2``, exact for the modes the grid carries (pointwise variance
``sum_k mu_k / L^2``). As in the FNO data (Li et al., ICLR 2021) the constant mode ``k = 0`` is left
out (zero spatial mean) and ``sigma`` defaults to ``tau^(alpha - 1)`` (FNO's ``tau^((2 alpha - d) / 2)``, d = 2).

Non-periodic fields (``periodic=False``) are the upper-left quarter of a periodic field on ``[0, 2L]^2``:
the same local covariance, without the wrap-around correlation.
"""

from __future__ import annotations

import math

import torch

from forward_models.errors import ForwardModelError

__all__ = ["matern_spectrum", "gaussian_random_field", "initial_vorticity", "two_phase_permeability"]


def _check(name: str, value, positive: bool = True) -> float:
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        raise ForwardModelError(f"{name} must be positive and finite, got {value}")
    return value


def matern_spectrum(size: int, *, alpha: float = 2.0, tau: float = 3.0, sigma: float | None = None,
                    length: float = 1.0) -> torch.Tensor:
    """Eigenvalues ``mu_k = sigma^2 ((2 pi / L)^2 |k|^2 + tau^2)^(-alpha)`` on the ``size x size`` DFT grid (float64).

    Entry ``[i, j]`` belongs to the integer wavenumber ``(k_1, k_2) = (fftfreq(size) * size)[i, j]``;
    the ``k = 0`` entry is set to 0 (zero-mean fields). The pointwise variance of
    :func:`gaussian_random_field` is ``mu.sum() / length^2``.

    Example::

        from forward_models.generators.grf import matern_spectrum
        mu = matern_spectrum(64, alpha=2.0, tau=3.0)
        variance = float(mu.sum())             # on the unit square
    """
    size = int(size)
    if size < 2:
        raise ForwardModelError(f"the grid size must be at least 2, got {size}")
    alpha, tau, length = _check("alpha", alpha), _check("tau", tau), _check("length", length)
    sigma = tau ** (alpha - 1.0) if sigma is None else _check("sigma", sigma)
    k = torch.fft.fftfreq(size, 1.0 / size, dtype=torch.float64)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    mu = sigma**2 * ((2 * math.pi / length) ** 2 * k2 + tau**2) ** (-alpha)
    mu[0, 0] = 0.0
    return mu


def gaussian_random_field(n: int, size: int, *, alpha: float = 2.0, tau: float = 3.0, sigma: float | None = None,
                          length: float = 1.0, seed: int = 0, periodic: bool = True,
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` seeded Gaussian fields with covariance ``sigma^2 (-Lap + tau^2)^(-alpha)`` -> ``(n, 1, size, size)``.

    Grid points ``[i, j]`` at ``(i, j) * length / size`` on ``[0, length]^2``. Defaults are the FNO
    Darcy-flow field (alpha = 2, tau = 3 on the unit square). Computed in float64 from a CPU
    ``torch.Generator`` seeded with ``seed`` (identical on every machine), then cast to ``dtype``.

    Example::

        from forward_models.generators.grf import gaussian_random_field
        x = gaussian_random_field(8, 64, alpha=2.0, tau=3.0, seed=0)    # (8, 1, 64, 64)
    """
    n, size = int(n), int(size)
    if n < 1:
        raise ForwardModelError(f"the number of fields must be at least 1, got {n}")
    if size < 2:
        raise ForwardModelError(f"the grid size must be at least 2, got {size}")
    length = _check("length", length)
    grid, side = (size, length) if periodic else (2 * size, 2 * length)
    mu = matern_spectrum(grid, alpha=alpha, tau=tau, sigma=sigma, length=side)
    sqrt_lam = (mu * grid**2 / side**2).sqrt()[:, : grid // 2 + 1]
    g = torch.Generator().manual_seed(int(seed))
    xi = torch.randn(n, grid, grid, generator=g, dtype=torch.float64)
    u = torch.fft.irfft2(sqrt_lam * torch.fft.rfft2(xi), s=(grid, grid))
    return u[:, None, :size, :size].to(dtype).contiguous()


def initial_vorticity(n: int, size: int = 64, *, seed: int = 0, alpha: float = 2.5, tau: float = 7.0,
                      sigma: float | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Initial vorticities on the periodic ``[0, 2 pi]^2`` (PINO / InverseBench style) -> ``(n, 1, size, size)``.

    A periodic Gaussian field with covariance ``sigma^2 (-Lap + tau^2)^(-alpha)``, alpha = 2.5, tau = 7
    (the PINO Kolmogorov-flow initial condition, Li et al. 2021); ``sigma`` defaults to
    ``2 pi tau^(alpha - 1)``, a pointwise standard deviation of ~1.5. Zero mean, as a vorticity on the
    torus must be. Evolve it with :func:`forward_models.generators.vorticity.navier_stokes_snapshots`.

    Example::

        from forward_models.generators.grf import initial_vorticity
        w0 = initial_vorticity(4, 64, seed=1)        # (4, 1, 64, 64)
    """
    tau = _check("tau", tau)
    sigma = 2 * math.pi * tau ** (float(alpha) - 1.0) if sigma is None else sigma
    return gaussian_random_field(n, size, alpha=alpha, tau=tau, sigma=sigma, length=2 * math.pi, seed=seed,
                                 periodic=True, dtype=dtype)


def two_phase_permeability(n: int, size: int = 64, *, seed: int = 0, high: float = 12.0, low: float = 3.0,
                           alpha: float = 2.0, tau: float = 3.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """FNO Darcy coefficients: ``a = high`` where a Gaussian field is positive, else ``low`` -> ``(n, 1, size, size)``.

    The field is :func:`gaussian_random_field` (alpha = 2, tau = 3, non-periodic, unit square), as in
    Li et al. (ICLR 2021), with a = 12 / 3. The field itself is the ``x`` that
    :class:`forward_models.darcy.DarcyFlow` with ``coefficient="threshold"`` maps to this ``a``.

    Example::

        from forward_models.generators.grf import two_phase_permeability
        a = two_phase_permeability(4, 64, seed=0)    # values in {3, 12}
    """
    high, low = _check("high", high), _check("low", low)
    x = gaussian_random_field(n, size, alpha=alpha, tau=tau, seed=seed, periodic=False, dtype=torch.float64)
    return torch.where(x > 0, high, low).to(dtype)
