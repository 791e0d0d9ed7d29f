"""Preconditioned Crank-Nicolson (pCN) MCMC (Cotter, Roberts, Stuart & White 2013, Statistical Science 28).

For a posterior ``pi(du) ∝ exp(-Phi(u)) mu_0(du)`` with Gaussian prior ``mu_0 = N(m_0, C_0)`` the pCN
proposal is the prior-reversible autoregression *centred on the prior mean*

    v = m_0 + sqrt(1 - beta^2) (u - m_0) + beta xi,       xi ~ N(0, C_0),

accepted with probability ``min(1, exp(Phi(u) - Phi(v)))``: the prior cancels from the Metropolis-Hastings
ratio because the proposal leaves ``mu_0`` invariant, so the acceptance does not degrade under mesh
refinement. Writing the proposal as ``sqrt(1 - beta^2) u + beta xi`` (as tinyDA's ``CrankNicolson``
does) leaves ``N(0, C_0)`` invariant instead, so with ``m_0 != 0`` the chain samples
``exp(-Phi) N(0, C_0)``: the wrong posterior.
``centre_on_mean=False`` reproduces that mistake, for tests and comparisons only.

**Generalised pCN** (Rudolf & Sprungk 2018, Found. Comput. Math. 18, 309-343). When the data are
informative the posterior is much narrower than ``mu_0`` and pCN needs a tiny ``beta``: it then mixes
slowly in every direction. Given a *reference* Gaussian ``nu = N(m_r, Gamma)`` close to the posterior
(e.g. fitted to a pilot chain on a cheap coarse level, :func:`gaussian_reference`), propose

    v = m_r + sqrt(1 - beta^2) (u - m_r) + beta xi,       xi ~ N(0, Gamma),

which is reversible for ``nu``, and accept with

    min(1, exp(Phi(u) - Phi(v)) * [mu_0(v) nu(u)] / [mu_0(u) nu(v)])

(:func:`reference_correction` is the log of the bracket). The chain targets the same posterior for
*any* reference; a good one lets ``beta`` approach 1 (nearly independent proposals). The reference
must be fixed while draws are kept (fit it on a pilot run or during warm-up, never on the kept draws).
In our finite-dimensional coordinates (KL coefficients, latent ``z``) the densities exist for any
positive-definite ``Gamma``; in function space ``nu`` must be equivalent to ``mu_0``. With
``nu = mu_0`` this is plain pCN.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from priors import GaussianMeasure
from samplers.errors import SamplerConfigError
from samplers.mcmc.kernel import MCMCKernel, MCMCState, counted, metropolis
from samplers.validation import fraction_in, positive_float, positive_int

__all__ = ["PCN", "gaussian_reference", "pcn_proposal", "pilot_reference", "reference_correction"]


def pcn_proposal(measure: GaussianMeasure, u: torch.Tensor, beta: float, generator: torch.Generator,
                 *, centre_on_mean: bool = True, reference: GaussianMeasure | None = None) -> torch.Tensor:
    """``m_0 + sqrt(1 - beta^2) (u - m_0) + beta xi`` with ``xi ~ N(0, C_0)``, for ``u (C, d)`` -> ``(C, d)``.

    With ``reference = N(m_r, Gamma)`` the generalised pCN proposal (module docstring): ``m_r`` and
    ``xi ~ N(0, Gamma)`` take the places of ``m_0`` and ``N(0, C_0)``.

    Example::

        import torch
        from priors import StandardGaussian
        from samplers.mcmc.pcn import pcn_proposal
        v = pcn_proposal(StandardGaussian(3), torch.zeros(2, 3, dtype=torch.float64), 0.2, torch.Generator())
    """
    beta = fraction_in(beta, "the pCN step size beta", closed="right")
    if reference is not None:
        measure = reference
    xi = measure.sample_centred(u.shape[0], generator)
    m = measure.mean if centre_on_mean else torch.zeros_like(measure.mean)
    return m + math.sqrt(1.0 - beta * beta) * (u - m) + beta * xi


def reference_correction(measure: GaussianMeasure, reference: GaussianMeasure | None, u: torch.Tensor,
                         v: torch.Tensor) -> torch.Tensor:
    """``log[mu_0(v) nu(u) / (mu_0(u) nu(v))]`` per chain ``(C,)``: the generalised-pCN term of the acceptance ratio.

    Zero when ``reference`` is ``None`` (plain pCN: the proposal is reversible for the prior itself).
    """
    if reference is None:
        return torch.zeros(u.shape[0], dtype=torch.float64)
    return (measure.log_density(v) - measure.log_density(u)) - (reference.log_density(v) - reference.log_density(u))


def gaussian_reference(draws: torch.Tensor, *, inflate: float = 2.0, jitter: float = 1e-8) -> GaussianMeasure:
    """A reference Gaussian ``N(mean, inflate * cov + jitter * tr(cov)/d * I)`` fitted to pilot draws ``(..., d)``.

    The sample mean and covariance of all draws (chains pooled) of a pilot run, e.g. a pCN chain on a
    cheap coarse level. ``inflate`` (default 2) widens the covariance: a reference narrower than the
    target in some direction makes the near-independence proposals (``beta -> 1``) stick in that tail
    (docs/mcmc.md). Needs more draws than dimensions.

    Example::

        import torch
        from samplers.mcmc.pcn import gaussian_reference
        nu = gaussian_reference(torch.randn(4, 500, 3, dtype=torch.float64))   # ~ N(0, I_3)
    """
    from priors import DenseGaussian

    x = torch.as_tensor(draws, dtype=torch.float64)
    x = x.reshape(-1, x.shape[-1])
    n, d = x.shape
    if n <= d:
        raise SamplerConfigError(f"gaussian_reference: need more draws than dimensions, got {n} draws of dimension {d}")
    if not bool(torch.isfinite(x).all()):
        raise SamplerConfigError("gaussian_reference: the draws contain NaN or Inf")
    inflate = positive_float(inflate, "gaussian_reference: inflate")
    cov = torch.cov(x.T).reshape(d, d)
    cov = 0.5 * (cov + cov.T) * float(inflate)
    cov = cov + float(jitter) * float(cov.diagonal().mean().clamp_min(1e-300)) * torch.eye(d, dtype=torch.float64)
    return DenseGaussian(x.mean(0), cov)


class PCN(MCMCKernel):
    """Single-level pCN chain kernel on one :class:`~samplers.mcmc.potential.Potential` (module docstring).

    Parameters
    ----------
    potential : ``Phi`` (a callable ``(C, d) -> (C,)``)
    measure : the Gaussian prior ``N(m_0, C_0)`` of ``u``
    beta : step size in (0, 1] (adapted during warm-up by :class:`~samplers.mcmc.chains.MCMCSampler` if asked)
    centre_on_mean : False reproduces the zero-mean pCN bug (wrong posterior when ``m_0 != 0``); tests only
    reference : ``None`` (pCN) or a Gaussian ``N(m_r, Gamma)`` for generalised pCN (module docstring)

    Example::

        import torch
        from forward_models import MatrixOperator, Gaussian, InverseProblem
        from priors import StandardGaussian
        from samplers.mcmc.potential import Potential
        from samplers.mcmc.pcn import PCN
        from samplers.mcmc import sample_chains
        A = torch.eye(2, dtype=torch.float64)
        problem = InverseProblem.simulate(MatrixOperator(A), Gaussian(0.5), torch.ones(2, dtype=torch.float64), seed=0)
        chains = sample_chains(PCN(Potential(problem), StandardGaussian(2), beta=0.5), torch.zeros(4, 2), 500, seed=0)
        chains.summary()["ess_min"]
    """

    def __init__(self, potential, measure: GaussianMeasure, beta: float = 0.2, *, centre_on_mean: bool = True,
                 reference: GaussianMeasure | None = None):
        if not callable(potential):
            raise TypeError("PCN: potential must be callable (u (C, d) -> Phi (C,))")
        if not isinstance(measure, GaussianMeasure):
            raise TypeError(f"PCN: measure must be a GaussianMeasure, got {type(measure).__name__}")
        self.beta = fraction_in(beta, "PCN: beta", closed="right")
        _check_reference(measure, reference, "PCN")
        self.levels, self.measure, self.reference = [potential], measure, reference
        self.centre_on_mean = bool(centre_on_mean)

    def step(self, state: MCMCState) -> MCMCState:
        """Propose ``v`` for every chain, evaluate ``Phi(v)``, accept with ``min(1, exp(Phi(u) - Phi(v)))``
        (times the generalised-pCN density ratio when a reference is set)."""
        g = state.generator
        v = pcn_proposal(self.measure, state.x, state.beta, g, centre_on_mean=self.centre_on_mean,
                         reference=self.reference)
        phi_v = self.levels[0](v)
        log_alpha = state.phi[:, 0] - phi_v + reference_correction(self.measure, self.reference, state.x, v)
        accept = metropolis(log_alpha, g)
        u = torch.where(accept[:, None], v, state.x)
        phi = torch.where(accept[:, None], phi_v[:, None], state.phi)
        n = len(v)
        return dataclasses.replace(counted(state, 0, n, n, int(accept.sum())), x=u, phi=phi)


def pilot_reference(potential, measure: GaussianMeasure, u0: torch.Tensor, iterations: int = 1500, *,
                    warmup: int = 300, rounds: int = 2, seed: int = 0, inflate: float = 2.0):
    """Fit a generalised-pCN reference on a cheap level: ``(reference, final_states, last_pilot_result)``.

    Round 0 runs pCN chains from ``u0`` on ``potential`` (a coarse grid or surrogate) and fits
    :func:`gaussian_reference` to their draws; each further round runs generalised pCN with the previous
    reference from the previous round's final states and refits (pCN alone mixes too slowly on an
    informative posterior for a short pilot to cover it). Start the accurate chains at
    ``final_states``: a chain started in a tail of the reference (e.g. at a prior draw) carries a large
    weight ``pi / nu`` there and sticks. The returned result is the last round's; the whole pilot costs
    ``rounds * C * (warmup + iterations + 1)`` evaluations of ``potential`` for ``C`` chains: charge
    them to the run it prepares.

    Example::

        import torch
        from forward_models import MatrixOperator, Gaussian, InverseProblem
        from priors import StandardGaussian
        from samplers.mcmc.potential import Potential
        from samplers.mcmc.pcn import PCN, pilot_reference
        from samplers.mcmc import sample_chains
        problem = InverseProblem.simulate(MatrixOperator(torch.eye(2, dtype=torch.float64)), Gaussian(0.05),
                                          torch.ones(2, dtype=torch.float64), seed=0)
        mu = StandardGaussian(2)
        ref, u, _ = pilot_reference(Potential(problem), mu, mu.sample(4), 300, warmup=100)
        chains = sample_chains(PCN(Potential(problem), mu, 0.8, reference=ref), u, 500, warmup=50,
                               target_acceptance=0.3)
    """
    from samplers.mcmc.chains import sample_chains

    rounds = positive_int(rounds, "pilot_reference: rounds")
    ref, u, res = None, torch.as_tensor(u0, dtype=torch.float64), None
    for r in range(int(rounds)):
        kernel = PCN(potential, measure, 0.1) if ref is None else PCN(potential, measure, 0.5, reference=ref)
        res = sample_chains(kernel, u, iterations, seed=seed + r, warmup=warmup,
                         target_acceptance=0.25 if ref is None else 0.3, adapt_every=25 if ref is None else 5)
        ref, u = gaussian_reference(res.draws, inflate=inflate), res.draws[:, -1].clone()
    return ref, u, res


def _check_reference(measure: GaussianMeasure, reference, who: str) -> None:
    """A reference must be a GaussianMeasure of the prior's dimension (or None)."""
    if reference is None:
        return
    if not isinstance(reference, GaussianMeasure):
        raise TypeError(f"{who}: reference must be a GaussianMeasure or None, got {type(reference).__name__}")
    if reference.dim != measure.dim:
        raise SamplerConfigError(f"{who}: the reference has dimension {reference.dim}, the prior {measure.dim}")
