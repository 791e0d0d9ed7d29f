"""The state of ``C`` Markov chains on ``L`` levels and the kernel contract: ``step(state) -> state``.

Kernels (:class:`~samplers.mcmc.pcn.PCN`, :class:`~samplers.mcmc.delayed_acceptance.MLDA`) know only
``init(u0)`` (the chain fields at the starting points) and ``step(state) -> state`` (one transition of every
chain, numpyro's split of kernel and driver; blackjax's state in, state out). Warm-up, thinning,
checkpoints and diagnostics belong to the one driver, :func:`samplers.base.run`, through
:class:`~samplers.mcmc.chains.MCMCSampler`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass

import torch

from samplers.base import State
from samplers.errors import SamplerConfigError

__all__ = ["MCMCState", "MCMCKernel", "metropolis", "counted"]


@dataclass(kw_only=True)
class MCMCState(State):
    """State of ``C`` chains on ``L`` levels (coarsest first, the target level last).

    ``x`` (C, d) float64 chain positions ``u``; ``phi`` (C, L) potentials at ``x`` (NaN where not evaluated);
    ``beta`` the pCN step size; ``evaluations`` (L,) potential evaluations (forward solves) per level, summed
    over chains; ``proposals`` / ``accepts`` (L,) proposals judged and accepted at each level (a level-l
    proposal that returned to its start is not judged); ``window`` the level-0 ``(proposals, accepts)`` at the
    start of the current warm-up adaptation window; ``thin`` the iterations between kept states; ``draws``
    (C, T, d) and ``potentials`` (C, T) the kept states and their target-level potentials (filled in order;
    NaN beyond the draws kept so far);
    ``kernel`` the transition kernel (rebuilt by ``init`` on resume).
    """

    phi: torch.Tensor
    beta: float
    evaluations: tuple = ()
    proposals: tuple = ()
    accepts: tuple = ()
    window: tuple = (0, 0)
    thin: int = 1
    draws: torch.Tensor | None = None
    potentials: torch.Tensor | None = None
    kernel: object = None


def counted(state, level: int, evaluations: int = 0, proposals: int = 0, accepts: int = 0):
    """A copy of ``state`` with the level's counters incremented."""

    def bump(t, v):
        t = list(t)
        t[level] += int(v)
        return tuple(t)

    return dataclasses.replace(state, evaluations=bump(state.evaluations, evaluations),
                               proposals=bump(state.proposals, proposals), accepts=bump(state.accepts, accepts))


def metropolis(log_alpha: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Accept with probability ``min(1, exp(log_alpha))`` (NaN -> reject)."""
    log_u = torch.log(torch.rand(log_alpha.shape, generator=generator, dtype=torch.float64))
    return torch.nan_to_num(log_alpha, nan=-math.inf) > log_u


class MCMCKernel:
    """Base class of chain kernels: ``init(u0) -> dict`` of chain fields and ``step(state) -> state``.

    ``levels`` are :class:`~samplers.mcmc.potential.Potential` objects, coarsest first; ``measure`` the
    Gaussian prior; ``beta`` the initial step size. ``step`` draws from ``state.generator`` and updates
    ``x``, ``phi`` and the counters with ``dataclasses.replace`` (or :func:`counted`). Example (a kernel
    that never moves, run by the one driver)::

        import torch
        from forward_models import Gaussian, InverseProblem, MatrixOperator
        from priors import StandardGaussian
        from samplers.mcmc import MCMCKernel, Potential, sample_chains

        class Stay(MCMCKernel):
            def __init__(self, potential):
                self.levels, self.measure, self.beta = [potential], StandardGaussian(3), 0.5
            def step(self, state):
                return state
        problem = InverseProblem.simulate(MatrixOperator(torch.eye(3, dtype=torch.float64)), Gaussian(1.0),
                                          torch.zeros(3, dtype=torch.float64), seed=0)
        chains = sample_chains(Stay(Potential(problem)), torch.zeros(2, 3, dtype=torch.float64), 10)
    """

    levels: list
    beta: float

    def init(self, u0: torch.Tensor) -> dict:
        """Chain fields at ``u0 (C, d)`` with every level's potential evaluated there."""
        u0 = torch.as_tensor(u0, dtype=torch.float64)
        if u0.ndim != 2:
            raise SamplerConfigError(f"initial states must have shape (chains, d), got {tuple(u0.shape)}")
        L = len(self.levels)
        phi = torch.stack([lvl(u0) for lvl in self.levels], 1)
        if not bool(torch.isfinite(phi).all()):
            raise SamplerConfigError("the potential is not finite at an initial state; start the chains elsewhere")
        zeros = (0,) * L
        return {"x": u0.clone(), "phi": phi, "beta": float(self.beta), "evaluations": (len(u0),) * L,
                "proposals": zeros, "accepts": zeros}

    def step(self, state: MCMCState) -> MCMCState:  # pragma: no cover
        """One transition of every chain."""
        raise NotImplementedError

    def level_names(self) -> list:
        """The levels' names (``level0, level1, ...`` where a level has none)."""
        return [getattr(lvl, "name", f"level{i}") for i, lvl in enumerate(self.levels)]

    def config(self) -> dict:
        """JSON description: class, plain configuration values and level names."""
        cfg = {k: v for k, v in vars(self).items() if isinstance(v, (int, float, str, bool, type(None), tuple))}
        ref = getattr(self, "reference", None)
        if ref is not None:  # a generalised-pCN reference: its fingerprint, so a resume with another one is refused
            blob = ref.mean.numpy().tobytes() + ref.covariance().numpy().tobytes()
            cfg["reference"] = {"class": type(ref).__name__, "dim": int(ref.dim),
                                "sha1": hashlib.sha1(blob).hexdigest()[:16]}
        return {"class": type(self).__name__, **cfg, "levels": [getattr(lvl, "name", "level") for lvl in self.levels]}
