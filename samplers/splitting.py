"""The likelihood step of the splitting samplers (DAPS, PnP-DM, DiffPIR): the data term against a Gaussian anchor.

DAPS, PnP-DM and DiffPIR split the posterior ``p(x) p(y | x)`` into a prior step and a *likelihood step* on

    pi(x | z) ∝ p(y | F(to_physical(x))) N(x; z, rho^2 I)                                       (1)

(a Gaussian anchor ``z`` of width ``rho`` in the prior's model space). DAPS and PnP-DM draw from (1),
DiffPIR takes its mode (the data proximal step). Two ways:

- **exact**, for a linear forward model with Gaussian noise ``y = A u + sigma_y e`` on physical images
  ``u = offset + c x``: (1) is Gaussian. In physical units the anchor has width ``|c| rho`` and
  perturbation-optimisation (Papandreou and Yuille 2010; Bardsley et al. 2014,
  "randomize-then-optimize") draws from it exactly::

      u' = u_z + |c| rho eps,   y' = y + sigma_y eta,
      u  = u' + A^T (A A^T + (sigma_y / (|c| rho))^2 I)^{-1} (y' - A u')

  (the mode: the same without ``eps`` and ``eta``). The solve is the forward model's damped
  ``pseudo_inverse`` (closed form for masks and Cartesian MRI, the cached eigendecomposition for CT,
  conjugate gradients otherwise).
- **Langevin**, for every differentiable model: ``K`` unadjusted Langevin steps (Roberts and Tweedie 1996) on
  ``U(x) = -log p(y | x) + ||x - z||^2 / (2 rho^2)`` from ``x = z``::

      x <- x - h grad U(x) + sqrt(2 h) xi,      h = step_scale / (L + 1 / rho^2),

  where ``L`` estimates the largest curvature of ``-log p(y | x)`` (:func:`data_curvature`), so every step is
  stable where the estimate holds; a drift longer than :data:`DRIFT_CAP` anchor radii ``rho sqrt(d)`` is
  shortened (taming) for the places where it does not. Without ``xi`` it is gradient descent towards the mode.
"""

from __future__ import annotations

import math

import torch

from forward_models.noise import Gaussian
from samplers.base import Counters, Sampler
from samplers.errors import SamplerConfigError, SamplerError
from samplers.mcg import physical_noise_level
from samplers.steps import denoise_batched
from samplers.validation import positive_float, positive_int

__all__ = ["SplittingSampler", "DRIFT_CAP", "LIKELIHOOD_STEPS", "exact_step_applies", "blurred_log_likelihood",
           "resolve_likelihood_step", "gaussian_likelihood_step", "langevin_likelihood_step", "data_curvature",
           "likelihood_step"]

#: a Langevin drift longer than this many anchor radii ``rho sqrt(d)`` is shortened to it (a taming in the spirit of
#: Hutzenthaler, Jentzen and Kloeden 2012 and Brosse et al. 2019): the curvature estimate behind ``h`` comes from
#: one point, and where a non-linear model is steeper the plain step would overflow; no single move of that length
#: is needed to reach a target concentrated within a few radii of the anchor
DRIFT_CAP = 3.0

#: the ``likelihood_step`` settings of the splitting samplers
LIKELIHOOD_STEPS = ("auto", "exact", "langevin")


def exact_step_applies(problem) -> bool:
    """Whether (1) is Gaussian: a linear forward model with Gaussian noise."""
    return bool(problem.forward_model.linear) and isinstance(problem.noise, Gaussian)


def resolve_likelihood_step(choice: str, problem, who: str) -> str:
    """``"exact"`` or ``"langevin"`` for ``choice`` in :data:`LIKELIHOOD_STEPS` (``"auto"``: exact where it
    applies); refuses ``"exact"`` on a problem it does not apply to and ``"langevin"`` on a model without gradients."""
    if choice not in LIKELIHOOD_STEPS:
        raise SamplerConfigError(f"{who}: likelihood_step must be one of {', '.join(LIKELIHOOD_STEPS)}, got {choice!r}")
    exact = exact_step_applies(problem)
    if choice == "exact" and not exact:
        raise SamplerConfigError(f"{who}'s exact likelihood step needs a linear forward model with Gaussian noise; "
                                 "use likelihood_step=langevin")
    if choice == "auto":
        choice = "exact" if exact else "langevin"
    if choice == "langevin" and not problem.forward_model.differentiable:
        raise SamplerConfigError(f"{who}'s Langevin likelihood step needs gradients, but "
                                 f"{type(problem.forward_model).__name__} is not differentiable; use the "
                                 "derivative-free samplers EnKG or EKI (--sampler enkg / eki)")
    return choice


