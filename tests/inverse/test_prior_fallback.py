"""The generic-prior fallback of :func:`inverse.reconstruct` (``fallback=True``, ``--no-fallback``)."""

import math

import numpy as np
import pytest
import torch

from inverse.cli import main
from inverse.measurements import simulate
from inverse.reconstruction import FALLBACK_PRIOR, fallback_prior, reconstruct
from priors import load_prior


@pytest.fixture(scope="module")
def stripes():
    """A 64 x 64 CT measurement of vertical stripes, nothing like phantoms-64's ellipses."""
    x = np.zeros((1, 64, 64))
    x[..., ::8] = x[..., 1::8] = 1.0
    return simulate("ct", options={"angles": 30}, truth=x, seed=0)


def test_the_fallback_prior_reads_the_shipped_priors_units():
    fb = fallback_prior("phantoms-64")
    ref = load_prior("phantoms-64")
    assert FALLBACK_PRIOR["phantoms-64"] == "real-patches-64"
    assert (fb.normalisation.scale, fb.normalisation.offset) == (ref.normalisation.scale, ref.normalisation.offset)
    z = torch.linspace(-1, 1, 5)
    torch.testing.assert_close(fb.to_physical(z), ref.to_physical(z))


def test_a_mismatched_default_prior_tries_the_generic_one_and_keeps_the_better_fit(stripes):
    post = reconstruct(stripes, num_samples=2, seed=0, steps=6)
    fb = post.config.get("prior_fallback")
    assert fb is not None, post.diagnostics["warnings"]
    a, b = fb["misfit_default"], fb["misfit_fallback"]
    better = "real-patches-64" if abs(math.log(b)) < abs(math.log(a)) else "phantoms-64"
    assert fb["used"] == better
    assert post.diagnostics["misfit"] == pytest.approx(b if better == "real-patches-64" else a)
    text = " ".join(post.diagnostics["warnings"])
    assert ("tried automatically" in text) or ("explained the data no better" in text)
    alone = reconstruct(stripes, num_samples=2, seed=0, steps=6, fallback=False)
    assert "prior_fallback" not in alone.config and alone.diagnostics["prior_mismatch"]
    assert alone.diagnostics["misfit"] == pytest.approx(a)


def test_a_named_prior_is_never_replaced(stripes):
    post = reconstruct(stripes, "phantoms-64", num_samples=2, seed=0, steps=6)
    assert "prior_fallback" not in post.config


def test_no_fallback_on_the_command_line(stripes, tmp_path, capsys):
    y = stripes.to_netcdf(tmp_path / "y.nc")
    assert main(["reconstruct", str(y), "--steps", "6", "--num-samples", "2", "--out", str(tmp_path / "a.nc"),
                 "--quiet", "--no-fallback"]) == 0
    assert "tried automatically" not in capsys.readouterr().out
