"""Data and posterior NetCDF files, the ``inverse calibrate`` command, trace and pair plots."""

import json

import numpy as np
import pytest
import xarray as xr

from inverse.calibration.io import read_data, read_inference_data, write_data, write_inference_data
from inverse.calibration.models import HeatEquation1D, LayeredEarth, NavierStokesCalibration, T2Relaxation
from inverse.calibration.plots import plot_pair, plot_trace
from inverse.cli import _Parser
from inverse.commands import calibrate as cli

PNG = b"\x89PNG\r\n\x1a\n"


def run_cli(*argv):
    """``inverse calibrate ARGV`` through argparse with the main command's one-line-error parser."""
    p = _Parser(prog="inverse")
    cli.add_parser(p.add_subparsers(dest="command", parser_class=_Parser))
    return cli.run(p.parse_args(["calibrate", *argv]))


@pytest.mark.parametrize("model", [T2Relaxation(), HeatEquation1D(), LayeredEarth(num_layers=2),
                                   NavierStokesCalibration(16, T=0.1)], ids=lambda m: m.name)
def test_data_files_round_trip(tmp_path, model):
    y = model.simulate(model.default_truth(), model.sigma_scale, seed=1)
    path = write_data(tmp_path / "d.nc", model, y, sigma=model.sigma_scale, truth=model.default_truth(), seed=1)
    data = read_data(path)
    assert type(data.model) is type(model) and data.model.config() == model.config()
    np.testing.assert_array_equal(data.y, y)
    assert data.sigma == model.sigma_scale and data.truth == pytest.approx(model.default_truth())
    with pytest.raises(FileExistsError, match="already exists"):
        write_data(path, model, y)


def test_measured_data_need_only_y_coordinates_and_the_model_name(tmp_path):
    times, positions = np.array([5.0, 10.0, 20.0]), np.array([0.03, 0.05])
    m = HeatEquation1D(times=times, positions=positions)
    y = m.simulate(m.default_truth(), 0.01)
    xr.Dataset({"y": (("time", "position"), y)}, coords={"time": times, "position": positions},
               attrs={"model": "heat"}).to_netcdf(tmp_path / "m.nc", engine="h5netcdf")
    data = read_data(tmp_path / "m.nc")
    np.testing.assert_array_equal(data.model.times, times)
    np.testing.assert_array_equal(data.model.positions, positions)
    assert data.sigma is None and data.truth is None


def _write(path, **kw):
    ds = xr.Dataset({"y": (("echo_time",), kw.pop("y", np.ones(16)))},
                    coords={"echo_time": np.arange(10.0, 170.0, 10.0)}, attrs={"model": "mri-t2"})
    ds.attrs.update(kw.pop("attrs", {}))
    for k in kw.pop("drop", []):
        ds = ds.drop_vars(k)
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def _text(path):
    path.write_text("not netcdf")
    return path


@pytest.mark.parametrize("make, error, match", [
    (lambda p: p / "missing.nc", FileNotFoundError, "does not exist"),
    (lambda p: p, IsADirectoryError, "directory"),
    (lambda p: _text(p / "t.nc"), ValueError, "not a readable NetCDF"),
    (lambda p: _write(p / "a.nc", y=np.r_[np.nan, np.ones(15)]), ValueError, "1 NaN or Inf"),
    (lambda p: _write(p / "b.nc", attrs={"model": "mri_t2"}), ValueError, "did you mean 'mri-t2'"),
    (lambda p: _write(p / "c.nc", attrs={"noise_sigma": -1.0}), ValueError, "noise_sigma must be positive"),
    (lambda p: _write(p / "d.nc", attrs={"model_config": "{oops"}), ValueError, "not valid JSON"),
    (lambda p: _write(p / "e.nc", drop=["y"]), ValueError, "no variable 'y'"),
])
def test_bad_data_files_fail_in_one_line(tmp_path, make, error, match):
    with pytest.raises(error, match=match) as e:
        read_data(make(tmp_path))
    assert "\n" not in str(e.value)


def test_data_for_another_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="for the model 'mri-t2', not 'heat'"):
        read_data(_write(tmp_path / "t.nc"), model="heat")


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """One small end-to-end run of the command: simulate a T2 data file, calibrate it (sigma estimated)."""
    d = tmp_path_factory.mktemp("cli")
    assert run_cli("--model", "mri-t2", "--simulate", "--truth", "T2=70", "--out", str(d / "t2.nc")) == 0
    assert run_cli("--data", str(d / "t2.nc"), "--out", str(d / "post.nc"), "--chains", "2", "--warmup", "200",
                   "--samples", "200", "--sigma", "unknown", "--prior", "sigma=halfnormal:0.1", "T2=uniform:10,300",
                   "--quiet") == 0
    return d


