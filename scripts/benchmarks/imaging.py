"""Sub-benchmark 2: CT and MRI 64 x 64 with the ``phantoms-64`` prior, our samplers against deepinv's.

Problems (:mod:`inverse.problems`, truths are held-out ellipse phantoms, seeds 0..n-1):

- ``ct-30``: parallel-beam CT, 30 views over [0, 180), Gaussian noise sigma = 2% of the RMS of the
  clean sinogram (``noise_rel = 0.02``);
- ``mri-x4`` / ``mri-x8``: single-coil Cartesian MRI, random columns, 8% centre, x4 / x8, same noise rule;
- ``mri-mc-x4`` / ``mri-mc-x8``: 8 birdcage coils, otherwise the same.
- ``ct-fan-30``: fan-beam CT (flat detector, source 2 and detector 4 image widths from the isocentre), 30
  source angles over [0, 360), same noise rule; baseline: weighted fan-beam FBP;
- ``mri-radial-32`` / ``mri-radial-mc-32``: radial MRI, 32 golden-angle spokes of 128 samples (FINUFFT),
  single-coil / 8 birdcage coils, same noise rule; baseline: density-compensated gridding.

Methods, each scored on its posterior mean (PSNR and SSIM against the truth, data range of the
truth), the coverage of its pixel-wise 90% interval (5%-95% quantiles over the samples), time per
sample and NFE per sample:

- our samplers (:mod:`samplers`) through :func:`inverse.reconstruction.reconstruct`, ``steps`` steps each;
- deepinv 0.5's ``DPS`` (``num_steps = steps + 1``: its DDPM solver makes ``num_steps - 1`` network
  calls; its guidance ``weight`` multiplies the gradient of the residual *norm* inside deepinv's own SDE
  solver, a different scale from our ``zeta``, so it is chosen per problem from a log grid on the
  held-out phantoms by PSNR, like TV's weight) and ``DiffPIR`` (``max_iter = steps``; started from the FBP /
  zero-filled image, lambda 7, zeta 0.1, deepinv's defaults), driven by *the same* prior via
  :func:`priors.deepinv_denoiser.as_deepinv_denoiser`; NFE counted by a wrapper;
- baselines: FBP / zero-filled (:func:`inverse.problems.measurement_view`), and TV: deepinv's proximal
  gradient descent (``deepinv.optim.PGD``, ``TVPrior``, step ``1 / ||A||^2``) with weight
  ``lambda = c ||A||^2``, ``c`` chosen from a log grid on two held-out phantoms (seeds 10000, 10001)
  by PSNR, then fixed.

The SMC samplers' singular basis of the multi-coil operator (65536 x 4096, too large to build densely)
is computed matrix-free from its adjoint (:func:`forward_models.linalg.gram_eigh`). Every problem's instances
share one operator, so its decomposition is computed once per process and reused (``basis_reused``); a
reusing run's time per sample still includes the decomposition's seconds (``basis_s``), i.e. it is the
cost of a standalone run, as in the rows stored before the cache existed.

References: Chung et al. (ICLR 2023, DPS); Zhu et al. (CVPR Workshops 2023, DiffPIR); Rudin, Osher and
Fatemi (1992, TV); Tachella et al. (2023, deepinv).
"""

from __future__ import annotations

import math
import re
import time
import warnings

import torch
from common import (
    BenchSettings,
    CallMeter,
    fmt,
    mean_or_nan,
    mean_sd,
    write_block,
)
from report import machine_line
from sampler_settings import ALL_SAMPLERS, sampler_settings

from forward_models.tomography import range_basis
from inverse.measurements import simulate
from inverse.metrics import predictive_coverage, psnr, ssim
from inverse.problems import measurement_view
from inverse.reconstruction import reconstruct
from samplers import SamplerError

__all__ = [
    "BLOCK",
    "HEADING",
    "PROBLEMS",
    "QUICK_IMAGE_SAMPLERS",
    "check_methods",
    "parse_instance_range",
    "plan",
    "run",
    "run_deepinv",
    "run_tv",
    "score_samples",
    "select_deepinv_dps_weight",
    "select_tv_weight",
    "settings_note",
    "table",
]

BLOCK = "suite-imaging"
HEADING = "Suite: CT and MRI 64 x 64 with phantoms-64"

