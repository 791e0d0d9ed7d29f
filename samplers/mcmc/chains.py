"""The driver of function-space MCMC chains: state, warm-up, thinning, checkpoint / resume, diagnostics.

A kernel (:class:`~samplers.pcn.PCN`, :class:`~samplers.delayed_acceptance.MLDA`) knows only
``init(u0) -> ChainState`` and ``step(state, generator) -> ChainState`` (numpyro's split of kernel and
driver). :func:`run_chains` owns everything else: ``C`` chains advanced together as one batch, warm-up
with the pCN step size adapted towards a target acceptance (Robbins-Monro on ``log beta``; frozen after
warm-up, so the kept draws come from a fixed reversible kernel), thinning, and a checkpoint written
atomically every ``checkpoint_every`` iterations (numpy arrays and the ``torch.Generator`` state in one
``.npz``, read back with ``allow_pickle=False``); a run resumed from a checkpoint is bit-identical to an
uninterrupted one. The result, :class:`ChainResult`, converts to ArviZ ``InferenceData`` (bulk ESS and
rank-normalised split R-hat, Vehtari et al. 2021) and to a :class:`~samplers.posterior.Posterior`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from samplers.atomic import atomic_output
from samplers.posterior import Posterior

__all__ = ["ChainState", "MCMCKernel", "ChainResult", "run_chains", "save_checkpoint", "load_checkpoint"]

_CHECKPOINT_FORMAT = "inverse-mcmc-checkpoint/1"


@dataclass(frozen=True)
class ChainState:
    """State of ``C`` chains on ``L`` levels (coarsest first, the target level last).

    ``u`` (C, d) float64 parameters; ``phi`` (C, L) potentials at ``u`` (NaN where not evaluated);
    ``beta`` the pCN step size; ``iteration`` the number of steps taken; ``evaluations`` (L,) potential
    evaluations (forward solves) per level, summed over chains; ``proposals`` / ``accepts`` (L,) proposals
    judged and accepted at each level (a level-l proposal that returned to its start is not judged).
    """

    u: torch.Tensor
    phi: torch.Tensor
    beta: float
    iteration: int = 0
    evaluations: tuple = ()
    proposals: tuple = ()
    accepts: tuple = ()

    def counted(self, level: int, evaluations: int = 0, proposals: int = 0, accepts: int = 0) -> ChainState:
        """A copy with the level's counters incremented."""
        def bump(t, v):
            t = list(t)
            t[level] += int(v)
            return tuple(t)
        return dataclasses.replace(self, evaluations=bump(self.evaluations, evaluations),
                                   proposals=bump(self.proposals, proposals), accepts=bump(self.accepts, accepts))


class MCMCKernel:
    """Base class of chain kernels: ``init(u0) -> ChainState`` and ``step(state, generator) -> ChainState``.

    ``levels`` are :class:`~samplers.potential.Potential` objects, coarsest first; ``measure`` the
    Gaussian prior. Example (a kernel that never moves, in a few lines)::

        import torch
        from samplers.chains import ChainState, MCMCKernel, run_chains
        class Stay(MCMCKernel):
            levels, beta = [lambda u: torch.zeros(len(u), dtype=torch.float64)], 0.5
            def step(self, state, generator):
                return self.advance(state)
        result = run_chains(Stay(), torch.zeros(2, 3, dtype=torch.float64), 10)
    """

    levels: list
    beta: float

    def init(self, u0: torch.Tensor) -> ChainState:
        """State at ``u0 (C, d)`` with every level's potential evaluated there."""
        u0 = torch.as_tensor(u0, dtype=torch.float64)
        if u0.ndim != 2:
            raise ValueError(f"initial states must have shape (chains, d), got {tuple(u0.shape)}")
        L = len(self.levels)
        phi = torch.stack([lvl(u0) for lvl in self.levels], 1)
        if not bool(torch.isfinite(phi).all()):
            raise ValueError("the potential is not finite at an initial state; start the chains elsewhere")
        zeros = (0,) * L
        return ChainState(u0.clone(), phi, float(self.beta), 0, (len(u0),) * L, zeros, zeros)

    def step(self, state: ChainState, generator: torch.Generator) -> ChainState:  # pragma: no cover
        """One transition of every chain."""
        raise NotImplementedError

    def advance(self, state: ChainState, **changes) -> ChainState:
        """A copy with the iteration advanced and ``changes`` applied."""
        return dataclasses.replace(state, iteration=state.iteration + 1, **changes)

    def config(self) -> dict:
        """JSON description: class, plain configuration values and level names."""
        cfg = {k: v for k, v in vars(self).items() if isinstance(v, (int, float, str, bool, type(None), tuple))}
        ref = getattr(self, "reference", None)
        if ref is not None:  # a generalised-pCN reference: its fingerprint, so a resume with another one is refused
            import hashlib

            blob = ref.mean.numpy().tobytes() + ref.covariance().numpy().tobytes()
            cfg["reference"] = {"class": type(ref).__name__, "dim": int(ref.dim),
                                "sha1": hashlib.sha1(blob).hexdigest()[:16]}
        return {"class": type(self).__name__, **cfg, "levels": [getattr(l, "name", "level") for l in self.levels]}


