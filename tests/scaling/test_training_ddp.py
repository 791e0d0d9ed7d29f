"""Prior training on 2 processes (DDP, gloo on the CPU) follows the single-process run with the same global batch.

Measured on the CI machine (docs/scaling.md): after 10 steps the logged loss agrees to ~1e-7 (relative), the
exported EMA weights to ~4e-7 (absolute), and the raw network's update ``w - w_init`` to ~1% of its norm
(Adam divides by ``sqrt(v)``, so float round-off in near-zero gradients is amplified into whole-``lr`` steps
on a few weights). The tolerances below are those numbers with a margin of 5-10.
"""

import json

import pytest
import pytorch_lightning as pl
import torch
from safetensors.torch import load_file

from priors.training import (
    EDMDenoiserModule,
    SeededBatchSampler,
    build_unet,
    train_prior,
)

from .conftest import run_inverse


def test_ranks_split_each_global_batch():
    """The ranks' slices of every step are the single-process batch, in order, with no overlap."""
    one = list(SeededBatchSampler(40, 8, seed=3, start=2))
    ranks = [list(SeededBatchSampler(40, 8, seed=3, start=2, num_replicas=2, rank=r)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(one)
    assert all(a + b == full for a, b, full in zip(ranks[0], ranks[1], one, strict=False))


def test_batch_not_divisible_by_processes_is_refused(tmp_path):
    with pytest.raises(ValueError, match="divisible"):
        SeededBatchSampler(40, 7, num_replicas=2, rank=0)
    with pytest.raises(ValueError, match="divisible"):
        train_prior(torch.zeros(16, 1, 8, 8), tmp_path / "p", batch_size=7, devices=2, strategy="ddp")


def _train(tmp_path, name, devices):
    args = ["train-prior", "--dataset", "gaussian-field", "--size", 16, "--num-examples", 64, "--widths", 8, 16,
            "--steps", 10, "--batch-size", 8, "--seed", 0, "--threads", 1, "--quiet", "--checkpoint-every", 1000,
            "--out", name, "--devices", devices]
    run_inverse(args + (["--strategy", "ddp"] if devices > 1 else []), tmp_path)
    out = tmp_path / name
    ckpt = torch.load(tmp_path / f"{name}-work" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return load_file(out / "diffusion_pytorch_model.safetensors"), ckpt, json.loads((out / "prior.json").read_text())


@pytest.mark.slow  # four subprocesses (two commands, two DDP ranks), ten training steps each
def test_two_processes_match_one(tmp_path):
    ema1, ck1, card1 = _train(tmp_path, "one", 1)
    ema2, ck2, card2 = _train(tmp_path, "two", 2)
    assert card1["training"]["steps"] == card2["training"]["steps"] == 10
    assert card2["training"]["final_loss"] == pytest.approx(card1["training"]["final_loss"], rel=1e-5)
    assert max(float((ema1[k] - ema2[k]).abs().max()) for k in ema1) < 5e-6
    pl.seed_everything(0, verbose=False)  # the initial weights, as train_prior builds them
    init = EDMDenoiserModule(dict(build_unet(16, 1, (8, 16)).config), seed=0).state_dict()
    keys = [k for k in ck1 if k.startswith("net.")]
    d1 = torch.cat([(ck1[k] - init[k]).flatten() for k in keys])
    d2 = torch.cat([(ck2[k] - init[k]).flatten() for k in keys])
    assert float(d1.norm()) > 0
    assert float((d1 - d2).norm() / d1.norm()) < 0.1