#: label -> (problem name, options)
PROBLEMS = {
    "ct-30": ("ct", {"angles": 30}),
    "mri-x4": ("mri", {"acceleration": 4.0}),
    "mri-x8": ("mri", {"acceleration": 8.0}),
    "mri-mc-x4": ("mri-multicoil", {"acceleration": 4.0}),
    "mri-mc-x8": ("mri-multicoil", {"acceleration": 8.0}),
    "ct-fan-30": ("ct-fanbeam", {"angles": 30}),
    "mri-radial-32": ("mri-radial", {"spokes": 32}),
    "mri-radial-mc-32": ("mri-radial-multicoil", {"spokes": 32}),
}
TV_HELD_OUT = (10_000, 10_001)
#: deepinv DPS guidance weights tried on the held-out phantoms (deepinv's docs: the "norm" guidance's
#: weight absorbs ``||y - A x0|| / sigma_y^2``, "typically in the hundreds"). MRI x4's choice sat at 300,
#: the top of the first grid (0.3-300), so the grid reaches 3000.
DEEPINV_DPS_GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
#: samplers of quick runs on images: the SMC samplers' set-up (a dense SVD of the operator, ~20 s for CT) and
#: MCGdiff's matching levels (~800 network calls per particle at 3 steps) do not fit a smoke run
QUICK_IMAGE_SAMPLERS = ("dps", "mcg", "enkg", "eki")
BASELINES = ("view", "tv")
DEEPINV = ("deepinv-dps", "deepinv-diffpir")


def _problems(settings: BenchSettings, default: list[str]) -> list[str]:
    """``settings.extra["problems"]`` (``--problems``) checked against :data:`PROBLEMS`, else ``default``."""
    chosen = settings.extra.get("problems")
    if not chosen:
        return default
    unknown = [c for c in chosen if c not in PROBLEMS]
    if unknown:
        raise ValueError(f"unknown imaging problem(s) {', '.join(unknown)} (known: {', '.join(PROBLEMS)})")
    return list(chosen)


def parse_instance_range(text: str) -> tuple[int, int]:
    """``"START-STOP"`` (inclusive, 0-based phantom seeds) or ``"K"`` as a ``(start, stop)`` half-open range.

    Used by ``scripts/benchmarks/run.py --instances`` to split one problem's instances between processes
    that share a store (each runs a disjoint range, so no cell is computed twice).
    """
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(text))
    if not m:
        raise ValueError(f"--instances {text!r}: expected START-STOP (e.g. 14-16) or one instance number")
    start = int(m.group(1))
    stop = int(m.group(2)) if m.group(2) is not None else start
    if stop < start:
        raise ValueError(f"--instances {text!r}: STOP ({stop}) is below START ({start})")
    return start, stop + 1


def check_methods(methods) -> list[str]:
    """``methods`` as a list, ``ValueError`` naming any that is not a column of the imaging table (``--rerun``)."""
    known = [*BASELINES, *ALL_SAMPLERS, *DEEPINV]
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise ValueError(f"--rerun: unknown method(s) {', '.join(unknown)} (known: {', '.join(known)})")
    return list(methods)


def _instance_seeds(settings: BenchSettings, n: int) -> range:
    """Seeds this run computes: ``settings.extra["instances"]`` (``(start, stop)``) within ``range(n)``."""
    chosen = settings.extra.get("instances")
    if chosen is None:
        return range(n)
    start, stop = chosen
    if start >= n:
        raise ValueError(f"--instances {start}-{stop - 1}: the run has instances 0-{n - 1}")
    return range(start, min(stop, n))


def plan(settings: BenchSettings) -> dict:
    """Problems, instances, steps, samples per posterior, methods and the TV grid of the run.

    ``--problems`` (``settings.extra["problems"]``) restricts the problems and ``--instances``
    (``settings.extra["instances"]``, a ``(start, stop)`` range, key ``"seeds"`` of the plan) the
    instances computed, e.g. to run them in separate processes that share one store. The table
    always reads every stored instance.
    """
    if settings.quick:
        n = settings.n_seeds(20)
        return {"problems": _problems(settings, ["ct-30", "mri-mc-x4"]), "instances": n,
                "seeds": _instance_seeds(settings, n), "steps": 4, "samples": 2,
                "samplers": list(QUICK_IMAGE_SAMPLERS), "tv_grid": [1e-3, 1e-2],
                "tv_iters": 20, "tv_held_out": TV_HELD_OUT[:1], "eki_iterations": 2,
                "dps_grid": [1.0, 10.0], "select_samples": 2,
                "quick_samplers_on": ["ct-30"]}
    n = settings.n_seeds(20)
    return {"problems": _problems(settings, list(PROBLEMS)), "instances": n, "seeds": _instance_seeds(settings, n),
            "steps": 100, "samples": 8,
            "samplers": list(ALL_SAMPLERS), "tv_grid": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
            "tv_iters": 200, "tv_held_out": TV_HELD_OUT, "eki_iterations": 10, "quick_samplers_on": None,
            "dps_grid": list(DEEPINV_DPS_GRID), "select_samples": 4}


