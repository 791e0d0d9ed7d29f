"""The approximation-free ensemble's twist inflation ``c`` on the Gaussian-mixture benchmark, with a floor
averaged over reference pairs.

A single floor (SW between two 1000-draw exact sets) is itself a random number: at dy = 1 it varied 2x
between draws of the same instance (``data/benchmarks/smc_d80_study_exact.json``), so one ratio per seed
mostly measures the floor's luck. Here each cell reports

    E[SW(x_r, ref_r)] / E[SW(ref'_r, ref_r)],   r = 1..R,

with ``x_r`` a fresh resampling of ``n = min(1000, particles)`` draws from one SMC run's weighted particles
and ``ref_r``, ``ref'_r`` fresh exact ``n``-sets: the ratio of the sampler's expected distance to the exact sets to
the expected distance between two exact sets. ``exact`` puts exact draws in the sampler's place
(expected 1). The SMC run itself is one per (case, sampler): its Monte Carlo error stays in the ratio.

    python scripts/benchmarks/studies/afes_inflation_study.py --d 8 80 --dy 1 2 4 --seeds 5 --particles 256 16384 \\
        --samplers afes:1 afes:10 tds mcgdiff exact --out data/benchmarks/afes_inflation_study.json

``afes:C`` is :class:`samplers.ApproximationFreeEnsemble` with ``inflation = C``; any other name is that
diffusion sampler with :data:`inverse.problems.GMM_SETTINGS`. Results go to ``--out`` (JSON, written
atomically after each cell, so a re-run resumes).
Run from the repository root by path, as above; like every study it imports only the installed packages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from inverse.problems import GMM_SETTINGS, averaged_sw_ratio, gmm_case
from samplers import get_sampler
from samplers.atomic import atomic_output

__all__ = ["averaged_ratio", "build", "main"]


def build(spec: str, steps: int):
    """``afes:C`` -> the ensemble with inflation C; any other name -> that sampler at the mixture settings
    (:data:`inverse.problems.GMM_SETTINGS`: DPS / MCG guidance 0.3)."""
    name, _, arg = spec.partition(":")
    if name == "afes" and arg:
        return get_sampler("afes", num_steps=steps, inflation=float(arg))
    return get_sampler(name, **GMM_SETTINGS.get(name, {}), num_steps=int(steps))


def averaged_ratio(spec: str, d: int, dy: int, seed: int, particles: int, n: int = 1000, refs: int = 10,
                   steps: int = 100, slices: int = 500) -> dict:
    """SW ratio of one sampler run on instance ``(d, dy, seed)``, both sides averaged over ``refs`` draws."""
    case = gmm_case(d, dy, seed)
    t0 = time.perf_counter()
    post = None if spec == "exact" else build(spec, steps).sample(case.problem, case.prior, particles, seed=seed)
    wall = time.perf_counter() - t0
    out = {k: v for k, v in averaged_sw_ratio(case, post, n, refs=refs, seed=seed, num_slices=slices).items()
           if k != "n"}
    out["time_s"] = wall
    if post is not None and "log_evidence" in post.diagnostics:
        out["log_evidence_error"] = abs(post.diagnostics["log_evidence"] - case.log_evidence)
    return out


def main(argv=None) -> int:
    """Run every (d, dy, particles, sampler) cell over the seeds; JSON out, Markdown summary to stdout."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--d", type=int, nargs="+", default=[8, 80])
    p.add_argument("--dy", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--particles", type=int, nargs="+", default=[256, 16384])
    p.add_argument("--samplers", nargs="+", default=["afes:1", "afes:10", "tds", "mcgdiff", "exact"])
    p.add_argument("--refs", type=int, default=10)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    results = json.loads(Path(a.out).read_text()) if a.out and Path(a.out).exists() else {}
    print("| d | dy | particles | sampler | SW / floor, averaged (mean over seeds) | per seed (0, 1, ...) | "
          "relative evidence error abs(log(Z_hat / Z)), mean |\n|---|---|---|---|---|---|---|")
    for d in a.d:
        for dy in a.dy:
            for n_part in a.particles:
                for spec in a.samplers:
                    key = f"d={d}/dy={dy}/N={n_part}/{spec}/steps={a.steps}/refs={a.refs}"
                    if key not in results:
                        results[key] = [averaged_ratio(spec, d, dy, s, n_part, refs=a.refs, steps=a.steps)
                                        for s in range(a.seeds)]
                        if a.out:
                            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
                            with atomic_output(a.out, overwrite=True) as tmp:
                                tmp.write_text(json.dumps(results, indent=1))
                    rs = results[key]
                    dz = [r["log_evidence_error"] for r in rs if "log_evidence_error" in r]
                    print(f"| {d} | {dy} | {n_part} | {spec} | {statistics.fmean(r['ratio'] for r in rs):.2f} | "
                          f"{', '.join(format(r['ratio'], '.2f') for r in rs)} | "
                          f"{format(statistics.fmean(dz), '.3f') if dz else '-'} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
