"""Training network priors with pytorch-lightning: EDM denoisers and flow-matching velocity fields.

EDM (Karras et al. 2022, section 5 and Table 1): noise levels ``ln sigma ~ N(P_mean, P_std^2)``
(-1.2, 1.2), loss ``lambda(sigma) ||D(x0 + sigma n, sigma) - x0||^2`` with
``lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2``, the preconditioned network of
:class:`priors.EDMPrior`. Flow matching (Lipman et al. 2023; Liu et al. 2023): ``t ~ U(0, 1)``,
``x_t = (1 - t) x0 + t eps``, loss ``||v(x_t, t) - (eps - x0)||^2``. Both keep an exponential moving
average (EMA) of the weights, which is what gets exported. Data are model-space tensors
``(N, C, H, W)``; building them from our generators is the caller's job (``inverse train-prior``).

Resuming (``resume=True``) is exact: the noise of optimiser step ``k`` is drawn from a generator
seeded by ``(seed, k)`` only, the batch order of epoch ``e`` is a permutation seeded by ``(seed, e)``
only (:class:`SeededBatchSampler`), and the data module stores the step reached in every Lightning
checkpoint, so a run resumed from any checkpoint, mid-epoch included, draws the same batches and noise
as an uninterrupted one, and on the CPU ends with bit-identical weights. Checkpoints are read with
``torch.load(weights_only=True)``.

Several processes (``devices`` x ``num_nodes``, e.g. ``strategy="ddp"``) split the *same global batch*:
``batch_size`` is the global batch, each of the ``W`` ranks takes a contiguous slice of
``batch_size / W`` examples of it and the matching slice of the step's noise (drawn for the whole
global batch), and DDP averages the gradients. The mean of the per-rank mean losses is the
single-process loss, so ``W`` processes follow the single-process trajectory up to floating-point
reduction order (measured in ``docs/scaling.md``); a resume continues the same order.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from datetime import timedelta
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from priors.edm import EDMPrior, edm_coefficients
from priors.errors import PriorError
from priors.flow import TIME_SCALE, FlowMatchingPrior
from priors.loading import save_prior
from priors.network import network_call
from priors.normalisation import Normalisation

__all__ = ["build_unet", "EDMDenoiserModule", "FlowMatchingModule", "TensorDataModule", "SeededBatchSampler",
           "train_prior", "step_generator"]

_MIX = 0x9E3779B97F4A7C15  # odd 64-bit constant (golden ratio): spreads (seed, index) pairs over seeds


def _mix(*ints: int) -> int:
    h = 0
    for i in ints:
        h = (h * _MIX + int(i) + 1) % (2**63 - 1)
    return h


def step_generator(seed: int, step: int, rank: int = 0, device="cpu") -> torch.Generator:
    """The generator of optimiser step ``step``: seeded by ``(seed, step, rank)`` alone, so a resumed run
    draws the same noise as an uninterrupted one. Training uses ``rank=0`` on every process: the noise
    belongs to the global batch, of which each rank keeps its slice."""
    return torch.Generator(device=device).manual_seed(_mix(seed, step, rank))


def build_unet(size: int, channels: int = 1, widths=(32, 64, 64), layers_per_block: int = 1, attention: bool = False):
    """A small diffusers ``UNet2DModel`` (positional time embedding; attention in the lowest block if asked)."""
    from diffusers import UNet2DModel

    widths = tuple(int(w) for w in widths)
    if size % (2 ** (len(widths) - 1)):
        raise PriorError(f"image size {size} must be divisible by 2^{len(widths) - 1} for {len(widths)} UNet levels")
    down = ["DownBlock2D"] * len(widths)
    up = ["UpBlock2D"] * len(widths)
    if attention:
        down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
    groups = math.gcd(*widths, 8)
    return UNet2DModel(sample_size=size, in_channels=channels, out_channels=channels, block_out_channels=widths,
                       down_block_types=tuple(down), up_block_types=tuple(up), layers_per_block=layers_per_block,
                       norm_num_groups=groups, add_attention=attention)


class _EMAModule(pl.LightningModule):
    """Shared pieces: the network, its EMA copy (saved in checkpoints), Adam with warm-up."""

    def __init__(self, unet_config: dict, lr: float, ema_decay: float, warmup: int, seed: int = 0):
        super().__init__()
        from diffusers import UNet2DModel

        self.save_hyperparameters()
        self.net = UNet2DModel.from_config(unet_config)
        self.ema = copy.deepcopy(self.net).requires_grad_(False)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr)
        warm = max(1, int(self.hparams.warmup))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warm))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def optimizer_step(self, *args, **kwargs):
        """The optimiser step, then the EMA update: both happen before any callback's ``on_train_batch_end``,
        so a checkpoint written at the end of a step holds the EMA of that step (exact resume)."""
        super().optimizer_step(*args, **kwargs)
        self._update_ema()

    def _update_ema(self):
        decay = self.hparams.ema_decay
        with torch.no_grad():
            for pe, p in zip(self.ema.parameters(), self.net.parameters(), strict=False):
                pe.lerp_(p, 1.0 - decay)

    def _generator(self, device) -> torch.Generator:
        """This step's generator (:func:`step_generator`), the same on every rank."""
        return step_generator(self.hparams.get("seed", 0), self.global_step, 0, device)

    def _draw(self, draw, x0: torch.Tensor, shape: tuple, generator: torch.Generator) -> torch.Tensor:
        """``draw`` (``torch.randn`` / ``torch.rand``) for the whole global batch, then this rank's slice.

        On one process this is exactly ``draw((B, *shape))``; with ``W`` ranks of ``B`` examples each,
        rank ``r`` keeps rows ``r B .. (r + 1) B`` of a ``(W B, *shape)`` draw, the rows its examples
        have in the global batch (:class:`SeededBatchSampler`).
        """
        b = len(x0)
        world, rank = self._world()
        full = draw((world * b, *shape), device=x0.device, dtype=x0.dtype, generator=generator)
        return full[rank * b:(rank + 1) * b]

    def _world(self) -> tuple[int, int]:
        trainer = getattr(self, "_trainer", None)
        return (int(trainer.world_size), int(trainer.global_rank)) if trainer is not None else (1, 0)

    def _log_loss(self, loss):
        if not bool(torch.isfinite(loss)):
            raise FloatingPointError(f"training loss became {float(loss)} at step {self.global_step}")
        # the mean over ranks is the loss of the global batch (costs one all-reduce per step under DDP)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False, sync_dist=self._world()[0] > 1)


