"""Building blocks shared by diffusion samplers: the ancestral (DDPM) step and the DPS-type
likelihood gradient, both written in sigma space.

Ancestral step (Ho et al. 2020, the DDPM posterior ``q(x_{t-1} | x_t, x0)`` rewritten for
``x_sigma = x0 + sigma eps``): from noise level ``s`` to ``s' < s``,

    x_{s'} ~ N(x0_hat + (s'^2 / s^2)(x_s - x0_hat),  s'^2 (1 - s'^2 / s^2) I).

The ancestral variance treats ``x0`` as known (``x0 = x0_hat``). The exact reverse transition of
the prior's diffusion adds ``(1 - s'^2/s^2)^2 Cov(x0 | x_s)``; :func:`analytic_variance` adds its
isotropic average (Bao, Li, Zhu and Zhang, "Analytic-DPM", ICLR 2022), estimated from the particles
themselves through Tweedie's identity ``E tr Cov(x0 | x_s) = d s^2 - E ||x_s - D(x_s, s)||^2``.

Likelihood gradient (Chung et al., ICLR 2023): ``grad_x ||y - F(to_physical(D(x, s)))||`` through
the denoiser, with the noise model's residual norm.
"""

from __future__ import annotations

import torch

from forward_models.noise import Gaussian
from samplers.errors import SamplerError
from samplers.schedules import karras_sigmas

__all__ = ["analytic_variance", "ancestral_step", "ancestral_variance", "denoise_with_misfit_gradient", "sigma_batch",
           "batched", "denoise_batched", "probability_flow_step", "probability_flow_x0", "whitened_residuals"]