def score_samples(samples: torch.Tensor, truth: torch.Tensor, log_weights: torch.Tensor | None = None) -> dict:
    """PSNR / SSIM of the (weighted) mean, coverage of the 5%-95% pixel interval and of the 90% prediction
    interval (:func:`inverse.metrics.predictive_coverage`, unweighted samples), float64."""
    x = samples.to(torch.float64)
    t = truth.to(torch.float64)
    if log_weights is not None:
        w = torch.softmax(log_weights.to(torch.float64), 0)
        mean = (w.reshape(-1, *[1] * (x.ndim - 1)) * x).sum(0)
    else:
        mean = x.mean(0)
    out = {"psnr": psnr(mean, t), "ssim": ssim(mean, t), "relative_l2": float((mean - t).norm() / t.norm())}
    if len(x) >= 2 and log_weights is None:
        q = torch.quantile(x.reshape(len(x), -1), torch.tensor([0.05, 0.95], dtype=torch.float64), dim=0)
        tf = t.reshape(-1)
        out["coverage_90"] = float(((tf >= q[0]) & (tf <= q[1])).double().mean())
        out["coverage_90_predictive"] = predictive_coverage(x, t)
    return out


def _ours(m, prior, name: str, p: dict, label: str, seed: int) -> dict:
    problem = m.problem
    cfg = sampler_settings(name, p["steps"], problem, eki_iterations=p["eki_iterations"])
    if name == "mcg":  # CT's exact projection factorises A A^T once per process: each instance pays it, standalone
        range_basis.cache_clear()
    post = reconstruct(m, prior, name, num_samples=p["samples"], seed=seed, sampler_options=cfg)
    d = post.diagnostics
    # a run that reused the operator's decomposition is charged its cost, so that the time is a standalone
    # run's (as it was before decompositions were cached, and as a user with one measurement pays)
    wall = d["wall_time_s"] + (d.get("basis_s", 0.0) if d.get("basis_reused") else 0.0)
    out = {"psnr": d["psnr"], "ssim": d.get("ssim"), "coverage_90": d.get("coverage_90"),
           "relative_l2": d["relative_l2"], "time_per_sample_s": wall / p["samples"],
           "nfe_per_sample": d["nfe"] / p["samples"], "forward_evals": d.get("forward_evals"), "settings": cfg}
    if "basis_s" in d:
        out.update(wall_time_s=d["wall_time_s"], basis_s=d["basis_s"], basis_reused=d["basis_reused"])
    return out


def _deepinv_physics(m):
    import deepinv as dinv

    from forward_models.adapters import to_deepinv

    fm = m.forward_model.float()
    return fm, to_deepinv(fm, dinv.physics.GaussianNoise(float(m.noise.config()["sigma"])))


def run_deepinv(m, prior, method: str, steps: int, samples: int, seed: int, weight: float = 1.0) -> dict:
    """deepinv's DPS or DiffPIR on measurement ``m`` with our ``prior``; ``samples`` draws in one batch."""
    import deepinv as dinv

    from priors.deepinv_denoiser import as_deepinv_denoiser

    fm, phys = _deepinv_physics(m)
    meter = CallMeter()
    den = as_deepinv_denoiser(prior)
    den.forward = meter.wrap(den.forward)
    y = m.y.float()[None].repeat(samples, *[1] * m.y.ndim)
    t0 = time.perf_counter()
    if method == "deepinv-dps":
        rng = torch.Generator().manual_seed(int(seed))
        model = dinv.sampling.DPS(den, num_steps=steps + 1, weight=weight, dtype=torch.float32, rng=rng)
        x = model(y, phys, seed=int(seed))
        cfg = {"num_steps": steps + 1, "weight": weight, "solver": "ddpm"}
    elif method == "deepinv-diffpir":
        model = dinv.sampling.DiffPIR(den, dinv.optim.data_fidelity.L2(), sigma=float(m.noise.config()["sigma"]),
                                      max_iter=steps)
        torch.manual_seed(int(seed))
        with torch.no_grad():
            view = measurement_view(m.problem, fm, y).float()
            x = model(y, phys, x_init=view.clamp(0, 1))
        cfg = {"max_iter": steps, "lambda_": 7.0, "zeta": 0.1, "x_init": "view"}
    else:
        raise ValueError(f"unknown deepinv method {method!r}")
    wall = time.perf_counter() - t0
    return {**score_samples(x.detach(), m.truth), "time_per_sample_s": wall / samples,
            "nfe_per_sample": meter.items / samples, "settings": cfg}


