"""Approximation-free ensemble sampler (after Chen, Ren, Min, Ying and Izzo 2025, "Solving inverse problems
via diffusion-based priors: an approximation-free ensemble sampling approach", arXiv 2506.03979).

The paper's algorithm (Sections 3.1-3.2; read here through the equations a third-party implementation
documents, arXiv 2506.03979v2, Eq. 3.6 and Algorithms 1-2; the paper itself was not reachable):

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
``log int N(x'; m, v I) G'(x') dx' - log G(x)``; expanding it in ``h`` gives ``h`` times the paper's rate
(checked in ``tests/samplers/test_smc.py``). The paths, one knob ``inflation = c``:

    G_s(x) = N(y; A x, sigma_y^2 I + c s^2 A A^T),

the likelihood of the measurement noised to ``c`` times the particles' level (``y_s = y + sqrt(c) s A eps``).
``G_0`` is the exact likelihood whatever ``c``, so the last target is always the posterior.

- ``c = 0`` is the paper's ``G_s = p(y | x)``. In discrete time its weights behave like ``1 / p(y | x)``
  whenever the step variance in an observed direction, ``v s_i^2``, exceeds ``sigma_y^2``: a weight of
  infinite variance. With ``sigma_max`` in the hundreds that holds for almost every step of a 100-step
  schedule, and the ensemble collapses (Gaussian-mixture benchmark, d = 80, dy = 1, 4096 particles: ESS ~1
  by step 30-60, log-evidence off by 160-260 nats, SW 9-120x the floor; d = 8, 1024 particles: SW 7-29x
  at 100 steps, 33x at 1000). The paper's continuous-time analysis needs ``h s_i^2 << sigma_y^2``, i.e.
  ~``(sigma_max / sigma_y)^2`` steps. Reading the paper's path in the variance-preserving coordinates of
  its diffusion (``G_s = p(y | x / sqrt(1 + s^2))``) collapsed as well (d = 8: SW 14-47x); not kept.
- ``c > 0`` (our choice): ``G_s`` widens with ``s`` as fast as the particles spread, so each step's weights
  stay bounded. Larger ``c`` leaves the intermediate targets closer to the noised *prior* and defers the
  conditioning to lower noise levels. Measured on the mixture benchmark (100 steps, 4096 particles, seeds 0-4, SW / floor):
  d = 8, dy = 1: c = 0.1 / 0.3 / 1 / 3 / 10 / 30 / 100 / 1000 -> 5.8 / 4.7 / 2.9 / 1.7 / 1.7 / 1.8 / 1.8 / 2.0;
  d = 8, dy = 2: c = 1 / 10 / 100 -> 1.4 / 1.2 / 1.6. But deferring the conditioning needs particles: on
  30-view CT with 8 particles (phantoms-64, 100 steps, instances 0-1) c = 10 fell to 20.3 / 23.1 dB from
  29.5 / 30.7 dB at c = 1, and at 256 particles on the mixture (d = 8, dy = 1) c = 10 was worse too. Default
  ``c = 1``; ``c = 10`` for ensembles of thousands (``scripts/afes_inflation_study.py``).

Moves (``proposal``): ``"tilted"`` (default: the exact tilted kernel above, resampling before the move,
:class:`samplers.smc.LinearTwistSMC`) or ``"prior"`` (unconditional ancestral steps weighted by
``G_{s'}(x') / G_s(x)``: bootstrap SMC, the first reconstruction tested here).

Resampling is systematic when the ESS drops below ``resample_threshold * N``; the evidence estimate is
of ``p(y)``. One NFE per particle and step, no gradients. Needs a linear model with Gaussian noise.
"""

from __future__ import annotations

import math

import torch

from samplers.smc import LinearTwistSMC, Move
from samplers.steps import ancestral_step, sigma_batch

__all__ = ["ApproximationFreeEnsemble"]

_PROPOSALS = ("tilted", "prior")


