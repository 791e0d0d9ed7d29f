"""Sampler checkpoints: save a :class:`SamplerState` every K steps, resume a run bit for bit.

One file per run, written atomically (temporary file, then rename) in safetensors format, never
pickle:

- tensors: ``x``, ``log_weights``, the ``torch.Generator`` state (a uint8 tensor), every tensor in
  ``state.extras`` (``extras/<key>``) and every tensor of a dict of tensors in ``extras``
  (``extras/<key>/<name>``, e.g. the SMC particle cache);
- JSON in the safetensors header: the format, the step, the cost counters, every JSON value in
  ``extras`` (lists, floats, ints, strings), the names of the static extras, and a *fingerprint*:
  the SHA-256 of the sampler configuration, the prior's configuration and parameters, the forward
  and noise models' configuration, the measurement ``y``, the number of samples and the seed.

Resuming (:func:`load_state`) calls ``sampler.init`` on the same problem and prior, which rebuilds
the static parts of the state (an SVD, a noise schedule: the extras a sampler lists in
``Sampler.static_extras``), then overwrites every dynamic field with the stored values and restores
the generator. A resumed run therefore continues exactly where the saved one stopped; a checkpoint
written with different settings is refused, naming the mismatch. A sampler whose extras hold any
other kind of object cannot be checkpointed and says so (:class:`CheckpointError`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from samplers.atomic import atomic_output

__all__ = ["CheckpointError", "fingerprint", "save_state", "load_state", "read_checkpoint_info", "FORMAT"]

#: format tag stored in every sampler checkpoint
FORMAT = "inverse-sampler-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint cannot be written (unsupported state) or does not fit the run that reads it."""


