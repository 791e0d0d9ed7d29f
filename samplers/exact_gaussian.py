"""Exact posterior samples for a linear forward model and a Gaussian prior, by perturbation-optimisation.

With a Gaussian prior ``x ~ N(m, L L^T)`` in model space (physical units ``o + s x``), a linear model
``y = A (o + s x) + sigma e`` and ``x = m + L u``, the whitened variable has prior ``u ~ N(0, I)`` and
posterior ``N(mu, (B^T B / sigma^2 + I)^{-1})`` with ``B = s A L`` and ``r = y - A (o + s m)``. A sample
is the solution of the perturbed normal equations (Papandreou and Yuille 2010, "Gaussian sampling by
local perturbations"; Bardsley et al. 2014, "Randomize-then-optimize", the linear case, where it is
exact)::

    (B^T B / sigma^2 + I) u = B^T (r + sigma e1) / sigma^2 + e2,      e1 ~ N(0, I_m), e2 ~ N(0, I_d),

since the right-hand side has mean ``B^T r / sigma^2`` and covariance ``B^T B / sigma^2 + I``. The
system is solved for all samples at once by conjugate gradients (Hestenes and Stiefel 1952), one
iteration per step; the matrix is ``I`` plus a positive semi-definite term, so its condition number is
at most ``1 + ||B||^2 / sigma^2`` and CG converges in a few dozen iterations for moderate
signal-to-noise ratios. A column whose relative residual falls below ``tol`` stops moving.

The samples are exact up to the CG tolerance: the posterior of a Gaussian prior is Gaussian, and its
mean and pixel-wise intervals are those of the Wiener / Kriging estimator. Priors: :class:`priors.GaussianPrior`
(``L = std I`` or the Cholesky factor of its covariance) and :class:`priors.GaussianFieldPrior` (``L = F^*
diag(sqrt(P)) F``, applied by FFT). Forward models: linear ones (``forward_model.linear``) with an adjoint;
Gaussian noise only. Cost per sample: ``forward_evals`` = ``grad_evals`` = one forward and one adjoint per
CG iteration, no network evaluations.

Example::

    import torch
    from forward_models import Gaussian, InverseProblem, MatrixOperator
    from priors import GaussianPrior
    from samplers import ExactGaussian
    op = MatrixOperator(torch.randn(3, 5, dtype=torch.float64), dtype=torch.float64)
    problem = InverseProblem.simulate(op, Gaussian(0.1), torch.ones(5, dtype=torch.float64), seed=0)
    post = ExactGaussian(num_steps=50).sample(problem, GaussianPrior(torch.zeros(5)), 256, seed=0)
    post.mean()
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from forward_models.noise import Gaussian
from samplers.base import Sampler, State
from samplers.errors import SamplerConfigError
from samplers.validation import positive_float, positive_int

__all__ = ["ExactGaussian", "ExactGaussianState", "gaussian_factor"]


@dataclass(kw_only=True)
class ExactGaussianState(State):
    """CG iterates of the whitened samples: ``u`` (solutions), ``res`` (residuals), ``direction`` and
    ``rr`` (squared residual norms), ``rhs_norm`` (norms of the right-hand sides), all per sample."""

    u: torch.Tensor
    res: torch.Tensor
    direction: torch.Tensor
    rr: torch.Tensor
    rhs_norm: torch.Tensor


def gaussian_factor(prior):
    """``(mean, L, L^T)`` of a Gaussian prior in model space, each map acting on flattened batches ``(n, d)``;
    a one-line :class:`~samplers.errors.SamplerConfigError` for a prior that is not Gaussian."""
    from priors import GaussianFieldPrior, GaussianPrior

    if isinstance(prior, GaussianFieldPrior):
        shape = prior.shape
        root = prior.power.to(torch.float64).sqrt()

        def sqrt_cov(z):
            f = torch.fft.rfft2(z.reshape(-1, *shape).to(torch.float64), norm="ortho") * root
            return torch.fft.irfft2(f, s=shape[-2:], norm="ortho").reshape(len(z), -1).to(z.dtype)

        return prior.mean_field.reshape(-1), sqrt_cov, sqrt_cov
    if isinstance(prior, GaussianPrior):
        mean = prior.means[0]
        if prior.isotropic:
            std = prior.isotropic_variance**0.5
            return mean, (lambda z: std * z), (lambda z: std * z)
        root = prior._evecs * prior._evals.clamp_min(0).sqrt()  # L = V diag(sqrt(lambda)), L L^T = C
        return mean, (lambda z: z @ root.T.to(z.dtype)), (lambda z: z @ root.to(z.dtype))
    raise SamplerConfigError(f"ExactGaussian needs a Gaussian prior (GaussianPrior, GaussianFieldPrior, or "
                             f"--prior gaussian / natural-field-64), got {type(prior).__name__}")


class ExactGaussian(Sampler):
    """Exact Gaussian posterior of a linear model by perturbation-optimisation with batched CG (module docstring).

    Args:
        num_steps: the most CG iterations (one per step).
        tol: relative residual at which a sample's CG stops.
    """

    needs_gradient = False
    needs_linear = True

    def __init__(self, num_steps: int = 100, tol: float = 1e-6):
        self.num_steps_ = positive_int(num_steps, "num_steps")
        self.tol = positive_float(tol, "tol")

    def config(self) -> dict:
        """Class name and settings."""
        return {"class": type(self).__name__, "num_steps": self.num_steps_, "tol": self.tol}

    def num_steps(self) -> int:
        """The most CG iterations."""
        return self.num_steps_

    def check(self, problem, prior) -> None:
        """A linear model with Gaussian noise and a Gaussian prior."""
        super().check(problem, prior)
        if not isinstance(problem.noise, Gaussian):
            raise SamplerConfigError(f"ExactGaussian needs Gaussian noise, got {type(problem.noise).__name__}")
        gaussian_factor(prior)

    def _operators(self, problem, prior):
        """``B``, ``B^T`` on flattened batches and the model's dtype; ``B = s A L`` (module docstring)."""
        fm = problem.forward_model
        mean, factor, factor_t = gaussian_factor(prior)
        dtype = torch.float64
        shape = tuple(prior.shape)
        with torch.no_grad():  # the affine map to physical units, elementwise: o + s x
            zero = torch.zeros(1, *shape, dtype=prior.dtype, device=mean.device)
            scale = (prior.to_physical(zero + 1) - prior.to_physical(zero)).reshape(1, -1).to(dtype)

        def B(u):
            return fm((scale * factor(u)).reshape(len(u), *shape).to(dtype)).reshape(len(u), -1).to(dtype)

        def Bt(v):
            a = fm.adjoint(v.reshape(len(v), *problem.y.shape).to(dtype)).reshape(len(v), -1).to(dtype)
            return factor_t(scale * a)

        return mean.to(dtype), factor, B, Bt

    def init(self, problem, prior, num_samples, generator) -> ExactGaussianState:
        """Draw the perturbations, form the right-hand sides and start CG from ``u = 0``."""
        mean, factor, B, Bt = self._operators(problem, prior)
        sigma = float(problem.noise.sigma)
        with torch.no_grad():
            m_phys = prior.to_physical(mean.reshape(1, *prior.shape).to(prior.dtype)).to(torch.float64)
            r = (problem.y.to(torch.float64) - problem.forward_model(m_phys)[0]).reshape(-1)
            dev = r.device
            e1 = torch.randn(num_samples, r.numel(), generator=generator, dtype=torch.float64, device=dev)
            e2 = torch.randn(num_samples, mean.numel(), generator=generator, dtype=torch.float64, device=dev)
            rhs = Bt(r[None] + sigma * e1) / sigma**2 + e2
        u = torch.zeros_like(rhs)
        x = mean.expand(num_samples, -1).reshape(num_samples, *prior.shape).to(prior.dtype)
        return ExactGaussianState(x, 0, problem, prior, generator, u=u, res=rhs.clone(), direction=rhs.clone(),
                                  rr=(rhs * rhs).sum(1), rhs_norm=rhs.norm(dim=1).clamp_min(1e-300))

    def done(self, state: ExactGaussianState) -> bool:
        """After ``num_steps`` iterations, or when every sample's relative residual is below ``tol``."""
        converged = bool((state.rr.sqrt() <= self.tol * state.rhs_norm).all())
        return state.step >= self.num_steps_ or converged

    def step(self, state: ExactGaussianState) -> ExactGaussianState:
        """One CG iteration for every sample not yet converged; ``x = m + L u``."""
        problem, prior = state.problem, state.prior
        mean, factor, B, Bt = self._operators(problem, prior)
        sigma = float(problem.noise.sigma)
        with torch.no_grad():
            active = (state.rr.sqrt() > self.tol * state.rhs_norm).to(torch.float64)
            p = state.direction
            ap = Bt(B(p)) / sigma**2 + p
            alpha = active * state.rr / (p * ap).sum(1).clamp_min(1e-300)
            u = state.u + alpha[:, None] * p
            res = state.res - alpha[:, None] * ap
            rr = (res * res).sum(1)
            beta = torch.where(active > 0, rr / state.rr.clamp_min(1e-300), torch.zeros_like(rr))
            rr = torch.where(active > 0, rr, state.rr)
            direction = torch.where(active[:, None] > 0, res + beta[:, None] * p, p)
            x = (mean[None] + factor(u)).reshape(len(u), *prior.shape).to(prior.dtype)
        n = len(u)
        return self.advance(state, x=x, forward_evals=n, grad_evals=n, u=u, res=res, direction=direction, rr=rr)
