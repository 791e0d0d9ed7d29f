"""Sub-benchmark 6: the two-level MCMC and calibration tables, re-run through their own scripts.

``bench_calibration.py`` (NUTS and ensemble slice sampling, in JAX and through the torch bridge; ESS
per second) and ``bench_mcmc_darcy.py`` (pCN vs delayed acceptance on Darcy flow; ESS per fine
solve) keep their command lines, outputs and BENCHMARKS.md blocks; the suite calls their ``main``
with its own output paths. A finished run is not repeated (its JSON output is reused). Quick runs
shrink both (one calibration model, short chains; a 32 x 32 Darcy grid, short chains, no tinyDA).
"""

from __future__ import annotations

import json
from pathlib import Path

from common import BenchSettings

__all__ = ["CALIBRATION_BLOCK", "MCMC_BLOCK", "MCMC_FULL_ARGS", "run", "run_calibration", "run_mcmc", "table"]

CALIBRATION_BLOCK = ("calibration-table", "Calibration: NUTS and ensemble slice sampling, JAX and the torch bridge")
MCMC_BLOCK = ("mcmc-darcy-table", "Two-level MCMC on Darcy flow")

#: the command line of the two-level MCMC table in BENCHMARKS.md (the suite re-runs exactly that table)
MCMC_FULL_ARGS = ("--sizes", "32", "64", "--modes", "16", "--noise", "0.02", "--pcn-iterations", "10000",
                  "--pcn-warmup", "1000", "--da-iterations", "600", "--warmup", "100", "--subchain", "20",
                  "--train-examples", "1000", "--train-steps", "1500", "--gpcn", "--pilot-iterations", "1500",
                  "--pilot-warmup", "300")


def _suffix(settings: BenchSettings) -> str:
    return "-quick" if settings.quick else ""


def run_calibration(settings: BenchSettings) -> dict:
    """Run ``bench_calibration.py`` unless its JSON output exists; returns a status record."""
    path = Path(settings.out_dir) / f"calibration{_suffix(settings)}.json"
    args = ["--models", "mri-t2", "--nuts", "50", "50", "--ess", "50", "100"] if settings.quick else []
    args += ["--threads", str(settings.threads), "--json", str(path)]
    if path.exists():
        return {"table": "calibration", "status": "reused", "path": str(path)}
    import bench_calibration

    md = [] if settings.markdown is None else ["--markdown", str(settings.markdown)]
    bench_calibration.main(args + md)
    return {"table": "calibration", "status": "ran", "path": str(path)}


def run_mcmc(settings: BenchSettings) -> dict:
    """Run ``bench_mcmc_darcy.py`` unless its JSON-lines output exists; returns a status record."""
    path = Path(settings.out_dir) / f"mcmc_darcy{_suffix(settings)}.jsonl"
    if path.exists() and path.stat().st_size > 0:
        return {"table": "mcmc", "status": "reused", "path": str(path)}
    args = (["--sizes", "32", "--modes", "8", "--chains", "2", "--pcn-iterations", "60", "--pcn-warmup", "10",
             "--da-iterations", "10", "--warmup", "2", "--subchain", "4", "--subchain3", "2", "--train-examples", "40",
             "--train-steps", "30", "--skip-tinyda"] if settings.quick else list(MCMC_FULL_ARGS))
    args += ["--out", str(path)]
    args += ["--no-markdown"] if settings.markdown is None else ["--markdown", str(settings.markdown)]
    try:
        import bench_mcmc_darcy

        bench_mcmc_darcy.main(args)
    except Exception as e:  # a failed table is reported in the run's summary, the other tables still run
        return {"table": "mcmc", "status": f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    return {"table": "mcmc", "status": "ran", "path": str(path)}


def run(settings: BenchSettings) -> list[dict]:
    """Both tables; each returns a status record (ran / reused / failed)."""
    out = [run_calibration(settings), run_mcmc(settings)]
    for r in out:
        settings.log(f"tables {r['table']}: {r['status']}")
    return out


def table(records: list[dict], settings: BenchSettings) -> str:
    """The scripts write their own blocks; this returns a one-line status summary (JSON)."""
    return json.dumps(records)
