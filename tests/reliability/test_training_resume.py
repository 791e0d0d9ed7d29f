"""Prior training resumes exactly: a run stopped mid-epoch and resumed ends with the weights of an
uninterrupted run, bit for bit (CPU, one process); checkpoints load with ``weights_only=True``."""

import json
import warnings

import torch
from safetensors.torch import load_file

from priors.training import SeededBatchSampler, train_prior

warnings.filterwarnings("ignore", module="pytorch_lightning")
warnings.filterwarnings("ignore", module="lightning_fabric")


def _data(n=16, size=8):
    g = torch.Generator().manual_seed(0)
    return 0.5 * torch.randn(n, 1, size, size, generator=g)


def _weights(directory):
    return load_file(str(directory / "diffusion_pytorch_model.safetensors"))


def test_seeded_batches_depend_only_on_seed_epoch_and_start():
    s = SeededBatchSampler(10, 3, seed=5)  # 3 batches an epoch
    full = [b for _ in range(3) for b in s]
    assert full[:3] != full[3:6] and sorted(sum(full[:3], [])) == sorted(set(sum(full[:3], [])))
    assert list(SeededBatchSampler(10, 3, seed=5, start=4)) + list(SeededBatchSampler(10, 3, seed=5, start=6)) \
        == full[4:9]
    assert list(SeededBatchSampler(10, 3, seed=6)) != full[:3]


def test_training_resumed_mid_epoch_is_bit_identical(tmp_path):
    data = _data()  # 16 examples in batches of 4: 4 steps an epoch, so step 3 is mid-epoch
    kw = dict(batch_size=4, widths=(8, 8), checkpoint_every=3, seed=2)
    train_prior(data, tmp_path / "full", steps=6, **kw)
    train_prior(data, tmp_path / "cut", steps=3, **kw)  # stands for a run killed after its step-3 checkpoint
    ckpt = tmp_path / "cut-work" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True, map_location="cpu")  # no pickle of arbitrary objects
    assert state["global_step"] == 3
    train_prior(data, tmp_path / "cut", steps=6, resume=True, overwrite=True, **kw)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # and the same seed gives the same weights again from scratch
    train_prior(data, tmp_path / "again", steps=6, **kw)
    c = _weights(tmp_path / "again")
    assert all(torch.equal(a[k], c[k]) for k in a)
    card = json.loads((tmp_path / "again" / "prior.json").read_text())  # the card records the seed
    assert card["training"]["seed"] == 2 and card["training"]["steps"] == 6