def _hash_tensor(h, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def fingerprint(sampler, problem, prior, num_samples: int, seed: int) -> dict:
    """What a resumed run must share with the saved one: ``{"config": ..., "sha256": ...}``.

    The hash covers the sampler configuration, the prior (configuration, sigma range, every
    parameter and buffer), the forward and noise models' configuration, ``y``, ``num_samples`` and ``seed``.
    """
    config = {"sampler": sampler.config(), "prior": prior.config(), "problem": problem.config(),
              "num_samples": int(num_samples), "seed": int(seed)}
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    h.update(repr((float(prior.sigma_min), float(prior.sigma_max))).encode())
    for name, t in sorted(prior.state_dict().items()):
        h.update(name.encode())
        _hash_tensor(h, t)
    _hash_tensor(h, problem.y)
    return {"config": json.loads(json.dumps(config, default=str)), "sha256": h.hexdigest()}


def _is_json(v) -> bool:
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if isinstance(v, list):
        return all(_is_json(u) for u in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _is_json(u) for k, u in v.items())
    return False


def _split_extras(sampler, extras: dict) -> tuple[dict, dict, dict, list]:
    """``(tensors, tensor dicts, json values, static keys)``; anything else raises :class:`CheckpointError`."""
    static = set(getattr(sampler, "static_extras", ()))
    tensors, groups, values, kept_static = {}, {}, {}, []
    for k, v in extras.items():
        if "/" in k:
            raise CheckpointError(f"{type(sampler).__name__}: extras key {k!r} contains '/' and cannot be checkpointed")
        if k in static:
            kept_static.append(k)
        elif isinstance(v, torch.Tensor):
            tensors[k] = v
        elif isinstance(v, dict) and v and all(isinstance(u, torch.Tensor) for u in v.values()) \
                and all("/" not in n for n in v):
            groups[k] = v
        elif _is_json(v):
            values[k] = v
        else:
            raise CheckpointError(f"{type(sampler).__name__} cannot be checkpointed: state.extras[{k!r}] is a "
                                  f"{type(v).__name__} (neither a tensor, a dict of tensors, JSON, nor listed in "
                                  "static_extras)")
    return tensors, groups, values, kept_static


def save_state(path, sampler, state, fingerprint_: dict, generator_state: torch.Tensor | None = None) -> Path:
    """Write ``state`` to ``path`` atomically (module docstring); ``generator_state`` defaults to the
    generator's current state (pass a snapshot taken right after the step that produced ``state``)."""
    from safetensors.torch import save_file

    tensors, groups, values, static = _split_extras(sampler, state.extras)
    gen = state.generator.get_state() if generator_state is None else generator_state
    out = {"x": state.x, "generator_state": gen}
    if state.log_weights is not None:
        out["log_weights"] = state.log_weights
    out.update({f"extras/{k}": v for k, v in tensors.items()})
    for k, d in groups.items():
        out.update({f"extras/{k}/{n}": t for n, t in d.items()})
    meta = {"format": FORMAT, "sampler": type(sampler).__name__, "step": int(state.step),
            "num_steps": int(sampler.num_steps()), "counters": dataclasses.asdict(state.counters),
            "extras_json": values, "extras_groups": sorted(groups), "extras_static": static,
            "fingerprint": fingerprint_}
    out = {k: v.detach().cpu().contiguous() for k, v in out.items()}
    path = Path(path)
    with atomic_output(path, overwrite=True, suffix=".tmp") as tmp:
        save_file(out, str(tmp), metadata={"inverse": json.dumps(meta)})
    return path


def read_checkpoint_info(path) -> tuple[dict, dict]:
    """``(metadata, tensors)`` of a sampler checkpoint; clear errors for missing or corrupt files."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("inverse")
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is not a readable sampler checkpoint ({type(e).__name__})") from None
    try:
        meta = json.loads(raw) if raw is not None else {}
    except json.JSONDecodeError:
        meta = {}
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "x" not in tensors \
            or "generator_state" not in tensors:
        raise CheckpointError(f"{path} is not a sampler checkpoint written by this library")
    return meta, tensors


def _describe_mismatch(saved: dict, now: dict) -> str:
    diff = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
    return ", ".join(diff) if diff else "the prior's weights or the measurement"


def load_state(path, sampler, problem, prior, num_samples: int, generator: torch.Generator, fingerprint_: dict):
    """Rebuild the saved :class:`SamplerState` for this run (module docstring).

    Raises :class:`CheckpointError` when the checkpoint was written by another sampler or with other
    settings, problem, prior, number of samples or seed.
    """
    meta, tensors = read_checkpoint_info(path)
    fp = meta.get("fingerprint")
    fp = fp if isinstance(fp, dict) else {}
    if fp.get("sha256") != fingerprint_["sha256"]:
        saved = fp.get("config")
        what = _describe_mismatch(saved if isinstance(saved, dict) else {}, fingerprint_["config"])
        raise CheckpointError(f"checkpoint {path} was written by a different run (differs in: {what}); "
                              "resume with the same settings, or start afresh with --overwrite")
    fresh = sampler.init(problem, prior, int(num_samples), generator)
    dev = fresh.x.device
    try:
        generator.set_state(tensors["generator_state"])
        extras = dict(fresh.extras)
        extras.update(meta.get("extras_json", {}))
        for k in meta.get("extras_groups", []):
            prefix = f"extras/{k}/"
            extras[k] = {n[len(prefix):]: t.to(dev) for n, t in tensors.items() if n.startswith(prefix)}
        for n, t in tensors.items():
            if n.startswith("extras/") and n.count("/") == 1:
                extras[n[len("extras/"):]] = t.to(dev)
        lw = tensors.get("log_weights")
        x = tensors["x"].to(dev)
        if x.shape != fresh.x.shape or x.dtype != fresh.x.dtype:
            raise CheckpointError(f"checkpoint {path} holds particles of shape {tuple(x.shape)} ({x.dtype}), "
                                  f"this run has {tuple(fresh.x.shape)} ({fresh.x.dtype})")
        counters = type(fresh.counters)(**meta["counters"])
        step = int(meta["step"])
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"corrupt sampler checkpoint {path} ({type(e).__name__})") from None
    return dataclasses.replace(fresh, x=x, step=step, counters=counters, extras=extras,
                               log_weights=None if lw is None else lw.to(dev))