class EDMDenoiserModule(_EMAModule):
    """EDM denoiser training (module docstring)."""

    def __init__(self, unet_config: dict, sigma_data: float = 0.5, p_mean: float = -1.2, p_std: float = 1.2,
                 lr: float = 2e-4, ema_decay: float = 0.999, warmup: int = 200, seed: int = 0):
        super().__init__(unet_config, lr, ema_decay, warmup, seed)

    def denoise(self, net, x, sigma):
        """The EDM-preconditioned denoiser with network ``net``."""
        c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, self.hparams.sigma_data)
        v = (-1, 1, 1, 1)
        return c_skip.reshape(v) * x + c_out.reshape(v) * network_call(net, c_in.reshape(v) * x, c_noise)

    def training_step(self, batch, batch_idx):
        x0 = batch[0]
        g = self._generator(x0.device)
        z = self._draw(torch.randn, x0, (), g)
        sigma = torch.exp(self.hparams.p_mean + self.hparams.p_std * z)
        n = self._draw(torch.randn, x0, tuple(x0.shape[1:]), g)
        sd = self.hparams.sigma_data
        weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
        err = (self.denoise(self.net, x0 + sigma.reshape(-1, 1, 1, 1) * n, sigma) - x0) ** 2
        loss = (weight * err.flatten(1).mean(1)).mean()
        self._log_loss(loss)
        return loss


class FlowMatchingModule(_EMAModule):
    """Flow-matching velocity training (module docstring)."""

    def __init__(self, unet_config: dict, lr: float = 2e-4, ema_decay: float = 0.999, warmup: int = 200,
                 seed: int = 0):
        super().__init__(unet_config, lr, ema_decay, warmup, seed)

    def training_step(self, batch, batch_idx):
        x0 = batch[0]
        g = self._generator(x0.device)
        t = self._draw(torch.rand, x0, (), g)
        eps = self._draw(torch.randn, x0, tuple(x0.shape[1:]), g)
        x_t = (1 - t).reshape(-1, 1, 1, 1) * x0 + t.reshape(-1, 1, 1, 1) * eps
        loss = ((network_call(self.net, x_t, TIME_SCALE * t) - (eps - x0)) ** 2).mean()
        self._log_loss(loss)
        return loss


