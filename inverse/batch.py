"""Batch reconstruction: one posterior per measurement file, spread over processes and nodes by Lightning.

``reconstruct_batch(measurements, out_dir, ...)`` takes a directory of measurement files (written by
``inverse simulate``) or a list of them, and writes ``OUT_DIR/<stem>-posterior.nc`` for each. The work
list is a :class:`MeasurementFiles` dataset; :class:`BatchReconstruction` is a ``LightningModule``
whose ``predict_step`` reconstructs one file (:func:`inverse.reconstruction.reconstruct`) and writes its
posterior atomically (:meth:`samplers.Posterior.to_netcdf`); ``pytorch_lightning.Trainer.predict``
runs it with any ``accelerator`` / ``devices`` / ``num_nodes`` / ``strategy`` (``"ddp"``: one process
per device, each given a disjoint share of the files by Lightning's unrepeated distributed sampler).

- **Restarts skip finished work**: a file whose posterior exists is skipped (unless ``overwrite``);
  outputs appear only complete (temporary file, then rename), so a job killed at any moment and started
  again redoes only the measurements without a posterior.
- **Results do not depend on the number of processes**: measurement ``stem`` is sampled with the seed
  :func:`measurement_seed` ``(seed, stem)``, whatever process draws it; the seed used is recorded in
  the posterior's ``config["batch"]``. On the CPU with the same thread count, 1 and 2 processes write
  identical posteriors (``tests/scaling/test_batch.py``).

A multi-measurement NetCDF (a leading ``measurement`` dimension) is not read: split it into one file per
measurement (``inverse simulate`` writes one per call).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from inverse.errors import UserError

__all__ = ["MeasurementFiles", "BatchReconstruction", "reconstruct_batch", "measurement_seed", "output_path",
           "MAX_DEVICES", "MAX_NODES"]

_SUFFIX = "-posterior.nc"
#: most processes per node and most nodes a batch accepts
MAX_DEVICES, MAX_NODES = 1024, 100_000
#: environment variables of the launchers that start one process per node (torchrun, SLURM, LSF, MPI)
_CLUSTER_VARIABLES = ("MASTER_ADDR", "NODE_RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "LSB_JOBID",
                      "OMPI_COMM_WORLD_SIZE")


def measurement_seed(seed: int, stem: str) -> int:
    """The sampler seed of measurement ``stem`` in a batch run with base ``seed`` (a 31-bit hash of both).

    It depends on the file's name only, not on its position in the list or on the process that draws it,
    so adding files, or changing the number of processes, leaves every other result unchanged.
    """
    digest = hashlib.blake2b(f"{int(seed)}/{stem}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**31 - 1)


def output_path(out_dir, stem: str) -> Path:
    """``OUT_DIR/<stem>-posterior.nc``: where the posterior of measurement ``stem`` goes."""
    return Path(out_dir) / f"{stem}{_SUFFIX}"


class MeasurementFiles(Dataset):
    """The measurement files of a batch run, in name order; item ``i`` is ``{"index", "path", "stem"}``.

    ``source``: a directory (every ``*.nc`` in it except hidden files and ``*-posterior.nc``) or a list of
    files. Stems must be unique (they name the outputs).
    """

    def __init__(self, source):
        if isinstance(source, (str, Path)):
            d = Path(source)
            if not d.exists():
                raise FileNotFoundError(f"measurement directory {d} does not exist")
            if not d.is_dir():
                raise NotADirectoryError(f"{d} is not a directory (pass a list of files, or a directory)")
            paths = [p for p in d.glob("*.nc") if not p.name.startswith(".") and not p.name.endswith(_SUFFIX)]
        else:
            paths = [Path(p) for p in source]
            for p in paths:
                if not p.is_file():
                    raise FileNotFoundError(f"measurement file {p} does not exist")
        paths = sorted(paths, key=lambda p: (p.stem, str(p)))
        if not paths:
            raise UserError(f"no measurement files (*.nc) in {source}")
        stems = [p.stem for p in paths]
        dup = sorted({s for s in stems if stems.count(s) > 1})
        if dup:
            raise UserError(f"measurement files share the names {dup}: their posteriors would collide")
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        return {"index": int(i), "path": str(self.paths[i]), "stem": self.paths[i].stem}


def _single(items: list) -> dict:
    """Collate function of batches of one item (a module-level function: picklable for spawned workers)."""
    return items[0]


class BatchReconstruction(pl.LightningModule):
    """``predict_step`` = reconstruct one measurement file and write its posterior (module docstring).

    Parameters are those of :func:`inverse.reconstruction.reconstruct` (``prior``, ``sampler``,
    ``num_samples``, ``steps``, ``sampler_options``), the output directory, the base ``seed`` and
    ``overwrite``. Each step returns ``{"stem", "status": "done" | "skipped" | "failed", "seconds", ...}``.
    A named prior is loaded once per process and device; a measurement whose sampler fails is reported
    (``"failed"``, with the message) and the others go on.

    Example::

        import pytorch_lightning as pl
        from torch.utils.data import DataLoader
        from inverse.batch import BatchReconstruction, MeasurementFiles
        files = MeasurementFiles("measurements/")
        module = BatchReconstruction("posteriors/", prior="gaussian", num_samples=4, steps=10)
        pl.Trainer(accelerator="cpu", devices=1, logger=False).predict(
            module, DataLoader(files, batch_size=None))
    """

    def __init__(self, out_dir, prior=None, sampler: str | None = None, *, num_samples: int = 8, seed: int = 0,
                 steps: int | None = None, sampler_options: dict | None = None, overwrite: bool = False):
        super().__init__()
        if int(num_samples) < 1:
            raise UserError(f"num_samples must be at least 1, got {num_samples}")
        self.out_dir = Path(out_dir)
        self.prior, self.sampler, self.num_samples = prior, sampler, int(num_samples)
        self.seed, self.steps, self.sampler_options = int(seed), steps, dict(sampler_options or {})
        self.overwrite = bool(overwrite)
        self._priors = {}

    def _prior_for(self, m, device):
        """The prior object for measurement ``m`` (cached), or the ``gaussian[:STD]`` name (built per measurement)."""
        from inverse.problems import get_problem
        from priors import load_prior
        from priors.base import Prior

        if isinstance(self.prior, Prior):
            return self.prior.to(device) if hasattr(self.prior, "to") else self.prior
        name = self.prior or get_problem(m.problem).prior
        if name is None or str(name) == "gaussian" or str(name).startswith("gaussian:"):
            return self.prior  # reconstruct() builds it (it depends on the measurement) or explains the error
        if name not in self._priors:
            self._priors[name] = load_prior(name, device=device)
        return self._priors[name]

    def predict_step(self, item: dict, batch_idx: int = 0) -> dict:
        """Reconstruct ``item["path"]`` unless its posterior exists; write it atomically."""
        from inverse.measurements import open_measurements
        from inverse.reconstruction import reconstruct
        from samplers.errors import SamplerError

        stem, out = item["stem"], output_path(self.out_dir, item["stem"])
        if out.exists() and not self.overwrite:
            return {"stem": stem, "status": "skipped", "seconds": 0.0}
        t0 = time.perf_counter()
        device = self.device if self.device.type != "cpu" else None
        seed = measurement_seed(self.seed, stem)
        try:
            m = open_measurements(item["path"])
            with torch.enable_grad():  # Trainer.predict runs under no_grad; guided samplers differentiate
                post = reconstruct(m, self._prior_for(m, device), self.sampler, num_samples=self.num_samples,
                                   seed=seed, steps=self.steps, sampler_options=self.sampler_options,
                                   device=device)
        except (SamplerError, ValueError) as e:
            print(f"inverse reconstruct-batch: {item['path']}: {e}", file=sys.stderr)
            return {"stem": stem, "status": "failed", "error": str(e), "seconds": time.perf_counter() - t0}
        post.config["batch"] = {"measurement": item["path"], "base_seed": self.seed, "seed": seed}
        post.to_netcdf(out, overwrite=True)  # atomic: a partial file never appears under the final name
        return {"stem": stem, "status": "done", "seconds": time.perf_counter() - t0, "rank": self.global_rank}


def reconstruct_batch(measurements, out_dir, prior=None, sampler: str | None = None, *, num_samples: int = 8,
                      seed: int = 0, steps: int | None = None, sampler_options: dict | None = None,
                      overwrite: bool = False, accelerator: str = "cpu", devices=1, num_nodes: int = 1,
                      strategy: str = "auto", progress: bool = False) -> dict:
    """Posterior of every measurement in ``measurements`` (a directory or a list of files), one file each.

    Runs ``Trainer(accelerator, devices, num_nodes, strategy).predict`` over :class:`MeasurementFiles`
    with :class:`BatchReconstruction` (module docstring). Every process returns ``{"outputs": [paths of
    all posteriors, in file order], "results": [this process's step results], "totals": {status: count
    over all processes}, "processes": N, "rank": r, "missing": [files without a posterior at the end]}``;
    ``missing`` is complete on rank 0 only after the final barrier.

    Every argument (sampler and its settings, prior name, seed, sample count, Lightning's accelerator,
    devices, nodes and strategy) and every measurement file (read and its forward model rebuilt) is checked
    before the output directory is created or any process starts; a bad one raises a one-line user error
    (:mod:`inverse.errors`).

    Example::

        from inverse.batch import reconstruct_batch
        from inverse.measurements import simulate
        for i in range(3):
            simulate("ct", options={"size": 16, "angles": 8}, seed=i).to_netcdf(f"ys/y{i}.nc")
        reconstruct_batch("ys", "posteriors", prior="gaussian", num_samples=4, steps=10)
    """
    from inverse.validation import check_seed

    files = MeasurementFiles(measurements)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--out-dir {out_dir} exists and is not a directory")
    seed = check_seed(seed)
    _check_settings(sampler, steps, sampler_options)
    _check_prior(prior)
    _check_files(num_samples, files)
    module = BatchReconstruction(out_dir, prior, sampler, num_samples=num_samples, seed=seed, steps=steps,
                                 sampler_options=sampler_options, overwrite=overwrite)
    trainer = _trainer(accelerator, devices, num_nodes, strategy, progress)
    out_dir.mkdir(parents=True, exist_ok=True)  # only once every argument has been checked
    loader = DataLoader(files, batch_size=1, shuffle=False, collate_fn=_single, num_workers=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*")  # Lightning's own deprecation, not the user's
        results = list(trainer.predict(module, loader, return_predictions=True) or [])
    trainer.strategy.barrier()  # every rank has written its share before rank 0 looks
    every, processes = _gather(results)
    totals: dict[str, int] = {}
    for r in every:
        totals[r["status"]] = totals.get(r["status"], 0) + 1
    outputs = [output_path(out_dir, p.stem) for p in files.paths]
    return {"outputs": outputs, "results": results, "rank": int(trainer.global_rank), "totals": totals,
            "processes": processes,
            "missing": [str(p) for p, o in zip(files.paths, outputs, strict=False) if not o.exists()]}


def _gather(results: list) -> tuple[list, int]:
    """Every process's step results (in rank order) and the number of processes."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return results, 1
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, results)
    return [r for part in parts for r in (part or [])], len(parts)


