"""Decoupled annealing posterior sampling (DAPS; Zhang, Chen, Zhu, Li, Zhang, Huang, Yue, Nie, Wu and Bouman,
"Improving diffusion inverse problem solving with decoupled noise annealing", CVPR 2025, Algorithm 1).

Annealing over noise levels ``sigma_0 = sigma_max > ... > sigma_{N-1} = sigma_min`` (EDM schedule), each step
decouples the particle from the previous level::

    x0_hat = Phi(x, sigma_i)                                  # probability-flow ODE to 0, K - 1 Euler steps
    x0     ~ p(y | x0) N(x0; x0_hat, r_i^2 I),  r_i = sigma_i  # the likelihood step (samplers.splitting)
    x      = x0 + sigma_{i+1} eps                            # re-noise to the next level

and returns ``x0`` of the last level. ``N(x0_hat, r_i^2 I)`` is the paper's Gaussian approximation of
``p(x0 | x_{sigma_i})``; the paper draws from the product with Langevin dynamics (its default), and for linear
models with Gaussian noise the draw is exact (:func:`samplers.splitting.gaussian_likelihood_step`), which we use
there (``likelihood_step="auto"``). No gradient is ever taken through the network; the Langevin step needs
gradients of the forward model only.

Defaults (CPU budget): ``N = 50`` levels, an ODE schedule of ``K = 5`` levels, i.e. 4 Euler steps (the paper: 200
levels, a 5-step ODE, 100 Langevin steps each). Cost per particle and level: ``K - 1`` NFE (1 at ``sigma_min``),
and one exact step (2 forward-model applications) or ``langevin_steps`` forward evaluations and gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from samplers.base import State
from samplers.errors import SamplerConfigError
from samplers.schedules import karras_sigmas
from samplers.splitting import SplittingSampler
from samplers.steps import probability_flow_x0
from samplers.validation import positive_float, positive_int

__all__ = ["DAPS", "DAPSState"]


@dataclass(kw_only=True)
class DAPSState(State):
    """:class:`~samplers.base.State` with the annealing levels, the likelihood step's kind and the data curvature
    (the Langevin step size; 0 for the exact step)."""

    sigmas: list[float]
    kind: str
    curvature: float


class DAPS(SplittingSampler):
    """Decoupled annealing posterior sampling (module docstring).

    Parameters
    ----------
    num_steps : number of annealing levels N
    ode_steps : levels of the ODE schedule that gives ``x0_hat`` at each level, ``sigma_i`` to 0 included
        (``ode_steps - 1`` Euler steps)
    likelihood_step : ``"auto"`` (exact for linear models with Gaussian noise, Langevin otherwise), ``"exact"``
        or ``"langevin"``
    langevin_steps : Langevin steps per level (Langevin only)
    step_scale : Langevin step as a fraction of ``1 / (L + 1 / r^2)`` (``L``: the data term's curvature)
    rho : EDM schedule exponent of the annealing levels
    sigma_min : the last annealing level, whose ``r = sigma_min`` sets how far the returned ``x0`` may leave
        ``x0_hat`` in the directions the data do not fix (``None``: the prior's ``sigma_min``; the paper uses 0.1
        for images in [-1, 1])

    Example::

        import torch
        from priors import GaussianPrior
        from forward_models import MatrixOperator, Gaussian, InverseProblem
        from samplers import DAPS
        prior = GaussianPrior(torch.zeros(4))
        problem = InverseProblem.simulate(MatrixOperator(torch.randn(2, 4, dtype=torch.float64)), Gaussian(0.1),
                                          torch.ones(4, dtype=torch.float64), seed=0)
        post = DAPS(num_steps=30).sample(problem, prior, 64, seed=0)
    """

    static_fields = ("sigmas",)

    def __init__(self, num_steps: int = 50, ode_steps: int = 5, likelihood_step: str = "auto",
                 langevin_steps: int = 20, step_scale: float = 0.5, rho: float = 7.0,
                 sigma_min: float | None = None):
        self.steps = positive_int(num_steps, "num_steps")
        self.ode_steps = positive_int(ode_steps, "ode_steps")
        self.set_likelihood_step(likelihood_step, langevin_steps, step_scale)
        self.rho = positive_float(rho, "rho")
        self.sigma_min = None if sigma_min is None else positive_float(sigma_min, "sigma_min")

    def num_steps(self) -> int:
        """One step per annealing level."""
        return self.steps

    def ode_euler_steps(self, sigma: float, prior) -> int:
        """Euler steps (= NFE) of the ODE to ``x0_hat`` at level ``sigma``: ``ode_steps - 1`` (the ODE schedule has
        ``ode_steps`` levels from ``sigma`` down to 0), and one (the denoiser) at ``sigma_min``."""
        return 1 if sigma <= prior.sigma_min * (1 + 1e-9) else max(self.ode_steps - 1, 1)

    def init(self, problem, prior, num_samples, generator) -> DAPSState:
        """Particles ``x ~ N(0, sigma_max^2 I)``; for the Langevin step, the data term's curvature at their
        denoised estimates (:func:`samplers.splitting.data_curvature`)."""
        sigma_min = prior.sigma_min if self.sigma_min is None else self.sigma_min
        if not sigma_min < prior.sigma_max:
            raise SamplerConfigError(f"DAPS: sigma_min={sigma_min:g} must be below the prior's sigma_max "
                                     f"{prior.sigma_max:g}")
        sigmas = karras_sigmas(self.steps, max(sigma_min, prior.sigma_min), prior.sigma_max, self.rho).tolist()
        x = sigmas[0] * torch.randn(num_samples, *prior.shape, generator=generator, dtype=prior.dtype,
                                    device=prior.device)
        kind, curvature, counters = self.start(problem, prior, x, sigmas[0])
        return DAPSState(x, 0, problem, prior, generator, counters=counters, sigmas=sigmas, kind=kind,
                         curvature=curvature)

    def step(self, state: DAPSState) -> DAPSState:
        """One annealing level: ODE to ``x0_hat``, likelihood step, re-noise."""
        s, s_next = state.sigmas[state.step], state.sigmas[state.step + 1]
        nfe = self.ode_euler_steps(s, state.prior)
        with torch.no_grad():
            x0_hat = probability_flow_x0(state.prior, state.x, s, nfe, self.rho)
        x0, cost = self.data_step(state, x0_hat, s, sample=True)
        x = x0 if s_next <= 0 else x0 + s_next * torch.randn(x0.shape, dtype=x0.dtype, device=x0.device,
                                                             generator=state.generator)
        n = len(x)
        return self.advance(state, x=x, nfe=n * nfe, forward_evals=n * cost["forward_evals"],
                            grad_evals=n * cost["grad_evals"])
