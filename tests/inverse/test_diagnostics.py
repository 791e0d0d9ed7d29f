"""Posterior checks (inverse.diagnostics): misfit range, prior mismatch, collapsed ensembles, diverged samplers,
complex and non-finite inputs, NaN samples in figures, coordinates with units in posterior files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from forward_models import ForwardModelError, Gaussian, InverseProblem, MatrixOperator
from inverse.diagnostics import (
    MISFIT_FLOOR,
    MISFIT_HIGH,
    MISFIT_SPREAD_RATIO,
    check_posterior,
    diagnose,
    misfit_range,
    nominal_coverage,
    prior_data_range,
)
from priors import GaussianPrior
from samplers import Posterior, SamplerError

F64 = torch.float64


def _case(prior_mean=0.0, prior_std=1.0, *, seed=0, d=30, m=60, sigma=0.3, n=200):
    """A linear-Gaussian problem whose truth is drawn from N(0, I), and the exact posterior under the prior
    N(prior_mean, prior_std^2 I) (the right prior at the defaults)."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m, d, generator=g, dtype=F64) / math.sqrt(d)
    truth = torch.randn(d, generator=g, dtype=F64)
    problem = InverseProblem.simulate(MatrixOperator(A), Gaussian(sigma), truth, seed=seed + 1)
    prior = GaussianPrior(torch.full((d,), float(prior_mean), dtype=F64), std=prior_std)
    exact = prior.posterior(A, problem.y, sigma_y=sigma)
    post = Posterior(exact.sample(n, torch.Generator().manual_seed(seed + 2)))
    return problem, prior, post


def test_misfit_range_is_the_chi_square_quantile_range():
    lo, hi = misfit_range(2730)
    half = 2.326 * math.sqrt(2 / 2730) / 2  # normal approximation of sqrt(chi2_m / m)
    assert lo == pytest.approx(1 - half, abs=2e-3) and hi == pytest.approx(1 + half, abs=2e-3)
    assert nominal_coverage(8) == pytest.approx(0.7) and nominal_coverage(1) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_posterior_explains_the_data_without_warnings(seed):
    problem, prior, post = _case(seed=seed)
    d = diagnose(post, problem, prior=prior)
    assert d["warnings"] == []
    lo, hi = d["misfit_expected"]
    assert d["misfit"] <= hi  # the mean may sit below the range, never above it here
    assert lo <= d["misfit_samples"][1] <= hi * 1.05  # per-sample misfits follow the truth's chi-square law
    assert d["data_coverage_90"] >= 0.85
    assert d["coverage_90"] >= 0.75 and d["coverage_90_nominal"] == pytest.approx(nominal_coverage(200))
    assert 0.8 <= d["coverage_90_predictive"] <= 1.0  # exact draws: the prediction interval holds its level


def test_wrong_prior_warns_that_the_posterior_does_not_explain_the_data():
    problem, prior, post = _case(prior_mean=3.0, prior_std=0.01)
    d = diagnose(post, problem, prior=prior)
    assert d["misfit"] > max(MISFIT_FLOOR, d["misfit_expected"][1])
    text = " ".join(d["warnings"])
    assert "the posterior does not explain the data (misfit" in text and "the prior may not fit" in text
    assert "spread is far below its error against the data" in text
    assert "cover" in text  # pixel coverage against the known truth
    assert "prior ranges outside" not in text  # the samples sit where this prior puts them


def test_collapsed_ensemble_warns_on_pixel_coverage():
    problem, prior, post = _case()
    mean = post.mean()
    collapsed = Posterior(mean + 1e-6 * torch.randn(post.samples.shape, generator=torch.Generator().manual_seed(0),
                                                    dtype=F64))
    d = diagnose(collapsed, problem, prior=prior)
    assert d["coverage_90"] < 0.05
    assert any("its 90% pixel intervals cover" in w for w in d["warnings"])
    assert not any("does not explain" in w for w in d["warnings"])  # the mean still fits the data


def test_collapsed_biased_ensemble_warns_on_data_coverage_without_truth():
    problem, prior, post = _case()
    biased = Posterior(post.samples[:1].repeat(8, 1) + 0.8)  # EnKG-like: one member, off the data
    d = check_posterior(biased, problem.forward_model, problem.y, problem.noise, prior_range=prior_data_range(prior))
    assert d["data_coverage_90"] < 0.5
    assert any("spread is far below its error against the data" in w for w in d["warnings"])
    assert "coverage_90" not in d  # no truth given


def test_weighted_posterior_uses_its_weights():
    problem, prior, post = _case(n=64)
    lw = torch.full((64,), -1e9, dtype=F64)
    lw[0] = 0.0  # all the weight on one particle: an effective sample size of 1
    d = diagnose(Posterior(post.samples, lw), problem, prior=prior)
    assert d["coverage_90_nominal"] == pytest.approx(0.0, abs=1e-6)
    assert d["misfit_samples"][0] == pytest.approx(d["misfit_samples"][2])  # one particle carries the law


