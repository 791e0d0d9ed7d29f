"""Diffusion posterior sampling (DPS; Chung, Kim, McCann, Klasky and Ye, ICLR 2023).

Per step, from noise level ``s`` to ``s'`` (Algorithm 1 of the paper, in sigma space)::

    x0_hat = D(x, s)
    x'     = ancestral_step(x, x0_hat, s, s')               # ordinary reverse step
    x      = x' - zeta_s * grad_x ||y - F(x0_hat(x))||       # gradient of the norm, not its square

The paper runs in VP coordinates ``x_t = sqrt(abar_t) x_sigma`` with ``abar = 1 / (1 + sigma^2)``;
its update ``x_{t-1} -= zeta grad_{x_t}`` becomes, in sigma space,
``zeta_s = zeta * sqrt((1 + s^2)(1 + s'^2))``, so ``zeta`` keeps the paper's meaning (0.3-1.0 on
images). Noise levels follow the EDM schedule (:func:`samplers.schedules.karras_sigmas`) instead
of the DDPM linear-beta grid. Cost per step: one NFE and one VJP per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from samplers.base import Sampler, State
from samplers.schedules import karras_sigmas
from samplers.steps import ancestral_step, denoise_with_misfit_gradient
from samplers.validation import non_negative_float, positive_float, positive_int

__all__ = ["DPS", "DPSState"]


@dataclass(kw_only=True)
class DPSState(State):
    """:class:`~samplers.base.State` with the noise schedule ``sigma_0 > ... > sigma_N = 0``."""

    sigmas: list[float]


class DPS(Sampler):
    """Diffusion posterior sampling: ancestral steps plus a gradient step on the data misfit norm.

    Parameters
    ----------
    num_steps : number of reverse steps (paper: 1000)
    zeta : guidance scale in the paper's VP units
    rho : EDM schedule exponent

    Example::

        import torch
        from priors import GaussianPrior
        from forward_models import MatrixOperator, Gaussian, InverseProblem
        from samplers import DPS
        prior = GaussianPrior(torch.zeros(4))
        problem = InverseProblem.simulate(MatrixOperator(torch.randn(2, 4, dtype=torch.float64)), Gaussian(0.1),
                                          torch.ones(4, dtype=torch.float64), seed=0)
        post = DPS(num_steps=50, zeta=0.5).sample(problem, prior, 64, seed=0)
        post.mean()
    """

    needs_gradient = True
    static_fields = ("sigmas",)

    def __init__(self, num_steps: int = 100, zeta: float = 1.0, rho: float = 7.0):
        self.steps = positive_int(num_steps, "num_steps")
        self.zeta = non_negative_float(zeta, "zeta")
        self.rho = positive_float(rho, "rho")

    def num_steps(self) -> int:
        """One step per noise level."""
        return self.steps

    def init(self, problem, prior, num_samples, generator) -> DPSState:
        """Particles ``x ~ N(0, sigma_max^2 I)``."""
        sigmas = karras_sigmas(self.steps, prior.sigma_min, prior.sigma_max, self.rho).tolist()
        x = sigmas[0] * torch.randn(num_samples, *prior.shape, generator=generator,
                                    dtype=prior.dtype, device=prior.device)
        return DPSState(x, 0, problem, prior, generator, sigmas=sigmas)

    def guidance_scale(self, s: float, s_next: float) -> float:
        """``zeta`` converted from VP to sigma-space units (module docstring)."""
        return self.zeta * ((1.0 + s**2) * (1.0 + s_next**2)) ** 0.5

    def step(self, state: DPSState) -> DPSState:
        """One DPS update."""
        s, s_next = state.sigmas[state.step], state.sigmas[state.step + 1]
        x0, grad, _ = denoise_with_misfit_gradient(state.problem, state.prior, state.x, s)
        x = ancestral_step(state.x, x0, s, s_next, state.generator) - self.guidance_scale(s, s_next) * grad
        n = len(x)
        return self.advance(state, x=x, nfe=n, forward_evals=n, grad_evals=n)
