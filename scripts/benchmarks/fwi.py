"""Sub-benchmark 4: full-waveform inversion 70 x 70, diffusion samplers against L-BFGS from a smoothed truth.

Problem (``inverse simulate --problem fwi``; PHYSICS.md): OpenFWI geometry, 5 sources and 70
receivers at 10 m depth, 15 Hz Ricker, nt = 1000 at 1 ms, velocity 1500-4500 m/s; truths from the
four OpenFWI-like families in turn (seed i -> family i mod 4); noise sigma = 1% of the clean data's RMS.

Methods, scored by the relative L2 error and SSIM of the (posterior-mean) velocity and wall time:

- ``lbfgs``: ``torch.optim.LBFGS`` (strong-Wolfe line search, history 10) on the normalised velocity
  ``u = (v - 3000) / 1500`` minimising ``||F(v) - y||^2 / (2 sigma^2)``, started from the truth
  smoothed by a Gaussian of ``SMOOTH_CELLS`` cells (InverseBench's baseline), ``iterations`` fixed,
  bounds by evaluating the misfit at ``clamp(u, -1, 1)`` (the line search probes outside them) and
  clamping ``u`` after every iteration (Nocedal and Wright 2006, ch. 7);
- ``dps`` / ``mcg`` / ``tds`` (SMC) with the ``seismic-velocity-70`` prior; when that prior does not
  load the row reads "prior not available" (quick runs use a stationary Gaussian stand-in fitted
  to velocity models instead, labelled as such). MCG's projection needs a linear operator, so its
  row states that it does not apply. The samplers' forward model clamps the velocity to 1500-4500 m/s
  before the wave solver (:class:`ClampedVelocity`), the bounds L-BFGS enforces.

The CPU forces few instances (4 in the full run, one per family): one forward + gradient costs
~5 s here. Reference: Virieux and Operto (2009) for FWI; Zheng et al. (InverseBench, ICLR 2025)
for the smoothed-truth L-BFGS baseline.
"""

from __future__ import annotations

import math
import time

import torch
from common import (
    BenchSettings,
    fmt,
    mean_or_nan,
    mean_sd,
    write_block,
)
from report import machine_line
from sampler_settings import sampler_settings

from forward_models.seismic import ClampedVelocity  # noqa: F401 (re-exported)
from inverse.measurements import simulate
from inverse.metrics import relative_l2, ssim
from samplers import SamplerError, get_sampler

__all__ = ["BLOCK", "HEADING", "SMOOTH_CELLS", "ClampedVelocity", "benchmark_prior", "gaussian_smooth",
           "lbfgs_from_smoothed", "plan", "run", "table"]

BLOCK = "suite-fwi"
HEADING = "Suite: FWI 70 x 70, DPS / MCG / SMC against L-BFGS from a smoothed truth"
SMOOTH_CELLS = 10.0
V_OFFSET, V_SCALE = 3000.0, 1500.0


def plan(settings: BenchSettings) -> dict:
    """Problem options, instances, iterations and sampler settings of the run."""
    if settings.quick:
        return {"options": {"size": 24, "nt": 200, "shots": 2, "receivers": 12}, "instances": settings.n_seeds(4),
                "lbfgs_iters": 3, "steps": 3, "samples": 2, "samplers": ["dps", "mcg", "tds"], "prior": "stand-in",
                "smooth": 3.0}
    return {"options": {}, "instances": settings.n_seeds(4), "lbfgs_iters": 30, "steps": 100, "samples": 4,
            "samplers": ["dps", "mcg", "tds"], "prior": "seismic-velocity-70", "smooth": SMOOTH_CELLS}


