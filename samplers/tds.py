"""Twisted diffusion sampler (TDS; Wu, Trippe, Naesseth, Blei and Cunningham, NeurIPS 2023), in sigma space.

Twist (a Gaussian guess of ``p(y | x_s)`` through the denoiser's estimate ``x0_hat = D(x_s, s)``)::

    p~_s(y | x_s) = N(y; F(x0_hat), Sigma_s),
    Sigma_s = sigma_y^2 I + kappa s^2 A A^T     (linear F = A, in A's singular basis)
    Sigma_s = (sigma_y^2 + kappa s^2) I         (non-linear F, or operators too large to decompose)

``kappa s^2`` stands for ``Cov(x0 | x_s)``: in sigma space ``(1 - abar)/abar = s^2`` (the paper's
``r_t``), exact as ``s -> 0`` for any prior with unit-scale components; ``kappa = 0`` gives the plain
``p(y | x0_hat)`` twist. For non-linear ``F`` the scalar inflation assumes an operator of unit gain:
scale ``kappa`` by ``||J_F||^2`` otherwise.

Proposal from level ``s`` to ``s'`` (reverse kernel ``N(mu, v I)``, ``mu = x0_hat + (s'^2/s^2)(x - x0_hat)``,
``v`` the analytic variance of :func:`samplers.steps.analytic_variance` by default, or the ancestral
``s'^2 (1 - s'^2/s^2)``), with the conditional score in place of the prior score::

    x' ~ q = N(mu + (s^2 - s'^2) grad_x log p~_s(y | x),  v I)

(the paper's Euler-Maruyama form shifts by the step's variance; both agree to first order, and the
weights correct either). Weights (the paper's eq. for TDS)::

    initial  w_0 = p~_{s_0}(y | x),    x ~ N(0, s_0^2 I)
    step     w   = N(x'; mu, v) p~_{s'}(y | x') / [N(x'; mu_guided, v) p~_s(y | x)]
    last     w   = p(y | x0) / p~_{s_K-1}(y | x),    x0 = D(x, s_{K-1})   (deterministic last step)

with systematic resampling when the ESS drops below ``resample_threshold * N``. The denoiser and
the twist's gradient at the new particles are cached for the next step: one NFE and one VJP per
particle and step. Needs a differentiable forward model and Gaussian noise.
"""

from __future__ import annotations

import math

import torch

from forward_models.noise import Gaussian
from samplers.errors import SamplerError
from samplers.smc import LinearGaussian, Move, SMCSampler
from samplers.steps import sigma_batch

__all__ = ["TwistedDiffusionSampler"]

_LOG_2PI = math.log(2.0 * math.pi)


