"""Plug-and-play diffusion models (PnP-DM; Wu, Sun, Chen, Zhang, Yue and Bouman, "Principled probabilistic
imaging using diffusion models as plug-and-play priors", NeurIPS 2024, Algorithm 1).

Split Gibbs sampling (Vono, Dobigeon and Chainais 2019) of the augmented target

    pi_rho(x, z) ∝ p(x) p(y | z) N(z; x, rho^2 I),

whose ``x``-marginal is the posterior under the blurred likelihood ``int p(y | z) N(z; x, rho^2) dz`` and tends to
the posterior as ``rho -> 0`` (for ``y = A x + sigma_y e``: the likelihood ``N(y; A x, sigma_y^2 I + rho^2 A A^T)``).
Each iteration ``k`` alternates::

    z ~ p(y | z) N(z; x, rho_k^2 I)         # likelihood step (samplers.splitting: exact or Langevin)
    x ~ p(x | z),  z = x + rho_k eps        # prior step: the denoising posterior, by reverse diffusion from rho_k

with ``rho_k`` annealed geometrically from ``rho_max`` to ``rho_min`` over the first ``anneal`` fraction of the
iterations and held at ``rho_min`` after (the paper: ``rho_k = max(rho_0 decay^k, rho_min)``).

Annealed importance weights (``reweight=True``, linear models with Gaussian noise; our addition). Each Gibbs sweep
leaves ``pi_rho`` invariant, but between well-separated modes it cannot move particles once ``rho`` is small, so the
mode weights freeze at those of a large ``rho`` (on the Gaussian-mixture benchmark: 15-70x the exact posterior's
sliced-Wasserstein floor). With the blurred likelihood ``L_rho(x) = N(y; A x, sigma_y^2 I + rho^2 A A^T)`` known in
closed form (:func:`samplers.splitting.blurred_log_likelihood`), the particles start as prior draws weighted by
``L_{rho_0}``, and every change of level multiplies the weights by ``L_{rho_k}(x) / L_{rho_{k-1}}(x)`` before the
sweep (annealed importance sampling, Neal 2001), with systematic resampling when the effective sample size falls
below ``resample_threshold * N`` (sequential Monte Carlo samplers, Del Moral, Doucet and Jasra 2006). The weighted
particles are then consistent for ``pi_{rho_min}`` as their number grows, whatever the mixing. The prior step
starts the reverse diffusion at level ``rho_k`` from ``x = z`` (the noisy image *is* a sample of the diffused
prior at that level given the clean one) and runs ``prior_steps`` ancestral steps on an EDM schedule down to
``sigma_min`` and 0 (:func:`samplers.steps.ancestral_step` with the Analytic-DPM variance). Returns the last ``x``
(with its importance weights when reweighted).
All noise levels are in the prior's model space; the likelihood step converts them to physical units.

Cost per particle and iteration: ``prior_steps`` NFE and one exact step (2 forward-model applications) or
``langevin_steps`` forward evaluations and gradients. No gradient through the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from samplers.base import Counters, State
from samplers.errors import SamplerConfigError
from samplers.schedules import karras_sigmas
from samplers.smc.resampling import effective_sample_size, normalise_log_weights, should_resample, systematic_resample
from samplers.splitting import SplittingSampler, blurred_log_likelihood, resolve_likelihood_step
from samplers.steps import analytic_variance, ancestral_step, denoise_batched
from samplers.validation import fraction_in, positive_float, positive_int

__all__ = ["PnPDM", "PnPDMState", "denoising_posterior_sample"]


@dataclass(kw_only=True)
class PnPDMState(State):
    """:class:`~samplers.base.State` with the coupling levels ``rho_k``, the likelihood step's kind and the data
    curvature (the Langevin step size; 0 for the exact step)."""

    rhos: list[float]
    kind: str
    curvature: float
    min_ess: float = 0.0
    resamples: int = 0


def denoising_posterior_sample(prior, z: torch.Tensor, rho: float, num_steps: int, generator,
                               schedule_rho: float = 7.0) -> tuple[torch.Tensor, int]:
    """A draw from ``p(x | z)`` for ``z = x + rho eps``: reverse diffusion from level ``rho`` started at ``z``,
    ``num_steps`` ancestral steps (Analytic-DPM variance) down an EDM schedule to ``prior.sigma_min`` and 0.
    Returns ``(x, nfe per particle)``."""
    if rho <= prior.sigma_min * (1 + 1e-9):
        return denoise_batched(prior, z, rho), 1
    levels = karras_sigmas(max(int(num_steps) - 1, 1), prior.sigma_min, rho, schedule_rho).tolist()
    x, nfe = z, 0
    with torch.no_grad():
        for s, s_next in zip(levels[:-1], levels[1:], strict=True):
            x0 = denoise_batched(prior, x, s)
            x = ancestral_step(x, x0, s, s_next, generator, variance=analytic_variance(x, x0, s, s_next))
            nfe += 1
    return x, nfe


class PnPDM(SplittingSampler):
    """Split Gibbs sampling with the diffusion prior as the denoising-posterior step (module docstring).

    Parameters
    ----------
    num_steps : Gibbs iterations
    rho_max, rho_min : first and last coupling level ``rho`` (model-space units; ``rho_max=None``: the smaller of
        10 and ``prior.sigma_max``)
    anneal : fraction of the iterations over which ``rho`` decays from ``rho_max`` to ``rho_min``
    prior_steps : reverse-diffusion steps of each prior step
    likelihood_step, langevin_steps, step_scale : the likelihood step, as in :class:`samplers.DAPS`
    reweight : annealed importance weights where the blurred likelihood is known (linear model, Gaussian noise)
    resample_threshold : resample when the effective sample size falls below this fraction of the particles
    init_steps : reverse-diffusion steps of the initial prior draws (reweighted runs)

    Example::

        import torch
        from priors import GaussianPrior
        from forward_models import MatrixOperator, Gaussian, InverseProblem
        from samplers import PnPDM
        prior = GaussianPrior(torch.zeros(4))
        problem = InverseProblem.simulate(MatrixOperator(torch.randn(2, 4, dtype=torch.float64)), Gaussian(0.1),
                                          torch.ones(4, dtype=torch.float64), seed=0)
        post = PnPDM(num_steps=30).sample(problem, prior, 64, seed=0)
    """

    static_fields = ("rhos",)

    def __init__(self, num_steps: int = 40, rho_max: float | None = None, rho_min: float = 0.05,
                 anneal: float = 0.8, prior_steps: int = 10, likelihood_step: str = "auto",
                 langevin_steps: int = 20, step_scale: float = 0.5, reweight: bool = True,
                 resample_threshold: float = 0.5, init_steps: int = 100):
        self.steps = positive_int(num_steps, "num_steps")
        self.rho_max = None if rho_max is None else positive_float(rho_max, "rho_max")
        self.rho_min = positive_float(rho_min, "rho_min")
        if self.rho_max is not None and self.rho_max < self.rho_min:
            raise SamplerConfigError(f"need rho_min <= rho_max, got {rho_min!r} and {rho_max!r}")
        self.anneal = fraction_in(anneal, "anneal", 0.0, 1.0, closed="right")
        self.prior_steps = positive_int(prior_steps, "prior_steps")
        self.set_likelihood_step(likelihood_step, langevin_steps, step_scale)
        self.reweight = bool(reweight)
        self.resample_threshold = fraction_in(resample_threshold, "resample_threshold")
        self.init_steps = positive_int(init_steps, "init_steps")

    def num_steps(self) -> int:
        """One step per Gibbs iteration."""
        return self.steps

    def coupling_levels(self, prior) -> list[float]:
        """``rho_k``, k = 0..num_steps-1: geometric from ``rho_max`` to ``rho_min`` over ``anneal * num_steps``
        iterations, then constant."""
        hi = min(10.0, float(prior.sigma_max)) if self.rho_max is None else self.rho_max
        lo = min(self.rho_min, hi)
        n_anneal = max(int(round(self.anneal * self.steps)), 1)
        ratio = (lo / hi) ** (1.0 / max(n_anneal - 1, 1))
        return [hi * ratio ** min(k, n_anneal - 1) if n_anneal > 1 else lo for k in range(self.steps)]

    def weighted(self, kind: str) -> bool:
        """Whether a run with likelihood step ``kind`` carries annealed importance weights (``reweight`` and the
        exact step)."""
        return self.reweight and kind == "exact"

    def init(self, problem, prior, num_samples, generator) -> PnPDMState:
        """Particles: prior draws (reverse diffusion from ``sigma_max``, ``init_steps`` steps) weighted by
        ``L_{rho_0}`` when reweighted, else ``x ~ N(0, rho_0^2 I)``; for the Langevin step, the data term's
        curvature at their denoised estimates."""
        kind = resolve_likelihood_step(self.likelihood_step, problem, type(self).__name__)
        rhos = self.coupling_levels(prior)
        counters, log_w = Counters(), None
        if self.weighted(kind):
            z = prior.sigma_max * torch.randn(num_samples, *prior.shape, generator=generator, dtype=prior.dtype,
                                              device=prior.device)
            x, nfe = denoising_posterior_sample(prior, z, prior.sigma_max, self.init_steps, generator)
            log_w = blurred_log_likelihood(problem, prior, x, rhos[0])
            counters = Counters(nfe=num_samples * nfe, forward_evals=3 * num_samples)
        else:
            x = rhos[0] * torch.randn(num_samples, *prior.shape, generator=generator, dtype=prior.dtype,
                                      device=prior.device)
        kind, curvature, cost = self.start(problem, prior, x, rhos[0])
        counters = counters.add(**cost.as_dict())
        if kind == "langevin":  # start the chain at the denoised particles, where the curvature was taken
            x = denoise_batched(prior, x, rhos[0])
            counters = counters.add(nfe=num_samples)
        min_ess = float(num_samples) if log_w is None else effective_sample_size(log_w)
        return PnPDMState(x, 0, problem, prior, generator, counters=counters, rhos=rhos, kind=kind,
                          curvature=curvature, log_weights=log_w, min_ess=min_ess)

    def step(self, state: PnPDMState) -> PnPDMState:
        """One Gibbs sweep at ``rho_k`` (likelihood step, then prior step), after the importance reweighting
        from ``rho_{k-1}`` and, when the weights have degenerated, a systematic resampling."""
        k, rho = state.step, state.rhos[state.step]
        x, log_w, extra, min_ess, resamples = state.x, state.log_weights, 0, state.min_ess, state.resamples
        n = len(x)
        if log_w is not None:
            if k > 0 and rho != state.rhos[k - 1]:
                log_w = log_w + blurred_log_likelihood(state.problem, state.prior, x, rho) \
                    - blurred_log_likelihood(state.problem, state.prior, x, state.rhos[k - 1])
                extra = 6
            log_w = normalise_log_weights(log_w, type(self).__name__, k + 1)
            min_ess = min(min_ess, effective_sample_size(log_w))
            if should_resample(log_w, self.resample_threshold):
                x = x[systematic_resample(log_w, state.generator)]
                log_w = torch.zeros_like(log_w)
                resamples += 1
        z, cost = self.data_step(state, x, rho, sample=True)
        x, nfe = denoising_posterior_sample(state.prior, z, rho, self.prior_steps, state.generator)
        return self.advance(state, x=x, nfe=n * nfe, forward_evals=n * (cost["forward_evals"] + extra),
                            grad_evals=n * cost["grad_evals"], log_weights=log_w, min_ess=min_ess,
                            resamples=resamples)

    def finalize(self, state: PnPDMState):
        """The weighted particles, with the smallest effective sample size and the number of resamplings."""
        post = super().finalize(state)
        if state.log_weights is not None:
            post.diagnostics = {**post.diagnostics, "min_ess": float(state.min_ess),
                                "resamples": int(state.resamples)}
        return post
