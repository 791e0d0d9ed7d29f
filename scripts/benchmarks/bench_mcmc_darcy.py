"""Darcy benchmark of two-level MCMC: ESS per fine solve and per second, single-level pCN vs delayed acceptance.

Problem (:func:`inverse.problems.darcy_two_level_problem`): log-permeability ``x = m_0 + sum_k sqrt(mu_k) xi_k
phi_k`` (a Matern field, K Karhunen-Loeve modes) on an N x N grid, pressure at a 5 x 5 sensor grid (Darcy flow,
``a = exp(x)``), Gaussian noise ``--noise``; every chain runs pCN / delayed acceptance in the KL coefficients
``xi ~ N(0, I_K)``. Methods, side by side on the same problem:

- ``pcn``: single-level pCN on the fine solver;
- ``da-coarse-grid``: our delayed acceptance (MLDA kernel, random sub-chain length), coarse level the solver
  on a 16 x 16 grid (``DarcyFlow.coarse``);
- ``da-surrogate``: the same with a neural surrogate (MLP on the KL coefficients, trained with Lightning on
  fine solver runs; its training solves and time are reported in their own columns);
- ``mlda-3``: three levels, surrogate -> coarse grid -> fine;
- ``tinyda-coarse-grid``: tinyDA 0.9.21's delayed acceptance (``CrankNicolson`` proposal; the prior mean is
  zero in KL coordinates, so its zero-mean pCN is correct here) with the same coarse model, sub-chain
  length, step size and iterations (benchmark-only dependency; ``ray`` is stubbed, chains run sequentially);
- ``*-gpcn``: the same kernels with generalised pCN on the cheapest level (Rudolf & Sprungk 2018,
  :mod:`samplers.mcmc.pcn`): the reference Gaussian is fitted (``gaussian_reference``, covariance inflated 2x) to
  pilot runs on the 16 x 16 coarse grid only (pCN, then generalised pCN with the first fit, refitted);
  the pilot's coarse solves and time are added to every ``*-gpcn`` row, whose chains start at the
  pilot's final states. ``gpcn`` is single-level generalised pCN on the fine solver, to separate what
  the reference buys from what delayed acceptance buys; ``tinyda-coarse-grid-rw`` gives tinyDA the same
  information (``GaussianRandomWalk`` with the reference covariance, scaling ``2.38 / sqrt(2 K)``).

ESS: the minimum over the K coefficients of ArviZ's bulk ESS, all chains together. Fine solves count every
accurate solve of the run, warm-up included. Writes one JSON line per (grid, method) and the
``mcmc-darcy-table`` block of BENCHMARKS.md.

    python scripts/benchmarks/bench_mcmc_darcy.py --sizes 32 64

Run from the repository root by path; it imports its siblings in ``scripts/benchmarks/`` by name.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
from report import machine_line, replace_markdown_block

from forward_models import InverseProblem
from forward_models.surrogate import train_surrogate
from inverse.problems import darcy_two_level_problem
from priors.function_space import StandardGaussian
from samplers.mcmc import MLDA, PCN, Potential, pilot_reference, sample_chains

__all__ = ["main", "run_grid"]

#: the repository (default output paths)
ROOT = Path(__file__).resolve().parents[2]


def _ess(draws: np.ndarray) -> float:
    import arviz as az

    ds = az.convert_to_dataset({"u": draws}, dims={"u": ["k"]})
    return float(np.asarray(az.ess(ds, method="bulk")["u"].values).min())


def _run_ours(name, kernel, u0, iters, warmup, seed, adapt_every=25, pilot=None, target=0.25):
    res = sample_chains(kernel, u0, iters, seed=seed, warmup=warmup, target_acceptance=target, adapt_every=adapt_every)
    s = res.summary()
    rec = {"method": name, "ess": s["ess_min"], "rhat_max": s["rhat_max"], "fine_solves": s["fine_solves"],
           "evaluations": s["evaluations"], "acceptance": s["acceptance"], "wall_time_s": s["wall_time_s"],
           "beta": res.beta, "iterations": iters, "warmup": warmup}
    return _add_pilot(rec, pilot)


def _add_pilot(rec, pilot):
    """Charge the pilot run that fitted the reference (coarse solves and time) to a generalised-pCN record."""
    if pilot is not None:
        ev = dict(rec["evaluations"])
        ev["pilot-coarse-grid"] = pilot["solves"]
        rec.update(evaluations=ev, wall_time_s=rec["wall_time_s"] + pilot["time_s"])
    return rec


def _pilot_reference(coarse, measure, u0, iters, warmup, seed, rounds=2):
    """:func:`samplers.mcmc.pilot_reference` on the coarse level, with its cost: (reference, final states, record)."""
    t0 = time.perf_counter()
    solves = {"n": 0}

    def counted(u):
        solves["n"] += len(u)
        return coarse(u)

    ref, u, res = pilot_reference(counted, measure, u0, iters, warmup=warmup, rounds=rounds, seed=seed + 101)
    return ref, u, {"solves": solves["n"], "time_s": time.perf_counter() - t0, "ess": float(res.ess().min()),
                    "rhat": float(np.nanmax(res.rhat())), "iterations": iters, "warmup": warmup, "rounds": rounds}


def _run_tinyda(problem, coarse_problem, prior, u0, iters, warmup, J, beta, seed, reference=None, pilot=None):
    if "ray" not in sys.modules:  # tinyDA imports ray at module level; chains run sequentially here
        stub = types.ModuleType("ray")
        stub.remote = lambda cls: cls
        sys.modules["ray"] = stub
    import tinyDA as tda
    from scipy.stats import multivariate_normal

    K = prior.num_modes
    counts = {"fine": 0, "coarse": 0}

    def model(fm, key):
        def f(u):
            counts[key] += 1
            with torch.no_grad():
                return fm(prior.field(torch.as_tensor(u, dtype=torch.float64)[None]))[0].numpy()
        return f

    y = problem.y.numpy()
    like = tda.GaussianLogLike(y, problem.noise.sigma**2 * np.eye(len(y)))
    mvn = multivariate_normal(np.zeros(K), np.eye(K))
    posts = [tda.Posterior(mvn, like, model(coarse_problem.forward_model, "coarse")),
             tda.Posterior(mvn, like, model(problem.forward_model, "fine"))]
    np.random.seed(seed)
    if reference is None:
        proposal, name = tda.CrankNicolson(scaling=beta), "tinyda-coarse-grid"
    else:
        proposal = tda.GaussianRandomWalk(reference.covariance().numpy(), scaling=2.38 / np.sqrt(2 * K))
        name = "tinyda-coarse-grid-rw"
    t0 = time.perf_counter()
    out = tda.sample(posts, proposal, iters + warmup, n_chains=len(u0),
                     initial_parameters=[u.numpy() for u in u0], subchain_length=J, randomize_subchain_length=True,
                     store_coarse_chain=True, force_sequential=True)
    wall = time.perf_counter() - t0
    chains = [np.array([link.parameters for link in out[f"chain_fine_{i}"]])[1 + warmup:] for i in range(len(u0))]
    draws = np.stack(chains)
    import arviz as az

    rhat = float(np.asarray(az.rhat(az.convert_to_dataset({"u": draws}, dims={"u": ["k"]}))["u"].values).max())
    return _add_pilot({"method": name, "ess": _ess(draws), "rhat_max": rhat, "fine_solves": counts["fine"],
                       "evaluations": dict(counts), "acceptance": {}, "wall_time_s": wall, "beta": beta,
                       "iterations": iters, "warmup": warmup}, pilot)


def run_grid(n: int, args) -> list[dict]:
    """All methods on the n x n problem; returns one record per method."""
    darcy = darcy_two_level_problem(n, args.modes, args.noise, seed=args.seed, check_finite=False)
    prior, problem, coarse_problem = darcy.prior, darcy.problem, darcy.coarse_problem
    measure = StandardGaussian(args.modes)
    fine = Potential(problem, prior.field, name="fine")
    coarse = Potential(coarse_problem, prior.field, name="coarse-grid")
    # surrogate: trained on fine solver runs from the prior
    t0 = time.perf_counter()
    xi = torch.randn(args.train_examples, args.modes, generator=torch.Generator().manual_seed(args.seed + 7),
                     dtype=torch.float64)
    with torch.no_grad():
        x_train = prior.field(xi)
        y_train = problem.forward_model(x_train)
    projection = (prior.basis * prior.eigenvalues.sqrt()[:, None]).float()
    sur_fm, card = train_surrogate(x_train, y_train, projection=projection, hidden=(128, 128),
                                   steps=args.train_steps, lr=3e-3, log_output=True, seed=args.seed)
    sur_time = time.perf_counter() - t0
    surrogate = Potential(InverseProblem(sur_fm, problem.y, problem.noise), prior.field, name="surrogate")
    u0 = measure.sample(args.chains, torch.Generator().manual_seed(args.seed + 11))
    J, wu = args.subchain, args.warmup
    recs = [_run_ours("pcn", PCN(fine, measure, 0.1), u0, args.pcn_iterations, args.pcn_warmup, args.seed)]
    da = _run_ours("da-coarse-grid", MLDA([coarse, fine], measure, J, 0.1, randomize=True), u0, args.da_iterations, wu,
                   args.seed, adapt_every=2)
    recs.append(da)
    recs.append(_run_ours("da-surrogate", MLDA([surrogate, fine], measure, J, 0.1, randomize=True), u0,
                          args.da_iterations, wu, args.seed, adapt_every=2))
    recs.append(_run_ours("mlda-3", MLDA([surrogate, coarse, fine], measure, [args.subchain3, J // 2], 0.1,
                                         randomize=True), u0, args.da_iterations, wu, args.seed, adapt_every=2))
    if not args.skip_tinyda:
        recs.append(_run_tinyda(problem, coarse_problem, prior, u0, args.da_iterations, wu, J, da["beta"], args.seed))
    if args.gpcn:
        ref, u_pilot, pilot = _pilot_reference(coarse, measure, u0, args.pilot_iterations, args.pilot_warmup, args.seed)
        g_iters = args.gpcn_iterations or args.da_iterations
        recs.append(_run_ours("gpcn", PCN(fine, measure, 0.5, reference=ref), u_pilot, g_iters, wu, args.seed,
                              adapt_every=5, pilot=pilot, target=0.3))
        for name, levels, Js in [("da-coarse-grid-gpcn", [coarse, fine], J),
                                 ("da-surrogate-gpcn", [surrogate, fine], J),
                                 ("mlda-3-gpcn", [surrogate, coarse, fine], [args.subchain3, J // 2])]:
            recs.append(_run_ours(name, MLDA(levels, measure, Js, 0.5, randomize=True, reference=ref), u_pilot,
                                  args.da_iterations, wu, args.seed, adapt_every=2, pilot=pilot))
        if not args.skip_tinyda:
            recs.append(_run_tinyda(problem, coarse_problem, prior, u_pilot, args.da_iterations, wu, J, da["beta"],
                                    args.seed, reference=ref, pilot=pilot))
    for r in recs:
        r.update({"grid": n, "modes": args.modes, "chains": args.chains, "subchain": J, "noise": args.noise,
                  "ess_per_fine_solve": r["ess"] / max(r["fine_solves"], 1), "ess_per_s": r["ess"] / r["wall_time_s"],
                  "surrogate_train_solves": args.train_examples, "surrogate_train_time_s": sur_time,
                  "surrogate_val_rel_error": card.get("val_relative_error_median")})
        print(json.dumps(r), flush=True)
    return recs


def _table(recs: list[dict], command: str) -> str:
    lines = [f"Command: `{command}`", "",
             machine_line(1), "",
             "| grid | method | fine solves | coarse / surrogate solves | ESS (min bulk) | max R-hat | ESS / 1000 "
             "fine solves | "
             "vs pCN | ESS / s | vs tinyDA | acceptance (coarse, fine) | time (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in sorted({r["grid"] for r in recs}):
        rows = [r for r in recs if r["grid"] == n]
        base = next(r for r in rows if r["method"] == "pcn")["ess_per_fine_solve"]
        tinies = {m: next((r["ess_per_s"] for r in rows if r["method"] == m), float("nan"))
                  for m in ("tinyda-coarse-grid", "tinyda-coarse-grid-rw")}
        for r in rows:  # generalised-pCN rows are compared with tinyDA given the same reference covariance
            informed = r["method"].endswith("-gpcn") or r["method"] in ("gpcn", "tinyda-coarse-grid-rw")
            tiny = tinies["tinyda-coarse-grid-rw" if informed else "tinyda-coarse-grid"]
            cheap = sum(v for k, v in r["evaluations"].items() if k != "fine")
            acc = ", ".join(f"{v:.2f}" for v in r["acceptance"].values()) or "-"
            lines.append(f"| {n}x{n} | {r['method']} | {r['fine_solves']} | {cheap} | {r['ess']:.0f} | "
                         f"{r['rhat_max']:.3f} | "
                         f"{1000 * r['ess_per_fine_solve']:.1f} | {r['ess_per_fine_solve'] / base:.0f}x | "
                         f"{r['ess_per_s']:.2f} | "
                         f"{r['ess_per_s'] / tiny:.2f}x | {acc} | {r['wall_time_s']:.0f} |")
    r0 = recs[0]
    lines += ["", f"{r0['modes']} KL modes (Matern alpha 2, tau 3, sigma 6; pointwise std ~0.9), 25 sensors, noise "
                  f"sigma "
              f"{r0['noise']}, {r0['chains']} chains; delayed acceptance with sub-chains of uniform length in "
              f"1..{r0['subchain']}, coarse grid 16 x 16. Surrogate: MLP (128, 128) on the KL coefficients predicting "
              "log-pressure, trained on " + ", ".join(f"{r['surrogate_train_solves']} solves / "
                                                      f"{r['surrogate_train_time_s']:.0f} s "
                                                     f"(val. rel. error {r['surrogate_val_rel_error']:.3f}) at "
                                                     f"{r['grid']}"
                                                     for r in recs if r["method"] == "pcn") +
              "; these solves are not in the fine-solve column."]
    pilots = [r for r in recs if r["method"] == "gpcn"]
    if pilots:
        lines += ["", "Generalised pCN (`*-gpcn`, `gpcn`): reference Gaussian fitted to pilot runs on the 16 x 16 "
                      "grid only (pCN, then generalised pCN with the first fit, refitted; "
                  + ", ".join(f"{r['evaluations']['pilot-coarse-grid']} coarse solves at {r['grid']}" for r in pilots)
                  + "), counted in the coarse column and the time of every such row; their `vs tinyDA` compares with "
                  "`tinyda-coarse-grid-rw` (tinyDA given the same covariance), the other rows with "
                  "`tinyda-coarse-grid`."]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Run the benchmark; print JSON lines, append them to --out, write the BENCHMARKS.md block."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    p.add_argument("--modes", type=int, default=32)
    p.add_argument("--noise", type=float, default=0.005)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--pcn-iterations", type=int, default=4000)
    p.add_argument("--pcn-warmup", type=int, default=1000)
    p.add_argument("--da-iterations", type=int, default=300)
    p.add_argument("--warmup", type=int, default=60)
    p.add_argument("--subchain", type=int, default=30)
    p.add_argument("--subchain3", type=int, default=5)
    p.add_argument("--train-examples", type=int, default=2000)
    p.add_argument("--train-steps", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-tinyda", action="store_true")
    p.add_argument("--gpcn", action="store_true", help="also the generalised-pCN rows (pilot on the coarse grid)")
    p.add_argument("--pilot-iterations", type=int, default=2000)
    p.add_argument("--pilot-warmup", type=int, default=500)
    p.add_argument("--gpcn-iterations", type=int, default=None, help="single-level gpcn iterations (default: "
                                                                     "--da-iterations)")
    p.add_argument("--out", default=str(ROOT / "data" / "benchmarks" / "mcmc_darcy.jsonl"))
    p.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument("--no-markdown", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    recs = []
    for n in args.sizes:
        if n % 16:
            raise SystemExit(f"grid sizes must be multiples of 16 (coarse grid 16 x 16), got {n}")
        recs += run_grid(n, args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    if not args.no_markdown:
        shown = " ".join(argv if argv is not None else sys.argv[1:])
        command = f"python scripts/benchmarks/bench_mcmc_darcy.py {shown}"
        replace_markdown_block(args.markdown, "mcmc-darcy-table", "Two-level MCMC on Darcy flow",
                               _table(recs, command.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
