"""Import round trips: simulate with our operator, export to the foreign format, import, compare bit for bit.

For every importer the imported measurement equals the original exactly, the rebuilt forward model
gives bit-identical outputs, both survive the NetCDF file, and (once) reconstructing both gives the
bit-identical posterior with the same seed.
"""

from __future__ import annotations

import csv

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from inverse.cli import main
from inverse.measurements import Measurements, from_arrays, open_measurements, simulate

SMALL_MRI = {"size": 16, "center_fraction": 0.125}


def _check(path, orig: Measurements, *, seed: int = 3) -> Measurements:
    """The imported file at ``path`` holds ``orig``'s measurement, noise and operator exactly."""
    m = open_measurements(path)
    assert m.y.dtype == torch.float64 and torch.equal(m.y, orig.y)
    assert m.noise.sigma == orig.noise.sigma
    fm, fo = m.fresh_forward_model(), orig.forward_model
    dtype = torch.float32 if type(fo).__name__ == "AcousticFWI" else torch.float64
    x = torch.rand(2, *fo.input_shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    if type(fo).__name__ == "AcousticFWI":
        x = 1500 + 3000 * x
    with torch.no_grad():
        assert torch.equal(fm(x), fo(x))
        assert torch.equal(m.forward_model(x), fo(x))
    return m


def _run(*argv) -> int:
    return main([str(a) for a in argv])


def _kspace(m: Measurements) -> np.ndarray:
    y = m.y.numpy()
    return y[0] + 1j * y[1]


def _masked(m: Measurements) -> Measurements:
    """``m`` with the unmeasured k-space entries zeroed, as a scanner records them."""
    mask = m.forward_model.operator.mask
    return Measurements(m.problem, m.options, m.y * mask.to(m.y.dtype), m.noise, m.forward_model, m.truth, m.seed)


def test_mri_fastmri_hdf5_single_coil_with_mask_dataset(tmp_path):
    orig = simulate("mri", options=SMALL_MRI, seed=0)
    k = _kspace(orig)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["kspace"] = np.stack([np.zeros_like(k), np.zeros_like(k), k, np.zeros_like(k)])  # slices x ky x kx
        f["mask"] = orig.forward_model.operator.mask[0].numpy()
    assert _run("import", tmp_path / "f.h5", "--problem", "mri", "--size", 16, "--any-size",
                "--noise-std", repr(orig.noise.sigma), "--out", tmp_path / "y.nc") == 0
    m = _check(tmp_path / "y.nc", orig)
    assert m.provenance["importer"].startswith("inverse.importers.mri")
    assert "slice 2 of 4" in m.provenance["preprocessing"]
    assert "--slice" not in m.provenance["command_line"] and m.provenance["source_file"].endswith("f.h5")


def test_mri_npy_with_mask_file_and_mat_with_inferred_mask(tmp_path):
    orig = simulate("mri", options=SMALL_MRI, seed=1)
    np.save(tmp_path / "k.npy", _kspace(orig))
    np.save(tmp_path / "mask.npy", orig.forward_model.operator.mask[0].numpy())
    sigma = repr(orig.noise.sigma)
    assert _run("import", tmp_path / "k.npy", "--problem", "mri", "--mask", tmp_path / "mask.npy", "--size", 16,
                "--any-size", "--noise-std", sigma, "--out", tmp_path / "a.nc") == 0
    _check(tmp_path / "a.nc", orig)
    zeroed = _masked(orig)
    scipy.io.savemat(tmp_path / "k.mat", {"kspace": _kspace(zeroed)})
    assert _run("import", tmp_path / "k.mat", "--problem", "mri", "--size", 16, "--any-size", "--noise-std", sigma,
                "--out", tmp_path / "b.nc") == 0
    m = _check(tmp_path / "b.nc", zeroed)
    assert "inferred from zero columns" in m.provenance["preprocessing"]


def test_mri_mat_v73_is_read_through_hdf5(tmp_path):
    orig = _masked(simulate("mri", options=SMALL_MRI, seed=2))
    k = _kspace(orig)
    rec = np.empty(k.T.shape, dtype=[("real", "<f8"), ("imag", "<f8")])  # MATLAB: column-major, compound complex
    rec["real"], rec["imag"] = k.T.real, k.T.imag
    with h5py.File(tmp_path / "k.mat", "w", userblock_size=512) as f:
        f["kspace"] = rec
    assert _run("import", tmp_path / "k.mat", "--problem", "mri", "--size", 16, "--any-size", "--noise-std",
                repr(orig.noise.sigma), "--out", tmp_path / "y.nc") == 0
    _check(tmp_path / "y.nc", orig)


def test_mri_multicoil_fastmri_hdf5_with_coil_maps(tmp_path):
    orig = simulate("mri-multicoil", options={**SMALL_MRI, "coils": 4}, seed=0)
    k = _kspace(orig)  # (coils, ky, kx)
    S = orig.forward_model.operator.coil_maps.numpy()
    np.save(tmp_path / "maps.npy", S[0] + 1j * S[1])
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["kspace"] = np.stack([k, k, k])  # slices x coils x ky x kx
        f["mask"] = orig.forward_model.operator.mask[0].numpy()
    assert _run("import", tmp_path / "f.h5", "--problem", "mri-multicoil", "--coil-maps", tmp_path / "maps.npy",
                "--size", 16, "--any-size", "--noise-std", repr(orig.noise.sigma), "--out", tmp_path / "y.nc") == 0
    m = _check(tmp_path / "y.nc", orig)
    assert m.options["coils"] == 4 and m.options["mask"] == "given"


@pytest.mark.parametrize("fmt", ["npy", "tiff"])
def test_ct_sinogram(tmp_path, fmt):
    import tifffile

    orig = simulate("ct", options={"size": 64, "angles": 12}, seed=0)
    sino = orig.y.numpy()[0]
    path = tmp_path / f"s.{'npy' if fmt == 'npy' else 'tif'}"
    if fmt == "npy":
        np.save(path, np.stack([sino * 0, sino]))  # a stack: --slice 1
    else:
        tifffile.imwrite(path, sino)
    extra = ["--slice", 1] if fmt == "npy" else []
    assert _run("import", path, "--problem", "ct", "--angles", "0:180:15", *extra, "--noise-std",
                repr(orig.noise.sigma), "--out", tmp_path / "y.nc") == 0
    _check(tmp_path / "y.nc", orig)


def _write_segy(path, y: np.ndarray, sources: np.ndarray, receivers: np.ndarray, *, scalar: int = -100,
                dt_us: int = 1000, origin: float = 5000.0):
    """Shot gathers ``(shot, time, receiver)`` as SEG-Y (IEEE float), positions in metres scaled by ``scalar``."""
    import segyio

    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = 5, list(range(y.shape[1])), y.shape[0] * y.shape[2]
    factor = -scalar if scalar < 0 else 1.0 / scalar
    T = segyio.TraceField
    with segyio.create(str(path), spec) as f:
        f.bin.update({segyio.BinField.Interval: dt_us, segyio.BinField.Samples: y.shape[1]})
        i = 0
        for s in range(y.shape[0]):
            for r in range(y.shape[2]):
                f.header[i] = {T.SourceX: int(round((origin + sources[s]) * factor)),
                               T.GroupX: int(round((origin + receivers[r]) * factor)), T.SourceGroupScalar: scalar,
                               T.TRACE_SAMPLE_INTERVAL: dt_us}
                f.trace[i] = np.ascontiguousarray(y[s, :, r], dtype=np.float32)
                i += 1


FWI_SMALL = {"size": 20, "nt": 120, "shots": 2, "receivers": 10, "freq": 15.0}


@pytest.fixture(scope="module")
def fwi_original():
    sim = simulate("fwi", options=FWI_SMALL, seed=0)
    y32 = sim.y.numpy().astype(np.float32).astype(np.float64)  # SEG-Y stores 32-bit floats
    return from_arrays("fwi", y32, FWI_SMALL, noise_std=sim.noise.sigma)


def test_fwi_segy(tmp_path, fwi_original):
    orig = fwi_original
    fm = orig.forward_model
    sx = fm.source_locations[:, 0, 1].numpy() * fm.dx
    gx = fm.receiver_locations[0, :, 1].numpy() * fm.dx
    order = np.random.default_rng(0).permutation(len(gx))  # trace order in the file does not matter
    _write_segy(tmp_path / "s.sgy", orig.y.numpy()[:, :, order], sx, gx[order])
    assert _run("import", tmp_path / "s.sgy", "--problem", "fwi", "--any-size", "--noise-std", repr(orig.noise.sigma),
                "--out", tmp_path / "y.nc") == 0
    m = _check(tmp_path / "y.nc", orig)
    assert m.options == orig.options
    # receivers off the model's columns: refused with the reason, nothing written
    _write_segy(tmp_path / "bad.sgy", orig.y.numpy(), sx, gx * 1.05)
    assert _run("import", tmp_path / "bad.sgy", "--problem", "fwi", "--any-size", "--out", tmp_path / "b.nc") == 2
    assert not (tmp_path / "b.nc").exists()


def _write_csv(path, x, y, v, t=None):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["x", "y", "value"] + ([] if t is None else ["t"]))
        for i in range(len(v)):
            w.writerow([repr(float(x[i])), repr(float(y[i])), repr(float(v[i]))] + ([] if t is None else [repr(t)]))


