"""Batch reconstruction: 1 and 2 processes (DDP, gloo) write identical posteriors; restarts redo only what is
missing."""

import pytest
import torch

from inverse.batch import (
    MeasurementFiles,
    measurement_seed,
    output_path,
    reconstruct_batch,
)
from inverse.measurements import simulate
from samplers import open_posterior

from .conftest import run_inverse

OPTS = ["--prior", "gaussian", "--num-samples", 4, "--steps", 10, "--threads", 1, "--quiet"]


@pytest.fixture()
def measurements(tmp_path):
    d = tmp_path / "ys"
    d.mkdir()
    for i in range(3):
        simulate("ct", options={"size": 16, "angles": 8}, seed=i).to_netcdf(d / f"y{i}.nc")
    return d


def test_restart_redoes_only_the_missing_posteriors(measurements, tmp_path):
    res = reconstruct_batch(measurements, tmp_path / "p", "gaussian", num_samples=4, steps=10)
    assert [r["status"] for r in res["results"]] == ["done"] * 3 and not res["missing"]
    for i in range(3):
        post = open_posterior(tmp_path / "p" / f"y{i}-posterior.nc")
        assert post.config["batch"]["seed"] == measurement_seed(0, f"y{i}")
    first = open_posterior(tmp_path / "p" / "y1-posterior.nc").samples
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "p").iterdir()}
    (tmp_path / "p" / "y1-posterior.nc").unlink()
    res = reconstruct_batch(measurements, tmp_path / "p", "gaussian", num_samples=4, steps=10)
    assert [r["status"] for r in res["results"]] == ["skipped", "done", "skipped"]
    for name in ("y0-posterior.nc", "y2-posterior.nc"):
        assert (tmp_path / "p" / name).stat().st_mtime_ns == stamps[name]
    assert torch.equal(open_posterior(tmp_path / "p" / "y1-posterior.nc").samples, first)


@pytest.mark.slow  # three subprocesses (the command, then two DDP ranks), each importing torch
def test_one_and_two_processes_write_identical_posteriors(measurements, tmp_path):
    reconstruct_batch(measurements, tmp_path / "p1", "gaussian", num_samples=4, steps=10)
    run_inverse(["reconstruct-batch", measurements, "--out-dir", tmp_path / "p2", "--devices", 2,
                 "--strategy", "ddp", *OPTS], tmp_path)
    for i in range(3):
        a = open_posterior(tmp_path / "p1" / f"y{i}-posterior.nc")
        b = open_posterior(tmp_path / "p2" / f"y{i}-posterior.nc")
        assert torch.equal(a.samples, b.samples)
        assert a.config["batch"]["seed"] == b.config["batch"]["seed"] == measurement_seed(0, f"y{i}")


def test_seeds_depend_on_names_only():
    assert measurement_seed(0, "a") == measurement_seed(0, "a") != measurement_seed(1, "a")
    assert measurement_seed(0, "a") != measurement_seed(0, "b")
    assert output_path("out", "y0").name == "y0-posterior.nc"


def test_bad_inputs(tmp_path, measurements):
    with pytest.raises(FileNotFoundError):
        MeasurementFiles(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no measurement files"):
        MeasurementFiles(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "y0.nc").write_bytes((measurements / "y0.nc").read_bytes())
    with pytest.raises(ValueError, match="share the names"):
        MeasurementFiles([measurements / "y0.nc", tmp_path / "other" / "y0.nc"])
    (measurements / "y0-posterior.nc").write_text("not a measurement")  # outputs beside the inputs are ignored
    assert len(MeasurementFiles(measurements)) == 3


def test_cli_refuses_a_bad_file_before_any_work(measurements, tmp_path, capsys):
    """An unreadable measurement among good ones: one line naming it, exit 2, no output directory."""
    from inverse.cli import main

    (measurements / "bad.nc").write_text("not netcdf")
    rc = main(["reconstruct-batch", str(measurements), "--out-dir", str(tmp_path / "p"), *map(str, OPTS)])
    captured = capsys.readouterr()
    assert rc == 2 and "bad.nc" in captured.err and len(captured.err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()
    (measurements / "bad.nc").unlink()
    assert main(["reconstruct-batch", str(measurements), "--out-dir", str(tmp_path / "p"), *map(str, OPTS)]) == 0
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [f"y{i}-posterior.nc" for i in range(3)]
