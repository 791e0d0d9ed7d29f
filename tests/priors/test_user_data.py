"""Training data from the user's files (priors.user_data): every source type, lazy reading, the seeded split,
the normalisation from the data, crops, and one-line errors for bad inputs."""

import numpy as np
import pytest
import torch

from priors.errors import PriorError
from priors.training import SeededBatchSampler, TensorDataModule
from priors.user_data import (
    ExampleDataset,
    data_statistics,
    materialise,
    normalisation_from_stats,
    open_source,
    split_items,
)


def _stack(n=6, c=None, h=20, w=24, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, h, w) if c is None else (n, c, h, w)
    return (100 + 50 * rng.random(shape)).astype(np.float32)


def _write_pngs(folder, n=5, size=(30, 40), colour=False):
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(n):
        a = rng.integers(0, 256, (*size, 3) if colour else size, dtype=np.uint8)
        Image.fromarray(a).save(folder / f"im{i}.png")
    return folder


def test_npy_stack_is_memory_mapped_and_read_per_item(tmp_path):
    a = _stack()
    np.save(tmp_path / "x.npy", a)
    src = open_source(tmp_path / "x.npy")
    assert isinstance(src._get(), np.memmap)  # streaming: nothing read up front
    assert len(src) == 6 and src.channels == 1
    np.testing.assert_array_equal(src.read(3), a[3][None])


def test_npy_with_channels(tmp_path):
    a = _stack(c=2)
    np.save(tmp_path / "x.npy", a)
    ds = ExampleDataset(open_source(tmp_path / "x.npy"), range(6), size=16)
    assert ds.example_shape == (2, 16, 16) and ds[0][0].shape == (2, 16, 16)


def test_hdf5_dataset(tmp_path):
    h5py = pytest.importorskip("h5py")
    a = _stack()
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.create_dataset("group/images", data=a)
    src = open_source(f"{tmp_path / 'd.h5'}:group/images")
    np.testing.assert_array_equal(src.read(5)[0], a[5])
    with pytest.raises(PriorError, match="no dataset 'nope'.*group/images"):
        open_source(f"{tmp_path / 'd.h5'}:nope")
    with pytest.raises(PriorError, match="name the HDF5 dataset"):
        open_source(tmp_path / "d.h5")


def test_netcdf_variable(tmp_path):
    xr = pytest.importorskip("xarray")
    a = _stack()
    xr.Dataset({"T": (("time", "y", "x"), a)}).to_netcdf(tmp_path / "d.nc")
    src = open_source(f"{tmp_path / 'd.nc'}:T")
    np.testing.assert_allclose(src.read(2)[0], a[2])
    with pytest.raises(PriorError, match="no variable 'U'"):
        open_source(f"{tmp_path / 'd.nc'}:U")


def test_zarr_variable(tmp_path):
    pytest.importorskip("zarr")
    import xarray as xr

    a = _stack()
    xr.Dataset({"T": (("time", "y", "x"), a)}).to_zarr(tmp_path / "d.zarr")
    np.testing.assert_allclose(open_source(f"{tmp_path / 'd.zarr'}:T").read(1)[0], a[1])


def test_image_folder_png_tiff_and_colour_to_luma(tmp_path):
    import tifffile

    folder = _write_pngs(tmp_path / "imgs", n=3, colour=True)
    tifffile.imwrite(folder / "t.tif", np.full((12, 12), 7, dtype=np.uint16))
    (folder / "notes.txt").write_text("ignored")
    src = open_source(folder)
    assert len(src) == 4 and src.channels == 1
    from PIL import Image

    rgb = np.asarray(Image.open(folder / "im0.png")).astype(np.float32)
    np.testing.assert_allclose(src.read(0)[0], rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32), rtol=1e-6)
    assert float(src.read(3).max()) == 7.0


