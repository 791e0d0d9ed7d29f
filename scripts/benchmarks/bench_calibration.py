"""ESS per second and accuracy of calibration: NUTS and gradient-free ensemble slice sampling, in JAX and through
the torch bridge.

The heat-equation and MRI T2 models of ``inverse.calibration.models`` are written twice, in JAX and
as a torch ForwardModel (same posterior): the torch twin runs through the bridge. The layered-earth
model (6 parameters, JAX only) shows the kernels beyond two dimensions; ``line`` (``y = a + b t``,
Gaussian priors, known noise) has an exact Gaussian posterior. For each model, kernel and seed: the
kernel's default chains (:func:`inverse.calibration.calibrate`), vectorised, known noise, data
simulated at the model's default truth (seed 1).

- ``ESS``: the smallest bulk effective sample size over the parameters (ArviZ, rank-normalised);
- ``compile (s)``: the union of JAX's tracing, lowering and XLA-compilation time spans during the run
  (``jax.monitoring`` time-span events); ``sampling (s)``: the rest of the wall time (warm-up, kept
  draws, the Laplace start of torch models, Python overhead);
- ``ESS/s``: ESS per sampling second; ``ESS/s end-to-end`` divides by the whole wall time instead;
- ``evals / iteration``: model evaluations per chain and iteration (NUTS: leapfrog steps after warm-up,
  each a value and gradient; the other kernels: torch rows through the bridge over the whole run, values
  only, so known for torch models only);
- with ``--summary``, one row per model and kernel over the seeds: median ESS/s, the worst R-hat, and the
  error of the posterior means (in posterior standard deviations) and standard deviations against a
  reference, the exact posterior for ``line`` and the NUTS draws pooled over the seeds otherwise.

    python scripts/benchmarks/bench_calibration.py --markdown BENCHMARKS.md
    python scripts/benchmarks/bench_calibration.py --models line mri-t2 layered-earth --languages jax \\
        --kernels nuts ess aies --seeds 0 1 2 --summary --json data/benchmarks/calibration_kernels.json \\
        --markdown docs/calibration.md

Run from the repository root by path; it imports its siblings in ``scripts/benchmarks/`` by name.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import jax.monitoring
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import torch
from report import machine_line, publish, script_command

from inverse.calibration import TorchModel, calibrate
from inverse.calibration.model import CalibrationModel
from inverse.calibration.models import HeatEquation1D, LayeredEarth, T2Relaxation

KERNELS = ("nuts", "ess", "aies")
LABELS = {"nuts": "NUTS", "ess": "ensemble slice (ESS)", "aies": "affine-invariant ensemble (AIES)"}
DEFAULT_BUDGETS = {"nuts": (500, 1000), "ess": (500, 1000), "aies": (2000, 4000)}


class Line(CalibrationModel):
    """``y = a + b t`` at 20 times in [0, 1], priors N(0, 2^2), noise 0.3: a conjugate Gaussian posterior."""

    name, parameters, obs_dims, sigma_scale = "line", ("a", "b"), ("time",), 0.3
    times = np.linspace(0.0, 1.0, 20)

    def predict(self, theta):
        return theta["a"] + theta["b"] * jnp.asarray(self.times)

    def default_priors(self):
        return {"a": dist.Normal(0.0, 2.0), "b": dist.Normal(0.0, 2.0)}

    def default_truth(self):
        return {"a": 0.5, "b": -1.2}

    def coords(self):
        return {"time": self.times}

    def config(self):
        return {}

    def exact_posterior(self, y) -> dict:
        """Posterior mean and standard deviation of ``a`` and ``b`` (conjugate Gaussian)."""
        X = np.stack([np.ones_like(self.times), self.times], 1)
        cov = np.linalg.inv(X.T @ X / self.sigma_scale**2 + np.eye(2) / 2.0**2)
        mean = cov @ X.T @ y / self.sigma_scale**2
        return {k: (float(mean[i]), float(np.sqrt(cov[i, i]))) for i, k in enumerate(self.parameters)}


MODELS = {"line": Line, "heat": HeatEquation1D, "mri-t2": T2Relaxation, "layered-earth": LayeredEarth}


class CompileClock:
    """Total time covered by JAX tracing, lowering and compilation spans (nested spans counted once)."""

    EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
              "/jax/core/compile/backend_compile_duration")

    def __init__(self):
        self.spans: list[tuple[float, float]] = []
        jax.monitoring.register_event_time_span_listener(self)

    def __call__(self, event, start, end, **_):
        if event in self.EVENTS:
            self.spans.append((start, end))

    def total(self) -> float:
        """Length of the union of the recorded spans; the list is emptied."""
        total, reach = 0.0, float("-inf")
        for start, end in sorted(self.spans):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        self.spans = []
        return total


def bench(name: str, language: str, kernel: str, warmup: int, samples: int, seed: int, clock: CompileClock) -> dict:
    jax_model = MODELS[name]()
    y = jax_model.simulate(jax_model.default_truth(), jax_model.sigma_scale, seed=1)
    model = jax_model
    if language == "torch":
        model = TorchModel(jax_model.torch_model(), jax_model.parameters, priors=jax_model.default_priors(),
                           name=f"{name} (torch)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clock.total()
        t0 = time.perf_counter()
        idata = calibrate(model, y, sigma=jax_model.sigma_scale, kernel=kernel, num_warmup=warmup,
                          num_samples=samples, seed=seed)
        wall = time.perf_counter() - t0
        compile_s = clock.total()
    attrs = idata.posterior.attrs
    chains = int(attrs["num_chains"])
    if kernel == "nuts":
        evals = float(idata.sample_stats["n_steps"].mean())
    elif attrs.get("torch_evaluations") is not None:
        evals = attrs["torch_evaluations"] / (chains * (warmup + samples))
    else:
        evals = float("nan")
    sampling = wall - compile_s
    row = {"model": name, "language": language, "kernel": kernel, "sampler": attrs["sampler"], "seed": seed,
           "warmup": warmup, "samples": samples, "chains": chains, "min_ess_bulk": attrs["min_ess_bulk"],
           "max_rhat": attrs["max_rhat"], "divergences": int(attrs.get("divergences", 0)), "wall_s": wall,
           "compile_s": compile_s, "sampling_s": sampling, "ess_per_s": attrs["min_ess_bulk"] / sampling,
           "ess_per_s_end_to_end": attrs["min_ess_bulk"] / wall, "evals_per_iteration": evals,
           "torch_evaluations": attrs.get("torch_evaluations"), "init": attrs.get("init", "prior median"),
           "posterior_mean": {k: float(idata.posterior[k].mean()) for k in jax_model.parameters},
           "posterior_sd": {k: float(idata.posterior[k].std()) for k in jax_model.parameters}}
    if name == "line":
        row["exact"] = jax_model.exact_posterior(y)
    print(json.dumps(row), flush=True)
    return row


def _reference(rows, model: str) -> dict | None:
    """Exact posterior (``line``), else the NUTS rows of ``model`` pooled: parameter -> (mean, sd)."""
    mine = [r for r in rows if r["model"] == model]
    if "exact" in mine[0]:
        return mine[0]["exact"]
    nuts = [r for r in mine if r["kernel"] == "nuts"]
    if not nuts:
        return None
    ref = {}
    for k in nuts[0]["posterior_mean"]:
        m = float(np.mean([r["posterior_mean"][k] for r in nuts]))
        second = float(np.mean([r["posterior_sd"][k] ** 2 + r["posterior_mean"][k] ** 2 for r in nuts]))
        ref[k] = (m, float(np.sqrt(second - m * m)))
    return ref


def _errors(row, ref) -> tuple[float, float]:
    """Largest |mean - reference mean| / reference sd and |sd / reference sd - 1| over the parameters."""
    if ref is None:
        return float("nan"), float("nan")
    mean_err = max(abs(row["posterior_mean"][k] - m) / s for k, (m, s) in ref.items())
    sd_err = max(abs(row["posterior_sd"][k] / s - 1.0) for k, (_, s) in ref.items())
    return mean_err, sd_err


def _evals(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:.1f}"


def to_markdown(rows, command: str, threads: int, seeds) -> str:
    lines = [f"Command: `{command}`", "",
             machine_line(threads, "JAX float64 on CPU, vectorised chains, data seed 1", seeds=seeds), "",
             "| model | written in | kernel | chains x (warm-up + kept) | min bulk ESS | max R-hat | evals / iteration "
             "| sampling (s) | compile (s) | ESS/s | ESS/s end-to-end |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['language']}{' (bridge)' if r['language'] == 'torch' else ''} | "
                     f"{LABELS.get(r['kernel'], r['kernel'])} | {r['chains']} x ({r['warmup']} + {r['samples']}) | "
                     f"{r['min_ess_bulk']:.0f} | {r['max_rhat']:.3f} | {_evals(r['evals_per_iteration'])} | "
                     f"{r['sampling_s']:.1f} | {r['compile_s']:.1f} | {r['ess_per_s']:.0f} | "
                     f"{r['ess_per_s_end_to_end']:.0f} |")
    return "\n".join(lines)


def to_summary(rows, command: str, threads: int, seeds) -> str:
    """One row per (model, language, kernel) over the seeds (module docstring)."""
    lines = [f"Command: `{command}`", "",
             machine_line(threads, "JAX float64 on CPU, vectorised chains, data seed 1", seeds=seeds), "",
             "| model | written in | kernel | chains x (warm-up + kept) | evals / iteration | min bulk ESS (median) "
             "| ESS/s (median) | worst R-hat | worst mean error (sd) | worst sd error | reference |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["model"], r["language"], r["kernel"]), []).append(r)
    for (model, language, kernel), rs in groups.items():
        ref = _reference(rows, model)
        errs = [_errors(r, ref) for r in rs]
        what = "exact" if "exact" in rs[0] else ("NUTS, pooled (incl. these rows)" if kernel == "nuts" else "NUTS")
        r0 = rs[0]
        lines.append(f"| {model} | {language} | {LABELS.get(kernel, kernel)} | "
                     f"{r0['chains']} x ({r0['warmup']} + {r0['samples']}) | "
                     f"{_evals(statistics.median(r['evals_per_iteration'] for r in rs))} | "
                     f"{statistics.median(r['min_ess_bulk'] for r in rs):.0f} | "
                     f"{statistics.median(r['ess_per_s'] for r in rs):.0f} | {max(r['max_rhat'] for r in rs):.3f} | "
                     f"{max(e[0] for e in errs):.3f} | {max(e[1] for e in errs):.3f} | {what} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["heat", "mri-t2", "layered-earth"], choices=list(MODELS))
    p.add_argument("--languages", nargs="+", default=["jax", "torch"], choices=["jax", "torch"],
                   help="torch: the model's torch twin through the bridge, where it has one")
    p.add_argument("--kernels", nargs="+", default=["nuts", "ess"], choices=list(KERNELS))
    for k, (w, s) in DEFAULT_BUDGETS.items():
        p.add_argument(f"--{k}", type=int, nargs=2, default=[w, s], metavar=("WARMUP", "SAMPLES"),
                       help=f"{LABELS[k]}: warm-up and kept draws per chain (default {w} {s})")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--summary", action="store_true", help="one row per model and kernel over the seeds")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="data/benchmarks/calibration.json")
    p.add_argument("--markdown", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    clock = CompileClock()
    rows = []
    for name in args.models:
        for language in args.languages:
            if language == "torch" and not hasattr(MODELS[name], "torch_model"):
                continue
            for kernel in args.kernels:
                for seed in args.seeds:
                    rows.append(bench(name, language, kernel, *getattr(args, kernel), seed, clock))
    command = script_command("bench_calibration", argv)
    if args.summary:
        publish(rows, to_summary(rows, command, args.threads, args.seeds), json_path=args.json,
                markdown=args.markdown, key="calibration-kernels", heading="Gradient-free kernels against NUTS")
    else:
        publish(rows, to_markdown(rows, command, args.threads, args.seeds), json_path=args.json,
                markdown=args.markdown, key="calibration-table",
                heading="Calibration: NUTS and ensemble slice sampling, JAX and the torch bridge")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