def gaussian_smooth(v: torch.Tensor, sigma_cells: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, 1, H, W)`` with reflect padding (kernel radius 3 sigma)."""
    r = max(1, int(math.ceil(3 * sigma_cells)))
    t = torch.arange(-r, r + 1, dtype=v.dtype)
    k = torch.exp(-0.5 * (t / sigma_cells) ** 2)
    k = k / k.sum()
    pad = min(r, v.shape[-1] - 1, v.shape[-2] - 1)
    k = k[r - pad:r + pad + 1] / k[r - pad:r + pad + 1].sum()
    x = torch.nn.functional.pad(v, (pad, pad, pad, pad), mode="reflect")
    x = torch.nn.functional.conv2d(x, k.reshape(1, 1, 1, -1))
    return torch.nn.functional.conv2d(x, k.reshape(1, 1, -1, 1))


def lbfgs_from_smoothed(m, iterations: int, smooth: float) -> dict:
    """L-BFGS on the normalised velocity from the smoothed truth (module docstring); scores and cost."""
    fm = m.forward_model.float()
    y = m.y.float()[None]
    sigma = float(m.noise.config()["sigma"])
    v0 = gaussian_smooth(m.truth.float()[None], smooth)
    u = ((v0 - V_OFFSET) / V_SCALE).clamp(-1, 1).requires_grad_(True)
    opt = torch.optim.LBFGS([u], lr=1.0, max_iter=1, history_size=10, line_search_fn="strong_wolfe")
    evals = [0]

    def closure():
        opt.zero_grad()
        evals[0] += 1
        # the strong-Wolfe line search probes points outside the bounds; evaluate at the projection
        # (zero gradient across an active bound), as the clamp after each iteration does
        loss = 0.5 * ((fm(V_OFFSET + V_SCALE * u.clamp(-1, 1)) - y) ** 2).sum() / sigma**2
        loss.backward()
        return loss

    t0 = time.perf_counter()
    for _ in range(int(iterations)):
        opt.step(closure)
        with torch.no_grad():
            u.clamp_(-1, 1)
    wall = time.perf_counter() - t0
    v = (V_OFFSET + V_SCALE * u.detach())[0].double()
    t = m.truth.double()
    return {"relative_l2": relative_l2(v, t), "ssim": ssim(v, t), "start_relative_l2": relative_l2(v0[0].double(), t),
            "time_s": wall, "forward_grad_evals": evals[0],
            "settings": {"iterations": iterations, "smooth_cells": smooth}}


def benchmark_prior(p: dict):
    """(prior or None, note): the seismic prior, the quick stand-in, or None when it does not load."""
    if p["prior"] == "stand-in":
        from forward_models.generators.velocity import velocity_models
        from priors import GaussianFieldPrior

        size = p["options"]["size"]
        vs = torch.cat([velocity_models(4, fam, (size, size), seed=0) for fam in
                        ("flat", "curved", "flat-fault", "curved-fault")])
        z = (vs.double() - V_OFFSET) / V_SCALE
        return GaussianFieldPrior.fit(z, V_SCALE, V_OFFSET, floor=1e-4), "stand-in Gaussian prior (quick run)"
    from priors import PriorLoadError, load_prior

    try:
        return load_prior(p["prior"]), p["prior"]
    except PriorLoadError:
        return None, f"prior not available ({p['prior']} not trained yet)"


def _sample(m, prior, name: str, p: dict, seed: int) -> dict:
    from forward_models import InverseProblem

    opts = sampler_settings(name, p["steps"], "fwi")  # tuned defaults (zeta 0.3 for DPS: BENCHMARKS.md scan)
    sampler = get_sampler(name, **opts)
    fm = ClampedVelocity(m.forward_model.to(prior.dtype))
    problem = InverseProblem(fm, m.y.to(prior.dtype), m.noise)
    t0 = time.perf_counter()
    post = sampler.sample(problem, prior, p["samples"], seed=seed)
    wall = time.perf_counter() - t0
    mean = post.mean().double()
    t = m.truth.double()
    return {"relative_l2": relative_l2(mean, t), "ssim": ssim(mean, t), "time_s": wall,
            "nfe_per_sample": post.diagnostics["nfe"] / p["samples"], "settings": opts}


def run(settings: BenchSettings) -> list[dict]:
    """Run every missing (instance, method)."""
    p = plan(settings)
    store = settings.store("fwi")
    prior, prior_note = benchmark_prior(p)
    out = []
    for seed in range(p["instances"]):
        m = None
        for method in ["lbfgs", *p["samplers"]]:
            key = {"method": method, "seed": seed, "options": p["options"], "prior": p["prior"],
                   "steps": p["steps"], "iterations": p["lbfgs_iters"]}
            if store.done(key):
                out += store.records(**key)
                continue
            m = m or simulate("fwi", options=p["options"], seed=seed)
            try:
                if method == "lbfgs":
                    rec = lbfgs_from_smoothed(m, p["lbfgs_iters"], p["smooth"])
                elif prior is None:
                    rec = {"skipped": prior_note}
                elif method == "mcg":
                    rec = {"skipped": "not applicable: MCG's projection needs a linear forward model"}
                else:
                    rec = {**_sample(m, prior, method, p, seed), "prior": prior_note}
            except (SamplerError, ValueError, RuntimeError) as e:
                rec = {"failed": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
            out.append(store.add(key, {**rec, "threads": settings.threads}))
            settings.log(f"fwi seed={seed} {method}: " + (rec.get("failed") or rec.get("skipped")
                                                          or f"rel-L2 {rec['relative_l2']:.3f}, {rec['time_s']:.1f} s"))
    return out


def table(records: list[dict], settings: BenchSettings) -> str:
    """Markdown table, one row per method; replaces the ``suite-fwi`` block."""
    p = plan(settings)
    size = p["options"].get("size", 70)
    lines = [machine_line(settings.threads, seeds=f"instances 0-{p['instances'] - 1} (family = seed mod 4)",
                          note=f"{size} x {size} velocity; L-BFGS {p['lbfgs_iters']} iterations from the truth "
                               f"smoothed "
                          f"by a {p['smooth']:g}-cell Gaussian; samplers {p['steps']} steps, {p['samples']} samples."),
             "", "| method | instances | rel. L2 (mean ± sd) | SSIM | time / instance (s) | cost | note |",
             "|---|---|---|---|---|---|---|"]
    for method in ["lbfgs", *p["samplers"]]:
        rs = [r for r in records if r["key"]["method"] == method]
        ok = [r for r in rs if "relative_l2" in r]
        note = next((r.get("failed") or r.get("skipped") for r in rs if "relative_l2" not in r), "")
        if method == "lbfgs" and ok:
            note = f"start rel. L2 {mean_or_nan(r['start_relative_l2'] for r in ok):.3f}"
        elif ok:
            note = ok[0].get("prior", "")
        if not ok:
            lines.append(f"| {method} | 0 | - | - | - | - | {note} |")
            continue
        cost = (f"{mean_or_nan(r['forward_grad_evals'] for r in ok):.0f} forward+gradient" if method == "lbfgs"
                else f"{mean_or_nan(r['nfe_per_sample'] for r in ok):.0f} NFE / sample")
        lines.append(f"| {method} | {len(ok)} | {mean_sd(r['relative_l2'] for r in ok)} | "
                     f"{fmt(mean_or_nan(r['ssim'] for r in ok))} | {fmt(mean_or_nan(r['time_s'] for r in ok), 1)} | "
                     f"{cost} | {note} |")
    return write_block(settings, BLOCK, HEADING, "\n".join(lines))