def gaussian_likelihood_step(problem, prior, z: torch.Tensor, rho: float, generator, *,
                             sample: bool = True) -> torch.Tensor:
    """A draw from (1) (or its mode with ``sample=False``) for a linear model with Gaussian noise, exactly
    (module docstring). ``z``: anchors ``(B, *shape)`` in model space; returns the same shape."""
    fm = problem.forward_model
    rho_p = physical_noise_level(prior, rho)
    sigma_y = float(problem.noise.sigma)
    with torch.no_grad():
        u = prior.to_physical(z)
        y = problem.y.to(u.dtype)[None].expand(len(u), *problem.y.shape)
        if sample:
            u = u + rho_p * torch.randn(u.shape, dtype=u.dtype, device=u.device, generator=generator)
            y = y + sigma_y * torch.randn(y.shape, dtype=y.dtype, device=y.device, generator=generator)
        damping = (sigma_y / rho_p) ** 2 if rho_p > 0 else math.inf
        if math.isfinite(damping):
            u = u + fm.pseudo_inverse(y - fm(u), damping=damping)
        return prior.from_physical(u)


def _potential_grad(problem, prior, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(-log p(y | to_physical(x)), its gradient in x)`` per particle."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        nll = -problem.log_likelihood(prior.to_physical(xg))
        (grad,) = torch.autograd.grad(nll.sum(), xg)
    if not bool(torch.isfinite(grad).all()):
        raise SamplerError("the likelihood gradient is NaN or Inf in the Langevin step (the forward model or its "
                           "adjoint overflowed: reduce step_scale)")
    return nll.detach(), grad


def data_curvature(problem, prior, x: torch.Tensor, iterations: int = 10, seed: int = 0) -> float:
    """Largest curvature of ``-log p(y | to_physical(x))`` near ``x`` (a batch; the largest over it), by power
    iteration on finite differences of the gradient: ``H v ~ (g(x + h v) - g(x)) / h`` with ``||h v|| = 1e-2``
    per particle (exact for linear models up to rounding). Costs ``iterations + 1`` gradients per particle."""
    g = torch.Generator(device=x.device).manual_seed(int(seed))
    v = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=g)
    flat = (len(x), -1)
    v = v / v.reshape(flat).norm(dim=1).clamp_min(1e-30).reshape(-1, *[1] * (x.dim() - 1))
    _, g0 = _potential_grad(problem, prior, x)
    h = 1e-2
    lam = torch.zeros(len(x), dtype=torch.float64)
    for _ in range(int(iterations)):
        _, g1 = _potential_grad(problem, prior, x + h * v)
        hv = (g1 - g0) / h
        norms = hv.reshape(flat).norm(dim=1)
        lam = norms.to(torch.float64).cpu()
        v = hv / norms.clamp_min(1e-30).reshape(-1, *[1] * (x.dim() - 1))
    value = float(lam.max())
    return value if math.isfinite(value) else 0.0


def langevin_likelihood_step(problem, prior, z: torch.Tensor, rho: float, generator, *, num_steps: int,
                             curvature: float, step_scale: float = 0.5, sample: bool = True) -> torch.Tensor:
    """``num_steps`` unadjusted Langevin steps on (1) from ``x = z`` (gradient descent with ``sample=False``),
    step ``h = step_scale / (curvature + 1 / rho^2)`` (module docstring)."""
    h = float(step_scale) / (float(curvature) + 1.0 / float(rho) ** 2)
    x = z.detach()
    cap = DRIFT_CAP * float(rho) * math.sqrt(x[0].numel())
    for _ in range(int(num_steps)):
        _, grad = _potential_grad(problem, prior, x)
        drift = h * (grad + (x - z) / rho**2)
        norms = drift.reshape(len(x), -1).norm(dim=1).clamp_min(1e-300)
        x = x - drift * (cap / norms).clamp(max=1.0).reshape(-1, *[1] * (x.dim() - 1)).to(x.dtype)
        if sample:
            x = x + math.sqrt(2.0 * h) * torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
    if not bool(torch.isfinite(x).all()):
        raise SamplerError("the Langevin likelihood step diverged (reduce step_scale)")
    return x.detach()


