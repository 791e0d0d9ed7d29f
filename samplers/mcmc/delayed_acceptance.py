"""Delayed acceptance (Christen & Fox 2005) and multilevel delayed acceptance (MLDA; Lykkegaard et al. 2023).

Levels ``Phi_0, ..., Phi_L`` (coarsest first, ``Phi_L`` the accurate potential) share the Gaussian prior
``mu_0``; ``pi_l(du) ∝ exp(-Phi_l(u)) mu_0(du)``. Level 0 moves by pCN (:mod:`samplers.mcmc.pcn`), reversible
for ``pi_0``; or by generalised pCN with a reference Gaussian (``reference=``), also reversible for
``pi_0``, so nothing above level 0 changes. A level-``l`` proposal is the end ``v`` of a sub-chain of ``J_l``
level-``(l-1)`` steps started at the current state ``u``; the sub-chain is reversible for ``pi_{l-1}``, so the
proposal kernel satisfies ``pi_{l-1}(u) q(u, v) = pi_{l-1}(v) q(v, u)`` and the Metropolis-Hastings ratio
for ``pi_l`` is

    alpha_l(u, v) = min(1, exp([Phi_l(u) - Phi_l(v)] - [Phi_{l-1}(u) - Phi_{l-1}(v)]))

(Lykkegaard, Dodwell, Fox, Mingas & Scheichl 2023, SIAM/ASA JUQ 11, Algorithm 3 and Theorem 3.2). The
chain is exact for ``pi_L`` whatever the coarse levels are (biased grids, surrogates), and the
sub-chain length may be random as long as its law does not depend on the state: here ``J`` is fixed, or
uniform on ``{1, ..., J_l}`` with ``randomize=True``. With ``J = 1`` and two levels this is Christen and
Fox's delayed acceptance with a pCN first stage. A sub-chain that ends where it started needs no fine
solve (the proposal equals the state). Evaluations, judged proposals and acceptances are counted per
level in the :class:`~samplers.mcmc.kernel.MCMCState`.
"""

from __future__ import annotations

import dataclasses
import numbers

import torch

from priors import GaussianMeasure
from samplers.errors import SamplerConfigError
from samplers.mcmc.kernel import MCMCKernel, MCMCState, counted, metropolis
from samplers.mcmc.pcn import _check_reference, pcn_proposal, reference_correction
from samplers.validation import fraction_in, positive_int

__all__ = ["MLDA", "DelayedAcceptance"]


