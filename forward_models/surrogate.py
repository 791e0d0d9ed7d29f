"""Neural surrogates of forward models, trained with pytorch-lightning on solver runs; a constant-offset correction.

:class:`NeuralSurrogate` is a :class:`~forward_models.base.ForwardModel` ``x -> y`` made of a fixed linear
encoder and a multilayer perceptron,

    f = P (vec(x) - c) / s,        y = mean_y + std_y * MLP(f),

where ``P`` (k x D) is an optional projection (e.g. the prior's Karhunen-Loeve basis, so the network sees the
k coefficients that parametrise the field) and ``s``, ``mean_y``, ``std_y`` standardise inputs and outputs
(fixed from the training set). It is trained by :func:`train_surrogate` (Adam on the mean squared error of
standardised outputs, a pytorch-lightning ``LightningModule``) on pairs ``(x_i, F(x_i))`` from solver runs,
and saved as ``surrogate.safetensors`` plus a JSON card ``surrogate.json`` (architecture, normalisation,
training data and its validation error) by :func:`save_surrogate`; :func:`load_surrogate` reads it back.
Such a surrogate is the cheap level of delayed acceptance (Christen & Fox 2005) or of the hybrid two-level
estimator (Yang et al., arXiv 2307.01463), where its error costs efficiency, never exactness.

:class:`OffsetCorrected` adds a constant vector ``b`` to a model's outputs, ``b = E[F_fine(x) - F_coarse(x)]``
estimated offline over prior draws (:func:`estimate_offset`): the state-independent part of the
"approximation error model" (Kaipio & Somersalo 2007; Cui, Fox & O'Sullivan 2011) that removes most of a
coarse grid's bias at no cost per evaluation.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from forward_models.base import ForwardModel, check_batch
from forward_models.errors import ForwardModelError

__all__ = ["NeuralSurrogate", "SurrogateModule", "train_surrogate", "save_surrogate", "load_surrogate",
           "OffsetCorrected", "estimate_offset"]

_FORMAT = "inverse-surrogate/1"


def _mlp(k: int, hidden, s: int) -> torch.nn.Sequential:
    layers, width = [], k
    for h in hidden:
        layers += [torch.nn.Linear(width, int(h)), torch.nn.GELU()]
        width = int(h)
    layers.append(torch.nn.Linear(width, s))
    return torch.nn.Sequential(*layers)


class NeuralSurrogate(ForwardModel):
    """A trained network standing in for a forward model ``x -> y`` (module docstring).

    Parameters
    ----------
    input_shape, output_shape : those of the model it replaces
    hidden : widths of the MLP's hidden layers
    projection : optional (k, D) encoder matrix, ``D = prod(input_shape)`` (default: identity, k = D)
    log_output : the network predicts ``log y`` (positive outputs spanning orders of magnitude, e.g. pressures)

    The standardisation buffers (``offset``, ``feature_scale``, ``output_mean``, ``output_std``) are set by
    :func:`train_surrogate`. Example::

        import torch
        from forward_models.darcy import DarcyFlow
        from forward_models.surrogate import train_surrogate
        op = DarcyFlow(16, coefficient="exp", sensors=3)
        x = op.example_input(256, seed=0)
        surrogate, card = train_surrogate(x, op(x), steps=200)
        y_fast = surrogate(x[:4])                               # (4, 9)
    """

    linear = False
    differentiable = True

    def __init__(self, input_shape, output_shape, *, hidden=(128, 128), projection: torch.Tensor | None = None,
                 log_output: bool = False):
        super().__init__()
        self.log_output = bool(log_output)
        self.input_shape, self.output_shape = tuple(int(s) for s in input_shape), tuple(int(s) for s in output_shape)
        D, S = math.prod(self.input_shape), math.prod(self.output_shape)
        if D < 1 or S < 1:
            raise ForwardModelError("NeuralSurrogate: input and output shapes must be non-empty")
        self.hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in self.hidden):
            raise ForwardModelError(f"NeuralSurrogate: hidden widths must be positive, got {hidden}")
        if projection is not None:
            projection = torch.as_tensor(projection, dtype=torch.float32)
            if projection.ndim != 2 or projection.shape[1] != D:
                raise ForwardModelError(f"NeuralSurrogate: projection must have shape (k, {D}), got "
                                        f"{tuple(projection.shape)}")
        k = D if projection is None else projection.shape[0]
        self.register_buffer("projection", projection if projection is not None else torch.empty(0, D))
        self.register_buffer("offset", torch.zeros(D))
        self.register_buffer("feature_scale", torch.ones(k))
        self.register_buffer("output_mean", torch.zeros(S))
        self.register_buffer("output_std", torch.ones(S))
        self.net = _mlp(k, self.hidden, S)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised encoder output ``P (vec(x) - c) / s``, ``(B, k)`` float32."""
        f = x.reshape(x.shape[0], -1).to(torch.float32) - self.offset
        if self.projection.numel():
            f = f @ self.projection.T
        return f / self.feature_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``mean_y + std_y * MLP(features(x))`` in the input's dtype, ``(B, *output_shape)``."""
        y = self.output_mean + self.output_std * self.net(self.features(x))
        y = torch.exp(y) if self.log_output else y
        return y.to(x.dtype).reshape(x.shape[0], *self.output_shape)

    def config(self) -> dict:
        """Contract fields plus the architecture."""
        return {**super().config(), "class": "NeuralSurrogate", "hidden": list(self.hidden),
                "log_output": self.log_output,
                "projection": list(self.projection.shape) if self.projection.numel() else None}


