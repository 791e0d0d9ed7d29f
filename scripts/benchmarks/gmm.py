"""Sub-benchmark 1: every sampler on the Gaussian-mixture exact posterior (Cardoso et al., ICLR 2024).

For each cell (d, dy, steps, sampler) and seed, :func:`inverse.problems.gmm_case` draws the
instance and :func:`inverse.problems.evaluate_sampler` scores ``n`` draws against exact posterior
draws: sliced Wasserstein-1 (SW) beside its floor (two exact sets of the same size), mode-weight
total variation beside its floor, wall time and NFE per sample. One floor pair is itself random (at
dy = 1 one instance's floor moved 2x between draws), so the table divides each run's SW by the
instance's *expected* floor, ``FLOOR_REFS`` exact pairs averaged (the denominator of
:func:`inverse.problems.averaged_sw_ratio`), stored per instance in the ``gmm_floor`` store.
Full run: d in {8, 80, 800}, dy in {1, 2, 4}, 100 steps, 1000 samples, 20 seeds; quick: d = 8, dy = 2,
10 steps, 200 samples, 1 seed.

Reference: G. Cardoso, Y. Janati, S. Le Corff, E. Moulines, "Monte Carlo guided diffusion for
Bayesian linear inverse problems", ICLR 2024 (the benchmark and its floor).
"""

from __future__ import annotations

import statistics

import torch
from common import BenchSettings, fmt, write_block
from report import machine_line
from sampler_settings import ALL_SAMPLERS, build_sampler

from inverse.metrics import sliced_wasserstein
from inverse.problems import evaluate_sampler, gmm_case
from samplers import SamplerError

__all__ = ["BLOCK", "FLOOR_REFS", "HEADING", "floors", "plan", "run", "table"]

#: exact pairs averaged into an instance's expected SW floor
FLOOR_REFS = 10
BLOCK = "suite-gmm"
HEADING = "Suite: Gaussian-mixture exact posterior, all samplers"


def plan(settings: BenchSettings) -> dict:
    """Grid of the run: dimensions, measurement counts, steps, samples, slices, seeds, samplers."""
    if settings.quick:
        return {"d": [8], "dy": [2], "steps": [10], "n": 200, "slices": 200, "seeds": settings.n_seeds(20),
                "samplers": list(ALL_SAMPLERS)}
    return {"d": [8, 80, 800], "dy": [1, 2, 4], "steps": [100], "n": 1000, "slices": 1000,
            "seeds": settings.n_seeds(20), "samplers": list(ALL_SAMPLERS)}


def run(settings: BenchSettings) -> list[dict]:
    """Run every missing (cell, seed); returns the stored records of this plan."""
    p = plan(settings)
    store = settings.store("gmm")
    for d in p["d"]:
        for dy in p["dy"]:
            for steps in p["steps"]:
                for name in p["samplers"]:
                    for seed in range(p["seeds"]):
                        key = {"d": d, "dy": dy, "steps": steps, "sampler": name, "seed": seed, "n": p["n"]}
                        if store.done(key):
                            continue
                        sampler, cfg = build_sampler(name, steps)
                        case = gmm_case(d, dy, seed)
                        try:
                            r = evaluate_sampler(case, sampler, p["n"], seed=seed, num_slices=p["slices"])
                            r.pop("posterior")
                        except (SamplerError, ValueError) as e:
                            r = {"failed": str(e).splitlines()[0]}
                        rec = store.add(key, {**r, "settings": cfg, "threads": settings.threads})
                        settings.log(f"gmm d={d} dy={dy} steps={steps} {name} seed={seed}: "
                                     + (rec.get("failed") or f"SW/floor {rec['sw'] / rec['sw_floor']:.2f}, "
                                        f"{rec['time_s']:.2f} s"))
    floors(settings)
    keys = {(d, dy, s, n) for d in p["d"] for dy in p["dy"] for s in p["steps"] for n in p["samplers"]}
    return [r for r in store.records()
            if (r["key"]["d"], r["key"]["dy"], r["key"]["steps"], r["key"]["sampler"]) in keys
            and r["key"]["seed"] < p["seeds"] and r["key"]["n"] == p["n"]]