def test_darcy_csv_on_the_sensor_grid_and_at_recorded_positions(tmp_path):
    orig = simulate("darcy", options={"size": 32, "sensors": 5}, seed=0)
    xy = orig.forward_model.sensors.numpy()
    perm = np.random.default_rng(1).permutation(len(xy))
    _write_csv(tmp_path / "g.csv", xy[perm, 0], xy[perm, 1], orig.y.numpy()[perm])
    assert _run("import", tmp_path / "g.csv", "--problem", "darcy", "--noise-std", repr(orig.noise.sigma),
                "--out", tmp_path / "g.nc") == 0
    m = _check(tmp_path / "g.nc", orig)
    assert m.options["sensors"] == 5 and not m.arrays  # recognised as the recipe's grid
    # sensors anywhere: stored as recorded positions, observed by the model's bilinear interpolation
    pts = np.random.default_rng(2).uniform(0.05, 0.95, (13, 2))
    fm = from_arrays("darcy", np.zeros(13), {"size": 32}, noise_std=1.0, geometry={"sensors": pts}).forward_model
    with torch.no_grad():
        vals = fm(orig.truth[None])[0].numpy()
    ref = from_arrays("darcy", vals, {"size": 32}, noise_std=0.01, geometry={"sensors": pts})
    _write_csv(tmp_path / "p.csv", pts[:, 0], pts[:, 1], vals)
    assert _run("import", tmp_path / "p.csv", "--problem", "darcy", "--noise-std", "0.01", "--out",
                tmp_path / "p.nc") == 0
    m = _check(tmp_path / "p.nc", ref)
    assert m.options["sensors"] == 0 and np.array_equal(m.arrays["sensors"], pts)


