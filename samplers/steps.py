"""Building blocks shared by diffusion samplers: the ancestral (DDPM) step and the DPS-type
likelihood gradient, both written in sigma space.

Ancestral step (Ho et al. 2020, the DDPM posterior ``q(x_{t-1} | x_t, x0)`` rewritten for
``x_sigma = x0 + sigma eps``): from noise level ``s`` to ``s' < s``,

    x_{s'} ~ N(x0_hat + (s'^2 / s^2)(x_s - x0_hat),  s'^2 (1 - s'^2 / s^2) I).

Likelihood gradient (Chung et al., ICLR 2023): ``grad_x ||y - F(to_physical(D(x, s)))||`` through
the denoiser, with the noise model's residual norm.
"""

from __future__ import annotations

import torch

from samplers.errors import SamplerError

__all__ = ["ancestral_step", "denoise_with_misfit_gradient", "sigma_batch"]


def sigma_batch(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A scalar noise level broadcast to ``(B,)`` in ``x``'s dtype and device."""
    return torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(()).expand(x.shape[0])


def ancestral_step(x: torch.Tensor, x0_hat: torch.Tensor, sigma: float, sigma_next: float,
                   generator: torch.Generator | None) -> torch.Tensor:
    """One DDPM ancestral step from ``sigma`` to ``sigma_next`` (module docstring)."""
    ratio = (sigma_next / sigma) ** 2
    mean = x0_hat + ratio * (x - x0_hat)
    if sigma_next <= 0:
        return mean
    std = sigma_next * (1.0 - ratio) ** 0.5
    z = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
    return mean + std * z


def denoise_with_misfit_gradient(problem, prior, x: torch.Tensor, sigma: float):
    """Return ``(x0_hat, grad_x ||y - F(x0_hat)||, ||y - F(x0_hat)||)`` for a batch ``x`` at level ``sigma``.

    The gradient flows through the denoiser and the forward model (one VJP per sample).
    """
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        x0 = prior.denoise(xg, sigma_batch(sigma, xg))
        if not bool(torch.isfinite(x0).all()):
            raise SamplerError(f"the prior's denoiser returned non-finite values at sigma = {float(sigma):.4g} "
                               "(the particles have diverged: reduce the step size or guidance scale)")
        norm = problem.residual_norm(prior.to_physical(x0))
        (grad,) = torch.autograd.grad(norm.sum(), xg)
    if not bool(torch.isfinite(grad).all()):
        raise SamplerError(f"the likelihood gradient is NaN or Inf at sigma = {float(sigma):.4g} "
                           "(the forward model or its adjoint overflowed: reduce the step size or guidance scale)")
    return x0.detach(), grad, norm.detach()