def _floor_key(p: dict, d: int, dy: int, seed: int) -> dict:
    return {"d": d, "dy": dy, "seed": seed, "n": p["n"], "refs": FLOOR_REFS, "slices": p["slices"]}


def floors(settings: BenchSettings) -> dict:
    """Expected SW floor of every (d, dy, seed) instance of the plan: ``E[SW(ref', ref)]`` over
    :data:`FLOOR_REFS` pairs of exact ``n``-sets (stored in ``gmm_floor``; computed only when missing,
    exact sampling only, no sampler). Returns ``{(d, dy, seed): floor}``."""
    p = plan(settings)
    store = settings.store("gmm_floor")
    out = {}
    for d in p["d"]:
        for dy in p["dy"]:
            for seed in range(p["seeds"]):
                key = _floor_key(p, d, dy, seed)
                if not store.done(key):
                    post = gmm_case(d, dy, seed).posterior
                    g = torch.Generator().manual_seed(50_000 + seed)
                    sw = [sliced_wasserstein(post.sample(p["n"], g), post.sample(p["n"], g), p["slices"], seed=r)
                          for r in range(FLOOR_REFS)]
                    store.add(key, {"floor": statistics.fmean(sw), "floor_sd": statistics.stdev(sw)})
                out[(d, dy, seed)] = store.records(**key)[-1]["floor"]
    return out


def table(records: list[dict], settings: BenchSettings) -> str:
    """Markdown table: one row per (d, dy, steps, sampler); replaces the ``suite-gmm`` block."""
    p = plan(settings)
    floor = floors(settings)
    cells = {}
    for r in records:
        k = r["key"]
        cells.setdefault((k["d"], k["dy"], k["steps"], k["sampler"]), []).append(r)
    lines = [machine_line(settings.threads, seeds=f"0-{p['seeds'] - 1} per cell",
                          note=f"{p['n']} samples per run, {p['slices']} slices, float64; SW / floor divides each "
                               f"run's SW "
                          f"by its instance's expected floor ({FLOOR_REFS} exact pairs averaged; 1 = exact sampling)."),
             "", "| d | dy | steps | sampler | seeds | SW / floor (median [q10, q90]) | SW (mean) | floor (mean) "
             "| mode TV | TV floor | time / run (s) | NFE / sample |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    order = {n: i for i, n in enumerate(ALL_SAMPLERS)}
    for key in sorted(cells, key=lambda c: (c[0], c[1], c[2], order.get(c[3], 99))):
        rs = [r for r in cells[key] if "failed" not in r]
        failed = len(cells[key]) - len(rs)
        if not rs:
            lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | 0 ({failed} failed) | - | - | - | - | - | - "
                         f"| - |")
            continue
        fl = [floor[(key[0], key[1], r["key"]["seed"])] for r in rs]
        ratio = sorted(r["sw"] / f for r, f in zip(rs, fl, strict=False))
        q = lambda a, ratio=ratio: ratio[min(len(ratio) - 1, int(a * len(ratio)))]  # noqa: E731
        mean = lambda f, rs=rs: statistics.fmean(r[f] for r in rs)  # noqa: E731
        seeds = f"{len(rs)}" + (f" ({failed} failed)" if failed else "")
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {seeds} | {statistics.median(ratio):.1f} "
                     f"[{q(0.1):.1f}, {q(0.9):.1f}] | {mean('sw'):.3f} | {statistics.fmean(fl):.3f} | "
                     f"{mean('tv'):.3f} | "
                     f"{mean('tv_floor'):.3f} | {fmt(mean('time_s'), 2)} | {mean('nfe_per_sample'):.0f} |")
    return write_block(settings, BLOCK, HEADING, "\n".join(lines))
