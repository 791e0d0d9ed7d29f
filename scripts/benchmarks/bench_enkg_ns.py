"""Navier-Stokes 64 x 64: EnKG vs DPS vs EKI at equal forward-model budget.

Problem (InverseBench convention, PHYSICS.md): recover the initial vorticity ``w0`` on ``[0, 2 pi]^2``
(Re = 200, forcing ``-4 cos 4y``) from the vorticity at ``T = 1`` observed at every ``--factor``-th
grid point (default 4: 16 x 16 values) with Gaussian noise ``--noise`` (physical units, default 1.0).
The solver's step defaults to ``--dt 5e-3``: at 1e-2 some Gaussian-prior samples (initial Courant
number ~0.57) blow up (NaN), which stops an ensemble method. Ground truths: ``--instances`` snapshots
of the ``ns-vorticity`` data set (``inverse.datasets``; spun up 5 time units) drawn with seed
``--truth-seed`` (default 10000, apart from the prior's training seed 0).

Prior: ``--prior`` is a shipped name (default ``ns-vorticity-64``) or a diffusers directory, loaded by
``priors.load_prior``; ``--prior gaussian-grf`` is a development stand-in without a network: the
stationary Gaussian fitted to ``--fit-samples`` snapshots of the same data set (empirical mean field and
power spectrum), whose denoiser is exact (:class:`priors.GaussianFieldPrior`).

Budget matching. The budget is the number of forward-model evaluations (NS solves) per instance, set by
EnKG's configuration: ``B = J * num_updates * (guided steps)`` (``EnsembleKalmanGuidance.cost_per_particle``).
EKI uses the same ensemble size ``J`` and ``B / J`` tempered Kalman iterations. DPS uses ``--dps-steps``
reverse steps and ``B // dps_steps`` independent samples (run in chunks of ``--dps-chunk``); each of
its forward evaluations also costs a VJP through the solver and the network (``grad_evals``, ~3-4x a
forward solve on this CPU), so its wall time is larger at the same count. ``--budget`` overrides B.

Scores, per instance and sampler: relative L2 error of the posterior mean ``||mean - w0|| / ||w0||``
(physical units), the mean over particles of ``||x_j - w0|| / ||w0||`` (InverseBench's number), the
relative data misfit of the mean, cost counters and wall time; a run that diverges (``SamplerError``) is
recorded as failed and counted in the table. Results are appended to a JSON-lines
file as they finish (a re-run skips finished (instance, sampler, configuration) records), and
``--report`` writes the Markdown table into the ``enkg-ns-table`` block of ``--markdown``.

    python scripts/benchmarks/bench_enkg_ns.py --instances 10 --out data/benchmarks/enkg_ns.jsonl
    python scripts/benchmarks/bench_enkg_ns.py --report data/benchmarks/enkg_ns.jsonl \\
        --markdown docs/benchmarks/studies.md
    python scripts/benchmarks/bench_enkg_ns.py --prior gaussian-grf --instances 1 --particles 16 --steps 10 \\
        --dps-steps 10 --out /tmp/smoke.jsonl          # smoke test

Run from the repository root by path; it imports its siblings in ``scripts/benchmarks/`` by name.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from common import mean_sd
from report import machine_line, markdown_table, median_time, synchronize

from forward_models import Gaussian, InverseProblem
from forward_models.navier_stokes import NavierStokes2D
from inverse.datasets import make_dataset
from priors import GaussianFieldPrior, Prior, PriorLoadError, load_prior
from samplers import DPS, EnsembleKalmanGuidance, EnsembleKalmanInversion, SamplerError
from samplers.base import resolve_device

__all__ = ["build_prior", "build_problems", "plan", "run_instance", "report", "main"]

BLOCK = "enkg-ns-table"
HEADING = "Navier-Stokes 64 x 64: EnKG vs DPS vs EKI at equal forward budget"


def build_prior(name: str, resolution: int, fit_samples: int) -> Prior:
    """The prior by name / directory, or the fitted stationary Gaussian for ``gaussian-grf``.

    Exits with a one-line message when a named prior is missing.
    """
    if name == "gaussian-grf":
        x, norm, _ = make_dataset("ns-vorticity", fit_samples, resolution, seed=1)
        return GaussianFieldPrior.fit(x, norm.scale)
    try:
        return load_prior(name)
    except PriorLoadError as e:
        raise SystemExit(f"bench_enkg_ns: cannot load the prior {name!r}: {e}.\n"
                         "Train and export it first (scripts/train_prior.sh ns-vorticity-64), pass its directory "
                         "with --prior, "
                         "or use --prior gaussian-grf for a development run without a network.") from None


def build_problems(args) -> tuple[NavierStokes2D, list[InverseProblem]]:
    """The NS operator and one seeded problem per ground truth (physical units)."""
    op = NavierStokes2D(args.resolution, factor=args.factor, T=args.T, dt=args.dt, checkpoint_every=10)
    x, norm, _ = make_dataset("ns-vorticity", args.instances, args.resolution, seed=args.truth_seed)
    truths = norm.to_physical(x)
    noise = Gaussian(args.noise)
    return op, [InverseProblem.simulate(op, noise, truths[i], seed=args.truth_seed + i) for i in range(len(truths))]


def plan(args) -> dict:
    """The three samplers' configurations at the matched budget (module docstring)."""
    enkg = EnsembleKalmanGuidance(num_steps=args.steps, guidance_scale=args.gamma, num_updates=args.updates,
                                  max_x0_steps=args.max_x0_steps, batch_size=args.batch_size)
    budget = args.budget or args.particles * enkg.cost_per_particle()["forward_evals"]
    eki_iters = max(1, budget // args.particles)
    dps_samples = max(1, budget // args.dps_steps)
    return {
        "enkg": {"sampler": enkg, "num_samples": args.particles,
                 "settings": {"J": args.particles, "steps": args.steps, "gamma": args.gamma, "updates": args.updates,
                              **({} if args.max_x0_steps == 20 else {"x0_steps": args.max_x0_steps})}},
        "eki": {"sampler": EnsembleKalmanInversion(num_iterations=eki_iters, prior_steps=args.eki_prior_steps,
                                                   batch_size=args.batch_size),
                "num_samples": args.particles,
                "settings": {"J": args.particles, "iterations": eki_iters, "prior_steps": args.eki_prior_steps}},
        "dps": {"sampler": DPS(num_steps=args.dps_steps, zeta=args.dps_zeta), "num_samples": dps_samples,
                "settings": {"samples": dps_samples, "steps": args.dps_steps, "zeta": args.dps_zeta}},
        "budget": budget,
    }


def _sample(entry, problem, prior, seed, chunk):
    """Run one sampler; DPS (independent samples) in chunks of ``chunk`` to bound autograd memory."""
    sampler, n = entry["sampler"], entry["num_samples"]
    if not isinstance(sampler, DPS) or n <= chunk:
        post = sampler.sample(problem, prior, n, seed=seed)
        return post.samples, post.diagnostics
    parts, diag = [], {"nfe": 0, "forward_evals": 0, "grad_evals": 0}
    for k, start in enumerate(range(0, n, chunk)):
        post = sampler.sample(problem, prior, min(chunk, n - start), seed=seed * 1000 + k)
        parts.append(post.samples)
        for key in diag:
            diag[key] += post.diagnostics[key]
    return torch.cat(parts), diag


def run_instance(name: str, entry: dict, problem: InverseProblem, prior: Prior, seed: int, chunk: int) -> dict:
    """Sample one instance with one sampler on the prior's device and score it (module docstring)."""
    t0 = time.perf_counter()
    try:
        samples, diag = _sample(entry, problem, prior, seed, chunk)
    except SamplerError as e:  # a diverged run is a result (InverseBench reports DAPS unstable on FWI)
        return {"sampler": name, "failed": str(e), "time_s": time.perf_counter() - t0, "settings": entry["settings"]}
    synchronize()
    wall = time.perf_counter() - t0
    truth = problem.truth.to(samples)
    tn = float(truth.norm())
    mean = samples.mean(0)
    with torch.no_grad():
        fit = problem.forward_model(mean[None])[0]
    y = problem.y.to(fit)
    return {"sampler": name, "rel_l2_mean": float((mean - truth).norm()) / tn,
            "rel_l2_particles": statistics.fmean(float((s - truth).norm()) / tn for s in samples),
            "rel_misfit_mean": float((fit - y).norm() / y.norm()), "num_samples": len(samples),
            "nfe": diag["nfe"], "forward_evals": diag["forward_evals"], "grad_evals": diag["grad_evals"],
            "time_s": wall, "settings": entry["settings"]}


def forward_timings(op: NavierStokes2D, repeats: int = 3) -> dict:
    """Median time of one forward solve at batch 1 and 16, and of forward + VJP at batch 1 (float32), on the
    operator's device (CUDA timings synchronise: :func:`report.median_time`)."""
    dev = op.kx.device
    x1, x16 = op.example_input(1, 0, torch.float32).to(dev), op.example_input(16, 0, torch.float32).to(dev)

    def fwd_vjp():
        x = x1.clone().requires_grad_(True)
        torch.autograd.grad(op(x).sum(), x)

    return {"forward_b1_s": median_time(lambda: op(x1), repeats),
            "forward_b16_s": median_time(lambda: op(x16), repeats),
            "forward_vjp_b1_s": median_time(fwd_vjp, repeats)}


def run(args) -> None:
    """Run every (instance, sampler) not yet in ``--out``."""
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    prior = build_prior(args.prior, args.resolution, args.fit_samples)
    op, problems = build_problems(args)
    if args.device != "cpu":
        prior.to(resolve_device(args.device))
        op = op.to(args.device)
        problems = [pb.to(args.device) for pb in problems]
    timings = forward_timings(op)
    print("forward timings (s): " + ", ".join(f"{k} {v:.4f}" for k, v in timings.items()), flush=True)
    cfg = plan(args)
    print(f"budget: {cfg['budget']} forward evaluations per instance; "
          + "; ".join(f"{k} {cfg[k]['settings']}" for k in args.samplers), flush=True)
    common = {"prior": args.prior, "factor": args.factor, "noise": args.noise, "resolution": args.resolution,
              "T": args.T, "dt": args.dt, "budget": cfg["budget"], "threads": args.threads,
              "device": (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu")}
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done.add((r["instance"], r["sampler"], json.dumps(r["settings"], sort_keys=True), r["prior"],
                          r["budget"]))
    first, last = args.instance_range or (0, len(problems))
    if not 0 <= first < last <= len(problems):
        raise SystemExit(f"bench_enkg_ns: --instance-range {first} {last} must satisfy 0 <= FIRST < END <= --instances")
    for i, problem in enumerate(problems):
        if not first <= i < last:  # another process runs these (--instance-range)
            continue
        for name in args.samplers:
            entry = cfg[name]
            if (i, name, json.dumps(entry["settings"], sort_keys=True), args.prior, cfg["budget"]) in done:
                continue
            rec = {"instance": i, "truth_seed": args.truth_seed, **common,
                   **run_instance(name, entry, problem, prior, i, args.dps_chunk), **timings}
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
            if "failed" in rec:
                print(f"instance {i} {name}: FAILED after {rec['time_s']:.1f} s: {rec['failed']}", flush=True)
                continue
            print(f"instance {i} {name}: rel-L2(mean) {rec['rel_l2_mean']:.3f}, rel-L2(particles) "
                  f"{rec['rel_l2_particles']:.3f}, forward {rec['forward_evals']}, {rec['time_s']:.1f} s", flush=True)


def report(paths, markdown: str | None, command: str) -> str:
    """Markdown table (one row per prior / budget / sampler) from JSON-lines results; into ``markdown`` if given."""
    recs = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line.strip()]
    cells = {}
    for r in recs:
        cells.setdefault((r["prior"], r["budget"], r["sampler"]), []).append(r)
    first = recs[0] if recs else {}
    lines = [
        machine_line(first.get("threads", 1)),
        f"Problem: {first.get('resolution', 64)}^2 initial vorticity from w(T = {first.get('T', 1.0)}) subsampled "
        f"x{first.get('factor', 4)}, noise sigma {first.get('noise', 1.0)} (physical units); one NS solve "
        f"{first.get('forward_b1_s', float('nan')) * 1e3:.0f} ms (batch 1), "
        f"{first.get('forward_b16_s', float('nan')) * 1e3:.0f} ms (batch 16), forward + VJP "
        f"{first.get('forward_vjp_b1_s', float('nan')) * 1e3:.0f} ms (batch 1).",
        "",
        "| prior | budget | sampler | settings | instances | rel-L2 of mean (mean ± sd) | rel-L2 per particle "
        "| data misfit of mean | forward evals | grad evals | NFE | time / instance (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(cells):
        failed = sum("failed" in r for r in cells[key])
        rs = [r for r in cells[key] if "failed" not in r]
        if not rs:
            lines.append(f"| {key[0]} | {key[1]} | {key[2]} | | 0 ({failed} diverged) | - | - | - | - | - | - | - |")
            continue
        mean = lambda k, rs=rs: statistics.fmean(r[k] for r in rs)  # noqa: E731
        settings = ", ".join(f"{k} {v}" for k, v in rs[0]["settings"].items())
        note = f" ({failed} diverged)" if failed else ""
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {settings} | {len(rs)}{note} | "
                     f"{mean_sd(r['rel_l2_mean'] for r in rs)} | "
                     f"{mean('rel_l2_particles'):.3f} | {mean('rel_misfit_mean'):.3f} | {mean('forward_evals'):.0f} | "
                     f"{mean('grad_evals'):.0f} | {mean('nfe'):.0f} | {mean('time_s'):.1f} |")
    return markdown_table(command, "\n".join(lines), markdown, key=BLOCK, heading=HEADING)


def main(argv=None) -> int:
    """Command line (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prior", default="ns-vorticity-64", help="shipped name, diffusers directory, or gaussian-grf")
    p.add_argument("--instances", type=int, default=10)
    p.add_argument("--truth-seed", type=int, default=10_000)
    p.add_argument("--instance-range", type=int, nargs=2, metavar=("FIRST", "END"), default=None,
                   help="run only instances FIRST <= i < END (split a run over processes; same truths)")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--factor", type=int, default=4)
    p.add_argument("--noise", type=float, default=1.0, help="Gaussian noise sigma, physical units")
    p.add_argument("--T", type=float, default=1.0)
    p.add_argument("--dt", type=float, default=5e-3, help="solver time step (1e-2 blows up on some prior samples)")
    p.add_argument("--samplers", nargs="+", default=["enkg", "dps", "eki"], choices=["enkg", "dps", "eki"])
    p.add_argument("--particles", type=int, default=512, help="EnKG and EKI ensemble size J")
    p.add_argument("--steps", type=int, default=80, help="EnKG probability-flow ODE steps")
    p.add_argument("--gamma", type=float, default=2.0, help="EnKG guidance scale")
    p.add_argument("--updates", type=int, default=2, help="EnKG ensemble updates per guided step")
    p.add_argument("--max-x0-steps", type=int, default=20,
                   help="EnKG: at most this many Euler steps per x0 prediction (1: the denoiser, Tweedie)")
    p.add_argument("--budget", type=int, default=None, help="forward evaluations per instance (default: EnKG's)")
    p.add_argument("--eki-prior-steps", type=int, default=30)
    p.add_argument("--dps-steps", type=int, default=1000)
    p.add_argument("--dps-zeta", type=float, default=1.0)
    p.add_argument("--dps-chunk", type=int, default=16, help="DPS samples per run (bounds autograd memory)")
    p.add_argument("--batch-size", type=int, default=None, help="EnKG / EKI evaluation chunk")
    p.add_argument("--fit-samples", type=int, default=128, help="snapshots for --prior gaussian-grf")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (prior, solver and samplers)")
    p.add_argument("--out", default="data/benchmarks/enkg_ns.jsonl")
    p.add_argument("--report", nargs="+", metavar="JSONL", help="write the table from these result files")
    p.add_argument("--markdown", default=None, help="Markdown file whose enkg-ns-table block is replaced")
    p.add_argument("--command", default="python scripts/benchmarks/bench_enkg_ns.py --instances 10")
    args = p.parse_args(argv)
    if args.report:
        print(report(args.report, args.markdown, args.command))
        return 0
    t0 = time.time()
    run(args)
    print(f"done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
