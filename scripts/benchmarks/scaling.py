"""Cost against size: time per step and peak memory of every diffusion sampler on CT and MRI at 32^2 ... 256^2.

For each problem (parallel-beam CT with 30 views; single-coil Cartesian MRI x4, real images) and image size, the
prior is the shipped network architecture (``phantoms-64``'s UNet, ``priors.training.build_unet``) at that size,
randomly initialised (no trained prior exists at most sizes; the cost does not depend on the weights), with the
``phantoms-64`` normalisation. Every sampler of :data:`SAMPLERS` runs with its default settings for the problem
(``inverse.reconstruction.DEFAULT_SETTINGS``) and ``--particles`` particles: its ``init`` (which includes the
singular-basis decomposition of the basis samplers, the first time) is timed, then ``--steps`` steps after one
warm-up step, reported by their median. Peak memory is the resident set size, sampled every 2 ms by a thread,
above the RSS just before ``init`` (freed memory is handed back to the OS with ``malloc_trim`` between samplers).
The forward model's forward and adjoint time and the denoiser's time at batch ``--particles`` are recorded too.

Each (problem, size) runs in a child process, one result line per (problem, size, sampler) in
``data/benchmarks/scaling.jsonl`` (resumable), then the table, the fitted exponents (least squares of
``log time per step`` on ``log d`` over the sizes) and a log-log figure are written.

    python scripts/benchmarks/scaling.py --sizes 32 64 128 256 --markdown BENCHMARKS.md \
        --figure docs/benchmarks/scaling.png
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import torch
from common import ResultStore
from report import machine_line, markdown_table, script_command

__all__ = ["SAMPLERS", "PROBLEMS", "measure", "fit_exponent", "main"]

#: the samplers measured (the diffusion and ensemble samplers of ``samplers.SAMPLERS``; the MCMC chains and
#: ``exact-gaussian`` need Gaussian priors)
SAMPLERS = ("dps", "mcg", "tds", "mcgdiff", "afes", "enkg", "eki", "daps", "pnp-dm", "diffpir", "ddrm")
#: problem name -> how its forward model is built at a size
PROBLEMS = ("ct", "mri")
STORE = Path("data/benchmarks/scaling.jsonl")


class PeakRSS:
    """The peak resident set size (bytes) of this process while the block runs, sampled every ``period`` s."""

    def __init__(self, period: float = 0.002):
        self.period, self.peak, self._stop = period, 0, threading.Event()

    @staticmethod
    def now() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(self.period)

    def __enter__(self):
        self.peak = self.now()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def _trim():
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # pragma: no cover - not glibc
        pass


def _problem(name: str, size: int, seed: int = 0):
    from forward_models import Gaussian, InverseProblem
    from forward_models.generators.phantoms import random_ellipses
    from forward_models.mri import RealImageMRI, SingleCoilMRI
    from forward_models.tomography import ParallelBeamCT

    fm = (ParallelBeamCT(size, 30) if name == "ct"
          else RealImageMRI(SingleCoilMRI.cartesian(size, acceleration=4, center_fraction=0.08, seed=0)))
    fm = fm.float()
    truth = random_ellipses(1, size, seed=seed).float()
    sigma = 0.5 if name == "ct" else 0.01
    g = torch.Generator().manual_seed(seed)
    y = fm(truth)[0] + sigma * torch.randn(fm.output_shape, generator=g)
    return InverseProblem(fm, y, Gaussian(sigma), truth=truth[0])


def _prior(size: int):
    from priors import EDMPrior
    from priors.normalisation import Normalisation
    from priors.training import build_unet

    torch.manual_seed(0)
    net = build_unet(size).float().eval()
    return EDMPrior(net, (1, size, size), normalisation=Normalisation(0.5, 0.5))


def _median_time(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _operator_costs(problem, prior, n: int) -> dict:
    fm = problem.forward_model
    x = torch.rand(n, *fm.input_shape)
    y = fm(x)
    sig = torch.full((n,), 1.0)
    with torch.no_grad():
        return {"forward_s": _median_time(lambda: fm(x)), "adjoint_s": _median_time(lambda: fm.adjoint(y)),
                "denoise_s": _median_time(lambda: prior.denoise(torch.randn(n, *prior.shape), sig))}


def measure(problem_name: str, size: int, samplers, particles: int, steps: int, store: ResultStore) -> None:
    """Run every sampler on one (problem, size) and append one record each to ``store``."""
    from inverse.reconstruction import DEFAULT_SETTINGS
    from samplers import get_sampler
    from samplers.base import make_generator

    problem, prior = _problem(problem_name, size), _prior(size)
    d = size * size
    base = {"problem": problem_name, "size": size, "particles": particles, "steps": steps}
    ops_key = {**base, "sampler": "(operators)"}
    if not store.done(ops_key):
        store.add(ops_key, {"d": d, **_operator_costs(problem, prior, particles)})
    for name in samplers:
        key = {**base, "sampler": name}
        if store.done(key):
            continue
        table = DEFAULT_SETTINGS.get(name, {})
        settings = dict(table.get(problem_name, table.get("*", {})))
        sampler = get_sampler(name, **settings)
        _trim()
        before = PeakRSS.now()
        rec = {"d": d, "settings": settings}
        try:
            with PeakRSS() as rss, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sampler.check(problem, prior)
                t0 = time.perf_counter()
                state = sampler.init(problem, prior, particles, make_generator(0, prior.device))
                rec["init_s"] = time.perf_counter() - t0
                times, nfe = [], []
                for _ in range(steps + 1):
                    if sampler.done(state):
                        break
                    n0 = state.counters.nfe
                    t0 = time.perf_counter()
                    state = sampler.step(state)
                    times.append(time.perf_counter() - t0)
                    nfe.append(state.counters.nfe - n0)
            lg = getattr(state, "lg", None) or getattr(getattr(state, "model", None), "lg", None)
            if lg is not None:  # the basis's own record (LinearGaussian.diagnostics), and whether it is exact
                diag = lg.diagnostics()
                rec.update(diag, basis_exact="basis_truncation" not in diag)
            timed = times[1:] or times
            rec.update(step_s=statistics.median(timed), nfe_per_step=statistics.median(nfe[1:] or nfe),
                       peak_rss_mb=rss.peak / 2**20, extra_rss_mb=(rss.peak - before) / 2**20)
        except Exception as e:  # a sampler that cannot take the problem at this size is a result too
            rec["error"] = f"{type(e).__name__}: {e}"[:300]
        store.add(key, rec)
        print(json.dumps({**key, **{k: v for k, v in rec.items() if k != "settings"}}), flush=True)
        del sampler
        state = None
        _trim()


def fit_exponent(ds, ts) -> float | None:
    """Least-squares slope of ``log t`` on ``log d`` (``None`` with fewer than two sizes)."""
    pts = [(math.log(d), math.log(t)) for d, t in zip(ds, ts, strict=True) if t and t > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx > 0 else None


def _table(records, sizes, threads, particles) -> str:
    by = {(r["key"]["problem"], r["key"]["size"], r["key"]["sampler"]): r for r in records}
    lines = [machine_line(threads, f"float32, {particles} particles, default settings per problem, median of the "
                                   "timed steps after one warm-up step; randomly initialised phantoms-64 UNet "
                                   "at each size"), ""]
    for prob in PROBLEMS:
        title = "CT, 30 views" if prob == "ct" else "MRI x4 single-coil (real images)"
        lines += [f"**{title}**: seconds per step (NFE per step) and extra peak memory in MB; fitted exponent of time "
                  "per step in the number of unknowns d", "",
                  "| sampler | " + " | ".join(f"{s}^2" for s in sizes) + " | exponent |",
                  "|---|" + "---|" * (len(sizes) + 1)]
        for name in ["(operators)", *SAMPLERS]:
            cells, ds, ts = [], [], []
            for s in sizes:
                r = by.get((prob, s, name))
                if r is None:
                    cells.append("-")
                elif name == "(operators)":
                    cells.append(f"F {1e3 * r['forward_s']:.1f} ms, F^T {1e3 * r['adjoint_s']:.1f} ms, "
                                 f"D {1e3 * r['denoise_s']:.0f} ms")
                    ds.append(r["d"])
                    ts.append(r["denoise_s"])
                elif "error" in r:
                    cells.append(f"fails: {r['error'][:60]}")
                else:
                    basis = ""
                    if "basis_kind" in r and not r.get("basis_reused"):
                        basis = f"; basis {r['basis_kind']} {r['basis_s']:.1f} s"
                    if "basis_exact" in r and not r["basis_exact"]:
                        basis += f" (truncated, rank {r['basis_rank']})"
                    init = f"; init {r['init_s']:.1f} s" if r["init_s"] >= 1.0 and not basis else ""
                    cells.append(f"{r['step_s']:.3g} ({r['nfe_per_step']:g}); {r['extra_rss_mb']:.0f} MB{basis}{init}")
                    ds.append(r["d"])
                    ts.append(r["step_s"])
            p = fit_exponent(ds, ts)
            label = "operators: forward F, adjoint F^T, denoiser D (exponent of D)" if name == "(operators)" else name
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {'-' if p is None else f'{p:.2f}'} |")
        lines.append("")
    return "\n".join(lines).rstrip()


def _figure(records, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, prob in zip(axes, PROBLEMS, strict=True):
        for name in ["(operators)", *SAMPLERS]:
            pts = sorted((r["d"], r["denoise_s"] if name == "(operators)" else r.get("step_s"))
                         for r in records if r["key"]["problem"] == prob and r["key"]["sampler"] == name
                         and "error" not in r)
            pts = [p for p in pts if p[1]]
            if len(pts) < 2:
                continue
            p = fit_exponent(*zip(*pts, strict=True))
            style = dict(color="k", ls="--") if name == "(operators)" else {}
            label = "denoiser call" if name == "(operators)" else name
            ax.loglog(*zip(*pts, strict=True), marker="o", ms=3, label=f"{label} (d^{p:.2f})", **style)
        ax.set_title("CT, 30 views" if prob == "ct" else "MRI x4, single coil")
        ax.set_xlabel("unknowns d (32^2 ... 256^2)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    axes[0].set_ylabel("seconds per sampler step")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    p.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    p.add_argument("--particles", type=int, default=4)
    p.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(STORE))
    p.add_argument("--markdown", default=None)
    p.add_argument("--figure", default=None)
    p.add_argument("--child", nargs=2, metavar=("PROBLEM", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    store = ResultStore(args.out)
    if args.child:
        measure(args.child[0], int(args.child[1]), args.samplers, args.particles, args.steps, store)
        return 0
    for prob in args.problems:
        for size in args.sizes:
            cmd = [sys.executable, __file__, "--child", prob, str(size), "--samplers", *args.samplers,
                   "--particles", str(args.particles), "--steps", str(args.steps), "--threads", str(args.threads),
                   "--out", args.out]
            rc = subprocess.call(cmd)
            if rc:
                print(f"{prob} {size}: the child process ended with code {rc}", file=sys.stderr)
    records = [r for r in ResultStore(args.out).records()
               if r["key"]["size"] in args.sizes and r["key"]["particles"] == args.particles]
    body = _table(records, args.sizes, args.threads, args.particles)
    markdown_table(script_command("scaling", argv), body, args.markdown, key="scaling",
                   heading="Cost against size: every sampler at 32^2 to 256^2")
    print(body)
    if args.figure:
        _figure(records, args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