def sigma_batch(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A scalar noise level broadcast to ``(B,)`` in ``x``'s dtype and device."""
    return torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(()).expand(x.shape[0])


def ancestral_variance(sigma: float, sigma_next: float) -> float:
    """The DDPM posterior variance ``s'^2 (1 - s'^2 / s^2)`` of the ancestral step (module docstring)."""
    return float(sigma_next) ** 2 * (1.0 - (float(sigma_next) / float(sigma)) ** 2)


def analytic_variance(x: torch.Tensor, x0_hat: torch.Tensor, sigma: float, sigma_next: float,
                      log_weights: torch.Tensor | None = None) -> float:
    """Reverse-kernel variance with the denoiser's posterior covariance (Analytic-DPM, Bao et al. 2022).

    ``v = s'^2 (1 - r) + (1 - r)^2 Gamma``, ``r = s'^2 / s^2``, where
    ``Gamma = E tr Cov(x0 | x_s) / d = s^2 - E ||x - x0_hat||^2 / d`` (Tweedie's identity, module
    docstring), estimated over the (weighted) particles ``x`` with their denoised ``x0_hat`` and
    clipped to ``[0, s^2]`` (so ``v`` lies between the ancestral variance and ``s^2 - s'^2``).

    For a prior whose components are ``N(m, c I)`` the kernel is then exact within a component:
    ``Cov(x0 | x_s) = c s^2 / (c + s^2)`` and ``v = (s^2 - s'^2)(c + s'^2) / (c + s^2)``, while the
    ancestral variance alone under-disperses every step by ``s'^2 (c + s^2) / (s^2 (c + s'^2))``.
    The estimate is one scalar per step (no extra network call); a heteroscedastic prior gets the average.
    """
    v0 = ancestral_variance(sigma, sigma_next)
    if sigma_next <= 0:
        return 0.0
    n = x.shape[0]
    d = x[0].numel()
    sq = ((x - x0_hat).reshape(n, -1).to(torch.float64) ** 2).sum(1) / d
    if log_weights is None:
        msq = float(sq.mean())
    else:
        msq = float((torch.softmax(log_weights.to(torch.float64).to(sq.device), 0) * sq).sum())
    s2 = float(sigma) ** 2
    gamma = min(max(s2 - msq, 0.0), s2)
    r = (float(sigma_next) / float(sigma)) ** 2
    return v0 + (1.0 - r) ** 2 * gamma


def ancestral_step(x: torch.Tensor, x0_hat: torch.Tensor, sigma: float, sigma_next: float,
                   generator: torch.Generator | None, variance: float | None = None) -> torch.Tensor:
    """One DDPM ancestral step from ``sigma`` to ``sigma_next`` (module docstring); ``variance``
    replaces the ancestral variance (e.g. :func:`analytic_variance`)."""
    ratio = (sigma_next / sigma) ** 2
    mean = x0_hat + ratio * (x - x0_hat)
    if sigma_next <= 0:
        return mean
    std = (ancestral_variance(sigma, sigma_next) if variance is None else float(variance)) ** 0.5
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


def batched(fn, x: torch.Tensor, batch_size: int | None) -> torch.Tensor:
    """``fn`` applied to ``x`` in chunks of ``batch_size`` along the first axis (all at once when None)."""
    if batch_size is None or len(x) <= batch_size:
        return fn(x)
    return torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def denoise_batched(prior, x: torch.Tensor, sigma: float, batch_size: int | None = None) -> torch.Tensor:
    """``D(x, sigma)`` for a batch at one noise level, in chunks; non-finite outputs raise :class:`SamplerError`.

    Without gradients (no autograd graph through the network, whose activations would otherwise be kept): samplers
    that differentiate through the denoiser (DPS, MCG, TDS) call ``prior.denoise`` themselves."""
    with torch.no_grad():
        out = batched(lambda xb: prior.denoise(xb, sigma_batch(sigma, xb)), x, batch_size)
    if not bool(torch.isfinite(out).all()):
        raise SamplerError(f"the prior's denoiser returned non-finite values at sigma = {float(sigma):.4g} "
                           "(the particles have diverged: reduce the guidance scale)")
    return out


def probability_flow_step(prior, x: torch.Tensor, sigma: float, sigma_next: float, solver: str = "euler",
                          batch_size: int | None = None) -> tuple[torch.Tensor, int]:
    """One step of the probability-flow ODE ``dx/dsigma = (x - D(x, sigma)) / sigma`` from ``sigma`` to ``sigma_next``.

    Euler: ``x + (sigma' - sigma) d(x, sigma)``; Heun (Karras et al. 2022, Algorithm 1): the average of
    the slopes at both ends, except when ``sigma_next = 0`` (Euler, which returns ``D(x, sigma)``).
    Returns ``(x_next, nfe_per_particle)``.
    """
    d = (x - denoise_batched(prior, x, sigma, batch_size)) / sigma
    x_euler = x + (sigma_next - sigma) * d
    if solver == "euler" or sigma_next <= 0:
        return x_euler, 1
    d2 = (x_euler - denoise_batched(prior, x_euler, sigma_next, batch_size)) / sigma_next
    return x + (sigma_next - sigma) * 0.5 * (d + d2), 2


def probability_flow_x0(prior, x: torch.Tensor, sigma: float, num_steps: int, rho: float = 7.0,
                        batch_size: int | None = None) -> torch.Tensor:
    """``Phi(x, sigma)``: ``num_steps`` Euler steps of the probability-flow ODE (``num_steps`` NFE) down an EDM
    schedule from ``sigma`` to ``prior.sigma_min`` and then to 0 (EnKG's and DAPS's clean-image predictor). One step,
    or ``sigma`` already at ``sigma_min``, is the plain denoiser ``D(x, sigma)``."""
    if num_steps <= 1 or sigma <= prior.sigma_min * (1 + 1e-9):
        return denoise_batched(prior, x, sigma, batch_size)
    sig = karras_sigmas(num_steps, prior.sigma_min, sigma, rho).tolist()
    for s, s_next in zip(sig[:-1], sig[1:], strict=True):
        x, _ = probability_flow_step(prior, x, s, s_next, "euler", batch_size)
    return x


def whitened_residuals(problem, y_clean: torch.Tensor) -> torch.Tensor:
    """``Gamma^{-1/2} (F(x) - y)`` flattened to ``(B, m)`` in float64 (``Gamma = sigma_y^2 I`` for Gaussian noise;
    the plain residual for other noise models).

    Raises :class:`SamplerError` when the forward model returned NaN or Inf (an unstable simulator, e.g. a
    time step too large for some particle): one such particle would poison the whole ensemble's update.
    """
    r = (y_clean - problem.y.to(y_clean)[None]).reshape(len(y_clean), -1).to(torch.float64)
    bad = int((~torch.isfinite(r).all(1)).sum())
    if bad:
        raise SamplerError(f"the forward model {type(problem.forward_model).__name__} returned NaN or Inf for {bad} of "
                           f"{len(r)} particles (an unstable simulator? reduce its time step)")
    return r / problem.noise.sigma if isinstance(problem.noise, Gaussian) else r