def test_command_simulates_and_calibrates(calibrated, capsys):
    idata = read_inference_data(calibrated / "post.nc")
    assert set(idata.posterior.data_vars) == {"S0", "T2", "sigma"}
    attrs = idata.posterior.attrs
    assert json.loads(attrs["truth"]) == {"S0": 1.0, "T2": 70.0} and attrs["noise"] == "estimated"
    assert "Uniform(low=10, high=300)" in attrs["priors"] and attrs["num_chains"] == 2
    t2 = idata.posterior["T2"].values
    assert (t2 > 10).all() and (t2 < 300).all() and abs(np.median(t2) - 70.0) < 10.0
    assert idata.observed_data["y"].shape == (16,)


def test_plots_are_png_and_never_overwritten(calibrated):
    idata = read_inference_data(calibrated / "post.nc")
    for fn, name in ((plot_trace, "trace.png"), (plot_pair, "pair.png")):
        out = fn(idata, calibrated / name)
        assert out.read_bytes()[:8] == PNG
        with pytest.raises(FileExistsError):
            fn(idata, calibrated / name)
        fn(idata, calibrated / name, overwrite=True)
    assert plot_pair(idata, calibrated / "one.png", var_names=["T2"]).read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="no parameter 'T3'"):
        plot_trace(idata, calibrated / "x.png", var_names=["T3"])


def test_existing_posterior_is_refused_before_sampling(calibrated):
    before = (calibrated / "post.nc").read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_cli("--data", str(calibrated / "t2.nc"), "--out", str(calibrated / "post.nc"))
    assert (calibrated / "post.nc").read_bytes() == before
    with pytest.raises(FileExistsError):
        write_inference_data(read_inference_data(calibrated / "post.nc"), calibrated / "post.nc")


@pytest.mark.parametrize("argv, error, match", [
    (["--model", "mri-t3", "--simulate", "--out", "x.nc"], ValueError, "did you mean 'mri-t2'"),
    (["--simulate", "--out", "x.nc"], ValueError, "needs --model"),
    (["--model", "heat", "--simulate", "--truth", "difusivity=1", "--out", "x.nc"], ValueError,
     "did you mean 'diffusivity'"),
    (["--model", "heat", "--simulate", "--truth", "diffusivity=fast", "--out", "x.nc"], ValueError, "a number"),
    (["--model", "heat", "--simulate", "--truth", "diffusivity", "--out", "x.nc"], ValueError, "NAME=VALUE"),
    (["--model", "heat", "--simulate", "--sigma", "-1", "--out", "x.nc"], ValueError, "positive"),
    (["--model", "mri-t2", "--simulate", "--truth", "T2=-5", "--out", "x.nc"], ValueError, "outside the support"),
    (["--model", "heat", "--simulate", "--model-config", "{", "--out", "x.nc"], ValueError, "not valid JSON"),
    (["--model", "heat", "--simulate", "--model-config", '{"layers": 2}', "--out", "x.nc"], ValueError, "does not fit"),
    (["--data", "nope.nc", "--out", "x.nc"], FileNotFoundError, "does not exist"),
    (["--out", "x.nc"], ValueError, "give --data"),
    (["--data", "{t2}", "--out", "x.nc", "--chains", "0"], ValueError, "--chains must be at least 1"),
    (["--data", "{t2}", "--out", "x.nc", "--prior", "T2=lognorm:1,1"], ValueError, "did you mean 'lognormal'"),
    (["--data", "{t2}", "--out", "x.nc", "--prior", "T2=normal:1"], ValueError, "takes 2 number"),
    (["--data", "{t2}", "--out", "x.nc", "--prior", "T2=uniform:5,1"], ValueError, "low < high"),
    (["--data", "{t2}", "--out", "x.nc", "--prior", "R2=normal:0,1"], ValueError, "did you mean 'T2'"),
    (["--data", "{t2}", "--out", "x.nc", "--prior", "sigma=halfnormal:1"], ValueError, "pass --sigma unknown"),
    (["--data", "{t2}", "--out", "x.nc", "--sigma", "nan"], ValueError, "finite"),
    (["--data", "{t2}", "--model", "heat", "--out", "x.nc"], ValueError, "not 'heat'"),
    (["--data", "{t2}", "--out", "x.nc", "--truth", "T2=3"], ValueError, "belong to --simulate"),
])
def test_bad_arguments_fail_in_one_line_before_any_work(calibrated, tmp_path, monkeypatch, argv, error, match):
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{t2}", str(calibrated / "t2.nc")) for a in argv]
    with pytest.raises(error, match=match) as e:
        run_cli(*argv)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "x.nc").exists()
