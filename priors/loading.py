"""Loading and saving network priors in diffusers layout, by shipped name, directory or hub id.

A prior directory holds a diffusers ``UNet2DModel`` (``config.json`` +
``diffusion_pytorch_model.safetensors``, at the top or in ``unet/``), a scheduler configuration
(``scheduler_config.json``, at the top or in ``scheduler/``) and, for priors we ship, a model card
``prior.json`` (training data, units and normalisation, network size, steps, loss, checks). The
scheduler class decides the conversion to the sigma-space contract:

- ``EDM*Scheduler`` -> :class:`priors.EDMPrior` (EDM preconditioning, ``sigma_data`` from the config);
- schedulers with a beta schedule (DDPM, DDIM, ...) -> :class:`priors.VPDiffusionPrior`
  (``alphas_cumprod`` and ``prediction_type`` from the config);
- ``FlowMatch*`` or a card with ``"kind": "flow"`` -> :class:`priors.FlowMatchingPrior`.

Weights are read only from safetensors (never pickle): :func:`priors.folder_check.check_prior_folder`
refuses a folder holding or naming any other weight format before diffusers sees it. Shipped priors live
in ``data/priors/<name>`` of the repository and install as the package data of ``priors.shipped``
(setup.py); they are found through ``importlib.resources``, so they load by name from any working
directory, in an editable or a regular install.
"""

from __future__ import annotations

import difflib
import json
import math
import warnings
from importlib import resources
from pathlib import Path

from priors.base import Prior
from priors.edm import EDMPrior
from priors.errors import PriorError
from priors.flow import FlowMatchingPrior
from priors.folder_check import check_prior_folder
from priors.normalisation import Normalisation
from priors.vp import VPDiffusionPrior

__all__ = ["load_prior", "save_prior", "shipped_priors", "shipped_priors_dir", "PriorLoadError"]


class PriorLoadError(PriorError):
    """A prior could not be found or is not a valid diffusers / prior directory."""


def shipped_priors_dir() -> Path:
    """The directory of the shipped priors: the package data of ``priors.shipped``.

    That is ``data/priors`` in a checkout installed with ``pip install -e .``, and
    ``site-packages/priors/shipped`` after ``pip install .``.
    """
    try:
        root = resources.files("priors.shipped")
    except ModuleNotFoundError:
        raise PriorLoadError("the shipped priors (package priors.shipped) are not installed; "
                             "reinstall this package (pip install .)") from None
    if not isinstance(root, Path):  # e.g. inside a zip archive: diffusers reads files from a directory
        raise PriorLoadError(f"the shipped priors must be files in a directory, got {root}")
    return root


def shipped_priors() -> dict[str, dict]:
    """Names of the shipped priors with their model cards (:func:`shipped_priors_dir`)."""
    out = {}
    root = shipped_priors_dir()
    if root.is_dir():
        for d in sorted(root.iterdir()):
            card = d / "prior.json"
            if card.is_file():
                try:
                    out[d.name] = json.loads(card.read_text())
                except json.JSONDecodeError:
                    out[d.name] = {"error": "unreadable prior.json"}
    return out


def _find(directory: Path, name: str, sub: str) -> Path | None:
    for cand in (directory / name, directory / sub / name):
        if cand.is_file():
            return cand
    return None


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PriorLoadError(f"{path} is not valid JSON ({e})") from None
    except RecursionError:
        raise PriorLoadError(f"{path} is nested too deeply") from None
    except OSError as e:
        raise PriorLoadError(f"{path} cannot be read ({type(e).__name__})") from None
    if not isinstance(value, dict):
        raise PriorLoadError(f"{path} must hold a JSON object, got {type(value).__name__}")
    return value


