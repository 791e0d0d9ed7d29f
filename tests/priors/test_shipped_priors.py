"""Every shipped prior loads by name from any directory, carries a complete card, and denoises
held-out ground truths (the PSNR gain over the noisy input is asserted; the card's full quality
report comes from scripts/prior_quality.py)."""

import pytest
import torch

from inverse.datasets import make_dataset
from priors import load_prior, shipped_priors
from priors.quality import denoising_psnr

SHIPPED = sorted(shipped_priors())


def test_listing_has_cards():
    for name, card in shipped_priors().items():
        assert {"kind", "shape", "normalisation", "training", "data"} <= set(card), name


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_prior_loads_anywhere_and_denoises(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # loading by name must not depend on the working directory
    prior = load_prior(name)
    card = prior.card
    assert list(prior.shape) == card["shape"]
    data = card["data"]
    truths, norm, _ = make_dataset(data["dataset"], 16, data["size"], seed=1000)
    assert norm.to_dict() == card["normalisation"]
    rows = denoising_psnr(prior, truths, sigmas=(0.1, 0.5))
    for r in rows:
        assert r["psnr_prior"] > r["psnr_noisy"] + 2.0, r


def test_unknown_prior_name_suggests():
    if not SHIPPED:
        pytest.skip("no shipped prior yet")
    with pytest.raises(ValueError, match="did you mean"):
        load_prior(SHIPPED[0][:-1] + "x")
