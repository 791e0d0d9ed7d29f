"""``inverse train-prior``: train a diffusion (EDM) or flow-matching prior with pytorch-lightning.

    inverse train-prior --dataset phantoms --size 64 --steps 2000 --out data/priors/phantoms-64
    inverse train-prior --data my_images/ --size 64 --units HU --steps 2000 --out my-prior
    inverse train-prior --data stack.npy --init phantoms-64 --steps 500 --out my-finetuned-prior

Writes the prior in diffusers layout with its model card ``prior.json`` (:func:`priors.training.train_prior`).
``--dataset`` trains on one of our generators (:func:`inverse.datasets.cached_dataset`, cached for the next
run). ``--data`` trains on the user's own files (:mod:`priors.user_data`: a folder of PNG / JPEG / TIFF / DICOM
images, ``x.npy``, ``x.h5:DATASET``, ``x.nc:VAR``, ``x.zarr:VAR``), streamed from disk per batch: a seeded
``--val-fraction`` of the items is held out, the normalisation (``--normalise range|std``) is computed from
the training items into the card with the data's statistics, and the card's quality report
(:func:`priors.quality.quality_report`, with the floors of :data:`priors.quality.QUALITY_FLOORS`) compares
unconditional samples and denoising against the held-out items. ``--init NAME|DIR`` fine-tunes an
existing prior. Every argument, the data and the output path are checked before anything is written.
"""

from __future__ import annotations

import argparse
import contextlib
import os

__all__ = ["add_parser", "run"]

#: bounds that keep a typo from becoming an allocation error or a runaway run
_MAX_THREADS = 4096
_MAX_PROCESSES = 100_000
_MAX_SIZE = 4096
_MAX_WIDTH = 8192
_SEED_MAX = 2**32 - 1  # pytorch-lightning's seed_everything range


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``train-prior`` subcommand to an ``argparse`` subparsers object; returns its parser."""
    t = subparsers.add_parser("train-prior",
                              help="train a diffusion (EDM) or flow-matching prior with pytorch-lightning")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="a built-in generator: phantoms, gaussian-field, ns-vorticity, darcy-perm, "
                                       "seismic-velocity")
    src.add_argument("--data", help="your own data: a folder of images (png, jpg, tif, dcm), x.npy (N,H,W) or "
                                    "(N,C,H,W), x.h5:DATASET, x.nc:VARIABLE or x.zarr:VARIABLE")
    t.add_argument("--size", type=int, default=64, help="image size (default 64)")
    t.add_argument("--num-examples", type=int, default=4096,
                   help="training examples generated (--dataset; default 4096)")
    t.add_argument("--patches", type=int, default=0,
                   help="--data: K random size x size crops per item at native resolution (default 0: each item "
                        "is centre-cropped to a square and resized)")
    t.add_argument("--val-fraction", type=float, default=0.1,
                   help="--data: fraction of the items held out for the quality report (seeded; default 0.1)")
    t.add_argument("--normalise", choices=["range", "std"], default="range",
                   help="--data: map [min, max] (range) or mean +- 2 std (std) of the training data to [-1, 1]")
    t.add_argument("--units", default="", help="--data: physical units of the values, for the card")
    t.add_argument("--num-workers", type=int, default=0, help="--data: DataLoader processes reading ahead")
    t.add_argument("--quality-samples", type=int, default=64,
                   help="--data: unconditional samples in the quality report (default 64; 0: no report)")
    t.add_argument("--init", default=None, help="fine-tune this prior (shipped name or directory): its architecture "
                                                "and weights")
    t.add_argument("--kind", choices=["edm", "flow"], default=None,
                   help="EDM denoiser or flow matching (default edm, or the --init prior's kind)")
    t.add_argument("--widths", type=int, nargs="+", default=[32, 64, 64], help="UNet channels per level")
    t.add_argument("--layers-per-block", type=int, default=1)
    t.add_argument("--steps", type=int, default=2000, help="optimiser steps (default 2000)")
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoint-every", type=int, default=200, help="steps between Lightning checkpoints")
    t.add_argument("--out", required=True, help="output prior directory (diffusers layout + prior.json)")
    t.add_argument("--name", default=None, help="name recorded in the model card (default: the directory name)")
    t.add_argument("--resume", action="store_true", help="continue from OUT-work/checkpoints/last.ckpt")
    t.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    t.add_argument("--devices", type=int, default=1, help="Lightning devices (processes) per node")
    t.add_argument("--num-nodes", type=int, default=1)
    t.add_argument("--strategy", default="auto", help="Lightning strategy, e.g. ddp")
    t.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto")
    t.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    t.add_argument("--max-minutes", type=float, default=None,
                   help="stop training after this many minutes of fitting and export what was trained "
                        "(the card records the steps done; default: no limit)")
    t.add_argument("--data-device", default="cpu",
                   help="device that generates the training data where the generator runs on one "
                        "(ns-vorticity: the Navier-Stokes solver), e.g. cuda (default cpu)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--data-cache", default=None,
                   help="cache the generated training data in this .safetensors file and reuse it on the next run "
                        "(--dataset; default: OUT-work/dataset.safetensors; 'none' disables)")
    return t


def _int_in(value, flag: str, low: int, high: int) -> int:
    from inverse.errors import UserError

    if value is None or not low <= int(value) <= high:
        raise UserError(f"{flag} must be an integer in {low}..{high}, got {value}")
    return int(value)


def _check_lightning_names(accelerator: str, strategy: str) -> None:
    """``--accelerator`` and ``--strategy`` among pytorch-lightning's registered names (or ``auto`` / ``gpu``)."""
    from pytorch_lightning.accelerators import AcceleratorRegistry
    from pytorch_lightning.strategies import StrategyRegistry

    from inverse.errors import UserError

    accelerators = sorted({"auto", "gpu", *AcceleratorRegistry.available_accelerators()})
    if accelerator not in accelerators:
        raise UserError(f"--accelerator {accelerator[:40]!r} is not one of {', '.join(accelerators)}")
    strategies = ["auto", *StrategyRegistry.available_strategies()]
    if strategy not in strategies:
        raise UserError(f"--strategy {strategy[:40]!r} is not a Lightning strategy (e.g. auto, ddp, ddp_spawn, fsdp)")
    if accelerator == "auto":
        return
    names = ["cuda", "mps"] if accelerator == "gpu" else [accelerator]
    if not any(_accelerator_usable(n) for n in names):  # e.g. tpu without torch_xla: refused before any data exist
        raise UserError(f"--accelerator {accelerator!r} is not available on this machine (no device, or its "
                        "backend is not installed); use cpu or auto")