def _resolve(name_or_path) -> Path:
    if not str(name_or_path).strip():
        raise PriorLoadError("empty prior name: give a shipped prior's name or a prior directory")
    p = Path(name_or_path)
    if p.is_dir():
        return p
    shipped = shipped_priors_dir() / str(name_or_path)
    if shipped.is_dir():
        return shipped
    if p.exists():
        raise PriorLoadError(f"{p} is a file; a prior is a directory (diffusers layout)")
    names = list(shipped_priors())
    if "/" in str(name_or_path) and not str(name_or_path).startswith((".", "/")):
        try:  # a hub id that is already in the local cache loads the same way
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(str(name_or_path), local_files_only=True))
        except Exception:
            raise PriorLoadError(
                f"hub model {name_or_path!r} is not in the local cache and this machine cannot download; "
                "download it where there is a network and pass its directory") from None
    close = difflib.get_close_matches(str(name_or_path), names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise PriorLoadError(f"unknown prior {str(name_or_path)!r}{hint} (shipped: {', '.join(names) or 'none'}; "
                         "or pass a diffusers model directory)")


def _shape_fits(card_shape, net_shape: tuple, unit: int = 1) -> bool:
    """The card's sample shape equals the network's, or is the shape of a padded network
    (:func:`priors.network.network_call`): same channels, and each side ``n`` of the network the
    smallest multiple of ``unit = 2^(levels - 1)`` that holds the card's side ``c`` (``n - unit < c <= n``)."""
    if not isinstance(card_shape, list) or len(card_shape) != len(net_shape):
        return False
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in card_shape):
        return False
    return card_shape[0] == net_shape[0] and all(n - unit < c <= n
                                                 for c, n in zip(card_shape[1:], net_shape[1:], strict=False))


def _validate_card(card, shape: tuple, path: Path, unit: int = 1) -> None:
    """A model card must be a JSON object whose shape, dims, kind, normalisation and sigmas fit the network."""
    if not isinstance(card, dict):
        raise PriorLoadError(f"{path}: the model card must be a JSON object, got {type(card).__name__}")
    if "shape" in card and not _shape_fits(card["shape"], shape, unit):
        raise PriorLoadError(f"{path}: the card's shape {card['shape']} does not match the network's {list(shape)}")
    dims = card.get("dims")
    if dims is not None and (not isinstance(dims, list) or len(dims) != len(shape)
                             or not all(isinstance(d, str) and d for d in dims)):
        raise PriorLoadError(f"{path}: 'dims' must list {len(shape)} dimension names, got {dims!r}")
    if card.get("kind", "edm") not in ("edm", "flow", "vp"):
        raise PriorLoadError(f"{path}: unknown prior kind {card.get('kind')!r} (edm, flow or vp)")
    norm = card.get("normalisation")
    if norm is not None:
        try:
            if not isinstance(norm, dict):
                raise TypeError(type(norm).__name__)
            Normalisation.from_dict(norm)
        except (TypeError, ValueError) as e:
            raise PriorLoadError(f"{path}: bad 'normalisation' entry ({e})") from None
    for key in ("sigma_min", "sigma_max"):
        v = card.get(key)
        if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf")):
            raise PriorLoadError(f"{path}: {key} must be a positive number, got {v!r}")
    if isinstance(card.get("sigma_min"), (int, float)) and isinstance(card.get("sigma_max"), (int, float)) \
            and not card["sigma_min"] < card["sigma_max"]:
        raise PriorLoadError(f"{path}: sigma_min must be below sigma_max")


