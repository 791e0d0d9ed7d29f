"""Posterior summaries (weighted and unweighted) and the exact NetCDF round trip."""

import numpy as np
import pytest
import torch

from samplers import Posterior, open_posterior
from samplers.atomic import OutputExistsError

F64 = torch.float64


def _posterior(weighted=True, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    samples = torch.randn(50, 1, 3, 4, generator=g).to(dtype)
    lw = torch.randn(50, generator=g, dtype=F64) if weighted else None
    return Posterior(samples, lw, diagnostics={"nfe": 1000, "ess": [50.0, 31.5], "note": "x"},
                     config={"sampler": {"class": "DPS", "zeta": 0.3}, "seed": 7},
                     truth=torch.zeros(1, 3, 4, dtype=dtype), coords={"x": np.arange(4) * 10.0}, units="m/s")


@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_netcdf_round_trip_is_exact(tmp_path, weighted, dtype):
    post = _posterior(weighted, dtype)
    path = post.to_netcdf(tmp_path / "p.nc")
    back = open_posterior(path)
    assert back.samples.dtype == dtype and torch.equal(back.samples, post.samples)
    assert (back.log_weights is None) == (not weighted)
    if weighted:
        assert torch.equal(back.log_weights, post.log_weights)
    assert torch.equal(back.truth, post.truth)
    assert back.diagnostics == post.diagnostics and back.config == post.config
    assert back.dims == ("channel", "y", "x") and back.units == "m/s"
    np.testing.assert_array_equal(back.coords["x"], post.coords["x"])
    assert torch.equal(back.mean(), post.mean()) and torch.equal(back.quantile(0.9), post.quantile(0.9))


def test_weighted_summaries_match_hand_computation():
    x = torch.tensor([[0.0], [1.0], [3.0]], dtype=F64)
    w = torch.tensor([0.5, 0.25, 0.25], dtype=F64)
    post = Posterior(x, torch.log(w))
    m = 0.25 + 0.75
    assert float(post.mean()) == pytest.approx(m)
    var = float((w * (x[:, 0] - m) ** 2).sum()) / (1 - float((w**2).sum()))
    assert float(post.var()) == pytest.approx(var)
    assert post.ess() == pytest.approx(1 / 0.375)
    # mid-point weighted CDF positions: 0.25 at 0, 0.625 at 1, 0.875 at 3
    assert float(post.quantile(0.25)) == pytest.approx(0.0)
    assert float(post.quantile(0.75)) == pytest.approx(2.0)


def test_unweighted_summaries_are_torch_defaults():
    x = torch.randn(40, 5, dtype=F64)
    post = Posterior(x)
    torch.testing.assert_close(post.mean(), x.mean(0))
    torch.testing.assert_close(post.std(), x.std(0))
    torch.testing.assert_close(post.quantile([0.1, 0.9]), torch.quantile(x, torch.tensor([0.1, 0.9], dtype=F64), dim=0))


def test_no_silent_overwrite_and_no_partial_file(tmp_path):
    post = _posterior()
    path = post.to_netcdf(tmp_path / "p.nc")
    with pytest.raises(OutputExistsError, match="already exists"):
        post.to_netcdf(path)
    post.to_netcdf(path, overwrite=True)

    class Boom(Exception):
        pass

    bad = _posterior()
    bad.to_xarray = lambda: (_ for _ in ()).throw(Boom())  # fails before anything is written
    with pytest.raises(Boom):
        bad.to_netcdf(tmp_path / "q.nc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.nc"]


def test_bad_files_and_bad_posteriors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_posterior(tmp_path / "missing.nc")
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not a netcdf file")
    with pytest.raises(ValueError, match="not a readable NetCDF"):
        open_posterior(junk)
    with pytest.raises(ValueError, match="collapsed"):
        Posterior(torch.zeros(3, 2), torch.full((3,), float("nan")))
    with pytest.raises(ValueError, match="log_weights must have shape"):
        Posterior(torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="quantiles"):
        Posterior(torch.zeros(3, 2)).quantile(1.5)
