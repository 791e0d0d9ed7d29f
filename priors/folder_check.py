"""The security policy of prior folders: weights are read from safetensors only, never from pickle.

A prior folder comes from anywhere (a colleague, a model hub). Pickle-based weight formats
(``torch.save`` files, ``.ckpt``, joblib, ...) run code when they are read, and diffusers reads such a
file when an index names it (``*.index.json`` with a ``weight_map``), even with ``use_safetensors=True``.
So :func:`check_prior_folder` refuses the folder *before* diffusers sees it when

- any file in it (at any depth) has a weight or serialisation suffix other than ``.safetensors``
  (:data:`REFUSED_SUFFIXES`);
- an index or configuration JSON (every ``*.json`` but the model card ``prior.json``) names such a file,
  or an index names a weight file outside the folder (a path rather than a bare file name);
- an entry is a symbolic link that resolves outside the folder (a hub-cache snapshot may link into its own
  repository's ``blobs/``), or a weight / configuration file is not a regular file (a FIFO, a device);
- the folder holds more than :data:`MAX_ENTRIES` entries (no unbounded walk).

Example::

    from priors.folder_check import check_prior_folder
    check_prior_folder("data/priors/phantoms-64")   # returns None, or raises PriorLoadError
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from priors.errors import PriorError

__all__ = ["check_prior_folder", "REFUSED_SUFFIXES", "MAX_ENTRIES"]

#: weight / serialisation formats that are not safetensors: most unpickle (run code) when read
REFUSED_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".msgpack", ".h5", ".hdf5", ".onnx",
                    ".joblib", ".npy", ".npz", ".pb", ".tflite", ".gguf", ".mar", ".tar", ".zip", ".dill")
#: a prior folder holds a handful of files; a walk stops (and refuses) past this many entries
MAX_ENTRIES = 2000
#: JSON files larger than this are not parsed for file names (a weight index is a few hundred kB at most)
_MAX_JSON_BYTES = 32 * 2**20


def _error(message: str) -> PriorError:
    from priors.loading import PriorLoadError  # priors.loading imports this module

    return PriorLoadError(message)


def _is_refused(name: str) -> bool:
    return name.lower().endswith(REFUSED_SUFFIXES)


def _allowed_root(directory: Path) -> Path:
    """Where links may point: the folder itself, or for a hub-cache snapshot (``models--*/snapshots/<rev>``)
    the cached repository, whose ``blobs/`` hold the files the snapshot links to."""
    root = directory.resolve()
    if root.parent.name == "snapshots" and root.parent.parent.name.startswith("models--"):
        return root.parent.parent
    return root


def _strings(value):
    """Every string in a JSON value (keys included), depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _check_json(path: Path, folder: Path) -> None:
    if path.stat().st_size > _MAX_JSON_BYTES:
        raise _error(f"{path} is too large for a configuration file ({path.stat().st_size} bytes)")
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _error(f"{path} is not valid JSON ({e})") from None
    except RecursionError:
        raise _error(f"{path} is nested too deeply for a configuration file") from None
    try:
        named = [s for s in _strings(value) if _is_refused(s)]
    except RecursionError:
        raise _error(f"{path} is nested too deeply for a configuration file") from None
    if named:
        raise _error(f"{path} names {named[0][:200]!r}, a weight file that is not safetensors; "
                     "only safetensors weights are loaded (pickle formats can run code)")
    if path.name.endswith(".index.json"):
        weight_map = value.get("weight_map", {}) if isinstance(value, dict) else {}
        for f in weight_map.values() if isinstance(weight_map, dict) else [weight_map]:
            if not isinstance(f, str) or Path(f).name != f or f in (".", ".."):
                raise _error(f"{path}: weight_map entry {f!r} is not a file name in the folder")


def check_prior_folder(directory) -> None:
    """Refuse a prior folder that could make the loader read anything but safetensors weights (module docstring).

    Raises :class:`priors.PriorLoadError` naming the offending file; returns None for a folder that passes.
    """
    folder = Path(directory)
    root = _allowed_root(folder)
    count = 0
    for here, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in sorted(dirnames) + sorted(filenames):
            count += 1
            if count > MAX_ENTRIES:
                raise _error(f"{folder} holds more than {MAX_ENTRIES} entries; a prior folder holds a model, "
                             "its scheduler configuration and its card")
            path = Path(here) / name
            rel = path.relative_to(folder)
            if path.is_symlink():
                target = path.resolve()
                inside = folder.resolve() if name in dirnames else root  # a linked folder is walked in place
                if target != inside and inside not in target.parents:
                    raise _error(f"{rel} in {folder} is a link to {target}, outside the folder; "
                                 "copy the file into the folder instead")
            if _is_refused(name):
                raise _error(f"{folder} holds {rel}, a weight file that is not safetensors; only safetensors weights "
                             "are loaded (pickle formats can run code): remove it or load a copy without it")
            if name in dirnames:
                continue
            if name.endswith((".safetensors", ".json")):
                try:
                    mode = path.stat().st_mode
                except OSError as e:
                    raise _error(f"{rel} in {folder} cannot be read ({e.strerror or type(e).__name__})") from None
                if not stat.S_ISREG(mode):
                    raise _error(f"{rel} in {folder} is not a regular file")
                if name.endswith(".json") and name != "prior.json":
                    _check_json(path, folder)