def _accelerator_usable(name: str) -> bool:
    """Whether Lightning's accelerator ``name`` finds its backend and a device here."""
    from pytorch_lightning.accelerators import AcceleratorRegistry

    try:
        return bool(AcceleratorRegistry[name]["accelerator"].is_available())
    except (ImportError, RuntimeError, KeyError):
        return False


def _check_data_cache(args) -> None:
    """``--data-cache``: absent (it will be written), or a safetensors file whose metadata name a data set."""
    import json
    from pathlib import Path

    from inverse.errors import UserError

    if args.dataset is None or args.data_cache is None or args.data_cache.lower() == "none":
        return
    if not args.data_cache.strip():
        raise UserError("--data-cache: the file name is empty (use 'none' to disable the cache)")
    cache = Path(args.data_cache)
    if not cache.exists() and not cache.is_symlink():
        return
    if not cache.is_file():
        raise UserError(f"--data-cache {args.data_cache!r} is not a regular file")
    try:
        from safetensors import safe_open

        with safe_open(str(cache), framework="pt") as f:
            meta = f.metadata() or {}
            names = set(f.keys())
        key = json.loads(meta.get("key", "null"))
    except OSError as e:
        raise UserError(f"--data-cache {args.data_cache!r}: cannot be read ({e.strerror or type(e).__name__})") \
            from None
    except Exception as e:  # safetensors' own error types: a truncated or foreign file
        why = " ".join(str(e).split())[:200] or type(e).__name__
        raise UserError(f"--data-cache {args.data_cache!r} is not a data cache written by train-prior ({why})") \
            from None
    if not isinstance(key, dict) or "data" not in names:
        raise UserError(f"--data-cache {args.data_cache!r} is a safetensors file but not a data cache written by "
                        "train-prior: delete it or choose another path")


