"""Sampler checkpoints: save a :class:`~samplers.base.State` every K steps, resume a run bit for bit.

One file per run, written atomically (temporary file, then rename) in safetensors format, never
pickle. The file is generic over the dataclass fields of the state (any ``State`` subclass: a
diffusion sampler's, an SMC sampler's, an MCMC chain's):

- tensors: every tensor field under its name (``x``, ``log_weights``, ...), the ``torch.Generator``
  state (``generator_state``, a uint8 tensor), and the tensors inside nested values, flattened as
  ``field/name``: a dataclass's fields, a dict's entries (e.g. the SMC particle cache ``cache/x0``),
  a list's or tuple's items (``field/0``);
- JSON in the safetensors header: the format, the step, the schema of every field (its kind, its
  JSON value: ints, floats, strings, booleans, None and lists or tuples of those) and a
  *fingerprint*: the SHA-256 of the sampler configuration, the prior's configuration and
  parameters, the forward and noise models' configuration, the measurement ``y``, the number of
  samples and the seed.

The references ``problem``, ``prior`` and ``generator`` are never written. Resuming
(:func:`load_state`) calls ``sampler.init`` on the same problem and prior, which rebuilds the static
fields (a noise schedule, an SVD: those a sampler lists in ``Sampler.static_fields``), then
overwrites every other field with the stored values and restores the generator. A resumed run
therefore continues exactly where the saved one stopped; a checkpoint written with different
settings is refused, naming the mismatch. A state field holding any other kind of object cannot be
checkpointed and says so (:class:`CheckpointError`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from samplers.atomic import write_bytes_atomic
from samplers.errors import SamplerConfigError

__all__ = ["CheckpointError", "fingerprint", "save_state", "load_state", "read_checkpoint_info", "FORMAT"]

#: format tag stored in every sampler checkpoint
FORMAT = "inverse-sampler-checkpoint/2"

#: state fields that are references to the run's inputs, never written
_REFERENCES = ("problem", "prior", "generator")


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


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _encode(path: str, v, tensors: dict, who: str) -> dict:
    """Schema entry of value ``v`` at ``path``; its tensors go into ``tensors`` (module docstring)."""
    if isinstance(v, torch.Tensor):
        tensors[path] = v
        return {"kind": "tensor"}
    if _is_scalar(v):
        return {"kind": "json", "value": v}
    if isinstance(v, (list, tuple)):
        kind = "tuple" if isinstance(v, tuple) else "list"
        if all(_is_scalar(u) for u in v):
            return {"kind": kind, "value": list(v)}
        return {"kind": kind, "items": [_encode(f"{path}/{i}", u, tensors, who) for i, u in enumerate(v)]}
    if isinstance(v, dict) and all(isinstance(k, str) and "/" not in k for k in v):
        return {"kind": "dict", "items": {k: _encode(f"{path}/{k}", u, tensors, who) for k, u in v.items()}}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {"kind": "dataclass", "class": type(v).__qualname__,
                "items": {f.name: _encode(f"{path}/{f.name}", getattr(v, f.name), tensors, who)
                          for f in dataclasses.fields(v)}}
    raise CheckpointError(f"{who} cannot be checkpointed: state.{path.replace('/', '.')} is a {type(v).__name__} "
                          "(neither a tensor, JSON, a list, dict or dataclass of those, nor listed in static_fields)")


def _decode(path: str, entry: dict, like, tensors: dict, device):
    """Value of a schema entry; ``like`` is the fresh state's value at ``path`` (the type of a nested dataclass)."""
    kind = entry["kind"]
    if kind == "tensor":
        return tensors[path].to(device)
    if kind == "json":
        return entry["value"]
    if kind in ("list", "tuple"):
        if "value" in entry:
            items = list(entry["value"])
        else:
            likes = list(like) if isinstance(like, (list, tuple)) else []
            items = [_decode(f"{path}/{i}", e, likes[i] if i < len(likes) else None, tensors, device)
                     for i, e in enumerate(entry["items"])]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        likes = like if isinstance(like, dict) else {}
        return {k: _decode(f"{path}/{k}", e, likes.get(k), tensors, device) for k, e in entry["items"].items()}
    if kind == "dataclass":
        if not (dataclasses.is_dataclass(like) and type(like).__qualname__ == entry["class"]):
            raise CheckpointError(f"state.{path.replace('/', '.')} holds a {entry['class']} in the checkpoint but "
                                  f"a {type(like).__name__} in this run")
        return dataclasses.replace(like, **{k: _decode(f"{path}/{k}", e, getattr(like, k), tensors, device)
                                            for k, e in entry["items"].items()})
    raise SamplerConfigError(f"unknown kind {kind!r}")


def _dynamic_fields(sampler, state) -> list[str]:
    static = set(_REFERENCES) | set(getattr(sampler, "static_fields", ()))
    return [f.name for f in dataclasses.fields(state) if f.name not in static]


def save_state(path, sampler, state, fingerprint_: dict, generator_state: torch.Tensor | None = None) -> Path:
    """Write ``state`` to ``path`` atomically (module docstring); ``generator_state`` defaults to the
    generator's current state (pass a snapshot taken right after the step that produced ``state``)."""
    from safetensors.torch import save

    who = type(sampler).__name__
    tensors: dict = {}
    schema = {name: _encode(name, getattr(state, name), tensors, who) for name in _dynamic_fields(sampler, state)}
    if "generator_state" in tensors:
        raise CheckpointError(f"{who}: a state field may not be called 'generator_state'")
    tensors["generator_state"] = state.generator.get_state() if generator_state is None else generator_state
    meta = {"format": FORMAT, "sampler": who, "state": type(state).__qualname__, "step": int(state.step),
            "num_steps": int(sampler.num_steps()), "fields": schema,
            "static": sorted(getattr(sampler, "static_fields", ())), "fingerprint": fingerprint_}
    out = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    # built in memory, then one plain write: a full disk is one OutputWriteError naming the checkpoint
    return write_bytes_atomic(path, save(out, metadata={"inverse": json.dumps(meta)}), overwrite=True)


def read_checkpoint_info(path) -> tuple[dict, dict]:
    """``(metadata, tensors)`` of a sampler checkpoint; clear errors for missing or corrupt files."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    from samplers.netcdf import check_input_file

    path = check_input_file(path, "checkpoint")
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
            or "generator_state" not in tensors or not isinstance(meta.get("fields"), dict):
        raise CheckpointError(f"{path} is not a sampler checkpoint written by this library")
    return meta, tensors


def _describe_mismatch(saved: dict, now: dict) -> str:
    diff = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
    return ", ".join(diff) if diff else "the prior's weights or the measurement"


def load_state(path, sampler, problem, prior, num_samples: int, generator: torch.Generator, fingerprint_: dict):
    """Rebuild the saved state for this run (module docstring).

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
        fields = meta["fields"]
        values = {name: _decode(name, fields[name], getattr(fresh, name), tensors, dev)
                  for name in _dynamic_fields(sampler, fresh)}
        x = values["x"]
        if x.shape != fresh.x.shape or x.dtype != fresh.x.dtype:
            raise CheckpointError(f"checkpoint {path} holds particles of shape {tuple(x.shape)} ({x.dtype}), "
                                  f"this run has {tuple(fresh.x.shape)} ({fresh.x.dtype})")
        return dataclasses.replace(fresh, **values)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, IndexError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"corrupt sampler checkpoint {path} ({type(e).__name__})") from None