def run_tv(m, c: float, iters: int) -> dict:
    """TV-regularised least squares by deepinv's PGD, ``lambda = c ||A||^2``, started from the view."""
    import deepinv as dinv

    fm, phys = _deepinv_physics(m)
    y = m.y.float()[None]
    t0 = time.perf_counter()
    norm = float(phys.compute_norm(torch.ones(1, *fm.input_shape) * 0.5 + 0.1 * torch.randn(
        1, *fm.input_shape, generator=torch.Generator().manual_seed(0)), max_iter=50, verbose=False))
    solver = dinv.optim.PGD(data_fidelity=dinv.optim.data_fidelity.L2(), prior=dinv.optim.prior.TVPrior(n_it_max=20),
                            lambda_reg=c * norm, stepsize=1.0 / norm, max_iter=iters)
    with torch.no_grad():
        x = solver(y, phys, init=measurement_view(m.problem, fm, y).float())
    wall = time.perf_counter() - t0
    return {**score_samples(x, m.truth), "time_per_sample_s": wall, "nfe_per_sample": 0,
            "settings": {"c": c, "lambda": c * norm, "iterations": iters, "operator_norm_sq": norm}}


def _stored_choice(label: str, p: dict, store, method: str, param: str, grid, extra: dict):
    """The ``grid`` value with the best mean PSNR over the held-out phantoms ``p["tv_held_out"]`` among the
    stored cells (a failed cell's NaN never wins), or ``None`` while any (value, phantom) cell is missing."""
    keys = [{"problem": label, "method": method, param: v, "seed": seed, **extra}
            for v in grid for seed in p["tv_held_out"]]
    if not all(store.done(k) for k in keys):
        return None
    score = {v: mean_or_nan(r["psnr"] for r in store.records(problem=label, method=method, **{param: v}, **extra)
                            if r["key"]["seed"] in p["tv_held_out"]) for v in grid}
    return max(score, key=lambda v: -math.inf if math.isnan(score[v]) else score[v])


def _choose_on_held_out(label: str, p: dict, store, method: str, param: str, grid, extra: dict, run_one) -> float:
    """The ``grid`` value of ``param`` with the best mean PSNR on the held-out phantoms ``p["tv_held_out"]``.

    Each (value, phantom) cell is stored under ``{"problem", "method", param, "seed", **extra}`` and run
    by ``run_one(measurement, value, seed)`` only when missing, so the choice is made once per problem and plan.
    A choice at either end of a grid of three or more values warns: the optimum may lie outside the grid.
    """
    name, opts = PROBLEMS[label]
    for seed in p["tv_held_out"]:
        m = None
        for v in grid:
            key = {"problem": label, "method": method, param: v, "seed": seed, **extra}
            if not store.done(key):
                m = m or simulate(name, options=opts, seed=seed)
                store.add(key, run_one(m, v, seed))
    best = _stored_choice(label, p, store, method, param, grid, extra)
    if len(grid) >= 3 and best in (min(grid), max(grid)):
        warnings.warn(f"{label}: {method} chose {param} = {best:g}, an end of its grid {list(grid)}; "
                      "the best value may lie outside it (widen the grid)", RuntimeWarning, stacklevel=2)
    return best


def select_tv_weight(label: str, p: dict, store) -> float:
    """TV's weight ``c``: the grid value with the best mean PSNR on the held-out phantoms (stored, so chosen once)."""
    return _choose_on_held_out(label, p, store, "tv-select", "c", p["tv_grid"], {"iterations": p["tv_iters"]},
                               lambda m, c, seed: run_tv(m, c, p["tv_iters"]))


def _dps_select_extra(p: dict) -> dict:
    return {"steps": p["steps"], "samples": p["select_samples"]}


