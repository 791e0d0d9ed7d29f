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
"""

from __future__ import annotations

import math

import torch

from priors.function_space import GaussianMeasure
from samplers.chains import ChainState, MCMCKernel, _metropolis

__all__ = ["pcn_proposal", "PCN"]


def pcn_proposal(measure: GaussianMeasure, u: torch.Tensor, beta: float, generator: torch.Generator,
                 *, centre_on_mean: bool = True) -> torch.Tensor:
    """``m_0 + sqrt(1 - beta^2) (u - m_0) + beta xi`` with ``xi ~ N(0, C_0)``, for ``u (C, d)`` -> ``(C, d)``.

    Example::

        import torch
        from priors.function_space import StandardGaussian
        from samplers.pcn import pcn_proposal
        v = pcn_proposal(StandardGaussian(3), torch.zeros(2, 3, dtype=torch.float64), 0.2, torch.Generator())
    """
    if not 0 < beta <= 1:
        raise ValueError(f"the pCN step size beta must lie in (0, 1], got {beta}")
    xi = measure.sample_centred(u.shape[0], generator)
    m = measure.mean if centre_on_mean else torch.zeros_like(measure.mean)
    return m + math.sqrt(1.0 - beta * beta) * (u - m) + beta * xi


class PCN(MCMCKernel):
    """Single-level pCN chain kernel on one :class:`~samplers.potential.Potential` (module docstring).

    Parameters
    ----------
    potential : ``Phi`` (a callable ``(C, d) -> (C,)``)
    measure : the Gaussian prior ``N(m_0, C_0)`` of ``u``
    beta : step size in (0, 1] (adapted during :func:`~samplers.chains.run_chains` warm-up if asked)
    centre_on_mean : False reproduces the zero-mean pCN bug (wrong posterior when ``m_0 != 0``); tests only

    Example::

        import torch
        from forward_models import MatrixOperator, Gaussian, InverseProblem
        from priors.function_space import StandardGaussian
        from samplers.potential import Potential
        from samplers.pcn import PCN
        from samplers.chains import run_chains
        A = torch.eye(2, dtype=torch.float64)
        problem = InverseProblem.simulate(MatrixOperator(A), Gaussian(0.5), torch.ones(2, dtype=torch.float64), seed=0)
        result = run_chains(PCN(Potential(problem), StandardGaussian(2), beta=0.5), torch.zeros(4, 2), 500, seed=0)
        result.summary()["ess_min"]
    """

    def __init__(self, potential, measure: GaussianMeasure, beta: float = 0.2, *, centre_on_mean: bool = True):
        if not callable(potential):
            raise TypeError("PCN: potential must be callable (u (C, d) -> Phi (C,))")
        if not isinstance(measure, GaussianMeasure):
            raise TypeError(f"PCN: measure must be a GaussianMeasure, got {type(measure).__name__}")
        if not 0 < beta <= 1:
            raise ValueError(f"PCN: beta must lie in (0, 1], got {beta}")
        self.levels, self.measure = [potential], measure
        self.beta, self.centre_on_mean = float(beta), bool(centre_on_mean)

    def step(self, state: ChainState, generator: torch.Generator) -> ChainState:
        """Propose ``v`` for every chain, evaluate ``Phi(v)``, accept with ``min(1, exp(Phi(u) - Phi(v)))``."""
        v = pcn_proposal(self.measure, state.u, state.beta, generator, centre_on_mean=self.centre_on_mean)
        phi_v = self.levels[0](v)
        accept = _metropolis(state.phi[:, 0] - phi_v, generator)
        u = torch.where(accept[:, None], v, state.u)
        phi = torch.where(accept[:, None], phi_v[:, None], state.phi)
        n = len(v)
        return self.advance(state.counted(0, n, n, int(accept.sum())), u=u, phi=phi)