def _check_settings(sampler: str | None, steps, sampler_options: dict | None) -> None:
    """The sampler name, ``steps`` and ``sampler_options`` as :func:`inverse.reconstruct` will take them.

    Without a sampler name each problem gets its default sampler: the settings must suit one of those.
    """
    from inverse.reconstruction import DEFAULT_SAMPLER, sampler_for

    if sampler is not None:
        sampler_for(sampler, "*", steps, sampler_options)
        return
    first = None
    for name in ["dps"] + sorted(set(DEFAULT_SAMPLER.values()) - {"dps"}):
        try:
            sampler_for(name, "*", steps, sampler_options)
            return
        except ValueError as e:
            first = first or e
    raise first


def _check_prior(prior) -> None:
    """A prior name that no measurement could load fails here, before any process starts."""
    from priors.base import Prior

    if prior is None or isinstance(prior, Prior):
        return
    name = str(prior)
    if name == "gaussian" or name.startswith("gaussian:"):
        if ":" in name:
            try:
                std = float(name.split(":", 1)[1])
            except ValueError:
                raise UserError(f"--prior {name!r}: the standard deviation after ':' must be a number") from None
            if not (std > 0 and std < float("inf")):
                raise UserError(f"--prior {name!r}: the standard deviation must be positive and finite")
        return
    from priors import load_prior, shipped_priors

    if name in shipped_priors():
        return
    load_prior(name)  # a directory or a cached hub id loads; anything else is a one-line PriorLoadError


