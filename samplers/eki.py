"""Ensemble Kalman inversion (EKI; Iglesias, Law and Stuart 2013, "Ensemble Kalman methods for inverse
problems", Inverse Problems 29 045001), with a diffusion prior supplying the initial ensemble.

1. Prior ensemble: ``J`` samples of the prior, drawn through its denoiser down the EDM schedule of
   ``prior_steps`` levels, by the probability-flow ODE (``prior_sampler="ode"``, Heun, Karras et al.
   2022 Algorithm 1, ``2 prior_steps - 1`` NFE per particle) or by ancestral (DDPM) steps
   (``"ancestral"``, ``prior_steps`` NFE per particle).
2. ``N = num_iterations`` perturbed-observation Kalman updates, derivative-free::

       G_j  = F(to_physical(x_j)),     eta_j ~ N(0, alpha Gamma),
       x_j <- x_j + C_xG (C_GG + alpha Gamma)^{-1} (y + eta_j - G_j),

   with the ensemble covariances ``C_xG = sum_j (x_j - x_bar)(G_j - G_bar)^T / (J - 1)`` and
   ``C_GG`` likewise, ``Gamma = sigma_y^2 I`` (Gaussian noise only).

Regularisation (``tempered``): with ``tempered=True`` (default) every iteration uses the inflated noise
``alpha = N``, i.e. it assimilates the likelihood raised to ``1 / N``; the ``N`` updates together
assimilate it once (the ensemble smoother with multiple data assimilation, Emerick and Reynolds 2013).
For a linear forward model with a Gaussian prior this maps the prior ensemble to the exact posterior
(mean and covariance) as ``J -> infinity``, for any ``N``; ``N = 1`` is the single ensemble Kalman update.
With ``tempered=False`` every iteration uses ``alpha = 1``: the classical iterated EKI of Iglesias et
al., which keeps fitting the data as ``N`` grows (the fixed ``N`` is then its only regularisation,
as by early stopping) and over-concentrates relative to the Bayesian posterior.

Linear algebra in float64 and in whichever of the ``m x m`` or ``J x J`` spaces is smaller, by the
push-through identity ``(C_GG + alpha Gamma)^{-1} C_Gx = Gc^T (Gc Gc^T + (J - 1) alpha Gamma)^{-1} Xc``
(with ``Gc``, ``Xc`` the centred ensembles). Cost per particle: prior-sampling NFE as above,
``forward_evals = N``, ``grad_evals = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from forward_models.noise import Gaussian
from samplers.base import Sampler, State
from samplers.errors import SamplerConfigError
from samplers.schedules import karras_sigmas
from samplers.steps import ancestral_step, batched, denoise_batched, probability_flow_step, whitened_residuals
from samplers.validation import positive_float, positive_int

__all__ = ["EnsembleKalmanInversion", "EKIState", "kalman_coefficients"]


@dataclass(kw_only=True)
class EKIState(State):
    """:class:`~samplers.base.State` with the prior-sampling schedule and the misfit before each Kalman update."""

    sigmas: list[float]
    misfit: list[float]


def kalman_coefficients(innovation: torch.Tensor, g_centred: torch.Tensor, alpha: float) -> torch.Tensor:
    """The ``J x J`` matrix ``K`` with ``x_j <- x_j + sum_k K_jk (x_k - x_bar)`` for whitened quantities.

    ``K = R (Gc^T Gc + (J - 1) alpha I)^{-1} Gc^T = R Gc^T (Gc Gc^T + (J - 1) alpha I)^{-1}`` with ``R`` the
    whitened innovations ``(J, m)`` and ``Gc`` the centred whitened predictions ``(J, m)``; equivalently
    ``K X_c = R (C_GG + alpha I)^{-1} C_Gx`` (module docstring). Solved in the smaller space.
    """
    J, m = g_centred.shape
    lam = (J - 1) * float(alpha)
    if m <= J:
        M = g_centred.T @ g_centred + lam * torch.eye(m, dtype=g_centred.dtype, device=g_centred.device)
        return torch.linalg.solve(M, innovation.T).T @ g_centred.T
    S = g_centred @ g_centred.T + lam * torch.eye(J, dtype=g_centred.dtype, device=g_centred.device)
    return torch.linalg.solve(S, (innovation @ g_centred.T).T).T  # S symmetric: (Q S^{-1})^T = S^{-1} Q^T


class EnsembleKalmanInversion(Sampler):
    """Ensemble Kalman inversion from a diffusion-prior ensemble: derivative-free baseline for EnKG.

    All ``num_samples`` particles form one ensemble; the posterior is the final ensemble, equally weighted.

    Parameters
    ----------
    num_iterations : N, perturbed-observation Kalman updates (>= 1)
    prior_steps : noise levels of the prior-sampling stage (EDM schedule)
    prior_sampler : "ode" (probability-flow ODE, Heun) or "ancestral" (DDPM steps)
    tempered : inflate the noise by N in every update (True, Bayesian; see the module docstring)
    rho : EDM schedule exponent
    batch_size : evaluate the network and the forward model in chunks of this many particles (None: all)

    Example::

        import torch
        from priors import GaussianPrior
        from forward_models import MatrixOperator, Gaussian, InverseProblem
        from samplers import EnsembleKalmanInversion
        op = MatrixOperator(torch.randn(2, 4, dtype=torch.float64), dtype=torch.float64)
        problem = InverseProblem.simulate(op, Gaussian(0.1), torch.ones(4, dtype=torch.float64), seed=0)
        post = EnsembleKalmanInversion(num_iterations=1).sample(problem, GaussianPrior(torch.zeros(4)), 512, seed=0)
        post.mean()
    """

    needs_gradient = False
    static_fields = ("sigmas",)

    def __init__(self, num_iterations: int = 10, prior_steps: int = 30, prior_sampler: str = "ode",
                 tempered: bool = True, rho: float = 7.0, batch_size: int | None = None):
        if prior_sampler not in ("ode", "ancestral"):
            raise SamplerConfigError(f"prior_sampler must be 'ode' or 'ancestral', got {prior_sampler!r}")
        self.num_iterations = positive_int(num_iterations, "num_iterations")
        self.prior_steps = positive_int(prior_steps, "prior_steps")
        self.prior_sampler = prior_sampler
        self.tempered = bool(tempered)
        self.rho = positive_float(rho, "rho")
        self.batch_size = None if batch_size is None else positive_int(batch_size, "batch_size")

    def num_steps(self) -> int:
        """``prior_steps`` prior-sampling steps, then ``num_iterations`` Kalman updates."""
        return self.prior_steps + self.num_iterations

    def check(self, problem, prior) -> None:
        """The Kalman update needs the noise covariance: Gaussian noise only."""
        if not isinstance(problem.noise, Gaussian):
            raise SamplerConfigError(f"EnsembleKalmanInversion's Kalman update needs Gaussian noise, got "
                                     f"{type(problem.noise).__name__}; use EnsembleKalmanGuidance")
        super().check(problem, prior)

    def cost_per_particle(self) -> dict:
        """Exact ``{"nfe", "forward_evals"}`` per particle of a full run."""
        nfe = 2 * self.prior_steps - 1 if self.prior_sampler == "ode" else self.prior_steps
        return {"nfe": nfe, "forward_evals": self.num_iterations}

    def init(self, problem, prior, num_samples, generator) -> EKIState:
        """Particles ``x ~ N(0, sigma_max^2 I)``, the prior-sampling schedule and an empty misfit history."""
        sigmas = karras_sigmas(self.prior_steps, prior.sigma_min, prior.sigma_max, self.rho).tolist()
        x = sigmas[0] * torch.randn(num_samples, *prior.shape, generator=generator,
                                    dtype=prior.dtype, device=prior.device)
        return EKIState(x, 0, problem, prior, generator, sigmas=sigmas, misfit=[])

    def step(self, state: EKIState) -> EKIState:
        """A prior-sampling step (first ``prior_steps`` steps) or a Kalman update."""
        with torch.no_grad():
            if state.step < self.prior_steps:
                return self._prior_step(state)
            return self._kalman_step(state)

    def _prior_step(self, state: EKIState) -> EKIState:
        s, s_next = state.sigmas[state.step], state.sigmas[state.step + 1]
        if self.prior_sampler == "ode":
            x, n = probability_flow_step(state.prior, state.x, s, s_next, "heun", self.batch_size)
        else:
            x0 = denoise_batched(state.prior, state.x, s, self.batch_size)
            x, n = ancestral_step(state.x, x0, s, s_next, state.generator), 1
        return self.advance(state, x=x, nfe=n * len(x))

    def _kalman_step(self, state: EKIState) -> EKIState:
        problem, prior, x = state.problem, state.prior, state.x
        J = len(x)
        alpha = float(self.num_iterations) if self.tempered else 1.0
        r = whitened_residuals(problem, batched(problem.forward_model, prior.to_physical(x), self.batch_size))
        eta = torch.randn(r.shape, dtype=r.dtype, device=r.device, generator=state.generator)
        innovation = alpha**0.5 * eta - r  # y + eta - G, whitened
        coef = kalman_coefficients(innovation, r - r.mean(0, keepdim=True), alpha)
        xf = x.reshape(J, -1).to(torch.float64)
        x_new = (xf + coef @ (xf - xf.mean(0, keepdim=True))).reshape(x.shape).to(x.dtype)
        misfit = state.misfit + [float((r**2).sum(1).mean())]
        return self.advance(state, x=x_new, forward_evals=J, misfit=misfit)

    def finalize(self, state: EKIState):
        """Posterior: the final ensemble in physical units; ``diagnostics["misfit_history"]`` holds the mean
        squared whitened misfit ``|G(x) - y|^2 / sigma_y^2`` before each Kalman update."""
        post = super().finalize(state)
        post.diagnostics = {**post.diagnostics, "misfit_history": list(state.misfit)}
        return post