class SeededBatchSampler(torch.utils.data.Sampler):
    """Mini-batches (``drop_last``) of a permutation seeded by ``(seed, epoch)`` only, starting at any step.

    ``start`` is a global batch index (an optimiser step): the first iteration yields the rest of
    epoch ``start // len(self)``, each later iteration a whole next epoch. With ``num_replicas`` ranks,
    ``batch_size`` is the global batch and rank ``rank`` yields its contiguous slice of
    ``batch_size / num_replicas`` indices of every global batch, so the ranks together see exactly the
    single-process batches (a distributed sampler of our own order, in place of Lightning's).
    """

    def __init__(self, num_examples: int, batch_size: int, seed: int = 0, start: int = 0, num_replicas: int = 1,
                 rank: int = 0):
        if num_examples < batch_size:
            raise PriorError(f"batch size {batch_size} exceeds the {num_examples} training examples")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise PriorError(f"rank {rank} is not in 0..{num_replicas - 1}")
        if batch_size % num_replicas:
            raise PriorError(f"the global batch size {batch_size} is not divisible by the {num_replicas} processes "
                             "(devices x nodes)")
        self.n, self.batch_size, self.seed, self.start = int(num_examples), int(batch_size), int(seed), int(start)
        self.local = self.batch_size // int(num_replicas)
        self.offset = int(rank) * self.local

    def __len__(self) -> int:
        return self.n // self.batch_size

    def __iter__(self):
        per = len(self)
        epoch, first = divmod(self.start, per)
        self.start = (epoch + 1) * per
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(_mix(self.seed, epoch)))
        for k in range(first, per):
            lo = k * self.batch_size + self.offset
            yield perm[lo:lo + self.local].tolist()


class TensorDataModule(pl.LightningDataModule):
    """Shuffled mini-batches of a model-space tensor ``(N, C, H, W)`` or a map-style dataset of ``(x,)`` items
    (seeded, resumable mid-epoch).

    A dataset (e.g. :class:`priors.user_data.ExampleDataset`) is read per batch, so data that do not fit in
    memory stream from disk; ``num_workers`` DataLoader processes read ahead. The batches come from
    :class:`SeededBatchSampler` (``batch_size`` global, split over the ranks under DDP), which depends only on
    the number of examples, so a tensor and a dataset of the same examples give the same batches. The step
    reached is stored in Lightning checkpoints (:meth:`state_dict`) so that a resumed run continues the same
    batch order. The trainer must not replace the sampler (``Trainer(use_distributed_sampler=False)``, as
    :func:`train_prior` does).
    """

    def __init__(self, data, batch_size: int = 16, seed: int = 0, num_workers: int = 0):
        super().__init__()
        if isinstance(data, torch.Tensor):
            if data.ndim != 4 or len(data) < 1:
                raise PriorError(f"training data must have shape (N, C, H, W), got {tuple(data.shape)}")
            if not bool(torch.isfinite(data).all()):
                raise PriorError("training data contain NaN or Inf")
            data = TensorDataset(data.float())
        elif len(data) < 1:
            raise PriorError("the training data set is empty")
        self.dataset, self.batch_size, self.seed = data, int(batch_size), int(seed)
        self.num_workers = int(num_workers)
        self._start = 0

    @property
    def data(self) -> torch.Tensor:
        """The training tensor (tensor data only)."""
        return self.dataset.tensors[0]

    def state_dict(self) -> dict:
        """The optimiser step reached (saved in every Lightning checkpoint)."""
        trainer = getattr(self, "trainer", None)
        return {"global_step": int(trainer.global_step) if trainer is not None else 0}

    def load_state_dict(self, state: dict) -> None:
        """Continue the batch order at the stored step."""
        self._start = int(state.get("global_step", 0))

    def train_dataloader(self):
        """Seeded, resumable batches: this rank's slice of every global batch."""
        trainer = getattr(self, "trainer", None)
        world, rank = (int(trainer.world_size), int(trainer.global_rank)) if trainer is not None else (1, 0)
        sampler = SeededBatchSampler(len(self.dataset), self.batch_size, self.seed, self._start, world, rank)
        return DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)


