"""A view of an MCMC :class:`~samplers.posterior.Posterior` by chain: draws ``(C, T, d)``, ESS, R-hat, costs.

The posterior of an MCMC sampler holds the kept draws chain-major (``C * T`` samples) and, in its
diagnostics, the chain layout and the counters per level; :class:`ChainResult` reads them back. ESS is
ArviZ's bulk effective sample size and R-hat its rank-normalised split R-hat (Vehtari, Gelman, Simpson,
Carpenter & Buerkner 2021, Bayesian Analysis 16, 667-718).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from samplers.errors import SamplerConfigError
from samplers.posterior import Posterior

__all__ = ["ChainResult", "chain_diagnostics", "merge_chains"]


def _inference_data(values: np.ndarray, potentials: np.ndarray | None = None):
    import arviz as az

    stats = {"potential": potentials} if potentials is not None else None
    return az.from_dict(posterior={"u": values}, dims={"u": ["u_dim"]}, sample_stats=stats)


def _ess(values: np.ndarray) -> np.ndarray:
    import arviz as az

    return np.asarray(az.ess(_inference_data(values), method="bulk")["u"].values, dtype=float)


def _rhat(values: np.ndarray) -> np.ndarray:
    import arviz as az

    return np.asarray(az.rhat(_inference_data(values))["u"].values, dtype=float)


def chain_diagnostics(draws: torch.Tensor) -> dict:
    """``ess_min``, ``ess_median`` (bulk) and ``rhat_max`` (NaN for one chain) of draws ``(C, T, d)``; all NaN
    for fewer than 4 draws per chain (too few to estimate either)."""
    values = draws.reshape(draws.shape[0], draws.shape[1], -1).numpy()
    if values.shape[1] < 4:
        return {"ess_min": float("nan"), "ess_median": float("nan"), "rhat_max": float("nan")}
    ess = _ess(values)
    rhat = _rhat(values) if values.shape[0] > 1 else np.array([float("nan")])
    return {"ess_min": float(ess.min()), "ess_median": float(np.median(ess)),
            "rhat_max": float(np.nanmax(rhat)) if np.isfinite(rhat).any() else float("nan")}


class ChainResult:
    """The draws of an MCMC posterior by chain, with their cost and diagnostics (a view: nothing is copied).

    ``draws`` (C, T, d) kept states; ``potentials`` (C, T) the target-level potential at them; ``level_names``,
    ``evaluations`` / ``proposals`` / ``accepts`` per level; ``beta`` the final step size; ``wall_time_s``;
    ``config``; ``posterior`` the :class:`~samplers.posterior.Posterior` itself.
    """

    def __init__(self, posterior: Posterior):
        d = posterior.diagnostics
        if "chains" not in d or "draws" not in d:
            raise SamplerConfigError("ChainResult: not the posterior of an MCMC sampler (no chain layout in its "
                                     "diagnostics)")
        self.posterior = posterior

    def _d(self, key):
        return self.posterior.diagnostics[key]

    @property
    def draws(self) -> torch.Tensor:
        return self.posterior.samples.reshape(self._d("chains"), self._d("draws"), -1)

    @property
    def potentials(self) -> torch.Tensor:
        return self.posterior.extras["chain_potentials"]

    level_names = property(lambda self: list(self._d("level_names")))
    evaluations = property(lambda self: list(self._d("evaluations")))
    proposals = property(lambda self: list(self._d("proposals")))
    accepts = property(lambda self: list(self._d("accepts")))
    beta = property(lambda self: self._d("beta"))
    wall_time_s = property(lambda self: float(self.posterior.diagnostics.get("wall_time_s", 0.0)))
    config = property(lambda self: self.posterior.config)

    def _values(self, qoi) -> np.ndarray:
        d = self.draws
        if qoi is None:
            return d.numpy()
        C, T = d.shape[:2]
        q = torch.as_tensor(qoi(d.reshape(C * T, -1)), dtype=torch.float64)
        return q.reshape(C, T, -1).numpy()

    def to_inference_data(self, qoi: Callable | None = None):
        """ArviZ ``InferenceData``: variable ``u`` (chain, draw, u_dim), or ``qoi(u)`` (chain, draw, q) if given."""
        return _inference_data(self._values(qoi), self.potentials.numpy())

    def ess(self, qoi: Callable | None = None) -> np.ndarray:
        """Bulk effective sample size per component (all chains together)."""
        return _ess(self._values(qoi))

    def rhat(self, qoi: Callable | None = None) -> np.ndarray:
        """Rank-normalised split R-hat per component; needs at least 2 draws per chain."""
        return _rhat(self._values(qoi))

    def acceptance(self) -> dict:
        """Acceptance rate per level: accepted / judged proposals (NaN where none were judged)."""
        return {n: (a / p if p else float("nan"))
                for n, a, p in zip(self.level_names, self.accepts, self.proposals, strict=True)}

    def summary(self, qoi: Callable | None = None) -> dict:
        """JSON diagnostics: ESS (min, median), max R-hat, cost per level, ESS per fine solve and per second."""
        ess = self.ess(qoi)
        rhat = self.rhat(qoi) if self.draws.shape[0] > 1 else np.array([float("nan")])
        fine, wall = self.evaluations[-1], self.wall_time_s
        return {"chains": int(self.draws.shape[0]), "draws": int(self.draws.shape[1]),
                "ess_min": float(ess.min()), "ess_median": float(np.median(ess)),
                "rhat_max": float(np.nanmax(rhat)) if np.isfinite(rhat).any() else float("nan"),
                "evaluations": dict(zip(self.level_names, map(int, self.evaluations), strict=True)),
                "acceptance": self.acceptance(), "fine_solves": int(fine), "wall_time_s": wall,
                "ess_per_fine_solve": float(ess.min()) / max(fine, 1),
                "ess_per_second": float(ess.min()) / max(wall, 1e-12), "beta": self.beta}

    def to_posterior(self, transform: Callable | None = None, **kwargs) -> Posterior:
        """A :class:`Posterior` of ``transform(u)`` (physical units) over all chains and draws."""
        u = self.draws.reshape(-1, self.draws.shape[-1])
        with torch.no_grad():
            samples = u if transform is None else transform(u)
        return Posterior(samples, diagnostics=self.summary(), config=self.config, **kwargs)


def merge_chains(results: Sequence[ChainResult]) -> ChainResult:
    """One :class:`ChainResult` of independently run chains: draws stacked along the chain axis, counters
    summed, wall time the longest run's; ``config["seeds"]`` / ``config["betas"]`` keep each run's seed and
    final step size."""
    if not results:
        raise SamplerConfigError("no chain results to merge")
    T = {r.draws.shape[1] for r in results}
    if len(T) != 1:
        raise SamplerConfigError(f"the runs kept different numbers of draws {sorted(T)}; they cannot be stacked")
    first = results[0]
    draws = torch.cat([r.draws for r in results])
    total = lambda key: [sum(v) for v in zip(*(getattr(r, key) for r in results), strict=True)]  # noqa: E731
    diag = {**first.posterior.diagnostics, "chains": int(draws.shape[0]), "evaluations": total("evaluations"),
            "proposals": total("proposals"), "accepts": total("accepts"),
            "wall_time_s": max(r.wall_time_s for r in results), **chain_diagnostics(draws)}
    names = diag["level_names"]
    diag["acceptance"] = {n: (a / p if p else float("nan"))
                          for n, a, p in zip(names, diag["accepts"], diag["proposals"], strict=True)}
    config = {**first.config, "seeds": [r.config.get("seed") for r in results], "betas": [r.beta for r in results]}
    post = Posterior(torch.cat([r.posterior.samples for r in results]), diagnostics=diag, config=config,
                     extras={"chain_potentials": torch.cat([r.potentials for r in results])})
    return ChainResult(post)