def test_navier_stokes_csv_and_netcdf(tmp_path):
    import xarray as xr

    opts = {"size": 32, "factor": 4, "T": 0.1}
    orig = simulate("navier-stokes", options=opts, seed=0)
    m_obs = 32 // 4
    ii, jj = np.meshgrid(np.arange(m_obs), np.arange(m_obs), indexing="ij")
    x, y = 2 * np.pi * 4 * ii.ravel() / 32, 2 * np.pi * 4 * jj.ravel() / 32
    v = orig.y.numpy()[0].ravel()
    _write_csv(tmp_path / "r.csv", x[::-1], y[::-1], v[::-1], t=0.1)
    assert _run("import", tmp_path / "r.csv", "--problem", "navier-stokes", "-o", "size=32", "-o", "dt=0.01",
                "--noise-std", repr(orig.noise.sigma), "--out", tmp_path / "r.nc") == 0
    _check(tmp_path / "r.nc", orig)
    ds = xr.Dataset({"value": ("sensor", v)}, coords={"x": ("sensor", x), "y": ("sensor", y)})
    ds.to_netcdf(tmp_path / "r_in.nc", engine="h5netcdf")
    assert _run("import", tmp_path / "r_in.nc", "--problem", "navier-stokes", "-o", "size=32", "-o", "T=0.1",
                "--noise-std", repr(orig.noise.sigma), "--out", tmp_path / "r2.nc") == 0
    _check(tmp_path / "r2.nc", orig)


