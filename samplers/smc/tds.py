"""Twisted diffusion sampler (TDS; Wu, Trippe, Naesseth, Blei and Cunningham, NeurIPS 2023), in sigma space.

Twist (a Gaussian guess of ``p(y | x_s)`` through the denoiser's estimate ``x0_hat = D(x_s, s)``)::

    p~_s(y | x_s) = N(y; F(x0_hat), Sigma_s),
    Sigma_s = sigma_y^2 I + kappa s^2 A A^T     (linear F = A, in A's singular basis)
    Sigma_s = (sigma_y^2 + kappa s^2) I         (non-linear F, or operators too large to decompose)

``kappa s^2`` stands for ``Cov(x0 | x_s)``: in sigma space ``(1 - abar)/abar = s^2`` (the paper's
``r_t``), exact as ``s -> 0`` for any prior with unit-scale components; ``kappa = 0`` gives the plain
``p(y | x0_hat)`` twist. For non-linear ``F`` the scalar inflation is ``kappa s^2 g^2``, with ``g`` the
operator's gain: ``operator_gain="auto"`` (default) estimates ``g = ||J||_2`` of ``x0 -> F(to_physical(x0))``
at the prior's mean by power iteration on ``J^T J`` (:func:`estimate_operator_gain`: ``J v`` by a
finite difference, ``J^T u`` by a VJP; 8 iterations, 17 forward-model calls and 8 VJPs once per problem,
counted in the diagnostics); a number fixes ``g`` (``1.0``: the unit-gain twist). Without the gain, the
twist of a high-gain model (velocities in m/s, pressures in the data) is far too narrow.

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
import warnings
from dataclasses import dataclass

import torch

from forward_models.noise import Gaussian
from samplers.errors import SamplerConfigError, SamplerError
from samplers.smc.base import Move, SMCSampler
from samplers.smc.linear_gaussian import LinearGaussian
from samplers.steps import sigma_batch
from samplers.validation import non_negative_float, positive_float

__all__ = ["TwistedDiffusionSampler", "TwistModel", "estimate_operator_gain"]

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class TwistModel:
    """The twist's per-problem constants: the singular basis ``lg`` (linear models small enough to decompose),
    else the operator gain ``gain`` of the scalar twist and the model calls ``setup_calls = (forward, grad)``
    its estimate took."""

    lg: LinearGaussian | None = None
    gain: float = 1.0
    setup_calls: tuple = (0, 0)


def estimate_operator_gain(problem, prior, iterations: int = 8, eps: float = 1e-3, calls: dict | None = None) -> float:
    """Spectral norm ``||J||_2`` of ``G(x0) = F(prior.to_physical(x0))`` at ``x_ref = D(0, sigma_max)`` (the
    prior's mean), by power iteration on ``J^T J``: ``J v ~ (G(x_ref + h v) - G(x_ref)) / h`` with
    ``h = eps * max(1, ||x_ref||)`` for unit ``v``, ``J^T u`` by a vector-Jacobian product (Golub and Van
    Loan, Matrix Computations, 4th ed., sec. 8.2.1). Returns the estimate, 0.0 when the Jacobian vanishes
    there; raises :class:`samplers.errors.SamplerError` when the model returns non-finite values.
    ``calls`` (optional dict) accumulates the model calls made, under ``"forward"`` and ``"grad"``.
    """
    calls = {} if calls is None else calls
    calls.setdefault("forward", 0)
    calls.setdefault("grad", 0)
    fm = problem.forward_model
    shape = tuple(prior.shape)
    with torch.no_grad():
        zero = torch.zeros(1, *shape, dtype=prior.dtype, device=prior.device)
        x_ref = prior.denoise(zero, sigma_batch(float(prior.sigma_max), zero))

    def g_of(x):
        calls["forward"] += 1
        return fm(prior.to_physical(x))

    with torch.no_grad():
        base = g_of(x_ref)
    if not bool(torch.isfinite(base).all()):
        raise SamplerError("the forward model returned non-finite values at the prior's mean; cannot estimate its gain")
    h = eps * max(1.0, float(x_ref.norm()))
    gen = torch.Generator(device=x_ref.device).manual_seed(0)
    v = torch.randn(x_ref.shape, generator=gen, dtype=x_ref.dtype, device=x_ref.device)
    v = v / v.norm()
    sigma = 0.0
    for _ in range(int(iterations)):
        with torch.no_grad():
            jv = (g_of(x_ref + h * v) - base) / h
        with torch.enable_grad():
            xg = x_ref.detach().requires_grad_(True)
            (jtjv,) = torch.autograd.grad(g_of(xg), xg, grad_outputs=jv.to(base.dtype))
        calls["grad"] += 1
        norm = float(jtjv.norm())
        if not math.isfinite(norm):
            raise SamplerError("the forward model's Jacobian at the prior's mean is not finite; cannot estimate its "
                               "gain (pass operator_gain=<number> to TwistedDiffusionSampler)")
        if norm == 0.0:
            return 0.0
        sigma = math.sqrt(norm)  # ||J^T J v|| -> sigma_max(J)^2 for the dominant v
        v = jtjv / norm
    return sigma


class TwistedDiffusionSampler(SMCSampler):
    """TDS: twisted SMC with gradient-guided proposals (module docstring).

    Parameters
    ----------
    num_steps : EDM levels
    kappa : twist variance inflation ``Sigma_s = sigma_y^2 I + kappa s^2 A A^T`` (non-negative)
    operator_gain : non-linear models: ``"auto"`` (default, :func:`estimate_operator_gain`) or a positive
        number ``g`` in ``Sigma_s = (sigma_y^2 + kappa s^2 g^2) I``
    resample_threshold : resample when ESS < threshold * N
    rho : EDM schedule exponent
    reverse_variance : ``"analytic"`` (default) or ``"ancestral"``, the kernel variance ``v``
        (:class:`samplers.smc.SMCSampler`)

    Example::

        from inverse.problems import gmm_case
        from samplers import TwistedDiffusionSampler
        case = gmm_case(8, 2, seed=0)
        post = TwistedDiffusionSampler(num_steps=50).sample(case.problem, case.prior, 128, seed=0)
        post.diagnostics["log_evidence"], case.log_evidence
    """

    needs_gradient = True

    def __init__(self, num_steps: int = 100, kappa: float = 1.0, resample_threshold: float = 0.5, rho: float = 7.0,
                 reverse_variance: str = "analytic", operator_gain: float | str = "auto"):
        super().__init__(num_steps, resample_threshold, rho, reverse_variance)
        self.kappa = non_negative_float(kappa, "kappa")
        if isinstance(operator_gain, str) and operator_gain != "auto":
            raise SamplerConfigError(f"operator_gain must be 'auto' or a positive number, got {operator_gain!r}")
        self.operator_gain = "auto" if operator_gain == "auto" else positive_float(operator_gain, "operator_gain")

    def check(self, problem, prior) -> None:
        """Gaussian noise (the twist is Gaussian) and a differentiable model."""
        if not isinstance(problem.noise, Gaussian):
            raise SamplerConfigError("TwistedDiffusionSampler's twist needs Gaussian noise, "
                                     f"got {type(problem.noise).__name__}")
        super().check(problem, prior)

    def setup(self, problem, prior, sigmas) -> TwistModel:
        """The singular basis for linear models small enough to decompose, else the scalar twist."""
        if problem.forward_model.linear:
            try:
                return TwistModel(lg=LinearGaussian.from_problem(problem, prior, "TwistedDiffusionSampler"))
            except ValueError:
                pass
        if self.operator_gain == "auto":  # its model calls are counted at the initial step
            calls = {}
            gain = estimate_operator_gain(problem, prior, calls=calls)
            if gain == 0.0:
                warnings.warn("TwistedDiffusionSampler: the forward model's Jacobian vanishes at the prior's mean, so "
                              "its gain cannot be estimated there; using gain 1 (pass operator_gain=<number>)",
                              stacklevel=3)
                gain = 1.0
            return TwistModel(gain=gain, setup_calls=(calls["forward"], calls["grad"]))
        return TwistModel(gain=self.operator_gain)

    def log_twist(self, problem, prior, model, x0: torch.Tensor, s: float) -> torch.Tensor:
        """``log p~_s(y | x_s)`` from ``x0 = D(x_s, s)`` (module docstring); differentiable in ``x0``."""
        lg = model.lg
        sy2 = problem.noise.sigma ** 2
        if lg is not None:
            return lg.log_twist(lg.project(x0), sy2 + self.kappa * s**2 * lg.s**2)
        y_clean = problem.forward_model(prior.to_physical(x0))
        r = (problem.y.to(y_clean.dtype)[None] - y_clean).reshape(len(x0), -1)
        var = sy2 + self.kappa * s**2 * model.gain ** 2
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
        fwd, grads = model.setup_calls
        return Move(x, cache["log_twist"], cache, nfe=n, forward_evals=n + fwd, grad_evals=n + grads)

    def move(self, state, x, cache, aux, s, s_next) -> Move:
        """Guided ancestral step and the twisted weight; the last step is ``x0 = D(x)`` weighted by ``p(y|x0)``."""
        problem, prior, model = state.problem, state.prior, state.model
        x0, n = cache["x0"], len(x)
        if s_next <= 0:
            with torch.no_grad():
                ll = problem.log_likelihood(prior.to_physical(x0))
            return Move(x0, ll - cache["log_twist"], {}, forward_evals=n)
        ratio = (s_next / s) ** 2
        mu = x0 + ratio * (x - x0)
        # estimated on the particles before resampling, whose denoised values are in the state's cache
        v = self.kernel_variance(state.x, state.cache["x0"], s, s_next, state.log_weights)
        shift = (s**2 - s_next**2) * cache["grad"]
        noise = math.sqrt(v) * torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=state.generator)
        x_new = mu + shift + noise
        # log N(x'; mu, v) - log N(x'; mu + shift, v) with x' - mu - shift = noise
        log_pq = -((noise + shift) ** 2 - noise**2).reshape(n, -1).sum(1) / (2.0 * v)
        new = self._twist_and_grad((problem, prior, model), x_new, s_next)
        incr = log_pq + new["log_twist"] - cache["log_twist"]
        return Move(x_new, incr, new, nfe=n, forward_evals=n, grad_evals=n)

    def finalize(self, state):
        """The SMC posterior (:meth:`samplers.smc.base.SMCSampler.finalize`); for non-linear models (or linear ones
        too large for the SVD) ``diagnostics["operator_gain"]`` records the gain ``g`` the twist used."""
        post = super().finalize(state)
        if state.model.lg is None:
            post.diagnostics = {**post.diagnostics, "operator_gain": float(state.model.gain)}
        return post