def _check_arguments(args) -> None:
    """Every numeric setting, the output path and the resume state: one-line :class:`UserError` before any work."""
    import math
    from pathlib import Path

    from inverse.errors import UserError
    from inverse.validation import check_device

    _int_in(args.size, "--size", 8, _MAX_SIZE)
    if args.dataset is not None:
        _int_in(args.num_examples, "--num-examples", 1, 10**8)
    _int_in(args.patches, "--patches", 0, 10**6)
    _int_in(args.num_workers, "--num-workers", 0, 1024)
    _int_in(args.quality_samples, "--quality-samples", 0, 10**5)
    if not args.widths:
        raise UserError("--widths needs at least one level")
    for w in args.widths:
        _int_in(w, "--widths", 1, _MAX_WIDTH)
    _int_in(args.layers_per_block, "--layers-per-block", 1, 64)
    _int_in(args.steps, "--steps", 1, 10**9)
    _int_in(args.batch_size, "--batch-size", 1, 10**6)
    _int_in(args.checkpoint_every, "--checkpoint-every", 1, 10**9)
    _int_in(args.seed, "--seed", 0, _SEED_MAX)
    _int_in(args.devices, "--devices", 1, _MAX_PROCESSES)
    _int_in(args.num_nodes, "--num-nodes", 1, _MAX_PROCESSES)
    if args.threads is not None:
        _int_in(args.threads, "--threads", 1, _MAX_THREADS)
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise UserError(f"--lr must be a finite number > 0, got {args.lr}")
    if args.max_minutes is not None and not (0 < args.max_minutes < math.inf):
        raise UserError(f"--max-minutes must be a positive number, got {args.max_minutes}")
    if not (0 <= args.val_fraction < 1):
        raise UserError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.batch_size % (args.devices * args.num_nodes):
        raise UserError(f"--batch-size {args.batch_size} must be divisible by devices x nodes = "
                        f"{args.devices * args.num_nodes} processes")
    _check_lightning_names(args.accelerator, args.strategy)
    check_device(args.data_device, "--data-device")
    _check_data_cache(args)
    out = Path(args.out)
    if not str(args.out).strip() or out.name in ("", ".", ".."):
        raise UserError(f"--out {args.out!r} must name a new directory")
    limit = os.pathconf(out.parent if out.parent.is_dir() else ".", "PC_NAME_MAX") if hasattr(os, "pathconf") \
        else 255
    if len(os.fsencode(out.name + "-work")) > limit:
        raise UserError(f"--out: the name {out.name[:40]}... is too long ({len(out.name)} characters; its work "
                        f"folder {out.name}-work must fit in {limit} bytes)")
    if out.parent.exists() and not out.parent.is_dir():
        raise UserError(f"--out: {out.parent} is not a directory")
    if args.resume:
        last = out.with_name(out.name + "-work") / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise UserError(f"--resume: no checkpoint at {last}")
    elif out.exists() and not args.overwrite:
        raise UserError(f"{out} already exists (pass --overwrite to replace it)")


#: Lightning's and torch's notices that say nothing about the user's run (restated by the card or irrelevant)
_NOISE = (r".*LeafSpec.*", r"The number of training batches .* is smaller than the logging interval",
          r".*does not have many workers which may be a bottleneck.*")


@contextlib.contextmanager
def _lightning_quiet():
    """Lightning's banner lines ("GPU available", tips, "`Trainer.fit` stopped") and its deprecation notices
    kept off stderr during training; the levels and filters are restored on return (main may run in-process)."""
    import logging
    import warnings

    loggers = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch",
                                              "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in _NOISE:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _user_data(args, seed: int):
    """``(train_dataset, val_tensor, normalisation, card_data)`` from ``--data`` (every file read once here, so an
    unreadable one is named before training)."""
    from priors.user_data import (
        RESIZE_METHOD,
        ExampleDataset,
        data_statistics,
        materialise,
        normalisation_from_stats,
        open_source,
        split_items,
    )

    source = open_source(args.data)
    train_items, val_items = split_items(len(source), args.val_fraction, seed)
    stats = data_statistics(source, train_items)
    norm = normalisation_from_stats(stats, args.normalise, args.units)
    train = ExampleDataset(source, train_items, args.size, norm, patches=args.patches, seed=seed)
    val = None
    if val_items:
        val_ds = ExampleDataset(source, val_items, args.size, norm, patches=args.patches, seed=seed + 1)
        val = materialise(val_ds, max(2 * args.quality_samples, 2))
        for i in val_items:  # the held-out files not taken into the report must be readable too
            source.read(i)
    method = (f"{args.patches} random {args.size}x{args.size} crops per item at native resolution "
              f"(seeded by seed, item, crop)" if args.patches else RESIZE_METHOD)
    desc = source.describe()
    data = {"dataset": "user", "description": f"{desc['kind']} {desc['path']} ({len(source)} items)", "source": desc,
            "num_items": len(source),
            "num_train_items": len(train_items), "num_val_items": len(val_items), "val_fraction": args.val_fraction,
            "split_seed": seed, "num_examples": len(train), "size": args.size, "resize": method,
            "statistics": stats, "normalise": args.normalise, "seed": seed}
    return train, val, norm, data