def test_dicom_files(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    (tmp_path / "d").mkdir()
    f = get_testdata_file("CT_small.dcm")
    (tmp_path / "d" / "ct.dcm").write_bytes(open(f, "rb").read())
    ds = pydicom.dcmread(f)
    item = open_source(tmp_path / "d").read(0)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)  # modality LUT applied
    np.testing.assert_allclose(item[0], expected)


def test_split_is_disjoint_seeded_and_sized():
    tr, va = split_items(100, 0.1, seed=3)
    assert len(va) == 10 and len(tr) == 90 and not set(tr) & set(va) and sorted(tr + va) == list(range(100))
    assert split_items(100, 0.1, seed=3) == (tr, va)
    assert split_items(100, 0.1, seed=4)[1] != va
    assert split_items(5, 0.0, seed=0) == ([0, 1, 2, 3, 4], [])
    with pytest.raises(PriorError, match="none for training"):
        split_items(1, 0.5)


def test_normalisation_computed_from_data(tmp_path):
    a = _stack()
    np.save(tmp_path / "x.npy", a)
    src = open_source(tmp_path / "x.npy")
    stats = data_statistics(src, [0, 1, 2])
    sub = a[:3].astype(np.float64)
    assert stats["min"] == pytest.approx(sub.min()) and stats["max"] == pytest.approx(sub.max())
    assert stats["mean"] == pytest.approx(sub.mean()) and stats["std"] == pytest.approx(sub.std())
    norm = normalisation_from_stats(stats, "range", "K")
    x = ExampleDataset(src, [0, 1, 2], size=20, normalisation=norm, patches=1)
    vals = materialise(x)
    assert float(vals.min()) >= -1 - 1e-6 and float(vals.max()) <= 1 + 1e-6
    std = normalisation_from_stats(stats, "std")
    assert std.scale == pytest.approx(2 * sub.std()) and std.offset == pytest.approx(sub.mean())
    with pytest.raises(PriorError, match="constant"):
        normalisation_from_stats({**stats, "max": stats["min"]}, "range")


def test_patches_are_seeded_crops_at_native_resolution(tmp_path):
    a = _stack(n=2, h=40, w=50)
    np.save(tmp_path / "x.npy", a)
    src = open_source(tmp_path / "x.npy")
    ds = ExampleDataset(src, [0, 1], size=16, patches=3, seed=5)
    assert len(ds) == 6
    x = ds[4][0][0].numpy()  # item 1, crop 1: a window of the item itself
    windows = np.lib.stride_tricks.sliding_window_view(a[1], (16, 16))
    assert np.any(np.all(windows == x, axis=(-1, -2)))
    assert torch.equal(ds[4][0], ExampleDataset(src, [0, 1], size=16, patches=3, seed=5)[4][0])
    assert not torch.equal(ds[3][0], ds[4][0])


def test_resize_keeps_the_centre_square(tmp_path):
    a = np.zeros((1, 20, 40), np.float32)
    a[0, :, 10:30] = 1.0  # the centre square is all ones
    np.save(tmp_path / "x.npy", a)
    x = ExampleDataset(open_source(tmp_path / "x.npy"), [0], size=10)[0][0]
    assert x.shape == (1, 10, 10) and torch.allclose(x, torch.ones_like(x))


def test_streaming_dataset_gives_the_tensor_batches(tmp_path):
    """The seeded sampler over a dataset read per item yields the batches of the same data as a tensor."""
    a = _stack(n=12, h=8, w=8)
    np.save(tmp_path / "x.npy", a)
    ds = ExampleDataset(open_source(tmp_path / "x.npy"), range(12), size=8)
    tensor = materialise(ds)
    lazy = list(TensorDataModule(ds, batch_size=4, seed=2).train_dataloader())
    eager = list(TensorDataModule(tensor, batch_size=4, seed=2).train_dataloader())
    assert len(lazy) == len(eager) == 3
    assert all(torch.equal(x[0], y[0]) for x, y in zip(lazy, eager, strict=True))
    s = SeededBatchSampler(len(ds), 4, seed=2, start=1)
    assert [b for b in s] == list(SeededBatchSampler(12, 4, seed=2))[1:]


