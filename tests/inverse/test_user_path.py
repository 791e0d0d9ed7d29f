"""The user's path: simulate -> measurement NetCDF -> reconstruct -> posterior NetCDF -> figure."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from inverse.cli import main
from inverse.measurements import load_truth, open_measurements, simulate
from inverse.metrics import psnr, relative_l2, ssim
from inverse.problems import PROBLEMS, build_forward_model, problem_options
from inverse.reconstruction import reconstruct
from priors import GaussianPrior
from samplers import open_posterior

#: small, fast instances of every problem (the truth generator of navier-stokes spins up for 5
#: time units, so its test passes an explicit truth)
SMALL = {
    "ct": {"size": 16, "angles": 8},
    "mri": {"size": 16, "acceleration": 2.0, "center_fraction": 0.125},
    "mri-multicoil": {"size": 16, "acceleration": 2.0, "center_fraction": 0.125, "coils": 4},
    "ct-fanbeam": {"size": 16, "angles": 8},
    "mri-radial": {"size": 16, "spokes": 8},
    "mri-radial-multicoil": {"size": 16, "spokes": 8, "coils": 4},
    "navier-stokes": {"size": 16, "factor": 2, "T": 0.1},
    "darcy": {"size": 12, "sensors": 3},
    "fwi": {"size": 16, "nt": 100, "shots": 2, "receivers": 8},
    "seismic-interp": {"size": 16, "nt": 100, "shots": 2, "receivers": 8},
}


def test_every_problem_is_covered():
    assert set(SMALL) == set(PROBLEMS)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_simulate_round_trip_rebuilds_the_operator(tmp_path, name):
    truth = None
    if name == "navier-stokes":
        truth = torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    m = simulate(name, options=SMALL[name], truth=truth, seed=3)
    path = m.to_netcdf(tmp_path / "y.nc")
    m2 = open_measurements(path)
    assert m2.problem == name and m2.options == m.options and m2.seed == 3
    assert torch.equal(m2.y, m.y) and torch.equal(m2.truth, m.truth)
    assert m2.noise.sigma == pytest.approx(m.noise.sigma)
    # the rebuilt operator maps the truth to the same clean data
    x = m.truth[None].to(torch.float32 if name == "fwi" else torch.float64)
    with torch.no_grad():
        assert torch.allclose(m2.forward_model(x), m.forward_model(x), rtol=1e-6, atol=1e-9)
    # the noise level is the documented fraction of the clean data's RMS
    with torch.no_grad():
        rms = float(m.forward_model(x).double().square().mean().sqrt())
    assert m.noise.sigma == pytest.approx(PROBLEMS[name].noise_rel * rms, rel=1e-5)
    # named dimensions and units in the file
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds["measurements"].dims == PROBLEMS[name].y_dims and ds["truth"].dims == PROBLEMS[name].x_dims
        assert ds["measurements"].attrs["units"] and ds["truth"].attrs["units"] == PROBLEMS[name].x_units
        assert set(ds.data_vars) == {"measurements", "truth"}  # no variable hidden as a coordinate
        assert all(ds[d].attrs["units"] for d in ds["measurements"].dims + ds["truth"].dims)
        assert json.loads(ds.attrs["forward_model"])["class"] == type(m.forward_model).__name__


def test_same_seed_same_measurement_and_noise_options():
    a = simulate("ct", options=SMALL["ct"], seed=5)
    b = simulate("ct", options=SMALL["ct"], seed=5)
    c = simulate("ct", options=SMALL["ct"], seed=6)
    assert torch.equal(a.y, b.y) and not torch.equal(a.y, c.y)
    d = simulate("ct", options=SMALL["ct"], seed=5, noise_std=0.5)
    assert d.noise.sigma == 0.5 and torch.equal(d.truth, a.truth)
    with pytest.raises(ValueError, match="either"):
        simulate("ct", options=SMALL["ct"], noise_std=0.1, noise_rel=0.1)
    with pytest.raises(ValueError, match="positive"):
        simulate("ct", options=SMALL["ct"], noise_rel=-1)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="has no option 'angle'"):
        problem_options("ct", angle=3)
    with pytest.raises(ValueError, match="must be an integer"):
        problem_options("ct", angles=2.5)
    with pytest.raises(ValueError, match="did you mean 'darcy'"):
        build_forward_model("darci")


def test_truth_files(tmp_path):
    from PIL import Image

    shape = (1, 16, 16)
    a = np.linspace(0, 1, 256).reshape(16, 16)
    np.save(tmp_path / "t.npy", a)
    assert torch.allclose(load_truth(tmp_path / "t.npy", "ct", shape), torch.from_numpy(a)[None])
    # a PNG is resized to the grid and mapped onto the problem's physical range (darcy: 3..12)
    img = np.zeros((40, 40), dtype=np.uint8)
    img[:, 20:] = 255
    Image.fromarray(img).save(tmp_path / "t.png")
    t = load_truth(tmp_path / "t.png", "darcy", shape)
    assert t.shape == shape and float(t.min()) == pytest.approx(3.0) and float(t.max()) == pytest.approx(12.0)
    assert float(t[0, :, 0].mean()) == pytest.approx(3.0) and float(t[0, :, -1].mean()) == pytest.approx(12.0)
    m = simulate("ct", options=SMALL["ct"], truth=tmp_path / "t.npy")
    assert torch.allclose(m.truth, torch.from_numpy(a)[None])
    bad = np.full((16, 16), np.nan)
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match="NaN"):
        load_truth(tmp_path / "nan.npy", "ct", shape)
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        simulate("ct", options=SMALL["ct"], truth=np.zeros((3, 3)))
    with pytest.raises(FileNotFoundError):
        load_truth(tmp_path / "missing.png", "ct", shape)
    (tmp_path / "t.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match="unsupported truth file"):
        load_truth(tmp_path / "t.txt", "ct", shape)


def test_tampered_or_foreign_files_are_refused(tmp_path):
    import xarray as xr

    path = simulate("ct", options=SMALL["ct"]).to_netcdf(tmp_path / "y.nc")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        ds = ds.load()
    cfg = json.loads(ds.attrs["forward_model"])
    cfg["num_angles"] = 99
    ds.attrs["forward_model"] = json.dumps(cfg)
    ds.to_netcdf(tmp_path / "bad.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match="differs from the stored one"):
        open_measurements(tmp_path / "bad.nc")
    (tmp_path / "junk.nc").write_bytes(b"not a netcdf file")
    with pytest.raises(ValueError, match="not a readable NetCDF"):
        open_measurements(tmp_path / "junk.nc")


def test_image_metrics_exact_values():
    ref = torch.zeros(16, 16)
    ref[4:12, 4:12] = 1.0
    x = ref + 0.1
    assert psnr(x, ref) == pytest.approx(20.0)
    assert relative_l2(x, ref) == pytest.approx((0.01 * 256) ** 0.5 / 8.0)
    assert ssim(ref, ref) == pytest.approx(1.0)
    assert ssim(x, ref) < 1.0 and ssim(ref + 0.3 * torch.randn(16, 16), ref) < ssim(x, ref)


def _gaussian_prior():
    return GaussianPrior(torch.full((1, 16, 16), 0.3), std=0.3, dtype=torch.float32)


def test_reconstruct_api_summary_and_round_trip(tmp_path):
    m = simulate("ct", options=SMALL["ct"], seed=0)
    m.to_netcdf(tmp_path / "y.nc")
    post = reconstruct(tmp_path / "y.nc", _gaussian_prior(), "dps", num_samples=4, steps=10, seed=1)
    d = post.diagnostics
    assert post.samples.shape == (4, 1, 16, 16) and post.dims == ("channel", "y", "x")
    assert d["nfe"] == 40 and d["forward_evals"] == 40
    for k in ("misfit", "relative_l2", "psnr", "ssim", "coverage_90", "view_relative_l2"):
        assert np.isfinite(d[k]), k
    assert d["relative_l2"] == pytest.approx(relative_l2(post.mean(), m.truth))
    assert post.config["measurements"]["problem"] == "ct"
    post.to_netcdf(tmp_path / "p.nc")
    back = open_posterior(tmp_path / "p.nc")
    assert torch.equal(back.extras["measurement_view"], post.extras["measurement_view"])
    assert back.units == "attenuation (a.u.)"
    # the same seed gives the same samples
    again = reconstruct(tmp_path / "y.nc", _gaussian_prior(), "dps", num_samples=4, steps=10, seed=1)
    assert torch.equal(again.samples, post.samples)


def test_reconstruct_errors(tmp_path):
    m = simulate("ct", options=SMALL["ct"], seed=0)
    with pytest.raises(ValueError, match=r"shape \(1, 64, 64\) but problem 'ct' needs \(1, 16, 16\)"):
        reconstruct(m, "phantoms-64", "dps", num_samples=2, steps=2)
    with pytest.raises(ValueError, match="did you mean 'dps'"):
        reconstruct(m, _gaussian_prior(), "dpss")
    with pytest.raises(ValueError, match="no shipped prior"):
        reconstruct(simulate("seismic-interp", options=SMALL["seismic-interp"]), None)
    with pytest.raises(FileNotFoundError):
        reconstruct(tmp_path / "missing.nc", _gaussian_prior())


def test_command_line_simulate_reconstruct_plot(tmp_path, capsys):
    y, p, fig = tmp_path / "y.nc", tmp_path / "p.nc", tmp_path / "p.png"
    assert main(["simulate", "--problem", "ct", "-o", "angles=10", "--seed", "2", "--out", str(y)]) == 0
    assert open_measurements(y).options["angles"] == 10
    assert main(["reconstruct", str(y), "--num-samples", "2", "--steps", "3", "--out", str(p),
                 "--figure", str(fig), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "PSNR" in out and "filtered back-projection" in out and str(p) in out
    post = open_posterior(p)
    assert post.samples.shape == (2, 1, 64, 64) and post.config["prior"]
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(p), "--out", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "p.png").is_file()
    # --out may name the figure itself
    assert main(["plot", str(p), "--out", str(tmp_path / "named" / "mine.png")]) == 0
    assert (tmp_path / "named" / "mine.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # refuses to overwrite, in one line, and leaves the file alone
    before = p.read_bytes()
    assert main(["reconstruct", str(y), "--out", str(p), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert p.read_bytes() == before


@pytest.mark.parametrize("argv, message", [
    (["simulate", "--problem", "cta"], "did you mean 'ct'"),
    (["simulate", "--problem", "ct", "-o", "angles"], "KEY=VALUE"),
    (["simulate", "--problem", "ct", "-o", "angles=-3"], "num_angles"),
    (["simulate", "--problem", "ct", "--truth", "missing.npy"], "does not exist"),
    (["reconstruct", "missing.nc"], "does not exist"),
])
def test_user_path_errors_are_one_line(tmp_path, argv, message):
    argv = argv + ["--out", str(tmp_path / "o.nc")]
    proc = subprocess.run([sys.executable, "-m", "inverse.cli", *argv], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert not (tmp_path / "o.nc").exists()


def test_ct_demo_writes_three_files(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--num-samples", "2", "--steps", "3", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "filtered back-projection" in text
    for name in ("measurements.nc", "posterior.nc", "posterior.png"):
        assert (out / name).is_file() and str(out / name) in text
    assert open_posterior(out / "posterior.nc").truth is not None


def test_problems_without_a_direct_reconstruction_show_the_measurement(tmp_path):
    """Navier-Stokes has no FBP / adjoint view: the posterior carries y itself, stores it in the
    file with dimensions of its own, and the figure shows it on its own colour scale."""
    from inverse.figures import plot_image_posterior

    truth = torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    m = simulate("navier-stokes", options=SMALL["navier-stokes"], truth=truth, seed=1)
    m.to_netcdf(tmp_path / "y.nc")
    post = reconstruct(tmp_path / "y.nc", GaussianPrior(torch.zeros(1, 16, 16), std=1.0), "dps", num_samples=2,
                       steps=3, seed=0)
    assert "measurement_view" not in post.extras
    assert torch.equal(post.extras["measurement_image"], m.y.to(post.samples.dtype))
    post.to_netcdf(tmp_path / "p.nc")
    back = open_posterior(tmp_path / "p.nc")
    assert torch.equal(back.extras["measurement_image"], post.extras["measurement_image"])
    fig = plot_image_posterior(back)
    titles = [ax.get_title() for ax in fig.axes]
    assert "measurement y 8x8" in titles, titles
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_posterior_figure_shows_distinct_samples():
    """Resampling with replacement could show one particle twice; the figure takes distinct ones."""
    from inverse.figures import _distinct_samples
    from samplers import Posterior

    x = torch.arange(6, dtype=torch.float64).reshape(6, 1, 1, 1).expand(6, 1, 4, 4).clone()
    plain = Posterior(x)
    assert torch.equal(_distinct_samples(plain, 3), x[:3])
    lw = torch.log(torch.tensor([0.7, 0.3, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64))
    weighted = Posterior(x, log_weights=lw)
    shown = _distinct_samples(weighted, 3)  # only two particles carry weight
    assert [float(s[0, 0, 0]) for s in shown] == [0.0, 1.0]
