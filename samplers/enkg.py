"""Ensemble Kalman diffusion guidance (EnKG; Zheng, Zhang, Hu, Yue and Stuart 2024, "Ensemble Kalman
diffusion guidance: a derivative-free method for inverse problems", arXiv 2409.20175, Algorithm 1).

``J`` particles follow the probability-flow ODE ``dx/dsigma = (x - D(x, sigma)) / sigma`` (Karras et
al. 2022, eq. 4) down the EDM schedule ``sigma_0 = sigma_max > ... > sigma_{N-1} = sigma_min > sigma_N = 0``.
At a guided step ``i`` (a window of the schedule), ``num_updates`` times::

    x0_hat_j = Phi(x_j, sigma_i)                                 # short ODE solve to sigma = 0
    G_j      = Gamma^{-1/2} F(to_physical(x0_hat_j))             # whitened forward model, j = 1..J
    C_jk     = <G_j - Gamma^{-1/2} y,  G_k - mean_l G_l> / J     # J x J ensemble coefficients
    x_j     <- x_j - (gamma_i / ||C||_F) sum_k C_jk (x_k - mean_l x_l)

then the ordinary ODE step from ``sigma_i`` to ``sigma_{i+1}``. The update is the ensemble-Kalman
(statistical-linearisation) form of a preconditioned gradient step on ``||G(x0_hat(x)) - y||^2 / 2``:
``sum_k C_jk (x_k - x_bar) = Cov(x, G) (G_j - y)`` replaces ``Cov(x, x) J^T (G_j - y)``, so no derivative
of the forward model or of the network is ever taken (Kovachki and Stuart 2019; Schillings and Stuart 2017).

Choices, each as the authors' code runs them unless said otherwise:

- ``Phi``: ``K_i = min(1 + (N - i) // x0_steps_divisor, max_x0_steps)`` Euler steps (defaults 4 and 20) on
  an EDM schedule from ``sigma_i`` to ``sigma_min`` and then to 0; one step is the plain denoiser
  ``D(x, sigma_i)``, as at the last level ``sigma_{N-1} = sigma_min`` (``K_{N-1} = 1``).
- Guided window: steps ``i`` with ``a N <= i < b N`` for ``guidance_window = (a, b)``, default
  ``(0.05, 0.95)``, the middle 90% (InverseBench's setting; 72 of 80 steps).
- Step size: ``gamma_i = gamma (r + (1 - r)(N - i) / N)`` with ``r = gamma_final_ratio`` in (0, 1]: the
  default ``r = 1`` keeps ``gamma`` constant; ``r < 1`` decays it linearly towards ``r gamma``. (The
  authors' code writes ``gamma (1 - r)(N - i) / N + r``, which is the constant 1 for their default r = 1;
  we scale the whole expression by ``gamma``.) Dividing by ``||C||_F`` makes the step scale-free.
- Whitening: with ``Gaussian(sigma_y)`` noise ``Gamma = sigma_y^2 I``, so the whitening multiplies ``C`` by
  ``1 / sigma_y^2``, which the ``||C||_F`` normalisation cancels: the iterates are those of the
  unwhitened residual, blind to the noise level. Other noise models use the plain residual ``F(x0_hat) - y``.
- ``gain="kalman"`` (our addition; the default stays ``"normalised"``, which measured as well or better on a
  linear-Gaussian and the Gaussian-mixture check, see BENCHMARKS.md) replaces that step by the ensemble Kalman gain
  with the noise covariance (Evensen 1994; the EKI step of Iglesias, Law and Stuart 2013 with step ``h``): with
  ``g_j`` the whitened residuals, ``G~`` and ``X~`` the centred ensembles (rows ``j``)::

      x_j <- x_j - X~^T (G~ G~^T + J alpha I)^{-1} G~ g_j,     alpha = M / gamma,

  i.e. ``x_j - C_xg (C_gg + alpha I)^{-1} g_j`` (push-through identity; a ``J x J`` solve), with ``M`` the number of
  updates of the whole run, so that ``gamma = 1`` assimilates the data once in total (``Gamma / h`` with
  ``h = 1 / M`` per update, as in tempered EKI). The step shrinks where the ensemble spread in data space is small
  against the noise and never exceeds the Kalman step, so the noise level enters it.
- Discrepancy principle (Morozov 1966; our change, both gains, on by default): an update is skipped while the
  ensemble's mean squared whitened misfit per measurement is already at most ``discrepancy`` (default 1: the noise
  level), so the ensemble stops short of fitting the noise. ``discrepancy = 0`` switches it off.
- A warning is given when the ensemble spans far fewer directions (``J - 1``) than the data constrain
  (``min(m, n) / 10`` for ``m`` measurements and ``n`` unknowns): the update cannot leave the initial span.
- ODE: Euler (the authors') or Heun (``solver="heun"``, Karras et al. 2022, Algorithm 1 without churn);
  the last step, to ``sigma = 0``, is always Euler (it equals ``D(x, sigma_min)``).

Cost per particle (exact, counted in the state): ``nfe = sum_{guided i} num_updates K_i + N_ode`` with
``K_i`` the ``Phi`` steps and ``N_ode = N`` (Euler) or ``2N - 1`` (Heun); ``forward_evals =
num_updates * (number of guided steps)``; ``grad_evals = 0``. Everything runs under ``torch.no_grad``,
so black-box forward models (``differentiable = False``) are accepted.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from samplers.base import Sampler, State
from samplers.errors import SamplerConfigError
from samplers.schedules import karras_sigmas
from samplers.steps import batched, probability_flow_step, probability_flow_x0, whitened_residuals
from samplers.validation import fraction_in, non_negative_float, non_negative_int, positive_float, positive_int

__all__ = ["EnsembleKalmanGuidance", "EnKGState", "GAINS", "EnsembleSpanWarning"]

#: the ensemble step of :class:`EnsembleKalmanGuidance`
GAINS = ("kalman", "normalised")


class EnsembleSpanWarning(UserWarning):
    """The ensemble spans far fewer directions than the data constrain."""


@dataclass(kw_only=True)
class EnKGState(State):
    """:class:`~samplers.base.State` with the noise schedule and the mean squared whitened misfit of each update."""

    sigmas: list[float]
    misfit: list[float]


class EnsembleKalmanGuidance(Sampler):
    """Ensemble Kalman diffusion guidance (Zheng et al. 2024): derivative-free, forward evaluations only.

    All ``num_samples`` particles form one interacting ensemble (``J = num_samples``); the posterior
    is the final ensemble, equally weighted. See the module docstring for the update and its cost.

    Parameters
    ----------
    num_steps : N, probability-flow ODE steps (EDM schedule; paper and InverseBench: ~80 Euler steps)
    guidance_scale : gamma, the step size of the normalised ensemble update (InverseBench NS: 2)
    num_updates : ensemble updates per guided step (InverseBench NS: 2)
    guidance_window : fractions (a, b) of the schedule that are guided, ``0 <= a < b <= 1``
    gamma_final_ratio : r in (0, 1]: gamma decays linearly from gamma to r gamma (1: constant)
    x0_steps_divisor, max_x0_steps : the x0 prediction takes ``min(1 + (N - i) // divisor, max)`` Euler steps
    solver : "euler" or "heun" for the ODE steps between updates
    rho : EDM schedule exponent
    gain : "kalman" (the noise-aware ensemble Kalman gain) or "normalised" (the authors' ``gamma / ||C||_F`` step)
    discrepancy : skip updates while the mean squared whitened misfit per measurement is at most this (0: never)
    batch_size : evaluate the network and the forward model in chunks of this many particles (None: all)

    Example::

        import numpy as np, torch
        from priors import GaussianPrior
        from forward_models import Gaussian, InverseProblem
        from forward_models.adapters import BlackBoxForwardModel
        from samplers import EnsembleKalmanGuidance
        op = BlackBoxForwardModel(lambda x: np.array([np.sin(x[0]) + x[1] ** 2]), (2,), (1,))
        problem = InverseProblem(op, torch.tensor([0.7]), Gaussian(0.1))
        post = EnsembleKalmanGuidance(num_steps=30).sample(problem, GaussianPrior(torch.zeros(2)), 64, seed=0)
        post.mean(), post.diagnostics["forward_evals"]
    """

    needs_gradient = False
    static_fields = ("sigmas",)

    def __init__(self, num_steps: int = 80, guidance_scale: float = 2.0, num_updates: int = 2,
                 guidance_window: tuple[float, float] = (0.05, 0.95), gamma_final_ratio: float = 1.0,
                 x0_steps_divisor: int = 4, max_x0_steps: int = 20, solver: str = "euler", rho: float = 7.0,
                 batch_size: int | None = None, gain: str = "normalised", discrepancy: float = 1.0):
        self.steps = positive_int(num_steps, "num_steps")
        self.guidance_scale = non_negative_float(guidance_scale, "guidance_scale")
        self.num_updates = non_negative_int(num_updates, "num_updates")
        try:
            a, b = (float(v) for v in guidance_window)
        except (TypeError, ValueError):
            raise SamplerConfigError("guidance_window must be two fractions (start, end), got "
                                     f"{guidance_window!r}") from None
        if not 0.0 <= a < b <= 1.0:
            raise SamplerConfigError(f"guidance_window must satisfy 0 <= start < end <= 1, got ({a}, {b})")
        if solver not in ("euler", "heun"):
            raise SamplerConfigError(f"solver must be 'euler' or 'heun', got {solver!r}")
        self.window_start, self.window_end = a, b
        self.gamma_final_ratio = fraction_in(gamma_final_ratio, "gamma_final_ratio", closed="right")
        self.x0_steps_divisor = positive_int(x0_steps_divisor, "x0_steps_divisor")
        self.max_x0_steps = positive_int(max_x0_steps, "max_x0_steps")
        self.solver = solver
        self.rho = positive_float(rho, "rho")
        self.batch_size = None if batch_size is None else positive_int(batch_size, "batch_size")
        if gain not in GAINS:
            raise SamplerConfigError(f"gain must be one of {', '.join(GAINS)}, got {gain!r}")
        self.gain = gain
        self.discrepancy = non_negative_float(discrepancy, "discrepancy")

    # ------------------------------------------------------------------------------ schedule
    def num_steps(self) -> int:
        """One step per noise level (guided updates, then the ODE step)."""
        return self.steps

    def is_guided(self, i: int) -> bool:
        """Whether step ``i`` lies in the guidance window ``a N <= i < b N``."""
        eps = 1e-9  # 0.95 * 80 is 75.99999999999999 in floating point
        return self.window_start * self.steps - eps <= i < self.window_end * self.steps - eps

    def x0_steps(self, i: int) -> int:
        """Euler steps of the x0 prediction at step ``i``: ``min(1 + (N - i) // divisor, max)``, and 1 (the
        denoiser) at the last level ``sigma_min``, from which no shorter schedule exists."""
        if i >= self.steps - 1:
            return 1
        return min(1 + (self.steps - i) // self.x0_steps_divisor, self.max_x0_steps)

    def step_size(self, i: int) -> float:
        """``gamma_i = gamma (r + (1 - r)(N - i) / N)`` (module docstring)."""
        r = self.gamma_final_ratio
        return self.guidance_scale * (r + (1.0 - r) * (self.steps - i) / self.steps)

    def cost_per_particle(self) -> dict:
        """Exact ``{"nfe", "forward_evals"}`` per particle of a full run (module docstring)."""
        guided = [i for i in range(self.steps) if self.is_guided(i)]
        ode = self.steps if self.solver == "euler" else 2 * self.steps - 1
        return {"nfe": ode + self.num_updates * sum(self.x0_steps(i) for i in guided),
                "forward_evals": self.num_updates * len(guided)}

    # ------------------------------------------------------------------------------ the loop
    def init(self, problem, prior, num_samples, generator) -> EnKGState:
        """Particles ``x ~ N(0, sigma_max^2 I)``, the schedule and an empty misfit history."""
        sigmas = karras_sigmas(self.steps, prior.sigma_min, prior.sigma_max, self.rho).tolist()
        x = sigmas[0] * torch.randn(num_samples, *prior.shape, generator=generator,
                                    dtype=prior.dtype, device=prior.device)
        m, n = problem.y.numel(), math.prod(prior.shape)
        if num_samples - 1 < min(m, n) / 10:
            warnings.warn(f"EnKG moves the particles within the span of its ensemble ({num_samples - 1} directions) "
                          f"while {m} measurements constrain {n} unknowns; expect a misfit above the noise level "
                          "(use more samples)", EnsembleSpanWarning, stacklevel=2)
        return EnKGState(x, 0, problem, prior, generator, sigmas=sigmas, misfit=[])

    def predict_x0(self, prior, x: torch.Tensor, sigma: float, num_steps: int) -> torch.Tensor:
        """``Phi(x, sigma)``: ``num_steps`` Euler steps of the ODE from ``sigma`` to 0 (``num_steps`` NFE;
        :func:`samplers.steps.probability_flow_x0`)."""
        return probability_flow_x0(prior, x, sigma, num_steps, self.rho, self.batch_size)

    def ensemble_update(self, problem, prior, x: torch.Tensor, sigma: float, gamma: float, k: int):
        """One EnKG update of the ensemble ``x`` at level ``sigma``; returns ``(x_new, mean squared whitened
        misfit)``."""
        x0 = self.predict_x0(prior, x, sigma, k)
        fm = problem.forward_model
        g = whitened_residuals(problem, batched(fm, prior.to_physical(x0), self.batch_size))  # (J, m): G_j - y
        J = len(x)
        misfit = float((g**2).sum(1).mean())
        if self.discrepancy > 0 and misfit <= self.discrepancy * g.shape[1]:  # the noise level is reached
            return x, misfit
        xf = x.reshape(J, -1).to(torch.float64)
        gc = g - g.mean(0, keepdim=True)
        if self.gain == "kalman":
            if gamma <= 0:
                return x, misfit
            alpha = self.total_updates() / gamma
            gram = gc @ gc.T + J * alpha * torch.eye(J, dtype=gc.dtype, device=gc.device)
            w = torch.linalg.solve(gram, gc @ g.T)  # (J, J): column j is (G~ G~^T + J alpha I)^{-1} G~ g_j
            return (xf - w.T @ (xf - xf.mean(0, keepdim=True))).reshape(x.shape).to(x.dtype), misfit
        coef = g @ gc.T / J  # C_jk = <G_j - y, G_k - G_bar> / J
        norm = torch.linalg.matrix_norm(coef)
        if float(norm) == 0.0:  # a collapsed ensemble (or J = 1): nothing to move along
            return x, misfit
        dx = coef @ (xf - xf.mean(0, keepdim=True))
        return (xf - (gamma / norm) * dx).reshape(x.shape).to(x.dtype), misfit

    def total_updates(self) -> int:
        """``M``: ensemble updates in a full run (the number of guided steps times ``num_updates``)."""
        return max(self.num_updates * sum(self.is_guided(i) for i in range(self.steps)), 1)

    def step(self, state: EnKGState) -> EnKGState:
        """Guided updates (inside the window), then one probability-flow ODE step."""
        i, J = state.step, len(state.x)
        s, s_next = state.sigmas[i], state.sigmas[i + 1]
        x, nfe, fwd, misfits = state.x, 0, 0, []
        with torch.no_grad():
            if self.is_guided(i) and self.num_updates > 0:
                k = self.x0_steps(i)
                for _ in range(self.num_updates):
                    x, m = self.ensemble_update(state.problem, state.prior, x, s, self.step_size(i), k)
                    misfits.append(m)
                    nfe, fwd = nfe + k, fwd + 1
            x, n = probability_flow_step(state.prior, x, s, s_next, self.solver, self.batch_size)
        return self.advance(state, x=x, nfe=J * (nfe + n), forward_evals=J * fwd, misfit=state.misfit + misfits)

    def finalize(self, state: EnKGState):
        """Posterior: the final ensemble in physical units; ``diagnostics["misfit_history"]`` holds the mean
        squared whitened data misfit ``|G(x0_hat) - y|^2`` at each ensemble update."""
        post = super().finalize(state)
        post.diagnostics = {**post.diagnostics, "misfit_history": list(state.misfit)}
        return post