@pytest.mark.parametrize("case", ["missing", "empty", "badsuffix", "bad_npy_shape", "complex"])
def test_bad_sources_are_one_line(tmp_path, case):
    if case == "missing":
        spec = tmp_path / "nope"
    elif case == "empty":
        spec = tmp_path / "empty"
        spec.mkdir()
    elif case == "badsuffix":
        spec = tmp_path / "x.csv"
        spec.write_text("1,2")
    elif case == "bad_npy_shape":
        spec = tmp_path / "x.npy"
        np.save(spec, np.zeros(5))
    else:
        spec = tmp_path / "x.npy"
        np.save(spec, np.zeros((2, 4, 4), complex))
    with pytest.raises(PriorError) as e:
        open_source(spec)
    assert "\n" not in str(e.value) and str(spec) in str(e.value)


def test_unreadable_image_names_the_file(tmp_path):
    folder = _write_pngs(tmp_path / "imgs", n=2)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    src = open_source(folder)
    with pytest.raises(PriorError, match="broken.png: cannot be read as an image") as e:
        data_statistics(src, range(len(src)))
    assert "\n" not in str(e.value)


def test_streamed_training_resumes_bit_identical_and_matches_the_tensor_run(tmp_path):
    """train_prior on a dataset read per batch: resumed mid-epoch it ends with the weights of an uninterrupted
    run, and those are the weights of the same examples given as a tensor (CPU, one process)."""
    import warnings

    from safetensors.torch import load_file

    from priors.training import train_prior

    warnings.filterwarnings("ignore", module="pytorch_lightning")
    np.save(tmp_path / "x.npy", _stack(n=16, h=8, w=8))
    src = open_source(tmp_path / "x.npy")
    norm = normalisation_from_stats(data_statistics(src, range(16)))
    ds = ExampleDataset(src, range(16), size=8, normalisation=norm)
    kw = dict(batch_size=4, widths=(8, 8), checkpoint_every=3, seed=2)
    train_prior(ds, tmp_path / "full", steps=6, **kw)
    train_prior(ds, tmp_path / "cut", steps=3, **kw)
    train_prior(ds, tmp_path / "cut", steps=6, resume=True, overwrite=True, **kw)
    train_prior(materialise(ds), tmp_path / "tensor", steps=6, **kw)
    w = [load_file(str(tmp_path / d / "diffusion_pytorch_model.safetensors")) for d in ("full", "cut", "tensor")]
    assert all(torch.equal(w[0][k], w[1][k]) and torch.equal(w[0][k], w[2][k]) for k in w[0])


def test_quality_floors_are_the_shipped_priors_floors():
    from priors.quality import QUALITY_FLOORS, quality_failures
    from tests.priors.test_shipped_priors import PIXEL_W1_RATIO_MAX, SPECTRUM_LOG10_ERROR_MAX

    assert QUALITY_FLOORS == {"spectrum_log10_error_max": SPECTRUM_LOG10_ERROR_MAX,
                              "pixel_w1_ratio_max": PIXEL_W1_RATIO_MAX}
    good = {"spectrum_log10_error": 0.1, "pixel_w1_samples_vs_truths": 0.05, "pixel_w1_truths_vs_truths": 0.02,
            "denoising": [{"sigma": 0.1, "psnr_prior": 30.0, "psnr_best_blur": 28.0}]}
    assert quality_failures(good) == []
    bad = {**good, "spectrum_log10_error": 0.2, "pixel_w1_samples_vs_truths": 0.07,
           "denoising": [{"sigma": 0.1, "psnr_prior": 27.0, "psnr_best_blur": 28.0}]}
    assert [f.split()[0] for f in quality_failures(bad)] == ["spectrum", "pixel", "denoising"]
