"""Sub-benchmark 3: Navier-Stokes 64 x 64, EnKG vs DPS vs ensemble Kalman inversion at equal forward budget.

A thin layer over ``scripts/bench_enkg_ns.py`` (its problem, budget matching and scores: relative
L2 of the posterior mean of the initial vorticity): the suite calls its ``main`` with the suite's
output file and writes its table into the suite's own block. Prior: the shipped ``ns-vorticity-64``
when it loads, otherwise the script's exact stationary-Gaussian stand-in (``gaussian-grf``), stated
in the table. Budget B = J x updates x guided steps NS solves per instance (EnKG's cost); EKI makes
B / J Kalman iterations, DPS B / steps samples.

Reference: H. Zheng et al., "Ensemble Kalman diffusion guidance" (2024); InverseBench (Zheng et
al., ICLR 2025) for the problem.
"""

from __future__ import annotations

from inverse.benchmarking.common import BenchSettings, machine_line, write_block
from inverse.benchmarking.scripts import load_script

__all__ = ["BLOCK", "HEADING", "plan", "run", "table"]

BLOCK = "suite-ns"
HEADING = "Suite: Navier-Stokes 64 x 64, EnKG / DPS / EKI at equal forward budget"


def _prior_name() -> tuple[str, str]:
    from priors import PriorLoadError, load_prior

    try:
        load_prior("ns-vorticity-64")
        return "ns-vorticity-64", ""
    except PriorLoadError:
        return "gaussian-grf", ("ns-vorticity-64 is not available (not trained yet): the stationary Gaussian "
                                "stand-in fitted to 128 snapshots (exact denoiser) is used instead.")


def plan(settings: BenchSettings) -> dict:
    """The script's arguments for this run."""
    prior, note = _prior_name()
    if settings.quick:
        args = ["--instances", str(settings.n_seeds(10)), "--resolution", "32", "--particles", "8", "--steps", "6",
                "--dps-steps", "4", "--dps-chunk", "8", "--eki-prior-steps", "4", "--fit-samples", "8"]
        prior, note = "gaussian-grf", "Quick run: stationary Gaussian stand-in, 32 x 32, J = 8, 6 ODE steps."
    else:
        args = ["--instances", str(settings.n_seeds(10))]
    return {"prior": prior, "note": note, "args": ["--prior", prior, *args, "--threads", str(settings.threads)]}


def run(settings: BenchSettings) -> list:
    """Run the script's missing (instance, sampler) records into ``<out_dir>/navier_stokes[-quick].jsonl``."""
    p = plan(settings)
    path = settings.store("navier_stokes").path
    path.parent.mkdir(parents=True, exist_ok=True)
    load_script("bench_enkg_ns").main([*p["args"], "--out", str(path)])
    return [str(path)]


def table(paths: list, settings: BenchSettings) -> str:
    """The script's table (its report) under the suite's header, in the ``suite-ns`` block."""
    p = plan(settings)
    mod = load_script("bench_enkg_ns")
    body = mod.report(paths, None, "python scripts/bench_enkg_ns.py " + " ".join(p["args"]))
    n = settings.n_seeds(10)
    head = machine_line(settings.threads, f"instances 0-{n - 1} (truth seed 10000 + i)", p["note"])
    return write_block(settings, BLOCK, HEADING, head + "\n\n" + body)
