"""Denoising diffusion restoration models (DDRM; Kawar, Elad, Ermon and Song, NeurIPS 2022, eq. 7-8).

For a linear model with Gaussian noise ``y = A x + b + sigma_y e`` and its singular basis ``A = U diag(s) Vh``
(:class:`samplers.smc.linear_gaussian.LinearGaussian`, in the prior's model space), write ``z = Vh x`` and
``y_bar_i = (U^T (y - b))_i / s_i``, a measurement of ``z_i`` with noise ``nu_i = sigma_y / s_i``. From level ``s`` to
``s' < s``, with ``x0 = D(x, s)`` and ``z0 = Vh x0``, DDRM's variational reverse step is, per coordinate:

- unobserved directions (the complement of ``Vh``'s rows): ``x0 + sqrt(1 - eta^2) (s' / s)(x - x0) + eta s' eps``;
- observed, ``s' < nu_i``: ``z0_i + sqrt(1 - eta^2) s' (y_bar_i - z0_i) / nu_i + eta s' eps_i``;
- observed, ``s' >= nu_i``: ``(1 - eta_b) z0_i + eta_b y_bar_i + sqrt(s'^2 - eta_b^2 nu_i^2) eps_i``.

The paper works in the same variance-exploding sigma space (its eq. 7), so no conversion is needed. Defaults as
the paper: ``eta = 0.85``, ``eta_b = 1``; 20 steps in the paper, 50 here. Particles start at ``N(0, sigma_max^2 I)``.
DDRM is a fast approximate sampler (its reverse kernel is not the exact posterior transition). Cost per step and
particle: 1 NFE and a projection on the singular basis (counted as one forward evaluation); the decomposition is
computed once per operator and prior and cached. Needs a linear model with Gaussian noise, and the singular basis
(the structured, dense or truncated bases of :class:`~samplers.smc.linear_gaussian.LinearGaussian`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from samplers.base import Sampler, State
from samplers.schedules import karras_sigmas
from samplers.smc.linear_gaussian import LinearGaussian
from samplers.steps import denoise_batched
from samplers.validation import fraction_in, positive_float, positive_int

__all__ = ["DDRM", "DDRMState"]


@dataclass(kw_only=True)
class DDRMState(State):
    """:class:`~samplers.base.State` with the noise schedule and the operator's singular basis."""

    sigmas: list[float]
    lg: LinearGaussian


class DDRM(Sampler):
    """Denoising diffusion restoration models (module docstring).

    Parameters
    ----------
    num_steps : reverse steps
    eta : stochasticity of the unobserved and weakly observed directions (0: deterministic)
    eta_b : weight of the measurement in the strongly observed directions
    rho : EDM schedule exponent

    Example::

        import torch
        from priors import GaussianPrior
        from forward_models import MatrixOperator, Gaussian, InverseProblem
        from samplers import DDRM
        prior = GaussianPrior(torch.zeros(4))
        problem = InverseProblem.simulate(MatrixOperator(torch.randn(2, 4, dtype=torch.float64)), Gaussian(0.1),
                                          torch.ones(4, dtype=torch.float64), seed=0)
        post = DDRM(num_steps=30).sample(problem, prior, 64, seed=0)
    """

    needs_linear = True
    static_fields = ("sigmas", "lg")

    def __init__(self, num_steps: int = 50, eta: float = 0.85, eta_b: float = 1.0, rho: float = 7.0):
        self.steps = positive_int(num_steps, "num_steps")
        self.eta = fraction_in(eta, "eta")
        self.eta_b = fraction_in(eta_b, "eta_b", closed="right")
        self.rho = positive_float(rho, "rho")

    def num_steps(self) -> int:
        """One step per noise level."""
        return self.steps

    def check(self, problem, prior) -> None:
        """A linear model with Gaussian noise (the singular basis is built in :meth:`init`)."""
        super().check(problem, prior)
        LinearGaussian.check_problem(problem, type(self).__name__)

    def init(self, problem, prior, num_samples, generator) -> DDRMState:
        """The operator's singular basis, and particles ``x ~ N(0, sigma_max^2 I)``."""
        lg = LinearGaussian.from_problem(problem, prior, type(self).__name__)
        sigmas = karras_sigmas(self.steps, prior.sigma_min, prior.sigma_max, self.rho).tolist()
        x = sigmas[0] * torch.randn(num_samples, *prior.shape, generator=generator, dtype=prior.dtype,
                                    device=prior.device)
        return DDRMState(x, 0, problem, prior, generator, sigmas=sigmas, lg=lg)

    def step(self, state: DDRMState) -> DDRMState:
        """One DDRM reverse step (module docstring)."""
        s, s_next = state.sigmas[state.step], state.sigmas[state.step + 1]
        lg, x, g = state.lg, state.x, state.generator
        x0 = denoise_batched(state.prior, x, s)
        c = math.sqrt(1.0 - self.eta**2)
        noise = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=g)
        u = x0 + c * (s_next / s) * (x - x0) + self.eta * s_next * noise
        z0 = lg.project(x0)
        y_bar = lg.y_bar / lg.s
        nu = lg.sigma_y / lg.s
        eps = torch.randn(z0.shape, dtype=z0.dtype, device=z0.device, generator=g)
        weak = s_next < nu
        safe_nu = torch.where(weak, nu, torch.ones_like(nu))
        z_weak = z0 + c * s_next * (y_bar - z0) / safe_nu + self.eta * s_next * eps
        var_strong = (s_next**2 - self.eta_b**2 * nu**2).clamp_min(0.0)
        z_strong = (1.0 - self.eta_b) * z0 + self.eta_b * y_bar + var_strong.sqrt() * eps
        z = torch.where(weak, z_weak, z_strong)
        flat = u.reshape(len(u), -1)
        flat = flat + lg.lift(z - lg.project(u))
        n = len(x)
        return self.advance(state, x=flat.reshape(x.shape), nfe=n, forward_evals=n)

    def finalize(self, state: DDRMState):
        """The posterior, with the singular basis's record in its diagnostics
        (:meth:`~samplers.smc.linear_gaussian.LinearGaussian.diagnostics`)."""
        post = super().finalize(state)
        post.diagnostics = {**post.diagnostics, **state.lg.diagnostics()}
        return post