def _quality(out, val, quality_samples: int, seed: int) -> dict | None:
    """The quality report of the exported prior against the held-out examples, written into its card."""
    import json
    import time
    from pathlib import Path

    from priors import load_prior
    from priors.quality import quality_failures, quality_report
    from samplers.atomic import atomic_output

    n = min(int(quality_samples), len(val) // 2) if val is not None else 0
    if n < 1:
        return None
    prior = load_prior(out)
    t0 = time.time()
    report = quality_report(prior, val, n, seed=seed)
    report.update({"time_s": time.time() - t0, "held_out": "validation split of the training items",
                   "num_val_examples": int(len(val))})
    report["failures"] = quality_failures(report)
    card_path = Path(out) / "prior.json"
    card = json.loads(card_path.read_text())
    card["quality"] = report
    with atomic_output(card_path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(card, indent=2))
    return report


def run(args) -> int:
    """Check everything, read or generate the training data, train, export, report; prints where the prior went."""
    from pathlib import Path

    import torch
    from pytorch_lightning.utilities import rank_zero_only

    from inverse.datasets import DATASETS, DEVICE_GENERATORS, cached_dataset
    from inverse.errors import UserError
    from priors.training import train_prior

    _check_arguments(args)
    if args.dataset is not None and args.dataset not in DATASETS:
        from forward_models.names import unknown_name_message

        raise UserError(unknown_name_message("data set", args.dataset, DATASETS))
    init_prior = None
    if args.init is not None:
        from priors import load_prior

        init_prior = load_prior(args.init)
        have = "flow" if init_prior.card.get("kind") == "flow" else "edm"
        if args.kind is not None and args.kind != have:
            raise UserError(f"--init {args.init} is a {have} prior; --kind {args.kind} cannot continue it")
        args.kind = have
    kind = args.kind or "edm"
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    name = args.name or out.name
    val = None
    if args.data is not None:
        data, val, norm, data_card = _user_data(args, args.seed)
        if len(data) < args.batch_size:
            raise UserError(f"--batch-size {args.batch_size} exceeds the {len(data)} training examples of {args.data}")
        if init_prior is not None and int(init_prior.shape[0]) != data.example_shape[0]:
            raise UserError(f"--init {args.init} takes {init_prior.shape[0]} channel(s), {args.data} has "
                            f"{data.example_shape[0]}")
    else:
        cache = (out.with_name(out.name + "-work") / "dataset.safetensors" if args.data_cache is None
                 else None if args.data_cache.lower() == "none" else Path(args.data_cache))
        data, norm, desc, gen_time = cached_dataset(args.dataset, args.num_examples, args.size, args.seed, cache,
                                                   device=args.data_device)
        data_card = {"dataset": args.dataset, "description": desc, "num_examples": args.num_examples,
                     "size": args.size, "seed": args.seed, "generation_time_s": gen_time,
                     "generation_device": args.data_device if args.dataset in DEVICE_GENERATORS else "cpu"}
    if args.init is not None:
        data_card["init"] = args.init
    card = {"name": name, "data": data_card, "units": norm.units, "dims": ["channel", "y", "x"]}
    with _lightning_quiet():
        out = train_prior(data, out, kind=kind, steps=args.steps, batch_size=args.batch_size,
                          widths=tuple(args.widths), layers_per_block=args.layers_per_block, lr=args.lr,
                          seed=args.seed, normalisation=norm, card=card, resume=args.resume,
                          checkpoint_every=args.checkpoint_every, devices=args.devices, num_nodes=args.num_nodes,
                          strategy=args.strategy, accelerator=args.accelerator,
                          overwrite=args.overwrite or args.resume, progress=not args.quiet,
                          max_minutes=args.max_minutes, init=init_prior, num_workers=args.num_workers)
    if rank_zero_only.rank != 0:  # DDP: one line, from rank 0
        return 0
    report = _quality(out, val, args.quality_samples, args.seed) if args.data is not None else None
    print(f"prior written to {out}")
    if report is not None:
        verdict = "passes the quality floors" if not report["failures"] else \
            "FAILS the quality floors: " + "; ".join(report["failures"])
        print(f"quality against {report['num_val_examples']} held-out examples: spectrum log10 error "
              f"{report['spectrum_log10_error']:.3f}, pixel W1 {report['pixel_w1_samples_vs_truths']:.4f} "
              f"(held-out vs held-out {report['pixel_w1_truths_vs_truths'] or float('nan'):.4f}); {verdict}")
    return 0