def test_samples_far_outside_the_prior_range_warn_then_raise():
    problem, prior, post = _case()
    lo, hi = prior_data_range(prior)
    assert (lo, hi) == pytest.approx((-3.0, 3.0))
    far = Posterior(post.samples + 100.0)  # ~16 prior ranges out: a warning
    d = diagnose(far, problem, prior=prior)
    assert d["prior_ranges_outside"] > 10
    assert any("prior ranges outside the prior's data range" in w for w in d["warnings"])
    with pytest.raises(SamplerError, match="the sampler diverged and the result is meaningless"):
        diagnose(Posterior(post.samples - 3e4), problem, prior=prior)  # like DPS with zeta=1e6
    nan = post.samples.clone()
    nan[3, 0] = float("nan")
    with pytest.raises(SamplerError, match="1 of 200 posterior samples contain NaN or Inf"):
        diagnose(Posterior(nan), problem, prior=prior)


@pytest.mark.parametrize("how", ["tiny sigma", "huge y"])
def test_misfit_orders_of_magnitude_above_the_noise_is_named(how):
    problem, prior, post = _case()
    noise = Gaussian(1e-30) if how == "tiny sigma" else problem.noise
    y = problem.y * (1e30 if how == "huge y" else 1.0)
    d = check_posterior(post, problem.forward_model, y, noise, prior_range=prior_data_range(prior))
    assert d["misfit"] > 1e20
    assert any("orders of magnitude above the noise level" in w and "units of y" in w for w in d["warnings"])


def test_complex_measurement_and_non_finite_truth_are_refused():
    op = MatrixOperator(torch.eye(3, dtype=F64))
    with pytest.raises(ForwardModelError, match="the measurement is complex"):
        InverseProblem(op, torch.ones(3, dtype=torch.complex128), Gaussian(0.1))
    with pytest.raises(ForwardModelError, match="1 NaN or Inf"):
        InverseProblem(op, torch.ones(3, dtype=F64), Gaussian(0.1), truth=torch.tensor([0.0, float("nan"), 1.0]))

    class ComplexOut(MatrixOperator):
        complex_output = True

    assert InverseProblem(ComplexOut(torch.eye(3, dtype=F64)), torch.ones(3, dtype=torch.complex128),
                          Gaussian(0.1)).y.is_complex()


def test_reconstruct_refuses_complex_y_before_sampling():
    import inverse
    from inverse.measurements import simulate

    m = simulate("ct", options={"angles": 8}, seed=0)
    m.y = m.y.to(torch.complex128)
    with pytest.raises(ForwardModelError, match="the measurement is complex"):
        inverse.reconstruct(m, prior=GaussianPrior(torch.zeros(1, 64, 64), std=0.3, dtype=torch.float32),
                            num_samples=2, steps=1)


def test_summary_skips_errors_against_a_nan_truth_with_a_message():
    from inverse.measurements import simulate
    from inverse.reconstruction import format_summary, summarize

    m = simulate("ct", options={"angles": 8}, seed=0)
    post = Posterior((m.truth[None] + 0.01 * torch.randn(4, *m.truth.shape, generator=torch.Generator()
                                                          .manual_seed(0), dtype=F64)).float())
    m.truth = m.truth.clone()
    m.truth[0, 0, 0] = float("nan")
    post.diagnostics.update(summarize(post, m))
    assert "relative_l2" not in post.diagnostics and "coverage_90" not in post.diagnostics
    text = format_summary(post)
    assert "warning: the truth contains NaN or Inf: errors against it are not computed" in text
    assert "relative L2 nan" not in text and "misfit per sample: median" in text


def test_summary_of_a_good_fit_states_the_expected_range_and_no_warning():
    from inverse.measurements import simulate
    from inverse.reconstruction import format_summary, summarize

    m = simulate("ct", options={"angles": 8}, seed=0)
    post = Posterior(m.truth[None].repeat(4, 1, 1, 1) + 0.02 * torch.randn(4, *m.truth.shape, dtype=F64,
                                                                            generator=torch.Generator().manual_seed(1)))
    post.diagnostics.update(summarize(post, m))
    text = format_summary(post)
    lo, hi = post.diagnostics["misfit_expected"]
    assert f"expected {lo:.2f}-{hi:.2f} under the noise model" in text
    assert "warning" not in text


