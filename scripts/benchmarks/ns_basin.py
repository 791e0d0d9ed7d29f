"""Navier-Stokes 64^2: do the samplers reach the right basin? The leading samplers beside two L-BFGS references.

Problem: ``navier-stokes`` (Re 200, T = 1, truths ``ns-vorticity`` seeds 10000 + i), observed at every
``factor``-th grid point with Gaussian noise ``sigma`` (physical units); prior ``ns-vorticity-64``. Methods:

- ``lbfgs-zero`` / ``lbfgs-near``: L-BFGS (strong Wolfe line search) on the data misfit ``||F(w0) - y||^2 / (2
  sigma^2)`` alone, started from zero and from the truth plus a perturbation of 0.3 of its norm (a smooth random
  field); the references the issue names (no prior: they show where the basin is, not a posterior);
- ``dps``: DPS at the tuned setting (``inverse reconstruct``'s default for navier-stokes), 100 steps;
- ``daps`` / ``pnp-dm``: the splitting samplers with the Langevin likelihood step, at the settings given;
- ``enkg``: ensemble Kalman guidance at InverseBench's budget (80 steps, 2 updates per step) with
  ``--enkg-particles`` members (InverseBench: 2,048), the posterior mean being the ensemble mean.

``--device cuda`` runs the samplers on a GPU (``scripts/ns_device.sh`` is the prepared device run);
``--checkpoint-dir`` lets a sampler run longer than one call (EnKG with 2,048 members) resume where it stopped.

Per method and instance: the relative L2 error of the posterior mean (of the L-BFGS end point), the data misfit
(mean squared whitened residual per measurement of the mean), forward and gradient evaluations per sample, wall
time. Rows go to a :class:`common.ResultStore` as they finish (a re-run skips them).

    python scripts/benchmarks/ns_basin.py --instances 2 --factor 2 --sigma 0.1 --out data/benchmarks/ns_basin.jsonl
    python scripts/benchmarks/ns_basin.py --table data/benchmarks/ns_basin.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from common import ResultStore

METHODS = ("lbfgs-zero", "lbfgs-near", "dps", "daps", "pnp-dm", "enkg")

#: sampler settings of this study (the Langevin likelihood step; a budget of about 1,000 gradient solves per sample)
SETTINGS = {"daps": {"num_steps": 50, "ode_steps": 5, "langevin_steps": 20},
            "pnp-dm": {"num_steps": 40, "prior_steps": 10, "langevin_steps": 25, "rho_max": 2.0},
            "enkg": {"num_steps": 80, "num_updates": 2}}


def lbfgs(problem, start: torch.Tensor, iterations: int) -> tuple[torch.Tensor, int]:
    """L-BFGS on ``-log p(y | w0)`` from ``start``; returns the end point and the number of function evaluations."""
    w = start.clone()[None].requires_grad_(True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=iterations, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-14)
    count = [0]

    def closure():
        opt.zero_grad()
        loss = -problem.log_likelihood(w).sum()
        loss.backward()
        count[0] += 1
        return loss

    opt.step(closure)
    return w.detach()[0], count[0]


def run_one(method: str, seed: int, a) -> dict:
    from inverse.measurements import simulate
    from inverse.reconstruction import reconstruct
    from priors import load_prior
    from samplers import get_sampler

    m = simulate("navier-stokes", options={"factor": a.factor}, seed=seed, noise_std=a.sigma)
    problem = m.inverse_problem()
    truth = m.truth.to(torch.float64)
    t0 = time.perf_counter()
    rec = {"method": method, "seed": seed, "factor": a.factor, "sigma": a.sigma}
    if method.startswith("lbfgs"):
        if method == "lbfgs-zero":
            start = torch.zeros_like(truth)
        else:
            g = torch.Generator().manual_seed(seed)
            pert = torch.nn.functional.avg_pool2d(torch.randn(truth.shape, generator=g, dtype=truth.dtype)[None],
                                                  5, 1, 2)[0]
            start = truth + 0.3 * truth.norm() * pert / pert.norm()
        est, evals = lbfgs(problem, start, a.lbfgs_iterations)
        rec.update(forward_evals=evals, grad_evals=evals)
    else:
        prior = load_prior("ns-vorticity-64", device=a.device)
        n = a.enkg_particles if method == "enkg" else a.num_samples
        if method == "dps":
            post = reconstruct(m, prior, "dps", num_samples=n, seed=0, fallback=False, device=a.device)
        else:
            ckpt = {}
            if a.checkpoint_dir:  # a run longer than one device call resumes from its last checkpoint
                path = Path(a.checkpoint_dir) / f"{method}-{seed}-{n}.ckpt"
                path.parent.mkdir(parents=True, exist_ok=True)
                ckpt = {"checkpoint": str(path), "checkpoint_every": 5, "resume": path.exists()}
            post = get_sampler(method, **SETTINGS[method]).sample(problem, prior, n, seed=0, device=a.device, **ckpt)
        est = post.mean().to("cpu", torch.float64)
        d = post.diagnostics
        rec.update(forward_evals=d["forward_evals"] / n, grad_evals=d["grad_evals"] / n, total_forward_evals=
                   d["forward_evals"], nfe=d["nfe"] / n, settings=SETTINGS.get(method, {}), num_samples=n,
                   device=str(a.device))
    with torch.no_grad():
        r = (problem.forward_model(est[None])[0] - problem.y) / a.sigma
    rec.update(relative_l2=float((est - truth).norm() / truth.norm()), misfit=float(r.pow(2).mean()),
               wall_time_s=time.perf_counter() - t0)
    return rec


def table(path) -> str:
    rows = [{**r, **r["key"]} for r in ResultStore(path).records()]
    out = ["| method | instances | relative L2 (mean) | per instance | misfit (mean) | forward / sample | "
           "gradients / sample | time / instance (s) |", "|---|---|---|---|---|---|---|---|"]
    for method in METHODS:
        rs = sorted((r for r in rows if r["method"] == method and "relative_l2" in r), key=lambda r: r["seed"])
        if not rs:
            continue
        mean = lambda k, rs=rs: sum(r[k] for r in rs) / len(rs)  # noqa: E731
        out.append(f"| {method} | {len(rs)} | {mean('relative_l2'):.3f} | "
                   + ", ".join(f"{r['relative_l2']:.3f}" for r in rs)
                   + f" | {mean('misfit'):.2f} | {mean('forward_evals'):.0f} | {mean('grad_evals'):.0f} | "
                   f"{mean('wall_time_s'):.0f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instances", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=10000)
    p.add_argument("--factor", type=int, default=2)
    p.add_argument("--sigma", type=float, default=0.1)
    p.add_argument("--num-samples", type=int, default=4)
    p.add_argument("--lbfgs-iterations", type=int, default=200)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--enkg-particles", type=int, default=2048)
    p.add_argument("--device", default="cpu")
    p.add_argument("--checkpoint-dir", default=None,
                   help="checkpoint each sampler run here every 5 steps and resume from it (runs past a time limit)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="data/benchmarks/ns_basin.jsonl")
    p.add_argument("--table", default=None, metavar="JSONL")
    a = p.parse_args(argv)
    if a.table:
        print(table(a.table))
        return 0
    torch.set_num_threads(a.threads)
    store = ResultStore(a.out)
    for seed in range(a.first_seed, a.first_seed + a.instances):
        for method in a.methods:
            key = {"method": method, "seed": seed, "factor": a.factor, "sigma": a.sigma}
            if store.done(key):
                continue
            try:
                rec = run_one(method, seed, a)
            except Exception as e:  # noqa: BLE001 - a failed cell is recorded, not fatal
                rec = {"failed": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
            print(json.dumps(store.add(key, {k: v for k, v in rec.items() if k not in key})), flush=True)
    print(table(a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