def _metropolis(log_alpha: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Accept with probability ``min(1, exp(log_alpha))`` (NaN -> reject)."""
    log_u = torch.log(torch.rand(log_alpha.shape, generator=generator, dtype=torch.float64))
    return torch.nan_to_num(log_alpha, nan=-math.inf) > log_u


@dataclass
class ChainResult:
    """Draws of ``C`` chains and their cost and diagnostics.

    ``draws`` (C, T, d) float64 kept states; ``potentials`` (C, T) the target-level potential at them;
    ``level_names``; ``evaluations`` / ``proposals`` / ``accepts`` per level; ``wall_time_s``; ``config``.
    """

    draws: torch.Tensor
    potentials: torch.Tensor
    level_names: list
    evaluations: list
    proposals: list
    accepts: list
    wall_time_s: float
    beta: float
    config: dict = dataclasses.field(default_factory=dict)

    def to_inference_data(self, qoi: Callable | None = None):
        """ArviZ ``InferenceData``: variable ``u`` (chain, draw, u_dim), or ``qoi(u)`` (chain, draw, q) if given."""
        import arviz as az

        values = self._values(qoi)
        return az.from_dict(posterior={"u": values}, dims={"u": ["u_dim"]},
                            sample_stats={"potential": self.potentials.numpy()})

    def _values(self, qoi) -> np.ndarray:
        d = self.draws
        if qoi is None:
            return d.numpy()
        C, T = d.shape[:2]
        q = torch.as_tensor(qoi(d.reshape(C * T, -1)), dtype=torch.float64)
        return q.reshape(C, T, -1).numpy()

    def ess(self, qoi: Callable | None = None) -> np.ndarray:
        """Bulk effective sample size per component (``arviz.ess``, rank-normalised, all chains together)."""
        import arviz as az

        return np.asarray(az.ess(self.to_inference_data(qoi), method="bulk")["u"].values, dtype=float)

    def rhat(self, qoi: Callable | None = None) -> np.ndarray:
        """Rank-normalised split R-hat per component (``arviz.rhat``); needs at least 2 draws per chain."""
        import arviz as az

        return np.asarray(az.rhat(self.to_inference_data(qoi))["u"].values, dtype=float)

    def acceptance(self) -> dict:
        """Acceptance rate per level: accepted / judged proposals (NaN where none were judged)."""
        return {n: (a / p if p else float("nan")) for n, a, p in zip(self.level_names, self.accepts, self.proposals, strict=False)}

    def summary(self, qoi: Callable | None = None) -> dict:
        """Diagnostics as JSON values: ESS (min, median), max R-hat, cost per level, ESS per fine solve and per second."""
        ess = self.ess(qoi)
        rhat = self.rhat(qoi) if self.draws.shape[0] > 1 else np.array([float("nan")])
        fine = self.evaluations[-1]
        return {"chains": int(self.draws.shape[0]), "draws": int(self.draws.shape[1]),
                "ess_min": float(ess.min()), "ess_median": float(np.median(ess)), "rhat_max": float(np.nanmax(rhat))
                if np.isfinite(rhat).any() else float("nan"),
                "evaluations": dict(zip(self.level_names, map(int, self.evaluations), strict=False)),
                "acceptance": self.acceptance(), "fine_solves": int(fine), "wall_time_s": self.wall_time_s,
                "ess_per_fine_solve": float(ess.min()) / max(fine, 1),
                "ess_per_second": float(ess.min()) / max(self.wall_time_s, 1e-12), "beta": self.beta}

    def to_posterior(self, transform: Callable | None = None, **kwargs) -> Posterior:
        """A :class:`Posterior` of ``transform(u)`` (physical units) over all chains and draws; diagnostics from :meth:`summary`."""
        C, T, d = self.draws.shape
        u = self.draws.reshape(C * T, d)
        with torch.no_grad():
            samples = u if transform is None else transform(u)
        return Posterior(samples, diagnostics=self.summary(), config=self.config, **kwargs)


def save_checkpoint(path, state: ChainState, generator: torch.Generator, draws: list, potentials: list,
                    meta: dict) -> None:
    """Write the chain state, the generator state and the draws so far to ``path`` (.npz), atomically."""
    arrays = {"u": state.u.numpy(), "phi": state.phi.numpy(), "rng": generator.get_state().numpy(),
              "evaluations": np.asarray(state.evaluations, np.int64), "proposals": np.asarray(state.proposals, np.int64),
              "accepts": np.asarray(state.accepts, np.int64),
              "draws": np.stack(draws, 1) if draws else np.zeros((state.u.shape[0], 0, state.u.shape[1])),
              "potentials": np.stack(potentials, 1) if potentials else np.zeros((state.u.shape[0], 0)),
              "meta": np.asarray(json.dumps({"format": _CHECKPOINT_FORMAT, "iteration": state.iteration,
                                             "beta": state.beta, **meta}))}
    with atomic_output(path, overwrite=True) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load_checkpoint(path, generator: torch.Generator):
    """Read a checkpoint: returns ``(state, draws, potentials, meta)`` and restores ``generator`` in place."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != _CHECKPOINT_FORMAT:
                raise ValueError(f"{path} is not an MCMC checkpoint")
            generator.set_state(torch.from_numpy(z["rng"].copy()))
            state = ChainState(torch.from_numpy(z["u"].copy()), torch.from_numpy(z["phi"].copy()), float(meta["beta"]),
                               int(meta["iteration"]), tuple(map(int, z["evaluations"])),
                               tuple(map(int, z["proposals"])), tuple(map(int, z["accepts"])))
            draws = [torch.from_numpy(z["draws"][:, t].copy()) for t in range(z["draws"].shape[1])]
            pots = [torch.from_numpy(z["potentials"][:, t].copy()) for t in range(z["potentials"].shape[1])]
    except (OSError, KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read MCMC checkpoint {path} ({type(e).__name__}: {e})") from None
    return state, draws, pots, meta


def run_chains(kernel: MCMCKernel, u0: torch.Tensor, num_iterations: int, *, seed: int = 0,
               generator: torch.Generator | None = None, warmup: int = 0, thin: int = 1,
               target_acceptance: float | None = None, adapt_every: int = 25,
               checkpoint=None, checkpoint_every: int = 100, stop_after: int | None = None,
               callback: Callable[[ChainState], None] | None = None) -> ChainResult:
    """Run ``C = len(u0)`` chains for ``warmup + num_iterations`` steps; keep every ``thin``-th state after warm-up.

    During warm-up, with ``target_acceptance`` set, every ``adapt_every`` steps
    ``log beta += (a - target) / sqrt(k)`` with ``a`` the acceptance of the coarsest level's pCN proposals
    over the window (``k`` the window index), and ``beta`` is clipped to ``[1e-4, 1]``. With
    ``checkpoint`` a path, the state is saved there every ``checkpoint_every`` steps and at the end; an
    existing checkpoint with the same configuration is resumed (bit-identical to an uninterrupted run).
    ``stop_after`` ends the run after that many steps in total (to test resumption).
    """
    if int(num_iterations) < 1 or int(warmup) < 0 or int(thin) < 1 or int(checkpoint_every) < 1 or int(adapt_every) < 1:
        raise ValueError("num_iterations and thin must be >= 1, warmup >= 0, checkpoint_every and adapt_every >= 1")
    if target_acceptance is not None and not 0 < target_acceptance < 1:
        raise ValueError(f"target_acceptance must lie in (0, 1), got {target_acceptance}")
    if generator is None:
        generator = torch.Generator().manual_seed(int(seed))
    total = int(warmup) + int(num_iterations)
    meta = {"kernel": kernel.config(), "total": total, "warmup": int(warmup), "thin": int(thin), "seed": int(seed)}
    draws, pots, elapsed = [], [], 0.0
    state = None
    if checkpoint is not None and Path(checkpoint).is_file():
        state, draws, pots, old = load_checkpoint(checkpoint, generator)
        if {k: old.get(k) for k in meta} != json.loads(json.dumps(meta)):
            raise ValueError(f"checkpoint {checkpoint} was written by a different run configuration; "
                             "remove it or change the path")
        elapsed = float(old.get("wall_time_s", 0.0))
    t0 = time.perf_counter()
    if state is None:
        state = kernel.init(u0)
        window = (state.proposals[0], state.accepts[0])
    else:
        window = tuple(old["window"])
    while state.iteration < total and (stop_after is None or state.iteration < stop_after):
        state = kernel.step(state, generator)
        it = state.iteration
        if target_acceptance is not None and it <= warmup and it % adapt_every == 0:
            p, a = state.proposals[0] - window[0], state.accepts[0] - window[1]
            if p:
                step = (a / p - target_acceptance) / math.sqrt(it // adapt_every)
                state = dataclasses.replace(state, beta=float(min(1.0, max(1e-4, state.beta * math.exp(step)))))
            window = (state.proposals[0], state.accepts[0])
        if it > warmup and (it - warmup) % thin == 0:
            draws.append(state.u.clone())
            pots.append(state.phi[:, -1].clone())
        if callback is not None:
            callback(state)
        if checkpoint is not None and (it % checkpoint_every == 0 or it == total):
            save_checkpoint(checkpoint, state, generator, draws, pots,
                            {**meta, "wall_time_s": elapsed + time.perf_counter() - t0, "window": list(window)})
    if not draws:
        raise ValueError("no draws kept: the run stopped before the end of warm-up")
    names = [getattr(l, "name", f"level{i}") for i, l in enumerate(kernel.levels)]
    return ChainResult(torch.stack(draws, 1), torch.stack(pots, 1), names, list(state.evaluations),
                       list(state.proposals), list(state.accepts), elapsed + time.perf_counter() - t0, state.beta,
                       {"kernel": kernel.config(), "warmup": int(warmup), "thin": int(thin), "seed": int(seed),
                        "iterations": int(num_iterations)})
