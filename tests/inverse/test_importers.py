"""Importers and measurement files: from_arrays checks, noise estimates, coil maps, k-space crop, file layout,
old files, and malformed foreign files (one line, exit 2, nothing written)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

from inverse.cli import main
from inverse.errors import UserError
from inverse.importers import import_file
from inverse.importers.coil_maps import estimate_coil_maps
from inverse.importers.noise import kspace_corner_sigma, wavelet_mad_sigma
from inverse.importers.resize import crop_kspace
from inverse.measurements import from_arrays, open_measurements, simulate


# ------------------------------------------------------------------ from_arrays
def test_from_arrays_every_problem_family():
    rng = np.random.default_rng(0)
    m = from_arrays("ct", rng.normal(size=(8, 23)), {"size": 16, "angles": 8}, noise_std=0.1)
    assert m.y.shape == (1, 8, 23) and m.options == {"size": 16, "angles": 8}
    k = rng.normal(size=(16, 16)) + 1j * rng.normal(size=(16, 16))
    m = from_arrays("mri", k, noise_std=0.1, mask=(np.arange(16) % 2 == 0).astype(float))
    assert m.y.shape == (2, 16, 16) and m.options["size"] == 16 and m.options["mask"] == "given"
    maps = rng.normal(size=(3, 16, 16)) + 1j * rng.normal(size=(3, 16, 16))
    m = from_arrays("mri-multicoil", np.stack([k] * 3), noise_std=0.1, mask=np.ones(16), geometry={"coil_maps": maps})
    assert m.y.shape == (2, 3, 16, 16) and m.options["coils"] == 3
    m = from_arrays("navier-stokes", rng.normal(size=(4, 4)), {"size": 16, "factor": 4, "T": 0.1}, noise_std=0.1)
    assert m.y.shape == (1, 4, 4)
    m = from_arrays("darcy", rng.normal(size=9), {"size": 16, "sensors": 3}, noise_std=0.1)
    assert m.y.shape == (9,)
    m = from_arrays("fwi", rng.normal(size=(2, 30, 10)), {"size": 20, "nt": 30, "shots": 2, "receivers": 10},
                    noise_std=0.1)
    assert m.y.shape == (2, 30, 10)
    m = from_arrays("seismic-interp", rng.normal(size=(2, 30, 10)), {"nt": 30, "shots": 2}, noise_std=0.1,
                    mask=(np.arange(10) % 3 > 0).astype(float))
    assert m.options["receivers"] == 10 and m.forward_model.output_shape == (2, 30, 10)


@pytest.mark.parametrize("problem, y, kwargs, message", [
    ("ct", np.zeros((8, 22)), {"options": {"size": 16, "angles": 8}}, "shape"),
    ("ct", np.zeros((8, 23), complex), {"options": {"size": 16, "angles": 8}}, "needs real"),
    ("ct", np.full((8, 23), np.nan), {"options": {"size": 16, "angles": 8}}, "NaN"),
    ("mri", np.zeros((16, 16)), {"mask": np.ones(16)}, "complex"),
    ("mri", np.ones((16, 15), complex), {"mask": np.ones(16)}, "shape"),
    ("darcy", np.array(["a", "b"]), {"options": {"sensors": 1}}, "not numeric"),
    ("darcy", np.zeros(9), {"options": {"sensors": 3}, "noise_std": -1.0}, "positive"),
    ("ct", np.zeros((8, 23)), {"options": {"size": 16, "angles": 8}, "mask": np.ones(3)}, "takes no recorded"),
])
def test_from_arrays_refuses_with_one_line_naming_the_problem(problem, y, kwargs, message):
    kwargs = {"noise_std": 0.1, **kwargs}
    with pytest.raises(UserError, match=message) as e:
        from_arrays(problem, y, kwargs.pop("options", None), **kwargs)
    assert problem in str(e.value) and "\n" not in str(e.value)


# ------------------------------------------------------------------ noise, coil maps, crop
def test_wavelet_mad_estimates_white_noise_on_smooth_data():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 128)
    smooth = np.sin(6 * t)[:, None] * np.cos(4 * t)[None, :] * 10
    est = wavelet_mad_sigma(smooth + 0.05 * rng.normal(size=smooth.shape))
    assert est == pytest.approx(0.05, rel=0.1)
    assert wavelet_mad_sigma(0.2 * rng.normal(size=4096)) == pytest.approx(0.2, rel=0.1)


def test_kspace_corner_estimate_and_its_record():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:64, :64] - 32
    img = np.exp(-(xx**2 + yy**2) / 60.0)  # smooth object: its spectrum has decayed in the corners
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(img), norm="ortho"))
    noisy = k + 0.01 * (rng.normal(size=k.shape) + 1j * rng.normal(size=k.shape))
    mask = np.broadcast_to((np.arange(64) % 2 == 0) | (np.abs(np.arange(64) - 32) < 4), (64, 64)).astype(float)
    assert kspace_corner_sigma(np.stack([noisy.real, noisy.imag]), mask) == pytest.approx(0.01, rel=0.15)
    m = from_arrays("mri", noisy * mask, mask=mask)
    assert m.noise.sigma == pytest.approx(0.01, rel=0.15)
    assert m.provenance["noise_estimate"].startswith("k-space corners")


def test_estimated_coil_maps_match_the_true_normalised_maps_on_the_object():
    m = simulate("mri-multicoil", options={"acceleration": 4.0, "center_fraction": 0.16}, seed=0)
    op = m.forward_model.operator
    y = m.y.numpy()
    S_est = estimate_coil_maps((y[0] + 1j * y[1]) * op.mask.numpy(), op.mask.numpy())
    S = op.coil_maps.numpy()
    S = (S[0] + 1j * S[1]) / np.sqrt((np.abs(S[0] + 1j * S[1]) ** 2).sum(0))
    obj = m.truth[0].numpy() > 0.05
    err = np.linalg.norm((S_est - S)[:, obj]) / np.linalg.norm(S[:, obj])
    assert err < 0.2
    assert np.allclose((np.abs(S_est) ** 2).sum(0), 1.0)


def test_kspace_crop_is_sinc_resampling_at_the_same_field_of_view():
    yy, xx = (np.mgrid[:128, :128] - 64) / 64.0
    img = np.exp(-(xx**2 + yy**2) * 12)  # band-limited on both grids, ~0 at the edges (no wrap-around)
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(img), norm="ortho"))
    small, mask, scale = crop_kspace(k[None], np.ones((128, 128)), 32)
    img32 = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(small[0]), norm="ortho")).real
    assert scale == pytest.approx(0.25) and mask.shape == (32, 32)
    assert np.allclose(img32, img[::4, ::4], atol=1e-5)  # same object, same intensities, every 4th pixel


def test_mri_import_crops_a_larger_field_and_says_so(tmp_path):
    k = np.zeros((2, 96, 80), complex)
    k[:, :, ::2] = 1.0 + 0.5j
    np.save(tmp_path / "k.npy", k)
    m = import_file("mri", tmp_path / "k.npy", noise_std=0.1)
    assert m.y.shape == (2, 64, 64) and "cropped centrally from 96x80 to 64x64" in m.provenance["preprocessing"]
    assert m.noise.sigma == pytest.approx(0.1 * 64 / np.sqrt(96 * 80))


def test_ct_refuses_a_size_no_prior_takes_and_names_the_sizes(tmp_path):
    np.save(tmp_path / "s.npy", np.ones((10, 23)))
    with pytest.raises(UserError, match="phantoms-64 64x64") as e:
        import_file("ct", tmp_path / "s.npy", noise_std=0.1)
    assert "--any-size" in str(e.value)
    assert import_file("ct", tmp_path / "s.npy", noise_std=0.1, any_size=True).options == {"size": 16, "angles": 10}


@pytest.mark.parametrize("settings, message", [
    ({"angles": "0:1e9:1e-9"}, "at most 1000000"),  # counted before any array is allocated
    ({"angles": "0:inf:1"}, "at most 1000000"),
    ({"options": {"size": "nan"}}, "must be a int"),
    ({"options": {"size": 0}}, "disagrees with the file"),  # the sinogram fixes size and angles
    ({"options": {"angles": 7}}, "disagrees with the file"),
    ({"options": {"size": 10**9}}, "at most 4096"),
])
def test_ct_refuses_angle_ranges_and_options_the_sinogram_contradicts(tmp_path, settings, message):
    np.save(tmp_path / "s.npy", np.random.default_rng(0).random((6, 16)))
    with pytest.raises(UserError, match=message):
        import_file("ct", tmp_path / "s.npy", noise_std=0.1, any_size=True, **settings)
    m = import_file("ct", tmp_path / "s.npy", noise_std=0.1, any_size=True, options={"size": 11, "angles": 6})
    assert m.options == {"size": 11, "angles": 6}


# ------------------------------------------------------------------ the measurement file (issue 26 item 9)
def test_measurement_file_layout_coordinates_and_provenance(tmp_path):
    m = simulate("fwi", options={"size": 20, "nt": 40, "shots": 2, "receivers": 10}, seed=0)
    m.provenance = {"source_file": "x.sgy", "importer": "test", "command_line": "inverse import x.sgy",
                    "noise_estimate": "given"}
    m.to_netcdf(tmp_path / "y.nc")
    with xr.open_dataset(tmp_path / "y.nc", engine="h5netcdf") as ds:
        assert set(ds.data_vars) == {"measurements", "truth"}
        assert ds["time"].attrs["units"] == "s" and float(ds["time"][1]) == pytest.approx(1e-3)
        assert ds["receiver"].attrs["units"] == "m" and float(ds["receiver"][-1]) == pytest.approx(190.0)
        assert ds["depth"].attrs["units"] == "m" and ds["shot"].attrs["units"] == "m"
        assert ds.attrs["source_file"] == "x.sgy" and ds.attrs["Conventions"].startswith("CF")
        assert len(ds["measurements"].to_dataframe()) == 2 * 40 * 10
    assert open_measurements(tmp_path / "y.nc").provenance["importer"] == "test"


def test_old_files_with_variable_y_are_still_read(tmp_path):
    m = simulate("ct", options={"size": 16, "angles": 8}, seed=0)
    ds = m.to_xarray()
    old = xr.Dataset({"y": (ds["measurements"].dims, ds["measurements"].values), "truth": ds["truth"].variable},
                     attrs={**ds.attrs, "format": "inverse-measurements/1"})
    old.to_netcdf(tmp_path / "old.nc", engine="h5netcdf")
    assert torch.equal(open_measurements(tmp_path / "old.nc").y, m.y)


def test_operator_arrays_are_checked_when_read(tmp_path):
    k = np.ones((16, 16), complex)
    from_arrays("mri", k, mask=np.ones(16), noise_std=0.1).to_netcdf(tmp_path / "y.nc")
    ds = xr.load_dataset(tmp_path / "y.nc", engine="h5netcdf")
    ds.attrs["operator_arrays"] = json.dumps(["mask", "nothing"])
    ds.to_netcdf(tmp_path / "bad.nc", engine="h5netcdf")
    with pytest.raises(UserError, match="operator_arrays"):
        open_measurements(tmp_path / "bad.nc")


# ------------------------------------------------------------------ malformed foreign files: one line, exit 2
def _segy_without_traces(path):
    import segyio

    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = 5, list(range(10)), 1
    with segyio.create(str(path.with_suffix(".tmp")), spec) as f:
        f.bin.update({segyio.BinField.Interval: 1000})
        f.trace[0] = np.zeros(10, np.float32)
    path.write_bytes(path.with_suffix(".tmp").read_bytes()[:3600])  # headers only


def _malformed(tmp_path, kind):
    p = tmp_path / "in"
    if kind == "truncated-hdf5":
        with h5py.File(tmp_path / "ok.h5", "w") as f:
            f["kspace"] = np.ones((2, 16, 16), complex)
        p = tmp_path / "t.h5"
        p.write_bytes((tmp_path / "ok.h5").read_bytes()[:1500])
        return p, "mri"
    if kind == "wrong-dataset-name":
        p = tmp_path / "w.h5"
        with h5py.File(p, "w") as f:
            f["data"], f["other"] = np.ones((16, 16), complex), np.ones(3)
        return p, "mri"
    if kind == "wrong-dims":
        p = tmp_path / "d.npy"
        np.save(p, np.ones(16, complex))
        return p, "mri"
    if kind == "real-kspace":
        p = tmp_path / "r.npy"
        np.save(p, np.ones((16, 16)))
        return p, "mri"
    if kind == "text-in-csv":
        p = tmp_path / "s.csv"
        p.write_text("x,y,value\n0.5,0.5,1.0\n0.25,abc,2.0\n")
        return p, "darcy"
    if kind == "csv-without-columns":
        p = tmp_path / "s.csv"
        p.write_text("a,b\n1,2\n")
        return p, "darcy"
    if kind == "segy-without-traces":
        p = tmp_path / "e.sgy"
        _segy_without_traces(p)
        return p, "fwi"
    if kind == "not-a-segy":
        p = tmp_path / "n.sgy"
        p.write_bytes(b"\x00" * 100)
        return p, "fwi"
    if kind == "not-a-tiff":
        p = tmp_path / "n.tif"
        p.write_text("this is not an image")
        return p, "ct"
    if kind == "pickled-npy":
        p = tmp_path / "p.npy"
        np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        return p, "ct"
    if kind == "garbage-mat":
        p = tmp_path / "g.mat"
        p.write_bytes(b"MATLAB 5.0 MAT-file" + b"\x01" * 200)
        return p, "mri"
    if kind == "unknown-suffix":
        p = tmp_path / "k.xyz"
        p.write_text("1")
        return p, "mri"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated-hdf5", "wrong-dataset-name", "wrong-dims", "real-kspace", "text-in-csv",
                                  "csv-without-columns", "segy-without-traces", "not-a-segy", "not-a-tiff",
                                  "pickled-npy", "garbage-mat", "unknown-suffix"])
def test_malformed_foreign_files_give_one_line_and_exit_2(tmp_path, capsys, kind):
    path, problem = _malformed(tmp_path, kind)
    out = tmp_path / "y.nc"
    assert main(["import", str(path), "--problem", problem, "--noise-std", "0.1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".y.nc")]


def test_import_refuses_an_existing_output_and_a_problem_without_importer(tmp_path, capsys):
    np.save(tmp_path / "s.npy", np.ones((10, 23)))
    (tmp_path / "y.nc").write_text("keep")
    assert main(["import", str(tmp_path / "s.npy"), "--problem", "ct", "--out", str(tmp_path / "y.nc")]) == 2
    assert (tmp_path / "y.nc").read_text() == "keep"
    assert main(["import", str(tmp_path / "s.npy"), "--problem", "ct", "--format", "segy", "--out",
                 str(tmp_path / "z.nc")]) == 2
    assert "not read for sinogram" in capsys.readouterr().err


def test_mri_size_no_prior_takes_is_refused_before_reading(tmp_path, capsys):
    np.save(tmp_path / "k.npy", np.ones((16, 16), complex))
    assert main(["import", str(tmp_path / "k.npy"), "--problem", "mri", "--size", "16", "--noise-std", "0.1",
                 "--out", str(tmp_path / "y.nc")]) == 2
    assert "phantoms-64 64x64" in capsys.readouterr().err and not (tmp_path / "y.nc").exists()
    assert main(["import", str(tmp_path / "k.npy"), "--problem", "mri", "--size", "0", "--out",
                 str(tmp_path / "y.nc")]) == 2