class _RunTimer(pl.callbacks.Timer):
    """Lightning's ``Timer`` counting this run's fitting time only: a resumed run does not inherit the
    time elapsed before its checkpoint, so ``max_minutes`` bounds each chunk of a long training."""

    def load_state_dict(self, state_dict) -> None:  # noqa: D102 - the saved elapsed time is ignored on purpose
        return None


def _accelerator_name(trainer) -> str:
    """``"cpu"`` or ``"cuda: <device name>"``: where the run trained, for the model card."""
    root = getattr(trainer.strategy, "root_device", torch.device("cpu"))
    if root.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(root)}"
    return root.type


def _example_shape(data) -> tuple:
    """``(C, H, W)`` of one training example of a tensor ``(N, C, H, W)`` or a dataset of ``(x,)`` items."""
    if isinstance(data, torch.Tensor):
        return tuple(data.shape[1:])
    shape = getattr(data, "example_shape", None)
    return tuple(shape) if shape is not None else tuple(data[0][0].shape)


def _init_network(init, kind: str, channels: int):
    """The UNet of the prior ``init`` (a name or directory, :func:`priors.load_prior`) to fine-tune: same kind
    (EDM / flow) and channel count as the run asks, else :class:`PriorError`."""
    from priors.loading import load_prior

    prior = init if isinstance(init, (EDMPrior, FlowMatchingPrior)) else load_prior(init)
    if not isinstance(prior, (EDMPrior, FlowMatchingPrior)):
        raise PriorError(f"--init: {init} is a {type(prior).__name__}; only EDM and flow-matching priors are "
                         "fine-tuned")
    have = "edm" if isinstance(prior, EDMPrior) else "flow"
    if have != kind:
        raise PriorError(f"--init: {init} is a {have} prior; train it with kind={have!r}, not {kind!r}")
    if int(prior.network.config.in_channels) != int(channels):
        raise PriorError(f"--init: {init} takes {prior.network.config.in_channels} channel(s), the data have "
                         f"{channels}")
    return prior.network


def _init_label(init) -> str:
    """The card's name for the prior a run fine-tuned: its name, or the path given."""
    if isinstance(init, (EDMPrior, FlowMatchingPrior)):
        return str(init.card.get("name", type(init).__name__))
    return str(init)