try:
    import pytorch_lightning as pl
except ImportError:  # pragma: no cover - lightning is a core dependency; keep import errors readable
    pl = None


class SurrogateModule(pl.LightningModule if pl is not None else torch.nn.Module):
    """Lightning wrapper: mean squared error of standardised outputs, Adam with cosine decay to 5% of ``lr``."""

    def __init__(self, surrogate: NeuralSurrogate, lr: float = 2e-3, steps: int = 2000):
        super().__init__()
        self.surrogate, self.lr, self.steps = surrogate, float(lr), int(steps)

    def training_step(self, batch, batch_idx):
        """One optimiser step on a batch ``(features, standardised outputs)``."""
        f, z = batch
        loss = torch.mean((self.surrogate.net(f) - z) ** 2)
        self.log("train_loss", loss, prog_bar=False)
        return loss

    def configure_optimizers(self):
        """Adam with cosine annealing over ``steps``."""
        opt = torch.optim.Adam(self.surrogate.net.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(self.steps, 1), eta_min=0.05 * self.lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def train_surrogate(x: torch.Tensor, y: torch.Tensor, *, projection: torch.Tensor | None = None, hidden=(128, 128),
                    log_output: bool = False,
                    steps: int = 2000, batch_size: int = 128, lr: float = 2e-3, val_fraction: float = 0.1,
                    seed: int = 0, progress: bool = False) -> tuple[NeuralSurrogate, dict]:
    """Fit a :class:`NeuralSurrogate` to solver runs ``(x (N, *in), y (N, *out))`` with pytorch-lightning.

    A fraction ``val_fraction`` is held out; the card reports its relative error
    ``||y - y_hat|| / ||y||`` (median and 95th percentile over examples) and the RMS error per output.
    Returns ``(surrogate in eval mode, card)``.
    """
    if pl is None:  # pragma: no cover
        raise ImportError("train_surrogate needs pytorch-lightning")
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.shape[0] != y.shape[0] or x.shape[0] < 10:
        raise ForwardModelError(f"train_surrogate: need matching x and y with at least 10 examples, got {x.shape[0]} "
                                f"and {y.shape[0]}")
    if not (0 <= val_fraction < 1) or int(steps) < 1 or int(batch_size) < 1:
        raise ForwardModelError("train_surrogate: val_fraction must lie in [0, 1), steps and batch_size must be >= 1")
    if not (bool(torch.isfinite(x).all()) and bool(torch.isfinite(y).all())):
        raise ForwardModelError("train_surrogate: the training data contain NaN or Inf")
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(x.shape[0], generator=g)
    n_val = int(round(val_fraction * x.shape[0]))
    val, train = perm[:n_val], perm[n_val:]
    if log_output and not bool((y > 0).all()):
        raise ForwardModelError("train_surrogate: log_output needs positive outputs")
    model = NeuralSurrogate(x.shape[1:], y.shape[1:], hidden=hidden, projection=projection, log_output=log_output)
    xt, yt = x[train].reshape(len(train), -1).float(), y[train].reshape(len(train), -1).double()
    yt = (yt.log() if log_output else yt).float()
    model.offset.copy_(xt.mean(0))
    model.feature_scale.copy_(model.features(x[train]).std(0).clamp_min(1e-8))
    model.output_mean.copy_(yt.mean(0))
    model.output_std.copy_(yt.std(0).clamp_min(1e-12))
    feats = model.features(x[train]).detach()
    z = ((yt - model.output_mean) / model.output_std).detach()
    torch.manual_seed(int(seed))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(feats, z), batch_size=int(batch_size),
                                         shuffle=True, generator=torch.Generator().manual_seed(int(seed)))
    trainer = pl.Trainer(max_steps=int(steps), accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=progress, enable_model_summary=False, max_epochs=-1)
    trainer.fit(SurrogateModule(model, lr, int(steps)), loader)
    model.eval()
    card = {"format": _FORMAT, "examples": int(x.shape[0]), "train_examples": int(len(train)),
            "val_examples": int(n_val), "steps": int(steps), "batch_size": int(batch_size), "lr": float(lr),
            "seed": int(seed), "train_time_s": time.perf_counter() - t0, "hidden": list(model.hidden),
            "log_output": model.log_output}
    if n_val:
        with torch.no_grad():
            yv = y[val].reshape(n_val, -1).double()
            err = model(x[val]).reshape(n_val, -1).double() - yv
        rel = err.norm(dim=1) / yv.norm(dim=1).clamp_min(1e-30)
        card.update({"val_relative_error_median": float(rel.median()),
                     "val_relative_error_q95": float(rel.quantile(0.95)),
                     "val_rms_error": float(err.pow(2).mean().sqrt())})
    return model, card


