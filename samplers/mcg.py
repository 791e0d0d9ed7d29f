"""Manifold-constrained gradient (MCG; Chung, Sim, Ryu and Ye, NeurIPS 2022).

Per step from noise level ``s`` to ``s'``, for a linear forward model ``A`` (sigma space)::

    x0_hat = D(x, s)
    x'     = ancestral_step(x, x0_hat, s, s')                        # (1) reverse step
    x''    = x' - alpha_s * grad_x ||y - A x0_hat(x)||                # (2) manifold-constrained gradient
    y_s'   = y + s' A eps,  eps ~ N(0, I)                            #     measurement noised to level s'
    x      = x'' - lam_s' A^+ (A x'' - y_s')                         # (3) projection onto {A x = y_s'}

``alpha_s`` converts the paper's VP step size as in DPS. The paper assumes noiseless data and
projects fully: ``x = x'' - A^+ (A x'' - y_s')``. For noisy data (``y = A x0 + sigma_y e``) a hard
projection is wrong twice: it imprints the noise on the sample, and along weak singular directions
(``s_i << sigma_y``) it amplifies that noise by ``1 / s_i``. We soften it into the Kalman update of a
state with covariance ``s'^2 I`` by a measurement with noise ``sigma_y``::

    x = x'' - A^T (A A^T + (sigma_y / s')^2 I)^{-1} (A x'' - y_s'),

i.e. per singular direction the gain ``s'^2 s_i^2 / (s'^2 s_i^2 + sigma_y^2)``: the paper's hard
projection where the measurement is far more precise than the current noise level, no projection
where it is not, and the hard projection throughout as ``sigma_y -> 0``. The last step (``s' = 0``)
does not project. The solve is the forward model's damped ``pseudo_inverse`` (exact SVD for
matrices, closed form for masks, per-row SVDs for Cartesian MRI, the cached eigendecomposition of
``A A^T`` for CT, conjugate gradients otherwise). ``soft_projection=False`` gives
the paper's hard projection.
"""

from __future__ import annotations

import torch

from forward_models.noise import Gaussian
from samplers.dps import DPS, DPSState
from samplers.errors import SamplerConfigError
from samplers.steps import ancestral_step, denoise_with_misfit_gradient
from samplers.validation import non_negative_float

__all__ = ["MCG", "physical_noise_level"]


def physical_noise_level(prior, sigma: float) -> float:
    """The noise level ``sigma`` of the prior's model space in physical units: ``|scale| sigma`` for
    ``physical = offset + scale * model`` (the projection acts on physical images, where the measurement lives)."""
    norm = getattr(prior, "normalisation", None)
    return abs(float(getattr(norm, "scale", 1.0))) * float(sigma)


class MCG(DPS):
    """Manifold-constrained gradient with a (softened) projection onto the measurement set.

    Needs a linear forward model with Gaussian noise (the projection); refuses others with a
    clear error. Parameters as :class:`samplers.DPS`, with ``alpha`` the gradient step size (paper: 1
    on inpainting) and ``soft_projection`` to switch the noise-aware softening off.

    Example::

        import torch
        from priors import GaussianPrior
        from forward_models import Inpainting, Gaussian, InverseProblem
        from samplers import MCG
        prior = GaussianPrior(torch.zeros(1, 4, 4))
        problem = InverseProblem.simulate(Inpainting(torch.ones(1, 4, 4)), Gaussian(0.05),
                                          torch.ones(1, 4, 4, dtype=torch.float64), seed=0)
        post = MCG(num_steps=30).sample(problem, prior, 16, seed=0)
    """

    needs_gradient = True
    needs_linear = True

    def __init__(self, num_steps: int = 100, alpha: float = 1.0, rho: float = 7.0, soft_projection: bool = True):
        self.alpha = non_negative_float(alpha, "alpha")
        super().__init__(num_steps=num_steps, zeta=self.alpha, rho=rho)
        self.soft_projection = bool(soft_projection)

    def check(self, problem, prior) -> None:
        """MCG's projection step needs a linear model and Gaussian noise."""
        fm = problem.forward_model
        if not fm.linear:
            # DPS needs gradients too: a black-box model goes to the derivative-free samplers
            other = "DPS (or the derivative-free EnKG / EKI)" if getattr(fm, "differentiable", True) else \
                "the derivative-free samplers EnKG or EKI (--sampler enkg / eki)"
            raise SamplerConfigError(f"MCG's projection step needs a linear forward model, but "
                                     f"{type(fm).__name__} is not linear; use {other} instead")
        if not isinstance(problem.noise, Gaussian):
            raise SamplerConfigError(f"MCG's projection assumes Gaussian noise, got {type(problem.noise).__name__}; "
                                     "use DPS")
        super().check(problem, prior)

    def setup(self, problem, prior) -> None:
        """Factorise the projection once, before the first step (``ForwardModel.prepare_pseudo_inverse``:
        the per-row SVDs of Cartesian MRI, the eigendecomposition of ``A A^T`` for CT; nothing for CG)."""
        problem.forward_model.prepare_pseudo_inverse()

    def init(self, problem, prior, num_samples, generator) -> DPSState:
        """Set-up (:meth:`setup`), then DPS's particles ``x ~ N(0, sigma_max^2 I)``."""
        self.setup(problem, prior)
        return super().init(problem, prior, num_samples, generator)

    def projection_damping(self, s_next: float, sigma_y: float) -> float | None:
        """Damping ``(sigma_y / s')^2`` of the projection (0 when hard, None when it is skipped)."""
        if s_next <= 0:
            return None
        return (sigma_y / s_next) ** 2 if self.soft_projection else 0.0

    def step(self, state: DPSState) -> DPSState:
        """One MCG update: reverse step, manifold-constrained gradient, projection."""
        s, s_next = state.sigmas[state.step], state.sigmas[state.step + 1]
        problem, prior = state.problem, state.prior
        fm = problem.forward_model
        x0, grad, _ = denoise_with_misfit_gradient(problem, prior, state.x, s)
        x = ancestral_step(state.x, x0, s, s_next, state.generator) - self.guidance_scale(s, s_next) * grad
        s_phys = physical_noise_level(prior, s_next)
        damping = self.projection_damping(s_phys, problem.noise.sigma)
        n = len(x)
        if damping is not None:
            with torch.no_grad():
                xp = prior.to_physical(x)
                eps = torch.randn(xp.shape, dtype=xp.dtype, device=xp.device, generator=state.generator)
                y_s = problem.y.to(xp.dtype)[None] + s_phys * fm(eps)
                xp = xp - fm.pseudo_inverse(fm(xp) - y_s, damping=damping)
                x = prior.from_physical(xp)
        return self.advance(state, x=x, nfe=n, forward_evals=n + (2 * n if damping is not None else 0), grad_evals=n)
