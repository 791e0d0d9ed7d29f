"""Trace and pair plots of a calibration, written as PNG files atomically (Matplotlib Agg, no screen).

- trace plot: per parameter, the marginal density of each chain and the draws against iteration;
  chains that overlap and look like stationary noise indicate mixing (ArviZ ``plot_trace``);
- pair plot: every pair of parameters as a scatter of draws, divergent transitions marked, with the
  true values when known (ArviZ ``plot_pair``); ridges show which combinations the data constrain.

Both read ArviZ ``InferenceData`` (from :func:`inverse.calibration.calibrate` or a posterior file) and
are meant for the ``inverse plot`` command.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import arviz as az
import numpy as np

from inverse.errors import UserError
from inverse.figures import save_figure  # importing it selects the Agg backend

__all__ = ["plot_trace", "plot_pair"]


def _scalar_names(idata: az.InferenceData, var_names) -> list[str]:
    if "posterior" not in idata.groups():
        raise UserError("the InferenceData has no posterior group")
    names = [v for v in idata.posterior.data_vars if idata.posterior[v].ndim == 2]
    if var_names is None:  # the model's own order when recorded (NumPyro sorts sites by name)
        try:
            order = json.loads(idata.posterior.attrs.get("parameters", "[]"))
        except (TypeError, ValueError):
            order = []
        first = [v for v in order if v in names]
        return first + [v for v in names if v not in first]
    missing = [v for v in var_names if v not in idata.posterior]
    if missing:
        raise UserError(f"no parameter {missing[0]!r} in the posterior (it has {', '.join(names)})")
    return list(var_names)


def _title(idata: az.InferenceData) -> str:
    attrs = idata.posterior.attrs
    model = attrs.get("model", "")
    return f"{model}: " if model else ""


def plot_trace(idata: az.InferenceData, path, *, var_names=None, overwrite: bool = False, dpi: int = 110) -> Path:
    """Trace plot (densities per chain | draws against iteration) of the scalar parameters, as PNG.

    Example::

        from inverse.calibration.plots import plot_trace
        plot_trace(idata, "trace.png", overwrite=True)
    """
    names = _scalar_names(idata, var_names)
    axes = az.plot_trace(idata, var_names=names, compact=False, divergences="bottom",
                         figsize=(10, 2.2 * len(names)), show=False)
    fig = np.asarray(axes).ravel()[0].figure
    fig.suptitle(f"{_title(idata)}trace of {idata.posterior.sizes['chain']} chains", y=1.0)
    fig.tight_layout()
    return save_figure(fig, path, overwrite=overwrite, dpi=dpi)


def plot_pair(idata: az.InferenceData, path, *, var_names=None, truth: dict | None = None,
              overwrite: bool = False, dpi: int = 110) -> Path:
    """Pair plot (scatter of every pair, marginal densities on the diagonal, divergences marked), as PNG.

    ``truth``: parameter values to mark; by default the ``truth`` attribute of the posterior when present.
    A single parameter gives its marginal density.

    Example::

        from inverse.calibration.plots import plot_pair
        plot_pair(idata, "pair.png", truth={"S0": 1.0, "T2": 80.0}, overwrite=True)
    """
    names = _scalar_names(idata, var_names)
    if truth is None and "truth" in idata.posterior.attrs:
        truth = json.loads(idata.posterior.attrs["truth"])
    if len(names) == 1:
        ax = az.plot_posterior(idata, var_names=names, show=False)
        fig = np.asarray(ax).ravel()[0].figure
        if truth and names[0] in truth:
            np.asarray(ax).ravel()[0].axvline(truth[names[0]], color="k", ls="--", label="truth")
    else:
        ref = {k: float(v) for k, v in (truth or {}).items() if k in names} or None
        size = min(2.4 * len(names), 16)
        has_div = "sample_stats" in idata.groups() and "diverging" in idata.sample_stats
        with warnings.catch_warnings():  # ArviZ warns when the truth misses a parameter (e.g. sigma): fine
            warnings.filterwarnings("ignore", message="Argument reference_values does not include")
            axes = az.plot_pair(idata, var_names=names, kind="scatter", marginals=True, divergences=has_div,
                                reference_values=ref, figsize=(size, size), show=False,
                                scatter_kwargs={"alpha": 0.25, "s": 4})
        fig = np.asarray(axes).ravel()[0].figure
    fig.suptitle(f"{_title(idata)}posterior pairs" + (" (dots: truth)" if truth else ""), y=1.0)
    return save_figure(fig, path, overwrite=overwrite, dpi=dpi)