def _normalisation(card: dict, data_range, normalisation, units, directory: Path) -> Normalisation:
    """The model-space -> physical map: the arguments where given, else the card's, else identity with a warning."""
    if units is not None and (not isinstance(units, str) or len(units) > 200):
        raise PriorLoadError(f"units must be a string of at most 200 characters, got {units!r:.60}")
    if data_range is not None and normalisation is not None:
        raise PriorLoadError("pass data_range or normalisation, not both")
    if data_range is not None:
        try:
            lo, hi = (float(v) for v in data_range)
        except (TypeError, ValueError):
            raise PriorLoadError(f"data_range must be two numbers (low, high), got {data_range!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise PriorLoadError(f"data_range must be finite with low < high, got {data_range!r}")
        norm = Normalisation((hi - lo) / 2, (hi + lo) / 2)
    elif isinstance(normalisation, Normalisation):
        norm = normalisation
    elif normalisation is not None:
        if not isinstance(normalisation, dict):
            raise PriorLoadError(f"normalisation must be a priors.Normalisation or a dict, "
                                 f"got {type(normalisation).__name__}")
        try:
            norm = Normalisation.from_dict(normalisation)
        except (TypeError, ValueError) as e:
            raise PriorLoadError(f"bad normalisation {normalisation!r} ({e})") from None
    elif "normalisation" in card:
        norm = Normalisation.from_dict(card["normalisation"])
    else:
        norm = Normalisation()
        if not (directory / "prior.json").is_file():
            warnings.warn(f"{directory} has no prior.json: assuming the model's space is the data's own units "
                          "(identity normalisation, no units), but most diffusers models are trained on [-1, 1]; "
                          "write prior.json next to config.json (fields: see priors.load_prior) or pass "
                          "load_prior(..., data_range=(low, high))", UserWarning, stacklevel=3)
    if units is not None:
        norm = Normalisation(norm.scale, norm.offset, units)
    elif not norm.units:  # data_range gives no units: the card's, if it names them
        card_norm = card.get("normalisation") if isinstance(card.get("normalisation"), dict) else {}
        named = card_norm.get("units") or card.get("units")
        if isinstance(named, str) and named:
            norm = Normalisation(norm.scale, norm.offset, named)
    return norm


def load_prior(name_or_path, *, device=None, dtype=None, data_range=None, normalisation=None,
               units: str | None = None) -> Prior:
    """Load a prior by shipped name, directory path or cached hub id (module docstring).

    Arguments
    ---------
    name_or_path : a shipped prior's name (:func:`shipped_priors`), a diffusers model directory, or a hub id
        already in the local cache.
    device, dtype : where and in which precision the network runs.
    data_range : ``(low, high)`` of the training data in physical units: the model's space ``[-1, 1]`` (the
        diffusers convention) maps onto it, ``physical = (high + low) / 2 + (high - low) / 2 * x``.
    normalisation : a :class:`priors.Normalisation` (or its dict) instead of ``data_range``.
    units : the physical unit's name (overrides the card's).

    The arguments override the model card. A directory without ``prior.json`` and without these arguments
    loads with the identity map and no units, and warns (a ``UserWarning``).

    The folder is checked first (:func:`priors.folder_check.check_prior_folder`): any weight file that is
    not safetensors (``.bin``, ``.pt``, ``.ckpt``, pickle, ...), an index naming one, or a link leaving the
    folder refuses it before diffusers reads anything.

    Writing a model card for a downloaded model: put ``prior.json`` next to ``config.json``, e.g. for a model
    trained on images scaled to [-1, 1] from [0, 1]::

        {"kind": "vp",
         "normalisation": {"scale": 0.5, "offset": 0.5, "units": "intensity"},
         "dims": ["channel", "y", "x"],
         "data": {"description": "what the model was trained on"}}

    Fields (all optional): ``kind`` (``edm``, ``vp`` or ``flow``; the scheduler configuration decides when
    absent), ``normalisation`` (``physical = offset + scale * model``, and ``units``), ``units``, ``shape``
    (``[C, H, W]`` of one sample, smaller than the network's for a padded network), ``dims`` (dimension names
    of one sample), ``sigma_min`` / ``sigma_max`` (flow priors), and free-form ``data``, ``training``,
    ``quality`` records.

    Example::

        from priors import load_prior
        prior = load_prior("phantoms-64")
        x = prior.sample(2, steps=4, seed=0, physical=True)   # (2, 1, 64, 64) in the card's units
    """
    from diffusers import UNet2DModel

    directory = _resolve(name_or_path)
    cfg_path = _find(directory, "config.json", "unet")
    if cfg_path is None:
        raise PriorLoadError(f"{directory} is not a diffusers model: no config.json (or unet/config.json)")
    check_prior_folder(directory)  # before anything in it is read
    weights = cfg_path.parent / "diffusion_pytorch_model.safetensors"
    if not weights.is_file():
        raise PriorLoadError(f"{cfg_path.parent} has no diffusion_pytorch_model.safetensors "
                             "(only safetensors weights are loaded)")
    sched_path = _find(directory, "scheduler_config.json", "scheduler")
    sched = _read_json(sched_path) if sched_path else {}
    card = _read_json(directory / "prior.json") if (directory / "prior.json").is_file() else {}
    unet_cfg = _read_json(cfg_path)
    if unet_cfg.get("_class_name", "UNet2DModel") != "UNet2DModel":
        raise PriorLoadError(f"{cfg_path}: only UNet2DModel networks are supported, got {unet_cfg.get('_class_name')}")
    try:
        from diffusers.utils import logging as _dlog

        level = _dlog.get_verbosity()
        _dlog.set_verbosity_error()  # no 'install accelerate' advice for a 1 MB model
        try:
            unet = UNet2DModel.from_pretrained(cfg_path.parent, use_safetensors=True, local_files_only=True)
        finally:
            _dlog.set_verbosity(level)
    except Exception as e:  # diffusers raises many types for bad directories
        raise PriorLoadError(f"could not load the UNet in {cfg_path.parent}: "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    unet.eval().requires_grad_(False)
    size = unet.config.sample_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    shape = (unet.config.in_channels, *size)
    _validate_card(card, shape, directory / "prior.json", 2 ** (len(unet.config.block_out_channels) - 1))
    if "shape" in card:  # a padded network samples fields smaller than its native size
        shape = tuple(card["shape"])
    norm = _normalisation(card, data_range, normalisation, units, directory)
    dims = tuple(card["dims"]) if "dims" in card else None
    cls = sched.get("_class_name", "")
    card = {"name": directory.name, **card}
    if cls.startswith("EDM"):
        prior = EDMPrior(unet, shape, sigma_data=sched.get("sigma_data", 0.5), sigma_min=sched.get("sigma_min", 0.002),
                         sigma_max=sched.get("sigma_max", 80.0), normalisation=norm, card=card, dims=dims)
    elif "FlowMatch" in cls or card.get("kind") == "flow":
        prior = FlowMatchingPrior(unet, shape, sigma_min=card.get("sigma_min", 0.002),
                                  sigma_max=card.get("sigma_max", 80.0), normalisation=norm, card=card, dims=dims)
    elif "beta_start" in sched or "trained_betas" in sched or "beta_schedule" in sched:
        import diffusers

        try:
            known = cls.endswith("Scheduler") and hasattr(diffusers, cls)  # a class name from the file: schedulers only
            scheduler = (getattr(diffusers, cls) if known else diffusers.DDPMScheduler).from_config(sched)
        except Exception as e:
            raise PriorLoadError(f"bad scheduler config in {sched_path}: {e}") from None
        prior = VPDiffusionPrior(unet, scheduler.alphas_cumprod, sched.get("prediction_type", "epsilon"), shape,
                                 normalisation=norm, card=card, dims=dims)
    else:
        raise PriorLoadError(f"{directory}: no scheduler configuration tells how the network was trained "
                             "(expected scheduler_config.json of an EDM, DDPM-family or flow-matching scheduler)")
    if dtype is not None:
        prior.to(dtype)
    if device is not None:
        try:
            prior.to(device)
        except (RuntimeError, TypeError, AssertionError) as e:  # unknown name, or CUDA absent
            raise PriorLoadError(f"cannot move the prior to device {device!r} "
                                 f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    return prior


def save_prior(prior: Prior, directory, card: dict | None = None, *, overwrite: bool = False) -> Path:
    """Write an :class:`EDMPrior` or :class:`FlowMatchingPrior` in diffusers layout with its card.

    The UNet goes to ``config.json`` + ``diffusion_pytorch_model.safetensors``; the scheduler config
    is diffusers' ``EDMEulerScheduler`` (EDM) or ``FlowMatchEulerDiscreteScheduler`` (flow); the card
    to ``prior.json``. The directory is assembled beside the target and renamed into place.
    """
    import shutil
    import tempfile

    from diffusers import EDMEulerScheduler, FlowMatchEulerDiscreteScheduler

    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise FileExistsError(f"{directory} already exists (pass overwrite=True to replace it)")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a prior directory is ordinary shared data
    try:
        prior.network.save_pretrained(tmp, safe_serialization=True)
        if isinstance(prior, EDMPrior):
            EDMEulerScheduler(sigma_min=prior.sigma_min, sigma_max=prior.sigma_max,
                              sigma_data=prior.sigma_data).save_config(tmp)
            kind = "edm"
        elif isinstance(prior, FlowMatchingPrior):
            FlowMatchEulerDiscreteScheduler().save_config(tmp)
            kind = "flow"
        else:
            raise TypeError(f"save_prior writes EDM and flow-matching priors, got {type(prior).__name__}")
        full = {"kind": kind, "shape": list(prior.shape), "normalisation": prior.normalisation.to_dict(),
                "sigma_min": prior.sigma_min, "sigma_max": prior.sigma_max, **(card or {})}
        (tmp / "prior.json").write_text(json.dumps(full, indent=2))
        mode = (tmp / "prior.json").stat().st_mode & 0o777  # 0o666 less the umask, as open() made it
        for f in tmp.iterdir():  # safetensors writes its file 0600 whatever the umask
            if f.is_file() and not f.is_symlink():
                f.chmod(mode)
        if directory.exists():
            shutil.rmtree(directory)
        tmp.rename(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory

