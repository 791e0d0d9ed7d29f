"""The GPU check: the measurements ``scripts/gpu_check.sh`` takes on a leased device, written as one JSON file.

Sections (each timed and recorded separately; a failing section records its error and the others still run):

- ``dps_1000``: DPS, 1,000 steps, 64^2 CT (30 views) with ``phantoms-64``, ``--particles`` samples (goal: under 10 s
  on an H100);
- ``samplers``: every sampler of :data:`SAMPLERS` for ``--sampler-steps`` steps on the same problem, wall time and
  peak device memory (``torch.cuda.max_memory_allocated``, reset before each);
- ``networks``: the shipped UNet architecture (randomly initialised) at 64^2, 128^2 and 256^2, one denoiser call at
  batch 1, 8 and 32;
- ``batch``: ``inverse reconstruct-batch`` on ``--batch-files`` CT measurements with 1, 2, 4 and 8 CPU processes
  (``--accelerator cpu --strategy ddp``, one thread each; goal: at least 1.8x at 2 processes).

``scripts/benchmarks/gpu_table.py`` turns the JSON into the GPU table of BENCHMARKS.md. ``--device cpu --quick``
runs every section at toy sizes (the smoke test in ``tests/test_benchmark_quick.py``).

    python scripts/benchmarks/gpu_check.py --out gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

__all__ = ["SAMPLERS", "main"]

SAMPLERS = ("dps", "mcg", "tds", "mcgdiff", "afes", "enkg", "eki", "daps", "pnp-dm", "diffpir", "ddrm")


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _ct_case(device):
    """64^2 CT-30 on a held-out phantom (seed 10,000) and ``phantoms-64``, on ``device``."""
    from inverse.measurements import simulate
    from priors import load_prior

    return simulate("ct", seed=10_000).inverse_problem().to(torch.device(device)), load_prior("phantoms-64",
                                                                                              device=device)


def dps_1000(a) -> dict:
    """DPS at 64^2 for ``1000`` steps (``20`` in quick mode)."""
    from samplers import get_sampler

    problem, prior = _ct_case(a.device)
    steps = 5 if a.quick else 1000
    sampler = get_sampler("dps", num_steps=steps, zeta=0.3)
    get_sampler("dps", num_steps=5, zeta=0.3).sample(problem, prior, a.particles, seed=1)  # warm-up: kernels
    _sync(a.device)
    t0 = time.perf_counter()
    post = sampler.sample(problem, prior, a.particles, seed=0)
    _sync(a.device)
    seconds = time.perf_counter() - t0
    from inverse.metrics import psnr

    return {"steps": steps, "particles": a.particles, "seconds": seconds,
            "psnr_db": psnr(post.mean().cpu().double(), problem.truth.cpu().double())}


def samplers(a) -> dict:
    """Every sampler for ``--sampler-steps`` steps on 64^2 CT: wall time and peak device memory."""
    from inverse.reconstruction import steps_setting
    from samplers import get_sampler

    problem, prior = _ct_case(a.device)
    out = {}
    for name in (("dps", "ddrm") if a.quick else SAMPLERS):
        try:
            sampler = get_sampler(name, **{steps_setting(name): a.sampler_steps})
            if torch.device(a.device).type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            _sync(a.device)
            t0 = time.perf_counter()
            post = sampler.sample(problem, prior, a.particles, seed=0)
            _sync(a.device)
            row = {"seconds": time.perf_counter() - t0, "nfe": post.diagnostics.get("nfe")}
            if torch.device(a.device).type == "cuda":
                row["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
            out[name] = row
        except Exception as e:  # one sampler's failure is a result; the others still run
            out[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
        print(name, json.dumps(out[name]), flush=True)
    return {"steps": a.sampler_steps, "particles": a.particles, "rows": out}


def networks(a) -> dict:
    """The shipped UNet architecture at several sizes, one denoiser call per batch size (median of 5)."""
    from priors import EDMPrior
    from priors.training import build_unet

    rows = []
    sizes = (16, 32) if a.quick else (64, 128, 256)
    batches = (1, 2) if a.quick else (1, 8, 32)
    for size in sizes:
        prior = EDMPrior(build_unet(size).eval(), (1, size, size)).to(a.device)
        for b in batches:
            x = torch.randn(b, 1, size, size, device=a.device)
            sig = torch.ones(b, device=a.device)
            times = []
            with torch.no_grad():
                for i in range(6):
                    _sync(a.device)
                    t0 = time.perf_counter()
                    prior.denoise(x, sig)
                    _sync(a.device)
                    if i:
                        times.append(time.perf_counter() - t0)
            rows.append({"size": size, "batch": b, "seconds": sorted(times)[len(times) // 2]})
    return {"rows": rows}


def batch(a) -> dict:
    """``inverse reconstruct-batch`` wall time with 1, 2, 4 and 8 CPU processes on the same measurement files."""
    procs = (1, 2) if a.quick else (1, 2, 4, 8)
    files = 2 if a.quick else a.batch_files
    steps = 3 if a.quick else a.batch_steps
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ys = Path(tmp) / "ys"
        ys.mkdir()
        for i in range(files):
            subprocess.run([sys.executable, "-m", "inverse.cli", "simulate", "--problem", "ct", "--seed", str(i),
                            "--out", str(ys / f"y{i}.nc")], check=True, capture_output=True)
        for n in procs:
            out = Path(tmp) / f"post{n}"
            cmd = [sys.executable, "-m", "inverse.cli", "reconstruct-batch", str(ys), "--out-dir", str(out),
                   "--sampler", "dps", "--steps", str(steps), "--num-samples", "2", "--threads", "1",
                   "--accelerator", "cpu", "--devices", str(n), "--quiet"]
            if n > 1:
                cmd += ["--strategy", "ddp"]
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True)
            row = {"processes": n, "seconds": time.perf_counter() - t0, "files": files, "steps": steps,
                   "written": len(list(out.glob("*-posterior.nc"))) if out.exists() else 0}
            if r.returncode:
                row["error"] = r.stderr.strip().splitlines()[-1][:300] if r.stderr.strip() else f"exit {r.returncode}"
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = rows[0]["seconds"]
    for row in rows:
        row["speedup"] = base / row["seconds"]
    return {"rows": rows}


SECTIONS = {"dps_1000": dps_1000, "samplers": samplers, "networks": networks, "batch": batch}


def _machine(device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "device": str(device), "date": time.strftime("%Y-%m-%d")}
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="the JSON file written")
    p.add_argument("--device", default="cuda")
    p.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    p.add_argument("--particles", type=int, default=4)
    p.add_argument("--sampler-steps", type=int, default=100)
    p.add_argument("--batch-files", type=int, default=24)
    p.add_argument("--batch-steps", type=int, default=20)
    p.add_argument("--tests-log", default=None, help="the CUDA tests' log, whose summary line is recorded")
    p.add_argument("--quick", action="store_true", help="toy sizes (a smoke test on the CPU)")
    a = p.parse_args(argv)
    if a.quick:
        a.sampler_steps = min(a.sampler_steps, 3)
    result = {"machine": _machine(a.device), "command": " ".join(["python scripts/benchmarks/gpu_check.py",
                                                                   *(argv if argv is not None else sys.argv[1:])])}
    if a.tests_log and Path(a.tests_log).exists():
        lines = [ln for ln in Path(a.tests_log).read_text().splitlines() if ln.strip()]
        result["cuda_tests"] = lines[-1] if lines else ""
    for name in a.sections:
        t0 = time.perf_counter()
        try:
            result[name] = SECTIONS[name](a)
        except Exception as e:  # record and go on: a lease is too short to lose the other sections
            result[name] = {"error": f"{type(e).__name__}: {e}"[:300], "traceback": traceback.format_exc()[-2000:]}
        result[name]["section_s"] = time.perf_counter() - t0
        Path(a.out).write_text(json.dumps(result, indent=1))  # after each section: a killed run keeps the rest
        print(f"== {name}: {result[name]['section_s']:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
