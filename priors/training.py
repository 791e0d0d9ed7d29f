"""Training network priors with pytorch-lightning: EDM denoisers and flow-matching velocity fields.

EDM (Karras et al. 2022, section 5 and Table 1): noise levels ``ln sigma ~ N(P_mean, P_std^2)``
(-1.2, 1.2), loss ``lambda(sigma) ||D(x0 + sigma n, sigma) - x0||^2`` with
``lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2``, the preconditioned network of
:class:`priors.EDMPrior`. Flow matching (Lipman et al. 2023; Liu et al. 2023): ``t ~ U(0, 1)``,
``x_t = (1 - t) x0 + t eps``, loss ``||v(x_t, t) - (eps - x0)||^2``. Both keep an exponential moving
average (EMA) of the weights, which is what gets exported. Data are model-space tensors
``(N, C, H, W)``; building them from our generators is the caller's job (``inverse train-prior``).
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from priors.edm import EDMPrior, edm_coefficients
from priors.flow import TIME_SCALE, FlowMatchingPrior
from priors.loading import save_prior
from priors.normalisation import Normalisation

__all__ = ["build_unet", "EDMDenoiserModule", "FlowMatchingModule", "TensorDataModule", "train_prior"]


def build_unet(size: int, channels: int = 1, widths=(32, 64, 64), layers_per_block: int = 1, attention: bool = False):
    """A small diffusers ``UNet2DModel`` (positional time embedding; attention in the lowest block if asked)."""
    from diffusers import UNet2DModel

    widths = tuple(int(w) for w in widths)
    if size % (2 ** (len(widths) - 1)):
        raise ValueError(f"image size {size} must be divisible by 2^{len(widths) - 1} for {len(widths)} UNet levels")
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

    def __init__(self, unet_config: dict, lr: float, ema_decay: float, warmup: int):
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

    def on_train_batch_end(self, outputs, batch, batch_idx):
        decay = self.hparams.ema_decay
        with torch.no_grad():
            for pe, p in zip(self.ema.parameters(), self.net.parameters()):
                pe.lerp_(p, 1.0 - decay)

    def _log_loss(self, loss):
        if not bool(torch.isfinite(loss)):
            raise FloatingPointError(f"training loss became {float(loss)} at step {self.global_step}")
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False)


class EDMDenoiserModule(_EMAModule):
    """EDM denoiser training (module docstring)."""

    def __init__(self, unet_config: dict, sigma_data: float = 0.5, p_mean: float = -1.2, p_std: float = 1.2,
                 lr: float = 2e-4, ema_decay: float = 0.999, warmup: int = 200):
        super().__init__(unet_config, lr, ema_decay, warmup)

    def denoise(self, net, x, sigma):
        """The EDM-preconditioned denoiser with network ``net``."""
        c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, self.hparams.sigma_data)
        v = (-1, 1, 1, 1)
        return c_skip.reshape(v) * x + c_out.reshape(v) * net(c_in.reshape(v) * x, c_noise).sample

    def training_step(self, batch, batch_idx):
        x0 = batch[0]
        sigma = torch.exp(self.hparams.p_mean + self.hparams.p_std * torch.randn(len(x0), device=x0.device))
        n = torch.randn_like(x0)
        sd = self.hparams.sigma_data
        weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
        err = (self.denoise(self.net, x0 + sigma.reshape(-1, 1, 1, 1) * n, sigma) - x0) ** 2
        loss = (weight * err.flatten(1).mean(1)).mean()
        self._log_loss(loss)
        return loss


class FlowMatchingModule(_EMAModule):
    """Flow-matching velocity training (module docstring)."""

    def __init__(self, unet_config: dict, lr: float = 2e-4, ema_decay: float = 0.999, warmup: int = 200):
        super().__init__(unet_config, lr, ema_decay, warmup)

    def training_step(self, batch, batch_idx):
        x0 = batch[0]
        t = torch.rand(len(x0), device=x0.device)
        eps = torch.randn_like(x0)
        x_t = (1 - t).reshape(-1, 1, 1, 1) * x0 + t.reshape(-1, 1, 1, 1) * eps
        loss = ((self.net(x_t, TIME_SCALE * t).sample - (eps - x0)) ** 2).mean()
        self._log_loss(loss)
        return loss


class TensorDataModule(pl.LightningDataModule):
    """Shuffled mini-batches of a model-space tensor ``(N, C, H, W)`` (seeded)."""

    def __init__(self, data: torch.Tensor, batch_size: int = 16, seed: int = 0):
        super().__init__()
        if data.ndim != 4 or len(data) < 1:
            raise ValueError(f"training data must have shape (N, C, H, W), got {tuple(data.shape)}")
        if not bool(torch.isfinite(data).all()):
            raise ValueError("training data contain NaN or Inf")
        self.data, self.batch_size, self.seed = data.float(), int(batch_size), int(seed)

    def train_dataloader(self):
        g = torch.Generator().manual_seed(self.seed)
        return DataLoader(TensorDataset(self.data), batch_size=self.batch_size, shuffle=True, drop_last=True,
                          generator=g, num_workers=0)


def train_prior(data: torch.Tensor, out_dir, *, kind: str = "edm", steps: int = 1000, batch_size: int = 16,
                widths=(32, 64, 64), layers_per_block: int = 1, lr: float = 2e-4, seed: int = 0,
                normalisation: Normalisation | None = None, card: dict | None = None, resume: bool = False,
                checkpoint_every: int = 200, devices: int = 1, num_nodes: int = 1, strategy: str = "auto",
                accelerator: str = "cpu", overwrite: bool = False, progress: bool = False) -> Path:
    """Train an EDM or flow-matching prior on ``data`` and export it (diffusers layout + card) to ``out_dir``.

    Lightning checkpoints and CSV logs go to ``out_dir.with_name(out_dir.name + "-work")``; ``resume``
    continues from its ``last.ckpt``. Returns the exported prior directory.
    """
    if kind not in ("edm", "flow"):
        raise ValueError(f"unknown prior kind {kind!r}; expected 'edm' or 'flow'")
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists (pass overwrite=True / --overwrite to replace it)")
    work = out_dir.with_name(out_dir.name + "-work")
    last = work / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {last}")
    pl.seed_everything(seed, workers=True, verbose=False)
    size = data.shape[-1]
    unet_config = dict(build_unet(size, data.shape[1], widths, layers_per_block).config)
    module = (EDMDenoiserModule(unet_config, lr=lr) if kind == "edm" else FlowMatchingModule(unet_config, lr=lr))
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=work / "checkpoints", save_last=True, every_n_train_steps=checkpoint_every,
                                        save_top_k=0)
    logger = pl.loggers.CSVLogger(work, name="logs")
    trainer = pl.Trainer(max_steps=steps, accelerator=accelerator, devices=devices, num_nodes=num_nodes,
                         strategy=strategy, callbacks=[ckpt], logger=logger, enable_progress_bar=progress,
                         enable_model_summary=False, log_every_n_steps=10, deterministic=False)
    t0 = time.time()
    trainer.fit(module, datamodule=TensorDataModule(data, batch_size, seed), ckpt_path=str(last) if resume else None)
    train_time = time.time() - t0
    if trainer.global_rank != 0:
        return out_dir
    final_loss = float(trainer.callback_metrics.get("train_loss", float("nan")))
    net = module.ema.eval().requires_grad_(False)
    shape = tuple(data.shape[1:])
    prior = EDMPrior(net, shape, normalisation=normalisation) if kind == "edm" else \
        FlowMatchingPrior(net, shape, normalisation=normalisation)
    n_params = sum(p.numel() for p in net.parameters())
    full_card = {"kind": kind, "training": {"steps": int(trainer.global_step), "batch_size": batch_size, "lr": lr,
                                            "seed": seed, "final_loss": final_loss, "train_time_s": train_time,
                                            "num_train_examples": int(len(data)), "widths": list(widths),
                                            "layers_per_block": layers_per_block, "parameters": int(n_params),
                                            "resumed": bool(resume)},
                 **(card or {})}
    save_prior(prior, out_dir, full_card, overwrite=overwrite)
    (work / "card.json").write_text(json.dumps(full_card, indent=2))
    return out_dir
