"""A corrupt file that makes the HDF5 library loop forever is refused in one line, not a hung process.

``data/hdf5_loops_forever.nc`` is a posterior file with a few bytes changed, found by the fuzz tests:
reading its root attribute ``format`` never returns in h5py 3.16 (HDF5 1.14).
"""

from pathlib import Path

import pytest

import samplers.netcdf as nc
from inverse.cli import main
from inverse.measurements import open_measurements, simulate
from samplers import SamplerConfigError, open_posterior
from samplers.netcdf import probe_hdf5

HANGS = Path(__file__).parent / "data" / "hdf5_loops_forever.nc"


@pytest.fixture
def short_probe(monkeypatch):
    monkeypatch.setattr(nc, "PROBE_TIMEOUT_S", 2.0)


def test_the_probe_refuses_a_file_that_hangs_the_hdf5_library(short_probe):
    with pytest.raises(SamplerConfigError, match="did not finish reading it") as e:
        open_posterior(HANGS)
    assert "\n" not in str(e.value) and "posterior file" in str(e.value)


def test_the_probe_passes_good_and_merely_broken_files(tmp_path):
    good = simulate("ct", options={"size": 16, "angles": 8}, seed=0).to_netcdf(tmp_path / "y.nc")
    probe_hdf5(good)  # returns
    assert open_measurements(good).y.shape
    broken = tmp_path / "broken.nc"
    broken.write_bytes(good.read_bytes()[:600])  # truncated: h5py raises, the reader reports it
    probe_hdf5(broken)
    with pytest.raises(SamplerConfigError, match="not a readable NetCDF file"):
        open_measurements(broken)


def test_plot_of_a_file_that_hangs_the_hdf5_library_exits_2(short_probe, tmp_path, capsys):
    assert main(["plot", str(HANGS), "--out", str(tmp_path / "figs")]) == 2
    err = capsys.readouterr().err.strip()
    assert "did not finish reading it" in err and "\n" not in err
    assert not (tmp_path / "figs").exists()
