"""Sub-benchmark 7: overhead, the share of each sampler's wall time spent in the network and the forward model.

For every sampler on the CT 64 x 64 problem (30 views) with ``phantoms-64``, the prior's ``denoise``
and the forward model's ``forward`` and ``adjoint`` are metered (:func:`common.meter_calls`:
time inside the calls plus the backward pass through them, caught by autograd hooks) while
``sampler.sample`` runs; the share is ``(t_network + t_forward) / t_wall``. The rest is the
sampler's own arithmetic, bookkeeping and, for SMC samplers, the operator's SVD set-up. The
sampler's one-off ``setup`` (the exact-linear samplers' operator decomposition, paid once per
operator) is metered too: "share in steps" is the share of the remaining wall time. Target:
>= 90%. A low share flags Python overhead worth removing (the profile-first rule of Knuth 1974).
"""

from __future__ import annotations

import contextlib
import time

from common import (
    BenchSettings,
    fmt,
    meter_calls,
    write_block,
)
from report import machine_line
from sampler_settings import ALL_SAMPLERS, build_sampler

from forward_models import InverseProblem
from inverse.measurements import simulate
from samplers import SamplerError

__all__ = ["BLOCK", "HEADING", "TARGET", "measure_overhead", "plan", "run", "table"]

BLOCK = "suite-overhead"
HEADING = "Suite: overhead (share of wall time in the network and the forward model)"
TARGET = 0.90


def plan(settings: BenchSettings) -> dict:
    """Problem, steps and samples of the run."""
    if settings.quick:
        from imaging import QUICK_IMAGE_SAMPLERS

        return {"problem": "ct", "options": {"angles": 30}, "steps": 3, "samples": 2,
                "samplers": list(QUICK_IMAGE_SAMPLERS)}
    return {"problem": "ct", "options": {"angles": 30}, "steps": 50, "samples": 4, "samplers": list(ALL_SAMPLERS)}


def measure_overhead(sampler, problem: InverseProblem, prior, num_samples: int, seed: int = 0) -> dict:
    """Run ``sampler`` and split its wall time into network, forward model and the rest."""
    fm = problem.forward_model
    spent = {"setup": 0.0, "forward_in_setup": 0.0}
    with contextlib.ExitStack() as stack:
        net = stack.enter_context(meter_calls(prior, "denoise"))
        fwd = stack.enter_context(meter_calls(fm, "forward"))
        adj = stack.enter_context(meter_calls(fm, "adjoint"))
        original_setup = getattr(sampler, "setup", None)
        if callable(original_setup):
            def timed_setup(*args, **kwargs):
                f0, t0 = fwd.seconds + adj.seconds, time.perf_counter()
                try:
                    return original_setup(*args, **kwargs)
                finally:
                    spent["setup"] += time.perf_counter() - t0
                    spent["forward_in_setup"] += fwd.seconds + adj.seconds - f0

            object.__setattr__(sampler, "setup", timed_setup)
            stack.callback(object.__delattr__, sampler, "setup")
        t0 = time.perf_counter()
        post = sampler.sample(problem, prior, num_samples, seed=seed)
        wall = time.perf_counter() - t0
    inside = net.seconds + fwd.seconds + adj.seconds
    steps_inside = inside - spent["forward_in_setup"]
    return {"wall_s": wall, "network_s": net.seconds, "forward_s": fwd.seconds + adj.seconds,
            "network_calls": net.calls, "forward_calls": fwd.calls + adj.calls, "share": inside / wall,
            "setup_s": spent["setup"], "share_steps": steps_inside / max(wall - spent["setup"], 1e-12),
            "nfe": post.diagnostics.get("nfe")}


def run(settings: BenchSettings, prior=None) -> list[dict]:
    """Measure every missing sampler."""
    from priors import load_prior

    p = plan(settings)
    store = settings.store("overhead")
    prior = prior if prior is not None else load_prior("phantoms-64")
    m = simulate(p["problem"], options=p["options"], seed=0)
    problem = InverseProblem(m.forward_model.to(prior.dtype), m.y.to(prior.dtype), m.noise)
    out = []
    for name in p["samplers"]:
        key = {"sampler": name, "problem": p["problem"], "steps": p["steps"], "samples": p["samples"]}
        if store.done(key):
            out += store.records(**key)
            continue
        sampler, cfg = build_sampler(name, p["steps"], p["problem"], eki_iterations=max(2, p["steps"] // 5))
        try:
            rec = measure_overhead(sampler, problem, prior, p["samples"])
        except (SamplerError, ValueError, RuntimeError) as e:
            rec = {"failed": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
        out.append(store.add(key, {**rec, "settings": cfg, "threads": settings.threads}))
        settings.log(f"overhead {name}: "
                     + (rec.get("failed") or f"{100 * rec['share']:.1f}% of {rec['wall_s']:.1f} s"))
    return out


def table(records: list[dict], settings: BenchSettings) -> str:
    """Markdown table, one row per sampler; replaces the ``suite-overhead`` block."""
    p = plan(settings)
    lines = [machine_line(settings.threads, seeds="0 (one CT instance)",
                          note=f"CT 64 x 64, 30 views, phantoms-64; {p['steps']} steps, {p['samples']} samples; target "
                          f">= {100 * TARGET:.0f}%."),
             "", "| sampler | wall (s) | network (s) | forward model (s) | set-up (s) | share inside | share in steps "
             "| meets target (all / steps) | network calls | forward calls |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        k = r["key"]
        if "failed" in r:
            lines.append(f"| {k['sampler']} | - | - | - | - | - | - | - | - | {r['failed']} |")
            continue
        steps = r.get("share_steps", r["share"])
        yes = lambda v: "yes" if v >= TARGET else "no"
        lines.append(f"| {k['sampler']} | {fmt(r['wall_s'], 2)} | {fmt(r['network_s'], 2)} | {fmt(r['forward_s'], 2)} "
                     f"| "
                     f"{fmt(r.get('setup_s', 0.0), 2)} | {100 * r['share']:.1f}% | {100 * steps:.1f}% | "
                     f"{yes(r['share'])} / {yes(steps)} | {r['network_calls']} | {r['forward_calls']} |")
    return write_block(settings, BLOCK, HEADING, "\n".join(lines))
