"""Denoising diffusion models for plug-and-play image restoration (DiffPIR; Zhu, Zhang, Liang, Cao, Wen, Timofte and
Van Gool, CVPR 2023 workshops, Algorithm 1), in sigma space.

Half-quadratic splitting along the reverse diffusion: from noise level ``s`` to ``s' < s``::

    x0_hat  = D(x, s)                                                           # prior step (denoiser)
    x0_data = argmin_u  -log p(y | u) + lambda ||u - x0_hat||^2 / (2 s^2)       # data proximal step
    eps_hat = (x - x0_data) / s                                                 # the noise this x0 implies
    x       = x0_data + s' (sqrt(1 - zeta) eps_hat + sqrt(zeta) eps)             # back to level s'

The paper's ``rho_t = lambda sigma_n^2 / sigma_bar_t^2`` with ``sigma_bar_t = sqrt((1 - abar_t) / abar_t)`` is our
``s``: its subproblem ``||y - H u||^2 + rho_t ||u - x0_hat||^2`` is the one above for Gaussian noise. The proximal
step is the mode of :mod:`samplers.splitting`'s (1) with ``rho = s / sqrt(lambda)``: exact (a damped
pseudo-inverse) for linear models with Gaussian noise, ``langevin_steps`` gradient-descent steps otherwise.
The last step (``s' = 0``) returns ``x0_data``. ``zeta = 0`` is deterministic (DDIM-like); ``zeta = 1`` re-noises
afresh. Defaults ``lambda = 1``, ``zeta = 0.3``: ``lambda`` from {1, 7} and ``zeta`` from {0.1, 0.3} on held-out
phantoms (BENCHMARKS.md; the paper and deepinv use ``lambda = 7``).

Cost per step and particle: 1 NFE and one exact step (2 forward-model applications) or ``langevin_steps``
forward evaluations and gradients; no gradient through the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from samplers.base import State
from samplers.schedules import karras_sigmas
from samplers.splitting import SplittingSampler
from samplers.steps import denoise_batched
from samplers.validation import fraction_in, positive_float, positive_int

__all__ = ["DiffPIR", "DiffPIRState"]


@dataclass(kw_only=True)
class DiffPIRState(State):
    """:class:`~samplers.base.State` with the noise schedule, the data step's kind and the data curvature."""

    sigmas: list[float]
    kind: str
    curvature: float


class DiffPIR(SplittingSampler):
    """Plug-and-play restoration by half-quadratic splitting along the reverse diffusion (module docstring).

    Parameters
    ----------
    num_steps : reverse steps (the paper: 100)
    lam : weight ``lambda`` of the anchor in the data proximal step
    zeta : fraction of fresh noise in each re-noising
    likelihood_step : ``"auto"``, ``"exact"`` or ``"langevin"`` (gradient descent to the proximal point)
    langevin_steps, step_scale : the gradient steps of the non-linear data step
    rho : EDM schedule exponent

    Example::

        import torch
        from priors import GaussianPrior
        from forward_models import Inpainting, Gaussian, InverseProblem
        from samplers import DiffPIR
        prior = GaussianPrior(torch.zeros(1, 4, 4))
        problem = InverseProblem.simulate(Inpainting(torch.ones(1, 4, 4)), Gaussian(0.05),
                                          torch.ones(1, 4, 4, dtype=torch.float64), seed=0)
        post = DiffPIR(num_steps=30).sample(problem, prior, 16, seed=0)
    """

    static_fields = ("sigmas",)

    def __init__(self, num_steps: int = 100, lam: float = 1.0, zeta: float = 0.3, likelihood_step: str = "auto",
                 langevin_steps: int = 20, step_scale: float = 0.5, rho: float = 7.0):
        self.steps = positive_int(num_steps, "num_steps")
        self.lam = positive_float(lam, "lam")
        self.zeta = fraction_in(zeta, "zeta")
        self.set_likelihood_step(likelihood_step, langevin_steps, step_scale)
        self.rho = positive_float(rho, "rho")

    def num_steps(self) -> int:
        """One step per noise level."""
        return self.steps

    def init(self, problem, prior, num_samples, generator) -> DiffPIRState:
        """Particles ``x ~ N(0, sigma_max^2 I)``; for the gradient data step, the data term's curvature."""
        sigmas = karras_sigmas(self.steps, prior.sigma_min, prior.sigma_max, self.rho).tolist()
        x = sigmas[0] * torch.randn(num_samples, *prior.shape, generator=generator, dtype=prior.dtype,
                                    device=prior.device)
        kind, curvature, counters = self.start(problem, prior, x, sigmas[0])
        return DiffPIRState(x, 0, problem, prior, generator, counters=counters, sigmas=sigmas, kind=kind,
                            curvature=curvature)

    def step(self, state: DiffPIRState) -> DiffPIRState:
        """One DiffPIR update: denoise, data proximal step, re-noise."""
        s, s_next = state.sigmas[state.step], state.sigmas[state.step + 1]
        x0_hat = denoise_batched(state.prior, state.x, s)
        x0, cost = self.data_step(state, x0_hat, s / math.sqrt(self.lam), sample=False)
        if s_next > 0:
            eps_hat = (state.x - x0) / s
            eps = torch.randn(x0.shape, dtype=x0.dtype, device=x0.device, generator=state.generator)
            x = x0 + s_next * (math.sqrt(1.0 - self.zeta) * eps_hat + math.sqrt(self.zeta) * eps)
        else:
            x = x0
        n = len(x)
        return self.advance(state, x=x, nfe=n, forward_evals=n * cost["forward_evals"],
                            grad_evals=n * cost["grad_evals"])
