"""Summaries of a calibration: ArviZ's table and the convergence checks that matter for a few parameters.

- posterior mean, sd and 94% HDI per parameter;
- rank-normalised split R-hat (Vehtari et al. 2021, Bayesian Analysis 16, 667-718): chains agree when <= 1.01;
- bulk and tail effective sample sizes (same paper): >= 100 per chain is the usual floor;
- the number of divergent transitions after warm-up (Betancourt 2017, arXiv:1701.02434, sec. 6.2):
  any divergence means the sampler could not follow the posterior's geometry somewhere.

R-hat compares chains: with one chain there is none, so the table has no ``r_hat`` column and the
diagnostics line says ``R-hat needs >= 2 chains`` (no NaN, and no ArviZ shape warning).
"""

from __future__ import annotations

import contextlib
import logging

import arviz as az
import pandas as pd

__all__ = ["summary", "format_summary", "divergences", "RHAT_NEEDS_CHAINS"]


def _names(idata: az.InferenceData, var_names=None) -> list[str]:
    if var_names is not None:
        return list(var_names)
    return [v for v in idata.posterior.data_vars if idata.posterior[v].ndim == 2]  # scalar parameters


#: what the summaries say instead of R-hat for a single chain
RHAT_NEEDS_CHAINS = "R-hat needs >= 2 chains"


class _NoShapeWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Shape validation failed")


@contextlib.contextmanager
def _quiet_single_chain():
    """Silence ArviZ's 'Shape validation failed ... chains=2' log line (R-hat is left out instead)."""
    log = getattr(az, "_log", None)
    if not isinstance(log, logging.Logger):
        yield
        return
    quiet = _NoShapeWarning()
    log.addFilter(quiet)
    try:
        yield
    finally:
        log.removeFilter(quiet)


def summary(idata: az.InferenceData, var_names=None) -> pd.DataFrame:
    """``az.summary`` (mean, sd, 94% HDI, MCSE, bulk/tail ESS, R-hat) of the scalar parameters; without the
    ``r_hat`` column for a single chain (module docstring)."""
    if idata.posterior.sizes["chain"] > 1:
        return az.summary(idata, var_names=_names(idata, var_names), round_to="none")
    with _quiet_single_chain():
        table = az.summary(idata, var_names=_names(idata, var_names), round_to="none")
    return table.drop(columns=["r_hat"], errors="ignore")


def divergences(idata: az.InferenceData) -> int:
    """Divergent transitions after warm-up, over all chains (0 when the sampler records none)."""
    stats = getattr(idata, "sample_stats", None)
    if stats is None or "diverging" not in stats:
        return 0
    return int(stats["diverging"].sum())


def format_summary(idata: az.InferenceData, var_names=None) -> str:
    """The summary table as text (4 significant digits) plus one line of diagnostics."""
    table = summary(idata, var_names)
    lines = [table.to_string(float_format=lambda v: f"{v:.4g}")]
    post = idata.posterior
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    div = divergences(idata)
    rhat = f"max R-hat: {table['r_hat'].max():.4f}" if "r_hat" in table and chains > 1 else RHAT_NEEDS_CHAINS
    lines.append(f"{chains} chain{'s' if chains > 1 else ''} x {draws} draws; divergences: {div}; {rhat}; "
                 f"min bulk ESS: {table['ess_bulk'].min():.0f}")
    return "\n".join(lines)