class TwistedDiffusionSampler(SMCSampler):
    """TDS: twisted SMC with gradient-guided proposals (module docstring).

    Parameters
    ----------
    num_steps : EDM levels
    kappa : twist variance inflation ``Sigma_s = sigma_y^2 I + kappa s^2 A A^T`` (non-negative)
    resample_threshold : resample when ESS < threshold * N
    rho : EDM schedule exponent
    reverse_variance : ``"analytic"`` (default) or ``"ancestral"``, the kernel variance ``v`` (:class:`samplers.smc.SMCSampler`)

    Example::

        from inverse.harness import gmm_case
        from samplers import TwistedDiffusionSampler
        case = gmm_case(8, 2, seed=0)
        post = TwistedDiffusionSampler(num_steps=50).sample(case.problem, case.prior, 128, seed=0)
        post.diagnostics["log_evidence"], case.log_evidence
    """

    needs_gradient = True

    def __init__(self, num_steps: int = 100, kappa: float = 1.0, resample_threshold: float = 0.5, rho: float = 7.0,
                 reverse_variance: str = "analytic"):
        super().__init__(num_steps, resample_threshold, rho, reverse_variance)
        if not (math.isfinite(float(kappa)) and float(kappa) >= 0):
            raise ValueError(f"kappa must be finite and non-negative, got {kappa}")
        self.kappa = float(kappa)

    def check(self, problem, prior) -> None:
        """Gaussian noise (the twist is Gaussian) and a differentiable model."""
        if not isinstance(problem.noise, Gaussian):
            raise ValueError(f"TwistedDiffusionSampler's twist needs Gaussian noise, got {type(problem.noise).__name__}")
        super().check(problem, prior)

    def setup(self, problem, prior):
        """The singular basis for linear models small enough to decompose, else the scalar twist."""
        if problem.forward_model.linear:
            try:
                return {"lg": LinearGaussian.from_problem(problem, prior, "TwistedDiffusionSampler")}
            except ValueError:
                pass
        return {"lg": None}

    def log_twist(self, problem, prior, model, x0: torch.Tensor, s: float) -> torch.Tensor:
        """``log p~_s(y | x_s)`` from ``x0 = D(x_s, s)`` (module docstring); differentiable in ``x0``."""
        lg = model["lg"]
        sy2 = problem.noise.sigma ** 2
        if lg is not None:
            return lg.log_twist(lg.project(x0), sy2 + self.kappa * s**2 * lg.s**2)
        y_clean = problem.forward_model(prior.to_physical(x0))
        r = (problem.y.to(y_clean.dtype)[None] - y_clean).reshape(len(x0), -1)
        var = sy2 + self.kappa * s**2
        return -0.5 * (r**2).sum(1) / var - 0.5 * r.shape[1] * (math.log(var) + _LOG_2PI)

    def _twist_and_grad(self, state_like, x: torch.Tensor, s: float) -> dict:
        problem, prior, model = state_like
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            x0 = prior.denoise(xg, sigma_batch(s, xg))
            if not bool(torch.isfinite(x0).all()):
                raise SamplerError(f"the prior's denoiser returned non-finite values at sigma = {s:.4g}")
            lt = self.log_twist(problem, prior, model, x0, s)
            (grad,) = torch.autograd.grad(lt.sum(), xg)
        return {"x0": x0.detach(), "log_twist": lt.detach(), "grad": grad.detach()}

    def initial(self, problem, prior, n, generator, model, sigmas) -> Move:
        """``x ~ N(0, s_0^2 I)`` weighted by the twist."""
        x = sigmas[0] * torch.randn(n, *prior.shape, generator=generator, dtype=prior.dtype, device=prior.device)
        cache = self._twist_and_grad((problem, prior, model), x, sigmas[0])
        return Move(x, cache["log_twist"], cache, nfe=n, forward_evals=n, grad_evals=n)

    def move(self, state, x, cache, aux, s, s_next) -> Move:
        """Guided ancestral step and the twisted weight; the last step is ``x0 = D(x)`` weighted by ``p(y|x0)``."""
        problem, prior, model = state.problem, state.prior, state.extras["model"]
        x0, n = cache["x0"], len(x)
        if s_next <= 0:
            with torch.no_grad():
                ll = problem.log_likelihood(prior.to_physical(x0))
            return Move(x0, ll - cache["log_twist"], {}, forward_evals=n)
        ratio = (s_next / s) ** 2
        mu = x0 + ratio * (x - x0)
        # estimated on the particles before resampling, whose denoised values are in the state's cache
        v = self.kernel_variance(state.x, state.extras["cache"]["x0"], s, s_next, state.log_weights)
        shift = (s**2 - s_next**2) * cache["grad"]
        noise = math.sqrt(v) * torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=state.generator)
        x_new = mu + shift + noise
        # log N(x'; mu, v) - log N(x'; mu + shift, v) with x' - mu - shift = noise
        log_pq = -((noise + shift) ** 2 - noise**2).reshape(n, -1).sum(1) / (2.0 * v)
        new = self._twist_and_grad((problem, prior, model), x_new, s_next)
        incr = log_pq + new["log_twist"] - cache["log_twist"]
        return Move(x_new, incr, new, nfe=n, forward_evals=n, grad_evals=n)