def test_imported_file_reconstructs_to_the_bit_identical_posterior(tmp_path):
    from inverse.reconstruction import reconstruct

    orig = simulate("mri", options=SMALL_MRI, seed=4)
    orig.to_netcdf(tmp_path / "orig.nc")
    np.save(tmp_path / "k.npy", _kspace(orig))
    np.save(tmp_path / "mask.npy", orig.forward_model.operator.mask[0].numpy())
    assert _run("import", tmp_path / "k.npy", "--problem", "mri", "--mask", tmp_path / "mask.npy", "--size", 16,
                "--any-size", "--noise-std", repr(orig.noise.sigma), "--out", tmp_path / "imp.nc") == 0
    kw = {"prior": "gaussian", "sampler": "dps", "num_samples": 3, "seed": 7, "steps": 4}
    a = reconstruct(tmp_path / "orig.nc", **kw)
    b = reconstruct(tmp_path / "imp.nc", **kw)
    assert torch.isfinite(a.samples).all() and torch.equal(a.samples, b.samples)


def test_fan_beam_sinogram_through_geometry_fan(tmp_path):
    orig = simulate("ct-fanbeam", options={"size": 64, "angles": 10}, seed=0)
    np.save(tmp_path / "fan.npy", orig.y.numpy()[0])
    assert _run("import", tmp_path / "fan.npy", "--problem", "ct", "--geometry", "fan", "--angles", "0:360:36",
                "--noise-std", repr(orig.noise.sigma), "--out", tmp_path / "y.nc") == 0
    m = _check(tmp_path / "y.nc", orig)
    assert m.problem == "ct-fanbeam" and m.options == orig.options
    assert _run("import", tmp_path / "fan.npy", "--problem", "ct", "--geometry", "fan", "--angles", "0:180:18",
                "--out", tmp_path / "z.nc") == 2  # angles the model does not use
    assert not (tmp_path / "z.nc").exists()


@pytest.mark.parametrize("problem", ["mri-radial", "mri-radial-multicoil"])
def test_radial_kspace_npy(tmp_path, problem):
    orig = simulate(problem, options={"size": 16, "spokes": 8}, seed=0)
    np.save(tmp_path / "k.npy", _kspace(orig))
    assert _run("import", tmp_path / "k.npy", "--problem", problem, "--size", 16, "--any-size", "--noise-std",
                repr(orig.noise.sigma), "--out", tmp_path / "y.nc") == 0
    _check(tmp_path / "y.nc", orig)


def test_seismic_interp_segy_dead_traces_are_the_mask(tmp_path, fwi_original):
    fm = fwi_original.forward_model
    sx = fm.source_locations[:, 0, 1].numpy() * fm.dx
    gx = fm.receiver_locations[0, :, 1].numpy() * fm.dx
    mask = np.ones((2, 10))
    mask[0, [1, 4]] = mask[1, 7] = 0.0
    y = fwi_original.y.numpy() * mask[:, None, :]
    _write_segy(tmp_path / "s.sgy", y, sx, gx)
    assert _run("import", tmp_path / "s.sgy", "--problem", "seismic-interp", "-o", "freq=15", "--noise-std", "0.01",
                "--out", tmp_path / "y.nc") == 0
    orig = from_arrays("seismic-interp", y, dict(FWI_SMALL), noise_std=0.01, mask=mask)
    m = _check(tmp_path / "y.nc", orig)
    assert np.array_equal(m.arrays["mask"], mask) and m.options["missing"] == -1.0
