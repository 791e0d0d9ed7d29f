"""Approximation-free ensemble sampler (after Chen, Ren, Min, Ying and Izzo 2025, "Solving inverse problems
via diffusion-based priors: an approximation-free ensemble sampling approach", arXiv 2506.03979).

The paper's algorithm (arXiv 2506.03979v2, Sections 3.1-3.2, Eq. 3.6 and Algorithms 1-2):

- targets ``q_s(x) ∝ p_s(x) exp(-mu(x))``: the noised prior times the *fixed* likelihood
  ``mu(x) = -log p(y | x)`` evaluated at the noisy state itself (no denoiser);
- Stage I: an exact draw from ``N(0, rho^2 I) exp(-mu)`` (Gaussian for a linear model);
- Stage II: particles follow the reverse SDE with drift ``H - g^2 grad mu`` (``H = g^2 score``, the
  *modified diffusion term*), and log-weights grow at the rate
  ``g^2 / 2 (||grad mu||^2 - lap mu) - H . grad mu`` (the *reweighting term*); resampling by ESS.

In our sigma parametrisation (``x_s = x0 + s eps``) one step from ``s`` to ``s'`` carries the variance
``h = s^2 - s'^2``. For a linear-Gaussian model the Euler step of Stage II is the first-order expansion
of an exact discrete step, which is what this module runs: the ancestral kernel ``N(m, v I)`` tilted by
the potential (sampled exactly in the singular basis), with the pre-move weight
``log int N(x'; m, v I) G'(x') dx' - log G(x)``; expanding it in ``h`` gives ``h`` times the paper's rate.
The paths, one knob ``inflation = c``:

    G_s(x) = N(y; A x, sigma_y^2 I + c s^2 A A^T),

the likelihood of the measurement noised to ``c`` times the particles' level (``y_s = y + sqrt(c) s A eps``).
``G_0`` is the exact likelihood whatever ``c``, so the last target is always the posterior.

- ``c = 0`` is the paper's ``G_s = p(y | x)``. In discrete time its weights behave like ``1 / p(y | x)``
  whenever the step variance in an observed direction, ``v s_i^2``, exceeds ``sigma_y^2``: a weight of
  infinite variance, and the ensemble collapses unless ``h s_i^2 << sigma_y^2`` at every step, i.e.
  ~``(sigma_max / sigma_y)^2`` steps (the paper's continuous-time analysis).
- ``c > 0`` (our choice): ``G_s`` widens with ``s`` as fast as the particles spread, so each step's weights
  stay bounded. Larger ``c`` leaves the intermediate targets closer to the noised *prior* and defers the
  conditioning to lower noise levels, which needs more particles. Default ``c = 1``; larger values suit
  ensembles of thousands (docs/benchmarks/studies.md).

Moves (``proposal``): ``"tilted"`` (default: the exact tilted kernel above, resampling before the move,
:mod:`samplers.smc.linear_twist`) or ``"prior"`` (unconditional ancestral steps weighted by
``G_{s'}(x') / G_s(x)``: bootstrap SMC).

Resampling is systematic when the ESS drops below ``resample_threshold * N``; the evidence estimate is
of ``p(y)``. One NFE per particle and step, no gradients. Needs a linear model with Gaussian noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from samplers.errors import SamplerConfigError
from samplers.smc.base import Move
from samplers.smc.linear_twist import LinearTwistSMC, TwistPath
from samplers.steps import ancestral_step, sigma_batch
from samplers.validation import non_negative_float

__all__ = ["ApproximationFreeEnsemble", "NoisedLikelihoodPath"]

_PROPOSALS = ("tilted", "prior")


@dataclass(frozen=True)
class NoisedLikelihoodPath(TwistPath):
    """``G_{s_k}(x) = N(y; A x, sigma_y^2 I + c s_k^2 A A^T)`` in the singular basis (module docstring)."""

    inflation: float

    def twist(self, k):
        """Variances ``sigma_y^2 + c s_k^2 s_i^2``, every coordinate active."""
        lg = self.lg
        var = lg.sigma_y**2 + self.inflation * self.sigmas[k] ** 2 * lg.s**2
        return var, torch.ones_like(var, dtype=torch.bool)

    def log_g(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """``log G_{s_k}(x)`` per particle."""
        var, active = self.twist(k)
        return self.lg.log_twist(self.lg.project(x), var, active)


class ApproximationFreeEnsemble(LinearTwistSMC):
    """Weighted ensemble along the noised-measurement path ``p_s(x) N(y; A x, sigma_y^2 + c s^2 A A^T)``.

    Parameters
    ----------
    num_steps : EDM levels
    proposal : ``"tilted"`` (kernel tilted by the next potential) or ``"prior"`` (bootstrap)
    inflation : ``c >= 0`` of ``G_s = N(y; A x, sigma_y^2 + c s^2 A A^T)`` (default 1; 0 is the paper's
        ``G_s = p(y | x)``, which collapses at practical step counts: module docstring)
    resample_threshold : resample when ESS < threshold * N
    rho : EDM schedule exponent
    reverse_variance : ``"analytic"`` (default) or ``"ancestral"`` (:class:`samplers.smc.SMCSampler`)

    Example::

        from inverse.problems import gmm_case
        from samplers import ApproximationFreeEnsemble
        case = gmm_case(8, 2, seed=0)
        post = ApproximationFreeEnsemble(num_steps=50).sample(case.problem, case.prior, 256, seed=0)
        post.diagnostics["log_evidence"], case.log_evidence
    """

    def __init__(self, num_steps: int = 100, proposal: str = "tilted", resample_threshold: float = 0.5,
                 rho: float = 7.0, reverse_variance: str = "analytic", inflation: float = 1.0):
        super().__init__(num_steps, resample_threshold, rho, reverse_variance)
        if proposal not in _PROPOSALS:
            raise SamplerConfigError(f"proposal must be one of {_PROPOSALS}, got {proposal!r}")
        self.proposal = proposal
        self.inflation = non_negative_float(inflation, "inflation")

    def setup(self, problem, prior, sigmas) -> NoisedLikelihoodPath:
        """The singular basis and the path of noised likelihoods."""
        return NoisedLikelihoodPath(self.basis(problem, prior), sigmas, self.inflation)

    def initial(self, problem, prior, n, generator, model, sigmas) -> Move:
        """Tilted: exact draw from ``N(0, s_0^2) G_{s_0}``; prior: ``N(0, s_0^2)`` weighted by ``G_{s_0}``."""
        if self.proposal == "tilted":
            return super().initial(problem, prior, n, generator, model, sigmas)
        x = sigmas[0] * torch.randn(n, *prior.shape, generator=generator, dtype=prior.dtype, device=prior.device)
        return Move(x, model.log_g(0, x), forward_evals=n)

    def weight(self, state, s, s_next):
        """Tilted proposal only: the reweighting term before the move."""
        if self.proposal == "tilted":
            return super().weight(state, s, s_next)
        return None, {}

    def move(self, state, x, cache, aux, s, s_next) -> Move:
        """Tilted kernel (exact), or an ancestral step weighted by ``G_{s'}(x') / G_s(x)``."""
        if self.proposal == "tilted":
            return super().move(state, x, cache, aux, s, s_next)
        path, k = state.model, state.step
        with torch.no_grad():
            x0 = state.prior.denoise(x, sigma_batch(s, x))
            # x are the resampled particles (equal weights): the variance is estimated on them
            v = self.kernel_variance(x, x0, s, s_next)
            x_new = ancestral_step(x, x0, s, s_next, state.generator, variance=v)
            incr = path.log_g(k + 1, x_new) - path.log_g(k, x)
        n = len(x)
        return Move(x_new, incr, nfe=n, forward_evals=2 * n)