class ApproximationFreeEnsemble(LinearTwistSMC):
    """Weighted ensemble along the noised-measurement path ``p_s(x) N(y; A x, sigma_y^2 + c s^2 A A^T)``.

    Parameters
    ----------
    num_steps : EDM levels
    proposal : ``"tilted"`` (kernel tilted by the next potential) or ``"prior"`` (bootstrap)
    inflation : ``c >= 0`` of ``G_s = N(y; A x, sigma_y^2 + c s^2 A A^T)`` (default 1, 10 for thousands of particles; 0 is the paper's
        ``G_s = p(y | x)``, which collapses at practical step counts: module docstring)
    resample_threshold : resample when ESS < threshold * N
    rho : EDM schedule exponent
    reverse_variance : ``"analytic"`` (default) or ``"ancestral"`` (:class:`samplers.smc.SMCSampler`)

    Example::

        from inverse.harness import gmm_case
        from samplers import ApproximationFreeEnsemble
        case = gmm_case(8, 2, seed=0)
        post = ApproximationFreeEnsemble(num_steps=50).sample(case.problem, case.prior, 256, seed=0)
        post.diagnostics["log_evidence"], case.log_evidence
    """

    def __init__(self, num_steps: int = 100, proposal: str = "tilted", resample_threshold: float = 0.5,
                 rho: float = 7.0, reverse_variance: str = "analytic", inflation: float = 1.0):
        super().__init__(num_steps, resample_threshold, rho, reverse_variance)
        if proposal not in _PROPOSALS:
            raise ValueError(f"proposal must be one of {_PROPOSALS}, got {proposal!r}")
        if not (math.isfinite(float(inflation)) and float(inflation) >= 0):
            raise ValueError(f"inflation must be a finite number >= 0, got {inflation!r}")
        self.proposal = proposal
        self.inflation = float(inflation)

    def twist(self, model, k, sigmas):
        """``G_{s_k}`` in the singular basis: variances ``sigma_y^2 + c s_k^2 s_i^2``, every coordinate."""
        lg = model["lg"]
        var = lg.sigma_y**2 + self.inflation * sigmas[k] ** 2 * lg.s**2
        return var, torch.ones_like(var, dtype=torch.bool)

    def _log_g(self, model, k, sigmas, x):
        var, active = self.twist(model, k, sigmas)
        return model["lg"].log_twist(model["lg"].project(x), var, active)

    def initial(self, problem, prior, n, generator, model, sigmas) -> Move:
        """Tilted: exact draw from ``N(0, s_0^2) G_{s_0}``; prior: ``N(0, s_0^2)`` weighted by ``G_{s_0}``."""
        if self.proposal == "tilted":
            return super().initial(problem, prior, n, generator, model, sigmas)
        x = sigmas[0] * torch.randn(n, *prior.shape, generator=generator, dtype=prior.dtype, device=prior.device)
        return Move(x, self._log_g(model, 0, sigmas, x), forward_evals=n)

    def pre_weight(self, state, s, s_next):
        """Tilted proposal only: the reweighting term before the move."""
        if self.proposal == "tilted":
            return super().pre_weight(state, s, s_next)
        return None, {}

    def move(self, state, x, cache, aux, s, s_next) -> Move:
        """Tilted kernel (exact), or an ancestral step weighted by ``G_{s'}(x') / G_s(x)``."""
        if self.proposal == "tilted":
            return super().move(state, x, cache, aux, s, s_next)
        model, sigmas, k = state.model, state.sigmas, state.step
        with torch.no_grad():
            x0 = state.prior.denoise(x, sigma_batch(s, x))
            # x are the resampled particles (equal weights): the variance is estimated on them
            v = self.kernel_variance(x, x0, s, s_next)
            x_new = ancestral_step(x, x0, s, s_next, state.generator, variance=v)
            incr = self._log_g(model, k + 1, sigmas, x_new) - self._log_g(model, k, sigmas, x)
        n = len(x)
        return Move(x_new, incr, nfe=n, forward_evals=2 * n)