def select_deepinv_dps_weight(label: str, p: dict, store, prior) -> float:
    """deepinv DPS's guidance weight: the grid value with the best mean PSNR of the posterior mean on the
    held-out phantoms (``p["select_samples"]`` draws each; stored, so chosen once per problem and plan)."""
    return _choose_on_held_out(label, p, store, "deepinv-dps-select", "weight", p["dps_grid"],
                               _dps_select_extra(p),
                               lambda m, w, seed: run_deepinv(m, prior, "deepinv-dps", p["steps"], p["select_samples"],
                                                              seed, weight=w))


def _tuned(settings: dict | None) -> dict:
    """A sampler's settings without its step count (set by the plan, the same for every method)."""
    return {k: v for k, v in (settings or {}).items() if k not in ("num_steps", "prior_steps")}


def settings_note(rows: list[dict]) -> str:
    """The note of one of our samplers' table rows: its settings (``alpha = 0.3``), or which differ when the
    rows were run with different ones (a default changed and the method was not re-run with ``--rerun``)."""
    seen: list[list] = []  # [settings, rows with them], in first-seen order (dicts are not hashable)
    for r in rows:
        s = _tuned(r.get("settings"))
        entry = next((e for e in seen if e[0] == s), None)
        if entry is None:
            seen.append([s, 1])
        else:
            entry[1] += 1

    def fmt_one(s: dict) -> str:
        return ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in sorted(s.items()))

    if len(seen) <= 1:
        return fmt_one(seen[0][0]) if seen else ""
    return "mixed settings: " + "; ".join(f"{fmt_one(s) or 'defaults'} ({n} rows)" for s, n in seen)


def _warn_stale(label: str, method: str, stale: list[int], stored: dict, current: dict) -> None:
    """Warn that stored rows of ``method`` ran with settings other than the current defaults."""
    runs, start = [], stale[0]
    for a, b in zip(stale, [*stale[1:], None], strict=False):  # consecutive instances as ranges: 0-3, 7
        if b != a + 1:
            runs.append(f"{start}-{a}" if a > start else f"{start}")
            start = b
    warnings.warn(f"imaging {label}: {len(stale)} stored {method} row(s) (instances {', '.join(runs)}) ran with "
                  f"{stored}, the current settings are {current}; they are kept (the table notes mixed settings): "
                  f"run again with --rerun {method}", RuntimeWarning, stacklevel=3)


def _methods(label: str, p: dict) -> list[str]:
    ours = p["samplers"] if p["quick_samplers_on"] is None or label in p["quick_samplers_on"] else ["dps"]
    return [*BASELINES, *ours, *DEEPINV]