def likelihood_step(kind: str, problem, prior, z: torch.Tensor, rho: float, generator, *, num_steps: int = 0,
                    curvature: float = 0.0, step_scale: float = 0.5, sample: bool = True) -> tuple[torch.Tensor, dict]:
    """The likelihood step of kind ``"exact"`` or ``"langevin"`` (:func:`resolve_likelihood_step`); returns the new
    particles and the cost per particle ``{"forward_evals": ..., "grad_evals": ...}``."""
    if kind == "exact":
        x = gaussian_likelihood_step(problem, prior, z, rho, generator, sample=sample)
        return x, {"forward_evals": 2, "grad_evals": 0}  # F(u) and the pseudo-inverse
    x = langevin_likelihood_step(problem, prior, z, rho, generator, num_steps=num_steps, curvature=curvature,
                                 step_scale=step_scale, sample=sample)
    return x, {"forward_evals": int(num_steps), "grad_evals": int(num_steps)}


def blurred_log_likelihood(problem, prior, x: torch.Tensor, rho: float) -> torch.Tensor:
    """``log int p(y | z) N(z; x, rho^2 I) dz`` up to a constant common to all particles, for a linear model with
    Gaussian noise: ``-r^T (sigma_y^2 I + rho_p^2 A A^T)^{-1} r / 2`` with ``r = y - A u``, ``u = to_physical(x)``,
    ``rho_p = |c| rho``. Matrix-free through the damped pseudo-inverse (``delta = sigma_y^2 / rho_p^2``)::

        r^T (sigma_y^2 I + rho_p^2 A A^T)^{-1} r = (||r||^2 - <A^T r, A^T (A A^T + delta I)^{-1} r>) / sigma_y^2.
    """
    fm = problem.forward_model
    sigma_y = float(problem.noise.sigma)
    rho_p = physical_noise_level(prior, rho)
    with torch.no_grad():
        u = prior.to_physical(x)
        r = problem.y.to(u.dtype)[None] - fm(u)
        rr = r.reshape(len(r), -1).pow(2).sum(1)
        if rho_p > 0:
            proj = (fm.adjoint(r) * fm.pseudo_inverse(r, damping=(sigma_y / rho_p) ** 2)).reshape(len(r), -1).sum(1)
            rr = rr - proj
        return -0.5 * rr.clamp_min(0.0) / sigma_y**2


class SplittingSampler(Sampler):
    """Base of the samplers with a likelihood step (DAPS, PnP-DM, DiffPIR): its three settings, checked once; the
    refusal of problems the step does not apply to; the step's kind and, for Langevin, the data curvature at the
    start of a run."""

    def set_likelihood_step(self, likelihood_step: str, langevin_steps: int, step_scale: float) -> None:
        """Check and store ``likelihood_step`` (one of :data:`LIKELIHOOD_STEPS`), ``langevin_steps`` and
        ``step_scale`` (in (0, 1]: a larger step is unstable)."""
        if likelihood_step not in LIKELIHOOD_STEPS:
            raise SamplerConfigError(f"likelihood_step must be one of {', '.join(LIKELIHOOD_STEPS)}, "
                                     f"got {likelihood_step!r}")
        self.likelihood_step = likelihood_step
        self.langevin_steps = positive_int(langevin_steps, "langevin_steps")
        self.step_scale = positive_float(step_scale, "step_scale")
        if self.step_scale > 1:
            raise SamplerConfigError(f"step_scale must lie in (0, 1] (a larger Langevin step is unstable), "
                                     f"got {step_scale!r}")

    def check(self, problem, prior) -> None:
        """The likelihood step must apply to the problem (:func:`resolve_likelihood_step`)."""
        super().check(problem, prior)
        resolve_likelihood_step(self.likelihood_step, problem, type(self).__name__)

    def start(self, problem, prior, x: torch.Tensor, sigma: float) -> tuple[str, float, Counters]:
        """``(kind, curvature, counters)`` at the start of a run: the step's kind, and for Langevin the data term's
        curvature at the denoised particles ``D(x, sigma)`` with its cost (one NFE, 11 gradients per particle)."""
        kind = resolve_likelihood_step(self.likelihood_step, problem, type(self).__name__)
        if kind != "langevin":
            return kind, 0.0, Counters()
        n = len(x)
        curvature = data_curvature(problem, prior, denoise_batched(prior, x, sigma))
        return kind, curvature, Counters(nfe=n, forward_evals=11 * n, grad_evals=11 * n)

    def data_step(self, state, z: torch.Tensor, rho: float, sample: bool) -> tuple[torch.Tensor, dict]:
        """:func:`likelihood_step` with this sampler's settings and the state's kind and curvature."""
        return likelihood_step(state.kind, state.problem, state.prior, z, rho, state.generator,
                               num_steps=self.langevin_steps, curvature=state.curvature,
                               step_scale=self.step_scale, sample=sample)