def train_prior(data, out_dir, *, kind: str = "edm", steps: int = 1000, batch_size: int = 16,
                widths=(32, 64, 64), layers_per_block: int = 1, lr: float = 2e-4, seed: int = 0,
                normalisation: Normalisation | None = None, card: dict | None = None, resume: bool = False,
                checkpoint_every: int = 200, devices: int = 1, num_nodes: int = 1, strategy: str = "auto",
                accelerator: str = "cpu", overwrite: bool = False, progress: bool = False,
                max_minutes: float | None = None, init=None, num_workers: int = 0) -> Path:
    """Train an EDM or flow-matching prior on ``data`` and export it (diffusers layout + card) to ``out_dir``.

    ``data`` is a model-space tensor ``(N, C, H, W)`` or a map-style dataset of ``(x,)`` items read per batch
    (:class:`priors.user_data.ExampleDataset`, streamed from disk; ``num_workers`` DataLoader processes).

    ``init`` (a prior's name or directory, or a loaded EDM / flow prior) fine-tunes that prior: its network's
    architecture and weights (the EMA copy starts from them too) replace ``widths`` and ``layers_per_block``;
    a resumed run continues from the checkpoint as usual.

    Lightning checkpoints and CSV logs go to ``out_dir.with_name(out_dir.name + "-work")``; ``resume``
    continues from its ``last.ckpt``. Returns the exported prior directory.

    ``devices``, ``num_nodes``, ``strategy`` and ``accelerator`` go to ``pytorch_lightning.Trainer``
    unchanged (e.g. ``devices=2, strategy="ddp"``: two processes, gloo on the CPU, NCCL on GPUs);
    ``batch_size`` is the global batch, divided among the ``devices * num_nodes`` processes, so a
    multi-process run follows the single-process one (module docstring). Only rank 0 exports.

    ``max_minutes`` bounds this call's fitting time (a Lightning ``Timer``, not carried over by ``resume``):
    training stops at the first step past it and the prior is exported as trained so far; the card's
    ``training.steps`` is the number of optimiser steps actually done (a leased GPU for a fixed time, a
    chunk of a long run).

    Example::

        import torch
        from priors.training import train_prior
        train_prior(torch.randn(64, 1, 16, 16), "tiny-prior", steps=5, batch_size=8, widths=(8, 16))
    """
    if kind not in ("edm", "flow"):
        raise PriorError(f"unknown prior kind {kind!r}; expected 'edm' or 'flow'")
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists (pass overwrite=True / --overwrite to replace it)")
    work = out_dir.with_name(out_dir.name + "-work")
    last = work / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {last}")
    if isinstance(devices, int) and devices > 0 and batch_size % (devices * int(num_nodes)):
        raise PriorError(f"the global batch size {batch_size} must be divisible by devices x nodes = "
                         f"{devices * int(num_nodes)} processes")
    pl.seed_everything(seed, workers=True, verbose=False)
    shape = _example_shape(data)
    size = shape[-1]
    init_net = _init_network(init, kind, shape[0]) if init is not None else None
    if init_net is not None:
        widths = tuple(init_net.config.block_out_channels)
        layers_per_block = int(init_net.config.layers_per_block)
    unit = 2 ** (len(tuple(widths)) - 1)
    net_size = -(-size // unit) * unit  # a size the UNet's levels divide: padded by network_call if larger
    unet_config = (dict(init_net.config, sample_size=net_size) if init_net is not None
                   else dict(build_unet(net_size, shape[0], widths, layers_per_block).config))
    module = (EDMDenoiserModule(unet_config, lr=lr, seed=seed) if kind == "edm"
              else FlowMatchingModule(unet_config, lr=lr, seed=seed))
    if init_net is not None:
        module.net.load_state_dict(init_net.state_dict())
        module.ema.load_state_dict(init_net.state_dict())
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=work / "checkpoints", save_last=True,
                                        every_n_train_steps=checkpoint_every, save_top_k=0)
    logger = pl.loggers.CSVLogger(work, name="logs")
    if max_minutes is not None and not (0 < float(max_minutes) < float("inf")):
        raise PriorError(f"max_minutes must be positive and finite, got {max_minutes}")
    timer = [] if max_minutes is None else [_RunTimer(duration=timedelta(minutes=float(max_minutes)), interval="step")]
    trainer = pl.Trainer(max_steps=steps, accelerator=accelerator, devices=devices, num_nodes=num_nodes,
                         strategy=strategy, callbacks=[ckpt, *timer], logger=logger, enable_progress_bar=progress,
                         enable_model_summary=False, log_every_n_steps=10, deterministic=False,
                         use_distributed_sampler=False)  # SeededBatchSampler splits the global batch itself
    t0 = time.time()
    with warnings.catch_warnings():  # the batch order does resume mid-epoch (TensorDataModule.state_dict)
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
        trainer.fit(module, datamodule=TensorDataModule(data, batch_size, seed, num_workers),
                    ckpt_path=str(last) if resume else None, weights_only=True)
    train_time = time.time() - t0
    if trainer.global_rank != 0:
        return out_dir
    final_loss = float(trainer.callback_metrics.get("train_loss", float("nan")))
    net = module.ema.cpu().eval().requires_grad_(False)  # exported on the CPU, wherever it trained
    prior = EDMPrior(net, shape, normalisation=normalisation) if kind == "edm" else \
        FlowMatchingPrior(net, shape, normalisation=normalisation)
    n_params = sum(p.numel() for p in net.parameters())
    full_card = {"kind": kind, "training": {"steps": int(trainer.global_step), "batch_size": batch_size, "lr": lr,
                                            "seed": seed, "final_loss": final_loss, "train_time_s": train_time,
                                            "num_train_examples": int(len(data)), "widths": list(widths),
                                            "layers_per_block": layers_per_block, "parameters": int(n_params),
                                            **({"init": _init_label(init)} if init is not None else {}),
                                            "network_size": int(net_size),
                                            "resumed": bool(resume), "accelerator": _accelerator_name(trainer)},
                 **(card or {})}
    save_prior(prior, out_dir, full_card, overwrite=overwrite)
    return out_dir