def test_image_figure_names_nan_samples():
    from inverse.figures import plot_image_posterior

    s = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    s[1, 0, 3, 3] = float("nan")
    fig = plot_image_posterior(Posterior(s, truth=torch.rand(1, 16, 16)))
    assert "1 of 4 samples contain NaN or Inf (1 pixels)" in fig._suptitle.get_text()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_posterior_file_has_a_coordinate_with_units_for_every_dimension(tmp_path):
    from samplers import open_posterior

    post = Posterior(torch.zeros(3, 1, 4, 5), coords={"x": np.arange(5) * 10.0},
                     coord_attrs={"x": {"units": "m", "long_name": "x position"}},
                     extras={"measurement_image": torch.zeros(2, 7)})
    ds = post.to_xarray()
    for dim in ds.dims:
        assert dim in ds.coords and ds.coords[dim].attrs.get("units"), dim
    assert ds.coords["x"].attrs["units"] == "m" and ds.coords["y"].attrs["units"] == "pixel"
    assert ds.coords["channel"].attrs["units"] == "1" and ds.coords["sample"].attrs["units"] == "1"
    post.to_netcdf(tmp_path / "p.nc")
    back = open_posterior(tmp_path / "p.nc")
    assert back.coord_attrs["x"] == {"units": "m", "long_name": "x position"}
    np.testing.assert_array_equal(back.coords["x"], np.arange(5) * 10.0)
    assert set(back.coords) == {"channel", "y", "x"}  # the sample and extra indices are not sample coordinates
    # a file written before coordinates carried units still reads, and gains them when written again
    old = ds.drop_vars(list(ds.coords))
    old.to_netcdf(tmp_path / "old.nc", engine="h5netcdf")
    again = open_posterior(tmp_path / "old.nc")
    assert again.coords is None
    assert again.to_xarray().coords["y"].attrs["units"] == "pixel"
    np.testing.assert_array_equal(again.samples.numpy(), ds["samples"].values)


def test_collapsed_smc_weights_are_a_warning_of_the_summary():
    problem, prior, post = _case(n=16)
    post.diagnostics.update({"weight_collapse": True, "min_ess": 1.02})
    d = diagnose(post, problem, prior=prior)
    assert "the SMC weights collapsed (smallest ESS 1.02 of 16 particles): use more particles or steps" in d["warnings"]


@pytest.mark.parametrize("shift, spread, warns", [(1.2, 0.01, True), (1.2, 5.0, False), (4.0, 12.0, True)])
def test_a_misfit_the_ensemble_spread_accounts_for_is_not_a_mismatch(shift, spread, warns):
    """Mean misfit 1.5-2.5: a mismatch only when the ensemble's spread does not account for it; above MISFIT_HIGH
    always."""
    d, sigma = 400, 1.0
    problem = InverseProblem.simulate(MatrixOperator(torch.eye(d, dtype=F64)), Gaussian(sigma),
                                      torch.zeros(d, dtype=F64), seed=3)
    z = torch.randn(8, d, generator=torch.Generator().manual_seed(4), dtype=F64)
    out = check_posterior(Posterior(shift + spread * z), problem.forward_model, problem.y, problem.noise)
    assert out["misfit"] > MISFIT_FLOOR
    assert any("does not explain the data" in w for w in out["warnings"]) is warns
    assert (out["misfit"] ** 2 - 1 > MISFIT_SPREAD_RATIO * out["data_spread"] ** 2) is (spread < 1)
    assert (out["misfit"] > MISFIT_HIGH) is (shift > 3)


def test_reconstruct_gives_posterior_dimensions_physical_coordinates(tmp_path):
    import inverse
    from inverse.measurements import simulate
    from samplers import open_posterior

    m = simulate("ct", options={"angles": 8}, seed=0)
    post = inverse.reconstruct(m, prior=GaussianPrior(torch.full((1, 64, 64), 0.5), std=0.3, dtype=torch.float32),
                               num_samples=2, steps=2)
    assert set(post.coord_attrs) == {"channel", "y", "x"} and post.coord_attrs["x"]["units"] == "pixel"
    np.testing.assert_array_equal(post.coords["x"], np.arange(64) - 32)  # pixel centres about the rotation centre
    assert "misfit_expected" in post.diagnostics and "data_coverage_90" in post.diagnostics
    post.to_netcdf(tmp_path / "p.nc")
    ds = open_posterior(tmp_path / "p.nc").to_xarray()
    assert all(ds.coords[d].attrs.get("units") for d in ds.dims)


def test_image_metrics_refuse_a_nan_reference():
    from inverse.errors import UserError
    from inverse.metrics import psnr, relative_l2, ssim

    ref = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=F64)
    bad = ref.clone()
    bad[0, 2, 2] = float("nan")
    for f in (relative_l2, psnr, ssim):
        assert math.isfinite(f(ref * 0.9, ref))
        with pytest.raises(UserError, match="the reference \\(truth\\) contains 1 NaN or Inf values"):
            f(ref, bad)


def test_measurement_file_with_complex_data_is_refused(tmp_path):
    import warnings

    from inverse.errors import UserError
    from inverse.measurements import open_measurements, simulate

    simulate("ct", options={"angles": 8}, seed=0).to_netcdf(tmp_path / "y.nc")
    from samplers.netcdf import load_dataset

    ds = load_dataset(tmp_path / "y.nc", "measurement file")
    var = "measurements" if "measurements" in ds else "y"
    ds[var] = ds[var].astype(np.complex128) * (1 + 1j)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # h5netcdf: complex is an invalid NetCDF feature
        ds.to_netcdf(tmp_path / "c.nc", engine="h5netcdf", invalid_netcdf=True)
    with pytest.raises(UserError, match="the measurement or truth is complex"):
        open_measurements(tmp_path / "c.nc")