def save_surrogate(surrogate: NeuralSurrogate, directory, card: dict | None = None, *, overwrite: bool = False) -> Path:
    """Write ``surrogate.safetensors`` (weights and buffers) and ``surrogate.json`` (architecture + ``card``)
    to ``directory``."""
    from safetensors.torch import save_file

    out = Path(directory)
    files = (out / "surrogate.safetensors", out / "surrogate.json")
    if any(f.exists() for f in files) and not overwrite:
        raise FileExistsError(f"{out} already holds a surrogate (pass overwrite=True / --overwrite to replace it)")
    out.mkdir(parents=True, exist_ok=True)
    meta = {"format": _FORMAT, "input_shape": list(surrogate.input_shape), "output_shape": list(surrogate.output_shape),
            "hidden": list(surrogate.hidden), "has_projection": bool(surrogate.projection.numel()),
            "log_output": surrogate.log_output,
            "card": card or {}}
    state = {k: v.detach().contiguous().cpu() for k, v in surrogate.state_dict().items()}
    tmp = out / ".surrogate.safetensors.tmp"
    save_file(state, str(tmp))
    tmp.replace(files[0])
    tmpj = out / ".surrogate.json.tmp"
    tmpj.write_text(json.dumps(meta, indent=2))
    tmpj.replace(files[1])
    return out


def load_surrogate(directory) -> NeuralSurrogate:
    """Read a surrogate written by :func:`save_surrogate` (safetensors only, never pickle); its card is ``.card``."""
    from safetensors.torch import load_file

    d = Path(directory)
    if not (d / "surrogate.json").is_file() or not (d / "surrogate.safetensors").is_file():
        raise FileNotFoundError(f"{d} is not a surrogate directory (surrogate.json + surrogate.safetensors)")
    try:
        meta = json.loads((d / "surrogate.json").read_text())
    except json.JSONDecodeError as e:
        raise ForwardModelError(f"{d / 'surrogate.json'} is not valid JSON ({e})") from None
    if meta.get("format") != _FORMAT:
        raise ForwardModelError(f"{d} was not written by save_surrogate (format {meta.get('format')!r})")
    state = load_file(str(d / "surrogate.safetensors"))
    proj = state["projection"] if meta.get("has_projection") else None
    model = NeuralSurrogate(meta["input_shape"], meta["output_shape"], hidden=meta["hidden"], projection=proj,
                            log_output=bool(meta.get("log_output", False)))
    model.load_state_dict(state)
    model.eval()
    model.card = meta.get("card", {})
    return model


class OffsetCorrected(ForwardModel):
    """``x -> F(x) + b``: a model plus a constant output offset (module docstring).

    Example::

        import torch
        from forward_models.darcy import DarcyFlow
        from forward_models.surrogate import OffsetCorrected, estimate_offset
        fine = DarcyFlow(16, sensors=3); coarse = fine.coarse(2)
        x = fine.example_input(32, seed=0)
        corrected = OffsetCorrected(coarse, estimate_offset(fine, coarse, x))
    """

    def __init__(self, model: ForwardModel, offset: torch.Tensor):
        super().__init__()
        if not isinstance(model, ForwardModel):
            raise TypeError(f"OffsetCorrected: model must be a ForwardModel, got {type(model).__name__}")
        offset = torch.as_tensor(offset, dtype=torch.float64)
        if tuple(offset.shape) != tuple(model.output_shape):
            raise ForwardModelError(f"OffsetCorrected: offset must have shape {tuple(model.output_shape)}, got "
                                    f"{tuple(offset.shape)}")
        self.model = model
        self.input_shape, self.output_shape = model.input_shape, model.output_shape
        self.differentiable = model.differentiable
        self.register_buffer("offset", offset)

    def forward(self, x):
        """``F(x) + b``."""
        y = self.model(x)
        return y + self.offset.to(y.dtype)

    def config(self):
        """The wrapped model's configuration and the offset's norm."""
        return {**super().config(), "class": "OffsetCorrected", "model": self.model.config(),
                "offset_norm": float(self.offset.norm())}


def estimate_offset(fine: ForwardModel, coarse: ForwardModel, x: torch.Tensor) -> torch.Tensor:
    """``mean_i [F_fine(x_i) - F_coarse(x_i)]`` over a batch of (prior) draws ``x``; float64, one output's shape."""
    check_batch(x, fine.input_shape, "input")
    with torch.no_grad():
        return (fine(x).double() - coarse(x).double()).mean(0)