def run(settings: BenchSettings, prior=None) -> list[dict]:
    """Run every missing (problem, method, instance); ``prior`` defaults to ``load_prior("phantoms-64")``.

    ``settings.extra["rerun"]`` (``--rerun``): methods whose stored rows on the run's problems and
    instances are discarded first (:meth:`ResultStore.discard`), so they run again after a change to
    their code; the held-out weight selections are kept.
    """
    from priors import load_prior

    p = plan(settings)
    store = settings.store("imaging")
    rerun = check_methods(settings.extra.get("rerun") or [])
    if rerun:
        n = store.discard(problem=list(p["problems"]), method=list(rerun), seed=list(p["seeds"]))
        settings.log(f"imaging: discarded {n} stored row(s) of {', '.join(rerun)} on {', '.join(p['problems'])}, "
                     f"instances {p['seeds'].start}-{p['seeds'].stop - 1}, to run them again")
    prior = prior if prior is not None else load_prior("phantoms-64")
    out = []
    for label in p["problems"]:
        name, opts = PROBLEMS[label]
        c_tv = select_tv_weight(label, p, store)
        w_dps = select_deepinv_dps_weight(label, p, store, prior)
        stale = {}  # our method -> instances whose stored rows ran with other settings than the current ones
        current = {m: _tuned(sampler_settings(m, p["steps"], name, eki_iterations=p["eki_iterations"]))
                   for m in ALL_SAMPLERS}
        for seed in p["seeds"]:
            m = None
            for method in _methods(label, p):
                key = {"problem": label, "method": method, "seed": seed, "steps": p["steps"], "samples": p["samples"]}
                if method == "deepinv-dps":  # a new weight choice (a wider grid) makes the old rows stale
                    key["weight"] = w_dps
                if store.done(key):
                    rows = store.records(**key)
                    if method in current and any("psnr" in r and _tuned(r.get("settings")) != current[method]
                                                 for r in rows):
                        stale.setdefault(method, ([], _tuned(rows[-1].get("settings"))))[0].append(seed)
                    out += rows
                    continue
                m = m or simulate(name, options=opts, seed=seed)
                try:
                    if method == "view":
                        t0 = time.perf_counter()
                        v = measurement_view(name, m.forward_model, m.y[None])
                        rec = {**score_samples(v, m.truth), "time_per_sample_s": time.perf_counter() - t0,
                               "nfe_per_sample": 0}
                    elif method == "tv":
                        rec = run_tv(m, c_tv, p["tv_iters"])
                    elif method in DEEPINV:
                        rec = run_deepinv(m, prior, method, p["steps"], p["samples"], seed, weight=w_dps)
                    else:
                        rec = _ours(m, prior, method, p, label, seed)
                except (SamplerError, ValueError, RuntimeError) as e:
                    rec = {"failed": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
                rec.update(noise_sigma=float(m.noise.config()["sigma"]), threads=settings.threads)
                out.append(store.add(key, rec))
                settings.log(f"imaging {label} {method} seed={seed}: "
                             + (rec.get("failed") or rec.get("skipped") or f"PSNR {rec['psnr']:.2f}, "
                                f"{rec['time_per_sample_s']:.2f} s/sample"))
        for method, (seeds, stored) in stale.items():
            _warn_stale(label, method, seeds, stored, current[method])
    return out


def table(records: list[dict], settings: BenchSettings) -> str:
    """Markdown table, one row per (problem, method); replaces the ``suite-imaging`` block."""
    p = plan(settings)
    cells, chosen = {}, {}
    store = settings.store("imaging")
    for r in records:
        if r["key"]["method"] == "deepinv-dps" and "weight" in r["key"]:
            label = r["key"]["problem"]
            if label not in chosen:
                chosen[label] = _stored_choice(label, p, store, "deepinv-dps-select", "weight", p["dps_grid"],
                                               _dps_select_extra(p))
            if chosen[label] is not None and r["key"]["weight"] != chosen[label]:
                continue  # rows at a superseded weight choice
        cells.setdefault((r["key"]["problem"], r["key"]["method"]), []).append(r)
    order = {m: i for i, m in enumerate([*BASELINES, *ALL_SAMPLERS, *DEEPINV])}
    plist = list(PROBLEMS)
    lines = [machine_line(settings.threads, seeds=f"phantoms 0-{p['instances'] - 1} per problem",
                          note=f"{p['steps']} steps, {p['samples']} samples per posterior; noise sigma = 2% of the "
                               f"clean "
                          "measurement's RMS; TV weight and deepinv DPS's weight chosen on held-out phantoms "
                          f"{', '.join(map(str, p['tv_held_out']))}; our samplers run inverse reconstruct's "
                          "defaults (their settings in the note column)."),
             "", "| problem | method | instances | PSNR of mean (mean ± sd) | SSIM | 90% coverage | time / sample (s) "
             "| NFE / sample | note |", "|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(cells, key=lambda k: (plist.index(k[0]) if k[0] in plist else 99, order.get(k[1], 99))):
        rs = cells[key]
        ok = [r for r in rs if "psnr" in r]
        bad = [r.get("failed") or r.get("skipped") for r in rs if "psnr" not in r]
        note = bad[0] if bad else ""
        if key[1] == "tv" and ok:
            note = f"c = {ok[0]['settings']['c']:g} (lambda = c ||A||^2)"
        if key[1] == "deepinv-dps" and ok:
            note = f"weight {ok[0]['settings']['weight']:g} (chosen on the held-out phantoms)"
        if key[1] in ALL_SAMPLERS and ok and not bad:
            note = settings_note(ok)
        if not ok:
            lines.append(f"| {key[0]} | {key[1]} | 0 | - | - | - | - | - | {note} |")
            continue
        lines.append(f"| {key[0]} | {key[1]} | {len(ok)} | {mean_sd((r['psnr'] for r in ok), 2)} | "
                     f"{fmt(mean_or_nan(r.get('ssim') for r in ok))} | "
                     f"{fmt(mean_or_nan(r.get('coverage_90') for r in ok))} | "
                     f"{fmt(mean_or_nan(r['time_per_sample_s'] for r in ok), 2)} | "
                     f"{fmt(mean_or_nan(r['nfe_per_sample'] for r in ok), 0)} | {note} |")
    return write_block(settings, BLOCK, HEADING, "\n".join(lines))
