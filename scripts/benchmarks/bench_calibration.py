"""ESS per second of calibration: NUTS on a JAX model, NUTS through the torch bridge, random-walk Metropolis.

The heat-equation and MRI T2 models of ``inverse.calibration.models`` are written twice, in JAX and
as a torch ForwardModel (same posterior): the torch twin runs through the bridge. The layered-earth
model (6 parameters, JAX only) shows NUTS against random-walk Metropolis beyond two dimensions. For
each model and sampler: 4 vectorised chains, known noise, data simulated at the model's default truth
(seed 1), sampler seed 0.

- ``ESS``: the smallest bulk effective sample size over the parameters (ArviZ, rank-normalised);
- ``compile (s)``: the union of JAX's tracing, lowering and XLA-compilation time spans during the run
  (``jax.monitoring`` time-span events); ``sampling (s)``: the rest of the wall time (warm-up, kept
  draws, the Laplace start of torch models, Python overhead);
- ``ESS/s``: ESS per sampling second; ``ESS/s end-to-end`` divides by the whole wall time instead;
- ``evals``: post-warm-up model evaluations (NUTS: leapfrog steps, each a value and gradient; RWM: one
  value per iteration) per chain and iteration.

    python scripts/benchmarks/bench_calibration.py --markdown BENCHMARKS.md

Run from the repository root by path; it imports its siblings in ``scripts/benchmarks/`` by name.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import jax.monitoring
import torch
from report import machine_line, publish, script_command

from inverse.calibration import TorchModel, calibrate, random_walk_metropolis
from inverse.calibration.models import HeatEquation1D, LayeredEarth, T2Relaxation

MODELS = {"heat": HeatEquation1D, "mri-t2": T2Relaxation, "layered-earth": LayeredEarth}


def _run(kind: str, model, y, sigma, warmup: int, samples: int, seed: int):
    if kind == "nuts":
        return calibrate(model, y, sigma=sigma, num_chains=4, num_warmup=warmup, num_samples=samples, seed=seed)
    return random_walk_metropolis(model, y, sigma=sigma, num_chains=4, num_warmup=warmup, num_samples=samples,
                                  seed=seed)


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


def bench(name: str, language: str, kind: str, warmup: int, samples: int, seed: int, clock: CompileClock) -> dict:
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
        idata = _run(kind, model, y, jax_model.sigma_scale, warmup, samples, seed)
        wall = time.perf_counter() - t0
        compile_s = clock.total()
    attrs = idata.posterior.attrs
    evals = float(idata.sample_stats["n_steps"].mean()) if kind == "nuts" else 1.0
    sampling = wall - compile_s
    row = {"model": name, "language": language, "sampler": "NUTS" if kind == "nuts" else "random-walk Metropolis",
           "warmup": warmup, "samples": samples, "chains": 4, "min_ess_bulk": attrs["min_ess_bulk"],
           "max_rhat": attrs["max_rhat"], "divergences": int(attrs.get("divergences", 0)), "wall_s": wall,
           "compile_s": compile_s, "sampling_s": sampling, "ess_per_s": attrs["min_ess_bulk"] / sampling,
           "ess_per_s_end_to_end": attrs["min_ess_bulk"] / wall, "evals_per_iteration": evals,
           "torch_evaluations": attrs.get("torch_evaluations"), "init": attrs.get("init", "prior median"),
           "posterior_mean": {k: float(idata.posterior[k].mean()) for k in jax_model.parameters}}
    print(json.dumps(row), flush=True)
    return row


def to_markdown(rows, command: str, threads: int, seed: int) -> str:
    lines = [f"Command: `{command}`", "",
             machine_line(threads, "JAX float64 on CPU, 4 vectorised chains, data seed 1", seeds=seed), "",
             "| model | written in | sampler | warm-up + kept / chain | min bulk ESS | max R-hat | evals / iteration "
             "| sampling (s) | compile (s) | ESS/s | ESS/s end-to-end |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['language']}{' (bridge)' if r['language'] == 'torch' else ''} | "
                     f"{r['sampler']} | {r['warmup']} + {r['samples']} | {r['min_ess_bulk']:.0f} | "
                     f"{r['max_rhat']:.3f} | "
                     f"{r['evals_per_iteration']:.1f} | {r['sampling_s']:.1f} | {r['compile_s']:.1f} | "
                     f"{r['ess_per_s']:.0f} | {r['ess_per_s_end_to_end']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--nuts", type=int, nargs=2, default=[500, 1000], metavar=("WARMUP", "SAMPLES"))
    p.add_argument("--rwm", type=int, nargs=2, default=[2000, 4000], metavar=("WARMUP", "SAMPLES"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="data/benchmarks/calibration.json")
    p.add_argument("--markdown", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    clock = CompileClock()
    rows = []
    for name in args.models:
        for language in ("jax", "torch") if hasattr(MODELS[name], "torch_model") else ("jax",):
            rows.append(bench(name, language, "nuts", *args.nuts, args.seed, clock))
            rows.append(bench(name, language, "rwm", *args.rwm, args.seed, clock))
    table = to_markdown(rows, script_command("bench_calibration", argv), args.threads, args.seed)
    publish(rows, table, json_path=args.json, markdown=args.markdown, key="calibration-table",
            heading="Calibration: NUTS, torch bridge, random-walk Metropolis")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
