"""The benchmark suite: every sampler against the anchors, side by side, in one run.

Sub-benchmarks (one module each in this folder; ``--only`` picks some, ``--all`` runs them all):

    gmm            Gaussian-mixture exact posterior: all samplers vs the floor (SW, mode TV, time, NFE)
    imaging        CT (30 views) and MRI (x4 / x8, single- and multi-coil) 64 x 64 with phantoms-64:
                   our samplers, deepinv DPS / DiffPIR on the same prior, FBP / zero-filled, TV
    navier-stokes  EnKG / DPS / EKI at equal forward budget (bench_enkg_ns.py)
    fwi            DPS / MCG / SMC vs L-BFGS from a smoothed truth
    trace-interp   seismic trace interpolation: zero-filled, linear, DPS through the wave equation
    tables         two-level MCMC (bench_mcmc_darcy.py) and calibration (bench_calibration.py)
    overhead       share of each sampler's wall time inside the network and the forward model

Results go, one JSON object per finished cell, to ``--out-dir/<name>.jsonl`` (a re-run skips finished
cells, so an interrupted run resumes); the tables replace their blocks in ``--markdown`` and a summary
with each sub-benchmark's run time is appended to the run log ``--out-dir/suite.json`` (every run, and
each sub-benchmark's seconds summed over the runs). ``--quick`` is a smoke run
(tiny sizes, one seed, a few steps; results ``*-quick.jsonl``) whose tables go to a copy of
BENCHMARKS.md in ``--out-dir`` unless ``--markdown`` is given.

    python scripts/benchmarks/run.py --all                        # regenerates BENCHMARKS.md (hours: see its header)
    python scripts/benchmarks/run.py --quick --all --out-dir /tmp/bench   # smoke run, ~3 min
    python scripts/benchmarks/run.py --only gmm overhead --seeds 5
    python scripts/benchmarks/run.py --only imaging --problems mri-x4 --instances 10-19   # beside a 0-9 process

Each sub-benchmark module exposes ``run(settings) -> records`` and ``table(records, settings) -> markdown``
(:class:`common.BenchSettings`); :func:`run_benchmark` runs one by name. The scripts of this folder are run
by path from the repository root and import their siblings by name (Python puts a script's own folder first
on ``sys.path``); nothing in the installed packages imports them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch
from common import BenchSettings
from imaging import check_methods, parse_instance_range

from samplers.atomic import atomic_output

__all__ = ["BENCHMARKS", "main", "parse_args", "record_run", "run_benchmark"]

#: the repository (default output folder and BENCHMARKS.md)
ROOT = Path(__file__).resolve().parents[2]

#: sub-benchmark name -> module of this folder
BENCHMARKS = {"gmm": "gmm", "imaging": "imaging", "navier-stokes": "navier_stokes", "fwi": "fwi",
              "trace-interp": "trace_interp", "tables": "tables", "overhead": "overhead"}


def run_benchmark(name: str, settings: BenchSettings) -> dict:
    """Run sub-benchmark ``name`` and write its table; returns ``{"name", "seconds", "table"}``."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})")
    mod = importlib.import_module(BENCHMARKS[name])
    t0 = time.perf_counter()
    records = mod.run(settings)
    text = mod.table(records, settings)
    return {"name": name, "seconds": time.perf_counter() - t0, "table": text}