class MLDA(MCMCKernel):
    """Multilevel delayed-acceptance kernel with pCN on the coarsest level (module docstring).

    Parameters
    ----------
    levels : potentials ``Phi_0, ..., Phi_L``, coarsest first (at least 2)
    measure : the Gaussian prior of ``u``
    subchain_lengths : ``J_1, ..., J_L`` (an int is used for every level)
    beta : pCN step size of level 0
    randomize : draw each sub-chain length uniformly from ``{1, ..., J_l}`` (state-independent)
    reference : ``None`` (pCN on level 0) or a Gaussian close to the posterior (generalised pCN,
        :mod:`samplers.mcmc.pcn`); fit it on a pilot run of the cheap level
        (:func:`~samplers.mcmc.pcn.gaussian_reference`)

    Example::

        import torch
        from forward_models import MatrixOperator, Gaussian, InverseProblem
        from priors import StandardGaussian
        from samplers.mcmc import MLDA, Potential, sample_chains
        A = torch.eye(2, dtype=torch.float64)
        fine = InverseProblem.simulate(MatrixOperator(A), Gaussian(0.3), torch.ones(2, dtype=torch.float64), seed=0)
        coarse = InverseProblem(MatrixOperator(1.1 * A), fine.y, fine.noise)       # a biased coarse model
        kernel = MLDA([Potential(coarse, name="coarse"), Potential(fine, name="fine")], StandardGaussian(2),
                      subchain_lengths=5, beta=0.5)
        chains = sample_chains(kernel, torch.zeros(4, 2), 300, seed=0)
        chains.acceptance(), chains.evaluations
    """

    def __init__(self, levels, measure: GaussianMeasure, subchain_lengths=5, beta: float = 0.2, *,
                 randomize: bool = False, reference: GaussianMeasure | None = None):
        levels = list(levels)
        if len(levels) < 2:
            raise SamplerConfigError(f"MLDA needs at least 2 levels (coarse ... fine), got {len(levels)}")
        if not all(callable(l) for l in levels):
            raise TypeError("MLDA: every level must be a callable potential (u (C, d) -> Phi (C,))")
        if not isinstance(measure, GaussianMeasure):
            raise TypeError(f"MLDA: measure must be a GaussianMeasure, got {type(measure).__name__}")
        if isinstance(subchain_lengths, numbers.Number):  # one length for every coarser level
            subchain_lengths = [subchain_lengths] * (len(levels) - 1)
        if len(subchain_lengths) != len(levels) - 1:
            raise SamplerConfigError(f"MLDA: subchain_lengths must be {len(levels) - 1} integers >= 1, got "
                                     f"{subchain_lengths}")
        J = tuple(positive_int(j, "MLDA: subchain_lengths") for j in subchain_lengths)
        self.beta = fraction_in(beta, "MLDA: beta", closed="right")
        _check_reference(measure, reference, "MLDA")
        self.levels, self.measure, self.reference = levels, measure, reference
        self.subchain_lengths, self.randomize = J, bool(randomize)

    def step(self, state: MCMCState) -> MCMCState:
        """One transition on the finest level (which runs sub-chains on every coarser level)."""
        return self._level_step(len(self.levels) - 1, state, state.generator)

    def _length(self, level: int, generator: torch.Generator) -> int:
        J = self.subchain_lengths[level - 1]
        if not self.randomize or J == 1:
            return J
        return int(torch.randint(1, J + 1, (1,), generator=generator))

    def _level_step(self, level: int, state: MCMCState, generator: torch.Generator) -> MCMCState:
        """One Metropolis-Hastings step on ``level`` for all chains (``phi[:, :level + 1]`` known at ``x``)."""
        u, phi = state.x, state.phi
        if level == 0:
            v = pcn_proposal(self.measure, u, state.beta, generator, reference=self.reference)
            phi_v = torch.full_like(phi, float("nan"))
            phi_v[:, 0] = self.levels[0](v)
            state = counted(state, 0, len(v), len(v))
            judged = torch.ones(len(v), dtype=torch.bool)
            log_alpha = phi[:, 0] - phi_v[:, 0] + reference_correction(self.measure, self.reference, u, v)
        else:
            sub = state
            for _ in range(self._length(level, generator)):
                sub = self._level_step(level - 1, sub, generator)
            state = dataclasses.replace(sub, x=u, phi=phi)
            v, phi_v = sub.x, sub.phi.clone()
            judged = (v != u).any(1)
            idx = judged.nonzero().squeeze(1)
            if len(idx):
                phi_v[idx, level] = self.levels[level](v[idx])
            state = counted(state, level, len(idx), len(idx))
            log_alpha = (phi[:, level] - phi_v[:, level]) - (phi[:, level - 1] - phi_v[:, level - 1])
        accept = metropolis(log_alpha, generator) & judged
        u = torch.where(accept[:, None], v, u)
        phi = torch.where(accept[:, None], phi_v, phi)
        return dataclasses.replace(counted(state, level, accepts=int(accept.sum())), x=u, phi=phi)


def DelayedAcceptance(coarse, fine, measure: GaussianMeasure, beta: float = 0.2, subchain_length: int = 1,
                      *, randomize: bool = False, reference: GaussianMeasure | None = None) -> MLDA:
    """Two-level delayed acceptance (Christen & Fox 2005) as an :class:`MLDA` kernel with levels ``[coarse, fine]``.

    ``subchain_length = 1``: stage 1 is a pCN step on ``Phi_coarse``; only an accepted stage 1 costs a
    fine solve, accepted with ``min(1, exp([Phi_f(u) - Phi_f(v)] - [Phi_c(u) - Phi_c(v)]))``.

    Example::

        from samplers.mcmc import DelayedAcceptance
        # kernel = DelayedAcceptance(coarse_potential, fine_potential, measure, beta=0.3, subchain_length=10)
    """
    return MLDA([coarse, fine], measure, subchain_lengths=[subchain_length], beta=beta, randomize=randomize,
                reference=reference)
