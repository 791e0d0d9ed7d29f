"""The benchmark suite behind ``scripts/benchmark.py``: one module per sub-benchmark.

| name | module | what |
|---|---|---|
| ``gmm`` | :mod:`inverse.benchmarking.gmm` | every sampler on the Gaussian-mixture exact posterior |
| ``imaging`` | :mod:`inverse.benchmarking.imaging` | CT / MRI 64 x 64, our samplers vs deepinv DPS / DiffPIR, FBP, TV |
| ``navier-stokes`` | :mod:`inverse.benchmarking.navier_stokes` | EnKG / DPS / EKI at equal forward budget |
| ``fwi`` | :mod:`inverse.benchmarking.fwi` | DPS / MCG / SMC vs L-BFGS from a smoothed truth |
| ``trace-interp`` | :mod:`inverse.benchmarking.trace_interp` | SNR of trace interpolation |
| ``tables`` | :mod:`inverse.benchmarking.tables` | two-level MCMC and calibration tables (their scripts) |
| ``overhead`` | :mod:`inverse.benchmarking.overhead` | share of wall time in the network and the forward model |

Each module exposes ``run(settings) -> records`` and ``table(records, settings) -> markdown``
(:class:`inverse.benchmarking.common.BenchSettings`); :func:`run_benchmark` runs one by name.
"""

from __future__ import annotations

import importlib
import time

from inverse.benchmarking.common import BenchSettings

__all__ = ["BENCHMARKS", "BenchSettings", "run_benchmark"]

#: sub-benchmark name -> module
BENCHMARKS = {"gmm": "gmm", "imaging": "imaging", "navier-stokes": "navier_stokes", "fwi": "fwi",
              "trace-interp": "trace_interp", "tables": "tables", "overhead": "overhead"}


def run_benchmark(name: str, settings: BenchSettings) -> dict:
    """Run sub-benchmark ``name`` and write its table; returns ``{"name", "seconds", "table"}``."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})")
    mod = importlib.import_module(f"inverse.benchmarking.{BENCHMARKS[name]}")
    t0 = time.perf_counter()
    records = mod.run(settings)
    text = mod.table(records, settings)
    return {"name": name, "seconds": time.perf_counter() - t0, "table": text}