def parse_args(argv=None) -> argparse.Namespace:
    """Command line (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="run every sub-benchmark")
    which.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME",
                       help=f"run these sub-benchmarks ({', '.join(BENCHMARKS)})")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, one seed, few steps")
    p.add_argument("--seeds", type=int, default=None, help="instances per cell (default: each benchmark's own)")
    p.add_argument("--out-dir", default=str(ROOT / "data" / "benchmarks" / "suite"))
    p.add_argument("--markdown", default=None,
                   help="Markdown file whose blocks are replaced (default: BENCHMARKS.md; with --quick a copy in "
                        "--out-dir)")
    p.add_argument("--no-markdown", action="store_true", help="write JSON only")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--problems", nargs="+", default=None, metavar="LABEL",
                   help="imaging only: run these problems (ct-30 mri-x4 mri-x8 mri-mc-x4 mri-mc-x8), e.g. one "
                        "per process sharing --out-dir")
    p.add_argument("--instances", default=None, metavar="START-STOP",
                   help="imaging only: compute these instances (phantom seeds, inclusive), e.g. 14-16 in one process "
                        "and 17-19 in another sharing --out-dir; the tables read every stored instance")
    p.add_argument("--rerun", nargs="+", default=None, metavar="METHOD",
                   help="imaging only: discard the stored rows of these methods (on --problems and --instances) "
                        "and run them again, e.g. after a change to their code; do not repeat it when resuming")
    p.add_argument("--device", default="cpu",
                   help="cpu or cuda[:i]; navier-stokes then runs at InverseBench's budget (the others stay on the "
                        "CPU)")
    return p.parse_args(argv)


def _markdown(args, out_dir: Path) -> Path | None:
    if args.no_markdown:
        return None
    if args.markdown:
        return Path(args.markdown)
    if args.quick:  # never touch the real file in a smoke run
        copy = out_dir / "BENCHMARKS-quick.md"
        if not copy.exists():
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / "BENCHMARKS.md", copy)
        return copy
    return ROOT / "BENCHMARKS.md"


def record_run(path: Path, summary: dict) -> dict:
    """Append this run's ``summary`` to the run log ``path`` (atomically) and return the log.

    The suite is run part by part (``--only``, resumed runs), so one run's times are not the suite's:
    the log keeps every run (``runs``) and sums each sub-benchmark's seconds over them
    (``seconds_by_benchmark``), the measured run time of ``--all`` on this machine. A file in the
    older one-run format becomes the first entry of ``runs``.
    """
    log = {"runs": []}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}); move it aside to start a new run log") from None
        log = old if "runs" in old else {"runs": [old]}
    log["runs"].append(summary)
    total: dict[str, float] = {}
    for run in log["runs"]:
        for name, v in run.get("benchmarks", {}).items():
            total[name] = total.get(name, 0.0) + float(v["seconds"])
    log["seconds_by_benchmark"] = total
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(log, indent=1))
    return log


def main(argv=None) -> int:
    """Run the selected sub-benchmarks; print each table and the run times."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.device != "cpu" and not (args.device.startswith("cuda") and torch.cuda.is_available()):
        print(f"error: --device {args.device}: CUDA is not available here (use --device cpu)", file=sys.stderr)
        return 2
    out_dir = Path(args.out_dir)
    names = list(BENCHMARKS) if args.all else args.only
    extra = {"problems": args.problems} if args.problems else {}
    for flag, value in (("--instances", args.instances), ("--rerun", args.rerun)):
        if value is not None and names != ["imaging"]:
            print(f"error: {flag} applies to the imaging benchmark only (use --only imaging)", file=sys.stderr)
            return 2
    try:
        if args.rerun:
            extra["rerun"] = check_methods(args.rerun)
        if args.instances is not None:
            extra["instances"] = parse_instance_range(args.instances)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    shown = " ".join(argv if argv is not None else sys.argv[1:])
    settings = BenchSettings(quick=args.quick, seeds=args.seeds, out_dir=out_dir, markdown=_markdown(args, out_dir),
                             threads=args.threads, device=args.device, command=f"python scripts/benchmarks/run.py "
                                                                               f"{shown}".strip(),
                             log=lambda s: print(s, flush=True),
                             extra=extra)
    t0 = time.perf_counter()
    summary = {"command": settings.command, "date": dt.datetime.now().isoformat(timespec="seconds"),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
               "threads": args.threads, "quick": args.quick, "seeds": args.seeds, "benchmarks": {}}
    for name in names:
        print(f"== {name}", flush=True)
        r = run_benchmark(name, settings)
        summary["benchmarks"][name] = {"seconds": r["seconds"]}
        print(r["table"], flush=True)
        print(f"== {name}: {r['seconds']:.1f} s", flush=True)
    summary["total_seconds"] = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    record_run(out_dir / f"suite{'-quick' if args.quick else ''}.json", summary)
    print(f"done in {summary['total_seconds']:.0f} s: " + ", ".join(f"{k} {v['seconds']:.0f} s"
                                                               for k, v in summary["benchmarks"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
