"""Independent MCMC chains and calibration runs as Ray tasks (a local Ray cluster or an existing one).

Independent work (chains started from different points with different seeds, calibrations of many
data sets) needs no communication, so each unit is one task of an existing engine, Ray (Moritz et al.
2018, "Ray: a distributed framework for emerging AI applications", OSDI): ``ray.remote`` tasks, their
results collected with ``ray.get`` in submission order. ``backend="serial"`` runs the same tasks one after
another in this process, with the same arguments, so both backends return identical results (every
task seeds its own generator; nothing is shared).

- :func:`run_chains_parallel`: chain ``i`` is ``sample_chains(kernel, u0[i:i+1], ..., seed=seeds[i])``,
  merged into one :class:`~samplers.mcmc.ChainResult` (chains stacked; ESS / R-hat over all of them).
- :func:`calibrate_parallel`: one :func:`inverse.calibration.calibrate` call per job (a dict of its
  arguments), returning the ``InferenceData`` of each.

``address``: ``None`` starts (or reuses) a local Ray instance with ``num_cpus`` CPUs; ``"auto"`` or
``"ray://host:10001"`` joins an existing cluster (``ray start --head`` on a node, ``ray start
--address=HEAD:6379`` on the others). Ray is an optional dependency (``pip install 'inverse-diffusion[ray]'``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from inverse.errors import UserError
from samplers.mcmc import ChainResult, merge_chains, sample_chains

__all__ = ["BACKENDS", "map_tasks", "run_chains_parallel", "calibrate_parallel", "merge_chain_results",
           "calibrate_chains_parallel"]

BACKENDS = ("serial", "ray")


def _ray(address: str | None, num_cpus: int | None):
    """The ``ray`` module, initialised: an existing connection, the cluster at ``address``, or a local one."""
    try:
        import ray
    except ImportError:
        raise UserError("backend 'ray' needs Ray: pip install 'inverse-diffusion[ray]' (or pip install ray)") from None
    if not ray.is_initialized():
        kwargs = {"num_cpus": num_cpus} if address is None else {}
        ray.init(address=address, include_dashboard=False, log_to_driver=False, **kwargs)
    return ray


def map_tasks(fn: Callable, jobs: Sequence[dict], *, backend: str = "serial", address: str | None = None,
              num_cpus: int | None = None, cpus_per_task: float = 1) -> list:
    """``[fn(**job) for job in jobs]``, as Ray tasks (``backend="ray"``) or in this process (``"serial"``).

    ``fn`` and the jobs are pickled (cloudpickle) to the workers; results come back in job order.

    Example::

        from inverse.parallel import map_tasks
        map_tasks(pow, [{"base": 2, "exp": k} for k in range(4)], backend="serial")  # [1, 2, 4, 8]
    """
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    jobs = list(jobs)
    if backend == "serial":
        return [fn(**job) for job in jobs]
    ray = _ray(address, num_cpus)
    remote = ray.remote(num_cpus=cpus_per_task)(_call)
    return ray.get([remote.remote(fn, job) for job in jobs])


def _call(fn: Callable, job: dict):
    torch.set_num_threads(1)  # one task per CPU: threads would oversubscribe the node
    return fn(**job)


def merge_chain_results(results: Sequence[ChainResult]) -> ChainResult:
    """One :class:`ChainResult` of independently run chains: draws stacked along the chain axis, counters
    summed, wall time the longest task's; ``config["betas"]`` keeps each run's final pCN step size."""
    if not results:
        raise UserError("no chain results to merge")
    T = {r.draws.shape[1] for r in results}
    if len(T) != 1:
        raise UserError(f"the runs kept different numbers of draws {sorted(T)}; they cannot be stacked")
    return merge_chains(results)


def run_chains_parallel(kernel, u0: torch.Tensor, num_iterations: int, *, seeds: Sequence[int],
                        backend: str = "serial", address: str | None = None, num_cpus: int | None = None,
                        checkpoint=None, **kwargs) -> ChainResult:
    """Run chain ``i`` from ``u0[i]`` with seed ``seeds[i]`` as its own task; merge (module docstring).

    ``kwargs`` go to :func:`samplers.mcmc.sample_chains` (``warmup``, ``thin``, ``target_acceptance``,
    ``adapt_every``, ``checkpoint_every``); ``checkpoint`` a path ``P`` gives chain ``i`` the checkpoint
    ``P.stem-chain{i}P.suffix`` beside it (each chain resumes on its own). The result is wall-clock
    time of the slowest chain and the same draws whatever the backend.

    Example::

        import torch
        from forward_models import Gaussian, InverseProblem, MatrixOperator
        from priors.function_space import StandardGaussian
        from samplers.mcmc import PCN, Potential
        from inverse.parallel import run_chains_parallel
        problem = InverseProblem.simulate(MatrixOperator(torch.eye(2, dtype=torch.float64)), Gaussian(0.5),
                                          torch.ones(2, dtype=torch.float64), seed=0)
        kernel = PCN(Potential(problem), StandardGaussian(2), beta=0.5)
        result = run_chains_parallel(kernel, torch.zeros(4, 2), 500, seeds=[0, 1, 2, 3], backend="serial")
    """
    u0 = torch.as_tensor(u0, dtype=torch.float64)
    seeds = [int(s) for s in seeds]
    if u0.ndim != 2 or len(u0) != len(seeds):
        raise UserError(f"u0 must have shape (chains, d) with one row per seed; got {tuple(u0.shape)} and "
                        f"{len(seeds)} seeds")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"the chains' seeds must differ, got {seeds}")
    if "callback" in kwargs or "generator" in kwargs:
        raise UserError("run_chains_parallel: callback and generator cannot travel to other processes; "
                        "each chain seeds its own generator from seeds[i]")
    paths = [None] * len(seeds)
    if checkpoint is not None:
        c = Path(checkpoint)
        paths = [c.with_name(f"{c.stem}-chain{i}{c.suffix}") for i in range(len(seeds))]
    jobs = [{"kernel": kernel, "u0": u0[i:i + 1], "num_iterations": int(num_iterations), "seed": s,
             "checkpoint": p, **kwargs} for i, (s, p) in enumerate(zip(seeds, paths, strict=False))]
    t0 = time.perf_counter()
    merged = merge_chain_results(map_tasks(sample_chains, jobs, backend=backend, address=address, num_cpus=num_cpus))
    merged.config["backend"] = backend
    merged.config["elapsed_s"] = time.perf_counter() - t0
    return merged


def _calibrate(**job):
    from inverse.calibration import calibrate

    return calibrate(**job)


def calibrate_parallel(jobs: Sequence[dict], *, backend: str = "serial", address: str | None = None,
                       num_cpus: int | None = None) -> list:
    """``[calibrate(**job) for job in jobs]`` as Ray tasks: many data sets, seeds or priors at once.

    Each job holds :func:`inverse.calibration.calibrate`'s arguments (``model``, ``data``, ``priors``,
    ``sigma``, ``num_chains``, ``seed``, ...); a job without a ``seed`` gets its index. Returns the
    ``InferenceData`` of each job, in order; each is the same as a serial run's.

    Example::

        from inverse.calibration.models import T2Relaxation
        from inverse.parallel import calibrate_parallel
        m = T2Relaxation()
        jobs = [{"model": m, "data": m.simulate(m.default_truth(), 0.02, seed=s), "sigma": 0.02,
                 "num_chains": 2, "num_warmup": 200, "num_samples": 200, "seed": s} for s in range(4)]
        posteriors = calibrate_parallel(jobs, backend="ray")
    """
    jobs = [{"seed": i, **dict(job)} for i, job in enumerate(jobs)]
    for job in jobs:
        if "model" not in job or "data" not in job:
            raise UserError("every calibration job needs 'model' and 'data'")
    return map_tasks(_calibrate, jobs, backend=backend, address=address, num_cpus=num_cpus)


def calibrate_chains_parallel(model, data, priors=None, *, num_chains: int = 4, seed: int = 0,
                              backend: str = "ray", address: str | None = None, num_cpus: int | None = None,
                              **kwargs):
    """One NUTS calibration as ``num_chains`` single-chain Ray tasks, merged along ``chain``.

    Chain ``i`` is ``calibrate(model, data, priors, num_chains=1, seed=seed + i, **kwargs)``, so the
    result does not depend on how many workers run it (``backend="serial"`` gives the same draws in
    this process). The merged ``InferenceData`` carries the first chain's attributes with
    ``num_chains``, the per-chain ``seeds``, the summed wall time and the divergences, largest R-hat
    and smallest bulk ESS recomputed over all chains (:func:`inverse.calibration.core.diagnostics_attrs`).
    Warm-up adapts per chain (as NumPyro's own chains do).
    """
    import arviz as az

    from inverse.calibration.core import diagnostics_attrs

    if int(num_chains) < 1:
        raise UserError(f"num_chains must be at least 1, got {num_chains}")
    jobs = [{"model": model, "data": data, "priors": priors, "num_chains": 1, "seed": int(seed) + i, **kwargs}
            for i in range(int(num_chains))]
    parts = calibrate_parallel(jobs, backend=backend, address=address, num_cpus=num_cpus)
    merged = az.concat(parts, dim="chain") if len(parts) > 1 else parts[0]
    attrs = dict(parts[0].posterior.attrs)
    names = [v for v in merged.posterior.data_vars]
    wall = float(sum(p.posterior.attrs.get("wall_time_s", 0.0) for p in parts))
    attrs.update({"num_chains": int(num_chains), "seed": int(seed),
                  "seeds": [int(seed) + i for i in range(int(num_chains))], "backend": backend, "wall_time_s": wall,
                  **diagnostics_attrs(merged, names)})
    merged.posterior.attrs.clear()
    merged.posterior.attrs.update(attrs)
    return merged
