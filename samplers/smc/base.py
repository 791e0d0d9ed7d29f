"""Sequential Monte Carlo with diffusion priors: the state and the step every SMC sampler composes.

A diffusion SMC sampler runs ``N`` weighted particles down a sigma grid ``s_0 > s_1 > ... > s_K = 0``
(sigma space, ``x_s = x0 + s eps``). One step from ``s`` to ``s'`` (:func:`smc_step`) composes four
functions (:class:`SMCKernel`)::

    1. weight     log w_i += a_i                 pre-move weight (fully adapted samplers; else none)
    2. resample   ancestors ~ resample(w)        when ESS < threshold * N (systematic by default)
    3. move       x_i' ~ q(. | x_i),  log w_i += b_i
    4. mcmc       x_i' ~ K(. | x_i')             optional move invariant for the current target

and the evidence estimate multiplies the weighted means of the incremental weights (Del Moral 2004;
Chopin and Papaspiliopoulos 2020, ch. 10):

    log Z_hat = log mean_i exp(l0_i) + sum_steps log sum_i W_i exp(c_i),   W = normalised weights,

which stays unbiased for ``Z`` with or without resampling because the normalised weights are
uniform right after a resampling (:mod:`samplers.smc.resampling`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from samplers.base import Sampler, State
from samplers.errors import SamplerConfigError
from samplers.posterior import Posterior
from samplers.schedules import karras_sigmas
from samplers.smc.resampling import (
    effective_sample_size,
    log_mean_weight,
    normalise_log_weights,
    systematic_resample,
    take,
)
from samplers.steps import analytic_variance, ancestral_variance
from samplers.validation import fraction_in, positive_float, positive_int

__all__ = ["Move", "SMCState", "SMCKernel", "smc_step", "SMCSampler", "WeightCollapseWarning", "REVERSE_VARIANCES"]

#: choices of ``reverse_variance`` (:class:`SMCSampler`)
REVERSE_VARIANCES = ("analytic", "ancestral")


class WeightCollapseWarning(RuntimeWarning):
    """SMC weights collapsed onto (nearly) one particle at some step."""


@dataclass
class Move:
    """What a move returns: new particles, post-move log-weight increments, the per-particle cache for
    the next step (tensors indexed by particle, resampled with them) and the cost."""

    x: torch.Tensor
    log_increment: torch.Tensor | None = None
    cache: dict = dataclasses.field(default_factory=dict)
    nfe: int = 0
    forward_evals: int = 0
    grad_evals: int = 0


@dataclass(kw_only=True)
class SMCState(State):
    """:class:`~samplers.base.State` of a diffusion SMC sampler: the grid, the sampler's per-problem
    constants ``model`` (rebuilt by ``init``, a typed object of each sampler), the per-particle ``cache``,
    the ESS before each resampling decision, the running log-evidence and the number of resamplings."""

    sigmas: list[float]
    model: object
    cache: dict
    ess_history: list[float]
    log_evidence: float
    num_resampling: int


@dataclass(frozen=True)
class SMCKernel:
    """The functions one SMC step composes (module docstring).

    ``move(state, x, cache, aux, s, s_next) -> Move`` moves the (resampled) particles; ``weight(state, s,
    s_next) -> (log increment or None, aux)`` weights them before the move (``aux``: per-particle tensors
    handed to ``move``, resampled with the particles); ``resample(log_weights, generator) -> indices``;
    ``mcmc(state, move) -> Move`` moves the weighted particles by a kernel that leaves the current target
    invariant (its ``log_increment`` is ignored, its cost added).
    """

    move: Callable
    weight: Callable | None = None
    resample: Callable = systematic_resample
    mcmc: Callable | None = None


def smc_step(state: SMCState, kernel: SMCKernel, threshold: float, who: str) -> tuple[Move, dict]:
    """Weight, resample if ``ESS < threshold * N``, move, reweight, optional MCMC move.

    Returns the move (particles, cache and cost of the step) and the new values of the SMC fields.
    """
    s, s_next = state.sigmas[state.step], state.sigmas[state.step + 1]
    lw, log_z = state.log_weights, state.log_evidence
    pre, aux = kernel.weight(state, s, s_next) if kernel.weight is not None else (None, {})
    if pre is not None:
        pre = pre.detach().to(torch.float64)
        log_z += log_mean_weight(lw, pre)
        lw = normalise_log_weights(lw + pre, who, state.step + 1)
    ess = effective_sample_size(lw)
    x, cache, n_res = state.x, state.cache, state.num_resampling
    if ess < threshold * len(lw):
        idx = kernel.resample(lw, state.generator)
        x, cache, aux = x[idx], take(cache, idx), take(aux, idx)
        lw = torch.full_like(lw, -math.log(len(lw)))
        n_res += 1
    mv = kernel.move(state, x, cache, aux, s, s_next)
    if mv.log_increment is not None:
        post = mv.log_increment.detach().to(torch.float64)
        log_z += log_mean_weight(lw, post)
        lw = normalise_log_weights(lw + post, who, state.step + 1)
    if kernel.mcmc is not None:
        mc = kernel.mcmc(dataclasses.replace(state, log_weights=lw), mv)
        mv = Move(mc.x, mv.log_increment, mc.cache, mv.nfe + mc.nfe, mv.forward_evals + mc.forward_evals,
                  mv.grad_evals + mc.grad_evals)
    return mv, {"log_weights": lw, "cache": mv.cache, "log_evidence": log_z, "num_resampling": n_res,
                "ess_history": state.ess_history + [ess]}


class SMCSampler(Sampler):
    """Base class of diffusion SMC samplers: the grid, the initial weighting and the composed step.

    A subclass implements :meth:`initial` (particles at ``s_0``, their log-weights, cache) and
    :meth:`move`; optionally :meth:`setup` (per-problem constants, a typed object kept in
    ``state.model``), :meth:`weight` (a weight known before the move, for fully adapted samplers) and
    ``mcmc`` (a rejuvenation kernel, :class:`SMCKernel`). The posterior carries the final log-weights.

    Parameters
    ----------
    num_steps : number of EDM noise levels (``karras_sigmas``)
    resample_threshold : resample when ESS < threshold * N (0 never, 1 whenever weights differ)
    rho : EDM schedule exponent
    reverse_variance : variance of the prior's reverse kernel that the target path is built from:
        ``"analytic"`` (default; :func:`samplers.steps.analytic_variance`, Bao et al. 2022) or
        ``"ancestral"`` (the DDPM posterior variance, which under-disperses)

    Example: bootstrap SMC that reweights ancestral prior steps by the exact likelihood at the end::

        import torch
        from samplers.smc import SMCSampler, Move
        from samplers.steps import ancestral_step, sigma_batch

        class Bootstrap(SMCSampler):
            def initial(self, problem, prior, n, generator, model, sigmas):
                x = sigmas[0] * torch.randn(n, *prior.shape, generator=generator, dtype=prior.dtype)
                return Move(x, torch.zeros(n, dtype=prior.dtype))
            def move(self, state, x, cache, aux, s, s_next):
                x0 = state.prior.denoise(x, sigma_batch(s, x))
                x = ancestral_step(x, x0, s, s_next, state.generator)
                ll = state.problem.log_likelihood(state.prior.to_physical(x)) if s_next == 0 else 0 * x0[:, 0]
                return Move(x, ll, nfe=len(x))
    """

    static_fields = ("model", "sigmas")
    #: optional MCMC move after each weighting (:class:`SMCKernel`)
    mcmc: Callable | None = None

    def __init__(self, num_steps: int = 100, resample_threshold: float = 0.5, rho: float = 7.0,
                 reverse_variance: str = "analytic"):
        self.steps = positive_int(num_steps, "num_steps")
        if reverse_variance not in REVERSE_VARIANCES:
            raise SamplerConfigError(f"reverse_variance must be one of {REVERSE_VARIANCES}, got {reverse_variance!r}")
        self.reverse_variance = reverse_variance
        self.resample_threshold = fraction_in(resample_threshold, "resample_threshold")
        self.rho = positive_float(rho, "rho")

    def num_steps(self) -> int:
        """Number of EDM levels."""
        return self.steps

    def schedule(self, prior) -> list[float]:
        """The descending sigma grid ending at 0: the EDM schedule."""
        return karras_sigmas(self.steps, prior.sigma_min, prior.sigma_max, self.rho).tolist()

    def setup(self, problem, prior, sigmas: list[float]) -> object:
        """Per-problem constants computed once (e.g. an SVD); ``None`` by default."""
        return None

    def initial(self, problem, prior, n: int, generator, model, sigmas) -> Move:  # pragma: no cover
        """Particles at ``sigmas[0]`` with their initial log-weights (``log_increment``) and cache."""
        raise NotImplementedError

    def weight(self, state: SMCState, s: float, s_next: float):
        """``(log-weight increment known before the move, aux)``: none by default (:class:`SMCKernel`)."""
        return None, {}

    def move(self, state: SMCState, x, cache: dict, aux: dict, s: float, s_next: float) -> Move:  # pragma: no cover
        """Move particles ``x`` (already resampled) from ``s`` to ``s_next``; return the post-move weights."""
        raise NotImplementedError

    def kernel_variance(self, x: torch.Tensor, x0: torch.Tensor, s: float, s_next: float,
                        log_weights: torch.Tensor | None = None) -> float:
        """Variance of the reverse kernel from ``s`` to ``s_next`` (``reverse_variance``); the analytic one
        is estimated on particles ``x`` with their denoised ``x0``, weighted by ``log_weights`` (None: equal)."""
        if self.reverse_variance == "ancestral":
            return ancestral_variance(s, s_next)
        return analytic_variance(x, x0, s, s_next, log_weights)

    def done(self, state: SMCState) -> bool:
        """Whether every level of the state's grid has been visited."""
        return state.step >= len(state.sigmas) - 1

    def init(self, problem, prior, num_samples, generator) -> SMCState:
        """Draw the initial particles, weight them and start the evidence estimate."""
        sigmas = self.schedule(prior)
        model = self.setup(problem, prior, sigmas)
        mv = self.initial(problem, prior, num_samples, generator, model, sigmas)
        lw = mv.log_increment if mv.log_increment is not None else mv.x.new_zeros(num_samples)
        lw = lw.detach().to(torch.float64)
        log_z = float(torch.logsumexp(lw, 0)) - math.log(num_samples)
        state = SMCState(mv.x.detach(), 0, problem, prior, generator, log_weights=torch.log_softmax(lw, 0),
                         sigmas=sigmas, model=model, cache=mv.cache, ess_history=[], log_evidence=log_z,
                         num_resampling=0)
        return dataclasses.replace(state, counters=state.counters.add(mv.nfe, mv.forward_evals, mv.grad_evals))

    def step(self, state: SMCState) -> SMCState:
        """One composed SMC step (:func:`smc_step`)."""
        kernel = SMCKernel(self.move, self.weight, systematic_resample, self.mcmc)
        mv, fields = smc_step(state, kernel, self.resample_threshold, type(self).__name__)
        return self.advance(state, x=mv.x, nfe=mv.nfe, forward_evals=mv.forward_evals, grad_evals=mv.grad_evals,
                            **fields)

    def finalize(self, state: SMCState) -> Posterior:
        """Weighted posterior with diagnostics ``ess_history``, ``log_evidence``, ``num_resampling``,
        ``min_ess`` / ``min_ess_step`` and ``weight_collapse``: true (with a :class:`WeightCollapseWarning`)
        when the ESS fell below ``max(1.5, N / 100)`` at some step, i.e. nearly one particle carried the weight.
        Samplers in an operator's singular basis add the basis's record
        (:meth:`~samplers.smc.linear_gaussian.LinearGaussian.diagnostics`: ``basis_s``, ``basis_reused``,
        ``basis_kind``, ``basis_rank``, ``basis_truncation`` when truncated)."""
        post = super().finalize(state)
        ess = state.ess_history + [effective_sample_size(state.log_weights)]
        n = len(state.log_weights)
        k = min(range(len(ess)), key=ess.__getitem__)
        collapse = ess[k] < max(1.5, n / 100.0)
        post.diagnostics = {**post.diagnostics, "ess_history": ess, "final_ess": ess[-1],
                            "log_evidence": float(state.log_evidence), "num_resampling": int(state.num_resampling),
                            "num_levels": len(state.sigmas) - 1,
                            "min_ess": float(ess[k]), "min_ess_step": int(k), "weight_collapse": bool(collapse)}
        lg = getattr(state.model, "lg", None)
        if lg is not None:  # the operator's decomposition: its kind, cost, reuse and any truncation
            post.diagnostics.update(lg.diagnostics())
        if collapse:
            warnings.warn(f"{type(self).__name__}: the particle weights collapsed (ESS {ess[k]:.2f} of {n} at step "
                          f"{k}); use more particles or steps", WeightCollapseWarning, stacklevel=2)
        return post