def _check_files(num_samples, files: MeasurementFiles) -> None:
    """``num_samples`` as a positive integer, every measurement file readable (its forward model rebuilt from
    the file) and the samples of each within memory: a bad file is refused before any output exists."""
    from inverse.measurements import open_measurements
    from inverse.reconstruction import check_num_samples
    from samplers.validation import positive_int

    try:
        positive_int(num_samples, "--num-samples")
    except ValueError as e:
        raise UserError(str(e)) from None
    for path in files.paths:
        m = open_measurements(path)
        check_num_samples(num_samples, m.forward_model)


def _trainer(accelerator: str, devices, num_nodes: int, strategy: str, progress: bool) -> pl.Trainer:
    """The Lightning trainer of the batch; arguments it refuses are a one-line user error."""
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    if isinstance(devices, str) and devices.lstrip("-").isdigit():
        devices = int(devices)
    if isinstance(devices, bool) or (isinstance(devices, int) and not (1 <= devices <= MAX_DEVICES or devices == -1)):
        raise UserError(f"--devices must be a number of processes in 1..{MAX_DEVICES}, -1 or auto, got {devices}")
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or not 1 <= num_nodes <= MAX_NODES:
        raise UserError(f"--num-nodes must be an integer in 1..{MAX_NODES}, got {num_nodes!r}")
    if num_nodes > 1 and not any(v in os.environ for v in _CLUSTER_VARIABLES):
        raise UserError(f"--num-nodes {num_nodes} needs a cluster launcher (srun, torchrun, or MASTER_ADDR and "
                        "NODE_RANK set on every node); without one the run would wait for the other nodes forever. "
                        "On one machine use --devices N")
    flags = f"--accelerator {accelerator!r} --devices {devices!r} --strategy {strategy!r} --num-nodes {num_nodes}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pl.Trainer(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
                              logger=False, enable_checkpointing=False, enable_progress_bar=progress,
                              enable_model_summary=False, inference_mode=False)
    except (MisconfigurationException, ValueError, TypeError, RuntimeError, ImportError) as e:  # tpu: no torch_xla
        why = " ".join(str(e).split()) or type(e).__name__  # one line, whatever the value held
        raise UserError(f"Lightning refuses {flags}: {why}") from None
