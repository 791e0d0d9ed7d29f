"""Sub-benchmark 3: Navier-Stokes 64 x 64, EnKG vs DPS vs ensemble Kalman inversion at equal forward budget.

A thin layer over ``bench_enkg_ns.py`` (its problem, budget matching and scores: relative
L2 of the posterior mean of the initial vorticity): the suite calls its ``main`` with the suite's
output file and writes its table into the suite's own block. Prior: the shipped ``ns-vorticity-64``
when it loads, otherwise the script's exact stationary-Gaussian stand-in (``gaussian-grf``), stated
in the table. Budget B = J x updates x guided steps NS solves per instance (EnKG's cost); EKI makes
B / J Kalman iterations, DPS B / steps samples.

Budget by device: on ``cuda`` the script's defaults (InverseBench's scale: J = 512 particles, 80 steps, 73,728
solves per sampler and instance, ~214 s per sampler-instance on an H100); on the CPU the budget of
its Navier-Stokes table in BENCHMARKS.md (J = 32, 30 steps, one update, 864 solves; ~6.4 min per instance at 1 thread),
because the GPU budget costs ~12 CPU hours per instance here.

Reference: H. Zheng et al., "Ensemble Kalman diffusion guidance" (2024); InverseBench (Zheng et
al., ICLR 2025) for the problem.
"""

from __future__ import annotations

import bench_enkg_ns
from common import BenchSettings, write_block
from report import machine_line

__all__ = ["BLOCK", "CPU_ARGS", "HEADING", "plan", "run", "table"]

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


#: the CPU-sized budget (BENCHMARKS.md, Navier-Stokes table): 864 NS solves per sampler and instance
CPU_ARGS = ("--particles", "32", "--steps", "30", "--updates", "1", "--max-x0-steps", "2", "--gamma", "0.75",
            "--dps-steps", "30")


def plan(settings: BenchSettings) -> dict:
    """The script's arguments for this run."""
    prior, note = _prior_name()
    if settings.quick:
        args = ["--instances", str(settings.n_seeds(10)), "--resolution", "32", "--particles", "8", "--steps", "6",
                "--dps-steps", "4", "--dps-chunk", "8", "--eki-prior-steps", "4", "--fit-samples", "8"]
        prior, note = "gaussian-grf", "Quick run: stationary Gaussian stand-in, 32 x 32, J = 8, 6 ODE steps."
    elif str(settings.device).startswith("cuda"):
        args = ["--instances", str(settings.n_seeds(10)), "--device", str(settings.device)]
    else:
        args = ["--instances", str(settings.n_seeds(10)), *CPU_ARGS]
    return {"prior": prior, "note": note, "args": ["--prior", prior, *args, "--threads", str(settings.threads)]}


def run(settings: BenchSettings) -> list:
    """Run the script's missing (instance, sampler) records into ``<out_dir>/navier_stokes[-quick].jsonl``."""
    p = plan(settings)
    path = settings.store("navier_stokes").path
    path.parent.mkdir(parents=True, exist_ok=True)
    bench_enkg_ns.main([*p["args"], "--out", str(path)])
    return [str(path)]


def table(paths: list, settings: BenchSettings) -> str:
    """The script's table (its report) under the suite's header, in the ``suite-ns`` block."""
    p = plan(settings)
    body = bench_enkg_ns.report(paths, None, "python scripts/benchmarks/bench_enkg_ns.py " + " ".join(p["args"]))
    n = settings.n_seeds(10)
    head = machine_line(settings.threads, seeds=f"instances 0-{n - 1} (truth seed 10000 + i)", note=p["note"])
    return write_block(settings, BLOCK, HEADING, head + "\n\n" + body)
