"""Semi-blind ``gibbs`` output: an ``observed_data`` group like every calibration output, and with one chain
"R-hat needs >= 2 chains" instead of a NaN R-hat (no ArviZ shape warning either)."""

from __future__ import annotations

import math
import warnings

import arviz as az
import numpy as np
import pytest

from forward_models import MatrixOperator
from inverse.calibration import gaussian_field_step, gibbs, linear_gaussian_log_likelihood
from inverse.calibration.core import diagnostics_attrs
from inverse.calibration.diagnostics import RHAT_NEEDS_CHAINS, format_summary, summary
from tests.inverse.test_calibration_gibbs import SIGMA_PRIOR, problem


@pytest.fixture(scope="module")
def one_chain():
    A, prior, y = problem()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        idata = gibbs(gaussian_field_step(prior, MatrixOperator(A)), linear_gaussian_log_likelihood(A),
                      {"sigma_y": SIGMA_PRIOR}, y, num_chains=1, num_warmup=5, num_samples=20, seed=3)
    return idata, y, caught


def test_gibbs_has_observed_data(one_chain, tmp_path):
    idata, y, _ = one_chain
    assert "observed_data" in idata.groups()
    np.testing.assert_array_equal(idata.observed_data["y"].values, y)
    assert idata.observed_data["y"].dims == ("obs_dim_0",)
    idata.to_netcdf(tmp_path / "g.nc")
    back = az.from_netcdf(tmp_path / "g.nc")
    np.testing.assert_array_equal(back.observed_data["y"].values, y)


def test_one_chain_says_rhat_needs_two_chains(one_chain, capfd):
    idata, _, caught = one_chain
    attrs = idata.posterior.attrs
    assert "max_rhat" not in attrs and attrs["max_rhat_note"] == RHAT_NEEDS_CHAINS
    assert not any(isinstance(v, float) and math.isnan(v) for v in attrs.values()), attrs
    assert not [w for w in caught if "chain" in str(w.message).lower()], [str(w.message) for w in caught]
    capfd.readouterr()
    text = format_summary(idata)
    err = capfd.readouterr().err
    assert RHAT_NEEDS_CHAINS in text and "nan" not in text.lower(), text
    assert "Shape validation" not in err, err
    assert "r_hat" not in summary(idata).columns


def _fake(chains: int) -> az.InferenceData:
    rng = np.random.default_rng(0)
    return az.from_dict(posterior={"a": rng.normal(size=(chains, 50)), "b": rng.normal(size=(chains, 50))},
                        sample_stats={"diverging": np.zeros((chains, 50), bool)})


def test_summaries_with_two_chains_keep_rhat():
    idata = _fake(2)
    assert "max R-hat" in format_summary(idata) and "r_hat" in summary(idata).columns
    attrs = diagnostics_attrs(idata, ["a", "b"])
    assert math.isfinite(attrs["max_rhat"]) and "max_rhat_note" not in attrs


def test_diagnostics_attrs_one_chain_has_no_nan():
    attrs = diagnostics_attrs(_fake(1), ["a", "b"])
    assert attrs["max_rhat_note"] == RHAT_NEEDS_CHAINS and "max_rhat" not in attrs
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in attrs.values())
